"""The file-system side of a restore: claiming a target, history, registry, removal.

Every function here is synchronous and may touch many files; the restore service calls them
through `asyncio.to_thread` so the server's event loop keeps answering.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import re
import shutil
import socket
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..atomic import current_umask, replace_file
from ..environments.prefix import RESTORE_MARKER

# After a cancelled install, rattler's worker threads may still finish a file or two inside
# the prefix; removal is repeated until the folder stays gone for this long.
_SETTLE_SECONDS = 0.2
_SETTLE_LIMIT_SECONDS = 10.0


# -- names and prefixes ----------------------------------------------------------------------

# A name becomes one folder name (POSIX allows 255 bytes per path component) and part of
# kernel names (`conda-env-<name>-py`, nb_conda_kernels' clash suffixes `.conda-`/`-2`),
# which become kernelspec folder names too. 100 characters and at most 200 bytes of UTF-8
# keep all of those under 255 bytes, and are far longer than any name a person types.
MAX_NAME_CHARS = 100
MAX_NAME_BYTES = 200
# conda-build pads the prefix it builds binaries in to a 255-character placeholder, and an
# installer can only write a prefix into a binary no longer than that placeholder (conda's
# PaddingError): a longer prefix would fail late, in the middle of the install.
MAX_PREFIX_BYTES = 255

# Control (Cc: C0, DEL, C1 with NEL), format (Cf: bidirectional overrides, zero-width
# characters), line and paragraph separators (Zl, Zp) and lone surrogates (Cs: bytes that
# are not UTF-8). A line break forges lines in environments.txt and in logs; the others
# make a path look like another one, or cannot be written as text at all.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_CHARACTER_NAMES = {
    "\x00": "NUL",
    "\t": "tab",
    "\n": "line feed",
    "\r": "carriage return",
    "\x7f": "DEL",
    "\x85": "next line",
    "\u2028": "line separator",
    "\u2029": "paragraph separator",
}


def _describe_character(ch: str) -> str:
    name = _CHARACTER_NAMES.get(ch) or unicodedata.name(ch, "").lower()
    return f"U+{ord(ch):04X} {name}".rstrip()


def text_problem(text: str, what: str) -> str | None:
    """Why `text` (a name or prefix; `what` says which) holds characters no path should."""
    bad = sorted({ch for ch in text if unicodedata.category(ch) in _UNSAFE_CATEGORIES})
    if not bad:
        return None
    shown = ", ".join(_describe_character(ch) for ch in bad[:5])
    return (
        f"{what} contains control characters ({shown}); only printable characters and spaces "
        "are allowed, no line breaks, tabs, NUL or other control or formatting characters"
    )


def name_length_problem(name: str) -> str | None:
    """Why `name` is too long for an environment name (see `MAX_NAME_CHARS`)."""
    size = len(name.encode("utf-8", errors="surrogatepass"))
    if len(name) <= MAX_NAME_CHARS and size <= MAX_NAME_BYTES:
        return None
    return (
        f"it is {len(name)} characters ({size} bytes) long; a name may have at most "
        f"{MAX_NAME_CHARS} characters and {MAX_NAME_BYTES} bytes in UTF-8"
    )


def prefix_length_problem(prefix: str) -> str | None:
    """Why `prefix` is too long for conda packages (see `MAX_PREFIX_BYTES`)."""
    size = len(prefix.encode("utf-8", errors="surrogatepass"))
    if size <= MAX_PREFIX_BYTES:
        return None
    return (
        f"it is {size} bytes long; a prefix may have at most {MAX_PREFIX_BYTES} bytes (UTF-8), "
        "the length of the placeholder conda packages are built with"
    )


def shorten_name(name: str) -> str:
    """`name` cut to the length `name_length_problem` accepts."""
    cut = name[:MAX_NAME_CHARS]
    while len(cut.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
        cut = cut[:-1]
    return cut


def is_within_any(target: Path, roots: Iterable[Path]) -> bool:
    """`target` lies strictly inside one of `roots`, comparing real paths.

    The real path of `target` resolves its existing part, so neither `..` nor a symlink
    (to a folder, or a dangling one) leads out of a root; `~` in a root is expanded.
    """
    real = os.path.realpath(target)
    for root in roots:
        base = os.path.realpath(os.path.expanduser(root))
        if real != base and os.path.commonpath([base, real]) == base:
            return True
    return False


# -- file-system errors ----------------------------------------------------------------------

_DISK_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on device", "free some space there"),
    errno.EDQUOT: ("disk quota exceeded", "free some space there"),
    errno.EROFS: ("read-only file system", "use a folder on a writable file system"),
    errno.EACCES: ("permission denied", "use a folder you may write to"),
    errno.EPERM: ("operation not permitted", "use a folder you may write to"),
}
# How engines quote the error of the system call that failed: rattler (Rust) writes
# `No space left on device (os error 28)`, Python and so pip `[Errno 28] No space ...`.
_QUOTED_ERRNO = re.compile(r"\(os error (\d+)\)|\[Errno (\d+)\]")


def disk_errno(error: BaseException) -> tuple[int, str | None] | None:
    """The errno (and file, when known) of a full, read-only or forbidden file system
    behind `error`: an OSError's own, or one an engine quotes in its message."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _DISK_ERRORS:
            filename = seen.filename
            return seen.errno, os.fsdecode(filename) if filename is not None else None
        seen = seen.__cause__
    for match in _QUOTED_ERRNO.finditer(str(error)):
        number = int(match.group(1) or match.group(2))
        if number in _DISK_ERRORS:
            return number, None
    return None


def disk_problem(error: BaseException, target: Path, doing: str) -> str | None:
    """A message for a disk error behind `error` while `doing` something to `target`.

    E.g. `no space left on device at /x/envs/a (while installing the packages); free some
    space there, or restore into another envs dir or prefix`. None when `error` is not one.
    """
    found = disk_errno(error)
    if found is None:
        return None
    number, filename = found
    what, advice = _DISK_ERRORS[number]
    where = filename or os.fspath(target)
    return (
        f"{what} at {where} (while {doing}); {advice}, or restore into another envs dir or prefix"
    )


class ClaimRefused(Exception):
    """The target could not be claimed; `busy` tells a running restore from an environment."""

    def __init__(self, target: Path, busy: bool) -> None:
        super().__init__(str(target))
        self.target = target
        self.busy = busy


class ClaimMoved(Exception):
    """The folder was created somewhere else than `target` says: a folder on the way was
    replaced by a symlink after the target was checked. Nothing is left there."""


def claim_target(target: Path) -> None:
    """Create `target` and its restore marker, failing if anything (or anyone) got there first.

    `mkdir` of the prefix and `O_EXCL` on the marker are atomic on local file systems, so two
    restores, even in two processes, cannot both succeed. `target` is expected to be a real
    path (no symlinks): if it no longer is once created, the folder is removed (ClaimMoved),
    so a check of where it lies cannot be dodged by swapping a folder for a symlink.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Private until the restore is done (`release_marker`): installers keep archives'
        # file modes, world-writable ones included, until they are corrected (a shared
        # package cache's restores correct them); nobody else may open such a file meanwhile.
        target.mkdir(mode=0o700)
    except FileExistsError:
        raise ClaimRefused(target, busy=os.path.lexists(target / RESTORE_MARKER)) from None
    if os.path.realpath(target) != os.path.abspath(target):
        shutil.rmtree(target, ignore_errors=True)
        raise ClaimMoved(target)
    # The folder and its marker are one unit: if the marker cannot be written whole (a full
    # file system fails the write, or only the close that flushes it), the folder made above
    # goes too, so no empty marker keeps the name busy until the server restarts.
    try:
        (target / "conda-meta").mkdir()
        fd = os.open(target / RESTORE_MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as stream:
            owner = {"pid": os.getpid(), "host": socket.gethostname(), "at": time.time()}
            json.dump(owner, stream)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def release_marker(target: Path) -> None:
    """The restore finished: the prefix becomes a normal environment, with the mode a folder
    made now would have."""
    (target / RESTORE_MARKER).unlink(missing_ok=True)
    os.chmod(target, 0o777 & ~current_umask())


def remove_prefix(target: Path, *, settle: bool = False) -> None:
    """Remove a partial prefix; with `settle`, repeat until it stays gone for a moment.

    Settling is for a prefix an interrupted rattler install was writing into (see
    `_SETTLE_SECONDS`); anything else is removed once.
    """
    deadline = time.monotonic() + _SETTLE_LIMIT_SECONDS
    while True:
        shutil.rmtree(target, ignore_errors=True)
        if not settle:
            return
        time.sleep(_SETTLE_SECONDS)
        if not os.path.lexists(target) or time.monotonic() > deadline:
            return


def _marker_owner_alive(prefix: Path) -> bool:
    """The restore that wrote this marker still runs (same host, live pid, not this process)."""
    try:
        owner = json.loads((prefix / RESTORE_MARKER).read_text())
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_leftovers(
    envs_dirs: Iterable[Path], listed: Iterable[Path], active: Iterable[Path]
) -> list[Path]:
    """Prefixes carrying the restore marker whose restore is not running any more."""
    candidates: list[Path] = []
    for envs_dir in envs_dirs:
        try:
            entries = list(os.scandir(envs_dir))
        except OSError:
            continue
        candidates.extend(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
    candidates.extend(listed)
    skip = {Path(os.path.realpath(p)) for p in active}
    found: list[Path] = []
    for prefix in candidates:
        real = Path(os.path.realpath(prefix))
        if real in skip or real in found or not os.path.lexists(real / RESTORE_MARKER):
            continue
        if not _marker_owner_alive(real):
            found.append(real)
    return found


def registry_path(home: Path) -> Path:
    """conda's list of environments, `~/.conda/environments.txt`."""
    return home / ".conda" / "environments.txt"


def registered_prefixes(home: Path) -> list[Path]:
    """The prefixes listed in `environments.txt` (missing file: none)."""
    try:
        text = registry_path(home).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [Path(line.strip()) for line in text.splitlines() if line.strip()]


def register_prefix(home: Path, prefix: Path) -> None:
    """Append `prefix` to `environments.txt` as conda does, unless it is listed already.

    A path with a line break or another control character is refused (ValueError): one
    line per prefix is the file's whole format, and such a path would forge lines.
    """
    problem = text_problem(os.fspath(prefix), "the prefix")
    if problem is not None:
        raise ValueError(f"not registering {os.fspath(prefix)!r} in environments.txt: {problem}")
    path = registry_path(home)
    line = os.fspath(prefix)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    # As conda compares (`register_env`): the normalized path against each line as written.
    wanted = os.path.normpath(line)
    if any(
        os.path.normpath(entry.strip()) == wanted for entry in text.splitlines() if entry.strip()
    ):
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One append of one line: concurrent writers (conda itself, another server)
        # interleave whole lines rather than overwrite each other's list.
        with open(path, "a+b") as stream:
            end = stream.seek(0, os.SEEK_END)
            if end > 0:
                stream.seek(end - 1)
                if stream.read(1) != b"\n":
                    line = "\n" + line
            stream.write(f"{line}\n".encode())
    except OSError as error:
        # A failed flush at close names no file; the caller's message should.
        if error.filename is None:
            error.filename = os.fspath(path)
        raise


def write_history(
    prefix: Path, *, cmd: str, added: Sequence[str], update_specs: Sequence[str]
) -> None:
    """Append one transaction to `conda-meta/history` in conda's own format.

    rattler leaves the file empty; without this block `conda env export --from-history` and
    our portable export would not know what the user asked for.
    """
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"==> {now} <==", f"# cmd: {cmd}"]
    lines.extend(f"+{dist}" for dist in added)
    lines.append(f"# update specs: {list(update_specs)!r}")
    with open(prefix / "conda-meta" / "history", "a", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")


def write_env_vars(prefix: Path, variables: Mapping[str, str]) -> None:
    """Set `variables` in `conda-meta/state`, as `conda env config vars set` does.

    conda's format: a JSON object whose `env_vars` maps names to values (other keys, and
    variables set before, are kept); activation and our launcher read it from there.
    Replaced atomically: a reader sees the old state or the new one.
    """
    path = prefix / "conda-meta" / "state"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        state = {}
    if not isinstance(state, dict):
        state = {}
    env_vars = state.get("env_vars")
    env_vars = dict(env_vars) if isinstance(env_vars, dict) else {}
    env_vars.update(variables)
    state["env_vars"] = env_vars
    replace_file(path, json.dumps(state, ensure_ascii=False))


def is_writable_dir(path: Path) -> bool:
    """`path` is (or could be created as) a folder this process may write into."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)
