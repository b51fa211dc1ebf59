"""Which engines can build environments here: the embedded py-rattler, and conda-family CLIs.

Finding a CLI only looks at files (PATH entries, `CONDA_EXE`, `MAMBA_EXE`, configured paths);
it never runs the executable, so it is cheap and safe to call from a status request.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata

EMBEDDED_ENGINE = "rattler"
CLI_NAMES: tuple[str, ...] = ("conda", "mamba", "micromamba")
ENGINE_NAMES: tuple[str, ...] = (EMBEDDED_ENGINE, *CLI_NAMES)

# Variables set by conda's and micromamba's shell hooks; they name the executable even
# when it is not on PATH (e.g. `conda activate` puts only the env's bin/ on PATH).
_EXE_VARIABLES: dict[str, tuple[str, ...]] = {
    "conda": ("CONDA_EXE",),
    "mamba": (),
    "micromamba": ("MAMBA_EXE",),
}


@dataclass(frozen=True)
class EngineInfo:
    """The engine that builds environments, as reported by `repro/status`."""

    name: str
    version: str | None
    embedded: bool

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "embedded": self.embedded}


@cache
def embedded_engine_version() -> str | None:
    """Version of the installed py-rattler, read from its metadata (not by importing it)."""
    try:
        return metadata.version("py-rattler")
    except metadata.PackageNotFoundError:
        return None


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_cli(
    name: str,
    configured: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """Absolute path of the CLI `name`, or None.

    Order: a path the administrator configured, the variables the CLI's own shell hook sets,
    then PATH. A configured path that is not an executable file is ignored rather than trusted.
    """
    if name not in CLI_NAMES:
        raise ValueError(
            f"unknown conda-family CLI {name!r}; expected one of {', '.join(CLI_NAMES)}"
        )
    env = os.environ if environ is None else environ
    candidates: list[str] = []
    if configured and configured.get(name):
        candidates.append(configured[name])
    candidates.extend(env[var] for var in _EXE_VARIABLES[name] if env.get(var))
    for candidate in candidates:
        expanded = os.path.abspath(os.path.expanduser(candidate))
        if os.path.basename(expanded).startswith(name) and _is_executable(expanded):
            return expanded
    found = shutil.which(name, path=env.get("PATH", os.defpath))
    return os.path.abspath(found) if found else None


def find_clis(
    configured: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str | None]:
    """Every conda-family CLI by name, with its path or None."""
    return {name: find_cli(name, configured, environ) for name in CLI_NAMES}


def engine_info(name: str) -> EngineInfo:
    """Describe the engine `name`; a CLI's version is not probed, as that means running it."""
    if name == EMBEDDED_ENGINE:
        return EngineInfo(name=name, version=embedded_engine_version(), embedded=True)
    if name in CLI_NAMES:
        return EngineInfo(name=name, version=None, embedded=False)
    raise ValueError(f"unknown engine {name!r}; expected one of {', '.join(ENGINE_NAMES)}")
