"""A Sparkplug host's health tells which edge nodes are alive: a node that sends its NDEATH, or
that stops (its connection dies and the broker delivers its will), shows offline and makes the
connector degraded with the node named; one that is born again comes back online."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from kiln.connectors.backoff import BackoffSettings
from kiln.connectors.base import ConnectorState
from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.connectors.service import Connectors
from kiln.connectors.sparkplug.config import SparkplugConfig
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage, Status
from kiln.sim.sparkplug_edge import EdgeNode
from kiln.testing.mosquitto import require_shared_broker

pytestmark = pytest.mark.slow
BROKER = BrokerSettings(url="mqtt://127.0.0.1:1883")
T0 = 1_767_225_600_000


@pytest.fixture(autouse=True)
def shared_broker() -> None:
    require_shared_broker()


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - messages over a real broker; poll the effect
            await asyncio.sleep(0.02)


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[tuple[str, Connectors]]:
    group = f"kh{uuid.uuid4().hex[:10]}"
    config = SparkplugConfig(
        name="spb", broker=BROKER, host_id=f"kiln-{uuid.uuid4().hex[:6]}", groups=[group],
        reconnect=BackoffSettings(initial_s=0.1, max_s=0.5, jitter=False),
    )  # fmt: skip
    platform = Platform(clock=SystemClock(), data_dir=tmp_path)
    service = Connectors([config])
    platform.add(service, Stage.SOURCES)
    async with platform:
        await until(lambda: service.runner("spb").state is ConnectorState.CONNECTED)
        yield group, service


def detail(service: Connectors) -> dict[str, Any]:
    entry = service.health().detail["spb"]
    assert isinstance(entry, dict)
    return entry


def node_detail(service: Connectors, name: str) -> dict[str, Any]:
    nodes = detail(service).get("nodes", {})
    found: dict[str, Any] = nodes.get(name, {})
    return found


async def test_dead_and_stopped_edge_nodes_degrade_the_connector_by_name(
    host: tuple[str, Connectors],
) -> None:
    group, service = host
    n1, n2 = EdgeNode(BROKER, group, "n1"), EdgeNode(BROKER, group, "n2")
    await n1.connect({"speed": 1.0}, T0)
    await n2.connect({"speed": 2.0}, T0)
    await until(lambda: len(detail(service).get("nodes", {})) == 2)
    assert detail(service)["state"] == "connected" and "reason" not in detail(service)
    assert service.health().status is Status.OK
    first = node_detail(service, f"{group}/n1")
    assert first["online"] is True and first["last_birth"] is not None
    assert (first["last_death"], first["rebirths_requested"], first["seq_errors"]) == (None, 0, 0)

    # n1 says goodbye with its NDEATH.
    await n1.close(now_ms=T0 + 1_000)
    await until(lambda: detail(service)["state"] == "degraded")
    assert service.health().status is Status.DEGRADED
    assert f"edge node {group}/n1 (NDEATH at " in detail(service)["reason"]
    assert f"{group}/n2" not in detail(service)["reason"]
    assert node_detail(service, f"{group}/n1")["online"] is False
    assert node_detail(service, f"{group}/n1")["last_death"] is not None
    assert node_detail(service, f"{group}/n2")["online"] is True

    # n2 just stops: its connection dies without a word, and the broker publishes its will.
    client = n2._client
    assert client is not None
    sock = client._client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)
    await until(lambda: f"{group}/n2" in detail(service).get("reason", ""))
    assert node_detail(service, f"{group}/n2")["online"] is False
    await n2.close(send_death=False)

    # Born again, each comes back online; with both back the connector is connected again.
    await n1.connect({"speed": 1.5}, T0 + 2_000)
    await until(lambda: node_detail(service, f"{group}/n1")["online"] is True)
    assert f"{group}/n1" not in detail(service)["reason"]
    await n2.connect({"speed": 2.5}, T0 + 2_000)
    await until(lambda: detail(service)["state"] == "connected")
    assert "reason" not in detail(service)
    await n1.close(now_ms=T0 + 3_000)
    await n2.close(now_ms=T0 + 3_000)
