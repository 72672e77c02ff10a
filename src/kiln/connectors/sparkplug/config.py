"""The Sparkplug B host application in the plant YAML: its broker, host id, groups, where
metrics go in the namespace, and the session's timers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kiln.connectors.base import ConnectorConfig
from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.core.values import validate_path


class SessionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reorder_timeout_ms: int = Field(default=2_000, ge=0, le=60_000)
    rebirth_resend_ms: int = Field(default=10_000, ge=100, le=600_000)


class SparkplugConfig(ConnectorConfig):
    type: str = "sparkplug"
    broker: BrokerSettings
    host_id: str = Field(
        default="kiln", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="the STATE topic's id"
    )
    groups: list[str] = Field(
        default_factory=lambda: ["+"], description="Sparkplug group ids to follow; + for all"
    )
    path: str = Field(
        default="{group}/{node}/{device}/{metric}",
        description="namespace path of a metric; {device}/ is left out for node metrics",
    )
    session: SessionSettings = SessionSettings()

    @property
    def peer(self) -> str:
        return self.broker.peer

    @field_validator("path")
    @classmethod
    def _template(cls, v: str) -> str:
        if "{metric}" not in v:
            raise ValueError("the path template must contain {metric}")
        validate_path(v.format(group="g", node="n", device="d", metric="m"))
        return v
