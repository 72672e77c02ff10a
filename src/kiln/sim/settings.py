"""The virtual factory's settings sections: `sim:` is its `FactorySpec` (kiln.sim.spec);
`sim_serve:` says which of its machines are served over which protocol."""

from __future__ import annotations

from pydantic import Field

from kiln.core.config import MadeDir
from kiln.core.settings import Section


class SimServeSettings(Section):
    """The virtual factory's machines as real protocol servers, read through the connectors."""

    host: str = Field(default="127.0.0.1", description="address the simulated servers bind")
    modbus_port: int | None = Field(
        default=None, ge=0, le=65535, description="serve the fillers over Modbus TCP here"
    )
    opcua_port: int | None = Field(
        default=None, ge=0, le=65535, description="serve the CNCs over OPC UA here"
    )
    opcua_pki: MadeDir | None = Field(
        default=None,
        description="certificates of the simulated OPC UA server and of the connector that "
        "reads it (generated on first start): with it, Basic256Sha256 SignAndEncrypt; "
        "without, security policy None",
    )
    mqtt_url: str | None = Field(
        default=None, description="publish the conveyors as a Sparkplug B edge node to this broker"
    )
    connect: bool = Field(
        default=True, description="read them through Kiln's own connectors (the real path)"
    )
