"""Run py-rattler's coroutines from synchronous code (fixtures and helpers are sync)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result.

    ``asyncio.run`` refuses to start inside a running loop, which is where async tests
    (pytest-asyncio, pytest-jupyter) call the rig from; there the coroutine runs on a
    fresh loop in a helper thread instead, blocking the caller until it is done.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def exit_without_finalizing(status: int = 0) -> NoReturn:
    """End a script that used the rig, skipping interpreter finalization.

    py-rattler 0.28's background threads can abort (``PyGILState_Release``, -6) or crash
    (-11) while the interpreter finalizes after a solve; benchmark and helper scripts
    that build environments should end with this instead of returning normally.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
