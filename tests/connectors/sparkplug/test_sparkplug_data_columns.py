"""The columnar decode of data messages says exactly what the full decode says.

`decode_data` is the host's fast path; `decode_payload` is the reference. For any message (typed
metrics by alias or by name, with or without a datatype, null, historical, transient, with
properties, unknown to the birth; and hostile protobuf) both raise PayloadError, or both give
the same metrics: each plain one in the columns, in order, and every other one in `others`.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sparkplug_codec import SCALARS, hostile_messages, properties, typed_values

from kiln.connectors.sparkplug import sparkplug_b_pb2 as pb
from kiln.connectors.sparkplug.codec import (
    DataType,
    Metric,
    Payload,
    decode_payload,
    encode_payload,
)
from kiln.connectors.sparkplug.data_columns import DataColumns, Defined, decode_data
from kiln.connectors.sparkplug.errors import PayloadError

DEFAULT_MS = 1_700_000_000_000
FAST_TYPES = [
    DataType.DOUBLE,
    DataType.FLOAT,
    DataType.BOOLEAN,
    DataType.INT32,
    DataType.UINT32,
    DataType.INT64,
    DataType.UINT64,
    DataType.DATETIME,
]

Birth = tuple[dict[int, Defined[str]], dict[str, Defined[str]]]


def _fast_typed() -> st.SearchStrategy[tuple[DataType, Any]]:
    fast = st.sampled_from(FAST_TYPES).flatmap(lambda t: st.tuples(st.just(t), SCALARS[t]))
    return fast | typed_values()  # mostly the fast path's types, and every other one


@st.composite
def data_messages(draw: st.DrawFn) -> tuple[bytes, Birth]:
    """An encoded NDATA and the birth it is decoded against."""
    aliases: dict[int, Defined[str]] = {}
    names: dict[str, Defined[str]] = {}
    metrics = []
    drop_datatype = []
    null_with_value = []
    for i in range(draw(st.integers(0, 6))):
        datatype, value = draw(_fast_typed())
        name = f"m{i}"
        if draw(st.integers(0, 5)) > 0:  # usually defined by the birth, sometimes another type
            other = st.sampled_from(FAST_TYPES) | st.sampled_from(DataType)
            born_as = datatype if draw(st.integers(0, 3)) > 0 else draw(other)
            aliases[i] = names[name] = Defined(f"key-{name}", born_as)
        by = draw(st.sampled_from(["alias", "name", "both"]))
        is_null = draw(st.integers(0, 7)) == 0
        metrics.append(
            Metric(
                name=name if by != "alias" else None,
                alias=i if by != "name" else None,
                timestamp_ms=draw(st.none() | st.integers(0, 2**64 - 1)),
                datatype=datatype,
                value=None if is_null else value,
                is_historical=draw(st.integers(0, 7)) == 0,
                is_transient=draw(st.integers(0, 7)) == 0,
                is_null=is_null,
                properties=draw(properties) if draw(st.integers(0, 7)) == 0 else {},
            )
        )
        # Data messages usually leave the datatype out; a hostile one marks a value null.
        drop_datatype.append(draw(st.booleans()))
        null_with_value.append(draw(st.integers(0, 7)) == 0)
    payload = Payload(
        timestamp_ms=draw(st.none() | st.integers(0, 2**64 - 1)),
        metrics=tuple(metrics),
        seq=draw(st.none() | st.integers(0, 255)),
    )
    message = pb.Payload.FromString(encode_payload(payload))
    for m, drop, null in zip(message.metrics, drop_datatype, null_with_value, strict=True):
        if drop:
            m.ClearField("datatype")
        if null:
            m.is_null = True
    return message.SerializeToString(), (aliases, names)


def _datatype_of(birth: Birth) -> Any:
    aliases, names = birth

    def datatype_of(name: str | None, alias: int | None) -> DataType | None:
        found = aliases.get(alias) if alias is not None else None
        if found is None and name is not None:
            found = names.get(name)
        return found.datatype if found is not None else None

    return datatype_of


def _decode_both(data: bytes, birth: Birth) -> tuple[Any, Any]:
    try:
        slow: Payload | str = decode_payload(data, _datatype_of(birth))
    except PayloadError:
        slow = "PayloadError"
    try:
        fast: DataColumns[str] | str = decode_data(data, birth[0], birth[1], DEFAULT_MS)
    except PayloadError:
        fast = "PayloadError"
    return slow, fast


def _assert_same(slow: Payload | str, fast: DataColumns[str] | str, birth: Birth) -> None:
    if isinstance(slow, str) or isinstance(fast, str):
        assert slow == fast
        return
    assert (fast.timestamp_ms, fast.seq) == (slow.timestamp_ms, slow.seq)
    aliases, names = birth
    fallback = slow.timestamp_ms if slow.timestamp_ms is not None else DEFAULT_MS
    columns = list(zip(fast.keys, fast.values, fast.source_ms, strict=True))
    others = list(fast.others)
    for metric in slow.metrics:
        if others and repr(others[0]) == repr(metric):
            others.pop(0)
            continue
        # Otherwise it must be the next column entry: a plain, current, Good value.
        assert columns, f"{metric} is in neither the columns nor the others"
        key, value, source_ms = columns.pop(0)
        found = aliases.get(metric.alias) if metric.alias is not None else names.get(metric.name)
        assert found is not None and key == found.key
        assert repr(value) == repr(metric.value) and type(value) is type(metric.value)
        expected_ms = metric.timestamp_ms if metric.timestamp_ms is not None else fallback
        assert source_ms == expected_ms
        assert not (metric.is_null or metric.is_historical or metric.is_transient)
        assert not metric.properties
    assert columns == [] and others == []


@settings(max_examples=400, deadline=None)
@given(data_messages())
def test_columns_say_what_the_full_decode_says(message: tuple[bytes, Birth]) -> None:
    data, birth = message
    slow, fast = _decode_both(data, birth)
    _assert_same(slow, fast, birth)


@settings(max_examples=300, deadline=None)
@given(hostile_messages(), st.lists(st.sampled_from(DataType), min_size=4, max_size=4))
def test_hostile_messages_fail_or_agree(data: bytes, types: list[DataType]) -> None:
    aliases = {i: Defined(f"k{i}", t) for i, t in enumerate(types)}
    names = {"": aliases[0], "a": aliases[1]}
    slow, fast = _decode_both(data, (aliases, names))
    _assert_same(slow, fast, (aliases, names))


def test_plain_metrics_by_alias_come_out_as_columns() -> None:
    birth = {1: Defined("temp", DataType.DOUBLE), 2: Defined("count", DataType.INT64)}
    data = encode_payload(
        Payload(
            1_000,
            (
                Metric(alias=1, timestamp_ms=990, datatype=DataType.DOUBLE, value=21.5),
                Metric(alias=2, datatype=DataType.INT64, value=-3),  # payload's timestamp
                Metric(alias=9, datatype=DataType.DOUBLE, value=1.0),  # not in the birth
            ),
            seq=4,
        )
    )
    out = decode_data(data, birth, {}, DEFAULT_MS)
    assert (out.keys, out.values, out.source_ms) == (["temp", "count"], [21.5, -3], [990, 1_000])
    assert [m.alias for m in out.others] == [9]
    assert out.seq == 4


def test_garbage_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="not a Sparkplug B payload"):
        decode_data(b"\xff\xff\xff", {}, {}, DEFAULT_MS)


def test_the_message_datatype_wins_over_the_birth() -> None:
    # Born Int32, sent as UInt32: the same carrier, but 3e9 is not -1294967296.
    birth = {1: Defined("count", DataType.INT32)}
    sent = Metric(alias=1, datatype=DataType.UINT32, value=3_000_000_000)
    out = decode_data(encode_payload(Payload(1, (sent,), seq=0)), birth, {}, DEFAULT_MS)
    assert out.keys == [] and [m.value for m in out.others] == [3_000_000_000]


def test_a_null_metric_has_no_value_even_if_one_is_carried() -> None:
    message = pb.Payload(seq=0)
    message.metrics.add(alias=1, double_value=2.5, is_null=True)
    out = decode_data(message.SerializeToString(), {1: Defined("t", DataType.DOUBLE)}, {}, 0)
    assert out.keys == [] and [(m.value, m.is_null) for m in out.others] == [(None, True)]
