"""`jupyter-repro-strip` against the real `nbstripout` command: same files, stdout and exit code.

Both commands run as programs, each in its own copy of the same files, outside any git
repository (so nbstripout's `git config` look-ups find nothing, as ours never look).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
NBSTRIPOUT = BIN / "nbstripout"
OURS = BIN / "jupyter-repro-strip"

pytestmark = pytest.mark.skipif(
    not NBSTRIPOUT.exists() and not os.environ.get("CI"),
    reason="nbstripout (a test dependency) is not installed",
)


def _notebook(*, outputs: bool = True, tags: list[str] | None = None) -> dict:
    cells = [
        {
            "cell_type": "code",
            "execution_count": 4 if outputs else None,
            "id": "c0ffee01",
            "metadata": {"scrolled": True, "tags": tags or []},
            "outputs": [
                {"name": "stdout", "output_type": "stream", "text": ["héllo\n", "wörld\n"]},
                {"name": "stderr", "output_type": "stream", "text": ["warn\n"]},
                {
                    "data": {"text/plain": ["42"], "image/png": "iVBORw0KGgo="},
                    "execution_count": 4,
                    "metadata": {},
                    "output_type": "execute_result",
                },
            ]
            if outputs
            else [],
            "source": ["print('héllo')\n", "42"],
        },
        {"cell_type": "markdown", "id": "c0ffee02", "metadata": {}, "source": ["  \n"]},
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "c0ffee03",
            "metadata": {"init_cell": True},
            "outputs": [],
            "source": "import this",
        },
    ]
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3"}, "widgets": {"x": 1}, "foo": {"bar": 1}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _contradicting_notebook() -> dict:
    """Cell 4 has `keep_output: false` and the tag `keep_output`: nbstripout's MetadataError."""
    nb = _notebook()
    nb["cells"].append(
        {
            "cell_type": "code",
            "execution_count": 7,
            "id": "c0ffee04",
            "metadata": {"keep_output": False, "tags": ["keep_output"]},
            "outputs": [{"name": "stdout", "output_type": "stream", "text": ["x\n"]}],
            "source": "print('x')",
        }
    )
    return nb


FILES = {
    "dirty.ipynb": json.dumps(_notebook(), indent=2),
    "conflict.ipynb": json.dumps(_contradicting_notebook(), indent=1),
    "tagged.ipynb": json.dumps(_notebook(tags=["drop", "keep_output"])),
    "broken.ipynb": '{"cells": [',
    "notes.txt": json.dumps(_notebook()),
    "book.zpln": json.dumps(
        {"paragraphs": [{"text": "%md hi", "results": {"msg": [{"data": "x"}]}}], "name": "z"}
    ),
}


def _clean_copy() -> str:
    from jupyter_repro.notebooks.strip import StripOptions, strip_text

    return strip_text(FILES["dirty.ipynb"], StripOptions()).text


def _run(command: Path, args: list[str], folder: Path, stdin: str | None) -> tuple:
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "HOME": str(folder)}
    env.pop("PYTHONIOENCODING", None)
    done = subprocess.run(
        [str(command), *args],
        cwd=folder,
        input=stdin.encode() if stdin is not None else b"",
        capture_output=True,
        env=env,
        timeout=120,
    )
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    return done.returncode, done.stdout, files, done.stderr.decode()


def _both(tmp_path: Path, args: list[str], stdin: str | None = None) -> tuple:
    results = []
    for name, command in (("theirs", NBSTRIPOUT), ("ours", OURS)):
        folder = tmp_path / name
        folder.mkdir(parents=True)
        for file_name, text in FILES.items():
            (folder / file_name).write_text(text, encoding="utf-8")
        (folder / "clean.ipynb").write_text(_clean_copy(), encoding="utf-8")
        results.append(_run(command, args, folder, stdin))
    return results[0], results[1]


CASES = [
    ["dirty.ipynb"],
    ["dirty.ipynb", "clean.ipynb", "tagged.ipynb"],
    ["--dry-run", "dirty.ipynb", "clean.ipynb"],
    ["--verify", "dirty.ipynb"],
    ["--verify", "clean.ipynb"],
    ["-t", "dirty.ipynb", "tagged.ipynb"],
    ["--textconv", "clean.ipynb"],
    ["notes.txt"],
    ["-f", "notes.txt"],
    ["--keep-output", "dirty.ipynb"],
    ["--keep-count", "--keep-id", "dirty.ipynb"],
    ["--keep-output", "--drop-output-type", "stream:stderr", "--", "dirty.ipynb"],
    ["--keep-output-type", "stream", "--", "dirty.ipynb"],
    ["--max-size", "1K", "dirty.ipynb"],
    ["--extra-keys", "metadata.foo.bar cell.metadata.tags", "dirty.ipynb"],
    ["--keep-metadata-keys", "cell.metadata.scrolled metadata.widgets", "dirty.ipynb"],
    ["--drop-empty-cells", "dirty.ipynb"],
    ["--drop-tagged-cells", "drop", "tagged.ipynb"],
    ["--strip-init-cells", "dirty.ipynb"],
    ["-m", "zeppelin", "book.zpln"],
    ["--version"],
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a))
def test_same_files_stdout_and_exit_code_as_nbstripout(tmp_path, args):
    theirs, ours = _both(tmp_path, args)
    if args == ["--version"]:
        assert ours[0] == theirs[0] == 0
        assert ours[1].strip() != b""
        return
    assert ours[0] == theirs[0], (ours[3], theirs[3])
    assert ours[1] == theirs[1]
    assert ours[2] == theirs[2]


@pytest.mark.parametrize(
    "args",
    [[], ["--dry-run"], ["--keep-output"], ["-t"]],
    ids=lambda a: " ".join(a) or "plain",
)
def test_stdin_to_stdout_like_nbstripout(tmp_path, args):
    theirs, ours = _both(tmp_path, args, stdin=FILES["dirty.ipynb"])
    assert (ours[0], ours[1]) == (theirs[0], theirs[1])


def test_errors_have_nbstripouts_exit_codes_and_messages(tmp_path):
    for args in (["broken.ipynb"], ["missing.ipynb"]):
        theirs, ours = _both(tmp_path / args[0], args)
        assert ours[0] == theirs[0] == 1
        assert ours[3].splitlines()[0] == theirs[3].splitlines()[0]
        assert ours[2] == theirs[2]  # nothing was written
    theirs, ours = _both(tmp_path / "stdin", [], stdin="not json")
    assert ours[0] == theirs[0] == 1
    assert ours[3].strip() == "No valid notebook detected on stdin"


def test_a_contradiction_fails_without_touching_the_file(tmp_path):
    nb = _notebook(tags=["keep_output"])
    nb["cells"][0]["metadata"]["keep_output"] = False
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(nb))
    before = path.read_bytes()
    done = subprocess.run([str(OURS), str(path)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "keep_output" in done.stderr
    assert "bad.ipynb" in done.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["conflict.ipynb"], None),
        (["--dry-run", "conflict.ipynb"], None),
        (["--verify", "conflict.ipynb"], None),
        (["--drop-empty-cells", "conflict.ipynb"], None),  # numbered as in the file
        (["-t", "dirty.ipynb", "conflict.ipynb"], None),
        (["dirty.ipynb", "conflict.ipynb", "clean.ipynb"], None),
        ([], FILES["conflict.ipynb"]),
        (["--dry-run"], FILES["conflict.ipynb"]),
        (["--verify"], FILES["conflict.ipynb"]),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else "stdin" if a else "",
)
def test_a_contradiction_carries_nbstripouts_metadata_error(tmp_path, args, stdin):
    theirs, ours = _both(tmp_path, args, stdin)
    # nbstripout's traceback ends `nbstripout._utils.MetadataError: ...`; the module path is
    # its private one, the rest is what scripts look for.
    (their_line,) = [line for line in theirs[3].splitlines() if "MetadataError: " in line]
    metadata_error = their_line[their_line.index("MetadataError: ") :]

    assert ours[0] == theirs[0] == 1
    assert metadata_error in ours[3].splitlines()
    assert (ours[1], ours[2]) == (theirs[1], theirs[2])  # same output, same files left
    if stdin is None:  # nbstripout first names the file it could not strip
        assert (
            ours[3].splitlines()[0]
            == theirs[3].splitlines()[0]
            == "Could not strip 'conflict.ipynb'"
        )
    hint = ours[3].splitlines()[-1]
    assert hint.startswith("conflict.ipynb: " if stdin is None else "stdin: ")
    assert "cell 4 (id 'c0ffee04')" in hint
    assert "remove the tag" in hint


def test_a_dash_is_a_file_name_that_both_commands_skip(tmp_path):
    theirs, ours = _both(tmp_path, ["-"], stdin=FILES["conflict.ipynb"])

    assert (ours[0], ours[1], ours[3]) == (theirs[0], theirs[1], theirs[3]) == (0, b"", "")


def test_a_clean_file_is_not_rewritten(tmp_path):
    path = tmp_path / "clean.ipynb"
    path.write_text(_clean_copy())
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    subprocess.run([str(OURS), str(path)], check=True)
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_in_place_keeps_the_files_mode(tmp_path):
    path = tmp_path / "dirty.ipynb"
    path.write_text(FILES["dirty.ipynb"])
    path.chmod(0o640)
    subprocess.run([str(OURS), str(path)], check=True)
    assert path.stat().st_mode & 0o777 == 0o640
    assert '"outputs": []' in path.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_keeps_the_embedded_environment_whatever_the_extra_keys(tmp_path):
    nb = _notebook()
    nb["metadata"]["jupyter_repro"] = {"environment": {"name": "demo"}}
    path = tmp_path / "env.ipynb"
    path.write_text(json.dumps(nb))
    subprocess.run(
        [
            str(OURS),
            "--extra-keys",
            "metadata.jupyter_repro metadata.jupyter_repro.environment",
            str(path),
        ],
        check=True,
    )
    assert json.loads(path.read_text())["metadata"]["jupyter_repro"] == {
        "environment": {"name": "demo"}
    }
