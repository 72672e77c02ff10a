"""The alarm engine on a fake clock (issue 14, "fake-clock tests for on/off delays, re-alarm,
shelve expiry"): values in over the bus, operator actions as bus commands, and every journal
entry checked field by field (event, old and new state, occurrence, value, announced, user) with
its exact source time. The state machine's own cells are in test_alarm_states.py; here the
engine drives it through time.

Clauses: ISA-18.2-2016 / IEC 62682:2014 11.5 (the alarm states and their transitions: delays,
re-alarming, shelving, suppression by design, out of service, latching); OPC UA Part 9 5.8.17
(timed and one-shot shelving, the shelve's expiry), 5.8.2 (LatchedState and Reset, SuppressedState,
OutOfServiceState) and 4.8 (an alarm hidden by an overlay is still evaluated, not announced).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from engine_helpers import Rig, S, alarm_id, row, running_engine

from kiln.core.bus import BusError, CommandError, CommandFailure
from kiln.core.bus import Event as BusEvent

HOT = alarm_id("hot:hi")
OP = "op1"


def hot(**extra: object) -> dict[str, object]:
    """A Hi limit alarm at 80 °C on the oven's temperature."""
    return {"kind": "limit", "name": "hot", "tag": "temp", "hi": {"value": 80}, **extra}


async def assert_events_mirror_journal(rig: Rig) -> None:
    """One `alarm.transition` event per journal entry, in order, carrying that entry."""
    events = await rig.published()
    entries = rig.journal()
    assert [e.data["entry"] for e in events] == [e.to_json() for e in entries]
    assert [e.id for e in events] == [f"{e.alarm_id}#{e.seq}" for e in entries]
    assert [e.time_us for e in events] == [e.source_us for e in entries]


async def test_on_delay_and_off_delay_put_the_transitions_exactly_delay_after_the_value(
    tmp_path: Path,
) -> None:
    # ISA-18.2 11.5 / IEC 62682 (on-delay and off-delay): abnormal for on_delay_s before it
    # activates, normal for off_delay_s before it clears; times are the values' source times.
    async with running_engine(tmp_path, hot(on_delay_s=5, off_delay_s=3)) as rig:
        # Abnormal for less than the on-delay: filtered out, nothing journaled.
        await rig.feed("temp", 90.0)
        await rig.advance(2)
        await rig.feed("temp", 50.0)
        assert await rig.advance(10) == []
        assert rig.journal() == []

        t_on = await rig.feed("temp", 91.0)
        assert await rig.advance(4.0) == []
        assert rig.record(HOT).state.process.value == "normal"
        [active] = await rig.advance(1.0)
        assert active.source_us == t_on + 5 * S
        assert row(active) == ("becomes_abnormal", "normal", "unacknowledged", 1, 91.0, True, "")

        # Normal again, then abnormal within the off-delay: it stays active.
        await rig.feed("temp", 50.0)
        await rig.advance(2.0)
        await rig.feed("temp", 95.0)
        assert await rig.advance(5) == []
        assert rig.record(HOT).state.process.value == "unacknowledged"

        t_off = await rig.feed("temp", 40.0)
        assert await rig.advance(2.5) == []
        [cleared] = await rig.advance(0.5)
        assert cleared.source_us == t_off + 3 * S
        assert row(cleared) == (
            "returns_to_normal", "unacknowledged", "rtn_unacknowledged", 1, 40.0, True, "",
        )  # fmt: skip
        assert [e.seq for e in rig.journal()] == [active.seq, cleared.seq]
        assert rig.stored(HOT) == rig.record(HOT)  # the store has what the engine holds
        await assert_events_mirror_journal(rig)


async def test_realarm_every_realarm_s_while_active_announced_unless_shelved(
    tmp_path: Path,
) -> None:
    # ISA-18.2 11.5 / IEC 62682 re-alarming: announced again after realarm_s while still active;
    # OPC UA Part 9 4.8: a shelved alarm is evaluated (journaled) but not announced.
    async with running_engine(tmp_path, hot(realarm_s=10)) as rig:
        t0 = await rig.feed("temp", 90.0)
        assert await rig.advance(9) == []
        first = await rig.advance(1)
        second = await rig.advance(10)
        assert [(e.source_us, row(e)) for e in first + second] == [
            (t0 + 10 * S, ("realarm", "unacknowledged", "unacknowledged", 1, 90.0, True, "")),
            (t0 + 20 * S, ("realarm", "unacknowledged", "unacknowledged", 1, 90.0, True, "")),
        ]
        await rig.command("shelve", id=HOT, duration_s=3600, user=OP)
        shelved = await rig.advance(10)
        assert [(e.source_us, row(e)) for e in shelved] == [
            (t0 + 30 * S, ("realarm", "shelved", "shelved", 1, 90.0, False, "")),
        ]
        await rig.command("unshelve", id=HOT, user=OP)
        await rig.feed("temp", 20.0)
        assert await rig.advance(60) == []  # cleared: no more re-alarms
        events = [e.event for e in rig.journal(HOT)]
        assert events == [
            "becomes_abnormal", "realarm", "realarm", "timed_shelve", "realarm", "unshelve",
            "returns_to_normal",
        ]  # fmt: skip
        await assert_events_mirror_journal(rig)


async def test_a_timed_shelve_expires_exactly_at_its_time_and_shows_the_process_state(
    tmp_path: Path,
) -> None:
    # OPC UA Part 9 5.8.17.4 TimedShelve and 5.8.17.1 (expiry back to Unshelved); ISA-18.2 11.5.
    async with running_engine(tmp_path, hot()) as rig:
        await rig.feed("temp", 90.0)
        await rig.advance(1)
        t_shelve = rig.now
        reply = await rig.command("shelve", id=HOT, duration_s=60, note="fixing", user=OP)
        alarm = reply["alarm"]
        assert (alarm["state"], alarm["shelving"], alarm["shelved_by"]) == ("shelved", "timed", OP)
        assert alarm["shelve_remaining_s"] == 60.0
        assert rig.stored(HOT).state.unshelve_at_us == t_shelve + 60 * S

        # Clears while shelved: journaled underneath, not announced.
        await rig.advance(20)
        t_clear = await rig.feed("temp", 30.0)
        assert await rig.advance(39) == []  # 59 s shelved: not yet
        assert rig.record(HOT).state.shown.value == "shelved"
        listed = await rig.command("list", states=["shelved"])
        assert [a["shelve_remaining_s"] for a in listed["alarms"]] == [1.0]
        [expiry] = await rig.advance(1)

        assert expiry.source_us == t_shelve + 60 * S
        entries = rig.journal(HOT)
        assert [(e.source_us, row(e)) for e in entries[1:]] == [
            (t_shelve, ("timed_shelve", "unacknowledged", "shelved", 1, 90.0, False, OP)),
            (t_clear, ("returns_to_normal", "shelved", "shelved", 1, 30.0, False, "")),
            (t_shelve + 60 * S,
             ("shelve_expiry", "shelved", "rtn_unacknowledged", 1, 30.0, True, "system")),
        ]  # fmt: skip
        assert entries[1].comment == "fixing"
        rec = rig.record(HOT)
        assert rec.state.shown.value == "rtn_unacknowledged"
        assert (rec.state.shelving.value, rec.state.unshelve_at_us, rec.shelved_by) == (
            "unshelved", None, "",
        )  # fmt: skip
        assert rig.stored(HOT) == rec
        await assert_events_mirror_journal(rig)


async def test_the_tick_loop_expires_a_shelve_by_itself(tmp_path: Path) -> None:
    # The same expiry without the test ticking: the engine's own loop (tick_s) finds it due.
    async with running_engine(tmp_path, hot(), tick_s=1.0) as rig:
        await rig.feed("temp", 90.0)
        t_shelve = rig.now
        await rig.command("shelve", id=HOT, duration_s=5, user=OP)
        await rig.clock.advance(4)
        assert rig.record(HOT).state.shown.value == "shelved"
        await rig.clock.advance(2)
        for _ in range(500):  # the loop's commit runs in a worker thread: real time passes
            if rig.record(HOT).state.shown.value != "shelved":
                break
            await asyncio.sleep(0.01)
        expiry = rig.journal(HOT)[-1]
        assert expiry.event == "shelve_expiry"
        assert t_shelve + 5 * S <= expiry.source_us <= t_shelve + 6 * S  # within one tick
        assert rig.record(HOT).state.shown.value == "unacknowledged"


async def test_a_one_shot_shelve_ends_when_the_alarm_returns_to_normal(tmp_path: Path) -> None:
    # OPC UA Part 9 5.8.17.6 OneShotShelve: shelved until the condition returns to normal.
    async with running_engine(tmp_path, hot()) as rig:
        await rig.feed("temp", 90.0)
        reply = await rig.command("shelve", id=HOT, one_shot=True, user=OP)
        assert (reply["alarm"]["state"], reply["alarm"]["shelving"]) == ("shelved", "one_shot")
        await rig.advance(30)
        await rig.feed("temp", 95.0)  # still abnormal: still shelved
        assert rig.record(HOT).state.shown.value == "shelved"
        await rig.feed("temp", 20.0)
        assert [row(e) for e in rig.journal(HOT)] == [
            ("becomes_abnormal", "normal", "unacknowledged", 1, 90.0, True, ""),
            ("one_shot_shelve", "unacknowledged", "shelved", 1, 90.0, False, OP),
            ("returns_to_normal", "shelved", "rtn_unacknowledged", 1, 20.0, True, ""),
        ]
        rec = rig.record(HOT)
        assert (rec.state.shelving.value, rec.shelved_by) == ("unshelved", "")
        # A one-shot shelve of an alarm that is not active would end at once: refused.
        with pytest.raises(CommandError, match="not active") as refused:
            await rig.command("shelve", id=HOT, one_shot=True, user=OP)
        assert refused.value.kind is CommandFailure.INVALID
        assert len(rig.journal(HOT)) == 3
        await assert_events_mirror_journal(rig)


async def test_a_latching_alarm_is_shown_until_acknowledged_and_reset(tmp_path: Path) -> None:
    # ISA-18.2 11.5 latched alarms; OPC UA Part 9 5.8.2 LatchedState and Reset (after Acknowledge).
    async with running_engine(tmp_path, hot(latching=True)) as rig:
        await rig.feed("temp", 90.0)
        await rig.advance(5)
        await rig.feed("temp", 20.0)
        assert rig.record(HOT).state.shown.value == "latched_unacknowledged"
        with pytest.raises(CommandError, match="acknowledge before resetting"):
            await rig.command("reset", id=HOT, user=OP)
        assert len(rig.journal(HOT)) == 2  # a refused action journals nothing

        await rig.advance(5)
        [result] = (await rig.command("ack", ids=[HOT], note="seen", user=OP))["results"]
        assert result["ok"] and result["alarm"]["state"] == "latched_acknowledged"
        await rig.advance(5)
        reply = await rig.command("reset", id=HOT, note="checked", user=OP)
        assert reply["alarm"]["state"] == "normal"
        entries = rig.journal(HOT)
        assert [row(e) for e in entries] == [
            ("becomes_abnormal", "normal", "unacknowledged", 1, 90.0, True, ""),
            ("returns_to_normal", "unacknowledged", "latched_unacknowledged", 1, 20.0, True, ""),
            ("acknowledge", "latched_unacknowledged", "latched_acknowledged", 1, 20.0, True, OP),
            ("reset", "latched_acknowledged", "normal", 1, 20.0, True, OP),
        ]
        assert [e.comment for e in entries[2:]] == ["seen", "checked"]
        assert rig.record(HOT).acked_by == OP
        await assert_events_mirror_journal(rig)


async def test_suppression_by_design_hides_the_alarm_while_its_condition_holds(
    tmp_path: Path,
) -> None:
    # ISA-18.2 11.5 / IEC 62682 suppressed by design (here: the machine is in planned stop);
    # OPC UA Part 9 5.8.2 SuppressedState and 4.8: evaluated and journaled, not announced.
    planned_stop = 1
    async with running_engine(tmp_path, hot(suppress_when='state == "planned_stop"')) as rig:
        await rig.feed("state", 0)  # running: not suppressed, nothing to journal
        assert rig.journal() == []
        t_stop = await rig.feed("state", planned_stop)
        t_hot = await rig.feed("temp", 90.0)
        listed = (await rig.command("list"))["alarms"]
        assert [(a["id"], a["state"], a["process_state"], a["suppressed"]) for a in listed] == [
            (HOT, "suppressed_by_design", "unacknowledged", True),
        ]
        events = await rig.published()
        assert [e.data["alarm"]["state"] for e in events] == ["suppressed_by_design"] * 2
        assert [e.data["entry"]["announced"] for e in events] == [False, False]

        await rig.advance(10)
        t_run = await rig.feed("state", 0)
        entries = rig.journal(HOT)
        assert [(e.source_us, row(e)) for e in entries] == [
            (t_stop,
             ("suppression_on", "normal", "suppressed_by_design", 0, None, False, "")),
            (t_hot,
             ("becomes_abnormal", "suppressed_by_design", "suppressed_by_design", 1, 90.0,
              False, "")),
            (t_run,
             ("suppression_off", "suppressed_by_design", "unacknowledged", 1, 90.0, True, "")),
        ]  # fmt: skip
        rec = rig.record(HOT)
        assert rec.state.shown.value == "unacknowledged"
        # Suppression changes carry no value of the alarm's tag: the record keeps its value and
        # limit (the console shows the temperature that is over the limit, not nothing).
        assert (rec.value, rec.limit) == (90.0, 80.0)
        assert [e.data["entry"]["announced"] for e in await rig.published()] == [True]


async def test_out_of_service_keeps_evaluating_without_announcing(tmp_path: Path) -> None:
    # ISA-18.2 11.5 out of service (with a reason); OPC UA Part 9 5.8.2 OutOfServiceState, 4.8.
    async with running_engine(tmp_path, hot()) as rig:
        await rig.feed("temp", 90.0)
        with pytest.raises(CommandError, match="needs a reason"):
            await rig.command("out_of_service", id=HOT, on=True, user=OP)
        reply = await rig.command("out_of_service", id=HOT, on=True, reason="sensor swap", user=OP)
        assert reply["alarm"]["state"] == "out_of_service"
        assert reply["alarm"]["out_of_service_reason"] == "sensor swap"
        await rig.advance(1)
        await rig.feed("temp", 20.0)
        await rig.advance(1)
        await rig.feed("temp", 99.0)  # activates again after clearing: occurrence 2, hidden
        await rig.advance(1)
        await rig.feed("temp", 21.0)
        await rig.advance(1)
        await rig.command("out_of_service", id=HOT, on=False, user=OP)
        entries = rig.journal(HOT)
        assert [row(e) for e in entries] == [
            ("becomes_abnormal", "normal", "unacknowledged", 1, 90.0, True, ""),
            ("out_of_service_on", "unacknowledged", "out_of_service", 1, 90.0, False, OP),
            ("returns_to_normal", "out_of_service", "out_of_service", 1, 20.0, False, ""),
            ("becomes_abnormal", "out_of_service", "out_of_service", 2, 99.0, False, ""),
            ("returns_to_normal", "out_of_service", "out_of_service", 2, 21.0, False, ""),
            ("out_of_service_off", "out_of_service", "rtn_unacknowledged", 2, 21.0, True, OP),
        ]
        assert entries[1].comment == "sensor swap"
        rec = rig.record(HOT)
        assert (rec.state.out_of_service, rec.out_of_service_reason) == (False, "")
        await assert_events_mirror_journal(rig)


async def test_activating_again_after_clearing_opens_a_new_occurrence(tmp_path: Path) -> None:
    # ISA-18.2 11.5: from normal, return-to-normal unacknowledged or latched, a new activation.
    async with running_engine(tmp_path, hot()) as rig:
        t1 = await rig.feed("temp", 90.0)
        await rig.command("ack", ids=[HOT], user=OP)
        await rig.advance(1)
        await rig.feed("temp", 20.0)  # acknowledged, then normal: normal
        await rig.advance(1)
        t2 = await rig.feed("temp", 91.0)
        rec = rig.record(HOT)
        assert (rec.state.occurrence, rec.active_since_us, rec.acked_by) == (2, t2, "")
        await rig.advance(1)
        await rig.feed("temp", 20.0)  # unacknowledged, then normal: rtn_unacknowledged
        await rig.advance(1)
        t3 = await rig.feed("temp", 92.0)
        entries = rig.journal(HOT)
        assert [row(e) for e in entries] == [
            ("becomes_abnormal", "normal", "unacknowledged", 1, 90.0, True, ""),
            ("acknowledge", "unacknowledged", "acknowledged", 1, 90.0, True, OP),
            ("returns_to_normal", "acknowledged", "normal", 1, 20.0, True, ""),
            ("becomes_abnormal", "normal", "unacknowledged", 2, 91.0, True, ""),
            ("returns_to_normal", "unacknowledged", "rtn_unacknowledged", 2, 20.0, True, ""),
            ("becomes_abnormal", "rtn_unacknowledged", "unacknowledged", 3, 92.0, True, ""),
        ]
        assert [e.source_us for e in entries if e.event == "becomes_abnormal"] == [t1, t2, t3]
        assert rig.record(HOT).active_since_us == t3
        await assert_events_mirror_journal(rig)


async def test_a_transition_whose_event_failed_is_published_from_the_journal(
    tmp_path: Path,
) -> None:
    """The journal is the outbox: an entry committed while the bus refused its event goes out
    at the next tick, in journal order, with the same event id (listeners drop duplicates)."""
    hot = {"kind": "limit", "name": "hot", "tag": "temp", "hi": {"value": 80}}
    async with running_engine(tmp_path, hot) as rig:
        bus = rig.platform.bus
        real = bus.publish_event
        down = [True]

        async def flaky(event: BusEvent) -> int:
            if down[0]:
                raise BusError("the broker is away")
            return await real(event)

        bus.publish_event = flaky  # type: ignore[method-assign]
        await rig.feed("temp", 90.0)
        assert [e.event for e in rig.journal()] == ["becomes_abnormal"]
        assert await rig.published() == []
        down[0] = False
        await rig.advance(1)
        (event,) = await rig.published()
        (entry,) = rig.journal()
        assert event.id == f"{entry.alarm_id}#{entry.seq}"
        assert event.data["entry"]["event"] == "becomes_abnormal"
        await rig.feed("temp", 50.0)
        assert [e.data["entry"]["event"] for e in await rig.published()] == ["returns_to_normal"]
