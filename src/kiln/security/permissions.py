"""Named permissions, built-in roles, and the scope check. Pure: no I/O.

Deny by default: a principal may do only what one of its role assignments grants, and an
assignment scoped to a subtree of the ISA-95 namespace grants nothing outside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from kiln.core.values import path_has_prefix


class Permission(StrEnum):
    VALUES_READ = "values:read"  # assets, tags, latest values, history, live stream
    ALARMS_ACK = "alarms:ack"
    ALARMS_SHELVE = "alarms:shelve"
    DEVICES_WRITE = "devices:write"  # write a value to a device
    CONFIG_EDIT = "config:edit"  # asset types, assets, tags, connectors
    USERS_MANAGE = "users:manage"  # users, roles, API keys, device credentials
    AUDIT_READ = "audit:read"
    SYSTEM_READ = "system:read"  # health and metrics detail
    PRODUCTION_ENTER = "production:enter"  # downtime reasons; start, pause, resume, complete
    PRODUCTION_PLAN = "production:plan"  # create, release, cancel work orders; products
    VALUECHAIN_READ = "valuechain:read"  # organisations, orders, planning, lots, genealogy
    VALUECHAIN_ENTER = "valuechain:enter"  # lot transactions, goods receipts, shipments
    VALUECHAIN_PLAN = "valuechain:plan"  # master data, orders, planning runs, recalls


P = Permission

BUILTIN_ROLES: dict[str, frozenset[Permission]] = {
    # A partner tenant's viewers read their own orders and lots with valuechain:read: what they
    # see is limited to their organisation's records, whatever the role (kiln.api's value chain).
    "viewer": frozenset({P.VALUES_READ, P.VALUECHAIN_READ}),
    "operator": frozenset(
        {
            P.VALUES_READ,
            P.ALARMS_ACK,
            P.ALARMS_SHELVE,
            P.PRODUCTION_ENTER,
            P.VALUECHAIN_READ,
            P.VALUECHAIN_ENTER,
        }
    ),
    "engineer": frozenset(
        {
            P.VALUES_READ,
            P.ALARMS_ACK,
            P.ALARMS_SHELVE,
            P.DEVICES_WRITE,
            P.CONFIG_EDIT,
            P.SYSTEM_READ,
            P.PRODUCTION_ENTER,
            P.PRODUCTION_PLAN,
            P.VALUECHAIN_READ,
            P.VALUECHAIN_ENTER,
            P.VALUECHAIN_PLAN,
        }
    ),
    # Planners dispatch work: orders, products, material planning, without acting on the
    # machines or booking stock.
    "planner": frozenset({P.VALUES_READ, P.PRODUCTION_PLAN, P.VALUECHAIN_READ, P.VALUECHAIN_PLAN}),
    # Administrators manage the platform; reading the audit trail is the auditor's, so that the
    # people audited are not the only ones able to read it (separation of duties).
    "admin": frozenset(set(Permission) - {P.AUDIT_READ}),
    "auditor": frozenset({P.AUDIT_READ, P.SYSTEM_READ}),
}


def parse_permissions(names: Iterable[str]) -> frozenset[Permission]:
    """Permissions from their names; raises ValueError listing the valid names."""
    out: set[Permission] = set()
    for name in names:
        try:
            out.add(Permission(name))
        except ValueError:
            valid = ", ".join(p.value for p in Permission)
            raise ValueError(f"unknown permission {name!r}; valid: {valid}") from None
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Grant:
    """What one role assignment gives: permissions, within a tenant, below a namespace scope.

    `scope` None means the whole tenant; otherwise a namespace path (a site, an area, a line).
    """

    tenant: str
    permissions: frozenset[Permission]
    scope: str | None = None

    def covers(self, permission: Permission, tenant: str, path: str | None) -> bool:
        if permission not in self.permissions or tenant != self.tenant:
            return False
        if self.scope is None:
            return True
        # A route without a path (a list, say) is allowed; its results are filtered by scope.
        return (
            path is None or path_has_prefix(path, self.scope) or path_has_prefix(self.scope, path)
        )


def allowed(grants: Iterable[Grant], permission: Permission, tenant: str, path: str | None) -> bool:
    """Deny by default: true only if some grant covers the permission at this place."""
    return any(g.covers(permission, tenant, path) for g in grants)


def visible(grants: Iterable[Grant], permission: Permission, tenant: str, path: str) -> bool:
    """Whether one record at `path` may be shown: it must lie inside a granted scope.

    Stricter than `allowed`: an ancestor of the scope (the site above a granted line) is
    navigable in `allowed` but its own values are not visible.
    """
    return any(
        permission in g.permissions
        and g.tenant == tenant
        and (g.scope is None or path_has_prefix(path, g.scope))
        for g in grants
    )
