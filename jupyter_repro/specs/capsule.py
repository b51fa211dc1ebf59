"""Capsules: one file that carries notebooks, their lock and every package archive they need.

A capsule (`NAME.capsule.tar.zst`) is a POSIX tar compressed with zstd. Its members, all
regular files sorted by path, owned by nobody (uid/gid 0, no names), mode 0644, dated with the
lock's `as_of`:

- `capsule.json`: the manifest (`Manifest`): what is inside, for which platforms, the size and
  sha256 of every member, and the packages that could not be packed (`missing`);
- `lock.json`: the lock in its embedded form, with the URLs it had (the original channels);
- `notebooks/<file>.ipynb`: the notebooks, byte for byte;
- `pkgs/<subdir>/<filename>`: each conda archive once (noarch ones are shared by platforms);
- `wheels/<filename>`: each pip wheel once.

The same inputs give the same bytes: no time but `as_of`, sorted members, fixed owners, one
zstd frame (multi-threaded zstd writes the same bytes whatever the number of threads).

Capsules come from strangers. Reading one trusts nothing: the manifest comes first and must
agree with the lock (every archive it lists is one the lock names, with the lock's sha256, and
every locked package is either packed or listed as missing); every later member must be a
regular file with a name of the layout above that the manifest lists, at most once, within the
size limits; it is written with `O_EXCL | O_NOFOLLOW` under folders this code created, and its
size and sha256 must be the manifest's. Anything else is a `CapsuleError` naming the member.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tarfile
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, cast
from urllib.parse import unquote, urlsplit

from .._version import __version__
from ..atomic import current_umask
from ..environments.channels import is_subdir, redact_text, redact_url
from ..memo import STAT_KEYS_TRUSTED, Memo
from .environment import SpecError
from .lock import MAX_LOCK_BYTES, Lock, LockedConda, LockError, embedded_lock, parse_embedded_lock
from .pip_lock import LockedPypi

__all__ = [
    "CAPSULE_FORMAT",
    "CAPSULE_SUFFIX",
    "CAPSULE_VERSION",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_MEMBER_BYTES",
    "CapsuleConda",
    "CapsuleError",
    "CapsuleFile",
    "CapsulePypi",
    "ExtractedCapsule",
    "Manifest",
    "MissingPackage",
    "check_manifest_against_lock",
    "conda_member",
    "extract_capsule",
    "is_capsule",
    "read_capsule_head",
    "read_manifest",
    "wheel_member",
    "write_capsule",
]

CAPSULE_FORMAT = "jupyter-repro-capsule"
CAPSULE_VERSION = 1
CAPSULE_SUFFIX = ".capsule.tar.zst"
MANIFEST_NAME = "capsule.json"
LOCK_NAME = "lock.json"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_LEVEL = 3

DEFAULT_MAX_MEMBER_BYTES = 8 << 30
"""Largest member a capsule may have (the biggest conda archives are a few GB)."""
DEFAULT_MAX_BYTES = 64 << 30
"""Largest total a capsule may unpack to."""
MAX_MANIFEST_BYTES = 32 << 20
MAX_NOTEBOOK_BYTES = 512 << 20
_MAX_HEADER_BYTES = 1 << 20
"""Largest pax or GNU long-name header read: tarfile holds one in memory."""
_CHUNK = 1 << 20

_SAFE_FILE = r"[A-Za-z0-9_][A-Za-z0-9._+!-]*"
_CONDA_MEMBER = re.compile(
    rf"pkgs/(?P<subdir>[a-z0-9][a-z0-9_-]*)/(?P<file>{_SAFE_FILE}\.(?:conda|tar\.bz2))"
)
_WHEEL_MEMBER = re.compile(rf"wheels/(?P<file>{_SAFE_FILE}\.whl)")
# A notebook keeps its name (spaces, accents) but nothing a file system treats specially,
# and no character that hides or reorders what a listing shows (C1 controls, zero-width and
# bidirectional marks, line separators): `report\u202eblpi.ipynb` would read as another name.
_HIDDEN_CHARACTERS = r"\x80-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
_NOTEBOOK_MEMBER = re.compile(
    rf'notebooks/(?P<file>[^./\\:*?"<>|\x00-\x1f\x7f{_HIDDEN_CHARACTERS}]'
    rf'[^/\\:*?"<>|\x00-\x1f\x7f{_HIDDEN_CHARACTERS}]*\.ipynb)'
)
_NOT_IN_NOTEBOOK_NAME = re.compile(rf'[/\\:*?"<>|\x00-\x1f\x7f{_HIDDEN_CHARACTERS}]')
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MD5 = re.compile(r"[0-9a-f]{32}")

Progress = Callable[[int, int], None]
"""`(done, total)` members written or read."""


class CapsuleError(SpecError):
    """A capsule that cannot be written or is refused; the message names the member and why."""

    def __init__(self, message: str, *, source: str = "capsule", entry: str | None = None) -> None:
        super().__init__(message, source=source, entry=entry)


class _Cancelled(Exception):
    pass


# --------------------------------------------------------------------------------------------
# the manifest


@dataclass(frozen=True)
class CapsuleConda:
    """A conda archive of the capsule, for one platform (a noarch one is listed per platform,
    with the same `path`)."""

    platform: str
    path: str
    url: str
    """The lock's URL, without credentials."""
    sha256: str
    size: int
    md5: str | None = None
    """Known when the lock had it (conda's records keep it; the embedded lock does not),
    checked like the sha256 when the archive is unpacked."""


@dataclass(frozen=True)
class CapsulePypi:
    """A wheel of the capsule, for one platform."""

    platform: str
    path: str
    name: str
    version: str
    sha256: str
    size: int


@dataclass(frozen=True)
class CapsuleFile:
    """Another member (`lock.json`, a notebook): its size and sha256."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class MissingPackage:
    """A package of the environment that is not in the capsule, and why."""

    platform: str
    name: str
    why: str


@dataclass(frozen=True)
class Manifest:
    """`capsule.json`: what the capsule holds."""

    platforms: tuple[str, ...]
    lock_digest: str
    name: str | None = None
    notebooks: tuple[str, ...] = ()
    conda: tuple[CapsuleConda, ...] = ()
    pypi: tuple[CapsulePypi, ...] = ()
    missing: tuple[MissingPackage, ...] = ()
    files: tuple[CapsuleFile, ...] = ()
    """`lock.json` and the notebooks (the archives are in `conda` and `pypi`)."""
    tool_version: str = __version__
    format: str = CAPSULE_FORMAT
    version: int = CAPSULE_VERSION

    def members(self) -> dict[str, tuple[int, str]]:
        """Every member but the manifest: path -> (size, sha256), each path once."""
        out: dict[str, tuple[int, str]] = {}
        items: list[CapsuleFile | CapsuleConda | CapsulePypi] = [
            *self.files,
            *self.conda,
            *self.pypi,
        ]
        for item in items:
            out[item.path] = (item.size, item.sha256)
        return out

    @property
    def total_bytes(self) -> int:
        """What the members add up to, unpacked (the manifest left out)."""
        return sum(size for size, _ in self.members().values())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "version": self.version,
            "tool_version": self.tool_version,
            "name": self.name,
            "platforms": list(self.platforms),
            "lock_digest": self.lock_digest,
            "notebooks": list(self.notebooks),
            "files": [dataclasses.asdict(f) for f in self.files],
            "conda": [dataclasses.asdict(c) for c in self.conda],
            "pypi": [dataclasses.asdict(p) for p in self.pypi],
            "missing": [dataclasses.asdict(m) for m in self.missing],
        }

    def dumps(self) -> bytes:
        return (json.dumps(self.to_json(), sort_keys=True, indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, data: Any, *, source: str = MANIFEST_NAME) -> Manifest:
        """A manifest from its JSON, every field checked; CapsuleError when anything is off."""
        if not isinstance(data, Mapping):
            raise CapsuleError("the manifest is not a JSON object", source=source)
        if data.get("format") != CAPSULE_FORMAT:
            raise CapsuleError(
                f"not a capsule manifest: format is {str(data.get('format'))[:60]!r}, "
                f"expected {CAPSULE_FORMAT!r}",
                source=source,
            )
        if data.get("version") != CAPSULE_VERSION:
            raise CapsuleError(
                f"unsupported capsule version {str(data.get('version'))[:20]!r} (this "
                f"jupyter-repro reads version {CAPSULE_VERSION}); update jupyter-repro",
                source=source,
            )
        platforms = _strings(data.get("platforms"), "platforms", source)
        for platform in platforms:
            if not is_subdir(platform) or platform == "noarch":
                raise CapsuleError(f"{platform[:40]!r} is not a conda platform", source=source)
        if len(set(platforms)) != len(platforms):
            raise CapsuleError("'platforms' lists a platform twice", source=source)
        digest = data.get("lock_digest")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise CapsuleError("'lock_digest' is not a sha256", source=source)
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise CapsuleError("'name' must be a string or null", source=source)
        tool_version = data.get("tool_version")
        notebooks = tuple(_strings(data.get("notebooks", []), "notebooks", source))
        for path in notebooks:
            _check_member_name(path, source, kinds=("notebook",))
        files = tuple(
            CapsuleFile(
                path=_field(item, "path", str, where, source),
                sha256=_sha(item, where, source),
                size=_size(item, where, source),
            )
            for where, item in _objects(data.get("files", []), "files", source)
        )
        conda = tuple(
            CapsuleConda(
                platform=_platform(item, platforms, where, source),
                path=_field(item, "path", str, where, source),
                url=_field(item, "url", str, where, source),
                sha256=_sha(item, where, source),
                size=_size(item, where, source),
                md5=_md5(item, where, source),
            )
            for where, item in _objects(data.get("conda", []), "conda", source)
        )
        pypi = tuple(
            CapsulePypi(
                platform=_platform(item, platforms, where, source),
                path=_field(item, "path", str, where, source),
                name=_field(item, "name", str, where, source),
                version=_field(item, "version", str, where, source),
                sha256=_sha(item, where, source),
                size=_size(item, where, source),
            )
            for where, item in _objects(data.get("pypi", []), "pypi", source)
        )
        missing = tuple(
            MissingPackage(
                platform=_field(item, "platform", str, where, source),
                name=_field(item, "name", str, where, source),
                why=_field(item, "why", str, where, source),
            )
            for where, item in _objects(data.get("missing", []), "missing", source)
        )
        manifest = cls(
            platforms=tuple(platforms),
            lock_digest=digest,
            name=name,
            notebooks=notebooks,
            conda=conda,
            pypi=pypi,
            missing=missing,
            files=files,
            tool_version=tool_version if isinstance(tool_version, str) else "unknown",
        )
        _check_member_table(manifest, source)
        return manifest


def _strings(value: Any, where: str, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CapsuleError(f"'{where}' must be a list of strings", source=source)
    return value


def _objects(value: Any, where: str, source: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if not isinstance(value, list):
        raise CapsuleError(f"'{where}' must be a list", source=source)
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise CapsuleError(f"{where}[{index}] must be an object", source=source)
        yield f"{where}[{index}]", item


def _field(item: Mapping[str, Any], key: str, kind: type, where: str, source: str) -> Any:
    value = item.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CapsuleError(f"{where}: '{key}' must be a {kind.__name__}", source=source)
    return value


def _sha(item: Mapping[str, Any], where: str, source: str) -> str:
    value = _field(item, "sha256", str, where, source)
    if not _SHA256.fullmatch(value):
        raise CapsuleError(f"{where}: 'sha256' is not a lowercase hex sha256", source=source)
    return str(value)


def _md5(item: Mapping[str, Any], where: str, source: str) -> str | None:
    value = item.get("md5")
    if value is None:
        return None
    if not isinstance(value, str) or not _MD5.fullmatch(value):
        raise CapsuleError(f"{where}: 'md5' is not a lowercase hex md5", source=source)
    return value


def _size(item: Mapping[str, Any], where: str, source: str) -> int:
    value = _field(item, "size", int, where, source)
    if value < 0:
        raise CapsuleError(f"{where}: 'size' must not be negative", source=source)
    return int(value)


def _platform(item: Mapping[str, Any], platforms: Sequence[str], where: str, source: str) -> str:
    value = _field(item, "platform", str, where, source)
    if value not in platforms:
        raise CapsuleError(
            f"{where}: platform {value[:40]!r} is not one of the capsule's platforms",
            source=source,
        )
    return str(value)


def _check_member_name(name: str, source: str, kinds: Sequence[str] | None = None) -> str:
    """The kind of member `name` is (`manifest`, `lock`, `notebook`, `conda`, `wheel`);
    CapsuleError for any other name (absolute, `..`, unknown folders, odd characters)."""
    kind: str | None = None
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        name = name.encode("utf-8", "replace").decode("utf-8")  # shown, then refused below
        kinds = ()
    if name == MANIFEST_NAME:
        kind = "manifest"
    elif name == LOCK_NAME:
        kind = "lock"
    elif _NOTEBOOK_MEMBER.fullmatch(name) and len(name.encode()) <= 255:
        kind = "notebook"
    elif (match := _CONDA_MEMBER.fullmatch(name)) and is_subdir(match["subdir"]):
        kind = "conda"
    elif _WHEEL_MEMBER.fullmatch(name):
        kind = "wheel"
    if kind is None or (kinds is not None and kind not in kinds):
        shown = redact_text(name)[:200]
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[/\\]", name):
            why = "an absolute path"
        elif ".." in re.split(r"[/\\]", name):
            why = "a path that leaves the capsule ('..')"
        else:
            expected = (
                "capsule.json, lock.json, notebooks/<name>.ipynb, pkgs/<subdir>/<package "
                "file>, wheels/<file>.whl"
            )
            why = f"not a capsule member name (expected one of {expected})"
        raise CapsuleError(f"member {shown!r} is refused: {why}", source=source, entry=shown)
    return kind


def _check_member_table(manifest: Manifest, source: str) -> None:
    """Every listed path has a name of its kind, and one path means one file."""
    seen: dict[str, tuple[int, str]] = {}
    kinds = (
        [(f.path, ("lock", "notebook"), f.size, f.sha256) for f in manifest.files]
        + [(c.path, ("conda",), c.size, c.sha256) for c in manifest.conda]
        + [(p.path, ("wheel",), p.size, p.sha256) for p in manifest.pypi]
    )
    for path, allowed, size, sha256 in kinds:
        _check_member_name(path, source, kinds=allowed)
        if seen.setdefault(path, (size, sha256)) != (size, sha256):
            raise CapsuleError(
                f"the manifest lists {path!r} twice with different contents", source=source
            )
    listed = {f.path for f in manifest.files}
    if LOCK_NAME not in listed:
        raise CapsuleError("the manifest does not list lock.json", source=source)
    if set(manifest.notebooks) != listed - {LOCK_NAME}:
        raise CapsuleError(
            "the manifest's notebooks and the files it lists disagree", source=source
        )


# --------------------------------------------------------------------------------------------
# member names


def conda_member(package: LockedConda) -> str:
    """Where a conda archive goes: `pkgs/<subdir>/<filename>`."""
    return f"pkgs/{package.subdir}/{package.filename}"


def wheel_member(url: str) -> str:
    """Where a wheel goes: `wheels/<filename>` (the last segment of its URL, unquoted)."""
    return "wheels/" + unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def notebook_member(path: Path, taken: set[str]) -> str:
    """`notebooks/<file>.ipynb` for a notebook, its name made safe and made unique (`-1`)."""
    stem = _NOT_IN_NOTEBOOK_NAME.sub("_", path.stem).lstrip(".") or "notebook"
    stem = stem[:200]
    candidate, number = f"notebooks/{stem}.ipynb", 0
    while candidate in taken:
        number += 1
        candidate = f"notebooks/{stem}-{number}.ipynb"
    taken.add(candidate)
    return candidate


# --------------------------------------------------------------------------------------------
# manifest against lock


def check_manifest_against_lock(manifest: Manifest, lock: Lock, *, source: str = "capsule") -> None:
    """CapsuleError unless the manifest and the lock describe the same packages.

    The lock's digest is the manifest's; the platforms are the same; every archive and wheel
    of the manifest is one the lock names for that platform (URL, sha256, member path); every
    package the lock names is packed or listed as missing for that platform.
    """
    if lock.digest() != manifest.lock_digest:
        raise CapsuleError(
            "the lock is not the one the manifest names (lock digest differs)", source=source
        )
    if set(lock.platform_names) != set(manifest.platforms):
        raise CapsuleError(
            f"the manifest is for {', '.join(manifest.platforms) or 'no platform'} but the lock "
            f"for {', '.join(lock.platform_names)}",
            source=source,
        )
    missing = {(m.platform, m.name) for m in manifest.missing}
    packed_conda: set[tuple[str, str]] = set()
    # The lock's packages by (platform, URL as the manifest writes it), first one kept.
    by_url: dict[tuple[str, str], LockedConda] = {}
    for part in lock.platforms:
        for p in part.conda:
            by_url.setdefault((part.platform, redact_url(p.url)), p)
    for entry in manifest.conda:
        package = by_url.get((entry.platform, entry.url))
        if package is None:
            raise CapsuleError(
                f"{entry.path} ({entry.url}) is not in the lock for {entry.platform}",
                source=source,
                entry=entry.path,
            )
        if package.sha256 != entry.sha256:
            raise CapsuleError(
                f"{entry.path}: the manifest's sha256 {entry.sha256} is not the lock's "
                f"{package.sha256} for {package.dist_name} ({entry.platform})",
                source=source,
                entry=entry.path,
            )
        if conda_member(package) != entry.path:
            raise CapsuleError(
                f"{entry.path} is not where {package.dist_name} belongs ({conda_member(package)})",
                source=source,
                entry=entry.path,
            )
        packed_conda.add((entry.platform, package.url))
    packed_pypi: set[tuple[str, str, str]] = set()
    for wheel in manifest.pypi:
        wheel_part = lock.platform(wheel.platform)
        assert wheel_part is not None
        matches = [
            p
            for p in wheel_part.pypi
            if p.name == wheel.name and p.version == wheel.version and p.sha256 == wheel.sha256
        ]
        if not matches or matches[0].url is None or wheel_member(matches[0].url) != wheel.path:
            raise CapsuleError(
                f"{wheel.path} ({wheel.name} {wheel.version}, sha256 {wheel.sha256}) is not in "
                f"the lock for {wheel.platform}",
                source=source,
                entry=wheel.path,
            )
        packed_pypi.add((wheel.platform, wheel.name, wheel.version))
    for part in lock.platforms:
        for package in part.conda:
            key = (part.platform, package.url)
            if key not in packed_conda and (part.platform, package.name) not in missing:
                raise CapsuleError(
                    f"the lock names {package.dist_name} for {part.platform} but the capsule "
                    "neither holds it nor lists it as missing",
                    source=source,
                    entry=package.dist_name,
                )
        for pypi in part.pypi:
            key3 = (part.platform, pypi.name, pypi.version)
            if key3 not in packed_pypi and (part.platform, pypi.name) not in missing:
                raise CapsuleError(
                    f"the lock names pip package {pypi.name} {pypi.version} for {part.platform} "
                    "but the capsule neither holds it nor lists it as missing",
                    source=source,
                    entry=pypi.name,
                )


# --------------------------------------------------------------------------------------------
# writing


def _lock_bytes(lock: Lock) -> bytes:
    return (json.dumps(embedded_lock(lock), sort_keys=True, indent=1) + "\n").encode()


def _mtime(lock: Lock) -> int:
    if lock.as_of is None:
        return 0
    return max(0, int(lock.as_of.astimezone(_dt.timezone.utc).timestamp()))


def _tarinfo(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


class _CountingWriter:
    """What tarfile writes into: forwards to the zstd stream, knows its position."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self._position = 0

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._target.write(view)
        self._position += len(view)
        return len(view)

    def tell(self) -> int:
        return self._position


class _HashingReader:
    """Reads a file for tarfile, hashing what it hands over; stops when told to."""

    def __init__(self, stream: BinaryIO, cancel: threading.Event | None) -> None:
        self._stream = stream
        self._cancel = cancel
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        if self._cancel is not None and self._cancel.is_set():
            raise _Cancelled
        data = self._stream.read(size)
        self.sha256.update(data)
        return data


@dataclass(frozen=True)
class _Source:
    """A member to write: its bytes, or a file to stream, and what it must hash to."""

    path: str
    size: int
    sha256: str
    data: bytes | None = None
    file: Path | None = None
    what: str = ""


def write_capsule(
    path: str | os.PathLike[str],
    *,
    lock: Lock,
    notebooks: Sequence[Path] = (),
    conda: Sequence[tuple[LockedConda, Path, str]] = (),
    pypi: Sequence[tuple[str, LockedPypi, Path]] = (),
    missing: Sequence[MissingPackage | Mapping[str, str]] = (),
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Manifest:
    """Write a capsule to `path` (atomically: a temporary file beside it, then renamed).

    `conda` is `(package, archive file, platform)` for each package of each platform (a noarch
    archive is given once per platform and stored once); `pypi` is `(platform, package, wheel
    file)`; `missing` lists what could not be packed. `lock` must hold exactly the platforms
    packed, with a sha256 for every package given. Every file is checked while it is written:
    a file whose sha256 or size is not the lock's is a CapsuleError naming it, and nothing is
    left at `path`. `cancel` stops the writing (CapsuleError) when set.
    """
    target = Path(path)
    mtime = _mtime(lock)
    sources: dict[str, _Source] = {}

    def add(source: _Source) -> None:
        known = sources.get(source.path)
        if known is None:
            sources[source.path] = source
        elif (known.sha256, known.size) != (source.sha256, source.size):
            raise CapsuleError(
                f"two different files would be {source.path} ({known.what} and {source.what}); "
                "pack them separately",
                source=str(target),
                entry=source.path,
            )

    lock_data = _lock_bytes(lock)
    # The lock as a reader will see it: the embedded form names a package by its channel,
    # subdir and file name, so the manifest names it by the URL that gives.
    try:
        written = parse_embedded_lock(json.loads(lock_data), source=f"{target}: {LOCK_NAME}")
    except LockError as error:
        raise CapsuleError(f"the lock cannot be packed: {error}", source=str(target)) from None
    add(_Source(LOCK_NAME, len(lock_data), _sha256(lock_data), data=lock_data, what="the lock"))
    files = [CapsuleFile(LOCK_NAME, sources[LOCK_NAME].sha256, len(lock_data))]
    taken: set[str] = set()
    notebook_paths = []
    for notebook in notebooks:
        data = _read_notebook(Path(notebook), str(target))
        member = notebook_member(Path(notebook), taken)
        add(_Source(member, len(data), _sha256(data), data=data, what=str(notebook)))
        files.append(CapsuleFile(member, _sha256(data), len(data)))
        notebook_paths.append(member)
    conda_entries = []
    for package, file, platform in conda:
        if lock.platform(platform) is None:
            raise CapsuleError(
                f"{package.dist_name} is given for {platform}, which the lock does not have",
                source=str(target),
            )
        if not package.sha256:
            raise CapsuleError(
                f"{package.dist_name} has no sha256 in the lock, so it cannot be checked",
                source=str(target),
                entry=package.dist_name,
            )
        size = _file_size(file, package.dist_name, str(target))
        member = conda_member(package)
        _check_member_name(member, str(target), kinds=("conda",))
        add(_Source(member, size, package.sha256, file=Path(file), what=redact_url(package.url)))
        conda_entries.append(
            CapsuleConda(
                platform, member, _embedded_url(package), package.sha256, size, package.md5
            )
        )
    pypi_entries = []
    for platform, wheel, file in pypi:
        if not wheel.sha256 or not wheel.url:
            raise CapsuleError(
                f"pip package {wheel.name} {wheel.version} has no URL or sha256 in the lock",
                source=str(target),
                entry=wheel.name,
            )
        size = _file_size(file, f"{wheel.name} {wheel.version}", str(target))
        member = wheel_member(wheel.url)
        _check_member_name(member, str(target), kinds=("wheel",))
        add(_Source(member, size, wheel.sha256, file=Path(file), what=redact_url(wheel.url)))
        pypi_entries.append(
            CapsulePypi(platform, member, wheel.name, wheel.version, wheel.sha256, size)
        )
    missing_entries = tuple(
        m if isinstance(m, MissingPackage) else MissingPackage(m["platform"], m["name"], m["why"])
        for m in missing
    )
    manifest = Manifest(
        platforms=tuple(lock.platform_names),
        lock_digest=written.digest(),
        name=lock.name,
        notebooks=tuple(sorted(notebook_paths)),
        conda=tuple(sorted(conda_entries, key=lambda c: (c.platform, c.path))),
        pypi=tuple(sorted(pypi_entries, key=lambda p: (p.platform, p.path))),
        missing=tuple(sorted(set(missing_entries), key=lambda m: (m.platform, m.name, m.why))),
        files=tuple(sorted(files, key=lambda f: f.path)),
    )
    check_manifest_against_lock(manifest, written, source=str(target))
    manifest_data = manifest.dumps()
    ordered = [
        _Source(MANIFEST_NAME, len(manifest_data), _sha256(manifest_data), data=manifest_data),
        *(sources[name] for name in sorted(sources)),
    ]
    _write_atomically(target, ordered, mtime, progress, cancel)
    return manifest


def _embedded_url(package: LockedConda) -> str:
    """The package's URL as the lock's embedded form gives it back, without credentials."""
    return redact_url(f"{package.channel.rstrip('/')}/{package.subdir}/{package.filename}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_notebook(path: Path, source: str) -> bytes:
    if path.suffix != ".ipynb":
        raise CapsuleError(f"{path} is not a notebook (.ipynb)", source=source)
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as error:
        raise CapsuleError(
            f"cannot read {path}: {error.strerror or error}", source=source
        ) from None
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise CapsuleError(
            f"{path} is over {MAX_NOTEBOOK_BYTES >> 20} MB; strip its outputs first", source=source
        )
    return data


def _file_size(file: Path, what: str, source: str) -> int:
    try:
        status = os.stat(file)
    except OSError as error:
        raise CapsuleError(
            f"cannot read the file of {what} ({file}): {error.strerror or error}", source=source
        ) from None
    if not stat.S_ISREG(status.st_mode):
        raise CapsuleError(f"the file of {what} ({file}) is not a regular file", source=source)
    return status.st_size


def _write_atomically(
    target: Path,
    members: Sequence[_Source],
    mtime: int,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> None:
    import tempfile

    import zstandard

    folder = target.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as raw:
            # threads=-1: every thread count >= 1 writes the same bytes, so the output does
            # not depend on the machine's CPUs (0, the single-threaded mode, would differ).
            compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1)
            with compressor.stream_writer(raw, closefd=False) as compressed:
                sink = _CountingWriter(compressed)
                with tarfile.open(
                    fileobj=cast(IO[bytes], sink),
                    mode="w",
                    format=tarfile.PAX_FORMAT,
                    encoding="utf-8",
                ) as tar:
                    tar.copybufsize = _CHUNK  # type: ignore[attr-defined]  # not in typeshed
                    for done, member in enumerate(members):
                        _add_member(tar, member, mtime, target, cancel)
                        if progress is not None:
                            progress(done + 1, len(members))
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(temporary, 0o644 & ~current_umask())
        os.replace(temporary, target)
    except _Cancelled:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise CapsuleError("cancelled; no capsule was written", source=str(target)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _add_member(
    tar: tarfile.TarFile,
    member: _Source,
    mtime: int,
    target: Path,
    cancel: threading.Event | None,
) -> None:
    info = _tarinfo(member.path, member.size, mtime)
    if member.data is not None:
        tar.addfile(info, io.BytesIO(member.data))
        return
    assert member.file is not None
    try:
        stream = open(member.file, "rb")  # noqa: SIM115 - closed below
    except OSError as error:
        raise CapsuleError(
            f"cannot read {member.file}: {error.strerror or error}", source=str(target)
        ) from None
    with stream:
        reader = _HashingReader(stream, cancel)
        try:
            tar.addfile(info, cast(IO[bytes], reader))
        except OSError as error:
            if "unexpected end of data" not in str(error):
                raise
            raise CapsuleError(
                f"{member.what} ({member.file}) became shorter while it was packed",
                source=str(target),
                entry=member.path,
            ) from None
    digest = reader.sha256.hexdigest()
    if digest != member.sha256:
        raise CapsuleError(
            f"{member.what} does not match the lock: its sha256 is {digest}, the lock says "
            f"{member.sha256} (the file was changed or truncated); no capsule was written",
            source=str(target),
            entry=member.path,
        )


# --------------------------------------------------------------------------------------------
# reading


class _SafeTarInfo(tarfile.TarInfo):
    """Refuses the header kinds tarfile would read whole into memory when they are large,
    and sparse files, before tarfile reads them."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> Any:
        header_types = (
            tarfile.GNUTYPE_LONGNAME,
            tarfile.GNUTYPE_LONGLINK,
            tarfile.XHDTYPE,
            tarfile.XGLTYPE,
            tarfile.SOLARIS_XHDTYPE,
        )
        if self.type in header_types and self.size > _MAX_HEADER_BYTES:
            raise CapsuleError(
                f"an extended tar header of {self.size:,} bytes is refused (over "
                f"{_MAX_HEADER_BYTES:,})"
            )
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise CapsuleError(f"member {self.name[:200]!r} is refused: a sparse file")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


@contextlib.contextmanager
def _open_raw(path: Path, source: str) -> Iterator[BinaryIO]:
    """The capsule file, opened for reading (CapsuleError when it cannot be)."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as error:
        raise CapsuleError(
            f"cannot read the capsule: {error.strerror or error}", source=source
        ) from None
    with raw:
        yield raw


@contextlib.contextmanager
def _open_stream(path: Path, bufsize: int = _CHUNK) -> Iterator[tarfile.TarFile]:
    """The capsule's tar, read as a stream (zstd or plain, told apart by the magic bytes)."""
    source = str(path)
    with _open_raw(path, source) as raw, _tar_stream(raw, source, bufsize) as tar:
        yield tar


@contextlib.contextmanager
def _tar_stream(raw: BinaryIO, source: str, bufsize: int = _CHUNK) -> Iterator[tarfile.TarFile]:
    """The tar in the open capsule file `raw`, from its current position."""
    import zstandard

    try:
        start = raw.tell()
        head = raw.read(4)
        raw.seek(start)
    except OSError as error:
        raise CapsuleError(
            f"cannot read the capsule: {error.strerror or error}", source=source
        ) from None
    stream: Any = raw
    reader = None
    if head == ZSTD_MAGIC:
        reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=False)
        stream = reader
    try:
        try:
            tar = tarfile.open(  # noqa: SIM115 - closed by the `with` below
                fileobj=stream,
                mode="r|",
                tarinfo=_SafeTarInfo,
                bufsize=bufsize,
                encoding="utf-8",
            )
        except (tarfile.TarError, zstandard.ZstdError, EOFError) as error:
            # A capsule cut short in its first block reads as no tar at all.
            what = (
                "zstd-compressed data that is not a tar (a capsule cut short, or not a capsule)"
                if reader
                else "neither zstd nor tar"
            )
            raise CapsuleError(
                f"not a capsule: {what} ({_first_line(error)})", source=source
            ) from None
        except CapsuleError as error:
            raise CapsuleError(error.message, source=source) from None
        with tar:
            try:
                yield tar
            except (tarfile.TarError, zstandard.ZstdError, EOFError) as error:
                raise CapsuleError(
                    f"the capsule is damaged or truncated: {_first_line(error)}", source=source
                ) from None
    finally:
        if reader is not None:
            reader.close()


def _first_line(error: BaseException) -> str:
    lines = redact_text(str(error)).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _next(tar: tarfile.TarFile, source: str) -> tarfile.TarInfo | None:
    import zstandard

    try:
        return tar.next()
    except CapsuleError as error:
        raise CapsuleError(error.message, source=source) from None
    except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError) as error:
        raise CapsuleError(
            f"the capsule is damaged or truncated: {_first_line(error)}", source=source
        ) from None


def _check_member(info: tarfile.TarInfo, source: str) -> str:
    """The member's kind; CapsuleError for anything but a regular file with a capsule name."""
    kind = _check_member_name(info.name, source)
    if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        what = (
            "a symbolic link"
            if info.issym()
            else "a hard link"
            if info.islnk()
            else "a folder"
            if info.isdir()
            else "a device or FIFO"
            if info.isdev()
            else f"of tar type {info.type!r}"
        )
        raise CapsuleError(
            f"member {info.name!r} is refused: it is {what}, not a regular file",
            source=source,
            entry=info.name,
        )
    return kind


def _read_small(tar: tarfile.TarFile, info: tarfile.TarInfo, limit: int, source: str) -> bytes:
    if info.size > limit:
        raise CapsuleError(
            f"{info.name} is {info.size:,} bytes, over the limit of {limit:,}",
            source=source,
            entry=info.name,
        )
    stream = tar.extractfile(info)
    assert stream is not None
    data = stream.read(info.size + 1)
    if len(data) != info.size:
        raise CapsuleError(f"{info.name} is truncated", source=source, entry=info.name)
    return data


def _parse_json(data: bytes, what: str, source: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:
        raise CapsuleError(f"{what} is not valid JSON ({error})", source=source) from None


def _read_head(tar: tarfile.TarFile, source: str) -> tuple[Manifest, Lock, bytes]:
    """The manifest and the lock (the first two members), checked against each other."""
    first = _next(tar, source)
    if first is None:
        raise CapsuleError("not a capsule: the archive is empty", source=source)
    if first.name != MANIFEST_NAME:
        raise CapsuleError(
            f"not a capsule: the first member is {redact_text(first.name)[:200]!r}, "
            f"expected {MANIFEST_NAME}",
            source=source,
        )
    _check_member(first, source)
    manifest_data = _read_small(tar, first, MAX_MANIFEST_BYTES, source)
    second = _next(tar, source)
    if second is None or second.name != LOCK_NAME:
        shown = "nothing" if second is None else repr(redact_text(second.name)[:200])
        raise CapsuleError(
            f"the member after the manifest is {shown}, expected {LOCK_NAME}", source=source
        )
    _check_member(second, source)
    lock_data = _read_small(tar, second, MAX_LOCK_BYTES, source)
    # The same bytes parse and check the same: a capsule planned, then restored (or restored
    # again) is not parsed again (both are immutable once made).
    # (By where it was read too: the lock names it in messages.)
    key = hashlib.sha256(
        source.encode("utf-8", "surrogateescape") + b"\0" + manifest_data + b"\0" + lock_data
    ).hexdigest()
    known = _HEADS.get(key)
    if known is not None:
        return known[0], known[1], lock_data
    manifest = Manifest.from_json(
        _parse_json(manifest_data, MANIFEST_NAME, source), source=f"{source}: {MANIFEST_NAME}"
    )
    expected = {f.path: f for f in manifest.files}[LOCK_NAME]
    if (len(lock_data), _sha256(lock_data)) != (expected.size, expected.sha256):
        raise CapsuleError(
            f"{LOCK_NAME} does not match the manifest (size or sha256 differs)",
            source=source,
            entry=LOCK_NAME,
        )
    try:
        lock = parse_embedded_lock(
            _parse_json(lock_data, LOCK_NAME, source), source=f"{source}: {LOCK_NAME}"
        )
    except LockError as error:
        raise CapsuleError(f"its lock cannot be read: {error}", source=source) from None
    check_manifest_against_lock(manifest, lock, source=source)
    _HEADS.put(key, (manifest, lock))
    return manifest, lock, lock_data


_HEADS_KEPT = 8
_HEADS: Memo[str, tuple[Manifest, Lock]] = Memo(_HEADS_KEPT)
"""Heads (manifest, lock) checked already, by the sha256 of their bytes; the oldest goes."""


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """The capsule's manifest, checked against its lock (only the head of the file is read)."""
    source = str(path)
    with _open_stream(Path(path), bufsize=_HEAD_CHUNK) as tar:
        manifest, _lock, _data = _read_head(tar, source)
    return manifest


def read_capsule_head(path: str | os.PathLike[str]) -> tuple[Manifest, Lock]:
    """The capsule's manifest and its lock, checked against each other (only the head of
    the file is read): what a restore plans from before anything is extracted.

    A file read before and not changed since (same inode, size, mtime and ctime, the last
    change well before that read) is not read again: a server plans and restores the same
    capsule more than once. A restore reads the head again anyway, and refuses to go on
    when the lock it reads is not the one it planned from."""
    source = str(path)
    with _open_raw(Path(path), source) as raw:
        before = os.fstat(raw.fileno())
        key = (source, *_stat_key(before)) if stat.S_ISREG(before.st_mode) else None
        known = _FILE_HEADS.get(key) if key is not None and STAT_KEYS_TRUSTED else None
        if known is not None:
            return known
        started = time.time_ns()
        with _tar_stream(raw, source, _HEAD_CHUNK) as tar:
            manifest, lock, _data = _read_head(tar, source)
        after = os.fstat(raw.fileno())
    # Not when the file changed a moment before it was read (a change within the
    # timestamps' resolution could leave every field as it was), nor while it was read.
    if (
        key is not None
        and STAT_KEYS_TRUSTED
        and started - max(before.st_mtime_ns, before.st_ctime_ns) > _SETTLED_NS
        and _stat_key(after) == _stat_key(before)
    ):
        _FILE_HEADS.put(key, (manifest, lock))
    return manifest, lock


def _stat_key(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


_FILE_HEADS: Memo[tuple[Any, ...], tuple[Manifest, Lock]] = Memo(_HEADS_KEPT)
"""Heads read by `read_capsule_head`, by the file's path and stat."""
_SETTLED_NS = 2_000_000_000
_HEAD_CHUNK = 1 << 16
"""What a head-only read decompresses at a time: the head and the notebooks come first."""


@dataclass(frozen=True)
class ExtractedCapsule:
    """A capsule unpacked into `root`, every file checked."""

    manifest: Manifest
    lock: Lock
    """The lock as the capsule has it (URLs of the original channels)."""
    root: Path
    notebooks: list[Path] = field(default_factory=list)
    conda_paths: dict[str, Path] = field(default_factory=dict)
    """The lock's package URL -> the extracted archive (noarch ones shared by platforms)."""
    wheels_dir: Path = Path()
    """The folder of the wheels (always there, maybe empty): pip's `--find-links`."""
    wheel_paths: dict[tuple[str, str], Path] = field(default_factory=dict)
    """(platform, pip package name) -> the extracted wheel."""
    conda_md5: dict[str, str] = field(default_factory=dict)
    """The lock's package URL -> the md5 of its archive: hashed while it was unpacked (beside
    the sha256 checked against the manifest), else the manifest's (checked when it was)."""


class _Folders:
    """Folders under the extraction root, created by us and opened without following links."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._use_fds = os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd
        self._fds: dict[str, int] = {}
        if self._use_fds:
            self._fds[""] = os.open(root, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)

    def _folder(self, relative: str) -> int | None:
        if not self._use_fds:
            (self.root / relative).mkdir(parents=True, exist_ok=True)
            return None
        if relative in self._fds:
            return self._fds[relative]
        parent, _, name = relative.rpartition("/")
        parent_fd = self._folder(parent)
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent_fd)
        fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=parent_fd)
        self._fds[relative] = fd
        return fd

    def create(self, relative: str) -> BinaryIO:
        """A new file (never an existing one, never through a link) opened for writing."""
        folder, _, name = relative.rpartition("/")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
        fd_folder = self._folder(folder)
        if fd_folder is None:
            fd = os.open(self.root / relative, flags, 0o644)
        else:
            fd = os.open(name, flags, 0o644, dir_fd=fd_folder)
        return os.fdopen(fd, "wb")

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def _prepare_root(dest: Path, source: str) -> bool:
    """Make `dest` (a new folder, or an empty one); True when it was created here."""
    try:
        status = os.lstat(dest)
    except FileNotFoundError:
        try:
            os.mkdir(dest, 0o700)
        except OSError as error:
            raise CapsuleError(
                f"cannot create {dest}: {error.strerror or error}", source=source
            ) from None
        return True
    if not stat.S_ISDIR(status.st_mode):
        raise CapsuleError(f"{dest} exists and is not a folder", source=source)
    if any(dest.iterdir()):
        raise CapsuleError(f"{dest} is not empty; extract into a new folder", source=source)
    return False


def _clear(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    with contextlib.suppress(OSError):
        for child in dest.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def extract_capsule(
    path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    platform: str | None = None,
    skip: Collection[str] = (),
    check_all: bool = True,
) -> ExtractedCapsule:
    """Unpack the capsule at `path` into `dest` (a new or empty folder), checking everything.

    With `platform`, only what a restore on that platform needs is extracted: the lock, the
    notebooks, that platform's archives and wheels, less the packages whose lock URLs are in
    `skip` (the package cache holds them). The rest is still read and checked (a changed
    byte anywhere refuses the capsule) but not written; with `check_all=False` (a capsule
    whose every member was checked before, see `restore/checked_capsules.py`) it is not read at all:
    reading stops once everything needed is there.

    Refuses (CapsuleError naming the member and the problem, with `dest` left as it was) a
    file that is not a capsule, a manifest that disagrees with the lock, a member that is not a
    regular file, has a name outside the layout, is not in the manifest or comes twice, is
    larger than `max_member_bytes` or makes the total exceed `max_bytes`, or whose size or
    sha256 is not the manifest's; and a member of the manifest that is not there.
    """
    source = str(path)
    root = Path(dest)
    created = _prepare_root(root, source)
    folders: _Folders | None = None
    try:
        folders = _Folders(root)
        with _open_stream(Path(path)) as tar:
            manifest, lock, lock_data = _read_head(tar, source)
            expected = manifest.members()
            declared = sum(size for size, _ in expected.values())
            if declared > max_bytes:
                raise CapsuleError(
                    f"the capsule unpacks to {declared:,} bytes, over the limit of {max_bytes:,}",
                    source=source,
                )
            for member, (size, _) in expected.items():
                limit = _limit_for(member, manifest, max_member_bytes)
                if size > limit:
                    raise CapsuleError(
                        f"{member} is {size:,} bytes, over the limit of {limit:,} per "
                        + ("notebook" if limit < max_member_bytes else "member"),
                        source=source,
                        entry=member,
                    )
            with folders.create(LOCK_NAME) as out:
                out.write(lock_data)
            seen = {LOCK_NAME}
            only = None if platform is None else _members_for(manifest, lock, platform, skip)
            wanted = set(expected) if only is None else {LOCK_NAME, *only} & set(expected)
            md5s: dict[str, str] = {}
            manifest_md5 = {c.path: c.md5 for c in manifest.conda if c.md5}
            total = len(lock_data)
            # The whole capsule is read to its end (extra members are refused) unless only
            # some members are wanted, unchecked: then reading stops once they are all there.
            check_all = check_all or only is None
            count = len(expected) if check_all else len(wanted)
            if progress is not None:
                progress(1, count)
            while (check_all or not wanted <= seen) and (info := _next(tar, source)) is not None:
                _check_member(info, source)
                if info.name not in expected:
                    raise CapsuleError(
                        f"member {info.name!r} is not in the manifest",
                        source=source,
                        entry=info.name,
                    )
                if info.name in seen:
                    raise CapsuleError(
                        f"member {info.name!r} comes twice", source=source, entry=info.name
                    )
                if info.name not in wanted and not check_all:
                    continue  # not needed and not checked: never written, so never used
                size, sha256 = expected[info.name]
                if info.size > max_member_bytes or total + info.size > max_bytes:
                    raise CapsuleError(
                        f"member {info.name!r} ({info.size:,} bytes) is over the size limit",
                        source=source,
                        entry=info.name,
                    )
                if info.size != size:
                    raise CapsuleError(
                        f"{info.name} has {info.size:,} bytes, the manifest says {size:,}",
                        source=source,
                        entry=info.name,
                    )
                md5s[info.name] = _extract_member(
                    tar, info, folders if info.name in wanted else None, sha256, source, cancel
                )
                known_md5 = manifest_md5.get(info.name)
                if known_md5 is not None and md5s[info.name] != known_md5:
                    raise CapsuleError(
                        f"{info.name} was changed: its md5 is {md5s[info.name]}, the manifest "
                        f"says {known_md5}; the capsule is refused",
                        source=source,
                        entry=info.name,
                    )
                seen.add(info.name)
                total += info.size
                if progress is not None:
                    progress(len(seen), count)
            absent = sorted((set(expected) if check_all else wanted) - seen)
            written = wanted & seen
            if absent:
                raise CapsuleError(
                    f"the capsule lacks {', '.join(absent[:5])}"
                    + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
                    + " (the manifest lists them)",
                    source=source,
                )
    except _Cancelled:
        if folders is not None:
            folders.close()
        _clear(root, created)
        raise CapsuleError("cancelled; nothing was kept", source=source) from None
    except BaseException:
        if folders is not None:
            folders.close()
        _clear(root, created)
        raise
    folders.close()
    wheels = root / "wheels"
    wheels.mkdir(exist_ok=True)
    conda_paths: dict[str, Path] = {}
    conda_md5: dict[str, str] = {}
    for part in lock.platforms:
        for package in part.conda:
            member = conda_member(package)
            if member in written:
                conda_paths[package.url] = root / member
                conda_md5[package.url] = md5s[member]
            elif member in manifest_md5:
                conda_md5[package.url] = manifest_md5[member]
    wheel_paths = {(w.platform, w.name): root / w.path for w in manifest.pypi if w.path in written}
    return ExtractedCapsule(
        manifest=manifest,
        lock=lock,
        root=root,
        notebooks=[root / name for name in manifest.notebooks if name in written],
        conda_paths=conda_paths,
        wheels_dir=wheels,
        wheel_paths=wheel_paths,
        conda_md5=conda_md5,
    )


def unpacked_for(manifest: Manifest, lock: Lock, platform: str, skip: Collection[str]) -> set[str]:
    """The archives and wheels a restore on `platform` needs from the capsule, less the
    packages whose lock URLs are in `skip` (the package cache holds them)."""
    return _members_for(manifest, lock, platform, skip) - set(manifest.notebooks)


def read_capsule_notebooks(
    path: str | os.PathLike[str],
    *,
    stream: BinaryIO | None = None,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
) -> tuple[Manifest, Lock, tuple[tuple[str, bytes], ...]]:
    """The capsule's manifest, lock and notebooks (member name, bytes), each notebook
    checked against the manifest, nothing written: for a restore that needs nothing else
    from a capsule whose every member was checked before (`extract_capsule` with
    `check_all=False`, minus the folder). Reading stops after the last notebook, which a
    capsule keeps right after its lock (members are sorted: `notebooks/` before `pkgs/`).
    `stream`: the capsule file already open (read from its start), else `path` is opened."""
    source = str(path)
    with (
        (
            contextlib.nullcontext(stream) if stream is not None else _open_raw(Path(path), source)
        ) as raw,
        _tar_stream(raw, source, _HEAD_CHUNK) as tar,
    ):
        manifest, lock, _data = _read_head(tar, source)
        expected = manifest.members()
        wanted = set(manifest.notebooks)
        found: dict[str, bytes] = {}
        seen = {LOCK_NAME}
        while not wanted <= found.keys() and (info := _next(tar, source)) is not None:
            _check_member(info, source)
            if info.name not in expected:
                raise CapsuleError(
                    f"member {info.name!r} is not in the manifest", source=source, entry=info.name
                )
            if info.name in seen:
                raise CapsuleError(
                    f"member {info.name!r} comes twice", source=source, entry=info.name
                )
            seen.add(info.name)
            if info.name not in wanted:
                continue  # an archive before a notebook: not a capsule of ours, but valid
            size, sha256 = expected[info.name]
            if info.size != size:
                raise CapsuleError(
                    f"{info.name} has {info.size:,} bytes, the manifest says {size:,}",
                    source=source,
                    entry=info.name,
                )
            data = _read_small(tar, info, _limit_for(info.name, manifest, max_member_bytes), source)
            if _sha256(data) != sha256:
                raise CapsuleError(
                    f"{info.name} was changed: its sha256 is {_sha256(data)}, the manifest "
                    f"says {sha256}; the capsule is refused",
                    source=source,
                    entry=info.name,
                )
            found[info.name] = data
    absent = sorted(wanted - found.keys())
    if absent:
        raise CapsuleError(
            f"the capsule lacks {', '.join(absent[:5])} (the manifest lists them)", source=source
        )
    return manifest, lock, tuple((name, found[name]) for name in sorted(manifest.notebooks))


def _limit_for(member: str, manifest: Manifest, max_member_bytes: int) -> int:
    """The most bytes `member` may have: a notebook is read into memory (and parsed) to be
    written, so it gets pack's limit for notebooks, whatever the archives may have."""
    if member in manifest.notebooks:
        return min(MAX_NOTEBOOK_BYTES, max_member_bytes)
    return max_member_bytes


def _members_for(manifest: Manifest, lock: Lock, platform: str, skip: Collection[str]) -> set[str]:
    """The members a restore on `platform` reads (see `extract_capsule`)."""
    wanted = set(manifest.notebooks)
    part = lock.platform(platform)
    if part is not None:
        wanted.update(conda_member(p) for p in part.conda if p.url not in skip)
    wanted.update(w.path for w in manifest.pypi if w.platform == platform)
    return wanted


class _Discard(io.RawIOBase):
    """Where a member that is checked but not needed is written."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def _extract_member(
    tar: tarfile.TarFile,
    info: tarfile.TarInfo,
    folders: _Folders | None,
    sha256: str,
    source: str,
    cancel: threading.Event | None,
) -> str:
    """Write one member (only check it, without `folders`), checking its sha256; returns its
    md5 (hashed on the way)."""
    stream = tar.extractfile(info)
    assert stream is not None
    digest = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    left = info.size
    with folders.create(info.name) if folders is not None else _Discard() as out:
        while left > 0:
            if cancel is not None and cancel.is_set():
                raise _Cancelled
            chunk = stream.read(min(_CHUNK, left))
            if not chunk:
                raise CapsuleError(f"{info.name} is truncated", source=source, entry=info.name)
            digest.update(chunk)
            md5.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    if digest.hexdigest() != sha256:
        raise CapsuleError(
            f"{info.name} was changed: its sha256 is {digest.hexdigest()}, the manifest (and "
            f"the lock) say {sha256}; the capsule is refused",
            source=source,
            entry=info.name,
        )
    return md5.hexdigest()


def is_capsule(path_or_bytes: str | os.PathLike[str] | bytes) -> bool:
    """Whether this looks like a capsule: a (zstd-compressed) tar whose first member is
    `capsule.json`. Reads a few KB; never raises."""
    try:
        if isinstance(path_or_bytes, bytes):
            head = path_or_bytes[: 1 << 20]
        else:
            with open(path_or_bytes, "rb") as stream:
                # A zstd block is at most 128 KB: enough for the first one whatever it holds.
                head = stream.read(1 << 20)
        if head.startswith(ZSTD_MAGIC):
            import zstandard

            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(head))
            try:
                block = reader.read(512)
            except zstandard.ZstdError:
                return False
        else:
            block = head[:512]
        return (
            len(block) == 512
            and block[:100].rstrip(b"\0") == MANIFEST_NAME.encode()
            and block[257:262] == b"ustar"
        )
    except OSError:
        return False
