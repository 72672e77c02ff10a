"""DuckDBStore: writes, idempotency, late data, the snapshot, reopen, and the queries."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from historian_helpers import SECOND, T0, StoreFactory, batch, stored

from kiln.core.errors import InvalidPathError
from kiln.core.quality import Quality
from kiln.core.values import TagValue, ValueBatch
from kiln.historian.store import DuckDBStore, StoreClosedError

TEMP = "acme/plant1/line1/oven/temp"
STATE = "acme/plant1/line1/oven/state"
RUN = "acme/plant1/line1/oven/running"
COUNT = "acme/plant1/line1/oven/count"


def row_count(store: DuckDBStore) -> int:
    cur = store.cursor()
    try:
        return int(cur.execute("SELECT count(*) FROM points").fetchall()[0][0])
    finally:
        cur.close()


def test_write_and_read_back(store: DuckDBStore) -> None:
    stats = store.write(
        [
            batch(
                [(TEMP, 20.5, T0), (TEMP, 21.0, T0 + SECOND), (COUNT, 3, T0)],
                receive_us=T0 + 5,
            )
        ]
    )
    assert (stats.points, stats.new_series, stats.late_points, stats.duplicate_points) == (
        3,
        2,
        0,
        0,
    )
    result = store.raw(TEMP, T0, T0 + 10 * SECOND, limit=10)
    assert result.points == [
        TagValue(TEMP, 20.5, T0, Quality.GOOD, T0 + 5),
        TagValue(TEMP, 21.0, T0 + SECOND, Quality.GOOD, T0 + 5),
    ]
    assert result.truncated is False
    assert stored(store, COUNT) == [(T0, 3)]


def test_numpy_columns_are_accepted(store: DuckDBStore) -> None:
    n = 1000
    values = ValueBatch(
        paths=[f"acme/p/t{i % 10}" for i in range(n)],
        values=np.arange(n, dtype=np.float64),
        source_us=T0 + np.arange(n, dtype=np.int64),
        qualities=np.zeros(n, dtype=np.uint32),
        receive_us=T0,
    )
    assert store.write([values]).points == n
    assert store.series_kind("acme/p/t3") == "float"
    assert stored(store, "acme/p/t3")[:2] == [(T0 + 3, 3.0), (T0 + 13, 13.0)]


def test_values_come_back_as_the_series_kind(store: DuckDBStore) -> None:
    store.write([batch([(TEMP, 1.0, T0), (STATE, "running", T0), (RUN, True, T0), (COUNT, 7, T0)])])
    store.write([batch([(RUN, False, T0 + 1), (COUNT, 8, T0 + 1), (STATE, "idle", T0 + 1)])])
    assert [store.series_kind(p) for p in (TEMP, STATE, RUN, COUNT)] == [
        "float",
        "string",
        "bool",
        "int",
    ]
    assert store.series_kind("acme/unknown/tag") is None
    assert stored(store, STATE) == [(T0, "running"), (T0 + 1, "idle")]
    run = stored(store, RUN)
    assert run == [(T0, True), (T0 + 1, False)]
    assert all(type(v) is bool for _, v in run)
    count = stored(store, COUNT)
    assert count == [(T0, 7), (T0 + 1, 8)]
    assert all(type(v) is int for _, v in count)
    latest = {v.path: v.value for v in store.latest()}
    assert latest == {TEMP: 1.0, STATE: "idle", RUN: False, COUNT: 8}


def test_a_value_of_another_type_than_its_series_is_kept_as_sent(store: DuckDBStore) -> None:
    store.write([batch([(TEMP, 1.0, T0)])])
    store.write([batch([(TEMP, "sensor fault", T0 + 1), (TEMP, 2.5, T0 + 2)])])
    assert stored(store, TEMP) == [(T0, 1.0), (T0 + 1, "sensor fault"), (T0 + 2, 2.5)]


def test_reingesting_the_same_batch_is_idempotent(store: DuckDBStore) -> None:
    points = [(TEMP, float(i), T0 + i * SECOND) for i in range(50)]
    store.write([batch(points)])
    again = store.write([batch(points)])
    assert again.late_points == 50
    assert row_count(store) == 50
    assert stored(store, TEMP) == [(t, v) for _, v, t in points]


def test_a_resent_value_replaces_the_stored_one(store: DuckDBStore) -> None:
    store.write([batch([(TEMP, 1.0, T0), (TEMP, 2.0, T0 + SECOND)])])
    store.write([batch([(TEMP, 9.0, T0)])])
    assert stored(store, TEMP) == [(T0, 9.0), (T0 + SECOND, 2.0)]
    # The snapshot (T0 + 1 s) is newer than the corrected point, so it stays.
    assert [v.value for v in store.latest([TEMP])] == [2.0]


def test_late_and_out_of_order_points_are_stored_in_place(store: DuckDBStore) -> None:
    store.write([batch([(TEMP, 10.0, T0 + 10 * SECOND), (TEMP, 30.0, T0 + 30 * SECOND)])])
    late = store.write(
        [batch([(TEMP, 20.0, T0 + 20 * SECOND), (TEMP, 0.0, T0), (TEMP, 40.0, T0 + 40 * SECOND)])]
    )
    assert late.late_points == 2  # 40 s is above the high-water mark
    assert stored(store, TEMP) == [
        (T0, 0.0),
        (T0 + 10 * SECOND, 10.0),
        (T0 + 20 * SECOND, 20.0),
        (T0 + 30 * SECOND, 30.0),
        (T0 + 40 * SECOND, 40.0),
    ]
    assert store.latest([TEMP])[0].source_us == T0 + 40 * SECOND


def test_duplicates_within_a_batch_keep_the_last(store: DuckDBStore) -> None:
    stats = store.write(
        [
            batch([(TEMP, 1.0, T0), (COUNT, 1, T0), (TEMP, 2.0, T0)]),
            batch([(TEMP, 3.0, T0), (TEMP, 4.0, T0 + 1)]),
        ]
    )
    assert stats.duplicate_points == 2
    assert stats.points == 3
    assert stored(store, TEMP) == [(T0, 3.0), (T0 + 1, 4.0)]
    assert row_count(store) == 3


def test_historical_batch_does_not_move_latest(store: DuckDBStore) -> None:
    store.write([batch([(TEMP, 20.0, T0)], receive_us=T0 + 1)])
    store.write([batch([(TEMP, 99.0, T0 + 60 * SECOND)], historical=True)])
    assert store.latest([TEMP]) == [TagValue(TEMP, 20.0, T0, Quality.GOOD, T0 + 1)]
    assert stored(store, TEMP) == [(T0, 20.0), (T0 + 60 * SECOND, 99.0)]
    # A live value newer than the replayed one moves it again.
    store.write([batch([(TEMP, 21.0, T0 + 61 * SECOND)])])
    assert store.latest([TEMP])[0].value == 21.0


def test_historical_batch_fills_a_series_without_a_snapshot(store: DuckDBStore) -> None:
    store.write([batch([(TEMP, 5.0, T0), (TEMP, 6.0, T0 + 1)], historical=True)])
    assert [(v.source_us, v.value) for v in store.latest([TEMP])] == [(T0 + 1, 6.0)]


def test_live_and_historical_in_one_group(store: DuckDBStore) -> None:
    store.write(
        [
            batch([(TEMP, 1.0, T0)]),
            batch([(TEMP, 2.0, T0 + 5), (COUNT, 4, T0 + 5)], historical=True),
        ]
    )
    latest = {v.path: (v.source_us, v.value) for v in store.latest()}
    assert latest == {TEMP: (T0, 1.0), COUNT: (T0 + 5, 4)}


def test_latest_by_paths_prefix_and_limit(store: DuckDBStore) -> None:
    paths = [f"acme/plant1/line{i % 3}/m{i}/speed" for i in range(9)]
    store.write([batch([(p, float(i), T0 + i) for i, p in enumerate(paths)])])
    store.write([batch([("acme/plant10/line0/m0/speed", 0.0, T0)])])
    picked = store.latest([paths[4], "acme/nope/tag", paths[1]])
    assert [v.path for v in picked] == [paths[4], paths[1]]
    under = store.latest(prefix="acme/plant1")
    assert [v.path for v in under] == sorted(paths)  # not acme/plant10
    assert [v.path for v in store.latest(prefix="acme/plant1/line2/")] == sorted(paths[2::3])
    assert len(store.latest(prefix="acme", limit=4)) == 4
    assert len(store.latest()) == 10


def test_raw_limit_and_truncated_flag(store: DuckDBStore) -> None:
    store.write([batch([(TEMP, float(i), T0 + i * SECOND) for i in range(10)])])
    cut = store.raw(TEMP, T0, T0 + 10 * SECOND, limit=4)
    assert [p.value for p in cut.points] == [0.0, 1.0, 2.0, 3.0]
    assert cut.truncated is True
    whole = store.raw(TEMP, T0, T0 + 10 * SECOND, limit=10)
    assert len(whole.points) == 10
    assert whole.truncated is False
    # The end is exclusive.
    assert [p.value for p in store.raw(TEMP, T0 + 2 * SECOND, T0 + 4 * SECOND, limit=9).points] == [
        2.0,
        3.0,
    ]
    assert store.raw("acme/nope/tag", T0, T0 + SECOND, limit=5).points == []
    with pytest.raises(ValueError, match="limit"):
        store.raw(TEMP, T0, T0 + SECOND, limit=0)


def test_aggregates_of_a_hand_series(store: DuckDBStore) -> None:
    minute = 60 * SECOND
    bad = Quality.BAD_SENSOR_FAILURE
    uncertain = Quality.UNCERTAIN
    store.write(
        [
            batch(
                [
                    # bucket [0, 1 min)
                    (TEMP, 4.0, T0 + 10 * SECOND),
                    (TEMP, 1.0, T0 + 20 * SECOND),
                    (TEMP, 100.0, T0 + 25 * SECOND, bad),
                    (TEMP, 7.0, T0 + 30 * SECOND),
                    # bucket [1 min, 2 min): only a Bad and an Uncertain point -> left out
                    (TEMP, -5.0, T0 + minute + SECOND, bad),
                    (TEMP, -6.0, T0 + minute + 2 * SECOND, uncertain),
                    # bucket [2 min, 3 min)
                    (TEMP, 2.5, T0 + 2 * minute + 59 * SECOND),
                    (TEMP, 0.5, T0 + 2 * minute),
                    # outside the range
                    (TEMP, 1000.0, T0 + 3 * minute),
                ]
            )
        ]
    )
    buckets = store.aggregate(
        TEMP, T0, T0 + 3 * minute, minute, ["avg", "min", "max", "count", "first", "last"]
    )
    assert [(b.start_us, b.values) for b in buckets] == [
        (T0, {"avg": 4.0, "min": 1.0, "max": 7.0, "count": 3, "first": 4.0, "last": 7.0}),
        (
            T0 + 2 * minute,
            {"avg": 1.5, "min": 0.5, "max": 2.5, "count": 2, "first": 0.5, "last": 2.5},
        ),
    ]


def test_buckets_align_to_multiples_of_the_interval_since_epoch(store: DuckDBStore) -> None:
    hour = 3600 * SECOND
    store.write([batch([(COUNT, 1, T0 + 90 * SECOND), (COUNT, 5, T0 + hour + 1)])])
    buckets = store.aggregate(COUNT, T0 + 61 * SECOND, T0 + 2 * hour, hour, ["max", "count"])
    assert [(b.start_us, b.values) for b in buckets] == [
        (T0, {"max": 1, "count": 1}),
        (T0 + hour, {"max": 5, "count": 1}),
    ]
    assert type(buckets[0].values["max"]) is int
    # Before the epoch, buckets still start at a multiple of the interval (floor, not trunc).
    store.write([batch([(TEMP, 3.0, -1)])])
    assert [b.start_us for b in store.aggregate(TEMP, -10, 10, 4, ["count"])] == [-4]


def test_aggregates_of_bool_and_string_tags(store: DuckDBStore) -> None:
    store.write(
        [
            batch(
                [
                    (RUN, True, T0),
                    (RUN, False, T0 + 1),
                    (RUN, True, T0 + 2),
                    (RUN, True, T0 + 3),
                    (STATE, "idle", T0),
                    (STATE, "running", T0 + 2),
                ]
            )
        ]
    )
    [run] = store.aggregate(RUN, T0, T0 + 10, 10, ["avg", "first", "last", "min"])
    assert run.values == {"avg": 0.75, "first": True, "last": True, "min": False}
    [state] = store.aggregate(STATE, T0, T0 + 10, 10, ["count", "first", "last", "max", "range"])
    assert state.values == {
        "count": 2,
        "first": "idle",
        "last": "running",
        "max": None,
        "range": None,
    }


def test_aggregate_buckets_have_every_event_aggregate(store: DuckDBStore) -> None:
    store.write([batch([(TEMP, 1.0, T0), (TEMP, 2.0, T0 + 1), (TEMP, 3.0, T0 + 2)])])
    [bucket] = store.aggregate(TEMP, T0, T0 + 10, 10, ["range", "stddev", "avg"])
    assert bucket.values == {"range": 2.0, "stddev": 1.0, "avg": 2.0}


def test_aggregate_arguments_are_checked(store: DuckDBStore) -> None:
    store.write([batch([(TEMP, 1.0, T0)])])
    # The event-weighted aggregates (`aggregates.EVENT`): each bucket's stored Good points.
    with pytest.raises(ValueError, match=r"'median'.*avg, min, max, first, last, count, range"):
        store.aggregate(TEMP, T0, T0 + SECOND, SECOND, ["avg", "median"])
    with pytest.raises(ValueError, match=r"'twa': choose from"):
        store.aggregate(TEMP, T0, T0 + SECOND, SECOND, ["twa"])
    with pytest.raises(ValueError, match="interval"):
        store.aggregate(TEMP, T0, T0 + SECOND, 0, ["avg"])
    with pytest.raises(ValueError, match="before it starts"):
        store.aggregate(TEMP, T0 + SECOND, T0, SECOND, ["avg"])
    assert store.aggregate("acme/nope/tag", T0, T0 + SECOND, SECOND, ["avg"]) == []


def test_a_bad_batch_is_rejected_alone(store: DuckDBStore) -> None:
    good = batch([(TEMP, 1.0, T0)])
    bad_path = batch([("not a path", 1.0, T0)])
    bad_value = ValueBatch(
        paths=[COUNT, COUNT],
        values=[1, None],
        source_us=[T0, T0 + 1],
        qualities=[0, 0],
        receive_us=T0,
    )
    bad_quality = batch([(RUN, True, T0, -1)])
    bad_time = batch([(STATE, "on", 2**63 - 1)])
    stats = store.write([bad_path, good, bad_value, bad_quality, bad_time])
    assert set(stats.rejected) == {0, 2, 3, 4}
    assert isinstance(stats.rejected[0], InvalidPathError)
    assert "None" in str(stats.rejected[2])
    assert "quality" in str(stats.rejected[3])
    assert "microseconds" in str(stats.rejected[4])
    assert stored(store, TEMP) == [(T0, 1.0)]
    # The rejected batches registered no series.
    assert [store.series_kind(p) for p in (COUNT, RUN, STATE)] == [None, None, None]
    assert store.series.size == 1
    cur = store.cursor()
    assert cur.execute("SELECT path FROM series").fetchall() == [(TEMP,)]
    cur.close()


def test_a_failed_transaction_forgets_its_new_series(store: DuckDBStore) -> None:
    store.write([batch([(TEMP, 1.0, T0)])])
    cur = store.cursor()
    cur.execute("DROP TABLE points")  # every later insert fails
    cur.close()
    with pytest.raises(Exception, match="points"):
        store.write([batch([(COUNT, 1, T0)])])
    assert store.series_kind(COUNT) is None
    assert store.series.size == 1


def test_writing_to_a_closed_store_raises(store: DuckDBStore) -> None:
    store.close()
    with pytest.raises(StoreClosedError):
        store.write([batch([(TEMP, 1.0, T0)])])


def test_reopen_keeps_data_high_water_marks_and_snapshot(make_store: StoreFactory) -> None:
    first = make_store()
    first.open()
    first.write([batch([(TEMP, 1.0, T0), (TEMP, 2.0, T0 + 10), (STATE, "idle", T0)])])
    first.write([batch([(RUN, True, T0 + 3)], receive_us=T0 + 4)])
    first.close()

    second = make_store()
    second.open()
    try:
        assert {v.path: (v.value, v.source_us, v.receive_us) for v in second.latest()} == {
            TEMP: (2.0, T0 + 10, T0),
            STATE: ("idle", T0, T0),
            RUN: (True, T0 + 3, T0 + 4),
        }
        assert second.series_kind(RUN) == "bool"
        # The high-water mark came back: re-sending old points is the late path, not a copy.
        stats = second.write([batch([(TEMP, 5.0, T0 + 10), (TEMP, 3.0, T0 + 11)])])
        assert stats.late_points == 1
        assert stored(second, TEMP) == [(T0, 1.0), (T0 + 10, 5.0), (T0 + 11, 3.0)]
        # New series continue the dense ids.
        second.write([batch([(COUNT, 1, T0)])])
        assert second.series.id_of(COUNT) == 3
    finally:
        second.close()


_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from kiln.core.values import TagValue, ValueBatch
from kiln.historian.store import DuckDBStore

store = DuckDBStore(Path(sys.argv[1]))
store.open()
for i in range(3):
    values = [TagValue("acme/p/oven/temp", float(j), 1_000 * i + j) for j in range(1_000)]
    store.write([ValueBatch.of(values, receive_us=0)])
    print(i, flush=True)  # acknowledged: write() returned after COMMIT
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_committed_points_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.split() == ["0", "1", "2"]
    assert path.with_name(path.name + ".wal").exists()  # nothing was checkpointed
    reopened = DuckDBStore(path)
    reopened.open()
    try:
        assert len(stored(reopened, "acme/p/oven/temp")) == 3_000
        assert reopened.latest(["acme/p/oven/temp"])[0].source_us == 2_999
    finally:
        reopened.close()
