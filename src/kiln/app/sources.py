"""The sources process of a split plant (`kiln run --role sources`): the connectors and the
virtual factory's source, publishing onto NATS JetStream, with no HTTP server.

Without an API, it says how it is doing two ways: a health line in the log when any service's
status changes (and every `HEALTH_LOG_S` regardless), and the bus command `health` to target
`sources` (`HEALTH_TARGET`), answered with every service's health. The server's
`/api/v1/connectors` reaches the connectors themselves through their own `status` command.

It needs nothing from the server to start: values go into the broker's values stream, which
keeps them for the historian's storing consumer while the server is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Mapping
from typing import Any

from kiln import __version__
from kiln.api.subsystem import Role
from kiln.app.assembly import build_platform
from kiln.app.settings import KilnSettings
from kiln.core.bus import Command, CommandError, CommandFailure
from kiln.core.health import Health, Status
from kiln.core.platform import Platform

_LOGGER = logging.getLogger(__name__)

HEALTH_TARGET = "sources"
HEALTH = "health"  # {} -> {"node": str, "status": str, "services": {name: {status, detail}}}
HEALTH_LOG_S = 300.0  # a health line at least this often, changed or not
_CHECK_S = 5.0  # how often the health is looked at for changes


async def run_sources(settings: KilnSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run the sources of `settings` until `stop` is set (SIGINT or SIGTERM set it when not
    given), then stop them cleanly."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    platform = build_platform(settings, role=Role.SOURCES)
    async with platform:
        server = await platform.bus.serve(HEALTH_TARGET, _HealthCommand(platform))
        _LOGGER.info(
            "Kiln %s sources running with %d services on bus %s (node %s)",
            __version__,
            len(platform.services),
            settings.bus.url,
            platform.bus.node,
        )
        try:
            await _watch_health(platform, stop)
        finally:
            await server.close()
    _LOGGER.info("Kiln stopped")


def report(platform: Platform) -> dict[str, Any]:
    """The health of every service of `platform` (and its bus), as JSON values."""
    health = platform.health()
    services = {name: {"status": h.status.value, "detail": h.detail} for name, h in health.items()}
    # The details are meant for JSON already; a stray non-JSON value is shown as its text.
    plain: dict[str, Any] = json.loads(json.dumps(services, default=str))
    return {"status": _worst(health).value, "services": plain}


def _worst(health: Mapping[str, Health]) -> Status:
    statuses = {h.status for h in health.values()}
    for status in (Status.FAILED, Status.DEGRADED, Status.STARTING, Status.STOPPED):
        if status in statuses:
            return status
    return Status.OK


class _HealthCommand:
    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def __call__(self, command: Command) -> Mapping[str, Any]:
        if command.name != HEALTH:
            raise CommandError(
                CommandFailure.INVALID,
                f"the sources process answers {HEALTH!r}, not {command.name!r}",
            )
        return {"node": self._platform.bus.node, **report(self._platform)}


async def _watch_health(platform: Platform, stop: asyncio.Event) -> None:
    """Log a health line when a status changes, and every HEALTH_LOG_S, until `stop`."""
    last: dict[str, str] | None = None
    logged_at = 0.0
    while not stop.is_set():
        now = platform.clock.monotonic()
        statuses = {name: h.status.value for name, h in platform.health().items()}
        if statuses != last or now - logged_at >= HEALTH_LOG_S:
            worst = _worst(platform.health())
            level = logging.INFO if worst is Status.OK else logging.WARNING
            summary = ", ".join(f"{name} {status}" for name, status in sorted(statuses.items()))
            _LOGGER.log(level, "Sources health %s: %s", worst.value, summary)
            last, logged_at = statuses, now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _CHECK_S)
