"""Rollups answer exactly what the raw points answer, for any series and any grid-aligned query,
and an append folded into a row gives the row built from all the points."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.historian.maths import aggregates, rollup
from kiln.historian.maths.timeline import Points

NAMES = sorted(rollup.ANSWERABLE)


@st.composite
def series(draw: st.DrawFn) -> Points:
    n = draw(st.integers(min_value=0, max_value=40))
    gaps = draw(st.lists(st.integers(1, 90), min_size=n, max_size=n))
    ts = np.cumsum(np.asarray(gaps, dtype=np.int64)) - 200
    values = (
        np.asarray(
            draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n)), dtype=np.float64
        )
        / 8
    )
    good = np.asarray(draw(st.lists(st.booleans().map(lambda b: b or draw(st.booleans())),
                                    min_size=n, max_size=n)), dtype=bool)  # fmt: skip
    # A Bad point often carries no value at all.
    values[~good & (np.arange(n) % 2 == 0)] = np.nan
    return Points(ts, values, good)


def _window(points: Points, start: int, end: int) -> tuple[Points, Points, Points]:
    """The points of [start, end), the one before and the one after (as `query.timelines`)."""
    a, b = np.searchsorted(points.ts, [start, end])

    def cut(i: int, j: int) -> Points:
        return Points(points.ts[i:j], points.values[i:j], points.good[i:j])

    return cut(a, b), cut(max(a - 1, 0), a), cut(b, b + 1)


def _same(got: list[Any], want: list[Any], name: str) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if w is None:
            assert g is None, name
        else:
            assert g is not None, name
            assert math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-6), (name, got, want)


@settings(max_examples=300, deadline=None)
@given(
    points=series(),
    width=st.sampled_from([7, 10, 60]),
    per_bucket=st.integers(1, 4),
    first=st.integers(-6, 10),
    buckets=st.integers(1, 6),
    step=st.booleans(),
    end_cut=st.one_of(st.none(), st.integers(0, 200)),
)
def test_rollups_answer_what_raw_points_answer(
    points: Points,
    width: int,
    per_bucket: int,
    first: int,
    buckets: int,
    step: bool,
    end_cut: int | None,
) -> None:
    edges = (first + np.arange(buckets + 1) * per_bucket) * width
    start, end = int(edges[0]), int(edges[-1])
    inside, before, after = _window(points, start, end)
    data_end = None
    if end_cut is not None:
        last = int(inside.ts[-1]) if len(inside) else start
        data_end = last + end_cut  # never before the range's last point
    window = Points(
        np.r_[before.ts, inside.ts, after.ts],
        np.r_[before.values, inside.values, after.values],
        np.r_[before.good, inside.good, after.good],
    )
    want = aggregates.aggregate(window, edges, NAMES, step=step, data_end_us=data_end)
    rows = rollup.build(inside, width, step=step)
    got = rollup.merge(rows, before, after, edges, NAMES, step=step, data_end_us=data_end)
    assert got["count"] == want["count"]
    for name in NAMES:
        _same(got[name], want[name], name)


@settings(max_examples=200, deadline=None)
@given(points=series(), width=st.sampled_from([7, 10, 60]), cut=st.integers(0, 40),
       step=st.booleans())  # fmt: skip
def test_an_append_folded_into_its_row_equals_the_row_of_all_points(
    points: Points, width: int, cut: int, step: bool
) -> None:
    cut = min(cut, len(points))
    old = Points(points.ts[:cut], points.values[:cut], points.good[:cut])
    new = Points(points.ts[cut:], points.values[cut:], points.good[cut:])
    stored = rollup.build(old, width, step=step)
    written = rollup.build(new, width, step=step)
    if len(stored) and len(written) and written.bucket[0] == stored.bucket[-1]:
        # The append's first row joins the stored row of its bucket (as `tiers` does it).
        first = np.array([0])
        joined = rollup.combine(stored.take(np.array([len(stored) - 1])), written.take(first),
                                step=step)  # fmt: skip
        written = written.put(first, joined)
        stored = stored.take(np.arange(len(stored) - 1))
    got = rollup.concat([stored, written])
    want = rollup.build(points, width, step=step)
    for field in ("bucket", "count", "head_ts", "tail_ts", "good_us"):
        assert getattr(got, field).tolist() == getattr(want, field).tolist(), field
    for field in ("sum", "m2", "min", "max", "first", "last", "area", "head_value",
                  "tail_value"):  # fmt: skip
        np.testing.assert_allclose(getattr(got, field), getattr(want, field), rtol=1e-9,
                                   atol=1e-6, equal_nan=True, err_msg=field)  # fmt: skip


def test_a_worked_example() -> None:
    """Two one-minute rows and a two-minute twa from them, computed by hand.

    Points (s, value): 0 → 10, 30 → 20, 60 → 20 (Bad), 90 → 40, linear. From 0 s to 30 s the
    value ramps 10 → 20 (area 450); a ramp needs two Good points, so from 30 s it holds 20
    until the Bad point at 60 s (area 600); nothing is valid from 60 s to 90 s; then 40 holds
    until the data ends at 120 s (area 1200).
    """
    s = 1_000_000
    pts = Points(np.array([0, 30 * s, 60 * s, 90 * s]), np.array([10.0, 20.0, 20.0, 40.0]),
                 np.array([True, True, False, True]))  # fmt: skip
    rows = rollup.build(pts, 60 * s, step=False)
    assert rows.bucket.tolist() == [0, 60 * s]
    assert rows.area.tolist() == [450.0 * s, 0.0]  # head to tail only: 0 s to 30 s
    assert rows.good_us.tolist() == [30 * s, 0]
    edges = np.array([0, 120 * s])
    none = Points(np.empty(0, np.int64), np.empty(0), np.empty(0, bool))
    got = rollup.merge(rows, none, none, edges, ["twa", "percent_good", "count", "avg"],
                       step=False, data_end_us=120 * s)  # fmt: skip
    # Valid: 90 s of the 120; the row of minute 0 holds only 0-30 s (head to tail).
    assert got["twa"] == [pytest.approx((450 + 600 + 1200) / 90)]
    assert got["percent_good"] == [pytest.approx(75.0)]
    assert got["count"] == [3]
    assert got["avg"] == [pytest.approx(70 / 3)]


def test_rollups_refuse_what_they_cannot_answer() -> None:
    none = Points(np.empty(0, np.int64), np.empty(0), np.empty(0, bool))
    with pytest.raises(ValueError, match="durations"):
        rollup.merge(rollup.empty(), none, none, np.array([0, 10]), ["durations"], step=True)
    strings = Points(np.array([1]), np.array(["on"], dtype=object), np.array([True]))
    with pytest.raises(ValueError, match="numeric"):
        rollup.build(strings, 10, step=True)
