"""The historian's settings section (`historian:` in the plant file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from kiln.core.config import MadeFile
from kiln.core.settings import Section
from kiln.db.urls import is_postgres_url, redact, require_postgres_driver
from kiln.historian.maths.compression import CompressionRule
from kiln.historian.maths.rollup import parse_widths
from kiln.historian.retention import RetentionRule


class HistorianSettings(Section):
    backend: Literal["duckdb", "postgresql"] = Field(
        default="duckdb", description="duckdb (a file in data_dir) or postgresql (set url)"
    )
    path: MadeFile | None = Field(default=None, description="default: <data_dir>/history.duckdb")
    url: str | None = Field(
        default=None,
        description="postgresql://user:password@host/database: keep the history in PostgreSQL",
    )
    partition_days: int = Field(
        default=7, ge=1, le=366, description="PostgreSQL: days of points per partition"
    )
    max_batch_points: int = Field(default=200_000, gt=0, description="points per commit at most")
    queue_points: int = Field(
        default=1_000_000, gt=0, description="bus queue bound (blocks when full)"
    )
    compression: list[CompressionRule] = Field(
        default_factory=list,
        description="per tag or subtree: exception or swinging_door, deviation, max_time_s",
    )
    retention: list[RetentionRule] = Field(
        default_factory=list, description="per tag or subtree: raw_days of raw points to keep"
    )
    disk_limit_bytes: int | None = Field(
        default=None, gt=0, description="warn at 90 %, then drop the oldest day at a time"
    )
    housekeeping_s: float = Field(
        default=300.0, gt=0, description="how often retention and the disk limit are applied"
    )
    rollups: list[str] = Field(
        default=["1min", "1h"],
        description="rollup tiers, each a multiple of the one before: aggregates kept as data "
        "arrives and used by queries whose buckets lie on their grid ([] for none)",
    )
    rollup_s: float = Field(default=5.0, gt=0, description="how often rollups catch up")

    def path_in(self, data_dir: Path) -> Path:
        """The DuckDB file: `path`, or history.duckdb in the data folder."""
        return self.path or data_dir / "history.duckdb"

    @field_validator("rollups")
    @classmethod
    def _tiers(cls, tiers: list[str]) -> list[str]:
        parse_widths(tiers)
        return tiers

    @model_validator(mode="after")
    def _backend(self) -> HistorianSettings:
        if self.url is not None:
            if not is_postgres_url(self.url):
                raise ValueError(
                    f"historian.url must be a PostgreSQL URL (postgresql://user@host/db), "
                    f"not {redact(self.url)!r}"
                )
            require_postgres_driver(self.url)
            self.backend = "postgresql"
        elif self.backend == "postgresql":
            raise ValueError("historian.backend postgresql needs historian.url")
        return self
