"""conda's `@EXPLICIT` package lists (CEP 23): parse, check and write them.

An explicit list names every package by URL, optionally with its md5 or sha256: exact, but for
one platform only. Lists come from strangers too, so every line is checked and messages show
URLs with their tokens removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..environments.channels import redact_text, redact_url
from .environment import (
    MAX_SPEC_BYTES,
    SpecError,
    _check_conflict_markers,
    _decode,
    _quote,
    _shorten,
)


@dataclass(frozen=True)
class ExplicitEntry:
    """One line of an `@EXPLICIT` list: a package URL and its checksum."""

    url: str
    """Full package URL; tokens and credentials already removed by the caller."""
    md5: str | None = None
    sha256: str | None = None


_EXPLICIT_MARKER = "@EXPLICIT"
_PLATFORM_COMMENT = re.compile(r"#\s*platform:\s*(\S+)\s*")
_PACKAGE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s#]+(?:\.conda|\.tar\.bz2)")
_MD5 = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PLATFORM = re.compile(r"[a-z0-9]+(?:-[a-z0-9_]+)?")
# Anaconda tokens live in a `/t/<token>/` path segment; credentials in the URL's user part.


def render_explicit(
    entries: Sequence[ExplicitEntry], *, platform: str, comments: Sequence[str] = ()
) -> str:
    """An `@EXPLICIT` list as `conda list --explicit --md5` writes it; entries in order."""
    source = "explicit package list"
    if not _PLATFORM.fullmatch(platform):
        raise SpecError(
            f"invalid platform {_quote(platform)}; expected a conda subdir such as 'linux-64'",
            source=source,
            entry=platform,
        )
    lines = [
        "# This file may be used to create an environment using:",
        "# $ conda create --name <env> --file <this file>",
        f"# platform: {platform}",
    ]
    for comment in comments:
        lines.extend(f"# {line}" if line else "#" for line in comment.splitlines() or [""])
    lines.append(_EXPLICIT_MARKER)
    lines.extend(explicit_urls(entries))
    return "\n".join(lines) + "\n"


def _render_entry(entry: ExplicitEntry, source: str) -> str:
    # Refusing here rather than trusting the caller: a token in an exported file is a leak.
    # Checked first so that no message below can repeat one.
    if redact_url(entry.url) != entry.url:
        raise SpecError(
            "the URL carries a channel token or credentials; remove them before exporting",
            source=source,
            entry=redact_url(entry.url),
        )
    if not _PACKAGE_URL.fullmatch(entry.url):
        raise SpecError(
            f"{_quote(entry.url)} is not a package URL ending in .conda or .tar.bz2",
            source=source,
            entry=entry.url,
        )
    # md5 first: every conda version reads it, while `sha256:` needs conda 23.x or later.
    if entry.md5 is not None:
        if not _MD5.fullmatch(entry.md5):
            raise SpecError(
                f"invalid md5 {_quote(entry.md5)} for {entry.url}; expected 32 lowercase "
                "hex digits",
                source=source,
                entry=entry.url,
            )
        return f"{entry.url}#{entry.md5}"
    if entry.sha256 is not None:
        if not _SHA256.fullmatch(entry.sha256):
            raise SpecError(
                f"invalid sha256 {_quote(entry.sha256)} for {entry.url}; expected 64 lowercase hex "
                "digits",
                source=source,
                entry=entry.url,
            )
        return f"{entry.url}#sha256:{entry.sha256}"
    return entry.url


def parse_explicit(
    text: str | bytes, *, source: str = "explicit.txt", max_bytes: int = MAX_SPEC_BYTES
) -> tuple[str | None, list[ExplicitEntry]]:
    """The platform (from `# platform:`) and entries of an `@EXPLICIT` list.

    Like conda, every line that is not blank, a comment or the marker must be a package URL,
    optionally followed by `#<md5>`, `#sha256:<sha256>` or `#<sha256>`.
    """
    decoded = _decode(text, source=source, max_bytes=max_bytes)
    _check_conflict_markers(decoded, source)
    platform: str | None = None
    marker_seen = False
    entries: list[ExplicitEntry] = []
    for number, raw in enumerate(decoded.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            match = _PLATFORM_COMMENT.fullmatch(line)
            if match is not None and platform is None:
                platform = match.group(1)
            continue
        if line == _EXPLICIT_MARKER:
            marker_seen = True
            continue
        entries.append(_parse_explicit_line(line, number, source))
    if not marker_seen:
        raise SpecError(
            f"no {_EXPLICIT_MARKER} line: this is not an explicit package list "
            "(`conda list --explicit` writes one before the package URLs)",
            source=source,
        )
    return platform, entries


def _parse_explicit_line(line: str, number: int, source: str) -> ExplicitEntry:
    url, hashed, digest = line.partition("#")
    # The line may hold a channel token: messages show it redacted.
    shown = redact_text(line)
    if not _PACKAGE_URL.fullmatch(url):
        raise SpecError(
            f"{_quote(shown)} is not a package URL; expected "
            "'https://.../name-version-build.conda' (or .tar.bz2), optionally followed by "
            "'#<md5>' or '#sha256:<sha256>'",
            source=source,
            line=number,
            entry=shown,
        )
    if not hashed:
        return ExplicitEntry(url)
    if _MD5.fullmatch(digest):
        return ExplicitEntry(url, md5=digest)
    sha256 = digest.removeprefix("sha256:")
    if _SHA256.fullmatch(sha256):
        return ExplicitEntry(url, sha256=sha256)
    raise SpecError(
        f"invalid checksum '#{_shorten(digest)}'; expected '#' and 32 lowercase hex digits "
        "(md5) or '#sha256:' and 64 lowercase hex digits",
        source=source,
        line=number,
        entry=shown,
    )


def explicit_urls(entries: Iterable[ExplicitEntry]) -> list[str]:
    """Each entry checked and written as conda reads it: `url#md5`, `url#sha256:...` or `url`.

    The lines of `render_explicit`, also the form for `metadata.jupyter_repro.explicit`.
    """
    return [_render_entry(entry, "explicit package list") for entry in entries]
