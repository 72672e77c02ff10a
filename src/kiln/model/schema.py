"""Relational tables of the asset model: asset types, assets (the ISA-95 tree) and tags.

Only portable column types are used, so the same tables live in SQLite (embedded) and
PostgreSQL (scale-out). The migrations in `kiln.model.migrations` create exactly these tables;
a test compares the two so that they cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kiln.core.values import MAX_PATH_LENGTH
from kiln.db.types import UtcDateTime

# Named constraints: SQLite ALTERs go through Alembic batch mode, which recreates a table and
# can only carry over (or drop) constraints it can name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LENGTH = 64  # one namespace segment (see kiln.core.values)
SHORT_LENGTH = 16  # enum values: data types, levels
SOURCE_LENGTH = 128  # "connector:" and a connector name


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AssetTypeRow(Base):
    """An asset type (template). Its own tags are stored as JSON: they are read and written
    whole with the type, never queried one by one."""

    __tablename__ = "asset_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    parent: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class AssetRow(Base):
    """A node of the equipment hierarchy; `path` is its Unified Namespace path."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(MAX_PATH_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    level: Mapped[str] = mapped_column(String(SHORT_LENGTH))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"), index=True)
    type_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    description: Mapped[str] = mapped_column(Text, default="")


class TagRow(Base):
    """A tag: declared by an asset type on an asset, or created by its first value."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(MAX_PATH_LENGTH), unique=True)
    # SET NULL: an auto-created tag outlives the asset it was filed under.
    asset_id: Mapped[int | None] = mapped_column(
        ForeignKey("assets.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    data_type: Mapped[str] = mapped_column(String(SHORT_LENGTH))
    unit: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    low: Mapped[float | None] = mapped_column(Float)
    high: Mapped[float | None] = mapped_column(Float)
    # JSON object keys are strings: {"1": "running"}; the store converts them back to ints.
    states: Mapped[dict[str, str] | None] = mapped_column(JSON(none_as_null=True))
    # Specification limits {"lsl": .., "usl": .., "target": ..}, only those given; NULL: none.
    spec: Mapped[dict[str, float] | None] = mapped_column(JSON(none_as_null=True))
    auto_created: Mapped[bool] = mapped_column(Boolean, default=False)
    # Which connector serves it ("connector:<name>"); NULL for declared-only or ingested tags.
    source: Mapped[str | None] = mapped_column(String(SOURCE_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
