"""What stops a verification altogether (light: the server imports it at start-up)."""

from __future__ import annotations


class VerifyError(Exception):
    """The notebook cannot be verified at all (not a notebook, an invalid verify policy, a
    kernel that is unknown or does not start, nothing to restore from); the message says
    what to do."""
