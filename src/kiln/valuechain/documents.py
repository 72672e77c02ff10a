"""The value chain's documents in the store: organisations, sales and purchase orders, planning
proposals, and the event outbox written with them.

A document is one aggregate of a pure core (`partners.Organisation`, `trade.SalesOrder`,
`trade.PurchaseOrder`, `PlannedOrder` here), kept whole as JSON in `vc_documents` beside the
columns queries select on (`schema.VC_DOCUMENTS`). `DocKind` says, per kind, which model it is
and how its id, counterparty and state are read from it.

Every change is read, checked by the core and written in one database transaction, and raises
the document's `version` by one: a caller that read version 3 and sends `expected_version=3`
is refused (`StaleDocument`) if someone changed it meanwhile, rather than overwriting that
change. The change's event goes into the outbox in the same transaction (`DocumentStore.emit`),
so an event exists exactly when its change does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, and_, delete, insert, select, update

from kiln.db.store import MigratedStore
from kiln.valuechain.locations import Location
from kiln.valuechain.mrp import Proposal
from kiln.valuechain.partners import Organisation, OrganisationKind
from kiln.valuechain.routing import Routing
from kiln.valuechain.schema import VC_DOCUMENTS, VC_EVENTS
from kiln.valuechain.trade import PurchaseOrder, SalesOrder

M = TypeVar("M", bound=BaseModel)


class StaleDocument(ValueError):
    """The document changed since the caller read it (its version moved on)."""


class DocumentExists(ValueError):
    """A new document's id is taken."""


class ProposalState(StrEnum):
    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


class PlannedOrder(BaseModel):
    """A proposal of a planning run as the planner sees it: proposed until confirmed (it then
    names the order made from it) or dismissed; a new run replaces the ones still proposed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    proposal: Proposal
    state: ProposalState = ProposalState.PROPOSED
    planned_us: int = Field(description="when the run that proposed it ran")
    run: int = Field(default=1, ge=1, description="the number of the run that proposed it")
    order_id: str | None = Field(default=None, description="the order confirming it made")
    decided_by: str | None = None
    decided_us: int | None = None

    @property
    def id(self) -> str:
        """The proposal's id in its run: planning gives the same need the same proposal id in
        every run, and a decided one stays on record beside the next run's."""
        return f"{self.proposal.id}.r{self.run}"


@dataclass(frozen=True)
class DocKind(Generic[M]):
    """How documents of one kind are stored: the model, and the id, counterparty and state
    read from it (the columns beside the body)."""

    name: str
    model: type[M]
    key: Callable[[M], str]
    party: Callable[[M], str | None]
    state: Callable[[M], str | None]


ORGANISATION: DocKind[Organisation] = DocKind(
    "organisation",
    Organisation,
    key=lambda o: o.code,
    # A partner's own organisation is its party; the enterprise is nobody's counterparty.
    party=lambda o: None if o.kind is OrganisationKind.ENTERPRISE else o.code,
    state=lambda o: o.kind.value,
)
SALES_ORDER: DocKind[SalesOrder] = DocKind(
    "sales_order",
    SalesOrder,
    key=lambda o: o.id,
    party=lambda o: o.customer,
    state=lambda o: o.state.value,
)
PURCHASE_ORDER: DocKind[PurchaseOrder] = DocKind(
    "purchase_order",
    PurchaseOrder,
    key=lambda o: o.id,
    party=lambda o: o.supplier,
    state=lambda o: o.state.value,
)
PLANNED_ORDER: DocKind[PlannedOrder] = DocKind(
    "proposal",
    PlannedOrder,
    key=lambda p: p.id,
    party=lambda p: p.proposal.supplier,
    state=lambda p: p.state.value,
)
ROUTING: DocKind[Routing] = DocKind(
    "routing", Routing, key=lambda r: r.product, party=lambda r: None, state=lambda r: None
)
LOCATION: DocKind[Location] = DocKind(
    "location",
    Location,
    key=lambda loc: loc.code,
    party=lambda loc: None,
    state=lambda loc: loc.kind.value,
)


class FollowCursor(BaseModel):
    """How far the engine has followed another's log (production's order events)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    seq: int = Field(ge=0)
    failed: tuple[int, ...] = Field(
        default=(),
        description="events near `seq` whose booking failed and was recorded: when read again"
        " (the follower re-reads a window behind its cursor), they are not recorded twice",
    )


class OrderBooking(BaseModel):
    """What the engine booked of a production order so far: good units as produced lots."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str
    produced: Decimal = Decimal(0)
    lots: int = Field(default=0, ge=0)
    shortages: tuple[str, ...] = ()
    consumed: dict[str, Decimal] = Field(
        default_factory=dict,
        description="component -> quantity backflushed into the order so far (a booking made"
        " before this was kept has none: the follower reads it from the order's consumption)",
    )


CURSOR: DocKind[FollowCursor] = DocKind(
    "cursor", FollowCursor, key=lambda c: c.name, party=lambda c: None, state=lambda c: None
)
ORDER_BOOKING: DocKind[OrderBooking] = DocKind(
    "order_booking",
    OrderBooking,
    key=lambda b: b.order_id,
    party=lambda b: None,
    state=lambda b: None,
)


@dataclass(frozen=True)
class Versioned(Generic[M]):
    """A document as read, with the version a change must name to be applied."""

    doc: M
    version: int
    updated_us: int


@dataclass(frozen=True)
class OutboxEvent:
    seq: int
    kind: str
    subject: str
    time_us: int
    body: dict[str, Any]


class DocumentStore(MigratedStore):
    """Documents and the outbox; `ValuechainStore` adds master data, lots and genealogy."""

    # -- reading --------------------------------------------------------------------------

    def document(self, kind: DocKind[M], doc_id: str) -> Versioned[M] | None:
        with self.engine.connect() as conn:
            return _read(conn, kind, doc_id)

    def document_in(
        self, conn: Connection, kind: DocKind[M], doc_id: str, *, lock: bool = False
    ) -> Versioned[M] | None:
        """`document` inside the caller's transaction; with `lock`, held (PostgreSQL) until
        that transaction ends, so a read-then-write of it is not interleaved with another."""
        return _read(conn, kind, doc_id, lock=lock)

    def documents(
        self,
        kind: DocKind[M],
        *,
        parties: Iterable[str] | None = None,
        states: Iterable[str] | None = None,
        limit: int = 1000,
    ) -> list[Versioned[M]]:
        """Documents of `kind` by id, at most `limit`: of one of `parties` (None: any), in one
        of `states`."""
        c = VC_DOCUMENTS.c
        query = select(c.body, c.version, c.updated_us).where(c.kind == kind.name)
        if parties is not None:
            query = query.where(c.party.in_(sorted(set(parties))))
        if states is not None:
            query = query.where(c.state.in_(sorted(set(states))))
        query = query.order_by(c.id).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Versioned(kind.model.model_validate(b), v, u) for b, v, u in rows]

    # -- changing -------------------------------------------------------------------------

    def create(
        self, kind: DocKind[M], doc: M, *, event: tuple[str, dict[str, Any]] | None = None
    ) -> Versioned[M]:
        """Store a new document (version 1); DocumentExists if its id is taken."""
        now = self._clock.now_us()
        with self.engine.begin() as conn:
            if _read(conn, kind, kind.key(doc)) is not None:
                raise DocumentExists(f"{kind.name.replace('_', ' ')} {kind.key(doc)!r} exists")
            conn.execute(insert(VC_DOCUMENTS), [_row(kind, doc, 1, now)])
            if event is not None:
                self.emit(conn, event[0], kind.key(doc), event[1])
        return Versioned(doc, 1, now)

    def insert_in(self, conn: Connection, kind: DocKind[M], doc: M) -> None:
        """A new document inside the caller's transaction; DocumentExists if its id is taken."""
        if _read(conn, kind, kind.key(doc)) is not None:
            raise DocumentExists(f"{kind.name.replace('_', ' ')} {kind.key(doc)!r} exists")
        conn.execute(insert(VC_DOCUMENTS), [_row(kind, doc, 1, self._clock.now_us())])

    def change(
        self,
        kind: DocKind[M],
        doc_id: str,
        fn: Callable[[M], M],
        *,
        expected_version: int | None = None,
        event: Callable[[M, M], tuple[str, dict[str, Any]] | None] | None = None,
        also: Callable[[Connection, M, M], None] | None = None,
    ) -> Versioned[M]:
        """Apply `fn` to the stored document and keep what it returns, in one transaction.

        LookupError if there is none; StaleDocument if `expected_version` is given and is not
        the stored one; whatever `fn` raises (a core's refusal) with nothing written. `also`
        runs in the same transaction (a lot booked with a receipt), `event` gives the outbox
        event from the old and the new document."""
        now = self._clock.now_us()
        with self.engine.begin() as conn:
            current = _read(conn, kind, doc_id, lock=True)
            if current is None:
                raise LookupError(f"no {kind.name.replace('_', ' ')} {doc_id!r}")
            if expected_version is not None and expected_version != current.version:
                raise StaleDocument(
                    f"{kind.name.replace('_', ' ')} {doc_id!r} is at version {current.version},"
                    f" not {expected_version}: it changed meanwhile; read it again"
                )
            new = fn(current.doc)
            if kind.key(new) != doc_id:
                raise ValueError(f"a change cannot rename {doc_id!r}")
            c = VC_DOCUMENTS.c
            conn.execute(
                update(VC_DOCUMENTS)
                .where(and_(c.kind == kind.name, c.id == doc_id))
                .values(_row(kind, new, current.version + 1, now))
            )
            if also is not None:
                also(conn, current.doc, new)
            if event is not None and (ev := event(current.doc, new)) is not None:
                self.emit(conn, ev[0], doc_id, ev[1])
        return Versioned(new, current.version + 1, now)

    def put(self, kind: DocKind[M], doc: M) -> Versioned[M]:
        """Add or replace whole (master data such as organisations), raising the version."""
        with self.engine.begin() as conn:
            return self.put_in(conn, kind, doc)

    def put_in(self, conn: Connection, kind: DocKind[M], doc: M) -> Versioned[M]:
        """`put` inside the caller's transaction."""
        now = self._clock.now_us()
        current = _read(conn, kind, kind.key(doc), lock=True)
        version = 1 if current is None else current.version + 1
        c = VC_DOCUMENTS.c
        conn.execute(delete(VC_DOCUMENTS).where(and_(c.kind == kind.name, c.id == kind.key(doc))))
        conn.execute(insert(VC_DOCUMENTS), [_row(kind, doc, version, now)])
        return Versioned(doc, version, now)

    def remove(self, kind: DocKind[M], doc_id: str) -> bool:
        c = VC_DOCUMENTS.c
        with self.engine.begin() as conn:
            done = conn.execute(
                delete(VC_DOCUMENTS).where(and_(c.kind == kind.name, c.id == doc_id))
            )
        return done.rowcount > 0

    def replace_proposals(
        self, proposals: Sequence[Proposal], planned_us: int
    ) -> list[PlannedOrder]:
        """A planning run's result: the proposals still undecided are dropped (the confirmed
        and dismissed ones stay as the record of decisions), these stored as run n + 1."""
        c = VC_DOCUMENTS.c
        with self.engine.begin() as conn:
            last = _read(conn, CURSOR, "planning-runs", lock=True)
            run = (last.doc.seq if last is not None else 0) + 1
            self.put_in(conn, CURSOR, FollowCursor(name="planning-runs", seq=run))
            conn.execute(
                delete(VC_DOCUMENTS).where(
                    and_(c.kind == PLANNED_ORDER.name, c.state == ProposalState.PROPOSED.value)
                )
            )
            planned = [PlannedOrder(proposal=p, planned_us=planned_us, run=run) for p in proposals]
            if planned:
                conn.execute(
                    insert(VC_DOCUMENTS), [_row(PLANNED_ORDER, p, 1, planned_us) for p in planned]
                )
            self.emit(conn, "plan", f"run-{run}", {"run": run, "proposals": len(planned)})
        return planned

    # -- the outbox -----------------------------------------------------------------------

    def emit(self, conn: Connection, kind: str, subject: str, body: dict[str, Any]) -> None:
        """Add an event to the outbox inside the caller's transaction."""
        conn.execute(
            insert(VC_EVENTS),
            [
                {
                    "kind": kind,
                    "subject": subject[:128],
                    "time_us": self._clock.now_us(),
                    "body": body,
                    "published": 0,
                }
            ],
        )

    def unpublished(self, limit: int = 500) -> list[OutboxEvent]:
        """The oldest events not yet published, in order."""
        c = VC_EVENTS.c
        query = (
            select(c.seq, c.kind, c.subject, c.time_us, c.body)
            .where(c.published == 0)
            .order_by(c.seq)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [OutboxEvent(*row) for row in conn.execute(query).all()]

    def mark_published(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        c = VC_EVENTS.c
        with self.engine.begin() as conn:
            conn.execute(update(VC_EVENTS).where(c.seq.in_(list(seqs))).values(published=1))

    def events(self, *, after: int = 0, limit: int = 500) -> list[OutboxEvent]:
        """Events after sequence `after`, published or not, oldest first."""
        c = VC_EVENTS.c
        query = (
            select(c.seq, c.kind, c.subject, c.time_us, c.body)
            .where(c.seq > after)
            .order_by(c.seq)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [OutboxEvent(*row) for row in conn.execute(query).all()]


def _row(kind: DocKind[M], doc: M, version: int, now_us: int) -> dict[str, Any]:
    return {
        "kind": kind.name,
        "id": kind.key(doc),
        "party": kind.party(doc),
        "state": kind.state(doc),
        "version": version,
        "body": doc.model_dump(mode="json"),
        "updated_us": now_us,
    }


def _read(
    conn: Connection, kind: DocKind[M], doc_id: str, *, lock: bool = False
) -> Versioned[M] | None:
    c = VC_DOCUMENTS.c
    query = select(c.body, c.version, c.updated_us).where(and_(c.kind == kind.name, c.id == doc_id))
    if lock and conn.dialect.name == "postgresql":
        # Two changes of one document are serialised here; SQLite has one writer anyway.
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        return None
    return Versioned(kind.model.model_validate(row[0]), row[1], row[2])


def today_in(zone: dt.tzinfo, now_us: int) -> dt.date:
    """The calendar day at `now_us` in `zone`: planning's `today`."""
    return dt.datetime.fromtimestamp(now_us / 1e6, tz=zone).date()
