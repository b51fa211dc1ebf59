"""The record of capsules checked before, and the capsule file's sha256 a server keeps."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from jupyter_repro.restore import checked_capsules
from jupyter_repro.restore.checked_capsules import file_sha256, remember_checked, was_checked

_SHA256 = hashlib.sha256


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a file is really hashed."""
    made: list[int] = []
    real = hashlib.sha256

    def counting(*args: object) -> object:
        made.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(checked_capsules.hashlib, "sha256", counting)
    return made


def test_an_unchanged_file_is_hashed_once(tmp_path: Path, hashes, monkeypatch) -> None:
    monkeypatch.setattr(checked_capsules, "_SETTLED_NS", 0)
    path = tmp_path / "a.capsule.tar.zst"
    path.write_bytes(b"capsule" * 1000)

    first = file_sha256(path)

    assert file_sha256(path) == first == _SHA256(path.read_bytes()).hexdigest()
    assert len(hashes) == 1


def test_a_file_changed_in_place_with_its_mtime_set_back_is_hashed_again(
    tmp_path: Path, hashes, monkeypatch
) -> None:
    monkeypatch.setattr(checked_capsules, "_SETTLED_NS", 0)
    path = tmp_path / "a.capsule.tar.zst"
    path.write_bytes(b"A" * 4096)
    os.utime(path, ns=(10**18, 10**18))
    first = file_sha256(path)
    time.sleep(0.02)  # past the file system's timestamp resolution

    with open(path, "r+b") as stream:  # same inode, same size
        stream.write(b"B")
    os.utime(path, ns=(10**18, 10**18))  # mtime as it was; the ctime moves on regardless

    second = file_sha256(path)
    assert second != first
    assert second == _SHA256(path.read_bytes()).hexdigest()
    assert len(hashes) == 2


def test_a_file_changed_a_moment_ago_is_hashed_every_time(tmp_path: Path, hashes) -> None:
    path = tmp_path / "a.capsule.tar.zst"
    path.write_bytes(b"fresh")

    file_sha256(path)
    file_sha256(path)

    assert len(hashes) == 2


def test_a_checked_capsule_is_remembered_per_user(tmp_path: Path) -> None:
    alice = {"XDG_CACHE_HOME": str(tmp_path / "alice-cache")}
    bob = {"XDG_CACHE_HOME": str(tmp_path / "bob-cache")}
    digest = "ab" * 32
    assert not was_checked(digest, alice, tmp_path)

    remember_checked(digest, alice, tmp_path)

    assert was_checked(digest, alice, tmp_path)
    assert not was_checked(digest, bob, tmp_path)
    folder = tmp_path / "alice-cache" / "jupyter-repro" / "checked-capsules"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
