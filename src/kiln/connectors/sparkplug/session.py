"""The Sparkplug B host application's view of its edge nodes: a pure state machine.

One `HostSession` follows every edge node (and its devices) it hears from. Feed it each MQTT
message with `handle(topic, payload, now_ms)` and call `poll(now_ms)` when `next_deadline_ms()`
is due; both return a `HostOutput`: metric values to publish, metrics gone stale, rebirth
requests for the caller to publish as NCMD, and what this call counted. Time is the `now_ms`
argument (host UTC time in milliseconds); nothing here sleeps, reads a clock or does I/O.

Sparkplug 3.0 behaviour implemented here, with the clauses cited where each branch is:

- NBIRTH starts a node session: its metrics (name, alias, datatype) form the registry, its
  `seq` starts the node's sequence and its `bdSeq` metric identifies the session (4.2.1.1).
  DBIRTH does the same for a device (4.2.2.1).
- NDATA/DDATA carry metrics by alias or name, typed from the birth (6.4.6).
- Every message of a node except NDEATH carries the next `seq`, 0..255 wrapping, shared by the
  node and its devices (6.4.5). A message that arrives early is held for the Reorder Timeout
  and released in order when the missing ones arrive (5.9); when the timeout elapses, held
  messages are released anyway and that is a gap.
- A gap, data before any birth, or a metric the birth did not define needs a new birth (6.4.23,
  5.17): the session asks for exactly one rebirth, and asks again every `rebirth_resend_ms`
  until the NBIRTH arrives, since NCMD is QoS 0 and may be lost.
- NDEATH whose bdSeq matches the current NBIRTH's makes all the node's and its devices' metrics
  stale at host time; an NDEATH from an older session is ignored (5.5). DDEATH makes the
  device's metrics stale at the DDEATH's timestamp (5.7).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Literal

from kiln.connectors.sparkplug.codec import (
    BDSEQ_METRIC,
    DataType,
    DatatypeOf,
    Metric,
    Payload,
    Unsupported,
    Value,
    decode_payload,
    encode_rebirth_request,
)
from kiln.connectors.sparkplug.data_columns import DataColumns, Defined, decode_data
from kiln.connectors.sparkplug.errors import PayloadError, TopicError
from kiln.connectors.sparkplug.topic import EdgeTopic, MessageType, StateTopic, parse_topic
from kiln.core.quality import Quality
from kiln.core.values import Scalar

_LOGGER = logging.getLogger(__name__)

# Sparkplug calls a metric of a dead node or device STALE; Kiln marks a source it has lost the
# same way whatever the protocol (see kiln.connectors.runner).
STALE_QUALITY = Quality.BAD_NOT_CONNECTED

# 6.4.9.1 "Quality Codes": the optional 'Quality' property an edge node may attach to a metric.
_SPARKPLUG_QUALITY = {
    192: Quality.GOOD,
    0: Quality.BAD,
    500: Quality.UNCERTAIN_LAST_USABLE_VALUE,  # STALE at the edge: the last value it had
}

_SEQ_MODULUS = 256


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Timers and bounds of a host session. All times are milliseconds."""

    # 5.9 [tck-id-operational-behavior-host-reordering-param]: how long an early message waits
    # for the ones before it.
    reorder_timeout_ms: int = 2_000
    # How long to wait for the NBIRTH after asking for a rebirth before asking again.
    rebirth_resend_ms: int = 10_000
    # Messages held per node while waiting: a message further ahead than this is a gap at once.
    max_held_messages: int = 64

    def __post_init__(self) -> None:
        if self.reorder_timeout_ms < 0:
            raise ValueError("reorder_timeout_ms must be 0 (no reordering) or more")
        if self.rebirth_resend_ms <= 0:
            raise ValueError("rebirth_resend_ms must be positive")
        if not 1 <= self.max_held_messages < _SEQ_MODULUS // 2:
            raise ValueError("max_held_messages must be between 1 and 127")


@dataclass(frozen=True, slots=True)
class MetricId:
    """Which metric: its edge node, its device (None for node metrics) and its name."""

    group_id: str
    edge_node_id: str
    device_id: str | None
    name: str
    # Callers key dictionaries by MetricId for every value received: hash the four strings once.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_hash", hash((self.group_id, self.edge_node_id, self.device_id, self.name))
        )

    def __hash__(self) -> int:
        return self._hash

    @property
    def path(self) -> str:
        parts = [self.group_id, self.edge_node_id]
        if self.device_id is not None:
            parts.append(self.device_id)
        parts.append(self.name)
        return "/".join(parts)


@dataclass(frozen=True, slots=True)
class MetricUpdate:
    """A value to publish. `historical` values are stored but must not replace the latest."""

    metric: MetricId
    datatype: DataType | None
    value: Value
    source_ms: int
    quality: int
    historical: bool = False
    transient: bool = False


@dataclass(frozen=True, slots=True)
class ValueBlock:
    """Current values of one data message, all of Good quality, as columns: how the plain
    metrics of NDATA and DDATA come out (see `data_columns`), with no object per value."""

    metrics: list[MetricId]
    values: list[Scalar]
    source_ms: list[int]
    datatypes: Mapping[str, DataType | None]  # by metric name: the birth's datatypes

    def updates(self) -> list[MetricUpdate]:
        return [
            MetricUpdate(m, self.datatypes.get(m.name), v, ms, int(Quality.GOOD))
            for m, v, ms in zip(self.metrics, self.values, self.source_ms, strict=True)
        ]


@dataclass(frozen=True, slots=True)
class StaleMetric:
    """A metric whose source died: mark it with `quality` from `timestamp_ms` on."""

    metric: MetricId
    quality: int
    timestamp_ms: int


RebirthReason = Literal["gap", "before_birth", "unknown_metric"]


@dataclass(frozen=True, slots=True)
class RebirthRequest:
    """Publish `payload` on `topic` (an NCMD, QoS 0, not retained) to get a new birth."""

    group_id: str
    edge_node_id: str
    reason: RebirthReason
    resend: bool
    topic: str
    payload: bytes


@dataclass(slots=True)
class Counters:
    """What went wrong, counted. A HostOutput holds one call's counts, the session the totals."""

    malformed: int = 0  # topics or payloads that could not be decoded
    out_of_order: int = 0  # messages that arrived early and were held
    gaps: int = 0  # missing messages given up on
    rebirths_requested: int = 0  # first rebirth requests (one per missing birth)
    rebirths_resent: int = 0  # repeats of a request no NBIRTH answered
    data_before_birth: int = 0  # messages from a node or device with no birth
    unknown_metrics: int = 0  # metrics in data messages that their birth did not define
    old_deaths_ignored: int = 0  # NDEATHs of an earlier session

    def add(self, other: Counters) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def copy(self) -> Counters:
        return Counters(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device of an edge node as the host last saw it (for health)."""

    device_id: str
    online: bool  # between its DBIRTH and its DDEATH (or its node's death or rebirth)
    last_birth_ms: int | None  # host time of its last DBIRTH
    last_death_ms: int | None  # host time it last went offline


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """An edge node as the host last saw it (for health): online, births, what went wrong."""

    group_id: str
    edge_node_id: str
    online: bool  # between its NBIRTH and its NDEATH
    last_birth_ms: int | None  # host time of its last NBIRTH; None if never seen born
    last_death_ms: int | None  # host time of its last NDEATH
    rebirths_requested: int  # NCMD rebirth requests sent to it, repeats included
    seq_errors: int  # gaps in its seq that were given up on (5.9)
    devices: tuple[DeviceStatus, ...]


@dataclass(slots=True)
class HostOutput:
    """What one call produced. Values come as `blocks` (the plain metrics of data messages) and
    as `values` (births and every other metric); both are to be published."""

    blocks: list[ValueBlock] = field(default_factory=list)
    values: list[MetricUpdate] = field(default_factory=list)
    stale: list[StaleMetric] = field(default_factory=list)
    actions: list[RebirthRequest] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)

    def updates(self) -> list[MetricUpdate]:
        """Every value, blocks and `values` alike, one object each (for tests and tools; the
        host reads the columns)."""
        return [u for b in self.blocks for u in b.updates()] + self.values


class _Registry:
    """The metrics one birth defined: name -> datatype and alias -> name, and the same as
    `Defined` entries for the columnar decode of data messages."""

    __slots__ = ("by_name", "defined_by_alias", "defined_by_name", "name_of_alias")

    def __init__(
        self,
        metrics: Iterable[Metric] = (),
        metric_id: Callable[[str], MetricId] | None = None,
    ) -> None:
        self.by_name: dict[str, DataType | None] = {}
        self.name_of_alias: dict[int, str] = {}
        self.defined_by_name: dict[str, Defined[MetricId]] = {}
        self.defined_by_alias: dict[int, Defined[MetricId]] = {}
        for m in metrics:
            if m.name is None:
                continue
            self.by_name[m.name] = m.datatype
            if m.alias is not None:
                self.name_of_alias[m.alias] = m.name
            # bdSeq is the session's bookkeeping (4.2.1.1), not a measurement: where a data
            # message repeats it, it takes the full decode and the caller leaves it out.
            if metric_id is None or m.name == BDSEQ_METRIC:
                continue
            defined = self.defined_by_name[m.name] = Defined(metric_id(m.name), m.datatype)
            if m.alias is not None:
                self.defined_by_alias[m.alias] = defined

    def resolve(self, metric: Metric) -> str | None:
        # 6.4.6 [tck-id-payloads-alias-data-cmd-requirement]: data messages name a metric by the
        # alias its birth gave it; without aliases, by name.
        if metric.alias is not None:
            return self.name_of_alias.get(metric.alias)
        if metric.name is not None and metric.name in self.by_name:
            return metric.name
        return None

    def datatype_of(self, name: str | None, alias: int | None) -> DataType | None:
        if alias is not None:
            name = self.name_of_alias.get(alias)
        return self.by_name.get(name) if name is not None else None


@dataclass(slots=True)
class _Held:
    topic: EdgeTopic
    raw: bytes
    arrived_ms: int


class _Node:
    __slots__ = (
        "_ids",
        "bd_seq",
        "birth_ms",
        "born",
        "death_ms",
        "device_times",
        "devices",
        "edge_node_id",
        "expected_seq",
        "group_id",
        "held",
        "metrics",
        "rebirth_asked_ms",
        "rebirth_reason",
        "rebirths",
        "seq_errors",
    )

    def __init__(self, group_id: str, edge_node_id: str) -> None:
        self.group_id = group_id
        self.edge_node_id = edge_node_id
        self.born = False
        self.bd_seq: int | None = None
        self.expected_seq = 0
        self.held: dict[int, _Held] = {}
        self.metrics = _Registry()
        self.devices: dict[str, _Registry] = {}
        self.rebirth_asked_ms: int | None = None
        self.rebirth_reason: RebirthReason = "gap"
        self._ids: dict[tuple[str | None, str], MetricId] = {}
        # For health only: when it was last born and died, what went wrong, its devices' times.
        self.birth_ms: int | None = None
        self.death_ms: int | None = None
        self.rebirths = 0
        self.seq_errors = 0
        self.device_times: dict[str, tuple[int | None, int | None]] = {}

    def devices_gone(self, now_ms: int) -> None:
        """Its devices are offline: the node died or was born again (they DBIRTH anew)."""
        for device_id in self.devices:
            birth, _ = self.device_times.get(device_id, (None, None))
            self.device_times[device_id] = (birth, now_ms)
        self.devices.clear()

    def status(self) -> NodeStatus:
        devices = tuple(
            DeviceStatus(d, d in self.devices, birth, death)
            for d, (birth, death) in sorted(self.device_times.items())
        )
        return NodeStatus(
            self.group_id,
            self.edge_node_id,
            self.born,
            self.birth_ms,
            self.death_ms,
            self.rebirths,
            self.seq_errors,
            devices,
        )

    def registry(self, device_id: str | None) -> _Registry | None:
        return self.metrics if device_id is None else self.devices.get(device_id)

    def datatype_of(self, device_id: str | None) -> DatatypeOf:
        registry = self.registry(device_id)
        if registry is None:
            return lambda _name, _alias: None
        return registry.datatype_of

    def metric_id(self, device_id: str | None, name: str) -> MetricId:
        key = (device_id, name)
        found = self._ids.get(key)
        if found is None:  # made once per metric: data messages ask for it every time
            found = self._ids[key] = MetricId(self.group_id, self.edge_node_id, device_id, name)
        return found

    def all_metric_ids(self) -> list[MetricId]:
        ids = [self.metric_id(None, name) for name in self.metrics.by_name]
        for device_id, registry in self.devices.items():
            ids.extend(self.metric_id(device_id, name) for name in registry.by_name)
        return ids


class HostSession:
    """Follows every edge node a Sparkplug host application hears from. Not thread-safe."""

    def __init__(self, config: SessionConfig | None = None) -> None:
        self.config = config or SessionConfig()
        self._nodes: dict[tuple[str, str], _Node] = {}
        self._timed: set[tuple[str, str]] = set()  # nodes with a reorder or resend deadline
        self._totals = Counters()

    @property
    def counters(self) -> Counters:
        """Totals since the session started (a copy)."""
        return self._totals.copy()

    def is_online(self, group_id: str, edge_node_id: str, device_id: str | None = None) -> bool:
        """True between a node's (or device's) birth and its death."""
        node = self._nodes.get((group_id, edge_node_id))
        if node is None or not node.born:
            return False
        return device_id is None or device_id in node.devices

    def nodes(self) -> list[NodeStatus]:
        """Every edge node heard from, with its devices, by group and node id."""
        return [self._nodes[key].status() for key in sorted(self._nodes)]

    def next_deadline_ms(self) -> int | None:
        """When `poll` next has something to do, or None if no timer is running."""
        deadlines = [
            d for key in self._timed if (d := self._deadline(self._nodes[key])) is not None
        ]
        return min(deadlines) if deadlines else None

    def poll(self, now_ms: int) -> HostOutput:
        """Run the timers due at `now_ms`: reorder timeouts and rebirth resends."""
        out = HostOutput()
        self._expire(now_ms, out)
        return self._finish(out)

    def handle(self, topic: str, payload: bytes, now_ms: int) -> HostOutput:
        """Process one MQTT message received at host time `now_ms`. Never raises for bad input."""
        out = HostOutput()
        self._expire(now_ms, out)
        try:
            parsed = parse_topic(topic)
        except TopicError as err:
            out.counters.malformed += 1
            _LOGGER.debug("ignoring message on %r: %s", topic, err)
            return self._finish(out)
        # STATE messages are about host applications (4.2.3), and NCMD/DCMD are what hosts
        # send to edge nodes (including our own rebirth requests): no edge node state in them.
        if isinstance(parsed, StateTopic) or parsed.message_type in (
            MessageType.NCMD,
            MessageType.DCMD,
        ):
            return self._finish(out)
        key = (parsed.group_id, parsed.edge_node_id)
        node = self._nodes.get(key)
        if node is None:
            node = self._nodes[key] = _Node(*key)
        if parsed.message_type == MessageType.NDEATH:
            self._ndeath(node, payload, now_ms, out)
        elif parsed.message_type == MessageType.NBIRTH:
            self._nbirth(node, payload, now_ms, out)
        else:
            self._sequenced(node, parsed, payload, now_ms, out)
        self._track(node)
        return self._finish(out)

    # ------------------------------------------------------------------ births and deaths

    def _nbirth(self, node: _Node, raw: bytes, now_ms: int, out: HostOutput) -> None:
        birth = self._decode(raw, None, out)
        if birth is None:
            return
        # 6.4.19 [tck-id-payloads-nbirth-seq]: an NBIRTH carries a seq of 0..255 and every later
        # message of the node counts on from it.
        if birth.seq is None or not 0 <= birth.seq < _SEQ_MODULUS:
            out.counters.malformed += 1
            _LOGGER.debug("NBIRTH of %s/%s has no valid seq", node.group_id, node.edge_node_id)
            return
        # 6.4.6 [tck-id-payloads-alias-birth-requirement]: births name every metric.
        if any(m.name is None for m in birth.metrics):
            out.counters.malformed += 1
            return
        # 4.2.1.1: a birth starts a new session; whatever the old one held or waited for is
        # superseded, including a pending rebirth request, which this birth answers. Devices
        # publish their DBIRTH again after it (5.17 [tck-id-operational-behavior-data-
        # commands-rebirth-action-2]).
        node.born = True
        node.bd_seq = _bd_seq(birth)  # [tck-id-topics-nbirth-bdseq-included]
        node.expected_seq = (birth.seq + 1) % _SEQ_MODULUS
        node.held.clear()
        node.devices_gone(now_ms)
        node.metrics = _Registry(birth.metrics, functools.partial(node.metric_id, None))
        node.rebirth_asked_ms = None
        node.birth_ms = now_ms
        _LOGGER.info(
            "edge node %s/%s born (bdSeq %s)", node.group_id, node.edge_node_id, node.bd_seq
        )
        self._publish(node, None, node.metrics, birth.metrics, birth.timestamp_ms, now_ms, out)

    def _ndeath(self, node: _Node, raw: bytes, now_ms: int, out: HostOutput) -> None:
        death = self._decode(raw, None, out)
        if death is None:
            return
        bd_seq = _bd_seq(death)
        # 4.2.1.3 [tck-id-payloads-ndeath-bdseq]: the NDEATH carries the bdSeq of the NBIRTH it
        # ends. A Will from an earlier connection can arrive after the node has reconnected and
        # been born again; it must not kill the new session. A death without bdSeq cannot be
        # told apart, so it is taken as the current one.
        if node.bd_seq is not None and bd_seq is not None and bd_seq != node.bd_seq:
            out.counters.old_deaths_ignored += 1
            _LOGGER.debug(
                "ignoring NDEATH of %s/%s with bdSeq %s: the current session is bdSeq %s",
                node.group_id,
                node.edge_node_id,
                bd_seq,
                node.bd_seq,
            )
            return
        # 5.5 [tck-id-operational-behavior-edge-node-termination-host-action-ndeath-node-tags-
        # stale] and [...-ndeath-devices-tags-stale]: every metric of the node's NBIRTH and its
        # devices' DBIRTHs goes stale, at the host's time.
        if node.born:
            _LOGGER.info("edge node %s/%s died", node.group_id, node.edge_node_id)
        out.stale.extend(StaleMetric(m, STALE_QUALITY, now_ms) for m in node.all_metric_ids())
        node.born = False
        node.bd_seq = None
        node.held.clear()
        node.devices_gone(now_ms)
        node.death_ms = now_ms
        node.metrics = _Registry()
        node.rebirth_asked_ms = None  # an offline node cannot answer; its next NBIRTH will come

    # -------------------------------------------------------------------- sequenced messages

    def _sequenced(
        self, node: _Node, topic: EdgeTopic, raw: bytes, now_ms: int, out: HostOutput
    ) -> None:
        if not node.born:
            # Data from a node whose NBIRTH this host never saw (it started later, or the birth
            # was lost) cannot be interpreted: only the birth defines the metrics
            # ([tck-id-topics-nbirth-metric-reqs]), so ask for it (5.17).
            out.counters.data_before_birth += 1
            self._ask_rebirth(node, "before_birth", now_ms, out)
            return
        payload = self._decode_message(node, topic, raw, now_ms, out)
        if payload is None:
            return
        seq = payload.seq
        # 6.4.5 [tck-id-payloads-sequence-num-always-included]
        if seq is None or not 0 <= seq < _SEQ_MODULUS:
            out.counters.malformed += 1
            return
        # 6.4.5 [tck-id-payloads-sequence-num-incrementing]: each message carries the previous
        # seq plus one, wrapping from 255 to 0; `ahead` is how far past the expected one it is.
        ahead = (seq - node.expected_seq) % _SEQ_MODULUS
        if ahead == 0:
            self._apply(node, topic, payload, now_ms, out)
            node.expected_seq = (seq + 1) % _SEQ_MODULUS
            self._release(node, now_ms, out)
        elif (
            self.config.reorder_timeout_ms > 0
            and ahead <= self.config.max_held_messages
            and seq not in node.held
        ):
            # 5.9 [tck-id-operational-behavior-host-reordering-start]: hold it and start the
            # Reorder Timeout (the deadline runs from the oldest held message).
            out.counters.out_of_order += 1
            node.held[seq] = _Held(topic, raw, now_ms)
        else:
            # Further ahead than the reorder window, a repeated seq, one from the past, or no
            # reordering configured: the stream has lost messages for certain.
            self._gap(node, now_ms, out)
            self._apply(node, topic, payload, now_ms, out)
            node.expected_seq = (seq + 1) % _SEQ_MODULUS

    def _release(self, node: _Node, now_ms: int, out: HostOutput) -> None:
        # 5.9 [tck-id-operational-behavior-host-reordering-success]: the missing message came;
        # what waited behind it goes through in order, and the timer stops once none waits.
        while node.expected_seq in node.held:
            held = node.held.pop(node.expected_seq)
            node.expected_seq = (node.expected_seq + 1) % _SEQ_MODULUS
            # Decoded again now: a DBIRTH released just before may have defined its metrics.
            payload = self._decode_message(node, held.topic, held.raw, now_ms, out)
            if payload is not None:
                self._apply(node, held.topic, payload, now_ms, out)

    def _gap(self, node: _Node, now_ms: int, out: HostOutput) -> None:
        # 5.9 [tck-id-operational-behavior-host-reordering-rebirth]: the missing messages are
        # lost. Ask for a rebirth, and meanwhile keep the data that did arrive, in seq order.
        out.counters.gaps += 1
        node.seq_errors += 1
        _LOGGER.info(
            "edge node %s/%s: seq %s never arrived",
            node.group_id,
            node.edge_node_id,
            node.expected_seq,
        )
        self._ask_rebirth(node, "gap", now_ms, out)
        while node.held:
            node.expected_seq = min(node.held, key=lambda s: (s - node.expected_seq) % _SEQ_MODULUS)
            self._release(node, now_ms, out)

    def _apply(
        self,
        node: _Node,
        topic: EdgeTopic,
        payload: Payload | DataColumns[MetricId],
        now_ms: int,
        out: HostOutput,
    ) -> None:
        kind, device_id = topic.message_type, topic.device_id
        if isinstance(payload, DataColumns):
            # Decoded against the registry of this very node or device (_decode_message).
            registry = node.registry(device_id)
            assert registry is not None
            if payload.keys:
                out.blocks.append(
                    ValueBlock(payload.keys, payload.values, payload.source_ms, registry.by_name)
                )
            if payload.others:
                self._publish(
                    node, device_id, registry, payload.others, payload.timestamp_ms, now_ms, out
                )
        elif kind == MessageType.DBIRTH:
            assert device_id is not None
            if any(m.name is None for m in payload.metrics):
                out.counters.malformed += 1  # [tck-id-payloads-alias-birth-requirement]
                return
            # 4.2.2.1: the device's metrics, typed, with their aliases and current values.
            born = node.devices[device_id] = _Registry(
                payload.metrics, functools.partial(node.metric_id, device_id)
            )
            _, death_ms = node.device_times.get(device_id, (None, None))
            node.device_times[device_id] = (now_ms, death_ms)
            self._publish(node, device_id, born, payload.metrics, payload.timestamp_ms, now_ms, out)
        elif kind == MessageType.DDEATH:
            assert device_id is not None
            dead = node.devices.pop(device_id, None)
            if dead is not None:
                birth_ms, _ = node.device_times.get(device_id, (None, None))
                node.device_times[device_id] = (birth_ms, now_ms)
                # 5.7 [tck-id-operational-behavior-edge-node-termination-host-action-ddeath-
                # devices-tags-stale]: stale as of the DDEATH's own timestamp.
                at = payload.timestamp_ms if payload.timestamp_ms is not None else now_ms
                out.stale.extend(
                    StaleMetric(node.metric_id(device_id, name), STALE_QUALITY, at)
                    for name in dead.by_name
                )
        else:  # NDATA, DDATA decoded without a registry: a device with no DBIRTH
            out.counters.data_before_birth += 1
            self._ask_rebirth(node, "before_birth", now_ms, out)

    def _publish(
        self,
        node: _Node,
        device_id: str | None,
        registry: _Registry,
        metrics: Iterable[Metric],
        payload_ms: int | None,
        now_ms: int,
        out: HostOutput,
    ) -> None:
        for metric in metrics:
            name = registry.resolve(metric)
            if name is None:
                # 6.4.23: a metric its birth did not define is a reason to request a rebirth.
                out.counters.unknown_metrics += 1
                self._ask_rebirth(node, "unknown_metric", now_ms, out)
                continue
            if isinstance(metric.value, Unsupported):
                continue  # Templates are registered from the birth but not published
            # 6.4.6 [tck-id-payloads-name-birth-data-requirement]: metrics carry their own
            # acquisition time; fall back to the payload's, then to the host's.
            source_ms = metric.timestamp_ms
            if source_ms is None:
                source_ms = payload_ms if payload_ms is not None else now_ms
            out.values.append(
                MetricUpdate(
                    metric=node.metric_id(device_id, name),
                    datatype=registry.by_name[name] or metric.datatype,
                    value=metric.value,
                    source_ms=source_ms,
                    quality=_quality(metric),
                    historical=metric.is_historical,  # 6.4.6: not a current value
                    transient=metric.is_transient,
                )
            )

    # ---------------------------------------------------------------------------- rebirths

    def _ask_rebirth(
        self, node: _Node, reason: RebirthReason, now_ms: int, out: HostOutput
    ) -> None:
        if node.rebirth_asked_ms is not None:
            return  # one request per missing birth; the resend timer repeats it
        node.rebirth_asked_ms = now_ms
        node.rebirth_reason = reason
        out.counters.rebirths_requested += 1
        node.rebirths += 1
        # The host logs the request it sends; here only at debug, not to say it twice.
        _LOGGER.debug(
            "asking edge node %s/%s for a rebirth (%s)", node.group_id, node.edge_node_id, reason
        )
        out.actions.append(_rebirth_request(node, reason, False, now_ms))

    def _expire(self, now_ms: int, out: HostOutput) -> None:
        for key in sorted(self._timed):
            node = self._nodes[key]
            if (
                node.held
                and min(h.arrived_ms for h in node.held.values()) + (self.config.reorder_timeout_ms)
                <= now_ms
            ):
                self._gap(node, now_ms, out)
            asked = node.rebirth_asked_ms
            if asked is not None and asked + self.config.rebirth_resend_ms <= now_ms:
                # NCMD is QoS 0 ([tck-id-topics-ncmd-mqtt]) and can be lost: ask again.
                node.rebirth_asked_ms = now_ms
                out.counters.rebirths_resent += 1
                node.rebirths += 1
                out.actions.append(_rebirth_request(node, node.rebirth_reason, True, now_ms))
            self._track(node)

    def _deadline(self, node: _Node) -> int | None:
        deadlines = []
        if node.held:
            oldest = min(h.arrived_ms for h in node.held.values())
            deadlines.append(oldest + self.config.reorder_timeout_ms)
        if node.rebirth_asked_ms is not None:
            deadlines.append(node.rebirth_asked_ms + self.config.rebirth_resend_ms)
        return min(deadlines) if deadlines else None

    def _track(self, node: _Node) -> None:
        key = (node.group_id, node.edge_node_id)
        if node.held or node.rebirth_asked_ms is not None:
            self._timed.add(key)
        else:
            self._timed.discard(key)

    # ------------------------------------------------------------------------------ helpers

    def _decode_message(
        self, node: _Node, topic: EdgeTopic, raw: bytes, now_ms: int, out: HostOutput
    ) -> Payload | DataColumns[MetricId] | None:
        """Data messages of a born node or device go the columnar way, the rest in full."""
        registry = node.registry(topic.device_id)
        if registry is None or topic.message_type not in (MessageType.NDATA, MessageType.DDATA):
            return self._decode(raw, node.datatype_of(topic.device_id), out)
        try:
            return decode_data(raw, registry.defined_by_alias, registry.defined_by_name, now_ms)
        except PayloadError as err:
            out.counters.malformed += 1
            _LOGGER.debug("ignoring a malformed payload: %s", err)
            return None

    def _decode(
        self, raw: bytes, datatype_of: DatatypeOf | None, out: HostOutput
    ) -> Payload | None:
        try:
            return decode_payload(raw, datatype_of)
        except PayloadError as err:
            out.counters.malformed += 1
            _LOGGER.debug("ignoring a malformed payload: %s", err)
            return None

    def _finish(self, out: HostOutput) -> HostOutput:
        self._totals.add(out.counters)
        return out


def _rebirth_request(
    node: _Node, reason: RebirthReason, resend: bool, now_ms: int
) -> RebirthRequest:
    # 5.17 [tck-id-operational-behavior-data-commands-ncmd-rebirth-verb]: an NCMD to the node.
    topic = EdgeTopic(node.group_id, MessageType.NCMD, node.edge_node_id).topic
    return RebirthRequest(
        node.group_id, node.edge_node_id, reason, resend, topic, encode_rebirth_request(now_ms)
    )


def _bd_seq(payload: Payload) -> int | None:
    for metric in payload.metrics:
        if metric.name == BDSEQ_METRIC and isinstance(metric.value, int):
            return int(metric.value)
    return None


def _quality(metric: Metric) -> int:
    value = metric.value
    if isinstance(value, float) and not math.isfinite(value):
        # NaN or an infinity is no reading, whatever the Quality property says: Kiln stores a
        # non-finite number only with a Bad quality, on every path (kiln.core.admission).
        return int(Quality.BAD)
    prop = metric.properties.get("Quality")
    if prop is not None and isinstance(prop.value, int) and not isinstance(prop.value, bool):
        return int(_SPARKPLUG_QUALITY.get(prop.value, Quality.UNCERTAIN))
    if metric.is_null or metric.value is None:
        return int(Quality.BAD)  # no value to be good
    return int(Quality.GOOD)
