"""Drift against a lock is exact: name=version=build and sha256, conda and pip."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from jupyter_repro.notebooks.drift import compare_lock
from jupyter_repro.specs.lock import PlatformLock
from jupyter_repro.specs.locking import LockOptions, lock_environment
from jupyter_repro.specs.pip_lock import LockedPypi


@pytest.fixture(scope="module")
def linux_lock(multi_platform_env) -> PlatformLock:
    result = asyncio.run(
        lock_environment(multi_platform_env.prefix, LockOptions(platforms=("linux-64",)))
    )
    locked = result.lock.platform("linux-64")
    assert locked is not None
    return locked


def _copy(prefix: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "env"
    shutil.copytree(prefix, copy, symlinks=True)
    return copy


def _edit_record(prefix: Path, name: str, **changes: object) -> None:
    record = next((prefix / "conda-meta").glob(f"{name}-*.json"))
    data = json.loads(record.read_text())
    data.update(changes)
    record.write_text(json.dumps(data))


def test_the_locked_environment_is_in_sync(multi_platform_env, linux_lock):
    assert compare_lock(linux_lock, multi_platform_env.prefix).status == "in_sync"


def test_a_rebuilt_archive_with_the_same_name_drifts_by_its_sha256(
    multi_platform_env, linux_lock, tmp_path
):
    prefix = _copy(multi_platform_env.prefix, tmp_path)
    _edit_record(prefix, "libplat", sha256="0" * 64)
    drift = compare_lock(linux_lock, prefix)
    assert drift.status == "drifted"
    (changed,) = drift.changed
    assert changed.name == "libplat"
    assert changed.spec == "libplat=1.1=0"
    assert "sha256 000000000000" in changed.installed_version
    assert "sha256" in changed.spec_version


def test_another_build_or_version_drifts_and_extra_or_missing_packages_are_named(
    multi_platform_env, linux_lock, tmp_path
):
    prefix = _copy(multi_platform_env.prefix, tmp_path)
    _edit_record(prefix, "libplat", build="1")
    (prefix / "conda-meta" / next((prefix / "conda-meta").glob("pkgdemo-*.json")).name).unlink()
    extra = json.loads(next((prefix / "conda-meta").glob("libplat-*.json")).read_text())
    extra.update(name="extra", version="2.0", build="0")
    (prefix / "conda-meta" / "extra-2.0-0.json").write_text(json.dumps(extra))
    drift = compare_lock(linux_lock, prefix)
    assert drift.status == "drifted"
    assert drift.added == ("extra",)
    assert drift.removed == ("pkgdemo",)
    assert [(c.name, c.spec_version, c.installed_version) for c in drift.changed] == [
        ("libplat", "1.1=0", "1.1=1")
    ]


def test_locked_pip_packages_are_compared_by_version(multi_platform_env, linux_lock, tmp_path):
    prefix = _copy(multi_platform_env.prefix, tmp_path)
    site = next(prefix.glob("lib/python3*/site-packages"), None) or (
        prefix / "lib" / "python3.11" / "site-packages"
    )
    dist = site / "alpha_pkg-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: alpha-pkg\nVersion: 1.0\n")
    (dist / "INSTALLER").write_text("pip\n")
    with_pip = PlatformLock(
        linux_lock.platform,
        linux_lock.conda,
        (LockedPypi("alpha-pkg", "2.0", None, None), LockedPypi("beta", "1.0", None, None)),
    )
    drift = compare_lock(with_pip, prefix)
    assert drift.status == "drifted"
    assert drift.removed == ("pip:beta",)
    assert [(c.name, c.spec_version, c.installed_version) for c in drift.changed] == [
        ("pip:alpha-pkg", "2.0", "1.0")
    ]
