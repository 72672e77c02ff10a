"""The web UI in a real browser (Debian's Chromium driven by Playwright) against `kiln demo`.

Every test signs in through the page's form with the first administrator's password, which the
first start writes to `<data-dir>/initial-admin.txt`. Every test also checks that the browser
reported no Content-Security-Policy violation: the server forbids inline scripts and styles.

Needs /usr/bin/chromium: `make test` installs it with apt-get when it can. Without it the tests
fail under CI=true and are skipped elsewhere, saying why.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from browser_helpers import CSP_LISTENER, chromium, demo_server

from kiln.testing.auth import admin_headers, device_headers, initial_admin_password, user_headers

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route

pytestmark = pytest.mark.slow

LIVE = "() => document.querySelector('#live-text').textContent === 'Live updates: on'"


@dataclass(frozen=True)
class Demo:
    url: str
    data_dir: Path

    @property
    def password(self) -> str:
        return initial_admin_password(self.data_dir)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_server(tmp_path_factory, "demo") as (url, data_dir):
        time.sleep(2)  # a few frames of history for the trend
        yield Demo(url, data_dir)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@dataclass
class Watch:
    """What one page did: console errors, CSP violations, API calls, other hosts reached."""

    base: str
    errors: list[tuple[str, str]] = field(default_factory=list)  # (text, url)
    csp: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # "POST /api/v1/auth/refresh"

    def console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("CSP violation"):
            self.csp.append(text)
        elif message.type == "error":
            self.errors.append((text, message.location.get("url", "")))

    def request(self, request: Request) -> None:
        url = request.url
        ours = (self.base, self.base.replace("http", "ws", 1))
        if url.startswith(("http", "ws")) and not url.startswith(ours):
            self.foreign.append(url)
        if url.startswith(self.base + "/api/"):
            self.calls.append(f"{request.method} {urlsplit(url).path}")

    def unexpected_errors(self, *allowed: tuple[int, str]) -> list[tuple[str, str]]:
        """Console errors except the listed (HTTP status, path) refusals, which are expected:
        the browser logs every 4xx, e.g. the 401 of GET /api/v1/auth/me before signing in."""
        out = []
        for text, url in self.errors:
            status = re.search(r"status of (\d{3})|response code: (\d{3})", text)
            # A refused WebSocket handshake names its URL in the text, not in the location.
            quoted = re.search(r"'((?:http|ws)[^']+)'", text)
            target = urlsplit(quoted.group(1) if quoted else url).path
            if status is not None and (int(status.group(1) or status.group(2)), target) in allowed:
                continue
            out.append((text, url))
        return out

    def assert_clean(self, *allowed: tuple[int, str]) -> None:
        assert self.csp == [], "the page must not violate its Content-Security-Policy"
        assert self.unexpected_errors(*allowed) == []
        assert self.foreign == [], "the page must not reach any other host (plants are offline)"


ME_401 = (401, "/api/v1/auth/me")


@pytest.fixture
def page(browser: Browser, demo: Demo) -> Iterator[tuple[Page, Watch]]:
    # A fresh context per test: its own cookie jar, so each test starts signed out.
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    watch = Watch(demo.url)
    context.add_init_script(CSP_LISTENER)
    pg = context.new_page()
    pg.on("console", watch.console)
    pg.on("request", watch.request)
    try:
        yield pg, watch
    finally:
        context.close()


def _open(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/")
    page.locator("#signin-form").wait_for(state="visible", timeout=15_000)
    assert page.locator("#plant").is_hidden(), "nothing of the plant shows before signing in"
    assert page.locator("#account").is_hidden()


def _sign_in(page: Page, username: str, password: str) -> None:
    page.fill("#signin-username", username)
    page.fill("#signin-password", password)
    page.click("#signin-submit")


def _signed_in(page: Page, demo: Demo) -> None:
    _open(page, demo)
    _sign_in(page, "admin", demo.password)
    page.locator("#plant").wait_for(state="visible", timeout=15_000)


def _message(page: Page, text: str) -> str:
    """The sign-in form's message once it contains `text` (case-insensitive)."""
    page.wait_for_function(
        """(text) => {
            const box = document.querySelector('#signin-message');
            return !box.hidden && box.textContent.toLowerCase().includes(text);
        }""",
        arg=text.lower(),
        timeout=15_000,
    )
    return page.locator("#signin-message").text_content() or ""


def test_tree_live_values_and_trend(page: tuple[Page, Watch], demo: Demo) -> None:
    pg, watch = page
    _signed_in(pg, demo)
    assert pg.locator("#account-name").text_content() == "admin"
    assert pg.locator("#sign-out").is_visible()
    assert pg.locator("#signin").is_hidden()

    packaging = pg.locator('#tree .tree-row[data-path="acme/plant1/packaging"]')
    packaging.wait_for(timeout=15_000)
    packaging.click()

    row = pg.locator('#tag-rows tr[data-path$="/filler1/fill_weight"]')
    row.wait_for(timeout=15_000)
    pg.wait_for_function(LIVE, timeout=15_000)
    # The drive current is noisy in every shift phase; the fill weight holds still during a
    # changeover (the first 15 min after 06:00, 14:00 and 22:00 UTC) and in the break.
    current = '#tag-rows tr[data-path$="/filler1/motor_current"] .value'
    first = pg.locator(current).text_content()
    pg.wait_for_function(
        """([sel, old]) => {
            const cell = document.querySelector(sel);
            return cell && cell.textContent !== old;
        }""",
        arg=[current, first],
        timeout=15_000,
    )
    assert row.locator(".unit").text_content() == "g", "the unit is shown with the value"
    assert row.locator(".badge").text_content() == "Good"

    row.click()
    panel = pg.locator("#trend-panel")
    panel.wait_for(state="visible", timeout=10_000)
    pg.wait_for_function("() => document.querySelector('#trend-overlay').hidden", timeout=15_000)
    inked = pg.evaluate(
        """() => {
            const c = document.querySelector('#trend-chart canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const colours = new Set();
            for (let i = 0; i < d.length; i += 4 * 7) colours.add(d[i] << 16 | d[i+1] << 8 | d[i+2]);
            return colours.size;
        }"""
    )
    assert inked > 5, "the trend canvas has a drawn chart, not a blank area"
    assert pg.locator("#trend-name").text_content() == "fill_weight"
    pg.screenshot(path=str(Path(os.environ.get("KILN_SCREENSHOT_DIR", "/tmp")) / "kiln-ui.png"))
    watch.assert_clean(ME_401)


def test_wrong_password_shows_the_error_and_sign_out_returns_to_the_form(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    pg, watch = page
    _open(pg, demo)
    _sign_in(pg, "admin", "not-the-password")
    assert "invalid username or password" in _message(pg, "invalid username or password")
    assert pg.locator("#plant").is_hidden()
    assert pg.input_value("#signin-password") == "", "a refused password is cleared"
    assert pg.locator("#signin-otp-field").is_hidden()

    _sign_in(pg, "admin", demo.password)
    pg.locator("#plant").wait_for(state="visible", timeout=15_000)
    pg.locator("#tree .tree-row").first.wait_for(timeout=15_000)
    pg.wait_for_function(LIVE, timeout=15_000)
    assert pg.locator("#account-name").text_content() == "admin"

    pg.click("#sign-out")
    pg.locator("#signin-form").wait_for(state="visible", timeout=15_000)
    assert "signed out" in _message(pg, "signed out")
    assert pg.locator("#plant").is_hidden()
    assert pg.locator("#account").is_hidden()
    assert pg.locator("#tree .tree-row").count() == 0, "the previous user's view is dropped"
    pg.wait_for_function(
        "() => document.querySelector('#live-text').textContent === 'Live updates: off'",
        timeout=15_000,
    )
    assert "POST /api/v1/auth/logout" in watch.calls
    # The session is over on the server too: a reload asks to sign in again.
    assert not any(c["name"] == "kiln_access" for c in pg.context.cookies())
    _open(pg, demo)
    watch.assert_clean(ME_401, (401, "/api/v1/auth/login"))


def test_rate_limited_sign_in_shows_the_servers_message(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    pg, watch = page
    _open(pg, demo)
    # After five failures (settings.security.max_login_failures) each try waits 1 s, doubling;
    # the name is unknown, so the wait touches no other test. A slow page may miss the first
    # short waits, not the longer ones.
    for attempt in range(5):
        _sign_in(pg, "intruder", f"guess-{attempt}")
        _message(pg, "invalid username or password")
        pg.wait_for_function("() => !document.querySelector('#signin-submit').disabled")
    for attempt in range(5, 10):
        _sign_in(pg, "intruder", f"guess-{attempt}")
        pg.wait_for_function("() => !document.querySelector('#signin-submit').disabled")
        if "too many failed logins" in (pg.locator("#signin-message").text_content() or ""):
            break
    text = _message(pg, "too many failed logins")
    assert re.search(r"try again in \d+ s", text), text
    assert pg.locator("#plant").is_hidden()
    watch.assert_clean(ME_401, (401, "/api/v1/auth/login"), (429, "/api/v1/auth/login"))


def test_totp_code_is_asked_for_when_the_server_wants_one(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    # No HTTP route enrols TOTP, so the first answer is the server's, replayed: 401 with
    # reason totp_required. The second attempt, with the code, goes to the real server (the
    # admin has no TOTP enrolled, so the code is ignored there and the sign-in succeeds).
    pg, watch = page
    bodies: list[dict[str, Any]] = []

    def login(route: Route) -> None:
        bodies.append(json.loads(route.request.post_data or "{}"))
        if len(bodies) == 1:
            route.fulfill(
                status=401,
                content_type="application/json",
                body=json.dumps(
                    {"detail": "this account needs a TOTP code", "reason": "totp_required"}
                ),
            )
        else:
            route.continue_()

    pg.route("**/api/v1/auth/login", login)
    _open(pg, demo)
    _sign_in(pg, "admin", demo.password)
    assert "needs a TOTP code" in _message(pg, "needs a totp code")
    otp = pg.locator("#signin-otp")
    otp.wait_for(state="visible")
    assert pg.input_value("#signin-password") == demo.password, "the right password is kept"
    otp.fill("123456")
    pg.click("#signin-submit")
    pg.locator("#plant").wait_for(state="visible", timeout=15_000)
    assert bodies[0] == {"username": "admin", "password": demo.password}
    assert bodies[1] == {"username": "admin", "password": demo.password, "otp": "123456"}
    watch.assert_clean(ME_401, (401, "/api/v1/auth/login"))


# It counts renewals exactly: on a CPU shared with other tests the page's own polling can
# meet the expired cookie before the feed's renewal lands and renew a second time, so
# `make test` runs it alone, after the parallel part.
@pytest.mark.alone
def test_expired_access_token_is_renewed_for_requests_and_the_live_feed(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    """Waiting 15 minutes is not a test: dropping the access cookie expires it as well."""
    pg, watch = page
    sockets: list[Any] = []

    def live(ws: Any) -> None:
        # Pass every live connection through, keeping a handle to close the page's side.
        sockets.append(ws)
        ws.connect_to_server()

    pg.route_web_socket("**/api/v1/live*", live)
    _signed_in(pg, demo)
    pg.wait_for_function(LIVE, timeout=15_000)
    context = pg.context

    def has_access_cookie() -> bool:
        return any(c["name"] == "kiln_access" for c in context.cookies())

    refresh = "**/api/v1/auth/refresh"

    # The live feed is closed with 4401, as the server does for an expired token: the page
    # renews the session and reconnects.
    context.clear_cookies(name="kiln_access")
    with pg.expect_request(refresh):
        sockets[-1].close(code=4401, reason="unauthorized")
    pg.wait_for_function(LIVE, timeout=15_000)
    assert len(sockets) == 2
    assert watch.calls.count("POST /api/v1/auth/refresh") == 1
    assert has_access_cookie()

    # A dropped feed whose reconnect the server refuses (it accepts, then closes with 4401):
    # renew, reconnect.
    context.clear_cookies(name="kiln_access")
    with pg.expect_request(refresh):
        sockets[-1].close(code=1001, reason="going away")
    pg.wait_for_function(LIVE, timeout=15_000)
    assert len(sockets) == 4, "one refused handshake, then a good one"
    assert watch.calls.count("POST /api/v1/auth/refresh") == 2
    assert has_access_cookie()

    # A REST call answered 401 is retried once after a renewal.
    context.clear_cookies(name="kiln_access")
    tags_before = watch.calls.count("GET /api/v1/tags")
    with pg.expect_request(refresh):
        pg.locator('#tree .tree-row[data-path="acme/plant1/packaging"]').click()
    pg.wait_for_function(
        "() => document.querySelector('#tags-foot').textContent.includes('tags')",
        timeout=15_000,
    )
    assert pg.locator("#tags-message").is_hidden()
    assert pg.locator('#tag-rows tr[data-path$="/filler1/fill_weight"]').count() == 1
    assert watch.calls.count("POST /api/v1/auth/refresh") == 3
    assert watch.calls.count("GET /api/v1/tags") == tags_before + 2, "refused, then retried once"

    # Without the refresh cookie the session cannot be renewed: back to the form, saying why.
    context.clear_cookies(name="kiln_access")
    context.clear_cookies(name="kiln_refresh")
    pg.locator('#tree .tree-row[data-path="acme/plant1"]').click()
    assert "session has ended" in _message(pg, "session has ended")
    assert pg.locator("#plant").is_hidden()
    assert pg.locator("#account").is_hidden()
    watch.assert_clean(
        ME_401,
        (401, "/api/v1/tags"),
        (401, "/api/v1/auth/refresh"),
        (401, "/api/v1/values/latest"),
    )


def test_csp_violations_would_be_noticed(page: tuple[Page, Watch], demo: Demo) -> None:
    """The CSP check above is only worth something if a violation does get reported."""
    pg, watch = page
    _open(pg, demo)
    pg.evaluate(
        """() => document.body.insertAdjacentHTML('beforeend', '<p style="color: red">x</p>')"""
    )
    pg.wait_for_timeout(200)
    assert any("style-src" in text for text in watch.csp), watch.csp


def test_demo_has_50_tags_updating_and_minute_aggregates(demo: Demo) -> None:
    """What `make demo` promises, checked over HTTP against the running demo."""
    api = "/api/v1"
    with httpx.Client(base_url=demo.url, timeout=10) as client:
        client.headers.update(admin_headers(client, demo.data_dir))
        tags = client.get(f"{api}/tags", params={"limit": 10_000}).json()["tags"]
        assert len(tags) >= 50

        def stamps() -> dict[str, str]:
            values = client.get(f"{api}/values/latest", params={"prefix": "acme"}).json()
            return {v["path"]: v["source_ts"] for v in values["values"]}

        before = stamps()
        time.sleep(1.2)
        after = stamps()
        advanced = [p for p in after if p in before and after[p] > before[p]]
        assert len(advanced) >= 50, "at least 50 tags got a newer value within 1.2 s"

        tag = next(t["path"] for t in tags if t["path"].endswith("/fill_weight"))
        agg = client.get(
            f"{api}/history/aggregate",
            params={"tag": tag, "start": "-1m", "interval": "10s", "agg": "avg,min,max,count"},
        ).json()
    assert agg["buckets"], agg
    assert all(b["min"] <= b["avg"] <= b["max"] for b in agg["buckets"])


# -- the operator's page: address, tree, health, layout, theme, trends, own password -----------

FILLER1 = "acme/plant1/packaging/line1/filling/filler1"
WEIGHT, CURRENT = f"{FILLER1}/fill_weight", f"{FILLER1}/motor_current"
NO_OVERFLOW = "() => document.documentElement.scrollWidth <= innerWidth"


def _shot(page: Page, name: str, *, full_page: bool = False) -> None:
    """Save a screenshot where KILN_SCREENSHOT_DIR says (docs/screenshots/ refreshes them)."""
    where = os.environ.get("KILN_SCREENSHOT_DIR")
    if where:
        page.screenshot(path=str(Path(where) / name), full_page=full_page)


def _view(page: Page) -> dict[str, list[str]]:
    return parse_qs(str(page.evaluate("location.hash.slice(1)")))


def _open_trend(page: Page, *paths: str) -> None:
    page.locator(f'#tree .tree-row[data-path="{FILLER1}"]').click()
    page.locator(f'#tag-rows tr[data-path="{paths[0]}"]').click()
    for path in paths[1:]:
        page.locator(f'#trend-add option[value="{path}"]').wait_for(state="attached")
        page.select_option("#trend-add", path)
    page.wait_for_function(
        "(n) => document.querySelectorAll('#trend-pens .pen').length === n "
        "&& document.querySelector('#trend-overlay').hidden",
        arg=len(paths),
        timeout=15_000,
    )


def _context(browser: Browser, demo: Demo, **options: Any) -> tuple[Page, Watch]:
    context = browser.new_context(**options)
    context.add_init_script(CSP_LISTENER)
    watch = Watch(demo.url)
    pg = context.new_page()
    pg.on("console", watch.console)
    pg.on("request", watch.request)
    return pg, watch


def test_the_address_keeps_asset_pens_and_range_across_a_reload_and_a_shared_link(
    page: tuple[Page, Watch], demo: Demo, browser: Browser
) -> None:
    pg, watch = page
    _signed_in(pg, demo)
    _open_trend(pg, WEIGHT, CURRENT)
    pg.click('#trend-ranges button[data-range="8h"]')
    want = {"asset": [FILLER1], "tag": [WEIGHT, CURRENT], "range": ["8h"]}
    pg.wait_for_function("() => location.hash.includes('range=8h')")
    assert _view(pg) == want
    link = pg.url

    pg.reload()  # the session cookies resume the session; the address restores the view
    _wait_restored(pg)
    assert _view(pg) == want, "restoring must not rewrite the address with less"

    # The same link in another browser: the view waits through the sign-in form.
    other, other_watch = _context(browser, demo, viewport={"width": 1400, "height": 900})
    try:
        other.goto(link)
        other.locator("#signin-form").wait_for(state="visible", timeout=15_000)
        other.wait_for_timeout(300)
        assert _view(other) == want, "nothing writes the address before sign-in"
        _sign_in(other, "admin", demo.password)
        _wait_restored(other)
        assert _view(other) == want
        other_watch.assert_clean(ME_401)
    finally:
        other.context.close()
    watch.assert_clean(ME_401)


def _wait_restored(pg: Page) -> None:
    pg.wait_for_function(
        """([asset]) => document.querySelector('#tree .tree-row.selected')?.dataset.path === asset
            && document.querySelectorAll('#trend-pens .pen').length === 2
            && document.querySelector('#trend-ranges button.active')?.dataset.range === '8h'""",
        arg=[FILLER1],
        timeout=20_000,
    )
    assert pg.locator(f'#tree .tree-row[data-path="{FILLER1}"]').is_visible()
    names = pg.locator("#trend-pens .pen").evaluate_all("els => els.map(e => e.dataset.path)")
    assert names == [WEIGHT, CURRENT]


def test_the_tree_opens_down_to_the_machines_and_ingested_tags_get_their_levels(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    with httpx.Client(base_url=demo.url, timeout=10) as client:
        admin = admin_headers(client, demo.data_dir)
        device = device_headers(client, admin, "lab-bench", "acme/plant1/lab")
        body = {"values": [{"path": "acme/plant1/lab/bench1/ph", "value": 7.02}]}
        assert client.post("/api/v1/ingest", json=body, headers=device).status_code == 200
    pg, watch = page
    _signed_in(pg, demo)
    machine = pg.locator(f'#tree .tree-row[data-path="{FILLER1}"]')
    machine.wait_for(state="visible", timeout=15_000)  # no clicks: level 6 shows on load
    bench = pg.locator('#tree .tree-row[data-path="acme/plant1/lab/bench1"]')
    assert bench.is_visible()
    bench.click()
    pg.locator('#tag-rows tr[data-path="acme/plant1/lab/bench1/ph"]').wait_for(timeout=15_000)
    watch.assert_clean(ME_401)


FAKE_HEALTH = {
    "status": "degraded",
    "version": "0.1.0",
    "subsystems": {
        "bus": {"status": "ok", "detail": {"published_points": 3122}},
        "historian": {
            "status": "ok",
            "detail": {"series": 98, "points": 3122, "rollup_seconds_sum": 2.6579999999999018},
        },
        "connectors": {
            "status": "degraded",
            "detail": {
                "line2-plc": {
                    "type": "opcua",
                    "state": "reconnecting",
                    "reason": "opc.tcp://10.20.30.40:4840: connection refused by the server; "
                    "check that the PLC is on and that port 4840 is open on its firewall",
                },
                "sim-modbus": {"type": "modbus", "state": "connected"},
            },
        },
    },
}


def test_health_reads_as_words_with_problems_first_and_details_on_demand(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    pg, watch = page
    pg.route(
        "**/api/v1/health",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(FAKE_HEALTH)
        ),
    )
    _open(pg, demo)
    pg.locator("#health-list li").first.wait_for(state="attached", timeout=5_000)
    # Signing in asks for the report at once (it names more when signed in), not at the next
    # 10 s poll.
    with pg.expect_request("**/api/v1/health", timeout=4_000):
        _sign_in(pg, "admin", demo.password)
    pg.locator("#plant").wait_for(state="visible", timeout=15_000)
    assert pg.locator("#health-list li").first.get_attribute("data-part") == "connectors"
    pg.click("#health summary")
    popover = pg.locator("#health .popover")
    popover.wait_for(state="visible")
    assert pg.locator("#health-text").text_content() == "Degraded: 1 part"
    assert pg.locator("#health-summary").text_content() == (
        "1 part needs attention; the rest are working."
    )
    first = pg.locator("#health-list li").first
    assert first.locator(".health-name").text_content() == "Device connections"
    problem = first.locator(".health-problem")
    assert problem.text_content() == (
        "line2-plc (opcua) is reconnecting: opc.tcp://10.20.30.40:4840: connection refused by "
        "the server; check that the PLC is on and that port 4840 is open on its firewall"
    )
    box, view = problem.bounding_box(), pg.viewport_size
    assert box is not None and view is not None
    assert box["y"] + box["height"] <= view["height"] and box["x"] + box["width"] <= view["width"]
    shown = popover.inner_text()
    assert "rollup" not in shown and "2.657" not in shown, "raw figures wait behind Details"
    assert "98 series, 3,122 values stored" in shown
    historian = pg.locator('#health-list li[data-part="historian"]')
    historian.locator(".health-more > summary").click()
    assert "rollup seconds sum" in historian.inner_text()
    assert "2.66" in historian.inner_text() and "2.657" not in historian.inner_text()
    _shot(pg, "health.png")
    watch.assert_clean(ME_401)


def test_live_indicator_names_the_pages_own_connection(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    pg, watch = page
    _open(pg, demo)
    assert pg.locator("#live-text").text_content() == "Live updates: off"
    _sign_in(pg, "admin", demo.password)
    pg.wait_for_function(LIVE, timeout=15_000)
    assert "not a device connection" in (pg.locator("#live").get_attribute("title") or "")
    watch.assert_clean(ME_401)


@pytest.mark.parametrize(
    ("width", "height", "scheme", "shot"),
    [
        (390, 844, "light", "phone-390.png"),
        (1920, 1080, "light", "plant-1920.png"),
        (1920, 1080, "dark", "dark-1920.png"),
    ],
)
def test_layout_from_a_phone_to_a_control_room_screen_in_both_themes(
    browser: Browser,
    demo: Demo,
    width: int,
    height: int,
    scheme: Literal["light", "dark"],
    shot: str,
) -> None:
    pg, watch = _context(browser, demo, viewport={"width": width, "height": height})
    try:
        pg.emulate_media(color_scheme=scheme)
        _open(pg, demo)
        assert pg.evaluate(NO_OVERFLOW), "the sign-in page fits"
        _sign_in(pg, "admin", demo.password)
        pg.locator("#plant").wait_for(state="visible", timeout=15_000)
        pg.wait_for_function(LIVE, timeout=15_000)
        for selector in ("#sign-out", "#password-open", "#account-name", "#live"):
            box = pg.locator(selector).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, selector
        _open_trend(pg, WEIGHT, CURRENT)
        assert pg.evaluate(NO_OVERFLOW), pg.evaluate("document.documentElement.scrollWidth")
        # Every tag name is readable in full: it wraps on a phone rather than being cut.
        cut = pg.locator("#tag-rows td.col-name").evaluate_all(
            "cells => cells.filter(c => c.scrollWidth > c.clientWidth + 1).length"
        )
        assert cut == 0 or width > 1000
        # Nor are the value and the quality cut, at any width.
        cut_cells = pg.locator("#tag-rows td.col-value, #tag-rows .badge").evaluate_all(
            "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"
        )
        assert cut_cells == []
        chart = pg.locator("#trend-chart canvas").bounding_box()
        assert chart is not None and chart["x"] + chart["width"] <= width
        background = pg.evaluate("getComputedStyle(document.body).backgroundColor")
        red, green, blue = (int(x) for x in re.findall(r"\d+", background)[:3])
        luminance = (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255
        assert (luminance < 0.2) if scheme == "dark" else (luminance > 0.8), background
        _shot(pg, shot, full_page=width < 500)
        watch.assert_clean(ME_401)
    finally:
        pg.context.close()


def test_trend_zooms_pans_takes_a_custom_range_and_exports_what_it_shows(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    pg, watch = page
    _signed_in(pg, demo)
    _open_trend(pg, WEIGHT, CURRENT)
    pg.click('#trend-ranges button[data-range="15m"]')
    pg.wait_for_function(
        "() => location.hash.includes('range=15m') "
        "&& document.querySelector('#trend-overlay').hidden",
        timeout=15_000,
    )
    _shot(pg, "trend-two-pens.png")

    # Drag across the right half: a fixed window, and history asked again for that span.
    over = pg.locator("#trend-chart .u-over").bounding_box()
    assert over is not None
    y = over["y"] + over["height"] / 2
    with pg.expect_request(lambda r: "/api/v1/history/raw" in r.url and "start=20" in r.url):
        pg.mouse.move(over["x"] + over["width"] * 0.5, y)
        pg.mouse.down()
        pg.mouse.move(over["x"] + over["width"] * 0.75, y, steps=5)
        pg.mouse.move(over["x"] + over["width"] * 0.95, y, steps=5)
        pg.mouse.up()
    view = _view(pg)
    assert "range" not in view and view["tag"] == [WEIGHT, CURRENT]
    start, end = (_ms(view[k][0]) for k in ("from", "to"))
    assert 5 * 60_000 < end - start < 8 * 60_000, "about 45 % of 15 minutes"
    assert pg.locator("#trend-now").is_enabled()

    pg.click("#trend-back")  # earlier by half the span
    pg.wait_for_function("(s) => !location.hash.includes(s)", arg=view["from"][0])
    start2, end2 = (_ms(_view(pg)[k][0]) for k in ("from", "to"))
    assert (start2, end2) == (start - (end - start) // 2, end - (end - start) // 2)

    # A custom range typed in local time.
    pg.evaluate(
        """() => {
            const local = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000)
                .toISOString().slice(0, 19);
            const now = Date.now();
            document.querySelector('#trend-from').value = local(now - 10 * 60000);
            document.querySelector('#trend-to').value = local(now);
        }"""
    )
    pg.click("#trend-custom button[type=submit]")
    pg.wait_for_function("() => document.querySelector('#trend-overlay').hidden", timeout=15_000)
    start3, end3 = (_ms(_view(pg)[k][0]) for k in ("from", "to"))
    assert end3 - start3 == 10 * 60_000

    with pg.expect_download() as download:
        pg.click("#trend-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == f"time,{WEIGHT},{CURRENT}"
    assert len(lines) > 10, "the demo's minutes so far, two tags at 5 Hz"
    stamps = [_ms(line.split(",")[0]) for line in lines[1:]]
    assert stamps == sorted(stamps) and start3 <= stamps[0] and stamps[-1] <= end3
    weights = [float(f) for f in (line.split(",")[1] for line in lines[1:]) if f]
    assert weights and all(400 < w < 600 for w in weights)

    pg.click("#trend-now")  # back to following the clock, at the last chosen range
    pg.wait_for_function("() => location.hash.includes('range=15m')")
    pg.locator(f'#trend-pens button[data-path="{CURRENT}"]').click()
    pg.wait_for_function("() => document.querySelectorAll('#trend-pens .pen').length === 1")
    assert _view(pg)["tag"] == [WEIGHT]
    watch.assert_clean(ME_401)


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_a_user_changes_their_own_password_in_the_page(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    old, new = "first pass phrase 1", "second pass phrase 2"
    with httpx.Client(base_url=demo.url, timeout=10) as client:
        admin = admin_headers(client, demo.data_dir)
        user_headers(client, admin, "olga", old, ["viewer"])
    pg, watch = page
    _open(pg, demo)
    _sign_in(pg, "olga", old)
    pg.locator("#plant").wait_for(state="visible", timeout=15_000)

    pg.click("#password-open")
    dialog = pg.locator("#password-dialog")
    dialog.wait_for(state="visible")
    assert pg.input_value("#password-username") == "olga"
    pg.fill("#password-current", "not my password")
    pg.fill("#password-new", new)
    pg.fill("#password-repeat", new)
    pg.click("#password-submit")
    message = pg.locator("#password-message")
    pg.wait_for_function(
        "() => document.querySelector('#password-message').textContent.includes('wrong')"
    )
    assert "current password is wrong" in (message.text_content() or "")
    assert dialog.is_visible() and pg.locator("#plant").is_visible(), "still signed in"

    pg.fill("#password-current", old)
    pg.fill("#password-repeat", new + "x")
    pg.click("#password-submit")
    assert "differ" in (message.text_content() or "")
    pg.fill("#password-repeat", new)
    pg.click("#password-submit")
    dialog.wait_for(state="hidden")
    assert "password is changed" in (pg.locator("#banner-text").text_content() or "")
    assert pg.locator("#plant").is_visible()
    with httpx.Client(base_url=demo.url, timeout=10) as client:
        login = "/api/v1/auth/login"
        assert client.post(login, json={"username": "olga", "password": old}).status_code == 401
        assert client.post(login, json={"username": "olga", "password": new}).status_code == 200
    watch.assert_clean(ME_401, (403, "/api/v1/auth/password"))
