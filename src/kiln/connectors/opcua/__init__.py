"""OPC UA client: subscriptions reported by exception into the namespace, secure by default.

`config` is the plant YAML, `codec` the pure value and NodeId mapping, `certificates` Kiln's
own certificate and the trust list, `client` the secure connect, `connector` the subscription
and write-back, `browse` proposes tag mappings from a server's address space.
"""

from kiln.connectors.base import ConnectorConfig, ConnectorKind, ConnectorType
from kiln.connectors.opcua.config import OpcUaConfig, OpcUaConnection
from kiln.connectors.opcua.connector import OpcUaConnector


def _create(config: ConnectorConfig) -> OpcUaConnector:
    if not isinstance(config, OpcUaConfig):
        raise TypeError(f"expected OpcUaConfig, got {type(config).__name__}")
    return OpcUaConnector(config)


CONNECTOR = ConnectorType(
    name="opcua",
    kind=ConnectorKind.PUSHED,
    config_model=OpcUaConfig,
    create=_create,
    description="OPC UA client: subscriptions with deadband, secure channel, write-back",
    requirements=("asyncua",),
)

__all__ = ["CONNECTOR", "OpcUaConfig", "OpcUaConnection", "OpcUaConnector"]
