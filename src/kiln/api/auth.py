"""Who is calling, and may they? Authentication and authorization for every route.

Deny by default: each route declares one guard. `Require(permission)` authenticates the caller
(a bearer token or API key for programs, the session cookie for browsers) and checks the
permission; `Public()` marks the few routes that need no identity (login, the page itself).
`tests/security/test_authz_matrix.py` walks the OpenAPI document and fails for a route without
a guard, so a new route cannot be born unprotected.

Browsers authenticate with HttpOnly cookies; cookie-authenticated requests that change state
must carry the CSRF double-submit header (OWASP CSRF cheat sheet, "signed double submit").
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from typing import Annotated, TypedDict
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, WebSocketException, status
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from kiln.api.audit_trail import audit
from kiln.security.audit import Category, Result
from kiln.security.permissions import Permission
from kiln.security.principal import AuthError, Principal, PrincipalKind
from kiln.security.service import Identity
from kiln.security.tenancy import DEFAULT_TENANT

ACCESS_COOKIE = "kiln_access"
REFRESH_COOKIE = "kiln_refresh"
CSRF_COOKIE = "kiln_csrf"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def identity_of(conn: HTTPConnection) -> Identity:
    identity: Identity = conn.app.state.platform.service(Identity)
    return identity


class Unauthorized(Exception):
    """401, rendered as {"detail", "reason"} so clients can tell "sign in" from "code needed"."""

    def __init__(
        self, detail: str, *, reason: str = "unauthorized", retry_after_s: float | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.reason = reason
        self.retry_after_s = retry_after_s


def unauthorized(detail: str, *, reason: str = "unauthorized") -> Unauthorized:
    return Unauthorized(detail, reason=reason)


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def authenticate(conn: HTTPConnection) -> Principal:
    """The caller's principal; raises 401. Device credentials are not accepted here."""
    token = bearer_token(conn)
    from_cookie = token is None
    if token is None:
        token = conn.cookies.get(ACCESS_COOKIE)
    if not token:
        raise unauthorized("sign in, or send Authorization: Bearer <token>")
    try:
        principal = await identity_of(conn).authenticate_bearer(token)
    except AuthError as err:
        raise unauthorized(str(err), reason=err.reason) from None
    method = conn.scope.get("method")
    if from_cookie and method is not None and method not in _SAFE_METHODS:
        sent = conn.headers.get(CSRF_HEADER, "")
        expected = conn.cookies.get(CSRF_COOKIE, "")
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            raise HTTPException(
                403, "missing or wrong X-CSRF-Token header (copy the kiln_csrf cookie)"
            )
    conn.state.principal = principal
    return principal


def influx_token(conn: HTTPConnection) -> str | None:
    """A token sent the ways InfluxDB clients send one: `Authorization: Token ...` (2.x),
    `Bearer ...`, HTTP Basic with the token as the password, or the `p` query parameter (1.x)."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() in ("token", "bearer") and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return conn.query_params.get("p") or None


async def authenticate_device(conn: HTTPConnection, *, influx: bool = False) -> Principal:
    token = influx_token(conn) if influx else bearer_token(conn)
    if token is None:
        raise unauthorized("ingest needs a device credential: Authorization: Bearer kiln_dev_...")
    try:
        principal = await identity_of(conn).authenticate_device(token)
    except AuthError as err:
        raise unauthorized(str(err), reason=err.reason) from None
    conn.state.principal = principal
    return principal


class Require:
    """Route guard: the caller must hold `permission` (somewhere in its tenant; record-level
    checks against the path are the route's job, with `Principal.sees`)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, conn: HTTPConnection) -> Principal:
        principal = await authenticate(conn)
        if principal.kind is PrincipalKind.DEVICE:
            raise HTTPException(403, "device credentials may only ingest")
        if not any(self.permission in g.permissions for g in principal.grants):
            # Denied requests are auditable events (CR 2.8 "access control"); the record names
            # the path, not the query, which may carry a tag the caller should not see.
            await audit(
                conn, category=Category.AUTHORIZATION, action="denied", target=conn.url.path,
                result=Result.DENIED, principal=principal,
                detail={"needs": self.permission.value},
            )  # fmt: skip
            raise HTTPException(403, f"this needs the {self.permission.value} permission")
        return principal


_CROSS_ORIGIN = "cross-origin: this page's origin may not use the session cookie here"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_key(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, ports made explicit; None if it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def cookie_origin_allowed(conn: HTTPConnection) -> bool:
    """Whether a WebSocket handshake may use the session cookie it carries.

    Browsers send cookies with a WebSocket handshake whatever page opened it, and the same-origin
    policy does not apply to WebSockets, so a page of any site could read the live values with
    the user's session (cross-site WebSocket hijacking). Browsers always send `Origin` on this
    handshake (RFC 6455 4.1, 10.2): the cookie counts only when the origin is the server's own
    (the scheme, `Host` and port the request came to) or one of `http.allowed_origins` (the
    public address behind a proxy). A bearer token is never sent by a browser on its own, and a
    request without the cookie or without `Origin` (not a browser) has nothing to hijack.
    """
    origin = conn.headers.get("origin")
    if origin is None or bearer_token(conn) is not None or not conn.cookies.get(ACCESS_COOKIE):
        return True
    key = _origin_key(origin)
    if key is None:
        return False  # "null" (a sandboxed frame, a file) or garbage
    scheme = {"ws": "http", "wss": "https"}.get(conn.url.scheme, conn.url.scheme)
    host = conn.headers.get("host")
    if host is not None and key == _origin_key(f"{scheme}://{host}"):
        return True
    allowed: list[str] = conn.app.state.settings.http.allowed_origins
    return any(key == _origin_key(o) for o in allowed)


async def _audit_cross_origin(conn: HTTPConnection) -> None:
    """Record a refused cross-origin use of a live session: a page of another site tried to
    read with a user's rights. A cookie that is no session put nothing at risk and is not
    recorded, so that anyone cannot fill the audit log with forged handshakes."""
    try:
        principal = await identity_of(conn).authenticate_bearer(conn.cookies[ACCESS_COOKIE])
    except AuthError:
        return
    await audit(
        conn, category=Category.AUTHORIZATION, action="denied", target=conn.url.path,
        result=Result.DENIED, principal=principal,
        detail={"reason": "cross-origin", "origin": conn.headers.get("origin", "")[:200]},
    )  # fmt: skip


class RequireOnWebSocket(Require):
    """`Require` for a WebSocket route. A browser's WebSocket cannot read the status of a refused
    handshake, so a refusal closes it with a code instead: 4401 (an application code, RFC 6455
    7.4.2) for "sign in again", which the page answers by refreshing; 1008 (policy violation)
    for a missing permission or a session cookie sent from another site's page
    (`cookie_origin_allowed`)."""

    async def __call__(self, conn: HTTPConnection) -> Principal:
        try:
            if not cookie_origin_allowed(conn):
                await _audit_cross_origin(conn)
                code, reason = status.WS_1008_POLICY_VIOLATION, _CROSS_ORIGIN
            else:
                return await super().__call__(conn)
        except Unauthorized:
            code, reason = 4401, "unauthorized"
        except HTTPException:
            code, reason = status.WS_1008_POLICY_VIOLATION, f"needs {self.permission.value}"
        # Accepted first: a close before the handshake completes reaches the browser as an
        # HTTP 403 and then a bare 1006, without the code (Starlette closes with it below).
        if isinstance(conn, WebSocket):
            await conn.accept()
        raise WebSocketException(code, reason)


class RequireDevice:
    """Route guard for device ingest: a device credential; paths are checked per item.
    `influx` also takes it the ways InfluxDB clients send a token (see `influx_token`)."""

    def __init__(self, *, influx: bool = False) -> None:
        self.influx = influx

    async def __call__(self, conn: HTTPConnection) -> Principal:
        return await authenticate_device(conn, influx=self.influx)


class Authenticated:
    """Route guard: any signed-in user or API key, whatever its permissions (e.g. /auth/me)."""

    async def __call__(self, conn: HTTPConnection) -> Principal:
        return await authenticate(conn)


class Public:
    """Route guard that lets anyone in, declared on purpose (login, the page shell)."""

    async def __call__(self) -> None:
        return None


def reads_installation(principal: Principal) -> bool:
    """Whether `principal` holds system:read over the whole default tenant, whose administrators
    run the installation (they alone create tenants): the one reader to whom platform-wide
    numbers (every tenant's tags, connectors and clients) may be shown."""
    return any(
        g.tenant == DEFAULT_TENANT and g.scope is None and Permission.SYSTEM_READ in g.permissions
        for g in principal.grants
    )


class PublishScope(TypedDict):
    may_publish: Callable[[str], bool]
    denied: str


def publish_scope(device: Principal) -> PublishScope:
    """What a device may publish, and what a refusal says: for the ingest service's calls."""
    return {
        "may_publish": device.may_publish,
        "denied": f"device {device.name} may publish only under {device.device_prefix}",
    }


Anyone = Annotated[Principal, Depends(Authenticated())]
ValuesReader = Annotated[Principal, Depends(Require(Permission.VALUES_READ))]
SystemReader = Annotated[Principal, Depends(Require(Permission.SYSTEM_READ))]
AuditReader = Annotated[Principal, Depends(Require(Permission.AUDIT_READ))]
UserManager = Annotated[Principal, Depends(Require(Permission.USERS_MANAGE))]
DeviceWriter = Annotated[Principal, Depends(Require(Permission.DEVICES_WRITE))]
LiveReader = Annotated[Principal, Depends(RequireOnWebSocket(Permission.VALUES_READ))]
Device = Annotated[Principal, Depends(RequireDevice())]
InfluxDevice = Annotated[Principal, Depends(RequireDevice(influx=True))]
