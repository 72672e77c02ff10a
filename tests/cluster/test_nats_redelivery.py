"""NatsBus: a batch that was not stored is given back to the broker, not lost.

`ack(batch, error, retry=True)` (a failed, cancelled or abandoned commit) gives the batch back
to be delivered again; stopping the bus gives back what a storing subscription still held, so
a successor under the same name gets it at once rather than after `ack_wait_s`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from cluster_helpers import BusMaker, eventually

from kiln.core.bus import Overflow
from kiln.core.clock import SystemClock
from kiln.core.errors import NotDurableError
from kiln.core.platform import Platform, Stage
from kiln.core.values import ValueBatch
from kiln.historian.service import Historian
from kiln.historian.store import WriteStats
from kiln.testing.nats import NATS_URL

WAIT_S = 10.0


def batch(paths: list[str], base: float = 0.0, time_us: int = 0) -> ValueBatch:
    n = len(paths)
    return ValueBatch(
        paths=paths,
        values=[base + i for i in range(n)],
        source_us=[time_us + i for i in range(n)],
        qualities=[0] * n,
        receive_us=time_us,
    )


async def test_a_batch_given_back_fails_its_publisher_and_comes_again(buses: BusMaker) -> None:
    ingest, server = await buses("ingest"), await buses("server")
    store = server.subscribe("historian", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    await asyncio.wait_for(store.created, WAIT_S)
    publish = asyncio.ensure_future(
        ingest.publish_durable(batch(["a/b/c", "a/b/d"], base=7.0), timeout_s=WAIT_S)
    )
    first = await asyncio.wait_for(store.get(), WAIT_S)
    await store.ack(first, "database down", retry=True)
    with pytest.raises(NotDurableError, match="database down"):
        await asyncio.wait_for(publish, WAIT_S)
    again = await asyncio.wait_for(store.get(), WAIT_S)
    assert (list(again.paths), list(again.values)) == (["a/b/c", "a/b/d"], [7.0, 8.0])
    await store.ack(again)


async def test_a_refused_batch_is_not_delivered_again(buses: BusMaker) -> None:
    bus = await buses("one")
    store = bus.subscribe("historian", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    await asyncio.wait_for(store.created, WAIT_S)
    await bus.publish(batch(["a/b/c"], base=1.0))
    await store.ack(await asyncio.wait_for(store.get(), WAIT_S), "not a number")
    await bus.publish(batch(["a/b/c"], base=2.0))
    nxt = await asyncio.wait_for(store.get(), WAIT_S)
    assert list(nxt.values) == [2.0]
    await store.ack(nxt)


async def test_stopping_gives_back_what_a_storing_subscription_held(
    buses: BusMaker, prefix: str
) -> None:
    from kiln.cluster.nats_bus import NatsBus

    ingest = await buses("ingest")
    # Made here, not by `buses`: this one is stopped in the middle of the test.
    first = NatsBus(NATS_URL, SystemClock(), node="first", prefix=prefix)  # ack_wait_s 30
    await first.start()
    try:
        store = first.subscribe("historian", max_points=1000, overflow=Overflow.BLOCK, stores=True)
        await asyncio.wait_for(store.created, WAIT_S)
        for k in range(3):
            await ingest.publish(batch(["a/b/c"], base=float(k)))
        taken = await asyncio.wait_for(store.get(), WAIT_S)  # handed out, never acknowledged
        assert list(taken.values) == [0.0]
        await eventually(lambda: store.stats.depth_batches == 2, WAIT_S)
    finally:
        await first.stop()
    second = await buses("second")
    successor = second.subscribe("historian", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    # Well before ack_wait_s (30 s): given back at stop, not found by the broker's timer.
    got = [await asyncio.wait_for(successor.get(), WAIT_S) for _ in range(3)]
    assert sorted(b.values[0] for b in got) == [0.0, 1.0, 2.0]
    for b in got:
        await successor.ack(b)


async def test_a_historian_commit_that_fails_once_gets_its_batch_again(
    buses: BusMaker, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiln.cluster.nats_bus import NatsBus

    # The storing consumer is declared ahead: the publish below finds it even if the
    # historian's subscription is still being created.
    ingest = await buses("ingest", storing=["historian"])
    clock = SystemClock()
    server_bus = NatsBus(NATS_URL, clock, node="server", prefix=prefix)  # the platform's
    platform = Platform(clock=clock, data_dir=tmp_path, bus=server_bus)
    historian = Historian(None)
    platform.add(historian, Stage.STORAGE)
    async with platform:
        store = historian.store
        assert store is not None
        real_write = store.write
        failures = [OSError("database down")]

        def flaky(batches: Sequence[ValueBatch]) -> WriteStats:
            if failures:
                raise failures.pop()
            return real_write(batches)

        monkeypatch.setattr(store, "write", flaky)
        now = clock.now_us()
        with pytest.raises(NotDurableError, match="database down"):
            await ingest.publish_durable(batch(["a/b/c"], base=3.0, time_us=now), timeout_s=WAIT_S)
        # Given back by the failed commit, delivered again, and stored by the next attempt.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while not (await historian.raw("a/b/c", now, now + 1, limit=10)).points:
            assert loop.time() < deadline, "the batch of the failed commit never came back"
            await asyncio.sleep(0.05)
        points = (await historian.raw("a/b/c", now, now + 1, limit=10)).points
        assert [p.value for p in points] == [3.0]
        assert historian.stats.errors == 1
