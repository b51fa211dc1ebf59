"""One rattler download client per process, made again when the proxy settings change."""

from __future__ import annotations

import pytest

from jupyter_repro import download_client as module
from jupyter_repro.download_client import download_client


@pytest.mark.asyncio
async def test_one_client_serves_every_caller_until_a_proxy_setting_changes(monkeypatch):
    monkeypatch.setattr(module, "_made", None)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    first = await download_client()
    assert await download_client() is first

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    behind_proxy = await download_client()

    assert behind_proxy is not first
    assert await download_client() is behind_proxy
