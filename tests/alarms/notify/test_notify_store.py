"""The notifier's store on SQLite and PostgreSQL: its migrations, idempotent commits, and what
a restart finds (a delivery caught `sending` becomes a dead letter, never sent again on its
own). PostgreSQL runs (127.0.0.1:5432, user postgres, database test, or KILN_TEST_POSTGRES_URL)
are skipped when it is unreachable, except under CI=true, where they fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from notify_helpers import MILL_TEMP, T0, entry, event_data
from sqlalchemy import inspect

from kiln.alarms.notify import migrations
from kiln.alarms.notify.pipeline import Runner
from kiln.alarms.notify.schema import VERSION_TABLE, metadata
from kiln.alarms.notify.settings import NotificationSettings
from kiln.alarms.notify.store import INTERRUPTED, NotificationStore
from kiln.alarms.store import AlarmStore
from kiln.testing import postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'notifications.db'}"
        return
    with postgres.schema_for_test() as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[NotificationStore]:
    s = NotificationStore(db_url)
    s.open()
    try:
        yield s
    finally:
        s.close()


SETTINGS = NotificationSettings.model_validate(
    {
        "users": [{"name": "alice", "webhook": "http://127.0.0.1:1/a"},
                  {"name": "sup", "webhook": "http://127.0.0.1:1/s"}],
        "pipelines": [{"name": "p", "blocks": [
            {"kind": "notify", "users": ["alice"]},
            {"kind": "escalate", "after_s": 60, "users": ["sup"]},
        ]}],
    }
)  # fmt: skip


def test_migrations_create_exactly_the_schema(store: NotificationStore) -> None:
    with store.engine.connect() as conn:
        assert migrations.current_revision(conn) == migrations.head_revision()
        context = MigrationContext.configure(
            conn,
            opts={
                "version_table": VERSION_TABLE,
                "include_name": lambda name, type_, _p: type_ != "table" or name in metadata.tables,
                "compare_type": True,
            },
        )
        assert compare_metadata(context, metadata) == []


def test_shares_a_database_with_the_alarm_store(db_url: str) -> None:
    alarms = AlarmStore(db_url)
    alarms.open()
    notes = NotificationStore(db_url)
    notes.open()
    try:
        with notes.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        assert {"alarms_version", VERSION_TABLE, "alarm_journal", "notify_deliveries"} <= tables
    finally:
        notes.close()
        alarms.close()


def test_state_and_sends_round_trip_and_a_second_commit_adds_nothing(
    store: NotificationStore,
) -> None:
    runner = Runner(SETTINGS)
    data = event_data(entry(MILL_TEMP, "becomes_abnormal"))
    sends = runner.on_transition(data, T0)
    store.commit(runner.state, sends, T0)
    runner.state.dirty.clear()
    again = Runner(SETTINGS, store.load_state())
    assert again.state.timers == runner.state.timers
    assert again.next_due_us() == T0 + 60_000_000
    # The same event handled again (redelivered): same ids, nothing new recorded.
    store.commit(again.state, again.on_transition(data, T0 + 5), T0 + 5)
    [d] = store.deliveries()
    assert (d.send.user, d.status, d.created_us) == ("alice", "pending", T0)
    assert [x.id for x in store.due(T0, 10)] == [d.id]
    # Once fired, the timer is deleted from the store too.
    fired = again.fire_due(T0 + 60_000_000)
    store.commit(again.state, fired, T0 + 60_000_000)
    assert store.load_state().timers == {}
    assert {x.send.user for x in store.deliveries()} == {"alice", "sup"}


def test_a_delivery_caught_sending_becomes_a_dead_letter(store: NotificationStore) -> None:
    runner = Runner(SETTINGS)
    [send] = runner.on_transition(event_data(entry(MILL_TEMP, "becomes_abnormal")), T0)
    store.commit(runner.state, [send], T0)
    store.mark(send.id, T0, "sending", attempts=1)
    assert store.due(T0 + 10**9, 10) == []  # not attempted again while `sending`
    assert store.interrupted(T0 + 1) == 1  # what a start after `kill -9` does
    dead = store.get(send.id)
    assert dead is not None
    assert (dead.status, dead.last_error, dead.attempts) == ("dead", INTERRUPTED, 1)
    assert store.due(T0 + 10**9, 10) == []
    retried = store.retry(send.id, T0 + 2)
    assert retried is not None
    assert (retried.status, retried.round_attempts, retried.attempts) == ("pending", 0, 1)
    assert store.retry(send.id, T0 + 3) is None  # only a dead letter is retried
    assert [d.id for d in store.due(T0 + 2, 10)] == [send.id]
