"""One package cache for every user of a machine (`ReproApp.package_cache_dir`).

Where the cache folder is and how rattler's entries are read: `restore/cache.py`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import fcntl
import functools
import grp
import hashlib
import os
import pwd
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..aio import gather_all
from ..download_client import download_client
from ..environments.channels import redact_url
from ..specs.lock import file_url_path
from .cache import cached_sha256, package_cache_dir, write_entry_lock
from .errors import RestoreError

_T = TypeVar("_T")

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
#     <cache>/                 mode 1777 (sticky: nobody renames or removes others' folders),
#                              root's (or this user's), as is every folder above it
#     <cache>/<user>/          0755, this user's
#     <cache>/<user>/pkgs/     0700, this user's rattler cache: their environments hard-link
#                              to it (rattler extracts an archive's file modes as they are)
#     <cache>/<user>/archives/ 0755, the archives this user downloaded, `<sha256><suffix>`
#
# Before rattler installs, every package the user's own `pkgs` lacks is extracted there from
# an archive: the user's own, another user's, or a fresh download kept in the user's
# `archives` for the next user. Another user's archive can be replaced by its owner at any
# moment, so it is read exactly once: opened without following a link or blocking (a FIFO),
# checked to be a regular file on the cache's file system of the record's size, copied into
# this user's folder while hashed, and only a copy whose bytes hash to the user's own
# record's sha256 is used (and kept as the user's own archive); nobody can plant a package
# for another. Two users restoring the same spec thus download each package once; each
# user's files are their own (extracted by them, never hard-linked across users:
# `fs.protected_hardlinks` forbids that, rightly), and the write bits of group and others are
# taken off everything written (rattler keeps an archive's file modes as they are, and makes
# folders by the umask). Archives from a URL with credentials (a private channel's) are
# never kept where everyone reads them.

_CACHE_LOCK = ".cache.lock"
SHARED_CACHE_MODE = 0o1777
"""The mode of a shared cache folder this module creates."""
_USER_MODE = 0o755
_PACKAGES_MODE = 0o700
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_OTHERS_ALL = stat.S_IRWXG | stat.S_IRWXO
MAX_ARCHIVE_BYTES = 4 << 30
"""The most bytes read from another user's archive for a record that names no size (the
packages of a conda-lock lock carry none)."""
_CHUNK = 1 << 20
_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FILE_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_MOUNTINFO = Path("/proc/self/mountinfo")
_MOUNTINFO_ESCAPE = re.compile(r"\\([0-7]{3})")
_ARCHIVE_SUFFIXES = (".conda", ".tar.bz2")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_LOCK_POLL = 0.05
_PARTIAL = ".partial-"
"""How what is being written starts (archives downloading, entries extracting); what is
left of a restore that was killed is removed by the next one of the same user."""


class PackageCacheRefused(RestoreError):
    """The shared package cache cannot be used safely (or at all) by this user."""


def is_private_url(url: str) -> bool:
    """Whether `url` carries credentials (`/t/<token>/`, `user:pass@`, a secret in its
    query): what is fetched from it is not kept where every user reads it."""
    return redact_url(url) != url


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


def private_cache_dir(environ: Mapping[str, str] | None, home: Path | None) -> Path:
    """This user's own package cache, used when their folder in a shared one is taken by
    another user (`package_cache_dir` without a configured folder)."""
    return package_cache_dir(
        None,
        os.environ if environ is None else environ,
        Path.home() if home is None else home,
    )


def rattler_cache_dir(
    cache: Path,
    shared: bool,
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Path:
    """The folder rattler keeps this user's extracted packages in, for a restore whose cache
    is `cache` (see `package_cache_dir`): `<cache>/<user>/pkgs` when the cache is shared (the
    `shared` option, or a folder `is_shared_cache`), else `cache` itself. When `<cache>/<user>`
    is not this user's folder (another user made it first), their own private cache
    (`private_cache_dir` of `environ` and `home`, default: this process's), as a restore
    does."""
    if shared or is_shared_cache(cache):
        mine = SharedCache(cache, cache_user_name())
        if _squatter(mine.user_dir) is not None:
            return private_cache_dir(environ, home)
        return mine.packages
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


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _check_owner(path: Path, st: os.stat_result, cache: Path | None) -> None:
    """Refuse a folder that is neither root's nor this user's: its owner may rename what is
    in it (a sticky folder's owner too: users' folders in the cache, the cache itself).
    `cache` is None for the cache folder itself, else the cache below this folder."""
    if st.st_uid in (0, os.geteuid()):
        return
    if cache is None:
        what, where = f"the shared package cache {path}", path
    else:
        what, where = f"the folder above the shared package cache {cache}, {path},", cache
    raise PackageCacheRefused(
        f"{what} belongs to {_owner(st.st_uid)}, who could rename or replace other users' "
        f"packages in it: it and every folder above it must belong to root (or to you); an "
        f"administrator makes it: install -d -m 1777 {where}"
    )


def _squatter(path: Path) -> str | None:
    """Who holds `path` (`<cache>/<user>`) when it is not a folder of this user's (anyone
    may create it first in the sticky cache folder); None when it is this user's or
    missing."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"something unreadable ({error.strerror})"
    if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():
        return None
    owner = _owner(st.st_uid)
    return owner if stat.S_ISDIR(st.st_mode) else f"{owner} (not a folder)"


def _own_folder(path: Path, *, root: Path, user: str, private: bool = False) -> None:
    """Make sure `path` is a folder of this user's that only they can write (that only they
    can enter, `private`); create it (mode 755, 700 when `private`, whatever the umask)
    when missing."""
    mode = _PACKAGES_MODE if private else _USER_MODE
    try:
        os.mkdir(path, mode)
        # Whatever the umask: other users read the archives (an existing folder its owner
        # made private keeps its mode, less the write bits of others).
        os.chmod(path, mode)
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
        raise PackageCacheRefused(
            f"{path} in the shared package cache belongs to {_owner(st.st_uid)}, not to you "
            f"({user}); nothing of another user's is used as yours: an administrator removes it"
        )
    strip = _OTHERS_ALL if private else _OTHERS_WRITE
    wanted = stat.S_IMODE(st.st_mode) & ~strip | stat.S_IRWXU
    if wanted != stat.S_IMODE(st.st_mode):
        os.chmod(path, wanted)


def _prepare(root: Path) -> SharedCache | str:
    """`prepare_shared_cache`; instead of None, what to tell the user about their folder
    that another user holds."""
    root = Path(os.path.abspath(root))
    user = cache_user_name()
    if not os.path.lexists(root):
        if os.geteuid() != 0:
            # Whoever creates it owns it, and the owner of a sticky folder may remove anyone's
            # folders from it: the administrator creates it.
            raise PackageCacheRefused(
                f"the shared package cache {root} does not exist; an administrator creates "
                f"it once: install -d -m 1777 {root}"
            )
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
        above = None if folder == real else root
        _check_writers(folder, st, above)
        _check_owner(folder, st, above)
        if folder == real and not stat.S_ISDIR(st.st_mode):
            raise PackageCacheRefused(f"the shared package cache {root} is not a folder")
    if not os.access(real, os.R_OK | os.X_OK):
        raise PackageCacheRefused(
            f"the shared package cache {root} is not readable for {user}; an administrator "
            f"makes it readable (chmod a+rx {root})"
        )
    cache = SharedCache(real, user)
    squatter = _squatter(cache.user_dir)
    if squatter is not None:
        return (
            f"{cache.user_dir} in the shared package cache belongs to {squatter}, not to "
            f"you ({user}); an administrator removes it"
        )
    _own_folder(cache.user_dir, root=real, user=user)
    _own_folder(cache.packages, root=real, user=user, private=True)
    _own_folder(cache.archives, root=real, user=user)
    return cache


def prepare_shared_cache(root: Path) -> SharedCache | None:
    """Check the shared cache folder `root` and this user's folders in it (creating what is
    missing: `root` itself with mode 1777, by root only); raise `PackageCacheRefused` when
    it cannot be used safely: missing (and this is not root), writable by others without the
    sticky bit or owned by anyone but root or this user (it or a folder above it), not
    readable. None when this user's folder in it is another user's (anyone may create it
    first): the user's own private cache is used instead (`prepare_package_cache`)."""
    prepared = _prepare(root)
    return prepared if isinstance(prepared, SharedCache) else None


def check_own_folders(cache: SharedCache) -> None:
    """Raise `PackageCacheRefused` unless this user's folders in the cache are still their
    own real folders (not links, not another user's): checked again before rattler is
    handed `cache.packages`."""
    for path in (cache.user_dir, cache.packages, cache.archives):
        try:
            st = os.lstat(path)
        except OSError as error:
            raise PackageCacheRefused(
                f"{path} in the shared package cache cannot be read: {error.strerror}"
            ) from None
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            raise PackageCacheRefused(
                f"{path} in the shared package cache is not a folder of yours any more "
                f"(it belongs to {_owner(st.st_uid)}); nothing was installed"
            )


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


def _mount_points(under: Path) -> frozenset[Path]:
    """The mount points below `under`: a user may mount a file system in their own folder
    (FUSE) whose every stat or open hangs; none is ever touched."""
    try:
        text = _MOUNTINFO.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return frozenset()
    found = set()
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            point = Path(_MOUNTINFO_ESCAPE.sub(lambda m: chr(int(m[1], 8)), fields[4]))
            if under in point.parents:
                found.add(point)
    return frozenset(found)


def _open_folder(root_fd: int, parts: Sequence[str], dev: int) -> int | None:
    """The folder `parts` below the open folder `root_fd`, opened step by step without
    following a symlink, each step a folder on the device `dev`; None when it is not."""
    fd = root_fd
    try:
        for part in parts:
            try:
                step = os.open(part, _DIR_OPEN, dir_fd=fd)
            except OSError:
                return None
            if fd != root_fd:
                os.close(fd)
            fd = step
            if os.fstat(fd).st_dev != dev:
                return None
        opened, fd = fd, root_fd
        return opened
    finally:
        if fd != root_fd:
            os.close(fd)


def archive_index(cache: SharedCache) -> dict[str, list[Path]]:
    """Every archive in the shared cache, by `<sha256><suffix>`: this user's first, then the
    other users' (by folder name). Only real folders and regular files on the cache's own
    file system count (a symlink, a FIFO, a mount point: skipped, never stat'ed through);
    unreadable folders are skipped."""
    index: dict[str, list[Path]] = {}
    mounts = _mount_points(cache.root)
    try:
        root_fd = os.open(cache.root, _DIR_OPEN)
    except OSError:
        return index
    try:
        dev = os.fstat(root_fd).st_dev
        try:
            with os.scandir(root_fd) as entries:
                users = sorted(
                    e.name
                    for e in entries
                    if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
                )
        except OSError:
            users = [cache.user]
        users.sort(key=lambda name: name != cache.user)
        for user in users:
            folder = cache.root / user / "archives"
            if folder.parent in mounts or folder in mounts:
                continue
            fd = _open_folder(root_fd, (user, "archives"), dev)
            if fd is None:
                continue
            try:
                with os.scandir(fd) as entries:
                    names = [e.name for e in entries if e.is_file(follow_symlinks=False)]
            except OSError:
                names = []
            finally:
                os.close(fd)
            for name in names:
                suffix = next((s for s in _ARCHIVE_SUFFIXES if name.endswith(s)), None)
                if (
                    suffix is not None
                    and _SHA256_HEX.fullmatch(name[: -len(suffix)])
                    and folder / name not in mounts
                ):
                    index.setdefault(name, []).append(folder / name)
    finally:
        os.close(root_fd)
    return index


def _open_archive(cache: SharedCache, path: Path) -> tuple[int, os.stat_result] | None:
    """`path`, an archive in one of the cache's `archives` folders, opened for reading and
    fstat'ed, when it is a regular file on the cache's file system: no step followed
    through a symlink or a mount point, the file opened without blocking (a FIFO), so that
    nothing another user put there can hang this thread. None otherwise."""
    try:
        parts = path.relative_to(cache.root).parts
    except ValueError:
        return None
    if len(parts) != 3 or parts[1] != "archives":
        return None
    mounts = _mount_points(cache.root)
    if any(cache.root.joinpath(*parts[:n]) in mounts for n in (1, 2, 3)):
        return None
    try:
        root_fd = os.open(cache.root, _DIR_OPEN)
    except OSError:
        return None
    try:
        dev = os.fstat(root_fd).st_dev
        folder = _open_folder(root_fd, parts[:2], dev)
    finally:
        os.close(root_fd)
    if folder is None:
        return None
    try:
        fd = os.open(parts[2], _FILE_OPEN, dir_fd=folder)
    except OSError:
        return None
    finally:
        os.close(folder)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_dev != dev:
        os.close(fd)
        return None
    return fd, st


def _read_checked(
    cache: SharedCache,
    path: Path,
    sha256: str,
    size: int | None,
    out: Any = None,
    cancel: threading.Event | None = None,
) -> bool:
    """Read the archive `path` of the cache once (`_open_archive`), writing its bytes to the
    binary file `out` when given; whether they are `size` bytes (at most
    `MAX_ARCHIVE_BYTES` when the size is not known) hashing to `sha256` (hex). Stops at
    the first byte too many, or when `cancel` is set."""
    opened = _open_archive(cache, path)
    if opened is None:
        return False
    fd, st = opened
    limit = MAX_ARCHIVE_BYTES if size is None else size
    try:
        if st.st_size > limit or (size is not None and st.st_size != size):
            return False
        digest = hashlib.sha256()
        total = 0
        while True:
            if cancel is not None and cancel.is_set():
                return False
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                return False
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
    except OSError:
        return False
    finally:
        os.close(fd)
    return (size is None or total == size) and digest.hexdigest() == sha256


def take_archive(
    cache: SharedCache, sha256: str, filename: str, size: int | None, dest: Path
) -> Path | None:
    """An archive in the shared cache named for `sha256` and `filename`'s format whose bytes
    hash to `sha256` (and are `size` bytes, when given), for this user to use: their own
    (nobody else can change it), or else a private copy of another user's at `dest` (a new
    file, mode 600, in a folder of this user's; written while the original is read, once:
    its owner could change it at any moment). None when there is none."""
    suffix = next((s for s in _ARCHIVE_SUFFIXES if filename.endswith(s)), None)
    if suffix is None or not _SHA256_HEX.fullmatch(sha256):
        return None
    for path in archive_index(cache).get(sha256 + suffix, ()):
        if path.parent == cache.archives:
            if _read_checked(cache, path, sha256, size):
                return path
            continue
        if _copy_checked(cache, path, sha256, size, dest):
            return dest
    return None


def _copy_checked(
    cache: SharedCache,
    path: Path,
    sha256: str,
    size: int | None,
    dest: Path,
    cancel: threading.Event | None = None,
) -> bool:
    """Copy another user's archive `path` to `dest` (created, mode 600), reading it once;
    True when the copy's bytes are the record's, else False (and `dest` removed)."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    ok = False
    try:
        with open(fd, "wb") as out:
            ok = _read_checked(cache, path, sha256, size, out, cancel)
    finally:
        if not ok:
            dest.unlink(missing_ok=True)
    return ok


def keep_archive(cache: SharedCache, path: Path, sha256: str, filename: str) -> Path | None:
    """Move an archive this user downloaded and checked (its bytes hash to `sha256`) into
    their `archives`, for every user after them; returns where it is, None when it cannot
    be kept (a name that is no archive's, another file system). Never call it for an archive
    of a private channel (`is_private_url`): everyone reads `archives`."""
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


def _usable_archive(cache: SharedCache, path: Path, size: int | None) -> bool:
    """One of this user's own archives: a regular file (not a link) of the record's size, on
    the cache's file system; the content is checked when it is extracted."""
    try:
        st = os.lstat(path)
        dev = os.stat(cache.root).st_dev
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_dev == dev and (size is None or st.st_size == size)


def _extract_entry(
    packages: Path,
    dist: str,
    archive: Path,
    sha256: bytes,
    cancel: threading.Event | None = None,
) -> bool:
    """Extract `archive` (a file of this user's) as the cache entry `dist` of `packages`, if
    its bytes hash to `sha256`; the entry appears whole (renamed into place) or not at all
    (nor when `cancel` is set by then)."""
    from rattler.package_streaming import extract

    partial = Path(tempfile.mkdtemp(prefix=_PARTIAL, suffix=f"-{dist}", dir=packages))
    try:
        try:
            got, _md5 = extract(archive, partial)
        except Exception:  # rattler's extraction errors have no common base class
            return False
        if bytes(got) != sha256 or (cancel is not None and cancel.is_set()):
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


def _extract_copy(
    cache: SharedCache,
    dist: str,
    path: Path,
    key: str,
    sha256: bytes,
    size: int | None,
    keep: bool,
    cancel: threading.Event,
) -> bool:
    """Extract another user's archive `path` as `dist`: copied first into this user's
    `pkgs` (read once, hashed on the way, at most its size), extracted from the copy only
    when its bytes are `sha256`, then the copy kept as this user's own archive (`keep`)."""
    fd, name = tempfile.mkstemp(prefix=_PARTIAL, suffix=f"-{key}", dir=cache.packages)
    os.close(fd)
    copy = Path(name)
    try:
        if not _copy_checked(cache, path, sha256.hex(), size, copy, cancel):
            return False
        if not _extract_entry(cache.packages, dist, copy, sha256, cancel):
            return False
        if keep:
            os.chmod(copy, 0o644)
            with contextlib.suppress(OSError):
                os.replace(copy, cache.archives / key)
        return True
    finally:
        copy.unlink(missing_ok=True)


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


class _Workers:
    """The threads of one fill: a cancel flag they look at, and a way to wait until every
    one of them stopped (a thread keeps running when the task awaiting it is cancelled, and
    the lock must outlive what writes under it)."""

    def __init__(self, concurrency: int) -> None:
        self.cancel = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="repro-cache"
        )

    async def run(self, function: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(function, *args))

    async def stop(self) -> None:
        """Wait for every thread, even when cancelled meanwhile (then re-raised after)."""
        waiting = asyncio.ensure_future(
            asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        )
        cancelled = False
        while not waiting.done():
            try:
                await asyncio.shield(waiting)
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError


async def fill_shared_cache(
    cache: SharedCache,
    records: Sequence[Any],
    *,
    on_done: Callable[[int, int], None] | None = None,
    concurrency: int = 8,
) -> FillReport:
    """Put every package of `records` into this user's cache (`cache.packages`), from the
    shared archives or downloaded once; see the section's comment."""
    report = FillReport()
    total = len(records)
    done = 0
    semaphore = asyncio.Semaphore(concurrency)
    client: Any = None
    workers = _Workers(concurrency)
    async with _cache_lock(cache.packages):
        try:
            await workers.run(_remove_partials, cache)
            index = await workers.run(archive_index, cache)

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
                    size = None if record.size is None else int(record.size)
                    keep = not is_private_url(url)
                    async with semaphore:
                        for path in index.get(key, ()):
                            if path.parent == cache.archives:
                                if await workers.run(
                                    _usable_archive, cache, path, size
                                ) and await workers.run(
                                    _extract_entry, cache.packages, dist, path, sha, workers.cancel
                                ):
                                    report.own_archives.append(dist)
                                    break
                            elif await workers.run(
                                _extract_copy,
                                cache,
                                dist,
                                path,
                                key,
                                sha,
                                size,
                                keep,
                                workers.cancel,
                            ):
                                report.shared.append(dist)
                                break
                        else:
                            client = client or await download_client()
                            await _download_entry(cache, record, dist, key, sha, client, workers)
                            report.downloaded.append(dist)
                            report.downloaded_bytes += int(record.size or 0)
                done += 1
                if on_done is not None:
                    on_done(done, total)

            await gather_all(one(r) for r in records)
        except BaseException:
            workers.cancel.set()
            raise
        finally:
            # Under the lock still: the next fill removes what is half-written.
            await workers.stop()
    return report


async def _download_entry(
    cache: SharedCache,
    record: Any,
    dist: str,
    key: str,
    sha256: bytes,
    client: Any,
    workers: _Workers,
) -> None:
    """Download `record`'s archive into this user's `pkgs` (nobody else may enter it),
    extract it as `dist`, keep it in their `archives` (not when it comes from a private
    channel)."""
    from rattler.package_streaming import download_to_path

    url = str(record.url)
    # Named `...<suffix>`: rattler tells the archive's format by its name.
    fd, name = tempfile.mkstemp(prefix=_PARTIAL, suffix=f"-{key}", dir=cache.packages)
    os.close(fd)
    partial = Path(name)
    try:
        try:
            await download_to_path(client, url, partial)
        except Exception as error:  # rattler's networking errors have no common base class
            text = str(error).strip()
            first = redact_url(text.splitlines()[0]) if text else type(error).__name__
            raise RestoreError(f"cannot download {dist} from {redact_url(url)}: {first}") from error
        if not await workers.run(
            _extract_entry, cache.packages, dist, partial, sha256, workers.cancel
        ):
            raise RestoreError(
                f"{dist} downloaded from {redact_url(url)} is not the package its channel "
                f"names (sha256 {sha256.hex()}): changed or truncated on the way; nothing was "
                "installed"
            )
        if not is_private_url(url):
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
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> tuple[Path, SharedCache | None]:
    """The folder to hand rattler for installing `records`, and the shared cache when
    `cache` is one (the `shared` option, or `is_shared_cache`): then it is prepared and
    filled first (see `fill_shared_cache`). A personal cache is returned as it is. When this
    user's folder in the shared cache is another user's, their own private cache
    (`private_cache_dir` of `environ` and `home`, default: this process's) is returned
    instead, with a warning to `log`."""
    if not shared and not is_shared_cache(cache):  # one stat: not worth a thread
        return cache, None
    prepared = await asyncio.to_thread(_prepare, cache)
    if not isinstance(prepared, SharedCache):
        private = private_cache_dir(environ, home)
        if log is not None:
            log(
                f"warning: {prepared}. Using your own package cache {private} instead: "
                "nothing is shared with other users until then"
            )
        return private, None
    report = await fill_shared_cache(prepared, records, on_done=on_done)
    await asyncio.to_thread(check_own_folders, prepared)
    if log is not None:
        log(report.summary())
    return prepared.packages, prepared


def restrict_entries(cache: SharedCache, records: Sequence[Any]) -> None:
    """Take the write bits of group and others off the entries of `records` in this user's
    cache (those rattler extracted itself keep the archive's modes): after an install,
    whether it worked or not."""
    for record in records:
        restrict_tree(cache.packages / _dist_name(record))


def secure_install(cache: SharedCache, records: Sequence[Any], target: Path) -> None:
    """After rattler installed `records` into `target` from `cache`: nothing it wrote there,
    nor any entry it extracted itself (the packages `fill_shared_cache` left to it), is
    writable by group or others."""
    restrict_entries(cache, records)
    restrict_tree(target)
