"""Sparkplug B data messages decoded straight into columns: the host's hot path.

A plant sends NDATA and DDATA all day, a hundred metrics or more in each, and nearly every
metric is a number named by its alias, with its timestamp (6.4.6). `decode_data` copies those
from the protobuf message into columns with no object per metric. A metric that is anything
else (a property set, a null, historical or transient, a type that needs interpreting, a metric
the birth did not define, a name that is not UTF-8, a number that is not finite) is decoded in
full by `codec.decode_metric` and handed back apart, so the result says exactly what
`codec.decode_payload` would, only faster; property tests (here and in `tests/fuzz`) hold the
two to that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from kiln.connectors.sparkplug import sparkplug_b_pb2 as _pb
from kiln.connectors.sparkplug.codec import DECODE_ERRORS, DataType, Metric, decode_metric
from kiln.connectors.sparkplug.errors import PayloadError
from kiln.core.values import Scalar

KeyT = TypeVar("KeyT")

# The datatypes whose value travels in one field and needs at most a sign (6.4.16): the field,
# and the carrier's width when the value is signed (two's complement in the carrier, which is
# also what the codec reads for Int32 and Int64). Narrower integers, strings (which need a
# UTF-8 check) and everything else take the full decode.
_CARRIED: dict[DataType, tuple[str, int]] = {
    DataType.DOUBLE: ("double_value", 0),
    DataType.FLOAT: ("float_value", 0),
    DataType.BOOLEAN: ("boolean_value", 0),
    DataType.INT32: ("int_value", 32),
    DataType.UINT32: ("int_value", 0),
    DataType.INT64: ("long_value", 64),
    DataType.UINT64: ("long_value", 0),
    DataType.DATETIME: ("long_value", 0),
}


@dataclass(frozen=True, slots=True)
class Defined(Generic[KeyT]):
    """A metric as its birth defined it: the caller's key for it and its datatype."""

    key: KeyT
    datatype: DataType | None
    carrier: str | None = field(init=False)  # the value field a plain value travels in
    wrap: int = field(init=False)  # 2**bits of a signed carrier, else 0

    def __post_init__(self) -> None:
        carried = _CARRIED.get(self.datatype) if self.datatype is not None else None
        carrier, bits = carried if carried is not None else (None, 0)
        object.__setattr__(self, "carrier", carrier)
        object.__setattr__(self, "wrap", 1 << bits if bits else 0)


@dataclass(slots=True)
class DataColumns(Generic[KeyT]):
    """A decoded data message: its plain metrics as columns, every other metric in full.

    `source_ms` is each metric's own timestamp, else the payload's, else `default_ms`. The
    columns keep the message's order among themselves; `others` keep theirs.
    """

    timestamp_ms: int | None
    seq: int | None
    keys: list[KeyT]
    values: list[Scalar]
    source_ms: list[int]
    others: list[Metric]


def decode_data(
    data: bytes,
    aliases: Mapping[int, Defined[KeyT]],
    names: Mapping[str, Defined[KeyT]],
    default_ms: int,
) -> DataColumns[KeyT]:
    """Decode an NDATA or DDATA payload against its birth's metrics; raise PayloadError for
    anything that is not a Sparkplug B payload (nothing is returned then, as with
    `decode_payload`)."""
    try:
        return _columns(_pb.Payload.FromString(bytes(data)), aliases, names, default_ms)
    except PayloadError:
        raise
    except DECODE_ERRORS as err:
        raise PayloadError(f"not a Sparkplug B payload: {err}") from None


def _columns(
    message: _pb.Payload,
    aliases: Mapping[int, Defined[KeyT]],
    names: Mapping[str, Defined[KeyT]],
    default_ms: int,
) -> DataColumns[KeyT]:
    if message.HasField("uuid") and not isinstance(message.uuid, str):
        raise PayloadError("payload uuid is not valid UTF-8")  # as decode_payload says
    timestamp_ms = message.timestamp if message.HasField("timestamp") else None
    fallback_ms = timestamp_ms if timestamp_ms is not None else default_ms
    keys: list[KeyT] = []
    values: list[Scalar] = []
    source_ms: list[int] = []
    others: list[Metric] = []

    def datatype_of(name: str | None, alias: int | None) -> DataType | None:
        found = aliases.get(alias) if alias is not None else None
        if found is None and name is not None:
            found = names.get(name)
        return found.datatype if found is not None else None

    for m in message.metrics:
        has = m.HasField
        # 6.4.6 [tck-id-payloads-alias-data-cmd-requirement]: by alias when the birth gave one.
        if has("alias"):
            found = aliases.get(m.alias)
        elif has("name"):
            found = names.get(m.name)  # a name that is not valid UTF-8 (bytes) is not found
        else:
            found = None
        kind = m.WhichOneof("value")
        if (
            found is None
            or kind is None
            or kind != found.carrier
            or m.is_null
            or m.is_historical
            or m.is_transient
            or has("properties")
            or (has("datatype") and m.datatype != found.datatype)
            # A name the full decode refuses (bytes, not UTF-8) must be refused here too,
            # even when the metric is found by its alias.
            or (has("name") and not isinstance(m.name, str))
        ):
            others.append(decode_metric(m, datatype_of))
            continue
        value: float = getattr(m, kind)  # a float, an int or a bool: never a str here
        if value - value:  # NaN or an infinity (x - x is 0 for every finite number)
            others.append(decode_metric(m, datatype_of))  # the session gives it a Bad quality
            continue
        wrap = found.wrap
        if wrap and value >= wrap >> 1:
            value -= wrap  # a signed integer's two's complement in its carrier
        keys.append(found.key)
        values.append(value)
        source_ms.append(m.timestamp if has("timestamp") else fallback_ms)
    return DataColumns(
        timestamp_ms=timestamp_ms,
        seq=message.seq if message.HasField("seq") else None,
        keys=keys,
        values=values,
        source_ms=source_ms,
        others=others,
    )
