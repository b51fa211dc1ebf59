"""CondaKernelSpecManager on its own: configuration as nb_conda_kernels users write it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from jupyter_client.kernelspec import NoSuchKernel
from traitlets.config import Config

from jupyter_repro.kernels.manager import CondaKernelSpecManager
from tests.rig.installation import CondaInstallation


@pytest.fixture
def conda_installation(conda_installation_factory) -> CondaInstallation:
    """The rig's fresh installation, with its standard environments (py, r, old, ...)."""
    return conda_installation_factory(standard_envs=True)


@pytest.fixture
def installation(conda_installation, rig_environ) -> CondaInstallation:
    """That installation, with this process confined to its HOME."""
    return conda_installation


def manager(**config) -> CondaKernelSpecManager:
    return CondaKernelSpecManager(config=Config({"CondaKernelSpecManager": config}))


def test_lists_base_envs_in_second_envs_dir_and_registered_prefixes(installation):
    specs = manager().find_kernel_specs()

    assert {"conda-base-py", "conda-env-py-py", "conda-env-old-py", "conda-env-demo-py"} <= set(
        specs
    )
    assert "conda-env-r-r" in specs


def test_second_root_envs_get_the_root_folder_prefix(installation):
    second_root = installation.home / ".conda"
    installation.create_prefix_env(second_root / "envs" / "py", ["python", "ipykernel"])

    specs = manager().find_kernel_specs()

    assert "conda-env-py-py" in specs  # the base root's own `py`
    assert "conda-env-.conda-py-py" in specs


def test_name_format_fields(installation):
    fmt = "{language}|{environment}|{kernel}|{display_name}|{conda_kernel}|{0}|{1}"
    spec = manager(name_format=fmt).get_kernel_spec("conda-env-py-py")

    assert spec.display_name == ("Python|py|python3|Python 3 (ipykernel)|conda-env-py-py|Python|py")


def test_env_filter_hides_matching_prefixes(installation):
    specs = manager(env_filter=r"/conda-envs/").find_kernel_specs()

    assert "conda-env-old-py" not in specs  # `old` lives in the second envs dir, conda-envs/
    assert "conda-env-py-py" in specs


def test_conda_only_drops_regular_kernelspecs(installation, tmp_path):
    regular = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "plain"
    regular.mkdir(parents=True)
    (regular / "kernel.json").write_text(
        json.dumps({"argv": ["/usr/bin/env", "true"], "display_name": "Plain", "language": "x"})
    )

    assert "plain" in manager().find_kernel_specs()
    only = manager(conda_only=True)
    assert "plain" not in only.find_kernel_specs()
    with pytest.raises(NoSuchKernel):
        only.get_kernel_spec("plain")


def test_regular_kernelspec_of_a_listed_environment_is_not_listed_twice(installation):
    prefix = installation.envs["py"]
    duplicate = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "my-py-env"
    duplicate.mkdir(parents=True)
    (duplicate / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    str(prefix / "bin" / "python"),
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "My env",
                "language": "python",
            }
        )
    )

    specs = manager().find_kernel_specs()

    assert "my-py-env" not in specs
    assert "conda-env-py-py" in specs


def test_allowed_kernelspecs_is_respected(installation):
    allowed = manager(allowed_kernelspecs={"conda-env-py-py"})

    assert set(allowed.find_kernel_specs()) == {"conda-env-py-py"}
    with pytest.raises(NoSuchKernel):
        allowed.get_kernel_spec("conda-env-old-py")


def test_root_and_base_aliases_resolve_to_the_base_kernel(installation):
    m = manager()
    base = m.get_kernel_spec("conda-base-py")

    assert m.get_kernel_spec("conda-root-py") is base
    assert "conda-root-py" not in m.find_kernel_specs()
    assert base.metadata["conda_env_path"] == str(installation.root_prefix.resolve())


def test_launch_goes_through_the_launcher_with_the_kernels_own_argv(installation):
    spec = manager().get_kernel_spec("conda-env-py-py")
    prefix = str(installation.envs["py"].resolve())

    assert spec.argv[:5] == [sys.executable, "-m", "jupyter_repro.kernels.launch", prefix, "--"]
    assert spec.argv[5:] == ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def test_enable_debugger_overrides_kernel_metadata(installation):
    assert manager(enable_debugger=True).get_kernel_spec("conda-env-py-py").metadata["debugger"]
    assert (
        not manager(enable_debugger=False).get_kernel_spec("conda-env-py-py").metadata["debugger"]
    )


def test_a_kernel_json_that_is_not_json_is_skipped(installation):
    prefix = installation.envs["py"]
    broken = prefix / "share" / "jupyter" / "kernels" / "broken"
    broken.mkdir()
    (broken / "kernel.json").write_text("{ not json")

    specs = manager().find_kernel_specs()

    assert "conda-env-py-broken" not in specs
    assert "conda-env-py-py" in specs


def test_listing_twice_with_nothing_changed_does_not_rescan(installation):
    m = manager()
    m.find_kernel_specs()
    rescans = m.catalog.discovery.rescans

    m.find_kernel_specs()
    m.get_all_specs()

    assert m.catalog.discovery.rescans == rescans


def test_kernelspec_path_writes_real_kernelspecs_when_kernels_change(installation, tmp_path):
    target = tmp_path / "prefix"
    target.mkdir()
    m = manager(kernelspec_path=str(target))

    m.find_kernel_specs()

    written = target / "share" / "jupyter" / "kernels"
    assert (written / "conda-env-py-py" / "kernel.json").is_file()
    prefix = installation.create_env("later", ["python", "ipykernel"])
    m.find_kernel_specs()
    assert (written / "conda-env-later-py" / "kernel.json").is_file()
    installation.remove_env(prefix)
    m.find_kernel_specs()
    assert not (written / "conda-env-later-py").exists()
