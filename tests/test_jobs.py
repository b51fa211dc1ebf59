"""JobManager: states, progress, bounded logs, cancellation with cleanup, errors, retention."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from jupyter_repro.jobs import UNEXPECTED_MESSAGE, Job, JobManager, JobProgress
from jupyter_repro.specs.environment import SpecError


class FakeClock:
    """A wall clock the test moves by hand, so retention needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class UserFacing(Exception):
    """Stands in for a typed error whose message is meant for the user."""


@pytest.mark.asyncio
async def test_a_job_goes_from_queued_through_running_to_succeeded_with_its_result():
    manager = JobManager()
    gate = asyncio.Event()
    seen: list[str] = []

    async def work(progress: JobProgress) -> dict[str, Any]:
        seen.append(manager.get(job.id).state)
        await gate.wait()
        return {"prefix": "/x"}

    job = manager.submit("restore", work)
    assert job.state == "queued"
    assert len(job.id) == 32
    assert int(job.id, 16) >= 0
    await asyncio.sleep(0.01)
    assert job.state == "running"
    assert job.started is not None
    gate.set()
    await manager.wait(job.id)

    assert seen == ["running"]
    assert job.state == "succeeded"
    document = job.to_json()
    assert document["result"] == {"prefix": "/x"}
    assert document["error"] is None
    assert document["kind"] == "restore"
    assert document["finished"] is not None
    assert document["finished"] >= document["started"]


@pytest.mark.asyncio
async def test_progress_and_log_lines_are_visible_while_the_job_runs():
    manager = JobManager()
    gate = asyncio.Event()

    async def work(progress: JobProgress) -> dict[str, Any]:
        progress.phase("link", 12, 25)
        progress.log("linking pkgc")
        await gate.wait()
        progress.phase("register", 1, 1)
        return {}

    job = manager.submit("restore", work)
    await asyncio.sleep(0.01)
    running = manager.get(job.id).to_json()
    assert running["state"] == "running"
    assert running["progress"] == {"phase": "link", "done": 12, "total": 25}
    assert running["log"] == ["linking pkgc"]
    gate.set()
    await manager.wait(job.id)
    assert job.to_json()["progress"] == {"phase": "register", "done": 1, "total": 1}


@pytest.mark.asyncio
async def test_the_log_keeps_only_the_last_lines_and_counts_the_dropped_ones():
    manager = JobManager(max_log_lines=5)

    async def work(progress: JobProgress) -> dict[str, Any]:
        for n in range(12):
            progress.log(f"line {n}")
        return {}

    job = manager.submit("restore", work)
    await manager.wait(job.id)
    document = job.to_json()
    assert document["log"] == [f"line {n}" for n in range(7, 12)]
    assert document["log_dropped"] == 7


@pytest.mark.asyncio
async def test_cancel_reports_cancelled_only_after_the_work_cleaned_up():
    manager = JobManager()
    started = asyncio.Event()
    cleanup_release = asyncio.Event()
    events: list[str] = []

    async def work(progress: JobProgress) -> dict[str, Any]:
        try:
            started.set()
            await asyncio.Event().wait()  # forever
        finally:
            events.append("cleanup started")
            # Cleanup that takes a while (like removing a partial prefix).
            await cleanup_release.wait()
            events.append(f"cleanup done while {manager.get(job.id).state}")
        return {}

    job = manager.submit("restore", work)
    await started.wait()
    answer = manager.cancel(job.id)
    assert answer is job
    assert job.cancel_requested is True
    await asyncio.sleep(0.01)
    assert events == ["cleanup started"]
    assert job.state == "running"  # still cleaning up

    cleanup_release.set()
    await manager.wait(job.id)
    assert events == ["cleanup started", "cleanup done while running"]
    assert job.state == "cancelled"
    assert job.finished is not None


@pytest.mark.asyncio
async def test_cancelling_a_queued_job_that_never_ran_marks_it_cancelled():
    manager = JobManager()
    ran: list[bool] = []

    async def work(progress: JobProgress) -> dict[str, Any]:
        ran.append(True)
        return {}

    job = manager.submit("restore", work)
    manager.cancel(job.id)  # before the loop ever ran the task
    await manager.wait(job.id)
    assert ran == []
    assert job.state == "cancelled"


@pytest.mark.asyncio
async def test_cancelling_a_finished_job_changes_nothing():
    manager = JobManager()

    async def work(progress: JobProgress) -> dict[str, Any]:
        return {"ok": True}

    job = manager.submit("restore", work)
    await manager.wait(job.id)
    assert manager.cancel(job.id).state == "succeeded"
    assert job.cancel_requested is False
    assert job.result == {"ok": True}


@pytest.mark.asyncio
async def test_expected_errors_fail_the_job_with_their_message():
    manager = JobManager(expected_errors=(UserFacing, SpecError))

    async def bad_spec(progress: JobProgress) -> dict[str, Any]:
        raise SpecError("unknown key 'dependecies'", source="environment.yml", line=3)

    async def refused(progress: JobProgress) -> dict[str, Any]:
        raise UserFacing("channel http://evil is not allowed")

    spec_job = manager.submit("restore", bad_spec)
    refused_job = manager.submit("restore", refused)
    await manager.wait(spec_job.id)
    await manager.wait(refused_job.id)

    assert spec_job.state == "failed"
    assert spec_job.error == {
        "message": "environment.yml, line 3: unknown key 'dependecies'",
        "reason": "spec error",
    }
    assert refused_job.error == {
        "message": "channel http://evil is not allowed",
        "reason": "user facing",
    }
    assert refused_job.log[-1] == "error: channel http://evil is not allowed"


@pytest.mark.asyncio
async def test_unexpected_errors_fail_with_a_generic_message_and_a_logged_traceback(caplog):
    manager = JobManager(expected_errors=(UserFacing,))

    async def broken(progress: JobProgress) -> dict[str, Any]:
        raise RuntimeError("secret internal path /srv/x")

    with caplog.at_level(logging.ERROR, logger="jupyter_repro.jobs"):
        job = manager.submit("restore", broken)
        await manager.wait(job.id)

    assert job.state == "failed"
    assert job.error is not None
    assert job.error["message"] == UNEXPECTED_MESSAGE
    assert "secret" not in job.error["message"]
    records = [r for r in caplog.records if job.id in r.getMessage()]
    assert records
    assert records[0].exc_info is not None


@pytest.mark.asyncio
async def test_unknown_job_ids_raise_key_error_naming_the_id():
    manager = JobManager()
    with pytest.raises(KeyError, match="no job with id 'nope'"):
        manager.get("nope")
    with pytest.raises(KeyError):
        manager.cancel("nope")


@pytest.mark.asyncio
async def test_finished_jobs_are_forgotten_after_the_retention_time_running_ones_never():
    clock = FakeClock()
    manager = JobManager(retention_seconds=60, clock=clock)
    gate = asyncio.Event()

    async def quick(progress: JobProgress) -> dict[str, Any]:
        return {}

    async def slow(progress: JobProgress) -> dict[str, Any]:
        await gate.wait()
        return {}

    done = manager.submit("restore", quick)
    running = manager.submit("restore", slow)
    await manager.wait(done.id)

    clock.now += 59
    assert manager.get(done.id) is done
    clock.now += 2
    with pytest.raises(KeyError):
        manager.get(done.id)
    assert manager.get(running.id) is running
    assert [j.id for j in manager.jobs()] == [running.id]
    gate.set()
    await manager.wait(running.id)


@pytest.mark.asyncio
async def test_on_finish_runs_once_for_every_final_state():
    manager = JobManager(expected_errors=(UserFacing,))
    finished: list[tuple[str, str]] = []

    async def ok(progress: JobProgress) -> dict[str, Any]:
        return {}

    async def fails(progress: JobProgress) -> dict[str, Any]:
        raise UserFacing("no")

    async def forever(progress: JobProgress) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    def record(job, state):
        assert not job.is_finished  # clients see the final state only after on_finish
        finished.append((job.kind, state))

    jobs = [
        manager.submit("a", ok, on_finish=record),
        manager.submit("b", fails, on_finish=record),
        manager.submit("c", forever, on_finish=record),
    ]
    await asyncio.sleep(0.01)
    manager.cancel(jobs[2].id)
    for job in jobs:
        await manager.wait(job.id)
    await asyncio.sleep(0)
    assert sorted(finished) == [("a", "succeeded"), ("b", "failed"), ("c", "cancelled")]


@pytest.mark.asyncio
async def test_shutdown_cancels_running_jobs_and_waits_for_them():
    manager = JobManager()
    cleaned: list[bool] = []

    async def forever(progress: JobProgress) -> dict[str, Any]:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(True)
        return {}

    job = manager.submit("restore", forever)
    await asyncio.sleep(0.01)
    await manager.shutdown()
    await asyncio.sleep(0)
    assert cleaned == [True]
    assert job.state == "cancelled"


def test_a_run_of_one_repeated_log_line_is_one_line_with_its_count():
    job = Job("restore", max_log_lines=3)
    for line in ["Retrying", "Retrying", "Retrying", "done", "Retrying"]:
        job.add_log(line)

    assert list(job.log) == ["Retrying  (3 times)", "done", "Retrying"]
    assert job.log_dropped == 0


def test_download_bytes_appear_in_the_progress_once_known():
    job = Job("restore")
    progress = JobProgress(job)
    progress.phase("link", 1, 5)
    before = job.to_json()["progress"]
    progress.transfer(1_000, 4_000, 1, 2)

    assert before == {"phase": "link", "done": 1, "total": 5}
    assert job.to_json()["progress"] == {
        "phase": "link",
        "done": 1,
        "total": 5,
        "bytes_done": 1_000,
        "bytes_total": 4_000,
        "downloaded": 1,
        "downloading": 2,
    }


@pytest.mark.asyncio
async def test_on_forget_runs_once_when_a_finished_job_is_forgotten():
    clock = FakeClock()
    manager = JobManager(retention_seconds=60, clock=clock)
    forgotten: list[str] = []

    async def quick(progress: JobProgress) -> dict[str, Any]:
        return {}

    job = manager.submit("pack", quick, on_forget=lambda j: forgotten.append(j.id))
    await manager.wait(job.id)
    clock.now += 59
    manager.jobs()
    assert forgotten == []
    clock.now += 2
    manager.jobs()
    manager.jobs()
    assert forgotten == [job.id]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("cannot read /srv/root/work/x.capsule.tar.zst", "cannot read work/x.capsule.tar.zst"),
        ("the root /srv/root itself", "the root . itself"),
        ("/srv/root2/env.yml is elsewhere", "/srv/root2/env.yml is elsewhere"),
        ("/home/u/srv/root/a stays", "/home/u/srv/root/a stays"),
        ("/srv/root.d/x stays", "/srv/root.d/x stays"),
    ],
)
def test_hidden_folders_are_hidden_as_whole_paths_only(text, shown):
    from jupyter_repro.jobs import hide_folders

    assert hide_folders(text, ["/srv/root"]) == shown


def test_a_root_of_slash_hides_nothing():
    from jupyter_repro.jobs import hide_folders

    text = "https://conda.anaconda.org/conda-forge and /home/u/x"
    assert hide_folders(text, ["/"]) == text
