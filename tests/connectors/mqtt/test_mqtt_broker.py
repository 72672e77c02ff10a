"""The plain MQTT connector against real brokers: the machine's Mosquitto on 1883, and a
Mosquitto of the test's own that is killed and restarted to prove the reconnect."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import pytest

from kiln.connectors.backoff import BackoffSettings
from kiln.connectors.base import ConnectorState
from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.connectors.mqtt.codec import TopicMapping
from kiln.connectors.mqtt.config import MqttConfig
from kiln.connectors.service import Connectors
from kiln.core.bus import Overflow, Subscription
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage
from kiln.core.quality import Quality
from kiln.core.values import TagValue
from kiln.testing.mosquitto import own_broker

pytestmark = pytest.mark.slow
SHARED = ("127.0.0.1", 1883)
FAST = BackoffSettings(initial_s=0.1, max_s=0.5, jitter=False)


def shared_broker_or_skip() -> None:
    try:
        socket.create_connection(SHARED, timeout=2).close()
    except OSError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Mosquitto is not reachable on {SHARED}: {err}; CI=true needs it")
        pytest.skip(f"Mosquitto is not reachable on {SHARED} (set CI=true to fail instead)")


def mqtt_config(url: str, prefix: str) -> MqttConfig:
    return MqttConfig(
        name="sensors",
        broker=BrokerSettings(url=url, client_id=f"kiln-test-{uuid.uuid4().hex[:8]}"),
        mappings=[
            TopicMapping(
                topic=f"{prefix}/+/telemetry",
                path="acme/plant1/{1}/temperature",
                value="$.t",
                timestamp="$.ts",
            ),
        ],
        reconnect=FAST,
    )


async def values(sub: Subscription, n: int) -> list[TagValue]:
    out: list[TagValue] = []
    async with asyncio.timeout(10):
        async for batch in sub:
            out.extend(batch)
            if len(out) >= n:
                return out
    return out


async def publish(url_port: int, topic: str, payloads: list[bytes]) -> None:
    async with aiomqtt.Client("127.0.0.1", url_port) as client:
        for p in payloads:
            await client.publish(topic, p, qos=1)


async def until(predicate: Callable[[], bool]) -> None:
    """Poll a condition of real connections (no event to wait on), for up to 10 s."""
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


@pytest.fixture
async def platform_with(tmp_path: Path) -> AsyncIterator[object]:
    platforms: list[Platform] = []

    async def make(config: MqttConfig) -> tuple[Platform, Connectors, Subscription]:
        platform = Platform(clock=SystemClock(), data_dir=tmp_path)
        service = Connectors([config])
        platform.add(service, Stage.SOURCES)
        await platform.__aenter__()
        platforms.append(platform)
        sub = platform.bus.subscribe("test", max_points=100_000, overflow=Overflow.BLOCK)
        await until(lambda: service.runner("sensors").state is ConnectorState.CONNECTED)
        return platform, service, sub

    yield make
    for p in platforms:
        await p.__aexit__(None, None, None)


async def test_values_from_the_shared_broker(platform_with: object) -> None:
    shared_broker_or_skip()
    prefix = f"kiln-test/{uuid.uuid4().hex[:8]}"
    _, service, sub = await platform_with(mqtt_config("mqtt://127.0.0.1:1883", prefix))  # type: ignore[operator]
    ts = 1_767_225_600_000
    await publish(1883, f"{prefix}/oven3/telemetry", [
        b'{"t": 180.5, "ts": %d}' % ts,
        b"garbage",
        b'{"t": 181.0, "ts": %d}' % (ts + 1000),
        b'{"wrong": "shape"}',
    ])  # fmt: skip
    got = await values(sub, 2)
    assert [(v.path, v.value, v.source_us) for v in got] == [
        ("acme/plant1/oven3/temperature", 180.5, ts * 1000),
        ("acme/plant1/oven3/temperature", 181.0, (ts + 1000) * 1000),
    ]
    stats = service.runner("sensors").link.stats
    await until(lambda: stats.malformed == 2)
    assert service.health().detail["sensors"]["malformed"] == 2  # type: ignore[index]


async def test_broker_restart_goes_bad_then_resumes_good(
    tmp_path: Path, platform_with: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    broker = own_broker(tmp_path)
    broker.start()
    try:
        _, service, sub = await platform_with(mqtt_config(broker.url, "plant"))  # type: ignore[operator]
        runner = service.runner("sensors")
        await publish(broker.port, "plant/oven1/telemetry", [b'{"t": 20.0, "ts": 1767225600000}'])
        assert [v.value for v in await values(sub, 1)] == [20.0]

        broker.kill()
        (bad,) = await values(sub, 1)
        assert (bad.path, bad.value, bad.quality) == (
            "acme/plant1/oven1/temperature", 20.0, Quality.BAD_NOT_CONNECTED
        )  # fmt: skip
        assert runner.state is ConnectorState.ERROR
        await asyncio.sleep(1.0)  # several refused attempts while the broker is down

        broker.start()
        await until(lambda: runner.state is ConnectorState.CONNECTED)
        # Resubscribed: a new message flows with Good quality.
        await publish(broker.port, "plant/oven1/telemetry", [b'{"t": 21.0, "ts": 1767225660000}'])
        (good,) = await values(sub, 1)
        assert (good.value, good.quality) == (21.0, Quality.GOOD)
    finally:
        broker.kill()
    lost = [r for r in caplog.records if "lost its source" in r.getMessage()]
    recovered = [r for r in caplog.records if "recovered after" in r.getMessage()]
    assert len(lost) == 1 and len(recovered) == 1
    # The client library's own complaints about each refused attempt stay at debug.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        lost[0].getMessage()
    ]
