"""The notifier's own store: every delivery and its attempts, and the pipelines' state
(timers, acknowledgements, consolidation windows). SQLite by default, PostgreSQL with the same
code and migrations (`kiln.db`, version table `notifications_version`).

Synchronous; the service calls it from a worker thread. What makes a restart safe:

* an event's effects (new deliveries, changed timers) are committed in one transaction, and
  only then is the event acknowledged on the bus;
* a delivery is marked `sending` (committed) before its attempt and `sent` after, so after a
  `kill -9` nothing marked sent goes out again; one caught `sending` cannot be known to have
  arrived or not, so it becomes a dead letter with that said, for an operator to `retry`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from kiln.alarms.notify import migrations
from kiln.alarms.notify.model import NotifyState, Send, StateKind
from kiln.alarms.notify.schema import DELIVERIES, STATE
from kiln.db.engines import SYNCHRONOUS_FULL, WAL, open_migrated

SQLITE_PRAGMAS = (WAL, SYNCHRONOUS_FULL)

Status = Literal["pending", "sending", "sent", "failed", "dead"]
STATUSES: tuple[Status, ...] = ("pending", "sending", "sent", "failed", "dead")
INTERRUPTED = (
    "interrupted while sending (the notifier stopped): it may or may not have arrived, so it "
    "is not sent again on its own; use the notifications `retry` command to send it again"
)

_D = DELIVERIES.c
_S = STATE.c


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery as recorded."""

    send: Send
    status: Status
    attempts: int
    round_start: int
    last_error: str
    created_us: int
    updated_us: int
    next_attempt_us: int | None
    sent_us: int | None

    @property
    def id(self) -> str:
        return self.send.id

    @property
    def round_attempts(self) -> int:
        """Attempts since it was created or last retried by hand."""
        return self.attempts - self.round_start

    def to_json(self) -> dict[str, Any]:
        s = self.send
        return {
            "id": s.id,
            "pipeline": s.pipeline,
            "block": s.block,
            "kind": s.kind,
            "channel": s.channel,
            "recipient": s.user,
            "address": s.address,
            "alarm_id": s.first.alarm_id,
            "alarm_ids": [a.alarm_id for a in s.alarms],
            "occurrence": s.first.occurrence,
            "event": s.first.event,
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_us": self.created_us,
            "updated_us": self.updated_us,
            "next_attempt_us": self.next_attempt_us,
            "sent_us": self.sent_us,
        }


class NotificationStore:
    """Call `open` first and `close` at the end; it can be opened again."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None

    def open(self) -> None:
        """Create the engine and migrate to head."""
        if self._engine is not None:
            return
        engine = open_migrated(
            self.url,
            what="notification store",
            upgrade=migrations.upgrade,
            sqlite_pragmas=SQLITE_PRAGMAS,
        )
        self._engine = engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError(
                "the notification store is not open: call NotificationStore.open() first"
            )
        return self._engine

    # -- pipeline state ---------------------------------------------------------------------

    def load_state(self) -> NotifyState:
        state = NotifyState()
        with self.engine.connect() as conn:
            for row in conn.execute(select(_S.kind, _S.key, _S.body)):
                state.load(cast(StateKind, row.kind), row.key, json.loads(row.body))
        return state

    def commit(self, state: NotifyState, sends: Sequence[Send], now_us: int) -> None:
        """Write `state`'s changed keys and add `sends` as pending deliveries, in one
        transaction. A send whose id is already recorded is left as it is (handled before)."""
        with self.engine.begin() as conn:
            dirty = sorted(state.dirty)
            for kind, key in dirty:
                conn.execute(delete(STATE).where(_S.kind == kind, _S.key == key))
            rows = []
            for kind, key in dirty:
                body = state.body(kind, key)
                if body is not None:
                    rows.append(
                        {"kind": kind, "key": key, "due_us": state.due_of(kind, key),
                         "body": json.dumps(body)}
                    )  # fmt: skip
            if rows:
                conn.execute(insert(STATE), rows)
            if sends:
                stmt = _dialect_insert(conn).on_conflict_do_nothing(index_elements=[_D.id])
                conn.execute(stmt, [_delivery_row(s, now_us) for s in sends])

    # -- deliveries -------------------------------------------------------------------------

    def due(self, now_us: int, limit: int) -> list[Delivery]:
        """Deliveries waiting for an attempt whose time has come, oldest first."""
        stmt = (
            select(DELIVERIES)
            .where(_D.status.in_(("pending", "failed")), _D.next_attempt_us <= now_us)
            .order_by(_D.next_attempt_us, _D.created_us)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(stmt).mappings()]

    def next_attempt_us(self) -> int | None:
        stmt = select(func.min(_D.next_attempt_us)).where(_D.status.in_(("pending", "failed")))
        with self.engine.connect() as conn:
            value = conn.execute(stmt).scalar()
        return None if value is None else int(value)

    def get(self, delivery_id: str) -> Delivery | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(DELIVERIES).where(_D.id == delivery_id)).mappings().first()
        return None if row is None else _delivery(row)

    def deliveries(
        self,
        *,
        status: Status | None = None,
        alarm_id: str | None = None,
        since_us: int | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Newest first."""
        if limit < 1:
            raise ValueError(f"limit must be 1 or more, got {limit}")
        stmt = select(DELIVERIES)
        if status is not None:
            stmt = stmt.where(_D.status == status)
        if alarm_id is not None:
            stmt = stmt.where(_D.alarm_id == alarm_id)
        if since_us is not None:
            stmt = stmt.where(_D.created_us >= since_us)
        stmt = stmt.order_by(_D.created_us.desc(), _D.id).limit(limit)
        with self.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(stmt).mappings()]

    def mark(self, delivery_id: str, now_us: int, status: Status, **values: Any) -> None:
        """Set a delivery's status (and other columns given by name)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(DELIVERIES)
                .where(_D.id == delivery_id)
                .values(status=status, updated_us=now_us, **values)
            )

    def retry(self, delivery_id: str, now_us: int) -> Delivery | None:
        """A dead letter back to pending, with a fresh round of attempts. None if there is no
        such dead letter (the caller tells a missing one from one that is not dead)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(DELIVERIES)
                .where(_D.id == delivery_id, _D.status == "dead")
                .values(
                    status="pending",
                    round_start=_D.attempts,
                    next_attempt_us=now_us,
                    updated_us=now_us,
                )
            )
        return self.get(delivery_id) if done.rowcount else None

    def interrupted(self, now_us: int) -> int:
        """Deliveries left `sending` by a process that died: to dead letters (see INTERRUPTED)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(DELIVERIES)
                .where(_D.status == "sending")
                .values(status="dead", last_error=INTERRUPTED, next_attempt_us=None,
                        updated_us=now_us)
            )  # fmt: skip
        return int(done.rowcount)

    def count(self, status: Status) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.count()).where(_D.status == status)).scalar()
        return int(value or 0)


def _dialect_insert(conn: Connection) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(DELIVERIES)
    return sqlite.insert(DELIVERIES)


def _delivery_row(s: Send, now_us: int) -> dict[str, Any]:
    first = s.first
    return {
        "id": s.id,
        "pipeline": s.pipeline,
        "block": s.block,
        "kind": s.kind,
        "channel": s.channel,
        "recipient": s.user,
        "address": s.address,
        "alarm_id": first.alarm_id,
        "occurrence": first.occurrence,
        "event": first.event,
        "status": "pending",
        "attempts": 0,
        "round_start": 0,
        "last_error": "",
        "created_us": now_us,
        "updated_us": now_us,
        "next_attempt_us": now_us,
        "sent_us": None,
        "payload": json.dumps(s.to_json()),
    }


def _delivery(row: Any) -> Delivery:
    return Delivery(
        send=Send.from_json(json.loads(row["payload"])),
        status=cast(Status, row["status"]),
        attempts=row["attempts"],
        round_start=row["round_start"],
        last_error=row["last_error"],
        created_us=row["created_us"],
        updated_us=row["updated_us"],
        next_attempt_us=row["next_attempt_us"],
        sent_us=row["sent_us"],
    )
