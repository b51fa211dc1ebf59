"""`python -m benchmarks`: run every benchmark, print one markdown table, save it as JSON."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from . import export, hub_cache, kernels, load, lock, pack, restore, startup, strip, verify
from ._table import Result, markdown_table

BENCHMARKS = {
    "startup": startup.run,
    "kernels": kernels.run,
    "export": export.run,
    "restore": restore.run,
    "lock": lock.run,
    "pack": pack.run,
    "hub_cache": hub_cache.run,
    "load": load.run,
    "strip": strip.run,
    "verify": verify.run,
}
RESULTS_DIR = Path(__file__).resolve().parent.parent / "bench-results"


def main(names: list[str]) -> int:
    selected = names or list(BENCHMARKS)
    unknown = [n for n in selected if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    results: list[Result] = []
    for name in selected:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.extend(BENCHMARKS[name]())
    print(markdown_table(results))
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "latest.json").write_text(
        json.dumps([asdict(r) | {"ratio": r.ratio, "met": r.met} for r in results], indent=1)
    )
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    status = main(sys.argv[1:])
    # py-rattler (used to build the benchmark environments) can abort during interpreter
    # finalization; leave without it once everything is printed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
