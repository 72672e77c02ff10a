"""How a tag's values are compressed before they are stored: the setting, shared by the asset
model (a tag definition may carry it) and the historian (which applies it, see
`kiln.historian.maths.compression`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Method = Literal["none", "exception", "swinging_door"]


class CompressionSpec(BaseModel):
    """How a tag's values are thinned before they are stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method = "none"
    deviation: float = Field(
        default=0.0, ge=0, description="engineering units: the deadband, or the door's width"
    )
    max_time_s: float = Field(
        default=600.0, gt=0, le=86_400 * 7, description="keep a point at least this often"
    )

    @property
    def max_time_us(self) -> int:
        return round(self.max_time_s * 1_000_000)
