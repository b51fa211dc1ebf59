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
    if not (cache / dist_name / "info" / "index.json").is_file():
        return None
    try:
        with open(cache / f"{dist_name}{_LOCK_SUFFIX}", "rb") as stream:
            data = stream.read(_REVISION_BYTES + _SHA256_BYTES + 1)
    except OSError:
        return None
    if len(data) != _REVISION_BYTES + _SHA256_BYTES:
        return None
    digest = data[_REVISION_BYTES:]
    if digest == bytes(_SHA256_BYTES):
        return None
    return digest.hex()


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
