"""The notification service: alarm transitions in (a durable bus subscription), pipelines run,
messages out by webhook and email, every attempt recorded.

Three kinds of work, none waiting on another:

* the event task takes each `alarm.transition`, runs the pipelines (`Runner`), commits the new
  deliveries and timers in one transaction and only then acknowledges the event on the bus, so
  an event whose effects are not on disk is delivered again (and handling it again adds
  nothing: delivery ids derive from their cause);
* the scheduler task fires due timers (delays, escalations, reminders, consolidation windows)
  and starts due attempts, at most `max_concurrent` at once, each in its own task;
* each attempt marks its delivery `sending` before and `sent`, `failed` (the next attempt is
  scheduled with exponential backoff and jitter, never slept in line) or `dead` after.

A receiver that is down therefore delays only its own deliveries. Time comes from the
platform's clock, so tests drive escalations and backoff with a fake one.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from kiln.alarms.notify.channels import SendFailed, send_email, send_webhook
from kiln.alarms.notify.commands import NOTIFICATIONS_TARGET, NotificationCommands
from kiln.alarms.notify.model import Send
from kiln.alarms.notify.pipeline import Runner
from kiln.alarms.notify.settings import NotificationSettings
from kiln.alarms.notify.store import Delivery, NotificationStore
from kiln.alarms.records import TRANSITION_KIND
from kiln.core.bus import CommandServer, EventDelivery, EventSubscription
from kiln.core.bus import Event as BusEvent
from kiln.core.clock import Clock
from kiln.core.health import Health, Status
from kiln.core.webhooks import RetryPolicy, backoff_s, wait_until

if TYPE_CHECKING:
    from kiln.core.platform import Platform

_LOGGER = logging.getLogger(__name__)

SUBSCRIPTION = "notifications"  # the durable event subscription's name
_US = 1_000_000


@dataclass(slots=True)
class NotifyStats:
    events: int = 0
    sent: int = 0
    failed: int = 0  # attempts that failed and will be retried
    dead: int = 0
    interrupted: int = 0  # found `sending` at start
    errors: int = 0  # events or timers whose handling failed
    last_error: str = ""


class NotificationService:
    """The `notifications` service. `store` is opened at start."""

    name = "notifications"

    def __init__(
        self,
        settings: NotificationSettings,
        store: NotificationStore,
        *,
        rng: random.Random | None = None,
        stop_grace_s: float = 5.0,
    ) -> None:
        """`rng` draws the backoff jitter (seeded in tests); `stop_grace_s`: how long `stop`
        lets sends in flight finish before cancelling them."""
        self.settings = settings
        self.stop_grace_s = stop_grace_s
        self.store = store
        self.stats = NotifyStats()
        self.runner = Runner(settings)
        self._rng = rng if rng is not None else random.Random()
        self._clock: Clock | None = None
        self._lock = asyncio.Lock()  # the runner's state and its commits
        self._wake = asyncio.Event()
        self._sub: EventSubscription | None = None
        self._server: CommandServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._attempts: dict[str, asyncio.Task[None]] = {}
        self._http: httpx.AsyncClient | None = None
        self._status = Status.STARTING

    # -- life cycle -------------------------------------------------------------------------

    async def start(self, platform: Platform) -> None:
        self._clock = platform.clock
        await asyncio.to_thread(self.store.open)
        self.stats.interrupted = await asyncio.to_thread(self.store.interrupted, self.now_us())
        if self.stats.interrupted:
            _LOGGER.warning(
                "Notifications: %d deliveries were being sent when the notifier stopped; "
                "they are dead letters now (retry them with the `retry` command)",
                self.stats.interrupted,
            )
        self.runner = Runner(self.settings, await asyncio.to_thread(self.store.load_state))
        self._sub = platform.bus.subscribe_events(
            SUBSCRIPTION, kinds=(TRANSITION_KIND,), durable=True
        )
        self._server = await platform.bus.serve(NOTIFICATIONS_TARGET, NotificationCommands(self))
        self._tasks = [
            platform.spawn(self._event_loop(self._sub), name="notifications-events"),
            platform.spawn(self._schedule_loop(), name="notifications-scheduler"),
        ]
        self._status = Status.OK
        _LOGGER.info(
            "Notifications started: %d pipelines, %d users, %d timers pending",
            len(self.settings.pipelines),
            len(self.settings.users),
            len(self.runner.state.timers),
        )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.close()
        if self._sub is not None:
            self._sub.close()  # what it did not acknowledge goes to the next subscriber
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        attempts = list(self._attempts.values())
        if attempts:
            # Let sends in flight finish (and be recorded) rather than leave them `sending`.
            _, late = await asyncio.wait(attempts, timeout=self.stop_grace_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        async with self._lock:
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
                "pipelines": len(self.settings.pipelines),
                "events": self.stats.events,
                "timers": len(self.runner.state.timers),
                "sending": len(self._attempts),
                "sent": self.stats.sent,
                "failed_attempts": self.stats.failed,
                "dead_letters": self.stats.dead,
                "interrupted": self.stats.interrupted,
                **({"last_error": self.stats.last_error} if self.stats.last_error else {}),
            },
        )

    def now_us(self) -> int:
        assert self._clock is not None, "the notification service is not started"
        return self._clock.now_us()

    def wake(self) -> None:
        """Have the scheduler look again (a new delivery, timer or retry)."""
        self._wake.set()

    # -- events -------------------------------------------------------------------------------

    async def _event_loop(self, sub: EventSubscription) -> None:
        async for delivery in sub:
            await self._take(delivery)

    async def _take(self, delivery: EventDelivery) -> None:
        try:
            await self.handle(delivery.event)
        except (KeyError, ValueError, TypeError) as err:
            # An event this notifier cannot read will not read better next time: say so and
            # let it go rather than have it delivered again forever.
            self._error(f"event {delivery.event.id or delivery.event.seq} is malformed: {err}")
            await delivery.ack()
        except Exception as err:
            # Not acknowledged: the bus delivers it again after its ack wait.
            self._error(f"event {delivery.event.id or delivery.event.seq} failed: {err}")
        else:
            await delivery.ack()

    async def handle(self, event: BusEvent) -> None:
        """Run the pipelines for one event and commit what they did."""
        async with self._lock:
            now = self.now_us()
            self.stats.events += 1
            try:
                sends = self.runner.on_transition(dict(event.data), now)
                await self._commit(sends, now)
            except BaseException:
                await self._reload()
                raise
        if sends:
            self.wake()

    async def _commit(self, sends: list[Send], now: int) -> None:
        state = self.runner.state
        if state.dirty or sends:
            await asyncio.to_thread(self.store.commit, state, sends, now)
            state.dirty.clear()

    async def _reload(self) -> None:
        """After a failed commit the runner's state may be ahead of the store: start again
        from what is stored (the event will be delivered again)."""
        try:
            self.runner = Runner(self.settings, await asyncio.to_thread(self.store.load_state))
        except Exception:
            _LOGGER.exception("Notifications: could not reload the pipeline state")

    def _error(self, message: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = message
        _LOGGER.error("Notifications: %s", message)

    # -- timers and attempts ------------------------------------------------------------------

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
        """Fire due timers, start due attempts; the time of the next thing due (None: none)."""
        now = self.now_us()
        async with self._lock:
            try:
                sends = self.runner.fire_due(now)
                await self._commit(sends, now)
            except BaseException:
                await self._reload()
                raise
        room = self.settings.max_concurrent - len(self._attempts)
        if room > 0:
            for delivery in await asyncio.to_thread(self.store.due, now, room):
                if delivery.id not in self._attempts:
                    await self._begin(delivery, now)
        nexts = [self.runner.next_due_us()]
        if len(self._attempts) < self.settings.max_concurrent:
            nexts.append(await asyncio.to_thread(self.store.next_attempt_us))
        return min((n for n in nexts if n is not None), default=None)

    async def _wait(self, until_us: int | None) -> None:
        assert self._clock is not None
        await wait_until(self._clock, self._wake, until_us)

    async def _begin(self, delivery: Delivery, now: int) -> None:
        # Recorded before the attempt: a crash from here on can never make it go out twice.
        await asyncio.to_thread(
            self.store.mark, delivery.id, now, "sending", attempts=delivery.attempts + 1
        )
        task = asyncio.get_running_loop().create_task(
            self._attempt(delivery), name=f"notify-{delivery.id}"
        )
        self._attempts[delivery.id] = task

    async def _attempt(self, delivery: Delivery) -> None:
        send = delivery.send
        # Email retries as its server is configured; without one it fails for good anyway.
        policy: RetryPolicy = (
            self.settings.smtp
            if send.channel == "email" and self.settings.smtp is not None
            else self.settings.webhook
        )
        try:
            await self._send(delivery)
        except Exception as err:
            retryable = not isinstance(err, SendFailed) or err.retryable
            reason = str(err) or type(err).__name__
            await self._failed(delivery, policy, reason, retryable=retryable)
        else:
            now = self.now_us()
            await asyncio.to_thread(
                self.store.mark, send.id, now, "sent",
                sent_us=now, next_attempt_us=None, last_error="",
            )  # fmt: skip
            self.stats.sent += 1
        finally:
            self._attempts.pop(send.id, None)
            self.wake()

    async def _send(self, delivery: Delivery) -> None:
        send = delivery.send
        if send.channel == "webhook":
            if self._http is None:
                # Made at the first webhook: building its TLS context takes tens of ms, which
                # a plant without webhooks (and every start) should not pay.
                self._http = httpx.AsyncClient()
            await send_webhook(self._http, send, self.settings.webhook, self.now_us() // _US)
            return
        if self.settings.smtp is None:
            raise SendFailed(
                "email needs notifications.smtp, which is not set: configure the mail server",
                retryable=False,
            )
        await send_email(send, self.settings.smtp)

    async def _failed(
        self, delivery: Delivery, policy: RetryPolicy, reason: str, *, retryable: bool
    ) -> None:
        now = self.now_us()
        attempt = delivery.round_attempts + 1
        if retryable and attempt <= policy.retries:
            due = now + round(backoff_s(policy, attempt, self._rng) * _US)
            await asyncio.to_thread(
                self.store.mark, delivery.id, now, "failed", last_error=reason, next_attempt_us=due
            )
            self.stats.failed += 1
            _LOGGER.info("Notification %s failed (%s); attempt %d next", delivery.id, reason,
                         attempt + 1)  # fmt: skip
            return
        await asyncio.to_thread(
            self.store.mark, delivery.id, now, "dead", last_error=reason, next_attempt_us=None
        )
        self.stats.dead += 1
        _LOGGER.warning(
            "Notification %s to %s is a dead letter after %d attempts: %s",
            delivery.id,
            delivery.send.address,
            delivery.attempts + 1,
            reason,
        )
