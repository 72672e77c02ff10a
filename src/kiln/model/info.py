"""What the asset model hands out: read-only views of tags and assets, and operation results.

These are plain dataclasses rather than pydantic models: the model holds one `TagInfo` per tag
(up to hundreds of thousands) in memory, and building them must cost next to nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from kiln.model.definitions import AssetDef, AssetTypeDef, DataType, Level, SpecLimits


@dataclass(frozen=True, slots=True)
class TagInfo:
    """One tag of the Unified Namespace: its path and what its values mean."""

    path: str
    name: str
    asset_path: str | None
    data_type: DataType
    unit: str = ""
    description: str = ""
    low: float | None = None
    high: float | None = None
    states: dict[int, str] | None = None
    auto_created: bool = False
    source: str | None = None  # the connector that serves it ("connector:<name>"), if any
    spec: SpecLimits | None = None  # specification limits, for SPC capability


@dataclass(frozen=True, slots=True)
class DescribedTag:
    """A tag as its source describes it: a connector's register map, node attributes, birth
    certificate or topic mapping. `inferred` when only a value was seen: then it creates the
    tag but never overwrites what a description said."""

    path: str
    data_type: DataType
    unit: str = ""
    description: str = ""
    inferred: bool = False


@dataclass(slots=True)
class AssetNode:
    """A node of the ISA-95 hierarchy with its children (built fresh for each caller)."""

    path: str
    name: str
    level: Level
    type: str | None
    description: str
    children: list[AssetNode] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """How many rows `apply` created, updated or removed; all zero when nothing changed."""

    types_created: int = 0
    types_updated: int = 0
    assets_created: int = 0
    assets_updated: int = 0
    tags_created: int = 0
    tags_updated: int = 0
    tags_removed: int = 0

    @property
    def changed(self) -> bool:
        return any(
            (
                self.types_created,
                self.types_updated,
                self.assets_created,
                self.assets_updated,
                self.tags_created,
                self.tags_updated,
                self.tags_removed,
            )
        )


@dataclass(slots=True)
class DescribeResult:
    """Outcome of `AssetModel.describe_tags`: tags created and updated, assets created for
    the missing levels above them, and paths refused with why."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    assets_created: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class EnsureResult:
    """Outcome of `AssetModel.ensure_tags`: paths created as tags, and paths refused with why."""

    created: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


class Snapshot(NamedTuple):
    """Everything the relational store holds, as loaded at start and after each `apply`."""

    types: list[AssetTypeDef]
    assets: list[AssetDef]
    tags: list[TagInfo]
