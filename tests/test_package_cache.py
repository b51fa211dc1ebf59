"""One package cache for every user of a machine (issue 18, `ReproApp.package_cache_dir`).

Two real system users (made with `useradd` when the tests run as root; skipped otherwise,
except under CI=true where that is a failure) restore the same environment.yml from a rig
channel served over HTTP by a server that counts the requests for every archive; each
restore runs as its user, in a process of its own (see tests/cache_rig.py). The rest runs
in this process as whoever runs the tests.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jupyter_repro.environments.prefix import RESTORE_MARKER
from jupyter_repro.restore.errors import RestoreError
from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.shared_cache import (
    PackageCacheRefused,
    SharedCache,
    cache_user_name,
    find_archive,
    keep_archive,
    prepare_package_cache,
    prepare_shared_cache,
    rattler_cache_dir,
)
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.lock import render_conda_lock
from jupyter_repro.specs.locking import LockOptions, lock_environment
from tests.cache_rig import (
    CountingChannel,
    User,
    UserRuntime,
    environment_yml,
    missing_requirement,
    system_users,
    user_home,
    world_readable_dir,
)
from tests.rig import RigChannel
from tests.rig.channel import (
    ACTIVATE_SCRIPT,
    ENVVARS_FILE,
    SHARED_FILE_TEMPLATE,
    build_channel,
    generic_package,
)
from tests.rig.installation import isolated_environ

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
    if os.environ.get("CI") == "true":
        pytest.fail(f"two system users are needed and CI runs as root, but: {problem}")
    pytest.skip(f"two system users cannot be made here: {problem}")


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
    channel: CountingChannel
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
        CountingChannel(rig_channel.path) as channel,
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


def test_a_user_cannot_replace_or_change_another_users_entries(hub: Hub) -> None:
    for me, other in ((hub.b, hub.a), (hub.a, hub.b)):
        result = hub.runtime.run(
            me,
            hub.homes[me.name],
            "tamper",
            {"paths": [str(hub.cache / other.name), str(hub.env(other, "one"))]},
        )
        assert result["files"] > 20  # read access: the walk saw the other user's files
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


def test_a_folder_of_another_user_in_place_of_yours_is_refused(hub: Hub) -> None:
    cache = hub.root / "squatted"
    cache.mkdir()
    os.chmod(cache, 0o1777)
    mine = cache / cache_user_name()
    mine.mkdir()
    os.chown(mine, hub.a.uid, hub.a.gid)
    with pytest.raises(PackageCacheRefused, match="belongs to repro-cache-a, not to you"):
        prepare_shared_cache(cache)


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
    for folder in (shared.user_dir, shared.packages, shared.archives):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    # Again: nothing changes, nothing fails.
    assert prepare_shared_cache(cache) == shared


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
    with CountingChannel(channel_dir) as channel:
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
    with CountingChannel(channel_dir) as channel:
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
    """`keep_archive` / `find_archive`: for restores that download archives themselves
    (a lock's, checked against it) to share them through the cache as well."""
    shared = prepare_shared_cache(tmp_path / "pkgs")
    downloaded = tmp_path / "pkgx-1.0-0.conda"
    downloaded.write_bytes(b"an archive")
    sha = "ab" * 32
    assert find_archive(shared, sha, "pkgx-1.0-0.conda") is None
    kept = keep_archive(shared, downloaded, sha, "pkgx-1.0-0.conda")
    assert kept == shared.archives / f"{sha}.conda"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o644
    assert find_archive(shared, sha, "pkgx-1.0-0.conda", size=10) == kept
    assert find_archive(shared, sha, "pkgx-1.0-0.conda", size=11) is None  # not that size
    assert find_archive(shared, sha, "pkgx-1.0-0.tar.bz2") is None  # another format
    assert keep_archive(shared, kept, "not-a-sha", "pkgx-1.0-0.conda") is None


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
    with CountingChannel(rig_channel.path) as channel:
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
