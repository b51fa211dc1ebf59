""".pre-commit-hooks.yaml: valid for pre-commit, and its hooks work on a real git repository.

The hooks are run as pre-commit runs them (entry split with shlex, then args, then the staged
files that match the hook's types, relative to the work tree's root, which is the working
folder), without pre-commit building a virtualenv from a package index.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from identify import identify
from pre_commit.clientlib import load_manifest

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = REPO_ROOT / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def hooks() -> dict[str, dict[str, Any]]:
    return {hook["id"]: hook for hook in load_manifest(str(MANIFEST))}


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    """git without the machine's configuration; the project's commands first on PATH."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


@pytest.fixture
def repository(tmp_path: Path, git_env: dict[str, str]) -> Path:
    root = tmp_path / "repository"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=git_env)
    return root


def write_notebook(path: Path, *, outputs: bool) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('hi')", execution_count=1 if outputs else None)
    cell.id = "cell-one"
    if outputs:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    nb.cells = [cell]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    return path


def run_hook(
    hook: dict[str, Any], repository: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run `hook` on the staged files it matches, as pre-commit does."""
    subprocess.run(["git", "add", "-A"], cwd=repository, check=True, env=env)
    staged = subprocess.run(
        ["git", "diff", "--cached", "--name-only", "-z"],
        cwd=repository,
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    files = [
        name
        for name in staged
        if name and set(hook["types"]) <= identify.tags_from_path(str(repository / name))
    ]
    command = [*shlex.split(hook["entry"]), *hook["args"], *files]
    return subprocess.run(command, cwd=repository, env=env, capture_output=True, text=True)


def test_the_manifest_is_valid_for_pre_commit(hooks):
    assert set(hooks) == {"jupyter-repro-strip", "jupyter-repro-verify"}
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["types"] == ["jupyter"]
        assert hook["pass_filenames"] is True
        assert shlex.split(hook["entry"])[:2] == ["jupyter-repro", "strip"]
    assert "--verify" in shlex.split(hooks["jupyter-repro-verify"]["entry"])
    assert "--verify" not in shlex.split(hooks["jupyter-repro-strip"]["entry"])


def test_the_jupyter_type_selects_notebooks_only(tmp_path):
    notebook = write_notebook(tmp_path / "a.ipynb", outputs=False)
    script = tmp_path / "a.py"
    script.write_text("print(1)\n")

    assert "jupyter" in identify.tags_from_path(str(notebook))
    assert "jupyter" not in identify.tags_from_path(str(script))


def test_the_strip_hook_strips_and_says_what_it_changed(hooks, repository, git_env):
    dirty = write_notebook(repository / "nbs" / "dirty.ipynb", outputs=True)
    clean = write_notebook(repository / "clean.ipynb", outputs=False)
    clean_bytes = clean.read_bytes()
    script = repository / "keep.py"
    script.write_text("x = 1  # output\n")

    first = run_hook(hooks["jupyter-repro-strip"], repository, git_env)

    # Exit 0, as nbstripout's hook: pre-commit itself fails a hook that modified files.
    assert first.returncode == 0, first.stderr
    assert "nbs/dirty.ipynb" in first.stderr
    assert "clean.ipynb" not in first.stderr
    stripped = json.loads(dirty.read_text(encoding="utf-8"))
    assert stripped["cells"][0]["outputs"] == []
    assert stripped["cells"][0]["execution_count"] is None
    assert clean.read_bytes() == clean_bytes
    assert script.read_text() == "x = 1  # output\n"

    second = run_hook(hooks["jupyter-repro-strip"], repository, git_env)

    assert second.returncode == 0, second.stderr
    assert second.stderr == ""
    assert json.loads(dirty.read_text(encoding="utf-8")) == stripped


def test_the_verify_hook_fails_on_outputs_and_changes_nothing(hooks, repository, git_env):
    dirty = write_notebook(repository / "dirty.ipynb", outputs=True)
    before = dirty.read_bytes()

    result = run_hook(hooks["jupyter-repro-verify"], repository, git_env)

    assert result.returncode == 1
    assert dirty.read_bytes() == before


def test_the_verify_hook_passes_stripped_notebooks(hooks, repository, git_env):
    write_notebook(repository / "clean.ipynb", outputs=False)
    write_notebook(repository / "sub" / "also-clean.ipynb", outputs=False)

    result = run_hook(hooks["jupyter-repro-verify"], repository, git_env)

    assert result.returncode == 0, result.stderr


def test_the_hooks_follow_the_projects_policy(hooks, repository, git_env):
    (repository / "pyproject.toml").write_text(
        "[tool.jupyter_repro.strip]\nkeep_output = true\nkeep_count = true\n"
    )
    notebook = write_notebook(repository / "kept.ipynb", outputs=True)
    before = notebook.read_bytes()

    verify = run_hook(hooks["jupyter-repro-verify"], repository, git_env)
    strip = run_hook(hooks["jupyter-repro-strip"], repository, git_env)

    assert verify.returncode == 0, verify.stderr
    assert strip.returncode == 0, strip.stderr
    assert notebook.read_bytes() == before
