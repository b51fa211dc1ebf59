"""Restore of a ~50-package environment from a local channel against a bare rattler install.

Ours: `RestoreService.restore` from an environment.yml (parse, policy checks, claim, solve,
install, history, registration). The baseline: `rattler.solve` plus `rattler.install` of the
same specs into another prefix, nothing else: the least any rattler-based restore must do.
`conda env create` cannot run here (no conda, no conda-forge), so the baseline is the bar.
Both sides install from one warm package cache, as a second restore on a machine would.
The spec is parsed once, outside the timing: the bar is the service against the bare engine.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.export import host_platform
from tests.rig.channel import PackageDef, build_channel, generic_package
from tests.rig.installation import isolated_environ

from ._table import Result

PACKAGES = int(os.environ.get("REPRO_BENCH_RESTORE_PACKAGES", "50"))
REPEATS = int(os.environ.get("REPRO_BENCH_RESTORE_REPEATS", "9"))
LIMIT = 1.2


class _Quiet:
    def phase(self, name: str, done: int, total: int) -> None:
        pass

    def log(self, line: str) -> None:
        pass


def _packages() -> tuple[list[str], list[PackageDef]]:
    """PACKAGES generic packages; each of the last ones depends on an earlier one."""
    names = [f"restore-bench-{i:03d}" for i in range(PACKAGES)]
    packages = [
        generic_package(name, "1.0", depends=[names[i // 2]] if i >= PACKAGES // 2 else [])
        for i, name in enumerate(names)
    ]
    return names, packages


async def _bare(channel_url: str, specs: list[str], prefix: Path, cache: Path) -> None:
    from rattler import Channel, Gateway, MatchSpec, VirtualPackage, install, solve

    match_specs = [MatchSpec(s) for s in specs]
    records = await solve(
        sources=[Channel(channel_url)],
        specs=match_specs,
        gateway=Gateway(show_progress=False),
        platforms=[host_platform(), "noarch"],  # type: ignore[list-item]
        virtual_packages=[v.into_generic() for v in VirtualPackage.detect()],
    )
    await install(
        records,
        target_prefix=str(prefix),
        cache_dir=cache,
        show_progress=False,
        requested_specs=[m._match_spec for m in match_specs],
    )


async def _measure(base: Path) -> tuple[float, float]:
    names, packages = _packages()
    channel = build_channel(base / "channel", packages)
    home = base / "home"
    (home / ".conda").mkdir(parents=True)
    cache = base / "pkgs"
    environ = isolated_environ(home, package_cache=cache)
    service = RestoreService(RestoreOptions(cache_dir=cache), environ=environ, home=home)
    text = (
        "channels:\n  - " + channel.url + "\ndependencies:\n" + "".join(f"  - {n}\n" for n in names)
    )
    # Warm the package cache (and both code paths) once; then time alternately.
    await _bare(channel.url, names, base / "warm", cache)
    ours: list[float] = []
    bare: list[float] = []
    source = load_source(content=text)
    for i in range(REPEATS):
        # Alternate which side goes first, so drift in the machine's load hits both alike.
        for side in ("ours", "bare") if i % 2 == 0 else ("bare", "ours"):
            start = time.perf_counter()
            if side == "ours":
                result = await service.restore(
                    source, prefix=str(base / f"ours{i}"), progress=_Quiet()
                )
                ours.append(time.perf_counter() - start)
                if result.packages != PACKAGES:
                    raise RuntimeError(f"restored {result.packages} packages, not {PACKAGES}")
            else:
                await _bare(channel.url, names, base / f"bare{i}", cache)
                bare.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(bare)


def run() -> list[Result]:
    """Median of REPEATS restores, ours against the bare rattler solve and install."""
    with tempfile.TemporaryDirectory(prefix="bench-restore-") as tmp:
        ours, bare = asyncio.run(_measure(Path(tmp)))
    return [
        Result(
            benchmark=f"restore {PACKAGES} packages from a local channel (median of {REPEATS})",
            ours=round(ours * 1000, 1),
            peer=round(bare * 1000, 1),
            peer_name="bare rattler solve+install",
            unit="ms",
            limit=LIMIT,
        )
    ]
