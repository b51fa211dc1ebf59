"""One environment on disk (conda, pixi or venv), read from its files; nothing is ever run.

Every reader here tolerates a damaged environment: a record, kernel.json or metadata file
that cannot be read or parsed is skipped with a debug log line, so one broken file never
hides the rest of an environment (or of a listing) from the user.
"""

from __future__ import annotations

import contextlib
import json
import logging
import operator
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from .channels import record_channel_name, redact_url
from .history import HistoryEntry, read_history
from .history import requested_specs as history_requested_specs

log = logging.getLogger(__name__)

RESTORE_MARKER = "conda-meta/.jupyter_repro_restoring"
"""Present while a restore is still building the prefix; discovery skips such prefixes."""

EnvironmentKind = Literal["conda", "pixi", "venv"]

# conda's "unset this variable" value in conda-meta/state (`conda env config vars unset`).
_CONDA_UNSET_VALUE = "***unset***"
_LIB_PYTHON = re.compile(r"python(\d+)\.(\d+)t?")
_VERSION_PREFIX = re.compile(r"\d+(?:\.\d+){0,2}")
_DIST_INFO = ".dist-info"
_EGG_INFO = ".egg-info"
_EGG = ".egg"
_EGG_LINK = ".egg-link"
# Where site-packages keeps what an installer wrote about a distribution: wheels (pip, uv)
# write `.dist-info` folders; `setup.py install`, older pip and distutils `.egg-info` folders
# or files; easy_install `.egg` folders or zips; `setup.py develop` `.egg-link` files.
_EGG_SUFFIXES = (_EGG_INFO, _EGG, _EGG_LINK)
_METADATA_SUFFIXES = (_DIST_INFO, *_EGG_SUFFIXES)
# A zipped `.egg` is untrusted: at most this much of its PKG-INFO is decompressed. The
# headers come first and are far shorter; the long description after them is not needed.
_PKG_INFO_BYTES = 256 * 1024


@dataclass(frozen=True)
class KernelDir:
    """A kernelspec folder of an environment: `share/jupyter/kernels/<name>/kernel.json`."""

    name: str
    path: Path
    # Left out of the hash only: a dict cannot be hashed, and equal objects still hash alike.
    spec: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class Package:
    """A conda package installed in a prefix (one `conda-meta/*.json` record)."""

    name: str
    version: str
    build: str
    channel: str | None


@dataclass(frozen=True)
class PipPackage:
    """A Python distribution in site-packages that no conda record owns."""

    name: str
    version: str


class CondaRecord(NamedTuple):
    """The fields of one `conda-meta/*.json` record that exporting an environment needs.

    A NamedTuple rather than a frozen dataclass: an export builds one per record, and a
    tuple is built three times faster, which shows at hundreds of records.
    """

    name: str
    version: str
    build: str
    channel: str | None = None
    """As recorded: a URL (it may hold a `/t/<token>/`) or a name; see `channel_name`."""
    url: str | None = None
    """As recorded; see `package_url` for the one that may be shown."""
    md5: str | None = None
    sha256: str | None = None
    subdir: str | None = None
    fn: str | None = None
    depends: tuple[str, ...] = ()
    requested_specs: tuple[str, ...] = ()
    """What rattler (`requested_specs`) or pixi and conda (`requested_spec`) recorded as
    asked for; empty for a dependency."""
    damaged: bool = False
    """The JSON could not be read: name, version and build come from the file name."""

    @property
    def dist_name(self) -> str:
        """`name-version-build`, the record's file name without `.json`."""
        return f"{self.name}-{self.version}-{self.build}"

    @property
    def channel_name(self) -> str | None:
        """The channel as a user writes it (`conda-forge`, `defaults`, a redacted URL)."""
        return record_channel_name(self.channel, self.url, self.subdir)

    @property
    def package_url(self) -> str | None:
        """The package's download URL without tokens or credentials, if it is known."""
        if self.url and "://" in self.url:
            return redact_url(self.url)
        if self.channel and "://" in self.channel and self.subdir and self.fn:
            return f"{redact_url(self.channel).rstrip('/')}/{self.subdir}/{self.fn}"
        return None


PipInstallKind = Literal["index", "vcs", "url", "editable", "local"]


@dataclass(frozen=True)
class PipDistribution:
    """A pip-installed distribution with where it came from (PEP 610 `direct_url.json`)."""

    name: str
    version: str
    kind: PipInstallKind
    """`index` (no direct URL: from PyPI or another index), `vcs`, `url` (an archive URL),
    `editable` or `local` (a folder or a `file:` archive on this machine)."""
    url: str | None = None
    """For `vcs` and `url`: the redacted URL pip can install from (`git+https://...@rev`)."""

    @property
    def requirement(self) -> str | None:
        """The pip requirement that installs this again elsewhere; None for editable and
        local installs, which only exist on this machine."""
        if self.kind == "index":
            return f"{self.name}=={self.version}"
        if self.kind in ("vcs", "url") and self.url:
            return f"{self.name} @ {self.url}"
        return None


def normalize_dist_name(name: str) -> str:
    """PEP 503 normalized name: case-folded, runs of `-_.` made one `-`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_utf8_path(path: str | os.PathLike[str]) -> bool:
    """False for a path whose name came from bytes that are not UTF-8 (surrogate escapes).

    Such a path cannot be put in JSON, a kernel name or a URL, so callers skip it.
    """
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def split_dist_name(stem: str) -> tuple[str, str, str] | None:
    """`name-version-build` of a record file name; names may contain dashes, versions not."""
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def _read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None (with a debug line) when it is not one."""
    try:
        with open(path, "rb") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:  # ValueError covers JSON and UTF-8 decoding errors
        log.debug("skipping %s: %s", path, exc)
        return None
    if not isinstance(data, dict):
        log.debug("skipping %s: not a JSON object", path)
        return None
    return data


def _scandir(path: Path) -> Iterator[os.DirEntry[str]]:
    """Entries of `path`, none (with a debug line) when it cannot be listed."""
    try:
        with os.scandir(path) as it:
            entries = list(it)
    except FileNotFoundError:
        return iter(())
    except OSError as exc:
        log.debug("cannot list %s: %s", path, exc)
        return iter(())
    return iter(entries)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _version_prefix(text: str) -> str | None:
    """`3.11.7` of `3.11.7`, `3.11.7.final.0` or `3.11.7+local`; None if no digits lead."""
    m = _VERSION_PREFIX.match(text.strip())
    return m.group(0) if m else None


class Prefix:
    """One environment on disk (conda, pixi or venv); reads lazily, never runs anything."""

    def __init__(self, path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> None:
        # Absolute but not resolved: callers show and compare the path they were given.
        self.path = Path(os.path.abspath(os.fsdecode(path)))

    def __repr__(self) -> str:
        return f"Prefix({str(self.path)!r})"

    # -- what it is ------------------------------------------------------------------------

    @property
    def conda_meta(self) -> Path:
        return self.path / "conda-meta"

    def is_conda(self) -> bool:
        """Has `conda-meta/` (a directory): conda, mamba, micromamba and pixi prefixes do."""
        return self.conda_meta.is_dir()

    def is_venv(self) -> bool:
        """Has `pyvenv.cfg` and no `conda-meta/` (conda's python also ships a pyvenv.cfg)."""
        return (self.path / "pyvenv.cfg").is_file() and not self.is_conda()

    def is_pixi(self) -> bool:
        """A conda-format prefix in a pixi project: `<project>/.pixi/envs/<name>`."""
        parent = self.path.parent
        return parent.name == "envs" and parent.parent.name == ".pixi" and self.is_conda()

    def kind(self) -> EnvironmentKind | None:
        """`pixi`, `conda` or `venv`; None when the folder is none of them."""
        if self.is_conda():
            return "pixi" if self.is_pixi() else "conda"
        if (self.path / "pyvenv.cfg").is_file():
            return "venv"
        return None

    def is_restoring(self) -> bool:
        """A restore started building this prefix and has not finished."""
        return os.path.lexists(self.path / RESTORE_MARKER)

    # -- python ----------------------------------------------------------------------------

    def python_version(self) -> str | None:
        """`3.11.7`-like from the conda `python` record, else pyvenv.cfg; `3.11` from lib/."""
        return (
            self._python_version_from_records()
            or self._python_version_from_pyvenv_cfg()
            or self._python_version_from_lib()
        )

    def _python_version_from_records(self) -> str | None:
        # The record's file name says the version: no need to parse a (possibly large) JSON.
        for entry in _scandir(self.conda_meta):
            if entry.name.startswith("python-") and entry.name.endswith(".json"):
                parts = split_dist_name(entry.name[: -len(".json")])
                if parts and parts[0] == "python":
                    return parts[1]
        return None

    def _python_version_from_pyvenv_cfg(self) -> str | None:
        values = self._pyvenv_cfg()
        # venv writes `version`, virtualenv and uv write `version_info` (`3.11.7.final.0`).
        for key in ("version", "version_info"):
            if key in values:
                version = _version_prefix(values[key])
                if version:
                    return version
        return None

    def _pyvenv_cfg(self) -> dict[str, str]:
        try:
            text = (self.path / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return {}
        values: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip().lower()] = value.strip()
        return values

    def _python_version_from_lib(self) -> str | None:
        found: list[tuple[int, int]] = []
        for entry in _scandir(self.path / "lib"):
            m = _LIB_PYTHON.fullmatch(entry.name)
            if m and _is_dir(entry):
                found.append((int(m.group(1)), int(m.group(2))))
        if not found:
            return None
        major, minor = max(found)
        return f"{major}.{minor}"

    # -- kernels ---------------------------------------------------------------------------

    def kernel_dirs(self) -> list[KernelDir]:
        """`share/jupyter/kernels/*/kernel.json` that parse, sorted by folder name."""
        found: list[KernelDir] = []
        for entry in _scandir(self.path / "share" / "jupyter" / "kernels"):
            if not _is_dir(entry):
                continue
            if not is_utf8_path(entry.name):
                log.debug("skipping kernel folder with a non-UTF-8 name: %r", entry.path)
                continue
            kernel_json = Path(entry.path) / "kernel.json"
            if not os.path.lexists(kernel_json):
                continue
            spec = _read_json_object(kernel_json)
            if spec is None:
                continue
            argv = spec.get("argv")
            if not isinstance(argv, list) or not argv:
                log.debug("skipping %s: no argv list", kernel_json)
                continue
            found.append(KernelDir(entry.name, Path(entry.path), spec))
        return sorted(found, key=lambda k: k.name)

    # -- packages --------------------------------------------------------------------------

    def _record_paths(self) -> list[Path]:
        return sorted(
            Path(e.path)
            for e in _scandir(self.conda_meta)
            if e.name.endswith(".json") and not _is_dir(e)
        )

    def conda_packages(self) -> list[Package]:
        """Packages from `conda-meta/*.json`, sorted by name; a damaged record falls back to
        its file name (`name-version-build.json`) with no channel."""
        packages = []
        for path in self._record_paths():
            package = self._package(path, _read_json_object(path))
            if package is not None:
                packages.append(package)
        return sorted(packages, key=lambda p: (p.name, p.version, p.build, p.channel or ""))

    @staticmethod
    def _package(path: Path, record: dict[str, Any] | None) -> Package | None:
        from_name = split_dist_name(path.name[: -len(".json")])
        if record is not None:
            fields = [record.get("name"), record.get("version"), record.get("build")]
            if all(isinstance(f, str) and f for f in fields):
                channel = record.get("channel") or record.get("schannel")
                return Package(
                    str(fields[0]),
                    str(fields[1]),
                    str(fields[2]),
                    channel if isinstance(channel, str) else None,
                )
            log.debug("%s lacks name/version/build; using its file name", path)
        if from_name is None:
            log.debug("skipping %s: not a name-version-build record", path)
            return None
        return Package(*from_name, channel=None)

    def _conda_owned_dist_infos(self) -> set[str]:
        """Prefix-relative distribution metadata (`.dist-info` and `.egg-info` folders,
        `.egg-info` files, `.egg` folders and zips) that some conda record lists."""
        return self.read_conda_records(dist_infos=True)[1]

    # -- records, fast ---------------------------------------------------------------------

    def conda_records(self) -> list[CondaRecord]:
        """Every `conda-meta/*.json` record, sorted by name (see `read_conda_records`)."""
        return self.read_conda_records()[0]

    def read_conda_records(self, dist_infos: bool = False) -> tuple[list[CondaRecord], set[str]]:
        """The records sorted by name, and (with `dist_infos`) the prefix-relative
        distribution metadata their files include: `.dist-info` folders and, when
        site-packages holds any egg (so that there is one to tell apart), the `.egg-info`
        folders and files, `.egg` folders and zips and `.egg-link` files of packages built
        with `setup.py`.

        Only the needed fields are decoded: a record's `files` and `paths_data` (99% of its
        bytes in a real environment) are skipped unless `dist_infos` asks for the former. A
        record that cannot be read falls back to its file name (`damaged`). Raises OSError
        when `conda-meta` exists but cannot be listed; no `conda-meta` gives no records.
        """
        meta = os.fspath(self.conda_meta)
        try:
            with os.scandir(meta) as it:
                names = sorted(e.name for e in it if e.name.endswith(".json"))
        except FileNotFoundError:
            return [], set()
        # Searching the paths for eggs costs as much again as for `.dist-info` folders, and
        # most environments have no egg at all: only look when site-packages holds one.
        eggs = dist_infos and self._has_eggs()
        records: list[CondaRecord] = []
        owned: set[str] = set()
        for name in names:
            # Plain strings, not Paths or os.path.join: at hundreds of records they show.
            path = meta + os.sep + name
            try:
                scanned = _read_record(path, dist_infos, eggs)
            except IsADirectoryError:
                continue
            except OSError as exc:
                log.debug("cannot read %s: %s", path, exc)
                scanned = None
            record = _record_from_fields(path, scanned[0]) if scanned else None
            if record is None:
                record = _record_from_file_name(path, name)
                if record is None:
                    continue
            elif scanned is not None:
                owned |= scanned[1]
            records.append(record)
        records.sort(key=_RECORD_ORDER)
        return records, owned

    def history(self) -> list[HistoryEntry]:
        """The blocks of `conda-meta/history` (none when it is missing or empty)."""
        return read_history(self.conda_meta / "history")

    def requested_specs(self, records: list[CondaRecord] | None = None) -> dict[str, str]:
        """Package name -> the spec the user asked for, in order of first request.

        From `conda-meta/history` when it records any request (conda, mamba, micromamba),
        else from the records' own requested specs (rattler and pixi leave the history
        empty), in name order. Names may include packages no longer installed.
        """
        from_history = history_requested_specs(self.history())
        if from_history is not None:
            return from_history
        specs: dict[str, str] = {}
        for record in self.conda_records() if records is None else records:
            if record.requested_specs:
                specs.setdefault(record.name, record.requested_specs[0])
        return specs

    def site_packages_dirs(self) -> list[Path]:
        """`lib/python*/site-packages` (and Windows' `Lib/site-packages`) that exist."""
        candidates = [
            Path(e.path) / "site-packages"
            for e in _scandir(self.path / "lib")
            if e.name.startswith("python") and _is_dir(e)
        ]
        candidates.append(self.path / "Lib" / "site-packages")
        return [d for d in candidates if d.is_dir()]

    def has_dist_infos(self) -> bool:
        """Some site-packages folder holds distribution metadata (pip-installed or conda's
        own): a `.dist-info`, `.egg-info`, `.egg` or `.egg-link`. Without any, no record's
        file list needs reading."""
        sites = self.site_packages_dirs()
        return any(e.name.endswith(_METADATA_SUFFIXES) for site in sites for e in _scandir(site))

    def _has_eggs(self) -> bool:
        """Some site-packages folder holds an `.egg-info`, `.egg` or `.egg-link`."""
        sites = self.site_packages_dirs()
        return any(e.name.endswith(_EGG_SUFFIXES) for site in sites for e in _scandir(site))

    def pip_packages(self) -> list[PipPackage]:
        """Distributions in site-packages whose metadata no conda record lists, sorted by
        normalized name (see `pip_distributions`)."""
        return [PipPackage(d.name, d.version) for d in self.pip_distributions()]

    def pip_distributions(self, conda_owned: set[str] | None = None) -> list[PipDistribution]:
        """Distributions in site-packages that no conda record owns, with where each came
        from, sorted by normalized name.

        Every way of installing counts: `.dist-info` folders (wheels: pip, uv); `.egg-info`
        folders and files (`setup.py install`, older pip, distutils); `.egg` folders and zips
        (easy_install); `.egg-link` files (`setup.py develop`, an `editable` install). Name
        and version come from the metadata's headers only: metadata without them is skipped
        (with a debug line) rather than guessed from a file name: only a damaged install
        lacks them. A name is reported once: a `.dist-info` wins over an egg, an egg over
        an `.egg-link`.

        `conda_owned` (prefix-relative metadata paths, from `read_conda_records`) saves
        reading the records again; it is read only when site-packages has any metadata.
        """
        found: dict[str, PipDistribution] = {}
        owned = conda_owned
        for _rank, _site, _name, path, is_dir in self._metadata_entries():
            if owned is None:
                owned = self._conda_owned_dist_infos() if self.is_conda() else set()
            if path.relative_to(self.path).as_posix() in owned:
                continue
            distribution = _installed_distribution(path, is_dir)
            if distribution is not None:
                found.setdefault(normalize_dist_name(distribution.name), distribution)
        return [found[k] for k in sorted(found)]

    def _metadata_entries(self) -> list[tuple[int, int, str, Path, bool]]:
        """`(rank, site, name, path, is_dir)` of each metadata entry of site-packages, in
        the order that decides which of two entries for one name counts: by rank
        (`.dist-info` first), then site-packages folder, then name."""
        entries = []
        for site_index, site in enumerate(self.site_packages_dirs()):
            for entry in _scandir(site):
                rank = _metadata_rank(entry.name)
                if rank is None:
                    continue
                is_dir = _is_dir(entry)
                # Anything else (a FIFO, a socket) would block or fail when opened.
                if is_dir or _is_file(entry):
                    entries.append((rank, site_index, entry.name, Path(entry.path), is_dir))
        entries.sort()
        return entries

    # -- activation ------------------------------------------------------------------------

    def activation_env_vars(self) -> dict[str, str]:
        """Variables `conda activate` sets from this prefix's own configuration.

        As conda does: the packages' `etc/conda/env_vars.d/*.json` in file-name order (later
        wins), then `conda-meta/state`'s `env_vars` (what the user set with `conda env
        config vars set`), which win over the packages'; conda's `***unset***` drops one.
        """
        merged: dict[str, str] = {}
        env_vars_d = self.path / "etc" / "conda" / "env_vars.d"
        for path in sorted(Path(e.path) for e in _scandir(env_vars_d) if e.name.endswith(".json")):
            merged.update(self._string_values(path, _read_json_object(path)))
        merged.update(self._state_env_vars())
        return {k: v for k, v in merged.items() if v != _CONDA_UNSET_VALUE}

    def state_env_vars(self) -> dict[str, str]:
        """Only what the user set with `conda env config vars set` (`conda-meta/state`),
        without the `***unset***` markers: the `variables:` of an exported spec."""
        return {k: v for k, v in self._state_env_vars().items() if v != _CONDA_UNSET_VALUE}

    def _state_env_vars(self) -> dict[str, str]:
        state_path = self.conda_meta / "state"
        if not os.path.lexists(state_path):
            return {}
        state = _read_json_object(state_path)
        env_vars = state.get("env_vars") if state else None
        if env_vars is not None and not isinstance(env_vars, dict):
            log.debug("skipping %s: env_vars is not an object", state_path)
            return {}
        return self._string_values(state_path, env_vars)

    @staticmethod
    def _string_values(path: Path, values: dict[str, Any] | None) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in (values or {}).items():
            # Numbers are written unquoted by hand-made files; conda exports them as text.
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                out[key] = str(value)
            else:
                log.debug("%s: ignoring %s (not a string)", path, key)
        return out


# -- reading records fast ---------------------------------------------------------------------

_RECORD_FIELDS = frozenset(
    {
        "name",
        "version",
        "build",
        "channel",
        "url",
        "md5",
        "sha256",
        "subdir",
        "fn",
        "depends",
        "requested_spec",
        "requested_specs",
    }
)
# With these found, a record's remaining fields are not needed for export.
_CORE_FIELDS = ("name", "version", "build", "channel", "url", "md5")
_BULKY_FIELDS = frozenset({"files", "paths_data"})
_STRING_FIELDS = ("name", "version", "build", "channel", "url", "md5", "sha256", "subdir", "fn")
_RECORD_ORDER = operator.attrgetter("name", "version", "build")
_KEY = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]*)": ')
# Searched for in a record's `files` list (see `_dist_infos_in`): what a path in a
# `.dist-info` folder holds, and what every egg form starts with, then how it may go on.
_DIST_INFO_MARK = b".dist-info/"
_EGG_MARK = b".egg"
_EGG_INFO_OR_LINK = (b"-info", b"-link")
_PATH_END_MARKS = (b"/", b'"')
# rattler writes every field export needs before the paths, so the head of the file is
# enough; a file no larger than this is decoded whole.
_HEAD_BYTES = 8 * 1024


class _Truncated(Exception):
    """The scan needs more of the file than the head that was read."""


def _scan_record(
    data: bytes, dist_infos: bool, complete: bool = True, eggs: bool = False
) -> tuple[dict[str, Any], set[str]] | None:
    """The wanted top-level fields of a record's JSON, and the distribution metadata of its
    `files` if asked (see `_dist_infos_in`); None when the JSON cannot be read.

    conda, mamba, rattler and pixi all write records pretty-printed, one top-level key per
    line at one fixed indent. That layout lets the scan jump from key to key and over the
    bulky lists with `bytes.find` instead of decoding every path; any other layout, or
    anything unexpected, is read with `json.loads` instead. With `complete=False`, `data` is
    only the head of the file, and `_Truncated` is raised when the scan needs more.
    """
    layout = _pretty_layout(data)
    if layout is None:
        if not complete:
            raise _Truncated
        return _parse_record(data, dist_infos, eggs)
    newline, indent = layout
    marker = newline + indent  # start of a top-level line; a key follows it
    fields: dict[str, Any] = {}
    owned: set[str] = set()
    pos = 1 + len(marker)
    try:
        while True:
            m = _KEY.match(data, pos)
            if m is None:
                raise ValueError("no key where one was expected")
            key = m.group(1).decode("ascii")
            start = m.end()
            opener = data[start : start + 1]
            if opener in (b"[", b"{") and data.startswith(newline, start + 1):
                if key in _BULKY_FIELDS and not dist_infos and _has_core_fields(fields):
                    break  # rattler's order: everything needed came before the paths
                closer = marker + (b"]" if opener == b"[" else b"}")
                end = data.find(closer, start)
                if end < 0:
                    raise ValueError("unclosed value")
                end += len(closer)
                if key in _RECORD_FIELDS:
                    fields[key] = json.loads(data[start:end])
                elif key == "files" and dist_infos:
                    owned |= _dist_infos_in(data[start:end], eggs)
                if data.startswith(b",", end):
                    end += 1
            else:
                end = data.find(newline, start)
                if end < 0:
                    raise ValueError("unterminated line")
                if key in _RECORD_FIELDS:
                    fields[key] = _scalar(data[start:end].rstrip(b","))
                elif key == "files" and dist_infos:  # a list written on one line
                    owned |= _dist_infos_in(data[start:end], eggs)
            if not data.startswith(marker + b'"', end):
                # Anything but the object's closing line means the head cut a value short.
                if not complete and not data.startswith(newline + b"}", end):
                    raise ValueError("cut off")
                break
            pos = end + len(marker)
    except (ValueError, UnicodeDecodeError):
        if not complete:
            raise _Truncated from None
        return _parse_record(data, dist_infos, eggs)
    return fields, owned


def _read_record(
    path: str, dist_infos: bool, eggs: bool = False
) -> tuple[dict[str, Any], set[str]] | None:
    """`_scan_record` of the file at `path`, reading only its head when that is enough."""
    with open(path, "rb") as fh:
        data = fh.read(_HEAD_BYTES)
        if len(data) < _HEAD_BYTES:
            # A small record (no or few files): C's JSON decoder beats the scan's Python steps.
            return _parse_record(data, dist_infos, eggs)
        if not dist_infos:
            try:
                return _scan_record(data, dist_infos, complete=False)
            except _Truncated:
                pass
        data += fh.read()
    return _scan_record(data, dist_infos, eggs=eggs)


def _scalar(value: bytes) -> Any:
    """A one-line JSON value; plain strings (nearly all of them) without the JSON decoder."""
    if len(value) >= 2 and value[0] == 0x22 and value[-1] == 0x22 and b"\\" not in value:
        return value[1:-1].decode("utf-8")
    return json.loads(value)


def _has_core_fields(fields: dict[str, Any]) -> bool:
    return all(k in fields for k in _CORE_FIELDS) and (
        "requested_specs" in fields or "requested_spec" in fields
    )


def _pretty_layout(data: bytes) -> tuple[bytes, bytes] | None:
    """`(newline, indent)` of a record written one key per line, else None."""
    if data.startswith(b"{\n"):
        newline = b"\n"
    elif data.startswith(b"{\r\n"):
        newline = b"\r\n"
    else:
        return None
    start = 1 + len(newline)
    width = len(data) - start - len(data[start:].lstrip(b" "))
    if width == 0 or not data.startswith(b'"', start + width):
        return None
    return newline, b" " * width


def _parse_record(
    data: bytes, dist_infos: bool, eggs: bool = False
) -> tuple[dict[str, Any], set[str]] | None:
    """The slow path: the whole JSON decoded."""
    try:
        record = json.loads(data)
    except ValueError:  # JSON and UTF-8 decoding errors
        return None
    if not isinstance(record, dict):
        return None
    owned: set[str] = set()
    files = record.get("files") if dist_infos else None
    if isinstance(files, list):
        for f in files:
            if isinstance(f, str) and (_DIST_INFO in f or (eggs and _EGG in f)):
                owned.update(_metadata_paths_of(f, eggs))
    return record, owned  # the other fields are ignored by `_record_from_fields`


# The metadata of a distribution, as named in a record's `files`: a `.dist-info/` folder's
# files; an `.egg-info/` or `.egg/` folder's files, or an `.egg-info`, `.egg` (a zip) or
# `.egg-link` file itself. `_dist_infos_in` (bytes of JSON) and `_metadata_paths_of` (one
# decoded path) find the same ones.
_EGG_ENDINGS = ("-info", "-link", "")


def _metadata_paths_of(path: str, eggs: bool) -> Iterator[str]:
    """The distribution metadata that one prefix-relative path is or lies in (`.dist-info`
    folders only unless `eggs`)."""
    hit = path.find(_DIST_INFO + "/")
    while hit >= 0:
        end = hit + len(_DIST_INFO)
        yield path[:end]
        hit = path.find(_DIST_INFO + "/", end)
    hit = path.find(_EGG) if eggs else -1
    while hit >= 0:
        end = hit + len(_EGG)
        end += next(len(e) for e in _EGG_ENDINGS if path.startswith(e, end))
        if end == len(path) or path[end] == "/":
            yield path[:end]
        hit = path.find(_EGG, end)


def _dist_infos_in(files_json: bytes, eggs: bool = False) -> set[str]:
    """The distribution metadata named in a JSON list of paths (see `_metadata_paths_of`;
    `.dist-info` folders only unless `eggs`).

    A literal search for each mark, then back to the string's opening quote: a regex
    over every path costs ten times more, and most records name no metadata at all.
    """
    owned: set[str] = set()
    pos = 0
    while (hit := files_json.find(_DIST_INFO_MARK, pos)) >= 0:
        pos = hit + len(_DIST_INFO_MARK) - 1
        _add_json_path(owned, files_json, pos)
    if not eggs:
        return owned
    pos = 0
    while (hit := files_json.find(_EGG_MARK, pos)) >= 0:
        pos = hit + len(_EGG_MARK)
        if files_json.startswith(_EGG_INFO_OR_LINK, pos, pos + 5):
            pos += 5
        # `/`: a file in an egg folder; `"`: the path ends (an egg file); else `.eggs/`...
        if files_json[pos : pos + 1] in _PATH_END_MARKS:
            _add_json_path(owned, files_json, pos)
    return owned


def _add_json_path(owned: set[str], files_json: bytes, end: int) -> None:
    """Add the JSON string that `end` (an offset in it) cuts short, decoded."""
    raw = files_json[files_json.rfind(b'"', 0, end) + 1 : end]
    with contextlib.suppress(ValueError):  # not JSON after all: no path to add
        owned.add(json.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode("utf-8"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _record_from_fields(path: str, fields: dict[str, Any]) -> CondaRecord | None:
    # Called once per record of every export: plain expressions, no helper calls per field.
    name, version, build, channel, url, md5, sha256, subdir, fn = [
        value if isinstance(value, str) and value else None
        for value in map(fields.get, _STRING_FIELDS)
    ]
    if name is None or version is None or build is None:
        log.debug("%s lacks name/version/build; using its file name", path)
        return None
    depends = fields.get("depends")
    requested = fields.get("requested_specs")
    if not isinstance(requested, list):
        requested = [fields.get("requested_spec")]
    return CondaRecord(
        name,
        version,
        build,
        channel,
        url,
        md5,
        sha256,
        subdir,
        fn,
        tuple(d for d in depends if isinstance(d, str)) if isinstance(depends, list) else (),
        tuple(s for s in requested if isinstance(s, str) and s),
    )


def _record_from_file_name(path: str, file_name: str) -> CondaRecord | None:
    parts = split_dist_name(file_name[: -len(".json")])
    if parts is None:
        log.debug("skipping %s: not a name-version-build record", path)
        return None
    return CondaRecord(*parts, damaged=True)


# -- installed distributions ------------------------------------------------------------------


def _metadata_rank(name: str) -> int | None:
    """Which of two metadata entries for one name counts (lower wins); None for no metadata.

    A `.dist-info` is what the newest installer wrote, an egg what an older one left; an
    `.egg-link` only points at a source folder elsewhere.
    """
    if name.endswith(_DIST_INFO):
        return 0
    if name.endswith((_EGG_INFO, _EGG)):
        return 1
    if name.endswith(_EGG_LINK):
        return 2
    return None


def _installed_distribution(path: Path, is_dir: bool) -> PipDistribution | None:
    """The distribution whose metadata is the site-packages entry `path`, or None."""
    name = path.name
    if name.endswith(_EGG_LINK):
        return None if is_dir else _egg_link_distribution(path)
    if not is_dir:
        if name.endswith(_EGG_INFO):
            # distutils' install_egg_info writes PKG-INFO's text as the `.egg-info` itself.
            package = _package_from_file(path)
        elif name.endswith(_EGG):
            package = _zipped_egg_package(path)
        else:
            return None  # a `.dist-info` is always a folder
        return None if package is None else PipDistribution(package.name, package.version, "index")
    if name.endswith(_DIST_INFO):
        metadata_dir, metadata = path, "METADATA"
    elif name.endswith(_EGG):
        metadata_dir, metadata = path / "EGG-INFO", "PKG-INFO"
    else:
        metadata_dir, metadata = path, "PKG-INFO"
    package = _package_from_file(metadata_dir / metadata)
    if package is None:
        return None
    # pip writes a PEP 610 direct_url.json into the metadata folder whatever its form.
    return _with_origin(package, metadata_dir / "direct_url.json")


def _package_from_file(path: Path) -> PipPackage | None:
    """Name and version from the headers of a METADATA or PKG-INFO file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return _package_from_headers(fh, path)
    except OSError as exc:
        log.debug("skipping %s: %s", path, exc)
        return None


def _package_from_headers(lines: Iterable[str], where: Path) -> PipPackage | None:
    """Name and version from core metadata (`Name: x` lines), or None without them."""
    headers: dict[str, str] = {}
    # Only the header block matters; the description after its blank line can be long.
    for line in lines:
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep and key in ("Name", "Version"):
            headers.setdefault(key, value.strip())
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        log.debug("skipping %s: its metadata has no Name or Version", where)
        return None
    return PipPackage(name, version)


def _zipped_egg_package(path: Path) -> PipPackage | None:
    """Name and version from a zipped `.egg`'s `EGG-INFO/PKG-INFO`, the only member read,
    and only its first `_PKG_INFO_BYTES` decompressed (the archive is untrusted)."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open("EGG-INFO/PKG-INFO") as member:
            data = member.read(_PKG_INFO_BYTES)
    except Exception as exc:  # zipfile, zlib, bz2 and lzma each raise errors of their own
        log.debug("skipping %s: %s", path, exc)
        return None
    return _package_from_headers(data.decode("utf-8", "replace").splitlines(), path)


def _egg_link_distribution(link: Path) -> PipDistribution | None:
    """An `.egg-link` (`setup.py develop`): an `editable` install of the project folder on
    its first line, whose `<name>.egg-info` tells name and version, as pip reads it."""
    try:
        with open(link, encoding="utf-8", errors="replace") as fh:
            first_line = fh.readline(4096).strip()
    except OSError as exc:
        log.debug("skipping %s: %s", link, exc)
        return None
    if not first_line:
        log.debug("skipping %s: it names no folder", link)
        return None
    folder = link.parent / first_line  # absolute, as setuptools writes it
    egg_info = _linked_egg_info(folder, link.name[: -len(_EGG_LINK)])
    package = _package_from_file(egg_info / "PKG-INFO") if egg_info else None
    if package is None:
        log.debug("skipping %s: no readable .egg-info in %s", link, folder)
        return None
    return PipDistribution(package.name, package.version, "editable")


def _linked_egg_info(folder: Path, stem: str) -> Path | None:
    """`<folder>/<stem>.egg-info`, else the one whose name normalizes alike (older pip named
    the link `my-pkg`, setuptools the folder `my_pkg`)."""
    exact = folder / (stem + _EGG_INFO)
    if exact.is_dir():
        return exact
    wanted = normalize_dist_name(stem)
    for entry in _scandir(folder):
        stem = entry.name[: -len(_EGG_INFO)]
        if entry.name.endswith(_EGG_INFO) and normalize_dist_name(stem) == wanted:
            return Path(entry.path)
    return None


def _with_origin(package: PipPackage, direct_url_json: Path) -> PipDistribution:
    """`package` with the origin its PEP 610 `direct_url.json` records (none: an index)."""
    if not os.path.lexists(direct_url_json):
        return PipDistribution(package.name, package.version, "index")
    info = _read_json_object(direct_url_json)
    url = _text(info.get("url")) if info else None
    if info is None or url is None:
        # Unreadable: the safest reading is a plain install of that name and version.
        return PipDistribution(package.name, package.version, "index")
    subdirectory = _text(info.get("subdirectory"))
    fragment = f"#subdirectory={subdirectory}" if subdirectory else ""
    vcs_info = info.get("vcs_info")
    if isinstance(vcs_info, dict):
        vcs = _text(vcs_info.get("vcs")) or "git"
        revision = _text(vcs_info.get("commit_id")) or _text(vcs_info.get("requested_revision"))
        clean = redact_url(url)
        if not clean.startswith(f"{vcs}+"):
            clean = f"{vcs}+{clean}"
        at = f"@{revision}" if revision else ""
        return PipDistribution(package.name, package.version, "vcs", clean + at + fragment)
    dir_info = info.get("dir_info")
    if isinstance(dir_info, dict):
        kind: PipInstallKind = "editable" if dir_info.get("editable") is True else "local"
        return PipDistribution(package.name, package.version, kind)
    if url.startswith("file:"):
        return PipDistribution(package.name, package.version, "local")
    return PipDistribution(package.name, package.version, "url", redact_url(url) + fragment)
