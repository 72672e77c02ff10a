"""Definitions of asset types, assets and tags, as users write them in YAML and code.

These are pure values (pydantic models, frozen, unknown fields rejected) shared by the
configuration loader, the virtual factory and the relational store.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiln.alarms import AlarmDef
from kiln.core.compression import CompressionSpec
from kiln.core.values import validate_path

_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"


class DataType(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"
    STATE = "state"  # an integer code with names, e.g. a machine state

    @classmethod
    def infer(cls, value: object) -> DataType:
        """The type a tag gets when it is created by its first value."""
        if isinstance(value, bool):
            return cls.BOOL
        if isinstance(value, int):
            return cls.INT
        if isinstance(value, float):
            return cls.FLOAT
        return cls.STRING


class Level(StrEnum):
    """ISA-95 (IEC 62264-1) equipment hierarchy levels, top down."""

    ENTERPRISE = "enterprise"
    SITE = "site"
    AREA = "area"
    LINE = "line"
    CELL = "cell"
    ASSET = "asset"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SpecLimits(_Frozen):
    """A tag's specification limits: what the product must meet, set by the customer or design.

    They are not control limits (what the process does, computed from its data): SPC judges
    capability (Cp, Cpk, Pp, Ppk) by how the process spread sits between these.
    """

    lsl: float | None = Field(default=None, description="lower specification limit")
    usl: float | None = Field(default=None, description="upper specification limit")
    target: float | None = Field(default=None, description="nominal value, within the limits")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.lsl is None and self.usl is None:
            raise ValueError("specification limits need lsl, usl or both")
        if self.lsl is not None and self.usl is not None and self.lsl >= self.usl:
            raise ValueError(f"specification lsl={self.lsl} must be below usl={self.usl}")
        if self.target is not None:
            if self.lsl is not None and self.target < self.lsl:
                raise ValueError(f"target {self.target} is below lsl={self.lsl}")
            if self.usl is not None and self.target > self.usl:
                raise ValueError(f"target {self.target} is above usl={self.usl}")
        return self


class TagDef(_Frozen):
    """A tag of an asset type: instantiated once per asset of that type."""

    name: str = Field(pattern=_NAME, description="tag name, the last segment of its path")
    data_type: DataType = DataType.FLOAT
    unit: str = ""
    description: str = ""
    low: float | None = Field(default=None, description="engineering range, low end")
    high: float | None = Field(default=None, description="engineering range, high end")
    states: dict[int, str] | None = Field(
        default=None, description="names of the codes of a state tag, e.g. {1: running}"
    )
    compression: CompressionSpec | None = Field(
        default=None,
        description="how the historian compresses this tag's values (exception or "
        "swinging_door); none by default",
    )
    spec: SpecLimits | None = Field(
        default=None, description="specification limits SPC capability is computed against"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"engineering range low={self.low} must be below high={self.high}")
        if self.states is not None and self.data_type is not DataType.STATE:
            raise ValueError("states are only allowed on tags with data_type: state")
        return self


class AssetTypeDef(_Frozen):
    """A template: tags every asset of this type has. `parent` inherits the parent's tags."""

    name: str = Field(pattern=_NAME)
    parent: str | None = None
    description: str = ""
    tags: tuple[TagDef, ...] = ()
    alarms: tuple[AlarmDef, ...] = Field(
        default=(),
        description="alarms every asset of the type has; a child type's replace a parent's by name",
    )

    @field_validator("alarms")
    @classmethod
    def _unique_alarms(cls, alarms: tuple[AlarmDef, ...]) -> tuple[AlarmDef, ...]:
        return _unique_names(alarms)

    @field_validator("tags")
    @classmethod
    def _unique(cls, tags: tuple[TagDef, ...]) -> tuple[TagDef, ...]:
        seen: set[str] = set()
        for tag in tags:
            if tag.name in seen:
                raise ValueError(f"tag {tag.name!r} is defined twice")
            seen.add(tag.name)
        return tags


class AssetDef(_Frozen):
    """A node of the hierarchy. Nodes with a `type` get that type's tags under their path."""

    path: str
    level: Level
    type: str | None = None
    description: str = ""
    alarms: tuple[AlarmDef, ...] = Field(
        default=(), description="this asset's own alarms; one named like its type's replaces it"
    )
    alarms_off: tuple[str, ...] = Field(
        default=(), description="names of alarms of its type this asset does without"
    )

    @field_validator("alarms")
    @classmethod
    def _unique_alarms(cls, alarms: tuple[AlarmDef, ...]) -> tuple[AlarmDef, ...]:
        return _unique_names(alarms)

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        if "/" not in path:  # an enterprise is a single segment
            if not path or len(path) > 64:
                raise ValueError("an enterprise path is one segment of 1-64 characters")
            return path
        return validate_path(path)


def _unique_names(alarms: tuple[AlarmDef, ...]) -> tuple[AlarmDef, ...]:
    seen: set[str] = set()
    for alarm in alarms:
        if alarm.name in seen:
            raise ValueError(f"alarm {alarm.name!r} is defined twice")
        seen.add(alarm.name)
    return alarms


def resolve_tags(type_name: str, types: dict[str, AssetTypeDef]) -> list[TagDef]:
    """All tags of a type, inherited ones first; a child's tag overrides its parent's by name.

    Raises ValueError for an unknown type or an inheritance cycle.
    """
    chain: list[AssetTypeDef] = []
    seen: set[str] = set()
    name: str | None = type_name
    while name is not None:
        if name in seen:
            raise ValueError(f"asset type {type_name!r} inherits from itself via {name!r}")
        seen.add(name)
        t = types.get(name)
        if t is None:
            known = ", ".join(sorted(types)) or "none defined"
            raise ValueError(f"unknown asset type {name!r} (known types: {known})")
        chain.append(t)
        name = t.parent
    merged: dict[str, TagDef] = {}
    for t in reversed(chain):
        for tag in t.tags:
            merged[tag.name] = tag
    return list(merged.values())
