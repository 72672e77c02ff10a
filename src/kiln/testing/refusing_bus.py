"""An in-process bus that refuses publishes while told to, as a broker bus does when its broker
is unreachable or its stream full: for testing what a source does about it."""

from __future__ import annotations

import asyncio

from kiln.core.bus import BusError, BusFullError, Event, InProcessBus
from kiln.core.clock import Clock
from kiln.core.values import ValueBatch


class RefusingBus(InProcessBus):
    """`InProcessBus` whose next `refuse_values` publishes (and `refuse_events` event
    publishes) raise, as `NatsBus` does after its wait; `refused` is set at each refusal, so a
    test can await one instead of sleeping. `events_published` counts the events it took."""

    def __init__(self, clock: Clock, node: str = "local") -> None:
        super().__init__(clock, node)
        self.refuse_values = 0
        self.refuse_events = 0
        self.refused_values = 0
        self.refused_events = 0
        self.events_published = 0
        self.refused = asyncio.Event()

    async def publish(self, batch: ValueBatch) -> None:
        if self.refuse_values > 0:
            self.refuse_values -= 1
            self.refused_values += 1
            self.refused.set()
            raise BusFullError("the stream is full (test): retry later or raise the bound")
        await super().publish(batch)

    async def publish_event(self, event: Event) -> int:
        if self.refuse_events > 0:
            self.refuse_events -= 1
            self.refused_events += 1
            self.refused.set()
            raise BusError("the broker is unreachable (test)")
        seq = await super().publish_event(event)
        self.events_published += 1
        return seq
