"""The server extension: configuration, services and handlers of jupyter-repro."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Enum, Unicode, default

from ._version import __version__
from .environments.catalog import EnvironmentCatalog
from .environments.discovery import EnvironmentDiscovery
from .environments.engines import CLI_NAMES, EMBEDDED_ENGINE, ENGINE_NAMES
from .handlers import default_handlers
from .status import StatusService


class ReproApp(ExtensionApp):
    """jupyter-repro's server extension.

    Configure it as `ReproApp` in any Jupyter config file, e.g. in `jupyter_server_config.py`::

        c.ReproApp.engine = "micromamba"
        c.ReproApp.cli_paths = {"micromamba": "/opt/micromamba/bin/micromamba"}
    """

    name = "jupyter_repro"
    app_name = "jupyter-repro"
    version = __version__
    description = "Reproducible notebooks: conda environments as kernels, export and restore."

    # Settings key under which handlers find the services; one instance per server.
    SETTINGS_KEY = "jupyter_repro"

    engine = Enum(
        list(ENGINE_NAMES),
        default_value=EMBEDDED_ENGINE,
        config=True,
        help=(
            "Engine that solves and installs environments on restore. 'rattler' is the embedded "
            "engine (py-rattler), which works on machines without conda; 'conda', 'mamba' and "
            "'micromamba' run that CLI (found on PATH, through CONDA_EXE/MAMBA_EXE, or set in "
            "cli_paths)."
        ),
    )

    cli_paths = Dict(
        key_trait=Enum(list(CLI_NAMES)),
        value_trait=Unicode(),
        config=True,
        help=(
            "Explicit paths of conda-family executables, by name, e.g. "
            "{'conda': '/opt/conda/bin/conda'}. They take precedence over PATH. A path that is "
            "not an executable file is ignored."
        ),
    )

    manage_kernelspecs = Bool(
        True,
        config=True,
        help=(
            "Serve every discovered environment as a kernel by making the server use "
            "jupyter_repro's CondaKernelSpecManager. A kernel_spec_manager_class configured "
            "explicitly for the server always wins (and a log line says so)."
        ),
    )

    @default("cli_paths")
    def _default_cli_paths(self) -> dict[str, str]:
        return {}

    def _link_jupyter_server_extension(self, serverapp: Any) -> None:
        super()._link_jupyter_server_extension(serverapp)
        # Linking runs before the server builds its kernel spec manager, so the class can
        # still be chosen here; the user's explicit choice is never overridden.
        if not self.manage_kernelspecs:
            self.log.info("jupyter-repro: kernels of environments disabled by configuration")
            return
        configured = serverapp.config.get("ServerApp", {})
        if "kernel_spec_manager_class" in configured:
            self.log.info(
                "jupyter-repro: keeping the configured kernel_spec_manager_class %s; "
                "environments are not listed as kernels",
                configured["kernel_spec_manager_class"],
            )
            return
        from .kernels.manager import CondaKernelSpecManager

        serverapp.kernel_spec_manager_class = CondaKernelSpecManager

    def initialize_settings(self) -> None:
        self.settings[self.SETTINGS_KEY] = {
            "status": StatusService(self.engine, self.cli_paths),
            "catalog": self._catalog(),
        }
        self.log.debug("jupyter-repro %s: engine %s", __version__, self.engine)

    def _catalog(self) -> EnvironmentCatalog:
        """The kernel manager's catalog when it is ours (one cache for both), else a new one."""
        from .kernels.manager import CondaKernelSpecManager

        manager = getattr(self.serverapp, "kernel_spec_manager", None)
        if isinstance(manager, CondaKernelSpecManager):
            return manager.catalog
        return EnvironmentCatalog(
            EnvironmentDiscovery(server_prefix=Path(sys.prefix), log=self.log)
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(default_handlers())
