"""A locked pip section, end to end: an environment with pip-installed wheels is locked per
platform with uv (each platform its own wheel and hash), and a restore from that lock installs
exactly those wheels with hashes enforced: a wheel changed since is refused."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from jupyter_repro.notebooks.lock import render_lock
from jupyter_repro.restore.errors import RestoreError
from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.lock import parse_conda_lock
from jupyter_repro.specs.locking import LockOptions, lock_environment
from jupyter_repro.specs.pip_lock import PipIndex, uv_binary
from tests.rig.platforms import create_dated_env
from tests.test_pip_lock import sha256_of, write_wheel

LINUX_TAG = "py3-none-manylinux_2_17_x86_64"
WINDOWS_TAG = "py3-none-win_amd64"


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    write_wheel(folder, "alpha", "1.0", requires=["beta>=1"])
    write_wheel(folder, "beta", "1.0")
    write_wheel(folder, "beta", "2.0", payload="VALUE = 2\n")
    write_wheel(folder, "gamma", "1.0", tag=LINUX_TAG, payload="WHERE = 'linux'\n")
    write_wheel(folder, "gamma", "1.0", tag=WINDOWS_TAG, payload="WHERE = 'windows'\n")
    return folder


@pytest.fixture
def env_with_pip(conda_installation_factory, multi_platform_channel, wheels, tmp_path):
    """A dated conda environment into which alpha (and beta 1.0) and gamma are pip-installed."""
    installation = conda_installation_factory(channel=multi_platform_channel)
    prefix = create_dated_env(installation, name="withpip")
    uv = uv_binary()
    assert uv is not None
    python = str(prefix / "bin" / "python")
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--python",
            python,
            "--no-config",
            "--no-index",
            "--find-links",
            str(wheels),
            "alpha",
            "beta==1.0",
            "gamma",
        ],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "UV_CACHE_DIR": str(tmp_path / "uv")},
    )
    return installation, prefix


def _lock(prefix: Path, wheels: Path, tmp_path: Path):
    options = LockOptions(
        platforms=("linux-64", "win-64"),
        pip_index=PipIndex(find_links=(str(wheels),), no_index=True),
        environ={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "UV_CACHE_DIR": str(tmp_path / "uv"),
        },
    )
    return asyncio.run(lock_environment(prefix, options))


def test_each_platform_locks_its_own_wheels_with_their_hashes(env_with_pip, wheels, tmp_path):
    _, prefix = env_with_pip
    result = _lock(prefix, wheels, tmp_path)

    assert result.skipped == {}
    linux = {p.name: p for p in result.lock.platform("linux-64").pypi}
    windows = {p.name: p for p in result.lock.platform("win-64").pypi}
    assert {n: p.version for n, p in linux.items()} == {
        "alpha": "1.0",
        "beta": "1.0",
        "gamma": "1.0",
    }
    assert linux["gamma"].url.endswith(f"gamma-1.0-{LINUX_TAG}.whl")
    assert windows["gamma"].url.endswith(f"gamma-1.0-{WINDOWS_TAG}.whl")
    assert linux["gamma"].sha256 == sha256_of(wheels / f"gamma-1.0-{LINUX_TAG}.whl")
    assert windows["gamma"].sha256 == sha256_of(wheels / f"gamma-1.0-{WINDOWS_TAG}.whl")
    # pinned to what is installed (beta 1.0), not the newest in the folder (2.0)
    assert linux["beta"].sha256 == sha256_of(wheels / "beta-1.0-py3-none-any.whl")
    # the conda-lock file carries them as pip packages of each platform
    text = render_lock(result, "conda-lock")
    assert parse_conda_lock(text).platform("win-64").pypi == result.lock.platform("win-64").pypi


def test_a_restore_installs_the_locked_wheels_and_refuses_a_changed_one(
    env_with_pip, wheels, tmp_path
):
    installation, prefix = env_with_pip
    lock_file = tmp_path / "conda-lock.yml"
    lock_file.write_text(render_lock(_lock(prefix, wheels, tmp_path), "conda-lock"))
    environ = {**installation.environ(), "UV_CACHE_DIR": str(tmp_path / "uv-restore")}
    service = RestoreService(
        RestoreOptions(
            cache_dir=tmp_path / "pkgs", pip_find_links=(str(wheels),), pip_no_index=True
        ),
        environ=environ,
    )
    target = tmp_path / "restored"

    result = asyncio.run(service.restore(load_source(file=lock_file), prefix=target))

    assert result.pip == 3
    shown = subprocess.run(
        [
            str(target / "bin" / "python"),
            "-c",
            "import alpha, beta, gamma; print(beta.VALUE, gamma.WHERE)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.split() == ["1", "linux"]

    # Same name and version, other bytes: the lock's hash refuses it (a fresh uv cache, so
    # the file itself is read), and nothing is left behind.
    write_wheel(wheels, "beta", "1.0", payload="VALUE = 'changed'\n")
    fresh = RestoreService(
        service.options, environ={**environ, "UV_CACHE_DIR": str(tmp_path / "uv-fresh")}
    )
    again = tmp_path / "again"
    with pytest.raises(RestoreError, match="locked pip packages"):
        asyncio.run(fresh.restore(load_source(file=lock_file), prefix=again))
    assert not again.exists()
