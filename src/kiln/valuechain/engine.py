"""The value chain engine: orders, planning, lots and genealogy behind bus commands.

One platform service (stage ENGINES). It owns the value chain store (`ValuechainStore`) and
answers the commands of target `valuechain` (`kiln.valuechain.engine_commands`), so the API
talks to it the same way in one process or over NATS. Every change is checked by a pure core
(`trade`, `lots`, `mrp`, `genealogy`), written in one database transaction with its event in
the store's outbox, and only then answered: what the engine acknowledged is on disk, and a
`kill -9` loses nothing it said it did.

The outbox is published by its own task (`valuechain.<kind>` events: order, lot, plan, recall,
organisation), each event with the id `vc-<seq>`, so an event re-sent after a crash between
the commit and the publish is a duplicate the bus drops. Webhooks and the pages follow these
events.

Confirming a planned work order creates the order in production's execution by a bus command
(target `production`, `order_create`): the two engines meet only on the bus.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from kiln.core.bus import BusError, CommandServer, Event
from kiln.core.clock import Clock
from kiln.core.engine_stop import stop_engine
from kiln.core.platform import Health, Platform, Status
from kiln.valuechain.genealogy import Trace
from kiln.valuechain.lineage import LineageIndex
from kiln.valuechain.production_link import ProductionFollower
from kiln.valuechain.settings import ValuechainSettings
from kiln.valuechain.store import ValuechainStore

_LOGGER = logging.getLogger(__name__)

VALUECHAIN_TARGET = "valuechain"
EVENT_PREFIX = "valuechain."
_PUBLISH_IDLE_S = 1.0  # the outbox is looked at this often even when nothing woke it

T = TypeVar("T")


@dataclass
class EngineStats:
    commands: int = 0
    changes: int = 0
    published: int = 0
    publish_failures: int = 0
    last_error: str | None = None


class ValuechainEngine:
    """The service; `commands` holds the handlers, this holds the store and the outbox."""

    name = "valuechain"

    def __init__(self, store: ValuechainStore, settings: ValuechainSettings) -> None:
        self.store = store
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        self.stats = EngineStats()
        # One writer at a time: a change reads, checks and writes in one thread, and the
        # outbox publisher reads what it committed.
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        # The genealogy index (docs/valuechain.md): loaded at start, brought up to date after
        # every change from the store's new edges. Traces run in worker threads; the thread
        # lock keeps an append from running under one.
        self.lineage = LineageIndex()
        self._lineage_lock = threading.Lock()
        self._edge_id = 0
        self.follower = ProductionFollower(self)
        self._platform: Platform | None = None
        self._server: CommandServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._status = Status.STARTING

    # -- life cycle --------------------------------------------------------------------------

    async def start(self, platform: Platform) -> None:
        from kiln.valuechain.engine_commands import EngineCommands

        self._platform = platform
        await asyncio.to_thread(self.store.open)
        await asyncio.to_thread(self._catch_up)
        self._server = await platform.bus.serve(VALUECHAIN_TARGET, EngineCommands(self))
        self._tasks = [platform.spawn(self._publish_loop(), name="valuechain-outbox")]
        if self.settings.follow_production:
            self._tasks.append(platform.spawn(self.follower.run(), name="valuechain-production"))
        self._wake.set()  # what a previous run committed and did not publish goes out now
        self._status = Status.OK
        _LOGGER.info("Value chain engine started")

    async def stop(self) -> None:
        server, self._server = self._server, None
        tasks, self._tasks = self._tasks, []
        await stop_engine(server, None, tasks, self._lock, self.store.close)
        self._status = Status.STOPPED

    def health(self) -> Health:
        status = self._status
        if status is Status.OK and any(t.done() for t in self._tasks):
            status = Status.FAILED
        elif status is Status.OK and (
            (self.stats.publish_failures and self.stats.last_error) or self.follower.last_error
        ):
            status = Status.DEGRADED
        return Health(
            status,
            {
                "commands": self.stats.commands,
                "changes": self.stats.changes,
                "events_published": self.stats.published,
                "production_bookings": self.follower.booked,
                **({"last_error": self.stats.last_error} if self.stats.last_error else {}),
                **(
                    {"production_error": self.follower.last_error}
                    if self.follower.last_error
                    else {}
                ),
            },
        )

    # -- used by the commands ------------------------------------------------------------------

    @property
    def platform(self) -> Platform:
        if self._platform is None:
            raise RuntimeError("the value chain engine is not started")
        return self._platform

    @property
    def clock(self) -> Clock:
        return self.platform.clock

    def now_us(self) -> int:
        return self.platform.clock.now_us()

    async def read(self, fn: Callable[[], T]) -> T:
        """Run a read of the store off the event loop."""
        self.stats.commands += 1
        return await asyncio.to_thread(fn)

    async def write(self, fn: Callable[[], T]) -> T:
        """Run a change off the event loop, one at a time; then wake the outbox."""
        self.stats.commands += 1

        def change() -> T:
            try:
                return fn()
            finally:
                self._catch_up()  # whatever committed, even when a later step refused

        async with self._lock:
            result = await asyncio.to_thread(change)
        self.stats.changes += 1
        self._wake.set()
        return result

    # -- genealogy -----------------------------------------------------------------------------

    def _catch_up(self) -> None:
        """Add the edges recorded since the index last looked (a worker thread)."""
        rows, last = self.store.edges_after(self._edge_id)
        if rows:
            with self._lineage_lock:
                self.lineage.add_rows(rows)
            self._edge_id = last

    def trace(
        self,
        direction: str,
        starts: str | list[str],
        *,
        max_nodes: int,
        max_depth: int | None = None,
    ) -> Trace:
        """A genealogy trace over the index (call from a worker thread)."""
        with self._lineage_lock:
            if direction == "forward":
                return self.lineage.forward(starts, max_nodes=max_nodes, max_depth=max_depth)
            return self.lineage.backward(starts, max_nodes=max_nodes, max_depth=max_depth)

    # -- the outbox ----------------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        while True:
            if not self._wake.is_set():
                # asyncio.wait, not wait_for: Python 3.11's wait_for can swallow a cancel that
                # lands as the event is set, and the stop would then wait for a loop that
                # never ends.
                waiter = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({waiter}, timeout=_PUBLISH_IDLE_S)
                finally:
                    waiter.cancel()
            self._wake.clear()
            try:
                await self.publish_outbox()
            except BusError as err:
                self.stats.publish_failures += 1
                self.stats.last_error = f"publishing events failed: {err}"
                _LOGGER.warning("Value chain events wait: %s", err)

    async def publish_outbox(self) -> int:
        """Publish what the outbox holds, oldest first; how many went out."""
        sent = 0
        while True:
            events = await asyncio.to_thread(self.store.unpublished)
            if not events:
                return sent
            done: list[int] = []
            try:
                for ev in events:
                    await self.platform.bus.publish_event(
                        Event(
                            kind=EVENT_PREFIX + ev.kind,
                            key=ev.subject,
                            data={"subject": ev.subject, **ev.body},
                            time_us=ev.time_us,
                            id=f"vc-{ev.seq}",
                        )
                    )
                    done.append(ev.seq)
            finally:
                if done:
                    await asyncio.to_thread(self.store.mark_published, done)
                    self.stats.published += len(done)
                    sent += len(done)
            if self.stats.last_error and self.stats.last_error.startswith("publishing"):
                self.stats.last_error = None


def event_data(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    """An outbox event: its kind (without the prefix) and body."""
    return kind, fields
