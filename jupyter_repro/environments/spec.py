"""The environment.yml model, its strict and safe parser, and conda's `@EXPLICIT` package lists.

Everything parsed here may come from a stranger (a cloned repository, a notebook's metadata), so
it is treated as data, never as code:

- The size is checked before anything is decoded or parsed (`MAX_SPEC_BYTES`).
- YAML is read event by event with ruamel's pure-Python safe parser; nothing is ever constructed
  from a tag. Only the standard scalar, list and mapping tags are accepted; `!!python/...` and
  every other explicit tag is an error.
- Anchors and aliases are rejected outright. conda never writes them, people do not need them in
  an environment.yml, and refusing them at the first anchor is the simplest bound on alias
  expansion there is: a "billion laughs" document fails after a few events.
- Nesting deeper than an environment.yml can use is rejected, so the tree built here is small and
  built without recursion.

The rules follow conda (and CEP 24, the environment.yml specification): accept what conda
accepts, reject what conda rejects. Where conda only prints a warning, this module is stricter
when a silent mistake would cost a reproduction: unknown top-level keys are errors, not
warnings. The keys conda and CEP 24 know but this project does not use (`prefix`, `platforms`,
`category`) are ignored with a warning.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    MappingEndEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import VersionedResolver

MAX_SPEC_BYTES = 1_000_000
"""Default size limit for an environment.yml or explicit list; real ones are a few kilobytes."""

# The deepest an environment.yml goes is 4 (top mapping > dependencies > pip mapping > pip
# list); the margin lets the error name the offending entry rather than the nesting.
_MAX_DEPTH = 6
# The pure-Python parser costs tens of microseconds per node; a 1,500-package export has about
# 2,000 nodes. The budget keeps a hostile file within the size limit to a fraction of a second.
_MAX_NODES = 20_000

TOP_LEVEL_KEYS = ("name", "channels", "dependencies", "variables")
"""The keys this project reads from an environment.yml, in the order they are written."""

IGNORED_KEYS = ("prefix", "platforms", "category")
"""Keys conda or CEP 24 define that are accepted but ignored, each with a warning."""

_ALL_KEYS = TOP_LEVEL_KEYS + IGNORED_KEYS

# conda refuses these characters in an environment name (PREFIX_NAME_DISALLOWED_CHARS); a
# name also becomes a directory name, so control characters and other whitespace go too.
_NAME_FORBIDDEN = frozenset("/ :#")
_RESERVED_NAMES = ("base", "root")
# Portable on POSIX and Windows (CEP 24 recommends it), and never a way to smuggle shell syntax
# into an activation script.
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A conda build string: letters, digits, `_`, `.`, `+`, with `*` globs; or a `^...$` regex.
_BUILD_STRING = re.compile(r"[A-Za-z0-9_.+*]+|\^.*\$")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
_ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".tar")
# A requirement line may end with options of its own (`pkg==1 --hash=sha256:...`).
_TRAILING_OPTIONS = re.compile(r"\s(--[A-Za-z].*)$")
_CONDA_PIN = re.compile(r"[A-Za-z0-9._-]+=[^=]")

# pip options a requirements list may hold, and whether each takes a value. This is the set
# pip's own requirements-file parser accepts on a line of its own.
_PIP_LINE_OPTIONS: dict[str, bool] = {
    "-i": True,
    "--index-url": True,
    "--extra-index-url": True,
    "--no-index": False,
    "-c": True,
    "--constraint": True,
    "-r": True,
    "--requirement": True,
    "-e": True,
    "--editable": True,
    "-f": True,
    "--find-links": True,
    "--no-binary": True,
    "--only-binary": True,
    "--prefer-binary": False,
    "--require-hashes": False,
    "--pre": False,
    "--trusted-host": True,
    "--use-feature": True,
}
# Options pip accepts after a requirement on the same line; all take a value.
_PIP_REQUIREMENT_OPTIONS = ("--hash", "--config-settings", "--global-option")

_MATCH_SPEC_EXAMPLES = (
    "a conda match spec such as 'numpy', 'numpy>=1.20,<2', 'numpy=1.26.4=py311h64a7726_0' "
    "or 'conda-forge::numpy'"
)
_PIP_EXAMPLES = (
    "a pip requirement such as 'requests>=2.31', 'name @ https://...', a URL or a local path, "
    "or a pip option such as '--index-url https://...'"
)

_YAML_TAG = "tag:yaml.org,2002:"
_SCALAR_KINDS = {"str", "int", "float", "bool", "null", "timestamp"}

ValueKind = Literal["str", "int", "float", "bool", "null", "timestamp", "seq", "map"]


class SpecError(ValueError):
    """A spec that cannot be used; `str(error)` is a complete message a person can act on."""

    source: str
    line: int | None
    entry: str | None
    message: str

    def __init__(
        self,
        message: str,
        *,
        source: str,
        line: int | None = None,
        entry: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.entry = entry
        where = source if line is None else f"{source}, line {line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class EnvironmentSpec:
    """One environment.yml: what to install, from where, with which variables.

    Lists given as lists (and `variables` given as a mapping) are stored as tuples, so specs
    compare and hash by value.
    """

    name: str | None = None
    channels: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    """conda match specs, as written."""
    pip: tuple[str, ...] = ()
    """pip requirement lines and option lines, as written; empty means no pip section."""
    variables: tuple[tuple[str, str], ...] = ()
    comments: tuple[str, ...] = ()
    """Lines written as `# ...` at the top of the YAML (without the `# `)."""

    def __post_init__(self) -> None:
        # Tolerate lists and dicts from callers; equality and hashing need tuples.
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "dependencies", tuple(self.dependencies))
        object.__setattr__(self, "pip", tuple(self.pip))
        variables: Any = self.variables
        pairs = variables.items() if isinstance(variables, Mapping) else variables
        object.__setattr__(self, "variables", tuple((k, v) for k, v in pairs))
        object.__setattr__(self, "comments", tuple(self.comments))

    def to_dict(self) -> dict[str, Any]:
        """The environment.yml as plain data; empty parts are left out, except `dependencies`."""
        data: dict[str, Any] = {}
        if self.name is not None:
            data["name"] = self.name
        if self.channels:
            data["channels"] = list(self.channels)
        dependencies: list[Any] = list(self.dependencies)
        if self.pip:
            dependencies.append({"pip": list(self.pip)})
        data["dependencies"] = dependencies
        if self.variables:
            data["variables"] = dict(self.variables)
        return data

    def to_yaml(self) -> str:
        """The environment.yml text: same spec, same bytes; never a `prefix:` line."""
        lines = [
            f"# {line}" if line else "#"
            for comment in self.comments
            for line in comment.splitlines() or [""]
        ]
        if self.name is not None:
            lines.append(f"name: {_yaml_scalar(self.name)}")
        if self.channels:
            lines.append("channels:")
            lines.extend(f"  - {_yaml_scalar(channel)}" for channel in self.channels)
        if self.dependencies or self.pip:
            lines.append("dependencies:")
            lines.extend(f"  - {_yaml_scalar(spec)}" for spec in self.dependencies)
            if self.pip:
                lines.append("  - pip:")
                lines.extend(f"      - {_yaml_scalar(entry)}" for entry in self.pip)
        else:
            lines.append("dependencies: []")
        if self.variables:
            lines.append("variables:")
            lines.extend(
                f"  {_yaml_scalar(key)}: {_yaml_scalar(value)}" for key, value in self.variables
            )
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        """The environment.yml as JSON (the form embedded in notebook metadata)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> EnvironmentSpec:
        """Validate plain data (e.g. JSON from notebook metadata) by the environment.yml rules."""
        return parse_environment_dict(data, source=source).spec


@dataclass(frozen=True)
class ParsedSpec:
    """A validated spec with what a restore must know before trusting it."""

    spec: EnvironmentSpec
    warnings: tuple[str, ...] = ()
    """Things ignored or worth knowing, e.g. "line 7: `prefix:` ignored: ..."."""
    pip_options: tuple[str, ...] = ()
    """pip option lines (`--index-url ...`, `-e ...`, ...) and requirements carrying build
    options; a restore refuses them unless allowed."""
    pip_urls: tuple[str, ...] = ()
    """pip entries that are URLs, local paths or `name @ url` references."""


@dataclass(frozen=True)
class ExplicitEntry:
    """One line of an `@EXPLICIT` list: a package URL and its checksum."""

    url: str
    """Full package URL; tokens and credentials already removed by the caller."""
    md5: str | None = None
    sha256: str | None = None


# --------------------------------------------------------------------------------------------
# Writing YAML scalars

# The layout is fixed, so the YAML is written line by line; only scalars need YAML's rules.
# Almost every entry (`numpy>=1.20,<2`, `pkg=1.0=build_0`, `name @ git+https://...`) can stay
# unquoted, which is decided here without ruamel's emitter (ten times slower, and an export of
# a large environment would notice); the rest is quoted. A plain candidate is printable ASCII
# that starts with no YAML indicator and holds no `: ` or ` #`; it stays plain only if YAML
# reads it back as that same string, not as a number, boolean, date or null. Both YAML 1.2
# (ruamel, conda) and YAML 1.1 (PyYAML, used by conda-lock and older tools, where `yes`, `off`
# and `1:20` are not strings) are asked.
_PLAIN_CANDIDATE = re.compile(r"[A-Za-z0-9_./(~$^+][\x20-\x7e]*")


@cache
def _resolvers() -> tuple[Any, Any]:
    return VersionedResolver(version=(1, 2)), VersionedResolver(version=(1, 1))


# Every implicitly typed plain scalar (number, date, bool, null, merge, value) starts with one
# of these in YAML 1.1 or 1.2; anything else is a string without asking the resolvers.
_TYPED_FIRST_CHARS = frozenset("0123456789+-.~<=nNtTfFyYoO")


def _reads_as_string(text: str) -> bool:
    if text[:1] not in _TYPED_FIRST_CHARS:
        return True
    return all(
        str(resolver.resolve(ScalarNode, text, (True, False))) == _YAML_TAG + "str"
        for resolver in _resolvers()
    )


def _yaml_scalar(text: str) -> str:
    """`text` as a one-line YAML scalar that reads back as exactly `text`."""
    if (
        _PLAIN_CANDIDATE.fullmatch(text)
        and not text.endswith((" ", ":"))
        and ": " not in text
        and " #" not in text
        and _reads_as_string(text)
    ):
        return text
    if text.isprintable():
        # In single quotes only the quote itself is special.
        return "'" + text.replace("'", "''") + "'"
    return _double_quoted(text)


# Escapes YAML and Python spell alike; everything else unprintable becomes \x, \u or \U.
_SHORT_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0"}


def _double_quoted(text: str) -> str:
    """A YAML double-quoted scalar with every unprintable character escaped.

    Line breaks, tabs and control characters, and also NEL and the Unicode line separators,
    which YAML would otherwise read as line breaks.
    """
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Reading text safely


def read_spec_file(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_SPEC_BYTES, source: str | None = None
) -> bytes:
    """The bytes of a spec file, refusing one larger than `max_bytes` before reading it."""
    name = source if source is not None else os.fspath(path)
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > max_bytes:
                raise _too_large(name, f"{size:,} bytes", max_bytes)
            # A pipe or a file that grows reports a size that cannot be trusted: read one byte
            # past the limit to notice.
            data = stream.read(max_bytes + 1)
    except OSError as error:
        raise SpecError(f"cannot read the file: {error.strerror or error}", source=name) from error
    if len(data) > max_bytes:
        raise _too_large(name, f"more than {max_bytes:,} bytes", max_bytes)
    return data


def parse_environment_file(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_SPEC_BYTES
) -> ParsedSpec:
    """Read and parse an environment.yml file (see `parse_environment_yaml`)."""
    source = Path(path).name or os.fspath(path)
    data = read_spec_file(path, max_bytes=max_bytes, source=source)
    return parse_environment_yaml(data, source=source, max_bytes=max_bytes)


def _too_large(source: str, size: str, max_bytes: int) -> SpecError:
    return SpecError(
        f"too large ({size}, the limit is {max_bytes:,} bytes); an environment.yml or package "
        "list is a few kilobytes, so this is probably not one",
        source=source,
    )


def _decode(text: str | bytes, *, source: str, max_bytes: int) -> str:
    """Text within the size limit, as `str` without a byte-order mark."""
    if isinstance(text, str):
        # Every character is at least one byte: a long string fails before being encoded.
        if len(text) > max_bytes:
            raise _too_large(source, f"at least {len(text):,} bytes", max_bytes)
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as error:
            raise SpecError(
                "the text is not valid Unicode (it holds an unpaired surrogate)",
                source=source,
                line=text.count("\n", 0, error.start) + 1,
            ) from error
        if size > max_bytes:
            raise _too_large(source, f"{size:,} bytes", max_bytes)
        return text.removeprefix("\ufeff")
    if not isinstance(text, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected str or bytes, not {type(text).__name__}")
    data = bytes(text) if not isinstance(text, bytes) else text
    if len(data) > max_bytes:
        raise _too_large(source, f"{len(data):,} bytes", max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SpecError(
            f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "save the file as UTF-8",
            source=source,
            line=data.count(b"\n", 0, error.start) + 1,
        ) from error


# --------------------------------------------------------------------------------------------
# A small located tree, built from YAML events or from plain data, validated by one set of rules


@dataclass(frozen=True)
class _Value:
    kind: ValueKind
    line: int | None
    text: str = ""
    """A scalar's text as written (YAML) or its string form (plain data)."""
    items: tuple[_Value, ...] = ()
    pairs: tuple[tuple[_Value, _Value], ...] = ()


_KIND_NAMES: dict[str, str] = {
    "str": "a string",
    "int": "a number",
    "float": "a number",
    "bool": "true/false",
    "null": "nothing",
    "timestamp": "a date",
    "seq": "a list",
    "map": "a mapping",
}


def _describe(value: _Value) -> str:
    if value.kind in ("seq", "map", "null"):
        return _KIND_NAMES[value.kind]
    return f"{_KIND_NAMES[value.kind]} ({_shorten(value.text)})"


@dataclass
class _Open:
    """A list or mapping whose end event has not come yet."""

    kind: Literal["seq", "map"]
    line: int
    children: list[_Value] = field(default_factory=list)


def _compose(
    text: str, source: str, on_root_key: Callable[[_Value], None] | None = None
) -> _Value | None:
    """The document's tree, built from parser events without constructing any object.

    `on_root_key` sees each top-level key as soon as it is read, so a file that is wrong from
    its first key fails before the rest of it is parsed.
    """
    yaml = YAML(typ="safe", pure=True)
    resolver = yaml.resolver
    stack: list[_Open] = []
    root: _Value | None = None
    documents = 0
    nodes = 0

    def attach(value: _Value) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        parent = stack[-1]
        if (
            on_root_key is not None
            and len(stack) == 1
            and parent.kind == "map"
            and len(parent.children) % 2 == 0
        ):
            on_root_key(value)
        parent.children.append(value)

    def count(line: int) -> None:
        nonlocal nodes
        nodes += 1
        if nodes > _MAX_NODES:
            raise SpecError(
                f"too many entries (more than {_MAX_NODES:,}); an environment.yml lists a few "
                "thousand at most",
                source=source,
                line=line,
            )

    try:
        for event in yaml.parse(text):
            line = event.start_mark.line + 1
            if isinstance(event, AliasEvent):
                raise SpecError(
                    f"YAML alias '*{_shorten(event.anchor)}' is not allowed: write the value out "
                    "(anchors and aliases are refused so a file cannot expand without bound)",
                    source=source,
                    line=line,
                    entry=f"*{event.anchor}",
                )
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                raise SpecError(
                    f"YAML anchor '&{_shorten(anchor)}' is not allowed: write the value out "
                    "(anchors and aliases are refused so a file cannot expand without bound)",
                    source=source,
                    line=line,
                    entry=f"&{anchor}",
                )
            if isinstance(event, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise SpecError(
                        "a second YAML document ('---'); an environment.yml is one document",
                        source=source,
                        line=line,
                    )
            elif isinstance(event, ScalarEvent):
                count(line)
                attach(_scalar(event, resolver, source, line))
            elif isinstance(event, CollectionStartEvent):
                count(line)
                kind: Literal["seq", "map"] = (
                    "seq" if isinstance(event, SequenceStartEvent) else "map"
                )
                _check_collection_tag(event.tag, kind, source, line)
                if len(stack) >= _MAX_DEPTH:
                    raise SpecError(
                        f"nested too deeply (more than {_MAX_DEPTH} levels); an "
                        "environment.yml needs at most 4",
                        source=source,
                        line=line,
                    )
                stack.append(_Open(kind, line))
            elif isinstance(event, (SequenceEndEvent, MappingEndEvent)):
                done = stack.pop()
                if done.kind == "seq":
                    attach(_Value("seq", done.line, items=tuple(done.children)))
                else:
                    keys, values = done.children[::2], done.children[1::2]
                    attach(_Value("map", done.line, pairs=tuple(zip(keys, values, strict=True))))
    except ReaderError as error:
        # Raised for characters YAML forbids (NUL, most control characters).
        position = max(0, min(error.position, len(text)))
        raise SpecError(
            f"invalid YAML: {error.reason} character {error.character!r}",
            source=source,
            line=text.count("\n", 0, position) + 1,
        ) from error
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or "syntax error"
        context = f" ({error.context})" if error.context else ""
        raise SpecError(
            f"invalid YAML: {problem}{context}",
            source=source,
            line=mark.line + 1 if mark is not None else None,
        ) from error
    except YAMLError as error:
        raise SpecError(f"invalid YAML: {error}", source=source) from error
    return root


def _scalar(event: ScalarEvent, resolver: Any, source: str, line: int) -> _Value:
    tag = event.tag
    if tag is None:
        # Plain scalars get their type from their text (`1.10` is a float, `true` a bool);
        # quoted ones are strings.
        tag = str(resolver.resolve(ScalarNode, event.value, event.implicit))
    elif tag == "!":
        tag = _YAML_TAG + "str"
    kind = tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else None
    if kind == "merge":
        kind = "str"  # a plain `<<`: without an alias it is just text
    if kind not in _SCALAR_KINDS:
        raise _tag_error(tag, source, line)
    return _Value(cast(ValueKind, kind), line, text=event.value)


def _check_collection_tag(
    tag: str | None, kind: Literal["seq", "map"], source: str, line: int
) -> None:
    if tag is None or tag == "!" or tag == _YAML_TAG + kind:
        return
    raise _tag_error(tag, source, line)


def _tag_error(tag: str, source: str, line: int) -> SpecError:
    shown = "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag
    return SpecError(
        f"YAML tag '{shown}' is not allowed: an environment.yml holds only plain strings, "
        "numbers, lists and mappings, and nothing in it is ever turned into an object",
        source=source,
        line=line,
        entry=shown,
    )


def _from_data(data: Any, source: str) -> _Value:
    """Plain data (JSON-like) as a located tree without lines, with the YAML path's limits."""
    nodes = 0

    def convert(value: Any, depth: int) -> _Value:
        nonlocal nodes
        nodes += 1
        if nodes > _MAX_NODES:
            raise SpecError(f"too many entries (more than {_MAX_NODES:,})", source=source)
        if depth > _MAX_DEPTH:
            raise SpecError(f"nested too deeply (more than {_MAX_DEPTH} levels)", source=source)
        if value is None:
            return _Value("null", None)
        if isinstance(value, bool):
            return _Value("bool", None, text="true" if value else "false")
        if isinstance(value, str):
            return _Value("str", None, text=value)
        if isinstance(value, int):
            return _Value("int", None, text=str(value))
        if isinstance(value, float):
            return _Value("float", None, text=repr(value))
        if isinstance(value, Mapping):
            pairs = tuple(
                (convert(key, depth + 1), convert(item, depth + 1)) for key, item in value.items()
            )
            return _Value("map", None, pairs=pairs)
        if isinstance(value, (list, tuple)):
            return _Value("seq", None, items=tuple(convert(item, depth + 1) for item in value))
        raise SpecError(
            f"unsupported value of type {type(value).__name__}; expected strings, numbers, "
            "lists and mappings",
            source=source,
        )

    return convert(data, 0)


# --------------------------------------------------------------------------------------------
# The environment.yml rules


def parse_environment_yaml(
    text: str | bytes, *, source: str = "environment.yml", max_bytes: int = MAX_SPEC_BYTES
) -> ParsedSpec:
    """Parse and validate untrusted environment.yml text; `SpecError` names line and entry."""
    decoded = _decode(text, source=source, max_bytes=max_bytes)
    early = _Findings(source)
    seen: dict[str, _Value] = {}
    root = _compose(decoded, source, lambda key: _check_root_key(key, seen, early))
    return _validate(root, source, comments=_leading_comments(decoded))


def parse_environment_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> ParsedSpec:
    """Validate plain data (e.g. JSON from notebook metadata) by the environment.yml rules."""
    return _validate(_from_data(data, source), source, comments=())


def _leading_comments(text: str) -> tuple[str, ...]:
    """The `# ...` lines opening the file (blank lines between them are skipped)."""
    comments: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            body = line[1:]
            comments.append(body[1:] if body.startswith(" ") else body)
        elif line.strip():
            break
    return tuple(comments)


@dataclass
class _Findings:
    """What validation collects besides the spec."""

    source: str
    warnings: list[str] = field(default_factory=list)
    pip_options: list[str] = field(default_factory=list)
    pip_urls: list[str] = field(default_factory=list)

    def warn(self, line: int | None, message: str) -> None:
        self.warnings.append(message if line is None else f"line {line}: {message}")

    def error(self, message: str, value: _Value | None, entry: str | None = None) -> SpecError:
        return SpecError(
            message,
            source=self.source,
            line=value.line if value is not None else None,
            entry=entry,
        )


def _validate(root: _Value | None, source: str, *, comments: tuple[str, ...]) -> ParsedSpec:
    found = _Findings(source)
    if root is None or root.kind == "null":
        raise found.error(
            "the file is empty; expected a mapping with at least a `dependencies:` list", root
        )
    if root.kind != "map":
        raise found.error(
            f"expected a mapping of keys (name, channels, dependencies, variables) at the top "
            f"level, found {_describe(root)}",
            root,
        )

    seen: dict[str, _Value] = {}
    for key, _ in root.pairs:
        _check_root_key(key, seen, found)

    # An empty value's position is where the next token starts; the key's line is the one a
    # person needs to see.
    values = {
        key.text: replace(value, line=key.line) if value.kind == "null" else value
        for key, value in root.pairs
    }
    keys = {key.text: key for key, _ in root.pairs}
    name = _name(values["name"], found) if "name" in values else None
    channels = _strings(values["channels"], "channels", found) if "channels" in values else ()
    if "dependencies" in values:
        dependencies, pip = _dependencies(values["dependencies"], found)
    else:
        dependencies, pip = (), ()
        found.warn(None, "no `dependencies:` list: the environment would be empty")
    variables = _variables(values["variables"], found) if "variables" in values else ()
    if "prefix" in values:
        found.warn(
            keys["prefix"].line,
            "`prefix:` ignored: an environment.yml never decides where files go",
        )
    if "platforms" in values:
        _strings(values["platforms"], "platforms", found)
        found.warn(
            keys["platforms"].line,
            "`platforms:` (a conda-lock extension) ignored: the environment is built for "
            "the platform it is restored on",
        )
    if "category" in values:
        if values["category"].kind != "str":
            raise found.error(
                f"`category` must be a string, found {_describe(values['category'])}",
                values["category"],
            )
        found.warn(keys["category"].line, "`category:` (a conda-lock extension) ignored")

    spec = EnvironmentSpec(
        name=name,
        channels=channels,
        dependencies=dependencies,
        pip=pip,
        variables=variables,
        comments=comments,
    )
    return ParsedSpec(
        spec=spec,
        warnings=tuple(found.warnings),
        pip_options=tuple(found.pip_options),
        pip_urls=tuple(found.pip_urls),
    )


def _check_root_key(key: _Value, seen: dict[str, _Value], found: _Findings) -> None:
    """A top-level key must be a known string, once."""
    if key.kind != "str":
        raise found.error(f"top-level keys must be strings, found {_describe(key)}", key, key.text)
    if key.text in seen:
        first = seen[key.text].line
        where = f" (first at line {first})" if first is not None else ""
        raise found.error(f"duplicate key {_quote(key.text)}{where}", key, key.text)
    if key.text not in _ALL_KEYS:
        raise found.error(
            f"unknown key {_quote(key.text)}; expected one of: {', '.join(_ALL_KEYS)}",
            key,
            key.text,
        )
    seen[key.text] = key


def _name(value: _Value, found: _Findings) -> str | None:
    if value.kind == "null":
        return None
    if value.kind != "str":
        raise found.error(
            f"`name` must be a string, found {_describe(value)}; quote it: "
            f'name: "{_shorten(value.text)}"',
            value,
            value.text,
        )
    problem = environment_name_problem(value.text)
    if problem is not None:
        raise found.error(
            f"invalid environment name {_quote(value.text)}: {problem}", value, value.text
        )
    if value.text in _RESERVED_NAMES:
        found.warn(
            value.line,
            f"name {_quote(value.text)} is conda's root environment; restore it under another name",
        )
    return value.text


def environment_name_problem(name: str) -> str | None:
    """Why conda would refuse `name` as an environment name, or None when it is fine."""
    if not name.strip():
        return "it is empty"
    if name in (".", ".."):
        return "'.' and '..' are not names"
    bad = sorted(
        {ch for ch in name if ch in _NAME_FORBIDDEN or ch.isspace() or not ch.isprintable()}
    )
    if bad:
        shown = ", ".join("space" if ch == " " else repr(ch) for ch in bad)
        return f"it contains {shown}; a name cannot contain '/', ':', '#' or whitespace"
    return None


def _strings(value: _Value, key: str, found: _Findings) -> tuple[str, ...]:
    if value.kind != "seq":
        raise found.error(f"`{key}` must be a list of strings, found {_describe(value)}", value)
    result = []
    for item in value.items:
        if item.kind != "str":
            raise found.error(
                f"every `{key}` entry must be a string, found {_describe(item)}", item, item.text
            )
        if not item.text.strip() or not item.text.isprintable():
            raise found.error(
                f"`{key}` entry {_quote(item.text)} is empty or holds control characters",
                item,
                item.text,
            )
        result.append(item.text)
    return tuple(result)


def _dependencies(value: _Value, found: _Findings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if value.kind == "null":
        return (), ()  # `dependencies:` with nothing after it; conda reads it as empty
    if value.kind != "seq":
        raise found.error(
            f"`dependencies` must be a list, found {_describe(value)}", value, value.text or None
        )
    conda: list[str] = []
    pip: tuple[str, ...] = ()
    pip_seen = False
    pip_line: int | None = None
    for item in value.items:
        if item.kind == "str":
            _check_match_spec(item, found)
            conda.append(item.text)
        elif item.kind == "map":
            section, entries = _subsection(item, found)
            if pip_seen:
                where = f" (first at line {pip_line})" if pip_line is not None else ""
                raise found.error(f"a second `pip:` section{where}; merge them", section)
            pip_seen, pip_line = True, section.line
            pip = _pip_entries(entries, found)
        else:
            raise found.error(
                f"every dependency must be a string (a conda match spec) or a `pip:` list, "
                f"found {_describe(item)}",
                item,
                item.text or None,
            )
    return tuple(conda), pip


def _subsection(item: _Value, found: _Findings) -> tuple[_Value, _Value]:
    """The `pip:` key and its value of a mapping in `dependencies`."""
    for key, _ in item.pairs:
        if key.kind == "str" and key.text == "pip":
            continue
        if key.kind == "str" and key.text.startswith("sel("):
            problem = (
                f"{_quote(key.text)} is a micromamba selector, which conda does not support; "
                "list the dependency for every platform or keep separate files"
            )
        else:
            problem = (
                f"unknown section {_quote(key.text)} in `dependencies`; conda installs only "
                "`pip:` sections"
            )
        raise found.error(problem, key, key.text)
    if len(item.pairs) != 1:
        raise found.error("a `dependencies` mapping must hold exactly one `pip:` list", item)
    return item.pairs[0]


def _check_match_spec(item: _Value, found: _Findings) -> None:
    # Imported here: every server start imports this module (through the restore service),
    # and py-rattler costs ~20 ms and ~10 MB that only a spec check needs.
    from rattler import MatchSpec
    from rattler.exceptions import InvalidMatchSpecError

    text = item.text
    try:
        spec = MatchSpec(text)
    except InvalidMatchSpecError as error:
        raise found.error(
            f"{_quote(text)} is not a valid conda match spec ({_first_line(error)}); expected "
            f"{_MATCH_SPEC_EXAMPLES}",
            item,
            text,
        ) from error
    # rattler's lenient parser (the one that accepts what conda accepts, such as
    # `pkg=1.0=build_0`) takes anything after the version as a build string; conda's builds
    # are never that, and the usual cause is a missing comma or a pip-style marker.
    build = spec.build
    if build is not None and not _BUILD_STRING.fullmatch(build):
        hint = (
            " (move pip-style requirements to the `pip:` list)"
            if ";" in build
            else " (separate version constraints with ',' as in 'numpy>=1.20,<2')"
        )
        raise found.error(
            f"{_quote(text)} is not a valid conda match spec: the build string "
            f"{_quote(build)} is not valid{hint}; expected {_MATCH_SPEC_EXAMPLES}",
            item,
            text,
        )


def _pip_entries(value: _Value, found: _Findings) -> tuple[str, ...]:
    if value.kind == "null":
        return ()  # `- pip:` with nothing under it; conda drops the empty section
    if value.kind != "seq":
        raise found.error(
            f"`pip:` must be a list of strings, found {_describe(value)}", value, value.text
        )
    entries = []
    for item in value.items:
        if item.kind != "str":
            raise found.error(
                f"every `pip:` entry must be a string, found {_describe(item)}",
                item,
                item.text or None,
            )
        _check_pip_entry(item, found)
        entries.append(item.text)
    return tuple(entries)


def _check_pip_entry(item: _Value, found: _Findings) -> None:
    text = item.text.strip()
    if not text or not text.isprintable():
        raise found.error(
            f"pip entry {_quote(item.text)} is empty or holds control characters", item, item.text
        )
    if text.startswith("-"):
        _check_pip_option(text, item, found)
        found.pip_options.append(item.text)
        return

    requirement_text, options = text, ""
    trailing = _TRAILING_OPTIONS.search(text)
    if trailing is not None:
        requirement_text, options = text[: trailing.start()].strip(), trailing.group(1)
        if _check_requirement_options(options, item, found):
            # `--config-settings` and `--global-option` change how a package is built.
            found.pip_options.append(item.text)

    try:
        requirement = Requirement(requirement_text)
    except InvalidRequirement as error:
        if _is_url_or_path(requirement_text, item, found):
            found.pip_urls.append(item.text)
            return
        hint = ""
        if _CONDA_PIN.match(requirement_text):
            hint = " (pip pins with '==': the conda form 'name=1.0' does not work for pip)"
        raise found.error(
            f"{_quote(item.text)} is not a valid pip requirement ({_first_line(error)}){hint}; "
            f"expected {_PIP_EXAMPLES}",
            item,
            item.text,
        ) from error
    # pip reads a bare name ending like an archive (`pkg-1.0.whl`) as a local file.
    if requirement.url is not None or requirement_text.lower().endswith(_ARCHIVE_SUFFIXES):
        found.pip_urls.append(item.text)


def _check_pip_option(text: str, item: _Value, found: _Findings) -> None:
    head, _, rest = text.partition(" ")
    rest = rest.strip()
    if head.startswith("--"):
        option, equals, attached = head.partition("=")
        value = attached if equals else rest
        extra = rest if equals else ""
    else:
        option, attached = head[:2], head[2:]
        value = attached or rest
        extra = rest if attached else ""
    if option not in _PIP_LINE_OPTIONS:
        known = ", ".join(sorted(_PIP_LINE_OPTIONS, key=lambda o: o.lstrip("-")))
        raise found.error(
            f"unknown pip option {_quote(option)} in {_quote(item.text)}; "
            f"a pip list accepts: {known}",
            item,
            item.text,
        )
    takes_value = _PIP_LINE_OPTIONS[option]
    if takes_value and not value:
        raise found.error(
            f"pip option {_quote(option)} needs a value: {option} VALUE", item, item.text
        )
    if not takes_value and value:
        raise found.error(f"pip option {_quote(option)} takes no value", item, item.text)
    if extra:
        raise found.error(
            f"unexpected text {_quote(extra)} after {option} {value}; put one option per entry",
            item,
            item.text,
        )


def _check_requirement_options(options: str, item: _Value, found: _Findings) -> bool:
    """Validate `--hash=...` and friends after a requirement; True if any changes a build."""
    changes_build = False
    tokens = options.split()
    index = 0
    while index < len(tokens):
        option, equals, value = tokens[index].partition("=")
        if not equals and index + 1 < len(tokens) and not tokens[index + 1].startswith("--"):
            index += 1
            value = tokens[index]
        index += 1
        if option not in _PIP_REQUIREMENT_OPTIONS:
            raise found.error(
                f"pip option {_quote(option)} cannot follow a requirement in {_quote(item.text)}; "
                f"after a requirement pip accepts only {', '.join(_PIP_REQUIREMENT_OPTIONS)}",
                item,
                item.text,
            )
        if not value:
            raise found.error(f"pip option {_quote(option)} needs a value", item, item.text)
        if option != "--hash":
            changes_build = True
    return changes_build


def _is_url_or_path(text: str, item: _Value, found: _Findings) -> bool:
    """Whether pip would read `text` as a URL or a local path (pip accepts both)."""
    # `URL ; marker` is how pip puts an environment marker on a URL.
    location, semicolon, marker = text.partition(" ;")
    location = location.strip()
    if semicolon:
        try:
            Marker(marker.strip())
        except InvalidMarker as error:
            raise found.error(
                f"invalid environment marker in {_quote(item.text)} ({_first_line(error)})",
                item,
                item.text,
            ) from error
    if _URL.fullmatch(location):
        return True
    if location.startswith(("./", "../", "/", "~", "\\", "file:")) or location in (".", ".."):
        return True
    if _WINDOWS_DRIVE.match(location):
        return True
    single_token = not any(ch.isspace() for ch in location)
    return single_token and (
        "/" in location or "\\" in location or location.lower().endswith(_ARCHIVE_SUFFIXES)
    )


def _variables(value: _Value, found: _Findings) -> tuple[tuple[str, str], ...]:
    if value.kind == "null":
        return ()
    if value.kind != "map":
        raise found.error(
            f"`variables` must be a mapping of NAME: value, found {_describe(value)}", value
        )
    result: list[tuple[str, str]] = []
    seen: dict[str, int | None] = {}
    for key, item in value.pairs:
        if key.kind != "str" or not _VARIABLE_NAME.fullmatch(key.text):
            raise found.error(
                f"invalid variable name {_quote(key.text)}; expected letters, digits and '_', "
                "not starting with a digit",
                key,
                key.text,
            )
        if key.text in seen:
            first = seen[key.text]
            where = f" (first at line {first})" if first is not None else ""
            raise found.error(f"duplicate variable {_quote(key.text)}{where}", key, key.text)
        seen[key.text] = key.line
        if item.kind in ("seq", "map", "null"):
            raise found.error(
                f"variable {_quote(key.text)} must have a string value, found {_describe(item)}; "
                f'write {key.text}: "" for an empty value',
                key if item.kind == "null" else item,
                key.text,
            )
        if "\x00" in item.text:
            raise found.error(f"variable {_quote(key.text)} holds a NUL character", item, key.text)
        # The text as written: `1.10` stays "1.10", not the float 1.1.
        result.append((key.text, item.text))
    return tuple(result)


def _shorten(text: str, limit: int = 120) -> str:
    """User text cut short for a message; the whole entry is on the error's `entry`."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _quote(text: str, limit: int = 120) -> str:
    """`repr` of user text for a message, cut short like `_shorten`."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


# --------------------------------------------------------------------------------------------
# Explicit package lists (`conda list --explicit`)

_EXPLICIT_MARKER = "@EXPLICIT"
_PLATFORM_COMMENT = re.compile(r"#\s*platform:\s*(\S+)\s*")
_PACKAGE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s#]+(?:\.conda|\.tar\.bz2)")
_MD5 = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PLATFORM = re.compile(r"[a-z0-9]+(?:-[a-z0-9_]+)?")
# Anaconda tokens live in a `/t/<token>/` path segment; credentials in the URL's user part.
_TOKEN_SEGMENT = re.compile(r"/t/[^/]+/")
_USERINFO = re.compile(r"://[^/@]*@")


def render_explicit(
    entries: Sequence[ExplicitEntry], *, platform: str, comments: Sequence[str] = ()
) -> str:
    """An `@EXPLICIT` list as `conda list --explicit --md5` writes it; entries in order."""
    source = "explicit package list"
    if not _PLATFORM.fullmatch(platform):
        raise SpecError(
            f"invalid platform {_quote(platform)}; expected a conda subdir such as 'linux-64'",
            source=source,
            entry=platform,
        )
    lines = [
        "# This file may be used to create an environment using:",
        "# $ conda create --name <env> --file <this file>",
        f"# platform: {platform}",
    ]
    for comment in comments:
        lines.extend(f"# {line}" if line else "#" for line in comment.splitlines() or [""])
    lines.append(_EXPLICIT_MARKER)
    lines.extend(explicit_urls(entries))
    return "\n".join(lines) + "\n"


def _render_entry(entry: ExplicitEntry, source: str) -> str:
    # Refusing here rather than trusting the caller: a token in an exported file is a leak.
    # Checked first so that no message below can repeat one.
    if _TOKEN_SEGMENT.search(entry.url) or _USERINFO.search(entry.url):
        raise SpecError(
            "the URL carries a channel token or credentials; remove them before exporting",
            source=source,
            entry=_redact(entry.url),
        )
    if not _PACKAGE_URL.fullmatch(entry.url):
        raise SpecError(
            f"{_quote(entry.url)} is not a package URL ending in .conda or .tar.bz2",
            source=source,
            entry=entry.url,
        )
    # md5 first: every conda version reads it, while `sha256:` needs conda 23.x or later.
    if entry.md5 is not None:
        if not _MD5.fullmatch(entry.md5):
            raise SpecError(
                f"invalid md5 {_quote(entry.md5)} for {entry.url}; expected 32 lowercase "
                "hex digits",
                source=source,
                entry=entry.url,
            )
        return f"{entry.url}#{entry.md5}"
    if entry.sha256 is not None:
        if not _SHA256.fullmatch(entry.sha256):
            raise SpecError(
                f"invalid sha256 {_quote(entry.sha256)} for {entry.url}; expected 64 lowercase hex "
                "digits",
                source=source,
                entry=entry.url,
            )
        return f"{entry.url}#sha256:{entry.sha256}"
    return entry.url


def _redact(url: str) -> str:
    return _USERINFO.sub("://***@", _TOKEN_SEGMENT.sub("/t/***/", url))


def parse_explicit(
    text: str | bytes, *, source: str = "explicit.txt", max_bytes: int = MAX_SPEC_BYTES
) -> tuple[str | None, list[ExplicitEntry]]:
    """The platform (from `# platform:`) and entries of an `@EXPLICIT` list.

    Like conda, every line that is not blank, a comment or the marker must be a package URL,
    optionally followed by `#<md5>`, `#sha256:<sha256>` or `#<sha256>`.
    """
    decoded = _decode(text, source=source, max_bytes=max_bytes)
    platform: str | None = None
    marker_seen = False
    entries: list[ExplicitEntry] = []
    for number, raw in enumerate(decoded.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            match = _PLATFORM_COMMENT.fullmatch(line)
            if match is not None and platform is None:
                platform = match.group(1)
            continue
        if line == _EXPLICIT_MARKER:
            marker_seen = True
            continue
        entries.append(_parse_explicit_line(line, number, source))
    if not marker_seen:
        raise SpecError(
            f"no {_EXPLICIT_MARKER} line: this is not an explicit package list "
            "(`conda list --explicit` writes one before the package URLs)",
            source=source,
        )
    return platform, entries


def _parse_explicit_line(line: str, number: int, source: str) -> ExplicitEntry:
    url, hashed, digest = line.partition("#")
    if not _PACKAGE_URL.fullmatch(url):
        raise SpecError(
            f"{_quote(line)} is not a package URL; expected 'https://.../name-version-build.conda' "
            "(or .tar.bz2), optionally followed by '#<md5>' or '#sha256:<sha256>'",
            source=source,
            line=number,
            entry=line,
        )
    if not hashed:
        return ExplicitEntry(url)
    if _MD5.fullmatch(digest):
        return ExplicitEntry(url, md5=digest)
    sha256 = digest.removeprefix("sha256:")
    if _SHA256.fullmatch(sha256):
        return ExplicitEntry(url, sha256=sha256)
    raise SpecError(
        f"invalid checksum '#{_shorten(digest)}'; expected '#' and 32 lowercase hex digits "
        "(md5) or '#sha256:' and 64 lowercase hex digits",
        source=source,
        line=number,
        entry=line,
    )


def explicit_urls(entries: Iterable[ExplicitEntry]) -> list[str]:
    """Each entry checked and written as conda reads it: `url#md5`, `url#sha256:...` or `url`.

    The lines of `render_explicit`, also the form for `metadata.jupyter_repro.explicit`.
    """
    return [_render_entry(entry, "explicit package list") for entry in entries]
