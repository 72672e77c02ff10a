"""The bus contract suite: every test here runs on every implementation of `kiln.core.bus.Bus`.

`FACTORIES` lists them. Each entry is an async context manager factory `(clock) -> Bus`: it
builds a fresh bus (nothing left from another test), starts it, yields it, and stops it. Test
ids are the factories' function names. A factory builds its bus with `EVENT_LOG_BOUND` as its
event log bound (`max_events`, from `bus_helpers`), which the log-bound test relies on.

The tests use the protocol only, and tolerate a real broker's delivery times: they await with
deadlines of a few seconds (`WAIT_S`) and never sleep to let something happen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from bus_helpers import EVENT_LOG_BOUND

from kiln.core.bus import Bus, InProcessBus
from kiln.core.clock import Clock, SystemClock

BusFactory = Callable[[Clock], AbstractAsyncContextManager[Bus]]


@asynccontextmanager
async def inprocess(clock: Clock) -> AsyncIterator[Bus]:
    bus = InProcessBus(clock, node="contract", max_events=EVENT_LOG_BOUND)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


@asynccontextmanager
async def nats(clock: Clock) -> AsyncIterator[Bus]:
    """NatsBus on the machine's NATS JetStream (kiln.testing.nats: skipped without it, failed
    under CI=true), under a prefix of its own whose streams are deleted afterwards."""
    from kiln.testing.nats import NATS_URL, require_nats, unique_prefix

    require_nats()
    from kiln.cluster.nats_bus import NatsBus

    bus = NatsBus(
        NATS_URL, clock, node="contract", prefix=unique_prefix(), max_events=EVENT_LOG_BOUND
    )
    await bus.start()
    try:
        yield bus
    finally:
        try:
            await bus.destroy()
        finally:
            await bus.stop()


FACTORIES: list[BusFactory] = [inprocess, nats]


@pytest.fixture(params=FACTORIES, ids=lambda factory: factory.__name__)
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    # Real time: a broker's acknowledgement and redelivery timers run on it.
    factory: BusFactory = request.param
    async with factory(SystemClock()) as running:
        yield running
