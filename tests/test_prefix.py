"""Prefix: one environment read from its files (records, kernels, pip dists, activation)."""

from __future__ import annotations

import json
import logging
import os
import sys
import zipfile
from pathlib import Path

import pytest

from jupyter_repro.environments.prefix import (
    RESTORE_MARKER,
    KernelDir,
    Package,
    PipDistribution,
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


def pkg_info(name: str, version: str) -> str:
    """An egg's PKG-INFO: the core metadata headers, then a description with other names."""
    return f"Metadata-Version: 1.1\nName: {name}\nVersion: {version}\n\nName: not-this\n"


def make_zipped_egg(path: Path, members: dict[str, str]) -> Path:
    """A zipped `.egg` as easy_install leaves it: one archive file in site-packages."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def make_egg(site: Path, form: str, file_name: str, name: str, version: str) -> Path:
    """An installed egg of one of the forms pip, setuptools, easy_install and distutils write."""
    path = site / file_name
    if form == "egg-info folder":  # setup.py install, pip's legacy installs
        path.mkdir(parents=True)
        (path / "PKG-INFO").write_text(pkg_info(name, version))
    elif form == "egg-info file":  # distutils' install_egg_info
        path.write_text(pkg_info(name, version))
    elif form == "egg folder":  # easy_install, unzipped
        (path / "EGG-INFO").mkdir(parents=True)
        (path / "EGG-INFO" / "PKG-INFO").write_text(pkg_info(name, version))
    elif form == "zipped egg":  # easy_install
        make_zipped_egg(path, {"EGG-INFO/PKG-INFO": pkg_info(name, version), "m.py": ""})
    else:
        raise ValueError(form)
    return path


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


EGG_FORMS = {
    "egg-info folder": "legacy_pkg-1.2-py3.10.egg-info",
    "egg-info file": "legacy_pkg-1.2-py3.10.egg-info",
    "egg folder": "legacy_pkg-1.2-py3.10.egg",
    "zipped egg": "legacy_pkg-1.2-py3.10.egg",
}


@pytest.mark.parametrize("form", EGG_FORMS)
def test_each_egg_form_is_a_pip_install_named_by_its_metadata(tmp_path, form):
    venv = make_venv(tmp_path / "venv")
    site = venv / "lib" / "python3.10" / "site-packages"
    make_egg(site, form, EGG_FORMS[form], "Legacy.Pkg", "1.2")
    prefix = Prefix(venv)

    assert prefix.has_dist_infos()  # else an export would not read the records' files
    assert prefix.pip_distributions() == [PipDistribution("Legacy.Pkg", "1.2", "index")]
    assert prefix.pip_distributions()[0].requirement == "Legacy.Pkg==1.2"


def test_a_dist_info_wins_over_eggs_and_an_egg_over_an_egg_link(tmp_path):
    venv = make_venv(tmp_path / "venv")
    site = venv / "lib" / "python3.10" / "site-packages"
    make_dist_info(site, "foo-bar", "2.0")
    make_egg(site, "egg-info folder", "Foo.Bar-1.0-py3.10.egg-info", "Foo.Bar", "1.0")
    make_egg(site, "zipped egg", "foo_bar-0.5-py3.10.egg", "foo_bar", "0.5")
    make_egg(site, "egg-info file", "only_egg-3.0-py3.10.egg-info", "only-egg", "3.0")
    project = tmp_path / "src" / "only-egg"
    make_egg(project, "egg-info folder", "only_egg.egg-info", "only-egg", "3.1.dev0")
    (site / "only-egg.egg-link").write_text(f"{project}\n.\n")

    assert Prefix(venv).pip_distributions() == [
        PipDistribution("foo-bar", "2.0", "index"),
        PipDistribution("only-egg", "3.0", "index"),
    ]


def test_an_egg_link_is_an_editable_install_of_its_project(tmp_path, caplog):
    venv = make_venv(tmp_path / "venv")
    site = venv / "lib" / "python3.10" / "site-packages"
    project = tmp_path / "src" / "my-proj"
    make_egg(project / "src", "egg-info folder", "my_proj.egg-info", "my-proj", "0.1.dev0")
    # setup.py develop names the link after the egg, older pip after the project.
    (site / "my-proj.egg-link").write_text(f"{project / 'src'}\n..\n")
    (site / "gone.egg-link").write_text(f"{tmp_path / 'deleted'}\n.\n")
    (site / "empty.egg-link").write_text("")

    with caplog.at_level(logging.DEBUG, logger=PREFIX_LOG):
        found = Prefix(venv).pip_distributions()

    assert found == [PipDistribution("my-proj", "0.1.dev0", "editable")]
    assert found[0].requirement is None  # exported as a comment, not a requirement
    assert "gone.egg-link" in caplog.text
    assert "empty.egg-link" in caplog.text


def test_damaged_eggs_and_metadata_without_name_are_skipped(tmp_path, caplog):
    venv = make_venv(tmp_path / "venv")
    site = venv / "lib" / "python3.10" / "site-packages"
    make_egg(site, "zipped egg", "fine-1.0-py3.10.egg", "fine", "1.0")
    (site / "notazip-1.0-py3.10.egg").write_bytes(b"PK\x03\x04 not really a zip")
    make_zipped_egg(site / "nopkginfo-1.0-py3.10.egg", {"EGG-INFO/top_level.txt": "x\n"})
    whole = make_zipped_egg(tmp_path / "whole.egg", {"EGG-INFO/PKG-INFO": pkg_info("cut", "1")})
    (site / "cut-1.0-py3.10.egg").write_bytes(whole.read_bytes()[:-30])  # no central directory
    # The name is not guessed from the file name: metadata without one is no install.
    (site / "nameless-1.0-py3.10.egg-info").write_text("Metadata-Version: 1.0\nVersion: 1\n")
    (site / "nometa-1.0-py3.10.egg-info").mkdir()

    with caplog.at_level(logging.DEBUG, logger=PREFIX_LOG):
        found = Prefix(venv).pip_distributions()

    assert found == [PipDistribution("fine", "1.0", "index")]
    for name in ("notazip", "nopkginfo", "cut-1.0", "nameless", "nometa"):
        assert name in caplog.text


def test_a_zipped_egg_is_read_only_up_to_its_headers(tmp_path):
    venv = make_venv(tmp_path / "venv")
    site = venv / "lib" / "python3.10" / "site-packages"
    # 50 MB of description that deflates to about 50 kB, as a zip bomb would.
    huge = pkg_info("big", "4.0") + "x" * 50_000_000
    make_zipped_egg(site / "big-4.0-py3.10.egg", {"EGG-INFO/PKG-INFO": huge})
    assert (site / "big-4.0-py3.10.egg").stat().st_size < 1_000_000

    assert Prefix(venv).pip_distributions() == [PipDistribution("big", "4.0", "index")]


def test_eggs_a_conda_record_lists_are_not_pip_installs(conda_installation):
    prefix = conda_installation.create_env("eggs", ["python", "pkgc"])
    site_rel = f"lib/python{PYTHON_XY}/site-packages"
    site = prefix / site_rel
    owned = {
        "egg-info folder": f"condaegg-1.0-py{PYTHON_XY}.egg-info",
        "egg-info file": f"condafile-1.0-py{PYTHON_XY}.egg-info",
        "egg folder": f"condadir-1.0-py{PYTHON_XY}.egg",
        "zipped egg": f"condazip-1.0-py{PYTHON_XY}.egg",
    }
    for form, file_name in owned.items():
        make_egg(site, form, file_name, file_name.split("-")[0], "1.0")
    make_egg(site, "egg-info folder", "pipegg-2.0.egg-info", "pipegg", "2.0")
    (record_path,) = (prefix / "conda-meta").glob("pkgc-*.json")
    record = json.loads(record_path.read_text())
    record["files"] += [
        f"{site_rel}/{owned['egg-info folder']}/PKG-INFO",
        f"{site_rel}/{owned['egg-info file']}",
        f"{site_rel}/{owned['egg folder']}/EGG-INFO/PKG-INFO",
        f"{site_rel}/{owned['zipped egg']}",
    ]
    record_path.write_text(json.dumps(record, indent=2))

    assert Prefix(prefix).pip_packages() == [PipPackage("pipegg", "2.0")]


@pytest.mark.parametrize("layout", ["rattler", "conda", "crlf-indent4", "one-line", "small"])
def test_records_name_every_egg_form_in_every_layout(tmp_path, layout):
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    site = f"lib/python{PYTHON_XY}/site-packages"
    (tmp_path / site).mkdir(parents=True)
    padding = [] if layout == "small" else [f"share/pad/{i}.txt" for i in range(800)]
    files = [
        *padding,
        f"{site}/a-1.0.dist-info/METADATA",
        f"{site}/b-1.0-py3.11.egg-info/PKG-INFO",
        f"{site}/b-1.0-py3.11.egg-info/SOURCES.txt",
        f"{site}/caf\u00e9-1.0-py3.11.egg-info",
        f"{site}/d-1.0-py3.11.egg/EGG-INFO/PKG-INFO",
        f"{site}/e-1.0-py3.11.egg",
        f"{site}/f.egg-link",
        # Not eggs: a folder of eggs, a file named like one, a longer suffix.
        "share/x/.eggs/README.txt",
        "share/x/a.egg.txt",
        f"{site}/g.egg-infos/PKG-INFO",
    ]
    record = {"name": "cafe", "version": "1.0", "build": "0", "requested_specs": [], "files": files}
    text = {
        "rattler": json.dumps(record, indent=2),
        "conda": json.dumps(record, indent=2, sort_keys=True),
        "crlf-indent4": json.dumps(record, indent=4).replace("\n", "\r\n"),
        "one-line": json.dumps(record),
        "small": json.dumps(record, indent=2),
    }[layout]
    (meta / "cafe-1.0-0.json").write_text(text)
    prefix = Prefix(tmp_path)

    without_eggs = prefix.read_conda_records(dist_infos=True)[1]
    (tmp_path / site / "h-1.0-py3.11.egg-info").write_text(pkg_info("h", "1.0"))
    with_an_egg = prefix.read_conda_records(dist_infos=True)[1]

    # Egg paths are only looked for when site-packages has an egg they could own.
    assert without_eggs == {f"{site}/a-1.0.dist-info"}
    assert with_an_egg == {
        f"{site}/a-1.0.dist-info",
        f"{site}/b-1.0-py3.11.egg-info",
        f"{site}/caf\u00e9-1.0-py3.11.egg-info",
        f"{site}/d-1.0-py3.11.egg",
        f"{site}/e-1.0-py3.11.egg",
        f"{site}/f.egg-link",
    }


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
