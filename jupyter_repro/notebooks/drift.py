"""Drift: how far the live environment of a notebook's kernel is from the notebook's spec.

A notebook with an embedded lock for the environment's platform is judged against it
exactly: `name=version=build` and sha256 (`spec.source` is `lock`). Otherwise the spec is
the one embedded in the notebook (`metadata.jupyter_repro`). Without one, an
`environment.yml` beside the notebook counts only when its `name:` is absent or is the name
of the notebook's environment: a folder of notebooks may hold the spec of another
environment, and judging a notebook by it would be a lie. The answer names the spec it
compared (`spec: {source, path}`).

Each dependency is judged as conda judges it:

- A conda dependency is satisfied when the installed record of that name matches it by
  rattler's own matching (`python=3.10` by 3.10.14, `numpy>=1.20,<2`, build globs such as
  `python 3.11.* *_cpython`). Not installed: *removed*. Installed but not matching:
  *changed* `{name, spec, spec_version, installed_version}` with the spec as written
  (`installed_version` carries `=build` when the spec constrains the build).
- A pip entry is a `packaging` requirement: satisfied when the installed distribution's
  version is in its specifier (pre-releases included, as an installed version is what it
  is); a `name @ url` entry by presence. Entries whose marker excludes the environment's
  Python are skipped; URLs, paths and option lines name no distribution to compare.
- *added*: for a spec that lists every package (mode `exact` or `no-builds`), every
  installed package it does not name; for a portable spec (and a sibling file, whose mode
  is unknown) only packages the user requested (conda's history or the records' requested
  specs, what a portable export uses), so a dependency pulled in by a requested package
  never counts. Installed pip distributions that an export would list and the spec does
  not name are added too. pip names appear as `pip:<name>`.

`missing_environment` when the kernel does not resolve on this machine (or its prefix is
gone); `no_spec` when there is no spec to compare with (the message says why).

An open notebook may differ from its file: another kernel chosen, a spec embedded but not
saved yet. `notebook_drift(..., kernel=, embedded=)` judges that state instead of the file's.
`DriftCache` keeps answers while none of their inputs changed on disk (the notebook, the file
beside it, the kernel's resolution, the environment's `conda-meta` records and site-packages
folders), so a frontend may ask every few seconds for a few `stat` calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.markers import Marker, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from ..environments.matchspec import CondaSpec, InvalidMatchSpec, parse_match_spec
from ..environments.prefix import CondaRecord, PipDistribution, Prefix, normalize_dist_name
from ..specs.environment import EnvironmentSpec, parse_environment_file
from ..specs.export import platform_of
from ..specs.lock import Lock, LockedConda, PlatformLock, parse_embedded_lock
from .embedded import METADATA_KEY, has_no_environment, kernel_name, read_notebook
from .environment import KernelEnvironment, KernelNotResolved, kernel_environment
from .nbjson import NotebookError

DriftStatus = Literal["in_sync", "drifted", "missing_environment", "no_spec"]
SpecSource = Literal["embedded", "file", "lock"]

COMPLETE_MODES = frozenset({"exact", "no-builds"})
"""Export modes whose spec names every conda package of the environment."""

PIP_PREFIX = "pip:"


@dataclass(frozen=True)
class Changed:
    """A dependency the installed package does not satisfy."""

    name: str
    spec_version: str
    """The spec's constraint as written (`3.10`, `>=1.20,<2`, `1.0=py_0`)."""
    installed_version: str
    spec: str = ""
    """The whole dependency as written in the spec."""

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "spec": self.spec,
            "spec_version": self.spec_version,
            "installed_version": self.installed_version,
        }


@dataclass(frozen=True)
class ComparedSpec:
    """Which spec a drift answer compared: embedded in the notebook, or a file beside it."""

    source: SpecSource
    path: str
    """The notebook (embedded) or the file, as the caller names it (root-relative)."""

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "path": self.path}


@dataclass(frozen=True)
class Drift:
    status: DriftStatus
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[Changed, ...] = field(default=())
    message: str | None = None
    """Why the status is `missing_environment` or `no_spec`."""
    spec: ComparedSpec | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "status": self.status,
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": [c.to_json() for c in self.changed],
        }
        if self.spec is not None:
            document["spec"] = self.spec.to_json()
        if self.message is not None:
            document["message"] = self.message
        return document


# --------------------------------------------------------------------------------------------
# conda dependencies


def _conda_changed(spec: CondaSpec, record: CondaRecord) -> Changed:
    with_build = spec.build is not None
    return Changed(
        spec.name,
        spec.constraint.lstrip("=") if _is_pin(spec) else spec.constraint,
        f"{record.version}={record.build}" if with_build else record.version,
        spec.text,
    )


def _is_pin(spec: CondaSpec) -> bool:
    """`name=1.0` or `name==1.0` (shown as `1.0`), not `name>=1.0`."""
    constraint = spec.constraint
    return constraint.startswith("=") and not constraint.startswith("=>")


def _compare_conda(
    spec: EnvironmentSpec, environment: Prefix, mode: str | None
) -> tuple[list[str], list[str], list[Changed]]:
    records = environment.conda_records()
    installed = {r.name.lower(): r for r in records}
    # A name may be asked for twice (`python=3.11`, `python>=3.11.4`): each must hold.
    wanted: dict[str, list[CondaSpec]] = {}
    for dependency in spec.dependencies:
        try:
            parsed = parse_match_spec(dependency)
        except InvalidMatchSpec:
            continue  # the spec was validated when read; nothing to judge here
        wanted.setdefault(parsed.name, []).append(parsed)
    removed: list[str] = []
    changed: list[Changed] = []
    for name, wants in sorted(wanted.items()):
        record = installed.get(name)
        if record is None:
            removed.append(name)
            continue
        changed += [_conda_changed(w, record) for w in wants if not w.matches(record)]
    if mode in COMPLETE_MODES:
        candidates = set(installed)
    else:
        requested = {n.lower() for n in environment.requested_specs(records)}
        candidates = requested & set(installed)
    return sorted(candidates - set(wanted)), removed, changed


# --------------------------------------------------------------------------------------------
# pip entries


def _requirement(entry: str) -> Requirement | None:
    """The requirement of a pip entry; None for options, URLs and paths (no name to judge)."""
    text = entry.strip()
    if not text or text.startswith("-"):
        return None
    # `pkg==1 --hash=sha256:...`: the options after a requirement are not part of it.
    text = text.split(" --", 1)[0].strip()
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _marker_applies(marker: Marker | None, python_version: str | None) -> bool:
    if marker is None:
        return True
    environment: dict[str, str] = {}
    if python_version:
        environment["python_full_version"] = python_version
        environment["python_version"] = ".".join(python_version.split(".")[:2])
    try:
        return bool(marker.evaluate(environment))
    except UndefinedEnvironmentName:
        return True


def _satisfies(requirement: Requirement, version: str) -> bool:
    if requirement.url is not None or not requirement.specifier:
        return True
    try:
        parsed = Version(version)
    except InvalidVersion:
        # Not a PEP 440 version: only an exact pin of the same text can be judged.
        return any(
            s.operator in ("==", "===") and s.version == version for s in requirement.specifier
        )
    return requirement.specifier.contains(parsed, prereleases=True)


def _compare_pip(
    spec: EnvironmentSpec, environment: Prefix
) -> tuple[list[str], list[str], list[Changed]]:
    distributions: dict[str, PipDistribution] = {
        normalize_dist_name(d.name): d for d in environment.pip_distributions()
    }
    python_version = environment.python_version()
    wanted: dict[str, Requirement] = {}
    for entry in spec.pip:
        requirement = _requirement(entry)
        if requirement is not None and _marker_applies(requirement.marker, python_version):
            wanted.setdefault(normalize_dist_name(requirement.name), requirement)
    removed: list[str] = []
    changed: list[Changed] = []
    for name, requirement in sorted(wanted.items()):
        distribution = distributions.get(name)
        if distribution is None:
            removed.append(PIP_PREFIX + name)
        elif not _satisfies(requirement, distribution.version):
            shown = str(requirement.specifier)
            if len(requirement.specifier) == 1 and shown.startswith("=="):
                shown = shown[2:]
            changed.append(
                Changed(PIP_PREFIX + name, shown, distribution.version, str(requirement))
            )
    # Editable and local installs are never exported, so they are never "added".
    exportable = {n for n, d in distributions.items() if d.requirement is not None}
    added = [PIP_PREFIX + n for n in sorted(exportable - set(wanted))]
    return added, removed, changed


def compare(spec: EnvironmentSpec, prefix: Path, mode: str | None = None) -> Drift:
    """The drift of the environment at `prefix` from `spec` (exported in `mode`, if known)."""
    environment = Prefix(prefix)
    added: list[str] = []
    removed: list[str] = []
    changed: list[Changed] = []
    if environment.is_conda():
        added, removed, changed = _compare_conda(spec, environment, mode)
    pip_added, pip_removed, pip_changed = _compare_pip(spec, environment)
    added += pip_added
    removed += pip_removed
    changed += pip_changed
    status: DriftStatus = "drifted" if added or removed or changed else "in_sync"
    return Drift(status, tuple(added), tuple(removed), tuple(changed))


# --------------------------------------------------------------------------------------------
# against a lock: exact


def _locked_text(package: LockedConda, sha256: str | None) -> str:
    return f"{package.version}={package.build}" + (f" (sha256 {sha256[:12]})" if sha256 else "")


def compare_lock(locked: PlatformLock, prefix: Path) -> Drift:
    """The drift of the environment at `prefix` from a lock's part for its platform: exact,
    by `name=version=build` and sha256 (an archive rebuilt under the same name differs)."""
    environment = Prefix(prefix)
    records = {r.name.lower(): r for r in environment.conda_records()}
    wanted = {p.name.lower(): p for p in locked.conda}
    changed: list[Changed] = []
    for name in sorted(set(wanted) & set(records)):
        package, record = wanted[name], records[name]
        same = (package.version, package.build) == (record.version, record.build)
        hashes = package.sha256 and record.sha256 and package.sha256 != record.sha256
        if not same or hashes:
            # The hashes are shown only when they are the difference.
            locked_sha = package.sha256 if same else None
            installed_sha = record.sha256 if same else None
            installed = f"{record.version}={record.build}"
            if installed_sha:
                installed += f" (sha256 {installed_sha[:12]})"
            changed.append(
                Changed(
                    name,
                    _locked_text(package, locked_sha),
                    installed,
                    f"{package.name}={package.version}={package.build}",
                )
            )
    added = sorted(set(records) - set(wanted))
    removed = sorted(set(wanted) - set(records))
    distributions = {normalize_dist_name(d.name): d for d in environment.pip_distributions()}
    pins = {normalize_dist_name(p.name): p for p in locked.pypi}
    for name in sorted(set(pins) & set(distributions)):
        if pins[name].version != distributions[name].version:
            changed.append(
                Changed(
                    PIP_PREFIX + name,
                    pins[name].version,
                    distributions[name].version,
                    f"{name}=={pins[name].version}",
                )
            )
    removed += [PIP_PREFIX + n for n in sorted(set(pins) - set(distributions))]
    if pins:
        exportable = {n for n, d in distributions.items() if d.requirement is not None}
        added += [PIP_PREFIX + n for n in sorted(exportable - set(pins))]
    status: DriftStatus = "drifted" if added or removed or changed else "in_sync"
    return Drift(status, tuple(added), tuple(removed), tuple(changed))


def _embedded_lock(notebook: dict[str, Any], where: str) -> Lock | None:
    embedded = notebook.get("metadata", {}).get(METADATA_KEY)
    value = embedded.get("lock") if isinstance(embedded, dict) else None
    if not isinstance(value, dict):
        return None
    return parse_embedded_lock(value, source=f"{where}: metadata.{METADATA_KEY}.lock")


# --------------------------------------------------------------------------------------------
# a notebook's drift


def _embedded(notebook: dict[str, Any], where: str) -> tuple[EnvironmentSpec, str | None] | None:
    """The notebook's embedded spec and its export mode; None when it has none."""
    embedded = notebook.get("metadata", {}).get(METADATA_KEY)
    if has_no_environment(embedded):
        return None
    environment = embedded.get("environment") if isinstance(embedded, dict) else None
    if not isinstance(environment, dict):
        raise NotebookError(f"{where}: metadata.{METADATA_KEY} has no 'environment' object")
    spec = EnvironmentSpec.from_dict(
        environment, source=f"{where}: metadata.{METADATA_KEY}.environment"
    )
    exported = embedded.get("exported")
    mode = exported.get("mode") if isinstance(exported, dict) else None
    return spec, mode if isinstance(mode, str) else None


def _environment_name(environment: KernelEnvironment) -> str:
    """The name an export of this environment writes into its spec."""
    return environment.name or environment.prefix.name


def _kernel_names_environment(kernel: str | None, name: str) -> bool:
    """Whether a kernel name (`conda-env-<name>-<kernel>`, `conda-base-py`) is of `name`,
    for a notebook whose kernel is not installed here."""
    if kernel is None:
        return False
    if name in ("base", "root"):
        return kernel in ("conda-base-py", "conda-root-py")
    return kernel.startswith(f"conda-env-{name}-")


class _FromFile:
    """The type of FROM_FILE."""

    def __repr__(self) -> str:
        return "FROM_FILE"


FROM_FILE: Any = _FromFile()
"""`embedded=FROM_FILE`: the spec embedded in the notebook's file, as saved."""


def open_state(notebook: dict[str, Any], kernel: str | None, embedded: Any) -> dict[str, Any]:
    """The parsed `notebook` as it is open in a frontend: its kernel `kernel` (None: the
    file's), its `metadata.jupyter_repro` `embedded` (None: none; FROM_FILE: the file's)."""
    if kernel is None and embedded is FROM_FILE:
        return notebook
    metadata = dict(notebook.get("metadata") or {})
    if kernel is not None:
        kernelspec = metadata.get("kernelspec")
        metadata["kernelspec"] = {**(kernelspec if isinstance(kernelspec, dict) else {})}
        metadata["kernelspec"]["name"] = kernel
    if embedded is None:
        metadata.pop(METADATA_KEY, None)
    elif embedded is not FROM_FILE:
        metadata[METADATA_KEY] = embedded
    return {**notebook, "metadata": metadata}


def notebook_drift(
    notebook_path: Path,
    kernel_specs: Any,
    sibling: Path | None,
    *,
    shown: Callable[[Path], str] = str,
    kernel: str | None = None,
    embedded: Any = FROM_FILE,
) -> Drift:
    """The drift of the notebook's kernel environment from its embedded spec, else from
    `sibling` (an environment.yml beside it, already checked to be one the caller may
    read) when that file is the spec of the notebook's environment. `shown` names a file
    in answers and messages (the handler gives root-relative paths).

    `kernel` and `embedded` describe the notebook as it is open (see `open_state`): the
    kernel its session runs, the `metadata.jupyter_repro` value in memory (None: it has
    none), in place of what the file says."""
    notebook = open_state(read_notebook(notebook_path), kernel, embedded)
    return _drift_of(notebook, notebook_path, kernel_specs, sibling, shown)


def _drift_of(
    notebook: dict[str, Any],
    notebook_path: Path,
    kernel_specs: Any,
    sibling: Path | None,
    shown: Callable[[Path], str],
) -> Drift:
    where = shown(notebook_path)
    try:
        environment: KernelEnvironment | None = kernel_environment(notebook, kernel_specs, where)
        missing: str | None = None
    except KernelNotResolved as error:
        environment, missing = None, str(error)

    lock = _embedded_lock(notebook, where)
    if lock is not None and environment is not None and environment.prefix.is_dir():
        locked = lock.platform(platform_of(environment.prefix))
        if locked is not None:
            # A lock for this platform says exactly what should be installed.
            result = compare_lock(locked, environment.prefix)
            compared = ComparedSpec("lock", where)
            return Drift(result.status, result.added, result.removed, result.changed, spec=compared)
    embedded = _embedded(notebook, where)
    if embedded is not None:
        spec, mode = embedded
        compared = ComparedSpec("embedded", where)
    elif sibling is not None:
        spec, mode = parse_environment_file(sibling).spec, None
        compared = ComparedSpec("file", shown(sibling))
        if spec.name is not None:
            if environment is not None:
                belongs = spec.name == _environment_name(environment)
                own = f"the notebook's environment is {_environment_name(environment)!r}"
            else:
                belongs = _kernel_names_environment(kernel_name(notebook), spec.name)
                own = f"the notebook's kernel is {kernel_name(notebook)!r}"
            if not belongs:
                return Drift(
                    "no_spec",
                    message=(
                        f"{compared.path} is the spec of the environment {spec.name!r}, but "
                        f"{own}; skipped it. Export this notebook's environment (embed it, "
                        "or save it beside the notebook) to compare against it"
                    ),
                )
    else:
        return Drift(
            "no_spec",
            message="the notebook has no embedded spec and no environment.yml beside it",
        )

    if environment is None:
        return Drift("missing_environment", message=missing, spec=compared)
    if not environment.prefix.is_dir():
        return Drift(
            "missing_environment",
            message=f"the environment of the kernel {environment.kernel!r} is gone",
            spec=compared,
        )
    result = compare(spec, environment.prefix, mode)
    return Drift(result.status, result.added, result.removed, result.changed, spec=compared)


# --------------------------------------------------------------------------------------------
# answers kept while nothing they were computed from changed


Stamp = tuple[Any, ...]


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def environment_stamp(prefix: Path) -> Stamp:
    """What changes when packages are installed into or removed from the environment at
    `prefix`: each `conda-meta` file (name, mtime, size), the history, the site-packages
    folders (pip adds and removes `*.dist-info` folders there). A few dozen `stat` calls."""
    records: list[tuple[str, int, int]] = []
    try:
        with os.scandir(prefix / "conda-meta") as entries:
            for entry in entries:
                try:
                    info = entry.stat()
                except OSError:
                    continue
                records.append((entry.name, info.st_mtime_ns, info.st_size))
    except OSError:
        pass
    sites = tuple((str(site), _stat(site)) for site in Prefix(prefix).site_packages_dirs())
    return (_stat(prefix), tuple(sorted(records)), sites)


def _kernel_stamp(name: str | None, kernel_specs: Any) -> Stamp:
    """Where kernel `name` leads now, and the stamp of that environment."""
    try:
        environment = kernel_environment(
            {"metadata": {"kernelspec": {"name": name}}}, kernel_specs, "the notebook"
        )
    except KernelNotResolved as error:
        return ("unresolved", str(error))
    return (str(environment.prefix), environment.name, environment_stamp(environment.prefix))


def _digest(value: Any) -> str:
    if value is FROM_FILE:
        return "file"
    text = json.dumps(value, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class _Kept:
    files: Stamp
    kernel: str | None
    environment: Stamp
    drift: Drift


class DriftCache:
    """`notebook_drift` answers, kept while none of their inputs changed.

    An answer is reused when the notebook file and the file beside it have the same stat,
    the kernel resolves to the same environment, and that environment's `environment_stamp`
    is the same: a poll costs a few `stat` calls, and a package installed into or removed
    from the environment is seen on the next one. Safe to use from several threads.
    """

    def __init__(self, size: int = 128) -> None:
        self._size = size
        self._kept: OrderedDict[tuple[str, str | None, str, str], _Kept] = OrderedDict()
        self._lock = threading.Lock()

    def notebook_drift(
        self,
        notebook_path: Path,
        kernel_specs: Any,
        sibling: Path | None,
        *,
        shown: Callable[[Path], str] = str,
        kernel: str | None = None,
        embedded: Any = FROM_FILE,
    ) -> Drift:
        """`notebook_drift(...)`, from the cache when nothing changed."""
        key = (str(notebook_path), kernel, _digest(embedded), str(sibling))
        files = (_stat(notebook_path), None if sibling is None else _stat(sibling))
        with self._lock:
            kept = self._kept.get(key)
        if (
            kept is not None
            and kept.files == files
            and _kernel_stamp(kept.kernel, kernel_specs) == kept.environment
        ):
            with self._lock:
                if key in self._kept:
                    self._kept.move_to_end(key)
            return kept.drift
        notebook = open_state(read_notebook(notebook_path), kernel, embedded)
        name = kernel_name(notebook)
        # Stamped before comparing: a change made meanwhile is seen by the next request.
        environment = _kernel_stamp(name, kernel_specs)
        drift = _drift_of(notebook, notebook_path, kernel_specs, sibling, shown)
        with self._lock:
            self._kept[key] = _Kept(files, name, environment, drift)
            self._kept.move_to_end(key)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return drift
