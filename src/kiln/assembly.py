"""Building a Platform from Settings: which services run, at which stage."""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass

from kiln.connectors.base import ConnectorConfig
from kiln.connectors.http.ingest import HttpIngest
from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.connectors.service import Connectors
from kiln.core.clock import Clock, SystemClock
from kiln.core.compression import CompressionSpec
from kiln.core.platform import Health, Platform, Stage, Status
from kiln.historian import Historian
from kiln.historian.compression import rules_resolver
from kiln.historian.retention import retention_resolver
from kiln.historian.thinning import Resolver
from kiln.historian.tiers import parse_widths
from kiln.model.definitions import AssetDef, AssetTypeDef, resolve_tags
from kiln.model.service import AssetModel
from kiln.security.audit.setup import audit_log_from
from kiln.security.passwords import PasswordHasherSettings
from kiln.security.service import Identity
from kiln.settings import Settings, SimServeSettings
from kiln.sim import FactorySpec, SimSource, VirtualFactory
from kiln.sim.opcua_server import OpcUaSink, SimPki
from kiln.sim.protocols import (
    modbus_config,
    modbus_points,
    opcua_config,
    opcua_points,
    sparkplug_config,
    sparkplug_paths,
)
from kiln.sim.sinks import FrameSink, ModbusSink, SparkplugSink


@dataclass(slots=True)
class Declarations:
    """Applies the configured (and simulated) asset types and assets once the model is up."""

    types: list[AssetTypeDef]
    assets: list[AssetDef]
    name: str = "declarations"
    applied: bool = False

    async def start(self, platform: Platform) -> None:
        await platform.service(AssetModel).apply(self.types, self.assets)
        self.applied = True

    async def stop(self) -> None:
        return None

    def health(self) -> Health:
        return Health(
            Status.OK if self.applied else Status.STARTING,
            {"types": len(self.types), "assets": len(self.assets)},
        )


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


def _compression(settings: Settings) -> Resolver | None:
    """Compression by path rules and by the tag definitions of the declared assets' types."""
    by_name = {t.name: t for t in settings.model.types}
    typed: dict[str, CompressionSpec] = {}
    for asset in settings.model.assets:
        if asset.type is not None and asset.type in by_name:
            for tag in resolve_tags(asset.type, by_name):
                if tag.compression is not None:
                    typed[f"{asset.path}/{tag.name}"] = tag.compression
    rules = settings.historian.compression
    return rules_resolver(rules, typed) if rules or typed else None


def build_platform(
    settings: Settings,
    *,
    clock: Clock | None = None,
    password_settings: PasswordHasherSettings | None = None,
) -> Platform:
    """`password_settings` lets tests use cheap hashing; production keeps argon2id's defaults."""
    clock = clock or SystemClock()
    platform = Platform(clock=clock, data_dir=settings.data_dir)
    sec = settings.security
    platform.add(
        Identity(
            settings.identity_url,
            data_dir=settings.data_dir,
            clock=clock,
            password_settings=password_settings,
            access_ttl_s=sec.access_ttl_s,
            refresh_ttl_s=sec.refresh_ttl_s,
            max_login_failures=sec.max_login_failures,
            lockout_s=sec.lockout_s,
        ),
        Stage.STORAGE,
    )
    platform.add(audit_log_from(settings), Stage.STORAGE)
    platform.add(
        AssetModel(settings.model_url, locked_prefixes=settings.namespace.locked), Stage.STORAGE
    )
    platform.add(
        Historian(
            settings.historian_path,
            url=settings.historian.url,
            partition_days=settings.historian.partition_days,
            max_batch_points=settings.historian.max_batch_points,
            queue_points=settings.historian.queue_points,
            compression=_compression(settings),
            retention=retention_resolver(settings.historian.retention)
            if settings.historian.retention
            else None,
            disk_limit_bytes=settings.historian.disk_limit_bytes,
            housekeeping_s=settings.historian.housekeeping_s,
            rollups=parse_widths(settings.historian.rollups),
            rollup_retention=retention_resolver(settings.historian.retention, rollups=True)
            if settings.historian.retention
            else None,
            rollup_s=settings.historian.rollup_s,
            max_future_s=settings.ingest.max_future_s,
        ),
        Stage.STORAGE,
    )
    types = list(settings.model.types)
    assets = list(settings.model.assets)
    if settings.sim is not None:
        # The factory's structure does not depend on its start time; 0 is as good as any here.
        factory = VirtualFactory(settings.sim, 0)
        types += factory.asset_types()
        assets += factory.assets()
    platform.add(Declarations(types, assets), Stage.ENGINES)
    platform.add(
        HttpIngest(
            ack_timeout_s=settings.ingest.ack_timeout_s,
            workers=settings.ingest.workers,
            max_items=settings.ingest.max_items,
            max_inflated_bytes=settings.ingest.max_inflated_bytes,
            max_future_s=settings.ingest.max_future_s,
        ),
        Stage.ENGINES,
    )
    connectors = list(settings.connectors)
    if settings.sim is not None:
        sinks, sim_connectors = simulated_servers(settings.sim, settings.sim_serve)
        platform.add(SimSource(settings.sim, sinks), Stage.SOURCES)
        connectors += sim_connectors
    if connectors:
        platform.add(Connectors(connectors), Stage.SOURCES)
    return platform
