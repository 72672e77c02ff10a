"""The virtual factory trades: a small company around the factory's lines that buys, mixes,
stocks, sells and ships, so the value chain's boards move while the demo runs.

It talks to the value chain engine only through its bus commands (target `valuechain`), as the
API does, so it works wherever the engine runs. On start it seeds the demo company
(`kiln.sim.trading_seed`), retrying until the engine answers; then, every `period_s`, it does
what the company's people would, each at its own pace (`TradeTiming`):

- **receive**: open purchase lines promised within `receive_ahead_days` arrive, the earliest
  promised first, a pack each and `receipts_per_run` at a time, as new lots at the warehouse
  (goods receipts);
- **replenish**: a line's side is topped up from the warehouse with whole lots (moves) to what
  one and a half of its orders use, so production's backflush finds its components there;
- **mix**: a packaging line whose side holds less juice mix than one order takes gets a batch
  (concentrate and sugar consumed first in first out, a mix lot produced at the line side);
- **ship**: available finished lots go to confirmed sales orders, earliest due first; a lot
  larger than what the line still wants is split and the part shipped;
- **sell**: the draft order (a quote) of the last round is confirmed and a customer sends a
  new one;
- **plan**: planning runs, and its purchase proposals are confirmed and sent to the supplier.

A failure (the engine busy or not yet there, a refusal because someone changed a document
meanwhile) is logged once, kept in health, and the activity is tried again next time: the
service never stops over one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kiln.core.bus import BusError, Command, CommandError, CommandFailure
from kiln.core.clock import us_to_datetime
from kiln.core.platform import Health, Platform, Status
from kiln.sim import company as co
from kiln.sim.company import DemoCompany, demo_company
from kiln.sim.spec import FactorySpec
from kiln.sim.trading_seed import USER, Seeder

_LOGGER = logging.getLogger(__name__)
TARGET = "valuechain"
TIMEOUT_S = 10.0
_OPEN_PURCHASES = ["sent", "confirmed", "partially_received"]
_OPEN_SALES = ["confirmed", "in_production"]
# Line-side stock is kept at this many orders' worth; a mix batch starts below one order's.
_SIDE_ORDERS = Decimal("1.5")


@dataclass(frozen=True, slots=True)
class TradeTiming:
    """How often each activity runs, in seconds of the platform's clock (demo-scaled)."""

    period_s: float = 15.0  # the loop's look; replenish, mix and ship run at every one
    receive_s: float = 60.0
    sell_s: float = 300.0
    plan_s: float = 180.0
    receive_ahead_days: int = 7  # a line promised this far ahead may arrive now
    receipts_per_run: int = 2  # deliveries a receive run books: trucks come one by one
    most_per_step: int = 6  # shipments and confirmed proposals per activity run


@dataclass
class TradeCounts:
    receipts: int = 0
    moves: int = 0
    mix_batches: int = 0
    shipments: int = 0
    sales_orders: int = 0
    sales_confirmed: int = 0
    plan_runs: int = 0
    purchase_orders: int = 0
    waiting: dict[str, str] = field(default_factory=dict)


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


def _total(rows: list[Mapping[str, Any]]) -> Decimal:
    """The summed `quantity` of receipts or shipments."""
    return sum((_d(r["quantity"]) for r in rows), Decimal(0))


@dataclass(order=True)
class _Want:
    """What a sales order line still wants shipped; sorted earliest due first."""

    due: str
    order: str
    line_no: int
    material: str
    left: Decimal


class SimTrading:
    """The `sim-trading` service."""

    name = "sim-trading"

    def __init__(
        self,
        spec: FactorySpec,
        timing: TradeTiming | None = None,
        *,
        seed: int | None = None,
        target: str = TARGET,
    ) -> None:
        self.target = target
        self.company: DemoCompany = demo_company(spec)
        self.timing = timing or TradeTiming()
        self.counts = TradeCounts()
        self.seeded = False
        self.seed_changes = 0
        self.steps = 0
        self.last_error = ""
        self._failing: dict[str, str] = {}
        self._last_run: dict[str, float] = {}
        self._rng = random.Random(spec.seed if seed is None else seed)
        self._seq = 0
        self._pending: list[dict[str, Any]] = []  # mix lots whose inputs are consumed
        self._platform: Platform | None = None
        self._task: asyncio.Task[None] | None = None

    # -- life cycle --------------------------------------------------------------------------

    async def start(self, platform: Platform) -> None:
        self.attach(platform)
        self._task = platform.spawn(self._loop(), name="sim-trading")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def attach(self, platform: Platform) -> None:
        """Talk over `platform`'s bus without running the loop (`seed` and `step` by hand)."""
        self._platform = platform

    def health(self) -> Health:
        c = self.counts
        return Health(
            Status.OK,
            {"seeded": self.seeded, "steps": self.steps, "receipts": c.receipts, "moves": c.moves,
             "mix_batches": c.mix_batches, "shipments": c.shipments,
             "sales_orders": c.sales_orders, "sales_confirmed": c.sales_confirmed,
             "plan_runs": c.plan_runs, "purchase_orders": c.purchase_orders,
             "waiting": dict(c.waiting), "failing": dict(self._failing),
             "last_error": self.last_error},
        )  # fmt: skip

    @property
    def _plat(self) -> Platform:
        if self._platform is None:
            raise RuntimeError("the sim-trading service is not started")
        return self._platform

    async def ask(self, name: str, **args: Any) -> Mapping[str, Any]:
        return await self._plat.bus.request(Command(self.target, name, args), timeout_s=TIMEOUT_S)

    def _today(self) -> dt.date:
        return us_to_datetime(self._plat.clock.now_us()).date()

    def _stamp(self) -> str:
        """A fresh suffix for ids: the time to the second and a counter of this run."""
        self._seq += 1
        now = us_to_datetime(self._plat.clock.now_us())
        return f"{now:%y%m%d%H%M%S}-{self._seq}"

    # -- the loop ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        clock = self._plat.clock
        while not await self.seed():
            await clock.sleep(self.timing.period_s)
        while True:
            await self.step()
            await clock.sleep(self.timing.period_s)

    async def seed(self) -> bool:
        """Seed the demo company; False if the engine did not answer (try again later). A
        refusal is logged and trading goes on with what there is."""
        try:
            self.seed_changes = await Seeder(self.ask, self.company, self._today()).run()
        except CommandError as err:
            if err.kind is CommandFailure.UNAVAILABLE:
                self.last_error = f"seeding: {err}"
                return False
            self.last_error = f"seeding refused: {err}"
            _LOGGER.warning("Virtual factory: seeding the demo company was refused: %s", err)
            return True
        except BusError as err:
            # Nobody serves the value chain yet, or it is busy: quietly, again next period.
            self.last_error = f"seeding: {err}"
            return False
        self.seeded = True
        self.last_error = ""
        _LOGGER.info("Virtual factory: demo company seeded (%d changes)", self.seed_changes)
        return True

    async def step(self, *, everything: bool = False) -> None:
        """One look: every activity whose time has come (all of them with `everything`)."""
        t = self.timing
        plan: list[tuple[str, float, Callable[[], Awaitable[None]]]] = [
            ("receive", t.receive_s, self.receive),
            ("replenish", 0.0, self.replenish),
            ("mix", 0.0, self.mix),
            ("ship", 0.0, self.ship),
            ("sell", t.sell_s, self.sell),
            ("plan", t.plan_s, self.plan),
        ]
        now = self._plat.clock.monotonic()
        for name, every, activity in plan:
            last = self._last_run.get(name)
            if not everything and last is not None and now - last < every:
                continue
            self._last_run[name] = now
            await self._guarded(name, activity)
        self.steps += 1

    async def _guarded(self, name: str, activity: Callable[[], Awaitable[None]]) -> None:
        try:
            await activity()
        except BusError as err:
            self._failed(name, str(err))
        except Exception as err:
            # A reply this service did not expect: say so loudly, but keep the company going.
            _LOGGER.exception("Virtual factory: trading activity %s failed", name)
            self._failed(name, f"{type(err).__name__}: {err}")
        else:
            if self._failing.pop(name, None) is not None:
                _LOGGER.info("Virtual factory: trading activity %s recovered", name)

    def _failed(self, name: str, message: str) -> None:
        if name not in self._failing:
            _LOGGER.warning("Virtual factory: trading activity %s failed: %s", name, message)
        self._failing[name] = message
        self.last_error = f"{name}: {message}"

    # -- reads -------------------------------------------------------------------------------

    async def _lots(self, material: str, location: str | None = None) -> list[Mapping[str, Any]]:
        """Available lots of `material` (at `location`), first in first out."""
        args: dict[str, Any] = {"material": material, "states": ["available"], "limit": 5000}
        if location is not None:
            args["location"] = location
        lots = list((await self.ask("lots", **args))["lots"])
        lots.sort(key=lambda lot: (lot["created_us"], lot["id"]))
        return lots

    async def _on_hand(self, material: str, location: str) -> Decimal:
        return sum(
            (_d(lot["quantity"]) for lot in await self._lots(material, location)), Decimal(0)
        )

    async def _transaction(self, tx: dict[str, Any]) -> Mapping[str, Any]:
        return await self.ask("lot_transaction", transaction=tx, user=USER)

    # -- activities --------------------------------------------------------------------------

    async def receive(self) -> None:
        """Open purchase lines promised soon arrive: one pack each, at the warehouse."""
        horizon = self._today() + dt.timedelta(days=self.timing.receive_ahead_days)
        orders = (await self.ask("purchase_orders", states=_OPEN_PURCHASES, limit=500))["orders"]
        due = []
        for po in orders:
            for line in po["lines"]:
                left = _d(line["quantity"]) - _total(line["receipts"])
                if left > 0 and dt.date.fromisoformat(line["promised"]) <= horizon:
                    due.append((line["promised"], po["id"], po["supplier"], line, left))
        due.sort(key=lambda d: (d[0], d[1], d[3]["line_no"]))
        for _promised, po_id, supplier, line, left in due[: self.timing.receipts_per_run]:
            material = line["material"]
            quantity = min(left, co.PACKS.get(material, left))
            stamp = self._stamp()
            await self.ask(
                "purchase_order_receive",
                id=po_id,
                line_no=line["line_no"],
                lot_id=f"{material}-{stamp}",
                quantity=str(quantity),
                location=co.WAREHOUSE,
                supplier_lot=f"{supplier[:4]}-{stamp}",
                user=USER,
            )
            self.counts.receipts += 1

    async def replenish(self) -> None:
        """Top each line's side up from the warehouse, whole lots, oldest first."""
        for line in self.company.lines:
            side = self.company.line_sides[line.path]
            for component in co.components(line.product):
                if component == co.MIX:
                    continue  # mixed at the line side itself
                target = co.need(
                    line.product,
                    component,
                    _d(line.quantity) * _SIDE_ORDERS,
                    co.DECIMALS[component],
                )
                there = await self._on_hand(component, side)
                for lot in await self._lots(component, co.WAREHOUSE):
                    if there >= target:
                        break
                    await self._transaction({"kind": "move", "id": f"mv-{self._stamp()}",
                                             "lot_id": lot["id"], "location": side})  # fmt: skip
                    there += _d(lot["quantity"])
                    self.counts.moves += 1

    async def mix(self) -> None:
        """A batch of juice mix for each packaging line that runs low."""
        while self._pending:  # a batch whose inputs were consumed but whose lot was not made
            await self._produce(self._pending[0])
            self._pending.pop(0)
        for line in self.company.packaging():
            side = self.company.line_sides[line.path]
            one_order = co.need(co.JUICE, co.MIX, _d(line.quantity), co.DECIMALS[co.MIX])
            if await self._on_hand(co.MIX, side) >= one_order:
                self.counts.waiting.pop(f"mix {side}", None)
                continue
            batch = self.company.mix_batch()
            picks: list[tuple[str, Decimal]] = []
            short = []
            for material in co.components(co.MIX):
                want = co.need(co.MIX, material, batch, co.DECIMALS[material])
                for lot in await self._lots(material):
                    if want <= 0:
                        break
                    take = min(want, _d(lot["quantity"]))
                    picks.append((lot["id"], take))
                    want -= take
                if want > 0:
                    short.append(f"{want} {co.UNITS[material]} {material}")
            if short:
                self.counts.waiting[f"mix {side}"] = "waits for " + ", ".join(short)
                continue
            self.counts.waiting.pop(f"mix {side}", None)
            order = f"MIX-{self._stamp()}"
            for i, (lot_id, take) in enumerate(picks):
                await self._transaction({"kind": "consume", "id": f"{order}-c{i}",
                                         "lot_id": lot_id, "quantity": str(take),
                                         "order_id": order})  # fmt: skip
            produce = {"kind": "produce", "id": f"{order}-p1", "lot_id": f"{order}-1",
                       "material": co.MIX, "quantity": str(batch), "unit": co.UNITS[co.MIX],
                       "location": side, "order_id": order}  # fmt: skip
            self._pending.append(produce)
            await self._produce(produce)
            self._pending.remove(produce)

    async def _produce(self, tx: dict[str, Any]) -> None:
        try:
            await self._transaction(tx)
        except CommandError as err:
            if not (err.kind is CommandFailure.INVALID and "was already applied" in str(err)):
                raise
        self.counts.mix_batches += 1

    async def ship(self) -> None:
        """Available finished lots to confirmed sales orders, earliest due first."""
        orders = (await self.ask("sales_orders", states=_OPEN_SALES, limit=500))["orders"]
        wanted = sorted(
            _Want(line["due"], so["id"], line["line_no"], line["material"], left)
            for so in orders
            for line in so["lines"]
            if (left := _d(line["quantity"]) - _total(line["shipments"])) > 0
        )
        sent = 0
        for material in co.FINISHED:
            for lot in await self._lots(material):
                lot_id, quantity = lot["id"], _d(lot["quantity"])
                # A lot goes to as many order lines as it takes, split off a part for each.
                while quantity > 0 and sent < self.timing.most_per_step:
                    want = next((w for w in wanted if w.material == material and w.left), None)
                    if want is None:
                        break
                    stamp = self._stamp()
                    part, rest = lot_id, ""
                    if quantity > want.left:
                        part = f"{lot_id[:40]}-s{stamp}"[:64]
                        rest = f"{lot_id[:40]}-r{stamp}"[:64]
                        await self._transaction({"kind": "split", "id": f"sp-{stamp}",
                                                 "lot_id": lot_id, "parts": [
                                                     {"lot_id": part, "quantity": str(want.left)},
                                                     {"lot_id": rest,
                                                      "quantity": str(quantity - want.left)}]})  # fmt: skip
                    amount = min(quantity, want.left)
                    await self.ask(
                        "sales_order_ship",
                        id=want.order,
                        lot_id=part,
                        line_no=want.line_no,
                        shipment_id=f"SH-{stamp}",
                        user=USER,
                    )
                    want.left -= amount
                    lot_id, quantity = rest, quantity - amount
                    sent += 1
                    self.counts.shipments += 1

    async def sell(self) -> None:
        """Confirm the quote of the last round; a customer sends a new one."""
        drafts = (await self.ask("sales_orders", states=["draft"], limit=50))["orders"]
        for so in drafts[:1]:
            await self.ask("sales_order_action", id=so["id"], action="confirm", user=USER)
            self.counts.sales_confirmed += 1
        made = {line.product for line in self.company.lines}
        buyers = [(c, p) for p in co.FINISHED if p in made for c in self.company.customers_of(p)]
        if not buyers:
            return
        # Customers take turns by the clock, so a restart does not start over with the first.
        turn = self._plat.clock.now_us() // 1_000_000 // max(int(self.timing.sell_s), 1)
        customer, product = sorted(buyers)[turn % len(buyers)]
        # Juice by the pallet (1,200 bottles), brackets by the crate of 60.
        pack = 1200 if product == co.JUICE else 60
        quantity = pack * self._rng.randint(1, 3)
        order = {
            "id": f"SO-{self._stamp()}",
            "customer": customer,
            "lines": [{"line_no": 1, "material": product, "quantity": str(quantity),
                       "due": co.due(self._today(), self._rng.randint(2, 6))}],
        }  # fmt: skip
        await self.ask("sales_order_create", order=order)
        self.counts.sales_orders += 1

    async def plan(self) -> None:
        """Run planning; confirm its purchase proposals and send every draft purchase order."""
        await self.ask("plan_run")
        self.counts.plan_runs += 1
        proposals = (await self.ask("proposals", states=["proposed"], limit=500))["proposals"]
        bought = [p for p in proposals if p["kind"] == "purchase_order"]
        for p in bought[: self.timing.most_per_step]:
            await self.ask(
                "proposal_confirm", id=p["id"], order_id=f"PO-{self._stamp()}", user=USER
            )
            self.counts.purchase_orders += 1
        drafts = (await self.ask("purchase_orders", states=["draft"], limit=50))["orders"]
        for po in drafts:
            await self.ask("purchase_order_action", id=po["id"], action="send", user=USER)
