"""Kernel and environment names, compatible with nb_conda_kernels.

Notebooks saved with nb_conda_kernels carry names like `conda-env-myenv-py` in their metadata;
producing the same names for the same environments is what lets those notebooks open here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_INVALID = re.compile(r"[^a-zA-Z0-9._\-]")
# Folder names that say nothing about a project: name such an environment after its parent.
_ANONYMOUS_PREFIX_NAMES = frozenset({".venv", "venv", ".env", "env", ".conda"})
# Names of the base environment that older notebooks carry.
BASE_ALIASES = ("root", "base")


def clean_kernel_name(name: str) -> str:
    """A valid kernel name: accents dropped, characters outside [a-zA-Z0-9._-] made `_`."""
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        decomposed = unicodedata.normalize("NFKD", name)
        name = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _INVALID.sub("_", name)


def kernel_key(kernel_dir_name: str) -> str:
    """Last part of a kernel name: `py` for python2/python3, `r` for ir, else the folder."""
    lowered = kernel_dir_name.lower()
    if lowered in ("python2", "python3"):
        return "py"
    if lowered == "ir":
        return "r"
    return lowered


def kernel_name(environment_name: str, is_base: bool, kernel_dir_name: str) -> str:
    """`conda-<base>-<key>` for the base environment, `conda-env-<env>-<key>` otherwise."""
    middle = environment_name if is_base else f"env-{environment_name}"
    return clean_kernel_name(f"conda-{middle}-{kernel_key(kernel_dir_name)}")


@dataclass(frozen=True)
class NamingInput:
    """What naming needs to know of one environment."""

    prefix: Path
    kind: str  # "conda" | "pixi" | "venv"


def environment_names(
    environments: Iterable[NamingInput],
    base_prefix: Path | None,
    base_name: str = "base",
    default_envs_dir: Path | None = None,
) -> dict[Path, str]:
    """Unique display names of environments, in the order given (which decides clashes).

    The base environment is `base_name`. An environment in `<root>/envs/` keeps its folder
    name when `<root>` is the base installation; in another root's `envs/`, or when the name
    is taken, it becomes `<root folder>-<name>` (so `~/.conda/envs/foo` is `.conda-foo`).
    A pixi environment is `<project>-<env>`. A prefix folder named like `.venv` or `env` is
    named after its parent. Remaining clashes get `-2`, `-3`, ...

    Without a base installation (a JupyterHub image with no conda: only this server's
    restores), `default_envs_dir` (the user's first envs dir, where restores by name go)
    takes the place of `<base>/envs`: `~/.conda/envs/foo` is `foo`, as the user named it.
    """
    base_envs_dir = base_prefix / "envs" if base_prefix is not None else default_envs_dir
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for env in environments:
        parent, folder = env.prefix.parent, env.prefix.name
        if base_prefix is not None and env.prefix == base_prefix:
            name = base_name
        elif env.kind == "pixi" and parent.name == "envs" and parent.parent.name == ".pixi":
            name = f"{parent.parent.parent.name}-{folder}"
        elif parent.name == "envs" and (parent != base_envs_dir or folder in taken):
            name = f"{parent.parent.name}-{folder}"
        elif folder in _ANONYMOUS_PREFIX_NAMES:
            name = parent.name or folder
        else:
            name = folder
        if name in taken:
            stem, count = name, 2
            while f"{stem}-{count}" in taken:
                count += 1
            name = f"{stem}-{count}"
        taken.add(name)
        names[env.prefix] = name
    return names
