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
from collections.abc import Mapping
from pathlib import Path

_CHUNK = 1 << 20


def _folder(environ: Mapping[str, str], home: Path) -> Path:
    xdg = environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".cache"
    return base / "jupyter-repro" / "checked-capsules"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
