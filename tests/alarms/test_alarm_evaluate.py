"""Evaluating compiled alarms (issue 14): every kind of condition, limits and set-points that
follow tags, state names, expressions with held values, suppression, restore after a restart,
and the same changes whether a series comes in one batch or many."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from kiln.alarms.compile import compile_alarms
from kiln.alarms.definitions import AlarmDef
from kiln.alarms.evaluate import Evaluator
from kiln.alarms.records import ConditionChange
from kiln.core.quality import Quality
from kiln.core.values import ValueBatch
from kiln.model import AssetDef, AssetTypeDef, DataType, Level, TagDef

ALARM: TypeAdapter[Any] = TypeAdapter(AlarmDef)
A = "acme/plant1/line1/mill"
S = 1_000_000
BAD = int(Quality.BAD_SENSOR_FAILURE)
STATES = {0: "stopped", 1: "running", 2: "planned_stop", 3: "fault"}
MACHINE = AssetTypeDef(
    name="machine",
    tags=(
        *(TagDef(name=n) for n in ("temp", "limit", "speed", "sp", "load")),
        TagDef(name="state", data_type=DataType.STATE, states=STATES),
        TagDef(name="mode", data_type=DataType.STRING),
    ),
)


def evaluator(*alarms: dict[str, Any]) -> Evaluator:
    defs = tuple(ALARM.validate_python(a) for a in alarms)
    asset = AssetDef(path=A, level=Level.ASSET, type="machine", alarms=defs)
    return Evaluator(compile_alarms([MACHINE], [asset]))


Point = tuple[float, str, Any] | tuple[float, str, Any, int]


def feed(ev: Evaluator, points: Sequence[Point]) -> list[ConditionChange]:
    """Evaluate (seconds, tag name, value[, quality]) points as one batch."""
    return ev.evaluate(
        ValueBatch(
            paths=[f"{A}/{p[1]}" for p in points],
            values=[p[2] for p in points],
            source_us=[round(p[0] * S) for p in points],
            qualities=[p[3] if len(p) > 3 else 0 for p in points],
            receive_us=0,
        )
    )


def ch(
    alarm: str, event: str, seconds: float, value: Any = None, limit: float | None = None
) -> ConditionChange:
    return ConditionChange(f"{A}/{alarm}", event, round(seconds * S), value, limit)  # type: ignore[arg-type]


def test_limits_raise_and_clear_with_the_limit_in_force() -> None:
    ev = evaluator(
        {"kind": "limit", "name": "hot", "tag": "temp", "hi": {"value": 80, "deadband": 5}}
    )
    got = feed(ev, [(0, "temp", 50), (1, "temp", 85), (2, "temp", 77), (3, "temp", 74)])
    assert got == [ch("hot:hi", "active", 1, 85.0, 80.0), ch("hot:hi", "cleared", 3, 74.0, 80.0)]
    assert ev.paths == frozenset({f"{A}/temp"})


def test_a_limit_from_a_tag_follows_its_latest_value_and_waits_for_one() -> None:
    ev = evaluator({"kind": "limit", "name": "hot", "tag": "temp", "hi": {"value": "limit"}})
    # No limit value yet: not evaluated, however high the value.
    assert feed(ev, [(0, "temp", 500)]) == []
    got = feed(ev, [(1, "limit", 80), (1, "temp", 90), (2, "limit", 95), (3, "temp", 91)])
    assert got == [ch("hot:hi", "active", 1, 90.0, 80.0), ch("hot:hi", "cleared", 3, 91.0, 95.0)]
    assert ev.paths == frozenset({f"{A}/temp", f"{A}/limit"})


def test_deviation_from_the_setpoint_on_both_sides_with_deadband() -> None:
    ev = evaluator(
        {
            "kind": "deviation",
            "name": "dev",
            "tag": "speed",
            "setpoint": "sp",
            "high": 5,
            "low": 3,
            "deadband": 1,
        }
    )
    got = feed(
        ev,
        [
            (0, "sp", 100),
            (1, "speed", 105),  # +5: not above 5
            (2, "speed", 106),  # +6: high
            (3, "speed", 104.5),  # +4.5: inside the deadband, still high
            (4, "speed", 103.5),  # +3.5: clears
            (5, "speed", 96.5),  # -3.5: low
            (6, "sp", 98),  # the set-point moves: low is now below 95
            (7, "speed", 96.5),  # -1.5: clears
        ],
    )
    assert got == [
        ch("dev:deviation_high", "active", 2, 106.0, 105.0),
        ch("dev:deviation_high", "cleared", 4, 103.5, 105.0),
        ch("dev:deviation_low", "active", 5, 96.5, 97.0),
        ch("dev:deviation_low", "cleared", 7, 96.5, 95.0),
    ]


def test_two_definitions_with_the_same_limit_on_one_tag_are_both_kept() -> None:
    ev = evaluator(
        {"kind": "limit", "name": "warm", "tag": "temp", "hi": {"value": 60}},
        {"kind": "limit", "name": "hot", "tag": "temp", "hi": {"value": 80}, "on_delay_s": 2},
    )
    got = feed(ev, [(0, "temp", 70), (1, "temp", 90), (5, "temp", 50)])
    assert got == [
        ch("warm:hi", "active", 0, 70.0, 60.0),
        ch("hot:hi", "active", 3, 90.0, 80.0),
        ch("warm:hi", "cleared", 5, 50.0, 60.0),
        ch("hot:hi", "cleared", 5, 50.0, 80.0),
    ]


def test_rate_of_change_bad_quality_and_stale() -> None:
    ev = evaluator(
        {
            "kind": "rate_of_change",
            "name": "jump",
            "tag": "load",
            "max_rate_per_s": 2,
            "window_s": 5,
        },
        {"kind": "bad_quality", "name": "bq", "tag": "temp"},
        {"kind": "stale", "name": "quiet", "tag": "temp", "after_s": 10},
        {"kind": "limit", "name": "hot", "tag": "temp", "hi": {"value": 80}},
    )
    got = feed(ev, [(0, "load", 0), (1, "load", 10), (0, "temp", 50), (2, "temp", 999, BAD)])
    # Bad quality: its own alarm (OPC UA Part 4, 7.39.2 severity Bad); the value trips no limit.
    assert got == [ch("jump", "active", 1, 10.0), ch("bq", "active", 2, 999.0)]
    assert ev.tick(13 * S) == [ch("quiet", "active", 12)]
    assert feed(ev, [(14, "temp", 50)]) == [
        ch("quiet", "cleared", 14),
        ch("bq", "cleared", 14, 50.0),
    ]


def test_discrete_by_state_name_and_by_value() -> None:
    ev = evaluator(
        {"kind": "discrete", "name": "fault", "tag": "state", "states": ["fault", 2]},
        {"kind": "discrete", "name": "manual", "tag": "mode", "states": ["manual"]},
    )
    got = feed(
        ev,
        [
            (0, "state", 1),
            (1, "state", 3),
            (2, "state", 3, BAD),  # Bad: the state is not known, the alarm holds
            (3, "state", 2),  # 2 (planned_stop) was listed by value
            (4, "state", 0),
            (5, "mode", "manual"),
            (6, "mode", "auto"),
        ],
    )
    assert got == [
        ch("fault", "active", 1, "fault"),
        ch("fault", "cleared", 4, "stopped"),
        ch("manual", "active", 5, "manual"),
        ch("manual", "cleared", 6, "auto"),
    ]


def test_an_expression_holds_values_compares_state_names_and_waits_for_all() -> None:
    ev = evaluator(
        {
            "kind": "expression",
            "name": "slow",
            "expression": "state == 'running' and speed < sp - 10",
            "on_delay_s": 1,
        }
    )
    # Not evaluated until state, speed and sp all have a value.
    assert feed(ev, [(0, "speed", 10), (1, "state", 1)]) == []
    got = feed(ev, [(2, "sp", 100), (5, "speed", 95), (6, "state", 3)])
    # Active from 2 s (speed 10 held) after the 1 s on-delay; cleared when the speed came up.
    assert got == [ch("slow", "active", 3, 100.0), ch("slow", "cleared", 5, 95.0)]
    # Compared with a number, a state tag is its code.
    ev2 = evaluator({"kind": "expression", "name": "f", "expression": "state == 3"})
    assert feed(ev2, [(0, "state", 3)]) == [ch("f", "active", 0, "fault")]


def test_a_bad_input_makes_an_expression_unknown() -> None:
    ev = evaluator({"kind": "expression", "name": "hot", "expression": "temp > load"})
    got = feed(ev, [(0, "load", 10), (1, "temp", 20), (2, "temp", 0, BAD), (3, "load", 50)])
    # At 2 s temp is Bad and at 3 s it still is (held): no change until a good value.
    assert got == [ch("hot", "active", 1, 20.0)]
    assert feed(ev, [(4, "temp", 30)]) == [ch("hot", "cleared", 4, 30.0)]


def test_an_expression_that_cannot_be_computed_changes_nothing() -> None:
    ev = evaluator({"kind": "expression", "name": "ratio", "expression": "temp / load > 2"})
    got = feed(ev, [(0, "temp", 10), (0, "load", 1), (1, "load", 0), (2, "load", 20)])
    assert got == [ch("ratio", "active", 0, 1.0), ch("ratio", "cleared", 2, 20.0)]


def test_suppression_by_design_turns_on_and_off_without_delays() -> None:
    ev = evaluator(
        {
            "kind": "limit",
            "name": "cold",
            "tag": "temp",
            "lo": {"value": 20},
            "on_delay_s": 5,
            "suppress_when": "state == 'planned_stop'",
        }
    )
    got = feed(
        ev, [(0, "state", 1), (1, "state", 2), (2, "temp", 5), (3, "state", 2), (9, "state", 1)]
    )
    # Suppression changes at once; the alarm keeps being evaluated underneath.
    assert got == [ch("cold:lo", "suppress_on", 1), ch("cold:lo", "suppress_off", 9)]
    assert ev.tick(10 * S) == [ch("cold:lo", "active", 7, 5.0, 20.0)]


def test_restored_alarms_clear_on_the_first_normal_value_only() -> None:
    ev = evaluator(
        {"kind": "limit", "name": "hot", "tag": "temp", "hi": {"value": 80}, "off_delay_s": 2},
        {"kind": "discrete", "name": "fault", "tag": "state", "states": ["fault"]},
        {"kind": "stale", "name": "quiet", "tag": "load", "after_s": 10},
        {"kind": "bad_quality", "name": "bq", "tag": "speed", "suppress_when": "state == 'fault'"},
    )
    ev.restore(
        {f"{A}/hot:hi": 0, f"{A}/fault": 0, f"{A}/quiet": 0, f"{A}/gone": 0},
        suppressed=[f"{A}/bq"],
    )
    # Abnormal values do not raise them again.
    assert feed(ev, [(10, "temp", 90), (10, "state", 3)]) == []
    got = feed(ev, [(11, "temp", 50), (11, "state", 1), (12, "load", 1), (14, "temp", 50)])
    assert got == [
        ch("fault", "cleared", 11, "running"),
        ch("bq", "suppress_off", 11),
        ch("quiet", "cleared", 12),
        ch("hot:hi", "cleared", 13, 50.0, 80.0),  # after its 2 s off-delay
    ]


def test_delays_and_realarm_fall_due_on_tick() -> None:
    ev = evaluator(
        {"kind": "discrete", "name": "fault", "tag": "state", "states": ["fault"], "realarm_s": 60},
        {"kind": "limit", "name": "hot", "tag": "temp", "hi": {"value": 80}, "on_delay_s": 10},
    )
    assert feed(ev, [(0, "state", 3), (0, "temp", 90)]) == [ch("fault", "active", 0, "fault")]
    assert ev.tick(9 * S) == []
    assert ev.tick(61 * S) == [
        ch("hot:hi", "active", 10, 90.0, 80.0),
        ch("fault", "realarm", 60, "fault"),
    ]


def test_a_wide_quiet_batch_raises_nothing_and_one_excursion_is_found() -> None:
    n = 2000
    assets = [f"acme/p/l/m{i}" for i in range(n)]
    hot = ALARM.validate_python(
        {
            "kind": "limit",
            "name": "t",
            "tag": "temp",
            "hihi": {"value": 95},
            "hi": {"value": 85},
            "lo": {"value": 15},
            "lolo": {"value": 5},
        }
    )
    typ = AssetTypeDef(name="m", tags=(TagDef(name="temp"),), alarms=(hot,))
    ev = Evaluator(
        compile_alarms([typ], [AssetDef(path=a, level=Level.ASSET, type="m") for a in assets])
    )
    paths = [f"{a}/temp" for a in assets]
    values = np.full(n, 50.0)
    column: Any = values  # a NumPy column, as fast producers publish
    assert ev.evaluate(ValueBatch(paths, column, [S] * n, [0] * n, receive_us=0)) == []
    values[7] = 99.0
    got = ev.evaluate(ValueBatch(paths, column, [2 * S] * n, [0] * n, receive_us=0))
    assert {c.alarm_id for c in got} == {f"{assets[7]}/t:hihi", f"{assets[7]}/t:hi"}


# --- the same changes in one batch or many ---------------------------------------------------

PROPERTY_ALARMS = (
    {
        "kind": "limit",
        "name": "hot",
        "tag": "temp",
        "hi": {"value": "limit", "deadband": 3},
        "lo": {"value": 10},
        "on_delay_s": 1,
        "realarm_s": 4,
        "suppress_when": "state == 'planned_stop'",
    },
    {"kind": "limit", "name": "hot2", "tag": "temp", "hi": {"value": 60}, "off_delay_s": 2},
    {
        "kind": "deviation",
        "name": "dev",
        "tag": "speed",
        "setpoint": "sp",
        "high": 5,
        "low": 5,
        "deadband": 2,
        "off_delay_s": 1,
    },
    {"kind": "discrete", "name": "fault", "tag": "state", "states": ["fault"], "on_delay_s": 2},
    {
        "kind": "expression",
        "name": "slow",
        "expression": "state == 'running' and speed < sp - 20",
        "realarm_s": 3,
    },
    {"kind": "bad_quality", "name": "bq", "tag": "temp", "on_delay_s": 1},
)
NAMES = ["temp", "limit", "speed", "sp", "state"]

points = st.lists(
    st.tuples(
        st.sampled_from(NAMES),
        st.integers(min_value=0, max_value=3),  # seconds since the previous point
        st.integers(min_value=0, max_value=100),
        st.sampled_from([0, 0, 0, BAD]),
    ),
    max_size=60,
)


def _run(series: list[tuple[str, int, int, int]], cuts: list[int]) -> list[ConditionChange]:
    ev = evaluator(*PROPERTY_ALARMS)
    got: list[ConditionChange] = []
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(series)), len(series)]
    for lo, hi in itertools.pairwise(bounds):
        part = series[lo:hi]
        values = [v % 4 if name == "state" else v for name, _, v, _ in part]
        got += ev.evaluate(
            ValueBatch(
                [f"{A}/{p[0]}" for p in part], values, [p[1] for p in part], [p[3] for p in part], 0
            )
        )
    return got


@given(points, st.lists(st.integers(min_value=0, max_value=60), max_size=8))
def test_one_batch_or_many_give_the_same_changes(
    draw: list[tuple[str, int, int, int]], cuts: list[int]
) -> None:
    series, t = [], 0
    for name, gap, value, quality in draw:
        t += gap * S
        series.append((name, t, value, quality))
    whole = _run(series, [])
    split = _run(series, cuts)
    # Per alarm the changes are identical; across alarms each batch is in source-time order.
    by_alarm = sorted({c.alarm_id for c in whole + split})
    for alarm_id in by_alarm:
        assert [c for c in split if c.alarm_id == alarm_id] == [
            c for c in whole if c.alarm_id == alarm_id
        ]
    assert [c.source_us for c in whole] == sorted(c.source_us for c in whole)
