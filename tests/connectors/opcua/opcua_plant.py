"""A small production line served by a real asyncua server on loopback, and helpers for the
OPC UA connector tests. Every server gets the same address space, so one stopped and started
again on the same port looks, to a client, like a real server restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.node import Node
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography.hazmat.primitives.serialization import Encoding

from kiln.connectors.backoff import BackoffSettings
from kiln.connectors.opcua.certificates import load_certificate
from kiln.connectors.opcua.config import OpcUaConfig
from kiln.core.bus import Subscription
from kiln.core.values import TagValue

NS_URI = "urn:kiln:test:line1"
FAST = BackoffSettings(initial_s=0.1, max_s=0.5, jitter=False)
STARTED = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
USERS = {"kiln": "s3cret-Pa55"}

# name: (value, variant type, writable on the server)
VARIABLES: dict[str, tuple[Any, ua.VariantType, bool]] = {
    "Temp": (20.0, ua.VariantType.Double, True),
    "Count": (7, ua.VariantType.UInt32, False),
    "Running": (True, ua.VariantType.Boolean, False),
    "Recipe": ("A-100", ua.VariantType.String, True),
    "Setpoint": (50, ua.VariantType.Int16, True),
    "Started": (STARTED, ua.VariantType.DateTime, True),
    "Label": (ua.LocalizedText("Oven 3", "en"), ua.VariantType.LocalizedText, False),
    "Blob": (b"\x00\x01", ua.VariantType.ByteString, False),
    "Locked": (1.5, ua.VariantType.Double, False),
}


async def until(predicate: Callable[[], bool], within_s: float = 10) -> None:
    """Poll a condition of real connections (no event to wait on), for up to `within_s`."""
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def values(sub: Subscription, n: int, within_s: float = 10) -> list[TagValue]:
    """The next `n` values from the bus (more if they came in the same batch)."""
    out: list[TagValue] = []
    async with asyncio.timeout(within_s):
        async for batch in sub:
            out.extend(batch)
            if len(out) >= n:
                return out
    return out


class _Users(UserManager):
    """The one user in USERS with the right password, users presenting one of the given
    certificates (DER), and anyone else anonymously. (asyncua passes the secure channel's
    client certificate as `certificate` for every identity, so it cannot tell an X.509 user
    from an anonymous one over a secure channel; it does verify the X.509 token's signature.)"""

    def __init__(self, certificates: set[bytes]) -> None:
        self.certificates = certificates
        self.granted: list[str] = []

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is not None:
            if USERS.get(username) != password:
                return None
            self.granted.append(f"user {username}")
        elif certificate in self.certificates:
            self.granted.append("certificate")
        else:
            self.granted.append("anonymous")
        return User(role=UserRole.User)


@dataclass
class PlantServer:
    """An asyncua server with a small production line in namespace NS_URI."""

    server: Server
    port: int
    ns: int
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/"

    def node_id(self, name: str) -> str:
        return f"ns={self.ns};s=Line1.{name}"

    async def set(
        self,
        name: str,
        value: Any,
        *,
        status: int = ua.StatusCodes.Good,
        source: datetime | None = None,
    ) -> None:
        """Change a value on the server as its device would: value, status, source time."""
        vtype = VARIABLES[name][1] if name in VARIABLES else ua.VariantType.Double
        dv = ua.DataValue(
            ua.Variant(value, vtype),
            ua.StatusCode(status),
            SourceTimestamp=source or datetime.now(UTC),
        )
        await self.server.write_attribute_value(self.nodes[name].nodeid, dv)

    async def read(self, name: str) -> Any:
        return await self.nodes[name].read_value()


async def start_server(
    port: int,
    *,
    certificate: Path | None = None,
    private_key: Path | None = None,
    users: bool = False,
    user_certificates: Sequence[Path] = (),
) -> PlantServer:
    """A server with the line's address space; with `certificate`, secure endpoints only
    (Basic256Sha256 and Aes256_Sha256_RsaPss, SignAndEncrypt); with `users`, user/password and
    certificate (of `user_certificates`) identities besides anonymous."""
    allowed = {load_certificate(p).public_bytes(Encoding.DER) for p in user_certificates}
    server = Server(user_manager=_Users(allowed) if users else None)
    server.disable_clock()  # its once-a-second task makes stop() wait a second
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
    server.set_server_name("Kiln test line")
    if certificate is not None and private_key is not None:
        await server.set_application_uri("urn:kiln:test:server")
        await server.load_certificate(certificate)
        await server.load_private_key(private_key)
        server.set_security_policy(
            [
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
            ]
        )
    else:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    if users:
        server.set_identity_tokens(
            [ua.AnonymousIdentityToken, ua.UserNameIdentityToken, ua.X509IdentityToken]
        )
    ns = await server.register_namespace(NS_URI)
    line = await server.nodes.objects.add_object(ua.NodeId("Line1", ns), "Line1")
    plant = PlantServer(server, port, ns)
    for name, (value, vtype, writable) in VARIABLES.items():
        node = await line.add_variable(ua.NodeId(f"Line1.{name}", ns), name, value, vtype)
        if writable:
            await node.set_writable()
        plant.nodes[name] = node
    plant.nodes["Any"] = await line.add_variable(  # BaseDataType: may hold any type
        ua.NodeId("Line1.Any", ns), "Any", 1.0, datatype=ua.NodeId(ua.ObjectIds.BaseDataType)
    )
    await plant.nodes["Temp"].add_property(
        ua.NodeId("Line1.Temp.EngineeringUnits", ns), "EngineeringUnits", "degC"
    )
    motor = await line.add_object(ua.NodeId("Line1.Motor", ns), "Motor")
    plant.nodes["Speed"] = await motor.add_variable(
        ua.NodeId("Line1.Motor.Speed", ns), "Speed (rpm)", 1500.0
    )
    plant.nodes["Temperatur"] = await motor.add_variable(
        ua.NodeId("Line1.Motor.Temperatur", ns), "Temperatur °C", 41.0
    )
    plant.nodes["Phases"] = await motor.add_variable(
        ua.NodeId("Line1.Motor.Phases", ns), "Phases", [230.0, 231.0, 229.5]
    )
    await server.start()
    return plant


@dataclass
class Certs:
    """Two server certificates and keys, generated once per test session."""

    server_cert: Path
    server_key: Path
    other_cert: Path  # a second server identity, never trusted
    other_key: Path


def insecure(plant: PlantServer, nodes: list[dict[str, Any]], **kwargs: Any) -> OpcUaConfig:
    """A connector config for a test server without security (allowed explicitly)."""
    fields: dict[str, Any] = {
        "name": "line1",
        "endpoint": plant.endpoint,
        "security_policy": "None",
        "allow_insecure": True,
        "publishing_interval_ms": 50,
        "sampling_interval_ms": 0,
        "reconnect": FAST,
        "nodes": nodes,
    }
    return OpcUaConfig.model_validate({**fields, **kwargs})
