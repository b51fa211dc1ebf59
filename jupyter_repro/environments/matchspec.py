"""Conda match specs, read and matched as conda reads them: by rattler's `MatchSpec`.

Every place that reads a conda dependency (drift, export, history, restore's channels) goes
through here, so `python=3.10` means `3.10.*` everywhere, as it does for conda and rattler,
and an installed record satisfies a spec exactly when rattler's own matching says so. There
is no spec grammar of this project's own.

py-rattler is imported on first use: the modules that import this one are loaded at every
server start, and only some requests read specs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

# rattler gives a named channel (`conda-forge`) this base URL; anything else was a URL or a
# path as written.
_DEFAULT_CHANNEL_ALIAS = "https://conda.anaconda.org/"


class InvalidMatchSpec(ValueError):
    """Text that conda would not read as a match spec; the message is rattler's reason."""


class InstalledRecord(Protocol):
    """What matching needs of an installed package (a `CondaRecord` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def build(self) -> str: ...

    @property
    def subdir(self) -> str | None: ...


@dataclass(frozen=True)
class CondaSpec:
    """One conda match spec: its text as written and what rattler reads in it."""

    text: str
    name: str
    """The package name, normalized (lower case) as conda compares names."""
    version: str | None
    """The version constraint as rattler reads it (`=3.10` is `3.10.*`); None for any."""
    build: str | None
    """The build string or glob (`*_cp313t`); None for any."""
    channel: str | None
    """The channel it names (`chan::pkg`, `[channel=...]`): a name as written, or a URL."""
    subdir: str | None
    url: str | None = None
    """The package URL it names (`pkg[url=...]`, or a spec that is a package URL)."""
    match_spec: Any = field(default=None, repr=False, compare=False)
    """rattler's `MatchSpec`."""

    @property
    def constraint(self) -> str:
        """What the spec asks of the package beyond its name, as written: `=3.10`,
        `>=1.20,<2`, `[build=*_cp313t]`; empty for a bare name."""
        text = self.text.strip()
        # The name follows the last `:` before any bracket (`chan::name`, `ns:name`).
        head = text.split("[", 1)[0]
        start = head.rfind(":") + 1
        rest = text[start:].lstrip()
        if rest.lower().startswith(self.name):
            rest = rest[len(self.name) :]
        return rest.strip()

    def matches(self, record: InstalledRecord) -> bool:
        """Whether the installed `record` satisfies this spec (rattler's matching)."""
        if record.name.lower() != self.name:
            return False
        if self.version is None and self.build is None and self.subdir is None:
            return True
        package = _package_record(record.name, record.version, record.build, record.subdir)
        if package is None:
            # A version rattler cannot read (a damaged record): only an exact text pin can
            # still be judged.
            return _text_pin_matches(self, record)
        return bool(self.match_spec.matches(package))


def parse_match_spec(text: str) -> CondaSpec:
    """`text` read as conda reads a match spec; raises `InvalidMatchSpec` otherwise."""
    found = _parse(text)
    if isinstance(found, str):
        raise InvalidMatchSpec(found)
    return found


def spec_name(text: str) -> str | None:
    """The package name a match spec asks for, lower-cased; None if it is not a spec."""
    found = _parse(text)
    return None if isinstance(found, str) else found.name


@lru_cache(maxsize=8192)
def _parse(text: str) -> CondaSpec | str:
    """The spec, or rattler's reason for refusing it (cached: records repeat their
    dependencies, and an export reads hundreds of them)."""
    from rattler import MatchSpec
    from rattler.exceptions import InvalidMatchSpecError

    try:
        spec = MatchSpec(text.strip())
    except InvalidMatchSpecError as error:
        lines = str(error).strip().splitlines()
        return lines[0] if lines else "not a match spec"
    name = spec.name
    normalized = getattr(name, "normalized", None) or str(name)
    version = spec.version
    return CondaSpec(
        text=text,
        name=str(normalized).lower(),
        version=str(version) if version is not None else None,
        build=str(spec.build) if spec.build is not None else None,
        channel=_channel_as_written(spec.channel),
        subdir=spec.subdir,
        url=_url_key(spec),
        match_spec=spec,
    )


def _url_key(spec: Any) -> str | None:
    # py-rattler 0.28 does not expose a spec's `url` key; its canonical form writes it as
    # `url="..."` (quotes inside a URL are percent-encoded, so the first `"` ends it).
    # A key follows `[` or `,`; text inside another key's quoted value does not count.
    canonical = str(spec.to_canonical_string())
    bracket = canonical.find("[")
    inside = False
    for index in range(max(bracket, 0), len(canonical)):
        char = canonical[index]
        if char == '"':
            inside = not inside
        elif not inside and char in "[," and canonical.startswith('url="', index + 1):
            start = index + 1 + len('url="')
            end = canonical.find('"', start)
            return canonical[start:end] if end > start else None
    return None


def _channel_as_written(channel: Any) -> str | None:
    if channel is None:
        return None
    base = str(channel.base_url)
    name = channel.name
    if name and base == f"{_DEFAULT_CHANNEL_ALIAS}{name}/":
        return str(name)
    return base.rstrip("/")


@lru_cache(maxsize=4096)
def _package_record(name: str, version: str, build: str, subdir: str | None) -> Any:
    from rattler import BuildString, PackageRecord

    try:
        return PackageRecord(name, version, BuildString(build), 0, subdir or "noarch")
    except Exception:  # rattler raises several types for a version or name it cannot read
        return None


def _text_pin_matches(spec: CondaSpec, record: InstalledRecord) -> bool:
    version_ok = spec.version is None or spec.version.lstrip("=") == record.version
    build_ok = spec.build is None or spec.build == record.build
    return version_ok and build_ok
