"""The bus across processes: NATS JetStream carries values, events, commands and acks.

* values: stream ``<prefix>_values`` (interest retention: a message stays while a consumer
  still owes it an acknowledgement; bounded by `values_max_bytes`, new messages refused when
  full). A batch is cut by shard (CRC-32 of the path; one shard by default), and further
  where a part would exceed the broker's `max_payload`; each part is one message on
  ``<prefix>.values.<shard>`` whose ``Nats-Msg-Id`` is the batch's publish id and the part's
  number, so a part re-sent after a lost reply is stored once. Subscribers put the parts back
  together: every subscriber sees each batch whole, as on the in-process bus.
* durability acknowledgements: plain messages to ``<prefix>.acks.<node>``; the publisher waits
  for one from each storing consumer (durable consumers ``store-<name>``, in any process) that
  takes the whole batch, and fails at once when there is none. A storing subscriber that could
  not commit gives the batch back (`ack(retry=True)`: nak), and the broker delivers it again.
* events: stream ``<prefix>_events`` (limits retention, `max_events`, oldest dropped first),
  subjects ``<prefix>.events.<kind>.<key shard>``; the sequence number is the stream's;
  ``Nats-Msg-Id`` = `Event.id` (or an id of one `publish_event` call) drops a re-sent event.
* commands: request/reply on ``<prefix>.cmd.<target>`` (`nats_commands`), carrying the
  requester's deadline, which the serving side keeps too.

Broker deadlines (publish timeouts, ack waits, command timeouts) run on real time: the broker
does not run on the injected clock. The clock stamps what Kiln measures (time spent blocked).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.manager import JetStreamManager

from kiln.cluster.codec import (
    CodecError,
    decode_ack,
    encode_ack,
    encode_batch,
    encode_event,
    encode_fitting,
    split_batch,
)
from kiln.cluster.nats_commands import NatsCommandServer, request
from kiln.cluster.nats_events import NatsEventSubscription, declare_event_consumer, find_seq
from kiln.cluster.nats_pull import Puller
from kiln.cluster.nats_values import (
    BATCH,
    PARTS,
    NatsValueSubscription,
    StoringConsumers,
    declare_storing_consumer,
    declare_value_consumer,
)
from kiln.cluster.settings import BusSettings
from kiln.cluster.subjects import MSG_ID, STORE_CONSUMER, Subjects, consumer_name, shard_of
from kiln.core.bus.ack_waiter import AckWaiter
from kiln.core.bus.kinds import kind_filter
from kiln.core.bus.protocol import (
    BusError,
    BusFullError,
    Command,
    CommandHandler,
    DurabilityAck,
    Event,
    Overflow,
)
from kiln.core.clock import Clock
from kiln.core.errors import NotDurableError
from kiln.core.health import Health, Status
from kiln.core.values import ValueBatch

_LOGGER = logging.getLogger(__name__)

# JetStream API error codes for a stream at its limits (discard new).
_STREAM_FULL = {10077, 10047, 10027}
# Bytes of a value message kept free for its headers under the broker's max_payload.
_HEADER_ROOM = 1024


def default_node() -> str:
    """Host name and process id: unique per process, stable for its life."""
    host = "".join(c if c.isalnum() or c in "_-" else "_" for c in socket.gethostname())
    return f"{host or 'host'}-{os.getpid()}"


class NatsBus:
    """The `Bus` protocol on NATS JetStream, for Kiln spread over several processes."""

    def __init__(
        self,
        url: str,
        clock: Clock,
        *,
        node: str | None = None,
        prefix: str = "kiln",
        shards: int = 1,
        values_max_bytes: int = 1 << 30,
        full_wait_s: float = 5.0,
        max_events: int = 1_000_000,
        duplicate_window_s: float = 120.0,
        ack_wait_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        pull_expires_s: float = 0.5,
        storing: Sequence[str] = (),
        command_concurrency: int = 64,
    ) -> None:
        self.url = url
        self.clock = clock
        self.node = node or default_node()
        self.names = Subjects(prefix, shards)
        self.names.acks(self.node)  # a bad node name fails here, not at start
        self.values_max_bytes = values_max_bytes
        self.full_wait_s = full_wait_s
        self.max_events = max_events
        self.duplicate_window_s = duplicate_window_s
        self.ack_wait_s = ack_wait_s
        self.connect_timeout_s = connect_timeout_s
        self.pull_expires_s = pull_expires_s
        self.storing = tuple(storing)
        self.command_concurrency = command_concurrency
        self.published_points = 0
        self.published_batches = 0
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._jsm: JetStreamManager | None = None
        self._subs: list[NatsValueSubscription] = []
        # Every storing subscription, closed ones too: the batches their consumers still commit
        # are kept alive, and given back at stop.
        self._storing_subs: list[NatsValueSubscription] = []
        self._storing_index = StoringConsumers(lambda: self.jsm, self.names.values_stream)
        self._event_subs: list[NatsEventSubscription] = []
        self._servers: dict[str, NatsCommandServer] = {}
        self._waiters: dict[str, AckWaiter] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._creating: set[asyncio.Future[None]] = set()
        self._closing: dict[str, asyncio.Task[None]] = {}  # consumer -> giving back its msgs
        self._event_ids: dict[str, int] = {}
        self._stream_state: dict[str, dict[str, int]] = {}
        self._shard_cache: dict[str, int] = {}
        self._ack_sub: Any = None
        self._disconnected_at: float | None = None
        self._stopping = False

    @classmethod
    def from_settings(cls, settings: BusSettings, clock: Clock) -> NatsBus:
        if settings.url is None:
            raise BusError("NatsBus needs bus.url (nats://host:4222)")
        return cls(
            settings.url,
            clock,
            node=settings.node,
            prefix=settings.prefix,
            shards=settings.shards,
            values_max_bytes=settings.values_max_bytes,
            full_wait_s=settings.full_wait_s,
            max_events=settings.max_events,
            duplicate_window_s=settings.duplicate_window_s,
            ack_wait_s=settings.ack_wait_s,
            connect_timeout_s=settings.connect_timeout_s,
            storing=settings.storing,
            command_concurrency=settings.command_concurrency,
        )

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def nc(self) -> Client:
        if self._nc is None or self._nc.is_closed:
            raise BusError("the NATS bus is not started: call start() first")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise BusError("the NATS bus is not started: call start() first")
        return self._js

    @property
    def jsm(self) -> JetStreamManager:
        if self._jsm is None:
            raise BusError("the NATS bus is not started: call start() first")
        return self._jsm

    async def start(self) -> None:
        async def disconnected() -> None:
            self._disconnected_at = time.monotonic()
            if not self._stopping:
                _LOGGER.warning("Lost the NATS broker at %s; reconnecting", self.url)

        async def reconnected() -> None:
            self._disconnected_at = None
            _LOGGER.info("Reconnected to the NATS broker at %s", self.url)

        async def error(err: Exception) -> None:
            _LOGGER.debug("NATS client error: %s", err)

        try:
            self._nc = await nats.connect(
                [u.strip() for u in self.url.split(",")],
                name=f"kiln {self.node}",
                connect_timeout=max(1, min(2, round(self.connect_timeout_s))),
                # Bounded while starting (a wrong URL must fail start(), not hang it) ...
                max_reconnect_attempts=max(1, int(self.connect_timeout_s / 0.5)),
                reconnect_time_wait=0.5,
                allow_reconnect=True,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
            )
        except (OSError, nats.errors.Error, TimeoutError) as err:
            raise BusError(
                f"cannot reach the NATS broker at {self.url}: {err or type(err).__name__}. "
                "Start nats-server with JetStream (nats-server -js) or fix bus.url"
            ) from err
        # ... and unbounded once running: a broker restart must not end the process's bus.
        self._nc.options["max_reconnect_attempts"] = -1
        self._js = self._nc.jetstream()
        self._jsm = self._nc.jsm()
        try:
            await self._declare_streams()
        except nats.errors.NoRespondersError as err:
            await self._nc.close()
            raise BusError(
                f"the NATS server at {self.url} has no JetStream: start it with -js "
                "(or jetstream {} in its configuration)"
            ) from err
        except (nats.js.errors.APIError, nats.errors.Error, TimeoutError) as err:
            await self._nc.close()
            raise BusError(
                f"cannot declare the bus's streams on {self.url}: {err or type(err).__name__}"
            ) from err
        self._ack_sub = await self._nc.subscribe(self.names.acks(self.node), cb=self._on_ack)
        self._spawn(self._watch_streams(), name="watch streams")
        self._spawn(self._keep_alive(), name="keep alive")

    async def _declare_streams(self) -> None:
        values = api.StreamConfig(
            name=self.names.values_stream,
            subjects=[self.names.all_values],
            retention=api.RetentionPolicy.INTEREST,
            max_bytes=self.values_max_bytes,
            discard=api.DiscardPolicy.NEW,
            storage=api.StorageType.FILE,
            duplicate_window=self.duplicate_window_s,
        )
        events = api.StreamConfig(
            name=self.names.events_stream,
            subjects=[self.names.all_events],
            retention=api.RetentionPolicy.LIMITS,
            max_msgs=self.max_events,
            discard=api.DiscardPolicy.OLD,
            storage=api.StorageType.FILE,
            duplicate_window=self.duplicate_window_s,
        )
        for config in (values, events):
            try:
                await self.jsm.add_stream(config)
            except nats.js.errors.BadRequestError:
                # It exists with other limits: bring them to this configuration.
                await self.jsm.update_stream(config)
        # The values stream keeps a message only while some consumer still owes it: the storing
        # subscribers' consumers exist from the first start of any process, so what the
        # sources publish before the server ever ran is kept for it.
        for name in self.storing:
            await declare_storing_consumer(
                self.jsm,
                self.names.values_stream,
                self.names.all_values,
                consumer_name(STORE_CONSUMER, name),
                None,
                self.ack_wait_s,
            )

    async def stop(self) -> None:
        self._stopping = True
        # What a storing subscription still holds was never stored: give it back now, so a
        # successor (here or in another process) gets it at once instead of after ack_wait_s.
        back: list[Msg] = []
        for sub in self._storing_subs:
            back += sub.give_back()
        for sub in list(self._subs):
            sub.close()
        if back and self._nc is not None and not self._nc.is_closed:
            for msg in sorted(back, key=lambda m: m.metadata.sequence.stream):
                with contextlib.suppress(nats.errors.Error):
                    await msg.nak()
        for esub in list(self._event_subs):
            esub.close()
        for server in list(self._servers.values()):
            await server.close()
        for waiter in self._waiters.values():
            waiter.fail("the bus stopped before the batch was acknowledged")
        # Let the pull loops end their open requests (messages they still bring go back to
        # the broker), then cut what is left.
        pullers = [t for t in self._tasks if not t.done() and t.get_name().startswith("pull")]
        if pullers:
            await asyncio.wait(pullers, timeout=self.pull_expires_s + 2.0)
        closing = [t for t in self._closing.values() if not t.done()]
        if closing:
            await asyncio.wait(closing, timeout=2.0)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(nats.errors.Error, OSError):
                await nc.flush(timeout=2)
            await nc.close()

    async def destroy(self) -> None:
        """Delete this bus's streams (and with them every consumer and stored message) from
        the broker: for tests, and for retiring a prefix. Call before `stop()`."""
        subs: list[NatsValueSubscription | NatsEventSubscription] = [*self._subs]
        subs.extend(self._event_subs)
        for sub in subs:
            if sub.puller is not None:
                sub.puller.abort()  # its consumer goes with the stream: no request will end
        for stream in (self.names.values_stream, self.names.events_stream):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self.jsm.delete_stream(stream)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("NATS bus task %s failed", task.get_name(), exc_info=task.exception())

    async def _watch_streams(self) -> None:
        """Stream sizes for health(), which cannot ask the broker itself (it is synchronous)."""
        while True:
            for stream in (self.names.values_stream, self.names.events_stream):
                try:
                    info = await self.jsm.stream_info(stream)
                except (nats.errors.Error, BusError, TimeoutError):
                    continue
                self._stream_state[stream] = {
                    "messages": info.state.messages,
                    "bytes": info.state.bytes,
                    "first_seq": info.state.first_seq,
                    "last_seq": info.state.last_seq,
                }
            await asyncio.sleep(5.0)

    async def _keep_alive(self) -> None:
        """Tell the broker that batches a storing subscriber holds are still being worked on,
        so a slow commit does not get them delivered a second time after `ack_wait_s`: only a
        subscriber that is gone (killed) has its batches delivered again."""
        while True:
            await asyncio.sleep(max(self.ack_wait_s / 4, 0.2))
            now = asyncio.get_running_loop().time()
            for sub in list(self._subs):
                await sub.expire_parts(now)
            for sub in list(self._storing_subs):
                for msg in sub.in_flight():
                    with contextlib.suppress(nats.errors.Error):
                        await msg.in_progress()

    def health(self) -> Health:
        nc = self._nc
        connected = nc is not None and nc.is_connected
        detail: dict[str, Any] = {
            "url": self.url,
            "node": self.node,
            "connected": connected,
            "published_points": self.published_points,
            "pending_bytes": nc.pending_data_size if nc is not None else 0,
            "awaiting_ack": len(self._waiters),
            "streams": dict(self._stream_state),
            "subscribers": {s.name: s.detail() for s in self._subs},
            "event_subscribers": {s.name: s.detail() for s in self._event_subs},
            "command_targets": sorted(self._servers),
        }
        if self._disconnected_at is not None:
            lost = time.monotonic() - self._disconnected_at
            detail["disconnected_for_s"] = round(lost, 1)
        dropping = [s.name for s in self._subs if s.stats.dropped_batches]
        if dropping:
            detail["dropping"] = dropping
        status = Status.OK if connected else (Status.STOPPED if nc is None else Status.DEGRADED)
        return Health(status, detail)

    async def _created(self) -> None:
        """Wait until the consumers subscribed so far exist on the broker: a subscriber sees
        everything published after `subscribe()` returned, as on the in-process bus."""
        if self._creating:
            await asyncio.gather(*list(self._creating), return_exceptions=True)

    def closing(self, sub: NatsValueSubscription | NatsEventSubscription, back: list[Msg]) -> None:
        """A subscription closed: forget it, and give back what it had not processed."""
        if isinstance(sub, NatsValueSubscription):
            if sub in self._subs:
                self._subs.remove(sub)
        elif sub in self._event_subs:
            self._event_subs.remove(sub)
        consumer = sub.consumer
        task = self._closing[consumer] = self._spawn(
            self._wind_down(sub, back), name=f"close {consumer}"
        )

        def forget(done: asyncio.Task[Any]) -> None:
            # A successor under the same name may have closed since: keep its entry.
            if self._closing.get(consumer) is done:
                del self._closing[consumer]

        task.add_done_callback(forget)

    async def _wind_down(
        self, sub: NatsValueSubscription | NatsEventSubscription, back: list[Msg]
    ) -> None:
        # The open pull request may still bring messages (the subscription keeps them in
        # `late`); give everything back once it has ended, in log order, so the successor
        # gets them in the order they were published.
        if sub.task is not None:
            await asyncio.wait([sub.task], timeout=self.pull_expires_s + 2.0)
        back = sorted(back + sub.late, key=lambda m: m.metadata.sequence.stream)
        sub.late.clear()
        for msg in back:
            with contextlib.suppress(nats.errors.Error):
                await msg.nak()
        ephemeral = isinstance(sub, NatsValueSubscription) and not sub.stores
        ephemeral = ephemeral or (isinstance(sub, NatsEventSubscription) and not sub.durable)
        if ephemeral and self._nc is not None and not self._nc.is_closed:
            stream = (
                self.names.values_stream
                if isinstance(sub, NatsValueSubscription)
                else self.names.events_stream
            )
            with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, TimeoutError):
                await self.jsm.delete_consumer(stream, sub.consumer)

    # -- values ---------------------------------------------------------------------------

    def subscribe(
        self,
        name: str,
        *,
        max_points: int,
        overflow: Overflow,
        prefix: str | None = None,
        stores: bool = False,
    ) -> NatsValueSubscription:
        if stores and any(s.stores and s.name == name for s in self._subs):
            raise ValueError(f"a storing subscription named {name!r} already exists")
        consumer = (
            consumer_name(STORE_CONSUMER, name)
            if stores
            else f"live-{self.node}-{uuid.uuid4().hex[:12]}"
        )
        sub = NatsValueSubscription(
            self, name, consumer, max_points=max_points, overflow=overflow, prefix=prefix,
            stores=stores,
        )  # fmt: skip
        self._subs.append(sub)
        if stores:
            self._storing_subs.append(sub)
        self._start_consumer(sub, sub.created, lambda: self._value_consumer(sub))
        return sub

    def _start_consumer(
        self,
        sub: NatsValueSubscription | NatsEventSubscription,
        created: asyncio.Future[None],
        setup: Callable[[], Awaitable[str]],
    ) -> None:
        """Create the subscription's consumer (`setup`, which returns its stream), then pull."""
        self._creating.add(created)

        async def run() -> None:
            previous = self._closing.get(sub.consumer)
            if previous is not None:  # the predecessor under this name gives back first
                await asyncio.wait([previous], timeout=self.pull_expires_s + 4.0)
            try:
                stream = await setup()
            except (BusError, nats.errors.Error, TimeoutError) as err:
                _LOGGER.error("Subscription %s could not start: %s", sub.name, err)
                sub.fail(f"could not start: {err}")
                created.set_result(None)
                return
            finally:
                self._creating.discard(created)
            if not created.done():
                created.set_result(None)

            async def recreate() -> None:
                # The broker lost the consumer (an ephemeral one idle too long, a stream
                # re-created): declare it again and carry on.
                await setup()

            puller = Puller(
                self.nc,
                stream,
                sub.consumer,
                sub.handle,
                sub.room,
                expires_s=self.pull_expires_s,
                recreate=recreate,
            )
            sub.puller = puller
            if sub.closed:
                return
            await puller.run()

        sub.task = self._spawn(run(), name=f"pull {sub.consumer}")

    async def _value_consumer(self, sub: NatsValueSubscription) -> str:
        stream = self.names.values_stream
        await declare_value_consumer(self.jsm, stream, self.names.all_values, sub, self.ack_wait_s)
        if sub.stores:
            self._storing_index.forget()
        return stream

    @property
    def subscriptions(self) -> list[NatsValueSubscription]:
        return list(self._subs)

    def _shards(self, paths: Sequence[str]) -> list[int]:
        cache = self._shard_cache
        if len(cache) > 200_000:
            cache.clear()
        shards = self.names.shards
        out: list[int] = []
        for path in paths:
            shard = cache.get(path)
            if shard is None:
                shard = cache[path] = shard_of(path, shards)
            out.append(shard)
        return out

    async def publish(self, batch: ValueBatch) -> None:
        """Store the batch's parts in the values stream (waiting, bounded, while it is full)."""
        if not len(batch):
            return
        await self._created()
        await self._publish_values(batch)

    async def _publish_values(self, batch: ValueBatch) -> None:
        await self._store(self._messages(batch, uuid.uuid4().hex))
        self.published_batches += 1
        self.published_points += len(batch)

    def _messages(
        self, batch: ValueBatch, publish_id: str
    ) -> list[tuple[str, bytes, dict[str, str]]]:
        """The batch as messages: one, or parts (by shard, and cut further where a part would
        exceed the broker's `max_payload`), each with a `Nats-Msg-Id` made of the publish id, so
        a part re-sent after a lost reply is stored once."""
        shards = self._shards(batch.paths)
        first = shards[0]
        # Headers travel in the same message; leave them ample room.
        limit = max(self.nc.max_payload - _HEADER_ROOM, _HEADER_ROOM)
        if all(s == first for s in shards):
            payload = encode_batch(batch)
            if len(payload) <= limit:
                return [(self.names.values(first), payload, {MSG_ID: f"{publish_id}.{first}"})]
            pieces = [(first, batch, list(range(len(batch))))]
        else:
            pieces = split_batch(batch, shards)
        try:
            encoded = [
                (shard, payload)
                for shard, part, positions in pieces
                for payload in encode_fitting(part, positions, limit)
            ]
        except CodecError as err:
            raise BusError(str(err)) from None
        return [
            (
                self.names.values(shard),
                payload,
                {MSG_ID: f"{publish_id}.{i}", BATCH: publish_id, PARTS: f"{i}/{len(encoded)}"},
            )
            for i, (shard, payload) in enumerate(encoded)
        ]

    async def _store(self, messages: list[tuple[str, bytes, dict[str, str]]]) -> None:
        """Publish to JetStream and wait for the stream to have stored each message.

        A full stream (discard new) or a lost broker are retried until `full_wait_s` has
        passed; re-sending is safe because the message ids make the stream keep one copy.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.full_wait_s
        todo = messages
        delay = 0.02
        last: BaseException | None = None
        full = False
        while True:
            # At least a round trip's time per attempt, even at the end of the wait.
            remaining = max(deadline - loop.time(), 0.5)
            failed: list[tuple[str, bytes, dict[str, str]]] = []
            # Requests in parallel (nats-py's publish_async loses a full stream's error
            # replies: its futures never settle).
            try:
                results = await asyncio.gather(
                    *(
                        self.js.publish(subject, payload, timeout=remaining, headers=dict(headers))
                        for subject, payload, headers in todo
                    ),
                    return_exceptions=True,
                )
            except nats.errors.Error as err:
                failed, last = todo, err
            else:
                for message, result in zip(todo, results, strict=True):
                    if not isinstance(result, BaseException):
                        continue
                    if isinstance(result, nats.js.errors.APIError):
                        if result.err_code not in _STREAM_FULL:
                            raise BusError(
                                f"the values stream refused a batch: {result}"
                            ) from result
                        full = True
                    elif not isinstance(result, TimeoutError | nats.errors.Error):
                        raise result
                    failed.append(message)
                    last = result
            if not failed:
                return
            todo = failed
            if loop.time() >= deadline:
                raise self._store_error(last, full=full)
            await asyncio.sleep(min(delay, max(deadline - loop.time(), 0)))
            delay = min(delay * 2, 0.5)

    def _store_error(self, last: BaseException | None, *, full: bool = False) -> BusError:
        if full or (isinstance(last, nats.js.errors.APIError) and last.err_code in _STREAM_FULL):
            return BusFullError(
                f"the values stream {self.names.values_stream} is full "
                f"({self.values_max_bytes} bytes) and stayed full for {self.full_wait_s:g} s: a "
                "storing subscriber is not keeping up or is gone. Start it, or raise "
                "bus.values_max_bytes"
            )
        nc = self._nc
        if nc is None or not nc.is_connected:
            return BusError(
                f"the NATS broker at {self.url} is unreachable (waited {self.full_wait_s:g} s "
                "for it): is nats-server running there?"
            )
        return BusError(
            f"the NATS broker at {self.url} did not confirm a publish within "
            f"{self.full_wait_s:g} s ({last!r})"
        )

    async def publish_durable(self, batch: ValueBatch, *, timeout_s: float) -> None:
        """`Bus.publish_durable`: whatever goes wrong on the way is a `NotDurableError` (from
        the bus's own error), so a sender has one thing to catch and retry."""
        try:
            await self._publish_durable(batch, timeout_s)
        except NotDurableError:
            raise
        except (BusError, nats.errors.Error, nats.js.errors.Error, TimeoutError) as err:
            raise NotDurableError(
                f"batch of {len(batch)} values not committed: {err or type(err).__name__}; "
                "send it again later (re-sending is harmless)"
            ) from err

    async def _publish_durable(self, batch: ValueBatch, timeout_s: float) -> None:
        if not len(batch):
            return
        await self._created()
        storing = await self._storing_index.count(batch)
        if not storing:
            # Delivered to whoever reads values all the same; only nobody will store it.
            await self._publish_values(batch)
            raise NotDurableError(
                f"batch of {len(batch)} values not committed: no subscriber stores this batch "
                "(is the historian running on this bus?)"
            )
        batch.batch_id = uuid.uuid4().hex
        batch.origin = self.node
        waiter = self._waiters[batch.batch_id] = AckWaiter(batch.batch_id)
        waiter.expect(storing)
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                await self._publish_values(batch)
                error = await waiter.wait()
        except TimeoutError:
            if not deadline.expired():
                raise  # the broker's own (wrapped by publish_durable), not our deadline
            raise NotDurableError(
                f"batch of {len(batch)} values: no acknowledgement within {timeout_s:g} s; "
                "consider it not stored and send it again (re-sending is harmless)"
            ) from None
        finally:
            self._waiters.pop(batch.batch_id, None)
        if error is not None:
            raise NotDurableError(f"batch of {len(batch)} values not committed: {error}")

    async def send_ack(self, origin: str, ack: DurabilityAck) -> None:
        """Tell the publisher on node `origin` what became of its batch."""
        if not origin:
            return
        try:
            await self.nc.publish(self.names.acks(origin), encode_ack(ack))
        except (nats.errors.Error, BusError) as err:
            # The publisher times out and re-sends; the re-sent batch is stored once.
            _LOGGER.warning("Could not send the acknowledgement of %s: %s", ack.batch_id, err)

    async def _on_ack(self, msg: Msg) -> None:
        try:
            ack = decode_ack(msg.data)
        except CodecError as err:
            _LOGGER.error("Dropped an undecodable acknowledgement: %s", err)
            return
        waiter = self._waiters.get(ack.batch_id)
        if waiter is not None:  # None: the publisher gave up (timeout)
            waiter.take(ack)

    # -- events ---------------------------------------------------------------------------

    async def publish_event(self, event: Event) -> int:
        if not event.kind or not event.key:
            raise ValueError(
                f"an event needs a kind and a key (got kind={event.kind!r}, key={event.key!r})"
            )
        subject = self.names.event(event.kind, event.key)
        payload = encode_event(event)
        if event.id and event.id in self._event_ids:
            return self._event_ids[event.id]
        await self._created()
        # One id for every attempt of this call: a retry after a lost PubAck is logged once.
        msg_id = event.id or uuid.uuid4().hex
        headers = {MSG_ID: msg_id}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.full_wait_s
        while True:
            try:
                ack = await self.js.publish(
                    subject, payload, timeout=max(deadline - loop.time(), 0.1), headers=headers
                )
                break
            except (TimeoutError, nats.errors.Error) as err:
                if isinstance(err, nats.js.errors.APIError) or loop.time() >= deadline:
                    raise self._store_error(err) from err
                await asyncio.sleep(0.05)
        seq = ack.seq
        if ack.duplicate:
            seq = await find_seq(self.js, self.jsm, self.names.events_stream, subject, msg_id)
        if event.id:
            if len(self._event_ids) > 100_000:
                self._event_ids.clear()
            self._event_ids[event.id] = seq
        return seq

    def subscribe_events(
        self,
        name: str,
        *,
        kinds: Sequence[str] = (),
        durable: bool = False,
        start_seq: int | None = None,
        max_pending: int = 1000,
        ack_wait_s: float = 30.0,
    ) -> NatsEventSubscription:
        if ack_wait_s <= 0:
            raise ValueError(f"event subscription {name!r}: ack_wait_s must be positive")
        selected = kind_filter(kinds)
        if durable:
            if any(s.durable and s.name == name for s in self._event_subs):
                raise BusError(
                    f"durable event subscription {name!r} already has a subscriber in this "
                    "process: close it first (its unacknowledged events go to the next one)"
                )
            consumer = consumer_name("events", name)
        else:
            consumer = f"ev-{self.node}-{uuid.uuid4().hex[:12]}"
        sub = NatsEventSubscription(
            self, name, consumer, kinds=selected, durable=durable, max_pending=max_pending
        )
        self._event_subs.append(sub)
        self._start_consumer(
            sub,
            sub.created,
            lambda: self._event_consumer(sub, start_seq, max_pending, ack_wait_s),
        )
        return sub

    async def _event_consumer(
        self, sub: NatsEventSubscription, start_seq: int | None, max_pending: int, ack_wait_s: float
    ) -> str:
        stream = self.names.events_stream
        await declare_event_consumer(
            self.jsm, stream, self.names.all_events, sub,
            start_seq=start_seq, max_pending=max_pending, ack_wait_s=ack_wait_s,
        )  # fmt: skip
        return stream

    # -- commands -------------------------------------------------------------------------

    async def serve(self, target: str, handler: CommandHandler) -> NatsCommandServer:
        if not target:
            raise ValueError("a command target needs a name")
        subject = self.names.command(target)
        if target in self._servers:
            raise BusError(
                f"target {target!r} is already served in this process: one server per target "
                "(close the other first)"
            )
        server = NatsCommandServer(
            self.nc,
            target,
            handler,
            on_close=lambda t: self._servers.pop(t, None),
            max_concurrent=self.command_concurrency,
        )
        await server.start(subject)
        self._servers[target] = server
        return server

    async def request(self, command: Command, *, timeout_s: float) -> Mapping[str, Any]:
        return await request(
            self.nc, self.names.command(command.target), command, timeout_s, self.url
        )
