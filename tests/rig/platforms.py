"""A multi-platform rig channel for lock tests: linux-64, osx-64, osx-arm64 and win-64.

The channel has one ``python`` per platform (linux-64's is the rig's real one, linked to
the host interpreter; the others are text stubs of the same version), a compiled-like
``libplat`` per platform in two versions, ``winonly`` (a dependency of win-64's libplat
only), ``plat2only`` (linux-64 and osx-64 only: unsolvable on osx-arm64 and win-64) and
the noarch ``ipykernel`` and ``pkgdemo`` (``libplat >=1.0``) shared by all.

Every record is stamped with a fixed time, also as its ``indexed_timestamp``:
``libplat 1.1`` on :data:`NEW_DATE`, everything else on or before :data:`OLD_DATE`. A solve
with ``exclude_newer=EXCLUDE_NEWER_CUTOFF`` (between the two) picks ``libplat 1.0``.

:func:`create_dated_env` installs an environment on this machine (linux-64) with a
``conda-meta/history`` dated at a fixed time (:data:`LOCKME_CREATED` for ``lockme``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.rig._aio import run_sync
from tests.rig.channel import (
    PYTHON_NAME,
    PYTHON_VERSION,
    PYTHON_XY,
    PackageDef,
    RigChannel,
    build_channel,
    ipykernel_package,
    python_package,
)
from tests.rig.installation import CondaInstallation, _install, dist_str, write_history_entry

LOCK_PLATFORMS = ("linux-64", "osx-64", "osx-arm64", "win-64")
HOST_PLATFORM = "linux-64"
"""The platform the rig's environments are installed for (where ``python`` is real)."""

_UTC = _dt.timezone.utc
OLD_DATE = _dt.datetime(2024, 1, 2, tzinfo=_UTC)
"""Build (and index) time of every package except ``libplat 1.1`` (python and ipykernel,
reused from the rig, are stamped 2024-01-01)."""
NEW_DATE = _dt.datetime(2025, 6, 1, tzinfo=_UTC)
"""Build (and index) time of ``libplat 1.1`` on every platform."""
EXCLUDE_NEWER_CUTOFF = _dt.datetime(2025, 1, 1, tzinfo=_UTC)
"""Between the two: ``exclude_newer`` at this time gives ``libplat 1.0``."""

# Dummy pythons: same version as the host's, a build string per platform.
PYTHON_BUILDS = {
    "linux-64": python_package().build,
    "osx-64": "rig_osx64_0",
    "osx-arm64": "rig_osxarm64_0",
    "win-64": "rig_win64_0",
}
PYTHON_DEPENDS = {
    "linux-64": (),
    "osx-64": ("__osx >=10.13",),
    "osx-arm64": ("__osx >=11.0",),
    "win-64": (),
}
"""As conda-forge's pythons do: the osx ones need the osx virtual package."""

LIBPLAT_NAME = "libplat"
LIBPLAT_VERSIONS = ("1.0", "1.1")
LIBPLAT_LATEST = LIBPLAT_VERSIONS[-1]
LIBPLAT_OLD = LIBPLAT_VERSIONS[0]
ARCH_BUILD = LIBPLAT_BUILD = "0"
"""Build string of libplat, winonly and plat2only, the same on every platform:
``libplat-1.1-0.conda`` is in four subdirs, with different contents (sha256/md5)."""
LIBPLAT_FILES = {
    "linux-64": "lib/libplat.so",
    "osx-64": "lib/libplat.dylib",
    "osx-arm64": "lib/libplat.dylib",
    "win-64": "Library/bin/libplat.dll",
}
"""Where each platform's libplat keeps its "library" (text: ``libplat <version> <platform>``)."""

WINONLY_NAME, WINONLY_VERSION = "winonly", "1.0"
LIBPLAT_DEPENDS = {p: (WINONLY_NAME,) if p == "win-64" else () for p in LOCK_PLATFORMS}
PLAT2ONLY_NAME, PLAT2ONLY_VERSION = "plat2only", "1.0"
PLAT2ONLY_PLATFORMS = ("linux-64", "osx-64")
PKGDEMO_NAME, PKGDEMO_VERSION = "pkgdemo", "1.0"
PKGDEMO_DEPENDS = ("libplat >=1.0",)

LOCKME_NAME = "lockme"
LOCKME_SPECS: tuple[str, ...] = ("python", "ipykernel", "pkgdemo", "libplat")
LOCKME_CREATED = _dt.datetime(2025, 7, 1, 12, 0, 0)
"""When ``lockme`` was created, as its history header says (``==> 2025-07-01 12:00:00 <==``,
local time as conda writes it)."""

_VIRTUAL = {
    "linux-64": (
        ("__unix", "0", "0"),
        ("__linux", "5.10", "0"),
        ("__glibc", "2.28", "0"),
        ("__archspec", "1", "x86_64"),
    ),
    "osx-64": (("__unix", "0", "0"), ("__osx", "10.15", "0"), ("__archspec", "1", "x86_64")),
    "osx-arm64": (("__unix", "0", "0"), ("__osx", "11.0", "0"), ("__archspec", "1", "arm64")),
    "win-64": (("__win", "0", "0"), ("__archspec", "1", "x86_64")),
}


def platform_virtual_packages(platform: str) -> list:
    """The virtual packages of a typical machine of ``platform`` (``GenericVirtualPackage`` s)."""
    from rattler import BuildString, GenericVirtualPackage, PackageName, Version

    try:
        spec = _VIRTUAL[platform]
    except KeyError:
        raise ValueError(f"not one of {LOCK_PLATFORMS}: {platform!r}") from None
    return [GenericVirtualPackage(PackageName(n), Version(v), BuildString(b)) for n, v, b in spec]


def _at(day: _dt.datetime, minutes: int) -> _dt.datetime:
    return day + _dt.timedelta(minutes=minutes)


def python_for(platform: str) -> PackageDef:
    """``python`` for ``platform``: the rig's real one on linux-64, else a text stub."""
    if platform == HOST_PLATFORM:
        return python_package()
    if platform == "win-64":
        files = {
            "python.exe": f"stub python {PYTHON_VERSION} for {platform}\n",
            "Lib/site-packages/README.txt": "site-packages\n",
        }
    else:
        files = {
            f"bin/python{PYTHON_XY}": f"#!/bin/sh\necho 'stub python {PYTHON_VERSION} for"
            f" {platform}'\nexit 1\n",
            f"lib/python{PYTHON_XY}/site-packages/README.txt": "site-packages\n",
        }
    return PackageDef(
        name=PYTHON_NAME,
        version=PYTHON_VERSION,
        build=PYTHON_BUILDS[platform],
        subdir=platform,
        noarch=None,
        depends=PYTHON_DEPENDS[platform],
        files=files,
        symlinks={} if platform == "win-64" else {"bin/python": f"python{PYTHON_XY}"},
        timestamp=_at(OLD_DATE, 0),
    )


def _arch_package(
    name: str, version: str, platform: str, rel: str, depends=(), timestamp=OLD_DATE
) -> PackageDef:
    return PackageDef(
        name=name,
        version=version,
        build=ARCH_BUILD,
        subdir=platform,
        noarch=None,
        depends=tuple(depends),
        files={rel: f"{name} {version} {platform}\n"},
        timestamp=timestamp,
    )


def multi_platform_packages() -> list[PackageDef]:
    """Every package of the multi-platform channel (see the module's docstring)."""
    packages: list[PackageDef] = []
    for platform in LOCK_PLATFORMS:
        packages.append(python_for(platform))
        for version in LIBPLAT_VERSIONS:
            pkg = _arch_package(
                LIBPLAT_NAME,
                version,
                platform,
                LIBPLAT_FILES[platform],
                LIBPLAT_DEPENDS[platform],
                NEW_DATE if version == LIBPLAT_LATEST else _at(OLD_DATE, 10),
            )
            packages.append(pkg)
    packages.append(
        _arch_package(
            WINONLY_NAME,
            WINONLY_VERSION,
            "win-64",
            "Library/bin/winonly.dll",
            timestamp=_at(OLD_DATE, 5),
        )
    )
    for platform in PLAT2ONLY_PLATFORMS:
        packages.append(
            _arch_package(
                PLAT2ONLY_NAME,
                PLAT2ONLY_VERSION,
                platform,
                f"share/{PLAT2ONLY_NAME}/{platform}.txt",
                timestamp=_at(OLD_DATE, 20),
            )
        )
    packages.append(ipykernel_package())
    packages.append(
        PackageDef(
            name=PKGDEMO_NAME,
            version=PKGDEMO_VERSION,
            build="0",
            depends=PKGDEMO_DEPENDS,
            files={f"share/{PKGDEMO_NAME}/README.txt": f"{PKGDEMO_NAME} {PKGDEMO_VERSION}\n"},
            timestamp=_at(OLD_DATE, 30),
        )
    )
    return packages


def build_multi_platform_channel(path: Path) -> RigChannel:
    """Build and index the channel at ``path``: repodata for every LOCK_PLATFORMS subdir and
    noarch, with ``indexed_timestamp`` = build time so ``exclude_newer`` works."""
    return build_channel(path, multi_platform_packages(), stamp_index_time=True)


async def solve_for_platform_async(
    channel: RigChannel,
    specs: Sequence[str],
    platform: str,
    exclude_newer: _dt.datetime | None = None,
    virtual_packages: Sequence | None = None,
) -> list:
    """Solve ``specs`` for ``platform`` (+ noarch) against ``channel`` only."""
    from rattler import Channel, Gateway, MatchSpec, solve

    return await solve(
        sources=[Channel(channel.url)],
        specs=[MatchSpec(s) for s in specs],
        gateway=Gateway(show_progress=False),
        platforms=[platform, "noarch"],
        virtual_packages=list(
            platform_virtual_packages(platform) if virtual_packages is None else virtual_packages
        ),
        exclude_newer=exclude_newer,
    )


def solve_for_platform(
    channel: RigChannel,
    specs: Sequence[str],
    platform: str,
    exclude_newer: _dt.datetime | None = None,
    virtual_packages: Sequence | None = None,
) -> list:
    """Synchronous :func:`solve_for_platform_async`; returns ``RepoDataRecord`` s."""
    return run_sync(
        solve_for_platform_async(channel, specs, platform, exclude_newer, virtual_packages)
    )


def create_dated_env(
    inst: CondaInstallation,
    name: str = LOCKME_NAME,
    specs: Sequence[str] = LOCKME_SPECS,
    created: _dt.datetime = LOCKME_CREATED,
    envs_dir: Path | None = None,
) -> Path:
    """``conda create -n name specs...`` in ``inst`` as of ``created``; returns the prefix.

    Like :meth:`CondaInstallation.create_env` (solve for this machine, install, register)
    but the history entry is dated ``created`` (naive = local time, as conda writes it).
    """
    prefix = inst.env_prefix(name, envs_dir)
    if prefix.exists():
        raise FileExistsError(f"environment {name!r} already exists at {prefix}")
    specs = list(specs)
    records = inst.channel.solve(specs)
    run_sync(_install(records, prefix, inst.package_cache, specs))
    write_history_entry(
        prefix,
        cmd=" ".join([f"conda create -n {name}", *specs]),
        added=[dist_str(r) for r in records],
        update_specs=specs,
        when=created.timestamp(),
    )
    inst.envs[name] = prefix
    inst.register(prefix)
    return prefix


@dataclass(frozen=True)
class MultiPlatformEnv:
    """An environment installed on this machine from the multi-platform channel."""

    installation: CondaInstallation
    name: str
    prefix: Path
    specs: tuple[str, ...]
    created: _dt.datetime
    """The date of its history entry (naive: local time, as conda writes it)."""
