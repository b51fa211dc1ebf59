"""One rattler download client per process.

Making a client loads the system's certificate store: about 4 ms here, which is a tenth of
installing 50 packages from a warm cache. rattler makes one for every `install` (and every
download loop) that is not given one, even when nothing is downloaded; a server restores many
times, so it makes one client and hands it to each.

The client is a plain one, as rattler makes by default (credentials in a URL still reach the
channel; no other middleware). reqwest reads the proxy and certificate variables, and the
certificate store, when a client is made: a change to one of the variables makes a new client;
a certificate added to the system's store (or to the file `SSL_CERT_FILE` names) is seen once
the server restarts.
"""

from __future__ import annotations

import os
import threading
from typing import Any

_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)

_lock = threading.Lock()
_made: tuple[tuple[str | None, ...], Any] | None = None


def _settings() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in _VARIABLES)


def _ready() -> Any | None:
    """The client when one for the current settings exists already (no blocking)."""
    made = _made
    if made is not None and made[0] == _settings():
        return made[1]
    return None


def _make() -> Any:
    """The process's client, made when there is none for the current settings (blocks for
    a few milliseconds then)."""
    global _made
    settings = _settings()
    with _lock:
        if _made is None or _made[0] != settings:
            from rattler.networking import Client

            _made = (settings, Client())
        return _made[1]


async def download_client() -> Any:
    """The process's rattler `Client`; made in a worker thread when there is none yet."""
    import asyncio

    return _ready() or await asyncio.to_thread(_make)
