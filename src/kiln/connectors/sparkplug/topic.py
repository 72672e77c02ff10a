"""Sparkplug B 3.0 topic names: parse and build them.

Edge topics are ``spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]`` (section 4.1,
[tck-id-topic-structure]); a host application's STATE topic is ``spBv1.0/STATE/{host_id}``
(section 4.2.3.1.1, [tck-id-host-topic-phid-birth-topic]). Pure: strings in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kiln.connectors.sparkplug.errors import TopicError

NAMESPACE = "spBv1.0"


class MessageType(StrEnum):
    NBIRTH = "NBIRTH"
    NDEATH = "NDEATH"
    NDATA = "NDATA"
    NCMD = "NCMD"
    DBIRTH = "DBIRTH"
    DDEATH = "DDEATH"
    DDATA = "DDATA"
    DCMD = "DCMD"

    @property
    def is_device(self) -> bool:
        """True for the message types that carry a device_id (DBIRTH, DDEATH, DDATA, DCMD)."""
        return self.value.startswith("D")


@dataclass(frozen=True, slots=True)
class EdgeTopic:
    """The topic of a message from or to an edge node (device_id set for device messages)."""

    group_id: str
    message_type: MessageType
    edge_node_id: str
    device_id: str | None = None

    def __post_init__(self) -> None:
        # 4.1.5 [tck-id-topic-structure-namespace-device-id-associated-message-types] and
        # [tck-id-topic-structure-namespace-device-id-non-associated-message-types].
        if self.message_type.is_device and self.device_id is None:
            raise TopicError(f"{self.message_type} topics need a device_id")
        if not self.message_type.is_device and self.device_id is not None:
            raise TopicError(f"{self.message_type} topics carry no device_id")
        _check_id("group_id", self.group_id)
        _check_id("edge_node_id", self.edge_node_id)
        if self.device_id is not None:
            _check_id("device_id", self.device_id)

    @property
    def topic(self) -> str:
        parts = [NAMESPACE, self.group_id, self.message_type.value, self.edge_node_id]
        if self.device_id is not None:
            parts.append(self.device_id)
        return "/".join(parts)


@dataclass(frozen=True, slots=True)
class StateTopic:
    """The STATE topic of a Sparkplug host application."""

    host_id: str

    def __post_init__(self) -> None:
        _check_id("host_id", self.host_id)

    @property
    def topic(self) -> str:
        return f"{NAMESPACE}/STATE/{self.host_id}"


def parse_topic(topic: str) -> EdgeTopic | StateTopic:
    """Parse a Sparkplug B 3.0 topic; raise TopicError saying what is wrong and the right form."""
    parts = topic.split("/")
    if parts[0] != NAMESPACE:
        if parts[0] == "STATE" and len(parts) == 2:
            raise TopicError(
                f"{topic!r} is a Sparkplug 2.2 STATE topic; Sparkplug 3.0 uses "
                f"{NAMESPACE}/STATE/{{host_id}}"
            )
        # 4.1.1 [tck-id-topic-structure-namespace-a]
        raise TopicError(
            f"{topic!r} is not a Sparkplug B topic: it must start with {NAMESPACE}/, as in "
            f"{NAMESPACE}/{{group_id}}/{{message_type}}/{{edge_node_id}}[/{{device_id}}]"
        )
    if len(parts) == 3 and parts[1] == "STATE":
        return StateTopic(parts[2])
    if len(parts) not in (4, 5):
        raise TopicError(
            f"{topic!r} has {len(parts)} levels; Sparkplug B topics are "
            f"{NAMESPACE}/{{group_id}}/{{message_type}}/{{edge_node_id}}[/{{device_id}}] "
            f"or {NAMESPACE}/STATE/{{host_id}}"
        )
    try:
        message_type = MessageType(parts[2])
    except ValueError:
        raise TopicError(
            f"{topic!r} has an unknown message type {parts[2]!r}; expected one of "
            f"{', '.join(m.value for m in MessageType)}"
        ) from None
    device_id = parts[4] if len(parts) == 5 else None
    return EdgeTopic(parts[1], message_type, parts[3], device_id)


def _check_id(what: str, value: str) -> None:
    # 4.1.2, 4.1.4, 4.1.5: a Sparkplug ID is a UTF-8 string without the MQTT reserved
    # characters + / # ([tck-id-topic-structure-namespace-valid-group-id] and its siblings).
    if not value:
        raise TopicError(f"the {what} is empty")
    bad = sorted(set(value) & {"+", "/", "#"})
    if bad:
        raise TopicError(
            f"the {what} {value!r} contains {' '.join(bad)}; + / # are reserved in MQTT topics"
        )
    if "\x00" in value:  # MQTT 3.1.1, 4.7.3: no NUL character in a topic
        raise TopicError(f"the {what} {value!r} contains a NUL character")
