"""Users and roles of the caller's tenant (users:manage), and one's own password."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from kiln.api.audit_trail import audit
from kiln.api.auth import Anyone, UserManager, identity_of
from kiln.api.errors import service_errors
from kiln.security.audit import Category
from kiln.security.store import RoleInfo, UserInfo

router = APIRouter(tags=["users"])

Username = Annotated[str, Path(min_length=1, max_length=64)]


class RoleAssignmentOut(BaseModel):
    role: str
    scope: str | None = Field(description="namespace subtree; null means the whole tenant")


class UserOut(BaseModel):
    username: str
    tenant: str
    disabled: bool
    totp_enabled: bool
    roles: list[RoleAssignmentOut]
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, u: UserInfo) -> UserOut:
        return cls(
            username=u.username,
            tenant=u.tenant,
            disabled=u.disabled,
            totp_enabled=u.totp_enabled,
            roles=[RoleAssignmentOut(role=a.role, scope=a.scope) for a in u.roles],
            created_at=u.created_at,
            last_login_at=u.last_login_at,
        )


class UsersOut(BaseModel):
    users: list[UserOut]


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    roles: list[str] = Field(default_factory=list, max_length=32)
    scope: str | None = Field(default=None, max_length=1024, description="scope of the roles")


class RoleChangeIn(BaseModel):
    role: str = Field(min_length=1, max_length=64)
    scope: str | None = Field(default=None, max_length=1024)


class DisabledIn(BaseModel):
    disabled: bool


class PasswordIn(BaseModel):
    new_password: str = Field(min_length=1, max_length=1024)
    current_password: str | None = Field(
        default=None, max_length=1024, description="required when changing one's own password"
    )


class RoleOut(BaseModel):
    name: str
    builtin: bool
    permissions: list[str]

    @classmethod
    def of(cls, r: RoleInfo) -> RoleOut:
        return cls(
            name=r.name,
            builtin=r.tenant is None,
            permissions=sorted(p.value for p in r.permissions),
        )


class RolesOut(BaseModel):
    roles: list[RoleOut]


class RoleIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    permissions: list[str] = Field(min_length=1, max_length=32)


@router.get("/users", response_model=UsersOut)
async def list_users(request: Request, who: UserManager) -> UsersOut:
    """The users of your tenant."""
    with service_errors():
        users = await identity_of(request).list_users(who, who.tenant)
    return UsersOut(users=[UserOut.of(u) for u in users])


@router.post("/users", response_model=UserOut, status_code=201)
async def create_user(body: UserIn, request: Request, who: UserManager) -> UserOut:
    """Create a user of your tenant with roles over a scope (the whole tenant if none)."""
    with service_errors():
        user = await identity_of(request).create_user(
            who, who.tenant, body.username, body.password, body.roles, scope=body.scope
        )
    await audit(
        request, category=Category.ACCOUNT, action="user.create", target=user.username,
        detail={"roles": body.roles, "scope": body.scope},
    )  # fmt: skip
    return UserOut.of(user)


@router.post("/users/{username}/roles", status_code=204)
async def assign_role(
    username: Username, body: RoleChangeIn, request: Request, who: UserManager
) -> Response:
    """Give a user a role over a scope. Nobody changes their own roles."""
    with service_errors():
        added = await identity_of(request).assign_role(who, username, body.role, body.scope)
    await audit(
        request, category=Category.AUTHORIZATION, action="role.assign", target=username,
        detail={"role": body.role, "scope": body.scope, "changed": added},
    )  # fmt: skip
    return Response(status_code=204)


@router.delete("/users/{username}/roles", status_code=204)
async def revoke_role(
    username: Username,
    request: Request,
    who: UserManager,
    role: str,
    scope: str | None = None,
) -> Response:
    """Take a role (at exactly that scope) from a user."""
    with service_errors():
        removed = await identity_of(request).revoke_role(who, username, role, scope)
    await audit(
        request, category=Category.AUTHORIZATION, action="role.revoke", target=username,
        detail={"role": role, "scope": scope, "changed": removed},
    )  # fmt: skip
    return Response(status_code=204)


@router.put("/users/{username}/disabled", status_code=204)
async def set_disabled(
    username: Username, body: DisabledIn, request: Request, who: UserManager
) -> Response:
    """Disable a user (its sessions end, its API keys stop working) or enable it again."""
    with service_errors():
        await identity_of(request).disable_user(who, username, body.disabled)
    action = "user.disable" if body.disabled else "user.enable"
    await audit(request, category=Category.ACCOUNT, action=action, target=username)
    return Response(status_code=204)


@router.put("/users/{username}/password", status_code=204)
async def set_password(
    username: Username, body: PasswordIn, request: Request, who: Anyone
) -> Response:
    """Change your own password (give the current one) or, as an administrator, a user's.

    Every other session of that user ends.
    """
    with service_errors():
        await identity_of(request).set_password(
            who, username, body.new_password, current_password=body.current_password
        )
    await audit(request, category=Category.ACCOUNT, action="user.password", target=username)
    return Response(status_code=204)


@router.get("/roles", response_model=RolesOut)
def list_roles(request: Request, who: UserManager) -> RolesOut:
    """Built-in roles and your tenant's custom roles, with their permissions."""
    with service_errors():
        roles = identity_of(request).list_roles(who, who.tenant)
    return RolesOut(roles=[RoleOut.of(r) for r in roles])


@router.post("/roles", response_model=RoleOut, status_code=201)
async def create_role(body: RoleIn, request: Request, who: UserManager) -> RoleOut:
    """A custom role of your tenant from named permissions."""
    with service_errors():
        role = await identity_of(request).create_role(who, who.tenant, body.name, body.permissions)
    await audit(
        request, category=Category.AUTHORIZATION, action="role.create", target=role.name,
        detail={"permissions": sorted(p.value for p in role.permissions)},
    )  # fmt: skip
    return RoleOut.of(role)
