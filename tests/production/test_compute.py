"""The OEE of an asset's time line (`kiln.production.compute`): states, shifts, planned down
time, operator records and counts cut into buckets, each instant charged once."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.production.chunks import STATE_DTYPE
from kiln.production.compute import (
    AssetInputs,
    Bucket,
    Counts,
    IdealCycle,
    Override,
    Planned,
    compute,
)
from kiln.production.intervals import Interval
from kiln.production.oee import OeeFigures
from kiln.production.taxonomy import CATEGORY_CODES, Category

MIN = 60_000_000
T0 = 1_780_000_000_000_000 - 1_780_000_000_000_000 % (86_400 * 1_000_000)  # a UTC midnight


def states(*rows: tuple[int, Category] | tuple[int, Category, int]) -> np.ndarray:
    """Rows given as (minute after T0, category[, reason id])."""
    out = np.zeros(len(rows), dtype=STATE_DTYPE)
    for i, row in enumerate(rows):
        out[i] = (T0 + row[0] * MIN, CATEGORY_CODES[row[1]], row[2] if len(row) > 2 else 0, -1)
    return out


def minutes(a: float, b: float) -> Interval:
    return Interval(T0 + int(a * MIN), T0 + int(b * MIN))


def one(inputs: AssetInputs, window: Interval) -> OeeFigures:
    (result,) = compute(inputs, [Bucket("all", window)])
    return result.figures


def test_the_vorne_worked_example_through_the_time_line() -> None:
    """oee.com (Vorne), "OEE Calculation": a 480-minute shift with two 15-minute breaks and a
    30-minute meal, 47 minutes down, ideal cycle 1 s (60 pieces/min), 19,271 pieces of which
    423 rejected: availability 88.81 %, performance 86.11 %, quality 97.80 %, OEE 74.79 %."""
    shift = minutes(0, 480)
    planned = [
        Planned(minutes(120, 135)),
        Planned(minutes(240, 270)),
        Planned(minutes(360, 375)),
    ]
    # Down 47 minutes inside the first production period; the machine sits idle in the breaks.
    tape = states(
        (0, Category.RUNNING),
        (60, Category.TECHNICAL),
        (107, Category.RUNNING),
        (120, Category.PLANNED_STOP),
        (135, Category.RUNNING),
        (240, Category.PLANNED_STOP),
        (270, Category.RUNNING),
        (360, Category.PLANNED_STOP),
        (375, Category.RUNNING),
    )
    count_t = np.array([T0 + 400 * MIN], dtype=np.int64)
    counts = Counts(
        good_t=count_t,
        good=np.array([19_271.0 - 423.0]),
        scrap_t=count_t,
        scrap=np.array([423.0]),
    )
    figures = one(
        AssetInputs(
            tape,
            data_end_us=shift.end_us,
            shifts=[shift],
            planned=planned,
            counts=counts,
            ideal=IdealCycle(default_s=1.0),
        ),
        shift,
    )
    assert figures.planned_busy_time_us == 420 * MIN
    assert figures.actual_production_time_us == 373 * MIN
    assert figures.actual_unit_delay_time_us == 47 * MIN
    assert f"{figures.availability:.2%}" == "88.81%"
    assert f"{figures.performance:.2%}" == "86.11%"
    assert f"{figures.quality:.2%}" == "97.80%"
    assert f"{figures.oee:.2%}" == "74.79%"


def test_running_through_a_break_is_production_and_idle_in_it_is_planned() -> None:
    shift = minutes(0, 60)
    tape = states((0, Category.RUNNING), (40, Category.OPERATOR))
    figures = one(
        AssetInputs(tape, shift.end_us, shifts=[shift], planned=[Planned(minutes(30, 50))]),
        shift,
    )
    assert figures.actual_production_time_us == 40 * MIN  # 10 of them in the break
    assert figures.planned_down_time_us == 10 * MIN  # 40-50: stopped in the break
    assert figures.actual_unit_delay_time_us == 10 * MIN  # 50-60
    assert figures.planned_busy_time_us == 50 * MIN


def test_outside_shifts_stops_are_shown_not_charged_and_running_extends_planned_time() -> None:
    shift = minutes(0, 60)
    window = minutes(0, 120)
    tape = states(
        (0, Category.RUNNING),
        (60, Category.TECHNICAL),
        (80, Category.RUNNING),
        (100, Category.SETUP),
    )
    (result,) = compute(AssetInputs(tape, window.end_us, shifts=[shift]), [Bucket("w", window)])
    f = result.figures
    assert f.calendar_time_us == 120 * MIN
    assert f.planned_operation_time_us == 60 * MIN + 40 * MIN  # the shift + running/setup after it
    assert f.actual_production_time_us == 80 * MIN
    assert f.actual_unit_setup_time_us == 20 * MIN
    assert f.actual_unit_delay_time_us == 0
    assert result.outside_shift_stop_us == 20 * MIN
    assert result.losses == {(Category.SETUP, 0): [20 * MIN, 1]}


def test_short_unplanned_stops_are_micro_stops_whatever_their_reason() -> None:
    shift = minutes(0, 60)
    tape = states(
        (0, Category.RUNNING),
        (10, Category.OPERATOR, 7),
        (11, Category.MATERIAL, 8),  # one stop of 1.5 min in two rows: still short
        (11.5, Category.RUNNING),
        (20, Category.TECHNICAL, 9),  # 5 minutes: a real stop
        (25, Category.RUNNING),
    )
    (result,) = compute(
        AssetInputs(tape, shift.end_us, shifts=[shift], micro_stop_us=2 * MIN),
        [Bucket("s", shift)],
    )
    assert result.losses == {
        (Category.MICRO_STOP, 7): [1 * MIN, 1],
        (Category.MICRO_STOP, 8): [MIN // 2, 1],
        (Category.TECHNICAL, 9): [5 * MIN, 1],
    }
    assert result.figures.actual_production_time_us == (60 - 6.5) * MIN


def test_operator_records_replace_stop_time_but_never_running_time() -> None:
    shift = minutes(0, 60)
    tape = states((0, Category.RUNNING), (30, Category.UNKNOWN), (45, Category.RUNNING))
    override = Override(minutes(20, 40), Category.MATERIAL, 5)
    (result,) = compute(
        AssetInputs(tape, shift.end_us, shifts=[shift], overrides=[override]),
        [Bucket("s", shift)],
    )
    assert result.losses == {
        (Category.MATERIAL, 5): [10 * MIN, 1],
        (Category.UNKNOWN, 0): [5 * MIN, 1],
    }
    assert result.figures.actual_production_time_us == 45 * MIN
    assert result.figures.unaccounted_time_us == 5 * MIN


def test_blocked_and_starved_are_not_charged_to_the_machine() -> None:
    shift = minutes(0, 60)
    tape = states((0, Category.RUNNING), (30, Category.STARVED), (40, Category.BLOCKED))
    f = one(AssetInputs(tape, shift.end_us, shifts=[shift]), shift)
    assert f.not_charged_time_us == 30 * MIN
    assert f.planned_busy_time_us == 30 * MIN
    assert f.availability == 1.0


def test_a_stop_across_bucket_edges_counts_once_where_it_starts() -> None:
    window = minutes(0, 180)
    tape = states((0, Category.RUNNING), (50, Category.TECHNICAL, 3), (130, Category.RUNNING))
    buckets = [Bucket(f"h{h}", minutes(60 * h, 60 * (h + 1))) for h in range(3)]
    results = compute(AssetInputs(tape, window.end_us, shifts=[window]), buckets)
    assert [r.losses for r in results] == [
        {(Category.TECHNICAL, 3): [10 * MIN, 1]},
        {(Category.TECHNICAL, 3): [60 * MIN, 0]},
        {(Category.TECHNICAL, 3): [10 * MIN, 0]},
    ]


def test_no_data_is_unknown_before_the_first_row_and_after_the_data_ends() -> None:
    shift = minutes(0, 60)
    tape = states((10, Category.RUNNING))
    f = one(AssetInputs(tape, data_end_us=T0 + 50 * MIN, shifts=[shift]), shift)
    assert f.actual_production_time_us == 40 * MIN
    assert f.unaccounted_time_us == 20 * MIN


def test_planned_maintenance_is_part_of_planned_down_time() -> None:
    shift = minutes(0, 60)
    tape = states((0, Category.RUNNING), (30, Category.PLANNED_MAINTENANCE))
    planned = [Planned(minutes(10, 20), maintenance=True)]
    f = one(AssetInputs(tape, shift.end_us, shifts=[shift], planned=planned), shift)
    # 10-20 runs through the planned maintenance window: production, not maintenance.
    assert f.actual_production_time_us == 30 * MIN
    assert f.planned_down_time_us == 30 * MIN
    assert f.planned_maintenance_time_us == 30 * MIN


def test_ideal_cycle_comes_from_the_order_then_the_tag_then_the_default() -> None:
    tag = np.array([(T0 + 10 * MIN, 2.0)], dtype=[("t", "<i8"), ("v", "<f8")])
    ideal = IdealCycle(default_s=1.0, tag=tag, orders=[(minutes(20, 30), 3.0)])
    at = np.array([T0 + 5 * MIN, T0 + 15 * MIN, T0 + 25 * MIN, T0 + 35 * MIN], dtype=np.int64)
    assert ideal.at(at).tolist() == [1.0, 2.0, 3.0, 2.0]
    assert np.isnan(IdealCycle().at(at)).all()


_CATS = st.sampled_from(list(Category))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 600), _CATS, st.integers(0, 3)), max_size=30),
    cuts=st.lists(st.integers(1, 599), max_size=8, unique=True),
    micro=st.sampled_from([0, 2]),
)
def test_buckets_add_up_to_the_whole_window(
    rows: list[tuple[int, Category, int]], cuts: list[int], micro: int
) -> None:
    """Roll-ups sum times and counts: any cut of a window into buckets sums to the window."""
    unique = {r[0]: r for r in rows}
    tape = states(*sorted(unique.values()))
    window = minutes(0, 600)
    inputs = AssetInputs(
        tape,
        window.end_us,
        shifts=[minutes(60, 300), minutes(360, 580)],
        planned=[Planned(minutes(100, 130)), Planned(minutes(400, 420), maintenance=True)],
        micro_stop_us=micro * MIN,
    )
    edges = [0, *sorted(cuts), 600]
    parts = compute(inputs, [Bucket(str(a), minutes(a, b)) for a, b in itertools.pairwise(edges)])
    whole = compute(inputs, [Bucket("all", window)])[0]
    assert functools.reduce(lambda a, b: a + b, [p.figures for p in parts]) == whole.figures
    spent: dict[tuple[Category, int], int] = {}
    for p in parts:
        for key, (us, _) in p.losses.items():
            spent[key] = spent.get(key, 0) + us
    assert spent == {key: us for key, (us, _) in whole.losses.items()}
    assert sum(c for p in parts for _, c in p.losses.values()) == sum(
        c for _, c in whole.losses.values()
    )


def test_empty_bucket_list_gives_nothing() -> None:
    assert compute(AssetInputs(states(), 0), []) == []


@pytest.mark.parametrize("end", [0, 30])
def test_an_empty_tape_is_all_unknown(end: int) -> None:
    shift = minutes(0, 60)
    f = one(AssetInputs(states(), T0 + end * MIN, shifts=[shift]), shift)
    assert f.unaccounted_time_us == 60 * MIN


def test_time_before_the_first_recorded_state_is_left_out_calendar_and_counts_too() -> None:
    window = minutes(0, 60)
    tape = states((20, Category.RUNNING))
    counts = Counts(
        good_t=np.array([T0 + 10 * MIN, T0 + 30 * MIN], dtype=np.int64),
        good=np.array([5.0, 7.0]),
    )
    results = compute(
        AssetInputs(
            tape, window.end_us, shifts=[window], counts=counts, first_data_us=T0 + 20 * MIN
        ),
        [Bucket("a", minutes(0, 15)), Bucket("b", minutes(15, 60))],
    )
    assert [r.figures.calendar_time_us for r in results] == [0, 40 * MIN]
    assert results[1].figures.availability == 1.0
    assert results[1].figures.good_quantity == 7  # the 5 made before anyone watched: left out
