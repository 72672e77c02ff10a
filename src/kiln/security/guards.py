"""Checks the identity service makes before it acts: who may manage whom, and valid names.

OWASP API Security Top 10 API1 (tenants see only their own records: users of other tenants
are reported as unknown), API3 (nobody changes their own roles), API5 (admin operations check
users:manage); IEC 62443-4-2 CR 2.1 (authorization enforcement).
"""

from __future__ import annotations

import re

from kiln.core.values import validate_path
from kiln.security.cache import IdentityCache
from kiln.security.grants import manages
from kiln.security.permissions import BUILTIN_ROLES, Permission
from kiln.security.principal import ANY_ROOT, PermissionDenied, Principal, PrincipalKind
from kiln.security.store import Conflict, UserInfo, username_key

TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
ROLE_NAME = TENANT_NAME
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


class AnyScope:
    """Marks "at any scope" where a scope or None (the whole tenant) is expected."""


ANY_SCOPE = AnyScope()


def require_manage(actor: Principal, tenant: str, scope: str | AnyScope | None) -> None:
    """Refuse unless `actor` holds users:manage in its own tenant `tenant`, over `scope`
    (None: the whole tenant; ANY_SCOPE: anywhere in it)."""
    if actor.kind is PrincipalKind.DEVICE or actor.tenant != tenant:
        raise PermissionDenied(f"{actor.name} may not manage tenant {tenant!r}")
    manage = Permission.USERS_MANAGE
    if isinstance(scope, AnyScope):
        ok = any(g.tenant == tenant and manage in g.permissions for g in actor.grants)
    else:
        ok = manages(actor.grants, tenant, scope)
    if not ok:
        where = "" if isinstance(scope, AnyScope) else f" over {scope or 'the whole tenant'}"
        raise PermissionDenied(f"{actor.name} lacks {manage.value} in tenant {tenant!r}{where}")


def require_manage_user(actor: Principal, target: UserInfo) -> None:
    """An administrator manages a user only if it manages every scope the user holds a role
    at: an administrator of one line cannot take over the plant's administrator."""
    require_manage(actor, target.tenant, ANY_SCOPE)
    for assignment in target.roles:
        require_manage(actor, target.tenant, assignment.scope)


def is_self(actor: Principal, user: UserInfo) -> bool:
    """Whether `actor` is `user`, signed in or through one of its API keys."""
    if actor.kind is PrincipalKind.USER:
        return actor.id == str(user.id)
    return actor.kind is PrincipalKind.APIKEY and actor.user == user.username


def acting_user(cache: IdentityCache, principal: Principal) -> UserInfo:
    """The user behind a principal signed in as a user (not an API key, not a device)."""
    user = cache.users.get(user_id(principal.id))
    if principal.kind is not PrincipalKind.USER or user is None or user.disabled:
        raise PermissionDenied("only a signed-in user may do this")
    return user


def user_in(cache: IdentityCache, tenant: str, username: str) -> UserInfo:
    """A user of `tenant`. Users of other tenants are reported as unknown, not forbidden:
    an administrator must not learn which names exist elsewhere."""
    user = cache.users.get(cache.user_ids.get(username_key(username), -1))
    if user is None or user.tenant != tenant:
        raise LookupError(f"no user {username!r} in tenant {tenant!r}")
    return user


def role_in(cache: IdentityCache, tenant: str, role: str) -> str:
    """`role` if it is built in or a custom role of `tenant`; ValueError listing the known."""
    if role in BUILTIN_ROLES or (tenant, role) in cache.roles:
        return role
    known = sorted(set(BUILTIN_ROLES) | {n for t, n in cache.roles if t == tenant})
    raise ValueError(f"unknown role {role!r}; roles of tenant {tenant!r}: {', '.join(known)}")


def scope_in(cache: IdentityCache, tenant: str, scope: str) -> str:
    """`scope` as a valid namespace prefix inside `tenant`'s namespace."""
    normalized = namespace_prefix(scope, "scope")
    owner = cache.namespace.tenant_of(normalized)
    if owner != tenant:
        raise ValueError(f"{normalized!r} is not in the namespace of tenant {tenant!r}")
    return normalized


def check_new_username(cache: IdentityCache, username: str) -> None:
    """Refuse an invalid user name (ValueError) or one taken in any case, in any tenant."""
    if not _USERNAME.fullmatch(username):
        raise ValueError(
            f"user name {username!r} is invalid: 1-64 letters, digits, '_', '.', '@' and '-'"
        )
    if username_key(username) in cache.user_ids:
        raise Conflict(f"user {username!r} already exists")


def namespace_prefix(value: str, what: str) -> str:
    """A namespace prefix: a path that may have a single segment (a root such as "acme")."""
    stripped = value.strip().strip("/")
    try:
        # A prefix is a path without its last segment; check it as one with a placeholder.
        validate_path(f"{stripped}/x")
    except ValueError as err:
        raise ValueError(f"{what} {value!r} is not a namespace path: {err}") from None
    return stripped


def namespace_root(value: str) -> str:
    """A tenant's namespace root: a prefix, or "*" (what no other tenant's root covers)."""
    return ANY_ROOT if value.strip() == ANY_ROOT else namespace_prefix(value, "namespace root")


def user_id(value: str) -> int:
    """A principal's or a token's user id; -1, which no user has, if it is not a number."""
    try:
        return int(value)
    except ValueError:
        return -1
