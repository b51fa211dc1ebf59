"""Kernel and environment names, as nb_conda_kernels gives them."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_repro.environments.naming import (
    NamingInput,
    clean_kernel_name,
    environment_names,
    kernel_key,
    kernel_name,
)

BASE = Path("/home/u/miniforge3")


def names(*prefixes: str, kind: str = "conda", base: Path | None = BASE) -> list[str]:
    result = environment_names([NamingInput(Path(p), kind) for p in prefixes], base)
    return [result[Path(p)] for p in prefixes]


def test_base_environment_is_named_base_and_its_kernel_conda_base_py():
    assert names(str(BASE)) == ["base"]
    assert kernel_name("base", True, "python3") == "conda-base-py"


def test_base_name_is_configurable():
    result = environment_names([NamingInput(BASE, "conda")], BASE, base_name="root")
    assert result[BASE] == "root"
    assert kernel_name("root", True, "python3") == "conda-root-py"


def test_env_in_the_base_envs_dir_keeps_its_folder_name():
    assert names(f"{BASE}/envs/analysis") == ["analysis"]
    assert kernel_name("analysis", False, "python3") == "conda-env-analysis-py"


def test_env_under_a_second_root_is_prefixed_with_that_root_folder():
    assert names("/home/u/.conda/envs/foo") == [".conda-foo"]
    assert kernel_name(".conda-foo", False, "python3") == "conda-env-.conda-foo-py"


def test_clash_in_a_second_root_takes_the_root_folder_then_a_counter():
    result = names(
        f"{BASE}/envs/foo",
        "/home/u/.conda/envs/foo",
        "/data/foo",
        "/other/foo",
    )
    assert result == ["foo", ".conda-foo", "foo-2", "foo-3"]


def test_env_outside_any_envs_dir_uses_its_folder_name():
    assert names("/srv/projects/climate") == ["climate"]


def test_anonymous_prefix_folders_are_named_after_their_parent():
    assert names("/home/u/projects/demo/.env", "/home/u/projects/web/.venv") == ["demo", "web"]


def test_pixi_environment_is_named_after_its_project():
    assert names("/home/u/proj/.pixi/envs/default", kind="pixi") == ["proj-default"]


def test_no_base_known():
    assert names("/home/u/miniforge3/envs/x", base=None) == ["miniforge3-x"]


@pytest.mark.parametrize(
    ("folder", "key"),
    [("python3", "py"), ("python2", "py"), ("ir", "r"), ("IR", "r"), ("julia-1.10", "julia-1.10")],
)
def test_kernel_key(folder, key):
    assert kernel_key(folder) == key


def test_ir_kernel_dir_gives_r_suffix():
    assert kernel_name("stats", False, "ir") == "conda-env-stats-r"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("conda-env-my env-py", "conda-env-my_env-py"),
        ("conda-env-données-py", "conda-env-donnees-py"),
        ("conda-env-a/b:c-py", "conda-env-a_b_c-py"),
        ("conda-env-ok.1_x-py", "conda-env-ok.1_x-py"),
    ],
)
def test_characters_outside_the_allowed_set_become_underscores(raw, clean):
    assert clean_kernel_name(raw) == clean


def test_kernel_name_is_cleaned():
    assert kernel_name("my env", False, "python3") == "conda-env-my_env-py"


def test_without_a_base_installation_the_users_envs_dir_names_environments_plainly():
    """A JupyterHub image without conda: environments restored by name live in
    ~/.conda/envs and keep that name; another `envs` folder is still told apart."""
    home_envs = Path("/home/ada/.conda/envs")
    envs = [
        NamingInput(home_envs / "course", "conda"),
        NamingInput(Path("/srv/conda/envs/course"), "conda"),
        NamingInput(Path("/srv/conda/envs/shared"), "conda"),
    ]

    names = environment_names(envs, None, default_envs_dir=home_envs)

    assert names == {
        home_envs / "course": "course",
        Path("/srv/conda/envs/course"): "conda-course",
        Path("/srv/conda/envs/shared"): "conda-shared",
    }
    # With a base installation elsewhere, nb_conda_kernels' rule is kept: `.conda-course`.
    with_base = environment_names(envs, Path("/opt/conda"), default_envs_dir=home_envs)
    assert with_base[home_envs / "course"] == ".conda-course"
