"""Plain MQTT with JSON payloads: topic filters mapped into the namespace (`codec`), the plant
YAML (`config`), the broker connection shared with Sparkplug (`broker`), and a QoS 1
subscriber that reconnects and resubscribes (`connector`).

Only `connector` imports aiomqtt at module level, and only when a connector is created."""

from kiln.connectors.base import Connector, ConnectorKind, ConnectorType
from kiln.connectors.mqtt.config import MqttConfig


def _create(config: MqttConfig) -> Connector:
    from kiln.connectors.mqtt.connector import MqttConnector

    return MqttConnector(config)


CONNECTOR = ConnectorType(
    name="mqtt",
    kind=ConnectorKind.PUSHED,
    config_model=MqttConfig,
    create=_create,
    description="MQTT 3.1.1 subscriber, JSON payloads mapped by topic",
    requirements=("aiomqtt",),
)

__all__ = ["CONNECTOR"]
