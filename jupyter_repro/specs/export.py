"""An environment on disk -> an environment spec, in the modes of DESIGN.md "Export modes".

- `portable` (default): what the user asked for (history, else the records' requested specs)
  pinned to the installed versions, `name=version` (`name=version=build` where the request
  constrained the build), and a `pip:` section; for other platforms.
- `exact`: every conda package `name=version=build`.
- `no-builds`: every conda package `name=version`.
- `export_explicit`: conda's `@EXPLICIT` list of package URLs with checksums (one platform).

Everything is read from the environment's files; nothing is run and nothing is solved. The
output never holds a `prefix:` line, a channel token or URL credentials, and the same
environment always gives the same bytes: dependencies are sorted by name and channels come
in a fixed order.
"""

from __future__ import annotations

import heapq
import platform as _platform
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from ..environments.channels import record_channel_name
from ..environments.history import requested_specs as history_requested_specs
from ..environments.matchspec import InvalidMatchSpec, parse_match_spec, spec_name
from ..environments.prefix import CondaRecord, PipDistribution, Prefix, normalize_dist_name
from .environment import EnvironmentSpec, SpecError, environment_name_problem
from .explicit import ExplicitEntry, render_explicit

ExportMode = Literal["portable", "exact", "no-builds"]
EXPORT_MODES: tuple[ExportMode, ...] = get_args(ExportMode)

_MD5 = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# What an @EXPLICIT line can hold: a package URL with no white space and no `#` (which
# starts the checksum).
_LISTABLE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s#]+(?:\.conda|\.tar\.bz2)")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A build constraint that can be written in `name=version=build` form (a glob or a plain
# build string; no `^...$` regex, which conda reads only in brackets).
_BUILD_CONSTRAINT = re.compile(r"[A-Za-z0-9_.+*]+")
# A venv's own pip comes with the venv (ensurepip); the spec asks for pip in `dependencies`.
_VENV_BOOTSTRAP = frozenset({"pip"})

# platform.machine() -> the architecture part of a conda subdir, per operating system.
_ARCHITECTURES = {
    "x86_64": "64",
    "amd64": "64",
    "i386": "32",
    "i686": "32",
    "x86": "32",
    "aarch64": "aarch64",
    "arm64": "arm64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "armv7l": "armv7l",
    "armv6l": "armv6l",
    "riscv64": "riscv64",
}


class ExportError(Exception):
    """The environment cannot be exported; the message says what is wrong with it."""


class PackError(Exception):
    """Packing cannot go on; the message says why and what to do (credentials removed).

    Defined here, with the export errors, so that the server maps it without importing the
    pack machinery at start-up."""


def host_platform() -> str:
    """The conda subdir of this machine (`linux-64`, `osx-arm64`, `win-64`, ...)."""
    if sys.platform.startswith("linux"):
        system = "linux"
    elif sys.platform == "darwin":
        system = "osx"
    elif sys.platform in ("win32", "cygwin"):
        system = "win"
    elif sys.platform.startswith("freebsd"):
        system = "freebsd"
    else:
        system = sys.platform
    machine = _platform.machine().lower()
    arch = _ARCHITECTURES.get(machine, machine)
    # conda names 64-bit ARM `aarch64` on Linux but `arm64` on macOS and Windows.
    if arch in ("aarch64", "arm64"):
        arch = "aarch64" if system == "linux" else "arm64"
    return f"{system}-{arch}"


def environment_platform(records: Iterable[CondaRecord]) -> str:
    """The platform the packages were built for: their most common non-noarch subdir (the
    lexically first on a tie), else this machine's."""
    counts = Counter(r.subdir for r in records if r.subdir and r.subdir != "noarch")
    if not counts:
        return host_platform()
    return min(counts, key=lambda subdir: (-counts[subdir], subdir))


def platform_of(prefix: Path) -> str:
    """The platform of the environment at `prefix` (`environment_platform` of its records;
    this machine's for a venv or an environment that cannot be read)."""
    try:
        records = Prefix(prefix).conda_records()
    except OSError:
        records = []
    return environment_platform(records)


@dataclass(frozen=True)
class _Contents:
    """What an export reads from an environment, once."""

    prefix: Prefix
    kind: str
    records: list[CondaRecord]
    pip: list[PipDistribution]


def _read(path: Path) -> _Contents:
    prefix = Prefix(path)
    if not prefix.path.is_dir():
        raise ExportError(f"{prefix.path}: no such environment (the folder does not exist)")
    kind = prefix.kind()
    if kind is None:
        raise ExportError(
            f"{prefix.path} is not an environment: it has neither conda-meta/ (conda, mamba, "
            "micromamba, pixi) nor pyvenv.cfg (venv)"
        )
    if prefix.is_restoring():
        raise ExportError(f"{prefix.path} is still being restored; export it when that is done")
    # Record file lists are only read when some dist-info needs telling apart (pip or conda).
    needs_files = kind != "venv" and prefix.has_dist_infos()
    try:
        records, conda_owned = prefix.read_conda_records(dist_infos=needs_files)
    except OSError as exc:
        raise ExportError(
            f"cannot read {prefix.conda_meta}: {exc.strerror or exc}; check its permissions"
        ) from exc
    pip = prefix.pip_distributions(conda_owned if needs_files else set())
    return _Contents(prefix, kind, records, pip)


# --------------------------------------------------------------------------------------------
# environment.yml


def export_environment(
    prefix: Path, mode: ExportMode = "portable", name: str | None = None
) -> EnvironmentSpec:
    """The spec of the environment at `prefix` in `mode` (see the module docstring).

    `name` defaults to the environment folder's name (left out if conda would refuse it).
    Raises ExportError when `prefix` is not a readable environment and SpecError for an
    invalid `name`.
    """
    if mode not in EXPORT_MODES:
        expected = ", ".join(EXPORT_MODES)
        raise ExportError(f"unknown export mode {mode!r}; expected one of {expected}")
    contents = _read(Path(prefix))
    comments: list[str] = []
    if contents.kind == "venv":
        dependencies = _venv_dependencies(contents.prefix)
        order: list[CondaRecord] = []
    elif mode == "portable":
        dependencies, order = _portable_dependencies(contents, comments)
    else:
        dependencies = [_pinned(r, with_build=mode == "exact") for r in contents.records]
        order = contents.records
    comments += [
        f"{r.name}: conda-meta/{r.dist_name}.json could not be read; exported from its file name"
        for r in order
        if r.damaged
    ]
    # No `pip` is added for the pip section when the environment has none: the spec would
    # then name a package the environment lacks (drift would call it removed, a restore
    # would install more than was there). A restore installs the section without it.
    pip = _pip_section(contents, comments)
    return EnvironmentSpec(
        name=_spec_name(name, contents.prefix),
        channels=tuple(_channels([*order, *contents.records])),
        dependencies=tuple(sorted(dependencies, key=lambda d: (_dependency_name(d), d))),
        pip=tuple(pip),
        variables=_variables(contents.prefix, comments),
        comments=tuple(comments),
    )


def _spec_name(name: str | None, prefix: Prefix) -> str | None:
    if name is not None:
        problem = environment_name_problem(name)
        if problem is not None:
            raise SpecError(f"invalid environment name {name!r}: {problem}", source="export")
        return name
    # The folder's name is only a default: one conda would refuse is better left out.
    default = prefix.path.name
    return default if environment_name_problem(default) is None else None


def _pinned(record: CondaRecord, *, with_build: bool) -> str:
    if with_build:
        return f"{record.name}={record.version}={record.build}"
    return f"{record.name}={record.version}"


def _dependency_name(dependency: str) -> str:
    """The name of a dependency written here (`name`, `name=version[=build]`)."""
    return spec_name(dependency) or dependency


def _requested(contents: _Contents) -> tuple[dict[str, str], str]:
    """Name -> requested spec, and where that came from (for the comment on a fallback)."""
    from_history = history_requested_specs(contents.prefix.history())
    if from_history is not None:
        return from_history, "history"
    from_records = {r.name: r.requested_specs[0] for r in contents.records if r.requested_specs}
    if from_records:
        return from_records, "records"
    # Nothing says what was asked for: the packages no other package needs are the best
    # guess (everything else comes back as their dependencies).
    needed = {spec_name(d) for r in contents.records for d in r.depends}
    return {r.name: r.name for r in contents.records if r.name not in needed}, "leaves"


def _portable_dependencies(
    contents: _Contents, comments: list[str]
) -> tuple[list[str], list[CondaRecord]]:
    """`name=version` of every requested package, and their records in request order."""
    requested, source = _requested(contents)
    if source == "leaves" and requested:
        comments.append(
            "no record of what was requested (no requests in conda-meta/history or in the "
            "records): exported the packages no other package depends on"
        )
    installed = {r.name: r for r in contents.records}
    dependencies: list[str] = []
    order: list[CondaRecord] = []
    for name, spec in requested.items():
        record = installed.get(name)
        if record is None:
            comments.append(f"{name}: requested as {spec!r} but not installed; left out")
            continue
        dependencies.append(_portable_pin(record, spec))
        order.append(record)
    return dependencies, order


def _portable_pin(record: CondaRecord, requested: str) -> str:
    """`name=version`, keeping the build constraint the user asked for (`python_abi
    [build=*_cp313t]`): without it a restore may pick another variant (a different
    Python). The constraint is kept only while the installed build still meets it."""
    try:
        build = parse_match_spec(requested).build
    except InvalidMatchSpec:
        build = None
    if build is None or not _BUILD_CONSTRAINT.fullmatch(build):
        return _pinned(record, with_build=False)
    try:
        kept = parse_match_spec(f"{record.name} * {build}").matches(record)
    except InvalidMatchSpec:
        kept = False
    return f"{record.name}={record.version}={build}" if kept else _pinned(record, with_build=False)


def _venv_dependencies(prefix: Prefix) -> list[str]:
    version = prefix.python_version()
    if version is None:
        return ["python"]
    major_minor = ".".join(version.split(".")[:2])
    return [f"python={major_minor}"]


def _channels(records: Iterable[CondaRecord]) -> list[str]:
    """Short channel names in order of first appearance, each once."""
    seen: dict[str, None] = {}
    names: dict[tuple[str | None, str | None, str | None], str | None] = {}
    for record in records:
        # Hundreds of records share a handful of channels: name each channel once.
        key = (record.channel, None if record.channel else record.url, record.subdir)
        if key not in names:
            names[key] = record_channel_name(record.channel, record.url, record.subdir)
        name = names[key]
        if name is not None:
            seen.setdefault(name)
    return list(seen)


def _pip_section(contents: _Contents, comments: list[str]) -> list[str]:
    lines: list[str] = []
    for dist in contents.pip:
        if contents.kind == "venv" and normalize_dist_name(dist.name) in _VENV_BOOTSTRAP:
            continue
        requirement = dist.requirement
        if requirement is not None:
            lines.append(requirement)
        elif dist.kind == "editable":
            comments.append(
                f"pip: {dist.name} {dist.version} is an editable install from a folder on "
                "this machine; left out (install it from its source)"
            )
        else:
            comments.append(
                f"pip: {dist.name} {dist.version} was installed from a local folder or file; "
                "left out (it cannot be fetched elsewhere)"
            )
    return lines


def _variables(prefix: Prefix, comments: list[str]) -> tuple[tuple[str, str], ...]:
    """`conda env config vars` of the environment, sorted, as `conda env export` writes them."""
    variables = []
    for key, value in sorted(prefix.state_env_vars().items()):
        if _VARIABLE_NAME.fullmatch(key):
            variables.append((key, value))
        else:
            comments.append(f"variable {key!r} left out: not a portable variable name")
    return tuple(variables)


# --------------------------------------------------------------------------------------------
# @EXPLICIT


@dataclass(frozen=True)
class ExplicitList:
    """The packages of an environment as exact URLs with checksums, for one platform."""

    platform: str
    entries: tuple[ExplicitEntry, ...]
    comments: tuple[str, ...] = ()

    def render(self) -> str:
        """conda's `@EXPLICIT` text (`conda create --file` and `micromamba create -f` read it)."""
        return render_explicit(self.entries, platform=self.platform, comments=self.comments)


def explicit_list(prefix: Path) -> ExplicitList:
    """The explicit package list of the conda environment at `prefix`.

    Packages come dependencies first (as `conda list --explicit` orders them), ties by name.
    A record without a package URL, and pip-installed distributions, cannot be listed: a
    comment names them. Raises ExportError for a venv or an unreadable environment.
    """
    contents = _read(Path(prefix))
    if contents.kind == "venv":
        raise ExportError(
            f"{contents.prefix.path} is a venv: it has no conda packages to list explicitly; "
            "export it as yaml or json"
        )
    comments: list[str] = []
    entries: list[ExplicitEntry] = []
    for record in _dependencies_first(contents.records):
        url = record.package_url
        if url is None or not _LISTABLE_URL.fullmatch(url):
            comments.append(f"{record.dist_name}: no package URL recorded; left out")
            continue
        md5 = record.md5 if record.md5 and _MD5.fullmatch(record.md5) else None
        sha256 = record.sha256 if record.sha256 and _SHA256.fullmatch(record.sha256) else None
        entries.append(ExplicitEntry(url, md5=md5, sha256=sha256))
    if contents.pip:
        names = ", ".join(d.name for d in contents.pip)
        comments.append(f"pip-installed, not in this list: {names}")
    return ExplicitList(environment_platform(contents.records), tuple(entries), tuple(comments))


def export_explicit(prefix: Path) -> str:
    """The `@EXPLICIT` text of the conda environment at `prefix` (see `explicit_list`)."""
    return explicit_list(prefix).render()


def _dependencies_first(records: list[CondaRecord]) -> list[CondaRecord]:
    """`records` in an order where each comes after what it depends on; ties by name.

    A dependency cycle (conda allows them) is broken by taking the remaining records in
    name order, so the result is complete and always the same.
    """
    by_name = {r.name: r for r in records}
    needs: dict[str, set[str]] = {
        r.name: {n for n in map(spec_name, r.depends) if n in by_name and n != r.name}
        for r in records
    }
    needed_by: dict[str, list[str]] = {name: [] for name in by_name}
    for name, deps in needs.items():
        for dep in deps:
            needed_by[dep].append(name)
    ready = [name for name, deps in needs.items() if not deps]
    heapq.heapify(ready)
    ordered: list[str] = []
    done: set[str] = set()
    while len(ordered) < len(by_name):
        if not ready:  # a cycle: release the first remaining record by name
            ready = [min(n for n in by_name if n not in done)]
        name = heapq.heappop(ready)
        if name in done:
            continue
        done.add(name)
        ordered.append(name)
        for dependent in needed_by[name]:
            deps = needs[dependent]
            deps.discard(name)
            if not deps and dependent not in done:
                heapq.heappush(ready, dependent)
    # Records with a name that appears twice (a damaged prefix) keep both, next to each other.
    rank = {name: i for i, name in enumerate(ordered)}
    return sorted(records, key=lambda r: (rank[r.name], r.version, r.build))
