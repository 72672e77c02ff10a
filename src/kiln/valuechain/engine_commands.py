"""The commands the value chain engine answers on the bus (target `valuechain`).

Reading: `organisations`, `organisation`, `sales_orders`, `sales_order`, `purchase_orders`,
`purchase_order`, `proposals`, `lots`, `lot`, `inventory`, `genealogy`, `transactions`,
`master`, `events`. Changing: `organisation_put`, `organisation_delete`, `material_put`,
`material_delete`, `bom_put`, `bom_delete`, `sales_order_create`, `sales_order_action`,
`sales_order_ship`, `purchase_order_create`, `purchase_order_action`, `purchase_order_receive`,
`plan_run`, `proposal_confirm`, `proposal_dismiss`, `lot_transaction`, `recall`.

Arguments are JSON; quantities are decimal strings (or integers), dates ISO `YYYY-MM-DD`, times
µs since the epoch. `parties` (a list of organisation codes) limits a read to the documents
and lots of those customers and suppliers: the API passes a partner's own organisations, so a
supplier's user never sees another's order, and a document outside them is answered as one
that does not exist. A refusal by a core is `invalid` with the core's reason; one that lost a
race (the document changed meanwhile, or its id is taken) is `invalid` with a message starting
`conflict: ` (the API answers 409).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from kiln.core.bus import Command, CommandError, CommandFailure
from kiln.valuechain import genealogy, mrp
from kiln.valuechain.documents import (
    ORDER_BOOKING,
    ORGANISATION,
    PLANNED_ORDER,
    PURCHASE_ORDER,
    SALES_ORDER,
    DocumentExists,
    PlannedOrder,
    ProposalState,
    StaleDocument,
    today_in,
)
from kiln.valuechain.engine_exchange import ExchangeCommands
from kiln.valuechain.lots import (
    GenealogyEdge,
    Hold,
    Lot,
    LotState,
    Receive,
    Ship,
    Transaction,
    TransactionRefused,
)
from kiln.valuechain.master import Bom, MasterDataError, Material
from kiln.valuechain.mrp import MrpInputError, OpenSupply, OrderKind
from kiln.valuechain.partners import Organisation, OrganisationKind, PartnerError
from kiln.valuechain.trade import (
    GoodsReceipt,
    PurchaseAction,
    PurchaseLine,
    PurchaseOrder,
    PurchaseState,
    SalesAction,
    SalesOrder,
    TradeRefused,
    act_purchase,
    act_sales,
    open_supply,
    receive,
    sales_demands,
    ship,
)

if TYPE_CHECKING:
    from kiln.valuechain.engine import ValuechainEngine

_TRANSACTION: TypeAdapter[Transaction] = TypeAdapter(Transaction)
PRODUCTION_TARGET = "production"
PRODUCTION_TIMEOUT_S = 5.0
# Production's orders that still make something (planning counts them as open supply).
_OPEN_WORK = ("planned", "released", "running", "paused")
_CLOSED_WORK = ("completed", "cancelled")
# Lot fields that name a party: the supplier's side and the customer's side. A partner sees a
# side only when it is that side's party (a customer does not learn who supplied the resin, a
# supplier not who bought what was made of it, even on a lot split off the one it supplied).
_SUPPLIER_FIELDS = ("supplier", "supplier_lot", "purchase_order")
_CUSTOMER_FIELDS = ("customer", "shipment_id", "sales_order")


def _invalid(message: str) -> CommandError:
    return CommandError(CommandFailure.INVALID, message)


def _missing(message: str) -> CommandError:
    return CommandError(CommandFailure.NOT_FOUND, message)


def _conflict(message: str) -> CommandError:
    return CommandError(CommandFailure.INVALID, "conflict: " + message)


def _str(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise _invalid(f"{key!r} must be a non-empty string")
    return value


def _opt_str(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _invalid(f"{key!r} must be a string")
    return value


def _opt_int(args: Mapping[str, Any], key: str, default: int | None = None) -> int | None:
    value = args.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{key!r} must be an integer")
    return value


def _limit(args: Mapping[str, Any], default: int = 500, most: int = 5_000) -> int:
    value = _opt_int(args, "limit", default) or default
    if not 1 <= value <= most:
        raise _invalid(f"'limit' must be between 1 and {most}")
    return value


def _decimal(args: Mapping[str, Any], key: str) -> Decimal:
    value = args.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _invalid(f'{key!r} must be a decimal number as text ("12.5") or an integer')
    try:
        return Decimal(value)
    except InvalidOperation:
        raise _invalid(f"{key!r}: {value!r} is not a number") from None


def _date(args: Mapping[str, Any], key: str, default: dt.date) -> dt.date:
    value = args.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _invalid(f"{key!r} must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _invalid(f"{key!r}: {value!r} is not a date YYYY-MM-DD") from None


def _str_list(args: Mapping[str, Any], key: str) -> list[str] | None:
    value = args.get(key)
    if value is None:
        return None
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise _invalid(f"{key!r} must be a list of strings")
    return value


def _parties(args: Mapping[str, Any]) -> list[str] | None:
    return _str_list(args, "parties")


def _validation_message(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "value"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def _edge(e: GenealogyEdge) -> dict[str, Any]:
    return e.model_dump(mode="json")


def _lot_view(lot: Lot, parties: list[str] | None) -> dict[str, Any]:
    """A lot as the caller may see it: a partner sees each side's references only when it is
    that side (`parties` None: the enterprise, everything)."""
    data = lot.model_dump(mode="json")
    if parties is not None:
        if lot.supplier not in parties:
            for name in _SUPPLIER_FIELDS:
                data[name] = None
        if lot.customer not in parties:
            for name in _CUSTOMER_FIELDS:
                data[name] = None
        if lot.supplier not in parties and lot.customer not in parties:
            data["order_id"] = None  # the enterprise's own production
    return data


class EngineCommands:
    """The handler of target `valuechain` for one `ValuechainEngine`."""

    def __init__(self, engine: ValuechainEngine) -> None:
        self.engine = engine
        self._handlers: dict[str, Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]] = {
            "organisations": self._organisations,
            "organisation": self._organisation,
            "organisation_put": self._organisation_put,
            "organisation_delete": self._organisation_delete,
            "master": self._master,
            "material_put": self._material_put,
            "material_delete": self._material_delete,
            "bom_put": self._bom_put,
            "bom_delete": self._bom_delete,
            "sales_orders": self._sales_orders,
            "sales_order": self._sales_order,
            "sales_order_create": self._sales_order_create,
            "sales_order_action": self._sales_order_action,
            "sales_order_ship": self._sales_order_ship,
            "purchase_orders": self._purchase_orders,
            "purchase_order": self._purchase_order,
            "purchase_order_create": self._purchase_order_create,
            "purchase_order_action": self._purchase_order_action,
            "purchase_order_receive": self._purchase_order_receive,
            "proposals": self._proposals,
            "plan_run": self._plan_run,
            "proposal_confirm": self._proposal_confirm,
            "proposal_dismiss": self._proposal_dismiss,
            "lots": self._lots,
            "lot": self._lot,
            "inventory": self._inventory,
            "transactions": self._transactions,
            "lot_transaction": self._lot_transaction,
            "genealogy": self._genealogy,
            "recall": self._recall,
            "events": self._events,
        }
        self._handlers.update(ExchangeCommands(engine).handlers())

    async def __call__(self, command: Command) -> Mapping[str, Any]:
        handler = self._handlers.get(command.name)
        if handler is None:
            raise _invalid(
                f"the value chain engine answers {', '.join(self._handlers)}, not {command.name!r}"
            )
        try:
            return await handler(command.args)
        except (StaleDocument, DocumentExists) as err:
            raise _conflict(str(err)) from None
        except LookupError as err:
            raise _missing(str(err.args[0] if err.args else err)) from None
        except ValidationError as err:
            raise _invalid(_validation_message(err)) from None
        except (
            TransactionRefused,
            TradeRefused,
            MasterDataError,
            PartnerError,
            MrpInputError,
            ValueError,
        ) as err:
            raise _invalid(str(err)) from None

    # -- organisations -------------------------------------------------------------------------

    async def _organisations(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        parties = _parties(args)
        docs = await self.engine.read(lambda: self.engine.store.documents(ORGANISATION))
        return {
            "organisations": [
                {**d.doc.model_dump(mode="json"), "version": d.version}
                for d in docs
                if parties is None or d.doc.code in parties
            ]
        }

    async def _organisation(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        code, parties = _str(args, "code"), _parties(args)
        found = await self.engine.read(lambda: self.engine.store.document(ORGANISATION, code))
        if found is None or (parties is not None and code not in parties):
            raise _missing(f"no organisation {code!r}")
        return {"organisation": found.doc.model_dump(mode="json"), "version": found.version}

    async def _organisation_put(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        org = Organisation.model_validate(args.get("organisation"))
        store = self.engine.store

        def put() -> int:
            others = [d.doc for d in store.documents(ORGANISATION) if d.doc.code != org.code]
            from kiln.valuechain.partners import index_organisations

            index_organisations((*others, org))  # one enterprise per tenant, distinct codes
            saved = store.put(ORGANISATION, org)
            return saved.version

        version = await self.engine.write(put)
        return {"organisation": org.model_dump(mode="json"), "version": version}

    async def _organisation_delete(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        code = _str(args, "code")
        store = self.engine.store

        def delete() -> bool:
            used = bool(store.documents(SALES_ORDER, parties=[code], limit=1)) or bool(
                store.documents(PURCHASE_ORDER, parties=[code], limit=1)
            )
            if used:
                raise ValueError(
                    f"organisation {code!r} has orders that keep naming it; it cannot be deleted"
                )
            return store.remove(ORGANISATION, code)

        if not await self.engine.write(delete):
            raise _missing(f"no organisation {code!r}")
        return {"deleted": code}

    async def _known_party(self, code: str, kind: OrganisationKind) -> None:
        found = await self.engine.read(lambda: self.engine.store.document(ORGANISATION, code))
        if found is None or found.doc.kind is not kind:
            raise _invalid(
                f"{code!r} is not a known {kind.value}: add the organisation first "
                "(PUT /api/v1/organisations/{code})"
            )

    # -- master data ---------------------------------------------------------------------------

    async def _master(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        data = await self.engine.read(self.engine.store.master_data)
        return {
            "materials": [m.model_dump(mode="json") for m in data.materials],
            "boms": [b.model_dump(mode="json") for b in data.boms],
        }

    async def _material_put(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        material = Material.model_validate(args.get("material"))
        await self.engine.write(lambda: self.engine.store.put_material(material))
        return {"material": material.model_dump(mode="json")}

    async def _material_delete(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        code = _str(args, "code")
        if not await self.engine.write(lambda: self.engine.store.delete_material(code)):
            raise _missing(f"no material {code!r}")
        return {"deleted": code}

    async def _bom_put(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        bom = Bom.model_validate(args.get("bom"))
        await self.engine.write(lambda: self.engine.store.put_bom(bom))
        return {"bom": bom.model_dump(mode="json")}

    async def _bom_delete(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        parent = _str(args, "parent")
        if not await self.engine.write(lambda: self.engine.store.delete_bom(parent)):
            raise _missing(f"no bill of materials for {parent!r}")
        return {"deleted": parent}

    # -- sales orders --------------------------------------------------------------------------

    async def _sales_orders(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        parties, states, limit = _parties(args), _str_list(args, "states"), _limit(args)
        docs = await self.engine.read(
            lambda: self.engine.store.documents(
                SALES_ORDER, parties=parties, states=states, limit=limit
            )
        )
        return {"orders": [{**d.doc.model_dump(mode="json"), "version": d.version} for d in docs]}

    async def _sales_order(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        order_id, parties = _str(args, "id"), _parties(args)
        found = await self.engine.read(lambda: self.engine.store.document(SALES_ORDER, order_id))
        if found is None or (parties is not None and found.doc.customer not in parties):
            raise _missing(f"no sales order {order_id!r}")
        return {"order": found.doc.model_dump(mode="json"), "version": found.version}

    async def _sales_order_create(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        order = SalesOrder.model_validate(args.get("order"))
        await self._known_party(order.customer, OrganisationKind.CUSTOMER)
        await self._known_materials(line.material for line in order.lines)
        saved = await self.engine.write(
            lambda: self.engine.store.create(
                SALES_ORDER, order, event=_order_event("sales_order", order, "created")
            )
        )
        return {"order": saved.doc.model_dump(mode="json"), "version": saved.version}

    async def _sales_order_action(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        order_id, action = _str(args, "id"), SalesAction(_str(args, "action"))
        expected = _opt_int(args, "expected_version")
        saved = await self.engine.write(
            lambda: self.engine.store.change(
                SALES_ORDER,
                order_id,
                lambda o: act_sales(o, action),
                expected_version=expected,
                event=lambda _old, new: _order_event("sales_order", new, action.value),
            )
        )
        return {"order": saved.doc.model_dump(mode="json"), "version": saved.version}

    async def _sales_order_ship(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        """Ship a whole lot against a line: the lot leaves (its quantity is the shipment's) and
        the line books it, both or neither."""
        e = self.engine
        order_id, lot_id = _str(args, "id"), _str(args, "lot_id")
        line_no = _opt_int(args, "line_no")
        if line_no is None:
            raise _invalid("'line_no' must be given")
        shipment_id = _str(args, "shipment_id")
        expected = _opt_int(args, "expected_version")
        today = today_in(e.zone, e.now_us())
        day = _date(args, "date", today)
        user = _opt_str(args, "user") or ""
        now = e.now_us()

        def do() -> Any:
            lot = e.store.lot(lot_id)
            if lot is None:
                raise TransactionRefused(f"there is no lot {lot_id!r}")

            def booked(order: SalesOrder) -> SalesOrder:
                line = order.line(line_no)
                if lot.material != line.material:
                    raise TradeRefused(
                        f"lot {lot_id!r} is {lot.material}, line {line_no} of {order_id!r} "
                        f"orders {line.material}"
                    )
                return ship(order, line_no, lot.quantity, day, shipment_id)

            def book_lot(conn: Any, old: SalesOrder, _new: SalesOrder) -> None:
                tx = Ship(
                    id=f"ship-{shipment_id}-{lot_id}"[:64],
                    time_us=now,
                    user=user,
                    lot_id=lot_id,
                    customer=old.customer,
                    shipment_id=shipment_id,
                    sales_order=order_id,
                )
                e.store.apply_in(conn, tx)

            return e.store.change(
                SALES_ORDER,
                order_id,
                booked,
                expected_version=expected,
                also=book_lot,
                event=lambda _old, new: _order_event(
                    "sales_order", new, "shipped", lot=lot_id, shipment=shipment_id
                ),
            )

        saved = await e.write(do)
        return {"order": saved.doc.model_dump(mode="json"), "version": saved.version}

    # -- purchase orders -----------------------------------------------------------------------

    async def _purchase_orders(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        parties, states, limit = _parties(args), _str_list(args, "states"), _limit(args)
        docs = await self.engine.read(
            lambda: self.engine.store.documents(
                PURCHASE_ORDER, parties=parties, states=states, limit=limit
            )
        )
        return {"orders": [{**d.doc.model_dump(mode="json"), "version": d.version} for d in docs]}

    async def _purchase_order(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        order_id, parties = _str(args, "id"), _parties(args)
        found = await self.engine.read(lambda: self.engine.store.document(PURCHASE_ORDER, order_id))
        if found is None or (parties is not None and found.doc.supplier not in parties):
            raise _missing(f"no purchase order {order_id!r}")
        return {"order": found.doc.model_dump(mode="json"), "version": found.version}

    async def _purchase_order_create(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        order = PurchaseOrder.model_validate(args.get("order"))
        await self._known_party(order.supplier, OrganisationKind.SUPPLIER)
        await self._known_materials(line.material for line in order.lines)
        saved = await self.engine.write(
            lambda: self.engine.store.create(
                PURCHASE_ORDER, order, event=_order_event("purchase_order", order, "created")
            )
        )
        return {"order": saved.doc.model_dump(mode="json"), "version": saved.version}

    async def _purchase_order_action(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        order_id, action = _str(args, "id"), PurchaseAction(_str(args, "action"))
        expected = _opt_int(args, "expected_version")
        saved = await self.engine.write(
            lambda: self.engine.store.change(
                PURCHASE_ORDER,
                order_id,
                lambda o: act_purchase(o, action),
                expected_version=expected,
                event=lambda _old, new: _order_event("purchase_order", new, action.value),
            )
        )
        return {"order": saved.doc.model_dump(mode="json"), "version": saved.version}

    async def _purchase_order_receive(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        """A goods receipt: a new lot of the line's material at `location`, booked on the
        line, both or neither."""
        e = self.engine
        order_id, lot_id = _str(args, "id"), _str(args, "lot_id")
        line_no = _opt_int(args, "line_no")
        if line_no is None:
            raise _invalid("'line_no' must be given")
        quantity = _decimal(args, "quantity")
        location = _str(args, "location")
        supplier_lot = _opt_str(args, "supplier_lot")
        expected = _opt_int(args, "expected_version")
        day = _date(args, "date", today_in(e.zone, e.now_us()))
        user = _opt_str(args, "user") or ""
        now = e.now_us()
        tolerance = e.settings.receipt_tolerance_percent

        def do() -> Any:
            units = {m.code: m.unit for m in e.store.materials()}

            def booked(order: PurchaseOrder) -> PurchaseOrder:
                receipt = GoodsReceipt(
                    po_id=order_id, line_no=line_no, quantity=quantity, date=day, lot_id=lot_id
                )
                return receive(order, receipt, tolerance_percent=tolerance)

            def book_lot(conn: Any, old: PurchaseOrder, _new: PurchaseOrder) -> None:
                material = old.line(line_no).material
                if material not in units:
                    raise MasterDataError(f"material {material!r} is not in master data")
                e.store.apply_in(
                    conn,
                    Receive(
                        id=f"receipt-{lot_id}"[:64],
                        time_us=now,
                        user=user,
                        lot_id=lot_id,
                        material=material,
                        quantity=quantity,
                        unit=units[material],
                        location=location,
                        supplier=old.supplier,
                        supplier_lot=supplier_lot,
                        purchase_order=order_id,
                    ),
                )

            return e.store.change(
                PURCHASE_ORDER,
                order_id,
                booked,
                expected_version=expected,
                also=book_lot,
                event=lambda _old, new: _order_event(
                    "purchase_order", new, "received", lot=lot_id, quantity=str(quantity)
                ),
            )

        saved = await e.write(do)
        return {"order": saved.doc.model_dump(mode="json"), "version": saved.version}

    async def _known_materials(self, codes: Any) -> None:
        known = {m.code for m in await self.engine.read(self.engine.store.materials)}
        unknown = sorted(set(codes) - known)
        if unknown:
            raise _invalid(
                f"unknown material {', '.join(map(repr, unknown))}: add it to master data first"
            )

    # -- planning ------------------------------------------------------------------------------

    async def _proposals(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        parties, states, limit = _parties(args), _str_list(args, "states"), _limit(args)
        docs = await self.engine.read(
            lambda: self.engine.store.documents(
                PLANNED_ORDER, parties=parties, states=states, limit=limit
            )
        )
        if parties is None:
            return {"proposals": [_proposal_view(d.doc) for d in docs]}
        # A supplier's forecast: what and when, not why (the explanation names other
        # suppliers' orders, the enterprise's stock and its customers' orders).
        return {
            "proposals": [
                {
                    "id": d.doc.id,
                    "kind": d.doc.proposal.kind.value,
                    "material": d.doc.proposal.material,
                    "quantity": str(d.doc.proposal.quantity),
                    "release": d.doc.proposal.release.isoformat(),
                    "due": d.doc.proposal.due.isoformat(),
                    "supplier": d.doc.proposal.supplier,
                    "state": d.doc.state.value,
                }
                for d in docs
            ]
        }

    async def _open_work_orders(self) -> tuple[list[OpenSupply], str | None]:
        """Production's open work orders as planning's open supply; a note if production could
        not be asked (planning then runs without them, and says so)."""
        try:
            reply = await self.engine.platform.bus.request(
                Command(PRODUCTION_TARGET, "orders", {"states": list(_OPEN_WORK), "limit": 5000}),
                timeout_s=PRODUCTION_TIMEOUT_S,
            )
        except Exception as err:  # any bus failure: plan without, visibly
            return [], f"production's open work orders were not counted: {err}"
        zone, out, skipped = self.engine.zone, [], []
        for order in reply.get("orders", []):
            try:
                due_us = order.get("due_us")
                due = (
                    dt.datetime.fromtimestamp(due_us / 1e6, tz=zone).date()
                    if isinstance(due_us, int)
                    else today_in(zone, self.engine.now_us())
                )
                out.append(
                    OpenSupply(
                        id=order["id"],
                        kind=OrderKind.WORK_ORDER,
                        material=order["product"],
                        quantity=Decimal(str(order["quantity"])),
                        due=due,
                    )
                )
            except (KeyError, TypeError, ValueError, ArithmeticError, OverflowError):
                skipped.append(str(order.get("id", "?")))
        note = f"production's orders {', '.join(skipped)} were not understood" if skipped else None
        return out, note

    async def _plan_run(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        now = e.now_us()
        today = _date(args, "today", today_in(e.zone, now))
        work, note = await self._open_work_orders()
        store = e.store

        def run() -> tuple[int, int, int]:
            master = store.master_data()
            known = {m.code for m in master.materials}
            sales = [d.doc for d in store.documents(SALES_ORDER, limit=100_000)]
            purchases = [d.doc for d in store.documents(PURCHASE_ORDER, limit=100_000)]
            remaining = _remaining_work(store, [w for w in work if w.material in known])
            # A draft purchase order made by confirming a proposal is supply the planner has
            # decided on: counted like a sent one, or the next run would propose it again.
            # (Other drafts are not orders yet.)
            confirmed = {
                d.doc.order_id
                for d in store.documents(
                    PLANNED_ORDER, states=[ProposalState.CONFIRMED.value], limit=100_000
                )
            }
            decided = [
                o.model_copy(update={"state": PurchaseState.SENT})
                if o.state is PurchaseState.DRAFT and o.id in confirmed
                else o
                for o in purchases
            ]
            supply = [*open_supply(decided), *remaining]
            stock = {m: q for m, q in store.stock().items() if m in known}
            plan = mrp.run_mrp(
                master,
                today=today,
                demands=sales_demands(sales),
                open_supply=supply,
                stock=stock,
                reserved=_allocated(master, remaining),
            )
            planned = store.replace_proposals(plan.proposals, now)
            late = sum(1 for p in plan.proposals if p.explanation.late)
            return len(planned), planned[0].run if planned else 0, late

        proposed, run_no, late = await e.write(run)
        return {
            "today": today.isoformat(),
            "run": run_no,
            "proposals": proposed,
            "late": late,
            "notes": [note] if note else [],
        }

    async def _proposal_confirm(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        """A planned work order becomes a production work order (bus command to production;
        `line` says where it runs); a planned purchase order becomes a draft purchase order of
        the proposed supplier."""
        e = self.engine
        proposal_id, user = _str(args, "id"), _opt_str(args, "user") or ""
        found = await e.read(lambda: e.store.document(PLANNED_ORDER, proposal_id))
        if found is None:
            raise _missing(f"no proposal {proposal_id!r}")
        planned = found.doc
        if planned.state is not ProposalState.PROPOSED:
            raise _conflict(f"proposal {proposal_id!r} is already {planned.state.value}")
        p = planned.proposal
        order_id = _opt_str(args, "order_id") or _order_id_for(planned)
        if len(order_id) > 64:
            raise _invalid(f"the order id {order_id!r} is too long: give 'order_id'")
        now = e.now_us()
        if p.kind is OrderKind.WORK_ORDER:
            line = _str(args, "line")
            await self._create_work_order(order_id, planned, line)
            saved = await e.write(
                lambda: e.store.change(
                    PLANNED_ORDER,
                    proposal_id,
                    lambda d: _decided(d, ProposalState.CONFIRMED, user, now, order_id),
                    expected_version=found.version,
                    event=lambda _o, new: (
                        "plan",
                        {"proposal": proposal_id, "confirmed": order_id},
                    ),
                )
            )
        else:
            supplier = p.supplier or ""
            po = PurchaseOrder(
                id=order_id,
                supplier=supplier,
                lines=(
                    PurchaseLine(
                        line_no=1, material=p.material, quantity=p.quantity, promised=p.due
                    ),
                ),
            )
            await self._known_party(supplier, OrganisationKind.SUPPLIER)

            def both() -> Any:
                def insert_po(conn: Any, _old: PlannedOrder, _new: PlannedOrder) -> None:
                    e.store.insert_in(conn, PURCHASE_ORDER, po)
                    e.store.emit(
                        conn, "order", po.id, _order_event("purchase_order", po, "created")[1]
                    )

                return e.store.change(
                    PLANNED_ORDER,
                    proposal_id,
                    lambda d: _decided(d, ProposalState.CONFIRMED, user, now, order_id),
                    expected_version=found.version,
                    also=insert_po,
                    event=lambda _o, new: (
                        "plan",
                        {"proposal": proposal_id, "confirmed": order_id},
                    ),
                )

            saved = await e.write(both)
        return {"proposal": _proposal_view(saved.doc), "order_id": order_id}

    async def _create_work_order(self, order_id: str, planned: PlannedOrder, line: str) -> None:
        e = self.engine
        p = planned.proposal
        due = dt.datetime.combine(p.due, dt.time(0), tzinfo=e.zone)
        order = {
            "id": order_id,
            "product": p.material,
            "line": line,
            "quantity": float(p.quantity),
            "due_us": int(due.timestamp() * 1_000_000),
            "comment": f"from planning proposal {planned.id}",
        }
        try:
            await e.platform.bus.request(
                Command(PRODUCTION_TARGET, "order_create", {"order": order}),
                timeout_s=PRODUCTION_TIMEOUT_S,
            )
        except CommandError as err:
            # Taken by an earlier confirmation that stopped before it was recorded here: the
            # same order, so the confirmation goes on; any other refusal is production's.
            existing = await self._production_order(order_id)
            if (
                existing is None
                or existing.get("product") != p.material
                or existing.get("line") != line
                or planned.id not in str(existing.get("comment", ""))
            ):
                raise _invalid(f"production refused the work order: {err}") from None
        except Exception as err:
            raise CommandError(
                CommandFailure.UNAVAILABLE, f"production could not be asked: {err}"
            ) from None

    async def _production_order(self, order_id: str) -> Mapping[str, Any] | None:
        try:
            reply = await self.engine.platform.bus.request(
                Command(PRODUCTION_TARGET, "order", {"id": order_id}),
                timeout_s=PRODUCTION_TIMEOUT_S,
            )
        except Exception:
            return None
        order = reply.get("order")
        return order if isinstance(order, Mapping) else None

    async def _proposal_dismiss(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        proposal_id, user = _str(args, "id"), _opt_str(args, "user") or ""
        now = e.now_us()

        def dismissed(d: PlannedOrder) -> PlannedOrder:
            if d.state is not ProposalState.PROPOSED:
                raise StaleDocument(f"proposal {proposal_id!r} is already {d.state.value}")
            return _decided(d, ProposalState.DISMISSED, user, now, None)

        saved = await e.write(
            lambda: e.store.change(
                PLANNED_ORDER,
                proposal_id,
                dismissed,
                event=lambda _o, _n: ("plan", {"proposal": proposal_id, "dismissed": True}),
            )
        )
        return {"proposal": _proposal_view(saved.doc)}

    # -- lots ----------------------------------------------------------------------------------

    async def _lots(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        parties = _parties(args)
        material = _opt_str(args, "material")
        states = [LotState(s) for s in _str_list(args, "states") or []] or None
        location = _opt_str(args, "location")
        limit = _limit(args)
        store = self.engine.store

        def read() -> list[Lot]:
            if parties is None:
                return store.lots(
                    material=material, states=states, location_prefix=location, limit=limit
                )
            return store.party_lots(
                parties, material=material, states=states, location_prefix=location, limit=limit
            )

        lots = await self.engine.read(read)
        return {"lots": [_lot_view(lot, parties) for lot in lots]}

    async def _lot(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        lot_id, parties = _str(args, "id"), _parties(args)
        store = self.engine.store
        lot = await self.engine.read(lambda: store.lot(lot_id))
        if lot is None or (
            parties is not None and lot.supplier not in parties and lot.customer not in parties
        ):
            raise _missing(f"no lot {lot_id!r}")
        edges_in = await self.engine.read(lambda: store.edges_to([lot_id]))
        edges_out = await self.engine.read(lambda: store.edges_from([lot_id]))
        inside = parties is None
        return {
            "lot": _lot_view(lot, parties),
            "made_from": [_edge(x) for x in edges_in] if inside else [],
            "went_into": [_edge(x) for x in edges_out] if inside else [],
        }

    async def _inventory(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        location = _opt_str(args, "location")
        rows = await self.engine.read(lambda: self.engine.store.inventory(location_prefix=location))
        return {"inventory": rows}

    async def _transactions(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        limit = _limit(args, default=200)
        txs = await self.engine.read(lambda: self.engine.store.transactions(limit))
        return {"transactions": [_TRANSACTION.dump_python(t, mode="json") for t in txs]}

    async def _lot_transaction(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        body = args.get("transaction")
        if not isinstance(body, Mapping):
            raise _invalid("'transaction' must be an object with a 'kind'")
        data = dict(body)
        data.setdefault("time_us", self.engine.now_us())
        if (user := _opt_str(args, "user")) is not None:
            data["user"] = user
        tx = _TRANSACTION.validate_python(data)
        # An order's receipts and shipments book the order too: they have routes of their own,
        # so that no lot names an order that does not know it (planning would count it twice).
        if isinstance(tx, Receive):
            if tx.purchase_order is not None:
                raise _invalid(
                    "a receipt against a purchase order goes through "
                    "POST /api/v1/purchase-orders/{id}/receipts, which books the order too"
                )
            await self._known_party(tx.supplier, OrganisationKind.SUPPLIER)
        if isinstance(tx, Ship):
            if tx.sales_order is not None:
                raise _invalid(
                    "a shipment against a sales order goes through "
                    "POST /api/v1/sales-orders/{id}/shipments, which books the order too"
                )
            await self._known_party(tx.customer, OrganisationKind.CUSTOMER)
        change = await self.engine.write(lambda: self.engine.store.apply(tx))
        return {
            "transaction": _TRANSACTION.dump_python(tx, mode="json"),
            "lots": [lot.model_dump(mode="json") for lot in change.lots],
            "edges": [_edge(x) for x in change.edges],
        }

    # -- genealogy and recall ------------------------------------------------------------------

    def _bound(self, args: Mapping[str, Any]) -> int:
        most = self.engine.settings.max_trace_lots
        bound = _opt_int(args, "max_nodes", most) or most
        if not 1 <= bound <= most:
            raise _invalid(f"'max_nodes' must be between 1 and {most}")
        return bound

    async def _genealogy(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        lot_id, parties = _str(args, "lot"), _parties(args)
        direction = _opt_str(args, "direction") or "backward"
        if direction not in ("backward", "forward"):
            raise _invalid("'direction' must be backward or forward")
        max_depth = _opt_int(args, "max_depth")
        bound = self._bound(args)
        store = self.engine.store
        start = await self.engine.read(lambda: store.lot(lot_id))
        if start is None or (
            parties is not None and start.supplier not in parties and start.customer not in parties
        ):
            raise _missing(f"no lot {lot_id!r}")

        def trace() -> tuple[genealogy.Trace, dict[str, Lot]]:
            t = self.engine.trace(direction, lot_id, max_nodes=bound, max_depth=max_depth)
            return t, store.lots_by_id(t.lot_ids)

        t, lots = await self.engine.read(trace)
        return {
            "direction": t.direction,
            "start": lot_id,
            "truncated": t.truncated,
            "nodes": [
                {
                    "lot": lots[n.lot_id].model_dump(mode="json") if n.lot_id in lots else None,
                    "id": n.lot_id,
                    "depth": n.depth,
                    "path": list(n.path),
                    "via": _edge(n.via) if n.via is not None else None,
                }
                for n in t.nodes
            ]
            if parties is None
            else [
                {
                    "lot": _lot_view(lots[n.lot_id], parties) if n.lot_id in lots else None,
                    "id": n.lot_id,
                    "depth": n.depth,
                    "path": list(n.path),
                    "via": _edge(n.via) if n.via is not None else None,
                }
                for n in t.nodes
            ],
            "edges": [_edge(x) for x in t.edges],
        }

    async def _recall(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        """What the lots reach forward: customers and shipments to notify, open production
        orders to stop, stock to quarantine; with `hold`, the holds placed (each one applied
        as its own transaction, so one refused because its lot changed meanwhile is listed
        and the others stand)."""
        e = self.engine
        starts = _str_list(args, "lots")
        if not starts:
            raise _invalid("'lots' must name at least one lot")
        hold = bool(args.get("hold", False))
        reason = _opt_str(args, "reason")
        if hold and not reason:
            raise _invalid("a recall that holds stock needs a 'reason'")
        user = _opt_str(args, "user") or ""
        bound = self._bound(args)
        store = e.store
        known = await e.read(lambda: store.lots_by_id(starts))
        missing = [s for s in starts if s not in known]
        if missing:
            raise _missing(f"no lot {', '.join(map(repr, missing))}")
        now = e.now_us()
        recall_id = _opt_str(args, "id") or f"recall-{now}"

        def reach() -> tuple[genealogy.Trace, dict[str, Lot], dict[str, tuple[set[str], set[str]]]]:
            t = e.trace("forward", starts, max_nodes=bound)
            return t, store.lots_by_id(t.lot_ids), store.orders_of(t.lot_ids)

        walked, lots, touching = await e.read(reach)
        open_ids, unknown_orders = await self._open_orders(list(touching))
        orders = [
            genealogy.OrderLots(
                order_id=o,
                open=o in open_ids,
                consumes=frozenset(c),
                produces=frozenset(p),
            )
            for o, (c, p) in touching.items()
        ]
        result = genealogy.recall(
            starts,
            lots=lots,
            children={},
            trace=walked,
            orders=orders,
            max_nodes=bound,
            hold_reason=f"recall {recall_id}: {reason}" if hold else None,
            time_us=now if hold else None,
            hold_id_prefix=recall_id,
            user=user,
        )
        placed, refused = await e.write(lambda: _apply_holds(store, result.holds))
        body = {
            "id": recall_id,
            "lots": starts,
            "customers": list(result.customers),
            "shipments": [
                {"shipment": s.shipment_id, "customer": s.customer, "lots": list(s.lot_ids)}
                for s in result.shipments
            ],
            "orders_to_stop": list(result.orders_to_stop),
            "quarantine": list(result.quarantine),
            "held": list(result.held),
            "unknown": list(result.unknown),
            "reached": len(result.trace.nodes),
            "truncated": result.truncated,
            "holds_placed": placed,
            "holds_refused": refused,
            "orders_state_unknown": unknown_orders,
            "user": user,
        }
        await e.write(lambda: _record_recall(store, recall_id, body))
        return body

    async def _open_orders(self, order_ids: list[str]) -> tuple[set[str], list[str]]:
        """Which of production's orders are still open, and which production could not answer
        for. Those count as open: a recall lists an order too many rather than one too few."""
        out: set[str] = set()
        unknown: list[str] = []
        for order_id in order_ids:
            order = await self._production_order(order_id)
            if order is None:
                unknown.append(order_id)
            if order is None or order.get("state") not in _CLOSED_WORK:
                out.add(order_id)
        return out, unknown

    async def _events(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        after = _opt_int(args, "after", 0) or 0
        limit = _limit(args, default=200)
        events = await self.engine.read(lambda: self.engine.store.events(after=after, limit=limit))
        return {
            "events": [
                {
                    "seq": ev.seq,
                    "kind": ev.kind,
                    "subject": ev.subject,
                    "time_us": ev.time_us,
                    "data": ev.body,
                }
                for ev in events
            ]
        }


def _remaining_work(store: Any, work: list[OpenSupply]) -> list[OpenSupply]:
    """Production's open orders less what the engine already booked of them as lots (those
    units are stock now): what they will still bring."""
    out: list[OpenSupply] = []
    for w in work:
        found = store.document(ORDER_BOOKING, w.id)
        left = w.quantity - (found.doc.produced if found is not None else Decimal(0))
        if left > 0:
            out.append(w.model_copy(update={"quantity": left}))
    return out


def _allocated(master: Any, remaining: list[OpenSupply]) -> dict[str, Decimal]:
    """Stock reserved for the open work orders: the components their remaining units will
    consume (backflushed as they are booked), by the bill of materials (planning rule 3)."""
    bom_of, by_code = master.bom_of(), master.by_code()
    out: dict[str, Decimal] = {}
    for w in remaining:
        bom = bom_of.get(w.material)
        for line in bom.lines if bom is not None else ():
            need = mrp.dependent_quantity(
                w.quantity,
                line.quantity,
                bom.output_quantity,
                line.scrap_percent,
                by_code[line.component].decimals,
            )
            out[line.component] = out.get(line.component, Decimal(0)) + need
    return out


def _order_id_for(planned: PlannedOrder) -> str:
    """The order a confirmation makes: WO- or PO-, the material, the day of need, the split
    and the run (two runs may plan the same need; each confirmation makes its own order)."""
    p = planned.proposal
    prefix = "WO" if p.kind is OrderKind.WORK_ORDER else "PO"
    return f"{prefix}-{p.material}-{p.explanation.need:%Y%m%d}-{p.explanation.split}-r{planned.run}"


def _decided(
    d: PlannedOrder, state: ProposalState, user: str, now: int, order_id: str | None
) -> PlannedOrder:
    if d.state is not ProposalState.PROPOSED:
        raise StaleDocument(f"proposal {d.id!r} is already {d.state.value}")
    return d.model_copy(
        update={"state": state, "decided_by": user, "decided_us": now, "order_id": order_id}
    )


def _proposal_view(d: PlannedOrder) -> dict[str, Any]:
    return {
        **d.proposal.model_dump(mode="json"),
        "id": d.id,  # the proposal in its run: what confirm and dismiss name
        "proposal_id": d.proposal.id,
        "run": d.run,
        "state": d.state.value,
        "planned_us": d.planned_us,
        "order_id": d.order_id,
        "decided_by": d.decided_by,
        "decided_us": d.decided_us,
        "late": d.proposal.explanation.late,
        "summary": d.proposal.summary(),
    }


def _order_event(
    kind: str, order: SalesOrder | PurchaseOrder, what: str, **extra: Any
) -> tuple[str, dict[str, Any]]:
    party = order.customer if isinstance(order, SalesOrder) else order.supplier
    return "order", {
        "type": kind,
        "order": order.id,
        "party": party,
        "state": order.state.value,
        "what": what,
        **extra,
    }


def _apply_holds(store: Any, holds: tuple[Hold, ...]) -> tuple[list[str], list[dict[str, str]]]:
    placed: list[str] = []
    refused: list[dict[str, str]] = []
    for hold in holds:
        try:
            store.apply(hold)
            placed.append(hold.lot_id)
        except TransactionRefused as err:
            refused.append({"lot": hold.lot_id, "reason": str(err)})
    return placed, refused


def _record_recall(store: Any, recall_id: str, body: dict[str, Any]) -> None:
    with store.engine.begin() as conn:
        store.emit(conn, "recall", recall_id, body)
