"""Authorization through the identity service: tenants, roles and scopes, API keys, devices,
shares, and the operations nobody may do to themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from identity_fixtures import (  # noqa: F401
    PASSWORD,
    admin_password,
    clock,
    running,
    sign_in,
    sign_in_admin,
    sqlite_url,
)

from kiln.security.permissions import Permission
from kiln.security.principal import AuthError, PermissionDenied, Principal, PrincipalKind
from kiln.security.service import Identity
from kiln.security.store import Conflict
from kiln.testing.clock import FakeClock

P = Permission
LINE1 = "acme/plant1/packaging/line1"


@dataclass
class World:
    """Two owner tenants and a partner, each with an administrator."""

    identity: Identity
    root: Principal  # administrator of the default tenant ("*")
    acme: Principal  # administrator of acme (root "acme")
    globex: Principal  # administrator of globex (root "globex")
    supplier: Principal  # administrator of the partner


@pytest.fixture
async def world(
    sqlite_url: str,  # noqa: F811
    tmp_path: Path,
    clock: FakeClock,  # noqa: F811
) -> AsyncIterator[World]:
    async with running(sqlite_url, tmp_path, clock) as identity:
        root = await sign_in_admin(identity)
        for name, kind, roots in (
            ("acme", "owner", ["acme"]),
            ("globex", "owner", ["globex"]),
            ("supplier", "partner", []),
        ):
            await identity.create_tenant(
                root, name, kind, roots, admin_username=f"{name}-admin", admin_password=PASSWORD
            )
        yield World(
            identity,
            root,
            await sign_in(identity, "acme-admin"),
            await sign_in(identity, "globex-admin"),
            await sign_in(identity, "supplier-admin"),
        )


# -- tenants ------------------------------------------------------------------------------


async def test_tenants_are_isolated(world: World) -> None:
    identity = world.identity
    with pytest.raises(PermissionDenied):
        await identity.create_user(world.acme, "globex", "mole", PASSWORD, ["admin"])
    await identity.create_user(world.globex, "globex", "gina", PASSWORD, ["viewer"])
    acme_users = [u.username for u in await identity.list_users(world.acme, "acme")]
    assert acme_users == ["acme-admin"]
    with pytest.raises(PermissionDenied):
        await identity.list_users(world.acme, "globex")
    # Users of another tenant are unknown, not forbidden: no probing for names.
    with pytest.raises(LookupError):
        await identity.set_password(world.acme, "gina", "a new passphrase for gina")
    with pytest.raises(LookupError):
        await identity.assign_role(world.acme, "gina", "viewer")

    assert world.acme.can(P.CONFIG_EDIT, "acme/plant1")
    assert not world.acme.can(P.VALUES_READ, "globex/plant1")
    assert not world.globex.can(P.VALUES_READ, "acme/plant1")
    # The default tenant's "*" yields to the roots of the other tenants (a principal is made
    # per request: this one is newer than the tenants).
    root = await sign_in(identity, "admin", admin_password(identity))
    assert root.can(P.VALUES_READ, "initech/plant1")
    assert not root.can(P.VALUES_READ, "acme/plant1")
    assert identity.tenant_of("acme/plant1/x") == "acme"
    assert identity.tenant_of("acmex/plant1") == "default"  # segment-wise, not by characters


async def test_only_the_default_tenant_creates_tenants_and_roots_do_not_overlap(
    world: World,
) -> None:
    identity = world.identity
    with pytest.raises(PermissionDenied):
        await identity.create_tenant(world.acme, "acme2", "owner", ["acme2"])
    with pytest.raises(ValueError, match="overlaps"):
        await identity.create_tenant(world.root, "thief", "owner", ["acme/plant1"])
    with pytest.raises(ValueError, match="overlaps"):
        await identity.create_tenant(world.root, "grabber", "owner", ["*"])
    with pytest.raises(ValueError, match="partner"):
        await identity.create_tenant(world.root, "p2", "partner", ["p2"])
    with pytest.raises(Conflict):
        await identity.create_tenant(world.root, "acme", "owner", [])
    with pytest.raises(ValueError, match="invalid"):
        await identity.create_tenant(world.root, "Bad Name", "owner", [])
    assert [t.name for t in identity.tenants()] == ["acme", "default", "globex", "supplier"]


# -- roles and scopes ---------------------------------------------------------------------


async def test_a_scoped_role_grants_within_its_scope_only(world: World) -> None:
    identity = world.identity
    await identity.create_user(world.acme, "acme", "olga", PASSWORD, ["operator"], scope=LINE1)
    olga = await sign_in(identity, "olga")
    assert {(g.tenant, g.scope) for g in olga.grants} == {("acme", LINE1)}
    assert olga.can(P.ALARMS_ACK, LINE1 + "/filler")
    assert not olga.can(P.ALARMS_ACK, "acme/plant1/packaging/line10/filler")
    assert olga.can(P.VALUES_READ, "acme/plant1")  # navigable ancestor
    assert not olga.sees(P.VALUES_READ, "acme/plant1/site_temp")

    assert await identity.assign_role(world.acme, "olga", "viewer", "acme/plant2")
    assert not await identity.assign_role(world.acme, "olga", "viewer", "acme/plant2")
    olga = await sign_in(identity, "olga")
    assert olga.sees(P.VALUES_READ, "acme/plant2/x/temp")
    assert not olga.can(P.ALARMS_ACK, "acme/plant2/x")
    assert await identity.revoke_role(world.acme, "olga", "viewer", "acme/plant2")
    assert not await identity.revoke_role(world.acme, "olga", "viewer", "acme/plant2")
    assert not (await sign_in(identity, "olga")).sees(P.VALUES_READ, "acme/plant2/x/temp")


async def test_a_scope_must_lie_in_the_tenant_namespace(world: World) -> None:
    with pytest.raises(ValueError, match="not in the namespace of tenant 'acme'"):
        await world.identity.create_user(
            world.acme, "acme", "x", PASSWORD, ["viewer"], scope="globex/plant1"
        )
    with pytest.raises(ValueError, match="not a namespace path"):
        await world.identity.create_user(
            world.acme, "acme", "x", PASSWORD, ["viewer"], scope="acme/+/line1"
        )


async def test_custom_roles_from_named_permissions(world: World) -> None:
    identity = world.identity
    with pytest.raises(
        ValueError, match=r"unknown permission 'alarms:silence'.*valid: values:read"
    ):
        await identity.create_role(world.acme, "acme", "silencer", ["alarms:silence"])
    with pytest.raises(Conflict, match="built-in"):
        await identity.create_role(world.acme, "acme", "admin", ["values:read"])
    role = await identity.create_role(world.acme, "acme", "acker", ["values:read", "alarms:ack"])
    assert role.permissions == {P.VALUES_READ, P.ALARMS_ACK}
    assert "acker" in [r.name for r in identity.list_roles(world.acme, "acme")]
    assert "acker" not in [r.name for r in identity.list_roles(world.globex, "globex")]
    with pytest.raises(ValueError, match="unknown role 'acker'"):  # acme's role, not globex's
        await identity.create_user(world.globex, "globex", "g", PASSWORD, ["acker"])
    await identity.create_user(world.acme, "acme", "ann", PASSWORD, ["acker"])
    ann = await sign_in(identity, "ann")
    assert ann.can(P.ALARMS_ACK, LINE1)
    assert not ann.can(P.ALARMS_SHELVE, LINE1)


async def test_nobody_changes_their_own_roles(world: World) -> None:
    identity = world.identity
    with pytest.raises(PermissionDenied, match="own roles"):
        await identity.assign_role(world.acme, "acme-admin", "auditor")
    with pytest.raises(PermissionDenied, match="own roles"):
        await identity.revoke_role(world.acme, "acme-admin", "admin")
    # Nor through one of their API keys.
    token, _ = await identity.create_api_key(world.acme, "ops", ["users:manage"], None, 30)
    key = await identity.authenticate_bearer(token)
    with pytest.raises(PermissionDenied, match="own roles"):
        await identity.assign_role(key, "acme-admin", "auditor")


async def test_a_scoped_administrator_stays_in_its_scope(world: World) -> None:
    identity = world.identity
    await identity.create_user(world.acme, "acme", "lineadm", PASSWORD, ["admin"], scope=LINE1)
    await identity.create_user(world.acme, "acme", "viewer1", PASSWORD, ["viewer"])
    lineadm = await sign_in(identity, "lineadm")
    await identity.create_user(lineadm, "acme", "op1", PASSWORD, ["operator"], scope=LINE1)
    with pytest.raises(PermissionDenied, match="over the whole tenant"):
        await identity.create_user(lineadm, "acme", "op2", PASSWORD, ["operator"])
    with pytest.raises(PermissionDenied):
        await identity.assign_role(lineadm, "op1", "admin", "acme/plant1")
    # Managing a user means managing every scope it holds a role at.
    with pytest.raises(PermissionDenied):
        await identity.set_password(lineadm, "acme-admin", "taken over at last!")
    with pytest.raises(PermissionDenied):
        await identity.disable_user(lineadm, "viewer1")
    await identity.disable_user(lineadm, "op1")
    with pytest.raises(PermissionDenied):
        await identity.create_role(lineadm, "acme", "r", ["values:read"])


async def test_non_administrators_manage_nothing(world: World) -> None:
    identity = world.identity
    await identity.create_user(world.acme, "acme", "eve", PASSWORD, ["engineer"])
    eve = await sign_in(identity, "eve")
    with pytest.raises(PermissionDenied, match="lacks users:manage"):
        await identity.create_user(eve, "acme", "eve2", PASSWORD, ["admin"])
    with pytest.raises(PermissionDenied):
        await identity.list_users(eve, "acme")
    with pytest.raises(PermissionDenied):
        await identity.create_device(eve, "acme", "d", "acme/plant1")


# -- API keys -----------------------------------------------------------------------------


async def test_an_api_key_cannot_exceed_its_owner(world: World) -> None:
    identity = world.identity
    await identity.create_user(world.acme, "acme", "olga", PASSWORD, ["operator"], scope=LINE1)
    olga = await sign_in(identity, "olga")
    with pytest.raises(PermissionDenied, match="config:edit"):
        await identity.create_api_key(olga, "k", ["values:read", "config:edit"], LINE1, 30)
    with pytest.raises(PermissionDenied, match="the whole tenant"):
        await identity.create_api_key(olga, "k", ["values:read"], None, 30)
    with pytest.raises(ValueError, match="365"):
        await identity.create_api_key(olga, "k", ["values:read"], LINE1, 366)
    token, info = await identity.create_api_key(
        olga, "dashboard", ["values:read"], LINE1 + "/filler", 30
    )
    assert token.startswith("kiln_key_") and token not in repr(info)
    assert (info.owner, info.tenant, info.scope) == ("olga", "acme", LINE1 + "/filler")
    key = await identity.authenticate_bearer(token)
    assert (key.kind, key.name, key.user, key.token_id) == (
        PrincipalKind.APIKEY,
        "dashboard",
        "olga",
        info.id,
    )
    assert key.sees(P.VALUES_READ, LINE1 + "/filler/weight")
    assert not key.sees(P.VALUES_READ, LINE1 + "/capper/torque")
    assert not key.can(P.ALARMS_ACK, LINE1 + "/filler")
    with pytest.raises(PermissionDenied):  # keys do not mint keys
        await identity.create_api_key(key, "child", ["values:read"], LINE1, 30)

    # Taking the role from the owner shrinks the key at once.
    await identity.revoke_role(world.acme, "olga", "operator", LINE1)
    key = await identity.authenticate_bearer(token)
    assert not key.sees(P.VALUES_READ, LINE1 + "/filler/weight")


async def test_expired_and_revoked_api_keys_are_refused(
    world: World,
    clock: FakeClock,  # noqa: F811
) -> None:
    identity = world.identity
    short, _ = await identity.create_api_key(world.acme, "short", ["values:read"], None, 1)
    await clock.advance(86_399)
    await identity.authenticate_bearer(short)
    await clock.advance(1)
    with pytest.raises(AuthError):
        await identity.authenticate_bearer(short)

    token, info = await identity.create_api_key(world.acme, "long", ["values:read"], None, 90)
    await identity.authenticate_bearer(token)
    with pytest.raises(LookupError):  # another tenant's administrator cannot see it
        await identity.revoke_api_key(world.globex, info.id)
    await identity.revoke_api_key(world.acme, info.id)
    with pytest.raises(AuthError):
        await identity.authenticate_bearer(token)
    listed = {k.name: k for k in await identity.list_api_keys(world.acme)}
    assert listed["long"].revoked_at is not None
    assert listed["short"].last_used_at is not None
    assert set(listed) == {"short", "long"}


async def test_a_disabled_owner_disables_its_keys(world: World) -> None:
    identity = world.identity
    await identity.create_user(world.acme, "acme", "bot-owner", PASSWORD, ["viewer"])
    owner = await sign_in(identity, "bot-owner")
    token, _ = await identity.create_api_key(owner, "bot", ["values:read"], None, 30)
    await identity.disable_user(world.acme, "bot-owner")
    with pytest.raises(AuthError):
        await identity.authenticate_bearer(token)


# -- devices ------------------------------------------------------------------------------


async def test_a_device_publishes_only_below_its_prefix(world: World) -> None:
    identity = world.identity
    token, info = await identity.create_device(world.acme, "acme", "press1", LINE1 + "/press1")
    assert token.startswith("kiln_dev_") and token not in repr(info)
    device = await identity.authenticate_device(token)
    assert (device.kind, device.name, device.tenant) == (PrincipalKind.DEVICE, "press1", "acme")
    assert device.may_publish(LINE1 + "/press1/temperature")
    assert not device.may_publish(LINE1 + "/press10/temperature")  # segment-wise
    assert not device.may_publish(LINE1 + "/temperature")
    assert not device.can(P.VALUES_READ, LINE1 + "/press1/temperature")
    # Users never publish through may_publish, not even administrators.
    assert not world.acme.may_publish(LINE1 + "/press1/temperature")
    with pytest.raises(AuthError):  # a device credential is not a bearer token
        await identity.authenticate_bearer(token)
    with pytest.raises(ValueError, match="not in the namespace"):
        await identity.create_device(world.acme, "acme", "spy", "globex/plant1")
    with pytest.raises(PermissionDenied):
        await identity.create_device(world.acme, "globex", "spy", "globex/plant1")


async def test_a_revoked_device_is_refused_on_the_very_next_check(world: World) -> None:
    identity = world.identity
    token, _ = await identity.create_device(world.acme, "acme", "press1", LINE1 + "/press1")
    await identity.authenticate_device(token)
    with pytest.raises(Conflict):
        await identity.create_device(world.acme, "acme", "press1", LINE1 + "/press1")
    with pytest.raises(LookupError):
        await identity.revoke_device(world.globex, "acme", "press1")
    await identity.revoke_device(world.acme, "acme", "press1")
    with pytest.raises(AuthError):
        await identity.authenticate_device(token)
    # The name can be issued again, with a new token; the old one stays dead.
    new_token, _ = await identity.create_device(world.acme, "acme", "press1", LINE1 + "/press1")
    await identity.authenticate_device(new_token)
    with pytest.raises(AuthError):
        await identity.authenticate_device(token)
    devices = await identity.list_devices(world.acme, "acme")
    assert [(d.name, d.revoked_at) for d in devices] == [("press1", None)]
    assert await identity.list_devices(world.globex, "globex") == []


# -- sharing with partners ----------------------------------------------------------------


async def test_a_partner_reads_only_what_is_shared_with_it(world: World) -> None:
    identity = world.identity
    await identity.create_user(world.supplier, "supplier", "sam", PASSWORD, ["viewer"])
    sam = await sign_in(identity, "sam")
    assert not sam.sees(P.VALUES_READ, LINE1 + "/filler/weight")

    with pytest.raises(LookupError):  # only partner tenants receive shares
        await identity.share(world.acme, "globex", "namespace", LINE1)
    with pytest.raises(ValueError, match="read-only"):
        await identity.share(world.acme, "supplier", "namespace", LINE1, "config:edit")
    with pytest.raises(ValueError, match="not in the namespace"):
        await identity.share(world.acme, "supplier", "namespace", "globex/plant1")
    await identity.share(world.acme, "supplier", "namespace", LINE1)

    sam = await sign_in(identity, "sam")
    assert sam.sees(P.VALUES_READ, LINE1 + "/filler/weight")
    assert not sam.sees(P.VALUES_READ, "acme/plant1/packaging/line2/filler/weight")
    assert not sam.can(P.ALARMS_ACK, LINE1 + "/filler")
    assert not sam.sees(P.VALUES_READ, "globex/plant1/x")
    # A partner's user without values:read in its own tenant gets nothing from the share.
    await identity.create_user(world.supplier, "supplier", "aud", PASSWORD, ["auditor"])
    aud = await sign_in(identity, "aud")
    assert not aud.sees(P.VALUES_READ, LINE1 + "/filler/weight")


async def test_shares_are_listed_to_both_sides_and_can_be_withdrawn(world: World) -> None:
    identity = world.identity
    await identity.create_user(world.supplier, "supplier", "sam", PASSWORD, ["viewer"])
    await identity.share(world.acme, "supplier", "namespace", LINE1)
    session = await identity.login("sam", PASSWORD, source="10.0.0.1")
    sam = await identity.authenticate_bearer(session.access)
    assert sam.sees(P.VALUES_READ, LINE1 + "/filler/weight")
    listed = [(s.owner, s.partner, s.resource_id) for s in identity.shares(world.acme)]
    assert listed == [("acme", "supplier", LINE1)]
    assert identity.shares(world.supplier) == identity.shares(world.acme)
    assert identity.shares(world.globex) == [], "a third tenant sees nobody's shares"

    with pytest.raises(ValueError, match="not in the namespace"):
        await identity.unshare(world.globex, "supplier", "namespace", LINE1)
    await identity.unshare(world.acme, "supplier", "namespace", LINE1)
    assert identity.shares(world.acme) == []
    # The session signed in before is not re-issued: its very next request lacks the share.
    sam = await identity.authenticate_bearer(session.access)
    assert not sam.sees(P.VALUES_READ, LINE1 + "/filler/weight"), "the share is gone"
    with pytest.raises(LookupError, match="no share"):
        await identity.unshare(world.acme, "supplier", "namespace", LINE1)
