"""The alarm store: records, journal and API definitions on SQLite and PostgreSQL, atomic and
durable commits, journal queries, and its own migrations.

Every test taking `db_url` runs on both backends: an SQLite file, and PostgreSQL (127.0.0.1:5432,
user postgres, database test, or KILN_TEST_POSTGRES_URL) in a schema of its own. When PostgreSQL
is unreachable its runs are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from kiln.alarms import migrations
from kiln.alarms.definitions import (
    DiscreteAlarm,
    ExpressionAlarm,
    LimitAlarm,
    LimitDef,
    Priority,
    StaleAlarm,
)
from kiln.alarms.records import AlarmRecord, JournalEntry, asset_of
from kiln.alarms.schema import ALARM_DEFINITIONS, VERSION_TABLE, metadata
from kiln.alarms.states import AlarmState, Shelving, State
from kiln.alarms.store import AlarmStore, JournalQuery, StoredDefinition, StoredDefinitionError
from kiln.model.store import ModelStore
from kiln.testing import postgres

# 2026-01-01T00:00:00Z in microseconds: beyond 32 bits, so a column narrower than BIGINT fails.
T0 = 1_767_225_600_000_000
S = 1_000_000

L1 = "acme/p1/line1"
L1_TEMP = f"{L1}/filler/temp_alarm:hi"
L1_LEVEL = f"{L1}/mixer/level_alarm:lo"
L1_OWN = f"{L1}/running"  # an alarm on the line itself
L10 = "acme/p1/line10/filler/temp_alarm:hi"  # sibling whose path starts with "line1"
LX1 = "acme/p1/lineX1/pump/flow_alarm:hi"  # what "line_1" would match were '_' a wildcard
L_1 = "acme/p1/line_1/pump/flow_alarm:hi"
UPPER = "acme/p1/Line1/filler/temp_alarm:hi"  # what "line1" would match ignoring case


# -- databases --------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alarms.db'}"
    else:
        with postgres.schema_for_test() as url:
            yield url


@pytest.fixture
def store(db_url: str) -> Iterator[AlarmStore]:
    s = AlarmStore(db_url)
    s.open()
    try:
        yield s
    finally:
        s.close()


# -- building blocks --------------------------------------------------------------------------


def record(alarm_id: str, **fields: Any) -> AlarmRecord:
    name = alarm_id.rsplit("/", 1)[1].split(":")[0]
    condition = alarm_id.split(":")[1] if ":" in alarm_id else "discrete"
    base: dict[str, Any] = {
        "id": alarm_id,
        "asset": asset_of(alarm_id),
        "name": name,
        "condition": condition,
        "priority": Priority.HIGH,
    }
    return AlarmRecord(**(base | fields))


def entry(
    alarm_id: str,
    source_us: int,
    event: str = "becomes_abnormal",
    new_state: State = State.UNACKNOWLEDGED,
    **fields: Any,
) -> JournalEntry:
    base: dict[str, Any] = {
        "source_us": source_us,
        "recorded_us": source_us + 5,
        "alarm_id": alarm_id,
        "asset": asset_of(alarm_id),
        "priority": Priority.HIGH,
        "occurrence": 1,
        "event": event,
        "old_state": State.NORMAL,
        "new_state": new_state,
        "announced": True,
    }
    return JournalEntry(**(base | fields))


def full_record() -> AlarmRecord:
    """A record with no field left at its default."""
    return record(
        L1_TEMP,
        priority=Priority.CRITICAL,
        tag=f"{L1}/filler/temp",
        state=AlarmState(
            process=State.ACKNOWLEDGED,
            shelving=Shelving.TIMED,
            unshelve_at_us=T0 + 3600 * S,
            suppressed=True,
            out_of_service=True,
            occurrence=7,
        ),
        value=98.25,
        limit=90.0,
        message="line1 filler temp: 98.25 above 90",
        active_since_us=T0 - 60 * S,
        changed_us=T0,
        acked_by="ann",
        acked_us=T0 + S,
        shelved_by="bob",
        out_of_service_reason="sensor replaced",
        note="checked on site",
    )


# -- records ----------------------------------------------------------------------------------


def test_records_round_trip_every_field(store: AlarmStore) -> None:
    number = full_record()
    state_name = record(f"{L1}/mixer/mode_alarm", condition="discrete", value="fault")
    numeric_text = record(f"{L1}/mixer/code_alarm", condition="discrete", value="3.5")
    stale = record(f"{L1}/mixer/level_stale", condition="stale")  # no value, tag or limit
    store.commit([number, state_name, numeric_text, stale], [])

    loaded = store.load()

    assert loaded == {r.id: r for r in (number, state_name, numeric_text, stale)}
    # Equality would let 98.25 and "98.25" pass for one another: the kinds must survive.
    assert isinstance(loaded[number.id].value, float)
    assert loaded[state_name.id].value == "fault"
    assert loaded[numeric_text.id].value == "3.5"
    assert loaded[stale.id].value is None
    assert loaded[stale.id].tag is None
    assert loaded[stale.id].limit is None


def test_commit_replaces_a_record_and_delete_records_keeps_the_journal(store: AlarmStore) -> None:
    first = record(L1_TEMP, value=91.0)
    other = record(L1_LEVEL, value=2.0)
    store.commit([first, other], [entry(L1_TEMP, T0), entry(L1_LEVEL, T0)])
    acked = replace(
        first,
        state=AlarmState(process=State.ACKNOWLEDGED, occurrence=1),
        acked_by="ann",
        acked_us=T0 + S,
    )
    store.commit([acked], [entry(L1_TEMP, T0 + S, "acknowledge", State.ACKNOWLEDGED)])

    assert store.load() == {L1_TEMP: acked, L1_LEVEL: other}

    store.delete_records([L1_TEMP, "acme/p1/unknown/alarm"])
    assert store.load() == {L1_LEVEL: other}
    assert [e.alarm_id for e in store.journal(JournalQuery(alarm_id=L1_TEMP))] == [L1_TEMP] * 2


def test_commit_numbers_entries_in_order_and_journals_every_field(store: AlarmStore) -> None:
    given = [
        entry(L1_TEMP, T0, value=98.5, message="hot"),
        entry(
            L1_TEMP,
            T0 + S,
            "acknowledge",
            State.ACKNOWLEDGED,
            old_state=State.UNACKNOWLEDGED,
            priority=Priority.CRITICAL,
            occurrence=4,
            announced=False,
            value="fault",
            user="ann",
            comment="on it",
            message="line1 filler",
            seq=999,  # the store's numbering wins
        ),
        entry(L1_LEVEL, T0 + 2 * S, value=None),
    ]
    committed = store.commit([record(L1_TEMP), record(L1_LEVEL)], given)

    seqs = [e.seq for e in committed]
    assert seqs == sorted(set(seqs)) and seqs[0] >= 1
    assert committed == [replace(g, seq=s) for g, s in zip(given, seqs, strict=True)]
    assert store.journal(JournalQuery(ascending=True)) == committed
    stored = {e.seq: e.value for e in store.journal(JournalQuery())}
    assert isinstance(stored[seqs[0]], float)
    assert stored[seqs[1]] == "fault"
    assert stored[seqs[2]] is None


def test_a_failing_commit_leaves_nothing_written(store: AlarmStore) -> None:
    before = record(L1_TEMP, value=91.0)
    committed = store.commit([before], [entry(L1_TEMP, T0)])
    changed = replace(before, value=95.0, acked_by="ann")
    new = record(L1_LEVEL)
    # The second entry breaks NOT NULL after the records were upserted and one entry appended.
    broken = replace(entry(L1_LEVEL, T0 + 2 * S), alarm_id=None)

    with pytest.raises(IntegrityError):
        store.commit([changed, new], [entry(L1_TEMP, T0 + S), broken])

    assert store.load() == {L1_TEMP: before}
    assert store.journal(JournalQuery()) == committed
    # And the store is still usable: the next commit goes through.
    later = store.commit([new], [entry(L1_LEVEL, T0 + 3 * S)])
    assert later[0].seq > committed[0].seq
    assert set(store.load()) == {L1_TEMP, L1_LEVEL}


def test_a_commit_naming_one_alarm_twice_is_refused_before_writing(store: AlarmStore) -> None:
    with pytest.raises(ValueError, match=f"more than one record of alarm {L1_TEMP}"):
        store.commit([record(L1_TEMP), record(L1_TEMP, value=2.0)], [entry(L1_TEMP, T0)])
    assert store.load() == {}
    assert store.journal(JournalQuery()) == []


def test_using_the_store_before_open_says_so(tmp_path: Path) -> None:
    unopened = AlarmStore(f"sqlite:///{tmp_path / 'alarms.db'}")
    with pytest.raises(RuntimeError, match=r"call AlarmStore\.open\(\) first"):
        unopened.load()
    unopened.close()  # closing a store never opened is harmless


# -- journal queries --------------------------------------------------------------------------

# (alarm id, seconds after T0, event, new state, priority): one alarm on the line itself, alarms
# below it, and the traps a prefix match falls into (line10, lineX1 for line_1, Line1).
SEED = [
    (L1_TEMP, 0, "becomes_abnormal", State.UNACKNOWLEDGED, Priority.HIGH),
    (L1_LEVEL, 10, "becomes_abnormal", State.UNACKNOWLEDGED, Priority.LOW),
    (L10, 20, "becomes_abnormal", State.UNACKNOWLEDGED, Priority.HIGH),
    (L1_OWN, 30, "becomes_abnormal", State.UNACKNOWLEDGED, Priority.CRITICAL),
    (L1_TEMP, 40, "acknowledge", State.ACKNOWLEDGED, Priority.HIGH),
    (LX1, 50, "becomes_abnormal", State.UNACKNOWLEDGED, Priority.MEDIUM),
    (L_1, 60, "becomes_abnormal", State.UNACKNOWLEDGED, Priority.MEDIUM),
    (UPPER, 70, "becomes_abnormal", State.UNACKNOWLEDGED, Priority.MEDIUM),
    (L1_TEMP, 80, "returns_to_normal", State.NORMAL, Priority.HIGH),
    (L1_LEVEL, 90, "realarm", State.UNACKNOWLEDGED, Priority.LOW),
    (L1_LEVEL, 100, "timed_shelve", State.SHELVED, Priority.LOW),
]


@pytest.fixture
def seeded(store: AlarmStore) -> list[JournalEntry]:
    """The SEED journal, committed in two transactions; the entries as stored, oldest first."""
    entries = [entry(a, T0 + s * S, ev, st, priority=p) for a, s, ev, st, p in SEED]
    ids = {e.alarm_id for e in entries}
    first = store.commit([record(a) for a in sorted(ids)], entries[:5])
    return first + store.commit([], entries[5:])


def ids_of(entries: list[JournalEntry]) -> list[str]:
    return [e.alarm_id for e in entries]


def select_seeded(
    seeded: list[JournalEntry], keep: Callable[[JournalEntry], bool]
) -> list[JournalEntry]:
    """The expected answer of a query: `keep`'s entries, newest first."""
    return [e for e in reversed(seeded) if keep(e)]


def test_journal_is_newest_first_by_seq_unless_ascending(
    store: AlarmStore, seeded: list[JournalEntry]
) -> None:
    assert store.journal(JournalQuery()) == list(reversed(seeded))
    assert store.journal(JournalQuery(ascending=True)) == seeded


def test_journal_time_range_includes_start_and_excludes_end(
    store: AlarmStore, seeded: list[JournalEntry]
) -> None:
    start, end = T0 + 10 * S, T0 + 40 * S  # entries at exactly 10 s (in) and 40 s (out)
    got = store.journal(JournalQuery(start_us=start, end_us=end))
    assert got == select_seeded(seeded, lambda e: start <= e.source_us < end)
    assert [e.source_us for e in got] == [T0 + 30 * S, T0 + 20 * S, T0 + 10 * S]
    assert store.journal(JournalQuery(start_us=T0 + 100 * S)) == [seeded[-1]]
    assert store.journal(JournalQuery(end_us=T0)) == []


def test_journal_asset_is_a_subtree_segment_wise(
    store: AlarmStore, seeded: list[JournalEntry]
) -> None:
    got = ids_of(store.journal(JournalQuery(asset=L1, ascending=True)))
    # The line's own alarm and those below it; never line10 (a sibling sharing the prefix),
    # lineX1 or Line1.
    assert got == [L1_TEMP, L1_LEVEL, L1_OWN, L1_TEMP, L1_TEMP, L1_LEVEL, L1_LEVEL]
    assert ids_of(store.journal(JournalQuery(asset=f"{L1}/filler"))) == [L1_TEMP] * 3
    # '_' is a LIKE wildcard: line_1 must not select lineX1.
    assert ids_of(store.journal(JournalQuery(asset="acme/p1/line_1"))) == [L_1]
    # An alarm's asset is its own subtree's root, and a path that is no asset's selects none.
    assert ids_of(store.journal(JournalQuery(asset="acme/p1/line10/filler"))) == [L10]
    assert store.journal(JournalQuery(asset="acme/p1/line")) == []
    assert len(store.journal(JournalQuery(asset="acme"))) == len(SEED)


def test_journal_filters_by_priority_event_state_and_alarm(
    store: AlarmStore, seeded: list[JournalEntry]
) -> None:
    wanted = (Priority.LOW, Priority.CRITICAL)
    assert store.journal(JournalQuery(priorities=wanted)) == select_seeded(
        seeded, lambda e: e.priority in wanted
    )
    events = ("acknowledge", "realarm")
    assert ids_of(store.journal(JournalQuery(events=events))) == [L1_LEVEL, L1_TEMP]
    states = (State.NORMAL, State.SHELVED)
    assert store.journal(JournalQuery(states=states)) == select_seeded(
        seeded, lambda e: e.new_state in states
    )
    assert [e.event for e in store.journal(JournalQuery(alarm_id=L1_TEMP))] == [
        "returns_to_normal",
        "acknowledge",
        "becomes_abnormal",
    ]
    # Filters combine with AND.
    both = JournalQuery(asset=L1, priorities=(Priority.HIGH,), states=(State.UNACKNOWLEDGED,))
    assert store.journal(both) == [seeded[0]]


def test_journal_pages_by_seq(store: AlarmStore, seeded: list[JournalEntry]) -> None:
    newest_first = list(reversed(seeded))
    page1 = store.journal(JournalQuery(limit=4))
    page2 = store.journal(JournalQuery(limit=4, before_seq=page1[-1].seq))
    page3 = store.journal(JournalQuery(limit=4, before_seq=page2[-1].seq))
    assert page1 + page2 + page3 == newest_first
    assert len(page3) == len(SEED) - 8
    # Forwards: after the newest entry seen, oldest first.
    after = store.journal(JournalQuery(after_seq=seeded[7].seq, ascending=True, limit=2))
    assert after == seeded[8:10]
    window = JournalQuery(after_seq=seeded[2].seq, before_seq=seeded[5].seq)
    assert store.journal(window) == [seeded[4], seeded[3]]
    with pytest.raises(ValueError, match="limit must be 1 or more"):
        store.journal(JournalQuery(limit=0))


def test_activations_are_announcing_events_in_the_period(
    store: AlarmStore, seeded: list[JournalEntry]
) -> None:
    start, end = T0 + 10 * S, T0 + 90 * S  # the realarm at 90 s is outside
    got = store.activations(start, end)
    assert got == [
        e
        for e in seeded
        if e.event in ("becomes_abnormal", "realarm") and start <= e.source_us < end
    ]
    assert ids_of(store.activations(T0, T0 + 200 * S, L1)) == [L1_TEMP, L1_LEVEL, L1_OWN, L1_LEVEL]


def test_entries_between_are_every_event_oldest_first(
    store: AlarmStore, seeded: list[JournalEntry], caplog: pytest.LogCaptureFixture
) -> None:
    assert store.entries_between(T0, T0 + 200 * S) == seeded
    assert store.entries_between(T0 + 40 * S, T0 + 100 * S, f"{L1}/mixer") == [
        seeded[9]  # the realarm at 90 s; the shelve at 100 s is outside [40, 100)
    ]
    with caplog.at_level(logging.WARNING, logger="kiln.alarms.store"):
        capped = store.entries_between(T0, T0 + 200 * S, limit=3)
    assert capped == seeded[:3]
    assert any("more than 3 entries" in r.getMessage() for r in caplog.records)


# -- definitions ------------------------------------------------------------------------------


def test_definitions_put_replace_delete_load(store: AlarmStore) -> None:
    limit = LimitAlarm(name="temp_alarm", tag="temp", hi=LimitDef(value=90.0), latching=True)
    discrete = DiscreteAlarm(name="mode_alarm", tag="mode", states=("fault", 3))
    store.put_definition(StoredDefinition(f"{L1}/filler", limit, "ann", T0))
    store.put_definition(StoredDefinition(f"{L1}/mixer", discrete, "bob", T0 + S))
    store.put_definition(StoredDefinition(f"{L1}/mixer", limit, "bob", T0 + S))

    # By asset, then name.
    assert store.definitions() == [
        StoredDefinition(f"{L1}/filler", limit, "ann", T0),
        StoredDefinition(f"{L1}/mixer", discrete, "bob", T0 + S),
        StoredDefinition(f"{L1}/mixer", limit, "bob", T0 + S),
    ]
    # A state given as a number stays a number (JSON keeps it), one given as a name a name.
    loaded = store.definitions()[1].definition
    assert isinstance(loaded, DiscreteAlarm) and loaded.states == ("fault", 3)

    # Same asset and name: replaced, even by another kind.
    expression = ExpressionAlarm(name="temp_alarm", expression="temp > 90 and running")
    store.put_definition(StoredDefinition(f"{L1}/filler", expression, "cy", T0 + 2 * S))
    assert store.definitions()[0] == StoredDefinition(f"{L1}/filler", expression, "cy", T0 + 2 * S)
    assert len(store.definitions()) == 3

    assert store.delete_definition(f"{L1}/mixer", "mode_alarm") is True
    assert store.delete_definition(f"{L1}/mixer", "mode_alarm") is False
    assert store.delete_definition(f"{L1}/filler", "mode_alarm") is False
    assert [(s.asset, s.definition.name) for s in store.definitions()] == [
        (f"{L1}/filler", "temp_alarm"),
        (f"{L1}/mixer", "temp_alarm"),
    ]


def test_a_stored_definition_that_no_longer_validates_is_named(store: AlarmStore) -> None:
    stale = StaleAlarm(name="feed_stale", tag="feed", after_s=30)
    store.put_definition(StoredDefinition(L1, stale, "ann", T0))
    body = stale.model_dump(mode="json") | {"after_s": -1}  # as another version might write
    with store.engine.begin() as conn:
        conn.execute(update(ALARM_DEFINITIONS).values(body=body))
    with pytest.raises(StoredDefinitionError, match=f"'feed_stale' on {L1} is not valid"):
        store.definitions()


# -- lasting ----------------------------------------------------------------------------------


def test_reopen_after_close_keeps_everything(db_url: str) -> None:
    first = AlarmStore(db_url)
    first.open()
    rec = full_record()
    committed = first.commit([rec], [entry(L1_TEMP, T0), entry(L1_TEMP, T0 + S, "acknowledge")])
    definition = StoredDefinition(L1, StaleAlarm(name="feed_stale", tag="feed", after_s=30), "a", 1)
    first.put_definition(definition)
    first.close()

    second = AlarmStore(db_url)
    second.open()
    try:
        assert second.load() == {rec.id: rec}
        assert second.journal(JournalQuery(ascending=True)) == committed
        assert second.definitions() == [definition]
        # Numbering continues after the stored entries.
        assert second.commit([], [entry(L1_TEMP, T0 + 2 * S)])[0].seq > committed[-1].seq
    finally:
        second.close()


def test_sqlite_connections_are_durable(tmp_path: Path) -> None:
    store = AlarmStore(f"sqlite:///{tmp_path / 'alarms.db'}")
    store.open()
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            # 2 = FULL: a commit's WAL frames are synced before it returns (SQLite docs,
            # "PRAGMA synchronous").
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()


_KILLED_ENGINE = """
import os, signal, sys
from dataclasses import replace
from kiln.alarms.definitions import Priority
from kiln.alarms.records import AlarmRecord, JournalEntry
from kiln.alarms.states import AlarmState, State
from kiln.alarms.store import AlarmStore

store = AlarmStore(sys.argv[1])
store.open()
alarm = "acme/p1/line1/filler/temp_alarm:hi"
rec = AlarmRecord(id=alarm, asset="acme/p1/line1/filler", name="temp_alarm", condition="hi",
                  priority=Priority.HIGH, state=AlarmState(State.UNACKNOWLEDGED, occurrence=1))
step = JournalEntry(source_us=1, recorded_us=1, alarm_id=alarm, asset=rec.asset,
                    priority=Priority.HIGH, occurrence=1, event="becomes_abnormal",
                    old_state=State.NORMAL, new_state=State.UNACKNOWLEDGED, announced=True)
store.commit([rec], [step])
acked = replace(rec, state=AlarmState(State.ACKNOWLEDGED, occurrence=1), acked_by="ann")
ack = replace(step, source_us=2, recorded_us=2, event="acknowledge",
              old_state=State.UNACKNOWLEDGED, new_state=State.ACKNOWLEDGED, user="ann")
print(store.commit([acked], [ack])[0].seq, flush=True)  # the operator is answered now
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_an_acknowledgement_committed_survives_kill_9(db_url: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_ENGINE, db_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    acked_seq = int(proc.stdout)
    if db_url.startswith("sqlite"):
        # Killed before any checkpoint: the commit lives only in the WAL, which reopening replays.
        assert (tmp_path / "alarms.db-wal").stat().st_size > 0
    reopened = AlarmStore(db_url)
    reopened.open()
    try:
        (rec,) = reopened.load().values()
        assert rec.state.process is State.ACKNOWLEDGED
        assert rec.acked_by == "ann"
        newest = reopened.journal(JournalQuery(limit=1))
        assert [(e.seq, e.event, e.user) for e in newest] == [(acked_seq, "acknowledge", "ann")]
    finally:
        reopened.close()


# -- migrations -------------------------------------------------------------------------------


def test_migrated_schema_matches_the_tables(store: AlarmStore) -> None:
    with store.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head_revision() == "0002"
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        assert compare_metadata(context, metadata) == []


def test_shares_a_database_with_the_model_migrations(db_url: str) -> None:
    model = ModelStore(db_url)
    model.upgrade()
    first = AlarmStore(db_url)
    first.open()
    first.close()
    model.upgrade()  # each one's version table untouched by the other
    alarms = AlarmStore(db_url)
    alarms.open()
    try:
        with alarms.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert {"alembic_version", VERSION_TABLE, "alarm_journal", "tags"} <= tables
            for version_table in ("alembic_version", VERSION_TABLE):
                assert conn.execute(text(f"SELECT count(*) FROM {version_table}")).scalar() == 1
    finally:
        alarms.close()
        model.dispose()


def test_downgrade_to_base_removes_the_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'alarms.db'}"
    store = AlarmStore(url)
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
