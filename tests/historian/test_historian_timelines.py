"""Reading timelines: one scan for many tags, and neighbours found however far they are."""

from __future__ import annotations

import numpy as np
import pytest
from historian_helpers import T0, batch

from kiln.historian.maths.calendar import bucket_edges, parse_interval
from kiln.historian.store import DuckDBStore

H = 3_600_000_000


def test_neighbours_far_outside_the_range_start_and_end_it(store: DuckDBStore) -> None:
    # One point at 0 h and one at 10 h: a query of 4-5 h has no point inside, and both
    # neighbours are far beyond the scan's margin.
    store.write([batch([("a/b/slow", 0.0, T0), ("a/b/slow", 10.0, T0 + 10 * H)])])
    edges = np.array([T0 + 4 * H, T0 + 5 * H], dtype=np.int64)
    (got,) = store.summarize(["a/b/slow"], edges, ["twa", "count"], data_end_us=T0 + 20 * H)
    assert got.values["twa"] == pytest.approx([4.5])  # the ramp 0 -> 10 from 4 h to 5 h
    assert got.values["count"] == [0]


def test_many_tags_in_one_scan_each_get_their_own_points(store: DuckDBStore) -> None:
    rows = [
        (f"a/b/t{i}", float(i * 100 + k), T0 + k * 60_000_000) for i in range(5) for k in range(120)
    ]
    store.write([batch(rows)])
    edges = bucket_edges(T0, T0 + H, parse_interval("30min"), max_buckets=10)
    paths = [f"a/b/t{i}" for i in (4, 0, 2)] + ["a/b/never"]
    got = store.summarize(paths, edges, ["first", "last", "count"], data_end_us=T0 + 2 * H)
    assert [g.path for g in got] == paths
    assert [g.values["first"] for g in got] == [
        [400.0, 430.0],
        [0.0, 30.0],
        [200.0, 230.0],
        [None, None],
    ]
    assert [g.values["count"] for g in got] == [[30, 30], [30, 30], [30, 30], [0, 0]]
    assert got[3].kind is None


def test_a_backfill_older_than_everything_is_found_as_a_neighbour(store: DuckDBStore) -> None:
    store.write([batch([("a/b/late", 10.0, T0 + 10 * H)])])
    edges = np.array([T0 + 4 * H, T0 + 5 * H], dtype=np.int64)
    (before,) = store.summarize(["a/b/late"], edges, ["twa"], data_end_us=T0 + 20 * H)
    assert before.values["twa"] == [None]  # nothing is known before 10 h
    store.write([batch([("a/b/late", 0.0, T0)])])  # a backfill at 0 h
    (after,) = store.summarize(["a/b/late"], edges, ["twa"], data_end_us=T0 + 20 * H)
    assert after.values["twa"] == pytest.approx([4.5])
