"""Concurrent clients against the REST API: errors, p99 latency and throughput.

20 clients make 200 requests each to `repro/environments` and `repro/notebooks/{path}/drift`
on a server with 100 environments, and, for comparison on the same server, to
`api/kernelspecs`. Loopback only; the run is bounded by its request count.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

from jupyter_repro.notebooks.embedded import embed_spec
from jupyter_repro.specs.export import export_environment
from tests.rig.channel import build_channel
from tests.rig.installation import CondaInstallation

from ._server import BenchServer
from ._table import Result

CLIENTS = int(os.environ.get("REPRO_BENCH_LOAD_CLIENTS", "20"))
REQUESTS = int(os.environ.get("REPRO_BENCH_LOAD_REQUESTS", "200"))
ENVIRONMENTS = 100
WARM_UP = 5


def _notebook(root: Path, inst: CondaInstallation) -> str:
    """A notebook on the first environment's kernel, with that environment embedded."""
    prefix = inst.envs["env000"]
    notebook = root / "analysis.ipynb"
    document = {
        "cells": [],
        "metadata": {"kernelspec": {"name": "conda-env-env000-py", "display_name": "env000"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    notebook.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    embed_spec(notebook, export_environment(prefix, "portable"), mode="portable")
    return notebook.name


def _ab(server: BenchServer, path: str) -> tuple[float, int, float]:
    """p99 latency (s), failures and requests/s of CLIENTS x REQUESTS GETs, measured by `ab`.

    ApacheBench is a C client: a Python load generator on the same two cores measures its
    own scheduling more than the server (its p99 came out twice ab's for the same server).
    """
    url = f"http://127.0.0.1:{server.port}/{path}"
    warm = ["ab", "-q", "-k", "-n", str(CLIENTS * WARM_UP), "-c", str(CLIENTS)]
    auth = ["-H", f"Authorization: token {server.token}"]
    subprocess.run([*warm, *auth, url], check=True, capture_output=True)
    command = ["ab", "-q", "-k", "-n", str(CLIENTS * REQUESTS), "-c", str(CLIENTS), *auth, url]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    rate = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99_ms = float(re.search(r"^\s+99%\s+(\d+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    return p99_ms / 1000, failed + (int(non_2xx.group(1)) if non_2xx else 0), rate


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="repro-bench-load-") as tmp:
        base = Path(tmp)
        channel = build_channel(base / "channel")
        inst = CondaInstallation.create(base / "home", channel, base / "pkgs")
        inst.create_envs([f"env{i:03d}" for i in range(ENVIRONMENTS)], ["python", "ipykernel"])
        root = base / "server"
        root.mkdir()
        notebook = _notebook(root, inst)
        routes = {
            "repro/environments": "repro/environments",
            "repro/notebooks/{path}/drift": f"repro/notebooks/{notebook}/drift",
            "api/kernelspecs": "api/kernelspecs",
        }
        measured: dict[str, tuple[float, int, float]] = {}
        with BenchServer(root, inst.home, extension=True) as server:
            assert server.get_json(routes["repro/notebooks/{path}/drift"])["status"] == "in_sync"
            for label, path in routes.items():
                measured[label] = _ab(server, path)
    _, _, kernelspecs_rate = measured["api/kernelspecs"]
    results: list[Result] = []
    for label in ("repro/environments", "repro/notebooks/{path}/drift"):
        p99, errors, rate = measured[label]
        shape = f"{CLIENTS} clients x {REQUESTS}, {ENVIRONMENTS} environments"
        results += [
            Result(f"{label}: errors ({shape})", errors, None, "-", "", limit=0, compare="at_most"),
            Result(
                f"{label}: p99 latency ({shape})", p99 * 1000, None, "-", "ms",
                limit=100, compare="at_most",
            ),
            # Informational: throughput beside the server's own kernelspecs route.
            Result(
                f"{label}: throughput ({shape})", rate, kernelspecs_rate,
                "GET /api/kernelspecs, same server", "req/s", limit=float("inf"),
            ),
        ]  # fmt: skip
    return results
