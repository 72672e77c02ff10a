"""Sparkplug B host application: the payload schema and codec (`codec`), topics (`topic`), the
pure session state machine (`session`), and the MQTT connector around it (`host`)."""

from kiln.connectors.base import ConnectorKind, ConnectorType
from kiln.connectors.sparkplug.host import SparkplugConfig, SparkplugHost

CONNECTOR = ConnectorType(
    name="sparkplug",
    kind=ConnectorKind.PUSHED,
    config_model=SparkplugConfig,
    create=SparkplugHost,
    description="Sparkplug B 3.0 host application over MQTT",
    requirements=("aiomqtt", "protobuf"),
)

__all__ = ["CONNECTOR", "SparkplugConfig", "SparkplugHost"]
