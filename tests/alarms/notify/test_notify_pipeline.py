"""The pipeline runner, pure, on a fake clock: which alarms start runs, and the timing of
delay, escalate, remind and consolidate blocks, switch branches and per-user minimum priority.

ISA-18.2 / IEC 62682 leave notification outside the operator's console to the alarm
philosophy; what is checked here is the behaviour issue 14 asks for ("escalate when not
acknowledged within N", "remind every N until acknowledged", "collect for T, send at most
once per U").
"""

from __future__ import annotations

from typing import Any

import pytest
from notify_helpers import FILLER_JAM, LINE10, MILL_TEMP, S, entry, event_data

from kiln.alarms.definitions import Priority
from kiln.alarms.notify.model import NotifyState, Send
from kiln.alarms.notify.pipeline import Runner
from kiln.alarms.notify.settings import NotificationSettings
from kiln.testing import FakeClock

USERS = [
    {"name": "alice", "webhook": "http://127.0.0.1:1/alice"},
    {"name": "bob", "webhook": "http://127.0.0.1:1/bob", "min_priority": "high"},
    {"name": "sup", "webhook": "http://127.0.0.1:1/sup"},
    {"name": "ops", "webhook": "http://127.0.0.1:1/ops", "email": "ops@example.com",
     "channels": ["email", "webhook"]},
]  # fmt: skip
SMTP = {"host": "127.0.0.1", "sender": "kiln@example.com", "starttls": False}


def settings(*pipelines: dict[str, Any]) -> NotificationSettings:
    return NotificationSettings.model_validate(
        {"users": USERS, "smtp": SMTP, "pipelines": list(pipelines)}
    )


class Harness:
    """A runner on a fake clock: each timer fires at its own instant, as the service does."""

    def __init__(self, *pipelines: dict[str, Any]) -> None:
        self.clock = FakeClock()
        self.start_us = self.clock.now_us()
        self.runner = Runner(settings(*pipelines))
        self.sent: list[tuple[float, Send]] = []

    def at(self) -> float:
        return (self.clock.now_us() - self.start_us) / S

    def event(self, alarm_id: str, event: str, **kw: Any) -> list[Send]:
        e = entry(alarm_id, event, at_us=self.clock.now_us(), **kw)
        sends = self.runner.on_transition(event_data(e), self.clock.now_us())
        self.sent += [(self.at(), s) for s in sends]
        return sends

    async def advance(self, seconds: float) -> None:
        target = self.clock.now_us() + round(seconds * S)
        while (due := self.runner.next_due_us()) is not None and due <= target:
            await self.clock.advance(max(due - self.clock.now_us(), 0) / S)
            self.sent += [(self.at(), s) for s in self.runner.fire_due(self.clock.now_us())]
        await self.clock.advance((target - self.clock.now_us()) / S)

    def to(self, user: str, kind: str | None = None) -> list[tuple[float, Send]]:
        return [(t, s) for t, s in self.sent if s.user == user and kind in (None, s.kind)]


def notify(*users: str, **kw: Any) -> dict[str, Any]:
    return {"kind": "notify", "users": list(users), **kw}


# -- which alarms start a run -------------------------------------------------------------------


def test_an_announced_activation_notifies_each_user_on_each_wanted_channel() -> None:
    h = Harness({"name": "p", "blocks": [notify("alice", "ops")]})
    sends = h.event(MILL_TEMP, "becomes_abnormal")
    assert sorted((s.user, s.channel, s.address) for s in sends) == [
        ("alice", "webhook", "http://127.0.0.1:1/alice"),
        ("ops", "email", "ops@example.com"),
        ("ops", "webhook", "http://127.0.0.1:1/ops"),
    ]
    assert {s.first.alarm_id for s in sends} == {MILL_TEMP}
    assert {s.first.event for s in sends} == {"activation"}


def test_a_block_can_limit_the_channels() -> None:
    h = Harness({"name": "p", "blocks": [notify("ops", channels=["email"])]})
    assert [s.channel for s in h.event(MILL_TEMP, "becomes_abnormal")] == ["email"]


def test_unannounced_entries_start_nothing() -> None:
    # A shelved, suppressed or out-of-service alarm is journaled but not announced.
    h = Harness({"name": "p", "on": "both", "blocks": [notify("alice")]})
    assert h.event(MILL_TEMP, "becomes_abnormal", announced=False) == []
    assert h.event(MILL_TEMP, "returns_to_normal", announced=False) == []
    assert h.event(MILL_TEMP, "acknowledge") == []


@pytest.mark.parametrize(
    ("on", "activation", "clear"),
    [("activation", 1, 0), ("clear", 0, 1), ("both", 1, 1)],
)
def test_on_selects_activation_clear_or_both(on: str, activation: int, clear: int) -> None:
    h = Harness({"name": "p", "on": on, "blocks": [notify("alice")]})
    assert len(h.event(MILL_TEMP, "becomes_abnormal")) == activation
    cleared = h.event(MILL_TEMP, "returns_to_normal")
    assert len(cleared) == clear
    assert all(s.first.event == "clear" for s in cleared)


def test_priorities_and_subtree_select_pipelines_segment_wise() -> None:
    h = Harness(
        {"name": "line1", "subtree": "acme/p1/line1", "blocks": [notify("alice")]},
        {"name": "crit", "priorities": ["critical"], "blocks": [notify("sup")]},
    )
    assert [s.pipeline for s in h.event(MILL_TEMP, "becomes_abnormal")] == ["line1"]
    assert h.event(LINE10, "becomes_abnormal") == []  # line10 is not under line1
    sends = h.event(LINE10, "becomes_abnormal", priority=Priority.CRITICAL, occurrence=2)
    assert [(s.pipeline, s.user) for s in sends] == [("crit", "sup")]


def test_min_priority_filters_per_user() -> None:
    h = Harness({"name": "p", "blocks": [notify("alice", "bob")]})
    medium = h.event(MILL_TEMP, "becomes_abnormal", priority=Priority.MEDIUM)
    assert [s.user for s in medium] == ["alice"]  # bob wants high and above
    high = h.event(FILLER_JAM, "becomes_abnormal", priority=Priority.HIGH)
    assert sorted(s.user for s in high) == ["alice", "bob"]


def test_handling_an_event_twice_makes_the_same_delivery_ids() -> None:
    # A redelivered event (a crash between commit and bus ack) adds nothing new to the store.
    h = Harness({"name": "p", "blocks": [notify("alice", "sup")]})
    first = {s.id for s in h.event(MILL_TEMP, "becomes_abnormal")}
    again = {s.id for s in h.event(MILL_TEMP, "becomes_abnormal")}
    assert first == again
    assert len(first) == 2
    next_occurrence = {s.id for s in h.event(MILL_TEMP, "becomes_abnormal", occurrence=2)}
    assert not next_occurrence & first


# -- delay and escalate -------------------------------------------------------------------------


async def test_delay_holds_the_rest_of_the_pipeline_for_exactly_its_seconds() -> None:
    h = Harness({"name": "p", "blocks": [{"kind": "delay", "seconds": 30}, notify("alice")]})
    h.event(MILL_TEMP, "becomes_abnormal")
    await h.advance(29.999)
    assert h.sent == []
    await h.advance(0.001)
    assert [t for t, _ in h.to("alice")] == [30.0]


ESCALATE = {
    "name": "p",
    "blocks": [notify("alice"), {"kind": "escalate", "after_s": 300, "users": ["sup"]}],
}


async def test_escalation_at_exactly_n_seconds_when_not_acknowledged() -> None:
    h = Harness(ESCALATE)
    h.event(MILL_TEMP, "becomes_abnormal")
    await h.advance(299.9)
    assert h.to("sup") == []
    await h.advance(0.1)
    escalations = h.to("sup", "escalate")
    assert [t for t, _ in escalations] == [300.0]
    await h.advance(3600)
    assert len(h.to("sup")) == 1  # once


async def test_no_escalation_when_acknowledged_in_time() -> None:
    h = Harness(ESCALATE)
    h.event(MILL_TEMP, "becomes_abnormal")
    await h.advance(299)
    h.event(MILL_TEMP, "acknowledge")
    await h.advance(3600)
    assert h.to("sup") == []
    assert h.runner.state.timers == {}


async def test_an_ack_of_another_occurrence_does_not_stop_the_escalation() -> None:
    h = Harness(ESCALATE)
    h.event(MILL_TEMP, "becomes_abnormal", occurrence=2)
    h.event(MILL_TEMP, "acknowledge", occurrence=1)
    await h.advance(300)
    assert len(h.to("sup")) == 1


async def test_an_escalation_reached_after_the_ack_is_skipped() -> None:
    h = Harness(
        {"name": "p", "blocks": [{"kind": "delay", "seconds": 60},
                                 {"kind": "escalate", "after_s": 60, "users": ["sup"]}]}
    )  # fmt: skip
    h.event(MILL_TEMP, "becomes_abnormal")
    await h.advance(10)
    h.event(MILL_TEMP, "acknowledge")
    await h.advance(600)
    assert h.sent == []


# -- remind -------------------------------------------------------------------------------------

REMIND = {
    "name": "p",
    "blocks": [notify("alice"), {"kind": "remind", "every_s": 60, "count": 5}],
}


async def test_reminders_every_n_seconds_until_acknowledged() -> None:
    h = Harness(REMIND)
    h.event(MILL_TEMP, "becomes_abnormal")
    await h.advance(150)
    h.event(MILL_TEMP, "acknowledge")
    await h.advance(3600)
    reminders = h.to("alice", "remind")
    assert [t for t, _ in reminders] == [60.0, 120.0]
    assert [s.reminder for _, s in reminders] == [1, 2]
    # Reminders go to whoever the run had notified (the block names nobody).
    assert {s.address for _, s in reminders} == {"http://127.0.0.1:1/alice"}


async def test_reminders_stop_at_their_count() -> None:
    h = Harness(REMIND)
    h.event(MILL_TEMP, "becomes_abnormal")
    await h.advance(3600)
    assert [t for t, _ in h.to("alice", "remind")] == [60.0, 120.0, 180.0, 240.0, 300.0]


async def test_a_clear_stops_reminders() -> None:
    h = Harness(REMIND)
    h.event(MILL_TEMP, "becomes_abnormal")
    await h.advance(61)
    h.event(MILL_TEMP, "returns_to_normal")
    await h.advance(3600)
    assert len(h.to("alice", "remind")) == 1


# -- consolidate --------------------------------------------------------------------------------

CONSOLIDATE = {
    "name": "digest",
    "blocks": [{"kind": "consolidate", "window_s": 60, "min_interval_s": 600, "users": ["sup"]}],
}


async def test_consolidate_collects_for_t_and_sends_one_message_listing_all() -> None:
    h = Harness(CONSOLIDATE)
    h.event(MILL_TEMP, "becomes_abnormal")
    await h.advance(20)
    h.event(FILLER_JAM, "becomes_abnormal")
    await h.advance(20)
    h.event(LINE10, "becomes_abnormal")
    await h.advance(19.9)
    assert h.sent == []
    await h.advance(0.1)
    [(t, send)] = h.to("sup")
    assert t == 60.0
    assert send.kind == "consolidate"
    assert [a.alarm_id for a in send.alarms] == [MILL_TEMP, FILLER_JAM, LINE10]


async def test_consolidate_sends_at_most_once_per_u() -> None:
    h = Harness(CONSOLIDATE)
    h.event(MILL_TEMP, "becomes_abnormal")
    await h.advance(60)  # first message at 60 s
    h.event(FILLER_JAM, "becomes_abnormal")  # its window would close at 120 s
    await h.advance(100)
    h.event(LINE10, "becomes_abnormal")
    await h.advance(600)
    times = [t for t, _ in h.to("sup")]
    assert times == [60.0, 660.0]  # not before 60 + 600
    assert [a.alarm_id for a in h.to("sup")[1][1].alarms] == [FILLER_JAM, LINE10]


async def test_consolidate_respects_min_priority_per_user() -> None:
    h = Harness(
        {"name": "d", "blocks": [{"kind": "consolidate", "window_s": 10, "users": ["bob"]}]}
    )
    h.event(MILL_TEMP, "becomes_abnormal", priority=Priority.LOW)
    h.event(FILLER_JAM, "becomes_abnormal", priority=Priority.CRITICAL)
    await h.advance(10)
    [(_, send)] = h.to("bob")
    assert [a.alarm_id for a in send.alarms] == [FILLER_JAM]


# -- switch -------------------------------------------------------------------------------------

SWITCH = {
    "name": "p",
    "on": "both",
    "blocks": [
        {
            "kind": "switch",
            "expression": "priority == 'critical' and event == 'activation'",
            "then": [notify("sup"), {"kind": "delay", "seconds": 10}],
            "else": [notify("alice")],
        },
        notify("ops", channels=["webhook"]),
    ],
}


async def test_switch_takes_then_or_else_and_goes_on_after_it() -> None:
    h = Harness(SWITCH)
    h.event(MILL_TEMP, "becomes_abnormal", priority=Priority.CRITICAL)
    assert [s.user for _, s in h.sent] == ["sup"]
    await h.advance(10)  # the delay inside the branch, then the block after the switch
    assert [(t, s.user) for t, s in h.sent] == [(0.0, "sup"), (10.0, "ops")]
    h.sent.clear()
    h.event(MILL_TEMP, "returns_to_normal", priority=Priority.CRITICAL)
    assert [s.user for _, s in h.sent] == ["alice", "ops"]


def test_switch_on_the_value() -> None:
    h = Harness(
        {"name": "p", "blocks": [{"kind": "switch", "expression": "value > 100",
                                  "then": [notify("sup")], "else": [notify("alice")]}]}
    )  # fmt: skip
    assert [s.user for s in h.event(MILL_TEMP, "becomes_abnormal", value=120.0)] == ["sup"]
    assert [s.user for s in h.event(FILLER_JAM, "becomes_abnormal", value=80.0)] == ["alice"]
    # A value the expression cannot compare (a state name) takes the else branch.
    assert [s.user for s in h.event(LINE10, "becomes_abnormal", value="fault")] == ["alice"]


# -- state --------------------------------------------------------------------------------------


async def test_state_survives_its_json_round_trip() -> None:
    h = Harness(ESCALATE, CONSOLIDATE | {"name": "digest"})
    h.event(MILL_TEMP, "becomes_abnormal")
    state = h.runner.state
    copy = NotifyState()
    for kind, key in state.dirty:
        body = state.body(kind, key)
        if body is not None:
            copy.load(kind, key, body)
    assert copy.timers == state.timers
    assert copy.buckets == state.buckets
    assert {t.kind for t in copy.timers.values()} == {"escalate", "consolidate"}
