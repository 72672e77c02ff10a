"""What a durable publish waits on: the acknowledgements of one batch, on any bus.

Both buses carry a storing subscriber's `DurabilityAck` back to the publisher as a message
(in one process through `inprocess_acks.AckChannel`, across processes over NATS); the waiting
is the same, so it is written once.
"""

from __future__ import annotations

import asyncio

from kiln.core.bus.protocol import DurabilityAck


class AckWaiter:
    """Acknowledgements expected for one batch: one per storing subscription that took it.

    How many is known only once the publish has reached every subscriber, and a fast storing
    subscriber may acknowledge before that; acknowledgements are counted as they come and the
    waiter settles when the count is known and reached, or at the first refusal.
    """

    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        self.expected: int | None = None
        self.received = 0
        self.error: str | None = None
        self._settled = asyncio.Event()

    def expect(self, count: int) -> None:
        self.expected = count
        self._check()

    def take(self, ack: DurabilityAck) -> None:
        self.received += 1
        if ack.error is not None and self.error is None:
            self.error = ack.error
        self._check()

    def fail(self, error: str) -> None:
        if self.error is None:
            self.error = error
        self._settled.set()

    def _check(self) -> None:
        if self.error is not None or (self.expected is not None and self.received >= self.expected):
            self._settled.set()

    async def wait(self) -> str | None:
        """None once every expected acknowledgement came, else the first refusal."""
        await self._settled.wait()
        return self.error
