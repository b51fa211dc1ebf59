"""What a package would write: every path its `info/paths.json` lists must stay in the prefix.

rattler (0.28) links what an archive's `paths.json` lists as it is: an absolute path makes it
panic in a thread pool, which aborts the whole process (the Jupyter server with it), and a
path with `..` writes outside the prefix, over files that are there. A capsule's archives,
and a lock's, come from whoever made them; their sha256 only proves they are the ones the
lock names. So before rattler sees them, each package's paths are checked here: relative, no
`..`, and never below a symbolic link that a package of the same install creates (a link
`share/x -> /etc` followed by a file `share/x/y` would write `/etc/y`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..memo import STAT_KEYS_TRUSTED, Memo
from .errors import RestoreError

_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafePackage(RestoreError):
    """A package whose files would land outside the prefix: nothing was installed."""


@dataclass(frozen=True)
class PackagePaths:
    """What one package writes, as far as the checks need it."""

    problem: str | None
    """Why it is refused (a path leaving the prefix, members named twice), else None."""
    links: frozenset[str]
    """Its symbolic links (prefix-relative, `/`-separated)."""
    paths: tuple[str, ...]
    """Every path it writes (prefix-relative, `/`-separated)."""


def path_problem(path: str) -> str | None:
    """Why a `paths.json` path cannot be written into a prefix, else None."""
    if not path or "\x00" in path:
        return "an empty path or one with a NUL"
    if path.startswith(("/", "\\")) or _DRIVE.match(path):
        return "an absolute path"
    parts = re.split(r"[/\\]", path)
    if any(part in ("", ".", "..") for part in parts):
        return "a path with '..', '.' or an empty part"
    return None


def _package_paths(entries: Iterable[tuple[str, bool]], where: str) -> PackagePaths:
    """What a package writes, from `(path, is a symbolic link)` as `where` lists them."""
    problem: str | None = None
    links: set[str] = set()
    paths: list[str] = []
    for path, is_link in entries:
        found = path_problem(path)
        if found is not None and problem is None:
            problem = (
                f"it would write outside the environment ({found}: {path[:200]!r} in its {where})"
            )
        path = path.replace("\\", "/")
        paths.append(path)
        if is_link:
            links.add(path)
    return PackagePaths(problem, frozenset(links), tuple(paths))


def _from_paths_json(paths_json: object) -> PackagePaths:
    """From rattler's `PathsJson` (an extracted package's, with `info/files` fallback)."""
    entries = paths_json.paths  # type: ignore[attr-defined]
    return _package_paths(
        ((os.fspath(e.relative_path), bool(e.path_type.softlink)) for e in entries),
        "info/paths.json",
    )


def archive_paths(archive: Path) -> PackagePaths:
    """The paths of a package archive (`.conda` or `.tar.bz2`), read from the archive.

    rattler reads the first `info/paths.json` of an archive, while extracting it keeps the
    last: an archive naming a metadata file twice (or, in a `.conda`, carrying `info/` in its
    package part, which may be extracted after the info part) could show one list and
    install another. Such an archive is refused outright (`archive_problem`); otherwise the
    one `info/paths.json` the listing read is the list (an old package's `info/files`)."""
    problem, metadata = _listing(archive)
    if problem is not None:
        return PackagePaths(problem, frozenset(), ())
    if metadata is None:
        raise ValueError("it has neither info/paths.json nor info/files")
    name, data = metadata
    if name == "info/files":
        # An old package (before conda-build 3): rattler links what it lists, a path a line.
        lines = (line.strip() for line in data.decode("utf-8", "replace").splitlines())
        return _package_paths(((line, False) for line in lines if line), name)
    document = json.loads(data)
    return _package_paths(
        (
            (str(entry["_path"]), entry.get("path_type") == "softlink")
            for entry in document["paths"]
        ),
        name,
    )


def archive_problem(archive: Path) -> str | None:
    """See `_listing`: why the archive is refused, else None."""
    return _listing(archive)[0]


def _listing(archive: Path) -> tuple[str | None, tuple[str, bytes] | None]:
    """Why the archive's members are not those of a package a conda tool built (a member
    named twice; a `.conda` with other parts than `metadata.json`, one `pkg-*.tar.zst` and
    one `info-*.tar.zst`, or with `info/` in its package part), else None; and the
    package's list of files: `info/paths.json`, else (an old package) `info/files`.
    Reads the archive's member names: the whole archive is decompressed."""
    import tarfile
    import zipfile

    import zstandard

    kept: dict[str, bytes] = {}  # `info/paths.json` and `info/files`, each at most once

    def names_of(tar: tarfile.TarFile, where: str) -> str | None:
        seen: set[str] = set()
        for info in tar:
            name = info.name
            while name.startswith("./"):  # `./info/x` and `info/x` are one member
                name = name[2:]
            if name in seen:
                return f"{name!r} comes twice in {where}"
            seen.add(name)
            if where.startswith("pkg") and name.startswith("info/"):
                return f"its package part holds {name!r}, metadata of the info part"
            if name in ("info/paths.json", "info/files") and info.isreg():
                if info.size > _MAX_LIST_BYTES:
                    return f"its {name} is {info.size:,} bytes"
                stream = tar.extractfile(info)
                kept[name] = stream.read() if stream is not None else b""
        return None

    found: str | None = None
    if archive.name.endswith(".tar.bz2"):
        with tarfile.open(archive, mode="r|bz2") as tar:
            found = names_of(tar, "the archive")
    else:
        with zipfile.ZipFile(archive) as outer:
            parts = [i.filename for i in outer.infolist()]
            pkg = [p for p in parts if p.startswith("pkg-") and p.endswith(".tar.zst")]
            info = [p for p in parts if p.startswith("info-") and p.endswith(".tar.zst")]
            others = [p for p in parts if p not in (*pkg, *info, "metadata.json")]
            if len(pkg) != 1 or len(info) != 1 or others or len(parts) != len(set(parts)):
                return (
                    f"its parts are {parts[:6]!r}, not metadata.json, one pkg- and one info- part",
                    None,
                )
            for part in (info[0], pkg[0]):
                with outer.open(part) as raw:
                    reader = zstandard.ZstdDecompressor().stream_reader(raw)
                    with tarfile.open(fileobj=reader, mode="r|") as tar:
                        found = names_of(tar, "pkg" if part == pkg[0] else "the info part")
                if found is not None:
                    break
    if found is not None:
        return found, None
    for name in ("info/paths.json", "info/files"):
        if name in kept:
            return None, (name, kept[name])
    return None, None


_MAX_LIST_BYTES = 256 << 20
"""The largest `info/paths.json` read (big packages list a few MB of paths)."""


def entry_paths(entry: Path) -> PackagePaths:
    """The paths of an extracted package (a cache entry): its `info/paths.json`, or for old
    packages the files conda-build listed instead. Kept while that file is unchanged."""
    from rattler.package import PathsJson

    key: tuple[object, ...] | None = None
    for name in ("paths.json", "files"):
        try:
            st = os.stat(entry / "info" / name)
        except OSError:
            continue
        key = (os.fspath(entry), name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        key += (st.st_ctime_ns,)
        break
    known = _ENTRIES.get(key) if key is not None and STAT_KEYS_TRUSTED else None
    if known is not None:
        return known
    found = _from_paths_json(PathsJson.from_package_directory_with_deprecated_fallback(entry))
    if key is not None:
        _ENTRIES.put(key, found)
    return found


_ENTRIES: Memo[tuple[object, ...], PackagePaths] = Memo(4096)
"""Cache entries checked before, by their paths.json (or info/files) and its stat."""


def check_paths(packages: Sequence[tuple[str, PackagePaths]]) -> None:
    """Refuse (UnsafePackage, naming the package) an install in which a package writes
    outside the prefix or below a symbolic link one of them creates."""
    for name, paths in packages:
        if paths.problem is not None:
            raise UnsafePackage(
                f"{name} is refused: {paths.problem}; it is not a package a conda tool "
                "built, and nothing was installed"
            )
    links = {link for _, paths in packages for link in paths.links}
    if not links:
        return
    for name, paths in packages:
        for path in paths.paths:
            below = _below_link(path, links)
            if below is not None:
                raise UnsafePackage(
                    f"{name} would write {path[:200]!r} through the symbolic link {below!r} "
                    "(a link a package of this environment creates), which may lead outside "
                    "the environment; nothing was installed"
                )


def _below_link(path: str, links: Iterable[str] | set[str]) -> str | None:
    parts = path.split("/")
    for end in range(1, len(parts)):
        folder = "/".join(parts[:end])
        if folder in links:
            return folder
    return None
