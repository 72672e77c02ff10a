"""What only the in-process bus can show exactly: its fake-clock timers, its refusals, its stop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from bus_helpers import batch, event, ns, still_pending, take, within

from kiln.core.bus import (
    Bus,
    BusError,
    Command,
    CommandError,
    CommandFailure,
    CommandTimeoutError,
    InProcessBus,
    Overflow,
    SubscriptionClosed,
)
from kiln.core.errors import NotDurableError
from kiln.testing import FakeClock


def test_it_is_a_bus() -> None:
    bus: Bus = InProcessBus(FakeClock())
    assert isinstance(bus, Bus)


async def test_redelivery_waits_exactly_ack_wait_on_the_bus_clock() -> None:
    clock = FakeClock()
    bus = InProcessBus(clock)
    seq = await bus.publish_event(event("alarm.transition", "a1", 0))
    sub = bus.subscribe_events("engine", durable=True, start_seq=seq, ack_wait_s=10)
    (first,) = await take(sub, 1)
    again = asyncio.ensure_future(sub.get())
    await clock.advance(9.9)
    assert not again.done()
    await clock.advance(0.2)
    redelivered = await within(again)
    assert (redelivered.event.seq, redelivered.redelivered) == (seq, True)
    await first.ack()  # an ack of the first delivery settles the event as well
    assert sub.stats.pending == 0


async def test_an_attached_reader_that_falls_behind_counts_only_its_kinds_as_missed() -> None:
    bus = InProcessBus(FakeClock(), max_events=4)
    alarms = bus.subscribe_events("alarms", kinds=["alarm"])
    everything = bus.subscribe_events("all")
    for n in range(6):
        kind = "alarm.transition" if n % 2 else "asset.state"
        await bus.publish_event(event(kind, "k", n))
    assert (alarms.stats.missed, everything.stats.missed) == (1, 2)
    assert ns(await take(alarms, 2)) == [3, 5]
    assert ns(await take(everything, 4)) == [2, 3, 4, 5]


async def test_a_duplicate_is_recognised_only_while_its_original_is_logged() -> None:
    bus = InProcessBus(FakeClock(), max_events=2)
    first = await bus.publish_event(event("a.b", "k", 0, id="x"))
    assert await bus.publish_event(event("a.b", "k", 0, id="x")) == first
    for n in (1, 2):
        await bus.publish_event(event("a.b", "k", n))
    assert await bus.publish_event(event("a.b", "k", 0, id="x")) > first


async def test_refusals_say_what_to_do() -> None:
    bus = InProcessBus(FakeClock())
    bus.subscribe_events("engine", durable=True)
    with pytest.raises(BusError, match="close it first"):
        bus.subscribe_events("engine", durable=True)
    with pytest.raises(BusError, match="use another name"):
        bus.subscribe_events("engine", durable=True, kinds=["alarm"])

    async def handler(command: Command) -> Mapping[str, Any]:
        return {}

    await bus.serve("connectors", handler)
    with pytest.raises(BusError, match="already served"):
        await bus.serve("connectors", handler)
    with pytest.raises(ValueError, match="kind and a key"):
        await bus.publish_event(event("", "k"))
    bus.subscribe("historian", max_points=10, overflow=Overflow.BLOCK, stores=True)
    with pytest.raises(ValueError, match="already exists"):
        bus.subscribe("historian", max_points=10, overflow=Overflow.BLOCK, stores=True)


async def test_a_deadline_cancels_the_handler_and_its_own_timeout_is_a_failure() -> None:
    bus = InProcessBus(FakeClock())
    cancelled = asyncio.Event()

    async def stuck(command: Command) -> Mapping[str, Any]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    async def device_timeout(command: Command) -> Mapping[str, Any]:
        raise TimeoutError("the PLC did not answer")

    async def not_json(command: Command) -> Mapping[str, Any]:
        return {"when": object()}

    await bus.serve("stuck", stuck)
    await bus.serve("plc", device_timeout)
    await bus.serve("odd", not_json)
    with pytest.raises(CommandTimeoutError, match=r"within 0\.05 s"):
        await bus.request(Command("stuck", "write"), timeout_s=0.05)
    assert cancelled.is_set()
    with pytest.raises(CommandError, match="TimeoutError: the PLC did not answer") as caught:
        await bus.request(Command("plc", "write"), timeout_s=5)
    assert caught.value.kind is CommandFailure.FAILED
    with pytest.raises(CommandError, match="not JSON") as caught:
        await bus.request(Command("odd", "status"), timeout_s=5)
    assert caught.value.kind is CommandFailure.FAILED
    with pytest.raises(BusError, match="not JSON"):
        await bus.request(Command("odd", "status", {"x": {1, 2}}), timeout_s=5)


async def test_stop_fails_waiting_publishers_and_ends_every_subscription() -> None:
    bus = InProcessBus(FakeClock())
    store = bus.subscribe("store", max_points=10, overflow=Overflow.BLOCK, stores=True)
    events = bus.subscribe_events("engine", durable=True)
    durable = asyncio.ensure_future(bus.publish_durable(batch(1), timeout_s=60))
    waiting = asyncio.ensure_future(events.get())
    assert await still_pending(durable, 0.01)
    await bus.stop()
    with pytest.raises(NotDurableError, match="bus stopped"):
        await within(durable)
    with pytest.raises(SubscriptionClosed):
        await within(waiting)
    assert store.closed and bus.subscriptions == []
    health = bus.health().detail
    assert health["awaiting_ack"] == 0 and health["command_targets"] == []
