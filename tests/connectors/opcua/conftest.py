"""Fixtures of the OPC UA connector tests: servers, test certificates, a platform to run the
connector in. The servers and helpers themselves are in `opcua_plant`."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opcua_plant import Certs, PlantServer, start_server, until

from kiln.connectors.base import ConnectorState
from kiln.connectors.opcua.certificates import generate_application_certificate
from kiln.connectors.opcua.config import OpcUaConfig
from kiln.connectors.service import Connectors
from kiln.core.bus import Overflow, Subscription
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage
from kiln.testing.server import free_port


@pytest.fixture
async def servers() -> AsyncIterator[Callable[..., Awaitable[PlantServer]]]:
    """Start servers (each on a free port unless given one); all stopped at the end."""
    started: list[PlantServer] = []

    async def start(port: int | None = None, **kwargs: Any) -> PlantServer:
        plant = await start_server(port or free_port(), **kwargs)
        started.append(plant)
        return plant

    yield start
    for plant in started:
        with contextlib.suppress(Exception):  # some were stopped by the test already
            await plant.server.stop()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    d = tmp_path_factory.mktemp("pki")
    now = datetime.now(UTC)
    host = socket.gethostname()
    for stem in ("server", "other"):
        generate_application_certificate(
            d / f"{stem}.der",
            d / f"{stem}.pem",
            application_uri="urn:kiln:test:server",
            now=now,
            hosts=["localhost", host],
            server=True,
        )
    return Certs(d / "server.der", d / "server.pem", d / "other.der", d / "other.pem")


@pytest.fixture
async def platform_with(tmp_path: Path) -> AsyncIterator[Any]:
    """Run connectors in a platform; its bus subscription sees everything they publish.
    Waits until each is connected, unless told not to."""
    platforms: list[Platform] = []

    async def make(
        configs: OpcUaConfig | list[OpcUaConfig], *, connected: bool = True
    ) -> tuple[Connectors, Subscription]:
        configs = configs if isinstance(configs, list) else [configs]
        platform = Platform(clock=SystemClock(), data_dir=tmp_path / f"p{len(platforms)}")
        service = Connectors(configs)
        platform.add(service, Stage.SOURCES)
        sub = platform.bus.subscribe("test", max_points=100_000, overflow=Overflow.BLOCK)
        await platform.__aenter__()
        platforms.append(platform)
        if connected:
            await until(lambda: all(r.state is ConnectorState.CONNECTED for r in service.runners))
        return service, sub

    yield make
    for p in platforms:
        await p.__aexit__(None, None, None)
