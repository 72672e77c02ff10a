"""The CNC machining centres as an OPC UA server (asyncua), as umati-style CNCs are.

Given a PKI directory, the server has a certificate of its own (generated there on first start,
with `client_certificates` for the connector that reads it) and offers only Basic256Sha256 and
Aes256_Sha256_RsaPss with SignAndEncrypt, as a plant's servers should; without one it offers
security policy None, for clients that cannot be given a certificate.

Every CNC tag is a variable with a string NodeId equal to its namespace path
(`ns=<sim>;s=acme/plant1/machining/line1/cell1/cnc1/spindle_speed`), in an object per machine;
each frame writes the values with the frame's source timestamp and its quality as the
StatusCode (Kiln's quality is the OPC UA StatusCode), so a subscription sees exactly what the
simulator made.

The server opens only once the first frame is in every variable. asyncua gives a new variable
its initial value stamped with the wall-clock time of its creation (SourceTimestamp "now"), so a
client that read the address space before the first frame used to get a 0 that the plant never
produced, stamped later than the first real values, and kept as the latest value (a CNC "off"
while spinning) until the tag changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server

from kiln.connectors.link import quiet_library_logger
from kiln.connectors.opcua.certificates import (
    default_application_uri,
    generate_application_certificate,
)
from kiln.core.platform import Platform
from kiln.model.definitions import DataType
from kiln.sim.factory import SimFrame

_LOGGER = logging.getLogger(__name__)
# asyncua warns that a server without certificates is insecure; the demo's loopback server is
# that on purpose, and the connector that reads it already says so, once.
quiet_library_logger("asyncua.server.server")
# Its other modules log every publish request and read at info: the simulator's noise, not news.
logging.getLogger("asyncua.server").setLevel(logging.WARNING)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NAMESPACE_URI = "urn:kiln:sim"
SERVER_URI = "urn:kiln:sim:opcua-server"


@dataclass(frozen=True, slots=True)
class SimPki:
    """Where the simulated server's certificate and the reading connector's live."""

    directory: Path

    @property
    def server_certificate(self) -> Path:
        return self.directory / "sim-server.der"

    @property
    def server_key(self) -> Path:
        return self.directory / "sim-server.pem"

    @property
    def client_certificate(self) -> Path:
        return self.directory / "kiln-client.der"

    @property
    def client_key(self) -> Path:
        return self.directory / "kiln-client.pem"

    def ensure_server_certificate(self, host: str) -> None:
        if not self.server_certificate.is_file() or not self.server_key.is_file():
            generate_application_certificate(
                self.server_certificate,
                self.server_key,
                application_uri=SERVER_URI,
                now=datetime.now(UTC),
                hosts=[host, "localhost"],
                server=True,
            )

    def ensure_client_certificate(self) -> None:
        """The reading connector's pair, made here rather than by the connector: the demo needs
        no one to trust it (the simulated server accepts any client), so the connector's
        "a server must trust this new certificate" warning would ask for an action there is
        none to take."""
        if not self.client_certificate.is_file() and not self.client_key.is_file():
            generate_application_certificate(
                self.client_certificate,
                self.client_key,
                application_uri=default_application_uri(),
                now=datetime.now(UTC),
            )


_VARIANTS = {
    DataType.FLOAT: ua.VariantType.Double,
    DataType.INT: ua.VariantType.Int64,
    DataType.STATE: ua.VariantType.Int32,
    DataType.BOOL: ua.VariantType.Boolean,
    DataType.STRING: ua.VariantType.String,
}


def variant_of(data_type: DataType) -> ua.VariantType:
    return _VARIANTS[data_type]


class OpcUaSink:
    """An asyncua server over the machines in `points` (path -> Kiln data type)."""

    name = "opcua"

    def __init__(
        self, points: dict[str, DataType], host: str, port: int, pki: SimPki | None = None
    ) -> None:
        self.points = points
        self.pki = pki
        self.host = host
        self.port = port
        self.endpoint = f"opc.tcp://{host}:{port}/kiln-sim"
        # The simulator's namespace is the first one registered: index 2 (0 and 1 are the
        # OPC UA and server namespaces), so node ids are known before the server starts.
        self.ns = 2
        self._server: Server | None = None
        self._nodes: list[tuple[int, ua.NodeId, ua.VariantType]] | None = None
        self._by_path: dict[str, Node] = {}

    def paths(self) -> frozenset[str]:
        return frozenset(self.points)

    def node_id(self, path: str) -> str:
        return f"ns={self.ns};s={path}"

    async def start(self, platform: Platform, first: SimFrame) -> None:
        server = Server()
        server.disable_clock()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("Kiln virtual factory (CNCs)")
        if self.pki is None:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        else:
            self.pki.ensure_server_certificate(self.host)
            self.pki.ensure_client_certificate()
            await server.set_application_uri(SERVER_URI)
            await server.load_certificate(str(self.pki.server_certificate))
            await server.load_private_key(str(self.pki.server_key))
            server.set_security_policy(
                [
                    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                    ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
                ]
            )
        ns = await server.register_namespace(NAMESPACE_URI)
        if ns != self.ns:
            raise RuntimeError(f"the simulator's namespace got index {ns}, not {self.ns}")
        machines: dict[str, Node] = {}
        for path, data_type in self.points.items():
            asset, tag = path.rsplit("/", 1)
            machine = machines.get(asset)
            if machine is None:
                machine = machines[asset] = await server.nodes.objects.add_object(
                    ua.NodeId(ua.String(asset), ua.Int16(self.ns)), asset.rsplit("/", 1)[-1]
                )
            vtype = variant_of(data_type)
            # The placeholder value is never served: write(first) replaces it before start.
            self._by_path[path] = await machine.add_variable(
                ua.NodeId(ua.String(path), ua.Int16(self.ns)), tag, _placeholder(vtype), vtype
            )
        # Every variable holds the first frame, with its time, before a client can connect.
        await self._put(server, first)
        await server.start()
        self._server = server
        _LOGGER.debug(
            "Simulated OPC UA server at %s: %d variables on %d machines",
            self.endpoint, len(self.points), len(machines),
        )  # fmt: skip

    async def write(self, frame: SimFrame) -> None:
        if self._server is not None:
            await self._put(self._server, frame)

    async def _put(self, server: Server, frame: SimFrame) -> None:
        if self._nodes is None:
            where = {p: i for i, p in enumerate(frame.paths)}
            self._nodes = [
                (where[p], node.nodeid, variant_of(self.points[p]))
                for p, node in self._by_path.items()
            ]
        # asyncua types timestamps as its DateTime, a datetime subclass it never requires.
        # Exact to the microsecond (a float of seconds since 1970 is not, at today's dates).
        when = cast("ua.DateTime", _EPOCH + timedelta(microseconds=frame.time_us))
        values, qualities = frame.values, frame.qualities
        for i, node_id, vtype in self._nodes:
            dv = ua.DataValue(
                ua.Variant(values[i], vtype),
                ua.StatusCode(ua.UInt32(qualities[i])),
                SourceTimestamp=when,
                ServerTimestamp=when,
            )
            await server.write_attribute_value(node_id, dv)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()


def _placeholder(vtype: ua.VariantType) -> Any:
    return {
        ua.VariantType.Boolean: False,
        ua.VariantType.String: "",
        ua.VariantType.Double: 0.0,
    }.get(vtype, 0)
