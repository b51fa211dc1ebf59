"""The notebooks of a capsule, written out after its environment was restored.

A capsule carries the notebooks it was packed with. Once the environment is restored they
are written into a folder (the CLI's `--notebooks-dir`, or beside the capsule on the server)
pointing at the new environment's kernel (`metadata.kernelspec`), and never over an existing
file: `analysis.ipynb` taken gives `analysis-1.ipynb`, then `analysis-2.ipynb`, ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..environments.catalog import EnvironmentCatalog
from ..environments.naming import kernel_key
from ..notebooks.nbjson import dumps_json
from .errors import RestoreError

MAX_NUMBERED = 1000


@dataclass(frozen=True)
class CapsuleNotebook:
    """One notebook of a capsule: its file name (no folder) and its bytes as packed."""

    name: str
    data: bytes


@dataclass(frozen=True)
class RestoredKernel:
    """The kernel of a restored environment, as a notebook's `metadata.kernelspec` names it."""

    name: str
    display_name: str
    language: str

    def to_metadata(self) -> dict[str, str]:
        return {"name": self.name, "display_name": self.display_name, "language": self.language}


def notebook_file_name(member: str) -> str:
    """The file name a capsule's `notebooks/<name>.ipynb` is written under: its last part,
    refused when it is not a plain, visible `.ipynb` name."""
    name = member.replace("\\", "/").rsplit("/", 1)[-1]
    if (
        not name.endswith(".ipynb")
        or name == ".ipynb"
        or name.startswith(".")
        or "\x00" in name
        or name in (".", "..")
    ):
        raise RestoreError(f"the capsule's notebook {member!r} is not a plain .ipynb file name")
    return name


def restored_kernel(
    prefix: Path, catalog: EnvironmentCatalog, kernel_spec_manager: Any = None
) -> RestoredKernel | None:
    """The kernel the catalog gives the environment at `prefix` (its Python kernel when it
    has one, else its first); None when the environment has no kernel or is not listed.

    The name is the catalog's (`conda-env-<env>-py`, nb_conda_kernels' rules); the display
    name is the kernel spec manager's when it knows the kernel (its `name_format`), else
    the kernel.json's.
    """
    wanted = os.path.realpath(prefix)
    for entry in catalog.entries():
        if os.path.realpath(entry.environment.prefix) != wanted:
            continue
        if not entry.kernel_dirs:
            return None
        dirs = sorted(entry.kernel_dirs, key=lambda k: (kernel_key(k.name) != "py", k.name))
        chosen = dirs[0]
        name = entry.kernel_name(chosen)
        display = str(chosen.spec.get("display_name") or chosen.name)
        language = str(chosen.spec.get("language") or "")
        if kernel_spec_manager is not None:
            try:
                spec = kernel_spec_manager.get_kernel_spec(name)
            except Exception:
                spec = None
            if spec is not None:
                display = str(getattr(spec, "display_name", "") or display)
                language = str(getattr(spec, "language", "") or language)
        return RestoredKernel(name, display, language)
    return None


def with_kernel(data: bytes, kernel: RestoredKernel | None) -> bytes:
    """The notebook `data` with `metadata.kernelspec` set to `kernel` (unchanged without
    one, or when it is not a JSON object: written as packed)."""
    if kernel is None:
        return data
    try:
        notebook = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
        return data
    if not isinstance(notebook, dict):
        return data
    metadata = notebook.get("metadata")
    if not isinstance(metadata, dict):
        metadata = notebook["metadata"] = {}
    metadata["kernelspec"] = kernel.to_metadata()
    try:
        return dumps_json(notebook).encode("utf-8")
    except (ValueError, RecursionError):  # a lone surrogate (`"\ud800"`) cannot be UTF-8
        return data


def numbered_names(name: str) -> list[str]:
    """`name`, then `stem-1.ipynb`, `stem-2.ipynb`, ... (the candidates, in order)."""
    stem = name[: -len(".ipynb")] if name.endswith(".ipynb") else name
    suffix = name[len(stem) :]
    return [name, *(f"{stem}-{n}{suffix}" for n in range(1, MAX_NUMBERED))]


def free_name(name: str, exists: Callable[[str], bool]) -> str:
    """The first of `numbered_names(name)` for which `exists` is false."""
    for candidate in numbered_names(name):
        if not exists(candidate):
            return candidate
    raise RestoreError(f"no free file name like {name!r}; clean up the folder")


def write_notebooks(
    folder: Path, notebooks: Sequence[CapsuleNotebook], kernel: RestoredKernel | None
) -> list[Path]:
    """Write `notebooks` into `folder` (created if missing), each under the first free name:
    created exclusively, so an existing file (or one made meanwhile) is never replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for notebook in notebooks:
        data = with_kernel(notebook.data, kernel)
        for candidate in numbered_names(notebook_file_name(notebook.name)):
            path = folder / candidate
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            try:
                with os.fdopen(fd, "wb") as stream:
                    stream.write(data)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            written.append(path)
            break
        else:
            raise RestoreError(f"no free file name like {notebook.name!r} in {folder}")
    return written
