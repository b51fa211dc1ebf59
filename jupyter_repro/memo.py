"""A small, bounded memo of what was worked out before, safe to share between threads.

Restores run in worker threads, several at once in a server: a plain dict evicting its
oldest key (`d.pop(next(iter(d)))`) can raise when two threads do it together."""

from __future__ import annotations

import os
import threading
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

STAT_KEYS_TRUSTED = os.name != "nt"
"""Whether a file's (inode, size, mtime, ctime) tells it unchanged: on Windows `st_ctime` is
the creation time, which a rewrite in place keeps, so memos keyed by it are not used there."""


class Memo(Generic[K, V]):
    """At most `limit` entries; the oldest goes first."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._data.get(key)

    def put(self, key: K, value: V) -> V:
        with self._lock:
            if key not in self._data and len(self._data) >= self._limit:
                del self._data[next(iter(self._data))]
            self._data[key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
