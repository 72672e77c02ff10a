"""The alarm console in the page (issue 14), in Debian's Chromium against a small plant.

The plant (alarm_plant.py) has ovens whose type carries limit alarms; values ingested over HTTP
raise them through the real engine, and the page is driven as an operator would: the header
indicator, the live list, acknowledging with a note, shelving with a duration, out of service,
the journal, the KPIs and the limit bands on the trend. What the page shows is checked against
what the API answers afterwards. Alarm states are those of ISA-18.2-2016 §11.5 (acknowledge,
shelve, out of service) as the server names them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from alarm_plant import OVENS, PRESS_HI, TEMP_HI, TEMP_LO, AlarmPlant, alarm_plant
from browser_helpers import CSP_LISTENER, chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request

pytestmark = pytest.mark.slow

WAIT = 15_000
STATIC = Path(__file__).resolve().parents[2] / "src" / "kiln" / "web" / "static"
OVEN1, OVEN2, OVEN3, OVEN4 = OVENS
VIEWER_PASSWORD = "quiet-harbour-58-amber-fox"


def temp_hi(oven: str) -> str:
    return f"{oven}/temp:hi"


def press_hi(oven: str) -> str:
    return f"{oven}/press:hi"


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlarmPlant]:
    with alarm_plant(tmp_path_factory.mktemp("alarm-console")) as p:
        # Oven 1: temperature high (ack one); oven 2: temperature and pressure high (ack many);
        # oven 3: normal until a test raises it live; oven 4: shelved and out of service.
        # Oven 1 goes below its low limit first: a limit is known once its alarm has been
        # active (the record keeps the limit in force then), so its trend has both bands.
        p.ingest({f"{OVEN1}/temperature": TEMP_LO - 5})
        p.wait_alarm(f"{OVEN1}/temp:lo", active=True)
        p.ingest(
            {
                f"{OVEN1}/temperature": TEMP_HI + 10,
                f"{OVEN1}/pressure": PRESS_HI - 3,
                f"{OVEN2}/temperature": TEMP_HI + 11,
                f"{OVEN2}/pressure": PRESS_HI + 1,
                f"{OVEN3}/temperature": 50.0,
                f"{OVEN4}/temperature": TEMP_HI + 12,
                f"{OVEN4}/pressure": PRESS_HI + 1.5,
            }
        )
        for alarm_id in (temp_hi(OVEN1), temp_hi(OVEN2), press_hi(OVEN2), temp_hi(OVEN4)):
            p.wait_alarm(alarm_id, active=True)
        p.wait_alarm(press_hi(OVEN4), active=True)
        yield p


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@dataclass
class Watch:
    """Console errors, CSP violations and the API calls of one page."""

    base: str
    errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("CSP violation"):
            self.csp.append(text)
        elif message.type == "error" and "status of 401" not in text:
            self.errors.append(text)  # the 401 of GET /auth/me before signing in is expected

    def request(self, request: Request) -> None:
        if request.url.startswith(self.base + "/api/"):
            self.calls.append(f"{request.method} {request.url[len(self.base) :]}")

    def assert_clean(self) -> None:
        assert self.csp == [], "the console must keep to the page's Content-Security-Policy"
        assert self.errors == []


@pytest.fixture
def page(browser: Browser, plant: AlarmPlant) -> Iterator[tuple[Page, Watch]]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(CSP_LISTENER)
    watch = Watch(plant.url)
    pg = context.new_page()
    pg.on("console", watch.console)
    pg.on("request", watch.request)
    try:
        yield pg, watch
    finally:
        context.close()


def sign_in(
    page: Page, plant: AlarmPlant, username: str = "admin", password: str = "", hash_: str = ""
) -> None:
    page.goto(f"{plant.url}/{hash_}")
    page.locator("#signin-form").wait_for(state="visible", timeout=WAIT)
    page.fill("#signin-username", username)
    page.fill("#signin-password", password or plant.password)
    page.click("#signin-submit")
    page.locator("#plant").wait_for(state="visible", timeout=WAIT)


def open_console(page: Page, tab: str = "list") -> None:
    page.click("#alarm-indicator")
    page.locator("#alarms").wait_for(state="visible", timeout=WAIT)
    assert page.locator("#plant").is_hidden(), "the console replaces the plant view"
    page.click(f'.alm-tab[data-tab="{tab}"]')
    page.locator(f'.alm-pane[data-pane="{tab}"]').wait_for(state="visible", timeout=WAIT)


def row(page: Page, alarm_id: str, pane: str = "list") -> Any:
    return page.locator(f'.alm-pane[data-pane="{pane}"] tr.alm-row[data-id="{alarm_id}"]')


def answer_dialog(page: Page, fields: dict[str, str], choice: str | None = None) -> None:
    """Fill the open action dialog's text fields (and a radio choice) and submit it."""
    dialog = page.locator("dialog.alm-dialog[open]")
    dialog.wait_for(timeout=WAIT)
    if choice is not None:
        dialog.locator(f'.alm-choice[data-choice="{choice}"] input').check()
    for name, value in fields.items():
        dialog.locator(f'[name="{name}"]').fill(value)
    dialog.locator('button[data-role="submit"]').click()
    dialog.wait_for(state="detached", timeout=WAIT)


def console_message(page: Page, expected: str) -> str:
    """The console's message once it says `expected`: an error there fails with its text (a
    previous action's message may still show while this one is on its way)."""
    page.wait_for_function(
        """(text) => {
            const m = document.querySelector('.alm-shell > .alm-message');
            return m && !m.hidden && (m.textContent.includes(text) || m.dataset.kind === 'error');
        }""",
        arg=expected,
        timeout=WAIT,
    )
    message = page.locator(".alm-shell > .alm-message")
    assert message.get_attribute("data-kind") == "ok", message.text_content()
    return message.text_content() or ""


def unacked_announced(plant: AlarmPlant) -> list[dict[str, Any]]:
    return [
        a
        for a in plant.alarms().values()
        if not a["acknowledged"] and not (a["shelved"] or a["suppressed"] or a["out_of_service"])
    ]


def test_the_indicator_counts_unacknowledged_and_a_raised_alarm_shows_live(
    page: tuple[Page, Watch], plant: AlarmPlant
) -> None:
    pg, watch = page
    sign_in(pg, plant)
    indicator = pg.locator("#alarm-indicator")
    indicator.wait_for(state="visible", timeout=WAIT)
    expected = unacked_announced(plant)
    pg.wait_for_function(
        "(n) => document.querySelector('#alarm-count').textContent === String(n)",
        arg=len(expected),
        timeout=WAIT,
    )
    # Coloured by the highest priority among them: a pressure-high alarm is critical, and only
    # critical and high unacknowledged alarms blink.
    top = "critical" if any(a["priority"] == "critical" for a in expected) else "high"
    assert indicator.get_attribute("data-priority") == top
    assert indicator.get_attribute("data-blink") == "true"

    open_console(pg)
    row(pg, temp_hi(OVEN1)).wait_for(timeout=WAIT)
    pg.wait_for_function(
        "() => document.querySelector('#live-text').textContent === 'Live updates: on'",
        timeout=WAIT,
    )
    pg.evaluate("() => { window.__notReloaded = true; }")
    lists_before = [c for c in watch.calls if c.startswith("GET /api/v1/alarms?")]
    plant.ingest({f"{OVEN3}/temperature": TEMP_HI + 40})
    raised = row(pg, temp_hi(OVEN3))
    raised.wait_for(timeout=5_000)
    assert pg.evaluate("() => window.__notReloaded === true"), "no reload brought it"
    lists_after = [c for c in watch.calls if c.startswith("GET /api/v1/alarms?")]
    assert lists_after == lists_before, "the live feed brought the alarm, not a new list request"
    assert raised.get_attribute("data-priority") == "high"
    assert "Active, unacknowledged" in (raised.locator(".alm-col-state").text_content() or "")
    assert pg.locator("#alarm-count").text_content() == str(len(expected) + 1)
    watch.assert_clean()


def test_acknowledge_one_with_a_note_and_the_journal_shows_it(
    page: tuple[Page, Watch], plant: AlarmPlant
) -> None:
    pg, watch = page
    alarm_id = temp_hi(OVEN1)
    note = "door seal checked, burner trimmed"
    sign_in(pg, plant)
    open_console(pg)
    target = row(pg, alarm_id)
    target.locator('button[data-action="ack"]').click()
    answer_dialog(pg, {"note": note})
    console_message(pg, "Acknowledged 1 alarm.")
    pg.wait_for_function(
        "(id) => document.querySelector(`tr.alm-row[data-id=\"${id}\"]`)?.dataset.unacked === 'false'",
        arg=alarm_id,
        timeout=WAIT,
    )
    assert "Active, acknowledged" in (target.locator(".alm-col-state").text_content() or "")
    assert target.locator('button[data-action="ack"]').is_hidden(), "nothing left to acknowledge"
    assert plant.alarms()[alarm_id]["acked_by"] == "user:admin"

    journal = httpx.get(
        plant.url + "/api/v1/alarms/journal", params={"alarm": alarm_id}, headers=plant.admin()
    ).json()["entries"]
    assert any(e["event"] == "acknowledge" and e["comment"] == note for e in journal)

    pg.click('.alm-tab[data-tab="journal"]')
    pane = pg.locator('.alm-pane[data-pane="journal"]')
    pane.locator('input[name="alarm"]').fill(alarm_id)
    pane.locator('button[type="submit"]').click()
    entry = pane.locator('tr[data-event="acknowledge"]', has_text=note)
    entry.wait_for(timeout=WAIT)
    assert entry.get_attribute("data-alarm") == alarm_id
    watch.assert_clean()


def test_acknowledge_many_at_once(page: tuple[Page, Watch], plant: AlarmPlant) -> None:
    pg, watch = page
    ids = [temp_hi(OVEN2), press_hi(OVEN2)]
    sign_in(pg, plant)
    open_console(pg)
    button = pg.locator(".alm-ack-selected")
    assert button.is_disabled(), "nothing selected, nothing to acknowledge"
    for alarm_id in ids:
        row(pg, alarm_id).locator(".alm-check").check()
    assert button.text_content() == "Acknowledge selected (2)"
    button.click()
    answer_dialog(pg, {"note": "both seen"})
    console_message(pg, "Acknowledged 2 alarms.")
    alarms = plant.alarms()
    assert [alarms[i]["acknowledged"] for i in ids] == [True, True]
    assert [alarms[i]["note"] for i in ids] == ["both seen", "both seen"]
    watch.assert_clean()


def test_shelve_for_an_hour_count_down_in_the_shelved_tab_then_unshelve(
    page: tuple[Page, Watch], plant: AlarmPlant
) -> None:
    pg, watch = page
    alarm_id = temp_hi(OVEN4)
    sign_in(pg, plant)
    open_console(pg)
    row(pg, alarm_id).locator('button[data-action="shelve"]').click()
    answer_dialog(pg, {"note": "burner service"}, choice="1h")
    console_message(pg, f"Shelved {alarm_id} (1 h).")
    shelved = plant.alarms()[alarm_id]
    assert shelved["shelved"] and shelved["shelving"] == "timed"
    assert 3500 < shelved["shelve_remaining_s"] <= 3600

    pg.click('.alm-tab[data-tab="shelved"]')
    remaining = row(pg, alarm_id, "shelved").locator(".alm-col-remaining")
    remaining.wait_for(timeout=WAIT)
    first = remaining.text_content() or ""
    assert re.fullmatch(r"59:[0-5]\d|1:00:00", first), first
    pg.wait_for_function(
        '([id, before]) => document.querySelector(`[data-pane="shelved"] tr[data-id="${id}"] '
        ".alm-col-remaining`).textContent !== before",
        arg=[alarm_id, first],
        timeout=5_000,
    )  # counts down by itself

    row(pg, alarm_id, "shelved").locator('button[data-action="unshelve"]').click()
    answer_dialog(pg, {"note": "service done"})
    console_message(pg, f"Unshelved {alarm_id}.")
    row(pg, alarm_id, "shelved").wait_for(state="detached", timeout=WAIT)
    assert plant.alarms()[alarm_id]["shelved"] is False
    watch.assert_clean()


def test_out_of_service_needs_a_reason_and_shows_it(
    page: tuple[Page, Watch], plant: AlarmPlant
) -> None:
    pg, watch = page
    alarm_id = press_hi(OVEN4)
    reason = "pressure transmitter replaced"
    sign_in(pg, plant)
    open_console(pg)
    row(pg, alarm_id).locator('button[data-action="out-of-service"]').click()
    dialog = pg.locator("dialog.alm-dialog[open]")
    dialog.locator('button[data-role="submit"]').click()  # no reason given
    assert dialog.is_visible(), "a reason is required: the dialog stays open"
    answer_dialog(pg, {"reason": reason})
    console_message(pg, f"{alarm_id} is out of service.")
    state = row(pg, alarm_id).locator(".alm-col-state")
    pg.wait_for_function(
        '([id, reason]) => document.querySelector(`tr.alm-row[data-id="${id}"] .alm-col-state`)'
        "?.textContent.includes(reason)",
        arg=[alarm_id, reason],
        timeout=WAIT,
    )
    assert (state.text_content() or "").startswith("Out of service")
    alarm = plant.alarms()[alarm_id]
    assert alarm["out_of_service"] is True and alarm["out_of_service_reason"] == reason
    assert row(pg, alarm_id).locator('button[data-action="in-service"]').is_visible()
    watch.assert_clean()


def test_a_viewer_sees_the_alarms_without_any_action(
    page: tuple[Page, Watch], plant: AlarmPlant
) -> None:
    pg, watch = page
    plant.add_user("vera", VIEWER_PASSWORD, "viewer")
    sign_in(pg, plant, "vera", VIEWER_PASSWORD)
    open_console(pg)
    row(pg, temp_hi(OVEN1)).wait_for(timeout=WAIT)
    assert pg.locator("tr.alm-row").count() >= 3
    assert pg.locator(".alm-action").count() == 0, "no button a viewer may not use"
    assert pg.locator(".alm-check").count() == 0
    assert pg.locator(".alm-ack-selected").is_hidden()
    watch.assert_clean()


def test_the_journal_tab_lists_entries_pages_and_exports_csv(
    page: tuple[Page, Watch], plant: AlarmPlant
) -> None:
    pg, watch = page
    sign_in(pg, plant)
    open_console(pg, "journal")
    pane = pg.locator('.alm-pane[data-pane="journal"]')
    pane.locator('tr[data-event="becomes_abnormal"]').first.wait_for(timeout=WAIT)
    shown = pane.locator("tbody tr").count()
    api = httpx.get(plant.url + "/api/v1/alarms/journal", headers=plant.admin()).json()["entries"]
    assert shown == min(len(api), 100)
    seqs = pane.locator("tbody tr").evaluate_all("rows => rows.map(r => Number(r.dataset.seq))")
    assert seqs == sorted(seqs, reverse=True), "newest first"

    pane.locator('select[name="event"]').select_option("becomes_abnormal")
    pane.locator('button[type="submit"]').click()
    pg.wait_for_function(
        "() => [...document.querySelectorAll('[data-pane=\"journal\"] tbody tr')]"
        ".every(r => r.dataset.event === 'becomes_abnormal')",
        timeout=WAIT,
    )
    href = pane.locator("a.alm-csv").get_attribute("href") or ""
    assert "format=csv" in href and "event=becomes_abnormal" in href
    csv = pg.context.request.get(plant.url + href)
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text().strip().splitlines()
    assert lines[0].startswith("seq,source_us,recorded_us,alarm_id")
    assert len(lines) > 1 and all(",becomes_abnormal," in line for line in lines[1:])
    watch.assert_clean()


def test_the_kpis_tab_shows_figures_with_verdicts_and_the_rate_chart(
    page: tuple[Page, Watch], plant: AlarmPlant
) -> None:
    pg, watch = page
    sign_in(pg, plant)
    open_console(pg, "kpis")
    figures = pg.locator(".alm-kpi")
    figures.first.wait_for(timeout=WAIT)
    verdicts = figures.evaluate_all("els => els.map(e => e.dataset.verdict)")
    assert verdicts and set(verdicts) <= {"acceptable", "manageable", "over_target", "no_data"}
    assert any(
        "peak" in (k or "") for k in figures.evaluate_all("els => els.map(e => e.dataset.kpi)")
    )
    chart = pg.locator(".alm-rate-chart")
    chart.locator("canvas").wait_for(timeout=WAIT)
    assert int(chart.get_attribute("data-points") or "0") >= 1
    # Every activation the plant fixture and the tests raised is in the 10-minute series.
    api = httpx.get(
        plant.url + "/api/v1/alarms/journal",
        params={"event": "becomes_abnormal"},
        headers=plant.admin(),
    ).json()["entries"]
    assert int(chart.get_attribute("data-total") or "0") == len(api)
    out_of_service = sum(a["out_of_service"] for a in plant.alarms(state="all").values())
    now = pg.locator('.alm-kpi-now [data-count="out_of_service"]').text_content() or ""
    assert now.endswith(f": {out_of_service}")
    watch.assert_clean()


def test_the_trend_draws_the_limits_of_a_tags_alarms(
    page: tuple[Page, Watch], plant: AlarmPlant
) -> None:
    pg, watch = page
    tag = f"{OVEN1}/temperature"
    sign_in(pg, plant, hash_=f"#asset={OVEN1}&tag={tag}")
    pg.locator("#trend-panel").wait_for(state="visible", timeout=WAIT)
    chart = pg.locator("#trend-chart")
    pg.wait_for_function(
        "() => document.querySelector('#trend-chart').dataset.alarmBands === '2'",
        timeout=WAIT,
    )
    assert chart.get_attribute("data-alarm-limits") == "2"
    chips = pg.locator(f'#trend-pens .pen[data-path="{tag}"] .pen-limit')
    found = chips.evaluate_all(
        "els => els.map(e => [e.dataset.condition, e.dataset.priority, e.textContent])"
    )
    assert [(c, p) for c, p, _ in found] == [("hi", "high"), ("lo", "low")]
    assert f"{TEMP_HI:g}" in found[0][2] and f"{TEMP_LO:g}" in found[1][2]
    watch.assert_clean()


MODEL_PROBE = """
const m = await import(process.argv[1]);
const a = (id, priority, extra = {}) => ({
  id, asset: id.split("/").slice(0, -1).join("/"), priority, state: "unacknowledged",
  active: true, acknowledged: false, shelved: false, suppressed: false, out_of_service: false,
  changed_us: 0, tag: null, limit: null, ...extra,
});
const quiet = [
  a("p/m1/t:lo", "low"),
  a("p/m2/t:hi", "critical", { shelved: true, state: "shelved" }),
  a("p/m3/t:hi", "high", { acknowledged: true, state: "acknowledged" }),
];
console.log(JSON.stringify({
  quiet: m.indicatorSummary(quiet),
  loud: m.indicatorSummary([...quiet, a("p/m4/t:hi", "high")]),
  url: m.alarmUrl("acme/p1/mill 1/temp:hi", "shelve"),
  subtree: [m.underAsset("acme/p1/x", "acme/p1"), m.underAsset("acme/p10/x", "acme/p1")],
  byPriority: m.sortAlarms([a("p/a/x", "low"), a("p/b/x", "critical"), a("p/c/x", "medium")],
    "priority").map((x) => x.priority),
  limits: m.tagLimits([
    a("p/m/t:hi", "high", { tag: "p/m/t", limit: 80, condition: "hi" }),
    a("p/m/t:lo", "low", { tag: "p/m/t", limit: null, condition: "lo" }),
    a("p/m/u:hi", "high", { tag: "p/m/u", limit: 5, condition: "hi" }),
  ], "p/m/t").map((l) => [l.condition, l.limit]),
  remaining: [m.formatRemaining(3598.2), m.formatRemaining(3600), m.formatRemaining(null)],
}));
"""


def test_the_console_model_counts_sorts_and_addresses_alarms_as_documented() -> None:
    """The pure part of the console under node: no browser needed to pin its rules down."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is required in CI to check the JavaScript of the alarm console")
        pytest.skip("node is not installed")
    model = STATIC / "alarms-model.js"
    out = subprocess.run(
        [node, "--input-type=module", "-e", MODEL_PROBE, model.as_uri()],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    got = json.loads(out)
    # Shelved and acknowledged alarms are not waiting: only the low one counts, no blinking;
    # an unacknowledged high one makes it blink (ISA-101: motion for what needs action now).
    assert got["quiet"] == {"count": 1, "priority": "low", "blink": False}
    assert got["loud"] == {"count": 2, "priority": "high", "blink": True}
    assert got["url"] == "/api/v1/alarms/acme/p1/mill%201/temp%3Ahi/shelve"
    assert got["subtree"] == [True, False], "p10 is not under p1"
    assert got["byPriority"] == ["critical", "medium", "low"]
    assert got["limits"] == [["hi", 80]], "only this tag's alarms with a known limit"
    assert got["remaining"] == ["59:59", "1:00:00", "—"], "whole seconds, rounded up"
