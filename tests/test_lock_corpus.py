"""Locks shaped like those in public repositories, not like the rig's.

tests/corpus/locks/ holds one file per pattern met in real `conda-lock.yml` and `pixi.lock`
files: conda-lock files written before 1.0 (no `version` key, `channels: - url: conda-forge`,
`.tar.bz2` archives, quoted versions such as '1.0' and '1', names such as `_libgcc_mutex`,
`gcc_linux-64` and `python-stratify` with `0.2.post0`, builds such as `2_gnu` and `mpich`, a
dev-only optional package, a pip wheel whose local version is `%2B`-encoded in its URL); an
older lock against `defaults` with md5 hashes only; and a pixi.lock (version 6) whose names hold
dashes and dots (`cairomm-1.16`, `libxml2-16`) or start with an underscore. Each is read,
planned and written back as the restore reads it, and where conda-lock itself reads a file its
parser is the oracle. (The hashes are made up: nothing here is downloaded.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jupyter_repro.restore.service import RestoreOptions, RestoreService
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.lock import Lock, parse_conda_lock, render_conda_lock

CORPUS = Path(__file__).parent / "corpus" / "locks"

EXPECTED: dict[str, dict[str, list[str]]] = {
    "conda-lock-v1-conda-forge.yml": {
        "linux-64": [
            "_libgcc_mutex-0.1-conda_forge",
            "_openmp_mutex-4.5-2_gnu",
            "fonts-conda-forge-1-0",
            "gcc_linux-64-10.3.0-hc39de41_6",
            "libedit-3.1.20250104-pl5321h7949ede_0",
            "libgomp-12.2.0-h65d4601_19",
            "mpi-1.0-mpich",
            "python-3.10.14-hd12c33a_0_cpython",
            "python-stratify-0.2.post0-py310hde88566_1",
            "toolz-0.11.2-pyhd8ed1ab_0",
        ],
    },
    "conda-lock-v1-defaults-md5-only.yml": {
        "linux-64": [
            "ca-certificates-2023.01.10-h06a4308_0",
            "openssl-1.1.1t-h7f8727e_0",
            "six-1.16.0-pyhd3eb1b0_1",
        ],
        "osx-arm64": [
            "ca-certificates-2023.01.10-hca03da5_0",
            "openssl-1.1.1t-h1a28f6b_0",
            "six-1.16.0-pyhd3eb1b0_1",
        ],
    },
    "pixi-v6-two-platforms.lock": {
        "linux-64": [
            "_libgcc_mutex-0.1-conda_forge",
            "_openmp_mutex-4.5-2_gnu",
            "font-ttf-inconsolata-3.000-h77eed37_0",
            "fonts-conda-ecosystem-1-0",
            "libgomp-15.2.0-h767d61c_7",
        ],
        "osx-arm64": [
            "_python_abi3_support-1.0-hd8ed1ab_2",
            "cairomm-1.16-1.16.2-h136753c_1",
            "font-ttf-inconsolata-3.000-h77eed37_0",
            "fonts-conda-ecosystem-1-0",
            "libedit-3.1.20250104-pl5321hafb1f1b_0",
            "libxml2-16-2.15.1-h0ff4647_0",
        ],
    },
}


def test_every_corpus_file_has_an_expectation():
    assert {p.name for p in CORPUS.iterdir()} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_real_world_lock_reads_with_every_package(name: str) -> None:
    source = load_source(file=CORPUS / name)

    assert source.kind == "lock"
    assert source.lock is not None
    found = {p.platform: sorted(c.dist_name for c in p.conda) for p in source.lock.platforms}
    assert found == EXPECTED[name]
    for part in source.lock.platforms:
        for package in part.conda:
            assert package.problem() is None
            assert package.sha256 or package.md5
            assert package.subdir in (part.platform, "noarch")


def test_a_conda_lock_file_without_a_version_is_read_as_version_1_with_a_note():
    """conda-lock before 1.0 wrote no `version`; conda-lock now refuses such files, which
    public repositories still hold: read them, and say so in the plan."""
    from conda_lock.lockfile import parse_conda_lock_file

    path = CORPUS / "conda-lock-v1-conda-forge.yml"
    with pytest.raises(Exception, match="missing a version"):
        parse_conda_lock_file(path)

    source = load_source(file=path)

    assert any("has no 'version'" in w and "read as version 1" in w for w in source.warnings)
    assert source.lock is not None
    (part,) = source.lock.platforms
    # The dev-only optional package is not part of what is restored; the pip wheel is, with
    # its local version and its URL as written.
    assert "pytest" not in {c.name for c in part.conda}
    (torch,) = part.pypi
    assert (torch.name, torch.version) == ("torch", "2.1.0+cpu")
    assert torch.url is not None
    assert "%2Bcpu" in torch.url


def test_conda_lock_reads_the_versioned_file_as_we_do():
    from conda_lock.lockfile import parse_conda_lock_file

    path = CORPUS / "conda-lock-v1-defaults-md5-only.yml"
    theirs = parse_conda_lock_file(path)
    ours = load_source(file=path).lock
    assert ours is not None

    assert {(p.platform, p.url, p.hash.md5) for p in theirs.package} == {
        (part.platform, c.url, c.md5) for part in ours.platforms for c in part.conda
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_real_world_lock_is_planned_without_a_download_and_written_back_the_same(
    name: str, tmp_path: Path
) -> None:
    source = load_source(file=CORPUS / name)
    assert source.lock is not None
    service = RestoreService(
        RestoreOptions(cache_dir=tmp_path / "cache"),
        environ={"HOME": str(tmp_path)},
        home=tmp_path,
    )

    plan = asyncio.run(service.plan(source, prefix=str(tmp_path / "env")))

    linux = source.lock.platform("linux-64")
    assert linux is not None
    assert [f"{p.name}-{p.version}-{p.build}" for p in plan.packages] == [
        c.dist_name for c in linux.conda
    ]
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "env").exists()

    # Our conda-lock writer keeps every package as it was read: what names and checks it,
    # and its dependencies. CEP 37 has no size, build number or timestamp, and one entry per
    # dependency name: a name given twice (`libcxx >=16`, `libcxx`) keeps its constraint.
    def kept(lock: Lock) -> list[tuple[object, ...]]:
        return [
            (
                *(part.platform, c.name, c.version, c.build, c.subdir, c.url, c.channel),
                *(c.sha256, c.md5),
                frozenset(d for d in c.depends if " " in d or not _constrained(d, c)),
            )
            for part in lock.platforms
            for c in part.conda
        ]

    again = parse_conda_lock(render_conda_lock(source.lock), source="again")
    assert kept(again) == kept(source.lock)


def _constrained(name: str, package: object) -> bool:
    """Whether `package` also names `name` with a constraint (a bare duplicate then adds
    nothing)."""
    return any(d.startswith(f"{name} ") for d in getattr(package, "depends", ()))
