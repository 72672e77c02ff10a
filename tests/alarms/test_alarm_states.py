"""The alarm state machine: every (shown state, event) cell, and the timed behaviours."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kiln.alarms.states import (
    PROCESS_STATES,
    TABLE,
    AlarmState,
    Event,
    Outcome,
    Shelving,
    State,
    Target,
    TransitionRefused,
    remaining_shelve_us,
    transition,
)

NOW = 1_700_000_000_000_000  # microseconds since the epoch
S = 1_000_000

# A representative alarm for each shown state. Overlays sit on an active, unacknowledged alarm
# with a timed shelve due now underneath, so that events applied underneath change something.
_HIDDEN = AlarmState(
    process=State.UNACKNOWLEDGED, occurrence=1, shelving=Shelving.TIMED, unshelve_at_us=NOW
)
START: dict[State, AlarmState] = {
    State.NORMAL: AlarmState(),
    State.UNACKNOWLEDGED: AlarmState(process=State.UNACKNOWLEDGED, occurrence=1),
    State.ACKNOWLEDGED: AlarmState(process=State.ACKNOWLEDGED, occurrence=1),
    State.RTN_UNACKNOWLEDGED: AlarmState(process=State.RTN_UNACKNOWLEDGED, occurrence=1),
    State.LATCHED_UNACKNOWLEDGED: AlarmState(process=State.LATCHED_UNACKNOWLEDGED, occurrence=1),
    State.LATCHED_ACKNOWLEDGED: AlarmState(process=State.LATCHED_ACKNOWLEDGED, occurrence=1),
    State.SHELVED: _HIDDEN,
    State.SUPPRESSED: replace(_HIDDEN, suppressed=True),
    State.OUT_OF_SERVICE: replace(_HIDDEN, out_of_service=True),
}

IGN, REF, UNDER = "ignored", "refused", "underneath"
N, UA, AK, RTN = (
    State.NORMAL,
    State.UNACKNOWLEDGED,
    State.ACKNOWLEDGED,
    State.RTN_UNACKNOWLEDGED,
)
LU, LA = State.LATCHED_UNACKNOWLEDGED, State.LATCHED_ACKNOWLEDGED
SH, SUP, OOS = State.SHELVED, State.SUPPRESSED, State.OUT_OF_SERVICE

# Columns: the events in this order.
EVENTS = (
    Event.BECOMES_ABNORMAL,
    Event.RETURNS_TO_NORMAL,
    Event.ACKNOWLEDGE,
    Event.RESET,
    Event.TIMED_SHELVE,
    Event.ONE_SHOT_SHELVE,
    Event.UNSHELVE,
    Event.SHELVE_EXPIRY,
    Event.SUPPRESSION_ON,
    Event.SUPPRESSION_OFF,
    Event.OUT_OF_SERVICE_ON,
    Event.OUT_OF_SERVICE_OFF,
)
# What each cell does, written out independently of the module's table: the shown state after
# the event, or ignored / refused / applied underneath an overlay.
EXPECTED: dict[State, tuple[State | str, ...]] = {
    N: (UA, IGN, REF, REF, SH, REF, REF, IGN, SUP, IGN, OOS, IGN),
    UA: (IGN, RTN, AK, REF, SH, SH, REF, IGN, SUP, IGN, OOS, IGN),
    AK: (IGN, N, REF, REF, SH, SH, REF, IGN, SUP, IGN, OOS, IGN),
    RTN: (UA, IGN, N, REF, SH, REF, REF, IGN, SUP, IGN, OOS, IGN),
    LU: (UA, IGN, LA, REF, SH, REF, REF, IGN, SUP, IGN, OOS, IGN),
    LA: (UA, IGN, REF, N, SH, REF, REF, IGN, SUP, IGN, OOS, IGN),
    # Unshelve and expiry reveal the active alarm underneath.
    SH: (IGN, UNDER, UNDER, REF, SH, SH, UA, UA, SUP, IGN, OOS, IGN),
    # Lifting suppression reveals the shelve still set underneath.
    SUP: (IGN, UNDER, UNDER, REF, REF, REF, REF, UNDER, IGN, SH, OOS, IGN),
    OOS: (IGN, UNDER, UNDER, REF, REF, REF, REF, UNDER, UNDER, IGN, IGN, SH),
}
# The clause each cell must cite (a fragment of its row's clause).
CLAUSE = {
    Event.BECOMES_ABNORMAL: "11.5",
    Event.RETURNS_TO_NORMAL: "11.5",
    Event.ACKNOWLEDGE: "5.7.3",
    Event.RESET: "5.8.2",
    Event.TIMED_SHELVE: "5.8.17.4",
    Event.ONE_SHOT_SHELVE: "5.8.17.6",
    Event.UNSHELVE: "5.8.17.2",
    Event.SHELVE_EXPIRY: "5.8.17.1",
    Event.SUPPRESSION_ON: "5.8.2",
    Event.SUPPRESSION_OFF: "5.8.2",
    Event.OUT_OF_SERVICE_ON: "5.8.2",
    Event.OUT_OF_SERVICE_OFF: "5.8.2",
}
UNDERNEATH_CLAUSE = "4.8"  # OPC UA Part 9: hidden alarms stay functional


def _clause(state: State, event: Event) -> str:
    if state not in PROCESS_STATES and event in (
        Event.BECOMES_ABNORMAL,
        Event.RETURNS_TO_NORMAL,
        Event.ACKNOWLEDGE,
    ):
        return UNDERNEATH_CLAUSE
    return CLAUSE[event]


CELLS = [
    pytest.param(state, event, expected, _clause(state, event), id=f"{state}-{event}")
    for state, row in EXPECTED.items()
    for event, expected in zip(EVENTS, row, strict=True)
]


def test_every_cell_is_in_the_table_and_in_the_expectations() -> None:
    cells = {(s, e) for s in State for e in Event}
    assert set(TABLE) == cells
    assert {(s, e) for s in EXPECTED for e in EVENTS} == cells
    assert all(row.clause for row in TABLE.values())


@pytest.mark.parametrize(("state", "event", "expected", "clause"), CELLS)
def test_cell(state: State, event: Event, expected: State | str, clause: str) -> None:
    start = START[state]
    assert start.shown is state
    if expected == REF:
        with pytest.raises(TransitionRefused) as refused:
            transition(start, event, now_us=NOW, shelve_s=600)
        assert clause in refused.value.clause
        return
    done = transition(start, event, now_us=NOW, shelve_s=600)
    assert clause in done.clause, done.clause
    if expected == IGN:
        assert done.outcome is Outcome.IGNORED
        assert done.new == start
        assert not done.announced
    elif expected == UNDER:
        assert done.outcome is Outcome.UNDERNEATH
        assert done.new.shown is state
        assert done.new != start
        assert not done.announced
    else:
        assert done.outcome is Outcome.MOVE
        assert done.new.shown is expected
        # The module's row says the same (a reveal row names no fixed state).
        target = TABLE[state, event].target
        assert target is expected or target is Target.REVEAL
        # Announced exactly when the operator is shown the alarm afterwards.
        assert done.announced is (expected in PROCESS_STATES)


def test_timed_shelve_longer_than_the_maximum_is_refused() -> None:
    active = AlarmState(process=State.UNACKNOWLEDGED, occurrence=1)
    with pytest.raises(TransitionRefused, match="at most 3600 s"):
        transition(active, Event.TIMED_SHELVE, now_us=NOW, shelve_s=3601, max_shelve_s=3600)
    with pytest.raises(TransitionRefused, match="above 0"):
        transition(active, Event.TIMED_SHELVE, now_us=NOW, shelve_s=0)
    with pytest.raises(TransitionRefused):
        transition(active, Event.TIMED_SHELVE, now_us=NOW)  # no duration given
    at_max = transition(active, Event.TIMED_SHELVE, now_us=NOW, shelve_s=3600, max_shelve_s=3600)
    assert at_max.new.unshelve_at_us == NOW + 3600 * S


def test_shelving_again_replaces_the_remaining_time_and_remaining_time_counts_down() -> None:
    active = AlarmState(process=State.UNACKNOWLEDGED, occurrence=1)
    first = transition(active, Event.TIMED_SHELVE, now_us=NOW, shelve_s=600).new
    assert remaining_shelve_us(first, NOW) == 600 * S
    assert remaining_shelve_us(first, NOW + 100 * S) == 500 * S
    # Re-shelved for 60 s at +100 s: 60 s from then, not what was left of the first.
    second = transition(first, Event.TIMED_SHELVE, now_us=NOW + 100 * S, shelve_s=60).new
    assert remaining_shelve_us(second, NOW + 100 * S) == 60 * S
    assert remaining_shelve_us(second, NOW + 200 * S) == 0
    assert remaining_shelve_us(active, NOW) is None
    # The second shelve's timer, due at +160 s, ends it.
    expired = transition(second, Event.SHELVE_EXPIRY, now_us=NOW + 160 * S)
    assert expired.new.shown is State.UNACKNOWLEDGED
    assert expired.announced


def test_a_stale_expiry_timer_changes_nothing() -> None:
    active = AlarmState(process=State.UNACKNOWLEDGED, occurrence=1)
    first = transition(active, Event.TIMED_SHELVE, now_us=NOW, shelve_s=60).new
    longer = transition(first, Event.TIMED_SHELVE, now_us=NOW + 30 * S, shelve_s=600).new
    stale = transition(longer, Event.SHELVE_EXPIRY, now_us=NOW + 60 * S)
    assert stale.outcome is Outcome.IGNORED
    assert stale.new.shown is State.SHELVED


def test_one_shot_shelve_ends_when_the_alarm_returns_to_normal() -> None:
    active = AlarmState(process=State.ACKNOWLEDGED, occurrence=1)
    shelved = transition(active, Event.ONE_SHOT_SHELVE, now_us=NOW).new
    assert shelved.shelving is Shelving.ONE_SHOT
    # Bounded by the maximum shelve time too (OPC UA Part 9 MaxTimeShelved).
    assert remaining_shelve_us(shelved, NOW) == 8 * 3600 * S
    cleared = transition(shelved, Event.RETURNS_TO_NORMAL, now_us=NOW + S)
    assert cleared.new.shelving is Shelving.UNSHELVED
    assert cleared.new.shown is State.NORMAL
    # A timed shelve does not end at return to normal.
    timed = transition(active, Event.TIMED_SHELVE, now_us=NOW, shelve_s=600).new
    still = transition(timed, Event.RETURNS_TO_NORMAL, now_us=NOW + S)
    assert still.new.shown is State.SHELVED
    assert still.new.process is State.NORMAL
    assert not still.announced


def test_an_alarm_that_activates_again_after_clearing_opens_a_new_occurrence() -> None:
    state = AlarmState()
    first = transition(state, Event.BECOMES_ABNORMAL, now_us=NOW)
    assert first.new_occurrence
    assert first.new.occurrence == 1
    again = transition(first.new, Event.BECOMES_ABNORMAL, now_us=NOW + S)
    assert not again.new_occurrence
    cleared = transition(first.new, Event.RETURNS_TO_NORMAL, now_us=NOW + 2 * S).new
    assert cleared.process is State.RTN_UNACKNOWLEDGED
    back = transition(cleared, Event.BECOMES_ABNORMAL, now_us=NOW + 3 * S)
    assert back.new_occurrence
    assert back.new.occurrence == 2
    # Underneath a shelve, the occurrence is still counted but not announced.
    shelved = transition(cleared, Event.TIMED_SHELVE, now_us=NOW, shelve_s=600).new
    hidden = transition(shelved, Event.BECOMES_ABNORMAL, now_us=NOW + 4 * S)
    assert hidden.new_occurrence
    assert hidden.new.process is State.UNACKNOWLEDGED
    assert not hidden.announced


def test_a_latching_alarm_stays_latched_until_reset_after_return_to_normal() -> None:
    active = transition(AlarmState(), Event.BECOMES_ABNORMAL, now_us=NOW, latching=True).new
    with pytest.raises(TransitionRefused, match="still active"):
        transition(active, Event.RESET, now_us=NOW, latching=True)
    latched = transition(active, Event.RETURNS_TO_NORMAL, now_us=NOW + S, latching=True).new
    assert latched.shown is State.LATCHED_UNACKNOWLEDGED
    with pytest.raises(TransitionRefused, match="acknowledge before resetting"):
        transition(latched, Event.RESET, now_us=NOW + 2 * S, latching=True)
    acked = transition(latched, Event.ACKNOWLEDGE, now_us=NOW + 2 * S, latching=True).new
    assert acked.shown is State.LATCHED_ACKNOWLEDGED
    # Still latched: returning to normal again changes nothing.
    idle = transition(acked, Event.RETURNS_TO_NORMAL, now_us=NOW + 3 * S, latching=True)
    assert idle.outcome is Outcome.IGNORED
    reset = transition(acked, Event.RESET, now_us=NOW + 4 * S, latching=True)
    assert reset.new.shown is State.NORMAL
    assert reset.announced
    # Acknowledged while active, a latching alarm still latches when it clears.
    acked_active = transition(active, Event.ACKNOWLEDGE, now_us=NOW, latching=True).new
    cleared = transition(acked_active, Event.RETURNS_TO_NORMAL, now_us=NOW + S, latching=True)
    assert cleared.new.shown is State.LATCHED_ACKNOWLEDGED
    # Without latching the same alarm goes straight back to normal.
    plain = transition(acked_active, Event.RETURNS_TO_NORMAL, now_us=NOW + S)
    assert plain.new.shown is State.NORMAL


def test_out_of_service_hides_suppression_and_shelving_and_reveals_them_in_order() -> None:
    active = AlarmState(process=State.UNACKNOWLEDGED, occurrence=1)
    shelved = transition(active, Event.TIMED_SHELVE, now_us=NOW, shelve_s=600).new
    suppressed = transition(shelved, Event.SUPPRESSION_ON, now_us=NOW).new
    out = transition(suppressed, Event.OUT_OF_SERVICE_ON, now_us=NOW).new
    assert out.shown is State.OUT_OF_SERVICE
    # The shelve expires underneath while out of service.
    out = transition(out, Event.SHELVE_EXPIRY, now_us=NOW + 600 * S).new
    back = transition(out, Event.OUT_OF_SERVICE_OFF, now_us=NOW + 601 * S)
    assert back.new.shown is State.SUPPRESSED
    assert not back.announced
    shown = transition(back.new, Event.SUPPRESSION_OFF, now_us=NOW + 602 * S)
    assert shown.new.shown is State.UNACKNOWLEDGED
    assert shown.announced
