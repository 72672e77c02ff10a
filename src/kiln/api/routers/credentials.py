"""API keys for integrations and credentials for devices; each secret is shown once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from kiln.api.audit_trail import audit
from kiln.api.auth import Anyone, UserManager, identity_of
from kiln.api.errors import service_errors
from kiln.security.audit import Category
from kiln.security.store import ApiKeyInfo, DeviceInfo

router = APIRouter(tags=["credentials"])


class ApiKeyOut(BaseModel):
    id: str
    name: str
    owner: str
    permissions: list[str]
    scope: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, k: ApiKeyInfo) -> ApiKeyOut:
        return cls(
            id=k.id,
            name=k.name,
            owner=k.owner,
            permissions=sorted(p.value for p in k.permissions),
            scope=k.scope,
            created_at=k.created_at,
            expires_at=k.expires_at,
            revoked_at=k.revoked_at,
            last_used_at=k.last_used_at,
        )


class ApiKeysOut(BaseModel):
    keys: list[ApiKeyOut]


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    permissions: list[str] = Field(min_length=1, max_length=32)
    scope: str | None = Field(default=None, max_length=1024)
    expires_in_days: int = Field(default=90, ge=1, le=3650)


class NewApiKeyOut(BaseModel):
    token: str = Field(description="shown this once; Kiln keeps only its hash")
    key: ApiKeyOut


class DeviceOut(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, d: DeviceInfo) -> DeviceOut:
        return cls(
            id=d.id, name=d.name, prefix=d.prefix, created_at=d.created_at, revoked_at=d.revoked_at
        )


class DevicesOut(BaseModel):
    devices: list[DeviceOut]


class DeviceIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    prefix: str = Field(min_length=1, max_length=1024, description="namespace it may publish to")


class NewDeviceOut(BaseModel):
    token: str = Field(description="shown this once; Kiln keeps only its hash")
    device: DeviceOut


@router.get("/keys", response_model=ApiKeysOut)
async def list_keys(
    request: Request,
    who: Anyone,
    username: Annotated[str | None, Query(max_length=64, description="another user's")] = None,
) -> ApiKeysOut:
    """Your API keys (or, as an administrator, a user's), revoked and expired ones included."""
    with service_errors():
        keys = await identity_of(request).list_api_keys(who, username=username)
    return ApiKeysOut(keys=[ApiKeyOut.of(k) for k in keys])


@router.post("/keys", response_model=NewApiKeyOut, status_code=201)
async def create_key(body: ApiKeyIn, request: Request, who: Anyone) -> NewApiKeyOut:
    """An API key acting for you with some of your permissions, expiring."""
    with service_errors():
        token, info = await identity_of(request).create_api_key(
            who, body.name, body.permissions, body.scope, body.expires_in_days
        )
    await audit(
        request, category=Category.ACCOUNT, action="apikey.create", target=info.id,
        detail={"name": info.name, "permissions": sorted(body.permissions), "scope": info.scope},
    )  # fmt: skip
    return NewApiKeyOut(token=token, key=ApiKeyOut.of(info))


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(
    key_id: Annotated[str, Path(max_length=64)], request: Request, who: Anyone
) -> Response:
    """Revoke an API key; it is refused from the next request on."""
    with service_errors():
        await identity_of(request).revoke_api_key(who, key_id)
    await audit(request, category=Category.ACCOUNT, action="apikey.revoke", target=key_id)
    return Response(status_code=204)


@router.get("/devices", response_model=DevicesOut)
async def list_devices(request: Request, who: UserManager) -> DevicesOut:
    """Device credentials of your tenant, revoked ones included."""
    with service_errors():
        devices = await identity_of(request).list_devices(who, who.tenant)
    return DevicesOut(devices=[DeviceOut.of(d) for d in devices])


@router.post("/devices", response_model=NewDeviceOut, status_code=201)
async def create_device(body: DeviceIn, request: Request, who: UserManager) -> NewDeviceOut:
    """A credential for a device or edge gateway that may publish only below `prefix`."""
    with service_errors():
        token, info = await identity_of(request).create_device(
            who, who.tenant, body.name, body.prefix
        )
    await audit(
        request, category=Category.ACCOUNT, action="device.create", target=info.name,
        detail={"prefix": info.prefix},
    )  # fmt: skip
    return NewDeviceOut(token=token, device=DeviceOut.of(info))


@router.delete("/devices/{name}", status_code=204)
async def revoke_device(
    name: Annotated[str, Path(max_length=64)], request: Request, who: UserManager
) -> Response:
    """Revoke a device credential; its next request is refused."""
    with service_errors():
        await identity_of(request).revoke_device(who, who.tenant, name)
    await audit(request, category=Category.ACCOUNT, action="device.revoke", target=name)
    return Response(status_code=204)
