"""Production: OEE, machine states, downtime reasons, work orders, products and shift calendars.

Every route talks to the production engine through bus commands (target `production`,
`kiln.production.engine_commands`), so the engine may run in this process or another. Reading
needs values:read over the asset; the engine is told which followed assets the caller sees
(`within`), so a site's sums never include a line outside the caller's scopes. Entering
downtime reasons and starting, pausing, resuming or completing an order needs production:enter
over the asset or the order's line; creating, releasing and cancelling orders production:plan
over the line, and products (which are not in the namespace) production:plan anywhere;
calendars config:edit over the site. An asset, order or site outside the caller's scopes is
answered as one that does not exist (404). Every change is audited (category production).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from kiln.api.audit_trail import audit
from kiln.api.auth import Require, ValuesReader
from kiln.api.deps import PlatformDep
from kiln.api.routers.alarms import ask as _ask
from kiln.core.platform import Platform
from kiln.core.timespec import parse_time_us
from kiln.production.engine import PRODUCTION_TARGET
from kiln.security.audit import Category, Result
from kiln.security.permissions import Permission
from kiln.security.principal import Principal

router = APIRouter(tags=["production"])

_ENGINE: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad arguments, or a change the data does not allow (the detail: why)"},
    502: {"description": "the production engine failed the command"},
    503: {"description": "the production engine is not running; retry shortly"},
    504: {"description": "no answer from the production engine in time"},
}
_MISSING: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such asset, order, product or site for you (existence does not leak)"}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "the order changed meanwhile (expected_version), or its id is taken"}
}
_RESPONSES = _ENGINE | _MISSING

Enterer = Annotated[Principal, Depends(Require(Permission.PRODUCTION_ENTER))]
Planner = Annotated[Principal, Depends(Require(Permission.PRODUCTION_PLAN))]
ConfigEditor = Annotated[Principal, Depends(Require(Permission.CONFIG_EDIT))]

ORDERS_SCAN = 5_000  # the newest orders a listing looks through
DEFAULT_RANGE_US = 8 * 3_600_000_000  # a shift's worth when no start is given
TIME_HELP = "ISO 8601 with a zone, epoch ms, now, or relative (-8h)"
OrderActionName = Literal["release", "start", "pause", "resume", "complete", "cancel"]
# Acting on the machines is the operator's; dispatching work is the planner's.
ACTION_PERMISSION: dict[OrderActionName, Permission] = {
    "release": Permission.PRODUCTION_PLAN,
    "cancel": Permission.PRODUCTION_PLAN,
    "start": Permission.PRODUCTION_ENTER,
    "pause": Permission.PRODUCTION_ENTER,
    "resume": Permission.PRODUCTION_ENTER,
    "complete": Permission.PRODUCTION_ENTER,
}


async def ask(platform: Platform, name: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
    return await _ask(platform, name, args, target=PRODUCTION_TARGET, who="the production engine")


# -- times and scopes -------------------------------------------------------------------------

Time = str | int  # in a body: a time string as in a query, or µs since the epoch


def _time(value: Time, now_us: int, what: str) -> int:
    if isinstance(value, int):
        return value
    try:
        return parse_time_us(value, now_us)
    except ValueError as err:
        raise HTTPException(400, f"{what}: {err}") from None


def _window(platform: Platform, start: Time | None, end: Time | None) -> dict[str, int]:
    now = platform.clock.now_us()
    end_us = now if end is None else _time(end, now, "end")
    start_us = end_us - DEFAULT_RANGE_US if start is None else _time(start, now, "start")
    if end_us <= start_us:
        raise HTTPException(400, f"end ({end}) must be after start ({start})")
    return {"start_us": start_us, "end_us": end_us}


def _no_data(asset: str) -> HTTPException:
    return HTTPException(
        404, f"no production data for {asset!r}: list them with /production/assets"
    )


async def _visible_assets(platform: Platform, who: Principal) -> list[str] | None:
    """The followed assets the caller may read, as the engine's `within`; None when it may read
    every one. Asset paths rather than the caller's scope roots: a tenant holding "*" owns the
    namespace less other tenants' roots, which no list of prefixes can say."""
    reply = await ask(platform, "assets", {})
    assets = [a["asset"] for a in reply["assets"]]
    visible = [a for a in assets if who.sees(Permission.VALUES_READ, a)]
    return None if len(visible) == len(assets) else visible


async def _read(
    platform: Platform, who: Principal, name: str, asset: str, args: dict[str, Any]
) -> Mapping[str, Any]:
    """A question about `asset` (or the assets below it) limited to what the caller sees; 404
    alike for an asset outside its scopes and one without production data."""
    if not who.can(Permission.VALUES_READ, asset):
        raise _no_data(asset)
    within = await _visible_assets(platform, who)
    return await _ask_about(platform, name, {"asset": asset, "within": within, **args}, asset)


async def _ask_about(
    platform: Platform, name: str, args: Mapping[str, Any], asset: str
) -> Mapping[str, Any]:
    """`ask`, with the engine's "not found" answered as no production data for `asset`: the
    same words as for an asset outside the caller's scopes."""
    try:
        return await ask(platform, name, args)
    except HTTPException as err:
        if err.status_code == 404:
            raise _no_data(asset) from None
        raise


# -- figures ----------------------------------------------------------------------------------


@router.get("/oee", responses=_RESPONSES)
async def oee(
    who: ValuesReader,
    platform: PlatformDep,
    asset: Annotated[str, Query(description="an asset, or a line, area or site: its sums")],
    start: Annotated[str | None, Query(description=TIME_HELP + "; default end - 8h")] = None,
    end: Annotated[str | None, Query(description=TIME_HELP + "; default now")] = None,
    by: Literal["none", "hour", "shift", "day", "week", "order", "product"] = "none",
) -> Mapping[str, Any]:
    """Availability, performance, quality, OEE and TEEP (ISO 22400-2) per bucket and in total,
    each with its formula and inputs, the time elements and counts under them."""
    window = _window(platform, start, end)
    return await _read(platform, who, "oee", asset, {**window, "by": by})


@router.get("/oee/pareto", responses=_RESPONSES)
async def pareto(
    who: ValuesReader,
    platform: PlatformDep,
    asset: Annotated[str, Query(description="an asset, or a subtree")],
    start: Annotated[str | None, Query(description=TIME_HELP + "; default end - 8h")] = None,
    end: Annotated[str | None, Query(description=TIME_HELP + "; default now")] = None,
    group: Literal["reason", "category"] = "reason",
) -> Mapping[str, Any]:
    """Downtime by reason or category, largest first, with shares; MTBF and MTTR."""
    window = _window(platform, start, end)
    return await _read(platform, who, "pareto", asset, {**window, "group": group})


@router.get("/states", responses=_RESPONSES)
async def states(
    who: ValuesReader,
    platform: PlatformDep,
    asset: Annotated[str, Query(description="an asset, or a subtree")],
    start: Annotated[str | None, Query(description=TIME_HELP + "; default end - 8h")] = None,
    end: Annotated[str | None, Query(description=TIME_HELP + "; default now")] = None,
) -> Mapping[str, Any]:
    """Each asset's state intervals, with operators' reasons applied and where they came from."""
    return await _read(platform, who, "states", asset, _window(platform, start, end))


@router.get("/production/live", responses=_RESPONSES)
async def live(
    who: ValuesReader,
    platform: PlatformDep,
    asset: Annotated[str | None, Query(description="a subtree; default every asset")] = None,
) -> Mapping[str, Any]:
    """Each asset's state now and its figures for the current shift so far."""
    if asset is not None and not who.can(Permission.VALUES_READ, asset):
        raise _no_data(asset)
    within = await _visible_assets(platform, who)
    return await ask(platform, "live", {"asset": asset or "", "within": within})


@router.get("/production/assets", responses=_ENGINE)
async def assets(who: ValuesReader, platform: PlatformDep) -> Mapping[str, Any]:
    """The assets whose states the engine follows, with their type, line and tags."""
    reply = await ask(platform, "assets", {})
    return {"assets": [a for a in reply["assets"] if who.sees(Permission.VALUES_READ, a["asset"])]}


@router.get("/production/reasons", responses=_RESPONSES)
async def reasons(
    who: ValuesReader,
    platform: PlatformDep,
    asset: Annotated[str, Query(description="one asset")],
) -> Mapping[str, Any]:
    """The asset's reason tree, each node with its category (what an operator may enter)."""
    if not who.sees(Permission.VALUES_READ, asset):
        raise _no_data(asset)
    return await _ask_about(platform, "reasons", {"asset": asset}, asset)


@router.get("/production/records", responses=_RESPONSES)
async def records(
    who: ValuesReader,
    platform: PlatformDep,
    asset: Annotated[str, Query(description="one asset")],
    start: Annotated[str | None, Query(description=TIME_HELP + "; default end - 8h")] = None,
    end: Annotated[str | None, Query(description=TIME_HELP + "; default now")] = None,
) -> Mapping[str, Any]:
    """The operators' reason records over the range: who entered what, when (the audit trail
    of downtime reasons; a later record wins where records overlap)."""
    if not who.sees(Permission.VALUES_READ, asset):
        raise _no_data(asset)
    return await _read(platform, who, "records", asset, _window(platform, start, end))


# -- downtime reasons -------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssignIn(_In):
    asset: str = Field(min_length=1, max_length=1024)
    start: Time = Field(description=TIME_HELP + ", or µs since the epoch")
    end: Time = Field(description=TIME_HELP + ", or µs since the epoch")
    reason: str = Field(min_length=1, max_length=512, description="a path of the reason tree")
    comment: str = Field(default="", max_length=2000)
    action: Literal["assign", "reassign"] = "assign"


class PieceIn(_In):
    end: Time | None = Field(
        default=None, description="where this piece ends; the last piece ends with the stop"
    )
    reason: str = Field(min_length=1, max_length=512)
    comment: str = Field(default="", max_length=2000)


class SplitIn(_In):
    asset: str = Field(min_length=1, max_length=1024)
    start: Time
    end: Time
    pieces: list[PieceIn] = Field(min_length=2, max_length=20)


def _entering(who: Principal, asset: str) -> None:
    if not (
        who.sees(Permission.VALUES_READ, asset) and who.sees(Permission.PRODUCTION_ENTER, asset)
    ):
        raise _no_data(asset)


async def _change(
    request: Request,
    platform: Platform,
    name: str,
    args: dict[str, Any],
    target: str,
    detail: Mapping[str, Any],
    missing: HTTPException | None = None,
    action: str | None = None,
) -> Mapping[str, Any]:
    """One change through the engine, audited (as `action`, default the command's name)
    whether it is made or refused; `missing` replaces the engine's 404."""
    action = action or name
    try:
        reply = await ask(platform, name, args)
    except HTTPException as err:
        if missing is not None and err.status_code == 404:
            err = missing
        if err.status_code in (400, 404, 409):
            await audit(request, category=Category.PRODUCTION, action=action, target=target,
                        result=Result.FAILURE, detail={**detail, "error": str(err.detail)})  # fmt: skip
        raise err from None
    await audit(request, category=Category.PRODUCTION, action=action, target=target, detail=detail)
    return reply


@router.post("/states/reasons", responses=_RESPONSES)
async def assign_reason(
    request: Request, body: AssignIn, who: Enterer, platform: PlatformDep
) -> Mapping[str, Any]:
    """Give a stop (or part of one) a reason; `reassign` replaces an earlier one. The record
    is kept: the trail shows every assignment (GET /production/records)."""
    _entering(who, body.asset)
    window = _window(platform, body.start, body.end)
    args = {**window, "asset": body.asset, "reason": body.reason, "comment": body.comment,
            "action": body.action, "user": who.name}  # fmt: skip
    detail = {**window, "reason": body.reason, "comment": body.comment, "action": body.action}
    return await _change(request, platform, "assign", args, body.asset, detail,
                         missing=_no_data(body.asset), action=body.action)  # fmt: skip


@router.post("/states/split", responses=_RESPONSES)
async def split_stop(
    request: Request, body: SplitIn, who: Enterer, platform: PlatformDep
) -> Mapping[str, Any]:
    """Split a stop into pieces, each with its reason: each piece ends at its `end` (the last
    at the stop's end)."""
    _entering(who, body.asset)
    window = _window(platform, body.start, body.end)
    now = platform.clock.now_us()
    pieces: list[dict[str, Any]] = []
    for i, piece in enumerate(body.pieces):
        last = i == len(body.pieces) - 1
        if piece.end is None and not last:
            raise HTTPException(400, f"piece {i + 1} needs an end (only the last may omit it)")
        end_us = window["end_us"] if piece.end is None else _time(piece.end, now, f"piece {i + 1}")
        pieces.append({"end_us": end_us, "reason": piece.reason, "comment": piece.comment})
    args = {**window, "asset": body.asset, "pieces": pieces, "user": who.name}
    detail = {**window, "pieces": pieces}
    return await _change(
        request, platform, "split", args, body.asset, detail, missing=_no_data(body.asset)
    )


class CountIn(_In):
    asset: str = Field(min_length=1, max_length=1024)
    good: float = Field(default=0, ge=0, le=1e9, description="good units counted")
    scrap: float = Field(default=0, ge=0, le=1e9, description="scrapped units counted")
    time: Time | None = Field(default=None, description=TIME_HELP + "; default now")
    comment: str = Field(default="", max_length=2000)


@router.post("/production/counts", responses=_RESPONSES)
async def count_units(
    request: Request, body: CountIn, who: Enterer, platform: PlatformDep
) -> Mapping[str, Any]:
    """Units counted as an event (an operator's tally, a scanner): added to the good and scrap
    of the asset at that instant, and to the order running then. For asset types whose state
    model sets `count_events`."""
    _entering(who, body.asset)
    now = platform.clock.now_us()
    args: dict[str, Any] = {
        "asset": body.asset,
        "good": body.good,
        "scrap": body.scrap,
        "comment": body.comment,
        "user": who.name,
    }
    if body.time is not None:
        args["time_us"] = _time(body.time, now, "time")
    detail = {"good": body.good, "scrap": body.scrap, "time_us": args.get("time_us", now)}
    return await _change(
        request, platform, "count", args, body.asset, detail, missing=_no_data(body.asset)
    )


# -- work orders ------------------------------------------------------------------------------


class OrderIn(_In):
    id: str = Field(min_length=1, max_length=64, description="the order number")
    product: str = Field(min_length=1, max_length=64)
    line: str = Field(min_length=1, max_length=512, description="the line (an asset path)")
    quantity: float
    due: Time | None = Field(default=None, description=TIME_HELP + ", or µs since the epoch")
    comment: str = Field(default="", max_length=2000)
    state: Literal["planned", "released"] = "planned"


class OrderActionIn(_In):
    comment: str = Field(default="", max_length=2000)
    expected_version: int | None = Field(
        default=None, ge=1, description="refuse (409) if the order is at another version"
    )


def _no_order(order_id: str) -> HTTPException:
    return HTTPException(404, f"there is no work order {order_id}")


def _no_line(line: str) -> HTTPException:
    return HTTPException(404, f"no line {line!r} for you to plan on")


@router.get("/orders", responses=_ENGINE)
async def orders(
    who: ValuesReader,
    platform: PlatformDep,
    line: Annotated[str | None, Query(description="one line")] = None,
    state: Annotated[
        list[Literal["planned", "released", "running", "paused", "completed", "cancelled"]] | None,
        Query(description="repeatable; default every state"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5_000)] = 500,
) -> Mapping[str, Any]:
    """Work orders on the lines the caller may see, newest first."""
    # Asked for at the most, then filtered to the caller's lines, then cut to `limit`: a
    # scoped caller's orders are not crowded out by newer ones of lines it does not see.
    args: dict[str, Any] = {"line": line, "limit": ORDERS_SCAN}
    if state:
        args["states"] = list(state)
    reply = await ask(platform, "orders", args)
    mine = [o for o in reply["orders"] if who.sees(Permission.VALUES_READ, o["line"])]
    return {"orders": mine[:limit]}


async def _order(platform: Platform, who: Principal, order_id: str) -> Mapping[str, Any]:
    try:
        reply = await ask(platform, "order", {"id": order_id})
    except HTTPException as err:
        raise (_no_order(order_id) if err.status_code == 404 else err) from None
    if not who.sees(Permission.VALUES_READ, reply["order"]["line"]):
        raise _no_order(order_id)
    return reply


@router.post("/orders", status_code=201, responses=_RESPONSES | _CONFLICT)
async def create_order(
    request: Request, body: OrderIn, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """A new work order, planned or released, on a line; its product must be known."""
    if not (
        who.sees(Permission.VALUES_READ, body.line)
        and who.sees(Permission.PRODUCTION_PLAN, body.line)
    ):
        raise _no_line(body.line)
    now = platform.clock.now_us()
    order: dict[str, Any] = {
        "id": body.id,
        "product": body.product,
        "line": body.line,
        "quantity": body.quantity,
        "state": body.state,
        "comment": body.comment,
    }
    if body.due is not None:
        order["due_us"] = _time(body.due, now, "due")
    try:
        return await _change(request, platform, "order_create", {"order": order}, body.id, order)
    except HTTPException as err:
        if err.status_code == 400 and await _order_exists(platform, body.id):
            raise HTTPException(409, str(err.detail)) from None
        raise


async def _order_exists(platform: Platform, order_id: str) -> bool:
    try:
        await ask(platform, "order", {"id": order_id})
    except HTTPException:
        return False
    return True


@router.get("/orders/{order_id}", responses=_RESPONSES)
async def get_order(order_id: str, who: ValuesReader, platform: PlatformDep) -> Mapping[str, Any]:
    """One order with its events (who did what, when) and, once it ran, its counts and OEE."""
    return await _order(platform, who, order_id)


def _order_route(action: OrderActionName) -> None:
    permission = ACTION_PERMISSION[action]

    async def act(
        request: Request, order_id: str, body: OrderActionIn, who: Principal, platform: PlatformDep
    ) -> Mapping[str, Any]:
        current = (await _order(platform, who, order_id))["order"]
        if not who.sees(permission, current["line"]):
            raise _no_order(order_id)
        args = {"id": order_id, "action": action, "comment": body.comment,
                "expected_version": body.expected_version, "user": who.name}  # fmt: skip
        detail = {"comment": body.comment, "expected_version": body.expected_version}
        try:
            return await _change(request, platform, "order_action", args, order_id, detail,
                                 missing=_no_order(order_id), action=f"order_{action}")  # fmt: skip
        except HTTPException as err:
            if err.status_code == 400 and body.expected_version is not None:
                now = (await _order(platform, who, order_id))["order"]
                if now["version"] != body.expected_version:
                    raise HTTPException(409, str(err.detail)) from None
            raise

    # The guard differs per action: set as an object, since the module's annotations are text
    # that FastAPI resolves in the module's namespace, where this function's local is not.
    act.__annotations__["who"] = Annotated[Principal, Depends(Require(permission))]
    act.__name__ = f"order_{action}"
    act.__doc__ = (
        f"{action.capitalize()} the work order ({permission.value} over its line); "
        "refused (400) with the actions its state allows."
    )
    router.post(
        f"/orders/{{order_id}}/{action}", responses=_RESPONSES | _CONFLICT, name=f"order_{action}"
    )(act)


for _action in ACTION_PERMISSION:
    _order_route(_action)


# -- products ---------------------------------------------------------------------------------


class ProductIn(_In):
    name: str = Field(min_length=1, max_length=256)
    unit: str = Field(default="pcs", min_length=1, max_length=32)
    ideal_cycle_s: float | None = Field(default=None, description="seconds per unit")
    per_asset: dict[str, float] = Field(
        default_factory=dict, description="asset or line path -> ideal cycle time in s"
    )


@router.get("/products", responses=_ENGINE)
async def products(who: ValuesReader, platform: PlatformDep) -> Mapping[str, Any]:
    """Every product and its ideal cycle times; per-asset times only for assets the caller
    may see (products are plant-wide master data, their asset entries are not)."""
    reply = await ask(platform, "products", {})
    return {
        "products": [
            p
            | {
                "per_asset": {
                    a: v for a, v in p["per_asset"].items() if who.can(Permission.VALUES_READ, a)
                }
            }
            for p in reply["products"]
        ]
    }


async def _own_entries(
    platform: Platform, who: Principal, code: str, new: Mapping[str, Any]
) -> None:
    """A planner changes a product only where its per-asset times lie in the planner's scope:
    the old entries (deleting or replacing them) and the new ones."""
    reply = await ask(platform, "products", {})
    old = next((p for p in reply["products"] if p["code"] == code), None)
    entries = set(new) | set(old["per_asset"] if old is not None else ())
    outside = sorted(a for a in entries if not who.sees(Permission.PRODUCTION_PLAN, a))
    if outside:
        raise HTTPException(
            403,
            f"product {code!r} has ideal cycle times for assets outside your scope "
            f"({len(outside)}); a planner of those assets changes it",
        )


@router.put("/products/{code}", responses=_RESPONSES)
async def put_product(
    request: Request, code: str, body: ProductIn, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    """Add or replace a product (by its code)."""
    product = {"code": code, **body.model_dump()}
    await _own_entries(platform, who, code, product.get("per_asset") or {})
    return await _change(request, platform, "product_put", {"product": product}, code, product)


@router.delete("/products/{code}", responses=_RESPONSES)
async def delete_product(
    request: Request, code: str, who: Planner, platform: PlatformDep
) -> Mapping[str, Any]:
    await _own_entries(platform, who, code, {})
    return await _change(request, platform, "product_delete", {"code": code}, code, {})


# -- calendars --------------------------------------------------------------------------------


def _no_calendar(site: str) -> HTTPException:
    return HTTPException(404, f"no shift calendar for {site!r}")


@router.get("/calendars", responses=_ENGINE)
async def calendars(who: ValuesReader, platform: PlatformDep) -> Mapping[str, Any]:
    """The sites' shift calendars (the plant file's, or as set here) the caller may see."""
    reply = await ask(platform, "calendars", {})
    return {
        "calendars": [c for c in reply["calendars"] if who.can(Permission.VALUES_READ, c["site"])]
    }


@router.put("/calendars/{site:path}", responses=_RESPONSES)
async def put_calendar(
    request: Request,
    site: str,
    calendar: dict[str, Any],
    who: ConfigEditor,
    platform: PlatformDep,
) -> Mapping[str, Any]:
    """Set a site's calendar (the plant file's format, its `site` the path's); it replaces
    the plant file's until deleted, and every figure of the site is recomputed with it."""
    if not who.sees(Permission.CONFIG_EDIT, site):
        raise _no_calendar(site)
    if calendar.get("site", site) != site:
        raise HTTPException(400, f"the calendar is of site {calendar.get('site')!r}, not {site!r}")
    calendar = {**calendar, "site": site}
    return await _change(
        request, platform, "calendar_put", {"calendar": calendar}, site, {"calendar": calendar}
    )


@router.delete("/calendars/{site:path}", responses=_RESPONSES)
async def delete_calendar(
    request: Request, site: str, who: ConfigEditor, platform: PlatformDep
) -> Mapping[str, Any]:
    """Remove a calendar set here; the plant file's (if any) is in force again."""
    if not who.sees(Permission.CONFIG_EDIT, site):
        raise _no_calendar(site)
    return await _change(
        request, platform, "calendar_delete", {"site": site}, site, {}, missing=_no_calendar(site)
    )


@router.get("/shifts", responses=_RESPONSES)
async def shifts(
    who: ValuesReader,
    platform: PlatformDep,
    site: Annotated[str, Query(description="a site with a shift calendar")],
    start: Annotated[str | None, Query(description=TIME_HELP + "; default end - 8h")] = None,
    end: Annotated[str | None, Query(description=TIME_HELP + "; default now")] = None,
) -> Mapping[str, Any]:
    """The shifts of the site's calendar in the range, with their breaks and planned stops."""
    if not who.can(Permission.VALUES_READ, site):
        raise _no_calendar(site)
    window = _window(platform, start, end)
    try:
        return await ask(platform, "shifts", {"site": site, **window})
    except HTTPException as err:
        raise (_no_calendar(site) if err.status_code == 404 else err) from None


__all__ = ["router"]
