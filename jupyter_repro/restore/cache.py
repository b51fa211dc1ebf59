"""rattler's package cache: where it is, and what it already holds.

A restore always hands rattler a concrete cache folder (never `None`), so that what this
module reads is the folder rattler writes. The folder is, in order: the configured one
(`ReproApp.package_cache_dir`, `--cache-dir`), `$RATTLER_CACHE_DIR/pkgs` (as rattler reads
that variable), `$XDG_CACHE_HOME/rattler/cache/pkgs`, `~/.cache/rattler/cache/pkgs`.

rattler keeps, beside every extracted package `<name>-<version>-<build>/`, a lock file
`<name>-<version>-<build>.lock` whose content is a big-endian u64 revision followed by the
sha256 of the archive the folder was extracted from (all zeros when unknown). rattler itself
refetches an entry whose sha256 is not the record's; we read it to know, before a capsule is
unpacked, which of its archives need not be: a wrong reading can only make us unpack an
archive we could have skipped (or, at worst, make rattler look for the archive and fail the
restore), never link a package the lock does not name.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

_LOCK_SUFFIX = ".lock"
_REVISION_BYTES = 8
_SHA256_BYTES = 32


def package_cache_dir(
    configured: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    home: Path,
) -> Path:
    """The package cache folder rattler will use for a restore (see the module's doc)."""
    if configured:
        return Path(configured).expanduser()
    rattler_dir = environ.get("RATTLER_CACHE_DIR")
    if rattler_dir:
        return Path(rattler_dir).expanduser() / "pkgs"
    xdg = environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".cache"
    return base / "rattler" / "cache" / "pkgs"


def cached_sha256(cache: Path, dist_name: str) -> str | None:
    """The sha256 (hex) of the archive rattler extracted `dist_name` from, when the cache
    holds that package with a known hash; else None."""
    found = _entries(cache, [dist_name])
    return found[dist_name][0] if dist_name in found else None


def cached_entries(cache: Path, wanted: Mapping[str, str]) -> dict[str, os.stat_result]:
    """Of `wanted` (dist name -> the sha256 its archive must have), the packages the cache
    holds extracted from such an archive: dist name -> the `os.stat` of the entry's
    `info/index.json` (what a record of it is made from).

    A few system calls per package, relative to the cache folder opened once: a restore
    asks this of every package of a lock before it decides what to unpack."""
    return {
        dist: info
        for dist, (digest, info) in _entries(cache, list(wanted)).items()
        if digest == wanted[dist]
    }


_DIR_FD = os.open in os.supports_dir_fd and os.stat in os.supports_dir_fd
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation of the digest


def _entries(cache: Path, dist_names: list[str]) -> dict[str, tuple[str, os.stat_result]]:
    """dist name -> (the sha256 of its entry's archive, the stat of its index.json), for
    the entries the cache holds with a known sha256. `dist_names` are checked names
    (`LockedConda.problem`): plain file names, never paths."""
    folder_fd: int | None = None
    if _DIR_FD:
        try:
            folder_fd = os.open(cache, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
        except OSError:
            return {}
    base = "" if folder_fd is not None else f"{cache}{os.sep}"
    found: dict[str, tuple[str, os.stat_result]] = {}
    try:
        for dist in dist_names:
            try:
                info = os.stat(f"{base}{dist}/info/index.json", dir_fd=folder_fd)
                if not stat.S_ISREG(info.st_mode):
                    continue
                lock = f"{base}{dist}{_LOCK_SUFFIX}"
                fd = os.open(lock, os.O_RDONLY | _CLOEXEC | _BINARY, dir_fd=folder_fd)
                try:
                    data = os.read(fd, _REVISION_BYTES + _SHA256_BYTES + 1)
                finally:
                    os.close(fd)
            except OSError:
                continue
            digest = data[_REVISION_BYTES:]
            if len(data) == _REVISION_BYTES + _SHA256_BYTES and digest != bytes(_SHA256_BYTES):
                found[dist] = (digest.hex(), info)
    finally:
        if folder_fd is not None:
            os.close(folder_fd)
    return found


def write_entry_lock(cache: Path, dist_name: str, sha256: bytes) -> None:
    """Write rattler's `<dist>.lock` for an entry extracted by us (a shared cache's): the
    next revision and the archive's sha256, so that rattler uses the entry as its own."""
    fd = os.open(
        cache / f"{dist_name}{_LOCK_SUFFIX}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644
    )
    try:
        old = os.read(fd, _REVISION_BYTES)
        revision = int.from_bytes(old, "big") + 1 if len(old) == _REVISION_BYTES else 1
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, revision.to_bytes(_REVISION_BYTES, "big") + sha256)
        os.ftruncate(fd, _REVISION_BYTES + len(sha256))
        os.fchmod(fd, 0o644)
    finally:
        os.close(fd)
