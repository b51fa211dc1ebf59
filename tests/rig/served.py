"""A rig channel folder served over HTTP on loopback: what a conda channel on the network is
to a restore. It counts every GET (how many times an archive was downloaded), can hold a
package's download until the test releases it (a restore that sits in its download phase,
for progress, cancel and stop), and serves `/t/<token>/...` as the same files (a private
channel's URL, as conda's token channels have)."""

from __future__ import annotations

import http.server
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_ARCHIVES = (".conda", ".tar.bz2")


class Gate:
    """Holds the download of one package until the test releases it."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.released = threading.Event()

    def release(self) -> None:
        self.released.set()


class ServedChannel:
    """`path` served at `url` (a context manager, or `start()`/`stop()`)."""

    def __init__(self, path: Path, gated: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self.counts: Counter[str] = Counter()
        """Requests per path (the query left out, `/t/<token>` kept)."""
        self.gates = {name: Gate() for name in gated}
        self._lock = threading.Lock()
        channel = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(channel.path), **kwargs)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def translate_path(self, path: str) -> str:
                if path.startswith("/t/"):
                    path = "/" + path[3:].partition("/")[2]
                return super().translate_path(path)

            def do_GET(self) -> None:
                request_path = self.path.split("?", 1)[0]
                with channel._lock:
                    channel.counts[request_path] += 1
                    gates = dict(channel.gates)
                filename = request_path.rsplit("/", 1)[-1]
                for name, gate in gates.items():
                    if filename.startswith(f"{name}-") and filename.endswith(_ARCHIVES):
                        gate.requested.set()
                        gate.released.wait(timeout=180)
                super().do_GET()

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up (a cancelled download, a stopped server)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def token_url(self, token: str) -> str:
        """The channel's URL with a `/t/<token>` segment: a private channel's."""
        return f"{self.url}/t/{token}"

    def gate(self, name: str) -> Gate:
        """The gate of `name`'s downloads: the one made at the start, else a new one."""
        with self._lock:
            return self.gates.setdefault(name, Gate())

    def hold(self, name: str) -> Gate:
        """A new gate for `name`'s downloads, in place of any earlier (released) one."""
        with self._lock:
            self.gates[name] = Gate()
            return self.gates[name]

    def archive_downloads(self) -> dict[str, int]:
        """Requests per package archive (`<subdir>/<file>` -> count)."""
        with self._lock:
            return {
                path.lstrip("/"): n for path, n in self.counts.items() if path.endswith(_ARCHIVES)
            }

    def downloads(self, package: str) -> dict[str, int]:
        """How often each archive of `package` was fetched (by file name)."""
        return {
            path.rsplit("/", 1)[-1]: n
            for path, n in self.archive_downloads().items()
            if path.rsplit("/", 1)[-1].startswith(f"{package}-")
        }

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            for gate in self.gates.values():
                gate.release()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ServedChannel:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
