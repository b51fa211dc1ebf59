"""Read and write notebooks byte-identical to nbformat, without importing nbformat.

nbformat's reader parses the JSON, joins multi-line strings, drops transient keys and (from
v4.5) fills in missing or duplicate cell ids; its writer splits text again and dumps with fixed
JSON settings. Importing nbformat (jsonschema, fastjsonschema, traitlets) costs more than
stripping a typical notebook, and its validation runs twice per write, so this module does the
same normalisation on plain dicts in one pass each way. `tests/test_nbjson.py` holds it to
nbformat's bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Notebook = dict[str, Any]

# Mime types whose string values nbformat splits into lines when writing.
_SPLIT_MIMES_OUTSIDE_TEXT = frozenset({"application/javascript", "image/svg+xml"})
# nbformat v3 and older store these output fields as lists of lines.
_V3_MULTILINE_OUTPUT_KEYS = ("text", "html", "svg", "latex", "javascript", "json")


class NotebookError(ValueError):
    """The input is not a notebook this tool can read; the message says why."""


class NotJSONError(NotebookError):
    """The input is not JSON at all."""


def parse_notebook(text: str | bytes) -> Notebook:
    """Parse notebook JSON and apply nbformat's read-time normalisation."""
    try:
        nb = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise NotJSONError(f"not valid notebook JSON ({error})") from None
    if not isinstance(nb, dict):
        raise NotebookError(f"a notebook is a JSON object, not {type(nb).__name__}")
    try:
        _normalise_read(nb)
    except (AttributeError, KeyError, TypeError) as error:
        raise NotebookError(f"not a valid notebook: {_shape_error(error)}") from None
    return nb


def major_version(nb: Notebook) -> int:
    """The notebook's nbformat major version, 1 when absent (as nbformat assumes)."""
    version = nb.get("nbformat", 1)
    return version if isinstance(version, int) else 1


def dumps_notebook(nb: Notebook) -> str:
    """The text nbformat.write produces for `nb` (a dict as `parse_notebook` returns it).

    `nb` is modified: text fields are split into lines, as nbformat's writer does on its copy.
    """
    version = major_version(nb)
    try:
        if version >= 4:
            _resplit_v4(nb)
            _strip_transient_v4(nb)
        elif version in (2, 3):
            if version == 3:
                _strip_transient_v3(nb)
            _split_v3(nb, keepends=version == 3)
    except (AttributeError, KeyError, TypeError) as error:
        raise NotebookError(f"not a valid notebook: {_shape_error(error)}") from None
    return dumps_json(nb)


def dumps_json(nb: Notebook) -> str:
    """`nb` as nbformat's writer formats the JSON of its version, content taken as it is."""
    version = major_version(nb)
    if version >= 4:
        # nbformat 4 writes UTF-8 text as is; 3 and older escaped it to ASCII.
        text = json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False)
    elif version in (2, 3):
        text = json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "))
    else:
        text = json.dumps(nb, indent=4)
    return text if text.endswith("\n") else text + "\n"


def _normalise_read(nb: Notebook) -> None:
    version = major_version(nb)
    if version >= 4:
        # Multi-line strings of v4 are joined and split again when writing, in one pass:
        # nothing a stripper looks at depends on whether they are joined yet.
        _strip_transient_v4(nb)
        if (version, nb.get("nbformat_minor", 0)) >= (4, 5):
            repair_cell_ids(nb["cells"])
    elif version in (2, 3):
        _rejoin_v3(nb, _join_v3 if version == 3 else _join_v2)
        if version == 3:
            _strip_transient_v3(nb)


def repair_cell_ids(cells: list[Notebook]) -> bool:
    """Give cells without an id, or with an id already taken, a new one; True if any changed.

    nbformat fills these in with random ids on every read, so a notebook stripped twice would
    differ; these ids derive from the cell's position and content, so they are stable.
    """
    taken = {cell["id"] for cell in cells if "id" in cell and _hashable(cell["id"])}
    seen: set[Any] = set()
    changed = False
    for index, cell in enumerate(cells):
        cell_id = cell.get("id")
        if "id" in cell and _hashable(cell_id) and cell_id not in seen:
            seen.add(cell_id)
            continue
        new_id = _stable_id(index, cell, taken)
        cell["id"] = new_id
        taken.add(new_id)
        seen.add(new_id)
        changed = True
    return changed


def _stable_id(index: int, cell: Notebook, taken: set[Any]) -> str:
    import hashlib  # here: most notebooks need no new id, and every git hook pays imports

    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else str(source)
    seed = f"{index}\0{cell.get('cell_type', '')}\0{text}"
    for attempt in range(1000):
        digest = hashlib.sha256(f"{seed}\0{attempt}".encode("utf-8", "surrogatepass"))
        candidate = digest.hexdigest()[:8]
        if candidate not in taken:
            return candidate
    raise NotebookError("could not find a free cell id")  # pragma: no cover


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _shape_error(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing key {error}"
    return str(error)


def _is_json_mime(mime: str) -> bool:
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def _rejoin_bundle(bundle: dict[str, Any]) -> None:
    for key, value in bundle.items():
        if (
            isinstance(value, list)
            and not _is_json_mime(key)
            and all(isinstance(v, str) for v in value)
        ):
            bundle[key] = "".join(value)


def _split_bundle(bundle: dict[str, Any]) -> None:
    for key, value in bundle.items():
        if isinstance(value, str) and (key.startswith("text/") or key in _SPLIT_MIMES_OUTSIDE_TEXT):
            bundle[key] = value.splitlines(True)


def rejoin_output_v4(output: dict[str, Any]) -> None:
    """Join one v4 output's multi-line strings, as nbformat's reader does."""
    output_type = output.get("output_type", "")
    if output_type in ("execute_result", "display_data"):
        _rejoin_bundle(output.get("data", {}))
    elif output_type and isinstance(output.get("text", ""), list):
        output["text"] = "".join(output["text"])


def _resplit_v4(nb: Notebook) -> None:
    """Join then split multi-line strings exactly as nbformat's reader and writer do."""
    for cell in nb["cells"]:
        source = cell.get("source")
        if isinstance(source, list):
            source = cell["source"] = "".join(source)
        if isinstance(source, str):
            cell["source"] = source.splitlines(True)
        for attachment in cell.get("attachments", {}).values():
            _rejoin_bundle(attachment)
            _split_bundle(attachment)
        if cell["cell_type"] == "code":
            for output in cell["outputs"]:
                rejoin_output_v4(output)
                output_type = output["output_type"]
                if output_type in ("execute_result", "display_data"):
                    _split_bundle(output.get("data", {}))
                elif output_type == "stream" and isinstance(output["text"], str):
                    output["text"] = output["text"].splitlines(True)


def _strip_transient_v4(nb: Notebook) -> None:
    metadata = nb["metadata"]
    metadata.pop("orig_nbformat", None)
    metadata.pop("orig_nbformat_minor", None)
    metadata.pop("signature", None)
    for cell in nb["cells"]:
        cell["metadata"].pop("trusted", None)


def _join_v3(lines: list[str]) -> str:
    # Lines written by splitlines() without keepends are joined with newlines.
    if lines and lines[0].endswith(("\n", "\r")):
        return "".join(lines)
    return "\n".join(lines)


def _v3_cells(nb: Notebook) -> list[Notebook]:
    return [cell for ws in nb["worksheets"] for cell in ws["cells"]]


def _join_v2(lines: list[str]) -> str:
    return "\n".join(lines)


def _rejoin_v3(nb: Notebook, join: Callable[[list[str]], str] = _join_v3) -> None:
    for cell in _v3_cells(nb):
        if cell["cell_type"] == "code":
            if isinstance(cell.get("input"), list):
                cell["input"] = join(cell["input"])
            for output in cell["outputs"]:
                for key in _V3_MULTILINE_OUTPUT_KEYS:
                    if isinstance(output.get(key), list):
                        output[key] = join(output[key])
        else:
            for key in ("source", "rendered"):
                if isinstance(cell.get(key), list):
                    cell[key] = join(cell[key])


def _split_v3(nb: Notebook, keepends: bool = True) -> None:
    # v2 wrote lines without their line breaks, v3 with them.
    for cell in _v3_cells(nb):
        if cell["cell_type"] == "code":
            if isinstance(cell.get("input"), str):
                cell["input"] = cell["input"].splitlines(keepends)
            for output in cell["outputs"]:
                for key in _V3_MULTILINE_OUTPUT_KEYS:
                    if isinstance(output.get(key), str):
                        output[key] = output[key].splitlines(keepends)
        else:
            for key in ("source", "rendered"):
                if isinstance(cell.get(key), str):
                    cell[key] = cell[key].splitlines(keepends)


def _strip_transient_v3(nb: Notebook) -> None:
    nb.pop("orig_nbformat", None)
    nb.pop("orig_nbformat_minor", None)
    for cell in _v3_cells(nb):
        cell.get("metadata", {}).pop("trusted", None)
        cell.pop("trusted", None)
