"""The `notifications` command target: the delivery record, and retrying a dead letter."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast, get_args

from kiln.alarms.notify.store import STATUSES, Status
from kiln.core.bus import Command, CommandError, CommandFailure

if TYPE_CHECKING:
    from kiln.alarms.notify.service import NotificationService

NOTIFICATIONS_TARGET = "notifications"
MAX_LIMIT = 10_000


class NotificationCommands:
    """A bus command handler: `deliveries` (filters: id, status, alarm_id, since_us; limit) and
    `retry` (id: a dead letter, sent again)."""

    def __init__(self, service: NotificationService) -> None:
        self.service = service

    async def __call__(self, command: Command) -> Mapping[str, Any]:
        if command.name == "deliveries":
            return await self._deliveries(command.args)
        if command.name == "retry":
            return await self._retry(command.args)
        raise CommandError(
            CommandFailure.INVALID,
            f"notifications has no command {command.name!r}; use deliveries or retry",
        )

    async def _deliveries(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        status = args.get("status")
        if status is not None and status not in STATUSES:
            raise CommandError(
                CommandFailure.INVALID,
                f"status {status!r} is not one of {', '.join(get_args(Status))}",
            )
        alarm_id = args.get("alarm_id")
        since = _int(args, "since_us")
        limit = _int(args, "limit") or 100
        if not 1 <= limit <= MAX_LIMIT:
            raise CommandError(CommandFailure.INVALID, f"limit must be 1 to {MAX_LIMIT}")
        delivery_id = args.get("id")
        if delivery_id is not None:
            # One delivery by id, e.g. for the API to check who may see it before a retry.
            if not isinstance(delivery_id, str) or not delivery_id:
                raise CommandError(CommandFailure.INVALID, "id must be a delivery's id (a string)")
            found = await asyncio.to_thread(self.service.store.get, delivery_id)
            one = [] if found is None else [found.to_json()]
            return {"deliveries": [d for d in one if _matches(d, args)]}
        rows = await asyncio.to_thread(
            self.service.store.deliveries,
            status=cast(Status | None, status),
            alarm_id=None if alarm_id is None else str(alarm_id),
            since_us=since,
            limit=limit,
        )
        return {"deliveries": [d.to_json() for d in rows]}

    async def _retry(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        delivery_id = args.get("id")
        if not isinstance(delivery_id, str) or not delivery_id:
            raise CommandError(CommandFailure.INVALID, "retry needs the delivery's id")
        store = self.service.store
        retried = await asyncio.to_thread(store.retry, delivery_id, self.service.now_us())
        if retried is None:
            found = await asyncio.to_thread(store.get, delivery_id)
            if found is None:
                raise CommandError(CommandFailure.NOT_FOUND, f"no delivery {delivery_id!r}")
            raise CommandError(
                CommandFailure.INVALID,
                f"delivery {delivery_id} is {found.status}, not a dead letter: only dead "
                "letters are retried",
            )
        self.service.wake()
        return {"delivery": retried.to_json()}


def _int(args: Mapping[str, Any], name: str) -> int | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandError(CommandFailure.INVALID, f"{name} must be a number, got {value!r}")
    return int(value)


def _matches(delivery: Mapping[str, Any], args: Mapping[str, Any]) -> bool:
    """Whether one delivery (as JSON) passes the other filters of `deliveries`, as the store's
    query applies them to a listing."""
    status, alarm_id, since = args.get("status"), args.get("alarm_id"), _int(args, "since_us")
    return (
        (status is None or delivery["status"] == status)
        and (alarm_id is None or delivery["alarm_id"] == alarm_id)
        and (since is None or delivery["created_us"] >= since)
    )
