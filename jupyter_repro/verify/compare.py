"""Compare a cell's fresh outputs with its reference: the outputs kept in the notebook, or the
fingerprints recorded when they were stripped. Pure functions, no kernel.

The verdict follows nbval's `IPyNbCell.compare_outputs` (nbval 0.11) so that both agree on
well-defined notebooks:

- streams with the same name are merged into the first of them, as nbval's (and nbclient's)
  `coalesce_streams` does; `\\r` redraws and backspaces are then resolved by `sanitize`;
- outputs are compared by *channel*: each stream name, each mime type of `execute_result` /
  `display_data` (so the two output types are interchangeable, as in nbval), and `error` (ename
  and evalue; the traceback is ignored). Both sides must have the same channels, the same number of
  values in each, and the values must agree pairwise in order; the relative order of different
  channels (stdout before or after a figure, stderr against stdout) does not matter;
- `metadata`, `execution_count`, `transient` and widget model ids
  (`application/vnd.jupyter.widget-view+json`) are ignored.

Where we differ from nbval, on purpose: text is sanitized with the fingerprint module's sanitizers
(memory addresses, temporary paths, timestamps, durations, progress bars, warnings' paths) plus the
policy's patterns; numbers in text are compared with a tolerance (`|fresh - reference| <= atol +
rtol * |reference|`, integers too); images are compared by the digest of their decoded bytes
(nbval skips PNG and JPEG unless run with --nbdime); every differing channel is reported, with a
unified diff of the sanitized texts or the list of changed numbers.

Both sides go through `notebooks.fingerprint.fingerprint_outputs` (with no size limit) before
they are compared, so outputs and recorded fingerprints are read by the same rules.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..notebooks.fingerprint import (
    DEFAULT_MAX_TEXT,
    IGNORED_MIMES,
    fingerprint_outputs,
    sanitize,
    text_of,
)

CellStatus = Literal["match", "differs", "error", "no_reference", "skipped"]
CELL_STATUSES: tuple[CellStatus, ...] = ("match", "differs", "error", "no_reference", "skipped")

MAX_DIFF_LINES = 60
"""A comparison's `diff` is cut after this many lines (and says how many were left out)."""
MAX_LINE_CHARS = 400
"""Diff lines longer than this (one-line HTML, minified JSON) are shortened."""
MAX_NUMBER_LINES = 20
"""At most this many changed numbers are listed per channel."""

# ---------------------------------------------------------------------------------------------
# Tolerance and per-cell directives


@dataclass(frozen=True)
class Tolerance:
    """Numbers in text match when `abs(fresh - reference) <= atol + rtol * abs(reference)`."""

    rtol: float = 1e-9
    atol: float = 1e-12

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, not {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")

    def allowed(self, reference: float) -> float:
        """The largest difference accepted from `reference`."""
        return self.atol + self.rtol * abs(reference)

    def close(self, fresh: float, reference: float) -> bool:
        if math.isnan(fresh) or math.isnan(reference):
            return math.isnan(fresh) and math.isnan(reference)
        if math.isinf(fresh) or math.isinf(reference):
            return fresh == reference
        return abs(fresh - reference) <= self.allowed(reference)


class DirectiveError(ValueError):
    """A cell's tag or metadata asks for something invalid (a tolerance that is not a number,
    a sanitizer that is not a regular expression). The message names the tag or key."""


@dataclass(frozen=True)
class Directives:
    """What a cell's tags, metadata and nbval comment markers ask of verification."""

    skip: bool = False
    """nbval-skip, repro:skip, `# NBVAL_SKIP`: not executed, status `skipped`."""
    ignore_output: bool = False
    """nbval-ignore-output, repro:ignore-output, `# NBVAL_IGNORE_OUTPUT`: executed (it must not
    raise) but its outputs are not compared."""
    raises: bool = False
    """nbval-raises-exception, raises-exception (JupyterLab's tag), repro:raises-exception,
    `# NBVAL_RAISES_EXCEPTION`: an error output is expected; it is compared like any other
    output (ename, sanitized evalue)."""
    tolerance: Tolerance | None = None
    """The cell's tolerance when it sets one (the default with the cell's rtol/atol), else None."""
    sanitizers: tuple[str, ...] = ()
    """Extra regular expressions for this cell (`metadata.jupyter_repro.sanitizers`)."""


SKIP_TAGS = frozenset({"nbval-skip", "repro:skip"})
IGNORE_OUTPUT_TAGS = frozenset(
    {"nbval-ignore-output", "pytest-validate-ignore-output", "repro:ignore-output"}
)
RAISES_TAGS = frozenset({"nbval-raises-exception", "raises-exception", "repro:raises-exception"})
# nbval's comment markers (a whole comment line in the source).
_COMMENT_MARKERS = {
    "NBVAL_SKIP": "skip",
    "NBVAL_IGNORE_OUTPUT": "ignore_output",
    "PYTEST_VALIDATE_IGNORE_OUTPUT": "ignore_output",
    "NBVAL_RAISES_EXCEPTION": "raises",
}
_TOLERANCE_TAG = re.compile(r"^repro:(rtol|atol)=(.*)$")
CELL_METADATA_KEY = "jupyter_repro"


def _parse_tolerance_value(value: object, where: str) -> float:
    if isinstance(value, bool):
        raise DirectiveError(f"{where}: expected a number, not {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DirectiveError(f"{where}: expected a number, not {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise DirectiveError(f"{where}: expected a finite number >= 0, not {value!r}")
    return number


def cell_directives(cell: Mapping[str, Any], default: Tolerance | None = None) -> Directives:
    """Read a cell's verification directives.

    Tags: nbval's (`nbval-skip`, `nbval-ignore-output`, `nbval-raises-exception`,
    `raises-exception`) and ours (`repro:skip`, `repro:ignore-output`, `repro:raises-exception`,
    `repro:rtol=1e-6`, `repro:atol=1e-8`); nbval's comment markers in the source (`# NBVAL_SKIP`,
    `# NBVAL_IGNORE_OUTPUT`, `# NBVAL_RAISES_EXCEPTION`); cell metadata
    `metadata.jupyter_repro` `{"rtol": .., "atol": .., "sanitizers": [regex, ..]}`. A tag wins
    over the metadata for the same tolerance. Raises DirectiveError for invalid values.
    """
    default = default or Tolerance()
    metadata = cell.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    tags = metadata.get("tags")
    tags = [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []
    flags = {"skip": False, "ignore_output": False, "raises": False}
    overrides: dict[str, float] = {}
    sanitizers: list[str] = []

    ours = metadata.get(CELL_METADATA_KEY)
    if isinstance(ours, Mapping):
        for key in ("rtol", "atol"):
            if key in ours:
                overrides[key] = _parse_tolerance_value(
                    ours[key], f"cell metadata jupyter_repro.{key}"
                )
        patterns = ours.get("sanitizers", ())
        if isinstance(patterns, str) or not isinstance(patterns, Sequence):
            raise DirectiveError(
                "cell metadata jupyter_repro.sanitizers: expected a list of regular expressions"
            )
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise DirectiveError(
                    f"cell metadata jupyter_repro.sanitizers: {pattern!r} is not a string"
                )
            try:
                re.compile(pattern)
            except re.error as exc:
                raise DirectiveError(
                    f"cell metadata jupyter_repro.sanitizers: {pattern!r} is not a regular "
                    f"expression ({exc})"
                ) from None
            sanitizers.append(pattern)

    for tag in tags:
        lowered = tag.strip().lower()
        if lowered in SKIP_TAGS:
            flags["skip"] = True
        elif lowered in IGNORE_OUTPUT_TAGS:
            flags["ignore_output"] = True
        elif lowered in RAISES_TAGS:
            flags["raises"] = True
        else:
            match = _TOLERANCE_TAG.match(tag.strip())
            if match:
                overrides[match[1]] = _parse_tolerance_value(match[2], f"tag {tag!r}")

    for line in text_of(cell.get("source") or "").splitlines():
        line = line.strip()
        if line.startswith("#"):
            flag = _COMMENT_MARKERS.get(line.lstrip("#").strip())
            if flag:
                flags[flag] = True

    tolerance = (
        Tolerance(
            rtol=overrides.get("rtol", default.rtol), atol=overrides.get("atol", default.atol)
        )
        if overrides
        else None
    )
    return Directives(tolerance=tolerance, sanitizers=tuple(sanitizers), **flags)


# ---------------------------------------------------------------------------------------------
# Comparison results


@dataclass(frozen=True)
class Comparison:
    """The verdict on one cell's outputs; `diff` says what differs (None when they match)."""

    status: Literal["match", "differs"]
    diff: str | None = None

    @property
    def matches(self) -> bool:
        return self.status == "match"


MATCH = Comparison("match")

# ---------------------------------------------------------------------------------------------
# Normalizing outputs: both sides become channels of values, through fingerprint_outputs, so that
# outputs and fingerprints are read by one set of rules (text or binary mime, JSON as text,
# ignored widget views, sanitizing, digests).

_UNLIMITED = sys.maxsize


def coalesce_streams(outputs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Outputs as plain dicts, every stream merged into the first stream of its name (nbval's
    and nbclient's `coalesce_streams`; `\\r` and backspaces are resolved by `sanitize`)."""
    merged: list[dict[str, Any]] = []
    streams: dict[str, dict[str, Any]] = {}
    for output in outputs:
        if not isinstance(output, Mapping):
            continue
        item = dict(output)
        if item.get("output_type") == "stream":
            name = item.get("name")
            name = name if isinstance(name, str) else ""
            text = item.get("text")
            text = text_of(text) if isinstance(text, (str, list)) else ""
            if name in streams:
                streams[name]["text"] += text
                continue
            item["name"], item["text"] = name, text
            streams[name] = item
        merged.append(item)
    return merged


@dataclass(frozen=True)
class _Value:
    """One value of a channel."""

    text: str | None = None
    """Sanitized text; None for binary data and for text kept only as a digest."""
    sha256: str | None = None
    size: int | None = None
    """Binary data: decoded size in bytes."""
    ename: str | None = None
    """Errors: the exception's name (`text` is its sanitized evalue)."""
    binary: bool = False

    @property
    def digest_only(self) -> bool:
        return self.text is None and not self.binary


Channels = dict[str, list[_Value]]


def _value(entry: Mapping[str, Any], extra: Sequence[str], ename: str | None = None) -> _Value:
    text = entry.get("text")
    sha256 = entry.get("sha256")
    return _Value(
        # Recorded texts are already sanitized with the defaults (idempotent): add the extras.
        text=sanitize(text_of(text), extra) if isinstance(text, (str, list)) else None,
        sha256=sha256 if isinstance(sha256, str) else None,
        ename=ename,
    )


def _channels(fingerprints: Sequence[Mapping[str, Any]], extra: Sequence[str]) -> Channels:
    """Fingerprint entries (recorded, or made of fresh outputs) grouped by channel: the stream
    name, the mime type, or "error"."""
    channels: Channels = {}
    for entry in fingerprints:
        if not isinstance(entry, Mapping):
            continue
        kind = entry.get("output_type")
        if kind == "stream":
            channels.setdefault(str(entry.get("name", "")), []).append(_value(entry, extra))
        elif kind == "error":
            ename = entry.get("ename")
            channels.setdefault("error", []).append(
                _value(entry, extra, ename=ename if isinstance(ename, str) else "")
            )
        elif kind in ("execute_result", "display_data"):
            data = entry.get("data")
            for mime, item in data.items() if isinstance(data, Mapping) else ():
                if mime in IGNORED_MIMES or not isinstance(item, Mapping):
                    continue
                if "size" in item:
                    size, sha256 = item.get("size"), item.get("sha256")
                    value = _Value(
                        sha256=sha256 if isinstance(sha256, str) else None,
                        size=size if isinstance(size, int) else None,
                        binary=True,
                    )
                else:
                    value = _value(item, extra)
                channels.setdefault(str(mime), []).append(value)
        else:
            # An output type nbformat does not know: only its type is compared.
            channels.setdefault(f"output_type {kind!r}", []).append(
                _Value(text=json.dumps(dict(entry), sort_keys=True, default=repr))
            )
    return channels


def _output_channels(outputs: Sequence[Mapping[str, Any]], extra: Sequence[str]) -> Channels:
    """Outputs (all streams of a name merged) as channels with every text kept."""
    return _channels(fingerprint_outputs(coalesce_streams(outputs), max_text=_UNLIMITED), extra)


# ---------------------------------------------------------------------------------------------
# Text with numbers

_NUMBER = re.compile(
    r"""
    (?<![\w.])                                  # not inside a name, a version or after a dot
    [-+]?
    (?:
        (?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?
      | (?i:nan|inf(?:inity)?)(?!\w)
    )
    """,
    re.VERBOSE,
)
_HSPACE = re.compile(r"[ \t]+")


def _split_numbers(text: str) -> tuple[list[str], list[str]]:
    """(text pieces, number tokens): pieces has one more element than numbers."""
    pieces: list[str] = []
    numbers: list[str] = []
    position = 0
    for match in _NUMBER.finditer(text):
        pieces.append(text[position : match.start()])
        numbers.append(match.group())
        position = match.end()
    pieces.append(text[position:])
    return pieces, numbers


def _fmt(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else str(value)


def _describe_number(reference: str, fresh: str, tolerance: Tolerance) -> str:
    ref, new = float(reference), float(fresh)
    if not (math.isfinite(ref) and math.isfinite(new)):
        return f"{reference} -> {fresh}"
    delta = abs(new - ref)
    relative = _fmt(delta / abs(ref), ".1e") if ref else "inf"
    return (
        f"{reference} -> {fresh} (differs by {_fmt(delta, '.6g')}, relative {relative}, "
        f"allowed {_fmt(tolerance.allowed(ref), '.3g')})"
    )


def _compare_numbers(fresh: str, reference: str, tolerance: Tolerance) -> list[str] | None:
    """None when the texts differ in more than their numbers; else the changed numbers, as
    "reference -> fresh (...)" lines (empty: everything within tolerance)."""
    fresh_pieces, fresh_numbers = _split_numbers(fresh)
    ref_pieces, ref_numbers = _split_numbers(reference)
    if len(fresh_numbers) != len(ref_numbers):
        return None
    if fresh_numbers == ref_numbers:
        return None  # same numbers, so the difference is in the text
    # A number printed with more or fewer digits shifts the padding of aligned columns
    # (numpy arrays, pandas tables): horizontal whitespace counts only as "some".
    if [_HSPACE.sub(" ", piece) for piece in fresh_pieces] != [
        _HSPACE.sub(" ", piece) for piece in ref_pieces
    ]:
        return None
    return [
        _describe_number(ref, new, tolerance)
        for new, ref in zip(fresh_numbers, ref_numbers, strict=True)
        if not tolerance.close(float(new), float(ref))
    ]


def _clip(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    return line[:MAX_LINE_CHARS] + f"… ({len(line) - MAX_LINE_CHARS} more characters)"


def _unified(reference: str, fresh: str, label: str) -> list[str]:
    lines = list(
        difflib.unified_diff(
            reference.splitlines(),
            fresh.splitlines(),
            fromfile=f"reference {label}",
            tofile=f"fresh {label}",
            lineterm="",
        )
    )
    if not lines and reference != fresh:
        # Only line endings or a trailing newline differ.
        lines = [
            f"--- reference {label}",
            f"+++ fresh {label}",
            f"-{reference!r}",
            f"+{fresh!r}",
        ]
    return [_clip(line) for line in lines]


def _compare_text(fresh: str, reference: str, label: str, tolerance: Tolerance) -> list[str]:
    """[] when the (already sanitized) texts agree within tolerance, else the report lines."""
    if fresh == reference:
        return []
    changed = _compare_numbers(fresh, reference, tolerance)
    if changed is None:
        return _unified(reference, fresh, label)
    if not changed:
        return []
    shown = [f"{label}: numbers differ beyond the tolerance"]
    shown += [f"  {line}" for line in changed[:MAX_NUMBER_LINES]]
    if len(changed) > MAX_NUMBER_LINES:
        shown.append(f"  ... and {len(changed) - MAX_NUMBER_LINES} more")
    return shown


def _size(value: _Value) -> str:
    return f"{value.size:,} bytes" if value.size is not None else "unknown size"


def _describe_value(value: _Value) -> str:
    if value.binary:
        return f"<{_size(value)}, sha256 {value.sha256}>"
    prefix = f"{value.ename}: " if value.ename is not None else ""
    if value.text is None:
        return f"{prefix}<text kept only as a digest, sha256 {value.sha256}>"
    return prefix + value.text


def _joined(values: list[_Value]) -> str:
    return "\n".join(_describe_value(value) for value in values)


def _compare_value(
    where: str, new: _Value, ref: _Value, tolerance: Tolerance, max_text: int | None
) -> list[str]:
    if new.binary or ref.binary:
        if new.binary and ref.binary and new.sha256 == ref.sha256:
            return []
        if not (new.binary and ref.binary):
            return _unified(_describe_value(ref), _describe_value(new), where)
        kind = "image" if where.startswith("image/") else "data"
        return [f"{kind} differs ({where}: {_size(new)} now, {_size(ref)} in the reference)"]
    lines: list[str] = []
    if new.ename != ref.ename:
        lines.append(f"{where}: {new.ename} now, {ref.ename} in the reference")
    if ref.text is not None and new.text is not None:
        return lines + _compare_text(new.text, ref.text, where, tolerance)
    if new.sha256 == ref.sha256:
        return lines
    kept = f"longer than {max_text} characters, " if max_text is not None else ""
    lines.append(
        f"{where} differs from the reference, of which only a digest was kept (its text was "
        f"{kept}so it is compared exactly, without tolerance or the policy's sanitizers). "
        "Fresh text:"
    )
    return lines + [_clip(f"  {line}") for line in (new.text or "").splitlines()]


def _compare_channel(
    label: str,
    fresh: list[_Value],
    reference: list[_Value],
    tolerance: Tolerance,
    max_text: int | None,
) -> list[str]:
    if not fresh:
        lines = [f"missing output: {label} (in the reference, not in the fresh run)"]
        return lines + _unified(_joined(reference), "", label)
    if not reference:
        lines = [f"unexpected output: {label} (in the fresh run, not in the reference)"]
        return lines + _unified("", _joined(fresh), label)
    if len(fresh) != len(reference):
        lines = [f"{label}: {len(fresh)} outputs now, {len(reference)} in the reference"]
        return lines + _unified(_joined(reference), _joined(fresh), label)
    lines = []
    for number, (new, ref) in enumerate(zip(fresh, reference, strict=True), start=1):
        where = label if len(fresh) == 1 else f"{label} #{number}"
        lines += _compare_value(where, new, ref, tolerance, max_text)
    return lines


def _compare_channels(
    fresh: Channels, reference: Channels, tolerance: Tolerance, max_text: int | None = None
) -> Comparison:
    lines: list[str] = []
    for label in [*reference, *(key for key in fresh if key not in reference)]:
        block = _compare_channel(
            label, fresh.get(label, []), reference.get(label, []), tolerance, max_text
        )
        if block and lines:
            lines.append("")
        lines += block
    if not lines:
        return MATCH
    if len(lines) > MAX_DIFF_LINES:
        left = len(lines) - MAX_DIFF_LINES
        lines = [*lines[:MAX_DIFF_LINES], f"... ({left} more lines)"]
    return Comparison("differs", "\n".join(lines))


def compare_outputs(
    fresh: Sequence[Mapping[str, Any]],
    reference: Sequence[Mapping[str, Any]],
    *,
    tolerance: Tolerance | None = None,
    sanitizers: Sequence[str] = (),
) -> Comparison:
    """Compare a cell's fresh outputs with the outputs kept in the notebook (nbformat dicts;
    multi-line strings may be lists of lines). Text is sanitized on both sides with the
    default sanitizers and then `sanitizers` (the policy's and the cell's regular expressions)."""
    return _compare_channels(
        _output_channels(fresh, sanitizers),
        _output_channels(reference, sanitizers),
        tolerance or Tolerance(),
    )


def compare_fingerprints(
    fresh: Sequence[Mapping[str, Any]],
    fingerprints: Sequence[Mapping[str, Any]],
    *,
    tolerance: Tolerance | None = None,
    sanitizers: Sequence[str] = (),
    max_text: int = DEFAULT_MAX_TEXT,
) -> Comparison:
    """Compare a cell's fresh outputs with the fingerprints recorded when its outputs were
    stripped (`metadata.jupyter_repro.fingerprints[<cell id>]`).

    A recorded text is compared like an output's (numbers with tolerance, the extra
    `sanitizers` applied); a text kept only as a digest (longer than `max_text`, the policy's
    `fingerprint_max_text`) must have the same digest, made by `fingerprint_outputs` from the
    fresh text; binary data must have the same digest (both sizes are reported).
    """
    recorded = _channels(fingerprints, sanitizers)
    outputs = [dict(output) for output in fresh if isinstance(output, Mapping)]
    # Consecutive stream outputs merged, as the fingerprints were made...
    channels = _channels(fingerprint_outputs(outputs, max_text=_UNLIMITED), sanitizers)
    # ...and every stream of a name merged, as nbval compares them.
    whole = _output_channels(outputs, sanitizers)
    streams = {
        str(entry.get("name", ""))
        for entry in [*outputs, *fingerprints]
        if isinstance(entry, Mapping) and entry.get("output_type") == "stream"
    }
    for name in streams:
        reference = recorded.get(name, [])
        if len(channels.get(name, [])) == len(reference):
            continue
        # The stream was split differently by other outputs (stdout around stderr or a
        # figure): compare each side whole when the recorded texts allow it.
        if name in whole:
            channels[name] = whole[name]
        if len(reference) > 1 and all(value.text is not None for value in reference):
            recorded[name] = [_Value(text="".join(value.text or "" for value in reference))]
    return _compare_channels(channels, recorded, tolerance or Tolerance(), max_text)
