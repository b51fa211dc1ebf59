"""pytest fixtures of the offline conda rig; ``from tests.rig.fixtures import *`` in conftest.

Session-scoped things are read-only by contract: a test that adds packages, creates or
removes environments uses the function-scoped ``conda_installation`` or the factory.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.rig.channel import PackageDef, RigChannel, build_channel, default_packages
from tests.rig.installation import (
    ROOT_SPECS,
    CondaInstallation,
    populate_standard_envs,
)
from tests.rig.platforms import (
    LOCKME_CREATED,
    LOCKME_NAME,
    LOCKME_SPECS,
    MultiPlatformEnv,
    build_multi_platform_channel,
    create_dated_env,
)

__all__ = [
    "channel_with_a_conda_dist_info",
    "conda_installation",
    "conda_installation_factory",
    "multi_platform_channel",
    "multi_platform_env",
    "rig_channel",
    "rig_environ",
    "rig_installation",
    "rig_package_cache",
]

MakeInstallation = Callable[..., CondaInstallation]


@pytest.fixture(scope="session")
def rig_channel(tmp_path_factory: pytest.TempPathFactory) -> RigChannel:
    """The rig's local ``file://`` channel, built once per test run. Do not add to it."""
    return build_channel(tmp_path_factory.mktemp("rig-channel"))


@pytest.fixture(scope="session")
def rig_package_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package cache every installation of the session installs (hard-links) from."""
    return tmp_path_factory.mktemp("rig-pkgs")


@pytest.fixture(scope="session")
def rig_installation(
    tmp_path_factory: pytest.TempPathFactory, rig_channel: RigChannel, rig_package_cache: Path
) -> CondaInstallation:
    """A session-wide installation with the root and ``STANDARD_ENVS``. Read-only."""
    inst = CondaInstallation.create(
        tmp_path_factory.mktemp("rig-home"), rig_channel, rig_package_cache
    )
    populate_standard_envs(inst)
    return inst


@pytest.fixture(scope="session")
def channel_with_a_conda_dist_info(tmp_path_factory: pytest.TempPathFactory) -> RigChannel:
    """The rig's packages plus `condadist`, a noarch python package shipping a dist-info.

    A dist-info that a conda record owns must never be reported as pip-installed.
    """
    dist = "site-packages/condadist-1.0.dist-info"
    package = PackageDef(
        name="condadist",
        version="1.0",
        build="py_0",
        noarch="python",
        depends=("python",),
        files={
            "site-packages/condadist.py": "",
            f"{dist}/METADATA": "Metadata-Version: 2.1\nName: condadist\nVersion: 1.0\n",
            f"{dist}/INSTALLER": "conda\n",
        },
    )
    return build_channel(tmp_path_factory.mktemp("dist-channel"), [*default_packages(), package])


@pytest.fixture
def conda_installation_factory(
    tmp_path_factory: pytest.TempPathFactory, rig_channel: RigChannel, rig_package_cache: Path
) -> MakeInstallation:
    """Make fresh installations.

    Call as ``factory(channel=None, root_specs=ROOT_SPECS, standard_envs=False)``.

    With a ``channel`` of the test's own (one it may add packages to), a private package
    cache is used, so packages it rebuilds under an existing name cannot leak into others.
    """
    counter = itertools.count()

    def make(
        channel: RigChannel | None = None,
        root_specs: Sequence[str] = ROOT_SPECS,
        standard_envs: bool = False,
    ) -> CondaInstallation:
        n = next(counter)
        cache = rig_package_cache if channel is None else tmp_path_factory.mktemp(f"pkgs{n}")
        inst = CondaInstallation.create(
            tmp_path_factory.mktemp(f"home{n}"), channel or rig_channel, cache, root_specs
        )
        if standard_envs:
            populate_standard_envs(inst)
        return inst

    return make


@pytest.fixture
def conda_installation(conda_installation_factory: MakeInstallation) -> CondaInstallation:
    """A fresh installation (root prefix only) that the test may change at will."""
    return conda_installation_factory()


@pytest.fixture
def rig_environ(
    conda_installation: CondaInstallation, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Confine this process to ``conda_installation``'s HOME (``os.environ`` patched).

    Returns the environment dict, also usable as ``env=`` for subprocesses.
    """
    env = conda_installation.environ()
    for key in list(os.environ):
        if key not in env:
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


# --------------------------------------------------------------------------------------------
# multi-platform (lock tests)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def multi_platform_channel(tmp_path_factory: pytest.TempPathFactory) -> RigChannel:
    """The channel of :mod:`tests.rig.platforms` (linux-64, osx-64, osx-arm64, win-64, noarch),
    built once per test run. Do not add to it."""
    return build_multi_platform_channel(tmp_path_factory.mktemp("mp-channel"))


@pytest.fixture(scope="session")
def multi_platform_env(
    tmp_path_factory: pytest.TempPathFactory, multi_platform_channel: RigChannel
) -> MultiPlatformEnv:
    """``lockme`` (python, ipykernel, pkgdemo, libplat 1.1), created 2025-07-01, in an
    installation of its own over ``multi_platform_channel``. Kernel-capable. Read-only:
    restore into a ``conda_installation_factory(channel=multi_platform_channel)`` instead."""
    inst = CondaInstallation.create(
        tmp_path_factory.mktemp("mp-home"),
        multi_platform_channel,
        tmp_path_factory.mktemp("mp-pkgs"),
    )
    prefix = create_dated_env(inst, LOCKME_NAME, LOCKME_SPECS, LOCKME_CREATED)
    return MultiPlatformEnv(inst, LOCKME_NAME, prefix, LOCKME_SPECS, LOCKME_CREATED)
