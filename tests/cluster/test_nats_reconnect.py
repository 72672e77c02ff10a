"""The broker goes away and comes back: publishing fails clearly while it is gone, and the bus
carries on by itself once it is back (nats-py reconnects; the pull loops ask again)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.core.bus import BusError, Overflow
from kiln.core.clock import SystemClock
from kiln.core.health import Status
from kiln.core.values import ValueBatch
from kiln.testing.nats import NatsServer, own_server, require_nats, unique_prefix

WAIT_S = 15.0


def batch(value: float) -> ValueBatch:
    return ValueBatch(
        paths=["acme/line1/weight"], values=[value], source_us=[1], qualities=[0], receive_us=0
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    require_nats()  # the client library, and a machine that runs NATS
    broker = own_server(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


@pytest.mark.slow
async def test_publishing_without_the_broker_fails_saying_where_and_recovers(
    server: NatsServer,
) -> None:
    from kiln.cluster.nats_bus import NatsBus

    prefix = unique_prefix()
    source = NatsBus(server.url, SystemClock(), node="source", prefix=prefix, full_wait_s=1.0)
    sink = NatsBus(server.url, SystemClock(), node="sink", prefix=prefix)
    await source.start()
    await sink.start()
    try:
        store = sink.subscribe("historian", max_points=100, overflow=Overflow.BLOCK, stores=True)
        await asyncio.wait_for(store.created, WAIT_S)
        await source.publish(batch(1.0))
        await store.ack(await asyncio.wait_for(store.get(), WAIT_S))

        server.kill()
        with pytest.raises(BusError, match=f"{server.url}.*unreachable"):
            await source.publish(batch(2.0))
        assert source.health().status is Status.DEGRADED

        server.start()  # the same store: the streams and the durable consumer are still there
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while not source.health().detail["connected"]:
            assert loop.time() < deadline, "the bus did not reconnect"
            await asyncio.sleep(0.05)
        await source.publish(batch(3.0))
        got = await asyncio.wait_for(store.get(), WAIT_S)
        # 3.0 must arrive. 2.0 may have reached the stream before the broker died; 1.0 comes
        # again if the broker died before it wrote down its acknowledgement (at least once:
        # the historian keeps one value per tag and time, so a repeat is harmless).
        values = [got.values[0]]
        while values[-1] != 3.0:
            values.append((await asyncio.wait_for(store.get(), WAIT_S)).values[0])
        assert set(values) <= {1.0, 2.0, 3.0}
    finally:
        await source.stop()
        await sink.stop()
