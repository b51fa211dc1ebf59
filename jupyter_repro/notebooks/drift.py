"""Drift: how far the live environment of a notebook's kernel is from the notebook's spec.

The spec is the one embedded in the notebook (`metadata.jupyter_repro`), else a sibling
`environment.yml`. The comparison, by package name:

- A dependency pinned as `name=version` (portable, no-builds) or `name=version=build`
  (exact) compares its version (and build) with the installed record: a difference is
  *changed* `{name, spec_version, installed_version}`. Any other dependency (`name`,
  `name>=1`, ...) compares by presence only.
- *removed*: names the spec asks for that are not installed.
- *added*: for a spec that lists every package (mode `exact` or `no-builds`), every
  installed package it does not name; for a portable spec (and a sibling file, whose mode is
  unknown) only packages the user requested (conda's history or the records' requested
  specs, the same source a portable export uses) that the spec does not name, so a
  dependency pulled in by a requested package never counts.
- pip entries `name==version` compare with the pip-installed distributions the same way;
  installed pip distributions the spec does not name are added (every export lists them).
  pip names appear as `pip:<name>` in the lists.

`missing_environment` when the kernel does not resolve on this machine (or its prefix is
gone); `no_spec` when there is neither an embedded spec nor a sibling file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..environments.history import spec_name
from ..environments.prefix import Prefix, normalize_dist_name
from ..environments.spec import EnvironmentSpec, parse_environment_file
from .embedded import METADATA_KEY, read_embedded, read_notebook
from .environment import KernelNotResolved, kernel_environment

DriftStatus = Literal["in_sync", "drifted", "missing_environment", "no_spec"]

COMPLETE_MODES = frozenset({"exact", "no-builds"})
"""Export modes whose spec names every conda package of the environment."""

PIP_PREFIX = "pip:"

# `=1.2.3`, `==1.2.3`, `=1.2.3=build`: an exact pin (no wildcard, range or alternative).
_PIN = re.compile(r"={1,2}(?P<version>[^=<>!~*|,\s]+)(?:=(?P<build>[^=<>!~*|,\s]+))?")
_PIP_PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(?P<version>[^\s;,=<>!~]+)")
_PIP_NAME = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class Changed:
    name: str
    spec_version: str
    installed_version: str

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "spec_version": self.spec_version,
            "installed_version": self.installed_version,
        }


@dataclass(frozen=True)
class Drift:
    status: DriftStatus
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[Changed, ...] = field(default=())
    message: str | None = None
    """Why the status is `missing_environment` or `no_spec`."""

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "status": self.status,
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": [c.to_json() for c in self.changed],
        }
        if self.message is not None:
            document["message"] = self.message
        return document


@dataclass(frozen=True)
class _Wanted:
    version: str | None
    build: str | None


def _conda_wanted(dependency: str) -> tuple[str, _Wanted] | None:
    name = spec_name(dependency)
    if name is None:
        return None
    text = dependency.strip()
    if "::" in text.split("[", 1)[0]:
        text = text[text.index("::") + 2 :].lstrip()
    rest = text[len(name) :].strip() if text.lower().startswith(name) else ""
    pin = _PIN.fullmatch(rest)
    if pin is None:
        return name, _Wanted(None, None)
    return name, _Wanted(pin.group("version"), pin.group("build"))


def _pip_wanted(entry: str) -> tuple[str, _Wanted] | None:
    text = entry.strip()
    if not text or text.startswith("-") or "://" in text or "@" in text:
        return None
    pin = _PIP_PIN.fullmatch(text)
    if pin is not None:
        return normalize_dist_name(pin.group("name")), _Wanted(pin.group("version"), None)
    name = _PIP_NAME.match(text)
    return (normalize_dist_name(name.group("name")), _Wanted(None, None)) if name else None


def compare(spec: EnvironmentSpec, prefix: Path, mode: str | None = None) -> Drift:
    """The drift of the environment at `prefix` from `spec` (exported in `mode`, if known)."""
    environment = Prefix(prefix)
    added: list[str] = []
    removed: list[str] = []
    changed: list[Changed] = []

    if environment.is_conda():
        records = environment.conda_records()
        installed = {r.name: r for r in records}
        wanted = dict(w for w in map(_conda_wanted, spec.dependencies) if w is not None)
        for name, want in sorted(wanted.items()):
            record = installed.get(name)
            if record is None:
                removed.append(name)
            elif want.version is not None and (
                want.version != record.version or (want.build not in (None, record.build))
            ):
                with_build = want.build is not None
                changed.append(
                    Changed(
                        name,
                        f"{want.version}={want.build}" if with_build else want.version,
                        f"{record.version}={record.build}" if with_build else record.version,
                    )
                )
        if mode in COMPLETE_MODES:
            candidates = set(installed)
        else:
            candidates = set(environment.requested_specs(records)) & set(installed)
        added += sorted(candidates - set(wanted))

    pip_installed = {
        normalize_dist_name(d.name): d
        for d in environment.pip_distributions()
        if d.requirement is not None  # editable and local installs are never exported
    }
    pip_wanted = dict(w for w in map(_pip_wanted, spec.pip) if w is not None)
    for name, want in sorted(pip_wanted.items()):
        distribution = pip_installed.get(name)
        if distribution is None:
            removed.append(PIP_PREFIX + name)
        elif want.version is not None and want.version != distribution.version:
            changed.append(Changed(PIP_PREFIX + name, want.version, distribution.version))
    added += [PIP_PREFIX + n for n in sorted(set(pip_installed) - set(pip_wanted))]

    status: DriftStatus = "drifted" if added or removed or changed else "in_sync"
    return Drift(status, tuple(added), tuple(removed), tuple(changed))


def notebook_drift(notebook_path: Path, kernel_specs: Any, sibling: Path | None) -> Drift:
    """The drift of the notebook's kernel environment from its embedded spec, else from
    `sibling` (an environment.yml beside it, already checked to be one the caller may read)."""
    notebook = read_notebook(notebook_path)
    spec = read_embedded(notebook_path)
    mode: str | None = None
    if spec is not None:
        exported = notebook["metadata"][METADATA_KEY].get("exported")
        found = exported.get("mode") if isinstance(exported, dict) else None
        mode = found if isinstance(found, str) else None
    elif sibling is not None:
        spec = parse_environment_file(sibling).spec
    else:
        return Drift(
            "no_spec",
            message="the notebook has no embedded spec and no environment.yml beside it",
        )
    try:
        environment = kernel_environment(notebook, kernel_specs, notebook_path.name)
    except KernelNotResolved as error:
        return Drift("missing_environment", message=str(error))
    if not environment.prefix.is_dir():
        return Drift(
            "missing_environment",
            message=f"the environment of the kernel {environment.kernel!r} is gone",
        )
    return compare(spec, environment.prefix, mode)
