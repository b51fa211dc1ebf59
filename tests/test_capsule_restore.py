"""Restoring from a capsule: offline (the channel and the wheels folder are gone), every archive
checked, the notebooks written beside the new environment's kernel, tampering refused with
nothing left behind. The rig's multi-platform `lockme` (plus two pip wheels), packed for
linux-64 and osx-arm64 with the real `pack`; real rattler and uv installs, a real kernel."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import zstandard

from jupyter_repro.cli import main
from jupyter_repro.restore.errors import RestoreError
from jupyter_repro.restore.notebooks import (
    CapsuleNotebook,
    RestoredKernel,
    free_name,
    write_notebooks,
)
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.capsule import CapsuleError, read_manifest
from jupyter_repro.specs.pack import PackRequest, pack
from jupyter_repro.specs.pip_lock import PipIndex, uv_binary
from tests.rig import run_sync
from tests.rig.channel import RigChannel
from tests.rig.installation import CondaInstallation
from tests.rig.platforms import create_dated_env
from tests.test_lock_restore import Fresh, copy_channel
from tests.test_pip_lock import write_wheel
from tests.test_restore import Recorder
from tests.test_restore_api import poll, post_restore, status_and_body

pytestmark = pytest.mark.timeout(120)

NOTEBOOK_CODE = "import sys, alpha, beta\nprint(sys.prefix)\nprint(alpha.VALUE + beta.VALUE)"


@dataclass(frozen=True)
class Packed:
    """`lockme` with two pip wheels, packed; the channel and wheels it came from removed."""

    prefix: Path
    capsule: Path
    """For linux-64 and osx-arm64, with `analysis.ipynb`."""
    osx_only: Path
    """For osx-arm64 only."""
    notebook: Path


def _uv_environ(root: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(root), "UV_CACHE_DIR": str(root / "uv")}


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory, multi_platform_channel: RigChannel) -> Packed:
    root = tmp_path_factory.mktemp("capsule")
    channel = copy_channel(multi_platform_channel, root / "channel")
    inst = CondaInstallation.create(root / "home", channel, root / "pkgs")
    prefix = create_dated_env(inst)
    wheels = root / "wheels"
    wheels.mkdir()
    write_wheel(wheels, "alpha", "1.0", requires=["beta>=1"], payload="VALUE = 40\n")
    write_wheel(wheels, "beta", "1.0", payload="VALUE = 2\n")
    uv = uv_binary()
    assert uv is not None
    python = str(prefix / "bin" / "python")
    install = [uv, "pip", "install", "--python", python, "--no-config", "--no-index"]
    subprocess.run(
        [*install, "--find-links", str(wheels), "alpha", "beta"],
        check=True,
        capture_output=True,
        env=_uv_environ(root),
    )
    notebook = root / "project" / "analysis.ipynb"
    notebook.parent.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(NOTEBOOK_CODE))
    nb.metadata["kernelspec"] = {
        "name": "conda-env-lockme-py",
        "display_name": "Python [conda env:lockme]",
        "language": "python",
    }
    nbformat.write(nb, notebook)

    def request(platforms: tuple[str, ...]) -> PackRequest:
        return PackRequest(
            notebooks=(notebook,),
            prefix=prefix,
            name="lockme",
            platforms=platforms,
            pip_index=PipIndex(find_links=(str(wheels),), no_index=True),
            environ=_uv_environ(root),
            package_dirs=(root / "pkgs",),
        )

    capsule = root / "out" / "lockme.capsule.tar.zst"
    capsule.parent.mkdir()
    run_sync(pack(request(("linux-64", "osx-arm64")), capsule))
    osx_only = root / "out" / "osx.capsule.tar.zst"
    run_sync(pack(request(("osx-arm64",)), osx_only))
    # Nothing it came from is left: the restore has the capsule only.
    shutil.rmtree(channel.path)
    shutil.rmtree(wheels)
    shutil.rmtree(root / "pkgs")
    return Packed(prefix, capsule, osx_only, notebook)


@pytest.fixture
def fresh(tmp_path: Path) -> Fresh:
    return Fresh(tmp_path)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`tempfile`'s folder (where a capsule is extracted), empty at the start."""
    path = tmp_path / "tmpdir"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def records(prefix: Path) -> set[tuple[object, ...]]:
    """Every installed conda record as (name, version, build, sha256, url, md5)."""
    out = set()
    for path in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(path.read_text())
        out.add(tuple(data.get(k) for k in ("name", "version", "build", "sha256", "url", "md5")))
    return out


def run_notebook(path: Path, environ: dict[str, str]) -> nbformat.NotebookNode:
    """Execute the notebook on the kernel its metadata names, found by our kernel spec
    manager (the one a server uses), in a process confined to `environ`."""
    script = (
        "import sys, nbformat\n"
        "from jupyter_client import KernelManager\n"
        "from nbclient import NotebookClient\n"
        "from jupyter_repro.kernels.manager import CondaKernelSpecManager\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "km = KernelManager(kernel_name=nb.metadata.kernelspec.name,\n"
        "                   kernel_spec_manager=CondaKernelSpecManager())\n"
        "NotebookClient(nb, km=km, timeout=60).execute()\n"
        "nbformat.write(nb, sys.argv[2])\n"
    )
    out = path.with_name("executed.ipynb")
    subprocess.run(
        [sys.executable, "-c", script, str(path), str(out)],
        check=True,
        env=environ,
        cwd=path.parent,
        capture_output=True,
        timeout=90,
    )
    return nbformat.read(out, as_version=4)


# --------------------------------------------------------------------------------------------
# rewriting a capsule (the tampering tests)


def _members(capsule: Path) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    with open(capsule, "rb") as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for info in tar:
                stream = tar.extractfile(info)
                assert stream is not None
                yield info, stream.read()


def rewrite(
    capsule: Path, output: Path, change: Callable[[str, bytes], bytes], *, fix_manifest: bool
) -> Path:
    """`capsule` with `change(name, data)` applied to every member; with `fix_manifest` the
    manifest then gives each changed archive its new size and sha256 (consistent again)."""
    import hashlib

    members = [(info, change(info.name, data)) for info, data in _members(capsule)]
    if fix_manifest:
        manifest = json.loads(members[0][1])
        for entry in manifest["conda"] + manifest["pypi"]:
            data = next(d for i, d in members if i.name == entry["path"])
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["size"] = len(data)
        text = (json.dumps(manifest, sort_keys=True, indent=1) + "\n").encode()
        members[0] = (members[0][0], text)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    output.write_bytes(zstandard.ZstdCompressor(level=3).compress(buffer.getvalue()))
    return output


def one_byte_changed(member: str) -> Callable[[str, bytes], bytes]:
    def change(name: str, data: bytes) -> bytes:
        if name != member:
            return data
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]

    return change


def libplat_member(capsule: Path) -> str:
    manifest = read_manifest(capsule)
    return next(
        c.path for c in manifest.conda if c.platform == "linux-64" and "/libplat-" in c.path
    )


# --------------------------------------------------------------------------------------------
# 1. offline, exactly, with the notebook on the new kernel


def test_the_cli_restores_a_capsule_offline_and_its_notebook_runs_on_the_new_kernel(
    tmp_path: Path,
    packed: Packed,
    fresh: Fresh,
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fresh.confine(monkeypatch)
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-restore"))
    # Any network use fails at once (the channel is a removed folder anyway).
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    notebooks = tmp_path / "work"
    notebooks.mkdir()
    mine = notebooks / "analysis.ipynb"
    mine.write_text("{}\n")
    target = tmp_path / "restored"

    argv = ["restore", str(packed.capsule), "-p", str(target), "--yes"]
    status = main([*argv, "--notebooks-dir", str(notebooks)])

    out, err = capsys.readouterr()
    assert status == 0, err
    assert "analysis.ipynb" in out  # the plan names the notebook it will write
    # Exactly the original's conda records (where from included: the original channel's
    # URLs, not the extraction folder) and its pip packages.
    assert records(target) == records(packed.prefix)
    assert len(records(target)) == 4
    assert "and 2 pip packages" in err
    # Nothing of the extraction is left.
    assert list(private_tmp.iterdir()) == []
    # An existing notebook is never replaced: the capsule's is written beside it.
    assert mine.read_text() == "{}\n"
    written = notebooks / "analysis-1.ipynb"
    assert f"wrote {written} (kernel conda-env-restored-py)" in err
    nb = nbformat.read(written, as_version=4)
    assert nb.metadata.kernelspec == {
        "name": "conda-env-restored-py",
        "display_name": "Python [conda env:restored]",
        "language": "python",
    }
    assert nb.cells[0].source == NOTEBOOK_CODE

    executed = run_notebook(written, {**fresh.environ, "PATH": os.environ["PATH"]})

    printed = "".join(o.get("text", "") for o in executed.cells[0].outputs)
    assert printed.split() == [str(target), "42"]


def test_a_second_restore_numbers_the_notebook_again(tmp_path: Path) -> None:
    folder = tmp_path / "nb"
    folder.mkdir()
    (folder / "a.ipynb").write_text("{}")
    (folder / "a-1.ipynb").symlink_to(tmp_path / "nowhere.ipynb")  # dangling: still taken
    kernel = RestoredKernel("conda-env-x-py", "Python [conda env:x]", "python")
    data = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()

    written = write_notebooks(folder, [CapsuleNotebook("a.ipynb", data)], kernel)

    assert written == [folder / "a-2.ipynb"]
    assert not (tmp_path / "nowhere.ipynb").exists()
    assert json.loads(written[0].read_text())["metadata"]["kernelspec"]["name"] == "conda-env-x-py"
    assert free_name("b.ipynb", lambda n: n in {"b.ipynb", "b-1.ipynb"}) == "b-2.ipynb"
    with pytest.raises(RestoreError):
        write_notebooks(folder, [CapsuleNotebook("../x.ipynb/.hidden.ipynb", data)], kernel)


# --------------------------------------------------------------------------------------------
# 2. tampering, and a capsule for other platforms


def test_an_archive_changed_with_a_consistent_manifest_is_refused_naming_the_package(
    tmp_path: Path,
    packed: Packed,
    fresh: Fresh,
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    member = libplat_member(packed.capsule)
    tampered = rewrite(
        packed.capsule,
        tmp_path / "tampered.capsule.tar.zst",
        one_byte_changed(member),
        fix_manifest=True,
    )
    fresh.confine(monkeypatch)
    target = tmp_path / "never"

    status = main(["restore", str(tampered), "-p", str(target), "--yes"])

    _, err = capsys.readouterr()
    assert status == 1
    assert "is not the lock's" in err
    assert "for libplat-1.1-0 (linux-64)" in err
    assert not target.exists()
    assert list(private_tmp.iterdir()) == []


@pytest.mark.asyncio
async def test_an_archive_that_differs_from_the_manifest_is_refused_and_nothing_is_left(
    tmp_path: Path, packed: Packed, fresh: Fresh, private_tmp: Path
) -> None:
    member = libplat_member(packed.capsule)
    tampered = rewrite(
        packed.capsule,
        tmp_path / "tampered.capsule.tar.zst",
        one_byte_changed(member),
        fix_manifest=False,
    )
    source = load_source(file=tampered)  # the head is intact: planned like any capsule
    assert source.kind == "capsule"
    target = tmp_path / "never"

    with pytest.raises(CapsuleError, match=r"libplat-1\.1-0\.conda was changed"):
        await fresh.service().restore(source, prefix=target)

    assert not target.exists()
    assert list(private_tmp.iterdir()) == []
    assert not (fresh.home / ".conda" / "environments.txt").exists()


@pytest.mark.asyncio
async def test_a_restore_cancelled_while_extracting_leaves_nothing_behind(
    tmp_path: Path, packed: Packed, fresh: Fresh, private_tmp: Path
) -> None:
    source = load_source(file=packed.capsule)
    target = tmp_path / "never"
    loop = asyncio.get_running_loop()

    class CancelOnExtract(Recorder):
        task: asyncio.Task[object] | None = None

        def phase(self, name: str, done: int, total: int) -> None:
            super().phase(name, done, total)
            if name == "extract" and done == 0 and self.task is not None:
                loop.call_soon(self.task.cancel)

    progress = CancelOnExtract()
    task = asyncio.ensure_future(fresh.service().restore(source, prefix=target, progress=progress))
    progress.task = task

    with pytest.raises(asyncio.CancelledError):
        await task

    assert ("extract", 0, 1) in progress.phases
    assert not any(name == "link" for name, _, _ in progress.phases)
    assert not target.exists()
    assert list(private_tmp.iterdir()) == []


def test_a_capsule_without_this_platform_says_which_platforms_it_has(
    tmp_path: Path,
    packed: Packed,
    fresh: Fresh,
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fresh.confine(monkeypatch)
    target = tmp_path / "never"

    status = main(["restore", str(packed.osx_only), "-p", str(target), "--dry-run"])

    _, err = capsys.readouterr()
    assert status == 1
    assert "no packages for this machine's platform linux-64" in err
    assert "it has packages for: osx-arm64" in err
    assert not target.exists()
    assert list(private_tmp.iterdir()) == []


# --------------------------------------------------------------------------------------------
# 3. the server: plan, then restore with the notebook written beside the capsule


@pytest.fixture
def installation(conda_installation_factory) -> CondaInstallation:
    return conda_installation_factory()


@pytest.fixture
def jp_home_dir(installation: CondaInstallation) -> Path:
    return installation.home


async def test_the_server_plans_and_restores_a_capsule_writing_its_notebook_beside_it(
    jp_fetch, jp_root_dir: Path, packed: Packed, installation: CondaInstallation, monkeypatch
) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(jp_root_dir.parent / "uv-server"))
    folder = jp_root_dir / "shared"
    folder.mkdir()
    shutil.copy(packed.capsule, folder / "x.capsule.tar.zst")
    (folder / "analysis.ipynb").write_text("{}\n")
    body = {"source": {"file": "shared/x.capsule.tar.zst"}, "name": "fromcapsule"}

    status, plan = await status_and_body(post_restore(jp_fetch, {**body, "dry_run": True}))

    assert status == 200, plan
    manifest = read_manifest(packed.capsule)
    packed_urls = {c.url for c in manifest.conda if c.platform == "linux-64"}
    assert {p["url"] for p in plan["packages"]} == packed_urls
    assert len(plan["packages"]) == 4
    assert sorted(line.split("==")[0] for line in plan["pip"]) == ["alpha", "beta"]
    assert not Path(plan["target"]).exists()

    status, job = await status_and_body(post_restore(jp_fetch, body))
    assert status == 202, job
    final, _ = await poll(jp_fetch, job["id"], {"succeeded", "failed", "cancelled"})

    assert final["state"] == "succeeded", final["error"]
    result = final["result"]
    assert result["notebooks"] == ["shared/analysis-1.ipynb"]
    assert result["pip"] == 2
    prefix = Path(result["prefix"])
    assert {r[:4] for r in records(prefix)} == {r[:4] for r in records(packed.prefix)}
    assert (folder / "analysis.ipynb").read_text() == "{}\n"
    nb = json.loads((folder / "analysis-1.ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "conda-env-fromcapsule-py"
    assert nb["metadata"]["kernelspec"]["display_name"] == "Python [conda env:fromcapsule]"
    assert any("wrote shared/analysis-1.ipynb" in line for line in final["log"])


async def test_restores_of_one_capsule_at_once_each_write_their_own_notebook(
    jp_fetch, jp_root_dir: Path, conda_only: Packed, installation: CondaInstallation
) -> None:
    """Never over a file, also when several restores of the same capsule finish together."""
    shutil.copy(conda_only.capsule, jp_root_dir / "x.capsule.tar.zst")
    names = [f"together{i}" for i in range(4)]
    jobs = []
    for name in names:
        body = {"source": {"file": "x.capsule.tar.zst"}, "name": name}
        status, job = await status_and_body(post_restore(jp_fetch, body))
        assert status == 202, job
        jobs.append(job["id"])

    finals = [(await poll(jp_fetch, job, {"succeeded", "failed", "cancelled"}))[0] for job in jobs]

    assert [f["state"] for f in finals] == ["succeeded"] * 4, [f["error"] for f in finals]
    written = [f["result"]["notebooks"] for f in finals]
    assert sorted(path for paths in written for path in paths) == [
        "analysis-1.ipynb",
        "analysis-2.ipynb",
        "analysis-3.ipynb",
        "analysis.ipynb",
    ]
    for name, paths in zip(names, written, strict=True):
        kernel = json.loads((jp_root_dir / paths[0]).read_text())["metadata"]["kernelspec"]
        assert kernel["name"] == f"conda-env-{name}-py"


async def test_the_server_refuses_a_tampered_capsule_and_one_for_other_platforms(
    jp_fetch, jp_root_dir: Path, packed: Packed, installation: CondaInstallation
) -> None:
    rewrite(
        packed.capsule,
        jp_root_dir / "tampered.capsule.tar.zst",
        one_byte_changed(libplat_member(packed.capsule)),
        fix_manifest=True,
    )
    shutil.copy(packed.osx_only, jp_root_dir / "osx.capsule.tar.zst")

    status, answer = await status_and_body(
        post_restore(jp_fetch, {"source": {"file": "tampered.capsule.tar.zst"}, "name": "t"})
    )
    assert status == 422
    assert "for libplat-1.1-0 (linux-64)" in answer["message"]

    status, answer = await status_and_body(
        post_restore(jp_fetch, {"source": {"file": "osx.capsule.tar.zst"}, "dry_run": True})
    )
    assert status == 400
    assert "it has packages for: osx-arm64" in answer["message"]
    assert str(jp_root_dir) not in answer["message"]
    assert not installation.env_prefix("t").exists()


async def test_a_restore_job_failing_on_a_changed_archive_never_shows_where_the_root_is(
    jp_fetch, jp_root_dir: Path, conda_only: Packed, installation: CondaInstallation
) -> None:
    """Found while extracting (the head is consistent, an archive is not): a failed job whose
    error and log name the capsule relative to the server root."""
    folder = jp_root_dir / "work"
    folder.mkdir()
    rewrite(
        conda_only.capsule,
        folder / "changed.capsule.tar.zst",
        one_byte_changed(libplat_member(conda_only.capsule)),
        fix_manifest=False,
    )
    body = {"source": {"file": "work/changed.capsule.tar.zst"}, "name": "changed"}

    status, job = await status_and_body(post_restore(jp_fetch, body))
    assert status == 202, job
    final, _ = await poll(jp_fetch, job["id"], {"succeeded", "failed", "cancelled"})

    assert final["state"] == "failed"
    assert "libplat-1.1-0.conda was changed" in final["error"]["message"]
    assert "work/changed.capsule.tar.zst" in final["error"]["message"]
    shown = json.dumps(final)
    assert str(jp_root_dir) not in shown
    assert not installation.env_prefix("changed").exists()


# --------------------------------------------------------------------------------------------
# 3. a package cache that already holds the capsule's packages


def _extract_total(recorder: Recorder) -> int:
    return max(total for name, _, total in recorder.phases if name == "extract")


def _cache_entries_written(fresh: Fresh) -> set[str]:
    return {p.name for p in fresh.cache.iterdir() if p.is_dir()}


@pytest.mark.asyncio
async def test_a_second_restore_takes_the_cached_packages_without_unpacking_them(
    tmp_path: Path, packed: Packed, fresh: Fresh, private_tmp: Path
) -> None:
    service = fresh.service()
    first = Recorder()
    await service.restore(load_source(file=packed.capsule), prefix=tmp_path / "a", progress=first)
    manifest = read_manifest(packed.capsule)
    # Every member was read and checked the first time (the osx-arm64 archives included).
    assert _extract_total(first) == len(manifest.members())
    cached_before = _cache_entries_written(fresh)
    assert len(cached_before) == 4

    second = Recorder()
    await service.restore(load_source(file=packed.capsule), prefix=tmp_path / "b", progress=second)

    assert any("4 packages are in the package cache" in line for line in second.lines)
    # Only the lock, the notebook and this platform's wheels were unpacked this time.
    wheels = [w for w in manifest.pypi if w.platform == "linux-64"]
    assert _extract_total(second) == 1 + len(manifest.notebooks) + len(wheels)
    # The same records, named by the lock's URLs (never the cache's or an extraction's).
    assert records(tmp_path / "b") == records(tmp_path / "a") == records(packed.prefix)
    assert _cache_entries_written(fresh) == cached_before
    assert list(private_tmp.iterdir()) == []


@pytest.mark.asyncio
async def test_a_changed_capsule_is_refused_even_when_the_cache_holds_its_packages(
    tmp_path: Path, packed: Packed, fresh: Fresh, private_tmp: Path
) -> None:
    service = fresh.service()
    await service.restore(load_source(file=packed.capsule), prefix=tmp_path / "a")
    member = libplat_member(packed.capsule)
    tampered = rewrite(
        packed.capsule,
        tmp_path / "tampered.capsule.tar.zst",
        one_byte_changed(member),
        fix_manifest=False,
    )

    # Another file: its members are all checked again, the cached package's included.
    with pytest.raises(CapsuleError, match=r"libplat-1\.1-0\.conda was changed"):
        await service.restore(load_source(file=tampered), prefix=tmp_path / "never")

    assert not (tmp_path / "never").exists()
    assert list(private_tmp.iterdir()) == []


@pytest.mark.asyncio
async def test_a_cache_entry_of_another_archive_is_not_used(
    tmp_path: Path, packed: Packed, fresh: Fresh
) -> None:
    service = fresh.service()
    await service.restore(load_source(file=packed.capsule), prefix=tmp_path / "a")
    # The cache's libplat now claims another archive's sha256 (another build, another channel).
    entry = next(p for p in fresh.cache.glob("libplat-*.lock"))
    entry.write_bytes(entry.read_bytes()[:8] + bytes(range(32)))

    second = Recorder()
    await service.restore(load_source(file=packed.capsule), prefix=tmp_path / "b", progress=second)

    assert any("3 packages are in the package cache" in line for line in second.lines)
    assert records(tmp_path / "b") == records(packed.prefix)


# --------------------------------------------------------------------------------------------
# 4. a capsule restored here before, its packages all in the cache: nothing to unpack


@pytest.fixture(scope="module")
def conda_only(
    tmp_path_factory: pytest.TempPathFactory, multi_platform_channel: RigChannel
) -> Packed:
    """`lockme` without pip packages, packed for linux-64 with its notebook; the channel gone."""
    root = tmp_path_factory.mktemp("conda-only")
    channel = copy_channel(multi_platform_channel, root / "channel")
    inst = CondaInstallation.create(root / "home", channel, root / "pkgs")
    prefix = create_dated_env(inst)
    notebook = root / "project" / "analysis.ipynb"
    notebook.parent.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    nbformat.write(nb, notebook)
    capsule = root / "out" / "lockme.capsule.tar.zst"
    capsule.parent.mkdir()
    request = PackRequest(
        notebooks=(notebook,),
        prefix=prefix,
        name="lockme",
        platforms=("linux-64",),
        package_dirs=(root / "pkgs",),
    )
    run_sync(pack(request, capsule))
    shutil.rmtree(channel.path)
    shutil.rmtree(root / "pkgs")
    return Packed(prefix, capsule, capsule, notebook)


@pytest.mark.asyncio
async def test_a_capsule_restored_before_is_not_unpacked_again(
    tmp_path: Path,
    conda_only: Packed,
    fresh: Fresh,
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = fresh.service()
    first = Recorder()
    await service.restore(
        load_source(file=conda_only.capsule), prefix=tmp_path / "a", progress=first
    )
    assert any(name == "extract" for name, _, _ in first.phases)
    unpacked: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def watched_mkdtemp(*args: object, **kwargs: object) -> str:
        made = real_mkdtemp(*args, **kwargs)  # type: ignore[call-overload]
        unpacked.append(made)
        return made

    monkeypatch.setattr(tempfile, "mkdtemp", watched_mkdtemp)

    second = Recorder()
    done = await service.restore(
        load_source(file=conda_only.capsule), prefix=tmp_path / "b", progress=second
    )

    assert any("nothing to unpack" in line for line in second.lines)
    assert not any(name == "extract" for name, _, _ in second.phases)
    assert not [p for p in unpacked if "capsule" in Path(p).name]
    assert records(tmp_path / "b") == records(tmp_path / "a") == records(conda_only.prefix)
    # The notebook still comes with it, as packed.
    assert [(n.name, n.data) for n in done.notebooks] == [
        ("analysis.ipynb", conda_only.notebook.read_bytes())
    ]
    assert list(private_tmp.iterdir()) == []


@pytest.mark.asyncio
async def test_a_package_gone_from_the_cache_is_unpacked_again(
    tmp_path: Path, conda_only: Packed, fresh: Fresh
) -> None:
    service = fresh.service()
    await service.restore(load_source(file=conda_only.capsule), prefix=tmp_path / "a")
    entry = next(p for p in fresh.cache.iterdir() if p.is_dir() and p.name.startswith("libplat-"))
    shutil.rmtree(entry)

    second = Recorder()
    await service.restore(
        load_source(file=conda_only.capsule), prefix=tmp_path / "b", progress=second
    )

    assert not any("nothing to unpack" in line for line in second.lines)
    # The lock, the notebook and the one archive the cache lacks.
    assert _extract_total(second) == 3
    assert records(tmp_path / "b") == records(conda_only.prefix)


def test_a_notebook_that_differs_from_the_manifest_is_refused_when_read_alone(
    tmp_path: Path, conda_only: Packed
) -> None:
    from jupyter_repro.specs.capsule import read_capsule_notebooks

    manifest, _lock, notebooks = read_capsule_notebooks(conda_only.capsule)
    assert (
        [name for name, _ in notebooks] == list(manifest.notebooks) == ["notebooks/analysis.ipynb"]
    )
    changed = rewrite(
        conda_only.capsule,
        tmp_path / "changed.capsule.tar.zst",
        one_byte_changed("notebooks/analysis.ipynb"),
        fix_manifest=False,
    )

    with pytest.raises(CapsuleError, match=r"notebooks/analysis\.ipynb was changed"):
        read_capsule_notebooks(changed)


@pytest.mark.asyncio
async def test_a_refused_target_wins_over_the_capsules_own_problem_and_nothing_is_lost(
    tmp_path: Path, conda_only: Packed, fresh: Fresh, caplog: pytest.LogCaptureFixture
) -> None:
    """The pre-flight reads the capsule while the target is checked: when the target is
    refused, that is the answer, and the pre-flight's own failure is not left unobserved."""
    import gc

    from jupyter_repro.restore.errors import NameTaken

    copy = tmp_path / "gone.capsule.tar.zst"
    shutil.copy(conda_only.capsule, copy)
    source = load_source(file=copy)
    copy.unlink()  # the pre-flight will fail to read it
    taken = tmp_path / "taken"
    taken.mkdir()

    with pytest.raises(NameTaken, match="already exists"):
        await fresh.service().restore(source, prefix=taken)
    await asyncio.sleep(0.05)  # the worker finishes
    gc.collect()

    assert list(taken.iterdir()) == []
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


@pytest.mark.asyncio
@pytest.mark.parametrize("replacement_known", [True, False])
async def test_a_capsule_replaced_after_it_was_planned_is_refused(
    tmp_path: Path, packed: Packed, conda_only: Packed, fresh: Fresh, replacement_known: bool
) -> None:
    """Planned from one capsule, the file then replaced by another (checked here before, or
    never seen): the restore reads the head again and stops, whichever way it goes."""
    service = fresh.service()
    planned_path = tmp_path / "study.capsule.tar.zst"
    shutil.copy(conda_only.capsule, planned_path)
    await service.restore(load_source(file=planned_path), prefix=tmp_path / "a")
    if replacement_known:
        await service.restore(load_source(file=packed.capsule), prefix=tmp_path / "b")
    source = load_source(file=planned_path)
    shutil.copy(packed.capsule, planned_path)

    with pytest.raises(RestoreError, match="changed while it was being restored"):
        await service.restore(source, prefix=tmp_path / "never")

    assert not (tmp_path / "never").exists()


@pytest.mark.asyncio
async def test_the_pre_flight_reads_the_capsule_while_the_target_is_claimed(
    tmp_path: Path, conda_only: Packed, fresh: Fresh, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from jupyter_repro.restore import service as service_module

    service = fresh.service()
    started = threading.Event()
    real_preflight = service_module.RestoreService._capsule_preflight
    real_claim = service_module.claim_target
    seen_during_claim: list[bool] = []

    def preflight(self, source, stop=None):  # type: ignore[no-untyped-def]
        started.set()
        return real_preflight(self, source, stop)

    def claim(target: Path) -> None:
        # The claim runs on the loop's thread; the pre-flight, already submitted, in a worker.
        seen_during_claim.append(started.wait(timeout=10))
        real_claim(target)

    monkeypatch.setattr(service_module.RestoreService, "_capsule_preflight", preflight)
    monkeypatch.setattr(service_module, "claim_target", claim)

    await service.restore(load_source(file=conda_only.capsule), prefix=tmp_path / "a")

    assert seen_during_claim == [True]
    assert records(tmp_path / "a") == records(conda_only.prefix)


@pytest.mark.asyncio
async def test_a_notebook_over_packs_limit_is_refused_before_it_is_read(
    tmp_path: Path, conda_only: Packed, fresh: Fresh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook is read into memory to be written: a capsule declaring one bigger than pack
    would make (a few KB of zstd can decompress to gigabytes) is refused up front."""
    from jupyter_repro.specs import capsule as capsule_module
    from jupyter_repro.specs.capsule import read_capsule_notebooks

    size = len(conda_only.notebook.read_bytes())
    monkeypatch.setattr(capsule_module, "MAX_NOTEBOOK_BYTES", size - 1)

    with pytest.raises(CapsuleError, match="per notebook"):
        await fresh.service().restore(load_source(file=conda_only.capsule), prefix=tmp_path / "a")
    with pytest.raises(CapsuleError, match="over the limit"):
        read_capsule_notebooks(conda_only.capsule)

    assert not (tmp_path / "a").exists()
