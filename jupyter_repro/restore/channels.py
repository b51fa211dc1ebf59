"""Where a restore looks for packages: channel names made URLs, condarc, virtual packages.

A spec names channels the way a user types them (`conda-forge`, `defaults`, a URL, a local
folder); rattler wants URLs. The mapping follows conda: a name goes under `channel_alias`
(default `https://conda.anaconda.org`) unless `custom_channels` gives it a host of its own,
and `defaults` expands to `default_channels`. The user's condarc files are read as plain data
(ruamel's safe loader), never as code.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..environments.channels import DEFAULTS

DEFAULT_CHANNEL_ALIAS = "https://conda.anaconda.org"
DEFAULT_DEFAULT_CHANNELS: tuple[str, ...] = (
    "https://repo.anaconda.com/pkgs/main",
    "https://repo.anaconda.com/pkgs/r",
)
# `nodefaults` in an environment.yml means "do not add defaults": it names no channel.
_NO_DEFAULTS = "nodefaults"
# A condarc bigger than this is not a hand-written configuration file; skip it.
_MAX_CONDARC_BYTES = 1_000_000
# conda's override variables, by the rattler override each one feeds.
_OVERRIDE_VARIABLES = {
    "osx": "CONDA_OVERRIDE_OSX",
    "libc": "CONDA_OVERRIDE_GLIBC",
    "cuda": "CONDA_OVERRIDE_CUDA",
    "archspec": "CONDA_OVERRIDE_ARCHSPEC",
}


@dataclass(frozen=True)
class CondaConfig:
    """The channel settings of the user's condarc files (later files win, as in conda)."""

    channels: tuple[str, ...] = ()
    channel_alias: str = DEFAULT_CHANNEL_ALIAS
    default_channels: tuple[str, ...] = DEFAULT_DEFAULT_CHANNELS
    custom_channels: Mapping[str, str] = field(default_factory=dict)


def condarc_paths(environ: Mapping[str, str], home: Path) -> list[Path]:
    """The condarc files conda reads, lowest priority first (system, user, `$CONDARC`)."""
    xdg = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    paths = [
        Path("/etc/conda/.condarc"),
        Path("/etc/conda/condarc"),
        Path(xdg) / "conda" / ".condarc",
        Path(xdg) / "conda" / "condarc",
        home / ".config" / "conda" / ".condarc",
        home / ".conda" / ".condarc",
        home / ".condarc",
    ]
    if environ.get("CONDARC"):
        paths.append(Path(environ["CONDARC"]).expanduser())
    unique: list[Path] = []
    for path in paths:
        if path not in unique:
            unique.append(path)
    return unique


_PARSED: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}
"""condarc files already parsed, by path: (inode, size, mtime) and the data. A server
restores many times from the same files; parsing them again each time costs a restore from
a warm cache a few percent. A file that changed (another stat) is read again."""


def _load_condarc(path: Path) -> dict[str, Any]:
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_CONDARC_BYTES:
            return {}
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        known = _PARSED.get(path)
        if known is not None and known[0] == key:
            return known[1]
        data = YAML(typ="safe", pure=True).load(path.read_bytes())
    except (OSError, YAMLError, ValueError):
        # A broken condarc makes conda fail loudly; here it only costs its channel settings.
        return {}
    parsed = data if isinstance(data, dict) else {}
    _PARSED[path] = (key, parsed)
    return parsed


def _strings(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(str(v).strip() for v in value if isinstance(v, (str, int)) and str(v).strip())


def read_conda_config(environ: Mapping[str, str], home: Path) -> CondaConfig:
    """The merged channel settings of every condarc conda would read."""
    channels: tuple[str, ...] = ()
    alias = DEFAULT_CHANNEL_ALIAS
    defaults = DEFAULT_DEFAULT_CHANNELS
    custom: dict[str, str] = {}
    for path in condarc_paths(environ, home):
        data = _load_condarc(path)
        found = _strings(data.get("channels"))
        if found is not None:
            channels = found
        if isinstance(data.get("channel_alias"), str) and data["channel_alias"].strip():
            alias = data["channel_alias"].strip()
        found = _strings(data.get("default_channels"))
        if found:
            defaults = found
        if isinstance(data.get("custom_channels"), dict):
            custom.update(
                {str(k): str(v) for k, v in data["custom_channels"].items() if isinstance(v, str)}
            )
    return CondaConfig(channels, alias.rstrip("/"), defaults, custom)


def channel_to_url(channel: str, config: CondaConfig) -> str:
    """The URL of one channel as written in a spec or condarc (not `defaults`)."""
    channel = channel.strip()
    if "://" in channel:
        return channel.rstrip("/")
    if channel.startswith(("/", "./", "../", "~")) or channel in (".", ".."):
        return Path(channel).expanduser().resolve().as_uri()
    # `custom_channels` maps a channel name (its first path segment) to the host serving it.
    head = channel.split("/", 1)[0]
    if head in config.custom_channels:
        return f"{config.custom_channels[head].rstrip('/')}/{channel}"
    return f"{config.channel_alias}/{channel}"


def channel_urls(channels: Iterable[str], config: CondaConfig) -> list[str]:
    """Spec channels as URLs, in order and without repeats; `defaults` expanded."""
    urls: list[str] = []
    for channel in channels:
        if channel == _NO_DEFAULTS:
            continue
        expanded = (
            [channel_to_url(c, config) for c in config.default_channels]
            if channel == DEFAULTS
            else [channel_to_url(channel, config)]
        )
        urls.extend(url for url in expanded if url not in urls)
    return urls


def detect_virtual_packages(environ: Mapping[str, str]) -> list[Any]:
    """The host's virtual packages (`__glibc`, `__cuda`, ...), with `CONDA_OVERRIDE_*` applied.

    The variables are read from `environ` (the service's environment), not the process's,
    so a server configured for another machine's glibc solves for it.
    """
    from rattler import Override, VirtualPackage, VirtualPackageOverrides

    overrides = VirtualPackageOverrides()
    for attribute, variable in _OVERRIDE_VARIABLES.items():
        value = environ.get(variable)
        if value is not None:
            setattr(overrides, attribute, Override.string(value))
    return [v.into_generic() for v in VirtualPackage.detect(overrides)]


def normalized_channel(text: str, config: CondaConfig) -> str:
    """A channel or allowed-channel entry as a comparable URL (no trailing slash)."""
    return channel_to_url(text, config).rstrip("/")


def environ_home(environ: Mapping[str, str], home: Path | None) -> Path:
    """The home folder a service works in: `home`, else `$HOME`, else the user's."""
    if home is not None:
        return Path(home)
    return Path(environ.get("HOME") or os.path.expanduser("~"))
