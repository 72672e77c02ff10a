"""A lot's production context, like a PI event frame: the order that made it, when that order
ran on which line and machines, what the line's process values did meanwhile (minimum,
maximum, average, count per tag), and the alarms raised there in that time.

Each part comes from the engine that owns it: the lot from the value chain engine, the order,
its run windows and the machines from the production engine, the values from the historian, the
alarms from the alarm engine's journal. A part whose owner does not answer is left out with a
note saying why, so the rest still shows. Values and alarms are limited to what the caller
may read (values:read over the tag or alarm's place). The enterprise's own (partners: 403).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Request

from kiln.alarms.records import ALARMS_TARGET
from kiln.api.deps import PlatformDep
from kiln.api.routers.alarms import ask as ask_target
from kiln.api.routers.valuechain import Reader
from kiln.api.routers.valuechain_access import (
    PARTNER_DENIED,
    READ,
    RulesRoute,
    ask,
    enterprise_only,
)
from kiln.core.platform import Platform
from kiln.core.values import path_has_prefix
from kiln.historian.service import Historian
from kiln.model.definitions import DataType
from kiln.model.service import AssetModel
from kiln.production.engine import PRODUCTION_TARGET
from kiln.security.permissions import Permission
from kiln.security.principal import Principal

router = APIRouter(tags=["value chain"], route_class=RulesRoute)

MAX_TAGS = 50
MAX_ALARMS = 200
SUMMARY = ("min", "max", "avg", "count")
_OPENS = {"start", "resume"}
_CLOSES = {"pause", "complete", "cancel"}


async def _ask(
    platform: Platform, target: str, who: str, name: str, args: Mapping[str, Any]
) -> Mapping[str, Any]:
    return await ask_target(platform, name, args, target=target, who=who)


def windows(events: list[Mapping[str, Any]], now_us: int) -> list[dict[str, int]]:
    """The periods an order ran, from its events (start and resume open one; pause, complete
    and cancel close it); one still open ends now."""
    out: list[dict[str, int]] = []
    opened: int | None = None
    for event in sorted(events, key=lambda e: (e["time_us"], e["seq"])):
        if event["action"] in _OPENS and opened is None:
            opened = int(event["time_us"])
        elif event["action"] in _CLOSES and opened is not None:
            out.append({"start_us": opened, "end_us": int(event["time_us"])})
            opened = None
    if opened is not None:
        out.append({"start_us": opened, "end_us": max(opened, now_us)})
    return out


async def _values(
    platform: Platform, who: Principal, line: str, start_us: int, end_us: int
) -> list[dict[str, Any]]:
    model = platform.service(AssetModel)
    tags, _ = model.tags(line, limit=10_000)
    numeric = [
        t.path
        for t in tags
        if t.data_type in (DataType.FLOAT, DataType.INT)
        and who.sees(Permission.VALUES_READ, t.path)
    ][:MAX_TAGS]
    if not numeric:
        return []
    edges = np.array([start_us, end_us], dtype=np.int64)
    rows = await platform.service(Historian).summarize(numeric, edges, list(SUMMARY))
    return [
        {"tag": r.path, **{name: (r.values.get(name) or [None])[0] for name in SUMMARY}}
        for r in rows
        if r.kind is not None
    ]


@router.get("/lots/{lot_id}/production", responses=READ | PARTNER_DENIED)
async def lot_production(
    request: Request, lot_id: str, who: Reader, platform: PlatformDep
) -> Mapping[str, Any]:
    """The production context of a lot: its order, the order's run windows, the line's
    machines, process-value summaries and alarms over those windows."""
    await enterprise_only(request, platform, who)
    lot = (await ask(platform, "lot", {"id": lot_id, "parties": None}))["lot"]
    out: dict[str, Any] = {"lot": lot, "order": None, "windows": [], "machines": [],
                           "values": [], "alarms": [], "notes": []}  # fmt: skip
    order_id = lot.get("order_id")
    if not order_id:
        out["notes"].append("not made by a production order (received, split or merged)")
        return out
    notes: list[str] = out["notes"]
    try:
        reply = await _ask(platform, PRODUCTION_TARGET, "the production engine", "order",
                           {"id": order_id})  # fmt: skip
    except HTTPException as err:
        notes.append(f"production does not know order {order_id}: {err.detail}")
        return out
    order = reply["order"]
    line = str(order["line"])
    if not who.can(Permission.VALUES_READ, line):
        notes.append(f"the line {line} is outside your scopes")
        return out
    now = platform.clock.now_us()
    runs = windows(list(reply.get("events", [])), now)
    out |= {"order": order, "windows": runs, "progress": reply.get("progress")}
    try:
        assets = (await _ask(platform, PRODUCTION_TARGET, "the production engine", "assets",
                             {}))["assets"]  # fmt: skip
        out["machines"] = [
            a
            for a in assets
            if path_has_prefix(a["asset"], line) and who.sees(Permission.VALUES_READ, a["asset"])
        ]
    except HTTPException as err:
        notes.append(f"machines unknown: {err.detail}")
    if not runs:
        notes.append("the order never ran")
        return out
    start_us, end_us = runs[0]["start_us"], runs[-1]["end_us"]
    if platform.has(Historian) and platform.has(AssetModel) and end_us > start_us:
        try:
            out["values"] = await _values(platform, who, line, start_us, end_us)
        except ValueError as err:
            notes.append(f"process values not summarised: {err}")
    else:
        notes.append("process values are not available in this process")
    try:
        journal = await _ask(platform, ALARMS_TARGET, "the alarm engine", "journal", {
            "start_us": start_us, "end_us": end_us, "asset": line, "limit": MAX_ALARMS,
            "ascending": True,
        })  # fmt: skip
        out["alarms"] = [
            e for e in journal["entries"] if who.sees(Permission.VALUES_READ, str(e.get("asset")))
        ]
    except HTTPException as err:
        notes.append(f"alarms unknown: {err.detail}")
    return out
