"""Tests of the offline conda rig itself: channel, environments, history, configuration."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.rig import channel as C
from tests.rig.channel import RigChannel, build_channel, generic_package
from tests.rig.installation import (
    CONDA_VERSION,
    STANDARD_ENVS,
    CondaInstallation,
    conda_spec_str,
    dist_str,
    isolated_environ,
    read_history,
    requested_specs,
)

HEADER_RE = re.compile(r"^==> \d{4}-\d\d-\d\d \d\d:\d\d:\d\d <==$")
DIST_LINE_RE = re.compile(r"^[+-]file:///\S+/(linux-64|noarch)::[a-z0-9_.-]+-[^-\s]+-[^-\s]+$")


def records(prefix: Path) -> dict[str, dict]:
    """Name -> parsed ``conda-meta/*.json`` record."""
    out = {}
    for p in (prefix / "conda-meta").glob("*.json"):
        rec = json.loads(p.read_text())
        assert p.name == f"{rec['name']}-{rec['version']}-{rec['build']}.json"
        out[rec["name"]] = rec
    return out


# -- the channel -----------------------------------------------------------------------------


def test_channel_repodata_lists_every_package(rig_channel: RigChannel) -> None:
    noarch = rig_channel.repodata("noarch")["packages.conda"]
    linux = rig_channel.repodata(C.SUBDIR)["packages.conda"]
    assert set(linux) == {f"python-{C.PYTHON_VERSION}-{C.PYTHON_BUILD}.conda"}
    assert set(noarch) == {
        f"ipykernel-{C.IPYKERNEL_VERSION}-{C.IPYKERNEL_BUILD}.conda",
        f"r-irkernel-{C.R_KERNEL_VERSION}-{C.R_KERNEL_BUILD}.conda",
        "pkga-1.0-0.conda",
        "pkgb-1.0-0.conda",
        "pkgb-2.0-0.conda",
        "pkgc-1.0-0.conda",
        "pkgd-1.0-0.conda",
        "rig-activate-1.0-0.conda",
        "rig-envvars-1.0-0.conda",
    }
    for fn in [*noarch, *linux]:
        sub = "noarch" if fn in noarch else C.SUBDIR
        assert (rig_channel.path / sub / fn).is_file()


def test_channel_metadata(rig_channel: RigChannel) -> None:
    noarch = rig_channel.repodata("noarch")["packages.conda"]
    py = rig_channel.repodata(C.SUBDIR)["packages.conda"][
        f"python-{C.PYTHON_VERSION}-{C.PYTHON_BUILD}.conda"
    ]
    assert py["version"] == C.PYTHON_VERSION
    assert py["subdir"] == "linux-64"
    assert "noarch" not in py
    ipk = noarch[f"ipykernel-{C.IPYKERNEL_VERSION}-{C.IPYKERNEL_BUILD}.conda"]
    assert ipk["noarch"] == "python"
    assert ipk["depends"] == ["python"]
    r = noarch[f"r-irkernel-{C.R_KERNEL_VERSION}-{C.R_KERNEL_BUILD}.conda"]
    assert r["noarch"] == "generic"
    assert r["depends"] == []
    assert noarch["pkga-1.0-0.conda"]["depends"] == ["pkgb >=1"]
    assert noarch["pkgc-1.0-0.conda"]["depends"] == ["pkga"]
    assert noarch["pkgd-1.0-0.conda"]["depends"] == ["pkgb >=2"]
    # A newer version was built later, as on a real channel.
    assert noarch["pkgb-2.0-0.conda"]["timestamp"] > noarch["pkgb-1.0-0.conda"]["timestamp"]
    assert rig_channel.url.startswith("file:///")
    assert not rig_channel.url.endswith("/")


def test_channel_can_grow(tmp_path: Path) -> None:
    """A test's own channel takes new versions and solves see them at once."""
    ch = build_channel(tmp_path / "ch", [generic_package("pkgb", "1.0")])
    assert [str(r.version) for r in ch.solve(["pkgb"])] == ["1.0"]
    ch.add_packages([generic_package("pkgb", "3.0")])
    assert "pkgb-3.0-0.conda" in ch.repodata("noarch")["packages.conda"]
    assert [str(r.version) for r in ch.solve(["pkgb"])] == ["3.0"]
    with pytest.raises(ValueError, match="already in the channel"):
        ch.add_packages([generic_package("pkgb", "3.0")])


def test_unsatisfiable_request_raises(rig_channel: RigChannel) -> None:
    from rattler.exceptions import SolverError

    with pytest.raises(SolverError, match="pkgb"):
        rig_channel.solve(["pkgd", "pkgb<2"])


# -- an environment on disk ------------------------------------------------------------------


def test_env_has_real_conda_meta_records(conda_installation: CondaInstallation) -> None:
    prefix = conda_installation.create_env("e", ["python", "ipykernel", "pkgc"])
    assert prefix == conda_installation.envs_dir / "e"
    recs = records(prefix)
    assert {n: r["version"] for n, r in recs.items()} == {
        "python": C.PYTHON_VERSION,
        "ipykernel": C.IPYKERNEL_VERSION,
        "pkgc": "1.0",
        "pkga": "1.0",
        "pkgb": "2.0",
    }
    for rec in recs.values():
        assert rec["channel"].rstrip("/") == conda_installation.channel.url
        assert rec["url"].startswith(conda_installation.channel.url + "/")
        assert rec["sha256"]
        assert rec["md5"]
        for rel in rec["files"]:
            assert os.path.lexists(prefix / rel), rel
    # Explicitly requested packages carry their spec; dependencies do not.
    assert recs["pkgc"]["requested_specs"] == ["pkgc"]
    assert recs["pkga"]["requested_specs"] == []
    # noarch: python files were relocated into the interpreter's site-packages.
    pth = prefix / "lib" / f"python{C.PYTHON_XY}" / "site-packages" / C.HOST_PTH_NAME
    assert f"lib/python{C.PYTHON_XY}/site-packages/{C.HOST_PTH_NAME}" in recs["ipykernel"]["files"]
    assert pth.read_text().splitlines() == C.host_site_dirs()
    assert not (prefix / "CACHEDIR.TAG").exists()


def test_env_python_is_the_host_interpreter_rehomed(conda_installation: CondaInstallation) -> None:
    prefix = conda_installation.create_env("py", ["python", "ipykernel"])
    exe = prefix / "bin" / f"python{C.PYTHON_XY}"
    assert exe.is_symlink()
    assert exe.resolve() == C.HOST_INTERPRETER
    assert (prefix / "bin" / "python").resolve() == C.HOST_INTERPRETER
    assert f"home = {C.HOST_INTERPRETER.parent}" in (prefix / "pyvenv.cfg").read_text()
    out = subprocess.run(
        [str(prefix / "bin" / "python"), "-c", "import sys, ipykernel; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
        env=conda_installation.environ(),
    ).stdout.strip()
    assert Path(out).resolve() == prefix.resolve()


def test_env_kernelspecs(rig_installation: CondaInstallation) -> None:
    py = json.loads((rig_installation.envs["py"] / C.PYTHON_KERNEL_DIR / "kernel.json").read_text())
    assert py["argv"] == ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert (py["display_name"], py["language"]) == ("Python 3 (ipykernel)", "python")
    r_prefix = rig_installation.envs["r"]
    r = json.loads((r_prefix / C.R_KERNEL_DIR / "kernel.json").read_text())
    assert r["language"] == "R"
    assert r["argv"][0] == "R"
    # The R environment has no Python at all.
    assert set(records(r_prefix)) == {"r-irkernel"}
    assert not (r_prefix / "bin" / "python").exists()


def test_history_is_in_condas_format(conda_installation: CondaInstallation) -> None:
    prefix = conda_installation.create_env("h", ["pkgc", "pkgb<2"])
    lines = (prefix / "conda-meta" / "history").read_text().splitlines()
    assert HEADER_RE.match(lines[0]), lines[0]
    assert lines[1] == "# cmd: conda create -n h pkgc pkgb<2"
    assert lines[2] == f"# conda version: {CONDA_VERSION}"
    plus = lines[3:-1]
    assert plus == sorted(plus)
    assert all(DIST_LINE_RE.match(x) for x in plus), plus
    assert {x[1:] for x in plus} == {
        f"{conda_installation.channel.url}/noarch::{n}"
        for n in ("pkga-1.0-0", "pkgb-1.0-0", "pkgc-1.0-0")
    }
    assert lines[-1] == "# update specs: ['pkgc', \"pkgb[version='<2']\"]"
    # The +lines name exactly what conda-meta holds.
    recs = records(prefix)
    assert {x.split("::")[1] for x in plus} == {
        f"{r['name']}-{r['version']}-{r['build']}" for r in recs.values()
    }


def test_history_records_later_changes(conda_installation: CondaInstallation) -> None:
    inst = conda_installation
    prefix = inst.create_env("d", ["pkgc"])
    inst.add_packages(prefix, ["pkgb=1.0"])
    assert inst.installed(prefix)["pkgb"] == "1.0"
    removed = inst.remove_packages(prefix, ["pkga"])
    assert removed == ["pkga", "pkgc"]  # pkgc depends on pkga
    assert set(inst.installed(prefix)) == {"pkgb"}
    entries = read_history(prefix)
    assert [e.cmd for e in entries] == [
        "conda create -n d pkgc",
        "conda install -n d pkgb=1.0",
        "conda remove -n d pkga",
    ]
    url = inst.channel.url
    assert entries[1].removed == [f"{url}/noarch::pkgb-2.0-0"]
    assert entries[1].added == [f"{url}/noarch::pkgb-1.0-0"]
    assert entries[1].update_specs == ["pkgb=1.0"]
    assert entries[2].remove_specs == ["pkga"]
    assert sorted(entries[2].removed) == [f"{url}/noarch::pkga-1.0-0", f"{url}/noarch::pkgc-1.0-0"]
    assert requested_specs(prefix) == {"pkgc": "pkgc", "pkgb": "pkgb=1.0"}
    assert all(e.conda_version == CONDA_VERSION for e in entries)


def test_activation_files_in_place(rig_installation: CondaInstallation) -> None:
    prefix = rig_installation.envs["py"]
    script = prefix / C.ACTIVATE_SCRIPT
    assert script.read_text() == f"export {C.ACTIVATED_VAR}={C.ACTIVATED_VALUE}\n"
    assert (prefix / C.DEACTIVATE_SCRIPT).is_file()
    assert json.loads((prefix / C.ENVVARS_FILE).read_text()) == C.ENVVARS
    # Sourcing the script really sets the variable.
    out = subprocess.run(
        ["bash", "-c", f'. {script} && printf %s "${C.ACTIVATED_VAR}"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == C.ACTIVATED_VALUE
    # Environments without those packages do not have the files.
    assert not (rig_installation.envs["old"] / C.ACTIVATE_SCRIPT).exists()


def test_two_versions_selected_by_spec(conda_installation: CondaInstallation) -> None:
    inst = conda_installation
    old = inst.create_env("old", ["pkga", "pkgb=1.0"])
    new = inst.create_env("new", ["pkga"])
    lt2 = inst.create_env("lt2", ["pkgb<2"])
    exact = inst.create_env("exact", ["pkgb==2.0=0"])
    assert inst.installed(old)["pkgb"] == "1.0"
    assert inst.installed(new)["pkgb"] == C.PKGB_LATEST
    assert inst.installed(lt2) == {"pkgb": "1.0"}
    assert inst.installed(exact) == {"pkgb": "2.0"}
    # Both versions ship the same path with their own content.
    shared = C.SHARED_FILE_TEMPLATE.format(name="pkgb")
    assert (old / shared).read_text() == "pkgb 1.0\n"
    assert (new / shared).read_text() == "pkgb 2.0\n"


# -- the installation around the environments -------------------------------------------------


def test_condarc_and_environments_txt(conda_installation: CondaInstallation) -> None:
    inst = conda_installation
    rc = yaml.safe_load(inst.condarc.read_text())
    assert rc["envs_dirs"] == [str(inst.extra_envs_dir)]
    assert rc["channels"] == [inst.channel.url]
    assert inst.registered() == [inst.root_prefix]
    a = inst.create_env("a", ["pkgc"])
    b = inst.create_env("b", ["pkgc"], inst.extra_envs_dir)
    c = inst.create_prefix_env(inst.home / "proj" / "env", ["pkgc"])
    assert b == inst.extra_envs_dir / "b"
    lines = inst.environments_txt.read_text().splitlines()
    assert lines == [str(inst.root_prefix), str(a), str(b), str(c)]
    inst.remove_env(a)
    assert str(a) not in inst.environments_txt.read_text().splitlines()
    assert not a.exists()
    inst.remove_env(b, unregister=False)  # a stale entry, as users' files often have
    assert str(b) in inst.environments_txt.read_text().splitlines()
    assert not b.exists()


def test_root_prefix(conda_installation: CondaInstallation) -> None:
    root = conda_installation.root_prefix
    assert root == conda_installation.home / "miniforge3"
    assert set(records(root)) == {"python", "ipykernel"}
    assert read_history(root)[0].update_specs == ["python", "ipykernel"]
    assert (root / "envs").is_dir()


def test_standard_installation(rig_installation: CondaInstallation) -> None:
    inst = rig_installation
    assert set(inst.envs) == {p.name for p in STANDARD_ENVS}
    assert inst.envs["old"].parent == inst.extra_envs_dir
    assert inst.envs["py"].parent == inst.envs_dir
    assert inst.registered() == [inst.root_prefix, *inst.envs.values()]
    assert inst.all_prefixes() == [
        inst.root_prefix,
        *sorted(inst.envs[p.name] for p in STANDARD_ENVS if p.where == "envs"),
        *sorted(inst.envs[p.name] for p in STANDARD_ENVS if p.where == "extra"),
    ]
    for plan in STANDARD_ENVS:
        assert read_history(inst.envs[plan.name])[0].update_specs == list(plan.specs)


def test_many_envs_from_one_solve(conda_installation: CondaInstallation) -> None:
    inst = conda_installation
    names = [f"bulk{i:03d}" for i in range(60)]
    prefixes = inst.create_envs(names, ["python", "ipykernel", "pkgc"], inst.extra_envs_dir)
    expected = {"python", "ipykernel", "pkga", "pkgb", "pkgc"}
    for prefix in prefixes:
        assert set(records(prefix)) == expected
        assert (prefix / "conda-meta" / "history").read_text().startswith("==> ")
    assert inst.registered()[1:] == prefixes
    with pytest.raises(FileExistsError):
        inst.create_env("bulk000", ["pkgc"], inst.extra_envs_dir)


def test_pip_package(conda_installation: CondaInstallation) -> None:
    prefix = conda_installation.create_env("p", ["python", "ipykernel"])
    conda_installation.add_pip_package(prefix, "rig-pip-pkg", "0.3")
    out = subprocess.run(
        [
            str(prefix / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; d = m.distribution('rig-pip-pkg');"
            " print(d.version, d.read_text('INSTALLER').strip())",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=conda_installation.environ(),
    ).stdout.split()
    assert out == ["0.3", "pip"]


def test_isolated_environ(tmp_path: Path) -> None:
    base = {
        "PATH": "/usr/bin",
        "CONDA_PREFIX": "/opt/conda",
        "CONDA_SHLVL": "1",
        "MAMBA_ROOT_PREFIX": "/opt/mamba",
        "JUPYTER_PATH": "/elsewhere",
        "HOME": "/root",
    }
    env = isolated_environ(tmp_path, package_cache=tmp_path / "pkgs", base=base)
    assert not any(k.startswith(("CONDA_", "MAMBA_")) for k in env)
    assert "JUPYTER_PATH" not in env
    assert env["PATH"] == "/usr/bin"
    assert env["HOME"] == str(tmp_path)
    assert env["RATTLER_CACHE_DIR"] == str(tmp_path / "pkgs")
    for key in (
        "CONDARC",
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR",
        "JUPYTER_RUNTIME_DIR",
        "IPYTHONDIR",
    ):
        assert Path(env[key]).is_relative_to(tmp_path), key


def test_rig_environ_patches_os_environ(
    rig_environ: dict[str, str], conda_installation: CondaInstallation
) -> None:
    assert os.environ["HOME"] == str(conda_installation.home)
    assert os.environ["JUPYTER_DATA_DIR"] == rig_environ["JUPYTER_DATA_DIR"]
    assert not any(k.startswith("CONDA_") for k in os.environ)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("pkga", "pkga"),
        ("pkgb<2", "pkgb[version='<2']"),
        ("pkgb >=1,<3", "pkgb[version='>=1,<3']"),
        ("python=3.11", "python=3.11"),
        ("pkgb==1.0", "pkgb==1.0"),
        ("pkgb=1.0=0", "pkgb==1.0=0"),
    ],
)
def test_conda_spec_str(spec: str, expected: str) -> None:
    assert conda_spec_str(spec) == expected


def test_dist_str(rig_channel: RigChannel) -> None:
    [rec] = rig_channel.solve(["pkgb=1.0"])
    assert dist_str(rec) == f"{rig_channel.url}/noarch::pkgb-1.0-0"


@pytest.mark.asyncio
async def test_rig_is_usable_from_async_tests(conda_installation: CondaInstallation) -> None:
    """Sync helpers called under a running event loop (server tests) must still work."""
    prefix = conda_installation.create_env("from-async", ["pkgb=1.0"])
    assert conda_installation.installed(prefix) == {"pkgb": "1.0"}
