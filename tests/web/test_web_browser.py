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
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from kiln.testing.auth import admin_headers, initial_admin_password
from kiln.testing.server import free_port, kiln_command, running_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Runs before the page's own scripts; Playwright injects it outside the page's CSP. Chromium
# also logs violations to the console itself, but the event names the directive for sure.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`));
"""
LIVE = "() => document.querySelector('#live-text').textContent === 'Live'"


@dataclass(frozen=True)
class Demo:
    url: str
    data_dir: Path

    @property
    def password(self) -> str:
        return initial_admin_password(self.data_dir)


def _need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    reason = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    port = free_port()
    data = tmp_path_factory.mktemp("demo")
    command = kiln_command(
        "demo", "--port", str(port), "--rate", "5", "--data-dir", str(data / "d"),
        "--log-level", "warning",
    )  # fmt: skip
    with running_server(command, port=port, log=data / "server.log"):
        time.sleep(2)  # a few frames of history for the trend
        yield Demo(f"http://127.0.0.1:{port}", data / "d")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


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
            const c = document.querySelector('#trend-canvas');
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
        "() => document.querySelector('#live-text').textContent === 'Not connected'",
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
    # Five failures lock the user name (settings.security.max_login_failures); the name is
    # unknown, so the lock touches no other test.
    for attempt in range(5):
        _sign_in(pg, "intruder", f"guess-{attempt}")
        _message(pg, "invalid username or password")
        pg.wait_for_function("() => !document.querySelector('#signin-submit').disabled")
    _sign_in(pg, "intruder", "guess-5")
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
