"""Capsules whose every member this user has checked before, by the sha256 of the file.

Restoring a capsule checks every member's sha256, including the archives a restore does
not need (another platform's, or packages the package cache already holds): a changed byte
anywhere refuses the capsule. That costs a full decompression, which is most of a restore
from a warm package cache. A capsule whose file has the same sha256 as one fully checked
before is the same bytes, so its unneeded members need not be read again. Hashing the
compressed file is several times cheaper than decompressing it.

The record is an empty file named by the digest in the user's own cache folder
(`$XDG_CACHE_HOME/jupyter-repro/checked-capsules/`, else `~/.cache/...`): never a shared
folder, so one user's record cannot vouch for another user's capsule.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from ..memo import STAT_KEYS_TRUSTED, Memo

_CHUNK = 1 << 20


def _folder(environ: Mapping[str, str], home: Path) -> Path:
    xdg = environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".cache"
    return base / "jupyter-repro" / "checked-capsules"


class Stopped(Exception):
    """`file_sha256` was told to stop."""


def file_sha256(path: Path, stop: threading.Event | None = None) -> str:
    """The sha256 of the file at `path`; `Stopped` when `stop` is set meanwhile (see
    `stream_sha256`)."""
    with open(path, "rb") as stream:
        return stream_sha256(stream, stop)


def stream_sha256(stream: BinaryIO, stop: threading.Event | None = None) -> str:
    """The sha256 of the open file `stream`, read from its start (left at its end).

    A file this process hashed before and that has not changed since is not read again: a
    server restores the same capsule more than once, and a capsule is gigabytes. Unchanged
    means the same inode, size, mtime and ctime (which only the system's clock sets), with
    the last change well before the hashing started, so that a change within the
    timestamps' resolution cannot hide in it. Not on Windows, whose `st_ctime` is the
    creation time (`memo.STAT_KEYS_TRUSTED`)."""
    before = os.fstat(stream.fileno())
    key = (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns)
    known = _DIGESTS.get(key) if STAT_KEYS_TRUSTED else None
    if known is not None:
        return known
    started = time.time_ns()
    stream.seek(0)
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        if stop is not None and stop.is_set():
            raise Stopped(stream.name)
        digest.update(chunk)
    after = os.fstat(stream.fileno())
    found = digest.hexdigest()
    settled = started - max(before.st_mtime_ns, before.st_ctime_ns) > _SETTLED_NS
    unchanged = (after.st_size, after.st_mtime_ns, after.st_ctime_ns) == key[2:]
    if STAT_KEYS_TRUSTED and settled and unchanged:
        _DIGESTS.put(key, found)
    return found


_DIGESTS: Memo[tuple[int, ...], str] = Memo(64)
"""Files hashed by this process: (device, inode, size, mtime, ctime) -> sha256."""
_SETTLED_NS = 2_000_000_000


def was_checked(digest: str, environ: Mapping[str, str], home: Path) -> bool:
    """Whether a capsule with this file sha256 had every member checked by this user."""
    return (_folder(environ, home) / digest).is_file()


def remember_checked(digest: str, environ: Mapping[str, str], home: Path) -> None:
    """Record that the capsule with this file sha256 had every member checked. Best effort:
    a cache folder that cannot be written costs the next restore a full check, nothing more."""
    folder = _folder(environ, home)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        (folder / digest).touch(mode=0o600)
    except OSError:
        pass
