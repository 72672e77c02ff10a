"""Who is acting: the authenticated `Principal`, the map of who owns which part of the
namespace, and the errors of authentication and authorization.

A Principal is built by `kiln.security.service.Identity` for each request from its caches; it
is immutable and carries everything an authorization decision needs, so routers check
`principal.can(...)` without going back to the service.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from kiln.core.errors import KilnError
from kiln.core.values import path_has_prefix
from kiln.security.permissions import Grant, Permission, allowed, visible

# The root of the tenant that owns every path no other tenant's root covers.
ANY_ROOT = "*"


class PrincipalKind(StrEnum):
    USER = "user"
    APIKEY = "apikey"
    DEVICE = "device"


class AuthError(KilnError):
    """Authentication failed. `reason` is for logs and metrics; clients get `str(err)`, which
    never says whether a user name exists.

    Reasons: "invalid_credentials", "rate_limited" (with `retry_after_s`), "totp_required",
    "invalid_totp", "invalid_token".
    """

    def __init__(self, reason: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_s = retry_after_s


class PermissionDenied(KilnError):
    """The principal is authenticated but may not do this. The message says which permission
    in which tenant it lacks."""


@dataclass(frozen=True, slots=True)
class TenantMap:
    """Which tenant owns which part of the namespace: a path belongs to the tenant with the
    longest root it lies under (segment-wise), else to the tenant holding "*", else to none."""

    roots: tuple[tuple[str, str], ...] = ()  # (root, tenant), most specific first

    @classmethod
    def build(cls, roots: Iterable[tuple[str, str]]) -> TenantMap:
        ordered = sorted(
            roots,
            # "*" last; otherwise deeper roots first, so the longest match is the first match.
            key=lambda rt: (rt[0] == ANY_ROOT, -rt[0].count("/"), rt[0]),
        )
        return cls(tuple(ordered))

    def tenant_of(self, path: str) -> str | None:
        for root, tenant in self.roots:
            if root == ANY_ROOT or path_has_prefix(path, root):
                return tenant
        return None

    def roots_of(self, tenant: str) -> tuple[str, ...]:
        return tuple(root for root, owner in self.roots if owner == tenant)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated actor: a user (by an access token), an API key, or a device.

    `token_id` names the credential that authenticated it: the login session (refresh token
    family) for a user, the key id for an API key, the credential id for a device. `user` is
    the accountable person: the user, or the owner of the API key; None for a device.

    Grants of the principal's own tenant carry its role assignments; grants of another tenant
    come from records that tenant shared with this one. Which tenant a path belongs to is
    decided by `namespace`, so a grant never reaches into another tenant's namespace.
    """

    kind: PrincipalKind
    id: str
    name: str
    tenant: str
    grants: tuple[Grant, ...] = ()
    device_prefix: str | None = None
    token_id: str | None = None
    user: str | None = None
    namespace: TenantMap = field(default=TenantMap(), repr=False, compare=False)

    def can(self, permission: Permission, path: str | None = None) -> bool:
        """Whether the principal may do `permission` at `path` (or in its own tenant, if None).

        A scope's ancestors are navigable (see `permissions.allowed`); filter the records of a
        listing with `sees`.
        """
        tenant = self.tenant if path is None else self.namespace.tenant_of(path)
        return tenant is not None and allowed(self.grants, permission, tenant, path)

    def sees(self, permission: Permission, path: str) -> bool:
        """Whether one record at `path` may be shown: it lies inside a granted scope."""
        tenant = self.namespace.tenant_of(path)
        return tenant is not None and visible(self.grants, permission, tenant, path)

    def may_publish(self, path: str) -> bool:
        """Whether a device may publish a value for `path`: at or below its prefix, segment-wise
        (a device of `line1/press1` may not publish under `line1/press10`). Only devices publish
        with this check; users and API keys write through `can(DEVICES_WRITE, path)`."""
        if self.kind is not PrincipalKind.DEVICE or self.device_prefix is None:
            return False
        # The tenant check matters if a root moved to another tenant after the device's
        # credential was made: the namespace now belongs to someone else.
        return path_has_prefix(path, self.device_prefix) and (
            self.namespace.tenant_of(path) == self.tenant
        )
