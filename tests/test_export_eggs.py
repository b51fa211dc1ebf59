"""Export of environments with eggs: `setup.py install`, easy_install and distutils installs
are in the `pip:` section like wheels, and the eggs conda packages ship are not."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from jupyter_repro.specs.export import export_environment
from tests.rig.channel import PYTHON_XY, PackageDef, RigChannel, build_channel, default_packages

SITE = f"lib/python{PYTHON_XY}/site-packages"
MODES = ("portable", "exact", "no-builds")


def pkg_info(name: str, version: str) -> str:
    return f"Metadata-Version: 1.1\nName: {name}\nVersion: {version}\nSummary: an egg\n"


@pytest.fixture(scope="module")
def channel_with_conda_eggs(tmp_path_factory: pytest.TempPathFactory) -> RigChannel:
    """The rig's packages plus `condaegg`, a noarch python package built the old way: it
    ships an `.egg-info` folder and a distutils `.egg-info` file."""
    package = PackageDef(
        name="condaegg",
        version="1.0",
        build="py_0",
        noarch="python",
        depends=("python",),
        files={
            "site-packages/condaegg/__init__.py": "",
            "site-packages/condaegg-1.0-py3.egg-info/PKG-INFO": pkg_info("condaegg", "1.0"),
            "site-packages/condaegg-1.0-py3.egg-info/top_level.txt": "condaegg\n",
            "site-packages/condaegg_extra-1.0-py3.egg-info": pkg_info("condaegg-extra", "1.0"),
        },
    )
    return build_channel(tmp_path_factory.mktemp("egg-channel"), [*default_packages(), package])


def add_pip_eggs(prefix: Path, project: Path) -> None:
    """What `setup.py install`, easy_install, distutils and `setup.py develop` leave."""
    site = prefix / SITE
    folder = site / f"legacy_pkg-1.2-py{PYTHON_XY}.egg-info"
    folder.mkdir()
    (folder / "PKG-INFO").write_text(pkg_info("legacy-pkg", "1.2"))
    (site / f"distutils_pkg-0.9-py{PYTHON_XY}.egg-info").write_text(
        pkg_info("distutils_pkg", "0.9")
    )
    unzipped = site / f"EggDir-0.5-py{PYTHON_XY}.egg" / "EGG-INFO"
    unzipped.mkdir(parents=True)
    (unzipped / "PKG-INFO").write_text(pkg_info("EggDir", "0.5"))
    with zipfile.ZipFile(site / f"zipped-3.0-py{PYTHON_XY}.egg", "w") as archive:
        archive.writestr("EGG-INFO/PKG-INFO", pkg_info("zipped", "3.0"))
        archive.writestr("zipped.py", "")
    (project / "devpkg.egg-info").mkdir(parents=True)
    (project / "devpkg.egg-info" / "PKG-INFO").write_text(pkg_info("devpkg", "0.1.dev0"))
    (site / "devpkg.egg-link").write_text(f"{project}\n.\n")


def own_in_record(prefix: Path, package: str, relative_paths: list[str]) -> None:
    """List files in a conda record, as if its package had shipped them."""
    (record_path,) = (prefix / "conda-meta").glob(f"{package}-*.json")
    record = json.loads(record_path.read_text())
    record["files"] += relative_paths
    record_path.write_text(json.dumps(record, indent=2))


def test_eggs_are_exported_in_the_pip_section_in_every_mode(
    conda_installation_factory, channel_with_conda_eggs, tmp_path
):
    inst = conda_installation_factory(channel=channel_with_conda_eggs)
    prefix = inst.create_env("eggs", ["python", "pkgc", "condaegg"])
    assert (prefix / SITE / "condaegg-1.0-py3.egg-info" / "PKG-INFO").is_file()
    assert (prefix / SITE / "condaegg_extra-1.0-py3.egg-info").is_file()
    add_pip_eggs(prefix, tmp_path / "src" / "devpkg")
    inst.add_pip_package(prefix, "wheel-pkg", "2.0")
    # An egg-info that pkgc's record lists: conda's, whatever its name suggests.
    owned = prefix / SITE / f"pkgc_extra-1.0-py{PYTHON_XY}.egg-info"
    owned.mkdir()
    (owned / "PKG-INFO").write_text(pkg_info("pkgc-extra", "1.0"))
    own_in_record(prefix, "pkgc", [f"{SITE}/{owned.name}/PKG-INFO"])

    for mode in MODES:
        spec = export_environment(prefix, mode)

        assert spec.pip == (
            "distutils_pkg==0.9",
            "EggDir==0.5",
            "legacy-pkg==1.2",
            "wheel-pkg==2.0",
            "zipped==3.0",
        ), mode
        assert "pip: devpkg 0.1.dev0 is an editable install" in "\n".join(spec.comments)
        assert "  - legacy-pkg==1.2\n" in spec.to_yaml()
        assert not any(name in spec.to_yaml() for name in ("pkgc-extra", "condaegg-extra"))


def test_an_environment_with_only_conda_eggs_has_no_pip_section(
    conda_installation_factory, channel_with_conda_eggs
):
    inst = conda_installation_factory(channel=channel_with_conda_eggs)
    prefix = inst.create_env("conda-only", ["python", "condaegg"])

    for mode in MODES:
        spec = export_environment(prefix, mode)

        assert spec.pip == ()
        assert any(d.startswith("condaegg=1.0") for d in spec.dependencies)
