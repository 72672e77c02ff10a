"""Signing in and out: OAuth2 password grant for programs, cookies with CSRF for browsers."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kiln.api.audit_trail import audit, client_address
from kiln.api.auth import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    REFRESH_COOKIE,
    Anyone,
    Public,
    Unauthorized,
    authenticate,
    identity_of,
)
from kiln.api.errors import service_errors
from kiln.security.audit import Category, Result
from kiln.security.principal import AuthError, Principal, PrincipalKind
from kiln.security.service import TokenPair

router = APIRouter(prefix="/auth", tags=["auth"])

_REFRESH_PATH = "/api/v1/auth"


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str


class LoginIn(BaseModel):
    username: str = Field(max_length=256)
    password: str = Field(max_length=1024)
    otp: str | None = Field(default=None, max_length=16)


class GrantOut(BaseModel):
    tenant: str
    permissions: list[str]
    scope: str | None


class MeOut(BaseModel):
    username: str
    tenant: str
    kind: str
    permissions: list[str]
    grants: list[GrantOut]


class LoginOut(BaseModel):
    user: MeOut
    csrf_token: str
    expires_in: int = Field(description="seconds the access cookie is good for; renew before")


class CsrfOut(BaseModel):
    csrf_token: str
    expires_in: int


def me_of(p: Principal) -> MeOut:
    perms = sorted({perm.value for g in p.grants for perm in g.permissions})
    return MeOut(
        username=p.name,
        tenant=p.tenant,
        kind=p.kind.value,
        permissions=perms,
        grants=[
            GrantOut(
                tenant=g.tenant, permissions=sorted(x.value for x in g.permissions), scope=g.scope
            )
            for g in p.grants
        ],
    )


def _auth_failed(err: AuthError) -> Unauthorized:
    return Unauthorized(str(err), reason=err.reason, retry_after_s=err.retry_after_s)


async def _login(request: Request, username: str, password: str, otp: str | None) -> TokenPair:
    source = client_address(request)
    try:
        pair = await identity_of(request).login(username, password, totp=otp, source=source)
    except AuthError as err:
        await audit(
            request, category=Category.AUTHENTICATION, action="login", target=username,
            result=Result.FAILURE, actor=f"user:{username}", detail={"reason": err.reason},
        )  # fmt: skip
        raise _auth_failed(err) from None
    await audit(
        request, category=Category.AUTHENTICATION, action="login", target=username,
        actor=f"user:{username}",
    )  # fmt: skip
    return pair


async def _refresh(request: Request, refresh_token: str) -> TokenPair:
    """Rotate a refresh token into a new pair; a refused one (expired, reused) is audited."""
    identity = identity_of(request)
    try:
        pair = await identity.refresh(refresh_token)
    except AuthError as err:
        await audit(
            request, category=Category.AUTHENTICATION, action="token.refresh",
            result=Result.FAILURE, detail={"reason": err.reason},
        )  # fmt: skip
        raise _auth_failed(err) from None
    principal = await identity.authenticate_bearer(pair.access)
    await audit(
        request, category=Category.AUTHENTICATION, action="token.refresh",
        target=principal.name, principal=principal,
    )  # fmt: skip
    return pair


@router.post("/token", response_model=TokenOut, dependencies=[Depends(Public())])
async def token(
    request: Request,
    grant_type: Annotated[str, Form(description="password or refresh_token")],
    username: Annotated[str | None, Form(max_length=256)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    otp: Annotated[str | None, Form(max_length=16, description="TOTP code, if enrolled")] = None,
    refresh_token: Annotated[str | None, Form(max_length=512)] = None,
) -> TokenOut:
    """OAuth2 token endpoint (RFC 6749 4.3 password grant, 6 refresh) for programs."""
    if grant_type == "password":
        if not username or not password:
            raise Unauthorized("username and password are required", reason="invalid_request")
        pair = await _login(request, username, password, otp)
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise Unauthorized("refresh_token is required", reason="invalid_request")
        pair = await _refresh(request, refresh_token)
    else:
        raise Unauthorized(
            f"unsupported grant_type {grant_type!r}: use password or refresh_token",
            reason="unsupported_grant_type",
        )
    return TokenOut(
        access_token=pair.access, expires_in=pair.expires_in, refresh_token=pair.refresh
    )


def _set_cookies(request: Request, response: Response, pair: TokenPair) -> str:
    secure = request.url.scheme == "https"
    csrf = secrets.token_urlsafe(32)
    common: dict[str, Any] = {"secure": secure, "samesite": "strict"}
    response.set_cookie(ACCESS_COOKIE, pair.access, httponly=True, path="/", **common)
    response.set_cookie(REFRESH_COOKIE, pair.refresh, httponly=True, path=_REFRESH_PATH, **common)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, path="/", **common)
    return csrf


def _clear_cookies(response: Response) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/")
    response.delete_cookie(REFRESH_COOKIE, path=_REFRESH_PATH)
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.post("/login", response_model=LoginOut, dependencies=[Depends(Public())])
async def login(body: LoginIn, request: Request, response: Response) -> LoginOut:
    """Browser sign-in: session cookies (HttpOnly, SameSite=Strict) and a CSRF token."""
    pair = await _login(request, body.username, body.password, body.otp)
    principal = await identity_of(request).authenticate_bearer(pair.access)
    csrf = _set_cookies(request, response, pair)
    return LoginOut(user=me_of(principal), csrf_token=csrf, expires_in=pair.expires_in)


@router.post("/refresh", response_model=CsrfOut, dependencies=[Depends(Public())])
async def refresh(request: Request, response: Response) -> CsrfOut:
    """Browser session renewal with the refresh cookie (rotated on every use)."""
    sent = request.headers.get("x-csrf-token", "")
    if not sent or not secrets.compare_digest(sent, request.cookies.get(CSRF_COOKIE, "")):
        raise Unauthorized("missing or wrong X-CSRF-Token header", reason="csrf")
    token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise Unauthorized("no session: sign in", reason="invalid_token")
    try:
        pair = await _refresh(request, token)
    except Unauthorized:
        _clear_cookies(response)
        raise
    return CsrfOut(csrf_token=_set_cookies(request, response, pair), expires_in=pair.expires_in)


@router.post("/logout", status_code=204, dependencies=[Depends(Public())])
async def logout(request: Request, response: Response) -> Response:
    """End the session (cookie or bearer); harmless when there is none."""
    principal: Principal | None
    try:
        principal = await authenticate(request)
    except (Unauthorized, HTTPException):
        principal = None
    identity = identity_of(request)
    refresh_cookie = request.cookies.get(REFRESH_COOKIE)
    if refresh_cookie:
        await identity.logout(refresh_cookie)
    elif principal is not None and principal.kind is PrincipalKind.USER:
        # An API key has no session to end (it is revoked instead): nothing to do for it.
        await identity.logout(principal)
    if principal is not None:
        await audit(request, category=Category.AUTHENTICATION, action="logout", principal=principal)
    out = Response(status_code=204)
    _clear_cookies(out)
    return out


@router.get("/me", response_model=MeOut)
async def me(principal: Anyone) -> MeOut:
    """Who you are signed in as, with your permissions and their scopes."""
    return me_of(principal)


class TotpStartOut(BaseModel):
    secret: str = Field(description="base32; enter it in the authenticator app if not scanning")
    provisioning_uri: str = Field(description="otpauth:// URI, for a QR code")


class TotpConfirmIn(BaseModel):
    code: str = Field(min_length=6, max_length=8)


@router.post("/totp", response_model=TotpStartOut)
async def totp_start(request: Request, principal: Anyone) -> TotpStartOut:
    """Start enrolling yourself in TOTP (RFC 6238); it is in force once a code confirms it."""
    with service_errors():
        pending = await identity_of(request).enable_totp(principal)
    await audit(request, category=Category.ACCOUNT, action="totp.start", target=principal.name)
    return TotpStartOut(secret=pending.secret, provisioning_uri=pending.uri)


@router.post("/totp/confirm", status_code=204)
async def totp_confirm(body: TotpConfirmIn, request: Request, principal: Anyone) -> Response:
    """Confirm the enrolment with a code from the app; from then on sign-in asks for one."""
    try:
        await identity_of(request).confirm_totp(principal, body.code)
    except AuthError as err:
        await audit(
            request, category=Category.ACCOUNT, action="totp.confirm", target=principal.name,
            result=Result.FAILURE,
        )  # fmt: skip
        raise _auth_failed(err) from None
    except ValueError as err:
        raise HTTPException(409, str(err)) from None
    await audit(request, category=Category.ACCOUNT, action="totp.confirm", target=principal.name)
    return Response(status_code=204)


class PasswordChangeIn(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


@router.post("/password", status_code=204, response_model=None)
async def change_password(
    body: PasswordChangeIn, request: Request, principal: Anyone
) -> Response | JSONResponse:
    """Change your own password, giving the current one; your other sessions end.

    A wrong current password is a 403 (not a 401: the session itself is fine) and counts
    toward the same lockout as failed sign-ins, which answers 429 with Retry-After.
    """
    if principal.kind is not PrincipalKind.USER:
        raise HTTPException(403, "only a signed-in user has a password to change")
    username = principal.user or principal.name
    failure: AuthError | None = None
    with service_errors():  # a password the policy refuses is a 400
        try:
            await identity_of(request).set_password(
                principal, username, body.new_password, current_password=body.current_password
            )
        except AuthError as err:
            failure = err
    if failure is not None:
        await audit(
            request, category=Category.ACCOUNT, action="user.password", target=username,
            result=Result.FAILURE, detail={"reason": failure.reason},
        )  # fmt: skip
        headers = {}
        if failure.retry_after_s is not None:
            headers["Retry-After"] = str(max(1, round(failure.retry_after_s)))
        status = 429 if failure.reason == "rate_limited" else 403
        return JSONResponse(
            {"detail": str(failure), "reason": failure.reason}, status_code=status, headers=headers
        )
    await audit(request, category=Category.ACCOUNT, action="user.password", target=username)
    return Response(status_code=204)
