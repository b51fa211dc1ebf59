"""The capsule format: written deterministically, read back exactly, and every hostile
capsule refused with a CapsuleError that names the member and the problem, leaving nothing
behind. Synthetic packages (the format does not look inside archives); real environments are
packed in tests/test_pack.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import zstandard

from jupyter_repro.specs.capsule import (
    CapsuleError,
    Manifest,
    MissingPackage,
    extract_capsule,
    is_capsule,
    read_manifest,
    write_capsule,
)
from jupyter_repro.specs.lock import Lock, LockedConda, PlatformLock, embedded_lock
from jupyter_repro.specs.pip_lock import LockedPypi

AS_OF = dt.datetime(2025, 7, 1, 12, 0, tzinfo=dt.timezone.utc)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Inputs:
    lock: Lock
    conda: list[tuple[LockedConda, Path, str]]
    pypi: list[tuple[str, LockedPypi, Path]]
    notebooks: list[Path]
    missing: list[MissingPackage]


def _conda(channel: Path, subdir: str, filename: str, data: bytes) -> tuple[LockedConda, Path]:
    path = channel / subdir / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    name, version, build = filename.removesuffix(".conda").rsplit("-", 2)
    package = LockedConda(
        name=name,
        version=version,
        build=build,
        subdir=subdir,
        url=path.as_uri(),
        channel=channel.as_uri(),
        sha256=sha256(data),
    )
    return package, path


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    """Two platforms: a per-platform `libx`, a noarch `purey` shared, a pure wheel shared, a
    missing editable install, two notebooks (one name with a space)."""
    channel = tmp_path / "channel"
    libx_linux, linux_file = _conda(channel, "linux-64", "libx-1.0-0.conda", b"linux " * 5000)
    libx_osx, osx_file = _conda(channel, "osx-arm64", "libx-1.0-0.conda", b"osx " * 5000)
    purey, purey_file = _conda(channel, "noarch", "purey-2.0-py_0.conda", os.urandom(70000))
    wheel_file = tmp_path / "wheels" / "wheelz-1.0-py3-none-any.whl"
    wheel_file.parent.mkdir()
    wheel_file.write_bytes(b"PK wheel bytes")
    wheel = LockedPypi("wheelz", "1.0", wheel_file.as_uri(), sha256(wheel_file.read_bytes()))
    lock = Lock(
        platforms=(
            PlatformLock("linux-64", (libx_linux, purey), (wheel,)),
            PlatformLock("osx-arm64", (libx_osx, purey), (wheel,)),
        ),
        channels=(channel.as_uri(),),
        conda_specs=("libx", "purey"),
        pip_specs=("wheelz==1.0",),
        as_of=AS_OF,
        name="demo",
    )
    notebooks = []
    for name in ("analysis.ipynb", "second look é.ipynb"):
        path = tmp_path / name
        path.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4}))
        notebooks.append(path)
    return Inputs(
        lock=lock,
        conda=[
            (libx_linux, linux_file, "linux-64"),
            (purey, purey_file, "linux-64"),
            (libx_osx, osx_file, "osx-arm64"),
            (purey, purey_file, "osx-arm64"),
        ],
        pypi=[("linux-64", wheel, wheel_file), ("osx-arm64", wheel, wheel_file)],
        notebooks=notebooks,
        missing=[MissingPackage("linux-64", "devpkg", "an editable install")],
    )


def write(inputs: Inputs, path: Path) -> Manifest:
    return write_capsule(
        path,
        lock=inputs.lock,
        notebooks=inputs.notebooks,
        conda=inputs.conda,
        pypi=inputs.pypi,
        missing=inputs.missing,
    )


@pytest.fixture
def capsule(inputs: Inputs, tmp_path: Path) -> Path:
    path = tmp_path / "demo.capsule.tar.zst"
    write(inputs, path)
    return path


def tar_members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    raw = zstandard.ZstdDecompressor().stream_reader(path.read_bytes()).read()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else b"") for m in tar.getmembers()]


def rebuild(
    path: Path,
    edit: Callable[[list[tuple[tarfile.TarInfo, bytes]]], list[tuple[tarfile.TarInfo, bytes]]],
    *,
    compress: bool = True,
) -> Path:
    """The capsule at `path` rewritten with its members edited (a hostile capsule)."""
    members = edit(tar_members(path))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    out = path.with_name("hostile.capsule.tar.zst")
    data = buffer.getvalue()
    out.write_bytes(zstandard.ZstdCompressor().compress(data) if compress else data)
    return out


def regular(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def with_manifest(
    members: list[tuple[tarfile.TarInfo, bytes]], change: Callable[[dict], None]
) -> list[tuple[tarfile.TarInfo, bytes]]:
    info, data = members[0]
    manifest = json.loads(data)
    change(manifest)
    return [(info, json.dumps(manifest).encode()), *members[1:]]


def member_bytes(members, name: str) -> bytes:
    return next(data for info, data in members if info.name == name)


# -- writing and reading -----------------------------------------------------------------------


def test_a_capsule_holds_the_lock_notebooks_and_each_archive_once(inputs, capsule, tmp_path):
    members = tar_members(capsule)
    names = [info.name for info, _ in members]

    assert names == [
        "capsule.json",
        "lock.json",
        "notebooks/analysis.ipynb",
        "notebooks/second look é.ipynb",
        "pkgs/linux-64/libx-1.0-0.conda",
        "pkgs/noarch/purey-2.0-py_0.conda",  # shared by both platforms: once
        "pkgs/osx-arm64/libx-1.0-0.conda",
        "wheels/wheelz-1.0-py3-none-any.whl",
    ]
    for info, _ in members:
        assert (info.mode, info.uid, info.gid, info.uname, info.gname) == (0o644, 0, 0, "", "")
        assert info.mtime == int(AS_OF.timestamp())
        assert info.type == tarfile.REGTYPE
        assert not info.pax_headers or set(info.pax_headers) == {"path"}
    assert json.loads(member_bytes(members, "lock.json")) == embedded_lock(inputs.lock)

    manifest = read_manifest(capsule)
    assert manifest.platforms == ("linux-64", "osx-arm64")
    assert manifest.name == "demo"
    assert manifest.lock_digest == inputs.lock.digest()
    assert manifest.notebooks == ("notebooks/analysis.ipynb", "notebooks/second look é.ipynb")
    assert [(c.platform, c.path) for c in manifest.conda] == [
        ("linux-64", "pkgs/linux-64/libx-1.0-0.conda"),
        ("linux-64", "pkgs/noarch/purey-2.0-py_0.conda"),
        ("osx-arm64", "pkgs/noarch/purey-2.0-py_0.conda"),
        ("osx-arm64", "pkgs/osx-arm64/libx-1.0-0.conda"),
    ]
    assert [p.platform for p in manifest.pypi] == ["linux-64", "osx-arm64"]
    assert manifest.missing == (MissingPackage("linux-64", "devpkg", "an editable install"),)
    data = json.loads(member_bytes(members, "capsule.json"))
    assert data["format"] == "jupyter-repro-capsule"
    assert data["version"] == 1
    assert Manifest.from_json(data) == manifest

    extracted = extract_capsule(capsule, tmp_path / "out")
    assert extracted.manifest == manifest
    assert extracted.lock.digest() == inputs.lock.digest()
    for package, path, _platform in inputs.conda:
        assert extracted.conda_paths[package.url].read_bytes() == path.read_bytes()
    assert [p.name for p in extracted.notebooks] == ["analysis.ipynb", "second look é.ipynb"]
    assert extracted.notebooks[0].read_bytes() == inputs.notebooks[0].read_bytes()
    assert [p.name for p in extracted.wheels_dir.iterdir()] == ["wheelz-1.0-py3-none-any.whl"]
    assert extracted.wheel_paths[("osx-arm64", "wheelz")].read_bytes() == b"PK wheel bytes"
    assert is_capsule(capsule)
    assert is_capsule(capsule.read_bytes())
    assert not is_capsule(inputs.notebooks[0])


def test_the_same_inputs_give_the_same_bytes(inputs, capsule, tmp_path):
    again = tmp_path / "again.capsule.tar.zst"
    os.utime(inputs.conda[0][1], (0, 0))  # file times do not count

    write(inputs, again)

    assert again.read_bytes() == capsule.read_bytes()


def test_a_plain_tar_capsule_is_read_too(capsule, tmp_path):
    plain = tmp_path / "demo.tar"
    plain.write_bytes(zstandard.ZstdDecompressor().stream_reader(capsule.read_bytes()).read())

    assert is_capsule(plain)
    assert read_manifest(plain) == read_manifest(capsule)
    assert extract_capsule(plain, tmp_path / "out").manifest.platforms == ("linux-64", "osx-arm64")


def test_a_file_that_does_not_match_the_lock_is_not_written(inputs, tmp_path):
    _package, path, _ = inputs.conda[0]
    path.write_bytes(path.read_bytes()[:-1] + b"!")  # same size, one byte changed
    target = tmp_path / "x.capsule.tar.zst"

    with pytest.raises(CapsuleError, match=r"libx-1\.0-0\.conda does not match the lock"):
        write(inputs, target)

    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if "capsule" in p.name] == []


def test_notebooks_of_the_same_name_are_numbered_and_odd_characters_replaced(inputs, tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    notebooks = []
    for folder, name in zip(folders, ("analysis.ipynb", "analysis.ipynb"), strict=True):
        folder.mkdir()
        notebooks.append(folder / name)
        notebooks[-1].write_text("{}")
    odd = tmp_path / "a" / 'what: "why"?.ipynb'
    odd.write_text("{}")
    spoofed = tmp_path / "b" / "report\u202eblpi.ipynb"  # shows as "reportipynb.pl..."
    spoofed.write_text("{}")

    manifest = write_capsule(
        tmp_path / "n.capsule.tar.zst",
        lock=inputs.lock,
        notebooks=[*notebooks, odd, spoofed],
        conda=inputs.conda,
        pypi=inputs.pypi,
    )

    assert manifest.notebooks == (
        "notebooks/analysis-1.ipynb",
        "notebooks/analysis.ipynb",
        "notebooks/report_blpi.ipynb",
        "notebooks/what_ _why__.ipynb",
    )
    with pytest.raises(CapsuleError, match=r"is not a notebook \(\.ipynb\)"):
        write_capsule(tmp_path / "m", lock=inputs.lock, notebooks=[tmp_path / "x.txt"])


def test_a_package_without_sha256_or_a_platform_the_lock_lacks_is_refused(inputs, tmp_path):
    package, path, platform = inputs.conda[0]
    no_hash = replace(package, sha256=None)
    with pytest.raises(CapsuleError, match="has no sha256"):
        write_capsule(tmp_path / "a", lock=inputs.lock, conda=[(no_hash, path, platform)])
    with pytest.raises(CapsuleError, match="win-64, which the lock does not have"):
        write_capsule(tmp_path / "b", lock=inputs.lock, conda=[(package, path, "win-64")])
    # a lock package neither packed nor listed as missing: never dropped silently
    with pytest.raises(CapsuleError, match="neither holds it nor lists it as missing"):
        write_capsule(tmp_path / "c", lock=inputs.lock, conda=inputs.conda[:3])


def test_extraction_reports_progress_and_keeps_nothing_when_cancelled(capsule, tmp_path):
    seen: list[tuple[int, int]] = []
    extract_capsule(capsule, tmp_path / "out", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (7, 7)

    import threading

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CapsuleError, match="cancelled"):
        extract_capsule(capsule, tmp_path / "gone", cancel=cancel)
    assert not (tmp_path / "gone").exists()


# -- hostile capsules --------------------------------------------------------------------------


def _insert_after_lock(member):
    return lambda members: [*members[:2], member, *members[2:]]


def _symlink(members):
    info = tarfile.TarInfo("pkgs/linux-64/libx-1.0-0.conda")
    info.type = tarfile.SYMTYPE
    info.linkname = "/etc/passwd"
    return [(info, b"") if i.name == info.name else (i, d) for i, d in members]


def _hardlink(members):
    info = tarfile.TarInfo("notebooks/analysis.ipynb")
    info.type = tarfile.LNKTYPE
    info.linkname = "lock.json"
    return [(info, b"") if i.name == info.name else (i, d) for i, d in members]


def _changed_byte(members):
    out = []
    for info, data in members:
        if info.name == "pkgs/noarch/purey-2.0-py_0.conda":
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        out.append((info, data))
    return out


def _duplicate(members):
    return [*members, members[-1]]


def _without(name):
    return lambda members: [(i, d) for i, d in members if i.name != name]


def _manifest_first_not(members):
    return [members[1], members[0], *members[2:]]


def _huge_pax_header(members):
    info, data = members[4]
    info.pax_headers = {"comment": "x" * (2 << 20)}
    return [*members[:4], (info, data), *members[5:]]


def _lock_disagrees(members):
    """A lock whose sha256 of one archive differs from the manifest's, with the manifest's
    record of lock.json (size, sha256, lock digest) updated so only the disagreement is left."""
    from jupyter_repro.specs.lock import parse_embedded_lock

    lock_json = json.loads(member_bytes(members, "lock.json"))
    lines = lock_json["platforms"]["linux-64"]["conda"]
    channel = next(iter(lines))
    lines[channel] = [
        line.split("#")[0] + "#" + "0" * 64 if "libx" in line else line for line in lines[channel]
    ]
    data = (json.dumps(lock_json, sort_keys=True, indent=1) + "\n").encode()
    digest = parse_embedded_lock(lock_json, source="x").digest()

    def change(manifest):
        manifest["lock_digest"] = digest
        for entry in manifest["files"]:
            if entry["path"] == "lock.json":
                entry.update(sha256=sha256(data), size=len(data))

    members = with_manifest(members, change)
    return [(i, data if i.name == "lock.json" else d) for i, d in members]


def _manifest_names_another_url(members):
    def change(manifest):
        manifest["conda"][0]["url"] = "https://example.org/evil/linux-64/libx-1.0-0.conda"

    return with_manifest(members, change)


def _manifest_lists_extra_platform(members):
    def change(manifest):
        manifest["platforms"].append("win-64")

    return with_manifest(members, change)


def _manifest_escapes(members):
    def change(manifest):
        manifest["conda"][0]["path"] = "pkgs/../../evil.conda"

    return with_manifest(members, change)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_insert_after_lock(regular("../evil")), r"'\.\./evil' is refused: .*leaves the capsule"),
        (_insert_after_lock(regular("/tmp/evil")), "'/tmp/evil' is refused: an absolute path"),
        (_insert_after_lock(regular("notebooks/report\u202eblpi.ipynb")), "member name"),
        (_insert_after_lock(regular("notebooks/a\u200bb.ipynb")), "member name"),
        (_insert_after_lock(regular("notebooks/a\x9b[31m.ipynb")), "member name"),
        (
            _insert_after_lock(regular("notebooks/../../evil.ipynb")),
            "leaves the capsule",
        ),
        (_insert_after_lock(regular("bin/evil.sh")), "not a capsule member name"),
        (_symlink, "libx-1.0-0.conda' is refused: it is a symbolic link"),
        (_hardlink, "analysis.ipynb' is refused: it is a hard link"),
        (
            _insert_after_lock(regular("wheels/extra-1.0-py3-none-any.whl")),
            "'wheels/extra-1.0-py3-none-any.whl' is not in the manifest",
        ),
        (_changed_byte, "purey-2.0-py_0.conda was changed: its sha256 is"),
        (_duplicate, "comes twice"),
        (_without("pkgs/osx-arm64/libx-1.0-0.conda"), "lacks pkgs/osx-arm64/libx-1.0-0.conda"),
        (_manifest_first_not, "the first member is 'lock.json', expected capsule.json"),
        (_huge_pax_header, "extended tar header of 2,097,"),
        (_lock_disagrees, "the manifest's sha256 .* is not the lock's 0000"),
        (_manifest_names_another_url, "is not in the lock for linux-64"),
        (_manifest_lists_extra_platform, "the manifest is for linux-64, osx-arm64, win-64"),
        (_manifest_escapes, "leaves the capsule"),
        (lambda members: with_manifest(members, lambda m: m.update(version=2)), "version '2'"),
    ],
    ids=lambda value: getattr(value, "__name__", None) if callable(value) else None,
)
def test_a_hostile_capsule_is_refused_and_nothing_is_left(capsule, tmp_path, edit, message):
    hostile = rebuild(capsule, edit)
    dest = tmp_path / "dest"

    with pytest.raises(CapsuleError, match=message):
        extract_capsule(hostile, dest)

    assert not dest.exists()
    assert not (tmp_path / "evil").exists()
    assert not Path("/tmp/evil").exists()


def test_the_head_checks_apply_to_read_manifest_too(capsule):
    with pytest.raises(CapsuleError, match="is not in the lock for linux-64"):
        read_manifest(rebuild(capsule, _manifest_names_another_url))


def test_an_oversized_member_is_refused_before_it_is_read(capsule, tmp_path):
    with pytest.raises(
        CapsuleError, match=r"purey-2\.0-py_0\.conda is 70,000 bytes, over the limit"
    ):
        extract_capsule(capsule, tmp_path / "a", max_member_bytes=65536)
    with pytest.raises(CapsuleError, match=r"unpacks to .* bytes, over the limit of 1,000"):
        extract_capsule(capsule, tmp_path / "b", max_bytes=1000)
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_a_member_larger_than_the_manifest_says_is_refused(capsule, tmp_path):
    def grow(members):
        return [
            (i, d + b"more" if i.name == "wheels/wheelz-1.0-py3-none-any.whl" else d)
            for i, d in members
        ]

    with pytest.raises(CapsuleError, match="has 18 bytes, the manifest says 14"):
        extract_capsule(rebuild(capsule, grow), tmp_path / "dest")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"just some text, not an archive" * 40, "not a capsule: neither zstd nor tar"),
        (zstandard.ZstdCompressor().compress(b"\x01" * 4000), "not a capsule: zstd"),
        (b"", "not a capsule"),
        (b"\x28\xb5\x2f\xfd" + b"\x00" * 100, "not a capsule"),
    ],
)
def test_what_is_not_a_capsule_is_refused(tmp_path, content, message):
    path = tmp_path / "x.capsule.tar.zst"
    path.write_bytes(content)

    assert not is_capsule(path)
    with pytest.raises(CapsuleError, match=message):
        read_manifest(path)
    with pytest.raises(CapsuleError, match=message):
        extract_capsule(path, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_a_truncated_capsule_is_refused(capsule, tmp_path):
    truncated = tmp_path / "cut.capsule.tar.zst"
    truncated.write_bytes(capsule.read_bytes()[: capsule.stat().st_size // 2])

    with pytest.raises(CapsuleError, match=r"damaged or truncated|lacks|truncated"):
        extract_capsule(truncated, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_extraction_goes_only_into_a_new_or_empty_real_folder(capsule, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(CapsuleError, match="is not empty"):
        extract_capsule(capsule, full)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]

    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(CapsuleError, match="exists and is not a folder"):
        extract_capsule(capsule, link)

    empty = tmp_path / "empty"
    empty.mkdir()
    assert extract_capsule(capsule, empty).root == empty
    # a failure in an existing empty folder leaves it empty (and there)
    again = tmp_path / "again"
    again.mkdir()
    with pytest.raises(CapsuleError):
        extract_capsule(rebuild(capsule, _changed_byte), again)
    assert again.is_dir()
    assert list(again.iterdir()) == []


def test_a_hostile_manifest_is_refused_field_by_field():
    base = {
        "format": "jupyter-repro-capsule",
        "version": 1,
        "platforms": ["linux-64"],
        "lock_digest": "a" * 64,
        "files": [{"path": "lock.json", "sha256": "b" * 64, "size": 3}],
    }
    assert Manifest.from_json(base).platforms == ("linux-64",)
    cases = [
        ({"format": "zip"}, "not a capsule manifest"),
        ({"platforms": ["noarch"]}, "is not a conda platform"),
        ({"platforms": ["linux-64", "linux-64"]}, "lists a platform twice"),
        ({"lock_digest": "xyz"}, "'lock_digest' is not a sha256"),
        ({"files": []}, "does not list lock.json"),
        ({"files": [{"path": "lock.json", "sha256": "B" * 64, "size": 3}]}, "lowercase hex"),
        ({"files": [{"path": "lock.json", "sha256": "b" * 64, "size": -1}]}, "not be negative"),
        ({"files": [{"path": "lock.json", "sha256": "b" * 64, "size": True}]}, "must be a int"),
        ({"notebooks": ["notebooks/.hidden.ipynb"]}, "not a capsule member name"),
        (
            {
                "conda": [
                    {
                        "platform": "win-64",
                        "path": "pkgs/win-64/a-1-0.conda",
                        "url": "u",
                        "sha256": "c" * 64,
                        "size": 1,
                    }
                ]
            },
            "not one of the capsule's platforms",
        ),
    ]
    for change, message in cases:
        with pytest.raises(CapsuleError, match=message):
            Manifest.from_json({**base, **change})


# -- reading a head again ----------------------------------------------------------------------


def _counting_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from jupyter_repro.specs import capsule as capsule_module

    opened: list[str] = []
    real = capsule_module._tar_stream

    def counting(raw, source, *args, **kwargs):
        opened.append(source)
        return real(raw, source, *args, **kwargs)

    monkeypatch.setattr(capsule_module, "_tar_stream", counting)
    return opened


def test_the_head_of_a_capsule_unchanged_since_it_was_read_is_not_read_again(
    inputs, capsule, tmp_path, monkeypatch
):
    from jupyter_repro.specs import capsule as capsule_module
    from jupyter_repro.specs.capsule import read_capsule_head

    monkeypatch.setattr(capsule_module, "_SETTLED_NS", 0)  # as if written long ago
    opened = _counting_opens(monkeypatch)
    first = read_capsule_head(capsule)
    assert read_capsule_head(capsule) == first
    assert len(opened) == 1

    # Changed in place (the same inode): read again.
    renamed = replace(inputs, lock=replace(inputs.lock, name="renamed"))
    other = tmp_path / "other.capsule.tar.zst"
    write(renamed, other)
    capsule.write_bytes(other.read_bytes())
    os.utime(capsule, ns=(1, 1))
    assert read_capsule_head(capsule)[1].name == "renamed"
    # Replaced by another file: read again.
    write(inputs, other)
    other.replace(capsule)
    assert read_capsule_head(capsule)[1].name == inputs.lock.name
    assert len(opened) == 3


def test_a_capsule_written_a_moment_ago_is_read_every_time(capsule, monkeypatch):
    from jupyter_repro.specs.capsule import read_capsule_head

    opened = _counting_opens(monkeypatch)
    read_capsule_head(capsule)
    read_capsule_head(capsule)

    # Its timestamps may not yet tell a change made within their resolution.
    assert len(opened) == 2
