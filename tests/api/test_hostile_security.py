"""Issue 12, finding 6: credentials never reach a log, the live WebSocket checks Origin for
cookie sessions, health details only what the caller may see, and out-of-scope tags answer
like missing ones. (Login throttling is in tests/security/test_sec_ratelimit.py.)"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import make_app_client, make_settings
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from kiln.api.settings import HttpSettings
from kiln.logsetup import RedactSecrets, install_redaction
from kiln.testing.auth import (
    admin_headers,
    bearer_headers,
    device_headers,
    initial_admin_password,
    user_headers,
)
from kiln.testing.server import free_port, kiln_command, running_server

PASSWORD = "correct horse battery"
SECRET = "kiln_dev_0123456789abcdef_NotARealSecretButLongEnough-0123456789ab"


@pytest.mark.slow
def test_a_token_in_the_query_never_reaches_the_access_log(tmp_path: Path) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text("name: log test\ndata_dir: data\n")
    port = free_port()
    log = tmp_path / "server.log"
    command = kiln_command(
        "run", "--config", str(config), "--port", str(port), "--log-level", "debug"
    )
    with running_server(command, port=port, log=log) as proc:
        base = f"http://127.0.0.1:{port}"
        device = device_headers(
            httpx, admin_headers(httpx, tmp_path / "data", base), "gw", "acme", base
        )
        token = device["Authorization"].removeprefix("Bearer ")
        # InfluxDB 1.x sends the token as `p`; a wrong one is refused but still logged.
        accepted = httpx.post(
            f"{base}/write", params={"db": "acme", "u": "telegraf", "p": token},
            content="tank level=1", timeout=30,
        )  # fmt: skip
        assert accepted.status_code == 204, accepted.text
        refused = httpx.post(
            f"{base}/write", params={"db": "acme", "u": "telegraf", "p": SECRET},
            content="tank level=1", timeout=30,
        )  # fmt: skip
        assert refused.status_code == 401
        httpx.get(f"{base}/api/v1/health?token={SECRET}&password=hunter2", timeout=30)
        proc.terminate()
        proc.wait(timeout=30)
    text = log.read_text()
    assert "/write?db=acme&u=telegraf&p=***" in text, text[-3000:]
    secret_part = token.rsplit("_", 1)[1]
    assert secret_part not in text
    assert SECRET.rsplit("_", 1)[1] not in text
    assert "hunter2" not in text
    assert "token=***&password=***" in text


def test_every_handler_redacts_records_of_any_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.handler.addFilter(RedactSecrets())
    install_redaction()
    with caplog.at_level(logging.DEBUG):
        # The shape of uvicorn's access record: the request line is one of the arguments.
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "POST", f"/write?db=x&p={SECRET}",
            "1.1", 204,
        )  # fmt: skip
        logging.getLogger("kiln.somewhere").warning("could not reach %s", f"/q?api_key={SECRET}")
        try:
            raise ValueError(f"bad url postgresql://kiln:s3cret@db/x?token={SECRET}")
        except ValueError:
            logging.getLogger("kiln.x").exception("failed")
    text = caplog.text
    assert SECRET.rsplit("_", 1)[1] not in text and "s3cret" not in text
    assert "/write?db=x&p=***" in text
    assert "api_key=***" in text
    assert "postgresql://kiln:***@db/x" in text
    record = caplog.records[0]
    assert isinstance(record.args, tuple) and len(record.args) == 5  # uvicorn's formatter works


# -- the live WebSocket and the Origin of a cookie session -----------------------------------


@pytest.fixture
def browser(anonymous: TestClient) -> TestClient:
    """A client signed in the way the web page is: session cookies, no Authorization header."""
    password = initial_admin_password(anonymous.app.state.settings.data_dir)  # type: ignore[attr-defined]
    r = anonymous.post("/api/v1/auth/login", json={"username": "admin", "password": password})
    assert r.status_code == 200, r.text
    return anonymous


def _live(client: TestClient, headers: dict[str, str]) -> tuple[int, str]:
    """101 and "" when the snapshot arrives, else the close code and reason."""
    try:
        with client.websocket_connect("/api/v1/live", headers=headers) as ws:
            assert ws.receive_json()["snapshot"] is True
            return 101, ""
    except WebSocketDisconnect as err:
        return err.code, err.reason


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://testserver.evil.example", "https://testserver", "null",
     "http://testserver:8080", "not a url"],
)  # fmt: skip
def test_a_cookie_session_from_another_origin_is_closed_with_1008(
    browser: TestClient, origin: str
) -> None:
    code, reason = _live(browser, {"Origin": origin})
    assert code == 1008 and "cross-origin" in reason


def test_a_hijack_attempt_with_a_live_session_is_audited(browser: TestClient) -> None:
    assert _live(browser, {"Origin": "http://evil.example"})[0] == 1008
    browser.cookies.clear()
    browser.cookies.set("kiln_access", "not-a-session")
    assert _live(browser, {"Origin": "http://evil.example"})[0] == 1008  # not recorded
    admin = admin_headers(browser, browser.app.state.settings.data_dir)  # type: ignore[attr-defined]
    auditor = user_headers(browser, admin, "audrey", PASSWORD, ["auditor"])
    browser.cookies.clear()
    page = browser.get("/api/v1/audit", headers=auditor, params={"result": "denied"}).json()
    denied = [(r["actor"], r["target"], r["detail"]) for r in page["records"]]
    assert denied == [
        ("user:admin", "/api/v1/live", {"reason": "cross-origin", "origin": "http://evil.example"})
    ]


@pytest.mark.parametrize("origin", ["http://testserver", "HTTP://TestServer:80", None])
def test_a_cookie_session_from_the_own_origin_or_no_browser_is_served(
    browser: TestClient, origin: str | None
) -> None:
    assert _live(browser, {} if origin is None else {"Origin": origin}) == (101, "")


def test_a_bearer_token_needs_no_origin_check(client: TestClient) -> None:
    # Browsers never attach a bearer token by themselves: nothing to hijack.
    headers = {"Origin": "http://evil.example", **client.headers}
    assert _live(client, headers) == (101, "")


def test_allowed_origins_admit_the_public_address_behind_a_proxy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    http = settings.http.model_copy(update={"allowed_origins": ["https://kiln.plant.example"]})
    with make_app_client(settings.model_copy(update={"http": http})) as c:
        password = initial_admin_password(tmp_path / "data")
        c.post("/api/v1/auth/login", json={"username": "admin", "password": password})
        assert _live(c, {"Origin": "https://kiln.plant.example:443"}) == (101, "")
        assert _live(c, {"Origin": "https://other.plant.example"})[0] == 1008


def test_allowed_origins_are_checked_when_the_configuration_loads() -> None:
    with pytest.raises(ValidationError, match="must be scheme://host"):
        HttpSettings(allowed_origins=["kiln.plant.example/live"])


# -- health: counts of every tenant only for the installation's own readers --------------------


@pytest.fixture
def two_tenants(client: TestClient) -> dict[str, dict[str, str]]:
    """Headers of engineers (system:read) of two tenants and one scoped to a line."""
    admin = dict(client.headers)
    r = client.post(
        "/api/v1/tenants", headers=admin,
        json={"name": "other", "roots": ["globex"], "admin_username": "gx-admin",
              "admin_password": PASSWORD},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    gx_admin = bearer_headers(client, "gx-admin", PASSWORD)
    return {
        "admin": admin,
        "engineer-all": user_headers(client, admin, "eng", PASSWORD, ["engineer"]),
        "engineer-site1": user_headers(
            client, admin, "eng1", PASSWORD, ["engineer"], scope="acme/site1"
        ),
        "gx-engineer": user_headers(client, gx_admin, "gx-eng", PASSWORD, ["engineer"]),
        "gx-admin": gx_admin,
        "viewer": user_headers(client, admin, "view", PASSWORD, ["viewer"]),
    }


def test_health_detail_is_for_the_installation_and_statuses_for_other_tenants(
    client: TestClient, two_tenants: dict[str, dict[str, str]], device: dict[str, str]
) -> None:
    assert client.post(
        "/api/v1/ingest", json={"values": [{"path": "acme/a/b", "value": 1.0}]}, headers=device
    ).status_code == 200  # fmt: skip

    def health(who: str) -> dict[str, Any]:
        r = client.get("/api/v1/health", headers=two_tenants[who])
        assert r.status_code == 200
        body: dict[str, Any] = r.json()
        return body

    full = health("engineer-all")
    assert full == health("admin")
    assert any(s["detail"] for s in full["subsystems"].values()), full
    for who in ("gx-engineer", "gx-admin", "engineer-site1"):
        body = health(who)
        assert body["status"] == full["status"]
        assert set(body["subsystems"]) == set(full["subsystems"]), who
        for name, sub in body["subsystems"].items():
            assert sub == {"status": full["subsystems"][name]["status"], "detail": {}}, who
    assert health("viewer")["subsystems"] == {}
    assert client.get("/api/v1/health", headers={"Authorization": ""}).json()["subsystems"] == {}


# -- an exact tag out of scope answers like a missing one ----------------------------------------

GLOBEX_TAG = "globex/site9/line1/flow"
SITE1_TAG = "acme/site1/line1/flow"
SITE2_TAG = "acme/site2/line1/flow"


@pytest.fixture
def stored(
    client: TestClient, two_tenants: dict[str, dict[str, str]], device: dict[str, str]
) -> dict[str, dict[str, str]]:
    gx_device = device_headers(client, two_tenants["gx-admin"], "gx-gw", "globex")
    for headers, path in ((device, SITE1_TAG), (device, SITE2_TAG), (gx_device, GLOBEX_TAG)):
        r = client.post(
            "/api/v1/ingest", json={"values": [{"path": path, "value": 1.0}]}, headers=headers
        )
        assert r.json()["accepted"] == 1, r.text
    return two_tenants


def _ghost(path: str) -> str:
    return f"{path.rsplit('/', 1)[0]}/ghost"


@pytest.mark.parametrize(
    ("who", "hidden"),
    [("engineer-site1", SITE2_TAG), ("engineer-site1", GLOBEX_TAG), ("gx-engineer", SITE1_TAG)],
)
@pytest.mark.parametrize(
    "route",
    ["/api/v1/values/latest", "/api/v1/history/raw", "/api/v1/history/aggregate",
     "/api/v1/history/summary", "/api/v1/history/interpolated", "/api/v1/history/value"],
)  # fmt: skip
def test_an_exact_tag_out_of_scope_answers_like_one_that_does_not_exist(
    client: TestClient, stored: dict[str, dict[str, str]], who: str, hidden: str, route: str
) -> None:
    headers = stored[who]
    window: dict[str, str] = {}
    if route.endswith("value"):
        window["time"] = "now"
    elif not route.endswith("latest"):
        window.update(start="-1d", end="now")
    if not route.endswith(("latest", "raw", "value")):
        window["interval"] = "1h"

    def ask(tag: str) -> httpx.Response:
        return client.get(route, params={"tag": tag, **window}, headers=headers)

    out_of_scope, missing = ask(hidden), ask(_ghost(hidden))
    assert out_of_scope.status_code == missing.status_code == 404, out_of_scope.text
    # The same words but for the path itself: nothing tells the two apart.
    assert out_of_scope.json()["detail"].replace(hidden, "X") == missing.json()["detail"].replace(
        _ghost(hidden), "X"
    )


def test_latest_of_a_visible_tag_and_of_several_with_one_hidden(
    client: TestClient, stored: dict[str, dict[str, str]]
) -> None:
    headers = stored["engineer-site1"]
    ok = client.get("/api/v1/values/latest", params={"tag": SITE1_TAG}, headers=headers)
    assert ok.status_code == 200 and [v["path"] for v in ok.json()["values"]] == [SITE1_TAG]
    mixed = client.get(
        "/api/v1/values/latest", params={"tag": [SITE1_TAG, SITE2_TAG]}, headers=headers
    )
    assert mixed.status_code == 404 and SITE2_TAG in mixed.json()["detail"]
