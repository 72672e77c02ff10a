"""Production through the HTTP API, end to end in one process: a filler's state and counters
ingested over HTTP with past timestamps, the production engine on the in-process bus, its store
in SQLite; figures asked for over HTTP and compared with figures computed by hand."""

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
from kiln.production.calendar import CalendarDef, ShiftDef
from kiln.production.orders import Product
from kiln.production.settings import ProductionSettings
from kiln.production.taxonomy import Category, CounterDef, ReasonDef, StateModel, StateRule
from kiln.testing.auth import admin_headers, device_headers, user_headers

V = "/api/v1"
PASSWORD = "correct horse battery staple"
SITE = "acme/site1"
LINE1, LINE2 = f"{SITE}/area1/line1", f"{SITE}/area1/line2"
F1, F2 = f"{LINE1}/filler", f"{LINE2}/filler"
MIN_US = 60_000_000
HOUR_US = 60 * MIN_US
RUNNING, STOPPED = 1, 2

FILLER = AssetTypeDef(
    name="filler",
    tags=(
        TagDef(
            name="state", data_type=DataType.STATE, states={RUNNING: "running", STOPPED: "stopped"}
        ),
        TagDef(name="good"),
        TagDef(name="scrap"),
    ),
)
MODEL = StateModel(
    state_tag="state",
    rules=(StateRule(state="running", category=Category.RUNNING),),
    reasons=(
        ReasonDef(
            name="mechanical", category=Category.TECHNICAL, children=(ReasonDef(name="jam"),)
        ),
        ReasonDef(name="material", category=Category.MATERIAL),
    ),
    good=CounterDef(tag="good"),
    scrap=CounterDef(tag="scrap"),
    ideal_cycle_s=1.0,
)


def _hhmm(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%H:%M")


def _calendar(t0: int) -> CalendarDef:
    """Shift a until 30 minutes into the scripted hour, shift b from then on (UTC)."""
    return CalendarDef(
        site=SITE,
        timezone="UTC",
        shifts=(
            ShiftDef(name="a", start=_hhmm(t0 - 6 * HOUR_US), end=_hhmm(t0 + 30 * MIN_US)),
            ShiftDef(name="b", start=_hhmm(t0 + 30 * MIN_US), end=_hhmm(t0 + 6 * HOUR_US)),
        ),
    )


def wait_for(check: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (got := check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return got


class Plant:
    def __init__(self, client: TestClient, data: Path, t0: int) -> None:
        self.client = client
        self.t0 = t0
        self.admin = admin_headers(client, data)
        self.device = device_headers(client, self.admin, "gw", "acme")

    def ingest(self, asset: str, minute: float, **values: float) -> None:
        ts = datetime.fromtimestamp((self.t0 + minute * MIN_US) / 1e6, UTC).isoformat()
        items = [{"path": f"{asset}/{k}", "value": v, "ts": ts} for k, v in values.items()]
        r = self.client.post(f"{V}/ingest", json={"values": items}, headers=self.device)
        assert r.status_code == 200, r.text

    def get(self, url: str, *, headers: dict[str, str] | None = None, **params: Any) -> Any:
        r = self.client.get(f"{V}{url}", params=params, headers=headers or self.admin)
        assert r.status_code == 200, r.text
        return r.json()

    def hour(self) -> dict[str, Any]:
        return {"start": str(self.t0 // 1000), "end": str((self.t0 + HOUR_US) // 1000)}

    def oee(self, asset: str = F1, **params: Any) -> Any:
        return self.get("/oee", asset=asset, **self.hour(), **params)

    def script(self) -> None:
        """The scripted hour of F1: running 40 min, stopped 10, running 10; 2,500 good and 100
        scrap. F2 runs the whole hour."""
        self.ingest(F1, 0, state=RUNNING, good=0, scrap=0)
        self.ingest(F1, 40, state=STOPPED, good=1800, scrap=60)
        self.ingest(F1, 50, state=RUNNING)
        self.ingest(F1, 59, good=2500, scrap=100)
        self.ingest(F1, 60, state=STOPPED)
        self.ingest(F2, 0, state=RUNNING, good=0)
        self.ingest(F2, 59, good=3000)
        wait_for(lambda: self.oee()["total"]["counts"]["good"] == 2500)
        wait_for(lambda: self.oee(F2)["total"]["counts"]["good"] == 3000)


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Plant]:
    now = int(time.time() * 1e6)
    t0 = now - now % HOUR_US - 3 * HOUR_US
    data = tmp_path / "data"
    settings = make_settings(
        data,
        model=ModelSettings(
            types=[FILLER],
            assets=[
                AssetDef(path="acme", level=Level.ENTERPRISE),
                AssetDef(path=F1, level=Level.ASSET, type="filler"),
                AssetDef(path=F2, level=Level.ASSET, type="filler"),
            ],
        ),
        production=ProductionSettings(
            types={"filler": MODEL},
            calendars=[_calendar(t0)],
            products=[Product(code="cola", name="Cola 0.5 l", ideal_cycle_s=1.0)],
        ),
    )
    with make_app_client(settings) as client:
        yield Plant(client, data, t0)


def _kpi(figures: dict[str, Any], name: str) -> float:
    value = figures[name]["value"]
    assert isinstance(value, float)
    return value


def test_the_oee_of_a_scripted_hour_is_the_hand_computed_one(plant: Plant) -> None:
    plant.script()
    total = plant.oee()["total"]
    times = total["time_elements_us"]
    # PBT 60 min (inside shifts, no breaks); APT 50 min; the 10-minute stop has no reason.
    assert times["planned_busy_time"] == 60 * MIN_US
    assert times["actual_production_time"] == 50 * MIN_US
    assert times["unaccounted_time"] == 10 * MIN_US
    assert total["counts"] == {"produced": 2600, "good": 2500, "scrap": 100}
    assert _kpi(total, "availability") == pytest.approx(50 / 60)
    assert _kpi(total, "performance") == pytest.approx(2600 / 3000)  # 1 s per unit
    assert _kpi(total, "quality") == pytest.approx(2500 / 2600)
    assert _kpi(total, "oee") == pytest.approx(2500 / 3600)
    # A line's figures are the sums of its assets' times and counts.
    line = plant.get("/oee", asset=f"{SITE}/area1", **plant.hour())
    assert line["assets"] == [F1, F2]
    assert line["total"]["time_elements_us"]["actual_production_time"] == 110 * MIN_US
    assert _kpi(line["total"], "availability") == pytest.approx(110 / 120)


def test_by_shift_buckets_cut_the_hour_at_the_shift_change(plant: Plant) -> None:
    plant.script()
    buckets = plant.oee(by="shift")["buckets"]
    assert [b["key"].rsplit("/", 1)[1] for b in buckets] == ["a", "b"]
    a, b = buckets
    assert a["end_us"] == b["start_us"] == plant.t0 + 30 * MIN_US
    assert a["time_elements_us"]["actual_production_time"] == 30 * MIN_US
    assert b["time_elements_us"]["actual_production_time"] == 20 * MIN_US
    assert b["time_elements_us"]["planned_busy_time"] == 30 * MIN_US
    shifts = plant.get("/shifts", site=SITE, **plant.hour())["shifts"]
    assert [s["name"] for s in shifts] == ["a", "b"]


def test_assign_split_reassign_and_the_trail(plant: Plant) -> None:
    plant.script()
    stop = {"asset": F1, "start": plant.t0 + 40 * MIN_US, "end": plant.t0 + 50 * MIN_US}
    post = plant.client.post
    r = post(f"{V}/states/reasons", json={**stop, "reason": "mechanical/jam"}, headers=plant.admin)
    assert r.status_code == 200, r.text
    pieces = [
        {"end": plant.t0 + 44 * MIN_US, "reason": "material", "comment": "no bottles"},
        {"reason": "mechanical/jam"},
    ]
    r = post(f"{V}/states/split", json={**stop, "pieces": pieces}, headers=plant.admin)
    assert r.status_code == 200, r.text
    states = plant.get("/states", asset=F1, **plant.hour())["intervals"]
    stops = [(s["start_us"] - plant.t0, s["category"], s["source"]) for s in states]
    assert stops == [
        (0, "running", "machine"),
        (40 * MIN_US, "material", "operator"),
        (44 * MIN_US, "technical", "operator"),
        (50 * MIN_US, "running", "machine"),
    ]
    pareto = plant.get("/oee/pareto", asset=F1, **plant.hour())
    assert [(i["reason"], i["duration_us"]) for i in pareto["items"]] == [
        ("mechanical/jam", 6 * MIN_US),
        ("material", 4 * MIN_US),
    ]
    assert pareto["failures"] == 1 and pareto["mttr_us"] == 6 * MIN_US
    by_category = plant.get("/oee/pareto", asset=F1, group="category", **plant.hour())
    assert [i["category"] for i in by_category["items"]] == ["technical", "material"]
    r = post(
        f"{V}/states/reasons",
        json={**stop, "reason": "material", "action": "reassign", "comment": "it was bottles"},
        headers=plant.admin,
    )
    assert r.status_code == 200, r.text
    times = plant.oee()["total"]["time_elements_us"]
    assert times["actual_unit_delay_time"] == 10 * MIN_US  # counted once, not per record
    trail = plant.get("/production/records", asset=F1, **plant.hour())["records"]
    assert [(t["action"], t["reason"], t["user"]) for t in trail] == [
        ("assign", "mechanical/jam", "admin"),
        ("split", "material", "admin"),
        ("split", "mechanical/jam", "admin"),
        ("reassign", "material", "admin"),
    ]
    auditor = user_headers(plant.client, plant.admin, "aud", PASSWORD, ["auditor"])
    audit = plant.get("/audit", headers=auditor, category="production")["records"]
    assert sorted(r["action"] for r in audit) == ["assign", "reassign", "split"]
    assert {(r["target"], r["result"]) for r in audit} == {(F1, "success")}


def test_bad_input_is_a_400_that_says_why(plant: Plant) -> None:
    post, get = plant.client.post, plant.client.get
    stop = {"asset": F1, "start": plant.t0, "end": plant.t0 + MIN_US}
    r = post(f"{V}/states/reasons", json={**stop, "reason": "gremlins"}, headers=plant.admin)
    assert r.status_code == 400 and "mechanical/jam" in r.json()["detail"], r.text
    r = get(f"{V}/oee", params={"asset": F1, "start": "yesterday"}, headers=plant.admin)
    assert r.status_code == 400 and "invalid time" in r.json()["detail"], r.text
    r = get(f"{V}/oee", params={"asset": F1, "start": "now", "end": "-1h"}, headers=plant.admin)
    assert r.status_code == 400 and "must be after" in r.json()["detail"], r.text
    pieces = [{"end": plant.t0 + 2 * MIN_US, "reason": "material"}, {"reason": "material"}]
    r = post(f"{V}/states/split", json={**stop, "pieces": pieces}, headers=plant.admin)
    assert r.status_code == 400 and "within the stop" in r.json()["detail"], r.text
    calendar = {"site": SITE, "timezone": "Mars/Olympus", "shifts": []}
    r = plant.client.put(f"{V}/calendars/{SITE}", json=calendar, headers=plant.admin)
    assert r.status_code == 400 and "unknown time zone" in r.json()["detail"], r.text


def test_work_order_lifecycle_and_refusals(plant: Plant) -> None:
    post, admin = plant.client.post, plant.admin
    order = {"id": "WO-1", "product": "cola", "line": LINE1, "quantity": 5000}
    r = post(f"{V}/orders", json=order, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["order"]["state"] == "planned"
    assert post(f"{V}/orders", json=order, headers=admin).status_code == 409  # id taken
    r = post(f"{V}/orders", json={**order, "id": "WO-2", "product": "fanta"}, headers=admin)
    assert r.status_code == 400 and "not known" in r.json()["detail"], r.text
    r = post(f"{V}/orders/WO-1/start", json={}, headers=admin)
    assert r.status_code == 400 and "it allows: release, cancel" in r.json()["detail"], r.text
    for action, state, version in (("release", "released", 2), ("start", "running", 3)):
        r = post(f"{V}/orders/WO-1/{action}", json={"expected_version": version - 1}, headers=admin)
        assert r.status_code == 200, r.text
        assert (r.json()["order"]["state"], r.json()["order"]["version"]) == (state, version)
    r = post(f"{V}/orders/WO-1/pause", json={"expected_version": 2}, headers=admin)
    assert r.status_code == 409 and "changed meanwhile" in r.json()["detail"], r.text
    r = post(f"{V}/orders/WO-1/cancel", json={}, headers=admin)
    assert r.status_code == 400 and "cannot cancel" in r.json()["detail"], r.text
    r = post(f"{V}/orders/WO-1/complete", json={"comment": "done"}, headers=admin)
    assert r.json()["order"]["state"] == "completed"
    one = plant.get("/orders/WO-1")
    assert [e["action"] for e in one["events"]] == ["release", "start", "complete"]
    listed = plant.get("/orders", state=["completed", "running"], line=LINE1)["orders"]
    assert [o["id"] for o in listed] == ["WO-1"]
    assert plant.get("/orders", state="planned")["orders"] == []
    assert plant.client.get(f"{V}/orders/WO-9", headers=admin).status_code == 404


def test_a_user_scoped_to_another_line_sees_nothing_of_this_one(plant: Plant) -> None:
    plant.script()
    client = plant.client
    op2 = user_headers(client, plant.admin, "op2", PASSWORD, ["operator"], scope=LINE2)
    planner = user_headers(client, plant.admin, "plan", PASSWORD, ["planner"], scope=LINE2)
    hour = plant.hour()
    r = client.get(f"{V}/oee", params={"asset": F1, **hour}, headers=op2)
    assert r.status_code == 404 and r.json()["detail"].startswith("no production data for")
    ghost = client.get(f"{V}/oee", params={"asset": f"{F1}x", **hour}, headers=op2)
    assert r.json()["detail"].replace(F1, "?") == ghost.json()["detail"].replace(f"{F1}x", "?")
    # The site's sums hold only what the caller sees.
    site = plant.get("/oee", headers=op2, asset=SITE, **hour)
    assert site["assets"] == [F2]
    assert site["total"]["time_elements_us"]["actual_production_time"] == 60 * MIN_US
    assets = plant.get("/production/assets", headers=op2)["assets"]
    assert [a["asset"] for a in assets] == [F2]
    assert [a["asset"] for a in plant.get("/production/live", headers=op2)["assets"]] == [F2]
    for url in ("/states", "/oee/pareto", "/production/records", "/production/reasons"):
        assert client.get(f"{V}{url}", params={"asset": F1, **hour}, headers=op2).status_code == 404
    stop = {"asset": F1, "start": plant.t0 + 40 * MIN_US, "end": plant.t0 + 50 * MIN_US}
    r = client.post(f"{V}/states/reasons", json={**stop, "reason": "material"}, headers=op2)
    assert r.status_code == 404
    # Orders: line1's is not there for a line2 user; a planner may plan on line2 only.
    order = {"id": "WO-7", "product": "cola", "line": LINE1, "quantity": 10, "state": "released"}
    assert client.post(f"{V}/orders", json=order, headers=planner).status_code == 404
    assert client.post(f"{V}/orders", json=order, headers=plant.admin).status_code == 201
    assert client.get(f"{V}/orders/WO-7", headers=op2).status_code == 404
    assert client.post(f"{V}/orders/WO-7/start", json={}, headers=op2).status_code == 404
    assert plant.get("/orders", headers=op2)["orders"] == []
    mine = {**order, "id": "WO-8", "line": LINE2}
    assert client.post(f"{V}/orders", json=mine, headers=planner).status_code == 201
    # A planner does not run the machines, an operator does not plan.
    assert client.post(f"{V}/orders/WO-8/start", json={}, headers=planner).status_code == 403
    assert client.post(f"{V}/orders/WO-8/start", json={}, headers=op2).status_code == 200
    assert client.post(f"{V}/orders/WO-8/cancel", json={}, headers=op2).status_code == 403


def test_products_and_calendars_crud(plant: Plant) -> None:
    client, admin = plant.client, plant.admin
    product = {"name": "Water 1 l", "ideal_cycle_s": 0.5, "per_asset": {LINE1: 0.4}}
    r = client.put(f"{V}/products/water", json=product, headers=admin)
    assert r.status_code == 200, r.text
    codes = {p["code"]: p for p in plant.get("/products")["products"]}
    assert set(codes) == {"cola", "water"} and codes["water"]["per_asset"] == {LINE1: 0.4}
    r = client.put(f"{V}/products/water", json={**product, "ideal_cycle_s": -1}, headers=admin)
    assert r.status_code == 400 and "ideal_cycle_s" in r.json()["detail"], r.text
    assert client.delete(f"{V}/products/water", headers=admin).status_code == 200
    assert client.delete(f"{V}/products/water", headers=admin).status_code == 404
    # A calendar set here replaces the plant file's; deleting it brings that one back.
    cal = {"site": SITE, "timezone": "Europe/Berlin", "shifts": [
        {"name": "day", "start": "06:00", "end": "18:00"}]}  # fmt: skip
    r = client.put(f"{V}/calendars/{SITE}", json=cal, headers=admin)
    assert r.status_code == 200, r.text
    (shown,) = plant.get("/calendars")["calendars"]
    assert shown["timezone"] == "Europe/Berlin"
    r = client.put(f"{V}/calendars/{SITE}", json={**cal, "site": "acme/site9"}, headers=admin)
    assert r.status_code == 400 and "not 'acme/site1'" in r.json()["detail"], r.text
    assert client.delete(f"{V}/calendars/{SITE}", headers=admin).status_code == 200
    (back,) = plant.get("/calendars")["calendars"]
    assert back["timezone"] == "UTC"
    assert client.delete(f"{V}/calendars/{SITE}", headers=admin).status_code == 404
    assert (
        client.get(f"{V}/shifts", params={"site": "acme/site9"}, headers=admin).status_code == 404
    )
    viewer = user_headers(client, admin, "v", PASSWORD, ["viewer"])
    assert client.put(f"{V}/products/x", json=product, headers=viewer).status_code == 403
    assert client.put(f"{V}/calendars/{SITE}", json=cal, headers=viewer).status_code == 403


def test_a_planner_changes_only_products_whose_asset_times_are_in_scope(plant: Plant) -> None:
    """Products are plant-wide, their per-asset times are not: a line2 planner neither sees
    line1's ideal cycle time nor overwrites or deletes a product that carries one."""
    client, admin = plant.client, plant.admin
    planner = user_headers(client, admin, "plan2", PASSWORD, ["planner"], scope=LINE2)
    both = {"name": "Lemonade", "ideal_cycle_s": 0.5, "per_asset": {LINE1: 0.4, LINE2: 0.6}}
    assert client.put(f"{V}/products/lemon", json=both, headers=admin).status_code == 200
    shown = {p["code"]: p for p in plant.get("/products", headers=planner)["products"]}
    assert shown["lemon"]["per_asset"] == {LINE2: 0.6}
    mine = {"name": "Lemonade", "ideal_cycle_s": 0.5, "per_asset": {LINE2: 0.7}}
    r = client.put(f"{V}/products/lemon", json=mine, headers=planner)
    assert r.status_code == 403 and "outside your scope" in r.json()["detail"]
    assert client.delete(f"{V}/products/lemon", headers=planner).status_code == 403
    own = client.put(f"{V}/products/lime", json=mine, headers=planner)
    assert own.status_code == 200, own.text


def _spc(plant: Plant, *, headers: dict[str, str] | None = None, **params: Any) -> Any:
    return plant.client.get(
        f"{V}/spc", params={**plant.hour(), **params}, headers=headers or plant.admin
    )


def _wait_for_points(plant: Plant, count: int, **params: Any) -> Any:
    def charted() -> Any:
        r = _spc(plant, **params)
        assert r.status_code == 200, r.text
        return r.json() if len(r.json()["points"]) == count else None

    return wait_for(charted)


def test_a_p_chart_over_history_takes_n_from_sample_size_tags(plant: Plant) -> None:
    """Each count's n is the sum of the size tags' values current at its time."""
    defective = [2, 3, 1, 4, 2, 9]
    passed = [48, 57, 39, 46, 78, 41]
    for minute, (d, g) in enumerate(zip(defective, passed, strict=True)):
        plant.ingest(F1, minute, scrap=d, good=g)
    params = {"tag": f"{F1}/scrap", "chart": "p", "rolling": 3}
    out = _wait_for_points(plant, 6, **params, sample_size_tags=f"{F1}/good, {F1}/scrap")
    n = [d + g for d, g in zip(defective, passed, strict=True)]
    assert [p["n"] for p in out["points"]] == n
    assert [p["value"] for p in out["points"]] == [d / s for d, s in zip(defective, n, strict=True)]
    # The last against the three before: p̄ = Σd/Σn, UCL = p̄ + 3 √(p̄(1 - p̄)/n).
    p_bar = (1 + 4 + 2) / (40 + 50 + 80)
    last = out["points"][-1]["limits"]
    assert last["cl"] == pytest.approx(p_bar)
    assert last["ucl"] == pytest.approx(p_bar + 3 * (p_bar * (1 - p_bar) / 50) ** 0.5)
    assert out["violations"] == [{"time_us": plant.t0 + 5 * MIN_US, "rules": [1]}]
    # Every tag read needs values:read, as the charted one: a line2 user is told no such tag.
    op2 = user_headers(plant.client, plant.admin, "op2", PASSWORD, ["operator"], scope=LINE2)
    r = _spc(plant, headers=op2, tag=f"{F2}/scrap", chart="p", sample_size_tags=f"{F1}/good")
    assert r.status_code == 404 and f"{F1}/good" in r.json()["detail"], r.text
    r = _spc(plant, **params, sample_size_tags=f"{F1}/nothing")
    assert r.status_code == 404, r.text
    r = _spc(plant, **params, sample_size_tags=" , ")
    assert r.status_code == 400 and "sample_size_tags" in r.json()["detail"], r.text
    # A tag named twice would count its n twice; a long list is refused before any read.
    r = _spc(plant, **params, sample_size_tags=f"{F1}/good,{F1}/good")
    assert r.status_code == 400 and "more than once" in r.json()["detail"], r.text
    r = _spc(plant, **params, sample_size_tags=",".join(f"{F1}/t{i}" for i in range(21)))
    assert r.status_code == 400 and "at most 20" in r.json()["detail"], r.text


def test_a_p_chart_on_counters_over_history(plant: Plant) -> None:
    """Counters sampled every 5 minutes, charted per 10: increases, through a reset."""
    good = [1000 + 100 * i for i in range(12)]
    scrap = [20, 22, 24, 26, 28, 30, 1, 3, 5, 7, 17, 27]  # reset to 0 at minute 30, +1 since
    for i in range(12):
        plant.ingest(F1, 5 * i, good=good[i], scrap=scrap[i])
    params = {
        "tag": f"{F1}/scrap",
        "chart": "p",
        "counter": "true",
        "subgroup_s": 600,
        "rollover": 65536,
        "rolling": 3,
        "sample_size_counters": f"{F1}/good,{F1}/scrap",
    }
    out = _wait_for_points(plant, 5, **params)  # window 0 only starts the counts
    d, n = [4, 4, 3, 4, 20], [204, 204, 203, 204, 220]
    assert [p["n"] for p in out["points"]] == n
    assert [p["value"] for p in out["points"]] == [a / b for a, b in zip(d, n, strict=True)]
    p_bar = (4 + 3 + 4) / (204 + 203 + 204)
    last = out["points"][-1]["limits"]
    assert last["cl"] == pytest.approx(p_bar)
    assert last["ucl"] == pytest.approx(p_bar + 3 * (p_bar * (1 - p_bar) / 220) ** 0.5)
    assert out["violations"] == [{"time_us": plant.t0 + 55 * MIN_US, "rules": [1]}]
    # From the middle of the data: each counter starts from its value before the range, so the
    # first window in it is whole (without that it would only start the counts).
    later = _spc(plant, **params, start=str((plant.t0 + 20 * MIN_US) // 1000))
    assert later.status_code == 200, later.text
    assert [p["value"] for p in later.json()["points"]] == [p["value"] for p in out["points"][1:]]
    # A counter that did not change in the range (reported on change only) counts as zero.
    plant.ingest(F1, 65, good=2200)
    plant.ingest(F1, 75, good=2300)
    quiet = {**params, "start": str((plant.t0 + 60 * MIN_US) // 1000)}
    quiet["end"] = str((plant.t0 + 80 * MIN_US) // 1000)
    steady = _spc(plant, **quiet)
    assert steady.status_code == 200, steady.text
    assert [(p["value"], p["n"]) for p in steady.json()["points"]] == [(0.0, 100.0), (0.0, 100.0)]
    # Bad combinations are a 400 naming the field.
    for bad, says in (
        ({"chart": "imr"}, "chart p, np, c or u"),
        ({"subgroup_s": None}, "give subgroup_s"),
        ({"sample_size_counters": None, "sample_size_tags": f"{F1}/good"}, "sample_size_tag"),
        ({"counter": "false"}, "sample_size_counters needs counter"),
    ):
        asked = {k: v for k, v in {**params, **bad}.items() if v is not None}
        r = plant.client.get(f"{V}/spc", params={**plant.hour(), **asked}, headers=plant.admin)
        assert r.status_code == 400 and says in r.json()["detail"], (bad, r.text)
