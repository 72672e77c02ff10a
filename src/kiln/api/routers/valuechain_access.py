"""Who sees what of the value chain, and the one way the routes talk to its engine.

The value chain's records belong to the enterprise: the tenant of the organisation of kind
enterprise (the default tenant while none is declared). Its users see every record their
permissions allow. A user of any other tenant is a partner's: it sees only the records of the
organisations (customers, suppliers) whose tenant is its own: its sales or purchase orders, the
lots it supplied or received. Beyond those, it sees what the enterprise shares with its tenant
(security shares of kind `valuechain`: `genealogy`, `forecasts`, `quality`), and it changes
nothing, whatever its role in its own tenant (a partner's administrator holds every permission
there, and none over the enterprise's records). A record outside what the caller sees is
answered as one that does not exist (404), so existence does not leak.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from kiln.api.audit_trail import audit
from kiln.api.auth import identity_of
from kiln.api.routers.alarms import DEADLINE_S
from kiln.api.routers.alarms import ask as _ask
from kiln.core.platform import Platform
from kiln.security.audit import Category, Result
from kiln.security.principal import Principal
from kiln.security.service import DEFAULT_TENANT
from kiln.valuechain.engine import VALUECHAIN_TARGET

ENGINE: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad arguments, or a change the data does not allow (the detail: why)"},
    502: {"description": "the value chain engine failed the command"},
    503: {"description": "the value chain engine is not running; retry shortly"},
    504: {"description": "no answer from the value chain engine in time"},
}
MISSING: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such record for you (existence does not leak to partners)"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "the record changed meanwhile (expected_version), or its id is taken"}
}
PARTNER_DENIED: dict[int | str, dict[str, Any]] = {
    403: {"description": "not for a partner's users (the enterprise's own data or changes)"}
}
READ = ENGINE | MISSING
CHANGE = ENGINE | MISSING | CONFLICT | PARTNER_DENIED
CONFLICT_PREFIX = "conflict: "


class RulesRoute(APIRoute):
    """A route whose body is a value chain model: what the model refuses is a 400 with the
    reasons, as the engine's refusals are. The models check rules a schema cannot state (a
    lot_max below lot_min, a line number given twice, a decimal written as text); the API
    keeps 422 for requests that do not match the schema, and a request that breaks such a rule
    does match it. (Whether a body matches the schema is not told apart here: 400 either way.)"""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as err:
                raise HTTPException(400, _reasons(err.errors())) from None

        return handle


def _reasons(errors: Sequence[Any]) -> str:
    parts = []
    for e in list(errors)[:10]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {e.get('msg')}")
    return "; ".join(parts)


@dataclass(frozen=True)
class View:
    """What one caller sees: `parties` None for the enterprise's users (everything), else the
    organisation codes that are the caller's own; `shares` what the enterprise shares."""

    parties: list[str] | None
    shares: frozenset[str]

    @property
    def partner(self) -> bool:
        return self.parties is not None

    def args(self) -> dict[str, Any]:
        return {"parties": self.parties}


async def ask(
    platform: Platform, name: str, args: Mapping[str, Any], *, timeout_s: float = DEADLINE_S
) -> Mapping[str, Any]:
    """One command to the value chain engine; a lost race (its message says conflict) is 409."""
    try:
        return await _ask(
            platform,
            name,
            args,
            target=VALUECHAIN_TARGET,
            who="the value chain engine",
            timeout_s=timeout_s,
        )
    except HTTPException as err:
        detail = str(err.detail)
        if err.status_code == 400 and detail.startswith(CONFLICT_PREFIX):
            raise HTTPException(409, detail.removeprefix(CONFLICT_PREFIX)) from None
        raise


async def view_of(request: Request, platform: Platform, who: Principal) -> View:
    """The caller's view, from the organisations and the shares of its tenant."""
    orgs = (await ask(platform, "organisations", {}))["organisations"]
    enterprises = {o["tenant"] for o in orgs if o["kind"] == "enterprise"} or {DEFAULT_TENANT}
    if who.tenant in enterprises:
        return View(None, frozenset({"genealogy", "forecasts", "quality"}))
    own = [o["code"] for o in orgs if o["tenant"] == who.tenant and o["kind"] != "enterprise"]
    shared = identity_of(request).shared_with(who.tenant, "valuechain")
    granted = frozenset(r for owner in enterprises for r in shared.get(owner, ()))
    return View(own, granted)


async def enterprise_only(request: Request, platform: Platform, who: Principal) -> View:
    """The caller's view, refused (403) for a partner's user: the route is the enterprise's."""
    view = await view_of(request, platform, who)
    if view.partner:
        raise HTTPException(
            403, "this is the enterprise's own data: a partner's users see their orders and lots"
        )
    return view


async def change(
    request: Request,
    platform: Platform,
    name: str,
    args: dict[str, Any],
    target: str,
    detail: Mapping[str, Any] | None = None,
    *,
    timeout_s: float = DEADLINE_S,
) -> Mapping[str, Any]:
    """One change through the engine, audited (category valuechain) made or refused."""
    detail = dict(detail or {})
    try:
        reply = await ask(platform, name, args, timeout_s=timeout_s)
    except HTTPException as err:
        if err.status_code in (400, 404, 409):
            await audit(
                request,
                category=Category.VALUECHAIN,
                action=name,
                target=target,
                result=Result.FAILURE,
                detail={**detail, "error": str(err.detail)},
            )
        raise
    await audit(request, category=Category.VALUECHAIN, action=name, target=target, detail=detail)
    return reply
