"""One package cache for every user of a machine (`ReproApp.package_cache_dir`).

Where the cache folder is and how rattler's entries are read: `restore/cache.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import grp
import os
import pwd
import re
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..environments.channels import redact_url
from ..specs.lock import file_url_path
from .cache import cached_sha256, write_entry_lock
from .errors import RestoreError

# --------------------------------------------------------------------------------------------
# the layout, and why (`ReproApp.package_cache_dir`)
#
# rattler 0.28 cannot share one cache folder between users (measured; the notes on the
# shared package cache in shared/notes): it opens the folder's `.cache.lock` and every entry's
# `<dist>.lock` read-write even to read an entry, so a second user fails with EACCES on the
# first user's files (in a read-only `PackageCacheLayer` too); making those files writable
# for everyone would let anyone rewrite anyone's entries. And an extracted entry cannot be
# trusted by another user anyway: it is whatever its owner put there, while the lock beside
# it only claims a sha256. So the shared folder is laid out per user:
#
#     <cache>/                 mode 1777 (sticky: nobody renames or removes others' folders)
#     <cache>/<user>/pkgs/     this user's rattler cache: their environments hard-link to it
#     <cache>/<user>/archives/ the archives this user downloaded, `<sha256>.conda|.tar.bz2`
#
# Before rattler installs, every package the user's own `pkgs` lacks is extracted there from
# an archive: the user's own, another user's (read only; used when its bytes hash to the
# sha256 of the user's own record, so nobody can plant a package for another), or a fresh
# download kept in the user's `archives` for the next user. Two users restoring the same spec
# thus download each package once; each user's files are their own (extracted by them, never
# hard-linked across users: `fs.protected_hardlinks` forbids that, rightly), and the write
# bits of group and others are taken off everything written (rattler keeps an archive's file
# modes as they are, and makes folders by the umask).

_CACHE_LOCK = ".cache.lock"
SHARED_CACHE_MODE = 0o1777
"""The mode of a shared cache folder this module creates."""
_USER_MODE = 0o755
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_ARCHIVE_SUFFIXES = (".conda", ".tar.bz2")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_LOCK_POLL = 0.05
_PARTIAL = ".partial-"
"""How what is being written starts (archives downloading, entries extracting); what is
left of a restore that was killed is removed by the next one of the same user."""


class PackageCacheRefused(RestoreError):
    """The shared package cache cannot be used safely (or at all) by this user."""


def cache_user_name(uid: int | None = None) -> str:
    """The name of this user's folder in a shared cache: the login name, else `uid-<n>`."""
    uid = os.geteuid() if uid is None else uid
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid-{uid}"
    # A login name is a file name already; anything odd falls back to the number.
    if not name or name.startswith(".") or "/" in name or "\x00" in name:
        return f"uid-{uid}"
    return name


@dataclass(frozen=True)
class SharedCache:
    """This user's part of a shared package cache (see the section's comment)."""

    root: Path
    user: str

    @property
    def user_dir(self) -> Path:
        return self.root / self.user

    @property
    def packages(self) -> Path:
        """rattler's cache folder for this user: the extracted packages."""
        return self.user_dir / "pkgs"

    @property
    def archives(self) -> Path:
        """The archives this user downloaded, for every user to extract from."""
        return self.user_dir / "archives"


def is_shared_cache(path: Path) -> bool:
    """Whether an existing cache folder is shared: another user's, or sticky (a folder that
    everybody may add to). A missing folder, or a plain folder of this user's, is not."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and (
        st.st_uid != os.geteuid() or bool(st.st_mode & stat.S_ISVTX)
    )


def rattler_cache_dir(cache: Path, shared: bool) -> Path:
    """The folder rattler keeps this user's extracted packages in, for a restore whose cache
    is `cache` (see `package_cache_dir`): `<cache>/<user>/pkgs` when the cache is shared (the
    `shared` option, or a folder `is_shared_cache`), else `cache` itself."""
    if shared or is_shared_cache(cache):
        return SharedCache(cache, cache_user_name()).packages
    return cache


def _mode(st: os.stat_result) -> str:
    return oct(stat.S_IMODE(st.st_mode))[2:].rjust(4, "0")


def _check_writers(path: Path, st: os.stat_result, cache: Path | None) -> None:
    """Refuse a folder that others may write without the sticky bit: they could rename or
    replace anything in it, cache entries and users' folders included. `cache` is None for
    the cache folder itself, else the cache below this folder."""
    if st.st_mode & _OTHERS_WRITE and not st.st_mode & stat.S_ISVTX:
        who = "everyone" if st.st_mode & stat.S_IWOTH else f"the group {_group(st.st_gid)}"
        if cache is None:
            what, fix = "the shared package cache", f"makes it sticky (chmod 1777 {path}) or"
        else:
            what, fix = f"the folder above the shared package cache {cache},", "makes it"
        raise PackageCacheRefused(
            f"{what} {path} (mode {_mode(st)}) is writable by {who} without the sticky "
            f"bit, so any of them could replace other users' packages; an administrator "
            f"{fix} writable by its owner only (chmod go-w {path})"
        )


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _own_folder(path: Path, *, root: Path, user: str) -> None:
    """Make sure `path` is a folder of this user's that only they can write; create it
    (mode 755, whatever the umask) when missing."""
    try:
        os.mkdir(path, _USER_MODE)
        # Whatever the umask: other users read the archives (an existing folder its owner
        # made private keeps its mode, less the write bits of others).
        os.chmod(path, _USER_MODE)
    except FileExistsError:
        pass
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise PackageCacheRefused(
                f"cannot create {path} in the shared package cache {root} "
                f"({error.strerror}); an administrator makes {root} mode 1777, or creates "
                f"the folder for you: install -d -o {user} -m 755 {path}"
            ) from None
        raise PackageCacheRefused(
            f"cannot create {path} in the shared package cache: {error.strerror}"
        ) from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise PackageCacheRefused(
            f"{path} in the shared package cache {root} is not a folder; an administrator "
            "removes it"
        )
    if st.st_uid != os.geteuid():
        try:
            owner = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            owner = f"uid {st.st_uid}"
        raise PackageCacheRefused(
            f"{path} in the shared package cache belongs to {owner}, not to you ({user}); "
            "nothing of another user's is used as yours: an administrator removes it"
        )
    wanted = stat.S_IMODE(st.st_mode) & ~_OTHERS_WRITE | stat.S_IRWXU
    if wanted != stat.S_IMODE(st.st_mode):
        os.chmod(path, wanted)


def prepare_shared_cache(root: Path) -> SharedCache:
    """Check the shared cache folder `root` and this user's folders in it (creating what is
    missing: `root` itself with mode 1777); raise `PackageCacheRefused` when it cannot be
    used safely: writable by others without the sticky bit (it or a folder above it), not
    readable, another user's folder where this user's belongs."""
    root = Path(os.path.abspath(root))
    user = cache_user_name()
    if not root.exists():
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(root)
            # The sticky bit, whatever the umask: users add folders, never remove others'.
            os.chmod(root, SHARED_CACHE_MODE)
        except FileExistsError:
            pass
        except OSError as error:
            raise PackageCacheRefused(
                f"cannot create the shared package cache {root} ({error.strerror}); an "
                f"administrator creates it once: install -d -m 1777 {root}"
            ) from None
    real = Path(os.path.realpath(root))
    for folder in (real, *real.parents):
        try:
            st = os.stat(folder)
        except OSError as error:
            raise PackageCacheRefused(
                f"cannot read the shared package cache {root}: {error.strerror}"
            ) from None
        _check_writers(folder, st, None if folder == real else root)
        if folder == real and not stat.S_ISDIR(st.st_mode):
            raise PackageCacheRefused(f"the shared package cache {root} is not a folder")
    if not os.access(real, os.R_OK | os.X_OK):
        raise PackageCacheRefused(
            f"the shared package cache {root} is not readable for {user}; an administrator "
            f"makes it readable (chmod a+rx {root})"
        )
    cache = SharedCache(real, user)
    for folder in (cache.user_dir, cache.packages, cache.archives):
        _own_folder(folder, root=real, user=user)
    return cache


def restrict_tree(path: Path) -> int:
    """Take the write bits of group and others off `path` and everything under it, never
    following a symlink; folders get owner rwx. Returns how many modes were changed."""
    changed = 0

    def fix(item: str, st: os.stat_result, folder: bool) -> None:
        nonlocal changed
        mode = stat.S_IMODE(st.st_mode)
        wanted = mode & ~_OTHERS_WRITE | (stat.S_IRWXU if folder else 0)
        if wanted != mode:
            os.chmod(item, wanted)
            changed += 1

    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return 0
    if stat.S_ISLNK(top.st_mode):
        return 0
    fix(os.fspath(path), top, stat.S_ISDIR(top.st_mode))
    if not stat.S_ISDIR(top.st_mode):
        return changed
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            item = os.path.join(dirpath, name)
            st = os.lstat(item)
            if not stat.S_ISLNK(st.st_mode):
                fix(item, st, stat.S_ISDIR(st.st_mode))
    return changed


def _dist_name(record: Any) -> str:
    """`name-version-build`: the name of a package's entry in rattler's cache."""
    return f"{record.name.normalized}-{record.version}-{record.build}"


def _archive_key(record: Any) -> str | None:
    """`<sha256>.conda` or `<sha256>.tar.bz2`: an archive's name in `archives`; None for a
    record without a sha256 (rattler fetches those itself)."""
    sha = record.sha256
    if not sha:
        return None
    name = str(record.file_name)
    suffix = next((s for s in _ARCHIVE_SUFFIXES if name.endswith(s)), None)
    return None if suffix is None else sha.hex() + suffix


def archive_index(cache: SharedCache) -> dict[str, list[Path]]:
    """Every archive in the shared cache, by `<sha256><suffix>`: this user's first, then the
    other users' (by folder name). Unreadable folders are skipped."""
    index: dict[str, list[Path]] = {}
    try:
        users = sorted(e.name for e in os.scandir(cache.root) if not e.name.startswith("."))
    except OSError:
        users = [cache.user]
    users.sort(key=lambda name: name != cache.user)
    for user in users:
        folder = cache.root / user / "archives"
        try:
            names = [e.name for e in os.scandir(folder)]
        except OSError:
            continue
        for name in names:
            suffix = next((s for s in _ARCHIVE_SUFFIXES if name.endswith(s)), None)
            if suffix is not None and _SHA256_HEX.fullmatch(name[: -len(suffix)]):
                index.setdefault(name, []).append(folder / name)
    return index


def find_archive(
    cache: SharedCache, sha256: str, filename: str, size: int | None = None
) -> Path | None:
    """An archive in the shared cache (any user's) named for `sha256` and `filename`'s
    format, a regular file of `size` when given; None when there is none. Its bytes are
    NOT checked: the caller checks them against its own sha256 before using them."""
    suffix = next((s for s in _ARCHIVE_SUFFIXES if filename.endswith(s)), None)
    if suffix is None or not _SHA256_HEX.fullmatch(sha256):
        return None
    for path in archive_index(cache).get(sha256 + suffix, ()):
        if _usable_archive(path, size):
            return path
    return None


def keep_archive(cache: SharedCache, path: Path, sha256: str, filename: str) -> Path | None:
    """Move an archive this user downloaded and checked (its bytes hash to `sha256`) into
    their `archives`, for every user after them; returns where it is, None when it cannot
    be kept (a name that is no archive's, another file system)."""
    suffix = next((s for s in _ARCHIVE_SUFFIXES if filename.endswith(s)), None)
    if suffix is None or not _SHA256_HEX.fullmatch(sha256):
        return None
    dest = cache.archives / (sha256 + suffix)
    try:
        os.chmod(path, 0o644)
        os.replace(path, dest)
    except OSError:
        return None
    return dest


def _usable_archive(path: Path, size: int | None) -> bool:
    """A regular file of the record's size (another user's folder may hold anything: a FIFO
    that would block a reader, a symlink to a device); the content is checked when it is
    extracted."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and (size is None or st.st_size == size)


def _extract_entry(packages: Path, dist: str, archive: Path, sha256: bytes) -> bool:
    """Extract `archive` as the cache entry `dist` of `packages`, if its bytes hash to
    `sha256`; the entry appears whole (renamed into place) or not at all."""
    from rattler.package_streaming import extract

    partial = Path(tempfile.mkdtemp(prefix=_PARTIAL, suffix=f"-{dist}", dir=packages))
    try:
        try:
            got, _md5 = extract(archive, partial)
        except Exception:  # rattler's extraction errors have no common base class
            return False
        if bytes(got) != sha256:
            return False
        restrict_tree(partial)
        os.chmod(partial, _USER_MODE)
        entry = packages / dist
        if os.path.lexists(entry):
            # An older entry under the same name (another build's bytes): set aside first,
            # so that the name always holds a whole package.
            old = Path(tempfile.mkdtemp(prefix=_PARTIAL, suffix=f"-{dist}", dir=packages))
            os.rename(entry, old / "entry")
            shutil.rmtree(old, ignore_errors=True)
        os.rename(partial, entry)
        write_entry_lock(packages, dist, sha256)
        return True
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)


@dataclass
class FillReport:
    """What `fill_shared_cache` did, package by package."""

    cached: list[str] = field(default_factory=list)
    """Already in this user's cache."""
    own_archives: list[str] = field(default_factory=list)
    """Extracted from an archive this user downloaded before."""
    shared: list[str] = field(default_factory=list)
    """Extracted from another user's archive: not downloaded."""
    downloaded: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    """Left to rattler: no sha256, or a local (`file://`) archive."""
    downloaded_bytes: int = 0

    def summary(self) -> str:
        parts = [
            f"{len(self.cached)} cached",
            f"{len(self.shared)} from other users' downloads",
            f"{len(self.own_archives)} from your earlier downloads",
            f"{len(self.downloaded)} downloaded",
        ]
        if self.left:
            parts.append(f"{len(self.left)} left to rattler")
        return "shared package cache: " + ", ".join(parts)


def _remove_partials(cache: SharedCache) -> None:
    """What a killed or cancelled restore of this user left half-written (called with the
    cache locked, so no restore of this user is writing)."""
    for folder in (cache.archives, cache.packages):
        try:
            names = [e.name for e in os.scandir(folder) if e.name.startswith(_PARTIAL)]
        except OSError:
            continue
        for name in names:
            path = folder / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()


@contextlib.asynccontextmanager
async def _cache_lock(packages: Path) -> AsyncIterator[None]:
    """rattler's own lock of a cache folder (`.cache.lock`, flock): no rattler of this user
    writes entries while we do. Polled, not waited for in a thread: a restore cancelled
    while it waits must not take the lock afterwards and keep it."""
    fd = os.open(packages / _CACHE_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(_LOCK_POLL)
        yield
    finally:
        os.close(fd)


async def fill_shared_cache(
    cache: SharedCache,
    records: Sequence[Any],
    *,
    on_done: Callable[[int, int], None] | None = None,
    concurrency: int = 8,
) -> FillReport:
    """Put every package of `records` into this user's cache (`cache.packages`), from the
    shared archives or downloaded once; see the section's comment."""
    from rattler.networking import Client

    report = FillReport()
    total = len(records)
    done = 0
    semaphore = asyncio.Semaphore(concurrency)
    client: Any = None
    async with _cache_lock(cache.packages):
        await asyncio.to_thread(_remove_partials, cache)
        index = await asyncio.to_thread(archive_index, cache)

        async def one(record: Any) -> None:
            nonlocal done, client
            dist = _dist_name(record)
            key = _archive_key(record)
            url = str(record.url)
            if key is None or file_url_path(url) is not None:
                report.left.append(dist)
            elif cached_sha256(cache.packages, dist) == record.sha256.hex():
                report.cached.append(dist)
            else:
                sha = bytes(record.sha256)
                async with semaphore:
                    for path in index.get(key, ()):
                        if await asyncio.to_thread(
                            _usable_archive, path, record.size
                        ) and await asyncio.to_thread(
                            _extract_entry, cache.packages, dist, path, sha
                        ):
                            own = path.parent == cache.archives
                            (report.own_archives if own else report.shared).append(dist)
                            break
                    else:
                        client = client or Client()
                        await _download_entry(cache, record, dist, key, sha, client)
                        report.downloaded.append(dist)
                        report.downloaded_bytes += int(record.size or 0)
            done += 1
            if on_done is not None:
                on_done(done, total)

        tasks = [asyncio.ensure_future(one(r)) for r in records]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    return report


async def _download_entry(
    cache: SharedCache, record: Any, dist: str, key: str, sha256: bytes, client: Any
) -> None:
    """Download `record`'s archive into this user's `archives`, extract it as `dist`."""
    from rattler.package_streaming import download_to_path

    url = str(record.url)
    # Named `...<suffix>`: rattler tells the archive's format by its name.
    fd, name = tempfile.mkstemp(prefix=_PARTIAL, suffix=f"-{key}", dir=cache.archives)
    os.close(fd)
    partial = Path(name)
    try:
        try:
            await download_to_path(client, url, partial)
        except Exception as error:  # rattler's networking errors have no common base class
            text = str(error).strip()
            first = redact_url(text.splitlines()[0]) if text else type(error).__name__
            raise RestoreError(f"cannot download {dist} from {redact_url(url)}: {first}") from error
        if not await asyncio.to_thread(_extract_entry, cache.packages, dist, partial, sha256):
            raise RestoreError(
                f"{dist} downloaded from {redact_url(url)} is not the package its channel "
                f"names (sha256 {sha256.hex()}): changed or truncated on the way; nothing was "
                "installed"
            )
        os.chmod(partial, 0o644)
        os.replace(partial, cache.archives / key)
    finally:
        await asyncio.to_thread(partial.unlink, missing_ok=True)


async def prepare_package_cache(
    cache: Path,
    records: Sequence[Any],
    *,
    shared: bool,
    on_done: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Path, SharedCache | None]:
    """The folder to hand rattler for installing `records`, and the shared cache when
    `cache` is one (the `shared` option, or `is_shared_cache`): then it is prepared and
    filled first (see `fill_shared_cache`). A personal cache is returned as it is."""
    if not shared and not await asyncio.to_thread(is_shared_cache, cache):
        return cache, None
    prepared = await asyncio.to_thread(prepare_shared_cache, cache)
    report = await fill_shared_cache(prepared, records, on_done=on_done)
    if log is not None:
        log(report.summary())
    return prepared.packages, prepared


def secure_install(cache: SharedCache, records: Sequence[Any], target: Path) -> None:
    """After rattler installed `records` into `target` from `cache`: nothing it wrote there,
    nor any entry it extracted itself (the packages `fill_shared_cache` left to it), is
    writable by group or others."""
    for record in records:
        restrict_tree(cache.packages / _dist_name(record))
    restrict_tree(target)
