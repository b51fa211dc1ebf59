"""Packages whose info/paths.json would write outside the prefix are refused before rattler
links them (an absolute path makes rattler abort the whole process; `..` writes outside).

The archives are crafted `.conda` files (zip: metadata.json, pkg-*.tar.zst, info-*.tar.zst)
installed from a lock, as a capsule's or a stranger's lock would bring them."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
import zstandard

from jupyter_repro.restore.errors import RestoreError
from jupyter_repro.restore.package_paths import (
    PackagePaths,
    UnsafePackage,
    check_paths,
    path_problem,
)
from jupyter_repro.restore.source import load_source
from jupyter_repro.specs.lock import Lock, LockedConda, PlatformLock
from tests.test_lock_restore import Fresh, write_lock

File = tuple[str, bytes | None, str | None]  # (path, data for a file, target for a link)


def _tar_zst(members: list[File]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            if link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = link
                tar.addfile(info)
            else:
                assert data is not None
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return zstandard.ZstdCompressor().compress(buffer.getvalue())


def conda_archive(
    folder: Path, name: str, files: list[File], listed: list[str] | None = None
) -> Path:
    """`<name>-1.0-0.conda` (noarch) holding `files`; its paths.json lists `listed` (default:
    the files' own paths) as what it writes."""
    dist = f"{name}-1.0-0"
    index = {
        "name": name,
        "version": "1.0",
        "build": "0",
        "build_number": 0,
        "subdir": "noarch",
        "noarch": "generic",
        "depends": [],
    }
    by_path = {path: (data, link) for path, data, link in files}
    entries = []
    for path in listed if listed is not None else list(by_path):
        data, link = by_path.get(path, (b"x", None))
        if link is not None:
            entries.append({"_path": path, "path_type": "softlink"})
        else:
            assert data is not None
            entries.append(
                {
                    "_path": path,
                    "path_type": "hardlink",
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size_in_bytes": len(data),
                }
            )
    info = _tar_zst(
        [
            ("info/index.json", json.dumps(index).encode(), None),
            ("info/paths.json", json.dumps({"paths": entries, "paths_version": 1}).encode(), None),
        ]
    )
    archive = folder / "noarch" / f"{dist}.conda"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        out.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        out.writestr(f"pkg-{dist}.tar.zst", _tar_zst(files))
        out.writestr(f"info-{dist}.tar.zst", info)
    return archive


def lock_of(folder: Path, archives: list[Path]) -> Lock:
    packages = []
    for archive in archives:
        data = archive.read_bytes()
        name, version, build = archive.name.removesuffix(".conda").rsplit("-", 2)
        packages.append(
            LockedConda(
                name=name,
                version=version,
                build=build,
                subdir="noarch",
                url=archive.as_uri(),
                channel=folder.as_uri(),
                sha256=hashlib.sha256(data).hexdigest(),
                md5=hashlib.md5(data).hexdigest(),
                size=len(data),
                noarch="generic",
            )
        )
    return Lock(
        platforms=(PlatformLock("linux-64", tuple(packages)),),
        channels=(folder.as_uri(),),
        conda_specs=tuple(p.name for p in packages),
        name="crafted",
    )


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("lib/libx.so", None),
        ("site-packages/a b/c.py", None),
        ("/etc/passwd", "absolute"),
        ("\\\\server\\share", "absolute"),
        ("C:/Windows/x", "absolute"),
        ("../outside", "'..'"),
        ("share/../../outside", "'..'"),
        ("share\\..\\..\\outside", "'..'"),
        ("share//x", "empty part"),
        ("./x", "'.'"),
        ("", "empty"),
        ("a\x00b", "NUL"),
    ],
)
def test_path_problem(path: str, problem: str | None) -> None:
    found = path_problem(path)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("files", "listed", "message"),
    [
        ([("share/x", b"x", None)], ["/tmp/jupyter-repro-pwned-abs"], "an absolute path"),
        ([("share/x", b"x", None)], ["../../../jupyter-repro-pwned"], "'..'"),
        (
            [("share/evil", None, "/tmp"), ("share/evil/jupyter-repro-pwned", b"x", None)],
            None,
            "through the symbolic link 'share/evil'",
        ),
    ],
    ids=["absolute", "dotdot", "through-a-link"],
)
async def test_a_package_writing_outside_the_prefix_is_refused_and_nothing_is_left(
    tmp_path: Path, files: list[File], listed: list[str] | None, message: str
) -> None:
    fresh = Fresh(tmp_path)
    channel = tmp_path / "channel"
    good = conda_archive(channel, "goodpkg", [("share/good.txt", b"good", None)])
    evil = conda_archive(channel, "evilpkg", files, listed)
    source = load_source(
        file=write_lock(tmp_path / "conda-lock.yml", lock_of(channel, [good, evil]))
    )

    with pytest.raises(RestoreError, match=r"evilpkg-1\.0-0") as refused:
        await fresh.service().restore(source, prefix=tmp_path / "env")

    assert message in str(refused.value)
    assert not (tmp_path / "env").exists()
    assert not list(Path("/tmp").glob("jupyter-repro-pwned*"))
    assert not list(tmp_path.rglob("jupyter-repro-pwned*"))


@pytest.mark.asyncio
async def test_links_and_files_of_a_real_shape_install(tmp_path: Path) -> None:
    """A shared library and its version link, as conda packages ship them, install."""
    fresh = Fresh(tmp_path)
    channel = tmp_path / "channel"
    lib = conda_archive(
        channel,
        "libdemo",
        [
            ("lib/libdemo.so.1", b"\x7fELF-ish", None),
            ("lib/libdemo.so", None, "libdemo.so.1"),
            ("share/doc/libdemo/README", b"readme", None),
        ],
    )
    source = load_source(file=write_lock(tmp_path / "conda-lock.yml", lock_of(channel, [lib])))

    await fresh.service().restore(source, prefix=tmp_path / "env")

    link = tmp_path / "env" / "lib" / "libdemo.so"
    assert link.is_symlink()
    assert link.read_bytes() == b"\x7fELF-ish"
    assert (tmp_path / "env" / "share" / "doc" / "libdemo" / "README").read_bytes() == b"readme"


@pytest.mark.asyncio
async def test_an_archive_that_matches_the_lock_but_is_no_package_is_a_clear_error(
    tmp_path: Path,
) -> None:
    from jupyter_repro.restore.errors import RestoreError

    fresh = Fresh(tmp_path)
    channel = tmp_path / "channel"
    broken = channel / "noarch" / "broken-1.0-0.conda"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a zip archive at all")
    source = load_source(file=write_lock(tmp_path / "conda-lock.yml", lock_of(channel, [broken])))

    with pytest.raises(RestoreError, match=r"broken-1\.0-0: .*not a conda package"):
        await fresh.service().restore(source, prefix=tmp_path / "env")

    assert not (tmp_path / "env").exists()


def test_a_notebook_too_deep_or_not_utf8_clean_keeps_its_bytes() -> None:
    """The kernel is set in what can be parsed and written back; anything else is written
    as it was packed (never a traceback after the environment is restored)."""
    from jupyter_repro.restore.notebooks import RestoredKernel, with_kernel

    kernel = RestoredKernel("conda-env-x-py", "Python [conda env:x]", "python")
    deep = b'{"metadata": {}, "cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    surrogate = b'{"metadata": {}, "cells": [], "note": "\\ud800"}'
    plain = b'{"metadata": {}, "cells": []}'

    assert with_kernel(deep, kernel) == deep
    retargeted = json.loads(with_kernel(surrogate, kernel))  # escaped, still valid JSON
    assert retargeted["note"] == "\ud800"
    assert retargeted["metadata"]["kernelspec"]["name"] == "conda-env-x-py"
    assert json.loads(with_kernel(plain, kernel))["metadata"]["kernelspec"]["name"] == (
        "conda-env-x-py"
    )


def test_a_file_below_a_link_another_package_creates_is_refused() -> None:
    """Two packages: one links `share/data -> /etc`, the other writes `share/data/x`."""
    linker = PackagePaths(None, frozenset({"share/data"}), ("share/data",))
    writer = PackagePaths(None, frozenset(), ("share/data/x", "share/other"))

    with pytest.raises(UnsafePackage, match="through the symbolic link 'share/data'"):
        check_paths([("linker-1-0", linker), ("writer-1-0", writer)])
    check_paths([("linker-1-0", linker), ("fine-1-0", PackagePaths(None, frozenset(), ("a",)))])


@pytest.mark.asyncio
async def test_an_archive_with_a_second_paths_json_is_judged_by_what_extraction_gives(
    tmp_path: Path,
) -> None:
    """The first `info/paths.json` harmless (rattler reads it), a second one (extraction
    keeps it, the last wins) writing outside: refused for naming a member twice."""
    fresh = Fresh(tmp_path)
    channel = tmp_path / "channel"
    dist = "twofaced-1.0-0"
    index = {"name": "twofaced", "version": "1.0", "build": "0", "build_number": 0,
             "subdir": "noarch", "noarch": "generic", "depends": []}  # fmt: skip
    data = b"x"
    entry = {"path_type": "hardlink", "sha256": hashlib.sha256(data).hexdigest(),
             "size_in_bytes": 1}  # fmt: skip
    harmless = {"paths": [{"_path": "share/ok", **entry}], "paths_version": 1}
    hostile = {"paths": [{"_path": "../../jupyter-repro-pwned-twice", **entry}], "paths_version": 1}
    info = _tar_zst(
        [
            ("info/index.json", json.dumps(index).encode(), None),
            ("info/paths.json", json.dumps(harmless).encode(), None),
            ("info/paths.json", json.dumps(hostile).encode(), None),
        ]
    )
    archive = channel / "noarch" / f"{dist}.conda"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        out.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        out.writestr(f"pkg-{dist}.tar.zst", _tar_zst([("share/ok", data, None)]))
        out.writestr(f"info-{dist}.tar.zst", info)
    source = load_source(file=write_lock(tmp_path / "conda-lock.yml", lock_of(channel, [archive])))

    with pytest.raises(UnsafePackage, match=r"twofaced-1\.0-0 is refused: 'info/paths.json' comes"):
        await fresh.service().restore(source, prefix=tmp_path / "env")

    assert not (tmp_path / "env").exists()
    assert not list(tmp_path.parent.glob("jupyter-repro-pwned-twice"))


def test_archives_that_could_show_one_list_and_install_another_are_refused(tmp_path: Path):
    from jupyter_repro.restore.package_paths import archive_problem

    channel = tmp_path / "channel"
    fine = conda_archive(channel, "fine", [("share/a", b"a", None)])
    smuggled = conda_archive(channel, "smuggled", [("share/a", b"a", None)])
    # The package part carries its own info/paths.json (extracted after the info part).
    rebuilt = tmp_path / "smuggled.conda"
    with zipfile.ZipFile(smuggled) as source, zipfile.ZipFile(rebuilt, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.startswith("pkg-"):
                data = _tar_zst([("share/a", b"a", None), ("info/paths.json", b"{}", None)])
            out.writestr(item.filename, data)
    extra = tmp_path / "extra.conda"
    with zipfile.ZipFile(fine) as source, zipfile.ZipFile(extra, "w") as out:
        for item in source.infolist():
            out.writestr(item.filename, source.read(item))
        out.writestr("pkg-second.tar.zst", _tar_zst([("share/b", b"b", None)]))
    twice = tmp_path / "twice-1.0-0.tar.bz2"
    with tarfile.open(twice, "w:bz2") as tar:
        for data in (b'{"paths": []}', b'{"paths": [{"_path": "/etc/x"}]}'):
            info = tarfile.TarInfo("info/paths.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    assert archive_problem(fine) is None
    assert "its package part holds 'info/paths.json'" in (archive_problem(rebuilt) or "")
    assert "not metadata.json, one pkg- and one info- part" in (archive_problem(extra) or "")
    assert "'info/paths.json' comes twice" in (archive_problem(twice) or "")


def test_an_old_package_without_paths_json_is_judged_by_its_info_files(tmp_path: Path):
    """Before conda-build 3 a package listed its files in `info/files` only."""
    from jupyter_repro.restore.package_paths import archive_paths

    def old_package(name: str, listed: bytes) -> Path:
        path = tmp_path / f"{name}-1.0-0.tar.bz2"
        with tarfile.open(path, "w:bz2") as tar:
            for member, data in (("info/index.json", b"{}"), ("info/files", listed)):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path

    good = archive_paths(old_package("old", b"bin/tool\nlib/libold.so\n"))
    bad = archive_paths(old_package("evil", b"bin/tool\n../../etc/cron.d/x\n"))

    assert good.problem is None
    assert good.paths == ("bin/tool", "lib/libold.so")
    assert bad.problem is not None
    assert "in its info/files" in bad.problem
