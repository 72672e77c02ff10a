"""Deny by default, scoped grants, tenant isolation: the pure permission model."""

from __future__ import annotations

import pytest

from kiln.security.permissions import (
    BUILTIN_ROLES,
    Grant,
    Permission,
    allowed,
    parse_permissions,
    visible,
)

P = Permission
LINE1 = "acme/plant1/packaging/line1"


def grant(role: str, tenant: str = "acme", scope: str | None = None) -> Grant:
    return Grant(tenant, BUILTIN_ROLES[role], scope)


def test_no_grant_means_no_access() -> None:
    assert not allowed([], P.VALUES_READ, "acme", LINE1 + "/filler1/weight")


@pytest.mark.parametrize(
    ("role", "permission", "expected"),
    [
        ("viewer", P.VALUES_READ, True),
        ("viewer", P.ALARMS_ACK, False),
        ("operator", P.ALARMS_ACK, True),
        ("operator", P.DEVICES_WRITE, False),
        ("operator", P.PRODUCTION_ENTER, True),
        ("operator", P.PRODUCTION_PLAN, False),
        ("planner", P.PRODUCTION_PLAN, True),
        ("planner", P.VALUES_READ, True),
        ("planner", P.PRODUCTION_ENTER, False),
        ("engineer", P.PRODUCTION_PLAN, True),
        ("engineer", P.DEVICES_WRITE, True),
        ("engineer", P.USERS_MANAGE, False),
        ("admin", P.USERS_MANAGE, True),
        ("admin", P.AUDIT_READ, False),  # separation of duties
        ("auditor", P.AUDIT_READ, True),
        ("auditor", P.VALUES_READ, False),
    ],
)
def test_builtin_roles(role: str, permission: Permission, expected: bool) -> None:
    assert allowed([grant(role)], permission, "acme", LINE1) is expected


def test_other_tenant_gets_nothing() -> None:
    assert not allowed([grant("admin", tenant="acme")], P.VALUES_READ, "globex", LINE1)


def test_scope_is_a_subtree_segment_wise() -> None:
    g = [grant("operator", scope=LINE1)]
    assert allowed(g, P.VALUES_READ, "acme", LINE1 + "/filler1/weight")
    assert not allowed(g, P.VALUES_READ, "acme", "acme/plant1/packaging/line10/filler1/weight")
    assert not allowed(g, P.VALUES_READ, "acme", "acme/plant1/machining/line1/x")
    # Ancestors are navigable (to reach the line) but their own records are not visible.
    assert allowed(g, P.VALUES_READ, "acme", "acme/plant1")
    assert not visible(g, P.VALUES_READ, "acme", "acme/plant1/site_power")
    assert visible(g, P.VALUES_READ, "acme", LINE1 + "/filler1/weight")


def test_grants_add_up() -> None:
    g = [grant("viewer"), grant("engineer", scope=LINE1)]
    assert allowed(g, P.DEVICES_WRITE, "acme", LINE1 + "/filler1/setpoint")
    assert not allowed(g, P.DEVICES_WRITE, "acme", "acme/plant1/machining/cnc1/setpoint")
    assert allowed(g, P.VALUES_READ, "acme", "acme/plant1/machining/cnc1/temp")


def test_custom_role_names_are_checked() -> None:
    assert parse_permissions(["values:read", "alarms:ack"]) == {P.VALUES_READ, P.ALARMS_ACK}
    with pytest.raises(ValueError, match="unknown permission 'values:write'; valid: values:read"):
        parse_permissions(["values:write"])
