"""A notebook's lock: made from its kernel's environment, written as a file or embedded.

Embedding a lock also embeds the portable spec it was made from (`environment`,
`exported`), so a notebook that carries a lock always carries a spec that matches it; other
keys of `metadata.jupyter_repro` (fingerprints, verification records) are kept.
"""

from __future__ import annotations

import json
from typing import Any, Literal, cast, get_args

from ..specs.export import export_environment, platform_of
from ..specs.lock import embedded_lock, render_conda_lock, render_pixi_lock
from ..specs.locking import LockResult
from .embedded import METADATA_KEY, NotebookError, embedded_metadata

LockFormat = Literal["conda-lock", "pixi", "json"]
LOCK_FORMATS: tuple[LockFormat, ...] = get_args(LockFormat)
LOCK_MEDIA_TYPES: dict[LockFormat, str] = {
    "conda-lock": "text/yaml; charset=utf-8",
    "pixi": "text/yaml; charset=utf-8",
    "json": "application/json",
}
DEFAULT_LOCK_FILENAMES: dict[str, str] = {"conda-lock": "conda-lock.yml", "pixi": "pixi.lock"}


def check_lock_format(fmt: str) -> LockFormat:
    if fmt not in LOCK_FORMATS:
        raise ValueError(f"unknown lock format {fmt!r}; expected one of {', '.join(LOCK_FORMATS)}")
    return cast(LockFormat, fmt)


def render_lock(result: LockResult, fmt: LockFormat) -> str:
    """The lock as file text: CEP 37 conda-lock.yml, pixi.lock, or the embedded JSON."""
    if fmt == "conda-lock":
        return render_conda_lock(result.lock)
    if fmt == "pixi":
        return render_pixi_lock(result.lock, result.records)
    return json.dumps(embedded_lock(result.lock), indent=1, sort_keys=True) + "\n"


def lock_metadata(
    result: LockResult, existing: Any = None, *, prefix: Any = None
) -> dict[str, Any]:
    """The value of `metadata.jupyter_repro` with this lock (and its spec) in it."""
    value: dict[str, Any] = dict(existing) if isinstance(existing, dict) else {}
    if prefix is not None:
        spec = export_environment(prefix, "portable", result.lock.name)
        value.update(embedded_metadata(spec, mode="portable", platform=platform_of(prefix)))
        value.pop("explicit", None)
    value["lock"] = embedded_lock(result.lock)
    return value


def with_lock(notebook: dict[str, Any], result: LockResult, prefix: Any) -> dict[str, Any]:
    """`notebook` with the lock embedded; every other key untouched."""
    metadata = notebook.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise NotebookError("not a notebook: its 'metadata' is not an object")
    metadata[METADATA_KEY] = lock_metadata(result, metadata.get(METADATA_KEY), prefix=prefix)
    return notebook
