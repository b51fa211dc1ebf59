"""The bounded memo shared by restores running in several threads."""

from __future__ import annotations

import sys
import threading

from jupyter_repro.memo import Memo


def test_the_oldest_entry_goes_when_the_memo_is_full():
    memo: Memo[str, int] = Memo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    memo.put("a", 10)  # replaced, nothing evicted
    memo.put("c", 3)

    assert (memo.get("a"), memo.get("b"), memo.get("c")) == (None, 2, 3)
    assert len(memo) == 2


def test_many_threads_filling_one_memo_never_fail():
    """A plain dict evicting with `d.pop(next(iter(d)))` raises KeyError or 'changed size
    during iteration' when threads race; the memo does not."""
    memo: Memo[int, int] = Memo(8)
    errors: list[BaseException] = []
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    def fill(offset: int) -> None:
        try:
            for i in range(20_000):
                memo.put(offset + i, i)
                memo.get(offset + i - 3)
        except BaseException as error:
            errors.append(error)

    try:
        threads = [threading.Thread(target=fill, args=(n * 1_000_000,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)

    assert errors == []
    assert len(memo) == 8
