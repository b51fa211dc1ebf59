"""Replace a file so that readers see the old content or the new one, never a mix."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def replace_file(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically: readers see the old file or the new one.

    A temporary file in the same folder is renamed over the target (through a symlink, to
    the file it points at); an existing file keeps its permission bits, a new one gets what
    the umask allows.
    """
    target = Path(os.path.realpath(path))
    try:
        mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    fd, temporary = _create_temporary(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _create_temporary(target: Path) -> tuple[int, Path]:
    """A new file beside `target`, created `0o666` so the umask decides (as for any new
    file); `tempfile` would make it `0o600`, and reading the umask means changing it."""
    for _ in range(100):
        candidate = target.parent / f".{target.name}.{os.urandom(6).hex()}.tmp"
        try:
            return os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {target}")
