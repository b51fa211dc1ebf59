"""A real JupyterHub on loopback: configurable-http-proxy, two system users, their servers.

What runs:

- JupyterHub (from the test venv, as root) with configurable-http-proxy from ``.hub-tools/``
  (``make hub-tools``), both on free loopback ports, its database and secrets in a temporary
  folder; ``SharedPasswordAuthenticator`` (one password for the users, another for the
  admin), JupyterHub 5 sharing enabled for users (``shares!user``), a service whose token
  drives the hub's REST API, an admin and an operator (start/stop servers only) that exist
  in the hub only.
- ``LocalProcessSpawner``: each single-user server runs as its real system user
  (``repro-alice``, ``repro-bob``, created with ``useradd`` and removed afterwards). They
  cannot read the test venv (its interpreter lives under ``/root``, mode 700), so they run
  from a venv of their own, built once per test session with uv over the system Python,
  holding jupyterlab, jupyterhub and this project installed from a wheel of the checkout
  (not editable: the checkout may be unreadable to them too).
- A conda channel of tiny packages served over HTTP by this process, counting every
  download and able to hold one until the test releases it.
- A shared environments folder (``ReproApp.shared_envs_dirs``) with one environment made by
  root, and one package cache for everybody (``ReproApp.package_cache_dir``), a sticky,
  world-writable folder like ``/tmp``.

Nothing here needs the network. Functions that can only work as root say so.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.rig.served import ServedChannel

REPO_ROOT = Path(__file__).resolve().parents[2]
CHP_BIN = REPO_ROOT / ".hub-tools" / "node_modules" / ".bin" / "configurable-http-proxy"
LABEXTENSION_BUILT = REPO_ROOT / "jupyter_repro" / "labextension" / "static" / "style.js"

USER_COMMENT = "jupyter-repro hub test user"
"""The GECOS field of the system users these tests create: a user without it is never
touched."""
ALICE = "repro-alice"
BOB = "repro-bob"
USERS = (ALICE, BOB)
ADMIN = "repro-hubadmin"
"""A hub admin (JupyterHub's ``admin`` role); exists in the hub only, never spawns."""
OPERATOR = "repro-operator"
"""A hub user who may start and stop every server (``admin:servers``) but not use them."""
SERVICE = "repro-tests"
"""The service whose token the tests drive the hub's REST API with."""

SHARED_ENV_NAME = "teaching"
"""The administrator's environment in the shared environments folder."""
SHARED_ENV_SPECS = ("pkga",)
GATED_PACKAGE = "hubgated"
"""A package of the hub channel whose download the test can hold (a restore in progress)."""
CACHE_PACKAGES = ("hubcache-a", "hubcache-b")
"""Packages of the hub channel that only the package-cache test restores."""

API_TIMEOUT = 30
SPAWN_TIMEOUT = 90.0


def readable_by_everyone(path: Path) -> bool:
    """Another user can read (and run) ``path`` and every folder above it, symlinks resolved."""
    try:
        real = path.resolve(strict=True)
    except OSError:
        return False
    mode = real.stat().st_mode
    if not mode & stat.S_IROTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)


def singleuser_python() -> Path | None:
    """A system Python >= 3.10 that the test users can run (the venv's base)."""
    wanted = os.environ.get("REPRO_HUB_PYTHON")
    candidates = (
        [Path(wanted)]
        if wanted
        else [Path(f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}")]
        + [Path(f"/usr/bin/python3.{minor}") for minor in range(14, 9, -1)]
        + [Path("/usr/bin/python3")]
    )
    for candidate in candidates:
        if candidate.is_file() and readable_by_everyone(candidate):
            probe = subprocess.run(
                [str(candidate), "-c", "import sys; print(sys.version_info >= (3, 10))"],
                capture_output=True,
                text=True,
            )
            if probe.stdout.strip() == "True":
                return candidate
    return None


def chp_command() -> Path | None:
    """configurable-http-proxy: ``REPRO_CHP``, else ``.hub-tools/`` (``make hub-tools``)."""
    configured = os.environ.get("REPRO_CHP")
    path = Path(configured) if configured else CHP_BIN
    return path if os.access(path, os.X_OK) else None


def requirement_problem() -> str | None:
    """Why the hub cannot be set up on this machine, or None."""
    if sys.platform != "linux":
        return "the hub rig creates Linux system users"
    if os.geteuid() != 0:
        return (
            "the hub tests create system users and spawn servers as them: run them as root "
            "(as CI does)"
        )
    for tool in ("useradd", "userdel"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (Debian's passwd package)"
    if shutil.which("node") is None:
        return "Node.js is missing (configurable-http-proxy runs on it)"
    if chp_command() is None:
        return (
            "configurable-http-proxy is not installed: `make hub-tools` installs it into "
            ".hub-tools/"
        )
    if singleuser_python() is None:
        return "no system Python >= 3.10 that other users can run (such as /usr/bin/python3)"
    if not LABEXTENSION_BUILT.is_file():
        return "the labextension is not built (`make test` builds it)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# system users
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemUser:
    name: str
    uid: int
    gid: int
    home: Path


def _ours(name: str) -> pwd.struct_passwd | None:
    """The passwd entry of ``name`` when these tests created it; None when there is none;
    an error for a user of the machine's."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    if entry.pw_gecos != USER_COMMENT:
        raise RuntimeError(
            f"the system user {name!r} exists and was not made by these tests; not touching it"
        )
    return entry


def user_pids(uid: int) -> list[int]:
    """Processes whose real user is ``uid`` (on this machine: the rig's servers and kernels)."""
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("Uid:"):
                if int(line.split()[1]) == uid:
                    pids.append(int(status.parent.name))
                break
    return pids


def remove_user(name: str) -> None:
    """Remove a user these tests made, with its home and its leftover processes. Idempotent."""
    entry = _ours(name)
    if entry is None:
        return
    for _ in range(20):
        pids = user_pids(entry.pw_uid)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    subprocess.run(["userdel", "--remove", name], capture_output=True, text=True)
    if _ours(name) is not None:
        raise RuntimeError(f"userdel could not remove {name!r}")
    shutil.rmtree(entry.pw_dir, ignore_errors=True)


def create_user(name: str) -> SystemUser:
    """A fresh system user with a home (a leftover of an interrupted run is removed first)."""
    remove_user(name)
    result = subprocess.run(
        [
            *("useradd", "--create-home", "--user-group", "--shell", "/bin/bash"),
            *("--comment", USER_COMMENT, name),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"useradd {name} failed: {result.stderr.strip()}")
    entry = pwd.getpwnam(name)
    return SystemUser(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def run_as(user: SystemUser, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """Run ``argv`` as ``user`` (uid, gid, no supplementary groups), in their home."""
    env = {"HOME": str(user.home), "USER": user.name, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(
        list(argv),
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        env=env,
        cwd=user.home,
        capture_output=True,
        text=True,
        **kwargs,
    )


# --------------------------------------------------------------------------------------------
# the single-user servers' venv
# --------------------------------------------------------------------------------------------


def _uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def _run(argv: Sequence[str], **kwargs: Any) -> str:
    result = subprocess.run(list(argv), capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{output}")
    return result.stdout


def build_singleuser_venv(base: Path, timings: dict[str, float]) -> Path:
    """A venv everybody can read, over the system Python, with jupyterlab, jupyterhub (the
    hub's version) and this project from a wheel of the checkout. Returns its folder.

    The wheel is built without the frontend build (``SKIP_JUPYTER_BUILDER``): it packs the
    labextension already built in ``jupyter_repro/labextension``, from a copy of what the
    wheel holds (``jupyter labextension develop``, run by ``make``, leaves an ``install.json``
    in the build output that would clash with the wheel's own). uv installs from its cache
    (hard links), so a warm machine builds it in seconds.
    """
    import jupyterhub

    python = singleuser_python()
    assert python is not None
    dist = base / "dist"
    started = time.monotonic()
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "install.json"):
        shutil.copy2(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "jupyter-config", source / "jupyter-config")
    built = REPO_ROOT / "jupyter_repro" / "labextension"
    shutil.copytree(
        REPO_ROOT / "jupyter_repro",
        source / "jupyter_repro",
        ignore=lambda folder, names: (
            {"__pycache__"}
            | ({"install.json", "build_log.json"} if Path(folder) == built else set())
        ),
    )
    _run(
        [
            *(sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation"),
            *("-q", "--disable-pip-version-check", "-w", str(dist)),
        ],
        cwd=source,
        env=dict(
            os.environ,
            SKIP_JUPYTER_BUILDER="1",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        ),
    )
    (wheel,) = dist.glob("jupyter_repro-*.whl")
    timings["wheel_s"] = time.monotonic() - started
    venv = base / "venv"
    started = time.monotonic()
    _run([_uv(), "venv", "-q", "--python", str(python), str(venv)])
    _run(
        [
            # Compiled now: the users cannot write __pycache__ here, and every server start
            # would compile jupyter_server and jupyterlab again (about 1.5 s each).
            *(_uv(), "pip", "install", "-q", "--compile-bytecode"),
            *("--python", str(venv / "bin" / "python"), str(wheel)),
            *("jupyterlab>=4.6,<5", f"jupyterhub=={jupyterhub.__version__}"),
        ]
    )
    timings["venv_s"] = time.monotonic() - started
    for folder in (base, venv):
        folder.chmod(0o755)
    return venv


def configure_singleuser(venv: Path, settings: dict[str, Any]) -> None:
    """Server config every single-user server of this venv reads: its sys-prefix
    ``jupyter_server_config.json`` (``jupyter_server_config.d/*.json`` files only enable
    extensions: the settings in them are not read)."""
    path = venv / "etc" / "jupyter" / "jupyter_server_config.json"
    config: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    for section, values in settings.items():
        config.setdefault(section, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1) + "\n")


# --------------------------------------------------------------------------------------------
# a conda channel over HTTP that counts downloads and can hold one
# --------------------------------------------------------------------------------------------


def build_hub_channel(path: Path) -> Any:
    """The rig's generic packages plus the hub tests' own (``tests.rig.channel``)."""
    from tests.rig.channel import (
        PKGA_DEPENDS,
        PKGA_NAME,
        PKGA_VERSION,
        PKGB_NAME,
        PKGB_VERSIONS,
        PKGC_DEPENDS,
        PKGC_NAME,
        PKGC_VERSION,
        build_channel,
        generic_package,
    )

    # Big enough that a cache copy and a hard link differ, small enough to build instantly.
    def payload(name: str) -> dict[str, str]:
        return {f"share/hubcache/{name}.dat": f"{name} payload\n" * 4096}

    packages = [
        generic_package(PKGA_NAME, PKGA_VERSION, PKGA_DEPENDS),
        *(generic_package(PKGB_NAME, v) for v in PKGB_VERSIONS),
        generic_package(PKGC_NAME, PKGC_VERSION, PKGC_DEPENDS),
        generic_package(GATED_PACKAGE, "1.0"),
        generic_package(CACHE_PACKAGES[0], "1.0", (CACHE_PACKAGES[1],), payload(CACHE_PACKAGES[0])),
        generic_package(CACHE_PACKAGES[1], "1.0", (), payload(CACHE_PACKAGES[1])),
    ]
    return build_channel(path, packages)


def make_environment(channel: Any, prefix: Path, specs: Sequence[str], cache: Path) -> Path:
    """``conda create -p prefix specs`` from ``channel`` (as whoever runs this: root)."""
    from rattler import MatchSpec, install

    from tests.rig._aio import run_sync
    from tests.rig.installation import dist_str, write_history_entry

    records = channel.solve(list(specs))
    run_sync(
        install(
            records,
            target_prefix=str(prefix),
            cache_dir=cache,
            show_progress=False,
            requested_specs=[MatchSpec(s)._match_spec for s in specs],
        )
    )
    (prefix / "CACHEDIR.TAG").unlink(missing_ok=True)
    write_history_entry(
        prefix,
        cmd=f"conda create -p {prefix} {' '.join(specs)}",
        added=[dist_str(r) for r in records],
        update_specs=list(specs),
        when=time.time(),
    )
    return prefix


def environment_yml(channel_url: str, *dependencies: str) -> str:
    lines = ["channels:", f"  - {channel_url}", "dependencies:"]
    lines += [f"  - {d}" for d in dependencies]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# the hub
# --------------------------------------------------------------------------------------------

_HUB_CONFIG = """\
# Written by tests/hub/rig.py.
import json

settings = json.loads({settings!r})
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = settings["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = settings["hub_port"]
c.JupyterHub.db_url = "sqlite:///" + settings["db"]
c.JupyterHub.cookie_secret_file = settings["cookie_secret"]
c.JupyterHub.pid_file = settings["pid_file"]
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.ConfigurableHTTPProxy.command = [settings["chp"]]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % settings["proxy_api_port"]
c.ConfigurableHTTPProxy.pid_file = settings["proxy_pid_file"]

c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = settings["password"]
c.SharedPasswordAuthenticator.admin_password = settings["admin_password"]
c.Authenticator.allowed_users = set(settings["allowed_users"])
c.Authenticator.admin_users = {{settings["admin"]}}

c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [settings["singleuser"]]
c.Spawner.default_url = "/lab"
c.Spawner.environment = settings["spawner_environment"]
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.LocalProcessSpawner.interrupt_timeout = 5
c.LocalProcessSpawner.term_timeout = 5
c.LocalProcessSpawner.kill_timeout = 5

c.JupyterHub.services = [{{"name": settings["service"], "api_token": settings["service_token"]}}]
c.JupyterHub.load_roles = [
    # JupyterHub 5 sharing: users may share their servers, with users they name.
    {{"name": "user", "scopes": ["self", "shares!user", "read:users:name"]}},
    {{
        "name": "repro-tests",
        "description": "the tests' own service: users, servers, tokens",
        "scopes": ["admin:users", "admin:servers", "tokens", "list:users"],
        "services": [settings["service"]],
    }},
    {{
        "name": "operator",
        "description": "starts and stops servers; cannot use them",
        "scopes": ["admin:servers", "admin:users"],
        "users": [settings["operator"]],
    }},
]
"""


@dataclass
class Hub:
    """A running JupyterHub behind its proxy, and what the tests need to drive it."""

    url: str
    """The proxy's public URL, ``http://127.0.0.1:<port>/``."""
    service_token: str
    password: str
    admin_password: str
    users: dict[str, SystemUser]
    venv: Path
    channel: ServedChannel
    shared_envs_dir: Path
    package_cache: Path
    log_path: Path
    timings: dict[str, float] = field(default_factory=dict)

    # -- the hub's REST API --------------------------------------------------------------------

    def api(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """``{url}hub/api/{path}`` with ``token`` (default: the service's, an admin)."""
        headers = {"Authorization": f"token {token or self.service_token}"}
        return requests.request(
            method, f"{self.url}hub/api/{path}", headers=headers, timeout=API_TIMEOUT, **kwargs
        )

    def create_token(
        self, user: str, scopes: Iterable[str] | None = None, note: str = "hub tests"
    ) -> str:
        """A new API token of ``user``; ``scopes`` None gives the hub's default (the owner's
        own permissions)."""
        body: dict[str, Any] = {"note": note, "expires_in": 3600}
        if scopes is not None:
            body["scopes"] = list(scopes)
        response = self.api("POST", f"users/{user}/tokens", json=body)
        assert response.status_code == 201, (response.status_code, response.text)
        return str(response.json()["token"])

    def server(self, user: str) -> dict[str, Any] | None:
        response = self.api("GET", f"users/{user}")
        response.raise_for_status()
        server: dict[str, Any] | None = response.json().get("servers", {}).get("")
        return server

    def start_server(self, user: str, timeout: float = SPAWN_TIMEOUT) -> None:
        """Start ``user``'s default server (if it is not running) and wait until it is ready."""
        started = time.monotonic()
        response = self.api("POST", f"users/{user}/server")
        if response.status_code not in (201, 202, 400):  # 400: it is running already
            raise AssertionError(
                f"starting {user}'s server: {response.status_code} {response.text}"
            )
        spawned = response.status_code != 400
        deadline = started + timeout
        while time.monotonic() < deadline:
            server = self.server(user)
            if server and server.get("ready"):
                if spawned:
                    self.timings.setdefault(f"first_spawn_{user}_s", time.monotonic() - started)
                return
            if server is None and time.monotonic() - started > 2:
                break  # not pending, not running: the spawn failed
            time.sleep(0.1)
        raise AssertionError(
            f"{user}'s server did not start; see {self.log_path}:\n{self.log_tail()}"
        )

    def stop_server(self, user: str, timeout: float = 60) -> float:
        """Stop ``user``'s server (hub API ``DELETE /users/<u>/server``); the seconds it took."""
        started = time.monotonic()
        response = self.api("DELETE", f"users/{user}/server")
        assert response.status_code in (202, 204), (response.status_code, response.text)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.server(user) is None:
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"{user}'s server did not stop within {timeout} s")

    # -- single-user servers through the proxy ---------------------------------------------------

    def user_url(self, user: str, path: str = "") -> str:
        return f"{self.url}user/{user}/{path}"

    def get(self, user: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        """GET ``/user/<user>/<path>`` through the proxy with a hub API token."""
        return requests.get(
            self.user_url(user, path),
            headers={"Authorization": f"token {token}"},
            timeout=API_TIMEOUT,
            allow_redirects=False,
            **kwargs,
        )

    def post(self, user: str, path: str, token: str, body: Any, **kwargs: Any) -> requests.Response:
        return requests.post(
            self.user_url(user, path),
            headers={"Authorization": f"token {token}"},
            json=body,
            timeout=API_TIMEOUT,
            allow_redirects=False,
            **kwargs,
        )

    def login(self, user: str, password: str | None = None) -> requests.Session:
        """A browser-like session logged in through the hub's login form."""
        session = requests.Session()
        page = session.get(f"{self.url}hub/login", timeout=API_TIMEOUT)
        page.raise_for_status()
        xsrf = session.cookies.get("_xsrf", path="/hub/")
        response = session.post(
            f"{self.url}hub/login",
            data={"username": user, "password": password or self.password, "_xsrf": xsrf},
            timeout=API_TIMEOUT,
            allow_redirects=False,
        )
        assert response.status_code == 302, (response.status_code, response.text[:500])
        return session

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def _wait_for_hub(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"jupyterhub exited with {process.returncode}:\n"
                + log_path.read_text(errors="replace")[-4000:]
            )
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}hub/api/", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"jupyterhub did not answer within {timeout} s; see {log_path}")


def _stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stop_pid_file(pid_file: Path) -> None:
    """Kill the process a pid file names (the proxy the hub started), if it is still there."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text().strip())
        if "configurable-http-proxy" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running_hub(artifacts_dir: Path) -> Iterator[Hub]:
    """Everything of the module's doc, torn down (users removed, folders deleted) on exit."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="repro-hub-"))
    base.chmod(0o755)
    users: dict[str, SystemUser] = {}
    channel_server: ServedChannel | None = None
    process: subprocess.Popen[bytes] | None = None
    hub_dir = base / "hub"
    try:
        for name in USERS:
            users[name] = create_user(name)
        timings["users_s"] = time.monotonic() - started

        venv = build_singleuser_venv(base, timings)

        mark = time.monotonic()
        channel = build_hub_channel(base / "channel")
        channel_server = ServedChannel(channel.path)
        channel_server.start()
        shared_envs = base / "shared-envs"
        shared_envs.mkdir(mode=0o755)
        make_environment(
            channel, shared_envs / SHARED_ENV_NAME, SHARED_ENV_SPECS, base / "root-pkgs"
        )
        # One package cache for everybody: like /tmp, anyone may add an entry, nobody may
        # remove or replace another user's (the sticky bit).
        package_cache = base / "package-cache"
        package_cache.mkdir()
        package_cache.chmod(0o1777)
        timings["channel_and_shared_env_s"] = time.monotonic() - mark
        configure_singleuser(
            venv,
            {
                "ReproApp": {
                    "shared_envs_dirs": [str(shared_envs)],
                    "package_cache_dir": str(package_cache),
                },
                # No "Jupyter news" requests (this network refuses them) nor their toast.
                "LabApp": {"news_url": None},
            },
        )

        mark = time.monotonic()
        hub_dir.mkdir(mode=0o700)
        port = free_port()
        settings: dict[str, Any] = {
            "port": port,
            "hub_port": free_port(),
            "proxy_api_port": free_port(),
            "db": str(hub_dir / "jupyterhub.sqlite"),
            "cookie_secret": str(hub_dir / "cookie_secret"),
            "pid_file": str(hub_dir / "jupyterhub.pid"),
            "proxy_pid_file": str(hub_dir / "proxy.pid"),
            "chp": str(chp_command()),
            "password": secrets.token_urlsafe(12),
            "admin_password": secrets.token_urlsafe(32),
            "allowed_users": [*USERS, OPERATOR],
            "admin": ADMIN,
            "operator": OPERATOR,
            "service": SERVICE,
            "service_token": secrets.token_hex(32),
            "singleuser": str(venv / "bin" / "jupyterhub-singleuser"),
            "spawner_environment": {
                # Not the hub's PATH: its venv's python lives under /root.
                "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                "LANG": "C.UTF-8",
            },
        }
        config = hub_dir / "jupyterhub_config.py"
        config.write_text(_HUB_CONFIG.format(settings=json.dumps(settings)))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(hub_dir),
            "LANG": "C.UTF-8",
            "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32),
        }
        log_path = artifacts_dir / "jupyterhub.log"
        url = f"http://127.0.0.1:{port}/"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=hub_dir,
            )
        _wait_for_hub(url, process, log_path, timeout=60)
        timings["hub_start_s"] = time.monotonic() - mark
        timings["rig_setup_s"] = time.monotonic() - started
        hub = Hub(
            url=url,
            service_token=settings["service_token"],
            password=settings["password"],
            admin_password=settings["admin_password"],
            users=users,
            venv=venv,
            channel=channel_server,
            shared_envs_dir=shared_envs,
            package_cache=package_cache,
            log_path=log_path,
            timings=timings,
        )
        yield hub
    finally:
        mark = time.monotonic()
        if process is not None:
            _stop_process(process, timeout=45)
        _stop_pid_file(hub_dir / "proxy.pid")
        if channel_server is not None:
            channel_server.stop()
        for name in USERS:
            remove_user(name)
        shutil.rmtree(base, ignore_errors=True)
        timings["teardown_s"] = time.monotonic() - mark
        with contextlib.suppress(OSError):
            (artifacts_dir / "hub-rig-timings.json").write_text(
                json.dumps({k: round(v, 2) for k, v in timings.items()}, indent=1) + "\n"
            )
