"""A real kernel runs inside a rig-built conda environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

from tests.rig.channel import PYTHON_KERNEL_DIR
from tests.rig.installation import CondaInstallation


def run_code(km: KernelManager, code: str, timeout: float = 60) -> str:
    """Execute ``code`` in the kernel and return what it printed to stdout."""
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=timeout)
        out: list[str] = []

        def hook(msg: dict) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])

        reply = kc.execute_interactive(code, output_hook=hook, timeout=timeout)
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(out)
    finally:
        kc.stop_channels()


@pytest.mark.timeout(120)
def test_kernel_runs_with_env_prefix(
    conda_installation: CondaInstallation, rig_environ: dict[str, str], tmp_path: Path
) -> None:
    prefix = conda_installation.create_env("kernel-env", ["python", "ipykernel", "pkgc"])
    # The kernelspec as the env's ipykernel package installed it, its "python" made the
    # env's own interpreter (what a conda kernel provider does).
    spec = json.loads((prefix / PYTHON_KERNEL_DIR / "kernel.json").read_text())
    assert spec["argv"][0] == "python"
    spec["argv"][0] = str(prefix / "bin" / "python")
    kernels = tmp_path / "kernels"
    (kernels / "rig-env").mkdir(parents=True)
    (kernels / "rig-env" / "kernel.json").write_text(json.dumps(spec))

    km = KernelManager(
        kernel_name="rig-env",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]),
        connection_file=str(tmp_path / "kernel-rig-env.json"),
    )
    km.start_kernel(env=dict(os.environ), cwd=str(tmp_path))
    try:
        out = run_code(km, "import sys; print(sys.prefix); print(sys.executable)")
    finally:
        km.shutdown_kernel(now=False)
    assert not km.is_alive()
    sys_prefix, sys_executable = out.splitlines()
    assert Path(sys_prefix).resolve() == prefix.resolve()
    assert Path(sys_executable) == prefix / "bin" / "python"
    # The kernel wrote its IPython profile inside the isolated HOME, not the real one.
    assert Path(rig_environ["IPYTHONDIR"]).is_dir()
