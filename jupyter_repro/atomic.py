"""Replace a file so that readers see the old content or the new one, never a mix."""

from __future__ import annotations

import contextlib
import errno
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


class OutsideRoot(PermissionError):
    """A folder on the way to a file under a root is not a plain folder inside that root (a
    symlink, `..`, or an absolute path): nothing was written."""


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def replace_beneath(root: str | os.PathLike[str], relative: str, data: bytes) -> None:
    """Write `data` to the file `relative` ("/"-separated) under the folder `root`,
    atomically, without following a symlink anywhere below `root`.

    Each folder on the way is opened relative to the one before with `O_NOFOLLOW`, so a
    folder swapped for a symlink after the caller's checks is refused (OutsideRoot) instead
    of followed; the file itself is a temporary file in its folder renamed over `name`, and
    a rename replaces a symlink found there rather than writing where it points. An existing
    regular file keeps its permission bits; a new one gets what the umask allows. Where the
    platform has no `dir_fd` support, falls back to `replace_file` on the resolved path.
    """
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\x00" in relative:
        raise OutsideRoot(f"{relative!r} is not a plain path below the root")
    if os.open not in os.supports_dir_fd or os.rename not in os.supports_dir_fd:
        replace_bytes_fallback(Path(root, *parts), data)
        return
    *folders, name = parts
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for folder in folders:
            try:
                inner = os.open(folder, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OutsideRoot(
                        f"{relative!r}: {folder!r} is not a folder inside the root (a symlink?)"
                    ) from None
                raise
            os.close(fd)
            fd = inner
        _replace_at(fd, name, data)
    finally:
        os.close(fd)


def _replace_at(folder_fd: int, name: str, data: bytes) -> None:
    """Replace `name` in the open folder `folder_fd` by a file holding `data`."""
    try:
        info = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        mode: int | None = None
    else:
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", name)
        # A symlink (or anything but a file) is replaced, not followed: new file, umask mode.
        mode = stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else None
    for _ in range(100):
        temporary = f".{name[:40]}.{os.urandom(6).hex()}.tmp"
        try:
            fd = os.open(
                temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC,
                0o666,
                dir_fd=folder_fd,
            )
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "cannot create a temporary file", name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.rename(temporary, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder_fd)
        raise


def replace_bytes_fallback(path: Path, data: bytes) -> None:
    """`replace_file` for bytes, for platforms without `dir_fd` (Windows)."""
    target = Path(os.path.realpath(path))
    fd, temporary = _create_temporary(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
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


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (another thread
    creating a file meanwhile must not get the wrong mode)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # Elsewhere: briefly the strictest mask, so a file made meanwhile is private, not public.
    mask = os.umask(0o077)
    os.umask(mask)
    return mask
