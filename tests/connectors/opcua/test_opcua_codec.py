"""The pure OPC UA codec (DataValues to Kiln values, Kiln values to Variants through
`variants`, NodeId strings)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua import ua_binary
from hypothesis import given
from hypothesis import strategies as st

from kiln.connectors.opcua.codec import (
    BuiltinType,
    Unsupported,
    decodable,
    decode,
    parse_node_id,
    value_type,
)
from kiln.connectors.opcua.variants import node_id, to_variant

VT = ua.VariantType
T = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
T_US = 1_772_353_815_123_456
RECEIVED = 1_800_000_000_000_000


def dv(value: object, vtype: ua.VariantType, **kwargs: object) -> ua.DataValue:
    return ua.DataValue(ua.Variant(value, vtype), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "vtype", "expected"),
    [
        (True, VT.Boolean, True),
        (-5, VT.SByte, -5),
        (200, VT.Byte, 200),
        (2**63 - 1, VT.Int64, 2**63 - 1),
        (2**64 - 1, VT.UInt64, 2**64 - 1),
        (1.5, VT.Float, 1.5),
        (21.3, VT.Double, 21.3),
        ("Ofen 3", VT.String, "Ofen 3"),
        (None, VT.String, ""),
        (ua.LocalizedText("Oven 3", "en"), VT.LocalizedText, "Oven 3"),
        (T, VT.DateTime, "2026-03-01T08:30:15.123456+00:00"),
        (uuid.UUID(int=1), VT.Guid, "00000000-0000-0000-0000-000000000001"),
        (ua.StatusCode(0x80350000), VT.StatusCode, 0x80350000),
    ],
)
def test_decodes_each_supported_type(
    value: object, vtype: ua.VariantType, expected: object
) -> None:
    got, _, quality = decode(dv(value, vtype, SourceTimestamp=T), RECEIVED)
    assert (got, type(got), quality) == (expected, type(expected), 0)


def test_a_float_is_the_exact_binary32_value_widened() -> None:
    wire = ua_binary.variant_from_binary(
        Buffer(ua_binary.variant_to_binary(ua.Variant(21.3, VT.Float)))
    )
    assert decode(ua.DataValue(wire), 0)[0] == 21.299999237060547


@pytest.mark.parametrize(
    ("value", "vtype"),
    [
        (b"\x00\x01", VT.ByteString),
        (ua.NodeId(5, 2), VT.NodeId),
        (ua.QualifiedName("x", 2), VT.QualifiedName),
        ([1.0, 2.0], VT.Double),
    ],
)
def test_values_without_a_scalar_form_are_unsupported(value: object, vtype: ua.VariantType) -> None:
    with pytest.raises(Unsupported, match=vtype.name):
        decode(dv(value, vtype), RECEIVED)


def test_timestamps_fall_back_from_source_to_server_to_receive_time() -> None:
    server = T + timedelta(seconds=1)
    assert decode(dv(1.0, VT.Double, SourceTimestamp=T, ServerTimestamp=server), 0)[1] == T_US
    assert decode(dv(1.0, VT.Double, ServerTimestamp=server), 0)[1] == T_US + 1_000_000
    assert decode(dv(1.0, VT.Double), RECEIVED)[1] == RECEIVED
    # The OPC UA null DateTime (1601-01-01) is "no timestamp", not a time in 1601.
    null = datetime(1601, 1, 1, tzinfo=UTC)
    assert decode(dv(1.0, VT.Double, SourceTimestamp=null), RECEIVED)[1] == RECEIVED
    assert decode(dv(null, VT.DateTime), RECEIVED)[0] is None


def test_the_status_code_is_the_quality_with_its_info_bits() -> None:
    overflow = 0x40930480  # Uncertain_SensorNotAccurate with the Overflow and DataValue bits
    value, _, quality = decode(dv(3.0, VT.Double, StatusCode=ua.StatusCode(overflow)), 0)
    assert (value, quality) == (3.0, overflow)
    # A Bad status may come without a value: "no value", for the connector to decide.
    bad = ua.DataValue(ua.Variant(), ua.StatusCode(0x808C0000))
    assert decode(bad, RECEIVED) == (None, RECEIVED, 0x808C0000)


@pytest.mark.parametrize(
    ("value", "vtype", "expected"),
    [
        (True, VT.Boolean, True),
        (1, VT.Boolean, True),
        (-128, VT.SByte, -128),
        (255, VT.Byte, 255),
        (42.0, VT.Int16, 42),
        (2**32 - 1, VT.UInt32, 2**32 - 1),
        (3, VT.Double, 3.0),
        (0.5, VT.Float, 0.5),
        ("B-7", VT.String, "B-7"),
        ("2026-03-01T09:30:15.123456+01:00", VT.DateTime, T),
    ],
)
def test_encodes_to_the_nodes_type(value: object, vtype: ua.VariantType, expected: object) -> None:
    variant = to_variant(value, vtype)  # type: ignore[arg-type]
    assert (variant.VariantType, variant.Value, type(variant.Value)) == (
        vtype,
        expected,
        type(expected),
    )


def test_encodes_localized_text() -> None:
    variant = to_variant("Oven 3", VT.LocalizedText)
    assert variant.Value == ua.LocalizedText("Oven 3")


@pytest.mark.parametrize(
    ("value", "vtype", "message"),
    [
        (256, VT.Byte, r"256 is outside the range of Byte \(0\.\.255\)"),
        (-1, VT.UInt16, r"outside the range of UInt16"),
        (40000, VT.Int16, r"Int16 \(-32768\.\.32767\)"),
        (12.5, VT.Int32, "not a whole number"),
        (True, VT.Int32, "not a number"),
        ("5", VT.Double, "not a number"),
        (2**53 + 1, VT.Double, "cannot be represented exactly as Double"),
        (1e39, VT.Float, "outside the range of Float"),
        (2, VT.Boolean, "not a Boolean"),
        (5, VT.String, "not a text"),
        ("2026-03-01T09:30:15", VT.DateTime, "no time zone"),
        ("yesterday", VT.DateTime, "not ISO 8601"),
        (1, VT.ByteString, "writing a ByteString is not supported"),
    ],
)
def test_encode_refuses_what_does_not_fit(
    value: object, vtype: ua.VariantType, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        to_variant(value, vtype)  # type: ignore[arg-type]


@given(st.integers(min_value=-(2**15), max_value=2**15 - 1))
def test_int16_round_trips(n: int) -> None:
    variant = to_variant(n, VT.Int16)
    assert decode(ua.DataValue(variant), 0)[0] == n


@given(st.floats(allow_nan=False))
def test_double_round_trips(x: float) -> None:
    variant = to_variant(x, VT.Double)
    assert decode(ua.DataValue(variant), 0)[0] == x


def test_value_type_prefers_the_builtin_data_type_then_the_value() -> None:
    # asyncua's VariantType in, the codec's own BuiltinType (the same numbers) out.
    assert value_type(ua.NodeId(11)) is BuiltinType.Double
    assert value_type(ua.NodeId(290)) is BuiltinType.Double  # Duration
    assert value_type(ua.NodeId(294)) is BuiltinType.DateTime  # UtcTime
    assert value_type(ua.NodeId(26), VT.Int32) is BuiltinType.Int32  # a Number holding an Int32
    assert (
        value_type(ua.NodeId(24), VT.String) is BuiltinType.String
    )  # BaseDataType: any type at all
    assert (
        value_type(ua.NodeId(3003, 2), VT.Int32) is BuiltinType.Int32
    )  # a server's own enumeration
    assert value_type(ua.NodeId(3003, 2)) is None
    assert decodable(VT.Double) and not decodable(VT.ByteString) and not decodable(None)


@pytest.mark.parametrize(
    ("text", "ns", "identifier"),
    [
        ("ns=2;s=Line1.Temp", 2, "Line1.Temp"),
        ("ns=3;i=1001", 3, 1001),
        ("i=2258", 0, 2258),
        ("ns=2;s=Oven;Zone=1", 2, "Oven;Zone=1"),  # a string id may hold ; and =
        (
            "ns=4;g=09087e75-8e5e-499b-954f-f2a9603db28a",
            4,
            uuid.UUID("09087e75-8e5e-499b-954f-f2a9603db28a"),
        ),
        ("ns=5;b=AQI=", 5, b"\x01\x02"),
    ],
)
def test_parses_node_ids(text: str, ns: int, identifier: object) -> None:
    got = node_id(parse_node_id(text))
    assert (got.NamespaceIndex, got.Identifier) == (ns, identifier)
    assert got == ua.NodeId.from_string(text)


def test_a_namespace_uri_is_resolved_on_the_server() -> None:
    ref = parse_node_id("nsu=urn:acme:line1;s=Temp")
    namespaces = ["http://opcfoundation.org/UA/", "urn:server", "urn:acme:line1"]
    assert node_id(ref, namespaces) == ua.NodeId("Temp", 2)
    with pytest.raises(LookupError, match="has no namespace 'urn:acme:line1'"):
        node_id(ref, namespaces[:2])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Line1.Temp", "is not a NodeId"),
        ("ns=2;x=5", "is not a NodeId"),
        ("ns=2;i=abc", "numeric identifier"),
        ("ns=2;i=4294967296", "numeric identifier"),
        ("ns=70000;i=1", "namespace index 70000"),
        ("ns=2;g=not-a-guid", "is not a GUID"),
        ("ns=2;b=%%%", "is not base64"),
        ("ns=2;s=", "is not a NodeId"),
    ],
)
def test_refuses_malformed_node_ids(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_node_id(text)
