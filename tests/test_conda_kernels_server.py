"""Environments as kernels in a real Jupyter server: listing, launching with activation, aliases."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from tests.rig.installation import CondaInstallation
from tests.server_helpers import kernelspecs, run_in_kernel, start_kernel

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def installation(rig_installation: CondaInstallation) -> CondaInstallation:
    return rig_installation


@pytest.fixture
def jp_home_dir(installation: CondaInstallation) -> Path:
    """The server's HOME is the rig installation's: its ~/.condarc, ~/.conda and ~/miniforge3."""
    return installation.home


REPORT = (
    "import os, sys\n"
    "print(sys.prefix)\n"
    "print(os.environ.get('CONDA_PREFIX'))\n"
    "print(os.environ.get('REPRO_RIG_ACTIVATED'))\n"
    "print(os.environ.get('REPRO_RIG_ENV_VAR'))\n"
)


async def test_every_environment_kernel_is_listed_with_nb_conda_kernels_metadata(
    jp_fetch, installation
):
    specs = await kernelspecs(jp_fetch)

    expected = {"conda-base-py", "conda-env-py-py", "conda-env-r-r", "conda-env-old-py"}
    assert expected <= set(specs)
    assert not any(name.startswith("conda-env-nokernel") for name in specs)
    py = specs["conda-env-py-py"]["spec"]
    assert py["display_name"] == "Python [conda env:py]"
    assert py["metadata"]["conda_env_name"] == "py"
    assert py["metadata"]["conda_env_path"] == str(installation.envs["py"].resolve())
    assert py["metadata"]["conda_raw_kernel_name"] == "python3"
    assert py["metadata"]["conda_language"] == "python"
    assert py["metadata"]["conda_is_base_environment"] is False
    assert py["metadata"]["conda_is_currently_running"] is False
    assert specs["conda-base-py"]["spec"]["metadata"]["conda_is_base_environment"] is True
    assert specs["conda-env-r-r"]["spec"]["language"] == "R"


async def test_kernels_run_in_their_environments_with_activation(
    jp_fetch, jp_serverapp, installation
):
    cases = {
        "conda-env-py-py": installation.envs["py"],
        "conda-env-old-py": installation.envs["old"],
        "conda-base-py": installation.root_prefix,
    }
    for name, prefix in cases.items():
        kernel_id = await start_kernel(jp_fetch, name)
        lines = run_in_kernel(jp_serverapp, kernel_id, REPORT).splitlines()
        await jp_fetch("api", "kernels", kernel_id, method="DELETE")

        assert Path(lines[0]).resolve() == prefix.resolve(), name
        assert Path(lines[1]).resolve() == prefix.resolve(), name
        # Only the `py` environment has the rig's activate.d and env_vars.d packages.
        if name == "conda-env-py-py":
            assert lines[2:] == ["1", "from-env-vars-d"]
        else:
            assert lines[2:] == ["None", "None"], name


async def test_interrupt_reaches_a_kernel_started_through_the_launcher(jp_fetch, jp_serverapp):
    kernel_id = await start_kernel(jp_fetch, "conda-env-py-py")
    client = jp_serverapp.kernel_manager.get_kernel(kernel_id).blocking_client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        msg_id = client.execute("import time\ntime.sleep(30)")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the sleep is running
            message = client.get_iopub_msg(timeout=30)
            if (
                message["parent_header"].get("msg_id") == msg_id
                and message["msg_type"] == "execute_input"
            ):
                break
        time.sleep(0.3)
        started = time.monotonic()
        await jp_fetch("api", "kernels", kernel_id, "interrupt", method="POST", body="")
        reply = client.get_shell_msg(timeout=20)
        elapsed = time.monotonic() - started
    finally:
        client.stop_channels()
        await jp_fetch("api", "kernels", kernel_id, method="DELETE")

    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert elapsed < 10


async def test_notebook_naming_conda_root_py_opens_with_the_base_kernel(
    jp_fetch, jp_serverapp, installation, jp_root_dir
):
    notebook = {
        "cells": [],
        "metadata": {
            "kernelspec": {"name": "conda-root-py", "display_name": "Python [conda root]"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (jp_root_dir / "old.ipynb").write_text(json.dumps(notebook))

    response = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps(
            {"path": "old.ipynb", "type": "notebook", "kernel": {"name": "conda-root-py"}}
        ),
    )
    session = json.loads(response.body)
    output = run_in_kernel(jp_serverapp, session["kernel"]["id"], "import sys; print(sys.prefix)")
    await jp_fetch("api", "sessions", session["id"], method="DELETE")

    assert Path(output.strip()).resolve() == installation.root_prefix.resolve()
    assert "conda-root-py" not in await kernelspecs(jp_fetch)  # resolvable, not listed twice


class TestChangingEnvironments:
    @pytest.fixture
    def installation(self, conda_installation_factory) -> CondaInstallation:
        return conda_installation_factory()

    async def test_new_environment_is_listed_at_once_and_a_removed_one_disappears(
        self, jp_fetch, installation
    ):
        assert "conda-env-fresh-py" not in await kernelspecs(jp_fetch)

        prefix = installation.create_env("fresh", ["python", "ipykernel"])
        assert "conda-env-fresh-py" in await kernelspecs(jp_fetch)

        installation.remove_env(prefix)
        assert "conda-env-fresh-py" not in await kernelspecs(jp_fetch)


async def test_environments_route_lists_names_kinds_and_kernels(jp_fetch, installation):
    body = json.loads((await jp_fetch("repro", "environments")).body)

    by_name = {e["name"]: e for e in body["environments"]}
    assert body["environments"][0]["name"] == "base"
    assert by_name["base"]["is_base"] is True
    assert by_name["py"]["kernels"] == ["conda-env-py-py"]
    assert by_name["r"]["kernels"] == ["conda-env-r-r"]
    assert by_name["nokernel"]["kernels"] == []
    assert by_name["py"]["kind"] == "conda"
    assert by_name["py"]["python_version"].startswith(f"{sys.version_info[0]}.")
    assert by_name["demo"]["prefix"] == str(installation.envs["demo"].resolve())


async def test_environment_route_gives_conda_and_pip_packages(jp_fetch):
    body = json.loads((await jp_fetch("repro", "environments", "old")).body)

    packages = {p["name"]: p for p in body["conda_packages"]}
    assert packages["pkgb"]["version"] == "1.0"
    assert {"python", "ipykernel", "pkga"} <= set(packages)
    assert body["pip_packages"] == []


async def test_unknown_environment_is_a_404_with_a_message(jp_fetch):
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch("repro", "environments", "does-not-exist")

    assert raised.value.code == 404
    assert "no environment named 'does-not-exist'" in raised.value.response.body.decode()


async def test_environment_routes_require_credentials(
    jp_serverapp, http_server_client, jp_base_url
):
    for path in ("repro/environments", "repro/environments/base"):
        response = await http_server_client.fetch(f"{jp_base_url}{path}", raise_error=False)
        assert response.code == 403, path


class TestTokensNeverLeave:
    @pytest.fixture
    def installation(self, conda_installation_factory) -> CondaInstallation:
        inst = conda_installation_factory()
        prefix = inst.create_env("tok", ["pkgc"])
        record_path = next((prefix / "conda-meta").glob("pkgc-*.json"))
        record = json.loads(record_path.read_text())
        record["channel"] = "https://conda.anaconda.org/t/tk-secret-123/conda-forge"
        record_path.unlink()  # never edit in place: files may be shared hard links
        record_path.write_text(json.dumps(record))
        return inst

    async def test_environment_details_show_short_channels_without_tokens(self, jp_fetch):
        response = await jp_fetch("repro", "environments", "tok")

        assert b"tk-secret-123" not in response.body
        packages = {p["name"]: p for p in json.loads(response.body)["conda_packages"]}
        assert packages["pkgc"]["channel"] == "conda-forge"
