"""OPC UA values to Kiln values and back, and NodeId strings. Pure: no sockets, no clock, and
no OPC UA library (asyncua's DataValues are read through the attributes Part 4 names; the one
step that builds asyncua objects, `variants`, sits beside the client).

Reading (`decode`): a DataValue (Part 4, 7.11) becomes (value, source_us, quality).

* The value is a Kiln scalar. Boolean -> bool; SByte..UInt64 -> int; Float, Double -> float
  (a Float is the exact binary32 value widened, so 21.3 shows as 21.299999237060547: faithful,
  not pretty); String -> str; LocalizedText -> its text; Guid -> its canonical string;
  StatusCode -> its 32-bit code; DateTime -> an ISO 8601 string in UTC with microseconds, e.g.
  "2026-01-01T06:00:00.000000+00:00". DateTime is a *value* here (a batch start, a last
  maintenance), and an epoch integer would be mistaken for a counter on every screen and in
  every aggregate; the ISO form is unambiguous and is what a write-back accepts again.
  A null String or LocalizedText is "" (an empty text is still a text); any other null, such as
  a Null variant or the null DateTime, decodes as None: "no value", which the connector
  reports with the last known value or not at all.
* ByteString, XmlElement, NodeId, QualifiedName, ExtensionObject (structures), arrays and
  matrices have no Kiln scalar form: `Unsupported`, which the connector counts as malformed.
* source_us is the SourceTimestamp, else the ServerTimestamp (some servers stamp only that),
  else the receive time. The OPC UA null DateTime (Part 6, 5.2.2.5: 1601-01-01) counts as absent.
* quality is the StatusCode unchanged (Kiln qualities are OPC UA StatusCodes, `kiln.core.quality`),
  info bits included, so Bad_SensorFailure from the server is Bad_SensorFailure in the historian.

Writing (`encode`): a Kiln scalar becomes the value of a Variant of the node's own built-in type
(`variants.to_variant` wraps it), with range checks, because servers refuse a write whose type differs from the node's DataType
(Bad_TypeMismatch, Part 4, 5.10.4) and saying so before sending is clearer.

NodeIds (`parse_node_id`): the string form of Part 6, 5.3.1.10, "ns=2;s=Line1.Temp",
"ns=3;i=1001", "i=2258", "ns=2;g=<uuid>", "ns=2;b=<base64>", and "nsu=<uri>;s=..." whose
namespace index is looked up on the server (indexes may change when a server is reconfigured,
URIs do not).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, Literal, Protocol

from kiln.core.values import Scalar
from kiln.model import DataType


class BuiltinType(IntEnum):
    """The built-in data types of Part 6, 5.1.2, by their ids (asyncua's `ua.VariantType`
    holds the same numbers and compares equal to these)."""

    Null = 0
    Boolean = 1
    SByte = 2
    Byte = 3
    Int16 = 4
    UInt16 = 5
    Int32 = 6
    UInt32 = 7
    Int64 = 8
    UInt64 = 9
    Float = 10
    Double = 11
    String = 12
    DateTime = 13
    Guid = 14
    ByteString = 15
    XmlElement = 16
    NodeId = 17
    ExpandedNodeId = 18
    StatusCode = 19
    QualifiedName = 20
    LocalizedText = 21
    ExtensionObject = 22
    DataValue = 23
    Variant = 24
    DiagnosticInfo = 25


class _StatusCode(Protocol):
    @property
    def value(self) -> int: ...


class _Variant(Protocol):
    @property
    def Value(self) -> Any: ...
    @property
    def VariantType(self) -> int: ...
    @property
    def is_array(self) -> bool | None: ...


class DataValue(Protocol):
    """What `decode` reads of a DataValue (Part 4, 7.11)."""

    @property
    def Value(self) -> _Variant | None: ...
    @property
    def StatusCode(self) -> _StatusCode | None: ...
    @property
    def SourceTimestamp(self) -> datetime | None: ...
    @property
    def ServerTimestamp(self) -> datetime | None: ...


class NodeIdLike(Protocol):
    """What `value_type` reads of a DataType's NodeId."""

    @property
    def NamespaceIndex(self) -> int: ...
    @property
    def Identifier(self) -> object: ...


class Unsupported(ValueError):
    """A value Kiln cannot carry as a scalar (a ByteString, a structure, an array, ...)."""


# -- reading ----------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# Part 6, 5.2.2.5: a DateTime of 0 (1601-01-01) or less means "null"; asyncua decodes it so.
_UA_NULL_TIME = datetime(1601, 1, 1, tzinfo=UTC)

VT = BuiltinType
_GOOD = 0  # StatusCode Good (Part 4, 7.39)


def _datetime_value(dt: datetime | None) -> str | None:
    if dt is None or dt <= _UA_NULL_TIME:
        return None
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _localized(v: Any) -> str:
    return "" if v is None or v.Text is None else str(v.Text)


_DECODERS: dict[int, Callable[[Any], Scalar | None]] = {
    VT.Boolean: bool,
    VT.SByte: int,
    VT.Byte: int,
    VT.Int16: int,
    VT.UInt16: int,
    VT.Int32: int,
    VT.UInt32: int,
    VT.Int64: int,
    VT.UInt64: int,
    VT.Float: float,
    VT.Double: float,
    VT.String: _text,
    VT.LocalizedText: _localized,
    VT.DateTime: _datetime_value,
    VT.Guid: lambda v: None if v is None else str(v),
    VT.StatusCode: lambda v: int(v.value),
    VT.Null: lambda v: None,
}

NUMERIC_TYPES = frozenset(
    {VT.SByte, VT.Byte, VT.Int16, VT.UInt16, VT.Int32, VT.UInt32, VT.Int64, VT.UInt64}
    | {VT.Float, VT.Double}
)
"""The built-in types a deadband applies to (Part 4, 7.22.2: numeric Variables only)."""


def _micros(dt: datetime) -> int:
    return (dt - _EPOCH) // _US


def decode(dv: DataValue | None, receive_us: int) -> tuple[Scalar | None, int, int]:
    """(value, source_us, quality) of a DataValue; value None means "no value" (null).

    Raises `Unsupported` for a value with no Kiln scalar form.
    """
    if dv is None:
        return None, receive_us, _GOOD
    status = dv.StatusCode
    quality = 0 if status is None else int(status.value)
    ts = dv.SourceTimestamp
    if ts is None or ts <= _UA_NULL_TIME:
        ts = dv.ServerTimestamp
    source_us = receive_us if ts is None or ts <= _UA_NULL_TIME else _micros(ts)
    variant = dv.Value
    if variant is None:
        return None, source_us, quality
    if variant.is_array:
        raise Unsupported(f"an array of {_type_name(variant.VariantType)}")
    decoder = _DECODERS.get(variant.VariantType)
    if decoder is None:
        raise Unsupported(f"data type {_type_name(variant.VariantType)}")
    return decoder(variant.Value), source_us, quality


def _type_name(vtype: object) -> str:
    return str(getattr(vtype, "name", vtype))


_KNOWN = frozenset(int(t) for t in BuiltinType)


def _builtin(vtype: int) -> BuiltinType | int:
    return BuiltinType(vtype) if vtype in _KNOWN else vtype


# Abstract and derived DataTypes of namespace 0 whose values travel as a built-in type
# (Part 3, 8 and Part 5, 12), for nodes whose DataType is not itself a built-in type.
_DERIVED: dict[int, BuiltinType] = {
    26: VT.Double,  # Number: the concrete type comes with each value
    27: VT.Int64,  # Integer
    28: VT.UInt64,  # UInteger
    29: VT.Int32,  # Enumeration (and its subtypes are enumerations too; see below)
    288: VT.UInt32,  # IntegerId
    289: VT.UInt32,  # Counter
    290: VT.Double,  # Duration
    294: VT.DateTime,  # UtcTime
    295: VT.String,  # LocaleId
    12878: VT.String,  # NormalizedString
    12879: VT.String,  # DecimalString
    12880: VT.String,  # DurationString
    12881: VT.String,  # TimeString
    12882: VT.String,  # DateString
    11737: VT.UInt64,  # BitFieldMaskDataType
    15031: VT.Byte,  # AccessLevelType
    15406: VT.UInt32,  # AccessLevelExType
    15033: VT.Byte,  # EventNotifierType
    256: VT.UInt32,  # Index
}


_BASE_DATA_TYPE = 24  # "any type": id 24 is also VariantType.Variant, which it does not mean


def value_type(data_type: NodeIdLike | None, current: int | None = None) -> BuiltinType | None:
    """The built-in type a node's values travel as: its DataType when that is a built-in type,
    else the type of its current value (a Number node holds Int32s or Doubles), else what a
    well-known derived DataType of namespace 0 is built on; None when it cannot be told."""
    ident = None
    if data_type is not None and data_type.NamespaceIndex == 0:
        ident = data_type.Identifier if isinstance(data_type.Identifier, int) else None
    if ident is not None and 1 <= ident <= 25 and ident != _BASE_DATA_TYPE:
        return BuiltinType(ident)
    if current is not None and current != VT.Null and current in _KNOWN:
        return BuiltinType(current)
    return None if ident is None else _DERIVED.get(ident)


def tag_type(vtype: int | None) -> DataType | None:
    """The asset model's data type of a node whose values travel as `vtype` (None when they
    have no Kiln form)."""
    if not decodable(vtype):
        return None
    if vtype == VT.Boolean:
        return DataType.BOOL
    if vtype in (VT.Float, VT.Double):
        return DataType.FLOAT
    if vtype in NUMERIC_TYPES or vtype == VT.StatusCode:
        return DataType.INT
    return DataType.STRING  # text, and DateTime as ISO 8601 (above)


def decodable(vtype: int | None) -> bool:
    """True if values of this built-in type have a Kiln scalar form."""
    return vtype is not None and vtype != VT.Null and vtype in _DECODERS


# -- writing ----------------------------------------------------------------------------------

_INT_RANGES: dict[int, tuple[int, int]] = {
    VT.SByte: (-(2**7), 2**7 - 1),
    VT.Byte: (0, 2**8 - 1),
    VT.Int16: (-(2**15), 2**15 - 1),
    VT.UInt16: (0, 2**16 - 1),
    VT.Int32: (-(2**31), 2**31 - 1),
    VT.UInt32: (0, 2**32 - 1),
    VT.Int64: (-(2**63), 2**63 - 1),
    VT.UInt64: (0, 2**64 - 1),
}
_FLOAT_MAX = 3.4028234663852886e38  # the largest finite binary32


def encode(value: Scalar, vtype: int) -> bool | int | float | str | datetime:
    """The value a Variant of built-in type `vtype` holds for `value` (a LocalizedText's text,
    a DateTime as an aware UTC datetime); ValueError saying what fits otherwise."""
    name = _type_name(_builtin(vtype))
    if vtype == VT.Boolean:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"{value!r} is not a Boolean: give true or false")
    if vtype in _INT_RANGES:
        low, high = _INT_RANGES[vtype]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not a number; the node is {name} ({low}..{high})")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{value!r} is not a whole number; the node is {name}")
            value = int(value)
        if not low <= value <= high:
            raise ValueError(f"{value} is outside the range of {name} ({low}..{high})")
        return value
    if vtype in (VT.Float, VT.Double):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not a number; the node is {name}")
        number = float(value)
        if isinstance(value, int) and number != value:
            raise ValueError(f"{value} cannot be represented exactly as {name}")
        if vtype == VT.Float and math.isfinite(number) and abs(number) > _FLOAT_MAX:
            raise ValueError(f"{value} is outside the range of Float (about ±3.4e38)")
        return number
    if vtype == VT.String:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a text; the node is String")
        return value
    if vtype == VT.LocalizedText:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a text; the node is LocalizedText")
        return value
    if vtype == VT.DateTime:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a date and time: give ISO 8601 with a time zone")
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not ISO 8601, e.g. 2026-01-01T06:00:00+00:00") from None
        if dt.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone: add +00:00 (or Z) for UTC")
        return dt.astimezone(UTC)
    raise ValueError(f"writing a {name} is not supported")


# -- NodeIds ----------------------------------------------------------------------------------

_NODE_ID = re.compile(r"(?:ns=(?P<ns>\d+);|nsu=(?P<nsu>[^;]+);)?(?P<kind>[isgb])=(?P<id>.+)", re.S)
_MAX_UINT32 = 2**32 - 1
_MAX_UINT16 = 2**16 - 1
_MAX_STRING_ID = 4096  # Part 3, 8.2.4 leaves the length open; 4096 characters bounds input


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A parsed NodeId string; `namespace_uri` set means the index is looked up on the server."""

    text: str
    kind: Literal["i", "s", "g", "b"]
    identifier: int | str | uuid.UUID | bytes
    namespace: int = 0
    namespace_uri: str | None = None

    def namespace_index(self, namespaces: Sequence[str] = ()) -> int:
        """The namespace index: given, or its URI looked up in the server's NamespaceArray."""
        if self.namespace_uri is None:
            return self.namespace
        try:
            return list(namespaces).index(self.namespace_uri)
        except ValueError:
            raise LookupError(
                f"node {self.text}: the server has no namespace {self.namespace_uri!r}"
            ) from None


def parse_node_id(text: str) -> NodeRef:
    """Parse and check a NodeId string; ValueError with the accepted forms otherwise."""
    m = _NODE_ID.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(
            f"{text!r} is not a NodeId: use ns=<index>;<type>=<id> with type i (number), "
            "s (string), g (GUID) or b (base64), e.g. ns=2;s=Line1.Temp or ns=3;i=1001 "
            "(or nsu=<namespace URI>;s=... )"
        )
    ns_text, uri, kind, ident = m["ns"], m["nsu"], m["kind"], m["id"]
    ns = int(ns_text) if ns_text is not None else 0
    if ns > _MAX_UINT16:
        raise ValueError(f"{text!r}: namespace index {ns} is above {_MAX_UINT16}")
    identifier: int | str | uuid.UUID | bytes
    if kind == "i":
        if not ident.isdigit() or int(ident) > _MAX_UINT32:
            raise ValueError(f"{text!r}: a numeric identifier is 0..{_MAX_UINT32}")
        identifier = int(ident)
    elif kind == "s":
        if len(ident) > _MAX_STRING_ID:
            raise ValueError(f"{text!r}: the string identifier is over {_MAX_STRING_ID} long")
        identifier = ident
    elif kind == "g":
        try:
            identifier = uuid.UUID(ident)
        except ValueError:
            raise ValueError(f"{text!r}: {ident!r} is not a GUID") from None
    else:
        try:
            identifier = base64.b64decode(ident, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{text!r}: {ident!r} is not base64") from None
    return NodeRef(text.strip(), kind, identifier, ns, uri)  # type: ignore[arg-type]
