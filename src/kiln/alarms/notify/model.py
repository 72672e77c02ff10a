"""What the notifier remembers and sends: an alarm as a message shows it, a send to make, a
timer, and the small state pipelines keep between events. With their JSON forms, since all of
it is stored (`kiln.alarms.notify.store`) to survive a restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from kiln.alarms.definitions import Priority
from kiln.alarms.notify.settings import ChannelKind
from kiln.alarms.records import JournalEntry

RunEvent = Literal["activation", "clear"]
SendKind = Literal["notify", "escalate", "remind", "consolidate"]
TimerKind = Literal["resume", "escalate", "remind", "consolidate"]
# A block's place in a pipeline: indices, with "then"/"else" stepping into a switch's branch.
Path = tuple[int | str, ...]


def delivery_id(cause: str) -> str:
    """A delivery's id from what caused it (run, block, recipient, channel): the same event
    handled twice (redelivered after a crash) yields the same id, which the store keeps once."""
    return hashlib.sha256(cause.encode()).hexdigest()[:32]


def path_text(path: Path) -> str:
    """`(2,)` is "2", `(1, "then", 0)` is "1.then.0": how a block is named in records."""
    return ".".join(str(p) for p in path)


@dataclass(frozen=True, slots=True)
class AlarmInfo:
    """One alarm occurrence's change as a notification tells it."""

    alarm_id: str
    asset: str
    name: str
    condition: str
    priority: Priority
    occurrence: int
    event: RunEvent
    value: float | str | None
    message: str
    source_us: int

    @classmethod
    def of(cls, entry: JournalEntry, alarm: dict[str, Any], event: RunEvent) -> AlarmInfo:
        return cls(
            alarm_id=entry.alarm_id,
            asset=entry.asset,
            name=str(alarm.get("name", entry.alarm_id.rsplit("/", 1)[-1])),
            condition=str(alarm.get("condition", "")),
            priority=entry.priority,
            occurrence=entry.occurrence,
            event=event,
            value=entry.value,
            message=entry.message or str(alarm.get("message", "")),
            source_us=entry.source_us,
        )

    @property
    def run_id(self) -> str:
        return f"{self.alarm_id}|{self.occurrence}|{self.event}"

    def fields(self) -> dict[str, Any]:
        """What a switch expression sees."""
        return {
            "priority": self.priority.value,
            "asset": self.asset,
            "name": self.name,
            "condition": self.condition,
            "value": self.value,
            "event": self.event,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "alarm_id": self.alarm_id,
            "asset": self.asset,
            "name": self.name,
            "condition": self.condition,
            "priority": self.priority.value,
            "occurrence": self.occurrence,
            "event": self.event,
            "value": self.value,
            "message": self.message,
            "source_us": self.source_us,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AlarmInfo:
        return cls(
            alarm_id=str(d["alarm_id"]),
            asset=str(d["asset"]),
            name=str(d["name"]),
            condition=str(d["condition"]),
            priority=Priority(d["priority"]),
            occurrence=int(d["occurrence"]),
            event=cast(RunEvent, d["event"]),
            value=d.get("value"),
            message=str(d.get("message", "")),
            source_us=int(d["source_us"]),
        )


@dataclass(frozen=True, slots=True)
class Send:
    """One message to one recipient on one channel. `id` is derived from what caused it, so
    handling the same event twice makes the same id and the store keeps one."""

    id: str
    pipeline: str
    block: str
    kind: SendKind
    user: str
    channel: ChannelKind
    address: str
    alarms: tuple[AlarmInfo, ...]
    reminder: int = 0  # which reminder (1, 2, ...) for kind "remind"

    @property
    def first(self) -> AlarmInfo:
        return self.alarms[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "block": self.block,
            "kind": self.kind,
            "user": self.user,
            "channel": self.channel,
            "address": self.address,
            "alarms": [a.to_json() for a in self.alarms],
            "reminder": self.reminder,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Send:
        return cls(
            id=str(d["id"]),
            pipeline=str(d["pipeline"]),
            block=str(d["block"]),
            kind=cast(SendKind, d["kind"]),
            user=str(d["user"]),
            channel=cast(ChannelKind, d["channel"]),
            address=str(d["address"]),
            alarms=tuple(AlarmInfo.from_json(a) for a in d["alarms"]),
            reminder=int(d.get("reminder", 0)),
        )


@dataclass(frozen=True, slots=True)
class Timer:
    """Something a pipeline does later: resume after a delay, escalate, remind, or close a
    consolidation window (then `alarm` is None and `key` names the bucket)."""

    key: str
    due_us: int
    kind: TimerKind
    pipeline: str
    path: Path
    alarm: AlarmInfo | None = None
    notified: tuple[str, ...] = ()  # users the run had notified when this was set
    count: int = 0  # reminders already sent

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "due_us": self.due_us,
            "kind": self.kind,
            "pipeline": self.pipeline,
            "path": list(self.path),
            "alarm": None if self.alarm is None else self.alarm.to_json(),
            "notified": list(self.notified),
            "count": self.count,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Timer:
        return cls(
            key=str(d["key"]),
            due_us=int(d["due_us"]),
            kind=cast(TimerKind, d["kind"]),
            pipeline=str(d["pipeline"]),
            path=tuple(d["path"]),
            alarm=None if d.get("alarm") is None else AlarmInfo.from_json(d["alarm"]),
            notified=tuple(d.get("notified", ())),
            count=int(d.get("count", 0)),
        )


@dataclass(slots=True)
class AlarmStatus:
    """Whether an occurrence was acknowledged or cleared: later blocks (an escalation reached
    after a delay) must know."""

    acked: bool = False
    cleared: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"acked": self.acked, "cleared": self.cleared}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AlarmStatus:
        return cls(acked=bool(d["acked"]), cleared=bool(d["cleared"]))


@dataclass(slots=True)
class Bucket:
    """A consolidate block's collection: alarms waiting for the window to close."""

    last_sent_us: int | None = None
    items: dict[str, AlarmInfo] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "last_sent_us": self.last_sent_us,
            "items": [a.to_json() for a in self.items.values()],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Bucket:
        items = [AlarmInfo.from_json(a) for a in d.get("items", ())]
        return cls(last_sent_us=d.get("last_sent_us"), items={a.run_id: a for a in items})


StateKind = Literal["timer", "alarm", "bucket"]


@dataclass(slots=True)
class NotifyState:
    """Everything pipelines keep between events. Changes mark their key `dirty`; the store
    writes exactly those (and deletes those no longer present) in the same transaction as the
    sends they caused."""

    timers: dict[str, Timer] = field(default_factory=dict)
    alarms: dict[str, AlarmStatus] = field(default_factory=dict)
    buckets: dict[str, Bucket] = field(default_factory=dict)
    dirty: set[tuple[StateKind, str]] = field(default_factory=set)

    def body(self, kind: StateKind, key: str) -> dict[str, Any] | None:
        """The JSON to store for (kind, key); None when it is gone."""
        item: Timer | AlarmStatus | Bucket | None
        if kind == "timer":
            item = self.timers.get(key)
        elif kind == "alarm":
            item = self.alarms.get(key)
        else:
            item = self.buckets.get(key)
        return None if item is None else item.to_json()

    def due_of(self, kind: StateKind, key: str) -> int | None:
        timer = self.timers.get(key) if kind == "timer" else None
        return None if timer is None else timer.due_us

    def load(self, kind: StateKind, key: str, body: dict[str, Any]) -> None:
        if kind == "timer":
            self.timers[key] = Timer.from_json(body)
        elif kind == "alarm":
            self.alarms[key] = AlarmStatus.from_json(body)
        else:
            self.buckets[key] = Bucket.from_json(body)
