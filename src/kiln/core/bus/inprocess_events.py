"""Events on the in-process bus: one bounded log, cursors into it, and durable subscriptions.

The log holds the newest `max_events` events with contiguous sequence numbers, so an event is
found by arithmetic. Every subscription reads through a cursor (the next sequence number it
looks at); when the log drops an event a cursor had not reached, the cursor moves past it and
counts it as missed. A durable subscription's cursor and its unacknowledged deliveries belong
to the name, not to the subscription object, so a successor under the same name carries on.

Redelivery after `ack_wait_s` is checked by the consumer's own `get()`: it is the only place a
redelivery can be observed, so no background task is needed. The wait uses the bus's clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from kiln.core.bus.kinds import kind_filter, kind_matches
from kiln.core.bus.protocol import BusError, Event, EventStats, SubscriptionClosed
from kiln.core.clock import Clock


class Cursor:
    """A reader's place in the log: the next sequence number it will look at."""

    def __init__(self, position: int, kinds: tuple[str, ...]) -> None:
        self.position = position
        self.kinds = kinds
        self.missed = 0
        self.stats: EventStats | None = None  # the attached subscription's, kept current
        self.wake = asyncio.Event()

    def count_missed(self, n: int) -> None:
        self.missed += n
        if self.stats is not None:
            self.stats.missed += n


class EventLog:
    """The newest `max_events` events; sequence numbers start at 1 and have no gaps."""

    def __init__(self, max_events: int) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.max_events = max_events
        self.last_seq = 0
        self._events: deque[Event] = deque()
        self._ids: dict[str, int] = {}
        self._cursors: set[Cursor] = set()

    @property
    def first_seq(self) -> int:
        return self._events[0].seq if self._events else self.last_seq + 1

    def __len__(self) -> int:
        return len(self._events)

    def append(self, event: Event) -> int:
        if event.id:
            seen = self._ids.get(event.id)
            if seen is not None:
                return seen
        if len(self._events) >= self.max_events:
            self._evict()
        self.last_seq += 1
        self._events.append(dataclasses.replace(event, seq=self.last_seq))
        if event.id:
            self._ids[event.id] = self.last_seq
        for cursor in self._cursors:
            cursor.wake.set()
        return self.last_seq

    def _evict(self) -> None:
        gone = self._events.popleft()
        if gone.id and self._ids.get(gone.id) == gone.seq:
            # A duplicate is recognised only while its original is in the log.
            del self._ids[gone.id]
        for cursor in self._cursors:
            if cursor.position <= gone.seq:
                if kind_matches(gone.kind, cursor.kinds):
                    cursor.count_missed(1)
                cursor.position = gone.seq + 1

    def open(self, position: int, kinds: tuple[str, ...]) -> Cursor:
        cursor = Cursor(max(1, position), kinds)
        self._cursors.add(cursor)
        return cursor

    def close(self, cursor: Cursor) -> None:
        self._cursors.discard(cursor)

    def next_for(self, cursor: Cursor) -> Event | None:
        """The next event the cursor selects, moving it past; None when it is at the end."""
        first = self.first_seq
        if cursor.position < first:
            # Resumed from before the log's start: what is gone is gone (its kinds unknown).
            cursor.count_missed(first - cursor.position)
            cursor.position = first
        while cursor.position <= self.last_seq:
            event = self._events[cursor.position - first]
            cursor.position += 1
            if kind_matches(event.kind, cursor.kinds):
                return event
        return None


@dataclass(slots=True)
class Delivery:
    event: Event
    redelivered: bool
    _on_ack: Callable[[], None] | None = field(default=None, repr=False)

    async def ack(self) -> None:
        if self._on_ack is not None:
            self._on_ack()
            self._on_ack = None


@dataclass(slots=True)
class _Pending:
    event: Event
    deadline: float


class DurableState:
    """What a durable name keeps for the bus's life: its cursor and its unacknowledged events."""

    def __init__(self, name: str, cursor: Cursor) -> None:
        self.name = name
        self.cursor = cursor
        self.pending: dict[int, _Pending] = {}
        self.redeliver: deque[int] = deque()  # seqs owed to the subscriber, oldest first
        self.active: InProcessEventSubscription | None = None


class InProcessEventSubscription:
    """Deliveries of one subscriber; durable ones are acknowledged, the others need not be."""

    def __init__(
        self,
        name: str,
        log: EventLog,
        clock: Clock,
        cursor: Cursor,
        *,
        durable: DurableState | None = None,
        max_pending: int = 1000,
        ack_wait_s: float = 30.0,
        on_close: Callable[[InProcessEventSubscription], None] | None = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"event subscription {name!r}: max_pending must be at least 1")
        if ack_wait_s <= 0:
            raise ValueError(f"event subscription {name!r}: ack_wait_s must be positive")
        self.name = name
        self.stats = EventStats(name)
        self._log = log
        self._clock = clock
        self._cursor = cursor
        self._durable = durable
        self._max_pending = max_pending
        self._ack_wait_s = ack_wait_s
        self._on_close = on_close
        self._closed = False
        cursor.stats = self.stats
        self.stats.missed = cursor.missed
        if durable is not None:
            durable.active = self
            # Whatever the predecessor left unacknowledged comes first, in log order.
            durable.redeliver = deque(sorted(durable.pending))
            self.stats.pending = len(durable.pending)

    @property
    def closed(self) -> bool:
        return self._closed

    async def get(self) -> Delivery:
        while True:
            if self._closed:
                raise SubscriptionClosed(self.name)
            self._cursor.wake.clear()
            delivery = self._next()
            if delivery is not None:
                return delivery
            await self._wait(until=self._next_deadline())

    def _next(self) -> Delivery | None:
        state = self._durable
        if state is None:
            event = self._log.next_for(self._cursor)
            if event is None:
                return None
            self.stats.delivered += 1
            return Delivery(event, redelivered=False)
        now = self._clock.monotonic()
        for seq, owed in state.pending.items():
            if owed.deadline <= now and seq not in state.redeliver:
                state.redeliver.append(seq)
        while state.redeliver:
            seq = state.redeliver.popleft()
            again = state.pending.get(seq)
            if again is not None:  # None: acknowledged meanwhile
                again.deadline = now + self._ack_wait_s
                self.stats.redelivered += 1
                return Delivery(again.event, True, self._acker(state, seq))
        if len(state.pending) >= self._max_pending:
            return None
        event = self._log.next_for(self._cursor)
        if event is None:
            return None
        state.pending[event.seq] = _Pending(event, now + self._ack_wait_s)
        self.stats.delivered += 1
        self.stats.pending = len(state.pending)
        return Delivery(event, False, self._acker(state, event.seq))

    def _acker(self, state: DurableState, seq: int) -> Callable[[], None]:
        def ack() -> None:
            if state.pending.pop(seq, None) is None:
                return
            active = state.active
            if active is not None:
                active.stats.acked += 1
                active.stats.pending = len(state.pending)
            state.cursor.wake.set()  # room under max_pending

        return ack

    def _next_deadline(self) -> float | None:
        state = self._durable
        if state is None or not state.pending:
            return None
        return min(p.deadline for p in state.pending.values()) - self._clock.monotonic()

    async def _wait(self, *, until: float | None) -> None:
        """Until the cursor is woken (an event, an ack, close) or `until` seconds (bus clock)
        pass: the bus clock, not the loop's, so a test's fake clock drives redelivery."""
        wake = self._cursor.wake
        if until is None:
            await wake.wait()
            return
        woken = asyncio.ensure_future(wake.wait())
        timer = asyncio.ensure_future(self._clock.sleep(max(until, 0.0)))
        try:
            await asyncio.wait({woken, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            timer.cancel()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._cursor.stats = None
        state = self._durable
        if state is not None:
            state.active = None
            state.redeliver = deque(sorted(state.pending))
        if self._on_close is not None:
            self._on_close(self)
        self._cursor.wake.set()

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Delivery]:
        while True:
            try:
                yield await self.get()
            except SubscriptionClosed:
                return


class EventChannel:
    """The log and its subscriptions, durable ones by name."""

    def __init__(self, clock: Clock, max_events: int) -> None:
        self.clock = clock
        self.log = EventLog(max_events)
        self._durables: dict[str, DurableState] = {}
        self._subs: set[InProcessEventSubscription] = set()

    def publish(self, event: Event) -> int:
        if not event.kind or not event.key:
            raise ValueError(
                f"an event needs a kind and a key (got kind={event.kind!r}, key={event.key!r})"
            )
        return self.log.append(event)

    def subscribe(
        self,
        name: str,
        *,
        kinds: Sequence[str],
        durable: bool,
        start_seq: int | None,
        max_pending: int,
        ack_wait_s: float,
    ) -> InProcessEventSubscription:
        selected = kind_filter(kinds)
        start = self.log.last_seq + 1 if start_seq is None else start_seq
        if not durable:
            cursor = self.log.open(start, selected)
            sub = InProcessEventSubscription(
                name, self.log, self.clock, cursor, on_close=self._closed_plain,
            )  # fmt: skip
        else:
            state = self._durables.get(name)
            if state is None:
                state = DurableState(name, self.log.open(start, selected))
                self._durables[name] = state
            elif state.cursor.kinds != selected:
                raise BusError(
                    f"durable event subscription {name!r} selects kinds "
                    f"{list(state.cursor.kinds) or 'all'}, not {list(selected) or 'all'}: "
                    "use another name for another selection"
                )
            if state.active is not None:
                raise BusError(
                    f"durable event subscription {name!r} already has a subscriber in this "
                    "process: close it first (its unacknowledged events go to the next one)"
                )
            sub = InProcessEventSubscription(
                name, self.log, self.clock, state.cursor, durable=state,
                max_pending=max_pending, ack_wait_s=ack_wait_s, on_close=self._subs.discard,
            )  # fmt: skip
        self._subs.add(sub)
        return sub

    def _closed_plain(self, sub: InProcessEventSubscription) -> None:
        self._subs.discard(sub)
        self.log.close(sub._cursor)

    def close_all(self) -> None:
        for sub in list(self._subs):
            sub.close()

    @property
    def subscriptions(self) -> list[InProcessEventSubscription]:
        return list(self._subs)

    @property
    def durable_names(self) -> list[str]:
        return sorted(self._durables)
