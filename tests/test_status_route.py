"""`GET repro/status` against a real Jupyter server with the extension enabled."""

from __future__ import annotations

import json
import os
import stat
from importlib import metadata

import pytest

from jupyter_repro import __version__
from jupyter_repro.specs.export import host_platform


async def test_status_reports_version_engine_and_clis(jp_fetch):
    response = await jp_fetch("repro", "status")

    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.body)
    assert body["version"] == __version__
    assert body["engine"] == {
        "name": "rattler",
        "version": metadata.version("py-rattler"),
        "embedded": True,
    }
    assert set(body["clis"]) == {"conda", "mamba", "micromamba"}
    # what a lock made here takes from the installed records (the UI checks it by default)
    assert body["platform"] == host_platform()


async def test_status_finds_a_cli_that_appears_on_path(jp_fetch, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    micromamba = bin_dir / "micromamba"
    micromamba.write_text("#!/bin/sh\nexit 1\n")  # never run: finding a CLI only looks at files
    micromamba.chmod(micromamba.stat().st_mode | stat.S_IXUSR)
    not_executable = bin_dir / "mamba"
    not_executable.write_text("")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    monkeypatch.delenv("CONDA_EXE", raising=False)
    monkeypatch.delenv("MAMBA_EXE", raising=False)

    body = json.loads((await jp_fetch("repro", "status")).body)

    assert body["clis"]["micromamba"] == str(micromamba)
    assert body["clis"]["mamba"] is None


async def test_status_requires_credentials(jp_serverapp, http_server_client, jp_base_url):
    response = await http_server_client.fetch(f"{jp_base_url}repro/status", raise_error=False)

    assert response.code == 403
    assert b'"version"' not in response.body


async def test_status_rejects_a_wrong_token(jp_serverapp, http_server_client, jp_base_url):
    response = await http_server_client.fetch(
        f"{jp_base_url}repro/status",
        headers={"Authorization": "token not-the-token"},
        raise_error=False,
    )

    assert response.code == 403


class TestConfiguredEngine:
    @pytest.fixture
    def jp_server_config(self):
        return {
            "ServerApp": {"jpserver_extensions": {"jupyter_repro": True}},
            "ReproApp": {"engine": "micromamba"},
        }

    async def test_configured_engine_is_reported(self, jp_fetch):
        body = json.loads((await jp_fetch("repro", "status")).body)

        assert body["engine"] == {"name": "micromamba", "version": None, "embedded": False}
