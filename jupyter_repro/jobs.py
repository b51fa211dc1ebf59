"""Long-running jobs: asyncio tasks with a state, progress, a bounded log and cancellation.

A plain service (no tornado): the server's handlers and the CLI both drive it. A job's work is
a coroutine; cancelling the job cancels its task, and the job only reports `cancelled` once
the coroutine has finished its own cleanup (e.g. removing a partial prefix).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .environments.channels import redact_text

if TYPE_CHECKING:
    from .restore.service import RestorePlan, RestoreResult, RestoreService
    from .restore.source import RestoreSource
    from .verify.service import VerifyOptions, VerifyService

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

# What a client sees when the work failed in a way nobody anticipated: the details (and the
# traceback) go to the server log only, since they may reveal paths or internals.
UNEXPECTED_MESSAGE = "the job failed unexpectedly; the server log has the details"


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return _dt.datetime.fromtimestamp(timestamp, tz=_dt.timezone.utc).isoformat()


def error_reason(error: BaseException) -> str:
    """A short machine-readable reason from an error's class: `TargetExists` -> `target exists`."""
    name = type(error).__name__
    words: list[str] = []
    for char in name:
        if char.isupper() and words:
            words.append(" ")
        words.append(char.lower())
    return "".join(words)


class JobNotFound(KeyError):
    """No job has that id (never existed, or forgotten after the retention time)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"no job with id {self.job_id!r}"


def hide_folders(text: str, folders: Sequence[str]) -> str:
    """`text` with paths in `folders` written relative to them (`<folder>/a/b` -> `a/b`,
    the folder itself -> `.`). Only whole paths: `/srv/root2` is not in `/srv/root`, nor
    `/home/u/data` in `/data`; a folder of `/` hides nothing (every path would lose it)."""
    for folder in folders:
        folder = folder.rstrip(os.sep)
        if not folder:
            continue
        pattern = re.compile(
            rf"(?<![\w.~/-]){re.escape(folder)}"
            rf"(?:{re.escape(os.sep)}(?=[^{re.escape(os.sep)}\s])|(?![\w~-]|\.[\w.~-]))"
        )
        text = pattern.sub(lambda m: "" if m.group(0).endswith(os.sep) else ".", text)
    return text


@dataclass
class Job:
    """One unit of long-running work and everything a client may want to know about it."""

    kind: str
    max_log_lines: int = 1000
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: JobState = "queued"
    phase: str | None = None
    done: int = 0
    total: int = 0
    bytes_done: int | None = None
    """Bytes downloaded so far, once a download started."""
    bytes_total: int | None = None
    downloaded: int | None = None
    """Packages downloaded so far (of `downloading`: those the package cache lacked)."""
    downloading: int | None = None
    step: str | None = None
    """Of a verify job restoring its environment: the restore's own phase (solve, link, ...)."""
    cells: list[dict[str, Any]] | None = None
    """Of a verify job: `{"index", "id", "status"}` of each cell reported so far, in order."""
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False
    log_dropped: int = 0
    hidden: tuple[str, ...] = field(default=(), repr=False)
    """Folders whose location the job's log and error never show (the server root): paths
    in them are shown relative to them."""
    # Bounded so a chatty job cannot grow the server's memory without limit.
    log: deque[str] = field(init=False)
    _last_line: str | None = field(default=None, init=False, repr=False)
    _repeats: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self.log = deque(maxlen=self.max_log_lines)

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    def public(self, text: str) -> str:
        """`text` without credentials, and without the location of the hidden folders."""
        return hide_folders(redact_text(text), self.hidden)

    def add_log(self, line: str) -> None:
        # Engines and pip print URLs; a channel token must not reach a client.
        line = self.public(line)
        # pip and the CLIs repeat lines (retries, progress): a run of one line is one line.
        if self.log and line == self._last_line:
            self._repeats += 1
            self.log[-1] = f"{line}  ({self._repeats} times)"
            return
        if len(self.log) == self.log.maxlen:
            self.log_dropped += 1
        self._last_line, self._repeats = line, 1
        self.log.append(line)

    def progress_json(self) -> dict[str, Any]:
        progress: dict[str, Any] = {"phase": self.phase, "done": self.done, "total": self.total}
        if self.bytes_done is not None:
            progress.update(
                bytes_done=self.bytes_done,
                bytes_total=self.bytes_total,
                downloaded=self.downloaded,
                downloading=self.downloading,
            )
        if self.step is not None:
            progress["step"] = self.step
        if self.cells is not None:
            progress["cells"] = [dict(cell) for cell in self.cells]
        return progress

    def to_json(self) -> dict[str, Any]:
        """The job as the REST API returns it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "progress": self.progress_json(),
            "log": list(self.log),
            "log_dropped": self.log_dropped,
            "result": self.result,
            "error": self.error,
            "cancel_requested": self.cancel_requested,
            "created": _iso(self.created),
            "started": _iso(self.started),
            "finished": _iso(self.finished),
        }


class JobProgress:
    """The `Progress` protocol of the restore engine, writing into one job."""

    def __init__(self, job: Job) -> None:
        self._job = job

    @property
    def job(self) -> Job:
        """The job this progress writes into."""
        return self._job

    def phase(self, name: str, done: int, total: int) -> None:
        self._job.phase = name
        self._job.done = done
        self._job.total = total

    def transfer(
        self, bytes_done: int, bytes_total: int, downloaded: int, downloading: int
    ) -> None:
        job = self._job
        job.bytes_done, job.bytes_total = bytes_done, bytes_total
        job.downloaded, job.downloading = downloaded, downloading

    def log(self, line: str) -> None:
        self._job.add_log(line)


JobWork = Callable[[JobProgress], Awaitable[dict[str, Any]]]


class JobManager:
    """Runs jobs as asyncio tasks on the running loop and keeps them for polling.

    `expected_errors` are the typed errors whose message is meant for the user (e.g.
    `SpecError`, `RestoreError`): a job failing with one reports its message. Anything else
    is reported with a generic message and logged with its traceback.
    """

    def __init__(
        self,
        *,
        retention_seconds: float = 3600.0,
        max_log_lines: int = 1000,
        expected_errors: tuple[type[BaseException], ...] = (),
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.retention_seconds = retention_seconds
        self.max_log_lines = max_log_lines
        self.expected_errors = expected_errors
        self.log = log or logging.getLogger(__name__)
        self._clock = clock
        self._jobs: dict[str, Job] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Set once a job's final state is recorded, for wait() and on_finish ordering.
        self._finished: dict[str, asyncio.Event] = {}
        # What to do when a job is forgotten (e.g. remove the archive it wrote).
        self._on_forget: dict[str, Callable[[Job], None]] = {}

    def submit(
        self,
        kind: str,
        work: JobWork,
        *,
        on_finish: Callable[[Job, JobState], None] | None = None,
        on_forget: Callable[[Job], None] | None = None,
        hidden: Sequence[str] = (),
    ) -> Job:
        """Start `work(progress)` as a task; its returned dict becomes the job's result;
        `hidden`: see `Job.hidden`.

        `on_finish(job, state)` runs once the work is over, whatever the outcome, just
        before the job shows its final `state`. `on_forget(job)` runs when the finished job
        is forgotten (after the retention time).
        """
        self._prune()
        job = Job(
            kind=kind,
            max_log_lines=self.max_log_lines,
            created=self._clock(),
            hidden=tuple(hidden),
        )
        self._jobs[job.id] = job
        if on_forget is not None:
            self._on_forget[job.id] = on_forget
        self._finished[job.id] = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._run(job, work, on_finish))
        self._tasks[job.id] = task

        def never_ran(task: asyncio.Task[None]) -> None:
            # A task cancelled before its first step never reached _run's handlers.
            if not job.is_finished:
                self._finish(job, "cancelled", on_finish)

        task.add_done_callback(never_ran)
        return job

    async def _run(
        self, job: Job, work: JobWork, on_finish: Callable[[Job, JobState], None] | None
    ) -> None:
        job.state = "running"
        job.started = self._clock()
        try:
            result = await work(JobProgress(job))
        except asyncio.CancelledError:
            # The work's own cleanup (its finally blocks) has run by the time we get here.
            self._finish(job, "cancelled", on_finish)
            raise
        except self.expected_errors as error:
            job.error = {"message": job.public(str(error)), "reason": error_reason(error)}
            job.add_log(f"error: {error}")
            self._finish(job, "failed", on_finish)
        except Exception as error:
            self.log.exception("jupyter-repro: %s job %s failed", job.kind, job.id)
            job.error = {"message": UNEXPECTED_MESSAGE, "reason": error_reason(error)}
            self._finish(job, "failed", on_finish)
        else:
            job.result = result
            self._finish(job, "succeeded", on_finish)

    def _finish(
        self, job: Job, state: JobState, on_finish: Callable[[Job, JobState], None] | None
    ) -> None:
        """Record the final state, after on_finish: a client that sees the job finished
        must also see what on_finish releases (e.g. the target no longer busy)."""
        if on_finish is not None:
            try:
                on_finish(job, state)
            except Exception:
                self.log.exception("jupyter-repro: on_finish of job %s failed", job.id)
        job.state = state
        job.finished = self._clock()
        self._tasks.pop(job.id, None)
        event = self._finished.pop(job.id, None)
        if event is not None:
            event.set()

    def get(self, job_id: str) -> Job:
        """The job with that id; KeyError when there is none (or it expired)."""
        self._prune()
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFound(job_id) from None

    def jobs(self) -> list[Job]:
        """Every job kept, oldest first."""
        self._prune()
        return sorted(self._jobs.values(), key=lambda j: j.created)

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop. Its state turns `cancelled` once its cleanup finished.

        Cancelling a finished job changes nothing.
        """
        job = self.get(job_id)
        task = self._tasks.get(job_id)
        if task is not None and not job.is_finished:
            job.cancel_requested = True
            task.cancel()
        return job

    async def wait(self, job_id: str) -> Job:
        """Wait until the job is finished (for tests and the shutdown)."""
        job = self.get(job_id)
        event = self._finished.get(job_id)
        if event is not None:
            await event.wait()
        return job

    async def shutdown(self) -> None:
        """Cancel every running job and wait for their cleanup (server stop)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _prune(self) -> None:
        """Forget finished jobs older than the retention time."""
        horizon = self._clock() - self.retention_seconds
        for job_id, job in list(self._jobs.items()):
            if job.is_finished and job.finished is not None and job.finished < horizon:
                del self._jobs[job_id]
                forget = self._on_forget.pop(job_id, None)
                if forget is not None:
                    try:
                        forget(job)
                    except Exception:
                        self.log.exception("jupyter-repro: on_forget of job %s failed", job_id)


class RestoreJobs:
    """Restores as jobs: plans, starts and refuses a second restore onto a busy target.

    The engine (`RestoreService`) refuses existing targets; a target that a running job is
    still building does not exist as an environment yet, so this class remembers those.
    """

    def __init__(self, service: RestoreService, jobs: JobManager) -> None:
        self.service = service
        self.jobs = jobs
        self._busy: set[Path] = set()
        # Queued restores count against the user's environment limit before they start.
        service.reserved_targets = self.busy_targets

    def busy_targets(self) -> frozenset[Path]:
        """Targets that a queued or running restore job is building."""
        return frozenset(self._busy)

    async def plan(
        self,
        source: RestoreSource,
        *,
        name: str | None = None,
        prefix: Path | None = None,
        suggest_name: bool = True,
    ) -> RestorePlan:
        """The dry run; TargetBusy when a running job is building the same target."""
        plan = await self.service.plan(source, name=name, prefix=prefix, suggest_name=suggest_name)
        self._refuse_busy(plan.target)
        return plan

    async def start(
        self,
        source: RestoreSource,
        *,
        name: str | None = None,
        prefix: Path | None = None,
        after: Callable[[RestoreResult, JobProgress], Awaitable[dict[str, Any]]] | None = None,
        root: str | None = None,
    ) -> Job:
        """Plan (which refuses existing targets), then run the restore as a job; `after`
        runs once the environment is restored (a capsule's notebooks are written there) and
        what it returns is added to the job's result. `root`: a folder the job's log and
        error name paths in relative to (the server root; never its location)."""
        plan = await self.plan(source, name=name, prefix=prefix, suggest_name=False)
        # No await between the check in plan() and here: two requests cannot both pass.
        target = _target_key(plan.target)
        # The per-user limits again, now that the restores accepted while this one was
        # planned are known (they are counted as busy).
        self.service.check_limits(plan.target)
        self._busy.add(target)
        service = self.service

        async def work(progress: JobProgress) -> dict[str, Any]:
            result = await service.restore(source, name=name, prefix=prefix, progress=progress)
            document: dict[str, Any] = {
                "prefix": str(result.prefix),
                "name": result.name,
                "packages": result.packages,
                "pip": result.pip,
            }
            if after is not None:
                document.update(await after(result, progress))
            return document

        try:
            job = self.jobs.submit(
                "restore",
                work,
                on_finish=lambda _job, _state: self._busy.discard(target),
                hidden=(root,) if root else (),
            )
        except BaseException:
            self._busy.discard(target)
            raise
        job.add_log(f"restoring into {plan.target}")
        return job

    def _refuse_busy(self, target: Path) -> None:
        from .restore.errors import TargetBusy

        if _target_key(target) in self._busy:
            raise TargetBusy(
                f"another restore is already building {target}; wait for it or cancel it"
            )


def _target_key(target: Path) -> Path:
    # Two spellings of one folder (a symlinked envs dir, a trailing slash) are one target.
    return Path(os.path.realpath(target))


RUNNING_CELL = "running"
"""The status a verify job shows for a cell that started and has no result yet."""


class VerificationRunning(Exception):
    """A verification of the same notebook is running already."""


class VerifyJobProgress:
    """The verify service's progress (`cell`, `log`) and the restore engine's (`phase`,
    `transfer`: a verification that restores its environment first), in one verify job.

    The job's progress then reads: `phase` `restore` while the temporary environment is
    built (`step`: the restore's own phase, `done`/`total` its counts), then `execute` with
    `done` cells finished of `total`; `cells` lists `{"index", "id", "status"}` for every
    cell reported so far, in the order they ran, `status` being `running` until the cell
    has its result (`match`, `differs`, `error`, `no_reference`, `skipped`).
    """

    def __init__(self, job: Job) -> None:
        self._job = job
        job.cells = []
        self._by_index: dict[int, dict[str, Any]] = {}
        self._finished = 0

    def cell(self, index: int, total: int, cell_id: str | None, status: str | None) -> None:
        job = self._job
        cells = job.cells if job.cells is not None else []
        job.phase, job.step = "execute", None
        entry = self._by_index.get(index)
        if entry is None:
            entry = {"index": index, "id": cell_id, "status": RUNNING_CELL}
            self._by_index[index] = entry
            cells.append(entry)
        if cell_id is not None:
            entry["id"] = cell_id
        new_status = status or RUNNING_CELL
        if entry["status"] == RUNNING_CELL and new_status != RUNNING_CELL:
            self._finished += 1
        elif entry["status"] != RUNNING_CELL and new_status == RUNNING_CELL:
            self._finished -= 1
        entry["status"] = new_status
        job.cells = cells
        job.done, job.total = self._finished, max(total, self._finished)

    def phase(self, name: str, done: int, total: int) -> None:
        job = self._job
        job.phase, job.step = "restore", name
        job.done, job.total = done, total

    def transfer(
        self, bytes_done: int, bytes_total: int, downloaded: int, downloading: int
    ) -> None:
        job = self._job
        job.bytes_done, job.bytes_total = bytes_done, bytes_total
        job.downloaded, job.downloading = downloaded, downloading

    def log(self, line: str) -> None:
        self._job.add_log(line)


class VerifyJobs:
    """Verifications as jobs (kind `verify`): one at a time per notebook.

    A job runs `VerifyService.verify`; its result is the report's JSON plus
    `verified_record`, the `metadata.jupyter_repro.verified` value a frontend writes into
    the notebook when its user asks. Cancelling the job cancels the run: the service's
    own cleanup (its kernel, a temporary environment) has finished before the job says
    `cancelled`.
    """

    def __init__(
        self, service: VerifyService | Callable[[], VerifyService], jobs: JobManager
    ) -> None:
        # A factory is called on first use: the server need not import nbclient and the
        # verify modules to start.
        self._service = service
        self.jobs = jobs
        self._busy: set[Path] = set()

    @property
    def service(self) -> VerifyService:
        if not hasattr(self._service, "verify"):
            self._service = self._service()
        return self._service  # type: ignore[return-value]

    def busy_notebooks(self) -> frozenset[Path]:
        """Notebooks that a queued or running verify job is verifying."""
        return frozenset(self._busy)

    def start(
        self,
        notebook: Path,
        options: VerifyOptions,
        *,
        shown: str | None = None,
        root: str | None = None,
    ) -> Job:
        """Verify `notebook` as a job. `shown` is the name a client knows it by (the
        report's `notebook` then says that instead of the path on disk); `root` a folder
        whose location the job's error message does not reveal (the server root: paths in
        it are named relative to it)."""
        key = _target_key(notebook)
        name = shown or str(notebook)
        if key in self._busy:
            raise VerificationRunning(
                f"{name} is being verified already; wait for that verification or cancel it"
            )
        self._busy.add(key)
        service = self.service

        async def work(progress: JobProgress) -> dict[str, Any]:
            from .verify.errors import VerifyError

            verify_progress = VerifyJobProgress(progress.job)
            if options.restore:
                progress.job.phase = "restore"
            try:
                report = await service.verify(notebook, options, verify_progress)
            except VerifyError as error:
                if root is None:
                    raise
                message = hide_folders(str(error), [root])
                raise VerifyError(message) from error
            return verify_result(report, shown)

        try:
            job = self.jobs.submit(
                "verify", work, on_finish=lambda _job, _state: self._busy.discard(key)
            )
        except BaseException:
            self._busy.discard(key)
            raise
        job.add_log(f"verifying {name}")
        return job


def verify_result(report: Any, shown: str | None = None) -> dict[str, Any]:
    """A verify job's result: the report's JSON, plus `verified_record`."""
    from .verify.report import verified_record

    document = report.to_json()
    result: dict[str, Any] = json.loads(document) if isinstance(document, str) else dict(document)
    if shown is not None:
        result["notebook"] = shown
    result["verified_record"] = verified_record(report)
    return result


class PackBusy(Exception):
    """Too many packs are running on this server at once."""


class ArchiveNotReady(Exception):
    """The job has no archive to download (not a pack, not finished, failed, or expired)."""


@dataclass(frozen=True)
class PackArchive:
    """A finished pack job's archive, for the download route."""

    path: Path
    filename: str
    media_type: str


PACK_MEDIA_TYPES = {"capsule": "application/zstd", "conda-pack": "application/gzip"}


class PackJobs:
    """Packs as jobs (kind `pack`): a capsule (`specs.pack.pack`) or a conda-pack archive
    (`specs.conda_pack_format.pack_conda_pack`), written into a private folder of this
    server (never its root), one sub-folder per job. A failed or cancelled job's folder is
    removed at once, a finished one's when the job is forgotten (the retention time of the
    JobManager) or the server stops. At most `max_running` packs run at once.
    """

    def __init__(
        self,
        jobs: JobManager,
        *,
        workdir: Path | None = None,
        max_running: int = 2,
        check_lock: Callable[[Any], None] | None = None,
    ) -> None:
        self.jobs = jobs
        # The server's channel policy, applied to every URL of the lock before anything is
        # fetched: a notebook's embedded lock must not make the server download from
        # anywhere a restore would refuse.
        self.check_lock = check_lock
        self.max_running = max_running
        self._workdir = workdir
        self._running: set[str] = set()
        self._archives: dict[str, PackArchive] = {}

    @property
    def workdir(self) -> Path:
        """The private folder (mode 0700) holding every job's archive; made on first use."""
        if self._workdir is None:
            import tempfile

            self._workdir = Path(tempfile.mkdtemp(prefix="jupyter-repro-packs-"))
        return self._workdir

    def start(
        self,
        request: Any,
        *,
        fmt: str = "capsule",
        filename: str | None = None,
        hide: tuple[str, ...] = (),
    ) -> Job:
        """Pack `request` (a `PackRequest`) as a job. `fmt` `conda-pack` packs
        `request.prefix` with conda-pack into `filename` (default `<name>.tar.gz`). `hide`:
        folders whose location the job's messages do not reveal (the server root, ...)."""
        import shutil

        from .specs.pack import PackError, default_capsule_name, pack, plan_pack

        if len(self._running) >= self.max_running:
            raise PackBusy(
                f"{len(self._running)} packs are running on this server already; wait for "
                "one to finish or cancel it"
            )
        folder_box: list[Path] = []

        def public(message: str) -> str:
            return hide_folders(message, [str(f) for f in (*folder_box, self.workdir, *hide)])

        async def work(progress: JobProgress) -> dict[str, Any]:
            folder = folder_box[0]

            def phase(name: str, done: int, total: int) -> None:
                progress.phase(name, done, total)

            try:
                if fmt == "conda-pack":
                    from .specs.conda_pack_format import pack_conda_pack

                    name = _safe_file_name(filename or f"{request.name or 'environment'}.tar.gz")
                    output = folder / name
                    cancelled = threading.Event()

                    def thread_phase(name: str, done: int, total: int) -> None:
                        # Raised in conda-pack's thread: it stops and leaves no file.
                        if cancelled.is_set():
                            raise PackFailed("cancelled")
                        phase(name, done, total)

                    loop = asyncio.get_running_loop()
                    try:
                        written = await loop.run_in_executor(
                            None,
                            lambda: pack_conda_pack(request.prefix, output, progress=thread_phase),
                        )
                    except asyncio.CancelledError:
                        cancelled.set()
                        raise
                    size = written.stat().st_size
                    summary: dict[str, Any] = {
                        "format": "conda-pack",
                        "name": request.name,
                        "capsule_bytes": size,
                    }
                    missing: list[dict[str, Any]] = []
                else:
                    plan = await plan_pack(request, progress=phase, log=progress.log)
                    if self.check_lock is not None:
                        await asyncio.to_thread(self.check_lock, plan.lock)
                    name = filename or default_capsule_name(request, plan.lock)
                    output = folder / name
                    result = await pack(
                        request, output, plan=plan, progress=phase, log=progress.log
                    )
                    size = result.capsule_bytes
                    summary = {"format": "capsule", **result.summary()}
                    summary.pop("output", None)
                    missing = summary["missing"]
            except (PackError, ExportError, RefusedSpec) as error:
                raise PackFailed(public(str(error))) from error
            self._archives[progress.job.id] = PackArchive(output, name, PACK_MEDIA_TYPES[fmt])
            progress.log(f"packed {name} ({size} bytes)")
            return {"filename": name, "size": size, "summary": summary, "missing": missing}

        def finished(job: Job, state: JobState) -> None:
            self._running.discard(job.id)
            if state != "succeeded":
                self._archives.pop(job.id, None)
                shutil.rmtree(folder_box[0], ignore_errors=True)

        def forget(job: Job) -> None:
            self._archives.pop(job.id, None)
            shutil.rmtree(folder_box[0], ignore_errors=True)

        from .restore.errors import RefusedSpec
        from .specs.export import ExportError

        job = self.jobs.submit("pack", work, on_finish=finished, on_forget=forget)
        folder = self.workdir / job.id
        folder.mkdir(mode=0o700)
        folder_box.append(folder)
        self._running.add(job.id)
        return job

    def archive(self, job_id: str) -> PackArchive:
        """The archive of a finished pack job; JobNotFound, or ArchiveNotReady."""
        job = self.jobs.get(job_id)  # forgets expired jobs (and removes their archives)
        if job.kind != "pack":
            raise ArchiveNotReady(f"job {job_id!r} is a {job.kind} job: it has nothing to download")
        archive = self._archives.get(job_id)
        if job.state != "succeeded" or archive is None or not archive.path.is_file():
            raise ArchiveNotReady(f"job {job_id!r} has no archive to download (it is {job.state})")
        return archive

    def close(self) -> None:
        """Remove every archive (the server stops)."""
        import shutil

        self._archives.clear()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)


class PackFailed(Exception):
    """A pack job failed for a reason its user can act on (the message says it)."""


def _safe_file_name(name: str) -> str:
    import re

    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return safe or "environment.tar.gz"
