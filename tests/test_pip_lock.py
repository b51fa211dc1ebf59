"""Locking a pip section with uv for one platform, and installing the lock, offline.

The packages are real wheels written here with the standard library into a find-links
folder: a dependency chain (alpha -> beta), two versions of beta, a platform-only
dependency (epsilon, Windows only), a wheel pair per platform (gamma) and a package with
both a generic and a CPython-specific wheel (zeta).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from jupyter_repro.restore.pip import (
    locked_requirements,
    pip_install_command,
    pip_requirements_command,
)
from jupyter_repro.specs import pip_lock
from jupyter_repro.specs.pip_lock import LockedPypi, PipIndex, PipLockError, lock_pip

# uv is a dependency of the package: these tests run everywhere the package is installed.
assert pip_lock.uv_binary() is not None, "uv is a dependency of jupyter-repro; reinstall it"

PY = f"{sys.version_info.major}.{sys.version_info.minor}"
CP = f"cp{sys.version_info.major}{sys.version_info.minor}"
GAMMA_LINUX = "gamma-1.0-py3-none-manylinux_2_17_x86_64.whl"
GAMMA_WINDOWS = "gamma-1.0-py3-none-win_amd64.whl"
ZETA_ANY = "zeta-1.0-py3-none-any.whl"
ZETA_LINUX = f"zeta-1.0-{CP}-{CP}-manylinux_2_17_x86_64.whl"


def write_wheel(
    folder: Path,
    name: str,
    version: str,
    *,
    tag: str = "py3-none-any",
    requires: Sequence[str] = (),
    payload: str = "VALUE = 1\n",
) -> Path:
    """A minimal valid wheel: one module, METADATA, WHEEL and RECORD, fixed timestamps."""
    module = name.lower().replace("-", "_").replace(".", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{module}/__init__.py": payload,
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ),
    }
    record = [
        f"{path},sha256={_record_hash(text)},{len(text.encode())}" for path, text in files.items()
    ]
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    path = folder / f"{module}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), text)
    return path


def _record_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    write_wheel(folder, "alpha", "1.0", requires=["beta>=1", 'epsilon; sys_platform == "win32"'])
    write_wheel(folder, "beta", "1.0")
    write_wheel(folder, "beta", "2.0", payload="VALUE = 2\n")
    write_wheel(folder, "gamma", "1.0", tag=GAMMA_LINUX[10:-4], payload="WHERE = 'linux'\n")
    write_wheel(folder, "gamma", "1.0", tag=GAMMA_WINDOWS[10:-4], payload="WHERE = 'windows'\n")
    write_wheel(folder, "epsilon", "1.0")
    write_wheel(folder, "Delta_Pkg", "1.0")
    write_wheel(folder, "zeta", "1.0", tag=ZETA_ANY[9:-4])
    write_wheel(folder, "zeta", "1.0", tag=ZETA_LINUX[9:-4], payload="FAST = True\n")
    return folder


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """An environment for uv with its own cache: nothing of the user's cache is read or
    written, and a tampered file cannot be served from a cached copy."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "UV_CACHE_DIR": str(tmp_path / "uv")}


def offline(folder: Path) -> PipIndex:
    return PipIndex(find_links=(str(folder),), no_index=True)


def lock(
    requirements: Sequence[str], folder: Path, environ: dict[str, str], platform: str = "linux-64"
) -> dict[str, LockedPypi]:
    locked = lock_pip(
        requirements, platform=platform, python_version=PY, index=offline(folder), environ=environ
    )
    return {p.name: p for p in locked}


# -- locking ---------------------------------------------------------------------------------------


def test_each_platform_gets_its_own_wheel_and_its_hash(wheels: Path, environ: dict[str, str]):
    linux = lock(["alpha", "gamma"], wheels, environ, "linux-64")
    windows = lock(["alpha", "gamma"], wheels, environ, "win-64")

    assert linux["gamma"].url == (wheels / GAMMA_LINUX).as_uri()
    assert linux["gamma"].sha256 == sha256_of(wheels / GAMMA_LINUX)
    assert windows["gamma"].url == (wheels / GAMMA_WINDOWS).as_uri()
    assert windows["gamma"].sha256 == sha256_of(wheels / GAMMA_WINDOWS)
    assert linux["gamma"].sha256 != windows["gamma"].sha256


def test_dependencies_are_resolved_for_the_target(wheels: Path, environ: dict[str, str]):
    linux = lock(["alpha"], wheels, environ, "linux-64")
    windows = lock(["alpha"], wheels, environ, "win-64")

    # beta comes in as alpha's dependency, at its highest version; epsilon only where
    # alpha's marker asks for it.
    assert sorted(linux) == ["alpha", "beta"]
    assert sorted(windows) == ["alpha", "beta", "epsilon"]
    assert linux["beta"].version == "2.0"
    assert linux["beta"].sha256 == sha256_of(wheels / "beta-2.0-py3-none-any.whl")
    assert lock(["alpha", "beta<2"], wheels, environ)["beta"].version == "1.0"


def test_the_most_specific_wheel_is_chosen(wheels: Path, environ: dict[str, str]):
    # On Linux both zeta wheels fit, and uv lists both: the lock keeps the one pip and uv
    # would install there (the CPython one); on Windows only the generic one fits.
    assert lock(["zeta"], wheels, environ, "linux-64")["zeta"].url == (wheels / ZETA_LINUX).as_uri()
    assert lock(["zeta"], wheels, environ, "win-64")["zeta"].url == (wheels / ZETA_ANY).as_uri()


def test_output_is_sorted_normalized_and_the_same_each_time(wheels: Path, environ: dict[str, str]):
    requirements = ["zeta", "Delta.Pkg", "gamma", "alpha"]
    first = lock_pip(
        requirements, platform="linux-64", python_version=PY, index=offline(wheels), environ=environ
    )
    second = lock_pip(
        list(reversed(requirements)),
        platform="linux-64",
        python_version=PY,
        index=offline(wheels),
        environ=environ,
    )
    assert first == second
    assert [p.name for p in first] == ["alpha", "beta", "delta-pkg", "gamma", "zeta"]


def test_uv_settings_of_the_environment_do_not_change_the_lock(
    wheels: Path, environ: dict[str, str]
):
    environ = {**environ, "UV_RESOLUTION": "lowest", "UV_PRERELEASE": "allow"}
    assert lock(["alpha"], wheels, environ)["beta"].version == "2.0"


def test_patch_version_is_accepted(wheels: Path, environ: dict[str, str]):
    locked = lock_pip(
        ["beta"],
        platform="osx-arm64",
        python_version=f"{PY}.1",
        index=offline(wheels),
        environ=environ,
    )
    assert [(p.name, p.version) for p in locked] == [("beta", "2.0")]


def test_no_requirements_lock_to_nothing(wheels: Path, environ: dict[str, str]):
    assert lock_pip([], platform="win-64", python_version=PY, index=offline(wheels)) == ()


# -- refusals and errors ---------------------------------------------------------------------------


def test_unsatisfiable_requirement_says_what_and_what_to_do(wheels: Path, environ: dict[str, str]):
    with pytest.raises(PipLockError) as caught:
        lock(["alpha>=5"], wheels, environ)
    message = str(caught.value)
    assert "uv could not lock the pip section (linux-64" in message
    assert "alpha" in message
    assert "Check the requirements" in message


@pytest.mark.parametrize("platform", ["linux-32", "noarch", "win-arm64", ""])
def test_unknown_platform_is_refused(platform: str, wheels: Path):
    with pytest.raises(PipLockError, match="use one of linux-64, linux-aarch64"):
        lock_pip(["alpha"], platform=platform, python_version=PY, index=offline(wheels))


@pytest.mark.parametrize("version", ["3", "three", "3.11.7.1", "py3.11"])
def test_malformed_python_version_is_refused(version: str, wheels: Path):
    with pytest.raises(PipLockError, match=r"major\.minor"):
        lock_pip(["alpha"], platform="linux-64", python_version=version, index=offline(wheels))


def test_missing_uv_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, wheels: Path):
    monkeypatch.setattr(pip_lock, "uv_binary", lambda: None)
    with pytest.raises(PipLockError, match="needs uv"):
        lock_pip(["alpha"], platform="linux-64", python_version=PY, index=offline(wheels))


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A package index that knows no package and wants a password it never accepts."""

    def do_GET(self) -> None:
        status = 401 if "alpha" in self.path else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def index_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("requirement", ["alpha", "nothing-here"])
def test_index_credentials_never_appear_in_errors(
    requirement: str, index_server: str, environ: dict[str, str]
):
    index = PipIndex(index_url=f"http://jane:s3cr3t-t0ken@{index_server}/simple/")
    with pytest.raises(PipLockError) as caught:
        lock_pip(
            [requirement], platform="linux-64", python_version=PY, index=index, environ=environ
        )
    message = str(caught.value)
    assert requirement in message
    assert "s3cr3t" not in message
    assert "jane" not in message


def test_uv_output_is_redacted_before_it_is_quoted():
    quoted = pip_lock._quote_output("error: GET https://bob:hunter2@example.org/simple/x/ failed")
    assert "hunter2" not in quoted
    assert "https://example.org/simple/x/" in quoted


# -- installing a lock -----------------------------------------------------------------------------


def make_venv(folder: Path, *, with_pip: bool) -> Path:
    argv = [sys.executable, "-m", "venv", str(folder)]
    subprocess.run(argv if with_pip else [*argv, "--without-pip"], check=True)
    return folder / "bin" / "python"


def installed(python: Path, *names: str) -> dict[str, str | None]:
    script = (
        "import sys, importlib.metadata as m\n"
        "for n in sys.argv[1:]:\n"
        "    try: print(n, m.version(n))\n"
        "    except m.PackageNotFoundError: print(n, None)\n"
    )
    out = subprocess.run(
        [str(python), "-c", script, *names], capture_output=True, text=True, check=True
    )
    pairs = (line.split() for line in out.stdout.splitlines())
    return {name: None if version == "None" else version for name, version in pairs}


def run(argv: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**environ, "PIP_CONFIG_FILE": "/dev/null", "PIP_NO_CACHE_DIR": "1"}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def tamper(wheel: Path) -> None:
    """Replace beta 2.0 after it was locked by one whose module differs in one byte: a valid
    wheel (so only the hash can tell), as a changed upload or a swapped file would be."""
    before = sha256_of(wheel)
    assert write_wheel(wheel.parent, "beta", "2.0", payload="VALUE = 3\n") == wheel
    assert sha256_of(wheel) != before


@pytest.fixture
def own_wheels(wheels: Path, tmp_path: Path) -> Path:
    """A copy of the wheel folder this test may change."""
    return Path(shutil.copytree(wheels, tmp_path / "own-wheels"))


def test_uv_installs_exactly_the_lock_with_hashes(
    own_wheels: Path, environ: dict[str, str], tmp_path: Path
):
    locked = lock_pip(
        ["alpha", "gamma"],
        platform="linux-64",
        python_version=PY,
        index=offline(own_wheels),
        environ=environ,
    )
    python = make_venv(tmp_path / "venv", with_pip=False)
    requirements = tmp_path / "locked.txt"
    argv = pip_install_command(
        python, locked, index=offline(own_wheels), requirements_file=requirements
    )

    assert argv[0] == pip_lock.uv_binary()
    assert argv[1:4] == ["pip", "install", "--python"]
    assert "--no-deps" in argv
    assert "--require-hashes" in argv
    assert "--no-config" in argv
    assert f"--hash=sha256:{sha256_of(own_wheels / GAMMA_LINUX)}" in requirements.read_text()
    outcome = run(argv, environ)
    assert outcome.returncode == 0, outcome.stderr
    assert installed(python, "alpha", "beta", "gamma", "epsilon") == {
        "alpha": "1.0",
        "beta": "2.0",
        "gamma": "1.0",
        "epsilon": None,
    }


def test_uv_refuses_a_file_changed_after_locking(
    own_wheels: Path, environ: dict[str, str], tmp_path: Path
):
    locked = lock_pip(
        ["alpha"],
        platform="linux-64",
        python_version=PY,
        index=offline(own_wheels),
        environ=environ,
    )
    tamper(own_wheels / "beta-2.0-py3-none-any.whl")
    python = make_venv(tmp_path / "venv", with_pip=False)
    argv = pip_install_command(
        python, locked, index=offline(own_wheels), requirements_file=tmp_path / "r.txt"
    )

    outcome = run(argv, {**environ, "UV_CACHE_DIR": str(tmp_path / "fresh-cache")})
    assert outcome.returncode != 0
    assert "hash" in outcome.stderr.lower()
    assert installed(python, "beta")["beta"] is None


def test_pip_installs_the_lock_with_hashes_when_uv_is_absent(
    monkeypatch: pytest.MonkeyPatch, own_wheels: Path, environ: dict[str, str], tmp_path: Path
):
    locked = lock_pip(
        ["alpha"],
        platform="linux-64",
        python_version=PY,
        index=offline(own_wheels),
        environ=environ,
    )
    monkeypatch.setattr(pip_lock, "uv_binary", lambda: None)
    python = make_venv(tmp_path / "venv", with_pip=True)
    argv = pip_install_command(
        python, locked, index=offline(own_wheels), requirements_file=tmp_path / "r.txt"
    )

    assert argv[:4] == [str(python), "-m", "pip", "install"]
    assert "--require-hashes" in argv
    assert "--no-deps" in argv
    outcome = run(argv, environ)
    assert outcome.returncode == 0, outcome.stderr
    assert installed(python, "alpha", "beta") == {"alpha": "1.0", "beta": "2.0"}

    # The same lock, a changed file: pip refuses it too.
    subprocess.run([str(python), "-m", "pip", "uninstall", "-y", "-q", "beta"], check=True)
    tamper(own_wheels / "beta-2.0-py3-none-any.whl")
    outcome = run(argv, environ)
    assert outcome.returncode != 0
    assert "HASH" in outcome.stderr.upper()
    assert installed(python, "beta")["beta"] is None


# -- command lines ---------------------------------------------------------------------------------


def test_hashes_are_all_or_nothing():
    hashed = LockedPypi("beta", "2.0", "file:///w/beta-2.0-py3-none-any.whl", "ab" * 32)
    unhashed = LockedPypi("tool", "0.1", None, None)
    vcs = LockedPypi("gitpkg", "0.3", "git+https://example.org/g.git@0123abc", None)

    assert locked_requirements([hashed]) == f"beta==2.0 --hash=sha256:{'ab' * 32}\n"
    assert locked_requirements([unhashed, hashed, vcs]) == (
        "beta==2.0\ngitpkg @ git+https://example.org/g.git@0123abc\ntool==0.1\n"
    )


def test_no_hash_means_no_hash_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(pip_lock, "uv_binary", lambda: "/opt/uv")
    packages = [LockedPypi("beta", "2.0", None, "ab" * 32), LockedPypi("tool", "0.1", None, None)]
    argv = pip_install_command(
        tmp_path / "bin" / "python",
        packages,
        index=PipIndex(),
        requirements_file=tmp_path / "r.txt",
    )
    assert "--require-hashes" not in argv
    assert (tmp_path / "r.txt").read_text() == "beta==2.0\ntool==0.1\n"


def test_index_options_reach_both_installers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    index = PipIndex(index_url="https://mirror.example/simple", find_links=("/a", "/b"))
    python = tmp_path / "bin" / "python"
    options = [
        "--index-url",
        "https://mirror.example/simple",
        "--find-links",
        "/a",
        "--find-links",
        "/b",
    ]
    monkeypatch.setattr(pip_lock, "uv_binary", lambda: "/opt/uv")
    uv = pip_requirements_command(python, tmp_path / "req.txt", index=index, use_uv=True)
    pip = pip_requirements_command(python, tmp_path / "req.txt", index=index, use_uv=False)

    assert uv == [
        "/opt/uv",
        "pip",
        "install",
        "--python",
        str(python),
        "--no-config",
        "-r",
        str(tmp_path / "req.txt"),
        *options,
    ]
    # No pip in that environment: the server's pip installs into it.
    assert pip[:5] == [sys.executable, "-m", "pip", "--python", str(python)]
    assert pip[-len(options) - 2 :] == ["-r", str(tmp_path / "req.txt"), *options]
    assert "--no-deps" not in uv
    assert "--no-deps" not in pip


def test_uv_preferred_falls_back_to_pip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(pip_lock, "uv_binary", lambda: None)
    argv = pip_requirements_command(
        tmp_path / "bin" / "python", tmp_path / "r.txt", index=PipIndex(no_index=True), use_uv=True
    )
    assert argv[1:3] == ["-m", "pip"]
    assert argv[-1] == "--no-index"
