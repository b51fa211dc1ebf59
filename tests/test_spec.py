"""environment.yml model and its strict, safe parser; conda's `@EXPLICIT` package lists."""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from pathlib import Path

import pytest

from jupyter_repro.specs.environment import (
    MAX_SPEC_BYTES,
    EnvironmentSpec,
    ParsedSpec,
    SpecError,
    environment_name_problem,
    parse_environment_dict,
    parse_environment_file,
    parse_environment_yaml,
    read_spec_file,
)
from jupyter_repro.specs.explicit import (
    ExplicitEntry,
    explicit_urls,
    parse_explicit,
    render_explicit,
)

MD5 = "0123456789abcdef0123456789abcdef"
SHA256 = "0123456789abcdef" * 4
URL = "https://conda.anaconda.org/conda-forge/linux-64/numpy-1.26.4-py311h64a7726_0.conda"

# What `conda env export` writes: build strings, a pip section and the `prefix:` line that
# leaks a local path.
CONDA_EXPORT = """\
name: analysis
channels:
  - conda-forge
  - defaults
dependencies:
  - _libgcc_mutex=0.1=conda_forge
  - ca-certificates=2024.2.2=hbcca054_0
  - numpy=1.26.4=py311h64a7726_0
  - python=3.11.8=hab00c5b_0_cpython
  - pip=24.0=pyhd8ed1ab_0
  - pip:
      - requests==2.31.0
      - tomli==2.0.1
prefix: /home/someone/miniconda3/envs/analysis
"""

# What people write by hand: comments, loose pins, channel prefixes, pip extras and markers,
# variables of several YAML types.
HAND_WRITTEN = """\
# Environment for the paper figures.
# Rebuild with: conda env create -f environment.yml

name: paper-figures
channels:
  - conda-forge
  - nodefaults
dependencies:
  - python=3.11          # the kernel
  - numpy>=1.20,<2
  - conda-forge::scipy
  - "matplotlib 3.8.*"
  - python-dateutil
  - pip
  - pip:
    - requests[socks]>=2.31; python_version >= "3.9"
    - black==24.2.0
variables:
  OMP_NUM_THREADS: 4
  RATIO: 1.10
  DEBUG: false
  DATA_DIR: /data/paper
"""


def error_of(text: str | bytes, **kwargs: object) -> SpecError:
    """The SpecError parsing `text` raises (the test fails if it parses)."""
    with pytest.raises(SpecError) as info:
        parse_environment_yaml(text, **kwargs)  # type: ignore[arg-type]
    return info.value


# ------------------------------------------------------------------------------------------
# The model and its dumping


ROUND_TRIP_SPECS = [
    EnvironmentSpec(),
    EnvironmentSpec(name="minimal", dependencies=("python=3.11",)),
    EnvironmentSpec(
        name="full",
        channels=("conda-forge", "https://repo.example.org/channel", "bioconda"),
        dependencies=(
            "python=3.11.8=hab00c5b_0_cpython",
            "numpy>=1.20,<2",
            "conda-forge::scipy",
            "python 3.11.* *_cpython",
            "pip",
        ),
        pip=(
            "requests==2.31.0",
            "foo @ git+https://github.com/org/foo@v1.2#egg=foo",
            "--extra-index-url https://pypi.example.org/simple",
            'attrs>=23; python_version < "3.12"',
        ),
        variables=(
            ("B_FIRST", "1.10"),
            ("A_SECOND", "true"),
            ("EMPTY", ""),
            ("DATE", "2024-01-01"),
        ),
        comments=("exported by jupyter-repro 0.1.0", "mode: exact"),
    ),
    EnvironmentSpec(
        name="quoting",
        dependencies=("python",),
        variables=(
            ("COLON", "a: b"),
            ("HASH", "# not a comment"),
            ("LEADING", " spaced "),
            ("MULTI", "line one\nline two"),
            ("UNICODE", "naïve ☃"),
            ("NULLISH", "null"),
            ("QUOTES", 'it\'s "quoted"'),
            ("YAML11_BOOL", "yes"),
            ("YAML11_OFF", "Off"),
            ("SEXAGESIMAL", "1:20"),
            ("LINE_BREAKS", "nel\x85ls\u2028ps\u2029tab\tcr\r"),
            ("INVISIBLE", "\ufeffbom\xa0nbsp\x1bescape"),
            ("ASTRAL", "\U0001f600"),
            ("BACKSLASH", "C:\\path\\"),
        ),
        comments=("", "a comment with: colon and # hash"),
    ),
    EnvironmentSpec(name="2024", dependencies=("python",)),
]


@pytest.mark.parametrize("spec", ROUND_TRIP_SPECS, ids=lambda s: s.name or "empty")
def test_to_yaml_parses_back_to_an_equal_spec(spec: EnvironmentSpec) -> None:
    text = spec.to_yaml()
    parsed = parse_environment_yaml(text)
    assert parsed.spec == spec
    assert text.endswith("\n")
    assert "prefix:" not in text


@pytest.mark.parametrize("spec", ROUND_TRIP_SPECS, ids=lambda s: s.name or "empty")
def test_to_yaml_is_deterministic(spec: EnvironmentSpec) -> None:
    first = spec.to_yaml()
    rebuilt = EnvironmentSpec(**{f: getattr(spec, f) for f in spec.__dataclass_fields__})
    assert rebuilt.to_yaml() == first
    assert parse_environment_yaml(first).spec.to_yaml() == first


def test_to_yaml_layout_is_condas() -> None:
    spec = EnvironmentSpec(
        name="demo",
        channels=("conda-forge",),
        dependencies=("python=3.11", "numpy>=1.20,<2"),
        pip=("requests==2.31.0",),
        variables=(("MODE", "fast"), ("THREADS", "4")),
        comments=("made by a test",),
    )
    assert spec.to_yaml() == (
        "# made by a test\n"
        "name: demo\n"
        "channels:\n"
        "  - conda-forge\n"
        "dependencies:\n"
        "  - python=3.11\n"
        "  - numpy>=1.20,<2\n"
        "  - pip:\n"
        "      - requests==2.31.0\n"
        "variables:\n"
        "  MODE: fast\n"
        "  THREADS: '4'\n"
    )


def test_to_yaml_reads_back_the_same_in_yaml_1_1() -> None:
    # PyYAML (conda-lock, older tools) reads YAML 1.1, where yes/off/1:20 are not strings.
    pyyaml = pytest.importorskip("yaml")
    spec = ROUND_TRIP_SPECS[3]
    assert pyyaml.safe_load(spec.to_yaml())["variables"] == dict(spec.variables)


def test_to_yaml_quotes_only_what_yaml_requires() -> None:
    spec = EnvironmentSpec(
        dependencies=("python 3.11.* *_cpython", "conda-forge::numpy", "*weird"),
        variables=(("A", "no"), ("B", "plain text"), ("C", "x: y"), ("D", "1.10")),
    )
    assert spec.to_yaml() == (
        "dependencies:\n"
        "  - python 3.11.* *_cpython\n"
        "  - conda-forge::numpy\n"
        "  - '*weird'\n"
        "variables:\n"
        "  A: 'no'\n"
        "  B: plain text\n"
        "  C: 'x: y'\n"
        "  D: '1.10'\n"
    )


def test_to_yaml_never_folds_a_long_url() -> None:
    url = "https://example.org/" + "x" * 500 + ".whl"
    text = EnvironmentSpec(dependencies=("pip",), pip=(url,)).to_yaml()
    assert f"      - {url}\n" in text


def test_to_dict_leaves_out_empty_parts_but_keeps_dependencies() -> None:
    assert EnvironmentSpec().to_dict() == {"dependencies": []}
    spec = EnvironmentSpec(name="x", dependencies=("python",), pip=("a",), variables=(("K", "v"),))
    assert spec.to_dict() == {
        "name": "x",
        "dependencies": ["python", {"pip": ["a"]}],
        "variables": {"K": "v"},
    }
    assert list(spec.to_dict()) == ["name", "dependencies", "variables"]


def test_to_json_parses_back_through_from_dict() -> None:
    spec = ROUND_TRIP_SPECS[2]
    text = spec.to_json()
    assert text.endswith("}\n")
    assert list(json.loads(text)) == ["name", "channels", "dependencies", "variables"]
    # Comments live only in the YAML header.
    assert EnvironmentSpec.from_dict(json.loads(text)) == EnvironmentSpec(
        **{**{f: getattr(spec, f) for f in spec.__dataclass_fields__}, "comments": ()}
    )


def test_lists_and_mappings_are_stored_as_tuples() -> None:
    spec = EnvironmentSpec(
        channels=["conda-forge"],  # type: ignore[arg-type]
        dependencies=["python"],  # type: ignore[arg-type]
        variables={"A": "1"},  # type: ignore[arg-type]
    )
    assert spec == EnvironmentSpec(
        channels=("conda-forge",), dependencies=("python",), variables=(("A", "1"),)
    )
    assert hash(spec) == hash(
        EnvironmentSpec(
            channels=("conda-forge",), dependencies=("python",), variables=(("A", "1"),)
        )
    )


# ------------------------------------------------------------------------------------------
# Real files


def test_conda_env_export_file_parses_without_its_prefix() -> None:
    parsed = parse_environment_yaml(CONDA_EXPORT)
    assert parsed.spec.name == "analysis"
    assert parsed.spec.channels == ("conda-forge", "defaults")
    assert parsed.spec.dependencies[2] == "numpy=1.26.4=py311h64a7726_0"
    assert parsed.spec.pip == ("requests==2.31.0", "tomli==2.0.1")
    assert parsed.warnings == (
        "line 14: `prefix:` ignored: an environment.yml never decides where files go",
    )
    assert parsed.pip_options == ()
    assert parsed.pip_urls == ()
    assert "prefix" not in parsed.spec.to_yaml()
    assert "/home/someone" not in parsed.spec.to_yaml()


def test_hand_written_file_keeps_text_as_written() -> None:
    parsed = parse_environment_yaml(HAND_WRITTEN)
    spec = parsed.spec
    assert spec.comments == (
        "Environment for the paper figures.",
        "Rebuild with: conda env create -f environment.yml",
    )
    assert spec.channels == ("conda-forge", "nodefaults")
    assert spec.dependencies == (
        "python=3.11",
        "numpy>=1.20,<2",
        "conda-forge::scipy",
        "matplotlib 3.8.*",
        "python-dateutil",
        "pip",
    )
    assert spec.pip == ('requests[socks]>=2.31; python_version >= "3.9"', "black==24.2.0")
    # Values keep the text written: 1.10 is not the float 1.1, false is not "False".
    assert spec.variables == (
        ("OMP_NUM_THREADS", "4"),
        ("RATIO", "1.10"),
        ("DEBUG", "false"),
        ("DATA_DIR", "/data/paper"),
    )
    assert parsed.warnings == ()
    assert parse_environment_yaml(spec.to_yaml()).spec == spec


def test_bytes_with_a_byte_order_mark_and_crlf_line_ends() -> None:
    data = b"\xef\xbb\xbf" + CONDA_EXPORT.replace("\n", "\r\n").encode()
    assert parse_environment_yaml(data).spec == parse_environment_yaml(CONDA_EXPORT).spec


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b"\xef\xbb\xbf"),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-32-le", b"\xff\xfe\x00\x00"),
        ("utf-32-be", b"\x00\x00\xfe\xff"),
    ],
)
def test_unicode_with_a_byte_order_mark_decodes(encoding: str, bom: bytes) -> None:
    # PowerShell's `conda env export > environment.yml` writes UTF-16 LE with a BOM and CRLF.
    text = HAND_WRITTEN.replace("/data/paper", "/données/☃").replace("\n", "\r\n")
    parsed = parse_environment_yaml(bom + text.encode(encoding))
    assert parsed.spec == parse_environment_yaml(text).spec
    assert parsed.spec.variables[-1] == ("DATA_DIR", "/données/☃")


def test_the_utf32_bom_is_not_read_as_a_utf16_bom() -> None:
    # FF FE 00 00 starts both a UTF-32 LE BOM and a UTF-16 LE BOM followed by a NUL.
    data = b"\xff\xfe\x00\x00" + "dependencies: [numpy]\n".encode("utf-32-le")
    assert parse_environment_yaml(data).spec == EnvironmentSpec(dependencies=("numpy",))


@pytest.mark.parametrize(("encoding", "order"), [("utf-16-le", "little"), ("utf-16-be", "big")])
def test_utf16_without_a_bom_says_to_save_as_utf8(encoding: str, order: str) -> None:
    error = error_of(CONDA_EXPORT.encode(encoding))
    assert str(error) == (
        f"environment.yml: the file looks like UTF-16 ({order}-endian) text without a "
        "byte-order mark (every other byte is NUL); save it as UTF-8"
    )


def test_utf32_without_a_bom_says_to_save_as_utf8() -> None:
    error = error_of(CONDA_EXPORT.encode("utf-32-le"))
    assert "UTF-16 or UTF-32 text without a byte-order mark" in str(error)
    assert "save it as UTF-8" in str(error)


def test_a_stray_nul_in_utf8_is_still_a_yaml_error_on_its_line() -> None:
    error = error_of(b"name: x\ndependencies:\n  - num\x00py\n")
    assert error.line == 3
    assert "invalid YAML" in str(error)


def test_invalid_utf16_names_the_line() -> None:
    data = b"\xff\xfe" + "name: x\ndependencies:\n  - a".encode("utf-16-le") + b"\x00\xd8"
    error = error_of(data + "b\n".encode("utf-16-le"))
    assert error.line == 3
    assert str(error).startswith("environment.yml, line 3: not UTF-16 text (byte 0x00 at offset")
    assert str(error).endswith("save the file as UTF-8")


def test_the_size_limit_applies_to_utf16_bytes() -> None:
    data = b"\xff\xfe" + ("dependencies:\n" + "  - numpy\n" * 60).encode("utf-16-le")
    assert len(data) > 1_000
    assert "too large" in str(error_of(data, max_bytes=1_000))
    assert len(parse_environment_yaml(data, max_bytes=2_000).spec.dependencies) == 60


def test_only_dependencies_is_enough_and_missing_dependencies_warns() -> None:
    assert parse_environment_yaml("dependencies:\n  - numpy\n").spec == EnvironmentSpec(
        dependencies=("numpy",)
    )
    parsed = parse_environment_yaml("name: empty\n")
    assert parsed.spec == EnvironmentSpec(name="empty")
    assert parsed.warnings == ("no `dependencies:` list: the environment would be empty",)


def test_empty_values_are_read_as_conda_reads_them() -> None:
    parsed = parse_environment_yaml("name:\ndependencies:\nvariables:\n")
    assert parsed.spec == EnvironmentSpec()
    assert parse_environment_yaml("dependencies:\n  - pip:\n").spec.pip == ()


def test_conda_lock_keys_are_ignored_with_a_warning() -> None:
    parsed = parse_environment_yaml(
        "dependencies: [numpy]\nplatforms:\n  - linux-64\n  - osx-arm64\ncategory: dev\n"
    )
    assert parsed.spec == EnvironmentSpec(dependencies=("numpy",))
    assert [w.split(":")[0] for w in parsed.warnings] == ["line 2", "line 5"]
    assert "platforms" in parsed.warnings[0]
    assert "category" in parsed.warnings[1]


def test_parse_environment_file_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text(HAND_WRITTEN)
    parsed = parse_environment_file(path)
    assert parsed.spec == parse_environment_yaml(HAND_WRITTEN).spec
    path.write_text("name: x\npip:\n  - requests\n")
    with pytest.raises(SpecError) as info:
        parse_environment_file(path)
    assert info.value.source == "environment.yml"
    assert info.value.line == 2


def test_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        read_spec_file(tmp_path / "nope.yml")


# ------------------------------------------------------------------------------------------
# Conda dependencies


@pytest.mark.parametrize(
    "spec",
    [
        "python",
        "python=3.11",
        "python=3.11.*",
        "python 3.11.*",
        "python 3.11.* *_cpython",
        "python=3.11.8=hab00c5b_0_cpython",
        "python=3.11=*_cpython",
        "numpy>=1.20,<2",
        "numpy >=1.20",
        "numpy==1.26.4",
        "numpy=1.0|1.1",
        "numpy~=1.26",
        "conda-forge::numpy",
        "conda-forge/linux-64::numpy",
        "numpy[version='>=1.20']",
        "pkg=1.0=build_0",
        "libblas=*=*mkl",
        "x=1=h1234+abc.0",
        "pip",
        "Numpy",
        "https://conda.anaconda.org/conda-forge/linux-64/numpy-1.26.4-py311h64a7726_0.conda",
    ],
)
def test_conda_accepted_match_specs_parse(spec: str) -> None:
    text = f"dependencies:\n  - {json.dumps(spec)}\n"
    assert parse_environment_yaml(text).spec.dependencies == (spec,)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("numpy>>1", "unable to parse version spec"),
        ("numpy=>1", "unable to parse version spec"),
        (">=1.0", "missing package name"),
        ("numpy*", "looks like a glob"),
        ("numpy>1 <2", "separate version constraints with ','"),
        ("numpy 1.2 py_0 extra", "build string 'py_0 extra'"),
        ("numpy==1.0;sys_platform=='linux'", "move pip-style requirements to the `pip:` list"),
        ("git+https://github.com/org/pkg", "not a valid conda match spec"),
        ("", "missing package name"),
    ],
)
def test_malformed_match_spec_names_line_and_entry(spec: str, expected: str) -> None:
    text = f"name: x\ndependencies:\n  - python\n  - {json.dumps(spec)}\n"
    error = error_of(text)
    assert error.line == 4
    assert error.entry == spec
    assert error.source == "environment.yml"
    message = str(error)
    assert message.startswith("environment.yml, line 4: ")
    assert expected in message
    assert "expected a conda match spec such as" in message


@pytest.mark.parametrize(
    ("spec", "stored", "extras"),
    [
        ("dask[complete]", "dask", "'[complete]'"),
        ("cubed[diagnostics]", "cubed", "'[diagnostics]'"),
        ("xarray[io,parallel]>=2023.1", "xarray>=2023.1", "'[io,parallel]'"),
        ("xarray[io, parallel]>=2023.1", "xarray>=2023.1", "'[io, parallel]'"),
        ("dask[complete]=2024.1", "dask=2024.1", "'[complete]'"),
        ("dask [complete] >=2024", "dask >=2024", "'[complete]'"),
        ("conda-forge::dask[complete]", "conda-forge::dask", "'[complete]'"),
    ],
)
def test_pip_style_extras_are_dropped_with_a_warning(spec: str, stored: str, extras: str) -> None:
    parsed = parse_environment_yaml(f"dependencies:\n  - python\n  - {json.dumps(spec)}\n")
    assert parsed.spec.dependencies == ("python", stored)
    (warning,) = parsed.warnings
    assert warning == (
        f"line 3: extras {extras} dropped from {spec!r}: conda packages have no extras (conda "
        f"ignores them too), so this is read as {stored!r}; for what an extra adds, list its "
        "packages as dependencies, or install the package from the `pip:` list"
    )


@pytest.mark.parametrize(
    "spec",
    [
        "numpy[version='>=1.20']",
        "python_abi[build=*_cp313t]",
        "pkg[channel=conda-forge]",
        "pkg[extras=[a,b]]",
        "numpy[version='>=1.20', build=py311*]",
    ],
)
def test_rattler_key_value_brackets_are_not_extras(spec: str) -> None:
    parsed = parse_environment_yaml(f"dependencies:\n  - {json.dumps(spec)}\n")
    assert parsed.spec.dependencies == (spec,)
    assert parsed.warnings == ()


def test_extras_on_an_invalid_spec_report_the_entry_as_written() -> None:
    error = error_of("dependencies:\n  - xarray[io]>>1\n")
    assert (error.line, error.entry) == (2, "xarray[io]>>1")
    assert "'xarray[io]>>1' is not a valid conda match spec" in str(error)


def test_a_single_colon_channel_warns_that_conda_ignores_it() -> None:
    parsed = parse_environment_yaml("dependencies:\n  - conda-forge:blas=1.0=mkl\n")
    assert parsed.spec.dependencies == ("conda-forge:blas=1.0=mkl",)
    assert parsed.warnings == (
        "line 2: 'conda-forge:blas=1.0=mkl' has a single ':', which conda reads as a namespace "
        "and ignores, so the package comes from the `channels:` list; write "
        "'conda-forge::blas=1.0=mkl' to take it from conda-forge",
    )


def test_a_misindented_entry_says_it_continues_the_one_above() -> None:
    error = error_of("name: x\ndependencies:\n  - numpy\n    - scipy\n")
    assert (error.line, error.entry) == (3, "numpy - scipy")
    assert "it runs on to line 4: a '- ' indented deeper than the entries above it" in str(error)
    error = error_of("dependencies:\n  - pip:\n    - requests\n      - flask\n")
    assert (error.line, error.entry) == (3, "requests - flask")
    assert "it runs on to line 4" in str(error)


def test_an_empty_pip_section_followed_by_entries_warns() -> None:
    parsed = parse_environment_yaml("dependencies:\n  - python\n  - pip:\n  - requests\n")
    assert parsed.spec == EnvironmentSpec(dependencies=("python", "requests"))
    assert parsed.warnings == (
        "line 3: `- pip:` has nothing under it, so the entries after it are conda packages; if "
        "they are meant for pip, indent them under `pip:`",
    )
    assert parse_environment_yaml("dependencies:\n  - python\n  - pip:\n").warnings == ()


# ------------------------------------------------------------------------------------------
# pip entries


def test_pip_options_are_recorded_and_flagged() -> None:
    entries = [
        "--index-url https://pypi.example.org/simple",
        "--extra-index-url=https://other.example.org/simple",
        "-i https://mirror.example.org/simple",
        "-e .",
        "-e git+https://github.com/org/pkg#egg=pkg",
        "-r requirements.txt",
        "-c constraints.txt",
        "-f https://download.example.org/wheels",
        "--find-links ./wheels",
        "--trusted-host pypi.example.org",
        "--pre",
        "--no-index",
        "--prefer-binary",
        "--only-binary :all:",
    ]
    text = "dependencies:\n  - pip\n  - pip:\n" + "".join(
        f"    - {json.dumps(e)}\n" for e in entries
    )
    parsed = parse_environment_yaml(text)
    assert parsed.pip_options == tuple(entries)
    assert parsed.spec.pip == tuple(entries)
    assert parsed.pip_urls == ()


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("--index-urls https://x", "unknown pip option '--index-urls'"),
        ("--upgrade", "unknown pip option '--upgrade'"),
        ("-x foo", "unknown pip option '-x'"),
        ("--index-url", "needs a value"),
        ("-e", "needs a value"),
        ("--pre numpy", "takes no value"),
        ("--index-url=https://a https://b", "put one option per entry"),
    ],
)
def test_bad_pip_options_are_errors(entry: str, expected: str) -> None:
    error = error_of(f"dependencies:\n  - pip:\n    - ok\n    - {entry}\n")
    assert error.line == 4
    assert error.entry == entry
    assert expected in str(error)


def test_direct_references_urls_and_paths_are_flagged_as_urls() -> None:
    entries = [
        "foo @ git+https://github.com/org/foo@v1.2#egg=foo",
        "bar @ https://files.example.org/bar-1.0-py3-none-any.whl",
        "git+https://github.com/org/baz",
        "https://files.example.org/qux-2.0.tar.gz",
        "./local/project",
        "../sibling",
        ".",
        "/abs/path/to/pkg",
        "dist/pkg-1.0-py3-none-any.whl",
        "pkg-1.0-py3-none-any.whl",
        "file:///tmp/pkg",
        'https://files.example.org/x-1.0.whl ; python_version < "3.12"',
    ]
    text = "dependencies:\n  - pip:\n" + "".join(f"    - {json.dumps(e)}\n" for e in entries)
    parsed = parse_environment_yaml(text)
    assert parsed.pip_urls == tuple(entries)
    assert parsed.pip_options == ()


def test_plain_requirements_are_neither_options_nor_urls() -> None:
    entries = ["requests", "requests==2.31.0", "requests[socks]>=2,<3", "Foo_Bar.baz~=1.0"]
    text = "dependencies:\n  - pip:\n" + "".join(f"    - {e}\n" for e in entries)
    parsed = parse_environment_yaml(text)
    assert parsed.spec.pip == tuple(entries)
    assert parsed.pip_options == ()
    assert parsed.pip_urls == ()


def test_requirement_options_hash_is_fine_build_options_are_flagged() -> None:
    hashed = f"requests==2.31.0 --hash=sha256:{SHA256}"
    build = 'pkg==1.0 --config-settings="--build-option=--fast"'
    parsed = parse_environment_yaml(
        f"dependencies:\n  - pip:\n    - {hashed}\n    - {json.dumps(build)}\n"
    )
    assert parsed.spec.pip == (hashed, build)
    assert parsed.pip_options == (build,)
    error = error_of("dependencies:\n  - pip:\n    - requests --index-url https://x\n")
    assert error.line == 3
    assert "cannot follow a requirement" in str(error)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("numpy=1.26", "pip pins with '=='"),
        ("numpy>=1.0 garbage", "is not a valid pip requirement"),
        ("requests[socks", "is not a valid pip requirement"),
        ('pkg; python_version >>> "3"', "is not a valid pip requirement"),
        ("https://x.example.org/a.whl ; not a marker", "invalid environment marker"),
    ],
)
def test_malformed_pip_requirement_names_line_and_entry(entry: str, expected: str) -> None:
    error = error_of(
        f"name: x\ndependencies:\n  - pip\n  - pip:\n    - ok\n    - {json.dumps(entry)}\n"
    )
    assert error.line == 6
    assert error.entry == entry
    assert expected in str(error)
    assert str(error).startswith("environment.yml, line 6: ")


# ------------------------------------------------------------------------------------------
# Structure and types


def test_bad_yaml_syntax_names_the_line() -> None:
    error = error_of("name: x\ndependencies:\n  - numpy\n  - [unclosed\n")
    assert error.line is not None
    assert error.line >= 4
    assert "invalid YAML" in str(error)
    error = error_of("name: x\n  bad indent: 1\n")
    assert error.line == 2
    assert "invalid YAML" in str(error)


def test_tabs_and_control_characters_are_yaml_errors() -> None:
    assert "invalid YAML" in str(error_of("name: x\ndependencies:\n\t- numpy\n"))
    error = error_of("name: x\ndependencies:\n  - num\x00py\n")
    assert error.line == 3
    assert "invalid YAML" in str(error)


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        # A tab indenting a list entry.
        ("name: x\ndependencies:\n  - numpy\n\t- scipy\n", 4, "replace the tab with spaces"),
        ("name:\tx\ndependencies: []\n", 1, "replace the tab with spaces"),
        # A missing ':' is found lines later; the key's line is the one to fix.
        (
            "name: x\nchannels\n  - conda-forge\ndependencies:\n  - numpy\n",
            2,
            "add the missing ':' after the key",
        ),
        (
            "name: x\nchannels:\n  - conda-forge\ndependencies\n  - numpy\n  - scipy\n",
            4,
            "add the missing ':' after the key",
        ),
        # An unbalanced quote is found at the end of the file; the quote's line is the one.
        (
            'name: x\ndependencies:\n  - "numpy>=1.20\n  - scipy\n  - pandas\n',
            3,
            "a quoted string starts on this line and is never closed",
        ),
        (
            "name: x\ndependencies:\n  - 'numpy>=1.20\n  - scipy\nvariables:\n  A: 1\n",
            3,
            "a quoted string starts on this line and is never closed",
        ),
        ("name: x\ndependencies: [numpy, scipy\n", 2, "the '[' opened on this line"),
        ("variables: {A: 1\ndependencies:\n  - numpy\n", 1, "the '{' opened on this line"),
        # `- numpy` indented less than the entries above it.
        (
            "name: x\ndependencies:\n  - numpy\n - scipy\n",
            4,
            "indented differently from the entries above it",
        ),
        (
            "dependencies:\n  - numpy\n  - pip:\n    - requests\n   - flask\n",
            5,
            "indented differently from the entries above it",
        ),
        ("name: x\ndependencies: - numpy\n", 2, "put each '- ' entry on a line of its own"),
        ("name: x\n  bad indent: 1\n", 2, "check the indentation of this line"),
        ("dependencies:\n  - numpy\n  - 'a'b\n", 3, "check its quotes and indentation"),
    ],
)
def test_yaml_syntax_errors_name_the_line_to_fix(text: str, line: int, expected: str) -> None:
    error = error_of(text)
    assert error.line == line
    assert str(error).startswith(f"environment.yml, line {line}: invalid YAML: ")
    assert expected in str(error)


CONFLICTED = """\
name: analysis
channels:
  - conda-forge
dependencies:
  - python=3.11
<<<<<<< HEAD
  - numpy=1.26
=======
  - numpy=2.0
>>>>>>> upgrade-numpy
  - pandas
"""


def test_git_conflict_markers_are_named_with_their_line() -> None:
    error = error_of(CONFLICTED)
    assert (error.line, error.entry) == (6, "<<<<<<< HEAD")
    assert str(error) == (
        "environment.yml, line 6: unresolved git merge conflict (the conflict marker "
        "'<<<<<<< HEAD' is on this line); resolve the conflict: keep the lines you want and "
        "delete the '<<<<<<<', '=======' and '>>>>>>>' marker lines"
    )
    # The first marker of any kind is named, and CRLF line ends change nothing.
    error = error_of(CONFLICTED.replace("<<<<<<< HEAD\n", ""))
    assert (error.line, error.entry) == (7, "=======")
    assert error_of(CONFLICTED.replace("\n", "\r\n")).line == 6


@pytest.mark.parametrize(
    "text",
    [
        "name: x\n# =======\ndependencies:\n  - numpy\n# <<<<<<< not a marker\n",
        "name: x\ndependencies:\n  - numpy\nvariables:\n  SEP: '>>>>>>> x'\n",
        "name: x\ndependencies:\n  - numpy\nvariables:\n  SEP: |\n    <<<<<<< indented\n",
    ],
)
def test_marker_like_text_that_is_not_a_conflict_is_accepted(text: str) -> None:
    assert parse_environment_yaml(text).spec.dependencies == ("numpy",)


@pytest.mark.parametrize(
    ("text", "line", "placeholder"),
    [
        (
            "name: {{ cookiecutter.project_slug }}\ndependencies:\n  - python\n",
            1,
            "{{ cookiecutter.project_slug }}",
        ),
        (
            "name: x\ndependencies:\n  - python={{ python_version }}\n",
            3,
            "{{ python_version }}",
        ),
        (
            "name: x\ndependencies:\n{% for p in packages %}\n  - {{ p }}\n{% endfor %}\n",
            3,
            "{% for p in packages %}",
        ),
    ],
)
def test_an_unrendered_template_says_to_render_it(text: str, line: int, placeholder: str) -> None:
    error = error_of(text)
    assert (error.line, error.entry) == (line, placeholder)
    assert str(error).startswith(
        f"environment.yml, line {line}: the file is an unrendered template ({placeholder!r} on "
        "this line"
    )
    assert "render it first" in str(error)


def test_a_placeholder_in_an_otherwise_valid_file_only_warns() -> None:
    parsed = parse_environment_yaml(
        "# made from {{ template }}\nname: x\ndependencies: [numpy]  # {{ not this }}\n"
        "variables:\n  GREETING: 'Hello {{ user }}'\n"
    )
    assert parsed.spec.variables == (("GREETING", "Hello {{ user }}"),)
    assert parsed.warnings == (
        "line 5: '{{ user }}' looks like an unrendered template placeholder; if this file is a "
        "template, render it first",
    )


def test_a_conda_lock_file_is_recognised_before_its_package_list() -> None:
    text = (
        "version: 1\nmetadata:\n  content_hash:\n    linux-64: 0123abcd\n  channels:\n"
        "  - url: conda-forge\n    used_env_vars: []\n  platforms:\n  - linux-64\n"
        "  sources:\n  - environment.yml\npackage:\n"
        + "- name: pkg\n  version: 1.0\n  manager: conda\n  platform: linux-64\n"
        * 6_000
    )
    start = time.perf_counter()
    error = error_of(text)
    assert time.perf_counter() - start < 1
    assert (error.line, error.entry) == (12, "package")
    assert "this is a conda-lock lock file" in str(error)
    assert "`conda-lock install --name NAME FILE`" in str(error)


def test_a_pixi_lock_file_is_recognised() -> None:
    error = error_of("version: 6\nenvironments:\n  default:\n    channels: []\npackages: []\n")
    assert (error.line, error.entry) == (2, "environments")
    assert "this is a pixi lock file" in str(error)
    assert "`pixi install`" in str(error)


def test_a_conda_build_recipe_is_recognised() -> None:
    error = error_of(
        "package:\n  name: foo\n  version: '1.0'\nrequirements:\n  run:\n    - python\n"
    )
    assert (error.line, error.entry) == (4, "requirements")
    assert "this is a conda-build recipe" in str(error)
    error = error_of(
        '{% set version = "1.0" %}\npackage:\n  name: foo\n  version: {{ version }}\n'
        "requirements:\n  run:\n    - python\n"
    )
    assert error.line == 1
    assert "this is a conda-build recipe" in str(error)
    assert "Jinja template '{% set version = \"1.0\" %}'" in str(error)


def test_lock_and_recipe_keys_alone_are_only_unknown_keys() -> None:
    parsed = parse_environment_yaml("version: 2\ndependencies: [numpy]\npackage: foo\n")
    assert parsed.spec.dependencies == ("numpy",)
    assert [w.split(":")[0] for w in parsed.warnings] == ["line 1", "line 3"]


def test_unknown_keys_are_ignored_with_a_warning_naming_them() -> None:
    parsed = parse_environment_yaml(
        "name: x\ndependencies: [numpy]\ndependecies: [scipy]\nchannel_priority: strict\n"
        "platform: linux-64\npip-repositories: [https://pypi.example.org/simple]\nfoo: 1\n"
    )
    assert parsed.spec == EnvironmentSpec(name="x", dependencies=("numpy",))
    assert parsed.warnings == (
        "line 3: unknown key 'dependecies' ignored (conda ignores it too), and so is what it "
        "holds; did you mean `dependencies:`?",
        "line 4: unknown key 'channel_priority' ignored (conda ignores it too): it is a conda "
        "setting, which belongs in .condarc (`conda config --set channel_priority strict`)",
        "line 5: unknown key 'platform' ignored (conda ignores it too): the environment is "
        "built for the platform it is restored on",
        "line 6: unknown key 'pip-repositories' ignored (conda ignores it too): pip packages "
        "and pip settings belong in the `- pip:` list under `dependencies:`, settings as lines "
        "such as `--index-url https://...` or `--extra-index-url https://...`",
        "line 7: unknown key 'foo' ignored (conda ignores it too); an environment.yml is read "
        "from name, channels, dependencies, variables",
    )


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("requirements", "so are its packages: list them under `dependencies:`"),
        ("env_vars", "environment variables belong under `variables:`"),
        ("description", "use `# ...` comment lines"),
        ("channel", "did you mean `channels:`?"),
        ("index-url", "`--index-url https://...`"),
        ("subdir", "built for the platform it is restored on"),
    ],
)
def test_unknown_key_warnings_say_where_the_setting_belongs(key: str, hint: str) -> None:
    parsed = parse_environment_yaml(f"dependencies: [numpy]\n{key}: something\n")
    assert parsed.spec == EnvironmentSpec(dependencies=("numpy",))
    (warning,) = parsed.warnings
    assert warning.startswith(f"line 2: unknown key '{key}' ignored (conda ignores it too)")
    assert hint in warning


def test_a_top_level_pip_key_is_an_error_that_says_where_it_goes() -> None:
    error = error_of("name: x\ndependencies:\n  - python\npip:\n  - requests\n")
    assert (error.line, error.entry) == (4, "pip")
    assert "conda, which would skip these packages" in str(error)
    assert "move it under `dependencies:` as a `- pip:` entry" in str(error)


def test_duplicate_keys_are_errors() -> None:
    error = error_of("name: a\ndependencies: []\nname: b\n")
    assert (error.line, error.entry) == (3, "name")
    assert "first at line 1" in str(error)
    error = error_of("dependencies: []\nvariables:\n  A: 1\n  A: 2\n")
    assert error.line == 4
    assert "duplicate variable 'A'" in str(error)


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("- numpy\n", 1, "expected a mapping of keys"),
        ("just text\n", 1, "expected a mapping of keys"),
        ("name: [a]\n", 1, "`name` must be a string"),
        ("name: {a: b}\n", 1, "`name` must be a string"),
        ("name: true\n", 1, "`name` must be a string"),
        ("channels: conda-forge\n", 1, "`channels` must be a list of strings"),
        ("channels:\n  - conda-forge\n  - {a: b}\n", 3, "every `channels` entry must be a string"),
        ("channels:\n", 1, "`channels` must be a list"),
        ("dependencies: numpy\n", 1, "`dependencies` must be a list"),
        ("dependencies:\n  - numpy\n  - 3\n", 3, "every dependency must be a string"),
        ("dependencies:\n  - [numpy]\n", 2, "every dependency must be a string"),
        ("dependencies:\n  -\n", 2, "every dependency must be a string"),
        ("dependencies:\n  - pip: requests\n", 2, "`pip:` must be a list of strings"),
        ("dependencies:\n  - pip:\n    - 1.0\n", 3, "every `pip:` entry must be a string"),
        ("dependencies:\n  - npm: [left-pad]\n", 2, "unknown section 'npm'"),
        ("dependencies:\n  - sel(win): pywin32\n", 2, "micromamba selector"),
        ("dependencies:\n  - pip: [a]\n  - pip: [b]\n", 3, "a second `pip:` section"),
        ("dependencies:\n  - {pip: [a], npm: [b]}\n", 2, "unknown section 'npm'"),
        ("variables: [A]\n", 1, "`variables` must be a mapping"),
        ("variables:\n  A: [1]\n", 2, "must have a string value"),
        ("variables:\n  A:\n", 2, "must have a string value"),
        ("variables:\n  1A: x\n", 2, "invalid variable name '1A'"),
        ("variables:\n  'A;rm -rf ~': x\n", 2, "invalid variable name"),
        ("1: x\n", 1, "top-level keys must be strings"),
        ("category: [a]\ndependencies: []\n", 1, "`category` must be a string"),
        ("platforms: linux-64\ndependencies: []\n", 1, "`platforms` must be a list"),
    ],
)
def test_wrong_types_name_the_line(text: str, line: int, expected: str) -> None:
    error = error_of(text)
    assert error.line == line
    assert expected in str(error)


def test_empty_files_are_errors() -> None:
    for text in ("", "\n\n", "# only a comment\n", "---\n", "~\n"):
        assert "the file is empty" in str(error_of(text))


def test_a_second_document_is_an_error() -> None:
    error = error_of("dependencies: [a]\n---\ndependencies: [b]\n")
    assert error.line == 2
    assert "a second YAML document" in str(error)


def test_deep_nesting_is_refused_without_recursion() -> None:
    error = error_of("dependencies: " + "[" * 200_000)
    assert "nested too deeply" in str(error)
    assert error.line == 1


def test_too_many_entries_are_refused() -> None:
    text = "dependencies:\n" + "  - numpy\n" * 30_000
    assert len(text.encode()) < MAX_SPEC_BYTES
    error = error_of(text)
    assert "too many entries" in str(error)


# ------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize("name", ["my-env", "py3.11_analysis", "Env+1", "naïve", "base-2"])
def test_valid_names(name: str) -> None:
    assert environment_name_problem(name) is None
    assert parse_environment_yaml(f"name: {name}\ndependencies: []\n").spec.name == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("my env", "space"),
        ("envs/evil", "'/'"),
        ("a:b", "':'"),
        ("a#b", "'#'"),
        ("tab\there", "'\\t'"),
        (".", "'.' and '..'"),
        ("..", "'.' and '..'"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_names_conda_refuses_are_kept_with_a_warning_and_their_problem(
    name: str, expected: str
) -> None:
    parsed = parse_environment_yaml(f"dependencies: []\nname: {json.dumps(name)}\n")
    assert parsed.spec.name == name
    assert parsed.name_problem == environment_name_problem(name)
    assert parsed.name_problem is not None
    assert expected in parsed.name_problem
    (warning,) = parsed.warnings
    assert warning.startswith(
        f"line 2: the name {name!r} cannot be used as an environment name: {parsed.name_problem}"
    )
    assert warning.endswith(
        "give another name to restore it: `--name` on the command line, `name` in the REST "
        "request, or the name field in the restore dialog"
    )


@pytest.mark.parametrize("name", ["base", "root"])
def test_the_root_environment_name_warns(name: str) -> None:
    parsed = parse_environment_yaml(f"name: {name}\ndependencies: []\n")
    assert parsed.spec.name == name
    assert parsed.name_problem == f"'{name}' is the name of conda's root environment"
    assert parsed.warnings == (
        f"line 1: the name '{name}' cannot be used as an environment name: '{name}' is the "
        "name of conda's root environment; give another name to restore it: `--name` on the "
        "command line, `name` in the REST request, or the name field in the restore dialog",
    )


def test_a_valid_name_has_no_problem() -> None:
    parsed = parse_environment_yaml("name: analysis\ndependencies: []\n")
    assert parsed.name_problem is None
    assert parse_environment_yaml("dependencies: []\n").name_problem is None


@pytest.mark.parametrize(("text", "name"), [("2024", "2024"), ("3.10", "3.10"), ("007", "007")])
def test_a_name_written_as_a_number_is_read_as_its_text(text: str, name: str) -> None:
    parsed = parse_environment_yaml(f"name: {text}\ndependencies: []\n")
    assert parsed.spec.name == name
    assert parsed.name_problem is None
    (warning,) = parsed.warnings
    assert warning.startswith(f"line 1: `name` is written as a number ({text})")
    assert f'quote it to silence this warning: name: "{text}"' in warning
    assert parse_environment_dict({"name": 2024, "dependencies": []}).spec.name == "2024"


# ------------------------------------------------------------------------------------------
# Hostile input


def test_a_100_mb_input_fails_fast_with_bounded_memory() -> None:
    data = b"dependencies:\n" + b"  - numpy\n" * 10_000_000
    assert len(data) > 100_000_000
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(SpecError) as info:
            parse_environment_yaml(data)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "too large" in str(info.value)
    assert f"{len(data):,} bytes" in str(info.value)
    assert elapsed < 5
    assert peak < 50_000_000


def test_a_100_mb_string_fails_fast_with_bounded_memory() -> None:
    text = "a" * 100_000_000
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(SpecError, match="too large"):
            parse_environment_yaml(text)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 5
    assert peak < 50_000_000


def test_a_100_mb_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    with path.open("wb") as stream:
        stream.write(b"dependencies:\n")
        stream.truncate(100 * 1024 * 1024)  # sparse: large on paper, cheap on disk
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(SpecError, match="too large") as info:
            parse_environment_file(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.source == "environment.yml"
    assert elapsed < 5
    assert peak < 50_000_000


def test_the_size_limit_is_in_bytes_not_characters() -> None:
    text = "name: x\ndependencies: []\nvariables:\n  A: " + "é" * 600 + "\n"
    assert len(text) < 1_000 < len(text.encode())
    assert "too large" in str(error_of(text, max_bytes=1_000))
    assert parse_environment_yaml(text, max_bytes=2_000).spec.name == "x"


def billion_laughs(levels: int = 9, indent: str = "") -> str:
    """The classic alias bomb: 9**levels strings once expanded, a few hundred bytes written."""
    lines = [f'{indent}a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        prev, this = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{indent}{this}: &{this} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_fails_fast_with_bounded_memory() -> None:
    # Under a key the file may have, so the refusal comes from the anchor itself.
    bomb = "name: x\ndependencies: []\nvariables:\n" + billion_laughs(indent="  ")
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(SpecError) as info:
            parse_environment_yaml(bomb)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.line == 4
    assert "anchor '&a' is not allowed" in str(info.value)
    assert elapsed < 5
    assert peak < 50_000_000


def test_any_alias_is_refused_even_inside_a_valid_file() -> None:
    error = error_of("name: x\nchannels: &ch\n  - conda-forge\ndependencies: []\n")
    assert (error.line, error.entry) == (2, "&ch")
    error = error_of("dependencies:\n  - *ref\n")
    assert error.entry == "*ref"
    assert "alias" in str(error)


def test_python_object_tags_are_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"name: x\ndependencies:\n  - !!python/object/apply:os.system ['touch {marker}']\n"
    error = error_of(text)
    assert error.line == 3
    assert error.entry == "!!python/object/apply:os.system"
    assert "not allowed" in str(error)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("name: !!python/object:os.system x\n", "!!python/object:os.system"),
        ("name: !!python/name:os.system ''\n", "!!python/name:os.system"),
        ("dependencies: !!set {a, b}\n", "!!set"),
        ("dependencies: !!omap [a: 1]\n", "!!omap"),
        ("name: !!binary aGVsbG8=\n", "!!binary"),
        ("name: !custom x\n", "!custom"),
        ("dependencies: !custom [a]\n", "!custom"),
    ],
)
def test_non_standard_tags_are_refused(text: str, tag: str) -> None:
    error = error_of(text)
    assert error.entry == tag
    assert error.line == 1


def test_standard_tags_are_accepted() -> None:
    parsed = parse_environment_yaml("name: !!str 2024\ndependencies: !!seq [numpy]\n")
    assert parsed.spec == EnvironmentSpec(name="2024", dependencies=("numpy",))


def test_an_old_conda_export_python_tuple_reads_as_a_list() -> None:
    text = (
        "name: object-detection\nchannels: !!python/tuple\n- menpo\n- defaults\n"
        "dependencies:\n- freetype=2.5.5=2\n- pip:\n  - backports.weakref==1.0rc1\n"
    )
    parsed = parse_environment_yaml(text)
    assert parsed.spec.channels == ("menpo", "defaults")
    assert parsed.spec.pip == ("backports.weakref==1.0rc1",)
    assert parsed.warnings == (
        "line 2: the `!!python/tuple` tag (written by old versions of `conda env export`) is "
        "ignored and the list read as a plain list; delete the tag to silence this warning",
    )
    flow = parse_environment_yaml("dependencies: !!python/tuple [numpy, scipy]\n")
    assert flow.spec.dependencies == ("numpy", "scipy")


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("name: !!python/tuple x\n", "!!python/tuple"),
        ("variables: !!python/tuple {A: b}\n", "!!python/tuple"),
        ("channels: !!python/tuple\n- !!python/unicode 'defaults'\n", "!!python/unicode"),
    ],
)
def test_other_python_tags_stay_refused_with_the_fix(text: str, tag: str) -> None:
    error = error_of(text)
    assert error.entry == tag
    assert str(error).endswith(f"delete the '{tag}' and write the value as a plain string or list")


def test_invalid_utf8_names_the_line() -> None:
    error = error_of(b"name: x\ndependencies:\n  - caf\xe9\n")
    assert error.line == 3
    assert "not UTF-8" in str(error)


def test_every_invalid_case_is_rejected_quickly() -> None:
    cases: list[str | bytes] = [
        "a: [\n",
        "name: x\npip: [requests]\n",
        "dependencies:\n  - numpy>>1\n",
        "dependencies:\n  - pip:\n    - numpy=1\n",
        "name: [x]\n",
        billion_laughs(),
        "x: !!python/object/apply:os.system ['true']\n",
        # The first key is already wrong: the rest of a near-limit file is never parsed.
        "pip: [a]\n" + "".join(f"key{i}: value\n" for i in range(70_000)),
        # Unknown keys are only warned about, but the node budget still bounds the work.
        "".join(f"key{i}: value\n" for i in range(70_000)),
        b"a" * 100_000_000,
    ]
    start = time.perf_counter()
    for case in cases:
        with pytest.raises(SpecError):
            parse_environment_yaml(case)
    assert time.perf_counter() - start < 5


# ------------------------------------------------------------------------------------------
# Plain data (notebook metadata)


def test_from_dict_applies_the_same_rules_without_lines() -> None:
    with pytest.raises(SpecError) as info:
        EnvironmentSpec.from_dict({"dependencies": ["numpy>>1"]}, source="notebook.ipynb metadata")
    assert info.value.line is None
    assert info.value.entry == "numpy>>1"
    assert str(info.value).startswith("notebook.ipynb metadata: 'numpy>>1'")
    with pytest.raises(SpecError, match="`pip:` at the top level"):
        EnvironmentSpec.from_dict({"dependencies": [], "pip": ["requests"]})
    assert parse_environment_dict({"dependencies": [], "extra": 1}).warnings == (
        "unknown key 'extra' ignored (conda ignores it too); an environment.yml is read from "
        "name, channels, dependencies, variables",
    )
    with pytest.raises(SpecError, match="unsupported value of type set"):
        EnvironmentSpec.from_dict({"dependencies": {"numpy"}})
    with pytest.raises(SpecError, match="expected a mapping of keys"):
        EnvironmentSpec.from_dict(["numpy"])  # type: ignore[arg-type]


def test_parse_environment_dict_reports_options_urls_and_warnings() -> None:
    parsed = parse_environment_dict(
        {
            "name": "x",
            "dependencies": ["python", {"pip": ["-e .", "a @ git+https://github.com/o/a"]}],
            "variables": {"N": 4, "ON": True, "RATIO": 0.5},
            "prefix": "/somewhere",
        }
    )
    assert isinstance(parsed, ParsedSpec)
    assert parsed.pip_options == ("-e .",)
    assert parsed.pip_urls == ("a @ git+https://github.com/o/a",)
    assert parsed.warnings == (
        "`prefix:` ignored: an environment.yml never decides where files go",
    )
    assert parsed.spec.variables == (("N", "4"), ("ON", "true"), ("RATIO", "0.5"))


def test_spec_error_is_a_value_error_with_its_parts() -> None:
    error = SpecError("bad thing", source="env.yml", line=3, entry="x")
    assert isinstance(error, ValueError)
    assert (error.source, error.line, error.entry, error.message) == (
        "env.yml",
        3,
        "x",
        "bad thing",
    )
    assert str(error) == "env.yml, line 3: bad thing"
    assert str(SpecError("bad", source="env.yml")) == "env.yml: bad"


# ------------------------------------------------------------------------------------------
# Explicit package lists


def sample_entries() -> list[ExplicitEntry]:
    return [
        ExplicitEntry(
            "https://conda.anaconda.org/conda-forge/linux-64/_libgcc_mutex-0.1-conda_forge.tar.bz2",
            md5=MD5,
            sha256=SHA256,
        ),
        ExplicitEntry(URL, sha256=SHA256),
        ExplicitEntry(
            "https://conda.anaconda.org/conda-forge/noarch/tzdata-2024a-h0c530f3_0.conda"
        ),
    ]


def test_render_explicit_writes_condas_format() -> None:
    text = render_explicit(sample_entries(), platform="linux-64", comments=["created-by: test"])
    assert text == (
        "# This file may be used to create an environment using:\n"
        "# $ conda create --name <env> --file <this file>\n"
        "# platform: linux-64\n"
        "# created-by: test\n"
        "@EXPLICIT\n"
        "https://conda.anaconda.org/conda-forge/linux-64/_libgcc_mutex-0.1-conda_forge.tar.bz2"
        f"#{MD5}\n"
        f"{URL}#sha256:{SHA256}\n"
        "https://conda.anaconda.org/conda-forge/noarch/tzdata-2024a-h0c530f3_0.conda\n"
    )
    assert explicit_urls(sample_entries()) == text.splitlines()[5:]


def test_explicit_round_trip_keeps_order_and_hashes() -> None:
    entries = sample_entries()
    platform, parsed = parse_explicit(render_explicit(entries, platform="osx-arm64"))
    assert platform == "osx-arm64"
    # md5 wins when both are known, so the sha256 of the first entry is not written.
    assert parsed == [ExplicitEntry(entries[0].url, md5=MD5), entries[1], entries[2]]
    assert render_explicit(parsed, platform="osx-arm64") == render_explicit(
        entries, platform="osx-arm64"
    )


def test_parse_explicit_reads_what_conda_writes() -> None:
    text = (
        "# This file may be used to create an environment using:\n"
        "# $ conda create --name <env> --file <this file>\n"
        "# platform: linux-64\n"
        "# created-by: conda 24.7.1\n"
        "@EXPLICIT\n"
        "\n"
        f"{URL}#{SHA256}\n"  # `conda list --explicit --sha256` writes no prefix
        f"  {URL}  \n"
    )
    platform, entries = parse_explicit(text.encode())
    assert platform == "linux-64"
    assert entries == [ExplicitEntry(URL, sha256=SHA256), ExplicitEntry(URL)]


def test_parse_explicit_without_platform_or_entries() -> None:
    assert parse_explicit("@EXPLICIT\n") == (None, [])


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (f"# platform: linux-64\n{URL}\n", None, "no @EXPLICIT line"),
        ("@EXPLICIT\nnumpy=1.26\n", 2, "is not a package URL"),
        (f"@EXPLICIT\n{URL}\n./local/pkg-1.0-0.conda\n", 3, "is not a package URL"),
        ("@EXPLICIT\nhttps://example.org/pkg-1.0-0.zip\n", 2, "is not a package URL"),
        (f"@EXPLICIT\n{URL} extra\n", 2, "is not a package URL"),
        (f"@EXPLICIT\n{URL}#{MD5[:-1]}\n", 2, "invalid checksum"),
        (f"@EXPLICIT\n{URL}#{MD5.upper()}\n", 2, "invalid checksum"),
        (f"@EXPLICIT\n{URL}#sha256:{SHA256[:-2]}\n", 2, "invalid checksum"),
        (f"@EXPLICIT\n{URL}#md5:{MD5}\n", 2, "invalid checksum"),
        (f"@EXPLICIT\n{URL}#\n", 2, "invalid checksum"),
    ],
)
def test_parse_explicit_errors_name_the_line(text: str, line: int | None, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_explicit(text, source="spec.txt")
    assert info.value.line == line
    assert info.value.source == "spec.txt"
    assert expected in str(info.value)


def test_parse_explicit_reads_utf16_with_a_bom() -> None:
    text = f"# platform: win-64\r\n@EXPLICIT\r\n{URL}#{MD5}\r\n"
    assert parse_explicit(b"\xff\xfe" + text.encode("utf-16-le")) == (
        "win-64",
        [ExplicitEntry(URL, md5=MD5)],
    )
    with pytest.raises(SpecError, match="UTF-16 \\(little-endian\\) text without a byte-order"):
        parse_explicit(text.encode("utf-16-le"))


def test_parse_explicit_names_a_merge_conflict() -> None:
    text = f"@EXPLICIT\n<<<<<<< HEAD\n{URL}\n=======\n{URL}#{MD5}\n>>>>>>> other\n"
    with pytest.raises(SpecError, match="unresolved git merge conflict") as info:
        parse_explicit(text)
    assert info.value.line == 2


def test_parse_explicit_has_the_size_limit() -> None:
    with pytest.raises(SpecError, match="too large"):
        parse_explicit(b"@EXPLICIT\n" + b"#" * MAX_SPEC_BYTES)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            ExplicitEntry("https://conda.anaconda.org/t/tk-123/conda-forge/noarch/a-1-0.conda"),
            "token",
        ),
        (ExplicitEntry("https://user:secret@repo.example.org/noarch/a-1-0.conda"), "credentials"),
        (ExplicitEntry("https://example.org/t/tk-123/noarch/a-1-0.zip"), "token"),
        (ExplicitEntry("https://example.org/noarch/a-1-0.conda\n@EXPLICIT"), "not a package URL"),
        (ExplicitEntry("https://example.org/noarch/a-1-0.conda", md5="abc"), "invalid md5"),
        (ExplicitEntry("https://example.org/noarch/a-1-0.conda", sha256=MD5), "invalid sha256"),
    ],
)
def test_render_explicit_refuses_bad_entries(entry: ExplicitEntry, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        render_explicit([entry], platform="linux-64")
    assert expected in str(info.value)
    assert "secret" not in str(info.value)
    assert "tk-123" not in str(info.value)


def test_render_explicit_refuses_a_bad_platform() -> None:
    with pytest.raises(SpecError, match="invalid platform"):
        render_explicit([], platform="linux-64\n@EXPLICIT")


def test_render_explicit_of_nothing_is_still_a_valid_list() -> None:
    text = render_explicit([], platform="win-64")
    assert text.endswith("@EXPLICIT\n")
    assert parse_explicit(text) == ("win-64", [])


def test_no_output_contains_a_prefix_line() -> None:
    parsed = parse_environment_yaml(CONDA_EXPORT)
    for text in (parsed.spec.to_yaml(), parsed.spec.to_json()):
        assert "prefix" not in text
    assert os.sep + "home" + os.sep not in parsed.spec.to_yaml()
