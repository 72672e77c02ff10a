"""Signing in to a test platform: the first administrator's token and device credentials.

For tests and benchmarks. Works with any client shaped like httpx's (`httpx.Client`,
Starlette's `TestClient`), against an in-process app or a server subprocess.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from kiln.security.service import INITIAL_ADMIN_FILE


class _Response(Protocol):
    status_code: int
    text: str

    def json(self) -> Any: ...


class _Client(Protocol):
    # A property, so that any callable matches (httpx spells out every keyword argument).
    @property
    def post(self) -> Callable[..., Any]: ...


def initial_admin_password(data_dir: Path) -> str:
    """The password the first start wrote to `<data_dir>/initial-admin.txt`."""
    for line in (data_dir / INITIAL_ADMIN_FILE).read_text().splitlines():
        if line.startswith("password:"):
            return line.split(":", 1)[1].strip()
    raise LookupError(f"no password line in {data_dir / INITIAL_ADMIN_FILE}")


def _ok(response: _Response, what: str) -> Any:
    if response.status_code >= 300:
        raise AssertionError(f"{what} failed: {response.status_code} {response.text}")
    return response.json()


def bearer_headers(client: _Client, username: str, password: str, base: str = "") -> dict[str, str]:
    """`Authorization` headers for a user, by the OAuth2 password grant."""
    body = _ok(
        client.post(
            f"{base}/api/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": password},
        ),
        f"sign-in of {username}",
    )
    return {"Authorization": f"Bearer {body['access_token']}"}


def admin_headers(client: _Client, data_dir: Path, base: str = "") -> dict[str, str]:
    """Headers of the first administrator of a fresh data directory."""
    return bearer_headers(client, "admin", initial_admin_password(data_dir), base)


def device_headers(
    client: _Client, admin: dict[str, str], name: str, prefix: str, base: str = ""
) -> dict[str, str]:
    """Headers with a new device credential that may publish below `prefix`."""
    body = _ok(
        client.post(f"{base}/api/v1/devices", json={"name": name, "prefix": prefix}, headers=admin),
        f"creating device {name}",
    )
    return {"Authorization": f"Bearer {body['token']}"}


def user_headers(
    client: _Client,
    admin: dict[str, str],
    username: str,
    password: str,
    roles: list[str],
    scope: str | None = None,
    base: str = "",
) -> dict[str, str]:
    """Create a user with `roles` over `scope` and sign it in."""
    _ok(
        client.post(
            f"{base}/api/v1/users",
            json={"username": username, "password": password, "roles": roles, "scope": scope},
            headers=admin,
        ),
        f"creating user {username}",
    )
    return bearer_headers(client, username, password, base)
