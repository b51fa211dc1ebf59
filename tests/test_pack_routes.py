"""POST repro/pack and GET repro/jobs/{id}/download on a real server whose HOME is the
installation of the rig's multi-platform `lockme`: pack a notebook (its kernel's environment
locked on the fly) and an environment, poll the job, download the capsule and read it; the
archive is never written into the server root; bad requests are refused."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from jupyter_repro.specs.capsule import read_manifest
from tests.rig.platforms import LOCKME_NAME, MultiPlatformEnv
from tests.server_helpers import answer
from tests.test_lock_routes import KERNEL, write_notebook

if os.environ.get("CONDA_ROOT") == sys.prefix:
    del os.environ["CONDA_ROOT"]

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def jp_home_dir(multi_platform_env: MultiPlatformEnv) -> Path:
    return multi_platform_env.installation.home


def post_pack(jp_fetch, body: Any):
    return answer(jp_fetch("repro", "pack", method="POST", body=json.dumps(body)))


async def finished(jp_fetch, job_id: str, timeout: float = 150) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        job = json.loads((await jp_fetch("repro", "jobs", job_id)).body)
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        assert loop.time() < deadline, job
        await asyncio.sleep(0.2)


def root_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


async def test_pack_a_notebook_then_download_the_capsule(jp_fetch, jp_root_dir, tmp_path):
    write_notebook(jp_root_dir / "proj" / "analysis.ipynb")
    before = root_files(jp_root_dir)

    status, headers, job = await post_pack(
        jp_fetch, {"notebooks": ["proj/analysis.ipynb"], "platforms": ["linux-64", "win-64"]}
    )

    assert status == 202, job
    assert job["kind"] == "pack"
    assert headers["Location"].endswith(f"repro/jobs/{job['id']}")
    done = await finished(jp_fetch, job["id"])
    assert done["state"] == "succeeded", done
    assert done["progress"]["phase"] == "write"
    result = done["result"]
    assert result["filename"] == f"{LOCKME_NAME}.capsule.tar.zst"
    assert result["summary"]["platforms"] == ["linux-64", "win-64"]
    assert result["summary"]["notebooks"] == 1
    assert "output" not in result["summary"]
    assert isinstance(result["missing"], list)
    # Nothing was written into the server root.
    assert root_files(jp_root_dir) == before

    response = await jp_fetch("repro", "jobs", job["id"], "download")
    assert response.code == 200
    assert response.headers["Content-Type"] == "application/zstd"
    assert response.headers["Content-Disposition"].startswith(
        f'attachment; filename="{result["filename"]}"'
    )
    assert len(response.body) == result["size"]
    capsule = tmp_path / result["filename"]
    capsule.write_bytes(response.body)
    manifest = read_manifest(capsule)
    assert list(manifest.platforms) == ["linux-64", "win-64"]
    assert list(manifest.notebooks) == ["notebooks/analysis.ipynb"]
    assert {c.platform for c in manifest.conda} == {"linux-64", "win-64"}


async def test_pack_an_environment_and_the_archive_goes_when_the_job_is_forgotten(
    jp_fetch, jp_serverapp
):
    status, _, job = await post_pack(jp_fetch, {"environment": LOCKME_NAME})
    assert status == 202, job
    done = await finished(jp_fetch, job["id"])
    assert done["state"] == "succeeded", done
    packs = jp_serverapp.web_app.settings["jupyter_repro"]["pack"]
    archive = packs.archive(job["id"])
    assert archive.path.is_file()
    # The archive lives in the server's private folder, not the root.
    assert Path(jp_serverapp.root_dir) not in archive.path.parents
    assert oct(archive.path.parent.parent.stat().st_mode & 0o777) == "0o700"

    jobs = jp_serverapp.web_app.settings["jupyter_repro"]["jobs"]
    jobs.retention_seconds = 0.0
    await asyncio.sleep(0.01)
    status, _, body = await answer(jp_fetch("repro", "jobs", job["id"], "download"))
    assert status == 404, body
    assert not archive.path.exists()
    assert not archive.path.parent.exists()


async def test_download_of_a_running_or_unknown_job_is_404(jp_fetch):
    status, _, body = await answer(jp_fetch("repro", "jobs", "nope", "download"))
    assert status == 404
    assert body["reason"] == "job not found"

    status, _, job = await post_pack(jp_fetch, {"environment": LOCKME_NAME})
    assert status == 202
    status, _, body = await answer(jp_fetch("repro", "jobs", job["id"], "download"))
    assert status == 404
    assert body["reason"] == "no archive"
    await jp_fetch("repro", "jobs", job["id"], method="DELETE")
    done = await finished(jp_fetch, job["id"])
    assert done["state"] in ("cancelled", "succeeded")


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({}, 400, "give 'notebooks'"),
        ({"notebooks": ["a.ipynb"], "environment": LOCKME_NAME}, 400, "give 'notebooks'"),
        ({"notebooks": []}, 400, "non-empty list"),
        ({"notebooks": "a.ipynb"}, 400, "non-empty list"),
        ({"notebooks": ["a.txt"]}, 400, "not a notebook"),
        ({"notebooks": ["../x.ipynb"]}, 403, "outside"),
        ({"notebooks": ["/etc/x.ipynb"]}, 403, "relative"),
        ({"notebooks": ["missing.ipynb"]}, 404, "missing.ipynb"),
        ({"environment": "nope"}, 404, "nope"),
        ({"environment": ""}, 400, "environment"),
        ({"environment": LOCKME_NAME, "platforms": ["beos-68k"]}, 400, "platform"),
        ({"environment": LOCKME_NAME, "format": "zip"}, 400, "'format'"),
        ({"environment": LOCKME_NAME, "bogus": 1}, 400, "unknown keys"),
        ({"notebooks": ["nb.ipynb"], "format": "conda-pack"}, 400, "environment only"),
        (
            {"environment": LOCKME_NAME, "format": "conda-pack", "platforms": ["win-64"]},
            400,
            "as installed",
        ),
    ],
)
async def test_bad_requests(jp_fetch, jp_root_dir, body, code, words):
    write_notebook(jp_root_dir / "nb.ipynb")
    status, _, answered = await post_pack(jp_fetch, body)

    assert status == code, answered
    assert words in answered["message"]


async def test_a_notebook_without_kernel_nor_lock_is_404(jp_fetch, jp_root_dir):
    write_notebook(jp_root_dir / "gone.ipynb", kernel="conda-env-gone-py")

    status, _, body = await post_pack(jp_fetch, {"notebooks": ["gone.ipynb"]})

    assert status == 404, body
    assert "no lock" in body["message"]
    assert str(jp_root_dir) not in body["message"]


async def test_a_notebook_with_a_lock_but_no_kernel_packs_its_lock(jp_fetch, jp_root_dir):
    locked = await jp_fetch(
        "repro", "environments", LOCKME_NAME, "lock", params=[("format", "json")]
    )
    lock = json.loads(locked.body)
    write_notebook(
        jp_root_dir / "locked.ipynb", kernel="conda-env-gone-py", embedded={"lock": lock}
    )

    status, _, job = await post_pack(jp_fetch, {"notebooks": ["locked.ipynb"]})
    assert status == 202, job
    done = await finished(jp_fetch, job["id"])

    assert done["state"] == "succeeded", done
    assert done["result"]["summary"]["lock"] == "notebook"


async def test_the_contents_authorizer_is_asked(jp_fetch, jp_serverapp, jp_root_dir):
    write_notebook(jp_root_dir / "nb.ipynb", kernel=KERNEL)
    authorizer = jp_serverapp.web_app.settings["authorizer"]
    original = authorizer.is_authorized

    def deny_contents(handler, user, action, resource):
        return resource != "contents" and original(handler, user, action, resource)

    authorizer.is_authorized = deny_contents
    try:
        status, _, body = await post_pack(jp_fetch, {"notebooks": ["nb.ipynb"]})
    finally:
        authorizer.is_authorized = original

    assert status == 403
    assert "contents" in body["message"]


async def test_conda_pack_format_of_an_environment(jp_fetch):
    status, _, job = await post_pack(jp_fetch, {"environment": LOCKME_NAME, "format": "conda-pack"})
    assert status == 202, job
    done = await finished(jp_fetch, job["id"])

    assert done["state"] == "succeeded", done
    assert done["progress"]["phase"] == "pack"
    assert done["result"]["filename"] == f"{LOCKME_NAME}.tar.gz"
    response = await jp_fetch("repro", "jobs", job["id"], "download")
    assert response.headers["Content-Type"] == "application/gzip"
    assert response.body[:2] == b"\x1f\x8b"
    assert len(response.body) == done["result"]["size"]


async def test_a_pack_fetches_nothing_from_outside_the_allowed_channels(jp_fetch, jp_serverapp):
    """A notebook's lock could name any URL: the server's channel policy applies to a pack as
    to a restore, before anything is downloaded."""
    import dataclasses

    service = jp_serverapp.web_app.settings["jupyter_repro"]["restore"].service
    before = service.options
    service.options = dataclasses.replace(
        before, allowed_channels=("https://conda.anaconda.org/conda-forge",)
    )
    try:
        status, _, job = await post_pack(jp_fetch, {"environment": LOCKME_NAME})
        assert status == 202, job
        done = await finished(jp_fetch, job["id"])
    finally:
        service.options = before
    assert done["state"] == "failed", done
    assert "not inside a channel allowed on this server" in done["error"]["message"]
    status, _, body = await answer(jp_fetch("repro", "jobs", job["id"], "download"))
    assert status == 404, body
