"""Lots from production, end to end in one process: a filler's good counter ingested while a
work order runs; when the order pauses and completes, the value chain books the good units as
lots and backflushes the bill of materials from the bottles and syrup received, first in first
out, the line-side stock first; the finished lot's genealogy leads back to the supplier lots."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
from api_helpers import make_app_client, make_settings

from kiln.model.definitions import AssetDef, AssetTypeDef, DataType, Level, TagDef
from kiln.model.settings import ModelSettings
from kiln.production.orders import Product
from kiln.production.settings import ProductionSettings
from kiln.production.taxonomy import Category, CounterDef, StateModel, StateRule
from kiln.testing.auth import admin_headers, device_headers
from kiln.valuechain.settings import ValuechainSettings

V = "/api/v1"
LINE = "acme/site1/area1/line1"
FILLER = f"{LINE}/filler"
TYPE = AssetTypeDef(
    name="filler",
    tags=(
        TagDef(name="state", data_type=DataType.STATE, states={1: "running", 2: "stopped"}),
        TagDef(name="good"),
    ),
)
MODEL = StateModel(
    state_tag="state",
    rules=(StateRule(state="running", category=Category.RUNNING),),
    good=CounterDef(tag="good"),
    ideal_cycle_s=1.0,
)


def wait_for(check: Callable[[], Any], timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (got := check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)
    return got


class Plant:
    def __init__(self, client: TestClient, data: Path) -> None:
        self.client = client
        self.admin = admin_headers(client, data)
        self.device = device_headers(client, self.admin, "gw", "acme")

    def ok(self, method: str, url: str, **kw: Any) -> Any:
        r = self.client.request(method, f"{V}{url}", headers=self.admin, **kw)
        assert r.status_code in (200, 201), (method, url, r.status_code, r.text)
        return r.json()

    def ingest(self, **values: float) -> None:
        ts = datetime.now(UTC).isoformat()
        items = [{"path": f"{FILLER}/{k}", "value": v, "ts": ts} for k, v in values.items()]
        r = self.client.post(f"{V}/ingest", json={"values": items}, headers=self.device)
        assert r.status_code == 200, r.text


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Plant]:
    data = tmp_path / "data"
    settings = make_settings(
        data,
        model=ModelSettings(
            types=[TYPE],
            assets=[
                AssetDef(path="acme", level=Level.ENTERPRISE),
                AssetDef(path=LINE, level=Level.LINE),
                AssetDef(path=FILLER, level=Level.ASSET, type="filler"),
            ],
        ),
        production=ProductionSettings(
            types={"filler": MODEL}, products=[Product(code="COLA", name="Cola", ideal_cycle_s=1)]
        ),
        valuechain=ValuechainSettings(follow_production_s=0.2),
    )
    with make_app_client(settings) as client:
        p = Plant(client, data)
        p.ok("PUT", "/organisations/GLASS", json={"code": "GLASS", "name": "Glass",
                                                  "kind": "supplier", "tenant": "glass"})  # fmt: skip
        for code, kind, unit, decimals in (("COLA", "finished", "pcs", 0),
                                           ("BOTTLE", "purchased", "pcs", 0),
                                           ("SYRUP", "purchased", "l", 2)):  # fmt: skip
            p.ok("PUT", f"/materials/{code}", json={"code": code, "name": code, "kind": kind,
                                                    "unit": unit, "decimals": decimals})  # fmt: skip
        p.ok(
            "PUT",
            "/boms/COLA",
            json={
                "parent": "COLA",
                "lines": [
                    {"component": "BOTTLE", "quantity": "1"},
                    {"component": "SYRUP", "quantity": "0.05", "scrap_percent": "20"},
                ],
            },
        )
        p.ok("PUT", "/locations/L1-SIDE", json={"code": "L1-SIDE", "asset_path": LINE,
                                                 "kind": "line_side"})  # fmt: skip
        for lot, material, qty, where in (
            ("B-OLD", "BOTTLE", "30", "acme/wh"),  # older, but not at the line
            ("B-1", "BOTTLE", "100", "L1-SIDE"),
            ("B-2", "BOTTLE", "500", "L1-SIDE"),
            ("S-1", "SYRUP", "4.5", "L1-SIDE"),
        ):
            p.ok("POST", "/lots/transactions", json={
                "kind": "receive", "id": f"r-{lot}", "lot_id": lot, "material": material,
                "quantity": qty, "unit": "l" if material == "SYRUP" else "pcs",
                "location": where, "supplier": "GLASS"})  # fmt: skip
        yield p


def test_an_orders_good_units_become_lots_and_its_bill_is_backflushed(plant: Plant) -> None:
    p = plant
    p.ok("POST", "/orders", json={"id": "WO-1", "product": "COLA", "line": LINE,
                                  "quantity": 500, "state": "released"})  # fmt: skip
    p.ok("POST", "/orders/WO-1/start", json={})
    p.ingest(state=1, good=0)
    time.sleep(0.05)
    p.ingest(good=120)
    time.sleep(0.05)
    p.ok("POST", "/orders/WO-1/pause", json={})
    first = wait_for(lambda: p.client.get(f"{V}/lots/WO-1-1", headers=p.admin).json().get("lot"))
    assert (first["material"], first["quantity"], first["location"]) == ("COLA", "120", "L1-SIDE")
    # 120 bottles: all of B-1 (the older at the line), 20 of B-2; B-OLD is not at the line.
    lots = {lot["id"]: lot for lot in p.ok("GET", "/lots")["lots"]}
    assert (lots["B-1"]["state"], lots["B-2"]["quantity"]) == ("consumed", "480")
    assert lots["B-OLD"]["quantity"] == "30"
    # Syrup: 120 x 0.05 / (1 - 0.20) = 7.5 l, but 4.5 are there: all consumed, 3 short.
    assert lots["S-1"]["state"] == "consumed"
    events = p.ok("GET", "/valuechain/events")["events"]
    booked = [e for e in events if e["kind"] == "production"]
    assert booked[0]["data"]["shortages"] == ["SYRUP 3.00"]
    # Planning: WO-1 will still make 380 (500 less the 120 booked), and its remaining units
    # hold 380 bottles and 380 x 0.05 / 0.8 = 23.75 l of syrup in reserve.
    p.ok("POST", "/planning/runs", json={})
    proposals = {x["material"]: x for x in p.ok("GET", "/planning/proposals")["proposals"]}
    syrup = proposals["SYRUP"]["explanation"]
    assert (syrup["reserved"], syrup["stock_on_hand"]) == ("23.75", "0"), syrup
    assert "BOTTLE" not in proposals  # 510 in stock cover the 380 reserved
    # Resumed and completed: only the new units are booked, as a second lot.
    p.ok("POST", "/orders/WO-1/resume", json={})
    time.sleep(0.05)
    p.ingest(good=200)
    time.sleep(0.05)
    p.ok("POST", "/orders/WO-1/complete", json={})
    second = wait_for(lambda: p.client.get(f"{V}/lots/WO-1-2", headers=p.admin).json().get("lot"))
    assert second["quantity"] == "80"
    trace = p.ok("GET", "/lots/WO-1-2/genealogy")
    assert {n["id"] for n in trace["nodes"]} == {"WO-1-2", "B-1", "B-2", "S-1"}
    # The lot's production context, like an event frame: its order's two runs on the line,
    # the filler, and what the good counter did meanwhile.
    frame = p.ok("GET", "/lots/WO-1-2/production")
    assert frame["order"]["id"] == "WO-1" and len(frame["windows"]) == 2
    assert [m["asset"] for m in frame["machines"]] == [FILLER]
    good = next(v for v in frame["values"] if v["tag"] == f"{FILLER}/good")
    assert (good["min"], good["max"]) == (0, 200), good
    assert frame["alarms"] == [] and frame["notes"] == []
    received = p.ok("GET", "/lots/B-1/production")
    assert received["order"] is None and "not made by a production order" in received["notes"][0]
    # The recall of a bottle lot reaches both cola lots.
    recall = p.ok("POST", "/recalls", json={"lots": ["B-2"]})
    assert set(recall["quarantine"]) == {"B-2", "WO-1-1", "WO-1-2"}
    assert recall["orders_to_stop"] == []  # WO-1 is completed: production says so


def test_an_event_booked_again_after_a_crash_books_nothing_twice(tmp_path: Path) -> None:
    """The same order event read twice (the engine died after committing, before it knew):
    the order's booking record says what is booked, so the second reading adds nothing."""
    from types import SimpleNamespace

    from kiln.valuechain.documents import CURSOR, ORDER_BOOKING
    from kiln.valuechain.master import Material
    from kiln.valuechain.production_link import CURSOR_NAME, ProductionFollower
    from kiln.valuechain.store import ValuechainStore

    store = ValuechainStore(f"sqlite:///{tmp_path / 'vc.db'}")
    store.open()
    try:
        store.put_material(Material(code="COLA", name="Cola", kind="finished"))
        follower = ProductionFollower(SimpleNamespace(now_us=lambda: 1))  # type: ignore[arg-type]
        event = {
            "seq": 7,
            "new_state": "completed",
            "time_us": 5,
            "good": 40.0,
            "order": {"id": "WO-9", "product": "COLA", "line": LINE},
        }
        follower._book(store, event, 7)
        follower._book(store, event, 7)
        assert [lot.id for lot in store.lots()] == ["WO-9-1"]
        assert store.lot("WO-9-1").quantity == 40  # type: ignore[union-attr]
        assert store.document(ORDER_BOOKING, "WO-9").doc.lots == 1  # type: ignore[union-attr]
        assert store.document(CURSOR, CURSOR_NAME).doc.seq == 7  # type: ignore[union-attr]
        # A running order's event moves the cursor and books nothing.
        follower._book(store, {**event, "seq": 8, "new_state": "running"}, 8)
        assert len(store.lots()) == 1 and store.document(CURSOR, CURSOR_NAME).doc.seq == 8  # type: ignore[union-attr]
    finally:
        store.close()


# -- the follower on its own: a store in SQLite, production's event log a list ----------------


class FakeProduction:
    """Production's `order_events` over a list the test fills; `visible` hides the events
    not committed yet (PostgreSQL can commit a later number first)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.hidden: set[int] = set()
        self.asked: list[int] = []
        self.fail_next: Exception | None = None

    async def request(self, command: Any, timeout_s: float) -> dict[str, Any]:
        if self.fail_next is not None:
            err, self.fail_next = self.fail_next, None
            raise err
        after, limit = command.args["after"], command.args["limit"]
        self.asked.append(after)
        shown = [e for e in self.events if e["seq"] > after and e["seq"] not in self.hidden]
        return {"events": sorted(shown, key=lambda e: e["seq"])[:limit]}


class Follower:
    """A ValuechainStore, a fake engine around it and a ProductionFollower."""

    def __init__(self, tmp_path: Path) -> None:
        from types import SimpleNamespace

        from kiln.valuechain.master import Material
        from kiln.valuechain.production_link import ProductionFollower
        from kiln.valuechain.store import ValuechainStore

        self.store = ValuechainStore(f"sqlite:///{tmp_path / 'vc.db'}")
        self.store.open()
        self.store.put_material(Material(code="COLA", name="Cola", kind="finished"))
        self.production = FakeProduction()

        async def call(fn: Callable[[], Any]) -> Any:
            return fn()

        self.engine = SimpleNamespace(
            store=self.store,
            now_us=lambda: 1,
            read=call,
            write=call,
            platform=SimpleNamespace(bus=self.production),
            settings=SimpleNamespace(follow_production_s=0.01),
        )
        self.follower = ProductionFollower(self.engine)  # type: ignore[arg-type]
        self.seq = 0

    def restart(self) -> None:
        from kiln.valuechain.production_link import ProductionFollower

        self.follower = ProductionFollower(self.engine)  # type: ignore[arg-type]

    def event(self, order: str, good: float, *, state: str = "paused", **extra: Any) -> int:
        self.seq += 1
        body = {"id": order, "product": "COLA", "line": LINE, **extra}
        self.production.events.append(
            {"seq": self.seq, "new_state": state, "time_us": 5, "good": good, "order": body}
        )
        return self.seq

    def step(self) -> int:
        import asyncio

        return asyncio.run(self.follower.step())

    def cursor(self) -> int:
        from kiln.valuechain.documents import CURSOR
        from kiln.valuechain.production_link import CURSOR_NAME

        found = self.store.document(CURSOR, CURSOR_NAME)
        return 0 if found is None else found.doc.seq

    def lots_of(self, order: str) -> dict[str, str]:
        return {lot.id: str(lot.quantity) for lot in self.store.lots() if lot.order_id == order}

    def receive(self, lot: str, material: str, quantity: str) -> None:
        from decimal import Decimal

        from kiln.valuechain.lots import Receive

        self.store.apply(
            Receive(id=f"r-{lot}", time_us=1, lot_id=lot, material=material,
                    quantity=Decimal(quantity), unit="pcs", location="wh", supplier="S")
        )  # fmt: skip


@pytest.fixture
def follower(tmp_path: Path) -> Iterator[Follower]:
    f = Follower(tmp_path)
    try:
        yield f
    finally:
        f.store.close()


def test_a_lot_name_taken_or_cut_short_is_made_unique(follower: Follower) -> None:
    """`WO-9-1` exists already (received under that name), and two order ids of 63 characters
    differ in their last: `<order>-1` and the transactions' ids cut at 64 would be one. Each
    booking still gets a lot of its own."""
    from kiln.valuechain.master import Material

    f = follower
    f.store.put_material(Material(code="BOTTLE", name="Bottle", kind="purchased"))
    f.receive("WO-9-1", "BOTTLE", "5")
    f.event("WO-9", 40)
    long_a, long_b = "L" * 62 + "A", "L" * 62 + "B"
    f.event(long_a, 10)
    f.event(long_b, 11)
    assert f.step() == 3
    (mine,) = f.lots_of("WO-9")
    assert mine != "WO-9-1" and mine.startswith("WO-9-1-") and len(mine) <= 64
    assert f.lots_of("WO-9")[mine] == "40"
    assert f.store.lot("WO-9-1").quantity == 5  # type: ignore[union-attr]
    (a,), (b,) = f.lots_of(long_a), f.lots_of(long_b)
    assert a != b and len(a) == len(b) == 64
    assert f.follower.booked == 3 and f.follower.last_error is None and f.cursor() == 3


def test_a_booking_that_fails_is_recorded_once_and_passed_over(follower: Follower) -> None:
    """An event whose order lacks its line cannot be booked: it becomes a `production_failed`
    event and the follower's error, the cursor moves past it, and the next order is booked."""
    f = follower
    bad = f.event("WO-BAD", 10)
    del f.production.events[-1]["order"]["line"]
    f.event("WO-OK", 12)
    assert f.step() == 2
    assert f.lots_of("WO-OK") == {"WO-OK-1": "12"} and f.lots_of("WO-BAD") == {}
    assert f.cursor() == 2
    failed = [e for e in f.store.events() if e.kind == "production_failed"]
    assert [(e.body["order"], e.body["seq"]) for e in failed] == [("WO-BAD", bad)]
    assert "line" in failed[0].body["reason"]
    assert f.follower.failed == 1
    # The follower's error (the engine's health) is the last failure until a booking succeeds.
    assert f.follower.last_error is None  # WO-OK was booked after WO-BAD failed
    # Read again after a restart (the window behind the cursor): not recorded twice.
    f.restart()
    f.step()
    assert len([e for e in f.store.events() if e.kind == "production_failed"]) == 1
    assert f.cursor() == 2
    # A failure that is the latest shows in the follower's error (the engine's health).
    f.event("WO-BAD2", 3)
    del f.production.events[-1]["order"]["line"]
    f.step()
    assert f.follower.last_error is not None and "WO-BAD2" in f.follower.last_error
    assert f.cursor() == 3


def test_an_event_committed_late_below_the_cursor_is_still_booked(follower: Follower) -> None:
    """Event 2 commits after event 3: the first step sees only 3 and moves the cursor to 3;
    the next reads the window behind the cursor again and books 2, the cursor staying at 3."""
    f = follower
    f.event("WO-1", 10)
    late = f.event("WO-2", 20)
    f.event("WO-3", 30)
    f.production.hidden.add(late)
    f.step()
    assert f.cursor() == 3 and f.lots_of("WO-2") == {}
    f.production.hidden.clear()
    f.step()
    assert f.lots_of("WO-2") == {"WO-2-1": "20"} and f.cursor() == 3
    assert f.production.asked == [0, 0]  # the window: 100 numbers behind the cursor
    # Read again, nothing is booked twice (nor after a restart, from the booking records).
    f.restart()
    f.step()
    assert sum(len(f.lots_of(o)) for o in ("WO-1", "WO-2", "WO-3")) == 3
    assert f.follower.booked == 0


def test_backflush_rounds_once_for_the_order_and_retries_a_shortage(follower: Follower) -> None:
    """One cap per ten units in whole caps: ten pauses of 3 units consume 3 caps, not 10; a
    cap short at one booking is taken at the next when stock has come."""
    from decimal import Decimal

    from kiln.valuechain.documents import ORDER_BOOKING
    from kiln.valuechain.lots import Consume
    from kiln.valuechain.master import Bom, BomLine, Material

    f = follower
    f.store.put_material(Material(code="CAP", name="Cap", kind="purchased"))
    f.store.put_bom(
        Bom(parent="COLA", output_quantity=Decimal(10), lines=(BomLine(component="CAP",
                                                                       quantity=Decimal(1)),))
    )  # fmt: skip
    f.receive("C-1", "CAP", "100")
    for k in range(1, 11):
        f.event("WO-1", 3 * k, state="completed" if k == 10 else "paused")
    f.step()
    assert len(f.lots_of("WO-1")) == 10
    assert f.store.lot("C-1").quantity == 97  # type: ignore[union-attr]
    booking = f.store.document(ORDER_BOOKING, "WO-1").doc  # type: ignore[union-attr]
    assert booking.consumed == {"CAP": Decimal(3)} and booking.shortages == ()
    # A shortage: 20 units need 2 caps, 1 is there; then 10 more arrive and 30 units are done.
    f.receive("C-2", "CAP", "1")
    f.store.apply(
        Consume(id="use-rest", time_us=2, lot_id="C-1", quantity=Decimal(97), order_id="OTHER")
    )
    f.event("WO-2", 20)
    f.step()
    booking = f.store.document(ORDER_BOOKING, "WO-2").doc  # type: ignore[union-attr]
    assert booking.consumed == {"CAP": Decimal(1)} and booking.shortages == ("CAP 1",)
    f.receive("C-3", "CAP", "10")
    f.event("WO-2", 30, state="completed")
    f.step()
    booking = f.store.document(ORDER_BOOKING, "WO-2").doc  # type: ignore[union-attr]
    assert booking.consumed == {"CAP": Decimal(3)} and booking.shortages == ("CAP 1",)
    assert f.store.lot("C-3").quantity == 8  # type: ignore[union-attr]


def test_a_booking_stored_before_consumption_was_kept_takes_it_from_the_ledger(
    follower: Follower,
) -> None:
    """A booking record written before `consumed` was kept: what its order consumed is read
    from the ledger, so the next booking does not backflush it again."""
    from decimal import Decimal

    from sqlalchemy import update

    from kiln.valuechain.documents import ORDER_BOOKING, OrderBooking
    from kiln.valuechain.lots import Consume
    from kiln.valuechain.master import Bom, BomLine, Material
    from kiln.valuechain.schema import VC_DOCUMENTS

    f = follower
    f.store.put_material(Material(code="CAP", name="Cap", kind="purchased"))
    f.store.put_bom(
        Bom(parent="COLA", output_quantity=Decimal(10), lines=(BomLine(component="CAP",
                                                                       quantity=Decimal(1)),))
    )  # fmt: skip
    f.receive("C-1", "CAP", "100")
    # What the old follower left after 3 units: one cap (rounded up), a booking without it.
    f.store.apply(
        Consume(id="bf-old", time_us=2, lot_id="C-1", quantity=Decimal(1), order_id="WO-1")
    )
    f.store.put(ORDER_BOOKING, OrderBooking(order_id="WO-1", produced=Decimal(3), lots=1))
    c = VC_DOCUMENTS.c
    with f.store.engine.begin() as conn:
        conn.execute(
            update(VC_DOCUMENTS)
            .where(c.kind == ORDER_BOOKING.name, c.id == "WO-1")
            .values(body={"order_id": "WO-1", "produced": "3", "lots": 1, "shortages": []})
        )
    f.event("WO-1", 30, state="completed")
    f.step()
    assert f.store.lot("C-1").quantity == 97  # type: ignore[union-attr]
    booking = f.store.document(ORDER_BOOKING, "WO-1").doc  # type: ignore[union-attr]
    assert booking.consumed == {"CAP": Decimal(3)} and booking.lots == 2


def test_the_follower_outlives_an_unexpected_failure(follower: Follower) -> None:
    """An error no one foresaw (here a reply that breaks) is the follower's error, and the
    task goes on: the next poll books."""
    import asyncio
    import contextlib

    f = follower
    f.production.fail_next = RuntimeError("broken reply")
    f.event("WO-1", 10)

    async def scenario() -> str | None:
        task = asyncio.create_task(f.follower.run())
        try:
            seen_error = None
            for _ in range(500):
                seen_error = seen_error or f.follower.last_error
                if f.follower.booked:
                    break
                await asyncio.sleep(0.005)
            assert not task.done()
            return seen_error
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    seen = asyncio.run(scenario())
    assert seen is not None and "broken reply" in seen
    assert f.lots_of("WO-1") == {"WO-1-1": "10"} and f.follower.last_error is None
