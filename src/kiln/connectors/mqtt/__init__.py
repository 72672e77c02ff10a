"""Plain MQTT with JSON payloads: topic filters mapped into the namespace (`codec`), read by a
QoS 1 subscriber that reconnects and resubscribes (`connector`)."""

from kiln.connectors.base import ConnectorConfig, ConnectorKind, ConnectorType
from kiln.connectors.mqtt.connector import MqttConfig, MqttConnector


def _create(config: ConnectorConfig) -> MqttConnector:
    if not isinstance(config, MqttConfig):
        raise TypeError(f"expected MqttConfig, got {type(config).__name__}")
    return MqttConnector(config)


CONNECTOR = ConnectorType(
    name="mqtt",
    kind=ConnectorKind.PUSHED,
    config_model=MqttConfig,
    create=_create,
    description="MQTT 3.1.1 subscriber, JSON payloads mapped by topic",
    requirements=("aiomqtt",),
)

__all__ = ["CONNECTOR", "MqttConfig", "MqttConnector"]
