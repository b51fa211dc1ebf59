"""Where environments are, found from files alone: no conda, no python is ever run.

The sources are the ones conda itself uses, plus a few it does not know:

- `~/.conda/environments.txt`, the registry conda, mamba and micromamba append to;
- the `envs_dirs` of every condarc conda reads, and `CONDA_ENVS_DIRS`/`CONDA_ENVS_PATH`;
- root prefixes (installations) named by `CONDA_ROOT`, `CONDA_EXE`, `MAMBA_ROOT_PREFIX`,
  `MAMBA_EXE`, `CONDA_PREFIX`/`CONDA_PREFIX_1` (when they are roots), the server's own
  prefix and the usual install folders, each with its `envs/`;
- pixi environments (`.pixi/envs/*`) and venvs under folders the caller names;
- shared folders: the ones the caller names (`ReproApp.shared_envs_dirs`), and every envs
  dir of a system condarc (`/etc/conda`, `/var/lib/conda`, the installation's own) that this
  user cannot write. Environments there are administrators' and marked `shared`: listed
  like any other, never written into.

Like nb_conda_kernels, it leaves out conda-build's work environments (`_h_env...`,
`_build_env`, `_test_env...`), however they were found: they live under a build root (every
root prefix's `conda-bld/`, `~/conda-bld`, or the `croot` that `CONDA_BLD_PATH` or a condarc
configures) and disappear when the build is done.

A listing is cached. Every scan records what it looked at (each folder it listed and each
file it read, with its modification time); the next call only re-stats those and rescans
when one changed, so a new or removed environment is seen at once and an unchanged machine
costs a few `stat` calls.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from .prefix import RESTORE_MARKER, EnvironmentKind, is_utf8_path

log = logging.getLogger(__name__)

USUAL_ROOT_NAMES: tuple[str, ...] = (
    "miniforge3",
    "miniconda3",
    "anaconda3",
    "mambaforge",
    "micromamba",
)
"""Install folders under the home directory that installers propose, in the order tried."""
SYSTEM_ROOT = Path("/opt/conda")
"""Where Docker images and system installs usually put conda."""
SYSTEM_CONDARC_DIRS: tuple[Path, ...] = (Path("/etc/conda"), Path("/var/lib/conda"))
"""System folders conda reads `.condarc`, `condarc` and `condarc.d/` from (non-Windows)."""

# conda keeps packages, builds and half-deleted environments in these folders of an envs dir.
_NOT_ENVIRONMENTS = frozenset({"conda-bld", "pkgs", ".trash"})
_CONDARC_SUFFIXES = (".yml", ".yaml")
# A condarc holding none of these says nothing discovery needs: it is not parsed.
_CONDARC_KEYS = (b"envs_dirs", b"envs_path", b"croot", b"bld_path", b"root-dir")
# conda-build's build root (`croot`) as a condarc or the environment sets it; conda reads
# `bld_path` and `conda-build: root-dir` when `croot` is unset.
_CROOT_KEYS = ("croot", "bld_path")
_CROOT_VARIABLES = ("CONDA_CROOT", "CONDA_BLD_PATH")
# Read on every scan; their values are part of the cache key.
_ENV_VARIABLES = (
    "HOME",
    "XDG_CONFIG_HOME",
    "CONDARC",
    "CONDA_ROOT",
    "CONDA_EXE",
    "MAMBA_ROOT_PREFIX",
    "MAMBA_EXE",
    "CONDA_PREFIX",
    "CONDA_PREFIX_1",
    "CONDA_ENVS_DIRS",
    "CONDA_ENVS_PATH",
)
_VARIABLE = re.compile(r"\$(\w+|\{[^}]*\})")

# A folder changed twice within one tick of the file system clock keeps one mtime, so an
# mtime this close to the scan cannot prove that nothing changed after the scan looked:
# such inputs are compared by content until they are older (git calls this "racy").
_RACY_WINDOW_NS = 50_000_000
# Timestamps without a sub-second part come from a file system that keeps whole seconds.
_COARSE_RACY_WINDOW_NS = 2_000_000_000


@dataclass(frozen=True)
class Environment:
    """One environment found on disk."""

    prefix: Path
    """Absolute, symlinks resolved: one environment reached twice is listed once."""
    kind: EnvironmentKind
    is_root: bool
    """A conda root prefix (an installation's base) named by a root-prefix source."""
    root: Path | None
    """For an environment in `<root>/envs`: that root; for a root: itself; else None."""
    envs_dir: Path | None
    """The envs dir (resolved) it was found in, if any."""
    is_server_env: bool
    """The environment the server itself runs in."""
    shared: bool = False
    """In a shared (administrator's, read-only) folder: listed, never written into."""


@dataclass(frozen=True)
class Discovered:
    """The result of one scan; the same object is returned while nothing changed."""

    environments: tuple[Environment, ...]
    """Base first, then sorted by prefix."""
    base_prefix: Path | None
    """The base environment (what `conda info` calls the root prefix), resolved."""
    envs_dirs: tuple[Path, ...]
    """Where conda would create and look for named environments, in conda's order."""
    shared_dirs: tuple[Path, ...] = ()
    """The shared folders (resolved): configured ones, and system condarcs' envs dirs this
    user cannot write. Some may be in `envs_dirs` too; no restore writes into any."""

    def get(self, prefix: str | os.PathLike[str]) -> Environment | None:
        """The environment at `prefix` (compared after resolving symlinks), if listed."""
        wanted = Path(os.path.realpath(prefix))
        for env in self.environments:
            if env.prefix == wanted:
                return env
        return None


# --------------------------------------------------------------------------------------------
# what a scan looked at
# --------------------------------------------------------------------------------------------

_Signature = tuple[int, int, int, int]


def _signature(path: str) -> _Signature | None:
    """What changes when a folder's entries or a file's bytes change; None if absent."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # ValueError: a NUL byte in a path read from a file
        return None
    # ctime as well as mtime: it also moves on chmod, which decides writability.
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size)


def _racy_window(signature: _Signature) -> int:
    newest = max(signature[0], signature[1])
    return _COARSE_RACY_WINDOW_NS if newest % 1_000_000_000 == 0 else _RACY_WINDOW_NS


def _list_names(path: str) -> frozenset[str] | None:
    try:
        return frozenset(os.listdir(path))
    except (OSError, ValueError):
        return None


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except (OSError, ValueError):
        return None


class _Watch:
    """One input of a scan: a folder it listed or a file it read."""

    __slots__ = ("content", "is_dir", "path", "racy", "signature")

    def __init__(
        self,
        path: str,
        signature: _Signature | None,
        is_dir: bool,
        content: frozenset[str] | bytes | None,
        scan_started_ns: int,
    ) -> None:
        self.path = path
        self.signature = signature
        self.is_dir = is_dir
        self.content = content
        self.racy = signature is not None and (
            max(signature[0], signature[1]) >= scan_started_ns - _racy_window(signature)
        )

    def unchanged(self, now_ns: int) -> bool:
        """True when the input is as the scan saw it (one stat; a read only while racy)."""
        signature = _signature(self.path)
        if signature != self.signature:
            return False
        if self.racy and signature is not None:
            current = _list_names(self.path) if self.is_dir else _read_bytes(self.path)
            if current != self.content:
                return False
            # Checked at a time well past the last change: any later change gets a newer
            # timestamp, so from now on the stat alone is proof enough.
            if now_ns - max(signature[0], signature[1]) > _racy_window(signature):
                self.racy = False
        return True


@dataclass
class _Candidate:
    prefix: Path
    kind: EnvironmentKind
    is_root: bool = False
    root: Path | None = None
    envs_dir: Path | None = None


def _writable(path: str) -> bool:
    """This user may create folders in `path` (or in its nearest existing parent)."""
    probe = path
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return False
        probe = parent
    try:
        return os.path.isdir(probe) and os.access(probe, os.W_OK | os.X_OK)
    except (OSError, ValueError):
        return False


# How a root-prefix source is accepted: "exists" (named as a root: any existing folder),
# "installation" (derived from an executable: a folder with conda-meta/ or envs/), "root" (a
# prefix that may be a plain environment: only one that looks like an installation).
_RootRule = Literal["exists", "installation", "root"]


class _RootSource(NamedTuple):
    path: str
    rule: _RootRule
    why: str
    may_be_base: bool


class _Condarc(NamedTuple):
    """What discovery reads from one condarc file."""

    envs_dirs: list[str]
    build_roots: list[str]
    """`croot`, `bld_path` and `conda-build: root-dir`, unexpanded."""


_NO_CONDARC = _Condarc([], [])


@dataclass(frozen=True)
class Folders:
    """The folders of `Discovered`, which depend on configuration alone."""

    envs_dirs: tuple[Path, ...]
    shared_dirs: tuple[Path, ...] = ()


@dataclass
class _ScanResult:
    discovered: Discovered
    environ: dict[str, str | None]
    watches: list[_Watch]


@dataclass
class _FoldersResult:
    folders: Folders
    environ: dict[str, str | None]
    watches: list[_Watch]


# --------------------------------------------------------------------------------------------
# path helpers
# --------------------------------------------------------------------------------------------


def _norm(path: str) -> str:
    return os.path.normpath(path)


def _realpath(path: str) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return _norm(path)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_symlink(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False


def _is_within(path: str, folder: str) -> bool:
    """`path` is `folder` or inside it, by whole path components (`/a/b-c` is not in `/a/b`)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _condarc_build_roots(document: dict[object, object]) -> list[str]:
    """The build roots a parsed condarc sets: `croot`, `bld_path`, `conda-build: root-dir`."""
    values = [document.get(key) for key in _CROOT_KEYS]
    for section in ("conda-build", "conda_build"):
        settings = document.get(section)
        if isinstance(settings, dict):
            values.append(settings.get("root-dir"))
    return [v for v in values if isinstance(v, str) and v]


def _exe_root(exe: str) -> str | None:
    """The installation of `.../bin/conda` or `.../condabin/conda`: two levels up."""
    if not os.path.isabs(exe):
        return None
    return os.path.dirname(os.path.dirname(_norm(exe)))


def _pixi_kind(prefix: str) -> EnvironmentKind:
    parent = os.path.dirname(prefix)
    is_pixi = (
        os.path.basename(parent) == "envs" and os.path.basename(os.path.dirname(parent)) == ".pixi"
    )
    return "pixi" if is_pixi else "conda"


# --------------------------------------------------------------------------------------------
# one scan
# --------------------------------------------------------------------------------------------


class _Scan:
    """Finds every environment once, recording each input it looked at."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str],
        home: Path | None,
        server_prefix: Path,
        search_paths: Sequence[Path],
        usual_roots: Sequence[Path] | None,
        system_condarc_dirs: Sequence[Path],
        condarc_cache: dict[bytes, _Condarc],
        log: logging.Logger,
        shared_envs_dirs: Sequence[Path] = (),
    ) -> None:
        self.started_ns = time.time_ns()
        self.log = log
        self.env: dict[str, str | None] = {name: environ.get(name) for name in _ENV_VARIABLES}
        self._environ = environ
        home_str = os.fspath(home) if home is not None else self.env["HOME"] or str(Path.home())
        self.home = os.path.abspath(home_str)
        self.server_prefix = os.path.abspath(os.fspath(server_prefix))
        self.search_paths = [os.path.abspath(os.fspath(p)) for p in search_paths]
        self.usual_roots = (
            [os.path.abspath(os.fspath(p)) for p in usual_roots]
            if usual_roots is not None
            else [os.path.join(self.home, n) for n in USUAL_ROOT_NAMES] + [str(SYSTEM_ROOT)]
        )
        self.system_condarc_dirs = [os.fspath(p) for p in system_condarc_dirs]
        # Relative folders mean nothing here (ReproApp refuses them at start-up).
        self.shared_envs_dirs = [
            _norm(os.fspath(p)) for p in shared_envs_dirs if os.path.isabs(os.fspath(p))
        ]
        self._condarc_cache = condarc_cache

        self.watches: dict[str, _Watch] = {}
        self._listings: dict[str, list[os.DirEntry[str]] | None] = {}
        self.candidates: dict[str, _Candidate] = {}
        # Paths (as named and as resolved) already looked at: environments.txt lines that an
        # envs-dir scan covered need no second look.
        self._handled: set[str] = set()
        self.roots: dict[str, str] = {}  # resolved root -> as named
        self._paths: dict[str, Path] = {}

    # -- recorded inputs -------------------------------------------------------------------

    def listdir(self, path: str) -> list[os.DirEntry[str]] | None:
        """Entries of a folder (None if it cannot be listed), recorded as an input."""
        if path in self._listings:
            return self._listings[path]
        signature = _signature(path)
        entries: list[os.DirEntry[str]] | None = None
        if signature is not None:
            try:
                with os.scandir(path) as it:
                    entries = list(it)
            except (OSError, ValueError) as exc:
                self.log.debug("cannot list %s: %s", path, exc)
        names = frozenset(e.name for e in entries) if entries is not None else None
        self.watches[path] = _Watch(path, signature, True, names, self.started_ns)
        self._listings[path] = entries
        return entries

    def read(self, path: str) -> bytes | None:
        """A file's bytes (None if it cannot be read), recorded as an input."""
        signature = _signature(path)
        data = _read_bytes(path) if signature is not None else None
        if signature is not None and data is None:
            self.log.debug("cannot read %s", path)
        self.watches[path] = _Watch(path, signature, False, data, self.started_ns)
        return data

    def getenv(self, name: str) -> str | None:
        """A variable of the caller's environment, recorded as an input."""
        if name not in self.env:
            self.env[name] = self._environ.get(name)
        return self.env[name]

    # -- the scan --------------------------------------------------------------------------

    def run_folders(self) -> Folders:
        """Only the folders (see `EnvironmentDiscovery.folders`): the roots and condarcs are
        read, no environment is looked for."""
        base = self._scan_roots()
        condarcs = self._read_condarcs(base)
        return Folders(
            envs_dirs=tuple(Path(p) for p in self._envs_dirs(base, condarcs)),
            shared_dirs=_resolved_shared(self._shared_dirs(base, condarcs)),
        )

    def run(self) -> Discovered:
        base = self._scan_roots()
        condarcs = self._read_condarcs(base)
        envs_dirs = self._envs_dirs(base, condarcs)
        shared = self._shared_dirs(base, condarcs)
        self._scan_envs_dirs(envs_dirs + [d for d in shared if d not in envs_dirs])
        self._scan_environments_txt()
        self._scan_server_prefix()
        for folder in self.search_paths:
            self._scan_project(folder, top=True)
        return self._result(base, envs_dirs, self._build_roots(condarcs), shared)

    def _path(self, path: str | None) -> Path | None:
        # Hundreds of environments share one root and envs dir: build those Paths once.
        if not path:
            return None
        found = self._paths.get(path)
        if found is None:
            found = self._paths[path] = Path(path)
        return found

    def _add(
        self,
        prefix: str,
        kind: EnvironmentKind,
        *,
        is_root: bool = False,
        root: str | None = None,
        envs_dir: str | None = None,
    ) -> None:
        found = self.candidates.get(prefix)
        if found is None:
            self.candidates[prefix] = _Candidate(
                Path(prefix), kind, is_root, self._path(root), self._path(envs_dir)
            )
            return
        # Reached again by another source: keep what each source knows.
        found.is_root = found.is_root or is_root
        if found.root is None and root:
            found.root = self._path(root)
        if found.envs_dir is None and envs_dir:
            found.envs_dir = self._path(envs_dir)

    def _restoring(self, prefix: str) -> bool:
        if not os.path.lexists(os.path.join(prefix, RESTORE_MARKER)):
            return False
        self.log.debug("skipping %s: a restore into it has not finished", prefix)
        # Watch conda-meta: removing the marker changes it, and the prefix then appears.
        self.listdir(os.path.join(prefix, "conda-meta"))
        return True

    def _classify_listed(
        self, prefix: str, entries: Iterable[os.DirEntry[str]]
    ) -> EnvironmentKind | None:
        """conda/pixi/venv from a prefix's own (recorded) listing; None if none of them."""
        by_name = {e.name: e for e in entries}
        meta = by_name.get("conda-meta")
        if meta is not None and _is_dir(meta):
            return None if self._restoring(prefix) else _pixi_kind(prefix)
        if "pyvenv.cfg" in by_name:
            return "venv"
        return None

    # roots ---------------------------------------------------------------------------------

    def _root_sources(self) -> list[_RootSource]:
        """Every root-prefix source, in the order that picks the base."""
        sources: list[_RootSource] = []

        def add(path: str | None, rule: _RootRule, why: str, may_be_base: bool = True) -> None:
            if path and os.path.isabs(path):
                sources.append(_RootSource(_norm(path), rule, why, may_be_base))

        add(self.getenv("CONDA_ROOT"), "exists", "CONDA_ROOT")
        conda_exe = self.getenv("CONDA_EXE")
        add(_exe_root(conda_exe) if conda_exe else None, "installation", "CONDA_EXE")
        add(self.getenv("MAMBA_ROOT_PREFIX"), "exists", "MAMBA_ROOT_PREFIX")
        mamba_exe = self.getenv("MAMBA_EXE")
        # A standalone micromamba lives in ~/.local/bin: two levels up is no installation.
        add(_exe_root(mamba_exe) if mamba_exe else None, "installation", "MAMBA_EXE")
        for folder in self.usual_roots:
            add(folder, "exists", "usual install folder")
        add(self.server_prefix, "root", "server prefix")
        # A server running in `<root>/envs/<name>` belongs to that installation.
        parent = os.path.dirname(self.server_prefix)
        if os.path.basename(parent) == "envs":
            add(os.path.dirname(parent), "installation", "root of the server's envs dir")
        # An activated environment is a root source only when it is a root (base activated).
        add(self.getenv("CONDA_PREFIX"), "root", "CONDA_PREFIX", may_be_base=False)
        add(self.getenv("CONDA_PREFIX_1"), "root", "CONDA_PREFIX_1", may_be_base=False)
        return sources

    def _scan_roots(self) -> str | None:
        """Lists every root prefix and queues its envs/; returns the base prefix."""
        base: str | None = None
        for source in self._root_sources():
            path = source.path
            entries = self.listdir(path)
            if entries is None:
                continue
            by_name = {e.name: e for e in entries}
            has_meta = "conda-meta" in by_name and _is_dir(by_name["conda-meta"])
            has_envs = "envs" in by_name and _is_dir(by_name["envs"])
            if source.rule == "installation":
                accepted = has_meta or has_envs
            elif source.rule == "root":
                accepted = has_meta and self._looks_like_root(path, by_name)
            else:
                accepted = True
            if not accepted:
                self.log.debug("%s (%s) is not a root prefix", path, source.why)
                continue
            resolved = _realpath(path)
            if base is None and source.may_be_base:
                base = resolved
            if resolved in self.roots:
                continue
            self.roots[resolved] = path
            self._handled.update((path, resolved))
            if has_meta and not self._restoring(path):
                self._add(resolved, "conda", is_root=True, root=resolved)
        return base

    @staticmethod
    def _looks_like_root(path: str, by_name: Mapping[str, os.DirEntry[str]]) -> bool:
        """An installation, not just an environment: it has envs/, condabin/, pkgs/ or a
        conda-family executable."""
        if any(n in by_name for n in ("envs", "condabin", "pkgs")):
            return True
        return any(
            os.path.lexists(os.path.join(path, "bin", exe))
            for exe in ("conda", "mamba", "micromamba")
        )

    # envs dirs -----------------------------------------------------------------------------

    def _expand(self, value: str, where: str, what: str = "envs dir") -> str | None:
        """conda's expansion of a configured path: `$VAR`, `${VAR}`, then `~`; absolute only."""

        def variable(m: re.Match[str]) -> str:
            name = m.group(1).strip("{}")
            found = self.getenv(name)
            return m.group(0) if found is None else found

        expanded = _VARIABLE.sub(variable, value.strip())
        if expanded == "~" or expanded.startswith("~/"):
            expanded = self.home + expanded[1:]
        if not os.path.isabs(expanded):
            self.log.debug("ignoring %s %r from %s: not an absolute path", what, value, where)
            return None
        return _norm(expanded)

    def _condarc_locations(self, base: str | None) -> list[str]:
        """conda's condarc search path, in conda's order (later ones take precedence)."""

        def trio(folder: str) -> list[str]:
            return [
                os.path.join(folder, ".condarc"),
                os.path.join(folder, "condarc"),
                os.path.join(folder, "condarc.d") + os.sep,
            ]

        locations: list[str] = []
        for folder in self.system_condarc_dirs:
            locations += trio(folder)
        # conda reads its own installation's condarc (Miniforge ships one there).
        conda_root = self.getenv("CONDA_ROOT") or base
        if conda_root:
            locations += trio(conda_root)
        xdg = self.getenv("XDG_CONFIG_HOME")
        if xdg and os.path.isabs(xdg):
            locations += trio(os.path.join(xdg, "conda"))
        locations += trio(os.path.join(self.home, ".config", "conda"))
        locations += trio(os.path.join(self.home, ".conda"))
        locations.append(os.path.join(self.home, ".condarc"))
        conda_prefix = self.getenv("CONDA_PREFIX")
        if conda_prefix and os.path.isabs(conda_prefix):
            locations += trio(conda_prefix)
        condarc = self.getenv("CONDARC")
        if condarc and os.path.isabs(condarc):
            locations.append(condarc + os.sep if os.path.isdir(condarc) else condarc)
        unique: list[str] = []
        for location in locations:
            if location not in unique:
                unique.append(location)
        return unique

    def _condarc_files(self, location: str) -> list[str]:
        if not location.endswith(os.sep):
            return [location]
        entries = self.listdir(location.rstrip(os.sep))
        return sorted(
            e.path for e in entries or () if e.name.endswith(_CONDARC_SUFFIXES) and not _is_dir(e)
        )

    def _read_condarcs(self, base: str | None) -> list[tuple[str, _Condarc]]:
        """Every condarc file with what it says, in the order conda reads them."""
        return [
            (path, self._condarc(path))
            for location in self._condarc_locations(base)
            for path in self._condarc_files(location)
        ]

    def _condarc(self, path: str) -> _Condarc:
        data = self.read(path)
        if not data or not any(key in data for key in _CONDARC_KEYS):
            return _NO_CONDARC  # most condarcs: no need to load a YAML parser for them
        if data not in self._condarc_cache:
            if len(self._condarc_cache) >= 64:  # a condarc edited over and over
                self._condarc_cache.clear()
            self._condarc_cache[data] = self._parse_condarc(path, data)
        return self._condarc_cache[data]

    def _parse_condarc(self, path: str, data: bytes) -> _Condarc:
        from ruamel.yaml import YAML

        try:
            document = YAML(typ="safe").load(data)
        except Exception as exc:  # a broken condarc must not break the listing
            self.log.debug("skipping condarc %s: %s", path, exc)
            return _NO_CONDARC
        if not isinstance(document, dict):
            return _NO_CONDARC
        return _Condarc(self._condarc_envs_dirs(path, document), _condarc_build_roots(document))

    def _condarc_envs_dirs(self, path: str, document: dict[object, object]) -> list[str]:
        value = document.get("envs_dirs", document.get("envs_path"))
        if value is None:
            return []
        if not isinstance(value, list):
            self.log.debug("skipping envs_dirs of %s: not a list", path)
            return []
        return [v for v in value if isinstance(v, str)]

    def _envs_dirs(self, base: str | None, condarcs: list[tuple[str, _Condarc]]) -> list[str]:
        """Envs dirs in conda's order: `CONDA_ENVS_DIRS`/`CONDA_ENVS_PATH`, then condarc
        files (the one conda reads last first), then `<base>/envs` and `~/.conda/envs`."""
        configured: list[str] = []
        for variable in ("CONDA_ENVS_DIRS", "CONDA_ENVS_PATH"):
            value = self.getenv(variable)
            for part in re.split(f"[{re.escape(os.pathsep)},]", value or ""):
                if part.strip():
                    expanded = self._expand(part, variable)
                    if expanded:
                        configured.append(expanded)
        # conda merges sequences with the highest-precedence (last read) source first.
        for path, condarc in reversed(condarcs):
            for value in condarc.envs_dirs:
                expanded = self._expand(value, path)
                if expanded:
                    configured.append(expanded)
        user_envs = os.path.join(self.home, ".conda", "envs")
        if base is None:
            fixed = [user_envs]
        elif os.access(base, os.W_OK):
            fixed = [os.path.join(base, "envs"), user_envs]
        else:
            # A shared read-only installation: new environments go to the user's folder.
            fixed = [user_envs, os.path.join(base, "envs")]
        unique: list[str] = []
        for path in configured + fixed:
            if path not in unique:
                unique.append(path)
        return unique

    def _shared_dirs(self, base: str | None, condarcs: list[tuple[str, _Condarc]]) -> list[str]:
        """The shared folders, as named: the configured ones, then every envs dir of a
        system condarc (the system folders' and the installation's own) that this user
        cannot write (an administrator's: conda would not create environments there)."""
        shared = list(self.shared_envs_dirs)
        system = {_norm(folder) for folder in self.system_condarc_dirs}
        conda_root = self.getenv("CONDA_ROOT") or base
        if conda_root:
            system.add(_norm(conda_root))
        for path, condarc in condarcs:
            folder = os.path.dirname(path)
            if os.path.basename(folder) == "condarc.d":
                folder = os.path.dirname(folder)
            if _norm(folder) not in system:
                continue
            for value in condarc.envs_dirs:
                expanded = self._expand(value, path)
                if expanded and expanded not in shared and not self._writable(expanded):
                    shared.append(expanded)
        return shared

    def _writable(self, path: str) -> bool:
        """`_writable`, with the folder that decides it recorded as an input: a chmod by the
        administrator moves its ctime, and the folders are worked out again."""
        probe = path
        while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
            probe = os.path.dirname(probe)
        self.listdir(probe)
        return _writable(path)

    def _build_roots(self, condarcs: list[tuple[str, _Condarc]]) -> list[str]:
        """Where conda-build makes its work environments, resolved: every root's
        `conda-bld`, `~/conda-bld` (its choice when the root is read-only) and every
        configured build root (not only the one conda would pick: each is conda-build's)."""
        found = {_realpath(os.path.join(root, "conda-bld")) for root in self.roots}
        found.add(_realpath(os.path.join(self.home, "conda-bld")))
        configured = [(self.getenv(name), name) for name in _CROOT_VARIABLES]
        configured += [(value, path) for path, condarc in condarcs for value in condarc.build_roots]
        keep = [_realpath(self.home), *self.roots]
        for value, where in configured:
            expanded = self._expand(value, where, "build root") if value else None
            if expanded is None:
                continue
            folder = _realpath(expanded)
            # `croot: ~` would hide every environment; no build leaves its work there.
            if any(_is_within(k, folder) for k in keep):
                self.log.debug("ignoring build root %s from %s: it holds %s", folder, where, keep)
                continue
            found.add(folder)
        return sorted(found)

    def _scan_envs_dirs(self, envs_dirs: list[str]) -> None:
        root_of: dict[str, str] = {}
        root_envs: list[str] = []
        for resolved_root, named_root in self.roots.items():
            root_of[_realpath(os.path.join(resolved_root, "envs"))] = resolved_root
            root_envs.append(os.path.join(named_root, "envs"))
        scanned: dict[str, str] = {}  # resolved -> as first named
        for configured in envs_dirs + root_envs:
            resolved = _realpath(configured)
            if resolved in scanned:
                # The same folder under another name: its children are handled already.
                for entry in self._listings.get(resolved) or ():
                    self._handled.add(os.path.join(configured, entry.name))
                continue
            scanned[resolved] = configured
            self._scan_envs_dir(configured, resolved, root=root_of.get(resolved))

    def _scan_envs_dir(
        self,
        configured: str,
        resolved: str,
        *,
        root: str | None = None,
        kind_default: EnvironmentKind | None = None,
    ) -> None:
        """Every child with conda-meta/ is an environment; others are watched until they
        become one (conda creates the folder first and conda-meta/ later)."""
        entries = self.listdir(resolved)
        if entries is None:
            return
        # Children of one envs dir share their parents, so one kind fits all (not symlinks).
        kind = kind_default or _pixi_kind(os.path.join(resolved, "_"))
        for entry in entries:
            if entry.name in _NOT_ENVIRONMENTS:
                continue
            self._handled.add(os.path.join(configured, entry.name))
            self._handled.add(entry.path)
            if not is_utf8_path(entry.name):
                self.log.debug("skipping %r: its name is not UTF-8", entry.path)
                continue
            if not _is_dir(entry):
                if _is_symlink(entry):
                    self.log.debug("skipping %s: a symlink to no folder", entry.path)
                continue
            symlink = _is_symlink(entry)
            prefix = _realpath(entry.path) if symlink else entry.path
            if not os.path.isdir(os.path.join(prefix, "conda-meta")):
                self.log.debug("not an environment (no conda-meta): %s", prefix)
                self.listdir(prefix)
                continue
            if self._restoring(prefix):
                continue
            prefix_kind = (kind_default or _pixi_kind(prefix)) if symlink else kind
            self._add(prefix, prefix_kind, root=root, envs_dir=resolved)

    # registry, server, search paths ----------------------------------------------------------

    def _scan_environments_txt(self) -> None:
        path = os.path.join(self.home, ".conda", "environments.txt")
        data = self.read(path)
        for raw in (data or b"").splitlines():
            line = os.fsdecode(raw.strip())
            if not line or line.startswith("#"):
                continue
            if not os.path.isabs(line):
                self.log.debug("skipping %r in %s: not an absolute path", line, path)
                continue
            prefix = _norm(line)
            if prefix in self._handled:
                continue
            self._handled.add(prefix)
            self._scan_lone_prefix(prefix, f"listed in {path}")

    def _scan_lone_prefix(self, prefix: str, why: str) -> None:
        """A prefix named on its own: watched, so that deleting or re-creating it is seen."""
        if not is_utf8_path(prefix):
            self.log.debug("skipping %r (%s): not UTF-8", prefix, why)
            return
        resolved = _realpath(prefix)
        entries = self.listdir(resolved)
        if entries is None:
            self.log.debug("skipping %s (%s): no such folder", prefix, why)
            return
        kind = self._classify_listed(resolved, entries)
        if kind is None:
            self.log.debug("skipping %s (%s): not an environment", prefix, why)
            return
        self._add(resolved, kind)

    def _scan_server_prefix(self) -> None:
        if self.server_prefix not in self._handled:
            self._handled.add(self.server_prefix)
            self._scan_lone_prefix(self.server_prefix, "the server's prefix")

    def _scan_project(self, folder: str, *, top: bool) -> None:
        """A configured folder (`top`) or one of its children: itself a venv (or conda
        prefix), its `.pixi/envs/*`, and for a child also its `.venv`."""
        resolved = _realpath(folder) if top else folder
        entries = self.listdir(resolved)
        if entries is None:
            return
        by_name = {e.name: e for e in entries}
        kind = self._classify_listed(resolved, entries)
        if kind is not None:
            self._add(resolved, kind)
        if ".pixi" in by_name:
            pixi = self.listdir(os.path.join(resolved, ".pixi"))
            if any(e.name == "envs" for e in pixi or ()):
                envs = os.path.join(resolved, ".pixi", "envs")
                # pixi's detached environments make .pixi/envs a symlink to a cache folder.
                self._scan_envs_dir(envs, _realpath(envs), kind_default="pixi")
        if not top and ".venv" in by_name:
            venv = _realpath(os.path.join(resolved, ".venv"))
            venv_kind = self._classify_listed(venv, self.listdir(venv) or ())
            if venv_kind is not None:
                self._add(venv, venv_kind)
        if top:
            for entry in entries:
                if not is_utf8_path(entry.name):
                    self.log.debug("skipping %r: its name is not UTF-8", entry.path)
                elif _is_dir(entry):
                    child = _realpath(entry.path) if _is_symlink(entry) else entry.path
                    self._scan_project(child, top=False)

    # result ----------------------------------------------------------------------------------

    def _result(
        self,
        base: str | None,
        envs_dirs: list[str],
        build_roots: list[str],
        shared_dirs: Sequence[str] = (),
    ) -> Discovered:
        server = _realpath(self.server_prefix)
        shared = [os.fspath(d) for d in _resolved_shared(shared_dirs)]
        environments = []
        # Keys are the resolved prefixes as strings: base first, then in path order.
        for key in sorted(self.candidates, key=lambda k: (k != base, k)):
            candidate = self.candidates[key]
            if not is_utf8_path(key):
                self.log.debug("skipping %r: its path is not UTF-8", key)
                continue
            # The server's own environment stays, even when conda-build runs its tests in it.
            if key != server and any(_is_within(key, root) for root in build_roots):
                self.log.debug("skipping %s: a conda-build work environment", key)
                continue
            environments.append(
                Environment(
                    prefix=candidate.prefix,
                    kind=candidate.kind,
                    is_root=candidate.is_root,
                    root=candidate.root,
                    envs_dir=candidate.envs_dir,
                    is_server_env=key == server,
                    # Found in a shared folder (also through a symlink there), or inside one.
                    shared=any(
                        _is_within(key, folder)
                        or (candidate.envs_dir is not None and str(candidate.envs_dir) == folder)
                        for folder in shared
                    ),
                )
            )
        return Discovered(
            environments=tuple(environments),
            base_prefix=Path(base) if base else None,
            envs_dirs=tuple(Path(p) for p in envs_dirs),
            shared_dirs=tuple(Path(p) for p in shared),
        )


def _resolved_shared(shared_dirs: Iterable[str]) -> tuple[Path, ...]:
    return tuple(Path(p) for p in dict.fromkeys(_realpath(d) for d in shared_dirs))


# --------------------------------------------------------------------------------------------
# the service
# --------------------------------------------------------------------------------------------


class EnvironmentDiscovery:
    """Finds environments without running anything; cached until one of its inputs changes.

    Plain class, usable without a server. `discover()` is safe to call from several threads.
    """

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        home: Path | None = None,
        server_prefix: Path | None = None,
        search_paths: Sequence[Path] = (),
        usual_roots: Sequence[Path] | None = None,
        log: logging.Logger | None = None,
        system_condarc_dirs: Sequence[Path] = SYSTEM_CONDARC_DIRS,
        shared_envs_dirs: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        """Inputs are explicit so tests can isolate them.

        `shared_envs_dirs` are folders of administrators' environments (absolute; `~` is
        expanded): scanned like envs dirs, their environments marked `shared`.

        `environ` defaults to the live `os.environ`; `home` to `environ["HOME"]` (then
        `Path.home()`); `server_prefix` to `sys.prefix`; `usual_roots` to the usual install
        folders under home plus `/opt/conda`; `system_condarc_dirs` to `/etc/conda` and
        `/var/lib/conda`.
        """
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.home = home
        self.server_prefix = Path(sys.prefix) if server_prefix is None else Path(server_prefix)
        self.search_paths = tuple(Path(p) for p in search_paths)
        self.usual_roots = None if usual_roots is None else tuple(Path(p) for p in usual_roots)
        self.system_condarc_dirs = tuple(Path(p) for p in system_condarc_dirs)
        self.shared_envs_dirs = tuple(
            Path(os.path.expanduser(os.fspath(p))) for p in shared_envs_dirs
        )
        self.log = log or logging.getLogger(__name__)
        self.rescans = 0
        """How many times `discover()` really scanned (not answered from the cache)."""
        self._cached: _ScanResult | None = None
        self._folders: _FoldersResult | None = None
        self._condarc_cache: dict[bytes, _Condarc] = {}
        self._lock = threading.Lock()

    def discover(self) -> Discovered:
        """Every environment; the cached answer while none of its inputs changed."""
        with self._lock:
            cached = self._cached
            if cached is not None and self._unchanged(cached):
                return cached.discovered
            self.rescans += 1
            self._cached = None
            try:
                self._cached = self._scan()
            except Exception:
                # Bad input is handled where it is read; this is a bug, and it must not
                # take the kernel list down with it. Not cached: the next call retries.
                self.log.exception("environment discovery failed")
                return Discovered((), None, ())
            return self._cached.discovered

    def folders(self) -> Folders:
        """`discover()`'s envs dirs and shared folders, cached on their own inputs (variables,
        condarcs, installations): a restore checks its target against them, and a restore
        changes the list of environments (its folder, the registry) but not these, so the
        next restore does not rescan every environment for them."""
        with self._lock:
            cached = self._folders
            if cached is not None and self._unchanged(cached):
                return cached.folders
            self._folders = None
            scan = self._new_scan()
            try:
                found = scan.run_folders()
            except Exception:
                # As in `discover()`: a bug, logged, and not cached (the next call retries).
                self.log.exception("finding the envs dirs failed")
                return Folders(())
            self._folders = _FoldersResult(found, dict(scan.env), list(scan.watches.values()))
            return found

    def invalidate(self) -> None:
        """Forget the cached answer (e.g. after this process created an environment)."""
        with self._lock:
            self._cached = None
            self._folders = None

    def _unchanged(self, cached: _ScanResult | _FoldersResult) -> bool:
        environ = self.environ
        if any(environ.get(name) != value for name, value in cached.environ.items()):
            return False
        now = time.time_ns()
        return all(watch.unchanged(now) for watch in cached.watches)

    def _scan(self) -> _ScanResult:
        scan = self._new_scan()
        discovered = scan.run()
        return _ScanResult(discovered, dict(scan.env), list(scan.watches.values()))

    def _new_scan(self) -> _Scan:
        return _Scan(
            environ=self.environ,
            home=self.home,
            server_prefix=self.server_prefix,
            search_paths=self.search_paths,
            usual_roots=self.usual_roots,
            system_condarc_dirs=self.system_condarc_dirs,
            condarc_cache=self._condarc_cache,
            log=self.log,
            shared_envs_dirs=self.shared_envs_dirs,
        )
