"""Offline conda test rig: a local channel of tiny packages and throw-away installations.

- :mod:`tests.rig.channel`: package constants, :func:`build_channel`, :class:`RigChannel`.
- :mod:`tests.rig.installation`: :class:`CondaInstallation`, conda history writing/reading,
  :func:`isolated_environ`.
- :mod:`tests.rig.fixtures`: pytest fixtures (``from tests.rig.fixtures import *``).

Importing this package does not import rattler; the functions that need it import it.
"""

from tests.rig._aio import exit_without_finalizing, run_sync
from tests.rig.channel import (
    PackageDef,
    RigChannel,
    build_channel,
    default_packages,
    generic_package,
)
from tests.rig.installation import (
    CONDA_VERSION,
    ROOT_SPECS,
    STANDARD_ENVS,
    CondaInstallation,
    EnvPlan,
    HistoryEntry,
    conda_spec_str,
    dist_str,
    isolated_environ,
    populate_standard_envs,
    read_history,
    requested_specs,
    write_history_entry,
)

__all__ = [
    "CONDA_VERSION",
    "ROOT_SPECS",
    "STANDARD_ENVS",
    "CondaInstallation",
    "EnvPlan",
    "HistoryEntry",
    "PackageDef",
    "RigChannel",
    "build_channel",
    "conda_spec_str",
    "default_packages",
    "dist_str",
    "exit_without_finalizing",
    "generic_package",
    "isolated_environ",
    "populate_standard_envs",
    "read_history",
    "requested_specs",
    "run_sync",
    "write_history_entry",
]
