"""The webhook sender's own store: one delivery per (webhook, event) and its attempts. SQLite
by default, PostgreSQL with the same code and migrations (`kiln.db`, version table
`valuechain_webhooks_version`).

Synchronous; the service calls it from a worker thread. What makes a restart safe:

* an event's deliveries are committed in one transaction, and only then is the event
  acknowledged on the bus; the delivery id derives from the webhook and the event's id, so an
  event handled twice (redelivered after a crash) adds nothing;
* a delivery is marked `sending` before its attempt and `sent`, `failed` or `dead` after. One
  caught `sending` at start may or may not have arrived; unlike an alarm page, a webhook's
  receiver deduplicates by `X-Kiln-Delivery`, so it is simply attempted again (at least once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from kiln.db.engines import SYNCHRONOUS_FULL, WAL
from kiln.db.store import MigratedStore
from kiln.valuechain import webhook_migrations
from kiln.valuechain.webhook_schema import DELIVERIES

Status = Literal["pending", "sending", "sent", "failed", "dead"]
STATUSES: tuple[Status, ...] = ("pending", "sending", "sent", "failed", "dead")
INTERRUPTED = (
    "interrupted while sending (the sender stopped): attempted again, with the same "
    "X-Kiln-Delivery id for the receiver to drop it if it had arrived"
)

_D = DELIVERIES.c


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery to make: which webhook, which event, and the body every attempt sends."""

    id: str
    webhook: str
    event_id: str
    kind: str
    subject: str
    body: str  # JSON


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery as recorded."""

    id: str
    webhook: str
    event_id: str
    kind: str
    subject: str
    status: Status
    attempts: int
    last_error: str
    created_us: int
    updated_us: int
    next_attempt_us: int | None
    sent_us: int | None
    body: str

    def to_json(self) -> dict[str, Any]:
        """The record without the body (what a listing shows)."""
        return {
            "id": self.id,
            "webhook": self.webhook,
            "event_id": self.event_id,
            "kind": self.kind,
            "subject": self.subject,
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_us": self.created_us,
            "updated_us": self.updated_us,
            "next_attempt_us": self.next_attempt_us,
            "sent_us": self.sent_us,
        }


class WebhookStore(MigratedStore):
    """Call `open` first and `close` at the end; it can be opened again."""

    what = "value chain webhook store"
    # One table, no foreign keys: WAL so listings never block the sender, FULL so a commit
    # that let an event be acknowledged is on disk.
    sqlite_pragmas: ClassVar[Sequence[str]] = (WAL, SYNCHRONOUS_FULL)

    @staticmethod
    def upgrade(conn: Connection) -> None:
        webhook_migrations.upgrade(conn)

    def add(self, deliveries: Sequence[NewDelivery], now_us: int) -> None:
        """Record `deliveries` as pending, due now, in one transaction. One whose id is already
        recorded is left as it is (its event was handled before)."""
        if not deliveries:
            return
        with self.engine.begin() as conn:
            stmt = _dialect_insert(conn).on_conflict_do_nothing(index_elements=[_D.id])
            conn.execute(stmt, [_row(d, now_us) for d in deliveries])

    def due(self, now_us: int, limit: int) -> list[Delivery]:
        """Deliveries waiting for an attempt whose time has come, oldest first."""
        stmt = (
            select(DELIVERIES)
            .where(_D.status.in_(("pending", "failed")), _D.next_attempt_us <= now_us)
            .order_by(_D.next_attempt_us, _D.created_us, _D.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(stmt).mappings()]

    def next_attempt_us(self) -> int | None:
        """When the next attempt is due (None: nothing waits)."""
        stmt = select(func.min(_D.next_attempt_us)).where(_D.status.in_(("pending", "failed")))
        with self.engine.connect() as conn:
            value = conn.execute(stmt).scalar()
        return None if value is None else int(value)

    def get(self, delivery_id: str) -> Delivery | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(DELIVERIES).where(_D.id == delivery_id)).mappings().first()
        return None if row is None else _delivery(row)

    def deliveries(
        self, *, status: Status | None = None, webhook: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Newest first."""
        if limit < 1:
            raise ValueError(f"limit must be 1 or more, got {limit}")
        stmt = select(DELIVERIES)
        if status is not None:
            stmt = stmt.where(_D.status == status)
        if webhook is not None:
            stmt = stmt.where(_D.webhook == webhook)
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

    def interrupted(self, now_us: int) -> int:
        """Deliveries left `sending` by a sender that stopped: due again now (see INTERRUPTED).
        Their attempt counts, so a receiver that hangs up on every attempt still ends dead."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(DELIVERIES)
                .where(_D.status == "sending")
                .values(
                    status="failed",
                    last_error=INTERRUPTED,
                    next_attempt_us=now_us,
                    updated_us=now_us,
                )
            )
        return int(done.rowcount)

    def count(self, status: Status) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.count()).where(_D.status == status)).scalar()
        return int(value or 0)


def _dialect_insert(conn: Connection) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(DELIVERIES)
    return sqlite.insert(DELIVERIES)


def _row(d: NewDelivery, now_us: int) -> dict[str, Any]:
    return {
        "id": d.id,
        "webhook": d.webhook,
        "event_id": d.event_id,
        "kind": d.kind,
        "subject": d.subject,
        "status": "pending",
        "attempts": 0,
        "last_error": "",
        "created_us": now_us,
        "updated_us": now_us,
        "next_attempt_us": now_us,
        "sent_us": None,
        "body": d.body,
    }


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row["id"],
        webhook=row["webhook"],
        event_id=row["event_id"],
        kind=row["kind"],
        subject=row["subject"],
        status=cast(Status, row["status"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        created_us=row["created_us"],
        updated_us=row["updated_us"],
        next_attempt_us=row["next_attempt_us"],
        sent_us=row["sent_us"],
        body=row["body"],
    )
