"""The alarm state machine of ISA-18.2 / IEC 62682 and OPC UA Part 9, as data: a pure module.

`TABLE` holds one `Row` per (shown state, event): where the alarm goes, or that the event is
ignored or refused, and the clause the row comes from. `transition()` only reads the table and
applies the event to the alarm's state; nothing here reads a clock, sleeps or does I/O: time is
the `now_us` argument (microseconds since the epoch, the `kiln.core.clock` convention).

Two dimensions, kept apart as the standards keep them apart:

- The **process / acknowledgement** state: normal, unacknowledged, acknowledged,
  return-to-normal unacknowledged, latched unacknowledged, latched acknowledged (ISA-18.2-2016
  and IEC 62682:2014 clause 11.5, the alarm state transition diagram; OPC UA Part 9 5.7 and 5.8:
  ActiveState, AckedState, LatchedState of AcknowledgeableConditionType and AlarmConditionType).
- **Shelved, suppressed by design and out of service** are overlays on top of it. OPC UA Part 9
  models them as separate sub-state machines of AlarmConditionType (ShelvingState 5.8.17,
  SuppressedState and OutOfServiceState 5.8.2), and says such alarms stay fully functional
  (4.8); ISA-18.2 11.5 draws them as states the alarm returns from to whatever its process
  state is by then. So a shelved, suppressed or out-of-service alarm keeps being evaluated: its
  process state still changes underneath (journaled, a new occurrence still counted), it is just
  not announced. The state an operator is shown is the highest overlay set (out of service over
  suppressed over shelved), else the process state; the table is keyed by that shown state.

Choices where the standards leave room, each stated in its row's note: acknowledging an alarm
that needs no acknowledgement, unshelving one that is not shelved, or resetting one that is not
latched is *refused* (an operator asked for something that cannot be done and should be told,
as OPC UA's Bad_ConditionBranchAlreadyAcked / Bad_ConditionNotShelved do); a process event that
changes nothing is *ignored*. An alarm whose condition activates after having cleared (normal,
return-to-normal unacknowledged or latched) opens a new occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

# Where the rows come from. Clause numbers: ISA-18.2-2016 and IEC 62682:2014 share clause 11.5
# (alarm states and the state transition diagram; the number from secondary sources, not the
# standard's own text); OPC UA Part 9 numbering is that of v1.05, checked against the OPC
# Foundation's online reference.
ISA = "ISA-18.2-2016 11.5 / IEC 62682:2014 11.5"
UA_ACK = "OPC UA Part 9 5.7.3 (Acknowledge)"
UA_LATCHED = "OPC UA Part 9 5.8.2 (LatchedState, Reset)"
UA_SHELVING = "OPC UA Part 9 5.8.17.1 (ShelvedStateMachineType)"
UA_TIMED = "OPC UA Part 9 5.8.17.4 (TimedShelve)"
UA_ONE_SHOT = "OPC UA Part 9 5.8.17.6 (OneShotShelve)"
UA_UNSHELVE = "OPC UA Part 9 5.8.17.2 (Unshelve)"
UA_SUPPRESSED = "OPC UA Part 9 5.8.2 (SuppressedState)"
UA_OUT_OF_SERVICE = "OPC UA Part 9 5.8.2 (OutOfServiceState)"
UA_FUNCTIONAL = "OPC UA Part 9 4.8 (shelved, suppressed, out of service stay functional)"

# Default upper bound of a timed shelve (OPC UA's MaxTimeShelved); a site configures its own.
DEFAULT_MAX_SHELVE_S = 8 * 3600.0
_US = 1_000_000


class State(StrEnum):
    """The state an alarm is shown in: its process state, unless an overlay hides it."""

    NORMAL = "normal"
    UNACKNOWLEDGED = "unacknowledged"
    ACKNOWLEDGED = "acknowledged"
    RTN_UNACKNOWLEDGED = "rtn_unacknowledged"
    LATCHED_UNACKNOWLEDGED = "latched_unacknowledged"
    LATCHED_ACKNOWLEDGED = "latched_acknowledged"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed_by_design"
    OUT_OF_SERVICE = "out_of_service"


PROCESS_STATES = frozenset(
    {
        State.NORMAL,
        State.UNACKNOWLEDGED,
        State.ACKNOWLEDGED,
        State.RTN_UNACKNOWLEDGED,
        State.LATCHED_UNACKNOWLEDGED,
        State.LATCHED_ACKNOWLEDGED,
    }
)
OVERLAY_STATES = frozenset({State.SHELVED, State.SUPPRESSED, State.OUT_OF_SERVICE})
# The process condition is abnormal only in these; every other process state has cleared.
ACTIVE_STATES = frozenset({State.UNACKNOWLEDGED, State.ACKNOWLEDGED})


class Event(StrEnum):
    BECOMES_ABNORMAL = "becomes_abnormal"
    RETURNS_TO_NORMAL = "returns_to_normal"
    ACKNOWLEDGE = "acknowledge"
    RESET = "reset"
    TIMED_SHELVE = "timed_shelve"
    ONE_SHOT_SHELVE = "one_shot_shelve"
    UNSHELVE = "unshelve"
    SHELVE_EXPIRY = "shelve_expiry"
    SUPPRESSION_ON = "suppression_on"
    SUPPRESSION_OFF = "suppression_off"
    OUT_OF_SERVICE_ON = "out_of_service_on"
    OUT_OF_SERVICE_OFF = "out_of_service_off"


PROCESS_EVENTS = frozenset(
    {Event.BECOMES_ABNORMAL, Event.RETURNS_TO_NORMAL, Event.ACKNOWLEDGE, Event.RESET}
)


class Outcome(StrEnum):
    MOVE = "move"  # the shown state becomes the row's target
    UNDERNEATH = "underneath"  # applied under an overlay: the shown state stays, not announced
    IGNORED = "ignored"  # nothing changes
    REFUSED = "refused"  # an operator action that cannot apply: `transition` raises


class Target(StrEnum):
    """Targets that are not a fixed state."""

    REVEAL = "reveal"  # the overlay is lifted: shown as the next overlay down, or the process state


@dataclass(frozen=True, slots=True)
class Row:
    outcome: Outcome
    clause: str
    target: State | Target | None = None
    # Where a latching alarm goes instead of `target` (only on return to normal).
    latched_target: State | None = None
    note: str = ""


class Shelving(StrEnum):
    UNSHELVED = "unshelved"
    TIMED = "timed"
    ONE_SHOT = "one_shot"


@dataclass(frozen=True, slots=True)
class AlarmState:
    """Everything the machine knows of one alarm; `shown` is what an operator sees."""

    process: State = State.NORMAL
    shelving: Shelving = Shelving.UNSHELVED
    unshelve_at_us: int | None = None  # when the shelve expires, for both kinds of shelving
    suppressed: bool = False
    out_of_service: bool = False
    occurrence: int = 0  # counts activations after clearing; 0 = never active

    @property
    def shown(self) -> State:
        if self.out_of_service:
            return State.OUT_OF_SERVICE
        if self.suppressed:
            return State.SUPPRESSED
        if self.shelving is not Shelving.UNSHELVED:
            return State.SHELVED
        return self.process


@dataclass(frozen=True, slots=True)
class Transition:
    old: AlarmState
    new: AlarmState
    event: Event
    outcome: Outcome
    clause: str
    new_occurrence: bool  # the condition activated after having cleared
    announced: bool  # shown to operators and notification pipelines


class TransitionRefused(ValueError):
    """An operator action that does not apply to the alarm's state; the message says why."""

    def __init__(self, message: str, clause: str) -> None:
        super().__init__(f"{message} ({clause})")
        self.clause = clause


def remaining_shelve_us(state: AlarmState, now_us: int) -> int | None:
    """Microseconds until the shelve expires (0 once due), or None when not shelved."""
    if state.shelving is Shelving.UNSHELVED or state.unshelve_at_us is None:
        return None
    return max(0, state.unshelve_at_us - now_us)


def _row(
    outcome: Outcome, clause: str, target: State | Target | None = None, *, note: str = ""
) -> Row:
    return Row(outcome, clause, target, note=note)


_IGN = Outcome.IGNORED
_REF = Outcome.REFUSED
_MOVE = Outcome.MOVE
_UNDER = Outcome.UNDERNEATH


def _process_rows() -> dict[tuple[State, Event], Row]:
    """Process events on process states: ISA-18.2 11.5's diagram plus OPC UA's latching."""
    n, ua, ack, rtn = (
        State.NORMAL,
        State.UNACKNOWLEDGED,
        State.ACKNOWLEDGED,
        State.RTN_UNACKNOWLEDGED,
    )
    lu, la = State.LATCHED_UNACKNOWLEDGED, State.LATCHED_ACKNOWLEDGED
    ab, rn, ak, rs = (
        Event.BECOMES_ABNORMAL,
        Event.RETURNS_TO_NORMAL,
        Event.ACKNOWLEDGE,
        Event.RESET,
    )
    latched = f"{ISA}; {UA_LATCHED}"
    return {
        (n, ab): _row(_MOVE, ISA, ua, note="a new occurrence, announced"),
        (n, rn): _row(_IGN, ISA, note="already normal"),
        (n, ak): _row(_REF, f"{ISA}; {UA_ACK}", note="nothing to acknowledge"),
        (n, rs): _row(_REF, latched, note="not latched"),
        (ua, ab): _row(_IGN, ISA, note="already active"),
        (ua, rn): Row(_MOVE, latched, rtn, latched_target=lu),
        (ua, ak): _row(_MOVE, f"{ISA}; {UA_ACK}", ack),
        (ua, rs): _row(_REF, latched, note="still active: a latch is reset after it clears"),
        (ack, ab): _row(_IGN, ISA, note="already active"),
        (ack, rn): Row(_MOVE, latched, n, latched_target=la),
        (ack, ak): _row(_REF, f"{ISA}; {UA_ACK}", note="already acknowledged"),
        (ack, rs): _row(_REF, latched, note="still active: a latch is reset after it clears"),
        (rtn, ab): _row(_MOVE, ISA, ua, note="activates again after clearing: new occurrence"),
        (rtn, rn): _row(_IGN, ISA, note="already returned to normal"),
        (rtn, ak): _row(_MOVE, f"{ISA}; {UA_ACK}", n),
        (rtn, rs): _row(_REF, latched, note="not latched"),
        (lu, ab): _row(_MOVE, latched, ua, note="activates again after clearing: new occurrence"),
        (lu, rn): _row(_IGN, latched, note="already returned to normal, latched"),
        (lu, ak): _row(_MOVE, f"{latched}; {UA_ACK}", la),
        (lu, rs): _row(_REF, latched, note="acknowledge before resetting"),
        (la, ab): _row(_MOVE, latched, ua, note="activates again after clearing: new occurrence"),
        (la, rn): _row(_IGN, latched, note="already returned to normal, latched"),
        (la, ak): _row(_REF, f"{latched}; {UA_ACK}", note="already acknowledged"),
        (la, rs): _row(_MOVE, latched, n),
    }


def _overlay_rows_on_process_states() -> dict[tuple[State, Event], Row]:
    rows: dict[tuple[State, Event], Row] = {}
    for s in PROCESS_STATES:
        rows[s, Event.TIMED_SHELVE] = _row(_MOVE, f"{ISA}; {UA_TIMED}", State.SHELVED)
        if s in ACTIVE_STATES:
            rows[s, Event.ONE_SHOT_SHELVE] = _row(_MOVE, f"{ISA}; {UA_ONE_SHOT}", State.SHELVED)
        else:
            rows[s, Event.ONE_SHOT_SHELVE] = _row(
                _REF,
                f"{ISA}; {UA_ONE_SHOT}",
                note="the condition is not active, so a one-shot shelve would end at once",
            )
        rows[s, Event.UNSHELVE] = _row(_REF, UA_UNSHELVE, note="not shelved")
        rows[s, Event.SHELVE_EXPIRY] = _row(_IGN, UA_SHELVING, note="not shelved")
        rows[s, Event.SUPPRESSION_ON] = _row(_MOVE, f"{ISA}; {UA_SUPPRESSED}", State.SUPPRESSED)
        rows[s, Event.SUPPRESSION_OFF] = _row(_IGN, UA_SUPPRESSED, note="not suppressed")
        rows[s, Event.OUT_OF_SERVICE_ON] = _row(
            _MOVE, f"{ISA}; {UA_OUT_OF_SERVICE}", State.OUT_OF_SERVICE
        )
        rows[s, Event.OUT_OF_SERVICE_OFF] = _row(_IGN, UA_OUT_OF_SERVICE, note="in service")
    return rows


def _overlay_rows() -> dict[tuple[State, Event], Row]:
    sh, sup, oos = State.SHELVED, State.SUPPRESSED, State.OUT_OF_SERVICE
    underneath = f"{ISA}; {UA_FUNCTIONAL}"
    rows: dict[tuple[State, Event], Row] = {}
    for s in OVERLAY_STATES:
        for e in PROCESS_EVENTS:
            rows[s, e] = _row(_UNDER, underneath, note="evaluated underneath, not announced")
    hidden = "shelving is for alarms an operator is shown; this one is hidden by design or service"
    rows |= {
        (sh, Event.TIMED_SHELVE): _row(
            _MOVE, UA_TIMED, sh, note="shelving again replaces the remaining time"
        ),
        (sh, Event.ONE_SHOT_SHELVE): _row(_MOVE, f"{UA_ONE_SHOT}; {UA_SHELVING}", sh),
        (sh, Event.UNSHELVE): _row(_MOVE, f"{ISA}; {UA_UNSHELVE}", Target.REVEAL),
        (sh, Event.SHELVE_EXPIRY): _row(_MOVE, f"{ISA}; {UA_SHELVING}", Target.REVEAL),
        (sh, Event.SUPPRESSION_ON): _row(
            _MOVE, f"{ISA}; {UA_SUPPRESSED}", sup, note="the shelve continues underneath"
        ),
        (sh, Event.SUPPRESSION_OFF): _row(_IGN, UA_SUPPRESSED, note="not suppressed"),
        (sh, Event.OUT_OF_SERVICE_ON): _row(_MOVE, f"{ISA}; {UA_OUT_OF_SERVICE}", oos),
        (sh, Event.OUT_OF_SERVICE_OFF): _row(_IGN, UA_OUT_OF_SERVICE, note="in service"),
        (sup, Event.TIMED_SHELVE): _row(_REF, f"{ISA}; {UA_TIMED}", note=hidden),
        (sup, Event.ONE_SHOT_SHELVE): _row(_REF, f"{ISA}; {UA_ONE_SHOT}", note=hidden),
        (sup, Event.UNSHELVE): _row(_REF, f"{ISA}; {UA_UNSHELVE}", note=hidden),
        (sup, Event.SHELVE_EXPIRY): _row(
            _UNDER,
            f"{UA_SHELVING}; {UA_FUNCTIONAL}",
            note="a shelve from before expires underneath",
        ),
        (sup, Event.SUPPRESSION_ON): _row(_IGN, UA_SUPPRESSED, note="already suppressed"),
        (sup, Event.SUPPRESSION_OFF): _row(_MOVE, f"{ISA}; {UA_SUPPRESSED}", Target.REVEAL),
        (sup, Event.OUT_OF_SERVICE_ON): _row(_MOVE, f"{ISA}; {UA_OUT_OF_SERVICE}", oos),
        (sup, Event.OUT_OF_SERVICE_OFF): _row(_IGN, UA_OUT_OF_SERVICE, note="in service"),
        (oos, Event.TIMED_SHELVE): _row(_REF, f"{ISA}; {UA_TIMED}", note=hidden),
        (oos, Event.ONE_SHOT_SHELVE): _row(_REF, f"{ISA}; {UA_ONE_SHOT}", note=hidden),
        (oos, Event.UNSHELVE): _row(_REF, f"{ISA}; {UA_UNSHELVE}", note=hidden),
        (oos, Event.SHELVE_EXPIRY): _row(
            _UNDER,
            f"{UA_SHELVING}; {UA_FUNCTIONAL}",
            note="a shelve from before expires underneath",
        ),
        (oos, Event.SUPPRESSION_ON): _row(
            _UNDER, f"{UA_SUPPRESSED}; {UA_FUNCTIONAL}", note="recorded under out of service"
        ),
        (oos, Event.SUPPRESSION_OFF): _row(
            _UNDER, f"{UA_SUPPRESSED}; {UA_FUNCTIONAL}", note="recorded under out of service"
        ),
        (oos, Event.OUT_OF_SERVICE_ON): _row(
            _IGN, UA_OUT_OF_SERVICE, note="already out of service"
        ),
        (oos, Event.OUT_OF_SERVICE_OFF): _row(_MOVE, f"{ISA}; {UA_OUT_OF_SERVICE}", Target.REVEAL),
    }
    return rows


TABLE: dict[tuple[State, Event], Row] = (
    _process_rows() | _overlay_rows_on_process_states() | _overlay_rows()
)


def transition(
    state: AlarmState,
    event: Event,
    *,
    now_us: int,
    latching: bool = False,
    shelve_s: float | None = None,
    max_shelve_s: float = DEFAULT_MAX_SHELVE_S,
) -> Transition:
    """Apply `event` to `state` at `now_us` by the row `TABLE[state.shown, event]`.

    `latching` is the alarm definition's flag; `shelve_s` the duration of a timed shelve, at
    most `max_shelve_s` (OPC UA's MaxTimeShelved, which also bounds a one-shot shelve). Raises
    `TransitionRefused` for a refused row or a shelve duration out of range.
    """
    row = TABLE[state.shown, event]
    if row.outcome is Outcome.REFUSED:
        raise TransitionRefused(
            f"cannot {event.value.replace('_', ' ')} an alarm that is "
            f"{state.shown.value.replace('_', ' ')}: {row.note}",
            row.clause,
        )
    if row.outcome is Outcome.IGNORED:
        return _result(state, state, event, row, Outcome.IGNORED)
    new = _apply(state, event, now_us, latching, shelve_s, max_shelve_s)
    outcome = row.outcome if new != state else Outcome.IGNORED
    return _result(state, new, event, row, outcome)


def _apply(
    state: AlarmState,
    event: Event,
    now_us: int,
    latching: bool,
    shelve_s: float | None,
    max_shelve_s: float,
) -> AlarmState:
    """The event's effect on the one dimension it belongs to; the other dimensions stay."""
    if event in PROCESS_EVENTS:
        return _apply_process(state, event, latching)
    if event is Event.TIMED_SHELVE:
        if shelve_s is None or not 0 < shelve_s <= max_shelve_s:
            raise TransitionRefused(
                f"timed shelve of {shelve_s} s is out of range: give a duration above 0 and at "
                f"most {max_shelve_s:g} s, the configured maximum",
                UA_TIMED,
            )
        # Shelving again starts from now: the new duration replaces what was left.
        return replace(
            state, shelving=Shelving.TIMED, unshelve_at_us=now_us + round(shelve_s * _US)
        )
    if event is Event.ONE_SHOT_SHELVE:
        return replace(
            state,
            shelving=Shelving.ONE_SHOT,
            unshelve_at_us=now_us + round(max_shelve_s * _US),
        )
    if event is Event.UNSHELVE:
        return replace(state, shelving=Shelving.UNSHELVED, unshelve_at_us=None)
    if event is Event.SHELVE_EXPIRY:
        # A timer set for a shelve since replaced by a later one fires early: it changes nothing.
        due = state.unshelve_at_us is not None and now_us >= state.unshelve_at_us
        return replace(state, shelving=Shelving.UNSHELVED, unshelve_at_us=None) if due else state
    if event in (Event.SUPPRESSION_ON, Event.SUPPRESSION_OFF):
        return replace(state, suppressed=event is Event.SUPPRESSION_ON)
    return replace(state, out_of_service=event is Event.OUT_OF_SERVICE_ON)


def _apply_process(state: AlarmState, event: Event, latching: bool) -> AlarmState:
    row = TABLE[state.process, event]
    if row.outcome is Outcome.REFUSED:
        raise TransitionRefused(
            f"cannot {event.value.replace('_', ' ')} an alarm that is "
            f"{state.process.value.replace('_', ' ')} underneath: {row.note}",
            row.clause,
        )
    if row.outcome is Outcome.IGNORED:
        return state
    target = row.latched_target if latching and row.latched_target else row.target
    assert isinstance(target, State), row  # process rows name a state
    new = replace(state, process=target)
    if target in ACTIVE_STATES and state.process not in ACTIVE_STATES:
        new = replace(new, occurrence=state.occurrence + 1)
    # A one-shot shelve lasts until the condition clears (OPC UA Part 9 5.8.17.1).
    if (
        event is Event.RETURNS_TO_NORMAL
        and state.shelving is Shelving.ONE_SHOT
        and target not in ACTIVE_STATES
    ):
        new = replace(new, shelving=Shelving.UNSHELVED, unshelve_at_us=None)
    return new


def _result(
    old: AlarmState, new: AlarmState, event: Event, row: Row, outcome: Outcome
) -> Transition:
    applied = outcome is not Outcome.IGNORED
    return Transition(
        old=old,
        new=new,
        event=event,
        outcome=outcome,
        clause=row.clause,
        new_occurrence=new.occurrence > old.occurrence,
        # Announced only when the operator is shown the alarm afterwards: no overlay hides it.
        announced=applied and new.shown in PROCESS_STATES,
    )
