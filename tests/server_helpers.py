"""Helpers for tests that drive kernels through a real Jupyter server's REST API."""

from __future__ import annotations

import json
from typing import Any

from tornado.httpclient import HTTPClientError


async def kernelspecs(jp_fetch) -> dict:
    return json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]


async def start_kernel(jp_fetch, name: str) -> str:
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": name}))
    return json.loads(response.body)["id"]


def run_in_kernel(jp_serverapp, kernel_id: str, code: str, timeout: float = 60) -> str:
    """Execute `code` in a kernel the server started; return its stdout."""
    client = jp_serverapp.kernel_manager.get_kernel(kernel_id).blocking_client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=timeout)
        chunks: list[str] = []

        def collect(message: dict) -> None:
            if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
                chunks.append(message["content"]["text"])

        reply = client.execute_interactive(code, output_hook=collect, timeout=timeout)
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(chunks)
    finally:
        client.stop_channels()


async def answer(request) -> tuple[int, Any, Any]:
    """Status, headers and body (JSON when it is JSON) of a request that may fail."""
    try:
        response = await request
    except HTTPClientError as error:
        if error.response is None:
            raise
        response = error.response
    text = response.body.decode()
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text
    return response.code, response.headers, body
