"""The named list of environments that kernels, the REST API and the CLI all share.

Discovery says where environments are; the catalog gives each its nb_conda_kernels-style
name and reads its kernel folders, rebuilding only when discovery or an environment's own
`conda-meta` (or kernels folder) changed.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from .channels import short_channel_name
from .discovery import Discovered, Environment, EnvironmentDiscovery
from .naming import NamingInput, environment_names, kernel_name
from .prefix import KernelDir, Prefix


class EnvironmentNotFound(LookupError):
    """No discovered environment has that name."""

    def __init__(self, name: str, known: list[str]) -> None:
        hint = f"; known environments: {', '.join(known[:20])}" if known else ""
        super().__init__(f"no environment named {name!r}{hint}")
        self.name = name


@dataclass(frozen=True)
class CatalogEntry:
    """One environment with its unique name and its kernel folders."""

    name: str
    environment: Environment
    is_base: bool
    kernel_dirs: tuple[KernelDir, ...]

    def kernel_name(self, kernel_dir: KernelDir) -> str:
        """The kernel name of one of this environment's kernel folders."""
        return kernel_name(self.name, self.is_base, kernel_dir.name)

    @property
    def kernel_names(self) -> list[str]:
        return [self.kernel_name(k) for k in self.kernel_dirs]


def _change_marker(env: Environment) -> int | None:
    """mtime of what changes when packages (and so kernels) are added to an environment."""
    marker = env.prefix / ("share/jupyter/kernels" if env.kind == "venv" else "conda-meta")
    try:
        return marker.stat().st_mtime_ns
    except OSError:
        return None


class EnvironmentCatalog:
    """Named environments, cached; plain class usable without a server."""

    def __init__(
        self,
        discovery: EnvironmentDiscovery,
        base_name: str = "base",
        env_filter: str | None = None,
    ) -> None:
        self.discovery = discovery
        self.base_name = base_name
        self._filter = re.compile(env_filter) if env_filter else None
        self._built_from: tuple[Discovered, tuple[int | None, ...]] | None = None
        self._entries: tuple[CatalogEntry, ...] = ()
        # REST handlers read the catalog from executor threads while the kernel spec manager
        # reads it on the event loop: one scan at a time, and never a half-built cache.
        self._lock = threading.Lock()
        self._summaries: tuple[tuple[CatalogEntry, ...], list[dict[str, Any]]] | None = None

    def entries(self) -> tuple[CatalogEntry, ...]:
        """Every environment, base first; costs a few stat calls when nothing changed."""
        with self._lock:
            return self._entries_locked()

    def _entries_locked(self) -> tuple[CatalogEntry, ...]:
        discovered = self.discovery.discover()
        environments = [
            e
            for e in discovered.environments
            if not (self._filter and self._filter.search(str(e.prefix)))
        ]
        markers = tuple(_change_marker(e) for e in environments)
        built = self._built_from
        if built is not None and built[0] is discovered and built[1] == markers:
            return self._entries
        names = environment_names(
            (NamingInput(e.prefix, e.kind) for e in environments),
            discovered.base_prefix,
            self.base_name,
            default_envs_dir=discovered.envs_dirs[0] if discovered.envs_dirs else None,
        )
        self._entries = tuple(
            CatalogEntry(
                name=names[e.prefix],
                environment=e,
                is_base=e.prefix == discovered.base_prefix,
                kernel_dirs=tuple(Prefix(e.prefix).kernel_dirs()),
            )
            for e in environments
        )
        self._built_from = (discovered, markers)
        return self._entries

    def get(self, name: str) -> CatalogEntry:
        """The environment called `name`; raises EnvironmentNotFound."""
        entries = self.entries()
        for entry in entries:
            if entry.name == name:
                return entry
        raise EnvironmentNotFound(name, [e.name for e in entries])

    def summaries(self) -> list[dict[str, Any]]:
        """The listing of every environment, rebuilt only when the entries change.

        Listing is the API's busiest read (the sidebar polls it); its per-environment reads
        (Python version, permissions) are done once per change, not once per request.
        """
        entries = self.entries()
        with self._lock:
            cached = self._summaries
            if cached is not None and cached[0] is entries:
                return cached[1]
        listing = [self.summary(e) for e in entries]
        with self._lock:
            self._summaries = (entries, listing)
        return listing

    def summary(self, entry: CatalogEntry) -> dict[str, Any]:
        """The JSON of one environment in a listing."""
        env = entry.environment
        return {
            "name": entry.name,
            "prefix": str(env.prefix),
            "kind": env.kind,
            "python_version": Prefix(env.prefix).python_version(),
            "kernels": entry.kernel_names,
            "is_base": entry.is_base,
            "is_server_env": env.is_server_env,
            # A shared (administrator's) environment is read-only to us even where the file
            # system would let this process write (a server running as root).
            "writable": not env.shared and os.access(env.prefix, os.W_OK),
            "shared": env.shared,
        }

    def details(self, entry: CatalogEntry) -> dict[str, Any]:
        """One environment with its conda and pip packages (read from files, nothing run)."""
        prefix = Prefix(entry.environment.prefix)
        document = self.summary(entry)
        document["conda_packages"] = [
            # Channels as users write them; a `/t/<token>/` never leaves the server.
            {
                "name": p.name,
                "version": p.version,
                "build": p.build,
                "channel": short_channel_name(p.channel) if p.channel else None,
            }
            for p in prefix.conda_packages()
        ]
        document["pip_packages"] = [
            {"name": p.name, "version": p.version} for p in prefix.pip_packages()
        ]
        return document
