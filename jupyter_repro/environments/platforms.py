"""Conda platforms (subdirs) and the virtual packages a solve for each assumes.

Solving for a platform other than this machine's needs that platform's virtual packages
(`__glibc`, `__osx`, `__win`, ...): packages depend on them, and without them the solver
refuses every compiled package. The versions are the conservative baselines conda-forge and
conda-lock assume, so a lock fits the machines people actually run.
"""

from __future__ import annotations

from functools import cache
from typing import Any

# name -> (version, build) per platform family; the architecture goes into __archspec.
_LINUX = (("__unix", "0", "0"), ("__linux", "5.10", "0"), ("__glibc", "2.28", "0"))
_OSX_64 = (("__unix", "0", "0"), ("__osx", "10.15", "0"))
_OSX_ARM = (("__unix", "0", "0"), ("__osx", "11.0", "0"))
_WIN = (("__win", "0", "0"),)
_ARCH = {
    "64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "arm64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "32": "x86",
}


def _family(platform: str) -> tuple[tuple[str, str, str], ...]:
    os_name, _, arch = platform.partition("-")
    if os_name == "linux":
        return _LINUX
    if os_name == "osx":
        return _OSX_ARM if arch == "arm64" else _OSX_64
    if os_name == "win":
        return _WIN
    raise ValueError(
        f"cannot lock for platform {platform!r}: expected linux-*, osx-* or win-* "
        "(for example linux-64, osx-arm64, win-64)"
    )


SUPPORTED_EXAMPLES = ("linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64")


def check_platform(platform: str) -> str:
    """`platform` when a lock can be made for it, else ValueError saying which can."""
    from .channels import is_subdir

    os_name, _, arch = platform.partition("-")
    if (
        not is_subdir(platform)
        or platform == "noarch"
        or os_name not in ("linux", "osx", "win")
        or arch not in _ARCH
    ):
        raise ValueError(
            f"cannot lock for platform {platform[:40]!r}: expected a conda platform such as "
            + ", ".join(SUPPORTED_EXAMPLES)
        )
    return platform


def virtual_package_specs(platform: str) -> list[str]:
    """`name=version=build` strings of the virtual packages assumed for `platform`."""
    arch = _ARCH.get(platform.partition("-")[2], platform.partition("-")[2])
    specs = [f"{name}={version}={build}" for name, version, build in _family(platform)]
    return [*specs, f"__archspec=1={arch}"]


@cache
def virtual_packages(platform: str) -> tuple[Any, ...]:
    """py-rattler `GenericVirtualPackage`s for `platform`; this machine's own when it is it."""
    from rattler import GenericVirtualPackage, PackageName, Version
    from rattler.package.build_string import BuildString

    out = []
    for spec in virtual_package_specs(platform):
        name, version, build = spec.split("=")
        out.append(GenericVirtualPackage(PackageName(name), Version(version), BuildString(build)))
    return tuple(out)
