"""verify's verdicts agree with nbval's, cell by cell, where nbval's are well defined.

The same notebooks are checked by `pytest --nbval` (in a subprocess, its per-cell results read
from a JUnit XML file) and by `jupyter repro verify`, both on this Python's own `python3`
kernel: a cell nbval passes must `match`, one it fails must `differ` (or be an `error`, for a
cell that raises), one it skips must be `skipped`. The notebooks hold only what both compare
the same way: deterministic text, an output changed by hand, nbval's tags.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

from jupyter_repro.cli import main

pytestmark = pytest.mark.timeout(120)

KERNEL = "python3"


def code(source: str, *tags: str) -> Any:
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def executed(cells: list[Any], folder: Path) -> Any:
    """A notebook of `cells`, executed by nbclient on the `python3` kernel in `folder`."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.cells = cells
    node = copy.deepcopy(nb)
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager())
    try:
        client = NotebookClient(
            node, km=km, allow_errors=True, resources={"metadata": {"path": str(folder)}}
        )
        client.execute()
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return node


def set_stdout(cell: Any, text: str) -> None:
    """Replace the cell's (single) stdout output with `text`: its reference changed."""
    (stream,) = [o for o in cell.outputs if o.output_type == "stream"]
    stream.text = text


def nbval_verdicts(notebooks: list[Path], folder: Path) -> dict[str, dict[int, str]]:
    """Notebook name -> code cell number -> passed | failed | skipped, from `pytest --nbval`."""
    xml = folder / "nbval.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "--nbval-kernel-name",
            KERNEL,
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-q",
            "-rA",
            f"--junitxml={xml}",
            *map(str, notebooks),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=100,
    )
    verdicts: dict[str, dict[int, str]] = {}
    for case in ET.parse(xml).iter("testcase"):
        name = case.get("name", "")
        assert name.startswith("Cell "), name
        # nbval's items are `<notebook path>::Cell <n>`: the class name is the notebook.
        notebook = Path(case.get("classname", "")).name
        if case.find("skipped") is not None:
            verdict = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            verdict = "failed"
        else:
            verdict = "passed"
        verdicts.setdefault(notebook, {})[int(name.split()[1])] = verdict
    return verdicts


def our_verdicts(notebook: Path, folder: Path) -> dict[int, str]:
    """Code cell number -> status, from `jupyter repro verify --kernel python3`."""
    report_file = folder / f"{notebook.stem}.json"
    main(["verify", str(notebook), "--kernel", KERNEL, "--report", str(report_file)])
    report = json.loads(report_file.read_text())
    cells = json.loads(notebook.read_text())["cells"]
    code_numbers = {
        index: number
        for number, index in enumerate(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    }
    return {code_numbers[cell["index"]]: cell["status"] for cell in report["cells"]}


AGREES = {"passed": {"match"}, "failed": {"differs", "error"}, "skipped": {"skipped"}}


def test_verify_agrees_with_nbval_cell_by_cell(tmp_path: Path, capsys) -> None:
    deterministic = executed(
        [
            code('print("hello")'),
            code("x = 6 * 7"),
            code("x"),
            nbformat.v4.new_markdown_cell("text"),
            code('{"a": 1, "b": [1, 2]}'),
            code('import sys\nprint("out")\nprint("err", file=sys.stderr)'),
            code("for i in range(3):\n    print(i)"),
        ],
        tmp_path,
    )
    changed = executed(
        [
            code('print("same")'),
            code('print("was one thing")'),
            code('print("ignored")', "nbval-ignore-output"),
            code('print("skipped")', "nbval-skip"),
            code('raise ValueError("expected")', "nbval-raises-exception"),
            code("1 / 0"),
            code("[1, 2, 3]"),
        ],
        tmp_path,
    )
    set_stdout(changed.cells[1], "was another thing\n")
    set_stdout(changed.cells[2], "not what it prints\n")
    paths = []
    for name, nb in (("deterministic", deterministic), ("changed", changed)):
        path = tmp_path / f"{name}.ipynb"
        path.write_text(nbformat.writes(nb), encoding="utf-8")
        paths.append(path)

    theirs = nbval_verdicts(paths, tmp_path)
    ours = {path.name: our_verdicts(path, tmp_path) for path in paths}
    capsys.readouterr()

    # nbval's verdicts are the ones these notebooks were made for.
    assert theirs["deterministic.ipynb"] == dict.fromkeys(range(6), "passed")
    assert theirs["changed.ipynb"] == {
        0: "passed",
        1: "failed",
        2: "passed",
        3: "skipped",
        4: "passed",
        5: "failed",
        6: "passed",
    }
    for notebook, verdicts in theirs.items():
        assert set(ours[notebook]) == set(verdicts), notebook
        for number, verdict in verdicts.items():
            assert ours[notebook][number] in AGREES[verdict], (notebook, number, verdict)
    assert ours["changed.ipynb"][1] == "differs"
    assert ours["changed.ipynb"][5] == "error"
