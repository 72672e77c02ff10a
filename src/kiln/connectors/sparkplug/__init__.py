"""Sparkplug B host application: the payload schema and codec (`codec`), topics (`topic`), the
pure session state machine (`session`), the plant YAML (`config`), and the MQTT connector
around them (`connector`).

Only `connector` imports aiomqtt, and only when a connector is created."""

from kiln.connectors.base import Connector, ConnectorKind, ConnectorType
from kiln.connectors.sparkplug.config import SparkplugConfig


def _create(config: SparkplugConfig) -> Connector:
    from kiln.connectors.sparkplug.connector import SparkplugHost

    return SparkplugHost(config)


CONNECTOR = ConnectorType(
    name="sparkplug",
    kind=ConnectorKind.PUSHED,
    config_model=SparkplugConfig,
    create=_create,
    description="Sparkplug B 3.0 host application over MQTT",
    requirements=("aiomqtt", "protobuf"),
)

__all__ = ["CONNECTOR"]
