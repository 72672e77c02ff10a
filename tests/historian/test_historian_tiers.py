"""Rollup tiers in the store: kept up to date by appends, late points, backfills and compression,
surviving a restart, used by summaries, outliving the raw points, and with their own retention.

The reference everywhere is a store without rollups holding the same points: a summary must
not depend on whether rollups answered it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from historian_helpers import SECOND, T0, StoreFactory, batch
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.core.quality import Quality
from kiln.historian.maths.compression import CompressionRule, rules_resolver
from kiln.historian.maths.rollup import ANSWERABLE
from kiln.historian.pg_store import PostgresStore
from kiln.historian.service import Historian
from kiln.historian.store import DuckDBStore
from kiln.testing import postgres

MINUTE, HOUR = 60 * SECOND, 3600 * SECOND
TIERS = [MINUTE, HOUR]
NAMES = sorted(ANSWERABLE)
FLOW, COUNT, RUNNING = "acme/p/l/flow", "acme/p/l/count", "acme/p/l/running"
BAD = int(Quality.BAD)


def _stores(make: StoreFactory | None = None, **kw: Any) -> tuple[DuckDBStore, DuckDBStore]:
    """A store with rollups (on the backend of `make`, else DuckDB in memory) and the
    reference: DuckDB in memory without rollups."""
    rolled = (make or (lambda **k: DuckDBStore(None, **k)))(rollups=TIERS, **kw)
    plain = DuckDBStore(None, rollups=[], **kw)
    rolled.open()
    plain.open()
    return rolled, plain


@pytest.fixture
def pair(make_store: StoreFactory) -> Iterator[tuple[DuckDBStore, DuckDBStore]]:
    rolled, plain = _stores(make_store)
    yield rolled, plain
    rolled.close()
    plain.close()


def _write(stores: Sequence[DuckDBStore], points: list[tuple[Any, ...]], **kw: Any) -> None:
    for s in stores:
        s.write([batch(points, **kw)])


def _same_summaries(
    rolled: DuckDBStore, plain: DuckDBStore, edges: np.ndarray, data_end: int, paths: list[str]
) -> None:
    for names in (NAMES, ["twa"], ["count", "max"]):
        got = rolled.summarize(paths, edges, names, data_end_us=data_end)
        want = plain.summarize(paths, edges, names, data_end_us=data_end)
        for g, w in zip(got, want, strict=True):
            assert g.path == w.path
            for name in names:
                for a, b in zip(g.values[name], w.values[name], strict=True):
                    if b is None or isinstance(b, bool):
                        assert a == b, (g.path, name)
                    else:
                        assert a is not None, (g.path, name)
                        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6), (g.path, name, a, b)


def _irregular(n: int, seed: int, start: int = T0) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(seed)
    ts = start + np.cumsum(rng.integers(1, 40 * SECOND, n))
    out: list[tuple[Any, ...]] = []
    for i, t in enumerate(ts.tolist()):
        quality = BAD if rng.random() < 0.05 else int(Quality.GOOD)
        out.append((FLOW, round(float(rng.normal(50, 5)), 3), t, quality))
        if i % 3 == 0:
            out.append((COUNT, int(i // 3), t))
        if i % 7 == 0:
            out.append((RUNNING, bool(rng.random() < 0.7), t))
    return out


def test_rollups_follow_appends_and_answer_like_raw_points(
    pair: tuple[DuckDBStore, DuckDBStore],
) -> None:
    rolled, plain = pair
    points = _irregular(2000, seed=1)
    for chunk in range(0, len(points), 97):  # many small appends, crossing bucket edges
        _write(pair, points[chunk : chunk + 97])
        if chunk % 3 == 0:
            rolled.refresh_rollups()
    end = max(p[2] for p in points)
    paths = [FLOW, COUNT, RUNNING, "acme/p/l/nothing"]
    for width in (MINUTE, 5 * MINUTE, HOUR, 3 * HOUR):
        edges = T0 + np.arange(0, 12 * HOUR + 1, width)
        _same_summaries(rolled, plain, edges, end, paths)  # part pending: raw for that part
    while rolled.refresh_rollups().series:
        pass
    assert rolled.rollups_pending() == 0
    for width in (MINUTE, 5 * MINUTE, HOUR, 3 * HOUR):
        edges = T0 - HOUR + np.arange(0, 13 * HOUR + 1, width)
        _same_summaries(rolled, plain, edges, end, paths)


def test_late_points_and_backfills_recompute_their_buckets(
    pair: tuple[DuckDBStore, DuckDBStore],
) -> None:
    rolled, plain = pair
    points = _irregular(1500, seed=2)
    _write(pair, points)
    rolled.refresh_rollups()
    end = max(p[2] for p in points)
    edges = T0 + np.arange(0, 9 * HOUR + 1, HOUR)
    # A late correction, a re-sent duplicate and a backfill of an older day.
    _write(pair, [(FLOW, 999.0, points[10][2]), (FLOW, -5.0, points[10][2] + 1)])
    _write(pair, [points[500]])
    _write(pair, [(FLOW, float(i), T0 - 86_400 * SECOND + i * MINUTE) for i in range(300)],
           historical=True)  # fmt: skip
    assert rolled.rollups_pending() == 1
    _same_summaries(rolled, plain, edges, end, [FLOW])  # before the refresh: raw from the edit
    rolled.refresh_rollups()
    assert rolled.rollups_pending() == 0
    _same_summaries(rolled, plain, edges, end, [FLOW])
    day_before = T0 - 86_400 * SECOND + np.arange(0, 25) * HOUR
    _same_summaries(rolled, plain, day_before, end, [FLOW])


def test_rollups_outlive_raw_points_and_have_their_own_retention(
    pair: tuple[DuckDBStore, DuckDBStore],
) -> None:
    rolled, plain = pair
    points = _irregular(3000, seed=3)
    _write(pair, points)
    rolled.refresh_rollups()
    end = max(p[2] for p in points)
    edges = T0 + np.arange(0, 12 * HOUR + 1, HOUR)
    want = plain.summarize([FLOW], edges, ["twa", "count", "max"], data_end_us=end)[0]
    # Raw points older than 10 hours go; the rollups stay.
    cutoff = T0 + 10 * HOUR
    deleted, rows = rolled.apply_retention(lambda _: cutoff, lambda _: None)
    assert deleted > 1000 and rows == 0
    assert len(rolled.raw(FLOW, T0, cutoff, limit=10).points) == 0
    got = rolled.summarize([FLOW], edges, ["twa", "count", "max"], data_end_us=end)[0]
    for name in ("twa", "count", "max"):
        assert got.values[name] == pytest.approx(want.values[name], rel=1e-9)
    # Rollup retention: rows of buckets ending before the cutoff go.
    cur = rolled.cursor()
    ((older,),) = cur.execute(
        "SELECT count(*) FROM rollups WHERE epoch_us(bucket) + width_us <= $t",
        {"t": T0 + 2 * HOUR},
    ).fetchall()
    cur.close()
    assert older > 2 * 60  # the flow has a row in every minute
    _, rows = rolled.apply_retention(lambda _: None, lambda _: T0 + 2 * HOUR)
    assert rows == older
    got = rolled.summarize([FLOW], edges, ["count"], data_end_us=end)[0]
    assert got.values["count"][:2] == [0, 0]
    assert got.values["count"][2:10] == want.values["count"][2:10]


def test_pending_work_survives_a_restart_and_new_tiers_are_built(make_store: StoreFactory) -> None:
    points = _irregular(1000, seed=4)
    store = make_store(rollups=[MINUTE])
    store.open()
    store.write([batch(points)])
    store.close()  # crash-like: no refresh ran
    plain = DuckDBStore(None, rollups=[])
    plain.open()
    plain.write([batch(points)])
    end = max(p[2] for p in points)
    store = make_store(rollups=[MINUTE, HOUR])  # and a tier more than before
    store.open()
    try:
        assert store.rollups_pending() == 3
        while store.refresh_rollups(max_series=1).series:
            pass
        cur = store.cursor()
        widths = cur.execute("SELECT DISTINCT width_us FROM rollups ORDER BY 1").fetchall()
        cur.close()
        assert [w for (w,) in widths] == [MINUTE, HOUR]
        edges = T0 + np.arange(0, 7 * HOUR + 1, HOUR)
        _same_summaries(store, plain, edges, end, [FLOW, COUNT, RUNNING])
    finally:
        store.close()
    reopened = make_store()  # None: keeps the tiers the database has
    reopened.open()
    assert reopened.rollups.widths == [MINUTE, HOUR]
    reopened.close()
    dropped = make_store(rollups=[HOUR])
    dropped.open()
    cur = dropped.cursor()
    assert cur.execute("SELECT DISTINCT width_us FROM rollups").fetchall() == [(HOUR,)]
    cur.close()
    dropped.close()
    plain.close()


def test_compressed_tags_keep_their_rollups_true(make_store: StoreFactory) -> None:
    rule = CompressionRule(prefix="acme", method="swinging_door", deviation=0.5, max_time_s=600)
    rolled, plain = _stores(make_store, compression=rules_resolver([rule], {}))
    try:
        points = [(FLOW, round(50 + 3 * math.sin(i / 20), 3), T0 + i * 5 * SECOND)
                  for i in range(4000)]  # fmt: skip
        for chunk in range(0, len(points), 50):
            _write((rolled, plain), points[chunk : chunk + 50])
            if chunk % 500 == 0:
                rolled.refresh_rollups()
        rolled.refresh_rollups()
        assert rolled.thinning.stats()[FLOW].kept < 1000  # compression did drop points
        end = points[-1][2]
        edges = T0 + np.arange(0, 6 * HOUR + 1, 15 * MINUTE)
        _same_summaries(rolled, plain, edges, end, [FLOW])
    finally:
        rolled.close()
        plain.close()


def test_summaries_use_the_rollups(pair: tuple[DuckDBStore, DuckDBStore]) -> None:
    """With the raw points gone, only rows can answer: a summary off the grid finds nothing."""
    rolled, _ = pair
    _write([rolled], _irregular(500, seed=5))
    rolled.refresh_rollups()
    rolled.apply_retention(lambda _: T0 + 86_400 * SECOND, None)
    on_grid = T0 + np.arange(0, 3 * HOUR + 1, HOUR)
    off_grid = on_grid + 7 * SECOND
    got = rolled.summarize([FLOW], on_grid, ["count"], data_end_us=T0 + 3 * HOUR)[0]
    assert sum(got.values["count"]) > 400
    got = rolled.summarize([FLOW], off_grid, ["count"], data_end_us=T0 + 3 * HOUR)[0]
    assert sum(got.values["count"]) == 1  # retention keeps each tag's newest point
    # Aggregates rollups cannot answer come from raw points too.
    got = rolled.summarize([RUNNING], on_grid, ["durations"], data_end_us=T0 + 3 * HOUR)[0]
    assert got.values["durations"][0] == {}


commits = st.lists(
    st.tuples(
        st.lists(st.tuples(st.integers(0, 400), st.integers(-50, 50), st.booleans()),
                 min_size=1, max_size=15),
        st.booleans(),  # refresh after this commit
    ),
    min_size=1,
    max_size=8,
)  # fmt: skip


def _check_history(
    make: StoreFactory | None, commits: list[tuple[list[tuple[int, int, bool]], bool]], width: int
) -> None:
    rolled, plain = _stores(make)
    try:
        for pts, refresh in commits:
            # Timestamps in 30 s steps over 200 minutes: appends, late points and duplicates.
            _write((rolled, plain), [(FLOW, float(v), T0 + t * 30 * SECOND,
                                      int(Quality.GOOD) if good else BAD)
                                     for t, v, good in pts])  # fmt: skip
            if refresh:
                rolled.refresh_rollups()
        edges = T0 - HOUR + np.arange(0, 5 * HOUR + 1, width)
        end = T0 + 401 * 30 * SECOND
        _same_summaries(rolled, plain, edges, end, [FLOW])
    finally:
        rolled.close()
        plain.close()


@settings(max_examples=40, deadline=None)
@given(commits=commits, width=st.sampled_from([MINUTE, 5 * MINUTE, HOUR]))
def test_any_history_of_writes_and_refreshes_gives_raw_answers(
    commits: list[tuple[list[tuple[int, int, bool]], bool]], width: int
) -> None:
    _check_history(None, commits, width)


@settings(max_examples=12, deadline=None)
@given(commits=commits, width=st.sampled_from([MINUTE, 5 * MINUTE, HOUR]))
def test_any_history_gives_raw_answers_on_postgresql(
    commits: list[tuple[list[tuple[int, int, bool]], bool]], width: int
) -> None:
    """The same property on PostgreSQL (fewer examples: each needs a schema of its own)."""
    with postgres.schema_for_test() as url:
        _check_history(lambda **kw: PostgresStore(url, **kw), commits, width)


async def test_the_historian_keeps_rollups_up_to_date_in_the_background(tmp_path: Path) -> None:
    from kiln.core.platform import Platform, Stage
    from kiln.testing.clock import FakeClock

    historian = Historian(tmp_path / "h.duckdb", rollups=TIERS, rollup_s=0.02)
    platform = Platform(clock=FakeClock(T0 + 86_400 * SECOND), data_dir=tmp_path)
    platform.add(historian, Stage.STORAGE)
    points = _irregular(3000, seed=6)
    async with platform:
        for chunk in range(0, len(points), 500):
            b = batch(points[chunk : chunk + 500])
            await platform.bus.publish_durable(b, timeout_s=60)
        store = historian.store
        assert store is not None

        def pending() -> int:
            cur = store.cursor()
            ((n,),) = cur.execute("SELECT count(*) FROM rollup_pending").fetchall()
            cur.close()
            return int(n)

        for _ in range(500):
            if not pending():
                break
            await asyncio.sleep(0.02)
        assert pending() == 0  # the background task did all the work
        await asyncio.sleep(0.1)
        assert historian.stats.rollup_pending_series == 0
        assert historian.stats.rollup_rows_written >= 3 * 60  # three tags, hours of minutes
        edges = T0 + np.arange(0, 24 * HOUR + 1, HOUR)  # the points span about 17 hours
        got = await historian.summarize([FLOW], edges, ["count"])
        assert sum(got[0].values["count"]) == sum(1 for p in points if p[0] == FLOW and p[3] == 0)


def test_the_plant_file_configures_tiers_and_their_retention(tmp_path: Path) -> None:
    from kiln.app.assembly import build_platform
    from kiln.app.settings import Settings
    from kiln.core.config import load_config
    from kiln.core.errors import ConfigError

    plant = tmp_path / "plant.yaml"
    plant.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "historian:\n  rollups: [1min, 1h, 1d]\n  rollup_s: 2\n  retention:\n"
        "    - {prefix: acme, raw_days: 30, rollup_days: 3650}\n"
        "    - {prefix: acme/p/l, raw_days: 90, rollup_days: 60}\n"
    )
    historian = build_platform(load_config(plant, Settings)).service(Historian)
    assert historian.rollups == [MINUTE, HOUR, 24 * HOUR]
    assert historian.rollup_s == 2
    assert historian.rollup_retention is not None
    assert historian.rollup_retention("acme/q/x") == 3650
    assert historian.rollup_retention(FLOW) == 90  # never before the raw points they summarize
    plant.write_text(f"data_dir: {tmp_path / 'data'}\nhistorian:\n  rollups: [5min, 1h, 1mo]\n")
    with pytest.raises(ConfigError, match="fixed width"):
        load_config(plant, Settings)


def test_a_version_1_database_is_migrated_and_its_history_rolled_up(tmp_path: Path) -> None:
    import duckdb

    from kiln.historian import schema

    path = tmp_path / "v1.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, "
                 "applied_ts TIMESTAMPTZ NOT NULL)")  # fmt: skip
    for ddl in schema._DDL_V1:
        conn.execute(ddl)
    conn.execute("INSERT INTO schema_version VALUES (1, make_timestamptz(0))")
    conn.execute(f"INSERT INTO series VALUES (0, '{FLOW}', 'float', make_timestamptz(0))")
    conn.execute(
        "INSERT INTO points SELECT 0, make_timestamptz($t0 + i * 30000000), i, NULL, 0, NULL "
        "FROM range(240) t(i)",
        {"t0": T0},
    )
    conn.close()
    store = DuckDBStore(path, rollups=TIERS)
    store.open()
    try:
        cur = store.cursor()
        assert cur.execute("SELECT max(version) FROM schema_version").fetchall() == [(2,)]
        cur.close()
        assert store.rollups_pending() == 1
        store.refresh_rollups()
        got = store.summarize([FLOW], T0 + np.arange(0, 3) * HOUR, ["count", "avg"],
                              data_end_us=T0 + 2 * HOUR)  # fmt: skip
        assert got[0].values["count"] == [120, 120]
        assert got[0].values["avg"] == [pytest.approx(59.5), pytest.approx(179.5)]
    finally:
        store.close()


def test_a_tier_keeps_no_rows_for_a_tag_it_would_not_summarize(make_store: StoreFactory) -> None:
    """A one-minute tier of a tag sampled every 90 s would hold a row per point: it is dropped
    for that tag (queries use a wider tier or the raw points) and comes back, rebuilt, when
    the tag starts reporting every second."""
    slow = [(FLOW, float(i % 17), T0 + i * 90 * SECOND) for i in range(2500)]
    fast = [(COUNT, i, T0 + i * 5 * SECOND) for i in range(45_000)]
    rolled = make_store(rollups=TIERS)
    rolled.open()
    plain = DuckDBStore(None, rollups=[])
    plain.open()
    try:
        for chunk in range(0, 2500, 500):
            _write(
                (rolled, plain), slow[chunk : chunk + 500] + fast[chunk * 18 : chunk * 18 + 9000]
            )
            while rolled.refresh_rollups().series:
                pass
        flow, count = rolled.series.id_of(FLOW), rolled.series.id_of(COUNT)
        assert (MINUTE, flow) in rolled.rollups.sparse
        assert (HOUR, flow) not in rolled.rollups.sparse
        assert (MINUTE, count) not in rolled.rollups.sparse

        def rows(width: int, sid: int | None) -> int:
            cur = rolled.cursor()
            ((n,),) = cur.execute(
                "SELECT count(*) FROM rollups WHERE width_us = $w AND series_id = $s",
                {"w": width, "s": sid},
            ).fetchall()
            cur.close()
            return int(n)

        assert rows(MINUTE, flow) == 0 and rows(HOUR, flow) > 0 and rows(MINUTE, count) > 0
        end = slow[-1][2]
        for width in (5 * MINUTE, HOUR):
            edges = T0 + np.arange(0, 63 * HOUR + 1, width)
            _same_summaries(rolled, plain, edges, end, [FLOW, COUNT])
        rolled.close()
        rolled.open()  # the classification is stored
        assert (MINUTE, flow) in rolled.rollups.sparse
        # The tag now reports every second: the tier comes back for its whole history.
        start = end + SECOND
        faster = [(FLOW, float(i % 23), start + i * SECOND) for i in range(25_000)]
        for chunk in range(0, len(faster), 5000):
            _write((rolled, plain), faster[chunk : chunk + 5000])
            while rolled.refresh_rollups().series:
                pass
        assert (MINUTE, flow) not in rolled.rollups.sparse
        assert rows(MINUTE, flow) > 2000  # the old, slow part too
        end = faster[-1][2]
        edges = T0 + np.arange(0, 72 * HOUR + 1, 5 * MINUTE)
        _same_summaries(rolled, plain, edges, end, [FLOW, COUNT])
    finally:
        rolled.close()
        plain.close()


async def test_background_rollups_give_way_to_writes(tmp_path: Path) -> None:
    """While points arrive, the background task does one writer turn (500 series) at a time;
    asked directly, the historian does all the work."""
    from kiln.core.platform import Platform, Stage
    from kiln.testing.clock import FakeClock

    historian = Historian(tmp_path / "h.duckdb", rollups=TIERS, rollup_s=3600)
    platform = Platform(clock=FakeClock(T0 + 86_400 * SECOND), data_dir=tmp_path)
    platform.add(historian, Stage.STORAGE)
    async with platform:
        b = batch([(f"acme/p/l/t{i}", float(i), T0 + i) for i in range(1200)])
        # A commit just now: points are arriving.
        await platform.bus.publish_durable(b, timeout_s=60)
        assert await historian.refresh_rollups(yield_to_writes=True) == 500
        assert historian.stats.rollup_pending_series == 700
        assert await historian.refresh_rollups() == 700
        assert historian.stats.rollup_pending_series == 0
