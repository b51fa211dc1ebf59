"""POST repro/verify and its job (GET/DELETE repro/jobs/{id}) against a real server whose
kernels are the rig installation's conda environments."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.rig.channel import RigChannel
from tests.rig.installation import CondaInstallation
from tests.test_hardening_routes import DenyContentsRead, server_config

pytestmark = pytest.mark.timeout(240)

POLL_TIMEOUT = 120.0
KERNEL = "conda-env-py-py"
"""The rig's standard environment `py` (python, ipykernel) as a kernel."""
FINISHED = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def jp_home_dir(rig_installation: CondaInstallation) -> Path:
    """The rig's installation: its environments are the server's kernels (only read)."""
    return rig_installation.home


# --------------------------------------------------------------------------------------------
# notebooks


def stdout(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def code(
    cell_id: str,
    source: str,
    outputs: list[dict[str, Any]] | None = None,
    *,
    ran: bool = True,
    tags: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "id": cell_id,
        "metadata": {"tags": list(tags)} if tags else {},
        "source": source,
        "outputs": outputs or [],
        "execution_count": 1 if ran else None,
    }


def markdown(cell_id: str, text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


def notebook(cells: list[dict[str, Any]], kernel: str = KERNEL, **metadata: Any) -> dict:
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": kernel, "display_name": kernel, "language": "python"},
            **metadata,
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write(path: Path, document: dict[str, Any]) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")
    return path.read_bytes()


MIXED = [
    markdown("intro", "# A notebook"),
    code("same", "print(1 + 1)", [stdout("2\n")]),
    code("other", "print(3)", [stdout("4\n")]),
    code("never", "x = 5", ran=False),
    code("skipme", "raise SystemExit('never run')", tags=("repro:skip",)),
    code("quiet", "y = 1"),
]
"""Cells: markdown, a match, a differing number, no reference, skipped, a match (nothing
printed, as saved)."""


# --------------------------------------------------------------------------------------------
# requests


async def post_verify(jp_fetch, body: Any):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return await jp_fetch("repro", "verify", method="POST", body=raw)


async def status_and_body(request) -> tuple[int, dict[str, Any]]:
    try:
        response = await request
    except HTTPClientError as error:
        if error.response is None:
            raise
        return error.code, json.loads(error.response.body)
    return response.code, json.loads(response.body)


async def get_job(jp_fetch, job_id: str) -> dict[str, Any]:
    return json.loads((await jp_fetch("repro", "jobs", job_id)).body)


async def poll(jp_fetch, job_id: str, done) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll until `done(job)`; the job and every job document seen."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        job = await get_job(jp_fetch, job_id)
        seen.append(job)
        if done(job):
            return job, seen
        assert job["state"] not in FINISHED, f"job finished early: {job}"
        assert time.monotonic() < deadline, f"job still {job['state']} after {POLL_TIMEOUT} s"
        await asyncio.sleep(0.05)


def finished(job: dict[str, Any]) -> bool:
    return job["state"] in FINISHED


def running_cell(job: dict[str, Any]) -> bool:
    cells = job["progress"].get("cells") or []
    return any(cell["status"] == "running" for cell in cells)


def process_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie (exited, not yet reaped by its parent) counts as gone.
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------------------------
# the job


async def test_a_verify_job_reports_every_cell_and_writes_nothing(
    jp_fetch, jp_root_dir, jp_base_url
):
    before = write(jp_root_dir / "sub" / "nb.ipynb", notebook(MIXED))

    response = await post_verify(jp_fetch, {"notebook": "sub/nb.ipynb", "timeout": 60})

    assert response.code == 202
    job = json.loads(response.body)
    assert job["kind"] == "verify"
    assert job["state"] in ("queued", "running")
    assert response.headers["Location"] == f"{jp_base_url}repro/jobs/{job['id']}"
    final, seen = await poll(jp_fetch, job["id"], finished)
    assert final["state"] == "succeeded", final["error"]

    # Progress: the execute phase, per cell, `done` of `total` code cells.
    assert any(j["progress"]["phase"] == "execute" for j in seen)
    progress = final["progress"]
    assert progress["total"] == 5
    assert progress["done"] == 5
    statuses = {c["id"]: c["status"] for c in progress["cells"]}
    assert statuses == {
        "same": "match",
        "other": "differs",
        "never": "no_reference",
        "skipme": "skipped",
        "quiet": "match",
    }
    assert {c["id"]: c["index"] for c in progress["cells"]} == {
        "same": 1,
        "other": 2,
        "never": 3,
        "skipme": 4,
        "quiet": 5,
    }
    for document in seen:  # never more done than total, and only the documented statuses
        cells = document["progress"].get("cells") or []
        assert document["progress"]["done"] <= document["progress"]["total"]
        assert {c["status"] for c in cells} <= {
            "running",
            "match",
            "differs",
            "error",
            "no_reference",
            "skipped",
        }

    report = final["result"]
    assert report["notebook"] == "sub/nb.ipynb"  # as the client named it, not the disk path
    assert str(jp_root_dir) not in json.dumps(report)
    assert report["summary"]["match"] == 2
    assert report["summary"]["differs"] == 1
    assert report["summary"]["no_reference"] == 1
    assert report["summary"]["skipped"] == 1
    assert report["summary"]["error"] == 0
    assert report["environment"]["kernel"] == KERNEL
    assert report["environment"]["platform"]
    by_id = {c["id"]: c for c in report["cells"]}
    assert "3" in by_id["other"]["diff"]
    assert "4" in by_id["other"]["diff"]
    record = report["verified_record"]
    assert set(record) == {"at", "platform", "environment", "result"}
    assert record["result"] == report["summary"]
    assert record["platform"] == report["environment"]["platform"]
    # The notebook is only read.
    assert (jp_root_dir / "sub" / "nb.ipynb").read_bytes() == before
    assert any(line.startswith("verifying sub/nb.ipynb") for line in final["log"])


async def test_an_erroring_cell_is_reported_with_its_exception(jp_fetch, jp_root_dir):
    cells = [code("ok", "print('hi')", [stdout("hi\n")]), code("boom", "1 / 0")]
    write(jp_root_dir / "nb.ipynb", notebook(cells))

    response = await post_verify(jp_fetch, {"notebook": "nb.ipynb"})
    final, _ = await poll(jp_fetch, json.loads(response.body)["id"], finished)

    assert final["state"] == "succeeded", final["error"]
    by_id = {c["id"]: c for c in final["result"]["cells"]}
    assert by_id["ok"]["status"] == "match"
    assert by_id["boom"]["status"] == "error"
    assert "ZeroDivisionError" in by_id["boom"]["error"]


async def test_the_kernel_given_is_the_one_that_runs(jp_fetch, jp_root_dir, rig_installation):
    prefix = rig_installation.envs_dir / "old"
    cells = [code("where", "import sys; print(sys.prefix)", [stdout(f"{prefix}\n")])]
    write(jp_root_dir / "nb.ipynb", notebook(cells, kernel="missing-kernel"))

    response = await post_verify(jp_fetch, {"notebook": "nb.ipynb", "kernel": "conda-env-old-py"})
    final, _ = await poll(jp_fetch, json.loads(response.body)["id"], finished)

    assert final["state"] == "succeeded", final["error"]
    assert final["result"]["environment"]["kernel"] == "conda-env-old-py"
    assert final["result"]["summary"]["match"] == 1, final["result"]["cells"]


async def test_cancelling_stops_the_kernel(jp_fetch, jp_root_dir):
    pid_file = jp_root_dir / "pid.txt"
    cells = [
        code(
            "slow",
            f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
            "time.sleep(120)",
        )
    ]
    write(jp_root_dir / "nb.ipynb", notebook(cells))

    response = await post_verify(jp_fetch, {"notebook": "nb.ipynb"})
    job_id = json.loads(response.body)["id"]
    await poll(jp_fetch, job_id, lambda j: running_cell(j) and pid_file.exists())
    deadline = time.monotonic() + 30
    while not pid_file.read_text().strip() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    pid = int(pid_file.read_text())
    deleted = await jp_fetch("repro", "jobs", job_id, method="DELETE")

    assert deleted.code == 202
    assert json.loads(deleted.body)["cancel_requested"] is True
    final, _ = await poll(jp_fetch, job_id, finished)
    assert final["state"] == "cancelled"
    assert final["result"] is None
    assert process_gone(pid), f"the kernel {pid} outlived its cancelled verification"


async def test_a_second_verification_of_a_running_notebook_is_refused(jp_fetch, jp_root_dir):
    write(jp_root_dir / "nb.ipynb", notebook([code("slow", "import time; time.sleep(120)")]))
    write(jp_root_dir / "other.ipynb", notebook([code("q", "y = 1")]))

    first = json.loads((await post_verify(jp_fetch, {"notebook": "nb.ipynb"})).body)
    try:
        code_, body = await status_and_body(post_verify(jp_fetch, {"notebook": "./nb.ipynb"}))
        assert code_ == 409
        assert body["reason"] == "verification running"
        assert "nb.ipynb" in body["message"]
        # Another notebook is not held up.
        other, _ = await status_and_body(post_verify(jp_fetch, {"notebook": "other.ipynb"}))
        assert other == 202
    finally:
        await jp_fetch("repro", "jobs", first["id"], method="DELETE")
    await poll(jp_fetch, first["id"], finished)
    # Once it is over, the notebook can be verified again.
    again, body = await status_and_body(post_verify(jp_fetch, {"notebook": "nb.ipynb"}))
    assert again == 202
    await jp_fetch("repro", "jobs", body["id"], method="DELETE")
    await poll(jp_fetch, body["id"], finished)


# --------------------------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        {},
        {"notebook": ""},
        {"notebook": 5},
        {"notebook": "nb.ipynb", "extra": 1},
        {"notebook": "nb.ipynb", "restore": "yes"},
        {"notebook": "nb.ipynb", "timeout": 0},
        {"notebook": "nb.ipynb", "timeout": -1},
        {"notebook": "nb.ipynb", "timeout": "5"},
        {"notebook": "nb.ipynb", "timeout": True},
        {"notebook": "nb.ipynb", "kernel": ""},
        {"notebook": "nb.ipynb", "kernel": 5},
        {"notebook": "nb.ipynb", "kernel": "a\nb"},
        {"notebook": "nb.ipynb", "kernel": KERNEL, "restore": True},
        {"notebook": "nb.txt"},
        {"notebook": "not-json.ipynb"},
        {"notebook": "nb.ipynb\x00.txt"},
    ],
)
async def test_bad_requests_are_400(jp_fetch, jp_root_dir, body):
    write(jp_root_dir / "nb.ipynb", notebook([code("q", "y = 1")]))
    (jp_root_dir / "nb.txt").write_text("hello")
    (jp_root_dir / "not-json.ipynb").write_text("{not json")

    status, answer = await status_and_body(post_verify(jp_fetch, body))

    assert status == 400, answer
    assert answer["message"]
    assert str(jp_root_dir) not in answer["message"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("../outside.ipynb", 403),
        ("/etc/outside.ipynb", 403),
        ("link-out.ipynb", 403),
        (".hidden.ipynb", 403),
        ("folder/.hidden/nb.ipynb", 403),
        ("nope.ipynb", 404),
        ("folder", 400),
    ],
)
async def test_paths_outside_the_root_hidden_or_missing_are_refused(
    jp_fetch, jp_root_dir, path, status
):
    outside = jp_root_dir.parent / "outside.ipynb"
    write(outside, notebook([code("q", "y = 1")]))
    (jp_root_dir / "link-out.ipynb").symlink_to(outside)
    write(jp_root_dir / ".hidden.ipynb", notebook([]))
    write(jp_root_dir / "folder" / ".hidden" / "nb.ipynb", notebook([]))

    code_, body = await status_and_body(post_verify(jp_fetch, {"notebook": path}))

    assert code_ == status, body
    assert body["message"]


async def test_an_unknown_kernel_is_404_before_any_job(jp_fetch, jp_root_dir):
    write(jp_root_dir / "gone.ipynb", notebook([code("q", "y = 1")], kernel="conda-env-gone-py"))
    write(jp_root_dir / "nb.ipynb", notebook([code("q", "y = 1")]))

    named, body = await status_and_body(
        post_verify(jp_fetch, {"notebook": "nb.ipynb", "kernel": "nope"})
    )
    own, own_body = await status_and_body(post_verify(jp_fetch, {"notebook": "gone.ipynb"}))

    assert named == 404
    assert body["reason"] == "kernel not found"
    assert "'nope'" in body["message"]
    assert own == 404
    assert "conda-env-gone-py" in own_body["message"]
    assert "restore" in own_body["message"]


async def test_restore_without_anything_to_restore_from_is_400(jp_fetch, jp_root_dir):
    write(jp_root_dir / "nb.ipynb", notebook([code("q", "y = 1")]))

    status, body = await status_and_body(
        post_verify(jp_fetch, {"notebook": "nb.ipynb", "restore": True})
    )

    assert status == 400, body
    assert str(jp_root_dir) not in body["message"]


class TestContentsReadDenied:
    @pytest.fixture
    def jp_server_config(self):
        return server_config(DenyContentsRead)

    @pytest.mark.parametrize("path", ["nb.ipynb", "nope.ipynb", "../x.ipynb"])
    async def test_verify_is_403_and_says_nothing_of_the_file(self, jp_fetch, jp_root_dir, path):
        write(jp_root_dir / "nb.ipynb", notebook([code("q", "y = 1")]))

        status, body = await status_and_body(post_verify(jp_fetch, {"notebook": path}))

        assert status == 403
        assert "read" in body["message"]


# --------------------------------------------------------------------------------------------
# in a restored environment


class TestRestored:
    """`restore`: the notebook's embedded spec is restored into a temporary prefix."""

    @pytest.fixture
    def installation(self, conda_installation_factory) -> CondaInstallation:
        return conda_installation_factory()

    @pytest.fixture
    def jp_home_dir(self, installation: CondaInstallation) -> Path:
        return installation.home

    @staticmethod
    def spec_notebook(channel: RigChannel, cells: list[dict[str, Any]]) -> dict[str, Any]:
        spec = {"channels": [channel.url], "dependencies": ["python", "ipykernel", "pkgc"]}
        return notebook(cells, kernel="conda-env-gone-py", jupyter_repro={"environment": spec})

    async def test_it_runs_in_a_temporary_environment_removed_afterwards(
        self, jp_fetch, jp_root_dir, rig_channel, installation
    ):
        cells = [
            code("prefix", "import sys; print(sys.prefix)", ran=False),
            code("same", "print(1 + 1)", [stdout("2\n")]),
        ]
        write(jp_root_dir / "nb.ipynb", self.spec_notebook(rig_channel, cells))
        registry = installation.home / ".conda" / "environments.txt"
        registered = registry.read_text() if registry.exists() else ""

        response = await post_verify(jp_fetch, {"notebook": "nb.ipynb", "restore": True})
        assert response.code == 202
        final, seen = await poll(jp_fetch, json.loads(response.body)["id"], finished)

        assert final["state"] == "succeeded", final["error"]
        phases = [j["progress"]["phase"] for j in seen]
        assert "restore" in phases
        assert phases.index("restore") < phases.index("execute")
        assert any(j["progress"].get("step") for j in seen if j["progress"]["phase"] == "restore")
        report = final["result"]
        prefix = Path(report["environment"]["prefix"])
        assert prefix.name == "env"
        assert not prefix.exists()
        assert not prefix.parent.exists()
        assert report["summary"]["match"] == 1
        assert report["summary"]["no_reference"] == 1
        assert any("removed the temporary environment" in line for line in final["log"])
        assert (registry.read_text() if registry.exists() else "") == registered

    async def test_cancelling_removes_the_temporary_environment(
        self, jp_fetch, jp_root_dir, rig_channel
    ):
        cells = [code("slow", "import time; time.sleep(120)")]
        write(jp_root_dir / "nb.ipynb", self.spec_notebook(rig_channel, cells))

        response = await post_verify(jp_fetch, {"notebook": "nb.ipynb", "restore": True})
        job_id = json.loads(response.body)["id"]
        job, _ = await poll(jp_fetch, job_id, running_cell)
        found = [re.search(r" into (/\S+)$", line) for line in job["log"]]
        prefix = Path(next(m for m in found if m).group(1))
        assert prefix.is_dir()

        await jp_fetch("repro", "jobs", job_id, method="DELETE")
        final, _ = await poll(jp_fetch, job_id, finished)

        assert final["state"] == "cancelled"
        assert not prefix.exists()
        assert not prefix.parent.exists()


# --------------------------------------------------------------------------------------------
# the job's progress, without a server


def test_verify_progress_counts_finished_cells_and_keeps_their_order():
    from jupyter_repro.jobs import Job, VerifyJobProgress

    job = Job(kind="verify")
    progress = VerifyJobProgress(job)
    progress.phase("solve", 0, 1)
    assert job.progress_json() == {
        "phase": "restore",
        "done": 0,
        "total": 1,
        "step": "solve",
        "cells": [],
    }
    progress.cell(2, 3, "b", None)
    progress.cell(2, 3, "b", "match")
    progress.cell(0, 3, "a", "skipped")
    progress.cell(5, 3, None, None)

    document = job.progress_json()
    assert document["phase"] == "execute"
    assert "step" not in document
    assert (document["done"], document["total"]) == (2, 3)
    assert document["cells"] == [
        {"index": 2, "id": "b", "status": "match"},
        {"index": 0, "id": "a", "status": "skipped"},
        {"index": 5, "id": None, "status": "running"},
    ]
    # A copy: a client's document does not change under it.
    document["cells"][0]["status"] = "x"
    assert job.progress_json()["cells"][0]["status"] == "match"


def test_a_restore_job_has_no_cells():
    from jupyter_repro.jobs import Job

    assert set(Job(kind="restore").progress_json()) == {"phase", "done", "total"}
