"""The plant's connectors with their state and, when they are not connected, the reason."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from kiln.api.auth import SystemReader, reads_installation
from kiln.api.deps import PlatformDep
from kiln.connectors.service import Connectors

router = APIRouter(tags=["connectors"])

# Fields of a connector's health entry that get a field of their own; the rest go to `detail`.
_OWN_FIELDS = frozenset({"type", "state", "reason", "since", "attempts"})


class ConnectorOut(BaseModel):
    name: str
    type: str
    state: str = Field(description="connecting, connected, degraded, error or stopped")
    reason: str | None = Field(description="why it is not connected, while it is not")
    since: str | None = Field(description="start of the current outage (ISO 8601)")
    attempts: int | None = Field(description="failed attempts in the current outage")
    detail: dict[str, Any] = Field(
        description="what else the connector reports (counters, its last problem, its nodes)"
    )


class ConnectorsOut(BaseModel):
    connectors: list[ConnectorOut]


@router.get("/connectors", response_model=ConnectorsOut)
def list_connectors(platform: PlatformDep, who: SystemReader) -> ConnectorsOut:
    """Every enabled connector by name, as the connectors service reports it in health.

    Connectors belong to the installation and carry every tenant's tags, so only a reader of
    the whole installation (system:read over all of the default tenant) sees them."""
    if not reads_installation(who):
        raise HTTPException(
            403,
            "connectors belong to the installation: it takes system:read over the whole "
            "default tenant to list them",
        )
    if not platform.has(Connectors):
        return ConnectorsOut(connectors=[])
    report = platform.service(Connectors).health().detail
    out = []
    for name, entry in sorted(report.items()):
        fields: dict[str, Any] = dict(entry) if isinstance(entry, dict) else {}
        attempts = fields.get("attempts")
        out.append(
            ConnectorOut(
                name=name,
                type=str(fields.get("type", "")),
                state=str(fields.get("state", "")),
                reason=_text(fields.get("reason")),
                since=_text(fields.get("since")),
                attempts=attempts if isinstance(attempts, int) else None,
                detail={k: v for k, v in fields.items() if k not in _OWN_FIELDS},
            )
        )
    return ConnectorsOut(connectors=out)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
