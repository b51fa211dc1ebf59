"""One package cache for the users of a machine (issue 18): the second user's restore.

Two throwaway system users (root only: `useradd`, removed afterwards) restore the same
environment.yml of PACKAGES generic packages (FILES small files each) from a channel served
over HTTP on 127.0.0.1, through one shared cache (`RestoreOptions.shared_package_cache`,
as `ReproApp.package_cache_dir` sets it), each in a process of its own run as that user
(tests/cache_rig.py). User A restores first (downloads every archive, extracts them into
A's part of the cache, links); user B then restores the same spec (extracts from A's
archives, after checking them against B's own sha256; downloads nothing). Each round uses a
fresh cache; the times are the restore calls' own (`RestoreService.restore`), medians of
REPEATS rounds.

Rows: B's restore against A's (reported: B is expected faster, by what the downloads cost,
which on a local server is little); the archives A downloaded (reported) and the archives B
downloaded (target: none).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from tests.cache_rig import (
    UserRuntime,
    environment_yml,
    missing_requirement,
    system_users,
    user_home,
    world_readable_dir,
)
from tests.rig.channel import PackageDef, build_channel, generic_package
from tests.rig.served import ServedChannel

from ._table import Result

PACKAGES = int(os.environ.get("REPRO_BENCH_HUB_CACHE_PACKAGES", "50"))
FILES = int(os.environ.get("REPRO_BENCH_HUB_CACHE_FILES", "20"))
REPEATS = int(os.environ.get("REPRO_BENCH_HUB_CACHE_REPEATS", "5"))
REPORTED = float("inf")
USERS = ("repro-bench-a", "repro-bench-b")


def _packages() -> tuple[list[str], list[PackageDef]]:
    names = [f"hub-cache-bench-{i:03d}" for i in range(PACKAGES)]
    packages = [
        generic_package(
            name,
            "1.0",
            depends=[names[i // 2]] if i >= PACKAGES // 2 else [],
            extra_files={
                f"share/{name}/file-{j:02d}.txt": f"{name} {j}\n" * (64 + 16 * j)
                for j in range(FILES)
            },
        )
        for i, name in enumerate(names)
    ]
    return names, packages


def run() -> list[Result]:
    problem = missing_requirement()
    if problem is not None:
        print(f"hub_cache: skipped ({problem})", file=sys.stderr)
        return []
    names, packages = _packages()
    first: list[float] = []
    second: list[float] = []
    downloads_first: set[int] = set()
    downloads_second: set[int] = set()
    with (
        world_readable_dir("bench-hub-cache-") as root,
        tempfile.TemporaryDirectory(prefix="bench-hub-channel-") as tmp,
        system_users(USERS) as (a, b),
    ):
        channel_dir = build_channel(Path(tmp) / "channel", packages).path
        runtime = UserRuntime(root / "runtime")
        runtime.build()
        homes = {u.name: user_home(root, u) for u in (a, b)}
        with ServedChannel(channel_dir) as channel:
            spec = environment_yml(channel.url, *names)
            for i in range(REPEATS):
                cache = root / f"cache-{i}"
                cache.mkdir()
                os.chmod(cache, 0o1777)
                for user, times, downloads in (
                    (a, first, downloads_first),
                    (b, second, downloads_second),
                ):
                    before = sum(channel.archive_downloads().values())
                    result = runtime.run(
                        user,
                        homes[user.name],
                        "restore",
                        {
                            "cache": str(cache),
                            "spec": spec,
                            "prefix": str(homes[user.name] / f"env-{i}"),
                        },
                    )
                    if not result["ok"]:
                        raise RuntimeError(f"{user.name}'s restore failed: {result['error']}")
                    times.append(result["seconds"])
                    downloads.add(sum(channel.archive_downloads().values()) - before)
    label = f"{PACKAGES} packages x {FILES} files, median of {REPEATS}"
    return [
        Result(
            benchmark=f"hub cache: 2nd user's restore of a spec the 1st cached ({label})",
            ours=round(statistics.median(second) * 1000, 1),
            peer=round(statistics.median(first) * 1000, 1),
            peer_name="1st user's restore (downloads)",
            unit="ms",
            limit=REPORTED,
        ),
        Result(
            benchmark="hub cache: archives the 1st user downloaded",
            ours=max(downloads_first),
            peer=None,
            peer_name="-",
            unit="archives",
            limit=REPORTED,
            compare="at_most",
        ),
        Result(
            benchmark="hub cache: archives the 2nd user downloaded",
            ours=max(downloads_second),
            peer=None,
            peer_name="-",
            unit="archives",
            limit=0,
            compare="at_most",
        ),
    ]
