"""Recording API actions in the audit log (IEC 62443-4-2 CR 2.8): who, from where, what, result."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.requests import HTTPConnection

from kiln.security.audit import AuditError, AuditLog, Category, Result
from kiln.security.principal import Principal

_LOGGER = logging.getLogger(__name__)


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


def actor_of(principal: Principal | None, fallback: str = "anonymous") -> str:
    if principal is None:
        return fallback
    return f"{principal.kind.value}:{principal.name}"


async def audit(
    conn: HTTPConnection,
    *,
    category: Category,
    action: str,
    target: str = "",
    result: Result = Result.SUCCESS,
    principal: Principal | None = None,
    actor: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one record; a failure to audit is logged and shown in health, never hidden."""
    principal = principal or getattr(conn.state, "principal", None)
    log: AuditLog = conn.app.state.platform.service(AuditLog)
    try:
        await log.record(
            actor=actor or actor_of(principal),
            source=client_address(conn),
            category=category,
            action=action,
            target=target,
            result=result,
            tenant=principal.tenant if principal else None,
            detail=detail,
        )
    except AuditError:
        _LOGGER.exception("Could not append to the audit log (action %s)", action)
