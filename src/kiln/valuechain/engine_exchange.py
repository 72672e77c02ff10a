"""The value chain engine's commands for master data beyond materials, and for exchanging data
with other systems: routings, locations, master data as CSV files, and B2MML documents.

Part of target `valuechain` (`engine_commands` registers these handlers). Converting and
validating documents is CPU work (building MESA's schemas alone takes seconds, once), so it
runs in a worker thread, never on the event loop.

Imports change data the way the rest of the engine does: CSV master data and B2MML material
definitions add or replace what they name, checked as a whole, in one transaction; B2MML lots
are received (a lot that exists is refused); an operations schedule creates production's work
orders (bus command to `production`); an operations performance books the consumption and
production it reports in one transaction (a movement refused books nothing of the document),
with ids derived from the document, the order and the lot so that importing it again books
nothing twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from kiln.core.bus import Command, CommandError, CommandFailure
from kiln.db.sql import in_parts
from kiln.valuechain import b2mml
from kiln.valuechain.documents import LOCATION, ROUTING
from kiln.valuechain.locations import Location, check_locations
from kiln.valuechain.lots import Consume, LotState, Produce, Receive, TransactionRefused
from kiln.valuechain.master_csv import export_master, import_master
from kiln.valuechain.routing import Routing, check_routings
from kiln.valuechain.schema import VC_LOT_TRANSACTIONS

if TYPE_CHECKING:
    from kiln.valuechain.engine import ValuechainEngine
    from kiln.valuechain.store import ValuechainStore

Handler = Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]
DocumentName = Literal[
    "material-definitions", "material-lots", "operations-schedule", "operations-performance"
]
DOCUMENTS: tuple[str, ...] = (
    "material-definitions",
    "material-lots",
    "operations-schedule",
    "operations-performance",
)
PRODUCTION_TARGET = "production"
PRODUCTION_TIMEOUT_S = 5.0
MAX_EXPORT_LOTS = 50_000
SENDER = "Kiln"


def _invalid(message: str) -> CommandError:
    return CommandError(CommandFailure.INVALID, message)


def _text(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise _invalid(f"{key!r} must be a non-empty string")
    return value


def _document(args: Mapping[str, Any]) -> str:
    name = _text(args, "document")
    if name not in DOCUMENTS:
        raise _invalid(f"unknown B2MML document {name!r}; known: {', '.join(DOCUMENTS)}")
    return name


class ExchangeCommands:
    """Handlers of routings, locations, CSV master data and B2MML for one engine."""

    def __init__(self, engine: ValuechainEngine) -> None:
        self.engine = engine

    def handlers(self) -> dict[str, Handler]:
        return {
            "routings": self._routings,
            "routing_put": self._routing_put,
            "routing_delete": self._routing_delete,
            "locations": self._locations,
            "location_put": self._location_put,
            "location_delete": self._location_delete,
            "master_export": self._master_export,
            "master_import": self._master_import,
            "b2mml_export": self._b2mml_export,
            "b2mml_import": self._b2mml_import,
        }

    # -- routings and locations ----------------------------------------------------------------

    async def _routings(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        docs = await self.engine.read(lambda: self.engine.store.documents(ROUTING, limit=100_000))
        return {"routings": [d.doc.model_dump(mode="json") for d in docs]}

    async def _routing_put(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        routing = Routing.model_validate(args.get("routing"))
        store = self.engine.store

        def put() -> None:
            check_routings([routing], store.master_data())
            store.put(ROUTING, routing)

        await self.engine.write(put)
        return {"routing": routing.model_dump(mode="json")}

    async def _routing_delete(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        product = _text(args, "product")
        if not await self.engine.write(lambda: self.engine.store.remove(ROUTING, product)):
            raise LookupError(f"no routing for {product!r}")
        return {"deleted": product}

    async def _locations(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        docs = await self.engine.read(lambda: self.engine.store.documents(LOCATION, limit=100_000))
        return {"locations": [d.doc.model_dump(mode="json") for d in docs]}

    async def _location_put(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        location = Location.model_validate(args.get("location"))
        known = args.get("known_paths")
        paths = known if isinstance(known, list) else None
        store = self.engine.store

        def put() -> None:
            others = [d.doc for d in store.documents(LOCATION, limit=100_000)]
            merged = [o for o in others if o.code != location.code] + [location]
            check_locations(merged, paths)
            store.put(LOCATION, location)

        await self.engine.write(put)
        return {"location": location.model_dump(mode="json")}

    async def _location_delete(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        code = _text(args, "code")
        store = self.engine.store

        def delete() -> bool:
            children = [
                d.doc.code for d in store.documents(LOCATION, limit=100_000) if d.doc.parent == code
            ]
            if children:
                raise ValueError(
                    f"location {code!r} holds {', '.join(children)}: move or delete them first"
                )
            return store.remove(LOCATION, code)

        if not await self.engine.write(delete):
            raise LookupError(f"no location {code!r}")
        return {"deleted": code}

    # -- CSV -----------------------------------------------------------------------------------

    async def _master_export(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        store = self.engine.store

        def export() -> dict[str, str]:
            routings = [d.doc for d in store.documents(ROUTING, limit=100_000)]
            locations = [d.doc for d in store.documents(LOCATION, limit=100_000)]
            return export_master(store.master_data(), routings, locations)

        return {"files": await self.engine.read(export)}

    async def _master_import(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        files = args.get("files")
        if not isinstance(files, Mapping) or not all(isinstance(v, str) for v in files.values()):
            raise _invalid("'files' must map file names (materials.csv, ...) to their text")
        known = args.get("known_paths")
        paths = known if isinstance(known, list) else None
        store = self.engine.store

        def load() -> dict[str, int]:
            parsed = import_master(dict(files), known_paths=paths)
            store.put_master(
                parsed.master.materials, parsed.master.boms, parsed.routings, parsed.locations
            )
            return {
                "materials": len(parsed.master.materials),
                "boms": len(parsed.master.boms),
                "routings": len(parsed.routings),
                "locations": len(parsed.locations),
            }

        return {"imported": await self.engine.write(load)}

    # -- B2MML ---------------------------------------------------------------------------------

    async def _b2mml_export(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        name = _document(args)
        now = e.now_us()
        store = e.store
        if name == "material-definitions":
            xml = await e.read(
                lambda: b2mml.export_material_definitions(
                    store.master_data(), created_us=now, sender=SENDER
                )
            )
        elif name == "material-lots":
            material = args.get("material") if isinstance(args.get("material"), str) else None

            def lots_xml() -> bytes:
                lots = store.lots(material=material, limit=MAX_EXPORT_LOTS)
                edges = store.edges_from([lot.id for lot in lots])
                targets = store.lots_by_id(e.target for e in edges)
                parts = b2mml.split_parts({**{lot.id: lot for lot in lots}, **targets}, edges)
                return b2mml.export_material_lots(lots, created_us=now, parts=parts, sender=SENDER)

            xml = await e.read(lots_xml)
        elif name == "operations-schedule":
            orders = await self._production_orders(args)
            xml = await e.read(
                lambda: b2mml.export_operations_schedule(
                    orders, schedule_id=f"kiln-{now}", created_us=now, sender=SENDER
                )
            )
        else:
            orders = await self._production_orders(args)
            xml = await e.read(
                lambda: b2mml.export_operations_performance(
                    [store.order_performance(o.id, state=o.state) for o in orders],
                    performance_id=f"kiln-{now}",
                    created_us=now,
                    sender=SENDER,
                )
            )
        return {"document": name, "xml": xml.decode("utf-8")}

    async def _production_orders(self, args: Mapping[str, Any]) -> list[b2mml.ScheduledOrder]:
        wanted = args.get("orders")
        ask: dict[str, Any] = {"limit": 5000}
        states = args.get("states")
        if isinstance(states, list):
            ask["states"] = states
        try:
            reply = await self.engine.platform.bus.request(
                Command(PRODUCTION_TARGET, "orders", ask), timeout_s=PRODUCTION_TIMEOUT_S
            )
        except CommandError as err:
            raise _invalid(f"production refused: {err}") from None
        except Exception as err:
            raise CommandError(
                CommandFailure.UNAVAILABLE, f"production could not be asked: {err}"
            ) from None
        orders = [b2mml.ScheduledOrder.model_validate(o) for o in reply.get("orders", [])]
        if isinstance(wanted, list):
            orders = [o for o in orders if o.id in wanted]
        if not orders:
            raise LookupError("no work orders to put in the document")
        return orders

    async def _b2mml_import(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        name = _document(args)
        xml = _text(args, "xml")
        user = args.get("user") if isinstance(args.get("user"), str) else ""
        now = e.now_us()
        store = e.store
        if name == "material-definitions":
            master = await e.read(lambda: b2mml.import_material_definitions(xml))
            await e.write(lambda: store.put_master(master.materials, master.boms))
            return {"imported": {"materials": len(master.materials), "boms": len(master.boms)}}
        if name == "material-lots":
            found = await e.read(lambda: b2mml.import_material_lots(xml, default_time_us=now))

            def receive_all() -> dict[str, Any]:
                received: list[str] = []
                skipped: list[dict[str, str]] = []
                receipts: list[Receive] = []
                for lot in found.lots:
                    if lot.state is not LotState.AVAILABLE or lot.quantity <= 0:
                        # Only stock that is there to use arrives; a consumed or shipped lot
                        # is history of the sender's (its sublots come as their own lots).
                        skipped.append({"lot": lot.id, "state": lot.state.value})
                        continue
                    receipts.append(
                        Receive(
                            id=f"b2mml-receive-{lot.id}"[:64],
                            time_us=now,
                            user=str(user),
                            lot_id=lot.id,
                            material=lot.material,
                            quantity=lot.quantity,
                            unit=lot.unit,
                            location=lot.location,
                            supplier=lot.supplier or "b2mml",
                            supplier_lot=lot.supplier_lot,
                            purchase_order=lot.purchase_order,
                        )
                    )
                    received.append(lot.id)
                with store.engine.begin() as conn:  # all of them or, on a refusal, none
                    for receipt in receipts:
                        store.apply_in(conn, receipt)
                return {"lots": received, "skipped": skipped}

            return {"imported": await e.write(receive_all)}
        if name == "operations-schedule":
            schedule = await e.read(lambda: b2mml.import_operations_schedule(xml))
            if args.get("dry_run"):
                # What it would create, for the API to check the caller plans on each line.
                return {"orders": [{"id": o.id, "line": o.line} for o in schedule.orders]}
            created: list[str] = []
            for order in schedule.orders:
                body = order.model_dump(mode="json", exclude={"version"})
                try:
                    await e.platform.bus.request(
                        Command(PRODUCTION_TARGET, "order_create", {"order": body}),
                        timeout_s=PRODUCTION_TIMEOUT_S,
                    )
                except CommandError as err:
                    raise _invalid(
                        f"production refused order {order.id!r} (orders before it were "
                        f"created: {', '.join(created) or 'none'}): {err}"
                    ) from None
                created.append(order.id)
            return {"imported": {"orders": created, "schedule": schedule.id}}
        performance = await e.read(lambda: b2mml.import_operations_performance(xml))
        booked, already = await e.write(
            lambda: _book_performance(store, performance, now, str(user))
        )
        return {"imported": {"transactions": booked, "already_booked": already}}


def _book_performance(
    store: ValuechainStore, doc: b2mml.OperationsPerformanceDoc, now: int, user: str
) -> tuple[int, int]:
    """Consume and produce transactions for the reported movements, all in one database
    transaction: a movement the ledger refuses books nothing of the document (the refusal names
    it), and one booked earlier (the same document imported again) is counted, not booked
    twice."""
    planned: list[tuple[b2mml.OrderPerformance, b2mml.MaterialMovement, str, str | None]] = []
    seen: set[str] = set()
    for order in doc.orders:
        for m in order.movements:
            tx_id = _movement_id(doc.id, order.order_id, m)
            if tx_id in seen:
                # One key, one id: booking the second would need an id of its own, and
                # dropping it would lose stock silently.
                what = _movement_name(order.order_id, m)
                raise ValueError(f"the document reports {what} twice; nothing was booked")
            seen.add(tx_id)
            planned.append((order, m, tx_id, _legacy_id(doc.id, order.order_id, m)))
    booked = already = 0
    try:
        with store.engine.begin() as conn:  # the whole document or, on a refusal, nothing
            ids = [i for *_, tx_id, old in planned for i in (tx_id, old) if i is not None]
            earlier = _applied(conn, ids)
            for order, m, tx_id, old in planned:
                if tx_id in earlier or old in earlier:
                    already += 1
                    continue
                try:
                    store.apply_in(conn, _movement_tx(order.order_id, m, tx_id, now, user))
                except TransactionRefused as err:
                    what = _movement_name(order.order_id, m)
                    raise TransactionRefused(f"{what}: {err}; nothing was booked") from None
                booked += 1
    except IntegrityError as err:
        # A concurrent writer booked one of these ids (or made a lot produced here) between
        # our read and our write (PostgreSQL): the same answer as the store's `apply`.
        raise TransactionRefused(
            f"performance {doc.id!r} conflicts with transactions booked meanwhile; nothing "
            "was booked, import it again"
        ) from err
    return booked, already


def _movement_id(doc_id: str, order_id: str, m: b2mml.MaterialMovement) -> str:
    """`b2mml-<c|p>-<digest>`: 40 characters whatever the ids' lengths, one per (document,
    order, use, lot). The digest is of the four as a JSON list, so no two keys read alike
    (joined with `-`, document `a-b` with order `c` would be document `a` with order `b-c`)."""
    key = json.dumps([doc_id, order_id, m.use.value, m.lot_id], separators=(",", ":"))
    return f"b2mml-{m.use.value[0].lower()}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def _legacy_id(doc_id: str, order_id: str, m: b2mml.MaterialMovement) -> str | None:
    """The id imports before `_movement_id` gave the movement, so a document booked then and
    imported again now is recognised as booked. None where that id was cut at 64 characters:
    it may stand for another lot of the order, and must not hide this one."""
    whole = f"b2mml-{doc_id}-{order_id}-{m.use.value[0]}-{m.lot_id}"
    return whole if len(whole) <= 64 else None


def _movement_name(order_id: str, m: b2mml.MaterialMovement) -> str:
    return f"order {order_id!r} {m.use.value.lower()} lot {m.lot_id!r}"


def _applied(conn: Connection, tx_ids: list[str]) -> set[str]:
    """Which of `tx_ids` the lot ledger has applied."""
    ids = list(dict.fromkeys(tx_ids))
    found: set[str] = set()
    for part in in_parts(ids):
        query = select(VC_LOT_TRANSACTIONS.c.id).where(VC_LOT_TRANSACTIONS.c.id.in_(part))
        found.update(conn.execute(query).scalars())
    return found


def _movement_tx(
    order_id: str, m: b2mml.MaterialMovement, tx_id: str, now: int, user: str
) -> Consume | Produce:
    if m.use is b2mml.MaterialUse.CONSUMED:
        return Consume(
            id=tx_id,
            time_us=now,
            user=user,
            lot_id=m.lot_id,
            quantity=m.quantity,
            order_id=order_id,
        )
    # The document says nothing of where the lot lies. (A lot that exists already is refused by
    # the ledger, so there is no location of its own to keep.)
    return Produce(
        id=tx_id,
        time_us=now,
        user=user,
        lot_id=m.lot_id,
        material=m.material,
        quantity=m.quantity,
        unit=m.unit,
        location="b2mml",
        order_id=order_id,
    )
