"""OPC UA client: subscriptions reported by exception into the namespace, secure by default.

`config` is the plant YAML, `codec` the pure value and NodeId mapping, `variants` its asyncua
objects, `certificates` Kiln's own certificate and the trust list, `client` the secure connect,
`connector` the subscription and write-back, `browse` proposes tag mappings from a server's
address space. asyncua loads with `variants`, `client` and `connector`, only once a connector
is created.
"""

from kiln.connectors.base import Connector, ConnectorKind, ConnectorType
from kiln.connectors.opcua.config import OpcUaConfig


def _create(config: OpcUaConfig) -> Connector:
    from kiln.connectors.opcua.connector import OpcUaConnector

    return OpcUaConnector(config)


CONNECTOR = ConnectorType(
    name="opcua",
    kind=ConnectorKind.PUSHED,
    config_model=OpcUaConfig,
    create=_create,
    description="OPC UA client: subscriptions with deadband, secure channel, write-back",
    requirements=("asyncua",),
)

__all__ = ["CONNECTOR"]
