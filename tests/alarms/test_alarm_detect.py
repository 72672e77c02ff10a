"""Alarm condition detection (issue 14): exact transitions for each kind of condition, and the
same transitions whether a series is evaluated in one batch or split into many."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiln.alarms.detect import (
    AlarmDetector,
    DeviationRule,
    LimitRule,
    RateRule,
    TagRules,
    Timing,
    Transition,
)
from kiln.core.quality import Quality
from kiln.core.values import ValueBatch

TAG = "acme/plant1/line1/oven/temp"
S = 1_000_000


def feed(
    det: AlarmDetector,
    points: Sequence[tuple[float, float] | tuple[float, float, int]],
    tag: str = TAG,
) -> list[Transition]:
    """Evaluate (seconds, value[, quality]) points of one tag as one batch."""
    return det.evaluate(
        ValueBatch(
            paths=[tag] * len(points),
            values=[p[1] for p in points],
            source_us=[round(p[0] * S) for p in points],
            qualities=[p[2] if len(p) > 2 else Quality.GOOD for p in points],  # type: ignore[misc]
            receive_us=0,
        )
    )


def tr(kind: str, event: str, seconds: float, value: float, tag: str = TAG) -> Transition:
    return Transition(tag, kind, event, round(seconds * S), value)  # type: ignore[arg-type]


def limits(*rules: LimitRule, **kw: object) -> AlarmDetector:
    return AlarmDetector({TAG: TagRules(limits=rules, **kw)})  # type: ignore[arg-type]


def test_crossing_a_limit_raises_and_coming_back_clears() -> None:
    det = limits(LimitRule("hi", 80), LimitRule("lo", 10))
    got = feed(det, [(0, 50), (1, 85), (2, 70), (3, 5), (4, 20)])
    assert got == [
        tr("hi", "active", 1, 85),
        tr("hi", "cleared", 2, 70),
        tr("lo", "active", 3, 5),
        tr("lo", "cleared", 4, 20),
    ]


def test_hihi_and_hi_are_separate_alarms_on_the_same_value() -> None:
    det = limits(LimitRule("hihi", 90), LimitRule("hi", 80), LimitRule("lolo", 0))
    assert feed(det, [(0, 95), (1, 50)]) == [
        tr("hihi", "active", 0, 95),
        tr("hi", "active", 0, 95),
        tr("hihi", "cleared", 1, 50),
        tr("hi", "cleared", 1, 50),
    ]


def test_the_deadband_suppresses_chatter_around_the_limit() -> None:
    series = [(0, 79), (1, 81), (2, 79), (3, 81), (4, 76), (5, 74)]
    with_band = feed(limits(LimitRule("hi", 80, deadband=5)), series)
    assert with_band == [tr("hi", "active", 1, 81), tr("hi", "cleared", 5, 74)]
    # Without a deadband the same series chatters: the deadband is what made the difference.
    assert len(feed(limits(LimitRule("hi", 80)), series)) == 4


def test_a_low_alarm_clears_only_above_limit_plus_deadband() -> None:
    det = limits(LimitRule("lo", 10, deadband=2))
    assert feed(det, [(0, 9), (1, 11), (2, 12.5)]) == [
        tr("lo", "active", 0, 9),
        tr("lo", "cleared", 2, 12.5),
    ]


def test_an_excursion_shorter_than_the_on_delay_raises_nothing() -> None:
    det = limits(LimitRule("hi", 80, timing=Timing(on_delay_s=10)))
    assert feed(det, [(0, 50), (1, 90), (5, 95), (10.5, 50), (30, 50)]) == []
    assert det.tick(100 * S) == []


def test_a_long_excursion_is_raised_when_the_on_delay_expires() -> None:
    # Batched: the next sample comes long after; the alarm is still dated at 1 s + 10 s.
    det = limits(LimitRule("hi", 80, timing=Timing(on_delay_s=10)))
    assert feed(det, [(0, 50), (1, 90), (5, 95), (30, 92), (40, 50)]) == [
        tr("hi", "active", 11, 95),
        tr("hi", "cleared", 40, 50),
    ]
    # Live: a clock tick finds the same instant.
    live = limits(LimitRule("hi", 80, timing=Timing(on_delay_s=10)))
    assert feed(live, [(0, 50), (1, 90), (5, 95)]) == []
    assert live.tick(10 * S) == []
    assert live.tick(12 * S) == [tr("hi", "active", 11, 95)]


def test_the_off_delay_keeps_the_alarm_until_normal_long_enough() -> None:
    det = limits(LimitRule("hi", 80, timing=Timing(off_delay_s=10)))
    assert feed(det, [(0, 90)]) == [tr("hi", "active", 0, 90)]
    assert feed(det, [(5, 50), (8, 90)]) == []  # back within 10 s: still the same alarm
    assert feed(det, [(20, 50), (25, 60)]) == []
    assert feed(det, [(31, 55)]) == [tr("hi", "cleared", 30, 60)]


def test_an_alarm_active_longer_than_realarm_is_announced_again() -> None:
    det = limits(LimitRule("hi", 80, timing=Timing(realarm_s=60)))
    assert feed(det, [(0, 90)]) == [tr("hi", "active", 0, 90)]
    assert det.tick(59 * S) == []
    assert det.tick(130 * S) == [tr("hi", "realarm", 60, 90), tr("hi", "realarm", 120, 90)]
    assert feed(det, [(150, 50), (200, 50)]) == [tr("hi", "cleared", 150, 50)]
    assert det.tick(1000 * S) == []


def test_rate_of_change_over_a_window() -> None:
    det = AlarmDetector({TAG: TagRules(rate=RateRule(max_per_s=2, window_s=5))})
    got = feed(det, [(0, 0), (1, 1), (2, 2), (3, 20), (10, 20), (11, 20)])
    # 20 units in 3 s is 6.7/s; at 10 s the window holds one point (no rate: unchanged); at 11 s
    # the rate over the window is 0.
    assert got == [tr("roc", "active", 3, 20), tr("roc", "cleared", 11, 20)]


def test_deviation_from_the_setpoint_with_deadband() -> None:
    det = AlarmDetector({TAG: TagRules(deviation=DeviationRule(setpoint=50, limit=5, deadband=1))})
    got = feed(det, [(0, 52), (1, 56), (2, 45.5), (3, 53)])
    assert got == [tr("deviation", "active", 1, 56), tr("deviation", "cleared", 3, 53)]


def test_bad_quality_raises_its_own_alarm_and_does_not_trip_limits() -> None:
    det = limits(LimitRule("hi", 80), bad_quality=Timing())
    got = feed(
        det,
        [(0, 50), (1, 999, Quality.BAD_SENSOR_FAILURE), (2, 50), (3, 50, Quality.UNCERTAIN)],
    )
    assert got == [tr("bad_quality", "active", 1, 999), tr("bad_quality", "cleared", 2, 50)]


def test_a_bad_value_holds_the_limit_state() -> None:
    det = limits(LimitRule("hi", 80))
    got = feed(det, [(0, 90), (1, 0, Quality.BAD_NOT_CONNECTED), (2, 50)])
    assert got == [tr("hi", "active", 0, 90), tr("hi", "cleared", 2, 50)]


def test_stale_is_raised_on_a_tick_and_cleared_by_the_next_value() -> None:
    det = AlarmDetector({TAG: TagRules(stale_s=30)})
    assert det.tick(10 * S) == []  # never seen: not stale yet
    assert feed(det, [(0, 50)]) == []
    assert det.tick(29 * S) == []
    [raised] = det.tick(31 * S)
    assert (raised.kind, raised.event, raised.source_us) == ("stale", "active", 30 * S)
    assert math.isnan(raised.value)
    assert det.tick(60 * S) == []  # raised once
    [cleared] = feed(det, [(40, 51)])
    assert (cleared.kind, cleared.event, cleared.source_us) == ("stale", "cleared", 40 * S)


def test_values_inside_their_limits_leave_no_state_behind() -> None:
    rules = TagRules(limits=(LimitRule("hi", 80), LimitRule("lo", 10)))
    tags = [f"acme/p/l/t{i}" for i in range(1000)]
    det = AlarmDetector(dict.fromkeys(tags, rules))
    batch = ValueBatch(tags, np.full(1000, 50.0), [S] * 1000, [0] * 1000, receive_us=0)
    assert det.evaluate(batch) == []
    assert det.state(tags[0], "hi") is None
    values = np.full(1000, 50.0)
    values[7] = 90.0
    out = det.evaluate(ValueBatch(tags, values, [2 * S] * 1000, [0] * 1000, receive_us=0))
    assert out == [tr("hi", "active", 2, 90, tag=tags[7])]


def test_a_late_point_is_skipped_and_counted() -> None:
    det = limits(LimitRule("hi", 80))
    assert feed(det, [(10, 50)]) == []
    assert feed(det, [(5, 90), (11, 50)]) == []
    assert det.late_points == 1


def test_unknown_tags_and_text_values_are_ignored() -> None:
    det = limits(LimitRule("hi", 80))
    batch = ValueBatch([TAG, "acme/other/x", TAG], ["on", 99.0, 90], [0, S, 2 * S], [0, 0, 0], 0)
    assert det.evaluate(batch) == [tr("hi", "active", 2, 90)]


def test_rules_that_make_no_sense_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="on_delay_s"):
        Timing(on_delay_s=-1)
    with pytest.raises(ValueError, match="deadband"):
        LimitRule("hi", 80, deadband=-1)
    with pytest.raises(ValueError, match="repeat"):
        TagRules(limits=(LimitRule("hi", 80), LimitRule("hi", 90)))


# --- the same transitions in one batch or many ----------------------------------------------

TAGS = ["acme/p/l/a", "acme/p/l/b"]
RULES = {
    TAGS[0]: TagRules(
        limits=(
            LimitRule("hihi", 90, deadband=2, timing=Timing(on_delay_s=3, realarm_s=7)),
            LimitRule("hi", 70, deadband=5, timing=Timing(off_delay_s=4)),
            LimitRule("lo", 20, deadband=3, timing=Timing(on_delay_s=2, off_delay_s=2)),
            LimitRule("lolo", 5),
        ),
        bad_quality=Timing(on_delay_s=1),
    ),
    TAGS[1]: TagRules(
        limits=(LimitRule("hi", 50, deadband=1),),
        rate=RateRule(max_per_s=10, window_s=3),
        deviation=DeviationRule(setpoint=40, limit=15, deadband=2, timing=Timing(realarm_s=5)),
    ),
}

points = st.lists(
    st.tuples(
        st.sampled_from(TAGS),
        st.integers(min_value=0, max_value=3),  # seconds since the previous point
        st.floats(min_value=-10, max_value=110, allow_nan=False),
        st.sampled_from([0, 0, 0, int(Quality.BAD_TIMEOUT)]),
    ),
    max_size=80,
)


def _series(draw: list[tuple[str, int, float, int]]) -> list[tuple[str, int, float, int]]:
    out, t = [], 0
    for tag, gap, value, q in draw:
        t += gap * S
        out.append((tag, t, value, q))
    return out


def _run(
    series: list[tuple[str, int, float, int]], cuts: list[int], *, walk_all: bool = False
) -> dict[str, list[Transition]]:
    det = AlarmDetector(RULES)
    if walk_all:
        # Turn off the vectorised skip of quiet points: every point is walked one by one.
        det._always[:] = True
    got: list[Transition] = []
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(series)), len(series)]
    for lo, hi in itertools.pairwise(bounds):
        part = series[lo:hi]
        got += det.evaluate(
            ValueBatch(
                [p[0] for p in part],
                [p[2] for p in part],
                [p[1] for p in part],
                [p[3] for p in part],
                receive_us=0,
            )
        )
    # Across tags the order follows the batches; per tag it must be identical.
    return {tag: [t for t in got if t.tag == tag] for tag in TAGS}


@given(points, st.lists(st.integers(min_value=0, max_value=80), max_size=10))
def test_one_batch_or_many_give_the_same_transitions(
    draw: list[tuple[str, int, float, int]], cuts: list[int]
) -> None:
    series = _series(draw)
    whole = _run(series, [])
    assert _run(series, cuts) == whole
    # The NumPy fast path skips only points that change nothing.
    assert _run(series, cuts, walk_all=True) == whole


def test_a_limit_set_from_outside_is_the_one_compared_with() -> None:
    det = limits(LimitRule("hi", 80, deadband=2))
    assert det.limit(TAG, "hi") == 80
    det.set_limit(TAG, "hi", 90)
    assert feed(det, [(0, 85), (1, 95)]) == [tr("hi", "active", 1, 95)]
    det.set_limit(TAG, "hi", math.nan)  # no limit known: the condition holds its state
    assert feed(det, [(2, 0)]) == []
    det.set_limit(TAG, "hi", 90)
    assert feed(det, [(3, 87.5)]) == [tr("hi", "cleared", 3, 87.5)]
    with pytest.raises(KeyError, match="no lo limit"):
        det.set_limit(TAG, "lo", 1)


def test_a_restored_alarm_is_cleared_by_a_normal_value_not_raised_by_an_abnormal_one() -> None:
    det = limits(LimitRule("hi", 80, timing=Timing(off_delay_s=5)), stale_s=30)
    det.restore(TAG, "hi", 0)
    det.restore(TAG, "stale", 0)
    assert feed(det, [(10, 90)])[0].kind == "stale"  # a value ends staleness at once
    assert feed(det, [(11, 50), (20, 50)]) == [tr("hi", "cleared", 16, 50)]
