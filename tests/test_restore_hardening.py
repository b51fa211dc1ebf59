"""Restores under attack and under faults: names and prefixes, full and read-only disks, and a
spec's `variables:`.

Everything is real: rig channels and environments, a real server for the REST side, and for
the disk faults small tmpfs file systems mounted for the test (root only; elsewhere the
test skips saying so) and always unmounted afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_repro.cli import main
from jupyter_repro.environments.prefix import RESTORE_MARKER, Prefix
from jupyter_repro.jobs import UNEXPECTED_MESSAGE
from jupyter_repro.restore.disk import register_prefix, write_env_vars
from jupyter_repro.restore.errors import DiskError, InvalidTarget
from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.export import export_environment
from tests.required import unavailable
from tests.rig import CondaInstallation, RigChannel
from tests.server_helpers import kernelspecs, run_in_kernel, start_kernel
from tests.test_restore import Recorder, _service
from tests.test_restore_api import environment_yml, poll, post_restore, status_and_body

pytestmark = pytest.mark.timeout(240)

FINISHED = {"succeeded", "failed", "cancelled"}


def _source(channel: RigChannel, *deps: str, extra: str = ""):
    return load_source(content=environment_yml(channel, *deps) + extra)


# --------------------------------------------------------------------------------------------
# small file systems


class Mounts:
    """tmpfs mounts made by one test; `unmount_all` runs in the fixture's teardown."""

    def __init__(self) -> None:
        self.mounted: list[Path] = []

    def tmpfs(self, where: Path, size: str = "1m") -> Path:
        if os.geteuid() != 0:
            unavailable(
                "mounting a tmpfs needs root (CAP_SYS_ADMIN); these tests fill or write-protect "
                "a real file system, run them as root (as CI does)"
            )
        where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            unavailable(f"cannot mount a tmpfs here although root: {done.stderr.strip()}")
        self.mounted.append(where)
        return where

    @staticmethod
    def read_only(where: Path) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)

    def unmount_all(self) -> None:
        for where in reversed(self.mounted):
            done = subprocess.run(["umount", str(where)], capture_output=True)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(where)], check=False)
        self.mounted.clear()


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    made = Mounts()
    try:
        yield made
    finally:
        made.unmount_all()


def fill(folder: Path, *, leave: int = 0) -> Path:
    """Fill the file system of `folder` with one file, then free `leave` bytes of it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, chunk)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0")
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


# --------------------------------------------------------------------------------------------
# server fixtures (as in test_restore_api)


@pytest.fixture
def installation(conda_installation_factory) -> CondaInstallation:
    return conda_installation_factory()


@pytest.fixture
def jp_home_dir(installation: CondaInstallation) -> Path:
    return installation.home


def registry_text(inst: CondaInstallation) -> str:
    return inst.environments_txt.read_text() if inst.environments_txt.exists() else ""


# ============================================================================================
# item 5: names and prefixes


async def test_a_line_break_in_the_prefix_is_400_and_forges_no_registry_line(
    jp_fetch, installation: CondaInstallation, rig_channel: RigChannel
):
    before = registry_text(installation)
    forged = f"{installation.extra_envs_dir}/a\n{installation.home}/forged"

    code, body = await status_and_body(
        post_restore(
            jp_fetch,
            {"source": {"content": environment_yml(rig_channel, "pkgc")}, "prefix": forged},
        )
    )
    if code == 202:  # today's behaviour: let the job finish to show what it did
        await poll(jp_fetch, body["id"], FINISHED)

    assert registry_text(installation) == before
    assert code == 400, body
    assert "U+000A" in body["message"]
    assert "printable" in body["message"]
    assert list(installation.extra_envs_dir.iterdir()) == []


@pytest.mark.parametrize("field", ["prefix", "name"])
async def test_nul_in_the_prefix_or_name_is_400_not_500(
    jp_fetch, installation: CondaInstallation, rig_channel: RigChannel, field: str
):
    value = f"{installation.extra_envs_dir}/a\x00b" if field == "prefix" else "a\x00b"
    body = {"source": {"content": environment_yml(rig_channel, "pkgc")}, field: value}

    for dry_run in (True, False):
        code, answer = await status_and_body(post_restore(jp_fetch, {**body, "dry_run": dry_run}))

        assert code == 400, answer
        assert "NUL" in answer["message"]


async def test_a_300_character_name_is_400_naming_the_limit(
    jp_fetch, installation: CondaInstallation, rig_channel: RigChannel
):
    body = {"source": {"content": environment_yml(rig_channel, "pkgc")}, "name": "n" * 300}

    planned, plan = await status_and_body(post_restore(jp_fetch, {**body, "dry_run": True}))
    started, job = await status_and_body(post_restore(jp_fetch, body))
    if started == 202:
        await poll(jp_fetch, job["id"], FINISHED)

    assert (planned, started) == (400, 400), (plan, job)
    assert "300 characters" in job["message"]
    assert "at most 100 characters" in job["message"]
    assert list(installation.extra_envs_dir.iterdir()) == []


async def test_a_prefix_outside_the_envs_dirs_is_400_over_rest(
    jp_fetch, installation: CondaInstallation, rig_channel: RigChannel, tmp_path: Path
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (installation.extra_envs_dir / "link").symlink_to(outside)
    content = {"content": environment_yml(rig_channel, "pkgc")}

    refused = {}
    for label, prefix in {
        "absolute": outside / "env",
        "dot-dot": f"{installation.extra_envs_dir}/../elsewhere/env",
        "symlink": installation.extra_envs_dir / "link" / "env",
    }.items():
        refused[label] = await status_and_body(
            post_restore(jp_fetch, {"source": content, "prefix": str(prefix), "dry_run": True})
        )
    inside = await status_and_body(
        post_restore(
            jp_fetch,
            {
                "source": content,
                "prefix": str(installation.extra_envs_dir / "mine"),
                "dry_run": True,
            },
        )
    )

    assert {label: code for label, (code, _) in refused.items()} == dict.fromkeys(refused, 400)
    for _, answer in refused.values():
        assert "allowed_prefix_roots" in answer["message"]
    assert inside[0] == 200, inside[1]
    assert not (outside / "env").exists()


class TestAllowedPrefixRoots:
    @pytest.fixture
    def jp_server_config(self, jp_server_config, tmp_path):
        roots = [str(tmp_path / "shared-envs"), "~/project-envs", "relative-envs"]
        return {**jp_server_config, "ReproApp": {"allowed_prefix_roots": roots}}

    async def test_prefixes_under_configured_roots_are_accepted(
        self,
        jp_fetch,
        jp_root_dir: Path,
        installation: CondaInstallation,
        rig_channel: RigChannel,
        tmp_path: Path,
    ):
        content = {"content": environment_yml(rig_channel, "pkgc")}
        accepted = [
            tmp_path / "shared-envs" / "one",
            installation.home / "project-envs" / "two",  # `~` is the server's HOME
            jp_root_dir / "relative-envs" / "three",  # relative to the server's root_dir
        ]
        refused = [
            tmp_path / "shared-envs" / ".." / "escaped",
            tmp_path / "elsewhere" / "env",
            tmp_path / "shared-envs",  # the root itself is no environment
        ]

        answers = [
            await status_and_body(
                post_restore(jp_fetch, {"source": content, "prefix": str(p), "dry_run": True})
            )
            for p in accepted + refused
        ]
        code, job = await status_and_body(
            post_restore(jp_fetch, {"source": content, "prefix": str(accepted[0])})
        )
        assert code == 202, job
        final, _ = await poll(jp_fetch, job["id"], FINISHED)

        assert [c for c, _ in answers] == [200] * len(accepted) + [400] * len(refused), answers
        assert final["state"] == "succeeded", final["error"]
        assert "pkgc" in installation.installed(accepted[0])


def test_the_cli_keeps_any_prefix_and_refuses_a_line_break(
    rig_environ, conda_installation: CondaInstallation, rig_channel: RigChannel, tmp_path, capsys
):
    spec = tmp_path / "environment.yml"
    spec.write_text(environment_yml(rig_channel, "pkgc"))
    anywhere = tmp_path / "anywhere" / "env"

    status = main(["restore", str(spec), "--prefix", str(anywhere), "--yes"])
    _, err = capsys.readouterr()
    forged = main(["restore", str(spec), "--prefix", f"{tmp_path}/x\n/forged", "--yes"])
    _, refused = capsys.readouterr()

    assert status == 0, err
    assert "pkgc" in conda_installation.installed(anywhere)
    assert forged == 1
    assert "U+000A" in refused
    assert not (tmp_path / "x\n").exists()
    assert "forged" not in registry_text(conda_installation)


@pytest.mark.parametrize(
    "character",
    ["\t", "\r", "\x7f", "\x85", "\u2028", "\u2029", "\u202e", "\x1b"],
    ids=["tab", "cr", "del", "nel", "line-sep", "para-sep", "rtl-override", "escape"],
)
async def test_control_characters_in_prefix_and_name_are_refused(
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
    tmp_path: Path,
    character: str,
):
    service = _service(conda_installation, rig_environ)
    source = _source(rig_channel, "pkgc")
    code = re.escape(f"U+{ord(character):04X}")

    with pytest.raises(InvalidTarget, match=code) as by_prefix:
        await service.plan(source, prefix=tmp_path / f"a{character}b")
    with pytest.raises(InvalidTarget, match=code):
        await service.restore(source, prefix=tmp_path / f"a{character}b")
    with pytest.raises(InvalidTarget, match=code):
        await service.restore(source, name=f"a{character}b")

    assert "only printable characters and spaces" in str(by_prefix.value)
    assert list(tmp_path.iterdir()) == []


async def test_an_over_long_prefix_is_refused_naming_the_limit(
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
    tmp_path: Path,
):
    service = _service(conda_installation, rig_environ)
    deep = tmp_path / ("d" * 120) / ("e" * 120) / "env"

    with pytest.raises(InvalidTarget, match="at most 255 bytes"):
        await service.restore(_source(rig_channel, "pkgc"), prefix=deep)
    assert list(tmp_path.iterdir()) == []


async def test_a_spec_with_an_over_long_name_is_planned_under_a_shorter_one(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
):
    service = _service(conda_installation, rig_environ)
    source = load_source(content="name: " + "x" * 300 + "\n" + environment_yml(rig_channel, "pkgc"))

    plan = await service.plan(source)

    assert plan.name == "x" * 100
    assert any("300 characters" in w for w in plan.warnings)


def test_register_prefix_refuses_a_path_that_would_forge_lines(tmp_path: Path):
    registry = tmp_path / ".conda" / "environments.txt"
    registry.parent.mkdir()
    registry.write_text("/opt/env\n")

    for bad in ("/x\n/forged", "/x\r/forged", "/x\u2028/forged", "/x\x00"):
        with pytest.raises(ValueError, match="control characters"):
            register_prefix(tmp_path, Path(bad))

    assert registry.read_text() == "/opt/env\n"


# ============================================================================================
# item 6: full, read-only and forbidden file systems


async def test_a_full_envs_dir_fails_the_claim_cleanly_and_frees_the_name(
    mounts: Mounts,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
):
    envs = mounts.tmpfs(conda_installation.extra_envs_dir, "256k")
    filler = fill(envs)
    service = _service(conda_installation, rig_environ)
    source = _source(rig_channel, "python", "pkgc")

    with pytest.raises(DiskError) as failed:
        await service.restore(source, name="full", progress=Recorder())
    left = sorted(p.name for p in envs.iterdir())
    filler.unlink()
    result = await service.restore(source, name="full", progress=Recorder())

    assert f"no space left on device at {envs / 'full'}" in str(failed.value)
    assert "creating the environment folder" in str(failed.value)
    assert left == ["filler"]
    assert result.prefix == envs / "full"
    assert "pkgc" in conda_installation.installed(result.prefix)
    assert not (result.prefix / RESTORE_MARKER).exists()


async def test_a_disk_that_fills_during_the_install_says_so_and_leaves_nothing(
    mounts: Mounts,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
):
    envs = mounts.tmpfs(conda_installation.extra_envs_dir, "256k")
    # One page left: the claim (folder and marker) fits, the packages do not.
    filler = fill(envs, leave=4096)
    service = _service(conda_installation, rig_environ)
    source = _source(rig_channel, "python", "ipykernel", "pkgc")
    progress = Recorder()

    with pytest.raises(DiskError) as failed:
        await service.restore(source, name="midway", progress=progress)
    left = sorted(p.name for p in envs.iterdir())
    filler.unlink()
    result = await service.restore(source, name="midway", progress=Recorder())

    assert f"no space left on device at {envs / 'midway'}" in str(failed.value)
    assert "while installing the packages" in str(failed.value)
    assert any("os error 28" in line for line in progress.lines)  # rattler's own words, logged
    assert left == ["filler"]
    assert "pkgc" in conda_installation.installed(result.prefix)


async def test_a_full_envs_dir_over_rest_fails_the_job_with_the_reason_then_works(
    jp_fetch, mounts: Mounts, installation: CondaInstallation, rig_channel: RigChannel
):
    envs = mounts.tmpfs(installation.extra_envs_dir, "256k")
    filler = fill(envs)
    body = {"source": {"content": environment_yml(rig_channel, "python", "pkgc")}, "name": "full"}

    first = json.loads((await post_restore(jp_fetch, body)).body)
    failed, _ = await poll(jp_fetch, first["id"], FINISHED)
    left = sorted(p.name for p in envs.iterdir())
    filler.unlink()
    code, second = await status_and_body(post_restore(jp_fetch, body))
    final = (await poll(jp_fetch, second["id"], FINISHED))[0] if code == 202 else second

    assert failed["state"] == "failed"
    assert failed["error"]["message"] != UNEXPECTED_MESSAGE
    assert "no space left on device at" in failed["error"]["message"]
    assert failed["error"]["reason"] == "disk error"
    assert left == ["filler"]
    assert code == 202, second
    assert final["state"] == "succeeded", final["error"]


async def test_a_read_only_target_says_so_and_leaves_nothing(
    mounts: Mounts,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
    tmp_path: Path,
    capsys,
):
    frozen = mounts.tmpfs(tmp_path / "frozen", "256k")
    mounts.read_only(frozen)
    service = _service(conda_installation, rig_environ)
    spec = tmp_path / "environment.yml"
    spec.write_text(environment_yml(rig_channel, "pkgc"))

    with pytest.raises(DiskError) as failed:
        await service.restore(load_source(file=spec), prefix=frozen / "env")
    status = await asyncio.to_thread(
        main, ["restore", str(spec), "--prefix", str(frozen / "cli"), "--yes"]
    )
    _, err = capsys.readouterr()

    assert f"read-only file system at {frozen / 'env'}" in str(failed.value)
    assert status == 1
    assert f"read-only file system at {frozen / 'cli'}" in err
    assert list(frozen.iterdir()) == []


def _big_wheel(folder: Path, name: str, megabytes: int) -> Path:
    """A pure-Python wheel carrying `megabytes` of data, written by hand (no build tools)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-1.0.dist-info"
    files: dict[str, bytes] = {
        f"{name}/__init__.py": b"",
        f"{name}/data.bin": b"\0" * (megabytes << 20),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{dist}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist}/RECORD"] = ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


async def test_a_disk_that_fills_during_pip_says_so_and_leaves_nothing(
    mounts: Mounts,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
    tmp_path: Path,
):
    small = mounts.tmpfs(tmp_path / "small", "1m")
    wheels = tmp_path / "wheels"
    _big_wheel(wheels, "bigwheel", 4)
    service = _service(
        conda_installation, rig_environ, pip_find_links=(str(wheels),), pip_no_index=True
    )
    source = _source(rig_channel, "python", "ipykernel", extra="  - pip:\n      - bigwheel==1.0\n")

    with pytest.raises(DiskError) as failed:
        await service.restore(source, prefix=small / "env", progress=Recorder())

    assert f"no space left on device at {small / 'env'}" in str(failed.value)
    assert "while installing the pip section" in str(failed.value)
    assert list(small.iterdir()) == []


async def test_an_unwritable_registry_is_a_warning_as_in_conda(
    mounts: Mounts,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
):
    conda_dir = mounts.tmpfs(conda_installation.home / ".conda", "64k")
    mounts.read_only(conda_dir)
    progress = Recorder()

    result = await _service(conda_installation, rig_environ).restore(
        _source(rig_channel, "pkgc"), name="unlisted", progress=progress
    )

    assert "pkgc" in conda_installation.installed(result.prefix)
    assert not (result.prefix / RESTORE_MARKER).exists()
    assert any(
        line.startswith("warning:") and "environments.txt" in line for line in progress.lines
    ), progress.lines


async def test_a_full_registry_fails_the_restore_naming_the_file(
    mounts: Mounts,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
):
    conda_dir = mounts.tmpfs(conda_installation.home / ".conda", "64k")
    fill(conda_dir)

    with pytest.raises(DiskError) as failed:
        await _service(conda_installation, rig_environ).restore(
            _source(rig_channel, "pkgc"), name="unregistered", progress=Recorder()
        )

    assert f"no space left on device at {conda_dir / 'environments.txt'}" in str(failed.value)
    assert "while registering the environment" in str(failed.value)
    assert not (conda_installation.extra_envs_dir / "unregistered").exists()


_RESTORE_INTO = """
import asyncio, sys
from jupyter_repro.restore.errors import RestoreError
from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.source import load_source
service = RestoreService(RestoreOptions(), environ={"HOME": sys.argv[2]})
source = load_source(content="dependencies: [pkga]\\n")
try:
    asyncio.run(service.restore(source, prefix=sys.argv[1]))
except RestoreError as error:
    print(type(error).__name__, error)
"""
_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3


def _drop_root_overrides() -> None:
    """In the child before exec: root without the capabilities that ignore permission bits
    (the interpreter lives where only root may read, so running as nobody is no option)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_permission_denied_says_so(tmp_path: Path):
    """EACCES for real: a folder without write permission, written to by a process that
    honours permission bits (as root: one without CAP_DAC_OVERRIDE)."""
    locked = Path(tempfile.mkdtemp(prefix="repro-locked-"))
    try:
        locked.chmod(0o555)
        target = locked / "env"
        if os.geteuid() == 0:
            try:
                done = subprocess.run(
                    [sys.executable, "-c", _RESTORE_INTO, str(target), str(locked)],
                    capture_output=True,
                    text=True,
                    preexec_fn=_drop_root_overrides,
                    timeout=60,
                )
            except subprocess.SubprocessError as error:
                unavailable(f"cannot drop root's CAP_DAC_OVERRIDE here: {error}")
            output = done.stdout + done.stderr
        else:
            service = RestoreService(RestoreOptions(), environ={"HOME": str(tmp_path)})
            source = load_source(content="dependencies: [pkga]\n")
            try:
                asyncio.run(service.restore(source, prefix=target))
                output = "restored"
            except DiskError as error:
                output = f"DiskError {error}"
        assert f"DiskError permission denied at {target}" in output, output
        assert not target.exists()
    finally:
        locked.chmod(0o755)
        shutil.rmtree(locked, ignore_errors=True)


# ============================================================================================
# item 7: a spec's variables


VARIABLES = "variables:\n  REPRO_GREETING: hello world\n  REPRO_UNICODE: grüße\n  REPRO_EMPTY: ''\n"
EXPECTED = {"REPRO_GREETING": "hello world", "REPRO_UNICODE": "grüße", "REPRO_EMPTY": ""}


async def test_variables_are_written_as_conda_does_and_exported_back(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
):
    source = _source(rig_channel, "python", "pkgc", extra=VARIABLES)

    result = await _service(conda_installation, rig_environ).restore(source, name="withvars")

    state = json.loads((result.prefix / "conda-meta" / "state").read_text(encoding="utf-8"))
    assert state == {"env_vars": EXPECTED}
    assert Prefix(result.prefix).activation_env_vars().items() >= EXPECTED.items()
    exported = export_environment(result.prefix, "portable", "withvars")
    assert dict(exported.variables) == EXPECTED
    assert "REPRO_GREETING: hello world" in exported.to_yaml()


def test_write_env_vars_keeps_what_the_state_file_had(tmp_path: Path):
    (tmp_path / "conda-meta").mkdir()
    state = tmp_path / "conda-meta" / "state"
    state.write_text(json.dumps({"env_vars": {"OLD": "1", "KEPT": "2"}, "other": [1]}))

    write_env_vars(tmp_path, {"OLD": "changed", "NEW": "3"})

    assert json.loads(state.read_text()) == {
        "env_vars": {"OLD": "changed", "KEPT": "2", "NEW": "3"},
        "other": [1],
    }
    assert [p.name for p in state.parent.iterdir()] == ["state"]  # no temporary file left


async def test_restored_variables_reach_the_kernel(
    jp_fetch, jp_serverapp, installation: CondaInstallation, rig_channel: RigChannel
):
    content = environment_yml(rig_channel, "python", "ipykernel") + VARIABLES
    job = json.loads(
        (await post_restore(jp_fetch, {"source": {"content": content}, "name": "kvars"})).body
    )
    final, _ = await poll(jp_fetch, job["id"], FINISHED)
    assert final["state"] == "succeeded", final["error"]

    assert "conda-env-kvars-py" in await kernelspecs(jp_fetch)
    kernel_id = await start_kernel(jp_fetch, "conda-env-kvars-py")
    try:
        printed = run_in_kernel(
            jp_serverapp, kernel_id, "import os; print(repr(os.environ['REPRO_GREETING']))"
        )
    finally:
        await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    assert printed.strip() == repr("hello world")


@pytest.mark.asyncio
async def test_the_environment_is_private_while_it_is_built_and_ordinary_after(
    conda_installation: CondaInstallation, rig_channel: RigChannel, rig_environ, tmp_path: Path
) -> None:
    """Installers keep archives' file modes (a 0666 file stays 0666 until corrected): while
    the restore runs, nobody else may even enter the folder."""
    target = tmp_path / "private"
    seen: list[int] = []

    class Watch(Recorder):
        def phase(self, name: str, done: int, total: int) -> None:
            super().phase(name, done, total)
            if target.exists() and (target / RESTORE_MARKER).exists():
                seen.append(target.stat().st_mode & 0o777)

    source = load_source(content=f"channels: [{rig_channel.url}]\ndependencies: [pkgc]\n")
    old = os.umask(0o022)
    try:
        await _service(conda_installation, rig_environ).restore(
            source, prefix=target, progress=Watch()
        )
    finally:
        os.umask(old)

    assert seen
    assert set(seen) == {0o700}
    assert target.stat().st_mode & 0o777 == 0o755


def test_register_prefix_appends_once_and_mends_a_last_line_without_its_break(tmp_path: Path):
    registry = tmp_path / ".conda" / "environments.txt"
    registry.parent.mkdir()
    registry.write_text("/opt/conda\n/home/x/envs/old")  # conda's own file, last line unended

    register_prefix(tmp_path, Path("/home/x/envs/new"))
    register_prefix(tmp_path, Path("/home/x/envs/new"))
    register_prefix(tmp_path, Path("/home/x/envs/old"))  # listed already (without its break)

    assert registry.read_text() == "/opt/conda\n/home/x/envs/old\n/home/x/envs/new\n"


def test_register_prefix_knows_a_prefix_written_with_a_trailing_slash(tmp_path: Path):
    registry = tmp_path / ".conda" / "environments.txt"
    registry.parent.mkdir()
    registry.write_text("/home/x/envs/a/\n")

    register_prefix(tmp_path, Path("/home/x/envs/a"))

    assert registry.read_text() == "/home/x/envs/a/\n"


@pytest.mark.parametrize(
    "channel", ["https://conda.example.org/x", "https://a-much-longer-mirror.example.org/deep/x"]
)
def test_restore_origins_rewrites_a_record_in_place_whether_it_grows_or_shrinks(
    tmp_path: Path, channel: str
):
    """The installed record named the staging folder; afterwards it names the lock's URL
    (without credentials) and is whole JSON, however the length changed."""
    from types import SimpleNamespace

    from jupyter_repro.restore.verified import Verified, restore_origins
    from jupyter_repro.specs.lock import LockedConda

    staged_channel = "file:///tmp/jupyter-repro-lock-abcdefgh"
    staged = f"{staged_channel}/linux-64-pkga-1.0-0.conda"
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    record = {"name": "pkga", "url": staged, "channel": staged_channel, "files": ["a"] * 3}
    (meta / "pkga-1.0-0.json").write_text(json.dumps(record, indent=2))
    user = channel.replace("https://", "https://user:secret@")
    package = LockedConda("pkga", "1.0", "0", "linux-64", f"{user}/linux-64/pkga-1.0-0.conda", user)

    restore_origins(
        tmp_path, [Verified(package, tmp_path, SimpleNamespace(url=staged, channel=staged_channel))]
    )

    written = json.loads((meta / "pkga-1.0-0.json").read_text())
    assert written == {
        **record,
        "url": f"{channel}/linux-64/pkga-1.0-0.conda",
        "channel": channel,
    }
