"""A service's health as the platform reports it (and the bus, which is not a service)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    STARTING = "starting"
    OK = "ok"
    DEGRADED = "degraded"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(slots=True)
class Health:
    status: Status
    detail: dict[str, Any] = field(default_factory=dict)
