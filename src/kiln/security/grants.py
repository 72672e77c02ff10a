"""What a user or an API key may do: role assignments and shares turned into grants.

Pure functions over `Grant`s: the identity cache computes each user's grants when it is
rebuilt, an API key's are computed from its owner's at each authentication, and the identity
service's checks (IEC 62443-4-2 CR 2.1) call `holds` and `manages`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kiln.core.values import path_has_prefix
from kiln.security.permissions import BUILTIN_ROLES, Grant, Permission
from kiln.security.store import ApiKeyInfo, ShareInfo, UserInfo


def user_grants(
    user: UserInfo,
    roles: dict[tuple[str, str], frozenset[Permission]],
    shares: Sequence[ShareInfo],
) -> tuple[Grant, ...]:
    """The user's role assignments as grants, plus the subtrees shared with its tenant for the
    permissions it holds there (a partner's viewer reads what is shared; its admin need not)."""
    own: list[Grant] = []
    for assignment in user.roles:
        perms = BUILTIN_ROLES.get(assignment.role) or roles.get((user.tenant, assignment.role))
        if perms:
            own.append(Grant(user.tenant, perms, assignment.scope))
    held = {p for g in own for p in g.permissions}
    shared = [
        Grant(s.owner, frozenset({s.permission}), s.resource_id)
        for s in shares
        if s.kind == "namespace" and s.permission in held
    ]
    return tuple(own + shared)


def key_grants(key: ApiKeyInfo, owner: tuple[Grant, ...]) -> tuple[Grant, ...]:
    """What a key may do now: its permissions that its owner still holds at its scope, so that
    taking a role from a user shrinks the user's keys at once."""
    perms = frozenset(p for p in key.permissions if holds(owner, key.tenant, p, key.scope))
    if not perms:
        return ()
    grants = [Grant(key.tenant, perms, key.scope)]
    if key.scope is None:  # a partner's integration reads what is shared with its tenant
        grants += [
            Grant(g.tenant, g.permissions & perms, g.scope)
            for g in owner
            if g.tenant != key.tenant and g.permissions & perms
        ]
    return tuple(grants)


def holds(grants: Iterable[Grant], tenant: str, permission: Permission, scope: str | None) -> bool:
    """Whether `grants` give `permission` everywhere in `scope` (None: the whole tenant)."""
    return any(
        g.tenant == tenant
        and permission in g.permissions
        and (g.scope is None or (scope is not None and path_has_prefix(scope, g.scope)))
        for g in grants
    )


def manages(grants: Iterable[Grant], tenant: str, scope: str | None) -> bool:
    """Whether `grants` give users:manage everywhere in `scope` (None: the whole tenant)."""
    return holds(grants, tenant, Permission.USERS_MANAGE, scope)
