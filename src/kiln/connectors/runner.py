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


class ConnectorRunner:
    def __init__(
        self,
        config: ConnectorConfig,
        connector: Connector,
        link: Link,
        clock: Clock,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.connector = connector
        self.link = link
        self.clock = clock
        self.backoff = backoff or Backoff(config.reconnect)
        self.state = ConnectorState.CONNECTING
        self.outage: Outage | None = None
        self.connected_since_us: int | None = None
        self.stopping = False  # set by `request_stop`, before its task is cancelled

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
                    self._connected()
                    await self.connector.run(self.link)
                    raise SourceLost("the connection ended")
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # any failure of a device is an outage
                    if self.stopping:
                        # A connector's tasks may turn their cancellation into an error (a
                        # request cut off), and Python 3.11's TaskGroup then raises that instead
                        # of CancelledError: the cancellation is lost, and retrying would never
                        # stop. (Task.cancelling() cannot tell: client libraries leave it set.)
                        raise asyncio.CancelledError from err
                    await self._failed(err)
                delay = self.backoff.next_delay()
                _LOGGER.debug("Connector %s: next attempt in %.1f s", self.name, delay)
                await self.clock.sleep(delay)
        finally:
            self.state = ConnectorState.STOPPED
            await self._teardown()

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
