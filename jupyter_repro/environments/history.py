"""`conda-meta/history`: what the user asked for, as `conda env export --from-history` sees it.

conda appends one block per transaction::

    ==> 2024-01-01 12:00:00 <==
    # cmd: conda install -n work numpy "scipy>=1"
    # conda version: 24.11.3
    -conda-forge/linux-64::numpy-1.25.0-py311h_0
    +conda-forge/linux-64::numpy-1.26.4-py311h_0
    # update specs: ['numpy', "scipy[version='>=1']"]

Replaying the `update`/`remove`/`neutered` specs of every block gives the specs the user
still asks for. Condas before 4.4 wrote no spec lines (or `# install specs: a, b` in a
comma-separated form); for those the specs come from the `# cmd:` line's arguments. The file
is the user's, edited by several tools over years: unknown and damaged lines are skipped.
"""

from __future__ import annotations

import ast
import logging
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .matchspec import spec_name

log = logging.getLogger(__name__)

_HEADER = re.compile(r"==>\s*(.*?)\s*<==")
_SPECS_LINE = re.compile(r"#\s*(\w+)\s+specs\s*:\s*(.*)")
# Which list a `# <action> specs:` line feeds; conda <4.4 wrote `install`/`create` specs.
_UPDATE_ACTIONS = frozenset({"update", "install", "create", "upgrade"})
_REMOVE_ACTIONS = frozenset({"remove", "uninstall"})

# Sub-commands of conda, mamba and micromamba whose positional arguments are package specs.
_INSTALLING_COMMANDS = frozenset({"install", "create", "update", "upgrade"})
_REMOVING_COMMANDS = frozenset({"remove", "uninstall"})
# Options of those commands that take a value as the next argument; every other option
# is a flag. `--file` is here too: the specs in that file were never written down.
# (`-f` is not: in the condas that wrote no spec lines it meant `--force`.)
_OPTIONS_WITH_VALUE = frozenset(
    {
        "-n",
        "--name",
        "-p",
        "--prefix",
        "-c",
        "--channel",
        "--file",
        "--clone",
        "--revision",
        "--repodata-fn",
        "--subdir",
        "--platform",
        "--solver",
        "--experimental-solver",
        "--experimental",
        "--channel-alias",
        "-r",
        "--root-prefix",
        "--rc-file",
        "--category",
    }
)
# A piece of an old comma-separated specs string that continues the previous spec's
# version range: `numpy >=1,<2` splits into `numpy >=1` and `<2`.
_VERSION_CONTINUATION = re.compile(r"[<>=!~0-9*]")


@dataclass
class HistoryEntry:
    """One `==> date <==` block of a history file."""

    date: str | None
    """The header's text; None for lines found before the first header."""
    cmd: str | None = None
    conda_version: str | None = None
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    update_specs: list[str] = field(default_factory=list)
    remove_specs: list[str] = field(default_factory=list)
    neutered_specs: list[str] = field(default_factory=list)

    @property
    def has_spec_lines(self) -> bool:
        """The block records its request in `# ... specs:` lines (conda 4.4 and later)."""
        return bool(self.update_specs or self.remove_specs or self.neutered_specs)


def _parse_specs_value(value: str) -> list[str]:
    """The specs of a `# ... specs:` line: a Python list literal, or (conda <4.4) a
    comma-separated string."""
    value = value.strip()
    if not value:
        return []
    if value.startswith(("[", "(", "{")):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            log.debug("history: unreadable specs list %.80r", value)
            return []
        if not isinstance(parsed, (list, tuple)):
            return []
        return [s.strip() for s in parsed if isinstance(s, str) and s.strip()]
    specs: list[str] = []
    for piece in value.split(","):
        piece = piece.strip()
        if not piece:
            continue
        if specs and _VERSION_CONTINUATION.match(piece):
            specs[-1] += "," + piece
        else:
            specs.append(piece)
    return specs


def parse_history(text: str) -> list[HistoryEntry]:
    """Every block of a history file's text, in file order; damaged lines are skipped."""
    entries: list[HistoryEntry] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        header = _HEADER.fullmatch(line)
        if header:
            entries.append(HistoryEntry(date=header.group(1)))
            continue
        if not entries:
            # Some hand-edited or truncated files start mid-block: keep what they say.
            entries.append(HistoryEntry(date=None))
        entry = entries[-1]
        if line.startswith("#"):
            _parse_comment(entry, line)
        elif line.startswith("+"):
            entry.added.append(line[1:])
        elif line.startswith("-"):
            entry.removed.append(line[1:])
        else:
            log.debug("history: skipping line %.80r", line)
    return entries


def _parse_comment(entry: HistoryEntry, line: str) -> None:
    body = line[1:].strip()
    if body.startswith("cmd:"):
        entry.cmd = body[len("cmd:") :].strip()
        return
    if body.startswith("conda version:"):
        entry.conda_version = body[len("conda version:") :].strip()
        return
    m = _SPECS_LINE.fullmatch(line)
    if not m:
        return
    action, specs = m.group(1).lower(), _parse_specs_value(m.group(2))
    if action in _UPDATE_ACTIONS:
        entry.update_specs += specs
    elif action in _REMOVE_ACTIONS:
        entry.remove_specs += specs
    elif action == "neutered":
        entry.neutered_specs += specs


def read_history(path: Path) -> list[HistoryEntry]:
    """The blocks of the history file at `path`; none when it is missing or unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        if not isinstance(exc, FileNotFoundError):
            log.debug("cannot read %s: %s", path, exc)
        return []
    return parse_history(text)


def specs_from_cmd(cmd: str) -> tuple[list[str], list[str]]:
    """`(update_specs, remove_specs)` of an old block's `# cmd:` line (no spec lines).

    Only the positional arguments of an install/create/update or remove command are specs;
    options (`-n NAME`, `-c CH`, `--file F`, `--yes`, `--name=x`) are skipped, and other
    commands (`conda env create -f x`, `conda update --all`) request nothing new.
    """
    try:
        args = shlex.split(cmd)
    except ValueError:  # an unbalanced quote in a hand-edited line
        args = cmd.split()
    command: str | None = None
    specs: list[str] = []
    skip_value = False
    # args[0] is the executable (`conda`, `/opt/conda/bin/mamba`, `conda-script.py`).
    for arg in args[1:]:
        if skip_value:
            skip_value = False
            continue
        if arg.startswith("-"):
            skip_value = "=" not in arg and arg in _OPTIONS_WITH_VALUE
            continue
        if command is None:
            command = arg.lower()
            if command not in _INSTALLING_COMMANDS | _REMOVING_COMMANDS:
                return [], []
            continue
        specs.append(arg)
    if command in _INSTALLING_COMMANDS:
        return specs, []
    if command in _REMOVING_COMMANDS:
        return [], specs
    return [], []


def _requests(entry: HistoryEntry) -> tuple[list[str], list[str], list[str]] | None:
    """`(update, remove, neutered)` specs of a block; None when it says nothing about them."""
    if entry.has_spec_lines:
        return entry.update_specs, entry.remove_specs, entry.neutered_specs
    if entry.cmd:
        update, remove = specs_from_cmd(entry.cmd)
        if update or remove:
            return update, remove, []
    return None


def requested_specs(entries: Iterable[HistoryEntry]) -> dict[str, str] | None:
    """Package name -> the spec the user last asked for it with, in order of first request.

    Replays every block as conda does: `remove` specs drop a name, `update` specs add or
    replace it, `neutered` specs (conda relaxing a pin it had to change) replace it last.
    None when no block records a request at all (an empty history, as rattler leaves it),
    so that callers can fall back to the records' own requested specs.
    """
    specs: dict[str, str] = {}
    any_request = False
    for entry in entries:
        request = _requests(entry)
        if request is None:
            continue
        any_request = True
        update, remove, neutered = request
        for spec in remove:
            name = spec_name(spec)
            if name is not None:
                specs.pop(name, None)
        for spec in (*update, *neutered):
            name = spec_name(spec)
            if name is not None:
                specs[name] = spec
    return specs if any_request else None
