"""Package archives of a lock, fetched and checked before anything is linked.

rattler's installer does not compare an archive with the hash its record names (a byte
changed inside a valid `.conda` installs silently), so a restore from a lock checks every
archive itself: size and sha256 (md5 when the lock has no sha256) against the lock. Only then
are records made, from the verified archive itself (its `info/index.json`: the true depends),
and handed to rattler, pointing at the verified file so that nothing is fetched twice.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..aio import gather_all
from ..download_client import download_client
from ..environments.channels import redact_url
from ..specs.lock import LockedConda, archive_digests, file_url_path
from .errors import RestoreError
from .shared_cache import SharedCache, is_private_url, keep_archive, take_archive

_CHUNK = 1 << 20


class TamperedPackage(RestoreError):
    """An archive does not match the lock: changed, truncated, or not the one locked."""


@dataclass(frozen=True)
class Verified:
    """One checked archive and the record rattler installs it from."""

    package: LockedConda
    path: Path
    record: Any


def check_archive(package: LockedConda, path: Path) -> str:
    """Raise `TamperedPackage` unless the archive at `path` is the one the lock names;
    return the archive's md5 (the installed record keeps it, as conda's do)."""
    shown = f"{package.dist_name} ({redact_url(package.url)})"
    if not package.sha256 and not package.md5:
        raise TamperedPackage(
            f"the lock names no hash for {shown}, so it cannot be verified; re-lock the "
            "environment (jupyter repro lock) to record hashes"
        )
    try:
        size, sha256, md5 = archive_digests(path)
    except OSError as error:
        raise RestoreError(f"cannot read the archive of {shown}: {error.strerror}") from error
    if package.size is not None and size != package.size:
        raise TamperedPackage(
            f"{shown} does not match the lock: it has {size:,} bytes, the lock says "
            f"{package.size:,} (truncated or changed); nothing was installed"
        )
    if package.sha256 and sha256 != package.sha256:
        raise TamperedPackage(
            f"{shown} does not match the lock: its sha256 is {sha256}, the lock says "
            f"{package.sha256} (the archive was changed or truncated); nothing was installed"
        )
    if not package.sha256 and package.md5 and md5 != package.md5:
        raise TamperedPackage(
            f"{shown} does not match the lock: its md5 is {md5}, the lock says {package.md5}; "
            "nothing was installed"
        )
    return md5


def _missing(package: LockedConda) -> RestoreError:
    return RestoreError(
        f"{package.dist_name}: {redact_url(package.url)} does not exist; the channel moved or "
        "the lock comes from another machine"
    )


def _check_local(
    items: Sequence[tuple[LockedConda, Path]], checked: Mapping[str, str]
) -> dict[str, str]:
    """Check every archive, in one worker thread: hashing is fast, hand-offs are not.
    Returns each package URL's archive md5. Archives in `checked` (URL -> md5) were hashed
    against the lock's sha256 by whoever wrote them (a capsule's extraction) and are not read
    again."""
    md5s: dict[str, str] = {}
    for package, path in items:
        if package.url in checked:
            md5s[package.url] = checked[package.url]
            continue
        if not path.is_file():
            raise _missing(package)
        md5s[package.url] = check_archive(package, path)
    return md5s


async def _download(package: LockedConda, staging: Path, client: Any) -> Path:
    from rattler.package_streaming import download_to_path

    dest = staging / f"{package.subdir}-{package.filename}"
    try:
        await download_to_path(client, package.url, dest)
    except Exception as error:  # rattler's networking errors have no common base class
        first = redact_url(str(error).strip().splitlines()[0]) if str(error).strip() else ""
        raise RestoreError(
            f"cannot download {package.dist_name} from {redact_url(package.url)}: {first}"
        ) from error
    return dest


def _shared_archive(shared: SharedCache | None, package: LockedConda, staging: Path) -> Path | None:
    """Another download of this archive in the shared cache whose bytes are the lock's: this
    user's own, or a private copy in `staging` of another user's. Another user's file is
    read once, into the copy, while hashed: its owner could change it between two reads,
    so nothing after this (the lock check, the record, rattler) ever reads it."""
    if shared is None or not package.sha256:
        return None
    return take_archive(
        shared,
        package.sha256,
        package.filename,
        package.size,
        staging / f"{package.subdir}-{package.filename}",
    )


async def _record(package: LockedConda, path: Path, uri: str, md5: str) -> Any:
    from rattler import RepoDataRecord

    try:
        record = await RepoDataRecord.from_package_archive(path)
    except Exception as error:  # rattler's read errors have no common base class
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RestoreError(
            f"{package.dist_name}: its archive matches the lock but is not a conda package "
            f"that can be read ({redact_url(first)[:200]}); nothing was installed"
        ) from None
    if record.md5 is None:
        # rattler computes only the sha256 of an archive; without the md5, `conda-meta`
        # would lack what conda's records (and an `@EXPLICIT --md5` export) have.
        record.md5 = bytes.fromhex(md5)
    record.url = uri
    record.channel = package.channel
    record.file_name = package.filename
    return record


async def fetch_verified(
    packages: Sequence[LockedConda],
    staging: Path,
    *,
    on_done: Callable[[int, int], None] | None = None,
    concurrency: int = 8,
    checked: Mapping[str, str] | None = None,
    shared: SharedCache | None = None,
    inspect: Callable[[Sequence[tuple[LockedConda, Path]]], object] | None = None,
) -> list[Verified]:
    """Fetch (or find, for `file://`) and verify every archive; records made from them.
    `inspect(archives)`, when given, runs in a worker thread over the verified archives
    while their records are made (its exceptions are raised here).

    Local archives are checked where they are; remote ones are downloaded into `staging`
    (`concurrency` at a time) and checked there. Nothing is returned unless all match.
    `checked` (package URL -> md5) names local archives already checked against the lock's
    sha256 while they were written (a capsule's extraction): hashing them twice costs a
    restore as much as linking them. With a `shared` package cache, an archive any user of it
    downloaded is used when its bytes hash to the lock's sha256 (else it is downloaded), and
    what this restore downloads and checks is kept there for the next user.
    """
    total = len(packages)
    local = [(p, path) for p in packages if (path := file_url_path(p.url)) is not None]
    remote = [p for p in packages if file_url_path(p.url) is None]
    paths: dict[str, Path] = {p.url: path for p, path in local}
    if remote:
        client = await download_client()
        semaphore = asyncio.Semaphore(concurrency)
        fetched = 0

        async def one(package: LockedConda) -> None:
            nonlocal fetched
            async with semaphore:
                found = await asyncio.to_thread(_shared_archive, shared, package, staging)
                if found is not None:
                    paths[package.url] = found
                else:
                    paths[package.url] = await _download(package, staging, client)
            fetched += 1
            if on_done is not None:
                on_done(fetched, total)

        await gather_all([one(p) for p in remote])
    md5s = await asyncio.to_thread(
        _check_local, [(p, paths[p.url]) for p in packages], checked or {}
    )
    if shared is not None:
        # Checked: kept for every user of the cache after this one (downloads and private
        # copies of another user's archive alike; not what a private channel served: every
        # user reads the archives).
        for package in remote:
            path = paths[package.url]
            if (
                package.sha256
                and path.parent != shared.archives
                and not is_private_url(package.url)
            ):
                kept = await asyncio.to_thread(
                    keep_archive, shared, paths[package.url], package.sha256, package.filename
                )
                if kept is not None:
                    paths[package.url] = kept
    if on_done is not None:
        on_done(total, total)
    uris = await asyncio.to_thread(
        lambda: {url: Path(os.path.realpath(path)).as_uri() for url, path in paths.items()}
    )
    making = [_record(p, paths[p.url], uris[p.url], md5s[p.url]) for p in packages]
    if inspect is None:
        records = await gather_all(making)
    else:
        archives = [(p, paths[p.url]) for p in packages]
        # Alongside: the records are rattler's async work, the inspection a thread's.
        _, *records = await gather_all([asyncio.to_thread(inspect, archives), *making])
    return [Verified(p, paths[p.url], r) for p, r in zip(packages, records, strict=True)]


def restore_origins(prefix: Path, verified: Sequence[Verified]) -> None:
    """Point the installed records of `verified` back at the lock's URLs, without
    credentials (rattler recorded the file it installed from: a staging folder's, a capsule
    extraction's, gone afterwards).

    Only the two fields change. The record is a few hundred KB of `paths` for big packages:
    when the old value is found exactly once, it is replaced in the text rattler wrote instead
    of the whole record being parsed and dumped again.
    """
    for item in verified:
        path = prefix / "conda-meta" / f"{item.package.dist_name}.json"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        # conda-meta is read by every tool and exported from: no credentials there.
        changes = (
            ("url", str(item.record.url), redact_url(item.package.url)),
            ("channel", str(item.record.channel or ""), redact_url(item.package.channel)),
        )
        fast: str | None = text
        for key, old, new in changes:
            if old == new:
                continue
            needle = f'"{key}": {json.dumps(old, ensure_ascii=False)}'
            if fast is None or fast.count(needle) != 1:
                fast = None
                break
            fast = fast.replace(needle, f'"{key}": {json.dumps(new, ensure_ascii=False)}')
        if fast is None:
            try:
                data = json.loads(text)
            except ValueError:
                continue
            data["url"] = redact_url(item.package.url)
            data["channel"] = redact_url(item.package.channel)
            fast = json.dumps(data, indent=2, sort_keys=True) + "\n"
        if fast != text:
            _overwrite(path, fast.encode("utf-8"))


def _overwrite(path: Path, data: bytes) -> None:
    """Replace a file's content in place: written over from the start, then cut to length.

    Not truncated to zero first (as `write_text` does): ext4 flushes a file truncated to
    zero and written again when it is closed (`auto_da_alloc`), which made rewriting 47
    records cost 3 times as much. The prefix is still marked as being restored: nobody
    reads these records until the restore is done, and an interrupted one is removed."""
    with open(path, "r+b") as stream:
        stream.write(data)
        stream.truncate(len(data))
