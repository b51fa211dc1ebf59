"""Export of a rig environment with about 300 records against only `json.load` of its records.

The baseline is the least any exporter reading `conda-meta` must do: list it and decode every
record. `conda env export` itself cannot run here (no conda), and it also starts a Python with
conda's imports and runs `pip list`, so it would be a far slower peer; the baseline is the
honest bar.

Two environments: the rig's as built (tiny records: one file each) and the same records
padded to the size real ones have (a few hundred paths each, with `paths_data`), where the
bulky lists dominate and reading only the needed fields pays off.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from jupyter_repro.specs.export import export_environment
from tests.rig.channel import build_channel, generic_package, ipykernel_package, python_package
from tests.rig.installation import CondaInstallation

from ._table import Result

RECORDS = int(os.environ.get("REPRO_BENCH_EXPORT_RECORDS", "300"))
REPEATS = int(os.environ.get("REPRO_BENCH_EXPORT_REPEATS", "21"))
PADDED_PATHS = 380
"""Paths per padded record: 300 such records hold about 114k paths, as in the notes."""
LIMIT = 1.5


def _environment(base: Path) -> Path:
    """A prefix of RECORDS records: python, ipykernel and tiny generic packages."""
    names = [f"bench-{i:03d}" for i in range(RECORDS - 2)]
    packages = [python_package(), ipykernel_package(), *(generic_package(n, "1.0") for n in names)]
    channel = build_channel(base / "channel", packages)
    inst = CondaInstallation.create(base / "home", channel, base / "pkgs", root_specs=["python"])
    prefix = inst.create_env("bench", ["python", "ipykernel", *names])
    count = len(list((prefix / "conda-meta").glob("*.json")))
    if count != RECORDS:
        raise RuntimeError(f"expected {RECORDS} records, the environment has {count}")
    return prefix


def _pad_records(prefix: Path) -> None:
    """Give every record a real record's bulk: `files` and `paths_data` for many paths."""
    for path in (prefix / "conda-meta").glob("*.json"):
        record = json.loads(path.read_text())
        files = [
            f"lib/python3.11/site-packages/{record['name']}/m{i}/f{i}.py"
            for i in range(PADDED_PATHS)
        ]
        entries = [
            {"_path": f, "path_type": "hardlink", "sha256": "0" * 64, "size_in_bytes": 1024}
            for f in files
        ]
        record["files"] = record["files"] + files
        record["paths_data"]["paths"] = record["paths_data"]["paths"] + entries
        path.write_text(json.dumps(record, indent=2))  # the key order rattler wrote


def _median_seconds(action: Callable[[], object]) -> float:
    action()  # warm: the page cache and imports, for both sides alike
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _json_load_all(prefix: Path) -> Callable[[], object]:
    meta = prefix / "conda-meta"

    def load() -> list[object]:
        loaded = []
        for name in sorted(os.listdir(meta)):
            if name.endswith(".json"):
                with open(meta / name, "rb") as fh:
                    loaded.append(json.load(fh))
        return loaded

    return load


def _compare(prefix: Path, label: str) -> Result:
    ours = _median_seconds(lambda: export_environment(prefix, "exact").to_yaml())
    baseline = _median_seconds(_json_load_all(prefix))
    megabytes = sum(p.stat().st_size for p in (prefix / "conda-meta").glob("*.json")) / 1e6
    return Result(
        f"export --mode exact to YAML, {RECORDS} {label} records, {megabytes:.1f} MB "
        f"(median of {REPEATS})",
        ours * 1000, baseline * 1000, "json.load of every conda-meta/*.json", "ms", limit=LIMIT,
    )  # fmt: skip


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="repro-bench-export-") as tmp:
        prefix = _environment(Path(tmp))
        results = [_compare(prefix, "rig")]
        _pad_records(prefix)
        results.append(_compare(prefix, "full-size"))
    return results
