"""The plain MQTT connector in the plant YAML: its broker, QoS and topic mappings."""

from __future__ import annotations

from pydantic import Field

from kiln.connectors.base import ConnectorConfig
from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.connectors.mqtt.codec import TopicMapping


class MqttConfig(ConnectorConfig):
    type: str = "mqtt"
    broker: BrokerSettings
    qos: int = Field(default=1, ge=0, le=2, description="subscription QoS")
    mappings: list[TopicMapping] = Field(min_length=1, description="topics and their values")

    @property
    def peer(self) -> str:
        return self.broker.peer
