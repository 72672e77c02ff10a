"""Errors the platform raises on purpose. Each message says what is wrong and how to fix it."""

from __future__ import annotations


class KilnError(Exception):
    """Base of every error Kiln raises deliberately."""


class ConfigError(KilnError):
    """A configuration file or option is invalid. The message names the file, field and fix."""


class InvalidPathError(KilnError, ValueError):
    """A namespace path is malformed."""


class NamespaceLockedError(KilnError):
    """A value arrived for an unknown tag in a part of the namespace that only configuration may extend."""


class QueryTooLargeError(KilnError):
    """A query would return more than its bound; the message says how to narrow it."""


class StartupError(KilnError):
    """A platform stage failed or timed out while starting."""


class NotDurableError(KilnError):
    """The historian could not commit a batch; its sender must not consider it acknowledged."""
