"""schemathesis against a live server: the served OpenAPI document and the server agree.

The run is schemathesis's own engine (what `st run` does: examples, coverage, fuzzing and
stateful phases) with its conformance checks, against a pytest-jupyter server whose HOME is
the rig installation, authenticated with the server's token. Bounded and deterministic: a
fixed seed, derandomized generation, a small number of examples per operation. It must find
no server error and no disagreement between an answer and the document.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from tests.rig.channel import RigChannel
from tests.rig.installation import CondaInstallation
from tests.test_openapi import notebook

pytestmark = pytest.mark.timeout(300)

# Another seed, more examples: another (longer) run.
SEED = int(os.environ.get("REPRO_SCHEMATHESIS_SEED", "20261206"))
MAX_EXAMPLES = int(os.environ.get("REPRO_SCHEMATHESIS_EXAMPLES", "25"))  # per operation, phase

CHECKS = {
    # A schema cannot say that a notebook exists and is JSON, that a spec's text is a valid
    # environment.yml, or that format=explicit takes only mode=exact: schema-valid requests
    # are rightly refused with 400/404/422 (all documented), which this check counts as
    # failures. Status, content type and body of every answer are still checked below.
    "positive_data_acceptance": {"enabled": False},
    # For a request without the `Authorization` header this check wants 401. jupyter_server
    # answers 403 to every unauthenticated request (its APIHandler, before any route code
    # runs); the document says so and we keep the server's answer. `ignored_auth` (enabled)
    # still checks that requests without or with wrong credentials are refused, and
    # tests/test_route_security.py that every route answers exactly 403.
    "missing_required_header": {"enabled": False},
    # DELETE repro/jobs/{id} cancels a job; the job stays readable, as `cancelled`, until
    # the retention time forgets it (documented, as gator does): not a use after free.
    "use_after_free": {"enabled": False},
}


def fuzz_document(served: dict[str, Any]) -> dict[str, Any]:
    """The served document as the fuzzer sees it: restores are dry runs only (a real
    restore starts a job that builds an environment), and path parameters have examples
    that exist in the fuzz server's root and installation."""
    document = copy.deepcopy(served)
    restore = document["components"]["schemas"]["RestoreRequest"]
    restore["properties"]["dry_run"] = {"const": True}
    restore["required"] = sorted({*restore["required"], "dry_run"})
    examples = {
        "path": ["nb.ipynb", "folder/nb.ipynb", "embedded.ipynb", "escape.ipynb"],
        "name": ["py", "base", "old", "nope"],
    }
    for item in document["paths"].values():
        for parameter in item.get("parameters", []):
            if parameter["name"] in examples:
                parameter["examples"] = {
                    f"e{n}": {"value": value} for n, value in enumerate(examples[parameter["name"]])
                }
    return document


def run_engine(document: dict[str, Any], base_url: str, token_header: str) -> dict[str, Any]:
    """Run schemathesis's engine (blocking: call it off the server's event loop)."""
    from schemathesis.engine import events, from_schema

    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": base_url,
            "headers": {"Authorization": token_header},
            "workers": 1,
            "request-timeout": 60,
            "cache": {"enabled": False},  # nothing written beside the tests
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "checks": CHECKS,
            "operations": [
                {
                    # Positive cases only: a negative one may drop `dry_run`, and a valid
                    # restore without it starts a job. tests/test_openapi.py's own fuzz sends
                    # malformed restore bodies (always as dry runs).
                    "include-path": "/restore",
                    "generation": {"mode": "positive"},
                }
            ],
        }
    )
    schema = schemathesis.openapi.from_dict(document, config=config)
    failures: list[str] = []
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    finished = None
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    statuses[str(interaction.response.status_code)] += 1
            for checks in recorder.checks.values():
                for check in checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    failures.append(
                        f"{recorder.label}: {check.name}: {failure.title}\n"
                        f"  {failure.message[:600]}\n  {check.failure_info.code_sample[:800]}"
                    )
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            errors.append(repr(event)[:1000])
        elif isinstance(event, events.EngineFinished):
            finished = event
    return {
        "failures": sorted(set(failures)),
        "statuses": statuses,
        "errors": errors,
        "stop_reason": str(finished.stop_reason) if finished else None,
    }


@pytest.fixture
def jp_home_dir(rig_installation: CondaInstallation) -> Path:
    """The rig's installation: real environments and kernels (read-only: writes land in the
    server root, restores are dry runs)."""
    return rig_installation.home


@pytest.fixture
def jp_server_config(rig_channel: RigChannel):
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_repro": True},
            "allow_unauthenticated_access": False,
        },
        # A dry run plans against the rig's local channel only: never the network.
        "ReproApp": {"allowed_channels": [rig_channel.url]},
    }


@pytest.fixture
def server_root(jp_root_dir: Path, tmp_path_factory) -> Path:
    """Notebooks (kernel here, kernel gone with an embedded spec, no such kernel), a hidden
    one, files that are not notebooks, and symlinks out of the root."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.ipynb").write_text(json.dumps(notebook("python3")))
    (jp_root_dir / "nb.ipynb").write_text(json.dumps(notebook("conda-env-py-py")))
    embedded = notebook("conda-env-gone-py")
    embedded["metadata"]["jupyter_repro"] = {
        "environment": {"name": "gone", "dependencies": ["python", "pkgc"]}
    }
    (jp_root_dir / "embedded.ipynb").write_text(json.dumps(embedded))
    (jp_root_dir / "folder").mkdir()
    (jp_root_dir / "folder" / "nb.ipynb").write_text(json.dumps(notebook("missing-kernel")))
    (jp_root_dir / ".hidden.ipynb").write_text(json.dumps(notebook("python3")))
    (jp_root_dir / "not-json.ipynb").write_text("{not json")
    (jp_root_dir / "environment.yml").write_text("dependencies:\n  - python\n")
    (jp_root_dir / "escape.ipynb").symlink_to(outside / "secret.ipynb")
    return jp_root_dir


async def test_schemathesis_finds_no_server_error_and_no_drift_from_the_document(
    jp_fetch, jp_http_port, jp_base_url, jp_auth_header, server_root
):
    served = json.loads((await jp_fetch("repro", "openapi.json")).body)
    base_url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}repro"

    started = time.monotonic()
    # The server runs on this event loop: the engine's blocking requests go from a thread.
    result = await asyncio.to_thread(
        run_engine, fuzz_document(served), base_url, jp_auth_header["Authorization"]
    )
    elapsed = time.monotonic() - started

    statuses = result["statuses"]
    print(
        f"schemathesis {schemathesis.__version__}: {sum(statuses.values())} requests in "
        f"{elapsed:.1f} s, seed {SEED}, statuses {dict(sorted(statuses.items()))}"
    )
    assert result["errors"] == []
    assert result["failures"] == [], "\n\n".join(result["failures"])
    assert not [s for s in statuses if s.startswith("5")], statuses
    assert result["stop_reason"] == "completed"
    # It tested something: successes and refusals both.
    assert statuses["200"] > 0
    assert statuses["400"] > 0
    assert statuses["403"] > 0
    assert sum(statuses.values()) >= 300
