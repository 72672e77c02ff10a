"""The value chain's webhooks: its order, lot, plan and recall events POSTed as signed JSON to
the receivers the plant file names, retried with backoff, every attempt recorded.

The same pattern as the alarm notifier (`kiln.alarms.notify.service`), with the signature,
headers and backoff of `kiln.core.webhooks`, so a receiver checks both the same way:

* the event task takes each `valuechain.<kind>` event from a durable bus subscription, records
  one delivery per webhook that selects its kind (in `WebhookStore`, one transaction) and only
  then acknowledges it, so an event whose deliveries are not on disk is delivered again; the
  delivery id derives from the webhook and the event's id (`vc-<seq>`), so handling it again
  adds nothing and every attempt carries the same `X-Kiln-Delivery`;
* the scheduler task starts due attempts, at most `webhooks_max_concurrent` at once, each in
  its own task: a receiver that is down delays only its own deliveries;
* an attempt marks its delivery `sending` before and `sent`, `failed` (the next attempt
  scheduled with exponential backoff and jitter, never slept in line) or `dead` after: out of
  retries, or refused with a 4xx that will not change (410 Gone, 404, ...).

Order per webhook is not kept: deliveries go oldest first, but one that fails is retried later
while newer ones go ahead. A receiver that needs order compares `time`, or fetches the current
state of the `subject` when told it changed. Delivery is at least once: a delivery caught
`sending` by a restart is attempted again with the same id.

Body: `{"id": delivery id, "event": kind, "subject": ..., "time": ISO 8601 UTC, "data": the
event's body}`. Time comes from the platform's clock, so tests drive backoff with a fake one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kiln.core.bus import Event, EventDelivery, EventSubscription
from kiln.core.clock import Clock, us_to_datetime
from kiln.core.health import Health, Status
from kiln.core.webhooks import SendFailed, backoff_s, post_signed, wait_until
from kiln.valuechain.engine import EVENT_PREFIX
from kiln.valuechain.settings import ValuechainSettings, ValuechainWebhook
from kiln.valuechain.webhook_store import Delivery, NewDelivery, WebhookStore

if TYPE_CHECKING:
    import httpx

    from kiln.core.platform import Platform

_LOGGER = logging.getLogger(__name__)

SUBSCRIPTION = "valuechain-webhooks"  # the durable event subscription's name
_US = 1_000_000


@dataclass(slots=True)
class WebhookStats:
    events: int = 0  # value chain events taken
    deliveries: int = 0  # deliveries recorded
    sent: int = 0
    failed: int = 0  # attempts that failed and will be retried
    dead: int = 0
    interrupted: int = 0  # found `sending` at start, attempted again
    errors: int = 0  # events whose handling failed
    last_error: str = ""


def delivery_id(webhook: str, event_id: str) -> str:
    """The id of `event_id`'s delivery to `webhook`: the same however often it is handled."""
    return hashlib.sha256(f"{webhook}\n{event_id}".encode()).hexdigest()[:32]


def event_id(event: Event) -> str:
    """What names an event for good: the engine's id (`vc-<seq>`, the outbox's sequence),
    else the bus's sequence number."""
    return event.id or f"seq-{event.seq}"


def body(delivery: str, kind: str, event: Event) -> str:
    """The JSON a receiver gets. `data` is the event's body; its `subject` is lifted out."""
    data = {k: v for k, v in event.data.items() if k != "subject"}
    subject = event.data.get("subject", event.key)
    time = us_to_datetime(event.time_us).isoformat().replace("+00:00", "Z")
    doc = {"id": delivery, "event": kind, "subject": subject, "time": time, "data": data}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def deliveries_for(hooks: Sequence[ValuechainWebhook], event: Event) -> list[NewDelivery]:
    """One delivery per webhook that selects `event`'s kind (pure: what `handle` records)."""
    if not event.kind.startswith(EVENT_PREFIX):
        raise ValueError(f"{event.kind!r} is not a value chain event")
    kind = event.kind.removeprefix(EVENT_PREFIX)
    ref = event_id(event)
    out = []
    for hook in hooks:
        if hook.wants(kind):
            did = delivery_id(hook.name, ref)
            subject = str(event.data.get("subject", event.key))
            out.append(NewDelivery(did, hook.name, ref, kind, subject, body(did, kind, event)))
    return out


class ValuechainWebhooks:
    """The `valuechain-webhooks` service (stage ENGINES, added before the engine so it
    subscribes before the engine's outbox publishes). `store` is opened at start."""

    name = "valuechain-webhooks"

    def __init__(
        self,
        settings: ValuechainSettings,
        store: WebhookStore,
        *,
        rng: random.Random | None = None,
        stop_grace_s: float = 5.0,
    ) -> None:
        """`rng` draws the backoff jitter (seeded in tests); `stop_grace_s`: how long `stop`
        lets attempts in flight finish before cancelling them."""
        self.settings = settings
        self.hooks: Mapping[str, ValuechainWebhook] = {h.name: h for h in settings.webhooks}
        self.store = store
        self.stop_grace_s = stop_grace_s
        self.stats = WebhookStats()
        self._rng = rng if rng is not None else random.Random()
        self._keys: dict[str, str] = {}
        self._clock: Clock | None = None
        self._wake = asyncio.Event()
        self._sub: EventSubscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._attempts: dict[str, asyncio.Task[None]] = {}
        self._http: httpx.AsyncClient | None = None
        self._status = Status.STARTING

    # -- life cycle -------------------------------------------------------------------------

    async def start(self, platform: Platform) -> None:
        import httpx

        self._clock = platform.clock
        # Read now: a missing secret file stops the start with its name, not the first send.
        self._keys = await asyncio.to_thread(
            lambda: {h.name: h.key() for h in self.settings.webhooks}
        )
        await asyncio.to_thread(self.store.open)
        try:
            self.stats.interrupted = await asyncio.to_thread(self.store.interrupted, self.now_us())
            self._sub = platform.bus.subscribe_events(
                SUBSCRIPTION, kinds=(EVENT_PREFIX,), durable=True
            )
        except BaseException:
            # A failed start is not stopped by the platform: let go of the database here.
            await asyncio.to_thread(self.store.close)
            raise
        if self.stats.interrupted:
            _LOGGER.warning(
                "Value chain webhooks: %d deliveries were being sent when the sender stopped; "
                "they are attempted again (same X-Kiln-Delivery id)",
                self.stats.interrupted,
            )
        self._http = httpx.AsyncClient()
        self._tasks = [
            platform.spawn(self._event_loop(self._sub), name="valuechain-webhooks-events"),
            platform.spawn(self._schedule_loop(), name="valuechain-webhooks-scheduler"),
        ]
        self._status = Status.OK
        _LOGGER.info("Value chain webhooks started: %d receivers", len(self.hooks))

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()  # what it did not acknowledge goes to the next subscriber
            self._sub = None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        attempts = list(self._attempts.values())
        if attempts:
            # Let attempts in flight finish (and be recorded) rather than leave them `sending`.
            _, late = await asyncio.wait(attempts, timeout=self.stop_grace_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        await asyncio.to_thread(self.store.close)
        self._status = Status.STOPPED

    def health(self) -> Health:
        status = self._status
        if status is Status.OK and any(t.done() for t in self._tasks):
            status = Status.FAILED
        elif status is Status.OK and (self.stats.dead or self.stats.errors):
            status = Status.DEGRADED
        return Health(
            status,
            {
                "webhooks": len(self.hooks),
                "events": self.stats.events,
                "deliveries": self.stats.deliveries,
                "sending": len(self._attempts),
                "sent": self.stats.sent,
                "failed_attempts": self.stats.failed,
                "dead_letters": self.stats.dead,
                "interrupted": self.stats.interrupted,
                **({"last_error": self.stats.last_error} if self.stats.last_error else {}),
            },
        )

    def now_us(self) -> int:
        assert self._clock is not None, "the value chain webhooks are not started"
        return self._clock.now_us()

    def wake(self) -> None:
        """Have the scheduler look again (a new delivery, or an attempt done)."""
        self._wake.set()

    # -- events -------------------------------------------------------------------------------

    async def _event_loop(self, sub: EventSubscription) -> None:
        async for delivery in sub:
            await self._take(delivery)

    async def _take(self, delivery: EventDelivery) -> None:
        event = delivery.event
        try:
            await self.handle(event)
        except (KeyError, ValueError, TypeError) as err:
            # An event that cannot be read will not read better next time: say so and let it
            # go rather than have it delivered again forever.
            self._error(f"event {event_id(event)} is malformed: {err}")
            await delivery.ack()
        except Exception as err:
            # Not acknowledged: the bus delivers it again after its ack wait.
            self._error(f"event {event_id(event)} failed: {type(err).__name__}: {err}")
        else:
            await delivery.ack()

    async def handle(self, event: Event) -> int:
        """Record `event`'s deliveries (committed when this returns); how many it selected."""
        self.stats.events += 1
        new = deliveries_for(self.settings.webhooks, event)
        if new:
            await asyncio.to_thread(self.store.add, new, self.now_us())
            self.stats.deliveries += len(new)
            self.wake()
        return len(new)

    def _error(self, message: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = message
        _LOGGER.error("Value chain webhooks: %s", message)

    # -- attempts -----------------------------------------------------------------------------

    async def _schedule_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                until = await self.step()
            except Exception as err:
                self._error(f"scheduling failed: {type(err).__name__}: {err}")
                until = self.now_us() + _US  # try again in a second
            await self._wait(until)

    async def step(self) -> int | None:
        """Start due attempts; when the next one is due (None: nothing waits, or no room)."""
        now = self.now_us()
        room = self.settings.webhooks_max_concurrent - len(self._attempts)
        if room > 0:
            for delivery in await asyncio.to_thread(self.store.due, now, room):
                if delivery.id not in self._attempts:
                    await self._begin(delivery, now)
        if len(self._attempts) >= self.settings.webhooks_max_concurrent:
            return None  # an attempt ending wakes the scheduler
        return await asyncio.to_thread(self.store.next_attempt_us)

    async def _wait(self, until_us: int | None) -> None:
        assert self._clock is not None
        await wait_until(self._clock, self._wake, until_us)

    async def _begin(self, delivery: Delivery, now: int) -> None:
        # Recorded before the attempt, so a restart knows it may have gone out.
        await asyncio.to_thread(
            self.store.mark, delivery.id, now, "sending", attempts=delivery.attempts + 1
        )
        task = asyncio.get_running_loop().create_task(
            self._attempt(delivery), name=f"valuechain-webhook-{delivery.id}"
        )
        self._attempts[delivery.id] = task

    async def _attempt(self, delivery: Delivery) -> None:
        hook = self.hooks.get(delivery.webhook)
        try:
            if hook is None:
                raise SendFailed(
                    f"webhook {delivery.webhook!r} is no longer in the plant file", retryable=False
                )
            assert self._http is not None
            await post_signed(
                self._http,
                hook.url,
                delivery.body.encode(),
                delivery_id=delivery.id,
                secret=self._keys[hook.name],
                timeout_s=hook.timeout_s,
                now_s=self.now_us() // _US,
            )
        except Exception as err:
            retryable = not isinstance(err, SendFailed) or err.retryable
            reason = str(err) or type(err).__name__
            await self._failed(delivery, hook, reason, retryable=retryable)
        else:
            now = self.now_us()
            await asyncio.to_thread(
                self.store.mark, delivery.id, now, "sent",
                sent_us=now, next_attempt_us=None, last_error="",
            )  # fmt: skip
            self.stats.sent += 1
        finally:
            self._attempts.pop(delivery.id, None)
            self.wake()

    async def _failed(
        self, delivery: Delivery, hook: ValuechainWebhook | None, reason: str, *, retryable: bool
    ) -> None:
        now = self.now_us()
        attempt = delivery.attempts + 1  # the one that just failed
        if hook is not None and retryable and attempt <= hook.retries:
            due = now + round(backoff_s(hook, attempt, self._rng) * _US)
            await asyncio.to_thread(
                self.store.mark, delivery.id, now, "failed", last_error=reason, next_attempt_us=due
            )
            self.stats.failed += 1
            _LOGGER.info(
                "Value chain webhook %s: delivery %s failed (%s); attempt %d next",
                delivery.webhook,
                delivery.id,
                reason,
                attempt + 1,
            )
            return
        await asyncio.to_thread(
            self.store.mark, delivery.id, now, "dead", last_error=reason, next_attempt_us=None
        )
        self.stats.dead += 1
        _LOGGER.warning(
            "Value chain webhook %s: delivery %s of event %s is a dead letter after %d "
            "attempts: %s",
            delivery.webhook,
            delivery.id,
            delivery.event_id,
            attempt,
            reason,
        )
