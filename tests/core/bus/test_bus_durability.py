"""Contract: `publish_durable` returns only once the storing subscriber acknowledged the batch."""

from __future__ import annotations

import asyncio

import pytest
from bus_helpers import batch, still_pending, within

from kiln.core.bus import Bus, Overflow
from kiln.core.errors import NotDurableError


async def test_acknowledged_only_after_the_storing_subscriber_acks(bus: Bus) -> None:
    store = bus.subscribe("store", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    view = bus.subscribe("view", max_points=1000, overflow=Overflow.DROP_OLDEST)
    durable = asyncio.ensure_future(bus.publish_durable(batch(3), timeout_s=30))
    taken = await within(store.get())
    assert list(taken.values) == [0.0, 1.0, 2.0]
    # The other subscriber's acknowledgement counts for nothing: only the store's does.
    await view.ack(await within(view.get()))
    assert await still_pending(durable), "acknowledged before the storing subscriber's ack"
    await store.ack(taken)
    await within(durable)


async def test_a_refusal_reaches_the_publisher_with_its_reason(bus: Bus) -> None:
    store = bus.subscribe("store", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    durable = asyncio.ensure_future(bus.publish_durable(batch(2), timeout_s=30))
    await store.ack(await within(store.get()), "disk full")
    with pytest.raises(NotDurableError, match="disk full"):
        await within(durable)
    # The next batch is unaffected by the refusal of the last.
    durable = asyncio.ensure_future(bus.publish_durable(batch(2, base=5), timeout_s=30))
    await store.ack(await within(store.get()))
    await within(durable)


async def test_no_acknowledgement_within_the_timeout_is_not_durable(bus: Bus) -> None:
    store = bus.subscribe("store", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    with pytest.raises(NotDurableError):
        await within(bus.publish_durable(batch(2), timeout_s=0.5))
    # The batch was delivered (the store just never acknowledged it); a late ack is harmless.
    late = await within(store.get())
    await store.ack(late)


async def test_without_a_storing_subscriber_it_fails_at_once(bus: Bus) -> None:
    view = bus.subscribe("view", max_points=1000, overflow=Overflow.DROP_OLDEST)
    with pytest.raises(NotDurableError, match="no subscriber stores"):
        # The timeout is far longer than the deadline: the refusal must not wait for it.
        await within(bus.publish_durable(batch(2), timeout_s=600))
    assert len(await within(view.get())) == 2


async def test_concurrent_durable_publishes_are_acknowledged_each_for_itself(bus: Bus) -> None:
    store = bus.subscribe("store", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    publishes = [
        asyncio.ensure_future(bus.publish_durable(batch(1, base=k), timeout_s=30)) for k in range(4)
    ]
    taken = {int(b.values[0]): b for b in [await within(store.get()) for _ in range(4)]}
    assert sorted(taken) == [0, 1, 2, 3]
    # Acknowledged in another order than they came: each publisher hears of its own batch.
    await store.ack(taken[2], "bad value")
    await store.ack(taken[3])
    await within(publishes[3])
    with pytest.raises(NotDurableError, match="bad value"):
        await within(publishes[2])
    assert await still_pending(publishes[0]) and not publishes[1].done()
    await store.ack(taken[1])
    await store.ack(taken[0])
    await within(asyncio.gather(publishes[0], publishes[1]))


async def test_a_batch_given_back_is_not_durable_for_its_publisher(bus: Bus) -> None:
    # `retry=True`: not stored (the commit failed), to be delivered again where a broker can.
    store = bus.subscribe("store", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    durable = asyncio.ensure_future(bus.publish_durable(batch(2), timeout_s=30))
    await store.ack(await within(store.get()), "database down", retry=True)
    with pytest.raises(NotDurableError, match="database down"):
        await within(durable)
    # Without a reason, the publisher still hears that it was not stored.
    durable = asyncio.ensure_future(bus.publish_durable(batch(1, base=9), timeout_s=30))
    while True:  # on a broker the first batch may come again first
        taken = await within(store.get())
        if taken.values[0] == 9.0:
            break
        await store.ack(taken)
    await store.ack(taken, retry=True)
    with pytest.raises(NotDurableError, match="not stored"):
        await within(durable)
