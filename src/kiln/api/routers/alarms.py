"""Alarms: the current list, operator actions, the journal (JSON or CSV), KPIs, definitions.

Every route talks to the alarm engine through bus commands (target `alarms`,
`kiln.alarms.engine_commands`), so the engine may run in this process or another. Reading
needs values:read over the alarm's asset; acknowledging alarms:ack; shelving, unshelving and
out of service alarms:shelve; definitions config:edit over the asset and values:read over every
tag they read; notification deliveries system:read, filtered to those whose alarms the caller
sees, and retrying one alarms:ack over its alarms as well. Scopes are checked per alarm on the
asset its id starts with (`records.asset_of`): an alarm outside the caller's subtrees is "no
such alarm", never a hint that it exists. Every operator action is audited (category alarm).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from kiln.alarms.compile import referenced_paths
from kiln.alarms.definitions import AlarmDef
from kiln.alarms.records import ALARMS_TARGET, asset_of
from kiln.api.audit_trail import actor_of, audit
from kiln.api.auth import Require, SystemReader, ValuesReader
from kiln.api.deps import PlatformDep
from kiln.core.bus import (
    Command,
    CommandError,
    CommandFailure,
    CommandTimeoutError,
    NoResponderError,
)
from kiln.core.errors import InvalidPathError
from kiln.core.platform import Platform
from kiln.core.timespec import parse_time_us
from kiln.core.values import path_has_prefix, validate_path
from kiln.security.audit import Category, Result
from kiln.security.permissions import Permission
from kiln.security.principal import ANY_ROOT, Principal

router = APIRouter(prefix="/alarms", tags=["alarms"])

# What any route may answer besides its own: the engine's refusals and its absence.
_ENGINE: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad arguments, or an action the alarm's state does not allow (why)"},
    502: {"description": "the alarm engine failed the command"},
    503: {"description": "the alarm engine (or the notifier) is not running; retry shortly"},
    504: {"description": "no answer from the alarm engine in time"},
}
_MISSING: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such alarm, asset or delivery for you (existence does not leak)"}
}

Acker = Annotated[Principal, Depends(Require(Permission.ALARMS_ACK))]
Shelver = Annotated[Principal, Depends(Require(Permission.ALARMS_SHELVE))]
ConfigEditor = Annotated[Principal, Depends(Require(Permission.CONFIG_EDIT))]

DEADLINE_S = 10.0
NOTIFIER = "notifications"  # the notifier's command target (kiln.alarms.notify.commands)
_JOURNAL_COLUMNS = (
    "seq", "source_us", "recorded_us", "alarm_id", "asset", "priority", "occurrence", "event",
    "old_state", "new_state", "announced", "value", "user", "comment", "message",
)  # fmt: skip
CSV_MAX_ROWS = 100_000
_PAGE = 10_000
# A spreadsheet reads a cell starting with one of these as a formula (or, for tab and CR, may
# shift it into one): such text is exported with a leading quote, which makes it text again.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_DEF = TypeAdapter[AlarmDef](AlarmDef)


async def ask(
    platform: Platform,
    name: str,
    args: Mapping[str, Any],
    *,
    target: str = ALARMS_TARGET,
    who: str = "the alarm engine",
    timeout_s: float = DEADLINE_S,
) -> Mapping[str, Any]:
    """One command to the alarm engine (or the notifier), its failures as HTTP answers."""
    try:
        return await platform.bus.request(Command(target, name, args), timeout_s=timeout_s)
    except NoResponderError:
        raise HTTPException(
            503,
            f"{who} is not running (it is not installed, stopped, or in a process that "
            "cannot be reached now); retry shortly",
            headers={"Retry-After": "5"},
        ) from None
    except CommandTimeoutError:
        raise HTTPException(504, f"no answer from {who} within {timeout_s:g} s") from None
    except CommandError as err:
        status = {CommandFailure.NOT_FOUND: 404, CommandFailure.INVALID: 400}.get(err.kind, 502)
        raise HTTPException(status, str(err)) from None


def _time(text: str | None, now_us: int, default_us: int) -> int:
    if text is None:
        return default_us
    try:
        return parse_time_us(text, now_us)
    except ValueError as err:
        raise HTTPException(400, str(err)) from None


def _visible_alarm(who: Principal, permission: Permission, alarm_id: str) -> None:
    """404 unless the caller may see the alarm and act on it with `permission`."""
    asset = asset_of(alarm_id)
    if "/" not in alarm_id or not (
        who.sees(Permission.VALUES_READ, asset) and who.sees(permission, asset)
    ):
        raise HTTPException(404, f"no alarm {alarm_id!r}: list them with GET /api/v1/alarms")


# -- reading ------------------------------------------------------------------------------

StateFilter = Literal[
    "active",
    "unacknowledged",
    "latched",
    "shelved",
    "suppressed",
    "out_of_service",
    "normal",
    "all",
]


@router.get("", responses=_ENGINE | _MISSING)
async def list_alarms(
    who: ValuesReader,
    platform: PlatformDep,
    asset: Annotated[str | None, Query(description="an asset subtree")] = None,
    priority: Annotated[list[str] | None, Query(description="low, medium, high, critical")] = None,
    state: Annotated[
        list[StateFilter] | None,
        Query(
            description="default: every alarm not normal (active, unacknowledged, latched, "
            "shelved, suppressed or out of service)"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=20_000)] = 5_000,
) -> dict[str, Any]:
    """The alarms the caller may see, newest change first."""
    args = {"asset": asset, "priorities": priority or [], "states": state or []}
    reply = await ask(platform, "list", args)
    alarms = [a for a in reply["alarms"] if who.sees(Permission.VALUES_READ, a["asset"])]
    alarms.sort(key=lambda a: a["changed_us"], reverse=True)
    counts = dict.fromkeys(
        ("active", "unacknowledged", "shelved", "suppressed", "out_of_service"), 0
    )
    by_priority: dict[str, int] = dict.fromkeys(("low", "medium", "high", "critical"), 0)
    for a in alarms:  # counted again: the engine's counts include what the caller may not see
        counts["active"] += a["active"]
        counts["unacknowledged"] += not a["acknowledged"]
        counts["shelved"] += a["shelved"]
        counts["suppressed"] += a["suppressed"]
        counts["out_of_service"] += a["out_of_service"]
        if not a["acknowledged"]:
            by_priority[a["priority"]] += 1
    return {
        "alarms": alarms[:limit],
        "now_us": reply["now_us"],
        "counts": counts | {"by_priority": by_priority},
        "truncated": len(alarms) > limit,
    }


@router.get("/journal", response_model=None, responses=_ENGINE | _MISSING)
async def journal(
    who: ValuesReader,
    platform: PlatformDep,
    start: Annotated[str | None, Query(description="ISO 8601, epoch ms, now, or -1h")] = None,
    end: Annotated[str | None, Query(description="ISO 8601, epoch ms, now, or -5m")] = None,
    asset: Annotated[str | None, Query(description="an asset subtree")] = None,
    alarm: Annotated[str | None, Query(description="one alarm id")] = None,
    priority: Annotated[list[str] | None, Query()] = None,
    state: Annotated[list[str] | None, Query(description="the state entered")] = None,
    event: Annotated[
        list[str] | None, Query(description="e.g. becomes_abnormal, acknowledge")
    ] = None,
    before_seq: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> dict[str, Any] | Response:
    """Every journaled transition, newest first; `format=csv` exports all matching rows."""
    now = platform.clock.now_us()
    args: dict[str, Any] = {
        "start_us": _time(start, now, 0) if start else None,
        "end_us": _time(end, now, now) if end else None,
        "asset": asset,
        "alarm_id": alarm,
        "priorities": priority or [],
        "states": state or [],
        "events": event or [],
    }
    if format == "csv":
        return await _journal_csv(who, platform, args)
    reply = await ask(platform, "journal", args | {"before_seq": before_seq, "limit": limit})
    entries = reply["entries"]
    visible = [e for e in entries if who.sees(Permission.VALUES_READ, e["asset"])]
    more = len(entries) == limit
    return {"entries": visible, "next_before_seq": entries[-1]["seq"] if more else None}


async def _journal_csv(who: Principal, platform: Platform, args: dict[str, Any]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_JOURNAL_COLUMNS)
    before: int | None = None
    rows = 0
    while rows < CSV_MAX_ROWS:
        reply = await ask(platform, "journal", args | {"before_seq": before, "limit": _PAGE})
        entries = reply["entries"]
        for e in entries:
            if who.sees(Permission.VALUES_READ, e["asset"]):
                writer.writerow([csv_cell(e[c]) for c in _JOURNAL_COLUMNS])
                rows += 1
        if len(entries) < _PAGE:
            break
        before = entries[-1]["seq"]
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="alarm-journal.csv"'},
    )


def csv_cell(value: Any) -> Any:
    """One journal value as a CSV cell: None empty, and text a spreadsheet would run as a
    formula (a comment or message such as `=HYPERLINK(...)`) quoted; numbers as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


@router.get("/kpis", responses=_ENGINE | _MISSING)
async def kpis(
    who: ValuesReader,
    platform: PlatformDep,
    start: Annotated[str, Query(description="ISO 8601, epoch ms, now, or -24h")] = "-24h",
    end: Annotated[str, Query(description="ISO 8601, epoch ms, now")] = "now",
    asset: Annotated[str | None, Query(description="an asset subtree")] = None,
    positions: Annotated[int, Query(ge=1, le=1000, description="operator positions")] = 1,
) -> Mapping[str, Any]:
    """Alarm-system performance per EEMUA 191 / ISA-18.2 over the range and subtree."""
    now = platform.clock.now_us()
    start_us, end_us = _time(start, now, now), _time(end, now, now)
    if end_us <= start_us:
        raise HTTPException(400, f"end ({end}) must be after start ({start})")
    if asset is None:
        subtree = _own_namespace(who)
    else:
        if not who.sees(Permission.VALUES_READ, asset):
            raise HTTPException(404, f"no asset {asset!r} for you")
        _check_one_tenant(who, asset)
        subtree = asset
    return await ask(
        platform,
        "kpis",
        {"start_us": start_us, "end_us": end_us, "asset": subtree, "positions": positions},
    )


def _own_namespace(who: Principal) -> str | None:
    """The subtree the KPIs of the caller's whole tenant cover: its one root, or None (every
    alarm) when the tenant owns the whole namespace. The engine's `kpis` takes one subtree, so
    a tenant with several roots, or holding "*" beside other tenants, must name one."""
    tenant_wide = any(
        g.tenant == who.tenant and g.scope is None and Permission.VALUES_READ in g.permissions
        for g in who.grants
    )
    if not tenant_wide:
        raise HTTPException(
            400, "your access is limited to subtrees: give asset=<a subtree of yours>"
        )
    roots = who.namespace.roots_of(who.tenant)
    if len(roots) == 1 and roots[0] != ANY_ROOT:
        return roots[0]
    if roots == (ANY_ROOT,) and all(t == who.tenant for _, t in who.namespace.roots):
        return None
    raise HTTPException(
        400,
        "your tenant's namespace is not a single subtree (several roots, or the rest of a "
        "namespace shared with other tenants): give asset=<one of your subtrees>",
    )


def _check_one_tenant(who: Principal, asset: str) -> None:
    """400 if another tenant's root lies inside `asset`: a subtree of the "*" tenant may hold
    one, and the engine would count its alarms too."""
    owner = who.namespace.tenant_of(asset)
    for root, tenant in who.namespace.roots:
        if root != ANY_ROOT and tenant != owner and path_has_prefix(root, asset):
            raise HTTPException(
                400,
                f"asset {asset!r} holds part of another tenant's namespace: give a narrower "
                "subtree",
            )


# -- operator actions ---------------------------------------------------------------------


class AckIn(BaseModel):
    ids: list[str] = Field(min_length=1, max_length=1000)
    note: str | None = Field(default=None, max_length=2000)


class ShelveIn(BaseModel):
    duration_s: float | None = Field(default=None, gt=0, description="a timed shelve")
    one_shot: bool = Field(default=False, description="until the alarm returns to normal")
    note: str | None = Field(default=None, max_length=2000)


class NoteIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class OutOfServiceIn(BaseModel):
    on: bool = True
    reason: str | None = Field(default=None, max_length=2000)


class CommentIn(BaseModel):
    comment: str = Field(min_length=1, max_length=2000)


@router.post("/ack", responses=_ENGINE | _MISSING)
async def acknowledge(
    request: Request, body: AckIn, who: Acker, platform: PlatformDep
) -> dict[str, Any]:
    """Acknowledge one or many alarms, with a note (required for some priorities)."""
    allowed: list[str] = []
    results: dict[str, dict[str, Any]] = {}
    for alarm_id in dict.fromkeys(body.ids):
        try:
            _visible_alarm(who, Permission.ALARMS_ACK, alarm_id)
        except HTTPException:
            results[alarm_id] = {"id": alarm_id, "ok": False, "error": "no such alarm"}
        else:
            allowed.append(alarm_id)
    if allowed:
        reply = await ask(
            platform, "ack", {"ids": allowed, "note": body.note or "", "user": actor_of(who)}
        )
        for r in reply["results"]:
            results[r["id"]] = r
            await audit(
                request,
                category=Category.ALARM,
                action="acknowledge",
                target=r["id"],
                result=Result.SUCCESS if r["ok"] else Result.FAILURE,
                detail={"note": body.note or "", **({"error": r["error"]} if r["error"] else {})},
            )
    return {"results": [results[i] for i in dict.fromkeys(body.ids)]}


async def _act(
    request: Request,
    who: Principal,
    platform: Platform,
    permission: Permission,
    alarm_id: str,
    name: str,
    args: dict[str, Any],
    detail: dict[str, Any],
) -> dict[str, Any]:
    _visible_alarm(who, permission, alarm_id)
    try:
        reply = await ask(platform, name, {"id": alarm_id, "user": actor_of(who), **args})
    except HTTPException as err:
        if err.status_code in (400, 404):
            await audit(request, category=Category.ALARM, action=name, target=alarm_id,
                        result=Result.FAILURE, detail={**detail, "error": str(err.detail)})  # fmt: skip
        raise
    await audit(request, category=Category.ALARM, action=name, target=alarm_id, detail=detail)
    return dict(reply)


@router.post("/{alarm_id:path}/shelve", responses=_ENGINE | _MISSING)
async def shelve(
    request: Request, alarm_id: str, body: ShelveIn, who: Shelver, platform: PlatformDep
) -> dict[str, Any]:
    """Shelve for `duration_s` (at most `alarms.max_shelve_s`; shelving again replaces the
    remaining time) or one-shot (until it returns to normal)."""
    if body.duration_s is None and not body.one_shot:
        raise HTTPException(400, "give duration_s (seconds) or one_shot: true")
    args = {"duration_s": body.duration_s, "one_shot": body.one_shot, "note": body.note}
    return await _act(
        request, who, platform, Permission.ALARMS_SHELVE, alarm_id, "shelve", args, args
    )


@router.post("/{alarm_id:path}/unshelve", responses=_ENGINE | _MISSING)
async def unshelve(
    request: Request, alarm_id: str, body: NoteIn, who: Shelver, platform: PlatformDep
) -> dict[str, Any]:
    args = {"note": body.note}
    return await _act(
        request, who, platform, Permission.ALARMS_SHELVE, alarm_id, "unshelve", args, args
    )


@router.post("/{alarm_id:path}/out-of-service", responses=_ENGINE | _MISSING)
async def out_of_service(
    request: Request, alarm_id: str, body: OutOfServiceIn, who: Shelver, platform: PlatformDep
) -> dict[str, Any]:
    """Take an alarm out of service (with a reason) or put it back (`on: false`)."""
    args = {"on": body.on, "reason": body.reason}
    return await _act(
        request, who, platform, Permission.ALARMS_SHELVE, alarm_id, "out_of_service", args, args
    )


@router.post("/{alarm_id:path}/reset", responses=_ENGINE | _MISSING)
async def reset(
    request: Request, alarm_id: str, body: NoteIn, who: Acker, platform: PlatformDep
) -> dict[str, Any]:
    """Reset a latched alarm that has returned to normal and been acknowledged."""
    args = {"note": body.note}
    return await _act(request, who, platform, Permission.ALARMS_ACK, alarm_id, "reset", args, args)


@router.post("/{alarm_id:path}/comment", responses=_ENGINE | _MISSING)
async def comment(
    request: Request, alarm_id: str, body: CommentIn, who: Acker, platform: PlatformDep
) -> dict[str, Any]:
    args = {"comment": body.comment}
    return await _act(
        request, who, platform, Permission.ALARMS_ACK, alarm_id, "comment", args, args
    )


# -- notifications ------------------------------------------------------------------------


def _delivery_visible(who: Principal, delivery: Mapping[str, Any], *also: Permission) -> bool:
    """Whether the caller sees every alarm a delivery is about (a consolidated message lists
    several): values:read, and each permission of `also`, over each alarm's asset."""
    ids = delivery.get("alarm_ids") or [delivery.get("alarm_id")]
    return all(
        isinstance(i, str)
        and "/" in i
        and all(who.sees(p, asset_of(i)) for p in (Permission.VALUES_READ, *also))
        for i in ids
    )


@router.get("/notifications", responses=_ENGINE | _MISSING)
async def deliveries(
    who: SystemReader,
    platform: PlatformDep,
    status: Annotated[str | None, Query(description="sending, sent, failed or dead")] = None,
    alarm: Annotated[str | None, Query(description="one alarm id")] = None,
    since: Annotated[str | None, Query(description="ISO 8601, epoch ms, or -1h")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> Mapping[str, Any]:
    """The notification deliveries (webhook, email) of alarms the caller may see, with their
    attempts; dead letters are `status=dead`. A delivery about several alarms is shown only to
    who sees every one of them (its message lists them all)."""
    now = platform.clock.now_us()
    args = {
        "status": status,
        "alarm_id": alarm,
        "since_us": _time(since, now, 0) if since else None,
        "limit": limit,
    }
    reply = await ask(platform, "deliveries", args, target=NOTIFIER, who="the notifier")
    return {"deliveries": [d for d in reply["deliveries"] if _delivery_visible(who, d)]}


@router.post("/notifications/{delivery_id}/retry", responses=_ENGINE | _MISSING)
async def retry_delivery(
    request: Request,
    delivery_id: str,
    who: Acker,
    _reader: SystemReader,
    platform: PlatformDep,
) -> Mapping[str, Any]:
    """Send a dead letter again: an action on its alarms (alarms:ack over every one), and its
    answer shows the recipients as the listing does (system:read)."""
    found = await ask(
        platform, "deliveries", {"id": delivery_id}, target=NOTIFIER, who="the notifier"
    )
    mine = [
        d
        for d in found["deliveries"]
        if d.get("id") == delivery_id and _delivery_visible(who, d, Permission.ALARMS_ACK)
    ]
    if not mine:
        raise HTTPException(
            404, f"no delivery {delivery_id!r}: list them with GET /api/v1/alarms/notifications"
        )
    reply = await ask(platform, "retry", {"id": delivery_id}, target=NOTIFIER, who="the notifier")
    await audit(request, category=Category.ALARM, action="notification_retry", target=delivery_id)
    return reply


# -- definitions --------------------------------------------------------------------------


@router.get("/definitions", responses=_ENGINE | _MISSING)
async def definitions(
    who: ValuesReader,
    platform: PlatformDep,
    asset: Annotated[str | None, Query(description="an asset subtree")] = None,
) -> dict[str, Any]:
    """Alarm definitions added through the API, and the ids of every alarm in force."""
    reply = await ask(platform, "definitions", {"asset": asset})
    return {
        "definitions": [
            d for d in reply["definitions"] if who.sees(Permission.VALUES_READ, d["asset"])
        ],
        "alarms": [i for i in reply["alarms"] if who.sees(Permission.VALUES_READ, asset_of(i))],
    }


@router.put("/definitions/{asset:path}", responses=_ENGINE | _MISSING)
async def define(
    request: Request,
    asset: str,
    definition: dict[str, Any],
    who: ConfigEditor,
    platform: PlatformDep,
) -> dict[str, Any]:
    """Add or replace (by name) an alarm definition on an asset; it takes effect at once and
    replaces one of the asset type's by the same name. Validation errors name the field.
    Every tag the definition reads must be one the caller may read (values:read): its alarms
    show those values to whoever sees the asset's alarms."""
    _check_asset_path(asset)
    if not who.sees(Permission.CONFIG_EDIT, asset):
        raise HTTPException(404, f"no asset {asset!r} for you")
    _check_tags_readable(who, asset, definition)
    name = str(definition.get("name", ""))
    try:
        reply = await ask(
            platform, "define", {"asset": asset, "definition": definition, "user": actor_of(who)}
        )
    except HTTPException as err:
        await audit(request, category=Category.CONFIGURATION, action="alarm_define",
                    target=f"{asset}/{name}", result=Result.FAILURE,
                    detail={"error": str(err.detail)})  # fmt: skip
        raise
    await audit(request, category=Category.CONFIGURATION, action="alarm_define",
                target=f"{asset}/{name}", detail={"definition": definition})  # fmt: skip
    return dict(reply)


def _check_asset_path(asset: str) -> None:
    """400 unless `asset` is an asset path: one segment (an enterprise) or more, each a valid
    namespace segment (no empty, '.' or '..' segments)."""
    try:
        # The tag rule wants two segments at least; an asset is a tag's parent, so check it as
        # one with a placeholder tag name.
        validate_path(f"{asset}/tag")
    except InvalidPathError:
        raise HTTPException(
            400,
            f"asset {asset!r} is not an asset path: give segments of 1-64 letters, digits, "
            "'_', '-' or '.' (not starting with '-' or '.'), separated by '/', e.g. "
            "acme/plant1/line1/mill",
        ) from None


def _check_tags_readable(who: Principal, asset: str, definition: dict[str, Any]) -> None:
    """400 for a malformed tag path, 404 for a tag the caller may not read (named as given,
    nothing more). A definition that does not parse is left to the engine, which refuses it
    naming the field."""
    try:
        parsed = _DEF.validate_python(definition)
    except ValidationError:
        return
    for path in referenced_paths(asset, parsed):
        try:
            validate_path(path)
        except InvalidPathError as err:
            raise HTTPException(400, f"alarm {parsed.name!r}: {err}") from None
        if not who.sees(Permission.VALUES_READ, path):
            raise HTTPException(
                404, f"alarm {parsed.name!r}: no tag {path!r} for you (values:read is needed)"
            )


@router.delete("/definitions/{asset:path}", responses=_ENGINE | _MISSING)
async def undefine(
    request: Request,
    asset: str,
    name: Annotated[str, Query(description="the alarm definition's name")],
    who: ConfigEditor,
    platform: PlatformDep,
) -> dict[str, Any]:
    if not who.sees(Permission.CONFIG_EDIT, asset):
        raise HTTPException(404, f"no asset {asset!r} for you")
    reply = await ask(platform, "undefine", {"asset": asset, "name": name})
    await audit(request, category=Category.CONFIGURATION, action="alarm_undefine",
                target=f"{asset}/{name}")  # fmt: skip
    return dict(reply)
