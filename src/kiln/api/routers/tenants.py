"""Tenants (organisations) and what an owner shares with a partner."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from kiln.api.audit_trail import audit
from kiln.api.auth import UserManager, identity_of
from kiln.api.errors import service_errors
from kiln.security.audit import Category
from kiln.security.service import DEFAULT_TENANT
from kiln.security.store import ShareInfo, TenantInfo

router = APIRouter(tags=["tenants"])


class TenantOut(BaseModel):
    name: str
    kind: str
    roots: list[str]
    created_at: datetime

    @classmethod
    def of(cls, t: TenantInfo) -> TenantOut:
        return cls(name=t.name, kind=t.kind.value, roots=list(t.roots), created_at=t.created_at)


class TenantsOut(BaseModel):
    tenants: list[TenantOut]


class TenantIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    kind: str = Field(default="owner", description="owner (has a namespace) or partner")
    roots: list[str] = Field(default_factory=list, max_length=64)
    admin_username: str | None = Field(default=None, max_length=64)
    admin_password: str | None = Field(default=None, max_length=1024)


class ShareIn(BaseModel):
    kind: str = Field(default="namespace")
    resource_id: str = Field(min_length=1, max_length=1024, description="the subtree to share")
    permission: str = Field(default="values:read")


class ShareOut(BaseModel):
    owner: str
    partner: str
    kind: str
    resource_id: str
    permission: str

    @classmethod
    def of(cls, s: ShareInfo) -> ShareOut:
        return cls(
            owner=s.owner,
            partner=s.partner,
            kind=s.kind,
            resource_id=s.resource_id,
            permission=s.permission.value,
        )


class SharesOut(BaseModel):
    shares: list[ShareOut]


@router.get("/tenants", response_model=TenantsOut)
def list_tenants(request: Request, who: UserManager) -> TenantsOut:
    """Every tenant, for administrators of the platform's own tenant; your own otherwise."""
    tenants = identity_of(request).tenants()
    if who.tenant != DEFAULT_TENANT:
        tenants = [t for t in tenants if t.name == who.tenant]
    return TenantsOut(tenants=[TenantOut.of(t) for t in tenants])


@router.post("/tenants", response_model=TenantOut, status_code=201)
async def create_tenant(body: TenantIn, request: Request, who: UserManager) -> TenantOut:
    """Create an organisation with its own namespace roots (owner) or none (partner)."""
    with service_errors():
        tenant = await identity_of(request).create_tenant(
            who,
            body.name,
            body.kind,
            body.roots,
            admin_username=body.admin_username,
            admin_password=body.admin_password,
        )
    await audit(
        request, category=Category.CONFIGURATION, action="tenant.create", target=tenant.name,
        detail={"kind": tenant.kind.value, "roots": list(tenant.roots),
                "admin": body.admin_username},
    )  # fmt: skip
    return TenantOut.of(tenant)


@router.post("/tenants/{partner}/shares", response_model=ShareOut, status_code=201)
async def share(
    partner: Annotated[str, Path(max_length=64)], body: ShareIn, request: Request, who: UserManager
) -> ShareOut:
    """Share a subtree of your namespace with a partner organisation, read-only."""
    with service_errors():
        s = await identity_of(request).share(
            who, partner, body.kind, body.resource_id, body.permission
        )
    await audit(
        request, category=Category.AUTHORIZATION, action="share.create", target=partner,
        detail={"kind": s.kind, "resource": s.resource_id, "permission": s.permission.value},
    )  # fmt: skip
    return ShareOut.of(s)


@router.delete("/tenants/{partner}/shares", status_code=204)
async def unshare(
    partner: Annotated[str, Path(max_length=64)],
    request: Request,
    who: UserManager,
    resource_id: Annotated[str, Query(min_length=1, max_length=1024)],
    kind: Annotated[str, Query(max_length=16)] = "namespace",
) -> Response:
    """Withdraw a share; the partner's users lose it from their next request on."""
    with service_errors():
        await identity_of(request).unshare(who, partner, kind, resource_id)
    await audit(
        request, category=Category.AUTHORIZATION, action="share.revoke", target=partner,
        detail={"kind": kind, "resource": resource_id},
    )  # fmt: skip
    return Response(status_code=204)


@router.get("/shares", response_model=SharesOut)
def list_shares(request: Request, who: UserManager) -> SharesOut:
    """What your tenant shares with partners (within your scope), and what is shared with it."""
    with service_errors():
        shares = identity_of(request).shares(who)
    return SharesOut(shares=[ShareOut.of(s) for s in shares])
