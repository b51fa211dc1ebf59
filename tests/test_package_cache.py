"""One package cache for every user of a machine (issue 18, `ReproApp.package_cache_dir`).

Two real system users (made with `useradd` when the tests run as root; skipped otherwise,
except under CI=true where that is a failure) restore the same environment.yml from a rig
channel served over HTTP by a server that counts the requests for every archive; each
restore runs as its user, in a process of its own (see tests/cache_rig.py). The rest runs
in this process as whoever runs the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from jupyter_repro.environments.prefix import RESTORE_MARKER
from jupyter_repro.restore import shared_cache as shared_cache_module
from jupyter_repro.restore.cache import package_cache_dir
from jupyter_repro.restore.errors import RestoreError
from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.shared_cache import (
    PackageCacheRefused,
    SharedCache,
    cache_user_name,
    fill_shared_cache,
    keep_archive,
    prepare_package_cache,
    prepare_shared_cache,
    rattler_cache_dir,
)
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.lock import render_conda_lock
from jupyter_repro.specs.locking import LockOptions, lock_environment
from tests.cache_rig import (
    User,
    UserRuntime,
    environment_yml,
    missing_requirement,
    system_users,
    user_home,
    world_readable_dir,
)
from tests.required import unavailable
from tests.rig import RigChannel
from tests.rig.channel import (
    ACTIVATE_SCRIPT,
    ENVVARS_FILE,
    SHARED_FILE_TEMPLATE,
    build_channel,
    generic_package,
)
from tests.rig.installation import isolated_environ
from tests.rig.served import ServedChannel

USER_NAMES = ("repro-cache-a", "repro-cache-b")
SPEC = ("pkgc", "rig-activate", "rig-envvars")
EXPECTED = {  # what SPEC installs: pkgc -> pkga -> pkgb >=1 (the latest, 2.0)
    "pkgc": "1.0",
    "pkga": "1.0",
    "pkgb": "2.0",
    "rig-activate": "1.0",
    "rig-envvars": "1.0",
}
OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def _need_users() -> None:
    problem = missing_requirement()
    if problem is None:
        return
    unavailable(f"two system users cannot be made here: {problem}")


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def phase(self, name: str, done: int, total: int) -> None:
        pass

    def log(self, line: str) -> None:
        self.lines.append(line)


def _restore_here(
    cache: Path, spec: str, target: Path, home: Path, *, shared: bool = True
) -> list[str]:
    """A restore in this process (as whoever runs the tests); returns its log."""
    service = RestoreService(
        RestoreOptions(cache_dir=cache, shared_package_cache=shared),
        environ=isolated_environ(home),
        home=home,
    )
    progress = _Lines()
    asyncio.run(service.restore(load_source(content=spec), prefix=target, progress=progress))
    return progress.lines


def _admin_cache(path: Path) -> Path:
    """A shared cache folder as an administrator makes it (root's, mode 1777)."""
    path.mkdir(parents=True)
    os.chmod(path, 0o1777)
    return path


def _summary(lines: list[str]) -> str:
    found = [line for line in lines if line.startswith("shared package cache:")]
    assert len(found) == 1, lines
    return found[0]


# --------------------------------------------------------------------------------------------
# two users, one cache


@dataclass
class Hub:
    root: Path
    cache: Path
    channel: ServedChannel
    runtime: UserRuntime
    a: User
    b: User
    homes: dict[str, Path]
    runs: dict[str, dict[str, Any]]
    downloads_after: dict[str, dict[str, int]]

    def env(self, user: User, name: str = "one") -> Path:
        return self.homes[user.name] / "envs" / name

    def restore(self, user: User, name: str, cache: Path | None = None) -> dict[str, Any]:
        return self.runtime.run(
            user,
            self.homes[user.name],
            "restore",
            {
                "cache": str(cache or self.cache),
                "spec": environment_yml(self.channel.url, *SPEC),
                "prefix": str(self.env(user, name)),
            },
        )


@pytest.fixture(scope="module")
def hub(rig_channel: RigChannel) -> Iterator[Hub]:
    """User A restores SPEC, then user B, then A again into a second environment; all
    through one cache made by the administrator (root, mode 1777)."""
    _need_users()
    with (
        world_readable_dir("repro-cache-test-") as root,
        ServedChannel(rig_channel.path) as channel,
        system_users(USER_NAMES) as (a, b),
    ):
        runtime = UserRuntime(root / "runtime")
        runtime.build()
        cache = root / "srv" / "pkgs"
        cache.mkdir(parents=True)
        os.chmod(cache, 0o1777)
        homes = {u.name: user_home(root, u) for u in (a, b)}
        hub = Hub(root, cache, channel, runtime, a, b, homes, {}, {})
        for key, user, name in (("a", a, "one"), ("b", b, "one"), ("a-again", a, "two")):
            hub.runs[key] = hub.restore(user, name)
            hub.downloads_after[key] = channel.archive_downloads()
        yield hub


def _archives(downloads: dict[str, int]) -> dict[str, int]:
    return {path.rsplit("/", 1)[-1]: n for path, n in downloads.items()}


def test_two_users_download_each_archive_once(hub: Hub) -> None:
    for run in hub.runs.values():
        assert run["ok"], run
    expected = {f"{name}-{version}-0.conda" for name, version in EXPECTED.items()}
    after_a = _archives(hub.downloads_after["a"])
    assert set(after_a) == expected
    assert set(after_a.values()) == {1}
    # B (and A's second environment) downloaded nothing: every archive once in all.
    assert _archives(hub.downloads_after["b"]) == after_a
    assert _archives(hub.downloads_after["a-again"]) == after_a
    assert _summary(hub.runs["a"]["lines"]).endswith(
        "0 from other users' downloads, 0 from your earlier downloads, 5 downloaded"
    )
    assert "5 from other users' downloads" in _summary(hub.runs["b"]["lines"])
    assert _summary(hub.runs["b"]["lines"]).endswith("0 downloaded")
    assert _summary(hub.runs["a-again"]["lines"]).startswith("shared package cache: 5 cached")


def test_both_users_environments_are_complete(hub: Hub) -> None:
    for user, name in ((hub.a, "one"), (hub.b, "one"), (hub.a, "two")):
        env = hub.env(user, name)
        assert not os.path.lexists(env / RESTORE_MARKER)
        assert env.stat().st_uid == user.uid
        records = {}
        for path in (env / "conda-meta").glob("*.json"):
            data = json.loads(path.read_text())
            records[data["name"]] = data
        assert {n: r["version"] for n, r in records.items()} == EXPECTED
        for pkg, version in EXPECTED.items():
            # Installed from the channel's own URL (nothing in the records points at the cache
            # layout or at another user).
            assert records[pkg]["url"] == f"{hub.channel.url}/noarch/{pkg}-{version}-0.conda"
            shipped = env / SHARED_FILE_TEMPLATE.format(name=pkg)
            assert shipped.read_text() == f"{pkg} {version}\n"
        assert (env / ACTIVATE_SCRIPT).read_text().startswith("export ")
        assert json.loads((env / ENVVARS_FILE).read_text())


def test_files_are_hard_linked_within_a_user_and_never_across(hub: Hub) -> None:
    rel = SHARED_FILE_TEMPLATE.format(name="pkga")
    inodes = {}
    for user in (hub.a, hub.b):
        entry = hub.cache / user.name / "pkgs" / "pkga-1.0-0" / rel
        linked = [hub.env(user, "one") / rel]
        if user is hub.a:
            linked.append(hub.env(user, "two") / rel)
        for path in linked:
            assert path.stat().st_ino == entry.stat().st_ino, path
        assert entry.stat().st_uid == user.uid
        assert entry.stat().st_nlink == 1 + len(linked)
        inodes[user.name] = entry.stat().st_ino
    assert inodes[hub.a.name] != inodes[hub.b.name]


def _owner_of(hub: Hub, path: Path) -> int | None:
    """The uid that should own `path`: the user whose cache folder or home it is in."""
    for user in (hub.a, hub.b):
        for top in (hub.cache / user.name, hub.homes[user.name]):
            if path == top or top in path.parents:
                return user.uid
    return None


def test_no_file_is_writable_by_another_user(hub: Hub) -> None:
    checked = 0
    for top in (hub.cache, *hub.homes.values()):
        for dirpath, dirnames, filenames in os.walk(top):
            for name in (*dirnames, *filenames):
                path = Path(dirpath) / name
                st = path.lstat()
                if stat.S_ISLNK(st.st_mode):
                    continue
                owner = _owner_of(hub, path)
                assert owner is not None, f"{path} is in nobody's folder"
                assert st.st_uid == owner, path
                assert not st.st_mode & OTHERS_WRITE, f"{path}: {oct(st.st_mode)}"
                checked += 1
    assert checked > 50
    # The cache folder itself: everyone may add a folder, nobody remove another's.
    assert stat.S_IMODE(hub.cache.stat().st_mode) == 0o1777
    # Each user's extracted packages: closed to everyone else (rattler extracts an archive's
    # file modes as they are, so a 0666 file would be open for writing until restricted).
    for user in (hub.a, hub.b):
        assert stat.S_IMODE((hub.cache / user.name / "pkgs").stat().st_mode) == 0o700


def test_a_user_cannot_replace_or_change_another_users_entries(hub: Hub) -> None:
    for me, other in ((hub.b, hub.a), (hub.a, hub.b)):
        result = hub.runtime.run(
            me,
            hub.homes[me.name],
            "tamper",
            {"paths": [str(hub.cache / other.name), str(hub.env(other, "one"))]},
        )
        # Read access: the walk saw the other user's archives and environment (not their
        # extracted packages: `pkgs` is theirs alone).
        assert result["files"] > 10
        assert result["done"] == []
    # Nothing was changed: the other users' restores still find their entries.
    assert _archives(hub.channel.archive_downloads()) == _archives(hub.downloads_after["a"])


def test_a_cache_others_cannot_read_is_refused_clearly(hub: Hub) -> None:
    closed = hub.root / "closed"
    closed.mkdir()
    os.chmod(closed, 0o1733)  # anyone may write (sticky), nobody but root may list
    run = hub.restore(hub.b, "closed", cache=closed)
    assert not run["ok"]
    assert "is not readable for repro-cache-b" in run["error"]
    assert "chmod a+rx" in run["error"]
    assert not hub.env(hub.b, "closed").exists()


def test_another_users_archives_are_used_only_when_their_bytes_are_the_package(
    hub: Hub, tmp_path: Path
) -> None:
    """What another user puts in the cache is checked against the restoring user's own
    sha256: a wrong archive under the right name is never extracted, a FIFO never read."""
    cache = hub.root / "poisoned"
    cache.mkdir()
    os.chmod(cache, 0o1777)
    records = {}
    for sub in ("noarch",):
        data = json.loads((Path(hub.channel.path) / sub / "repodata.json").read_text())
        records.update(data.get("packages.conda", {}))
    pkga, pkgb, pkgc = (records[f"{n}-{EXPECTED[n]}-0.conda"] for n in ("pkga", "pkgb", "pkgc"))
    planted = cache / hub.a.name / "archives"
    planted.mkdir(parents=True)
    # Right size, wrong bytes; a real archive of another package; a FIFO.
    (planted / f"{pkga['sha256']}.conda").write_bytes(os.urandom(pkga["size"]))
    (planted / f"{pkgb['sha256']}.conda").write_bytes(
        (Path(hub.channel.path) / "noarch" / "pkgc-1.0-0.conda").read_bytes()
    )
    os.mkfifo(planted / f"{pkgc['sha256']}.conda")
    for path in (planted.parent, planted, *planted.iterdir()):
        os.chown(path, hub.a.uid, hub.a.gid, follow_symlinks=False)
    before = _archives(hub.channel.archive_downloads())
    home = tmp_path / "home"
    home.mkdir()
    lines = _restore_here(cache, environment_yml(hub.channel.url, *SPEC), home / "env", home)
    after = _archives(hub.channel.archive_downloads())
    assert _summary(lines).endswith(
        "0 from other users' downloads, 0 from your earlier downloads, 5 downloaded"
    )
    assert {k: after[k] - before.get(k, 0) for k in after} == dict.fromkeys(after, 1)
    for pkg, version in EXPECTED.items():
        shipped = home / "env" / SHARED_FILE_TEMPLATE.format(name=pkg)
        assert shipped.read_text() == f"{pkg} {version}\n"


def test_a_folder_of_another_user_in_place_of_yours_falls_back_to_your_own_cache(
    hub: Hub,
) -> None:
    """Anyone may create `<cache>/<victim>` first: the victim's restores then use their own
    private cache (with a warning), instead of being refused for good or using the
    squatter's folder."""
    cache = _admin_cache(hub.root / "squatted")
    squatted = cache / hub.b.name
    squatted.mkdir()
    os.chown(squatted, hub.a.uid, hub.a.gid)
    (hub.root / "squatted-homes").mkdir()
    home = user_home(hub.root / "squatted-homes", hub.b)
    env = home / "envs" / "one"
    run = hub.runtime.run(
        hub.b,
        home,
        "restore",
        {
            "cache": str(cache),
            "spec": environment_yml(hub.channel.url, *SPEC),
            "prefix": str(env),
        },
    )
    assert run["ok"], run
    private = home / ".cache" / "rattler" / "cache" / "pkgs"
    warnings = [line for line in run["lines"] if "belongs to repro-cache-a" in line]
    assert len(warnings) == 1, run["lines"]
    assert warnings[0].startswith("warning: ")
    assert f"Using your own package cache {private} instead" in warnings[0]
    assert any(private.glob("pkgc-1.0-0/info/index.json"))
    for pkg, version in EXPECTED.items():
        shipped = env / SHARED_FILE_TEMPLATE.format(name=pkg)
        assert shipped.read_text() == f"{pkg} {version}\n"
    # Nothing was written into the squatter's folder.
    assert os.listdir(squatted) == []


def test_a_lock_restore_of_a_user_whose_folder_is_taken_uses_their_own_cache(
    hub: Hub, rig_channel: RigChannel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same fallback for a restore from a lock (in this process, as root, whose folder
    another user made), and what the cache holds is read from the private cache too."""
    home = tmp_path / "home"
    home.mkdir()
    environ = isolated_environ(home)
    for key, value in environ.items():  # the default of the fallback: this process's
        monkeypatch.setenv(key, value)
    cache = _admin_cache(hub.root / "squatted-lock")
    mine = cache / cache_user_name()
    mine.mkdir()
    _give(hub.a, mine)
    assert prepare_shared_cache(cache) is None
    private = package_cache_dir(None, environ, home)
    assert rattler_cache_dir(cache, True, environ=environ, home=home) == private
    with ServedChannel(rig_channel.path) as channel:
        lock_file = tmp_path / "conda-lock.yml"
        lock_file.write_text(_lock_of_spec(tmp_path, channel.url, home))
        service = RestoreService(
            RestoreOptions(cache_dir=cache, shared_package_cache=True),
            environ=environ,
            home=home,
        )
        progress = _Lines()
        asyncio.run(
            service.restore(load_source(file=lock_file), prefix=tmp_path / "env", progress=progress)
        )
    warnings = [line for line in progress.lines if "belongs to repro-cache-a" in line]
    assert len(warnings) == 1, progress.lines
    assert f"Using your own package cache {private} instead" in warnings[0]
    assert any(private.glob("pkgc-1.0-0/info/index.json"))
    assert os.listdir(mine) == []


# --------------------------------------------------------------------------------------------
# the cache folder itself (any user)


@pytest.mark.parametrize(
    ("mode", "who"), [(0o2775, "the group"), (0o777, "everyone"), (0o775, "the group")]
)
def test_a_cache_writable_by_others_without_the_sticky_bit_is_refused(
    tmp_path: Path, rig_channel: RigChannel, mode: int, who: str
) -> None:
    cache = tmp_path / "pkgs"
    cache.mkdir()
    os.chmod(cache, mode)
    home = tmp_path / "home"
    home.mkdir()
    target = tmp_path / "env"
    with pytest.raises(PackageCacheRefused) as refused:
        _restore_here(cache, environment_yml(rig_channel.url, "pkga"), target, home)
    message = str(refused.value)
    assert f"the shared package cache {cache} (mode {mode:04o}) is writable by {who}" in message
    assert "without the sticky bit" in message
    assert f"makes it sticky (chmod 1777 {cache}) or writable by its owner only" in message
    assert not target.exists()
    assert os.listdir(cache) == []


def test_a_folder_above_the_cache_writable_by_others_is_refused(tmp_path: Path) -> None:
    open_parent = tmp_path / "open"
    open_parent.mkdir()
    os.chmod(open_parent, 0o777)
    cache = open_parent / "pkgs"
    cache.mkdir()
    os.chmod(cache, 0o1777)
    with pytest.raises(PackageCacheRefused) as refused:
        prepare_shared_cache(cache)
    message = str(refused.value)
    assert message.startswith(
        f"the folder above the shared package cache {cache}, {open_parent} (mode 0777) is "
        "writable by everyone without the sticky bit"
    )
    assert message.endswith(f"makes it writable by its owner only (chmod go-w {open_parent})")


def test_a_new_cache_folder_is_made_sticky_whatever_the_umask(tmp_path: Path) -> None:
    cache = tmp_path / "srv" / "pkgs"
    old = os.umask(0o077)
    try:
        shared = prepare_shared_cache(cache)
    finally:
        os.umask(old)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o1777
    assert shared == SharedCache(cache, cache_user_name())
    # Others read the archives; the extracted packages (rattler keeps an archive's file modes
    # as they are: 0666 files) are nobody's business but the user's.
    for folder, mode in (
        (shared.user_dir, 0o755),
        (shared.packages, 0o700),
        (shared.archives, 0o755),
    ):
        assert stat.S_IMODE(folder.stat().st_mode) == mode
    # Again: nothing changes, nothing fails.
    assert prepare_shared_cache(cache) == shared


def test_an_existing_package_folder_others_can_enter_is_closed(tmp_path: Path) -> None:
    shared = SharedCache(_admin_cache(tmp_path / "pkgs"), cache_user_name())
    shared.packages.mkdir(parents=True)
    os.chmod(shared.packages, 0o755)
    assert prepare_shared_cache(shared.root) == shared
    assert stat.S_IMODE(shared.packages.stat().st_mode) == 0o700


def test_a_cache_of_ones_own_is_left_to_rattler(tmp_path: Path) -> None:
    cache = tmp_path / "pkgs"
    cache.mkdir()
    folder, shared = asyncio.run(prepare_package_cache(cache, [], shared=False))
    assert (folder, shared) == (cache, None)
    assert os.listdir(cache) == []
    assert rattler_cache_dir(cache, shared=False) == cache
    assert rattler_cache_dir(cache, shared=True) == cache / cache_user_name() / "pkgs"
    os.chmod(cache, 0o1777)  # sticky: shared, whatever the option says
    assert rattler_cache_dir(cache, shared=False) == cache / cache_user_name() / "pkgs"


# --------------------------------------------------------------------------------------------
# write bits in packages


def _package_with_open_modes(channel_dir: Path) -> str:
    """A `.tar.bz2` whose files are mode 666 and 777, as some archives in the wild are."""
    (channel_dir / "noarch").mkdir(parents=True, exist_ok=True)
    (channel_dir / "linux-64").mkdir(exist_ok=True)
    files = {
        "info/index.json": (
            json.dumps(
                {
                    "name": "wideopen",
                    "version": "1.0",
                    "build": "0",
                    "build_number": 0,
                    "depends": [],
                    "noarch": "generic",
                    "subdir": "noarch",
                }
            ).encode(),
            0o644,
        ),
        "info/paths.json": (
            json.dumps(
                {
                    "paths": [
                        {"_path": "share/open.txt", "path_type": "hardlink", "size_in_bytes": 5},
                        {"_path": "bin/open-tool", "path_type": "hardlink", "size_in_bytes": 10},
                    ],
                    "paths_version": 1,
                }
            ).encode(),
            0o644,
        ),
        "share/open.txt": (b"open\n", 0o666),
        "bin/open-tool": (b"#!/bin/sh\n", 0o777),
    }
    archive = channel_dir / "noarch" / "wideopen-1.0-0.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    from rattler.index import index_fs

    asyncio.run(index_fs(channel_dir, write_zst=False, write_shards=False, force=True))
    return "wideopen"


def test_write_bits_of_group_and_others_never_reach_the_cache_or_the_environment(
    tmp_path: Path,
) -> None:
    channel_dir = tmp_path / "channel"
    name = _package_with_open_modes(channel_dir)
    home = tmp_path / "home"
    home.mkdir()
    with ServedChannel(channel_dir) as channel:
        spec = environment_yml(channel.url, name)
        # rattler alone keeps the archive's modes (the reason for the shared cache's pass).
        plain = tmp_path / "plain-pkgs"
        _restore_here(plain, spec, tmp_path / "plain-env", home, shared=False)
        assert stat.S_IMODE((tmp_path / "plain-env/share/open.txt").stat().st_mode) == 0o666
        cache = tmp_path / "shared-pkgs"
        _restore_here(cache, spec, tmp_path / "env", home)
    entry = cache / cache_user_name() / "pkgs" / "wideopen-1.0-0"
    for path in (entry / "share/open.txt", tmp_path / "env/share/open.txt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    for path in (entry / "bin/open-tool", tmp_path / "env/bin/open-tool"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
    for top in (cache / cache_user_name(), tmp_path / "env"):
        for dirpath, dirnames, filenames in os.walk(top):
            for item in (*dirnames, *filenames):
                st = os.lstat(os.path.join(dirpath, item))
                assert stat.S_ISLNK(st.st_mode) or not st.st_mode & OTHERS_WRITE


def test_a_download_that_is_not_the_package_fails_the_restore(tmp_path: Path) -> None:
    channel_dir = tmp_path / "channel"
    build_channel(channel_dir, [generic_package("solo", "1.0")])
    archive = channel_dir / "noarch" / "solo-1.0-0.conda"
    home = tmp_path / "home"
    home.mkdir()
    with ServedChannel(channel_dir) as channel:
        spec = environment_yml(channel.url, "solo")
        # Changed after indexing: one byte more (the archive still extracts).
        archive.write_bytes(archive.read_bytes() + b"\0")
        with pytest.raises(RestoreError, match="is not the package its channel names"):
            _restore_here(tmp_path / "pkgs", spec, tmp_path / "env", home)
    assert not (tmp_path / "env").exists()
    shared = SharedCache(tmp_path / "pkgs", cache_user_name())
    assert os.listdir(shared.archives) == []
    assert [p for p in os.listdir(shared.packages) if not p.startswith(".cache")] == []


def test_archives_kept_by_one_restore_are_found_by_the_next(tmp_path: Path) -> None:
    """`keep_archive` / `take_archive`: for restores that download archives themselves
    (a lock's, checked against it) to share them through the cache as well."""
    take_archive = shared_cache_module.take_archive
    shared = prepare_shared_cache(tmp_path / "pkgs")
    assert shared is not None
    downloaded = tmp_path / "pkgx-1.0-0.conda"
    downloaded.write_bytes(b"an archive")
    sha = hashlib.sha256(b"an archive").hexdigest()
    staged = tmp_path / "staging" / "pkgx-1.0-0.conda"
    staged.parent.mkdir()
    assert take_archive(shared, sha, "pkgx-1.0-0.conda", None, staged) is None
    kept = keep_archive(shared, downloaded, sha, "pkgx-1.0-0.conda")
    assert kept == shared.archives / f"{sha}.conda"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o644
    # This user's own archive: used where it is (nobody else can change it), once checked.
    assert take_archive(shared, sha, "pkgx-1.0-0.conda", 10, staged) == kept
    assert take_archive(shared, sha, "pkgx-1.0-0.conda", 11, staged) is None  # not that size
    assert take_archive(shared, sha, "pkgx-1.0-0.tar.bz2", None, staged) is None  # format
    assert take_archive(shared, "cd" * 32, "pkgx-1.0-0.conda", None, staged) is None
    assert keep_archive(shared, kept, "not-a-sha", "pkgx-1.0-0.conda") is None
    # Another user's (here: a folder of another name): copied into the staging file.
    other = shared.root / "someone" / "archives"
    other.mkdir(parents=True)
    os.replace(kept, other / kept.name)
    assert take_archive(shared, sha, "pkgx-1.0-0.conda", 10, staged) == staged
    assert staged.read_bytes() == b"an archive"
    assert stat.S_IMODE(staged.stat().st_mode) == 0o600
    assert not staged.is_symlink()
    # Not the bytes its name says: no copy is left.
    staged.unlink()
    (other / kept.name).write_bytes(b"an archivf")
    assert take_archive(shared, sha, "pkgx-1.0-0.conda", 10, staged) is None
    assert not staged.exists()


def test_the_server_setting_gives_restores_a_shared_cache() -> None:
    from traitlets import TraitError

    from jupyter_repro.app import ReproApp

    app = ReproApp()
    assert app.package_cache_options() == {}
    app.package_cache_dir = "~/../shared/pkgs"
    assert app.package_cache_options() == {
        "cache_dir": Path(os.path.expanduser("~/../shared/pkgs")),
        "shared_package_cache": True,
    }
    with pytest.raises(TraitError, match=r"ReproApp\.package_cache_dir: 'pkgs' is not an abs"):
        app.package_cache_dir = "pkgs"


def test_a_lock_restore_takes_the_archives_the_shared_cache_kept(
    tmp_path: Path, rig_channel: RigChannel
) -> None:
    """A lock's archives are fetched and checked before linking (not by rattler): with a
    shared cache they are taken from it, checked, when a restore of anyone kept them, and what
    a lock restore downloads is kept for the next one."""
    cache = tmp_path / "srv" / "pkgs"
    home = tmp_path / "home"
    home.mkdir()
    spec = environment_yml("{url}", *SPEC)
    with ServedChannel(rig_channel.path) as channel:
        _restore_here(cache, spec.format(url=channel.url), tmp_path / "from-spec", home)
        lock = asyncio.run(
            lock_environment(tmp_path / "from-spec", LockOptions(platforms=("linux-64",)))
        ).lock
        lock_file = tmp_path / "conda-lock.yml"
        lock_file.write_text(render_conda_lock(lock))
        before = channel.archive_downloads()
        assert sum(before.values()) == len(EXPECTED)
        service = RestoreService(
            RestoreOptions(cache_dir=cache, shared_package_cache=True),
            environ=isolated_environ(home),
            home=home,
        )

        asyncio.run(service.restore(load_source(file=lock_file), prefix=tmp_path / "locked"))

        assert channel.archive_downloads() == before  # every archive from the cache
        # Another user's planted file with the right name but other bytes is not used.
        user_archives = SharedCache(cache, cache_user_name()).archives
        first = sorted(user_archives.iterdir())[0]
        first.write_bytes(b"not the package")
        asyncio.run(service.restore(load_source(file=lock_file), prefix=tmp_path / "again"))
        after = channel.archive_downloads()
        assert sum(after.values()) == sum(before.values()) + 1
    installed = {
        json.loads(p.read_text())["name"]: json.loads(p.read_text())["version"]
        for p in (tmp_path / "again" / "conda-meta").glob("*.json")
    }
    assert installed == EXPECTED


def test_the_command_line_uses_the_servers_shared_cache_or_its_cache_dir(
    rig_environ, conda_installation, rig_channel, tmp_path, capsys
) -> None:
    from jupyter_repro.cli import main
    from tests.test_user_limits import write_server_config, write_spec

    spec = write_spec(tmp_path, rig_channel)
    shared = tmp_path / "srv" / "pkgs"
    write_server_config(conda_installation, {"package_cache_dir": str(shared)})

    assert main(["restore", str(spec), "--name", "one", "--yes"]) == 0, capsys.readouterr().err

    # The server's cache, laid out per user: made sticky, this user's part filled.
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert any((shared / cache_user_name() / "pkgs").glob("pkgc-*/info/index.json"))

    mine = tmp_path / "my-cache"
    assert main(["restore", str(spec), "--name", "two", "--yes", "--cache-dir", str(mine)]) == 0
    # A folder of one's own given on the command line is rattler's cache as it is.
    assert any(mine.glob("pkgc-*/info/index.json"))

    write_server_config(conda_installation, {"package_cache_dir": "relative/pkgs"})
    assert main(["restore", str(spec), "--name", "three", "--yes"]) == 1
    assert "ReproApp.package_cache_dir" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# what other users put in the cache: read once, privately, or not at all


def _channel_archive(channel_dir: Path, pkg: str) -> tuple[Path, str, int]:
    """A package of EXPECTED in the rig channel: its archive, sha256 and size."""
    path = Path(channel_dir) / "noarch" / f"{pkg}-{EXPECTED[pkg]}-0.conda"
    data = path.read_bytes()
    return path, hashlib.sha256(data).hexdigest(), len(data)


def _give(user: User, *paths: Path) -> None:
    for path in paths:
        os.chown(path, user.uid, user.gid, follow_symlinks=False)


def _lock_of_spec(tmp_path: Path, channel_url: str, home: Path) -> str:
    """A conda-lock file's text for SPEC from `channel_url` (restored with a private cache,
    then locked)."""
    env = tmp_path / "locked-from"
    spec = environment_yml(channel_url, *SPEC)
    _restore_here(tmp_path / "lock-pkgs", spec, env, home, shared=False)
    lock = asyncio.run(lock_environment(env, LockOptions(platforms=("linux-64",)))).lock
    return render_conda_lock(lock)


def test_another_users_archive_swapped_after_it_was_read_is_never_read_again(
    hub: Hub, rig_channel: RigChannel, tmp_path: Path
) -> None:
    """The owner of an archive can replace it at any moment (inotify tells them when a reader
    closed it): a lock restore reads another user's archive once, into a private copy, and
    uses only that copy (checking it, making its record, installing it, keeping it)."""
    home = tmp_path / "home"
    home.mkdir()
    cache = _admin_cache(hub.root / "swapped")
    planted = cache / hub.a.name / "archives"
    planted.mkdir(parents=True)
    archives = {pkg: _channel_archive(rig_channel.path, pkg) for pkg in EXPECTED}
    for path, sha, _ in archives.values():
        shutil.copyfile(path, planted / f"{sha}.conda")
    _, sha_a, _ = archives["pkga"]
    bad = planted / ".swap"
    bad.write_bytes(archives["pkgb"][0].read_bytes())  # a valid archive: another package
    _give(hub.a, planted.parent, planted, *planted.iterdir())
    with ServedChannel(rig_channel.path) as channel:
        lock_file = tmp_path / "conda-lock.yml"
        lock_file.write_text(_lock_of_spec(tmp_path, channel.url, home))
        before = channel.archive_downloads()
        attacker = hub.runtime.start(
            hub.a,
            hub.homes[hub.a.name],
            "swap",
            {"folder": str(planted), "name": f"{sha_a}.conda", "replacements": [str(bad)]},
        )
        try:
            assert attacker.stdout is not None
            assert attacker.stdout.readline().strip() == "ready", attacker.stderr
            service = RestoreService(
                RestoreOptions(cache_dir=cache, shared_package_cache=True),
                environ=isolated_environ(home),
                home=home,
            )
            asyncio.run(service.restore(load_source(file=lock_file), prefix=tmp_path / "env"))
        finally:
            out, err = attacker.communicate(input="", timeout=60)
        after = channel.archive_downloads()
    seen = json.loads(out.strip().splitlines()[-1])
    # Read once, then swapped by its owner: never read again.
    assert seen == {"ok": True, "opens": 1, "closes": 1, "swapped": 1}, err
    assert after == before  # every archive from the other user's downloads
    env = tmp_path / "env"
    installed = {
        json.loads(p.read_text())["name"]: json.loads(p.read_text())["version"]
        for p in (env / "conda-meta").glob("*.json")
    }
    assert installed == EXPECTED
    for pkg, version in EXPECTED.items():
        shipped = env / SHARED_FILE_TEMPLATE.format(name=pkg)
        assert shipped.read_text() == f"{pkg} {version}\n"
    # The private copies, checked, are this user's own archives now: the genuine bytes.
    mine = SharedCache(cache, cache_user_name())
    for _, sha, _ in archives.values():
        kept = mine.archives / f"{sha}.conda"
        assert hashlib.sha256(kept.read_bytes()).hexdigest() == sha
        assert kept.stat().st_uid == os.geteuid()


def test_another_users_archives_are_copied_and_checked_before_anything_extracts_them(
    hub: Hub, rig_channel: RigChannel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An archive in another user's folder is never extracted where it is (the bytes could
    change between the check and the use; a wrong archive could be a decompression bomb
    filling the file system before its sha256 is compared): it is copied into this user's
    folder while hashed, and only a copy with the record's sha256 is extracted, then kept."""
    import rattler.package_streaming as streaming

    cache = _admin_cache(hub.root / "copied")
    planted = cache / hub.a.name / "archives"
    planted.mkdir(parents=True)
    archives = {pkg: _channel_archive(rig_channel.path, pkg) for pkg in EXPECTED}
    for pkg in ("pkga", "pkgb"):
        path, sha, _ = archives[pkg]
        shutil.copyfile(path, planted / f"{sha}.conda")
    _, sha_c, size_c = archives["pkgc"]
    (planted / f"{sha_c}.conda").write_bytes(bytes(size_c))  # the right size, other bytes
    _give(hub.a, planted.parent, planted, *planted.iterdir())
    extracted: list[Path] = []
    real = streaming.extract

    def spy(path: Any, dest: Any) -> Any:
        extracted.append(Path(path))
        return real(path, dest)

    monkeypatch.setattr(streaming, "extract", spy)
    home = tmp_path / "home"
    home.mkdir()
    with ServedChannel(rig_channel.path) as channel:
        lines = _restore_here(cache, environment_yml(channel.url, *SPEC), tmp_path / "env", home)
        downloads = _archives(channel.archive_downloads())
    mine = SharedCache(cache, cache_user_name())
    assert len(extracted) == len(EXPECTED)
    for path in extracted:
        assert mine.user_dir in path.parents, path
    assert _summary(lines).endswith(
        "2 from other users' downloads, 0 from your earlier downloads, 3 downloaded"
    )
    assert downloads == {
        f"{pkg}-{version}-0.conda": 1
        for pkg, version in EXPECTED.items()
        if pkg not in ("pkga", "pkgb")
    }
    # The copies are kept as this user's own archives, as the downloads are.
    assert sorted(p.name for p in mine.archives.iterdir()) == sorted(
        f"{sha}.conda" for _, sha, _ in archives.values()
    )
    assert not [p for p in mine.packages.iterdir() if p.name.startswith(".partial-")]


def test_links_and_other_file_systems_in_the_cache_are_never_followed(
    hub: Hub, rig_channel: RigChannel, tmp_path: Path
) -> None:
    """A user folder that is a symlink, an archive that is a symlink, archives on another
    file system (a mount in a user's folder; FUSE lets users mount one that hangs every
    reader): none is read, whatever it holds."""
    cache = _admin_cache(hub.root / "linked")
    archives = {pkg: _channel_archive(rig_channel.path, pkg) for pkg in EXPECTED}
    outside = hub.root / "linked-outside"
    (outside / "archives").mkdir(parents=True)
    path_a, sha_a, _ = archives["pkga"]
    shutil.copyfile(path_a, outside / "archives" / f"{sha_a}.conda")
    os.symlink(outside, cache / "linked-user")  # a user folder that is a symlink
    path_b, sha_b, _ = archives["pkgb"]
    shutil.copyfile(path_b, outside / f"{sha_b}.conda")
    folder = cache / hub.a.name / "archives"
    folder.mkdir(parents=True)
    os.symlink(outside / f"{sha_b}.conda", folder / f"{sha_b}.conda")  # an archive symlink
    _give(hub.a, outside, *outside.rglob("*"), cache / "linked-user", folder.parent, folder)
    _give(hub.a, folder / f"{sha_b}.conda")
    mounted = cache / hub.b.name / "archives"
    mounted.mkdir(parents=True)
    _give(hub.b, mounted.parent, mounted)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=755", "repro-test", str(mounted)],
        capture_output=True,
        check=False,
    )
    try:
        if mount.returncode == 0:
            path_c, sha_c, _ = archives["pkgc"]
            shutil.copyfile(path_c, mounted / f"{sha_c}.conda")
            _give(hub.b, mounted, mounted / f"{sha_c}.conda")
        home = tmp_path / "home"
        home.mkdir()
        with ServedChannel(rig_channel.path) as channel:
            spec = environment_yml(channel.url, *SPEC)
            lines = _restore_here(cache, spec, tmp_path / "env", home)
    finally:
        if mount.returncode == 0:
            subprocess.run(["umount", str(mounted)], check=True)
    assert _summary(lines).endswith(
        "0 from other users' downloads, 0 from your earlier downloads, 5 downloaded"
    )


def test_a_cache_or_a_folder_above_it_that_another_user_owns_is_refused(hub: Hub) -> None:
    """The owner of a sticky folder may rename anything in it: the cache and every folder
    above it must be root's or this user's."""
    owned = _admin_cache(hub.root / "owned-by-a")
    _give(hub.a, owned)
    with pytest.raises(PackageCacheRefused) as refused:
        prepare_shared_cache(owned)
    message = str(refused.value)
    assert f"the shared package cache {owned} belongs to repro-cache-a" in message
    assert f"install -d -m 1777 {owned}" in message
    parent = hub.root / "parent-of-a"
    parent.mkdir()
    _give(hub.a, parent)
    below = _admin_cache(parent / "pkgs")
    with pytest.raises(PackageCacheRefused) as refused:
        prepare_shared_cache(below)
    assert f"the folder above the shared package cache {below}, {parent}, belongs to " in str(
        refused.value
    )
    assert os.listdir(owned) == []
    assert os.listdir(below) == []


def test_a_missing_cache_is_created_by_root_only(hub: Hub) -> None:
    """Whoever creates the cache owns it (and could remove other users' folders from it):
    only the administrator does; another user's restore names the command."""
    homes = hub.root / "missing-homes"
    homes.mkdir()
    home = user_home(homes, hub.b)
    cache = home / "srv" / "pkgs"
    run = hub.runtime.run(
        hub.b,
        home,
        "restore",
        {
            "cache": str(cache),
            "spec": environment_yml(hub.channel.url, *SPEC),
            "prefix": str(home / "envs" / "one"),
        },
    )
    assert not run["ok"]
    assert f"the shared package cache {cache} does not exist" in run["error"]
    assert f"install -d -m 1777 {cache}" in run["error"]
    assert not (home / "srv").exists()


def test_folders_changed_while_filling_are_refused_before_rattler_gets_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def replacing(cache: SharedCache, records: Any, **kwargs: Any) -> Any:
        os.rename(cache.packages, cache.user_dir / "moved")
        os.symlink(tmp_path, cache.packages)
        return shared_cache_module.FillReport()

    monkeypatch.setattr(shared_cache_module, "fill_shared_cache", replacing)
    cache = tmp_path / "pkgs"
    with pytest.raises(PackageCacheRefused, match="is not a folder of yours"):
        asyncio.run(prepare_package_cache(cache, [], shared=True))


# --------------------------------------------------------------------------------------------
# private channels


def test_archives_of_a_private_channel_are_not_shared(
    tmp_path: Path, rig_channel: RigChannel
) -> None:
    """An archive fetched from a URL with credentials (`/t/<token>/`, `user:pass@`) is not
    kept in the user's `archives`, which everyone reads: neither by a restore from a spec
    nor by one from a lock."""
    home = tmp_path / "home"
    home.mkdir()
    cache = tmp_path / "srv" / "pkgs"
    shared = SharedCache(cache, cache_user_name())
    with ServedChannel(rig_channel.path) as channel:
        private = channel.token_url("s3cr3t")
        _restore_here(cache, environment_yml(private, *SPEC), tmp_path / "from-spec", home)
        assert os.listdir(shared.archives) == []
        assert sum(channel.archive_downloads().values()) == len(EXPECTED)
        text = _lock_of_spec(tmp_path, channel.url, home)
        lock_file = tmp_path / "conda-lock.yml"
        lock_file.write_text(text.replace(f"{channel.url}/noarch/", f"{private}/noarch/"))
        assert "s3cr3t" in lock_file.read_text()
        before = sum(channel.archive_downloads().values())
        service = RestoreService(
            RestoreOptions(cache_dir=cache, shared_package_cache=True),
            environ=isolated_environ(home),
            home=home,
        )
        asyncio.run(service.restore(load_source(file=lock_file), prefix=tmp_path / "locked"))
        assert sum(channel.archive_downloads().values()) == before + len(EXPECTED)
    assert os.listdir(shared.archives) == []
    installed = {
        json.loads(p.read_text())["name"] for p in (tmp_path / "locked/conda-meta").glob("*.json")
    }
    assert installed == set(EXPECTED)


# --------------------------------------------------------------------------------------------
# cancelling


def test_a_cancelled_fill_waits_for_its_extractions_before_unlocking(
    tmp_path: Path, rig_channel: RigChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next fill removes what is half-written under `.cache.lock`: a cancelled fill
    keeps the lock until its worker threads stopped, and leaves no entry behind."""
    import rattler.package_streaming as streaming

    started, finished = threading.Event(), threading.Event()
    real = streaming.extract

    def slow(path: Any, dest: Any) -> Any:
        started.set()
        try:
            time.sleep(1.0)
            return real(path, dest)
        finally:
            finished.set()

    monkeypatch.setattr(streaming, "extract", slow)
    shared = prepare_shared_cache(tmp_path / "pkgs")
    assert shared is not None
    path, sha, size = _channel_archive(rig_channel.path, "pkga")
    shutil.copyfile(path, shared.archives / f"{sha}.conda")
    record = SimpleNamespace(
        name=SimpleNamespace(normalized="pkga"),
        version="1.0",
        build="0",
        sha256=bytes.fromhex(sha),
        file_name="pkga-1.0-0.conda",
        url="http://127.0.0.1:9/noarch/pkga-1.0-0.conda",
        size=size,
    )

    async def cancel_midway() -> bool:
        task = asyncio.ensure_future(fill_shared_cache(shared, [record]))
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return finished.is_set()

    assert asyncio.run(cancel_midway())
    assert [p.name for p in shared.packages.iterdir()] == [".cache.lock"]
