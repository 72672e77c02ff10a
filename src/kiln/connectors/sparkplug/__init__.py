"""Sparkplug B host application: the payload schema and codec (`codec`), topics (`topic`), the
pure session state machine (`session`), and the MQTT connector around it (`host`)."""

from kiln.connectors.base import ConnectorConfig, ConnectorKind, ConnectorType
from kiln.connectors.sparkplug.host import SparkplugConfig, SparkplugHost


def _create(config: ConnectorConfig) -> SparkplugHost:
    if not isinstance(config, SparkplugConfig):
        raise TypeError(f"expected SparkplugConfig, got {type(config).__name__}")
    return SparkplugHost(config)


CONNECTOR = ConnectorType(
    name="sparkplug",
    kind=ConnectorKind.PUSHED,
    config_model=SparkplugConfig,
    create=_create,
    description="Sparkplug B 3.0 host application over MQTT",
    requirements=("aiomqtt", "protobuf"),
)

__all__ = ["CONNECTOR", "SparkplugConfig", "SparkplugHost"]
