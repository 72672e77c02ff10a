"""The bus: the one way Kiln's engines talk, in one process or across several.

Four channels, each with the guarantees an engine may rely on whatever carries it
(`InProcessBus` in the embedded default, `kiln.cluster.nats_bus.NatsBus` across processes; the
contract suite in `tests/core/bus/` holds both to the same behaviour):

* **values**: columnar `ValueBatch`es fanned out to named subscribers. Each subscriber states
  its bound (points) and what happens when it is full (`Overflow`). A subscriber that stores
  (`stores=True`: the historian) acknowledges every batch it took with `ack`, after its commit.
* **durability acknowledgements**: `publish_durable` publishes a batch and waits for the storing
  subscriber's `ack` of it, which travels back as a message (`DurabilityAck`: batch id, durable
  or the reason it is not). A sender that got no acknowledgement must not consider the batch
  stored (`NotDurableError`); re-sending is harmless (the historian keeps one value per tag and
  source time).
* **events**: typed records (`Event`: kind, key, data) in one ordered log. Events with the same
  key reach a subscriber in publish order; each carries a sequence number a consumer stores and
  resumes from. A durable subscriber (named, `durable=True`) acknowledges each delivery after
  committing its effect; what it did not acknowledge is delivered again (`redelivered=True`) to
  the next subscriber under that name, after `ack_wait_s` or once the first one is gone.
  The log is bounded (`max_events`): the oldest events go first, and a subscriber that had not
  reached them is told how many it missed (`EventSubscription.stats.missed`).
* **commands**: a request to whichever process serves a target (`serve`), with a reply and a
  deadline (`request`). Write-back to a device is the command `write` to target `connectors`.

Nothing here imports a broker client: the protocol is what engines program against.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from kiln.core.errors import KilnError
from kiln.core.health import Health
from kiln.core.values import ValueBatch

# -- errors -------------------------------------------------------------------------------


class SubscriptionClosed(Exception):
    """The subscription was closed; no more deliveries will come."""


class BusError(KilnError):
    """The bus could not do what was asked; the message says why and what to do."""


class BusFullError(BusError):
    """A bounded channel refused a publish (its stated overflow): retry later or raise the bound."""


class CommandError(BusError):
    """The server of a command answered with a failure.

    `kind` is one of `CommandFailure`'s values, so a caller maps it to its own error (the API to
    an HTTP status) without parsing the message.
    """

    def __init__(self, kind: CommandFailure, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class CommandTimeoutError(BusError, TimeoutError):
    """No reply came before the command's deadline. The command may still have been carried out."""


class NoResponderError(BusError, LookupError):
    """Nobody serves the command's target (in this process, or anywhere on the bus)."""


# -- values -------------------------------------------------------------------------------


class Overflow(StrEnum):
    """What a full value subscription does with the next batch.

    * ``BLOCK``: the publisher waits for space (the historian: a slow disk slows the sources
      down instead of losing data; the time publishers spent blocked is counted).
    * ``DROP_OLDEST``: the oldest queued batches are discarded and counted (live views: a
      stalled browser never slows the plant).
    """

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"


@dataclass(slots=True)
class SubscriptionStats:
    name: str
    overflow: Overflow
    max_points: int
    depth_points: int = 0
    depth_batches: int = 0
    delivered_points: int = 0
    dropped_points: int = 0
    dropped_batches: int = 0
    blocked_seconds: float = 0.0


@runtime_checkable
class ValueSubscription(Protocol):
    """One consumer's bounded queue of value batches. Iterate it, or `get()` / `drain()`."""

    name: str
    prefix: str | None
    stats: SubscriptionStats

    @property
    def closed(self) -> bool: ...

    async def get(self) -> ValueBatch:
        """The next batch; raises `SubscriptionClosed` once closed and empty."""
        ...

    def drain(self, max_points: int) -> list[ValueBatch]:
        """Queued batches without waiting, up to about `max_points` (at least one if any)."""
        ...

    async def ack(
        self, batch: ValueBatch, error: str | None = None, *, retry: bool = False
    ) -> None:
        """Done with `batch` (a storing subscription: committed, or refused for `error`).

        Sends the batch's `DurabilityAck` to its publisher if one waits, and lets the bus forget
        the batch (a broker will not deliver it again). Harmless on a non-storing subscription.

        `retry=True`: not stored, but not refused either (the commit failed, was cancelled, or
        the consumer stopped): the publisher still hears `error`, and a broker delivers the
        batch again (to this subscriber's next attempt, or its successor under the same name).
        The in-process bus has nobody to deliver it to after its process, so there it is an
        error acknowledgement like any other. A refusal (the batch itself is bad) is permanent:
        `retry=False`.
        """
        ...

    def close(self) -> None:
        """Stop receiving; wakes the consumer (after it empties the queue) and blocked publishers."""
        ...

    def __aiter__(self) -> AsyncIterator[ValueBatch]: ...


# What a publisher hears for a batch given back (`ack(..., retry=True)`) without a reason.
RETRY_ERROR = "not stored yet: the storing subscriber gave it back to be delivered again"


@dataclass(frozen=True, slots=True)
class DurabilityAck:
    """The message a storing subscriber sends for a batch that asked for one."""

    batch_id: str
    error: str | None = None  # None: committed

    @property
    def durable(self) -> bool:
        return self.error is None


# -- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """A typed record on the event log.

    `kind` is dotted, most general first ("alarm.transition", "asset.state"); subscribers
    select by kind prefix. `key` orders: events with the same key are delivered in the order
    they were published (an alarm's id, an asset's path). `data` holds JSON values only.
    `seq` is set by the bus when the event is logged (strictly increasing over the whole log);
    `id`, if the publisher gives one, makes a re-sent event a duplicate the bus drops.
    """

    kind: str
    key: str
    data: Mapping[str, Any]
    time_us: int
    seq: int = 0
    id: str = ""


@dataclass(slots=True)
class EventStats:
    name: str
    delivered: int = 0
    redelivered: int = 0
    acked: int = 0
    pending: int = 0  # delivered, not yet acknowledged
    missed: int = 0  # dropped from the log before this subscriber reached them


@runtime_checkable
class EventDelivery(Protocol):
    event: Event
    redelivered: bool

    async def ack(self) -> None:
        """The consumer has committed what this event means to it: never deliver it again."""
        ...


@runtime_checkable
class EventSubscription(Protocol):
    name: str
    stats: EventStats

    async def get(self) -> EventDelivery:
        """The next delivery; raises `SubscriptionClosed` once closed."""
        ...

    def close(self) -> None:
        """Stop receiving. A durable subscriber's unacknowledged events go to its successor."""
        ...

    def __aiter__(self) -> AsyncIterator[EventDelivery]: ...


# -- commands -----------------------------------------------------------------------------


class CommandFailure(StrEnum):
    """Why a command failed, in words every caller can map (the API: 404, 400, 503, 502)."""

    NOT_FOUND = "not_found"  # nothing by that name here (a path no connector writes)
    INVALID = "invalid"  # the arguments are wrong; retrying the same will fail the same way
    UNAVAILABLE = "unavailable"  # try again later (a device not connected)
    FAILED = "failed"  # the server tried and failed (a device refused the write)


@dataclass(frozen=True, slots=True)
class Command:
    target: str  # who serves it: "connectors"
    name: str  # what to do: "write"
    args: Mapping[str, Any] = field(default_factory=dict)  # JSON values only


# A handler returns the reply (JSON values only) or raises CommandError(kind, message); any other
# exception is answered as FAILED with its message (and logged by the serving side).
CommandHandler = Callable[[Command], Awaitable[Mapping[str, Any]]]


@runtime_checkable
class CommandServer(Protocol):
    target: str

    async def close(self) -> None: ...


# -- the bus ------------------------------------------------------------------------------


@runtime_checkable
class Bus(Protocol):
    """What the Platform is given and every engine talks through."""

    node: str  # this process's name on the bus (unique per process; acks come back to it)
    published_points: int  # values published by this process (for metrics)
    published_batches: int

    async def start(self) -> None:
        """Connect (a broker) and declare what the bus needs; before any service starts."""
        ...

    async def stop(self) -> None:
        """Close every subscription and server; after every service stopped."""
        ...

    def health(self) -> Health: ...

    # values
    async def publish(self, batch: ValueBatch) -> None:
        """Deliver to every subscriber; waits only on BLOCK subscribers that are full."""
        ...

    async def publish_durable(self, batch: ValueBatch, *, timeout_s: float) -> None:
        """Publish and wait for the storing subscriber's acknowledgement.

        Raises `NotDurableError` (and nothing else the bus itself raises) when it refused the
        batch, none stores it, the bus could not carry it, or no acknowledgement came within
        `timeout_s`: in every case, send it again later.
        """
        ...

    def subscribe(
        self,
        name: str,
        *,
        max_points: int,
        overflow: Overflow,
        prefix: str | None = None,
        stores: bool = False,
    ) -> ValueSubscription:
        """A bounded queue of the batches under `prefix` (all when None).

        `stores=True` marks the subscriber whose `ack` makes a batch durable; at most one
        storing subscription per name, and it should use `Overflow.BLOCK`.
        """
        ...

    @property
    def subscriptions(self) -> Sequence[ValueSubscription]: ...

    # events
    async def publish_event(self, event: Event) -> int:
        """Log `event`; its sequence number (the existing one if `event.id` was seen before)."""
        ...

    def subscribe_events(
        self,
        name: str,
        *,
        kinds: Sequence[str] = (),
        durable: bool = False,
        start_seq: int | None = None,
        max_pending: int = 1000,
        ack_wait_s: float = 30.0,
    ) -> EventSubscription:
        """Events whose kind starts with one of `kinds` (all when empty).

        Non-durable: from now, or from `start_seq` if given; nothing to acknowledge.
        Durable: resumes where the last subscriber under `name` stopped acknowledging (or from
        `start_seq` the first time); at most `max_pending` unacknowledged deliveries at once.
        """
        ...

    # commands
    async def serve(self, target: str, handler: CommandHandler) -> CommandServer:
        """Answer the commands sent to `target` until the server is closed."""
        ...

    async def request(self, command: Command, *, timeout_s: float) -> Mapping[str, Any]:
        """Send `command` and wait for the reply.

        Raises `CommandError` (the server's failure), `NoResponderError` (nobody serves the
        target) or `CommandTimeoutError` (no reply within `timeout_s`).
        """
        ...
