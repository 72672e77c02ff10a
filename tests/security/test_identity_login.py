"""Logins, lockout, TOTP, access tokens, refresh rotation, logout; secrets kept out of logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from identity_fixtures import (  # noqa: F401
    PASSWORD,
    clock,
    running,
    sign_in,
    sign_in_admin,
    sqlite_url,
    totp_code,
    wrong_totp_code,
)

from kiln.security.principal import AuthError, PermissionDenied, Principal, PrincipalKind
from kiln.security.service import DEFAULT_TENANT, Identity, mark_changed
from kiln.security.tokens import issue_access_token
from kiln.testing.clock import FakeClock

SOURCE = "192.0.2.7"


@pytest.fixture
async def identity(
    sqlite_url: str,  # noqa: F811
    tmp_path: Path,
    clock: FakeClock,  # noqa: F811
) -> AsyncIterator[Identity]:
    async with running(sqlite_url, tmp_path, clock, max_login_failures=3) as service:
        yield service


@pytest.fixture
async def admin(identity: Identity) -> Principal:
    return await sign_in_admin(identity)


@pytest.fixture
async def alice(identity: Identity, admin: Principal) -> Principal:
    await identity.create_user(admin, DEFAULT_TENANT, "alice", PASSWORD, ["operator"])
    return await sign_in(identity, "alice")


async def _refused(identity: Identity, username: str, password: str, **kw: object) -> AuthError:
    with pytest.raises(AuthError) as info:
        await identity.login(username, password, source=SOURCE, **kw)  # type: ignore[arg-type]
    return info.value


async def test_login_gives_tokens_for_a_principal(identity: Identity, alice: Principal) -> None:
    pair = await identity.login("ALICE", PASSWORD, source=SOURCE)  # names ignore case
    assert pair.expires_in == 900 and pair.token_type == "Bearer"
    assert pair.refresh.startswith("kiln_rt_")
    assert PASSWORD not in repr(pair) and pair.access not in repr(pair)
    principal = await identity.authenticate_bearer(pair.access)
    assert (principal.kind, principal.name, principal.tenant) == (
        PrincipalKind.USER,
        "alice",
        DEFAULT_TENANT,
    )
    assert principal.user == "alice" and principal.token_id is not None


async def test_wrong_password_unknown_user_and_disabled_user_look_the_same(
    identity: Identity, admin: Principal, alice: Principal
) -> None:
    wrong = await _refused(identity, "alice", PASSWORD + "x")
    unknown = await _refused(identity, "nobody", PASSWORD)
    await identity.disable_user(admin, "alice")
    disabled = await _refused(identity, "alice", PASSWORD)
    assert str(wrong) == str(unknown) == str(disabled) == "invalid username or password"
    assert wrong.reason == unknown.reason == disabled.reason == "invalid_credentials"


async def test_an_unknown_user_costs_a_password_verification(
    identity: Identity, alice: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The timing of "no such user" must match "wrong password": both hash once.
    hashing = identity._hashing
    calls: list[str] = []
    real_verify, real_dummy = hashing.verify_password, hashing.dummy_verify

    def verify(password_hash: str, password: str) -> bool:
        calls.append("verify")
        return real_verify(password_hash, password)

    def dummy(password: str) -> None:
        calls.append("dummy")
        real_dummy(password)

    monkeypatch.setattr(hashing, "verify_password", verify)
    monkeypatch.setattr(hashing, "dummy_verify", dummy)
    await _refused(identity, "nobody", PASSWORD)
    assert calls == ["dummy", "verify"]  # the dummy verifies against a hash of its own
    calls.clear()
    await _refused(identity, "alice", PASSWORD + "x")
    assert calls == ["verify"]


async def test_repeated_failures_slow_the_account_with_a_doubling_wait(
    identity: Identity,
    alice: Principal,
    clock: FakeClock,  # noqa: F811
) -> None:
    for _ in range(3):
        assert (await _refused(identity, "alice", "wrong password!")).reason == (
            "invalid_credentials"
        )
    held = await _refused(identity, "alice", PASSWORD)  # even the right password waits
    assert held.reason == "rate_limited"
    assert held.retry_after_s == pytest.approx(1)
    await clock.advance(1)
    assert (await _refused(identity, "alice", "wrong password!")).reason == "invalid_credentials"
    held = await _refused(identity, "alice", PASSWORD)
    assert held.retry_after_s == pytest.approx(2)
    await clock.advance(1.5)
    assert (await _refused(identity, "alice", PASSWORD)).reason == "rate_limited"
    await clock.advance(0.5)
    await identity.login("alice", PASSWORD, source=SOURCE)
    # The success forgot the failures: three more before the next wait.
    for _ in range(3):
        await _refused(identity, "alice", "wrong password!")
    assert (await _refused(identity, "alice", PASSWORD)).reason == "rate_limited"


async def test_failures_elsewhere_do_not_keep_the_owner_out_of_a_known_address(
    identity: Identity,
    alice: Principal,
    clock: FakeClock,  # noqa: F811
) -> None:
    # `alice` signed in from 10.0.0.1; a stranger guesses from SOURCE on purpose.
    for _ in range(12):
        await clock.advance(300)  # whatever the wait was, it is over
        await _refused(identity, "alice", "wrong password!")
    assert (await _refused(identity, "alice", PASSWORD)).reason == "rate_limited"
    await identity.login("alice", PASSWORD, source="10.0.0.1")


async def test_one_client_failing_on_many_names_does_not_lock_out_its_neighbours(
    identity: Identity, alice: Principal
) -> None:
    # Behind a plant's NAT everyone has SOURCE; one of them fails on fifteen names.
    for i in range(15):
        for _ in range(4):
            await _refused(identity, f"user{i}", "wrong password!")
    await identity.login("alice", PASSWORD, source=SOURCE)


async def test_unknown_users_are_locked_out_too(identity: Identity) -> None:
    for _ in range(3):
        await _refused(identity, "ghost", "wrong password!")
    assert (await _refused(identity, "ghost", "wrong password!")).reason == "rate_limited"


async def test_totp_is_required_once_enabled_and_a_code_works_once(
    identity: Identity,
    alice: Principal,
    clock: FakeClock,  # noqa: F811
) -> None:
    provisioning = await identity.enable_totp(alice)
    assert provisioning.uri.startswith("otpauth://totp/")
    # Not in force until confirmed: the password alone still signs in.
    await identity.login("alice", PASSWORD, source=SOURCE)
    with pytest.raises(AuthError):
        await identity.confirm_totp(alice, wrong_totp_code(provisioning.secret, clock))
    await identity.confirm_totp(alice, totp_code(provisioning.secret, clock))

    assert (await _refused(identity, "alice", PASSWORD)).reason == "totp_required"
    await clock.advance(30)
    code = totp_code(provisioning.secret, clock)
    await identity.login("alice", PASSWORD, totp=code, source=SOURCE)
    replay = await _refused(identity, "alice", PASSWORD, totp=code)
    assert replay.reason == "invalid_totp"
    # The previous step is inside the drift window, but older than the one used: refused.
    older = totp_code(provisioning.secret, clock, offset_steps=-1)
    assert (await _refused(identity, "alice", PASSWORD, totp=older)).reason == "invalid_totp"
    await clock.advance(30)
    await identity.login(
        "alice", PASSWORD, totp=totp_code(provisioning.secret, clock), source=SOURCE
    )
    with pytest.raises(PermissionDenied):  # a stolen session cannot move the second factor
        await identity.enable_totp(alice)


async def test_an_administrator_resets_a_lost_totp(
    identity: Identity,
    admin: Principal,
    alice: Principal,
    clock: FakeClock,  # noqa: F811
) -> None:
    provisioning = await identity.enable_totp(alice)
    await identity.confirm_totp(alice, totp_code(provisioning.secret, clock))
    with pytest.raises(PermissionDenied):
        await identity.reset_totp(alice, "alice")
    await identity.reset_totp(admin, "alice")
    await identity.login("alice", PASSWORD, source=SOURCE)


async def test_an_access_token_expires(
    identity: Identity,
    alice: Principal,
    clock: FakeClock,  # noqa: F811
) -> None:
    pair = await identity.login("alice", PASSWORD, source=SOURCE)
    await clock.advance(899)
    await identity.authenticate_bearer(pair.access)
    await clock.advance(1)
    with pytest.raises(AuthError) as info:
        await identity.authenticate_bearer(pair.access)
    assert info.value.reason == "invalid_token"


async def test_a_token_signed_by_another_install_is_refused(
    identity: Identity,
    alice: Principal,
    tmp_path: Path,
    clock: FakeClock,  # noqa: F811
) -> None:
    other_dir = tmp_path / "other"
    async with running(f"sqlite:///{tmp_path / 'other.db'}", other_dir, clock) as other:
        await other.create_user(
            await sign_in_admin(other), DEFAULT_TENANT, "alice", PASSWORD, ["operator"]
        )
        foreign = await other.login("alice", PASSWORD, source=SOURCE)
    with pytest.raises(AuthError):
        await identity.authenticate_bearer(foreign.access)
    # Same claims, other key: no forgery.
    forged = issue_access_token(
        b"k" * 32,
        subject=alice.id,
        tenant=alice.tenant,
        kind="user",
        now_us=clock.now_us(),
        extra={"sid": alice.token_id},
    )
    with pytest.raises(AuthError):
        await identity.authenticate_bearer(forged)
    for junk in ("", "kiln_key_", "not.a.jwt", "kiln_rt_0123456789abcdef_x"):
        with pytest.raises(AuthError):
            await identity.authenticate_bearer(junk)


async def test_refresh_rotates_and_reuse_revokes_the_session(
    identity: Identity, alice: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    first = await identity.login("alice", PASSWORD, source=SOURCE)
    second = await identity.refresh(first.refresh)
    assert second.refresh != first.refresh
    await identity.authenticate_bearer(second.access)
    third = await identity.refresh(second.refresh)

    with caplog.at_level(logging.WARNING), pytest.raises(AuthError):
        await identity.refresh(first.refresh)  # replayed: stolen
    assert any("presumed stolen" in r.getMessage() for r in caplog.records)
    # The whole family is gone: the newest refresh token and every access token of it.
    with pytest.raises(AuthError):
        await identity.refresh(third.refresh)
    for access in (first.access, second.access, third.access):
        with pytest.raises(AuthError):
            await identity.authenticate_bearer(access)
    # Other sessions of the same user are untouched.
    await sign_in(identity, "alice")


async def test_the_session_ends_when_its_refresh_token_expires(
    identity: Identity,
    alice: Principal,
    clock: FakeClock,  # noqa: F811
) -> None:
    pair = await identity.login("alice", PASSWORD, source=SOURCE)
    await clock.advance(8 * 3600 - 60)
    pair = await identity.refresh(pair.refresh)
    await clock.advance(60)  # rotation does not extend the session
    with pytest.raises(AuthError):
        await identity.refresh(pair.refresh)


async def test_logout_ends_the_session_at_once(identity: Identity, alice: Principal) -> None:
    by_token = await identity.login("alice", PASSWORD, source=SOURCE)
    await identity.logout(by_token.refresh)
    await identity.logout(by_token.refresh)  # twice is fine
    with pytest.raises(AuthError):
        await identity.authenticate_bearer(by_token.access)
    with pytest.raises(AuthError):
        await identity.refresh(by_token.refresh)

    by_principal = await identity.login("alice", PASSWORD, source=SOURCE)
    await identity.logout(await identity.authenticate_bearer(by_principal.access))
    with pytest.raises(AuthError):
        await identity.refresh(by_principal.refresh)


async def test_changing_a_password_ends_the_other_sessions(
    identity: Identity, admin: Principal, alice: Principal
) -> None:
    other = await identity.login("alice", PASSWORD, source=SOURCE)
    new = "a much better passphrase"
    with pytest.raises(AuthError):
        await identity.set_password(alice, "alice", new, current_password="wrong password")
    with pytest.raises(ValueError, match="too short"):
        await identity.set_password(alice, "alice", "short", current_password=PASSWORD)
    await identity.set_password(alice, "alice", new, current_password=PASSWORD)
    await identity.authenticate_bearer(  # the session that changed it goes on
        (await identity.login("alice", new, source=SOURCE)).access
    )
    with pytest.raises(AuthError):
        await identity.authenticate_bearer(other.access)
    assert (await _refused(identity, "alice", PASSWORD)).reason == "invalid_credentials"

    await identity.set_password(admin, "alice", PASSWORD)  # an administrator resets it
    with pytest.raises(AuthError):
        await identity.refresh(other.refresh)
    await identity.login("alice", PASSWORD, source=SOURCE)


async def test_guessing_the_current_password_in_a_session_is_rate_limited(
    identity: Identity, alice: Principal
) -> None:
    for _ in range(3):
        with pytest.raises(AuthError):
            await identity.set_password(alice, "alice", "new passphrase 1", current_password="x")
    with pytest.raises(AuthError) as info:
        await identity.set_password(alice, "alice", "new passphrase 1", current_password=PASSWORD)
    assert info.value.reason == "rate_limited"


async def test_a_disabled_user_is_refused_at_once(
    identity: Identity, admin: Principal, alice: Principal
) -> None:
    pair = await identity.login("alice", PASSWORD, source=SOURCE)
    with pytest.raises(PermissionDenied):
        await identity.disable_user(admin, "admin")  # not oneself
    await identity.disable_user(admin, "alice")
    with pytest.raises(AuthError):
        await identity.authenticate_bearer(pair.access)
    await identity.disable_user(admin, "alice", disabled=False)
    await identity.login("alice", PASSWORD, source=SOURCE)


async def test_no_secret_reaches_the_log(
    sqlite_url: str,  # noqa: F811
    tmp_path: Path,
    clock: FakeClock,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = [PASSWORD, "wrong password!"]
    async with running(sqlite_url, tmp_path, clock) as identity:
        assert identity.bootstrap_result is not None
        secrets.append(identity.bootstrap_result.password)
        admin = await sign_in_admin(identity)
        await identity.create_user(admin, DEFAULT_TENANT, "bob", PASSWORD, ["engineer"])
        with pytest.raises(AuthError):
            await identity.login("bob", "wrong password!", source=SOURCE)
        pair = await identity.login("bob", PASSWORD, source=SOURCE)
        bob = await identity.authenticate_bearer(pair.access)
        renewed = await identity.refresh(pair.refresh)
        with pytest.raises(AuthError):
            await identity.refresh(pair.refresh)
        secrets += [pair.access, pair.refresh, renewed.access, renewed.refresh]
        key, _ = await identity.create_api_key(bob, "k", ["values:read"], None, 30)
        device, _ = await identity.create_device(admin, DEFAULT_TENANT, "gw", "acme/plant1")
        await identity.authenticate_bearer(key)
        await identity.authenticate_device(device)
        await identity.revoke_device(admin, DEFAULT_TENANT, "gw")
        with pytest.raises(AuthError):
            await identity.authenticate_device(device)
        provisioning = await identity.enable_totp(bob)
        code = totp_code(provisioning.secret, clock)
        await identity.confirm_totp(bob, code)
        secrets += [key, device, provisioning.secret, provisioning.uri]
    assert caplog.records, "the scenario logs something"
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        for secret in secrets:
            assert secret not in text, f"a secret in the log: {record.getMessage()!r}"


async def test_a_credential_made_elsewhere_works_while_a_reload_is_half_way(
    sqlite_url: str,  # noqa: F811
    tmp_path: Path,
    clock: FakeClock,  # noqa: F811
) -> None:
    """A device made by another process (`kiln admin devices add`) while this one's follower
    is in the middle of reloading: the request must wait for that reload, not conclude from the
    change stamp it has already seen that nothing changed (a 401 one run in a few dozen)."""
    async with (
        running(sqlite_url, tmp_path, clock) as server,
        running(sqlite_url, tmp_path, clock) as console,
    ):
        token, _ = await console.create_device(
            await sign_in_admin(server), "default", "press7", "acme/plant1/press7"
        )
        mark_changed(tmp_path)  # as `kiln admin` does after a change
        release = asyncio.Event()
        reload = server._rt.reload

        async def slow_reload() -> None:
            await release.wait()
            await reload()

        server._rt.reload = slow_reload  # type: ignore[method-assign]
        follower = asyncio.create_task(server._catch_up())
        await asyncio.sleep(0)  # the follower holds the lock, its reload half way
        request = asyncio.create_task(server.authenticate_device(token))
        await asyncio.sleep(0.01)
        release.set()
        principal = await request
        assert principal.name == "press7"
        assert await follower is True
