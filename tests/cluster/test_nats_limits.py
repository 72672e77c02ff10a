"""NatsBus at its limits: message size, busy command servers, orphaned parts, broker round
trips, and errors that must reach a durable publisher as `NotDurableError`."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import nats.errors
import pytest
from cluster_helpers import BusMaker, eventually

from kiln.cluster.codec import encode_batch
from kiln.cluster.settings import BusSettings
from kiln.core.bus import (
    BusError,
    BusFullError,
    Command,
    CommandError,
    CommandFailure,
    Event,
    Overflow,
)
from kiln.core.errors import NotDurableError
from kiln.core.values import ValueBatch

WAIT_S = 10.0


def batch(paths: list[str], base: float = 0.0) -> ValueBatch:
    n = len(paths)
    return ValueBatch(
        paths=paths,
        values=[base + i for i in range(n)],
        source_us=list(range(n)),
        qualities=[0] * n,
        receive_us=0,
    )


@pytest.mark.parametrize("shards", [1, 4])
async def test_a_batch_of_many_times_max_payload_arrives_whole(
    buses: BusMaker, shards: int
) -> None:
    source, sink = await buses("source", shards=shards), await buses("sink", shards=shards)
    store = sink.subscribe("historian", max_points=1_000_000, overflow=Overflow.BLOCK, stores=True)
    await asyncio.wait_for(store.created, WAIT_S)
    paths = [f"acme/line{i % 7}/tag{i}" for i in range(300_000)]
    sent = batch(paths)
    assert len(encode_batch(sent)) > 3 * source.nc.max_payload

    async def commit() -> ValueBatch:
        got = await store.get()
        await store.ack(got)
        return got

    committer = asyncio.ensure_future(commit())
    await source.publish_durable(sent, timeout_s=30)
    got = await asyncio.wait_for(committer, WAIT_S)
    assert list(got.paths) == paths
    assert list(got.values) == list(sent.values)


async def test_a_busy_command_server_answers_unavailable(buses: BusMaker) -> None:
    api, edge = await buses("api"), await buses("edge", command_concurrency=2)
    entered = asyncio.Semaphore(0)
    release = asyncio.Event()

    async def handler(command: Command) -> dict[str, Any]:
        entered.release()
        await release.wait()
        return {"done": command.name}

    server = await edge.serve("connectors", handler)
    running = [
        asyncio.ensure_future(api.request(Command("connectors", f"w{k}"), timeout_s=WAIT_S))
        for k in range(2)
    ]
    for _ in running:
        await asyncio.wait_for(entered.acquire(), WAIT_S)
    with pytest.raises(CommandError, match="busy") as busy:
        await api.request(Command("connectors", "w2"), timeout_s=WAIT_S)
    assert busy.value.kind is CommandFailure.UNAVAILABLE
    release.set()
    assert [await asyncio.wait_for(r, WAIT_S) for r in running] == [{"done": "w0"}, {"done": "w1"}]
    # Room again once they finished.
    assert await api.request(Command("connectors", "w3"), timeout_s=WAIT_S) == {"done": "w3"}
    await server.close()


async def test_an_incomplete_batch_is_ended_after_its_age_limit(buses: BusMaker) -> None:
    # Age limit 2 x full_wait_s; keep-alive (and the check) every ack_wait_s / 4.
    bus = await buses("one", full_wait_s=0.2, ack_wait_s=1.0)
    store = bus.subscribe("historian", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    await asyncio.wait_for(store.created, WAIT_S)
    # The first of two parts, from a publisher that died before sending the second.
    headers = {"Nats-Msg-Id": "dead.0", "Kiln-Batch": "dead", "Kiln-Parts": "0/2"}
    part = encode_batch(batch(["a/b/c"]), [0])
    await bus.js.publish(bus.names.values(0), part, headers=headers)

    def detail() -> dict[str, Any]:
        subscribers: dict[str, dict[str, Any]] = bus.health().detail["subscribers"]
        return subscribers["historian"]

    await eventually(lambda: detail()["orphaned_batches"] == 1, WAIT_S)
    assert detail()["incomplete_batches"] == 0
    # Ended on the broker too (term): nothing pending there, nothing delivered again.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        info = await bus.jsm.consumer_info(bus.names.values_stream, store.consumer)
        if info.num_ack_pending == 0 and info.num_pending == 0:
            break
        assert loop.time() < deadline, f"the parts are still pending on the broker: {info}"
        await asyncio.sleep(0.05)
    await bus.publish(batch(["a/b/d"], base=5.0))
    got = await asyncio.wait_for(store.get(), WAIT_S)
    assert list(got.values) == [5.0]
    await store.ack(got)


async def test_storing_subscribers_are_not_listed_for_every_durable_publish(
    buses: BusMaker,
) -> None:
    ingest, server = await buses("ingest"), await buses("server")
    store = server.subscribe("historian", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    await asyncio.wait_for(store.created, WAIT_S)

    async def commit(n: int) -> None:
        for _ in range(n):
            await store.ack(await store.get())

    committer = asyncio.ensure_future(commit(20))
    for k in range(20):
        await ingest.publish_durable(batch(["a/b/c"], base=k), timeout_s=WAIT_S)
    await asyncio.wait_for(committer, WAIT_S)
    # One listing per second at most (the test may straddle a few seconds on a slow machine).
    assert ingest._storing_index.reads <= 5


async def test_storing_subscribers_are_found_on_every_page() -> None:
    from kiln.cluster.nats_values import StoringConsumers

    def info(name: str, description: str = "") -> SimpleNamespace:
        return SimpleNamespace(name=name, config=SimpleNamespace(description=description))

    pages = {
        0: [info(f"live-{i}") for i in range(256)],
        256: [info("live-x"), info("store-historian", "stores ")],
    }

    class Manager:
        async def consumers_info(self, stream: str, offset: int | None = None) -> list[Any]:
            return pages.get(offset or 0, [])

    index = StoringConsumers(lambda: Manager(), "kiln_values")  # type: ignore[arg-type,return-value]
    assert await index.count(batch(["a/b/c"])) == 1
    assert index.reads == 2


@pytest.mark.parametrize(
    "error",
    [
        BusFullError("the values stream is full"),
        BusError("the broker is unreachable"),
        nats.errors.NoRespondersError(),
        TimeoutError(),
    ],
)
async def test_a_durable_publish_raises_only_not_durable(
    buses: BusMaker, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    bus = await buses("one", storing=["historian"])

    async def fail(*args: object) -> None:
        raise error

    monkeypatch.setattr(bus, "_store", fail)
    with pytest.raises(NotDurableError, match="send it again") as caught:
        await bus.publish_durable(batch(["a/b/c"]), timeout_s=WAIT_S)
    assert caught.value.__cause__ is error
    monkeypatch.setattr(bus._storing_index, "count", fail)
    with pytest.raises(NotDurableError, match="send it again"):
        await bus.publish_durable(batch(["a/b/c"]), timeout_s=WAIT_S)


async def test_an_event_without_id_re_sent_after_a_lost_reply_is_logged_once(
    buses: BusMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = await buses("one")
    real_publish = bus.js.publish
    lost = [True]

    async def lose_first_reply(*args: Any, **kwargs: Any) -> Any:
        ack = await real_publish(*args, **kwargs)
        if lost:
            lost.pop()
            raise nats.errors.TimeoutError  # stored, but the PubAck never came
        return ack

    monkeypatch.setattr(bus.js, "publish", lose_first_reply)
    seq = await bus.publish_event(Event("asset.state", "line1", {"s": 1}, time_us=1))
    info = await bus.jsm.stream_info(bus.names.events_stream)
    assert (info.state.messages, info.state.last_seq) == (1, seq)


async def test_a_closed_subscription_is_forgotten_once_wound_down(buses: BusMaker) -> None:
    bus = await buses("one")
    for _ in range(3):
        sub = bus.subscribe("view", max_points=10, overflow=Overflow.DROP_OLDEST)
        await asyncio.wait_for(sub.created, WAIT_S)
        sub.close()
    await eventually(lambda: not bus._closing, WAIT_S)


def test_one_shard_by_default() -> None:
    from kiln.cluster.nats_bus import NatsBus
    from kiln.core.clock import SystemClock

    assert BusSettings().shards == 1
    assert NatsBus("nats://127.0.0.1:1", SystemClock()).names.shards == 1


async def test_concurrent_durable_publishes_share_one_listing(buses: BusMaker) -> None:
    ingest, server = await buses("ingest"), await buses("server")
    store = server.subscribe("historian", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    await asyncio.wait_for(store.created, WAIT_S)

    async def commit(n: int) -> None:
        for _ in range(n):
            await store.ack(await store.get())

    committer = asyncio.ensure_future(commit(10))
    await asyncio.wait_for(
        asyncio.gather(
            *(ingest.publish_durable(batch(["a/b/c"], base=k), timeout_s=WAIT_S) for k in range(10))
        ),
        WAIT_S,
    )
    await asyncio.wait_for(committer, WAIT_S)
    assert ingest._storing_index.reads == 1
