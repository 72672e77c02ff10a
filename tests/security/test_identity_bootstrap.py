"""First start: exactly one administrator, its password in a private file, never in the log;
later starts leave it alone and reload everything from the database."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from identity_fixtures import (  # noqa: F401
    PASSWORD,
    admin_password,
    clock,
    db_url,
    postgres_problem,
    postgres_url,
    running,
    sign_in,
    sign_in_admin,
    sqlite_url,
    totp_code,
)

from kiln.core.clock import us_to_datetime
from kiln.security.permissions import Permission
from kiln.security.principal import AuthError
from kiln.security.service import DEFAULT_TENANT, INITIAL_ADMIN_FILE
from kiln.testing.clock import FakeClock

P = Permission


async def test_first_start_creates_one_admin_whose_password_is_in_a_private_file(
    sqlite_url: str,  # noqa: F811
    tmp_path: Path,
    clock: FakeClock,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(sqlite_url, tmp_path, clock) as identity:
        result = identity.bootstrap_result
        assert result is not None and result.username == "admin"
        assert result.path == tmp_path / INITIAL_ADMIN_FILE
        mode = stat.S_IMODE(result.path.stat().st_mode)
        assert mode == 0o600
        text = result.path.read_text()
        assert f"password: {result.password}\n" in text
        assert "change this password" in text.lower()
        assert result.password not in repr(result)

        admin = await sign_in_admin(identity)
        assert (admin.name, admin.tenant) == ("admin", DEFAULT_TENANT)
        assert admin.can(P.USERS_MANAGE)
        assert admin.can(P.CONFIG_EDIT, "any/enterprise/at/all")  # root "*"
        assert not admin.can(P.AUDIT_READ)  # separation of duties
        users = await identity.list_users(admin, DEFAULT_TENANT)
        assert [u.username for u in users] == ["admin"]
        assert [t.name for t in identity.tenants()] == [DEFAULT_TENANT]

    lines = [r.getMessage() for r in caplog.records if str(result.path) in r.getMessage()]
    assert len(lines) == 1
    assert all(result.password not in r.getMessage() for r in caplog.records)


async def test_second_start_neither_recreates_nor_overwrites(
    db_url: str,  # noqa: F811
    tmp_path: Path,
    clock: FakeClock,  # noqa: F811
) -> None:
    async with running(db_url, tmp_path, clock) as identity:
        first = identity.bootstrap_result
        assert first is not None
    written = first.path.read_text()
    async with running(db_url, tmp_path, clock) as identity:
        assert identity.bootstrap_result is None
        assert first.path.read_text() == written
        admin = await sign_in(identity, "admin", first.password)
        assert [u.username for u in await identity.list_users(admin, DEFAULT_TENANT)] == ["admin"]


async def test_configured_roots_of_the_default_tenant(
    sqlite_url: str,  # noqa: F811
    tmp_path: Path,
    clock: FakeClock,  # noqa: F811
) -> None:
    async with running(sqlite_url, tmp_path, clock, bootstrap_roots=["acme/"]) as identity:
        admin = await sign_in_admin(identity)
        assert identity.tenants()[0].roots == ("acme",)
        assert admin.can(P.VALUES_READ, "acme/plant1/line1/temp")
        assert not admin.can(P.VALUES_READ, "globex/plant1/line1/temp")
        assert identity.tenant_of("globex/plant1") is None


async def test_restart_reloads_everything(
    db_url: str,  # noqa: F811
    tmp_path: Path,
    clock: FakeClock,  # noqa: F811
) -> None:
    clock_start = clock.now_us()
    async with running(db_url, tmp_path, clock) as identity:
        admin = await sign_in_admin(identity)
        password = identity.bootstrap_result.password if identity.bootstrap_result else ""
        await identity.create_tenant(
            admin, "acme", "owner", ["acme"], admin_username="acme-admin", admin_password=PASSWORD
        )
        await identity.create_tenant(admin, "supplier", "partner")
        acme_admin = await sign_in(identity, "acme-admin")
        await identity.create_role(acme_admin, "acme", "shift-lead", ["values:read", "alarms:ack"])
        await identity.create_user(
            acme_admin, "acme", "lead", PASSWORD, ["shift-lead"], scope="acme/plant1"
        )
        await identity.share(acme_admin, "supplier", "namespace", "acme/plant1/line1")
        key_token, _ = await identity.create_api_key(
            acme_admin, "erp", ["values:read"], None, expires_in_days=30
        )
        device_token, _ = await identity.create_device(acme_admin, "acme", "press1", "acme/plant1")
        pair = await identity.login("lead", PASSWORD, source="10.0.0.2")
        lead_before = await identity.authenticate_bearer(pair.access)
        await identity.authenticate_bearer(key_token)

    await clock.advance(10)
    async with running(db_url, tmp_path, clock) as identity:
        assert [(t.name, t.kind.value, t.roots) for t in identity.tenants()] == [
            ("acme", "owner", ("acme",)),
            ("default", "owner", ("*",)),
            ("supplier", "partner", ()),
        ]
        # The last use of the key was written down when the service stopped.
        acme_admin = await sign_in(identity, "acme-admin")
        (listed,) = await identity.list_api_keys(acme_admin)
        assert listed.last_used_at == us_to_datetime(clock_start)
        # The access token of the session begun before the restart is still good.
        lead = await identity.authenticate_bearer(pair.access)
        assert lead.grants == lead_before.grants
        assert lead.can(P.ALARMS_ACK, "acme/plant1/line1/filler")
        assert not lead.can(P.ALARMS_ACK, "acme/plant2/line1/filler")
        key = await identity.authenticate_bearer(key_token)
        assert key.can(P.VALUES_READ, "acme/plant2")
        device = await identity.authenticate_device(device_token)
        assert device.may_publish("acme/plant1/press1/temp")
        assert (await identity.refresh(pair.refresh)).expires_in == 900
        await sign_in(identity, "admin", password)
        with pytest.raises(AuthError):
            await identity.login("admin", PASSWORD, source="10.0.0.3")


async def test_a_replaced_install_secret_logs_everyone_out(
    sqlite_url: str,  # noqa: F811
    tmp_path: Path,
    clock: FakeClock,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(sqlite_url, tmp_path, clock) as identity:
        admin = await sign_in_admin(identity)
        await identity.create_user(admin, DEFAULT_TENANT, "alice", PASSWORD, ["viewer"])
        alice = await sign_in(identity, "alice")
        provisioning = await identity.enable_totp(alice)
        await identity.confirm_totp(alice, totp_code(provisioning.secret, clock))
        pair = await identity.login("admin", admin_password(identity), source="10.0.0.1")
    (tmp_path / "secret.key").unlink()
    await clock.advance(30)
    async with running(sqlite_url, tmp_path, clock) as identity:
        with pytest.raises(AuthError):
            await identity.authenticate_bearer(pair.access)
        code = totp_code(provisioning.secret, clock)
        with pytest.raises(AuthError) as info:
            await identity.login("alice", PASSWORD, totp=code, source="10.0.0.1")
        assert info.value.reason == "invalid_totp"
        assert any("must reset its TOTP" in r.getMessage() for r in caplog.records)
