"""The asset model's settings sections: `model:` (its database and declarations) and
`namespace:` (which subtrees only configured tags may enter)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from kiln.core.config import DatabaseUrl
from kiln.core.settings import Section
from kiln.core.values import validate_path
from kiln.db.urls import require_postgres_driver, sqlite_url
from kiln.model.definitions import AssetDef, AssetTypeDef


class ModelSettings(Section):
    url: DatabaseUrl | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite in data_dir"
    )
    types: list[AssetTypeDef] = Field(default_factory=list)
    assets: list[AssetDef] = Field(default_factory=list)

    def url_in(self, data_dir: Path) -> str:
        """The model's database: `url`, or model.db in the data folder."""
        return self.url or sqlite_url(data_dir / "model.db")

    @field_validator("url")
    @classmethod
    def _driver(cls, url: str | None) -> str | None:
        require_postgres_driver(url)
        return url


class NamespaceSettings(Section):
    locked: list[str] = Field(
        default=[],
        description="subtrees where only configured tags exist: ingest of unknown paths is refused",
    )

    @field_validator("locked")
    @classmethod
    def _paths(cls, prefixes: list[str]) -> list[str]:
        for p in prefixes:
            if "/" in p:
                validate_path(p)
        return prefixes
