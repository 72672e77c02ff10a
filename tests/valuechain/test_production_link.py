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
