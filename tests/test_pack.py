"""Packing real rig environments into capsules: the lock (a notebook's, or made on the fly),
every archive of each platform asked for, the wheels of the pip section, what cannot be packed
listed and never dropped; and `jupyter repro pack` on the command line."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from jupyter_repro.cli import main
from jupyter_repro.environments.pkgs_dirs import conda_pkgs_dirs
from jupyter_repro.specs.capsule import extract_capsule, read_manifest
from jupyter_repro.specs.lock import Lock, embedded_lock
from jupyter_repro.specs.locking import LockOptions, lock_environment
from jupyter_repro.specs.pack import PackError, PackRequest, pack, plan_pack
from jupyter_repro.specs.pip_lock import PipIndex, uv_binary
from tests.rig.installation import CondaInstallation
from tests.rig.platforms import MultiPlatformEnv, create_dated_env
from tests.test_pip_lock import sha256_of, write_wheel

LINUX_TAG = "py3-none-manylinux_2_17_x86_64"
WINDOWS_TAG = "py3-none-win_amd64"
TWO = ("linux-64", "osx-arm64")


def run(coroutine):
    return asyncio.run(coroutine)


def only(lock: Lock, platforms) -> Lock:
    return dataclasses.replace(
        lock, platforms=tuple(p for p in lock.platforms if p.platform in platforms)
    )


def write_notebook(path: Path, lock: Lock | None = None, kernel: str | None = None) -> Path:
    metadata: dict = {}
    if lock is not None:
        metadata["jupyter_repro"] = {"lock": embedded_lock(lock)}
    if kernel is not None:
        metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "id": "a",
                "metadata": {},
                "source": "1 + 1",
                "outputs": [],
                "execution_count": None,
            }
        ],
        "metadata": metadata,
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1) + "\n")
    return path


@pytest.fixture(scope="module")
def lockme_two(multi_platform_env: MultiPlatformEnv, tmp_path_factory) -> tuple[Path, Lock]:
    """`lockme` packed for linux-64 and osx-arm64 (locked on the fly): the capsule and the
    lock it was made from, for the tests that only read them."""
    out = tmp_path_factory.mktemp("packed") / "lockme.capsule.tar.zst"
    request = PackRequest(prefix=multi_platform_env.prefix, name="lockme", platforms=TWO)
    phases: list[str] = []
    result = run(pack(request, out, progress=lambda phase, _d, _t: phases.append(phase)))
    assert result.plan.lock_source == "locked"
    assert phases[0] == "lock"
    assert phases[-1] == "write"
    assert "fetch" in phases
    return out, result.plan.lock


# -- what a capsule holds ----------------------------------------------------------------------


def test_a_capsule_for_two_platforms_holds_both_subdirs_and_noarch_once(
    lockme_two, multi_platform_env, multi_platform_channel, tmp_path
):
    capsule, lock = lockme_two
    manifest = read_manifest(capsule)

    assert manifest.platforms == TWO
    assert manifest.name == "lockme"
    assert manifest.missing == ()
    paths = sorted({c.path for c in manifest.conda})
    subdirs = {path.split("/")[1] for path in paths}
    assert subdirs == {"linux-64", "osx-arm64", "noarch"}
    assert "pkgs/noarch/ipykernel" in " ".join(paths)
    assert len(paths) == len(set(paths))
    # every package of both platforms, each archive once: noarch ones are shared
    per_platform = {p: {c.path for c in manifest.conda if c.platform == p} for p in TWO}
    assert per_platform["linux-64"] & per_platform["osx-arm64"] == {
        p for p in paths if p.startswith("pkgs/noarch/")
    }
    for part in lock.platforms:
        assert len(per_platform[part.platform]) == len(part.conda)

    extracted = extract_capsule(capsule, tmp_path / "out")
    assert extracted.lock.digest() == manifest.lock_digest == lock.digest()
    for part in extracted.lock.platforms:
        for package in part.conda:
            channel_file = multi_platform_channel.path / package.subdir / package.filename
            assert extracted.conda_paths[package.url].read_bytes() == channel_file.read_bytes()
    # this machine's platform is what is installed, exactly
    installed = {
        json.loads(p.read_text())["url"]
        for p in (multi_platform_env.prefix / "conda-meta").glob("*.json")
    }
    assert {p.url for p in extracted.lock.platform("linux-64").conda} == installed


def test_packing_again_gives_the_same_bytes(lockme_two, multi_platform_env, tmp_path):
    capsule, _lock = lockme_two
    again = tmp_path / "again.capsule.tar.zst"

    run(pack(PackRequest(prefix=multi_platform_env.prefix, name="lockme", platforms=TWO), again))

    assert again.read_bytes() == capsule.read_bytes()


def test_a_notebook_with_an_embedded_lock_is_packed_with_it_without_relocking(
    lockme_two, tmp_path, monkeypatch
):
    _capsule, lock = lockme_two
    notebook = write_notebook(tmp_path / "analysis.ipynb", lock)

    async def no_lock(*_args, **_kwargs):
        raise AssertionError("the embedded lock covers the platform: nothing is locked")

    monkeypatch.setattr("jupyter_repro.specs.pack.lock_environment", no_lock)
    out = tmp_path / "nb.capsule.tar.zst"
    request = PackRequest(notebooks=(notebook,), platforms=("osx-arm64",))

    result = run(pack(request, out))

    assert result.plan.lock_source == "notebook"
    manifest = read_manifest(out)
    assert manifest.platforms == ("osx-arm64",)
    assert manifest.lock_digest == only(lock, ("osx-arm64",)).digest()
    assert manifest.notebooks == ("notebooks/analysis.ipynb",)
    extracted = extract_capsule(out, tmp_path / "x")
    assert extracted.notebooks[0].read_bytes() == notebook.read_bytes()

    # a platform the embedded lock lacks, and no environment to lock: said, not guessed
    with pytest.raises(
        PackError, match="the notebook's lock is for linux-64, osx-arm64, not win-64"
    ):
        run(plan_pack(PackRequest(notebooks=(notebook,), platforms=("win-64",))))
    # notebooks with different locks cannot share a capsule
    other = write_notebook(tmp_path / "other.ipynb", only(lock, ("linux-64",)))
    with pytest.raises(PackError, match="the notebooks carry different locks"):
        run(plan_pack(PackRequest(notebooks=(notebook, other), platforms=("linux-64",))))


def test_a_notebook_whose_lock_lacks_a_platform_is_relocked_from_its_environment(
    lockme_two, multi_platform_env, tmp_path
):
    _capsule, lock = lockme_two
    notebook = write_notebook(tmp_path / "analysis.ipynb", only(lock, ("linux-64",)))
    request = PackRequest(
        notebooks=(notebook,), prefix=multi_platform_env.prefix, platforms=("osx-arm64",)
    )

    plan = run(plan_pack(request))

    assert plan.lock_source == "locked"
    assert plan.platforms == ("osx-arm64",)


def test_an_archive_no_longer_in_its_channel_is_listed_as_missing(lockme_two, tmp_path):
    _capsule, lock = lockme_two
    part = lock.platform("osx-arm64")
    gone = next(p for p in part.conda if p.name == "libplat")
    nowhere = tmp_path / "nowhere"
    moved = dataclasses.replace(
        gone, url=(nowhere / "osx-arm64" / gone.filename).as_uri(), channel=nowhere.as_uri()
    )
    changed = dataclasses.replace(
        lock,
        platforms=tuple(
            dataclasses.replace(p, conda=tuple(moved if c == gone else c for c in p.conda))
            if p.platform == "osx-arm64"
            else p
            for p in lock.platforms
        ),
    )
    out = tmp_path / "x.capsule.tar.zst"

    plan = run(plan_pack(PackRequest(lock=changed, platforms=TWO)))
    assert [(m.platform, m.name) for m in plan.missing] == [("osx-arm64", "libplat")]
    assert "does not exist any more" in plan.missing[0].why

    run(pack(PackRequest(lock=changed, platforms=TWO), out, plan=plan))
    manifest = read_manifest(out)  # consistent: the lock's libplat is listed as missing
    assert [(m.platform, m.name) for m in manifest.missing] == [("osx-arm64", "libplat")]
    assert "pkgs/osx-arm64/" + gone.filename not in {c.path for c in manifest.conda}


def test_a_cached_archive_is_used_only_when_it_matches_the_lock(lockme_two, tmp_path):
    _capsule, lock = lockme_two
    lock = only(lock, ("linux-64",))
    part = lock.platforms[0]
    package = next(p for p in part.conda if p.name == "pkgdemo")
    channel_file = Path(package.url.removeprefix("file://"))
    remote = dataclasses.replace(
        package,
        url="https://conda.invalid/rig/noarch/" + package.filename,
        channel="https://conda.invalid/rig",
    )
    remote_lock = dataclasses.replace(
        lock,
        platforms=(
            dataclasses.replace(
                part, conda=tuple(remote if p == package else p for p in part.conda)
            ),
        ),
    )
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    shutil.copy(channel_file, good / package.filename)
    data = bytearray(channel_file.read_bytes())
    data[-1] ^= 1
    (bad / package.filename).write_bytes(bytes(data))

    request = PackRequest(lock=remote_lock, package_dirs=(bad, good), platforms=("linux-64",))
    plan = run(plan_pack(request))
    item = next(f for f in plan.files if f.name == "pkgdemo")
    assert item.source == "cache"
    out = tmp_path / "cached.capsule.tar.zst"
    run(pack(request, out, plan=plan))  # no download: the good copy is found, the bad skipped
    extracted = extract_capsule(out, tmp_path / "x")
    assert extracted.conda_paths[remote.url].read_bytes() == channel_file.read_bytes()

    # a changed archive in a file:// channel is refused, and no capsule is left
    (bad / "noarch").mkdir()
    (bad / package.filename).rename(bad / "noarch" / package.filename)
    local = dataclasses.replace(
        package, url=(bad / "noarch" / package.filename).as_uri(), channel=bad.as_uri()
    )
    tampered = dataclasses.replace(
        lock,
        platforms=(
            dataclasses.replace(
                part, conda=tuple(local if p == package else p for p in part.conda)
            ),
        ),
    )
    target = tmp_path / "tampered.capsule.tar.zst"
    with pytest.raises(PackError, match=f"{package.filename} does not match the lock"):
        run(pack(PackRequest(lock=tampered, platforms=("linux-64",)), target))
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_pack_stopped_or_cancelled_while_writing_leaves_nothing(lockme_two, tmp_path):
    _capsule, lock = lockme_two
    folder = tmp_path / "out"
    folder.mkdir()
    request = PackRequest(lock=lock, platforms=TWO)

    class Stop(Exception):
        pass

    def stop(phase: str, done: int, _total: int) -> None:
        if phase == "write" and done == 2:
            raise Stop

    with pytest.raises(Stop):
        run(pack(request, folder / "x.capsule.tar.zst", progress=stop))
    assert list(folder.iterdir()) == []

    async def cancelled() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def cancel(phase: str, done: int, _total: int) -> None:
            if phase == "write" and done == 2:  # in the writing thread
                loop.call_soon_threadsafe(task.cancel)
                time.sleep(0.2)

        await pack(request, folder / "y.capsule.tar.zst", progress=cancel)

    with pytest.raises(asyncio.CancelledError):
        run(cancelled())
    assert list(folder.iterdir()) == []


# -- pip ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    write_wheel(folder, "alpha", "1.0", requires=["beta>=1"])
    write_wheel(folder, "beta", "1.0")
    write_wheel(folder, "gamma", "1.0", tag=LINUX_TAG, payload="WHERE = 'linux'\n")
    write_wheel(folder, "gamma", "1.0", tag=WINDOWS_TAG, payload="WHERE = 'windows'\n")
    return folder


@pytest.fixture(scope="module")
def env_with_pip(tmp_path_factory, multi_platform_channel, wheels) -> Path:
    """A dated environment with wheels pip-installed from a local folder (alpha, beta, gamma)
    and an editable install (`devpkg`) and a local one (`localpkg`) beside them."""
    installation = CondaInstallation.create(
        tmp_path_factory.mktemp("pip-home"),
        multi_platform_channel,
        tmp_path_factory.mktemp("pip-pkgs"),
    )
    prefix = create_dated_env(installation, name="withpip")
    uv = uv_binary()
    assert uv is not None
    home = tmp_path_factory.mktemp("uv-home")
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--python",
            str(prefix / "bin" / "python"),
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
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "UV_CACHE_DIR": str(home / "uv")},
    )
    site = next((prefix / "lib").glob("python*/site-packages"))
    for name, origin in (
        ("devpkg", {"url": "file:///src/devpkg", "dir_info": {"editable": True}}),
        ("localpkg", {"url": "file:///src/localpkg", "dir_info": {}}),
    ):
        dist_info = site / f"{name}-0.1.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (dist_info / "direct_url.json").write_text(json.dumps(origin))
    return prefix


def test_pip_wheels_are_packed_per_platform_and_local_installs_listed(
    env_with_pip, wheels, tmp_path
):
    request = PackRequest(
        prefix=env_with_pip,
        name="withpip",
        platforms=("linux-64", "win-64"),
        pip_index=PipIndex(find_links=(str(wheels),), no_index=True),
        environ={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "UV_CACHE_DIR": str(tmp_path)},
    )
    plan = run(plan_pack(request))
    missing = {(m.platform, m.name): m.why for m in plan.missing}
    assert set(missing) == {(p, n) for p in ("linux-64", "win-64") for n in ("devpkg", "localpkg")}
    assert "editable install" in missing[("win-64", "devpkg")]
    assert "local folder or file" in missing[("linux-64", "localpkg")]

    out = tmp_path / "withpip.capsule.tar.zst"
    result = run(pack(request, out, plan=plan))

    manifest = read_manifest(out)
    assert manifest == result.manifest
    by_platform = {
        p: {w.name: w.path for w in manifest.pypi if w.platform == p}
        for p in ("linux-64", "win-64")
    }
    assert by_platform["linux-64"] == {
        "alpha": "wheels/alpha-1.0-py3-none-any.whl",
        "beta": "wheels/beta-1.0-py3-none-any.whl",
        "gamma": f"wheels/gamma-1.0-{LINUX_TAG}.whl",
    }
    assert by_platform["win-64"]["gamma"] == f"wheels/gamma-1.0-{WINDOWS_TAG}.whl"
    assert {(m.platform, m.name) for m in manifest.missing} == set(missing)
    extracted = extract_capsule(out, tmp_path / "x")
    assert sorted(p.name for p in extracted.wheels_dir.iterdir()) == [
        "alpha-1.0-py3-none-any.whl",
        "beta-1.0-py3-none-any.whl",
        f"gamma-1.0-{LINUX_TAG}.whl",
        f"gamma-1.0-{WINDOWS_TAG}.whl",
    ]
    wheel = extracted.wheel_paths[("win-64", "gamma")]
    assert sha256_of(wheel) == sha256_of(wheels / f"gamma-1.0-{WINDOWS_TAG}.whl")


def test_a_pip_package_without_a_wheel_in_the_lock_is_listed_as_missing(lockme_two, tmp_path):
    from jupyter_repro.specs.pip_lock import LockedPypi

    _capsule, lock = lockme_two
    part = lock.platform("linux-64")
    pypi = (
        LockedPypi("fromgit", "1.0", "git+https://example.org/fromgit@abc", None),
        LockedPypi("sdistonly", "2.0", "https://example.org/sdistonly-2.0.tar.gz", "a" * 64),
    )
    with_pip = dataclasses.replace(lock, platforms=(dataclasses.replace(part, pypi=pypi),))

    plan = run(plan_pack(PackRequest(lock=with_pip, platforms=("linux-64",))))

    why = {m.name: m.why for m in plan.missing}
    assert "names no file and sha256" in why["fromgit"]
    assert "only a source distribution" in why["sdistonly"]
    out = tmp_path / "x.capsule.tar.zst"
    run(pack(PackRequest(lock=with_pip, platforms=("linux-64",)), out, plan=plan))
    assert {m.name for m in read_manifest(out).missing} == {"fromgit", "sdistonly"}


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def lockme_environ(multi_platform_env: MultiPlatformEnv, monkeypatch) -> dict[str, str]:
    env = multi_platform_env.installation.environ()
    for key in list(os.environ):
        if key not in env:
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_cli_packs_an_environment_and_prints_a_summary(lockme_environ, tmp_path, capsys):
    out = tmp_path / "x.capsule.tar.zst"

    status = main(["pack", "--env", "lockme", "--platform", "linux-64", "-o", str(out)])

    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"wrote {out} for linux-64: " in captured.out
    assert "conda archives, 0 wheels, 0 notebook(s)" in captured.out
    assert " KB (packages and files: " in captured.out
    assert "fetch" in captured.err
    assert "write" in captured.err
    assert read_manifest(out).platforms == ("linux-64",)
    assert [p.name for p in tmp_path.iterdir()] == ["x.capsule.tar.zst"]

    # the same output again: refused without --force, replaced with it
    assert main(["pack", "--env", "lockme", "-o", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["pack", "--env", "lockme", "-o", str(out), "--force"]) == 0


def test_cli_dry_run_and_default_output_name(lockme_environ, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert main(["pack", "--env", "lockme", "--dry-run", "--platform", "osx-arm64"]) == 0
    out = capsys.readouterr().out
    assert "would write lockme.capsule.tar.zst for osx-arm64 from a lock made now" in out
    assert "libplat" in out
    assert "osx-arm64" in out
    assert "file" in out
    assert list(tmp_path.iterdir()) == []

    assert main(["pack", "--env", "lockme"]) == 0
    assert (tmp_path / "lockme.capsule.tar.zst").is_file()


def test_cli_packs_a_notebook_with_its_lock(lockme_two, tmp_path, capsys, monkeypatch):
    _capsule, lock = lockme_two
    notebook = write_notebook(tmp_path / "analysis.ipynb", lock)
    monkeypatch.chdir(tmp_path)

    status = main(["pack", str(notebook), "--platform", "linux-64", "--platform", "osx-arm64"])

    assert status == 0, capsys.readouterr().err
    manifest = read_manifest(tmp_path / "lockme.capsule.tar.zst")
    assert manifest.notebooks == ("notebooks/analysis.ipynb",)
    assert manifest.lock_digest == lock.digest()


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        ([], 2, "give NOTEBOOK..., --env NAME or --prefix PATH"),
        (["--env", "lockme", "--platform", "osx-arm"], 2, "cannot pack for platform 'osx-arm'"),
        (["DIR:notes.txt"], 2, "is not a notebook (.ipynb)"),
        (["DIR:absent.ipynb"], 1, "no such notebook"),
        (["--env", "lockmee"], 1, "no environment named 'lockmee'; did you mean 'lockme'"),
        (["--env", "lockme", "-o", "DIR:missing/x.capsule.tar.zst"], 1, "does not exist"),
        (["NOLOCK"], 1, "the notebook has no embedded lock and a lock cannot be made"),
        (["--prefix", "DIR:plain"], 1, "is not a conda environment"),
    ],
)
def test_cli_errors(lockme_environ, tmp_path, capsys, args, status, message):
    (tmp_path / "plain").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    resolved = []
    for arg in args:
        if arg.startswith("DIR:"):
            resolved.append(str(tmp_path / arg[4:]))
        elif arg == "NOLOCK":
            resolved.append(str(write_notebook(tmp_path / "nolock.ipynb")))
        else:
            resolved.append(arg)

    assert main(["pack", *resolved]) == status

    captured = capsys.readouterr()
    assert message in captured.err
    assert "jupyter repro pack: error: " in captured.err
    assert not [p for p in tmp_path.iterdir() if "capsule" in p.name]


def test_lock_options_are_passed_when_locking(multi_platform_env):
    """The lock made while packing is the one `jupyter repro lock` makes."""
    plan = run(plan_pack(PackRequest(prefix=multi_platform_env.prefix, platforms=("win-64",))))
    expected = run(lock_environment(multi_platform_env.prefix, LockOptions(platforms=("win-64",))))
    assert plan.lock.digest() == expected.lock.digest()


# -- conda's package folders --------------------------------------------------------------------


def test_conda_pkgs_dirs_follow_condas_order(tmp_path):
    root = tmp_path / "miniconda3"
    prefix = root / "envs" / "work"
    for folder in (prefix, root / "pkgs", tmp_path / "home" / ".conda" / "pkgs", tmp_path / "p"):
        folder.mkdir(parents=True)
    environ = {"CONDA_PKGS_DIRS": f" {tmp_path / 'p'} ,{tmp_path / 'absent'}"}

    found = conda_pkgs_dirs(prefix, environ=environ, home=tmp_path / "home")

    assert found == (tmp_path / "p", root / "pkgs", tmp_path / "home" / ".conda" / "pkgs")
    # A base environment is its own installation.
    assert conda_pkgs_dirs(root, environ={}, home=tmp_path / "none") == (root / "pkgs",)


def test_cli_packs_from_the_archives_conda_kept_when_the_channel_is_unreachable(
    multi_platform_env: MultiPlatformEnv, tmp_path, capsys, monkeypatch
):
    """An environment whose channel cannot be reached (its records name an address nothing
    answers), with the archives conda kept in `<root>/pkgs`: packed from there, each checked."""
    root = tmp_path / "miniconda3"
    prefix = root / "envs" / "offline"
    shutil.copytree(multi_platform_env.prefix, prefix, symlinks=True)
    pkgs = root / "pkgs"
    pkgs.mkdir()
    for record in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(record.read_text())
        source = Path(data["url"].removeprefix("file://"))
        shutil.copy(source, pkgs / data["fn"])
        data["url"] = "http://127.0.0.1:9/unreachable/" + data["url"].rsplit("/", 2)[-2] + "/"
        data["url"] += data["fn"]
        data["channel"] = "http://127.0.0.1:9/unreachable"
        record.write_text(json.dumps(data))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = tmp_path / "offline.capsule.tar.zst"

    status = main(["pack", "--prefix", str(prefix), "--platform", "linux-64", "-o", str(out)])

    captured = capsys.readouterr()
    assert status == 0, captured.err
    manifest = read_manifest(out)
    assert manifest.missing == ()
    assert len(manifest.conda) == len(list(pkgs.iterdir()))
    assert all(c.url.startswith("http://127.0.0.1:9/unreachable/") for c in manifest.conda)


def test_conda_pkgs_dirs_read_condarc_and_the_installation_that_made_the_environment(
    tmp_path,
):
    """Clusters move the package cache with `pkgs_dirs:` in a condarc; `conda create -p`
    puts an environment anywhere, its history naming the conda (and so the installation)
    that made it."""
    home = tmp_path / "home"
    root = tmp_path / "opt" / "miniforge3"
    scratch = tmp_path / "scratch" / "pkgs"
    prefix = tmp_path / "projects" / "study" / "env"
    for folder in (home, root / "pkgs", scratch, prefix / "conda-meta"):
        folder.mkdir(parents=True)
    (home / ".condarc").write_text(f"channels: [conda-forge]\npkgs_dirs:\n  - {scratch}\n")
    (prefix / "conda-meta" / "history").write_text(
        f"==> 2024-05-01 10:00:00 <==\n# cmd: {root}/bin/conda create -p {prefix} python\n"
    )

    found = conda_pkgs_dirs(prefix, environ={"HOME": str(home)}, home=home)

    assert found == (scratch, root / "pkgs")


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_pack_stopped_while_it_downloads_leaves_nothing_behind(
    multi_platform_env: MultiPlatformEnv, tmp_path, stop
):
    """A channel that takes the connection and never answers; the pack is stopped (a batch
    scheduler's SIGTERM, Ctrl-C): a message, no traceback, nothing left in the output folder."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(50)
    port = hole.getsockname()[1]
    prefix = tmp_path / "miniconda3" / "envs" / "stuck"
    shutil.copytree(multi_platform_env.prefix, prefix, symlinks=True)
    for record in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(record.read_text())
        subdir = data["url"].rsplit("/", 2)[-2]
        data["url"] = f"http://127.0.0.1:{port}/ch/{subdir}/{data['fn']}"
        data["channel"] = f"http://127.0.0.1:{port}/ch"
        record.write_text(json.dumps(data))
    out = tmp_path / "out"
    out.mkdir()
    program = Path(sys.executable).parent / "jupyter-repro"
    environ = {**os.environ, "HOME": str(tmp_path / "home")}
    argv = [str(program), "pack", "--prefix", str(prefix), "--platform", "linux-64"]
    argv += ["-o", str(out / "x.capsule.tar.zst")]
    try:
        process = subprocess.Popen(
            argv, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(out.iterdir()):
            time.sleep(0.05)  # the pack's work folder appears: it is downloading
        time.sleep(0.5)
        process.send_signal(getattr(signal, stop))
        _, err = process.communicate(timeout=60)
    finally:
        hole.close()

    assert process.returncode == 128 + int(getattr(signal, stop)), err
    assert "nothing was written" in err
    assert "Traceback" not in err
    assert list(out.iterdir()) == []


def test_offline_without_a_kept_archive_the_error_says_none_was_found(
    multi_platform_env: MultiPlatformEnv, tmp_path, capsys, monkeypatch
):
    """After `conda clean --tarballs`: the download is the last resort, and when it fails
    the message says no package folder had the archive."""
    root = tmp_path / "miniconda3"
    prefix = root / "envs" / "cleaned"
    shutil.copytree(multi_platform_env.prefix, prefix, symlinks=True)
    (root / "pkgs").mkdir()
    for record in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(record.read_text())
        subdir = data["url"].rsplit("/", 2)[-2]
        data["url"] = f"http://127.0.0.1:9/unreachable/{subdir}/{data['fn']}"
        data["channel"] = "http://127.0.0.1:9/unreachable"
        record.write_text(json.dumps(data))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = tmp_path / "x.capsule.tar.zst"

    status = main(["pack", "--prefix", str(prefix), "--platform", "linux-64", "-o", str(out)])

    err = capsys.readouterr().err
    assert status == 1
    assert "cannot download http://127.0.0.1:9/unreachable/" in err
    assert "package folders (pkgs_dirs) hold no copy of it" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("données", "données.capsule.tar.zst"),
        ("数据", "数据.capsule.tar.zst"),
        ("my env", "my_env.capsule.tar.zst"),
        ("../up", "up.capsule.tar.zst"),
        ("\u202eevil", "evil.capsule.tar.zst"),
    ],
)
def test_the_default_capsule_name_keeps_letters_of_any_script(name, file):
    from jupyter_repro.specs.pack import default_capsule_name

    assert default_capsule_name(PackRequest(name=name)) == file


def test_a_private_channels_archives_are_fetched_with_the_records_credentials(
    multi_platform_env: MultiPlatformEnv, tmp_path, capsys, monkeypatch
):
    """conda writes a token channel's URL with its token; the lock never has it. Archives the
    package folders lack are downloaded from the record's own URL, token and all, and the
    capsule still names the channel without it."""
    from tests.rig.served import ServedChannel

    prefix = tmp_path / "miniconda3" / "envs" / "private"
    shutil.copytree(multi_platform_env.prefix, prefix, symlinks=True)
    records = list((prefix / "conda-meta").glob("*.json"))
    first = json.loads(records[0].read_text())["url"]
    channel_folder = Path(first.removeprefix("file://")).parent.parent
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = tmp_path / "x.capsule.tar.zst"
    with ServedChannel(channel_folder) as served:
        private = served.token_url("sekrit-token-1")
        for record in records:
            data = json.loads(record.read_text())
            subdir = data["url"].rsplit("/", 2)[-2]
            data["url"] = f"{private}/{subdir}/{data['fn']}"
            data["channel"] = private
            record.write_text(json.dumps(data))

        status = main(["pack", "--prefix", str(prefix), "--platform", "linux-64", "-o", str(out)])

    captured = capsys.readouterr()
    assert status == 0, captured.err
    fetched = [path for path in served.counts if path.endswith(".conda")]
    assert fetched
    assert all(path.startswith("/t/sekrit-token-1/") for path in fetched)
    assert b"sekrit" not in out.read_bytes()
    import zstandard

    assert b"sekrit" not in zstandard.ZstdDecompressor().stream_reader(out.read_bytes()).read()
    assert "sekrit" not in captured.out + captured.err
    assert all("/t/" not in c.url for c in read_manifest(out).conda)


def test_a_condarc_naming_an_unknown_users_folder_costs_that_entry_only(tmp_path):
    home = tmp_path / "home"
    kept = tmp_path / "kept"
    for folder in (home, kept):
        folder.mkdir()
    (home / ".condarc").write_text(
        f"pkgs_dirs:\n  - ~no-such-user-here/pkgs\n  - {kept}\n  - [not, a, path]\n"
    )

    found = conda_pkgs_dirs(tmp_path / "env", environ={"CONDA_PKGS_DIRS": "~nobody-x/p"}, home=home)

    assert found == (kept,)
