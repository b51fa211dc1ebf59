"""Credentials never leave the server: not in exports, not in messages, job logs or the log.

One redaction (`redact_url`) applies to every URL shown, logged, returned or exported: user
and password, `/t/<token>` segments, and query parameters that carry credentials.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from jupyter_repro.environments.channels import redact_text, redact_url
from jupyter_repro.notebooks.embedded import embed_spec
from jupyter_repro.specs.export import export_environment, export_explicit
from tests.rig.installation import CondaInstallation
from tests.server_helpers import answer
from tests.test_notebook_routes import write_notebook

pytestmark = pytest.mark.timeout(240)

SECRETS = ("pw-0001", "tok-0002", "qtok-0003", "sig-0004", "hubtok-0005")
# An address nothing listens on: the restore fails fast, naming the channel in its errors.
DEAD = "127.0.0.1:9"
ALLOWED = f"http://ok:pw-0001@{DEAD}/allowed?token=qtok-0003"


def assert_clean(text: str, where: str = "") -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked {where}: {text[:400]}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw-0001@h.org/ch", "https://h.org/ch"),
        ("https://tok-0002@h.org/ch", "https://h.org/ch"),
        (
            "https://conda.anaconda.org/t/tok-0002/org/noarch",
            "https://conda.anaconda.org/org/noarch",
        ),
        ("https://h.org/p/x.conda?token=qtok-0003", "https://h.org/p/x.conda"),
        ("https://h.org/x.whl?X-Amz-Signature=sig-0004&v=2", "https://h.org/x.whl?v=2"),
        ("https://h.org/x?access_token=qtok-0003&api_key=sig-0004", "https://h.org/x"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("https://h.org/simple/?page=2", "https://h.org/simple/?page=2"),
        ("file:///srv/channel", "file:///srv/channel"),
    ],
)
def test_redact_url(url: str, expected: str):
    assert redact_url(url) == expected


def test_redact_text_redacts_every_url_in_a_message():
    message = (
        "cannot read https://u:pw-0001@h.org/t/tok-0002/c/ and 'http://h/?token=qtok-0003': "
        "error sending request for url (https://h.org/r.json?sig=sig-0004)"
    )

    redacted = redact_text(message)

    assert_clean(redacted)
    assert "https://h.org/c/" in redacted


def test_query_tokens_in_records_and_pip_urls_never_reach_an_export(
    conda_installation: CondaInstallation, tmp_path: Path
):
    prefix = conda_installation.create_env("tokens", ["python", "pkgc"])
    for record_path in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(record_path.read_text())
        data["url"] = "https://pkgs.example.org/org/noarch/" + data["fn"] + "?token=qtok-0003"
        data["channel"] = "https://user:pw-0001@pkgs.example.org/org?auth=tok-0002"
        record_path.write_text(json.dumps(data))
    dist = conda_installation.add_pip_package(prefix, "signed", "1.0")
    (dist / "direct_url.json").write_text(
        json.dumps(
            {
                "url": "https://files.example.org/signed-1.0.tar.gz?X-Amz-Signature=sig-0004",
                "archive_info": {},
            }
        )
    )

    outputs = {
        f"{mode}.{fmt}": getattr(export_environment(prefix, mode), f"to_{fmt}")()
        for mode in ("portable", "exact", "no-builds")
        for fmt in ("yaml", "json")
    }
    outputs["explicit"] = export_explicit(prefix)
    notebook = write_notebook(tmp_path / "nb.ipynb")
    embed_spec(notebook, export_environment(prefix), mode="portable")
    outputs["notebook"] = notebook.read_text()

    for name, text in outputs.items():
        assert_clean(text, name)
    assert "signed @ https://files.example.org/signed-1.0.tar.gz" in outputs["portable.yaml"]
    assert "https://pkgs.example.org/org/noarch/" in outputs["explicit"]


# -- a real server ------------------------------------------------------------------------


@pytest.fixture
def installation(conda_installation_factory) -> CondaInstallation:
    inst = conda_installation_factory()
    # A condarc whose channel alias and default channels carry credentials.
    inst.condarc.write_text(
        inst.condarc.read_text()
        + f"channel_alias: http://alias:pw-0001@{DEAD}/t/tok-0002\n"
        + f"default_channels:\n  - http://{DEAD}/t/tok-0002/main?token=qtok-0003\n"
    )
    return inst


@pytest.fixture
def jp_home_dir(installation: CondaInstallation) -> Path:
    return installation.home


@pytest.fixture
def jp_server_config(jp_server_config, rig_channel, monkeypatch):
    # pip gives up at once on the dead index (it reads PIP_* from the server's environment).
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    config = dict(jp_server_config)
    config["ReproApp"] = {
        "allowed_channels": [ALLOWED, rig_channel.url],
        "pip_index_url": f"http://pipuser:pw-0001@{DEAD}/t/tok-0002/simple?token=qtok-0003",
    }
    return config


async def _answer(request) -> tuple[int, dict]:
    code, _, body = await answer(request)
    return code, body


def _restore(jp_fetch, spec: str, **body):
    payload = {"source": {"content": spec}, "name": "leaky", **body}
    return jp_fetch("repro", "restore", method="POST", body=json.dumps(payload))


async def _finished(jp_fetch, job_id: str) -> dict:
    for _ in range(400):
        job = json.loads((await jp_fetch("repro", "jobs", job_id)).body)
        if job["state"] in ("failed", "succeeded", "cancelled"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


async def test_no_credential_in_answers_job_logs_or_the_server_log(jp_fetch, caplog, rig_channel):
    caplog.set_level(logging.DEBUG)
    specs = {
        # refused by the policy: the message names the channel and the allowed ones
        "elsewhere": (
            f"channels:\n  - http://u:pw-0001@{DEAD}/t/tok-0002/other?sig=sig-0004\n"
            "dependencies:\n  - pkga\n"
        ),
        "alias": "channels:\n  - private\ndependencies:\n  - pkga\n",
        "defaults": "channels:\n  - defaults\ndependencies:\n  - pkga\n",
        # allowed, then unreachable: the engine's own error names the URL
        "allowed": f"channels:\n  - {ALLOWED}\ndependencies:\n  - pkga\n",
        "explicit": (
            "@EXPLICIT\n"
            f"http://u:pw-0001@{DEAD}/t/tok-0002/allowed/noarch/pkga-1.0-0.conda#{'0' * 32}\n"
        ),
        "bad explicit line": "@EXPLICIT\nhttps://h/x.whl?token=qtok-0003\n",
        # solved and installed, then pip fails on the configured index: a job that fails
        "pip": (
            f"channels:\n  - {rig_channel.url}\ndependencies:\n  - python\n"
            "  - pip:\n      - nothing-here==1.0\n"
        ),
    }

    answers = {}
    for index, (label, spec) in enumerate(specs.items()):
        answers[f"{label} (plan)"] = await _answer(_restore(jp_fetch, spec, dry_run=True))
        code, job = await _answer(_restore(jp_fetch, spec, name=f"leaky{index}"))
        if code == 202:
            job = await _finished(jp_fetch, job["id"])
        answers[f"{label} (job)"] = (code, job)

    assert all(code < 500 for code, _ in answers.values()), answers
    assert "not allowed" in json.dumps(answers["elsewhere (plan)"])
    job = answers["pip (job)"][1]
    assert job["state"] == "failed"
    assert "pip could not install" in job["error"]["message"]
    assert any(str(DEAD) in line for line in job["log"] + [job["error"]["message"]])
    for label, (_, body) in answers.items():
        assert_clean(json.dumps(body), label)
    assert_clean("\n".join(r.getMessage() for r in caplog.records), "in the server log")
    assert_clean(caplog.text, "in the server log text")
