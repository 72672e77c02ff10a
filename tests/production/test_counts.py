"""Counter tags to increments: resets, rollovers, bad samples, out-of-order and repeated input,
and increments summed into half-open time bins."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.production.counts import counter_deltas, sum_by_bins


def deltas(
    times: list[int],
    values: list[float],
    previous: tuple[int, float] | None = None,
    rollover: int | None = None,
) -> tuple[list[int], list[float]]:
    t, d = counter_deltas(
        np.array(times, dtype=np.int64),
        np.array(values, dtype=np.float64),
        previous=previous,
        rollover=rollover,
    )
    assert t.dtype == np.int64
    assert d.dtype == np.float64
    return t.tolist(), d.tolist()


def test_rises_count_at_the_later_sample() -> None:
    assert deltas([10, 20, 30, 40], [5, 7, 7, 12]) == ([20, 30, 40], [2.0, 0.0, 5.0])


def test_a_drop_is_a_reset_to_zero_then_counting_up() -> None:
    # 100 -> 3: reset, then 3 made. Without rollover every drop is a reset, however large.
    assert deltas([1, 2, 3, 4], [98, 100, 3, 10]) == ([2, 3, 4], [2.0, 3.0, 7.0])
    assert deltas([1, 2], [65530, 5]) == ([2], [5.0])


def test_a_16_bit_counter_wraps() -> None:
    r = 65536
    # 65530 -> 5 is a drop of 65525 > 32768: wrapped, 6 to reach 0 and 5 more.
    assert deltas([1, 2, 3], [65530, 5, 9], rollover=r) == ([2, 3], [11.0, 4.0])
    # A drop of exactly half the range is not more than half: a reset.
    assert deltas([1, 2], [32768, 0], rollover=r) == ([2], [0.0])
    assert deltas([1, 2], [32769, 0], rollover=r) == ([2], [32767.0])
    # A small drop with a rollover given is still a reset.
    assert deltas([1, 2], [400, 10], rollover=r) == ([2], [10.0])


def test_nan_samples_are_skipped() -> None:
    nan = float("nan")
    assert deltas([1, 2, 3, 4], [10, nan, 14, nan]) == ([3], [4.0])
    assert deltas([1, 2], [nan, nan]) == ([], [])
    assert deltas([1, 2], [np.inf, 3]) == ([], [])
    # A NaN previous sample is no predecessor.
    assert deltas([5, 6], [1, 2], previous=(4, nan)) == ([6], [1.0])


def test_previous_gives_the_first_sample_a_predecessor() -> None:
    assert deltas([10, 20], [12, 15], previous=(5, 10)) == ([10, 20], [2.0, 3.0])
    assert deltas([10], [3], previous=(5, 10)) == ([10], [3.0])  # reset across the edge
    assert deltas([10], [3], previous=(5, 65530), rollover=65536) == ([10], [9.0])
    assert deltas([], [], previous=(5, 10)) == ([], [])
    # The previous sample delivered again with the window: counted once.
    assert deltas([5, 20], [10, 15], previous=(5, 10)) == ([20], [5.0])
    with pytest.raises(ValueError, match="must be the last sample before the window"):
        deltas([4, 20], [10, 15], previous=(5, 10))


def test_unsorted_and_repeated_input_give_the_sorted_result() -> None:
    times = [10, 20, 30, 40, 50]
    values = [1.0, 4.0, 2.0, 8.0, 9.0]
    expected = deltas(times, values)
    assert expected == ([20, 30, 40, 50], [3.0, 2.0, 6.0, 1.0])
    shuffled = [3, 0, 4, 1, 2]
    assert deltas([times[i] for i in shuffled], [values[i] for i in shuffled]) == expected
    # Exact repeats of (time, value), in any place, count once.
    assert deltas([40, 10, 20, 30, 20, 40, 50, 10], [8, 1, 4, 2, 4, 8, 9, 1]) == expected


def test_samples_at_one_instant_keep_their_input_order() -> None:
    # Two different values at t=20, and a repeat of the first one that is not its neighbour.
    assert deltas([20, 10, 20, 20], [5, 1, 7, 5]) == ([20, 20], [4.0, 2.0])


def test_shapes_and_rollover_are_checked() -> None:
    with pytest.raises(ValueError, match="one length"):
        counter_deltas(np.array([1, 2]), np.array([1.0]))
    with pytest.raises(ValueError, match="counter's range"):
        counter_deltas(np.array([1, 2]), np.array([1.0, 2.0]), rollover=1)


@st.composite
def counter_runs(draw: st.DrawFn) -> tuple[list[int], list[float], float, int | None]:
    """A monotone counter sampled at increasing times, with resets (to 0, then counting up
    before the next sample) and, for a bounded counter, wraps; returns the samples and the
    true total of what was produced between the first sample and the last."""
    rollover = draw(st.sampled_from([None, 65536]))
    n = draw(st.integers(1, 60))
    steps = draw(st.lists(st.integers(0, 500), min_size=n, max_size=n))
    resets = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    top = 65535 if rollover else 10**6
    value = draw(st.integers(0, top) | st.integers(top - 2000, top))  # near the top: wraps
    times, values, produced = [0], [float(value)], 0
    for i, (step, reset) in enumerate(zip(steps, resets, strict=True)):
        if reset and step > 0 and step < value:
            # A reset: the counter goes to zero and counts `step` before the next sample. A
            # reset that leaves it above its old value cannot be told from counting on, and
            # one that drops by more than half a bounded range reads as a wrap: keep those out.
            if rollover is not None and value - step > rollover // 2:
                step = 0
            else:
                value = step
        elif rollover is not None:
            value = (value + step) % rollover
        else:
            value += step
        produced += step
        times.append(10 * (i + 1))
        values.append(float(value))
    return times, values, float(produced), rollover


@settings(max_examples=300, deadline=None)
@given(counter_runs(), st.randoms(use_true_random=False))
def test_the_deltas_of_a_counter_add_up_to_what_was_produced(
    run: tuple[list[int], list[float], float, int | None], rnd: random.Random
) -> None:
    times, values, produced, rollover = run
    t, d = counter_deltas(np.array(times), np.array(values), rollover=rollover)
    assert d.sum() == produced
    assert (d >= 0).all()
    # Shuffled, the same increments at the same instants.
    order = list(range(len(times)))
    rnd.shuffle(order)
    t2, d2 = counter_deltas(np.array(times)[order], np.array(values)[order], rollover=rollover)
    assert t2.tolist() == t.tolist()
    assert d2.tolist() == d.tolist()
    # Split into two windows with `previous`: the halves add up to the whole.
    cut = len(times) // 2
    _, first = counter_deltas(np.array(times[:cut]), np.array(values[:cut]), rollover=rollover)
    _, second = counter_deltas(
        np.array(times[cut:]),
        np.array(values[cut:]),
        previous=(times[cut - 1], values[cut - 1]),
        rollover=rollover,
    )
    assert first.sum() + second.sum() == produced


# -- bins --------------------------------------------------------------------------------------


def test_sum_by_bins_uses_half_open_bins_and_drops_what_is_outside() -> None:
    edges = np.array([100, 200, 300], dtype=np.int64)
    times = np.array([99, 100, 150, 199, 200, 299, 300], dtype=np.int64)
    amounts = np.array([1, 2, 3, 4, 5, 6, 7], dtype=np.float64)
    out = sum_by_bins(times, amounts, edges)
    assert out.dtype == np.float64
    assert out.tolist() == [2 + 3 + 4, 5 + 6]


def test_sum_by_bins_edge_cases() -> None:
    # An empty bin between equal edges gets nothing; its neighbour gets the time at the edge.
    assert sum_by_bins([200], [1.0], [100, 200, 200, 300]).tolist() == [0.0, 0.0, 1.0]
    assert sum_by_bins([], [], [0, 10, 20]).tolist() == [0.0, 0.0]
    assert sum_by_bins([5], [1.0], [0]).tolist() == []
    assert sum_by_bins([5], [1.0], []).tolist() == []
    with pytest.raises(ValueError, match="sorted ascending"):
        sum_by_bins([5], [1.0], [10, 0])
    with pytest.raises(ValueError, match="one length"):
        sum_by_bins([5, 6], [1.0], [0, 10])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-50, 250), st.integers(0, 100)), max_size=40),
    st.lists(st.integers(0, 200), min_size=1, max_size=8),
)
def test_sum_by_bins_matches_a_loop(rows: list[tuple[int, int]], raw_edges: list[int]) -> None:
    edges = sorted(raw_edges)
    times = [t for t, _ in rows]
    amounts = [float(a) for _, a in rows]
    expected = [
        sum(a for t, a in zip(times, amounts, strict=True) if lo <= t < hi)
        for lo, hi in itertools.pairwise(edges)
    ]
    assert sum_by_bins(times, amounts, edges).tolist() == expected
