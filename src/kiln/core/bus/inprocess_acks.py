"""Durability acknowledgements inside one process: messages from storing subscribers to waiters.

`publish_durable` registers a waiter under the batch's id before it publishes; a storing
subscription's `ack` sends a `DurabilityAck` through the channel, which settles the waiter. The
waiter is the channel's, never the batch's: a batch is plain data, the same one a broker carries.
"""

from __future__ import annotations

import logging

from kiln.core.bus.ack_waiter import AckWaiter
from kiln.core.bus.protocol import DurabilityAck

_LOGGER = logging.getLogger(__name__)


class AckChannel:
    """Where the acknowledgements of this process's durable publishes arrive."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._waiters: dict[str, AckWaiter] = {}

    def register(self, batch_id: str) -> AckWaiter:
        waiter = self._waiters[batch_id] = AckWaiter(batch_id)
        return waiter

    def forget(self, batch_id: str) -> None:
        self._waiters.pop(batch_id, None)

    def send(self, origin: str, ack: DurabilityAck) -> None:
        """Deliver `ack` to the publisher on node `origin` (only this process exists here)."""
        if origin != self.node:
            _LOGGER.debug("Acknowledgement for node %s dropped: this bus is %s", origin, self.node)
            return
        waiter = self._waiters.get(ack.batch_id)
        if waiter is not None:  # None: the publisher gave up (timeout) or was not waiting
            waiter.take(ack)

    def fail_all(self, error: str) -> None:
        for waiter in self._waiters.values():
            waiter.fail(error)
        self._waiters.clear()

    @property
    def waiting(self) -> int:
        return len(self._waiters)
