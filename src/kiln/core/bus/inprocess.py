"""The in-process bus (the embedded default): batches of values fanned out to bounded queues.

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
from typing import Any

from kiln.core.bus.protocol import Overflow, SubscriptionClosed, SubscriptionStats
from kiln.core.clock import Clock
from kiln.core.health import Health, Status
from kiln.core.values import ValueBatch, path_has_prefix

_LOGGER = logging.getLogger(__name__)


class Subscription:
    """One consumer's bounded queue. Iterate it, or `get()` / `drain()` from it."""

    def __init__(
        self, bus: InProcessBus, name: str, max_points: int, overflow: Overflow, prefix: str | None
    ) -> None:
        if max_points < 1:
            raise ValueError(f"subscription {name!r}: max_points must be at least 1")
        self.name = name
        self.prefix = prefix.rstrip("/") if prefix else None
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
        if self.prefix is None:
            return batch
        prefix = self.prefix
        sub = batch.select(lambda p: path_has_prefix(p, prefix))
        return sub if len(sub) else None

    def _full_for(self, n: int) -> bool:
        return bool(self._queue) and self.stats.depth_points + n > self.stats.max_points

    async def _put(self, batch: ValueBatch) -> None:
        if self._closed:
            return
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
                return
        else:
            while self._full_for(n):
                old = self._queue.popleft()
                st.depth_points -= len(old)
                st.dropped_points += len(old)
                st.dropped_batches += 1
                if st.dropped_batches == 1 or st.dropped_batches % 1000 == 0:
                    _LOGGER.warning(
                        "Subscriber %s is too slow: %d batches dropped so far",
                        self.name,
                        st.dropped_batches,
                    )
        self._queue.append(batch)
        st.depth_points += n
        st.depth_batches = len(self._queue)
        self._ready.set()

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


class InProcessBus:
    """Fan-out of value batches to subscribers, each with its own bound and overflow policy."""

    def __init__(self, clock: Clock, node: str = "local") -> None:
        self.clock = clock
        self.node = node
        self._subs: list[Subscription] = []
        self.published_points = 0
        self.published_batches = 0

    def subscribe(
        self,
        name: str,
        *,
        max_points: int,
        overflow: Overflow,
        prefix: str | None = None,
    ) -> Subscription:
        sub = Subscription(self, name, max_points, overflow, prefix)
        self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subs)

    async def publish(self, batch: ValueBatch) -> None:
        """Deliver to every subscriber; waits only on BLOCK subscribers that are full."""
        if not len(batch):
            batch.mark_durable()
            return
        self.published_batches += 1
        self.published_points += len(batch)
        taken_whole = False
        for sub in list(self._subs):
            accepted = sub._accepts(batch)
            if accepted is not None:
                await sub._put(accepted)
                taken_whole = taken_whole or accepted is batch
        if batch.wants_ack and not taken_whole:
            # Only a subscriber that receives the batch itself can acknowledge it; without one
            # the sender would wait forever for an acknowledgement nobody is going to give.
            batch.mark_durable(RuntimeError("no subscriber stores this batch"))

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for sub in list(self._subs):
            sub.close()

    def health(self) -> Health:
        subs = {s.name: s.stats for s in self._subs}
        dropping = [name for name, st in subs.items() if st.dropped_batches]
        detail: dict[str, Any] = {
            "published_points": self.published_points,
            "subscribers": {
                name: {"depth_points": st.depth_points, "dropped_points": st.dropped_points}
                for name, st in subs.items()
            },
        }
        if dropping:
            detail["dropping"] = dropping
        return Health(Status.OK, detail)
