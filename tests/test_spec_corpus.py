"""The environment.yml parser against a corpus of files shaped like real-world ones.

Each file in tests/corpus/environment/ shows one pattern met in public repositories (short pins,
single-colon channels, unknown keys, `!!python/tuple`, byte-order marks, pip-style extras,
names conda cannot use, ...) or a combination of them, and each has its expected verdict here:
what is read from an accepted file and the warnings it gets, or the line and message a refused
file gets. A file without an expectation fails, and so does an expectation without a file.

The encoded files (BOMs, UTF-16, CRLF) are committed as bytes; the folder's .gitattributes
keeps git from converting them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from jupyter_repro.specs.environment import (
    ParsedSpec,
    SpecError,
    parse_environment_file,
    parse_environment_yaml,
)

CORPUS = Path(__file__).parent / "corpus" / "environment"

RENAME_HINT = (
    "give another name to restore it: `--name` on the command line, `name` in the REST "
    "request, or the name field in the restore dialog"
)
EXTRAS_HINT = (
    "for what an extra adds, list its packages as dependencies, or install the package from "
    "the `pip:` list"
)
TUPLE = (
    "line 2: the `!!python/tuple` tag (written by old versions of `conda env export`) is "
    "ignored and the list read as a plain list; delete the tag to silence this warning"
)
CONDARC = (
    "unknown key 'channel_priority' ignored (conda ignores it too): it is a conda setting, "
    "which belongs in .condarc (`conda config --set channel_priority strict`)"
)
PREFIX = "`prefix:` ignored: an environment.yml never decides where files go"
# A refusal says what to change: each message holds one of these verbs.
FIX = re.compile(
    r"\b(write|move|delete|save|resolve|render|quote|add|replace|indent|install|build|"
    r"keep|merge|check)\b"
)


@dataclass(frozen=True)
class Accepted:
    """What an accepted file reads as; `warnings` holds one substring per warning, in order."""

    name: str | None
    channels: tuple[str, ...]
    dependencies: tuple[str, ...]
    pip: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()
    name_problem: str | None = None
    """A substring of `ParsedSpec.name_problem`; None when the name is usable."""
    pip_options: tuple[str, ...] = ()
    pip_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refused:
    """The line named and substrings of the whole message (`str(error)`)."""

    line: int | None
    message: tuple[str, ...]


EXPECTED: dict[str, Accepted | Refused] = {
    # ---- accepted as conda accepts them --------------------------------------------------
    "binder-short-pins.yml": Accepted(
        name="data-course",
        channels=("conda-forge",),
        dependencies=(
            "python=3.10",
            "numpy>=1.20,<2",
            "pandas=2.0",
            "matplotlib-base>=3.7",
            "seaborn",
            "scikit-learn=1.3",
            "jupyterlab>=4",
            "ipywidgets",
            "pip",
        ),
        pip=("-r requirements.txt",),
        pip_options=("-r requirements.txt",),
    ),
    "single-colon-channel.yml": Accepted(
        name="mkl-numerics",
        channels=("defaults", "conda-forge"),
        dependencies=(
            "python=3.9",
            "conda-forge:blas=1.0=mkl",
            "mkl=2021.4",
            "numpy=1.21",
            "scipy",
        ),
        warnings=(
            "line 7: 'conda-forge:blas=1.0=mkl' has a single ':', which conda reads as a "
            "namespace and ignores, so the package comes from the `channels:` list; write "
            "'conda-forge::blas=1.0=mkl' to take it from conda-forge",
        ),
    ),
    "channel-priority-strict.yml": Accepted(
        name="rnaseq",
        channels=("conda-forge", "bioconda", "nodefaults"),
        dependencies=(
            "python=3.11",
            "snakemake-minimal>=7.32",
            "salmon=1.10.2",
            "fastqc=0.12.1",
            "multiqc=1.21",
            "samtools=1.19",
            "bioconductor-tximport",
            "r-base=4.3",
        ),
        warnings=(f"line 6: {CONDARC}",),
    ),
    "platform-key.yml": Accepted(
        name="apple-silicon",
        channels=("conda-forge",),
        dependencies=("python>=3.11", "pytorch>=2.1", "torchvision", "llvm-openmp"),
        warnings=(
            "line 2: unknown key 'platform' ignored (conda ignores it too): the environment is "
            "built for the platform it is restored on",
        ),
    ),
    "pip-repositories.yml": Accepted(
        name="internal-tools",
        channels=("conda-forge",),
        dependencies=("python=3.12", "pip"),
        pip=(
            "--extra-index-url https://pypi.example.org/simple",
            "company-utils>=2.3",
            "requests>=2.31",
        ),
        pip_options=("--extra-index-url https://pypi.example.org/simple",),
        warnings=(
            "line 4: unknown key 'pip-repositories' ignored (conda ignores it too): pip "
            "packages and pip settings belong in the `- pip:` list under `dependencies:`, "
            "settings as lines such as `--index-url https://...`",
        ),
    ),
    "conda-export-python-tuple.yml": Accepted(
        name="object-detection",
        channels=("menpo", "defaults"),
        dependencies=(
            "freetype=2.5.5=2",
            "jbig=2.1=0",
            "jpeg=9b=0",
            "libpng=1.6.27=0",
            "opencv3=3.1.0=py35_0",
            "python=3.5.2=0",
        ),
        pip=("backports.weakref==1.0rc1", "protobuf==3.2.0"),
        warnings=(TUPLE, f"line 15: {PREFIX}"),
    ),
    "extras-pangeo.yml": Accepted(
        name="pangeo-lite",
        channels=("conda-forge",),
        dependencies=(
            "python=3.11",
            "dask",
            "xarray>=2023.1",
            "cubed",
            "zarr>=2.16",
            "netcdf4",
            "cf_xarray",
            "intake-esm",
        ),
        warnings=(
            "line 7: extras '[complete]' dropped from 'dask[complete]': conda packages have no "
            "extras (conda ignores them too), so this is read as 'dask'; " + EXTRAS_HINT,
            "line 8: extras '[io,parallel]' dropped from 'xarray[io,parallel]>=2023.1': conda "
            "packages have no extras (conda ignores them too), so this is read as "
            "'xarray>=2023.1'",
            "line 9: extras '[diagnostics]' dropped from 'cubed[diagnostics]'",
        ),
    ),
    "extras-pinned.yaml": Accepted(
        name="scaling",
        channels=("conda-forge", "nodefaults"),
        dependencies=("python=3.12", "dask=2024.1", "distributed=2024.1", "pip"),
        # pip's own extras stay: pip understands them.
        pip=("dask-jobqueue[test]>=0.8",),
        warnings=(
            "line 7: extras '[complete]' dropped from 'dask[complete]=2024.1': conda packages "
            "have no extras (conda ignores them too), so this is read as 'dask=2024.1'",
        ),
    ),
    "rattler-brackets.yml": Accepted(
        name="nogil-bench",
        channels=("conda-forge",),
        dependencies=(
            "python-freethreading=3.13",
            "python_abi[build=*_cp313t]",
            "numpy[version='>=2.1']",
            "cython[channel=conda-forge]",
            "pytest",
        ),
    ),
    "name-with-space.yml": Accepted(
        name="my analysis env",
        channels=("conda-forge",),
        dependencies=("python=3.10", "pandas", "openpyxl"),
        name_problem="it contains space",
        warnings=(
            "line 1: the name 'my analysis env' cannot be used as an environment name: it "
            "contains space; a name cannot contain '/', ':', '#' or whitespace; " + RENAME_HINT,
        ),
    ),
    "name-with-slash.yml": Accepted(
        name="lab/project-x",
        channels=("conda-forge",),
        dependencies=("python=3.11", "xarray"),
        name_problem="it contains '/'",
        warnings=(
            "line 1: the name 'lab/project-x' cannot be used as an environment name: it "
            "contains '/'",
        ),
    ),
    "name-base.yml": Accepted(
        name="base",
        channels=("defaults",),
        dependencies=("python=3.9", "conda", "jupyter"),
        name_problem="'base' is the name of conda's root environment",
        warnings=(
            "line 1: the name 'base' cannot be used as an environment name: 'base' is the name "
            "of conda's root environment; " + RENAME_HINT,
        ),
    ),
    "name-number.yml": Accepted(
        name="2024",
        channels=("conda-forge",),
        dependencies=("python=3.12", "polars"),
        warnings=(
            "line 1: `name` is written as a number (2024) and read as the text '2024', as "
            'conda does; quote it to silence this warning: name: "2024"',
        ),
    ),
    "ml-pip-git-editable.yml": Accepted(
        name="vision-train",
        channels=("pytorch", "nvidia", "conda-forge"),
        dependencies=(
            "python=3.10",
            "pytorch::pytorch=2.1",
            "pytorch::torchvision=0.16",
            "pytorch-cuda=12.1",
            "cudatoolkit",
            "numpy<2",
            "pip>=23",
        ),
        pip=(
            "--index-url https://download.pytorch.org/whl/cu121",
            "-e .",
            "git+https://github.com/example/augment-lib.git@v0.4.1",
            "timm==0.9.12",
            "wandb",
        ),
        pip_options=("--index-url https://download.pytorch.org/whl/cu121", "-e ."),
        pip_urls=("git+https://github.com/example/augment-lib.git@v0.4.1",),
    ),
    "variables-geo.yml": Accepted(
        name="geo",
        channels=("conda-forge", "nodefaults"),
        dependencies=(
            "python=3.11",
            "gdal>=3.8",
            "geopandas=0.14",
            "rasterio",
            "pyproj=3.6.*",
            "cartopy",
        ),
        variables=(("PROJ_NETWORK", "ON"), ("GDAL_NUM_THREADS", "ALL_CPUS"), ("USE_PYGEOS", "0")),
    ),
    "empty-pip-section.yml": Accepted(
        name="scraper",
        channels=("conda-forge",),
        dependencies=("python=3.11", "pip", "beautifulsoup4", "lxml"),
        warnings=(
            "line 7: `- pip:` has nothing under it, so the entries after it are conda "
            "packages; if they are meant for pip, indent them under `pip:`",
        ),
    ),
    "typo-dependencies.yml": Accepted(
        name="typo",
        channels=("conda-forge",),
        dependencies=(),
        warnings=(
            "line 4: unknown key 'dependecies' ignored (conda ignores it too), and so is what "
            "it holds; did you mean `dependencies:`?",
            "no `dependencies:` list: the environment would be empty",
        ),
    ),
    "placeholder-in-variable.yml": Accepted(
        name="report",
        channels=("conda-forge",),
        dependencies=("python=3.11", "jinja2", "weasyprint"),
        variables=(("REPORT_TITLE", "Weekly report for {{ team }}"),),
        warnings=(
            "line 9: '{{ team }}' looks like an unrendered template placeholder; if this file "
            "is a template, render it first",
        ),
    ),
    # ---- encodings ------------------------------------------------------------------------
    "utf8-bom-crlf.yml": Accepted(
        name="hydrology",
        channels=("conda-forge",),
        dependencies=("python=3.10", "xarray", "rioxarray", "geopandas"),
        variables=(("DATA_ROOT", "D:\\données\\bassins"),),
    ),
    "utf16le-bom-powershell.yml": Accepted(
        name="thesis",
        channels=("conda-forge", "defaults"),
        dependencies=(
            "bzip2=1.0.8=h2466b09_7",
            "ca-certificates=2024.7.4=h56e8100_0",
            "numpy=1.26.4=py311h0b4df5a_0",
            "python=3.11.9=h631f459_0_cpython",
            "ucrt=10.0.22621.0=h57928b3_0",
            "vc=14.3=h8a93ad2_20",
            "vc14_runtime=14.40.33810=ha82c5b3_20",
            "pip=24.2=pyh8b19718_1",
        ),
        pip=("pywin32==306",),
        warnings=(f"line 16: {PREFIX}",),
    ),
    **{
        name: Accepted(
            name="unicode-demo",
            channels=("conda-forge",),
            dependencies=("python=3.12", "sympy"),
            variables=(("GREETING", "Grüß Gott ☃"),),
        )
        for name in ("utf16be-bom.yml", "utf32le-bom.yml", "utf32be-bom.yml")
    },
    # ---- combinations ---------------------------------------------------------------------
    "combined-pangeo-unknown-keys.yml": Accepted(
        name="2023",
        channels=("conda-forge",),
        dependencies=(
            "python=3.10",
            "dask>=2023.6",
            "conda-forge:esmpy=8.4",
            "xesmf",
            "gcsfs",
            "pip",
        ),
        pip=("git+https://github.com/example/ocean-tools.git",),
        pip_urls=("git+https://github.com/example/ocean-tools.git",),
        warnings=(
            "line 2: `name` is written as a number (2023)",
            "line 3: unknown key 'description' ignored (conda ignores it too): for notes about "
            "the environment, use `# ...` comment lines",
            f"line 6: {CONDARC}",
            "line 7: `platforms:` (a conda-lock extension) ignored",
            "line 12: extras '[complete]' dropped from 'dask[complete]>=2023.6'",
            "line 13: 'conda-forge:esmpy=8.4' has a single ':'",
        ),
    ),
    "combined-old-windows-export-utf16.yml": Accepted(
        name="base",
        channels=("conda-forge", "defaults"),
        dependencies=("python=3.6.2=0", "numpy=1.13.1=py36_0", "vs2015_runtime=14.0.25420=0"),
        pip=("tqdm==4.19.4",),
        name_problem="root environment",
        warnings=(
            "line 1: the name 'base' cannot be used as an environment name",
            TUPLE,
            f"line 11: {PREFIX}",
        ),
    ),
    # ---- refused, each with what to change --------------------------------------------------
    "refused-top-level-pip.yml": Refused(
        7,
        (
            "`pip:` at the top level is not read by conda, which would skip these packages",
            "move it under `dependencies:` as a `- pip:` entry",
        ),
    ),
    "refused-conflict-markers.yml": Refused(
        7,
        (
            "unresolved git merge conflict (the conflict marker '<<<<<<< HEAD' is on this line)",
            "resolve the conflict: keep the lines you want and delete the '<<<<<<<', "
            "'=======' and '>>>>>>>' marker lines",
        ),
    ),
    "refused-cookiecutter-template.yml": Refused(
        1,
        (
            "the file is an unrendered template ('{{ cookiecutter.project_slug }}' on this line",
            "render it first",
        ),
    ),
    "refused-conda-lock.yml": Refused(
        12,
        (
            "this is a conda-lock lock file",
            "not an environment.yml",
            "`conda-lock install --name NAME FILE`",
        ),
    ),
    "refused-pixi-lock.yml": Refused(
        2, ("this is a pixi lock file", "install it with `pixi install`")
    ),
    "refused-recipe-meta.yaml": Refused(
        1,
        (
            "this is a conda-build recipe",
            "with the Jinja template '{% set name = \"tinytool\" %}' on this line",
            "build it with `conda build`",
        ),
    ),
    "refused-recipe-rendered.yaml": Refused(
        4, ("this is a conda-build recipe", "lists its packages under `dependencies:`")
    ),
    "refused-python-object-tag.yml": Refused(
        6,
        (
            "YAML tag '!!python/object/apply:os.system' is not allowed",
            "nothing in it is ever turned into an object",
            "delete the '!!python/object/apply:os.system' and write the value as a plain string",
        ),
    ),
    # Conda before 4.4 on Python 2 wrote `!!python/unicode` strings: still a tag, still refused.
    "refused-python-unicode-tag.yml": Refused(
        3, ("YAML tag '!!python/unicode' is not allowed", "delete the '!!python/unicode'")
    ),
    "refused-utf16-no-bom.yml": Refused(
        None,
        (
            "the file looks like UTF-16 (little-endian) text without a byte-order mark",
            "save it as UTF-8",
        ),
    ),
    "refused-tab-indent.yml": Refused(
        6, ("invalid YAML: a tab character where YAML expects spaces", "replace the tab")
    ),
    "refused-missing-colon.yml": Refused(
        2, ("invalid YAML: this line is neither `key: value` nor `- entry`", "add the missing ':'")
    ),
    "refused-unbalanced-quote.yml": Refused(
        6, ("a quoted string starts on this line and is never closed", "add the closing quote")
    ),
    "refused-misindented-dash.yml": Refused(
        7,
        (
            "this line is indented differently from the entries above it",
            "indent each '- ' entry of a list by the same number of spaces",
        ),
    ),
    "refused-pip-marker-in-conda.yml": Refused(
        6,
        (
            "\"pywin32; sys_platform == 'win32'\" is not a valid conda match spec",
            "move this requirement to the `pip:` list",
        ),
    ),
    "refused-name-list.yml": Refused(
        2, ("`name` must be a string, found a list", "write one name on the same line")
    ),
    "refused-yaml-anchor.yml": Refused(
        2, ("YAML anchor '&chans' is not allowed", "write the value out")
    ),
}

# The first bytes of the encoded files, so that a checkout that converted them fails loudly.
LEADING_BYTES = {
    "utf8-bom-crlf.yml": b"\xef\xbb\xbf# Saved",
    "utf16le-bom-powershell.yml": b"\xff\xfen\x00a\x00",
    "utf16be-bom.yml": b"\xfe\xff\x00n\x00a",
    "utf32le-bom.yml": b"\xff\xfe\x00\x00n\x00\x00\x00",
    "utf32be-bom.yml": b"\x00\x00\xfe\xff\x00\x00\x00n",
    "combined-old-windows-export-utf16.yml": b"\xff\xfen\x00a\x00",
    "refused-utf16-no-bom.yml": b"n\x00a\x00m\x00e\x00",
}


def corpus_files() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if p.is_file() and not p.name.startswith("."))


def test_every_file_has_an_expectation_and_every_expectation_a_file() -> None:
    assert set(corpus_files()) == set(EXPECTED)
    assert set(LEADING_BYTES) <= set(EXPECTED)


@pytest.mark.parametrize("name", sorted(LEADING_BYTES))
def test_encoded_files_keep_their_bytes(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    assert data.startswith(LEADING_BYTES[name])
    if "crlf" in name or "powershell" in name or "windows" in name:
        assert "\r\n" in data.decode("utf-16" if b"\x00" in data else "utf-8-sig")


def parsed_or_error(name: str) -> ParsedSpec | SpecError:
    try:
        return parse_environment_file(CORPUS / name)
    except SpecError as error:
        return error


@pytest.mark.parametrize("name", corpus_files())
def test_corpus_file_gets_its_verdict(name: str) -> None:
    expected = EXPECTED.get(name)
    assert expected is not None, f"add the expected verdict for {name} to EXPECTED"
    result = parsed_or_error(name)
    if isinstance(expected, Refused):
        assert isinstance(result, SpecError), f"{name} was accepted: {result}"
        check_refused(name, result, expected)
    else:
        assert isinstance(result, ParsedSpec), f"{name} was refused: {result}"
        check_accepted(result, expected)


def check_accepted(parsed: ParsedSpec, expected: Accepted) -> None:
    spec = parsed.spec
    assert spec.name == expected.name
    assert spec.channels == expected.channels
    assert spec.dependencies == expected.dependencies
    assert spec.pip == expected.pip
    assert spec.variables == expected.variables
    assert parsed.pip_options == expected.pip_options
    assert parsed.pip_urls == expected.pip_urls
    assert len(parsed.warnings) == len(expected.warnings), parsed.warnings
    for warning, part in zip(parsed.warnings, expected.warnings, strict=True):
        assert part in warning
    if expected.name_problem is None:
        assert parsed.name_problem is None
    else:
        assert parsed.name_problem is not None
        assert expected.name_problem in parsed.name_problem
    # What was read is an environment.yml this project writes and reads back the same, with
    # nothing left to warn about but the name.
    again = parse_environment_yaml(spec.to_yaml())
    assert again.spec == spec
    assert again.name_problem == parsed.name_problem


def check_refused(name: str, error: SpecError, expected: Refused) -> None:
    message = str(error)
    assert error.source == name
    assert error.line == expected.line
    where = name if expected.line is None else f"{name}, line {expected.line}"
    assert message.startswith(f"{where}: ")
    for part in expected.message:
        assert part in message
    assert FIX.search(error.message), f"the message does not say what to change: {message}"
