"""The host-application state machine, driven message by message at exact host times."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.connectors.sparkplug import sparkplug_b_pb2 as pb
from kiln.connectors.sparkplug.codec import (
    DataType,
    Metric,
    Payload,
    Property,
    decode_payload,
    encode_payload,
)
from kiln.connectors.sparkplug.session import (
    STALE_QUALITY,
    Counters,
    DeviceStatus,
    HostOutput,
    HostSession,
    MetricId,
    MetricUpdate,
    NodeStatus,
    SessionConfig,
    StaleMetric,
)
from kiln.core.quality import Quality

G, N = "Plant1", "Line4"
NBIRTH = f"spBv1.0/{G}/NBIRTH/{N}"
NDATA = f"spBv1.0/{G}/NDATA/{N}"
NDEATH = f"spBv1.0/{G}/NDEATH/{N}"
NCMD = f"spBv1.0/{G}/NCMD/{N}"


def dtopic(kind: str, device: str = "Filler") -> str:
    return f"spBv1.0/{G}/{kind}/{N}/{device}"


def nid(name: str, device: str | None = None) -> MetricId:
    return MetricId(G, N, device, name)


BIRTH_METRICS = (
    Metric(name="bdSeq", timestamp_ms=1000, datatype=DataType.INT64, value=7),
    Metric(name="Node Control/Rebirth", timestamp_ms=1000, datatype=DataType.BOOLEAN, value=False),
    Metric(name="temp", alias=1, timestamp_ms=1000, datatype=DataType.DOUBLE, value=20.5),
    Metric(name="count", alias=2, timestamp_ms=1000, datatype=DataType.INT16, value=0),
)


def nbirth(seq: int = 0, bd_seq: int = 7, metrics: Iterable[Metric] = BIRTH_METRICS) -> bytes:
    ms = [
        Metric(name="bdSeq", timestamp_ms=1000, datatype=DataType.INT64, value=bd_seq)
        if m.name == "bdSeq"
        else m
        for m in metrics
    ]
    return encode_payload(Payload(timestamp_ms=1000, metrics=tuple(ms), seq=seq))


# What the births below declare, for encoding data messages that omit the datatype.
ALIAS_TYPES = {1: DataType.DOUBLE, 2: DataType.INT16, 50: DataType.INT8, 100: DataType.FLOAT}
NAME_TYPES = {"temp": DataType.DOUBLE}


def datatype_of(name: str | None, alias: int | None) -> DataType | None:
    return ALIAS_TYPES.get(alias) if alias is not None else NAME_TYPES.get(name or "")


def ndata(seq: int | None, *metrics: Metric, timestamp_ms: int | None = 2000) -> bytes:
    payload = Payload(timestamp_ms=timestamp_ms, metrics=metrics, seq=seq)
    return encode_payload(payload, datatype_of)


def temp(value: float, ts: int) -> Metric:
    """A data-message metric as edge nodes send it: alias only, no name, no datatype."""
    return Metric(alias=1, timestamp_ms=ts, datatype=None, value=value)


def temp_wire(value: float, ts: int) -> Metric:
    return Metric(alias=1, timestamp_ms=ts, datatype=DataType.DOUBLE, value=value)


def ndeath(bd_seq: int) -> bytes:
    metric = Metric(name="bdSeq", datatype=DataType.INT64, value=bd_seq)
    return encode_payload(Payload(timestamp_ms=1, metrics=(metric,)))


def values_of(out: HostOutput) -> list[tuple[str, object, int]]:
    return [(v.metric.name, v.value, v.source_ms) for v in out.updates()]


def born(session: HostSession, now_ms: int = 1_000, seq: int = 0, bd_seq: int = 7) -> HostOutput:
    out = session.handle(NBIRTH, nbirth(seq, bd_seq), now_ms)
    assert not out.actions
    return out


def test_birth_then_data_by_alias() -> None:
    session = HostSession()
    out = born(session)
    assert out.updates() == [
        MetricUpdate(nid("bdSeq"), DataType.INT64, 7, 1000, Quality.GOOD),
        MetricUpdate(nid("Node Control/Rebirth"), DataType.BOOLEAN, False, 1000, Quality.GOOD),
        MetricUpdate(nid("temp"), DataType.DOUBLE, 20.5, 1000, Quality.GOOD),
        MetricUpdate(nid("count"), DataType.INT16, 0, 1000, Quality.GOOD),
    ]
    assert session.is_online(G, N)

    # The data message names the metric by alias and omits its datatype; the birth supplies it.
    raw = pb.Payload(timestamp=2000, seq=1)
    raw.metrics.add(alias=1, timestamp=1900, double_value=21.0)
    raw.metrics.add(alias=2, timestamp=1950, int_value=0xFFFF)  # Int16 -1
    out = session.handle(NDATA, raw.SerializeToString(), 2_005)
    assert out.updates() == [
        MetricUpdate(nid("temp"), DataType.DOUBLE, 21.0, 1900, Quality.GOOD),
        MetricUpdate(nid("count"), DataType.INT16, -1, 1950, Quality.GOOD),
    ]
    assert not out.actions and out.counters == Counters()
    assert session.next_deadline_ms() is None


def test_a_seq_gap_yields_one_rebirth_request_one_resend_and_none_after_the_birth() -> None:
    session = HostSession(SessionConfig(reorder_timeout_ms=2_000, rebirth_resend_ms=10_000))
    born(session)
    assert values_of(session.handle(NDATA, ndata(1, temp(21.0, 1500)), 1_500)) == [
        ("temp", 21.0, 1500)
    ]
    out = session.handle(NDATA, ndata(3, temp(23.0, 2000)), 2_000)  # seq 2 is missing
    assert out.updates() == [] and out.actions == []
    assert out.counters.out_of_order == 1
    assert session.next_deadline_ms() == 4_000

    assert session.poll(3_999).actions == []
    out = session.poll(4_000)  # the Reorder Timeout has elapsed
    (request,) = out.actions
    assert (request.group_id, request.edge_node_id, request.reason, request.resend) == (
        G,
        N,
        "gap",
        False,
    )
    assert request.topic == NCMD
    (rebirth,) = decode_payload(request.payload).metrics
    assert (rebirth.name, rebirth.value, rebirth.datatype) == (
        "Node Control/Rebirth",
        True,
        DataType.BOOLEAN,
    )
    assert decode_payload(request.payload).timestamp_ms == 4_000
    assert values_of(out) == [("temp", 23.0, 2000)]  # what did arrive is kept, in order
    assert (out.counters.gaps, out.counters.rebirths_requested) == (1, 1)

    # Data keeps coming before the node reacts; another gap does not ask again.
    assert session.handle(NDATA, ndata(4, temp(24.0, 4100)), 4_100).actions == []
    out = session.handle(NDATA, ndata(9, temp(29.0, 4200)), 4_200)
    assert out.actions == [] and session.poll(6_200).actions == []
    assert session.counters.gaps == 2 and session.counters.rebirths_requested == 1

    # No NBIRTH within the resend interval: the request (QoS 0, maybe lost) is repeated once.
    assert session.next_deadline_ms() == 14_000
    assert session.poll(13_999).actions == []
    (resend,) = session.poll(14_000).actions
    assert resend.resend and resend.reason == "gap" and resend.topic == NCMD
    assert decode_payload(resend.payload).timestamp_ms == 14_000
    assert session.poll(14_001).actions == []

    born(session, now_ms=15_000)
    assert session.poll(100_000).actions == []
    assert session.next_deadline_ms() is None
    totals = session.counters
    assert (totals.rebirths_requested, totals.rebirths_resent) == (1, 1)


def test_reordering_within_the_timeout_is_repaired_without_a_rebirth() -> None:
    session = HostSession(SessionConfig(reorder_timeout_ms=2_000))
    born(session)
    assert session.handle(NDATA, ndata(3, temp(23.0, 1300)), 1_300).updates() == []
    assert session.handle(NDATA, ndata(2, temp(22.0, 1200)), 1_400).updates() == []
    out = session.handle(NDATA, ndata(1, temp(21.0, 1100)), 3_299)  # 1 ms before the deadline
    assert values_of(out) == [("temp", 21.0, 1100), ("temp", 22.0, 1200), ("temp", 23.0, 1300)]
    assert out.actions == []
    assert session.next_deadline_ms() is None
    assert session.poll(60_000).actions == []
    assert session.counters == Counters(out_of_order=2)


def test_seq_wraps_from_255_to_0_also_while_reordering() -> None:
    session = HostSession()
    born(session, seq=253)
    assert values_of(session.handle(NDATA, ndata(254, temp(1.0, 1)), 1_001))
    assert session.handle(NDATA, ndata(0, temp(3.0, 3)), 1_002).updates() == []  # early, across 255
    out = session.handle(NDATA, ndata(255, temp(2.0, 2)), 1_003)
    assert [v.value for v in out.updates()] == [2.0, 3.0]
    assert values_of(session.handle(NDATA, ndata(1, temp(4.0, 4)), 1_004)) == [("temp", 4.0, 4)]
    assert session.counters == Counters(out_of_order=1)


def test_a_reordered_dbirth_types_the_ddata_held_behind_it() -> None:
    session = HostSession()
    born(session)
    raw = pb.Payload(timestamp=1100, seq=2)
    raw.metrics.add(alias=50, timestamp=1100, int_value=0xFF)  # the DBIRTH says Int8: -1
    assert session.handle(dtopic("DDATA"), raw.SerializeToString(), 1_100).updates() == []
    dbirth = Payload(
        timestamp_ms=1050,
        seq=1,
        metrics=(
            Metric(name="level", alias=50, timestamp_ms=1050, datatype=DataType.INT8, value=5),
        ),
    )
    out = session.handle(dtopic("DBIRTH"), encode_payload(dbirth), 1_200)
    assert out.updates() == [
        MetricUpdate(nid("level", "Filler"), DataType.INT8, 5, 1050, Quality.GOOD),
        MetricUpdate(nid("level", "Filler"), DataType.INT8, -1, 1100, Quality.GOOD),
    ]
    assert out.actions == [] and session.is_online(G, N, "Filler")


def node_with_device(session: HostSession, bd_seq: int = 7) -> None:
    born(session, bd_seq=bd_seq)
    dbirth = Payload(
        timestamp_ms=1000,
        seq=1,
        metrics=(
            Metric(name="speed", alias=100, timestamp_ms=1000, datatype=DataType.FLOAT, value=1.5),
            Metric(
                name="state", alias=101, timestamp_ms=1000, datatype=DataType.STRING, value="run"
            ),
        ),
    )
    assert len(session.handle(dtopic("DBIRTH"), encode_payload(dbirth), 1_000).updates()) == 2


def test_ndeath_with_the_current_bdseq_makes_every_metric_stale_at_host_time() -> None:
    session = HostSession()
    node_with_device(session)
    out = session.handle(NDEATH, ndeath(7), 5_000)
    assert len(out.stale) == 6
    assert set(out.stale) == {
        StaleMetric(m, STALE_QUALITY, 5_000)
        for m in [
            nid("bdSeq"),
            nid("Node Control/Rebirth"),
            nid("temp"),
            nid("count"),
            nid("speed", "Filler"),
            nid("state", "Filler"),
        ]
    }
    assert out.updates() == [] and out.actions == []
    assert not session.is_online(G, N) and not session.is_online(G, N, "Filler")


def test_a_late_ndeath_with_an_old_bdseq_changes_nothing() -> None:
    session = HostSession()
    born(session, bd_seq=7)
    session.handle(NDEATH, ndeath(7), 2_000)
    # The node reconnects (new Will, bdSeq 8) and is born again; then the Will of the first
    # connection is delivered late.
    born(session, now_ms=3_000, bd_seq=8)
    out = session.handle(NDEATH, ndeath(7), 3_500)
    assert out.stale == [] and out.updates() == [] and out.actions == []
    assert out.counters == Counters(old_deaths_ignored=1)
    assert session.is_online(G, N)
    assert values_of(session.handle(NDATA, ndata(1, temp(22.0, 3600)), 3_600)) == [
        ("temp", 22.0, 3600)
    ]
    assert len(session.handle(NDEATH, ndeath(8), 4_000).stale) == 4


def test_ddeath_makes_the_device_metrics_stale_at_the_ddeath_timestamp() -> None:
    session = HostSession()
    node_with_device(session)
    ddeath = encode_payload(Payload(timestamp_ms=4_900, seq=2))
    out = session.handle(dtopic("DDEATH"), ddeath, 5_000)
    assert out.stale == [
        StaleMetric(nid("speed", "Filler"), STALE_QUALITY, 4_900),
        StaleMetric(nid("state", "Filler"), STALE_QUALITY, 4_900),
    ]
    assert not session.is_online(G, N, "Filler") and session.is_online(G, N)
    # Data from the dead device needs its birth again.
    data = encode_payload(
        Payload(
            timestamp_ms=5_100,
            seq=3,
            metrics=(Metric(alias=100, value=2.0, datatype=DataType.FLOAT),),
        )
    )
    out = session.handle(dtopic("DDATA"), data, 5_100)
    assert out.updates() == [] and len(out.actions) == 1 and out.actions[0].reason == "before_birth"
    assert out.counters.data_before_birth == 1


def test_nodes_and_devices_report_online_births_deaths_rebirths_and_seq_errors() -> None:
    session = HostSession(SessionConfig(reorder_timeout_ms=0, rebirth_resend_ms=1_000))
    assert session.nodes() == []
    node_with_device(session)  # NBIRTH and DBIRTH at 1_000
    filler = DeviceStatus("Filler", True, 1_000, None)
    assert session.nodes() == [NodeStatus(G, N, True, 1_000, None, 0, 0, (filler,))]

    ddeath = encode_payload(Payload(timestamp_ms=1_900, seq=2))
    session.handle(dtopic("DDEATH"), ddeath, 2_000)
    (node,) = session.nodes()
    assert node.online and node.devices == (DeviceStatus("Filler", False, 1_000, 2_000),)

    session.handle(NDATA, ndata(5, temp(21.0, 2_500)), 2_500)  # seq 3 and 4 never come
    session.poll(3_500)  # the request is repeated: two rebirth requests, one gap
    (node,) = session.nodes()
    assert (node.seq_errors, node.rebirths_requested) == (1, 2)

    session.handle(NDEATH, ndeath(7), 4_000)
    assert session.nodes() == [
        NodeStatus(G, N, False, 1_000, 4_000, 2, 1, (DeviceStatus("Filler", False, 1_000, 2_000),))
    ]
    born(session, now_ms=5_000)
    (node,) = session.nodes()
    assert (node.online, node.last_birth_ms, node.last_death_ms) == (True, 5_000, 4_000)
    assert not node.devices[0].online  # until its DBIRTH comes again

    # A node heard from but never seen born is offline, with no birth time.
    session.handle(f"spBv1.0/{G}/NDATA/Other", ndata(1, temp(1.0, 6_000)), 6_000)
    other = session.nodes()[1]
    assert (other.edge_node_id, other.online, other.last_birth_ms, other.rebirths_requested) == (
        "Other",
        False,
        None,
        1,
    )


def test_data_before_any_birth_asks_for_a_rebirth_once() -> None:
    session = HostSession()
    outs = [session.handle(NDATA, ndata(s, temp_wire(1.0, s)), 100 + s) for s in range(3)]
    outs.append(session.handle(dtopic("DBIRTH"), ndata(3), 103))
    assert [len(o.actions) for o in outs] == [1, 0, 0, 0]
    assert outs[0].actions[0].reason == "before_birth" and outs[0].actions[0].topic == NCMD
    assert all(o.updates() == [] for o in outs)
    assert session.counters == Counters(data_before_birth=4, rebirths_requested=1)
    assert not session.is_online(G, N)
    born(session, now_ms=500)
    assert session.next_deadline_ms() is None


def test_historical_and_transient_metrics_are_flagged() -> None:
    session = HostSession()
    born(session)
    historical = Metric(alias=1, timestamp_ms=500, value=19.0, is_historical=True)
    transient = Metric(alias=2, timestamp_ms=1500, value=3, is_transient=True)
    out = session.handle(NDATA, ndata(1, historical, transient), 1_500)
    assert [(v.metric.name, v.historical, v.transient) for v in out.updates()] == [
        ("temp", True, False),
        ("count", False, True),
    ]
    assert out.updates()[0].source_ms == 500


def test_an_unknown_alias_asks_for_a_rebirth_once_and_keeps_known_metrics() -> None:
    session = HostSession()
    born(session)
    stranger = Metric(alias=99, timestamp_ms=1100, datatype=DataType.INT32, value=5)
    out = session.handle(NDATA, ndata(1, stranger, temp(21.0, 1100)), 1_100)
    assert values_of(out) == [("temp", 21.0, 1100)]
    assert [a.reason for a in out.actions] == ["unknown_metric"]
    out = session.handle(NDATA, ndata(2, stranger), 1_200)
    assert out.actions == [] and out.counters.unknown_metrics == 1
    by_name = Metric(name="not in birth", datatype=DataType.INT32, value=1)
    assert session.handle(NDATA, ndata(3, by_name), 1_300).updates() == []
    assert session.counters == Counters(unknown_metrics=3, rebirths_requested=1)


def test_metrics_named_without_aliases_are_resolved_by_name() -> None:
    session = HostSession()
    born(session)
    out = session.handle(NDATA, ndata(1, Metric(name="temp", timestamp_ms=1, value=2.5)), 1_001)
    assert values_of(out) == [("temp", 2.5, 1)] and out.actions == []


def test_quality_comes_from_the_quality_property_and_nulls_are_bad() -> None:
    session = HostSession()
    born(session)
    stale_at_edge = Metric(
        alias=1, timestamp_ms=1, value=3.0, properties={"Quality": Property(DataType.INT32, 500)}
    )
    bad_at_edge = Metric(
        alias=1, timestamp_ms=2, value=3.0, properties={"Quality": Property(DataType.INT32, 0)}
    )
    null = Metric(alias=2, timestamp_ms=3, datatype=DataType.INT16, is_null=True)
    out = session.handle(NDATA, ndata(1, stale_at_edge, bad_at_edge, null), 1_001)
    assert [(v.value, v.quality) for v in out.updates()] == [
        (3.0, Quality.UNCERTAIN_LAST_USABLE_VALUE),
        (3.0, Quality.BAD),
        (None, Quality.BAD),
    ]


def test_source_time_falls_back_to_the_payload_then_the_host() -> None:
    session = HostSession()
    born(session)
    out = session.handle(
        NDATA, ndata(1, temp(1.0, 5), Metric(alias=1, value=2.0), timestamp_ms=777), 900
    )
    assert [v.source_ms for v in out.updates()] == [5, 777]
    no_time = ndata(2, Metric(alias=1, value=3.0), timestamp_ms=None)
    assert [v.source_ms for v in session.handle(NDATA, no_time, 901).updates()] == [901]


def test_a_message_too_far_ahead_is_a_gap_at_once() -> None:
    session = HostSession(SessionConfig(max_held_messages=4))
    born(session)
    out = session.handle(NDATA, ndata(3, temp(3.0, 3)), 1_001)  # held
    assert out.updates() == []
    out = session.handle(NDATA, ndata(10, temp(10.0, 10)), 1_002)  # 9 ahead of 1: lost for sure
    assert values_of(out) == [("temp", 3.0, 3), ("temp", 10.0, 10)]
    assert len(out.actions) == 1 and out.counters.gaps == 1
    assert values_of(session.handle(NDATA, ndata(11, temp(11.0, 11)), 1_003)) == [
        ("temp", 11.0, 11)
    ]


def test_without_a_reorder_timeout_every_out_of_order_message_is_a_gap() -> None:
    session = HostSession(SessionConfig(reorder_timeout_ms=0))
    born(session)
    out = session.handle(NDATA, ndata(2, temp(2.0, 2)), 1_001)
    assert values_of(out) == [("temp", 2.0, 2)] and len(out.actions) == 1


def test_malformed_input_is_counted_never_raised() -> None:
    session = HostSession()
    born(session)
    assert session.handle("spBv1.0/G/BOGUS/N", b"", 1).counters == Counters(malformed=1)
    assert session.handle(NDATA, b"\xff\xff", 2).counters == Counters(malformed=1)
    no_seq = encode_payload(Payload(metrics=(temp_wire(1.0, 1),)))
    assert session.handle(NDATA, no_seq, 3).counters == Counters(malformed=1)
    assert session.handle(NBIRTH, nbirth(seq=300), 4).counters == Counters(malformed=1)
    nameless = (Metric(alias=1, datatype=DataType.INT8, value=1),)
    assert session.handle(NBIRTH, nbirth(metrics=nameless), 5).counters == Counters(malformed=1)
    assert session.counters.malformed == 5
    assert session.is_online(G, N)  # the good birth still stands


def test_commands_and_host_state_messages_are_not_edge_node_traffic() -> None:
    session = HostSession()
    born(session)
    for topic in (NCMD, dtopic("DCMD"), "spBv1.0/STATE/scada"):
        out = session.handle(topic, b'{"online": true, "timestamp": 1}', 2_000)
        assert out == HostOutput()
    assert session.counters == Counters()


def test_nbirth_seq_may_start_anywhere_and_a_rebirth_resets_it() -> None:
    session = HostSession()
    born(session, seq=42)
    assert values_of(session.handle(NDATA, ndata(43, temp(1.0, 1)), 1_001))
    born(session, now_ms=1_002, seq=0)
    assert values_of(session.handle(NDATA, ndata(1, temp(2.0, 2)), 1_003))
    assert session.counters == Counters()


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="max_held_messages"):
        SessionConfig(max_held_messages=200)
    with pytest.raises(ValueError, match="rebirth_resend_ms"):
        SessionConfig(rebirth_resend_ms=0)
    with pytest.raises(ValueError, match="reorder_timeout_ms"):
        SessionConfig(reorder_timeout_ms=-1)


TOPICS = [NBIRTH, NDATA, NDEATH, NCMD, dtopic("DBIRTH"), dtopic("DDATA"), dtopic("DDEATH"), "junk"]
messages = st.one_of(
    st.binary(max_size=30),
    st.integers(0, 255).map(lambda s: nbirth(seq=s)),
    st.tuples(st.integers(0, 255), st.floats(allow_nan=False)).map(
        lambda t: ndata(t[0], temp_wire(t[1], 1))
    ),
    st.integers(0, 9).map(ndeath),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(TOPICS), messages, st.integers(0, 5_000)),
        max_size=25,
    )
)
def test_any_message_sequence_is_handled_without_raising(
    steps: list[tuple[str, bytes, int]],
) -> None:
    session = HostSession(SessionConfig(reorder_timeout_ms=1_000, rebirth_resend_ms=2_000))
    now = 0
    requested = 0
    for topic, payload, dt in steps:
        now += dt
        out = session.handle(topic, payload, now)
        requested += sum(not a.resend for a in out.actions)
        out = session.poll(now + 1)
        requested += sum(not a.resend for a in out.actions)
        deadline = session.next_deadline_ms()
        assert deadline is None or deadline > now + 1
    assert requested == session.counters.rebirths_requested
