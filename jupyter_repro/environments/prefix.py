"""One environment on disk (conda, pixi or venv), read from its files; nothing is ever run.

Every reader here tolerates a damaged environment: a record, kernel.json or metadata file
that cannot be read or parsed is skipped with a debug log line, so one broken file never
hides the rest of an environment (or of a listing) from the user.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

RESTORE_MARKER = "conda-meta/.jupyter_repro_restoring"
"""Present while a restore is still building the prefix; discovery skips such prefixes."""

EnvironmentKind = Literal["conda", "pixi", "venv"]

# conda's "unset this variable" value in conda-meta/state (`conda env config vars unset`).
_CONDA_UNSET_VALUE = "***unset***"
_LIB_PYTHON = re.compile(r"python(\d+)\.(\d+)t?")
_VERSION_PREFIX = re.compile(r"\d+(?:\.\d+){0,2}")
_DIST_INFO = ".dist-info"


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
        """Prefix-relative `.../x.dist-info` folders that some conda record lists files of."""
        owned: set[str] = set()
        for path in self._record_paths():
            record = _read_json_object(path)
            files = record.get("files") if record else None
            if not isinstance(files, list):
                continue
            for f in files:
                if isinstance(f, str):
                    end = f.find(_DIST_INFO + "/")
                    if end >= 0:
                        owned.add(f[: end + len(_DIST_INFO)])
        return owned

    def site_packages_dirs(self) -> list[Path]:
        """`lib/python*/site-packages` (and Windows' `Lib/site-packages`) that exist."""
        candidates = [
            Path(e.path) / "site-packages"
            for e in _scandir(self.path / "lib")
            if e.name.startswith("python") and _is_dir(e)
        ]
        candidates.append(self.path / "Lib" / "site-packages")
        return [d for d in candidates if d.is_dir()]

    def pip_packages(self) -> list[PipPackage]:
        """Distributions in site-packages whose `.dist-info` no conda record lists, sorted by
        normalized name; name and version from their METADATA."""
        owned = self._conda_owned_dist_infos() if self.conda_meta.is_dir() else set()
        found: dict[str, PipPackage] = {}
        for site in self.site_packages_dirs():
            for entry in _scandir(site):
                if not entry.name.endswith(_DIST_INFO) or not _is_dir(entry):
                    continue
                relative = Path(entry.path).relative_to(self.path).as_posix()
                if relative in owned:
                    continue
                package = self._dist_info_package(Path(entry.path))
                if package is not None:
                    found.setdefault(normalize_dist_name(package.name), package)
        return [found[k] for k in sorted(found)]

    @staticmethod
    def _dist_info_package(dist_info: Path) -> PipPackage | None:
        headers: dict[str, str] = {}
        try:
            with open(dist_info / "METADATA", encoding="utf-8", errors="replace") as fh:
                # Only the header block matters; the description after it can be long.
                for line in fh:
                    if not line.strip():
                        break
                    key, sep, value = line.partition(":")
                    if sep and key in ("Name", "Version"):
                        headers.setdefault(key, value.strip())
        except OSError as exc:
            log.debug("skipping %s: %s", dist_info, exc)
            return None
        name, version = headers.get("Name"), headers.get("Version")
        if not name or not version:
            log.debug("skipping %s: METADATA has no Name or Version", dist_info)
            return None
        return PipPackage(name, version)

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
        state_path = self.conda_meta / "state"
        if os.path.lexists(state_path):
            state = _read_json_object(state_path)
            env_vars = state.get("env_vars") if state else None
            if env_vars is not None and not isinstance(env_vars, dict):
                log.debug("skipping %s: env_vars is not an object", state_path)
            elif env_vars:
                merged.update(self._string_values(state_path, env_vars))
        return {k: v for k, v in merged.items() if v != _CONDA_UNSET_VALUE}

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
