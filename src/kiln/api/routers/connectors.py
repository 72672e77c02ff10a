"""The plant's connectors with their state and, when they are not connected, the reason.

The list is the bus command `status` to target `connectors` (`kiln.connectors.commands`): the
connectors answer wherever they run. When none answers: in one process (the in-process bus) there
are none, an empty list; on a broker bus the process that runs them is not there now, and an empty
list would say the plant has no connectors, so the answer is 503 with Retry-After.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from kiln.api.auth import SystemReader, reads_installation
from kiln.api.deps import PlatformDep
from kiln.connectors.commands import CONNECTORS, STATUS
from kiln.core.bus import (
    Command,
    CommandError,
    CommandTimeoutError,
    InProcessBus,
    NoResponderError,
)

router = APIRouter(tags=["connectors"])

# Fields of a connector's health entry that get a field of their own; the rest go to `detail`.
_OWN_FIELDS = frozenset({"type", "state", "reason", "since", "attempts"})
STATUS_DEADLINE_S = 5.0
RETRY_AFTER_S = 5


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


@router.get(
    "/connectors",
    response_model=ConnectorsOut,
    responses={
        502: {"description": "the connectors failed to report their status"},
        503: {
            "description": "the connectors could not be asked: several processes share a broker "
            "bus and none runs the connectors now (the sources process is stopped or cannot "
            "reach the broker); retry after Retry-After seconds"
        },
        504: {"description": f"no answer from the connectors within {STATUS_DEADLINE_S:g} s"},
    },
)
async def list_connectors(platform: PlatformDep, who: SystemReader) -> ConnectorsOut:
    """Every enabled connector by name, as the connectors service reports it in health.

    Connectors belong to the installation and carry every tenant's tags, so only a reader of
    the whole installation (system:read over all of the default tenant) sees them."""
    if not reads_installation(who):
        raise HTTPException(
            403,
            "connectors belong to the installation: it takes system:read over the whole "
            "default tenant to list them",
        )
    try:
        reply = await platform.bus.request(Command(CONNECTORS, STATUS), timeout_s=STATUS_DEADLINE_S)
    except NoResponderError:
        if isinstance(platform.bus, InProcessBus):
            return ConnectorsOut(connectors=[])  # one process, without connectors
        raise HTTPException(
            503,
            "the connectors could not be asked: no process runs them now (the sources process "
            "is stopped or cannot reach the broker); retry once it is back",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
    except CommandTimeoutError:
        raise HTTPException(
            504,
            f"no answer from the connectors within {STATUS_DEADLINE_S:g} s: they may be "
            "overloaded or their process stuck; try again",
        ) from None
    except CommandError as err:
        raise HTTPException(502, f"the connectors could not report their status: {err}") from None
    report = reply.get("connectors")
    if not isinstance(report, dict):
        raise HTTPException(502, "the connectors answered the status without a list of connectors")
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
