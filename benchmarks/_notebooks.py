"""Generated notebooks with outputs, written as nbformat writes them, for the strip benchmarks.

Everything a stripper removes is present: outputs (streams, results with HTML, PNG images),
execution counts (in outputs too), random cell ids and the volatile metadata nbstripout drops
by default (`ExecuteTime`, `collapsed`, `scrolled`, `metadata.widgets`). Generation is seeded,
so a run's notebooks are the same on every machine.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_WORDS = (
    "frame", "series", "index", "value", "model", "sample", "count", "mean", "error", "result",
    "train", "test", "data", "plot", "axis", "label", "group", "merge", "filter", "column",
)  # fmt: skip


@dataclass(frozen=True)
class Shape:
    """How a notebook is built: cells, how much source each holds, what each outputs."""

    cells: int
    source_lines: int = 6
    """Lines of source per code cell, about 60 characters each."""
    text_lines: int = 4
    """Lines of stdout per code cell, and of the text/plain and HTML of its result."""
    image_every: int = 0
    """Every n-th code cell displays a PNG (0: none)."""
    image_bytes: int = 0
    """Size of each PNG before base64 (which adds a third)."""


# The sizes the benchmarks name; their byte sizes are what `write` reports (about as named).
SMALL = Shape(cells=10, source_lines=8, text_lines=8)  # ~20 KB, text outputs only
MEDIUM = Shape(cells=100, text_lines=10, image_every=8, image_bytes=55_000)  # ~1 MB
LARGE = Shape(cells=300, text_lines=20, image_every=3, image_bytes=85_000)  # ~10 MB


def scaled_outputs(megabytes: float) -> Shape:
    """A notebook of about `megabytes` that is mostly outputs (PNGs), as plots make them."""
    cells = max(10, int(megabytes * 25))
    return Shape(cells=cells, text_lines=20, image_every=2, image_bytes=70_000)


def scaled_source(megabytes: float) -> Shape:
    """A notebook of about `megabytes` that is mostly source: long cells, short text outputs."""
    cells = max(10, int(megabytes * 91))
    return Shape(cells=cells, source_lines=180, text_lines=3)


def notebook(shape: Shape, seed: int = 0) -> dict[str, Any]:
    """A v4.5 notebook of `shape`, with outputs, counts, ids and volatile metadata."""
    rng = random.Random(seed)
    cells: list[dict[str, Any]] = []
    count = 0
    for index in range(shape.cells):
        cell_id = "%08x" % rng.getrandbits(32)  # noqa: UP031 - ids as Jupyter makes them
        if index % 5 == 0:
            cells.append(
                {
                    "cell_type": "markdown",
                    "id": cell_id,
                    "metadata": {"heading_collapsed": True} if index % 10 == 0 else {},
                    "source": _lines(rng, 3, "## "),
                }
            )
            continue
        count += 1
        outputs: list[dict[str, Any]] = [
            {"name": "stdout", "output_type": "stream", "text": _lines(rng, shape.text_lines)}
        ]
        if shape.image_every and count % shape.image_every == 0:
            png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + rng.randbytes(shape.image_bytes))
            outputs.append(
                {
                    "data": {
                        "image/png": png.decode() + "\n",
                        "text/plain": ["<Figure size 640x480 with 1 Axes>"],
                    },
                    "metadata": {"needs_background": "light"},
                    "output_type": "display_data",
                }
            )
        else:
            outputs.append(
                {
                    "data": {
                        "text/html": _lines(rng, shape.text_lines, "<td>"),
                        "text/plain": _lines(rng, shape.text_lines),
                    },
                    "execution_count": count,
                    "metadata": {},
                    "output_type": "execute_result",
                }
            )
        metadata: dict[str, Any] = {
            "ExecuteTime": {
                "end_time": "2024-05-01T10:00:01.000Z",
                "start_time": "2024-05-01T10:00:00.000Z",
            }
        }
        if index % 3 == 0:
            metadata.update(collapsed=False, scrolled=True)
        cells.append(
            {
                "cell_type": "code",
                "execution_count": count,
                "id": cell_id,
                "metadata": metadata,
                "outputs": outputs,
                "source": _lines(rng, shape.source_lines),
            }
        )
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python", "version": "3.11.7"},
            "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _lines(rng: random.Random, count: int, prefix: str = "") -> list[str]:
    lines = [prefix + " ".join(rng.choices(_WORDS, k=10)) + "\n" for _ in range(count)]
    lines[-1] = lines[-1].rstrip("\n")  # nbformat's split: the last line has no newline
    return lines


def dumps(nb: dict[str, Any]) -> str:
    """The text nbformat.write produces for a notebook already split into lines."""
    text = json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False)
    return text + "\n"


def write(path: Path, shape: Shape, seed: int = 0) -> int:
    """Write a notebook of `shape` to `path`; its size in bytes."""
    data = dumps(notebook(shape, seed)).encode()
    path.write_bytes(data)
    return len(data)


def is_stripped(text: str | bytes) -> bool:
    """True when no cell has outputs or an execution count: a stripper really ran."""
    nb = json.loads(text)
    return all(
        not cell.get("outputs") and cell.get("execution_count") is None
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
    )
