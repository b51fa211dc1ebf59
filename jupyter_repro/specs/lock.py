"""Multi-platform locks: the model, and the formats it travels in.

A lock names, for each platform, every package by URL and hash, so a restore installs exactly
those files without a solve. Three forms carry the same model:

- CEP 37 `conda-lock.yml` (version 1, what conda-lock writes and reads),
- the rattler/pixi lock format (`pixi.lock`), written and read with py-rattler's `LockFile`,
- `metadata.jupyter_repro.lock` in a notebook: compact JSON, one line per package
  (`subdir/file#sha256` under its channel), so a 150-package environment on four platforms
  stays well under 100 KB and a re-lock changes only the lines of packages that changed.

Locks come from strangers like every other spec: they are read as data (YAML without aliases or
tags, JSON), every URL is checked and shown without credentials, and the size is bounded.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from ..environments.channels import is_subdir, redact_text, redact_url
from ..environments.platforms import virtual_package_specs
from .environment import SpecError, _check_conflict_markers, _decode, _yaml_scalar
from .pip_lock import LockedPypi

LOCK_VERSION = 1
# Real conda-lock.yml files for large environments on several platforms reach a few MB.
MAX_LOCK_BYTES = 30_000_000
DEFAULT_PLATFORMS = ("linux-64", "osx-64", "osx-arm64", "win-64")
CONDA_LOCK_NAMES = ("conda-lock.yml", "conda-lock.yaml")
PIXI_LOCK_NAME = "pixi.lock"
_PACKAGE_FILE = re.compile(r"(?P<name>.+)-(?P<version>[^-]+)-(?P<build>[^-]+)\.(?:conda|tar\.bz2)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MD5 = re.compile(r"[0-9a-f]{32}")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_UNSAFE_PART = re.compile(r"[/\\\s\x00-\x1f\x7f]")
"""What a package name, version or build never holds: a path separator, white space, a
control character."""
_PIP_ENTRY = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)"
    r"(?: (?P<url>[A-Za-z][A-Za-z0-9+.-]*://[^\s#]+))?(?:#sha256=(?P<sha256>[0-9a-f]{64}))?"
)
_META = "jupyter_repro."


class LockError(SpecError):
    """A lock that cannot be read or written; the message says what and where."""


@dataclass(frozen=True)
class LockedConda:
    """One conda package of a lock: where to get it and how to recognise it."""

    name: str
    version: str
    build: str
    subdir: str
    url: str
    """The package URL: without credentials in a lock being written; a lock read from a
    file keeps what it says (a restore may need it to download), so show it redacted."""
    channel: str
    """The channel's URL (no subdir), as `url`."""
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    build_number: int = 0
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    noarch: str | None = None
    timestamp: int | None = None
    """Build time in milliseconds, as in repodata."""

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def dist_name(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"

    def problem(self) -> str | None:
        """Why this package cannot be what its lock says, else None: `name-version-build`
        names files and folders (conda-meta, the package cache, a capsule's members), so
        none of the three may hold a path separator, white space or a control character, or
        start with a dot, and the archive's file name must be `name-version-build` too."""
        for what, value in (("name", self.name), ("version", self.version), ("build", self.build)):
            if not value or value.startswith(".") or _UNSAFE_PART.search(value):
                return f"its {what} {value[:80]!r} is not a conda package {what}"
        files = {self.filename, unquote(self.filename)}
        if not files & {f"{self.dist_name}.conda", f"{self.dist_name}.tar.bz2"}:
            return (
                f"its file {self.filename[:120]!r} is not {self.dist_name}.conda or "
                f"{self.dist_name}.tar.bz2"
            )
        return None


@dataclass(frozen=True)
class PlatformLock:
    """What one platform installs."""

    platform: str
    conda: tuple[LockedConda, ...]
    pypi: tuple[LockedPypi, ...] = ()


@dataclass(frozen=True)
class Lock:
    """A lock for one or more platforms, with what is needed to re-solve for another."""

    platforms: tuple[PlatformLock, ...]
    channels: tuple[str, ...] = ()
    conda_specs: tuple[str, ...] = ()
    """The portable spec's conda dependencies: re-solved "as of" for a platform not locked."""
    pip_specs: tuple[str, ...] = ()
    as_of: _dt.datetime | None = None
    """When the locked environment last changed; other platforms were solved as of then."""
    name: str | None = None
    origin: str = "lock"
    """Where it was read from, for messages."""
    format: str = "embedded"
    """`embedded`, `conda-lock` or `pixi`."""
    notes: tuple[str, ...] = field(default=(), compare=False)

    def platform(self, platform: str) -> PlatformLock | None:
        for entry in self.platforms:
            if entry.platform == platform:
                return entry
        return None

    @property
    def platform_names(self) -> tuple[str, ...]:
        return tuple(p.platform for p in self.platforms)

    def checked(self) -> Lock:
        """This lock, read from a file; LockError naming the first package whose name,
        version, build or file name could name a path (see `LockedConda.problem`)."""
        for part in self.platforms:
            for package in part.conda:
                problem = package.problem()
                if problem is not None:
                    raise LockError(
                        f"{part.platform}: {redact_url(package.url)[:200]}: {problem}; the lock "
                        "is damaged or was not written by a conda tool",
                        source=self.origin,
                        entry=package.name[:80],
                    )
        return self

    def digest(self, platform: str | None = None) -> str:
        """sha256 of the embedded form (of one platform's part when given): which lock this is."""
        # Kept on the (immutable) lock: a restore compares the lock it planned with the one
        # it reads again, and a server keeps a capsule's lock for its next restore.
        known: dict[str | None, str] = self.__dict__.setdefault("_digests", {})
        found = known.get(platform)
        if found is None:
            data = embedded_lock(self)
            if platform is not None:
                data = {"platforms": data["platforms"].get(platform)}
            text = json.dumps(data, sort_keys=True, separators=(",", ":"))
            found = known[platform] = hashlib.sha256(text.encode()).hexdigest()
        return found


# --------------------------------------------------------------------------------------------
# helpers

_CHUNK = 1 << 20


def archive_digests(path: Path) -> tuple[int, str, str]:
    """Size, sha256 and md5 of a package archive (or wheel), read once: what a lock names."""
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            sha256.update(chunk)
            md5.update(chunk)
    return size, sha256.hexdigest(), md5.hexdigest()


def file_url_path(url: str) -> Path | None:
    """The local path of a `file://` URL, None for any other URL."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    return Path(unquote(parts.path))


def _iso(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_as_of(text: str, source: str) -> _dt.datetime:
    """An ISO date or date-time (UTC when no zone is given)."""
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise LockError(
            f"invalid date {text!r}; expected ISO 8601 like 2026-03-02T10:00:00Z", source=source
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment


def _check_url(url: Any, source: str, what: str) -> str:
    if not isinstance(url, str) or not _URL.fullmatch(url):
        shown = redact_text(str(url))[:200]
        raise LockError(f"{what}: {shown!r} is not a URL", source=source, entry=shown)
    return url


def _check_hash(
    value: Any, pattern: re.Pattern[str], kind: str, source: str, where: str
) -> str | None:
    """A hash as lowercase hex (bytes are accepted), None when absent; LockError if bad."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.hex()
    if not isinstance(value, str) or not pattern.fullmatch(value.lower()):
        raise LockError(f"{where}: invalid {kind} {str(value)[:80]!r}", source=source)
    return value.lower()


def _split_channel(url: str, subdir: str) -> str:
    """The channel part of a package URL `<channel>/<subdir>/<file>`."""
    head = url.rsplit("/", 1)[0]
    if head.endswith("/" + subdir):
        return head[: -len(subdir) - 1]
    return head.rsplit("/", 1)[0]


def _from_filename(url: str, source: str) -> tuple[str, str, str]:
    match = _PACKAGE_FILE.fullmatch(url.rsplit("/", 1)[-1])
    if match is None:
        raise LockError(
            f"{redact_url(url)!r} does not end in name-version-build.conda (or .tar.bz2)",
            source=source,
            entry=redact_url(url),
        )
    return match["name"], match["version"], match["build"]


def _depends_map(depends: Iterable[str]) -> dict[str, str]:
    """conda `depends` as CEP 37 writes them: name -> the rest of the spec.

    The format has one entry per name, while real records may name a package several times
    (conda-forge's `python >=3.13,<3.14.0a0`, `python >=3.13,<3.14.0a0 *_cp313`, `python`):
    the first constraint is kept, never replaced by a bare name."""
    out: dict[str, str] = {}
    for dep in depends:
        name, _, rest = dep.strip().partition(" ")
        if not out.get(name):
            out[name] = rest.strip()
    return out


# --------------------------------------------------------------------------------------------
# embedded form: metadata.jupyter_repro.lock


def embedded_lock(lock: Lock) -> dict[str, Any]:
    """The compact JSON form kept in a notebook's metadata (keys sorted when written)."""
    platforms: dict[str, Any] = {}
    for entry in lock.platforms:
        conda: dict[str, list[str]] = {}
        for package in entry.conda:
            line = f"{package.subdir}/{package.filename}"
            if package.sha256:
                line += f"#{package.sha256}"
            conda.setdefault(package.channel, []).append(line)
        part: dict[str, Any] = {"conda": {k: sorted(v) for k, v in conda.items()}}
        if entry.pypi:
            part["pypi"] = sorted(_pypi_line(p) for p in entry.pypi)
        platforms[entry.platform] = part
    data: dict[str, Any] = {
        "version": LOCK_VERSION,
        "channels": list(lock.channels),
        "specs": {"conda": list(lock.conda_specs), "pip": list(lock.pip_specs)},
        "platforms": platforms,
    }
    if lock.as_of is not None:
        data["as_of"] = _iso(lock.as_of)
    if lock.name:
        data["name"] = lock.name
    return data


def _pypi_line(package: LockedPypi) -> str:
    line = f"{package.name}=={package.version}"
    if package.url:
        line += f" {redact_url(package.url)}"
    if package.sha256:
        line += f"#sha256={package.sha256}"
    return line


def parse_embedded_lock(data: Any, *, source: str) -> Lock:
    """A lock from its embedded JSON form; every field checked."""
    if not isinstance(data, Mapping):
        raise LockError("the lock is not a JSON object", source=source)
    version = data.get("version")
    if version != LOCK_VERSION:
        raise LockError(
            f"unsupported lock version {version!r} (this jupyter-repro reads version "
            f"{LOCK_VERSION}); re-lock the environment or update jupyter-repro",
            source=source,
        )
    channels = _string_list(data.get("channels", []), source, "channels")
    specs = data.get("specs", {})
    if not isinstance(specs, Mapping):
        raise LockError("'specs' must be an object", source=source)
    platforms_data = data.get("platforms")
    if not isinstance(platforms_data, Mapping) or not platforms_data:
        raise LockError("the lock has no platforms", source=source)
    platforms = []
    for platform, part in sorted(platforms_data.items()):
        where = f"platforms.{platform}"
        if not isinstance(platform, str) or not is_subdir(platform) or platform == "noarch":
            raise LockError(f"{platform!r} is not a conda platform", source=source)
        if not isinstance(part, Mapping) or not isinstance(part.get("conda", {}), Mapping):
            raise LockError(f"{where}: expected {{'conda': {{channel: [...]}}}}", source=source)
        conda = []
        for channel, lines in part.get("conda", {}).items():
            _check_url(channel, source, f"{where}: channel")
            for line in _string_list(lines, source, f"{where}.conda"):
                conda.append(_embedded_conda(channel, line, source, where))
        pypi = tuple(
            _embedded_pypi(line, source, where)
            for line in _string_list(part.get("pypi", []), source, f"{where}.pypi")
        )
        platforms.append(PlatformLock(platform, _sorted(conda), pypi))
    as_of = data.get("as_of")
    name = data.get("name")
    return Lock(
        platforms=tuple(platforms),
        channels=tuple(channels),
        conda_specs=tuple(_string_list(specs.get("conda", []), source, "specs.conda")),
        pip_specs=tuple(_string_list(specs.get("pip", []), source, "specs.pip")),
        as_of=parse_as_of(as_of, source) if isinstance(as_of, str) else None,
        name=name if isinstance(name, str) else None,
        origin=source,
        format="embedded",
    ).checked()


def _string_list(value: Any, source: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LockError(f"'{where}' must be a list of strings", source=source)
    return value


def _embedded_conda(channel: str, line: str, source: str, where: str) -> LockedConda:
    path, _, sha256 = line.partition("#")
    subdir, _, filename = path.partition("/")
    if not is_subdir(subdir) or not filename or "/" in filename:
        raise LockError(
            f"{where}: {redact_text(line)[:200]!r} is not 'subdir/file#sha256'", source=source
        )
    url = f"{channel.rstrip('/')}/{subdir}/{filename}"
    name, version, build = _from_filename(url, source)
    return LockedConda(
        name=name,
        version=version,
        build=build,
        subdir=subdir,
        url=url,
        channel=channel.rstrip("/"),
        sha256=_check_hash(sha256 or None, _SHA256, "sha256", source, where),
    )


def _embedded_pypi(line: str, source: str, where: str) -> LockedPypi:
    match = _PIP_ENTRY.fullmatch(line)
    if match is None:
        raise LockError(
            f"{where}: {redact_text(line)[:200]!r} is not 'name==version [url][#sha256=...]'",
            source=source,
        )
    return LockedPypi(match["name"], match["version"], match["url"], match["sha256"])


def _sorted(packages: Iterable[LockedConda]) -> tuple[LockedConda, ...]:
    return tuple(sorted(packages, key=lambda p: (p.name, p.version, p.build, p.url)))


# --------------------------------------------------------------------------------------------
# CEP 37: conda-lock.yml


def render_conda_lock(lock: Lock) -> str:
    """A CEP 37 (version 1) `conda-lock.yml`; same lock, same bytes."""
    y = _yaml_scalar
    lines = [
        "# This lock file was generated by jupyter-repro: conda-lock and jupyter-repro read it.",
        "version: 1",
        "metadata:",
        "  content_hash:",
    ]
    for entry in lock.platforms:
        lines.append(f"    {y(entry.platform)}: {lock.digest(entry.platform)}")
    lines.append("  channels:" if lock.channels else "  channels: []")
    for channel in lock.channels:
        lines += [f"  - url: {y(redact_url(channel))}", "    used_env_vars: []"]
    lines.append("  platforms:")
    lines += [f"  - {y(entry.platform)}" for entry in lock.platforms]
    lines.append("  sources: []")
    custom = {
        f"{_META}conda_specs": json.dumps(list(lock.conda_specs)),
        f"{_META}pip_specs": json.dumps(list(lock.pip_specs)),
    }
    if lock.as_of is not None:
        custom[f"{_META}as_of"] = _iso(lock.as_of)
    if lock.name:
        custom[f"{_META}name"] = lock.name
    lines.append("  custom_metadata:")
    lines += [f"    {y(k)}: {y(v)}" for k, v in sorted(custom.items())]
    lines.append("package:")
    for entry in lock.platforms:
        for package in entry.conda:
            lines += [
                f"- name: {y(package.name)}",
                f"  version: {y(package.version)}",
                "  manager: conda",
                f"  platform: {y(entry.platform)}",
            ]
            deps = _depends_map(package.depends)
            lines.append("  dependencies:" if deps else "  dependencies: {}")
            lines += [f"    {y(k)}: {y(v)}" for k, v in sorted(deps.items())]
            lines.append(f"  url: {y(redact_url(package.url))}")
            lines.append("  hash:")
            if package.md5:
                lines.append(f"    md5: {package.md5}")
            if package.sha256:
                lines.append(f"    sha256: {package.sha256}")
            lines += ["  category: main", "  optional: false"]
        for pypi in entry.pypi:
            if not pypi.url:
                continue
            lines += [
                f"- name: {y(pypi.name)}",
                f"  version: {y(pypi.version)}",
                "  manager: pip",
                f"  platform: {y(entry.platform)}",
                "  dependencies: {}",
                f"  url: {y(redact_url(pypi.url))}",
            ]
            lines.append("  hash:" if pypi.sha256 else "  hash: {}")
            if pypi.sha256:
                lines.append(f"    sha256: {pypi.sha256}")
            lines += ["  category: main", "  optional: false"]
    return "\n".join(lines) + "\n"


def parse_conda_lock(text: str | bytes, *, source: str = "conda-lock.yml") -> Lock:
    """A lock from a CEP 37 `conda-lock.yml` (version 1), read as plain data."""
    data = _load_yaml(text, source)
    if not isinstance(data, Mapping) or "package" not in data:
        raise LockError("not a conda-lock file: no 'package' list", source=source)
    notes: tuple[str, ...] = ()
    if "version" not in data and isinstance(data.get("metadata"), Mapping):
        # conda-lock before 1.0 wrote the same format without a `version` key (such files are
        # common in public repositories); conda-lock itself now refuses them.
        notes = (
            f"{source} has no 'version' (written by conda-lock before 1.0): read as version 1; "
            "re-lock it with a current conda-lock to keep it readable by conda-lock itself",
        )
    elif data.get("version") != 1:
        raise LockError(
            f"unsupported conda-lock version {data.get('version')!r}; this reads version 1 "
            "(what conda-lock 2 and later write)",
            source=source,
        )
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise LockError("'metadata' must be a mapping", source=source)
    channels = []
    for channel in metadata.get("channels") or []:
        url = channel.get("url") if isinstance(channel, Mapping) else channel
        if not isinstance(url, str):
            raise LockError("metadata.channels: each needs a 'url'", source=source)
        channels.append(url)
    custom = metadata.get("custom_metadata") or {}
    if not isinstance(custom, Mapping):
        custom = {}
    packages = data.get("package")
    if not isinstance(packages, list):
        raise LockError("'package' must be a list", source=source)
    conda: dict[str, list[LockedConda]] = {}
    pypi: dict[str, list[LockedPypi]] = {}
    for index, item in enumerate(packages):
        where = f"package[{index}]"
        if not isinstance(item, Mapping):
            raise LockError(f"{where}: expected a mapping", source=source)
        platform = item.get("platform")
        if not isinstance(platform, str) or not is_subdir(platform):
            raise LockError(f"{where}: invalid platform {platform!r}", source=source)
        url = _check_url(item.get("url"), source, where)
        hashes = item.get("hash") or {}
        if not isinstance(hashes, Mapping):
            raise LockError(f"{where}: 'hash' must be a mapping", source=source)
        sha256 = _check_hash(hashes.get("sha256"), _SHA256, "sha256", source, where)
        name, version = str(item.get("name", "")), str(item.get("version", ""))
        if item.get("optional") is True:
            continue
        if item.get("manager") == "pip":
            pypi.setdefault(platform, []).append(LockedPypi(name, version, url, sha256))
            continue
        if item.get("manager") != "conda":
            raise LockError(f"{where}: manager must be 'conda' or 'pip'", source=source)
        file_name, file_version, build = _from_filename(url, source)
        subdir = url.rsplit("/", 2)[-2] if url.count("/") >= 2 else platform
        deps = item.get("dependencies") or {}
        if not isinstance(deps, Mapping):
            raise LockError(f"{where}: 'dependencies' must be a mapping", source=source)
        conda.setdefault(platform, []).append(
            LockedConda(
                name=name or file_name,
                version=version or file_version,
                build=str(item.get("build") or build),
                subdir=subdir,
                url=url,
                channel=_split_channel(url, subdir),
                sha256=sha256,
                md5=_check_hash(hashes.get("md5"), _MD5, "md5", source, where),
                depends=tuple(f"{k} {v}".strip() for k, v in deps.items()),
            )
        )
    names = sorted(set(conda) | set(pypi))
    as_of = custom.get(f"{_META}as_of")
    return Lock(
        platforms=tuple(
            PlatformLock(p, _sorted(conda.get(p, [])), tuple(pypi.get(p, []))) for p in names
        ),
        channels=tuple(channels),
        conda_specs=_json_list(custom.get(f"{_META}conda_specs"), source),
        pip_specs=_json_list(custom.get(f"{_META}pip_specs"), source),
        as_of=parse_as_of(as_of, source) if isinstance(as_of, str) else None,
        name=custom.get(f"{_META}name") if isinstance(custom.get(f"{_META}name"), str) else None,
        origin=source,
        format="conda-lock",
        notes=notes,
    ).checked()


def _json_list(value: Any, source: str) -> tuple[str, ...]:
    if not isinstance(value, str):
        return ()
    try:
        data = json.loads(value)
    except ValueError:
        return ()
    return tuple(v for v in data if isinstance(v, str)) if isinstance(data, list) else ()


def _decode_lock(text: str | bytes, source: str) -> str:
    """The text of a lock within MAX_LOCK_BYTES; a larger one is a LockError that says so
    (`_decode`'s own message is about environment.yml files of a few kilobytes)."""
    size = len(text)
    if isinstance(text, str) and size <= MAX_LOCK_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_LOCK_BYTES:
        raise LockError(
            f"too large (over {MAX_LOCK_BYTES:,} bytes, the limit for a lock file); check that "
            "this is the lock file you meant",
            source=source,
        )
    return _decode(text, source=source, max_bytes=MAX_LOCK_BYTES)


def _load_yaml(text: str | bytes, source: str) -> Any:
    """YAML as plain data: aliases and explicit tags refused, size bounded.

    PyYAML's safe loader (libyaml's C parser when it is there: a 4-platform lock is read in
    milliseconds, where a pure-Python parser takes a quarter of a second) builds only plain
    types; a first pass over the parser's events refuses aliases (no alias expansion, no
    "billion laughs") and any tag that is not one of YAML's own.
    """
    import yaml

    decoded = _decode_lock(text, source)
    _check_conflict_markers(decoded, source)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for event in yaml.parse(decoded, Loader=loader):
            if isinstance(event, yaml.AliasEvent):
                raise LockError("YAML aliases are not allowed in a lock file", source=source)
            tag = getattr(event, "tag", None)
            if tag and tag != "!" and not str(tag).startswith("tag:yaml.org,2002:"):
                raise LockError(f"YAML tag {tag!r} is not allowed here", source=source)
        return yaml.load(decoded, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        first = str(error).strip().splitlines()
        raise LockError(f"not valid YAML: {first[0] if first else error}", source=source) from error


# --------------------------------------------------------------------------------------------
# rattler/pixi lock format


def render_pixi_lock(lock: Lock, records: Mapping[str, Sequence[Any]]) -> str:
    """The lock in the rattler/pixi format (environment `default`), written by py-rattler.

    `records` maps each platform to its `RepoDataRecord`s (the format keeps whole records).
    """
    from rattler import LockChannel, LockFile, LockPlatform

    lock_file = LockFile(
        [
            LockPlatform(p.platform, virtual_packages=virtual_package_specs(p.platform))
            for p in lock.platforms
        ]
    )
    lock_file.set_channels("default", [LockChannel(redact_url(c)) for c in lock.channels])
    for entry in lock.platforms:
        platform = LockPlatform(entry.platform)
        for record in sorted(records.get(entry.platform, ()), key=lambda r: r.name.normalized):
            lock_file.add_conda_package("default", platform, _redacted_record(record))
        for pypi in entry.pypi:
            if pypi.url:
                _add_pypi(lock_file, platform, pypi)
    with tempfile.TemporaryDirectory(prefix="repro-lock-") as tmp:
        path = Path(tmp) / PIXI_LOCK_NAME
        lock_file.to_path(path)
        return path.read_text(encoding="utf-8")


def _redacted_record(record: Any) -> Any:
    """`record` with its URL and channel without credentials: a copy when they have any
    (an installed record or a solve over a channel with a token keeps it in both)."""
    from rattler import RepoDataRecord

    url, channel = str(record.url), record.channel
    clean_url = redact_url(url)
    clean_channel = redact_url(str(channel)) if channel else channel
    if clean_url == url and clean_channel == channel:
        return record
    return RepoDataRecord(record, record.file_name, clean_url, clean_channel)


def _add_pypi(lock_file: Any, platform: Any, pypi: LockedPypi) -> None:
    # py-rattler 0.28's add_pypi_package takes no hash: the URL carries it as a fragment,
    # which pip and uv both check when installing from that URL.
    location = redact_url(pypi.url or "")
    if pypi.sha256 and "#" not in location:
        location += f"#sha256={pypi.sha256}"
    lock_file.add_pypi_package("default", platform, pypi.name, pypi.version, location)


def parse_pixi_lock(
    text: str | bytes, *, source: str = PIXI_LOCK_NAME, environment: str = "default"
) -> Lock:
    """A lock from a `pixi.lock` (rattler's lock format), for one of its environments."""
    from rattler import LockFile

    decoded = _decode_lock(text, source)
    with tempfile.TemporaryDirectory(prefix="repro-lock-") as tmp:
        path = Path(tmp) / PIXI_LOCK_NAME
        path.write_text(decoded, encoding="utf-8")
        try:
            lock_file = LockFile.from_path(path)
        except Exception as error:  # rattler raises its own error types for every problem
            raise LockError(
                f"not a readable pixi.lock: {_first_line(error)}", source=source
            ) from None
    env = lock_file.environment(environment)
    if env is None:
        names = ", ".join(sorted(name for name, _ in lock_file.environments())) or "none"
        raise LockError(
            f"the lock has no environment {environment!r} (it has: {names}); choose one",
            source=source,
        )
    platforms = []
    for platform, packages in env.packages_by_platform().items():
        conda, pypi = [], []
        for package in packages:
            record = getattr(package, "repo_data_record", None)
            if record is not None:
                conda.append(locked_from_record(record(), redact=False))
                continue
            hashes = package.hashes
            sha = hashes.sha256.hex() if hashes is not None and hashes.sha256 else None
            location, _, fragment = str(package.location).partition("#")
            if sha is None and fragment.startswith("sha256="):
                sha = _check_hash(fragment[7:], _SHA256, "sha256", source, package.name)
            version = str(cast(Any, package).version)
            pypi.append(LockedPypi(package.name, version, location, sha))
        platforms.append(PlatformLock(str(platform.name), _sorted(conda), tuple(pypi)))
    return Lock(
        platforms=tuple(sorted(platforms, key=lambda p: p.platform)),
        channels=tuple(str(c) for c in env.channels()),
        origin=source,
        format="pixi",
    ).checked()


def _first_line(error: BaseException) -> str:
    lines = redact_text(str(error)).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def locked_from_record(record: Any, *, redact: bool = True) -> LockedConda:
    """A `LockedConda` from a py-rattler `RepoDataRecord` (or `PrefixRecord`).

    `redact` removes credentials from the URLs: for a lock being written. A lock being read
    keeps them, as `parse_conda_lock` does, so a restore can download with them; messages
    and plans show them redacted.
    """
    url = redact_url(str(record.url)) if redact else str(record.url)
    subdir = str(record.subdir)
    channel_url = record_channel(record, redact=redact)
    noarch = record.noarch
    return LockedConda(
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        subdir=subdir,
        url=url,
        channel=channel_url,
        sha256=record.sha256.hex() if record.sha256 else None,
        md5=record.md5.hex() if record.md5 else None,
        size=record.size,
        build_number=record.build_number,
        depends=tuple(record.depends),
        constrains=tuple(record.constrains),
        noarch=str(noarch) if noarch and not noarch.none else None,
        timestamp=int(record.timestamp.timestamp() * 1000) if record.timestamp else None,
    )


def record_channel(record: Any, *, redact: bool = True) -> str:
    """The channel URL of an installed or repodata record, without its subdir.

    From the package URL when it is `<channel>/<subdir>/<file>`, conda's own layout,
    whatever the `channel` field says: conda before 24 wrote it with the subdir
    (`https://conda.anaconda.org/conda-forge/linux-64`), newer conda a bare name
    (`conda-forge`). Else the `channel` field when it is a URL (its subdir cut), else the
    URL's folder.
    """
    clean = redact_url if redact else (lambda text: text)
    url = clean(str(record.url))
    subdir = str(record.subdir)
    head = url.rpartition("/")[0]
    folder, _, last = head.rpartition("/")
    if last == subdir and "://" in folder:
        return folder.rstrip("/")
    field = clean(str(record.channel or "")).rstrip("/")
    if "://" in field:
        return field[: -len(subdir) - 1] if field.endswith("/" + subdir) else field
    return _split_channel(url, subdir)


# --------------------------------------------------------------------------------------------
# reading any lock


def lock_format_of(path: str | os.PathLike[str]) -> str | None:
    """`conda-lock` or `pixi` for a file named like a lock, else None."""
    name = Path(path).name
    if name == PIXI_LOCK_NAME:
        return "pixi"
    if name in CONDA_LOCK_NAMES or name.endswith((".conda-lock.yml", ".conda-lock.yaml")):
        return "conda-lock"
    return None


def looks_like_lock(text: str) -> str | None:
    """`conda-lock` or `pixi` when the text is a lock file of that kind (by its top keys)."""
    head = text[:20_000]
    if re.search(r"^environments:", head, re.MULTILINE) and re.search(
        r"^version:\s*\d", head, re.MULTILINE
    ):
        return "pixi"
    if re.search(r"^package:", text, re.MULTILINE) and re.search(r"^metadata:", head, re.MULTILINE):
        return "conda-lock"
    return None


def parse_lock_text(
    text: str | bytes, *, source: str, kind: str | None = None, environment: str = "default"
) -> Lock:
    """A conda-lock.yml or pixi.lock, recognised by `kind` or by its content."""
    if kind is None:
        decoded = _decode_lock(text, source)
        kind = looks_like_lock(decoded)
        text = decoded
    if kind == "pixi":
        return parse_pixi_lock(text, source=source, environment=environment)
    if kind == "conda-lock":
        return parse_conda_lock(text, source=source)
    raise LockError("not a lock file (neither conda-lock.yml nor pixi.lock)", source=source)
