"""Install, remove and report the `jupyter-repro` git filter and diff driver.

Everything is written with `git config` argument lists and plain file edits of the attributes
file. Messages and exit codes follow nbstripout's `--install` / `--uninstall` / `--status`, so
`jupyter-repro-strip` can stand in for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Literal

Location = Literal["local", "global", "system"]

DRIVER = "jupyter-repro"
FILTER_SECTION = f"filter.{DRIVER}"
DIFF_SECTION = f"diff.{DRIVER}"
ATTRIBUTE_LINES = (
    f"*.ipynb filter={DRIVER} diff={DRIVER}",
    f"*.zpln filter={DRIVER}",
)
# The file git reads system attributes from when it cannot tell (before git 2.42 there is no
# `git var GIT_ATTR_SYSTEM`) and the system config file is not where it usually is.
DEFAULT_SYSTEM_ATTRIBUTES = "/etc/gitattributes"


class GitUnavailable(Exception):
    """git is not on PATH."""


class NotARepository(Exception):
    """A local installation was asked for outside a git repository."""


@dataclass(frozen=True)
class Installation:
    """What git's configuration says about the filter at one location."""

    where: str
    config: dict[str, str]
    attributes_file: str
    attribute_lines: tuple[str, ...]
    # The filter git applies to notebooks, by `git check-attr`, for a local installation; a
    # global or system one has no repository to ask, so its attribute lines decide.
    notebook_filter: str | None = None

    @property
    def installed(self) -> bool:
        if f"{FILTER_SECTION}.process" not in self.config:
            return False
        if self.notebook_filter is not None:
            return self.notebook_filter == DRIVER
        return any(
            line.startswith("*.ipynb ") and f"filter={DRIVER}" in line.split()
            for line in self.attribute_lines
        )


def _git(arguments: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *arguments], capture_output=True, text=True, check=check, encoding="utf-8"
        )
    except FileNotFoundError:
        raise GitUnavailable from None


def _config_option(location: Location) -> str:
    return f"--{location}"


def quote_for_sh(path: str) -> str:
    """`path` as one word for sh, which git runs filter and textconv commands through."""
    if os.name == "nt":  # git for Windows runs them through its own sh, with slashes
        path = PureWindowsPath(path).as_posix()
    return "'" + path.replace("'", "'\"'\"'") + "'"


def commands(python: str | None = None) -> dict[str, str]:
    """The git configuration the filter needs, keys fully qualified."""
    program = f"{quote_for_sh(python or sys.executable)} -m jupyter_repro.git"
    return {
        f"{FILTER_SECTION}.process": f"{program} process",
        # Read by git older than 2.11 (no process filters) and by tools such as nbdime.
        f"{FILTER_SECTION}.clean": f"{program} clean %f",
        # Git ignores smudge when `process` is set; older git needs it with `required`.
        f"{FILTER_SECTION}.smudge": "cat",
        f"{FILTER_SECTION}.required": "true",
        f"{DIFF_SECTION}.textconv": f"{program} textconv",
        f"{DIFF_SECTION}.cachetextconv": "true",
    }


def attributes_file(location: Location, attributes: str | None = None) -> Path:
    """The attributes file for `location`, or `attributes` itself when given."""
    if attributes:
        return Path(os.path.expanduser(attributes))
    if location == "local":
        # --git-path, not --git-dir: in a linked worktree, info/ lives in the common dir.
        result = _git(["rev-parse", "--git-path", "info/attributes"], check=False)
        if result.returncode != 0:
            raise NotARepository
        return Path(result.stdout.strip())
    configured = _git(["config", _config_option(location), "core.attributesFile"], check=False)
    if configured.returncode == 0 and configured.stdout.strip():
        return Path(os.path.expanduser(configured.stdout.strip()))
    if location == "global":
        config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        return Path(config_home, "git", "attributes")
    return _system_attributes_file()


def _system_attributes_file() -> Path:
    reported = _git(["var", "GIT_ATTR_SYSTEM"], check=False)  # git 2.42 and later
    if reported.returncode == 0 and reported.stdout.strip():
        return Path(reported.stdout.strip())
    # Older git keeps gitattributes beside the system gitconfig, unless GIT_CONFIG_SYSTEM
    # moved the config file (it does not move the attributes).
    if "GIT_CONFIG_SYSTEM" not in os.environ:
        origin = _git(["config", "--system", "--list", "--show-origin"], check=False)
        first = origin.stdout.split("\t", 1)[0] if origin.returncode == 0 else ""
        if first.startswith("file:"):
            return Path(first.removeprefix("file:")).parent / "gitattributes"
    return Path(DEFAULT_SYSTEM_ATTRIBUTES)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        return []


def _config_values(location: Location) -> dict[str, str]:
    pattern = rf"^({FILTER_SECTION}|{DIFF_SECTION})\."
    result = _git(["config", _config_option(location), "--get-regexp", pattern], check=False)
    values: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        values[key] = value
    return values


def _where(location: Location) -> str:
    if location == "system":
        return "system-wide"
    if location == "global":
        return "globally"
    top = _git(["rev-parse", "--show-toplevel"], check=False)
    if top.returncode != 0:
        # a bare repository has no top level; name its git dir instead
        top = _git(["rev-parse", "--absolute-git-dir"], check=False)
    return f"in repository '{top.stdout.strip()}'"


def install(
    location: Location = "local", attributes: str | None = None, python: str | None = None
) -> int:
    """Configure the filter and diff driver and add the attribute lines; 0 on success."""
    try:
        attrfile = attributes_file(location, attributes)
        for key, value in commands(python).items():
            _git(["config", _config_option(location), key, value])
    except GitUnavailable:
        print("Installation failed: git is not on path!", file=sys.stderr)
        return 1
    except (NotARepository, subprocess.CalledProcessError):
        print("Installation failed: not a git repository!", file=sys.stderr)
        return 1
    lines = _read_lines(attrfile)
    present = {line.strip() for line in lines}
    missing = [line for line in ATTRIBUTE_LINES if line not in present]
    if not missing:
        return 0
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines += [line + "\n" for line in missing]
    try:
        attrfile.parent.mkdir(parents=True, exist_ok=True)
        with open(attrfile, "w", encoding="utf-8", newline="") as file:
            file.write("".join(lines))
    except PermissionError:
        print(f"Installation failed: could not write to {attrfile}", file=sys.stderr)
        if location != "local":
            print("Did you forget to sudo?", file=sys.stderr)
        return 1
    return 0


def uninstall(location: Location = "local", attributes: str | None = None) -> int:
    """Remove our configuration and attribute lines, and nothing else; 0 on success."""
    try:
        attrfile = attributes_file(location, attributes)
        for section in (FILTER_SECTION, DIFF_SECTION):
            # Fails harmlessly when the section is absent: uninstalling twice is fine.
            _git(["config", _config_option(location), "--remove-section", section], check=False)
    except GitUnavailable:
        print("Uninstall failed: git is not on path!", file=sys.stderr)
        return 1
    except NotARepository:
        print("Uninstall failed: not a git repository!", file=sys.stderr)
        return 1
    lines = _read_lines(attrfile)
    kept = [line for line in lines if line.strip() not in ATTRIBUTE_LINES]
    if kept != lines:
        try:
            with open(attrfile, "w", encoding="utf-8", newline="") as file:
                file.write("".join(kept))
        except PermissionError:
            print(f"Uninstall failed: could not write to {attrfile}", file=sys.stderr)
            return 1
    return 0


def installation(location: Location = "local", attributes: str | None = None) -> Installation:
    """The filter's configuration and attribute lines at `location`.

    Raises GitUnavailable or NotARepository.
    """
    attrfile = attributes_file(location, attributes)
    lines = tuple(
        line.strip() for line in _read_lines(attrfile) if f"={DRIVER}" in line.split("#", 1)[0]
    )
    notebook_filter = None
    if location == "local":
        # Asking git covers the lines in .gitattributes files as well as info/attributes.
        answer = _git(["check-attr", "filter", "--", "notebook.ipynb"], check=False)
        notebook_filter = answer.stdout.strip().rpartition(": ")[2]
    return Installation(
        _where(location), _config_values(location), str(attrfile), lines, notebook_filter
    )


def is_installed(location: Location = "local", attributes: str | None = None) -> bool:
    """True if git at `location` runs our filter for notebooks."""
    try:
        return installation(location, attributes).installed
    except (GitUnavailable, NotARepository):
        return False


def status(location: Location = "local", verbose: bool = False) -> int:
    """0 if the filter is installed at `location`, 1 if not; with `verbose`, say how."""
    try:
        found = installation(location)
    except GitUnavailable:
        print("Cannot determine status: git is not on path!", file=sys.stderr)
        return 1
    except NotARepository:
        if verbose:
            print("Not in a git repository!", file=sys.stderr)
        return 1
    if not found.installed:
        if verbose:
            print(f"jupyter-repro git filter is not installed {found.where}")
        return 1
    if verbose:
        print(f"jupyter-repro git filter is installed {found.where}")
        print("\nFilter:")
        for key in ("process", "clean", "smudge", "required"):
            print(f"  {key} = {found.config.get(f'{FILTER_SECTION}.{key}', '')}")
        print("\nDiff:")
        for key in ("textconv", "cachetextconv"):
            print(f"  {key} = {found.config.get(f'{DIFF_SECTION}.{key}', '')}")
        print(f"\nAttributes ({found.attributes_file}):")
        for line in found.attribute_lines:
            print(f"  {line}")
    return 0
