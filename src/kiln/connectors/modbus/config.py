"""The plant YAML of a Modbus TCP connector: an endpoint, the unit ids behind it, poll groups,
and a register map per tag."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiln.connectors.base import ConnectorConfig
from kiln.connectors.modbus.codec import (
    DataType,
    Order,
    RegisterSpec,
    Table,
    parse_layout,
)
from kiln.core.values import validate_path
from kiln.model import DataType as ModelType


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModbusTag(_Strict):
    """One value in a device's tables."""

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$", description="tag name")
    table: Table = Table.HOLDING_REGISTER
    address: int = Field(ge=0, le=0xFFFF, description="0-based protocol address (40001 is 0)")
    type: DataType = DataType.UINT16
    count: int | None = Field(default=None, ge=1, le=125, description="registers of a string")
    layout: str | None = Field(
        default=None, description="byte layout as a manual names it: ABCD, CDAB, BADC, DCBA, ..."
    )
    word_order: Order = Order.BIG
    byte_order: Order = Order.BIG
    scale: float = 1.0
    offset: float = 0.0
    bit: int | None = Field(default=None, ge=0, le=15)
    writable: bool = False
    unit: str = Field(default="", max_length=32, description="engineering unit, e.g. degC")
    description: str = Field(default="", max_length=500, description="what the value is")

    def data_type(self) -> ModelType:
        """The asset model's data type of the decoded value (see `codec`: scaled is float)."""
        if self.type is DataType.BOOL or self.bit is not None:
            return ModelType.BOOL
        if self.type is DataType.STRING:
            return ModelType.STRING
        if self.type in (DataType.FLOAT32, DataType.FLOAT64):
            return ModelType.FLOAT
        return ModelType.INT if (self.scale, self.offset) == (1.0, 0.0) else ModelType.FLOAT

    def spec(self) -> RegisterSpec:
        words, bytes_ = (
            parse_layout(self.layout) if self.layout else (self.word_order, self.byte_order)
        )
        return RegisterSpec(
            self.table,
            self.address,
            self.type,
            count=self.count,
            word_order=words,
            byte_order=bytes_,
            scale=self.scale,
            offset=self.offset,
            bit=self.bit,
        )

    @model_validator(mode="after")
    def _valid_spec(self) -> ModbusTag:
        self.spec()  # RegisterSpec's errors name the field and say what fits
        if self.writable and not self.table.writable:
            raise ValueError(f"writable: a {self.table.value} is read-only in Modbus (4.3)")
        return self


class PollGroup(_Strict):
    interval_ms: int = Field(default=1000, ge=10, le=3_600_000)
    max_gap: int = Field(
        default=0,
        ge=0,
        le=100,
        description="unmapped registers a read may span to save a request (some devices "
        "answer ILLEGAL DATA ADDRESS for them, so 0 by default)",
    )
    tags: list[ModbusTag] = Field(min_length=1)


class ModbusDevice(_Strict):
    unit: int = Field(default=1, ge=0, le=255, description="unit id (slave id behind a gateway)")
    prefix: str = Field(description="namespace path of the device; tags go below it")
    poll_groups: list[PollGroup] = Field(min_length=1)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if "/" not in v:
            v = v + "/x"  # a prefix may be one segment; the tag name completes the path
            validate_path(v)
            return v[:-2]
        return validate_path(v)

    @model_validator(mode="after")
    def _unique_names(self) -> ModbusDevice:
        names = [t.name for g in self.poll_groups for t in g.tags]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"tag names must be unique per device: {', '.join(twice)}")
        return self


class ModbusConfig(ConnectorConfig):
    type: str = "modbus"
    host: str
    port: int = Field(default=502, ge=1, le=65535)
    timeout_s: float = Field(default=1.0, gt=0, le=60, description="per request")
    devices: list[ModbusDevice] = Field(min_length=1)

    @property
    def peer(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"
