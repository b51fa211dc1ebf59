"""Command lines that install pip packages into an environment: a locked pip section
(exact files, hash-checked, no resolution) or plain requirements.

Only argument lists and the requirements file they read are made here; the restore service
runs them with its own process runner (and its own, filtered environment). uv installs when
it is available (fast, and it needs no pip in the target); pip otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ..environments.prefix import Prefix
from ..specs import pip_lock
from ..specs.pip_lock import LockedPypi, PipIndex

__all__ = ["locked_requirements", "pip_install_command", "pip_requirements_command"]


def pip_install_command(
    python: Path,
    packages: Sequence[LockedPypi],
    *,
    index: PipIndex,
    requirements_file: Path,
) -> list[str]:
    """Write the locked `packages` to `requirements_file` and return the argv that installs
    exactly them for `python`.

    `--no-deps`: a lock is complete, so nothing may be resolved beyond it. With a sha256 for
    every package the install runs in hash-checking mode (`--require-hashes`), so a file
    that changed since locking fails the install instead of being installed.

    The argv may hold the index URL with its credentials: redact it before showing it.
    """
    hashed = bool(packages) and all(p.sha256 for p in packages)
    requirements_file.write_text(locked_requirements(packages), encoding="utf-8")
    uv = pip_lock.uv_binary()
    if uv is not None:
        argv = [uv, "pip", "install", "--python", str(python), "--no-config", "--no-deps"]
    else:
        argv = [*_pip(python), "install", "--no-deps", "--no-input", "--disable-pip-version-check"]
    argv += ["-r", str(requirements_file)]
    if hashed:
        argv.append("--require-hashes")
    return argv + _index_options(index)


def pip_requirements_command(
    python: Path, requirements_file: Path, *, index: PipIndex, use_uv: bool
) -> list[str]:
    """The argv that installs an unlocked requirements file (a pip section as written) for
    `python`, resolving dependencies: with uv when `use_uv` and uv is installed, else pip.

    `use_uv=False` is for sections that rely on pip itself (its configuration files, its
    `PIP_*` variables, options uv does not read).
    """
    uv = pip_lock.uv_binary() if use_uv else None
    if uv is not None:
        argv = [uv, "pip", "install", "--python", str(python), "--no-config"]
    else:
        argv = [*_pip(python), "install", "--no-input", "--disable-pip-version-check"]
    return [*argv, "-r", str(requirements_file), *_index_options(index)]


def locked_requirements(packages: Sequence[LockedPypi]) -> str:
    """A requirements file pinning `packages`: `name==version --hash=sha256:...`.

    Hashes appear only when every package has one: pip and uv turn on hash checking for the
    whole file as soon as one line has a hash, and then refuse every line without one. A
    package without a hash but with a URL (a VCS checkout, a local directory) is named by
    that URL, the only thing that pins what it was.
    """
    hashed = bool(packages) and all(p.sha256 for p in packages)
    lines = []
    for package in sorted(packages, key=lambda p: p.name):
        if hashed:
            lines.append(f"{package.name}=={package.version} --hash=sha256:{package.sha256}")
        elif package.url and not package.sha256:
            lines.append(f"{package.name} @ {package.url}")
        elif package.version:
            lines.append(f"{package.name}=={package.version}")
        else:
            lines.append(package.name)
    return "".join(line + "\n" for line in lines)


def _pip(python: Path) -> list[str]:
    """How to run pip for `python`: its own when the environment has one; else the server's,
    aimed at it (`--python`, pip 22.3 and later), so no pip is added to the environment."""
    sites = Prefix(python.parent.parent).site_packages_dirs()
    if any((site / "pip" / "__init__.py").is_file() for site in sites):
        return [str(python), "-m", "pip"]
    return [sys.executable, "-m", "pip", "--python", str(python)]


def _index_options(index: PipIndex) -> list[str]:
    """Index options both pip and uv understand, in the same spelling."""
    options: list[str] = []
    if index.no_index:
        options.append("--no-index")
    if index.index_url and not index.no_index:
        options += ["--index-url", index.index_url]
    for link in index.find_links:
        options += ["--find-links", link]
    return options
