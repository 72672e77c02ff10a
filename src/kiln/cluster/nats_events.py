"""Event subscriptions on NATS JetStream: a pull consumer on the events stream.

The events stream keeps the newest `max_events` (limits retention, discard old); an event's
sequence number is its stream sequence. A durable subscription is a durable consumer named
``events-<name>`` (explicit acks, `ack_wait_s`, at most `max_pending` unacknowledged), so a
successor under the same name, in this process or another, resumes where it stopped
acknowledging; closing gives the unacknowledged back at once (nak, in log order), so the
successor need not wait for `ack_wait_s`. An event that reached the closing subscriber's last
pull request is given back unseen, and the successor finds it marked `redelivered` (the broker
counts deliveries, not what a consumer saw): "maybe seen before", never the reverse. What is
given back together comes again in the order the broker picks (usually log order, not always:
unlike the in-process bus, a successor may see two given-back events of one key swapped). A
plain subscription is an ephemeral consumer with nothing to acknowledge.

Kinds are selected here, segment-wise like the in-process bus, on a consumer that reads every
event: then a jump in the stream sequence can only be events the log dropped before this
subscriber reached them, and is counted as `missed` (of every kind: the broker no longer knows
the kinds of what it dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.manager import JetStreamManager

from kiln.cluster.codec import CodecError, decode_event
from kiln.cluster.nats_pull import Puller
from kiln.cluster.subjects import MSG_ID
from kiln.core.bus.kinds import kind_matches
from kiln.core.bus.protocol import BusError, Event, EventStats, SubscriptionClosed

if TYPE_CHECKING:
    from kiln.cluster.nats_bus import NatsBus

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class NatsEventDelivery:
    event: Event
    redelivered: bool
    _msg: Msg | None = field(default=None, repr=False)
    _sub: NatsEventSubscription | None = field(default=None, repr=False)

    async def ack(self) -> None:
        msg, self._msg = self._msg, None
        if msg is not None and self._sub is not None:
            await self._sub.acked(msg)


class NatsEventSubscription:
    """Deliveries of one subscriber; durable ones are acknowledged, the others need not be."""

    def __init__(
        self,
        bus: NatsBus,
        name: str,
        consumer: str,
        *,
        kinds: tuple[str, ...],
        durable: bool,
        max_pending: int,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"event subscription {name!r}: max_pending must be at least 1")
        self.name = name
        self.consumer = consumer
        self.kinds = kinds
        self.durable = durable
        self.max_pending = max_pending
        self.stats = EventStats(name)
        self.last_seq = 0  # highest stream sequence seen; set from the consumer at creation
        self._bus = bus
        self._queue: deque[tuple[Event, Msg]] = deque()
        self._unacked: dict[int, Msg] = {}  # handed out, not acknowledged: by stream sequence
        self.late: list[Msg] = []  # arrived after close, to be given back
        self._ready = asyncio.Event()
        self._closed = False
        self.error: str | None = None  # why it closed on its own (its consumer failed)
        self.puller: Puller | None = None
        self.task: asyncio.Task[None] | None = None
        self.created: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def closed(self) -> bool:
        return self._closed

    def room(self) -> int:
        if self._closed:
            return 0
        return self.max_pending - len(self._queue) - len(self._unacked)

    async def handle(self, msg: Msg) -> None:
        if self._closed:
            if self.durable:
                self.late.append(msg)  # given back, in order, by the bus's wind-down
            return
        meta = msg.metadata
        seq = meta.sequence.stream
        redelivered = meta.num_delivered > 1
        if seq > self.last_seq:
            if seq > self.last_seq + 1 and not redelivered:
                self.stats.missed += seq - self.last_seq - 1
            self.last_seq = seq
        try:
            event = decode_event(msg.data, seq)
        except CodecError as err:
            _LOGGER.error("Dropped an undecodable event (seq %d): %s", seq, err)
            if self.durable:
                await msg.term()
            return
        if not kind_matches(event.kind, self.kinds):
            if self.durable:
                await msg.ack()
            return
        self._queue.append((event, msg))
        self._ready.set()

    async def get(self) -> NatsEventDelivery:
        """The next delivery; raises `SubscriptionClosed` once closed."""
        while True:
            if self._closed:
                raise SubscriptionClosed(
                    self.name if self.error is None else f"{self.name}: {self.error}"
                )
            if self._queue:
                break
            self._ready.clear()
            await self._ready.wait()
        event, msg = self._queue.popleft()
        redelivered = msg.metadata.num_delivered > 1
        self.stats.delivered += 1
        if redelivered:
            self.stats.redelivered += 1
        if not self.durable:
            if self.puller is not None:
                self.puller.wake()
            return NatsEventDelivery(event, redelivered)
        self._unacked[event.seq] = msg
        self.stats.pending = len(self._unacked)
        return NatsEventDelivery(event, redelivered, msg, self)

    async def acked(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        if self._unacked.pop(seq, None) is None:
            return  # given back at close, or acknowledged already
        await msg.ack()
        self.stats.acked += 1
        self.stats.pending = len(self._unacked)
        if self.puller is not None:
            self.puller.wake()

    def fail(self, error: str) -> None:
        """The subscription cannot work (its consumer could not be created): closed, and
        `get()` says why."""
        self.error = error
        self.close()

    def close(self) -> None:
        """Stop receiving. A durable subscriber's unacknowledged events go back to the broker
        for its successor."""
        if self._closed:
            return
        self._closed = True
        self._ready.set()
        if self.puller is not None:
            self.puller.stop()
        back = [msg for _, msg in self._queue] + list(self._unacked.values())
        self._queue.clear()
        self._unacked.clear()
        self.stats.pending = 0
        self._bus.closing(self, back if self.durable else [])

    def __aiter__(self) -> AsyncIterator[NatsEventDelivery]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[NatsEventDelivery]:
        while True:
            try:
                yield await self.get()
            except SubscriptionClosed:
                return

    def detail(self) -> dict[str, object]:
        return {
            "consumer": self.consumer,
            "pending": self.stats.pending,
            "missed": self.stats.missed,
            "pull_status": self.puller.last_status if self.puller else None,
        }


async def declare_event_consumer(
    jsm: JetStreamManager,
    stream: str,
    subjects: str,
    sub: NatsEventSubscription,
    *,
    start_seq: int | None,
    max_pending: int,
    ack_wait_s: float,
) -> None:
    """The broker side of `sub`: a durable consumer (resumed if it exists: the kinds it was
    made for are in its description) or an ephemeral one; sets where `sub` starts counting."""
    if start_seq is None:
        policy, opt_start = api.DeliverPolicy.NEW, None
    else:
        policy, opt_start = api.DeliverPolicy.BY_START_SEQUENCE, max(1, start_seq)
    created = True
    if sub.durable:
        try:
            info = await jsm.consumer_info(stream, sub.consumer)
        except nats.js.errors.NotFoundError:
            info = None
        if info is not None:
            created = False
            kinds = (info.config.description or "").split(",") if info.config.description else []
            if tuple(kinds) != sub.kinds:
                raise BusError(
                    f"durable event subscription {sub.name!r} selects kinds "
                    f"{kinds or 'all'}, not {list(sub.kinds) or 'all'}: use another name "
                    "for another selection"
                )
            # Resume: keep where it is, take the new bounds.
            config = info.config
            config.ack_wait = ack_wait_s
            config.max_ack_pending = max_pending
            info = await jsm.add_consumer(stream, config)
        else:
            info = await jsm.add_consumer(
                stream,
                api.ConsumerConfig(
                    durable_name=sub.consumer,
                    description=",".join(sub.kinds),
                    ack_policy=api.AckPolicy.EXPLICIT,
                    deliver_policy=policy,
                    opt_start_seq=opt_start,
                    ack_wait=ack_wait_s,
                    max_ack_pending=max_pending,
                    filter_subject=subjects,
                ),
            )
    else:
        info = await jsm.add_consumer(
            stream,
            api.ConsumerConfig(
                name=sub.consumer,
                ack_policy=api.AckPolicy.NONE,
                deliver_policy=policy,
                opt_start_seq=opt_start,
                inactive_threshold=300.0,
                filter_subject=subjects,
            ),
        )
    if created and opt_start is not None:
        # The broker moves a start before the log's first event up to it; what lay in
        # between was dropped before this subscriber came, and counts as missed.
        sub.last_seq = opt_start - 1
    else:
        sub.last_seq = (info.delivered.stream_seq if info.delivered else 0) or 0


async def find_seq(
    js: JetStreamContext, jsm: JetStreamManager, stream: str, subject: str, event_id: str
) -> int:
    """The sequence number of an event another process logged first (a broker reports a
    duplicate without it): read that subject's recent events for the id."""
    consumer = await jsm.add_consumer(
        stream,
        api.ConsumerConfig(
            name=f"dup-{uuid.uuid4().hex[:12]}",
            ack_policy=api.AckPolicy.NONE,
            deliver_policy=api.DeliverPolicy.ALL,
            filter_subject=subject,
            inactive_threshold=5.0,
        ),
    )
    found = 0
    try:
        psub = await js.pull_subscribe_bind(consumer=consumer.name, stream=stream)
        for _ in range(max(1, (consumer.num_pending or 0) // 256 + 1)):
            try:
                msgs = await psub.fetch(256, timeout=1.0)
            except TimeoutError:
                break
            for msg in msgs:
                if msg.headers and msg.headers.get(MSG_ID) == event_id:
                    found = msg.metadata.sequence.stream
            if found:
                break
        await psub.unsubscribe()
    finally:
        with contextlib.suppress(nats.errors.Error, nats.js.errors.Error):
            await jsm.delete_consumer(stream, consumer.name)
    return found
