"""What the alarm engine raises to its callers (the commands answer them by kind)."""

from __future__ import annotations


class UnknownAlarm(KeyError):
    """No alarm by that id (answered as not found)."""


class ActionRefused(ValueError):
    """An operator action that cannot apply; the message says why (answered as 400)."""
