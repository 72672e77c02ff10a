"""Plain MQTT with JSON payloads: topic filters mapped into the namespace (`codec`), read by a
QoS 1 subscriber that reconnects and resubscribes (`connector`)."""

from kiln.connectors.base import ConnectorKind, ConnectorType
from kiln.connectors.mqtt.connector import MqttConfig, MqttConnector

CONNECTOR = ConnectorType(
    name="mqtt",
    kind=ConnectorKind.PUSHED,
    config_model=MqttConfig,
    create=MqttConnector,
    description="MQTT 3.1.1 subscriber, JSON payloads mapped by topic",
    requirements=("aiomqtt",),
)

__all__ = ["CONNECTOR", "MqttConfig", "MqttConnector"]
