"""What a plant configured only with connectors shows, against real peers (a pymodbus server,
an asyncua server, Mosquitto with plain MQTT and a Sparkplug edge node), through the whole
platform (asset model and historian on disk):

* every tag a connector serves is a tag of the asset model, with its type and, where the source
  says, unit and description, in a tree built for it;
* no Good value without a fresh read: a tag that cannot be read shows Bad with the reason, and
  after a restart with the device down the previous run's Good value is replaced by Bad at once.
"""

from __future__ import annotations

import asyncio
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from asyncua import ua

from kiln.app.assembly import build_platform
from kiln.app.settings import Settings
from kiln.connectors.backoff import BackoffSettings
from kiln.connectors.base import ConnectorConfig
from kiln.connectors.modbus.codec import Table
from kiln.connectors.modbus.config import ModbusConfig
from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.connectors.mqtt.config import MqttConfig
from kiln.connectors.opcua.config import OpcUaConfig
from kiln.connectors.service import Connectors
from kiln.connectors.sparkplug.codec import (
    BDSEQ_METRIC,
    DataType,
    Metric,
    Payload,
    Property,
    encode_payload,
)
from kiln.connectors.sparkplug.config import SparkplugConfig
from kiln.core.platform import Platform
from kiln.core.quality import Quality
from kiln.core.values import TagValue
from kiln.historian.service import Historian
from kiln.model.definitions import DataType as TagType
from kiln.model.info import TagInfo
from kiln.model.service import AssetModel
from kiln.security.passwords import PasswordHasherSettings
from kiln.sim.modbus import RegisterImage, modbus_server
from kiln.testing.mosquitto import require_shared_broker
from kiln.testing.server import free_port

pytestmark = pytest.mark.slow
FAST = BackoffSettings(initial_s=0.1, max_s=0.3, jitter=False)
DOWN = {Quality.BAD_WAITING_FOR_INITIAL_DATA, Quality.BAD_NOT_CONNECTED}


@asynccontextmanager
async def running(data_dir: Path, connector: ConnectorConfig) -> AsyncIterator[Platform]:
    settings = Settings(data_dir=data_dir, connectors=[connector])
    platform = build_platform(settings, password_settings=PasswordHasherSettings.for_tests())
    async with platform:
        yield platform


async def latest(platform: Platform, path: str) -> TagValue | None:
    found = await platform.service(Historian).latest([path])
    return next((v for v in found if v.path == path), None)


async def until_latest(
    platform: Platform, path: str, ok: Callable[[TagValue], bool], within_s: float = 10
) -> TagValue:
    """The latest value of `path` once `ok` holds (polled: the writer commits in a thread)."""
    deadline = time.monotonic() + within_s
    while True:
        value = await latest(platform, path)
        if value is not None and ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"latest value of {path} never satisfied the test: {value}")
        await asyncio.sleep(0.05)


async def after_restart(platform: Platform, path: str, started_us: int) -> TagValue:
    """The first latest value of `path` stamped by this run: within a moment of the start,
    where the previous run's Good value stayed for 20 s and more."""
    return await until_latest(platform, path, lambda v: v.source_us >= started_us, within_s=3)


def model_tag(platform: Platform, path: str) -> TagInfo:
    tag = platform.service(AssetModel).tag(path)
    assert tag is not None, f"{path} is not a tag of the model"
    return tag


def problem(platform: Platform, name: str) -> str:
    entry: dict[str, Any] = platform.service(Connectors).health().detail[name]  # type: ignore[assignment]
    return str(entry.get("last_problem"))


def now_us() -> int:
    return time.time_ns() // 1000


def need_mosquitto() -> None:
    require_shared_broker()


# -- Modbus TCP -------------------------------------------------------------------------------

PRESS = "acme/plant1/press/line1/press7"


def modbus(port: int) -> ModbusConfig:
    return ModbusConfig.model_validate({
        "name": "press7", "host": "127.0.0.1", "port": port, "timeout_s": 0.3, "reconnect": FAST,
        "devices": [{"prefix": PRESS, "poll_groups": [{"interval_ms": 50, "tags": [
            {"name": "force", "address": 0, "type": "float32", "unit": "kN",
             "description": "ram force"},
            # The device has coils 0..15 only: this one is answered "illegal data address".
            {"name": "door", "table": "coil", "address": 40, "type": "bool"},
        ]}]}],
    })  # fmt: skip


async def test_modbus_tags_in_the_model_a_failing_coil_bad_and_a_restart_bad(
    tmp_path: Path,
) -> None:
    image = RegisterImage()
    image.define(1, Table.HOLDING_REGISTER, 0, 10)
    image.define(1, Table.COIL, 0, 16)
    image.set(1, Table.HOLDING_REGISTER, 0, list(struct.unpack(">HH", struct.pack(">f", 812.5))))
    port = free_port()
    server = modbus_server(image, "127.0.0.1", port)
    serving = asyncio.create_task(server.serve_forever())
    try:
        async with running(tmp_path, modbus(port)) as platform:
            force = await until_latest(platform, f"{PRESS}/force", lambda v: v.quality == 0)
            assert force.value == 812.5
            # The coil was never read, yet it shows, Bad with why; the register reads on.
            door = await until_latest(
                platform, f"{PRESS}/door", lambda v: v.quality == Quality.BAD_CONFIGURATION_ERROR
            )
            assert door.value is False
            assert f"{PRESS}/door" in problem(platform, "press7")
            assert "illegal data address" in problem(platform, "press7")
            tag = model_tag(platform, f"{PRESS}/force")
            assert (tag.data_type, tag.unit, tag.description) == (TagType.FLOAT, "kN", "ram force")
            assert model_tag(platform, f"{PRESS}/door").data_type is TagType.BOOL
            assert [a.path for a in platform.service(AssetModel).tree("acme/plant1")] == [
                "acme/plant1"
            ]
    finally:
        await server.shutdown()
        await asyncio.wait({serving}, timeout=5)

    started = now_us()
    async with running(tmp_path, modbus(port)) as platform:  # the device is gone now
        force = await after_restart(platform, f"{PRESS}/force", started)
        assert force.quality in DOWN
        await until_latest(
            platform, f"{PRESS}/force", lambda v: v.quality == Quality.BAD_NOT_CONNECTED
        )


# -- OPC UA -----------------------------------------------------------------------------------

OVEN = "acme/plant1/bake/line1/oven3"


async def opcua_server(port: int) -> Any:
    from asyncua import Server

    server = Server()
    server.disable_clock()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace("urn:kiln:test:truth")
    oven = await server.nodes.objects.add_object(ua.NodeId("Oven", ns), "Oven")
    temp = await oven.add_variable(ua.NodeId("Oven.Temp", ns), "Temp", 180.5)
    await temp.write_attribute(
        ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText("chamber")))
    )
    # Part 8, 5.6.2: a numeric node's unit is its EngineeringUnits property, an EUInformation.
    unit = ua.EUInformation(
        NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
        UnitId=4408652,  # CEL, degree Celsius
        DisplayName=ua.LocalizedText("°C"),
        Description=ua.LocalizedText("degree Celsius"),
    )
    await temp.add_property(ua.NodeId("Oven.Temp.EngineeringUnits", ns), "EngineeringUnits", unit)
    await oven.add_variable(ua.NodeId("Oven.Door", ns), "Door", False)
    probe = await oven.add_variable(ua.NodeId("Oven.Probe", ns), "Probe", 0.0)
    await server.start()
    # A probe that fails: its value is Bad with the device's own reason (a StatusCode).
    await server.write_attribute_value(
        probe.nodeid,
        ua.DataValue(
            ua.Variant(None, ua.VariantType.Null), ua.StatusCode(ua.StatusCodes.BadSensorFailure)
        ),
    )
    return server, ns


def opcua(port: int, ns: int) -> OpcUaConfig:
    return OpcUaConfig.model_validate({
        "name": "oven3", "endpoint": f"opc.tcp://127.0.0.1:{port}/", "security_policy": "None",
        "allow_insecure": True, "publishing_interval_ms": 50, "sampling_interval_ms": 0,
        "reconnect": FAST, "request_timeout_s": 1,
        "nodes": [
            {"node_id": f"ns={ns};s=Oven.Temp", "path": f"{OVEN}/temp"},
            {"node_id": f"ns={ns};s=Oven.Door", "path": f"{OVEN}/door"},
            {"node_id": f"ns={ns};s=Oven.Probe", "path": f"{OVEN}/probe"},
        ],
    })  # fmt: skip


async def test_opcua_node_attributes_in_the_model_a_bad_node_and_a_restart_bad(
    tmp_path: Path,
) -> None:
    port = free_port()
    server, ns = await opcua_server(port)
    try:
        async with running(tmp_path, opcua(port, ns)) as platform:
            temp = await until_latest(platform, f"{OVEN}/temp", lambda v: v.quality == 0)
            assert temp.value == 180.5
            probe = await until_latest(
                platform, f"{OVEN}/probe", lambda v: v.quality == Quality.BAD_SENSOR_FAILURE
            )
            assert probe.value == 0.0
            assert f"{OVEN}/probe" in problem(platform, "oven3")
            tag = model_tag(platform, f"{OVEN}/temp")
            assert (tag.data_type, tag.unit, tag.description) == (TagType.FLOAT, "°C", "chamber")
            assert model_tag(platform, f"{OVEN}/door").data_type is TagType.BOOL
    finally:
        await server.stop()

    started = now_us()
    async with running(tmp_path, opcua(port, ns)) as platform:
        for name in ("temp", "door"):
            value = await after_restart(platform, f"{OVEN}/{name}", started)
            assert value.quality in DOWN


# -- plain MQTT -------------------------------------------------------------------------------


def mqtt(url: str, topic: str) -> MqttConfig:
    return MqttConfig.model_validate({
        "name": "sensors", "reconnect": FAST,
        "broker": {"url": url, "client_id": f"kiln-{uuid.uuid4().hex[:8]}",
                   "connect_timeout_s": 1},
        "mappings": [{"topic": f"{topic}/+/temp", "path": "acme/plant1/yard/{1}/temp",
                      "value": "$.t", "unit": "degC", "description": "ambient"}],
    })  # fmt: skip


async def test_mqtt_mapped_tags_in_the_model_and_a_restart_bad(tmp_path: Path) -> None:
    need_mosquitto()
    topic = f"kt{uuid.uuid4().hex[:10]}"
    path = "acme/plant1/yard/tank1/temp"
    async with running(tmp_path, mqtt("mqtt://127.0.0.1:1883", topic)) as platform:
        async with aiomqtt.Client("127.0.0.1", 1883) as sensor:
            deadline = time.monotonic() + 10
            while await latest(platform, path) is None and time.monotonic() < deadline:
                await sensor.publish(f"{topic}/tank1/temp", b'{"t": 21.5}', qos=1)
                await asyncio.sleep(0.1)
        assert (await until_latest(platform, path, lambda v: v.quality == 0)).value == 21.5
        tag = model_tag(platform, path)
        assert (tag.data_type, tag.unit, tag.description, tag.asset_path) == (
            TagType.FLOAT,
            "degC",
            "ambient",
            "acme/plant1/yard/tank1",
        )

    started = now_us()  # the broker is unreachable now: nothing listens on this port
    async with running(tmp_path, mqtt(f"mqtt://127.0.0.1:{free_port()}", topic)) as platform:
        value = await after_restart(platform, path, started)
        assert value.quality in DOWN


# -- Sparkplug B ------------------------------------------------------------------------------


def sparkplug(group: str) -> SparkplugConfig:
    return SparkplugConfig(
        name="edge", broker=BrokerSettings(url="mqtt://127.0.0.1:1883"),
        host_id=f"kiln-{uuid.uuid4().hex[:6]}", groups=[group], reconnect=FAST,
    )  # fmt: skip


def birth(ms: int, unit: str = "m/min") -> bytes:
    string = DataType.STRING
    return encode_payload(
        Payload(
            ms,
            (
                Metric(name=BDSEQ_METRIC, datatype=DataType.INT64, value=0),
                Metric(
                    name="line1/speed",
                    alias=1,
                    timestamp_ms=ms,
                    datatype=DataType.DOUBLE,
                    value=12.5,
                    properties={
                        "engUnit": Property(string, unit),
                        "Documentation": Property(string, "belt speed"),
                    },
                ),
                Metric(
                    name="line1/count", alias=2, timestamp_ms=ms, datatype=DataType.UINT32, value=7
                ),
            ),
            seq=0,
        )
    )


async def test_sparkplug_birth_describes_metrics_and_a_restart_reads_bad(tmp_path: Path) -> None:
    need_mosquitto()
    group = f"kt{uuid.uuid4().hex[:10]}"
    speed = f"{group}/conv1/line1/speed"
    async with running(tmp_path, sparkplug(group)) as platform:
        await asyncio.sleep(0.3)  # the host subscribes after its start
        async with aiomqtt.Client("127.0.0.1", 1883) as node:
            await node.publish(f"spBv1.0/{group}/NBIRTH/conv1", birth(now_us() // 1000))
            value = await until_latest(platform, speed, lambda v: v.quality == 0)
            assert value.value == 12.5
            tag = model_tag(platform, speed)
            assert (tag.data_type, tag.unit, tag.description) == (
                TagType.FLOAT,
                "m/min",
                "belt speed",
            )
            assert model_tag(platform, f"{group}/conv1/line1/count").data_type is TagType.INT
            # A rebirth that changes a metric's properties changes its tag.
            await node.publish(f"spBv1.0/{group}/NBIRTH/conv1", birth(now_us() // 1000, "m/s"))
            deadline = time.monotonic() + 10
            while model_tag(platform, speed).unit != "m/s" and time.monotonic() < deadline:  # noqa: ASYNC110 - the model writes in a thread
                await asyncio.sleep(0.05)
            assert model_tag(platform, speed).unit == "m/s"

    # Restarted while the edge node sends nothing: its metrics are known from the model and
    # read Bad, waiting for the next birth, not the previous run's Good.
    started = now_us()
    async with running(tmp_path, sparkplug(group)) as platform:
        value = await after_restart(platform, speed, started)
        assert value.quality == Quality.BAD_WAITING_FOR_INITIAL_DATA
