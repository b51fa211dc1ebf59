"""repro/notebooks/{path}/git: the git filter of a notebook's repository, and installing it.

Real git repositories in the server root; the installation is `jupyter_repro.git.install`'s.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jupyter_repro.git.service import GitService, git_environment
from tests.test_hardening_routes import (
    DenyContentsRead,
    DenyContentsWrite,
    assert_json_error,
    server_config,
)
from tests.test_notebook_routes import answer, write_notebook

pytestmark = pytest.mark.timeout(120)

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
}


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory, monkeypatch):
    """git reads no configuration of whoever runs the tests (a global filter would count)."""
    home = tmp_path_factory.mktemp("git-home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)


def git(cwd: Path, *arguments: str) -> str:
    return subprocess.run(
        ["git", *arguments], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def repository(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    return path


def notebook_with_output(path: Path) -> Path:
    write_notebook(path)
    data = json.loads(path.read_text())
    data["cells"][1]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": ["secret output\n"]}
    ]
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


async def git_status(jp_fetch, path: str) -> dict[str, Any]:
    code, _, body = await answer(jp_fetch("repro", "notebooks", path, "git"))
    assert code == 200, body
    return body


async def install(jp_fetch, path: str, body: Any = None) -> tuple[int, Any]:
    raw = json.dumps({"action": "install"} if body is None else body)
    code, _, answered = await answer(
        jp_fetch("repro", "notebooks", path, "git", method="POST", body=raw)
    )
    return code, answered


async def test_a_notebook_outside_any_repository(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb")

    status = await git_status(jp_fetch, "nb.ipynb")

    assert status["repository"] is None
    assert status["installed"] is False
    assert status["nbstripout"] is False
    assert "not in a git repository" in status["details"]["message"]
    code, body = await install(jp_fetch, "nb.ipynb")
    assert_json_error(code, body, 409)
    assert body["reason"] == "no repository"


async def test_install_into_a_fresh_repository(jp_fetch, jp_root_dir):
    repo = repository(jp_root_dir / "project")
    notebook = notebook_with_output(repo / "analysis" / "nb.ipynb")

    before = await git_status(jp_fetch, "project/analysis/nb.ipynb")
    assert before["repository"] == "project"
    assert before["installed"] is False
    assert before["details"]["filter"] is None
    assert before["details"]["local"]["installed"] is False
    assert before["details"]["local"]["attributes_file"] == "project/.git/info/attributes"

    code, after = await install(jp_fetch, "project/analysis/nb.ipynb")

    assert code == 200, after
    assert after["installed"] is True
    assert after["repository"] == "project"
    assert after["details"]["filter"] == "jupyter-repro"
    assert after["details"]["diff"] == "jupyter-repro"
    assert after["details"]["local"]["installed"] is True
    assert isinstance(after["output"], list)
    attributes = (repo / ".git" / "info" / "attributes").read_text()
    assert "*.ipynb filter=jupyter-repro diff=jupyter-repro" in attributes
    assert "jupyter_repro.git" in git(repo, "config", "--local", "filter.jupyter-repro.process")
    assert (await git_status(jp_fetch, "project/analysis/nb.ipynb"))["installed"] is True

    # It works: what git stages has no outputs.
    git(repo, "add", "analysis/nb.ipynb")
    staged = json.loads(git(repo, "show", ":analysis/nb.ipynb"))
    assert staged["cells"][1]["outputs"] == []
    assert "secret output" in notebook.read_text()  # the working copy keeps them


async def test_a_repository_at_the_server_root(jp_fetch, jp_root_dir):
    repository(jp_root_dir)
    write_notebook(jp_root_dir / "nb.ipynb")

    status = await git_status(jp_fetch, "nb.ipynb")

    assert status["repository"] == "."
    code, body = await install(jp_fetch, "nb.ipynb")
    assert code == 200, body
    assert body["installed"] is True


async def test_a_repository_above_the_server_root_is_not_used(jp_fetch, jp_root_dir):
    repository(jp_root_dir.parent)
    write_notebook(jp_root_dir / "nb.ipynb")

    status = await git_status(jp_fetch, "nb.ipynb")

    assert status["repository"] is None
    code, body = await install(jp_fetch, "nb.ipynb")
    assert_json_error(code, body, 409)
    assert not (jp_root_dir.parent / ".git" / "info" / "attributes").exists() or (
        "jupyter-repro" not in (jp_root_dir.parent / ".git" / "info" / "attributes").read_text()
    )
    assert str(jp_root_dir.parent) not in json.dumps(body)


async def test_an_nbstripout_set_up_is_reported(jp_fetch, jp_root_dir):
    repo = repository(jp_root_dir / "project")
    write_notebook(repo / "nb.ipynb")
    git(repo, "config", "filter.nbstripout.clean", "nbstripout")
    (repo / ".gitattributes").write_text("*.ipynb filter=nbstripout\n")

    status = await git_status(jp_fetch, "project/nb.ipynb")

    assert status["nbstripout"] is True
    assert status["installed"] is False
    assert status["details"]["filter"] == "nbstripout"
    assert "git config filter.nbstripout" in status["details"]["nbstripout"]
    # What the installer does over nbstripout is its own business: its answer is reported.
    code, body = await install(jp_fetch, "project/nb.ipynb")
    assert code in (200, 409), body
    if code == 409:
        assert body["reason"] == "install failed"
        assert body["message"]


async def test_a_pre_commit_hook_counts_as_an_nbstripout_set_up(jp_fetch, jp_root_dir):
    repo = repository(jp_root_dir / "project")
    write_notebook(repo / "nb.ipynb")
    (repo / ".pre-commit-config.yaml").write_text(
        "repos:\n  - repo: https://github.com/kynan/nbstripout\n"
        "    hooks:\n      - id: nbstripout\n"
    )

    status = await git_status(jp_fetch, "project/nb.ipynb")

    assert status["nbstripout"] is True
    assert status["details"]["nbstripout"] == [".pre-commit-config.yaml"]


@pytest.mark.parametrize(
    "body",
    [{}, {"action": "uninstall"}, {"action": "install", "scope": "global"}, [], "x"],
    ids=["empty", "unknown-action", "unknown-key", "list", "string"],
)
async def test_bad_bodies_are_400(jp_fetch, jp_root_dir, body):
    repository(jp_root_dir / "project")
    write_notebook(jp_root_dir / "project" / "nb.ipynb")

    code, answered = await install(jp_fetch, "project/nb.ipynb", body)

    assert_json_error(code, answered, 400)
    assert not (jp_root_dir / "project" / ".git" / "info" / "attributes").exists()


async def test_path_errors(jp_fetch, jp_root_dir):
    code, _, body = await answer(jp_fetch("repro", "notebooks", "missing.ipynb", "git"))
    assert_json_error(code, body, 404)
    code, _, body = await answer(jp_fetch("repro", "notebooks", "nb.txt", "git"))
    assert_json_error(code, body, 400)


async def test_git_missing_is_said_not_failed(jp_fetch, jp_root_dir, monkeypatch):
    repository(jp_root_dir / "project")
    write_notebook(jp_root_dir / "project" / "nb.ipynb")
    monkeypatch.setenv("PATH", str(jp_root_dir / "no-bin-here"))

    status = await git_status(jp_fetch, "project/nb.ipynb")

    assert status["repository"] is None
    assert status["details"]["git"] is False
    code, body = await install(jp_fetch, "project/nb.ipynb")
    assert_json_error(code, body, 409)
    assert body["reason"] == "git not found"


class TestContentsWriteDenied:
    @pytest.fixture
    def jp_server_config(self):
        return server_config(DenyContentsWrite)

    async def test_install_is_403_and_writes_nothing(self, jp_fetch, jp_root_dir):
        repo = repository(jp_root_dir / "project")
        write_notebook(repo / "nb.ipynb")

        code, body = await install(jp_fetch, "project/nb.ipynb")

        assert_json_error(code, body, 403)
        assert "write" in body["message"]
        assert not (repo / ".git" / "info" / "attributes").exists()
        assert (await git_status(jp_fetch, "project/nb.ipynb"))["installed"] is False


class TestContentsReadDenied:
    @pytest.fixture
    def jp_server_config(self):
        return server_config(DenyContentsRead)

    async def test_status_is_403(self, jp_fetch, jp_root_dir):
        repository(jp_root_dir / "project")
        write_notebook(jp_root_dir / "project" / "nb.ipynb")

        code, _, body = await answer(jp_fetch("repro", "notebooks", "project/nb.ipynb", "git"))

        assert_json_error(code, body, 403)


# -- the service, without a server -----------------------------------------------------------


def test_git_runs_confined_to_the_server_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    env = git_environment(root, {"GIT_DIR": "/elsewhere/.git", "PATH": os.environ["PATH"]})

    assert "GIT_DIR" not in env
    assert env["GIT_CEILING_DIRECTORIES"] == str(tmp_path.resolve())
    keys = {env[f"GIT_CONFIG_KEY_{n}"] for n in range(int(env["GIT_CONFIG_COUNT"]))}
    assert "core.fsmonitor" in keys


def test_a_notebook_in_a_linked_folder_of_another_repository(tmp_path):
    """A repository whose top resolves outside the root (a symlink in it) is refused."""
    root = tmp_path / "root"
    root.mkdir()
    outside = repository(tmp_path / "outside")
    write_notebook(outside / "nb.ipynb")
    (root / "link").symlink_to(outside)

    status = GitService().status(root / "link" / "nb.ipynb", root)

    assert status["repository"] is None
