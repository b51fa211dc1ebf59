"""The verification report: JSON shape of the contract, Markdown, self-contained escaped HTML,
files by suffix, and the record kept in the notebook."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from jupyter_repro.verify.compare import CELL_STATUSES
from jupyter_repro.verify.report import CellResult, VerifyReport, utc_now, verified_record

SCRIPT = "<script>alert('x')</script>"


def make_report(*cells: CellResult) -> VerifyReport:
    return VerifyReport(
        notebook="analysis/model fit.ipynb",
        environment={
            "kernel": "conda-env-fit-py",
            "prefix": "/tmp/repro-verify-1/env",
            "lock_digest": "sha256:abc123",
            "platform": "linux-64",
        },
        started="2025-03-01T10:00:00Z",
        duration=12.3456,
        cells=list(cells),
    )


REPORT = make_report(
    CellResult(0, "imports", "match", duration=0.51234),
    CellResult(1, None, "skipped"),
    CellResult(
        3,
        "fit",
        "differs",
        diff="--- reference stdout\n+++ fresh stdout\n@@ -1 +1 @@\n-" + SCRIPT + "\n+ok & done",
        duration=2.0,
    ),
    CellResult(4, "plot", "error", error="ZeroDivisionError: division by zero", duration=0.1),
    CellResult(5, "stripped", "no_reference"),
)


def test_json_has_the_contract_shape() -> None:
    data = REPORT.to_json()
    assert list(data) == ["notebook", "environment", "started", "duration", "summary", "cells"]
    assert data["notebook"] == "analysis/model fit.ipynb"
    assert list(data["environment"]) == ["kernel", "prefix", "lock_digest", "platform"]
    assert data["started"] == "2025-03-01T10:00:00Z"
    assert data["duration"] == 12.346
    assert data["summary"] == {
        "match": 1,
        "differs": 1,
        "error": 1,
        "no_reference": 1,
        "skipped": 1,
    }
    assert data["cells"][0] == {"id": "imports", "index": 0, "status": "match", "duration": 0.512}
    assert data["cells"][1] == {"id": None, "index": 1, "status": "skipped", "duration": 0.0}
    assert list(data["cells"][2]) == ["id", "index", "status", "diff", "duration"]
    assert list(data["cells"][3]) == ["id", "index", "status", "error", "duration"]
    # JSON through and through, and read back
    text = REPORT.dumps()
    assert json.loads(text) == data
    assert VerifyReport.from_json(json.loads(text)).to_json() == data


def test_summary_has_every_status() -> None:
    assert make_report().summary == dict.fromkeys(CELL_STATUSES, 0)
    assert list(REPORT.summary) == list(CELL_STATUSES)


def test_environment_keys_are_always_there() -> None:
    report = VerifyReport("a.ipynb", {"kernel": "python3", "python": "3.11"}, utc_now(), 0.0, [])
    assert report.to_json()["environment"] == {
        "kernel": "python3",
        "prefix": None,
        "lock_digest": None,
        "platform": None,
        "python": "3.11",
    }


@pytest.mark.parametrize(
    ("statuses", "ok", "headline"),
    [
        ([], True, "Reproduces: 0 of 0 cells match"),
        (["match"] * 41 + ["skipped"], True, "Reproduces: 41 of 41 cells match (1 skipped)"),
        (["match", "no_reference"], True, "Reproduces: 1 of 1 cells match (1 without reference)"),
        (
            ["match"] * 41 + ["differs"],
            False,
            "Does not reproduce: 41 of 42 cells match (1 differ)",
        ),
        (["match", "error"], False, "Does not reproduce: 1 of 2 cells match (1 failed)"),
    ],
)
def test_ok_only_when_nothing_differs_or_errs(statuses: list[str], ok: bool, headline: str) -> None:
    report = make_report(*(CellResult(i, f"c{i}", s) for i, s in enumerate(statuses)))  # type: ignore[arg-type]
    assert report.ok is ok
    assert report.headline == headline


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown cell status 'timeout'"):
        CellResult(0, None, "timeout")  # type: ignore[arg-type]


def test_markdown_has_a_table_and_fenced_diffs() -> None:
    text = REPORT.to_markdown()
    assert text.startswith("# Verification of `analysis/model fit.ipynb`\n")
    assert "**Does not reproduce: 1 of 3 cells match (1 differ, 1 failed" in text
    assert "| cell | id | status | seconds |" in text
    assert "| 3 | fit | differs | 2.00 |" in text
    assert "| 1 |  | skipped | 0.00 |" in text
    assert "| lock\\_digest | sha256:abc123 |" in text
    assert "### Cell 3 (`fit`): differs\n\n```diff\n--- reference stdout\n" in text
    assert "+ok & done\n```" in text
    assert "```text\nZeroDivisionError: division by zero\n```" in text


def test_markdown_fence_outlasts_backticks_in_a_diff() -> None:
    diff = "-```\n ````python\n+x"
    text = make_report(CellResult(0, "md", "differs", diff=diff)).to_markdown()
    assert f"`````diff\n{diff}\n`````" in text
    assert (
        "```diff\n-```\n```"
        in make_report(CellResult(0, "md", "differs", diff="-```")).to_markdown()
    )


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.links: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        for key in ("href", "src"):
            if values.get(key):
                self.links.append(values[key] or "")
        if values.get("id"):
            self.ids.append(values["id"] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_and_escaped() -> None:
    page = REPORT.to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    parsed = _Page()
    parsed.feed(page)
    assert "script" not in parsed.tags
    assert not {"link", "img", "iframe", "object"} & set(parsed.tags)
    # the only links jump to a differing cell on the page
    assert parsed.links == ["#cell-3", "#cell-4"]
    assert set(parsed.links) <= {f"#{anchor}" for anchor in parsed.ids}
    text = "".join(parsed.text)
    assert SCRIPT in text  # shown as text
    assert "ok & done" in text
    assert "Does not reproduce: 1 of 3 cells match" in text


def test_html_escapes_every_field() -> None:
    evil = '"><img src=x onerror=alert(1)>'
    report = VerifyReport(
        notebook=evil,
        environment={"kernel": evil, "prefix": None, "lock_digest": None, "platform": evil},
        started=evil,
        duration=0.0,
        cells=[CellResult(0, evil, "error", error=evil, diff=evil)],
    )
    page = report.to_html()
    assert "<img" not in page
    parsed = _Page()
    parsed.feed(page)
    assert "img" not in parsed.tags
    assert parsed.links == ["#cell-0"]


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("report.json", lambda text: json.loads(text) == REPORT.to_json()),
        ("report.html", lambda text: text.startswith("<!DOCTYPE html>")),
        ("REPORT.HTML", lambda text: text.startswith("<!DOCTYPE html>")),
        ("report.md", lambda text: text.startswith("# Verification of")),
    ],
)
def test_write_chooses_the_format_by_suffix(tmp_path: Path, name: str, check) -> None:
    path = REPORT.write(tmp_path / name)
    assert path == tmp_path / name
    assert check(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["report.txt", "report", "report.json.gz", "report.htm"])
def test_write_refuses_other_suffixes(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(".json, .html, .md")):
        REPORT.write(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_verified_record() -> None:
    assert verified_record(REPORT) == {
        "at": "2025-03-01T10:00:00Z",
        "platform": "linux-64",
        "environment": "sha256:abc123",
        "result": {"match": 1, "differs": 1, "error": 1, "no_reference": 1, "skipped": 1},
    }
    bare = VerifyReport("a.ipynb", {}, "2025-03-01T10:00:00Z", 1.0, [])
    assert verified_record(bare)["environment"] is None


def test_utc_now_is_iso_utc() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_now())
