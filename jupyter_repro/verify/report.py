"""The result of verifying a notebook: per-cell verdicts, as JSON, Markdown or a self-contained
HTML page, and the record kept in `metadata.jupyter_repro.verified`."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..atomic import replace_file
from .compare import CELL_STATUSES, CellStatus

ENVIRONMENT_KEYS = ("kernel", "prefix", "lock_digest", "platform")
REPORT_SUFFIXES = (".json", ".html", ".md")


def utc_now() -> str:
    """The current time as the report writes it: ISO 8601, UTC, seconds (`...Z`)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class CellResult:
    """The verdict on one code cell. `index` counts every cell of the notebook, from 0."""

    index: int
    id: str | None
    status: CellStatus
    diff: str | None = None
    """differs: the diff of the sanitized text, or the changed numbers."""
    error: str | None = None
    """error: the exception (or the cell timeout), said plainly."""
    duration: float = 0.0
    """Seconds the cell took to execute (0 when it was not executed)."""

    def __post_init__(self) -> None:
        if self.status not in CELL_STATUSES:
            raise ValueError(
                f"unknown cell status {self.status!r}: expected one of {', '.join(CELL_STATUSES)}"
            )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "index": self.index, "status": self.status}
        if self.diff is not None:
            data["diff"] = self.diff
        if self.error is not None:
            data["error"] = self.error
        data["duration"] = round(self.duration, 3)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellResult:
        return cls(
            index=int(data["index"]),
            id=data.get("id"),
            status=data["status"],
            diff=data.get("diff"),
            error=data.get("error"),
            duration=float(data.get("duration", 0.0)),
        )


@dataclass
class VerifyReport:
    """What `jupyter repro verify` found for one notebook."""

    notebook: str
    environment: dict[str, Any]
    """kernel, prefix (a temporary prefix with --restore), lock_digest (or None), platform."""
    started: str
    """ISO 8601 UTC (see utc_now)."""
    duration: float
    cells: list[CellResult] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        """Cells per status; every status is present, in CELL_STATUSES order."""
        counts: dict[str, int] = dict.fromkeys(CELL_STATUSES, 0)
        for cell in self.cells:
            counts[cell.status] += 1
        return counts

    @property
    def ok(self) -> bool:
        """Nothing differs and nothing erred (skipped cells and cells without a reference are
        not failures)."""
        summary = self.summary
        return summary["differs"] == 0 and summary["error"] == 0

    @property
    def headline(self) -> str:
        """One line for a badge or a terminal: "Reproduces: 41 of 42 cells match"."""
        summary = self.summary
        checked = summary["match"] + summary["differs"] + summary["error"]
        line = f"Reproduces: {summary['match']} of {checked} cells match"
        if not self.ok:
            line = f"Does not reproduce: {summary['match']} of {checked} cells match"
        extras = []
        for status, words in (
            ("differs", "differ"),
            ("error", "failed"),
            ("no_reference", "without reference"),
            ("skipped", "skipped"),
        ):
            if summary[status]:
                extras.append(f"{summary[status]} {words}")
        return line + (f" ({', '.join(extras)})" if extras else "")

    def _environment(self) -> dict[str, Any]:
        environment = {key: self.environment.get(key) for key in ENVIRONMENT_KEYS}
        environment.update(
            (key, value) for key, value in self.environment.items() if key not in environment
        )
        return environment

    def to_json(self) -> dict[str, Any]:
        """The report as the JSON document of the contract (a dict ready for json.dumps)."""
        return {
            "notebook": self.notebook,
            "environment": self._environment(),
            "started": self.started,
            "duration": round(self.duration, 3),
            "summary": self.summary,
            "cells": [cell.to_json() for cell in self.cells],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VerifyReport:
        """Read back what to_json wrote (the summary is recomputed from the cells)."""
        return cls(
            notebook=str(data["notebook"]),
            environment=dict(data.get("environment") or {}),
            started=str(data["started"]),
            duration=float(data.get("duration", 0.0)),
            cells=[CellResult.from_json(cell) for cell in data.get("cells", [])],
        )

    # --- Markdown -----------------------------------------------------------------------------

    def to_markdown(self) -> str:
        environment = self._environment()
        lines = [
            f"# Verification of {_md_code(self.notebook)}",
            "",
            f"**{_md_text(self.headline)}**",
            "",
            f"Started {_md_text(self.started)}, took {self.duration:.1f} s.",
            "",
            "| environment | |",
            "|---|---|",
        ]
        for key, value in environment.items():
            lines.append(f"| {_md_cell(key)} | {_md_cell('' if value is None else str(value))} |")
        lines += ["", "| cell | id | status | seconds |", "|---:|---|---|---:|"]
        for cell in self.cells:
            lines.append(
                f"| {cell.index} | {_md_cell(cell.id or '')} | {cell.status} | "
                f"{cell.duration:.2f} |"
            )
        details = [cell for cell in self.cells if cell.diff is not None or cell.error is not None]
        if details:
            lines += ["", "## Details"]
        for cell in details:
            name = f"Cell {cell.index}" + (f" ({_md_code(cell.id)})" if cell.id else "")
            lines += ["", f"### {name}: {cell.status}", ""]
            if cell.error is not None:
                lines += [*_md_fenced(cell.error, "text"), ""]
            if cell.diff is not None:
                lines += [*_md_fenced(cell.diff, "diff"), ""]
        return "\n".join(lines).rstrip("\n") + "\n"

    # --- HTML ---------------------------------------------------------------------------------

    def to_html(self) -> str:
        """A self-contained page (inline style, no script); every text is escaped."""
        e = html.escape
        environment = self._environment()
        rows = "\n".join(
            f"<tr><th>{e(key)}</th><td>{e('' if value is None else str(value))}</td></tr>"
            for key, value in environment.items()
        )
        cells = []
        for cell in self.cells:
            anchor = _anchor(cell)
            name = e(cell.id or "")
            linked = f'<a href="#{anchor}">{name}</a>' if _has_detail(cell) else name
            cells.append(
                f'<tr class="{e(cell.status)}"><td class="num">{cell.index}</td>'
                f"<td><code>{linked}</code></td><td>{e(cell.status)}</td>"
                f'<td class="num">{cell.duration:.2f}</td></tr>'
            )
        details = []
        for cell in self.cells:
            if not _has_detail(cell):
                continue
            title = f"Cell {cell.index}" + (f" <code>{e(cell.id)}</code>" if cell.id else "")
            parts = [f'<section id="{_anchor(cell)}"><h3>{title}: {e(cell.status)}</h3>']
            if cell.error is not None:
                parts.append(f'<pre class="error">{e(cell.error)}</pre>')
            if cell.diff is not None:
                parts.append(f'<pre class="diff">{_html_diff(cell.diff)}</pre>')
            parts.append("</section>")
            details.append("".join(parts))
        state = "ok" if self.ok else "failed"
        return _HTML_PAGE.format(
            title=e(f"Verification of {self.notebook}"),
            notebook=e(self.notebook),
            state=state,
            headline=e(self.headline),
            started=e(self.started),
            duration=f"{self.duration:.1f}",
            environment=rows,
            cells="\n".join(cells),
            details=("<h2>Details</h2>\n" + "\n".join(details)) if details else "",
        )

    # --- files --------------------------------------------------------------------------------

    def write(self, path: str | Path) -> Path:
        """Write the report to `path`, as JSON, HTML or Markdown by its suffix (atomically)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            text = self.dumps()
        elif suffix == ".html":
            text = self.to_html()
        elif suffix == ".md":
            text = self.to_markdown()
        else:
            raise ValueError(
                f"cannot write a report to {str(path)!r}: the file name must end with one of "
                f"{', '.join(REPORT_SUFFIXES)}"
            )
        replace_file(path, text)
        return path


def verified_record(report: VerifyReport) -> dict[str, Any]:
    """The record for `metadata.jupyter_repro.verified` (written only when the user asks)."""
    return {
        "at": report.started,
        "platform": report.environment.get("platform"),
        "environment": report.environment.get("lock_digest"),
        "result": report.summary,
    }


# --- helpers ----------------------------------------------------------------------------------


def _has_detail(cell: CellResult) -> bool:
    return cell.diff is not None or cell.error is not None


def _anchor(cell: CellResult) -> str:
    return f"cell-{cell.index}"


def _md_text(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)


def _md_cell(text: str) -> str:
    return _md_text(text).replace("\n", " ")


def _md_code(text: str) -> str:
    ticks = max((len(run) for run in re.findall(r"`+", text)), default=0) + 1
    fence = "`" * ticks
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_fenced(text: str, language: str) -> list[str]:
    # Only a line starting (after up to 3 spaces) with as many backticks closes a fence.
    runs = re.findall(r"^ {0,3}(`{3,})", text, re.MULTILINE)
    fence = "`" * max(3, max((len(run) + 1 for run in runs), default=3))
    return [f"{fence}{language}", text.rstrip("\n"), fence]


def _html_diff(diff: str) -> str:
    lines = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            css = "file"
        elif line.startswith("+"):
            css = "add"
        elif line.startswith("-"):
            css = "del"
        elif line.startswith("@@"):
            css = "hunk"
        else:
            css = ""
        escaped = html.escape(line)
        lines.append(f'<span class="{css}">{escaped}</span>' if css else escaped)
    return "\n".join(lines)


_HTML_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }}
h1 code {{ font-size: 0.9em; }}
.headline {{ font-size: 1.2em; font-weight: bold; padding: 0.4em 0.8em; border-radius: 4px; }}
.headline.ok {{ background: #e6f4ea; color: #1e6b34; }}
.headline.failed {{ background: #fce8e6; color: #a50e0e; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.match td:nth-child(3) {{ color: #1e6b34; }}
tr.differs td:nth-child(3), tr.error td:nth-child(3) {{ color: #a50e0e; font-weight: bold; }}
tr.skipped td:nth-child(3), tr.no_reference td:nth-child(3) {{ color: #666; }}
pre {{ background: #f6f8fa; padding: 0.8em; overflow-x: auto; white-space: pre; }}
pre.error {{ background: #fce8e6; }}
.add {{ color: #1e6b34; background: #e6f4ea; }}
.del {{ color: #a50e0e; background: #fce8e6; }}
.hunk {{ color: #6f42c1; }}
.file {{ color: #666; font-weight: bold; }}
</style>
</head>
<body>
<h1>Verification of <code>{notebook}</code></h1>
<p class="headline {state}">{headline}</p>
<p>Started {started}, took {duration} s.</p>
<h2>Environment</h2>
<table>
{environment}
</table>
<h2>Cells</h2>
<table>
<tr><th>cell</th><th>id</th><th>status</th><th>seconds</th></tr>
{cells}
</table>
{details}
</body>
</html>
"""
