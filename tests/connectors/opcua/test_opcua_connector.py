"""The OPC UA connector against a real asyncua server on loopback: values with their source
timestamps and StatusCodes, deadband, write-back, malformed input, and a server restart."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asyncua import ua
from opcua_plant import PlantServer, insecure, until, values

from kiln.connectors.base import ConnectorState, SourceLost
from kiln.connectors.opcua.connector import _Inbox
from kiln.connectors.service import NotWritable
from kiln.core.quality import Quality
from kiln.core.values import ValueBatch

P = "acme/plant1/line1"
T1 = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
T1_US = 1_772_353_815_123_456


def nodes(plant: PlantServer, *names: str, **options: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"node_id": plant.node_id(n), "path": f"{P}/{n.lower()}", **options.get(n, {})}
        for n in names
    ]


async def test_values_flow_with_source_timestamps_and_quality(
    servers: Any, platform_with: Any
) -> None:
    plant = await servers()
    mapping = nodes(plant, "Temp", "Count", "Running", "Recipe", "Started", "Label", "Blob", "Any")
    mapping.append({"node_id": "ns=2;s=Line1.Missing", "path": f"{P}/missing"})
    service, sub = await platform_with(insecure(plant, mapping))
    runner = service.runner("line1")

    # Read at connect: every node Kiln can carry, at once, Good.
    first = {v.path: (v.value, v.quality) for v in await values(sub, 7)}
    assert first == {
        f"{P}/temp": (20.0, Quality.GOOD),
        f"{P}/count": (7, Quality.GOOD),
        f"{P}/running": (True, Quality.GOOD),
        f"{P}/recipe": ("A-100", Quality.GOOD),
        f"{P}/started": ("2026-01-01T06:00:00.000000+00:00", Quality.GOOD),
        f"{P}/label": ("Oven 3", Quality.GOOD),
        f"{P}/any": (1.0, Quality.GOOD),
    }
    # The ByteString and the node the server does not have are counted, not fatal.
    assert runner.link.stats.malformed == 2
    assert "BadNodeIdUnknown" in service.health().detail["line1"]["last_problem"]
    assert runner.state is ConnectorState.CONNECTED

    # A change carries the device's source timestamp; the subscription's initial report of
    # the values already read is not published a second time.
    await plant.set("Temp", 21.5, source=T1)
    (change,) = await values(sub, 1)
    assert (change.path, change.value, change.source_us, change.quality) == (
        f"{P}/temp", 21.5, T1_US, Quality.GOOD
    )  # fmt: skip
    assert change.receive_us is not None and change.receive_us >= T1_US

    # A Bad status from the server is the value's quality, unchanged. With Bad the server
    # sends no value (Part 4, 7.11), so it goes out with the last value known.
    await plant.set("Temp", 21.6, status=ua.StatusCodes.BadSensorFailure, source=T1)
    (bad,) = await values(sub, 1)
    assert (bad.value, bad.quality) == (21.5, Quality.BAD_SENSOR_FAILURE)
    await plant.set("Temp", 22.0, status=ua.StatusCodes.UncertainLastUsableValue)
    (uncertain,) = await values(sub, 1)
    assert (uncertain.value, uncertain.quality) == (22.0, Quality.UNCERTAIN_LAST_USABLE_VALUE)

    # A value changing to a type Kiln cannot carry is dropped and counted, never a crash.
    await plant.server.write_attribute_value(  # an array where a scalar was
        plant.nodes["Count"].nodeid, ua.DataValue(ua.Variant([1, 2], ua.VariantType.UInt32))
    )
    await plant.set("Count", 8)
    (count,) = await values(sub, 1)
    assert (count.path, count.value) == (f"{P}/count", 8)
    assert runner.link.stats.malformed == 3
    assert runner.state is ConnectorState.CONNECTED


async def test_many_changes_arrive_as_one_batch_per_publish(
    servers: Any, platform_with: Any
) -> None:
    plant = await servers()
    service, sub = await platform_with(
        insecure(plant, nodes(plant, "Temp", "Count", "Setpoint"), publishing_interval_ms=200)
    )
    await values(sub, 3)
    for k in range(5):  # within one publishing interval: queued on the server, sent together
        await plant.set("Temp", 30.0 + k)
        await plant.set("Count", 100 + k)
        await plant.set("Setpoint", 10 + k)
    batches = []
    async with asyncio.timeout(10):
        while sum(len(b) for b in batches) < 15:
            batches.append(await sub.get())
    # One bus batch per PublishResponse (two if the writes straddled a publishing tick).
    assert len(batches) <= 2
    got = [v for b in batches for v in b]
    assert [v.value for v in got if v.path == f"{P}/temp"] == [30.0, 31.0, 32.0, 33.0, 34.0]
    assert [v.value for v in got if v.path == f"{P}/count"] == [100, 101, 102, 103, 104]
    assert service.runner("line1").link.stats.values == 18


async def test_deadband_suppresses_small_changes(servers: Any, platform_with: Any) -> None:
    plant = await servers()
    config = insecure(
        plant,
        nodes(plant, "Temp", "Setpoint", "Recipe", Setpoint={"deadband": {"type": "none"}}),
        deadband={"type": "absolute", "value": 0.5},
    )
    _, sub = await platform_with(config)
    await values(sub, 3)
    for temp in (20.2, 20.4, 21.0, 21.3):  # 0.2, 0.2, 0.6, 0.3 apart: only 21.0 passes
        await plant.set("Temp", temp)
    await plant.set("Setpoint", 51)  # {type: none}: this node is not filtered
    await plant.set("Recipe", "A-101")  # the default deadband never applies to a text
    await plant.set("Recipe", "END")
    got: list[Any] = []
    while not any(v.value == "END" for v in got):
        got += await values(sub, 1)
    assert [(v.path.rsplit("/", 1)[1], v.value) for v in got] == [
        ("temp", 21.0),
        ("setpoint", 51),
        ("recipe", "A-101"),
        ("recipe", "END"),
    ]


async def test_write_back(servers: Any, platform_with: Any) -> None:
    plant = await servers()
    writable = {"writable": True}
    config = insecure(
        plant,
        nodes(
            plant,
            "Temp", "Setpoint", "Recipe", "Started", "Locked", "Count",
            Temp=writable, Setpoint=writable, Recipe=writable, Started=writable, Locked=writable,
        ),
    )  # fmt: skip
    service, sub = await platform_with(config)
    await values(sub, 6)

    assert await service.write(f"{P}/temp", 22.5) == "line1"
    assert await plant.read("Temp") == 22.5
    (echo,) = await values(sub, 1)  # the subscription reports the written value
    assert (echo.path, echo.value, echo.quality) == (f"{P}/temp", 22.5, Quality.GOOD)

    await service.write(f"{P}/setpoint", 42.0)  # a whole float for an Int16 node
    assert await plant.read("Setpoint") == 42
    await service.write(f"{P}/recipe", "B-7")
    assert await plant.read("Recipe") == "B-7"
    await service.write(f"{P}/started", "2026-02-01T07:00:00+01:00")
    assert await plant.read("Started") == datetime(2026, 2, 1, 6, 0, tzinfo=UTC)

    with pytest.raises(ValueError, match=r"outside the range of Int16 \(-32768\.\.32767\)"):
        await service.write(f"{P}/setpoint", 70_000)
    with pytest.raises(ValueError, match=r"cannot write acme/plant1/line1/recipe .*not a text"):
        await service.write(f"{P}/recipe", 5)
    with pytest.raises(ValueError, match="no time zone"):
        await service.write(f"{P}/started", "2026-02-01T07:00:00")
    with pytest.raises(
        ValueError, match=r"the server refused the write to .*/locked.*BadUserAccessDenied"
    ):
        await service.write(f"{P}/locked", 2.0)
    with pytest.raises(LookupError, match=r"is not writable: set writable: true on node"):
        await service.write(f"{P}/count", 9)
    with pytest.raises(NotWritable):
        await service.write("acme/plant1/line2/temp", 1.0)
    assert await plant.read("Setpoint") == 42 and await plant.read("Locked") == 1.5


async def test_server_restart_goes_bad_then_reconnects_and_resubscribes(
    servers: Any, platform_with: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    plant = await servers()
    service, sub = await platform_with(insecure(plant, nodes(plant, "Temp", "Recipe")))
    runner = service.runner("line1")
    assert {v.value for v in await values(sub, 2)} == {20.0, "A-100"}

    await plant.server.stop()
    bad = await values(sub, 2)
    assert {(v.path, v.value, v.quality) for v in bad} == {
        (f"{P}/temp", 20.0, Quality.BAD_NOT_CONNECTED),
        (f"{P}/recipe", "A-100", Quality.BAD_NOT_CONNECTED),
    }
    # ERROR, or already CONNECTING again on the first retry (0.1 s later): either way out.
    assert runner.state in (ConnectorState.ERROR, ConnectorState.CONNECTING)
    assert "lost" in runner.outage.reason
    await until(lambda: runner.outage is not None and runner.outage.attempts >= 3)

    # A new server process on the same port, same address space, fresh values.
    restarted = await servers(plant.port)
    await until(lambda: runner.state is ConnectorState.CONNECTED)
    assert {(v.value, v.quality) for v in await values(sub, 2)} == {
        (20.0, Quality.GOOD),
        ("A-100", Quality.GOOD),
    }
    # Subscribed again: a change on the new server flows.
    await restarted.set("Temp", 25.0, source=T1 + timedelta(seconds=1))
    (good,) = await values(sub, 1)
    assert (good.value, good.quality, good.source_us) == (25.0, Quality.GOOD, T1_US + 1_000_000)
    assert runner.link.stats.reconnects == 1

    lost = [r for r in caplog.records if "lost its source" in r.getMessage()]
    recovered = [r for r in caplog.records if "recovered after" in r.getMessage()]
    assert len(lost) == 1 and len(recovered) == 1
    # The client library's own complaints about the lost connection stay at debug; what is
    # left at warning is the outage (once) and the insecure policy this test asked for.
    client_side = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and not r.name.startswith("asyncua.server")
    ]
    assert client_side == [
        "Connector line1 uses OPC UA security policy None (allow_insecure): values, writes "
        "and passwords travel unsigned and unencrypted",
        lost[0].getMessage(),
    ]


async def test_the_inbox_blocks_when_full_and_ends_after_draining() -> None:
    batch = ValueBatch([f"{P}/temp"], [1.0], [T1_US], [Quality.GOOD], T1_US)
    inbox = _Inbox(2)
    await inbox.put(batch)
    await inbox.put(batch)
    blocked = asyncio.ensure_future(inbox.put(batch))  # the publish loop, waiting for room
    await asyncio.sleep(0)
    assert not blocked.done()
    assert await inbox.get(1) is batch
    await asyncio.wait_for(blocked, 1)
    inbox.fail(SourceLost("connection lost"))
    inbox.fail(SourceLost("later reasons are ignored"))
    assert [await inbox.get(1), await inbox.get(1)] == [batch, batch]  # received: delivered
    with pytest.raises(SourceLost, match=r"^connection lost$"):
        await inbox.get(1)
    with pytest.raises(SourceLost, match=r"no publish response \(not even a keep-alive\)"):
        await _Inbox(2).get(0.05)  # a subscription that died without a word
