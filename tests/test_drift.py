"""GET repro/notebooks/{path}/drift: the notebook's spec against its kernel's live environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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

    assert await drift(jp_fetch) == {"status": "in_sync", "added": [], "removed": [], "changed": []}


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
        {"name": "pkgb", "spec_version": "1.0", "installed_version": "2.0"}
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
        {"name": "pkgb", "spec_version": "1.0=0", "installed_version": "2.0=0"}
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
