"""Run a notebook's code cells again on a kernel, one by one, with nbclient.

The notebook is a parsed dict and stays as it is: cells run from a converted copy, and no file
is written. Each code cell yields a `CellRun` (its fresh outputs, its error, how long it took),
passed to `on_cell` as soon as the cell is done, so a caller can report progress per cell.

Errors do not stop the run (nbclient's `allow_errors`): every cell is run, and the error is
recorded with the cell. A cell that runs longer than `timeout` seconds is interrupted (as
nbclient's `interrupt_on_timeout` does) and recorded as `timeout`; the run then goes on with
the next cell, which sees the kernel as the interrupted cell left it. When the kernel does not
answer within `RECOVERY_SECONDS` after that interrupt (a cell stuck in code that ignores
SIGINT), or when the kernel dies, the run stops: the remaining code cells are `not_run`, with
the reason, and the kernel is killed.

Cancelling the coroutine kills the kernel, lets nbclient's own tasks end, then re-raises the
cancellation: no kernel process outlives a cancelled verify.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from jupyter_client.kernelspec import KernelSpecManager
    from nbformat import NotebookNode

CellOutcome = Literal["ok", "error", "timeout", "skipped", "not_run"]

TIMEOUT_ENAME = "jupyter_repro.CellTimeout"
"""The `ename` nbclient reports for a cell interrupted on its timeout (our own, so that no
exception a cell raises can be mistaken for it)."""

RECOVERY_SECONDS = 10.0
"""How long a kernel interrupted on a cell's timeout may take to answer again."""

SKIP_EXECUTION_TAG = "skip-execution"
"""The tag nbclient and papermill never run: such a cell is `skipped` here as well."""

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The line IPython points at in a traceback frame: `----> 2     return 1/x`.
_ARROW = re.compile(r"^-+>")


# nbclient logs each timeout and interrupt at error level; a CellRun reports them instead.
_NBCLIENT_LOG = logging.getLogger(f"{__name__}.nbclient")
if _NBCLIENT_LOG.level == logging.NOTSET:
    _NBCLIENT_LOG.setLevel(logging.CRITICAL)


class ExecuteError(Exception):
    """The notebook cannot be run: its kernel is unknown or does not start."""


@dataclass(frozen=True)
class CellError:
    """What a cell raised (ANSI colours removed from the traceback)."""

    ename: str
    evalue: str
    traceback: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """`ZeroDivisionError: division by zero`."""
        return f"{self.ename}: {self.evalue}" if self.evalue else self.ename

    @property
    def where(self) -> str | None:
        """The innermost frame of an IPython traceback in one line, `Cell In[3], line 2, in
        f(x): ----> 2     return 1/x`; None without one."""
        for entry in reversed(self.traceback):
            lines = [line.strip() for line in entry.splitlines() if line.strip()]
            arrows = [line for line in lines if _ARROW.match(line)]
            if arrows:
                return f"{lines[0]}: {arrows[-1]}" if lines[0] != arrows[-1] else arrows[-1]
        return None


@dataclass
class CellRun:
    """One code cell as it ran this time."""

    index: int
    """Its position among all cells of the notebook (as the notebook file has them)."""
    cell_id: str | None
    outcome: CellOutcome
    outputs: list[dict[str, Any]] = field(default_factory=list)
    """The fresh outputs, as nbformat writes them (streams of one name merged, `\\r` redraws
    reduced to their last state)."""
    duration: float = 0.0
    error: CellError | None = None
    """What the cell raised; for a timeout, `TIMEOUT_ENAME` and "timed out after N s"."""
    note: str | None = None
    """Why a cell was not run, or what happened to the kernel."""


def _clean(text: str) -> str:
    return _ANSI.sub("", text)


def _error_of(content: Mapping[str, Any]) -> CellError:
    traceback = content.get("traceback") or []
    return CellError(
        ename=str(content.get("ename") or "Error"),
        evalue=str(content.get("evalue") or ""),
        traceback=tuple(_clean(str(line)) for line in traceback),
    )


def format_seconds(seconds: float) -> str:
    """`5`, `0.5`, `2.25` (no trailing zeros) for messages."""
    return f"{seconds:g}"


def notebook_node(notebook: Mapping[str, Any]) -> NotebookNode:
    """A version-4 NotebookNode copy of a parsed notebook, multi-line strings joined."""
    import nbformat
    from nbformat.v4.rwbase import rejoin_lines

    data = copy.deepcopy(dict(notebook))
    major = data.get("nbformat", 4)
    node = nbformat.from_dict(data)
    if isinstance(major, int) and major < 4:
        from nbformat.v3.rwbase import rejoin_lines as rejoin_v3

        node = nbformat.convert(rejoin_v3(node), 4)
    node = rejoin_lines(node)
    for cell in node.cells:
        cell.setdefault("metadata", nbformat.NotebookNode())
        if cell.get("cell_type") == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("source", "")
    return node


def _looks_like_ipykernel(argv: list[str]) -> bool:
    return any("ipykernel" in str(part) for part in argv)


async def execute_notebook(
    notebook: Mapping[str, Any],
    *,
    kernel_name: str,
    kernel_spec_manager: KernelSpecManager,
    cwd: Path,
    timeout: float | None = None,
    skip: Callable[[int, Mapping[str, Any]], bool] | None = None,
    environ: Mapping[str, str] | None = None,
    on_cell_start: Callable[[int, str | None], None] | None = None,
    on_cell: Callable[[CellRun], None] | None = None,
    on_started: Callable[[], None] | None = None,
    startup_timeout: float = 60.0,
    log: logging.Logger | None = None,
) -> list[CellRun]:
    """Run every code cell of `notebook` on kernel `kernel_name` in folder `cwd`.

    `skip(index, cell)` says which cells are not run (they are reported `skipped`);
    `timeout` is per cell, in seconds (None: no limit); `environ` is the kernel's environment
    (default: this process's); `log` is where nbclient logs (default: a quiet logger).
    `on_started()` is called once the kernel is ready, `on_cell_start(index, id)` before a
    cell is sent to it and `on_cell(run)` after every code cell. Returns one `CellRun` per
    code cell, in order. Raises `ExecuteError` when the kernel cannot be started.
    """
    from jupyter_client.kernelspec import NoSuchKernel
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    log = log or _NBCLIENT_LOG
    node = notebook_node(notebook)
    try:
        # Off the loop: a conda kernel spec manager looks at the environments on disk.
        spec = await asyncio.to_thread(kernel_spec_manager.get_kernel_spec, kernel_name)
    except NoSuchKernel:
        raise ExecuteError(
            f"no kernel named {kernel_name!r} here (see `jupyter repro kernels list` and "
            "`jupyter kernelspec list`)"
        ) from None
    km = AsyncKernelManager(kernel_name=kernel_name, kernel_spec_manager=kernel_spec_manager)
    limit = timeout if timeout is not None and timeout > 0 else None
    client = NotebookClient(
        node,
        km=km,
        kernel_name=kernel_name,
        allow_errors=True,
        timeout_func=lambda cell: limit,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": TIMEOUT_ENAME,
            "evalue": f"timed out after {format_seconds(limit or 0)} s",
            "traceback": [],
        },
        startup_timeout=int(startup_timeout),
        record_timing=False,
        coalesce_streams=True,
        log=log,
    )
    if _looks_like_ipykernel(list(spec.argv)):
        # No history database: runs stay independent, and concurrent kernels never share one.
        client.extra_arguments = [*client.extra_arguments, "--HistoryManager.hist_file=:memory:"]
    replies: dict[int, dict[str, Any]] = {}

    def remember(cell: Any, cell_index: int, execute_reply: Any) -> None:
        if isinstance(execute_reply, dict):
            replies[cell_index] = execute_reply

    client.on_cell_executed = remember
    env = dict(os.environ if environ is None else environ)
    runs: list[CellRun] = []
    stop_reason: str | None = None
    # Shut down politely only a kernel that finished the run; kill any other.
    graceful = False
    try:
        try:
            await client.async_start_new_kernel(cwd=str(cwd), env=env)
            await client.async_start_new_kernel_client()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise ExecuteError(f"the kernel {kernel_name!r} did not start: {error}") from error
        if on_started is not None:
            on_started()
        for index, cell in enumerate(node.cells):
            if cell.get("cell_type") != "code":
                continue
            cell_id = cell.get("id") if isinstance(cell.get("id"), str) else None
            tags = cell.get("metadata", {}).get("tags") or []
            if stop_reason is not None:
                run = CellRun(index, cell_id, "not_run", note=stop_reason)
            elif (skip is not None and skip(index, cell)) or SKIP_EXECUTION_TAG in tags:
                run = CellRun(index, cell_id, "skipped")
            else:
                if on_cell_start is not None:
                    on_cell_start(index, cell_id)
                run, stop_reason = await _run_cell(
                    client, km, cell, index, cell_id, replies, DeadKernelError
                )
            runs.append(run)
            if on_cell is not None:
                on_cell(run)
        graceful = stop_reason is None
    finally:
        await asyncio.shield(_shutdown(client, km, graceful=graceful))
    return runs


async def _run_cell(
    client: Any,
    km: Any,
    cell: Any,
    index: int,
    cell_id: str | None,
    replies: dict[int, dict[str, Any]],
    dead_kernel: type[Exception],
) -> tuple[CellRun, str | None]:
    """Run one cell; the run and, when the run must stop, why."""
    started = time.monotonic()
    replies.pop(index, None)
    task = asyncio.ensure_future(
        client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
    )
    try:
        # Shielded: nbclient turns a cancellation inside it into DeadKernelError, which
        # would swallow ours. The kernel is killed first, so the cell's task ends by itself.
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.shield(_abandon(task, km))
        raise
    except dead_kernel:
        run = CellRun(
            index,
            cell_id,
            "error",
            outputs=_outputs(cell),
            duration=time.monotonic() - started,
            error=CellError("DeadKernelError", "the kernel died while running this cell"),
        )
        return run, f"not run: the kernel died while running cell {index}"
    duration = time.monotonic() - started
    reply = replies.get(index, {})
    content = reply.get("content", {}) if isinstance(reply, dict) else {}
    if content.get("status") != "error":
        return CellRun(index, cell_id, "ok", outputs=_outputs(cell), duration=duration), None
    error = _error_of(content)
    if error.ename != TIMEOUT_ENAME:
        run = CellRun(index, cell_id, "error", _outputs(cell), duration, error)
        return run, None
    run = CellRun(index, cell_id, "timeout", _outputs(cell), duration, error)
    if await _answers(client, RECOVERY_SECONDS):
        run.note = "the kernel was interrupted, and the run went on with the next cell"
        return run, None
    run.note = (
        f"the kernel did not answer within {format_seconds(RECOVERY_SECONDS)} s of the "
        "interrupt; it was stopped"
    )
    return run, f"not run: the kernel did not recover from the timeout of cell {index}"


def _outputs(cell: Any) -> list[dict[str, Any]]:
    return [_plain(output) for output in cell.get("outputs", [])]


def _plain(value: Any) -> Any:
    """NotebookNode -> dict, recursively (what a JSON file would hold)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


async def _answers(client: Any, seconds: float) -> bool:
    """The kernel answers a kernel_info request within `seconds` (it is idle again)."""
    kc = client.kc
    if kc is None:
        return False
    msg_id = kc.kernel_info()
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            # The interrupted cell's own late reply comes first and is passed over.
            msg = await kc.shell_channel.get_msg(timeout=remaining)
        except Empty:
            return False
        if msg.get("parent_header", {}).get("msg_id") == msg_id:
            return True


async def _abandon(task: asyncio.Future[Any], km: Any) -> None:
    """Stop a cell on cancellation: kill its kernel, then let nbclient's task end."""
    with contextlib.suppress(Exception):
        await km.shutdown_kernel(now=True)
    # nbclient notices the dead kernel within its one-second liveness poll.
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(task, 5)


async def _shutdown(client: Any, km: Any, *, graceful: bool) -> None:
    """Stop the kernel (killed when it misbehaved) and release its channels and files."""
    try:
        if km.has_kernel and await km.is_alive():
            await km.shutdown_kernel(now=not graceful)
    except Exception:  # noqa: S110 - already gone: nothing left to stop
        pass
    finally:
        with contextlib.suppress(Exception):
            await km.cleanup_resources()
        if client.kc is not None:
            with contextlib.suppress(Exception):
                client.kc.stop_channels()
            client.kc = None
