"""Shared fixtures: a real Jupyter server with the extension and the offline conda rig."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.hub.fixtures import *  # noqa: F403  (a real JupyterHub: `hub`)
from tests.rig.fixtures import *  # noqa: F403  (the offline conda rig's fixtures)

pytest_plugins = ["pytest_jupyter.jupyter_server"]

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"


@pytest.fixture
def jp_server_config():
    """A server with jupyter-repro enabled and every request required to be authenticated."""
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_repro": True},
            "allow_unauthenticated_access": False,
        }
    }


@pytest.fixture(autouse=True)
def no_conda_of_the_machine(monkeypatch):
    """No test sees the conda, mamba or pixi of whoever runs it: only what the test builds."""
    for key in list(os.environ):
        if key.startswith(("CONDA", "MAMBA", "PIXI")):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave screenshots and logs for a person to look at (kept after the run)."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


# py-rattler 0.28 can abort during interpreter finalization after a solve (exit status -6;
# see shared/notes/offline-conda.md). Once pytest has reported, end the process directly
# with the status pytest chose, so a passing run never turns into a crash.
_session_status: int = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _session_status
    _session_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if "rattler" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_session_status)
