"""POST repro/restore and GET/DELETE repro/jobs/{id} against a real server and the rig channel."""

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
from tests.server_helpers import kernelspecs, run_in_kernel, start_kernel

pytestmark = pytest.mark.timeout(240)

POLL_TIMEOUT = 120.0


@pytest.fixture
def installation(conda_installation_factory) -> CondaInstallation:
    """A fresh installation per test: restores add environments to it."""
    return conda_installation_factory()


@pytest.fixture
def jp_home_dir(installation: CondaInstallation) -> Path:
    """The server's HOME is the installation's: its ~/.condarc, ~/.conda and envs dirs."""
    return installation.home


def environment_yml(channel: RigChannel, *dependencies: str) -> str:
    lines = ["channels:", f"  - {channel.url}", "dependencies:"]
    lines += [f"  - {d}" for d in dependencies]
    return "\n".join(lines) + "\n"


@pytest.fixture
def spec_file(jp_root_dir: Path, rig_channel: RigChannel) -> str:
    """A server-root-relative environment.yml asking for python, ipykernel and pkgc."""
    (jp_root_dir / "environment.yml").write_text(
        environment_yml(rig_channel, "python", "ipykernel", "pkgc")
    )
    return "environment.yml"


async def post_restore(jp_fetch, body: Any) -> Any:
    raw = body if isinstance(body, str) else json.dumps(body)
    return await jp_fetch("repro", "restore", method="POST", body=raw)


async def status_and_body(request) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of a request that may fail (jp_fetch raises on 4xx/5xx)."""
    try:
        response = await request
    except HTTPClientError as error:
        if error.response is None:  # no HTTP answer at all: not what these tests check
            raise
        return error.code, json.loads(error.response.body)
    return response.code, json.loads(response.body)


async def poll(jp_fetch, job_id: str, until: set[str]) -> tuple[dict[str, Any], list[dict]]:
    """Poll the job until its state is in `until`; return it and every progress seen."""
    seen: list[dict] = []
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        job = json.loads((await jp_fetch("repro", "jobs", job_id)).body)
        seen.append(job["progress"])
        if job["state"] in until:
            return job, seen
        assert time.monotonic() < deadline, f"job still {job['state']} after {POLL_TIMEOUT} s"
        await asyncio.sleep(0.05)


def package_names(plan: dict[str, Any]) -> set[str]:
    return {p["name"] if isinstance(p, dict) else str(p).split()[0] for p in plan["packages"]}


async def test_dry_run_answers_the_plan_and_writes_nothing(jp_fetch, spec_file, installation):
    before = set(installation.home.rglob("*"))

    response = await post_restore(
        jp_fetch, {"source": {"file": spec_file}, "name": "planned", "dry_run": True}
    )

    assert response.code == 200
    plan = json.loads(response.body)
    assert {"python", "ipykernel", "pkgc"} <= package_names(plan)
    assert Path(plan["target"]).name == "planned"
    assert not Path(plan["target"]).exists()
    assert set(installation.home.rglob("*")) == before


async def test_restore_job_creates_an_environment_whose_kernel_runs(
    jp_fetch, jp_serverapp, jp_base_url, spec_file
):
    response = await post_restore(jp_fetch, {"source": {"file": spec_file}, "name": "made"})

    assert response.code == 202
    job = json.loads(response.body)
    assert job["state"] in ("queued", "running")
    assert response.headers["Location"] == f"{jp_base_url}repro/jobs/{job['id']}"

    final, seen = await poll(jp_fetch, job["id"], {"succeeded", "failed", "cancelled"})
    assert final["state"] == "succeeded", final["error"]
    assert any(p["phase"] is not None for p in seen)
    prefix = Path(final["result"]["prefix"])
    assert prefix.name == "made"
    assert (prefix / "conda-meta").is_dir()

    specs = await kernelspecs(jp_fetch)
    assert "conda-env-made-py" in specs
    kernel_id = await start_kernel(jp_fetch, "conda-env-made-py")
    try:
        printed = run_in_kernel(jp_serverapp, kernel_id, "import sys; print(sys.prefix)")
    finally:
        await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    assert Path(printed.strip()).resolve() == prefix.resolve()


async def test_cancelling_a_running_job_leaves_no_folder(jp_fetch, spec_file):
    response = await post_restore(jp_fetch, {"source": {"file": spec_file}, "name": "gone"})
    job_id = json.loads(response.body)["id"]
    deleted = await jp_fetch("repro", "jobs", job_id, method="DELETE")

    assert deleted.code == 202
    answer = json.loads(deleted.body)
    final, _ = await poll(jp_fetch, job_id, {"succeeded", "failed", "cancelled"})
    # The rig restores in milliseconds; a job that finished before the DELETE arrived is
    # left alone (cancelling a finished job is a no-op), which says nothing about cleanup.
    if answer["state"] == "succeeded":
        pytest.skip("the restore finished before the cancel arrived")
    assert answer["cancel_requested"] is True
    assert final["state"] == "cancelled"
    target = Path(final["log"][0].removeprefix("restoring into "))
    assert target.name == "gone"
    assert not os.path.lexists(target)
    assert "conda-env-gone-py" not in await kernelspecs(jp_fetch)


async def test_two_restores_onto_one_name_one_accepted_one_refused(jp_fetch, spec_file):
    body = {"source": {"file": spec_file}, "name": "twice"}

    results = await asyncio.gather(
        status_and_body(post_restore(jp_fetch, body)),
        status_and_body(post_restore(jp_fetch, body)),
    )

    statuses = sorted(code for code, _ in results)
    assert statuses == [202, 409]
    accepted = next(b for code, b in results if code == 202)
    refused = next(b for code, b in results if code == 409)
    assert "twice" in refused["message"]
    final, _ = await poll(jp_fetch, accepted["id"], {"succeeded", "failed", "cancelled"})
    assert final["state"] == "succeeded", final["error"]

    # Once it exists, a third restore is refused too: nothing is ever overwritten.
    code, again = await status_and_body(post_restore(jp_fetch, body))
    assert code == 409
    assert again["message"]


@pytest.mark.parametrize(
    "path", ["../outside.yml", "/etc/passwd", "link-out.yml", "sub/../../outside.yml"]
)
async def test_paths_leaving_the_root_are_refused(jp_fetch, jp_root_dir, rig_channel, path):
    outside = jp_root_dir.parent / "outside.yml"
    outside.write_text(environment_yml(rig_channel, "pkgc"))
    (jp_root_dir / "sub").mkdir()
    (jp_root_dir / "link-out.yml").symlink_to(outside)

    code, body = await status_and_body(
        post_restore(jp_fetch, {"source": {"file": path}, "dry_run": True})
    )

    assert code == 403
    assert body["message"]
    assert "outside.yml" not in json.dumps(body.get("packages", []))


async def test_hidden_and_missing_files_are_refused(jp_fetch, jp_root_dir, rig_channel):
    (jp_root_dir / ".private").mkdir()
    (jp_root_dir / ".private" / "environment.yml").write_text(environment_yml(rig_channel, "pkgc"))

    hidden, body = await status_and_body(
        post_restore(jp_fetch, {"source": {"file": ".private/environment.yml"}, "dry_run": True})
    )
    missing, _ = await status_and_body(
        post_restore(jp_fetch, {"source": {"notebook": "nope.ipynb"}, "dry_run": True})
    )

    assert hidden == 403
    assert "hidden" in body["message"]
    assert missing == 404


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        {"source": {"url": "http://example.com/environment.yml"}},
        {"source": {"file": "a.yml", "content": "x"}},
        {"source": "environment.yml"},
        {"source": {"content": "dependencies: [python]\n"}, "dry_run": "yes"},
        {"source": {"content": "dependencies: [python]\n"}, "name": "a", "prefix": "/tmp/a"},
        {"source": {"content": "dependencies: [python]\n"}, "surprise": 1},
        {"source": {"content": "dependencies: [python]\n"}, "prefix": "relative/env"},
    ],
)
async def test_malformed_requests_are_400_with_a_message(jp_fetch, body):
    code, answer = await status_and_body(post_restore(jp_fetch, body))

    assert code == 400
    assert answer["message"]


async def test_bad_yaml_content_is_422_naming_the_line(jp_fetch):
    content = "channels:\n  - conda-forge\ndependencies:\n  - python\n  - [unclosed\n"

    code, body = await status_and_body(
        post_restore(jp_fetch, {"source": {"content": content}, "dry_run": True})
    )

    assert code == 422
    assert re.search(r"line \d+", body["message"]), body["message"]


async def test_unsatisfiable_spec_is_422_naming_the_package(jp_fetch, rig_channel):
    content = environment_yml(rig_channel, "pkgc >=99")

    code, body = await status_and_body(
        post_restore(jp_fetch, {"source": {"content": content}, "name": "nope", "dry_run": True})
    )

    assert code == 422
    assert "pkgc" in body["message"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_unknown_jobs_are_404(jp_fetch, method):
    code, body = await status_and_body(jp_fetch("repro", "jobs", "f" * 32, method=method))

    assert code == 404
    assert "no job with id" in body["message"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "repro/restore", json.dumps({"source": {"content": "dependencies: []\n"}})),
        ("GET", "repro/jobs/0123", None),
        ("DELETE", "repro/jobs/0123", None),
    ],
)
async def test_every_restore_route_requires_credentials(
    jp_serverapp, http_server_client, jp_base_url, method, path, body
):
    response = await http_server_client.fetch(
        f"{jp_base_url}{path}", method=method, body=body, raise_error=False
    )

    assert response.code == 403
    assert b'"state"' not in response.body


async def test_error_messages_do_not_reveal_where_the_server_root_is(
    jp_fetch, spec_file, jp_root_dir
):
    status, body = await status_and_body(
        post_restore(jp_fetch, {"source": {"notebook": spec_file}, "dry_run": True})
    )

    assert status == 400
    assert spec_file in body["message"]
    assert str(jp_root_dir) not in body["message"]
    assert os.path.realpath(jp_root_dir) not in body["message"]


async def test_name_rescues_a_spec_whose_own_name_is_unusable(jp_fetch, rig_channel):
    content = "name: data/2024\n" + environment_yml(rig_channel, "pkgc")

    code, refused = await status_and_body(post_restore(jp_fetch, {"source": {"content": content}}))
    planned = json.loads(
        (await post_restore(jp_fetch, {"source": {"content": content}, "dry_run": True})).body
    )
    named = json.loads(
        (
            await post_restore(
                jp_fetch, {"source": {"content": content}, "name": "data-2024", "dry_run": True}
            )
        ).body
    )

    assert code == 422
    assert "'data/2024'" in refused["message"]
    assert planned["name"] == "data-2024"
    assert any("'data/2024'" in w for w in planned["warnings"])
    assert named["name"] == "data-2024"
    assert Path(named["target"]).name == "data-2024"


async def test_a_taken_name_plans_with_the_conflict_and_a_free_name(
    jp_fetch, installation, rig_channel
):
    existing = installation.create_env("taken", ["python", "ipykernel"])
    content = "name: taken\n" + environment_yml(rig_channel, "pkgc")

    planned = json.loads(
        (await post_restore(jp_fetch, {"source": {"content": content}, "dry_run": True})).body
    )
    code, refused = await status_and_body(post_restore(jp_fetch, {"source": {"content": content}}))
    renamed = json.loads(
        (
            await post_restore(
                jp_fetch,
                {
                    "source": {"content": content},
                    "name": planned["suggested_name"],
                    "dry_run": True,
                },
            )
        ).body
    )

    assert planned["conflict"] == {
        "name": "taken",
        "prefix": str(existing),
        "reason": "environment",
        "kernels": ["conda-env-taken-py"],
    }
    assert planned["suggested_name"] == "taken-2"
    assert Path(planned["target"]).name == "taken"
    assert "pkgc" in package_names(planned)
    assert code == 409
    assert "'taken-2'" in refused["message"]
    assert renamed["conflict"] is None
    assert renamed["suggested_name"] is None
    assert Path(renamed["target"]).name == "taken-2"


async def test_a_name_is_checked_as_the_user_types(jp_fetch, installation):
    existing = installation.create_env("typed", ["pkga"])

    async def check(name: str) -> dict[str, Any]:
        response = await jp_fetch("repro", "restore", "name", params={"name": name})
        return json.loads(response.body)

    free, taken, invalid = await check("fresh"), await check("typed"), await check("a b")

    assert free["problem"] is None
    assert free["conflict"] is None
    assert Path(free["target"]) == installation.extra_envs_dir.resolve() / "fresh"
    assert taken["conflict"]["prefix"] == str(existing)
    assert taken["suggested_name"] == "typed-2"
    assert invalid["target"] is None
    assert "a b" not in (invalid["suggested_name"] or "")
    assert invalid["problem"]
