"""The bus: bounded queues, both overflow policies, prefix filtering, and back-pressure."""

from __future__ import annotations

import asyncio

import pytest

from kiln.core.bus import InProcessBus, Overflow, SubscriptionClosed
from kiln.core.errors import NotDurableError
from kiln.core.values import ValueBatch
from kiln.testing import FakeClock


def batch(n: int, base: int = 0, prefix: str = "a/b") -> ValueBatch:
    return ValueBatch(
        paths=[f"{prefix}/t{i}" for i in range(n)],
        values=[float(base + i) for i in range(n)],
        source_us=[base + i for i in range(n)],
        qualities=[0] * n,
        receive_us=0,
    )


async def test_drop_oldest_discards_and_counts() -> None:
    bus = InProcessBus(FakeClock())
    sub = bus.subscribe("live", max_points=10, overflow=Overflow.DROP_OLDEST)
    for k in range(5):
        await bus.publish(batch(4, base=k * 100))
    # 5 batches of 4 into a queue of 10 points: only the newest two batches fit.
    kept = sub.drain(1000)
    assert [b.values[0] for b in kept] == [300.0, 400.0]
    assert sub.stats.dropped_batches == 3
    assert sub.stats.dropped_points == 12
    assert sub.stats.depth_points == 0
    assert sub.stats.delivered_points == 8


async def test_block_waits_for_space_and_loses_nothing() -> None:
    clock = FakeClock()
    bus = InProcessBus(clock)
    sub = bus.subscribe("historian", max_points=5, overflow=Overflow.BLOCK)
    await bus.publish(batch(4, base=0))
    publisher = asyncio.ensure_future(bus.publish(batch(4, base=100)))
    await asyncio.sleep(0)
    assert not publisher.done(), "a full BLOCK queue must hold the publisher back"
    assert sub.stats.depth_points == 4
    first = await sub.get()
    await asyncio.sleep(0)
    assert publisher.done()
    second = await sub.get()
    assert [first.values[0], second.values[0]] == [0.0, 100.0]
    assert sub.stats.dropped_points == 0


async def test_oversized_batch_is_accepted_into_an_empty_queue() -> None:
    bus = InProcessBus(FakeClock())
    sub = bus.subscribe("s", max_points=3, overflow=Overflow.BLOCK)
    await asyncio.wait_for(bus.publish(batch(10)), timeout=1)
    assert len(await sub.get()) == 10


async def test_prefix_filter_is_segment_wise() -> None:
    bus = InProcessBus(FakeClock())
    sub = bus.subscribe("s", max_points=100, overflow=Overflow.DROP_OLDEST, prefix="acme/line1")
    mixed = ValueBatch(
        paths=["acme/line1/x", "acme/line10/x", "acme/line1/y/z"],
        values=[1, 2, 3],
        source_us=[1, 2, 3],
        qualities=[0, 0, 0],
        receive_us=0,
    )
    await bus.publish(mixed)
    got = await sub.get()
    assert list(got.paths) == ["acme/line1/x", "acme/line1/y/z"]
    await bus.publish(batch(2, prefix="other/place"))
    assert sub.drain(100) == []


async def test_close_wakes_consumer_and_blocked_publisher() -> None:
    bus = InProcessBus(FakeClock())
    sub = bus.subscribe("s", max_points=1, overflow=Overflow.BLOCK)
    await bus.publish(batch(1))
    blocked = asyncio.ensure_future(bus.publish(batch(1)))
    await asyncio.sleep(0)
    sub.close()
    await asyncio.wait_for(blocked, timeout=1)
    assert len(await sub.get()) == 1  # what was queued before closing is still delivered
    with pytest.raises(SubscriptionClosed):
        await sub.get()
    assert bus.subscriptions == []


async def test_empty_batch_is_acknowledged_at_once() -> None:
    bus = InProcessBus(FakeClock())
    empty = ValueBatch([], [], [], [], receive_us=0)
    await asyncio.wait_for(bus.publish_durable(empty, timeout_s=1), timeout=1)


async def test_ack_fails_fast_when_nobody_stores_the_batch() -> None:
    bus = InProcessBus(FakeClock())
    bus.subscribe("live", max_points=100, overflow=Overflow.DROP_OLDEST, prefix="elsewhere")
    # A subscriber that takes the whole batch but does not store it cannot acknowledge it.
    bus.subscribe("view", max_points=100, overflow=Overflow.DROP_OLDEST)
    with pytest.raises(NotDurableError, match="no subscriber stores this batch"):
        await asyncio.wait_for(bus.publish_durable(batch(2), timeout_s=30), timeout=1)
