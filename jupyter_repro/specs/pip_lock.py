"""Lock the pip section of an environment for one target platform, with uv.

A pip section (`pip: [numpy>=2, ./local-wheel.whl]`) names ranges; a lock names one version
and one file per package, with its sha256, for one platform and Python version. Restoring
from the lock then installs exactly those files (`restore.pip`), with no resolution and
hash-checked, on any machine.

uv resolves for a platform other than the one it runs on (`--python-platform`,
`--python-version`), which pip cannot. Its PEP 751 output (`--format pylock.toml`) records per
package the file URLs and hashes already filtered to that platform; we keep the best of them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging import tags
from packaging.markers import InvalidMarker, Marker
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from ..environments.channels import redact_text, redact_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["LockedPypi", "PipIndex", "PipLockError", "lock_pip", "uv_binary"]


@dataclass(frozen=True)
class PipIndex:
    """Where pip packages come from: the same options restore has (`pip_index_url`,
    `pip_find_links`, `pip_no_index`), so a lock sees the packages an install will."""

    index_url: str | None = None
    find_links: tuple[str, ...] = ()
    no_index: bool = False


@dataclass(frozen=True)
class LockedPypi:
    """One locked pip package: the version chosen and the file that provides it."""

    name: str
    """Normalized per PEP 503 (`Foo_Bar` -> `foo-bar`), so locks compare by name."""
    version: str
    url: str | None
    """URL of the chosen distribution file, redacted (`file://` for find-links and local
    paths; `git+...@<commit>` for a VCS requirement); None when unknown."""
    sha256: str | None
    """Hex sha256 of that file; None when there is no file (VCS, local directory)."""


class PipLockError(Exception):
    """Locking failed; the message says what and what to do, with credentials removed."""


# conda subdir -> uv's `--python-platform` target, and what the target means for wheel tags
# and environment markers. Only platforms a conda environment (and so a notebook) can have.
_UV_PLATFORMS: dict[str, str] = {
    "linux-64": "x86_64-unknown-linux-gnu",
    "linux-aarch64": "aarch64-unknown-linux-gnu",
    "osx-64": "x86_64-apple-darwin",
    "osx-arm64": "aarch64-apple-darwin",
    "win-64": "x86_64-pc-windows-msvc",
}
_MARKER_PLATFORMS: dict[str, tuple[str, str, str, str]] = {
    # subdir: (sys_platform, platform_system, platform_machine, os_name)
    "linux-64": ("linux", "Linux", "x86_64", "posix"),
    "linux-aarch64": ("linux", "Linux", "aarch64", "posix"),
    "osx-64": ("darwin", "Darwin", "x86_64", "posix"),
    "osx-arm64": ("darwin", "Darwin", "arm64", "posix"),
    "win-64": ("win32", "Windows", "AMD64", "nt"),
}
_PYTHON_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")

# The environment uv runs with: where things are, proxies, certificates, and uv's cache and
# network-timing knobs. No other UV_* variable (UV_INDEX_URL, UV_RESOLUTION,
# UV_EXCLUDE_NEWER, ...), so the user's environment cannot change what a lock says, and no
# server secret reaches a process that may build a stranger's sdist.
_UV_ENVIRONMENT = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "USERPROFILE",
        "APPDATA",
        "LOCALAPPDATA",
        "SYSTEMROOT",
        "LANG",
        "TZ",
        "TMPDIR",
        "TEMP",
        "TMP",
        "XDG_CACHE_HOME",
        "NETRC",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "UV_CACHE_DIR",
        "UV_NO_CACHE",
        "UV_HTTP_TIMEOUT",
        "UV_HTTP_RETRIES",
        "UV_CONCURRENT_DOWNLOADS",
        "UV_NATIVE_TLS",
        "UV_SYSTEM_CERTS",
    }
)
_ERROR_LINES = 30
"""How much of uv's output an error quotes: the resolver's explanation, not a wall."""


def uv_binary() -> str | None:
    """The uv executable: the one of the `uv` Python package when installed (the version
    we depend on), else the first `uv` on PATH; None when there is none."""
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def lock_pip(
    requirements: Sequence[str],
    *,
    platform: str,
    python_version: str,
    index: PipIndex,
    environ: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> tuple[LockedPypi, ...]:
    """Resolve `requirements` (pip section lines) for `platform` (a conda subdir) and
    `python_version` (`3.11` or `3.11.7`): every package of the solution, sorted by name.

    Blocking (runs uv); call it in an executor. The same inputs and index contents give the
    same tuple. Raises PipLockError when uv is missing, the platform or version is not one
    we can lock for, or the requirements cannot be resolved.
    """
    target = _uv_platform(platform)
    version = _python_version(python_version)
    if not requirements:
        return ()
    uv = uv_binary()
    if uv is None:
        raise PipLockError(
            "locking the pip section needs uv, which is not installed in the server's "
            "environment; install it there (`pip install uv`) or put uv on PATH"
        )
    with tempfile.TemporaryDirectory(prefix="jupyter-repro-pip-lock-") as tmp:
        folder = Path(tmp)
        source = folder / "requirements.in"
        source.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        # A fresh output file each time: uv prefers the pins of an existing output file,
        # which would make a lock depend on the last one.
        output = folder / "pylock.toml"
        argv = _compile_argv(uv, source, output, target, version, index)
        env = _uv_environment(os.environ if environ is None else environ, index)
        _run_uv(argv, env, timeout=timeout, what=f"{platform}, Python {version}")
        document = _read_pylock(output)
        return _locked_packages(document, folder, platform, version)


# -- running uv ------------------------------------------------------------------------------------


def _uv_platform(platform: str) -> str:
    """uv's target triple for a conda subdir; PipLockError for one we do not lock for."""
    try:
        return _UV_PLATFORMS[platform]
    except KeyError:
        known = ", ".join(_UV_PLATFORMS)
        raise PipLockError(
            f"cannot lock pip packages for platform {platform!r}: use one of {known}"
        ) from None


def _python_version(python_version: str) -> str:
    """`3.11` or `3.11.7`, checked: what uv's `--python-version` takes."""
    if not _PYTHON_VERSION.fullmatch(python_version.strip()):
        raise PipLockError(
            f"cannot lock pip packages for Python {python_version!r}: give the version as "
            "major.minor or major.minor.patch (e.g. 3.11 or 3.11.7)"
        )
    return python_version.strip()


def _compile_argv(
    uv: str, source: Path, output: Path, target: str, version: str, index: PipIndex
) -> list[str]:
    """`uv pip compile` for one platform, in PEP 751 format, independent of user config."""
    argv = [
        uv,
        "pip",
        "compile",
        str(source),
        "--output-file",
        str(output),
        "--format",
        "pylock.toml",
        "--python-platform",
        target,
        "--python-version",
        version,
        # The user's uv.toml / pyproject settings must not change what a lock says.
        "--no-config",
        # An interpreter only builds sdists (the target is --python-version/--python-platform):
        # the server's, so the lock does not depend on which Pythons are on PATH, and never
        # one downloaded on the fly.
        "--python",
        sys.executable,
        "--no-python-downloads",
        # Defaults, spelled out: a lock means the same whatever uv's defaults become.
        "--resolution",
        "highest",
        "--index-strategy",
        "first-index",
        "--no-header",
        "--quiet",
        "--no-progress",
        "--color",
        "never",
    ]
    # The index URL travels in the environment (`_uv_environment`), not here: a command
    # line is visible to every user of the machine, and the URL may carry a password.
    if index.no_index:
        argv.append("--no-index")
    for link in index.find_links:
        argv += ["--find-links", link]
    return argv


def _uv_environment(environ: Mapping[str, str], index: PipIndex) -> dict[str, str]:
    """What uv sees of `environ` (`_UV_ENVIRONMENT` and `LC_*`), plus the index URL."""
    env = {
        key: value
        for key, value in environ.items()
        if key.upper() in _UV_ENVIRONMENT or key.startswith("LC_")
    }
    if index.index_url and not index.no_index:
        env["UV_DEFAULT_INDEX"] = index.index_url
    return env


def _run_uv(argv: list[str], env: dict[str, str], *, timeout: float, what: str) -> None:
    """Run uv (an argument list, never a shell); PipLockError with its redacted output when
    it fails or takes longer than `timeout` seconds."""
    try:
        outcome = subprocess.run(
            argv,
            # The caller's working directory: a relative path in a requirement means what
            # it means to pip run there.
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PipLockError(
            f"locking the pip section ({what}) took longer than {timeout:g} s and was "
            "stopped; check that the package index is reachable, or raise the timeout"
        ) from None
    except OSError as error:
        raise PipLockError(
            f"could not run uv to lock the pip section ({what}): {error}; check the uv "
            "installation of the server's environment"
        ) from None
    if outcome.returncode != 0:
        raise PipLockError(
            f"uv could not lock the pip section ({what}), exit status {outcome.returncode}:\n"
            f"{_quote_output(outcome.stderr or outcome.stdout)}\n"
            "Check the requirements and the package index options (index URL, find-links); "
            "a requirement that no package on the index satisfies cannot be locked."
        )


def _quote_output(text: str) -> str:
    """The last lines of uv's output, indented, with credentials removed from every URL."""
    lines = [line.rstrip() for line in redact_text(text).strip().splitlines() if line.strip()]
    if len(lines) > _ERROR_LINES:
        lines = ["...", *lines[-_ERROR_LINES:]]
    return "\n".join("  " + line for line in lines) or "  (uv printed nothing)"


# -- reading the lock ------------------------------------------------------------------------------


def _read_pylock(path: Path) -> dict[str, Any]:
    """The PEP 751 document uv wrote."""
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PipLockError(
            f"uv succeeded but its lock output could not be read ({error}); this uv may be "
            "too old for `--format pylock.toml`: upgrade uv"
        ) from None


def _locked_packages(
    document: Mapping[str, Any], folder: Path, platform: str, version: str
) -> tuple[LockedPypi, ...]:
    """One LockedPypi per package of the lock that applies to the target, sorted by name."""
    environment = _marker_environment(platform, version)
    priority = _tag_priority(platform, version)
    locked = []
    for package in document.get("packages", []):
        if not _applies(package.get("marker"), environment):
            continue
        url, sha256 = _chosen_file(package, folder, priority)
        locked.append(
            LockedPypi(
                name=str(canonicalize_name(package["name"])),
                version=str(package.get("version", "")),
                url=url,
                sha256=sha256,
            )
        )
    return tuple(sorted(locked, key=lambda p: (p.name, p.version)))


def _applies(marker: str | None, environment: dict[str, str]) -> bool:
    """Whether a package's PEP 751 `marker` holds on the target (no marker: it does). uv
    writes none for a single-platform resolution; this is for the day it does."""
    if not marker:
        return True
    try:
        return Marker(marker).evaluate(environment)
    except InvalidMarker:
        # Keep a package whose marker we cannot read: installing one too many fails loudly,
        # dropping one fails later and quietly.
        return True


def _marker_environment(platform: str, version: str) -> dict[str, str]:
    """PEP 508 marker values of a CPython `version` on a conda `platform`."""
    sys_platform, system, machine, os_name = _MARKER_PLATFORMS[platform]
    parts = version.split(".")
    full = version if len(parts) == 3 else f"{version}.0"
    return {
        "implementation_name": "cpython",
        "implementation_version": full,
        "os_name": os_name,
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": system,
        "platform_version": "",
        "python_full_version": full,
        "python_version": ".".join(parts[:2]),
        "sys_platform": sys_platform,
    }


def _chosen_file(
    package: Mapping[str, Any], folder: Path, priority: Mapping[tags.Tag, int]
) -> tuple[str | None, str | None]:
    """URL and sha256 of the file an installer would take: the best wheel for the target,
    else the sdist, else a direct archive; a VCS or directory source has no file hash."""
    wheels = [w for w in package.get("wheels", []) if isinstance(w, Mapping)]
    if wheels:
        return _file(min(wheels, key=lambda w: _wheel_rank(w, priority)), folder)
    for key in ("sdist", "archive"):
        if isinstance(package.get(key), Mapping):
            return _file(package[key], folder)
    vcs = package.get("vcs")
    if isinstance(vcs, Mapping):
        where = vcs.get("url") or _file_uri(vcs.get("path"), folder)
        commit = vcs.get("commit-id")
        if where:
            url = f"{vcs.get('type', 'git')}+{where}" + (f"@{commit}" if commit else "")
            return redact_url(url), None
        return None, None
    directory = package.get("directory")
    if isinstance(directory, Mapping):
        return _file_uri(directory.get("path"), folder), None
    return None, None


def _file(entry: Mapping[str, Any], folder: Path) -> tuple[str | None, str | None]:
    """URL (redacted; a path becomes a `file://` URL) and sha256 of a PEP 751 file entry."""
    url = entry.get("url")
    hashes = entry.get("hashes")
    sha256 = hashes.get("sha256") if isinstance(hashes, Mapping) else None
    location = redact_url(url) if isinstance(url, str) else _file_uri(entry.get("path"), folder)
    return location, (sha256.lower() if isinstance(sha256, str) else None)


def _file_uri(path: object, folder: Path) -> str | None:
    """A PEP 751 path (relative ones are relative to the lock file) as a `file://` URL."""
    if not isinstance(path, str) or not path:
        return None
    return (folder / path).resolve().as_uri()


def _wheel_rank(wheel: Mapping[str, Any], priority: Mapping[tags.Tag, int]) -> tuple[int, str]:
    """Sort key of a wheel: its best tag's place in the target's preference (what pip or uv
    would pick on that machine), then its file name so ties are broken the same each time."""
    filename = wheel.get("name") or str(wheel.get("url") or wheel.get("path") or "")
    filename = filename.rsplit("/", 1)[-1]
    unknown = len(priority)
    try:
        _, _, _, wheel_tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return unknown, filename
    return min((priority.get(tag, unknown) for tag in wheel_tags), default=unknown), filename


def _tag_priority(platform: str, version: str) -> dict[tags.Tag, int]:
    """Wheel tags a CPython `version` on `platform` accepts, most specific first (the
    order of `packaging.tags.sys_tags` on that machine)."""
    major, minor = (int(part) for part in version.split(".")[:2])
    interpreter = f"cp{major}{minor}"
    platforms = _wheel_platforms(platform)
    ordered = [
        *tags.cpython_tags((major, minor), abis=[interpreter], platforms=platforms),
        *tags.compatible_tags((major, minor), interpreter, platforms),
    ]
    priority: dict[tags.Tag, int] = {}
    for place, tag in enumerate(ordered):
        priority.setdefault(tag, place)
    return priority


def _wheel_platforms(platform: str) -> list[str]:
    """Platform tags of a conda subdir, most specific first. Wide ranges on purpose: uv has
    already dropped the wheels the target cannot use; this only orders the rest."""
    if platform.startswith("linux-"):
        arch = "x86_64" if platform == "linux-64" else "aarch64"
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        names = []
        for glibc in range(40, 4, -1):
            names.append(f"manylinux_2_{glibc}_{arch}")
            if glibc in legacy and (arch == "x86_64" or glibc == 17):
                names.append(f"{legacy[glibc]}_{arch}")
        return [*names, f"linux_{arch}"]
    if platform.startswith("osx-"):
        arch = "x86_64" if platform == "osx-64" else "arm64"
        return list(tags.mac_platforms((15, 0), arch))
    return ["win_amd64"]
