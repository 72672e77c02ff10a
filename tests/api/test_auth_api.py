"""Signing in over HTTP: tokens, browser cookies with CSRF, TOTP, lockout, audit routes."""

from __future__ import annotations

import time

import httpx
import pyotp
from fastapi.testclient import TestClient

from kiln.testing.auth import bearer_headers, initial_admin_password, user_headers

PASSWORD = "correct horse battery"


def token(
    client: TestClient, username: str, password: str, otp: str | None = None
) -> httpx.Response:
    data = {"grant_type": "password", "username": username, "password": password}
    if otp is not None:
        data["otp"] = otp
    return client.post("/api/v1/auth/token", data=data, headers={"Authorization": ""})


def test_anonymous_requests_are_refused_and_health_shows_only_the_status(
    anonymous: TestClient,
) -> None:
    r = anonymous.get("/api/v1/values/latest")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "sign in" in r.json()["detail"]
    health = anonymous.get("/api/v1/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["subsystems"] == {}
    assert anonymous.get("/metrics").status_code == 401


def test_security_headers(anonymous: TestClient) -> None:
    r = anonymous.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert anonymous.get("/api/v1/health").headers["cache-control"] == "no-store"


def test_token_refresh_rotation_and_logout(client: TestClient) -> None:
    admin = dict(client.headers)
    user_headers(client, admin, "olga", PASSWORD, ["viewer"])
    first = token(client, "olga", PASSWORD).json()
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=bearer).json()["permissions"] == [
        "valuechain:read",
        "values:read",
    ]
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = client.post("/api/v1/auth/token", data=refresh)
    assert second.status_code == 200
    # The old refresh token was rotated away; presenting it again ends the whole session.
    assert client.post("/api/v1/auth/token", data=refresh).status_code == 401
    newer = {"Authorization": f"Bearer {second.json()['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=newer).status_code == 401
    third = token(client, "olga", PASSWORD).json()
    third_headers = {"Authorization": f"Bearer {third['access_token']}"}
    assert client.post("/api/v1/auth/logout", headers=third_headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=third_headers).status_code == 401


def test_browser_cookies_need_the_csrf_header_to_change_anything(anonymous: TestClient) -> None:
    state = anonymous.app.state  # type: ignore[attr-defined]
    password = initial_admin_password(state.settings.data_dir)
    r = anonymous.post("/api/v1/auth/login", json={"username": "admin", "password": password})
    assert r.status_code == 200
    set_cookie = ",".join(r.headers.get_list("set-cookie"))
    assert "kiln_access=" in set_cookie and "HttpOnly" in set_cookie
    assert "SameSite=strict" in set_cookie or "samesite=strict" in set_cookie.lower()
    csrf = r.json()["csrf_token"]
    assert anonymous.get("/api/v1/users").status_code == 200  # reading needs no CSRF header
    body = {"name": "m1", "prefix": "acme/m1"}
    refused = anonymous.post("/api/v1/devices", json=body)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    ok = anonymous.post("/api/v1/devices", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    renewed = anonymous.post("/api/v1/auth/refresh", headers={"X-CSRF-Token": csrf})
    assert renewed.status_code == 200 and renewed.json()["csrf_token"] != csrf


def test_totp_enrolment_then_sign_in_needs_a_code(client: TestClient) -> None:
    admin = dict(client.headers)
    tina = user_headers(client, admin, "tina", PASSWORD, ["operator"])
    started = client.post("/api/v1/auth/totp", headers=tina)
    assert started.status_code == 200
    assert started.json()["provisioning_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(started.json()["secret"])
    wrong = client.post("/api/v1/auth/totp/confirm", json={"code": "000000"}, headers=tina)
    assert wrong.status_code == 401
    confirmed = client.post("/api/v1/auth/totp/confirm", json={"code": totp.now()}, headers=tina)
    assert confirmed.status_code == 204
    without = token(client, "tina", PASSWORD)
    assert without.status_code == 401
    assert without.json()["reason"] == "totp_required"
    # The code just used for the confirmation cannot be replayed; the next step's can.
    later = pyotp.TOTP(started.json()["secret"]).at(int(time.time()) + 30)
    assert token(client, "tina", PASSWORD, later).status_code == 200


def test_repeated_failures_lock_the_name_with_retry_after(client: TestClient) -> None:
    admin = dict(client.headers)
    user_headers(client, admin, "lars", PASSWORD, ["viewer"])
    codes = [token(client, "lars", "wrong password!").status_code for _ in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429
    locked = token(client, "lars", PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0


def test_auditor_reads_and_exports_what_happened(client: TestClient) -> None:
    admin = dict(client.headers)
    token(client, "admin", "not the password")
    auditor = user_headers(client, admin, "audrey", PASSWORD, ["auditor"])
    assert client.get("/api/v1/audit", headers=admin).status_code == 403  # admins do not
    pair = token(client, "audrey", PASSWORD).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
    assert client.post("/api/v1/auth/token", data=refresh).status_code == 200
    page = client.get("/api/v1/audit", headers=auditor, params={"category": "authentication"})
    assert page.status_code == 200
    logins = [(r["actor"], r["action"], r["result"]) for r in page.json()["records"]]
    assert ("user:admin", "login", "failure") in logins
    assert ("user:audrey", "login", "success") in logins
    assert ("user:audrey", "token.refresh", "success") in logins
    assert all(r["source"] == "testclient" for r in page.json()["records"])
    denied = client.get("/api/v1/audit", headers=auditor, params={"result": "denied"}).json()
    assert [(r["actor"], r["target"]) for r in denied["records"]] == [
        ("user:admin", "/api/v1/audit")
    ]
    csv = client.get("/api/v1/audit/export", headers=auditor, params={"format": "csv"})
    assert csv.status_code == 200 and csv.text.startswith("seq,time,ts_us,actor")
    verified = client.get("/api/v1/audit/verify", headers=auditor).json()
    assert verified["ok"] is True and verified["checked"] >= 5


def test_password_change_ends_other_sessions(client: TestClient) -> None:
    admin = dict(client.headers)
    old = user_headers(client, admin, "pia", PASSWORD, ["viewer"])
    other = bearer_headers(client, "pia", PASSWORD)
    body = {"new_password": "another long passphrase", "current_password": PASSWORD}
    assert client.put("/api/v1/users/pia/password", json=body, headers=old).status_code == 204
    assert client.get("/api/v1/auth/me", headers=old).status_code == 200  # the one that changed
    assert client.get("/api/v1/auth/me", headers=other).status_code == 401
    # Nobody gives themselves a role, not even an administrator (OWASP API3).
    mine = client.post("/api/v1/users/admin/roles", json={"role": "auditor"}, headers=admin)
    assert mine.status_code == 403


def test_own_password_change_refuses_a_wrong_current_one_without_ending_the_session(
    client: TestClient,
) -> None:
    """POST /auth/password: the page's route. A wrong current password is a 403, not a 401 (the
    session is fine), counts toward the lockout like a failed sign-in, and is audited."""
    admin = dict(client.headers)
    mine = user_headers(client, admin, "ola", PASSWORD, ["viewer"])
    auditor = user_headers(client, admin, "aud", PASSWORD, ["auditor"])
    wrong = {"current_password": "not it at all", "new_password": "a brand new passphrase"}
    codes = [
        client.post("/api/v1/auth/password", json=wrong, headers=mine).status_code for _ in range(6)
    ]
    assert codes[:5] == [403] * 5 and codes[5] == 429
    assert client.get("/api/v1/auth/me", headers=mine).status_code == 200
    locked = client.post(
        "/api/v1/auth/password", json={**wrong, "current_password": PASSWORD}, headers=mine
    )
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0

    user_headers(client, admin, "pim", PASSWORD, ["viewer"])
    pim = bearer_headers(client, "pim", PASSWORD)
    right = {"current_password": PASSWORD, "new_password": "a brand new passphrase"}
    assert client.post("/api/v1/auth/password", json=right, headers=pim).status_code == 204
    assert token(client, "pim", PASSWORD).status_code == 401
    assert token(client, "pim", "a brand new passphrase").status_code == 200

    records = client.get(
        "/api/v1/audit", headers=auditor, params={"category": "account", "limit": 100}
    ).json()["records"]
    changes = [(r["target"], r["result"]) for r in records if r["action"] == "user.password"]
    assert ("pim", "success") in changes
    assert changes.count(("ola", "failure")) == 7  # six wrong, then one refused while locked
