"""What a test needs from the machine: skipped where it is missing, except in CI.

CI runs as root on a machine that has everything the tests need (`make test` installs it),
so a missing requirement there is a failure, never a silent skip."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Skip for `reason`; fail instead under `CI=true`."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test, but: {reason}", pytrace=False)
    pytest.skip(reason)
