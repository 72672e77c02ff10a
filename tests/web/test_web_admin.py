"""Administration in the page, in Debian's Chromium against one `kiln demo` for the module.

Each view is driven the way a person would: forms filled, buttons pressed, and what the page
shows is checked against what the API then answers (a key shown once works until it is revoked,
a viewer is refused). Every page must also stay within its Content-Security-Policy and reach no
other host. With KILN_SCREENSHOT_DIR set, the views are saved there as PNGs (docs/screenshots).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import httpx
import pytest
from browser_helpers import CSP_LISTENER, chromium, demo_server

from kiln.testing.auth import admin_headers, bearer_headers, initial_admin_password, user_headers

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

pytestmark = pytest.mark.slow

PASSWORD = "slate-otter-41-quietly-north"
WAIT = 15_000


@dataclass(frozen=True)
class Demo:
    url: str
    data_dir: Path

    def admin(self) -> dict[str, str]:
        with httpx.Client(base_url=self.url) as client:
            return admin_headers(client, self.data_dir)

    def add_user(self, username: str, role: str) -> None:
        with httpx.Client(base_url=self.url) as client:
            user_headers(client, admin_headers(client, self.data_dir), username, PASSWORD, [role])

    def get(self, path: str, headers: dict[str, str]) -> httpx.Response:
        return httpx.get(self.url + path, headers=headers)


@dataclass
class Watch:
    """Console errors, CSP violations and requests to other hosts of one page."""

    base: str
    errors: list[tuple[str, str]] = field(default_factory=list)  # (text, url)
    csp: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("CSP violation"):
            self.csp.append(text)
        elif message.type == "error" and "status of 401" not in text:
            # The browser logs the 401 of GET /auth/me before signing in; any other is wrong.
            self.errors.append((text, message.location.get("url", "")))

    def request(self, url: str) -> None:
        if url.startswith(("http", "ws")) and not url.startswith(
            (self.base, self.base.replace("http", "ws", 1))
        ):
            self.foreign.append(url)

    def assert_clean(self, *refused: str) -> None:
        """No CSP violation, no other host, no console error but a 403 of the `refused` paths."""
        assert self.csp == [], "the page must not violate its Content-Security-Policy"
        unexpected = [
            (text, url)
            for text, url in self.errors
            if not ("status of 403" in text and urlsplit(url).path in refused)
        ]
        assert unexpected == []
        assert self.foreign == [], "the page must not reach any other host"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_server(tmp_path_factory, "admin-demo") as (url, data_dir):
        yield Demo(url, data_dir)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser, demo: Demo) -> Iterator[tuple[Page, Watch]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(CSP_LISTENER)
    watch = Watch(demo.url)
    pg = context.new_page()
    pg.on("console", watch.console)
    pg.on("request", lambda r: watch.request(r.url))
    try:
        yield pg, watch
    finally:
        context.close()


def sign_in(page: Page, demo: Demo, username: str = "admin", password: str | None = None) -> None:
    page.goto(demo.url + "/")
    page.locator("#signin-form").wait_for(state="visible", timeout=WAIT)
    page.fill("#signin-username", username)
    page.fill("#signin-password", password or initial_admin_password(demo.data_dir))
    page.click("#signin-submit")
    page.locator("#account").wait_for(state="visible", timeout=WAIT)


def open_section(page: Page, section: str) -> None:
    toggle = page.locator("#admin-toggle")
    if toggle.get_attribute("aria-pressed") != "true":
        toggle.click()
    page.locator(f'.adm-tab[data-section="{section}"]').click()
    page.locator(f'.adm-body[data-section="{section}"]').wait_for(timeout=WAIT)


def submit(page: Page, form: str, values: dict[str, str]) -> None:
    """Fill the named form (text inputs and selects by name) and send it."""
    box = page.locator(f'form[data-form="{form}"]')
    for name, value in values.items():
        target = box.locator(f'[name="{name}"]')
        if target.evaluate("el => el.tagName") == "SELECT":
            target.select_option(value)
        else:
            target.fill(value)
    box.locator('button[type="submit"]').click()


def message(page: Page, text: str) -> None:
    """Wait until the view's message says `text` and is not an error."""
    msg = page.locator(".adm-body .adm-message").first
    page.wait_for_function(
        """(text) => {
            const m = document.querySelector('.adm-body .adm-message');
            return m && !m.hidden && (m.textContent.includes(text) || m.dataset.kind === 'error');
        }""",
        arg=text,
        timeout=WAIT,
    )
    assert msg.get_attribute("data-kind") == "ok", msg.text_content()


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("KILN_SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=str(Path(folder) / name))


def test_create_a_user_assign_and_remove_a_role_disable_it(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    pg, watch = page
    sign_in(pg, demo)
    assert pg.locator("#admin-toggle").is_visible(), "an administrator is offered the entry"
    open_section(pg, "users")
    assert pg.locator("#plant").is_hidden(), "the admin view replaces the plant view"

    submit(pg, "create-user", {"username": "ada", "password": PASSWORD, "role": "viewer"})
    message(pg, "Created user ada")
    row = pg.locator('.adm-users tr[data-username="ada"]')
    row.wait_for(timeout=WAIT)
    viewer = row.locator('.adm-chip[data-role="viewer"]').text_content() or ""
    assert viewer.startswith("viewer · whole tenant")

    submit(pg, "assign-role", {"username": "ada", "role": "operator", "scope": "acme/plant1"})
    message(pg, "Gave ada the role operator")
    chip = row.locator('.adm-chip[data-role="operator"][data-scope="acme/plant1"]')
    chip.wait_for(timeout=WAIT)
    admin = demo.admin()
    users = {u["username"]: u for u in demo.get("/api/v1/users", admin).json()["users"]}
    assert {"role": "operator", "scope": "acme/plant1"} in users["ada"]["roles"]
    screenshot(pg, "admin-users.png")

    chip.locator(".adm-chip-remove").click()
    message(pg, "Removed role operator from ada")
    chip.wait_for(state="detached", timeout=WAIT)

    new_password = "amber-heron-77-softly-west"
    submit(pg, "set-password", {"username": "ada", "password": new_password})
    message(pg, "Password of ada set")
    with httpx.Client(base_url=demo.url) as client:
        assert bearer_headers(client, "ada", new_password), "ada signs in with the new password"

    row.locator("button", has_text="Disable").click()
    message(pg, "ada is disabled")
    pg.locator('.adm-users tr[data-username="ada"] .adm-pill', has_text="disabled").wait_for(
        timeout=WAIT
    )
    users = {u["username"]: u for u in demo.get("/api/v1/users", admin).json()["users"]}
    assert users["ada"]["disabled"] is True
    assert users["ada"]["roles"] == [{"role": "viewer", "scope": None}]

    open_section(pg, "roles")
    pg.locator('form[data-form="create-role"] input[name="name"]').fill("reader")
    pg.locator('form[data-form="create-role"] input[value="values:read"]').check()
    pg.locator('form[data-form="create-role"] button[type="submit"]').click()
    message(pg, "Created role reader")
    assert "values:read" in (pg.locator('tr[data-role="reader"]').text_content() or "")
    watch.assert_clean()


def test_an_api_key_is_shown_once_works_and_is_refused_once_revoked(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    pg, watch = page
    sign_in(pg, demo)
    open_section(pg, "keys")
    form = pg.locator('form[data-form="create-key"]')
    form.locator('input[name="name"]').fill("grafana")
    form.locator('input[value="values:read"]').check()
    form.locator('button[type="submit"]').click()
    secret = pg.locator(".adm-secret .adm-secret-value")
    secret.wait_for(timeout=WAIT)
    token = secret.input_value()
    assert token.startswith("kiln_key_")
    bearer = {"Authorization": f"Bearer {token}"}
    assert demo.get("/api/v1/auth/me", bearer).json()["permissions"] == ["values:read"]

    row = pg.locator('tr[data-name="grafana"]')
    row.wait_for(timeout=WAIT)
    assert token not in (row.text_content() or ""), "the list never shows the secret"
    pg.locator(".adm-secret button", has_text="Done").click()
    assert pg.locator(".adm-secret").count() == 0
    assert token not in pg.content(), "once closed, the secret is gone from the page"
    screenshot(pg, "admin-keys.png")

    row.locator("button", has_text="Revoke").click()
    message(pg, "Revoked key grafana")
    pg.locator('tr[data-name="grafana"] .adm-pill', has_text="revoked").wait_for(timeout=WAIT)
    assert demo.get("/api/v1/auth/me", bearer).status_code == 401
    watch.assert_clean()


def test_a_device_credential_is_shown_once_and_listed(page: tuple[Page, Watch], demo: Demo) -> None:
    pg, watch = page
    sign_in(pg, demo)
    open_section(pg, "devices")
    prefix = "acme/plant1/lab/bench7"
    submit(pg, "create-device", {"name": "bench7", "prefix": prefix})
    secret = pg.locator(".adm-secret .adm-secret-value")
    secret.wait_for(timeout=WAIT)
    token = secret.input_value()
    assert token.startswith("kiln_dev_")
    row = pg.locator('tr[data-device="bench7"]')
    row.wait_for(timeout=WAIT)
    assert prefix in (row.text_content() or "")
    ingest = httpx.post(
        demo.url + "/api/v1/ingest",
        headers={"Authorization": f"Bearer {token}"},
        json={"values": [{"path": f"{prefix}/ph", "value": 7.0}]},
    )
    assert ingest.status_code == 200, ingest.text
    pg.locator(".adm-secret button", has_text="Done").click()
    screenshot(pg, "admin-devices.png")

    row.locator("button", has_text="Revoke").click()
    message(pg, "Revoked device bench7")
    pg.locator('tr[data-device="bench7"] .adm-pill', has_text="revoked").wait_for(timeout=WAIT)
    watch.assert_clean()


def test_create_a_partner_tenant_share_a_subtree_and_withdraw_it(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    pg, watch = page
    sign_in(pg, demo)
    open_section(pg, "tenants")
    submit(pg, "create-tenant", {"name": "supplier-a", "kind": "partner"})
    message(pg, "Created tenant supplier-a")
    row = pg.locator('tr[data-tenant="supplier-a"]')
    row.wait_for(timeout=WAIT)
    assert "partner" in (row.text_content() or "")

    subtree = "acme/plant1/packaging"
    submit(pg, "create-share", {"partner": "supplier-a", "resource_id": subtree})
    message(pg, "Shared acme/plant1/packaging with supplier-a")
    share = pg.locator(f'tr[data-partner="supplier-a"][data-resource="{subtree}"]')
    share.wait_for(timeout=WAIT)
    shares = demo.get("/api/v1/shares", demo.admin()).json()["shares"]
    assert [(s["partner"], s["resource_id"]) for s in shares] == [("supplier-a", subtree)]
    screenshot(pg, "admin-tenants.png")

    share.locator("button", has_text="Withdraw").click()
    message(pg, "Withdrew")
    share.wait_for(state="detached", timeout=WAIT)
    assert demo.get("/api/v1/shares", demo.admin()).json()["shares"] == []
    watch.assert_clean()


def test_connectors_show_their_state(page: tuple[Page, Watch], demo: Demo) -> None:
    pg, watch = page
    expected = {
        c["name"]: c["state"]
        for c in demo.get("/api/v1/connectors", demo.admin()).json()["connectors"]
    }
    assert expected, "the demo reads its machines through connectors"
    sign_in(pg, demo)
    open_section(pg, "connectors")
    rows = pg.locator("tr[data-connector]")
    rows.first.wait_for(timeout=WAIT)
    shown = {
        rows.nth(i).get_attribute("data-connector"): rows.nth(i).locator(".adm-pill").text_content()
        for i in range(rows.count())
    }
    assert set(shown) == set(expected)
    assert set(shown.values()) <= {"connecting", "connected", "degraded", "error", "stopped"}
    screenshot(pg, "admin-connectors.png")
    watch.assert_clean()


def test_the_auditor_sees_the_actions_in_the_log_and_verifies_it(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    pg, watch = page
    demo.add_user("audrey", "auditor")  # administrators do not read the audit log
    with httpx.Client(base_url=demo.url) as client:
        made = client.post(
            "/api/v1/users",
            headers=demo.admin(),
            json={"username": "grace", "password": PASSWORD, "roles": ["viewer"]},
        )
        assert made.status_code == 201, made.text
    sign_in(pg, demo, "audrey", PASSWORD)
    # The plant view says why it is empty instead of offering a retry that cannot work.
    pg.wait_for_function(
        "() => document.querySelector('#tree-message').textContent.includes('values:read')",
        timeout=WAIT,
    )
    assert pg.locator("#tree-retry").is_hidden()
    tabs = pg.locator(".adm-tab")
    pg.locator("#admin-toggle").click()
    tabs.first.wait_for(timeout=WAIT)
    labels = [tabs.nth(i).get_attribute("data-section") for i in range(tabs.count())]
    assert labels == ["connectors", "audit"], "an auditor manages nobody"
    open_section(pg, "audit")
    created = pg.locator('tr[data-action="user.create"]', has_text="grace")
    created.wait_for(timeout=WAIT)
    assert "user:admin" in (created.text_content() or "")

    pg.locator("button", has_text="Verify the chain").click()
    verdict = pg.locator('.adm-verdict[data-ok="true"]')
    verdict.wait_for(timeout=WAIT)
    assert (verdict.text_content() or "").startswith("Intact:")
    screenshot(pg, "admin-audit.png")

    submit(pg, "audit-filter", {"action": "login", "result": "success"})
    pg.wait_for_function(
        """() => {
            const rows = [...document.querySelectorAll('tr[data-action]')];
            return rows.length > 0 && rows.every((r) => r.dataset.action === 'login');
        }""",
        timeout=WAIT,
    )
    assert pg.locator('tr[data-action="login"]', has_text="audrey").count() >= 1
    watch.assert_clean("/api/v1/assets")  # the plant view, which an auditor may not read


def test_a_viewer_is_offered_no_administration_and_is_refused_by_the_api(
    page: tuple[Page, Watch], demo: Demo
) -> None:
    pg, watch = page
    demo.add_user("vera", "viewer")
    sign_in(pg, demo, "vera", PASSWORD)
    pg.locator("#plant").wait_for(state="visible", timeout=WAIT)
    # The entry is decided with the account name, from the same answer of GET /auth/me.
    assert pg.locator("#account-name").text_content() == "vera"
    assert pg.locator("#admin-toggle").is_hidden()
    assert pg.locator("#admin").is_hidden()
    with httpx.Client(base_url=demo.url) as client:
        vera = bearer_headers(client, "vera", PASSWORD)
    for path in ("/api/v1/users", "/api/v1/devices", "/api/v1/connectors", "/api/v1/audit"):
        assert demo.get(path, vera).status_code == 403, path
    watch.assert_clean()


def test_the_admin_views_fit_a_phone_and_follow_the_dark_theme(
    browser: Browser, demo: Demo
) -> None:
    def background(color_scheme: Literal["light", "dark"]) -> str:
        context = browser.new_context(
            viewport={"width": 390, "height": 800}, color_scheme=color_scheme
        )
        try:
            pg = context.new_page()
            sign_in(pg, demo)
            for section in ("users", "keys", "tenants", "connectors"):
                open_section(pg, section)
                pg.locator(".adm-body .adm-table, .adm-body .adm-empty").first.wait_for(
                    timeout=WAIT
                )
                width = pg.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"{section} is {width} px wide at 390 px"
            return str(
                pg.evaluate("getComputedStyle(document.querySelector('.adm-body')).backgroundColor")
            )
        finally:
            context.close()

    assert background("light") != background("dark"), "the panels follow the system's theme"
