"""Property: whatever the order, duplication and grouping of writes, the table holds exactly
the last value written for each (path, source timestamp)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.core.values import TagValue, ValueBatch
from kiln.historian.store import DuckDBStore

PATHS = ["acme/p/a", "acme/p/b", "acme/p/c"]

points = st.tuples(
    st.sampled_from(PATHS),
    st.integers(min_value=-5, max_value=30),  # a narrow range forces collisions
    st.integers(min_value=-1000, max_value=1000),
)
batches = st.lists(
    st.tuples(st.lists(points, min_size=0, max_size=12), st.booleans()), min_size=1, max_size=8
)
# How the batches are grouped into commits: sizes of consecutive groups.
groupings = st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(batches=batches, grouping=groupings)
def test_table_equals_last_write_wins(
    batches: list[tuple[list[tuple[str, int, int]], bool]], grouping: list[int]
) -> None:
    expected: dict[tuple[str, int], float] = {}
    store = DuckDBStore(None)
    store.open()
    try:
        pending = [
            ValueBatch.of(
                [TagValue(path, float(value), ts) for path, ts, value in pts],
                receive_us=0,
                historical=historical,
            )
            for pts, historical in batches
        ]
        sizes = iter(grouping)
        while pending:
            n = next(sizes, len(pending))
            group, pending = pending[:n], pending[n:]
            store.write(group)
            for b in group:
                for tv in b:
                    expected[(tv.path, tv.source_us)] = float(tv.value)
        cur = store.cursor()
        rows = cur.execute(
            "SELECT s.path, epoch_us(p.ts), p.value FROM points p "
            "JOIN series s ON s.id = p.series_id"
        ).fetchall()
        cur.close()
        assert len(rows) == len(expected)  # no (path, ts) stored twice
        assert {(path, ts): value for path, ts, value in rows} == expected
        for path in PATHS:
            raw = store.raw(path, -100, 100, limit=1000)
            want = sorted((ts, v) for (p, ts), v in expected.items() if p == path)
            assert [(tv.source_us, tv.value) for tv in raw.points] == want
        # The snapshot of every written tag is one of its stored points, and without replayed
        # batches it is the newest one.
        latest = {tv.path: (tv.source_us, tv.value) for tv in store.latest()}
        assert set(latest) == {path for path, _ in expected}
        for path, (ts, value) in latest.items():
            assert expected[(path, ts)] == value
            if not any(historical for _, historical in batches):
                assert ts == max(t for p, t in expected if p == path)
    finally:
        store.close()
