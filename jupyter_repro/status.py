"""What `repro/status` reports: the version, the engine in use and the conda-family CLIs found."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._version import __version__
from .environments.engines import EngineInfo, engine_info, find_clis
from .specs.export import host_platform


class StatusService:
    """Assembles the server's status; plain class, usable without a server."""

    def __init__(
        self,
        engine: str,
        configured_clis: Mapping[str, str] | None = None,
        clis_finder: Callable[[Mapping[str, str] | None], dict[str, str | None]] = find_clis,
    ) -> None:
        self._engine: EngineInfo = engine_info(engine)
        self._configured_clis = dict(configured_clis or {})
        self._find_clis = clis_finder

    def status(self) -> dict[str, Any]:
        """The status document. Looks at PATH each time, so a CLI installed later shows up."""
        return {
            "version": __version__,
            "engine": self._engine.to_json(),
            "clis": self._find_clis(self._configured_clis),
            # The conda platform of this machine: what a lock made here locks exactly.
            "platform": host_platform(),
        }


def describe(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The status document as (label, value) rows for people, in the order they matter."""
    engine = document["engine"]
    name = engine["name"]
    version = f" {engine['version']}" if engine.get("version") else ""
    if engine.get("embedded"):
        how = "embedded: needs no conda"
    elif document["clis"].get(name):
        how = f"runs {document['clis'][name]}"
    else:
        how = f"{name} not found: install it, put it on PATH, or use the embedded engine"
    rows = [
        ("jupyter-repro", str(document["version"])),
        ("engine", f"{name}{version} ({how})"),
    ]
    if document.get("platform"):
        rows.append(("platform", str(document["platform"])))
    rows += [(name, path or "not found") for name, path in document["clis"].items()]
    return rows
