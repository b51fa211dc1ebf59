"""Multi-platform locks: locking, restoring from a lock, and installing a locked pip section.

1. Lock a ~50-package environment for linux-64, osx-64, osx-arm64 and win-64
   (`lock_environment`) against the least any locker must do: four bare `rattler.solve` calls
   of the same portable specs (the requested specs pinned to the installed versions), each with
   that platform's virtual packages and the same `exclude_newer`. Ours locks this machine's
   platform from the installed records (no solve) and solves the other three; the bar solves
   all four. Reported as is.
2. Restore from the lock's `conda-lock.yml` (`RestoreService.restore`: policy checks, claim,
   every archive hashed against the lock, install, history, registration) against a bare
   `rattler.install` of the same records (the lock's linux-64 part, read back from our pixi
   rendering) into a fresh prefix. Both cold: a fresh package cache per run. The source is
   parsed once, outside the timing, as in `restore.py`; the services share one catalog, as a
   server's restores do. Ours costs a fixed amount more: making the 47 records from the
   verified archives' own index.json (the true depends), and reading each archive's member
   list and paths.json to refuse packages that would write outside the prefix
   (restore/package_paths.py), in a worker beside the records; the bare install does
   neither, and installs ~4 ms slower (it makes a download client per call). So the ratio
   follows this machine's speed: 1.0x when the bare install takes 185 ms, 1.2x-1.5x when it
   takes 50-130 ms. Also,
   for information, the same service restoring from the environment's environment.yml export
   (which needs a solve), and what that parse costs: `load_source` of the conda-lock.yml
   against rattler's `LockFile.from_path` of the same lock in the pixi format.
3. A locked pip section of 30 tiny wheels from a local folder, installed into fresh venvs by
   the argv of `pip_install_command` (uv) against the argv the module builds when uv is
   absent (the venv's own pip, same requirements file and options). Cold: a fresh uv cache
   per run, pip without a cache. Reported. Creating the venvs is not timed.

Everything runs in a temporary HOME with its own rattler and uv caches, offline.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as _dt
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupyter_repro.environments.catalog import EnvironmentCatalog
from jupyter_repro.environments.discovery import EnvironmentDiscovery
from jupyter_repro.restore import pip as restore_pip
from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.export import export_environment
from jupyter_repro.specs.lock import render_conda_lock, render_pixi_lock
from jupyter_repro.specs.locking import LockOptions, LockResult, last_changed, lock_environment
from jupyter_repro.specs.pip_lock import LockedPypi, PipIndex, uv_binary
from tests.rig.channel import PackageDef, RigChannel, build_channel, ipykernel_package
from tests.rig.installation import CondaInstallation, isolated_environ
from tests.rig.platforms import (
    HOST_PLATFORM,
    LOCK_PLATFORMS,
    OLD_DATE,
    create_dated_env,
    python_for,
    solve_for_platform_async,
)

from ._table import Result

REPEATS = int(os.environ.get("REPRO_BENCH_LOCK_REPEATS", "9"))
PIP_REPEATS = int(os.environ.get("REPRO_BENCH_LOCK_PIP_REPEATS", "5"))
NOARCH = 30
"""noarch packages in the environment (python and ipykernel come on top)."""
LIBS = 15
"""Per-platform packages in the environment; the first LIBS_TWO_VERSIONS come in two versions."""
LIBS_TWO_VERSIONS = 5
WHEELS = 30
LOCK_LIMIT = 1.3
RESTORE_LIMIT = 1.05
REPORTED = float("inf")
ENV_NAME = "lockbench"
CREATED = _dt.datetime(2025, 7, 1, 12, 0, 0)
"""When the environment was created (its history's date): after every package's build time."""
WINRT = "lk-winrt"


class _Quiet:
    def phase(self, name: str, done: int, total: int) -> None:
        pass

    def log(self, line: str) -> None:
        pass


@contextlib.contextmanager
def _isolated(home: Path) -> Iterator[dict[str, str]]:
    """This process confined to `home` (HOME, CONDARC, rattler and uv caches), then restored."""
    saved = dict(os.environ)
    environ = isolated_environ(home, package_cache=home / "pkgs")
    environ["UV_CACHE_DIR"] = str(home / "uv-cache")
    os.environ.clear()
    os.environ.update(environ)
    try:
        yield environ
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --------------------------------------------------------------------------------------------
# the channel and the environment


def _lib(i: int) -> str:
    return f"lk-lib-{i:02d}"


def _noarch(i: int) -> str:
    return f"lk-noarch-{i:03d}"


def _packages() -> list[PackageDef]:
    """python per platform, ipykernel, NOARCH noarch packages (chains, some needing a lib),
    LIBS per-platform libs (chains; win-64's first lib needs a Windows-only package)."""
    stamp = OLD_DATE
    packages: list[PackageDef] = [python_for(p) for p in LOCK_PLATFORMS]
    packages.append(ipykernel_package())
    for platform in LOCK_PLATFORMS:
        for i in range(LIBS):
            depends = [f"{_lib(i - LIBS_TWO_VERSIONS)} >=1.0"] if i >= LIBS_TWO_VERSIONS else []
            if platform == "win-64" and i == 0:
                depends.append(WINRT)
            versions = ("1.0", "1.1") if i < LIBS_TWO_VERSIONS else ("1.0",)
            for n, version in enumerate(versions):
                packages.append(
                    PackageDef(
                        name=_lib(i),
                        version=version,
                        build="0",
                        subdir=platform,
                        noarch=None,
                        depends=tuple(depends),
                        files={f"share/{_lib(i)}/{platform}.txt": f"{_lib(i)} {version}\n"},
                        timestamp=stamp + _dt.timedelta(minutes=n),
                    )
                )
    packages.append(
        PackageDef(
            name=WINRT,
            version="1.0",
            build="0",
            subdir="win-64",
            noarch=None,
            files={"Library/bin/lk-winrt.dll": "winrt\n"},
            timestamp=stamp,
        )
    )
    for i in range(NOARCH):
        depends = [_noarch(i // 2)] if i >= NOARCH // 3 else []
        if i % 4 == 0:
            depends.append(f"{_lib(i % LIBS)} >=1.0")
        if i % 7 == 0:
            depends.append("python")
        packages.append(
            PackageDef(
                name=_noarch(i),
                version="1.0",
                build="0",
                depends=tuple(depends),
                files={f"share/lk/{_noarch(i)}.txt": f"{_noarch(i)}\n"},
                timestamp=stamp,
            )
        )
    return packages


def _environment(base: Path) -> tuple[RigChannel, Path]:
    """The channel and an environment of this machine installed from it, dated CREATED."""
    channel = build_channel(base / "channel", _packages(), stamp_index_time=True)
    inst = CondaInstallation.create(base / "home", channel, base / "pkgs")
    specs = [
        "python",
        "ipykernel",
        *(_noarch(i) for i in range(NOARCH)),
        *(_lib(i) for i in range(LIBS)),
    ]
    prefix = create_dated_env(inst, ENV_NAME, specs, CREATED)
    return channel, prefix


def _records_in(prefix: Path) -> int:
    return len(list((prefix / "conda-meta").glob("*.json")))


# --------------------------------------------------------------------------------------------
# 1. lock


async def _lock(prefix: Path) -> LockResult:
    result = await lock_environment(prefix, LockOptions(platforms=LOCK_PLATFORMS))
    if result.skipped or set(result.lock.platform_names) != set(LOCK_PLATFORMS):
        raise RuntimeError(f"the lock left platforms out: {result.skipped}")
    return result


async def _bare_solves(channel: RigChannel, specs: list[str], as_of: _dt.datetime) -> list:
    solved = []
    for platform in LOCK_PLATFORMS:
        solved.append(await solve_for_platform_async(channel, specs, platform, as_of))
    return solved


async def _measure_lock(
    channel: RigChannel, prefix: Path
) -> tuple[float, float, LockResult, dict[str, int]]:
    specs = list(export_environment(prefix, "portable").dependencies)
    as_of = last_changed(prefix)
    result = await _lock(prefix)  # warm: imports, page cache, both code paths
    solved = await _bare_solves(channel, specs, as_of)
    sizes = {p.platform: len(p.conda) for p in result.lock.platforms}
    bare_sizes = {p: len(r) for p, r in zip(LOCK_PLATFORMS, solved, strict=True)}
    if sizes != bare_sizes:
        raise RuntimeError(f"the lock ({sizes}) and the bare solves ({bare_sizes}) disagree")
    ours: list[float] = []
    bare: list[float] = []
    for i in range(REPEATS):
        for side in ("ours", "bare") if i % 2 == 0 else ("bare", "ours"):
            start = time.perf_counter()
            if side == "ours":
                await _lock(prefix)
                ours.append(time.perf_counter() - start)
            else:
                await _bare_solves(channel, specs, as_of)
                bare.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(bare), result, sizes


# --------------------------------------------------------------------------------------------
# 2. restore from the lock


def _host_records(pixi_lock: Path) -> list:
    """This platform's records as the lock has them: our pixi rendering, read by rattler."""
    from rattler import LockFile

    environment = LockFile.from_path(pixi_lock).environment("default")
    assert environment is not None
    # rattler wants the lock file's own platform object, not a new LockPlatform.
    platform = next(p for p in environment.platforms() if str(p.name) == HOST_PLATFORM)
    return list(environment.conda_repodata_records_for_platform(platform) or [])


async def _bare_install(records: list, specs: list[str], prefix: Path, cache: Path) -> None:
    from rattler import MatchSpec, install

    await install(
        records,
        target_prefix=str(prefix),
        cache_dir=cache,
        show_progress=False,
        requested_specs=[MatchSpec(s)._match_spec for s in specs],
    )


def _measure_parse(lock_file: Path, pixi_lock: Path) -> tuple[float, float]:
    """Median seconds of `load_source` of the conda-lock.yml and of rattler reading the same
    lock as pixi.lock."""
    from rattler import LockFile

    ours: list[float] = []
    rattler: list[float] = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        load_source(file=lock_file)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        LockFile.from_path(pixi_lock)
        rattler.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(rattler)


async def _measure_restore(
    base: Path, prefix: Path, result: LockResult, environ: dict[str, str]
) -> dict[str, float]:
    """Median seconds: `lock`, `bare` and `yml` restores, `parse` and `parse_rattler`."""
    lock_file = base / "conda-lock.yml"
    lock_file.write_text(render_conda_lock(result.lock), encoding="utf-8")
    pixi_lock = base / "pixi.lock"
    pixi_lock.write_text(render_pixi_lock(result.lock, result.records), encoding="utf-8")
    lock_source = load_source(file=lock_file)
    yml_source = load_source(content=export_environment(prefix, "portable").to_yaml())
    records = _host_records(pixi_lock)
    specs = list(result.lock.conda_specs)
    expected = _records_in(prefix)
    if len(records) != expected:
        raise RuntimeError(
            f"the lock has {len(records)} records for {HOST_PLATFORM}, not {expected}"
        )
    home = Path(environ["HOME"])
    runs = base / "runs"
    runs.mkdir()

    # One catalog for every restore, as a server has (its discovery cache warm); the
    # package cache is each run's own.
    catalog = EnvironmentCatalog(EnvironmentDiscovery(environ=environ, home=home))

    def service(cache: Path) -> RestoreService:
        return RestoreService(
            RestoreOptions(cache_dir=cache), environ=environ, home=home, catalog=catalog
        )

    async def ours(source: Any, tag: str) -> None:
        done = await service(runs / f"cache-{tag}").restore(
            source, prefix=str(runs / f"env-{tag}"), progress=_Quiet()
        )
        if done.packages != expected:
            raise RuntimeError(f"restored {done.packages} packages, not {expected}")

    times: dict[str, list[float]] = {"lock": [], "bare": [], "yml": []}
    order = list(times)
    # Warm once (imports, the channel's files in the page cache), untimed; every timed run then
    # starts from an empty package cache.
    await ours(lock_source, "warm-lock")
    await ours(yml_source, "warm-yml")
    await _bare_install(records, specs, runs / "env-warm-bare", runs / "cache-warm-bare")
    for i in range(REPEATS):
        # Rotate who goes first, so drift in the machine's load hits every side alike.
        for side in order[i % 3 :] + order[: i % 3]:
            tag = f"{side}{i}"
            start = time.perf_counter()
            if side == "lock":
                await ours(lock_source, tag)
            elif side == "yml":
                await ours(yml_source, tag)
            else:
                await _bare_install(records, specs, runs / f"env-{tag}", runs / f"cache-{tag}")
            times[side].append(time.perf_counter() - start)
            if _records_in(runs / f"env-{tag}") != expected:
                raise RuntimeError(f"{side}: the restored environment is incomplete")
            shutil.rmtree(runs / f"env-{tag}")
            shutil.rmtree(runs / f"cache-{tag}")
    medians = {side: statistics.median(values) for side, values in times.items()}
    medians["parse"], medians["parse_rattler"] = _measure_parse(lock_file, pixi_lock)
    return medians


# --------------------------------------------------------------------------------------------
# 3. a locked pip section: uv against pip


def _record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal valid pure-python wheel: one module, METADATA, WHEEL and RECORD."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"NAME = {name!r}\n".encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        ),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [f"{path},sha256={_record_hash(data)},{len(data)}" for path, data in files.items()]
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), data)
    return path


def _wheels(folder: Path) -> list[LockedPypi]:
    folder.mkdir()
    locked = []
    for i in range(WHEELS):
        path = _write_wheel(folder, f"lkwheel{i:02d}", "1.0")
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        locked.append(LockedPypi(f"lkwheel{i:02d}", "1.0", path.as_uri(), sha256))
    return locked


def _venv(folder: Path, *, with_pip: bool) -> Path:
    argv = [sys.executable, "-m", "venv", str(folder)]
    subprocess.run(argv if with_pip else [*argv, "--without-pip"], check=True)
    return folder / "bin" / "python"


def _pip_argv(python: Path, uv_argv: list[str]) -> list[str]:
    """What `pip_install_command` returns when uv is absent, for the same requirements file
    and options: the environment's pip (`_pip`), `install --no-deps --no-input ...`."""
    tail = uv_argv[uv_argv.index("-r") :]
    head = restore_pip._pip(python)
    return [*head, "install", "--no-deps", "--no-input", "--disable-pip-version-check", *tail]


def _installed_wheels(venv: Path) -> int:
    return len(list(venv.glob("lib/python*/site-packages/lkwheel*.dist-info")))


def _measure_pip(base: Path, environ: dict[str, str]) -> tuple[float, float]:
    if uv_binary() is None:
        raise RuntimeError("uv is not installed: the pip row needs it")
    packages = _wheels(base / "wheels")
    index = PipIndex(find_links=(str(base / "wheels"),), no_index=True)
    env = {
        "PATH": environ.get("PATH", os.defpath),
        "HOME": environ["HOME"],
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_CACHE_DIR": "1",
        "PYTHONNOUSERSITE": "1",
    }
    times: dict[str, list[float]] = {"uv": [], "pip": []}
    for i in range(PIP_REPEATS):
        for side in ("uv", "pip") if i % 2 == 0 else ("pip", "uv"):
            venv = base / f"venv-{side}{i}"
            python = _venv(venv, with_pip=side == "pip")
            argv = restore_pip.pip_install_command(
                python, packages, index=index, requirements_file=base / f"req-{side}{i}.txt"
            )
            if argv[0] != uv_binary():
                raise RuntimeError(f"pip_install_command did not choose uv: {argv}")
            if side == "pip":
                argv = _pip_argv(python, argv)
            run_env = {**env, "UV_CACHE_DIR": str(base / f"uv-cache-{side}{i}")}
            start = time.perf_counter()
            done = subprocess.run(argv, env=run_env, capture_output=True, text=True, check=False)
            times[side].append(time.perf_counter() - start)
            if done.returncode != 0 or _installed_wheels(venv) != WHEELS:
                raise RuntimeError(f"{side} failed ({done.returncode}):\n{done.stderr[-2000:]}")
            shutil.rmtree(venv)
    return statistics.median(times["uv"]), statistics.median(times["pip"])


# --------------------------------------------------------------------------------------------


def run() -> list[Result]:
    """The rows described in the module's docstring."""
    with tempfile.TemporaryDirectory(prefix="repro-bench-lock-") as tmp:
        base = Path(tmp)
        (base / "home" / ".conda").mkdir(parents=True)
        with _isolated(base / "home") as environ:
            channel, prefix = _environment(base)
            packages = _records_in(prefix)
            lock_s, solves_s, result, sizes = asyncio.run(_measure_lock(channel, prefix))
            restore = asyncio.run(_measure_restore(base, prefix, result, environ))
            uv_s, pip_s = _measure_pip(base, environ)
    counts = "/".join(str(sizes[p]) for p in LOCK_PLATFORMS)
    lock_kb = f"{len(render_conda_lock(result.lock)) / 1000:.0f} KB"

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 1)

    return [
        Result(
            f"lock a {packages}-package env for {len(LOCK_PLATFORMS)} platforms ({counts} records;"
            f" this machine's from conda-meta + 3 solves) (median of {REPEATS})",
            ms(lock_s), ms(solves_s),
            f"{len(LOCK_PLATFORMS)} bare rattler.solve (portable specs, platform virtuals)",
            "ms", LOCK_LIMIT,
        ),
        Result(
            f"restore {packages} packages from conda-lock.yml (parsed beforehand), cold cache"
            f" (median of {REPEATS})",
            ms(restore["lock"]), ms(restore["bare"]),
            "bare rattler.install of the lock's records", "ms", RESTORE_LIMIT,
        ),
        Result(
            f"restore {packages} packages: from conda-lock.yml vs from the environment.yml"
            f" export, cold cache (median of {REPEATS})",
            ms(restore["lock"]), ms(restore["yml"]),
            "same service from environment.yml (solves)", "ms", REPORTED,
        ),
        Result(
            f"read the {len(LOCK_PLATFORMS)}-platform lock: load_source(conda-lock.yml, {lock_kb})"
            f" (median of {REPEATS})",
            ms(restore["parse"]), ms(restore["parse_rattler"]),
            "rattler LockFile.from_path (same lock as pixi.lock)", "ms", REPORTED,
        ),
        Result(
            f"locked pip section, {WHEELS} wheels from a folder into a fresh venv: uv"
            f" (median of {PIP_REPEATS})",
            ms(uv_s), ms(pip_s), "pip (the argv without uv)", "ms", REPORTED,
        ),
    ]  # fmt: skip
