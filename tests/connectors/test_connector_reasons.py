"""Outage reasons a person can act on: the endpoint and the underlying error, against real
peers that refuse or go away; never the text of an exception group."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kiln.connectors.base import ConnectorState, SourceLost
from kiln.connectors.modbus.codec import Table
from kiln.connectors.reasons import describe_failure
from kiln.connectors.registry import connector_types
from kiln.connectors.service import Connectors
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage
from kiln.sim.modbus import RegisterImage, modbus_server
from kiln.testing.server import free_port

FAST = {"initial_s": 0.05, "max_s": 0.2, "jitter": False}


def modbus(port: int) -> dict[str, Any]:
    return {
        "name": "press", "type": "modbus", "host": "127.0.0.1", "port": port, "timeout_s": 0.5,
        "reconnect": FAST,
        "devices": [{"unit": 1, "prefix": "acme/p1/press", "poll_groups": [
            {"interval_ms": 20, "tags": [{"name": "a", "address": 0}]},
            {"interval_ms": 30, "tags": [{"name": "b", "address": 1}]},
        ]}],
    }  # fmt: skip


def opcua(port: int) -> dict[str, Any]:
    return {
        "name": "cnc", "type": "opcua", "endpoint": f"opc.tcp://127.0.0.1:{port}",
        "allow_insecure": True, "security_policy": "None", "reconnect": FAST,
        "nodes": [{"node_id": "ns=2;s=X", "path": "acme/p1/cnc/x"}],
    }  # fmt: skip


def mqtt(port: int) -> dict[str, Any]:
    return {
        "name": "telemetry", "type": "mqtt", "reconnect": FAST,
        "broker": {"url": f"mqtt://kiln:secret@127.0.0.1:{port}"},
        "mappings": [{"topic": "t", "path": "acme/p1/t", "value": "$"}],
    }  # fmt: skip


def sparkplug(port: int) -> dict[str, Any]:
    return {
        "name": "edge", "type": "sparkplug", "reconnect": FAST,
        "broker": {"url": f"mqtt://127.0.0.1:{port}"},
    }  # fmt: skip


def build(entry: dict[str, Any]) -> Connectors:
    kind = connector_types()[entry["type"]]
    return Connectors([kind.config_model.model_validate(entry)])


async def outage_reason(tmp_path: Path, service: Connectors) -> str:
    platform = Platform(clock=SystemClock(), data_dir=tmp_path)
    platform.add(service, Stage.SOURCES)
    async with platform:
        runner = service.runners[0]
        async with asyncio.timeout(10):
            while runner.outage is None:  # noqa: ASYNC110 - real sockets, no event to await
                await asyncio.sleep(0.02)
        detail = service.health().detail[runner.name]
        assert isinstance(detail, dict)
        assert detail["state"] == ConnectorState.ERROR.value
        reason = detail["reason"]
        assert isinstance(reason, str)
        return reason


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (modbus, "no Modbus TCP server at 127.0.0.1:{port}"),
        (opcua, "opc.tcp://127.0.0.1:{port}: Connection refused"),
        (mqtt, "mqtt://127.0.0.1:{port}: Connection refused"),
        (sparkplug, "mqtt://127.0.0.1:{port}: Connection refused"),
    ],
    ids=["modbus", "opcua", "mqtt", "sparkplug"],
)
async def test_a_refused_connection_names_the_endpoint(
    tmp_path: Path, entry: Any, expected: str
) -> None:
    port = free_port()  # nothing listens there
    reason = await outage_reason(tmp_path, build(entry(port)))
    assert reason == expected.format(port=port)
    assert "secret" not in reason  # the broker URL's credentials are never shown


async def test_a_lost_modbus_server_reads_as_the_endpoint_and_its_error(tmp_path: Path) -> None:
    port = free_port()
    image = RegisterImage()
    image.define(1, Table.HOLDING_REGISTER, 0, 10)
    server = modbus_server(image, "127.0.0.1", port)
    serving = asyncio.create_task(server.serve_forever())
    service = build(modbus(port))
    platform = Platform(clock=SystemClock(), data_dir=tmp_path)
    platform.add(service, Stage.SOURCES)
    try:
        async with platform:
            runner = service.runners[0]
            async with asyncio.timeout(10):
                while runner.state is not ConnectorState.CONNECTED:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                # Both poll groups lose their connection at once.
                await server.shutdown()  # type: ignore[no-untyped-call]
                while runner.outage is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            reason = runner.outage.reason
    finally:
        await asyncio.wait({serving}, timeout=5)
    assert reason.startswith(f"127.0.0.1:{port}: connection lost")
    assert "TaskGroup" not in reason and "ExceptionGroup" not in reason
    assert "sub-exception" not in reason


def test_exception_groups_open_to_their_distinct_leaves() -> None:
    lost = SourceLost("connection lost: reset by peer")
    group = ExceptionGroup("unhandled errors in a TaskGroup", [
        lost, ExceptionGroup("inner", [SourceLost("connection lost: reset by peer"),
                                       TimeoutError()]),
    ])  # fmt: skip
    assert describe_failure(group, "10.0.0.7:502") == (
        "10.0.0.7:502: connection lost: reset by peer; no answer in time"
    )
    assert describe_failure(ValueError("bad frame"), None) == "ValueError: bad frame"
    assert describe_failure(RuntimeError(), "opc.tcp://h:4840") == "opc.tcp://h:4840: RuntimeError"
    many = ExceptionGroup("g", [SourceLost(f"unit {u} gone") for u in range(5)])
    assert describe_failure(many) == "unit 0 gone; unit 1 gone; unit 2 gone (and 2 more)"
