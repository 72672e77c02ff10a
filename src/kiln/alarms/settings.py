"""The plant file's `alarms:` section: the alarm store, operator-action rules and alarms on
tags outside any asset type."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from kiln.alarms.definitions import AlarmDef, Priority
from kiln.alarms.states import DEFAULT_MAX_SHELVE_S
from kiln.core.config import DatabaseUrl
from kiln.core.settings import Section
from kiln.db.urls import require_postgres_driver, sqlite_url


class AlarmSettings(Section):
    url: DatabaseUrl | None = Field(
        default=None, description="SQLAlchemy URL of the alarm journal; default SQLite in data_dir"
    )
    max_shelve_s: float = Field(
        default=DEFAULT_MAX_SHELVE_S, gt=0, description="longest timed shelve an operator may set"
    )
    note_required: list[Priority] = Field(
        default_factory=list, description="priorities whose acknowledgement needs a note"
    )
    tick_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="how often delays, re-alarms and stale tags are checked",
    )
    definitions: list[AlarmDef] = Field(
        default_factory=list,
        description="alarms on tags by full path (the asset is the tag's parent path)",
    )

    def url_in(self, data_dir: Path) -> str:
        """The journal's database: `url`, or alarms.db in the data folder."""
        return self.url or sqlite_url(data_dir / "alarms.db")

    @field_validator("url")
    @classmethod
    def _driver(cls, url: str | None) -> str | None:
        require_postgres_driver(url)
        return url
