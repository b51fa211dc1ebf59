"""The file-system side of a restore: claiming a target, history, registry, removal.

Every function here is synchronous and may touch many files; the restore service calls them
through `asyncio.to_thread` so the server's event loop keeps answering.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import socket
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from .prefix import RESTORE_MARKER

# After a cancelled install, rattler's worker threads may still finish a file or two inside
# the prefix; removal is repeated until the folder stays gone for this long.
_SETTLE_SECONDS = 0.2
_SETTLE_LIMIT_SECONDS = 10.0


class ClaimRefused(Exception):
    """The target could not be claimed; `busy` tells a running restore from an environment."""

    def __init__(self, target: Path, busy: bool) -> None:
        super().__init__(str(target))
        self.target = target
        self.busy = busy


def claim_target(target: Path) -> None:
    """Create `target` and its restore marker, failing if anything (or anyone) got there first.

    `mkdir` of the prefix and `O_EXCL` on the marker are atomic on local file systems, so two
    restores, even in two processes, cannot both succeed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.mkdir()
    except FileExistsError:
        raise ClaimRefused(target, busy=os.path.lexists(target / RESTORE_MARKER)) from None
    try:
        (target / "conda-meta").mkdir()
        fd = os.open(target / RESTORE_MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except OSError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    with os.fdopen(fd, "w") as stream:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "at": time.time()}, stream)


def release_marker(target: Path) -> None:
    """The restore finished: the prefix becomes a normal environment."""
    (target / RESTORE_MARKER).unlink(missing_ok=True)


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
    """Append `prefix` to `environments.txt` as conda does, unless it is listed already."""
    path = registry_path(home)
    if prefix in registered_prefixes(home):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # One append of one line: concurrent writers (conda itself, another server) interleave
    # whole lines rather than overwrite each other's list.
    with open(path, "a", encoding="utf-8") as stream:
        if stream.tell() > 0 and not path.read_bytes().endswith(b"\n"):
            stream.write("\n")
        stream.write(f"{prefix}\n")


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


def is_writable_dir(path: Path) -> bool:
    """`path` is (or could be created as) a folder this process may write into."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)
