"""The Sparkplug B host against a Mosquitto of the test's own that is killed and restarted: the
node's metrics go Bad, the host reconnects by itself, says online again on its STATE topic, and
the edge node's next session (new bdSeq) brings the values back Good. And when only the host's
connection drops, the node (still online, never reborn) is asked for a rebirth."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from test_sparkplug_host import T0, Harness, until

from kiln.connectors.backoff import BackoffSettings
from kiln.connectors.base import ConnectorState
from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.connectors.service import Connectors
from kiln.connectors.sparkplug.codec import (
    BDSEQ_METRIC,
    DataType,
    HostState,
    Metric,
    Payload,
    decode_state,
    encode_payload,
)
from kiln.connectors.sparkplug.config import SessionSettings, SparkplugConfig
from kiln.connectors.sparkplug.topic import EdgeTopic, MessageType, StateTopic
from kiln.core.bus import Overflow
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage, Status
from kiln.core.quality import Quality
from kiln.sim.sparkplug_edge import EdgeNode
from kiln.testing.mosquitto import Mosquitto, own_broker

pytestmark = pytest.mark.slow


class Rig:
    def __init__(self, broker: Mosquitto, harness: Harness, service: Connectors) -> None:
        self.broker, self.h, self.service = broker, harness, service
        self.settings = BrokerSettings(url=broker.url)
        self.runner = service.runner("spb")

    async def host_state(self) -> tuple[HostState, bool]:
        """The host's STATE as a new subscriber gets it, and whether it came retained."""
        async with aiomqtt.Client("127.0.0.1", self.broker.port) as probe:
            await probe.subscribe(StateTopic(self.h.host_id).topic, qos=1)
            async with asyncio.timeout(5):
                message = await anext(probe.messages)
        return decode_state(bytes(message.payload)), message.retain


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    broker = own_broker(tmp_path)
    broker.start()
    try:
        h = Harness(f"kt{uuid.uuid4().hex[:10]}", f"kiln-{uuid.uuid4().hex[:6]}")
        config = SparkplugConfig(
            name="spb", broker=BrokerSettings(url=broker.url, client_id=h.host_id),
            host_id=h.host_id,
            groups=[h.group], reconnect=BackoffSettings(initial_s=0.1, max_s=0.5, jitter=False),
            session=SessionSettings(reorder_timeout_ms=200, rebirth_resend_ms=1000),
        )  # fmt: skip
        platform = Platform(clock=SystemClock(), data_dir=tmp_path)
        service = Connectors([config])
        platform.add(service, Stage.SOURCES)
        async with platform:
            sub = platform.bus.subscribe("t", max_points=100_000, overflow=Overflow.DROP_OLDEST)
            task = asyncio.create_task(h.collect(sub))
            await until(lambda: service.runner("spb").state is ConnectorState.CONNECTED)
            yield Rig(broker, h, service)
            task.cancel()
    finally:
        broker.kill()


async def test_broker_restart_goes_bad_then_host_and_node_come_back(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    h, runner, service = rig.h, rig.runner, rig.service
    first_state, _ = await rig.host_state()
    assert first_state.online is True

    node = EdgeNode(rig.settings, h.group, "plant1")
    await node.connect({"line1/speed": 12.5, "line1/running": True, "line1/count": 7}, T0)
    await node.publish({"line1/speed": 13.0}, T0 + 1000)
    await until(lambda: len(h.values("speed")) == 2)
    assert h.values("speed") == [(12.5, Quality.GOOD, False), (13.0, Quality.GOOD, False)]
    assert h.values("count") == [(7, Quality.GOOD, False)]

    # The broker dies (no will is sent: the broker that would send it is gone).
    rig.broker.kill()
    await until(lambda: len(h.values("count")) == 2)
    # Every metric of the node: its last value again, Bad, once.
    assert h.values("speed")[2:] == [(13.0, Quality.BAD_NOT_CONNECTED, False)]
    assert h.values("running")[1:] == [(True, Quality.BAD_NOT_CONNECTED, False)]
    assert h.values("count")[1:] == [(7, Quality.BAD_NOT_CONNECTED, False)]
    assert not h.values(BDSEQ_METRIC)
    # It keeps retrying with backoff while the broker is down, and says so in health.
    await until(lambda: runner.outage is not None and runner.outage.attempts >= 3)
    await until(lambda: runner.state is ConnectorState.ERROR)
    health = service.health()
    assert health.status is Status.DEGRADED
    assert health.detail["spb"]["state"] == "error"
    assert health.detail["spb"]["attempts"] >= 3
    # The latest refused attempt's reason: the broker and what it did.
    assert health.detail["spb"]["reason"] == f"{rig.broker.url}: Connection refused"
    await node.close(send_death=False)  # its connection died with the broker: a new session
    assert node.bd_seq == 1

    # Same port again: the host reconnects by itself and re-announces itself online, retained
    # (the broker kept nothing: persistence is off).
    rig.broker.start()
    await until(lambda: runner.state is ConnectorState.CONNECTED)
    assert runner.outage is None
    assert runner.link.stats.reconnects == 1
    assert service.health().status is Status.OK
    state, retained = await rig.host_state()
    assert state.online is True and retained
    assert state.timestamp_ms > first_state.timestamp_ms

    # The edge node's new session: NBIRTH with bdSeq 1, then NDATA; values resume Good.
    await node.connect({"line1/speed": 14.0, "line1/running": False, "line1/count": 8}, T0 + 9000)
    await node.publish({"line1/speed": 15.0}, T0 + 10_000)
    await until(lambda: len(h.values("speed")) == 5)
    assert h.values("speed")[3:] == [(14.0, Quality.GOOD, False), (15.0, Quality.GOOD, False)]
    assert h.values("running")[2:] == [(False, Quality.GOOD, False)]
    assert h.values("count")[2:] == [(8, Quality.GOOD, False)]
    session = runner.connector.session  # type: ignore[attr-defined]
    assert session.is_online(h.group, "plant1")
    assert (session.counters.gaps, session.counters.rebirths_requested) == (0, 0)

    # The host follows the new session: an NDEATH of the old one (bdSeq 0) changes nothing.
    async with aiomqtt.Client("127.0.0.1", rig.broker.port) as late:
        old = Payload(T0, (Metric(name=BDSEQ_METRIC, datatype=DataType.INT64, value=0),))
        death = EdgeTopic(h.group, MessageType.NDEATH, "plant1").topic
        await late.publish(death, encode_payload(old), qos=1)
    await until(lambda: runner.connector.session.counters.old_deaths_ignored == 1)  # type: ignore[attr-defined]
    assert session.is_online(h.group, "plant1")
    assert h.values("count")[-1] == (8, Quality.GOOD, False)
    await node.close(now_ms=T0 + 11_000)

    lost = [r for r in caplog.records if "lost its source" in r.getMessage()]
    recovered = [r for r in caplog.records if "recovered after" in r.getMessage()]
    assert len(lost) == 1 and len(recovered) == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        lost[0].getMessage()
    ]


async def test_a_host_only_outage_asks_the_still_online_node_for_a_rebirth(rig: Rig) -> None:
    h, runner = rig.h, rig.runner
    node = EdgeNode(rig.settings, h.group, "plant1")
    await node.connect({"line1/speed": 12.5, "line1/count": 7}, T0)
    await until(lambda: len(h.values("count")) == 1)

    # Another client with the host's client id takes its MQTT session over: the broker drops
    # the host's connection (MQTT 3.1.1, 3.1.4), and nothing else. The node stays online.
    async with aiomqtt.Client("127.0.0.1", rig.broker.port, identifier=h.host_id):
        await until(lambda: len(h.values("count")) == 2)
    assert h.values("count")[1] == (7, Quality.BAD_NOT_CONNECTED, False)
    await until(lambda: runner.state is ConnectorState.CONNECTED)

    # The node goes on with its session: NDATA with only what changed. The host, which may
    # have missed messages, asks for a rebirth, and the NBIRTH brings every metric back Good.
    births = node.births
    await node.publish({"line1/speed": 13.0}, T0 + 1000)
    await until(lambda: node.births == births + 1)
    await until(lambda: h.values("count")[-1][1] == Quality.GOOD)
    assert h.values("count")[-1] == (7, Quality.GOOD, False)
    assert h.values("speed")[-1] == (13.0, Quality.GOOD, False)
    session = runner.connector.session  # type: ignore[attr-defined]
    assert session.counters.rebirths_requested == 1
    assert session.is_online(h.group, "plant1")
    await node.close(now_ms=T0 + 2000)
