"""Two real users restoring through one shared package cache (issue 18), for
tests/test_package_cache.py and benchmarks/hub_cache.py.

- `ServedChannel` (tests/rig/served.py): a channel folder served over HTTP, counting requests
  for every path (how many times each archive was downloaded).
- `system_users`: throwaway system users made with `useradd` (removed afterwards); needs root.
- `UserRuntime`: a folder everybody can read with a Python they can run: a venv made by uv
  from the system's Python (the project venv's interpreter lives under /root, which other
  users cannot read) with the restore's dependencies at the versions this process has, and
  a copy of the `jupyter_repro` package's Python sources. The restore that runs as a user is
  thus this checkout's code (not an installed wheel: building one builds the labextension,
  minutes for nothing this test looks at), with the same rattler.
- `run_as`: a command as a user (`setpriv`), with a clean environment and that user's HOME.

The script the users run (`user_script.py`) restores with `RestoreService` into a given
prefix (`restore`), or tries to change files that are not the user's (`tamper`).
"""

from __future__ import annotations

import contextlib
import grp
import importlib.metadata
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jupyter_repro

SYSTEM_PYTHONS = ("/usr/bin/python3.11", "/usr/bin/python3.12", "/usr/bin/python3")
RESTORE_MODULES = ("jupyter_repro.restore.service", "jupyter_repro.restore.source")
# Imported only when a restore runs (not by importing the modules above).
LAZY_DISTRIBUTIONS = ("py-rattler", "pyyaml", "zstandard")


def missing_requirement() -> str | None:
    """Why two users cannot be simulated here, or None."""
    if os.geteuid() != 0:
        return "creating system users needs root"
    for tool in ("useradd", "userdel", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if system_python() is None:
        return f"no system Python other users can run ({', '.join(SYSTEM_PYTHONS)})"
    if _uv() is None:
        return "uv is not installed"
    return None


def system_python() -> str | None:
    for candidate in SYSTEM_PYTHONS:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _uv() -> str | None:
    here = Path(sys.executable).parent / "uv"
    return str(here) if here.exists() else shutil.which("uv")


# --------------------------------------------------------------------------------------------
# the channel server


# --------------------------------------------------------------------------------------------
# users


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int


def _remove_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        pass
    else:
        subprocess.run(["userdel", name], capture_output=True, check=False)
    with contextlib.suppress(KeyError):
        grp.getgrnam(name)
        subprocess.run(["groupdel", name], capture_output=True, check=False)


@contextlib.contextmanager
def system_users(names: Sequence[str]) -> Iterator[list[User]]:
    """System users `names` (each with a group of its own, no home, no login shell), made
    afresh (leftovers of an interrupted run are removed first) and removed afterwards."""
    made: list[User] = []
    try:
        for name in names:
            _remove_user(name)
            subprocess.run(
                [
                    *("useradd", "--system", "--user-group", "--no-create-home"),
                    *("--shell", "/usr/sbin/nologin", name),
                ],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(name)
            made.append(User(name, entry.pw_uid, entry.pw_gid))
        yield made
    finally:
        for user in made:
            _remove_user(user.name)


def _as_user(
    user: User, argv: Sequence[str], home: Path, extra_env: dict[str, str] | None
) -> list[str]:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **(extra_env or {})}
    return [
        *("setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups"),
        *("env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv),
    ]


def run_as(
    user: User, argv: Sequence[str], home: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`argv` as `user` (real and effective ids, their groups only), HOME=`home`."""
    return subprocess.run(
        _as_user(user, argv, home, extra_env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def start_as(
    user: User, argv: Sequence[str], home: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`run_as`, in the background: stdin, stdout and stderr are pipes."""
    return subprocess.Popen(
        _as_user(user, argv, home, extra_env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# --------------------------------------------------------------------------------------------
# the Python other users run

USER_SCRIPT = r'''
"""Run as a test user: `restore <json>`, `tamper <json>` or `swap <json>`; prints one JSON
line (`swap` prints `ready` first)."""
import asyncio, json, os, sys, time
from pathlib import Path

def restore(args):
    from jupyter_repro.restore.errors import RestoreError
    from jupyter_repro.restore.service import RestoreOptions, RestoreService
    from jupyter_repro.restore.source import load_source

    lines = []

    class Progress:
        def phase(self, name, done, total):
            pass

        def log(self, line):
            lines.append(line)

    service = RestoreService(
        RestoreOptions(cache_dir=Path(args["cache"]), shared_package_cache=True),
        environ=dict(os.environ),
        home=Path(os.environ["HOME"]),
    )
    start = time.perf_counter()
    try:
        asyncio.run(
            service.restore(
                load_source(content=args["spec"]), prefix=args["prefix"], progress=Progress()
            )
        )
    except RestoreError as error:
        return {"ok": False, "error": str(error), "lines": lines}
    return {"ok": True, "seconds": time.perf_counter() - start, "lines": lines}

def tamper(args):
    """Try to change, replace, add to or remove what is under `paths`; list what worked."""
    done = []
    seen = 0
    for top in args["paths"]:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    continue
                seen += 1
                try:
                    with open(path, "r+b"):
                        done.append(f"opened for writing: {path}")
                except OSError:
                    pass
                try:
                    os.rename(path, path + ".moved")
                    done.append(f"renamed: {path}")
                except OSError:
                    pass
                try:
                    os.unlink(path)
                    done.append(f"removed: {path}")
                except OSError:
                    pass
            try:
                planted = os.path.join(dirpath, ".planted")
                fd = os.open(planted, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
                done.append(f"created a file in: {dirpath}")
            except OSError:
                pass
        try:
            os.rename(top, top + ".moved")
            done.append(f"renamed: {top}")
        except OSError:
            pass
    return {"ok": True, "done": done, "files": seen}

def swap(args):
    """Watch `folder` (inotify) and, each time a reader closes the file `name` in it, rename
    the next of `replacements` over it: an owner changing an archive between two reads of
    another user. Stops when stdin is closed; reports the opens and closes it saw."""
    import ctypes, select, struct

    in_close_nowrite, in_open = 0x10, 0x20
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0 or libc.inotify_add_watch(
        fd, args["folder"].encode(), in_open | in_close_nowrite
    ) < 0:
        raise OSError(ctypes.get_errno(), "inotify")
    print("ready", flush=True)
    opens = closes = swapped = 0
    replacements = list(args["replacements"])
    while True:
        ready, _, _ = select.select([fd, sys.stdin], [], [])
        if sys.stdin in ready and not sys.stdin.read(1):
            break
        if fd not in ready:
            continue
        data = os.read(fd, 65536)
        offset = 0
        while offset < len(data):
            _wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
            name = data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode()
            offset += 16 + length
            if name != args["name"]:
                continue
            opens += bool(mask & in_open)
            if mask & in_close_nowrite:
                closes += 1
                if replacements:
                    os.rename(replacements.pop(0), os.path.join(args["folder"], name))
                    swapped += 1
    return {"ok": True, "opens": opens, "closes": closes, "swapped": swapped}

args = json.loads(sys.argv[2])
print(json.dumps({"restore": restore, "tamper": tamper, "swap": swap}[sys.argv[1]](args)))
'''


def runtime_distributions() -> list[str]:
    """`name==version` of every distribution a restore imports (found by importing the
    restore in a fresh interpreter of this venv), at the versions this venv has."""
    code = (
        "import importlib, sys\n"
        f"for m in {RESTORE_MODULES!r}: importlib.import_module(m)\n"
        "print('\\n'.join(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    names = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    by_module = importlib.metadata.packages_distributions()
    wanted = {
        dist
        for name in names
        if name not in sys.stdlib_module_names
        and name != "jupyter_repro"
        and not name.startswith("_")
        for dist in by_module.get(name, ())
    } | set(LAZY_DISTRIBUTIONS)
    return sorted(f"{d}=={importlib.metadata.version(d)}" for d in wanted)


def _copy_sources(dest: Path) -> None:
    package = Path(jupyter_repro.__file__).resolve().parent
    shutil.copytree(
        package,
        dest / "jupyter_repro",
        ignore=shutil.ignore_patterns("__pycache__", "labextension", "*.pyc"),
    )


class UserRuntime:
    """A folder everybody can read: a venv (`python`), the sources (`src`), the script."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.venv = self.root / "venv"
        self.src = self.root / "src"
        self.script = self.root / "user_script.py"

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def build(self) -> None:
        uv, python = _uv(), system_python()
        assert uv is not None
        assert python is not None
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        subprocess.run(
            [uv, "venv", "--quiet", "--python", python, str(self.venv)],
            check=True,
            capture_output=True,
            env=env,
        )
        pins = runtime_distributions()
        # --link-mode=copy: files of their own, not hard links into root's uv cache.
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--link-mode=copy", "--python", self.python, *pins],
            check=True,
            capture_output=True,
            env=env,
        )
        _copy_sources(self.src)
        self.script.write_text(USER_SCRIPT)
        for dirpath, dirnames, filenames in os.walk(self.root):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    os.chmod(path, os.stat(path).st_mode & 0o777 | 0o444)

    def _argv(self, command: str, args: dict[str, Any]) -> list[str]:
        return [self.python, str(self.script), command, json.dumps(args)]

    _ENV = {"PYTHONDONTWRITEBYTECODE": "1"}

    def start(
        self, user: User, home: Path, command: str, args: dict[str, Any]
    ) -> subprocess.Popen[str]:
        """The script as `user`, in the background (`swap`)."""
        return start_as(
            user, self._argv(command, args), home, {"PYTHONPATH": str(self.src), **self._ENV}
        )

    def run(self, user: User, home: Path, command: str, args: dict[str, Any]) -> dict[str, Any]:
        result = run_as(
            user, self._argv(command, args), home, {"PYTHONPATH": str(self.src), **self._ENV}
        )
        if result.returncode != 0 or not result.stdout.strip():
            raise AssertionError(
                f"{command} as {user.name} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return out


@contextlib.contextmanager
def world_readable_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder in /tmp that every user can enter (mode 755), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        os.chmod(path, 0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def user_home(root: Path, user: User) -> Path:
    """`root/home-<name>`, the user's own; mode 755, as many homes are: other users can
    read the environments in it (which is what the tests check they cannot change)."""
    home = root / f"home-{user.name}"
    home.mkdir(exist_ok=True)
    os.chown(home, user.uid, user.gid)
    os.chmod(home, 0o755)
    return home


def environment_yml(channel_url: str, *dependencies: str) -> str:
    return "\n".join(
        ["channels:", f"  - {channel_url}", "dependencies:", *(f"  - {d}" for d in dependencies)]
    )
