"""Multi-platform locks on real rig environments: what is locked, the three formats (read back
by conda-lock's and rattler's own parsers), determinism, size and diffs of the embedded form,
the `lock` command, and hostile lock files."""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import os
from pathlib import Path

import pytest

from jupyter_repro.cli import main
from jupyter_repro.notebooks.embedded import METADATA_KEY
from jupyter_repro.notebooks.lock import render_lock
from jupyter_repro.notebooks.strip import NBSTRIPOUT_EXTRA_KEYS, StripOptions, strip_text
from jupyter_repro.specs import lock as lock_module
from jupyter_repro.specs.environment import SpecError
from jupyter_repro.specs.export import export_environment
from jupyter_repro.specs.lock import (
    Lock,
    LockedConda,
    LockError,
    PlatformLock,
    embedded_lock,
    locked_from_record,
    parse_conda_lock,
    parse_embedded_lock,
    parse_pixi_lock,
    render_conda_lock,
    render_pixi_lock,
)
from jupyter_repro.specs.locking import LockOptions, LockResult, lock_environment
from tests.rig import platforms as P
from tests.rig._aio import run_sync
from tests.rig.channel import PackageDef, RigChannel, build_channel, generic_package
from tests.rig.installation import CondaInstallation
from tests.rig.platforms import (
    LOCK_PLATFORMS,
    MultiPlatformEnv,
    create_dated_env,
    multi_platform_packages,
    solve_for_platform,
)

UTC = dt.timezone.utc
LOCKME_KERNEL = "conda-env-lockme-py"


def lock_prefix(
    prefix: Path, platforms: tuple[str, ...] = LOCK_PLATFORMS, name: str | None = None
) -> LockResult:
    return run_sync(lock_environment(prefix, LockOptions(platforms=platforms), name=name))


def installed_records(prefix: Path) -> dict[str, dict]:
    """conda-meta as plain JSON, by name: the independent view of what is installed."""
    records = (json.loads(p.read_text()) for p in (prefix / "conda-meta").glob("*.json"))
    return {r["name"]: r for r in records}


def hashes(part: PlatformLock) -> dict[str, tuple]:
    return {p.name: (p.url, p.sha256, p.md5) for p in part.conda}


def versions(part: PlatformLock) -> dict[str, str]:
    return {p.name: p.version for p in part.conda}


@pytest.fixture(scope="session")
def lockme_lock(multi_platform_env: MultiPlatformEnv) -> LockResult:
    """`lockme` locked for the four platforms (read-only: never change it)."""
    return lock_prefix(multi_platform_env.prefix)


@pytest.fixture
def lockme_environ(multi_platform_env: MultiPlatformEnv, monkeypatch) -> dict[str, str]:
    """This process confined to `lockme`'s installation, so its kernel resolves."""
    env = multi_platform_env.installation.environ()
    for key in list(os.environ):
        if key not in env:
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


# -- what is locked ----------------------------------------------------------------------------


def test_lockme_is_locked_for_every_platform(
    multi_platform_env, multi_platform_channel, lockme_lock
):
    lock = lockme_lock.lock
    installed = installed_records(multi_platform_env.prefix)

    assert lock.platform_names == LOCK_PLATFORMS
    assert lockme_lock.skipped == {}
    assert lockme_lock.summary()["packages"] == {
        "linux-64": 4,
        "osx-64": 4,
        "osx-arm64": 4,
        "win-64": 5,
    }
    # This machine's platform is what is installed, package for package.
    linux = lock.platform("linux-64")
    assert hashes(linux) == {n: (r["url"], r["sha256"], r["md5"]) for n, r in installed.items()}
    assert {p.name: p.build for p in linux.conda} == {n: r["build"] for n, r in installed.items()}
    # The other platforms: that platform's builds, at the installed versions.
    for platform in LOCK_PLATFORMS:
        part = lock.platform(platform)
        expected = {"python", "ipykernel", "pkgdemo", "libplat"}
        if platform == "win-64":
            expected.add(P.WINONLY_NAME)
        assert set(versions(part)) == expected
        assert {n: v for n, v in versions(part).items() if n in installed} == {
            n: r["version"] for n, r in installed.items()
        }
        libplat = next(p for p in part.conda if p.name == "libplat")
        assert libplat.url == f"{multi_platform_channel.url}/{platform}/libplat-1.1-0.conda"
        assert libplat.subdir == platform
        python = next(p for p in part.conda if p.name == "python")
        assert python.build == P.PYTHON_BUILDS[platform]
        for package in part.conda:
            assert package.subdir in (platform, "noarch")
            assert (
                package.url == f"{multi_platform_channel.url}/{package.subdir}/{package.filename}"
            )
            indexed = multi_platform_channel.repodata(package.subdir)["packages.conda"]
            record = indexed[package.filename]
            assert (package.sha256, package.md5) == (record["sha256"], record["md5"])
        assert len(lockme_lock.records[platform]) == len(part.conda)
    win_only = next(p for p in lock.platform("win-64").conda if p.name == P.WINONLY_NAME)
    assert win_only.url.endswith("/win-64/winonly-1.0-0.conda")
    # Where it came from and how to re-solve it.
    assert lock.as_of == P.LOCKME_CREATED.replace(tzinfo=UTC)
    assert lock.channels == (multi_platform_channel.url,)
    assert lock.conda_specs == export_environment(multi_platform_env.prefix).dependencies
    assert "libplat=1.1" in lock.conda_specs
    assert lock.name == "lockme"


def test_other_platforms_are_solved_as_of_the_environments_last_change(
    tmp_path_factory, conda_installation_factory
):
    """An environment made on 2025-01-01, when only libplat 1.0 existed, locks libplat 1.0 on
    every platform, although 1.1 was released into the channel since (and a solve today
    picks it): libplat is a dependency, not pinned, so only the date holds it back."""
    later = [p for p in multi_platform_packages() if (p.name, p.version) == ("libplat", "1.1")]
    first = [p for p in multi_platform_packages() if p not in later]
    channel = build_channel(tmp_path_factory.mktemp("as-of"), first, stamp_index_time=True)
    inst = conda_installation_factory(channel=channel)
    created = dt.datetime(2025, 1, 1, 12, 0, 0)
    prefix = create_dated_env(inst, "early", ("python", "ipykernel", "pkgdemo"), created)
    channel.add_packages(later)
    newest = solve_for_platform(channel, ["pkgdemo"], "osx-arm64")
    assert {r.name.normalized: str(r.version) for r in newest}["libplat"] == "1.1"

    result = lock_prefix(prefix)

    assert result.lock.as_of == created.replace(tzinfo=UTC)
    assert result.lock.platform_names == LOCK_PLATFORMS
    assert not any(s.startswith("libplat") for s in result.lock.conda_specs)
    for platform in LOCK_PLATFORMS:
        libplat = next(p for p in result.lock.platform(platform).conda if p.name == "libplat")
        assert (libplat.version, libplat.subdir) == ("1.0", platform)


def test_a_platform_that_cannot_be_solved_is_skipped_with_the_solvers_words(
    conda_installation_factory, multi_platform_channel
):
    inst = conda_installation_factory(channel=multi_platform_channel)
    prefix = create_dated_env(inst, "plat2", ("python", "plat2only"))

    result = lock_prefix(prefix)

    assert result.lock.platform_names == ("linux-64", "osx-64")
    assert set(result.skipped) == {"osx-arm64", "win-64"}
    for reason in result.skipped.values():
        assert "cannot be solved" in reason
        assert "plat2only" in reason
    assert result.summary()["skipped"] == result.skipped
    assert result.lock.platform("win-64") is None
    assert {p.name: p.subdir for p in result.lock.platform("osx-64").conda} == {
        "python": "osx-64",
        "plat2only": "osx-64",
    }
    assert parse_conda_lock(render_lock(result, "conda-lock")).platform_names == (
        "linux-64",
        "osx-64",
    )
    assert set(embedded_lock(result.lock)["platforms"]) == {"linux-64", "osx-64"}


# -- the formats -------------------------------------------------------------------------------


def test_conda_lock_yml_is_read_by_conda_lock_and_by_us(lockme_lock, tmp_path):
    from conda_lock.lockfile import parse_conda_lock_file

    lock = lockme_lock.lock
    text = render_lock(lockme_lock, "conda-lock")
    path = tmp_path / "conda-lock.yml"
    path.write_text(text)

    theirs = parse_conda_lock_file(path)

    assert theirs.metadata.platforms == list(LOCK_PLATFORMS)
    assert [c.url for c in theirs.metadata.channels] == list(lock.channels)
    assert len(theirs.package) == sum(len(p.conda) for p in lock.platforms) == 17
    for package in theirs.package:
        ours = next(p for p in lock.platform(package.platform).conda if p.name == package.name)
        assert package.manager == "conda"
        assert (package.version, package.url) == (ours.version, ours.url)
        assert (package.hash.md5, package.hash.sha256) == (ours.md5, ours.sha256)
        assert package.dependencies == dict(d.partition(" ")[::2] for d in ours.depends)
    pkgdemo = next(p for p in theirs.package if p.name == "pkgdemo")
    assert pkgdemo.dependencies == {"libplat": ">=1.0"}

    back = parse_conda_lock(path.read_bytes(), source=str(path))

    assert back.platform_names == LOCK_PLATFORMS
    for platform in LOCK_PLATFORMS:
        assert hashes(back.platform(platform)) == hashes(lock.platform(platform))
    assert (back.as_of, back.conda_specs, back.channels, back.name) == (
        lock.as_of,
        lock.conda_specs,
        lock.channels,
        lock.name,
    )
    assert embedded_lock(back) == embedded_lock(lock)
    assert render_conda_lock(back) == text


def test_pixi_lock_is_read_by_rattler_and_by_us(lockme_lock, tmp_path):
    from rattler import LockFile

    lock = lockme_lock.lock
    text = render_lock(lockme_lock, "pixi")
    path = tmp_path / "pixi.lock"
    path.write_text(text)

    theirs = LockFile.from_path(path)

    assert [name for name, _ in theirs.environments()] == ["default"]
    environment = theirs.environment("default")
    assert {p.name for p in environment.platforms()} == set(LOCK_PLATFORMS)
    by_platform = {p.name: packages for p, packages in environment.packages_by_platform().items()}
    assert set(by_platform) == set(LOCK_PLATFORMS)
    for platform, packages in by_platform.items():
        ours = lock.platform(platform)
        assert {p.name: p.hashes.sha256.hex() for p in packages} == {
            p.name: p.sha256 for p in ours.conda
        }
        assert {p.name: p.repo_data_record().url for p in packages} == {
            p.name: p.url for p in ours.conda
        }

    back = parse_pixi_lock(text)

    assert back.platform_names == LOCK_PLATFORMS
    assert back.channels == lock.channels
    for platform in LOCK_PLATFORMS:
        assert hashes(back.platform(platform)) == hashes(lock.platform(platform))
    assert embedded_lock(back)["platforms"] == embedded_lock(lock)["platforms"]


def test_locking_an_unchanged_environment_twice_gives_the_same_bytes(
    multi_platform_env, lockme_lock
):
    again = lock_prefix(multi_platform_env.prefix)

    for fmt in ("conda-lock", "pixi", "json"):
        assert render_lock(again, fmt).encode() == render_lock(lockme_lock, fmt).encode(), fmt
    assert again.lock.digest() == lockme_lock.lock.digest()


# -- the embedded form: size and diffs ---------------------------------------------------------

# 150 packages as a data-science environment has them: 104 noarch, 46 built per platform.
NOARCH_NAMES = """
anyio argon2-cffi arrow asttokens async-lru attrs babel beautifulsoup4 bleach cached-property
certifi charset-normalizer click cloudpickle colorama comm cycler dask-core decorator defusedxml
exceptiongroup executing fastjsonschema filelock fqdn fsspec h11 h2 hpack httpcore httpx
hyperframe idna importlib-metadata importlib-resources iniconfig ipykernel ipython
ipython-pygments-lexers isoduration jedi jinja2 joblib json5 jsonpointer jsonschema
jsonschema-specifications jupyter-client jupyter-core jupyter-events jupyter-lsp jupyter-server
jupyter-server-terminals jupyterlab jupyterlab-pygments jupyterlab-server locket
matplotlib-inline mistune munkres nbclient nbconvert-core nbformat nest-asyncio notebook-shim
overrides packaging pandocfilters parso partd pexpect pip platformdirs pluggy
prometheus-client prompt-toolkit ptyprocess pure-eval pycparser pygments pyparsing pysocks
pytest python-dateutil python-json-logger python-tzdata pytz referencing requests
rfc3339-validator rfc3986-validator send2trash setuptools six sniffio soupsieve stack-data
terminado threadpoolctl tinycss2 tomli toolz traitlets typing-extensions
""".split()  # noqa: SIM905
ARCH_NAMES = """
brotli-python bzip2 c-ares icu keyutils krb5 ld-impl-linux-64 libblas libcblas libcurl
libdeflate libedit libev libexpat libffi libgcc libgfortran libjpeg-turbo liblapack liblzma
libnghttp2 libopenblas libpng libsodium libsqlite libssh2 libstdcxx libtiff libuuid
libwebp-base libxcb libzlib lz4-c ncurses numpy openssl pandas pillow psutil pyyaml pyzmq
readline tk tornado zeromq zstd
""".split()  # noqa: SIM905
BUILT = dt.datetime(2024, 3, 1, tzinfo=UTC)
BIG_CREATED = dt.datetime(2025, 7, 1, 12, 0, 0)
OPENSSL_OLD, OPENSSL_NEW = "3.3.1", "3.3.2"


def _build_string(name: str, version: str, platform: str) -> str:
    """A build string shaped like conda-forge's (`h` + hash + number)."""
    return f"h{hashlib.sha256(f'{name}{version}{platform}'.encode()).hexdigest()[:8]}_0"


def _arch(name: str, version: str, platform: str, depends, when: dt.datetime) -> PackageDef:
    return PackageDef(
        name=name,
        version=version,
        build=_build_string(name, version, platform),
        subdir=platform,
        noarch=None,
        depends=tuple(depends),
        files={f"lib/{name}.txt": f"{name} {version} {platform}\n"},
        timestamp=when,
    )


def _arch_depends(index: int) -> list[str]:
    return sorted({ARCH_NAMES[j] for j in (index - 1, index // 2) if 0 <= j < index})


def big_packages() -> list[PackageDef]:
    packages = []
    for platform in LOCK_PLATFORMS:
        for i, name in enumerate(ARCH_NAMES):
            version = OPENSSL_OLD if name == "openssl" else f"{1 + i % 3}.{i % 11}.{i % 4}"
            when = BUILT + dt.timedelta(hours=i)
            packages.append(_arch(name, version, platform, _arch_depends(i), when))
    for i, name in enumerate(NOARCH_NAMES):
        depends = {NOARCH_NAMES[j] for j in (i - 1, i // 3) if 0 <= j < i}
        if i % 4 == 0:
            depends.add(f"{ARCH_NAMES[i % len(ARCH_NAMES)]} >=1")
        packages.append(
            generic_package(
                name,
                f"{i % 4}.{i % 13}.{i % 3}",
                sorted(depends),
                build="pyhd8ed1ab_0",
                timestamp=BUILT + dt.timedelta(hours=i),
            )
        )
    return packages


def embedded_lines(result: LockResult) -> list[str]:
    """The embedded lock as nbformat writes notebook JSON (indent 1, keys sorted)."""
    text = json.dumps(embedded_lock(result.lock), indent=1, sort_keys=True, ensure_ascii=False)
    return text.splitlines()


def test_embedded_lock_of_150_packages_is_small_and_a_relock_changes_one_packages_lines(
    tmp_path_factory, conda_installation_factory
):
    assert (len(NOARCH_NAMES), len(ARCH_NAMES)) == (104, 46)
    channel: RigChannel = build_channel(
        tmp_path_factory.mktemp("big-channel"), big_packages(), stamp_index_time=True
    )
    inst: CondaInstallation = conda_installation_factory(channel=channel, root_specs=())
    prefix = create_dated_env(inst, "big", [*NOARCH_NAMES, *ARCH_NAMES], BIG_CREATED)

    before = lock_prefix(prefix)

    assert before.skipped == {}
    assert before.summary()["packages"] == {p: 150 for p in LOCK_PLATFORMS}
    old_lines = embedded_lines(before)
    size = len("\n".join(old_lines).encode())
    assert size <= 100_000, f"the embedded lock of 150 packages on 4 platforms is {size:,} bytes"

    # Upgrade one package (a newer openssl, built for every platform) and lock again.
    openssl = next(p for p in channel.packages if p.name == "openssl")
    channel.add_packages(
        [
            _arch("openssl", OPENSSL_NEW, p, openssl.depends, dt.datetime(2025, 7, 2, tzinfo=UTC))
            for p in LOCK_PLATFORMS
        ]
    )
    inst.add_packages(prefix, [f"openssl={OPENSSL_NEW}"])
    after = lock_prefix(prefix)
    new_lines = embedded_lines(after)

    diff = list(difflib.unified_diff(old_lines, new_lines, lineterm="", n=0))
    removed = [line[1:].strip() for line in diff if line[:1] == "-" and line[:3] != "---"]
    added = [line[1:].strip() for line in diff if line[:1] == "+" and line[:3] != "+++"]
    # Keys sorted: `as_of` (the history's new entry), each platform's line, the spec's pin.
    assert removed[0] == '"as_of": "2025-07-01T12:00:00Z",'
    assert added[0].startswith('"as_of": ')
    assert after.lock.as_of > before.lock.as_of
    assert removed[1:] == [
        f'"{p}/openssl-{OPENSSL_OLD}-{_build_string("openssl", OPENSSL_OLD, p)}.conda#'
        f'{_sha(before, p, "openssl")}",'
        for p in LOCK_PLATFORMS
    ] + [f'"openssl={OPENSSL_OLD}",']
    assert added[1:] == [
        f'"{p}/openssl-{OPENSSL_NEW}-{_build_string("openssl", OPENSSL_NEW, p)}.conda#'
        f'{_sha(after, p, "openssl")}",'
        for p in LOCK_PLATFORMS
    ] + [f'"openssl={OPENSSL_NEW}",']
    assert len(new_lines) == len(old_lines)


def _sha(result: LockResult, platform: str, name: str) -> str:
    package = next(p for p in result.lock.platform(platform).conda if p.name == name)
    assert package.sha256
    return package.sha256


# -- the command -------------------------------------------------------------------------------


def write_notebook(path: Path, kernel: str | None, repro: dict | None = None) -> Path:
    metadata: dict = {"signature": "hex:0123"}
    if kernel:
        metadata["kernelspec"] = {"name": kernel, "display_name": "lockme", "language": "python"}
    if repro is not None:
        metadata[METADATA_KEY] = repro
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 3,
                "id": "first",
                "metadata": {},
                "outputs": [{"name": "stdout", "output_type": "stream", "text": ["2\n"]}],
                "source": ["print(1 + 1)"],
            }
        ],
        "metadata": metadata,
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1, sort_keys=True) + "\n")
    return path


def test_cli_embeds_the_lock_in_the_notebook_and_strip_keeps_it(
    lockme_environ, multi_platform_env, lockme_lock, tmp_path, capsys
):
    fingerprints = {"sha256:abc": {"verified": "2025-07-02T00:00:00Z"}}
    notebook = write_notebook(
        tmp_path / "analysis.ipynb", LOCKME_KERNEL, {"fingerprints": fingerprints}
    )

    assert main(["lock", str(notebook), "--embed"]) == 0

    err = capsys.readouterr().err
    assert f"embedded the lock for {', '.join(LOCK_PLATFORMS)} in {notebook}" in err
    data = json.loads(notebook.read_text())
    repro = data["metadata"][METADATA_KEY]
    assert repro["lock"] == embedded_lock(lockme_lock.lock)
    assert parse_embedded_lock(repro["lock"], source="nb").platform_names == LOCK_PLATFORMS
    assert (
        repro["environment"]
        == export_environment(multi_platform_env.prefix, name="lockme").to_dict()
    )
    assert (repro["exported"]["mode"], repro["exported"]["platform"]) == ("portable", "linux-64")
    assert repro["fingerprints"] == fingerprints
    assert "explicit" not in repro
    assert data["metadata"]["kernelspec"]["name"] == LOCKME_KERNEL
    assert data["cells"][0]["outputs"]  # embedding touches nothing else

    # A policy that asks to strip the lock: stripping still never removes jupyter_repro.
    (tmp_path / "pyproject.toml").write_text(
        "[tool.jupyter_repro.strip]\n"
        f'extra_keys = ["metadata.{METADATA_KEY}.lock", "metadata.{METADATA_KEY}"]\n'
    )
    assert main(["strip", str(notebook)]) == 0

    stripped = json.loads(notebook.read_text())
    assert stripped["cells"][0]["outputs"] == []
    assert stripped["cells"][0]["execution_count"] is None
    assert "signature" not in stripped["metadata"]
    # Kept, with the stripped outputs' fingerprints recorded (tests/test_fingerprint.py).
    assert stripped["metadata"][METADATA_KEY] == {
        **repro,
        "fingerprints": {"first": stripped["metadata"][METADATA_KEY]["fingerprints"]["first"]},
    }

    options = StripOptions(
        extra_keys=(*NBSTRIPOUT_EXTRA_KEYS, f"metadata.{METADATA_KEY}.lock"),
        keep_output=False,
    )
    again = json.loads(strip_text(json.dumps(data), options).text)
    assert again["metadata"][METADATA_KEY]["lock"] == repro["lock"]


def test_cli_writes_a_lock_file_or_prints_it(multi_platform_env, tmp_path, capsys):
    prefix = str(multi_platform_env.prefix)
    out = tmp_path / "pixi.lock"
    two = ["--platform", "linux-64", "--platform", "win-64"]

    assert main(["lock", "--prefix", prefix, *two, "--format", "pixi", "-o", str(out)]) == 0

    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"wrote the lock for linux-64, win-64 to {out}" in captured.err
    assert parse_pixi_lock(out.read_text()).platform_names == ("linux-64", "win-64")
    assert [p.name for p in tmp_path.iterdir()] == ["pixi.lock"]  # no temporary file left

    expected = lock_prefix(multi_platform_env.prefix, ("linux-64", "win-64"))
    assert main(["lock", "--prefix", prefix, *two, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == embedded_lock(expected.lock)

    assert main(["lock", "--prefix", prefix, "--platform", "osx-arm64"]) == 0
    printed = parse_conda_lock(capsys.readouterr().out)
    assert printed.platform_names == ("osx-arm64",)  # another platform alone: solved only


@pytest.mark.parametrize("typo", ["amiga-68k", "osx-arm", "noarch", "freebsd-64"])
def test_cli_an_unknown_platform_is_refused_before_any_work(multi_platform_env, capsys, typo):
    """A typo (`osx-arm`) must not quietly give a lock without the platform meant."""
    prefix = str(multi_platform_env.prefix)
    argv = ["lock", "--prefix", prefix, "--platform", "linux-64", "--platform", typo]

    assert main(argv) == 2

    captured = capsys.readouterr()
    assert f"cannot lock for platform '{typo}'" in captured.err
    assert "osx-arm64" in captured.err  # the message says which platforms can be locked
    assert captured.out == ""


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        ([], 2, "give exactly one of NOTEBOOK, --env NAME or --prefix PATH"),
        (["PREFIX:env", "--embed"], 2, "--embed writes into a notebook: give a NOTEBOOK"),
        (["NOTEBOOK", "--embed", "-o", "OUT"], 2, "--embed and -o cannot be combined"),
        (["PREFIX:env", "NOTEBOOK"], 2, "give exactly one of"),
        (["PREFIX:plain"], 1, "is not a conda environment"),
        (["PREFIX:env", "-o", "DIR:missing/conda-lock.yml"], 1, "does not exist"),
    ],
)
def test_cli_errors(multi_platform_env, tmp_path, capsys, args, status, message):
    (tmp_path / "plain").mkdir()
    notebook = write_notebook(tmp_path / "nb.ipynb", LOCKME_KERNEL)
    before = notebook.read_bytes()
    resolved: list[str] = []
    for arg in args:
        kind, _, rest = arg.partition(":")
        if kind == "PREFIX":
            prefix = multi_platform_env.prefix if rest == "env" else tmp_path / rest
            resolved += ["--prefix", str(prefix)]
        elif kind == "NOTEBOOK":
            resolved.append(str(notebook))
        elif kind == "OUT":
            resolved.append(str(tmp_path / "out.yml"))
        elif kind == "DIR":
            resolved.append(str(tmp_path / rest))
        else:
            resolved.append(arg)

    assert main(["lock", *resolved]) == status

    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.err.startswith("jupyter repro lock: error: ")
    assert captured.out == ""
    assert notebook.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb", "plain"]


# -- hostile and secret-bearing locks ----------------------------------------------------------

SHA = "ab" * 32
MD5 = "cd" * 16
FORGE = "https://conda.example.com/forge"


def conda_lock_text(url: str = f"{FORGE}/linux-64/foo-1.0-0.conda", sha256: str = SHA) -> str:
    return (
        "version: 1\n"
        "metadata:\n"
        "  channels:\n"
        f"  - url: {FORGE}\n"
        "  platforms: [linux-64]\n"
        "package:\n"
        "- name: foo\n"
        "  version: '1.0'\n"
        "  manager: conda\n"
        "  platform: linux-64\n"
        "  dependencies: {}\n"
        f"  url: {url}\n"
        "  hash:\n"
        f"    md5: {MD5}\n"
        f"    sha256: {sha256}\n"
    )


def embedded_data(channel: str = FORGE, line: str = f"linux-64/foo-1.0-0.conda#{SHA}") -> dict:
    return {
        "version": 1,
        "channels": [channel],
        "specs": {"conda": ["foo=1.0"], "pip": []},
        "platforms": {"linux-64": {"conda": {channel: [line]}}},
    }


@pytest.fixture(scope="module")
def pixi_text(multi_platform_channel) -> str:
    """A small real pixi.lock (linux-64 and win-64 of `lockme`'s packages)."""
    records = {
        p: solve_for_platform(multi_platform_channel, P.LOCKME_SPECS, p)
        for p in ("linux-64", "win-64")
    }
    lock = Lock(
        platforms=tuple(
            PlatformLock(p, tuple(locked_from_record(r) for r in rs)) for p, rs in records.items()
        ),
        channels=(multi_platform_channel.url,),
    )
    return render_pixi_lock(lock, records)


def test_the_well_formed_inputs_of_the_hostile_cases_parse(pixi_text, multi_platform_channel):
    """The hostile cases below are one change away from these, which read fine."""
    (foo,) = parse_conda_lock(conda_lock_text()).platform("linux-64").conda
    assert (foo.name, foo.url, foo.sha256, foo.md5) == (
        "foo",
        f"{FORGE}/linux-64/foo-1.0-0.conda",
        SHA,
        MD5,
    )
    (foo,) = parse_embedded_lock(embedded_data(), source="nb").platform("linux-64").conda
    assert (foo.channel, foo.sha256) == (FORGE, SHA)
    assert parse_pixi_lock(pixi_text).platform_names == ("linux-64", "win-64")
    assert multi_platform_channel.url in pixi_text or str(multi_platform_channel.path) in pixi_text


ALIAS_BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "version: 1\nmetadata: {}\npackage: *i\n"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ALIAS_BOMB, "YAML aliases are not allowed"),
        ("version: 1\npackage: !!python/object/apply:os.system ['true']\n", "python/object"),
        ("version: 1\nmetadata: !!python/object:builtins.dict {}\npackage: []\n", "python/object"),
        ("version: 1\npackage: !local [1]\n", "YAML tag '!local' is not allowed"),
        (conda_lock_text(url="not-a-url"), "'not-a-url' is not a URL"),
        (conda_lock_text(url="javascript alert(1)"), "is not a URL"),
        (conda_lock_text(sha256="z" * 64), "invalid sha256"),
        (conda_lock_text(sha256="ab" * 31), "invalid sha256"),
        (conda_lock_text(url=f"{FORGE}/linux-64/../../../etc/passwd"), "does not end in"),
        (conda_lock_text().replace("version: 1", "version: 2"), "unsupported conda-lock version 2"),
        # name, version and build name files (conda-meta, the package cache): no paths
        (
            conda_lock_text().replace("- name: foo", "- name: ../../../home/u/.bashrc"),
            "its name '../../../home/u/.bashrc' is not a conda package name",
        ),
        (
            conda_lock_text().replace("version: '1.0'", "version: '1.0/../x'"),
            "its version '1.0/../x' is not a conda package version",
        ),
        (
            conda_lock_text().replace("- name: foo", "- name: .hidden"),
            "its name '.hidden' is not a conda package name",
        ),
        (
            conda_lock_text().replace("- name: foo", "- name: bar"),
            "its file 'foo-1.0-0.conda' is not bar-1.0-0.conda or bar-1.0-0.tar.bz2",
        ),
        ("version: 1\nmetadata: {}\n", "no 'package' list"),
        ("[1, 2]\n", "no 'package' list"),
        ("version: 1\npackage: [\n", "not valid YAML"),
    ],
)
def test_hostile_conda_lock_is_refused(text, message):
    with pytest.raises(LockError) as info:
        parse_conda_lock(text, source="conda-lock.yml")
    assert isinstance(info.value, SpecError)
    assert message in str(info.value)
    assert str(info.value).startswith("conda-lock.yml")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**embedded_data(), "version": 2}, "unsupported lock version 2"),
        ({**embedded_data(), "version": "1"}, "unsupported lock version '1'"),
        (embedded_data(channel="not a url"), "is not a URL"),
        (embedded_data(line=f"linux-64/foo-1.0-0.conda#{'z' * 64}"), "invalid sha256"),
        (embedded_data(line=f"linux-64/../foo-1.0-0.conda#{SHA}"), "is not 'subdir/file#sha256'"),
        (embedded_data(line=f"../etc/foo-1.0-0.conda#{SHA}"), "is not 'subdir/file#sha256'"),
        (embedded_data(line="linux-64/passwd"), "does not end in name-version-build.conda"),
        (
            embedded_data(line=f"linux-64/foo bar-1.0-0.conda#{SHA}"),
            "its name 'foo bar' is not a conda package name",
        ),
        ({**embedded_data(), "platforms": {}}, "the lock has no platforms"),
        ({**embedded_data(), "platforms": {"noarch": {"conda": {}}}}, "is not a conda platform"),
        ({**embedded_data(), "platforms": {"amiga-68k": {"conda": {}}}}, "is not a conda platform"),
        ({**embedded_data(), "channels": "https://x"}, "'channels' must be a list of strings"),
        ([embedded_data()], "the lock is not a JSON object"),
    ],
)
def test_hostile_embedded_lock_is_refused(data, message):
    with pytest.raises(LockError) as info:
        parse_embedded_lock(data, source="nb.ipynb: metadata.jupyter_repro.lock")
    assert message in str(info.value)
    assert str(info.value).startswith("nb.ipynb: metadata.jupyter_repro.lock: ")


def _first_sha_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith("sha256: "))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("bomb", "repetition limit exceeded"),
        ("tag", "not a readable pixi.lock"),
        ("not-a-url", "not a readable pixi.lock"),
        ("bad-sha", "not a readable pixi.lock"),
        ("version-2", "not a readable pixi.lock"),
        ("version-99", "version 99"),
        ("environment", "the lock has no environment 'default' (it has: other)"),
    ],
)
def test_hostile_pixi_lock_is_refused(pixi_text, change, message):
    sha = _first_sha_line(pixi_text)
    text = {
        "bomb": ALIAS_BOMB.replace("version: 1\nmetadata: {}\npackage: *i\n", "")
        + "version: 6\nenvironments: *i\npackages: []\n",
        "tag": "version: 6\nenvironments: !!python/object/apply:os.system ['true']\npackages: []\n",
        "not-a-url": pixi_text.replace("- conda: ", "- conda: 'not a url' #", 1),
        "bad-sha": pixi_text.replace(sha, sha.split(":")[0] + ": " + "z" * 64),
        "version-2": pixi_text.replace("version: 7", "version: 2", 1),
        "version-99": pixi_text.replace("version: 7", "version: 99", 1),
        "environment": pixi_text.replace("  default:", "  other:", 1),
    }[change]
    assert text != pixi_text

    with pytest.raises(LockError) as info:
        parse_pixi_lock(text)
    assert message in str(info.value)
    assert str(info.value).startswith("pixi.lock: ")


def test_a_lock_over_the_size_limit_is_refused_before_parsing(monkeypatch, pixi_text):
    monkeypatch.setattr(lock_module, "MAX_LOCK_BYTES", 1_000)
    text = conda_lock_text() + "#" * 1_000 + "\n"
    for given in (text, text.encode()):
        with pytest.raises(LockError, match="too large") as info:
            parse_conda_lock(given, source="conda-lock.yml")
        assert "1,000 bytes" in str(info.value)
        assert "lock file" in str(info.value)
    # Multi-byte characters count as bytes: 600 characters, 1,200 bytes.
    with pytest.raises(LockError, match="too large"):
        parse_conda_lock(conda_lock_text() + "# " + "é" * 600 + "\n")
    assert len(pixi_text) > 1_000
    with pytest.raises(LockError, match="too large"):
        parse_pixi_lock(pixi_text)
    with pytest.raises(LockError, match="too large"):
        lock_module.parse_lock_text(pixi_text, source="pixi.lock")
    monkeypatch.setattr(lock_module, "MAX_LOCK_BYTES", len(pixi_text.encode()))
    assert parse_pixi_lock(pixi_text).platform_names == ("linux-64", "win-64")


SECRET_CHANNEL = "https://user:s3cret-pw@conda.example.com/t/tk-0123456789/private"
SECRETS = ("s3cret-pw", "tk-0123456789", "user:")


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} shown in {text[:300]!r}"


@pytest.mark.parametrize(
    "text",
    [
        conda_lock_text(url=f"{SECRET_CHANNEL}/linux-64/foo.whl"),
        conda_lock_text(url=f"{SECRET_CHANNEL}/linux-64/foo 1.0.conda"),
        conda_lock_text(url=f"{SECRET_CHANNEL}/linux-64/foo-1.0-0.conda", sha256="nope"),
    ],
)
def test_messages_never_show_credentials(text):
    with pytest.raises(LockError) as info:
        parse_conda_lock(text)
    assert_no_secret(str(info.value))


def test_embedded_and_pixi_messages_never_show_credentials(pixi_text, multi_platform_channel):
    for data in (
        embedded_data(channel=SECRET_CHANNEL, line="linux-64/passwd"),
        embedded_data(channel=f"{SECRET_CHANNEL} x"),
        embedded_data(channel=SECRET_CHANNEL, line=f"{SECRET_CHANNEL}/linux-64/x.conda"),
    ):
        with pytest.raises(LockError) as info:
            parse_embedded_lock(data, source="nb")
        assert_no_secret(str(info.value))
    # A package the lock's environment names but does not list: rattler's message names its URL.
    private = pixi_text.replace(f"{multi_platform_channel.url}", SECRET_CHANNEL).replace(
        str(multi_platform_channel.path), SECRET_CHANNEL
    )
    broken = private.replace("libplat-1.1-0.conda", "libplat.conda", 1)
    with pytest.raises(LockError, match=r"libplat\.conda") as info:
        parse_pixi_lock(broken)
    assert_no_secret(str(info.value))


def test_rendered_conda_lock_never_shows_credentials():
    url = f"{SECRET_CHANNEL}/linux-64/foo-1.0-0.conda"
    package = LockedConda("foo", "1.0", "0", "linux-64", url, SECRET_CHANNEL, SHA, MD5)
    lock = Lock(platforms=(PlatformLock("linux-64", (package,)),), channels=(SECRET_CHANNEL,))

    text = render_conda_lock(lock)

    assert_no_secret(text)
    assert "https://conda.example.com/private/linux-64/foo-1.0-0.conda" in text
    assert "url: https://conda.example.com/private\n" in text
    (back,) = parse_conda_lock(text).platform("linux-64").conda
    assert (back.url, back.sha256, back.md5) == (
        "https://conda.example.com/private/linux-64/foo-1.0-0.conda",
        SHA,
        MD5,
    )


def test_locking_an_environment_from_a_private_channel_shows_no_credentials(
    conda_installation_factory, multi_platform_channel
):
    """conda-meta of an environment installed from a channel with a token keeps the token in
    each record's url and channel; no format of its lock may show it (pixi included, whose
    records are written whole)."""
    inst = conda_installation_factory(channel=multi_platform_channel)
    prefix = create_dated_env(inst, "private")
    for path in (prefix / "conda-meta").glob("*.json"):
        record = json.loads(path.read_text())
        record["url"] = record["url"].replace(multi_platform_channel.url, SECRET_CHANNEL)
        record["channel"] = SECRET_CHANNEL
        path.write_text(json.dumps(record))

    result = lock_prefix(prefix, ("linux-64",))

    public = "https://conda.example.com/private"
    assert result.lock.channels == (public,)
    assert {p.channel for p in result.lock.platform("linux-64").conda} == {public}
    for fmt in ("conda-lock", "pixi", "json"):
        text = render_lock(result, fmt)
        assert_no_secret(text)
        assert public in text, fmt
        if fmt != "json":  # the embedded form lists `subdir/file` under each channel
            assert f"{public}/linux-64/libplat-1.1-0.conda" in text, fmt
    back = parse_pixi_lock(render_lock(result, "pixi"))
    assert hashes(back.platform("linux-64")) == hashes(result.lock.platform("linux-64"))


@pytest.mark.parametrize(
    ("channel", "url", "expected"),
    [
        # conda before 24: the channel with its subdir
        (
            "https://conda.anaconda.org/conda-forge/linux-64",
            "https://conda.anaconda.org/conda-forge/linux-64/libplat-1.1-0.conda",
            "https://conda.anaconda.org/conda-forge",
        ),
        (
            "https://repo.anaconda.com/pkgs/main/noarch",
            "https://repo.anaconda.com/pkgs/main/noarch/six-1.16.0-pyhd3eb1b0_1.tar.bz2",
            "https://repo.anaconda.com/pkgs/main",
        ),
        # newer conda: a bare name
        (
            "conda-forge",
            "https://conda.anaconda.org/conda-forge/noarch/pkgdemo-1.0-0.conda",
            "https://conda.anaconda.org/conda-forge",
        ),
        # a token in the URL is redacted
        (
            "private",
            "https://conda.example.org/t/secret-token/private/linux-64/x-1-0.conda",
            "https://conda.example.org/private",
        ),
    ],
)
def test_a_records_channel_comes_from_its_package_url(channel, url, expected):
    from types import SimpleNamespace

    from jupyter_repro.specs.lock import record_channel

    subdir = url.rsplit("/", 2)[1]
    record = SimpleNamespace(url=url, subdir=subdir, channel=channel)

    assert record_channel(record) == expected


def test_the_lock_lists_channels_of_old_and_new_style_records():
    from types import SimpleNamespace

    from jupyter_repro.specs.locking import _channel_urls

    records = [
        SimpleNamespace(
            url="https://conda.anaconda.org/conda-forge/linux-64/a-1-0.conda",
            subdir="linux-64",
            channel="https://conda.anaconda.org/conda-forge/linux-64",
        ),
        SimpleNamespace(
            url="https://conda.anaconda.org/bioconda/noarch/b-1-0.conda",
            subdir="noarch",
            channel="bioconda",
        ),
    ]

    assert _channel_urls(["conda-forge", "bioconda"], records) == [
        "https://conda.anaconda.org/conda-forge",
        "https://conda.anaconda.org/bioconda",
    ]
