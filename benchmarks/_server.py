"""A `jupyter server` subprocess for benchmarks: isolated dirs, token, audit log of spawns."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

# Started as `python -c BOOTSTRAP ...`: counts every process the server spawns (the audit
# events of subprocess, os.posix_spawn, os.fork and os.exec*), one line each, in a file.
BOOTSTRAP = """
import os, sys
_log = os.environ["REPRO_BENCH_SPAWN_LOG"]
_events = {"subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty", "os.exec", "os.system"}

def _hook(event, args):
    if event in _events:
        import traceback
        where = " <- ".join(
            f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in traceback.extract_stack()[-8:-1]
        )
        line = f"{event} {args[0] if args else ''} at {where}".replace("\\n", " ")
        with open(_log, "a") as stream:
            stream.write(line + "\\n")
sys.addaudithook(_hook)
from jupyter_server.serverapp import main
sys.argv = ["jupyter-server", *sys.argv[1:]]
sys.exit(main())
"""


def _extensions(ours: bool) -> dict[str, bool]:
    """The server extensions of a benchmark server: ours on or off, jupytext off.

    The venv's main jupyter_server_config.json disables jupytext (a test dependency); this
    file replaces that whole dict, so it says both.
    """
    return {"jupyter_repro": ours, "jupyterlab_jupytext": False}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BenchServer:
    """`with BenchServer(base, home, extension=True) as server: server.get_json(path)`."""

    def __init__(
        self,
        base: Path,
        home: Path,
        *,
        extension: bool,
        extra_env: dict[str, str] | None = None,
        config: dict[str, dict[str, object]] | None = None,
    ) -> None:
        self.base = base
        self.port = free_port()
        self.token = secrets.token_hex(8)
        self.spawn_log = base / "spawns.log"
        config_dir = base / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        settings: dict[str, dict[str, object]] = {
            "ServerApp": {"jpserver_extensions": _extensions(extension)}
        }
        settings.update(config or {})
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(settings))
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "CONDA", "MAMBA"))
        }
        env.update(
            HOME=str(home),
            JUPYTER_CONFIG_DIR=str(config_dir),
            JUPYTER_DATA_DIR=str(base / "data"),
            JUPYTER_RUNTIME_DIR=str(base / "runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            # Without this a venv the user owns outranks JUPYTER_CONFIG_DIR.
            JUPYTER_PREFER_ENV_PATH="0",
            REPRO_BENCH_SPAWN_LOG=str(self.spawn_log),
            **(extra_env or {}),
        )
        self.env = env
        self.command = [
            sys.executable, "-c", BOOTSTRAP, "--no-browser", "--ip=127.0.0.1",
            f"--port={self.port}", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={base}",
        ]  # fmt: skip
        if os.geteuid() == 0:
            self.command.append("--allow-root")
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BenchServer:
        log = (self.base / "server.log").open("ab")
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited; see {self.base / 'server.log'}")
            try:
                self.get_json("api/status")
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise RuntimeError("server did not start within 60 s")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def get_json(self, path: str) -> dict:
        url = f"http://127.0.0.1:{self.port}/{path}"
        request = urllib.request.Request(url, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def settle(self, quiet_seconds: float = 1.5, timeout: float = 30) -> None:
        """Wait until start-up's own spawns (JupyterLab runs node, npm, git, uname) are over."""
        deadline = time.monotonic() + timeout
        last, last_change = self.spawns(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.spawns()
            if now != last:
                last, last_change = now, time.monotonic()
            elif time.monotonic() - last_change >= quiet_seconds:
                return

    def spawn_lines(self) -> list[str]:
        try:
            return self.spawn_log.read_text().splitlines()
        except FileNotFoundError:
            return []

    def spawns(self) -> int:
        try:
            return len(self.spawn_log.read_text().splitlines())
        except FileNotFoundError:
            return 0

    def rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")
