"""The Sparkplug B payload codec: round trips for every datatype, the integer carrier rules,
and garbage that must raise PayloadError and nothing else."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.connectors.sparkplug import sparkplug_b_pb2 as pb
from kiln.connectors.sparkplug.codec import (
    BASIC_TYPES,
    DataSet,
    DataType,
    HostState,
    Metric,
    Payload,
    Property,
    Unsupported,
    decode_payload,
    decode_state,
    encode_payload,
    encode_rebirth_request,
    encode_state,
)
from kiln.connectors.sparkplug.errors import PayloadError

U64 = st.integers(0, 2**64 - 1)
INTEGER_RANGES = {
    DataType.INT8: (-(2**7), 2**7 - 1),
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT8: (0, 2**8 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.UINT64: (0, 2**64 - 1),
    DataType.DATETIME: (0, 2**64 - 1),
}
SCALARS: dict[DataType, st.SearchStrategy[Any]] = {
    **{t: st.integers(lo, hi) for t, (lo, hi) in INTEGER_RANGES.items()},
    DataType.FLOAT: st.floats(width=32, allow_nan=False),
    DataType.DOUBLE: st.floats(allow_nan=False),
    DataType.BOOLEAN: st.booleans(),
    DataType.STRING: st.text(),
    DataType.TEXT: st.text(),
    DataType.UUID: st.uuids().map(str),
    DataType.BYTES: st.binary(),
    DataType.FILE: st.binary(),
}
ARRAYS: dict[DataType, st.SearchStrategy[Any]] = {
    DataType.INT8_ARRAY: st.integers(-(2**7), 2**7 - 1),
    DataType.INT16_ARRAY: st.integers(-(2**15), 2**15 - 1),
    DataType.INT32_ARRAY: st.integers(-(2**31), 2**31 - 1),
    DataType.INT64_ARRAY: st.integers(-(2**63), 2**63 - 1),
    DataType.UINT8_ARRAY: st.integers(0, 2**8 - 1),
    DataType.UINT16_ARRAY: st.integers(0, 2**16 - 1),
    DataType.UINT32_ARRAY: st.integers(0, 2**32 - 1),
    DataType.UINT64_ARRAY: U64,
    DataType.FLOAT_ARRAY: st.floats(width=32, allow_nan=False),
    DataType.DOUBLE_ARRAY: st.floats(allow_nan=False),
    DataType.BOOLEAN_ARRAY: st.booleans(),
    DataType.STRING_ARRAY: st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\x00")
    ),
    DataType.DATETIME_ARRAY: U64,
}


@st.composite
def datasets(draw: st.DrawFn) -> DataSet:
    types = tuple(draw(st.lists(st.sampled_from(sorted(BASIC_TYPES)), max_size=4)))
    columns = tuple(draw(st.lists(st.text(max_size=8), min_size=len(types), max_size=len(types))))
    rows = draw(
        st.lists(
            st.tuples(*(st.none() | SCALARS[t] for t in types)),
            max_size=4,
        )
    )
    return DataSet(columns, types, tuple(rows))


def typed_values() -> st.SearchStrategy[tuple[DataType, Any]]:
    scalar = st.sampled_from(sorted(SCALARS)).flatmap(lambda t: st.tuples(st.just(t), SCALARS[t]))
    array = st.sampled_from(sorted(ARRAYS)).flatmap(
        lambda t: st.tuples(st.just(t), st.lists(ARRAYS[t], max_size=10).map(tuple))
    )
    dataset = st.tuples(st.just(DataType.DATASET), datasets())
    return scalar | array | dataset


properties = st.dictionaries(
    st.text(max_size=10),
    st.sampled_from([DataType.INT32, DataType.DOUBLE, DataType.STRING, DataType.BOOLEAN]).flatmap(
        lambda t: st.builds(Property, st.just(t), SCALARS[t])
    )
    | st.builds(Property, st.just(DataType.INT8), st.none(), st.just(True)),
    max_size=3,
)


@st.composite
def metrics(draw: st.DrawFn) -> Metric:
    datatype, value = draw(typed_values())
    is_null = draw(st.booleans())
    return Metric(
        name=draw(st.none() | st.text(max_size=20)),
        alias=draw(st.none() | U64),
        timestamp_ms=draw(st.none() | U64),
        datatype=datatype,
        value=None if is_null else value,
        is_historical=draw(st.booleans()),
        is_transient=draw(st.booleans()),
        is_null=is_null,
        properties=draw(properties),
    )


payloads = st.builds(
    Payload,
    timestamp_ms=st.none() | U64,
    metrics=st.lists(metrics(), max_size=5).map(tuple),
    seq=st.none() | st.integers(0, 255),
    uuid=st.none() | st.text(max_size=10),
    body=st.none() | st.binary(max_size=10),
)


@settings(max_examples=150, deadline=None)
@given(payloads)
def test_every_payload_round_trips(payload: Payload) -> None:
    assert decode_payload(encode_payload(payload)) == payload


@pytest.mark.parametrize("datatype", sorted(SCALARS), ids=lambda t: t.name)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_each_scalar_type_round_trips(datatype: DataType, data: st.DataObject) -> None:
    value = data.draw(SCALARS[datatype])
    metric = Metric(
        name="m", alias=3, timestamp_ms=1_700_000_000_000, datatype=datatype, value=value
    )
    (decoded,) = decode_payload(encode_payload(Payload(metrics=(metric,)))).metrics
    assert decoded == metric
    assert type(decoded.value) is type(value)


@settings(max_examples=60, deadline=None)
@given(datasets())
def test_datasets_round_trip_as_columns_and_rows(ds: DataSet) -> None:
    metric = Metric(name="table", datatype=DataType.DATASET, value=ds)
    (decoded,) = decode_payload(encode_payload(Payload(metrics=(metric,)))).metrics
    assert decoded.value == ds


@pytest.mark.parametrize(
    ("datatype", "bits"), [(DataType.INT8, 8), (DataType.INT16, 16), (DataType.INT32, 32)]
)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_signed_ints_decode_from_either_negative_convention(
    datatype: DataType, bits: int, data: st.DataObject
) -> None:
    value = data.draw(st.integers(-(2 ** (bits - 1)), -1))
    for carried in (value & (2**32 - 1), value & (2**bits - 1), value & (2**64 - 1)):
        message = pb.Payload()
        m = message.metrics.add(name="x", datatype=int(datatype))
        if carried < 2**32:
            m.int_value = carried
        else:
            m.long_value = carried
        (decoded,) = decode_payload(message.SerializeToString()).metrics
        assert decoded.value == value


def test_negative_values_are_sign_extended_to_the_carrier() -> None:
    # The reference implementation's encoding: Int8 -1 -> uint32 0xFFFFFFFF, Int64 -2 -> 2**64-2.
    encoded = encode_payload(
        Payload(
            metrics=(
                Metric(name="a", datatype=DataType.INT8, value=-1),
                Metric(name="b", datatype=DataType.INT64, value=-2),
            )
        )
    )
    message = pb.Payload.FromString(encoded)
    assert message.metrics[0].int_value == 0xFFFFFFFF
    assert message.metrics[1].long_value == 2**64 - 2


def test_uint32_is_accepted_in_long_value_too() -> None:
    message = pb.Payload()
    message.metrics.add(name="u", datatype=int(DataType.UINT32), long_value=4_000_000_000)
    assert decode_payload(message.SerializeToString()).metrics[0].value == 4_000_000_000


@pytest.mark.parametrize(
    ("datatype", "field", "raw"),
    [
        (DataType.UINT8, "int_value", 256),
        (DataType.INT8, "int_value", 300),
        (DataType.UINT32, "long_value", 2**32),
        (DataType.INT16, "long_value", 2**40),
        (DataType.BOOLEAN, "int_value", 1),
        (DataType.FLOAT, "double_value", 1.5),
        (DataType.STRING, "bytes_value", b"x"),
        (DataType.INT32_ARRAY, "bytes_value", b"\x01\x02\x03"),
        (DataType.DATASET, "int_value", 1),
    ],
)
def test_values_that_do_not_fit_their_datatype_are_payload_errors(
    datatype: DataType, field: str, raw: object
) -> None:
    message = pb.Payload()
    metric = message.metrics.add(name="bad", datatype=int(datatype))
    setattr(metric, field, raw)
    with pytest.raises(PayloadError, match="'bad'"):
        decode_payload(message.SerializeToString())


def test_untyped_data_metrics_take_their_datatype_from_the_lookup() -> None:
    message = pb.Payload(seq=4)
    message.metrics.add(alias=7, int_value=0xFE)  # no datatype: the birth said Int8
    payload = decode_payload(
        message.SerializeToString(),
        lambda name, alias: DataType.INT8 if alias == 7 else None,
    )
    assert payload.metrics[0].value == -2
    assert payload.metrics[0].datatype == DataType.INT8
    # Without a lookup the value stays as carried.
    assert decode_payload(message.SerializeToString()).metrics[0].value == 0xFE


def test_templates_survive_as_unsupported_raw_bytes() -> None:
    message = pb.Payload()
    metric = message.metrics.add(name="udt", datatype=int(DataType.TEMPLATE))
    metric.template_value.version = "1"
    metric.template_value.is_definition = True
    metric.template_value.metrics.add(name="inner", datatype=int(DataType.INT32), int_value=5)
    (decoded,) = decode_payload(message.SerializeToString()).metrics
    assert isinstance(decoded.value, Unsupported)
    assert decoded.value.kind == "template_value"
    again = pb.Payload.FromString(encode_payload(Payload(metrics=(decoded,))))
    assert again.metrics[0].template_value == metric.template_value


def test_null_metrics_have_no_value() -> None:
    message = pb.Payload()
    message.metrics.add(name="n", datatype=int(DataType.INT32), is_null=True, int_value=3)
    (decoded,) = decode_payload(message.SerializeToString()).metrics
    assert decoded.is_null and decoded.value is None
    with pytest.raises(PayloadError, match="null but has a value"):
        encode_payload(
            Payload(metrics=(Metric(name="n", datatype=DataType.INT32, value=1, is_null=True),))
        )


@pytest.mark.parametrize(
    ("datatype", "value", "message"),
    [
        (DataType.INT8, 128, "outside INT8"),
        (DataType.UINT16, -1, "outside"),
        (DataType.INT32, True, "must be an int"),
        (DataType.FLOAT, 1e39, "range of a Float"),
        (DataType.BOOLEAN, 1, "must be a bool"),
        (DataType.STRING, b"x", "must be a str"),
        (DataType.BYTES, "x", "must be bytes"),
        (DataType.STRING_ARRAY, ("a\x00b",), "NUL"),
        (DataType.UINT8_ARRAY, (256,), "out of range"),
        (DataType.DATASET, (1, 2), "must be a DataSet"),
        (DataType.TEMPLATE, 5, "not a scalar"),
        (None, 5, "needs a datatype"),
    ],
)
def test_encoding_rejects_values_that_do_not_fit(
    datatype: DataType | None, value: Any, message: str
) -> None:
    with pytest.raises(PayloadError, match=message):
        encode_payload(Payload(metrics=(Metric(name="m", datatype=datatype, value=value),)))


def test_inconsistent_datasets_are_payload_errors() -> None:
    message = pb.Payload()
    ds = message.metrics.add(name="t", datatype=int(DataType.DATASET)).dataset_value
    ds.num_of_columns = 2
    ds.columns.extend(["a", "b"])
    ds.types.extend([int(DataType.INT32), int(DataType.STRING)])
    ds.rows.add().elements.add(int_value=1)  # one value for two columns
    with pytest.raises(PayloadError, match="row 0 has 1 values for 2 columns"):
        decode_payload(message.SerializeToString())
    ds.num_of_columns = 3
    with pytest.raises(PayloadError, match="must agree"):
        decode_payload(message.SerializeToString())


def test_array_byte_layouts_match_the_specification_examples() -> None:
    # 6.4.17 "Array Types": the worked examples (integers, booleans, strings, datetimes).
    def packed(datatype: DataType, value: tuple[Any, ...]) -> bytes:
        metric = Metric(name="a", datatype=datatype, value=value)
        return (
            pb.Payload.FromString(encode_payload(Payload(metrics=(metric,)))).metrics[0].bytes_value
        )

    assert packed(DataType.INT8_ARRAY, (-23, 123)) == bytes([0xE9, 0x7B])
    assert packed(DataType.INT16_ARRAY, (-30000, 30000)) == bytes([0xD0, 0x8A, 0x30, 0x75])
    assert packed(DataType.INT32_ARRAY, (-1, 315338746)) == bytes(
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFA, 0xAF, 0xCB, 0x12]
    )
    assert packed(DataType.UINT32_ARRAY, (52, 3293969225)) == bytes(
        [0x34, 0, 0, 0, 0x49, 0xFB, 0x55, 0xC4]
    )
    bools = (False, False, True, True, False, True, False, False, True, True, False, True)
    assert packed(DataType.BOOLEAN_ARRAY, bools) == bytes([0x0C, 0, 0, 0, 0x34, 0xD0])
    assert packed(DataType.STRING_ARRAY, ("ABC", "hello")) == b"ABC\x00hello\x00"
    assert packed(DataType.DATETIME_ARRAY, (1256102875335,)) == struct.pack("<Q", 1256102875335)
    assert packed(DataType.FLOAT_ARRAY, (1.5,)) == struct.pack("<f", 1.5)


def test_rebirth_request_is_a_boolean_true_node_control_metric_without_seq() -> None:
    payload = decode_payload(encode_rebirth_request(1_700_000_000_123))
    assert payload == Payload(
        timestamp_ms=1_700_000_000_123,
        metrics=(
            Metric(
                name="Node Control/Rebirth",
                timestamp_ms=1_700_000_000_123,
                datatype=DataType.BOOLEAN,
                value=True,
            ),
        ),
    )
    assert payload.seq is None


def test_state_payloads() -> None:
    data = encode_state(HostState(online=True, timestamp_ms=1_668_114_759_262))
    assert data == b'{"online": true, "timestamp": 1668114759262}'
    assert decode_state(data) == HostState(True, 1_668_114_759_262)
    for bad in (b"\xff", b"[]", b'{"online": 1, "timestamp": 5}', b'{"online": false}'):
        with pytest.raises(PayloadError):
            decode_state(bad)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_bytes_raise_payload_error_only(data: bytes) -> None:
    with contextlib.suppress(PayloadError):
        decode_payload(data)


@st.composite
def hostile_messages(draw: st.DrawFn) -> bytes:
    """Well-formed protobuf whose contents break Sparkplug's rules in every way we can think of."""
    message = pb.Payload()
    if draw(st.booleans()):
        message.seq = draw(U64)
    for _ in range(draw(st.integers(0, 3))):
        m = message.metrics.add()
        if draw(st.booleans()):
            m.datatype = draw(st.integers(0, 40))
        if draw(st.booleans()):
            m.name = draw(st.text(max_size=5))
        m.is_null = draw(st.booleans())
        field = draw(
            st.sampled_from(
                [
                    "int_value",
                    "long_value",
                    "float_value",
                    "double_value",
                    "boolean_value",
                    "string_value",
                    "bytes_value",
                    "dataset",
                    "properties",
                    "none",
                ]
            )
        )
        if field == "int_value":
            m.int_value = draw(st.integers(0, 2**32 - 1))
        elif field in ("long_value",):
            m.long_value = draw(U64)
        elif field in ("float_value", "double_value"):
            setattr(m, field, draw(st.floats(width=32)))
        elif field == "boolean_value":
            m.boolean_value = draw(st.booleans())
        elif field == "string_value":
            m.string_value = draw(st.text(max_size=5))
        elif field == "bytes_value":
            m.bytes_value = draw(st.binary(max_size=12))
        elif field == "dataset":
            ds = m.dataset_value
            if draw(st.booleans()):
                ds.num_of_columns = draw(st.integers(0, 3))
            ds.columns.extend(draw(st.lists(st.text(max_size=3), max_size=3)))
            ds.types.extend(draw(st.lists(st.integers(0, 40), max_size=3)))
            for _ in range(draw(st.integers(0, 2))):
                row = ds.rows.add()
                for _ in range(draw(st.integers(0, 3))):
                    row.elements.add(long_value=draw(U64))
        elif field == "properties":
            m.properties.keys.extend(draw(st.lists(st.text(max_size=3), max_size=2)))
            for _ in range(draw(st.integers(0, 2))):
                m.properties.values.add(
                    type=draw(st.integers(0, 40)), int_value=draw(st.integers(0, 2**32 - 1))
                )
    data = message.SerializeToString()
    # Splice in a few random bytes to reach the wire-format error paths as well.
    if data and draw(st.booleans()):
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + draw(st.binary(min_size=1, max_size=3)) + data[at + 1 :]
    return data


@settings(max_examples=500, deadline=None)
@given(hostile_messages())
def test_hostile_but_parseable_messages_raise_payload_error_only(data: bytes) -> None:
    try:
        payload = decode_payload(data)
    except PayloadError:
        return
    assert isinstance(payload, Payload)
