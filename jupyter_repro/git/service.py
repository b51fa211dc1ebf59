"""The git side of a notebook, for the REST API: is the filter installed for its repository,
is nbstripout set up there, and installing the filter.

A plain service over `jupyter_repro.git.install`. Those functions work on the git repository
of the current directory, which a server cannot change (one working directory per process,
shared by every thread), so they run in a short child process started in the repository:
`python -m jupyter_repro.git.service status|install`. git itself runs with:

- `GIT_CEILING_DIRECTORIES` set to the folder above the server root, so only a repository
  at or below the root is ever found (and its top is checked to be inside the root again);
- no `GIT_DIR`, `GIT_WORK_TREE`, ... inherited from the server's environment;
- `core.fsmonitor=false`, no terminal prompts, no optional locks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DRIVER = "jupyter-repro"  # the filter's name (install.DRIVER; not imported: child start-up)
NBSTRIPOUT = "nbstripout"
PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
TIMEOUT = 60.0

# Variables that point git at another repository than the one of the notebook's folder.
_LOCATING_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
)


class GitServiceError(Exception):
    """The notebook's folder is not a place to install the filter (the message says why)."""


class NoRepository(GitServiceError):
    """The notebook is in no git repository at or below the server root."""


class GitNotFound(GitServiceError):
    """git is not on the server's PATH."""


class InstallFailed(GitServiceError):
    """`install()` reported a failure."""


@dataclass(frozen=True)
class Repository:
    """A git repository inside the server root."""

    top: Path
    relative: str
    """Its top folder relative to the server root (`.` for the root itself)."""


def git_environment(root: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs in: confined to `root`, nothing inherited that moves it."""
    env = {k: v for k, v in (os.environ if base is None else base).items()}
    for name in _LOCATING_VARIABLES:
        env.pop(name, None)
    parent = os.path.dirname(os.path.realpath(root))
    if parent and parent != os.path.realpath(root):
        env["GIT_CEILING_DIRECTORIES"] = parent
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"
    # Configuration given this way wins over every file: no fsmonitor hook is ever run.
    count = int(env.get("GIT_CONFIG_COUNT", "0") or "0")
    env[f"GIT_CONFIG_KEY_{count}"] = "core.fsmonitor"
    env[f"GIT_CONFIG_VALUE_{count}"] = "false"
    env["GIT_CONFIG_COUNT"] = str(count + 1)
    return env


def _run(
    arguments: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(arguments),
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


class GitService:
    """The git filter status of notebooks and its installation into their repositories."""

    def __init__(self, python: str | None = None, timeout: float = TIMEOUT) -> None:
        self.python = python or sys.executable
        self.timeout = timeout

    def repository(self, notebook: Path, root: Path) -> Repository:
        """The repository of `notebook`; NoRepository or GitNotFound otherwise."""
        root = Path(os.path.realpath(root))
        try:
            found = _run(
                ["git", "rev-parse", "--show-toplevel"],
                notebook.parent,
                git_environment(root),
                self.timeout,
            )
        except FileNotFoundError:
            raise GitNotFound("git is not on the server's PATH") from None
        if found.returncode != 0:
            detail = found.stderr.strip().splitlines()
            why = f" ({detail[-1]})" if detail and "not a git repository" not in detail[-1] else ""
            raise NoRepository(
                "the notebook is not in a git repository at or below the server root" + why
            )
        top = Path(os.path.realpath(found.stdout.strip()))
        if os.path.commonpath([root, top]) != str(root):
            raise NoRepository("the notebook's git repository is not inside the server root")
        return Repository(top, os.path.relpath(top, root).replace(os.sep, "/"))

    def status(self, notebook: Path, root: Path) -> dict[str, Any]:
        """`{"repository", "installed", "nbstripout", "details"}` for `notebook` (see the
        REST route); never raises for a missing repository or git."""
        try:
            repository = self.repository(notebook, root)
        except GitServiceError as error:
            return {
                "repository": None,
                "installed": False,
                "nbstripout": False,
                "details": {"git": not isinstance(error, GitNotFound), "message": str(error)},
            }
        relative = os.path.relpath(os.path.realpath(notebook), repository.top)
        try:
            answer = self._child(["status", relative.replace(os.sep, "/")], repository, root)
            report = json.loads(answer.stdout)
        except (GitServiceError, ValueError, subprocess.TimeoutExpired) as error:
            return {
                "repository": repository.relative,
                "installed": False,
                "nbstripout": False,
                "details": {"git": True, "message": f"could not read the git set-up: {error}"},
            }
        local = report["local"]
        if local and local.get("attributes_file"):
            # git names it relative to the folder it ran in: the repository's top.
            attributes = repository.top / local["attributes_file"]
            local["attributes_file"] = _shown(str(attributes), root)
        installed = report["filter"] == DRIVER and report["configured"]
        nbstripout_found = bool(report["nbstripout"])
        return {
            "repository": repository.relative,
            "installed": installed,
            "nbstripout": nbstripout_found,
            "details": {
                "git": True,
                "filter": report["filter"],
                "diff": report["diff"],
                "configured": report["configured"],
                "local": local,
                "nbstripout": report["nbstripout"],
                "message": None,
            },
        }

    def install(self, notebook: Path, root: Path) -> dict[str, Any]:
        """Install the filter into the notebook's repository (local scope); the new status
        plus `output`, the lines the installer printed. InstallFailed when it fails."""
        repository = self.repository(notebook, root)
        answer = self._child(["install"], repository, root)
        output = [line for line in (answer.stdout + answer.stderr).splitlines() if line.strip()]
        if answer.returncode != 0:
            raise InstallFailed(
                " ".join(output) or f"the installer failed (exit code {answer.returncode})"
            )
        status = self.status(notebook, root)
        status["output"] = output
        return status

    def _child(
        self, arguments: Sequence[str], repository: Repository, root: Path
    ) -> subprocess.CompletedProcess[str]:
        command = [self.python, "-m", "jupyter_repro.git.service", *arguments]
        env = git_environment(root)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        answer = _run(command, repository.top, env, self.timeout)
        if arguments[0] == "status" and answer.returncode != 0:
            raise GitServiceError(
                "could not read the repository's git configuration: "
                + (answer.stderr.strip().splitlines() or ["no message"])[-1]
            )
        return answer


def _shown(path: str, root: Path) -> str:
    """A path inside the server root relative to it; others by their name only."""
    real = os.path.realpath(path)
    base = os.path.realpath(root)
    if os.path.commonpath([base, real]) == base:
        return os.path.relpath(real, base).replace(os.sep, "/")
    return os.path.basename(real)


# --------------------------------------------------------------------------------------------
# the child process: runs in the repository's top folder


def _git_output(arguments: Sequence[str]) -> str:
    result = subprocess.run(
        ["git", *arguments],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        check=False,
    )
    return result.stdout if result.returncode == 0 else ""


def _git_lines(arguments: Sequence[str]) -> list[str]:
    return _git_output(arguments).splitlines()


def _attributes(notebook: str) -> dict[str, str | None]:
    """`git check-attr -z filter diff` of `notebook`: None for unspecified and unset."""
    fields = _git_output(["check-attr", "-z", "filter", "diff", "--", notebook]).split("\0")
    values: dict[str, str | None] = {"filter": None, "diff": None}
    for index in range(0, len(fields) - 2, 3):
        name, value = fields[index + 1], fields[index + 2]
        if name in values:
            values[name] = None if value in ("unspecified", "unset") else value
    return values


def _child_status(notebook: str) -> dict[str, Any]:
    from .install import GitUnavailable, NotARepository, installation

    attributes = _attributes(notebook)
    filter_name = attributes["filter"]
    configured = bool(
        _git_lines(["config", "--get", f"filter.{DRIVER}.process"])
        or _git_lines(["config", "--get", f"filter.{DRIVER}.clean"])
    )
    try:
        found = installation("local")
        local: dict[str, Any] | None = {
            "installed": found.installed,
            "attributes_file": found.attributes_file,
            "attribute_lines": list(found.attribute_lines),
        }
    except (GitUnavailable, NotARepository):
        local = None
    nbstripout: list[str] = []
    if _git_lines(["config", "--get-regexp", rf"^filter\.{NBSTRIPOUT}\."]):
        nbstripout.append("git config filter.nbstripout")
    if filter_name == NBSTRIPOUT:
        nbstripout.append("the notebook's filter attribute")
    try:
        hooks = Path(PRE_COMMIT_CONFIG).read_text(encoding="utf-8", errors="replace")
    except OSError:
        hooks = ""
    if NBSTRIPOUT in hooks:
        nbstripout.append(PRE_COMMIT_CONFIG)
    return {
        "filter": filter_name,
        "diff": attributes["diff"],
        "configured": configured,
        "local": local,
        "nbstripout": nbstripout,
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["status"] and len(argv) == 2:
        print(json.dumps(_child_status(argv[1])))
        return 0
    if argv == ["install"]:
        from .install import install

        return install("local")
    print("usage: python -m jupyter_repro.git.service {status NOTEBOOK | install}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
