"""Value subscriptions on NATS JetStream: a bounded local queue fed by a pull consumer.

* A storing subscription (the historian) reads a durable consumer named ``store-<name>``: the
  broker keeps every batch until `ack`, after the commit, so a consumer process killed before
  its commit gets the batch again (after `ack_wait_s`) when it, or another process under the
  same name, comes back. `ack` also sends the batch's `DurabilityAck` to its publisher;
  `ack(retry=True)` (a failed or abandoned commit) gives the batch back (nak) to come again
  after `RETRY_DELAY_S`, and a stopping bus gives back all a storing subscription still holds.
* Any other subscription (live views) reads an ephemeral consumer that starts at "now", with
  nothing to acknowledge; the broker forgets it when it goes.

The local queue keeps the in-process bus's bound and overflow exactly: DROP_OLDEST drops the
oldest queued batches (counted) and keeps pulling; BLOCK stops pulling when full, so the
batches wait on the broker, whose stream is bounded in turn (publishers then wait, and fail
with BusFullError after a bounded time). Messages pulled while the queue was full are held
apart, not counted in the queue's depth, until it has room: a pull cannot be undone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import nats.errors
from nats.aio.msg import Msg
from nats.js import api
from nats.js.manager import JetStreamManager

from kiln.cluster.codec import CodecError, decode_batch, decode_part, join_parts
from kiln.cluster.nats_pull import Puller
from kiln.cluster.subjects import STORE_CONSUMER
from kiln.core.bus.protocol import (
    RETRY_ERROR,
    DurabilityAck,
    Overflow,
    SubscriptionClosed,
    SubscriptionStats,
)
from kiln.core.bus.queueing import full_for, log_dropped, under_prefix
from kiln.core.values import ValueBatch, path_has_prefix

if TYPE_CHECKING:
    from kiln.cluster.nats_bus import NatsBus

_LOGGER = logging.getLogger(__name__)

_MAX_REQUEST = 256  # messages per pull request
PARTS = "Kiln-Parts"  # "<index>/<count>" on a part of a batch cut by shard or size
BATCH = "Kiln-Batch"  # the publish id shared by a batch's parts
# A batch given back (`ack(retry=True)`) comes again after this long: soon enough for the next
# commit attempt, late enough not to spin on a database that is down.
RETRY_DELAY_S = 1.0
_STORES_PREFIX = "stores "  # a storing consumer's description: this, then its path prefix


class NatsValueSubscription:
    """One consumer's bounded queue of value batches, fed from the broker."""

    def __init__(
        self,
        bus: NatsBus,
        name: str,
        consumer: str,
        *,
        max_points: int,
        overflow: Overflow,
        prefix: str | None,
        stores: bool,
    ) -> None:
        if max_points < 1:
            raise ValueError(f"subscription {name!r}: max_points must be at least 1")
        self.name = name
        self.prefix = prefix.rstrip("/") if prefix else None
        self.stores = stores
        self.consumer = consumer
        self.stats = SubscriptionStats(name, overflow, max_points)
        self._bus = bus
        # A batch comes with the message(s) it arrived in: one, or one per shard it spans.
        self._queue: deque[tuple[ValueBatch, list[Msg]]] = deque()
        self._held: deque[tuple[ValueBatch, list[Msg]]] = deque()  # pulled when full
        self._unacked: dict[int, list[Msg]] = {}  # handed out, by id(batch)
        self._parts = _Reassembly(self, 2 * bus.full_wait_s)
        self.late: list[Msg] = []  # arrived after close, to be given back
        self._ready = asyncio.Event()
        self._closed = False
        self.error: str | None = None  # why it closed on its own (its consumer failed)
        self._points_per_msg = 1.0  # running mean, to size pull requests to the room left
        self.puller: Puller | None = None
        self.task: asyncio.Task[None] | None = None
        self.created: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- fed by the puller ------------------------------------------------------------------

    def room(self) -> int:
        """How many messages to ask the broker for now."""
        if self._closed:
            return 0
        if self.stats.overflow is Overflow.DROP_OLDEST:
            return _MAX_REQUEST
        if self._held:
            return 0
        free = self.stats.max_points - self.stats.depth_points
        if free <= 0:
            return 0
        return max(1, min(_MAX_REQUEST, int(free / self._points_per_msg)))

    async def handle(self, msg: Msg) -> None:
        if self._closed:
            if self.stores:
                self.late.append(msg)  # given back, in order, by the bus's wind-down
            return
        if msg.headers and PARTS in msg.headers:
            await self._parts.add(msg)
            return
        try:
            batch = decode_batch(msg.data)
        except CodecError as err:
            _LOGGER.error("Dropped an undecodable value message on %s: %s", msg.subject, err)
            await self._settle([msg])
            return
        await self.queue(batch, [msg])

    async def queue(self, batch: ValueBatch, msgs: list[Msg]) -> None:
        """A whole batch arrived (in `msgs`): queue it, hold it, or settle it at once."""
        self._points_per_msg += (len(batch) / len(msgs) - self._points_per_msg) * 0.1
        accepted = self._accepts(batch)
        if accepted is None:
            await self._settle(msgs)
            return
        # A part under this subscription's prefix carries no batch id (`select`): only a
        # subscriber that stores the whole batch acknowledges it, and the publisher counted
        # only those (`NatsBus.publish_durable`).
        if self._held or (self.stats.overflow is Overflow.BLOCK and self._full_for(len(accepted))):
            self._held.append((accepted, msgs))
            return
        await self._put(accepted, msgs)

    def _accepts(self, batch: ValueBatch) -> ValueBatch | None:
        return under_prefix(batch, self.prefix)

    def _full_for(self, n: int) -> bool:
        return full_for(self.stats, bool(self._queue), n)

    async def _put(self, batch: ValueBatch, msgs: list[Msg]) -> None:
        st = self.stats
        n = len(batch)
        while st.overflow is Overflow.DROP_OLDEST and self._full_for(n):
            old, old_msgs = self._queue.popleft()
            st.depth_points -= len(old)
            st.dropped_points += len(old)
            st.dropped_batches += 1
            await self._settle(old_msgs)
            log_dropped(_LOGGER, st)
        self._queue.append((batch, msgs))
        st.depth_points += n
        st.depth_batches = len(self._queue)
        self._ready.set()

    def _take(self) -> ValueBatch:
        batch, msgs = self._queue.popleft()
        st = self.stats
        st.depth_points -= len(batch)
        st.depth_batches = len(self._queue)
        st.delivered_points += len(batch)
        if self.stores:
            self._unacked[id(batch)] = msgs
        self._refill()
        return batch

    def _refill(self) -> None:
        """Move held messages into the queue as far as it has room, then ask for more."""
        while self._held and not self._full_for(len(self._held[0][0])):
            batch, msgs = self._held.popleft()
            self._queue.append((batch, msgs))
            self.stats.depth_points += len(batch)
            self.stats.depth_batches = len(self._queue)
            self._ready.set()
        if self.puller is not None:
            self.puller.wake()

    async def _settle(self, msgs: list[Msg]) -> None:
        """Done with, for good (only an explicit-ack consumer needs telling)."""
        if self.stores:
            for msg in msgs:
                await msg.ack()

    # -- the ValueSubscription protocol -----------------------------------------------------

    async def get(self) -> ValueBatch:
        """The next batch; raises SubscriptionClosed once closed and empty."""
        while not self._queue:
            if self._closed:
                raise SubscriptionClosed(
                    self.name if self.error is None else f"{self.name}: {self.error}"
                )
            self._ready.clear()
            await self._ready.wait()
        return self._take()

    def drain(self, max_points: int) -> list[ValueBatch]:
        """Queued batches without waiting, up to about `max_points` (at least one if any)."""
        out: list[ValueBatch] = []
        taken = 0
        while self._queue and (not out or taken + len(self._queue[0][0]) <= max_points):
            batch = self._take()
            taken += len(batch)
            out.append(batch)
        return out

    async def ack(
        self, batch: ValueBatch, error: str | None = None, *, retry: bool = False
    ) -> None:
        """Committed (or refused for `error`): the broker forgets the batch, its publisher is
        told. A refused batch is not delivered again either: retrying the same commit would
        fail the same way, and its publisher knows it is not durable.

        `retry=True` (the commit failed or was abandoned): the broker keeps the batch and
        delivers it again after `RETRY_DELAY_S`, to this subscription or its successor."""
        msgs = self._unacked.pop(id(batch), None)
        if msgs is None:
            return
        if retry and error is None:
            error = RETRY_ERROR
        for msg in msgs:
            with contextlib.suppress(nats.errors.Error):
                if retry:
                    await msg.nak(delay=RETRY_DELAY_S)
                else:
                    await msg.ack()
        if batch.batch_id:
            await self._bus.send_ack(batch.origin, DurabilityAck(batch.batch_id, error))

    def fail(self, error: str) -> None:
        """The subscription cannot work (its consumer could not be created): closed, and
        `get()` says why."""
        self.error = error
        self.close()

    def close(self) -> None:
        """Stop receiving; the consumer still gets what is queued. What was pulled but not
        queued goes back to the broker for the next subscriber under this name."""
        if self._closed:
            return
        self._closed = True
        self._ready.set()
        if self.puller is not None:
            self.puller.stop()
        held, self._held = list(self._held), deque()
        back = [m for _, msgs in held for m in msgs] + self._parts.take_all()
        self._bus.closing(self, back if self.stores else [])

    def __aiter__(self) -> AsyncIterator[ValueBatch]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ValueBatch]:
        while True:
            try:
                yield await self.get()
            except SubscriptionClosed:
                return

    def in_flight(self) -> list[Msg]:
        """The messages of whole batches this subscription holds and has not acknowledged yet
        (parts of an incomplete batch are not kept alive: `expire_parts` ends them)."""
        msgs = [m for _, batch_msgs in self._queue for m in batch_msgs]
        msgs += [m for _, batch_msgs in self._held for m in batch_msgs]
        return msgs + [m for batch_msgs in self._unacked.values() for m in batch_msgs]

    def give_back(self) -> list[Msg]:
        """Every message this storing subscription still holds (queued, handed out and not
        acknowledged, held apart, incomplete parts), forgotten here: the bus is stopping and
        gives them back to the broker, so a successor gets them at once, not after ack_wait."""
        msgs = self.in_flight() + self._parts.take_all()
        self._queue.clear()
        self._held.clear()
        self._unacked.clear()
        self.stats.depth_points = self.stats.depth_batches = 0
        return msgs if self.stores else []

    async def expire_parts(self, now: float) -> None:
        """End incomplete batches older than the age limit (see `_Reassembly`)."""
        await self._parts.expire(now)

    def detail(self) -> dict[str, object]:
        return {
            "consumer": self.consumer,
            "depth_points": self.stats.depth_points,
            "dropped_points": self.stats.dropped_points,
            "held_batches": len(self._held),
            "unacked_batches": len(self._unacked),
            "incomplete_batches": self._parts.open,
            "orphaned_batches": self._parts.orphaned,
            "pull_status": self.puller.last_status if self.puller else None,
        }


async def declare_value_consumer(
    jsm: JetStreamManager,
    stream: str,
    subjects: str,
    sub: NatsValueSubscription,
    ack_wait_s: float,
) -> None:
    """The broker side of `sub`: a durable consumer if it stores, else an ephemeral one."""
    if sub.stores:
        await declare_storing_consumer(jsm, stream, subjects, sub.consumer, sub.prefix, ack_wait_s)
    else:
        await jsm.add_consumer(
            stream,
            api.ConsumerConfig(
                name=sub.consumer,
                ack_policy=api.AckPolicy.NONE,
                deliver_policy=api.DeliverPolicy.NEW,
                inactive_threshold=300.0,
                filter_subject=subjects,
            ),
        )


async def declare_storing_consumer(
    jsm: JetStreamManager,
    stream: str,
    subjects: str,
    consumer: str,
    prefix: str | None,
    ack_wait_s: float,
) -> None:
    """A storing subscriber's durable consumer: created, or brought to these settings if it
    exists (it keeps its place). The description holds the prefix: publishers count the
    acknowledgements to wait for from it. Declared ahead of its subscriber too (`bus.storing`),
    so the stream keeps what is published before the subscriber's process first starts."""
    await jsm.add_consumer(
        stream,
        api.ConsumerConfig(
            durable_name=consumer,
            description=_STORES_PREFIX + (prefix or ""),
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.NEW,
            ack_wait=ack_wait_s,
            max_ack_pending=65_536,
            filter_subject=subjects,
        ),
    )


class StoringConsumers:
    """Which storing subscriptions (in any process) exist, for counting the acknowledgements a
    durable publish waits for.

    Listing the consumers is a broker round trip (a page of 256 at a time), too dear for every
    publish: the list is kept for `ttl_s`. A list in which no storing subscription takes a
    batch is not trusted, but read again at once: "nobody stores this" fails a publish, so it
    must be current (a historian that just subscribed counts). A stale list the other way, one
    naming a subscription that has since gone, costs only that publish's timeout.
    """

    _PAGE = 256  # the broker's page size for CONSUMER.LIST

    def __init__(self, jsm: Callable[[], JetStreamManager], stream: str, ttl_s: float = 1.0):
        self._jsm = jsm
        self._stream = stream
        self._ttl_s = ttl_s
        self._prefixes: list[str] | None = None  # "" takes everything
        self._read_at = float("-inf")
        self._reading: asyncio.Future[None] | None = None  # one listing at a time, shared
        self.reads = 0

    def forget(self) -> None:
        """A storing consumer was declared here: read the list again next time (not joining
        a listing that started before it existed)."""
        self._prefixes = None
        self._reading = None

    async def count(self, batch: ValueBatch) -> int:
        """How many storing subscriptions take the whole of `batch`, and so will acknowledge
        it."""
        now = asyncio.get_running_loop().time()
        fresh = self._prefixes is None or now - self._read_at >= self._ttl_s
        if fresh:
            await self._refresh()
        n = self._count(batch)
        if n == 0 and not fresh:
            await self._refresh()
            n = self._count(batch)
        return n

    async def _refresh(self) -> None:
        # Concurrent publishes that find the list stale wait for one listing, not one each.
        reading = self._reading
        if reading is None:
            reading = self._reading = asyncio.ensure_future(self._read())

            def done(task: asyncio.Future[None]) -> None:
                if self._reading is task:
                    self._reading = None

            reading.add_done_callback(done)
        await asyncio.shield(reading)

    def _count(self, batch: ValueBatch) -> int:
        count = 0
        for prefix in self._prefixes or ():
            if not prefix or all(path_has_prefix(p, prefix) for p in batch.paths):
                count += 1
        return count

    async def _read(self) -> None:
        started = asyncio.get_running_loop().time()
        jsm = self._jsm()
        prefixes: list[str] = []
        offset = 0
        while True:
            page = await jsm.consumers_info(self._stream, offset=offset or None)
            self.reads += 1
            for info in page:
                if info.name.startswith(STORE_CONSUMER + "-"):
                    description = info.config.description or ""
                    prefixes.append(description.removeprefix(_STORES_PREFIX))
            offset += len(page)
            if len(page) < self._PAGE:
                break
        self._prefixes = prefixes
        self._read_at = started


class _Reassembly:
    """Puts batches cut into parts back together before they reach the subscription's queue.

    Parts of one batch are published one after the other, so they arrive close together; a
    publisher that died between parts leaves a batch incomplete forever. So an incomplete batch
    has an age limit (`max_age_s`: twice the time a publisher goes on re-sending a part), after
    which its parts are ended (`term`: never delivered again) and counted as `orphaned`; and at
    most `_MAX_OPEN` batches wait at once, the oldest incomplete one ended beyond that.
    """

    _MAX_OPEN = 1024

    def __init__(self, sub: NatsValueSubscription, max_age_s: float) -> None:
        self._sub = sub
        self._max_age_s = max_age_s
        # By batch: when its first part came (event-loop time), and a slot per part.
        self._open: dict[str, tuple[float, list[tuple[ValueBatch, list[int], Msg] | None]]] = {}
        self.orphaned = 0

    @property
    def open(self) -> int:
        return len(self._open)

    async def add(self, msg: Msg) -> None:
        headers = msg.headers or {}
        parts = headers[PARTS]
        try:
            index_text, count_text = parts.split("/")
            index, count = int(index_text), int(count_text)
            batch, positions = decode_part(msg.data)
            if positions is None or not 0 <= index < count:
                raise CodecError(f"bad part header {parts!r}")
        except (ValueError, CodecError) as err:
            _LOGGER.error("Dropped an undecodable part of a value batch: %s", err)
            if self._sub.stores:
                await msg.term()
            return
        now = asyncio.get_running_loop().time()
        await self.expire(now)
        key = headers.get(BATCH, "")
        entry = self._open.get(key)
        if entry is None:
            if len(self._open) >= self._MAX_OPEN:
                await self._orphan(next(iter(self._open)))
            entry = self._open[key] = (now, [None] * count)
        slots = entry[1]
        if len(slots) != count:  # a publisher's bug: never to be completed
            _LOGGER.error("Dropped a part of value batch %s: its part count changed", key)
            if self._sub.stores:
                await msg.term()
            return
        slots[index] = (batch, positions, msg)
        if any(slot is None for slot in slots):
            return
        del self._open[key]
        complete = [slot for slot in slots if slot is not None]
        whole = join_parts([(b, p) for b, p, _ in complete])
        await self._sub.queue(whole, [m for _, _, m in complete])

    async def expire(self, now: float) -> None:
        """End the incomplete batches whose first part came more than `max_age_s` ago."""
        while self._open:
            key, (first, _) = next(iter(self._open.items()))
            if now - first < self._max_age_s:
                return  # in arrival order: the rest are younger
            await self._orphan(key)

    def take_all(self) -> list[Msg]:
        """The messages of every incomplete batch (the subscription is closing)."""
        msgs = [slot[2] for _, slots in self._open.values() for slot in slots if slot is not None]
        self._open.clear()
        return msgs

    async def _orphan(self, key: str) -> None:
        _, slots = self._open.pop(key)
        _LOGGER.warning("Dropped an incomplete value batch %s: a part never arrived", key)
        if self._sub.stores:
            for slot in slots:
                if slot is not None:
                    with contextlib.suppress(nats.errors.Error):
                        await slot[2].term()
        self.orphaned += 1
