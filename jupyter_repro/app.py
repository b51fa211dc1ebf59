"""The server extension: configuration, services and handlers of jupyter-repro."""

from __future__ import annotations

import asyncio
import os
import sys
import weakref
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Enum, Float, List, TraitError, Unicode, default, validate

from ._version import __version__
from .environments.catalog import EnvironmentCatalog
from .environments.channels import redact_log
from .environments.discovery import EnvironmentDiscovery
from .environments.engines import CLI_NAMES, EMBEDDED_ENGINE, ENGINE_NAMES
from .handlers import default_handlers
from .jobs import JobManager, PackFailed, PackJobs, RestoreJobs, VerifyJobs
from .notebooks.policy import POLICY_KEYS, PolicyError, check_overrides
from .notebooks.savehook import StripOnSave
from .restore.errors import RestoreError
from .restore.limits import RestoreLimitsTraits
from .restore.service import RestoreOptions, RestoreService
from .specs.environment import SpecError
from .status import StatusService
from .verify.errors import VerifyError


class ReproApp(ExtensionApp, RestoreLimitsTraits):
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

    allowed_channels = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help=(
            "Channels a restored spec may use (names like 'conda-forge' or URLs). None (the "
            "default) allows any channel; a list refuses specs naming any other channel, which "
            "matters when untrusted users can ask this server to restore environments."
        ),
    )

    allow_pip_urls = Bool(
        False,
        config=True,
        help=(
            "Allow the pip section of a restored spec to install from URLs, VCS links or local "
            "paths and to pass pip options. Off by default: such entries run arbitrary code "
            "from places no channel policy covers."
        ),
    )

    allowed_prefix_roots = List(
        Unicode(),
        config=True,
        help=(
            "Folders inside which a restore request to this server may give a 'prefix' "
            "(an absolute path) for the new environment. conda's envs dirs (as conda finds "
            "them, when the request comes) are always allowed; the default, no folders, "
            "allows nothing else, so a client cannot make the server write an environment "
            "wherever the server's user may write. '~' is expanded; a relative path is taken "
            "relative to the server's root_dir. Prefixes are compared as real paths, so '..' "
            "and symlinks cannot lead out of these folders. A prefix elsewhere is refused "
            "with 400. The `jupyter repro restore` command is not limited by this setting: "
            "like conda, it takes any prefix."
        ),
    )

    pip_find_links = List(
        Unicode(),
        config=True,
        help=(
            "Folders or URLs passed to uv/pip as --find-links when installing a spec's pip "
            "section and when locking it, e.g. a local wheel folder for offline sites."
        ),
    )

    pip_index_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help=(
            "Package index uv/pip use for a spec's pip section on restore and lock "
            "(--index-url). None: the default (PyPI)."
        ),
    )

    pip_no_index = Bool(
        False,
        config=True,
        help=(
            "Install and lock a spec's pip section without any index (--no-index): only from "
            "pip_find_links. For machines without network access."
        ),
    )

    job_retention_seconds = Float(
        3600.0,
        config=True,
        help=(
            "How long a finished restore or verify job stays readable at repro/jobs/{id} "
            "before it is forgotten. Running jobs are always kept."
        ),
    )

    strip_on_save = Bool(
        None,
        allow_none=True,
        config=True,
        help=(
            "Strip outputs from notebooks when they are saved. None (the default) lets each "
            "notebook's strip policy decide (`on_save` in [tool.jupyter_repro.strip] of the "
            "project's pyproject.toml, true by default); true or false overrides it for every "
            "notebook. Stripping changes only the file on disk: the open notebook keeps its "
            "outputs."
        ),
    )

    strip_policy = Dict(
        config=True,
        help=(
            "Server-level strip policy, overriding [tool.jupyter_repro.strip] of the "
            "project's pyproject.toml key by key (a notebook's metadata.keep_output and its "
            "cells' keep_output metadata or tag still win). Keys: "
            + ", ".join(POLICY_KEYS)
            + "; e.g. {'keep_count': True, 'extra_keys': ['metadata.language_info'], "
            "'max_size': '10k'}. extra_keys are added to nbstripout's default extra keys. "
            "Checked when the server starts."
        ),
    )

    package_cache_dir = Unicode(
        "",
        config=True,
        help=(
            "One package cache for every user of the machine, e.g. '/srv/conda/pkgs' (create "
            "it once: install -d -m 1777 /srv/conda/pkgs; a missing folder is created with "
            "mode 1777). Each package is downloaded once for all users: every user extracts "
            "it into their own folder in the cache (<cache>/<user>/pkgs, which their "
            "environments hard-link to) from the archive a first user downloaded "
            "(<cache>/<user>/archives), checked against the user's own sha256. No file is "
            "writable by another user; a folder writable by others without the sticky bit is "
            "refused. '' (the default): rattler's own cache of each user."
        ),
    )

    @validate("package_cache_dir")
    def _validate_package_cache_dir(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if value.strip() and (
            "\x00" in value or not os.path.isabs(os.path.expanduser(value.strip()))
        ):
            raise TraitError(
                f"ReproApp.package_cache_dir: {value!r} is not an absolute folder; give a "
                "path such as '/srv/conda/pkgs'"
            )
        return value

    def package_cache_options(self) -> dict[str, Any]:
        """`package_cache_dir` as RestoreOptions fields: a configured cache is shared."""
        configured = self.package_cache_dir.strip()
        if not configured:
            return {}
        return {"cache_dir": Path(os.path.expanduser(configured)), "shared_package_cache": True}

    @validate("strip_policy")
    def _validate_strip_policy(self, proposal: Any) -> dict[str, Any]:
        try:
            check_overrides(proposal["value"])
        except PolicyError as error:
            raise TraitError(f"ReproApp.strip_policy: {error}") from None
        return proposal["value"]

    @validate("allowed_prefix_roots")
    def _validate_allowed_prefix_roots(self, proposal: Any) -> list[str]:
        for entry in proposal["value"]:
            if not entry.strip() or "\x00" in entry:
                raise TraitError(
                    f"ReproApp.allowed_prefix_roots: {entry!r} is not a folder; give paths "
                    "such as '/srv/envs' or '~/envs'"
                )
        return proposal["value"]

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
        # Restores log engines' errors, which can name a channel URL with its token.
        for logger in {self.log, self.serverapp.log} if self.serverapp else {self.log}:
            redact_log(logger)
        catalog = self._catalog()
        self.restore_service = RestoreService(
            RestoreOptions(
                engine=self.engine,
                cli_paths=dict(self.cli_paths),
                allowed_channels=(
                    None if self.allowed_channels is None else tuple(self.allowed_channels)
                ),
                allow_pip_urls=self.allow_pip_urls,
                pip_find_links=tuple(self.pip_find_links),
                pip_index_url=self.pip_index_url,
                pip_no_index=self.pip_no_index,
                allowed_prefix_roots=self._allowed_prefix_roots(),
                # Shared folders and per-user limits (RestoreLimitsTraits).
                **self.package_cache_options(),
                **self.restore_limits(),
            ),
            log=self.log,
            # The names the kernels have: a restore may not take one (see name_conflict).
            catalog=catalog,
        )
        self.job_manager = JobManager(
            retention_seconds=self.job_retention_seconds,
            expected_errors=(RestoreError, SpecError, VerifyError, PackFailed),
            log=self.log,
        )
        self.save_hook = StripOnSave(self._strip_overrides(), log=self.log)
        # By identity, weakly: managers may be unhashable (jupytext's are) and replaced.
        self._hooked_managers: list[weakref.ref[Any]] = []
        self._register_save_hook(getattr(self.serverapp, "contents_manager", None))
        self.settings[self.SETTINGS_KEY] = {
            "status": StatusService(self.engine, self.cli_paths),
            "catalog": catalog,
            "jobs": self.job_manager,
            "restore": RestoreJobs(self.restore_service, self.job_manager),
            "verify": VerifyJobs(self._verify_service, self.job_manager),
            # Archives are written into a private temporary folder, never the server root.
            "pack": PackJobs(self.job_manager, check_lock=self.restore_service.check_lock_urls),
            # Locks resolve pip sections with the same index settings as restores.
            "restore_options": self.restore_service.options,
            "strip_overrides": self.save_hook.overrides,
        }
        self.log.debug("jupyter-repro %s: engine %s", __version__, self.engine)

    def _verify_service(self) -> Any:
        """The verify service, made on the first verification (nbclient and the verify
        modules are not imported for a server that never verifies). It runs kernels through
        the server's own kernel spec manager: the kernels of JupyterLab's kernel picker,
        conda environments' included."""
        from .verify.service import VerifyService

        return VerifyService(
            kernel_spec_manager=getattr(self.serverapp, "kernel_spec_manager", None),
            restore_service=self.restore_service,
            log=self.log,
        )

    def _allowed_prefix_roots(self) -> tuple[Path, ...]:
        """`allowed_prefix_roots` as absolute paths: `~` expanded, relative ones taken in
        the server's root_dir (symlinks are resolved when a prefix is checked)."""
        root_dir = getattr(self.serverapp, "root_dir", None) or os.getcwd()
        roots = []
        for entry in self.allowed_prefix_roots:
            path = Path(os.path.expanduser(entry))
            roots.append(path if path.is_absolute() else Path(root_dir, path))
        return tuple(roots)

    def _strip_overrides(self) -> dict[str, Any]:
        """The server-level layer of the strip policy: strip_policy, then strip_on_save."""
        overrides = dict(self.strip_policy)
        if self.strip_on_save is not None:
            overrides["on_save"] = self.strip_on_save
        return overrides

    def _register_save_hook(self, manager: Any) -> None:
        """Register the strip-on-save hook with `manager`, once."""
        if manager is None or any(ref() is manager for ref in self._hooked_managers):
            return
        register = getattr(manager, "register_pre_save_hook", None)
        if register is None:
            self.log.warning(
                "jupyter-repro: the contents manager %s takes no pre-save hooks; notebooks "
                "are not stripped on save",
                type(manager).__name__,
            )
            return
        register(self.save_hook)
        self._hooked_managers.append(weakref.ref(manager))

    def _catalog(self) -> EnvironmentCatalog:
        """The kernel manager's catalog when it is ours (one cache for both), else a new one."""
        from .kernels.manager import CondaKernelSpecManager

        manager = getattr(self.serverapp, "kernel_spec_manager", None)
        shared = self.shared_dirs()
        if isinstance(manager, CondaKernelSpecManager):
            # The kernels list the shared environments too (a new catalog when they change).
            if list(manager.shared_envs_dirs) != list(map(str, shared)):
                manager.shared_envs_dirs = list(map(str, shared))
            return manager.catalog
        return EnvironmentCatalog(
            EnvironmentDiscovery(
                server_prefix=Path(sys.prefix), log=self.log, shared_envs_dirs=shared
            )
        )

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # Extensions loaded after this one may have replaced the contents manager (jupytext
        # does): every extension has loaded by now, so hook whichever manager serves saves.
        self._register_save_hook(serverapp.contents_manager)
        self._register_save_hook(serverapp.web_app.settings.get("contents_manager"))
        # A server killed mid-restore leaves a partial prefix; removing it scans envs dirs,
        # so it runs off the loop and the server answers requests meanwhile.
        self._cleanup = asyncio.get_running_loop().run_in_executor(None, self._cleanup_leftovers)

    def _cleanup_leftovers(self) -> None:
        try:
            removed = self.restore_service.cleanup_leftovers()
        except Exception:
            self.log.exception("jupyter-repro: removing leftovers of interrupted restores failed")
            return
        for prefix in removed:
            self.log.warning("jupyter-repro: removed %s, left by an interrupted restore", prefix)

    async def stop_extension(self) -> None:
        # Cancelled restores remove their partial prefixes; wait for that before exiting.
        await self.job_manager.shutdown()
        packs = self.settings.get(self.SETTINGS_KEY, {}).get("pack")
        if packs is not None:
            packs.close()

    def initialize_handlers(self) -> None:
        self.handlers.extend(default_handlers())
