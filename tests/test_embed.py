"""Embedding the environment in notebook metadata changes that key's bytes and nothing else."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from jupyter_repro import __version__
from jupyter_repro.atomic import replace_file
from jupyter_repro.notebooks.embedded import (
    METADATA_KEY,
    NotebookError,
    embed_spec,
    read_embedded,
)
from jupyter_repro.notebooks.nbjson import dumps_json
from jupyter_repro.specs.environment import EnvironmentSpec, SpecError

SPEC = EnvironmentSpec(
    name="analysis",
    channels=("conda-forge",),
    dependencies=("numpy=1.26.4", "python=3.11.7"),
    pip=("requests==2.32.3",),
    variables=(("MODE", "fast"),),
)
URLS = {"linux-64": ["https://conda.anaconda.org/conda-forge/noarch/a-1-0.conda#" + "0" * 32]}


def nbformat_notebook(path: Path) -> Path:
    """A notebook as Jupyter saves it: nbformat's writer, unicode, outputs, multi-line cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "conda-env-x-py",
        "display_name": "Py",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    nb.metadata["zeta"] = {"after": "the new key", "ünïcode": "é ✓ 数据"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Título\n\nSome *text* — with “quotes”.\n"),
        nbformat.v4.new_code_cell(
            "import math\nprint(math.pi)\n",
            execution_count=1,
            outputs=[
                nbformat.v4.new_output("stream", name="stdout", text="3.141592653589793\n"),
                nbformat.v4.new_output(
                    "execute_result",
                    data={"text/plain": "1.5e-07", "application/json": {"x": 1.0, "y": [1, 2.5]}},
                    execution_count=1,
                ),
            ],
        ),
    ]
    with open(path, "w", encoding="utf-8") as fh:
        nbformat.write(nb, fh)
    return path


def inserted_block(before: bytes, after: bytes) -> bytes:
    """The bytes `after` has in addition to `before`, when that is one insertion."""
    start = 0
    while start < len(before) and before[start] == after[start]:
        start += 1
    end = 0
    while end < len(before) - start and before[-1 - end] == after[-1 - end]:
        end += 1
    assert before[start : len(before) - end] == b"", "bytes of the original were changed"
    return after[start : len(after) - end]


def test_only_the_new_metadata_key_is_added(tmp_path):
    path = nbformat_notebook(tmp_path / "nb.ipynb")
    before = path.read_bytes()

    embed_spec(path, SPEC, mode="portable", explicit=URLS, platform="linux-64")

    after = path.read_bytes()
    # One insertion, just before `"kernelspec"` (keys are sorted); the shortest diff starts
    # after that key's opening quote, so the block is `jupyter_repro": {...},\n  "`.
    block = inserted_block(before, after).decode("utf-8")
    separator = ',\n  "'
    assert block.startswith(f'{METADATA_KEY}": {{')
    assert block.endswith(separator)
    assert list(json.loads('{"' + block[: -len(separator)] + "}")) == [METADATA_KEY]
    nbformat.validate(nbformat.reads(after.decode("utf-8"), as_version=4))
    # Removing the key again gives the very bytes nbformat wrote.
    data = json.loads(after)
    del data["metadata"][METADATA_KEY]
    assert dumps_json(data).encode("utf-8") == before


def test_re_embedding_replaces_only_that_key(tmp_path):
    path = nbformat_notebook(tmp_path / "nb.ipynb")
    embed_spec(path, SPEC, mode="portable", platform="linux-64")
    first = json.loads(path.read_text())

    embed_spec(
        path, EnvironmentSpec(dependencies=("python=3.12",)), mode="exact", platform="osx-arm64"
    )

    second = json.loads(path.read_text())
    assert second["metadata"][METADATA_KEY]["environment"] == {"dependencies": ["python=3.12"]}
    assert second["metadata"][METADATA_KEY]["exported"]["mode"] == "exact"
    del first["metadata"][METADATA_KEY], second["metadata"][METADATA_KEY]
    assert first == second


def test_metadata_contents(tmp_path):
    path = nbformat_notebook(tmp_path / "nb.ipynb")
    moment = dt.datetime(2024, 5, 1, 14, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    embed_spec(path, SPEC, mode="no-builds", explicit=URLS, platform="linux-64", exported_at=moment)

    value = json.loads(path.read_text())["metadata"][METADATA_KEY]
    assert value == {
        "environment": SPEC.to_dict(),
        "exported": {
            "at": "2024-05-01T12:00:00Z",
            "platform": "linux-64",
            "mode": "no-builds",
            "tool_version": __version__,
        },
        "explicit": URLS,
    }


def test_default_timestamp_and_platform(tmp_path):
    path = nbformat_notebook(tmp_path / "nb.ipynb")

    embed_spec(path, SPEC, mode="portable")

    exported = json.loads(path.read_text())["metadata"][METADATA_KEY]["exported"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", exported["at"])
    assert exported["platform"] == "linux-64"
    assert "explicit" not in json.loads(path.read_text())["metadata"][METADATA_KEY]


def test_read_embedded_round_trip(tmp_path):
    path = nbformat_notebook(tmp_path / "nb.ipynb")
    assert read_embedded(path) is None

    embed_spec(path, SPEC, mode="portable")

    assert read_embedded(path) == SPEC


def test_read_embedded_checks_the_spec(tmp_path):
    path = nbformat_notebook(tmp_path / "nb.ipynb")
    data = json.loads(path.read_text())
    data["metadata"][METADATA_KEY] = {"environment": {"dependencies": ["numpy>>1"]}}
    path.write_text(json.dumps(data))
    with pytest.raises(SpecError, match="numpy>>1"):
        read_embedded(path)

    data["metadata"][METADATA_KEY] = {"environment": "not a mapping"}
    path.write_text(json.dumps(data))
    with pytest.raises(NotebookError, match="no 'environment' object"):
        read_embedded(path)


def test_file_mode_and_symlinks_are_kept(tmp_path):
    real = nbformat_notebook(tmp_path / "real.ipynb")
    real.chmod(0o640)
    link = tmp_path / "link.ipynb"
    link.symlink_to(real)

    embed_spec(link, SPEC, mode="portable")

    assert link.is_symlink()
    assert METADATA_KEY in json.loads(real.read_text())["metadata"]
    assert (real.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.ipynb", "real.ipynb"]


@pytest.mark.parametrize(
    "content",
    [
        b"{ not json",
        b"[1, 2, 3]",
        b'{"metadata": {}, "nbformat": 4}',
        b'{"cells": [], "nbformat": "4"}',
        b'{"cells": [], "metadata": [], "nbformat": 4}',
        b"\xff\xfe garbage",
        b"",
    ],
)
def test_not_a_notebook_is_left_untouched(tmp_path, content):
    path = tmp_path / "file.ipynb"
    path.write_bytes(content)
    stamp = path.stat().st_mtime_ns

    with pytest.raises(NotebookError, match="not a notebook"):
        embed_spec(path, SPEC, mode="portable")

    assert path.read_bytes() == content
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["file.ipynb"]


def test_missing_notebook(tmp_path):
    with pytest.raises(NotebookError, match="cannot read"):
        embed_spec(tmp_path / "gone.ipynb", SPEC, mode="portable")


def test_nbformat_3_notebooks_stay_ascii(tmp_path):
    path = tmp_path / "old.ipynb"
    old = {"metadata": {"name": "é"}, "nbformat": 3, "nbformat_minor": 0, "worksheets": []}
    path.write_text(json.dumps(old, indent=1, sort_keys=True, separators=(",", ": ")) + "\n")
    before = path.read_bytes()

    embed_spec(path, EnvironmentSpec(name="café", dependencies=("python",)), mode="portable")

    after = path.read_bytes()
    assert after.isascii()
    assert "café" in json.loads(after)["metadata"][METADATA_KEY]["environment"]["name"]
    assert inserted_block(before, after)


def test_replace_file_creates_with_the_umask(tmp_path):
    target = tmp_path / "new.yml"
    umask = os.umask(0o027)
    try:
        replace_file(target, "a: 1\n")
    finally:
        os.umask(umask)

    assert target.read_text() == "a: 1\n"
    assert (target.stat().st_mode & 0o777) == 0o640
