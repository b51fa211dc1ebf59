"""Output fingerprints: what a later run of a stripped cell must reproduce.

When stripping removes a code cell's outputs, `notebooks/strip.py` records
`fingerprint_outputs(<the cell's outputs>)` in `metadata.jupyter_repro.fingerprints[<cell id>]`,
so that `verify` can still check a re-run of a notebook kept without outputs. One entry per
output (consecutive stream outputs of one name count as one, as Jupyter's output area merges
them; use `fingerprint_outputs` on fresh outputs too, and the lists compare entry by entry)::

    {"output_type": "stream", "name": "stdout", "sha256": "<hex>", "text": "2\\n"}
    {"output_type": "execute_result",                      (or "display_data")
     "data": {"text/plain": {"sha256": "<hex>", "text": "<Foo at <address>>"},
              "image/png": {"sha256": "<hex>", "size": 1234}}}
    {"output_type": "error", "ename": "ValueError", "sha256": "<hex>", "text": "bad value"}

Text (streams, `text/*`, JSON, SVG, JavaScript, LaTeX; an error's `evalue`) is sanitized
first: `sha256` is the digest of the sanitized text as UTF-8, and `text` is the sanitized text
itself, present only when it is at most `max_text` characters long. The sanitized text, not
the raw one, is what is kept, so that re-running a cell that prints a time or an address does
not change its fingerprint, and re-stripping it changes nothing. JSON data is taken as
`json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False)`. Binary data (images, PDF:
base64 in the notebook) is recorded by the size of the decoded bytes and a digest of its
base64 text (see `binary_digest`). Widget views (`IGNORED_MIMES`) are left out: their model
id is new on every run.

`sanitize` replaces what always changes between runs by stable placeholders (`<address>`,
`<tmp_path>`, ...); it is idempotent, so it can be applied again to a recorded text, with
more patterns (the policy's) on top.

Imported only when fingerprints are computed (the stripper imports it lazily): the drop-in
command and a strip that removes nothing never pay for hashlib or these regexes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

DEFAULT_MAX_TEXT = 1024
"""Recorded texts are kept up to this many characters (the policy's `fingerprint_max_text`)."""

FINGERPRINTS_KEY = "fingerprints"
"""The key under `metadata.jupyter_repro` holding `{<cell id>: fingerprint_outputs(...)}`."""

IGNORED_MIMES = frozenset({"application/vnd.jupyter.widget-view+json"})
"""Output mime types not fingerprinted: their content changes on every run."""

# Mime types stored as text (not base64) besides text/* and JSON.
_TEXT_MIMES = frozenset(
    {"image/svg+xml", "application/javascript", "application/x-latex", "application/xml"}
)

# A path character: anything that does not end a path in a repr, a message or a list.
_P = r"[^\s'\"<>()\[\]{},;]"
_UNIT = r"(?:ns|[µμu]s|ms|s|secs?|seconds?|mins?|minutes?|hrs?|hours?)"

DEFAULT_SANITIZERS: tuple[tuple[str, str], ...] = (
    # tqdm-like bars, with or without a total. Before them, always: "\r\n" becomes "\n",
    # a character before a backspace goes, and of each line only what follows its last
    # "\r" stays (what a terminal and Jupyter's output area show).
    (
        "progress",
        r"(?:\d{1,3}%\|[^|\n]*\|\s*)?\d+(?:\.\d+)?[kMGTPEZY]?"
        r"(?:/\d+(?:\.\d+)?[kMGTPEZY]?|[A-Za-z]+)? ?"
        r"\[(?:\d+:)?\d\d:\d\d(?:<(?:(?:\d+:)?\d\d:\d\d|\?))?,[^\]\n]*\]",
    ),
    # `/path/to/file.py:123: SomeWarning` (warnings.showwarning's first line).
    ("warning_path", r"(?:[A-Za-z]:)?[^\s:'\"]+\.pyx?:\d+:(?= [A-Za-z_][\w.]*Warning\b)"),
    (
        "tmp_path",
        rf"(?<![\w.~/-])(?:(?:/private)?/var/folders/{_P}*|(?:/var)?/tmp(?:/{_P}*|(?!{_P}))"
        rf"|[A-Za-z]:\\+Users\\+[^\\\s'\"<>]+\\+AppData\\+Local\\+Temp(?:\\+{_P}*)?)",
    ),
    ("uuid", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    ("address", r"\b0x[0-9a-fA-F]{6,}\b"),
    (
        "timestamp",
        r"(?<!\d)\d{4}-[01]\d-[0-3]\d(?:[T ][0-2]\d:[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?"
        r"(?:Z|[+-][0-2]\d(?::?[0-5]\d)?)?)?(?![\d:])"
        r"|(?<![\d:])\d{1,2}:[0-5]\d:[0-5]\d(?:[.,]\d+)?(?![\d:])",
    ),
    (
        "duration",
        r"(?<=CPU times: )[^\n]+|(?<=Wall time: )[^\n]+"
        rf"|(?<![\w.])\d+(?:\.\d+)?(?:e[+-]?\d+)? ?{_UNIT}(?!\w)"
        r"|(?<![\w.])\d[\d,]*(?= loops? each)",
    ),
)
"""(name, regex) of what always changes between runs; each match becomes `<name>`, except
`warning_path`, which becomes `<path>:<line>:`."""

_PATTERNS = {name: re.compile(pattern) for name, pattern in DEFAULT_SANITIZERS}
_PROGRESS = _PATTERNS["progress"]
_WARNING_PATH = _PATTERNS["warning_path"]
_TMP_PATH = _PATTERNS["tmp_path"]
_UUID = _PATTERNS["uuid"]
_ADDRESS = _PATTERNS["address"]
_TIMESTAMP = _PATTERNS["timestamp"]
_DURATION = _PATTERNS["duration"]
_BASE64_SPACES = b"\n\r \t"
_BASE64_SPACE_BYTES = (b"\n", b"\r", b" ", b"\t")
_BACKSPACE = re.compile(r"[^\n]\x08")
_OVERWRITTEN = re.compile(r"[^\n]*\r")
SANITIZED = "<sanitized>"
"""What a match of an extra (policy) pattern becomes."""


def sanitize(text: str, extra: Sequence[str] = ()) -> str:
    """`text` with what always changes replaced by placeholders: the defaults, then each of
    the `extra` regexes (every match becomes `<sanitized>`). Idempotent for the defaults;
    raises re.error for an invalid extra pattern."""
    if "\r" in text or "\x08" in text:
        text = _carriage_returns(text)
    # The defaults in their order, each only where a substring search says it may match:
    # most texts have none of these things, and every one but tmp_path and uuid needs a digit.
    digits = _has_digit(text)
    if digits and "[" in text:
        text = _PROGRESS.sub("<progress>", text)
    if digits and "Warning" in text:
        text = _WARNING_PATH.sub("<path>:<line>:", text)
    if "tmp" in text or "var" in text or "Temp" in text:
        text = _TMP_PATH.sub("<tmp_path>", text)
    if "-" in text:
        text = _UUID.sub("<uuid>", text)
    if digits:
        if "0x" in text:
            text = _ADDRESS.sub("<address>", text)
        if ":" in text or "-" in text:
            text = _TIMESTAMP.sub("<timestamp>", text)
        text = _DURATION.sub("<duration>", text)
    for source in extra:
        text = _compiled(source).sub(SANITIZED, text)
    return text


def _has_digit(text: str) -> bool:
    return (
        "0" in text
        or "1" in text
        or "2" in text
        or "3" in text
        or "4" in text
        or "5" in text
        or "6" in text
        or "7" in text
        or "8" in text
        or "9" in text
    )


def _carriage_returns(text: str) -> str:
    text = text.replace("\r\n", "\n")
    while "\x08" in text:
        shorter = _BACKSPACE.sub("", text, count=0)
        if len(shorter) == len(text):
            break
        text = shorter
    return _OVERWRITTEN.sub("", text)


@lru_cache(maxsize=256)
def _compiled(source: str) -> re.Pattern[str]:
    return re.compile(source)


def text_of(value: str | list[str]) -> str:
    """An nbformat multi-line string (one string, or a list of lines) as one string."""
    if isinstance(value, str):
        return value
    try:
        return "".join(value)
    except TypeError:  # not nbformat's: lines that are not all strings
        return "".join(item if isinstance(item, str) else str(item) for item in value)


def text_digest(text: str) -> str:
    """The hex sha256 of `text` as UTF-8 (lone surrogates, which JSON allows, kept)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def is_text_mime(mime: str) -> bool:
    """Whether nbformat stores data of this mime type as text (else base64 or JSON)."""
    return mime.startswith("text/") or mime in _TEXT_MIMES or mime.endswith("+xml")


def is_json_mime(mime: str) -> bool:
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def fingerprint_outputs(
    outputs: list[dict[str, Any]], *, max_text: int = DEFAULT_MAX_TEXT
) -> list[dict[str, Any]]:
    """One fingerprint per output (see the module doc); deterministic, never raises for a
    malformed output (whatever it has is fingerprinted as it is)."""
    fingerprints: list[dict[str, Any]] = []
    for output in _merged_streams(outputs):
        if not isinstance(output, dict):
            fingerprints.append({"output_type": type(output).__name__})
            continue
        output_type = output.get("output_type")
        entry: dict[str, Any] = {"output_type": output_type if isinstance(output_type, str) else ""}
        if output_type == "stream":
            name = output.get("name")
            entry["name"] = name if isinstance(name, str) else ""
            _add_text(entry, _as_text(output.get("text", "")), max_text)
        elif output_type in ("execute_result", "display_data"):
            data = output.get("data")
            bundle = data if isinstance(data, dict) else {}
            entry["data"] = {
                str(mime): _data_fingerprint(str(mime), value, max_text)
                for mime, value in bundle.items()
                if mime not in IGNORED_MIMES
            }
        elif output_type == "error":
            ename = output.get("ename")
            entry["ename"] = ename if isinstance(ename, str) else ""
            _add_text(entry, _as_text(output.get("evalue", "")), max_text)
        fingerprints.append(entry)
    return fingerprints


def _merged_streams(outputs: list[Any]) -> list[Any]:
    """`outputs` with each run of stream outputs of one name as one output."""
    merged: list[Any] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            isinstance(output, dict)
            and output.get("output_type") == "stream"
            and isinstance(previous, dict)
            and previous.get("output_type") == "stream"
            and previous.get("name") == output.get("name")
        ):
            text = _as_text(previous.get("text", "")) + _as_text(output.get("text", ""))
            merged[-1] = {**previous, "text": text}
        else:
            merged.append(output)
    return merged


def _as_text(value: Any) -> str:
    if isinstance(value, (str, list)):
        return text_of(value)
    return _json_text(value)


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False, default=repr)


def _add_text(entry: dict[str, Any], text: str, max_text: int) -> None:
    sanitized = sanitize(text)
    entry["sha256"] = text_digest(sanitized)
    if len(sanitized) <= max_text:
        entry["text"] = sanitized


def _data_fingerprint(mime: str, value: Any, max_text: int) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if mime.startswith("text/"):
        _add_text(entry, _as_text(value), max_text)
    elif is_json_mime(mime):
        _add_text(entry, value if isinstance(value, str) else _json_text(value), max_text)
    elif is_text_mime(mime) or not isinstance(value, (str, list)):
        _add_text(entry, _as_text(value), max_text)
    else:
        entry["sha256"], entry["size"] = binary_digest(text_of(value))
    return entry


def binary_digest(text: str) -> tuple[str, int]:
    """(digest, size in bytes) of binary data as nbformat keeps it, in base64.

    The digest is the sha256 of the base64 text without its line breaks and spaces, the same
    for the same bytes however they were wrapped; the size is that of the decoded bytes. The
    text is not decoded: decoding costs twice as much as hashing, and stripping a notebook
    full of plots hashes every one of them. Text that cannot be base64 (characters that are
    not ASCII, a length not a multiple of 4, more than 2 padding characters) is taken as the
    UTF-8 bytes it is.
    """
    if text.isascii():
        data = text.encode("ascii")
        end = len(data)
        while end and data[end - 1] in _BASE64_SPACES:  # the usual trailing line break
            end -= 1
        if any(data.find(space, 0, end) >= 0 for space in _BASE64_SPACE_BYTES):
            data = data[:end]
            for space in _BASE64_SPACE_BYTES:
                data = data.replace(space, b"")
            end = len(data)
        if end % 4 == 0 and not data.endswith(b"===", 0, end):
            padding = 2 if data.endswith(b"==", 0, end) else 1 if data.endswith(b"=", 0, end) else 0
            return _sha256(memoryview(data)[:end]), end // 4 * 3 - padding
    raw = text.encode("utf-8", "surrogatepass")
    return _sha256(raw), len(raw)


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()
