"""Where conda keeps the package archives an environment was installed from.

Packing reads archives from there before downloading them (every one is checked against the
lock's sha256 while it is packed, so a stale or foreign file there is refused, never packed).
conda's order: `$CONDA_PKGS_DIRS` (comma-separated), the installation's `pkgs` folder, then
the user's `~/.conda/pkgs`. Only folders that exist are returned.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def conda_pkgs_dirs(
    prefix: Path,
    *,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> tuple[Path, ...]:
    """The package folders conda would have used for the environment at `prefix`; `root` is
    its installation when known (else a prefix in `<root>/envs/<name>` names it, and a base
    environment is its own root)."""
    environ = os.environ if environ is None else environ
    home = Path(environ.get("HOME") or Path.home()) if home is None else home
    candidates = [
        Path(part.strip()).expanduser()
        for part in environ.get("CONDA_PKGS_DIRS", "").split(",")
        if part.strip()
    ]
    if root is None:
        if prefix.parent.name == "envs":
            root = prefix.parent.parent
        elif (prefix / "condabin").is_dir() or (prefix / "pkgs").is_dir():
            root = prefix
    if root is not None:
        candidates.append(root / "pkgs")
    candidates.append(home / ".conda" / "pkgs")
    out: list[Path] = []
    for folder in candidates:
        if folder not in out and folder.is_dir():
            out.append(folder)
    return tuple(out)
