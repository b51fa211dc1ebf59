"""What a restore starts from: an environment.yml, an explicit list or a notebook, parsed.

Parsing here only reads and validates; whether the server's policy allows what a source asks
for is the service's decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..specs.environment import (
    EnvironmentSpec,
    ParsedSpec,
    parse_environment_dict,
    parse_environment_yaml,
    read_spec_file,
)
from ..specs.explicit import ExplicitEntry, parse_explicit
from .errors import RestoreError

SourceKind = Literal["yaml", "explicit", "notebook"]
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


def _source_from_text(data: bytes | str, origin: str) -> RestoreSource:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    if _is_explicit(text):
        platform, entries = parse_explicit(data, source=origin)
        return RestoreSource(
            kind="explicit", origin=origin, explicit=tuple(entries), platform=platform
        )
    return _from_parsed("yaml", origin, parse_environment_yaml(data, source=origin))


def _source_from_notebook(path: Path) -> RestoreSource:
    from ..notebooks.embedded import METADATA_KEY, NotebookError, read_notebook

    origin = str(path)
    try:
        notebook = read_notebook(path)
    except NotebookError as error:
        raise RestoreError(f"{origin}: {error}") from error
    embedded = notebook.get("metadata", {}).get(METADATA_KEY)
    environment = embedded.get("environment") if isinstance(embedded, dict) else None
    if not isinstance(environment, dict):
        raise RestoreError(
            f"notebook has no embedded environment ({origin}: no metadata.{METADATA_KEY}"
            ".environment); export one from the notebook's kernel first, or restore from an "
            "environment.yml"
        )
    exported = embedded.get("exported") if isinstance(embedded, dict) else None
    platform = exported.get("platform") if isinstance(exported, dict) else None
    where = f"{origin}: metadata.{METADATA_KEY}.environment"
    parsed = parse_environment_dict(environment, source=where)
    return _from_parsed("notebook", origin, parsed, platform if isinstance(platform, str) else None)


def load_source(
    *, file: Path | None = None, content: str | None = None, notebook: Path | None = None
) -> RestoreSource:
    """Parse one source: an environment.yml, an explicit list, or a notebook's embedded spec.

    A `file` ending in `.ipynb` is read as a notebook. Raises `SpecError` for an invalid spec
    and `RestoreError` for a notebook without an embedded environment.
    """
    given = [v for v in (file, content, notebook) if v is not None]
    if len(given) != 1:
        raise RestoreError("give exactly one source: a file, a notebook or the spec's content")
    if notebook is not None:
        return _source_from_notebook(Path(notebook))
    if file is not None:
        path = Path(file)
        if path.suffix == ".ipynb":
            return _source_from_notebook(path)
        return _source_from_text(read_spec_file(path, source=str(path)), str(path))
    assert content is not None
    return _source_from_text(content, "<content>")
