"""The production pages (issue 15) in Debian's Chromium, against `kiln run` of a small plant.

Three fillers on one line share an asset type with a state model (a state tag mapped to
categories, a reason tree, good and scrap counters); the site has a shift calendar and there is
one product. Their states, counts and a weight series arrive with past timestamps over the HTTP
ingest route, as a device would send them, so every figure on the pages is the production
engine's own. What the pages show is compared with what the API answers; what people do in
them (a reason, a split, an order created, released and started) is checked through the API.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from browser_helpers import CSP_LISTENER, chromium

from kiln.api.routers.production import ACTION_PERMISSION
from kiln.production.orders import TRANSITIONS, OrderState
from kiln.production.taxonomy import Category
from kiln.testing.auth import admin_headers, device_headers, initial_admin_password, user_headers
from kiln.testing.server import free_port, kiln_command, running_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

pytestmark = pytest.mark.slow

STATIC = Path(__file__).resolve().parents[2] / "src" / "kiln" / "web" / "static"
WAIT = 15_000
MIN_US = 60_000_000
HOUR_US = 60 * MIN_US
LINE = "acme/site/line1"
F1, F2, F3 = (f"{LINE}/filler{i}" for i in (1, 2, 3))
RUNNING, STOPPED, SETUP, FAULT = 1, 2, 3, 4
PASSWORD = "steady-lantern-47-quiet-moss"
WEIGHT_POINTS = 40  # the last one far outside: Nelson rule 1


def plant_yaml(data_dir: Path, port: int) -> str:
    """The plant file (YAML flow mappings need their braces doubled in this f-string)."""
    fillers = "".join(f"    - {{path: {f}, level: asset, type: filler}}\n" for f in (F1, F2, F3))
    return f"""
name: Production pages test
data_dir: {data_dir}
log_level: warning
http: {{host: 127.0.0.1, port: {port}}}
model:
  types:
    - name: filler
      tags:
        - {{name: state, data_type: state, states: {{1: running, 2: stopped, 3: setup, 4: fault}}}}
        - {{name: good}}
        - {{name: scrap}}
        - {{name: weight, unit: g, spec: {{lsl: 497, usl: 503, target: 500}}}}
  assets:
    - {{path: acme, level: enterprise}}
    - {{path: acme/site, level: site}}
    - {{path: {LINE}, level: line}}
{fillers}
production:
  types:
    filler:
      state_tag: state
      rules:
        - {{state: running, category: running}}
        - {{state: setup, category: setup}}
        - {{state: fault, category: technical, reason: mechanical}}
      reasons:
        - name: mechanical
          category: technical
          children: [{{name: jam}}, {{name: motor}}]
        - {{name: material, category: material}}
      good: {{tag: good}}
      scrap: {{tag: scrap}}
      ideal_cycle_s: 1.0
  calendars:
    - site: acme/site
      timezone: UTC
      shifts:
        - {{name: early, start: "06:00", end: "14:00"}}
        - {{name: late, start: "14:00", end: "22:00"}}
        - {{name: night, start: "22:00", end: "06:00"}}
  products:
    - {{code: cola, name: Cola 0.5 l, ideal_cycle_s: 1.0}}
"""


@dataclass(frozen=True)
class Plant:
    url: str
    data_dir: Path
    admin: dict[str, str]
    device: dict[str, str]
    t0: int  # µs: three hours before the current hour began

    @property
    def password(self) -> str:
        return initial_admin_password(self.data_dir)

    def at(self, minute: float) -> int:
        return self.t0 + round(minute * MIN_US)

    def ingest(self, asset: str, minute: float, **values: float) -> None:
        ts = datetime.fromtimestamp(self.at(minute) / 1e6, UTC).isoformat()
        items = [{"path": f"{asset}/{k}", "value": v, "ts": ts} for k, v in values.items()]
        r = httpx.post(f"{self.url}/api/v1/ingest", json={"values": items}, headers=self.device)
        assert r.status_code == 200, r.text

    def get(self, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.url}/api/v1{path}", params=params, headers=self.admin, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def window(self) -> dict[str, str]:
        """The scripted three hours, as epoch ms (as the page asks for them)."""
        return {"start": str(self.t0 // 1000), "end": str(self.at(180) // 1000)}


def script(p: Plant) -> None:
    """Filler 1 runs with two unexplained stops (40-50 and 70-90 min) and runs on; filler 2
    goes into setup at 60 min, filler 3 into a fault at 30 min; a weight series on filler 1."""
    p.ingest(F1, 0, state=RUNNING, good=0, scrap=0)
    p.ingest(F1, 40, state=STOPPED, good=1800, scrap=60)
    p.ingest(F1, 50, state=RUNNING)
    p.ingest(F1, 70, state=STOPPED, good=2900, scrap=80)
    p.ingest(F1, 90, state=RUNNING)
    p.ingest(F1, 150, good=6000, scrap=100)
    p.ingest(F2, 0, state=RUNNING, good=0, scrap=0)
    p.ingest(F2, 60, state=SETUP, good=3000, scrap=10)
    p.ingest(F3, 0, state=RUNNING, good=0, scrap=0)
    p.ingest(F3, 30, state=FAULT, good=1500, scrap=5)
    noise = random.Random(15)
    for i in range(WEIGHT_POINTS):
        value = 500 + noise.gauss(0, 0.4) if i < WEIGHT_POINTS - 1 else 506.0
        p.ingest(F1, 100 + i, weight=value)
    deadline = time.monotonic() + 20
    while p.get("/oee", asset=F1, **p.window())["total"]["counts"]["good"] != 6000:
        assert time.monotonic() < deadline, "the engine never counted filler 1's units"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plant]:
    folder = tmp_path_factory.mktemp("production-pages")
    port = free_port()
    data = folder / "data"
    config = folder / "plant.yaml"
    config.write_text(plant_yaml(data, port), encoding="utf-8")
    now = int(time.time() * 1e6)
    t0 = now - now % HOUR_US - 3 * HOUR_US
    with running_server(
        kiln_command("run", "--config", str(config)), port=port, log=folder / "server.log"
    ):
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            admin = admin_headers(client, data)
            device = device_headers(client, admin, "line-plc", "acme")
            for name, role in (("olga", "operator"), ("paul", "planner"), ("vera", "viewer")):
                user_headers(client, admin, name, PASSWORD, [role])
        p = Plant(url, data, admin, device, t0)
        script(p)
        yield p


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@dataclass
class Watch:
    errors: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        text = message.text
        csp = text.startswith("CSP violation") or "Content Security Policy" in text
        # The 401 of GET /auth/me before signing in is expected.
        if csp or (message.type == "error" and "status of 401" not in text):
            self.errors.append(text)


@pytest.fixture
def session(browser: Browser, plant: Plant) -> Iterator[Any]:
    """`open(user, tab)`: a page signed in as `user` with the production tab open. Each user
    gets a context of its own; the browser runs in UTC so that time inputs are UTC."""
    contexts = []
    watch = Watch()

    def open_as(user: str, tab: str) -> Page:
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id="UTC")
        context.add_init_script(CSP_LISTENER)
        contexts.append(context)
        page = context.new_page()
        page.on("console", watch.console)
        page.goto(plant.url + "/")
        page.locator("#signin-form").wait_for(state="visible", timeout=WAIT)
        page.fill("#signin-username", user)
        page.fill("#signin-password", plant.password if user == "admin" else PASSWORD)
        page.click("#signin-submit")
        page.locator("#production-toggle").wait_for(state="visible", timeout=WAIT)
        page.click("#production-toggle")
        page.locator("#production").wait_for(state="visible", timeout=WAIT)
        assert page.locator("#plant").is_hidden(), "production replaces the plant view"
        page.click(f'.prd-tab[data-tab="{tab}"]')
        page.locator(f'.prd-pane[data-pane="{tab}"]').wait_for(timeout=WAIT)
        return page

    try:
        yield open_as
    finally:
        for context in contexts:
            context.close()
    assert watch.errors == []


def local_input(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_the_board_has_a_tile_per_machine_coloured_by_its_state(session: Any, plant: Plant) -> None:
    page = session("admin", "board")
    page.wait_for_function(
        "() => document.querySelectorAll('.prd-tile').length === 3", timeout=WAIT
    )
    live = {a["asset"]: a for a in plant.get("/production/live")["assets"]}
    expected = {F1: ("running", "running"), F2: ("setup", "setup"), F3: ("technical", "down")}
    for asset, (category, group) in expected.items():
        tile = page.locator(f'.prd-tile[data-asset="{asset}"]')
        assert tile.get_attribute("data-category") == category == live[asset]["category"]
        assert tile.get_attribute("data-group") == group
        # The shift's OEE so far: the tile's figure is the API's (it moves with the clock).
        shown = float(tile.get_attribute("data-oee") or "nan")
        assert shown == pytest.approx(live[asset]["oee"], abs=0.02)
        assert tile.locator(".prd-tile-oee").text_content() == f"{shown * 100:.1f} %"
    colours = {
        a: page.locator(f'.prd-tile[data-asset="{a}"]').evaluate(
            "el => getComputedStyle(el).borderLeftColor"
        )
        for a in expected
    }
    assert colours == {F1: "rgb(47, 158, 68)", F2: "rgb(28, 126, 214)", F3: "rgb(201, 42, 42)"}
    # A tile opens the OEE dashboard of its machine.
    page.click(f'.prd-tile[data-asset="{F1}"]')
    page.locator('.prd-pane[data-pane="oee"]').wait_for(timeout=WAIT)
    # The pane shows before its machine list has arrived (the select fills in when the fetch
    # answers), so wait for the preselection rather than read the select at once.
    scope = page.locator('.prd-pane select[name="scope"]')
    page.wait_for_function(
        "asset => document.querySelector('.prd-pane select[name=scope]')?.value === asset",
        arg=F1,
        timeout=WAIT,
    )
    assert scope.input_value() == F1


def test_the_oee_dashboard_shows_the_apis_figures_and_their_inputs(
    session: Any, plant: Plant
) -> None:
    page = session("admin", "oee")
    pane = page.locator('.prd-pane[data-pane="oee"]')
    pane.locator('select[name="scope"] option').first.wait_for(state="attached", timeout=WAIT)
    for scope in (F1, LINE):
        pane.locator('select[name="scope"]').select_option(scope)
        pane.locator('select[name="range"]').select_option("custom")
        pane.locator('input[name="from"]').fill(local_input(plant.t0))
        pane.locator('input[name="to"]').fill(local_input(plant.at(180)))
        before = pane.get_attribute("data-loaded")
        pane.locator('button[type="submit"]').click()
        page.wait_for_function(
            """([before, scope]) => {
                const p = document.querySelector('.prd-pane[data-pane="oee"]');
                return p.dataset.loaded && p.dataset.loaded !== before && p.dataset.asset === scope;
            }""",
            arg=[before, scope],
            timeout=WAIT,
        )
        api = plant.get("/oee", asset=scope, **plant.window())["total"]
        for kpi in ("availability", "performance", "quality", "oee"):
            shown = pane.locator(f'.prd-kpi[data-kpi="{kpi}"]').get_attribute("data-value")
            assert float(shown or "nan") == api[kpi]["value"], kpi
        # The states and the Pareto are those of the same range.
        states = plant.get("/states", asset=scope, **plant.window())["intervals"]
        assert pane.locator(".prd-timeline").get_attribute("data-bands") == str(len(states))
        pareto = plant.get("/oee/pareto", asset=scope, **plant.window())["items"]
        assert pane.locator(".prd-pareto").get_attribute("data-items") == str(len(pareto))
        assert pane.locator(".prd-pareto-bar").count() == len(pareto)
    # A figure opens into its formula and the numbers it was computed from.
    pane.locator('.prd-kpi[data-kpi="availability"]').click()
    inputs = pane.locator(".prd-inputs")
    inputs.wait_for(timeout=WAIT)
    assert "APT / PBT" in (inputs.locator("h4").text_content() or "")
    api = plant.get("/oee", asset=LINE, **plant.window())["total"]["availability"]["inputs"]
    for name, value in api.items():
        raw = inputs.locator(f'tr[data-input="{name}"] .prd-raw').text_content()
        assert float(raw or "nan") == value, name
    # The trend by shift has drawn its chart.
    assert pane.locator(".prd-trend-chart canvas").count() >= 1


def test_an_operator_assigns_a_reason_and_splits_a_stop(session: Any, plant: Plant) -> None:
    page = session("olga", "downtime")
    pane = page.locator('.prd-pane[data-pane="downtime"]')
    pane.locator('select[name="asset"] option').first.wait_for(state="attached", timeout=WAIT)
    pane.locator('select[name="asset"]').select_option(F1)
    pane.locator('select[name="range"]').select_option("-24h")
    first = pane.locator(f'.prd-stop[data-start="{plant.at(40)}"]')
    second = pane.locator(f'.prd-stop[data-start="{plant.at(70)}"]')
    second.wait_for(timeout=WAIT)
    assert first.get_attribute("data-category") == "unknown"
    assert first.get_attribute("data-end") == str(plant.at(50))

    first.click()
    jam = pane.locator('.prd-reason[data-reason="mechanical/jam"]')
    jam.wait_for(timeout=WAIT)
    for target in (jam, first, pane.locator('[data-role="save"]')):
        box = target.bounding_box()
        assert box is not None and box["height"] >= 48 and box["width"] >= 48, "touch target"
    jam.click()
    pane.locator('textarea[name="comment"]').fill("bottle stuck in the star wheel")
    pane.locator('[data-role="save"]').click()
    first.wait_for(state="detached", timeout=WAIT)  # it has a reason now: off the open list

    second.click()
    pane.locator('[data-role="split"]').click()
    pane.locator('input[name="end0"]').fill(local_input(plant.at(80)))
    pane.locator('select[name="reason0"]').select_option("material")
    pane.locator('select[name="reason1"]').select_option("mechanical/motor")
    pane.locator('input[name="comment0"]').fill("no caps")
    pane.locator('[data-role="save-split"]').click()
    second.wait_for(state="detached", timeout=WAIT)
    page.wait_for_function(
        "() => document.querySelector('.prd-trail').dataset.count === '3'", timeout=WAIT
    )

    records = plant.get("/production/records", asset=F1, **plant.window())["records"]
    got = [
        (r["action"], r["reason"], r["user"], r["start_us"], r["end_us"], r["comment"])
        for r in records
    ]
    assert got == [
        ("assign", "mechanical/jam", "olga", plant.at(40), plant.at(50), "bottle stuck in the star wheel"),
        ("split", "material", "olga", plant.at(70), plant.at(80), "no caps"),
        ("split", "mechanical/motor", "olga", plant.at(80), plant.at(90), ""),
    ]  # fmt: skip
    states = plant.get("/states", asset=F1, **plant.window())["intervals"]
    stops = [
        (s["start_us"], s["category"], s["reason"]) for s in states if s["category"] != "running"
    ]
    assert stops == [
        (plant.at(40), "technical", "mechanical/jam"),
        (plant.at(70), "material", "material"),
        (plant.at(80), "technical", "mechanical/motor"),
    ]
    # With "only stops without a reason" off, the entered ones are listed for reassigning.
    pane.locator('input[name="open"]').uncheck()
    pane.locator(f'.prd-stop[data-start="{plant.at(70)}"][data-reason="material"]').wait_for(
        timeout=WAIT
    )


def test_orders_board_buttons_follow_the_roles(session: Any, plant: Plant) -> None:
    planner = session("paul", "orders")
    pane = planner.locator('.prd-pane[data-pane="orders"]')
    pane.locator(".prd-order-new summary").click()
    form = pane.locator('form[data-form="order-create"]')
    form.locator('select[name="product"] option').first.wait_for(state="attached", timeout=WAIT)
    form.locator('input[name="id"]').fill("WO-1001")
    form.locator('select[name="product"]').select_option("cola")
    form.locator('select[name="line"]').select_option(LINE)
    form.locator('input[name="quantity"]').fill("5000")
    form.locator('button[type="submit"]').click()
    card = pane.locator('.prd-column[data-state="planned"] .prd-order[data-order="WO-1001"]')
    card.wait_for(timeout=WAIT)
    assert sorted(card.locator("button").evaluate_all("bs => bs.map(b => b.dataset.action)")) == [
        "cancel",
        "release",
    ]
    card.locator('button[data-action="release"]').click()
    released = pane.locator('.prd-column[data-state="released"] .prd-order[data-order="WO-1001"]')
    released.wait_for(timeout=WAIT)
    assert released.locator('button[data-action="start"]').count() == 0, (
        "starting is the operator's"
    )

    operator = session("olga", "orders")
    pane = operator.locator('.prd-pane[data-pane="orders"]')
    card = pane.locator('.prd-column[data-state="released"] .prd-order[data-order="WO-1001"]')
    card.wait_for(timeout=WAIT)
    assert pane.locator('form[data-form="order-create"]').count() == 0, "creating is the planner's"
    assert card.locator("button").evaluate_all("bs => bs.map(b => b.dataset.action)") == ["start"]
    card.locator('button[data-action="start"]').click()
    running = pane.locator('.prd-column[data-state="running"] .prd-order[data-order="WO-1001"]')
    running.wait_for(timeout=WAIT)
    order = plant.get("/orders/WO-1001")
    assert order["order"]["state"] == "running"
    assert [(e["action"], e["user"]) for e in order["events"]][-2:] == [
        ("release", "paul"),
        ("start", "olga"),
    ]

    viewer = session("vera", "orders")
    pane = viewer.locator('.prd-pane[data-pane="orders"]')
    pane.locator('.prd-order[data-order="WO-1001"]').wait_for(timeout=WAIT)
    assert pane.locator("button").count() == 0, "a viewer sees no action buttons"
    assert pane.locator('form[data-form="order-create"]').count() == 0
    viewer.click('.prd-tab[data-tab="downtime"]')
    stops = viewer.locator(".prd-stop")
    viewer.locator('.prd-pane[data-pane="downtime"] select[name="range"]').select_option("-24h")
    viewer.locator('.prd-pane[data-pane="downtime"] input[name="open"]').uncheck()
    stops.first.wait_for(timeout=WAIT)
    stops.first.click()
    assert viewer.locator(".prd-editor").is_hidden(), "a viewer cannot enter reasons"


def test_the_spc_chart_marks_a_rule_violation(session: Any, plant: Plant) -> None:
    page = session("admin", "spc")
    pane = page.locator('.prd-pane[data-pane="spc"]')
    tag = f"{F1}/weight"
    pane.locator('input[name="tag"]').fill(tag)
    pane.locator('select[name="chart"]').select_option("imr")
    pane.locator('select[name="range"]').select_option("-24h")
    pane.locator('button[type="submit"]').click()
    chart = pane.locator(".prd-spc-chart")
    page.wait_for_function(
        "() => document.querySelector('.prd-spc-chart').dataset.points > 0", timeout=WAIT
    )
    api = plant.get("/spc", tag=tag, chart="imr", start="-24h", end="now", rules="nelson")
    assert chart.get_attribute("data-points") == str(len(api["points"])) == str(WEIGHT_POINTS)
    assert chart.locator("canvas").count() >= 1
    outlier = plant.at(100 + WEIGHT_POINTS - 1)
    marked = pane.locator(f'.prd-spc-violation[data-time="{outlier}"]')
    assert 1 in [int(r) for r in (marked.get_attribute("data-rules") or "").split(",")]
    assert pane.locator(".prd-spc-violation").count() == len(api["violations"])
    # Capability against the tag's specification limits (497..503 g).
    cap = api["capability"]
    for key in ("cp", "cpk", "pp", "ppk"):
        shown = pane.locator(f'dd[data-cap="{key}"]').text_content()
        assert float(shown or "nan") == float(f"{cap[key]:.3g}"), key  # 3 significant digits


def test_a_p_chart_of_a_counter_per_window(session: Any, plant: Plant) -> None:
    # Filler 1's scrap counter over its good + scrap counters, per 10 minutes: the page asks
    # for the counter chart and draws what the API answers for the same question.
    page = session("admin", "spc")
    pane = page.locator('.prd-pane[data-pane="spc"]')
    pane.locator('input[name="tag"]').fill(f"{F1}/scrap")
    pane.locator('select[name="chart"]').select_option("p")
    assert pane.locator('input[name="window"]').is_hidden(), "a window only for a counter"
    pane.locator('input[name="counter"]').check()
    pane.locator('input[name="window"]').fill("10")
    pane.locator('input[name="sample_size"]').fill(f"{F1}/good, {F1}/scrap")
    pane.locator('select[name="range"]').select_option("-24h")
    pane.locator('button[type="submit"]').click()
    page.wait_for_function(
        "() => document.querySelector('.prd-spc-chart').dataset.points > 0", timeout=WAIT
    )
    api = plant.get(
        "/spc", tag=f"{F1}/scrap", chart="p", start="-24h", end="now", rules="nelson",
        counter="true", subgroup_s="600", sample_size_counters=f"{F1}/good,{F1}/scrap",
    )  # fmt: skip
    # The counter is first seen at 0 min (its count starts there); then 60 of 1,860 by 40 min,
    # 20 of 1,120 by 70 min and 20 of 3,120 by 150 min, one 10-minute window each.
    assert [round(p["value"], 6) for p in api["points"]] == [
        round(60 / 1860, 6), round(20 / 1120, 6), round(20 / 3120, 6)
    ]  # fmt: skip
    assert pane.locator(".prd-spc-chart").get_attribute("data-points") == "3"


# --- the page's own tables, under node ---------------------------------------------------------

MODEL_PROBE = """
const m = await import(process.argv[1]);
const out = {
  categories: Object.keys(m.CATEGORIES),
  actions: m.ORDER_ACTIONS,
  needs: m.ACTION_NEEDS,
  operator: m.orderActions("released", ["values:read", "production:enter"]),
  viewer: m.orderActions("planned", ["values:read"]),
  cuts: m.evenCuts(0, 90e6, 3),
  split: m.splitPieces(0, 90e6, [30e6, 60e6], ["a", "b", "c"], ["x"]),
  badSplit: m.splitPieces(0, 90e6, [60e6, 30e6], ["a", "b", "c"]),
  outside: m.splitPieces(0, 90e6, [90e6], ["a", "b"]),
  choices: m.reasonChoices([{ name: "m", path: "m", category: "technical", children: [
    { name: "jam", path: "m/jam", category: "technical", children: [] }] },
    { name: "x", path: "x", category: null, children: [] }]),
  line: [m.lineOf({ asset: "a/b/c", line: "" }), m.lineOf({ asset: "a/b/c", line: "a" })],
  percent: [m.percent(0.83333), m.percent(null)],
  duration: [m.duration(3_900e6), m.duration(750e6), m.duration(45e6)],
};
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def model_js() -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is required in CI to check the production pages' JavaScript")
        pytest.skip("node is not installed")
    result = subprocess.run(
        [node, "--input-type=module", "-e", MODEL_PROBE, str(STATIC / "production-model.js")],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_the_pages_order_actions_are_the_servers(model_js: dict[str, Any]) -> None:
    """The buttons offered are exactly the transitions the server accepts, by permission."""
    server: dict[str, set[str]] = {s.value: set() for s in OrderState}
    for state, action in TRANSITIONS:
        server[state.value].add(action.value)
    assert {s: set(a) for s, a in model_js["actions"].items()} == server
    assert model_js["needs"] == {a: p.value for a, p in ACTION_PERMISSION.items()}
    assert model_js["operator"] == ["start"]
    assert model_js["viewer"] == []


def test_every_state_category_has_a_colour_and_splits_are_checked(
    model_js: dict[str, Any],
) -> None:
    assert sorted(model_js["categories"]) == sorted(c.value for c in Category)
    assert model_js["cuts"] == [30e6, 60e6]
    assert model_js["split"] == {
        "pieces": [
            {"reason": "a", "comment": "x", "end": 30e6},
            {"reason": "b", "comment": "", "end": 60e6},
            {"reason": "c", "comment": ""},
        ]
    }
    assert "Cut 2" in model_js["badSplit"]["error"]
    assert "Cut 1" in model_js["outside"]["error"]
    assert [c["path"] for c in model_js["choices"]] == ["m", "m/jam"]
    assert model_js["line"] == ["a/b", "a"]
    assert model_js["percent"] == ["83.3 %", "—"]
    assert model_js["duration"] == ["1 h 05 min", "12 min 30 s", "45 s"]
