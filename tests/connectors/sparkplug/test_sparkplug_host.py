"""The Sparkplug B host connector against the machine's Mosquitto, with a real edge node."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import pytest

from kiln.connectors.backoff import BackoffSettings
from kiln.connectors.base import ConnectorState
from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.connectors.service import Connectors
from kiln.connectors.sparkplug.codec import (
    BDSEQ_METRIC,
    DataType,
    Metric,
    Payload,
    decode_state,
    encode_payload,
)
from kiln.connectors.sparkplug.config import SparkplugConfig
from kiln.connectors.sparkplug.connector import metric_path
from kiln.connectors.sparkplug.session import MetricId
from kiln.core.bus import Overflow, Subscription
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage
from kiln.core.quality import Quality
from kiln.core.values import ValueBatch
from kiln.sim.sparkplug_edge import EdgeNode
from kiln.testing.mosquitto import require_shared_broker

pytestmark = pytest.mark.slow
BROKER = BrokerSettings(url="mqtt://127.0.0.1:1883")
T0 = 1_767_225_600_000


@pytest.fixture(autouse=True)
def shared_broker() -> None:
    require_shared_broker()


def test_metric_paths_follow_the_template() -> None:
    node = MetricId("acme", "plant1", None, "packaging/line1/conveyor1/speed")
    device = MetricId("acme", "plant 1", "press#7", "force")
    assert metric_path("{group}/{node}/{device}/{metric}", node) == (
        "acme/plant1/packaging/line1/conveyor1/speed"
    )
    assert metric_path("{group}/{node}/{device}/{metric}", device) == "acme/plant_1/press_7/force"
    with pytest.raises(ValueError, match="must contain"):
        SparkplugConfig(name="x", broker=BROKER, path="{group}/{node}")


class Harness:
    def __init__(self, group: str, host_id: str) -> None:
        self.group, self.host_id = group, host_id
        self.batches: list[ValueBatch] = []

    async def collect(self, sub: Subscription) -> None:
        async for batch in sub:
            self.batches.append(batch)

    def values(self, name: str) -> list[tuple[object, int, bool]]:
        """(value, quality, historical) of every point of metric `name` so far."""
        return [
            (v.value, v.quality, b.historical)
            for b in self.batches
            for v in b
            if v.path.endswith("/" + name)
        ]


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - messages over a real broker; poll the effect
            await asyncio.sleep(0.02)


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[tuple[Harness, Connectors]]:
    h = Harness(f"kt{uuid.uuid4().hex[:10]}", f"kiln-{uuid.uuid4().hex[:6]}")
    config = SparkplugConfig(
        name="spb", broker=BROKER, host_id=h.host_id, groups=[h.group],
        reconnect=BackoffSettings(initial_s=0.1, max_s=0.5, jitter=False),
        session={"reorder_timeout_ms": 200, "rebirth_resend_ms": 1000},
    )  # fmt: skip
    platform = Platform(clock=SystemClock(), data_dir=tmp_path)
    service = Connectors([config])
    platform.add(service, Stage.SOURCES)
    async with platform:
        sub = platform.bus.subscribe("t", max_points=100_000, overflow=Overflow.DROP_OLDEST)
        task = asyncio.create_task(h.collect(sub))
        await until(lambda: service.runner("spb").state is ConnectorState.CONNECTED)
        yield h, service
        task.cancel()


async def test_birth_data_gap_rebirth_death_and_state(host: tuple[Harness, Connectors]) -> None:
    h, service = host
    # The host announced itself online, retained (Sparkplug 3.0, 5.2).
    async with aiomqtt.Client("127.0.0.1", 1883) as probe:
        await probe.subscribe(f"spBv1.0/STATE/{h.host_id}", qos=1)
        async with asyncio.timeout(5):
            state = decode_state(bytes((await anext(probe.messages)).payload))
        assert state.online is True

    node = EdgeNode(BROKER, h.group, "plant1")
    await node.connect({"line1/speed": 12.5, "line1/running": True, "line1/count": 7}, T0)
    await until(lambda: len(h.values("speed")) == 1)
    assert h.values("speed") == [(12.5, Quality.GOOD, False)]
    paths = {v.path for b in h.batches for v in b}
    assert f"{h.group}/plant1/line1/running" in paths

    await node.publish({"line1/speed": 13.0}, T0 + 1000)
    await until(lambda: len(h.values("speed")) == 2)

    # A lost message: skip one seq. After the reorder timeout the host asks for exactly one
    # rebirth, and the edge node answers it with a new NBIRTH.
    births = node.births
    node.seq += 1
    await node.publish({"line1/speed": 14.0}, T0 + 2000)
    await until(lambda: node.births == births + 1)
    await asyncio.sleep(0.5)
    counters = service.runner("spb").connector.session.counters  # type: ignore[attr-defined]
    assert (counters.gaps, counters.rebirths_requested) == (1, 1)
    assert node.births == births + 1

    # Garbage on a Sparkplug topic is counted, nothing else changes.
    async with aiomqtt.Client("127.0.0.1", 1883) as rogue:
        await rogue.publish(f"spBv1.0/{h.group}/NDATA/plant1", b"\x08\xff\xff garbage", qos=0)
        # An NDEATH from an earlier session (old bdSeq) is ignored (5.5).
        old = Payload(T0, (Metric(name=BDSEQ_METRIC, datatype=DataType.INT64, value=99),))
        await rogue.publish(f"spBv1.0/{h.group}/NDEATH/plant1", encode_payload(old), qos=1)
    runner = service.runner("spb")
    await until(lambda: runner.link.stats.malformed >= 1)
    await until(lambda: runner.connector.session.counters.old_deaths_ignored == 1)  # type: ignore[attr-defined]
    assert all(q == Quality.GOOD for _, q, _ in h.values("speed"))

    # Historical values are stored apart and never become the latest value.
    await node.publish({"line1/speed": 1.0}, T0 - 60_000, historical=True)
    await until(lambda: any(hist for _, _, hist in h.values("speed")))

    # The real NDEATH: every metric of the node is stale.
    await node.close(now_ms=T0 + 5000)
    await until(lambda: any(q == Quality.BAD_NOT_CONNECTED for _, q, _ in h.values("count")))
    assert h.values("count")[-1] == (7, Quality.BAD_NOT_CONNECTED, False)
