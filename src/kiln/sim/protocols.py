"""Which machines of the virtual factory speak which protocol, and how their tags are laid out.

As in a real plant, the protocol follows the kind of machine: the CNC machining centres are
OPC UA servers (as umati CNCs are), the fillers are PLCs read over Modbus TCP (one unit id per
filler behind one gateway), and the conveyors report through a Sparkplug B edge node. The
layouts here are derived from the asset types alone, so the simulator that serves them and the
connector configuration that reads them always agree, and the namespace paths are exactly the
ones the in-process simulator publishes.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln.connectors.backoff import BackoffSettings
from kiln.connectors.modbus.codec import DataType as RegisterType
from kiln.connectors.modbus.codec import RegisterSpec, Table
from kiln.connectors.modbus.config import ModbusConfig, ModbusDevice, ModbusTag, PollGroup
from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.connectors.opcua.config import OpcUaConfig
from kiln.connectors.sparkplug.config import SparkplugConfig
from kiln.model.definitions import DataType, TagDef, resolve_tags
from kiln.sim import catalog
from kiln.sim.factory import VirtualFactory
from kiln.sim.opcua_server import SimPki

MODBUS_TYPES = frozenset({catalog.FILLER})
OPCUA_TYPES = frozenset({catalog.CNC})
SPARKPLUG_TYPES = frozenset({catalog.CONVEYOR})

# Reconnects on loopback: quick, a local server restarts in well under a second.
LOCAL_BACKOFF = BackoffSettings(initial_s=0.5, max_s=10.0)


@dataclass(frozen=True, slots=True)
class ModbusPoint:
    path: str
    unit: int
    name: str
    spec: RegisterSpec


def _register_type(tag: TagDef) -> tuple[Table, RegisterType]:
    match tag.data_type:
        case DataType.FLOAT:
            return Table.HOLDING_REGISTER, RegisterType.FLOAT32
        case DataType.INT:
            return Table.HOLDING_REGISTER, RegisterType.UINT32  # counters only grow
        case DataType.STATE:
            return Table.HOLDING_REGISTER, RegisterType.UINT16
        case DataType.BOOL:
            return Table.COIL, RegisterType.BOOL
        case _:
            raise ValueError(f"tag {tag.name}: no Modbus layout for {tag.data_type.value} tags")


def modbus_points(
    factory: VirtualFactory, types: frozenset[str] = MODBUS_TYPES
) -> list[ModbusPoint]:
    """Every Modbus tag: unit ids 1, 2, ... per machine, registers packed from address 0."""
    by_name = {t.name: t for t in factory.asset_types()}
    out: list[ModbusPoint] = []
    unit = 0
    for type_name in sorted(types):
        tags = resolve_tags(type_name, by_name)
        for asset in factory.asset_paths(type_name):
            unit += 1
            if unit > 247:  # 1..247 are the addressable unit ids (Modbus over serial lines)
                raise ValueError("more than 247 Modbus machines: split them over gateways")
            address = {Table.HOLDING_REGISTER: 0, Table.COIL: 0}
            for tag in tags:
                table, kind = _register_type(tag)
                spec = RegisterSpec(table, address[table], kind)
                address[table] += spec.width
                out.append(ModbusPoint(f"{asset}/{tag.name}", unit, tag.name, spec))
    return out


def modbus_config(
    points: list[ModbusPoint], host: str, port: int, *, interval_ms: int, name: str = "sim-modbus"
) -> ModbusConfig:
    """The connector configuration that reads `points` from the simulator's Modbus server."""
    devices: dict[int, tuple[str, list[ModbusTag]]] = {}
    for p in points:
        prefix = p.path.rsplit("/", 1)[0]
        _, tags = devices.setdefault(p.unit, (prefix, []))
        tags.append(
            ModbusTag(
                name=p.name,
                table=p.spec.table,
                address=p.spec.address,
                type=p.spec.data_type,
            )
        )
    return ModbusConfig(
        name=name,
        host=host,
        port=port,
        reconnect=LOCAL_BACKOFF,
        devices=[
            ModbusDevice(
                unit=unit,
                prefix=prefix,
                poll_groups=[PollGroup(interval_ms=interval_ms, tags=tags)],
            )
            for unit, (prefix, tags) in sorted(devices.items())
        ],
    )


def sparkplug_paths(factory: VirtualFactory, types: frozenset[str] = SPARKPLUG_TYPES) -> list[str]:
    """Every tag of the machines that report through the Sparkplug edge node."""
    assets = {a for t in sorted(types) for a in factory.asset_paths(t)}
    return [p for p in factory.paths() if p.rsplit("/", 1)[0] in assets]


def sparkplug_config(
    broker: BrokerSettings, group_id: str, prefix: str, *, name: str = "sim-sparkplug"
) -> SparkplugConfig:
    """The host connector configuration that reads the simulator's edge node."""
    return SparkplugConfig(
        name=name,
        broker=broker,
        host_id=f"kiln-{group_id}",
        groups=[group_id],
        path=prefix + "/{metric}",
        reconnect=LOCAL_BACKOFF,
    )


def opcua_points(
    factory: VirtualFactory, types: frozenset[str] = OPCUA_TYPES
) -> dict[str, DataType]:
    """Every OPC UA variable: path -> the Kiln data type of its tag."""
    by_name = {t.name: t for t in factory.asset_types()}
    out: dict[str, DataType] = {}
    for type_name in sorted(types):
        tags = resolve_tags(type_name, by_name)
        for asset in factory.asset_paths(type_name):
            out.update({f"{asset}/{tag.name}": tag.data_type for tag in tags})
    return out


def opcua_config(
    node_ids: dict[str, str],
    endpoint: str,
    *,
    interval_ms: int,
    pki: SimPki | None = None,
    name: str = "sim-opcua",
) -> OpcUaConfig:
    """The connector configuration that subscribes to the simulator's OPC UA server.

    With the simulator's PKI: Basic256Sha256 SignAndEncrypt, trusting exactly the simulated
    server's certificate, with the client certificate the simulated server generated beside it.
    Without: security policy None, explicitly allowed (a server without a certificate).
    """
    security: dict[str, object] = (
        {"allow_insecure": True, "security_policy": "None"}
        if pki is None
        else {
            "security_policy": "Basic256Sha256",
            "security_mode": "SignAndEncrypt",
            "certificate": str(pki.client_certificate),
            "private_key": str(pki.client_key),
            "trusted_server_certificates": [str(pki.server_certificate)],
        }
    )
    return OpcUaConfig.model_validate(
        {
            "name": name,
            "endpoint": endpoint,
            **security,
            # Twice the simulator's rate: every frame's changes arrive before the next frame.
            "publishing_interval_ms": max(50, interval_ms // 2),
            "sampling_interval_ms": max(50, interval_ms // 2),
            "reconnect": LOCAL_BACKOFF,
            "nodes": [{"node_id": nid, "path": path} for path, nid in node_ids.items()],
        }
    )
