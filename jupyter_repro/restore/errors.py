"""What can stop a restore, typed so that the REST layer maps each to its status in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal


class RestoreError(Exception):
    """A restore that cannot go on; the message says what is wrong and what to do."""


class TargetExists(RestoreError):
    """The target prefix exists already; a restore never overwrites an environment."""

    conflict: NameConflict | None = None
    suggested_name: str | None = None


class NameTaken(TargetExists):
    """The name belongs to an environment (or a folder in an envs dir) already."""

    def __init__(self, message: str, conflict: NameConflict, suggested_name: str | None) -> None:
        super().__init__(message)
        self.conflict = conflict
        self.suggested_name = suggested_name


@dataclass(frozen=True)
class NameCheck:
    """Whether a name can be restored into now (see `RestoreService.check_name`)."""

    name: str
    target: Path | None
    """Where a restore under this name would go; None for an invalid name."""
    problem: str | None
    """Why the name is not a valid environment name; None when it is."""
    conflict: NameConflict | None
    suggested_name: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": str(self.target) if self.target is not None else None,
            "problem": self.problem,
            "conflict": self.conflict.to_json() if self.conflict is not None else None,
            "suggested_name": self.suggested_name,
        }


@dataclass(frozen=True)
class NameConflict:
    """Why a name or prefix cannot be restored into: what already has it."""

    name: str | None
    prefix: Path
    reason: Literal["environment", "folder", "prefix"]
    """`environment`: a listed environment has that name; `folder`: an envs dir holds a
    folder of that name; `prefix`: the prefix asked for exists."""
    kernels: tuple[str, ...] = ()
    """The kernels of that environment (a notebook may switch to them)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "prefix": str(self.prefix),
            "reason": self.reason,
            "kernels": list(self.kernels),
        }


class TargetBusy(RestoreError):
    """Another restore is building that target right now."""


class RefusedSpec(RestoreError):
    """The spec asks for something the server's policy forbids (channel, pip URL, name)."""


class UnsatisfiableSpec(RestoreError):
    """The solver found no set of packages that meets the spec."""


class RestoreCancelled(RestoreError):
    """The restore was cancelled (for callers that prefer an error to `CancelledError`)."""


class InvalidTarget(RestoreError):
    """The name or prefix given cannot be used: control characters, NUL, too long, or (on
    the server) a prefix outside the folders restores may write to."""


class DiskError(RestoreError):
    """The file system refused a write: full, read-only, or not permitted to this process."""


class SharedTarget(InvalidTarget):
    """The target lies in a shared folder: administrators' environments, never written by
    a restore (even where the file system would allow it)."""


class LimitReached(RestoreError):
    """A limit the administrator set refuses the restore (before anything is created)."""


class TooManyEnvironments(LimitReached):
    """The user has `ReproApp.max_user_environments` environments already."""


class NotEnoughSpace(LimitReached):
    """Less than `ReproApp.min_free_space` is free where the environment would go."""
