"""Value subscriptions of the in-process bus: one bounded queue per subscriber.

Every subscriber declares how big its queue is (in points, since batch sizes vary by five
orders of magnitude) and what happens when it is full:

* ``Overflow.BLOCK`` — the publisher waits for space. For consumers that must see every point
  (the historian writer): a slow disk slows the sources down instead of losing data, and the
  time publishers spent blocked is counted so the back-pressure is visible in metrics.
* ``Overflow.DROP_OLDEST`` — the oldest queued batches are discarded and counted. For
  consumers that only care about the present (live views): a stalled browser must never
  slow down the plant.

A batch larger than a whole queue is still accepted when the queue is empty, so no batch can
wedge the bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol

from kiln.core.bus.inprocess_acks import AckChannel
from kiln.core.bus.protocol import (
    RETRY_ERROR,
    DurabilityAck,
    Overflow,
    SubscriptionClosed,
    SubscriptionStats,
)
from kiln.core.bus.queueing import full_for, log_dropped, under_prefix
from kiln.core.clock import Clock
from kiln.core.values import ValueBatch

_LOGGER = logging.getLogger(__name__)


class _Owner(Protocol):
    """What a subscription needs of its bus."""

    clock: Clock
    acks: AckChannel

    def _remove(self, sub: Subscription) -> None: ...


class Subscription:
    """One consumer's bounded queue. Iterate it, or `get()` / `drain()` from it.

    A storing subscription (`stores=True`) sends each batch's `DurabilityAck` when its consumer
    calls `ack`; any other subscription's `ack` does nothing.
    """

    def __init__(
        self,
        bus: _Owner,
        name: str,
        max_points: int,
        overflow: Overflow,
        prefix: str | None,
        *,
        stores: bool = False,
    ) -> None:
        if max_points < 1:
            raise ValueError(f"subscription {name!r}: max_points must be at least 1")
        self.name = name
        self.prefix = prefix.rstrip("/") if prefix else None
        self.stores = stores
        self._bus = bus
        self._queue: deque[ValueBatch] = deque()
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._closed = False
        self.stats = SubscriptionStats(name, overflow, max_points)

    @property
    def closed(self) -> bool:
        return self._closed

    def _accepts(self, batch: ValueBatch) -> ValueBatch | None:
        return under_prefix(batch, self.prefix)

    def _full_for(self, n: int) -> bool:
        return full_for(self.stats, bool(self._queue), n)

    async def _put(self, batch: ValueBatch) -> bool:
        """Queue `batch` (waiting or dropping as the overflow says); False if it found no room
        because the subscription closed."""
        if self._closed:
            return False
        n = len(batch)
        st = self.stats
        if st.overflow is Overflow.BLOCK:
            if self._full_for(n):
                started = self._bus.clock.monotonic()
                while self._full_for(n) and not self._closed:
                    self._space.clear()
                    await self._space.wait()
                st.blocked_seconds += self._bus.clock.monotonic() - started
            if self.closed:  # closed while we waited: the batch has nowhere to go
                return False
        else:
            while self._full_for(n):
                old = self._queue.popleft()
                st.depth_points -= len(old)
                st.dropped_points += len(old)
                st.dropped_batches += 1
                log_dropped(_LOGGER, st)
        self._queue.append(batch)
        st.depth_points += n
        st.depth_batches = len(self._queue)
        self._ready.set()
        return True

    def _take(self) -> ValueBatch:
        batch = self._queue.popleft()
        st = self.stats
        st.depth_points -= len(batch)
        st.depth_batches = len(self._queue)
        st.delivered_points += len(batch)
        self._space.set()
        return batch

    async def get(self) -> ValueBatch:
        """The next batch; raises SubscriptionClosed once closed and empty."""
        while not self._queue:
            if self._closed:
                raise SubscriptionClosed(self.name)
            self._ready.clear()
            await self._ready.wait()
        return self._take()

    def drain(self, max_points: int) -> list[ValueBatch]:
        """Take queued batches without waiting, up to about `max_points` (at least one batch)."""
        out: list[ValueBatch] = []
        taken = 0
        while self._queue and (not out or taken + len(self._queue[0]) <= max_points):
            batch = self._take()
            taken += len(batch)
            out.append(batch)
        return out

    async def ack(
        self, batch: ValueBatch, error: str | None = None, *, retry: bool = False
    ) -> None:
        """Done with `batch`: committed (`error` None) or refused; its publisher is told.

        `retry` changes nothing here: nothing outlives this process to deliver the batch again,
        so the publisher's `NotDurableError` is what makes it send the batch again."""
        if retry and error is None:
            error = RETRY_ERROR
        if self.stores and batch.batch_id:
            self._bus.acks.send(batch.origin, DurabilityAck(batch.batch_id, error))

    def close(self) -> None:
        """Stop receiving; wakes the consumer (after it empties the queue) and blocked publishers."""
        if not self._closed:
            self._closed = True
            self._bus._remove(self)
            self._ready.set()
            self._space.set()

    def __aiter__(self) -> AsyncIterator[ValueBatch]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ValueBatch]:
        while True:
            try:
                yield await self.get()
            except SubscriptionClosed:
                return
