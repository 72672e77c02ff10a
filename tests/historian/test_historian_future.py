"""A point from the future (a sender's clock years ahead) is stored but never pins "latest".

"Latest" is the newest stored value not beyond the historian clock's now plus
`max_future_s`; the high-water mark that lets the writer append without looking at the table
counts only points within that window, so one future point slows nothing down for good.
Every test runs on DuckDB and on PostgreSQL (see conftest.make_store).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from historian_helpers import SECOND, T0, StoreFactory, batch, stored
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.core.platform import Platform, Stage
from kiln.core.values import ValueBatch
from kiln.historian.service import Historian
from kiln.historian.store import DuckDBStore
from kiln.testing import FakeClock

TEMP = "acme/plant1/line1/oven/temp"
OTHER = "acme/plant1/line1/oven/other"

NOW = T0 + 3_600 * SECOND  # the historian clock's now in these tests
SKEW = 600 * SECOND  # the default ingest.max_future_s
Y2099 = 4_070_908_800_000_000  # 2099-01-01T00:00:00Z
Y9999 = 253_370_764_800_000_000  # 9999-01-01T00:00:00Z
Y0001 = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z


def move(clock: FakeClock, us: int) -> None:
    """Move the fake clock forward outside an event loop (nothing sleeps on it here)."""
    asyncio.run(clock.advance(us / 1_000_000))


def latest_of(store: DuckDBStore, path: str = TEMP) -> tuple[int, object] | None:
    got = store.latest([path])
    return (got[0].source_us, got[0].value) if got else None


def test_a_2099_point_is_stored_but_real_time_points_stay_latest(make_store: StoreFactory) -> None:
    store = make_store(clock=FakeClock(NOW))
    store.open()
    try:
        store.write([batch([(TEMP, 99.0, Y2099)])])
        for i in range(3):
            store.write([batch([(TEMP, float(i), NOW - (3 - i) * SECOND)])])
            assert latest_of(store) == (NOW - (3 - i) * SECOND, float(i))
        # It is data: stored, and found by history queries.
        assert stored(store, TEMP)[-1] == (Y2099, 99.0)
    finally:
        store.close()


def test_the_window_is_now_plus_max_future(make_store: StoreFactory) -> None:
    store = make_store(clock=FakeClock(NOW), max_future_s=60)
    store.open()
    try:
        store.write([batch([(TEMP, 1.0, NOW), (TEMP, 2.0, NOW + 60 * SECOND)])])
        assert latest_of(store) == (NOW + 60 * SECOND, 2.0)  # at the edge: inside
        store.write([batch([(TEMP, 3.0, NOW + 60 * SECOND + 1)])])
        assert latest_of(store) == (NOW + 60 * SECOND, 2.0)  # one µs beyond: not latest
    finally:
        store.close()


def test_a_series_with_only_future_points_has_no_latest(make_store: StoreFactory) -> None:
    store = make_store(clock=FakeClock(NOW))
    store.open()
    try:
        store.write([batch([(TEMP, 99.0, Y2099), (OTHER, 1.0, NOW)])])
        assert [v.path for v in store.latest()] == [OTHER]
        store.write([batch([(TEMP, 5.0, NOW)])])
        assert latest_of(store) == (NOW, 5.0)
    finally:
        store.close()


def test_years_0001_and_9999(make_store: StoreFactory) -> None:
    store = make_store(clock=FakeClock(NOW))
    store.open()
    try:
        store.write([batch([(TEMP, 9999.0, Y9999)])])
        store.write([batch([(TEMP, 1.0, Y0001)])])
        assert latest_of(store) == (Y0001, 1.0)  # the only point within the window
        store.write([batch([(TEMP, 2.0, NOW)])])
        store.write([batch([(TEMP, 0.0, Y0001 + 1)])])
        assert latest_of(store) == (NOW, 2.0)  # an ancient point never replaces a newer one
        assert stored(store, TEMP) == [(Y0001, 1.0), (Y0001 + 1, 0.0), (NOW, 2.0), (Y9999, 9999.0)]
    finally:
        store.close()


def test_a_future_point_stored_before_the_rule_does_not_pin_latest_after_restart(
    make_store: StoreFactory,
) -> None:
    # Written while the clock said 2100, so the 2099 point was within the window then: what a
    # database from before this change (which had no window) holds.
    old = make_store(clock=FakeClock(Y2099 + 365 * 86_400 * SECOND))
    old.open()
    old.write([batch([(TEMP, 1.0, NOW - SECOND), (TEMP, 99.0, Y2099), (OTHER, 7.0, Y2099)])])
    assert latest_of(old) == (Y2099, 99.0)
    old.close()

    reopened = make_store(clock=FakeClock(NOW))
    reopened.open()
    try:
        assert latest_of(reopened) == (NOW - SECOND, 1.0)
        assert latest_of(reopened, OTHER) is None
        stats = reopened.write([batch([(TEMP, 2.0, NOW)])])
        assert stats.late_points == 0  # the mark came back without the 2099 point
        assert latest_of(reopened) == (NOW, 2.0)
        again = reopened.write([batch([(TEMP, 100.0, Y2099)])])
        assert again.late_points == 1  # re-sent: replaces the stored row, no copy
        assert stored(reopened, TEMP) == [(NOW - SECOND, 1.0), (NOW, 2.0), (Y2099, 100.0)]
    finally:
        reopened.close()


def test_one_future_point_does_not_send_a_series_down_the_checked_path(
    make_store: StoreFactory,
) -> None:
    store = make_store(clock=FakeClock(NOW))
    store.open()
    try:
        store.write([batch([(TEMP, 0.0, NOW - 10 * SECOND)])])
        store.write([batch([(TEMP, 99.0, Y2099)])])
        late = [store.write([batch([(TEMP, float(i), NOW + i)])]).late_points for i in range(20)]
        assert late == [0] * 20  # appended: nothing stored can be at these times
        # Re-sent points, within the window or beyond it, still take the checked path.
        assert store.write([batch([(TEMP, 5.5, NOW + 5), (TEMP, 98.0, Y2099)])]).late_points == 2
        # After the newest stored point: appended, like a sender whose clock runs steadily ahead.
        assert store.write([batch([(TEMP, 51.0, Y2099 + SECOND)])]).late_points == 0
        # Between stored future points it may be there: checked.
        assert store.write([batch([(TEMP, 50.0, Y2099 + 1)])]).late_points == 1
        points = stored(store, TEMP)
        assert len(points) == len({ts for ts, _ in points}) == 24  # no copies
        assert (NOW + 5, 5.5) in points
        assert points[-3:] == [(Y2099, 98.0), (Y2099 + 1, 50.0), (Y2099 + SECOND, 51.0)]
        assert latest_of(store) == (NOW + 19, 19.0)
    finally:
        store.close()


def test_when_time_reaches_a_future_point_it_becomes_an_ordinary_point(
    make_store: StoreFactory,
) -> None:
    clock = FakeClock(NOW)
    store = make_store(clock=clock)
    store.open()
    try:
        ahead = NOW + 20 * 60 * SECOND  # a sender 20 minutes fast
        store.write([batch([(TEMP, 20.0, ahead), (TEMP, 1.0, NOW)])])
        assert latest_of(store) == (NOW, 1.0)
        move(clock, 15 * 60 * SECOND)  # now + 10 min is past `ahead`
        # The writer folds it in at its next commit (here: of another tag).
        store.write([batch([(OTHER, 1.0, clock.now_us())])])
        assert latest_of(store) == (ahead, 20.0)
        # Older points do not replace it; later ones append and do.
        assert store.write([batch([(TEMP, 2.0, NOW + SECOND)])]).late_points == 1
        assert latest_of(store) == (ahead, 20.0)
        assert store.write([batch([(TEMP, 21.0, ahead + SECOND)])]).late_points == 0
        assert latest_of(store) == (ahead + SECOND, 21.0)
        assert store.write([batch([(TEMP, 20.5, ahead)])]).late_points == 1
        assert stored(store, TEMP) == [
            (NOW, 1.0), (NOW + SECOND, 2.0), (ahead, 20.5), (ahead + SECOND, 21.0)
        ]  # fmt: skip
    finally:
        store.close()


def test_history_span_still_sees_the_future_point(make_store: StoreFactory) -> None:
    store = make_store(clock=FakeClock(NOW))
    store.open()
    try:
        store.write([batch([(TEMP, 1.0, NOW), (TEMP, 3.0, Y2099)])])
        [summary] = store.summarize(
            [TEMP],
            np.asarray([NOW, Y2099 + 1]),
            ["count", "last"],
            data_end_us=Y2099 + 1,
        )
        assert list(summary.values["count"]) == [2]
        assert list(summary.values["last"]) == [3.0]
    finally:
        store.close()


# -- property: any mix of future and present points, with time moving ----------------------

OFFSETS = st.integers(min_value=-3, max_value=12)  # in units of SKEW / 4 around the clock
steps = st.lists(
    st.tuples(
        st.lists(st.tuples(st.sampled_from([TEMP, OTHER]), OFFSETS, st.integers(0, 99)),
                 max_size=6),
        st.integers(min_value=0, max_value=4),  # how far the clock moves after the commit
    ),
    min_size=1,
    max_size=8,
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_latest_is_the_newest_point_within_the_window(
    steps: list[tuple[list[tuple[str, int, int]], int]],
) -> None:
    clock = FakeClock(NOW)
    store = DuckDBStore(None, clock=clock)
    store.open()
    unit = SKEW // 4
    try:
        table: dict[tuple[str, int], float] = {}
        bound = clock.now_us() + SKEW
        for points, later in steps:
            start = clock.now_us()
            store.write([batch([(p, float(v), start + k * unit) for p, k, v in points])])
            for p, k, v in points:
                table[(p, start + k * unit)] = float(v)
            if points:  # the window moves at a commit: an empty write commits nothing
                bound = clock.now_us() + SKEW
            move(clock, later * unit)
        assert sorted(stored(store, TEMP) + stored(store, OTHER)) == sorted(
            (ts, v) for (_, ts), v in table.items()
        )  # no point stored twice, none lost
        for path in (TEMP, OTHER):
            inside = [(ts, v) for (p, ts), v in table.items() if p == path and ts <= bound]
            assert latest_of(store, path) == (max(inside) if inside else None)
    finally:
        store.close()


# -- the service: the platform's clock and `max_future_s` reach the store ---------------------


async def test_the_historian_uses_the_platform_clock_and_its_window(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    platform = Platform(clock=clock, data_dir=tmp_path)
    historian = Historian(None, max_future_s=60)
    platform.add(historian, Stage.STORAGE)

    async def commit(b: ValueBatch) -> None:
        await platform.bus.publish_durable(b, timeout_s=60)

    async with platform:
        await commit(batch([(TEMP, 1.0, NOW), (TEMP, 2.0, NOW + 120 * SECOND)]))
        assert [v.value for v in await historian.latest([TEMP])] == [1.0]
        await clock.advance(61)  # now + 60 s passes the second point
        await commit(batch([(OTHER, 0.0, NOW)]))
        assert [v.value for v in await historian.latest([TEMP])] == [2.0]
