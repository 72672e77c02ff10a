"""The plant file's `valuechain:` section: the store, the planning calendar's zone, and the
tolerance on goods receipts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from kiln.core.config import DatabaseUrl
from kiln.core.settings import Section
from kiln.db.urls import require_postgres_driver, sqlite_url


class ValuechainSettings(Section):
    url: DatabaseUrl | None = Field(
        default=None,
        description="SQLAlchemy URL of the value chain store; default SQLite in data_dir",
    )
    timezone: str = Field(
        default="UTC",
        description="IANA zone of the planning calendar: which day is 'today' for planning",
    )
    receipt_tolerance_percent: Decimal = Field(
        default=Decimal(0),
        ge=0,
        le=100,
        description="how much more than ordered a purchase line may receive, in percent",
    )
    max_trace_lots: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="the most lots one genealogy trace or recall walks before it stops (and "
        "says so)",
    )

    def url_in(self, data_dir: Path) -> str:
        """The store's database: `url`, or valuechain.db in the data folder."""
        return self.url or sqlite_url(data_dir / "valuechain.db")

    @field_validator("url")
    @classmethod
    def _driver(cls, url: str | None) -> str | None:
        require_postgres_driver(url)
        return url

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin")
        return name
