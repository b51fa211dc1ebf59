"""GET repro/notebooks/{path}/drift: the notebook's spec against its kernel's live environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.rig.channel import IPYKERNEL_BUILD, IPYKERNEL_VERSION, PYTHON_VERSION
from tests.rig.installation import CondaInstallation
from tests.test_notebook_routes import answer, write_notebook

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def installation(conda_installation_factory) -> CondaInstallation:
    """A fresh installation per test: the tests change its environments."""
    return conda_installation_factory(standard_envs=True)


@pytest.fixture
def jp_home_dir(installation: CondaInstallation) -> Path:
    return installation.home


async def drift(jp_fetch, path: str = "nb.ipynb") -> dict[str, Any]:
    code, _, body = await answer(jp_fetch("repro", "notebooks", path, "drift"))
    assert code == 200, body
    return body


async def embed(jp_fetch, path: str = "nb.ipynb", **body: Any) -> None:
    response = await jp_fetch(
        "repro",
        "notebooks",
        path,
        "environment",
        method="POST",
        body=json.dumps({"target": "metadata", **body}),
    )
    assert response.code == 200


async def test_in_sync_right_after_embedding(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb")
    await embed(jp_fetch)

    assert await drift(jp_fetch) == {
        "status": "in_sync",
        "added": [],
        "removed": [],
        "changed": [],
        "spec": {"source": "embedded", "path": "nb.ipynb"},
    }


async def test_a_requested_package_added_since_is_added(jp_fetch, jp_root_dir, installation):
    write_notebook(jp_root_dir / "nb.ipynb")
    await embed(jp_fetch)
    installation.add_packages(installation.envs["py"], ["pkgd"])

    result = await drift(jp_fetch)

    assert result["status"] == "drifted"
    assert result["added"] == ["pkgd"]
    assert result["removed"] == []
    assert result["changed"] == []


async def test_a_removed_package_is_removed(jp_fetch, jp_root_dir, installation):
    write_notebook(jp_root_dir / "nb.ipynb")
    await embed(jp_fetch)
    gone = installation.remove_packages(installation.envs["py"], ["pkgc"])

    result = await drift(jp_fetch)

    assert gone == ["pkgc"]
    assert result["status"] == "drifted"
    assert result["removed"] == ["pkgc"]
    assert result["added"] == []
    assert result["changed"] == []


async def test_an_upgraded_package_is_changed(jp_fetch, jp_root_dir, installation):
    write_notebook(jp_root_dir / "nb.ipynb", kernel="conda-env-old-py")
    await embed(jp_fetch)
    installation.add_packages(installation.envs["old"], ["pkgb=2.0"])

    result = await drift(jp_fetch)

    assert installation.installed(installation.envs["old"])["pkgb"] == "2.0"
    assert result["status"] == "drifted"
    assert result["changed"] == [
        {"name": "pkgb", "spec": "pkgb=1.0", "spec_version": "1.0", "installed_version": "2.0"}
    ]
    assert result["added"] == []
    assert result["removed"] == []


async def test_exact_specs_compare_builds_and_count_every_new_package(
    jp_fetch, jp_root_dir, installation
):
    write_notebook(jp_root_dir / "nb.ipynb", kernel="conda-env-old-py")
    await embed(jp_fetch, mode="exact")
    installation.add_packages(installation.envs["old"], ["pkgb=2.0", "pkgd"])

    result = await drift(jp_fetch)

    # pkgd needs pkgb 2: the upgrade shows with builds; pkgd is new.
    assert result["status"] == "drifted"
    assert result["added"] == ["pkgd"]
    assert result["changed"] == [
        {
            "name": "pkgb",
            "spec": "pkgb=1.0=0",
            "spec_version": "1.0=0",
            "installed_version": "2.0=0",
        }
    ]


async def test_pip_packages_installed_since_are_added(jp_fetch, jp_root_dir, installation):
    write_notebook(jp_root_dir / "nb.ipynb")
    await embed(jp_fetch)
    installation.add_pip_package(installation.envs["py"], "Rig-Pip", "1.0")

    result = await drift(jp_fetch)

    assert result["status"] == "drifted"
    assert result["added"] == ["pip:rig-pip"]


async def test_a_sibling_environment_yml_is_the_spec_without_an_embedded_one(
    jp_fetch, jp_root_dir, installation
):
    write_notebook(jp_root_dir / "work" / "nb.ipynb")
    response = await jp_fetch(
        "repro",
        "notebooks",
        "work/nb.ipynb",
        "environment",
        method="POST",
        body=json.dumps({"target": "file"}),
    )
    assert response.code == 200
    in_sync = await drift(jp_fetch, "work/nb.ipynb")

    installation.remove_packages(installation.envs["py"], ["pkgc"])
    drifted = await drift(jp_fetch, "work/nb.ipynb")

    assert in_sync["status"] == "in_sync"
    assert drifted["status"] == "drifted"
    assert drifted["removed"] == ["pkgc"]


async def test_a_kernel_missing_here_is_missing_environment(jp_fetch, jp_root_dir):
    embedded = {"environment": {"dependencies": ["pkga=1.0"]}}
    write_notebook(jp_root_dir / "nb.ipynb", kernel="conda-env-gone-py", embedded=embedded)

    result = await drift(jp_fetch)

    assert result["status"] == "missing_environment"
    assert "conda-env-gone-py" in result["message"]
    assert result["added"] == result["removed"] == result["changed"] == []


async def test_a_deleted_environment_is_missing_environment(jp_fetch, jp_root_dir, installation):
    write_notebook(jp_root_dir / "nb.ipynb", kernel="conda-env-old-py")
    await embed(jp_fetch)
    installation.remove_env(installation.envs["old"])

    assert (await drift(jp_fetch))["status"] == "missing_environment"


async def test_no_embedded_spec_and_no_sibling_file_is_no_spec(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb")

    result = await drift(jp_fetch)

    assert result["status"] == "no_spec"
    assert result["added"] == result["removed"] == result["changed"] == []


async def test_an_invalid_embedded_spec_is_422(jp_fetch, jp_root_dir):
    embedded = {"environment": {"dependencies": "not a list"}}
    write_notebook(jp_root_dir / "nb.ipynb", embedded=embedded)

    code, _, body = await answer(jp_fetch("repro", "notebooks", "nb.ipynb", "drift"))

    assert code == 422
    assert "dependencies" in body["message"]


# -- judged as conda matches specs ------------------------------------------------------------


async def test_hand_written_short_pins_and_ranges_are_in_sync(jp_fetch, jp_root_dir, installation):
    """`python=3.11` means 3.11.* for conda: a hand-written spec is not drifted by a patch."""
    major, minor, _ = PYTHON_VERSION.split(".")
    spec = (
        "name: py\n"
        "dependencies:\n"
        f"  - python={major}.{minor}\n"
        f"  - python >={major}.{minor},<{int(major) + 1}\n"
        "  - pkgc>=1.0,<2\n"
        "  - ipykernel * pyh_*\n"
        "  - rig-activate\n"
        "  - rig-envvars\n"
    )
    write_notebook(jp_root_dir / "nb.ipynb")
    (jp_root_dir / "environment.yml").write_text(spec)

    result = await drift(jp_fetch)

    assert result == {
        "status": "in_sync",
        "added": [],
        "removed": [],
        "changed": [],
        "spec": {"source": "file", "path": "environment.yml"},
    }


async def test_specs_the_installed_packages_do_not_satisfy_are_changed_as_written(
    jp_fetch, jp_root_dir, installation
):
    spec = (
        "dependencies:\n"
        "  - python=2.7\n"
        "  - pkgc<1\n"
        "  - ipykernel * *_cp313t\n"
        "  - rig-activate\n"
        "  - rig-envvars\n"
    )
    write_notebook(jp_root_dir / "nb.ipynb")
    (jp_root_dir / "environment.yml").write_text(spec)

    result = await drift(jp_fetch)

    assert result["status"] == "drifted"
    assert result["changed"] == [
        {
            "name": "ipykernel",
            "spec": "ipykernel * *_cp313t",
            "spec_version": "* *_cp313t",
            "installed_version": f"{IPYKERNEL_VERSION}={IPYKERNEL_BUILD}",
        },
        {"name": "pkgc", "spec": "pkgc<1", "spec_version": "<1", "installed_version": "1.0"},
        {
            "name": "python",
            "spec": "python=2.7",
            "spec_version": "2.7",
            "installed_version": PYTHON_VERSION,
        },
    ]
    assert result["removed"] == result["added"] == []


async def test_pip_entries_are_judged_by_their_specifiers(jp_fetch, jp_root_dir, installation):
    prefix = installation.envs["py"]
    installation.add_pip_package(prefix, "Rig-Pip", "1.4.2")
    installation.add_pip_package(prefix, "other_pkg", "2.0rc1")
    base = "dependencies:\n  - python\n  - ipykernel\n  - pkgc\n  - rig-activate\n  - rig-envvars\n"
    write_notebook(jp_root_dir / "nb.ipynb")
    sibling = jp_root_dir / "environment.yml"

    sibling.write_text(
        base + "  - pip:\n      - rig_pip>=1.4,<2\n      - Other.Pkg~=2.0rc1\n"
        "      - absent-elsewhere==1.0 ; python_version < '3.0'\n"
    )
    satisfied = await drift(jp_fetch)
    sibling.write_text(base + "  - pip:\n      - rig-pip==1.3\n      - other-pkg>=3\n")
    unsatisfied = await drift(jp_fetch)

    assert satisfied["status"] == "in_sync", satisfied
    assert unsatisfied["status"] == "drifted"
    assert unsatisfied["changed"] == [
        {
            "name": "pip:other-pkg",
            "spec": "other-pkg>=3",
            "spec_version": ">=3",
            "installed_version": "2.0rc1",
        },
        {
            "name": "pip:rig-pip",
            "spec": "rig-pip==1.3",
            "spec_version": "1.3",
            "installed_version": "1.4.2",
        },
    ]


async def test_a_sibling_file_of_another_environment_is_skipped(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb")
    (jp_root_dir / "environment.yml").write_text("name: analysis\ndependencies:\n  - pkga\n")

    result = await drift(jp_fetch)

    assert result["status"] == "no_spec"
    assert "environment.yml" in result["message"]
    assert "'analysis'" in result["message"]
    assert "'py'" in result["message"]
    assert result["added"] == result["removed"] == result["changed"] == []


async def test_a_sibling_file_naming_the_notebooks_environment_counts(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb")
    (jp_root_dir / "environment.yml").write_text("name: py\ndependencies:\n  - pkga\n")

    result = await drift(jp_fetch)

    assert result["status"] == "drifted"
    assert result["spec"] == {"source": "file", "path": "environment.yml"}
    assert result["added"] == ["ipykernel", "pkgc", "python", "rig-activate", "rig-envvars"]


async def test_an_embedded_spec_wins_over_a_sibling_file(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "sub" / "nb.ipynb")
    (jp_root_dir / "sub" / "environment.yml").write_text("name: py\ndependencies:\n  - pkgd\n")
    await embed(jp_fetch, "sub/nb.ipynb")

    result = await drift(jp_fetch, "sub/nb.ipynb")

    assert result["status"] == "in_sync"
    assert result["spec"] == {"source": "embedded", "path": "sub/nb.ipynb"}


async def test_a_sibling_file_for_a_missing_kernel_is_judged_by_the_kernel_name(
    jp_fetch, jp_root_dir
):
    write_notebook(jp_root_dir / "a" / "nb.ipynb", kernel="conda-env-gone-py")
    (jp_root_dir / "a" / "environment.yml").write_text("name: gone\ndependencies:\n  - pkga\n")
    write_notebook(jp_root_dir / "b" / "nb.ipynb", kernel="conda-env-gone-py")
    (jp_root_dir / "b" / "environment.yml").write_text("name: other\ndependencies:\n  - pkga\n")

    same = await drift(jp_fetch, "a/nb.ipynb")
    other = await drift(jp_fetch, "b/nb.ipynb")

    assert same["status"] == "missing_environment"
    assert same["spec"] == {"source": "file", "path": "a/environment.yml"}
    assert other["status"] == "no_spec"
    assert "b/environment.yml" in other["message"]


@pytest.mark.parametrize("mode", ["portable", "exact", "no-builds"])
async def test_drift_after_writing_the_export_is_in_sync_for_every_kernel(
    jp_fetch, jp_root_dir, installation, mode
):
    installation.add_pip_package(installation.envs["py"], "Rig-Pip", "1.0")
    specs = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    kernels = sorted(n for n, k in specs.items() if k["spec"]["metadata"].get("conda_env_path"))
    assert {"conda-base-py", "conda-env-py-py", "conda-env-old-py", "conda-env-r-r"} <= set(kernels)

    verdicts = {}
    for index, kernel in enumerate(kernels):
        for target in ("metadata", "file"):
            path = f"{kernel}/{target}/nb{index}.ipynb"
            write_notebook(jp_root_dir / path, kernel=kernel)
            await embed(jp_fetch, path, target=target, mode=mode, explicit=True)
            verdicts[path] = await drift(jp_fetch, path)

    assert {p: v for p, v in verdicts.items() if v["status"] != "in_sync"} == {}
    sources = {v["spec"]["source"] for v in verdicts.values()}
    assert sources == {"embedded", "file"}
