"""The environment of a notebook: its kernel's prefix, the spec exported from it, embedding.

A notebook names its kernel in `metadata.kernelspec.name`; a kernel spec manager (the
server's, or a new CondaKernelSpecManager for the CLI) resolves that name to a kernelspec,
whose `conda_env_path` metadata (our kernels) or interpreter (`argv[0]`, any other
kernelspec) gives the environment's prefix.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from ..specs.environment import EnvironmentSpec
from ..specs.explicit import explicit_urls
from ..specs.export import (
    EXPORT_MODES,
    ExportError,
    ExportMode,
    explicit_list,
    export_environment,
    platform_of,
)
from .embedded import (
    METADATA_KEY,
    NotebookError,
    embedded_metadata,
    kept_keys,
    kernel_name,
    read_embedded,
    read_notebook,
)
from .nbjson import dumps_json

ExportFormat = Literal["yaml", "explicit", "json"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)

MEDIA_TYPES: dict[ExportFormat, str] = {
    "yaml": "text/yaml; charset=utf-8",
    "explicit": "text/plain; charset=utf-8",
    "json": "application/json",
}
"""The Content-Type of each export format."""


class KernelNotResolved(LookupError):
    """The notebook's kernel does not lead to an environment on this machine."""


class NoKernelName(KernelNotResolved):
    """The notebook names no kernel (no `metadata.kernelspec.name`)."""


class KernelNotFound(KernelNotResolved):
    """The notebook's kernel is not installed here, or its environment cannot be found."""


@dataclass(frozen=True)
class KernelEnvironment:
    """Where the environment of a notebook's kernel lives."""

    kernel: str
    prefix: Path
    name: str | None
    """The environment's name when the kernelspec says it (our kernels)."""


def interpreter_prefix(argv0: str) -> Path:
    """The environment of a kernel interpreter: the folder holding its `bin/` (`Scripts/`)."""
    # jupyter_client runs these names with its own interpreter (format_kernel_cmd).
    version = sys.version_info
    if argv0 in ("python", f"python{version[0]}", f"python{version[0]}.{version[1]}"):
        argv0 = sys.executable
    found = argv0 if os.path.isabs(argv0) else shutil.which(argv0)
    if found is None:
        raise KernelNotFound(f"the kernel's interpreter {argv0!r} is not on PATH")
    # Not resolved: a venv's bin/python links to the base interpreter, outside the venv.
    folder = Path(os.path.abspath(found)).parent
    return folder.parent if folder.name in ("bin", "Scripts") else folder


def kernel_environment(
    notebook: dict[str, Any], kernel_specs: Any, where: str
) -> KernelEnvironment:
    """The environment of the parsed `notebook`'s kernel, resolved through `kernel_specs`
    (a jupyter_client KernelSpecManager); `where` names the notebook in messages."""
    from jupyter_client.kernelspec import NoSuchKernel

    name = kernel_name(notebook)
    if name is None:
        raise NoKernelName(f"{where} names no kernel (no metadata.kernelspec.name)")
    try:
        spec = kernel_specs.get_kernel_spec(name)
    except NoSuchKernel:
        raise KernelNotFound(
            f"the kernel of {where}, {name!r}, is not installed here (no environment or "
            "kernelspec by that name)"
        ) from None
    env_path = spec.metadata.get("conda_env_path")
    if isinstance(env_path, str) and env_path:
        env_name = spec.metadata.get("conda_env_name")
        return KernelEnvironment(
            name, Path(env_path), env_name if isinstance(env_name, str) else None
        )
    if not spec.argv:
        raise KernelNotFound(f"the kernelspec {name!r} has no argv to find its environment by")
    return KernelEnvironment(name, interpreter_prefix(spec.argv[0]), None)


def check_export_options(mode: str, fmt: str) -> None:
    """Raise ValueError (message lists the valid values) for an unknown mode or format."""
    if mode not in EXPORT_MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(EXPORT_MODES)}")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")


def export_text(prefix: Path, mode: ExportMode, fmt: ExportFormat, name: str | None = None) -> str:
    """The environment at `prefix` as text in `fmt` (`explicit` ignores `mode`: it is exact)."""
    if fmt == "explicit":
        return explicit_list(prefix).render()
    spec = export_environment(prefix, mode, name)
    return spec.to_json() if fmt == "json" else spec.to_yaml()


def spec_text(spec: EnvironmentSpec, fmt: ExportFormat) -> str:
    """An already exported spec (e.g. embedded in a notebook) as yaml or json text."""
    if fmt == "explicit":
        raise ExportError(
            "the kernel is not installed here and the notebook's embedded spec is an "
            "environment.yml, not an explicit list; ask for format yaml or json"
        )
    return spec.to_json() if fmt == "json" else spec.to_yaml()


@dataclass(frozen=True)
class NotebookExport:
    """What writing a notebook's environment beside or into it needs."""

    spec: EnvironmentSpec
    mode: ExportMode
    platform: str
    explicit: dict[str, list[str]] | None


def export_for_notebook(
    environment: KernelEnvironment, mode: ExportMode, *, explicit: bool = False
) -> NotebookExport:
    """Export the kernel's environment for writing beside or embedding into the notebook."""
    spec = export_environment(environment.prefix, mode, environment.name)
    listed = None
    if explicit:
        found = explicit_list(environment.prefix)
        listed = {found.platform: explicit_urls(found.entries)}
    return NotebookExport(spec, mode, platform_of(environment.prefix), listed)


def with_embedded(notebook: dict[str, Any], export: NotebookExport) -> dict[str, Any]:
    """`notebook` with `metadata.jupyter_repro` set to `export`; every other key untouched."""
    metadata = notebook.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise NotebookError("not a notebook: its 'metadata' is not an object")
    metadata[METADATA_KEY] = {**kept_keys(metadata.get(METADATA_KEY)), **embedded_value(export)}
    return notebook


def embedded_value(export: NotebookExport) -> dict[str, Any]:
    """The value of `metadata.jupyter_repro` that embeds `export`."""
    return embedded_metadata(
        export.spec, mode=export.mode, platform=export.platform, explicit=export.explicit
    )


def environment_of(notebook_path: Path, kernel_specs: Any, where: str) -> KernelEnvironment:
    """The existing environment of the notebook's kernel; KernelNotFound when it is gone."""
    environment = kernel_environment(read_notebook(notebook_path), kernel_specs, where)
    if not environment.prefix.is_dir():
        raise KernelNotFound(
            f"the environment of the kernel {environment.kernel!r}, {environment.prefix}, "
            "does not exist"
        )
    return environment


def notebook_spec_text(
    notebook_path: Path, kernel_specs: Any, mode: ExportMode, fmt: ExportFormat, where: str
) -> tuple[str, str]:
    """The spec of the notebook's kernel environment as text, and where it came from:
    `environment` (exported now) or `embedded` (the kernel is missing here, the notebook
    carries a spec; `mode` does not apply to it)."""
    try:
        environment = environment_of(notebook_path, kernel_specs, where)
    except KernelNotResolved:
        embedded = read_embedded(notebook_path)
        if embedded is None:
            raise
        return spec_text(embedded, fmt), "embedded"
    return export_text(environment.prefix, mode, fmt, environment.name), "environment"


def embedded_notebook_text(notebook_path: Path, export: NotebookExport) -> str:
    """The notebook's file text with `export` embedded, byte-identical elsewhere for a
    notebook nbformat wrote."""
    return dumps_json(with_embedded(read_notebook(notebook_path), export))
