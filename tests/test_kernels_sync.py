"""`jupyter repro kernels sync`: real kernelspecs that nbconvert and papermill can launch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_repro.kernels.sync import MARKER_KEY
from tests.rig.installation import CondaInstallation

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def installation(conda_installation_factory) -> CondaInstallation:
    return conda_installation_factory(standard_envs=True)


def repro(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_repro.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def user_kernels(env: dict[str, str]) -> Path:
    return Path(env["JUPYTER_DATA_DIR"]) / "kernels"


def test_sync_user_writes_marked_kernelspecs_that_go_through_the_launcher(installation):
    env = installation.environ()

    result = repro(env, "kernels", "sync", "--user")

    assert result.returncode == 0, result.stderr
    folder = user_kernels(env) / "conda-env-py-py"
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["metadata"][MARKER_KEY]
    assert spec["argv"][1:3] == ["-m", "jupyter_repro.kernels.launch"]
    assert spec["argv"][3] == str(installation.envs["py"].resolve())
    assert (user_kernels(env) / "conda-env-r-r" / "kernel.json").is_file()
    assert "conda-env-py-py" in result.stdout


def test_sync_removes_only_the_stale_kernelspecs_it_wrote(installation):
    env = installation.environ()
    kernels = user_kernels(env)
    stale = kernels / "conda-env-gone-py"
    stale.mkdir(parents=True)
    (stale / "kernel.json").write_text(
        json.dumps({"argv": ["x"], "display_name": "gone", "metadata": {MARKER_KEY: "0.0.1"}})
    )
    foreign = kernels / "conda-env-mine-py"
    foreign.mkdir()
    (foreign / "kernel.json").write_text(json.dumps({"argv": ["x"], "display_name": "mine"}))
    same_name_foreign = kernels / "conda-env-old-py"
    same_name_foreign.mkdir()
    (same_name_foreign / "kernel.json").write_text(json.dumps({"argv": ["y"], "display_name": "y"}))

    result = repro(env, "kernels", "sync", "--user")

    assert result.returncode == 0, result.stderr
    assert not stale.exists()
    assert foreign.is_dir()
    # A kernelspec someone else wrote under one of our names is left untouched.
    assert json.loads((same_name_foreign / "kernel.json").read_text())["argv"] == ["y"]
    assert "1 stale removed" in result.stdout

    again = repro(env, "kernels", "sync", "--user")
    assert "0 written" in again.stdout


def test_nbconvert_executes_a_notebook_on_a_synced_kernel_with_activation(installation, tmp_path):
    env = installation.environ()
    assert repro(env, "kernels", "sync", "--user").returncode == 0
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "probe",
                "metadata": {},
                "outputs": [],
                "source": (
                    "import os, sys\n"
                    "print(sys.prefix)\n"
                    "print(os.environ.get('REPRO_RIG_ACTIVATED'))"
                ),
            }
        ],
        "metadata": {"kernelspec": {"name": "conda-env-py-py", "display_name": "py"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    source = tmp_path / "probe.ipynb"
    source.write_text(json.dumps(notebook))

    result = subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", str(source),
         "--output", "executed.ipynb"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    executed = json.loads((tmp_path / "executed.ipynb").read_text())
    text = "".join(executed["cells"][0]["outputs"][0]["text"]).splitlines()
    assert Path(text[0]).resolve() == installation.envs["py"].resolve()
    assert text[1] == "1"


def test_envs_and_kernels_list_commands(installation):
    env = installation.environ()

    listing = json.loads(repro(env, "envs", "--json").stdout)
    names = [e["name"] for e in listing["environments"]]
    kernels = repro(env, "kernels", "list")

    assert names[0] == "base"
    assert {"py", "r", "old", "nokernel", "demo"} <= set(names)
    assert "conda-env-py-py" in kernels.stdout
    assert str(installation.envs["py"].resolve()) in kernels.stdout
