"""The virtual factory's company as it stands when the demo starts: organisations, master data,
locations, purchase orders partly received, a past mixing batch and a past packaging order
whose first lot went to a customer, open sales orders, and a first planning run.

Everything goes through the value chain engine's commands (`Ask`), and every part is looked up
before it is made, so seeding a store that holds it all changes nothing and seeding one that a
crash left half done completes it. Lot transactions carry fixed ids: one already applied is
refused as such, and taken as done. What exists is never replaced, so a user's edits to the demo
company survive a restart.

The past orders give the first minutes of the demo a finished lot with a genealogy two levels
deep: juice lot `PACK-DEMO-1-1` was bottled from mix lot `MIX-DEMO-1-1`, which was mixed from
two concentrate lots of the supplier's; it shipped to FreshMart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from kiln.core.bus import CommandError, CommandFailure
from kiln.sim import company as co
from kiln.sim.company import DemoCompany, due

Ask = Callable[..., Awaitable[Mapping[str, Any]]]
USER = "sim"

MIX_ORDER, PACK_ORDER = "MIX-DEMO-1", "PACK-DEMO-1"
MIX_LOT = f"{MIX_ORDER}-1"
JUICE_LOTS = (f"{PACK_ORDER}-1", f"{PACK_ORDER}-2")
SHIPPED_ORDER, SHIPMENT = "SO-DEMO-1", "SH-DEMO-1"


def _purchases(today: dt.date) -> list[dict[str, Any]]:
    def line(no: int, material: str, quantity: int, days: int) -> dict[str, Any]:
        return {"line_no": no, "material": material, "quantity": str(quantity),
                "promised": due(today, days)}  # fmt: skip

    return [
        {"id": "PO-DEMO-1", "supplier": "GLASSPACK",
         "lines": [line(1, co.BOTTLE, 60000, 1), line(2, co.CAP, 60000, 2)]},
        {"id": "PO-DEMO-2", "supplier": "CITRUSCO",
         "lines": [line(1, co.CONC, 6000, 0), line(2, co.SUGAR, 2000, 3)]},
        {"id": "PO-DEMO-3", "supplier": "STEELCO", "lines": [line(1, co.STEEL, 360, 2)]},
        {"id": "PO-DEMO-4", "supplier": "GLASSPACK", "lines": [line(1, co.BOTTLE, 40000, 6)]},
    ]  # fmt: skip


def _receipts(pack_side: str, machining_side: str) -> list[tuple[str, int, str, str, str, str]]:
    """(order, line, lot, quantity, location, supplier's lot) of what has arrived."""
    wh = co.WAREHOUSE
    return [
        ("PO-DEMO-1", 1, "BOTTLE-D1", "10000", pack_side, "GP-B-24117"),
        ("PO-DEMO-1", 1, "BOTTLE-D2", "10000", pack_side, "GP-B-24118"),
        ("PO-DEMO-1", 1, "BOTTLE-D3", "10000", wh, "GP-B-24121"),
        ("PO-DEMO-1", 1, "BOTTLE-D4", "10000", wh, "GP-B-24122"),
        ("PO-DEMO-1", 2, "CAP-D1", "20000", pack_side, "GP-C-8810"),
        ("PO-DEMO-1", 2, "CAP-D2", "20000", wh, "GP-C-8811"),
        ("PO-DEMO-2", 1, "CONC-D1", "1000", wh, "CC-2611-041"),
        ("PO-DEMO-2", 1, "CONC-D2", "1000", wh, "CC-2611-042"),
        ("PO-DEMO-2", 1, "CONC-D3", "1000", wh, "CC-2611-057"),
        ("PO-DEMO-2", 2, "SUGAR-D1", "1000", wh, "CC-S-3301"),
        ("PO-DEMO-3", 1, "STEEL-D1", "60", machining_side, "SC-H7731"),
        ("PO-DEMO-3", 1, "STEEL-D2", "60", wh, "SC-H7732"),
    ]


def _sales(today: dt.date) -> list[tuple[dict[str, Any], bool]]:
    """Sales orders, each with whether it is confirmed (the last is a quote, a draft)."""

    def order(n: int, customer: str, material: str, quantity: int, days: int) -> dict[str, Any]:
        return {"id": f"SO-DEMO-{n}", "customer": customer,
                "lines": [{"line_no": 1, "material": material, "quantity": str(quantity),
                           "due": due(today, days)}]}  # fmt: skip

    return [
        (order(1, "FRESHMART", co.JUICE, 1200, -1), True),
        (order(2, "CITYGROCER", co.JUICE, 3600, 1), True),
        (order(3, "MACHINEBUILD", co.BRACKET, 240, 1), True),
        (order(4, "FRESHMART", co.JUICE, 6000, 3), True),
        (order(5, "MACHINEBUILD", co.BRACKET, 360, 4), True),
        (order(6, "CITYGROCER", co.JUICE, 2400, 5), False),
    ]


def _refused_as_done(err: CommandError) -> bool:
    return err.kind is CommandFailure.INVALID and "was already applied" in str(err)


class Seeder:
    """Seeds one company through `ask`; `changes` counts what it had to make."""

    def __init__(self, ask: Ask, company: DemoCompany, today: dt.date) -> None:
        self.ask = ask
        self.company = company
        self.today = today
        self.changes = 0
        first_pack = company.packaging()
        machining = [line for line in company.lines if line.product == co.BRACKET]
        self.pack_side = company.line_sides[first_pack[0].path] if first_pack else co.WAREHOUSE
        self.machining_side = company.line_sides[machining[0].path] if machining else co.WAREHOUSE

    async def _change(self, name: str, **args: Any) -> Mapping[str, Any]:
        reply = await self.ask(name, **args)
        self.changes += 1
        return reply

    async def _found(self, name: str, key: str, **args: Any) -> Any:
        """The reply's `key` of a read, or None when the engine knows no such thing."""
        try:
            return (await self.ask(name, **args))[key]
        except CommandError as err:
            if err.kind is CommandFailure.NOT_FOUND:
                return None
            raise

    async def run(self) -> int:
        """Seed what is missing; how many changes that took."""
        await self._organisations()
        await self._master_data()
        await self._locations()
        await self._purchase_orders()
        await self._history()
        await self._sales_orders()
        proposals = (await self.ask("proposals", limit=1))["proposals"]
        if self.changes or not proposals:
            await self._change("plan_run")
        return self.changes

    async def _organisations(self) -> None:
        known = (await self.ask("organisations"))["organisations"]
        codes = {o["code"] for o in known}
        tenant_has_enterprise = any(
            o["kind"] == "enterprise" and o["tenant"] == co.ENTERPRISE_TENANT for o in known
        )
        for org in self.company.organisations:
            if org["code"] in codes:
                continue
            if org["kind"] == "enterprise" and tenant_has_enterprise:
                continue  # the plant's own enterprise is already there under its own code
            await self._change("organisation_put", organisation=org)

    async def _master_data(self) -> None:
        master = await self.ask("master")
        materials = {m["code"] for m in master["materials"]}
        boms = {b["parent"] for b in master["boms"]}
        for material in co.MATERIALS:
            if material["code"] not in materials:
                await self._change("material_put", material=material)
        for bom in co.BOMS:  # after the materials: a bill names known ones only
            if bom["parent"] not in boms:
                await self._change("bom_put", bom=bom)

    async def _locations(self) -> None:
        codes = {loc["code"] for loc in (await self.ask("locations"))["locations"]}
        for location in self.company.locations:
            if location["code"] not in codes:
                await self._change("location_put", location=location)

    async def _purchase_orders(self) -> None:
        for po in _purchases(self.today):
            found = await self._found("purchase_order", "order", id=po["id"])
            if found is None:
                found = (await self._change("purchase_order_create", order=po))["order"]
            if found["state"] == "draft":
                await self._change("purchase_order_action", id=po["id"], action="send", user=USER)
        for po_id, line_no, lot, quantity, location, supplier_lot in _receipts(
            self.pack_side, self.machining_side
        ):
            if await self._found("lot", "lot", id=lot) is not None:
                continue
            await self._change(
                "purchase_order_receive",
                id=po_id,
                line_no=line_no,
                lot_id=lot,
                quantity=quantity,
                location=location,
                supplier_lot=supplier_lot,
                user=USER,
            )

    async def _transaction(self, tx: dict[str, Any]) -> None:
        try:
            await self._change("lot_transaction", transaction=tx, user=USER)
        except CommandError as err:
            if not _refused_as_done(err):
                raise

    async def _history(self) -> None:
        """The past mixing batch and packaging order, each booked as production books one:
        its inputs consumed into the order, then its lots produced from them."""
        if await self._found("lot", "lot", id=MIX_LOT) is None:
            for i, (lot, quantity) in enumerate(
                (("CONC-D1", "1000"), ("CONC-D2", "760"), ("SUGAR-D1", "440"))
            ):
                await self._transaction({"kind": "consume", "id": f"{MIX_ORDER}-c{i}",
                                         "lot_id": lot, "quantity": quantity,
                                         "order_id": MIX_ORDER})  # fmt: skip
            await self._transaction({"kind": "produce", "id": f"{MIX_ORDER}-p1", "lot_id": MIX_LOT,
                                     "material": co.MIX, "quantity": "11000", "unit": "l",
                                     "location": self.pack_side, "order_id": MIX_ORDER})  # fmt: skip
        if await self._found("lot", "lot", id=JUICE_LOTS[-1]) is None:
            bottles = Decimal(2400)
            mix = co.need(co.JUICE, co.MIX, bottles, co.DECIMALS[co.MIX])
            for i, (lot, used) in enumerate(
                (("BOTTLE-D1", bottles), ("CAP-D1", bottles), (MIX_LOT, mix))
            ):
                await self._transaction({"kind": "consume", "id": f"{PACK_ORDER}-c{i}",
                                         "lot_id": lot, "quantity": str(used),
                                         "order_id": PACK_ORDER})  # fmt: skip
            for n, lot in enumerate(JUICE_LOTS, start=1):
                await self._transaction({"kind": "produce", "id": f"{PACK_ORDER}-p{n}",
                                         "lot_id": lot, "material": co.JUICE, "quantity": "1200",
                                         "unit": co.UNITS[co.JUICE], "location": self.pack_side,
                                         "order_id": PACK_ORDER})  # fmt: skip

    async def _sales_orders(self) -> None:
        for order, confirmed in _sales(self.today):
            found = await self._found("sales_order", "order", id=order["id"])
            if found is None:
                found = (await self._change("sales_order_create", order=order))["order"]
            if confirmed and found["state"] == "draft":
                found = (
                    await self._change(
                        "sales_order_action", id=order["id"], action="confirm", user=USER
                    )
                )["order"]
            if order["id"] == SHIPPED_ORDER and not found["lines"][0]["shipments"]:
                lot = await self._found("lot", "lot", id=JUICE_LOTS[0])
                if lot is not None and lot["state"] == "available":
                    await self._change(
                        "sales_order_ship",
                        id=SHIPPED_ORDER,
                        lot_id=JUICE_LOTS[0],
                        line_no=1,
                        shipment_id=SHIPMENT,
                        date=due(self.today, -1),
                        user=USER,
                    )
