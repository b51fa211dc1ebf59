"""EnvironmentDiscovery: every source, conda's rules, bad input, and the cache."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import pytest

from jupyter_repro.environments import discovery as discovery_module
from jupyter_repro.environments.catalog import EnvironmentCatalog
from jupyter_repro.environments.discovery import (
    USUAL_ROOT_NAMES,
    Discovered,
    EnvironmentDiscovery,
)
from jupyter_repro.environments.prefix import RESTORE_MARKER
from tests.rig.installation import CondaInstallation

DISCOVERY_LOG = "jupyter_repro.environments.discovery"
# Longer than the window in which a just-changed input is re-read rather than trusted.
PAST_RACY_WINDOW = 0.06


def make_discovery(
    inst: CondaInstallation, tmp_path: Path, environ: dict[str, str] | None = None, **kwargs
) -> EnvironmentDiscovery:
    """Discovery confined to `inst`'s HOME; the server runs in a folder that is no env."""
    kwargs.setdefault("server_prefix", tmp_path / "server-prefix")
    kwargs.setdefault("usual_roots", [inst.home / name for name in USUAL_ROOT_NAMES])
    kwargs.setdefault("system_condarc_dirs", [tmp_path / "etc-conda"])
    return EnvironmentDiscovery(
        environ=inst.environ() if environ is None else environ, home=inst.home, **kwargs
    )


def prefixes(discovered: Discovered) -> list[Path]:
    return [e.prefix for e in discovered.environments]


def make_venv(path: Path) -> Path:
    """A venv as `python -m venv --without-pip` leaves it; nothing here runs it."""
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(sys.executable)
    (path / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).parent}\nversion = 3.11.7\n")
    return path


def write_condarc(path: Path, *envs_dirs: str | Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("channels: [x]\nenvs_dirs:\n" + "".join(f"  - {d}\n" for d in envs_dirs))


# -- the standard installation ----------------------------------------------------------------


def test_lists_every_environment_of_a_conda_installation(rig_installation, tmp_path):
    inst = rig_installation
    found = make_discovery(inst, tmp_path).discover()

    by_prefix = {e.prefix: e for e in found.environments}
    assert prefixes(found) == [
        inst.root_prefix,
        *sorted(
            [inst.envs[n] for n in ("py", "r", "old", "nokernel", "demo")],
            key=str,
        ),
    ]
    assert found.base_prefix == inst.root_prefix
    root = by_prefix[inst.root_prefix]
    assert (root.is_root, root.root, root.envs_dir) == (True, inst.root_prefix, None)
    py = by_prefix[inst.envs["py"]]
    assert (py.kind, py.is_root, py.root, py.envs_dir) == (
        "conda",
        False,
        inst.root_prefix,
        inst.envs_dir,
    )
    old = by_prefix[inst.envs["old"]]
    assert (old.root, old.envs_dir) == (None, inst.extra_envs_dir)
    demo = by_prefix[inst.envs["demo"]]
    assert (demo.root, demo.envs_dir, demo.is_root) == (None, None, False)
    assert not any(e.is_server_env for e in found.environments)


def test_two_scans_give_equal_answers(rig_installation, tmp_path):
    first = make_discovery(rig_installation, tmp_path).discover()
    second = make_discovery(rig_installation, tmp_path).discover()

    assert first == second
    assert first is not second


def test_envs_dirs_in_condas_order(rig_installation, tmp_path):
    inst = rig_installation
    xdg_dir = tmp_path / "xdg-envs"
    environ = inst.environ()
    environ["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    write_condarc(tmp_path / "xdg" / "conda" / "condarc.d" / "10-site.yml", xdg_dir)
    environ["CONDA_ENVS_PATH"] = f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'},{tmp_path / 'c'}"

    found = make_discovery(inst, tmp_path, environ=environ).discover()

    # Variables first, then condarc files with the one conda reads last (~/.condarc) first,
    # then the installation's envs/ (writable) and ~/.conda/envs.
    assert found.envs_dirs == (
        tmp_path / "a",
        tmp_path / "b",
        tmp_path / "c",
        inst.extra_envs_dir,
        xdg_dir,
        inst.envs_dir,
        inst.home / ".conda" / "envs",
    )


def test_without_any_installation_only_the_user_envs_dir_is_known(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    found = EnvironmentDiscovery(
        environ={"HOME": str(home)},
        server_prefix=tmp_path / "server",
        usual_roots=[home / "miniforge3"],
        system_condarc_dirs=[],
    ).discover()

    assert found == Discovered((), None, (home / ".conda" / "envs",))


# -- condarc ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "system .condarc",
        "system condarc.d",
        "CONDA_ROOT .condarc",
        "base condarc",
        "XDG condarc",
        "~/.config/conda/condarc.d",
        "~/.conda/.condarc",
        "~/.condarc",
        "CONDA_PREFIX condarc.d",
        "CONDARC",
    ],
)
def test_envs_dirs_from_every_condarc_location(conda_installation, tmp_path, location):
    inst = conda_installation
    envs = tmp_path / "located-envs"
    env = inst.create_env("located", ["pkgc"], envs)
    inst.environments_txt.unlink()  # found through the condarc alone
    inst.condarc.unlink()
    environ = inst.environ()
    environ.pop("CONDARC")
    system = tmp_path / "etc-conda"
    active = inst.create_prefix_env(tmp_path / "active", ["pkgc"], register=False)
    paths = {
        "system .condarc": system / ".condarc",
        "system condarc.d": system / "condarc.d" / "site.yaml",
        "CONDA_ROOT .condarc": tmp_path / "conda-root" / ".condarc",
        "base condarc": inst.root_prefix / "condarc",
        "XDG condarc": tmp_path / "xdg" / "conda" / "condarc",
        "~/.config/conda/condarc.d": inst.home / ".config" / "conda" / "condarc.d" / "a.yml",
        "~/.conda/.condarc": inst.home / ".conda" / ".condarc",
        "~/.condarc": inst.home / ".condarc",
        "CONDA_PREFIX condarc.d": active / "condarc.d" / "env.yml",
        "CONDARC": tmp_path / "elsewhere" / "my.yml",
    }
    if location == "CONDA_ROOT .condarc":
        environ["CONDA_ROOT"] = str(tmp_path / "conda-root")
    elif location == "XDG condarc":
        environ["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    elif location == "CONDA_PREFIX condarc.d":
        environ["CONDA_PREFIX"] = str(active)
    elif location == "CONDARC":
        environ["CONDARC"] = str(paths["CONDARC"])
    discovery = make_discovery(inst, tmp_path, environ=environ)
    assert env not in prefixes(discovery.discover())

    write_condarc(paths[location], envs)
    found = discovery.discover()

    assert env in prefixes(found)
    assert envs in found.envs_dirs
    assert found.environments[prefixes(found).index(env)].envs_dir == envs


def test_condarc_paths_expand_home_and_variables(conda_installation, tmp_path, caplog):
    inst = conda_installation
    tilde = inst.create_env("t", ["pkgc"], inst.home / "tilde-envs")
    braced = inst.create_env("b", ["pkgc"], tmp_path / "vars" / "braced")
    inst.environments_txt.unlink()
    inst.condarc.write_text(
        "envs_dirs:\n"
        "  - ~/tilde-envs\n"
        "  - ${MY_ENVS}/braced\n"
        "  - $MY_ENVS/plain\n"
        "  - $UNSET_VARIABLE/x\n"
        "  - relative/dir\n"
        "  - 42\n"
    )
    environ = inst.environ()
    environ["MY_ENVS"] = str(tmp_path / "vars")
    environ.pop("UNSET_VARIABLE", None)

    with caplog.at_level(logging.DEBUG, logger=DISCOVERY_LOG):
        found = make_discovery(inst, tmp_path, environ=environ).discover()

    assert found.envs_dirs[:3] == (
        inst.home / "tilde-envs",
        tmp_path / "vars" / "braced",
        tmp_path / "vars" / "plain",
    )
    assert {tilde, braced} <= set(prefixes(found))
    assert "relative/dir" in caplog.text
    assert "$UNSET_VARIABLE/x" in caplog.text


@pytest.mark.parametrize(
    "content",
    [
        "envs_dirs: [unclosed\n",
        "envs_dirs: {a: b}\n",
        "envs_dirs: !!python/object:os.system echo\n",
        "- just\n- a list\n",
        "envs_dirs:\n\t- tab\n",
    ],
)
def test_broken_condarc_is_skipped(conda_installation, tmp_path, caplog, content):
    inst = conda_installation
    write_condarc(inst.home / ".conda" / "condarc", inst.extra_envs_dir)
    inst.condarc.write_text(content)

    with caplog.at_level(logging.DEBUG, logger=DISCOVERY_LOG):
        found = make_discovery(inst, tmp_path).discover()

    assert found.envs_dirs[0] == inst.extra_envs_dir  # the good condarc still counts
    assert inst.root_prefix in prefixes(found)
    if "envs_dirs" in content:
        assert str(inst.condarc) in caplog.text


def test_condarc_without_envs_dirs_is_not_parsed(conda_installation, tmp_path, monkeypatch):
    inst = conda_installation
    inst.condarc.write_text("channels: [conda-forge]\n")
    parsed: list[str] = []

    def record(self, path: str, data: bytes) -> list[str]:
        parsed.append(path)
        return []

    monkeypatch.setattr(discovery_module._Scan, "_parse_condarc", record)

    make_discovery(inst, tmp_path).discover()

    assert parsed == []


# -- envs dir variables -----------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["CONDA_ENVS_PATH", "CONDA_ENVS_DIRS"])
def test_envs_dirs_from_environment_variables(conda_installation, tmp_path, variable):
    inst = conda_installation
    first = inst.create_env("one", ["pkgc"], tmp_path / "first")
    second = inst.create_env("two", ["pkgc"], tmp_path / "second")
    inst.environments_txt.unlink()
    environ = inst.environ()
    environ[variable] = f"{tmp_path / 'first'}{os.pathsep}{tmp_path / 'second'}"

    found = make_discovery(inst, tmp_path, environ=environ).discover()

    assert found.envs_dirs[:2] == (tmp_path / "first", tmp_path / "second")
    assert {first, second} <= set(prefixes(found))


# -- root prefixes and the base ---------------------------------------------------------------


def make_root(inst: CondaInstallation, path: Path, env: str | None = "inner") -> Path:
    """Another installation: a conda prefix with envs/ (and one environment in it)."""
    inst.create_prefix_env(path, ["pkgc"], register=False)
    (path / "envs").mkdir()
    if env:
        inst.create_prefix_env(path / "envs" / env, ["pkgc"], register=False)
    return path


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CONDA_ROOT", "{root}"),
        ("CONDA_EXE", "{root}/bin/conda"),
        ("CONDA_EXE", "{root}/condabin/conda"),
        ("MAMBA_ROOT_PREFIX", "{root}"),
        ("MAMBA_EXE", "{root}/bin/micromamba"),
    ],
)
def test_root_named_by_a_variable(conda_installation, tmp_path, variable, value):
    inst = conda_installation
    root = make_root(inst, tmp_path / "other-root")
    environ = inst.environ()
    environ[variable] = value.format(root=root)

    found = make_discovery(inst, tmp_path, environ=environ).discover()

    by_prefix = {e.prefix: e for e in found.environments}
    assert by_prefix[root].is_root
    assert by_prefix[root / "envs" / "inner"].root == root
    assert by_prefix[root / "envs" / "inner"].envs_dir == root / "envs"
    assert found.base_prefix == root  # named explicitly: before the usual folders
    assert found.envs_dirs == (inst.extra_envs_dir, root / "envs", inst.home / ".conda" / "envs")
    assert by_prefix[inst.root_prefix].is_root  # the usual folder still counts


def test_micromamba_root_without_its_own_environment(conda_installation, tmp_path):
    inst = conda_installation
    root = tmp_path / "micromamba-root"
    (root / "envs").mkdir(parents=True)
    (root / "pkgs").mkdir()
    env = inst.create_prefix_env(root / "envs" / "work", ["pkgc"], register=False)
    environ = inst.environ()
    environ["MAMBA_ROOT_PREFIX"] = str(root)
    environ["MAMBA_EXE"] = str(inst.home / ".local" / "bin" / "micromamba")

    found = make_discovery(inst, tmp_path, environ=environ).discover()

    assert root not in prefixes(found)  # no conda-meta: not an environment
    work = found.environments[prefixes(found).index(env)]
    assert (work.root, work.envs_dir) == (root, root / "envs")
    assert found.base_prefix == root


def test_base_prefix_follows_condas_order(conda_installation, tmp_path):
    inst = conda_installation
    roots = {n: make_root(inst, tmp_path / n, env=None) for n in ("cr", "ce", "mr", "me")}
    environ = inst.environ()
    environ.update(
        CONDA_ROOT=str(roots["cr"]),
        CONDA_EXE=str(roots["ce"] / "bin" / "conda"),
        MAMBA_ROOT_PREFIX=str(roots["mr"]),
        MAMBA_EXE=str(roots["me"] / "bin" / "micromamba"),
    )
    seen = []
    for variable in ("CONDA_ROOT", "CONDA_EXE", "MAMBA_ROOT_PREFIX", "MAMBA_EXE", None):
        seen.append(make_discovery(inst, tmp_path, environ=environ).discover().base_prefix)
        if variable:
            del environ[variable]

    assert seen == [roots["cr"], roots["ce"], roots["mr"], roots["me"], inst.root_prefix]


def test_base_prefix_is_the_first_existing_usual_folder(conda_installation, tmp_path):
    inst = conda_installation  # lives in ~/miniforge3
    anaconda = make_root(inst, inst.home / "anaconda3")
    later = make_discovery(inst, tmp_path).discover()
    missing_first = make_discovery(
        inst, tmp_path, usual_roots=[inst.home / "nothing-here", anaconda, inst.root_prefix]
    ).discover()

    assert later.base_prefix == inst.root_prefix  # miniforge3 is tried before anaconda3
    assert anaconda / "envs" / "inner" in prefixes(later)
    assert missing_first.base_prefix == anaconda


def test_server_prefix_that_is_a_root_is_the_last_resort_base(conda_installation, tmp_path):
    inst = conda_installation
    found = make_discovery(
        inst, tmp_path, usual_roots=[], server_prefix=inst.root_prefix
    ).discover()

    assert found.base_prefix == inst.root_prefix
    (base,) = found.environments[:1]
    assert (base.is_root, base.is_server_env) == (True, True)


def test_server_in_an_envs_dir_belongs_to_that_root(conda_installation, tmp_path):
    inst = conda_installation
    server = inst.create_env("jlab", ["pkgc"])
    found = make_discovery(inst, tmp_path, usual_roots=[], server_prefix=server).discover()

    assert found.base_prefix == inst.root_prefix
    assert [e.prefix for e in found.environments if e.is_server_env] == [server]


def test_conda_prefix_counts_as_a_root_only_when_it_is_one(conda_installation, tmp_path):
    inst = conda_installation
    other = make_root(inst, tmp_path / "other")
    plain = inst.create_prefix_env(tmp_path / "plain", ["pkgc"], register=False)
    environ = inst.environ()

    environ.update(CONDA_PREFIX=str(plain), CONDA_PREFIX_1=str(other))
    found = make_discovery(inst, tmp_path, environ=environ).discover()

    assert plain not in prefixes(found)  # an active env is not a source of its own
    assert other / "envs" / "inner" in prefixes(found)
    assert found.base_prefix == inst.root_prefix  # CONDA_PREFIX never picks the base


def test_exe_two_levels_below_no_installation_is_ignored(conda_installation, tmp_path):
    inst = conda_installation
    (inst.home / ".local" / "bin").mkdir(parents=True)
    environ = inst.environ()
    environ["MAMBA_EXE"] = str(inst.home / ".local" / "bin" / "micromamba")
    environ["CONDA_EXE"] = "relative/bin/conda"

    found = make_discovery(inst, tmp_path, environ=environ).discover()

    assert found.base_prefix == inst.root_prefix


# -- environments.txt -------------------------------------------------------------------------


def test_environments_txt_lines_that_point_nowhere_are_skipped(
    conda_installation, tmp_path, caplog
):
    inst = conda_installation
    registered = inst.create_prefix_env(tmp_path / "registered", ["pkgc"])
    gone = inst.create_prefix_env(tmp_path / "gone", ["pkgc"])
    inst.remove_env(gone, unregister=False)
    not_env = tmp_path / "not-an-env"
    not_env.mkdir()
    with inst.environments_txt.open("a") as fh:
        fh.write(f"\n   \n# a comment\nrelative/env\n{not_env}\n{tmp_path}/./registered\n")
    with inst.environments_txt.open("ab") as fh:
        fh.write(os.fsencode(tmp_path) + b"/env-\xff\n" + b"/with\x00nul\n")

    with caplog.at_level(logging.DEBUG, logger=DISCOVERY_LOG):
        found = make_discovery(inst, tmp_path).discover()

    assert prefixes(found) == [inst.root_prefix, registered]
    assert str(gone) in caplog.text
    assert "relative/env" in caplog.text
    assert str(not_env) in caplog.text
    assert "env-\\udcff" in caplog.text


def test_missing_environments_txt_is_fine(conda_installation, tmp_path):
    conda_installation.environments_txt.unlink()

    found = make_discovery(conda_installation, tmp_path).discover()

    assert prefixes(found) == [conda_installation.root_prefix]


def test_environments_txt_that_is_a_folder_is_fine(conda_installation, tmp_path):
    conda_installation.environments_txt.unlink()
    conda_installation.environments_txt.mkdir()

    found = make_discovery(conda_installation, tmp_path).discover()

    assert prefixes(found) == [conda_installation.root_prefix]


# -- pixi and venvs ---------------------------------------------------------------------------


def test_pixi_environments_and_venvs_under_search_paths(conda_installation, tmp_path):
    inst = conda_installation
    search = tmp_path / "projects"
    pixi_child = inst.create_prefix_env(
        search / "app" / ".pixi" / "envs" / "default", ["pkgc"], register=False
    )
    pixi_top = inst.create_prefix_env(search / ".pixi" / "envs" / "dev", ["pkgc"], register=False)
    child_venv = make_venv(search / "tool-venv")
    dot_venv = make_venv(search / "app" / ".venv")
    too_deep = make_venv(search / "a" / "b" / "venv")
    conda_child = inst.create_prefix_env(search / "condaproj", ["pkgc"], register=False)
    (search / "plain-file").write_text("")

    found = make_discovery(inst, tmp_path, search_paths=[search]).discover()

    kinds = {e.prefix: e.kind for e in found.environments}
    assert kinds[pixi_child] == kinds[pixi_top] == "pixi"
    assert kinds[child_venv] == kinds[dot_venv] == "venv"
    assert kinds[conda_child] == "conda"
    assert too_deep not in kinds
    assert all(e.envs_dir is None for e in found.environments if e.kind == "venv")


def test_a_search_path_that_is_itself_a_venv(conda_installation, tmp_path):
    venv = make_venv(tmp_path / "venv")

    found = make_discovery(conda_installation, tmp_path, search_paths=[venv]).discover()

    assert venv in prefixes(found)


def test_detached_pixi_envs_folder_is_followed(conda_installation, tmp_path):
    inst = conda_installation
    cache = tmp_path / "pixi-cache" / "app-1234" / "envs"
    env = inst.create_prefix_env(cache / "default", ["pkgc"], register=False)
    (tmp_path / "projects" / "app" / ".pixi").mkdir(parents=True)
    (tmp_path / "projects" / "app" / ".pixi" / "envs").symlink_to(cache)

    found = make_discovery(inst, tmp_path, search_paths=[tmp_path / "projects"]).discover()

    (pixi,) = [e for e in found.environments if e.prefix == env]
    assert pixi.kind == "pixi"


# -- the server's own prefix ------------------------------------------------------------------


def test_server_venv_is_listed_and_marked(conda_installation, tmp_path):
    venv = make_venv(tmp_path / "server-venv")

    found = make_discovery(conda_installation, tmp_path, server_prefix=venv).discover()

    (server,) = [e for e in found.environments if e.is_server_env]
    assert (server.prefix, server.kind) == (venv, "venv")


def test_server_prefix_that_is_no_environment_is_not_listed(conda_installation, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()

    found = make_discovery(conda_installation, tmp_path, server_prefix=plain).discover()

    assert plain not in prefixes(found)


def test_server_env_reached_through_a_symlink_is_marked(rig_installation, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(rig_installation.envs["py"])

    found = make_discovery(rig_installation, tmp_path, server_prefix=link).discover()

    assert [e.prefix for e in found.environments if e.is_server_env] == [
        rig_installation.envs["py"]
    ]


def test_defaults_come_from_this_process(tmp_path):
    found = EnvironmentDiscovery(usual_roots=[], system_condarc_dirs=[]).discover()

    server = [e for e in found.environments if e.is_server_env]
    assert [e.prefix for e in server] == [Path(sys.prefix).resolve()]


# -- skipping rules ---------------------------------------------------------------------------


def test_package_cache_builds_and_trash_are_not_environments(conda_installation, tmp_path):
    inst = conda_installation
    for name in ("pkgs", "conda-bld", ".trash"):
        inst.create_prefix_env(inst.envs_dir / name, ["pkgc"], register=False)
    kept = inst.create_env("kept", ["pkgc"])

    found = make_discovery(inst, tmp_path).discover()

    assert prefixes(found) == [inst.root_prefix, kept]


def test_unfinished_restore_is_skipped_until_its_marker_goes(conda_installation, tmp_path):
    inst = conda_installation
    restoring = inst.create_env("restoring", ["pkgc"])
    marker = restoring / RESTORE_MARKER
    marker.write_text("")
    registered = inst.create_prefix_env(tmp_path / "registered", ["pkgc"])
    (registered / RESTORE_MARKER).write_text("")
    discovery = make_discovery(inst, tmp_path)

    first = discovery.discover()
    marker.unlink()
    (registered / RESTORE_MARKER).unlink()
    second = discovery.discover()

    assert prefixes(first) == [inst.root_prefix]
    assert {restoring, registered} <= set(prefixes(second))


def test_folders_in_envs_dirs_without_conda_meta_are_not_environments(conda_installation, tmp_path):
    inst = conda_installation
    (inst.envs_dir / "half-made").mkdir()
    (inst.envs_dir / "a-file").write_text("")
    discovery = make_discovery(inst, tmp_path)

    before = discovery.discover()
    # conda creates the folder first and conda-meta/ later: the env must then appear.
    (inst.envs_dir / "half-made" / "conda-meta").mkdir()
    after = discovery.discover()

    assert prefixes(before) == [inst.root_prefix]
    assert inst.envs_dir / "half-made" in prefixes(after)


# -- conda-build work environments ------------------------------------------------------------

# What conda-build names a build's host environment: padded so that relocation has room.
HOST_ENV = "_h_env" + "_placehold" * 10


def test_conda_build_work_environments_are_neither_listed_nor_kernels(conda_installation, tmp_path):
    inst = conda_installation
    build = inst.root_prefix / "conda-bld" / "mypkg_1712345678901"
    # conda-build registers them in environments.txt as it creates them.
    host = inst.create_prefix_env(build / HOST_ENV, ["python", "ipykernel"])
    others = [inst.create_prefix_env(build / n, ["pkgc"]) for n in ("_build_env", "_test_env")]
    ordinary = inst.create_env("ordinary", ["python", "ipykernel"])
    assert {host, *others} <= set(inst.registered())
    discovery = make_discovery(inst, tmp_path)

    found = discovery.discover()
    entries = EnvironmentCatalog(discovery).entries()

    assert prefixes(found) == [inst.root_prefix, ordinary]
    assert [e.environment.prefix for e in entries] == [inst.root_prefix, ordinary]
    assert entries[1].kernel_names  # the ordinary environment's kernel is still there


@pytest.mark.parametrize("how", ["envs dir", "search path", "symlink"])
def test_a_conda_build_environment_is_skipped_however_it_is_found(
    conda_installation, tmp_path, how
):
    inst = conda_installation
    build = inst.root_prefix / "conda-bld" / "mypkg_1712345678901"
    work = inst.create_prefix_env(build / "_build_env", ["pkgc"], register=False)
    search_paths = []
    if how == "envs dir":
        write_condarc(inst.condarc, build)
    elif how == "search path":
        search_paths = [build]
    else:
        (tmp_path / "link").symlink_to(work)
        inst.register(tmp_path / "link")
    discovery = make_discovery(inst, tmp_path, search_paths=search_paths)

    assert prefixes(discovery.discover()) == [inst.root_prefix]


@pytest.mark.parametrize(
    "source", ["croot", "bld_path", "conda-build root-dir", "CONDA_BLD_PATH", "CONDA_CROOT"]
)
def test_a_configured_build_root_is_honoured(conda_installation, tmp_path, source):
    inst = conda_installation
    work = inst.create_prefix_env(inst.home / "builds" / "mypkg_1" / "_test_env", ["pkgc"])
    environ = inst.environ()
    discovery = make_discovery(inst, tmp_path, environ=environ)
    assert work in prefixes(discovery.discover())  # nothing says it is a build root yet

    if source in ("CONDA_BLD_PATH", "CONDA_CROOT"):
        environ[source] = "~/builds"
    elif source == "conda-build root-dir":
        inst.condarc.write_text("conda-build:\n  root-dir: ~/builds\n")
    else:
        inst.condarc.write_text(f"{source}: ~/builds\n")
    found = discovery.discover()

    assert prefixes(found) == [inst.root_prefix]
    assert discovery.rescans == 2


def test_folders_only_named_like_conda_bld_are_not_build_roots(conda_installation, tmp_path):
    inst = conda_installation
    listed = [
        inst.create_prefix_env(inst.root_prefix / "conda-bld-tools" / "env", ["pkgc"]),
        inst.create_prefix_env(tmp_path / "conda-bld-tools" / "env", ["pkgc"]),
        # A conda-bld folder of no installation and no configuration: just a name.
        inst.create_prefix_env(tmp_path / "elsewhere" / "conda-bld" / "env", ["pkgc"]),
    ]
    inst.condarc.write_text(f"croot: {tmp_path / 'bld'}\n")
    listed.append(inst.create_prefix_env(tmp_path / "bld-other" / "env", ["pkgc"]))

    found = make_discovery(inst, tmp_path).discover()

    assert set(listed) <= set(prefixes(found))


@pytest.mark.parametrize("croot", ["~/", "/", "{root}"])
def test_a_build_root_holding_home_or_an_installation_hides_nothing(
    conda_installation, tmp_path, croot
):
    inst = conda_installation
    env = inst.create_env("kept", ["pkgc"])
    inst.condarc.write_text(f"croot: {croot.format(root=inst.root_prefix)}\n")

    found = make_discovery(inst, tmp_path).discover()

    assert prefixes(found) == [inst.root_prefix, env]


def test_the_server_running_in_a_build_environment_sees_itself(conda_installation, tmp_path):
    inst = conda_installation
    test_env = inst.create_prefix_env(
        inst.root_prefix / "conda-bld" / "mypkg_1" / "_test_env", ["pkgc"]
    )

    found = make_discovery(inst, tmp_path, server_prefix=test_env).discover()

    assert prefixes(found) == [inst.root_prefix, test_env]
    assert found.environments[1].is_server_env


# -- bad input --------------------------------------------------------------------------------


def test_the_same_environment_through_symlinks_is_listed_once(conda_installation, tmp_path):
    inst = conda_installation
    env = inst.create_env("real", ["pkgc"])
    (inst.envs_dir / "alias").symlink_to(env)
    (tmp_path / "linked-envs").symlink_to(inst.envs_dir)
    inst.condarc.write_text(f"envs_dirs:\n  - {tmp_path / 'linked-envs'}\n")
    inst.register(tmp_path / "linked-envs" / "real", tmp_path / "linked-envs" / "alias")

    found = make_discovery(inst, tmp_path).discover()

    assert prefixes(found) == [inst.root_prefix, env]
    assert found.environments[1].envs_dir == inst.envs_dir


def test_dangling_symlinks_are_skipped(conda_installation, tmp_path, caplog):
    inst = conda_installation
    (inst.envs_dir / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "dangling-registered").symlink_to(tmp_path / "nowhere-either")
    inst.register(tmp_path / "dangling-registered")

    with caplog.at_level(logging.DEBUG, logger=DISCOVERY_LOG):
        found = make_discovery(inst, tmp_path).discover()

    assert prefixes(found) == [inst.root_prefix]
    assert "dangling" in caplog.text
    assert "dangling-registered" in caplog.text


def test_non_utf8_names_are_skipped(conda_installation, tmp_path, caplog):
    inst = conda_installation
    env = inst.create_env("fine", ["pkgc"])
    bad = os.fsencode(inst.envs_dir) + b"/env-\xff"
    os.rename(os.fsencode(inst.create_env("to-rename", ["pkgc"])), bad)
    bad_search = os.fsencode(tmp_path / "search") + b"/venv-\xfe"
    os.makedirs(bad_search)
    make_venv(Path(os.fsdecode(bad_search)) / "inner")  # under a bad-named project
    os.rename(os.fsdecode(bad_search) + "/inner", os.fsdecode(bad_search) + "/.venv")

    with caplog.at_level(logging.DEBUG, logger=DISCOVERY_LOG):
        found = make_discovery(inst, tmp_path, search_paths=[tmp_path / "search"]).discover()

    assert prefixes(found) == [inst.root_prefix, env]
    assert "env-\\udcff" in caplog.text
    assert "venv-\\udcfe" in caplog.text


def test_an_envs_dir_that_is_a_file_is_skipped(conda_installation, tmp_path):
    inst = conda_installation
    not_a_folder = tmp_path / "file-envs"
    not_a_folder.write_text("")
    inst.condarc.write_text(f"envs_dirs:\n  - {not_a_folder}\n")
    (inst.home / ".conda").mkdir(exist_ok=True)
    (inst.home / ".conda" / "envs").write_text("")

    found = make_discovery(inst, tmp_path).discover()

    assert not_a_folder in found.envs_dirs
    assert prefixes(found) == [inst.root_prefix]


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists folders whatever their permissions")
def test_an_unreadable_envs_dir_is_skipped(conda_installation, tmp_path, caplog):
    inst = conda_installation
    kept = inst.create_env("kept", ["pkgc"], inst.extra_envs_dir)
    inst.envs_dir.chmod(0)
    try:
        with caplog.at_level(logging.DEBUG, logger=DISCOVERY_LOG):
            found = make_discovery(inst, tmp_path).discover()
    finally:
        inst.envs_dir.chmod(0o755)

    assert kept in prefixes(found)
    assert str(inst.envs_dir) in caplog.text


def test_a_corrupt_record_does_not_hide_the_environment(conda_installation, tmp_path):
    inst = conda_installation
    env = inst.create_env("damaged", ["pkgc"])
    for record in (env / "conda-meta").glob("*.json"):
        record.write_text("{")

    assert env in prefixes(make_discovery(inst, tmp_path).discover())


# -- the cache --------------------------------------------------------------------------------


def test_nothing_changed_costs_only_stat_calls(rig_installation, tmp_path, monkeypatch):
    discovery = make_discovery(rig_installation, tmp_path)
    first = discovery.discover()
    time.sleep(PAST_RACY_WINDOW)
    discovery.discover()  # may re-read inputs changed just before the first scan
    rescans = discovery.rescans
    calls: dict[str, int] = {"stat": 0, "other": 0}
    real_stat = os.stat

    def counting_stat(*args, **kwargs):
        calls["stat"] += 1
        return real_stat(*args, **kwargs)

    def forbidden(*args, **kwargs):
        calls["other"] += 1
        raise AssertionError("listed or read a file on a cached call")

    with monkeypatch.context() as patched:
        patched.setattr(os, "stat", counting_stat)
        for name in ("scandir", "listdir", "lstat"):
            patched.setattr(os, name, forbidden)
        patched.setattr("builtins.open", forbidden)
        again = discovery.discover()

    assert again is first
    assert discovery.rescans == rescans
    assert calls["other"] == 0
    assert 0 < calls["stat"] <= 40


def test_new_and_removed_environments_are_seen_on_the_next_call(conda_installation, tmp_path):
    inst = conda_installation
    discovery = make_discovery(inst, tmp_path)
    assert prefixes(discovery.discover()) == [inst.root_prefix]

    created = inst.create_env("new", ["pkgc"])  # no waiting: same clock tick is fine
    with_new = discovery.discover()
    registered = inst.create_prefix_env(tmp_path / "elsewhere", ["pkgc"])
    with_registered = discovery.discover()
    inst.remove_env(created)
    inst.remove_env(registered)
    after_removal = discovery.discover()

    assert created in prefixes(with_new)
    assert registered in prefixes(with_registered)
    assert prefixes(after_removal) == [inst.root_prefix]
    assert discovery.rescans == 4


def test_deleting_a_registered_env_without_unregistering_is_seen(conda_installation, tmp_path):
    inst = conda_installation
    env = inst.create_prefix_env(tmp_path / "elsewhere", ["pkgc"])
    discovery = make_discovery(inst, tmp_path)
    assert env in prefixes(discovery.discover())

    inst.remove_env(env, unregister=False)

    assert env not in prefixes(discovery.discover())


def test_new_pixi_env_and_venv_are_seen(conda_installation, tmp_path):
    inst = conda_installation
    search = tmp_path / "projects"
    (search / "app" / ".pixi" / "envs").mkdir(parents=True)
    (search / "tool").mkdir()
    discovery = make_discovery(inst, tmp_path, search_paths=[search])
    discovery.discover()

    pixi = inst.create_prefix_env(
        search / "app" / ".pixi" / "envs" / "default", ["pkgc"], register=False
    )
    (search / "tool" / "pyvenv.cfg").write_text("version = 3.11.7\n")
    found = discovery.discover()

    assert {pixi, search / "tool"} <= set(prefixes(found))


def test_changed_variables_and_condarc_cause_a_rescan(conda_installation, tmp_path):
    inst = conda_installation
    env = inst.create_env("x", ["pkgc"], tmp_path / "more-envs")
    inst.environments_txt.unlink()
    environ = inst.environ()
    discovery = make_discovery(inst, tmp_path, environ=environ)
    assert env not in prefixes(discovery.discover())

    environ["CONDA_ENVS_PATH"] = str(tmp_path / "more-envs")
    with_variable = discovery.discover()
    del environ["CONDA_ENVS_PATH"]
    without = discovery.discover()
    write_condarc(inst.condarc, tmp_path / "more-envs")
    with_condarc = discovery.discover()

    assert env in prefixes(with_variable)
    assert env not in prefixes(without)
    assert env in prefixes(with_condarc)


def test_change_within_one_timestamp_tick_is_still_seen(conda_installation, tmp_path, monkeypatch):
    """On a file system whose timestamps did not move, a just-changed input is compared by
    content: a new environment is found without any stat difference."""
    inst = conda_installation
    real_signature = discovery_module._signature
    frozen_ns: list[int] = []

    def frozen(path: str):
        # Every timestamp is the scan's own start, as when changes fall in one clock tick.
        signature = real_signature(path)
        frozen_ns[:] = frozen_ns or [time.time_ns()]
        return None if signature is None else (frozen_ns[0], frozen_ns[0], signature[2], 0)

    monkeypatch.setattr(discovery_module, "_signature", frozen)
    discovery = make_discovery(inst, tmp_path)
    before = discovery.discover()

    created = inst.create_env("same-tick", ["pkgc"])
    inst.environments_txt.write_text(f"{inst.root_prefix}\n")  # unregister: only envs/ tells
    after = discovery.discover()

    assert created not in prefixes(before)
    assert created in prefixes(after)


def test_inputs_older_than_the_racy_window_are_trusted_by_stat(conda_installation, tmp_path):
    discovery = make_discovery(conda_installation, tmp_path)
    discovery.discover()
    time.sleep(PAST_RACY_WINDOW)
    discovery.discover()  # checks racy inputs by content, then trusts their timestamps

    cached = discovery._cached
    assert cached is not None
    assert not any(w.racy for w in cached.watches)


def test_many_environments_scan_once_and_then_stay_cached(conda_installation, tmp_path):
    inst = conda_installation
    names = [f"env{i:03d}" for i in range(60)]
    created = inst.create_envs(names, ["pkgc"])
    discovery = make_discovery(inst, tmp_path)

    found = discovery.discover()
    time.sleep(PAST_RACY_WINDOW)
    discovery.discover()
    rescans = discovery.rescans
    for _ in range(5):
        assert discovery.discover() is not None

    assert set(created) <= set(prefixes(found))
    assert len(found.environments) == 61
    assert discovery.rescans == rescans
    assert discovery._cached is not None
    assert len(discovery._cached.watches) < 40  # not one per environment


def test_discovered_get_resolves_symlinks(rig_installation, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(rig_installation.envs["py"])
    found = make_discovery(rig_installation, tmp_path).discover()

    env = found.get(link)

    assert env is not None
    assert env.prefix == rig_installation.envs["py"]
    assert found.get(tmp_path) is None


# -- the folders alone ------------------------------------------------------------------------


def test_the_folders_are_discoverys_and_survive_new_environments(
    conda_installation, tmp_path, monkeypatch
):
    """What a restore checks its target against: the same folders as a full scan, not
    scanned again when an environment comes or goes (every restore adds one), and seen
    again at once when the configuration changes."""
    inst = conda_installation
    folder_scans: list[int] = []
    real_run_folders = discovery_module._Scan.run_folders

    def counted(scan):
        folder_scans.append(1)
        return real_run_folders(scan)

    monkeypatch.setattr(discovery_module._Scan, "run_folders", counted)
    shared = tmp_path / "shared-envs"
    shared.mkdir()
    discovery = make_discovery(inst, tmp_path, shared_envs_dirs=[shared])
    folders = discovery.folders()
    full = discovery.discover()
    assert (folders.envs_dirs, folders.shared_dirs) == (full.envs_dirs, full.shared_dirs)
    assert folders.shared_dirs == (shared.resolve(),)
    time.sleep(PAST_RACY_WINDOW)

    inst.create_prefix_env(tmp_path / "elsewhere", ["pkgc"])  # registered in environments.txt
    inst.create_env("another", ["pkgc"])
    assert discovery.folders() is folders
    assert len(folder_scans) == 1  # nothing worked out again

    extra = tmp_path / "more-envs"
    write_condarc(inst.condarc, extra)
    changed = discovery.folders()
    assert changed.envs_dirs[0] == extra
    assert changed.envs_dirs == discovery.discover().envs_dirs


def test_the_folders_follow_the_environment_variables(conda_installation, tmp_path):
    inst = conda_installation
    environ = inst.environ()
    discovery = make_discovery(inst, tmp_path, environ=environ)
    before = discovery.folders()
    environ["CONDA_ENVS_DIRS"] = str(tmp_path / "from-variable")

    after = discovery.folders()

    assert tmp_path / "from-variable" not in before.envs_dirs
    assert after.envs_dirs[0] == tmp_path / "from-variable"
