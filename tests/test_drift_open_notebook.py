"""POST repro/notebooks/{path}/drift: the drift of a notebook as it is open (its session's
kernel, the spec in memory), and the cache that keeps polling cheap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jupyter_repro.notebooks.drift import FROM_FILE, DriftCache, notebook_drift
from tests.rig.installation import CondaInstallation
from tests.test_hardening_routes import DenyContentsRead, assert_json_error, server_config
from tests.test_notebook_routes import answer, write_notebook

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def installation(conda_installation_factory) -> CondaInstallation:
    """A fresh installation per test: the tests change its environments."""
    return conda_installation_factory(standard_envs=True)


@pytest.fixture
def jp_home_dir(installation: CondaInstallation) -> Path:
    return installation.home


async def post_drift(jp_fetch, body: Any, path: str = "nb.ipynb") -> tuple[int, Any]:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    code, _, answered = await answer(
        jp_fetch("repro", "notebooks", path, "drift", method="POST", body=raw)
    )
    return code, answered


async def get_drift(jp_fetch, path: str = "nb.ipynb") -> dict[str, Any]:
    code, _, body = await answer(jp_fetch("repro", "notebooks", path, "drift"))
    assert code == 200, body
    return body


async def embedded_value(jp_fetch, path: str = "nb.ipynb") -> dict[str, Any]:
    """What an export would embed for the notebook's kernel, without writing it."""
    code, _, body = await answer(
        jp_fetch("repro", "notebooks", path, "environment", params={"format": "metadata"})
    )
    assert code == 200, body
    return body


async def test_the_session_kernel_counts_not_the_files(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb", kernel="conda-env-py-py")
    metadata = await embedded_value(jp_fetch)

    code, same = await post_drift(jp_fetch, {"kernel": "conda-env-py-py", "metadata": metadata})
    assert code == 200, same
    assert same["status"] == "in_sync"

    # The user switched the open notebook to `old` and saved nothing.
    code, other = await post_drift(jp_fetch, {"kernel": "conda-env-old-py", "metadata": metadata})
    assert code == 200, other
    assert other["status"] == "drifted"
    assert "pkgc" in other["removed"]
    assert {"pkga", "pkgb"} <= set(other["added"])
    # The file on disk was not touched, nor judged.
    assert (await get_drift(jp_fetch))["status"] == "no_spec"


async def test_the_spec_in_memory_counts_not_the_files(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb")
    metadata = await embedded_value(jp_fetch)

    code, body = await post_drift(jp_fetch, {"metadata": metadata})

    assert code == 200, body
    assert body["status"] == "in_sync"
    assert body["spec"] == {"source": "embedded", "path": "nb.ipynb"}


async def test_null_metadata_means_the_open_notebook_has_no_spec(jp_fetch, jp_root_dir):
    embedded = {"environment": {"dependencies": ["pkga=1.0"]}}
    write_notebook(jp_root_dir / "nb.ipynb", embedded=embedded)
    assert (await get_drift(jp_fetch))["status"] == "drifted"

    code, body = await post_drift(jp_fetch, {"metadata": None})

    assert code == 200, body
    assert body["status"] == "no_spec"


async def test_absent_keys_mean_as_in_the_file(jp_fetch, jp_root_dir):
    embedded = {"environment": {"dependencies": ["pkga=1.0"]}}
    write_notebook(jp_root_dir / "nb.ipynb", embedded=embedded)

    code, body = await post_drift(jp_fetch, {})

    assert code == 200, body
    assert body == await get_drift(jp_fetch)


async def test_a_new_notebook_with_a_running_kernel_is_not_missing_its_environment(
    jp_fetch, jp_root_dir
):
    # Never saved with a kernel: the file names none; an environment.yml lies beside it.
    write_notebook(jp_root_dir / "Untitled.ipynb", kernel=None)
    (jp_root_dir / "environment.yml").write_text("dependencies:\n  - python\n  - ipykernel\n")
    on_disk = await get_drift(jp_fetch, "Untitled.ipynb")
    assert on_disk["status"] == "missing_environment"

    code, body = await post_drift(
        jp_fetch, {"kernel": "conda-env-py-py", "metadata": None}, "Untitled.ipynb"
    )

    assert code == 200, body
    assert body["status"] in ("in_sync", "drifted")
    assert body["spec"] == {"source": "file", "path": "environment.yml"}


async def test_a_package_installed_on_disk_is_seen_by_the_next_request(
    jp_fetch, jp_root_dir, installation
):
    write_notebook(jp_root_dir / "nb.ipynb", kernel="conda-env-old-py")
    body = {"kernel": "conda-env-old-py", "metadata": await embedded_value(jp_fetch)}
    assert (await post_drift(jp_fetch, body))[1]["status"] == "in_sync"
    assert (await post_drift(jp_fetch, body))[1]["status"] == "in_sync"  # from the cache

    installation.add_packages(installation.envs["old"], ["pkgc"])
    code, drifted = await post_drift(jp_fetch, body)
    assert code == 200, drifted
    assert drifted["status"] == "drifted"
    assert drifted["added"] == ["pkgc"]

    installation.remove_packages(installation.envs["old"], ["pkgc"])
    assert (await post_drift(jp_fetch, body))[1]["status"] == "in_sync"

    installation.add_pip_package(installation.envs["old"], "rig-pip", "1.0")
    assert (await post_drift(jp_fetch, body))[1]["added"] == ["pip:rig-pip"]


async def test_an_environment_created_later_is_found(jp_fetch, jp_root_dir, installation):
    write_notebook(jp_root_dir / "nb.ipynb", kernel="conda-env-later-py")
    body = {"metadata": {"environment": {"dependencies": ["python", "ipykernel"]}}}
    assert (await post_drift(jp_fetch, body))[1]["status"] == "missing_environment"

    installation.create_env("later", ["python", "ipykernel"])

    assert (await post_drift(jp_fetch, body))[1]["status"] == "in_sync"


@pytest.mark.parametrize(
    "body",
    [
        {"kernel": 5},
        {"kernel": ""},
        {"kernel": "a\x00b"},
        {"kernel": "x" * 300},
        {"metadata": []},
        {"metadata": "yes"},
        {"metadata": {"no": "environment"}},
        {"other": 1},
        [],
        "{",
    ],
    ids=[
        "kernel-int",
        "kernel-empty",
        "kernel-nul",
        "kernel-long",
        "metadata-list",
        "metadata-string",
        "metadata-without-environment",
        "unknown-key",
        "not-an-object",
        "not-json",
    ],
)
async def test_bad_bodies_are_400(jp_fetch, jp_root_dir, body):
    write_notebook(jp_root_dir / "nb.ipynb")

    code, answered = await post_drift(jp_fetch, body)

    assert_json_error(code, answered, 400)


async def test_an_invalid_spec_in_memory_is_422(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb")

    code, body = await post_drift(
        jp_fetch, {"metadata": {"environment": {"dependencies": "not a list"}}}
    )

    assert_json_error(code, body, 422)


async def test_path_errors_are_those_of_get(jp_fetch, jp_root_dir):
    code, body = await post_drift(jp_fetch, {}, "missing.ipynb")
    assert_json_error(code, body, 404)
    code, body = await post_drift(jp_fetch, {}, "nb.txt")
    assert_json_error(code, body, 400)
    code, body = await post_drift(jp_fetch, {}, "../nb.ipynb")
    assert code in (403, 404), body


class TestContentsReadDenied:
    @pytest.fixture
    def jp_server_config(self):
        return server_config(DenyContentsRead)

    async def test_post_is_403_and_says_nothing_of_the_file(self, jp_fetch, jp_root_dir):
        write_notebook(jp_root_dir / "nb.ipynb", embedded={"environment": {"name": "secret"}})

        code, body = await post_drift(jp_fetch, {"kernel": "conda-env-py-py"})

        assert_json_error(code, body, 403)
        assert "secret" not in json.dumps(body)


# -- the cache, without a server -------------------------------------------------------------


def test_the_cache_answers_until_an_input_changes(tmp_path, conda_installation_factory):
    from jupyter_repro.kernels.manager import CondaKernelSpecManager

    installation = conda_installation_factory(standard_envs=True)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in installation.environ().items():
            patch.setenv(name, value)
        specs = CondaKernelSpecManager()
        notebook = write_notebook(tmp_path / "nb.ipynb", kernel="conda-env-old-py")
        spec = {"environment": {"dependencies": ["python", "ipykernel", "pkga", "pkgb"]}}
        cache = DriftCache()

        first = cache.notebook_drift(notebook, specs, None, embedded=spec)
        assert first.status == "in_sync"
        assert cache.notebook_drift(notebook, specs, None, embedded=spec) is first
        # Another spec in memory is another answer.
        other = cache.notebook_drift(notebook, specs, None, embedded=None)
        assert other.status == "no_spec"

        installation.add_packages(installation.envs["old"], ["pkgc"])
        changed = cache.notebook_drift(notebook, specs, None, embedded=spec)
        assert changed is not first
        assert changed.added == ("pkgc",)
        assert changed == notebook_drift(notebook, specs, None, embedded=spec)

        # The file's own kernel changes: seen through its stat.
        write_notebook(notebook, kernel="conda-env-py-py")
        assert cache.notebook_drift(notebook, specs, None, embedded=spec) == notebook_drift(
            notebook, specs, None, embedded=spec
        )
        # As the file says: the same as without the keyword.
        assert cache.notebook_drift(notebook, specs, None, embedded=FROM_FILE) == notebook_drift(
            notebook, specs, None
        )
