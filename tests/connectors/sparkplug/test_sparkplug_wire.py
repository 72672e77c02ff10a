"""Byte-level fixtures: payloads assembled by hand from the protobuf wire format and the field
numbers of the Sparkplug 3.0 schema (6.4.1), so a wrong number or type in sparkplug_b.proto or
its generated module fails here, not on a plant floor."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from kiln.connectors.sparkplug import sparkplug_b_pb2 as pb
from kiln.connectors.sparkplug.codec import (
    DataSet,
    DataType,
    Metric,
    Payload,
    decode_payload,
    encode_payload,
    encode_rebirth_request,
)
from kiln.testing.protowire import blob, f32, f64, vint

# Payload: timestamp=1 metrics=2 seq=3 uuid=4 body=5.
# Metric: name=1 alias=2 timestamp=3 datatype=4 is_historical=5 is_transient=6 is_null=7
# metadata=8 properties=9 int_value=10 long_value=11 float_value=12 double_value=13
# boolean_value=14 string_value=15 bytes_value=16 dataset_value=17 template_value=18.
# DataSet: num_of_columns=1 columns=2 types=3 rows=4; Row: elements=1;
# DataSetValue: int_value=1 long_value=2 float_value=3 double_value=4 boolean_value=5
# string_value=6. PropertySet: keys=1 values=2; PropertyValue: type=1 is_null=2 int_value=3.
T = 1_486_144_502_122


def test_rebirth_request_bytes() -> None:
    metric = blob(1, b"Node Control/Rebirth") + vint(3, T) + vint(4, DataType.BOOLEAN) + vint(14, 1)
    assert encode_rebirth_request(T) == vint(1, T) + blob(2, metric)


def test_a_birth_from_another_implementation_decodes() -> None:
    dataset = (
        vint(1, 2)
        + blob(2, b"id")
        + blob(2, b"label")
        + vint(3, DataType.INT32)
        + vint(3, DataType.STRING)
        + blob(4, blob(1, vint(1, 0xFFFFFFFF)) + blob(1, blob(6, b"one")))
        + blob(4, blob(1, b"") + blob(1, blob(6, b"two")))  # an empty element is a null cell
    )
    quality = blob(1, b"Quality") + blob(2, vint(1, DataType.INT32) + vint(3, 500))
    data = (
        vint(1, T)
        + blob(2, blob(1, b"bdSeq") + vint(3, T) + vint(4, DataType.INT64) + vint(11, 3))
        + blob(
            2, blob(1, b"temp") + vint(2, 10) + vint(3, T) + vint(4, DataType.FLOAT) + f32(12, 12.5)
        )
        + blob(2, blob(1, b"big") + vint(4, DataType.INT64) + vint(11, 2**64 - 5))
        + blob(2, blob(1, b"ratio") + vint(4, DataType.DOUBLE) + f64(13, 0.25) + blob(9, quality))
        + blob(2, blob(1, b"old") + vint(4, DataType.INT16) + vint(5, 1) + vint(10, 0xFFFF))
        + blob(2, blob(1, b"blob") + vint(4, DataType.FILE) + blob(16, b"\x00\x01"))
        + blob(2, blob(1, b"table") + vint(4, DataType.DATASET) + blob(17, dataset))
        + blob(2, blob(1, b"gone") + vint(4, DataType.STRING) + vint(7, 1))
        + vint(3, 0)
    )
    payload = decode_payload(data)
    assert payload.timestamp_ms == T and payload.seq == 0
    by_name = {m.name: m for m in payload.metrics}
    assert by_name["bdSeq"].value == 3
    assert by_name["temp"].alias == 10 and by_name["temp"].value == 12.5
    assert by_name["big"].value == -5
    assert by_name["ratio"].value == 0.25
    assert by_name["ratio"].properties["Quality"].value == 500
    assert by_name["old"].is_historical and by_name["old"].value == -1
    assert by_name["blob"].value == b"\x00\x01"
    assert by_name["table"].value == DataSet(
        ("id", "label"), (DataType.INT32, DataType.STRING), ((-1, "one"), (None, "two"))
    )
    assert by_name["gone"].is_null and by_name["gone"].value is None


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (Metric(name="a", datatype=DataType.INT8, value=-1), vint(10, 0xFFFFFFFF)),
        (Metric(name="a", datatype=DataType.UINT16, value=65535), vint(10, 65535)),
        (Metric(name="a", datatype=DataType.UINT32, value=2**32 - 1), vint(10, 2**32 - 1)),
        (Metric(name="a", datatype=DataType.INT64, value=-1), vint(11, 2**64 - 1)),
        (Metric(name="a", datatype=DataType.DATETIME, value=T), vint(11, T)),
        (Metric(name="a", datatype=DataType.FLOAT, value=1.5), f32(12, 1.5)),
        (Metric(name="a", datatype=DataType.DOUBLE, value=1.5), f64(13, 1.5)),
        (Metric(name="a", datatype=DataType.BOOLEAN, value=False), vint(14, 0)),
        (Metric(name="a", datatype=DataType.TEXT, value="é"), blob(15, "é".encode())),
        (Metric(name="a", datatype=DataType.BYTES, value=b"\x07"), blob(16, b"\x07")),
    ],
)
def test_each_datatype_uses_its_carrier_field(metric: Metric, expected: bytes) -> None:
    assert metric.datatype is not None
    body = blob(1, b"a") + vint(4, metric.datatype) + expected
    assert encode_payload(Payload(metrics=(metric,))) == blob(2, body)


def test_a_dataset_row_that_is_short_is_rejected_even_from_a_peer() -> None:
    dataset = vint(1, 2) + blob(2, b"a") + blob(2, b"b") + vint(3, 3) + vint(3, 3)
    dataset += blob(4, blob(1, vint(1, 1)))  # one element for two columns
    with pytest.raises(ValueError, match="row 0"):
        decode_payload(blob(2, blob(1, b"t") + vint(4, DataType.DATASET) + blob(17, dataset)))


def declared_fields() -> set[tuple[str, str, int, str, str]]:
    """(message, field, number, label, type) as written in sparkplug_b.proto."""
    text = (Path(pb.__file__).parent / "sparkplug_b.proto").read_text()
    scopes: list[str | None] = []  # enclosing message names; None for a oneof or an enum
    found = set()
    for raw in text.splitlines():
        line = raw.split("//")[0].strip()
        if m := re.fullmatch(r"(message|enum|oneof) (\w+) \{", line):
            scopes.append(m[2] if m[1] == "message" else None)
        elif line == "}":
            scopes.pop()
        elif m := re.fullmatch(r"(?:(optional|repeated) +)?(\w+) +(\w+) *= *(\d+);", line):
            owner = ".".join(s for s in scopes if s is not None)
            found.add((owner, m[3], int(m[4]), m[1] or "optional", m[2]))
    return found


def generated_fields() -> set[tuple[str, str, int, str, str]]:
    scalar = {
        FieldDescriptor.TYPE_UINT32: "uint32",
        FieldDescriptor.TYPE_UINT64: "uint64",
        FieldDescriptor.TYPE_FLOAT: "float",
        FieldDescriptor.TYPE_DOUBLE: "double",
        FieldDescriptor.TYPE_BOOL: "bool",
        FieldDescriptor.TYPE_STRING: "string",
        FieldDescriptor.TYPE_BYTES: "bytes",
    }
    found = set()

    def walk(descriptor: Descriptor, scope: str) -> None:
        name = f"{scope}.{descriptor.name}" if scope else descriptor.name
        for f in descriptor.fields:
            kind = f.message_type.name if f.message_type is not None else scalar[f.type]
            found.add((name, f.name, f.number, "repeated" if f.is_repeated else "optional", kind))
        for nested in descriptor.nested_types:
            walk(nested, name)

    walk(pb.Payload.DESCRIPTOR, "")
    return found


def test_the_generated_module_matches_the_proto_file() -> None:
    # Catches an edit of sparkplug_b.proto that generate.sh was not run after.
    declared = declared_fields()
    assert len(declared) == 72  # Payload 5, Metric 19, Template 5 + 9, DataSet 4 + 1 + 7, ...
    assert generated_fields() == declared
    assert pb.Payload.DESCRIPTOR.full_name == "org.eclipse.tahu.protobuf.Payload"
    enum = pb.DESCRIPTOR.enum_types_by_name["DataType"]
    assert {v.name.upper(): v.number for v in enum.values} == {
        t.name.replace("_", ""): t.value for t in DataType
    }
