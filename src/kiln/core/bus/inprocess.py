"""The in-process bus (the embedded default): the `Bus` protocol inside one event loop.

Each channel lives in its own module: values in `inprocess_values` (bounded queues, both
overflow policies), durability acknowledgements in `inprocess_acks`, events in
`inprocess_events` (one bounded log, durable subscriptions by name), commands in
`inprocess_commands`. This class ties them together and answers for the bus as a whole.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from kiln.core.bus.inprocess_acks import AckChannel
from kiln.core.bus.inprocess_commands import CommandRouter
from kiln.core.bus.inprocess_events import EventChannel, InProcessEventSubscription
from kiln.core.bus.inprocess_values import Subscription
from kiln.core.bus.protocol import Command, CommandHandler, CommandServer, Event, Overflow
from kiln.core.clock import Clock
from kiln.core.errors import NotDurableError
from kiln.core.health import Health, Status
from kiln.core.values import ValueBatch

__all__ = ["InProcessBus", "Subscription"]


class InProcessBus:
    """Every channel of the bus for the engines of one process."""

    def __init__(self, clock: Clock, node: str = "local", *, max_events: int = 100_000) -> None:
        self.clock = clock
        self.node = node
        self.acks = AckChannel(node)
        self.events = EventChannel(clock, max_events)
        self.commands = CommandRouter()
        self._subs: list[Subscription] = []
        self._batch_ids = itertools.count(1)
        self.published_points = 0
        self.published_batches = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for sub in list(self._subs):
            sub.close()
        self.events.close_all()
        self.commands.close_all()
        self.acks.fail_all("the bus stopped before the batch was acknowledged")

    def health(self) -> Health:
        subs = {s.name: s.stats for s in self._subs}
        dropping = [name for name, st in subs.items() if st.dropped_batches]
        detail: dict[str, Any] = {
            "published_points": self.published_points,
            "subscribers": {
                name: {"depth_points": st.depth_points, "dropped_points": st.dropped_points}
                for name, st in subs.items()
            },
            "awaiting_ack": self.acks.waiting,
            "events": {
                "logged": len(self.events.log),
                "last_seq": self.events.log.last_seq,
                "subscribers": {
                    s.name: {"pending": s.stats.pending, "missed": s.stats.missed}
                    for s in self.events.subscriptions
                },
            },
            "command_targets": self.commands.targets,
        }
        if dropping:
            detail["dropping"] = dropping
        return Health(Status.OK, detail)

    # -- values ---------------------------------------------------------------------------

    def subscribe(
        self,
        name: str,
        *,
        max_points: int,
        overflow: Overflow,
        prefix: str | None = None,
        stores: bool = False,
    ) -> Subscription:
        if stores and any(s.stores and s.name == name for s in self._subs):
            raise ValueError(f"a storing subscription named {name!r} already exists")
        sub = Subscription(self, name, max_points, overflow, prefix, stores=stores)
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
        await self._fan_out(batch)

    async def _fan_out(self, batch: ValueBatch) -> int:
        """Deliver `batch`; how many storing subscriptions took all of it (and will ack it)."""
        if not len(batch):
            return 0
        self.published_batches += 1
        self.published_points += len(batch)
        storing = 0
        for sub in list(self._subs):
            accepted = sub._accepts(batch)
            taken = accepted is not None and await sub._put(accepted)
            if taken and sub.stores and accepted is batch:
                storing += 1
        return storing

    async def publish_durable(self, batch: ValueBatch, *, timeout_s: float) -> None:
        if not len(batch):
            return  # nothing to store is stored
        batch.batch_id = f"{self.node}:{next(self._batch_ids)}"
        batch.origin = self.node
        waiter = self.acks.register(batch.batch_id)
        try:
            async with asyncio.timeout(timeout_s):
                storing = await self._fan_out(batch)
                if not storing:
                    # Only a storing subscriber that took the batch itself can acknowledge it;
                    # without one the sender would wait for nothing.
                    waiter.fail("no subscriber stores this batch")
                waiter.expect(storing)
                error = await waiter.wait()
        except TimeoutError:
            raise NotDurableError(
                f"batch of {len(batch)} values: no acknowledgement within {timeout_s:g} s; "
                "consider it not stored and send it again (re-sending is harmless)"
            ) from None
        finally:
            self.acks.forget(batch.batch_id)
        if error is not None:
            raise NotDurableError(f"batch of {len(batch)} values not committed: {error}")

    # -- events ---------------------------------------------------------------------------

    async def publish_event(self, event: Event) -> int:
        return self.events.publish(event)

    def subscribe_events(
        self,
        name: str,
        *,
        kinds: Sequence[str] = (),
        durable: bool = False,
        start_seq: int | None = None,
        max_pending: int = 1000,
        ack_wait_s: float = 30.0,
    ) -> InProcessEventSubscription:
        return self.events.subscribe(
            name, kinds=kinds, durable=durable, start_seq=start_seq,
            max_pending=max_pending, ack_wait_s=ack_wait_s,
        )  # fmt: skip

    # -- commands -------------------------------------------------------------------------

    async def serve(self, target: str, handler: CommandHandler) -> CommandServer:
        return self.commands.serve(target, handler)

    async def request(self, command: Command, *, timeout_s: float) -> Mapping[str, Any]:
        return await self.commands.request(command, timeout_s)
