"""The plant file's `production:` section: the store, the asset types' state models, the sites'
shift calendars and the products known at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kiln.core.config import DatabaseUrl
from kiln.core.settings import Section
from kiln.db.urls import require_postgres_driver, sqlite_url
from kiln.production.calendar import CalendarDef
from kiln.production.orders import Product
from kiln.production.spc_tags import SpcDef
from kiln.production.taxonomy import StateModel


class OrderTagRule(BaseModel):
    """Orders started and stopped by a tag: the line's PLC or MES publishes the number of the
    order it is running on `tag` (empty text or 0: none). A new number ends the running order
    (`previous`: complete or pause) and starts (or resumes) the named one at the value's time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    line: str = Field(min_length=1, description="the line (asset path) the orders run on")
    tag: str = Field(min_length=1, description="full path of the tag holding the order number")
    previous: Literal["complete", "pause"] = "complete"


class ProductionSettings(Section):
    url: DatabaseUrl | None = Field(
        default=None,
        description="SQLAlchemy URL of the production store; default SQLite in data_dir",
    )
    types: dict[str, StateModel] = Field(
        default_factory=dict,
        description="state model per asset type name, inherited by its child types",
    )
    calendars: list[CalendarDef] = Field(
        default_factory=list, description="shift calendars, one per site"
    )
    products: list[Product] = Field(
        default_factory=list, description="products and their ideal cycle times, loaded at start"
    )
    spc: list[SpcDef] = Field(
        default_factory=list,
        description="control charts evaluated live on tags (full tag paths); violations go to "
        "the tag's `<tag>_spc` companion as the lowest rule number (0: in control)",
    )
    order_tags: list[OrderTagRule] = Field(
        default_factory=list, description="tags whose value is the order running on a line"
    )
    live_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="how often the live OEE of assets whose data changed is published",
    )

    def url_in(self, data_dir: Path) -> str:
        """The store's database: `url`, or production.db in the data folder."""
        return self.url or sqlite_url(data_dir / "production.db")

    @field_validator("url")
    @classmethod
    def _driver(cls, url: str | None) -> str | None:
        require_postgres_driver(url)
        return url

    @field_validator("calendars")
    @classmethod
    def _one_per_site(cls, calendars: list[CalendarDef]) -> list[CalendarDef]:
        seen: set[str] = set()
        for cal in calendars:
            if cal.site in seen:
                raise ValueError(f"site {cal.site!r} has two calendars: merge their shifts")
            seen.add(cal.site)
        return calendars

    @field_validator("spc")
    @classmethod
    def _spc_paths(cls, charts: list[SpcDef]) -> list[SpcDef]:
        seen: set[str] = set()
        for chart in charts:
            # The engine follows full paths: a bare name would never arrive, and the chart
            # would wait for it for ever.
            named = [("tag", chart.tag), ("sample_size_tag", chart.sample_size_tag)]
            named += [("sample_size_counters", t) for t in chart.sample_size_counters or ()]
            for field, tag in named:
                if tag is not None and "/" not in tag:
                    raise ValueError(
                        f"SPC chart {chart.name!r}: {field} needs the full tag path (e.g. "
                        f"acme/plant1/line1/filler1/{tag}), not a tag name"
                    )
            if chart.name in seen:
                raise ValueError(f"two SPC charts are named {chart.name!r}")
            seen.add(chart.name)
        return charts
