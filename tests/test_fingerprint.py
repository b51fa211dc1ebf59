"""Output fingerprints: the sanitizers, `fingerprint_outputs`, and their recording by every
way of stripping (strip_text, `jupyter repro strip`, the save hook, the git filter), but not
by `jupyter-repro-strip`, which keeps nbstripout's bytes."""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from jupyter_repro import cli, strip_command
from jupyter_repro.notebooks import fingerprint as fp
from jupyter_repro.notebooks import policy as policy_module
from jupyter_repro.notebooks import savehook
from jupyter_repro.notebooks import strip as strip_module
from jupyter_repro.notebooks.fingerprint import (
    DEFAULT_MAX_TEXT,
    DEFAULT_SANITIZERS,
    FINGERPRINTS_KEY,
    fingerprint_outputs,
    sanitize,
    text_of,
)
from jupyter_repro.notebooks.policy import (
    DEFAULT_OPTIONS,
    DEFAULT_POLICY,
    PolicyError,
    load_policy,
    policy_summary,
)
from jupyter_repro.notebooks.savehook import fingerprints_in_file, strip_in_place
from jupyter_repro.notebooks.strip import MetadataConflict, StripOptions, strip_text
from tests.test_strip_differential import SETTINGS, nbstripout_reference, notebooks
from tests.test_strip_differential import options as strip_options

PROPERTY = settings(SETTINGS, max_examples=300)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PNG_B64 = base64.b64encode(PNG).decode()
ENVIRONMENT = {"environment": {"name": "demo", "dependencies": ["python=3.11"]}}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(autouse=True)
def fresh_policy_caches():
    policy_module.clear_caches()
    yield
    policy_module.clear_caches()


# -- sanitize ----------------------------------------------------------------------------------

TQDM = (  # tqdm redraws its whole line, description and all, after a "\r"
    "epoch 3:   0%|          | 0/20 [00:00<?, ?it/s]\r"
    "epoch 3:  45%|####5     | 9/20 [00:01<00:02,  5.20it/s]\r"
    "epoch 3: 100%|##########| 20/20 [00:02<00:00,  9.51it/s]\n"
)

SANITIZED = [
    pytest.param(
        "<__main__.Model object at 0x7f3a2c1b2e50>",
        "<__main__.Model object at <address>>",
        id="address",
    ),
    pytest.param(
        "wrote /tmp/tmpk3j_x9ab/data.csv, see PosixPath('/tmp/tmpk3j_x9ab')",
        "wrote <tmp_path>, see PosixPath('<tmp_path>')",
        id="tmp_path",
    ),
    pytest.param(
        "cache in /private/var/folders/x1/abc123/T/tmpq and /var/tmp/build-7",
        "cache in <tmp_path> and <tmp_path>",
        id="tmp_path-macos",
    ),
    pytest.param(
        r"C:\Users\ada\AppData\Local\Temp\tmp8x2k\out.txt",
        "<tmp_path>",
        id="tmp_path-windows",
    ),
    pytest.param(
        "started 2024-05-01 12:34:56.789012\n", "started <timestamp>\n", id="timestamp-now"
    ),
    pytest.param(
        "at 2024-05-01T12:34:56+02:00 (local 09:15:02)",
        "at <timestamp> (local <timestamp>)",
        id="timestamp-iso",
    ),
    pytest.param(
        "CPU times: user 1.2 ms, sys: 345 µs, total: 1.55 ms\nWall time: 2.1 s\n",
        "CPU times: <duration>\nWall time: <duration>\n",
        id="duration-time-magic",
    ),
    pytest.param(
        "1.23 µs ± 4.56 ns per loop (mean ± std. dev. of 7 runs, 1,000,000 loops each)\n",
        "<duration> ± <duration> per loop (mean ± std. dev. of 7 runs, <duration> loops each)\n",
        id="duration-timeit",
    ),
    pytest.param("took 12ms, then 3 seconds", "took <duration>, then <duration>", id="duration"),
    pytest.param(TQDM, "epoch 3: <progress>\n", id="progress-tqdm-redraws"),
    pytest.param("20it [00:02,  9.51it/s]\n", "<progress>\n", id="progress-no-total"),
    pytest.param(
        "/home/x/lib/python3.11/site-packages/pkg/mod.py:12: DeprecationWarning: old\n"
        "  warnings.warn('old', DeprecationWarning)\n",
        "<path>:<line>: DeprecationWarning: old\n  warnings.warn('old', DeprecationWarning)\n",
        id="warning_path",
    ),
    pytest.param(
        "/tmp/ipykernel_4021/3456789012.py:3: UserWarning: careful\n",
        "<path>:<line>: UserWarning: careful\n",
        id="warning_path-in-cell",
    ),
    pytest.param(
        r"C:\Users\ada\lib\pkg\mod.py:7: FutureWarning: soon",
        "<path>:<line>: FutureWarning: soon",
        id="warning_path-windows",
    ),
    pytest.param(
        '<div id="3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"></div>',
        '<div id="<uuid>"></div>',
        id="uuid",
    ),
    pytest.param("ab\x08c\r\nline\n", "ac\nline\n", id="backspace-and-crlf"),
]


@pytest.mark.parametrize(("text", "expected"), SANITIZED)
def test_sanitize_replaces_what_changes_between_runs(text, expected):
    assert sanitize(text) == expected
    assert sanitize(expected) == expected  # idempotent: recorded texts can be sanitized again


@pytest.mark.parametrize(
    "text",
    [
        "0 [1, 2]\n1 [3, 4]\n",  # a Series of lists is no progress bar
        "value 3.5 and 42 users, 7 runs\n",  # numbers without a time unit
        "/home/ada/tmp/file.txt\n",  # a tmp folder that is not the temporary folder
        "0x12345 is short; sha 5d41402abc4b2a76b9719d911017c592\n",
        "12:34 and 1:2:3\n",  # no seconds: not a time of day
        "version 2024.05.01\n",
    ],
)
def test_sanitize_keeps_what_does_not_change(text):
    assert sanitize(text) == text


def test_every_default_sanitizer_has_a_placeholder_and_compiles():
    names = [name for name, _ in DEFAULT_SANITIZERS]
    assert set(names) >= {"address", "tmp_path", "timestamp", "duration", "progress"}
    assert "warning_path" in names
    for _, pattern in DEFAULT_SANITIZERS:
        re.compile(pattern)


def test_extra_patterns_come_after_the_defaults():
    text = "run-42 took 1.5 s at 0x7f3a2c1b2e50"

    assert sanitize(text, [r"run-\d+"]) == "<sanitized> took <duration> at <address>"
    assert sanitize(text, [r"run-\d+", "took"]) == "<sanitized> <sanitized> <duration> at <address>"
    # The extras see the defaults' placeholders, not the original text.
    assert sanitize(text, [r"0x\w+"]) == "run-42 took <duration> at <address>"


def test_an_invalid_extra_pattern_raises():
    with pytest.raises(re.error):
        sanitize("x", ["("])


def test_text_of_joins_nbformat_multiline_strings():
    assert text_of(["a\n", "b"]) == "a\nb"
    assert text_of("a\nb") == "a\nb"
    assert text_of([]) == ""


# -- fingerprint_outputs -----------------------------------------------------------------------


def stream(text: Any, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def result(data: dict[str, Any], kind: str = "execute_result") -> dict[str, Any]:
    output: dict[str, Any] = {"output_type": kind, "data": data, "metadata": {}}
    if kind == "execute_result":
        output["execution_count"] = 3
    return output


def test_a_stream_gives_its_name_digest_and_sanitized_text():
    [entry] = fingerprint_outputs([stream(["obj at 0x7f3a2c1b2e50\n", "done\n"])])

    assert entry == {
        "output_type": "stream",
        "name": "stdout",
        "sha256": sha("obj at <address>\ndone\n"),
        "text": "obj at <address>\ndone\n",
    }


def test_rich_data_text_json_and_binary():
    html = "<table><tr><td>1</td></tr></table>"
    data = {
        "text/plain": ["<Figure size 640x480 with 1 Axes>"],
        "text/html": [html],
        "application/json": {"b": [1, 2], "a": "x"},
        "image/png": PNG_B64[:60] + "\n" + PNG_B64[60:],  # base64 with a line break
    }

    [entry] = fingerprint_outputs([result(data)])

    json_text = json.dumps({"a": "x", "b": [1, 2]}, sort_keys=True, indent=1, ensure_ascii=False)
    assert entry == {
        "output_type": "execute_result",
        "data": {
            "text/plain": {
                "sha256": sha("<Figure size 640x480 with 1 Axes>"),
                "text": "<Figure size 640x480 with 1 Axes>",
            },
            "text/html": {"sha256": sha(html), "text": html},
            "application/json": {"sha256": sha(json_text), "text": json_text},
            # The decoded size; the digest of the base64 text (without line breaks).
            "image/png": {"sha256": sha(PNG_B64), "size": len(PNG)},
        },
    }


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 1000])
def test_binary_data_by_decoded_size_and_a_digest_of_its_base64(size):
    data = bytes(range(256)) * 4
    data = data[:size]
    flat = base64.b64encode(data).decode()
    wrapped = base64.encodebytes(data).decode()  # lines of 76 characters, as older kernels

    expected = (sha(flat), size)

    assert fp.binary_digest(flat) == expected
    assert fp.binary_digest(flat + "\n") == expected  # as Jupyter writes it
    assert fp.binary_digest(wrapped) == expected
    assert fp.binary_digest(" " + flat + "\r\n") == expected


@pytest.mark.parametrize("text", ["not base64!", "abc", "é" * 4, "AAAA===="])
def test_binary_data_that_is_not_base64_is_taken_as_its_bytes(text):
    assert fp.binary_digest(text) == (sha(text), len(text.encode()))


def test_display_data_svg_and_widget_views():
    svg = "<svg><text>1</text></svg>\n"
    data = {
        "image/svg+xml": [svg],
        "application/vnd.jupyter.widget-view+json": {"model_id": "9f8e7d", "version_major": 2},
        "text/plain": "HBox()",
    }

    [entry] = fingerprint_outputs([result(data, "display_data")])

    assert entry["output_type"] == "display_data"
    assert entry["data"] == {
        "image/svg+xml": {"sha256": sha(svg), "text": svg},
        "text/plain": {"sha256": sha("HBox()"), "text": "HBox()"},
    }


def test_an_error_gives_its_name_and_sanitized_value():
    error = {
        "output_type": "error",
        "ename": "ValueError",
        "evalue": "bad object <X at 0x7f00aa11bb22>",
        "traceback": ["\x1b[0;31m---------------------------------------------------------\x1b[0m"],
    }

    assert fingerprint_outputs([error]) == [
        {
            "output_type": "error",
            "ename": "ValueError",
            "sha256": sha("bad object <X at <address>>"),
            "text": "bad object <X at <address>>",
        }
    ]


def test_consecutive_streams_of_one_name_are_one_entry():
    outputs = [stream("a\n"), stream(["b\n"]), stream("w\n", "stderr"), stream("c\n")]

    entries = fingerprint_outputs(outputs)

    assert [(e["name"], e["text"]) for e in entries] == [
        ("stdout", "a\nb\n"),
        ("stderr", "w\n"),
        ("stdout", "c\n"),
    ]
    # A progress bar redrawn over several messages is resolved as one text.
    split = [stream(part + "\r", "stderr") for part in TQDM.split("\r")[:-1]]
    split.append(stream(TQDM.split("\r")[-1], "stderr"))
    assert fingerprint_outputs(split)[0]["text"] == "epoch 3: <progress>\n"


@pytest.mark.parametrize("length", [DEFAULT_MAX_TEXT - 1, DEFAULT_MAX_TEXT, DEFAULT_MAX_TEXT + 1])
def test_text_is_kept_up_to_max_text_characters(length):
    text = "x" * length

    [entry] = fingerprint_outputs([stream(text)])
    [small] = fingerprint_outputs([stream(text)], max_text=10)

    assert entry["sha256"] == small["sha256"] == sha(text)
    assert ("text" in entry) is (length <= DEFAULT_MAX_TEXT)
    assert "text" not in small


def test_max_text_counts_the_sanitized_text():
    text = "at 0x7f3a2c1b2e50 0x7f3a2c1b2e51"  # 32 characters, 25 sanitized

    [entry] = fingerprint_outputs([stream(text)], max_text=25)

    assert entry["text"] == "at <address> <address>"


def test_fingerprints_are_deterministic_and_ignore_what_changes():
    def run(address: str, count: int, lines: bool) -> list[dict[str, Any]]:
        text = f"<Model at {address}>\n"
        return [
            stream(text.splitlines(True) if lines else text),
            {
                **result({"text/plain": f"Model({address})", "image/png": PNG_B64}),
                "execution_count": count,
            },
        ]

    first = fingerprint_outputs(run("0x7f3a2c1b2e50", 1, False))

    assert first == fingerprint_outputs(run("0x7f3a2c1b2e50", 1, False))
    assert first == fingerprint_outputs(run("0x55aa55aa55aa", 9, True))
    assert json.dumps(first, sort_keys=True) == json.dumps(
        fingerprint_outputs(run("0x55aa55aa55aa", 9, True)), sort_keys=True
    )


def test_malformed_outputs_do_not_raise():
    outputs: list[Any] = [
        {"output_type": "stream"},
        {"output_type": "display_data", "data": {"image/png": "not base64!"}},
        {"output_type": "execute_result", "data": {"text/plain": {"odd": 1}}},
        {"output_type": "error"},
        {"output_type": "mystery", "payload": 1},
        "not a dict",
    ]

    entries = fingerprint_outputs(outputs)

    assert len(entries) == len(outputs)
    assert entries[1]["data"]["image/png"]["size"] == len(b"not base64!")
    assert entries[4] == {"output_type": "mystery"}


def test_the_strippers_constants_are_the_modules():
    assert strip_module.FINGERPRINTS_KEY == FINGERPRINTS_KEY
    assert strip_module.DEFAULT_FINGERPRINT_MAX_TEXT == DEFAULT_MAX_TEXT
    assert StripOptions().fingerprint is False  # nbstripout's behaviour
    assert DEFAULT_OPTIONS.fingerprint is True  # the strip policy's
    assert DEFAULT_OPTIONS.fingerprint_max_text == DEFAULT_MAX_TEXT


# -- recording when stripping ------------------------------------------------------------------


def code(cell_id: str, source: str, *outputs: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": 7 if outputs else None,
        "id": cell_id,
        "metadata": dict(metadata),
        "outputs": list(outputs),
        "source": source,
    }


def markdown(cell_id: str, source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": source}


def sample(run: int = 1, address: str = "0x7f3a2c1b2e50", **metadata: Any) -> dict[str, Any]:
    """A notebook after a run; `run` and `address` change what a re-run prints."""
    return {
        "cells": [
            markdown("intro", "# Analysis"),
            code("load", "df = load()", stream(f"loaded {address}\n")),
            code(
                "plot",
                "plot(df)",
                stream(f"plotting run {run}\n"),
                result({"text/plain": "<Figure>", "image/png": PNG_B64}, "display_data"),
            ),
            code("total", "df.sum()", result({"text/plain": "42", "text/html": "<b>42</b>"})),
            code("todo", "later()"),
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}, **metadata},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def stripped(nb: dict[str, Any], options: StripOptions = DEFAULT_OPTIONS) -> str:
    return strip_text(json.dumps(nb), options).text


def fingerprints_of(text: str | bytes) -> dict[str, Any] | None:
    return json.loads(text)["metadata"].get("jupyter_repro", {}).get(FINGERPRINTS_KEY)


def expected_fingerprints(nb: dict[str, Any]) -> dict[str, Any]:
    return {
        cell["id"]: fingerprint_outputs(cell["outputs"])
        for cell in nb["cells"]
        if cell["cell_type"] == "code" and cell["outputs"]
    }


def test_stripping_records_the_removed_outputs_by_cell_id():
    nb = sample(jupyter_repro=ENVIRONMENT)

    text = stripped(nb)

    saved = json.loads(text)
    assert all(cell.get("outputs", []) == [] for cell in saved["cells"])
    assert saved["metadata"]["jupyter_repro"]["environment"] == ENVIRONMENT["environment"]
    assert fingerprints_of(text) == expected_fingerprints(nb)
    assert set(fingerprints_of(text)) == {"load", "plot", "total"}  # not "todo": never run
    # nbformat's order: keys sorted, so re-stripping writes the same bytes.
    assert text.index('"environment"') < text.index('"fingerprints"') < text.index('"kernelspec"')


def test_the_notebooks_own_metadata_is_created_only_when_needed():
    text = stripped(sample())
    assert set(json.loads(text)["metadata"]["jupyter_repro"]) == {FINGERPRINTS_KEY}

    nothing_run = sample()
    for cell in nothing_run["cells"]:
        cell["outputs"] = []
        cell["execution_count"] = None
    assert "jupyter_repro" not in json.loads(stripped(nothing_run))["metadata"]


def test_a_cell_that_ran_silently_must_stay_silent():
    """Ran (it has a count) and printed nothing: stripping clears the count, so the empty
    output is recorded, and a later run that prints something differs."""
    silent = sample()
    for cell in silent["cells"]:
        cell["outputs"] = []
    result = json.loads(stripped(silent))
    fingerprints = result["metadata"]["jupyter_repro"][FINGERPRINTS_KEY]
    ran = [
        after["id"]
        for before, after in zip(silent["cells"], result["cells"], strict=True)
        if before["cell_type"] == "code" and before.get("execution_count") is not None
    ]
    assert ran
    assert fingerprints == {cell_id: [] for cell_id in ran}
    # and stripping again changes nothing
    assert not strip_text(stripped(silent), DEFAULT_OPTIONS).changed


def test_stripping_a_stripped_notebook_changes_nothing():
    once = strip_text(json.dumps(sample(jupyter_repro=ENVIRONMENT)), DEFAULT_OPTIONS)

    twice = strip_text(once.text, DEFAULT_OPTIONS)

    assert once.changed
    assert not twice.changed
    assert twice.text == once.text


def test_a_rerun_with_the_same_outputs_strips_to_the_same_bytes():
    first = stripped(sample(address="0x7f3a2c1b2e50"))
    rerun = sample(address="0x55d1c0ffee00")  # a new address: sanitized
    # The working tree of a git filter: the re-run's outputs, the last strip's metadata.
    rerun["metadata"] = json.loads(first)["metadata"]

    assert stripped(rerun) == first


def test_a_rerun_changing_one_cell_changes_only_its_fingerprint_lines():
    first = stripped(sample(run=1)).splitlines()
    second = stripped(sample(run=2)).splitlines()

    changed = [
        line
        for line in difflib.unified_diff(first, second, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]

    assert changed
    start = first.index('    "plot": [')
    end = first.index("    ],", start)
    diff_lines = [
        i
        for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=first, b=second).get_opcodes()
        if tag != "equal"
        for i in range(i1, i2)
    ]
    assert all(start < i < end for i in diff_lines), changed
    assert {line.split(":")[0].strip(" +-") for line in changed} == {'"sha256"', '"text"'}


def test_a_cell_keeping_its_outputs_gets_no_fingerprint_and_loses_a_stale_one():
    nb = sample()
    before = json.loads(stripped(nb))  # every cell stripped: "total" has a fingerprint
    assert "total" in before["metadata"]["jupyter_repro"][FINGERPRINTS_KEY]
    rerun = sample()
    rerun["metadata"] = before["metadata"]
    rerun["cells"][3]["metadata"]["tags"] = ["keep_output"]

    after = json.loads(stripped(rerun))

    assert len(after["cells"][3]["outputs"]) == 1
    assert set(after["metadata"]["jupyter_repro"][FINGERPRINTS_KEY]) == {"load", "plot"}


def test_outputs_kept_in_part_are_no_fingerprint_and_stripping_again_agrees():
    options = StripOptions(
        **{**DEFAULT_OPTIONS.__dict__, "keep_output_types": frozenset({"display_data"})}
    )

    once = strip_text(json.dumps(sample()), options)
    twice = strip_text(once.text, options)

    assert set(fingerprints_of(once.text)) == {"load", "total"}  # "plot" keeps its figure
    assert not twice.changed
    assert twice.text == once.text


def test_notebook_keep_output_records_nothing_and_removes_every_entry():
    recorded = json.loads(stripped(sample(jupyter_repro=ENVIRONMENT)))
    rerun = sample()
    rerun["metadata"] = {**recorded["metadata"], "keep_output": True}

    text = stripped(rerun)

    assert (
        json.loads(text)["metadata"]["jupyter_repro"] == ENVIRONMENT
    )  # kept, emptied of fingerprints
    assert strip_text(text, DEFAULT_OPTIONS).changed is False


def test_cells_without_outputs_keep_their_entry_and_entries_of_gone_cells_go():
    recorded = json.loads(stripped(sample()))
    fingerprints = recorded["metadata"]["jupyter_repro"][FINGERPRINTS_KEY]
    # Later: "load" was deleted, "total" became markdown, a cell was added; nothing re-run.
    recorded["cells"] = [
        recorded["cells"][0],
        recorded["cells"][2],
        markdown("total", "42"),
        code("new", "x = 1"),
    ]

    result = strip_text(json.dumps(recorded), DEFAULT_OPTIONS)

    assert result.changed
    assert fingerprints_of(result.text) == {"plot": fingerprints["plot"]}


def test_without_keep_id_an_entry_follows_its_cell_to_its_new_id():
    options = StripOptions()  # nbstripout's ids: the cell's index
    options = StripOptions(**{**options.__dict__, "fingerprint": True})
    recorded = json.loads(stripped(sample(), options))
    plot = recorded["metadata"]["jupyter_repro"][FINGERPRINTS_KEY]["2"]
    # A cell inserted at the top in Jupyter: it gets a fresh id, the others keep theirs.
    recorded["cells"].insert(0, markdown("a1b2c3d4", "# New"))

    result = strip_text(json.dumps(recorded), options)

    assert [cell["id"] for cell in json.loads(result.text)["cells"]] == [
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
    ]
    assert fingerprints_of(result.text)["3"] == plot
    assert set(fingerprints_of(result.text)) == {"2", "3", "4"}


def test_cells_dropped_by_the_policy_take_their_entry_with_them():
    nb = sample()
    nb["cells"][1]["metadata"]["tags"] = ["scratch"]
    options = StripOptions(**{**DEFAULT_OPTIONS.__dict__, "drop_tagged_cells": ("scratch",)})

    assert set(fingerprints_of(stripped(nb, options))) == {"plot", "total"}


def test_notebooks_without_cell_ids_get_no_fingerprints():
    nb = sample()
    nb["nbformat_minor"] = 4
    for cell in nb["cells"]:
        del cell["id"]

    text = stripped(nb)

    assert "jupyter_repro" not in json.loads(text)["metadata"]
    assert "id" not in json.loads(text)["cells"][1]


def test_foreign_jupyter_repro_metadata_is_left_alone():
    nb = sample(jupyter_repro="not an object")

    assert json.loads(stripped(nb))["metadata"]["jupyter_repro"] == "not an object"


def test_fingerprint_off_leaves_existing_entries_untouched():
    recorded = json.loads(stripped(sample()))
    recorded["cells"][3]["outputs"] = [result({"text/plain": "43"})]  # would change "total"
    off = StripOptions(**{**DEFAULT_OPTIONS.__dict__, "fingerprint": False})

    text = strip_text(json.dumps(recorded), off).text

    assert fingerprints_of(text) == recorded["metadata"]["jupyter_repro"][FINGERPRINTS_KEY]


def test_a_conflict_leaves_the_notebook_as_it_was():
    nb = sample()
    nb["cells"][4]["metadata"] = {"keep_output": False, "tags": ["keep_output"]}
    original = json.loads(json.dumps(nb))

    with pytest.raises(MetadataConflict):
        strip_in_place(nb, DEFAULT_POLICY)

    assert nb == original


@PROPERTY
@given(nb=notebooks(), opts=strip_options())
def test_idempotent_with_fingerprints(nb, opts):
    opts = StripOptions(**{**opts.__dict__, "fingerprint": True})
    try:
        once = strip_text(json.dumps(nb), opts)
    except MetadataConflict:
        return
    twice = strip_text(once.text, opts)
    assert twice.text == once.text
    assert not twice.changed


@PROPERTY
@given(nb=notebooks(), opts=strip_options())
def test_a_rerun_with_the_same_outputs_strips_the_same(nb, opts):
    """The working tree of the git filter: the same outputs again, with the last strip's
    metadata (ids as the cells had them: with keep_id)."""
    opts = StripOptions(**{**opts.__dict__, "fingerprint": True, "keep_id": True})
    try:
        once = strip_text(json.dumps(nb), opts)
    except MetadataConflict:
        return
    rerun = json.loads(json.dumps(nb))
    rerun["metadata"] = json.loads(once.text)["metadata"] | {
        key: value for key, value in nb["metadata"].items() if key != "jupyter_repro"
    }
    assert strip_text(json.dumps(rerun), opts).text == once.text


# -- the policy ----------------------------------------------------------------------------------


def project(tmp_path: Path, table: str) -> Path:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "pyproject.toml").write_text(f"[tool.jupyter_repro.strip]\n{table}", encoding="utf-8")
    return root


def test_the_policy_keys(tmp_path):
    root = project(tmp_path, 'fingerprint = true\nfingerprint_max_text = "2k"\n')

    options = load_policy(root / "nb.ipynb").options
    summary = policy_summary(load_policy(root / "nb.ipynb"))

    assert (options.fingerprint, options.fingerprint_max_text) == (True, 2000)
    assert summary["options"]["fingerprint"] is True
    assert summary["options"]["fingerprint_max_text"] == 2000


def test_fingerprint_false_in_pyproject_disables_them(tmp_path):
    root = project(tmp_path, "fingerprint = false\n")
    path = root / "nb.ipynb"
    path.write_text(json.dumps(sample()), encoding="utf-8")

    assert cli.main(["strip", str(path)]) == 0

    assert fingerprints_of(path.read_bytes()) is None


def test_fingerprint_max_text_in_pyproject_is_honoured(tmp_path):
    root = project(tmp_path, "fingerprint_max_text = 0\n")
    path = root / "nb.ipynb"
    path.write_text(json.dumps(sample()), encoding="utf-8")

    assert cli.main(["strip", str(path)]) == 0

    [entry] = fingerprints_of(path.read_bytes())["load"]
    assert "text" not in entry
    assert entry["sha256"]


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("fingerprint_max_text = -1", "-1"),
        ('fingerprint_max_text = "lots"', "'lots'"),
        ("fingerprint_max_text = true", "True"),
        ('fingerprint = "yes"', "'yes'"),
    ],
)
def test_an_invalid_setting_is_a_policy_error_naming_the_key(tmp_path, line, value):
    root = project(tmp_path, line + "\n")
    key = line.split(" = ")[0]

    with pytest.raises(PolicyError, match=rf"'{key}' must be .*not {re.escape(value)}"):
        load_policy(root / "nb.ipynb")
    with pytest.raises(PolicyError, match=f"'{key}'"):
        policy_module.check_overrides({key: value})


# -- every way of stripping records the same ---------------------------------------------------


def test_jupyter_repro_strip_records_what_strip_text_does(tmp_path):
    root = project(tmp_path, "")
    path = root / "nb.ipynb"
    path.write_text(json.dumps(sample(), indent=2), encoding="utf-8")

    assert cli.main(["strip", str(path)]) == 0

    assert path.read_text(encoding="utf-8") == stripped(sample())
    assert cli.main(["strip", "--verify", str(path)]) == 0  # nothing left to strip


def test_the_nbstripout_drop_in_keeps_nbstripouts_bytes_and_records_none(tmp_path):
    path = tmp_path / "nb.ipynb"
    text = json.dumps(sample(jupyter_repro=ENVIRONMENT), indent=1)
    path.write_text(text, encoding="utf-8")

    assert strip_command.main([str(path)]) == 0

    ours = path.read_text(encoding="utf-8")
    assert ours == nbstripout_reference(text, StripOptions())[0]
    assert fingerprints_of(ours) is None


def test_the_drop_in_leaves_recorded_fingerprints_as_they_are(tmp_path):
    path = tmp_path / "nb.ipynb"
    recorded = json.loads(stripped(sample()))
    recorded["cells"][3]["outputs"] = [result({"text/plain": "43"})]
    text = json.dumps(recorded, indent=1)
    path.write_text(text, encoding="utf-8")

    assert strip_command.main([str(path)]) == 0

    assert path.read_text(encoding="utf-8") == nbstripout_reference(text, StripOptions())[0]


def test_stripping_without_removing_outputs_never_imports_the_fingerprint_module():
    code = (
        "import sys, json\n"
        "from jupyter_repro.notebooks.policy import DEFAULT_OPTIONS\n"
        "from jupyter_repro.notebooks.strip import strip_text\n"
        "nb = json.loads(sys.stdin.read())\n"
        "strip_text(json.dumps(nb), DEFAULT_OPTIONS)\n"
        "assert 'jupyter_repro.notebooks.fingerprint' not in sys.modules\n"
        "from jupyter_repro import strip_command\n"
        "assert 'jupyter_repro.notebooks.fingerprint' not in sys.modules\n"
    )
    text = stripped(sample())

    subprocess.run([sys.executable, "-c", code], input=text, text=True, check=True)


# -- the save hook, through a server -------------------------------------------------------------


@pytest.fixture
def server_root(jp_root_dir: Path) -> Path:
    (jp_root_dir / ".git").mkdir(exist_ok=True)
    return jp_root_dir


async def save(jp_fetch, path: str, nb: dict[str, Any]) -> None:
    body = json.dumps({"type": "notebook", "format": "json", "content": nb})
    response = await jp_fetch("api", "contents", path, method="PUT", body=body)
    assert response.code in (200, 201)


async def test_a_save_records_what_strip_text_does(jp_fetch, server_root):
    nb = sample(jupyter_repro=ENVIRONMENT)

    await save(jp_fetch, "nb.ipynb", nb)

    on_disk = (server_root / "nb.ipynb").read_text(encoding="utf-8")
    assert fingerprints_of(on_disk) == fingerprints_of(stripped(nb))
    assert (
        json.loads(on_disk)["metadata"]["jupyter_repro"]["environment"]
        == ENVIRONMENT["environment"]
    )


async def test_clearing_outputs_after_a_save_keeps_the_fingerprints_of_that_save(
    jp_fetch, server_root
):
    # Opened from a file stripped after run 1: the document carries run 1's fingerprints.
    opened = json.loads(stripped(sample(run=1)))
    # Run again (run 2 prints something else) and saved: the file has run 2's fingerprints,
    # the open document still run 1's.
    document = sample(run=2)
    document["metadata"] = opened["metadata"]
    await save(jp_fetch, "nb.ipynb", document)
    after_run_2 = fingerprints_of((server_root / "nb.ipynb").read_bytes())
    assert after_run_2 == expected_fingerprints(sample(run=2))

    # "Clear all outputs", save: run 2's fingerprints stay, not the document's older ones.
    for cell in document["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
    await save(jp_fetch, "nb.ipynb", document)

    assert fingerprints_of((server_root / "nb.ipynb").read_bytes()) == after_run_2


def test_fingerprints_in_file_reads_only_a_notebooks_fingerprints(tmp_path, monkeypatch):
    path = tmp_path / "nb.ipynb"
    assert fingerprints_in_file(str(path)) is None
    path.write_text("{not json", encoding="utf-8")
    assert fingerprints_in_file(str(path)) is None
    text = stripped(sample())
    path.write_text(text, encoding="utf-8")
    assert fingerprints_in_file(str(path)) == expected_fingerprints(sample())

    # Larger than what is parsed whole: as nbformat wrote it, its end alone is parsed.
    monkeypatch.setattr(savehook, "MAX_PREVIOUS_PARSED_BYTES", 10)
    assert fingerprints_in_file(str(path)) == expected_fingerprints(sample())
    path.write_text(json.dumps(json.loads(text), indent=2), encoding="utf-8")
    assert fingerprints_in_file(str(path)) is None
    monkeypatch.setattr(savehook, "MAX_PREVIOUS_PARSED_BYTES", 10**6)
    assert fingerprints_in_file(str(path)) == expected_fingerprints(sample())
    monkeypatch.setattr(savehook, "MAX_PREVIOUS_BYTES", 10)
    assert fingerprints_in_file(str(path)) is None


# -- the git filter --------------------------------------------------------------------------------


def test_the_git_filter_stores_what_strip_text_does(tmp_path, monkeypatch):
    from tests.test_git_filter import git, git_bytes, init_repository, write_notebook

    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("")
    (tmp_path / "gitconfig-system").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(tmp_path / "gitconfig-system"))
    monkeypatch.setenv("GIT_ATTR_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    repo = init_repository(tmp_path / "repo")
    monkeypatch.chdir(repo)
    from jupyter_repro.git.install import install

    assert install("local", None, sys.executable) == 0
    original = write_notebook(repo / "nb.ipynb", sample(run=1))

    git("add", "nb.ipynb")
    git("commit", "-q", "-m", "run 1")

    blob = git_bytes("cat-file", "blob", "HEAD:nb.ipynb")
    assert blob == stripped(json.loads(original)).encode()
    assert fingerprints_of(blob) == expected_fingerprints(sample(run=1))
    # The same outputs again (new execution counts and addresses): nothing to commit.
    rerun = sample(run=1, address="0x55d1c0ffee00")
    for cell in rerun["cells"]:
        if cell.get("execution_count"):
            cell["execution_count"] = 99
    write_notebook(repo / "nb.ipynb", rerun)
    git("add", "nb.ipynb")
    assert git("diff", "--cached").stdout == ""
    # A different output: only that cell's fingerprint lines change.
    write_notebook(repo / "nb.ipynb", sample(run=2))
    diff = git("diff").stdout
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]
    assert changed == [
        f'-      "sha256": "{sha("plotting run 1" + chr(10))}",',
        '-      "text": "plotting run 1\\n"',
        f'+      "sha256": "{sha("plotting run 2" + chr(10))}",',
        '+      "text": "plotting run 2\\n"',
    ]
