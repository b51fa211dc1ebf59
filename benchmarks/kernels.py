"""Environments as kernels: listing latency, spawns, freshness, launch overhead and memory.

Peer: a stock Jupyter server (jupyter-repro disabled) listing the same number of static
kernelspec folders, one per environment, which is what users of `ipykernel install` have.
nb_conda_kernels itself cannot run here (it needs `conda info --json`); its documented
behaviour is a subprocess per refresh and a 60-second cache.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

from tests.rig.channel import PYTHON_KERNEL_DIR, build_channel
from tests.rig.installation import CondaInstallation

from ._server import BenchServer
from ._table import Result

SIZES = tuple(int(n) for n in os.environ.get("REPRO_BENCH_ENV_COUNTS", "10,100,500").split(","))
LISTINGS = int(os.environ.get("REPRO_BENCH_LISTINGS", "20"))
KERNEL_STARTS = int(os.environ.get("REPRO_BENCH_KERNEL_STARTS", "7"))


def _installation(base: Path, count: int) -> CondaInstallation:
    channel = build_channel(base / "channel")
    inst = CondaInstallation.create(base / "home", channel, base / "pkgs")
    inst.create_envs([f"env{i:03d}" for i in range(count)], ["python", "ipykernel"])
    return inst


def _static_kernelspecs(inst: CondaInstallation, data_dir: Path) -> None:
    """One kernelspec folder per environment, as `python -m ipykernel install` writes them."""
    for name, prefix in inst.envs.items():
        folder = data_dir / "kernels" / f"conda-env-{name}-py"
        folder.mkdir(parents=True)
        spec = json.loads((prefix / PYTHON_KERNEL_DIR / "kernel.json").read_text())
        spec["argv"][0] = str(prefix / "bin" / "python")
        (folder / "kernel.json").write_text(json.dumps(spec))


def _median_listing(server: BenchServer, expected: int) -> float:
    assert len(server.get_json("api/kernelspecs")["kernelspecs"]) >= expected  # warm, and check
    times = []
    for _ in range(LISTINGS):
        started = time.perf_counter()
        server.get_json("api/kernelspecs")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def listing(count: int) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix=f"repro-bench-kernels-{count}-") as tmp:
        base = Path(tmp)
        inst = _installation(base / "rig", count)
        with BenchServer(base / "ours", inst.home, extension=True) as ours:
            ours.settle()
            spawns_before = ours.spawns()
            ours_latency = _median_listing(ours, count)
            spawns = (ours.spawns() - spawns_before) / (LISTINGS + 1)
            for line in ours.spawn_lines()[spawns_before:]:
                print(f"  spawned during listings: {line}", file=sys.stderr)
            ours_rss = ours.rss_mb()
        stock_base = base / "stock"
        _static_kernelspecs(inst, stock_base / "data")
        with BenchServer(stock_base, base / "empty-home", extension=False) as stock:
            stock_latency = _median_listing(stock, count)
            stock_rss = stock.rss_mb()
    results = [
        Result(
            f"GET /api/kernelspecs, {count} environments (median of {LISTINGS})",
            ours_latency * 1000, stock_latency * 1000,
            f"stock server, {count} static kernelspecs", "ms",
            limit=1.5 if count >= 500 else 3.0,
        ),
        Result(
            f"subprocesses per listing, {count} environments",
            spawns, None, "nb_conda_kernels: 1 per refresh", "", limit=0, compare="at_most",
        ),
    ]  # fmt: skip
    if count >= 500:
        results.append(
            Result(
                f"server memory (RSS) after listing, {count} environments",
                ours_rss, stock_rss, f"stock server, {count} static kernelspecs", "MB",
                limit=30, compare="excess",
            )
        )  # fmt: skip
    return results


def freshness() -> Result:
    """Seconds from a new environment existing on disk to its kernel being listed."""
    with tempfile.TemporaryDirectory(prefix="repro-bench-fresh-") as tmp:
        base = Path(tmp)
        inst = _installation(base / "rig", 20)
        with BenchServer(base / "ours", inst.home, extension=True) as server:
            server.get_json("api/kernelspecs")
            inst.create_env("brand-new", ["python", "ipykernel"])
            created = time.perf_counter()
            while "conda-env-brand-new-py" not in server.get_json("api/kernelspecs")["kernelspecs"]:
                if time.perf_counter() - created > 30:
                    break
                time.sleep(0.02)
            seen = time.perf_counter() - created
    return Result(
        "new environment listed after (s)", seen, 60.0, "nb_conda_kernels cache timeout", "s",
        limit=2, compare="at_most",
    )  # fmt: skip


def _start_to_ready(spec: KernelSpec, base: Path) -> float:
    """Seconds from launching the kernel to its first kernel_info_reply.

    One request, sent before the kernel is up (zmq queues it until the kernel's socket
    exists), answered as soon as the kernel can answer. jupyter_client's wait_for_ready adds
    0.2 s steps while IOPub subscribes, which would drown the launcher's few milliseconds.
    """
    kernels = base / "kernels" / "k"
    kernels.mkdir(parents=True, exist_ok=True)
    (kernels / "kernel.json").write_text(json.dumps(spec.to_dict()))
    manager = KernelManager(
        kernel_name="k", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels.parent)])
    )
    started = time.perf_counter()
    manager.start_kernel()
    client = manager.blocking_client()
    client.start_channels()
    try:
        client.kernel_info()
        while True:
            reply = client.get_shell_msg(timeout=60)
            if reply["msg_type"] == "kernel_info_reply":
                return time.perf_counter() - started
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def launch_overhead() -> Result:
    """Kernel start-to-ready through the activating launcher against the same kernel direct."""
    from jupyter_repro.kernels.launch import launcher_argv

    with tempfile.TemporaryDirectory(prefix="repro-bench-launch-") as tmp:
        base = Path(tmp)
        channel = build_channel(base / "channel")
        inst = CondaInstallation.create(base / "home", channel, base / "pkgs")
        # With activate.d and env_vars.d: the launcher's slowest path (it runs bash).
        prefix = inst.create_env("act", ["python", "ipykernel", "rig-activate", "rig-envvars"])
        kernel_argv = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        direct_argv = [str(prefix / "bin" / "python"), *kernel_argv[1:]]
        via = KernelSpec(
            argv=launcher_argv(str(prefix), kernel_argv), display_name="via", language="python"
        )
        direct = KernelSpec(argv=direct_argv, display_name="direct", language="python")
        through, straight = [], []
        for _ in range(KERNEL_STARTS):
            through.append(_start_to_ready(via, base / "via"))
            straight.append(_start_to_ready(direct, base / "direct"))
    return Result(
        f"kernel start-to-ready via launcher (median of {KERNEL_STARTS})",
        statistics.median(through) * 1000, statistics.median(straight) * 1000,
        "same kernel started directly", "ms", limit=60, compare="excess",
    )  # fmt: skip


def run() -> list[Result]:
    results: list[Result] = []
    for count in SIZES:
        results.extend(listing(count))
    results.append(freshness())
    results.append(launch_overhead())
    return results
