"""A throw-away conda installation in a temporary HOME, filled with rattler.

Layout (as a Miniforge user's machine would have it)::

    <home>/
      .condarc                      envs_dirs: [<home>/conda-envs], channels: [<rig channel>]
      .conda/environments.txt       every registered prefix, the root first
      miniforge3/                   root prefix ("base"), solved and installed from ROOT_SPECS
        conda-meta/  envs/          named environments (conda's default envs dir)
      conda-envs/                   the second envs dir, configured through .condarc

Every environment is solved and installed for real (``conda-meta/*.json`` records written
by rattler) and gets a ``conda-meta/history`` in conda's own format, which rattler leaves
empty. Installs hard-link from a shared package cache: a test must not edit an
environment's packaged files in place (that would edit the cache); unlink, then write.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.rig._aio import run_sync
from tests.rig.channel import PYTHON_XY, RigChannel

CONDA_VERSION = "24.11.3"
"""What ``# conda version:`` says in the histories the rig writes."""
ROOT_DIRNAME = "miniforge3"
EXTRA_ENVS_DIRNAME = "conda-envs"
ROOT_SPECS: tuple[str, ...] = ("python", "ipykernel")
"""What the root ("base") environment is created from."""

_HEADER_RE = re.compile(r"^==> (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) <==$")
_INSTALL_CONCURRENCY = 8


# --------------------------------------------------------------------------------------------
# conda's history file
# --------------------------------------------------------------------------------------------


def dist_str(record: object) -> str:
    """conda's ``channel/subdir::name-version-build`` for a (repodata or prefix) record.

    conda names a local channel by its URL (``file:///...``, no trailing slash).
    """
    channel = str(record.channel).rstrip("/")  # type: ignore[attr-defined]
    name = record.name.normalized  # type: ignore[attr-defined]
    return f"{channel}/{record.subdir}::{name}-{record.version}-{record.build}"  # type: ignore[attr-defined]


def spec_name(spec: str) -> str:
    """The package name a spec string asks for."""
    from rattler import MatchSpec

    name = MatchSpec(spec).name
    if name is None:
        raise ValueError(f"spec without a package name: {spec!r}")
    return name.normalized


def conda_spec_str(spec: str) -> str:
    """``spec`` written the way conda's ``str(MatchSpec)`` writes it in history files.

    E.g. ``pkgb<2`` -> ``pkgb[version='<2']``, ``python=3.11`` -> ``python=3.11``,
    ``pkgb=1.0=0`` -> ``pkgb==1.0=0``. Covers the spec forms the rig uses, not all of conda's.
    """
    from rattler import MatchSpec

    ms = MatchSpec(spec)
    head = spec_name(spec)
    if ms.channel is not None:
        head = f"{ms.channel.name}::{head}"
    brackets: list[str] = []
    exact = False
    version = str(ms.version) if ms.version is not None else ""
    if version and version != "*":
        if any(c in version for c in "><$^|,"):
            brackets.append(f"version='{version}'")
        elif version.endswith(".*"):
            head += "=" + version[:-2]
        elif version.startswith("=="):
            head += version
            exact = True
        else:
            head += "==" + version
            exact = True
    if ms.build:
        build = str(ms.build)
        if exact and not any(c in build for c in "><$*,"):
            head += "=" + build
        else:
            brackets.append(f"build='{build}'")
    return head + (f"[{','.join(brackets)}]" if brackets else "")


def write_history_entry(
    prefix: Path,
    *,
    cmd: str,
    added: Iterable[str] = (),
    removed: Iterable[str] = (),
    update_specs: Sequence[str] = (),
    remove_specs: Sequence[str] = (),
    when: float | None = None,
) -> None:
    """Append one transaction to ``<prefix>/conda-meta/history`` as conda writes it.

    ``added``/``removed`` are :func:`dist_str` strings; the specs are written through
    :func:`conda_spec_str` as the Python list literal conda writes.
    """
    lines = [
        "==> {} <==".format(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))),
        f"# cmd: {cmd}",
        f"# conda version: {CONDA_VERSION}",
    ]
    lines += [f"-{d}" for d in sorted(set(removed))]
    lines += [f"+{d}" for d in sorted(set(added))]
    if remove_specs:
        lines.append("# remove specs: %s" % [conda_spec_str(s) for s in remove_specs])
    if update_specs:
        lines.append("# update specs: %s" % [conda_spec_str(s) for s in update_specs])
    path = Path(prefix) / "conda-meta" / "history"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


@dataclass
class HistoryEntry:
    """One ``==> date <==`` block of a history file."""

    date: str
    cmd: str | None = None
    conda_version: str | None = None
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    update_specs: list[str] = field(default_factory=list)
    remove_specs: list[str] = field(default_factory=list)


def read_history(prefix: Path) -> list[HistoryEntry]:
    """Parse ``<prefix>/conda-meta/history`` (the rig's own reader, for its tests)."""
    entries: list[HistoryEntry] = []
    path = Path(prefix) / "conda-meta" / "history"
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _HEADER_RE.match(line)
        if m:
            entries.append(HistoryEntry(date=m.group(1)))
            continue
        if not entries:
            raise ValueError(f"{path}: line before the first header: {line!r}")
        cur = entries[-1]
        if line.startswith("# cmd: "):
            cur.cmd = line[len("# cmd: ") :]
        elif line.startswith("# conda version: "):
            cur.conda_version = line[len("# conda version: ") :]
        elif line.startswith("# update specs: "):
            cur.update_specs += ast.literal_eval(line[len("# update specs: ") :])
        elif line.startswith("# remove specs: "):
            cur.remove_specs += ast.literal_eval(line[len("# remove specs: ") :])
        elif line.startswith("+"):
            cur.added.append(line[1:])
        elif line.startswith("-"):
            cur.removed.append(line[1:])
    return entries


def requested_specs(prefix: Path) -> dict[str, str]:
    """Name -> spec the user asked for, replayed from the history (later wins)."""
    specs: dict[str, str] = {}
    for entry in read_history(prefix):
        for s in entry.remove_specs:
            specs.pop(spec_name(s), None)
        for s in entry.update_specs:
            specs[spec_name(s)] = s
    return specs


# --------------------------------------------------------------------------------------------
# process isolation
# --------------------------------------------------------------------------------------------

_DROPPED_PREFIXES = ("CONDA_", "MAMBA_", "_CE_", "PIXI_")
_DROPPED_NAMES = ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "CONDA_EXE", "MAMBA_EXE", "_CONDA_ROOT")


def isolated_environ(
    home: Path,
    *,
    package_cache: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment variables that confine a process to ``home``.

    Starts from ``base`` (default ``os.environ``), drops every ``CONDA_*``/``MAMBA_*``
    variable (an activated conda on the developer's machine must not leak in) and
    ``JUPYTER_PATH``/``JUPYTER_CONFIG_PATH``, and points HOME, CONDARC, the XDG dirs, the
    Jupyter dirs, IPYTHONDIR and the rattler cache inside ``home``.
    """
    home = Path(home)
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.startswith(_DROPPED_PREFIXES) and k not in _DROPPED_NAMES
    }
    data = home / ".local" / "share" / "jupyter"
    env.update(
        HOME=str(home),
        CONDARC=str(home / ".condarc"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(data),
        JUPYTER_RUNTIME_DIR=str(data / "runtime"),
        IPYTHONDIR=str(home / ".ipython"),
        RATTLER_CACHE_DIR=str(package_cache or home / ".cache" / "rattler"),
    )
    return env


# --------------------------------------------------------------------------------------------
# the installation
# --------------------------------------------------------------------------------------------


def _read_prefix_records(prefix: Path) -> list:
    from rattler import PrefixRecord

    meta = Path(prefix) / "conda-meta"
    return [PrefixRecord.from_path(p) for p in sorted(meta.glob("*.json"))]


async def _install(
    records: list, prefix: Path, cache: Path, specs: Sequence[str], installed=None
) -> None:
    from rattler import MatchSpec, install

    await install(
        records,
        target_prefix=str(prefix),
        cache_dir=cache,
        installed_packages=installed,
        show_progress=False,
        requested_specs=[MatchSpec(s)._match_spec for s in specs],
    )
    # rattler drops a CACHEDIR.TAG into new prefixes; conda does not, and backup tools
    # would then skip the environment, so keep the prefix as conda leaves it.
    (prefix / "CACHEDIR.TAG").unlink(missing_ok=True)


class CondaInstallation:
    """A conda installation under ``home``: root prefix, two envs dirs, condarc, registry.

    Create one with :meth:`create`. All prefixes are absolute and resolved.
    """

    def __init__(self, home: Path, channel: RigChannel, package_cache: Path) -> None:
        self.home = Path(home).resolve()
        self.channel = channel
        self.package_cache = Path(package_cache).resolve()
        self.root_prefix = self.home / ROOT_DIRNAME
        self.envs_dir = self.root_prefix / "envs"
        """conda's default envs dir, ``<root>/envs``."""
        self.extra_envs_dir = self.home / EXTRA_ENVS_DIRNAME
        """The envs dir that ``~/.condarc`` adds through ``envs_dirs:``."""
        self.condarc = self.home / ".condarc"
        self.environments_txt = self.home / ".conda" / "environments.txt"
        self.envs: dict[str, Path] = {}
        """Name -> prefix of every environment created through this object (not the root)."""

    def __repr__(self) -> str:
        return f"CondaInstallation(home={str(self.home)!r}, envs={sorted(self.envs)})"

    @classmethod
    def create(
        cls,
        home: Path,
        channel: RigChannel,
        package_cache: Path,
        root_specs: Sequence[str] = ROOT_SPECS,
    ) -> CondaInstallation:
        """Make the HOME layout, install the root prefix and write ``.condarc``."""
        inst = cls(home, channel, package_cache)
        inst.home.mkdir(parents=True, exist_ok=True)
        inst.envs_dir.mkdir(parents=True, exist_ok=True)
        inst.extra_envs_dir.mkdir(parents=True, exist_ok=True)
        inst.condarc.write_text(
            f"envs_dirs:\n  - {inst.extra_envs_dir}\nchannels:\n  - {channel.url}\n"
        )
        inst._install_new(
            [inst.root_prefix], list(root_specs), f"conda create -p {inst.root_prefix}"
        )
        inst.register(inst.root_prefix)
        return inst

    # -- environments ------------------------------------------------------------------------

    def env_prefix(self, name: str, envs_dir: Path | None = None) -> Path:
        """Where environment ``name`` lives (``envs_dir`` defaults to ``<root>/envs``)."""
        return Path(envs_dir or self.envs_dir).resolve() / name

    def create_env(self, name: str, specs: Sequence[str], envs_dir: Path | None = None) -> Path:
        """``conda create -n name specs...``: solve, install, history, register; the prefix."""
        return self.create_envs([name], specs, envs_dir)[0]

    def create_envs(
        self, names: Sequence[str], specs: Sequence[str], envs_dir: Path | None = None
    ) -> list[Path]:
        """Create many environments from the same specs: one solve, concurrent installs."""
        prefixes = [self.env_prefix(n, envs_dir) for n in names]
        for n, p in zip(names, prefixes):
            if p.exists():
                raise FileExistsError(f"environment {n!r} already exists at {p}")
        cmds = [f"conda create -n {n}" for n in names]
        self._install_new(prefixes, list(specs), cmds)
        for n, p in zip(names, prefixes):
            self.envs[n] = p
        self.register(*prefixes)
        return prefixes

    def create_prefix_env(self, prefix: Path, specs: Sequence[str], register: bool = True) -> Path:
        """``conda create -p prefix specs...`` (an environment outside any envs dir)."""
        prefix = Path(prefix).resolve()
        if prefix.exists() and any(prefix.iterdir()):
            raise FileExistsError(f"{prefix} is not empty")
        self._install_new([prefix], list(specs), f"conda create -p {prefix}")
        if register:
            self.register(prefix)
        return prefix

    def _install_new(
        self, prefixes: Sequence[Path], specs: list[str], cmds: str | Sequence[str]
    ) -> None:
        records = self.channel.solve(specs)
        added = [dist_str(r) for r in records]
        cmd_list = [cmds] * len(prefixes) if isinstance(cmds, str) else list(cmds)

        async def install_all() -> None:
            gate = asyncio.Semaphore(_INSTALL_CONCURRENCY)

            async def one(prefix: Path) -> None:
                async with gate:
                    await _install(records, prefix, self.package_cache, specs)

            await asyncio.gather(*(one(p) for p in prefixes))

        run_sync(install_all())
        now = time.time()
        for prefix, cmd in zip(prefixes, cmd_list):
            write_history_entry(
                prefix, cmd=" ".join([cmd, *specs]), added=added, update_specs=specs, when=now
            )

    def _cmd_target(self, prefix: Path) -> str:
        prefix = Path(prefix).resolve()
        if prefix.parent in (self.envs_dir.resolve(), self.extra_envs_dir.resolve()):
            return f"-n {prefix.name}"
        return f"-p {prefix}"

    def add_packages(self, prefix: Path, specs: Sequence[str]) -> None:
        """``conda install specs...`` into an existing environment (keeps what it can)."""
        prefix = Path(prefix).resolve()
        installed = _read_prefix_records(prefix)
        present = {r.name.normalized for r in installed}
        # Specs whose package has gone (removed as a dependent) are not re-added.
        wanted = {n: s for n, s in requested_specs(prefix).items() if n in present}
        for s in specs:
            wanted[spec_name(s)] = s
        records = self.channel.solve(list(wanted.values()), locked=installed)
        run_sync(_install(records, prefix, self.package_cache, list(wanted.values()), installed))
        before = {dist_str(r) for r in installed}
        after = {dist_str(r) for r in records}
        write_history_entry(
            prefix,
            cmd=" ".join(["conda install", self._cmd_target(prefix), *specs]),
            added=after - before,
            removed=before - after,
            update_specs=list(specs),
        )

    def remove_packages(self, prefix: Path, names: Sequence[str], force: bool = False) -> list[str]:
        """``conda remove names...``: also removes what depends on them unless ``force``.

        Returns the names actually removed.
        """
        prefix = Path(prefix).resolve()
        installed = _read_prefix_records(prefix)
        present = {r.name.normalized for r in installed}
        missing = set(names) - present
        if missing:
            raise KeyError(f"not installed in {prefix}: {sorted(missing)}")
        gone = set(names)
        while not force:
            dependents = {
                r.name.normalized
                for r in installed
                if r.name.normalized not in gone and any(spec_name(d) in gone for d in r.depends)
            }
            if not dependents:
                break
            gone |= dependents
        keep = [r for r in installed if r.name.normalized not in gone]
        wanted = [s for n, s in requested_specs(prefix).items() if n not in gone]
        run_sync(_install(keep, prefix, self.package_cache, wanted, installed))
        write_history_entry(
            prefix,
            cmd=" ".join(
                ["conda remove", self._cmd_target(prefix), *names, *(["--force"] if force else [])]
            ),
            removed=[dist_str(r) for r in installed if r.name.normalized in gone],
            remove_specs=list(names),
        )
        return sorted(gone)

    def add_pip_package(self, prefix: Path, name: str, version: str) -> Path:
        """Put a pip-installed distribution (``.dist-info`` with INSTALLER ``pip``) in the env.

        Returns the ``.dist-info`` directory. Only metadata plus a one-line module: enough
        for ``importlib.metadata`` and for exporters that list pip packages.
        """
        site = Path(prefix) / "lib" / f"python{PYTHON_XY}" / "site-packages"
        module = name.replace("-", "_").lower()
        dist = site / f"{module}-{version}.dist-info"
        dist.mkdir(parents=True)
        (site / f"{module}.py").write_text(f"__version__ = {version!r}\n")
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (dist / "INSTALLER").write_text("pip\n")
        (dist / "RECORD").write_text(
            f"{module}.py,,\n{dist.name}/METADATA,,\n{dist.name}/INSTALLER,,\n{dist.name}/RECORD,,\n"
        )
        return dist

    def remove_env(self, prefix: Path, unregister: bool = True) -> None:
        """Delete an environment; ``unregister=False`` leaves a stale environments.txt line."""
        prefix = Path(prefix).resolve()
        shutil.rmtree(prefix)
        self.envs = {n: p for n, p in self.envs.items() if p != prefix}
        if unregister:
            lines = [line for line in self.registered() if line != prefix]
            self._write_registry(lines)

    # -- registry and environment variables --------------------------------------------------

    def registered(self) -> list[Path]:
        """The prefixes listed in ``~/.conda/environments.txt``, in file order."""
        if not self.environments_txt.exists():
            return []
        return [
            Path(line) for line in self.environments_txt.read_text().splitlines() if line.strip()
        ]

    def register(self, *prefixes: Path) -> None:
        """Add prefixes to ``~/.conda/environments.txt`` (as conda does after a create)."""
        current = self.registered()
        current += [Path(p) for p in prefixes if Path(p) not in current]
        self._write_registry(current)

    def _write_registry(self, prefixes: Sequence[Path]) -> None:
        self.environments_txt.parent.mkdir(parents=True, exist_ok=True)
        self.environments_txt.write_text("".join(f"{p}\n" for p in prefixes))

    def all_prefixes(self) -> list[Path]:
        """The root prefix and every prefix in an envs dir that has ``conda-meta/``."""
        found = [self.root_prefix]
        for d in (self.envs_dir, self.extra_envs_dir):
            found += sorted(p for p in d.iterdir() if (p / "conda-meta").is_dir())
        return found

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """:func:`isolated_environ` for this installation's HOME and package cache."""
        return isolated_environ(self.home, package_cache=self.package_cache, base=base)

    def installed(self, prefix: Path) -> dict[str, str]:
        """Name -> version of the conda packages in ``prefix`` (from ``conda-meta``)."""
        out = {}
        for p in (Path(prefix) / "conda-meta").glob("*.json"):
            rec = json.loads(p.read_text())
            out[rec["name"]] = rec["version"]
        return out


# --------------------------------------------------------------------------------------------
# a standard, populated installation (read-only session fixture, benchmarks)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvPlan:
    """An environment of the standard set: where it goes and what it is created from."""

    name: str
    specs: tuple[str, ...]
    where: str = "envs"
    """``"envs"`` (``<root>/envs``), ``"extra"`` (the condarc envs dir) or a path relative
    to HOME for a ``conda create -p`` environment."""


STANDARD_ENVS: tuple[EnvPlan, ...] = (
    EnvPlan("py", ("python", "ipykernel", "pkgc", "rig-activate", "rig-envvars")),
    EnvPlan("r", ("r-irkernel",)),
    EnvPlan("old", ("python", "ipykernel", "pkga", "pkgb=1.0"), "extra"),
    EnvPlan("nokernel", ("pkgc",), "extra"),
    EnvPlan("demo", ("python", "ipykernel"), "projects/demo/.env"),
)
"""The environments :func:`populate_standard_envs` creates, besides the root."""


def populate_standard_envs(inst: CondaInstallation) -> dict[str, Path]:
    """Create :data:`STANDARD_ENVS` in ``inst``; returns name -> prefix."""
    out: dict[str, Path] = {}
    for plan in STANDARD_ENVS:
        if plan.where == "envs":
            out[plan.name] = inst.create_env(plan.name, plan.specs)
        elif plan.where == "extra":
            out[plan.name] = inst.create_env(plan.name, plan.specs, inst.extra_envs_dir)
        else:
            out[plan.name] = inst.create_prefix_env(inst.home / plan.where, plan.specs)
            inst.envs[plan.name] = out[plan.name]
    return out
