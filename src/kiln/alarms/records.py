"""What the parts of the alarm system hand one another: compiled alarms, condition changes,
the current record of an alarm and the journal's entries, with their JSON forms.

The same JSON travels on the bus (events `alarm.transition`, the `alarms` command target's
replies), out of the API and into the page, so it is written once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kiln.alarms.definitions import AlarmDef, Priority
from kiln.alarms.states import AlarmState, Shelving, State, remaining_shelve_us

# The bus names of the alarm system.
ALARMS_TARGET = "alarms"  # command target served by the alarm engine
TRANSITION_KIND = "alarm.transition"  # event kind of every journaled change, keyed by alarm id

# What an alarm's condition is, within its definition: a limit alarm yields one alarm per
# limit given, a deviation alarm one per side.
Condition = Literal[
    "hihi",
    "hi",
    "lo",
    "lolo",
    "deviation_high",
    "deviation_low",
    "rate_of_change",
    "discrete",
    "bad_quality",
    "stale",
    "expression",
]

PRIORITY_RANK: dict[Priority, int] = {p: i for i, p in enumerate(Priority)}


def asset_of(alarm_id: str) -> str:
    """The asset path an alarm id starts with (ids are `{asset}/{name}` or `{asset}/{name}:{limit}`)."""
    return alarm_id.rsplit("/", 1)[0]


@dataclass(frozen=True, slots=True)
class AlarmSpec:
    """One alarm as evaluated: a definition placed on an asset, its tag paths resolved.

    `id` is `{asset}/{name}` or, for a limit or deviation alarm, `{asset}/{name}:{condition}`.
    `tags` maps each tag name the definition mentions (its `tag`, limit or set-point tags,
    the names in an expression or a suppression condition) to the full path. `states` maps,
    per tag path with named states, the value to its name (for discrete alarms and
    expressions comparing with a name such as "fault").
    """

    id: str
    asset: str
    name: str
    condition: Condition
    priority: Priority
    definition: AlarmDef
    tag: str | None  # the full path of the tag alarmed on (None for an expression alarm)
    tags: dict[str, str] = field(default_factory=dict)
    states: dict[str, dict[int, str]] = field(default_factory=dict)

    @property
    def latching(self) -> bool:
        return self.definition.latching


ChangeEvent = Literal["active", "cleared", "realarm", "suppress_on", "suppress_off"]


@dataclass(frozen=True, slots=True)
class ConditionChange:
    """What evaluation found: an alarm's condition changed at source time `source_us`.

    `value` is the value that caused it (a number, a state name, or None for stale), `limit`
    the limit in force then (None where there is none).
    """

    alarm_id: str
    event: ChangeEvent
    source_us: int
    value: float | str | None = None
    limit: float | None = None


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """An alarm's current record: what the store keeps, the console lists and the journal's
    next entry starts from."""

    id: str
    asset: str
    name: str
    condition: Condition
    priority: Priority
    tag: str | None = None  # the full path of the tag alarmed on (None for an expression)
    state: AlarmState = field(default_factory=AlarmState)
    value: float | str | None = None
    limit: float | None = None
    message: str = ""
    active_since_us: int | None = None  # start of the current (or last) occurrence
    changed_us: int = 0  # source time of the last journaled change
    acked_by: str = ""
    acked_us: int | None = None
    shelved_by: str = ""
    out_of_service_reason: str = ""
    note: str = ""  # the last operator note or comment

    def to_json(self, now_us: int) -> dict[str, Any]:
        shown = self.state.shown
        return {
            "id": self.id,
            "asset": self.asset,
            "name": self.name,
            "condition": self.condition,
            "priority": self.priority.value,
            "tag": self.tag,
            "state": shown.value,
            "process_state": self.state.process.value,
            "active": self.state.process in (State.UNACKNOWLEDGED, State.ACKNOWLEDGED),
            "acknowledged": self.state.process
            in (State.NORMAL, State.ACKNOWLEDGED, State.LATCHED_ACKNOWLEDGED),
            "shelved": self.state.shelving is not Shelving.UNSHELVED,
            "shelving": self.state.shelving.value,
            "shelve_remaining_s": _seconds(remaining_shelve_us(self.state, now_us)),
            "suppressed": self.state.suppressed,
            "out_of_service": self.state.out_of_service,
            "occurrence": self.state.occurrence,
            "value": self.value,
            "limit": self.limit,
            "message": self.message,
            "active_since_us": self.active_since_us,
            "changed_us": self.changed_us,
            "acked_by": self.acked_by,
            "acked_us": self.acked_us,
            "shelved_by": self.shelved_by,
            "out_of_service_reason": self.out_of_service_reason,
            "note": self.note,
        }


def _seconds(us: int | None) -> float | None:
    return None if us is None else us / 1_000_000


# What a journal entry records besides the state machine's events: a re-alarm of an alarm
# still active, and an operator's comment.
JournalEvent = str  # a `kiln.alarms.states.Event` value, "realarm" or "comment"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journaled change of one alarm. `seq` is given by the store when it commits."""

    source_us: int  # when it happened (the value's source time, or the operator's action)
    recorded_us: int  # when the engine journaled it
    alarm_id: str
    asset: str
    priority: Priority
    occurrence: int
    event: JournalEvent
    old_state: State
    new_state: State
    announced: bool  # shown to operators and notification pipelines
    value: float | str | None = None
    user: str = ""
    comment: str = ""
    message: str = ""
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "source_us": self.source_us,
            "recorded_us": self.recorded_us,
            "alarm_id": self.alarm_id,
            "asset": self.asset,
            "priority": self.priority.value,
            "occurrence": self.occurrence,
            "event": self.event,
            "old_state": self.old_state.value,
            "new_state": self.new_state.value,
            "announced": self.announced,
            "value": self.value,
            "user": self.user,
            "comment": self.comment,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JournalEntry:
        return cls(
            seq=int(data["seq"]),
            source_us=int(data["source_us"]),
            recorded_us=int(data["recorded_us"]),
            alarm_id=str(data["alarm_id"]),
            asset=str(data["asset"]),
            priority=Priority(data["priority"]),
            occurrence=int(data["occurrence"]),
            event=str(data["event"]),
            old_state=State(data["old_state"]),
            new_state=State(data["new_state"]),
            announced=bool(data["announced"]),
            value=data.get("value"),
            user=str(data.get("user", "")),
            comment=str(data.get("comment", "")),
            message=str(data.get("message", "")),
        )
