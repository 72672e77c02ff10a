"""The pipeline runner: pure logic from alarm transitions and the clock to sends and timers.

An announced activation (`becomes_abnormal`) or clear (`returns_to_normal`) of an alarm starts
a run in every pipeline whose priorities, subtree and `on` match it; a run walks the pipeline's
blocks in order. Notify sends at once; delay parks the run on a timer; escalate and remind set
their timers and the run goes on (so an escalation after N s counts from where the block is
reached); consolidate adds the alarm to the block's collection; switch steps into one branch.
An acknowledgement stops the occurrence's pending escalations and reminders, a clear its
reminders.

Nothing here does I/O or reads the time: `now_us` is passed in, the state (`NotifyState`) is
changed in place with its changed keys marked, and the sends are returned, so the service can
commit both together and the tests drive it with a fake clock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kiln.alarms.notify.expression import SwitchError, evaluate
from kiln.alarms.notify.model import (
    AlarmInfo,
    AlarmStatus,
    Bucket,
    NotifyState,
    Path,
    RunEvent,
    Send,
    SendKind,
    Timer,
    delivery_id,
    path_text,
)
from kiln.alarms.notify.settings import (
    Block,
    ConsolidateBlock,
    DelayBlock,
    EscalateBlock,
    NotificationSettings,
    NotifyBlock,
    PipelineSettings,
    RemindBlock,
    SwitchBlock,
    channels_for,
)
from kiln.alarms.records import PRIORITY_RANK, JournalEntry
from kiln.alarms.states import Event

_LOGGER = logging.getLogger(__name__)

_US = 1_000_000
_STARTS: dict[str, RunEvent] = {
    Event.BECOMES_ABNORMAL.value: "activation",
    Event.RETURNS_TO_NORMAL.value: "clear",
}


def in_subtree(asset: str, subtree: str | None) -> bool:
    """Segment-wise: `line1` holds `line1` and `line1/filler`, never `line10`."""
    return subtree is None or asset == subtree or asset.startswith(subtree + "/")


def matches(pipeline: PipelineSettings, info: AlarmInfo) -> bool:
    if pipeline.priorities and info.priority not in pipeline.priorities:
        return False
    if pipeline.on != "both" and pipeline.on != info.event:
        return False
    return in_subtree(info.asset, pipeline.subtree)


def _us(seconds: float) -> int:
    return round(seconds * _US)


class Runner:
    """Runs `settings.pipelines` over `state` (loaded from the store, or empty)."""

    def __init__(self, settings: NotificationSettings, state: NotifyState | None = None) -> None:
        self.settings = settings
        self.state = state if state is not None else NotifyState()
        self._pipelines = {p.name: p for p in settings.pipelines}
        self._users = {u.name: u for u in settings.users}

    # -- input ----------------------------------------------------------------------------

    def on_transition(self, data: dict[str, Any], now_us: int) -> list[Send]:
        """An `alarm.transition` event's data: {"entry": ..., "alarm": ...}."""
        entry = JournalEntry.from_json(dict(data["entry"]))
        alarm = dict(data.get("alarm") or {})
        return self.on_entry(entry, alarm, now_us)

    def on_entry(self, entry: JournalEntry, alarm: dict[str, Any], now_us: int) -> list[Send]:
        sends: list[Send] = []
        if entry.event == Event.ACKNOWLEDGE.value:
            self._status_change(entry.alarm_id, entry.occurrence, acked=True)
            self._cancel(entry.alarm_id, entry.occurrence, ("escalate", "remind"))
            return sends
        if entry.event == Event.RETURNS_TO_NORMAL.value:
            self._status_change(entry.alarm_id, entry.occurrence, cleared=True)
            self._cancel(entry.alarm_id, entry.occurrence, ("remind",))
        event = _STARTS.get(entry.event)
        if event is None or not entry.announced:
            return sends
        info = AlarmInfo.of(entry, alarm, event)
        for pipeline in self.settings.pipelines:
            if matches(pipeline, info):
                self._walk(pipeline, (0,), info, (), now_us, sends)
        return sends

    def next_due_us(self) -> int | None:
        return min((t.due_us for t in self.state.timers.values()), default=None)

    def fire_due(self, now_us: int) -> list[Send]:
        """Run every timer due at `now_us`, earliest first."""
        sends: list[Send] = []
        while True:
            due = [t for t in self.state.timers.values() if t.due_us <= now_us]
            if not due:
                return sends
            timer = min(due, key=lambda t: (t.due_us, t.key))
            self._drop_timer(timer.key)
            self._fire(timer, now_us, sends)

    # -- walking ----------------------------------------------------------------------------

    def _walk(
        self,
        pipeline: PipelineSettings,
        path: Path | None,
        info: AlarmInfo,
        notified: tuple[str, ...],
        now_us: int,
        sends: list[Send],
    ) -> None:
        """Run blocks from `path` until the pipeline ends or a delay parks the run."""
        while path is not None:
            block = _block_at(pipeline.blocks, path)
            here = f"{pipeline.name}|{info.run_id}|{path_text(path)}"
            if isinstance(block, NotifyBlock):
                sends += self._sends(pipeline.name, path, "notify", block, (info,), here)
                notified = _union(notified, block.users)
            elif isinstance(block, DelayBlock):
                nxt = _next(pipeline.blocks, path)
                if nxt is not None:
                    self._arm(
                        Timer(here + "|resume", now_us + _us(block.seconds), "resume",
                              pipeline.name, nxt, info, notified)
                    )  # fmt: skip
                return
            elif isinstance(block, EscalateBlock):
                if not self._status(info).acked:
                    self._arm(
                        Timer(here + "|escalate", now_us + _us(block.after_s), "escalate",
                              pipeline.name, path, info, notified)
                    )  # fmt: skip
            elif isinstance(block, RemindBlock):
                status = self._status(info)
                if not status.acked and not (info.event == "activation" and status.cleared):
                    self._arm(
                        Timer(here + "|remind", now_us + _us(block.every_s), "remind",
                              pipeline.name, path, info, notified)
                    )  # fmt: skip
            elif isinstance(block, ConsolidateBlock):
                self._collect(pipeline.name, path, block, info, now_us)
            else:
                branch = self._branch(block, info)
                if branch is not None:
                    path = (*path, branch, 0)
                    continue
            path = _next(pipeline.blocks, path)

    def _branch(self, block: SwitchBlock, info: AlarmInfo) -> str | None:
        try:
            holds = evaluate(block.expression, info.fields())
        except SwitchError as err:
            # A run must not die on one odd value: the else branch is the safe default.
            _LOGGER.warning("Notification switch: %s; taking its else branch", err)
            holds = False
        if holds:
            return "then" if block.then else None
        return "else" if block.else_ else None

    def _fire(self, timer: Timer, now_us: int, sends: list[Send]) -> None:
        pipeline = self._pipelines.get(timer.pipeline)
        if pipeline is None:
            _LOGGER.info("Notification timer %s dropped: its pipeline is gone", timer.key)
            return
        try:
            block = _block_at(pipeline.blocks, timer.path)
        except (IndexError, KeyError, TypeError):
            _LOGGER.info("Notification timer %s dropped: the pipeline has changed", timer.key)
            return
        if timer.kind == "consolidate":
            if isinstance(block, ConsolidateBlock):
                self._flush(pipeline.name, timer.path, block, now_us, sends)
            return
        info = timer.alarm
        if info is None:
            return
        if timer.kind == "resume":
            self._walk(pipeline, timer.path, info, timer.notified, now_us, sends)
        elif timer.kind == "escalate" and isinstance(block, EscalateBlock):
            if not self._status(info).acked:
                here = f"{pipeline.name}|{info.run_id}|{path_text(timer.path)}|escalate"
                sends += self._sends(pipeline.name, timer.path, "escalate", block, (info,), here)
        elif timer.kind == "remind" and isinstance(block, RemindBlock):
            if self._status(info).acked:
                return
            count = timer.count + 1
            who = RemindBlock(users=timer.notified, channels=block.channels, every_s=1)
            targets = block if block.users else who
            here = f"{pipeline.name}|{info.run_id}|{path_text(timer.path)}|remind#{count}"
            sends += self._sends(
                pipeline.name, timer.path, "remind", targets, (info,), here, reminder=count
            )
            if count < block.count:
                self._set_timer(
                    Timer(timer.key, now_us + _us(block.every_s), "remind", timer.pipeline,
                          timer.path, info, timer.notified, count)
                )  # fmt: skip

    # -- consolidation ----------------------------------------------------------------------

    def _collect(
        self, pipeline: str, path: Path, block: ConsolidateBlock, info: AlarmInfo, now_us: int
    ) -> None:
        key = f"{pipeline}|{path_text(path)}"
        bucket = self.state.buckets.setdefault(key, Bucket())
        bucket.items[info.run_id] = info
        self.state.dirty.add(("bucket", key))
        timer_key = "consolidate|" + key
        if timer_key not in self.state.timers:
            due = now_us + _us(block.window_s)
            if bucket.last_sent_us is not None:
                due = max(due, bucket.last_sent_us + _us(block.min_interval_s))
            self._set_timer(Timer(timer_key, due, "consolidate", pipeline, path))

    def _flush(
        self, pipeline: str, path: Path, block: ConsolidateBlock, now_us: int, sends: list[Send]
    ) -> None:
        key = f"{pipeline}|{path_text(path)}"
        bucket = self.state.buckets.get(key)
        if bucket is None or not bucket.items:
            return
        alarms = tuple(bucket.items.values())
        here = f"{key}|consolidate@{now_us}"
        sends += self._sends(pipeline, path, "consolidate", block, alarms, here)
        self.state.buckets[key] = Bucket(last_sent_us=now_us)
        self.state.dirty.add(("bucket", key))

    # -- sends --------------------------------------------------------------------------------

    def _sends(
        self,
        pipeline: str,
        path: Path,
        kind: SendKind,
        block: NotifyBlock | EscalateBlock | RemindBlock | ConsolidateBlock,
        alarms: Sequence[AlarmInfo],
        key: str,
        *,
        reminder: int = 0,
    ) -> list[Send]:
        out: list[Send] = []
        for name in block.users:
            user = self._users.get(name)
            if user is None:
                continue
            floor = PRIORITY_RANK[user.min_priority]
            theirs = tuple(a for a in alarms if PRIORITY_RANK[a.priority] >= floor)
            if not theirs:
                continue
            for channel in channels_for(user, block.channels):
                address = user.address(channel)
                if address is None:
                    continue
                out.append(
                    Send(delivery_id(f"{key}|{name}|{channel}"), pipeline, path_text(path), kind, name,
                         channel, address, theirs, reminder)
                )  # fmt: skip
        return out

    # -- state ----------------------------------------------------------------------------

    def _status(self, info: AlarmInfo) -> AlarmStatus:
        return self.state.alarms.get(f"{info.alarm_id}#{info.occurrence}", AlarmStatus())

    def _status_change(
        self, alarm_id: str, occurrence: int, *, acked: bool = False, cleared: bool = False
    ) -> None:
        key = f"{alarm_id}#{occurrence}"
        status = self.state.alarms.setdefault(key, AlarmStatus())
        status.acked |= acked
        status.cleared |= cleared
        self.state.dirty.add(("alarm", key))
        if status.acked and status.cleared:
            # Nothing later can ask about an occurrence both acknowledged and cleared, except a
            # run parked on a delay, which keeps it until then.
            busy = any(
                t.alarm is not None
                and t.alarm.alarm_id == alarm_id
                and t.alarm.occurrence == occurrence
                for t in self.state.timers.values()
            )
            if not busy:
                del self.state.alarms[key]

    def _cancel(self, alarm_id: str, occurrence: int, kinds: tuple[str, ...]) -> None:
        for key, timer in list(self.state.timers.items()):
            a = timer.alarm
            if (
                timer.kind in kinds
                and a is not None
                and a.alarm_id == alarm_id
                and a.occurrence == occurrence
            ):
                self._drop_timer(key)

    def _arm(self, timer: Timer) -> None:
        """Set a run's timer unless it is set already: the same event handled twice (the bus
        delivering it again) must not push an escalation later."""
        if timer.key not in self.state.timers:
            self._set_timer(timer)

    def _set_timer(self, timer: Timer) -> None:
        self.state.timers[timer.key] = timer
        self.state.dirty.add(("timer", timer.key))

    def _drop_timer(self, key: str) -> None:
        self.state.timers.pop(key, None)
        self.state.dirty.add(("timer", key))


# -- block paths --------------------------------------------------------------------------------


def _block_at(blocks: Sequence[Block], path: Path) -> Block:
    current: Sequence[Block] = blocks
    block: Block | None = None
    i = 0
    while i < len(path):
        index = path[i]
        if not isinstance(index, int):
            raise TypeError(f"block path {path_text(path)} has {index!r} where an index belongs")
        block = current[index]
        if i + 1 < len(path):
            if not isinstance(block, SwitchBlock):
                raise TypeError(f"block path {path_text(path)} steps into a {block.kind} block")
            current = block.then if path[i + 1] == "then" else block.else_
        i += 2
    if block is None:
        raise IndexError("an empty block path")
    return block


def _next(blocks: Sequence[Block], path: Path) -> Path | None:
    """The block after `path`: the next in its list, else the one after the enclosing switch."""
    while path:
        index = path[-1]
        assert isinstance(index, int)
        siblings = blocks if len(path) == 1 else _branch_list(blocks, path[:-1])
        if index + 1 < len(siblings):
            return (*path[:-1], index + 1)
        # The last of a branch: go on after the switch that holds it.
        path = path[:-2]
    return None


def _branch_list(blocks: Sequence[Block], branch_path: Path) -> Sequence[Block]:
    """The list a branch path (ending in "then"/"else") names."""
    switch = _block_at(blocks, branch_path[:-1])
    assert isinstance(switch, SwitchBlock)
    return switch.then if branch_path[-1] == "then" else switch.else_


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*a, *b)))
