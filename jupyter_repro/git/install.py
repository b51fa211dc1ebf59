"""Install, remove and report the `jupyter-repro` git filter and diff driver.

Everything is written with `git config` argument lists and plain file edits of the attributes
file. Messages and exit codes follow nbstripout's `--install` / `--uninstall` / `--status`, so
`jupyter-repro-strip` can stand in for it; `jupyter repro git install` asks for `verbose` and
says what it configured.

An nbstripout set-up at the same location is replaced, not left to compete: its attribute lines
(`filter=nbstripout`, and `diff=ipynb` when that driver runs nbstripout) give way to ours, then
its `filter.nbstripout` and `diff.ipynb` sections are removed (`nbstripout --install` brings
them back; uninstalling ours does not). A project's `.gitattributes` is edited only when it is
the file asked for.
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
# What `nbstripout --install` configures; `install` replaces it.
NBSTRIPOUT_FILTER = "filter.nbstripout"
NBSTRIPOUT_DIFF = "diff.ipynb"
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


def _nbstripout_config(location: Location) -> dict[str, str]:
    """nbstripout's keys at `location`: `filter.nbstripout.*`, and `diff.ipynb.*` when its
    textconv runs nbstripout (another tool may own a driver called `ipynb`)."""
    pattern = rf"^({NBSTRIPOUT_FILTER}|{NBSTRIPOUT_DIFF})\."
    result = _git(["config", _config_option(location), "--get-regexp", pattern], check=False)
    values = dict(line.partition(" ")[::2] for line in result.stdout.splitlines())
    if "nbstripout" not in values.get(f"{NBSTRIPOUT_DIFF}.textconv", ""):
        values = {k: v for k, v in values.items() if not k.startswith(f"{NBSTRIPOUT_DIFF}.")}
    return values


def _nbstripout_tokens(line: str, diff_is_nbstripout: bool) -> list[str]:
    """The attributes nbstripout set on an attributes file's line (`filter=nbstripout`, and
    `diff=ipynb` when that driver is nbstripout's)."""
    if line.lstrip().startswith("#"):
        return []
    words = line.split()
    return [
        word
        for word in words[1:]
        if word == "filter=nbstripout" or (word == "diff=ipynb" and diff_is_nbstripout)
    ]


def _without_nbstripout(lines: list[str], diff_is_nbstripout: bool) -> tuple[list[str], int, int]:
    """`lines` without nbstripout's attributes: the lines kept, how many lines changed, and
    where the first one was (-1 for none). A line of a user's that also sets other attributes
    keeps them."""
    diff_is_nbstripout = diff_is_nbstripout or any(
        "filter=nbstripout" in _nbstripout_tokens(line, False) for line in lines
    )
    kept: list[str] = []
    changed, first = 0, -1
    for line in lines:
        tokens = _nbstripout_tokens(line, diff_is_nbstripout)
        if not tokens:
            kept.append(line)
            continue
        changed += 1
        first = len(kept) if first < 0 else first
        pattern, *rest = line.split()
        rest = [word for word in rest if word not in tokens]
        if rest:
            kept.append(" ".join([pattern, *rest]) + "\n")
    return kept, changed, first


def _config_file(location: Location) -> str:
    """The configuration file git writes for `location`."""
    if location == "local":
        found = _git(["rev-parse", "--git-path", "config"], check=False).stdout.strip()
        return os.path.abspath(found) if found else ".git/config"
    origin = _git(
        ["config", _config_option(location), "--show-origin", "--get", f"{FILTER_SECTION}.process"],
        check=False,
    ).stdout
    return origin.split("\t", 1)[0].removeprefix("file:") or f"the {location} git config"


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as file:
        file.write("".join(lines))


def install(
    location: Location = "local",
    attributes: str | None = None,
    python: str | None = None,
    *,
    verbose: bool = False,
) -> int:
    """Configure the filter and diff driver and add the attribute lines; 0 on success.

    An nbstripout set-up at the same location is replaced: its attribute lines leave the
    attributes file written here (and, for a repository, `.git/info/attributes`, which would
    override it), then its `filter.nbstripout` and `diff.ipynb` sections leave the same git
    configuration file. A `.gitattributes` that is not the file written here is a project
    file: it is left alone (ours override it) and, with `verbose`, named. With `verbose`, what
    was configured is printed; without, install is as quiet as nbstripout's.
    """
    try:
        attrfile = attributes_file(location, attributes)
        before = _config_values(location)
        nbstripout = _nbstripout_config(location)
        wanted = commands(python)
        for key, value in wanted.items():
            _git(["config", _config_option(location), key, value])
        files = [attrfile]
        if location == "local" and attributes:
            # info/attributes overrides every other file: nbstripout's lines there would win
            info = attributes_file("local")
            if os.path.abspath(info) != os.path.abspath(attrfile):
                files.append(info)
    except GitUnavailable:
        print("Installation failed: git is not on path!", file=sys.stderr)
        return 1
    except (NotARepository, subprocess.CalledProcessError):
        print("Installation failed: not a git repository!", file=sys.stderr)
        return 1
    diff_is_nbstripout = f"{NBSTRIPOUT_DIFF}.textconv" in nbstripout or "nbstripout" in (
        _git(["config", "--get", f"{NBSTRIPOUT_DIFF}.textconv"], check=False).stdout
    )
    added: list[str] = []
    replaced: list[tuple[Path, int]] = []
    for path in files:
        lines = _read_lines(path)
        kept, changed, first = _without_nbstripout(lines, diff_is_nbstripout)
        if path == attrfile:
            present = {line.strip() for line in kept}
            added = [line for line in ATTRIBUTE_LINES if line not in present]
            at = first if first >= 0 else len(kept)
            if at and not kept[at - 1].endswith("\n"):
                kept[at - 1] += "\n"
            kept[at:at] = [line + "\n" for line in added]
        if kept == lines:
            continue
        try:
            _write_lines(path, kept)
        except PermissionError:
            print(f"Installation failed: could not write to {path}", file=sys.stderr)
            if location != "local":
                print("Did you forget to sudo?", file=sys.stderr)
            return 1
        if changed:
            replaced.append((path, changed))
    # Only now that no attribute line names it any more: nbstripout's configuration.
    sections = sorted({key.rsplit(".", 1)[0] for key in nbstripout})
    for section in sections:
        _git(["config", _config_option(location), "--remove-section", section], check=False)
    if verbose:
        _report_install(
            location,
            attrfile,
            unchanged=before == wanted and not added and not replaced and not sections,
            replaced=replaced,
            sections=sections,
            nbstripout=nbstripout,
            diff_is_nbstripout=diff_is_nbstripout,
        )
    return 0


def _report_install(
    location: Location,
    attrfile: Path,
    *,
    unchanged: bool,
    replaced: list[tuple[Path, int]],
    sections: list[str],
    nbstripout: dict[str, str],
    diff_is_nbstripout: bool,
) -> None:
    """Say what `install` configured, and what of nbstripout's it replaced."""
    config_file = _config_file(location)
    state = "is already installed (nothing changed)" if unchanged else "installed"
    print(f"jupyter-repro git filter {state} {_where(location)}")
    print(f"  git config (--{location}): {config_file}")
    print(f"    {FILTER_SECTION}: process, clean, smudge = cat, required = true")
    print(f"    {DIFF_SECTION}: textconv, cachetextconv = true")
    print(f"  attributes: {os.path.abspath(attrfile)}")
    for line in ATTRIBUTE_LINES:
        print(f"    {line}")
    if sections or replaced:
        print("  replaced nbstripout:")
        if sections:
            names = " and ".join(f'[{s.split(".")[0]} "{s.split(".", 1)[1]}"]' for s in sections)
            print(f"    removed {names} from {config_file}")
        for path, count in replaced:
            lines = "line" if count == 1 else "lines"
            print(f"    replaced its {count} attribute {lines} in {os.path.abspath(path)}")
        if nbstripout.get(f"{NBSTRIPOUT_FILTER}.extrakeys", "").strip():
            print(
                f"    its {NBSTRIPOUT_FILTER}.extrakeys "
                f"({nbstripout[f'{NBSTRIPOUT_FILTER}.extrakeys'].strip()}) is not read by "
                "jupyter-repro: list them in extra_keys of [tool.jupyter_repro.strip] in "
                "pyproject.toml"
            )
        print("    (`jupyter repro git uninstall` does not bring nbstripout back;")
        print("    `nbstripout --install` does)")
    if location == "local":
        for note in _local_leftovers(attrfile, diff_is_nbstripout):
            print(f"  {note}")


def _local_leftovers(attrfile: Path, diff_is_nbstripout: bool) -> list[str]:
    """Notes on a project `.gitattributes` that still sets nbstripout, and on any attribute
    line that wins over ours for notebooks."""
    notes = []
    shared = _shared_attributes()
    if (
        shared is not None
        and os.path.abspath(shared) != os.path.abspath(attrfile)
        and _without_nbstripout(_read_lines(shared), diff_is_nbstripout)[1]
    ):
        notes.append(
            f"note: {shared} (a project file, left as is) still names nbstripout; "
            f"{os.path.abspath(attrfile)} overrides it in this clone. To switch the project, "
            "run `jupyter repro git install --attributes .gitattributes` and commit it."
        )
    answer = _git(["check-attr", "filter", "diff", "--", "notebook.ipynb"], check=False).stdout
    for line in answer.splitlines():
        attribute, _, value = line.partition(": ")[2].partition(": ")
        if value != DRIVER:
            notes.append(
                f"warning: git applies {attribute}={value} to notebooks, not {DRIVER}: another "
                "attributes line wins (see `git check-attr -a -- notebook.ipynb`)"
            )
    return notes


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
        blocks = [(found.attributes_file, found.attribute_lines)]
        if location == "local":
            # Lines shared with the project count as well (`git check-attr` said so).
            shared = _shared_attributes()
            if shared is not None and os.path.abspath(shared) != os.path.abspath(blocks[0][0]):
                ours = tuple(line.strip() for line in _read_lines(shared) if f"={DRIVER}" in line)
                if ours:
                    blocks = [block for block in blocks if block[1]]
                    blocks.append((str(shared), ours))
        for name, lines in blocks:
            print(f"\nAttributes ({name}):")
            for line in lines:
                print(f"  {line}")
        if location == "local":
            for note in _local_leftovers(Path(found.attributes_file), diff_is_nbstripout=False):
                print(f"\n{note}")
    return 0


def _shared_attributes() -> Path | None:
    """The `.gitattributes` at the top of the work tree (None in a bare repository)."""
    top = _git(["rev-parse", "--show-toplevel"], check=False).stdout.strip()
    return Path(top, ".gitattributes") if top else None
