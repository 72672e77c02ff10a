"""Reconnect delays: exponential backoff with jitter. Pure; the randomness is injected.

Jitter spreads the reconnects of many devices that lost the same network at once, so they do
not all hammer a recovering server together.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BackoffSettings(BaseModel):
    """How a connector waits between reconnect attempts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_s: float = Field(default=1.0, gt=0, le=3600, description="the first delay")
    max_s: float = Field(default=60.0, gt=0, le=86_400, description="the cap never exceeds this")
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    jitter: bool = Field(default=True, description="draw each delay in [cap/2, cap]")

    @model_validator(mode="after")
    def _ordered(self) -> BackoffSettings:
        if self.initial_s > self.max_s:
            raise ValueError(f"initial_s ({self.initial_s}) must not exceed max_s ({self.max_s})")
        return self


@dataclass(slots=True)
class Backoff:
    """The delay before each next attempt; `reset()` after a success.

    With jitter the delay is drawn from [cap/2, cap] ("equal jitter"): never near zero, so a
    server that refuses at once is not retried in a tight loop, yet spread enough.
    """

    settings: BackoffSettings
    rand: Callable[[], float] = field(default=random.random)
    attempt: int = 0

    def next_delay(self) -> float:
        s = self.settings
        cap = min(s.max_s, s.initial_s * s.multiplier**self.attempt)
        self.attempt += 1
        if not s.jitter:
            return cap
        return cap / 2 + self.rand() * cap / 2

    def reset(self) -> None:
        self.attempt = 0
