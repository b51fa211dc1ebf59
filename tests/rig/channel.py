"""A local ``file://`` conda channel of tiny packages, built offline with rattler-build.

The packages are just enough for real conda-format environments in which a kernel runs:
``python`` points at the interpreter running the tests, ``ipykernel`` points at its
site-packages, and a few generic packages exercise dependencies, versions, activation
scripts and ``env_vars.d``. Names, versions and builds are module constants so tests can
refer to them.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import importlib.util
import io
import json
import os
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tests.rig._aio import run_sync

SUBDIR = "linux-64"
"""The architecture subdir of the channel (next to ``noarch``)."""
SUBDIRS = (SUBDIR, "noarch")
PLATFORMS: list = list(SUBDIRS)

# --- python: the host interpreter, re-homed so that sys.prefix is the environment ---------
PYTHON_NAME = "python"
PYTHON_VERSION = "{}.{}.{}".format(*sys.version_info[:3])
PYTHON_XY = "{}.{}".format(*sys.version_info[:2])
PYTHON_BUILD = "rig_0"
HOST_INTERPRETER = Path(sys._base_executable).resolve()  # type: ignore[attr-defined]
"""The real interpreter that every rig environment's ``bin/pythonX.Y`` links to."""

# --- ipykernel: a .pth to where ipykernel really lives, plus the stock kernelspec ---------
IPYKERNEL_NAME = "ipykernel"
IPYKERNEL_VERSION = importlib.metadata.version("ipykernel")
IPYKERNEL_BUILD = "pyh_rig_0"
PYTHON_KERNEL_DIR = "share/jupyter/kernels/python3"
PYTHON_KERNEL_JSON = {
    "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
    "metadata": {"debugger": True},
}
HOST_PTH_NAME = "_host.pth"

# --- an R kernel that is never run: only its kernelspec matters ---------------------------
R_KERNEL_NAME = "r-irkernel"
R_KERNEL_VERSION = "1.3.2"
R_KERNEL_BUILD = "r_rig_0"
R_KERNEL_DIR = "share/jupyter/kernels/ir"
R_KERNEL_JSON = {
    "argv": ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"],
    "display_name": "R",
    "language": "R",
}

# --- small generic packages with dependencies between them -------------------------------
GENERIC_BUILD = "0"
PKGA_NAME, PKGA_VERSION = "pkga", "1.0"
PKGA_DEPENDS = ("pkgb >=1",)
PKGB_NAME = "pkgb"
PKGB_VERSIONS = ("1.0", "2.0")
PKGB_LATEST = PKGB_VERSIONS[-1]
PKGC_NAME, PKGC_VERSION = "pkgc", "1.0"
PKGC_DEPENDS = ("pkga",)
PKGD_NAME, PKGD_VERSION = "pkgd", "1.0"
PKGD_DEPENDS = ("pkgb >=2",)
"""pkgd needs pkgb 2: ``pkgd`` with ``pkgb <2`` is unsatisfiable (for solver-error tests)."""
SHARED_FILE_TEMPLATE = "share/rig/{name}.txt"
"""Every generic package ships this file, holding ``"<name> <version>\\n"``; both pkgb
versions ship the same path, as an upgrade would in real life."""

ACTIVATE_PKG_NAME, ACTIVATE_PKG_VERSION = "rig-activate", "1.0"
ACTIVATE_SCRIPT = f"etc/conda/activate.d/{ACTIVATE_PKG_NAME}.sh"
DEACTIVATE_SCRIPT = f"etc/conda/deactivate.d/{ACTIVATE_PKG_NAME}.sh"
ACTIVATED_VAR, ACTIVATED_VALUE = "REPRO_RIG_ACTIVATED", "1"

ENVVARS_PKG_NAME, ENVVARS_PKG_VERSION = "rig-envvars", "1.0"
ENVVARS_FILE = f"etc/conda/env_vars.d/{ENVVARS_PKG_NAME}.json"
ENVVARS = {"REPRO_RIG_ENV_VAR": "from-env-vars-d", "REPRO_RIG_OTHER": "42"}

# --- prefix placeholders ------------------------------------------------------------------
PREFIX_PLACEHOLDER = "/opt/rig-build-env_placehold_placehold_placehold_placehold"
"""What a package's prefix files hold where the environment's path goes (as conda-build
leaves its long build prefix in them); the installer writes the real prefix instead."""
NOARCH_PYTHON_LINK_JSON = {"noarch": {"type": "python"}, "package_metadata_version": 1}
"""``info/link.json`` of every noarch python package, as conda-build and rattler-build write
it (conda-pack, among others, reads a package's noarch type from it)."""

# Fixed build times (repodata ``timestamp``) so records are stable across runs; later
# versions get later times, as on a real channel.
_EPOCH = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)


@dataclass
class PackageDef:
    """One conda package of the rig channel, described by what it contains."""

    name: str
    version: str
    build: str
    subdir: str = "noarch"
    noarch: Literal["python", "generic"] | None = "generic"
    depends: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    """Relative path -> text content."""
    symlinks: dict[str, str] = field(default_factory=dict)
    """Relative path -> link target (as stored in the package)."""
    timestamp: _dt.datetime = _EPOCH
    prefix_files: tuple[str, ...] = ()
    """Paths of ``files`` that hold :data:`PREFIX_PLACEHOLDER`: ``info/paths.json`` marks
    them (``prefix_placeholder``, ``file_mode: text``), so an installer writes the
    environment's prefix into them and conda-pack's ``conda-unpack`` rewrites it."""

    @property
    def dist_name(self) -> str:
        """``name-version-build``, as in ``conda-meta/<dist_name>.json``."""
        return f"{self.name}-{self.version}-{self.build}"

    @property
    def filename(self) -> str:
        return f"{self.dist_name}.conda"


def host_site_dirs() -> list[str]:
    """Site-packages directories to put on ``sys.path`` inside rig environments.

    The running interpreter's purelib first, then wherever ipykernel is actually found
    (found without importing it, which is slow), if that is elsewhere.
    """
    dirs = [sysconfig.get_paths()["purelib"]]
    spec = importlib.util.find_spec("ipykernel")
    if spec is not None and spec.origin:
        dirs.append(str(Path(spec.origin).parent.parent))
    unique: list[str] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def python_package() -> PackageDef:
    """``python`` for linux-64: links to the host interpreter plus a ``pyvenv.cfg``.

    With ``pyvenv.cfg`` next to ``bin/``, CPython takes the environment as ``sys.prefix``
    while running the host's own binary and standard library.
    """
    exe = f"bin/python{PYTHON_XY}"
    return PackageDef(
        name=PYTHON_NAME,
        version=PYTHON_VERSION,
        build=PYTHON_BUILD,
        subdir=SUBDIR,
        noarch=None,
        files={
            "pyvenv.cfg": f"home = {HOST_INTERPRETER.parent}\n"
            "include-system-site-packages = false\n"
            f"version = {PYTHON_VERSION}\n",
            # Packages do not carry empty directories; CPython ships this file too.
            f"lib/python{PYTHON_XY}/site-packages/README.txt": "This directory exists so that"
            " 3rd party packages can be installed here.\n",
        },
        symlinks={
            exe: str(HOST_INTERPRETER),
            "bin/python": f"python{PYTHON_XY}",
            "bin/python3": f"python{PYTHON_XY}",
        },
        timestamp=_EPOCH,
    )


def ipykernel_package() -> PackageDef:
    """``ipykernel`` (noarch: python): a ``.pth`` to the host site-packages and a kernelspec."""
    return PackageDef(
        name=IPYKERNEL_NAME,
        version=IPYKERNEL_VERSION,
        build=IPYKERNEL_BUILD,
        noarch="python",
        depends=("python",),
        files={
            f"site-packages/{HOST_PTH_NAME}": "".join(d + "\n" for d in host_site_dirs()),
            f"{PYTHON_KERNEL_DIR}/kernel.json": json.dumps(PYTHON_KERNEL_JSON, indent=1) + "\n",
        },
        timestamp=_EPOCH + _dt.timedelta(hours=1),
    )


def r_kernel_package() -> PackageDef:
    """``r-irkernel`` (noarch: generic): only the ``ir`` kernelspec; R itself is absent."""
    return PackageDef(
        name=R_KERNEL_NAME,
        version=R_KERNEL_VERSION,
        build=R_KERNEL_BUILD,
        files={f"{R_KERNEL_DIR}/kernel.json": json.dumps(R_KERNEL_JSON, indent=1) + "\n"},
        timestamp=_EPOCH + _dt.timedelta(hours=2),
    )


def generic_package(
    name: str,
    version: str,
    depends: Iterable[str] = (),
    extra_files: dict[str, str] | None = None,
    build: str = GENERIC_BUILD,
    timestamp: _dt.datetime | None = None,
) -> PackageDef:
    """A noarch generic package shipping ``share/rig/<name>.txt`` and ``extra_files``."""
    files = {SHARED_FILE_TEMPLATE.format(name=name): f"{name} {version}\n"}
    files.update(extra_files or {})
    return PackageDef(
        name=name,
        version=version,
        build=build,
        depends=tuple(depends),
        files=files,
        timestamp=timestamp or _EPOCH + _dt.timedelta(days=1),
    )


def default_packages() -> list[PackageDef]:
    """Every package of the rig channel."""
    day = _dt.timedelta(days=1)
    return [
        python_package(),
        ipykernel_package(),
        r_kernel_package(),
        generic_package(PKGA_NAME, PKGA_VERSION, PKGA_DEPENDS),
        *(
            generic_package(PKGB_NAME, v, timestamp=_EPOCH + (i + 1) * day)
            for i, v in enumerate(PKGB_VERSIONS)
        ),
        generic_package(PKGC_NAME, PKGC_VERSION, PKGC_DEPENDS),
        generic_package(PKGD_NAME, PKGD_VERSION, PKGD_DEPENDS),
        generic_package(
            ACTIVATE_PKG_NAME,
            ACTIVATE_PKG_VERSION,
            extra_files={
                ACTIVATE_SCRIPT: f"export {ACTIVATED_VAR}={ACTIVATED_VALUE}\n",
                DEACTIVATE_SCRIPT: f"unset {ACTIVATED_VAR}\n",
            },
        ),
        generic_package(
            ENVVARS_PKG_NAME,
            ENVVARS_PKG_VERSION,
            extra_files={ENVVARS_FILE: json.dumps(ENVVARS, indent=2) + "\n"},
        ),
    ]


def _stage(pkg: PackageDef, staging: Path) -> None:
    for rel, text in pkg.files.items():
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
    for rel, target in pkg.symlinks.items():
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, dest)


def assemble(pkg: PackageDef, channel_dir: Path) -> Path:
    """Build ``pkg`` into ``channel_dir/<subdir>/`` and return the archive's path."""
    from rattler_build import assemble_package

    missing = set(pkg.prefix_files) - set(pkg.files)
    if missing:
        raise ValueError(f"{pkg.dist_name}: prefix_files not in files: {sorted(missing)}")
    out_dir = channel_dir / pkg.subdir
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"stage-{pkg.name}-") as tmp:
        _stage(pkg, Path(tmp))
        out = assemble_package(
            name=pkg.name,
            version=pkg.version,
            target_platform=pkg.subdir,
            build_string=pkg.build,
            output_dir=out_dir,
            files_dir=tmp,
            noarch=pkg.noarch,
            depends=list(pkg.depends),
            timestamp=pkg.timestamp,
            # Tiny files: compression time, not size, is what matters here.
            compression_level=1,
            compression_threads=1,
        )
    path = Path(out.path)
    # assemble_package writes neither link.json nor prefix placeholders: add them to the
    # archive's info/ as conda-build would have.
    extra = {}
    if pkg.noarch == "python":
        extra["info/link.json"] = (json.dumps(NOARCH_PYTHON_LINK_JSON, indent=2) + "\n").encode()
    if extra or pkg.prefix_files:
        _amend_info(path, extra, pkg.prefix_files)
    return path


def _amend_info(archive: Path, extra: dict[str, bytes], prefix_files: Sequence[str]) -> None:
    """Rewrite the ``info-*.tar.zst`` of a ``.conda`` ``archive``: add the ``extra`` files and
    mark ``prefix_files`` in ``info/paths.json``. Deterministic (members keep their order
    and times; new ones take ``info/index.json``'s)."""
    import zstandard

    with zipfile.ZipFile(archive) as zin:
        entries = [(i, zin.read(i)) for i in zin.infolist()]
    name = next(i.filename for i, _ in entries if i.filename.startswith("info-"))
    blob = next(data for i, data in entries if i.filename == name)
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tin, tarfile.open(fileobj=out, mode="w") as tout:
        members = tin.getmembers()
        for m in members:
            fh = tin.extractfile(m) if m.isfile() else None
            data = fh.read() if fh is not None else None
            if m.name == "info/paths.json" and data is not None and prefix_files:
                paths = json.loads(data)
                for entry in paths["paths"]:
                    if entry["_path"] in prefix_files:
                        entry["prefix_placeholder"] = PREFIX_PLACEHOLDER
                        entry["file_mode"] = "text"
                data = (json.dumps(paths, indent=2) + "\n").encode()
                m.size = len(data)
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
        template = next(m for m in members if m.name == "info/index.json")
        for rel, data in sorted(extra.items()):
            info = tarfile.TarInfo(rel)
            info.size, info.mtime, info.mode = len(data), template.mtime, 0o644
            tout.addfile(info, io.BytesIO(data))
    packed = zstandard.ZstdCompressor(level=1).compress(out.getvalue())
    tmp = archive.with_name(archive.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zout:
        for info, data in entries:
            zout.writestr(info, packed if info.filename == name else data)
    os.replace(tmp, archive)


def _detect_virtual_packages() -> list:
    from rattler import VirtualPackage

    return [v.into_generic() for v in VirtualPackage.detect()]


_VIRTUAL_PACKAGES: list | None = None


def virtual_packages() -> list:
    """The host's virtual packages (``__glibc``, ``__unix``...), detected once."""
    global _VIRTUAL_PACKAGES
    if _VIRTUAL_PACKAGES is None:
        _VIRTUAL_PACKAGES = _detect_virtual_packages()
    return _VIRTUAL_PACKAGES


class RigChannel:
    """A built and indexed local channel, with a memoised solver over it."""

    def __init__(
        self, path: Path, packages: Sequence[PackageDef], stamp_index_time: bool = False
    ) -> None:
        self.path = Path(path).resolve()
        self.packages: list[PackageDef] = list(packages)
        self.stamp_index_time = stamp_index_time
        """Write each record's build ``timestamp`` as its ``indexed_timestamp`` too.

        ``index_fs`` stamps ``indexed_timestamp`` with the time of indexing, and rattler's
        ``exclude_newer`` goes by it first: without this every record is "new" and any
        cutoff in the past excludes the whole channel."""
        self._solves: dict[tuple, list] = {}

    @property
    def url(self) -> str:
        """``file:///...`` without a trailing slash (how conda names a local channel)."""
        return self.path.as_uri()

    def __repr__(self) -> str:
        return f"RigChannel({self.url!r}, {len(self.packages)} packages)"

    def index(self) -> None:
        """(Re)write ``<subdir>/repodata.json`` for every subdir."""
        from rattler.index import index_fs

        run_sync(index_fs(self.path, write_zst=False, write_shards=False, force=True))
        if self.stamp_index_time:
            self._stamp_indexed_timestamps()

    def subdirs(self) -> list[str]:
        """The subdirs that have a ``repodata.json`` (sorted)."""
        return sorted(p.parent.name for p in self.path.glob("*/repodata.json"))

    def _stamp_indexed_timestamps(self) -> None:
        for sub in self.subdirs():
            path = self.path / sub / "repodata.json"
            data = json.loads(path.read_text())
            for key in ("packages", "packages.conda"):
                for rec in data.get(key, {}).values():
                    if "timestamp" in rec:
                        rec["indexed_timestamp"] = rec["timestamp"]
            path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    def add_packages(self, packages: Iterable[PackageDef]) -> list[Path]:
        """Build more packages into the channel (e.g. a new version) and re-index.

        Rebuilding an existing ``name-version-build`` is refused: package caches key on it
        and would keep serving the old content.
        """
        known = {(p.subdir, p.filename) for p in self.packages}
        new = list(packages)
        for p in new:
            if (p.subdir, p.filename) in known:
                raise ValueError(f"{p.subdir}/{p.filename} is already in the channel")
        paths = [assemble(p, self.path) for p in new]
        self.packages.extend(new)
        self.index()
        self._solves.clear()
        return paths

    def repodata(self, subdir: str) -> dict:
        """The parsed ``<subdir>/repodata.json``."""
        return json.loads((self.path / subdir / "repodata.json").read_text())

    def package(self, name: str, version: str | None = None) -> PackageDef:
        """The definition of ``name`` (the highest version unless ``version`` is given)."""
        from rattler import Version

        found = [p for p in self.packages if p.name == name and version in (None, p.version)]
        if not found:
            raise KeyError(f"{name} {version or ''}".strip())
        return max(found, key=lambda p: Version(p.version))

    async def solve_async(self, specs: Sequence[str], locked: Sequence | None = None) -> list:
        """Solve ``specs`` against this channel only; returns ``RepoDataRecord`` s."""
        from rattler import Channel, Gateway, MatchSpec, solve

        # A fresh gateway per solve: a long-lived one would keep serving repodata from
        # before add_packages(); reading a local repodata.json costs well under 1 ms.
        return await solve(
            sources=[Channel(self.url)],
            specs=[MatchSpec(s) for s in specs],
            gateway=Gateway(show_progress=False),
            platforms=PLATFORMS,
            locked_packages=list(locked) if locked else None,
            virtual_packages=virtual_packages(),
        )

    def solve(self, specs: Sequence[str], locked: Sequence | None = None) -> list:
        """Solve ``specs`` (memoised per spec list when nothing is locked).

        Creating hundreds of environments from the same specs then costs one solve.
        The returned list is the caller's own; the records in it are shared.
        """
        if locked:
            return run_sync(self.solve_async(specs, locked))
        key = tuple(specs)
        if key not in self._solves:
            self._solves[key] = run_sync(self.solve_async(specs))
        return list(self._solves[key])


def build_channel(
    path: Path, packages: Sequence[PackageDef] | None = None, stamp_index_time: bool = False
) -> RigChannel:
    """Build and index a channel at ``path`` (created) with ``packages`` (default: all).

    Packages go to their own ``subdir`` (any platform); ``stamp_index_time`` see
    :attr:`RigChannel.stamp_index_time`.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    pkgs = list(default_packages() if packages is None else packages)
    for sub in SUBDIRS:
        # index_fs only indexes subdirs that exist; conda clients expect both.
        (path / sub).mkdir(exist_ok=True)
    for p in pkgs:
        assemble(p, path)
    channel = RigChannel(path, pkgs, stamp_index_time=stamp_index_time)
    channel.index()
    return channel
