"""What a restore starts from: a lock, an environment.yml, an explicit list, a notebook or a
capsule.

A notebook offers, in this order: its embedded lock, a lock file beside it (`<notebook
stem>.conda-lock.yml`, `conda-lock.yml`, `pixi.lock`, another `*.conda-lock.yml`), its embedded
spec, an `environment.yml` beside it. A lock restores exactly, without a solve; a spec re-solves.
Parsing here only reads and validates; whether the server's policy allows what a source asks
for is the service's decision.

A capsule (`NAME.capsule.tar.zst`, see `specs/capsule.py`) is binary: it is recognised by its
head (zstd magic, a tar whose first member is `capsule.json`) or its suffix before anything
is read as text. Only its manifest and lock are read here (checked against each other); the
restore extracts the archives, and removes them, itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..specs.environment import (
    EnvironmentSpec,
    ParsedSpec,
    parse_environment_dict,
    parse_environment_yaml,
    read_spec_file,
)
from ..specs.explicit import ExplicitEntry, parse_explicit
from ..specs.lock import (
    CONDA_LOCK_NAMES,
    MAX_LOCK_BYTES,
    PIXI_LOCK_NAME,
    Lock,
    lock_format_of,
    looks_like_lock,
    parse_embedded_lock,
    parse_lock_text,
)
from .errors import RestoreError

if TYPE_CHECKING:
    from ..specs.capsule import Manifest, MissingPackage

# The capsule reader (zstandard, the manifest's checks) is imported when a file may be one.
SourceKind = Literal["yaml", "explicit", "notebook", "lock", "capsule"]
_EXPLICIT_MARKER = "@EXPLICIT"


@dataclass(frozen=True)
class RestoreSource:
    """What to restore from, parsed and validated but not yet checked against policy."""

    kind: SourceKind
    origin: str
    """The file path, or `<content>`, for messages."""
    spec: EnvironmentSpec | None = None
    explicit: tuple[ExplicitEntry, ...] = ()
    platform: str | None = None
    warnings: tuple[str, ...] = ()
    pip_options: tuple[str, ...] = ()
    pip_urls: tuple[str, ...] = ()
    lock: Lock | None = None
    """For `kind == "lock"`: the lock; `spec` then holds its portable spec (for policy checks
    and for the dated solve of a platform the lock lacks). For `kind == "capsule"`: the
    capsule's lock, with the URLs of the original channels."""
    capsule: Path | None = None
    """For `kind == "capsule"`: the capsule file (extracted when the restore runs)."""
    capsule_platforms: tuple[str, ...] = ()
    """The platforms the capsule holds packages for."""
    capsule_missing: tuple[MissingPackage, ...] = ()
    """Packages of the capsule's lock that were not packed, and why."""
    capsule_notebooks: tuple[str, ...] = ()
    """The capsule's notebooks (`notebooks/<file>.ipynb`)."""
    capsule_md5: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    """Lock URL -> the md5 the capsule's manifest gives its archive (when the lock had it)."""
    archives: Mapping[str, Path] = field(default_factory=dict, hash=False, compare=False)
    """Set by the restore once the capsule is extracted: lock URL -> the extracted archive."""
    wheels: Path | None = None
    """Set by the restore once the capsule is extracted: the folder of its wheels."""


def _is_explicit(text: str) -> bool:
    """The first line that is neither blank nor a comment is `@EXPLICIT`."""
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            return line == _EXPLICIT_MARKER
    return False


def _from_parsed(
    kind: SourceKind, origin: str, parsed: ParsedSpec, platform: str | None = None
) -> RestoreSource:
    return RestoreSource(
        kind=kind,
        origin=origin,
        spec=parsed.spec,
        platform=platform,
        warnings=parsed.warnings,
        pip_options=parsed.pip_options,
        pip_urls=parsed.pip_urls,
    )


def _from_lock(lock: Lock, origin: str, warnings: tuple[str, ...] = ()) -> RestoreSource:
    spec = EnvironmentSpec(
        name=lock.name,
        channels=lock.channels,
        dependencies=lock.conda_specs,
        pip=lock.pip_specs,
    )
    return RestoreSource(
        kind="lock", origin=origin, spec=spec, lock=lock, warnings=warnings + lock.notes
    )


def _source_from_text(
    data: bytes | str, origin: str, *, kind: str | None = None, environment: str = "default"
) -> RestoreSource:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    if kind is not None or looks_like_lock(text):
        lock = parse_lock_text(data, source=origin, kind=kind, environment=environment)
        return _from_lock(lock, origin)
    if _is_explicit(text):
        platform, entries = parse_explicit(data, source=origin)
        return RestoreSource(
            kind="explicit", origin=origin, explicit=tuple(entries), platform=platform
        )
    return _from_parsed("yaml", origin, parse_environment_yaml(data, source=origin))


def looks_like_capsule(path: Path) -> bool:
    """A capsule by its name (`*.capsule.tar.zst`) or by its head (a tar, zstd-compressed or
    not, whose first member is `capsule.json`); reads a few KB, never raises."""
    from ..specs.capsule import CAPSULE_SUFFIX, is_capsule

    return path.name.endswith(CAPSULE_SUFFIX) or is_capsule(path)


def _source_from_capsule(path: Path) -> RestoreSource:
    """The capsule's lock as a source; only the head of the file is read (the manifest and
    the lock, checked against each other: CapsuleError, a SpecError, when they disagree)."""
    origin = str(path)
    from ..specs.capsule import read_capsule_head

    manifest, lock = read_capsule_head(path)
    base = _from_lock(lock, origin)
    return RestoreSource(
        kind="capsule",
        origin=origin,
        spec=base.spec,
        lock=lock,
        capsule=path,
        capsule_platforms=tuple(manifest.platforms),
        capsule_missing=tuple(manifest.missing),
        capsule_notebooks=tuple(manifest.notebooks),
        capsule_md5=_manifest_md5(manifest, lock),
    )


def _manifest_md5(manifest: Manifest, lock: Lock) -> dict[str, str]:
    """Lock URL -> the manifest's md5 of that package's archive (matched by member path)."""
    from ..specs.capsule import conda_member

    by_member = {c.path: c.md5 for c in manifest.conda if c.md5}
    return {
        package.url: by_member[member]
        for part in lock.platforms
        for package in part.conda
        if (member := conda_member(package)) in by_member
    }


def sibling_lock(notebook: Path) -> Path | None:
    """The lock file beside a notebook that a restore would use, if there is one."""
    folder = notebook.parent
    candidates = [folder / f"{notebook.stem}.conda-lock.yml"]
    candidates += [folder / name for name in (*CONDA_LOCK_NAMES, PIXI_LOCK_NAME)]
    try:
        others = sorted(p for p in folder.glob("*.conda-lock.y*ml") if p not in candidates)
    except OSError:
        others = []
    for path in [*candidates, *others]:
        if _inside_folder(path, folder):
            return path
    return None


def _inside_folder(path: Path, folder: Path) -> bool:
    """`path` is a regular file that is (or links to a file) in `folder` itself: a link out
    of the notebook's folder is not followed (it could reach outside the server root)."""
    try:
        if not path.is_file():
            return False
        return path.resolve().parent == folder.resolve()
    except OSError:
        return False


def _source_from_notebook(path: Path, environment: str = "default") -> RestoreSource:
    from ..notebooks.embedded import METADATA_KEY, NotebookError, read_notebook

    origin = str(path)
    try:
        notebook = read_notebook(path)
    except NotebookError as error:
        raise RestoreError(f"{origin}: {error}") from error
    embedded = notebook.get("metadata", {}).get(METADATA_KEY)
    embedded = embedded if isinstance(embedded, dict) else {}
    if isinstance(embedded.get("lock"), dict):
        where = f"{origin}: metadata.{METADATA_KEY}.lock"
        return _from_lock(parse_embedded_lock(embedded["lock"], source=where), origin)
    lock_file = sibling_lock(path)
    if lock_file is not None:
        data = read_spec_file(lock_file, max_bytes=MAX_LOCK_BYTES)
        kind = lock_format_of(lock_file)
        return _source_from_text(data, str(lock_file), kind=kind, environment=environment)
    environment_data = embedded.get("environment")
    if isinstance(environment_data, dict):
        exported = embedded.get("exported")
        platform = exported.get("platform") if isinstance(exported, dict) else None
        where = f"{origin}: metadata.{METADATA_KEY}.environment"
        parsed = parse_environment_dict(environment_data, source=where)
        return _from_parsed(
            "notebook", origin, parsed, platform if isinstance(platform, str) else None
        )
    for name in ("environment.yml", "environment.yaml"):
        beside = path.parent / name
        if _inside_folder(beside, path.parent):
            data = read_spec_file(beside)
            return _from_parsed(
                "yaml", str(beside), parse_environment_yaml(data, source=str(beside))
            )
    raise RestoreError(
        f"notebook has no embedded environment or lock ({origin}: no metadata."
        f"{METADATA_KEY}.environment or .lock) and no lock file or environment.yml beside it; "
        "export or lock the environment from the notebook's kernel first"
    )


def load_source(
    *,
    file: Path | None = None,
    content: str | None = None,
    notebook: Path | None = None,
    lock_environment: str = "default",
) -> RestoreSource:
    """Parse one source: a lock, an environment.yml, an explicit list, a notebook or a
    capsule.

    A `file` ending in `.ipynb` is read as a notebook, a capsule (by its suffix or head) as a
    capsule; `lock_environment` chooses the environment of a pixi.lock. Raises `SpecError`
    for an invalid spec, lock or capsule and `RestoreError` for a notebook with nothing to
    restore from.
    """
    given = [v for v in (file, content, notebook) if v is not None]
    if len(given) != 1:
        raise RestoreError("give exactly one source: a file, a notebook or the spec's content")
    if notebook is not None:
        return _source_from_notebook(Path(notebook), lock_environment)
    if file is not None:
        path = Path(file)
        if path.suffix == ".ipynb":
            return _source_from_notebook(path, lock_environment)
        if looks_like_capsule(path):
            return _source_from_capsule(path)
        kind = lock_format_of(path)
        limit = MAX_LOCK_BYTES if kind is not None else None
        data = (
            read_spec_file(path, source=str(path))
            if limit is None
            else read_spec_file(path, source=str(path), max_bytes=limit)
        )
        return _source_from_text(data, str(path), kind=kind, environment=lock_environment)
    assert content is not None
    return _source_from_text(content, "<content>", environment=lock_environment)
