"""Prefix -> multi-platform lock, in seconds.

This machine's platform is locked from what is installed (the `conda-meta` records: URL,
hashes, size, depends), with no solve: the lock says exactly what runs here. Every other
platform is solved with py-rattler from the portable spec (the requested specs pinned to the
installed versions, build constraints kept), against the channels the environment came from,
with that platform's virtual packages, and "as of" the environment's last change
(`exclude_newer`), so every platform gets what existed when this one was built. A platform that
cannot be solved is reported with the solver's words and left out; it never fails the lock.
The pip section is resolved for each platform with uv (see `pip_lock`).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

from ..environments.channels import redact_text, redact_url, short_channel_name
from ..environments.platforms import virtual_packages
from ..environments.prefix import Prefix
from .export import ExportError, export_environment, platform_of
from .lock import DEFAULT_PLATFORMS, Lock, PlatformLock, locked_from_record, record_channel
from .pip_lock import LockedPypi, PipIndex, PipLockError, lock_pip

_HISTORY_DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_LOCAL_PIP = re.compile(r"^(?:-e\b|--editable\b|\.|/|~|file:)")


@dataclass(frozen=True)
class LockOptions:
    """What to lock for and how."""

    platforms: tuple[str, ...] = ()
    """Platforms to lock; empty: this machine's plus `DEFAULT_PLATFORMS`."""
    pip_index: PipIndex = field(default_factory=PipIndex)
    environ: Mapping[str, str] | None = None
    """Environment of the uv child process (`UV_CACHE_DIR`, proxies)."""


@dataclass(frozen=True)
class LockResult:
    """A lock, with the records behind it and what was left out and why."""

    lock: Lock
    records: Mapping[str, Sequence[Any]]
    """platform -> py-rattler records (what the pixi format writes)."""
    skipped: Mapping[str, str]
    """platform -> why it could not be locked."""
    warnings: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """For the REST answer and the CLI: what was locked, what was not and why."""
        return {
            "platforms": list(self.lock.platform_names),
            "skipped": dict(self.skipped),
            "warnings": list(self.warnings),
            "as_of": self.lock.as_of.strftime("%Y-%m-%dT%H:%M:%SZ") if self.lock.as_of else None,
            "packages": {p.platform: len(p.conda) + len(p.pypi) for p in self.lock.platforms},
        }


class LockFailed(ExportError):
    """Not even this machine's platform could be locked."""


def last_changed(prefix: Path) -> _dt.datetime:
    """When the environment last changed: its history's last date, else conda-meta's mtime.

    Whole seconds in UTC, so the same environment always gives the same date.
    """
    history = prefix / "conda-meta" / "history"
    latest: _dt.datetime | None = None
    try:
        text = history.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for match in _HISTORY_DATE.finditer(text):
        try:
            moment = _dt.datetime.strptime(match.group(0), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
        # conda writes local time without a zone; UTC is the only reading that is stable.
        moment = moment.replace(tzinfo=_dt.timezone.utc)
        latest = moment if latest is None or moment > latest else latest
    if latest is None:
        times = [p.stat().st_mtime for p in (prefix / "conda-meta").glob("*.json")]
        stamp = max(times) if times else 0.0
        latest = _dt.datetime.fromtimestamp(int(stamp), tz=_dt.timezone.utc)
    return latest


def _installed_records(prefix: Path) -> list[Any]:
    from rattler import PrefixRecord

    records = []
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            records.append(PrefixRecord.from_path(path))
        except Exception as error:  # rattler raises its own types for unreadable records
            raise LockFailed(
                f"cannot lock: conda-meta/{path.name} cannot be read ({_first_line(error)}); "
                "repair or re-create the environment"
            ) from error
    return records


def _first_line(error: BaseException) -> str:
    lines = redact_text(str(error)).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _explanation(error: BaseException, limit: int = 2000) -> str:
    """The solver's whole explanation (it says which package has no candidate and why),
    credentials removed, cut to `limit` characters."""
    text = redact_text(str(error)).strip() or type(error).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def _channel_urls(spec_channels: Sequence[str], records: Sequence[Any]) -> list[str]:
    """The environment's channels as URLs, in the spec's order (records know the URLs)."""
    by_name: dict[str, str] = {}
    # Whatever the records' `channel` field holds (a URL with or without its subdir, a bare
    # name): the channel their package URLs were downloaded from.
    channels = [record_channel(record, redact=False) for record in records]
    for channel in channels:
        if "://" not in channel:
            continue
        by_name.setdefault(channel, channel)
        by_name.setdefault(channel.rsplit("/", 1)[-1], channel)
        by_name.setdefault(redact_url(channel), channel)
        by_name.setdefault(short_channel_name(channel), channel)
    urls: list[str] = []
    for name in spec_channels:
        url = by_name.get(name.rstrip("/"))
        if url is not None and url not in urls:
            urls.append(url)
    for channel in channels:
        if "://" in channel and channel not in urls:
            urls.append(channel)
    return urls


def _lockable_pip(pip: Sequence[str]) -> tuple[list[str], list[str]]:
    """Requirement lines uv can lock, and warnings for the ones it cannot."""
    lockable, warnings = [], []
    for line in pip:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if _LOCAL_PIP.match(text) or text.startswith("-"):
            warnings.append(
                f"pip entry {redact_text(text)!r} is a local or editable install or an option; "
                "it cannot be locked and is left out of the lock"
            )
            continue
        lockable.append(text)
    return lockable, warnings


def _python_version(records: Sequence[Any]) -> str | None:
    for record in records:
        if record.name.normalized == "python":
            return str(record.version)
    return None


async def _solve(
    platform: str, specs: Sequence[str], channels: Sequence[str], as_of: _dt.datetime
) -> list[Any]:
    from rattler import Channel, Gateway, MatchSpec, solve

    return list(
        await solve(
            sources=[Channel(url) for url in channels],
            specs=[MatchSpec(s) for s in specs],
            gateway=Gateway(show_progress=False),
            platforms=cast(Any, [platform, "noarch"]),
            virtual_packages=list(virtual_packages(platform)),
            exclude_newer=as_of,
        )
    )


def _platforms(options: LockOptions, host: str) -> list[str]:
    asked = list(options.platforms) or [host, *DEFAULT_PLATFORMS]
    out: list[str] = []
    for platform in asked:
        if platform not in out:
            out.append(platform)
    return out


async def lock_environment(
    prefix: Path,
    options: LockOptions | None = None,
    *,
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> LockResult:
    """Lock the environment at `prefix` for `options.platforms` (see the module docstring)."""
    options = options or LockOptions()
    prefix = Path(prefix)
    say = progress or (lambda _text: None)
    loop = asyncio.get_running_loop()
    if not Prefix(prefix).is_conda():
        raise LockFailed(
            f"{prefix} is not a conda environment (no conda-meta); only conda environments "
            "can be locked, export a venv as environment.yml instead"
        )
    spec = await loop.run_in_executor(
        None, lambda: export_environment(prefix, mode="portable", name=name)
    )
    installed = await loop.run_in_executor(None, _installed_records, prefix)
    host = await loop.run_in_executor(None, platform_of, prefix)
    as_of = await loop.run_in_executor(None, last_changed, prefix)
    channels = _channel_urls(spec.channels, installed)
    pip_specs, warnings = _lockable_pip(spec.pip)
    records: dict[str, list[Any]] = {}
    skipped: dict[str, str] = {}
    for platform in _platforms(options, host):
        if platform == host:
            records[platform] = installed
            continue
        say(f"solving for {platform}")
        try:
            records[platform] = await _solve(platform, spec.dependencies, channels, as_of)
        except ValueError as error:
            skipped[platform] = str(error)
        except Exception as error:  # rattler's SolverError and friends: the platform is out
            skipped[platform] = f"cannot be solved: {_explanation(error)}"
    pypi: dict[str, tuple[LockedPypi, ...]] = {}
    if pip_specs:
        for platform in list(records):
            python = _python_version(records[platform])
            if python is None:
                skipped[platform] = "has a pip section but no python package to install it with"
                del records[platform]
                continue
            say(f"resolving the pip section for {platform}")
            try:
                pypi[platform] = await loop.run_in_executor(
                    None,
                    partial(
                        lock_pip,
                        pip_specs,
                        platform=platform,
                        python_version=python,
                        index=options.pip_index,
                        environ=options.environ,
                    ),
                )
            except PipLockError as error:
                skipped[platform] = f"pip section cannot be resolved: {error}"
                del records[platform]
    if not records:
        reasons = "; ".join(f"{p}: {why}" for p, why in sorted(skipped.items()))
        raise LockFailed(f"cannot lock this environment for any platform asked for ({reasons})")
    platform_locks = tuple(
        PlatformLock(
            platform,
            tuple(
                sorted(
                    (locked_from_record(r) for r in records[platform]),
                    key=lambda p: (p.name, p.version, p.build, p.url),
                )
            ),
            pypi.get(platform, ()),
        )
        for platform in sorted(records)
    )
    lock = Lock(
        platforms=platform_locks,
        channels=tuple(redact_url(c) for c in channels),
        conda_specs=spec.dependencies,
        pip_specs=tuple(pip_specs),
        as_of=as_of,
        name=spec.name,
        format="embedded",
    )
    return LockResult(lock, records, dict(sorted(skipped.items())), tuple(warnings))
