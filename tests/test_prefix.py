"""Prefix: one environment read from its files (records, kernels, pip dists, activation)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest

from jupyter_repro.environments.prefix import (
    RESTORE_MARKER,
    KernelDir,
    Package,
    PipPackage,
    Prefix,
    normalize_dist_name,
)
from tests.rig.channel import (
    ENVVARS,
    IPYKERNEL_NAME,
    IPYKERNEL_VERSION,
    PKGA_VERSION,
    PYTHON_KERNEL_JSON,
    PYTHON_VERSION,
    PYTHON_XY,
    R_KERNEL_JSON,
)

PREFIX_LOG = "jupyter_repro.environments.prefix"


def make_venv(path: Path, cfg: str = "version = 3.10.4\n") -> Path:
    """A venv as `python -m venv --without-pip` leaves it (no subprocess reads it here)."""
    (path / "bin").mkdir(parents=True)
    (path / "lib" / "python3.10" / "site-packages").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(sys.executable)
    (path / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).parent}\n{cfg}")
    return path


def make_dist_info(site: Path, name: str, version: str, metadata: bool = True) -> Path:
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    if metadata:
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nName: not-this\n"
        )
    return dist


def replace_file(path: Path, text: str) -> None:
    """Rewrite a file that may be hard-linked from the package cache (unlink first)."""
    path.unlink()
    path.write_text(text)


# -- what it is -------------------------------------------------------------------------------


def test_path_is_absolute_but_not_resolved(rig_installation, tmp_path, monkeypatch):
    link = tmp_path / "link-to-py"
    link.symlink_to(rig_installation.envs["py"])
    monkeypatch.chdir(tmp_path)

    assert Prefix(link).path == link
    assert Prefix("link-to-py").path == link
    assert Prefix(os.fsencode(link)).path == link
    assert Prefix(link).is_conda()


def test_conda_prefix_with_a_pyvenv_cfg_is_conda_not_venv(rig_installation):
    # The rig's python package ships a pyvenv.cfg, as some real conda pythons do.
    prefix = Prefix(rig_installation.envs["py"])
    assert (prefix.path / "pyvenv.cfg").is_file()

    assert prefix.is_conda()
    assert not prefix.is_venv()
    assert prefix.kind() == "conda"


def test_kinds_of_venv_pixi_and_plain_folder(conda_installation, tmp_path):
    venv = Prefix(make_venv(tmp_path / "venv"))
    pixi = Prefix(
        conda_installation.create_prefix_env(
            tmp_path / "proj" / ".pixi" / "envs" / "default", ["pkgc"], register=False
        )
    )
    plain = tmp_path / "plain"
    plain.mkdir()

    assert (venv.is_venv(), venv.is_conda(), venv.kind()) == (True, False, "venv")
    assert (pixi.is_pixi(), pixi.kind()) == (True, "pixi")
    assert Prefix(plain).kind() is None
    assert Prefix(tmp_path / "missing").kind() is None


def test_conda_meta_that_is_a_file_is_not_conda(tmp_path):
    (tmp_path / "conda-meta").write_text("")

    assert not Prefix(tmp_path).is_conda()
    assert Prefix(tmp_path).conda_packages() == []


def test_restore_marker_is_seen(conda_installation):
    prefix = Prefix(conda_installation.root_prefix)
    assert not prefix.is_restoring()

    (prefix.path / RESTORE_MARKER).write_text("")

    assert prefix.is_restoring()


# -- python version ---------------------------------------------------------------------------


def test_python_version_from_the_conda_record_file_name(rig_installation):
    assert Prefix(rig_installation.envs["py"]).python_version() == PYTHON_VERSION
    assert Prefix(rig_installation.envs["nokernel"]).python_version() is None


def test_python_version_uses_the_record_name_not_its_content(conda_installation):
    meta = conda_installation.root_prefix / "conda-meta"
    (record,) = meta.glob("python-*.json")
    record.rename(meta / "python-3.99.1-rig_0.json")
    (meta / "python-3.99.1-rig_0.json").write_text("{ truncated")

    # Not pyvenv.cfg (which says the host version) and not the unreadable JSON.
    assert Prefix(conda_installation.root_prefix).python_version() == "3.99.1"


def test_a_dashed_package_named_python_something_is_not_python(tmp_path):
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "conda-meta" / "python-dateutil-2.9.0-pyhd8ed1ab_0.json").write_text("{}")
    (tmp_path / "lib" / "python3.12").mkdir(parents=True)

    assert Prefix(tmp_path).python_version() == "3.12"


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        ("version = 3.10.4\n", "3.10.4"),  # python -m venv
        ("version_info = 3.12.1.final.0\n", "3.12.1"),  # virtualenv
        ("implementation = CPython\nversion_info = 3.13.0\n", "3.13.0"),  # uv
    ],
)
def test_python_version_from_pyvenv_cfg(tmp_path, cfg, expected):
    assert Prefix(make_venv(tmp_path / "v", cfg)).python_version() == expected


def test_python_version_from_lib_folder_takes_the_highest(tmp_path):
    for name in ("python3.9", "python3.12", "python3.13t", "pythonista", "python3.14.txt"):
        (tmp_path / "lib" / name).mkdir(parents=True)

    assert Prefix(tmp_path).python_version() == "3.13"


def test_python_version_of_a_missing_prefix_is_none(tmp_path):
    assert Prefix(tmp_path / "gone").python_version() is None


# -- kernels ----------------------------------------------------------------------------------


def test_kernel_dirs_of_rig_environments(rig_installation):
    (py,) = Prefix(rig_installation.envs["py"]).kernel_dirs()
    (r,) = Prefix(rig_installation.envs["r"]).kernel_dirs()

    assert (py.name, py.spec) == ("python3", PYTHON_KERNEL_JSON)
    assert py.path == rig_installation.envs["py"] / "share" / "jupyter" / "kernels" / "python3"
    assert (r.name, r.spec) == ("ir", R_KERNEL_JSON)
    assert Prefix(rig_installation.envs["nokernel"]).kernel_dirs() == []
    assert isinstance(hash(py), int)  # usable in sets despite the dict inside


def test_bad_kernel_folders_are_skipped_with_a_debug_line(conda_installation, caplog):
    kernels = conda_installation.root_prefix / "share" / "jupyter" / "kernels"
    bad = {
        "not-json": "{ not json",
        "a-list": "[1, 2]",
        "no-argv": json.dumps({"display_name": "x"}),
        "argv-string": json.dumps({"argv": "python -m x"}),
        "latin1": b'{"argv": ["\xe9"]}',
    }
    for name, content in bad.items():
        (kernels / name).mkdir()
        if isinstance(content, bytes):
            (kernels / name / "kernel.json").write_bytes(content)
        else:
            (kernels / name / "kernel.json").write_text(content)
    (kernels / "empty-folder").mkdir()
    (kernels / "a-file").write_text("")
    os.mkdir(os.fsencode(kernels) + b"/bad-\xff")
    (Path(os.fsdecode(os.fsencode(kernels) + b"/bad-\xff")) / "kernel.json").write_text(
        json.dumps({"argv": ["x"]})
    )
    (kernels / "aaa").mkdir()
    (kernels / "aaa" / "kernel.json").write_text(json.dumps({"argv": ["python"]}))

    with caplog.at_level(logging.DEBUG, logger=PREFIX_LOG):
        found = Prefix(conda_installation.root_prefix).kernel_dirs()

    assert [k.name for k in found] == ["aaa", "python3"]
    logged = caplog.text
    for name in ("not-json", "a-list", "no-argv", "argv-string", "latin1", "bad-"):
        assert name in logged


# -- conda packages ---------------------------------------------------------------------------


def test_conda_packages_from_records(rig_installation, rig_channel):
    packages = Prefix(rig_installation.envs["old"]).conda_packages()

    assert [(p.name, p.version, p.build) for p in packages] == [
        (IPYKERNEL_NAME, IPYKERNEL_VERSION, "pyh_rig_0"),
        ("pkga", PKGA_VERSION, "0"),
        ("pkgb", "1.0", "0"),
        ("python", PYTHON_VERSION, "rig_0"),
    ]
    assert all(p.channel and p.channel.startswith(rig_channel.url) for p in packages)


def test_damaged_records_fall_back_to_the_file_name(conda_installation, caplog):
    prefix = conda_installation.create_env("damaged", ["pkgc"])
    meta = prefix / "conda-meta"
    truncated = meta / "pkga-1.0-0.json"
    truncated.write_bytes(truncated.read_bytes()[:40])
    (meta / "pkgb-2.0-0.json").write_text(json.dumps({"name": "pkgb"}))  # fields missing
    (meta / "garbage.json").write_text("not json")  # neither JSON nor name-version-build
    (meta / "history").write_text("not a record, not .json\n")

    with caplog.at_level(logging.DEBUG, logger=PREFIX_LOG):
        packages = Prefix(prefix).conda_packages()

    assert packages == [
        Package("pkga", "1.0", "0", None),
        Package("pkgb", "2.0", "0", None),
        Package("pkgc", "1.0", "0", conda_installation.channel.url + "/"),
    ]
    assert "garbage.json" in caplog.text
    assert "pkga-1.0-0.json" in caplog.text


def test_dashed_package_names_parse_from_file_names(tmp_path):
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "conda-meta" / "rig-activate-1.0-0.json").write_text("")

    assert Prefix(tmp_path).conda_packages() == [Package("rig-activate", "1.0", "0", None)]


# -- pip packages -----------------------------------------------------------------------------


def test_pip_packages_are_the_dist_infos_no_conda_record_owns(
    conda_installation_factory, channel_with_a_conda_dist_info
):
    inst = conda_installation_factory(channel=channel_with_a_conda_dist_info)
    prefix = inst.create_env("mixed", ["python", "condadist"])
    site = prefix / "lib" / f"python{PYTHON_XY}" / "site-packages"
    assert (site / "condadist-1.0.dist-info" / "METADATA").is_file()
    inst.add_pip_package(prefix, "Zeta_Pkg", "0.3")
    inst.add_pip_package(prefix, "alpha.pkg", "2.0")

    assert Prefix(prefix).pip_packages() == [
        PipPackage("alpha.pkg", "2.0"),
        PipPackage("Zeta_Pkg", "0.3"),
    ]


def test_pip_packages_of_a_venv_and_broken_dist_infos(tmp_path, caplog):
    venv = make_venv(tmp_path / "venv")
    site = venv / "lib" / "python3.10" / "site-packages"
    make_dist_info(site, "requests", "2.32.0")
    make_dist_info(site, "Beta-Thing", "1.0")
    make_dist_info(site, "nometa", "0.1", metadata=False)
    (site / "stray.dist-info").write_text("a file, not a folder")

    with caplog.at_level(logging.DEBUG, logger=PREFIX_LOG):
        found = Prefix(venv).pip_packages()

    assert found == [PipPackage("Beta-Thing", "1.0"), PipPackage("requests", "2.32.0")]
    assert "nometa-0.1.dist-info" in caplog.text


def test_rig_environment_has_no_pip_packages(rig_installation):
    assert Prefix(rig_installation.envs["py"]).pip_packages() == []


def test_normalized_names():
    assert normalize_dist_name("Foo.Bar__baz-Qux") == "foo-bar-baz-qux"


# -- activation variables ---------------------------------------------------------------------


def test_env_vars_d_of_the_rig_package(rig_installation):
    assert Prefix(rig_installation.envs["py"]).activation_env_vars() == ENVVARS
    assert Prefix(rig_installation.envs["old"]).activation_env_vars() == {}


def test_state_file_wins_over_packages_and_later_files_win(conda_installation, caplog):
    prefix = conda_installation.create_env("vars", ["rig-envvars"])
    env_vars_d = prefix / "etc" / "conda" / "env_vars.d"
    (env_vars_d / "zz-later.json").write_text(json.dumps({"REPRO_RIG_OTHER": "from-zz"}))
    (env_vars_d / "aa-broken.json").write_text("{ nope")
    (env_vars_d / "notes.txt").write_text("ignored: not .json")
    (prefix / "conda-meta" / "state").write_text(
        json.dumps(
            {
                "env_vars": {
                    "REPRO_RIG_ENV_VAR": "from-state",
                    "USER_VAR": "set-by-user",
                    "NUMBER": 3,
                    "NESTED": {"no": "thanks"},
                    "REPRO_GONE": "***unset***",
                }
            }
        )
    )

    with caplog.at_level(logging.DEBUG, logger=PREFIX_LOG):
        found = Prefix(prefix).activation_env_vars()

    assert found == {
        "REPRO_RIG_ENV_VAR": "from-state",
        "REPRO_RIG_OTHER": "from-zz",
        "USER_VAR": "set-by-user",
        "NUMBER": "3",
    }
    assert "aa-broken.json" in caplog.text


def test_broken_state_file_keeps_package_vars(conda_installation):
    prefix = conda_installation.create_env("vars", ["rig-envvars"])
    (prefix / "conda-meta" / "state").write_text('{"env_vars": ')

    assert Prefix(prefix).activation_env_vars() == ENVVARS


# -- a prefix that is not there ---------------------------------------------------------------


def test_every_reader_answers_for_a_missing_or_unlistable_prefix(tmp_path):
    file_not_folder = tmp_path / "file"
    file_not_folder.write_text("")
    for path in (tmp_path / "missing", file_not_folder):
        prefix = Prefix(path)
        assert prefix.kind() is None
        assert prefix.python_version() is None
        assert prefix.kernel_dirs() == []
        assert prefix.conda_packages() == []
        assert prefix.pip_packages() == []
        assert prefix.activation_env_vars() == {}
        assert not prefix.is_restoring()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their permissions")
def test_unreadable_conda_meta_gives_no_packages(conda_installation):
    meta = conda_installation.root_prefix / "conda-meta"
    meta.chmod(0)
    try:
        prefix = Prefix(conda_installation.root_prefix)
        assert prefix.conda_packages() == []
        assert prefix.python_version() is None
    finally:
        meta.chmod(0o755)


def test_kernel_dir_is_a_value(tmp_path):
    a = KernelDir("x", tmp_path, {"argv": ["a"]})
    assert a == KernelDir("x", tmp_path, {"argv": ["a"]})
    assert a != KernelDir("x", tmp_path, {"argv": ["b"]})
