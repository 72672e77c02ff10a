"""Contract: values fan out to bounded subscriptions, each with its stated overflow policy."""

from __future__ import annotations

import asyncio

from bus_helpers import batch, eventually, within

from kiln.core.bus import Bus, Overflow
from kiln.core.values import ValueBatch


async def test_every_subscriber_gets_every_batch_in_order(bus: Bus) -> None:
    one = bus.subscribe("one", max_points=1000, overflow=Overflow.DROP_OLDEST)
    two = bus.subscribe("two", max_points=1000, overflow=Overflow.BLOCK)
    for k in range(3):
        await bus.publish(batch(2, base=k * 10))
    for sub in (one, two):
        got = [await within(sub.get()) for _ in range(3)]
        assert [list(b.values) for b in got] == [[0.0, 1.0], [10.0, 11.0], [20.0, 21.0]]
        assert list(got[0].paths) == ["a/b/t0", "a/b/t1"]
        assert sub.stats.delivered_points == 6
    assert bus.published_points == 6
    assert bus.published_batches == 3
    assert {s.name for s in bus.subscriptions} >= {"one", "two"}


async def test_prefix_selects_points_segment_wise(bus: Bus) -> None:
    line1 = bus.subscribe("line1", max_points=100, overflow=Overflow.BLOCK, prefix="acme/line1")
    everything = bus.subscribe("all", max_points=100, overflow=Overflow.BLOCK)
    mixed = ValueBatch(
        paths=["acme/line1/x", "acme/line10/x", "acme/line1/y/z"],
        values=[1.0, 2.0, 3.0],
        source_us=[1, 2, 3],
        qualities=[0, 0, 0],
        receive_us=0,
    )
    await bus.publish(mixed)
    await bus.publish(batch(2, prefix="other/place"))
    await bus.publish(batch(1, base=7, prefix="acme/line1/q"))
    first = await within(line1.get())
    assert list(first.paths) == ["acme/line1/x", "acme/line1/y/z"]
    assert list(first.values) == [1.0, 3.0]
    # "other/place" is skipped: the next batch this subscriber sees is the third one.
    second = await within(line1.get())
    assert (list(second.paths), list(second.values)) == (["acme/line1/q/t0"], [7.0])
    assert [len(await within(everything.get())) for _ in range(3)] == [3, 2, 1]


async def test_drop_oldest_keeps_the_newest_within_the_bound_and_counts_the_rest(
    bus: Bus,
) -> None:
    live = bus.subscribe("live", max_points=10, overflow=Overflow.DROP_OLDEST)
    for k in range(5):
        await bus.publish(batch(4, base=k * 100))
    st = live.stats
    # Every batch has reached the subscriber once it is either queued or dropped.
    await eventually(lambda: st.depth_points + st.dropped_points == 20)
    # 5 batches of 4 points into a bound of 10: only the newest two batches fit.
    assert (st.dropped_batches, st.dropped_points, st.depth_points) == (3, 12, 8)
    kept = live.drain(1000)
    assert [b.values[0] for b in kept] == [300.0, 400.0]
    assert (st.depth_points, st.delivered_points, st.max_points) == (0, 8, 10)


async def test_block_loses_nothing_and_never_queues_past_its_bound(bus: Bus) -> None:
    slow = bus.subscribe("slow", max_points=5, overflow=Overflow.BLOCK)

    async def publisher() -> None:
        for k in range(10):
            await bus.publish(batch(4, base=k * 100))

    task = asyncio.ensure_future(publisher())
    got: list[float] = []
    for _ in range(10):
        # Two batches of 4 never fit a bound of 5: at most one is ever waiting.
        assert slow.stats.depth_points <= 4
        got.append((await within(slow.get())).values[0])
    await within(task)
    assert got == [k * 100.0 for k in range(10)]
    assert (slow.stats.dropped_points, slow.stats.delivered_points) == (0, 40)


async def test_a_batch_larger_than_the_bound_still_gets_through(bus: Bus) -> None:
    small = bus.subscribe("small", max_points=3, overflow=Overflow.BLOCK)
    await within(bus.publish(batch(10)))
    assert len(await within(small.get())) == 10


async def test_close_ends_iteration_after_the_queue_is_empty(bus: Bus) -> None:
    sub = bus.subscribe("closing", max_points=100, overflow=Overflow.DROP_OLDEST)
    await bus.publish(batch(1))
    await eventually(lambda: sub.stats.depth_batches == 1)
    sub.close()
    assert sub.closed
    seen = [b async for b in sub]
    assert [len(b) for b in seen] == [1]  # what was queued before closing is still delivered
    assert all(s is not sub for s in bus.subscriptions)
