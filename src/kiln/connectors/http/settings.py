"""The HTTP ingest's settings section (`ingest:` in the plant file)."""

from __future__ import annotations

from pydantic import Field

from kiln.core.settings import Section


class IngestSettings(Section):
    max_items: int = Field(default=100_000, gt=0, description="values per request at most")
    ack_timeout_s: float = Field(default=30.0, gt=0, description="wait for durability at most")
    bulk_max_bytes: int = Field(
        default=512 * 1024 * 1024, gt=0, description="largest bulk (Arrow/Parquet) upload"
    )
    bulk_max_rows: int = Field(default=10_000_000, gt=0, description="rows per bulk upload")
    max_inflated_bytes: int = Field(
        default=128 * 1024 * 1024,
        gt=0,
        description="a compressed body (gzip, Parquet pages) may inflate to this much at most",
    )
    max_future_s: float = Field(
        default=600.0,
        ge=0,
        description="timestamps later than now plus this are refused (422), and never become "
        "a tag's latest value",
    )
    workers: int = Field(
        default=2, gt=0, le=64, description="threads that decode and parse ingest bodies"
    )
