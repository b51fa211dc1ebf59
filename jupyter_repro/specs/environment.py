"""The environment.yml model (CEP 24) and its strict and safe parser.

Everything parsed here may come from a stranger (a cloned repository, a notebook's metadata), so
it is treated as data, never as code:

- The size is checked before anything is decoded or parsed (`MAX_SPEC_BYTES`).
- YAML is read event by event with ruamel's pure-Python safe parser; nothing is ever constructed
  from a tag. Only the standard scalar, list and mapping tags are accepted, and `!!python/tuple`
  on a list (old `conda env export` wrote `channels: !!python/tuple`), which is read as a plain
  list; `!!python/object` and every other explicit tag is an error.
- Anchors and aliases are rejected outright. conda never writes them, people do not need them in
  an environment.yml, and refusing them at the first anchor is the simplest bound on alias
  expansion there is: a "billion laughs" document fails after a few events.
- Nesting deeper than an environment.yml can use is rejected, so the tree built here is small and
  built without recursion.

The rules follow conda (and CEP 24, the environment.yml specification): accept what conda
accepts, reject what conda rejects, and say why with a warning wherever conda would silently
drop something:

- Unknown top-level keys (`channel_priority`, `platform`, ...) are ignored with a warning, as
  conda ignores them; a top-level `pip:` is an error, because conda would skip its packages.
- UTF-8 (with or without a byte-order mark) and UTF-16/UTF-32 with a byte-order mark are read.
- pip-style extras on a conda dependency (`dask[complete]`) are dropped with a warning.
- A `name:` conda cannot use (`my env`, `base`) is kept with a warning and `name_problem`: a
  restore can still use the file under another name.
- Files that are something else (a git conflict, an unrendered template, a conda-lock or pixi
  lock file, a conda-build recipe) are refused with a message that says what they are.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Mapping
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

# Hints for unknown top-level keys seen in real files, by the key with '-' written as '_'.
# conda ignores them all; the hint says where the setting belongs instead.
_CONDARC_KEYS = frozenset(
    {
        "channel_priority",
        "channel_alias",
        "default_channels",
        "custom_channels",
        "custom_multichannels",
        "override_channels",
        "ssl_verify",
        "solver",
        "pip_interop_enabled",
        "always_yes",
        "auto_activate_base",
        "envs_dirs",
        "pkgs_dirs",
        "allow_non_channel_urls",
    }
)
_PLATFORM_KEYS = frozenset({"platform", "subdir", "subdirs", "target_platform", "arch"})
_PIP_KEYS = frozenset(
    {
        "repositories",
        "index_url",
        "extra_index_url",
        "find_links",
        "trusted_host",
        "requirements_txt",
    }
)
_PACKAGE_KEYS = frozenset(
    {"requirements", "packages", "deps", "depends", "conda_dependencies", "conda", "run"}
)
_VARIABLE_KEYS = frozenset(
    {"env", "environment", "env_vars", "envvars", "environment_variables", "vars", "envs"}
)
_NOTE_KEYS = frozenset(
    {"description", "summary", "version", "author", "authors", "license", "title", "maintainer"}
)
# Top-level keys of files that are not environment.yml files, recognised so the message can say
# what the file is. A lock file's package list is large, so it is recognised by its first keys,
# before that list is read.
_KIND_KEYS = frozenset(
    {"version", "metadata", "package", "environments", "packages"}  # lock files
    | {"requirements", "outputs", "source", "build", "about"}  # recipes, with `package`
)
# Lines a git merge leaves in a file: markers start a line, seven characters long.
_CONFLICT_MARKER = re.compile(r"^(?:<{7}|>{7})(?:[ \t\r]|$)", re.MULTILINE)
_ANY_CONFLICT_MARKER = re.compile(r"^(?:<{7}|={7}|>{7}|\|{7})(?:[ \t\r]|$)", re.MULTILINE)
# Jinja (cookiecutter, conda-build recipes, copier): `{{ value }}`, `{% statement %}`, `{# #}`.
_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}")
_RECIPE_LINES = (
    re.compile(r"^package:", re.MULTILINE),
    re.compile(r"^requirements:", re.MULTILINE),
)
# pip-style extras after a conda package name: `dask[complete]`, `xarray[io,parallel]>=2023.1`.
# Brackets holding `key=value` (`numpy[version='>=1.20']`) are rattler's and stay as written.
_EXTRAS = re.compile(r"\[([^\[\]=]*)\]")
_EXTRA_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_RENAME_HINT = (
    "give another name to restore it: `--name` on the command line, `name` in the REST "
    "request, or the name field in the restore dialog"
)

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
    name_problem: str | None = None
    """Why the spec's `name:` cannot be an environment's name (`environment_name_problem`, or
    the reserved `base`/`root`); None when it can, or there is no name. The name is kept as
    written: a restore refuses it unless given another name."""


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
        "list is a few kilobytes, so this is probably not one: check that this is the file "
        "you meant",
        source=source,
    )


# Byte-order marks and their codecs; UTF-32 LE (FF FE 00 00) before UTF-16 LE (FF FE).
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
    (b"\xef\xbb\xbf", "utf-8", "UTF-8"),
    (b"\xff\xfe", "utf-16-le", "UTF-16"),
    (b"\xfe\xff", "utf-16-be", "UTF-16"),
)


def _decode(text: str | bytes, *, source: str, max_bytes: int) -> str:
    """Text within the size limit, as `str` without a byte-order mark.

    Bytes are UTF-8, or UTF-16 or UTF-32 with a byte-order mark (PowerShell's `>` writes
    UTF-16); the limit applies to the bytes as given.
    """
    if isinstance(text, str):
        # Every character is at least one byte: a long string fails before being encoded.
        if len(text) > max_bytes:
            raise _too_large(source, f"at least {len(text):,} bytes", max_bytes)
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as error:
            raise SpecError(
                "the text is not valid Unicode (it holds an unpaired surrogate); remove that "
                "character or save the file as UTF-8",
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
    skip, codec, label = 0, "utf-8", "UTF-8"
    for bom, bom_codec, bom_label in _BOMS:
        if data.startswith(bom):
            skip, codec, label = len(bom), bom_codec, bom_label
            break
    else:
        _check_no_bom_wide_text(data, source)
    try:
        return data[skip:].decode(codec)
    except UnicodeDecodeError as error:
        offset = skip + error.start
        line = data[skip:offset].decode(codec, errors="replace").count("\n") + 1
        found = f"byte 0x{data[offset]:02x}" if offset < len(data) else "the end of the file"
        raise SpecError(
            f"not {label} text ({found} at offset {offset}); save the file as UTF-8",
            source=source,
            line=line,
        ) from error


def _check_no_bom_wide_text(data: bytes, source: str) -> None:
    """Refuse UTF-16 or UTF-32 text without a byte-order mark, which reads as NUL-riddled UTF-8."""
    sample = data[:1024]
    nuls = sample.count(0)
    # Text with a NUL in every fourth byte or more is not UTF-8 text with a stray NUL in it.
    if len(sample) < 4 or nuls * 4 < len(sample):
        return
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if even == 0 or odd == 0:
        order = "little-endian" if even == 0 else "big-endian"
        kind = f"UTF-16 ({order}) text without a byte-order mark (every other byte is NUL)"
    else:
        kind = "UTF-16 or UTF-32 text without a byte-order mark (it is full of NUL bytes)"
    raise SpecError(
        f"the file looks like {kind}; save it as UTF-8",
        source=source,
    )


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
    end_line: int | None = None
    """The line a scalar ends on, when it spans several (a wrongly indented `- ` continues it)."""


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
    text: str,
    source: str,
    on_root_key: Callable[[_Value], None] | None = None,
    warn: Callable[[int, str], None] | None = None,
) -> _Value | None:
    """The document's tree, built from parser events without constructing any object.

    `on_root_key` sees each top-level key as soon as it is read, so a file that is wrong from
    its first key fails before the rest of it is parsed. `warn` gets what is accepted but worth
    knowing (a `!!python/tuple` list), with its line.
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
                "thousand at most: check that this is the file you meant",
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
                        "a second YAML document ('---'); an environment.yml is one document: "
                        "delete this '---' line and merge what follows it into the first",
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
                _check_collection_tag(event.tag, kind, source, line, warn)
                if len(stack) >= _MAX_DEPTH:
                    raise SpecError(
                        f"nested too deeply (more than {_MAX_DEPTH} levels); an "
                        "environment.yml needs at most 4: check the indentation and brackets",
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
            f"invalid YAML: {error.reason} character {error.character!r}; remove it (a file "
            "in another encoding than UTF-8 shows up like this too: save it as UTF-8)",
            source=source,
            line=text.count("\n", 0, position) + 1,
        ) from error
    except MarkedYAMLError as error:
        raise _yaml_syntax_error(error, source) from error
    except YAMLError as error:
        raise SpecError(
            f"invalid YAML: {error}; check the indentation and quoting", source=source
        ) from error
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
    end_line = event.end_mark.line + 1 if event.end_mark is not None else line
    return _Value(
        cast(ValueKind, kind),
        line,
        text=event.value,
        end_line=end_line if end_line > line else None,
    )


def _check_collection_tag(
    tag: str | None,
    kind: Literal["seq", "map"],
    source: str,
    line: int,
    warn: Callable[[int, str], None] | None,
) -> None:
    if tag is None or tag == "!" or tag == _YAML_TAG + kind:
        return
    if kind == "seq" and tag == _YAML_TAG + "python/tuple":
        # Old `conda env export` (PyYAML dumping a tuple) wrote `channels: !!python/tuple`.
        # The tag is dropped; the list is read like any other, and nothing is constructed.
        if warn is not None:
            warn(
                line,
                "the `!!python/tuple` tag (written by old versions of `conda env export`) is "
                "ignored and the list read as a plain list; delete the tag to silence this warning",
            )
        return
    raise _tag_error(tag, source, line)


def _tag_error(tag: str, source: str, line: int) -> SpecError:
    shown = "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag
    return SpecError(
        f"YAML tag '{shown}' is not allowed: an environment.yml holds only plain strings, "
        "numbers, lists and mappings, and nothing in it is ever turned into an object; delete "
        f"the '{shown}' and write the value as a plain string or list",
        source=source,
        line=line,
        entry=shown,
    )


def _yaml_syntax_error(error: MarkedYAMLError, source: str) -> SpecError:
    """A YAML syntax error as a message naming the line to fix and how.

    ruamel reports where it gave up (`problem_mark`) and what it was reading then
    (`context_mark`); for an unclosed quote or bracket and a missing ':' the first is the end
    of the file or a later line, and the line to fix is the second.
    """
    problem = error.problem or "syntax error"
    context = error.context or ""
    problem_line = error.problem_mark.line + 1 if error.problem_mark is not None else None
    context_line = error.context_mark.line + 1 if error.context_mark is not None else None
    line = problem_line if problem_line is not None else context_line
    at_end = "end of stream" in problem or "<stream end>" in problem
    if "'\\t'" in problem or "'\t'" in problem:
        message = (
            "a tab character where YAML expects spaces (YAML does not indent with tabs); "
            "replace the tab with spaces"
        )
    elif "could not find expected ':'" in problem:
        line = context_line or line
        message = (
            "this line is neither `key: value` nor `- entry`; add the missing ':' after the key "
            "(as in `dependencies:`) or the missing '- ' before the entry"
        )
    elif "quoted scalar" in context and at_end:
        line = context_line or line
        message = "a quoted string starts on this line and is never closed; add the closing quote"
    elif ("flow sequence" in context or "flow mapping" in context) and (
        at_end or "expected ','" in problem
    ):
        opener, closer = ("[", "]") if "sequence" in context else ("{", "}")
        line = context_line or line
        message = (
            f"the '{opener}' opened on this line is never closed; add the closing '{closer}' "
            "(or write the list one '- ' entry per line)"
        )
    elif "expected <block end>" in problem and "block" in problem.split("found", 1)[-1]:
        message = (
            "this line is indented differently from the entries above it; indent each '- ' "
            "entry of a list by the same number of spaces"
        )
    elif "expected <block end>" in problem:
        message = (
            "unexpected text on this line (after a closing quote, or in a line indented "
            "differently from the ones above it); check its quotes and indentation"
        )
    elif "mapping values are not allowed here" in problem:
        message = (
            "a ': ' where no key can start; check the indentation of this line, or quote a "
            "value that holds ': '"
        )
    elif "sequence entries are not allowed here" in problem:
        message = (
            "a '- ' entry cannot follow a key on the same line; put each '- ' entry on a line "
            "of its own, indented under the key"
        )
    else:
        where = ""
        if context:
            at = f" at line {context_line}" if context_line not in (None, line) else ""
            where = f" ({context}{at})"
        message = f"{problem}{where}; check the indentation and quoting of this line"
    return SpecError(f"invalid YAML: {message}", source=source, line=line)


def _from_data(data: Any, source: str) -> _Value:
    """Plain data (JSON-like) as a located tree without lines, with the YAML path's limits."""
    nodes = 0

    def convert(value: Any, depth: int) -> _Value:
        nonlocal nodes
        nodes += 1
        if nodes > _MAX_NODES:
            raise SpecError(
                f"too many entries (more than {_MAX_NODES:,}); an environment.yml lists a few "
                "thousand at most",
                source=source,
            )
        if depth > _MAX_DEPTH:
            raise SpecError(
                f"nested too deeply (more than {_MAX_DEPTH} levels); an environment.yml needs "
                "at most 4",
                source=source,
            )
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
            f"unsupported value of type {type(value).__name__}; write it as a string, number, "
            "list or mapping",
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
    _check_conflict_markers(decoded, source)
    found = _Findings(source)
    seen: dict[str, _Value] = {}
    try:
        root = _compose(decoded, source, lambda key: _check_root_key(key, seen, found), found.warn)
        parsed = _validate(root, source, comments=_leading_comments(decoded), found=found)
    except _FileKindError:
        raise
    except SpecError as error:
        # A template fails somewhere (often as a YAML error); what to change is to render it.
        template = _template_error(decoded, source)
        if template is not None:
            raise template from error
        raise
    template_at = _template_placeholder(decoded)
    if template_at is None:
        return parsed
    number, placeholder = template_at
    warning = (
        f"line {number}: {_quote(placeholder)} looks like an unrendered template placeholder; "
        "if this file is a template, render it first"
    )
    return replace(parsed, warnings=(*parsed.warnings, warning))


def parse_environment_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> ParsedSpec:
    """Validate plain data (e.g. JSON from notebook metadata) by the environment.yml rules."""
    return _validate(_from_data(data, source), source, comments=(), found=_Findings(source))


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


class _FileKindError(SpecError):
    """The file is something other than an environment.yml; the message says what."""


def _check_conflict_markers(text: str, source: str) -> None:
    """Refuse a file a git merge left conflicted: no YAML error would say so."""
    if _CONFLICT_MARKER.search(text) is None:
        return
    first = _ANY_CONFLICT_MARKER.search(text)
    assert first is not None  # the search above found one
    line_end = text.find("\n", first.start())
    marker = text[first.start() : line_end if line_end >= 0 else len(text)].rstrip()
    raise _FileKindError(
        f"unresolved git merge conflict (the conflict marker {_quote(marker)} is on this "
        "line); resolve the conflict: keep the lines you want and delete the '<<<<<<<', "
        "'=======' and '>>>>>>>' marker lines",
        source=source,
        line=text.count("\n", 0, first.start()) + 1,
        entry=marker,
    )


def _template_placeholder(text: str) -> tuple[int, str] | None:
    """The line and text of the first Jinja placeholder outside a comment, if any."""
    if "{{" not in text and "{%" not in text and "{#" not in text:
        return None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        match = _TEMPLATE.search(line.split(" #", 1)[0])
        if match is not None:
            return number, match.group()
    return None


def _template_error(text: str, source: str) -> SpecError | None:
    found = _template_placeholder(text)
    if found is None:
        return None
    number, placeholder = found
    if all(pattern.search(text) for pattern in _RECIPE_LINES):
        message = (
            f"this is a conda-build recipe (`package:` and `requirements:`, with the Jinja "
            f"template {_quote(placeholder)} on this line), not an environment.yml; build it "
            "with `conda build`, or write an environment.yml that lists its packages under "
            "`dependencies:`"
        )
    else:
        message = (
            f"the file is an unrendered template ({_quote(placeholder)} on this line, as in a "
            "cookiecutter template or a conda-build recipe); render it first, filling in every "
            "'{{ ... }}' and '{% ... %}', and use the rendered file"
        )
    return _FileKindError(message, source=source, line=number, entry=placeholder)


@dataclass
class _Findings:
    """What validation collects besides the spec."""

    source: str
    notes: list[tuple[int | None, str]] = field(default_factory=list)
    pip_options: list[str] = field(default_factory=list)
    pip_urls: list[str] = field(default_factory=list)

    def warn(self, line: int | None, message: str) -> None:
        self.notes.append((line, message))

    @property
    def warnings(self) -> tuple[str, ...]:
        """The warnings in the order of their lines; those without a line last."""
        ordered = sorted(self.notes, key=lambda note: (note[0] is None, note[0] or 0))
        return tuple(
            message if line is None else f"line {line}: {message}" for line, message in ordered
        )

    def error(self, message: str, value: _Value | None, entry: str | None = None) -> SpecError:
        return SpecError(
            message,
            source=self.source,
            line=value.line if value is not None else None,
            entry=entry,
        )


def _validate(
    root: _Value | None, source: str, *, comments: tuple[str, ...], found: _Findings
) -> ParsedSpec:
    if root is None or root.kind == "null":
        raise found.error(
            "the file is empty; write at least a `dependencies:` list, one package per line "
            "as `  - numpy`",
            root,
        )
    if root.kind != "map":
        hint = (
            "; if these are the packages, write `dependencies:` on the line above the list"
            if root.kind == "seq"
            else "; write `dependencies:` followed by the packages, one per line as `  - numpy`"
        )
        raise found.error(
            f"expected a mapping of keys (name, channels, dependencies, variables) at the top "
            f"level, found {_describe(root)}{hint}",
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
    name, name_problem = _name(values["name"], found) if "name" in values else (None, None)
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
                f"`category` must be a string, found {_describe(values['category'])}; write "
                "it as a string, or delete it (it is ignored)",
                values["category"],
            )
        found.warn(keys["category"].line, "`category:` (a conda-lock extension) ignored")
    for key, value in root.pairs:
        if key.text not in _ALL_KEYS:
            found.warn(key.line, _unknown_key_warning(key.text, value))

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
        warnings=found.warnings,
        pip_options=tuple(found.pip_options),
        pip_urls=tuple(found.pip_urls),
        name_problem=name_problem,
    )


def _check_root_key(key: _Value, seen: dict[str, _Value], found: _Findings) -> None:
    """A top-level key must be a string, once, and not one conda would silently skip."""
    if key.kind != "str":
        raise found.error(
            f"top-level keys must be strings, found {_describe(key)}; write a key such as "
            "`dependencies:`, or quote it",
            key,
            key.text,
        )
    if key.text in seen:
        first = seen[key.text].line
        where = f" (first at line {first})" if first is not None else ""
        raise found.error(
            f"duplicate key {_quote(key.text)}{where}; keep one of them (merge their entries)",
            key,
            key.text,
        )
    if key.text == "pip":
        raise found.error(
            "`pip:` at the top level is not read by conda, which would skip these packages "
            "without a word; move it under `dependencies:` as a `- pip:` entry with the pip "
            "packages indented under it (and add `- pip` to the dependencies)",
            key,
            key.text,
        )
    seen[key.text] = key
    if key.text in _KIND_KEYS:
        _check_file_kind(seen, key, found)


def _check_file_kind(seen: Mapping[str, _Value], key: _Value, found: _Findings) -> None:
    """Refuse a lock file or recipe by its top-level keys, as soon as they show what it is."""
    if "version" in seen and "metadata" in seen and "package" in seen:
        message = (
            "this is a conda-lock lock file (`version`, `metadata` and `package` at the top "
            "level), not an environment.yml; create the environment from it with "
            "`conda-lock install --name NAME FILE`, or restore from the environment.yml it "
            "was locked from"
        )
    elif "environments" in seen and ("version" in seen or "packages" in seen):
        message = (
            "this is a pixi lock file (pixi.lock: `version`, `environments` and `packages` at "
            "the top level), not an environment.yml; install it with `pixi install` in the "
            "project that holds its pixi.toml, or restore from an environment.yml"
        )
    elif "package" in seen and any(
        k in seen for k in ("requirements", "outputs", "source", "build", "about")
    ):
        message = (
            "this is a conda-build recipe (`package:` with `requirements:`, `source:` or "
            "`build:`), not an environment.yml; build it with `conda build` or `rattler-build`, "
            "or write an environment.yml that lists its packages under `dependencies:`"
        )
    else:
        return
    raise _FileKindError(message, source=found.source, line=key.line, entry=key.text)


def _unknown_key_warning(key: str, value: _Value) -> str:
    """What to say about a top-level key conda ignores, with a hint where one helps."""
    ignored = f"unknown key {_quote(key)} ignored (conda ignores it too)"
    normal = key.lower().replace("-", "_")
    if normal in _CONDARC_KEYS:
        setting = f" {value.text}" if value.kind in _SCALAR_KINDS and value.text else " VALUE"
        return (
            f"{ignored}: it is a conda setting, which belongs in .condarc "
            f"(`conda config --set {normal}{setting}`)"
        )
    if normal in _PLATFORM_KEYS:
        return f"{ignored}: the environment is built for the platform it is restored on"
    if normal.startswith("pip") or normal in _PIP_KEYS:
        return (
            f"{ignored}: pip packages and pip settings belong in the `- pip:` list under "
            "`dependencies:`, settings as lines such as `--index-url https://...` or "
            "`--extra-index-url https://...`"
        )
    if normal in _PACKAGE_KEYS:
        return f"{ignored}, and so are its packages: list them under `dependencies:`"
    if normal in _VARIABLE_KEYS:
        return f"{ignored}: environment variables belong under `variables:` as NAME: value"
    if normal in _NOTE_KEYS:
        return f"{ignored}: for notes about the environment, use `# ...` comment lines"
    close = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1, cutoff=0.75)
    if close:
        return f"{ignored}, and so is what it holds; did you mean `{close[0]}:`?"
    return f"{ignored}; an environment.yml is read from {', '.join(TOP_LEVEL_KEYS)}"


def _name(value: _Value, found: _Findings) -> tuple[str | None, str | None]:
    """The name as written and why it cannot name an environment (None if it can)."""
    if value.kind == "null":
        return None, None
    if value.kind in ("int", "float"):
        found.warn(
            value.line,
            f"`name` is written as a number ({_shorten(value.text)}) and read as the text "
            f"{_quote(value.text)}, as conda does; quote it to silence this warning: "
            f'name: "{_shorten(value.text)}"',
        )
    elif value.kind in ("seq", "map"):
        raise found.error(
            f"`name` must be a string, found {_describe(value)}; write one name on the same "
            "line, as `name: analysis`",
            value,
            value.text or None,
        )
    elif value.kind != "str":
        raise found.error(
            f"`name` must be a string, found {_describe(value)}; quote it: "
            f'name: "{_shorten(value.text)}"',
            value,
            value.text,
        )
    problem = environment_name_problem(value.text)
    if problem is None and value.text in _RESERVED_NAMES:
        problem = f"{_quote(value.text)} is the name of conda's root environment"
    if problem is not None:
        found.warn(
            value.line,
            f"the name {_quote(value.text)} cannot be used as an environment name: {problem}; "
            f"{_RENAME_HINT}",
        )
    return value.text, problem


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
        raise found.error(
            f"`{key}` must be a list of strings, found {_describe(value)}; write each entry on "
            f"a line of its own under `{key}:`, as `  - conda-forge`",
            value,
        )
    result = []
    for item in value.items:
        if item.kind != "str":
            raise found.error(
                f"every `{key}` entry must be a string, found {_describe(item)}; write it as "
                "a plain string (quoted if need be)",
                item,
                item.text,
            )
        if not item.text.strip() or not item.text.isprintable():
            raise found.error(
                f"`{key}` entry {_quote(item.text)} is empty or holds control characters; "
                "delete it or write the entry out",
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
            f"`dependencies` must be a list, found {_describe(value)}; write each package on a "
            "line of its own under `dependencies:`, as `  - numpy`",
            value,
            value.text or None,
        )
    conda: list[str] = []
    pip: tuple[str, ...] = ()
    pip_seen = False
    pip_line: int | None = None
    for index, item in enumerate(value.items):
        if item.kind == "str":
            conda.append(_conda_dependency(item, found))
        elif item.kind == "map":
            section, entries = _subsection(item, found)
            if pip_seen:
                where = f" (first at line {pip_line})" if pip_line is not None else ""
                raise found.error(
                    f"a second `pip:` section{where}; merge them into one `- pip:` list", section
                )
            pip_seen, pip_line = True, section.line
            pip = _pip_entries(entries, found)
            if entries.kind == "null" and any(i.kind == "str" for i in value.items[index + 1 :]):
                found.warn(
                    section.line,
                    "`- pip:` has nothing under it, so the entries after it are conda "
                    "packages; if they are meant for pip, indent them under `pip:`",
                )
        else:
            raise found.error(
                f"every dependency must be a string (a conda match spec) or a `pip:` list, "
                f"found {_describe(item)}; write it as `- name` (quoted if need be) or as "
                "`- pip:` with the pip entries under it",
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
                "`pip:` sections: move these packages to the conda list or the `pip:` list"
            )
        raise found.error(problem, key, key.text)
    if len(item.pairs) != 1:
        raise found.error(
            "a `dependencies` mapping must hold exactly one `pip:` list; write `- pip:` with "
            "the pip entries under it",
            item,
        )
    return item.pairs[0]


def _split_extras(text: str) -> tuple[str, list[str]]:
    """`text` without pip-style extras brackets (`dask[complete]` -> `dask`), and the brackets.

    An extras bracket holds names separated by commas and no `=`; rattler's own brackets
    (`numpy[version='>=1.20']`, `pkg[extras=[a,b]]`) hold `key=value` and are left alone.
    """
    extras: list[str] = []
    pieces: list[str] = []
    last = 0
    for match in _EXTRAS.finditer(text):
        start = match.start()
        if text.count("[", 0, start) != text.count("]", 0, start):
            continue  # inside another bracket, as in `pkg[extras=[a,b]]`
        names = [name.strip() for name in match.group(1).split(",")]
        if not all(_EXTRA_NAME.fullmatch(name) for name in names):
            continue
        extras.append(match.group())
        before = text[last:start]
        pieces.append(before.rstrip(" ") + " " if before.endswith(" ") else before)
        last = match.end()
    if not extras:
        return text, []
    rest = text[last:]
    pieces.append(rest.lstrip(" ") if pieces[-1].endswith(" ") else rest)
    return "".join(pieces).strip(), extras


def _conda_dependency(item: _Value, found: _Findings) -> str:
    """The dependency to store for a conda entry: as written, less any pip-style extras."""
    text, extras = _split_extras(item.text)
    spec = _check_match_spec(text, item, found)
    if extras:
        shown = ", ".join(_quote(bracket) for bracket in extras)
        found.warn(
            item.line,
            f"extras {shown} dropped from {_quote(item.text)}: conda packages have no extras "
            f"(conda ignores them too), so this is read as {_quote(text)}; for what an extra "
            "adds, list its packages as dependencies, or install the package from the `pip:` "
            "list",
        )
    namespace = getattr(spec, "namespace", None)
    if namespace:
        fixed = text.replace(f"{namespace}:", f"{namespace}::", 1)
        found.warn(
            item.line,
            f"{_quote(text)} has a single ':', which conda reads as a namespace and ignores, so "
            f"the package comes from the `channels:` list; write {_quote(fixed)} to take it "
            f"from {namespace}",
        )
    return text


def _check_match_spec(text: str, item: _Value, found: _Findings) -> Any:
    """`text` (the entry, or the entry less its extras) as a rattler MatchSpec; errors name
    the entry as written."""
    # Imported here: every server start imports this module (through the restore service),
    # and py-rattler costs ~20 ms and ~10 MB that only a spec check needs.
    from rattler import MatchSpec
    from rattler.exceptions import InvalidMatchSpecError

    written = item.text
    try:
        spec = MatchSpec(text)
    except InvalidMatchSpecError as error:
        hint = _continuation_hint(item) or (
            " (a pip-style environment marker, which conda does not have: move this "
            "requirement to the `pip:` list)"
            if ";" in written
            else ""
        )
        raise found.error(
            f"{_quote(written)} is not a valid conda match spec ({_first_line(error)}){hint}; "
            f"expected {_MATCH_SPEC_EXAMPLES}",
            item,
            written,
        ) from error
    # rattler's lenient parser (the one that accepts what conda accepts, such as
    # `pkg=1.0=build_0`) takes anything after the version as a build string; conda's builds
    # are never that, and the usual cause is a missing comma or a pip-style marker.
    build = spec.build
    if build is not None and not _BUILD_STRING.fullmatch(build):
        hint = _continuation_hint(item) or (
            " (move pip-style requirements to the `pip:` list)"
            if ";" in build
            else " (separate version constraints with ',' as in 'numpy>=1.20,<2')"
        )
        raise found.error(
            f"{_quote(written)} is not a valid conda match spec: the build string "
            f"{_quote(build)} is not valid{hint}; expected {_MATCH_SPEC_EXAMPLES}",
            item,
            written,
        )
    return spec


def _continuation_hint(item: _Value) -> str:
    """Why an entry spanning lines holds a ' - ': a `- ` indented deeper than its list."""
    if item.end_line is None or " - " not in item.text:
        return ""
    return (
        f" (it runs on to line {item.end_line}: a '- ' indented deeper than the entries above "
        "it continues the entry before it; indent every '- ' of the list alike)"
    )


def _pip_entries(value: _Value, found: _Findings) -> tuple[str, ...]:
    if value.kind == "null":
        return ()  # `- pip:` with nothing under it; conda drops the empty section
    if value.kind != "seq":
        raise found.error(
            f"`pip:` must be a list of strings, found {_describe(value)}; write each pip entry "
            "on a line of its own, indented under `pip:`, as `      - requests`",
            value,
            value.text,
        )
    entries = []
    for item in value.items:
        if item.kind != "str":
            raise found.error(
                f"every `pip:` entry must be a string, found {_describe(item)}; quote it",
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
            f"pip entry {_quote(item.text)} is empty or holds control characters; delete it or "
            "write the entry out",
            item,
            item.text,
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
        hint = _continuation_hint(item)
        if not hint and _CONDA_PIN.match(requirement_text):
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
        raise found.error(
            f"pip option {_quote(option)} takes no value; put what follows it in an entry of "
            "its own",
            item,
            item.text,
        )
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
                f"after a requirement pip accepts only {', '.join(_PIP_REQUIREMENT_OPTIONS)}; "
                "put it in an entry of its own",
                item,
                item.text,
            )
        if not value:
            raise found.error(
                f"pip option {_quote(option)} needs a value: {option}=VALUE", item, item.text
            )
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
                f"invalid environment marker in {_quote(item.text)} ({_first_line(error)}); "
                "write one such as 'python_version < \"3.12\"' after the ';'",
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
            f"`variables` must be a mapping of NAME: value, found {_describe(value)}; write "
            "each variable on a line of its own under `variables:`, as `  NAME: value`",
            value,
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
            raise found.error(
                f"duplicate variable {_quote(key.text)}{where}; keep one of them", key, key.text
            )
        seen[key.text] = key.line
        if item.kind in ("seq", "map", "null"):
            raise found.error(
                f"variable {_quote(key.text)} must have a string value, found {_describe(item)}; "
                f'write {key.text}: "" for an empty value',
                key if item.kind == "null" else item,
                key.text,
            )
        if "\x00" in item.text:
            raise found.error(
                f"variable {_quote(key.text)} holds a NUL character; delete it", item, key.text
            )
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
