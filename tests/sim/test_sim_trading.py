"""The virtual factory's company trades through the real value chain engine, in one process on
the in-process bus: seeding makes the organisations, the two-level bill of materials, stock,
open orders and a shipped juice lot whose genealogy reaches the concentrate lots; seeding again
(also after a restart) changes nothing; a step receives, tops up line sides, mixes, ships and
plans; a refusal or an absent engine never stops the loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from kiln.core.bus import Command, CommandError, CommandFailure, InProcessBus
from kiln.core.platform import Platform, Stage
from kiln.sim import FactorySpec
from kiln.sim.trading import SimTrading, TradeTiming
from kiln.testing import FakeClock
from kiln.valuechain.engine import ValuechainEngine
from kiln.valuechain.settings import ValuechainSettings
from kiln.valuechain.store import ValuechainStore

# The demo's plant: one machining line of six CNCs, one packaging line of three fillers.
SPEC = FactorySpec(machines_per_line=6, fillers_per_line=3)
PACK_SIDE, MACHINING_SIDE = "LS-PACK-line1", "LS-MACH-line1"
SETTINGS = ValuechainSettings(follow_production=False)


@asynccontextmanager
async def engine(
    data: Path, clock: FakeClock, *, trading: SimTrading | None = None
) -> AsyncIterator[Platform]:
    """The real value chain engine on a platform of its own (and the trading service, to run
    its loop); the store in `data`, so a second one there is a restart."""
    platform = Platform(clock=clock, data_dir=data, bus=InProcessBus(clock))
    store = ValuechainStore(SETTINGS.url_in(data), clock=clock)
    platform.add(ValuechainEngine(store, SETTINGS), Stage.ENGINES)
    if trading is not None:
        platform.add(trading, Stage.ENGINES)
    async with platform:
        yield platform
        assert platform.failed_tasks == {}


async def ask(platform: Platform, name: str, **args: Any) -> Mapping[str, Any]:
    return await platform.bus.request(Command("valuechain", name, args), timeout_s=10)


async def lot(platform: Platform, lot_id: str) -> Mapping[str, Any]:
    return (await ask(platform, "lot", id=lot_id))["lot"]


async def until(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def tick(clock: FakeClock, trading: SimTrading) -> None:
    """One period of the loop: the clock moves on, and the loop steps and sleeps again."""
    steps = trading.steps
    await clock.advance(trading.timing.period_s)
    await until(lambda: trading.steps == steps + 1 and clock.sleepers == 1)


async def snapshot(platform: Platform) -> tuple[Any, ...]:
    """Everything the engine holds that seeding could change."""
    return (
        (await ask(platform, "events", limit=5000))["events"],
        (await ask(platform, "lots", limit=5000))["lots"],
        (await ask(platform, "organisations"))["organisations"],
        (await ask(platform, "sales_orders"))["orders"],
        (await ask(platform, "purchase_orders"))["orders"],
        (await ask(platform, "proposals"))["proposals"],
    )


async def test_seeding_makes_the_demo_company(tmp_path: Path) -> None:
    async with engine(tmp_path, FakeClock()) as platform:
        trading = SimTrading(SPEC)
        trading.attach(platform)
        assert await trading.seed() and trading.seeded and trading.seed_changes > 50

        orgs = {o["code"]: o for o in (await ask(platform, "organisations"))["organisations"]}
        assert orgs["acme"]["kind"] == "enterprise" and orgs["acme"]["tenant"] == "default"
        kinds = [o["kind"] for o in orgs.values()]
        assert (kinds.count("customer"), kinds.count("supplier")) == (3, 3)
        assert len({o["tenant"] for o in orgs.values()}) == 7  # a partner tenant each

        master = await ask(platform, "master")
        boms = {b["parent"]: {ln["component"] for ln in b["lines"]} for b in master["boms"]}
        assert boms["JUICE-1L"] == {"BOTTLE", "CAP", "JUICE-MIX"}
        assert boms["JUICE-MIX"] == {"ORANGE-CONC", "SUGAR"}  # the second level
        assert boms["BRACKET-A"] == {"STEEL-BAR"}
        materials = {m["code"]: m for m in master["materials"]}
        assert (materials["ORANGE-CONC"]["unit"], materials["ORANGE-CONC"]["decimals"]) == ("kg", 2)
        assert materials["JUICE-MIX"]["kind"] == "made"
        assert materials["BOTTLE"]["supplier"] == "GLASSPACK"

        locations = {x["code"]: x for x in (await ask(platform, "locations"))["locations"]}
        assert locations[PACK_SIDE]["asset_path"] == "acme/plant1/packaging/line1"
        assert locations[MACHINING_SIDE]["kind"] == "line_side"
        assert locations["WH"]["asset_path"] == "acme/plant1"

        stock = {(r["location"], r["material"]): Decimal(r["quantity"])
                 for r in (await ask(platform, "inventory"))["inventory"]}  # fmt: skip
        assert stock[(PACK_SIDE, "BOTTLE")] == 17600  # 20,000 received, 2,400 bottled
        assert stock[("WH", "BOTTLE")] == 20000
        assert stock[(PACK_SIDE, "JUICE-MIX")] == Decimal("8575.7")  # 11,000 l less 2,424.3
        assert stock[("WH", "ORANGE-CONC")] == 1240  # 3,000 kg received, 1,760 mixed
        assert stock[(MACHINING_SIDE, "STEEL-BAR")] == 60

        purchases = {o["id"]: o for o in (await ask(platform, "purchase_orders"))["orders"]}
        assert purchases["PO-DEMO-1"]["state"] == "partially_received"
        assert purchases["PO-DEMO-4"]["state"] == "sent"
        sales = (await ask(platform, "sales_orders", states=["confirmed"]))["orders"]
        assert len(sales) == 4 and len({o["customer"] for o in sales}) == 3
        assert (await ask(platform, "sales_order", id="SO-DEMO-1"))["order"]["state"] == "shipped"
        assert (await ask(platform, "proposals"))["proposals"]  # the first planning run


async def test_seeding_again_or_after_a_restart_changes_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    async with engine(tmp_path, clock) as platform:
        trading = SimTrading(SPEC)
        trading.attach(platform)
        await trading.seed()
        before = await snapshot(platform)
        assert await trading.seed() and trading.seed_changes == 0
        assert await snapshot(platform) == before
    await clock.advance(3600)
    async with engine(tmp_path, clock) as platform:
        again = SimTrading(SPEC)
        again.attach(platform)
        assert await again.seed() and again.seed_changes == 0
        assert await snapshot(platform) == before


async def test_the_shipped_juice_lot_leads_back_to_the_concentrate_lots(tmp_path: Path) -> None:
    async with engine(tmp_path, FakeClock()) as platform:
        trading = SimTrading(SPEC)
        trading.attach(platform)
        await trading.seed()
        juice = await lot(platform, "PACK-DEMO-1-1")
        assert (juice["state"], juice["customer"], juice["sales_order"]) == (
            "shipped",
            "FRESHMART",
            "SO-DEMO-1",
        )
        trace = await ask(platform, "genealogy", lot="PACK-DEMO-1-1")
        depth = {n["id"]: n["depth"] for n in trace["nodes"]}
        assert depth == {
            "PACK-DEMO-1-1": 0,
            "BOTTLE-D1": 1,
            "CAP-D1": 1,
            "MIX-DEMO-1-1": 1,
            "CONC-D1": 2,
            "CONC-D2": 2,
            "SUGAR-D1": 2,
        }
        conc = {n["id"]: n["lot"] for n in trace["nodes"] if n["depth"] == 2}
        assert conc["CONC-D1"]["supplier"] == "CITRUSCO"
        assert conc["CONC-D1"]["supplier_lot"] == "CC-2611-041"
        # And forward: a concentrate lot reaches the shipped juice.
        ahead = await ask(platform, "genealogy", lot="CONC-D2", direction="forward")
        reached = {n["id"]: n["lot"] for n in ahead["nodes"]}
        assert reached["PACK-DEMO-1-1"]["customer"] == "FRESHMART"


async def test_a_step_receives_tops_up_mixes_ships_sells_and_plans(tmp_path: Path) -> None:
    async with engine(tmp_path, FakeClock()) as platform:
        trading = SimTrading(SPEC)
        trading.attach(platform)
        await trading.seed()
        await trading.step(everything=True)
        c = trading.counts
        assert trading.health().detail["failing"] == {}
        # Two deliveries a run, the earliest promised first: concentrate due today, bottles.
        assert c.receipts == 2
        lots = (await ask(platform, "lots", limit=5000))["lots"]
        received = [x for x in lots if x["purchase_order"] and "-D" not in x["id"]]
        assert sorted(x["material"] for x in received) == ["BOTTLE", "ORANGE-CONC"]
        # The machining line's side had 60 m of bar; a lot moved up from the warehouse.
        assert c.moves == 1
        bars = [x for x in lots if x["material"] == "STEEL-BAR"]
        assert sum(1 for x in bars if x["location"] == MACHINING_SIDE) == 2
        # 8,575.7 l of mix are less than the 10,909.1 l an order of 10,800 bottles takes.
        assert c.mix_batches == 1
        mix = [x for x in (await ask(platform, "lots", material="JUICE-MIX"))["lots"]
               if x["id"].startswith("MIX-2")]  # fmt: skip
        assert [(x["quantity"], x["location"]) for x in mix] == [("11000", PACK_SIDE)]
        trace = await ask(platform, "genealogy", lot=mix[0]["id"])
        used = {n["lot"]["material"] for n in trace["nodes"] if n["depth"] == 1}
        assert used == {"ORANGE-CONC", "SUGAR"}
        # The seeded second juice lot went to the earliest confirmed order wanting juice.
        assert (await lot(platform, "PACK-DEMO-1-2"))["sales_order"] == "SO-DEMO-2"
        assert c.shipments == 1
        # The quote was confirmed and a new one came in; planning ran and ordered.
        so6 = (await ask(platform, "sales_order", id="SO-DEMO-6"))["order"]
        assert so6["state"] == "confirmed" and c.sales_orders == 1
        assert c.plan_runs == 1 and c.purchase_orders >= 1
        assert not (await ask(platform, "purchase_orders", states=["draft"]))["orders"]

        # A lot larger than what the order still wants is split; the rest goes to the next.
        await ask(platform, "lot_transaction", transaction={
            "kind": "produce", "id": "t-p", "lot_id": "WO-T-1", "material": "JUICE-1L",
            "quantity": "5000", "unit": "bottles", "location": PACK_SIDE, "order_id": "WO-T"})  # fmt: skip
        await trading.ship()
        so2 = (await ask(platform, "sales_order", id="SO-DEMO-2"))["order"]
        assert so2["state"] == "shipped"
        parts = {x["id"]: x for x in (await ask(platform, "lots", limit=5000))["lots"]
                 if x["id"].startswith("WO-T-1-")}  # fmt: skip
        assert sorted((p["quantity"], p["sales_order"]) for p in parts.values()) == [
            ("2400", "SO-DEMO-2"),
            ("2600", "SO-DEMO-4"),
        ]
        assert (await lot(platform, "WO-T-1"))["state"] == "consumed"  # split


async def test_the_loop_waits_for_the_engine_and_goes_on_after_refusals(tmp_path: Path) -> None:
    """Through a stand-in target: first nobody answers it, then it refuses some commands
    once (a receipt as invalid, planning as unavailable) and passes the rest on."""
    clock = FakeClock()
    timing = TradeTiming(period_s=10, receive_s=30, plan_s=30)
    trading = SimTrading(SPEC, timing, target="flaky")
    refuse = {
        "purchase_order_receive": CommandFailure.INVALID,
        "plan_run": CommandFailure.UNAVAILABLE,
    }
    async with engine(tmp_path, clock, trading=trading) as platform:
        await until(lambda: clock.sleepers == 1)
        assert not trading.seeded and "nobody serves" in trading.last_error

        async def flaky(command: Command) -> Mapping[str, Any]:
            if trading.seeded and (kind := refuse.pop(command.name, None)) is not None:
                raise CommandError(kind, f"conflict: {command.name} refused for the test")
            return await ask(platform, command.name, **command.args)

        server = await platform.bus.serve("flaky", flaky)
        try:
            await tick(clock, trading)
            assert trading.seeded
            failing = trading.health().detail["failing"]
            assert set(failing) == {"receive", "plan"}
            # The rest went on: a lot shipped; the mix batch waits for the refused receipt.
            assert trading.counts.shipments == 1 and trading.counts.mix_batches == 0
            assert "ORANGE-CONC" in trading.counts.waiting["mix LS-PACK-line1"]
            for _ in range(3):  # past receive_s and plan_s: both again, now answered
                await tick(clock, trading)
            assert trading.counts.plan_runs == 1
            assert trading.health().detail["failing"] == {}
            assert trading.counts.receipts > 0 and trading.counts.mix_batches == 1
            assert trading.counts.waiting == {}
        finally:
            await server.close()
