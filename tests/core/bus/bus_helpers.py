"""Helpers of the bus contract suite: batches, events, and waiting with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from kiln.core.bus import Event, EventDelivery, EventSubscription
from kiln.core.values import ValueBatch

T = TypeVar("T")

# Every factory in conftest.FACTORIES builds its bus with this event log bound (`max_events`).
EVENT_LOG_BOUND = 100

# Generous for a broker on a loaded 2-core machine; a passing test never waits this long.
WAIT_S = 5.0
# How long "nothing happens" is watched. Only ever used to show something does NOT arrive.
QUIET_S = 0.3


def batch(n: int, base: int = 0, prefix: str = "a/b") -> ValueBatch:
    return ValueBatch(
        paths=[f"{prefix}/t{i}" for i in range(n)],
        values=[float(base + i) for i in range(n)],
        source_us=[base + i for i in range(n)],
        qualities=[0] * n,
        receive_us=0,
    )


def event(kind: str, key: str, n: int = 0, *, id: str = "", **data: Any) -> Event:
    return Event(kind=kind, key=key, data={"n": n, **data}, time_us=n, id=id)


async def within(awaitable: Awaitable[T], seconds: float = WAIT_S) -> T:
    return await asyncio.wait_for(awaitable, timeout=seconds)


async def eventually(check: Callable[[], bool], seconds: float = WAIT_S) -> None:
    """Wait until `check()` holds. For counters a broker's client updates as messages arrive,
    where there is no event to await."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def still_pending(task: asyncio.Future[Any], seconds: float = QUIET_S) -> bool:
    """True if `task` does not finish within `seconds` (it keeps running afterwards)."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return not done


async def take(sub: EventSubscription, count: int) -> list[EventDelivery]:
    return [await within(sub.get()) for _ in range(count)]


def ns(deliveries: list[EventDelivery]) -> list[int]:
    return [int(d.event.data["n"]) for d in deliveries]
