"""Tests of the rig's multi-platform channel and the ``lockme`` environment (for lock tests)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.rig import platforms as P
from tests.rig.channel import PYTHON_VERSION, RigChannel
from tests.rig.installation import read_history, requested_specs
from tests.rig.platforms import MultiPlatformEnv, solve_for_platform


def by_name(records: list) -> dict:
    return {r.name.normalized: r for r in records}


def test_repodata_for_every_subdir(multi_platform_channel: RigChannel) -> None:
    assert multi_platform_channel.subdirs() == sorted([*P.LOCK_PLATFORMS, "noarch"])
    noarch = multi_platform_channel.repodata("noarch")["packages.conda"]
    assert {r["name"] for r in noarch.values()} == {"ipykernel", P.PKGDEMO_NAME}
    expected = {
        "linux-64": {"python", "libplat", "plat2only"},
        "osx-64": {"python", "libplat", "plat2only"},
        "osx-arm64": {"python", "libplat"},
        "win-64": {"python", "libplat", "winonly"},
    }
    shas = set()
    for sub, names in expected.items():
        recs = multi_platform_channel.repodata(sub)["packages.conda"]
        assert {r["name"] for r in recs.values()} == names
        assert all(r["subdir"] == sub and "noarch" not in r for r in recs.values())
        for v in P.LIBPLAT_VERSIONS:
            rec = recs[f"libplat-{v}-{P.LIBPLAT_BUILD}.conda"]
            assert rec["depends"] == list(P.LIBPLAT_DEPENDS[sub])
            shas.add(rec["sha256"])
        py = next(r for r in recs.values() if r["name"] == "python")
        assert (py["version"], py["build"]) == (PYTHON_VERSION, P.PYTHON_BUILDS[sub])
        for rec in recs.values():
            assert rec["indexed_timestamp"] == rec["timestamp"]
            if rec["name"] == "libplat" and rec["version"] == P.LIBPLAT_LATEST:
                assert rec["timestamp"] == P.NEW_DATE.timestamp() * 1000
            else:
                assert rec["timestamp"] < P.EXCLUDE_NEWER_CUTOFF.timestamp() * 1000
    assert len(shas) == 2 * len(P.LOCK_PLATFORMS)  # different content per platform


@pytest.mark.parametrize("platform", P.LOCK_PLATFORMS)
def test_solve_per_platform(multi_platform_channel: RigChannel, platform: str) -> None:
    recs = by_name(solve_for_platform(multi_platform_channel, P.LOCKME_SPECS, platform))
    expected = {"python", "ipykernel", "pkgdemo", "libplat"}
    if platform == "win-64":
        expected.add(P.WINONLY_NAME)
    assert set(recs) == expected
    assert recs["libplat"].subdir == platform
    assert str(recs["libplat"].version) == P.LIBPLAT_LATEST
    assert recs["libplat"].url.endswith(f"/{platform}/libplat-1.1-0.conda")
    assert (recs["python"].subdir, str(recs["python"].build)) == (
        platform,
        P.PYTHON_BUILDS[platform],
    )
    assert recs["pkgdemo"].subdir == recs["ipykernel"].subdir == "noarch"


def test_pkgdemo_alone_pulls_the_platforms_libplat(multi_platform_channel: RigChannel) -> None:
    for platform in P.LOCK_PLATFORMS:
        recs = by_name(solve_for_platform(multi_platform_channel, ["pkgdemo"], platform))
        assert recs["libplat"].subdir == platform
        assert (P.WINONLY_NAME in recs) == (platform == "win-64")


def test_unsolvable_per_platform(multi_platform_channel: RigChannel) -> None:
    from rattler.exceptions import SolverError

    for platform in P.PLAT2ONLY_PLATFORMS:
        recs = by_name(solve_for_platform(multi_platform_channel, ["plat2only"], platform))
        assert recs["plat2only"].subdir == platform
    for platform in ("osx-arm64", "win-64"):
        with pytest.raises(SolverError, match="plat2only"):
            solve_for_platform(multi_platform_channel, ["plat2only", "python"], platform)
    # The osx pythons need __osx: without the platform's virtual packages there is no solve.
    with pytest.raises(SolverError):
        solve_for_platform(multi_platform_channel, ["python"], "osx-arm64", virtual_packages=[])


def test_exclude_newer_picks_the_older_libplat(multi_platform_channel: RigChannel) -> None:
    for platform in ("osx-arm64", "linux-64"):
        old = by_name(
            solve_for_platform(
                multi_platform_channel,
                ["pkgdemo", "libplat"],
                platform,
                exclude_newer=P.EXCLUDE_NEWER_CUTOFF,
            )
        )
        assert str(old["libplat"].version) == P.LIBPLAT_OLD
        assert old["libplat"].subdir == platform
        new = by_name(solve_for_platform(multi_platform_channel, ["pkgdemo"], platform))
        assert str(new["libplat"].version) == P.LIBPLAT_LATEST


def test_platform_virtual_packages() -> None:
    names = {
        p: {str(v).split("=")[0] for v in P.platform_virtual_packages(p)} for p in P.LOCK_PLATFORMS
    }
    assert names["linux-64"] == {"__unix", "__linux", "__glibc", "__archspec"}
    assert names["win-64"] == {"__win", "__archspec"}
    arm = {v.name.normalized: v for v in P.platform_virtual_packages("osx-arm64")}
    assert (str(arm["__osx"].version), str(arm["__archspec"].build_string)) == ("11.0", "arm64")
    with pytest.raises(ValueError, match="linux-aarch64"):
        P.platform_virtual_packages("linux-aarch64")


def test_lockme_env(multi_platform_env: MultiPlatformEnv) -> None:
    env = multi_platform_env
    prefix = env.prefix
    assert prefix == env.installation.envs[P.LOCKME_NAME] == env.installation.env_prefix("lockme")
    assert prefix in env.installation.registered()
    recs = {}
    for path in (prefix / "conda-meta").glob("*.json"):
        rec = json.loads(path.read_text())
        recs[rec["name"]] = rec
        for key in ("url", "sha256", "md5", "size", "channel", "subdir"):
            assert rec.get(key), (path.name, key)
        assert rec["url"].startswith(env.installation.channel.url + "/")
    assert set(recs) == {"python", "ipykernel", "pkgdemo", "libplat"}
    assert recs["libplat"]["version"] == P.LIBPLAT_LATEST
    assert recs["libplat"]["subdir"] == "linux-64"
    assert (prefix / "lib" / "libplat.so").read_text() == "libplat 1.1 linux-64\n"
    (entry,) = read_history(prefix)
    assert entry.date == "2025-07-01 12:00:00"
    assert entry.cmd == "conda create -n lockme python ipykernel pkgdemo libplat"
    assert len(entry.added) == 4
    assert requested_specs(prefix) == {s: s for s in P.LOCKME_SPECS}

    out = subprocess.run(
        [
            str(prefix / "bin" / "python"),
            "-c",
            "import importlib.util, sys; print(sys.prefix);"
            " print(importlib.util.find_spec('ipykernel') is not None)",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env.installation.environ(),
        timeout=30,
    )
    assert out.stdout.splitlines() == [str(prefix), "True"]
    kernel = prefix / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    assert json.loads(kernel.read_text())["argv"][:3] == ["python", "-m", "ipykernel_launcher"]
