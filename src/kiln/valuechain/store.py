"""The value chain store: master data (materials and bills of materials), lots, their
transaction log and genealogy edges. SQLite by default, PostgreSQL with the same code and
migrations (`kiln.db`).

Synchronous, like the other relational stores: callers use it from a worker thread, one writer
at a time; readers may read meanwhile.

The rules live in the pure cores, not here. Master data is checked as a whole by
`kiln.valuechain.master.MasterData` on every change, so a change that would leave it unusable
(a cycle in the bills of materials, a component nobody knows) is refused with the core's
message and nothing is written. A lot transaction is checked and computed by
`kiln.valuechain.lots.Ledger` over just the lots it names (and the consumption booked into its
order), loaded inside the database transaction that then writes the changed lots, the new
edges, the booking and the log row: all of it or, on a refusal, nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    Connection,
    and_,
    delete,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from kiln.db.sql import in_parts, subtree, upsert
from kiln.valuechain import migrations
from kiln.valuechain.b2mml import MaterialMovement, MaterialUse, OrderPerformance
from kiln.valuechain.documents import LOCATION, ROUTING, DocumentStore
from kiln.valuechain.locations import Location
from kiln.valuechain.lots import (
    Change,
    Consume,
    GenealogyEdge,
    Ledger,
    Lot,
    LotState,
    Merge,
    Produce,
    Split,
    Transaction,
    TransactionRefused,
    add,
)
from kiln.valuechain.master import Bom, MasterData, MasterDataError, Material
from kiln.valuechain.routing import Routing
from kiln.valuechain.schema import (
    VC_BOMS,
    VC_GENEALOGY_EDGES,
    VC_LOT_TRANSACTIONS,
    VC_LOTS,
    VC_MATERIALS,
    VC_ORDER_CONSUMPTION,
)

__all__ = ["ValuechainStore"]

_ORDER_STATES = ("planned", "released", "running", "paused", "completed", "cancelled")


_TRANSACTION: TypeAdapter[Transaction] = TypeAdapter(Transaction)

# Lot fields kept in their own column, all but the quantity (text) and the state (its value).
_LOT_TEXT_FIELDS = (
    "id",
    "material",
    "unit",
    "location",
    "supplier",
    "supplier_lot",
    "purchase_order",
    "order_id",
    "customer",
    "shipment_id",
    "sales_order",
    "hold_reason",
)


class ValuechainStore(DocumentStore):
    """The value chain store in one database (SQLite or PostgreSQL).

    Call `open` before anything else and `close` at the end; the store can be opened again.
    `clock` gives master data's `updated_us`.
    """

    what = "value chain store"

    @staticmethod
    def upgrade(conn: Connection) -> None:
        migrations.upgrade(conn)

    # -- master data ----------------------------------------------------------------------

    def put_material(self, material: Material, *, updated_us: int | None = None) -> None:
        """Add or replace (by code); MasterDataError, and nothing written, if the master data
        as a whole would then be invalid (say, a material with a bill turned bought)."""
        with self.engine.begin() as conn:
            data = _lock_master(conn)
            materials = {m.code: m for m in data.materials} | {material.code: material}
            _checked(materials.values(), data.boms)
            row = {
                "code": material.code,
                "definition": material.model_dump(mode="json"),
                "updated_us": self._stamp(updated_us),
            }
            upsert(conn, VC_MATERIALS, ["code"], [row])

    def delete_material(self, code: str) -> bool:
        """Whether there was one to delete; MasterDataError, and nothing deleted, if a bill of
        materials still names it (delete or change that bill first)."""
        with self.engine.begin() as conn:
            data = _lock_master(conn)
            if all(m.code != code for m in data.materials):
                return False
            _checked((m for m in data.materials if m.code != code), data.boms)
            conn.execute(delete(VC_MATERIALS).where(VC_MATERIALS.c.code == code))
        return True

    def put_master(
        self,
        materials: Iterable[Material],
        boms: Iterable[Bom],
        routings: Iterable[Routing] = (),
        locations: Iterable[Location] = (),
    ) -> None:
        """Add or replace materials and bills (by code and parent), routings and locations, in
        one transaction: MasterDataError, and nothing written, if the master data as a whole
        would then be invalid. Nothing is deleted (an import names what it changes)."""
        now = self._clock.now_us()
        with self.engine.begin() as conn:
            data = _lock_master(conn)
            merged_materials = {m.code: m for m in data.materials} | {m.code: m for m in materials}
            merged_boms = {b.parent: b for b in data.boms} | {b.parent: b for b in boms}
            _checked(merged_materials.values(), merged_boms.values())
            material_rows = [
                {"code": m.code, "definition": m.model_dump(mode="json"), "updated_us": now}
                for m in merged_materials.values()
            ]
            bom_rows = [
                {"parent": b.parent, "definition": b.model_dump(mode="json"), "updated_us": now}
                for b in merged_boms.values()
            ]
            if material_rows:
                upsert(conn, VC_MATERIALS, ["code"], material_rows)
            if bom_rows:
                upsert(conn, VC_BOMS, ["parent"], bom_rows)
            for routing in routings:
                self.put_in(conn, ROUTING, routing)
            for location in locations:
                self.put_in(conn, LOCATION, location)

    def materials(self) -> list[Material]:
        """Every material, by code."""
        with self.engine.connect() as conn:
            return list(_master_data(conn).materials)

    def put_bom(self, bom: Bom, *, updated_us: int | None = None) -> None:
        """Add or replace the bill of materials of `bom.parent`; MasterDataError, and nothing
        written, if the master data as a whole would then be invalid (a cycle, an unknown
        component, a bill for a bought material)."""
        with self.engine.begin() as conn:
            data = _lock_master(conn)
            boms = {b.parent: b for b in data.boms} | {bom.parent: bom}
            _checked(data.materials, boms.values())
            row = {
                "parent": bom.parent,
                "definition": bom.model_dump(mode="json"),
                "updated_us": self._stamp(updated_us),
            }
            upsert(conn, VC_BOMS, ["parent"], [row])

    def delete_bom(self, parent: str) -> bool:
        """Whether `parent` had a bill of materials to delete."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(VC_BOMS).where(VC_BOMS.c.parent == parent))
        return result.rowcount > 0

    def boms(self) -> list[Bom]:
        """Every bill of materials, by parent."""
        with self.engine.connect() as conn:
            return list(_master_data(conn).boms)

    def master_data(self) -> MasterData:
        """Materials and bills of materials together, as planning takes them."""
        with self.engine.connect() as conn:
            return _master_data(conn)

    # -- lots -----------------------------------------------------------------------------

    def apply(self, tx: Transaction) -> Change:
        """Apply `tx` as `Ledger.apply` would to the stored lots, and persist what it did in
        one database transaction; TransactionRefused (the ledger's reason) and nothing written
        if the lots' state does not allow it."""
        try:
            with self.engine.begin() as conn:
                change = self.apply_in(conn, tx)
        except IntegrityError as e:
            # A concurrent writer took the transaction or a new lot's id between our read and
            # our write (PostgreSQL; SQLite has one writer). The same refusal as the ledger's.
            raise TransactionRefused(
                f"transaction {tx.id!r} conflicts with one applied meanwhile: "
                "its id or a new lot's id is taken"
            ) from e
        return change

    def apply_in(self, conn: Connection, tx: Transaction) -> Change:
        """`apply` inside the caller's database transaction (a goods receipt books its lot
        with the purchase order's change), with its `lot` event in the outbox."""
        ledger = _ledger_for(conn, tx)
        change = ledger.apply(tx)
        _write(conn, change)
        self.emit(conn, "lot", tx.id, _lot_event(change))
        return change

    def lot(self, lot_id: str) -> Lot | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(VC_LOTS).where(VC_LOTS.c.id == lot_id)).mappings().first()
        return None if row is None else _lot(row)

    def lots(
        self,
        *,
        material: str | None = None,
        states: Iterable[LotState] | None = None,
        location_prefix: str | None = None,
        limit: int = 1000,
    ) -> list[Lot]:
        """Lots by id (byte order), at most `limit`: of `material`, in one of `states`, at
        `location_prefix` or a location below it (segment-wise: `wh/a` holds `wh/a/bin1` but
        not `wh/ab`)."""
        c = VC_LOTS.c
        with self.engine.connect() as conn:
            query = select(VC_LOTS)
            if material is not None:
                query = query.where(c.material == material)
            if states is not None:
                query = query.where(c.state.in_([LotState(s).value for s in states]))
            if location_prefix is not None:
                query = query.where(subtree(conn, c.location, location_prefix))
            query = query.order_by(_bytewise(conn, c.id)).limit(limit)
            return [_lot(r) for r in conn.execute(query).mappings()]

    def party_lots(
        self,
        parties: Iterable[str],
        *,
        material: str | None = None,
        states: Iterable[LotState] | None = None,
        location_prefix: str | None = None,
        limit: int = 1000,
    ) -> list[Lot]:
        """The lots a partner has a part in: received from one of `parties` (a supplier's) or
        shipped to one (a customer's), by id, filtered as `lots` filters."""
        c = VC_LOTS.c
        codes = sorted(set(parties))
        with self.engine.connect() as conn:
            query = select(VC_LOTS).where(or_(c.supplier.in_(codes), c.customer.in_(codes)))
            if material is not None:
                query = query.where(c.material == material)
            if states is not None:
                query = query.where(c.state.in_([LotState(s).value for s in states]))
            if location_prefix is not None:
                query = query.where(subtree(conn, c.location, location_prefix))
            query = query.order_by(_bytewise(conn, c.id)).limit(limit)
            return [_lot(r) for r in conn.execute(query).mappings()]

    def lots_by_id(self, lot_ids: Iterable[str]) -> dict[str, Lot]:
        """The lots of `lot_ids` that exist."""
        ids = list(dict.fromkeys(lot_ids))
        out: dict[str, Lot] = {}
        with self.engine.connect() as conn:
            for part in in_parts(ids):
                for row in conn.execute(select(VC_LOTS).where(VC_LOTS.c.id.in_(part))).mappings():
                    out[row["id"]] = _lot(row)
        return out

    def stock(self) -> dict[str, Decimal]:
        """Available quantity per material: what planning nets (held lots are not usable)."""
        c = VC_LOTS.c
        totals: dict[str, Decimal] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.material, c.quantity).where(c.state == LotState.AVAILABLE.value)
            )
            for material, quantity in rows:
                totals[material] = add(totals.get(material, Decimal(0)), Decimal(quantity))
        return totals

    def inventory(self, *, location_prefix: str | None = None) -> list[dict[str, Any]]:
        """Stock on hand by location, material, unit and state (available or held): the sum
        and the number of lots, sorted by location then material."""
        c = VC_LOTS.c
        held = (LotState.AVAILABLE.value, LotState.HELD.value)
        groups: dict[tuple[str, str, str, str], list[Decimal]] = {}
        with self.engine.connect() as conn:
            query = select(c.location, c.material, c.unit, c.state, c.quantity).where(
                c.state.in_(held)
            )
            if location_prefix is not None:
                query = query.where(subtree(conn, c.location, location_prefix))
            for location, material, unit, state, quantity in conn.execute(query):
                groups.setdefault((location, material, unit, state), []).append(Decimal(quantity))
        return [
            {
                "location": location,
                "material": material,
                "unit": unit,
                "state": state,
                "quantity": str(add(*quantities)),
                "lots": len(quantities),
            }
            for (location, material, unit, state), quantities in sorted(groups.items())
        ]

    def orders_of(self, lot_ids: Iterable[str]) -> dict[str, tuple[set[str], set[str]]]:
        """Production orders that consumed or produced any of `lot_ids`: order -> (the lots
        among them it consumed, the ones it produced)."""
        ids = list(dict.fromkeys(lot_ids))
        out: dict[str, tuple[set[str], set[str]]] = {}
        consumption, lots = VC_ORDER_CONSUMPTION.c, VC_LOTS.c
        with self.engine.connect() as conn:
            for part in in_parts(ids):
                used = select(consumption.order_id, consumption.lot_id).where(
                    consumption.lot_id.in_(part)
                )
                for order_id, lot_id in conn.execute(used):
                    out.setdefault(order_id, (set(), set()))[0].add(lot_id)
                made = select(lots.order_id, lots.id).where(
                    and_(lots.id.in_(part), lots.order_id.is_not(None))
                )
                for order_id, lot_id in conn.execute(made):
                    out.setdefault(order_id, (set(), set()))[1].add(lot_id)
        return out

    def order_performance(self, order_id: str, *, state: str | None = None) -> OrderPerformance:
        """What production order `order_id` consumed (per lot, in booking order) and produced
        (per lot made, the quantity its produce transaction made). Reads the produce
        transactions of the log: fine for exports of a few orders."""
        consumption, lots, log = VC_ORDER_CONSUMPTION.c, VC_LOTS.c, VC_LOT_TRANSACTIONS.c
        movements: list[MaterialMovement] = []
        with self.engine.connect() as conn:
            used = conn.execute(
                select(consumption.lot_id, consumption.quantity, lots.material, lots.unit)
                .join(VC_LOTS, lots.id == consumption.lot_id)
                .where(consumption.order_id == order_id)
                .order_by(consumption.position)
            ).all()
            for lot_id, quantity, material, unit in used:
                movements.append(
                    MaterialMovement(
                        lot_id=lot_id,
                        material=material,
                        quantity=Decimal(quantity),
                        unit=unit,
                        use=MaterialUse.CONSUMED,
                    )
                )
            made = {
                lot_id
                for (lot_id,) in conn.execute(select(lots.id).where(lots.order_id == order_id))
            }
            if made:
                rows = conn.execute(
                    select(log.body).where(log.kind == "produce").order_by(log.seq)
                ).all()
                for (body,) in rows:
                    if body.get("order_id") == order_id and body.get("lot_id") in made:
                        movements.append(
                            MaterialMovement(
                                lot_id=body["lot_id"],
                                material=body["material"],
                                quantity=Decimal(body["quantity"]),
                                unit=body["unit"],
                                use=MaterialUse.PRODUCED,
                            )
                        )
        return OrderPerformance(
            order_id=order_id,
            state=state if state in _ORDER_STATES else None,  # type: ignore[arg-type]
            movements=tuple(movements),
        )

    def edges_after(
        self, last_id: int
    ) -> tuple[list[tuple[str, str, str, str, str, str | None, int]], int]:
        """The edges recorded after edge id `last_id`, in order, as rows the lineage index
        takes (`LineageIndex.add_rows`), and the last id among them (`last_id` if none)."""
        c = VC_GENEALOGY_EDGES.c
        query = (
            select(
                c.id, c.source, c.target, c.kind, c.quantity, c.transaction_id, c.order_id,
                c.time_us,
            )
            .where(c.id > last_id)
            .order_by(c.id)
        )  # fmt: skip
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return [], last_id
        return [tuple(r[1:]) for r in rows], int(rows[-1][0])

    def edges_from(self, lot_ids: Iterable[str]) -> list[GenealogyEdge]:
        """The edges leaving any of `lot_ids` (where their material went), in recorded order."""
        return self._edges(VC_GENEALOGY_EDGES.c.source, lot_ids)

    def edges_to(self, lot_ids: Iterable[str]) -> list[GenealogyEdge]:
        """The edges entering any of `lot_ids` (what they were made of), in recorded order."""
        return self._edges(VC_GENEALOGY_EDGES.c.target, lot_ids)

    def transactions(self, limit: int = 1000) -> list[Transaction]:
        """The last `limit` transactions applied, oldest first."""
        c = VC_LOT_TRANSACTIONS.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.body).order_by(c.seq.desc()).limit(limit)).all()
        return [_TRANSACTION.validate_python(body) for (body,) in reversed(rows)]

    # -- helpers --------------------------------------------------------------------------

    def _stamp(self, updated_us: int | None) -> int:
        return self._clock.now_us() if updated_us is None else updated_us

    def _edges(self, column: Any, lot_ids: Iterable[str]) -> list[GenealogyEdge]:
        ids = list(dict.fromkeys(lot_ids))
        rows: list[Any] = []
        with self.engine.connect() as conn:
            for part in in_parts(ids):
                rows.extend(
                    conn.execute(select(VC_GENEALOGY_EDGES).where(column.in_(part))).mappings()
                )
        rows.sort(key=lambda r: r["id"])
        return [_edge(r) for r in rows]


# -- master data ------------------------------------------------------------------------------


def _master_data(conn: Connection) -> MasterData:
    materials = [
        Material.model_validate(d) for (d,) in conn.execute(select(VC_MATERIALS.c.definition))
    ]
    boms = [Bom.model_validate(d) for (d,) in conn.execute(select(VC_BOMS.c.definition))]
    # Sorted here, not with ORDER BY: collations differ between databases.
    return MasterData(
        materials=tuple(sorted(materials, key=lambda m: m.code)),
        boms=tuple(sorted(boms, key=lambda b: b.parent)),
    )


def _lock_master(conn: Connection) -> MasterData:
    """The master data, read so that no other writer changes it before this transaction ends:
    a check of the whole is only good if the whole stays as checked."""
    if conn.dialect.name == "postgresql":
        # EXCLUSIVE lets readers read and stops other writers. (SQLite has one writer anyway.)
        conn.execute(text("LOCK TABLE vc_materials, vc_boms IN EXCLUSIVE MODE"))
    return _master_data(conn)


def _checked(materials: Iterable[Material], boms: Iterable[Bom]) -> MasterData:
    """`MasterData` of these, or MasterDataError with the core's own message."""
    try:
        return MasterData(
            materials=tuple(sorted(materials, key=lambda m: m.code)),
            boms=tuple(sorted(boms, key=lambda b: b.parent)),
        )
    except ValidationError as e:
        raise MasterDataError(_reason(e)) from e


def _reason(error: ValidationError) -> str:
    """The message a validator raised, without pydantic's wrapping."""
    reasons = []
    for detail in error.errors():
        cause = detail.get("ctx", {}).get("error")
        reasons.append(str(cause) if cause is not None else str(detail["msg"]))
    return "; ".join(reasons)


# -- lots -------------------------------------------------------------------------------------


class _LoadedLedger(Ledger):
    """A ledger holding only what one transaction needs, loaded from the store.

    The ledger's state is private to it; this subclass, kept in the store module, is the one
    place that fills it from rows, so the pure ledger keeps `apply` as its only way in."""

    @classmethod
    def holding(
        cls,
        lots: Iterable[Lot],
        *,
        consumed: dict[str, dict[str, Decimal]],
        applied: Iterable[str],
    ) -> _LoadedLedger:
        ledger = cls()
        ledger._lots = {lot.id: lot for lot in lots}
        ledger._consumed = consumed
        ledger._tx_ids = set(applied)
        return ledger


def _named_lots(tx: Transaction) -> list[str]:
    """Every lot id `tx` names: those it changes and those it would create (to refuse ids
    that are taken)."""
    if isinstance(tx, Split):
        return [tx.lot_id, *(p.lot_id for p in tx.parts)]
    if isinstance(tx, Merge):
        return [*tx.lot_ids, tx.into]
    return [tx.lot_id]


def _ledger_for(conn: Connection, tx: Transaction) -> _LoadedLedger:
    """A ledger with the lots `tx` names (locked on PostgreSQL until the transaction ends), the
    consumption booked into its order, and whether `tx` was applied before."""
    ids = list(dict.fromkeys(_named_lots(tx)))
    lots = conn.execute(select(VC_LOTS).where(VC_LOTS.c.id.in_(ids)).with_for_update()).mappings()
    consumed: dict[str, dict[str, Decimal]] = {}
    if isinstance(tx, Consume | Produce):
        consumed[tx.order_id] = _consumption(conn, tx.order_id)
    seen = (
        conn.execute(select(VC_LOT_TRANSACTIONS.c.id).where(VC_LOT_TRANSACTIONS.c.id == tx.id))
        .scalars()
        .all()
    )
    return _LoadedLedger.holding((_lot(r) for r in lots), consumed=consumed, applied=seen)


def _consumption(conn: Connection, order_id: str) -> dict[str, Decimal]:
    """lot -> quantity booked into `order_id`, in the order the lots were first booked."""
    c = VC_ORDER_CONSUMPTION.c
    rows = conn.execute(
        select(c.lot_id, c.quantity)
        .where(c.order_id == order_id)
        .order_by(c.position)
        .with_for_update()
    ).all()
    return {lot_id: Decimal(q) for lot_id, q in rows}


def _write(conn: Connection, change: Change) -> None:
    """Persist what `Ledger.apply` did: lots, edges, the booking, the log row."""
    tx = change.transaction
    upsert(conn, VC_LOTS, ["id"], [_lot_row(lot) for lot in change.lots])
    if change.edges:
        conn.execute(insert(VC_GENEALOGY_EDGES), [_edge_row(e) for e in change.edges])
    for order_id, lot_id, quantity in change.consumed:
        _book(conn, order_id, lot_id, quantity)
    conn.execute(
        insert(VC_LOT_TRANSACTIONS),
        {
            "id": tx.id,
            "kind": tx.kind,
            "time_us": tx.time_us,
            "user_name": tx.user,
            "body": tx.model_dump(mode="json"),
        },
    )


def _book(conn: Connection, order_id: str, lot_id: str, quantity: Decimal) -> None:
    """Add `quantity` of `lot_id` to what `order_id` consumed (the rows were read, and on
    PostgreSQL locked, by `_ledger_for` in this transaction)."""
    booked = _consumption(conn, order_id)
    # The same exact sum the ledger books (`add` traps any rounding).
    row = {
        "order_id": order_id,
        "lot_id": lot_id,
        "quantity": str(add(booked.get(lot_id, Decimal(0)), quantity)),
        "position": list(booked).index(lot_id) if lot_id in booked else len(booked),
    }
    upsert(conn, VC_ORDER_CONSUMPTION, ["order_id", "lot_id"], [row])


# -- rows -------------------------------------------------------------------------------------


def _lot_row(lot: Lot) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(lot, name) for name in _LOT_TEXT_FIELDS}
    row["quantity"] = str(lot.quantity)
    row["state"] = lot.state.value
    row["created_us"] = lot.created_us
    row["updated_us"] = lot.updated_us
    return row


def _lot(row: Any) -> Lot:
    return Lot(
        **{name: row[name] for name in _LOT_TEXT_FIELDS},
        quantity=Decimal(row["quantity"]),
        state=LotState(row["state"]),
        created_us=int(row["created_us"]),
        updated_us=int(row["updated_us"]),
    )


def _edge_row(edge: GenealogyEdge) -> dict[str, Any]:
    return {
        "source": edge.source,
        "target": edge.target,
        "kind": edge.kind.value,
        "quantity": str(edge.quantity),
        "transaction_id": edge.transaction_id,
        "order_id": edge.order_id,
        "time_us": edge.time_us,
    }


def _edge(row: Any) -> GenealogyEdge:
    return GenealogyEdge(
        source=row["source"],
        target=row["target"],
        kind=row["kind"],
        quantity=Decimal(row["quantity"]),
        transaction_id=row["transaction_id"],
        order_id=row["order_id"],
        time_us=int(row["time_us"]),
    )


# -- statements -------------------------------------------------------------------------------


def _bytewise(conn: Connection, column: Any) -> Any:
    """`column` ordered by bytes on both backends (PostgreSQL's default collation is not)."""
    return column.collate("C") if conn.dialect.name == "postgresql" else column


def _lot_event(change: Change) -> dict[str, Any]:
    """The outbox event of an applied transaction: what it was and the lots it left."""
    tx = change.transaction
    return {
        "transaction": tx.id,
        "type": tx.kind,
        "user": tx.user,
        "time_us": tx.time_us,
        "lots": [
            {
                "id": lot.id,
                "material": lot.material,
                "quantity": str(lot.quantity),
                "unit": lot.unit,
                "state": lot.state.value,
                "location": lot.location,
            }
            for lot in change.lots
        ],
    }
