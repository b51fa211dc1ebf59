"""Strip notebooks when Jupyter saves them: a contents manager pre-save hook.

The hook only changes what is written to disk: the open document in the browser keeps its
outputs, so nothing is lost while it is open. It never blocks or fails a save: when anything
goes wrong (a broken pyproject.toml, a cell whose `keep_output` metadata and tag disagree, a
malformed notebook) the notebook is saved as it came and a warning says why.

Output fingerprints (see strip.py): the open document never receives the fingerprints a save
records, so a cell whose outputs were cleared after that save would bring back the ones the
document was opened with. The fingerprints of the file being replaced are more recent: for a
cell without outputs, the hook takes its entry from there first (cell ids are the same in
the document and the file only with `keep_id`, the default; otherwise the document's own
entries are used).
"""

from __future__ import annotations

import gc
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from .nbjson import major_version, repair_cell_ids
from .policy import StripPolicy, load_policy, server_policy
from .strip import FINGERPRINTS_KEY, PROTECTED_METADATA_KEY, strip_notebook

_log = logging.getLogger(__name__)

# A file being replaced is read for its fingerprints up to this size; parsed whole (when its
# metadata cannot be found at its end, as nbformat writes it) only up to the second.
MAX_PREVIOUS_BYTES = 64 * 1024 * 1024
MAX_PREVIOUS_PARSED_BYTES = 4 * 1024 * 1024
# The line that starts the notebook's metadata in a file nbformat wrote (indent=1, sorted
# keys): only top-level keys are indented by one space.
_METADATA_LINE = b'\n "metadata": {'


class StripOnSave:
    """A pre-save hook: `contents_manager.register_pre_save_hook(StripOnSave(...))`."""

    # The contents manager names a failing hook by `__name__` in its log line.
    __name__ = "jupyter_repro_strip_on_save"

    def __init__(
        self, overrides: Mapping[str, Any] | None = None, log: logging.Logger | None = None
    ) -> None:
        self.overrides = dict(overrides or {})
        self.log = log or _log

    def __call__(
        self, model: dict[str, Any], path: str, contents_manager: Any, **kwargs: Any
    ) -> None:
        if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
            return
        try:
            os_path = notebook_os_path(path, contents_manager)
            policy = self._policy(os_path)
            if policy.on_save:
                content = model["content"]
                previous = None
                if (
                    os_path is not None
                    and policy.options.fingerprint
                    and policy.options.keep_id
                    and _has_code_cells_without_outputs(content)
                ):
                    previous = fingerprints_in_file(os_path)
                strip_in_place(content, policy, previous_fingerprints=previous)
        except Exception as error:
            # Anything at all: a hook that raised would still leave the save to go ahead,
            # but this one promises an unchanged notebook and one readable line about it.
            self.log.warning(
                "jupyter-repro: %s saved without stripping outputs: %s",
                path,
                error,
                exc_info=not isinstance(error, ValueError),
            )

    def policy_for(self, path: str, contents_manager: Any) -> StripPolicy:
        """The policy of the notebook at the contents manager's `path`."""
        return self._policy(notebook_os_path(path, contents_manager))

    def _policy(self, os_path: str | None) -> StripPolicy:
        if os_path is None:
            return server_policy(self.overrides)
        return load_policy(os_path, self.overrides)


def _has_code_cells_without_outputs(nb: dict[str, Any]) -> bool:
    cells = nb.get("cells")
    return isinstance(cells, list) and any(
        isinstance(cell, dict) and cell.get("cell_type") == "code" and not cell.get("outputs")
        for cell in cells
    )


def fingerprints_in_file(os_path: str) -> dict[str, Any] | None:
    """`metadata.jupyter_repro.fingerprints` of the notebook file at `os_path`; None when
    there is no such file, it has none, it is too large (see MAX_PREVIOUS_BYTES) or
    unreadable.

    Only the end of the file is parsed, from its metadata on, when the file is laid out as
    nbformat writes it: the cells, the bulk of it, cost no parsing.
    """
    try:
        if os.path.getsize(os_path) > MAX_PREVIOUS_BYTES:
            return None
        with open(os_path, "rb") as file:
            data = file.read()
    except OSError:
        return None
    nb: Any = None
    at = data.rfind(_METADATA_LINE)
    if at >= 0:
        nb = _json_or_none(b"{" + data[at + 1 :])
    if not isinstance(nb, dict) and len(data) <= MAX_PREVIOUS_PARSED_BYTES:
        nb = _json_or_none(data)
    try:
        fingerprints = nb["metadata"][PROTECTED_METADATA_KEY][FINGERPRINTS_KEY]
    except (KeyError, TypeError):
        return None
    return fingerprints if isinstance(fingerprints, dict) else None


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def notebook_os_path(path: str, contents_manager: Any) -> str | None:
    """The file behind an API path, inside the manager's root; None for a manager that does
    not keep files on this machine. Raises ValueError for a path outside the root."""
    get_os_path = getattr(contents_manager, "_get_os_path", None)
    root_dir = getattr(contents_manager, "root_dir", None)
    if callable(get_os_path):
        # The FileContentsManager family: refuses paths out of the root (an HTTPError).
        try:
            os_path = str(get_os_path(path))
        except Exception as error:
            raise ValueError(f"no file for {path!r} in the server root: {error}") from None
    elif isinstance(root_dir, str) and root_dir:
        os_path = os.path.join(root_dir, *path.strip("/").split("/"))
    else:
        return None
    if isinstance(root_dir, str) and root_dir:
        root = os.path.abspath(root_dir)
        os_path = os.path.abspath(os_path)
        if os.path.commonpath([root, os_path]) != root:
            raise ValueError(f"{path!r} is outside the server root")
        # The policy route looks up a notebook's project from its real path; so does the
        # hook, unless a symlink leads out of the root, where the path as named stays.
        real_root, real_path = os.path.realpath(root), os.path.realpath(os_path)
        if os.path.commonpath([real_root, real_path]) == real_root:
            return real_path
    return os_path


def strip_in_place(
    nb: dict[str, Any],
    policy: StripPolicy,
    *,
    previous_fingerprints: Mapping[str, Any] | None = None,
) -> bool:
    """Strip `nb` by `policy`, all or nothing: on an error `nb` is left exactly as it was.

    The stripper edits its input as it goes, so it works on a copy of the structures it
    edits (every dict and list outside the outputs, and each output's own top level); the
    output data, the bulk of a large notebook, is shared, never copied. On success the
    notebook's top-level dict takes the copy's contents, so whoever holds `nb` sees the
    stripped notebook. `previous_fingerprints`: see `strip_notebook`.
    """
    # The copy allocates an object per cell and output; on a large notebook that triggers
    # collections that walk the whole notebook again and again (half of the hook's time on
    # 10,000 cells). Nothing here creates cycles; collections resume afterwards.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _strip_copy(nb, policy, previous_fingerprints)
    finally:
        if collecting:
            gc.enable()


def _strip_copy(
    nb: dict[str, Any], policy: StripPolicy, previous: Mapping[str, Any] | None
) -> bool:
    work = _editable_copy(nb)
    # The reader of the git filter and the CLI gives cells without an id, or with a taken
    # one, a stable id; do the same here, or nbformat's writer would invent random ones.
    repaired = (
        major_version(work) == 4
        and work.get("nbformat_minor", 0) >= 5
        and isinstance(work.get("cells"), list)
        and repair_cell_ids(work["cells"])
    )
    changed = strip_notebook(work, policy.options, previous_fingerprints=previous) or repaired
    if changed:
        nb.clear()
        nb.update(work)
    return changed


def _editable_copy(value: Any) -> Any:
    """Copy dicts and lists recursively, except sources (shared: stripping only reads them);
    in an `outputs` list copy each output one level."""
    if isinstance(value, dict):
        copy: dict[str, Any] = {}
        for key, item in value.items():
            if key == "outputs" and isinstance(item, list):
                copy[key] = [dict(out) if isinstance(out, dict) else out for out in item]
            elif key == "source":
                # The bulk of a notebook without outputs, and never edited: shared.
                copy[key] = item
            elif isinstance(item, (dict, list)):
                copy[key] = _editable_copy(item)
            else:
                copy[key] = item
        return copy
    if isinstance(value, list):
        return [_editable_copy(item) if isinstance(item, (dict, list)) else item for item in value]
    return value
