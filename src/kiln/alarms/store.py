"""The alarm engine's own store: each alarm's current record, the journal of every transition,
and alarm definitions added through the API. SQLite by default, PostgreSQL with the same code
and migrations (`kiln.db`).

Synchronous, like the other relational stores: the engine calls it from a worker thread
(`asyncio.to_thread`), one writer at a time.

Durability: the engine answers an operator, and publishes a transition, only after `commit`
returns, so a commit must be on disk by then. SQLite runs in WAL mode with synchronous=FULL
(WAL's default, NORMAL, can lose the last commits on power loss); PostgreSQL's default
`synchronous_commit = on` already waits for the WAL flush.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from kiln.alarms import migrations
from kiln.alarms.definitions import AlarmDef, Priority
from kiln.alarms.records import AlarmRecord, Condition, JournalEntry
from kiln.alarms.schema import ALARM_DEFINITIONS, ALARM_JOURNAL, ALARM_OUTBOX, ALARM_RECORDS
from kiln.alarms.states import AlarmState, Event, Shelving, State
from kiln.db.store import MigratedStore

_LOGGER = logging.getLogger(__name__)

# WAL: the API's reads proceed while the engine commits. FULL: see the module docstring.
# Foreign keys: none yet, but a later revision adding one must not find them off.

# The most entries `activations` and `entries_between` return: a KPI over a long period
# should not hold the whole journal in memory.
DEFAULT_SCAN_LIMIT = 1_000_000
# Ids per IN list: well under SQLite's bound-parameter limit.
_IN_CHUNK = 500

# The journal events that announce an alarm (again): what alarm-rate KPIs count.
ACTIVATION_EVENTS = (Event.BECOMES_ABNORMAL.value, "realarm")

_DEFINITION: TypeAdapter[AlarmDef] = TypeAdapter(AlarmDef)

_R = ALARM_RECORDS.c
_J = ALARM_JOURNAL.c
_D = ALARM_DEFINITIONS.c


@dataclass(frozen=True, slots=True)
class JournalQuery:
    """Which journal entries to return, newest first unless `ascending`.

    `asset` selects a subtree (the asset and everything below it, segment-wise); `priorities`,
    `events` and `states` (the new shown state) select when non-empty; `before_seq` and
    `after_seq` page through. At most `limit` entries.
    """

    start_us: int | None = None
    end_us: int | None = None  # exclusive
    asset: str | None = None
    alarm_id: str | None = None
    priorities: tuple[Priority, ...] = ()
    events: tuple[str, ...] = ()
    states: tuple[State, ...] = ()
    before_seq: int | None = None
    after_seq: int | None = None
    limit: int = 1000
    ascending: bool = False


@dataclass(frozen=True, slots=True)
class StoredDefinition:
    """An alarm definition added through the API, on one asset."""

    asset: str
    definition: AlarmDef
    updated_by: str
    updated_us: int


class StoredDefinitionError(ValueError):
    """A stored definition no longer validates (written by another Kiln version, or by hand)."""


class AlarmStore(MigratedStore):
    """Alarm records, journal and API definitions in one database (SQLite or PostgreSQL).

    Call `open` before anything else and `close` at the end; the store can be opened again.
    """

    what = "alarm store"

    @staticmethod
    def upgrade(conn: Connection) -> None:
        migrations.upgrade(conn)

    # -- records and journal --------------------------------------------------------------

    def load(self) -> dict[str, AlarmRecord]:
        """Every stored alarm record, by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(ALARM_RECORDS)).mappings()
            return {row["id"]: _record(row) for row in rows}

    def commit(
        self,
        records: Sequence[AlarmRecord],
        entries: Sequence[JournalEntry],
        *,
        published_seq: int | None = None,
    ) -> list[JournalEntry]:
        """Upsert `records` and append `entries` in one transaction; the entries with `seq`.

        Durable when it returns (see the module docstring); on any error nothing is written.
        The entries' own `seq` is ignored: the database numbers them, in the order given.
        """
        twice = sorted(alarm_id for alarm_id, n in Counter(r.id for r in records).items() if n > 1)
        if twice:
            raise ValueError(
                f"commit got more than one record of alarm {', '.join(twice)}; "
                "pass each alarm's newest record once"
            )
        with self.engine.begin() as conn:
            if published_seq is not None:
                _set_published(conn, published_seq)
            if records:
                conn.execute(_upsert_records(conn), [_record_row(r) for r in records])
            if not entries:
                return []
            rows = [_entry_row(e) for e in entries]
            seqs: Sequence[int]
            if conn.dialect.name == "sqlite":
                # One executemany, then the last seq: SQLite holds its single write lock for
                # the whole transaction, so the rows just inserted got the n numbers up to it,
                # in order (AUTOINCREMENT, never reused). Ordered RETURNING would run one
                # statement per row there: on a burst of transitions, most of the commit.
                conn.execute(insert(ALARM_JOURNAL), rows)
                last = conn.execute(select(func.max(_J.seq))).scalar_one()
                seqs = range(last - len(rows) + 1, last + 1)
            else:
                # Ordered RETURNING: each seq comes back with the entry it was given to.
                append = insert(ALARM_JOURNAL).returning(_J.seq, sort_by_parameter_order=True)
                seqs = conn.execute(append, rows).scalars().all()
        return [replace(e, seq=seq) for e, seq in zip(entries, seqs, strict=True)]

    def published_seq(self) -> int:
        """The last journal entry known to be published on the bus (0: none)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(ALARM_OUTBOX.c.published_seq).where(ALARM_OUTBOX.c.id == 1)
            ).first()
        return 0 if row is None else int(row[0])

    def last_seq(self) -> int:
        """The newest journal entry's seq (0: an empty journal)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(_J.seq), 0))).scalar_one())

    def set_published(self, seq: int) -> None:
        with self.engine.begin() as conn:
            _set_published(conn, seq)

    def last_occurrences(self, ids: Sequence[str]) -> dict[str, int]:
        """Each alarm's highest occurrence in the journal (alarms with none are left out): an
        alarm defined again goes on counting where it stopped."""
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(ids)), _IN_CHUNK):
                stmt = (
                    select(_J.alarm_id, func.max(_J.occurrence))
                    .where(_J.alarm_id.in_(chunk))
                    .group_by(_J.alarm_id)
                )
                out.update({str(a): int(n) for a, n in conn.execute(stmt)})
        return out

    def delete_records(self, ids: Sequence[str]) -> None:
        """Forget the current records of alarms no longer defined (their journal stays)."""
        with self.engine.begin() as conn:
            for chunk in _chunks(list(dict.fromkeys(ids)), _IN_CHUNK):
                conn.execute(delete(ALARM_RECORDS).where(_R.id.in_(chunk)))

    def journal(self, query: JournalQuery) -> list[JournalEntry]:
        """The entries `query` selects: newest first by seq, or oldest first if `ascending`."""
        _check_limit(query.limit)
        conditions: list[ColumnElement[bool]] = []
        if query.start_us is not None:
            conditions.append(_J.source_us >= query.start_us)
        if query.end_us is not None:
            conditions.append(_J.source_us < query.end_us)
        if query.alarm_id is not None:
            conditions.append(_J.alarm_id == query.alarm_id)
        if query.priorities:
            conditions.append(_J.priority.in_([p.value for p in query.priorities]))
        if query.events:
            conditions.append(_J.event.in_(list(query.events)))
        if query.states:
            conditions.append(_J.new_state.in_([s.value for s in query.states]))
        if query.before_seq is not None:
            conditions.append(_J.seq < query.before_seq)
        if query.after_seq is not None:
            conditions.append(_J.seq > query.after_seq)
        with self.engine.connect() as conn:
            if query.asset is not None:
                conditions.append(_subtree(conn, query.asset))
            order = _J.seq.asc() if query.ascending else _J.seq.desc()
            stmt = select(ALARM_JOURNAL).where(*conditions).order_by(order).limit(query.limit)
            return [_entry(row) for row in conn.execute(stmt).mappings()]

    def activations(
        self,
        start_us: int,
        end_us: int,
        asset: str | None = None,
        *,
        limit: int = DEFAULT_SCAN_LIMIT,
    ) -> list[JournalEntry]:
        """The entries that announced an alarm (it became abnormal, or re-alarmed) with source
        time in [start_us, end_us), below `asset` if given, oldest first, at most `limit`."""
        return self._scan(start_us, end_us, asset, ACTIVATION_EVENTS, limit)

    def entries_between(
        self,
        start_us: int,
        end_us: int,
        asset: str | None = None,
        *,
        limit: int = DEFAULT_SCAN_LIMIT,
    ) -> list[JournalEntry]:
        """Every entry with source time in [start_us, end_us), below `asset` if given, oldest
        first (by seq: each alarm's entries in the order its state changed), at most `limit`."""
        return self._scan(start_us, end_us, asset, (), limit)

    def _scan(
        self,
        start_us: int,
        end_us: int,
        asset: str | None,
        events: tuple[str, ...],
        limit: int,
    ) -> list[JournalEntry]:
        _check_limit(limit)
        conditions = [_J.source_us >= start_us, _J.source_us < end_us]
        if events:
            conditions.append(_J.event.in_(list(events)))
        with self.engine.connect() as conn:
            if asset is not None:
                conditions.append(_subtree(conn, asset))
            # One more than asked for tells a cut-off result from one that fits exactly.
            stmt = select(ALARM_JOURNAL).where(*conditions).order_by(_J.seq.asc()).limit(limit + 1)
            entries = [_entry(row) for row in conn.execute(stmt).mappings()]
        if len(entries) > limit:
            _LOGGER.warning(
                "Alarm journal from %d to %d%s holds more than %d entries; only the oldest %d "
                "are used: ask for a shorter period",
                start_us,
                end_us,
                f" under {asset}" if asset else "",
                limit,
                limit,
            )
            del entries[limit:]
        return entries

    # -- definitions added through the API ------------------------------------------------

    def definitions(self) -> list[StoredDefinition]:
        """Every stored definition, by asset and name. Raises StoredDefinitionError for one
        that no longer validates, naming it."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(ALARM_DEFINITIONS)).mappings().all()
        stored = [_stored_definition(row) for row in rows]
        # Sorted here, not with ORDER BY: collations differ between databases.
        stored.sort(key=lambda s: (s.asset, s.definition.name))
        return stored

    def put_definition(self, stored: StoredDefinition) -> None:
        """Add or replace (by asset and name)."""
        row = {
            "asset": stored.asset,
            "name": stored.definition.name,
            "kind": stored.definition.kind,
            "body": stored.definition.model_dump(mode="json"),
            "updated_by": stored.updated_by,
            "updated_us": stored.updated_us,
        }
        with self.engine.begin() as conn:
            stmt = _dialect_insert(conn, ALARM_DEFINITIONS)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[_D.asset, _D.name],
                    set_={name: stmt.excluded[name] for name in _DEFINITION_UPDATES},
                ),
                [row],
            )

    def delete_definition(self, asset: str, name: str) -> bool:
        """Whether there was one to delete."""
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(ALARM_DEFINITIONS).where(_D.asset == asset, _D.name == name)
            )
        return result.rowcount > 0


# -- rows -----------------------------------------------------------------------------------

_RECORD_UPDATES = tuple(c.name for c in ALARM_RECORDS.columns if c.name != "id")
_DEFINITION_UPDATES = ("kind", "body", "updated_by", "updated_us")


def _record_row(r: AlarmRecord) -> dict[str, Any]:
    s = r.state
    return {
        "id": r.id,
        "asset": r.asset,
        "name": r.name,
        "condition": r.condition,
        "priority": r.priority.value,
        "tag": r.tag,
        "process": s.process.value,
        "shelving": s.shelving.value,
        "unshelve_at_us": s.unshelve_at_us,
        "suppressed": s.suppressed,
        "out_of_service": s.out_of_service,
        "occurrence": s.occurrence,
        "value": _value_json(r.value),
        "limit_value": r.limit,
        "message": r.message,
        "active_since_us": r.active_since_us,
        "changed_us": r.changed_us,
        "acked_by": r.acked_by,
        "acked_us": r.acked_us,
        "shelved_by": r.shelved_by,
        "out_of_service_reason": r.out_of_service_reason,
        "note": r.note,
    }


def _record(row: Any) -> AlarmRecord:
    return AlarmRecord(
        id=row["id"],
        asset=row["asset"],
        name=row["name"],
        condition=cast(Condition, row["condition"]),
        priority=Priority(row["priority"]),
        tag=row["tag"],
        state=AlarmState(
            process=State(row["process"]),
            shelving=Shelving(row["shelving"]),
            unshelve_at_us=row["unshelve_at_us"],
            suppressed=bool(row["suppressed"]),
            out_of_service=bool(row["out_of_service"]),
            occurrence=row["occurrence"],
        ),
        value=_value_from_json(row["value"]),
        limit=row["limit_value"],
        message=row["message"],
        active_since_us=row["active_since_us"],
        changed_us=row["changed_us"],
        acked_by=row["acked_by"],
        acked_us=row["acked_us"],
        shelved_by=row["shelved_by"],
        out_of_service_reason=row["out_of_service_reason"],
        note=row["note"],
    )


def _entry_row(e: JournalEntry) -> dict[str, Any]:
    return {
        "source_us": e.source_us,
        "recorded_us": e.recorded_us,
        "alarm_id": e.alarm_id,
        "asset": e.asset,
        "priority": e.priority.value,
        "occurrence": e.occurrence,
        "event": e.event,
        "old_state": e.old_state.value,
        "new_state": e.new_state.value,
        "announced": e.announced,
        "value": _value_json(e.value),
        "user_name": e.user,
        "comment": e.comment,
        "message": e.message,
    }


def _entry(row: Any) -> JournalEntry:
    return JournalEntry(
        seq=row["seq"],
        source_us=row["source_us"],
        recorded_us=row["recorded_us"],
        alarm_id=row["alarm_id"],
        asset=row["asset"],
        priority=Priority(row["priority"]),
        occurrence=row["occurrence"],
        event=row["event"],
        old_state=State(row["old_state"]),
        new_state=State(row["new_state"]),
        announced=bool(row["announced"]),
        value=_value_from_json(row["value"]),
        user=row["user_name"],
        comment=row["comment"],
        message=row["message"],
    )


def _stored_definition(row: Any) -> StoredDefinition:
    try:
        definition = _DEFINITION.validate_python(row["body"])
    except ValidationError as err:
        raise StoredDefinitionError(
            f"stored alarm definition {row['name']!r} on {row['asset']} is not valid: {err}; "
            "undefine it and define it again through the API (the alarms `undefine` and "
            "`define` commands)"
        ) from err
    return StoredDefinition(row["asset"], definition, row["updated_by"], row["updated_us"])


def _value_json(value: float | str | None) -> str | None:
    # JSON text keeps the kind: 3.5 comes back a number, "fault" a string (and "3.5" a string).
    return None if value is None else json.dumps(value)


def _value_from_json(text: str | None) -> float | str | None:
    return None if text is None else cast(float | str, json.loads(text))


# -- statements -----------------------------------------------------------------------------


def _dialect_insert(conn: Connection, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can turn into an update on conflict (both backends' own syntax)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _upsert_records(conn: Connection) -> Insert:
    stmt = _dialect_insert(conn, ALARM_RECORDS)
    return stmt.on_conflict_do_update(
        index_elements=[_R.id],
        set_={name: stmt.excluded[name] for name in _RECORD_UPDATES},
    )


def _subtree(conn: Connection, asset: str) -> ColumnElement[bool]:
    """The journal's entries on `asset` or below it, segment-wise: `line1` selects
    `line1/filler` but never `line10`."""
    below = asset + "/"
    if conn.dialect.name == "sqlite":
        # SQLite compares text byte by byte (BINARY collation), and '0' follows '/', so the
        # paths below `asset` are exactly [asset/, asset0): a range its index answers. (LIKE
        # would not do: SQLite's ignores case.)
        inside = and_(_J.asset >= below, _J.asset < asset + "0")
    else:
        # PostgreSQL's LIKE is case-sensitive; with the pattern operator class index it is a
        # range scan too. '_' is common in paths and a LIKE wildcard, so it is escaped.
        inside = _J.asset.like(_escape_like(below) + "%", escape="\\")
    return or_(_J.asset == asset, inside)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"a journal query's limit must be 1 or more, got {limit}")


def _set_published(conn: Connection, seq: int) -> None:
    updated = conn.execute(
        update(ALARM_OUTBOX).where(ALARM_OUTBOX.c.id == 1).values(published_seq=seq)
    )
    if updated.rowcount == 0:
        conn.execute(insert(ALARM_OUTBOX).values(id=1, published_seq=seq))


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
