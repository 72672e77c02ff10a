"""What an edge node's birth certificate says about its metrics, as tags of the asset model.

An NBIRTH or DBIRTH names every metric the node or device will send, with its datatype (6.4.16)
and optional properties (6.4.8). Sparkplug reserves no property for units or descriptions, so
the names that Sparkplug edge software commonly writes are read, in any case: `EngUnit`,
`engUnit`, `Units`, `Unit` for the unit; `Description`, `Documentation`, `Tooltip` for the
description. Pure: bytes in, descriptions out.
"""

from __future__ import annotations

from collections.abc import Callable

from kiln.connectors.sparkplug.codec import BDSEQ_METRIC, DataType, Properties, decode_payload
from kiln.connectors.sparkplug.errors import PayloadError, TopicError
from kiln.connectors.sparkplug.session import MetricId
from kiln.connectors.sparkplug.topic import EdgeTopic, MessageType, parse_topic
from kiln.model import DataType as TagType
from kiln.model import DescribedTag

_UNIT_KEYS = ("engunit", "units", "unit")
_DESCRIPTION_KEYS = ("description", "documentation", "tooltip")

_INTS = {
    DataType.INT8,
    DataType.INT16,
    DataType.INT32,
    DataType.INT64,
    DataType.UINT8,
    DataType.UINT16,
    DataType.UINT32,
    DataType.UINT64,
    DataType.DATETIME,  # stored as its count of milliseconds
}
_TYPES: dict[DataType, TagType] = {
    **dict.fromkeys(_INTS, TagType.INT),
    DataType.FLOAT: TagType.FLOAT,
    DataType.DOUBLE: TagType.FLOAT,
    DataType.BOOLEAN: TagType.BOOL,
    DataType.STRING: TagType.STRING,
    DataType.TEXT: TagType.STRING,
    DataType.UUID: TagType.STRING,
}


def birth_tags(
    topic: str, payload: bytes, path_of: Callable[[MetricId], str | None]
) -> list[DescribedTag] | None:
    """The tags an NBIRTH/DBIRTH on `topic` describes; None for any other message (or one
    that does not decode: the session counts it as malformed). Metrics of a type Kiln does
    not store as a value (DataSets, Templates, arrays, bytes) are left out."""
    try:
        parsed = parse_topic(topic)
    except TopicError:
        return None
    if not isinstance(parsed, EdgeTopic) or parsed.message_type not in (
        MessageType.NBIRTH,
        MessageType.DBIRTH,
    ):
        return None
    try:
        decoded = decode_payload(payload)
    except PayloadError:
        return None
    out: list[DescribedTag] = []
    for metric in decoded.metrics:
        if metric.name is None or metric.name == BDSEQ_METRIC or metric.datatype is None:
            continue
        kind = _TYPES.get(metric.datatype)
        if kind is None:
            continue
        path = path_of(
            MetricId(parsed.group_id, parsed.edge_node_id, parsed.device_id, metric.name)
        )
        if path is None:
            continue
        props = metric.properties
        out.append(
            DescribedTag(path, kind, _text(props, _UNIT_KEYS), _text(props, _DESCRIPTION_KEYS))
        )
    return out


def _text(props: Properties, keys: tuple[str, ...]) -> str:
    by_key = {k.lower(): p for k, p in props.items()}
    for key in keys:
        prop = by_key.get(key)
        if prop is not None and not prop.is_null and isinstance(prop.value, str):
            return prop.value
    return ""
