"""The production store on SQLite and PostgreSQL: state and sample chunks (late and out-of-order
merges, carry-in rows, day and hour boundaries, the last row added winning), the reason
dictionary and reason records, products, work orders and their running periods, calendars, the
engine's key-value state, and the migrations.

Every test taking `db_url` runs on both backends: an SQLite file, and PostgreSQL (127.0.0.1:5432,
user postgres, database test, or KILN_TEST_POSTGRES_URL) in a schema of its own. When PostgreSQL
is unreachable its runs are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.pool import NullPool

from kiln.production import migrations
from kiln.production import store as store_module
from kiln.production.chunks import DAY_US, HOUR_US
from kiln.production.intervals import Interval, resolve_overlaps
from kiln.production.orders import (
    OrderAction,
    OrderConflict,
    OrderRefused,
    OrderState,
    Product,
    WorkOrder,
)
from kiln.production.schema import PROD_REASONS, PROD_STATE_CHUNKS, VERSION_TABLE, metadata
from kiln.production.store import (
    NO_REASON,
    SAMPLE_DTYPE,
    STATE_DTYPE,
    DuplicateOrder,
    OrderRun,
    ProductionStore,
    ReasonRecord,
    UnknownOrder,
)
from kiln.production.taxonomy import Category
from kiln.testing import postgres

# 2026-01-01T00:00:00Z in microseconds: a UTC day start, beyond 32 bits.
T0 = 1_767_225_600_000_000
S = 1_000_000
MIN = 60 * S

LINE1 = "acme/p1/line1"
PRESS = f"{LINE1}/press"
FILLER = f"{LINE1}/filler"
LINE10 = "acme/p1/line10"  # a sibling whose path starts with "line1"
LINE_1 = "acme/p1/line_1"  # what "line1" would match were '_' a LIKE wildcard


# -- databases --------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'production.db'}"
    else:
        with postgres.schema_for_test() as url:
            yield url


@pytest.fixture
def store(db_url: str) -> Iterator[ProductionStore]:
    s = ProductionStore(db_url)
    s.open()
    try:
        yield s
    finally:
        s.close()


# -- building blocks --------------------------------------------------------------------------


def states(*rows: tuple[int, int, int, int]) -> np.ndarray:
    return np.array(list(rows), dtype=STATE_DTYPE)


def samples(*rows: tuple[int, float]) -> np.ndarray:
    return np.array(list(rows), dtype=SAMPLE_DTYPE)


def as_tuples(rows: np.ndarray) -> list[tuple[Any, ...]]:
    return [tuple(r.item()) for r in rows]


def stored_chunks(store: ProductionStore, asset: str) -> list[tuple[int, bytes, int]]:
    c = PROD_STATE_CHUNKS.c
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(c.day_us, c.data, c.n).where(c.asset == asset).order_by(c.day_us)
        )
        return [(int(d), bytes(data), int(n)) for d, data, n in rows]


def order(order_id: str, line: str = LINE1, **fields: Any) -> WorkOrder:
    base: dict[str, Any] = {
        "id": order_id,
        "product": "cap",
        "line": line,
        "quantity": 1000,
        "created_us": T0,
        "updated_us": T0,
    }
    return WorkOrder(**(base | fields))


# -- states -----------------------------------------------------------------------------------

# Rows over three days, several sharing a time: (t offset from T0, category) pairs.
_ROW = st.tuples(
    st.sampled_from([0, 1, 5, 59 * MIN, DAY_US - 1, DAY_US, DAY_US + 7, 2 * DAY_US + 3 * S]),
    st.integers(0, 12),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=st.lists(_ROW, min_size=1, max_size=30), data=st.data())
def test_merges_in_any_order_give_the_in_order_chunks(
    store: ProductionStore, rows: list[tuple[int, int]], data: st.DataObject
) -> None:
    # Each row is added once, in a random order split into random batches; the reference adds
    # the same rows in one sorted batch. Where rows share a time the one added last must win,
    # so the reference is built from what was added last per time.
    added = data.draw(st.permutations(list(enumerate(rows))))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(added)), max_size=4)))
    batches = [added[a:b] for a, b in itertools.pairwise([0, *cuts, len(added)])]
    late, reference = f"late/{uuid.uuid4().hex}", f"ref/{uuid.uuid4().hex}"

    last_added: dict[int, tuple[int, int, int, int]] = {}
    earliest: int | None = None
    for batch in batches:
        if not batch:
            continue
        arr = states(*((T0 + t, cat, i, -1) for i, (t, cat) in batch))
        changed = store.add_states({late: arr})
        assert changed == {late: int(arr["t"].min())}
        earliest = changed[late] if earliest is None else min(earliest, changed[late])
        for i, (t, cat) in batch:
            last_added[T0 + t] = (T0 + t, cat, i, -1)
    assert earliest == T0 + min(t for t, _ in rows)

    store.add_states({reference: states(*sorted(last_added.values()))})
    assert stored_chunks(store, late) == stored_chunks(store, reference)
    whole = store.states(late, Interval(T0, T0 + 3 * DAY_US))
    assert as_tuples(whole) == sorted(last_added.values())


def test_last_added_wins_within_and_across_batches(store: ProductionStore) -> None:
    store.add_states({PRESS: states((T0 + 10, 1, 7, 1), (T0 + 10, 2, 8, 2), (T0 + 20, 0, 0, 0))})
    assert as_tuples(store.states(PRESS, Interval(T0, T0 + 30))) == [
        (T0 + 10, 2, 8, 2),
        (T0 + 20, 0, 0, 0),
    ]
    store.add_states({PRESS: states((T0 + 20, 3, 9, 3))})
    assert as_tuples(store.states(PRESS, Interval(T0, T0 + 30))) == [
        (T0 + 10, 2, 8, 2),
        (T0 + 20, 3, 9, 3),
    ]


def test_a_day_boundary_splits_the_chunks(store: ProductionStore) -> None:
    store.add_states(
        {PRESS: states((T0 + DAY_US, 0, 0, 0), (T0 + DAY_US - 1, 1, 0, 0), (T0, 2, 0, 0))}
    )
    chunks = stored_chunks(store, PRESS)
    assert [(day, n) for day, _, n in chunks] == [(T0, 2), (T0 + DAY_US, 1)]
    # A window from the second day's start: the last row of the first day is carried in.
    rows = store.states(PRESS, Interval(T0 + DAY_US, T0 + 2 * DAY_US))
    assert as_tuples(rows) == [(T0 + DAY_US - 1, 1, 0, 0), (T0 + DAY_US, 0, 0, 0)]
    # Before 1970 the day is still the floor.
    store.add_states({FILLER: states((-1, 0, 0, 0))})
    assert [day for day, _, _ in stored_chunks(store, FILLER)] == [-DAY_US]


def test_window_and_carry_in(store: ProductionStore) -> None:
    store.add_states(
        {
            PRESS: states(
                (T0 + 1 * MIN, 0, 0, 0),
                (T0 + 5 * MIN, 3, 4, 3),
                (T0 + 9 * MIN, 0, 0, 0),
                (T0 + 4 * DAY_US, 3, 5, 3),
            )
        }
    )
    # Carried in from earlier in the same chunk; the row at the end is left out (half-open).
    rows = store.states(PRESS, Interval(T0 + 6 * MIN, T0 + 9 * MIN))
    assert as_tuples(rows) == [(T0 + 5 * MIN, 3, 4, 3)]
    # A row exactly at the start is in the window, and the one before it carried in.
    rows = store.states(PRESS, Interval(T0 + 5 * MIN, T0 + 6 * MIN))
    assert as_tuples(rows) == [(T0 + 1 * MIN, 0, 0, 0), (T0 + 5 * MIN, 3, 4, 3)]
    # Days without a chunk in between: the carry-in comes from the latest earlier chunk.
    rows = store.states(PRESS, Interval(T0 + 3 * DAY_US, T0 + 5 * DAY_US))
    assert as_tuples(rows) == [(T0 + 9 * MIN, 0, 0, 0), (T0 + 4 * DAY_US, 3, 5, 3)]
    rows = store.states(PRESS, Interval(T0 + 2 * DAY_US, T0 + 3 * DAY_US))
    assert as_tuples(rows) == [(T0 + 9 * MIN, 0, 0, 0)]
    # Nothing before the first row: no carry-in.
    assert as_tuples(store.states(PRESS, Interval(T0, T0 + MIN))) == []
    empty = store.states("acme/none", Interval(T0, T0 + DAY_US))
    assert empty.dtype == STATE_DTYPE
    assert len(empty) == 0


def test_states_many_and_last_states(store: ProductionStore) -> None:
    store.add_states(
        {
            PRESS: states((T0, 0, 0, 0), (T0 + 2 * DAY_US + 5, 3, 2, 3)),
            FILLER: states((T0 + DAY_US, 1, 0, 1)),
            LINE10: states((T0 + 3 * DAY_US, 1, 0, 1)),
        }
    )
    window = Interval(T0 + DAY_US + 1, T0 + 3 * DAY_US)
    got = store.states_many([PRESS, FILLER, LINE10, "acme/none"], window)
    assert {k: as_tuples(v) for k, v in got.items()} == {
        PRESS: [(T0, 0, 0, 0), (T0 + 2 * DAY_US + 5, 3, 2, 3)],
        FILLER: [(T0 + DAY_US, 1, 0, 1)],
        LINE10: [],
        "acme/none": [],
    }
    last = store.last_states()
    assert set(last) == {PRESS, FILLER, LINE10}
    assert isinstance(last[PRESS], np.record)
    assert (int(last[PRESS].t), int(last[PRESS].reason)) == (T0 + 2 * DAY_US + 5, 2)
    assert int(last[LINE10]["t"]) == T0 + 3 * DAY_US


def test_replace_states_from_a_time_on(store: ProductionStore) -> None:
    before = [(T0 + 1, 0, 0, 0), (T0 + 2 * MIN, 3, 1, 3)]
    store.add_states(
        {
            PRESS: states(*before, (T0 + 5 * MIN, 0, 0, 0), (T0 + DAY_US, 1, 0, 1)),
            FILLER: states((T0 + 5 * MIN, 2, 0, 2)),
        }
    )
    store.replace_states(PRESS, T0 + 5 * MIN, states((T0 + 6 * MIN, 2, 0, 2)))
    everything = Interval(T0, T0 + 3 * DAY_US)
    assert as_tuples(store.states(PRESS, everything)) == [*before, (T0 + 6 * MIN, 2, 0, 2)]
    assert [day for day, _, _ in stored_chunks(store, PRESS)] == [T0]  # the later day is gone
    assert as_tuples(store.states(FILLER, everything)) == [(T0 + 5 * MIN, 2, 0, 2)]
    # From a time with nothing after it: the rows from there on are simply dropped.
    store.replace_states(PRESS, T0 + 2 * MIN, states())
    assert as_tuples(store.states(PRESS, everything)) == before[:1]
    with pytest.raises(ValueError, match="earlier"):
        store.replace_states(PRESS, T0 + MIN, states((T0, 0, 0, 0)))
    assert as_tuples(store.states(PRESS, everything)) == before[:1]


def test_rows_of_another_layout_are_refused(store: ProductionStore) -> None:
    with pytest.raises(TypeError, match=PRESS):
        store.add_states({PRESS: samples((T0, 1.0))})
    with pytest.raises(TypeError, match="good"):
        store.add_samples({(PRESS, "good"): states((T0, 0, 0, 0))})


def test_a_merge_is_one_transaction(
    store: ProductionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add_states({PRESS: states((T0, 0, 0, 0))})
    real = store_module.upsert

    def upsert_then_fail(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise RuntimeError("killed after the write")

    monkeypatch.setattr(store_module, "upsert", upsert_then_fail)
    with pytest.raises(RuntimeError, match="killed"):
        store.add_states({PRESS: states((T0 + 5, 3, 1, 3)), FILLER: states((T0 + DAY_US, 1, 0, 1))})
    monkeypatch.undo()
    assert as_tuples(store.states(PRESS, Interval(T0, T0 + DAY_US))) == [(T0, 0, 0, 0)]
    assert stored_chunks(store, FILLER) == []


def test_a_year_of_states_reads_back_whole(store: ProductionStore) -> None:
    # A state change every 2 minutes for a year on one asset (262,800 rows in 365 chunks).
    t = T0 + np.arange(0, 365 * DAY_US, 2 * MIN, dtype=np.int64)
    rows = np.zeros(len(t), dtype=STATE_DTYPE)
    rows["t"] = t
    rows["category"] = np.arange(len(t)) % 3
    store.add_states({PRESS: rows})
    got = store.states_many([PRESS], Interval(T0, T0 + 365 * DAY_US))[PRESS]
    assert np.array_equal(got, rows)
    assert len(stored_chunks(store, PRESS)) == 365


# -- samples ----------------------------------------------------------------------------------


def test_samples_in_hour_chunks(store: ProductionStore) -> None:
    good, scrap = (PRESS, "good"), (PRESS, "scrap")
    store.add_samples(
        {
            good: samples((T0 + HOUR_US, 12.0), (T0, 10.0), (T0 + HOUR_US - 1, 11.0)),
            scrap: samples((T0 + 3 * HOUR_US, 1.0)),
        }
    )
    changed = store.add_samples({good: samples((T0 + HOUR_US - 1, 11.5))})
    assert changed == {good: T0 + HOUR_US - 1}
    rows = store.samples(PRESS, "good", Interval(T0 + HOUR_US, T0 + 2 * HOUR_US))
    assert as_tuples(rows) == [(T0 + HOUR_US - 1, 11.5), (T0 + HOUR_US, 12.0)]
    got = store.samples_many(
        [good, scrap, (FILLER, "good")], Interval(T0 + 5 * HOUR_US, T0 + 6 * HOUR_US)
    )
    assert {k: as_tuples(v) for k, v in got.items()} == {
        good: [(T0 + HOUR_US, 12.0)],
        scrap: [(T0 + 3 * HOUR_US, 1.0)],
        (FILLER, "good"): [],
    }
    assert got[(FILLER, "good")].dtype == SAMPLE_DTYPE
    assert store.last_samples() == {good: (T0 + HOUR_US, 12.0), scrap: (T0 + 3 * HOUR_US, 1.0)}


# -- reasons ----------------------------------------------------------------------------------


def test_reason_dictionary(store: ProductionStore) -> None:
    first = store.reason_ids(["mechanical/jam", "material/shortage", ""])
    assert first[""] == NO_REASON == 0
    assert 0 not in (first["mechanical/jam"], first["material/shortage"])
    again = store.reason_ids(["material/shortage", "mechanical/jam", "mechanical/jam", "other"])
    assert again["mechanical/jam"] == first["mechanical/jam"]
    assert again["material/shortage"] == first["material/shortage"]
    assert len({*again.values()}) == 3
    assert store.reason_paths() == {0: "", **{i: p for p, i in again.items()}}
    assert store.reason_ids([]) == {}


def test_a_reason_path_added_by_another_command_at_the_same_time_is_no_error(
    store: ProductionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Commands run in threads: two can look up the same new path, both find it missing and
    # both insert it (a live `oee` command failed on the unique constraint under load). Here
    # the other thread's insert is committed after this one's lookup and before its insert.
    with store.engine.begin() as other:
        other.execute(PROD_REASONS.insert(), [{"path": "mechanical/jam"}])
    looked_up = store_module._reason_ids
    calls: list[list[str]] = []

    def before_the_other_commit(conn: Any, paths: Any) -> dict[str, int]:
        calls.append(list(paths))
        return {} if len(calls) == 1 else looked_up(conn, paths)

    monkeypatch.setattr(store_module, "_reason_ids", before_the_other_commit)
    ids = store.reason_ids(["mechanical/jam", "other"])
    assert calls[0] == ["mechanical/jam", "other"]
    assert set(ids) == {"mechanical/jam", "other"} and len(set(ids.values())) == 2
    assert store.reason_paths() == {0: "", **{i: p for p, i in ids.items()}}


def test_reason_records_audit_trail(store: ProductionStore) -> None:
    jam = ReasonRecord(
        PRESS, T0, T0 + 20 * MIN, "mechanical/jam", Category.TECHNICAL, "ann", T0 + 30 * MIN
    )
    (first,) = store.add_reason_records([jam])
    # A split of the same stop, entered later: both parts share a group, new to that entry.
    split = [
        ReasonRecord(
            PRESS,
            T0,
            T0 + 5 * MIN,
            "material/shortage",
            "material",
            "bob",
            T0 + 40 * MIN,
            action="split",
        ),
        ReasonRecord(
            PRESS,
            T0 + 5 * MIN,
            T0 + 20 * MIN,
            "mechanical/jam",
            Category.TECHNICAL,
            "bob",
            T0 + 40 * MIN,
            action="split",
            comment="jam after the material came",
        ),
    ]
    ids = store.add_reason_records(split)
    assert len(ids) == 2
    assert first < ids[0] < ids[1]
    others = [
        ReasonRecord(FILLER, T0, T0 + MIN, "x", Category.OPERATOR, "cy", T0 + 35 * MIN),
        ReasonRecord(LINE10 + "/press", T0, T0 + MIN, "x", Category.OPERATOR, "cy", T0),
        ReasonRecord(LINE_1 + "/press", T0, T0 + MIN, "x", Category.OPERATOR, "cy", T0),
        # Ends where the window below starts: shares no instant with it.
        ReasonRecord(PRESS, T0 - MIN, T0, "x", Category.OPERATOR, "cy", T0),
    ]
    store.add_reason_records(others)

    got = store.reason_records(LINE1, Interval(T0, T0 + HOUR_US))
    assert [(r.asset, r.entered_us, r.action) for r in got] == [
        (PRESS, T0 + 30 * MIN, "assign"),
        (FILLER, T0 + 35 * MIN, "assign"),
        (PRESS, T0 + 40 * MIN, "split"),
        (PRESS, T0 + 40 * MIN, "split"),
    ]
    assert got[0].id == first
    assert got[0].group_id != got[2].group_id == got[3].group_id
    assert got[3].comment == "jam after the material came"
    assert got[2].category is Category.MATERIAL
    assert got[3] == replace(split[1], id=ids[1], group_id=got[3].group_id)

    # A list selects exactly those assets; the window bounds are half-open.
    exact = store.reason_records([PRESS], Interval(T0 + 19 * MIN, T0 + 21 * MIN))
    assert [r.id for r in exact] == [first, ids[1]]
    assert store.reason_records([PRESS], Interval(T0 + 20 * MIN, T0 + HOUR_US)) == []

    # The split, entered last, wins over the first assignment wherever they overlap.
    press = store.reason_records([PRESS], Interval(T0, T0 + HOUR_US))
    pieces = resolve_overlaps([r.stop_record() for r in press])
    assert [(p.interval, p.reason.reason, p.reason.id) for p in pieces] == [
        (Interval(T0, T0 + 5 * MIN), "material/shortage", ids[0]),
        (Interval(T0 + 5 * MIN, T0 + 20 * MIN), "mechanical/jam", ids[1]),
    ]


def test_reason_records_are_checked() -> None:
    with pytest.raises(ValueError, match="covers no time"):
        ReasonRecord(PRESS, T0, T0, "x", Category.OPERATOR, "ann", T0)
    with pytest.raises(ValueError, match="action"):
        ReasonRecord(PRESS, T0, T0 + 1, "x", Category.OPERATOR, "ann", T0, action="delete")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nonsense"):
        ReasonRecord(PRESS, T0, T0 + 1, "x", "nonsense", "ann", T0)  # type: ignore[arg-type]


# -- products ---------------------------------------------------------------------------------


def test_products(store: ProductionStore) -> None:
    cap = Product(
        code="cap-32", name="Cap 32", ideal_cycle_s=2.0, per_asset={PRESS: 1.25, LINE1: 1.5}
    )
    store.put_product(cap, updated_us=T0)
    store.put_product(Product(code="box", name="Box", unit="kg"), updated_us=T0)
    assert store.product("cap-32") == cap
    assert store.product("cap-32") is not None
    assert [p.code for p in store.products()] == ["box", "cap-32"]
    changed = cap.model_copy(update={"ideal_cycle_s": 1.8, "per_asset": {}})
    store.put_product(changed)
    assert store.product("cap-32") == changed
    assert store.delete_product("box") is True
    assert store.delete_product("box") is False
    assert store.product("box") is None


# -- work orders ------------------------------------------------------------------------------


def test_create_and_read_orders(store: ProductionStore) -> None:
    store.create_order(order("WO-1"))
    store.create_order(order("WO-2", line=LINE10, created_us=T0 + 1, due_us=T0 + DAY_US))
    store.create_order(order("WO-3", line=LINE_1, created_us=T0 + 2, state=OrderState.RELEASED))
    store.create_order(order("WO-4", line=PRESS, created_us=T0 + 3, comment="rush"))
    with pytest.raises(DuplicateOrder, match="WO-1 exists already"):
        store.create_order(order("WO-1", line=LINE10))
    with pytest.raises(OrderRefused, match="planned or released"):
        store.create_order(order("WO-5", state=OrderState.RUNNING))
    assert store.order("WO-5") is None
    assert store.order("WO-2") == order("WO-2", line=LINE10, created_us=T0 + 1, due_us=T0 + DAY_US)
    assert [o.id for o in store.orders()] == ["WO-4", "WO-3", "WO-2", "WO-1"]
    assert [o.id for o in store.orders(line_prefix=LINE1)] == ["WO-4", "WO-1"]
    assert [o.id for o in store.orders(states=[OrderState.RELEASED])] == ["WO-3"]
    assert [o.id for o in store.orders(limit=1)] == ["WO-4"]


def test_order_actions_and_their_events(store: ProductionStore) -> None:
    store.create_order(order("WO-1"))
    released, event = store.apply_order_action("WO-1", OrderAction.RELEASE, T0 + 1, "ann")
    assert (released.state, released.version, released.updated_us) == (
        OrderState.RELEASED,
        2,
        T0 + 1,
    )
    assert (event.old_state, event.new_state, event.user) == (
        OrderState.PLANNED,
        OrderState.RELEASED,
        "ann",
    )
    running, started = store.apply_order_action(
        "WO-1", "start", T0 + 2, "bob", "shift A", expected_version=2
    )
    assert running.state is OrderState.RUNNING
    assert store.order("WO-1") == running
    assert started.seq > event.seq
    assert [(e.action, e.user, e.comment) for e in store.order_events("WO-1")] == [
        (OrderAction.RELEASE, "ann", ""),
        (OrderAction.START, "bob", "shift A"),
    ]
    # Refusals leave the order and its events as they were.
    with pytest.raises(OrderConflict, match="version 3, not 2"):
        store.apply_order_action("WO-1", "pause", T0 + 3, "ann", expected_version=2)
    with pytest.raises(OrderRefused, match="cannot release an order that is running"):
        store.apply_order_action("WO-1", "release", T0 + 3, "ann")
    with pytest.raises(OrderRefused, match="last changed"):
        store.apply_order_action("WO-1", "pause", T0 + 1, "ann")
    with pytest.raises(UnknownOrder, match="WO-9"):
        store.apply_order_action("WO-9", "pause", T0 + 3, "ann")
    with pytest.raises(ValueError, match="launch"):
        store.apply_order_action("WO-1", "launch", T0 + 3, "ann")
    assert store.order("WO-1") == running
    assert len(store.order_events("WO-1")) == 2


def test_one_running_order_per_line(store: ProductionStore) -> None:
    for oid, line in (("WO-1", LINE1), ("WO-2", LINE1), ("WO-3", LINE10)):
        store.create_order(order(oid, line=line, state=OrderState.RELEASED))
    store.apply_order_action("WO-1", "start", T0 + 1, "ann")
    with pytest.raises(OrderRefused, match=f"WO-1 is running on {LINE1}"):
        store.apply_order_action("WO-2", "start", T0 + 2, "ann")
    store.apply_order_action("WO-3", "start", T0 + 2, "ann")  # another line
    store.apply_order_action("WO-1", "pause", T0 + 3, "ann")
    store.apply_order_action("WO-2", "start", T0 + 4, "ann")
    with pytest.raises(OrderRefused, match="WO-2 is running"):
        store.apply_order_action("WO-1", "resume", T0 + 5, "ann")
    store.apply_order_action("WO-2", "complete", T0 + 6, "ann")
    resumed, _ = store.apply_order_action("WO-1", "resume", T0 + 7, "ann")
    assert resumed.state is OrderState.RUNNING
    assert [o.id for o in store.orders(states=[OrderState.RUNNING])] in (
        ["WO-3", "WO-1"],
        ["WO-1", "WO-3"],
    )


def test_order_runs_with_pause_and_resume(store: ProductionStore) -> None:
    store.create_order(order("WO-1", state=OrderState.RELEASED))
    store.create_order(order("WO-2", line=LINE10, state=OrderState.RELEASED, product="box"))
    for action, t in (("start", 10), ("pause", 20), ("resume", 30), ("complete", 40)):
        store.apply_order_action("WO-1", action, T0 + t * MIN, "ann")
    store.apply_order_action("WO-2", "start", T0 + 15 * MIN, "ann")  # still running

    window = Interval(T0, T0 + HOUR_US)
    assert store.order_runs([LINE1], window) == [
        OrderRun("WO-1", "cap", LINE1, Interval(T0 + 10 * MIN, T0 + 20 * MIN)),
        OrderRun("WO-1", "cap", LINE1, Interval(T0 + 30 * MIN, T0 + 40 * MIN)),
    ]
    # An asset below the line gets its line's runs; clipped to the window.
    assert store.order_runs(PRESS, Interval(T0 + 15 * MIN, T0 + 35 * MIN)) == [
        OrderRun("WO-1", "cap", LINE1, Interval(T0 + 15 * MIN, T0 + 20 * MIN)),
        OrderRun("WO-1", "cap", LINE1, Interval(T0 + 30 * MIN, T0 + 35 * MIN)),
    ]
    # A prefix above the lines gets both; an open run ends at the window's end.
    assert store.order_runs(["acme/p1"], window) == [
        OrderRun("WO-1", "cap", LINE1, Interval(T0 + 10 * MIN, T0 + 20 * MIN)),
        OrderRun("WO-2", "box", LINE10, Interval(T0 + 15 * MIN, T0 + HOUR_US)),
        OrderRun("WO-1", "cap", LINE1, Interval(T0 + 30 * MIN, T0 + 40 * MIN)),
    ]
    assert store.order_runs([LINE10], Interval(T0, T0 + 15 * MIN)) == []
    assert store.order_runs([LINE1], Interval(T0 + 20 * MIN, T0 + 30 * MIN)) == []
    assert store.order_runs(["acme/p2", LINE_1], window) == []
    # Long after: the completed order is not read at all, the running one runs through.
    later = Interval(T0 + 2 * HOUR_US, T0 + 3 * HOUR_US)
    assert store.order_runs(["acme/p1"], later) == [OrderRun("WO-2", "box", LINE10, later)]


# -- calendars and key-value state ------------------------------------------------------------


def test_calendars_and_kv(store: ProductionStore) -> None:
    definition = {"time_zone": "Europe/Berlin", "shifts": [{"name": "A", "start": "06:00"}]}
    store.put_calendar("acme/p1", definition, updated_us=T0)
    store.put_calendar("acme/p2", {"time_zone": "UTC"})
    assert store.calendars() == {"acme/p1": definition, "acme/p2": {"time_zone": "UTC"}}
    store.put_calendar("acme/p2", {"time_zone": "Asia/Tokyo"})
    assert store.calendars()["acme/p2"] == {"time_zone": "Asia/Tokyo"}
    assert store.delete_calendar("acme/p2") is True
    assert store.delete_calendar("acme/p2") is False
    assert list(store.calendars()) == ["acme/p1"]

    assert store.get_kv("cursor") is None
    assert store.get_kv("cursor", 0) == 0
    store.put_kv("cursor", {"t": T0, "assets": ["a", "b"]})
    store.put_kv("cursor", {"t": T0 + 1, "assets": ["a"]})
    assert store.get_kv("cursor") == {"t": T0 + 1, "assets": ["a"]}


# -- migrations -------------------------------------------------------------------------------


def test_migrated_schema_matches_the_tables(store: ProductionStore) -> None:
    with store.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head_revision() == "0001"
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        assert compare_metadata(context, metadata) == []
        tables = set(inspect(conn).get_table_names())
        assert tables - {VERSION_TABLE} == set(metadata.tables)


def test_downgrade_to_base_removes_the_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'production.db'}"
    store = ProductionStore(url)
    store.open()
    store.close()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            config = migrations.alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) & set(metadata.tables) == set()
            assert migrations.current_revision(conn) is None
    finally:
        engine.dispose()


def test_not_open() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        _ = ProductionStore("sqlite://").engine
