"""The session-wide ``hub`` fixture (imported by ``tests/conftest.py``).

One hub serves every hub test of the run (end-to-end and browser): building the
single-user servers' venv and spawning servers is the expensive part. Tests share its
users, so each uses environment names of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.hub.rig import Hub

__all__ = ["hub"]


@pytest.fixture(scope="session")
def hub(artifacts_dir: Path) -> Iterator[Hub]:
    """A real JupyterHub with two system users (see :mod:`tests.hub.rig`).

    Skipped with the reason when this machine cannot run it (not root, no
    configurable-http-proxy...), and failed instead under ``CI=true``.
    """
    from tests.hub.rig import requirement_problem, running_hub
    from tests.required import unavailable

    problem = requirement_problem()
    if problem is not None:
        unavailable(problem)
    with running_hub(artifacts_dir) as running:
        yield running
