"""The alarm engine: values in from the bus, the state machine, the journal, events out.

One platform service (stage ENGINES). Every change goes the same way, whether a value caused
it, time did (delays, re-alarms, stale tags, shelve expiry) or an operator did: the state
machine (`states.transition`) decides, the new records and journal entries are committed to the
engine's own store in one transaction, and only then is anything told: the operator's command
is answered and one `alarm.transition` event per entry goes on the bus (the console, the live
WebSocket and the notification pipelines listen there). What the engine acknowledged is
therefore on disk: after `kill -9` an acknowledged alarm is still acknowledged, and an active one
is still active and is evaluated again against its tag's current value, asked of the historian.

All changes run one at a time under one lock, so an operator's acknowledgement and a value
clearing the same alarm never interleave half-way.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from kiln.alarms.compile import AlarmConfigError, compile_alarms
from kiln.alarms.definitions import AlarmDef, LimitAlarm, Priority
from kiln.alarms.engine_commands import EngineCommands
from kiln.alarms.errors import ActionRefused, UnknownAlarm
from kiln.alarms.evaluate import Evaluator
from kiln.alarms.records import (
    ALARMS_TARGET,
    TRANSITION_KIND,
    AlarmRecord,
    AlarmSpec,
    ConditionChange,
    JournalEntry,
)
from kiln.alarms.states import (
    DEFAULT_MAX_SHELVE_S,
    AlarmState,
    Event,
    Outcome,
    Transition,
    TransitionRefused,
    transition,
)
from kiln.alarms.store import AlarmStore, JournalQuery, StoredDefinition
from kiln.core.bus import (
    BusError,
    Command,
    CommandServer,
    Overflow,
    SubscriptionClosed,
    ValueSubscription,
)
from kiln.core.bus import Event as BusEvent
from kiln.core.clock import Clock
from kiln.core.engine_stop import stop_engine
from kiln.core.platform import Health, Platform, Status
from kiln.core.values import ValueBatch
from kiln.model import AssetDef, AssetTypeDef

_LOGGER = logging.getLogger(__name__)

_CHANGE_EVENTS: dict[str, Event] = {
    "active": Event.BECOMES_ABNORMAL,
    "cleared": Event.RETURNS_TO_NORMAL,
    "suppress_on": Event.SUPPRESSION_ON,
    "suppress_off": Event.SUPPRESSION_OFF,
}
_LATEST_CHUNK = 5_000  # paths per `latest` request to the historian
_LATEST_TIMEOUT_S = 10.0
_KPI_LOOKBACK_US = 86_400_000_000
_THREAD_POINTS = 2_000  # batches this large are evaluated off the event loop


@dataclass(slots=True)
class EngineStats:
    batches: int = 0
    points: int = 0
    transitions: int = 0  # journal entries committed
    commit_failures: int = 0
    last_error: str = ""
    alarms: int = 0


@dataclass(frozen=True, slots=True)
class Declared:
    """What the plant file declares: the asset model and `alarms.definitions`."""

    types: Sequence[AssetTypeDef] = ()
    assets: Sequence[AssetDef] = ()
    tag_alarms: Sequence[AlarmDef] = ()


@dataclass(slots=True)
class _Pending:
    """What one step changed, to commit together."""

    records: dict[str, AlarmRecord] = field(default_factory=dict)
    entries: list[JournalEntry] = field(default_factory=list)


class AlarmEngine:
    """The `alarms` service. `store` is not yet open; the engine opens it at start."""

    name = "alarms"

    def __init__(
        self,
        store: AlarmStore,
        declared: Declared,
        *,
        max_shelve_s: float = DEFAULT_MAX_SHELVE_S,
        note_required: Iterable[Priority] = (),
        tick_s: float = 1.0,
        queue_points: int = 200_000,
    ) -> None:
        self.store = store
        self.declared = declared
        self.max_shelve_s = max_shelve_s
        self.note_required = frozenset(note_required)
        self.tick_s = tick_s
        self.queue_points = queue_points
        self.stats = EngineStats()
        self.specs: dict[str, AlarmSpec] = {}
        self.records: dict[str, AlarmRecord] = {}
        self._evaluator = Evaluator(())
        self._lock = asyncio.Lock()
        self._defining = asyncio.Lock()  # one change of the API definitions at a time
        self.skipped: list[str] = []  # API definitions that do not compile (in health)
        self._published_seq = 0  # the last journal entry published on the bus
        self._committed_seq = 0  # the last journal entry committed
        self._shelved: set[str] = set()  # alarms with a shelve that expires (tick checks them)
        self._platform: Platform | None = None
        self._clock: Clock | None = None
        self._sub: ValueSubscription | None = None
        self._server: CommandServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._status = Status.STARTING

    # -- life cycle ----------------------------------------------------------------------

    async def start(self, platform: Platform) -> None:
        self._platform, self._clock = platform, platform.clock
        await asyncio.to_thread(self.store.open)
        stored = await asyncio.to_thread(self.store.definitions)
        self.specs = {s.id: s for s in self._compile_tolerant(stored)}
        self.records = await asyncio.to_thread(self.store.load)
        await self._reconcile()
        self._published_seq = await asyncio.to_thread(self.store.published_seq)
        self._committed_seq = await asyncio.to_thread(self.store.last_seq)
        # Subscribe before asking for current values: nothing published meanwhile is missed.
        self._sub = platform.bus.subscribe(
            "alarms", max_points=self.queue_points, overflow=Overflow.BLOCK
        )
        self._server = await platform.bus.serve(ALARMS_TARGET, EngineCommands(self))
        await self._catch_up()  # what was committed but not published before a crash
        await self._evaluate_current()
        self._tasks = [
            platform.spawn(self._value_loop(self._sub), name="alarms-values"),
            platform.spawn(self._tick_loop(), name="alarms-tick"),
        ]
        self._status = Status.OK
        _LOGGER.info("Alarm engine started: %d alarms", len(self.specs))

    async def stop(self) -> None:
        server, self._server = self._server, None
        tasks, self._tasks = self._tasks, []
        await stop_engine(server, self._sub, tasks, self._lock, self.store.close)
        self._status = Status.STOPPED

    def health(self) -> Health:
        status = self._status
        if status is Status.OK and any(t.done() for t in self._tasks):
            status = Status.FAILED
        elif status is Status.OK and (
            (self.stats.commit_failures and self.stats.last_error) or self.skipped
        ):
            status = Status.DEGRADED
        return Health(
            status,
            {
                "alarms": len(self.specs),
                "active": sum(1 for r in self.records.values() if _active(r)),
                "batches": self.stats.batches,
                "points": self.stats.points,
                "transitions": self.stats.transitions,
                "commit_failures": self.stats.commit_failures,
                **({"definitions_skipped": self.skipped} if self.skipped else {}),
                **({"last_error": self.stats.last_error} if self.stats.last_error else {}),
            },
        )

    def now_us(self) -> int:
        assert self._clock is not None, "the engine is not started"
        return self._clock.now_us()

    # -- definitions ---------------------------------------------------------------------

    def _compile(self, stored: Sequence[StoredDefinition]) -> list[AlarmSpec]:
        d = self.declared
        return compile_alarms(
            d.types, d.assets, d.tag_alarms, [(s.asset, s.definition) for s in stored]
        )

    def _compile_tolerant(self, stored: Sequence[StoredDefinition]) -> list[AlarmSpec]:
        """Compile with the API definitions; one that no longer fits the plant (its tag left
        the asset type, say) is skipped and reported in health, never stops the rest."""
        self.skipped = []
        try:
            return self._compile(stored)
        except AlarmConfigError:
            pass
        kept: list[StoredDefinition] = []
        for one in stored:
            try:
                self._compile([*kept, one])
            except AlarmConfigError as err:
                self.skipped.append(f"{one.asset}/{one.definition.name}: {err}")
                _LOGGER.error(
                    "Alarm definition skipped: %s/%s: %s", one.asset, one.definition.name, err
                )
            else:
                kept.append(one)
        return self._compile(kept)

    async def _reconcile(self) -> None:
        """Records for new alarms, none for alarms no longer defined; a fresh evaluator that
        knows which alarms were active or suppressed when the engine last stopped."""
        gone = [i for i in self.records if i not in self.specs]
        if gone:
            await asyncio.to_thread(self.store.delete_records, gone)
            for i in gone:
                del self.records[i]
        new = [i for i in self.specs if i not in self.records]
        # An alarm defined again goes on counting its occurrences where it stopped.
        last = await asyncio.to_thread(self.store.last_occurrences, new) if new else {}
        for spec in self.specs.values():
            old = self.records.get(spec.id)
            self.records[spec.id] = (
                _fresh_record(spec, last.get(spec.id, 0))
                if old is None
                else replace(
                    old,
                    priority=spec.priority,
                    tag=spec.tag,
                    condition=spec.condition,
                    limit=_configured_limit(spec) if old.limit is None else old.limit,
                )
            )
        self.stats.alarms = len(self.specs)
        self._shelved = {i for i, r in self.records.items() if r.state.unshelve_at_us is not None}
        self._evaluator = self._fresh_evaluator()

    def _fresh_evaluator(self) -> Evaluator:
        """An evaluator that knows which alarms the records say are active or suppressed."""
        evaluator = Evaluator(list(self.specs.values()))
        # Re-alarms count from now: the ones that fell due while the engine was down would
        # only flood the journal with announcements nobody could have heard.
        now = self.now_us()
        evaluator.restore(
            {i: now for i, r in self.records.items() if _active(r)},
            [i for i, r in self.records.items() if r.state.suppressed],
        )
        return evaluator

    async def redefine(self, stored: Sequence[StoredDefinition]) -> None:
        """Compile with these API definitions (raises AlarmConfigError), then switch to them."""
        specs = {s.id: s for s in self._compile(stored)}
        async with self._lock:
            self.specs = specs
            await self._reconcile()
        await self._evaluate_current()

    def check_definitions(self, stored: Sequence[StoredDefinition]) -> None:
        """Raise AlarmConfigError if these API definitions do not compile with the plant's."""
        self._compile(stored)

    # -- evaluation ----------------------------------------------------------------------

    async def _evaluate_current(self) -> None:
        """Evaluate the alarmed tags' current values (after a start or a redefinition)."""
        assert self._platform is not None
        paths = sorted(self._evaluator.paths)
        for i in range(0, len(paths), _LATEST_CHUNK):
            try:
                reply = await self._platform.bus.request(
                    Command("historian", "latest", {"paths": paths[i : i + _LATEST_CHUNK]}),
                    timeout_s=_LATEST_TIMEOUT_S,
                )
            except BusError as err:
                _LOGGER.warning(
                    "Alarm engine: no current values to evaluate (%s); alarms follow new values",
                    err,
                )
                return
            rows = reply.get("values", [])
            if rows:
                batch = ValueBatch(
                    paths=[r[0] for r in rows],
                    values=[r[1] for r in rows],
                    source_us=[int(r[2]) for r in rows],
                    qualities=[int(r[3]) for r in rows],
                    receive_us=self.now_us(),
                )
                await self.apply_batch(batch)

    async def _value_loop(self, sub: ValueSubscription) -> None:
        while True:
            try:
                first = await sub.get()
            except SubscriptionClosed:
                return
            batches = [first, *sub.drain(self.queue_points)]
            try:
                await self.apply_batches(batches)
            except Exception as err:
                # One bad batch (or a store outage) must not stop alarming on the next.
                self.stats.last_error = f"{type(err).__name__}: {err}"
                _LOGGER.exception("Alarm engine: %d batches failed", len(batches))

    async def apply_batch(self, batch: ValueBatch) -> list[JournalEntry]:
        return await self.apply_batches([batch])

    async def apply_batches(self, batches: Sequence[ValueBatch]) -> list[JournalEntry]:
        """Evaluate the batches in order and commit what they changed in one transaction:
        batches that queued up behind a slow commit share the next one."""
        async with self._lock:
            pending = _Pending()
            evaluator = self._evaluator
            for batch in batches:
                self.stats.batches += 1
                self.stats.points += len(batch)
                if not evaluator.paths:
                    continue
                # In a worker thread: a large batch (a bulk upload of a million points) is
                # tens of milliseconds of evaluation the API's event loop must not wait for.
                # The evaluator is only touched under the lock, so one thread at a time.
                if len(batch) >= _THREAD_POINTS:
                    changes = await asyncio.to_thread(evaluator.evaluate, batch)
                else:
                    changes = evaluator.evaluate(batch)
                if changes:
                    self._apply_changes(changes, pending)
            return await self._commit(pending)

    async def _tick_loop(self) -> None:
        assert self._clock is not None
        while True:
            await self._clock.sleep(self.tick_s)
            try:
                await self.tick()
            except Exception as err:
                self.stats.last_error = f"{type(err).__name__}: {err}"
                _LOGGER.exception("Alarm engine: a tick failed")

    async def tick(self) -> list[JournalEntry]:
        """Let time pass: delays and re-alarms fall due, stale tags alarm, shelves expire."""
        async with self._lock:
            now = self.now_us()
            pending = self._apply_changes(self._evaluator.tick(now), _Pending())
            for alarm_id in list(self._shelved):
                rec = pending.records.get(alarm_id) or self.records.get(alarm_id)
                due = None if rec is None else rec.state.unshelve_at_us
                if rec is not None and due is not None and due <= now:
                    self._step(pending, rec, Event.SHELVE_EXPIRY, now, user="system")
            if not pending.records and self._published_seq < self._committed_seq:
                await self._catch_up()
            return await self._commit(pending)

    def _apply_changes(self, changes: Sequence[ConditionChange], pending: _Pending) -> _Pending:
        recorded = self.now_us()
        for change in changes:
            rec = pending.records.get(change.alarm_id) or self.records.get(change.alarm_id)
            spec = self.specs.get(change.alarm_id)
            if rec is None or spec is None:
                continue
            if change.event not in ("suppress_on", "suppress_off"):
                # A suppression condition's change says nothing of the alarm's own value.
                rec = replace(rec, value=_json_value(change.value), limit=change.limit)
            if change.event == "realarm":
                rec = replace(rec, message=_render(spec, rec))
                pending.records[rec.id] = rec
                pending.entries.append(
                    _entry(rec, "realarm", change.source_us, recorded, announced=_announces(rec))
                )
                continue
            event = _CHANGE_EVENTS[change.event]
            self._step(pending, rec, event, change.source_us, user="", recorded_us=recorded)
        return pending

    def _step(
        self,
        pending: _Pending,
        rec: AlarmRecord,
        event: Event,
        at_us: int,
        *,
        user: str,
        comment: str = "",
        shelve_s: float | None = None,
        recorded_us: int | None = None,
    ) -> AlarmRecord:
        """Apply one state-machine event to `rec` into `pending`; raises TransitionRefused."""
        spec = self.specs[rec.id]
        tr = transition(
            rec.state,
            event,
            now_us=at_us,
            latching=spec.latching,
            shelve_s=shelve_s,
            max_shelve_s=self.max_shelve_s,
        )
        new = _after(rec, tr, at_us, user, comment)
        pending.records[rec.id] = new
        if tr.outcome is not Outcome.IGNORED:
            if event is Event.BECOMES_ABNORMAL or not new.message:
                # The message tells what happened: the value that raised it, kept until the
                # next activation (a clear does not rewrite it with the normal value).
                new = replace(new, message=_render(spec, new))
                pending.records[rec.id] = new
            pending.entries.append(
                JournalEntry(
                    source_us=at_us,
                    recorded_us=self.now_us() if recorded_us is None else recorded_us,
                    alarm_id=rec.id,
                    asset=rec.asset,
                    priority=rec.priority,
                    occurrence=tr.new.occurrence,
                    event=event.value,
                    old_state=tr.old.shown,
                    new_state=tr.new.shown,
                    announced=tr.announced,
                    value=new.value,
                    user=user,
                    comment=comment,
                    message=new.message,
                )
            )
        return new

    async def _commit(self, pending: _Pending) -> list[JournalEntry]:
        """Store, then tell: nothing is published or answered before it is on disk."""
        if not pending.records:
            return []
        try:
            entries = await asyncio.to_thread(
                partial(
                    self.store.commit,
                    list(pending.records.values()),
                    pending.entries,
                    published_seq=self._published_seq,
                )
            )
        except Exception as err:
            self.stats.commit_failures += 1
            self.stats.last_error = f"commit failed: {type(err).__name__}: {err}"
            # The evaluator has moved on, the records have not: start it again from the
            # records, so the next value is judged against what is stored (nothing is lost:
            # a condition still abnormal activates again).
            self._evaluator = self._fresh_evaluator()
            raise
        self.records.update(pending.records)
        for rec in pending.records.values():
            if rec.state.unshelve_at_us is None:
                self._shelved.discard(rec.id)
            else:
                self._shelved.add(rec.id)
        self.stats.transitions += len(entries)
        if entries:
            self._committed_seq = entries[-1].seq
        if self._published_seq < self._committed_seq - len(entries):
            await self._catch_up()  # an earlier publish failed: the journal has it
        else:
            await self._publish(entries)
        return entries

    async def _publish(self, entries: Sequence[JournalEntry]) -> bool:
        """Publish in journal order, stopping at the first failure (the rest are published
        again from the journal); whether all went out."""
        assert self._platform is not None
        now = self.now_us()
        for entry in entries:
            rec = self.records.get(entry.alarm_id)
            alarm = rec.to_json(now) if rec is not None else None
            event = BusEvent(
                kind=TRANSITION_KIND,
                key=entry.alarm_id,
                data={"entry": entry.to_json(), "alarm": alarm},
                time_us=entry.source_us,
                id=f"{entry.alarm_id}#{entry.seq}",
            )
            try:
                await self._platform.bus.publish_event(event)
            except BusError as err:
                self.stats.last_error = f"publish failed: {err}"
                _LOGGER.warning("Alarm engine: could not publish %s: %s", event.id, err)
                return False
            self._published_seq = max(self._published_seq, entry.seq)
        return True

    async def _catch_up(self) -> None:
        """Publish the journal entries committed but not published (after a crash or a bus
        outage), oldest first, with the alarms' current records."""
        while self._published_seq < self._committed_seq:
            query = JournalQuery(after_seq=self._published_seq, ascending=True, limit=1000)
            entries = await asyncio.to_thread(self.store.journal, query)
            if not entries or not await self._publish(entries):
                return

    # -- operator actions ----------------------------------------------------------------

    async def act(
        self,
        alarm_id: str,
        event: Event,
        *,
        user: str,
        comment: str = "",
        shelve_s: float | None = None,
        oos_reason: str = "",
    ) -> AlarmRecord:
        """One operator action on one alarm, committed before it returns.

        Raises UnknownAlarm for an unknown alarm and ActionRefused when it cannot apply.
        """
        async with self._lock:
            rec = self.records.get(alarm_id)
            if rec is None or alarm_id not in self.specs:
                raise UnknownAlarm(alarm_id)
            self._check_note(rec, event, comment)
            pending = _Pending()
            try:
                new = self._step(
                    pending,
                    rec,
                    event,
                    self.now_us(),
                    user=user,
                    comment=comment,
                    shelve_s=shelve_s,
                )
            except TransitionRefused as err:
                raise ActionRefused(str(err)) from None
            if event is Event.OUT_OF_SERVICE_ON:
                pending.records[alarm_id] = replace(new, out_of_service_reason=oos_reason)
                if pending.entries:
                    pending.entries[-1] = replace(
                        pending.entries[-1], comment=oos_reason or comment
                    )
            if not pending.entries:
                raise ActionRefused(
                    f"{event.value.replace('_', ' ')} changes nothing: the alarm is "
                    f"{rec.state.shown.value.replace('_', ' ')}"
                )
            await self._commit(pending)
            return self.records[alarm_id]

    async def comment(self, alarm_id: str, *, user: str, comment: str) -> AlarmRecord:
        """A comment in the journal; the alarm's state does not change."""
        async with self._lock:
            rec = self.records.get(alarm_id)
            if rec is None or alarm_id not in self.specs:
                raise UnknownAlarm(alarm_id)
            now = self.now_us()
            new = replace(rec, note=comment)
            entry = _entry(new, "comment", now, now, user=user, comment=comment)
            await self._commit(_Pending({alarm_id: new}, [entry]))
            return self.records[alarm_id]

    def _check_note(self, rec: AlarmRecord, event: Event, note: str) -> None:
        if event is Event.ACKNOWLEDGE and rec.priority in self.note_required and not note.strip():
            raise ActionRefused(
                f"acknowledging a {rec.priority.value} priority alarm needs a note "
                "(alarms.note_required in the plant file)"
            )
        if event is Event.OUT_OF_SERVICE_ON and not note.strip():
            raise ActionRefused("taking an alarm out of service needs a reason")

    async def read_journal(self, query: JournalQuery) -> list[JournalEntry]:
        return await asyncio.to_thread(self.store.journal, query)

    async def entries_for_kpis(
        self, start_us: int, end_us: int, asset: str | None
    ) -> list[JournalEntry]:
        """The journal from a day before `start_us` (so occurrences spanning the start are
        known) to `end_us`."""
        return await asyncio.to_thread(
            self.store.entries_between, start_us - _KPI_LOOKBACK_US, end_us, asset
        )

    async def stored_definitions(self) -> list[StoredDefinition]:
        return await asyncio.to_thread(self.store.definitions)

    async def define(self, stored: StoredDefinition) -> int:
        """Add or replace an API definition; refused (AlarmConfigError) if it does not compile
        with the rest. The number of alarms afterwards."""
        async with self._defining:
            return await self._define(stored)

    async def _define(self, stored: StoredDefinition) -> int:
        current = [
            s
            for s in await self.stored_definitions()
            if (s.asset, s.definition.name) != (stored.asset, stored.definition.name)
        ]
        self.check_definitions([*current, stored])
        await asyncio.to_thread(self.store.put_definition, stored)
        await self.redefine([*current, stored])
        return len(self.specs)

    async def undefine(self, asset: str, name: str) -> bool:
        async with self._defining:
            if not await asyncio.to_thread(self.store.delete_definition, asset, name):
                return False
            await self.redefine(await self.stored_definitions())
            return True

    def listing(self, ids: Iterable[str] | None = None) -> list[AlarmRecord]:
        if ids is None:
            return list(self.records.values())
        return [self.records[i] for i in ids if i in self.records]


def _fresh_record(spec: AlarmSpec, occurrence: int = 0) -> AlarmRecord:
    return AlarmRecord(
        id=spec.id,
        asset=spec.asset,
        name=spec.name,
        condition=spec.condition,
        priority=spec.priority,
        tag=spec.tag,
        state=AlarmState(occurrence=occurrence),
        limit=_configured_limit(spec),
    )


def _configured_limit(spec: AlarmSpec) -> float | None:
    """A limit alarm's limit when it is a number (one given as a tag is known once it arrives),
    so a trend can draw it before the alarm was ever active."""
    definition = spec.definition
    if isinstance(definition, LimitAlarm) and spec.condition in ("hihi", "hi", "lo", "lolo"):
        limit = getattr(definition, spec.condition)
        if limit is not None and isinstance(limit.value, float):
            return limit.value
    return None


def _active(rec: AlarmRecord) -> bool:
    return rec.state.process.value in ("unacknowledged", "acknowledged")


def _announces(rec: AlarmRecord) -> bool:
    s = rec.state
    return not (s.out_of_service or s.suppressed or s.shelving.value != "unshelved")


def _after(rec: AlarmRecord, tr: Transition, at_us: int, user: str, comment: str) -> AlarmRecord:
    """The record after transition `tr`: the state and what the operator columns say."""
    new = replace(rec, state=tr.new)
    if tr.outcome is Outcome.IGNORED:
        return new
    new = replace(new, changed_us=at_us)
    if tr.new_occurrence:
        new = replace(new, active_since_us=at_us, acked_by="", acked_us=None, note="")
    if tr.event is Event.ACKNOWLEDGE:
        new = replace(new, acked_by=user, acked_us=at_us)
    if tr.event in (Event.TIMED_SHELVE, Event.ONE_SHOT_SHELVE):
        new = replace(new, shelved_by=user)
    if tr.event in (Event.UNSHELVE, Event.SHELVE_EXPIRY) or (
        tr.old.shelving != tr.new.shelving and tr.new.shelving.value == "unshelved"
    ):
        new = replace(new, shelved_by="")
    if tr.event is Event.OUT_OF_SERVICE_OFF:
        new = replace(new, out_of_service_reason="")
    if comment:
        new = replace(new, note=comment)
    return new


def _entry(
    rec: AlarmRecord,
    event: str,
    at_us: int,
    recorded_us: int,
    *,
    announced: bool = False,
    user: str = "",
    comment: str = "",
) -> JournalEntry:
    """A journal entry that leaves the state as it is (a re-alarm, a comment)."""
    shown = rec.state.shown
    return JournalEntry(
        source_us=at_us,
        recorded_us=recorded_us,
        alarm_id=rec.id,
        asset=rec.asset,
        priority=rec.priority,
        occurrence=rec.state.occurrence,
        event=event,
        old_state=shown,
        new_state=shown,
        announced=announced,
        value=rec.value,
        user=user,
        comment=comment,
        message=rec.message,
    )


def _json_value(value: float | str | None) -> float | str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _render(spec: AlarmSpec, rec: AlarmRecord) -> str:
    """The definition's message with its placeholders filled (validated at definition time)."""
    value = rec.value
    shown = f"{value:.6g}" if isinstance(value, float) else ("" if value is None else str(value))
    limit = "" if rec.limit is None else f"{rec.limit:.6g}"
    tag = (spec.tag or "").rsplit("/", 1)[-1]
    try:
        return spec.definition.message.format(value=shown, limit=limit, tag=tag, asset=spec.asset)
    except (KeyError, IndexError, ValueError):
        return spec.definition.message


__all__ = ["ActionRefused", "AlarmConfigError", "AlarmEngine", "Declared", "UnknownAlarm"]
