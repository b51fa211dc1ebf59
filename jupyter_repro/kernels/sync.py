"""Real kernelspecs for the environments' kernels, for clients that do not use our manager.

papermill, nbconvert, VS Code and `jupyter console` read kernelspec folders. `sync` writes one
folder per kernel of every discovered environment, under the same name the server uses, whose
argv goes through the activating launcher. Folders it wrote carry a marker in their metadata,
so a later sync removes the stale ones it wrote, and never anything else.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_core.paths import SYSTEM_JUPYTER_PATH, jupyter_data_dir

from .._version import __version__
from .manager import CondaKernelSpecManager

MARKER_KEY = "jupyter_repro_synced"
# Files of a kernel folder worth copying beside kernel.json (logos, kernel.js, ...).
_RESOURCE_SUFFIXES = (".png", ".svg", ".js", ".css")


def kernels_dir(*, user: bool = False, sys_prefix: bool = False, prefix: str | None = None) -> Path:
    """The kernelspec folder Jupyter reads for the chosen scope (system-wide by default)."""
    if prefix:
        return Path(prefix).expanduser().resolve() / "share" / "jupyter" / "kernels"
    if sys_prefix:
        return Path(sys.prefix) / "share" / "jupyter" / "kernels"
    if user:
        return Path(jupyter_data_dir()) / "kernels"
    return Path(SYSTEM_JUPYTER_PATH[0]) / "kernels"


@dataclass
class SyncReport:
    """What one sync did."""

    destination: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _was_synced(kernel_json: Path) -> bool:
    try:
        spec = json.loads(kernel_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    metadata = spec.get("metadata") if isinstance(spec, dict) else None
    return isinstance(metadata, dict) and bool(metadata.get(MARKER_KEY))


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".kernel-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def synced_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The kernel.json to write: the served spec plus the marker that says we wrote it."""
    written = {k: v for k, v in spec.items() if k != "resource_dir"}
    metadata = dict(written.get("metadata") or {})
    metadata[MARKER_KEY] = __version__
    written["metadata"] = metadata
    return written


def sync_kernelspecs(manager: CondaKernelSpecManager, destination: Path) -> SyncReport:
    """Write a kernelspec for every listed environment kernel; remove stale ones we wrote."""
    report = SyncReport(destination)
    destination.mkdir(parents=True, exist_ok=True)
    kernels = {name: k for name, k in manager.conda_kernels().items() if k.listed}
    for name, kernel in sorted(kernels.items()):
        folder = destination / name
        kernel_json = folder / "kernel.json"
        if folder.exists() and not _was_synced(kernel_json):
            # A kernelspec someone else wrote under the same name: leave it alone.
            manager.log.warning(
                "jupyter-repro: %s exists and was not written by sync; kept", folder
            )
            continue
        text = json.dumps(synced_spec(kernel.spec.to_dict()), indent=1, sort_keys=True) + "\n"
        folder.mkdir(exist_ok=True)
        if kernel_json.exists() and kernel_json.read_text(encoding="utf-8") == text:
            report.unchanged.append(name)
            continue
        resources = Path(kernel.spec.resource_dir)
        for resource in resources.iterdir() if resources.is_dir() else ():
            if resource.suffix in _RESOURCE_SUFFIXES and resource.is_file():
                shutil.copyfile(resource, folder / resource.name)
        _write_atomically(kernel_json, text)
        report.written.append(name)
    for folder in sorted(destination.iterdir()):
        if folder.name not in kernels and _was_synced(folder / "kernel.json"):
            shutil.rmtree(folder)
            report.removed.append(folder.name)
    return report
