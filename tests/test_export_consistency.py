"""The product agrees with itself: what an export writes, drift reads as in sync, and a restore
of it re-creates the same packages. Real rig environments, every mode and format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_repro.notebooks.drift import compare
from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.environment import (
    EnvironmentSpec,
    parse_environment_dict,
    parse_environment_yaml,
)
from jupyter_repro.specs.export import EXPORT_MODES, export_environment
from tests.rig import CondaInstallation, RigChannel
from tests.rig.channel import PackageDef, build_channel, default_packages, generic_package
from tests.test_restore import _write_wheel

pytestmark = pytest.mark.timeout(300)


def _round_trips(prefix: Path, mode: str) -> dict[str, EnvironmentSpec]:
    """The export of `prefix` in `mode`, read back from each text format."""
    spec = export_environment(prefix, mode)  # type: ignore[arg-type]
    return {
        "yaml": parse_environment_yaml(spec.to_yaml()).spec,
        "json": parse_environment_dict(json.loads(spec.to_json())).spec,
    }


@pytest.fixture
def installation(conda_installation_factory) -> CondaInstallation:
    inst = conda_installation_factory(standard_envs=True)
    prefix = inst.envs["py"]
    # pip installs of every kind an export lists: from an index, from git, from a URL.
    inst.add_pip_package(prefix, "Rig-Pip", "1.0")
    vcs = inst.add_pip_package(prefix, "from-git", "0.3")
    (vcs / "direct_url.json").write_text(
        json.dumps(
            {
                "url": "https://example.org/lab/from-git.git",
                "vcs_info": {"vcs": "git", "commit_id": "0123456789abcdef"},
            }
        )
    )
    archive = inst.add_pip_package(prefix, "from_url", "2.1")
    (archive / "direct_url.json").write_text(
        json.dumps({"url": "https://example.org/from_url-2.1.tar.gz", "archive_info": {}})
    )
    # An editable install is never exported; it must not count as drift either.
    editable = inst.add_pip_package(prefix, "mine", "0.0.1")
    (editable / "direct_url.json").write_text(
        json.dumps({"url": "file:///home/me/mine", "dir_info": {"editable": True}})
    )
    # A venv next to the conda environments, with a pip package of its own.
    venv = inst.home / "projects" / "tool" / ".venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60
    )
    inst.add_pip_package(venv, "venv-only", "3.2.1")
    inst.envs["venv"] = venv
    return inst


def test_drift_right_after_an_export_is_in_sync_for_every_mode_format_and_environment(
    installation: CondaInstallation,
):
    prefixes = {"base": installation.root_prefix, **installation.envs}
    assert {"base", "py", "r", "old", "nokernel", "demo", "venv"} <= set(prefixes)

    verdicts = {
        (name, mode, fmt): compare(spec, prefix, mode)
        for name, prefix in prefixes.items()
        for mode in EXPORT_MODES
        for fmt, spec in _round_trips(prefix, mode).items()
    }

    drifted = {key: drift.to_json() for key, drift in verdicts.items() if drift.status != "in_sync"}
    assert drifted == {}
    # Not vacuous: the pip packages were exported and judged.
    py = _round_trips(installation.envs["py"], "portable")["yaml"]
    assert "rig-pip==1.0" in [p.lower() for p in py.pip]
    assert any(p.startswith("from-git @ git+https://") for p in py.pip)


def test_an_export_names_no_package_the_environment_lacks(installation: CondaInstallation):
    """pip-installed packages without a conda `pip` do not make the export ask for pip."""
    prefix = installation.envs["py"]
    installed = set(installation.installed(prefix))
    assert "pip" not in installed

    for mode in EXPORT_MODES:
        spec = export_environment(prefix, mode)
        named = {d.split("=", 1)[0] for d in spec.dependencies}
        assert spec.pip
        assert named <= installed, (mode, named - installed)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", EXPORT_MODES)
async def test_a_restore_of_an_export_recreates_the_same_packages(
    mode: str,
    tmp_path: Path,
    conda_installation: CondaInstallation,
    rig_environ: dict[str, str],
    rig_channel: RigChannel,
):
    original = conda_installation.create_env("original", ["python", "pkgc", "pkgb=1.0"])
    conda_installation.add_pip_package(original, "reprowheel", "1.0")
    wheels = tmp_path / "wheels"
    _write_wheel(wheels, "reprowheel", "1.0")
    exported = export_environment(original, mode)  # type: ignore[arg-type]
    service = RestoreService(
        RestoreOptions(
            cache_dir=conda_installation.package_cache,
            pip_find_links=(str(wheels),),
            pip_no_index=True,
        ),
        environ=rig_environ,
        home=conda_installation.home,
    )

    result = await service.restore(load_source(content=exported.to_yaml()), name=f"copy-{mode}")

    def packages(prefix: Path) -> set[tuple[str, str, str]]:
        records = (json.loads(p.read_text()) for p in (prefix / "conda-meta").glob("*.json"))
        return {(r["name"], r["version"], r["build"]) for r in records}

    assert packages(result.prefix) == packages(original)
    assert result.pip == 1
    assert compare(exported, result.prefix, mode).status == "in_sync"


@pytest.fixture
def variant_channel(tmp_path_factory: pytest.TempPathFactory) -> RigChannel:
    """The rig's packages plus two builds of one `python_abi` version: a free-threaded
    `*_cp313t` and a regular `*_cp313` one (newer, so a bare request picks it)."""
    import datetime as dt

    later = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
    abi = [
        generic_package("python_abi", "3.13", build="8_cp313t"),
        generic_package("python_abi", "3.13", build="9_cp313", timestamp=later),
    ]
    packages: list[PackageDef] = [*default_packages(), *abi]
    return build_channel(tmp_path_factory.mktemp("variants"), packages)


@pytest.mark.asyncio
async def test_portable_keeps_a_requested_build_constraint_through_a_restore(
    conda_installation_factory,
    variant_channel: RigChannel,
    monkeypatch: pytest.MonkeyPatch,
):
    inst = conda_installation_factory(channel=variant_channel)
    prefix = inst.create_env("ft", ["pkga", "python_abi[build=*_cp313t]"])
    assert inst.installed(prefix)["python_abi"] == "3.13"
    assert "python_abi-3.13-8_cp313t.json" in {p.name for p in (prefix / "conda-meta").iterdir()}

    spec = export_environment(prefix, "portable")

    assert "python_abi=3.13=*_cp313t" in spec.dependencies
    environ = inst.environ()
    for key in list(environ):
        monkeypatch.setenv(key, environ[key])
    service = RestoreService(
        RestoreOptions(cache_dir=inst.package_cache), environ=environ, home=inst.home
    )
    plan = await service.plan(load_source(content=spec.to_yaml()), name="ft-copy")
    builds = {p.name: p.build for p in plan.packages}
    assert builds["python_abi"] == "8_cp313t"
    assert compare(spec, prefix, "portable").status == "in_sync"
