"""Installing jupyter-repro makes the server use its kernel spec manager, unless told otherwise."""

from __future__ import annotations

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from jupyter_repro.kernels.manager import CondaKernelSpecManager


async def test_the_server_uses_the_conda_kernel_spec_manager_by_default(jp_serverapp):
    assert isinstance(jp_serverapp.kernel_spec_manager, CondaKernelSpecManager)


class TestExplicitManagerIsKept:
    @pytest.fixture
    def jp_server_config(self):
        return {
            "ServerApp": {
                "jpserver_extensions": {"jupyter_repro": True},
                "kernel_spec_manager_class": "jupyter_client.kernelspec.KernelSpecManager",
            }
        }

    async def test_an_explicit_kernel_spec_manager_class_wins(self, jp_serverapp):
        manager = jp_serverapp.kernel_spec_manager
        assert type(manager) is KernelSpecManager


class TestSwitchedOff:
    @pytest.fixture
    def jp_server_config(self):
        return {
            "ServerApp": {"jpserver_extensions": {"jupyter_repro": True}},
            "ReproApp": {"manage_kernelspecs": False},
        }

    async def test_manage_kernelspecs_false_leaves_the_stock_manager(self, jp_serverapp, jp_fetch):
        assert not isinstance(jp_serverapp.kernel_spec_manager, CondaKernelSpecManager)
        # The environments routes still answer, from a catalog of their own.
        response = await jp_fetch("repro", "environments")
        assert response.code == 200
