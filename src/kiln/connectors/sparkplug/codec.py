"""Sparkplug B payloads: protobuf bytes to typed values and back.

Pure: no I/O. `decode_payload` turns any bytes into a `Payload` or raises `PayloadError`, and
nothing else. `encode_payload` is its inverse, used by the simulator's edge nodes, by tests and
for the host's own commands (`encode_rebirth_request`).

How values are carried (Sparkplug 3.0, 6.4.16 "Data Types" and 6.4.17 "Datatype Details"):

- Int8, Int16, Int32, UInt8, UInt16 and UInt32 travel in the uint32 `int_value`; Int64, UInt64 and
  DateTime (milliseconds since the epoch) in the uint64 `long_value`. The specification gives the
  protobuf type but not how a negative value becomes unsigned, and implementations differ: the
  reference implementation sign-extends to the carrier width (Int8 -1 -> 0xFFFFFFFF), others
  send the value's own two's complement bits (Int8 -1 -> 0xFF). Kiln encodes the first way and
  decodes both, and also accepts an integer in the other carrier (some peers send UInt32 in
  `long_value`). Anything else that does not fit the declared type is a `PayloadError`.
- Float in `float_value`, Double in `double_value`, Boolean in `boolean_value`; String, Text
  and UUID in `string_value`; Bytes, File and every array type in `bytes_value`.
- Arrays are little-endian packed (6.4.17 "Array Types"); BooleanArray is a uint32 count then
  the bits, most significant bit first; StringArray is NUL-terminated UTF-8 strings.
- DataSet is `DataSet` (columns, types, rows); Template and extension values are kept as
  `Unsupported` with their raw protobuf bytes, so they survive a decode/encode round trip.

Data messages usually omit a metric's datatype (it is only required in births,
[tck-id-payloads-metric-datatype-req]); pass `datatype_of` to look it up from the birth.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal, Protocol, TypeAlias

from google.protobuf.message import DecodeError, EncodeError

from kiln.connectors.sparkplug import sparkplug_b_pb2 as _pb
from kiln.connectors.sparkplug.errors import PayloadError

REBIRTH_METRIC = "Node Control/Rebirth"
BDSEQ_METRIC = "bdSeq"


class DataType(IntEnum):
    """Sparkplug datatypes (6.4.16); the numbers are the wire values."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19
    PROPERTYSET = 20
    PROPERTYSETLIST = 21
    INT8_ARRAY = 22
    INT16_ARRAY = 23
    INT32_ARRAY = 24
    INT64_ARRAY = 25
    UINT8_ARRAY = 26
    UINT16_ARRAY = 27
    UINT32_ARRAY = 28
    UINT64_ARRAY = 29
    FLOAT_ARRAY = 30
    DOUBLE_ARRAY = 31
    BOOLEAN_ARRAY = 32
    STRING_ARRAY = 33
    DATETIME_ARRAY = 34


# Integer datatypes: (bits, signed). DateTime is an unsigned 64-bit count of milliseconds.
_INTEGERS: dict[DataType, tuple[int, bool]] = {
    DataType.INT8: (8, True),
    DataType.INT16: (16, True),
    DataType.INT32: (32, True),
    DataType.INT64: (64, True),
    DataType.UINT8: (8, False),
    DataType.UINT16: (16, False),
    DataType.UINT32: (32, False),
    DataType.UINT64: (64, False),
    DataType.DATETIME: (64, False),
}
_STRINGS = frozenset({DataType.STRING, DataType.TEXT, DataType.UUID})
_BYTES = frozenset({DataType.BYTES, DataType.FILE})
# 6.4.17 "Basic Types": the only types a DataSet column or a template parameter may have.
BASIC_TYPES = frozenset(DataType(n) for n in range(1, 15))
_PACKED: dict[DataType, str] = {
    DataType.INT8_ARRAY: "b",
    DataType.INT16_ARRAY: "h",
    DataType.INT32_ARRAY: "i",
    DataType.INT64_ARRAY: "q",
    DataType.UINT8_ARRAY: "B",
    DataType.UINT16_ARRAY: "H",
    DataType.UINT32_ARRAY: "I",
    DataType.UINT64_ARRAY: "Q",
    # The specification's float examples are printed big-endian, but its text says
    # little-endian for every array type; the text is normative.
    DataType.FLOAT_ARRAY: "f",
    DataType.DOUBLE_ARRAY: "d",
    DataType.DATETIME_ARRAY: "Q",
}
_ARRAYS = frozenset(_PACKED) | {DataType.BOOLEAN_ARRAY, DataType.STRING_ARRAY}
_FLOAT32_MAX = 3.4028234663852886e38
_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1

Cell: TypeAlias = int | float | bool | str | None
ArrayValue: TypeAlias = tuple[int, ...] | tuple[float, ...] | tuple[bool, ...] | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DataSet:
    """A table (6.4.11): one datatype per column, rows of one cell per column (None is null)."""

    columns: tuple[str, ...]
    types: tuple[DataType, ...]
    rows: tuple[tuple[Cell, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A value Kiln does not interpret (a Template or an extension), kept as protobuf bytes."""

    kind: Literal["template_value", "extension_value"]
    raw: bytes


Value: TypeAlias = int | float | bool | str | bytes | DataSet | ArrayValue | Unsupported | None


@dataclass(frozen=True, slots=True)
class Property:
    """One entry of a metric's PropertySet (6.4.8-6.4.10), e.g. the "Quality" property."""

    datatype: DataType | None
    value: Cell | Properties | tuple[Properties, ...] | Unsupported = None
    is_null: bool = False


Properties: TypeAlias = Mapping[str, Property]


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric (6.4.6). `datatype` is None when the message does not carry it.

    The optional MetaData (6.4.7: multi-part and file details) is not decoded.
    """

    name: str | None = None
    alias: int | None = None
    timestamp_ms: int | None = None
    datatype: DataType | None = None
    value: Value = None
    is_historical: bool = False
    is_transient: bool = False
    is_null: bool = False
    properties: Properties = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How to name this metric in a message: its name, else its alias."""
        return repr(self.name) if self.name is not None else f"alias {self.alias}"


@dataclass(frozen=True, slots=True)
class Payload:
    """A Sparkplug B payload (6.4.5). Timestamps are milliseconds since the epoch, UTC."""

    timestamp_ms: int | None = None
    metrics: tuple[Metric, ...] = ()
    seq: int | None = None
    uuid: str | None = None
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class HostState:
    """The JSON payload of a host application's STATE message (4.2.3.1.2)."""

    online: bool
    timestamp_ms: int


# Looks up a metric's datatype by (name, alias) when a message omits it.
DatatypeOf: TypeAlias = Callable[[str | None, int | None], DataType | None]

_ScalarKind: TypeAlias = Literal[
    "int_value", "long_value", "float_value", "double_value", "boolean_value", "string_value"
]
_Carried: TypeAlias = int | float | bool | str


class _ScalarOneof(Protocol):
    """The scalar members shared by Metric, DataSetValue and PropertyValue."""

    int_value: int
    long_value: int
    float_value: float
    double_value: float
    boolean_value: bool
    string_value: str


# ----------------------------------------------------------------------------------- decoding


# What the protobuf runtime raises for bytes that are not a valid message.
DECODE_ERRORS = (DecodeError, ValueError, TypeError, OverflowError, RecursionError)


def decode_payload(data: bytes, datatype_of: DatatypeOf | None = None) -> Payload:
    """Decode protobuf bytes into a Payload; raise PayloadError for anything that is not one."""
    try:
        message = _pb.Payload.FromString(bytes(data))
        return _payload(message, datatype_of)
    except PayloadError:
        raise
    except DECODE_ERRORS as err:
        raise PayloadError(f"not a Sparkplug B payload: {err}") from None


def _payload(message: _pb.Payload, datatype_of: DatatypeOf | None) -> Payload:
    return Payload(
        timestamp_ms=message.timestamp if message.HasField("timestamp") else None,
        metrics=tuple(decode_metric(m, datatype_of) for m in message.metrics),
        seq=message.seq if message.HasField("seq") else None,
        uuid=_text(message.uuid, "payload uuid") if message.HasField("uuid") else None,
        body=message.body if message.HasField("body") else None,
    )


def decode_metric(m: _pb.Payload.Metric, datatype_of: DatatypeOf | None) -> Metric:
    """One protobuf metric, decoded in full (raises PayloadError)."""
    # The hot path of a host: a data message carries hundreds of these. Error texts are built
    # only when there is an error, and plain values skip the generic interpretation.
    has = m.HasField
    name = _text(m.name, "metric name") if has("name") else None
    alias = m.alias if has("alias") else None
    datatype: DataType | None = None
    if has("datatype"):
        datatype = _DATATYPES.get(m.datatype) or _datatype(m.datatype, _where(name, alias))
    elif datatype_of is not None:
        datatype = datatype_of(name, alias)
    is_null = m.is_null
    value: Value = None
    if not is_null:
        kind = m.WhichOneof("value")
        if kind is not None and _PLAIN.get(kind) is datatype and datatype is not None:
            value = getattr(m, kind)
        else:
            value = _metric_value(m, datatype, _where(name, alias))
    return Metric(
        name=name,
        alias=alias,
        timestamp_ms=m.timestamp if has("timestamp") else None,
        datatype=datatype,
        value=value,
        is_historical=m.is_historical,
        is_transient=m.is_transient,
        is_null=is_null,
        properties=_properties(m.properties, _where(name, alias)) if has("properties") else {},
    )


def _where(name: str | None, alias: int | None) -> str:
    return f"metric {name!r}" if name is not None else f"metric alias {alias}"


def _metric_value(m: _pb.Payload.Metric, datatype: DataType | None, where: str) -> Value:
    kind = m.WhichOneof("value")
    if kind is None:
        return None
    if kind == "template_value":
        return Unsupported(kind, m.template_value.SerializeToString())
    if kind == "extension_value":
        return Unsupported(kind, m.extension_value.SerializeToString())
    untyped = datatype is None or datatype == DataType.UNKNOWN
    if kind == "dataset_value":
        if not (untyped or datatype == DataType.DATASET):
            raise PayloadError(f"{where}: a {_name(datatype)} value cannot be a DataSet")
        return _dataset(m.dataset_value, where)
    if kind == "bytes_value":
        if untyped or datatype in _BYTES:
            return m.bytes_value
        if datatype is not None and datatype in _ARRAYS:
            return _unpack_array(datatype, m.bytes_value, where)
        raise PayloadError(f"{where}: a {_name(datatype)} value is not carried in bytes_value")
    return _scalar(kind, _carried(m, kind), datatype, where)


def _name(datatype: DataType | None) -> str:
    return "untyped" if datatype is None else datatype.name


def _carried(m: _ScalarOneof, kind: _ScalarKind) -> _Carried:
    if kind == "int_value":
        return m.int_value
    if kind == "long_value":
        return m.long_value
    if kind == "float_value":
        return m.float_value
    if kind == "double_value":
        return m.double_value
    if kind == "boolean_value":
        return m.boolean_value
    return _text(m.string_value, "string value")


def _scalar(kind: _ScalarKind, raw: _Carried, datatype: DataType | None, where: str) -> _Carried:
    """Interpret a carried scalar as `datatype` (None or Unknown: as carried)."""
    if datatype is None or datatype == DataType.UNKNOWN:
        return raw
    if datatype in _INTEGERS:
        if kind not in ("int_value", "long_value"):
            raise PayloadError(f"{where}: a {datatype.name} value is carried in {kind}")
        assert isinstance(raw, int)
        return _from_carrier(raw, 32 if kind == "int_value" else 64, datatype, where)
    expected = {
        DataType.FLOAT: "float_value",
        DataType.DOUBLE: "double_value",
        DataType.BOOLEAN: "boolean_value",
    }.get(datatype, "string_value" if datatype in _STRINGS else None)
    if expected != kind:
        raise PayloadError(f"{where}: a {datatype.name} value is carried in {kind}")
    return raw


def _from_carrier(raw: int, carrier_bits: int, datatype: DataType, where: str) -> int:
    bits, signed = _INTEGERS[datatype]
    if raw < 1 << bits:
        # The value's own bits (for a signed type, its two's complement in `bits` bits).
        return raw - (1 << bits) if signed and raw >> (bits - 1) else raw
    if signed and raw >= (1 << carrier_bits) - (1 << (bits - 1)):
        return raw - (1 << carrier_bits)  # sign-extended to the carrier's width
    raise PayloadError(f"{where}: {raw} does not fit a {datatype.name}")


def _dataset(ds: _pb.Payload.DataSet, where: str) -> DataSet:
    columns = tuple(_text(c, f"{where}: DataSet column name") for c in ds.columns)
    types = tuple(_datatype(t, f"{where}: DataSet column type") for t in ds.types)
    # 6.4.11 [tck-id-payloads-dataset-column-num-headers] [tck-id-payloads-dataset-types-num]
    if len(types) != len(columns) or (
        ds.HasField("num_of_columns") and ds.num_of_columns != len(columns)
    ):
        raise PayloadError(
            f"{where}: DataSet has {len(columns)} column names, {len(types)} types and "
            f"num_of_columns {ds.num_of_columns}; all three must agree"
        )
    for t in types:  # [tck-id-payloads-dataset-types-value]
        if t not in BASIC_TYPES:
            raise PayloadError(f"{where}: DataSet column type {t.name} is not a basic type")
    rows = []
    for r, row in enumerate(ds.rows):
        if len(row.elements) != len(columns):
            raise PayloadError(
                f"{where}: DataSet row {r} has {len(row.elements)} values for "
                f"{len(columns)} columns"
            )
        cells: list[Cell] = []
        for element, t in zip(row.elements, types, strict=True):
            kind = element.WhichOneof("value")
            if kind is None:
                cells.append(None)
            elif kind == "extension_value":
                raise PayloadError(f"{where}: DataSet row {r} has an extension value")
            else:
                cells.append(_scalar(kind, _carried(element, kind), t, f"{where}: row {r}"))
        rows.append(tuple(cells))
    return DataSet(columns, types, tuple(rows))


def _unpack_array(datatype: DataType, data: bytes, where: str) -> ArrayValue:
    if datatype == DataType.BOOLEAN_ARRAY:
        if len(data) < 4:
            raise PayloadError(f"{where}: a BooleanArray starts with a 4-byte count")
        (count,) = struct.unpack_from("<I", data)
        if len(data) != 4 + (count + 7) // 8:
            raise PayloadError(
                f"{where}: a BooleanArray of {count} values needs {(count + 7) // 8} bytes "
                f"after the count, not {len(data) - 4}"
            )
        return tuple(bool(data[4 + i // 8] >> (7 - i % 8) & 1) for i in range(count))
    if datatype == DataType.STRING_ARRAY:
        if not data:
            return ()
        if not data.endswith(b"\x00"):
            raise PayloadError(f"{where}: a StringArray's strings each end with a NUL byte")
        try:
            return tuple(s.decode("utf-8") for s in data[:-1].split(b"\x00"))
        except UnicodeDecodeError:
            raise PayloadError(f"{where}: a StringArray holds invalid UTF-8") from None
    fmt = "<" + _PACKED[datatype]
    size = struct.calcsize(fmt)
    if len(data) % size:
        raise PayloadError(
            f"{where}: {len(data)} bytes is not a whole number of {size}-byte {datatype.name} items"
        )
    return tuple(item for (item,) in struct.iter_unpack(fmt, data))


def _properties(ps: _pb.Payload.PropertySet, where: str) -> dict[str, Property]:
    # 6.4.8 [tck-id-payloads-propertyset-keys-array-size]
    if len(ps.keys) != len(ps.values):
        raise PayloadError(
            f"{where}: PropertySet has {len(ps.keys)} keys and {len(ps.values)} values"
        )
    return {
        _text(k, f"{where}: property key"): _property(v, f"{where}: property {k!r}")
        for k, v in zip(ps.keys, ps.values, strict=True)
    }


def _property(pv: _pb.Payload.PropertyValue, where: str) -> Property:
    datatype = _datatype(pv.type, where) if pv.HasField("type") else None
    kind = pv.WhichOneof("value")
    value: Cell | Properties | tuple[Properties, ...] | Unsupported
    if pv.is_null or kind is None:
        value = None
    elif kind == "propertyset_value":
        value = _properties(pv.propertyset_value, where)
    elif kind == "propertysets_value":
        value = tuple(_properties(s, where) for s in pv.propertysets_value.propertyset)
    elif kind == "extension_value":
        value = Unsupported(kind, pv.extension_value.SerializeToString())
    else:
        value = _scalar(kind, _carried(pv, kind), datatype, where)
    return Property(datatype, value, pv.is_null)


_DATATYPES = {d.value: d for d in DataType}
# Values carried in the one field of their own datatype, taken as they are.
_PLAIN: dict[str, DataType] = {
    "double_value": DataType.DOUBLE,
    "float_value": DataType.FLOAT,
    "boolean_value": DataType.BOOLEAN,
}


def _datatype(number: int, where: str) -> DataType:
    try:
        return DataType(number)
    except ValueError:
        # 6.4.6 [tck-id-payloads-metric-datatype-value]
        raise PayloadError(f"{where}: {number} is not a Sparkplug datatype") from None


def _text(value: object, where: str) -> str:
    # proto2 strings are not UTF-8-checked on parse; the runtime hands back bytes instead.
    if isinstance(value, str):
        return value
    raise PayloadError(f"{where} is not valid UTF-8")


# ----------------------------------------------------------------------------------- encoding


def encode_payload(payload: Payload, datatype_of: DatatypeOf | None = None) -> bytes:
    """Encode a Payload; raise PayloadError if a value does not fit its datatype.

    A metric whose `datatype` is None is written without one, as data messages usually are;
    `datatype_of` then says how to carry its value (the datatype its birth declared).
    """
    message = _pb.Payload()
    try:
        if payload.timestamp_ms is not None:
            message.timestamp = _u64(payload.timestamp_ms, "payload timestamp")
        for metric in payload.metrics:
            _encode_metric(metric, message.metrics.add(), datatype_of)
        if payload.seq is not None:
            message.seq = _u64(payload.seq, "payload seq")
        if payload.uuid is not None:
            message.uuid = payload.uuid
        if payload.body is not None:
            message.body = payload.body
        return message.SerializeToString()
    except PayloadError:
        raise
    # Strings that are not encodable (lone surrogates), wrong Python types for a field and
    # unparseable raw Unsupported bytes end up here.
    except (DecodeError, EncodeError, ValueError, TypeError, OverflowError) as err:
        raise PayloadError(f"cannot encode payload: {err}") from None


def encode_rebirth_request(timestamp_ms: int) -> bytes:
    """The NCMD payload asking an edge node to publish its births again (5.17).

    A boolean metric 'Node Control/Rebirth' set to true [tck-id-operational-behavior-data-
    commands-ncmd-rebirth-name] [tck-id-operational-behavior-data-commands-ncmd-rebirth-value],
    a payload timestamp [tck-id-topics-ncmd-timestamp] and no seq [tck-id-payloads-ncmd-seq].
    """
    metric = Metric(
        name=REBIRTH_METRIC, timestamp_ms=timestamp_ms, datatype=DataType.BOOLEAN, value=True
    )
    return encode_payload(Payload(timestamp_ms=timestamp_ms, metrics=(metric,)))


def _encode_metric(metric: Metric, out: _pb.Payload.Metric, datatype_of: DatatypeOf | None) -> None:
    where = f"metric {metric.label}"
    if metric.name is not None:
        out.name = metric.name
    if metric.alias is not None:
        out.alias = _u64(metric.alias, f"{where}: alias")
    if metric.timestamp_ms is not None:
        out.timestamp = _u64(metric.timestamp_ms, f"{where}: timestamp")
    if metric.datatype is not None:
        out.datatype = int(metric.datatype)
    if metric.is_historical:
        out.is_historical = True
    if metric.is_transient:
        out.is_transient = True
    if metric.is_null:
        out.is_null = True
        if metric.value is not None:
            raise PayloadError(f"{where} is marked null but has a value")
    if metric.properties:
        _encode_properties(metric.properties, out.properties, where)
    value = metric.value
    if value is None:
        return
    if isinstance(value, Unsupported):
        target = out.template_value if value.kind == "template_value" else out.extension_value
        target.ParseFromString(value.raw)
        return
    datatype = metric.datatype
    if datatype is None and datatype_of is not None:
        datatype = datatype_of(metric.name, metric.alias)
    if datatype is None or datatype == DataType.UNKNOWN:
        raise PayloadError(f"{where}: a value needs a datatype to be encoded")
    if datatype == DataType.DATASET:
        if not isinstance(value, DataSet):
            raise PayloadError(f"{where}: a DataSet value must be a DataSet")
        _encode_dataset(value, out.dataset_value, where)
    elif datatype in _BYTES:
        if not isinstance(value, bytes):
            raise PayloadError(f"{where}: a {datatype.name} value must be bytes")
        out.bytes_value = value
    elif datatype in _ARRAYS:
        if not isinstance(value, tuple):
            raise PayloadError(f"{where}: a {datatype.name} value must be a tuple")
        out.bytes_value = _pack_array(datatype, value, where)
    else:
        _set_scalar(out, datatype, value, where)


def _set_scalar(out: _ScalarOneof, datatype: DataType, value: object, where: str) -> None:
    if datatype in _INTEGERS:
        bits, signed = _INTEGERS[datatype]
        if not isinstance(value, int) or isinstance(value, bool):
            raise PayloadError(f"{where}: a {datatype.name} value must be an int")
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if not low <= value <= high:
            raise PayloadError(f"{where}: {value} is outside {datatype.name} ({low}..{high})")
        # Negative values are sign-extended to the carrier's width, as the reference
        # implementation does; see the module docstring.
        if bits <= 32:
            out.int_value = value & _U32
        else:
            out.long_value = value & _U64
    elif datatype in (DataType.FLOAT, DataType.DOUBLE):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise PayloadError(f"{where}: a {datatype.name} value must be a float")
        number = float(value)
        if datatype == DataType.FLOAT:
            if math.isfinite(number) and abs(number) > _FLOAT32_MAX:
                raise PayloadError(f"{where}: {number} is outside the range of a Float")
            out.float_value = number
        else:
            out.double_value = number
    elif datatype == DataType.BOOLEAN:
        if not isinstance(value, bool):
            raise PayloadError(f"{where}: a Boolean value must be a bool")
        out.boolean_value = value
    elif datatype in _STRINGS:
        if not isinstance(value, str):
            raise PayloadError(f"{where}: a {datatype.name} value must be a str")
        out.string_value = value
    else:
        raise PayloadError(f"{where}: a {datatype.name} value is not a scalar")


def _encode_dataset(ds: DataSet, out: _pb.Payload.DataSet, where: str) -> None:
    if len(ds.types) != len(ds.columns):
        raise PayloadError(
            f"{where}: DataSet has {len(ds.columns)} columns and {len(ds.types)} types"
        )
    for t in ds.types:
        if t not in BASIC_TYPES:
            raise PayloadError(f"{where}: DataSet column type {t.name} is not a basic type")
    out.num_of_columns = len(ds.columns)
    out.columns.extend(ds.columns)
    out.types.extend(int(t) for t in ds.types)
    for r, row in enumerate(ds.rows):
        if len(row) != len(ds.columns):
            raise PayloadError(
                f"{where}: DataSet row {r} has {len(row)} values for {len(ds.columns)} columns"
            )
        pb_row = out.rows.add()
        for cell, t in zip(row, ds.types, strict=True):
            element = pb_row.elements.add()
            if cell is not None:
                _set_scalar(element, t, cell, f"{where}: row {r}")


def _pack_array(datatype: DataType, values: tuple[object, ...], where: str) -> bytes:
    if datatype == DataType.BOOLEAN_ARRAY:
        if not all(isinstance(v, bool) for v in values):
            raise PayloadError(f"{where}: a BooleanArray holds bools")
        packed = bytearray((len(values) + 7) // 8)
        for i, v in enumerate(values):
            if v:
                packed[i // 8] |= 0x80 >> (i % 8)
        return struct.pack("<I", len(values)) + bytes(packed)
    if datatype == DataType.STRING_ARRAY:
        out = bytearray()
        for v in values:
            if not isinstance(v, str) or "\x00" in v:
                raise PayloadError(f"{where}: a StringArray holds strings without NUL characters")
            out += v.encode("utf-8") + b"\x00"
        return bytes(out)
    code = _PACKED[datatype]
    try:
        if code in "fd":
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                raise PayloadError(f"{where}: a {datatype.name} holds floats")
        elif not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise PayloadError(f"{where}: a {datatype.name} holds ints")
        return struct.pack(f"<{len(values)}{code}", *values)
    except (struct.error, OverflowError) as err:
        raise PayloadError(f"{where}: {datatype.name} item out of range: {err}") from None


def _encode_properties(props: Properties, out: _pb.Payload.PropertySet, where: str) -> None:
    for key, prop in props.items():
        out.keys.append(key)
        pv = out.values.add()
        here = f"{where}: property {key!r}"
        if prop.datatype is not None:
            pv.type = int(prop.datatype)
        if prop.is_null:
            pv.is_null = True
        value = prop.value
        if value is None:
            continue
        if isinstance(value, Unsupported):
            pv.extension_value.ParseFromString(value.raw)
        elif isinstance(value, Mapping):
            _encode_properties(value, pv.propertyset_value, here)
        elif isinstance(value, tuple):
            for item in value:
                _encode_properties(item, pv.propertysets_value.propertyset.add(), here)
        elif prop.datatype is None or prop.datatype not in BASIC_TYPES:
            raise PayloadError(f"{here}: a scalar property needs a basic datatype")
        else:
            _set_scalar(pv, prop.datatype, value, here)


def _u64(value: int, where: str) -> int:
    if isinstance(value, bool) or not 0 <= value <= _U64:
        raise PayloadError(f"{where} must be an unsigned 64-bit integer, not {value!r}")
    return value


# -------------------------------------------------------------------------------- STATE (JSON)


def decode_state(data: bytes) -> HostState:
    """Decode a STATE payload ``{"online": bool, "timestamp": ms}`` (4.2.3.1.2, 4.2.3.2.2)."""
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise PayloadError('a STATE payload is UTF-8 JSON like {"online": true, ...}') from None
    if not isinstance(doc, dict):
        raise PayloadError("a STATE payload is a JSON object")
    online, timestamp = doc.get("online"), doc.get("timestamp")
    if not isinstance(online, bool):
        raise PayloadError("a STATE payload needs a boolean 'online'")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        raise PayloadError("a STATE payload needs 'timestamp' in milliseconds since the epoch")
    return HostState(online, timestamp)


def encode_state(state: HostState) -> bytes:
    """The STATE payload a host application publishes about itself."""
    return json.dumps({"online": state.online, "timestamp": state.timestamp_ms}).encode()
