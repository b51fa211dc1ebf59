"""Comparing a cell's fresh outputs with its reference: outputs kept in the notebook, or the
fingerprints recorded when they were stripped; per-cell directives; agreement with nbval."""

from __future__ import annotations

import base64
import copy
import inspect
import json
import re
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nbval.plugin import IPyNbCell, IPyNbFile, nocolors
from nbval.plugin import coalesce_streams as nbval_coalesce_streams

from jupyter_repro.notebooks.fingerprint import fingerprint_outputs
from jupyter_repro.verify.compare import (
    MAX_DIFF_LINES,
    Comparison,
    DirectiveError,
    Directives,
    Tolerance,
    cell_directives,
    coalesce_streams,
    compare_fingerprints,
    compare_outputs,
)

# --- output builders ---------------------------------------------------------------------------


def stream(text: Any, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def result(data: dict[str, Any], count: int | None = 1, **metadata: Any) -> dict[str, Any]:
    return {
        "output_type": "execute_result",
        "execution_count": count,
        "data": data,
        "metadata": metadata,
    }


def display(data: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def plain(text: Any) -> dict[str, Any]:
    return result({"text/plain": text})


def png(payload: bytes, wrap: int = 0) -> str:
    encoded = base64.b64encode(payload).decode()
    if wrap:
        encoded = "\n".join(encoded[i : i + wrap] for i in range(0, len(encoded), wrap)) + "\n"
    return encoded


def image(payload: bytes, wrap: int = 0) -> dict[str, Any]:
    return display({"image/png": png(payload, wrap), "text/plain": "<Figure size 640x480>"})


def error(ename: str, evalue: str, traceback: list[str] | None = None) -> dict[str, Any]:
    return {
        "output_type": "error",
        "ename": ename,
        "evalue": evalue,
        "traceback": traceback or [f"{ename}: {evalue}"],
    }


def text_compare(fresh: str, reference: str, **kwargs: Any) -> Comparison:
    return compare_outputs([stream(fresh)], [stream(reference)], **kwargs)


# --- numbers in text ---------------------------------------------------------------------------

TOLERANCE_CASES = [
    # (fresh, reference, tolerance, status, text expected in the diff)
    ("0.30000000000000004\n", "0.3\n", Tolerance(), "match", None),
    ("x = 1.1\n", "x = 1.0\n", Tolerance(), "differs", "1.0 -> 1.1 (differs by 0.1"),
    (
        "mean 12.75\n",
        "mean 12.5\n",
        Tolerance(),
        "differs",
        "12.5 -> 12.75 (differs by 0.25, relative 2.0e-02, allowed 1.25e-08)",
    ),
    ("1.50\n", "1.5\n", Tolerance(), "match", None),
    ("1.0000001e-3", "1e-3", Tolerance(), "differs", "1e-3 -> 1.0000001e-3"),
    ("1.0000001e-3", "1e-3", Tolerance(rtol=1e-6), "match", None),
    ("1e-17", "1.1e-17", Tolerance(), "match", None),
    ("2e-3", "1e-3", Tolerance(rtol=0.1), "differs", "relative 1.0e+00"),
    ("1e-13", "0", Tolerance(), "match", None),
    ("1e-11", "0", Tolerance(), "differs", "0 -> 1e-11 (differs by 1e-11, relative inf"),
    ("-1.5", "1.5", Tolerance(rtol=1.0), "differs", "1.5 -> -1.5"),
    # integers get the same tolerance as floats
    ("count 101", "count 100", Tolerance(), "differs", "100 -> 101 (differs by 1"),
    ("count 101", "count 100", Tolerance(rtol=0.05), "match", None),
    ("1000000000001", "1000000000000", Tolerance(), "match", None),
    ("nan", "nan", Tolerance(), "match", None),
    ("[nan, inf, -inf]", "[nan, inf, -inf]", Tolerance(), "match", None),
    ("loss: 1.0", "loss: nan", Tolerance(), "differs", "nan -> 1.0"),
    ("inf", "-inf", Tolerance(), "differs", "-inf -> inf"),
    ("NaN", "NaN", Tolerance(), "match", None),
    # numpy and pandas pad columns to the width of the longest number
    (
        "array([0.30000000000000004, 1.                 ])",
        "array([0.3, 1. ])",
        Tolerance(),
        "match",
        None,
    ),
    (
        "   a    b\n0  0.30000000000000004  1\n",
        "     a  b\n0  0.3  1\n",
        Tolerance(),
        "match",
        None,
    ),
    # whitespace alone is text, not padding
    ("a  b 1\n", "a b 1\n", Tolerance(), "differs", "+a  b 1"),
    # text around the numbers must be equal
    ("x = 1.0\n", "y = 1.0\n", Tolerance(), "differs", "-y = 1.0"),
    ("0.3 and 1\n", "0.3\n", Tolerance(), "differs", "+0.3 and 1"),
    ("Python 3.11.5\n", "Python 3.11.4\n", Tolerance(rtol=1.0), "differs", "+Python 3.11.5"),
    ("dtype: float32", "dtype: float64", Tolerance(rtol=1.0), "differs", "+dtype: float32"),
]


@pytest.mark.parametrize(
    ("fresh", "reference", "tolerance", "status", "expected"),
    TOLERANCE_CASES,
    ids=[f"{case[1]!r}->{case[0]!r}" for case in TOLERANCE_CASES],
)
def test_numbers_in_text_are_compared_with_the_tolerance(
    fresh: str, reference: str, tolerance: Tolerance, status: str, expected: str | None
) -> None:
    comparison = text_compare(fresh, reference, tolerance=tolerance)
    assert comparison.status == status, comparison.diff
    if expected is None:
        assert comparison.diff is None
    else:
        assert comparison.diff is not None
        assert expected in comparison.diff


def test_numeric_differences_are_listed_with_the_channel() -> None:
    comparison = text_compare("a 1.5 b 2.0 c 3.25\n", "a 1.5 b 2.5 c 3.0\n")
    assert comparison.diff == (
        "stdout: numbers differ beyond the tolerance\n"
        "  2.5 -> 2.0 (differs by 0.5, relative 2.0e-01, allowed 2.5e-09)\n"
        "  3.0 -> 3.25 (differs by 0.25, relative 8.3e-02, allowed 3e-09)"
    )


def test_tolerance_rejects_negative_or_non_numbers() -> None:
    with pytest.raises(ValueError, match="rtol"):
        Tolerance(rtol=-1)
    with pytest.raises(ValueError, match="atol"):
        Tolerance(atol=float("nan"))
    assert Tolerance().close(0.1 + 0.2, 0.3)
    assert not Tolerance().close(1.1, 1.0)


# --- text diffs --------------------------------------------------------------------------------


def test_changed_text_gives_a_unified_diff_of_the_sanitized_text() -> None:
    comparison = text_compare(
        "Loaded <Model at 0x7f00aaaa1111>\nrows: 3\nstatus: failed\n",
        "Loaded <Model at 0x7f00bbbb2222>\nrows: 3\nstatus: ok\n",
    )
    assert comparison.status == "differs"
    assert comparison.diff == (
        "--- reference stdout\n"
        "+++ fresh stdout\n"
        "@@ -1,3 +1,3 @@\n"
        " Loaded <Model at <address>>\n"
        " rows: 3\n"
        "-status: ok\n"
        "+status: failed"
    )


def test_a_long_diff_is_cut() -> None:
    fresh = "".join(f"line {i} fresh\n" for i in range(200))
    reference = "".join(f"line {i} old\n" for i in range(200))
    diff = text_compare(fresh, reference).diff
    assert diff is not None
    lines = diff.splitlines()
    assert len(lines) == MAX_DIFF_LINES + 1
    assert re.fullmatch(r"\.\.\. \(\d+ more lines\)", lines[-1])


def test_a_very_long_line_is_shortened_in_the_diff() -> None:
    diff = text_compare("<div>" + "x" * 5000 + "</div>", "<div>" + "y" * 5000 + "</div>").diff
    assert diff is not None
    assert max(len(line) for line in diff.splitlines()) < 500
    assert "more characters)" in diff


def test_only_a_trailing_newline_differs() -> None:
    comparison = text_compare("done\n", "done")
    assert comparison.status == "differs"
    assert "'done\\n'" in (comparison.diff or "")


# --- sanitizers --------------------------------------------------------------------------------

SANITIZED_PAIRS = [
    ("<Foo object at 0x7f3a2b1c0d90>", "<Foo object at 0x10a4c5d60>"),
    ("saved to /tmp/tmpab12cd/out.csv", "saved to /tmp/tmpzz99yy/out.csv"),
    ("run at 2024-05-01T12:00:03Z", "run at 2025-01-30T08:15:59Z"),
    ("CPU times: user 1.2 s, sys: 3 ms\nWall time: 1.4 s", "CPU times: user 9 s\nWall time: 12 s"),
    ("took 12ms", "took 3.5 s"),
    (
        "100%|##########| 20/20 [00:02<00:00,  9.1it/s]\n",
        "100%|##########| 20/20 [00:03<00:00,  6.5it/s]\n",
    ),
    (
        "/home/ann/lib/mod.py:12: UserWarning: careful\n",
        "/opt/env/lib/mod.py:40: UserWarning: careful\n",
    ),
]


@pytest.mark.parametrize(("fresh", "reference"), SANITIZED_PAIRS)
def test_what_always_changes_is_sanitized(fresh: str, reference: str) -> None:
    assert text_compare(fresh, reference) == Comparison("match")


def test_progress_redraws_keep_the_last_state() -> None:
    fresh = [stream("step 1/3\r"), stream("step 2/3\r"), stream("step 3/3\rdone\n")]
    assert compare_outputs(fresh, [stream("done\n")]).status == "match"


def test_policy_sanitizers_apply_to_both_sides() -> None:
    fresh, reference = "job id run-1234 finished\n", "job id run-9876 finished\n"
    assert text_compare(fresh, reference).status == "differs"
    assert text_compare(fresh, reference, sanitizers=[r"run-\d+"]).status == "match"


# --- outputs, like nbval -----------------------------------------------------------------------

OUTPUT_CASES = [
    # (name, fresh, reference, status)
    ("identical", [stream("a\n"), plain("1")], [stream("a\n"), plain("1")], "match"),
    ("streams split in messages", [stream("a"), stream("b\n")], [stream("ab\n")], "match"),
    ("multi-line strings as lists", [stream("a\nb\n")], [stream(["a\n", "b\n"])], "match"),
    (
        "stdout split by stderr",
        [stream("a\n"), stream("w\n", "stderr"), stream("b\n")],
        [stream("a\nb\n"), stream("w\n", "stderr")],
        "match",
    ),
    (
        "stderr before stdout",
        [stream("w\n", "stderr"), stream("a\n")],
        [stream("a\n"), stream("w\n", "stderr")],
        "match",
    ),
    ("execute_result or display_data", [display({"text/plain": "1"})], [plain("1")], "match"),
    ("execution count", [result({"text/plain": "1"}, count=7)], [plain("1")], "match"),
    (
        "metadata",
        [result({"text/plain": "1"}, isolated=True)],
        [result({"text/plain": "1"}, width=3)],
        "match",
    ),
    (
        "transient",
        [{**display({"text/plain": "1"}), "transient": {"display_id": "abc"}}],
        [display({"text/plain": "1"})],
        "match",
    ),
    (
        "widget model ids",
        [display({"text/plain": "W", "application/vnd.jupyter.widget-view+json": {"m": "1"}})],
        [display({"text/plain": "W", "application/vnd.jupyter.widget-view+json": {"m": "2"}})],
        "match",
    ),
    (
        "JSON key order",
        [display({"application/json": {"b": [1, 2.0], "a": "x"}})],
        [display({"application/json": {"a": "x", "b": [1, 2.0]}})],
        "match",
    ),
    (
        "JSON numbers with tolerance",
        [display({"application/json": {"a": 0.30000000000000004}})],
        [display({"application/json": {"a": 0.3}})],
        "match",
    ),
    ("same image, other line breaks", [image(b"P" * 300, wrap=76)], [image(b"P" * 300)], "match"),
    ("traceback", [error("E", "v", ["at line 1"])], [error("E", "v", ["at line 2"])], "match"),
    ("extra output", [stream("a\n"), plain("1")], [stream("a\n")], "differs"),
    ("missing output", [stream("a\n")], [stream("a\n"), plain("1")], "differs"),
    ("one more display", [plain("1"), plain("1")], [plain("1")], "differs"),
    ("new warning", [plain("1"), stream("Careful\n", "stderr")], [plain("1")], "differs"),
    ("changed mime bundle", [display({"text/html": "<b>1</b>"})], [plain("1")], "differs"),
    ("changed image", [image(b"A" * 300)], [image(b"B" * 300)], "differs"),
    ("changed error name", [error("KeyError", "x")], [error("ValueError", "x")], "differs"),
    ("changed error value", [error("E", "bad key 'a'")], [error("E", "bad key 'b'")], "differs"),
]


@pytest.mark.parametrize(
    ("fresh", "reference", "status"),
    [case[1:] for case in OUTPUT_CASES],
    ids=[case[0] for case in OUTPUT_CASES],
)
def test_outputs_are_compared_like_nbval(
    fresh: list[dict[str, Any]], reference: list[dict[str, Any]], status: str
) -> None:
    comparison = compare_outputs(fresh, reference)
    assert comparison.status == status, comparison.diff
    assert (comparison.diff is None) == (status == "match")


def test_changed_image_is_reported_with_both_sizes() -> None:
    comparison = compare_outputs([image(b"x" * 12345)], [image(b"y" * 12301)])
    assert comparison.diff == (
        "image differs (image/png: 12,345 bytes now, 12,301 bytes in the reference)"
    )


def test_unexpected_and_missing_outputs_show_their_text() -> None:
    comparison = compare_outputs(
        [stream("DeprecationWarning: old api\n", "stderr")], [plain("'done'")]
    )
    diff = comparison.diff or ""
    assert "missing output: text/plain (in the reference, not in the fresh run)" in diff
    assert "-'done'" in diff
    assert "unexpected output: stderr (in the fresh run, not in the reference)" in diff
    assert "+DeprecationWarning: old api" in diff


def test_every_differing_channel_is_reported() -> None:
    comparison = compare_outputs([stream("a 1\n"), image(b"new")], [stream("a 2\n"), image(b"old")])
    diff = comparison.diff or ""
    assert "  2 -> 1 (differs by 1" in diff
    assert "image differs (image/png: 3 bytes now, 3 bytes in the reference)" in diff


def test_errors_compare_name_and_sanitized_value() -> None:
    same = compare_outputs(
        [error("FileNotFoundError", "No such file: '/tmp/tmpa1/x.csv'")],
        [error("FileNotFoundError", "No such file: '/tmp/tmpb2/x.csv'")],
    )
    assert same.status == "match"
    renamed = compare_outputs([error("KeyError", "'a'")], [error("ValueError", "'a'")])
    assert renamed.diff == "error: KeyError now, ValueError in the reference"


def test_coalesce_streams_merges_every_stream_of_a_name_into_the_first() -> None:
    merged = coalesce_streams([stream("a"), plain("1"), stream("x", "stderr"), stream(["b", "c"])])
    assert merged == [stream("abc"), plain("1"), stream("x", "stderr")]


# --- directives --------------------------------------------------------------------------------


def cell(tags: list[str] | None = None, source: Any = "x = 1", **ours: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if tags is not None:
        metadata["tags"] = tags
    if ours:
        metadata["jupyter_repro"] = ours
    return {"cell_type": "code", "source": source, "metadata": metadata, "outputs": []}


DIRECTIVE_CASES = [
    ("no tags", cell(), Directives()),
    ("nbval-skip", cell(["nbval-skip"]), Directives(skip=True)),
    ("repro:skip", cell(["repro:skip"]), Directives(skip=True)),
    ("nbval-ignore-output", cell(["nbval-ignore-output"]), Directives(ignore_output=True)),
    ("repro:ignore-output", cell(["repro:ignore-output"]), Directives(ignore_output=True)),
    ("nbval-raises-exception", cell(["nbval-raises-exception"]), Directives(raises=True)),
    ("raises-exception", cell(["raises-exception"]), Directives(raises=True)),
    ("repro:raises-exception", cell(["repro:raises-exception"]), Directives(raises=True)),
    ("NBVAL_SKIP comment", cell(source="# NBVAL_SKIP\nx = 1"), Directives(skip=True)),
    (
        "NBVAL_IGNORE_OUTPUT comment",
        cell(source="x = 1\n  #  NBVAL_IGNORE_OUTPUT"),
        Directives(ignore_output=True),
    ),
    (
        "NBVAL_RAISES_EXCEPTION comment",
        cell(source=["# NBVAL_RAISES_EXCEPTION\n", "1/0"]),
        Directives(raises=True),
    ),
    ("marker inside code is no marker", cell(source="s = '# NBVAL_SKIP'"), Directives()),
    (
        "rtol tag",
        cell(["repro:rtol=1e-6"]),
        Directives(tolerance=Tolerance(rtol=1e-6, atol=1e-12)),
    ),
    (
        "atol tag",
        cell(["repro:atol=0.001"]),
        Directives(tolerance=Tolerance(rtol=1e-9, atol=0.001)),
    ),
    ("metadata", cell(rtol=1e-3, atol=0), Directives(tolerance=Tolerance(rtol=1e-3, atol=0))),
    (
        "tag over metadata",
        cell(["repro:rtol=0.5"], rtol=1e-3),
        Directives(tolerance=Tolerance(rtol=0.5, atol=1e-12)),
    ),
    ("sanitizers", cell(sanitizers=[r"id=\d+"]), Directives(sanitizers=(r"id=\d+",))),
    (
        "several",
        cell(["nbval-ignore-output", "repro:raises-exception", "other"]),
        Directives(ignore_output=True, raises=True),
    ),
]


@pytest.mark.parametrize(
    ("cell_", "expected"),
    [case[1:] for case in DIRECTIVE_CASES],
    ids=[case[0] for case in DIRECTIVE_CASES],
)
def test_cell_directives(cell_: dict[str, Any], expected: Directives) -> None:
    assert cell_directives(cell_, Tolerance()) == expected


def test_cell_tolerance_starts_from_the_policy_default() -> None:
    default = Tolerance(rtol=1e-4, atol=1e-6)
    assert cell_directives(cell(["repro:atol=1"]), default).tolerance == Tolerance(1e-4, 1)
    assert cell_directives(cell(), default).tolerance is None


@pytest.mark.parametrize(
    ("cell_", "message"),
    [
        (cell(["repro:rtol=abc"]), "tag 'repro:rtol=abc': expected a number"),
        (cell(["repro:atol=-1"]), "expected a finite number >= 0"),
        (cell(rtol="x"), "jupyter_repro.rtol"),
        (cell(rtol=True), "jupyter_repro.rtol"),
        (cell(sanitizers=["("]), "not a regular expression"),
        (cell(sanitizers="x"), "a list of regular expressions"),
    ],
)
def test_invalid_directives_are_refused(cell_: dict[str, Any], message: str) -> None:
    with pytest.raises(DirectiveError, match=message.replace("(", r"\(")):
        cell_directives(cell_, Tolerance())


def test_malformed_metadata_is_no_directive() -> None:
    weird = {"cell_type": "code", "source": "", "metadata": {"tags": "nbval-skip"}}
    assert cell_directives(weird) == Directives()
    assert cell_directives({"cell_type": "code"}) == Directives()


# --- fingerprints ------------------------------------------------------------------------------

REFERENCE = [
    stream("mean 0.3\n"),
    plain("<Model at 0x7f00aaaa1111>"),
    image(b"\x89PNG" + b"x" * 2000),
]


@pytest.mark.parametrize("max_text", [1024, 4], ids=["with text", "digest only"])
def test_fingerprints_of_the_same_outputs_match(max_text: int) -> None:
    fingerprints = fingerprint_outputs(copy.deepcopy(REFERENCE), max_text=max_text)
    fresh = [
        stream("mean "),
        stream("0.3\n"),
        plain("<Model at 0x7f00cccc2222>"),
        image(b"\x89PNG" + b"x" * 2000, wrap=76),
    ]
    assert compare_fingerprints(fresh, fingerprints, tolerance=Tolerance(), max_text=max_text) == (
        Comparison("match")
    )


def test_recorded_text_is_compared_with_tolerance() -> None:
    fingerprints = fingerprint_outputs([stream("mean 0.3\n")])
    fresh = [stream("mean 0.30000000000000004\n")]
    assert compare_fingerprints(fresh, fingerprints, tolerance=Tolerance()).status == "match"
    changed = compare_fingerprints([stream("mean 0.4\n")], fingerprints, tolerance=Tolerance())
    assert changed.status == "differs"
    assert "0.3 -> 0.4 (differs by 0.1" in (changed.diff or "")


def test_a_digest_is_compared_exactly_and_says_so() -> None:
    fingerprints = fingerprint_outputs([stream("mean 0.3\n")], max_text=4)
    assert "text" not in fingerprints[0]
    fresh = [stream("mean 0.30000000000000004\n")]
    comparison = compare_fingerprints(fresh, fingerprints, tolerance=Tolerance(), max_text=4)
    assert comparison.status == "differs"
    diff = comparison.diff or ""
    assert "only a digest was kept" in diff
    assert "longer than 4 characters" in diff
    assert "mean 0.30000000000000004" in diff


def test_recorded_text_changed() -> None:
    fingerprints = fingerprint_outputs([plain("'ok'")])
    comparison = compare_fingerprints([plain("'failed'")], fingerprints, tolerance=Tolerance())
    assert comparison.diff == (
        "--- reference text/plain\n+++ fresh text/plain\n@@ -1 +1 @@\n-'ok'\n+'failed'"
    )


def test_fingerprinted_image_changed() -> None:
    fingerprints = fingerprint_outputs([image(b"y" * 12301)])
    comparison = compare_fingerprints([image(b"x" * 12345)], fingerprints, tolerance=Tolerance())
    assert comparison.diff == (
        "image differs (image/png: 12,345 bytes now, 12,301 bytes in the reference)"
    )


def test_fingerprints_count_the_outputs() -> None:
    fingerprints = fingerprint_outputs([plain("1")])
    more = compare_fingerprints([plain("1"), plain("1")], fingerprints, tolerance=Tolerance())
    assert more.status == "differs"
    assert "text/plain: 2 outputs now, 1 in the reference" in (more.diff or "")
    other = compare_fingerprints([stream("1\n")], fingerprints, tolerance=Tolerance())
    assert "missing output: text/plain" in (other.diff or "")
    assert "unexpected output: stdout" in (other.diff or "")
    assert compare_fingerprints([], [], tolerance=Tolerance()).status == "match"


def test_fingerprints_of_a_stream_split_around_other_outputs() -> None:
    saved = [stream("a\n"), stream("w\n", "stderr"), stream("b\n")]
    fresh = [stream("a\n"), stream("b\n"), stream("w\n", "stderr")]
    recorded = fingerprint_outputs(saved)
    assert compare_fingerprints(fresh, recorded, tolerance=Tolerance()).status == "match"
    # Only digests of the two parts: they cannot be joined, so the difference is reported.
    digests = fingerprint_outputs(saved, max_text=0)
    comparison = compare_fingerprints(fresh, digests, tolerance=Tolerance(), max_text=0)
    assert comparison.status == "differs"
    assert "stdout: 1 outputs now, 2 in the reference" in (comparison.diff or "")
    # Split the same way: compared part by part.
    assert compare_fingerprints(saved, digests, tolerance=Tolerance()).status == "match"


def test_fingerprinted_error() -> None:
    recorded = fingerprint_outputs([error("ZeroDivisionError", "division by zero")])
    fresh = [stream("before\n"), error("ZeroDivisionError", "division by zero")]
    comparison = compare_fingerprints(fresh, recorded, tolerance=Tolerance())
    assert "unexpected output: stdout" in (comparison.diff or "")
    same = compare_fingerprints(fresh[1:], recorded, tolerance=Tolerance())
    assert same.status == "match"
    renamed = compare_fingerprints(
        [error("ValueError", "division by zero")], recorded, tolerance=Tolerance()
    )
    assert renamed.diff == "error: ValueError now, ZeroDivisionError in the reference"


def test_policy_sanitizers_apply_to_recorded_text() -> None:
    recorded = fingerprint_outputs([stream("job run-1 done\n")])
    fresh = [stream("job run-2 done\n")]
    assert compare_fingerprints(fresh, recorded, tolerance=Tolerance()).status == "differs"
    assert (
        compare_fingerprints(fresh, recorded, tolerance=Tolerance(), sanitizers=[r"run-\d+"])
    ).status == "match"


# --- against nbval's own comparison ------------------------------------------------------------
# nbval compares in `IPyNbCell.compare_outputs(self, test, ref, skip_compare)`, a method that
# needs of `self` only its colours, its sanitize function (nbval's own patterns: none here),
# and a formatter for the failure text; it is called here on a stand-in for the pytest item,
# with both sides coalesced first as nbval's runtest does. nbval skips PNG and JPEG images
# unless run with --nbdime: its verdict on images is compared with the --nbdime skip list.

NBVAL_SKIP_COMPARE = (
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "name",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",
)


def test_nbval_skip_list_is_still_what_nbval_uses() -> None:
    source = inspect.getsource(IPyNbFile.__init__)
    for key in (*NBVAL_SKIP_COMPARE, "image/png", "image/jpeg"):
        assert f"'{key}'" in source


def nbval_verdict(
    fresh: list[dict[str, Any]], reference: list[dict[str, Any]], *, images: bool = True
) -> str:
    skip = NBVAL_SKIP_COMPARE if images else (*NBVAL_SKIP_COMPARE, "image/png", "image/jpeg")
    item = SimpleNamespace(
        colors=nocolors,
        sanitize=lambda value: value,
        format_output_compare=lambda key, left, right: None,
        parent=SimpleNamespace(skip_compare=skip),
    )

    def nodes(outputs: list[dict[str, Any]]) -> list[Any]:
        # As nbval reads a notebook: nbformat joins the multi-line strings.
        notebook = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(outputs=copy.deepcopy(outputs))]
        )
        read = nbformat.reads(json.dumps(notebook), as_version=4)
        return nbval_coalesce_streams(read.cells[0].outputs)

    same = IPyNbCell.compare_outputs(item, nodes(fresh), nodes(reference), skip_compare=skip)
    return "match" if same else "differs"


# Where nbval's verdict is not ours, on purpose (or nbval never sees such outputs).
NOT_LIKE_NBVAL = {
    "transient": "nbclient and nbformat never keep `transient`; nbval would compare it",
    "JSON numbers with tolerance": "nbval compares numbers exactly",
    "same image, other line breaks": "nbval compares the base64 text, line breaks included",
}


@pytest.mark.parametrize(
    ("fresh", "reference"),
    [case[1:3] for case in OUTPUT_CASES if case[0] not in NOT_LIKE_NBVAL],
    ids=[case[0] for case in OUTPUT_CASES if case[0] not in NOT_LIKE_NBVAL],
)
def test_same_verdict_as_nbval(
    fresh: list[dict[str, Any]], reference: list[dict[str, Any]]
) -> None:
    assert compare_outputs(fresh, reference).status == nbval_verdict(fresh, reference)


def test_nbval_by_default_ignores_images_and_we_do_not() -> None:
    fresh, reference = [image(b"A" * 300)], [image(b"B" * 300)]
    assert nbval_verdict(fresh, reference, images=False) == "match"
    assert nbval_verdict(fresh, reference) == "differs"
    assert compare_outputs(fresh, reference).status == "differs"


# Random outputs with no number that a tolerance could forgive (integers without leading
# zeros differ by at least 1) and nothing the sanitizers replace.
WORDS = (
    st.lists(st.sampled_from(["a", "b", "c", " ", "\n", "1", "2", "é"]), max_size=8)
    .map("".join)
    .filter(lambda text: not any(part.startswith("0") for part in text.split()))
)
PAYLOADS = st.sampled_from([b"", b"\x89PNG1", b"\x89PNG2", b"GIF89a"])


@st.composite
def random_output(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["stream", "result", "display", "error"]))
    if kind == "stream":
        return stream(draw(WORDS), draw(st.sampled_from(["stdout", "stderr"])))
    if kind == "error":
        return error(draw(st.sampled_from(["KeyError", "ValueError"])), draw(WORDS))
    data: dict[str, Any] = {"text/plain": draw(WORDS)}
    if draw(st.booleans()):
        data["image/png"] = png(draw(PAYLOADS))
    if draw(st.booleans()):
        data["text/html"] = draw(WORDS)
    if draw(st.booleans()):
        data["application/json"] = {"k": draw(WORDS), "n": draw(st.integers(1, 3))}
    return result(data) if kind == "result" else display(data)


OUTPUTS = st.lists(random_output(), max_size=4)


@st.composite
def output_pairs(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    reference = draw(OUTPUTS)
    fresh = copy.deepcopy(reference)
    for _ in range(draw(st.integers(0, 2))):
        change = draw(st.sampled_from(["replace", "drop", "add", "swap", "split"]))
        if change == "replace" and fresh:
            fresh[draw(st.integers(0, len(fresh) - 1))] = draw(random_output())
        elif change == "drop" and fresh:
            del fresh[draw(st.integers(0, len(fresh) - 1))]
        elif change == "add":
            fresh.insert(draw(st.integers(0, len(fresh))), draw(random_output()))
        elif change == "swap" and len(fresh) > 1:
            i = draw(st.integers(0, len(fresh) - 2))
            fresh[i], fresh[i + 1] = fresh[i + 1], fresh[i]
        elif change == "split" and fresh and fresh[0]["output_type"] == "stream":
            text = fresh[0]["text"]
            at = draw(st.integers(0, len(text)))
            fresh[:1] = [stream(text[:at], fresh[0]["name"]), stream(text[at:], fresh[0]["name"])]
    return fresh, reference


@settings(max_examples=300, deadline=None, derandomize=True)
@given(output_pairs())
def test_same_verdict_as_nbval_on_random_outputs(
    pair: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    fresh, reference = pair
    assert compare_outputs(fresh, reference).status == nbval_verdict(fresh, reference)
