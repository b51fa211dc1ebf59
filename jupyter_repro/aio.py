"""asyncio helpers shared by the layers (imports nothing of ours)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any


async def gather_all(awaitables: Iterable[Awaitable[Any]]) -> list[Any]:
    """All of them, concurrently, their results in order; the first failure (or a cancel)
    cancels the rest and waits for them before it is raised, so nothing runs on behind it."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
