"""API response and request shapes, kept apart from domain types so each can change alone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from kiln.core.quality import quality_name
from kiln.core.values import TagValue

JsonScalar = bool | int | float | str | None


class ValueOut(BaseModel):
    path: str
    value: JsonScalar
    source_ts: datetime
    receive_ts: datetime | None = None
    quality: str = Field(description="good, uncertain, bad or a named sub-status")

    @classmethod
    def of(cls, tv: TagValue) -> ValueOut:
        # Built from the historian's own values: no validation needed (it costs per value).
        return cls.model_construct(
            path=tv.path,
            value=tv.value,
            source_ts=tv.source_ts,
            receive_ts=tv.receive_ts,
            quality=quality_name(tv.quality),
        )


class LatestOut(BaseModel):
    values: list[ValueOut]
    truncated: bool = False


class PointOut(BaseModel):
    ts: datetime
    value: JsonScalar
    quality: str


class RawOut(BaseModel):
    tag: str
    start: datetime
    end: datetime
    values: list[PointOut]
    truncated: bool
    next_start: datetime | None = Field(
        default=None, description="when truncated: pass as start= to fetch the next page"
    )


class AggregateOut(BaseModel):
    tag: str
    start: datetime
    end: datetime
    interval: str
    aggs: list[str]
    buckets: list[dict[str, Any]] = Field(description="ts (bucket start) and one field per agg")


class TagOut(BaseModel):
    path: str
    name: str
    asset_path: str | None
    data_type: str
    unit: str
    description: str
    low: float | None
    high: float | None
    states: dict[int, str] | None
    auto_created: bool
    source: str | None = Field(
        default=None, description='the connector that serves it, e.g. "connector:press7"'
    )
    spec: dict[str, float] | None = Field(
        default=None, description="specification limits (lsl, usl, target: those given)"
    )


class TagsOut(BaseModel):
    tags: list[TagOut]
    truncated: bool


class AssetNodeOut(BaseModel):
    path: str
    name: str
    level: str
    type: str | None
    description: str
    children: list[AssetNodeOut]


class AssetsOut(BaseModel):
    assets: list[AssetNodeOut]


class SubsystemOut(BaseModel):
    status: str
    detail: dict[str, Any]


class HealthOut(BaseModel):
    status: str
    version: str
    subsystems: dict[str, SubsystemOut]


class IngestIn(BaseModel):
    values: list[Any] = Field(
        description=(
            'items {"path": str, "value": number|bool|string, "ts": ISO 8601 or epoch ms '
            '(optional), "quality": name or StatusCode (optional)}'
        ),
        examples=[
            [
                {
                    "path": "acme/plant1/packaging/line1/filler1/weight",
                    "value": 500.2,
                    "ts": "2026-01-01T00:00:00Z",
                    "quality": "good",
                }
            ]
        ],
    )


class ItemErrorOut(BaseModel):
    index: int
    path: str | None
    error: str


class IngestOut(BaseModel):
    accepted: int
    rejected: list[ItemErrorOut]
    created_tags: list[str]
