"""Pack: notebooks, their lock and every package archive they need, into one capsule.

The lock is the notebooks' embedded one when it covers the platforms asked for (packing then
reads no environment and solves nothing); otherwise it is made on the fly from the
environment (`lock_environment`). For each platform every conda archive the lock names is
taken from a package cache (checked against the lock first), from its `file://` channel, or
downloaded; every pip wheel likewise. `write_capsule` checks each file's sha256 against the
lock while it writes it, so what the capsule holds is what the lock names, byte for byte.

What cannot be packed is listed, never dropped: a pip package the lock has no wheel and hash
for (a VCS or folder requirement, a source distribution), an editable or local pip install
(never in a lock: it exists only on this machine), an archive no longer in its channel.
`plan_pack` says all of it, with sizes, before anything is fetched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from ..aio import gather_all
from ..download_client import download_client
from ..environments.channels import redact_text, redact_url
from ..environments.prefix import Prefix, normalize_dist_name
from .capsule import (
    CAPSULE_SUFFIX,
    MAX_NOTEBOOK_BYTES,
    CapsuleError,
    Manifest,
    MissingPackage,
    conda_member,
    wheel_member,
    write_capsule,
)
from .environment import SpecError
from .export import ExportError, PackError, host_platform, platform_of
from .lock import Lock, LockedConda, archive_digests, file_url_path, parse_embedded_lock
from .locking import LockOptions, lock_environment
from .pip_lock import LockedPypi, PipIndex

__all__ = [
    "PackError",
    "PackPlan",
    "PackProgress",
    "PackRequest",
    "PackResult",
    "PlannedFile",
    "default_capsule_name",
    "notebook_lock",
    "pack",
    "plan_pack",
]

PackProgress = Callable[[str, int, int], None]
"""`(phase, done, total)`: phases `lock`, `fetch` (archives and wheels), `write` (members)."""
LockSource = Literal["given", "notebook", "locked"]
Source = Literal["file", "cache", "download"]

_CHUNK = 1 << 20
_WHEEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+!-]*\.whl")
_NOTEBOOK_METADATA_KEY = "jupyter_repro"
T = TypeVar("T")


@dataclass(frozen=True)
class PackRequest:
    """What to pack and where the packages come from."""

    notebooks: tuple[Path, ...] = ()
    prefix: Path | None = None
    """The environment to lock when no lock is given or embedded that covers the platforms;
    also where editable and local pip installs are looked for."""
    name: str | None = None
    """The environment's name (the lock's, and the capsule's default file name)."""
    platforms: tuple[str, ...] = ()
    """Platforms to pack; empty: the environment's platform (this machine's without one)."""
    lock: Lock | None = None
    """A lock to pack as it is (it must cover the platforms)."""
    pip_index: PipIndex = field(default_factory=PipIndex)
    """Where pip packages come from when a lock is made (find-links, index URL)."""
    environ: Mapping[str, str] | None = None
    """Environment of uv when a lock is made."""
    package_dirs: tuple[Path, ...] = ()
    """Package caches holding conda archives (conda's `pkgs` folders), looked in first."""
    environment_problem: str | None = None
    """Why the notebooks' environment is not known, said when one is needed."""
    concurrency: int = 8
    """Downloads at a time."""


@dataclass(frozen=True)
class PlannedFile:
    """One archive or wheel to pack, for one platform."""

    platform: str
    kind: Literal["conda", "pypi"]
    name: str
    version: str
    member: str
    """Where it goes in the capsule (shared by platforms for a noarch archive or pure wheel)."""
    url: str
    """Where it comes from, without credentials."""
    source: Source
    path: Path | None
    """The local file (`file` and `cache`), None for a download."""
    size: int | None
    """Known before fetching for local files and locks that record it; else None."""
    conda: LockedConda | None = None
    pypi: LockedPypi | None = None
    candidates: tuple[Path, ...] = ()
    """Package cache copies to try before `path` or the URL (checked against the lock)."""


@dataclass(frozen=True)
class PackPlan:
    """What a pack will do: the lock, the files per platform with sizes, what is missing."""

    lock: Lock
    """The lock that will be packed (only the platforms packed)."""
    lock_source: LockSource
    platforms: tuple[str, ...]
    files: tuple[PlannedFile, ...]
    missing: tuple[MissingPackage, ...]
    notebooks: tuple[Path, ...]
    warnings: tuple[str, ...] = ()
    download_urls: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """Package URL as locked (without credentials) -> the URL the environment's record has,
    with them: what a private channel's archive is downloaded from. Never written."""

    def unique(self) -> dict[str, PlannedFile]:
        """Each capsule member once (the first platform that needs it)."""
        out: dict[str, PlannedFile] = {}
        for item in self.files:
            out.setdefault(item.member, item)
        return out

    @property
    def known_bytes(self) -> int:
        return sum(item.size or 0 for item in self.unique().values())

    @property
    def unknown_sizes(self) -> int:
        return sum(1 for item in self.unique().values() if item.size is None)

    def summary(self) -> dict[str, Any]:
        """For the CLI and the REST answer."""
        return {
            "platforms": list(self.platforms),
            "lock": self.lock_source,
            "name": self.lock.name,
            "notebooks": [str(n) for n in self.notebooks],
            "files": [
                {
                    "platform": f.platform,
                    "kind": f.kind,
                    "name": f.name,
                    "version": f.version,
                    "path": f.member,
                    "url": f.url,
                    "source": f.source,
                    "size": f.size,
                }
                for f in self.files
            ],
            "missing": [dataclasses.asdict(m) for m in self.missing],
            "bytes": self.known_bytes,
            "unknown_sizes": self.unknown_sizes,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class PackResult:
    """A capsule written."""

    output: Path
    manifest: Manifest
    plan: PackPlan
    capsule_bytes: int
    """The capsule's size on disk."""
    content_bytes: int
    """What its members add up to."""
    seconds: float

    def summary(self) -> dict[str, Any]:
        manifest = self.manifest
        return {
            "output": str(self.output),
            "platforms": list(manifest.platforms),
            "lock": self.plan.lock_source,
            "conda": len({c.path for c in manifest.conda}),
            "pypi": len({p.path for p in manifest.pypi}),
            "notebooks": len(manifest.notebooks),
            "missing": [dataclasses.asdict(m) for m in manifest.missing],
            "capsule_bytes": self.capsule_bytes,
            "content_bytes": self.content_bytes,
            "seconds": round(self.seconds, 3),
            "warnings": list(self.plan.warnings),
        }


def default_capsule_name(request: PackRequest, lock: Lock | None = None) -> str:
    """`<name>.capsule.tar.zst`: the environment's name, the lock's, or the first notebook's."""
    name = request.name or (lock.name if lock is not None else None)
    if not name and request.notebooks:
        name = Path(request.notebooks[0]).stem
    if not name and request.prefix is not None:
        name = Path(request.prefix).name
    # Letters and digits of any script stay (`données`, `数据`); what a shell or a file
    # system treats specially does not.
    safe = re.sub(r"[^\w.-]+", "_", name or "environment").strip("._")[:200] or "environment"
    return safe + CAPSULE_SUFFIX


# --------------------------------------------------------------------------------------------
# the lock


def notebook_lock(path: Path) -> Lock | None:
    """The lock embedded in a notebook (`metadata.jupyter_repro.lock`), None without one."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as error:
        raise PackError(f"cannot read {path}: {error.strerror or error}") from None
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise PackError(f"{path} is over {MAX_NOTEBOOK_BYTES >> 20} MB; strip its outputs first")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise PackError(f"{path}: not a notebook: the file is not valid JSON ({error})") from None
    metadata = data.get("metadata") if isinstance(data, dict) else None
    if not isinstance(data, dict) or "cells" not in data or not isinstance(metadata, dict):
        raise PackError(f"{path}: not a notebook: expected a JSON object with metadata and cells")
    repro = metadata.get(_NOTEBOOK_METADATA_KEY)
    embedded = repro.get("lock") if isinstance(repro, dict) else None
    if not isinstance(embedded, dict):
        return None
    return parse_embedded_lock(embedded, source=f"{path}: metadata.{_NOTEBOOK_METADATA_KEY}.lock")


def _default_platforms(request: PackRequest) -> tuple[str, ...]:
    if request.platforms:
        return tuple(dict.fromkeys(request.platforms))
    if request.prefix is not None:
        return (platform_of(Path(request.prefix)),)
    return (host_platform(),)


def _covers(lock: Lock, platforms: Sequence[str]) -> bool:
    return all(lock.platform(p) is not None for p in platforms)


def _only(lock: Lock, platforms: Sequence[str]) -> Lock:
    return dataclasses.replace(
        lock, platforms=tuple(p for p in lock.platforms if p.platform in platforms)
    )


async def _choose_lock(
    request: PackRequest,
    platforms: tuple[str, ...],
    say: Callable[[str], None],
    progress: PackProgress,
) -> tuple[Lock, LockSource, tuple[str, ...]]:
    if request.lock is not None:
        if not _covers(request.lock, platforms):
            raise PackError(
                f"the lock is for {', '.join(request.lock.platform_names)}, not "
                f"{', '.join(p for p in platforms if request.lock.platform(p) is None)}"
            )
        return request.lock, "given", ()
    loop = asyncio.get_running_loop()
    embedded: list[tuple[Path, Lock]] = []
    for notebook in request.notebooks:
        found = await loop.run_in_executor(None, notebook_lock, Path(notebook))
        if found is not None:
            embedded.append((Path(notebook), found))
    if len({lock.digest() for _, lock in embedded}) > 1:
        names = ", ".join(str(path) for path, _ in embedded)
        raise PackError(
            f"the notebooks carry different locks ({names}); a capsule holds one lock: pack "
            "them separately, or lock them from one environment first"
        )
    reason = ""
    if embedded:
        lock = embedded[0][1]
        if _covers(lock, platforms):
            say(f"using the lock embedded in {embedded[0][0]}")
            return lock, "notebook", ()
        lacking = [p for p in platforms if lock.platform(p) is None]
        reason = (
            f"the notebook's lock is for {', '.join(lock.platform_names)}, not {', '.join(lacking)}"
        )
    elif request.notebooks:
        reason = "the notebook has no embedded lock"
    if request.prefix is None:
        problem = request.environment_problem or "no environment was given"
        raise PackError(
            f"{reason or 'there is no lock'} and a lock cannot be made ({problem}); give the "
            "environment (--env NAME or --prefix PATH), lock the notebook first (jupyter repro "
            "lock NOTEBOOK --embed), or choose --platform among the lock's"
        )
    if reason:
        say(f"{reason}: locking {request.prefix}")
    progress("lock", 0, 1)
    options = LockOptions(platforms=platforms, pip_index=request.pip_index, environ=request.environ)
    try:
        result = await lock_environment(
            Path(request.prefix), options, name=request.name, progress=say
        )
    except ExportError as error:
        raise PackError(str(error)) from None
    skipped = {p: why for p, why in result.skipped.items() if p in platforms}
    if skipped:
        reasons = "; ".join(f"{p}: {redact_text(why)}" for p, why in sorted(skipped.items()))
        raise PackError(
            f"cannot pack for every platform asked for, as it cannot be locked ({reasons})"
        )
    progress("lock", 1, 1)
    return result.lock, "locked", result.warnings


# --------------------------------------------------------------------------------------------
# the plan


def _regular_size(path: Path) -> int | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_size if path.is_file() else None


def _cached(package: LockedConda, package_dirs: Sequence[Path]) -> tuple[Path, ...]:
    found = []
    for folder in package_dirs:
        candidate = Path(folder) / package.filename
        size = _regular_size(candidate)
        if size is not None and (package.size is None or package.size == size):
            found.append(candidate)
    return tuple(found)


def _plan_conda(
    platform: str, package: LockedConda, package_dirs: Sequence[Path]
) -> PlannedFile | MissingPackage:
    shown = redact_url(package.url)
    if not package.sha256 and not package.md5:
        return MissingPackage(
            platform,
            package.name,
            f"the lock names no hash for {package.dist_name}, so it cannot be checked; "
            "re-lock the environment",
        )
    candidates = _cached(package, package_dirs)
    planned = PlannedFile(
        platform=platform,
        kind="conda",
        name=package.name,
        version=package.version,
        member=conda_member(package),
        url=shown,
        source="download",
        path=None,
        size=package.size,
        conda=package,
        candidates=candidates,
    )
    local = file_url_path(package.url)
    if local is not None and (size := _regular_size(local)) is not None:
        return dataclasses.replace(planned, source="file", path=local, size=size)
    if candidates:
        cached = candidates[0]
        return dataclasses.replace(planned, source="cache", path=cached, size=_regular_size(cached))
    if local is not None:
        return MissingPackage(
            platform, package.name, f"{package.dist_name}: {shown} does not exist any more"
        )
    return planned


def _credentialed_urls(prefix: Path) -> dict[str, str]:
    """Redacted URL -> URL, for the installed records whose URL carries credentials (a
    token path, a user and password): conda writes them so, the lock never has them."""
    found: dict[str, str] = {}
    try:
        entries = list(os.scandir(prefix / "conda-meta"))
    except OSError:
        return found
    for entry in entries:
        try:
            if not entry.name.endswith(".json") or not entry.is_file(follow_symlinks=False):
                continue  # a FIFO there would block the read
            with open(entry.path, "rb") as stream:
                url = json.loads(stream.read(64 << 20)).get("url")
        except (OSError, ValueError, AttributeError, RecursionError):
            continue
        if isinstance(url, str) and (shown := redact_url(url)) != url:
            found[shown] = url
    return found


def _plan_pypi(platform: str, package: LockedPypi) -> PlannedFile | MissingPackage:
    what = f"{package.name} {package.version}"
    if not package.url or not package.sha256:
        return MissingPackage(
            platform,
            package.name,
            f"pip package {what}: the lock names no file and sha256 for it (a VCS or folder "
            "requirement); install it on the target from its source",
        )
    filename = unquote(urlsplit(package.url).path.rsplit("/", 1)[-1])
    if not filename.endswith(".whl"):
        return MissingPackage(
            platform,
            package.name,
            f"pip package {what}: only a source distribution ({filename}) is locked, and "
            "building needs the network; provide a wheel (--find-links) and pack again",
        )
    if not _WHEEL_NAME.fullmatch(filename):
        return MissingPackage(
            platform, package.name, f"pip package {what}: {filename!r} is not a wheel file name"
        )
    planned = PlannedFile(
        platform=platform,
        kind="pypi",
        name=package.name,
        version=package.version,
        member=wheel_member(package.url),
        url=redact_url(package.url),
        source="download",
        path=None,
        size=None,
        pypi=package,
    )
    local = file_url_path(package.url)
    if local is None:
        return planned
    size = _regular_size(local)
    if size is None:
        return MissingPackage(
            platform, package.name, f"pip package {what}: {redact_url(package.url)} does not exist"
        )
    return dataclasses.replace(planned, source="file", path=local, size=size)


def _local_pip_installs(prefix: Path, platforms: Sequence[str]) -> list[MissingPackage]:
    """Editable and local pip installs: never in a lock, so never in a capsule; said."""
    missing = []
    for dist in Prefix(prefix).pip_distributions():
        if dist.kind == "editable":
            why = (
                f"pip package {dist.name} {dist.version} is an editable install from a folder "
                "on this machine; install it on the target from its source"
            )
        elif dist.kind == "local":
            why = (
                f"pip package {dist.name} {dist.version} was installed from a local folder or "
                "file; build a wheel of it and pack with --find-links"
            )
        else:
            continue
        name = normalize_dist_name(dist.name)
        missing += [MissingPackage(platform, name, why) for platform in platforms]
    return missing


def _sort(
    planned: PlannedFile | MissingPackage,
    files: list[PlannedFile],
    missing: list[MissingPackage],
) -> None:
    if isinstance(planned, PlannedFile):
        files.append(planned)
    else:
        missing.append(planned)


async def plan_pack(
    request: PackRequest,
    *,
    progress: PackProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> PackPlan:
    """What `pack` would pack, from where, with sizes, and what it cannot (a dry run: makes
    the lock if needed, fetches nothing)."""
    say = log or (lambda _line: None)
    report = progress or (lambda _phase, _done, _total: None)
    loop = asyncio.get_running_loop()
    platforms = await loop.run_in_executor(None, _default_platforms, request)
    try:
        lock, source, warnings = await _choose_lock(request, platforms, say, report)
    except SpecError as error:
        raise PackError(str(error)) from None
    lock = _only(lock, platforms)
    files: list[PlannedFile] = []
    missing: list[MissingPackage] = []
    for part in lock.platforms:
        for package in part.conda:
            _sort(_plan_conda(part.platform, package, request.package_dirs), files, missing)
        for pypi in part.pypi:
            _sort(_plan_pypi(part.platform, pypi), files, missing)
    download_urls: dict[str, str] = {}
    if request.prefix is not None:
        missing += await loop.run_in_executor(
            None, _local_pip_installs, Path(request.prefix), lock.platform_names
        )
        if any(f.source == "download" for f in files):
            # Only when something is downloaded: reading every record costs a pack from the
            # cache a few percent.
            download_urls = await loop.run_in_executor(
                None, _credentialed_urls, Path(request.prefix)
            )
    return PackPlan(
        lock=lock,
        lock_source=source,
        platforms=lock.platform_names,
        files=tuple(files),
        missing=tuple(missing),
        notebooks=tuple(Path(n) for n in request.notebooks),
        warnings=tuple(warnings),
        download_urls=download_urls,
    )


# --------------------------------------------------------------------------------------------
# fetching


def _matches(item: PlannedFile, path: Path) -> str | None:
    """The file's sha256 when it is the one the lock names, else None."""
    try:
        size, sha256, md5 = archive_digests(path)
    except OSError:
        return None
    package = item.conda
    expected_size = package.size if package is not None else None
    expected_md5 = package.md5 if package is not None else None
    if package is not None:
        expected_sha = package.sha256
    else:
        expected_sha = item.pypi.sha256 if item.pypi is not None else None
    if expected_size is not None and size != expected_size:
        return None
    if expected_sha:
        return sha256 if sha256 == expected_sha else None
    return sha256 if expected_md5 and md5 == expected_md5 else None


async def _download(client: Any, url: str, dest: Path) -> str | None:
    """None when downloaded; the reason when the server does not have it (404/410)."""
    from rattler.package_streaming import download_to_path

    try:
        await download_to_path(client, url, dest)
    except Exception as error:  # rattler's networking errors have no common base class
        text = redact_text(str(error)).strip()
        first = text.splitlines()[0] if text else type(error).__name__
        if re.search(r"\b(404|410)\b|not found", text, re.IGNORECASE):
            return first
        raise PackError(f"cannot download {redact_url(url)}: {first}") from None
    return None


@dataclass
class _Fetched:
    path: Path
    sha256: str | None
    """Computed here (a cache copy, or a lock with only an md5); None: write_capsule checks."""


async def _fetch_all(
    plan: PackPlan,
    staging: Callable[[], Path],
    concurrency: int,
    report: PackProgress,
) -> tuple[dict[str, _Fetched], dict[str, str]]:
    """Every member's local file, checked where it must be; and member -> why it is missing."""
    unique = plan.unique()
    total = len(unique)
    done = 0
    fetched: dict[str, _Fetched] = {}
    absent: dict[str, str] = {}
    client: Any = None
    semaphore = asyncio.Semaphore(max(1, concurrency))

    def tick() -> None:
        nonlocal done
        done += 1
        report("fetch", done, total)

    async def one(member: str, item: PlannedFile) -> None:
        nonlocal client
        md5_only = item.conda is not None and not item.conda.sha256
        for candidate in item.candidates:
            sha256 = await asyncio.to_thread(_matches, item, candidate)
            if sha256 is not None:
                fetched[member] = _Fetched(candidate, sha256)
                return tick()
        if item.path is not None and item.source == "file":
            sha256 = await asyncio.to_thread(_matches, item, item.path) if md5_only else None
            if md5_only and sha256 is None:
                raise PackError(f"{item.url} does not match the lock's md5; it was changed")
            fetched[member] = _Fetched(item.path, sha256)
            return tick()
        package_url = item.conda.url if item.conda is not None else None
        if package_url is None and item.pypi is not None:
            package_url = item.pypi.url
        assert package_url
        # A private channel's archive: from the record's own URL, with its credentials.
        fetch_url = plan.download_urls.get(package_url, package_url)
        if file_url_path(package_url) is not None:
            # a file:// URL that is gone, and no cached copy matches the lock
            absent[member] = f"{item.url} does not exist any more and no cached copy matches"
            return tick()
        dest = staging() / member.replace("/", "__")
        async with semaphore:
            if client is None:
                client = await download_client()
            try:
                why = await _download(client, fetch_url, dest)
            except PackError as error:
                # Offline, the download is the last resort: say what was looked at first.
                refused = len(item.candidates)
                looked = (
                    f"{refused} cop{'y' if refused == 1 else 'ies'} in conda's package folders "
                    "did not match the lock's hash"
                    if refused
                    else "conda's package folders (pkgs_dirs) hold no copy of it"
                )
                raise PackError(f"{error}; {looked}") from None
        if why is not None:
            absent[member] = f"{item.url} cannot be downloaded: {why}"
            return tick()
        sha256 = await asyncio.to_thread(_matches, item, dest) if md5_only else None
        if md5_only and sha256 is None:
            raise PackError(f"{item.url} as downloaded does not match the lock's md5")
        fetched[member] = _Fetched(dest, sha256)
        tick()

    report("fetch", 0, total)
    await gather_all([one(member, item) for member, item in unique.items()])
    return fetched, absent


async def _in_thread(work: Callable[[threading.Event], T]) -> T:
    """`work(cancel)` in a worker thread; when this task is cancelled, `cancel` is set and
    the thread is waited for (so that it has cleaned up) before the cancellation goes on."""
    cancel = threading.Event()
    future = asyncio.get_running_loop().run_in_executor(None, work, cancel)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()
        await asyncio.gather(future, return_exceptions=True)
        raise


# --------------------------------------------------------------------------------------------
# pack


async def pack(
    request: PackRequest,
    output: str | os.PathLike[str],
    *,
    plan: PackPlan | None = None,
    progress: PackProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> PackResult:
    """Write the capsule of `request` to `output` (atomically; nothing is left there on
    failure or cancellation). `plan` is `plan_pack`'s, when it was made already."""
    started = time.monotonic()
    say = log or (lambda _line: None)
    report = progress or (lambda _phase, _done, _total: None)
    target = Path(output)
    if not target.parent.is_dir():
        raise PackError(f"cannot write {target}: the folder {target.parent} does not exist")
    if plan is None:
        plan = await plan_pack(request, progress=report, log=say)
    staging_dir: tempfile.TemporaryDirectory[str] | None = None

    def staging() -> Path:
        nonlocal staging_dir
        if staging_dir is None:
            staging_dir = tempfile.TemporaryDirectory(
                prefix=".jupyter-repro-pack-", dir=target.parent
            )
        return Path(staging_dir.name)

    try:
        fetched, absent = await _fetch_all(plan, staging, request.concurrency, report)
        lock = _with_computed_hashes(plan.lock, plan.files, fetched)
        missing = list(plan.missing)
        conda: list[tuple[LockedConda, Path, str]] = []
        pypi: list[tuple[str, LockedPypi, Path]] = []
        packages = {(part.platform, p.url): p for part in lock.platforms for p in part.conda}
        for item in plan.files:
            if item.member in absent:
                missing.append(MissingPackage(item.platform, item.name, absent[item.member]))
                continue
            path = fetched[item.member].path
            if item.conda is not None:
                conda.append((packages[(item.platform, item.conda.url)], path, item.platform))
            elif item.pypi is not None:
                pypi.append((item.platform, item.pypi, path))
        for line in absent.values():
            say(f"not packed: {line}")

        def write(cancel: threading.Event) -> Manifest:
            return write_capsule(
                target,
                lock=lock,
                notebooks=plan.notebooks,
                conda=conda,
                pypi=pypi,
                missing=missing,
                progress=lambda done, total: report("write", done, total),
                cancel=cancel,
            )

        try:
            manifest = await _in_thread(write)
        except CapsuleError as error:
            raise PackError(error.message) from None
    finally:
        if staging_dir is not None:
            await asyncio.to_thread(shutil.rmtree, staging_dir.name, True)
    capsule_bytes = await asyncio.to_thread(lambda: target.stat().st_size)
    return PackResult(
        output=target,
        manifest=manifest,
        plan=plan,
        capsule_bytes=capsule_bytes,
        content_bytes=manifest.total_bytes,
        seconds=time.monotonic() - started,
    )


def _with_computed_hashes(
    lock: Lock, files: Sequence[PlannedFile], fetched: Mapping[str, _Fetched]
) -> Lock:
    """The lock with the sha256 of packages it knew only by md5 (checked by md5 here), so
    that the capsule's lock can verify every archive it holds."""
    computed = {
        item.conda.url: fetched[item.member].sha256
        for item in files
        if item.conda is not None
        and not item.conda.sha256
        and item.member in fetched
        and fetched[item.member].sha256
    }
    if not computed:
        return lock
    platforms = tuple(
        dataclasses.replace(
            part,
            conda=tuple(
                dataclasses.replace(p, sha256=computed[p.url]) if p.url in computed else p
                for p in part.conda
            ),
        )
        for part in lock.platforms
    )
    return dataclasses.replace(lock, platforms=platforms)
