"""Golden tests: time-weighted averages, interpolation, step interpolation, state durations and
calendar buckets on small irregular series, each figure worked out by hand in the comments."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.core.errors import QueryTooLargeError
from kiln.historian.maths import aggregates
from kiln.historian.maths.aggregates import aggregate, check_aggregates
from kiln.historian.maths.calendar import bucket_edges, parse_interval, suggest_interval
from kiln.historian.maths.timeline import Points, sample

S = 1_000_000  # one second in microseconds


def series(*points: tuple[float, float | str | None]) -> Points:
    """(seconds, value) pairs; a None value is a Bad point."""
    ts = np.array([int(t * S) for t, _ in points], dtype=np.int64)
    good = np.array([v is not None for _, v in points])
    if any(isinstance(v, str) for _, v in points):
        values = np.array([v for _, v in points], dtype=object)
    else:
        values = np.array([np.nan if v is None else v for _, v in points], dtype=np.float64)
    return Points(ts, values, good)


def edges(*seconds: float) -> np.ndarray:
    return np.array([int(s * S) for s in seconds], dtype=np.int64)


# 0-10 s ramps 10 -> 20, 10-40 s stays 20, 40-50 s ramps 20 -> 0, then holds 0 until 60 s.
ANALOG = series((0, 10.0), (10, 20.0), (40, 20.0), (50, 0.0))


def test_time_weighted_average_linear() -> None:
    # Areas: 0-10: (10+20)/2*10 = 150; 10-40: 20*30 = 600; 40-50: (20+0)/2*10 = 100; 50-60: 0.
    out = aggregate(ANALOG, edges(0, 30, 60), ["twa", "total"], step=False, data_end_us=60 * S)
    # [0,30): 150 + 20*20 = 550 over 30 s; [30,60): 20*10 + 100 + 0 = 300 over 30 s.
    assert out["twa"] == pytest.approx([550 / 30, 300 / 30])
    assert out["total"] == pytest.approx([550.0, 300.0])  # value x seconds
    whole = aggregate(ANALOG, edges(0, 60), ["twa"], step=False, data_end_us=60 * S)
    assert whole["twa"] == pytest.approx([850 / 60])


def test_time_weighted_average_stepped() -> None:
    # Stepped: 0-10: 10*10 = 100; 10-40: 20*30 = 600; 40-50: 20*10 = 200; 50-60: 0.
    out = aggregate(ANALOG, edges(0, 30, 60), ["twa"], step=True, data_end_us=60 * S)
    assert out["twa"] == pytest.approx([(100 + 400) / 30, (200 + 200) / 30])


def test_total_in_hours() -> None:
    # A flow in m3/h for 60 s: 850 value-seconds is 850/3600 m3.
    out = aggregate(ANALOG, edges(0, 60), ["total"], step=False, total_unit="h", data_end_us=60 * S)
    assert out["total"] == pytest.approx([850 / 3600])


def test_the_range_starts_and_ends_between_points() -> None:
    # [5, 45): 5-10 ramps 15 -> 20 (87.5), 10-40 is 600, 40-45 ramps 20 -> 10 (75).
    out = aggregate(ANALOG, edges(5, 45), ["twa", "count", "percent_good"], step=False)
    assert out["twa"] == pytest.approx([(87.5 + 600 + 75) / 40])
    assert out["count"] == [2]  # the points at 10 and 40; the ones at 0 and 50 only bound it
    assert out["percent_good"] == pytest.approx([100.0])


def test_a_bad_point_is_a_gap_in_time_weighted_figures() -> None:
    # 0-10 holds 10 (the next point is Bad: no ramp into it), 10-20 Bad, 20-30 holds 30.
    s = series((0, 10.0), (10, None), (20, 30.0))
    out = aggregate(s, edges(0, 30), ["twa", "percent_good", "avg", "count"], step=False)
    assert out["twa"] == pytest.approx([(100 + 300) / 20])
    assert out["percent_good"] == pytest.approx([200 / 3])
    assert out["avg"] == pytest.approx([20.0])
    assert out["count"] == [2]


def test_nothing_is_known_after_data_end_or_before_the_first_point() -> None:
    s = series((10, 4.0))
    out = aggregate(s, edges(0, 20, 40), ["twa", "percent_good"], step=True, data_end_us=30 * S)
    assert out["twa"] == pytest.approx([4.0, 4.0])
    assert out["percent_good"] == pytest.approx([50.0, 50.0])  # 10-20 s, then 20-30 s


def test_a_bucket_without_points_still_has_a_time_weighted_average() -> None:
    s = series((0, 1.0), (100, 3.0))
    out = aggregate(s, edges(40, 50, 60), ["twa", "count", "avg"], step=False)
    # The ramp 1 -> 3 over 100 s: 1.9 at 45 s, 2.1 at 55 s.
    assert out["twa"] == pytest.approx([1.9, 2.1])
    assert out["count"] == [0, 0]
    assert out["avg"] == [None, None]


def test_event_weighted_aggregates() -> None:
    out = aggregate(
        ANALOG,
        edges(0, 30, 60),
        ["avg", "min", "max", "first", "last", "count", "range", "stddev"],
        step=False,
    )
    assert out["avg"] == [15.0, 10.0]
    assert (out["min"], out["max"], out["range"]) == ([10.0, 0.0], [20.0, 20.0], [10.0, 20.0])
    assert (out["first"], out["last"], out["count"]) == ([10.0, 20.0], [20.0, 0.0], [2, 2])
    # Sample standard deviation: sqrt(((10-15)^2 + (20-15)^2) / 1) and sqrt((10^2 + 10^2) / 1).
    assert out["stddev"] == pytest.approx([50**0.5, 200**0.5])


def test_linear_and_step_interpolation() -> None:
    times = edges(-1, 0, 5, 10, 45, 55)
    linear = sample(ANALOG, times, step=False)
    assert linear.good.tolist() == [False, True, True, True, True, True]
    assert linear.values[1:].tolist() == [10.0, 15.0, 20.0, 10.0, 0.0]
    stepped = sample(ANALOG, times, step=True)
    assert stepped.values[1:].tolist() == [10.0, 10.0, 20.0, 20.0, 0.0]
    previous = sample(ANALOG, times, step=False, interpolate=False)
    assert previous.values[1:].tolist() == stepped.values[1:].tolist()


def test_interpolation_does_not_ramp_into_or_out_of_a_bad_point() -> None:
    s = series((0, 10.0), (10, None), (20, 30.0), (30, 40.0))
    got = sample(s, edges(5, 15, 25), step=False)
    assert got.good.tolist() == [True, False, True]
    assert got.values[0] == 10.0 and got.values[2] == 35.0


def test_state_durations_and_transitions() -> None:
    # State 1 from 0 s, 2 from 15 s, 1 from 20 s, 3 from 50 s; known until 60 s.
    s = series((0, 1.0), (15, 2.0), (20, 1.0), (50, 3.0))
    out = aggregate(
        s, edges(0, 30, 60), ["durations", "transitions"], step=True, data_end_us=60 * S
    )
    # [0,30): state 1 for 15 + 10 s, state 2 for 5 s; [30,60): state 1 for 20 s, state 3 for 10 s.
    assert out["durations"] == [{"1": 25.0, "2": 5.0}, {"1": 20.0, "3": 10.0}]
    assert out["transitions"] == [2, 1]


def test_string_states() -> None:
    s = series((0, "idle"), (10, "run"), (40, "idle"))
    out = aggregate(s, edges(0, 60), ["durations", "transitions", "first", "last"], step=True)
    assert out["durations"] == [{"idle": 30.0, "run": 30.0}]
    assert (out["transitions"], out["first"], out["last"]) == ([2], ["idle"], ["idle"])
    with pytest.raises(ValueError, match="need a numeric tag"):
        check_aggregates(["twa", "count"], numeric=False)


def test_unknown_aggregates_are_named() -> None:
    with pytest.raises(ValueError, match=r"'median'.*choose from avg"):
        check_aggregates("avg,median")


def _utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * S


def test_days_follow_the_wall_clock_across_dst() -> None:
    # Europe/Berlin springs forward on 2026-03-29: that day has 23 hours.
    got = bucket_edges(
        _utc(2026, 3, 28, 12), _utc(2026, 3, 29, 21), parse_interval("1d"), "Europe/Berlin",
        max_buckets=10,
    )  # fmt: skip
    assert got.tolist() == [
        _utc(2026, 3, 27, 23),  # 2026-03-28 00:00 +01:00
        _utc(2026, 3, 28, 23),  # 2026-03-29 00:00 +01:00
        _utc(2026, 3, 29, 22),  # 2026-03-30 00:00 +02:00
    ]
    assert np.diff(got).tolist() == [24 * 3600 * S, 23 * 3600 * S]


def test_fixed_intervals_align_to_local_midnight() -> None:
    # Kolkata is UTC+05:30: 10:07 UTC is 15:37 local, in the bucket from 15:30 (10:00 UTC).
    got = bucket_edges(
        _utc(2026, 6, 1, 10, 7), _utc(2026, 6, 1, 10, 31), parse_interval("15min"),
        "Asia/Kolkata", max_buckets=10,
    )  # fmt: skip
    assert got.tolist() == [_utc(2026, 6, 1, 10, 0) + k * 15 * 60 * S for k in range(4)]


def test_months_and_weeks() -> None:
    months = bucket_edges(
        _utc(2026, 1, 15), _utc(2026, 2, 15), parse_interval("1mo"), "UTC", max_buckets=10
    )
    assert months.tolist() == [_utc(2026, 1, 1), _utc(2026, 2, 1), _utc(2026, 3, 1)]
    weeks = bucket_edges(
        _utc(2026, 12, 2), _utc(2026, 12, 3), parse_interval("1w"), "UTC", max_buckets=10
    )
    assert weeks.tolist() == [_utc(2026, 11, 30), _utc(2026, 12, 7)]  # ISO weeks: Mondays


def test_too_many_buckets_suggests_an_interval() -> None:
    # 7 days in 1,000 buckets is 604.8 s each: 10min is too short, 15min is enough.
    with pytest.raises(QueryTooLargeError, match="at least 15min"):
        bucket_edges(0, 7 * 24 * 3600 * S, parse_interval("1s"), max_buckets=1000)
    assert suggest_interval(24 * 3600 * S, 100) == "15min"


@pytest.mark.parametrize("text", ["0s", "5", "1 fortnight", "-1h", ""])
def test_bad_intervals_say_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match="not an interval"):
        parse_interval(text)


def test_bad_time_zones_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="not a time zone"):
        bucket_edges(0, S, parse_interval("1s"), "Mars/Olympus", max_buckets=10)


@st.composite
def irregular(draw: st.DrawFn) -> Points:
    times = sorted(draw(st.sets(st.integers(0, 1_000), min_size=1, max_size=30)))
    values = [None if draw(st.integers(0, 9)) == 0 else draw(st.floats(-1e3, 1e3)) for _ in times]
    return series(*zip(times, values, strict=True))


@settings(max_examples=200, deadline=None)
@given(irregular(), st.booleans())
def test_time_weighted_average_matches_dense_sampling(s: Points, step: bool) -> None:
    # The average of the value sampled every 1 ms over [0, 1000 s) converges to the exact
    # time-weighted average; 1e6 samples put the error well under 1e-2 of the value range.
    grid = np.arange(0, 1_000 * S, 1_000, dtype=np.int64)
    dense = sample(s, grid, step=step, data_end_us=1_000 * S)
    out = aggregate(s, edges(0, 1_000), ["twa", "percent_good"], step=step, data_end_us=1_000 * S)
    assert out["percent_good"][0] == pytest.approx(dense.good.mean() * 100, abs=0.01)
    if dense.good.sum() < 1_000:  # almost no valid time: the average of almost nothing
        return
    spread = float(np.ptp(s.values[s.good])) if s.good.any() else 0.0
    assert out["twa"][0] == pytest.approx(dense.values[dense.good].mean(), abs=1e-2 * spread + 1e-9)


@settings(max_examples=100, deadline=None)
@given(
    tags=st.lists(
        st.lists(st.tuples(st.integers(-50, 150), st.integers(-100, 100), st.booleans()),
                 max_size=30, unique_by=lambda p: p[0]),
        min_size=1, max_size=5,
    ),
    width=st.integers(1, 40),
)  # fmt: skip
def test_event_aggregates_of_many_tags_at_once_equal_one_tag_at_a_time(
    tags: list[list[tuple[int, int, bool]]], width: int
) -> None:
    edges = np.arange(0, 101 + width, width, dtype=np.int64)
    series = []
    for raw in tags:
        raw = sorted(raw)
        series.append(Points(np.array([t for t, _, _ in raw], np.int64),
                             np.array([float(v) for _, v, _ in raw]),
                             np.array([g for _, _, g in raw], bool)))  # fmt: skip
    names = set(aggregates.EVENT)
    together = aggregates.event_many(series, edges, names)
    for points, got in zip(series, together, strict=True):
        [alone] = aggregates.event_many([points], edges, names)
        assert got == alone
        assert got["count"] == [
            int(np.count_nonzero(points.good & (points.ts >= a) & (points.ts < b)))
            for a, b in itertools.pairwise(edges.tolist())
        ]
