"""Running one connector: connect, run, and when it fails, mark Bad, back off, reconnect.

The same loop for every protocol (home-assistant's update coordinator is the model): the first
failure of an outage is logged once at warning, later attempts at debug, and the recovery once
at info. One runner per connector, each its own task, so one failing device never stops another.
"""

from __future__ import annotations

import asyncio
import logging

from kiln.connectors.backoff import Backoff
from kiln.connectors.base import (
    Connector,
    ConnectorConfig,
    ConnectorState,
    Described,
    SourceLost,
)
from kiln.connectors.link import Link, Outage
from kiln.connectors.reasons import describe_failure
from kiln.core.clock import Clock
from kiln.core.quality import Quality

_LOGGER = logging.getLogger(__name__)

# How long a stop waits for a connector's run to end once cancelled, and again once its
# connection is closed: twice this stays within the platform's stop timeout (15 s).
STOP_GRACE_S = 5.0


class ConnectorRunner:
    def __init__(
        self,
        config: ConnectorConfig,
        connector: Connector,
        link: Link,
        clock: Clock,
        *,
        backoff: Backoff | None = None,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        self.config = config
        self.connector = connector
        self.link = link
        self.clock = clock
        self.backoff = backoff or Backoff(config.reconnect)
        self.stop_grace_s = stop_grace_s
        self.state = ConnectorState.CONNECTING
        self.outage: Outage | None = None
        self.connected_since_us: int | None = None
        self.stopping = False  # set by `request_stop`, before its task is cancelled
        self.left_behind: asyncio.Task[None] | None = None  # a run that would not stop

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def effective_state(self) -> ConnectorState:
        """The state, DEGRADED when connected but some of what it reads fails (a connector
        says so with a true `degraded` attribute, e.g. one Modbus unit of several is down)."""
        if self.state is ConnectorState.CONNECTED and getattr(self.connector, "degraded", False):
            return ConnectorState.DEGRADED
        return self.state

    async def announce(self, since_us: int | None = None) -> None:
        """Before the first attempt: describe the connector's tags to the asset model and mark
        every tag it serves (configured, or remembered from an earlier run) Bad, waiting for
        initial data, so that no value of a previous run still reads Good.

        The mark is stamped `since_us` (the platform's start): newer than anything an earlier
        run stored, older than anything a source of this run produced, whose values then keep
        their own timestamps.
        """
        link = self.link
        link.remember()
        if isinstance(self.connector, Described):
            await link.describe(self.connector.described_tags())
        await link.mark(
            set(self.connector.tags) | link.known_paths(),
            Quality.BAD_WAITING_FOR_INITIAL_DATA,
            at_us=since_us,
        )

    def request_stop(self) -> None:
        """Say that the cancellation about to come is a stop, whatever error it surfaces as."""
        self.stopping = True

    async def run_forever(self) -> None:
        """Until cancelled. Never raises anything but CancelledError."""
        try:
            while True:
                self.state = ConnectorState.CONNECTING
                try:
                    await self.connector.setup(self.link)
                    self._stop_if_requested()
                    self._connected()
                    await self._run()
                    raise SourceLost("the connection ended")
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # any failure of a device is an outage
                    if self.stopping:
                        # A connector may turn its cancellation into an error (a connect or a
                        # request cut off; `_run` sees its own cancellation, setup does not):
                        # the cancellation is lost, and retrying would never stop.
                        # (Task.cancelling() cannot tell: client libraries leave it set.)
                        raise asyncio.CancelledError from err
                    await self._failed(err)
                self._stop_if_requested()
                delay = self.backoff.next_delay()
                _LOGGER.debug("Connector %s: next attempt in %.1f s", self.name, delay)
                await self.clock.sleep(delay)
        finally:
            self.state = ConnectorState.STOPPED
            await self._teardown()

    def _stop_if_requested(self) -> None:
        """Raise the stop's cancellation if the connector returned in its stead: a client
        library may lose a cancellation (Python 3.11's `asyncio.wait_for` returns an answer that
        came in the same turn of the loop, python/cpython#86296), and the runner would go on."""
        if self.stopping:
            raise asyncio.CancelledError

    async def _run(self) -> None:
        """`connector.run`, in a task of its own so that a stop never waits on it for ever.

        Awaited here, the connector's TaskGroup would take this task's cancellation and wait for
        its own tasks; one that loses its cancellation runs on, and the stop waits with it (a
        second cancellation does not help: the TaskGroup is already aborting). In a task, the
        runner sees its own cancellation whatever the connector does with it.
        """
        run = asyncio.create_task(self.connector.run(self.link), name=f"connector:{self.name}:run")
        try:
            await asyncio.wait({run})
        except asyncio.CancelledError:
            await self._stop_run(run)
            raise
        run.result()  # what it raised, or None: the connection ended

    async def _stop_run(self, run: asyncio.Task[None]) -> None:
        """Cancel `run` and wait for it, a bounded time: if it goes on, close its connection (a
        request then fails, whatever became of the cancellation) and wait again; if it still
        goes on, or this wait is itself cancelled, leave it behind, logged: the stop must end."""
        run.cancel()
        try:
            done, _ = await asyncio.wait({run}, timeout=self.stop_grace_s)
            if not done:
                _LOGGER.warning(
                    "Connector %s went on %g s after it was cancelled; closing its connection",
                    self.name,
                    self.stop_grace_s,
                )
                await self._teardown()
                run.cancel()
                await asyncio.wait({run}, timeout=self.stop_grace_s)
        finally:
            if run.done():
                _consume(run)
            else:
                _LOGGER.error(
                    "Connector %s would not stop when cancelled; stopped without it", self.name
                )
                self.left_behind = run  # the event loop holds its tasks only weakly
                run.add_done_callback(_consume)

    def _connected(self) -> None:
        if self.outage is not None:
            _LOGGER.info(
                "Connector %s recovered after %d attempt(s) (%s)",
                self.name,
                self.outage.attempts,
                self.outage.reason,
            )
            self.link.stats.reconnects += 1
        self.outage = None
        self.backoff.reset()
        self.state = ConnectorState.CONNECTED
        self.connected_since_us = self.clock.now_us()

    async def _failed(self, err: Exception) -> None:
        reason = describe_failure(err, self.config.peer)
        self.link.stats.failures += 1
        self.state = ConnectorState.ERROR
        self.connected_since_us = None
        if self.outage is None:
            self.outage = Outage(reason, self.clock.now_us())
            _LOGGER.warning(
                "Connector %s lost its source: %s; retrying with backoff (logged again on "
                "recovery)",
                self.name,
                reason,
            )
            await self._mark_bad()
        else:
            self.outage = Outage(reason, self.outage.since_us, self.outage.attempts + 1)
            _LOGGER.debug("Connector %s still failing: %s", self.name, reason)
        await self._teardown()

    async def _mark_bad(self) -> None:
        """Every tag it feeds, read or not yet: its last value again (or a stand-in), Bad
        (not connected), at host time."""
        try:
            await self.link.mark(
                set(self.connector.tags) | self.link.known_paths(), Quality.BAD_NOT_CONNECTED
            )
        except Exception:  # the bus is stopping: nothing left to tell
            _LOGGER.debug("Connector %s could not publish Bad quality", self.name, exc_info=True)

    async def _teardown(self) -> None:
        try:
            await self.connector.teardown()
        except Exception:  # teardown must not take the runner down
            _LOGGER.debug("Connector %s: teardown failed", self.name, exc_info=True)


def _consume(run: asyncio.Task[None]) -> None:
    """Take what a run stopped with: a stop is not an outage, but asyncio would log it as an
    exception never retrieved. Its cancellation may surface as an error (a request cut off)."""
    if not run.cancelled() and (err := run.exception()) is not None:
        _LOGGER.debug("Connector run %s stopped with %r", run.get_name(), err)
