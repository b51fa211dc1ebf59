"""Strip outputs and volatile metadata from a notebook, with nbstripout's semantics.

`strip_notebook` is a pure transformation of a notebook dict (as `nbjson.parse_notebook` or a
contents manager gives it). It reports whether anything changed by tracking its own edits, so
callers never deep-copy a notebook to compare. Differences from nbstripout 0.9.1, on purpose:

- every tag given to `drop_tagged_cells` drops cells (nbstripout honours only the last one);
- `metadata.jupyter_repro` (the embedded environment) is never removed, whatever `extra_keys`;
- cells that need a new id get a stable one instead of nbformat's random one (see nbjson);
- with `fingerprint` (the strip policy's default, never the drop-in's), a code cell whose
  outputs are removed leaves their fingerprints in `metadata.jupyter_repro.fingerprints`.

Fingerprints (see `fingerprint.py` for an entry's shape), keyed by the cell's id after
stripping, follow these rules, which make stripping a stripped notebook change nothing:

- a code cell that had outputs and has none left gets their fingerprints; one that ran and
  printed nothing (its execution count, cleared by stripping, said it ran) gets an empty
  list, so a later run must print nothing too;
- a code cell with outputs left gets none (a stale entry goes), be they all of its outputs
  or some (`max_size`, `keep_output_types`, `drop_output_types`): its remaining outputs are
  what `verify` compares with. Fingerprinting all of its outputs instead would make a
  second strip undo the first: it would find all the remaining outputs kept;
- a code cell without outputs keeps its entry (from `previous_fingerprints` first, when
  given), moved to its new id when stripping renumbers it;
- entries of other ids (cells dropped, cells no longer code) go; cells without a string id
  (nbformat before 4.5, which the stripper never gives ids) get none, and neither does a
  notebook before nbformat 4 or whose `metadata.jupyter_repro` is not an object;
- `metadata.jupyter_repro` is created only when there is something to record, an empty
  `fingerprints` is removed, and `metadata.jupyter_repro` itself is never removed.

Computing them costs only where outputs are removed: `fingerprint.py` (hashlib, its regexes)
is imported then and only then.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .nbjson import Notebook, NotebookError, dumps_notebook, major_version, parse_notebook

# The keys nbstripout removes unless told to keep them.
NBSTRIPOUT_EXTRA_KEYS: tuple[str, ...] = (
    "metadata.signature",
    "metadata.widgets",
    "cell.metadata.collapsed",
    "cell.metadata.ExecuteTime",
    "cell.metadata.execution",
    "cell.metadata.heading_collapsed",
    "cell.metadata.hidden",
    "cell.metadata.scrolled",
)
# Notebook metadata that stripping never removes: the environment travels with the notebook.
PROTECTED_METADATA_KEY = "jupyter_repro"
# fingerprint.FINGERPRINTS_KEY and fingerprint.DEFAULT_MAX_TEXT, without importing that module.
FINGERPRINTS_KEY = "fingerprints"
DEFAULT_FINGERPRINT_MAX_TEXT = 1024

_MISSING = object()


class MetadataConflict(NotebookError):
    """A cell says both to keep and not to keep its output: `keep_output: false` in its
    metadata and the tag `keep_output` (nbstripout's MetadataError)."""

    def __init__(self, cell_number: int | None = None, cell_id: object = None) -> None:
        self.cell_number = cell_number
        """1-based, in the notebook as it was read (cells dropped by options count too)."""
        self.cell_id = cell_id if isinstance(cell_id, str) else None
        where = "a cell" if cell_number is None else f"cell {cell_number}"
        if self.cell_id is not None:
            where += f" (id {self.cell_id!r})"
        super().__init__(
            f"{where} has `keep_output: false` in its metadata but the tag `keep_output`: "
            "remove the tag to strip its outputs, or the metadata key to keep them"
        )


@dataclass(frozen=True)
class StripOptions:
    """What to strip; field names and defaults are nbstripout's options."""

    keep_output: bool | None = None
    keep_count: bool = False
    keep_id: bool = False
    extra_keys: tuple[str, ...] = NBSTRIPOUT_EXTRA_KEYS
    keep_metadata_keys: tuple[str, ...] = ()
    drop_empty_cells: bool = False
    drop_tagged_cells: tuple[str, ...] = ()
    strip_init_cells: bool = False
    max_size: int = 0
    keep_output_types: frozenset[str] = frozenset()
    drop_output_types: frozenset[str] = frozenset()
    # nbstripout lets `metadata.keep_output` of a notebook decide only when the command line
    # said nothing; the strip policy lets the notebook override the configuration.
    notebook_overrides: bool = False
    # Not nbstripout's: record the fingerprints of removed outputs (see the module doc).
    fingerprint: bool = False
    fingerprint_max_text: int = DEFAULT_FINGERPRINT_MAX_TEXT

    def metadata_keys_to_remove(self) -> tuple[list[str], list[str]]:
        """(notebook metadata paths, cell paths) to remove, without the kept and invalid ones."""
        notebook_keys: list[str] = []
        cell_keys: list[str] = []
        for key in self.extra_keys:
            if key in self.keep_metadata_keys or key not in valid_extra_keys((key,)):
                continue
            namespace, path = key.split(".", 1)
            if namespace == "cell":
                cell_keys.append(path)
            elif path.split(".", 1)[0] != PROTECTED_METADATA_KEY:
                notebook_keys.append(path)
        return notebook_keys, cell_keys


_SIZE = re.compile(r"\s*(\d+)\s*([kmg]?)\s*", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def parse_max_size(value: Any) -> int:
    """A `max_size` in characters: an integer, or a string like "500", "10k", "1M" or "1G"
    (powers of 1000, as nbstripout's `--max-size`)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match:
            return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    raise ValueError("a size: a non-negative integer or a string like '500', '10k', '1M' or '1G'")


def valid_extra_keys(keys: Iterable[str]) -> list[str]:
    """The keys of the form `metadata.…` or `cell.…`; others are ignored (with a warning)."""
    return [k for k in keys if "." in k and k.split(".", 1)[0] in ("cell", "metadata")]


@dataclass(frozen=True)
class StripResult:
    text: str
    changed: bool


@dataclass
class _Edits:
    changed: bool = False


def strip_text(text: str | bytes, options: StripOptions) -> StripResult:
    """Parse, strip and write a notebook; the text is what nbformat.write would produce."""
    nb = parse_notebook(text)
    changed = strip_notebook(nb, options)
    return StripResult(dumps_notebook(nb), changed)


def strip_notebook(
    nb: Notebook,
    options: StripOptions,
    *,
    previous_fingerprints: Mapping[str, Any] | None = None,
) -> bool:
    """Strip `nb` in place according to `options`; True if anything changed.

    `previous_fingerprints` (with `options.fingerprint`): fingerprints by cell id recorded
    more recently than the notebook's own, such as those of the file a save replaces; a code
    cell without outputs keeps the entry found there before its own.
    """
    if not (
        isinstance(nb, dict)
        and isinstance(nb.get("metadata"), dict)
        and isinstance(nb.get("cells", nb.get("worksheets")), list)
    ):
        # Said plainly here, for every caller (the git filter, the save hook, the CLI):
        # other JSON would otherwise fail deep inside as a KeyError.
        raise NotebookError(
            "not a notebook: expected a JSON object with 'metadata' and 'cells' (or 'worksheets')"
        )
    try:
        return _strip(nb, options, previous_fingerprints)
    except MetadataConflict:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise NotebookError(f"cannot strip this notebook: {error!r}") from None


def _strip(nb: Notebook, options: StripOptions, previous: Mapping[str, Any] | None = None) -> bool:
    edits = _Edits()
    metadata = nb["metadata"]
    fingerprints = (
        _Fingerprints(metadata, options.fingerprint_max_text, previous)
        if options.fingerprint
        and major_version(nb) >= 4
        and isinstance(metadata.get(PROTECTED_METADATA_KEY, {}), dict)
        else None
    )
    keep_output = options.keep_output
    if "keep_output" in metadata and (keep_output is None or options.notebook_overrides):
        keep_output = bool(metadata["keep_output"])

    notebook_keys, cell_keys = options.metadata_keys_to_remove()
    for path in notebook_keys:
        if _pop_path(metadata, path) is not _MISSING:
            edits.changed = True

    for index, (number, cell) in enumerate(_kept_cells(nb, options, edits)):
        old_id, outputs, ran = cell.get("id"), cell.get("outputs"), cell.get("execution_count")
        try:
            _strip_cell(cell, index, keep_output, options, cell_keys, edits)
        except MetadataConflict:
            # Where the user finds the cell: its place in the file as read, and its id.
            raise MetadataConflict(number, cell.get("id")) from None
        if fingerprints is not None and cell.get("cell_type") == "code":
            # Ran and printed nothing, and stripping forgets that it ran: "no output" is
            # what a later run must match, so it is recorded (as an empty list).
            silent = ran is not None and cell.get("execution_count") is None
            fingerprints.cell(old_id, cell.get("id"), outputs, cell.get("outputs"), silent)
    if fingerprints is not None and fingerprints.write():
        edits.changed = True
    return edits.changed


class _Fingerprints:
    """The fingerprints of one notebook, made anew cell by cell as it is stripped."""

    def __init__(
        self, metadata: Notebook, max_text: int, previous: Mapping[str, Any] | None
    ) -> None:
        self.metadata = metadata
        self.max_text = max_text
        embedded = metadata.get(PROTECTED_METADATA_KEY)
        self.current: Any = (
            embedded.get(FINGERPRINTS_KEY, _MISSING) if isinstance(embedded, dict) else _MISSING
        )
        self.own: Mapping[str, Any] = self.current if isinstance(self.current, dict) else {}
        self.previous: Mapping[str, Any] = previous or {}
        self.entries: dict[str, Any] = {}

    def cell(self, old_id: Any, new_id: Any, before: Any, after: Any, silent: bool = False) -> None:
        """A code cell: its id and outputs before and after stripping; `silent`: it had run,
        printed nothing, and stripping cleared its execution count."""
        if not isinstance(new_id, str):
            return
        count = len(before) if isinstance(before, list) else 0
        if count == 0:
            # An entry recorded earlier wins: outputs cleared in the editor (the count stays)
            # look like a silent run, and must not erase what the last strip recorded.
            if isinstance(old_id, str):
                for source in (self.previous, self.own):
                    if old_id in source:
                        self.entries[new_id] = source[old_id]
                        return
            if silent:
                self.entries[new_id] = []
        elif not after:
            from .fingerprint import fingerprint_outputs

            self.entries[new_id] = fingerprint_outputs(before, max_text=self.max_text)

    def write(self) -> bool:
        """Put the entries into the metadata; True if that changed it."""
        if self.entries:
            if isinstance(self.current, dict) and self.current == self.entries:
                return False
            embedded = self.metadata.setdefault(PROTECTED_METADATA_KEY, {})
            embedded[FINGERPRINTS_KEY] = self.entries
            return True
        if self.current is _MISSING:
            return False
        del self.metadata[PROTECTED_METADATA_KEY][FINGERPRINTS_KEY]
        return True


def _kept_cells(nb: Notebook, options: StripOptions, edits: _Edits) -> list[tuple[int, Notebook]]:
    """Drop the cells the options remove; the remaining cells, in order, each with its
    1-based number in the notebook as read."""
    containers = nb["worksheets"] if "nbformat" in nb and nb["nbformat"] < 4 else [nb]
    kept_all: list[tuple[int, Notebook]] = []
    number = 0
    for container in containers:
        cells = container["cells"]
        kept = [(number + n, cell) for n, cell in enumerate(cells, 1) if _keeps_cell(cell, options)]
        number += len(cells)
        if len(kept) != len(cells):
            container["cells"] = [cell for _, cell in kept]
            edits.changed = True
        kept_all.extend(kept)
    return kept_all


def _keeps_cell(cell: Notebook, options: StripOptions) -> bool:
    if options.drop_empty_cells and not any(line.strip() for line in cell.get("source", [])):
        return False
    if options.drop_tagged_cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if any(tag in tags for tag in options.drop_tagged_cells):
            return False
    return True


def _strip_cell(
    cell: Notebook,
    index: int,
    keep_output: bool | None,
    options: StripOptions,
    cell_keys: list[str],
    edits: _Edits,
) -> None:
    # Asked of every cell, outputs or not: a contradiction is an error wherever it is.
    keep_this_output = keeps_output(cell, keep_output, options.strip_init_cells)
    if "outputs" in cell:
        outputs = cell["outputs"]
        if not keep_this_output or options.keep_output_types:
            outputs = [
                output
                for output in outputs
                if _size_at_most(output, options.max_size)
                or _matches_any(output, options.keep_output_types)
            ]
        if not options.keep_count:
            for output in outputs:
                if "execution_count" in output and output["execution_count"] is not None:
                    output["execution_count"] = None
                    edits.changed = True
        if options.drop_output_types:
            outputs = [o for o in outputs if not _matches_any(o, options.drop_output_types)]
        if len(outputs) != len(cell["outputs"]):
            edits.changed = True
        cell["outputs"] = outputs

    if not options.keep_count:
        for key in ("prompt_number", "execution_count"):
            if key in cell and cell[key] is not None:
                cell[key] = None
                edits.changed = True
    if "id" in cell and not options.keep_id and cell["id"] != str(index):
        cell["id"] = str(index)
        edits.changed = True
    for path in cell_keys:
        if _pop_path(cell, path) is not _MISSING:
            edits.changed = True


def keeps_output(cell: Notebook, default: bool | None, strip_init_cells: bool = False) -> bool:
    """Whether a cell's metadata or tags say to keep its output (nbstripout's rules)."""
    if "metadata" not in cell:
        return bool(default)
    metadata = cell["metadata"]
    if "init_cell" in metadata:
        return bool(metadata["init_cell"]) and not strip_init_cells
    has_metadata = "keep_output" in metadata
    metadata_says = bool(metadata.get("keep_output", False))
    has_tag = "keep_output" in metadata.get("tags", [])
    if has_metadata and has_tag and not metadata_says:
        raise MetadataConflict()
    if has_metadata or has_tag:
        return metadata_says or has_tag
    return bool(default)


def _pop_path(container: Any, path: str) -> Any:
    """Remove `path` (dot-separated, or a key that itself contains dots) from nested dicts."""
    while isinstance(container, dict):
        if path in container:
            return container.pop(path)
        if "." not in path:
            return _MISSING
        head, path = path.split(".", 1)
        if head not in container:
            return _MISSING
        container = container[head]
    return _MISSING


def _size_at_most(item: Any, limit: int) -> bool:
    """Whether nbstripout's size of `item` (its string lengths, summed) is at most `limit`.

    Stops as soon as the limit is passed: with the default limit 0 that is the first
    character, so large outputs are never walked.
    """
    total = 0
    stack = [item]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        else:
            total += len(str(value))
        if total > limit:
            return False
    return True


def _matches_any(output: Any, output_types: frozenset[str]) -> bool:
    return any(_matches(output, spec) for spec in output_types)


def _matches(output: Any, spec: str) -> bool:
    """`spec` is an output type, or `type:name` such as `stream:stderr`."""
    output_type, _, name = spec.partition(":")
    if output.get("output_type") != output_type:
        return False
    return (not name and ":" not in spec) or output.get("name") == name


def strip_zeppelin_text(text: str | bytes) -> StripResult:
    """Empty every paragraph's results in a Zeppelin notebook (nbstripout's zeppelin mode)."""
    try:
        nb = json.loads(text)
        changed = False
        for paragraph in nb["paragraphs"]:
            if "results" in paragraph:
                changed = changed or paragraph["results"] != {}
                paragraph["results"] = {}
    except (ValueError, UnicodeDecodeError) as error:
        raise NotebookError(f"not valid Zeppelin notebook JSON ({error})") from None
    except (KeyError, TypeError, AttributeError) as error:
        raise NotebookError(f"not a Zeppelin notebook: {error!r}") from None
    return StripResult(json.dumps(nb, indent=2) + "\n", changed)
