"""Spec -> prefix: the restore service (plan, then build) over rattler or a conda-family CLI.

The embedded engine is py-rattler (solve, download, link, all async, in the server's loop);
conda, mamba and micromamba are used instead when configured and found. Around the engine
this module keeps the promises of a restore:

- The target is claimed atomically (prefix folder plus `conda-meta/.jupyter_repro_restoring`)
  before anything is installed, so two restores cannot build one prefix and discovery never
  lists a half-built one.
- Anything that goes wrong, cancellation included, removes the prefix this call created.
- The spec is untrusted: channels can be restricted, pip URLs and pip options are refused
  unless allowed, names are validated, and a spec's `prefix:` never decides where files go.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import itertools
import json
import logging
import os
import shlex
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import unquote, urlsplit

from ..download_client import download_client
from ..environments.catalog import EnvironmentCatalog
from ..environments.channels import (
    DEFAULTS,
    channel_of_package_url,
    channel_url,
    is_subdir,
    redact_text,
    redact_url,
    short_channel_name,
)
from ..environments.discovery import EnvironmentDiscovery
from ..environments.engines import CLI_NAMES, EMBEDDED_ENGINE, ENGINE_NAMES, find_cli
from ..environments.matchspec import InvalidMatchSpec, parse_match_spec
from ..memo import Memo
from ..specs.environment import (
    EnvironmentSpec,
    SpecError,
    environment_name_problem,
)
from ..specs.explicit import ExplicitEntry, explicit_urls
from ..specs.export import host_platform
from ..specs.lock import Lock, LockedConda, PlatformLock, _pypi_line, file_url_path
from ..specs.pip_lock import PipIndex
from .cache import cached_entries, package_cache_dir
from .channels import (
    CondaConfig,
    channel_urls,
    detect_virtual_packages,
    environ_home,
    normalized_channel,
    read_conda_config,
)
from .checked_capsules import file_sha256, remember_checked, stream_sha256, was_checked
from .disk import (
    ClaimMoved,
    ClaimRefused,
    claim_target,
    disk_errno,
    disk_problem,
    find_leftovers,
    is_within_any,
    is_writable_dir,
    name_length_problem,
    prefix_length_problem,
    register_prefix,
    registered_prefixes,
    registry_path,
    release_marker,
    remove_prefix,
    shorten_name,
    text_problem,
    write_env_vars,
    write_history,
)
from .errors import (
    DiskError,
    InvalidTarget,
    NameCheck,
    NameConflict,
    NameTaken,
    NotEnoughSpace,
    RefusedSpec,
    RestoreCancelled,
    RestoreError,
    SharedTarget,
    TargetBusy,
    TargetExists,
    TooManyEnvironments,
    UnsatisfiableSpec,
)
from .limits import existing_folder, format_size, free_space, shared_folder_of
from .notebooks import CapsuleNotebook
from .package_paths import (
    PackagePaths,
    UnsafePackage,
    archive_paths,
    check_paths,
    entry_paths,
)
from .pip import pip_install_command, pip_requirements_command
from .process import run_process
from .shared_cache import (
    SharedCache,
    is_shared_cache,
    prepare_package_cache,
    prepare_shared_cache,
    rattler_cache_dir,
    restrict_entries,
    secure_install,
)
from .source import RestoreSource, load_source
from .verified import Verified, fetch_verified, restore_origins

if TYPE_CHECKING:
    from ..specs.capsule import ExtractedCapsule

_RESERVED_NAMES = frozenset({"base", "root"})


# --------------------------------------------------------------------------------------------
# options, plans


@dataclass(frozen=True)
class RestoreOptions:
    """How restores run; the server's configuration (see `ReproApp`) fills this in."""

    engine: str = EMBEDDED_ENGINE
    """`rattler` (embedded), `conda`, `mamba` or `micromamba`."""
    cli_paths: Mapping[str, str] = field(default_factory=dict)
    allowed_channels: tuple[str, ...] | None = None
    """Channels (names or URLs) a spec may use; None allows any."""
    allow_pip_urls: bool = False
    """Allow pip URLs, local paths and pip option lines in a spec's pip section."""
    pip_find_links: tuple[str, ...] = ()
    pip_index_url: str | None = None
    pip_no_index: bool = False
    cache_dir: Path | None = None
    """rattler's package cache; by default rattler's own (see `restore/cache.py`)."""
    shared_package_cache: bool = False
    """`cache_dir` is one cache for every user of the machine (`ReproApp.package_cache_dir`):
    laid out per user, archives downloaded once for all (see `restore/shared_cache.py`). A cache
    folder that is sticky or another user's is treated as shared anyway."""
    allowed_prefix_roots: tuple[Path, ...] | None = None
    """Folders a `prefix` must lie inside, besides the envs dirs (found when the prefix is
    checked); compared as real paths. None allows any prefix, as conda does (the CLI); the
    server passes its `allowed_prefix_roots` (empty: the envs dirs only)."""
    shared_envs_dirs: tuple[Path, ...] = ()
    """Folders of administrators' environments (`ReproApp.shared_envs_dirs`), for the
    discovery this service makes when it is given no catalog; with a catalog, its
    discovery's. System condarcs' envs dirs this user cannot write are shared too."""
    max_user_environments: int = 0
    """Most environments the user may have in their own envs dirs; 0: no limit."""
    min_free_space: int = 0
    """Bytes that must be free where the environment goes; 0: no check."""


@dataclass(frozen=True)
class PlannedPackage:
    """One conda package a restore would install."""

    name: str
    version: str
    build: str
    channel: str
    size: int | None
    url: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "channel": self.channel,
            "size": self.size,
            "url": self.url,
        }


@dataclass(frozen=True)
class RestorePlan:
    """What a restore would do: the target and everything it would install."""

    target: Path
    name: str | None
    engine: str
    packages: tuple[PlannedPackage, ...]
    pip: tuple[str, ...]
    channels: tuple[str, ...]
    warnings: tuple[str, ...]
    conflict: NameConflict | None = None
    """What already has the name or prefix (a dry run answers it instead of refusing)."""
    suggested_name: str | None = None
    """A free, valid name to restore under, when the asked (or spec's) one cannot be used."""

    def to_json(self) -> dict[str, Any]:
        return {
            "target": str(self.target),
            "name": self.name,
            "engine": self.engine,
            "packages": [p.to_json() for p in self.packages],
            "pip": list(self.pip),
            "channels": list(self.channels),
            "warnings": list(self.warnings),
            "conflict": self.conflict.to_json() if self.conflict is not None else None,
            "suggested_name": self.suggested_name,
        }


@dataclass(frozen=True)
class RestoreResult:
    """A finished restore."""

    prefix: Path
    name: str | None
    packages: int
    pip: int
    notebooks: tuple[CapsuleNotebook, ...] = ()
    """A capsule's notebooks, as packed: the caller writes them where they belong."""


class Progress(Protocol):
    """Where a restore reports progress; phases are solve, download, link, pip, register.

    A progress may also have `transfer(bytes_done, bytes_total, downloaded, downloading)`:
    the bytes and packages downloaded so far (called while packages download).
    """

    def phase(self, name: str, done: int, total: int) -> None: ...

    def log(self, line: str) -> None: ...


class _Silent:
    def phase(self, name: str, done: int, total: int) -> None:
        pass

    def log(self, line: str) -> None:
        pass


# --------------------------------------------------------------------------------------------
# the rattler side


class _Reporter:
    """Counts linked packages and downloaded bytes for rattler; `watch()` reports them.

    rattler calls the reporter from its worker threads, taking the GIL for each call: every
    kind of per-package callback cost about 8% of a 50-package local install, and waking
    the loop for each one three times that (measured). So the reporter has few callbacks
    (rattler calls only the ones an object has), which just count, and a task on the loop
    reports the counts a few times a second. The download callbacks run only for packages
    fetched over the network (not for the cache, nor `file://` channels), where a person
    waits for bytes anyway. rattler downloads and links package by package,
    so links follow downloads closely. The first link is reported at once, since that is
    when a cancel starts to need a cleanup.
    """

    _INTERVAL = 0.1
    _FIRST = 0.005

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        progress: Progress,
        total: int,
        *,
        links_in: Path | None = None,
    ) -> None:
        """With `links_in` (a prefix's conda-meta), links are counted there by `watch()`
        instead: for an install with nothing to download, rattler needs no reporter at all,
        and each callback costs it the GIL (measured: 4 ms of a 24 ms warm-cache install)."""
        self._loop = loop
        self._progress = progress
        self._total = total
        self._links_in = links_in
        self.linked = 0
        self.downloaded = 0
        # Per download: (bytes so far, size); only packages not in the cache are downloaded.
        self._bytes: dict[int, tuple[int, int]] = {}
        self._downloads = itertools.count()

    def on_link_complete(self, index: int) -> None:
        self.linked += 1
        if self.linked == 1:
            self._loop.call_soon_threadsafe(self._progress.phase, "link", 1, self._total)

    # The download callbacks only store numbers: a person reads bytes, not package counts,
    # while a large package downloads. They run only for packages the cache lacks.
    def on_download_start(self, cache_entry: int) -> int:
        # The token rattler hands back to the other download callbacks: one per download.
        index = next(self._downloads)
        self._bytes[index] = (0, 0)
        return index

    def on_download_progress(self, index: int, progress: int, total: int | None) -> None:
        self._bytes[index] = (progress, total or progress)

    def on_download_completed(self, index: int) -> None:
        self.downloaded += 1
        done, size = self._bytes.get(index, (0, 0))
        self._bytes[index] = (max(done, size), max(done, size))

    def _transfer(self) -> tuple[int, int, int, int]:
        sizes = list(self._bytes.values())
        return (
            sum(done for done, _ in sizes),
            sum(size for _, size in sizes),
            self.downloaded,
            len(sizes),
        )

    def report(self) -> None:
        """Report the current counts."""
        if self._links_in is not None:
            self.linked = _records_in(self._links_in)
        transfer = getattr(self._progress, "transfer", None)
        if transfer is not None and self._bytes:
            transfer(*self._transfer())
        self._progress.phase("link", self.linked, self._total)

    async def watch(self) -> None:
        """Report the counts whenever they changed, until cancelled."""
        seen: tuple[int, tuple[int, int, int, int]] = (0, (0, 0, 0, 0))
        while True:
            # Counted in conda-meta: often until the first link (from then on a cancel needs
            # a cleanup, and the first link is reported at once), then every interval.
            counting = self._links_in is not None
            await asyncio.sleep(self._FIRST if counting and not self.linked else self._INTERVAL)
            if self._links_in is not None:
                self.linked = _records_in(self._links_in)
            now = (self.linked, self._transfer())
            if now != seen:
                seen = now
                self.report()


def _records_in(conda_meta: Path) -> int:
    """How many package records a prefix's conda-meta holds (rattler writes one per package
    once it is linked)."""
    try:
        with os.scandir(conda_meta) as entries:
            return sum(1 for e in entries if e.name.endswith(".json"))
    except OSError:
        return 0


def _planned_locked(package: LockedConda) -> PlannedPackage:
    return PlannedPackage(
        name=package.name,
        version=package.version,
        build=package.build,
        channel=short_channel_name(package.channel, package.subdir),
        size=package.size,
        # A lock may carry credentials (`/t/<token>/`, `user:pass@`) to download with; a
        # plan is shown and returned, so it names the URL without them.
        url=redact_url(package.url),
    )


def _package_of(record: Any) -> PlannedPackage:
    channel = record.channel or channel_of_package_url(str(record.url)) or ""
    return PlannedPackage(
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        channel=short_channel_name(channel, record.subdir) if channel else "",
        size=record.size,
        url=str(record.url),
    )


def _dist_str(record: Any) -> str:
    """conda's `channel/subdir::name-version-build` of a record, for the history file."""
    channel = channel_url(record.channel or "", record.subdir) if record.channel else ""
    head = f"{channel}/{record.subdir}" if channel else record.subdir
    return f"{head}::{record.name.normalized}-{record.version}-{record.build}"


def _dist_str_locked(package: LockedConda) -> str:
    channel = redact_url(channel_url(package.channel, package.subdir))
    return f"{channel}/{package.subdir}::{package.name}-{package.version}-{package.build}"


def _name_problem(name: str) -> str | None:
    """Why `name` cannot name a new environment (conda's rules, and not the root's)."""
    problem = environment_name_problem(name) or name_length_problem(name)
    if problem is None and name in _RESERVED_NAMES:
        problem = f"'{name}' is the root environment's name"
    return problem


def usable_name(name: str) -> str:
    """A name conda accepts made from `name`: `my env` -> `my-env`, `base` -> `base-copy`."""
    cleaned = "".join(
        "-" if ch in "/:#" or ch.isspace() or not ch.isprintable() else ch for ch in name
    )
    cleaned = "-".join(part for part in cleaned.split("-") if part) or "environment"
    cleaned = shorten_name(cleaned)
    if cleaned in (".", ".."):
        cleaned = "environment"
    return f"{cleaned}-copy" if cleaned in _RESERVED_NAMES else cleaned


def _conflict_text(conflict: NameConflict) -> str:
    if conflict.reason == "environment":
        kernels = f" (kernel {', '.join(conflict.kernels)})" if conflict.kernels else ""
        return f"the environment at {conflict.prefix}{kernels}"
    return f"the folder {conflict.prefix} in an envs dir"


def _shown(text: str, limit: int = 60) -> str:
    """`text` quoted for a message, cut to `limit` characters with its length said."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _split_dist(filename: str) -> tuple[str, str, str] | None:
    for suffix in (".conda", ".tar.bz2"):
        if filename.endswith(suffix):
            parts = filename[: -len(suffix)].rsplit("-", 2)
            if len(parts) == 3:
                return parts[0], parts[1], parts[2]
    return None


# --------------------------------------------------------------------------------------------
# the service


@dataclass
class _History:
    """The block of `conda-meta/history` a rattler restore writes when it is done."""

    cmd: str
    added: list[str]
    specs: list[str]


@dataclass
class _Prepared:
    """A checked source: where, what, from which channels, with which records."""

    target: Path
    name: str | None
    records: list[Any]
    specs: list[str]
    channels: list[str]
    pip: tuple[str, ...]
    warnings: tuple[str, ...]
    locked: PlatformLock | None = None
    """The lock's part for this platform, when the restore installs it exactly."""


class RestoreService:
    """Plans and runs restores; plain class, one per server (or per CLI invocation)."""

    def __init__(
        self,
        options: RestoreOptions,
        *,
        environ: Mapping[str, str] | None = None,
        home: Path | None = None,
        log: logging.Logger | None = None,
        catalog: EnvironmentCatalog | None = None,
    ) -> None:
        """`catalog` names the environments (the server's, with its configuration); by
        default one is made over this service's discovery."""
        if options.engine not in ENGINE_NAMES:
            raise RestoreError(
                f"unknown restore engine {options.engine!r}; use one of {', '.join(ENGINE_NAMES)}"
            )
        self.options = options
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.home = environ_home(self.environ, home)
        self.log = log or logging.getLogger(__name__)
        # Targets this process is building; the on-disk claim covers other processes.
        self._active: set[Path] = set()
        # Targets a rattler install has started writing into: removal must let it settle.
        self._linking: set[Path] = set()
        self._virtual_packages: list[Any] | None = None
        self._catalog = catalog
        self._own_discovery: EnvironmentDiscovery | None = None
        self.reserved_targets: Callable[[], Iterable[Path]] = tuple
        """Targets of restores accepted but not started yet (the job queue's), counted
        against `max_user_environments`."""

    # -- targets -----------------------------------------------------------------------------

    def _discovery(self) -> EnvironmentDiscovery:
        if self._catalog is not None:
            return self._catalog.discovery
        if self._own_discovery is None:
            self._own_discovery = EnvironmentDiscovery(
                environ=self.environ,
                home=self.home,
                log=self.log,
                shared_envs_dirs=self.options.shared_envs_dirs,
            )
        return self._own_discovery

    # Configuration alone: no rescan of every environment (each restore changes that list).
    def _envs_dirs(self) -> tuple[Path, ...]:
        return self._discovery().folders().envs_dirs

    def _shared_dirs(self) -> tuple[Path, ...]:
        return self._discovery().folders().shared_dirs

    def _own_envs_dirs(self) -> list[Path]:
        """The envs dirs a named environment may go into: writable, not shared (and not
        leading into a shared folder through a symlink), in conda's order."""
        shared = self._shared_dirs()
        return [
            d
            for d in self._envs_dirs()
            if is_writable_dir(d) and shared_folder_of(d, shared) is None
        ]

    def _check_not_shared(self, target: Path) -> None:
        """Refuse a target inside a shared folder, however it was reached."""
        folder = shared_folder_of(target, self._shared_dirs())
        if folder is None:
            return
        raise SharedTarget(
            f"{target} is in {folder}, an administrator's shared folder of environments "
            "(read-only: restores never write there); choose a name or a prefix in your own "
            f"envs dir{self._own_dir_hint()}"
        )

    def _own_dir_hint(self) -> str:
        own = self._own_envs_dirs()
        return f" (a name goes into {own[0]})" if own else ""

    def check_limits(self, target: Path) -> None:
        """The administrator's per-user limits for a restore into `target`, before anything
        is created: TooManyEnvironments, NotEnoughSpace."""
        limit = self.options.max_user_environments
        if limit > 0:
            own = [os.path.realpath(d) for d in self._own_envs_dirs()]
            discovered = self._discovery().discover()
            # Every environment the user could remove counts, wherever it is (a prefix nested
            # in an envs dir or under an allowed root too); the base installation, the
            # server's own environment and shared ones do not.
            mine = [
                e.prefix
                for e in discovered.environments
                if not e.shared
                and not e.is_server_env
                and e.prefix != discovered.base_prefix
                and os.access(e.prefix, os.W_OK)
            ]
            # Restores being built (or queued) count too: they are not listed yet.
            building = {*self._active, *self.reserved_targets()}
            counted = {Path(os.path.realpath(p)) for p in (*mine, *building)}
            counted.discard(Path(os.path.realpath(target)))
            count = len(counted)
            if count >= limit:
                listed = ", ".join(sorted(p.name for p in mine)[:10])
                raise TooManyEnvironments(
                    f"you have {count} environments (in {', '.join(own)}), the most this "
                    f"server allows (ReproApp.max_user_environments = {limit}); delete one "
                    f"you no longer need (conda env remove -n NAME, or remove its folder) "
                    f"and restore again{f'; yours: {listed}' if listed else ''}"
                )
        wanted = self.options.min_free_space
        if wanted > 0:
            where = existing_folder(target.parent)
            free = free_space(where)
            if free < wanted:
                raise NotEnoughSpace(
                    f"only {format_size(free)} free on the file system of {where}; this "
                    f"server restores only with at least {format_size(wanted)} free "
                    "(ReproApp.min_free_space): free some space there (delete environments "
                    "you no longer need) and restore again"
                )

    def name_conflict(self, name: str) -> NameConflict | None:
        """What already has `name`, as conda sees it: a listed environment of that name, or
        a folder of that name in any envs dir (not only the one a restore writes into).

        Taking such a name would give the new environment a kernel another environment has
        now (nb_conda_kernels names clashing environments by their installation), so every
        notebook on that kernel would silently run elsewhere.
        """
        catalog = self._catalog or EnvironmentCatalog(self._discovery())
        for entry in catalog.entries():
            if entry.name == name:
                return NameConflict(
                    name, entry.environment.prefix, "environment", tuple(entry.kernel_names)
                )
        # Shared folders too: an administrator's environment keeps its name for everyone.
        for envs_dir in dict.fromkeys((*self._envs_dirs(), *self._shared_dirs())):
            if os.path.lexists(envs_dir / name):
                return NameConflict(name, envs_dir / name, "folder")
        return None

    def free_name(self, wanted: str) -> str:
        """A valid name made from `wanted` that no environment or envs dir has: `wanted`,
        else `wanted-2`, `wanted-3`, ..."""
        base = usable_name(wanted)
        for number in range(1, 1000):
            candidate = base if number == 1 else shorten_name(f"{base}-{number}")
            if self.name_conflict(candidate) is None and candidate not in self._active_names():
                return candidate
        raise RestoreError(f"no free environment name like {base!r}; give another name")

    def check_name(self, name: str) -> NameCheck:
        """Whether a restore could use `name` now, and where it would go: for a name field
        validated as the user types (no solve, a few stat calls)."""
        problem = text_problem(name, "the name") or name_length_problem(name) or _name_problem(name)
        if problem is not None:
            return NameCheck(name, None, problem, None, self.free_name(name) if name else None)
        writable = self._own_envs_dirs()
        if not writable:
            return NameCheck(name, None, "no writable envs directory", None, None)
        target = Path(os.path.realpath(writable[0])) / name
        conflict = self.name_conflict(name)
        if conflict is None and name in self._active_names():
            conflict = NameConflict(name, target, "prefix")
        suggested = self.free_name(name) if conflict is not None else None
        return NameCheck(name, target, None, conflict, suggested)

    def _active_names(self) -> set[str]:
        return {target.name for target in self._active}

    def resolve_target(
        self,
        *,
        name: str | None,
        prefix: str | os.PathLike[str] | None,
        source: RestoreSource,
    ) -> tuple[Path, str | None]:
        """Where the environment goes and its name; refuses bad names and existing targets.

        A name goes into the first writable envs dir; without name and prefix the spec's
        `name:` is used. A spec's `prefix:` is never used.
        """
        if name is not None and prefix is not None:
            raise RestoreError("give a name or a prefix, not both")
        if name is not None:
            # What the caller typed (not the spec's name, see below): a 400, not a 422.
            problem = text_problem(name, "the name") or name_length_problem(name)
            if problem is not None:
                raise InvalidTarget(f"cannot use {_shown(name)} as an environment name: {problem}")
        if prefix is not None:
            raw = os.fspath(prefix)
            # Before any path function: NUL makes them raise ValueError.
            problem = text_problem(raw, "the prefix")
            if problem is not None:
                raise InvalidTarget(f"cannot restore into {_shown(raw, 300)}: {problem}")
            target = Path(os.path.abspath(os.path.expanduser(raw)))
            result_name: str | None = None
        else:
            chosen = name if name is not None else (source.spec.name if source.spec else None)
            if chosen is None:
                raise RestoreError(
                    f"{source.origin} names no environment; give a name or a prefix to restore into"
                )
            problem = _name_problem(chosen)
            if problem is not None and name is None:
                # The spec's own name: the spec is still good under another one.
                raise RefusedSpec(
                    f"the name in {source.origin}, {_shown(chosen)}, cannot be used as an "
                    f"environment name ({problem}); give another name, such as "
                    f"{usable_name(chosen)!r} (--name on the command line, `name` in the "
                    "request, the name field in the dialog), or a prefix"
                )
            if problem is not None:
                raise RefusedSpec(f"cannot use {chosen!r} as an environment name: {problem}")
            # Never a shared folder, even one listed first that this process may write.
            writable = self._own_envs_dirs()
            if not writable:
                raise RestoreError(
                    "no writable envs directory of your own to put a named environment in "
                    "(shared folders are read-only); give a prefix, or add a writable "
                    "folder to envs_dirs in ~/.condarc"
                )
            target = writable[0] / chosen
            result_name = chosen
        target = Path(os.path.realpath(target.parent)) / target.name
        # The envs dir, or a symlink on the way, may bring what the name or prefix had not.
        problem = text_problem(os.fspath(target), "the target") or prefix_length_problem(
            os.fspath(target)
        )
        if problem is not None:
            raise InvalidTarget(f"cannot restore into {_shown(os.fspath(target), 300)}: {problem}")
        # Also where the target itself is a symlink into a shared folder.
        self._check_not_shared(target)
        if prefix is not None:
            self._check_prefix_allowed(target)
        if target in self._active:
            raise TargetBusy(
                f"another restore is already building {target}; wait for it or cancel it"
            )
        if os.path.lexists(target / "conda-meta" / ".jupyter_repro_restoring"):
            raise TargetBusy(
                f"a restore is building {target} (or one was interrupted: restarting the "
                "server removes its leftovers); wait, or choose another name"
            )
        # Before the name checks: a dry run answers a taken name with a plan, not a limit.
        self.check_limits(target)
        if result_name is not None:
            conflict = self.name_conflict(result_name)
            if conflict is not None:
                suggested = self.free_name(result_name)
                raise NameTaken(
                    f"the name {result_name!r} is taken by {_conflict_text(conflict)}; a "
                    "restore never takes another environment's name: choose another name, "
                    f"such as {suggested!r} (--name on the command line, `name` in the "
                    "request, the name field in the dialog)",
                    conflict,
                    suggested,
                )
        if os.path.lexists(target):
            conflict = NameConflict(result_name, target, "prefix")
            suggested = self.free_name(target.name)
            raise NameTaken(
                f"{target} already exists; a restore never overwrites an environment: choose "
                f"another name (such as {suggested!r}) or prefix, or remove the existing one "
                "first",
                conflict,
                suggested,
            )
        return target, result_name

    def _conflict_target(
        self, conflict: NameConflict, name: str | None, prefix: str | os.PathLike[str] | None
    ) -> tuple[Path, str | None]:
        if conflict.reason == "prefix" or prefix is not None:
            return conflict.prefix, conflict.name
        writable = self._own_envs_dirs()
        target = (writable[0] if writable else conflict.prefix.parent) / (conflict.name or "")
        return Path(os.path.realpath(target.parent)) / target.name, conflict.name

    def _check_prefix_allowed(self, target: Path) -> None:
        """On the server, a prefix must lie inside an envs dir or an allowed root."""
        roots = self.options.allowed_prefix_roots
        if roots is None:
            return
        shared = self._shared_dirs()
        envs_dirs = [d for d in self._envs_dirs() if shared_folder_of(d, shared) is None]
        allowed = [*envs_dirs, *roots]
        if is_within_any(target, allowed):
            return
        raise InvalidTarget(
            f"{target} is not inside a folder this server restores into; give a name (the "
            "environment then goes into the first writable envs dir), or a prefix inside one "
            f"of: {', '.join(map(os.fspath, allowed))} (an administrator can add folders with "
            "ReproApp.allowed_prefix_roots)"
        )

    # -- policy ------------------------------------------------------------------------------

    def _config(self) -> CondaConfig:
        return read_conda_config(self.environ, self.home)

    def _check_channels(
        self, channels: Sequence[str], urls: Sequence[str], config: CondaConfig
    ) -> None:
        allowed = self.options.allowed_channels
        if allowed is None:
            return
        permitted = {normalized_channel(a, config) for a in allowed}
        for written, url in zip(channels, urls, strict=True):
            if url.rstrip("/") not in permitted:
                raise RefusedSpec(
                    f"channel {redact_url(written)!r} ({redact_url(url)}) is not allowed on "
                    f"this server; allowed: {', '.join(map(redact_url, allowed)) or 'none'}"
                )

    def _spec_channels(self, spec: EnvironmentSpec, config: CondaConfig) -> list[str]:
        """Every channel the conda part of `spec` can take packages from, as URLs, checked
        against `allowed_channels`: its `channels:` (else the condarc's, else `defaults`),
        each dependency's own (`chan::pkg`, `pkg[channel=...]`), and the channel of each
        package URL it names (`pkg[url=...]`), which must be inside an allowed channel."""
        written = list(spec.channels) or list(config.channels) or [DEFAULTS]
        package_urls: list[str] = []
        for dependency in spec.dependencies:
            try:
                parsed = parse_match_spec(dependency)
            except InvalidMatchSpec:
                continue  # refused when the spec was read; the solver says it again
            if parsed.subdir is not None and not is_subdir(parsed.subdir):
                raise RefusedSpec(
                    f"{redact_text(dependency)!r} names the subdir {parsed.subdir!r}, which is "
                    "not a platform subdir such as 'linux-64' or 'noarch'"
                )
            if parsed.channel and parsed.channel not in written:
                written.append(parsed.channel)
            if parsed.url is not None:
                package_urls.append(parsed.url)
        pairs = [(channel, url) for channel in written for url in channel_urls([channel], config)]
        self._check_channels([c for c, _ in pairs], [u for _, u in pairs], config)
        for url in package_urls:
            self._check_package_url(url, config)
        return list(dict.fromkeys(url for _, url in pairs))

    def check_lock_urls(self, lock: Any) -> None:
        """Refuse (RefusedSpec) a lock naming a package outside `allowed_channels`, on any of
        its platforms: what a pack would download from, checked before anything is."""
        if self.options.allowed_channels is None:
            return
        config = self._config()
        for part in lock.platforms:
            for package in part.conda:
                self._check_package_url(package.url, config)

    def _check_package_url(self, url: str, config: CondaConfig) -> None:
        """A package named by URL comes from inside an allowed channel, or is refused."""
        allowed = self.options.allowed_channels
        if allowed is None:
            return
        path = urlsplit(url).path if "://" in url else url
        # `..` (also percent-encoded) could climb out of an allowed channel's folder.
        inside = ".." not in unquote(path).split("/") and any(
            url.startswith(normalized_channel(a, config) + "/") for a in allowed
        )
        if not inside:
            raise RefusedSpec(
                f"the package URL {redact_url(url)} is not inside a channel allowed on this "
                f"server; allowed: {', '.join(map(redact_url, allowed)) or 'none'}"
            )

    def _check_pip(self, source: RestoreSource) -> None:
        entries = source.spec.pip if source.spec is not None else ()
        expanded = [e for e in entries if "${" in e]
        if expanded:
            # pip expands `${NAME}` in a requirements file from its own environment: a
            # spec from a stranger could read the server's secrets into the job log.
            raise RefusedSpec(
                f"the pip section of {source.origin} uses environment variables "
                f"({redact_text(expanded[0])!r}), which are not expanded on restore; write the "
                "value out, or ask an administrator to configure the index (pip_index_url)"
            )
        if self.options.allow_pip_urls:
            return
        refused = [*source.pip_urls, *source.pip_options]
        if refused:
            raise RefusedSpec(
                f"the pip section of {source.origin} has URLs, local paths or pip options "
                f"({', '.join(refused[:3])}{', ...' if len(refused) > 3 else ''}), which this "
                "server does not install; ask an administrator to set allow_pip_urls, or list "
                "plain requirements (name==version)"
            )

    def _check_platform(self, source: RestoreSource) -> None:
        if source.kind == "explicit" and source.platform and source.platform != host_platform():
            raise RestoreError(
                f"{source.origin} lists packages for {source.platform}, but this machine is "
                f"{host_platform()}; restore from an environment.yml instead"
            )
        if source.kind == "capsule" and host_platform() not in source.capsule_platforms:
            # No dated solve: a capsule restores offline, from its own archives only.
            have = ", ".join(source.capsule_platforms) or "none"
            raise RestoreError(
                f"the capsule {source.origin} has no packages for this machine's platform "
                f"{host_platform()}; it has packages for: {have}. Pack it for "
                f"{host_platform()} too (jupyter repro pack --platform {host_platform()} ...)"
            )

    # -- solving -----------------------------------------------------------------------------

    def _cache_dir(self) -> Path:
        """rattler's package cache for this restore, always concrete (see restore/cache.py)."""
        return package_cache_dir(self.options.cache_dir, self.environ, self.home)

    async def _virtual(self) -> list[Any]:
        if self._virtual_packages is None:
            self._virtual_packages = await asyncio.to_thread(detect_virtual_packages, self.environ)
        return self._virtual_packages

    async def _solve_spec(
        self, source: RestoreSource, config: CondaConfig
    ) -> tuple[list[Any], list[str], list[str]]:
        """Solve the spec for this machine; a lock's spec is solved as of the lock's date."""
        from rattler import Channel, Gateway, MatchSpec, solve
        from rattler.exceptions import GatewayError, SolverError

        spec = source.spec
        assert spec is not None
        urls = self._spec_channels(spec, config)
        specs = list(spec.dependencies)
        try:
            match_specs = [MatchSpec(s) for s in specs]
        except Exception as error:
            raise SpecError(str(error), source=source.origin) from error
        try:
            records = await solve(
                sources=[Channel(url) for url in urls],
                specs=match_specs,
                gateway=Gateway(show_progress=False),
                platforms=cast(Any, [host_platform(), "noarch"]),
                virtual_packages=await self._virtual(),
                exclude_newer=source.lock.as_of if source.lock is not None else None,
            )
        except SolverError as error:
            raise UnsatisfiableSpec(
                f"cannot satisfy {', '.join(specs) or 'the spec'} from {', '.join(urls)}: {error}"
            ) from error
        except GatewayError as error:
            raise RestoreError(
                f"cannot read the channels {', '.join(urls)}: {error}; check the channel names "
                "and that they are reachable"
            ) from error
        return list(records), specs, urls

    async def _explicit_records(
        self, source: RestoreSource, config: CondaConfig
    ) -> tuple[list[Any], list[str], list[str]]:
        """The repodata records of an explicit list, by URL: no solve, exactly these builds."""
        from rattler import Channel, Gateway, MatchSpec
        from rattler.exceptions import GatewayError

        groups: dict[tuple[str, str], list[ExplicitEntry]] = {}
        for entry in source.explicit:
            channel = channel_of_package_url(entry.url)
            subdir = entry.url.rsplit("/", 2)[-2] if entry.url.count("/") >= 2 else ""
            if channel is None:
                raise SpecError(f"{entry.url} is not a channel package URL", source=source.origin)
            groups.setdefault((channel, subdir), []).append(entry)
        channels = sorted({c for c, _ in groups})
        self._check_channels(channels, channels, config)
        gateway = Gateway(show_progress=False)
        records: list[Any] = []
        specs: list[str] = []
        for (channel, subdir), entries in groups.items():
            wanted: dict[str, ExplicitEntry] = {}
            match_specs = []
            for entry in entries:
                filename = entry.url.rsplit("/", 1)[-1]
                dist = _split_dist(filename)
                if dist is None:
                    raise SpecError(f"{filename} is not name-version-build", source=source.origin)
                wanted[filename] = entry
                match_specs.append(MatchSpec(f"{dist[0]}=={dist[1]}={dist[2]}"))
                specs.append(f"{dist[0]}=={dist[1]}={dist[2]}")
            try:
                found = await gateway.query(
                    [Channel(channel)], cast(Any, [subdir]), match_specs, recursive=False
                )
            except GatewayError as error:
                raise RestoreError(f"cannot read the channel {channel}: {error}") from error
            by_file = {r.file_name: r for rows in found for r in rows}
            for filename, entry in wanted.items():
                record = by_file.get(filename)
                if record is None:
                    raise RestoreError(
                        f"{entry.url} is not in its channel's index any more; restore from an "
                        "environment.yml instead"
                    )
                self._check_hash(entry, record)
                records.append(record)
        return records, specs, channels

    @staticmethod
    def _check_hash(entry: ExplicitEntry, record: Any) -> None:
        expected = entry.md5 or entry.sha256
        actual = (record.md5 if entry.md5 else record.sha256) if expected else None
        if expected and actual is not None and actual.hex() != expected:
            raise RestoreError(
                f"checksum mismatch for {entry.url}: the list says {expected}, the channel "
                f"{actual.hex()}; the package changed since the list was written"
            )

    async def _prepare(
        self,
        source: RestoreSource,
        name: str | None,
        prefix: str | os.PathLike[str] | None,
        conflict: NameConflict | None = None,
    ) -> _Prepared:
        if conflict is None:
            target, result_name = self.resolve_target(name=name, prefix=prefix, source=source)
        else:
            # The plan of a name or prefix that is taken (see `plan`): where it would go.
            target, result_name = self._conflict_target(conflict, name, prefix)
        self._check_platform(source)
        self._check_pip(source)
        config = await asyncio.to_thread(self._config)
        locked = self._locked_part(source, config)
        if locked is not None:
            assert source.spec is not None
            pip = tuple(_pypi_line(p) for p in locked.pypi) or source.spec.pip
            channels = sorted({redact_url(p.channel) for p in locked.conda})
            specs = list(source.spec.dependencies)
            warnings = source.warnings + _capsule_notes(source)
            return _Prepared(target, result_name, [], specs, channels, pip, warnings, locked)
        warnings = source.warnings + self._fallback_notes(source)
        if source.kind == "explicit":
            records, specs, channels = await self._explicit_records(source, config)
        else:
            records, specs, channels = await self._solve_spec(source, config)
        pip = source.spec.pip if source.spec else ()
        return _Prepared(target, result_name, records, specs, channels, pip, warnings)

    def _locked_part(self, source: RestoreSource, config: CondaConfig) -> PlatformLock | None:
        """This platform's part of a lock source, every URL checked against the channel
        policy; None when the source is no lock, or a lock without this platform (which the
        caller re-solves as of the lock's date)."""
        lock = source.lock
        if lock is None:
            return None
        locked = lock.platform(host_platform())
        if locked is None:
            if not lock.conda_specs:
                have = ", ".join(lock.platform_names) or "none"
                raise RestoreError(
                    f"{source.origin} has no lock for this machine's platform "
                    f"{host_platform()} (it has: {have}) and no spec to solve from; lock the "
                    f"environment for {host_platform()} too (jupyter repro lock --platform "
                    f"{host_platform()}), or restore from its environment.yml"
                )
            return None
        channels = sorted({p.channel for p in locked.conda})
        self._check_channels(channels, channels, config)
        for package in locked.conda:
            self._check_package_url(package.url, config)
            if package.subdir not in (host_platform(), "noarch"):
                raise RefusedSpec(
                    f"{source.origin}: {package.dist_name} is a {package.subdir} package in "
                    f"the lock for {host_platform()}; the lock is damaged, re-lock it"
                )
        return locked

    def _fallback_notes(self, source: RestoreSource) -> tuple[str, ...]:
        lock = source.lock
        if lock is None:
            return ()
        when = lock.as_of.strftime("%Y-%m-%d") if lock.as_of else "now"
        return (
            f"solved as of {when}; no lock for {host_platform()} in {source.origin} "
            f"(it has: {', '.join(lock.platform_names) or 'none'})",
        )

    async def plan(
        self,
        source: RestoreSource,
        *,
        name: str | None = None,
        prefix: str | os.PathLike[str] | None = None,
        suggest_name: bool = True,
    ) -> RestorePlan:
        """Solve only (dry run); nothing on disk is touched.

        With `suggest_name`, a spec whose own name cannot be used is planned under a usable
        name made from it, with a warning: the plan is where the user picks the name the
        restore will use. Without it, such a spec is refused as the restore would refuse it.
        """
        notes: tuple[str, ...] = ()
        suggested: str | None = None
        own = source.spec.name if source.spec is not None else None
        if suggest_name and name is None and prefix is None and own is not None:
            problem = _name_problem(own)
            if problem is not None:
                name = suggested = self.free_name(own)
                notes = (
                    f"the spec's name {own!r} cannot be used ({problem}); planned as "
                    f"{name!r}: give the name to use (--name, `name`, the dialog's name field)",
                )
        conflict: NameConflict | None = None
        try:
            prepared = await self._prepare(source, name, prefix)
        except NameTaken as taken:
            if not suggest_name or taken.conflict is None:
                raise
            # A dry run answers the conflict, with the plan of the name it was asked for:
            # the dialog shows both and lets the user pick a free name.
            conflict, suggested = taken.conflict, taken.suggested_name
            prepared = await self._prepare(source, name, prefix, conflict=conflict)
        return RestorePlan(
            target=prepared.target,
            name=prepared.name,
            engine=self.options.engine,
            packages=(
                tuple(_planned_locked(p) for p in prepared.locked.conda)
                if prepared.locked is not None
                else tuple(_package_of(r) for r in prepared.records)
            ),
            pip=prepared.pip,
            channels=tuple(prepared.channels),
            warnings=prepared.warnings + notes,
            conflict=conflict,
            suggested_name=suggested,
        )

    # -- restoring ---------------------------------------------------------------------------

    async def restore(
        self,
        source: RestoreSource,
        *,
        name: str | None = None,
        prefix: str | os.PathLike[str] | None = None,
        progress: Progress | None = None,
    ) -> RestoreResult:
        """Build the environment; on failure or cancellation remove what this call created."""
        progress = progress or _Silent()
        # A capsule's pre-flight only reads (the capsule, the package cache, condarcs): a
        # worker starts on it at once, while the target is checked and claimed here.
        # (Submitted to the executor now: a task would not start before the first await.)
        stop_preflight = threading.Event()
        early = (
            asyncio.get_running_loop().run_in_executor(
                None, lambda: (self._config(), self._capsule_preflight(source, stop_preflight))
            )
            if source.kind == "capsule"
            else None
        )
        try:
            target, result_name = self.resolve_target(name=name, prefix=prefix, source=source)
        except BaseException:
            _abandon(early, stop_preflight)
            raise
        # Claimed in memory before the first await: a second restore in this process that
        # starts while the first one solves is refused at once.
        self._active.add(target)
        created = False
        # A capsule's archives, unpacked for this restore only (removed in any case).
        extraction: Path | None = None
        # What the restore is doing, for the message of a full or read-only file system.
        doing = "creating the environment folder"
        try:
            # Policy first: a refused spec must not even create the folder.
            self._check_platform(source)
            self._check_pip(source)
            try:
                # On the loop's thread, not in a worker: a few syscalls, and a claim made by a
                # thread whose awaiter was cancelled meanwhile would leave a folder nobody owns.
                # The claim removes its folder itself if it fails half-way.
                claim_target(target)
            except ClaimRefused as refused:
                cls = TargetBusy if refused.busy else TargetExists
                raise cls(
                    f"{target} is being restored or already exists; choose another target"
                ) from None
            except ClaimMoved:
                # Checked against the allowed roots as it was; not followed where it leads now.
                raise InvalidTarget(
                    f"a folder on the way to {target} became a symlink while the restore "
                    "started; nothing was created there: choose another prefix"
                ) from None
            created = True
            progress.log(f"restoring {source.origin} into {target}")
            preflight: _Preflight | None = None
            if early is not None:
                doing = "extracting the capsule"
                config, preflight = await early
            else:
                config = await asyncio.to_thread(self._config)
            history: _History | None = None
            installing = source
            notebooks: tuple[CapsuleNotebook, ...] = ()
            from_cache: dict[str, Verified] = {}
            checked: dict[str, str] = {}
            if preflight is not None:
                # What the package cache holds with the lock's sha256 is not unpacked again.
                from_cache = preflight.records
                if from_cache:
                    progress.log(
                        f"{len(from_cache)} packages are in the package cache with the lock's "
                        "sha256; they are not unpacked from the capsule"
                    )
                assert source.capsule is not None
                if preflight.notebooks is not None:
                    # Nothing to unpack: the notebooks were read (and checked) on the way.
                    progress.log(f"nothing to unpack from {source.origin}: installing offline")
                    notebooks, read_lock = preflight.notebooks, preflight.lock
                else:
                    extraction = Path(tempfile.mkdtemp(prefix="jupyter-repro-capsule-"))
                    extracted, notebooks = await self._extract(
                        source, extraction, progress, skip=from_cache, check_all=not preflight.known
                    )
                    read_lock = extracted.lock
                    installing = dataclasses.replace(
                        source, archives=dict(extracted.conda_paths), wheels=extracted.wheels_dir
                    )
                    checked = extracted.conda_md5
                planned = source.lock
                if planned is None or read_lock is None or not _same_lock(read_lock, planned):
                    # Its archives were checked against the lock read now, not the one planned.
                    raise RestoreError(
                        f"{source.origin} changed while it was being restored; start again"
                    )
                if (
                    not preflight.known
                    and await asyncio.to_thread(file_sha256, source.capsule) == preflight.digest
                ):
                    await asyncio.to_thread(
                        remember_checked, preflight.digest, self.environ, self.home
                    )
            doing = "installing the packages"
            if self.options.engine == EMBEDDED_ENGINE or source.lock is not None:
                # A lock is installed by the embedded engine, which verifies every archive
                # against it before linking (a CLI would solve or trust its cache).
                packages, history = await self._install_rattler(
                    installing, target, config, progress, from_cache=from_cache, checked=checked
                )
                history.cmd = self._command_line(source, prefix, target)
            else:
                packages = await self._install_cli(source, target, config, progress)
            doing = "installing the pip section"
            pip = await self._install_pip(installing, target, progress)
            doing = "registering the environment"
            progress.phase("register", 0, 1)
            # The CLI engines write the spec's variables themselves (they get the whole spec).
            variables = source.spec.variables if source.spec and history is not None else ()
            warnings = await asyncio.to_thread(self._publish, target, history, variables)
            for warning in warnings:
                progress.log(warning)
            progress.phase("register", 1, 1)
            progress.log(f"restored {packages} packages into {target}")
            created = False
            return RestoreResult(
                prefix=target, name=result_name, packages=packages, pip=pip, notebooks=notebooks
            )
        except Exception as error:
            problem = self._disk_error(error, target, doing)
            if problem is None:
                raise
            progress.log(f"{doing}: {error}")
            raise problem from error
        finally:
            try:
                if extraction is not None:
                    await asyncio.shield(
                        asyncio.to_thread(shutil.rmtree, extraction, ignore_errors=True)
                    )
                if created:
                    progress.log(f"removing the partial environment {target}")
                    # Shielded: a second cancellation must not leave half a prefix behind.
                    settle = target in self._linking
                    await asyncio.shield(asyncio.to_thread(remove_prefix, target, settle=settle))
            finally:
                _abandon(early, stop_preflight)
                self._active.discard(target)
                self._linking.discard(target)

    async def _shared_cache(self) -> SharedCache | None:
        """This user's part of the package cache when it is shared, prepared; else None."""
        cache = self._cache_dir()
        if not self.options.shared_package_cache and not await asyncio.to_thread(
            is_shared_cache, cache
        ):
            return None
        return await asyncio.to_thread(prepare_shared_cache, cache)

    def _capsule_preflight(
        self, source: RestoreSource, stop: threading.Event | None = None
    ) -> _Preflight:
        """Before a capsule is unpacked (one worker thread): the records of the packages the
        package cache holds (`_cached`, `_cached_records`), the capsule file's sha256, and
        whether this user checked every member of that file before
        (restore/checked_capsules.py). When that file was checked and the cache holds every
        package it has for this platform (a capsule restored here before), nothing is
        unpacked: its notebooks are read here, with the lock they come with. `stop` set (the
        restore was refused meanwhile) stops the hashing of the capsule file."""
        from ..specs.capsule import CapsuleError, read_capsule_notebooks, unpacked_for

        assert source.capsule is not None
        locked = source.lock.platform(host_platform()) if source.lock is not None else None
        cached = self._cached(source)
        records = (
            _cached_records(locked.conda, cached, source.capsule_md5) if locked and cached else {}
        )
        # One open file for the hash and the notebooks: both read the same bytes.
        try:
            opened = open(source.capsule, "rb")  # noqa: SIM115 - closed below
        except OSError as error:
            raise CapsuleError(
                f"cannot read the capsule: {error.strerror or error}", source=str(source.capsule)
            ) from None
        with opened as stream:
            before = os.fstat(stream.fileno())
            digest = stream_sha256(stream, stop)
            known = was_checked(digest, self.environ, self.home)
            if not known or source.lock is None:
                return _Preflight(records, digest, known)
            stream.seek(0)
            manifest, lock, notebooks = read_capsule_notebooks(source.capsule, stream=stream)
            after = os.fstat(stream.fileno())
        # Changed since it was planned, or while it was read: the extraction reads it again,
        # and says so.
        if (
            not _same_lock(lock, source.lock)
            or (after.st_size, after.st_mtime_ns, after.st_ctime_ns)
            != (before.st_size, before.st_mtime_ns, before.st_ctime_ns)
            or unpacked_for(manifest, lock, host_platform(), records)
        ):
            return _Preflight(records, digest, known)
        return _Preflight(
            records,
            digest,
            known,
            tuple(CapsuleNotebook(name.rpartition("/")[2], data) for name, data in notebooks),
            lock,
        )

    def _cached(self, source: RestoreSource) -> dict[str, tuple[str, os.stat_result]]:
        """This platform's locked packages the package cache holds, extracted from an archive
        with the lock's sha256: lock URL -> the cache entry and the stat of its index.json
        (this user's own part of a shared cache: another user's entries are never linked
        from)."""
        locked = source.lock.platform(host_platform()) if source.lock is not None else None
        if locked is None:
            return {}
        cache = rattler_cache_dir(
            self._cache_dir(),
            self.options.shared_package_cache,
            environ=self.environ,
            home=self.home,
        )
        found = cached_entries(cache, {p.dist_name: p.sha256 for p in locked.conda if p.sha256})
        folder = os.path.join(cache, "")
        return {
            p.url: (folder + p.dist_name, found[p.dist_name])
            for p in locked.conda
            if p.dist_name in found and p.sha256
        }

    @staticmethod
    async def _extract(
        source: RestoreSource,
        extraction: Path,
        progress: Progress,
        *,
        skip: Collection[str] = (),
        check_all: bool = True,
    ) -> tuple[ExtractedCapsule, tuple[CapsuleNotebook, ...]]:
        """Unpack the capsule into `extraction`, checking every member against its manifest
        (and the manifest against the lock). A cancel stops the unpacking and returns once
        it stopped, so the folder can be removed after."""
        assert source.capsule is not None
        loop = asyncio.get_running_loop()
        cancel = threading.Event()

        def report(done: int, total: int) -> None:
            loop.call_soon_threadsafe(progress.phase, "extract", done, total)

        progress.log(f"extracting {source.origin} (offline: no channel is used)")
        progress.phase("extract", 0, 1)
        extract = _extract_capsule()
        assert source.capsule is not None
        capsule = source.capsule

        def work() -> tuple[ExtractedCapsule, tuple[CapsuleNotebook, ...]]:
            extracted = extract(
                capsule,
                extraction,
                progress=report,
                cancel=cancel,
                platform=host_platform(),
                skip=skip,
                check_all=check_all,
            )
            # In the same worker: the notebooks are read back at once (they are small).
            return extracted, _read_notebooks(extracted)

        task = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            cancel.set()
            await asyncio.gather(task, return_exceptions=True)
            raise
        except OSError as error:
            found = disk_errno(error)
            if found is None:
                raise
            # The extraction folder, not the environment's, is where room is missing.
            what = os.strerror(found[0]).lower()
            raise DiskError(
                f"{what} in {extraction.parent} (while extracting the capsule); free some "
                "space there, or point TMPDIR at a folder with room for the capsule's "
                "archives"
            ) from error

    @staticmethod
    def _disk_error(error: Exception, target: Path, doing: str) -> DiskError | None:
        """`error` as a DiskError when a full, read-only or forbidden file system is behind
        it (an OSError, rattler's `(os error N)`, pip's `[Errno N]`), else None.

        Errors of our own already say what went wrong (a channel that cannot be read names
        its `os error` too), except pip's, whose message is pip's output.
        """
        if isinstance(error, RestoreError) and doing != "installing the pip section":
            return None
        message = disk_problem(error, target, doing)
        return None if message is None else DiskError(message)

    def _publish(
        self,
        target: Path,
        history: _History | None,
        variables: Sequence[tuple[str, str]] = (),
    ) -> list[str]:
        """Make the finished prefix an environment: history, the spec's variables, no
        marker, listed for conda. Returns warnings for the log.

        The CLI engines write their own history and variables; rattler does neither.
        """
        if history is not None:
            # rattler tags new prefixes as caches; conda does not, and backup tools skip
            # tagged folders, so the environment is left as conda would leave it.
            (target / "CACHEDIR.TAG").unlink(missing_ok=True)
            write_history(target, cmd=history.cmd, added=history.added, update_specs=history.specs)
        if variables:
            # Before the marker goes: nobody may see the environment without its variables.
            write_env_vars(target, dict(variables))
        release_marker(target)
        try:
            register_prefix(self.home, target)
        except OSError as error:
            # As conda: a list that cannot be written (read-only home, no permission) costs
            # the listing, not the environment. A full disk is an error like any other.
            if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            return [
                f"warning: {target} was not added to {registry_path(self.home)} "
                f"({error.strerror}); tools that read that list (conda env list, this "
                "server's kernels) find the environment only if it is in an envs dir"
            ]
        return []

    async def _install_rattler(
        self,
        source: RestoreSource,
        target: Path,
        config: CondaConfig,
        progress: Progress,
        *,
        from_cache: Mapping[str, Verified] | None = None,
        checked: Mapping[str, str] | None = None,
    ) -> tuple[int, _History]:
        """Install with rattler: a lock exactly (every archive verified), else a solve.

        `from_cache` (lock URL -> record) are locked packages rattler finds in its cache with
        the lock's sha256 (see `_capsule_preflight`): nothing is fetched or hashed for them.
        `checked` (archive URL -> md5): local archives already hashed against the lock (a
        capsule's extraction)."""
        from rattler import InstallerReporter, MatchSpec, install

        from_cache = from_cache or {}

        locked = self._locked_part(source, config)
        verified: list[Verified] = []
        relocated: list[Verified] = []
        in_cache: set[int] = set()  # ids of records of packages the cache holds
        staging: tempfile.TemporaryDirectory[str] | None = None
        if locked is not None:
            assert source.spec is not None
            specs = list(source.spec.dependencies)
            progress.log(f"installing the lock of {host_platform()} exactly: no solve")
            progress.phase("verify", 0, len(locked.conda))
            # A capsule's archives are read where they were extracted (file://), checked
            # against the lock's sha256 like any other; what the cache holds is not fetched.
            fetching = [p for p in locked.conda if p.url not in from_cache]
            wanted = [
                dataclasses.replace(p, url=source.archives[p.url].as_uri())
                if p.url in source.archives
                else p
                for p in fetching
            ]
            # Only archives unpacked from the capsule for this restore were hashed on the way.
            already = {
                w.url: checked[p.url]
                for p, w in zip(fetching, wanted, strict=True)
                if checked and p.url in checked and p.url in source.archives
            }
            # What each fetched archive writes (restore/package_paths.py), read while the
            # records are made; the cache entries' are read below.
            inspected: dict[str, PackagePaths] = {}
            try:
                fetched: list[Verified] = []
                if fetching:
                    # With a shared package cache, archives another user downloaded are used
                    # (checked) and this restore's downloads are kept there: staged beside
                    # them, so that keeping one is a rename.
                    shared_cache = await self._shared_cache()
                    staging = tempfile.TemporaryDirectory(
                        prefix="jupyter-repro-lock-",
                        dir=shared_cache.user_dir if shared_cache is not None else None,
                    )
                    fetched = await fetch_verified(
                        wanted,
                        Path(staging.name),
                        on_done=lambda done, total: progress.phase("verify", done, total),
                        checked=already,
                        shared=shared_cache,
                        inspect=lambda archives: inspected.update(_archive_paths(archives)),
                    )
                else:
                    progress.phase("verify", len(locked.conda), len(locked.conda))
            except BaseException:
                if staging is not None:
                    staging.cleanup()
                raise
            # Named by the lock's URLs again: a staging or extraction folder is gone afterwards.
            by_url = {
                p.url: Verified(p, v.path, v.record) for p, v in zip(fetching, fetched, strict=True)
            }
            by_url.update(from_cache)
            in_cache = {id(v.record) for v in from_cache.values()}
            verified = [by_url[p.url] for p in locked.conda]
            # Records that name another file than the lock's (a staging folder, a capsule's
            # extraction) are pointed back at the lock's URL once installed.
            relocated = [
                by_url[p.url]
                for p, w in zip(fetching, wanted, strict=True)
                if w.url != p.url or file_url_path(p.url) is None
            ]
            records = [v.record for v in verified]
            try:
                # What each package writes stays in the prefix (restore/package_paths.py).
                await asyncio.to_thread(_check_package_paths, verified, in_cache, inspected)
            except BaseException:
                if staging is not None:
                    staging.cleanup()
                raise
        else:
            for note in self._fallback_notes(source):
                progress.log(note)
            progress.phase("solve", 0, 1)
            if source.kind == "explicit":
                records, specs, _ = await self._explicit_records(source, config)
            else:
                records, specs, _ = await self._solve_spec(source, config)
            progress.phase("solve", 1, 1)
        total = len(records)
        progress.phase("download", 0, total)
        # Nothing to download (verified local archives, cache entries, a file:// channel):
        # rattler gets no reporter, and links are counted in conda-meta.
        local = all(id(r) in in_cache or str(r.url).startswith("file:") for r in records)
        reporter = _Reporter(
            asyncio.get_running_loop(),
            progress,
            total,
            links_in=target / "conda-meta" if local else None,
        )
        watcher = asyncio.ensure_future(reporter.watch())
        # A task of its own, so that cancelling the restore cancels rattler's future (which
        # drops the Rust work) before the prefix is removed.
        self._linking.add(target)

        async def installing() -> None:
            # A shared package cache is filled first, each archive downloaded once for all
            # users; rattler then links from this user's part of it (see restore/shared_cache.py).
            cache, shared = await prepare_package_cache(
                self._cache_dir(),
                records,
                shared=self.options.shared_package_cache,
                on_done=lambda done, count: progress.phase("download", done, count),
                log=progress.log,
                environ=self.environ,
                home=self.home,
            )
            try:
                await _rattler_errors(
                    install(
                        records,
                        target_prefix=str(target),
                        cache_dir=cache,
                        client=await download_client(),
                        show_progress=False,
                        requested_specs=[MatchSpec(s)._match_spec for s in specs],
                        # rattler calls only the callbacks the object has (see `_Reporter`).
                        reporter=None if local else cast(InstallerReporter, reporter),
                    )
                )
            finally:
                if shared is not None:
                    # Entries rattler extracted itself keep the archive's modes: corrected
                    # whether the install worked or not (the prefix is removed on failure).
                    await asyncio.shield(asyncio.to_thread(restrict_entries, shared, records))
            if shared is not None:
                await asyncio.to_thread(secure_install, shared, records, target)

        task = asyncio.ensure_future(installing())
        try:
            await task
            if relocated:
                await asyncio.to_thread(restore_origins, target, relocated)
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        finally:
            watcher.cancel()
            if staging is not None:
                await asyncio.to_thread(staging.cleanup)
        reporter.report()
        if verified:
            # The history names where the packages came from, not the staging folder.
            added = [_dist_str_locked(v.package) for v in verified]
        else:
            added = [_dist_str(r) for r in records]
        return total, _History(cmd="", added=added, specs=specs)

    @staticmethod
    def _command_line(
        source: RestoreSource, prefix: str | os.PathLike[str] | None, target: Path
    ) -> str:
        where = ["-p", os.fspath(prefix)] if prefix is not None else ["-n", target.name]
        return shlex.join(["jupyter", "repro", "restore", source.origin, *where])

    # -- CLI engines -------------------------------------------------------------------------

    def _cli(self) -> str:
        engine = self.options.engine
        path = find_cli(engine, self.options.cli_paths, self.environ)
        if path is None:
            raise RestoreError(
                f"the {engine} executable was not found (PATH, configured cli_paths); install "
                f"it, configure its path, or use the embedded engine '{EMBEDDED_ENGINE}'"
            )
        return path

    async def _install_cli(
        self, source: RestoreSource, target: Path, config: CondaConfig, progress: Progress
    ) -> int:
        """`<cli> create --yes --prefix P --file F --json`; the CLI solves and writes history."""
        assert self.options.engine in CLI_NAMES
        exe = self._cli()
        if source.kind == "explicit":
            channels = sorted({channel_of_package_url(e.url) or e.url for e in source.explicit})
            self._check_channels(channels, channels, config)
            text = "\n".join(["@EXPLICIT", *explicit_urls(source.explicit)]) + "\n"
            filename = "explicit.txt"
        else:
            assert source.spec is not None
            self._spec_channels(source.spec, config)
            # The pip section is installed by us (with the configured find-links/index), so the
            # CLI gets the conda part only; the name is dropped as `--prefix` decides.
            conda_part = EnvironmentSpec(
                channels=source.spec.channels,
                dependencies=source.spec.dependencies,
                variables=source.spec.variables,
            )
            text = conda_part.to_yaml()
            filename = "environment.yml"
        progress.phase("solve", 0, 1)
        with tempfile.TemporaryDirectory(prefix="jupyter-repro-restore-") as tmp:
            spec_file = Path(tmp) / filename
            spec_file.write_text(text, encoding="utf-8")
            argv = [
                exe,
                "create",
                "--yes",
                "--prefix",
                str(target),
                "--file",
                str(spec_file),
                "--json",
            ]
            progress.log("running " + shlex.join(argv))
            outcome = await run_process(argv, env=self.environ, on_line=progress.log)
        if outcome.returncode != 0:
            raise RestoreError(
                f"{self.options.engine} failed (exit status {outcome.returncode}): "
                f"{_cli_message(outcome.lines) or outcome.tail()}"
            )
        progress.phase("solve", 1, 1)
        packages = len(list((target / "conda-meta").glob("*.json")))
        progress.phase("link", packages, packages)
        return packages

    # -- pip ---------------------------------------------------------------------------------

    def _pip_index(self) -> PipIndex:
        return PipIndex(
            index_url=self.options.pip_index_url,
            find_links=tuple(self.options.pip_find_links),
            no_index=self.options.pip_no_index,
        )

    def _pip_argv(self, source: RestoreSource, python: Path, requirements: Path) -> list[str]:
        """uv installs the section (fast, no pip needed in the environment) unless pip's own
        meaning is needed: option lines in the section, or a pip configuration (`PIP_*`
        variables, pip.conf) that an administrator set up and uv would not read."""
        use_uv = not source.pip_options and not _pip_configured(self.environ, self.home)
        return pip_requirements_command(
            python, requirements, index=self._pip_index(), use_uv=use_uv
        )

    async def _install_pip(self, source: RestoreSource, target: Path, progress: Progress) -> int:
        """The spec's pip section, installed by the new environment's own pip (the
        server's, aimed at the environment's python, when it has none)."""
        locked = source.lock.platform(host_platform()) if source.lock is not None else None
        if locked is not None and locked.pypi:
            return await self._install_locked_pip(source, locked, target, progress)
        if source.kind == "capsule":
            return 0  # offline: a capsule installs what it holds, never a pip section
        entries = source.spec.pip if source.spec else ()
        if not entries:
            return 0
        python = target / "bin" / "python"
        if not python.exists():
            raise RestoreError(
                f"{source.origin} has a pip section, but the environment has no python to "
                "install it for; add python to its dependencies"
            )
        requirements = [e for e in entries if not e.lstrip().startswith("-")]
        progress.phase("pip", 0, len(requirements))
        with tempfile.TemporaryDirectory(prefix="jupyter-repro-pip-") as tmp:
            # A requirements file, as conda does: option lines (allowed by policy by now)
            # keep their meaning there, which they would not as command-line arguments.
            path = Path(tmp) / "requirements.txt"
            path.write_text("\n".join(entries) + "\n", encoding="utf-8")
            outcome = await run_process(
                self._pip_argv(source, python, path),
                env=_pip_environment(self.environ),
                on_line=progress.log,
            )
        if outcome.returncode != 0:
            raise RestoreError(
                f"pip could not install the pip section of {source.origin} (exit status "
                f"{outcome.returncode}):\n{outcome.tail()}"
            )
        progress.phase("pip", len(requirements), len(requirements))
        return len(requirements)

    async def _install_locked_pip(
        self, source: RestoreSource, locked: PlatformLock, target: Path, progress: Progress
    ) -> int:
        """The lock's pip packages, exactly: no dependencies resolved, hashes enforced when the
        lock has them; uv when available, else pip."""
        python = target / "bin" / "python"
        if not python.exists():
            raise RestoreError(
                f"{source.origin} locks pip packages, but the environment has no python to "
                "install them for"
            )
        index = self._pip_index()
        packages = locked.pypi
        if source.kind == "capsule":
            # Offline, from the capsule's wheels only; what could not be packed is said.
            left_out = {m.name for m in source.capsule_missing if m.platform == locked.platform}
            for package in packages:
                if package.name in left_out:
                    progress.log(
                        f"warning: the pip package {package.name} {package.version} is not in "
                        "the capsule (see its manifest); install it yourself"
                    )
            packages = tuple(p for p in packages if p.name not in left_out)
            if not packages:
                return 0
            assert source.wheels is not None
            index = PipIndex(no_index=True, find_links=(str(source.wheels),))
        total = len(packages)
        progress.phase("pip", 0, total)
        with tempfile.TemporaryDirectory(prefix="jupyter-repro-pip-") as tmp:
            argv = pip_install_command(
                python, packages, index=index, requirements_file=Path(tmp) / "locked.txt"
            )
            outcome = await run_process(
                argv, env=_pip_environment(self.environ), on_line=progress.log
            )
        if outcome.returncode != 0:
            raise RestoreError(
                f"the locked pip packages of {source.origin} could not be installed (exit "
                f"status {outcome.returncode}):\n{redact_text(outcome.tail())}"
            )
        progress.phase("pip", total, total)
        return total

    # -- leftovers ---------------------------------------------------------------------------

    def cleanup_leftovers(self) -> list[Path]:
        """Remove prefixes a restore left half-built (its server died); return them."""
        shared = self._shared_dirs()
        leftovers = [
            # Never in a shared folder: an administrator's build there is not ours to remove.
            p
            for p in find_leftovers(self._envs_dirs(), registered_prefixes(self.home), self._active)
            if shared_folder_of(p, shared) is None
        ]
        for prefix in leftovers:
            self.log.info("removing %s, left by an interrupted restore", prefix)
            remove_prefix(prefix)
        return leftovers


def _abandon(task: asyncio.Future[Any] | None, stop: threading.Event) -> None:
    """Give up a pre-flight nobody will await (the restore was refused or failed first):
    its hashing stops, and whatever it raises is dropped."""
    if task is None or (task.done() and not task.cancelled() and task.exception() is None):
        return
    stop.set()
    task.cancel()
    # Retrieved, so that an error of a pre-flight nobody needs is not logged as lost.
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


async def _rattler_errors(installing: Awaitable[Any]) -> Any:
    """rattler's own install errors as RestoreError (a message, not a traceback or a 500);
    a full or read-only disk stays what it is, for `restore` to say where."""
    try:
        return await installing
    except (RestoreError, asyncio.CancelledError):
        raise
    except Exception as error:  # rattler's errors have no common base class
        if disk_errno(error) is not None:
            raise
        lines = str(error).strip().splitlines()
        first = redact_text(lines[0])[:300] if lines else type(error).__name__
        raise RestoreError(
            f"rattler could not install the packages: {first}; nothing was kept"
        ) from error


def _check_package_paths(
    verified: Sequence[Verified],
    in_cache: Collection[int],
    inspected: Mapping[str, PackagePaths],
) -> None:
    """`check_paths` of every package about to be installed: archives as `_archive_paths`
    read them (`inspected`, by archive path: two entries of a lock may share a name),
    cache entries (`in_cache`, ids of their records) where they are."""
    checked = []
    for item in verified:
        dist = item.package.dist_name
        paths = None if id(item.record) in in_cache else inspected.get(os.fspath(item.path))
        if paths is None:
            paths = _read_paths(dist, item.path, entry=id(item.record) in in_cache)
        checked.append((dist, paths))
    check_paths(checked)


def _archive_paths(archives: Sequence[tuple[LockedConda, Path]]) -> dict[str, PackagePaths]:
    """archive path -> what that verified archive writes; each archive checked on its own
    at once (the install's links across packages are checked by `_check_package_paths`)."""
    found = {}
    for package, path in archives:
        paths = _read_paths(package.dist_name, path, entry=False)
        check_paths([(package.dist_name, paths)])
        found[os.fspath(path)] = paths
    return found


def _read_paths(dist: str, path: Path, *, entry: bool) -> PackagePaths:
    try:
        return entry_paths(path) if entry else archive_paths(path)
    except Exception as error:  # rattler's parse errors have no common base class
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        what = (
            "its cache entry's info/paths.json cannot be read"
            if entry
            else "its archive matches the lock but is not a conda package that can be read"
        )
        raise UnsafePackage(f"{dist}: {what} ({first[:200]}); nothing was installed") from None


def _same_lock(read: Lock, planned: Lock) -> bool:
    return read is planned or read.digest() == planned.digest()


@dataclass(frozen=True)
class _Preflight:
    """What `RestoreService._capsule_preflight` found."""

    records: dict[str, Verified]
    """Lock URL -> the record of a package the package cache holds."""
    digest: str
    """The capsule file's sha256."""
    known: bool
    """This user checked every member of that file before."""
    notebooks: tuple[CapsuleNotebook, ...] | None = None
    """Set when nothing needs unpacking: the capsule's notebooks."""
    lock: Lock | None = None
    """The lock read with them."""


def _extract_capsule() -> Any:
    """The capsule reader, imported on the first capsule (not at server start)."""
    from ..specs.capsule import extract_capsule

    return extract_capsule


def _cached_records(
    packages: Sequence[LockedConda],
    cached: Mapping[str, tuple[str, os.stat_result]],
    md5s: Mapping[str, str],
) -> dict[str, Verified]:
    """Records of the locked packages the package cache holds (see `RestoreService._cached`),
    made from the cache entry's own `info/index.json` and named by the lock's URL (without
    credentials: it is what conda-meta keeps). The md5 is the lock's, else `md5s`'s (a
    capsule's manifest): the cache keeps no archive to hash."""
    from rattler import PackageRecord, RepoDataRecord

    out: dict[str, Verified] = {}
    for package in packages:
        found = cached.get(package.url)
        if found is None:
            continue
        entry, st = found
        md5 = package.md5 or md5s.get(package.url)
        key = (entry, st.st_ino, st.st_mtime_ns, st.st_size, package, md5)
        verified = _RECORDS.get(key)
        if verified is None:
            index = Path(entry, "info", "index.json")
            try:
                record = PackageRecord.from_index_json(
                    index, size=package.size, sha256=package.sha256, md5=md5
                )
            except OSError:
                continue  # gone since it was found: rattler fetches it like any missing package
            repodata = RepoDataRecord(
                record, package.filename, redact_url(package.url), redact_url(package.channel)
            )
            verified = _RECORDS.put(key, Verified(package, Path(entry), repodata))
        out[package.url] = verified
    return out


_RECORDS: Memo[tuple[Any, ...], Verified] = Memo(4096)
"""Records made from cache entries, by the entry's index.json (path and stat) and what the lock
says of the package: a server restoring the same packages again does not parse them again
(rattler copies a record when it installs it; these are never changed)."""


def _read_notebooks(extracted: ExtractedCapsule) -> tuple[CapsuleNotebook, ...]:
    """The capsule's notebooks as bytes (the extraction folder does not outlive the restore)."""
    return tuple(
        CapsuleNotebook(path.name, path.read_bytes()) for path in sorted(extracted.notebooks)
    )


def _capsule_notes(source: RestoreSource) -> tuple[str, ...]:
    """What a capsule lacks for this platform, said in the plan."""
    if source.kind != "capsule":
        return ()
    locked = source.lock.platform(host_platform()) if source.lock is not None else None
    conda = {p.name for p in locked.conda} if locked is not None else set()
    notes = []
    for missing in source.capsule_missing:
        if missing.platform != host_platform():
            continue
        if missing.name in conda:
            notes.append(
                f"{missing.name} is not in the capsule ({missing.why}): it is downloaded from "
                "its channel (and checked against the lock), which needs the network"
            )
        else:
            notes.append(
                f"the pip package {missing.name} is not in the capsule ({missing.why}): it is "
                "left out; install it yourself"
            )
    return tuple(notes)


# What pip needs of the server's environment: where things are, language, proxies,
# certificates and pip's own configuration. Nothing else (tokens of the server, cloud
# credentials) reaches a process that installs a stranger's requirements.
_PIP_ENVIRONMENT = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TEMP",
        "TMP",
        "SYSTEMROOT",
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
    }
)


def _pip_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of the pip (or uv) process: `_PIP_ENVIRONMENT`, `LC_*`, `PIP_*` and
    uv's cache location only."""
    env = {
        key: value
        for key, value in environ.items()
        if key.upper() in _PIP_ENVIRONMENT
        or key.startswith(("LC_", "PIP_"))
        or key in ("UV_CACHE_DIR", "UV_NO_CACHE")
    }
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _pip_configured(environ: Mapping[str, str], home: Path) -> bool:
    """Whether pip is configured here (variables or config files), which uv would ignore."""
    if any(key.startswith("PIP_") for key in environ):
        return True
    config_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    files = (config_home / "pip" / "pip.conf", home / ".pip" / "pip.conf", Path("/etc/pip.conf"))
    return any(path.is_file() for path in files)


def _cli_message(lines: Sequence[str]) -> str | None:
    """The `message`/`error` of a conda-family `--json` error document, if one was printed."""
    text = "\n".join(lines).strip()
    start = text.find("{")
    if start < 0:
        return None
    try:
        document = json.loads(text[start:])
    except ValueError:
        return None
    if isinstance(document, dict):
        for key in ("message", "error"):
            if isinstance(document.get(key), str):
                return str(document[key])
    return None


__all__ = [
    "DiskError",
    "InvalidTarget",
    "PlannedPackage",
    "Progress",
    "RefusedSpec",
    "RestoreCancelled",
    "RestoreError",
    "RestoreOptions",
    "RestorePlan",
    "RestoreResult",
    "RestoreService",
    "RestoreSource",
    "TargetBusy",
    "TargetExists",
    "UnsatisfiableSpec",
    "load_source",
]
