"""The verify policy: `[tool.jupyter_repro.verify]` of the project's pyproject.toml.

::

    [tool.jupyter_repro.verify]
    rtol = 1e-6              # relative tolerance for numbers in text (default 1e-9)
    atol = 1e-12             # absolute tolerance (default 1e-12)
    sanitizers = ['run-\\d+']  # regular expressions replaced before comparing, in every cell
    timeout = 600            # seconds a cell may run (default: no limit)

The pyproject.toml is found as the strip policy finds its own (`notebooks.policy.find_pyproject`:
the nearest one walking up from the notebook's folder, not beyond a git work tree's root), so
one file holds a project's strip and verify settings. Invalid values raise `PolicyError`,
naming the file and the key.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..notebooks.policy import PolicyError, find_pyproject
from .compare import Tolerance

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

TABLE = "tool.jupyter_repro.verify"
KEYS = ("rtol", "atol", "sanitizers", "timeout")


@dataclass(frozen=True)
class VerifyPolicy:
    """The settings verify uses for one notebook."""

    tolerance: Tolerance = field(default_factory=Tolerance)
    sanitizers: tuple[str, ...] = ()
    """Regular expressions applied (after the built-in sanitizers) to every cell's text."""
    timeout: float | None = None
    """Seconds a cell may run; None: no limit."""
    source: str | None = None
    """The pyproject.toml the settings came from; None for the defaults."""


DEFAULT_VERIFY_POLICY = VerifyPolicy()


def _number(value: Any, key: str, source: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PolicyError(f"{source}: [{TABLE}] {key}: expected a number, not {value!r}", source)
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        what = "a number greater than 0" if positive else "a finite number >= 0"
        raise PolicyError(f"{source}: [{TABLE}] {key}: expected {what}, not {value!r}", source)
    return number


def parse_verify_settings(table: Mapping[str, Any], source: str) -> VerifyPolicy:
    """A checked policy from the `[tool.jupyter_repro.verify]` table of `source`."""
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise PolicyError(
            f"{source}: [{TABLE}] has unknown keys {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(KEYS)})",
            source,
        )
    defaults = Tolerance()
    rtol = _number(table["rtol"], "rtol", source) if "rtol" in table else defaults.rtol
    atol = _number(table["atol"], "atol", source) if "atol" in table else defaults.atol
    timeout = (
        _number(table["timeout"], "timeout", source, positive=True) if "timeout" in table else None
    )
    patterns = table.get("sanitizers", [])
    if not isinstance(patterns, list):
        raise PolicyError(
            f"{source}: [{TABLE}] sanitizers: expected a list of regular expressions", source
        )
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise PolicyError(
                f"{source}: [{TABLE}] sanitizers: {pattern!r} is not a string", source
            )
        try:
            re.compile(pattern)
        except re.error as error:
            raise PolicyError(
                f"{source}: [{TABLE}] sanitizers: {pattern!r} is not a regular expression "
                f"({error})",
                source,
            ) from None
    return VerifyPolicy(Tolerance(rtol=rtol, atol=atol), tuple(patterns), timeout, source)


def read_verify_policy(pyproject: str) -> VerifyPolicy:
    """The verify policy of one pyproject.toml (the defaults when it has no such table)."""
    try:
        with open(pyproject, "rb") as file:
            document = tomllib.load(file)
    except OSError as error:
        raise PolicyError(f"{pyproject}: cannot read it ({error.strerror})", pyproject) from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{pyproject}: not valid TOML ({error})", pyproject) from None
    except UnicodeDecodeError as error:
        raise PolicyError(
            f"{pyproject}: not valid TOML (not UTF-8: {error.reason})", pyproject
        ) from None
    table: Any = document
    for part in TABLE.split("."):
        if not isinstance(table, dict) or part not in table:
            return DEFAULT_VERIFY_POLICY
        table = table[part]
    if not isinstance(table, dict):
        raise PolicyError(f"{pyproject}: [{TABLE}] must be a table", pyproject)
    return parse_verify_settings(table, pyproject)


def load_verify_policy(notebook_path: str | os.PathLike[str]) -> VerifyPolicy:
    """The verify policy for the notebook at `notebook_path` (defaults without a project)."""
    directory = os.path.dirname(os.path.abspath(notebook_path))
    pyproject = find_pyproject(directory)
    if pyproject is None:
        return DEFAULT_VERIFY_POLICY
    return read_verify_policy(pyproject)
