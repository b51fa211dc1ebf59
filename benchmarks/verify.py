"""`jupyter repro verify`: running a notebook again and comparing every code cell.

The notebook: CODE_CELLS small code cells (arithmetic, prints, a loop building a list, a dict
repr, floats, one `text/html` display, a cell with no output) between a few markdown cells, no
heavy imports, so that the fixed costs (kernel start and shutdown) weigh less and any per-cell
overhead of ours shows. Its stored outputs come from one nbclient run, so every cell has a
reference; every timed verification is checked to find every cell `match`.

Everything runs on the venv's own `python3` kernel (this Python's ipykernel, found in
`sys.prefix/share/jupyter/kernels` by jupyter_client's KernelSpecManager), in a temporary HOME
(IPYTHONDIR, the Jupyter dirs, no JUPYTER_PATH), with the notebook's folder as the kernel's cwd.

1. `VerifyService.verify` in-process (read, policy, kernel start, every cell run and compared,
   shutdown) against the least any re-run does: nbformat.read of the same file and
   `nbclient.NotebookClient(nb, kernel_name="python3", timeout=600).async_execute()` (kernel
   start, every cell, shutdown; no comparison). Alternating, median of REPEATS each, after one
   untimed run of each (imports, page cache).
2. Against nbval, in subprocesses, reported: `pytest --nbval` of the notebook against (a) our
   in-process verification of row 1 and (b) the command line, `python -m jupyter_repro.cli
   verify nb --kernel python3`, which pays an interpreter start as pytest does. Alternating,
   median of CLI_REPEATS each; every run must pass (exit status 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager

from jupyter_repro.verify.service import VerifyOptions, VerifyService
from tests.rig.installation import isolated_environ

from ._table import Result

REPEATS = int(os.environ.get("REPRO_BENCH_VERIFY_REPEATS", "7"))
CLI_REPEATS = int(os.environ.get("REPRO_BENCH_VERIFY_CLI_REPEATS", "5"))
CODE_CELLS = 36
KERNEL = "python3"
LIMIT = 1.1
UNLIMITED = float("inf")  # a row reported for information, with no target


# --------------------------------------------------------------------------------------------
# the notebook


def _sources() -> list[str]:
    """CODE_CELLS code cells of the kinds a small analysis notebook has."""
    cells = [
        "x = 21\ny = 2\nx * y",
        "print('hello from the notebook')",
        "values = []\nfor i in range(10):\n    values.append(i * i)\nvalues",
        "settings = {'alpha': 0.5, 'beta': [1, 2, 3], 'name': 'run', 'flag': True}\nsettings",
        "ratio = 1 / 3\nround(ratio, 6), ratio * 3",
        "import math\nmath.pi * 2",
        "from IPython.display import HTML, display\n"
        "display(HTML('<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr>"
        "</table>'))",
        "total = sum(values)\nprint(f'total = {total}')\ntotal",
        "z = 0",  # no output
    ]
    n = len(cells)
    while len(cells) < CODE_CELLS:
        i = len(cells) - n
        kind = i % 6
        if kind == 0:
            cells.append(f"a{i} = {i} * 7 + 3\na{i}")
        elif kind == 1:
            cells.append(f"print('step {i}:', [k for k in range({i % 5 + 3})])")
        elif kind == 2:
            cells.append(
                f"row{i} = []\nfor k in range({i % 4 + 4}):\n    row{i}.append(k / 4)\nrow{i}"
            )
        elif kind == 3:
            cells.append(f"{{'cell': {i}, 'squares': [k * k for k in range(4)], 'ok': True}}")
        elif kind == 4:
            cells.append(f"w{i} = {i}.25 * 1.5\nprint(w{i})\nw{i} / 3")
        else:
            cells.append(f"words = 'cell {i} of the notebook'.split()\nlen(words), words[-1]")
    return cells[:CODE_CELLS]


def _write_notebook(folder: Path) -> Path:
    """The notebook, executed once by nbclient on KERNEL in `folder`, written there."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    cells = []
    for i, source in enumerate(_sources()):
        if i % 8 == 0:
            cells.append(nbformat.v4.new_markdown_cell(f"## Part {i // 8 + 1}\n\nSome prose."))
        cells.append(nbformat.v4.new_code_cell(source))
    nb.cells = cells
    client = NotebookClient(
        nb, kernel_name=KERNEL, timeout=600, resources={"metadata": {"path": str(folder)}}
    )
    asyncio.run(client.async_execute())
    path = folder / "analysis.ipynb"
    nbformat.write(nb, path)
    return path


# --------------------------------------------------------------------------------------------
# 1. in-process: verify against a plain nbclient run


async def _ours(path: Path) -> None:
    service = VerifyService(kernel_spec_manager=KernelSpecManager())
    report = await service.verify(path, VerifyOptions(kernel=KERNEL))
    statuses = {cell.status for cell in report.cells}
    if len(report.cells) != CODE_CELLS or statuses != {"match"}:
        bad = [(c.index, c.status, c.diff or c.error) for c in report.cells if c.status != "match"]
        raise RuntimeError(f"verify did not match every cell: {bad[:5]}")


async def _nbclient(path: Path) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, kernel_name=KERNEL, timeout=600, resources={"metadata": {"path": str(path.parent)}}
    )
    await client.async_execute()


async def _measure_inprocess(path: Path) -> tuple[float, float]:
    await _ours(path)
    await _nbclient(path)
    times: dict[str, list[float]] = {"ours": [], "nbclient": []}
    for i in range(REPEATS):
        for side in ("ours", "nbclient") if i % 2 == 0 else ("nbclient", "ours"):
            start = time.perf_counter()
            await (_ours(path) if side == "ours" else _nbclient(path))
            times[side].append(time.perf_counter() - start)
    return statistics.median(times["ours"]), statistics.median(times["nbclient"])


# --------------------------------------------------------------------------------------------
# 2. subprocesses: the command line and pytest --nbval


def _argv(side: str, path: Path) -> list[str]:
    if side == "cli":
        return [sys.executable, "-m", "jupyter_repro.cli", "verify", str(path), "--kernel", KERNEL]
    return [
        sys.executable, "-m", "pytest", "--nbval", str(path), "--nbval-kernel-name", KERNEL,
        "-p", "no:cacheprovider", "-q",
    ]  # fmt: skip


def _run(side: str, path: Path, environ: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        _argv(side, path), cwd=path.parent, env=environ, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{side} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return elapsed


def _measure_subprocesses(path: Path, environ: dict[str, str]) -> tuple[float, float]:
    _run("cli", path, environ)
    _run("nbval", path, environ)
    times: dict[str, list[float]] = {"cli": [], "nbval": []}
    for i in range(CLI_REPEATS):
        for side in ("cli", "nbval") if i % 2 == 0 else ("nbval", "cli"):
            times[side].append(_run(side, path, environ))
    return statistics.median(times["cli"]), statistics.median(times["nbval"])


# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _isolated(home: Path) -> Iterator[dict[str, str]]:
    """This process confined to `home` (HOME, IPYTHONDIR, the Jupyter dirs), then restored."""
    saved = dict(os.environ)
    environ = isolated_environ(home)
    os.environ.clear()
    os.environ.update(environ)
    try:
        yield environ
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run() -> list[Result]:
    """The rows described in the module's docstring."""
    with tempfile.TemporaryDirectory(prefix="repro-bench-verify-") as tmp:
        base = Path(tmp)
        (base / "home").mkdir()
        (base / "work").mkdir()
        with _isolated(base / "home") as environ:
            spec = KernelSpecManager().get_kernel_spec(KERNEL)
            if not Path(spec.resource_dir).is_relative_to(sys.prefix):
                raise RuntimeError(f"{KERNEL} is not this venv's kernel: {spec.resource_dir}")
            path = _write_notebook(base / "work")
            ours_s, nbclient_s = asyncio.run(_measure_inprocess(path))
            cli_s, nbval_s = _measure_subprocesses(path, environ)

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 1)

    what = f"verify a {CODE_CELLS}-code-cell notebook on {KERNEL}"
    return [
        Result(
            f"{what}: VerifyService.verify in-process, kernel start to shutdown"
            f" (median of {REPEATS})",
            ms(ours_s), ms(nbclient_s), "nbclient async_execute (no comparison)", "ms", LIMIT,
        ),
        Result(
            f"{what}: in-process verify (row above) vs pytest --nbval in a subprocess"
            f" (median of {REPEATS} / {CLI_REPEATS})",
            ms(ours_s), ms(nbval_s), "pytest --nbval (subprocess)", "ms", UNLIMITED,
        ),
        Result(
            f"{what}: `python -m jupyter_repro.cli verify` in a subprocess"
            f" (median of {CLI_REPEATS})",
            ms(cli_s), ms(nbval_s), "pytest --nbval (subprocess)", "ms", UNLIMITED,
        ),
    ]  # fmt: skip
