"""A restore killed half-way leaves nothing behind once the server starts again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from jupyter_repro.environments.prefix import RESTORE_MARKER
from tests.rig.channel import RigChannel
from tests.rig.installation import CondaInstallation

pytestmark = pytest.mark.timeout(120)

# A stand-in for micromamba (no conda-family CLI can run here) that hangs in `create`, so the
# restore is reliably mid-way when it is killed.
HANGING_MICROMAMBA = "#!{python}\nimport time\ntime.sleep(120)\n"


@pytest.fixture
def installation(conda_installation_factory) -> CondaInstallation:
    return conda_installation_factory()


@pytest.fixture
def killed_restore(installation: CondaInstallation, rig_channel: RigChannel, tmp_path) -> Path:
    """Start `jupyter repro restore` in its own process group, SIGKILL it while it builds."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "micromamba"
    fake.write_text(HANGING_MICROMAMBA.format(python=sys.executable))
    fake.chmod(0o755)
    spec = tmp_path / "environment.yml"
    spec.write_text(f"channels:\n  - {rig_channel.url}\ndependencies:\n  - pkgc\n")
    env = installation.environ()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    # A name goes to the first writable envs dir: the .condarc's, as with conda.
    target = installation.extra_envs_dir / "crashed"
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_repro.cli", "restore", str(spec), "--name", "crashed",
         "--engine", "micromamba", "--yes"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (target / RESTORE_MARKER).exists():
            assert process.poll() is None, "the restore ended before it could be killed"
            assert time.monotonic() < deadline, "the restore never claimed its target"
            time.sleep(0.05)
        marker = json.loads((target / RESTORE_MARKER).read_text())
        assert marker["pid"] == process.pid
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the server (and its child) die mid-restore
        process.wait()
    assert target.exists()
    return target


def test_server_start_removes_the_half_built_environment(killed_restore, installation, tmp_path):
    port, token = _free_port(), "crash-test-token"
    env = installation.environ()
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_PLATFORM_DIRS="1")
    command = [
        sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1",
        f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
        "--ServerApp.jpserver_extensions=jupyter_repro=True",
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while killed_restore.exists() and time.monotonic() < deadline:
            assert server.poll() is None, "the server exited"
            time.sleep(0.1)
        assert not killed_restore.exists()
        listing = _get(port, token, "repro/environments")
        assert "crashed" not in {e["name"] for e in listing["environments"]}
        assert not any(
            "crashed" in name for name in _get(port, token, "api/kernelspecs")["kernelspecs"]
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, token: str, path: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/{path}", headers={"Authorization": f"token {token}"}
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
