"""Birth certificates as tags of the asset model: datatypes, units and descriptions."""

from __future__ import annotations

from kiln.connectors.sparkplug.codec import (
    BDSEQ_METRIC,
    DataSet,
    DataType,
    Metric,
    Payload,
    Property,
    encode_payload,
)
from kiln.connectors.sparkplug.describe import birth_tags
from kiln.connectors.sparkplug.session import MetricId
from kiln.model.definitions import DataType as TagType
from kiln.model.info import DescribedTag


def path_of(m: MetricId) -> str | None:
    if m.name == "bad name!":
        return None
    return "/".join(p for p in (m.group_id, m.edge_node_id, m.device_id, m.name) if p)


def payload(*metrics: Metric) -> bytes:
    return encode_payload(Payload(1000, (Metric(name=BDSEQ_METRIC, datatype=DataType.INT64,
                                                value=0), *metrics), seq=0))  # fmt: skip


def test_a_device_birth_gives_types_units_and_descriptions_of_its_scalars() -> None:
    raw = payload(
        Metric(name="temp", datatype=DataType.FLOAT, value=1.5, properties={
            "EngUnit": Property(DataType.STRING, "degC"),
            "TOOLTIP": Property(DataType.STRING, "housing"),
        }),
        Metric(name="count", datatype=DataType.UINT64, value=3),
        Metric(name="on", datatype=DataType.BOOLEAN, value=True),
        Metric(name="since", datatype=DataType.DATETIME, value=5),
        Metric(name="recipe", datatype=DataType.STRING, value="A"),
        Metric(name="table", datatype=DataType.DATASET,
               value=DataSet(("a",), (DataType.INT32,), ((1,),))),
        Metric(name="bad name!", datatype=DataType.INT32, value=1),
    )  # fmt: skip
    assert birth_tags("spBv1.0/g/DBIRTH/n/d", raw, path_of) == [
        DescribedTag("g/n/d/temp", TagType.FLOAT, "degC", "housing"),
        DescribedTag("g/n/d/count", TagType.INT),
        DescribedTag("g/n/d/on", TagType.BOOL),
        DescribedTag("g/n/d/since", TagType.INT),
        DescribedTag("g/n/d/recipe", TagType.STRING),
    ]


def test_other_messages_and_garbage_describe_nothing() -> None:
    raw = payload(Metric(name="temp", datatype=DataType.FLOAT, value=1.5))
    assert birth_tags("spBv1.0/g/NDATA/n", raw, path_of) is None
    assert birth_tags("spBv1.0/STATE/host", raw, path_of) is None
    assert birth_tags("not/sparkplug", raw, path_of) is None
    assert birth_tags("spBv1.0/g/NBIRTH/n", b"\xff\xff garbage", path_of) is None
