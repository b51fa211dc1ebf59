"""Child processes of a restore (pip, conda-family CLIs): argument lists, streamed output, kill.

Never a shell: every command is an argument list given to `asyncio.create_subprocess_exec`.
A child runs in a session of its own so that cancelling kills it with everything it started
(pip's build backends, conda's helpers), not only the direct child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# A child's line longer than this is cut in the log (progress bars redraw on one line).
_MAX_LINE = 2000
# How much of a failed child's output the error message quotes.
_TAIL_LINES = 20


@dataclass(frozen=True)
class ProcessOutcome:
    """How a child ended and what it printed (stdout and stderr merged, in order)."""

    returncode: int
    lines: tuple[str, ...]

    def tail(self) -> str:
        """The last lines of output, for an error message."""
        return "\n".join(self.lines[-_TAIL_LINES:])


def _kill_group(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()


async def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    on_line: Callable[[str], None],
    cwd: str | None = None,
) -> ProcessOutcome:
    """Run `argv`, passing each output line to `on_line`; killed if the caller is cancelled."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        while True:
            raw = await process.stdout.readline()
            if not raw:
                break
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")[:_MAX_LINE]
            lines.append(line)
            on_line(line)
        returncode = await process.wait()
    except BaseException:
        # Cancelled (or failed while reading): the child must not outlive the restore, or it
        # would keep writing into a prefix that is being removed.
        _kill_group(process)
        with contextlib.suppress(Exception):
            await asyncio.shield(process.wait())
        raise
    return ProcessOutcome(returncode, tuple(lines))
