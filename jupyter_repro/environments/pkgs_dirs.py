"""Where conda keeps the package archives an environment was installed from.

Packing reads archives from there before downloading them (every one is checked against the
lock's sha256 while it is packed, so a stale or foreign file there is refused, never packed).
conda's order: `$CONDA_PKGS_DIRS` (comma-separated), `pkgs_dirs:` of the condarc files
(clusters move the cache to a scratch disk there), the installation's `pkgs` folder, then the
user's `~/.conda/pkgs`. The installation is the one the environment is in (`<root>/envs/x`),
else the one whose conda created it (the `# cmd:` of its history: `conda create -p` puts an
environment anywhere), else `$CONDA_ROOT`/`$CONDA_EXE`'s. Only folders that exist count.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


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
    candidates = []
    for part in environ.get("CONDA_PKGS_DIRS", "").split(","):
        if part.strip():
            with contextlib.suppress(RuntimeError, ValueError):  # `~nosuchuser`
                candidates.append(Path(part.strip()).expanduser())
    roots: list[Path] = []
    if root is not None:
        roots.append(root)
    if prefix.parent.name == "envs":
        roots.append(prefix.parent.parent)
    elif (prefix / "condabin").is_dir() or (prefix / "pkgs").is_dir():
        roots.append(prefix)
    roots.extend(_history_roots(prefix))
    for variable, up in (("CONDA_ROOT", 0), ("CONDA_EXE", 2), ("MAMBA_ROOT_PREFIX", 0)):
        value = environ.get(variable)
        if value and os.path.isabs(value):
            found = Path(value)
            for _ in range(up):
                found = found.parent
            roots.append(found)
    candidates.extend(_condarc_pkgs_dirs(roots, environ, home))
    candidates.extend(r / "pkgs" for r in roots)
    candidates.append(home / ".conda" / "pkgs")
    out: list[Path] = []
    for folder in candidates:
        with contextlib.suppress(OSError, ValueError):
            if folder not in out and folder.is_dir():
                out.append(folder)
    return tuple(out)


def _history_roots(prefix: Path) -> list[Path]:
    """The installation whose conda made the environment: `# cmd: <root>/bin/conda ...`
    (or `condabin/conda`, `Scripts\\conda.exe`) in its history."""
    try:
        with open(prefix / "conda-meta" / "history", encoding="utf-8", errors="replace") as f:
            head = f.read(64 << 10)
    except OSError:
        return []
    found: list[Path] = []
    for line in head.splitlines():
        if not line.startswith("# cmd:"):
            continue
        words = line[len("# cmd:") :].split()
        if not words:
            continue
        executable = Path(words[0])
        if executable.is_absolute() and executable.stem in ("conda", "mamba", "micromamba"):
            root = executable.parent.parent
            if root not in found:
                found.append(root)
    return found


def _condarc_pkgs_dirs(roots: list[Path], environ: Mapping[str, str], home: Path) -> list[Path]:
    """`pkgs_dirs` of the condarc files conda reads (the user's first), expanded."""
    files = [
        *([Path(environ["CONDARC"])] if environ.get("CONDARC") else []),
        home / ".condarc",
        home / ".conda" / ".condarc",
        home / ".config" / "conda" / ".condarc",
        *(r / ".condarc" for r in roots),
        Path("/etc/conda/.condarc"),
        Path("/etc/conda/condarc"),
    ]
    found: list[Path] = []
    for path in files:
        try:
            if not path.is_file() or path.stat().st_size > (1 << 20):
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"pkgs_dirs" not in data:
            continue  # most condarcs: no YAML parser needed
        try:
            from ruamel.yaml import YAML

            document = YAML(typ="safe", pure=True).load(data)
        except Exception as error:  # a broken condarc costs its settings, not the pack
            log.debug("skipping pkgs_dirs of %s: %s", path, error)
            continue
        values = document.get("pkgs_dirs") if isinstance(document, dict) else None
        if not isinstance(values, list):
            continue
        for value in values:
            if isinstance(value, str) and value.strip():
                try:
                    folder = Path(os.path.expandvars(value.strip())).expanduser()
                except (RuntimeError, ValueError):  # `~nosuchuser/pkgs`, a NUL
                    continue
                if folder.is_absolute():
                    found.append(folder)
    return found
