"""`pack --format conda-pack`: conda-pack's own archive of a rig environment.

The archive is unpacked somewhere else with `tarfile`, finished with the `conda-unpack` that
conda-pack ships inside it, and its kernel is run. One difference from a real environment:
the rig's `python` package is a symlink to the interpreter running the tests (plus a
`pyvenv.cfg`), and conda-pack keeps symlinks as they are, so the unpacked environment still
runs that interpreter; a real one carries its own binary. `sys.prefix` is the new location
all the same: CPython takes it from the `pyvenv.cfg` beside `bin/`, as it does for conda's
python.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

from jupyter_repro.environments.prefix import Prefix
from jupyter_repro.specs.conda_pack_format import (
    CONDA_PACK_FORMATS,
    CondaPackError,
    conda_pack_format,
    pack_conda_pack,
)
from jupyter_repro.specs.export import ExportError
from tests.rig.channel import (
    ACTIVATED_VALUE,
    ACTIVATED_VAR,
    IPYKERNEL_NAME,
    PREFIX_PLACEHOLDER,
    PYTHON_KERNEL_DIR,
    PYTHON_XY,
    PackageDef,
    RigChannel,
    build_channel,
    default_packages,
)
from tests.rig.installation import CondaInstallation
from tests.test_kernel_in_rig_env import run_code

PREFIXED_NAME = "rig-prefixed"
PREFIX_FILE = "share/rig/prefix.txt"
ENV_SPECS = ("python", "ipykernel", "pkgc", "rig-activate", PREFIXED_NAME)


@pytest.fixture(scope="module")
def pack_channel(tmp_path_factory: pytest.TempPathFactory) -> RigChannel:
    """The rig's packages plus `rig-prefixed`, whose text file holds the build prefix (a
    `prefix_placeholder` in paths.json): the installer and `conda-unpack` rewrite it."""
    prefixed = PackageDef(
        name=PREFIXED_NAME,
        version="1.0",
        build="0",
        files={PREFIX_FILE: f"prefix={PREFIX_PLACEHOLDER}\n"},
        prefix_files=(PREFIX_FILE,),
    )
    return build_channel(tmp_path_factory.mktemp("pack-channel"), [*default_packages(), prefixed])


@pytest.fixture
def installation(
    conda_installation_factory: Callable[..., CondaInstallation], pack_channel: RigChannel
) -> CondaInstallation:
    """An installation over `pack_channel` with a package cache of its own (tests break it)."""
    return conda_installation_factory(channel=pack_channel)


@pytest.fixture
def env(installation: CondaInstallation) -> Path:
    return installation.create_env("packme", ENV_SPECS)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _run_kernel(prefix: Path, tmp_path: Path, environ: dict[str, str]) -> str:
    """Start the environment's own kernelspec (its `python` made the env's interpreter, as a
    kernel provider does) and return what `sys.prefix` is in it."""
    spec = json.loads((prefix / PYTHON_KERNEL_DIR / "kernel.json").read_text())
    spec["argv"][0] = str(prefix / "bin" / "python")
    kernels = tmp_path / "kernels"
    (kernels / "unpacked").mkdir(parents=True)
    (kernels / "unpacked" / "kernel.json").write_text(json.dumps(spec))
    km = KernelManager(
        kernel_name="unpacked",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]),
        connection_file=str(tmp_path / "kernel-unpacked.json"),
    )
    km.start_kernel(env=environ, cwd=str(tmp_path))
    try:
        return run_code(km, "import sys; print(sys.prefix)").strip()
    finally:
        km.shutdown_kernel(now=True)


# --------------------------------------------------------------------------------------------
# the archive works where it is unpacked


@pytest.mark.timeout(120)
def test_packed_env_unpacks_elsewhere_and_runs_after_conda_unpack(
    installation: CondaInstallation, env: Path, out_dir: Path, tmp_path: Path
) -> None:
    assert (env / PREFIX_FILE).read_text() == f"prefix={env}\n"  # the installer's rewrite
    phases: list[tuple[str, int, int]] = []
    archive = pack_conda_pack(env, out_dir / "packme.tar.gz", progress=lambda *a: phases.append(a))

    assert archive == out_dir / "packme.tar.gz"
    assert sorted(p.name for p in out_dir.iterdir()) == ["packme.tar.gz"]  # no leftovers
    assert stat.S_IMODE(archive.stat().st_mode) == 0o666 & ~_umask()
    assert phases[:2] == [("scan", 0, 1), ("scan", 1, 1)]
    packed = [p for p in phases if p[0] == "pack"]
    assert packed[0][1] == 0
    assert packed[-1][1] == packed[-1][2] > 10
    with tarfile.open(archive) as tf:
        names = set(tf.getnames())
        # conda-pack's own tools, and the environment's files at the archive's root
        assert {"bin/conda-unpack", "bin/activate", "conda-meta/history", PREFIX_FILE} <= names
        assert f"lib/python{PYTHON_XY}/site-packages/_host.pth" in names  # noarch relocated
        member = tf.extractfile(PREFIX_FILE)
        assert member is not None
        assert member.read().decode() == f"prefix={PREFIX_PLACEHOLDER}\n"
        # The original environment goes away: the archive must be all that is needed.
        installation.remove_env(env)
        target = tmp_path / "elsewhere" / "unpacked-env"
        target.mkdir(parents=True)
        tf.extractall(target, filter="tar")

    environ = installation.environ()
    # What conda-pack's documentation says to do: activate, then conda-unpack.
    finish = subprocess.run(
        [
            "bash",
            "-c",
            'source "$1/bin/activate" && conda-unpack && echo "${!2}"',
            "_",
            str(target),
            ACTIVATED_VAR,
        ],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )
    assert finish.returncode == 0, finish.stderr
    assert finish.stdout.strip() == ACTIVATED_VALUE  # its activate.d scripts ran
    assert (target / PREFIX_FILE).read_text() == f"prefix={target}\n"

    python = subprocess.run(
        [str(target / "bin" / "python"), "-c", "import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )
    assert python.returncode == 0, python.stderr
    assert python.stdout.strip() == str(target)
    assert _run_kernel(target, tmp_path, environ) == str(target)


@pytest.mark.parametrize("suffix", [".tar.zst", ".tar", ".zip", ".TGZ"])
def test_the_file_name_chooses_the_format(env: Path, out_dir: Path, suffix: str) -> None:
    archive = pack_conda_pack(env, out_dir / f"packme{suffix}")
    if suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
    elif suffix == ".tar.zst":
        with (
            archive.open("rb") as fh,
            zstandard.ZstdDecompressor().stream_reader(fh) as raw,
            tarfile.open(fileobj=raw, mode="r|") as tf,
        ):
            names = {m.name for m in tf}
    else:
        with tarfile.open(archive) as tf:  # .tgz: gzip, found by tarfile itself
            names = set(tf.getnames())
    assert {"bin/conda-unpack", PREFIX_FILE} <= names


def test_conda_pack_format_by_suffix() -> None:
    assert conda_pack_format(Path("a.tar.gz")) == "tar.gz"
    assert conda_pack_format(Path("env.v1.TAR.BZ2")) == "tar.bz2"
    assert conda_pack_format(Path("a.tar")) == "tar"
    assert conda_pack_format(Path("a.tar.zst")) == "tar.zst"
    assert set(CONDA_PACK_FORMATS) >= {".tar.gz", ".zip", ".tar.zst", ".tar.xz"}
    for bad in ("a.parcel", "a.squashfs", "a.gz", "a", ".tar.gz"):
        with pytest.raises(CondaPackError, match="end it with one of"):
            conda_pack_format(Path(bad))


def test_an_environment_whose_package_cache_was_cleaned_still_packs(
    installation: CondaInstallation, env: Path, out_dir: Path, tmp_path: Path
) -> None:
    """conda-pack reads packaged files from the package cache; without it (`conda clean
    -p`) it packs the environment's own files and rewrites the prefix it finds in them."""
    shutil.rmtree(installation.package_cache)
    with pytest.warns(UserWarning, match="without entries in the package cache"):
        archive = pack_conda_pack(env, out_dir / "packme.tar.gz")
    target = tmp_path / "unpacked"
    with tarfile.open(archive) as tf:
        tf.extractall(target, filter="tar")
    finish = subprocess.run(
        [str(target / "bin" / "python"), str(target / "bin" / "conda-unpack")],
        capture_output=True,
        text=True,
        env=installation.environ(),
        timeout=60,
    )
    assert finish.returncode == 0, finish.stderr
    assert (target / PREFIX_FILE).read_text() == f"prefix={target}\n"


# --------------------------------------------------------------------------------------------
# refusals: a clear message, and nothing written


def _nothing_written(out_dir: Path, before: set[str] | None = None) -> None:
    assert {p.name for p in out_dir.iterdir()} == (before or set())


def _site_packages(prefix: Path) -> Path:
    return prefix / "lib" / f"python{PYTHON_XY}" / "site-packages"


def _editable_by_pip(installation: CondaInstallation, env: Path, source: Path) -> None:
    """What `pip install -e` leaves (PEP 610 `direct_url.json` with `editable`)."""
    dist = installation.add_pip_package(env, "mydevpkg", "0.1")
    (dist / "direct_url.json").write_text(
        json.dumps({"url": source.as_uri(), "dir_info": {"editable": True}})
    )
    (_site_packages(env) / "__editable__.mydevpkg-0.1.pth").write_text(f"{source}\n")


def _editable_by_setup_py_develop(installation: CondaInstallation, env: Path, source: Path) -> None:
    """What `python setup.py develop` leaves (an `.egg-link`): conda-pack does not see it."""
    (source / "mydevpkg.egg-info").mkdir()
    (source / "mydevpkg.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 2.1\nName: mydevpkg\nVersion: 0.1\n"
    )
    site = _site_packages(env)
    (site / "mydevpkg.egg-link").write_text(f"{source}\n.\n")
    (site / "easy-install.pth").write_text(f"{source}\n")


@pytest.mark.parametrize(
    "make_editable", [_editable_by_pip, _editable_by_setup_py_develop], ids=["pip-e", "develop"]
)
def test_an_editable_install_is_refused(
    installation: CondaInstallation,
    env: Path,
    out_dir: Path,
    tmp_path: Path,
    make_editable: Callable[[CondaInstallation, Path, Path], None],
) -> None:
    source = tmp_path / "src" / "mydevpkg"
    source.mkdir(parents=True)
    make_editable(installation, env, source)
    with pytest.raises(CondaPackError) as refused:
        pack_conda_pack(env, out_dir / "packme.tar.gz")
    message = str(refused.value)
    assert "editable" in message
    assert "mydevpkg" in message
    assert "without -e" in message
    assert "--format capsule" in message
    assert isinstance(refused.value, ExportError)
    _nothing_written(out_dir)


def test_conda_packs_own_editable_refusal_is_said_the_same_way(
    installation: CondaInstallation,
    env: Path,
    out_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should our own look miss an editable install, conda-pack's refusal reads the same."""
    source = tmp_path / "src"
    source.mkdir()
    _editable_by_pip(installation, env, source)
    monkeypatch.setattr(Prefix, "pip_distributions", lambda self, conda_owned=None: [])
    with pytest.raises(CondaPackError) as refused:
        pack_conda_pack(env, out_dir / "packme.tar.gz")
    message = str(refused.value)
    assert "editable pip installs (mydevpkg)" in message
    assert "without -e" in message
    _nothing_written(out_dir)


def test_an_existing_output_is_refused_and_kept(env: Path, out_dir: Path) -> None:
    existing = out_dir / "packme.tar.gz"
    existing.write_bytes(b"someone's archive")
    existing.chmod(0o640)
    with pytest.raises(CondaPackError, match="already exists"):
        pack_conda_pack(env, existing)
    assert existing.read_bytes() == b"someone's archive"
    _nothing_written(out_dir, {"packme.tar.gz"})

    # force replaces it, keeping its permission bits
    assert pack_conda_pack(env, existing, force=True) == existing
    with tarfile.open(existing) as tf:
        assert "bin/conda-unpack" in tf.getnames()
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    _nothing_written(out_dir, {"packme.tar.gz"})


def test_a_noarch_python_package_without_link_json_is_refused_clearly(
    installation: CondaInstallation, env: Path, out_dir: Path
) -> None:
    """conda-pack reads a package's noarch type from `info/link.json` in the package cache;
    without it, it looks for `site-packages/...` at the prefix's root and calls them
    deleted. Say what is really wrong."""
    cached = next(installation.package_cache.glob(f"{IPYKERNEL_NAME}-*/info/link.json"))
    cached.unlink()
    with pytest.raises(CondaPackError) as refused:
        pack_conda_pack(env, out_dir / "packme.tar.gz")
    message = str(refused.value)
    assert "info/link.json" in message
    assert IPYKERNEL_NAME in message
    assert "--format capsule" in message
    _nothing_written(out_dir)


def test_a_removed_conda_file_is_refused_clearly(env: Path, out_dir: Path) -> None:
    (env / "share" / "rig" / "pkgc.txt").unlink()
    with pytest.raises(CondaPackError) as refused:
        pack_conda_pack(env, out_dir / "packme.tar.gz")
    message = str(refused.value)
    assert "removed or replaced" in message
    assert "pkgc 1.0" in message
    assert "share/rig/pkgc.txt" in message
    assert "--force-reinstall" in message
    _nothing_written(out_dir)


def test_what_is_not_a_conda_environment_is_refused(tmp_path: Path, out_dir: Path) -> None:
    with pytest.raises(CondaPackError, match="no such environment"):
        pack_conda_pack(tmp_path / "nowhere", out_dir / "a.tar.gz")
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    with pytest.raises(CondaPackError, match="not a conda environment"):
        pack_conda_pack(venv, out_dir / "a.tar.gz")
    _nothing_written(out_dir)


def test_bad_outputs_are_refused(env: Path, out_dir: Path) -> None:
    with pytest.raises(CondaPackError, match="does not exist"):
        pack_conda_pack(env, out_dir / "missing" / "a.tar.gz")
    with pytest.raises(CondaPackError, match="inside the environment"):
        pack_conda_pack(env, env / "self.tar.gz")
    with pytest.raises(CondaPackError, match="is a folder"):
        pack_conda_pack(env, out_dir, force=True)
    with pytest.raises(CondaPackError, match="end it with one of"):
        pack_conda_pack(env, out_dir / "a.rar")
    assert not (env / "self.tar.gz").exists()
    _nothing_written(out_dir)


def test_a_cancel_from_progress_leaves_no_file(env: Path, out_dir: Path) -> None:
    class Cancelled(Exception):
        pass

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "pack" and done > 0:
            raise Cancelled

    with pytest.raises(Cancelled):
        pack_conda_pack(env, out_dir / "packme.tar.gz", progress=progress)
    _nothing_written(out_dir)
