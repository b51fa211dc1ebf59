"""The environment spec carried inside a notebook: `metadata.jupyter_repro` (DESIGN.md).

::

    "jupyter_repro": {
     "environment": {<environment.yml as JSON>},
     "exported": {"at": "2024-05-01T12:00:00Z", "mode": "portable",
                  "platform": "linux-64", "tool_version": "0.1.0"},
     "explicit": {"linux-64": ["https://...conda#<md5>", ...]}      (optional)
    }

Writing changes nothing else in the file: the notebook is parsed as plain JSON and written
back with nbformat's own settings, so a notebook saved by Jupyter differs only by that key.
nbformat itself is not imported (about a second in a Jupyter environment).
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from .._version import __version__
from ..atomic import replace_file
from ..specs.environment import EnvironmentSpec
from .nbjson import NotebookError, dumps_json

METADATA_KEY = "jupyter_repro"
"""The key under the notebook's `metadata` that holds the embedded environment."""

KEPT_KEYS = ("fingerprints", "verified")
"""Keys of `metadata.jupyter_repro` that are not the environment: embedding keeps them."""


def has_no_environment(embedded: Any) -> bool:
    """Whether a `metadata.jupyter_repro` value embeds no environment: none at all, or only
    the keys that are not one (output fingerprints, a verification record)."""
    return embedded is None or (
        isinstance(embedded, dict)
        and "environment" not in embedded
        and set(embedded) <= set(KEPT_KEYS)
    )


def kept_keys(existing: Any) -> dict[str, Any]:
    """What embedding a new environment keeps of the old `metadata.jupyter_repro`."""
    if not isinstance(existing, dict):
        return {}
    return {key: existing[key] for key in KEPT_KEYS if key in existing}


def _is_notebook(data: Any) -> bool:
    if not isinstance(data, dict) or not isinstance(data.get("nbformat"), int):
        return False
    # nbformat 4 keeps cells at the top; 3 and older kept them in worksheets.
    return isinstance(data.get("cells"), list) or isinstance(data.get("worksheets"), list)


def read_notebook(path: Path) -> dict[str, Any]:
    """The notebook at `path` as parsed JSON; NotebookError when it is not a notebook."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise NotebookError(f"{path}: cannot read the notebook: {exc.strerror or exc}") from exc
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
        raise NotebookError(f"{path}: not a notebook: the file is not valid JSON ({exc})") from exc
    if not _is_notebook(data):
        raise NotebookError(
            f"{path}: not a notebook: expected a JSON object with 'nbformat' and 'cells'"
        )
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise NotebookError(f"{path}: not a notebook: its 'metadata' is not an object")
    return data


def kernel_name(notebook: dict[str, Any]) -> str | None:
    """`metadata.kernelspec.name` of a parsed notebook, if it has one."""
    kernelspec = notebook.get("metadata", {}).get("kernelspec")
    name = kernelspec.get("name") if isinstance(kernelspec, dict) else None
    return name if isinstance(name, str) and name else None


def utc_timestamp(moment: _dt.datetime | None = None) -> str:
    """ISO 8601 in UTC to the second, `2024-05-01T12:00:00Z`."""
    moment = moment or _dt.datetime.now(_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def embedded_metadata(
    spec: EnvironmentSpec,
    *,
    mode: str,
    platform: str,
    explicit: dict[str, list[str]] | None = None,
    exported_at: _dt.datetime | None = None,
) -> dict[str, Any]:
    """The value of `metadata.jupyter_repro` for `spec`."""
    value: dict[str, Any] = {
        "environment": spec.to_dict(),
        "exported": {
            "at": utc_timestamp(exported_at),
            "platform": platform,
            "mode": mode,
            "tool_version": __version__,
        },
    }
    if explicit:
        value["explicit"] = {p: list(urls) for p, urls in explicit.items()}
    return value


def embed_spec(
    notebook_path: Path,
    spec: EnvironmentSpec,
    *,
    mode: str,
    explicit: dict[str, list[str]] | None = None,
    platform: str | None = None,
    exported_at: _dt.datetime | None = None,
) -> None:
    """Write `spec` into the notebook's `metadata.jupyter_repro`, replacing what was there.

    `platform` is the environment's (default: this machine's). The file is replaced
    atomically, keeping its permissions; when it is not a notebook (NotebookError) it is
    left untouched.
    """
    if platform is None:
        from ..specs.export import host_platform

        platform = host_platform()
    notebook = read_notebook(notebook_path)
    metadata = notebook.setdefault("metadata", {})
    metadata[METADATA_KEY] = {
        **kept_keys(metadata.get(METADATA_KEY)),
        **embedded_metadata(
            spec,
            mode=mode,
            platform=platform,
            explicit=explicit,
            exported_at=exported_at,
        ),
    }
    replace_file(notebook_path, dumps_json(notebook))


def read_embedded(notebook_path: Path) -> EnvironmentSpec | None:
    """The spec embedded in the notebook, None when it has none.

    Raises NotebookError for a file that is not a notebook and SpecError when the embedded
    environment is invalid (it is checked like any environment.yml).
    """
    notebook = read_notebook(notebook_path)
    embedded = notebook.get("metadata", {}).get(METADATA_KEY)
    if has_no_environment(embedded):
        return None
    where = f"{notebook_path}: metadata.{METADATA_KEY}"
    environment = embedded.get("environment") if isinstance(embedded, dict) else None
    if not isinstance(environment, dict):
        raise NotebookError(f"{where} has no 'environment' object")
    return EnvironmentSpec.from_dict(environment, source=f"{where}.environment")
