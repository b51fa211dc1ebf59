"""Channel URLs as users write them, and URLs made safe to show: no tokens, no credentials.

A conda record names its channel by URL (`https://conda.anaconda.org/conda-forge/linux-64`,
or `file:///srv/channel/` as rattler writes it); an `environment.yml` names it the way a
user types it (`conda-forge`, `defaults`). Anaconda's authenticated channels put the token
in the path (`.../t/<token>/...`) and private indexes put credentials in the URL's user
part; neither may reach an exported file, so every URL we write goes through
`redact_url`.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote, urlsplit, urlunsplit

DEFAULTS = "defaults"
"""The name conda gives Anaconda's main channels as a group."""

# Anaconda's hosted channels: `<host>/<name>[/label/<label>]` is known to conda as `<name>`.
_ANACONDA_ORG_HOSTS = frozenset({"conda.anaconda.org", "conda.anaconda.com"})
# The hosts and paths of conda's `default_channels`; repo.continuum.io is their old name.
_DEFAULTS_HOSTS = frozenset({"repo.anaconda.com", "repo.continuum.io"})
_DEFAULTS_PATHS = frozenset({"pkgs/main", "pkgs/r", "pkgs/msys2"})

# conda's platform subdirs (`linux-64`, `osx-arm64`, `win-64`, `emscripten-wasm32`, ...)
# plus `noarch`: a channel URL recorded with one of them at its end names the same channel.
_SUBDIR = re.compile(
    r"noarch|(?:linux|osx|win|zos|freebsd|emscripten|wasi)-[a-z0-9_]+", re.IGNORECASE
)
# `/t/<token>` anywhere in a path: how anaconda.org and Anaconda's repositories take tokens.
_TOKEN_SEGMENT = re.compile(r"/t/[^/?#]+(?=[/?#]|$)")
# The user an ssh URL logs in as (`ssh://git@github.com/...`) is not a secret.
_PUBLIC_USERS = frozenset({"git"})
# Query parameters that carry credentials: `?token=`, `?access_token=`, `?api_key=`, signed
# URLs' `sig`/`signature`, and AWS's pre-signed `X-Amz-*` (matched in `_is_secret_parameter`).
_SECRET_WORDS = ("token", "secret", "password", "passwd", "key", "sig", "auth", "credential")
# A URL inside free text: a scheme, `://`, then everything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# What conda writes in `channel` when it does not know where a package came from.
_UNKNOWN_CHANNELS = frozenset({"", "<unknown>", "@"})


def redact_url(url: str) -> str:
    """`url` without `/t/<token>` segments, credentials in its user part, or secrets in its
    query: the one redaction of every URL that is shown, logged, returned or exported.

    `https://user:secret@host/x` and `https://ghp_xyz@host/x` (a token as user name) both
    become `https://host/x`; `ssh://git@host/x` keeps its `git` user; `?token=abc&v=1`
    becomes `?v=1` (query parameters named like a credential are dropped).
    """
    url = _TOKEN_SEGMENT.sub("", url)
    if "://" not in url or ("@" not in url and "?" not in url):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        # Not a URL after all (e.g. an unbalanced `[` in a host): drop the text before the
        # last `@` of the authority and the whole query rather than risk showing a secret.
        scheme, _, rest = url.partition("://")
        authority, slash, path = rest.partition("/")
        return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path.partition('?')[0]}"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if userinfo not in _PUBLIC_USERS:
            netloc = hostport
    query = parts.query
    if query:
        kept = [p for p in query.split("&") if not _is_secret_parameter(p.partition("=")[0])]
        query = "&".join(kept)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


class RedactingLogFilter(logging.Filter):
    """Redacts URLs in every record it passes (message, arguments, traceback), so that a
    channel token in an error from a library never reaches the server log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


def redact_log(logger: logging.Logger) -> None:
    """Install `RedactingLogFilter` on `logger` and its handlers (records of child loggers
    reach the handlers without passing the logger's own filters), once."""
    for target in (logger, *logger.handlers):
        if not any(isinstance(f, RedactingLogFilter) for f in target.filters):
            target.addFilter(RedactingLogFilter())


def _is_secret_parameter(name: str) -> bool:
    lowered = unquote(name).lower()
    return lowered.startswith("x-amz-") or any(word in lowered for word in _SECRET_WORDS)


def redact_text(text: str) -> str:
    """`text` (a message, a log line, an error from a library) with every URL in it
    redacted by `redact_url`."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def is_subdir(name: str) -> bool:
    """Whether `name` is a conda platform subdir (`linux-64`, `osx-arm64`, `noarch`, ...)."""
    return bool(_SUBDIR.fullmatch(name))


def _strip_subdir(path: str, subdir: str | None) -> str:
    """`path` without a trailing slash and without a trailing platform subdir segment."""
    path = path.rstrip("/")
    head, sep, last = path.rpartition("/")
    if sep and (last == subdir or _SUBDIR.fullmatch(last)):
        return head.rstrip("/")
    return path


def channel_url(channel: str, subdir: str | None = None) -> str:
    """The channel of a record's `channel` field: redacted, no subdir, no trailing slash."""
    return _strip_subdir(redact_url(channel.strip()), subdir)


def channel_of_package_url(url: str) -> str | None:
    """The channel of a package URL (`<channel>/<subdir>/<file>`), redacted; None if the
    URL does not end in a subdir and a package file name."""
    base, sep, filename = redact_url(url.strip()).rpartition("/")
    if not sep or not filename.endswith((".conda", ".tar.bz2")):
        return None
    channel, sep, subdir = base.rpartition("/")
    if not sep or not _SUBDIR.fullmatch(subdir):
        return None
    return channel.rstrip("/") or None


def short_channel_name(channel: str, subdir: str | None = None) -> str:
    """What a user writes in `channels:` for a record's channel.

    `https://conda.anaconda.org/conda-forge[/linux-64]` -> `conda-forge` (any anaconda.org
    channel, labels kept: `conda-forge/label/dev`); Anaconda's `pkgs/main`, `pkgs/r` and
    `pkgs/msys2` -> `defaults`; any other URL is kept, redacted, without subdir and trailing
    slash; a name (`bioconda`) is kept as it is.
    """
    url = channel_url(channel, subdir)
    if "://" not in url:
        return DEFAULTS if url in _DEFAULTS_PATHS else url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    host = (parts.hostname or "").lower()
    path = parts.path.strip("/")
    if host in _ANACONDA_ORG_HOSTS and path:
        return path
    if host in _DEFAULTS_HOSTS and path in _DEFAULTS_PATHS:
        return DEFAULTS
    return url


def record_channel_name(
    channel: str | None, url: str | None, subdir: str | None = None
) -> str | None:
    """The short channel name of a record, from its `channel`, else from its package `url`."""
    if channel and channel.strip() not in _UNKNOWN_CHANNELS:
        return short_channel_name(channel, subdir)
    if url:
        base = channel_of_package_url(url)
        if base is not None:
            return short_channel_name(base, subdir)
    return None
