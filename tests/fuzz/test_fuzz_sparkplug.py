"""Fuzzing Sparkplug B payloads: the protobuf decoder, the columnar fast path and the host session.

Properties, for arbitrary bytes, valid payloads with their bytes mutated, and messages built at
the protobuf wire level (so that string fields can carry bytes that are not UTF-8, which the
protobuf library refuses to write):

- `decode_payload` and `decode_data` raise `PayloadError` and nothing else;
- `decode_data` (the host's fast path) says what `decode_payload` says: both refuse, or both
  give the same values;
- a decoded payload encodes again (or is refused with `PayloadError`) and decodes to itself;
- `HostSession.handle` never raises, and a value it hands on as Good is a finite number.

Hypothesis, not atheris; see `fuzz_budget`.
"""

from __future__ import annotations

import math
from typing import Any

from fuzz_budget import fuzz, mutations
from hypothesis import example, given, target
from hypothesis import strategies as st

from kiln.connectors.mqtt.broker import BrokerSettings
from kiln.connectors.sparkplug import sparkplug_b_pb2 as pb
from kiln.connectors.sparkplug.codec import (
    DataType,
    Metric,
    Payload,
    decode_payload,
    encode_payload,
)
from kiln.connectors.sparkplug.config import SparkplugConfig
from kiln.connectors.sparkplug.connector import SparkplugHost
from kiln.connectors.sparkplug.data_columns import DataColumns, Defined, decode_data
from kiln.connectors.sparkplug.errors import PayloadError
from kiln.connectors.sparkplug.session import HostSession, MetricId
from kiln.core.quality import Severity, severity
from kiln.testing.protowire import blob

DEFAULT_MS = 1_700_000_000_000
U64 = st.integers(0, 2**64 - 1)
EDITS = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 2**16), st.binary(max_size=8)), max_size=6
)
# The datatypes of metric 0..N in the birth the fast path decodes against.
BIRTH = [DataType.DOUBLE, DataType.FLOAT, DataType.INT32, DataType.UINT32, DataType.INT64,
         DataType.BOOLEAN, DataType.STRING, DataType.INT8, DataType.DATETIME]  # fmt: skip
ALIASES = {i: Defined(f"k{i}", t) for i, t in enumerate(BIRTH)}
NAMES = {f"m{i}": d for i, d in ALIASES.items()}


# Values in the field each datatype travels in, and some in the wrong one.
CARRIED = st.one_of(
    st.builds(lambda v: {"double_value": v}, st.floats()),
    st.builds(lambda v: {"float_value": v}, st.floats(width=32)),
    st.builds(lambda v: {"int_value": v}, st.integers(0, 2**32 - 1)),
    st.builds(lambda v: {"long_value": v}, U64),
    st.builds(lambda v: {"boolean_value": v}, st.booleans()),
    st.builds(lambda v: {"string_value": v}, st.text(max_size=6)),
    st.builds(lambda v: {"bytes_value": v}, st.binary(max_size=12)),
    st.just({}),
)
# Names and uuids as bytes: UTF-8, or not (a lone continuation byte, a cut sequence, a surrogate).
NOT_UTF8 = st.sampled_from([b"\xff", b"m0\xc3", b"\x80m1", b"\xed\xa0\x80"])
RAW_TEXT = st.text(max_size=6).map(str.encode) | NOT_UTF8 | st.binary(max_size=6)


# The field each birth datatype travels in, with a value that fits.
FITTING = {
    DataType.DOUBLE: st.builds(lambda v: {"double_value": v}, st.floats()),
    DataType.FLOAT: st.builds(lambda v: {"float_value": v}, st.floats(width=32)),
    DataType.INT32: st.builds(lambda v: {"int_value": v}, st.integers(0, 2**32 - 1)),
    DataType.UINT32: st.builds(lambda v: {"int_value": v}, st.integers(0, 2**32 - 1)),
    DataType.INT64: st.builds(lambda v: {"long_value": v}, U64),
    DataType.BOOLEAN: st.builds(lambda v: {"boolean_value": v}, st.booleans()),
    DataType.STRING: st.builds(lambda v: {"string_value": v}, st.text(max_size=6)),
    DataType.INT8: st.builds(lambda v: {"int_value": v}, st.integers(0, 255)),
    DataType.DATETIME: st.builds(lambda v: {"long_value": v}, U64),
}


@st.composite
def wire_messages(draw: st.DrawFn) -> bytes:
    """A payload of metrics named or aliased like the birth's, built field by field: mostly
    well-formed, each metric with one way to be wrong now and then."""
    message = b""
    if draw(st.booleans()):
        message += pb.Payload(timestamp=draw(U64)).SerializeToString()
    if draw(st.booleans()):
        message += pb.Payload(seq=draw(st.integers(0, 300))).SerializeToString()
    if draw(st.integers(0, 7)) == 0:
        message += blob(4, draw(RAW_TEXT))  # uuid
    for _ in range(draw(st.integers(0, 5))):
        i = draw(st.integers(0, len(BIRTH)))  # len(BIRTH): a metric the birth did not define
        fitting = FITTING[BIRTH[i]] if i < len(BIRTH) else CARRIED
        m = pb.Payload.Metric(**draw(fitting if draw(st.integers(0, 5)) else CARRIED))
        by = draw(st.sampled_from(["alias", "name", "both"]))
        if by != "name":
            m.alias = i
        if draw(st.integers(0, 5)) == 0:
            m.datatype = draw(st.sampled_from(BIRTH) | st.integers(0, 40))
        if draw(st.integers(0, 3)) == 0:
            m.timestamp = draw(U64)
        m.is_null = draw(st.integers(0, 7)) == 0
        m.is_historical = draw(st.integers(0, 7)) == 0
        if draw(st.integers(0, 7)) == 0:
            m.properties.keys.append("Quality")
            m.properties.values.add(type=DataType.INT32, int_value=draw(st.integers(0, 600)))
        metric = m.SerializeToString()
        if by != "alias":
            name = draw(RAW_TEXT) if draw(st.integers(0, 5)) == 0 else f"m{i}".encode()
            metric = blob(1, name) + metric
        message += blob(2, metric)
    if draw(st.integers(0, 3)) == 0:
        message = mutations(message, draw(EDITS.map(lambda edits: edits[:1])))
    return message


@st.composite
def valid_payloads(draw: st.DrawFn) -> Payload:
    metrics = []
    for i in range(draw(st.integers(0, 5))):
        datatype = draw(st.sampled_from(BIRTH))
        value: Any = {
            DataType.DOUBLE: st.floats(allow_nan=False),
            DataType.FLOAT: st.floats(width=32, allow_nan=False),
            DataType.INT32: st.integers(-(2**31), 2**31 - 1),
            DataType.UINT32: st.integers(0, 2**32 - 1),
            DataType.INT64: st.integers(-(2**63), 2**63 - 1),
            DataType.BOOLEAN: st.booleans(),
            DataType.STRING: st.text(max_size=8),
            DataType.INT8: st.integers(-128, 127),
            DataType.DATETIME: U64,
        }[datatype]
        metrics.append(
            Metric(
                name=draw(st.none() | st.just(f"m{i}")),
                alias=draw(st.none() | st.just(i)),
                timestamp_ms=draw(st.none() | U64),
                datatype=datatype,
                value=draw(value),
            )
        )
    return Payload(
        timestamp_ms=draw(st.none() | U64),
        metrics=tuple(metrics),
        seq=draw(st.none() | st.integers(0, 255)),
        uuid=draw(st.none() | st.text(max_size=6)),
    )


def mutated_payloads() -> st.SearchStrategy[bytes]:
    return st.builds(lambda p, e: mutations(encode_payload(p), e), valid_payloads(), EDITS)


ANY_BYTES = st.binary(max_size=300) | mutated_payloads() | wire_messages()


def _datatype_of(name: str | None, alias: int | None) -> DataType | None:
    found = ALIASES.get(alias) if alias is not None else None
    if found is None and name is not None:
        found = NAMES.get(name)
    return found.datatype if found is not None else None


def _full(data: bytes) -> Payload | None:
    try:
        return decode_payload(data, _datatype_of)
    except PayloadError:
        return None


def _fast(data: bytes) -> DataColumns[str] | None:
    try:
        return decode_data(data, ALIASES, NAMES, DEFAULT_MS)
    except PayloadError:
        return None


def _same(a: object, b: object) -> bool:
    return repr(a) == repr(b)  # NaN != NaN, but its repr is equal


@fuzz(600)
@given(ANY_BYTES)
def test_decoders_raise_payload_error_only(data: bytes) -> None:
    payload = _full(data)
    _fast(data)
    if payload is not None:
        target(float(len(payload.metrics)), label="metrics decoded")


# Found by this test: a metric found by its alias, whose name is not UTF-8, was taken by the
# fast path and refused by the full decode.
NAME_NOT_UTF8 = b"\x12\x12\n\x01\xff\x10\x00(\x008\x00i\x00\x00\x00\x00\x00\x00\x00\x00"


@fuzz(600)
@given(mutated_payloads() | wire_messages())
@example(NAME_NOT_UTF8)
def test_the_fast_path_says_what_the_full_decode_says(data: bytes) -> None:
    full, fast = _full(data), _fast(data)
    assert (full is None) == (fast is None), f"full decode {full!r}, columns {fast!r}"
    if full is None or fast is None:
        return
    target(float(len(fast.keys)), label="plain metrics")
    assert (fast.timestamp_ms, fast.seq) == (full.timestamp_ms, full.seq)
    fallback = full.timestamp_ms if full.timestamp_ms is not None else DEFAULT_MS
    columns = list(zip(fast.keys, fast.values, fast.source_ms, strict=True))
    others = list(fast.others)
    for metric in full.metrics:
        if others and _same(others[0], metric):
            others.pop(0)
            continue
        assert columns, f"{metric} is in neither the columns nor the others"
        key, value, source_ms = columns.pop(0)
        found = ALIASES.get(metric.alias) if metric.alias is not None else NAMES.get(metric.name)
        assert found is not None and key == found.key
        assert _same(value, metric.value) and type(value) is type(metric.value)
        assert source_ms == (metric.timestamp_ms if metric.timestamp_ms is not None else fallback)
    assert columns == [] and others == []


@fuzz(400)
@given(valid_payloads())
def test_valid_payloads_round_trip(payload: Payload) -> None:
    assert decode_payload(encode_payload(payload)) == payload


@fuzz(400)
@given(ANY_BYTES)
def test_what_decodes_encodes_and_decodes_to_itself(data: bytes) -> None:
    payload = _full(data)
    if payload is None:
        return
    try:
        again = encode_payload(payload)
    except PayloadError:
        return  # e.g. a value without a datatype: refused by name, not by a crash
    assert _same(decode_payload(again, _datatype_of), payload)


TOPICS = st.sampled_from(
    [
        "spBv1.0/g/NBIRTH/n",
        "spBv1.0/g/NDATA/n",
        "spBv1.0/g/DBIRTH/n/d",
        "spBv1.0/g/DDATA/n/d",
        "spBv1.0/g/DDEATH/n/d",
        "spBv1.0/g/NDEATH/n",
        "spBv1.0/STATE/host",
        "spBv1.0/g/NDATA",
        "not/sparkplug",
    ]
)


def _birth(values: list[Any]) -> bytes:
    """A birth of metrics m0.. (aliases 0..) of the BIRTH datatypes, without a seq."""
    metrics = tuple(
        Metric(name=f"m{i}", alias=i, datatype=t, value=v)
        for i, (t, v) in enumerate(zip(BIRTH, values, strict=True))
    )
    return encode_payload(Payload(timestamp_ms=DEFAULT_MS, metrics=metrics))


def _birth_value(datatype: DataType) -> st.SearchStrategy[Any]:
    if datatype in (DataType.DOUBLE, DataType.FLOAT):
        return st.floats(width=32)  # NaN and infinities included
    if datatype == DataType.BOOLEAN:
        return st.booleans()
    if datatype == DataType.STRING:
        return st.text(max_size=4)
    return st.integers(0, 100)


births = st.tuples(*(_birth_value(t) for t in BIRTH)).map(lambda values: _birth(list(values)))
FINITE_BIRTH = _birth([1.0, 1.0, 1, 1, 1, True, "a", 1, 1])
# Found by this test: a NaN or infinite Double or Float metric was handed on as Good.
INFINITE_FLOAT = encode_payload(
    Payload(1, (Metric(alias=1, value=math.inf),)), lambda n, a: DataType.FLOAT
)
NAN_DOUBLE = encode_payload(
    Payload(1, (Metric(alias=0, value=math.nan),)), lambda n, a: DataType.DOUBLE
)


@fuzz(300)
@given(births, births, st.lists(st.tuples(TOPICS, ANY_BYTES, st.booleans()), max_size=6))
@example(FINITE_BIRTH, FINITE_BIRTH, [("spBv1.0/g/DDATA/n/d", INFINITE_FLOAT, True)])
@example(FINITE_BIRTH, FINITE_BIRTH, [("spBv1.0/g/NDATA/n", NAN_DOUBLE, True)])
def test_the_host_session_never_raises_and_good_values_are_finite(
    node_birth: bytes, device_birth: bytes, messages: list[tuple[str, bytes, bool]]
) -> None:
    session = HostSession()
    now, seq, published = DEFAULT_MS, 0, 0
    births = [
        ("spBv1.0/g/NBIRTH/n", node_birth, True),
        ("spBv1.0/g/DBIRTH/n/d", device_birth, True),
    ]
    for topic, data, in_order in births + messages:
        if in_order:  # a later seq field wins (protobuf): the message comes next in sequence
            data += pb.Payload(seq=seq % 256).SerializeToString()
            seq += 1
        now += 10
        out = session.handle(topic, data, now)
        for update in out.updates():
            published += 1
            value = update.value
            if isinstance(value, float) and not math.isfinite(value):
                assert severity(update.quality) is Severity.BAD, update
    target(float(published), label="values published")


class _Link:
    """What SparkplugHost._path needs of a Link: somewhere to report a dropped metric."""

    def __init__(self) -> None:
        self.dropped: list[str] = []

    def malformed(self, kind: str, detail: str) -> None:
        self.dropped.append(detail)


# Found by this test: metric_path makes names valid by rewriting them, so 'Scan Rate' and
# 'Scan_Rate' (or two long names alike in their first 64 characters) were stored as one tag.
@fuzz(200)
@given(st.lists(st.text(max_size=70), min_size=2, max_size=6, unique=True))
@example(["Device Control/Scan Rate", "Device Control/Scan_Rate"])
@example(["a" * 64 + "1", "a" * 64 + "2"])
def test_distinct_metrics_never_share_a_path(names: list[str]) -> None:
    host = SparkplugHost(SparkplugConfig(name="spb", broker=BrokerSettings(url="mqtt://localhost")))
    link = _Link()
    owners: dict[str, str] = {}
    for name in names:
        path = host._path(MetricId("g", "n", "d", name), link)  # type: ignore[arg-type]
        if path is not None:
            assert owners.setdefault(path, name) == name, (
                f"{name!r} and {owners[path]!r} share {path}"
            )
    assert len(owners) + len(link.dropped) == len(names)
