"""OEE per ISO 22400-2: the published worked example, roll-ups, drill-down and the guards."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.production.intervals import Interval, StopRecord, clip, resolve_overlaps, total
from kiln.production.oee import OeeFigures

MIN = 60_000_000  # µs
SECOND = 1_000_000


def vorne_shift() -> OeeFigures:
    """The worked example of oee.com (Vorne), "OEE Calculation" page, "Example OEE
    Calculation": a 480-minute shift with two 15-minute breaks and a 30-minute meal, 47 minutes
    of down time, an ideal rate of 60 pieces a minute, 19,271 pieces of which 423 rejects."""
    shift = 480 * MIN
    breaks = 2 * 15 * MIN + 30 * MIN
    down = 47 * MIN
    pieces, rejects = 19_271, 423
    return OeeFigures(
        calendar_time_us=24 * 60 * MIN,
        planned_operation_time_us=shift,
        planned_down_time_us=breaks,
        actual_unit_down_time_us=down,
        actual_production_time_us=shift - breaks - down,  # Vorne's "run time", 373 minutes
        ideal_run_time_us=pieces * (MIN / 60),  # ideal cycle time 1 s = 60 pieces/min
        produced_quantity=pieces,
        good_quantity=pieces - rejects,
    )


def pct(value: float | None) -> float:
    assert value is not None
    return round(100 * value, 2)


def test_vorne_worked_example_to_the_published_precision() -> None:
    # oee.com publishes: availability 88.81 %, performance 86.11 %, quality 97.80 %,
    # OEE 74.79 % (two decimals).
    figures = vorne_shift()
    assert figures.planned_busy_time_us == 420 * MIN  # Vorne's "planned production time"
    assert pct(figures.availability) == 88.81
    assert pct(figures.performance) == 86.11
    assert pct(figures.quality) == 97.80
    assert pct(figures.oee) == 74.79
    # OEE is the product of the three, to rounding error, not only to two decimals.
    assert figures.availability is not None and figures.performance is not None
    assert figures.quality is not None
    product = figures.availability * figures.performance * figures.quality
    assert figures.oee == pytest.approx(product, rel=1e-12)
    # TEEP: the same good output measured against the whole day.
    assert figures.teep == pytest.approx(product * 420 / 1440, rel=1e-12)


def shift(down_min: int, run_min: int, pieces: int, good: int, cycle_s: float) -> OeeFigures:
    """One shift of `down_min + run_min` planned busy minutes after a 30-minute break."""
    return OeeFigures(
        calendar_time_us=(down_min + run_min + 30) * MIN,
        planned_operation_time_us=(down_min + run_min + 30) * MIN,
        planned_down_time_us=30 * MIN,
        actual_unit_down_time_us=down_min * MIN,
        actual_production_time_us=run_min * MIN,
        ideal_run_time_us=pieces * cycle_s * SECOND,
        produced_quantity=pieces,
        good_quantity=good,
    )


def test_roll_up_sums_times_and_counts_never_averages_percentages() -> None:
    # A long good shift and a short bad one, on products with different cycle times.
    day = shift(down_min=30, run_min=420, pieces=24_000, good=23_500, cycle_s=1.0)
    night = shift(down_min=60, run_min=60, pieces=1_500, good=1_200, cycle_s=2.0)
    both = day + night

    assert both.planned_busy_time_us == day.planned_busy_time_us + night.planned_busy_time_us
    assert both.produced_quantity == 25_500 and both.good_quantity == 24_700
    assert both.ideal_run_time_us == (24_000 * 1.0 + 1_500 * 2.0) * SECOND
    # The OEE of the summed times and counts, by the ISO formulas on the sums ...
    a = both.actual_production_time_us / both.planned_busy_time_us
    p = both.ideal_run_time_us / both.actual_production_time_us
    q = both.good_quantity / both.produced_quantity
    assert both.oee == pytest.approx(a * p * q, rel=1e-12)
    assert both.availability == pytest.approx(a) and both.quality == pytest.approx(q)
    # ... which is not the mean of the two shifts' OEEs.
    assert day.oee is not None and night.oee is not None
    assert both.oee != pytest.approx((day.oee + night.oee) / 2, abs=1e-3)
    # Summing is order-free and the empty figures are its identity.
    assert night + day == both and OeeFigures() + both == both


def test_to_json_opens_every_figure_into_its_inputs() -> None:
    doc = vorne_shift().to_json()
    inputs = {name: doc[name]["inputs"] for name in ("availability", "performance", "quality")}
    a = (
        inputs["availability"]["actual_production_time_us"]
        / inputs["availability"]["planned_busy_time_us"]
    )
    p = (
        inputs["performance"]["ideal_run_time_us"]
        / inputs["performance"]["actual_production_time_us"]
    )
    q = inputs["quality"]["good_quantity"] / inputs["quality"]["produced_quantity"]
    assert doc["availability"]["value"] == a
    assert doc["performance"]["value"] == p
    assert doc["quality"]["value"] == q
    assert doc["oee"]["value"] == pytest.approx(a * p * q, rel=1e-12)
    times = doc["time_elements_us"]
    assert (
        times["planned_busy_time"] == times["planned_operation_time"] - times["planned_down_time"]
    )
    assert times["unaccounted_time"] == 0  # Vorne's shift is fully classified
    assert doc["counts"] == {"produced": 19_271, "good": 18_848, "scrap": 423}


def test_no_production_in_planned_time_is_an_oee_of_zero_not_no_data() -> None:
    down_all_shift = OeeFigures(
        calendar_time_us=8 * 60 * MIN,
        planned_operation_time_us=8 * 60 * MIN,
        actual_unit_down_time_us=8 * 60 * MIN,
    )
    assert down_all_shift.availability == 0.0 and down_all_shift.oee == 0.0
    assert down_all_shift.performance is None and down_all_shift.quality is None
    nothing_planned = OeeFigures(calendar_time_us=60 * MIN)
    assert nothing_planned.oee is None and nothing_planned.teep == 0.0


def test_overlapping_stop_records_resolved_keep_availability_in_range() -> None:
    # point85/OEE-Designer#9: two reason records over one stop, summed as entered, exceeded the
    # planned time and made availability negative. Resolved, they count the stop once.
    planned = Interval(0, 100 * MIN)
    records = [
        StopRecord(Interval(10 * MIN, 70 * MIN), "jam", entered_us=1),
        StopRecord(Interval(20 * MIN, 90 * MIN), "material", entered_us=2),
        StopRecord(Interval(95 * MIN, 130 * MIN), "jam", entered_us=3),  # runs past the end
    ]
    naive = sum(r.interval.duration_us for r in records)
    assert naive > planned.duration_us  # the bug's precondition
    down = total(clip([p.interval for p in resolve_overlaps(records)], planned))
    figures = OeeFigures(
        calendar_time_us=planned.duration_us,
        planned_operation_time_us=planned.duration_us,
        actual_unit_down_time_us=down,
        actual_production_time_us=planned.duration_us - down,
    )
    assert figures.availability is not None and 0.0 <= figures.availability <= 1.0
    assert down == 85 * MIN
    # The naive sum is refused, with a message that says what to do.
    with pytest.raises(ValueError, match=r"counted twice.*resolve overlapping"):
        OeeFigures(
            calendar_time_us=planned.duration_us,
            planned_operation_time_us=planned.duration_us,
            actual_unit_down_time_us=naive,
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"produced_quantity": 5, "good_quantity": 6}, "good quantity 6 exceeds produced"),
        ({"planned_down_time_us": 1}, "planned down time .* exceed planned operation"),
        ({"calendar_time_us": 9, "planned_operation_time_us": 10}, "exceeds the calendar"),
        ({"planned_maintenance_time_us": 1}, "PDOT includes planned maintenance"),
        ({"actual_unit_setup_time_us": -1}, "actual_unit_setup_time_us is -1"),
    ],
)
def test_inconsistent_figures_are_refused_with_the_reason(
    kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        OeeFigures(**kwargs)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-2, 12), min_size=12, max_size=12))
def test_the_column_checks_agree_with_the_one_by_one_checks(values: list[int]) -> None:
    """`valid_columns` (used on whole buckets by compute) passes exactly the rows that
    `__post_init__` accepts, so checking columns keeps the guard against double counting."""
    import numpy as np

    columns = [np.array([v]) for v in values]
    try:
        OeeFigures(*values)
        accepted = True
    except ValueError:
        accepted = False
    assert bool(OeeFigures.valid_columns(*columns)[0]) is accepted
    if accepted:
        assert OeeFigures.unchecked(tuple(values)) == OeeFigures(*values)
