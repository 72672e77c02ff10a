"""Sparkplug B 3.0 topic parsing and building."""

from __future__ import annotations

import pytest

from kiln.connectors.sparkplug.errors import TopicError
from kiln.connectors.sparkplug.topic import EdgeTopic, MessageType, StateTopic, parse_topic


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (
            "spBv1.0/Plant 1/NBIRTH/Raspberry Pi",
            EdgeTopic("Plant 1", MessageType.NBIRTH, "Raspberry Pi"),
        ),
        ("spBv1.0/G/NDATA/N", EdgeTopic("G", MessageType.NDATA, "N")),
        ("spBv1.0/G/NDEATH/N", EdgeTopic("G", MessageType.NDEATH, "N")),
        ("spBv1.0/G/NCMD/N", EdgeTopic("G", MessageType.NCMD, "N")),
        ("spBv1.0/G/DBIRTH/N/Pibrella", EdgeTopic("G", MessageType.DBIRTH, "N", "Pibrella")),
        ("spBv1.0/G/DDATA/N/D", EdgeTopic("G", MessageType.DDATA, "N", "D")),
        ("spBv1.0/G/DDEATH/N/D", EdgeTopic("G", MessageType.DDEATH, "N", "D")),
        ("spBv1.0/G/DCMD/N/D", EdgeTopic("G", MessageType.DCMD, "N", "D")),
        ("spBv1.0/STATE/scada-1", StateTopic("scada-1")),
        # A group may be called STATE; with four levels it is an edge topic.
        ("spBv1.0/STATE/NDATA/N", EdgeTopic("STATE", MessageType.NDATA, "N")),
    ],
)
def test_valid_topics_parse_and_format_back(topic: str, expected: EdgeTopic | StateTopic) -> None:
    parsed = parse_topic(topic)
    assert parsed == expected
    assert parsed.topic == topic


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("spAv1.0/G/NDATA/N", "must start with spBv1.0/"),
        ("STATE/scada-1", "Sparkplug 2.2 STATE topic"),
        ("spBv1.0/G/NDATA", "has 3 levels"),
        ("spBv1.0/G/DDATA/N/D/extra", "has 6 levels"),
        ("spBv1.0/G/NDATA/N/D", "NDATA topics carry no device_id"),
        ("spBv1.0/G/DDATA/N", "DDATA topics need a device_id"),
        ("spBv1.0/G/NFOO/N", "unknown message type 'NFOO'"),
        ("spBv1.0//NDATA/N", "group_id is empty"),
        ("spBv1.0/G/NDATA/", "edge_node_id is empty"),
        ("spBv1.0/G/NDATA/+", r"contains \+"),
        ("spBv1.0/G/DDATA/N/#", "contains #"),
        ("spBv1.0/STATE/", "host_id is empty"),
        ("spBv1.0/G/NDATA/a\x00b", "NUL character"),
        ("", "must start with spBv1.0/"),
    ],
)
def test_malformed_topics_raise_topic_error_naming_the_problem(topic: str, message: str) -> None:
    with pytest.raises(TopicError, match=message):
        parse_topic(topic)


def test_message_types_know_whether_they_are_device_level() -> None:
    assert [m for m in MessageType if m.is_device] == [
        MessageType.DBIRTH,
        MessageType.DDEATH,
        MessageType.DDATA,
        MessageType.DCMD,
    ]
