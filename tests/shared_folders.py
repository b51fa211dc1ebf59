"""Shared (administrator's) environment folders for tests: real system users, read-only
folders, another user's process, and a small tmpfs.

Used by tests/test_shared_envs.py and tests/test_user_limits.py.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.required import unavailable
from tests.rig.installation import CondaInstallation

IS_ROOT = os.geteuid() == 0
ADMIN_USER = "repro-shared-admin"
"""Owns the shared folders when the tests run as root."""
STUDENT_USER = "repro-shared-user"
"""A user of the machine who cannot write the shared folders (root runs only)."""
KERNEL_SPECS = ("python", "ipykernel", "pkgc")


def _ensure_user(name: str) -> tuple[pwd.struct_passwd, bool]:
    """The system user `name`, created if missing (True when this call created it)."""
    try:
        return pwd.getpwnam(name), False
    except KeyError:
        pass
    done = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
    )
    # 9: created meanwhile by a concurrent run; it is that run's to remove.
    if done.returncode not in (0, 9):
        pytest.fail(f"useradd {name} failed: {done.stderr}")
    return pwd.getpwnam(name), done.returncode == 0


@contextmanager
def system_users() -> Iterator[dict[str, pwd.struct_passwd]]:
    """The admin and student users (root only), removed at the end when created here."""
    created: list[str] = []
    users: dict[str, pwd.struct_passwd] = {}
    try:
        for name in (ADMIN_USER, STUDENT_USER):
            users[name], made = _ensure_user(name)
            if made:
                created.append(name)
        yield users
    finally:
        for name in created:
            subprocess.run(["userdel", name], capture_output=True)


def tree_state(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every path below `folder` with its mode, size and mtime: what a write would change."""
    state: dict[str, tuple[int, int, int]] = {}
    for path in [folder, *folder.rglob("*")]:
        st = path.lstat()
        state[str(path.relative_to(folder))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return state


def lock_down(folder: Path, owner: pwd.struct_passwd | None) -> None:
    """Make `folder` an administrator's: owned by `owner` (when root), nobody may write."""
    for path in [folder, *folder.rglob("*")]:
        if owner is not None:
            os.lchown(path, owner.pw_uid, owner.pw_gid)
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def unlock(folder: Path) -> None:
    """Writable again for whoever runs the tests (so tmp folders can be removed)."""
    if not folder.exists():
        return
    uid, gid = os.geteuid(), os.getegid()
    for path in [folder, *folder.rglob("*")]:
        if IS_ROOT:
            os.lchown(path, uid, gid)
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.lstat().st_mode) | stat.S_IWUSR)


def make_shared_envs(
    inst: CondaInstallation,
    folder: Path,
    names: Sequence[str],
    package_cache: Path,
    specs: Sequence[str] = KERNEL_SPECS,
) -> dict[str, Path]:
    """Real environments in `folder`, installed from a private package cache (so locking
    them down never touches files hardlinked into other tests' environments) and not in
    anyone's environments.txt (an administrator made them)."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = inst.package_cache
    inst.package_cache = package_cache
    try:
        return {n: inst.create_prefix_env(folder / n, specs, register=False) for n in names}
    finally:
        inst.package_cache = saved


def run_as(user: pwd.struct_passwd | None, function: Callable[[], Any]) -> Any:
    """`function()` in a process of `user` (a fork that drops root; its result as JSON), or
    in this process when `user` is None. The child runs code this process has imported
    (the interpreter's own files may be out of the user's reach)."""
    if user is None:
        return function()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            try:
                payload = {"result": function()}
            except BaseException:
                payload = {"error": traceback.format_exc()}
            data = json.dumps(payload, default=str).encode()
            with os.fdopen(write_end, "wb") as out:
                out.write(data)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as incoming:
        data = incoming.read()
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0, "the other user's process failed"
    payload = json.loads(data)
    if "error" in payload:
        pytest.fail(f"in {user.pw_name}'s process:\n{payload['error']}")
    return payload["result"]


def world_readable_tmp(prefix: str) -> Path:
    """A folder outside pytest's private tmp (0700) that other users may traverse."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder.resolve()


def remove_tree(folder: Path) -> None:
    unlock(folder)
    shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def small_tmpfs(mountpoint: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `mountpoint` (root only; skips where mounting is not allowed)."""
    if not IS_ROOT or shutil.which("mount") is None:
        unavailable("mounting a tmpfs needs root")
    mountpoint.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)
