"""Restoring from a lock: exact installs without a solve, every archive verified, the dated
solve of a platform the lock lacks, locks written by conda-lock and rattler themselves, policy
and redaction, and which lock or spec a notebook restores from. Real locks of the rig's
multi-platform `lockme`, real rattler installs, no mocks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from conda_lock.lockfile import write_conda_lock_file
from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency, Lockfile, LockMeta
from conda_lock.models.channel import Channel

from jupyter_repro.cli import main
from jupyter_repro.notebooks.embedded import METADATA_KEY, embed_spec
from jupyter_repro.notebooks.lock import with_lock
from jupyter_repro.notebooks.nbjson import dumps_json
from jupyter_repro.restore.errors import RefusedSpec, RestoreError
from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.source import load_source
from jupyter_repro.restore.verified import TamperedPackage
from jupyter_repro.specs.environment import EnvironmentSpec
from jupyter_repro.specs.lock import Lock, LockError, render_conda_lock
from jupyter_repro.specs.locking import LockOptions, LockResult, lock_environment
from tests.rig import run_sync
from tests.rig.channel import PackageDef, RigChannel, assemble
from tests.rig.installation import CondaInstallation, isolated_environ
from tests.rig.platforms import (
    EXCLUDE_NEWER_CUTOFF,
    LIBPLAT_FILES,
    LOCK_PLATFORMS,
    NEW_DATE,
    MultiPlatformEnv,
    create_dated_env,
    solve_for_platform,
)
from tests.test_restore import Recorder

# Importing conda-lock sets CONDA_ROOT to this Python's prefix (its vendored conda does), which
# would make discovery take this venv for the base installation: undone, once, at import.
if os.environ.get("CONDA_ROOT") == sys.prefix:
    del os.environ["CONDA_ROOT"]

pytestmark = pytest.mark.timeout(120)

UNPINNED = ("python", "ipykernel", "pkgdemo", "libplat")


# --------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def lockme(multi_platform_env: MultiPlatformEnv) -> LockResult:
    """The lock of the session's `lockme` for all four platforms (read-only)."""
    options = LockOptions(platforms=LOCK_PLATFORMS)
    return run_sync(lock_environment(multi_platform_env.prefix, options))


class Fresh:
    """A HOME and package cache of a test's own, and restore services over them."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.home.mkdir()
        self.cache = root / "cache"
        self.environ = isolated_environ(self.home, package_cache=self.cache)

    def service(self, **options: object) -> RestoreService:
        return RestoreService(
            RestoreOptions(cache_dir=self.cache, **options),  # type: ignore[arg-type]
            environ=self.environ,
        )

    def confine(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """This process's environment is the fresh one (the CLI reads `os.environ`)."""
        for key in list(os.environ):
            if key not in self.environ:
                monkeypatch.delenv(key)
        for key, value in self.environ.items():
            monkeypatch.setenv(key, value)


@pytest.fixture
def fresh(tmp_path: Path) -> Fresh:
    return Fresh(tmp_path)


def records(prefix: Path) -> set[tuple[object, ...]]:
    """Every installed record as (name, version, build, url, sha256, md5)."""
    out = set()
    for path in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(path.read_text())
        out.add(tuple(data.get(k) for k in ("name", "version", "build", "url", "sha256", "md5")))
    return out


def installed(prefix: Path) -> dict[str, str]:
    return {r[0]: r[1] for r in records(prefix)}  # type: ignore[misc]


def _registered(fresh: Fresh) -> list[str]:
    path = fresh.home / ".conda" / "environments.txt"
    return path.read_text().split() if path.exists() else []


def locked_urls(lock: Lock, platform: str = "linux-64") -> list[str]:
    part = lock.platform(platform)
    assert part is not None
    return sorted(p.url for p in part.conda)


def write_lock(path: Path, lock: Lock) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_conda_lock(lock), encoding="utf-8")
    return path


def assert_python_runs(prefix: Path) -> None:
    out = subprocess.run(
        [str(prefix / "bin" / "python"), "-c", "import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()).resolve() == prefix.resolve()


def copy_channel(source: RigChannel, path: Path) -> RigChannel:
    """A copy of the shared multi-platform channel that a test may change."""
    shutil.copytree(source.path, path)
    return RigChannel(path, list(source.packages), stamp_index_time=source.stamp_index_time)


@pytest.fixture
def own_lockme(
    tmp_path: Path, multi_platform_channel: RigChannel
) -> tuple[RigChannel, Path, LockResult]:
    """`lockme` installed from a channel of this test's own, and its lock (linux-64, win-64)."""
    channel = copy_channel(multi_platform_channel, tmp_path / "channel")
    inst = CondaInstallation.create(tmp_path / "own-home", channel, tmp_path / "own-pkgs")
    prefix = create_dated_env(inst)
    options = LockOptions(platforms=("linux-64", "win-64"))
    return channel, prefix, run_sync(lock_environment(prefix, options))


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp dir of `tempfile` (where a restore stages downloads), empty at the start."""
    path = tmp_path / "tmpdir"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


# --------------------------------------------------------------------------------------------
# 1. a lock reproduces the environment exactly


@pytest.mark.asyncio
async def test_a_four_platform_lock_restores_the_installed_records_exactly(
    tmp_path: Path, multi_platform_env: MultiPlatformEnv, lockme: LockResult, fresh: Fresh
) -> None:
    assert lockme.lock.platform_names == LOCK_PLATFORMS
    lock_file = write_lock(tmp_path / "conda-lock.yml", lockme.lock)
    source = load_source(file=lock_file)
    assert source.kind == "lock"
    assert source.lock is not None
    assert source.lock.platform_names == LOCK_PLATFORMS

    progress = Recorder()
    result = await fresh.service().restore(source, prefix=tmp_path / "restored", progress=progress)

    assert result.prefix == tmp_path / "restored"
    assert records(result.prefix) == records(multi_platform_env.prefix)
    assert len(records(result.prefix)) == 4
    assert_python_runs(result.prefix)
    assert result.prefix in [Path(p) for p in _registered(fresh)]


def test_the_cli_restores_a_lock_file_exactly(
    tmp_path: Path,
    multi_platform_env: MultiPlatformEnv,
    lockme: LockResult,
    fresh: Fresh,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lock_file = write_lock(tmp_path / "project" / "conda-lock.yml", lockme.lock)
    fresh.confine(monkeypatch)
    target = tmp_path / "by-cli"

    status = main(["restore", str(lock_file), "-p", str(target), "--yes"])

    out, err = capsys.readouterr()
    assert status == 0, err
    assert records(target) == records(multi_platform_env.prefix)
    assert f"restored 4 packages into {target}" in err
    for url in locked_urls(lockme.lock):
        assert url.rsplit("/", 1)[-1].removesuffix(".conda").rsplit("-", 2)[0] in out
    assert "solved as of" not in out + err
    assert_python_runs(target)


# --------------------------------------------------------------------------------------------
# 2. no solve


@pytest.mark.asyncio
async def test_a_lock_installs_its_own_urls_without_any_solve(
    tmp_path: Path, own_lockme: tuple[RigChannel, Path, LockResult], fresh: Fresh
) -> None:
    channel, prefix, result = own_lockme
    lock_file = write_lock(tmp_path / "conda-lock.yml", result.lock)
    # After locking, the channel gets a newer libplat, older than the lock's date even.
    newer = PackageDef(
        name="libplat",
        version="1.2",
        build="0",
        subdir="linux-64",
        noarch=None,
        files={LIBPLAT_FILES["linux-64"]: "libplat 1.2 linux-64\n"},
        timestamp=dt.datetime(2025, 6, 15, tzinfo=dt.timezone.utc),
    )
    assert result.lock.as_of is not None
    assert newer.timestamp < result.lock.as_of
    channel.add_packages([newer])
    service = fresh.service()
    spec = "\n".join(
        ["channels:", f"  - {channel.url}", "dependencies:", *(f"  - {d}" for d in UNPINNED)]
    )
    solved = await service.plan(load_source(content=spec + "\n"), prefix=tmp_path / "solved")
    assert {p.name: p.version for p in solved.packages}["libplat"] == "1.2"

    source = load_source(file=lock_file)
    plan = await service.plan(source, prefix=tmp_path / "locked")

    # The plan is the lock's linux-64 part, URL for URL: nothing was chosen.
    assert sorted(p.url for p in plan.packages) == locked_urls(result.lock)
    assert sorted(p.url for p in plan.packages) == sorted(str(r[3]) for r in records(prefix))
    assert {p.name: p.version for p in plan.packages}["libplat"] == "1.1"
    assert not any("solved" in w for w in plan.warnings)

    # Without any repodata nothing can be solved any more; the lock still restores.
    for repodata in channel.path.glob("*/repodata.json"):
        repodata.unlink()
    with pytest.raises(RestoreError):
        await service.plan(load_source(content=spec + "\n"), prefix=tmp_path / "unsolvable")
    progress = Recorder()
    restored = await service.restore(source, prefix=tmp_path / "locked", progress=progress)

    assert records(restored.prefix) == records(prefix)
    assert installed(restored.prefix)["libplat"] == "1.1"
    phases = [name for name, _, _ in progress.phases]
    assert "solve" not in phases
    assert "verify" in phases
    assert any(
        "installing the lock of linux-64 exactly: no solve" in line for line in progress.lines
    )
    verified = [p for p in progress.phases if p[0] == "verify"]
    assert verified[-1][1:] == (4, 4)


# --------------------------------------------------------------------------------------------
# 3. tampering


def _swap_libplat(channel: RigChannel, scratch: Path) -> str:
    """Replace linux-64's libplat 1.1 by another valid archive of the same name (and index
    it, as a compromised server would): what a lock must notice."""
    evil = PackageDef(
        name="libplat",
        version="1.1",
        build="0",
        subdir="linux-64",
        noarch=None,
        files={LIBPLAT_FILES["linux-64"]: "libplat 1.1 linux-64, with a backdoor\n"},
        timestamp=NEW_DATE,
    )
    built = assemble(evil, scratch)
    target = channel.path / "linux-64" / evil.filename
    assert built.read_bytes() != target.read_bytes()
    shutil.copyfile(built, target)
    channel.index()
    return "libplat-1.1-0"


def _truncate_python(channel: RigChannel, scratch: Path) -> str:
    archive = next((channel.path / "linux-64").glob("python-*.conda"))
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    return archive.name.removesuffix(".conda")


@pytest.mark.asyncio
@pytest.mark.parametrize("tamper", [_swap_libplat, _truncate_python], ids=["swapped", "truncated"])
async def test_a_changed_archive_is_refused_and_nothing_is_left(
    tmp_path: Path,
    own_lockme: tuple[RigChannel, Path, LockResult],
    fresh: Fresh,
    private_tmp: Path,
    tamper,
) -> None:
    channel, _, result = own_lockme
    source = load_source(file=write_lock(tmp_path / "conda-lock.yml", result.lock))
    dist = tamper(channel, tmp_path / "scratch")
    target = tmp_path / "tampered"
    progress = Recorder()

    with pytest.raises(TamperedPackage) as refused:
        await fresh.service().restore(source, prefix=target, progress=progress)

    assert isinstance(refused.value, RestoreError)
    assert dist in str(refused.value)
    assert "does not match the lock" in str(refused.value)
    assert not os.path.lexists(target)
    assert not [p for p in private_tmp.iterdir() if p.name.startswith("jupyter-repro-lock-")]
    assert "link" not in [name for name, _, _ in progress.phases]
    assert target not in [Path(p) for p in _registered(fresh)]


# --------------------------------------------------------------------------------------------
# 4. a platform the lock lacks: solved as of the lock's date


@pytest.mark.asyncio
async def test_a_lock_without_this_platform_is_solved_as_of_its_date(
    tmp_path: Path, lockme: LockResult, fresh: Fresh
) -> None:
    # The host platform is always locked by lock_environment: take it out of the lock.
    foreign = dataclasses.replace(
        lockme.lock,
        platforms=tuple(p for p in lockme.lock.platforms if p.platform in ("osx-64", "win-64")),
    )
    source = load_source(file=write_lock(tmp_path / "foreign" / "conda-lock.yml", foreign))
    assert source.lock is not None
    assert source.lock.platform_names == ("osx-64", "win-64")
    service = fresh.service()

    plan = await service.plan(source, prefix=tmp_path / "pinned")

    assert any(
        "solved as of 2025-07-01" in w and "no lock for linux-64" in w and "osx-64, win-64" in w
        for w in plan.warnings
    ), plan.warnings
    assert {p.name: p.version for p in plan.packages}["libplat"] == "1.1"  # the pinned spec

    # An unpinned spec as of a date before libplat 1.1 was published: the solve picks 1.0.
    older = dataclasses.replace(foreign, as_of=EXCLUDE_NEWER_CUTOFF, conda_specs=UNPINNED)
    older_source = load_source(file=write_lock(tmp_path / "older" / "conda-lock.yml", older))
    progress = Recorder()
    result = await service.restore(older_source, prefix=tmp_path / "dated", progress=progress)

    assert installed(result.prefix)["libplat"] == "1.0"
    assert any("solved as of 2025-01-01; no lock for linux-64" in line for line in progress.lines)
    assert "solve" in [name for name, _, _ in progress.phases]
    assert_python_runs(result.prefix)

    # The date is what made the difference: undated, the same spec gets 1.1.
    undated = dataclasses.replace(older, as_of=None)
    undated_source = load_source(file=write_lock(tmp_path / "undated" / "conda-lock.yml", undated))
    now = await service.plan(undated_source, prefix=tmp_path / "now")
    assert {p.name: p.version for p in now.packages}["libplat"] == "1.1"
    assert any("solved as of now" in w for w in now.warnings)


@pytest.mark.asyncio
async def test_a_lock_without_this_platform_or_a_spec_is_refused(
    tmp_path: Path, lockme: LockResult, fresh: Fresh
) -> None:
    bare = dataclasses.replace(
        lockme.lock,
        platforms=tuple(p for p in lockme.lock.platforms if p.platform == "win-64"),
        conda_specs=(),
    )
    source = load_source(file=write_lock(tmp_path / "conda-lock.yml", bare))
    with pytest.raises(RestoreError, match="no lock for this machine's platform linux-64"):
        await fresh.service().restore(source, prefix=tmp_path / "none")
    assert not os.path.lexists(tmp_path / "none")


# --------------------------------------------------------------------------------------------
# 5. locks written by conda-lock and by rattler (pixi's format)


def _conda_lock_by_conda_lock(result: LockResult, path: Path, channel: RigChannel) -> Path:
    packages = []
    for platform, platform_records in result.records.items():
        for record in platform_records:
            depends = dict(
                (d.partition(" ")[0], d.partition(" ")[2].strip()) for d in record.depends
            )
            packages.append(
                LockedDependency(
                    name=record.name.normalized,
                    version=str(record.version),
                    manager="conda",
                    platform=platform,
                    dependencies=depends,
                    url=str(record.url),
                    hash=HashModel(md5=record.md5.hex(), sha256=record.sha256.hex()),
                    build=str(record.build),
                    categories={"main"},
                )
            )
    metadata = LockMeta(
        content_hash={p: "0" * 64 for p in result.records},
        channels=[Channel.from_string(channel.url)],
        platforms=list(result.records),
        sources=["environment.yml"],
    )
    write_conda_lock_file(Lockfile(package=packages, metadata=metadata), path, metadata_choices=())
    return path


@pytest.mark.asyncio
async def test_a_conda_lock_yml_written_by_conda_lock_restores_exactly(
    tmp_path: Path,
    multi_platform_env: MultiPlatformEnv,
    multi_platform_channel: RigChannel,
    lockme: LockResult,
    fresh: Fresh,
) -> None:
    # Named like a project's lock, not conda-lock.yml: recognised by its name.
    path = _conda_lock_by_conda_lock(
        lockme, tmp_path / "analysis.conda-lock.yml", multi_platform_channel
    )
    assert "generated by conda-lock" in path.read_text()

    source = load_source(file=path)
    assert source.kind == "lock"
    assert source.lock is not None
    assert source.lock.format == "conda-lock"
    assert source.lock.platform_names == LOCK_PLATFORMS
    progress = Recorder()
    result = await fresh.service().restore(source, prefix=tmp_path / "env", progress=progress)

    assert records(result.prefix) == records(multi_platform_env.prefix)
    assert "solve" not in [name for name, _, _ in progress.phases]
    assert_python_runs(result.prefix)


def _pixi_lock_by_rattler(result: LockResult, path: Path, channel: RigChannel) -> Path:
    """`default`: lockme on four platforms; `other`: pkgdemo as of 2025 (libplat 1.0)."""
    from rattler import LockChannel, LockFile, LockPlatform

    lock_file = LockFile([LockPlatform(p) for p in LOCK_PLATFORMS])
    for environment in ("default", "other"):
        lock_file.set_channels(environment, [LockChannel(channel.url)])
    for platform, platform_records in result.records.items():
        for record in platform_records:
            lock_file.add_conda_package("default", LockPlatform(platform), record)
    other = solve_for_platform(channel, ["pkgdemo"], "linux-64", exclude_newer=EXCLUDE_NEWER_CUTOFF)
    for record in other:
        lock_file.add_conda_package("other", LockPlatform("linux-64"), record)
    lock_file.to_path(path)
    return path


@pytest.mark.asyncio
async def test_a_pixi_lock_written_by_rattler_restores_each_environment(
    tmp_path: Path,
    multi_platform_env: MultiPlatformEnv,
    multi_platform_channel: RigChannel,
    lockme: LockResult,
    fresh: Fresh,
) -> None:
    path = _pixi_lock_by_rattler(lockme, tmp_path / "pixi.lock", multi_platform_channel)
    service = fresh.service()

    default = load_source(file=path)
    assert default.lock is not None
    assert default.lock.format == "pixi"
    assert default.lock.platform_names == LOCK_PLATFORMS
    restored = await service.restore(default, prefix=tmp_path / "default")
    assert records(restored.prefix) == records(multi_platform_env.prefix)
    assert_python_runs(restored.prefix)

    other = load_source(file=path, lock_environment="other")
    assert other.lock is not None
    assert other.lock.platform_names == ("linux-64",)
    progress = Recorder()
    restored_other = await service.restore(other, prefix=tmp_path / "other", progress=progress)
    assert installed(restored_other.prefix) == {"pkgdemo": "1.0", "libplat": "1.0"}
    assert "solve" not in [name for name, _, _ in progress.phases]

    with pytest.raises(LockError, match=r"no environment 'nope' \(it has: default, other\)"):
        load_source(file=path, lock_environment="nope")


def test_the_cli_restores_another_environment_of_a_pixi_lock(
    tmp_path: Path,
    multi_platform_channel: RigChannel,
    lockme: LockResult,
    fresh: Fresh,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _pixi_lock_by_rattler(lockme, tmp_path / "pixi.lock", multi_platform_channel)
    fresh.confine(monkeypatch)
    target = tmp_path / "other"

    status = main(["restore", str(path), "-p", str(target), "--yes", "--lock-environment", "other"])

    _, err = capsys.readouterr()
    assert status == 0, err
    assert installed(target) == {"pkgdemo": "1.0", "libplat": "1.0"}


# --------------------------------------------------------------------------------------------
# 6. policy and redaction


@pytest.mark.asyncio
async def test_a_lock_from_a_channel_the_server_does_not_allow_is_refused(
    tmp_path: Path, lockme: LockResult, fresh: Fresh, private_tmp: Path
) -> None:
    service = fresh.service(allowed_channels=("https://conda.anaconda.org/conda-forge",))
    exact = load_source(file=write_lock(tmp_path / "exact" / "conda-lock.yml", lockme.lock))
    foreign = dataclasses.replace(
        lockme.lock, platforms=tuple(p for p in lockme.lock.platforms if p.platform != "linux-64")
    )
    dated = load_source(file=write_lock(tmp_path / "dated" / "conda-lock.yml", foreign))

    for source in (exact, dated):
        target = tmp_path / f"refused-{source.origin.split('/')[-2]}"
        with pytest.raises(RefusedSpec, match="not allowed"):
            await service.plan(source, prefix=target)
        progress = Recorder()
        with pytest.raises(RefusedSpec, match="not allowed"):
            await service.restore(source, prefix=target, progress=progress)
        assert not os.path.lexists(target)
        # Refused before a package was looked at, let alone fetched or linked.
        assert not {"verify", "download", "link"} & {name for name, _, _ in progress.phases}
    assert not fresh.cache.exists() or not any(fresh.cache.iterdir())
    assert not list(private_tmp.iterdir())


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("channel", "secret"),
    [
        ("https://127.0.0.1:9/t/tk-9b1f2e7c/rig", "tk-9b1f2e7c"),
        ("https://someone:pw-4d8a0c3e@127.0.0.1:9/rig", "pw-4d8a0c3e"),
    ],
    ids=["token", "userinfo"],
)
async def test_credentials_in_a_locks_urls_are_never_shown(
    tmp_path: Path,
    multi_platform_channel: RigChannel,
    lockme: LockResult,
    fresh: Fresh,
    channel: str,
    secret: str,
) -> None:
    # An unreachable channel that takes credentials in its URLs, as private channels do.
    text = render_conda_lock(lockme.lock).replace(multi_platform_channel.url, channel)
    path = tmp_path / "conda-lock.yml"
    path.write_text(text)
    source = load_source(file=path)
    assert source.lock is not None
    assert all(secret in p.url for p in source.lock.platforms[0].conda)  # kept to download
    service = fresh.service()

    plan = await service.plan(source, prefix=tmp_path / "plan")
    assert len(plan.packages) == 4
    assert secret not in json.dumps(plan.to_json())

    progress = Recorder()
    with pytest.raises(RestoreError) as failed:
        await service.restore(source, prefix=tmp_path / "private", progress=progress)
    message = str(failed.value)
    assert "cannot download" in message
    assert "127.0.0.1:9" in message
    assert secret not in message
    assert secret not in "\n".join(progress.lines)
    assert not os.path.lexists(tmp_path / "private")


# --------------------------------------------------------------------------------------------
# 7. what a notebook restores from


def _notebook(path: Path, metadata: dict | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "conda-env-lockme-py", "display_name": "lockme"}
    nb.metadata.update(metadata or {})
    nb.cells = [nbformat.v4.new_code_cell("print(1)")]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    return path


def _environment_yml(folder: Path) -> Path:
    path = folder / "environment.yml"
    path.write_text("name: fromyml\ndependencies:\n  - python\n")
    return path


def test_a_notebook_prefers_its_lock_then_a_lock_beside_it_then_specs(
    tmp_path: Path,
    multi_platform_env: MultiPlatformEnv,
    multi_platform_channel: RigChannel,
    lockme: LockResult,
) -> None:
    linux_only = dataclasses.replace(
        lockme.lock,
        platforms=(lockme.lock.platform("linux-64"),),  # type: ignore[arg-type]
    )

    # An embedded lock wins over a lock file and an environment.yml beside the notebook.
    folder = tmp_path / "embedded"
    notebook = _notebook(folder / "analysis.ipynb")
    notebook.write_text(
        dumps_json(with_lock(json.loads(notebook.read_text()), lockme, multi_platform_env.prefix))
    )
    write_lock(folder / "conda-lock.yml", linux_only)
    _environment_yml(folder)
    source = load_source(notebook=notebook)
    assert (source.kind, source.origin) == ("lock", str(notebook))
    assert source.lock is not None
    assert source.lock.format == "embedded"
    assert source.lock.platform_names == LOCK_PLATFORMS
    assert locked_urls(source.lock) == locked_urls(lockme.lock)
    embedded = json.loads(notebook.read_text())["metadata"][METADATA_KEY]
    assert {"lock", "environment"} <= set(embedded)
    # The CLI's way in: a `file` ending in .ipynb is read as a notebook.
    assert load_source(file=notebook).origin == str(notebook)

    # No metadata: the lock beside it, before the environment.yml; `<stem>.conda-lock.yml`
    # before `conda-lock.yml`.
    folder = tmp_path / "beside"
    notebook = _notebook(folder / "analysis.ipynb")
    write_lock(folder / "conda-lock.yml", linux_only)
    _environment_yml(folder)
    source = load_source(notebook=notebook)
    assert (source.kind, source.origin) == ("lock", str(folder / "conda-lock.yml"))
    assert source.lock is not None
    assert source.lock.platform_names == ("linux-64",)
    write_lock(folder / "analysis.conda-lock.yml", lockme.lock)
    assert load_source(notebook=notebook).origin == str(folder / "analysis.conda-lock.yml")

    # Another *.conda-lock.yml when that is all there is; a pixi.lock before it.
    folder = tmp_path / "pixi"
    notebook = _notebook(folder / "analysis.ipynb")
    write_lock(folder / "team.conda-lock.yml", linux_only)
    assert load_source(notebook=notebook).origin == str(folder / "team.conda-lock.yml")
    _pixi_lock_by_rattler(lockme, folder / "pixi.lock", multi_platform_channel)
    source = load_source(notebook=notebook)
    assert (source.kind, source.origin) == ("lock", str(folder / "pixi.lock"))
    assert source.lock is not None
    assert source.lock.format == "pixi"
    assert locked_urls(source.lock) == locked_urls(lockme.lock)

    # Only an embedded spec (and an environment.yml): the spec.
    folder = tmp_path / "spec"
    notebook = _notebook(folder / "analysis.ipynb")
    embed_spec(notebook, EnvironmentSpec(name="nb", dependencies=("pkgdemo",)), mode="portable")
    _environment_yml(folder)
    source = load_source(notebook=notebook)
    assert (source.kind, source.origin) == ("notebook", str(notebook))
    assert source.spec is not None
    assert source.spec.dependencies == ("pkgdemo",)

    # Nothing but an environment.yml beside it.
    folder = tmp_path / "yaml"
    notebook = _notebook(folder / "analysis.ipynb")
    yml = _environment_yml(folder)
    source = load_source(notebook=notebook)
    assert (source.kind, source.origin) == ("yaml", str(yml))

    # Nothing at all.
    notebook = _notebook(tmp_path / "bare" / "analysis.ipynb")
    with pytest.raises(RestoreError, match=r"no lock file or environment\.yml beside it"):
        load_source(notebook=notebook)


def test_a_lock_beside_a_notebook_that_links_out_of_its_folder_is_ignored(
    tmp_path: Path, lockme: LockResult
) -> None:
    outside = write_lock(tmp_path / "elsewhere" / "conda-lock.yml", lockme.lock)
    folder = tmp_path / "project"
    notebook = _notebook(folder / "analysis.ipynb")
    (folder / "conda-lock.yml").symlink_to(outside)
    (folder / "analysis.conda-lock.yml").symlink_to(outside)
    (folder / "team.conda-lock.yml").symlink_to(outside)
    yml = _environment_yml(folder)

    source = load_source(notebook=notebook)

    assert (source.kind, source.origin) == ("yaml", str(yml))

    # A link to a lock in the notebook's own folder is followed.
    write_lock(folder / "real.yml", lockme.lock)
    (folder / "conda-lock.yml").unlink()
    (folder / "conda-lock.yml").symlink_to("real.yml")
    source = load_source(notebook=notebook)
    assert (source.kind, source.origin) == ("lock", str(folder / "conda-lock.yml"))
