"""The wheel is the product: `pip wheel .`, installed in a clean venv, enabled by itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from jupyter_repro import __version__

pytestmark = pytest.mark.packaging

REPO_ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(command: list[str], **kwargs) -> str:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    output = ANSI.sub("", result.stdout + result.stderr)
    assert result.returncode == 0, (
        f"{' '.join(command)} failed ({result.returncode}):\n{output[-4000:]}"
    )
    return output


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # No build isolation: the test venv already has the build requirements (hatchling,
    # hatch-jupyter-builder, jupyterlab for jlpm), so this runs offline and fast.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            ".",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
        ],
        cwd=REPO_ROOT,
        env=env,
    )
    (built,) = out.glob("jupyter_repro-*.whl")
    return built


def test_wheel_ships_server_config_and_a_production_labextension(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data = f"jupyter_repro-{__version__}.data/data"

    assert f"{data}/etc/jupyter/jupyter_server_config.d/jupyter_repro.json" in names
    assert f"{data}/share/jupyter/labextensions/jupyter-repro/package.json" in names
    assert f"{data}/share/jupyter/labextensions/jupyter-repro/install.json" in names
    static = [
        n
        for n in names
        if n.startswith(f"{data}/share/jupyter/labextensions/jupyter-repro/static/")
    ]
    assert any("/remoteEntry." in n for n in static), static
    assert any(n.endswith("/style.js") for n in static), static
    assert "jupyter_repro/app.py" in names


def test_wheel_in_a_clean_venv_is_enabled_and_ok(wheel, tmp_path):
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    python = str(target / "bin" / "python")
    run(
        [
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(wheel),
            "jupyterlab>=4.6,<5",
        ]
    )
    # Only the clean venv's own config and data: nothing from the user or the test venv.
    env = {
        "PATH": f"{target / 'bin'}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }

    servers = run([python, "-m", "jupyter", "server", "extension", "list"], env=env)
    labs = run([python, "-m", "jupyter", "labextension", "list"], env=env)

    assert re.search(r"jupyter_repro\s+enabled", servers), servers
    assert re.search(rf"jupyter_repro {re.escape(__version__)} OK", servers), servers
    assert re.search(rf"jupyter-repro v{re.escape(__version__)} enabled OK", labs), labs
