"""Control charts on a tag's series: subgroups, frozen and rolling limits, run rules, state.

The limits must be exactly what `kiln.production.spc` computes on the same subgroups, and the
rules those of `spc_rules` (Nelson 1984 numbering: rule 2 is nine points in a row on one side
of the centre line).
"""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from kiln.production import spc
from kiln.production.spc_tags import SpcChartRun, SpcDef, SpcPoint, chart_over_history

T0 = 1_800_000_000_000_000  # microseconds since the epoch
STEP = 1_000_000  # one value a second
OFFSETS = (-1.0, -0.5, 0.0, 0.5, 1.0)  # within a subgroup of 5: range 2, mean 0
# Subgroup means in sigma-of-X̄ units: cross the centre often, leave 1 sigma every few points,
# never trend six or alternate fourteen: a stable process with no special cause.
STABLE = (0.8, -1.2, 0.3, 1.4, -0.6, -1.5, 1.1, -0.2, 0.5, -0.9, 1.6)
SIGMA_XBAR = 2.0 / (spc.constants(5).d2 * 5**0.5)  # R̄/(d2 √n) with R̄ = 2


def _series(means: list[float]) -> tuple[list[int], list[float]]:
    values = [100.0 + m + o for m in means for o in OFFSETS]
    return [T0 + i * STEP for i in range(len(values))], values


def _stable_means(count: int) -> list[float]:
    return [STABLE[i % len(STABLE)] * SIGMA_XBAR for i in range(count)]


def test_rolling_xbar_r_on_a_stable_series_fires_no_rule() -> None:
    defn = SpcDef(name="bore", tag="bore_mm", chart="xbar_r")
    times, values = _series(_stable_means(120))
    points = SpcChartRun(defn).add(times, values)
    assert len(points) == 120
    assert all(p.limits is None for p in points[:25])  # fewer than 25 subgroups before them
    judged = points[25:]
    assert all(p.limits is not None for p in judged)
    assert [p for p in judged if p.rules] == []
    # Each point's time is that of its subgroup's last value.
    assert [p.time_us for p in points[:2]] == [times[4], times[9]]


def test_rolling_limits_come_from_the_subgroups_before_the_point() -> None:
    defn = SpcDef(name="bore", tag="bore_mm", chart="xbar_r", rolling_subgroups=10)
    times, values = _series(_stable_means(15))
    points = SpcChartRun(defn).add(times, values)
    groups = [values[i : i + 5] for i in range(0, len(values), 5)]
    expected = spc.xbar_r(groups[2:12])  # the 10 subgroups before subgroup 12
    assert points[12].limits == expected.location.limits[0]
    assert points[12].spread_limits == expected.spread.limits[0]
    assert points[12].value == pytest.approx(statistics.fmean(groups[12]))
    assert points[12].spread == pytest.approx(max(groups[12]) - min(groups[12]))


def _baseline_defn(**extra: object) -> SpcDef:
    return SpcDef.model_validate(
        {
            "name": "bore",
            "tag": "acme/plant1/line1/mill/bore_mm",
            "chart": "xbar_r",
            "limits": "baseline",
            "baseline_start": datetime.fromtimestamp(T0 / 1e6, UTC),
            "baseline_end": datetime.fromtimestamp((T0 + 100 * STEP) / 1e6, UTC),  # 20 subgroups
            **extra,
        }
    )


def test_baseline_limits_equal_spc_limits_on_the_baseline_subgroups() -> None:
    defn = _baseline_defn()
    means = _stable_means(20) + [0.0] * 5
    times, values = _series(means)
    points = SpcChartRun(defn).add(times, values)
    assert all(p.limits is None and p.rules == () for p in points[:20])
    groups = [values[i : i + 5] for i in range(0, 100, 5)]
    expected = spc.xbar_r(groups)  # limits computed on the baseline subgroups themselves
    for p in points[20:]:
        assert p.limits == expected.location.limits[0]
        assert p.spread_limits == expected.spread.limits[0]


def test_a_shift_after_the_baseline_fires_rule_2_at_the_ninth_point() -> None:
    defn = _baseline_defn()
    baseline = _stable_means(20)
    grand = statistics.fmean(baseline)
    # After the baseline the mean sits half a sigma above the frozen centre line: within
    # 1 sigma (no rules 5, 6, 8), constant (no trend), so only rule 2 can fire, at the ninth.
    shifted = [grand + 0.5 * SIGMA_XBAR] * 12
    times, values = _series(baseline + shifted)
    points = SpcChartRun(defn).add(times, values)
    after = points[20:]
    fired = [(i, p.rules) for i, p in enumerate(after) if p.rules]
    assert fired == [(8, (2,)), (9, (2,)), (10, (2,)), (11, (2,))]
    assert after[8].time_us == times[(20 + 8) * 5 + 4]


def test_enabled_rules_filter_what_is_reported() -> None:
    defn = _baseline_defn(enabled_rules=(1, 5))
    baseline = _stable_means(20)
    shifted = [statistics.fmean(baseline) + 0.5 * SIGMA_XBAR] * 12
    times, values = _series(baseline + shifted)
    assert [p for p in SpcChartRun(defn).add(times, values) if p.rules] == []


def test_western_electric_numbers_eight_on_one_side_as_rule_4() -> None:
    defn = _baseline_defn(rules="weco")
    baseline = _stable_means(20)
    shifted = [statistics.fmean(baseline) + 0.5 * SIGMA_XBAR] * 9
    times, values = _series(baseline + shifted)
    after = SpcChartRun(defn).add(times, values)[20:]
    assert [(i, p.rules) for i, p in enumerate(after) if p.rules] == [(7, (4,)), (8, (4,))]


CASES = {
    "xbar_r rolling": (
        SpcDef(name="a", tag="x", chart="xbar_r", rolling_subgroups=8),
        None,
    ),
    "xbar_s baseline": (_baseline_defn(chart="xbar_s"), None),
    "imr rolling": (SpcDef(name="a", tag="x", chart="imr", rolling_subgroups=6), None),
    "xbar_r timed": (
        SpcDef(
            name="a", tag="x", chart="xbar_r", subgroup_size=4, subgroup_s=7, rolling_subgroups=5
        ),
        None,
    ),
    "p with sizes": (
        SpcDef(name="a", tag="x", chart="p", sample_size_tag="inspected", rolling_subgroups=6),
        "sizes",
    ),
    "c rolling": (SpcDef(name="a", tag="x", chart="c", rolling_subgroups=6), None),
    "np timed": (
        SpcDef(name="a", tag="x", chart="np", sample_size=20, subgroup_s=3, rolling_subgroups=6),
        None,
    ),
}


def _data(kind: str, sizes: str | None) -> tuple[list[int], list[float], list[float] | None]:
    times, values = _series(_stable_means(40))
    if kind in ("p", "np", "c"):
        values = [float(i * 7 % 5 + (i % 3)) for i in range(len(values))]
    return times, values, ([float(20 + i % 4) for i in range(len(values))] if sizes else None)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("cut", [3, 61, 137])
def test_snapshot_restore_continues_identically(case: str, cut: int) -> None:
    defn, sizes_from = CASES[case]
    times, values, sizes = _data(defn.chart, sizes_from)
    whole = SpcChartRun(defn).add(times, values, sizes)
    assert any(p.limits is not None for p in whole)

    first = SpcChartRun(defn)
    head = first.add(times[:cut], values[:cut], None if sizes is None else sizes[:cut])
    state = json.loads(json.dumps(first.snapshot()))  # really JSON
    second = SpcChartRun.restore(defn, state)
    tail = second.add(times[cut:], values[cut:], None if sizes is None else sizes[cut:])
    assert head + tail == whole


def test_restore_refuses_the_state_of_another_definition() -> None:
    run = SpcChartRun(SpcDef(name="a", tag="x", chart="imr"))
    with pytest.raises(ValueError, match="another definition"):
        SpcChartRun.restore(SpcDef(name="a", tag="x", chart="c"), run.snapshot())


def test_timed_subgroups_take_the_first_n_of_each_window_and_skip_short_ones() -> None:
    defn = SpcDef(name="a", tag="x", chart="xbar_r", subgroup_size=3, subgroup_s=10)
    base = T0 - T0 % 10_000_000  # a window boundary
    times = [base + s * STEP for s in (0, 2, 4, 6, 12, 14, 21, 23, 25, 31)]
    values = [1.0, 2.0, 4.0, 100.0, 5.0, 6.0, 7.0, 8.0, 10.0, 0.0]
    run = SpcChartRun(defn)
    points = run.add(times, values)
    # Window 0: first three values (the fourth is not part of the subgroup); window 1 has two
    # values: skipped; window 2 closes when the value at 31 s arrives.
    assert [(p.time_us, p.value, p.spread) for p in points] == [
        (times[2], pytest.approx(7 / 3), 3.0),
        (times[8], pytest.approx(25 / 3), 3.0),
    ]
    assert run.flush() == []  # the last window holds one value: short of a subgroup


def test_imr_points_carry_the_moving_range_and_spc_limits() -> None:
    defn = SpcDef(name="a", tag="x", chart="imr", rolling_subgroups=5)
    values = [10.0, 12.0, 11.0, 13.0, 12.5, 11.5, 12.0]
    times = [T0 + i * STEP for i in range(len(values))]
    points = SpcChartRun(defn).add(times, values)
    assert points[0].spread is None
    assert points[1].spread == 2.0
    expected = spc.i_mr(values[:5])
    assert points[5].limits == expected.location.limits[0]
    assert points[5].spread_limits == expected.spread.limits[0]
    assert points[5].spread == pytest.approx(1.0)


def test_p_chart_limits_follow_each_sample_size() -> None:
    defn = SpcDef(name="a", tag="x", chart="p", sample_size_tag="n", rolling_subgroups=4)
    defectives = [2.0, 3.0, 1.0, 4.0, 2.0]
    sizes = [50.0, 60.0, 40.0, 50.0, 80.0]
    times = [T0 + i * STEP for i in range(5)]
    points = SpcChartRun(defn).add(times, defectives, sizes)
    p_bar = spc.p_centre([2, 3, 1, 4], [50, 60, 40, 50])
    assert points[4].limits == spc.p_chart([2], [80], p_bar).limits[0]
    assert points[4].value == 2 / 80
    with pytest.raises(ValueError, match="not a count"):
        SpcChartRun(defn).add(times, [0.5] * 5, sizes)


def test_points_must_come_in_time_order() -> None:
    run = SpcChartRun(SpcDef(name="a", tag="x", chart="imr"))
    run.add([T0], [1.0])
    with pytest.raises(ValueError, match="time order"):
        run.add([T0], [2.0])


class _Spec:
    def __init__(self, lsl: float | None, usl: float | None, target: float | None) -> None:
        self.lsl, self.usl, self.target = lsl, usl, target


def test_chart_over_history_gives_capability_from_spc_against_the_spec() -> None:
    defn = SpcDef(name="bore", tag="bore_mm", chart="xbar_r")
    times, values = _series(_stable_means(40))
    out = chart_over_history(defn, times, values, _Spec(97.0, 103.0, 100.0))
    groups = [values[i : i + 5] for i in range(0, len(values), 5)]
    cap = spc.capability(groups, 97.0, 103.0)
    assert out["capability"]["cp"] == cap.cp
    assert out["capability"]["cpk"] == cap.cpk
    assert out["capability"]["pp"] == cap.pp
    assert out["capability"]["ppk"] == cap.ppk
    assert out["capability"]["target"] == 100.0
    assert len(out["points"]) == 40
    assert out["violations"] == []
    last = spc.xbar_r(groups[14:39]).location.limits[0]
    assert out["limits"] == {
        "cl": last.centre,
        "ucl": last.upper,
        "lcl": last.lower,
        "sigma": last.sigma,
    }
    json.dumps(out)  # the API returns it as is
    assert chart_over_history(defn, times, values, None)["capability"] is None


def test_chart_over_history_lists_violations_with_their_times() -> None:
    defn = _baseline_defn()
    baseline = _stable_means(20)
    times, values = _series(baseline + [statistics.fmean(baseline) + 0.5 * SIGMA_XBAR] * 10)
    out = chart_over_history(defn, times, values, None)
    assert out["violations"] == [
        {"time_us": times[(20 + 8) * 5 + 4], "rules": [2]},
        {"time_us": times[(20 + 9) * 5 + 4], "rules": [2]},
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"chart": "xbar_r", "subgroup_size": 1}, "subgroup_size 2..50"),
        ({"chart": "imr", "subgroup_size": 5}, "subgroup_size is 1"),
        ({"chart": "xbar_r", "limits": "baseline"}, "baseline_start and baseline_end"),
        ({"chart": "p"}, "sample_size_tag or sample_size"),
        ({"chart": "np", "sample_size_tag": "n"}, "fixed sample_size"),
        ({"chart": "c", "sample_size": 5}, "takes no sample size"),
        ({"chart": "imr", "rules": "weco", "enabled_rules": [5]}, "choose from"),
        ({"chart": "imr", "tag": "bad tag"}, "neither a tag name"),
        ({"chart": "imr", "colour": "red"}, "Extra inputs"),
        ({"chart": "imr", "counter": True, "subgroup_s": 60}, "chart p, np, c or u, not imr"),
        ({"chart": "c", "counter": True}, "counter: true needs timed subgroups: give subgroup_s"),
        (
            {"chart": "p", "counter": True, "subgroup_s": 60, "sample_size_tag": "n"},
            "not sample_size_tag",
        ),
        (
            {"chart": "np", "counter": True, "subgroup_s": 60, "sample_size_counters": ["a"]},
            "np chart needs a fixed sample_size",
        ),
        (
            {"chart": "p", "counter": True, "subgroup_s": 60, "sample_size_counters": ["a", "a"]},
            "names a counter twice",
        ),
        (
            {"chart": "p", "counter": True, "subgroup_s": 60, "sample_size_counters": []},
            "at least 1 item",
        ),
        (
            {"chart": "c", "counter": True, "subgroup_s": 60, "sample_size_counters": ["a"]},
            "takes no sample size",
        ),
        (
            {"chart": "c", "counter": True, "subgroup_s": 60, "skip_repeats": True},
            "a repeated count is an increase of 0",
        ),
        ({"chart": "p", "sample_size_counters": ["a"]}, "sample_size_counters needs counter"),
        ({"chart": "c", "rollover": 65536}, "rollover is for counter charts"),
    ],
)
def test_bad_definitions_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SpcDef.model_validate({"name": "a", "tag": "x", **fields})


def test_point_json_names_the_limits() -> None:
    point = SpcPoint(T0, 1.0, 0.5, 5.0, spc.Limits(1.0, 0.1, 0.7, 1.3), None, (2,))
    assert point.to_json()["limits"] == {"cl": 1.0, "ucl": 1.3, "lcl": 0.7, "sigma": 0.1}
    assert point.to_json()["rules"] == [2]


def test_a_held_value_is_not_charted_again_unless_asked() -> None:
    """A machine that stops keeps publishing the last measurement: charting its repeats
    would freeze the limits on a flat line and flag the next real values. Counts repeat
    legitimately and are all charted."""
    held = SpcDef(name="w", tag="a/b/w", chart="imr")
    every = SpcDef(name="w", tag="a/b/w", chart="imr", skip_repeats=False)
    times, values = [1, 2, 3, 4, 5, 6], [1.0, 2.0, 2.0, 2.0, 3.0, 2.0]
    assert [p.value for p in SpcChartRun(held).add(times, values)] == [1.0, 2.0, 3.0, 2.0]
    assert len(SpcChartRun(every).add(times, values)) == 6
    counts = SpcDef(name="c", tag="a/b/c", chart="c")
    assert len(SpcChartRun(counts).add(times, [1, 1, 1, 2, 2, 0])) == 6
    # Carried over a restart: the value before it is still the one repeats are judged by.
    first = SpcChartRun(held)
    first.add([1, 2], [5.0, 6.0])
    again = SpcChartRun.restore(held, first.snapshot())
    assert [p.value for p in again.add([3, 4], [6.0, 7.0])] == [7.0]


# --- counters ----------------------------------------------------------------------------------

WINDOW = 60_000_000
BASE = T0 - T0 % WINDOW  # a window boundary
# (second from BASE, good_count, scrap_count): cumulative, two samples per minute window. Window 0
# only starts the counts; in window 2 scrap_count is reset (57 -> 3), in window 3 good_count
# wraps at 65536 (65480 -> 64); window 4 rejects far more; window 5 produces nothing.
COUNTERS = (
    (50, 65000, 50),
    (70, 65100, 52),
    (110, 65200, 55),  # window 1: good +200, scrap +5
    (130, 65300, 57),
    (170, 65480, 3),  # window 2: good +280, scrap +2 then reset: +3
    (190, 64, 7),  # window 3: wrap: 64 + 65536 - 65480 = 120; scrap +4
    (230, 200, 9),  # window 3: good +136, scrap +2
    (250, 400, 20),
    (290, 500, 40),  # window 4: good +300, scrap +31
    (310, 500, 40),
    (350, 500, 40),  # window 5: nothing produced: n = 0, not charted
    (370, 600, 42),  # window 6: good +100, scrap +2
)
GOOD, SCRAP = "acme/p1/l1/filler/good_count", "acme/p1/l1/filler/scrap_count"


def _counter_defn(**extra: object) -> SpcDef:
    return SpcDef.model_validate(
        {
            "name": "rejects",
            "tag": SCRAP,
            "chart": "p",
            "counter": True,
            "subgroup_s": 60,
            "rollover": 65536,
            "sample_size_counters": [GOOD, SCRAP],
            "rolling_subgroups": 3,
            **extra,
        }
    )


def _counter_series(
    rows: tuple[tuple[int, int, int], ...],
) -> dict[str, tuple[list[int], list[float]]]:
    times = [BASE + s * STEP for s, _, _ in rows]
    return {
        GOOD: (times, [float(g) for _, g, _ in rows]),
        SCRAP: (times, [float(c) for _, _, c in rows]),
    }


def test_a_p_chart_on_counters_charts_increases_through_a_reset_and_a_rollover() -> None:
    run = SpcChartRun(_counter_defn())
    points = run.add_counters(_counter_series(COUNTERS)) + run.flush()
    # Per window by hand: d = scrap's increase, n = good's + scrap's increase.
    d = [5, 5, 6, 31, 2]
    n = [200 + 5, 280 + 5, 120 + 136 + 6, 300 + 31, 100 + 2]
    assert [p.value for p in points] == [di / ni for di, ni in zip(d, n, strict=True)]
    assert [p.n for p in points] == n
    assert [p.time_us for p in points] == [BASE + s * STEP for s in (110, 170, 230, 290, 370)]
    assert [p.limits for p in points[:3]] == [None] * 3  # fewer than 3 windows before them
    # Window 4 against windows 1-3: p̄ = Σd / Σn, limits p̄ ± 3 √(p̄(1 - p̄)/n₄), not below 0.
    p_bar = (5 + 5 + 6) / (205 + 285 + 262)
    sigma = (p_bar * (1 - p_bar) / 331) ** 0.5
    limits = points[3].limits
    assert limits is not None
    assert limits.centre == pytest.approx(p_bar)
    assert limits.upper == pytest.approx(p_bar + 3 * sigma)
    assert limits.lower == 0.0  # p̄ - 3 sigma is below zero
    assert limits.upper < 31 / 331 and points[3].rules == (1,)
    # Window 5 produced nothing and is skipped: window 6 is judged against windows 2-4.
    p_bar = (5 + 6 + 31) / (285 + 262 + 331)
    assert points[4].limits is not None
    assert points[4].limits.centre == pytest.approx(p_bar)
    assert points[4].limits.upper == pytest.approx(p_bar + 3 * (p_bar * (1 - p_bar) / 102) ** 0.5)


def test_a_counter_chart_does_not_chart_its_cumulative_value() -> None:
    """Without `counter` the same p chart would read 40 scrapped of a sample of 500 parts."""
    defn = SpcDef(name="c", tag=SCRAP, chart="c", counter=True, subgroup_s=60)
    times, values = _counter_series(COUNTERS)[SCRAP]
    points = SpcChartRun(defn).add(times, values)
    assert [p.value for p in points] == [5.0, 5.0, 6.0, 31.0, 0.0]  # window 5: 0 defects


def _long_counters() -> tuple[tuple[int, int, int], ...]:
    """Forty windows of production sampled every 20 s, a 16-bit good counter that wraps and a
    scrap counter reset every 13 windows; window 30 rejects a lot; window 20 is idle."""
    rows: list[tuple[int, int, int]] = []
    good, scrap = 60_000, 0
    for second in range(10, 40 * 60, 20):
        window = second // 60
        if window != 20:
            good = (good + 40 + (second * 7) % 23) % 65536
            scrap += (second // 20) % 3 + (25 if window == 30 else 0)
        if second % (13 * 60) == 10:
            scrap = 0
        rows.append((second, good, scrap))
    return tuple(rows)


@pytest.mark.parametrize("cut_s", [15, 605, 615, 1195, 1805, 2205])
def test_counter_chart_live_in_pieces_and_restarted_equals_history(cut_s: int) -> None:
    defn = _counter_defn(rolling_subgroups=8)
    rows = _long_counters()
    history = chart_over_history(
        defn, *_counter_series(rows)[SCRAP], None, counters={GOOD: _counter_series(rows)[GOOD]}
    )
    assert any(v["rules"] for v in history["violations"])  # window 30 is caught
    head = tuple(r for r in rows if r[0] < cut_s)
    tail = tuple(r for r in rows if r[0] >= cut_s)
    first = SpcChartRun(defn)
    live = first.add_counters(_counter_series(head)) if head else []
    state = json.loads(json.dumps(first.snapshot()))  # really JSON, as the engine stores it
    second = SpcChartRun.restore(defn, state)
    live += second.add_counters(_counter_series(tail))
    # Live, the last window stays open until a later sample comes; history closes it.
    assert [p.to_json() for p in live] == history["points"][:-1]
    assert len(live) == 37  # windows 1-38 (39 is open) but the idle window 20


def test_counters_that_arrive_apart_are_counted_in_the_open_window() -> None:
    """Each counter's series in its own feed: the run keeps each counter's last sample."""
    rows = _long_counters()
    together = SpcChartRun(_counter_defn()).add_counters(_counter_series(rows))
    run = SpcChartRun(_counter_defn())
    apart: list[SpcPoint] = []
    for row in rows:  # good first, then scrap, sample by sample
        series = _counter_series((row,))
        apart += run.add_counters({GOOD: series[GOOD]})
        apart += run.add_counters({SCRAP: series[SCRAP]})
    assert apart == together
    with pytest.raises(ValueError, match="not \\['acme/p1/l1/x'\\]"):
        run.add_counters({"acme/p1/l1/x": ([1], [1.0])})


# --- found in review -----------------------------------------------------------------------------


def test_a_state_saved_before_the_counter_fields_existed_is_restored() -> None:
    # A live chart saved by an earlier version has no `counter`, `rollover` or
    # `sample_size_counters` in its definition: their defaults are what it had, so it carries on
    # (a baseline chart started afresh after its baseline period would never be judged again).
    defn = SpcDef(name="a", tag="x", chart="imr")
    times, values = [T0 + i * STEP for i in range(30)], [float(v) for v in STABLE * 3][:30]
    whole = SpcChartRun(defn).add(times, values)
    first = SpcChartRun(defn)
    head = first.add(times[:20], values[:20])
    state = json.loads(json.dumps(first.snapshot()))
    for added in ("counter", "rollover", "sample_size_counters"):
        del state["definition"][added]
    tail = SpcChartRun.restore(defn, state).add(times[20:], values[20:])
    assert head + tail == whole


def test_a_window_still_open_at_the_end_of_the_range_is_not_charted() -> None:
    # Asked three minutes into a ten-minute window, its count is a fraction of a window's: the
    # live chart would not chart it yet, and neither does the chart of the range.
    defn = SpcDef(name="c", tag=SCRAP, chart="c", counter=True, subgroup_s=60)
    times, values = _counter_series(COUNTERS)[SCRAP]
    ended = chart_over_history(defn, times, values, None, end_us=BASE + 420 * STEP)
    assert [p["value"] for p in ended["points"]] == [5.0, 5.0, 6.0, 31.0, 0.0, 2.0]
    cut = chart_over_history(defn, times, values, None, end_us=BASE + 380 * STEP)
    assert [p["value"] for p in cut["points"]] == [5.0, 5.0, 6.0, 31.0, 0.0]


def test_a_counter_read_twice_at_one_instant_goes_on_from_the_sample_it_counted() -> None:
    # At one instant 1, 2 and 1 again: counter_deltas counts the repeat once (1 -> 2), so the
    # next feed goes on from 2, as the whole series at once would.
    defn = SpcDef(name="c", tag=SCRAP, chart="c", counter=True, subgroup_s=60)
    t = [BASE + 5 * STEP] * 3 + [BASE + 65 * STEP, BASE + 125 * STEP, BASE + 185 * STEP]
    v = [1.0, 2.0, 1.0, 3.0, 5.0, 9.0]
    whole = SpcChartRun(defn).add(t, v)
    parts = SpcChartRun(defn)
    assert parts.add(t[:3], v[:3]) + parts.add(t[3:], v[3:]) == whole
