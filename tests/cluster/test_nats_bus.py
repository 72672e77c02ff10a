"""NatsBus between processes: what the contract suite (one bus) cannot show.

Each test's buses share a fresh prefix, as the processes of one plant share a bus; each bus is
its own node. The crash test kills a real consumer process with SIGKILL.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from cluster_helpers import BusMaker

from kiln.cluster.codec import encode_batch
from kiln.core.bus import (
    BusError,
    BusFullError,
    Command,
    CommandError,
    CommandFailure,
    CommandTimeoutError,
    Event,
    EventDelivery,
    NoResponderError,
    Overflow,
)
from kiln.core.clock import SystemClock
from kiln.core.errors import NotDurableError
from kiln.core.health import Status
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


SPREAD = [f"acme/line{i}/tag" for i in range(40)]  # over many shards (of a bus that has them)


async def test_a_batch_over_many_shards_reaches_another_process_whole_and_in_order(
    buses: BusMaker,
) -> None:
    source, sink = await buses("source", shards=4), await buses("sink", shards=4)
    sub = sink.subscribe("view", max_points=1000, overflow=Overflow.BLOCK)
    await asyncio.wait_for(sub.created, WAIT_S)
    sent = batch(SPREAD)
    await source.publish(sent)
    got = await asyncio.wait_for(sub.get(), WAIT_S)
    assert list(got.paths) == SPREAD
    assert list(got.values) == list(sent.values)
    assert source.published_points == 40 and source.published_batches == 1


async def test_a_durable_publish_is_acknowledged_by_a_storing_subscriber_elsewhere(
    buses: BusMaker,
) -> None:
    ingest, historian = await buses("ingest"), await buses("historian")
    store = historian.subscribe("historian", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    await asyncio.wait_for(store.created, WAIT_S)

    async def commit() -> None:
        got = await store.get()
        assert got.origin == "ingest" and got.batch_id
        await store.ack(got)

    committer = asyncio.ensure_future(commit())
    await ingest.publish_durable(batch(SPREAD), timeout_s=WAIT_S)
    await asyncio.wait_for(committer, WAIT_S)

    refuser = asyncio.ensure_future(store.get())
    publish = asyncio.ensure_future(ingest.publish_durable(batch(["a/b"]), timeout_s=WAIT_S))
    await store.ack(await asyncio.wait_for(refuser, WAIT_S), error="disk full")
    with pytest.raises(NotDurableError, match="disk full"):
        await publish


async def test_a_re_sent_part_is_stored_once(buses: BusMaker) -> None:
    bus = await buses("one")
    sub = bus.subscribe("view", max_points=100, overflow=Overflow.BLOCK)
    await asyncio.wait_for(sub.created, WAIT_S)
    payload = encode_batch(batch(["a/b"], base=1.0))
    for _ in range(2):  # a publisher retrying after a lost reply sends the same id
        await bus.js.publish(bus.names.values(0), payload, headers={"Nats-Msg-Id": "x.0"})
    await bus.publish(batch(["a/b"], base=2.0))
    first = await asyncio.wait_for(sub.get(), WAIT_S)
    second = await asyncio.wait_for(sub.get(), WAIT_S)
    assert [first.values[0], second.values[0]] == [1.0, 2.0]


async def test_a_full_stream_makes_publish_fail_after_a_bounded_wait(buses: BusMaker) -> None:
    bus = await buses("small", values_max_bytes=4096, full_wait_s=0.5)
    # A storing subscriber that never takes anything: the stream keeps every batch for it.
    stalled = bus.subscribe("stalled", max_points=1, overflow=Overflow.BLOCK, stores=True)
    await asyncio.wait_for(stalled.created, WAIT_S)

    async def flood() -> None:
        for k in range(100):
            await bus.publish(batch(["a/b/c"] * 20, base=k))

    with pytest.raises(BusFullError, match="values_max_bytes"):
        await flood()
    health = bus.health()
    assert health.detail["subscribers"]["stalled"]["depth_points"] <= 20


async def test_commands_cross_processes_with_failures_timeouts_and_no_responders(
    buses: BusMaker,
) -> None:
    api, edge = await buses("api"), await buses("edge")
    release = asyncio.Event()

    async def handler(command: Command) -> dict[str, Any]:
        if command.name == "write":
            return {"written": command.args["value"]}
        if command.name == "refuse":
            raise CommandError(CommandFailure.UNAVAILABLE, "device not connected")
        if command.name == "hang":
            await release.wait()
        raise RuntimeError("boom")

    server = await edge.serve("connectors", handler)
    assert await api.request(Command("connectors", "write", {"value": 4}), timeout_s=WAIT_S) == {
        "written": 4
    }
    with pytest.raises(CommandError) as refused:
        await api.request(Command("connectors", "refuse"), timeout_s=WAIT_S)
    assert refused.value.kind is CommandFailure.UNAVAILABLE
    with pytest.raises(CommandError, match="boom") as failed:
        await api.request(Command("connectors", "crash"), timeout_s=WAIT_S)
    assert failed.value.kind is CommandFailure.FAILED
    with pytest.raises(CommandTimeoutError):
        await api.request(Command("connectors", "hang"), timeout_s=0.3)
    release.set()
    await server.close()
    with pytest.raises(NoResponderError, match="connectors"):
        await api.request(Command("connectors", "write", {"value": 1}), timeout_s=WAIT_S)


async def test_a_durable_event_subscriber_resumes_in_another_process(buses: BusMaker) -> None:
    first, second = await buses("first"), await buses("second")
    seqs = [
        await first.publish_event(Event("alarm.transition", "a1", {"n": n}, n)) for n in range(3)
    ]
    sub = first.subscribe_events("journal", durable=True, start_seq=seqs[0], ack_wait_s=30)
    got = [await asyncio.wait_for(sub.get(), WAIT_S) for _ in range(3)]
    for delivery in got[:2]:
        await delivery.ack()
    sub.close()  # the third was never acknowledged: the successor gets it, without ack_wait
    await first.publish_event(Event("alarm.transition", "a1", {"n": 3}, 3))
    successor = second.subscribe_events("journal", durable=True, ack_wait_s=30)
    # The unacknowledged one again, and the one published after the close (which the closing
    # subscriber's last pull may have brought and given back unseen: then the broker counts it
    # delivered before). The broker chooses the order of what was given back together.
    # Delivery is at least once: a message the closing subscriber's leftover pull request
    # brought and gave back may come twice (seen once in CI: 3, 3 before 2). What must hold is
    # that both come, well before ack_wait, and the acknowledged ones never again.
    again: list[EventDelivery] = []
    while {2, 3} - {d.event.data["n"] for d in again}:
        again.append(await asyncio.wait_for(successor.get(), WAIT_S))
        assert again[-1].event.data["n"] in (2, 3), [d.event.data for d in again]
    assert next(d for d in again if d.event.data["n"] == 2).redelivered
    for delivery in again:
        await delivery.ack()
    await first.publish_event(Event("alarm.transition", "a1", {"n": 4}, 4))
    fresh = await asyncio.wait_for(successor.get(), WAIT_S)
    while fresh.event.data["n"] == 3:  # a late duplicate of the given-back one
        await fresh.ack()
        fresh = await asyncio.wait_for(successor.get(), WAIT_S)
    assert (fresh.event.data["n"], fresh.redelivered) == (4, False)


async def test_an_event_re_sent_by_another_process_keeps_its_first_sequence(
    buses: BusMaker,
) -> None:
    first, second = await buses("first"), await buses("second")
    await first.publish_event(Event("order.created", "o-1", {}, 0))
    seq = await first.publish_event(Event("order.created", "o-2", {}, 0, id="evt-1"))
    assert await second.publish_event(Event("order.created", "o-2", {}, 0, id="evt-1")) == seq


async def test_event_kinds_must_be_subject_tokens(buses: BusMaker) -> None:
    bus = await buses("one")
    with pytest.raises(BusError, match="event kind"):
        await bus.publish_event(Event("alarm transition", "k", {}, 0))


async def test_health_reports_the_connection_streams_and_subscribers(buses: BusMaker) -> None:
    bus = await buses("one")
    sub = bus.subscribe("live", max_points=10, overflow=Overflow.DROP_OLDEST)
    await asyncio.wait_for(sub.created, WAIT_S)
    health = bus.health()
    assert health.status is Status.OK
    assert health.detail["connected"] is True
    assert health.detail["subscribers"]["live"]["depth_points"] == 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while bus.names.values_stream not in bus.health().detail["streams"]:
        assert loop.time() < deadline, "stream sizes never reached health()"
        await asyncio.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_broker_fails_start_saying_where_it_was_looked_for() -> None:
    from kiln.cluster.nats_bus import NatsBus

    url = f"nats://127.0.0.1:{_free_port()}"
    bus = NatsBus(url, SystemClock(), node="lonely", connect_timeout_s=1.0)
    with pytest.raises(BusError, match=url.replace(".", r"\.") + ".*nats-server"):
        await bus.start()


async def test_a_subscription_whose_consumer_the_broker_lost_declares_it_again(
    buses: BusMaker,
) -> None:
    bus = await buses("one")
    live = bus.subscribe("live", max_points=100, overflow=Overflow.DROP_OLDEST)
    await asyncio.wait_for(live.created, WAIT_S)
    # As when an ephemeral consumer sat idle past its inactivity threshold.
    await bus.jsm.delete_consumer(bus.names.values_stream, live.consumer)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:  # published until the re-declared consumer (which starts at "now") has one
        await bus.publish(batch(["a/b"], base=5.0))
        try:
            got = await asyncio.wait_for(live.get(), 0.5)
            break
        except TimeoutError:
            assert loop.time() < deadline, "the consumer was never declared again"
    assert got.values == [5.0]


async def test_only_storing_subscribers_that_take_the_whole_batch_are_waited_for(
    buses: BusMaker,
) -> None:
    ingest, historian = await buses("ingest"), await buses("historian")
    line1 = historian.subscribe(
        "line1", max_points=100, overflow=Overflow.BLOCK, prefix="acme/line1", stores=True
    )
    await asyncio.wait_for(line1.created, WAIT_S)
    # Nobody stores all of a batch that spans two lines: refused at once, not after the timeout.
    with pytest.raises(NotDurableError, match="no subscriber stores"):
        await asyncio.wait_for(
            ingest.publish_durable(batch(["acme/line1/x", "acme/line2/x"]), timeout_s=600), WAIT_S
        )
    part = await asyncio.wait_for(line1.get(), WAIT_S)
    assert (list(part.paths), part.batch_id) == (["acme/line1/x"], "")
    await line1.ack(part)

    async def commit() -> None:
        whole = await line1.get()
        assert whole.batch_id
        await line1.ack(whole)

    committer = asyncio.ensure_future(commit())
    await ingest.publish_durable(batch(["acme/line1/x", "acme/line1/y"]), timeout_s=WAIT_S)
    await asyncio.wait_for(committer, WAIT_S)


async def test_a_live_subscriber_holding_a_batch_past_ack_wait_does_not_get_it_twice(
    buses: BusMaker,
) -> None:
    bus = await buses("one", ack_wait_s=1.5, shards=4)  # parts, kept alive once complete
    store = bus.subscribe("historian", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    await asyncio.wait_for(store.created, WAIT_S)
    publish = asyncio.ensure_future(bus.publish_durable(batch(SPREAD), timeout_s=WAIT_S))
    got = await asyncio.wait_for(store.get(), WAIT_S)
    # A slow commit, several ack waits long: the bus keeps telling the broker it is working.
    again = asyncio.ensure_future(store.get())
    done, _ = await asyncio.wait({again}, timeout=4.0)
    again.cancel()
    assert not done, "the batch was delivered a second time while its subscriber lived"
    await store.ack(got)
    await asyncio.wait_for(publish, WAIT_S)


async def test_values_published_before_the_storing_process_ever_ran_are_kept_for_it(
    buses: BusMaker,
) -> None:
    # A fresh plant: the sources start first. The values stream keeps a message only while a
    # consumer owes it, so without the storing consumer declared ahead (`bus.storing`) these
    # would be dropped at once.
    sources = await buses("sources", storing=["historian"])
    early = batch(SPREAD, base=100.0)
    await sources.publish(early)
    server = await buses("server")
    store = server.subscribe("historian", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    got = await asyncio.wait_for(store.get(), WAIT_S)
    assert list(got.values) == list(early.values)
    await store.ack(got)


async def test_without_a_storing_consumer_declared_ahead_early_values_are_not_kept(
    buses: BusMaker,
) -> None:
    # The counterpart of the test above, so that it cannot pass for another reason.
    sources = await buses("sources")
    await sources.publish(batch(SPREAD, base=100.0))
    server = await buses("server")
    store = server.subscribe("historian", max_points=1000, overflow=Overflow.BLOCK, stores=True)
    await asyncio.wait_for(store.created, WAIT_S)
    later = batch(SPREAD, base=200.0)
    await sources.publish(later)
    got = await asyncio.wait_for(store.get(), WAIT_S)
    assert list(got.values) == list(later.values)
