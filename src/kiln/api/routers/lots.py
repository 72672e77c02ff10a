"""Lots: stock, transactions, inventory by location, genealogy both ways, recalls.

Through the value chain engine (target `valuechain`) like the other value chain routes. Reading
needs valuechain:read: a partner's users see the lots they supplied or received, the quality
of them (holds and their reasons) when the enterprise shares `quality`, and their genealogy
when it shares `genealogy`, with other parties' names left out. Booking a transaction needs
valuechain:enter; a recall valuechain:plan. Every change is audited (category valuechain).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from kiln.api.deps import PlatformDep
from kiln.api.routers.valuechain import Enterer, Limit, Planner, Reader
from kiln.api.routers.valuechain_access import (
    CHANGE,
    PARTNER_DENIED,
    READ,
    RulesRoute,
    View,
    ask,
    change,
    enterprise_only,
    view_of,
)

router = APIRouter(tags=["value chain"], route_class=RulesRoute)

LotStateName = Literal["available", "held", "shipped", "consumed", "scrapped"]


class RecallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lots: list[str] = Field(min_length=1, max_length=1000, description="the suspect lots")
    hold: bool = Field(default=False, description="also hold the stock to quarantine")
    reason: str | None = Field(default=None, max_length=512, description="required to hold")
    id: str | None = Field(default=None, max_length=40, description="the recall's name")
    max_nodes: int | None = Field(default=None, ge=1, description="the most lots to walk")


def _quality(view: View, lot: dict[str, Any] | None) -> dict[str, Any] | None:
    """A partner sees why its lot is held only when the enterprise shares quality."""
    if lot is not None and view.partner and "quality" not in view.shares:
        lot = {**lot, "hold_reason": None}
    return lot


@router.get("/lots", responses=READ)
async def lots(
    request: Request,
    who: Reader,
    platform: PlatformDep,
    material: str | None = None,
    state: Annotated[list[LotStateName] | None, Query()] = None,
    location: Annotated[str | None, Query(description="this location and below it")] = None,
    limit: Limit = 500,
) -> Mapping[str, Any]:
    """Lots by id (a partner: the ones it supplied or received)."""
    view = await view_of(request, platform, who)
    args = {**view.args(), "material": material, "states": state, "location": location}
    reply = await ask(platform, "lots", {**args, "limit": limit})
    return {"lots": [_quality(view, lot) for lot in reply["lots"]]}


@router.get("/lots/transactions", responses=READ | PARTNER_DENIED)
async def transactions(
    request: Request, who: Reader, platform: PlatformDep, limit: Limit = 200
) -> Mapping[str, Any]:
    """The last transactions booked, oldest first."""
    await enterprise_only(request, platform, who)
    return await ask(platform, "transactions", {"limit": limit})


@router.get("/lots/{lot_id}", responses=READ)
async def lot(
    request: Request, lot_id: str, who: Reader, platform: PlatformDep
) -> Mapping[str, Any]:
    """One lot, with the edges it was made from and went into (the enterprise's users)."""
    view = await view_of(request, platform, who)
    reply = await ask(platform, "lot", {"id": lot_id, **view.args()})
    return {**reply, "lot": _quality(view, reply["lot"])}


@router.post("/lots/transactions", responses=CHANGE)
async def transaction(
    request: Request,
    body: Annotated[
        dict[str, Any],
        Body(
            description="one transaction: `kind` (receive, consume, produce, split, merge, "
            "move, ship, hold, release, scrap), a unique `id` and the kind's fields "
            "(docs/valuechain.md); `time_us` defaults to now",
            examples=[{"kind": "move", "id": "t-81", "lot_id": "L-1", "location": "acme/wh"}],
        ),
    ],
    who: Enterer,
    platform: PlatformDep,
) -> Mapping[str, Any]:
    """Receive, consume, produce, split, merge, move, ship, hold, release or scrap; refused
    whole (400, with the reason) when the lots' state does not allow it. The caller is the
    transaction's user."""
    await enterprise_only(request, platform, who)
    args = {"transaction": body, "user": who.name}
    target = str(body.get("lot_id") or body.get("into") or body.get("id") or "")[:128]
    detail = {"kind": str(body.get("kind")), "id": str(body.get("id"))}
    return await change(request, platform, "lot_transaction", args, target, detail)


@router.get("/lots/{lot_id}/genealogy", responses=READ | PARTNER_DENIED)
async def genealogy(
    request: Request,
    lot_id: str,
    who: Reader,
    platform: PlatformDep,
    direction: Literal["backward", "forward"] = "backward",
    max_depth: Annotated[int | None, Query(ge=1, le=1000)] = None,
    max_nodes: Annotated[int | None, Query(ge=1)] = None,
) -> Mapping[str, Any]:
    """What went into the lot (backward) or where it went (forward): each lot reached with its
    depth, one shortest path and the edge that reached it; `truncated` if the walk stopped at
    its bound."""
    view = await view_of(request, platform, who)
    if view.partner and "genealogy" not in view.shares:
        raise HTTPException(403, "the enterprise does not share genealogy with you")
    if view.partner and direction == "forward":
        # Where material went after it arrived is the enterprise's business (its lots, its
        # other customers); a partner traces back from what it received.
        raise HTTPException(403, "a partner traces backward from the lots it received")
    args = {"lot": lot_id, "direction": direction, "max_depth": max_depth, **view.args()}
    if max_nodes is not None:
        args["max_nodes"] = max_nodes
    reply = await ask(platform, "genealogy", args)
    nodes = [{**n, "lot": _quality(view, n["lot"])} for n in reply["nodes"]]
    return {**reply, "nodes": nodes}


@router.get("/inventory", responses=READ | PARTNER_DENIED)
async def inventory(
    request: Request,
    who: Reader,
    platform: PlatformDep,
    location: Annotated[str | None, Query(description="this location and below it")] = None,
) -> Mapping[str, Any]:
    """Stock on hand by location, material and state (available or held)."""
    await enterprise_only(request, platform, who)
    return await ask(platform, "inventory", {"location": location})


@router.post("/recalls", responses=CHANGE)
async def recall(
    request: Request, body: RecallIn, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Everything the lots reach forward: the customers and shipments to notify, the open
    orders to stop, the stock to quarantine; with `hold`, the holds placed (one refused because
    its lot changed meanwhile is listed, the others stand)."""
    await enterprise_only(request, platform, who)
    args: dict[str, Any] = {**body.model_dump(exclude_none=True), "user": who.name}
    return await change(
        request, platform, "recall", args, body.id or ",".join(body.lots)[:128],
        {"lots": body.lots, "hold": body.hold, "reason": body.reason},
    )  # fmt: skip


@router.get("/valuechain/events", responses=READ | PARTNER_DENIED)
async def events(
    request: Request,
    who: Reader,
    platform: PlatformDep,
    after: Annotated[int, Query(ge=0, description="the last sequence number seen")] = 0,
    limit: Limit = 200,
) -> Mapping[str, Any]:
    """The value chain's events (orders, lots, planning, recalls) after `after`, oldest first:
    what the webhooks and the pages follow."""
    await enterprise_only(request, platform, who)
    return await ask(platform, "events", {"after": after, "limit": limit})
