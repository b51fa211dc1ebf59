"""CondaKernelSpecManager: one kernel per kernel.json of every discovered environment.

A drop-in for nb_conda_kernels' manager (same class name, config section, kernel names and
metadata), without its `conda info --json` subprocess and its 60-second cache: environments
come from `EnvironmentDiscovery`, which only stats its inputs when nothing changed, so a new
environment is listed on the next request.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from traitlets import Bool, List, Unicode, observe

from ..environments.catalog import CatalogEntry, EnvironmentCatalog
from ..environments.discovery import Environment, EnvironmentDiscovery
from ..environments.naming import BASE_ALIASES, kernel_key
from ..environments.prefix import KernelDir
from .launch import launcher_argv


@dataclass(frozen=True)
class CondaKernel:
    """A kernel of a discovered environment, as listed."""

    name: str
    spec: KernelSpec
    environment: Environment
    listed: bool  # False: resolvable by name but hidden from listings (a duplicate)


class CondaKernelSpecManager(KernelSpecManager):
    """Kernel specs for every conda, mamba, micromamba and pixi environment and venv found."""

    env_filter = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Regular expression; environments whose prefix path matches it are not listed.",
    )
    name_format = Unicode(
        "{language} [conda env:{environment}]",
        config=True,
        help=(
            "Display name of a conda kernel. Fields: {language} (or {0}: 'Python' for Python "
            "kernels, else the kernel's own display name), {environment} (or {1}: the "
            "environment's name), {kernel} (the kernel folder's name), {display_name} (the "
            "kernel.json display name), {conda_kernel} (the generated kernel name)."
        ),
    )
    conda_only = Bool(
        False,
        config=True,
        help="List only kernels of discovered environments, not the regular kernelspecs.",
    )
    base_name = Unicode(
        "base",
        config=True,
        help=(
            "Name of the base environment in kernel and display names (`conda-base-py`). "
            "`conda-root-py` always resolves to the base environment's Python kernel too."
        ),
    )
    kernelspec_path = Unicode(
        None,
        allow_none=True,
        config=True,
        help=(
            "As in nb_conda_kernels: also write real kernelspecs of the environments' kernels "
            "whenever they change, so other clients see them. '' = system-wide, '--user', "
            "'--sys-prefix', or a prefix path (written to PREFIX/share/jupyter/kernels). None "
            "(default) writes nothing; `jupyter repro kernels sync` does the same on demand."
        ),
    )
    enable_debugger = Bool(
        None,
        allow_none=True,
        config=True,
        help=(
            "When set, overrides `metadata.debugger` of every conda kernel (True: JupyterLab "
            "offers its debugger). None keeps what each kernel.json says."
        ),
    )
    search_paths = List(
        Unicode(),
        config=True,
        help=(
            "Folders in which to look for pixi environments (`.pixi/envs/*`) and plain venvs "
            "(`pyvenv.cfg`), in the folder itself and its direct children."
        ),
    )

    shared_envs_dirs = List(
        Unicode(),
        help=(
            "Folders of administrators' environments, listed as kernels and marked shared. "
            "Set from ReproApp.shared_envs_dirs by the server extension (configure it there)."
        ),
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._catalog = self._make_catalog()
        self._built_from: tuple[CatalogEntry, ...] | None = None
        self._kernels: dict[str, CondaKernel] = {}

    # -- configuration -------------------------------------------------------------------

    def _make_catalog(self) -> EnvironmentCatalog:
        discovery = EnvironmentDiscovery(
            server_prefix=Path(sys.prefix),
            search_paths=[Path(p).expanduser() for p in self.search_paths],
            log=self.log,
            shared_envs_dirs=list(self.shared_envs_dirs),
        )
        return EnvironmentCatalog(discovery, base_name=self.base_name, env_filter=self.env_filter)

    @observe(
        "search_paths",
        "env_filter",
        "base_name",
        "name_format",
        "enable_debugger",
        "shared_envs_dirs",
    )
    def _configuration_changed(self, change: dict[str, Any]) -> None:
        self._catalog = self._make_catalog()
        self._built_from = None

    @property
    def catalog(self) -> EnvironmentCatalog:
        """The named environments behind these kernels (shared with the REST API)."""
        return self._catalog

    # -- building ------------------------------------------------------------------------

    def conda_kernels(self) -> dict[str, CondaKernel]:
        """Every kernel of the discovered environments by name (listed and hidden)."""
        entries = self._catalog.entries()
        if self._built_from is entries:
            return self._kernels
        kernels: dict[str, CondaKernel] = {}
        for entry in entries:
            env = entry.environment
            for kernel_dir in entry.kernel_dirs:
                name = entry.kernel_name(kernel_dir)
                if name in kernels:  # folders differing only in case, e.g. Python3/python3
                    self.log.debug("jupyter-repro: duplicate kernel name %s skipped", name)
                    continue
                spec = self._spec(env, entry.name, entry.is_base, kernel_dir, name)
                # The server's own Python kernel is already listed as the native `python3`.
                duplicate = env.is_server_env and kernel_key(kernel_dir.name) == "py"
                kernels[name] = CondaKernel(name, spec, env, listed=not duplicate)
        self._kernels = kernels
        self._built_from = entries
        if self.kernelspec_path is not None:
            self._write_kernelspecs()
        return kernels

    def _write_kernelspecs(self) -> None:
        from .sync import kernels_dir, sync_kernelspecs

        path = self.kernelspec_path or ""
        destination = kernels_dir(
            user=path == "--user",
            sys_prefix=path == "--sys-prefix",
            prefix=None if path in ("", "--user", "--sys-prefix") else path,
        )
        try:
            report = sync_kernelspecs(self, destination)
        except OSError as error:
            self.log.warning(
                "jupyter-repro: cannot write kernelspecs to %s: %s", destination, error
            )
            return
        if report.written or report.removed:
            self.log.info(
                "jupyter-repro: kernelspecs in %s: %d written, %d removed",
                destination,
                len(report.written),
                len(report.removed),
            )

    def _spec(
        self, env: Environment, env_name: str, is_base: bool, kernel_dir: KernelDir, name: str
    ) -> KernelSpec:
        raw = kernel_dir.spec
        display_name = str(raw.get("display_name") or kernel_dir.name)
        language = "Python" if display_name.startswith("Python") else display_name
        formatted = self.name_format.format(
            language,
            env_name,
            language=language,
            environment=env_name,
            kernel=kernel_dir.name,
            display_name=display_name,
            conda_kernel=name,
        )
        if env.is_server_env:
            formatted += " *"
        argv = [str(a) for a in raw["argv"]]
        if not env.is_server_env:
            # Activation, then exec of the kernel's own argv, whose `python` now resolves
            # through the environment's PATH (jupyter_client would otherwise swap a leading
            # `python` for the server's interpreter).
            argv = launcher_argv(str(env.prefix), argv)
        metadata = dict(raw.get("metadata") or {})
        metadata.update(
            conda_env_name=env_name,
            conda_env_path=str(env.prefix),
            conda_language=str(raw.get("language") or ""),
            conda_raw_kernel_name=kernel_dir.name,
            conda_is_base_environment=is_base,
            conda_is_currently_running=env.is_server_env,
        )
        if self.enable_debugger is not None:
            metadata["debugger"] = self.enable_debugger
        env_vars = raw.get("env") if isinstance(raw.get("env"), dict) else {}
        return KernelSpec(
            argv=argv,
            display_name=formatted,
            language=str(raw.get("language") or ""),
            interrupt_mode=raw.get("interrupt_mode", "signal"),
            env={str(k): str(v) for k, v in (env_vars or {}).items()},
            metadata=metadata,
            resource_dir=str(kernel_dir.path),
        )

    # -- KernelSpecManager API -------------------------------------------------------------

    def _allowed(self, name: str) -> bool:
        allowed = self.allowed_kernelspecs
        return not allowed or name in allowed

    def _regular_duplicates(
        self, regular: dict[str, str], kernels: dict[str, CondaKernel]
    ) -> set[str]:
        """Regular kernelspecs whose interpreter lives in a listed environment (not the server's).

        `python -m ipykernel install --name foo` run inside environment foo writes such a spec;
        listing it beside `conda-env-foo-py` would show the same environment twice.
        """
        prefixes = {
            k.environment.prefix
            for k in kernels.values()
            if k.listed and not k.environment.is_server_env
        }
        duplicates: set[str] = set()
        if not prefixes:
            return duplicates
        for name, resource_dir in regular.items():
            if name in kernels:  # replaced by ours anyway (e.g. written by `kernels sync`)
                continue
            try:
                spec = KernelSpec.from_resource_dir(resource_dir)
            except (OSError, ValueError):
                continue
            executable = spec.argv[0] if spec.argv else ""
            if not os.path.isabs(executable):
                continue
            # Resolve the bin/ folder, not the interpreter: an environment's python is often a
            # symlink to a shared interpreter elsewhere.
            env_prefix = Path(os.path.realpath(os.path.dirname(executable))).parent
            if env_prefix in prefixes:
                duplicates.add(name)
        return duplicates

    def find_kernel_specs(self) -> dict[str, str]:
        """Kernel names and resource dirs: the regular kernelspecs, then the environments'."""
        return self._listing(self.conda_kernels())

    def _listing(self, kernels: dict[str, CondaKernel]) -> dict[str, str]:
        regular: dict[str, str] = {} if self.conda_only else super().find_kernel_specs()
        for duplicate in self._regular_duplicates(regular, kernels):
            regular.pop(duplicate, None)
        for name, kernel in kernels.items():
            if kernel.listed and self._allowed(name):
                regular[name] = kernel.spec.resource_dir
        return regular

    def _resolve_alias(self, kernel_name: str, kernels: dict[str, CondaKernel]) -> str:
        for alias in BASE_ALIASES:
            prefix = f"conda-{alias}-"
            if kernel_name.startswith(prefix):
                candidate = f"conda-{self.base_name}-{kernel_name[len(prefix) :]}"
                if candidate in kernels:
                    return candidate
        return kernel_name

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        """An environment's kernel by name (aliases included), else a regular kernelspec."""
        kernels = self.conda_kernels()
        resolved = self._resolve_alias(kernel_name, kernels)
        kernel = kernels.get(resolved)
        if kernel is not None and (self._allowed(resolved) or self._allowed(kernel_name)):
            return kernel.spec
        if self.conda_only:
            raise NoSuchKernel(kernel_name)
        return super().get_kernel_spec(kernel_name)

    def get_all_specs(self) -> dict[str, dict[str, Any]]:
        """Every listed spec as `{name: {"resource_dir", "spec"}}` (conda kernels: no re-read)."""
        # One validation of the catalog per listing: this is every /api/kernelspecs request.
        kernels = self.conda_kernels()
        result: dict[str, dict[str, Any]] = {}
        for name, resource_dir in self._listing(kernels).items():
            try:
                kernel = kernels.get(name)
                spec = kernel.spec if kernel is not None else super().get_kernel_spec(name)
            except (NoSuchKernel, OSError, ValueError):
                self.log.warning("jupyter-repro: kernelspec %r could not be loaded", name)
                continue
            result[name] = {"resource_dir": resource_dir, "spec": spec.to_dict()}
        return result
