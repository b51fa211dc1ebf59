"""Restoring environments: real rattler solves and installs from the rig's local channel."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from jupyter_repro.environments.discovery import EnvironmentDiscovery
from jupyter_repro.environments.prefix import RESTORE_MARKER, Prefix
from jupyter_repro.notebooks.embedded import embed_spec
from jupyter_repro.restore.channels import (
    CondaConfig,
    channel_urls,
    detect_virtual_packages,
    read_conda_config,
)
from jupyter_repro.restore.errors import (
    RefusedSpec,
    RestoreError,
    TargetBusy,
    TargetExists,
    UnsatisfiableSpec,
)
from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.source import RestoreSource, load_source
from jupyter_repro.specs.environment import EnvironmentSpec, SpecError
from jupyter_repro.specs.export import export_explicit
from tests.rig import CondaInstallation, RigChannel, read_history, requested_specs
from tests.rig.channel import PKGB_LATEST, PYTHON_KERNEL_DIR


class Recorder:
    """A `Progress` that keeps everything it is told."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, int, int]] = []
        self.lines: list[str] = []

    def phase(self, name: str, done: int, total: int) -> None:
        self.phases.append((name, done, total))

    def log(self, line: str) -> None:
        self.lines.append(line)


def _service(inst: CondaInstallation, environ: dict[str, str], **options: object) -> RestoreService:
    return RestoreService(
        RestoreOptions(cache_dir=inst.package_cache, **options),  # type: ignore[arg-type]
        environ=environ,
        home=inst.home,
    )


def _yaml(channel: RigChannel, *deps: str, name: str | None = None, pip: str = "") -> str:
    lines = [f"name: {name}"] if name else []
    lines += ["channels:", f"  - {channel.url}", "dependencies:"]
    lines += [f"  - {d}" for d in deps]
    return "\n".join(lines) + "\n" + pip


def _records(prefix: Path) -> dict[str, dict[str, object]]:
    keys = ("name", "version", "build", "url", "md5", "sha256")
    out = {}
    for path in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(path.read_text())
        out[data["name"]] = {k: data.get(k) for k in keys}
    return out


# --------------------------------------------------------------------------------------------
# sources


def test_load_source_tells_yaml_explicit_and_notebook_apart(
    tmp_path: Path, rig_channel: RigChannel
) -> None:
    yml = load_source(content=_yaml(rig_channel, "pkga", name="x"))
    assert yml.kind == "yaml"
    assert yml.spec is not None
    assert yml.spec.name == "x"
    explicit = load_source(
        content="# platform: linux-64\n@EXPLICIT\nfile:///c/noarch/pkga-1.0-0.conda#"
        + "0" * 32
        + "\n"
    )
    assert explicit.kind == "explicit"
    assert explicit.platform == "linux-64"
    assert explicit.explicit[0].md5 == "0" * 32
    notebook = tmp_path / "n.ipynb"
    notebook.write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    with pytest.raises(RestoreError, match="no embedded environment"):
        load_source(notebook=notebook)
    with pytest.raises(SpecError):
        load_source(content="dependencies: [1, {a: b}]\nbogus: 1\n")


def test_condarc_channel_alias_custom_channels_and_defaults(tmp_path: Path) -> None:
    (tmp_path / ".condarc").write_text(
        "channels: [mine]\nchannel_alias: https://mirror.example/conda/\n"
        "custom_channels:\n  special: https://special.example\n"
        "default_channels: [https://mirror.example/main]\n"
    )
    config = read_conda_config({"HOME": str(tmp_path)}, tmp_path)
    assert config.channels == ("mine",)
    urls = channel_urls(["conda-forge", "special", "defaults", "nodefaults", "file:///x/"], config)
    assert urls == [
        "https://mirror.example/conda/conda-forge",
        "https://special.example/special",
        "https://mirror.example/main",
        "file:///x",
    ]
    assert channel_urls(["conda-forge"], CondaConfig()) == [
        "https://conda.anaconda.org/conda-forge"
    ]


def test_conda_override_variables_change_detected_virtual_packages() -> None:
    packages = detect_virtual_packages({"CONDA_OVERRIDE_GLIBC": "2.17"})
    glibc = [p for p in packages if p.name.normalized == "__glibc"]
    assert glibc
    assert str(glibc[0].version) == "2.17"


# --------------------------------------------------------------------------------------------
# restoring for real


@pytest.mark.asyncio
async def test_restore_from_yaml_builds_a_listed_kernel_environment_with_conda_history(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    inst = conda_installation
    service = _service(inst, rig_environ)
    source = load_source(content=_yaml(rig_channel, "python", "ipykernel", "pkgc", name="fromyml"))
    progress = Recorder()
    result = await service.restore(source, progress=progress)

    discovery = EnvironmentDiscovery(environ=rig_environ, home=inst.home)
    discovered = discovery.discover()
    assert result.prefix == discovered.envs_dirs[0].resolve() / "fromyml"
    assert result.name == "fromyml"
    assert result.packages >= 5
    assert result.pip == 0
    env = discovered.get(result.prefix)
    assert env is not None
    assert env.kind == "conda"
    assert env.prefix.name == "fromyml"
    assert (result.prefix / PYTHON_KERNEL_DIR / "kernel.json").is_file()
    assert not (result.prefix / RESTORE_MARKER).exists()
    assert result.prefix in inst.registered()

    history = read_history(result.prefix)
    assert len(history) == 1
    assert history[0].cmd is not None
    assert history[0].cmd == "jupyter repro restore '<content>' -n fromyml"
    assert any(
        "::pkgc-1.0-0" in line and line.startswith(rig_channel.url) for line in history[0].added
    )
    assert set(requested_specs(result.prefix)) == {"python", "ipykernel", "pkgc"}
    # The package's own reader agrees with the rig's (both follow conda's format).
    assert Prefix(result.prefix).requested_specs() == {
        "python": "python",
        "ipykernel": "ipykernel",
        "pkgc": "pkgc",
    }
    names = [p[0] for p in progress.phases]
    assert names[0] == "solve"
    assert "download" in names
    assert "link" in names
    assert names[-1] == "register"
    assert progress.phases[-1][1:] == (1, 1)

    # The environment really runs code: its python is the env's own interpreter.
    out = subprocess.run(
        [str(result.prefix / "bin" / "python"), "-c", "import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()).resolve() == result.prefix


@pytest.mark.asyncio
async def test_restore_from_explicit_list_reproduces_the_records_exactly(
    tmp_path: Path, conda_installation: CondaInstallation, rig_environ: dict[str, str]
) -> None:
    inst = conda_installation
    original = inst.create_env("orig", ["python", "pkgc", "pkgb=1.0"])
    listing = tmp_path / "explicit.txt"
    listing.write_text(export_explicit(original))
    source = load_source(file=listing)
    assert source.kind == "explicit"
    result = await _service(inst, rig_environ).restore(source, name="copy", progress=Recorder())
    assert _records(result.prefix) == _records(original)
    assert _records(result.prefix)["pkgb"]["version"] == "1.0"
    assert result.prefix in inst.registered()


@pytest.mark.asyncio
async def test_explicit_list_with_a_wrong_checksum_is_refused_and_leaves_nothing(
    tmp_path: Path, conda_installation: CondaInstallation, rig_environ: dict[str, str]
) -> None:
    inst = conda_installation
    text = export_explicit(inst.create_env("orig", ["pkgb=1.0"]))
    lines = [
        line.split("#")[0] + "#" + "f" * 32 if line.endswith(".conda#" + line[-32:]) else line
        for line in text.splitlines()
    ]
    source = load_source(content="\n".join(lines) + "\n")
    service = _service(inst, rig_environ)
    with pytest.raises(RestoreError, match="checksum mismatch"):
        await service.restore(source, name="bad", progress=Recorder())
    assert not (inst.extra_envs_dir / "bad").exists()


@pytest.mark.asyncio
async def test_restore_from_a_notebooks_embedded_spec(
    tmp_path: Path,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
) -> None:
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    spec = EnvironmentSpec(
        name="fromnb", channels=(rig_channel.url,), dependencies=("python", "ipykernel", "pkga")
    )
    embed_spec(notebook, spec, mode="portable")
    source = load_source(notebook=notebook)
    assert source.kind == "notebook"
    assert source.spec == spec
    result = await _service(conda_installation, rig_environ).restore(source, progress=Recorder())
    assert result.name == "fromnb"
    installed = conda_installation.installed(result.prefix)
    assert installed["pkga"] == "1.0"
    assert installed["pkgb"] == PKGB_LATEST
    env = EnvironmentDiscovery(environ=rig_environ, home=conda_installation.home).discover()
    assert env.get(result.prefix) is not None


@pytest.mark.asyncio
async def test_plan_solves_without_touching_the_disk(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    inst = conda_installation
    before = sorted(p.name for p in inst.extra_envs_dir.iterdir())
    registry = inst.environments_txt.read_text()
    source = load_source(content=_yaml(rig_channel, "pkgc", name="planned"))
    plan = await _service(inst, rig_environ).plan(source)
    assert plan.target == inst.extra_envs_dir / "planned"
    assert {p.name for p in plan.packages} == {"pkga", "pkgb", "pkgc"}
    pkgb = next(p for p in plan.packages if p.name == "pkgb")
    assert pkgb.version == PKGB_LATEST
    assert pkgb.size
    assert pkgb.url.startswith(rig_channel.url)
    assert plan.channels == (rig_channel.url,)
    assert plan.engine == "rattler"
    assert json.loads(json.dumps(plan.to_json()))["target"] == str(plan.target)
    assert sorted(p.name for p in inst.extra_envs_dir.iterdir()) == before
    assert inst.environments_txt.read_text() == registry


@pytest.mark.asyncio
async def test_spec_without_channels_uses_the_condarc_channels(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    # The rig's ~/.condarc lists the rig channel: a spec with no channels must find it there.
    source = load_source(content="dependencies:\n  - pkga\n")
    plan = await _service(conda_installation, rig_environ).plan(source, name="cfg")
    assert plan.channels == (rig_channel.url,)
    assert {p.name for p in plan.packages} == {"pkga", "pkgb"}


@pytest.mark.asyncio
async def test_unsatisfiable_spec_names_the_conflict_and_leaves_no_folder(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    source = load_source(content=_yaml(rig_channel, "pkgd", "pkgb<2", name="nope"))
    with pytest.raises(UnsatisfiableSpec) as caught:
        await _service(conda_installation, rig_environ).restore(source, progress=Recorder())
    assert "pkgd" in str(caught.value)
    assert "pkgb >=2" in str(caught.value)
    assert not (conda_installation.extra_envs_dir / "nope").exists()


@pytest.mark.asyncio
async def test_cancelling_during_link_removes_the_partial_prefix(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    class CancelAtLink(Recorder):
        task: asyncio.Task[object] | None = None

        def phase(self, name: str, done: int, total: int) -> None:
            super().phase(name, done, total)
            if name == "link" and self.task is not None:
                self.task.cancel()
                self.task = None

    progress = CancelAtLink()
    source = load_source(
        content=_yaml(rig_channel, "python", "ipykernel", "pkgc", "rig-activate", name="gone")
    )
    service = _service(conda_installation, rig_environ)
    task = asyncio.ensure_future(service.restore(source, progress=progress))
    progress.task = task
    with pytest.raises(asyncio.CancelledError):
        await task
    # The cancel came once linking had started.
    assert any(name == "link" and 1 <= done <= 6 for name, done, _ in progress.phases)
    target = conda_installation.extra_envs_dir / "gone"
    assert not target.exists()
    assert target not in conda_installation.registered()
    discovered = EnvironmentDiscovery(environ=rig_environ, home=conda_installation.home).discover()
    assert discovered.get(target) is None


@pytest.mark.asyncio
async def test_cancelling_at_any_step_leaves_no_folder(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    # Cancel after 0, 1, 2, ... loop iterations: every await of a restore gets hit once,
    # including the ones before the install (claim, condarc, solve).
    source = load_source(content=_yaml(rig_channel, "pkgc", name="early"))
    service = _service(conda_installation, rig_environ)
    target = conda_installation.extra_envs_dir / "early"
    cancelled = 0
    for steps in range(40):
        task = asyncio.ensure_future(service.restore(source, progress=Recorder()))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            cancelled += 1
            assert not os.path.lexists(target), f"left behind after {steps} steps"
        else:
            break
    assert cancelled >= 3
    assert not service._active


def test_cleanup_leftovers_removes_prefixes_of_interrupted_restores(
    conda_installation: CondaInstallation, rig_environ: dict[str, str]
) -> None:
    inst = conda_installation
    leftover = inst.extra_envs_dir / "half"
    (leftover / "conda-meta").mkdir(parents=True)
    (leftover / "bin").mkdir()
    # A marker whose owner is a dead process on this host (pid 0 is never a restore).
    (leftover / RESTORE_MARKER).write_text(json.dumps({"pid": 999_999_999, "host": os.uname()[1]}))
    healthy = inst.create_env("healthy", ["pkga"])
    removed = _service(inst, rig_environ).cleanup_leftovers()
    assert removed == [leftover.resolve()]
    assert not leftover.exists()
    assert healthy.exists()


@pytest.mark.asyncio
async def test_two_concurrent_restores_onto_one_name_one_is_refused(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    service = _service(conda_installation, rig_environ)
    source = load_source(content=_yaml(rig_channel, "pkga", name="twice"))
    outcomes = await asyncio.gather(
        service.restore(source, progress=Recorder()),
        service.restore(source, progress=Recorder()),
        return_exceptions=True,
    )
    busy = [o for o in outcomes if isinstance(o, TargetBusy)]
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(busy) == 1, outcomes
    assert len(done) == 1, outcomes
    assert conda_installation.installed(done[0].prefix) == {"pkga": "1.0", "pkgb": PKGB_LATEST}


@pytest.mark.asyncio
async def test_two_services_cannot_claim_one_target(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    # Two services stand for two server processes: only the on-disk claim can stop the second.
    source = load_source(content=_yaml(rig_channel, "pkga", name="shared"))
    first, second = (
        _service(conda_installation, rig_environ),
        _service(conda_installation, rig_environ),
    )
    outcomes = await asyncio.gather(
        first.restore(source, progress=Recorder()),
        second.restore(source, progress=Recorder()),
        return_exceptions=True,
    )
    assert sum(isinstance(o, (TargetBusy, TargetExists)) for o in outcomes) == 1, outcomes
    assert (conda_installation.extra_envs_dir / "shared" / "conda-meta" / "history").exists()


@pytest.mark.asyncio
async def test_existing_target_is_refused_and_left_alone(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    existing = conda_installation.create_env("taken", ["pkga"], conda_installation.extra_envs_dir)
    before = _records(existing)
    source = load_source(content=_yaml(rig_channel, "pkgc", name="taken"))
    service = _service(conda_installation, rig_environ)
    plan = await service.plan(source)
    assert plan.conflict is not None
    assert plan.conflict.prefix == existing
    assert plan.suggested_name == "taken-2"
    with pytest.raises(TargetExists, match="taken-2"):
        await service.plan(source, suggest_name=False)
    with pytest.raises(TargetExists):
        await service.restore(source, progress=Recorder())
    with pytest.raises(TargetExists):
        await service.restore(source, prefix=str(existing), progress=Recorder())
    assert _records(existing) == before


@pytest.mark.asyncio
async def test_bad_names_are_refused(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    service = _service(conda_installation, rig_environ)
    source = load_source(content=_yaml(rig_channel, "pkga"))
    for bad in ("../escape", "base", "a b"):
        with pytest.raises(RefusedSpec, match="environment name"):
            await service.plan(source, name=bad)
    with pytest.raises(RestoreError, match="give a name or a prefix"):
        await service.plan(source)


@pytest.mark.asyncio
async def test_spec_prefix_key_never_decides_the_target(
    tmp_path: Path,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    text = _yaml(rig_channel, "pkga", name="safe") + f"prefix: {elsewhere}\n"
    plan = await _service(conda_installation, rig_environ).plan(load_source(content=text))
    assert plan.target == conda_installation.extra_envs_dir / "safe"
    assert any("prefix" in w for w in plan.warnings)


@pytest.mark.asyncio
async def test_allowed_channels_refuse_other_channels(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    source = load_source(content=_yaml(rig_channel, "pkga", name="policy"))
    strict = _service(conda_installation, rig_environ, allowed_channels=("conda-forge",))
    with pytest.raises(RefusedSpec, match="not allowed") as caught:
        await strict.plan(source)
    assert rig_channel.url in str(caught.value)
    forge = load_source(content="channels: [conda-forge]\ndependencies: [pkga]\n")
    with pytest.raises(RestoreError) as other:
        await strict.plan(forge, name="x")
    assert not isinstance(other.value, RefusedSpec)  # allowed, just unreachable offline
    permissive = _service(conda_installation, rig_environ, allowed_channels=(rig_channel.url,))
    assert (await permissive.plan(source)).packages


@pytest.mark.asyncio
async def test_pip_urls_and_options_are_refused_unless_allowed(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    pip = "  - pip:\n      - evil @ https://example.invalid/evil-1.0.tar.gz\n"
    source = load_source(content=_yaml(rig_channel, "pkga", name="piped", pip=pip))
    with pytest.raises(RefusedSpec, match="allow_pip_urls"):
        await _service(conda_installation, rig_environ).plan(source)
    with pytest.raises(RefusedSpec):
        await _service(conda_installation, rig_environ).restore(source, progress=Recorder())
    assert not (conda_installation.extra_envs_dir / "piped").exists()
    option = load_source(
        content=_yaml(
            rig_channel, "pkga", name="opt", pip="  - pip:\n      - --index-url https://x.invalid\n"
        )
    )
    with pytest.raises(RefusedSpec):
        await _service(conda_installation, rig_environ).plan(option)
    allowed = _service(conda_installation, rig_environ, allow_pip_urls=True)
    assert (await allowed.plan(source)).pip == ("evil @ https://example.invalid/evil-1.0.tar.gz",)


def _write_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel written by hand (a zip with dist-info), no build tools."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.mark.asyncio
async def test_pip_section_installs_from_a_local_wheel_folder_with_the_envs_own_pip(
    tmp_path: Path,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
) -> None:
    wheels = tmp_path / "wheels"
    _write_wheel(wheels, "reprowheel", "1.0")
    pip = "  - pip:\n      - reprowheel==1.0\n"
    source = load_source(content=_yaml(rig_channel, "python", "ipykernel", name="withpip", pip=pip))
    service = _service(
        conda_installation, rig_environ, pip_find_links=(str(wheels),), pip_no_index=True
    )
    progress = Recorder()
    result = await service.restore(source, progress=progress)
    assert result.pip == 1
    assert ("pip", 1, 1) in progress.phases
    site = next((result.prefix / "lib").glob("python*/site-packages"))
    assert (site / "reprowheel" / "__init__.py").is_file()
    assert (site / "reprowheel-1.0.dist-info" / "INSTALLER").read_text().strip() == "pip"
    out = subprocess.run(
        [
            str(result.prefix / "bin" / "python"),
            "-c",
            "import reprowheel; print(reprowheel.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()).resolve().is_relative_to(result.prefix)


@pytest.mark.asyncio
async def test_failing_pip_section_removes_the_environment(
    tmp_path: Path,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
) -> None:
    (tmp_path / "empty").mkdir()
    pip = "  - pip:\n      - not-there-anywhere==9.9\n"
    source = load_source(content=_yaml(rig_channel, "python", "ipykernel", name="pipfail", pip=pip))
    service = _service(
        conda_installation,
        rig_environ,
        pip_find_links=(str(tmp_path / "empty"),),
        pip_no_index=True,
    )
    with pytest.raises(RestoreError, match="pip could not install"):
        await service.restore(source, progress=Recorder())
    assert not (conda_installation.extra_envs_dir / "pipfail").exists()
    assert conda_installation.extra_envs_dir / "pipfail" not in conda_installation.registered()


# --------------------------------------------------------------------------------------------
# CLI engines, against a fake


_FAKE_CONDA = textwrap.dedent(
    """\
    #!{python}
    # A FAKE conda for tests: no real conda can run on this machine (no conda, no
    # conda-forge). It behaves like `conda create --yes --prefix P --file F --json` from the
    # outside: records its argv, writes P/conda-meta with a history and one record.
    import json, os, sys
    here = os.path.dirname(os.path.abspath(__file__))
    argv = sys.argv[1:]
    spec = open(argv[argv.index("--file") + 1]).read()
    with open(os.path.join(here, "argv.json"), "w") as f:
        json.dump({{"argv": argv, "file": spec}}, f)
    if {fail}:
        error = "PackagesNotFoundError"
        print(json.dumps({{"error": error, "message": "pkgzzz not found in channels"}}))
        sys.exit(1)
    prefix = argv[argv.index("--prefix") + 1]
    meta = os.path.join(prefix, "conda-meta")
    os.makedirs(meta, exist_ok=True)
    with open(os.path.join(meta, "history"), "a") as f:
        f.write("==> 2024-01-01 00:00:00 <==\\n# cmd: conda create --yes\\n")
        f.write("# update specs: ['pkga']\\n")
    with open(os.path.join(meta, "pkga-1.0-0.json"), "w") as f:
        json.dump({{"name": "pkga", "version": "1.0", "build": "0"}}, f)
    print(json.dumps({{"success": True, "prefix": prefix}}))
    """
)


def _fake_cli(folder: Path, name: str, fail: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text(_FAKE_CONDA.format(python=sys.executable, fail=fail))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@pytest.mark.asyncio
@pytest.mark.parametrize("engine", ["conda", "micromamba"])
async def test_cli_engine_runs_create_with_an_argument_list(
    engine: str,
    tmp_path: Path,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
) -> None:
    """The CLI is a fake (see `_FAKE_CONDA`): no conda can run here."""
    exe = _fake_cli(tmp_path / "bin", engine, fail=False)
    service = _service(conda_installation, rig_environ, engine=engine, cli_paths={engine: str(exe)})
    pip_free = _yaml(rig_channel, "pkga", name="viacli")
    progress = Recorder()
    result = await service.restore(load_source(content=pip_free), progress=progress)
    recorded = json.loads((tmp_path / "bin" / "argv.json").read_text())
    argv = recorded["argv"]
    assert argv[:4] == ["create", "--yes", "--prefix", str(result.prefix)]
    assert "--json" in argv
    assert argv[argv.index("--file") + 1].endswith("environment.yml")
    assert "name:" not in recorded["file"]
    assert "- pkga" in recorded["file"]
    assert rig_channel.url in recorded["file"]
    assert Prefix(result.prefix).requested_specs() == {"pkga": "pkga"}
    assert result.packages == 1
    assert result.prefix in conda_installation.registered()
    assert not (result.prefix / RESTORE_MARKER).exists()
    assert any('"success": true' in line for line in progress.lines)


@pytest.mark.asyncio
async def test_cli_engine_gets_an_explicit_file_for_an_explicit_source(
    tmp_path: Path, conda_installation: CondaInstallation, rig_environ: dict[str, str]
) -> None:
    """The CLI is a fake (see `_FAKE_CONDA`): no conda can run here."""
    exe = _fake_cli(tmp_path / "bin", "mamba", fail=False)
    original = conda_installation.create_env("src", ["pkga"])
    source = load_source(content=export_explicit(original))
    service = _service(
        conda_installation, rig_environ, engine="mamba", cli_paths={"mamba": str(exe)}
    )
    await service.restore(source, name="expl", progress=Recorder())
    recorded = json.loads((tmp_path / "bin" / "argv.json").read_text())
    assert recorded["argv"][recorded["argv"].index("--file") + 1].endswith("explicit.txt")
    assert recorded["file"].startswith("@EXPLICIT\n")
    assert "pkga-1.0-0.conda#" in recorded["file"]


@pytest.mark.asyncio
async def test_failing_cli_engine_reports_its_message_and_leaves_nothing(
    tmp_path: Path,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
) -> None:
    """The CLI is a fake (see `_FAKE_CONDA`) that fails like conda does: no conda can run here."""
    exe = _fake_cli(tmp_path / "bin", "conda", fail=True)
    service = _service(
        conda_installation, rig_environ, engine="conda", cli_paths={"conda": str(exe)}
    )
    source = load_source(content=_yaml(rig_channel, "pkgzzz", name="clifail"))
    with pytest.raises(RestoreError, match="pkgzzz not found in channels"):
        await service.restore(source, progress=Recorder())
    assert not (conda_installation.extra_envs_dir / "clifail").exists()


@pytest.mark.asyncio
async def test_missing_cli_is_a_clear_error(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    env = dict(rig_environ, PATH="/nonexistent")
    service = _service(conda_installation, env, engine="micromamba")
    source: RestoreSource = load_source(content=_yaml(rig_channel, "pkga", name="nocli"))
    with pytest.raises(RestoreError, match="micromamba executable was not found"):
        await service.restore(source, progress=Recorder())
    assert not (conda_installation.extra_envs_dir / "nocli").exists()


# -- a spec whose own name cannot be used --------------------------------------------------

BAD_NAMES = ["my analysis env", "lab/project", "base", "exp:2"]


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", BAD_NAMES)
async def test_a_spec_with_an_unusable_name_restores_under_the_name_given(
    bad: str,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
) -> None:
    text = _yaml(rig_channel, "pkga").replace("dependencies:", f'name: "{bad}"\ndependencies:')
    source = load_source(content=text)
    service = _service(conda_installation, rig_environ)

    assert source.spec is not None
    assert source.spec.name == bad
    assert any(repr(bad) in w for w in source.warnings)
    result = await service.restore(source, name="rescued")

    assert result.prefix.name == "rescued"
    assert "pkga" in conda_installation.installed(result.prefix)


@pytest.mark.asyncio
async def test_without_a_name_the_unusable_spec_name_is_refused_with_the_way_out(
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
) -> None:
    text = _yaml(rig_channel, "pkga").replace("dependencies:", 'name: "my env"\ndependencies:')
    service = _service(conda_installation, rig_environ)

    with pytest.raises(RefusedSpec, match="--name") as refused:
        await service.restore(load_source(content=text))
    plan = await service.plan(load_source(content=text))

    assert "'my env'" in str(refused.value)
    assert not list(conda_installation.extra_envs_dir.iterdir())
    assert plan.name == "my-env"
    assert plan.target.name == "my-env"
    assert any("'my env'" in w and "'my-env'" in w for w in plan.warnings)


# -- a restore never takes a name another environment has -------------------------------------


def _kernels(inst: CondaInstallation) -> dict[str, str]:
    """Kernel name -> prefix, as the server would list them."""
    from jupyter_repro.environments.catalog import EnvironmentCatalog

    catalog = EnvironmentCatalog(EnvironmentDiscovery(environ=inst.environ(), home=inst.home))
    return {k: str(e.environment.prefix) for e in catalog.entries() for k in e.kernel_names}


@pytest.mark.asyncio
async def test_a_name_in_another_envs_dir_is_a_conflict_and_no_kernel_changes_hands(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    # `activated` lives in <root>/envs; restores go into the first envs dir (~/conda-envs).
    original = conda_installation.create_env("activated", ["python", "ipykernel"])
    assert original.parent == conda_installation.envs_dir
    kernels_before = _kernels(conda_installation)
    assert kernels_before["conda-env-activated-py"] == str(original)
    service = _service(conda_installation, rig_environ)
    source = load_source(content=_yaml(rig_channel, "python", "ipykernel", name="activated"))

    plan = await service.plan(source)
    with pytest.raises(TargetExists, match="'activated-2'") as taken:
        await service.restore(source)

    assert plan.conflict is not None
    assert plan.conflict.to_json() == {
        "name": "activated",
        "prefix": str(original),
        "reason": "environment",
        "kernels": ["conda-env-activated-py"],
    }
    assert plan.suggested_name == "activated-2"
    assert "conda-env-activated-py" in str(taken.value)
    assert not (conda_installation.extra_envs_dir / "activated").exists()
    assert _kernels(conda_installation) == kernels_before


@pytest.mark.asyncio
async def test_the_suggested_name_is_free_and_restores(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], rig_channel: RigChannel
) -> None:
    conda_installation.create_env("twin", ["pkga"])
    conda_installation.create_env("twin-2", ["pkga"], conda_installation.extra_envs_dir)
    (conda_installation.envs_dir / "twin-3").mkdir()  # a stray folder counts too
    service = _service(conda_installation, rig_environ)
    source = load_source(content=_yaml(rig_channel, "pkgc", name="twin"))

    plan = await service.plan(source)
    result = await service.restore(source, name=plan.suggested_name)

    assert plan.suggested_name == "twin-4"
    assert result.prefix == conda_installation.extra_envs_dir / "twin-4"
    assert "pkgc" in conda_installation.installed(result.prefix)


class TransferRecorder(Recorder):
    """A progress that also takes the download byte counts."""

    def __init__(self) -> None:
        super().__init__()
        self.transfers: list[tuple[int, int, int, int]] = []

    def transfer(self, bytes_done: int, bytes_total: int, downloaded: int, downloading: int):
        self.transfers.append((bytes_done, bytes_total, downloaded, downloading))


@pytest.fixture
def http_channel(rig_channel: RigChannel):
    """The rig channel served over HTTP on loopback (rattler reports downloads of URLs)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(rig_channel.path)
    )
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.asyncio
async def test_downloads_report_their_bytes(
    tmp_path: Path,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
    http_channel: str,
) -> None:
    service = RestoreService(
        RestoreOptions(cache_dir=tmp_path / "empty-cache"),
        environ=rig_environ,
        home=conda_installation.home,
    )
    progress = TransferRecorder()
    spec = f"channels:\n  - {http_channel}\ndependencies:\n  - pkgc\n"

    result = await service.restore(load_source(content=spec), name="bytes", progress=progress)

    assert progress.transfers, progress.phases
    bytes_done, bytes_total, downloaded, downloading = progress.transfers[-1]
    names = {p.name.rsplit("-", 2)[0] for p in (result.prefix / "conda-meta").glob("*.json")}
    sizes = sum(
        (rig_channel.path / "noarch" / rig_channel.package(n).filename).stat().st_size
        for n in names
    )
    assert (downloaded, downloading) == (len(names), len(names))
    assert bytes_done == bytes_total == sizes
