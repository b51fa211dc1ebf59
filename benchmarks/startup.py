"""Server start-up time with jupyter-repro enabled against the same server without it.

Each round starts `jupyter server` in a clean Jupyter home and times until `/api/status`
answers 200 (extensions are loaded before the server listens). Rounds alternate between the
two configurations so that machine noise hits both alike; medians are compared.

The extension's modules are byte-compiled first, as pip compiles a wheel it installs (the
server's own modules were, when pip installed them): in a development checkout, with
PYTHONDONTWRITEBYTECODE set (as on these machines and in CI), every start would otherwise
compile the extension's sources again, about 90 ms that no installed copy pays.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ._server import _extensions
from ._table import Result

ROUNDS = int(os.environ.get("REPRO_BENCH_STARTUP_ROUNDS", "9"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(base: Path, extension_enabled: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "CONDA", "MAMBA"))}
    config = base / ("config-on" if extension_enabled else "config-off")
    config.mkdir(parents=True, exist_ok=True)
    (base / "home").mkdir(exist_ok=True)
    # The user config dir outranks the venv's etc/jupyter, where the extension is enabled.
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": _extensions(extension_enabled)}})
    )
    env.update(
        HOME=str(base / "home"),
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        # Without this a venv the user owns outranks JUPYTER_CONFIG_DIR.
        JUPYTER_PREFER_ENV_PATH="0",
    )
    return env


def time_one_start(base: Path, extension_enabled: bool) -> float:
    """Seconds from spawning `jupyter server` to its first 200 on /api/status."""
    port, token = _free_port(), secrets.token_hex(8)
    command = [
        sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1",
        f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={base}",
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI and these machines run as root
        command.append("--allow-root")
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    log = (base / "server.log").open("ab")
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=_environment(base, extension_enabled)
    )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter server exited early; see {base / 'server.log'}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.01)
            if time.perf_counter() - started > 60:
                raise RuntimeError("jupyter server did not start within 60 s")
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _extension_loaded(base: Path) -> bool:
    return "jupyter_repro | extension was successfully loaded" in (base / "server.log").read_text(
        errors="replace"
    )


def run() -> list[Result]:
    import compileall

    import jupyter_repro

    compileall.compile_dir(Path(jupyter_repro.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="repro-bench-startup-") as tmp:
        base = Path(tmp)
        # Warm the OS file cache for both, and check each configuration is what it claims.
        time_one_start(base, True)
        if not _extension_loaded(base):
            raise RuntimeError("the extension did not load in the 'enabled' configuration")
        (base / "server.log").unlink()
        time_one_start(base, False)
        if _extension_loaded(base):
            raise RuntimeError("the extension loaded in the 'disabled' configuration")
        with_ext: list[float] = []
        without_ext: list[float] = []
        for _ in range(ROUNDS):
            with_ext.append(time_one_start(base, True))
            without_ext.append(time_one_start(base, False))
    return [
        Result(
            benchmark=f"server start-up (median of {ROUNDS})",
            ours=statistics.median(with_ext),
            peer=statistics.median(without_ext),
            peer_name="same server without jupyter-repro",
            unit="s",
            limit=1.10,
        )
    ]
