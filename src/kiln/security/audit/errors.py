"""Errors of the audit log. Each message says what is wrong and what to do."""

from __future__ import annotations

from kiln.core.errors import KilnError


class AuditError(KilnError):
    """The audit log cannot be opened, written or read."""


class AuditKeyError(AuditError):
    """The stored log does not verify with the key given: the install secret was replaced."""
