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
    """Why a path of it is refused, else None."""
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


def _from_paths_json(paths_json: object) -> PackagePaths:
    problem: str | None = None
    links: set[str] = set()
    paths: list[str] = []
    for entry in paths_json.paths:  # type: ignore[attr-defined]
        path = os.fspath(entry.relative_path)
        found = path_problem(path)
        if found is not None and problem is None:
            problem = f"{found}: {path[:200]!r}"
        path = path.replace("\\", "/")
        paths.append(path)
        if entry.path_type.softlink:
            links.add(path)
    return PackagePaths(problem, frozenset(links), tuple(paths))


def archive_paths(archive: Path) -> PackagePaths:
    """The paths of a package archive (`.conda` or `.tar.bz2`), read from the archive."""
    from rattler.package import PathsJson

    return _from_paths_json(PathsJson.from_package_archive(archive))


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
                f"{name} would write outside the environment ({paths.problem} in its "
                "info/paths.json); it is not a package a conda tool built, and nothing was "
                "installed"
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
