"""Live values over WebSocket: the current snapshot first, then every change as it arrives."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect, status

from kiln.alarms.records import TRANSITION_KIND
from kiln.api.auth import LiveReader
from kiln.api.deps import get_platform, get_settings
from kiln.api.settings import LiveSettings, QueryLimits
from kiln.core.bus import (
    EventSubscription,
    Overflow,
    SubscriptionClosed,
    ValueSubscription,
)
from kiln.core.errors import InvalidPathError
from kiln.core.quality import quality_name
from kiln.core.values import TagValue, ValueBatch, path_has_prefix, validate_path
from kiln.historian.service import Historian
from kiln.security.permissions import Permission
from kiln.security.principal import Principal

_LOGGER = logging.getLogger(__name__)

router = APIRouter(tags=["live"])


def _row(tv: TagValue) -> dict[str, Any]:
    return {
        "path": tv.path,
        "value": tv.value,
        "source_ts": tv.source_ts.isoformat(),
        "quality": quality_name(tv.quality),
    }


def coalesce(batches: list[ValueBatch]) -> list[dict[str, Any]]:
    """The newest value of each path across the batches (a view wants the present, not a log)."""
    newest: dict[str, TagValue] = {}
    for batch in batches:
        for tv in batch:
            old = newest.get(tv.path)
            if old is None or tv.source_us >= old.source_us:
                newest[tv.path] = tv
    return [_row(tv) for tv in newest.values()]


@router.websocket("/live")
async def live(
    websocket: WebSocket,
    who: LiveReader,
    prefix: Annotated[str | None, Query(description="namespace subtree")] = None,
) -> None:
    settings = get_settings(websocket)
    live_settings = settings.section(LiveSettings)
    platform = get_platform(websocket)
    visible = _VisibleCache(who)
    if prefix:
        try:
            if "/" in prefix.strip("/"):
                validate_path(prefix.strip("/"))
        except InvalidPathError as err:
            await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=str(err)[:120])
            return
    state = websocket.app.state
    if state.live_connections >= live_settings.max_connections:
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="too many live clients")
        return
    await websocket.accept()
    state.live_connections += 1
    # Subscribed inside the `try`: if either subscription fails, `finally` closes what was
    # opened and gives the connection slot back (else each failure would leak one for good).
    sub: ValueSubscription | None = None
    events: EventSubscription | None = None
    try:
        try:
            sub = platform.bus.subscribe(
                f"live#{id(websocket)}",
                max_points=live_settings.queue_points,
                overflow=Overflow.DROP_OLDEST,
                prefix=prefix or None,
            )
            # Alarm changes, after their journal commit (kiln.alarms.engine): from now, not
            # durable.
            events = platform.bus.subscribe_events(
                f"live#{id(websocket)}", kinds=(TRANSITION_KIND,)
            )
        except Exception as err:  # the bus refused or is unreachable: tell the client, log it
            _LOGGER.warning("live stream: subscribing to the bus failed: %s", err)
            await websocket.close(
                code=status.WS_1011_INTERNAL_ERROR, reason="live values unavailable; retry later"
            )
            return
        snapshot = await platform.service(Historian).latest(
            prefix=prefix or None, limit=settings.section(QueryLimits).latest_max
        )
        rows = [_row(v) for v in snapshot if visible(v.path)]
        await websocket.send_json({"values": rows, "snapshot": True})
        try:
            async with asyncio.TaskGroup() as tg:
                sender = tg.create_task(_send(websocket, sub, live_settings.queue_points, visible))
                alarms = tg.create_task(_send_alarms(websocket, events, visible, prefix))
                await _wait_closed(websocket)
                sender.cancel()
                alarms.cancel()
        except* (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away while we were sending
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client went away before the snapshot was sent
    finally:
        if sub is not None:
            sub.close()
        if events is not None:
            events.close()
        state.live_connections -= 1


async def _send(
    websocket: WebSocket,
    sub: ValueSubscription,
    max_points: int,
    visible: Callable[[str], bool],
) -> None:
    async for first in sub:
        batches = [first, *sub.drain(max_points)]
        rows = [r for r in coalesce(batches) if visible(r["path"])]
        if rows:
            await websocket.send_json({"values": rows})


async def _send_alarms(
    websocket: WebSocket,
    events: EventSubscription,
    visible: Callable[[str], bool],
    prefix: str | None,
) -> None:
    """Each changed alarm the client may see: its asset is visible (and under `prefix`)."""
    scope = prefix.strip("/") if prefix else None
    while True:
        try:
            delivery = await events.get()
        except SubscriptionClosed:
            return
        alarm = delivery.event.data.get("alarm")
        if not (isinstance(alarm, dict) and isinstance(alarm.get("asset"), str)):
            continue
        asset = alarm["asset"]
        if visible(asset) and (scope is None or path_has_prefix(asset, scope)):
            await websocket.send_json({"alarms": [alarm]})


class _VisibleCache:
    """`who.sees(values:read, path)`, remembered: a live view asks for the same paths each tick."""

    def __init__(self, who: Principal, max_entries: int = 100_000) -> None:
        self.who = who
        self.max_entries = max_entries
        self._known: dict[str, bool] = {}

    def __call__(self, path: str) -> bool:
        seen = self._known.get(path)
        if seen is None:
            seen = self.who.sees(Permission.VALUES_READ, path)
            if len(self._known) < self.max_entries:
                self._known[path] = seen
        return seen


async def _wait_closed(websocket: WebSocket) -> None:
    """Consume client messages until it disconnects (clients have nothing to say yet)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
