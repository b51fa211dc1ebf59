"""Per-user limits an administrator sets on restores: sizes, free space, shared folders.

`ReproApp.max_user_environments` and `ReproApp.min_free_space` are checked before a restore
creates anything; `ReproApp.shared_envs_dirs` (and unwritable system envs dirs) are folders
no restore writes into. The checks themselves live in `RestoreService.resolve_target`; this
module holds what they and the configuration share.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from traitlets import HasTraits, Int, List, TraitError, Unicode, Union, validate

_UNITS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}
# `5G`, `5 GB`, `5GiB`, `1.5g`, `500M`, `4096`, `100B`: binary units, as `df -h` prints them.
_SIZE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(?:([KMGTP])(?:I?B)?|B)?", re.IGNORECASE)


class InvalidSize(ValueError):
    """A size that is neither a byte count nor a number with K, M, G, T or P."""


def parse_size(value: int | str) -> int:
    """Bytes from a byte count or a size like `"5G"`, `"500M"`, `"5GB"`, `"5GiB"`, `"1.5T"`
    (binary units: K = 1024 bytes, ..., P = 1024**5; `B`, `iB` and case are optional)."""
    if isinstance(value, bool):
        raise InvalidSize(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise InvalidSize(f"{value} is negative")
        return value
    text = value.strip()
    match = _SIZE.fullmatch(text)
    if match is None:
        raise InvalidSize(
            f"{value!r} is not a size; give bytes (5368709120) or a number with K, M, G or T "
            "(binary units: '5G', '500M', '5GiB')"
        )
    number, unit = match.groups()
    return int(float(number) * 1024 ** _UNITS[(unit or "").upper()])


def format_size(size: int) -> str:
    """`5.0 GiB`, `512.0 MiB`, `100 bytes`."""
    if size < 1024:
        return f"{size} bytes"
    value, unit = float(size) / 1024, "KiB"
    for larger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.1f} {unit}"


class RestoreLimitsTraits(HasTraits):
    """`ReproApp`'s settings for shared folders and per-user limits.

    A mixin of `ReproApp`, and of the light reader the command line uses
    (`configured_limits`), so both read the same settings with the same checks.
    """

    shared_envs_dirs = List(
        Unicode(),
        config=True,
        help=(
            "Folders of environments an administrator provides for every user (each "
            "subfolder with conda-meta/ is one environment), e.g. ['/srv/conda/envs']. They "
            "are listed as kernels like any other and marked shared (read-only) in the API "
            "and the panel; restores never write there: a prefix inside one is refused, and "
            "a name an environment there has is taken. The envs_dirs of system condarcs "
            "(/etc/conda/.condarc, the installation's own .condarc) that the server's user "
            "cannot write are shared without being listed here. Absolute paths ('~' "
            "expanded)."
        ),
    )

    max_user_environments = Int(
        0,
        config=True,
        help=(
            "The most environments a user may have in their own envs dirs (shared folders "
            "not counted); a restore beyond it is refused before anything is created, "
            "saying to delete one first. 0 (the default): no limit."
        ),
    )

    min_free_space = Union(
        [Int(), Unicode()],
        default_value=0,
        config=True,
        help=(
            "Refuse a restore when the file system it would write to has less free space "
            "than this: bytes, or a size like '5G', '500M', '5GB', '5GiB' (binary units: "
            "K = 1024 bytes). 0 (the default): no check."
        ),
    )

    @validate("shared_envs_dirs")
    def _validate_shared_envs_dirs(self, proposal: Any) -> list[str]:
        for entry in proposal["value"]:
            if "\x00" in entry or not os.path.isabs(os.path.expanduser(entry.strip() or ".")):
                raise TraitError(
                    f"ReproApp.shared_envs_dirs: {entry!r} is not an absolute folder; give "
                    "paths such as '/srv/conda/envs'"
                )
        return proposal["value"]

    @validate("max_user_environments")
    def _validate_max_user_environments(self, proposal: Any) -> int:
        if proposal["value"] < 0:
            raise TraitError(
                f"ReproApp.max_user_environments: {proposal['value']} is negative; give the "
                "most environments a user may have, or 0 for no limit"
            )
        return int(proposal["value"])

    @validate("min_free_space")
    def _validate_min_free_space(self, proposal: Any) -> int | str:
        try:
            parse_size(proposal["value"])
        except InvalidSize as error:
            raise TraitError(f"ReproApp.min_free_space: {error}") from None
        return proposal["value"]

    def restore_limits(self) -> dict[str, Any]:
        """These settings as `RestoreOptions` fields."""
        return {
            "shared_envs_dirs": self.shared_dirs(),
            "max_user_environments": self.max_user_environments,
            "min_free_space": parse_size(self.min_free_space),
        }

    def shared_dirs(self) -> tuple[Path, ...]:
        """`shared_envs_dirs` as paths, `~` expanded."""
        return tuple(Path(os.path.expanduser(entry.strip())) for entry in self.shared_envs_dirs)


def _server_config() -> Any:
    """The Jupyter server's configuration files, read as `jupyter server` reads them
    (`jupyter_server_config.py`/`.json` and `.d/` folders on the Jupyter config path)."""
    from jupyter_core.application import JupyterApp

    class _ServerConfig(JupyterApp):
        name = "jupyter-server"  # reads jupyter_server_config.*

    reader = _ServerConfig()
    reader.load_config_file()
    return reader.config


def _configured() -> RestoreLimitsTraits:
    """The settings as the Jupyter server's configuration files set them. Raises TraitError
    for an invalid value."""
    from traitlets.config import Configurable

    # Named like the server extension's class, so the `ReproApp` section applies.
    settings = type("ReproApp", (Configurable, RestoreLimitsTraits), {})
    return settings(config=_server_config())


def configured_limits() -> dict[str, Any]:
    """The `RestoreOptions` fields of the server's configured shared folders and limits,
    for the command line; raises ValueError naming an invalid setting."""
    try:
        return _configured().restore_limits()
    except TraitError as error:
        raise ValueError(str(error)) from None


def configured_package_cache() -> dict[str, Any]:
    """`ReproApp.package_cache_dir` of the server's configuration files as `RestoreOptions`
    fields ({} when unset): the command line uses the server's shared cache too. Raises
    ValueError for a value that is not an absolute folder."""
    value = _server_config().get("ReproApp", {}).get("package_cache_dir", "")
    if not isinstance(value, str) or not value.strip():
        return {}
    path = Path(os.path.expanduser(value.strip()))
    if not path.is_absolute():
        raise ValueError(f"ReproApp.package_cache_dir: {value!r} is not an absolute folder")
    return {"cache_dir": path, "shared_package_cache": True}


def configured_shared_envs_dirs() -> list[str]:
    """The server's configured shared folders, for the command line's listings ([] when
    the configuration cannot be read: a listing never fails for it)."""
    try:
        return [str(p) for p in _configured().shared_dirs()]
    except Exception:
        return []


def existing_folder(path: Path) -> Path:
    """`path`, or its nearest parent that exists: where a new folder would be made."""
    probe = Path(os.path.abspath(path))
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe


def free_space(path: Path) -> int:
    """Bytes this user may still write on the file system of `path` (or of its nearest
    existing parent): `f_bavail * f_frsize`, what `df` shows as available."""
    stat = os.statvfs(existing_folder(path))
    return stat.f_bavail * stat.f_frsize


def shared_folder_of(path: Path, shared_dirs: Iterable[Path]) -> Path | None:
    """The shared folder `path` lies in (or is), comparing real paths; None if none."""
    real = os.path.realpath(path)
    for folder in shared_dirs:
        base = os.path.realpath(folder)
        if real == base or os.path.commonpath([base, real]) == base:
            return Path(folder)
    return None
