"""The strip policy: what to strip from a notebook, and whether to strip it on save.

One policy drives the save hook, the git filter, the pre-commit hooks and `jupyter repro
strip`. It is resolved in layers, each overriding the one before:

1. defaults: nbstripout's, except that notebooks are stripped on save (`on_save`), valid unique
   cell ids are kept (`keep_id`), a notebook's own `metadata.keep_output` beats the
   configuration (`notebook_overrides`) and removed outputs leave their fingerprints
   (`fingerprint`, texts kept up to `fingerprint_max_text` characters: see strip.py);
2. `[tool.jupyter_repro.strip]` of the project's `pyproject.toml`;
3. the server configuration (`ReproApp.strip_policy`, `ReproApp.strip_on_save`);
4. at strip time (in `strip_notebook`, not here): the notebook's `metadata.keep_output`, then
   each cell's `keep_output` metadata or tag.

The project's `pyproject.toml` is the first one found walking up from the notebook's folder,
and only its table counts, even when it has none: like ruff and black, the nearest
`pyproject.toml` marks the project root, and a file further up belongs to another project. The
walk also stops at a git work tree's root (a folder holding `.git`): the git filter must strip
a notebook the same way in every clone, so the policy of a repository never comes from a file
outside it. A layer replaces the earlier layers' value of a key; `extra_keys` are always added
to nbstripout's default extra keys.

This module is imported by the git filter's per-file command: it must stay light (no
jupyter_server, traitlets or nbformat).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .strip import NBSTRIPOUT_EXTRA_KEYS, StripOptions, parse_max_size, valid_extra_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

PYPROJECT = "pyproject.toml"
TABLE = "tool.jupyter_repro.strip"
# The name `sources` and error messages give the server-level layer.
SERVER_SOURCE = "server configuration"

# A file or folder changed within this many seconds may change again within the same
# timestamp tick (coarse on many file systems), which a (mtime, size) stamp cannot see: such
# entries are not cached. Git treats "racily clean" index entries the same way.
_RACY_SECONDS = 2.0


class PolicyError(ValueError):
    """A strip policy setting is invalid; the message names the file, the key and what is
    expected. `source` is the file (or SERVER_SOURCE) the message starts with."""

    def __init__(self, message: str, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


@dataclass(frozen=True)
class StripPolicy:
    """The resolved policy for one notebook."""

    options: StripOptions
    on_save: bool = True
    # Where the settings came from, lowest precedence first: a pyproject.toml path and/or
    # SERVER_SOURCE. Empty for the defaults alone.
    sources: tuple[str, ...] = ()


DEFAULT_OPTIONS = StripOptions(keep_id=True, notebook_overrides=True, fingerprint=True)
DEFAULT_POLICY = StripPolicy(DEFAULT_OPTIONS, on_save=True, sources=())


# -- keys ------------------------------------------------------------------------------------


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Expected("true or false")
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise _Expected("a list of non-empty strings")
    return tuple(value)


def _metadata_paths(value: Any) -> tuple[str, ...]:
    keys = _strings(value)
    invalid = [key for key in keys if key not in valid_extra_keys((key,))]
    if invalid:
        raise _Expected(
            "a list of dotted paths starting with 'metadata.' or 'cell.' "
            f"(like 'cell.metadata.tags'), not {invalid[0]!r}"
        )
    return keys


_OUTPUT_TYPE = re.compile(r"[A-Za-z_][\w-]*(:[\w-]+)?")


def _output_types(value: Any) -> frozenset[str]:
    types = _strings(value)
    invalid = [item for item in types if not _OUTPUT_TYPE.fullmatch(item)]
    if invalid:
        raise _Expected(
            "a list of output types, alone or with a name (like 'stream:stderr'), "
            f"not {invalid[0]!r}"
        )
    return frozenset(types)


def parse_size(value: Any) -> int:
    """`max_size`, `fingerprint_max_text`: an integer, or a string like nbstripout's
    `--max-size` ("10k", "1M")."""
    try:
        return parse_max_size(value)
    except ValueError as error:
        raise _Expected(str(error)) from None


class _Expected(Exception):
    """Raised by a key's parser: what the key expects (PolicyError adds file and key)."""


# Policy key -> its parser (the key is a StripOptions field, or on_save).
_KEYS: dict[str, Callable[[Any], Any]] = {
    "on_save": _boolean,
    "keep_output": _boolean,
    "keep_count": _boolean,
    "keep_id": _boolean,
    "extra_keys": _metadata_paths,
    "keep_metadata_keys": _metadata_paths,
    "drop_empty_cells": _boolean,
    "drop_tagged_cells": _strings,
    "strip_init_cells": _boolean,
    "max_size": parse_size,
    "keep_output_types": _output_types,
    "drop_output_types": _output_types,
    "fingerprint": _boolean,
    "fingerprint_max_text": parse_size,
}
POLICY_KEYS: tuple[str, ...] = tuple(_KEYS)


def parse_settings(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The settings of one layer, checked and converted; `source` names it in errors."""
    if not isinstance(table, Mapping):
        raise PolicyError(f"{source}: [{TABLE}] must be a table of settings", source)
    settings: dict[str, Any] = {}
    for key, value in table.items():
        parser = _KEYS.get(key)
        if parser is None:
            raise PolicyError(
                f"{source}: unknown strip policy key {key!r}; the keys are "
                + ", ".join(POLICY_KEYS),
                source,
            )
        try:
            settings[key] = parser(value)
        except _Expected as expected:
            message = f"{source}: {key!r} must be {expected}, not {value!r}"
            raise PolicyError(message, source) from None
    return settings


def check_overrides(overrides: Mapping[str, Any]) -> None:
    """Raise PolicyError if the server-level overrides are invalid (at server start)."""
    parse_settings(overrides, SERVER_SOURCE)


# -- files -----------------------------------------------------------------------------------

_lock = threading.Lock()
# pyproject path -> ((mtime_ns, size, inode), its settings, None without a table, or the
# message of its PolicyError: a broken file is not parsed again for every notebook)
_settings_cache: dict[str, tuple[tuple[int, int, int], dict[str, Any] | str | None]] = {}
# folder -> (the pyproject.toml that governs it or None, the folders walked with their mtime_ns)
_lookup_cache: dict[str, tuple[str | None, tuple[tuple[str, int], ...]]] = {}


def find_pyproject(directory: str | os.PathLike[str]) -> str | None:
    """The pyproject.toml governing notebooks in `directory` (see the module doc), or None.

    Cached per folder. A cached answer is checked with one stat per folder walked: creating
    or removing a pyproject.toml or .git changes its folder's mtime.
    """
    start = os.path.abspath(directory)
    with _lock:
        cached = _lookup_cache.get(start)
    if cached is not None:
        found, walked = cached
        if all(_mtime_ns(folder) == mtime for folder, mtime in walked):
            return found
    found, walked_list = _walk_up(start)
    if not any(_is_racy(mtime) for _, mtime in walked_list):
        with _lock:
            _lookup_cache[start] = (found, tuple(walked_list))
    return found


def _walk_up(start: str) -> tuple[str | None, list[tuple[str, int]]]:
    walked: list[tuple[str, int]] = []
    folder = start
    while True:
        # The folder's mtime is read before its entries: a file created after the check
        # changes the mtime, so the cached answer is never newer than what was seen.
        walked.append((folder, _mtime_ns(folder)))
        candidate = os.path.join(folder, PYPROJECT)
        if os.path.isfile(candidate):
            return candidate, walked
        if os.path.lexists(os.path.join(folder, ".git")):
            return None, walked
        parent = os.path.dirname(folder)
        if parent == folder:
            return None, walked
        folder = parent


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _is_racy(mtime_ns: int) -> bool:
    return mtime_ns >= 0 and time.time() - mtime_ns / 1e9 < _RACY_SECONDS


def pyproject_settings(pyproject: str) -> dict[str, Any] | None:
    """The checked settings of `[tool.jupyter_repro.strip]` in a pyproject.toml, None when it
    has no such table. Cached by path and (mtime_ns, size, inode): an edited file is read
    again."""
    try:
        stat = os.stat(pyproject)
    except OSError as error:
        raise PolicyError(f"{pyproject}: cannot read it ({error.strerror})", pyproject) from None
    stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    with _lock:
        cached = _settings_cache.get(pyproject)
    if cached is not None and cached[0] == stamp:
        result = cached[1]
    else:
        try:
            result = _read_settings(pyproject)
        except PolicyError as error:
            result = str(error)
        if not _is_racy(stat.st_mtime_ns):
            with _lock:
                _settings_cache[pyproject] = (stamp, result)
    if isinstance(result, str):
        # A fresh exception each time: one stored instance would collect tracebacks.
        raise PolicyError(result, pyproject)
    return None if result is None else dict(result)


def _read_settings(pyproject: str) -> dict[str, Any] | None:
    try:
        with open(pyproject, "rb") as file:
            document = tomllib.load(file)
    except OSError as error:
        raise PolicyError(f"{pyproject}: cannot read it ({error.strerror})", pyproject) from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{pyproject}: not valid TOML ({error})", pyproject) from None
    except UnicodeDecodeError as error:
        message = f"{pyproject}: not valid TOML (not UTF-8: {error.reason})"
        raise PolicyError(message, pyproject) from None
    table: Any = document
    for part in TABLE.split("."):
        if not isinstance(table, dict) or part not in table:
            return None
        table = table[part]
    return parse_settings(table, pyproject)


def clear_caches() -> None:
    """Forget every cached lookup and pyproject.toml (for long-lived processes and tests)."""
    with _lock:
        _settings_cache.clear()
        _lookup_cache.clear()


# -- resolution ------------------------------------------------------------------------------


def load_policy(
    notebook_path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None
) -> StripPolicy:
    """The policy for the notebook at `notebook_path` (which need not exist yet): defaults,
    then its project's pyproject.toml, then `overrides` (the server configuration)."""
    directory = os.path.dirname(os.path.abspath(notebook_path))
    pyproject = find_pyproject(directory)
    layers: list[tuple[str, dict[str, Any]]] = []
    if pyproject is not None:
        settings = pyproject_settings(pyproject)
        if settings is not None:
            layers.append((pyproject, settings))
    if overrides:
        layers.append((SERVER_SOURCE, parse_settings(overrides, SERVER_SOURCE)))
    return resolve(layers)


def server_policy(overrides: Mapping[str, Any] | None = None) -> StripPolicy:
    """The policy without any project file: defaults, then `overrides`.

    For notebooks that are not files on this machine (a contents manager without a root).
    """
    if not overrides:
        return DEFAULT_POLICY
    return resolve([(SERVER_SOURCE, parse_settings(overrides, SERVER_SOURCE))])


def resolve(layers: list[tuple[str, dict[str, Any]]]) -> StripPolicy:
    """Apply checked settings layers (source, settings), lowest precedence first."""
    merged: dict[str, Any] = {}
    for _, settings in layers:
        merged.update(settings)
    on_save = merged.pop("on_save", DEFAULT_POLICY.on_save)
    if "extra_keys" in merged:
        added = [key for key in merged["extra_keys"] if key not in NBSTRIPOUT_EXTRA_KEYS]
        merged["extra_keys"] = NBSTRIPOUT_EXTRA_KEYS + tuple(dict.fromkeys(added))
    return StripPolicy(
        replace(DEFAULT_OPTIONS, **merged),
        on_save=on_save,
        sources=tuple(source for source, _ in layers),
    )


def policy_summary(policy: StripPolicy) -> dict[str, Any]:
    """The policy as JSON-friendly data, with the policy's key names (extra_keys in full)."""
    options = policy.options
    return {
        "on_save": policy.on_save,
        "keep_output": bool(options.keep_output),
        "sources": list(policy.sources),
        "options": {
            "keep_output": bool(options.keep_output),
            "keep_count": options.keep_count,
            "keep_id": options.keep_id,
            "extra_keys": list(options.extra_keys),
            "keep_metadata_keys": list(options.keep_metadata_keys),
            "drop_empty_cells": options.drop_empty_cells,
            "drop_tagged_cells": list(options.drop_tagged_cells),
            "strip_init_cells": options.strip_init_cells,
            "max_size": options.max_size,
            "keep_output_types": sorted(options.keep_output_types),
            "drop_output_types": sorted(options.drop_output_types),
            "notebook_overrides": options.notebook_overrides,
            "fingerprint": options.fingerprint,
            "fingerprint_max_text": options.fingerprint_max_text,
        },
    }
