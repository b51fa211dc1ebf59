"""A real JupyterLab (subprocess) with jupyter-repro, driven by Playwright in Debian's chromium."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Without these, chromium keeps trying to reach Google services, which this network refuses.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium_path() -> str | None:
    for candidate in (
        os.environ.get("REPRO_CHROMIUM"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LabServer:
    """A running `jupyter lab` and what a browser needs to reach it."""

    url: str
    token: str
    root_dir: Path
    log_path: Path

    def lab_url(self, path: str = "lab") -> str:
        return f"{self.url}{path}?token={self.token}"


def _wait_until_ready(server: LabServer, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    probe = f"{server.url}api/status?token={server.token}"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"jupyter lab exited with {process.returncode}; see {server.log_path}:\n"
                + server.log_path.read_text(errors="replace")[-3000:]
            )
        try:
            with urllib.request.urlopen(probe, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"jupyter lab did not answer within {timeout} s; see {server.log_path}")


def isolated_jupyter_env(base: Path) -> dict[str, str]:
    """Environment for a Jupyter process that reads no config or data of whoever runs the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "CONDA", "MAMBA"))}
    for name in ("home", "config", "data", "runtime", "ipython"):
        (base / name).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(base / "home"),
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    return env


@contextlib.contextmanager
def running_lab(
    base: Path,
    root_dir: Path,
    env: dict[str, str],
    log_path: Path,
    extra_args: Sequence[str] = (),
    timeout: float = 60,
) -> Iterator[LabServer]:
    """`jupyter lab` on a free loopback port with a fresh token, stopped on exit."""
    port = _free_port()
    token = secrets.token_hex(16)
    server = LabServer(f"http://127.0.0.1:{port}/", token, root_dir, log_path)
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={base / 'settings'}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        *extra_args,
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI and these machines run as root
        command.append("--allow-root")
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=base)
    try:
        _wait_until_ready(server, process, timeout=timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory, artifacts_dir) -> Iterator[LabServer]:
    """`jupyter lab` on a free loopback port, serving a copy of examples/, with a fresh token."""
    base = tmp_path_factory.mktemp("lab")
    root_dir = base / "root"
    shutil.copytree(REPO_ROOT / "examples", root_dir)
    env = isolated_jupyter_env(base)
    with running_lab(base, root_dir, env, artifacts_dir / "jupyter-lab.log") as server:
        yield server


@pytest.fixture
def jp_asyncio_loop():
    """Browser tests need no server loop of pytest-jupyter's.

    Playwright's sync API keeps its own asyncio loop running while the browser is open;
    pytest-jupyter's autouse fixture would pick that loop up and try to close it.
    """
    return None


@pytest.fixture
def jp_server_cleanup():
    """No in-process ServerApp to clean up: the browser tests' JupyterLab is a subprocess."""
    return None


# Package scope: Playwright's loop must be gone before tests outside this folder run.
@pytest.fixture(scope="package")
def browser():
    """Debian's chromium under Playwright (Playwright cannot download a browser here)."""
    chromium = _chromium_path()
    if chromium is None:
        from tests.required import unavailable

        unavailable("chromium is not installed (`make test` installs Debian's chromium as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
    # Leave no loop of Playwright's behind as the thread's current loop.
    asyncio.set_event_loop(None)


@pytest.fixture
def page(browser, request, artifacts_dir):
    """A fresh browser page; fails the test on any uncaught error in the page."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    yield page
    report = getattr(request.node, "repro_call_report", None)
    if report is not None and report.failed:
        page.screenshot(path=str(artifacts_dir / f"{request.node.name}-failure.png"))
    context.close()
    assert not page_errors, f"uncaught errors in the page: {page_errors}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the call phase's report on the item, so `page` can screenshot a failure."""
    report = yield
    if report.when == "call":
        item.repro_call_report = report
    return report


# --------------------------------------------------------------------------------------------
# JupyterLab over a rig conda installation, for the UI tests of the Environments panel
# --------------------------------------------------------------------------------------------

UI_ENVS = {
    # name: (specs, envs dir: "envs" = <root>/envs, "extra" = the condarc one)
    "work": (("python", "ipykernel", "pkga"), "envs"),
    "drifty": (("python", "ipykernel", "pkgb=1.0"), "envs"),
    "tool": (("pkgc",), "extra"),
}
GATED_PACKAGES = ("gatedok", "gatedcancel")
"""Packages of the HTTP channel whose download waits for the test (restore, cancel)."""


@contextlib.contextmanager
def running_rig_lab(
    base: Path, root_dir: Path, installation: Any, log_path: Path, timeout: float = 60
) -> Iterator[LabServer]:
    """`jupyter lab` whose HOME is a rig installation's, with `window.jupyterapp` exposed."""
    env = installation.environ()
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    for name in ("settings", "workspaces"):
        (base / name).mkdir()
    # No "Would you like to receive Jupyter news?" toast over the status bar.
    news = base / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    with running_lab(
        base,
        root_dir,
        env,
        log_path,
        # window.jupyterapp: tests run commands and read notebook models through it.
        extra_args=["--LabApp.expose_app_in_browser=True"],
        timeout=timeout,
    ) as server:
        yield server


@dataclass
class UILab:
    """The UI tests' server, its conda installation and channels."""

    server: LabServer
    installation: Any  # tests.rig.installation.CondaInstallation
    rig_channel_url: str
    gated: Any  # tests.rig.served.ServedChannel

    @property
    def root_dir(self) -> Path:
        return self.server.root_dir


# Package scope: both stop once the browser tests are done, not at the end of `make test`.
@pytest.fixture(scope="package")
def gated_channel(tmp_path_factory):
    """A channel of tiny packages over HTTP on loopback, their downloads held by gates."""
    from tests.rig.channel import build_channel, generic_package
    from tests.rig.served import ServedChannel

    path = tmp_path_factory.mktemp("gated-channel")
    build_channel(path, [generic_package(name, "1.0") for name in GATED_PACKAGES])
    channel = ServedChannel(path, gated=GATED_PACKAGES)
    channel.start()
    yield channel
    channel.stop()


@pytest.fixture(scope="package")
def ui_lab(
    tmp_path_factory, artifacts_dir, rig_channel, rig_package_cache, gated_channel
) -> Iterator[UILab]:
    """JupyterLab whose HOME is a conda installation of its own (tests change it).

    Environments: base, work, drifty (python + ipykernel: kernels `conda-env-<name>-py`) and
    tool (no Python). The root holds one notebook per test and environment*.yml files.
    """
    from tests.browser.ui_helpers import write_notebook
    from tests.rig.installation import CondaInstallation

    base = tmp_path_factory.mktemp("ui-lab")
    installation = CondaInstallation.create(base / "conda-home", rig_channel, rig_package_cache)
    for name, (specs, where) in UI_ENVS.items():
        envs_dir = installation.extra_envs_dir if where == "extra" else None
        installation.create_env(name, specs, envs_dir)
    root_dir = base / "root"
    root_dir.mkdir()
    for notebook, env in (
        ("export.ipynb", "work"),
        ("beside/beside.ipynb", "work"),
        ("embed.ipynb", "work"),
        ("drift.ipynb", "drifty"),
        ("strip.ipynb", "work"),
        ("restore.ipynb", "work"),
    ):
        write_notebook(root_dir / notebook, f"conda-env-{env}-py", f"Python [conda env:{env}]")
    log_path = artifacts_dir / "jupyter-lab-ui.log"
    with running_rig_lab(base, root_dir, installation, log_path) as server:
        yield UILab(server, installation, rig_channel.url, gated_channel)
