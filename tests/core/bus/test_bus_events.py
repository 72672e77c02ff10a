"""Contract: the event log orders per key, numbers, de-duplicates, filters, bounds and redelivers."""

from __future__ import annotations

import asyncio

from bus_helpers import EVENT_LOG_BOUND, QUIET_S, event, ns, still_pending, take, within

from kiln.core.bus import Bus


async def test_events_of_a_key_arrive_in_publish_order_under_concurrent_publishers(
    bus: Bus,
) -> None:
    sub = bus.subscribe_events("watcher")
    keys, per_key = ["press/1", "press/2", "oven/1", "oven/2"], 15
    returned: dict[tuple[str, int], int] = {}

    async def publisher(key: str) -> None:
        for n in range(per_key):
            returned[key, n] = await bus.publish_event(event("asset.state", key, n))
            await asyncio.sleep(0)  # interleave with the other publishers

    await within(asyncio.gather(*(publisher(k) for k in keys)))
    got = await take(sub, len(keys) * per_key)
    seqs = [d.event.seq for d in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "seq strictly increasing"
    for key in keys:
        mine = [d for d in got if d.event.key == key]
        assert ns(mine) == list(range(per_key))
        assert [d.event.seq for d in mine] == [returned[key, n] for n in range(per_key)]
    assert not any(d.redelivered for d in got)
    first = got[0].event
    assert (first.kind, first.data["n"], first.time_us) == ("asset.state", 0, 0)


async def test_a_subscriber_resumes_from_a_stored_seq(bus: Bus) -> None:
    seqs = [await bus.publish_event(event("order.created", "so-1", n)) for n in range(5)]
    resumed = bus.subscribe_events("late", start_seq=seqs[2])
    assert ns(await take(resumed, 3)) == [2, 3, 4]
    await bus.publish_event(event("order.created", "so-1", 5))
    assert ns(await take(resumed, 1)) == [5]
    # Without start_seq, a plain subscriber sees only what comes after it subscribed.
    fresh = bus.subscribe_events("fresh")
    await bus.publish_event(event("order.created", "so-1", 6))
    assert ns(await take(fresh, 1)) == [6]


async def test_an_event_sent_again_with_its_id_is_dropped(bus: Bus) -> None:
    sub = bus.subscribe_events("dedup")
    first = await bus.publish_event(event("alarm.transition", "a1", 1, id="alarm-a1-1"))
    again = await bus.publish_event(event("alarm.transition", "a1", 1, id="alarm-a1-1"))
    assert again == first
    other = await bus.publish_event(event("alarm.transition", "a1", 2, id="alarm-a1-2"))
    assert other > first
    got = await take(sub, 2)
    assert [(d.event.seq, d.event.id) for d in got] == [
        (first, "alarm-a1-1"),
        (other, "alarm-a1-2"),
    ]


async def test_kinds_select_by_dotted_prefix(bus: Bus) -> None:
    alarms = bus.subscribe_events("alarms", kinds=["alarm"])
    both = bus.subscribe_events("both", kinds=["alarm.shelve", "asset"])
    await bus.publish_event(event("asset.state", "press/1", 1))
    await bus.publish_event(event("alarm.transition", "a1", 2))
    await bus.publish_event(event("order.created", "so-1", 3))
    await bus.publish_event(event("alarm.shelve", "a1", 4))
    assert [d.event.kind for d in await take(alarms, 2)] == ["alarm.transition", "alarm.shelve"]
    assert ns(await take(both, 2)) == [1, 4]


async def test_a_durable_subscribers_unacked_events_go_to_its_successor(bus: Bus) -> None:
    first_seq = await bus.publish_event(event("alarm.transition", "a1", 0))
    engine = bus.subscribe_events("engine", durable=True, start_seq=first_seq, ack_wait_s=60)
    for n in (1, 2):
        await bus.publish_event(event("alarm.transition", "a1", n))
    d0, _unacked, d2 = await take(engine, 3)
    await d0.ack()
    await d2.ack()
    engine.close()  # the engine "dies" with event 1 unacknowledged
    successor = bus.subscribe_events("engine", durable=True, ack_wait_s=60)
    again = await take(successor, 1)
    assert ns(again) == [1] and again[0].redelivered
    await again[0].ack()
    await bus.publish_event(event("alarm.transition", "a1", 3))
    (new,) = await take(successor, 1)
    assert (ns([new]), new.redelivered) == ([3], False)
    await new.ack()


async def test_an_unacked_event_is_redelivered_after_ack_wait(bus: Bus) -> None:
    seq = await bus.publish_event(event("asset.state", "press/1", 0))
    sub = bus.subscribe_events("slowpoke", durable=True, start_seq=seq, ack_wait_s=0.5)
    (first,) = await take(sub, 1)
    assert not first.redelivered
    (again,) = await take(sub, 1)  # nothing acknowledged it within ack_wait
    assert (again.event.seq, again.redelivered) == (seq, True)
    await again.ack()
    await bus.publish_event(event("asset.state", "press/1", 1))
    (nxt,) = await take(sub, 1)
    assert (ns([nxt]), nxt.redelivered) == ([1], False)
    await nxt.ack()
    assert sub.stats.redelivered >= 1 and sub.stats.pending == 0


async def test_a_durable_subscriber_holds_at_most_max_pending(bus: Bus) -> None:
    seqs = [await bus.publish_event(event("asset.state", "press/1", n)) for n in range(4)]
    sub = bus.subscribe_events(
        "bounded", durable=True, start_seq=seqs[0], max_pending=2, ack_wait_s=60
    )
    d0, d1 = await take(sub, 2)
    third = asyncio.ensure_future(sub.get())
    assert await still_pending(third), "a third delivery while two are unacknowledged"
    assert sub.stats.pending == 2
    await d0.ack()
    d2 = await within(third)
    assert ns([d1, d2]) == [1, 2]
    await d1.ack()
    await d2.ack()
    (d3,) = await take(sub, 1)
    await d3.ack()
    assert sub.stats.acked == 4


async def test_the_log_is_bounded_and_a_late_reader_is_told_what_it_missed(bus: Bus) -> None:
    total = EVENT_LOG_BOUND + 10
    seqs = [await bus.publish_event(event("asset.state", "press/1", n)) for n in range(total)]
    late = bus.subscribe_events("late", start_seq=seqs[0])
    got = await take(late, EVENT_LOG_BOUND)
    # The oldest ten went first; everything still in the log arrives, in order.
    assert ns(got) == list(range(10, total))
    assert late.stats.missed == 10
    nothing_more = asyncio.ensure_future(late.get())
    assert await still_pending(nothing_more, QUIET_S)
    nothing_more.cancel()
