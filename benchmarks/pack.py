"""Pack: offline capsules against conda-pack, and restoring from a capsule offline.

1. Pack a rig environment of a few dozen packages (the `lock` benchmark's channel; this
   machine's platform, linux-64, only) into a capsule with `pack` (the lock made on the fly
   from conda-meta, every archive copied from the package cache and checked, tar + zstd)
   against `conda_pack.pack` of the same prefix into a `.tar.gz` (the conda-pack library).
   Target: ours at most 1.0x conda-pack's time. The two archives' sizes are a second row
   (reported).
2. Restore from that capsule offline (`load_source(file=capsule)` + `RestoreService.restore`:
   extraction, every archive's sha256 checked against the lock, install, registration, the
   extraction removed) with the channel folder renamed away for the restore, against a
   bare `rattler.install` of the same records (the environment's conda-meta PrefixRecords)
   from a WARM package cache (filled by one untimed install first). Target: ours at most 1.3x,
   ours warm too (one RestoreService for every run, as a server keeps one): the capsule
   restored once before on this machine (untimed), so its packages
   are in the package cache with the lock's sha256 and its file's sha256 is known to have had
   every member checked; ours then finds the file unchanged (its sha256 is kept while its
   inode, size, mtime and ctime are), reads its head and notebooks, unpacks nothing and
   installs from the cache, with the process's download client (rattler's bare install
   makes one each time: ~4 ms of loading certificates). For information: ours cold (a fresh
   package cache and the capsule never seen: every member decompressed and checked, the
   archives unpacked) against the same bare warm install, and against the bare install from
   a cold cache (the channel's archives).

Medians of REPEATS runs, the two sides alternating who goes first. Everything runs in a
temporary HOME with its own caches, removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.pack import PackRequest, pack

from . import lock as lock_bench
from ._table import Result

REPEATS = int(os.environ.get("REPRO_BENCH_PACK_REPEATS", "15"))
"""Each run takes tens of milliseconds, while this machine's speed drifts by as much within
minutes: many alternating runs, so that medians compare like with like."""
PACK_LIMIT = 1.0
RESTORE_LIMIT = 1.3
REPORTED = float("inf")
PLATFORM = "linux-64"


class _Quiet:
    def phase(self, name: str, done: int, total: int) -> None:
        pass

    def log(self, line: str) -> None:
        pass


def _records_in(prefix: Path) -> int:
    return len(list((prefix / "conda-meta").glob("*.json")))


@contextlib.contextmanager
def _channel_away(channel: Path) -> Iterator[None]:
    """The channel folder renamed for the duration: any channel access fails."""
    away = channel.with_name(channel.name + "-away")
    channel.rename(away)
    try:
        yield
    finally:
        away.rename(channel)


# --------------------------------------------------------------------------------------------
# 1. pack


async def _ours_pack(prefix: Path, pkgs: Path, out: Path) -> int:
    request = PackRequest(
        prefix=prefix, name=lock_bench.ENV_NAME, platforms=(PLATFORM,), package_dirs=(pkgs,)
    )
    result = await pack(request, out)
    if result.manifest.missing:
        raise RuntimeError(f"pack left packages out: {result.manifest.missing}")
    return result.capsule_bytes


def _conda_pack(prefix: Path, out: Path) -> int:
    import conda_pack

    conda_pack.pack(prefix=str(prefix), output=str(out), verbose=False, force=True)
    return out.stat().st_size


def _measure_pack(base: Path, prefix: Path) -> dict[str, float]:
    out = base / "packs"
    out.mkdir()
    pkgs = base / "pkgs"
    # Warm once each (imports, the page cache), untimed.
    asyncio.run(_ours_pack(prefix, pkgs, out / "warm.capsule.tar.zst"))
    _conda_pack(prefix, out / "warm.tar.gz")
    times: dict[str, list[float]] = {"ours": [], "conda-pack": []}
    sizes: dict[str, int] = {}
    for i in range(REPEATS):
        for side in ("ours", "conda-pack") if i % 2 == 0 else ("conda-pack", "ours"):
            start = time.perf_counter()
            if side == "ours":
                target = out / f"{i}.capsule.tar.zst"
                sizes[side] = asyncio.run(_ours_pack(prefix, pkgs, target))
            else:
                target = out / f"{i}.tar.gz"
                sizes[side] = _conda_pack(prefix, target)
            times[side].append(time.perf_counter() - start)
            if i < REPEATS - 1:
                target.unlink()
    medians = {side: statistics.median(values) for side, values in times.items()}
    medians["ours_bytes"] = sizes["ours"]
    medians["conda_pack_bytes"] = sizes["conda-pack"]
    return medians


# --------------------------------------------------------------------------------------------
# 2. restore offline from the capsule


def _prefix_records(prefix: Path) -> list:
    from rattler import PrefixRecord

    return [PrefixRecord.from_path(p) for p in sorted((prefix / "conda-meta").glob("*.json"))]


async def _measure_restore(
    base: Path, channel: Path, prefix: Path, capsule: Path, environ: dict[str, str]
) -> dict[str, float]:
    expected = _records_in(prefix)
    records = _prefix_records(prefix)
    specs = [r.name.normalized for r in records]  # every record requested: same for both
    home = Path(environ["HOME"])
    runs = base / "runs"
    runs.mkdir()
    warm_cache = runs / "cache-bare"

    def service_for(cache: Path, xdg: Path) -> RestoreService:
        # XDG_CACHE_HOME holds the record of capsules checked before (restore/checked_capsules).
        return RestoreService(
            RestoreOptions(cache_dir=cache),
            environ={**environ, "XDG_CACHE_HOME": str(xdg)},
            home=home,
        )

    # Warm: one service for every restore, as a server has (its discovery cache warm too).
    warm_service = service_for(runs / "cache-ours-warm", runs / "xdg-warm")

    async def restore(tag: str, service: RestoreService) -> None:
        # The channel is away (see the loop below): any channel access fails.
        source = load_source(file=capsule)
        done = await service.restore(source, prefix=str(runs / f"env-{tag}"), progress=_Quiet())
        if done.packages != expected:
            raise RuntimeError(f"restored {done.packages} packages, not {expected}")

    async def ours(tag: str) -> None:
        await restore(tag, warm_service)

    async def ours_cold(tag: str) -> None:
        await restore(tag, service_for(runs / f"cache-{tag}", runs / f"xdg-{tag}"))

    async def bare(tag: str) -> None:
        await lock_bench._bare_install(records, specs, runs / f"env-{tag}", warm_cache)

    async def cold(tag: str) -> None:
        # For information: the same bare install from a fresh cache (the channel's archives).
        await lock_bench._bare_install(records, specs, runs / f"env-{tag}", runs / f"cache-{tag}")

    # Untimed: warm ours (imports, page cache, its package cache, the capsule checked once)
    # and fill the bare side's cache.
    with _channel_away(channel):
        await ours("warm-ours")
    await bare("warm-bare")
    shutil.rmtree(runs / "env-warm-ours")
    shutil.rmtree(runs / "env-warm-bare")
    sides = {"ours": ours, "ours_cold": ours_cold, "bare": bare, "cold": cold}
    times: dict[str, list[float]] = {side: [] for side in sides}
    order = list(sides)
    for i in range(REPEATS):
        # Rotate who goes first, so drift in the machine's load hits every side alike.
        for side in order[i % len(order) :] + order[: i % len(order)]:
            tag = f"{side}{i}"
            # Ours restores offline: the channel renamed away around (not within) the timing;
            # the bare cold install downloads from it.
            with _channel_away(channel) if side.startswith("ours") else contextlib.nullcontext():
                start = time.perf_counter()
                await sides[side](tag)
                times[side].append(time.perf_counter() - start)
            if _records_in(runs / f"env-{tag}") != expected:
                raise RuntimeError(f"{side}: the restored environment is incomplete")
            shutil.rmtree(runs / f"env-{tag}")
            if side in ("ours_cold", "cold"):
                shutil.rmtree(runs / f"cache-{tag}")
                shutil.rmtree(runs / f"xdg-{tag}", ignore_errors=True)
    return {side: statistics.median(values) for side, values in times.items()}


# --------------------------------------------------------------------------------------------


def run() -> list[Result]:
    """The rows described in the module's docstring."""
    with tempfile.TemporaryDirectory(prefix="repro-bench-pack-") as tmp:
        base = Path(tmp)
        (base / "home" / ".conda").mkdir(parents=True)
        with lock_bench._isolated(base / "home") as environ:
            channel, prefix = lock_bench._environment(base)
            packages = _records_in(prefix)
            packed = _measure_pack(base, prefix)
            capsule = base / "packs" / f"{REPEATS - 1}.capsule.tar.zst"
            restore = asyncio.run(_measure_restore(base, channel.path, prefix, capsule, environ))

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 1)

    return [
        Result(
            f"pack a {packages}-package env ({PLATFORM}) into a capsule (lock on the fly, tar +"
            f" zstd) (median of {REPEATS})",
            ms(packed["ours"]), ms(packed["conda-pack"]),
            "conda_pack.pack (same prefix, .tar.gz)", "ms", PACK_LIMIT,
        ),
        Result(
            f"size of the {packages}-package env packed: capsule (package archives, .tar.zst)",
            round(packed["ours_bytes"] / 1000, 1), round(packed["conda_pack_bytes"] / 1000, 1),
            "conda-pack .tar.gz (installed files)", "KB", REPORTED,
        ),
        Result(
            f"restore {packages} packages from the capsule offline (channel gone), warm: restored"
            f" once before here (median of {REPEATS})",
            ms(restore["ours"]), ms(restore["bare"]),
            "bare rattler.install of the same records, warm cache", "ms", RESTORE_LIMIT,
        ),
        Result(
            f"restore {packages} packages from the capsule offline, cold: fresh cache, capsule"
            f" never seen, every member checked (median of {REPEATS})",
            ms(restore["ours_cold"]), ms(restore["bare"]),
            "bare rattler.install of the same records, warm cache", "ms", REPORTED,
        ),
        Result(
            f"restore {packages} packages from the capsule offline, cold, against the same"
            f" bare install from a cold cache (median of {REPEATS})",
            ms(restore["ours_cold"]), ms(restore["cold"]),
            "bare rattler.install of the same records, cold cache (channel)", "ms", REPORTED,
        ),
    ]  # fmt: skip
