"""Value subscriptions on NATS JetStream: a bounded local queue fed by a pull consumer.

* A storing subscription (the historian) reads a durable consumer named ``store-<name>``: the
  broker keeps every batch until `ack`, after the commit, so a consumer process killed before
  its commit gets the batch again (after `ack_wait_s`) when it, or another process under the
  same name, comes back. `ack` also sends the batch's `DurabilityAck` to its publisher.
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
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from nats.aio.msg import Msg
from nats.js import api
from nats.js.manager import JetStreamManager

from kiln.cluster.codec import CodecError, decode_batch, decode_part, join_parts
from kiln.cluster.nats_pull import Puller
from kiln.cluster.subjects import STORE_CONSUMER
from kiln.core.bus.protocol import DurabilityAck, Overflow, SubscriptionClosed, SubscriptionStats
from kiln.core.values import ValueBatch, path_has_prefix

if TYPE_CHECKING:
    from kiln.cluster.nats_bus import NatsBus

_LOGGER = logging.getLogger(__name__)

_MAX_REQUEST = 256  # messages per pull request
PARTS = "Kiln-Parts"  # "<index>/<count>" on a part of a batch cut by shard
BATCH = "Kiln-Batch"  # the publish id shared by a batch's parts
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
        self._parts = _Reassembly(self)
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
        if self.prefix is None:
            return batch
        prefix = self.prefix
        sub = batch.select(lambda p: path_has_prefix(p, prefix))
        return sub if len(sub) else None

    def _full_for(self, n: int) -> bool:
        return bool(self._queue) and self.stats.depth_points + n > self.stats.max_points

    async def _put(self, batch: ValueBatch, msgs: list[Msg]) -> None:
        st = self.stats
        n = len(batch)
        while st.overflow is Overflow.DROP_OLDEST and self._full_for(n):
            old, old_msgs = self._queue.popleft()
            st.depth_points -= len(old)
            st.dropped_points += len(old)
            st.dropped_batches += 1
            await self._settle(old_msgs)
            if st.dropped_batches == 1 or st.dropped_batches % 1000 == 0:
                _LOGGER.warning(
                    "Subscriber %s is too slow: %d batches dropped so far",
                    self.name,
                    st.dropped_batches,
                )
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

    async def ack(self, batch: ValueBatch, error: str | None = None) -> None:
        """Committed (or refused for `error`): the broker forgets the batch, its publisher is
        told. A refused batch is not delivered again either: retrying the same commit would
        fail the same way, and its publisher knows it is not durable."""
        msgs = self._unacked.pop(id(batch), None)
        if msgs is None:
            return
        for msg in msgs:
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
        """The messages this subscription holds and has not acknowledged yet."""
        msgs = [m for _, batch_msgs in self._queue for m in batch_msgs]
        msgs += [m for _, batch_msgs in self._held for m in batch_msgs]
        msgs += [m for batch_msgs in self._unacked.values() for m in batch_msgs]
        return msgs + self._parts.in_flight()

    def detail(self) -> dict[str, object]:
        return {
            "consumer": self.consumer,
            "depth_points": self.stats.depth_points,
            "dropped_points": self.stats.dropped_points,
            "held_batches": len(self._held),
            "unacked_batches": len(self._unacked),
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


async def storing_consumers(jsm: JetStreamManager, stream: str, batch: ValueBatch) -> int:
    """How many storing subscriptions (in any process) take the whole of `batch`, and so
    will acknowledge it."""
    infos = await jsm.consumers_info(stream)
    count = 0
    for info in infos:
        if not info.name.startswith(STORE_CONSUMER + "-"):
            continue
        description = info.config.description or ""
        prefix = description.removeprefix(_STORES_PREFIX)
        if not prefix or all(path_has_prefix(p, prefix) for p in batch.paths):
            count += 1
    return count


class _Reassembly:
    """Puts batches cut by shard back together before they reach the subscription's queue.

    Parts of one batch are published one after the other, so they arrive close together;
    at most `_MAX_OPEN` batches wait for missing parts (a publisher that died between parts
    leaves one incomplete forever), the oldest incomplete one is dropped beyond that.
    """

    _MAX_OPEN = 1024

    def __init__(self, sub: NatsValueSubscription) -> None:
        self._sub = sub
        self._open: dict[str, list[tuple[ValueBatch, list[int], Msg] | None]] = {}

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
                await msg.ack()
            return
        key = headers.get(BATCH, "")
        slots = self._open.get(key)
        if slots is None:
            if len(self._open) >= self._MAX_OPEN:
                await self._drop_oldest()
            slots = self._open[key] = [None] * count
        slots[index] = (batch, positions, msg)
        if any(slot is None for slot in slots):
            return
        del self._open[key]
        complete = [slot for slot in slots if slot is not None]
        whole = join_parts([(b, p) for b, p, _ in complete])
        await self._sub.queue(whole, [m for _, _, m in complete])

    def in_flight(self) -> list[Msg]:
        return [slot[2] for slots in self._open.values() for slot in slots if slot is not None]

    def take_all(self) -> list[Msg]:
        """The messages of every incomplete batch (the subscription is closing)."""
        msgs = [slot[2] for slots in self._open.values() for slot in slots if slot is not None]
        self._open.clear()
        return msgs

    async def _drop_oldest(self) -> None:
        key = next(iter(self._open))
        slots = self._open.pop(key)
        _LOGGER.warning("Dropped an incomplete value batch %s: a part never arrived", key)
        if self._sub.stores:
            for slot in slots:
                if slot is not None:
                    await slot[2].ack()
