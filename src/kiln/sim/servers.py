"""The virtual factory's machines as real protocol servers, and the connector configurations
that read them (so the values take the real path into Kiln)."""

from __future__ import annotations

import secrets
import socket

from kiln.connectors.base import ConnectorConfig
from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.sim.factory import VirtualFactory
from kiln.sim.opcua_server import OpcUaSink, SimPki
from kiln.sim.protocols import (
    modbus_config,
    modbus_points,
    opcua_config,
    opcua_points,
    sparkplug_config,
    sparkplug_paths,
)
from kiln.sim.settings import SimServeSettings
from kiln.sim.sinks import FrameSink, ModbusSink, SparkplugSink
from kiln.sim.spec import FactorySpec


def simulated_servers(
    spec: FactorySpec, serve: SimServeSettings
) -> tuple[list[FrameSink], list[ConnectorConfig]]:
    """The protocol servers the virtual factory's machines are, and (unless told not to) the
    connector configurations that read them, so the values take the real path into Kiln."""
    factory = VirtualFactory(spec, 0)
    interval_ms = max(10, round(1000 / spec.rate_hz))
    sinks: list[FrameSink] = []
    configs: list[ConnectorConfig] = []
    if serve.modbus_port is not None:
        points = modbus_points(factory)
        sink = ModbusSink(points, serve.host, serve.modbus_port or _free_port(serve.host))
        sinks.append(sink)
        configs.append(modbus_config(points, serve.host, sink.port, interval_ms=interval_ms))
    if serve.opcua_port is not None:
        variables = opcua_points(factory)
        pki = SimPki(serve.opcua_pki) if serve.opcua_pki is not None else None
        port = serve.opcua_port or _free_port(serve.host)
        opcua = OpcUaSink(variables, serve.host, port, pki)
        sinks.append(opcua)
        node_ids = {path: opcua.node_id(path) for path in variables}
        configs.append(opcua_config(node_ids, opcua.endpoint, interval_ms=interval_ms, pki=pki))
    if serve.mqtt_url is not None:
        broker = BrokerSettings(url=serve.mqtt_url)
        # A group of its own per run: two demos on one broker do not see each other's plant.
        group = f"kiln-sim-{secrets.token_hex(3)}"
        prefix = f"{spec.enterprise}/{spec.site}"
        sinks.append(SparkplugSink(sparkplug_paths(factory), prefix, broker, group, "edge1"))
        configs.append(sparkplug_config(broker, group, prefix))
    return sinks, configs if serve.connect else []


def _free_port(host: str) -> int:
    """A port the OS says is free on `host` (port 0 in the configuration: "any free port")."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port
