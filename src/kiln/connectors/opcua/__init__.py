"""OPC UA client: subscriptions reported by exception into the namespace, secure by default.

`config` is the plant YAML, `codec` the pure value and NodeId mapping, `certificates` Kiln's
own certificate and the trust list, `client` the secure connect, `connector` the subscription
and write-back, `browse` proposes tag mappings from a server's address space.
"""

from kiln.connectors.base import ConnectorKind, ConnectorType
from kiln.connectors.opcua.config import OpcUaConfig, OpcUaConnection
from kiln.connectors.opcua.connector import OpcUaConnector

CONNECTOR = ConnectorType(
    name="opcua",
    kind=ConnectorKind.PUSHED,
    config_model=OpcUaConfig,
    create=OpcUaConnector,
    description="OPC UA client: subscriptions with deadband, secure channel, write-back",
    requirements=("asyncua",),
)

__all__ = ["CONNECTOR", "OpcUaConfig", "OpcUaConnection", "OpcUaConnector"]
