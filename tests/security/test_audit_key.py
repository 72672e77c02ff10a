"""The audit chain's key apart from the data it protects, and anchors published elsewhere: whoever
holds only the data directory (or, with anchors, even the key) cannot produce a history that
verifies. Bad key settings are refused with a message that names the setting."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from audit_fixtures import (  # noqa: F401
    fill,
    fx_clock,
    fx_data_dir,
    fx_db_url,
    fx_sqlite_url,
    running,
    sql,
)
from audit_forgery import rechain

from kiln.app.assembly import build_platform
from kiln.app.cli import main
from kiln.app.settings import Settings
from kiln.core.errors import StartupError
from kiln.core.platform import Platform, Stage, Status
from kiln.security.audit import AuditError, verify
from kiln.security.audit.anchors import ANCHORS_FILE, publish, read_published
from kiln.security.audit.key import AuditKeyConfigError, load_audit_keys
from kiln.security.audit.move import move_key
from kiln.security.audit.setup import audit_log_from
from kiln.security.secrets import SECRET_FILE_NAME, load_or_create_secret, load_secret
from kiln.security.settings import SecuritySettings
from kiln.testing.clock import FakeClock

AUDIT_KEY = bytes(range(100, 132))


def key_file(path: Path, data: bytes = AUDIT_KEY, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def settings(data_dir: Path, **security: object) -> Settings:
    return Settings(data_dir=data_dir, security=SecuritySettings(**security))  # type: ignore[arg-type]


# -- the key outside the data directory ---------------------------------------------------


async def test_holding_the_data_directory_is_not_enough_with_the_key_elsewhere(
    tmp_path: Path, clock: FakeClock
) -> None:
    data_dir, outside = tmp_path / "data", key_file(tmp_path / "vault" / "audit.key")
    load_or_create_secret(data_dir)  # the install secret (sessions, TOTP) stays in the data dir
    keys = load_audit_keys(data_dir, outside)
    url = f"sqlite:///{data_dir / 'audit.db'}"
    async with running(url, data_dir, clock, key=keys.secret, previous_keys=keys.previous) as a:
        await fill(a, 6)
    assert verify(url, AUDIT_KEY, data_dir).ok

    # Everything in the data directory, the install secret included, is the attacker's.
    install_secret = load_secret(data_dir)
    rechain(url, install_secret, data_dir, 3, target="mallory")
    result = verify(url, AUDIT_KEY, data_dir, previous_keys=keys.previous)
    assert result.first_problem_seq == 3

    # The whole chain re-signed: what the old design accepted, and the anchor still refuses.
    rechain(url, install_secret, data_dir, 1, target="mallory")
    assert verify(url, install_secret, data_dir).ok
    result = verify(url, AUDIT_KEY, data_dir, previous_keys=keys.previous)
    assert result.problems == ["wrong key or anchor tampered (audit.head does not verify)"]
    (data_dir / "audit.head").unlink()  # no anchor at all
    assert not verify(url, AUDIT_KEY, data_dir, previous_keys=keys.previous).ok


async def test_the_server_and_the_cli_take_the_key_from_the_environment(
    tmp_path: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir = tmp_path / "data"
    env = {"KILN_AUDIT_KEY": AUDIT_KEY.hex()}
    audit = audit_log_from(settings(data_dir).security, data_dir, environ=env)
    url = f"sqlite:///{data_dir / 'audit.db'}"
    platform = Platform(clock=clock, data_dir=data_dir)
    platform.add(audit, Stage.STORAGE)
    async with platform:
        await fill(audit, 3)
    assert verify(url, AUDIT_KEY, data_dir).ok
    assert not verify(url, bytes(32), data_dir).ok
    b64 = {"KILN_AUDIT_KEY": base64.b64encode(AUDIT_KEY).decode()}
    assert load_audit_keys(data_dir, environ=b64).secret == AUDIT_KEY

    # `kiln audit verify` reads it too.
    monkeypatch.setenv("KILN_AUDIT_KEY", AUDIT_KEY.hex())
    assert main(["audit", "verify", "--data-dir", str(data_dir)]) == 0
    monkeypatch.setenv("KILN_AUDIT_KEY", bytes(32).hex())
    assert main(["audit", "verify", "--data-dir", str(data_dir)]) == 1
    assert "TAMPERED" in capsys.readouterr().out


async def test_an_existing_log_moves_to_a_key_outside_the_data_directory(
    db_url: str, tmp_path: Path, data_dir: Path, clock: FakeClock
) -> None:
    """Migration: the old records stay signed by the install secret's key, `kiln audit
    move-key` re-signs the head anchor, the next record is signed by the new key, and the old
    key cannot forge anything any more."""
    install = os.urandom(32)
    key_file(data_dir / SECRET_FILE_NAME, install)
    async with running(db_url, data_dir, clock, key=install) as audit:
        await fill(audit, 4)
    keys = load_audit_keys(data_dir, key_file(tmp_path / "vault" / "audit.key"))
    assert keys.previous == (install,)
    new_key = {"key": AUDIT_KEY, "previous_keys": keys.previous}

    # Never taken up silently: the anchor signed with the old key is what a forger would leave.
    with pytest.raises(StartupError, match="run `kiln audit move-key` once"):
        async with running(db_url, data_dir, clock, **new_key):
            pass
    assert "records 1 to 4 verified" in move_key(db_url, data_dir, keys)
    assert "already anchored" in move_key(db_url, data_dir, keys)

    async with running(db_url, data_dir, clock, **new_key) as audit:
        await audit.wait_first_check()
        assert audit.health().status is Status.OK
        await fill(audit, 2)
    result = verify(db_url, AUDIT_KEY, data_dir, previous_keys=keys.previous)
    assert result.ok, result.problems
    assert (result.checked, result.key_starts) == (6, {0: 1, 1: 5})

    # With the old key, whoever holds the data directory can re-sign records and an anchor,
    # and verify refuses them, and so does the server.
    rechain(db_url, install, data_dir, 2, target="mallory")
    assert verify(db_url, install, data_dir).ok
    result = verify(db_url, AUDIT_KEY, data_dir, previous_keys=keys.previous)
    assert result.problems == ["wrong key or anchor tampered (audit.head does not verify)"]
    with pytest.raises(StartupError, match="signed with the previous audit key"):
        async with running(db_url, data_dir, clock, **new_key):
            pass


async def test_move_key_refuses_a_broken_log(
    sqlite_url: str, tmp_path: Path, data_dir: Path, clock: FakeClock
) -> None:
    install = load_or_create_secret(data_dir)
    async with running(sqlite_url, data_dir, clock, key=install) as audit:
        await fill(audit, 4)
    sql(sqlite_url, "UPDATE audit_log SET target = 'mallory' WHERE seq = 2")
    keys = load_audit_keys(data_dir, key_file(tmp_path / "audit.key"))
    with pytest.raises(AuditError, match=r"record 2 was modified"):
        move_key(sqlite_url, data_dir, keys)
    with pytest.raises(AuditError, match=r"set security\.audit_key_file or KILN_AUDIT_KEY"):
        move_key(sqlite_url, data_dir, load_audit_keys(data_dir))


async def test_cli_move_key(
    tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text("name: t\ndata_dir: data\nsecurity:\n  audit_key_file: audit.key\n")
    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'audit.db'}"
    async with running(url, data_dir, clock, key=load_or_create_secret(data_dir)) as audit:
        await fill(audit, 3)  # with the old key
    key_file(tmp_path / "audit.key")
    assert main(["audit", "move-key", "--config", str(config)]) == 0
    assert "taken up with the key from" in capsys.readouterr().out
    assert main(["audit", "verify", "--config", str(config)]) == 0
    async with running(url, data_dir, clock, key=AUDIT_KEY, previous_keys=[load_secret(data_dir)]):
        pass  # starts with the new key


# -- anchors published elsewhere ----------------------------------------------------------


async def test_a_chain_rewritten_with_the_key_is_caught_by_the_published_anchors(
    sqlite_url: str, tmp_path: Path, data_dir: Path, clock: FakeClock
) -> None:
    anchors, key = tmp_path / "elsewhere", os.urandom(32)
    async with running(sqlite_url, data_dir, clock, key=key, anchor_dir=anchors) as audit:
        await audit.wait_first_check()  # the next scheduled one is 300 s of the fake clock away
        await fill(audit, 5)
        await audit.check_integrity()  # publishes the verified head
        await fill(audit, 2)
    assert max(read_published(anchors)) == 5

    rechain(sqlite_url, key, data_dir, 2, target="mallory")

    assert verify(sqlite_url, key, data_dir).ok  # the key holder's forgery, without anchors
    result = verify(sqlite_url, key, data_dir, anchors_dir=anchors)
    assert result.problems == [
        f"record 5 is not the record the anchor published in {ANCHORS_FILE} line 1 names: "
        "the chain was rewritten after it"
    ]
    # And at the next start, the server says so.
    async with running(sqlite_url, data_dir, clock, key=key, anchor_dir=anchors) as audit:
        await audit.wait_first_check()
        health = audit.health()
    assert health.status is Status.DEGRADED
    assert health.detail["verification"]["first_broken_record"] == 5


async def test_records_cut_off_after_a_published_anchor_are_caught(
    sqlite_url: str, tmp_path: Path, data_dir: Path, clock: FakeClock
) -> None:
    anchors, key = tmp_path / "elsewhere", os.urandom(32)
    async with running(sqlite_url, data_dir, clock, key=key, anchor_dir=anchors) as audit:
        await audit.wait_first_check()  # the next scheduled one is 300 s of the fake clock away
        await fill(audit, 5)
        await audit.check_integrity()
    sql(sqlite_url, "DELETE FROM audit_log WHERE seq >= 4")
    rechain(sqlite_url, key, data_dir, 3)  # a fresh, valid head anchor for record 3

    assert verify(sqlite_url, key, data_dir).ok
    assert verify(sqlite_url, key, data_dir, anchors_dir=anchors).problems == [
        f"the newest records after 3 were deleted (the anchor published in {ANCHORS_FILE} "
        "line 1 says 5)"
    ]


async def test_cli_verify_checks_the_anchors(
    tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir, anchors = tmp_path / "data", tmp_path / "elsewhere"
    install = load_or_create_secret(data_dir)
    url = f"sqlite:///{data_dir / 'audit.db'}"
    async with running(url, data_dir, clock, key=install) as audit:
        await fill(audit, 3)
    result = verify(url, install, data_dir)
    assert result.end is not None
    publish(anchors, result.end.seq, result.end.mac, 0)
    assert main(["audit", "verify", "--data-dir", str(data_dir), "--anchors", str(anchors)]) == 0
    rechain(url, install, data_dir, 1, source="203.0.113.9")
    assert main(["audit", "verify", "--data-dir", str(data_dir)]) == 0
    assert main(["audit", "verify", "--data-dir", str(data_dir), "--anchors", str(anchors)]) == 1
    assert "the chain was rewritten after it" in capsys.readouterr().out
    missing = tmp_path / "not-mounted"
    assert main(["audit", "verify", "--data-dir", str(data_dir), "--anchors", str(missing)]) == 2
    assert "security.audit_anchor_dir" in capsys.readouterr().err


# -- bad key settings ---------------------------------------------------------------------


def test_a_missing_key_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyConfigError, match=r"security\.audit_key_file: .* does not exist"):
        load_audit_keys(tmp_path / "data", tmp_path / "nope.key")


@pytest.mark.parametrize("data", [b"short", b"x" * 33, b"z" * 64 + b"\n"])
def test_a_key_file_of_the_wrong_length_names_the_setting(tmp_path: Path, data: bytes) -> None:
    path = key_file(tmp_path / "audit.key", data)
    with pytest.raises(AuditKeyConfigError, match=r"security\.audit_key_file .* not a 32-byte key"):
        load_audit_keys(tmp_path / "data", path)


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = key_file(tmp_path / "audit.key", mode=0o644)
    with pytest.raises(AuditKeyConfigError, match=r"readable by group or others.*chmod 600"):
        load_audit_keys(tmp_path / "data", path)


def test_an_unreadable_key_file_names_the_setting(tmp_path: Path) -> None:
    folder = tmp_path / "audit.key"
    folder.mkdir()
    with pytest.raises(AuditKeyConfigError, match=r"security\.audit_key_file: .* not a regular"):
        load_audit_keys(tmp_path / "data", folder)


def test_hex_and_base64_key_files_are_read(tmp_path: Path) -> None:
    hexed = key_file(tmp_path / "hex.key", AUDIT_KEY.hex().encode() + b"\n")
    b64 = key_file(tmp_path / "b64.key", base64.b64encode(AUDIT_KEY) + b"\n")
    assert load_audit_keys(tmp_path / "data", hexed).secret == AUDIT_KEY
    assert load_audit_keys(tmp_path / "data", b64).secret == AUDIT_KEY


@pytest.mark.parametrize("value", ["", "abc", "00" * 31, "zz" * 32])
def test_a_bad_environment_key_names_the_variable(tmp_path: Path, value: str) -> None:
    with pytest.raises(AuditKeyConfigError, match="KILN_AUDIT_KEY is not a 32-byte key"):
        load_audit_keys(tmp_path / "data", environ={"KILN_AUDIT_KEY": value})


def test_the_environment_and_a_key_file_at_once_are_refused(tmp_path: Path) -> None:
    path = key_file(tmp_path / "audit.key")
    with pytest.raises(AuditKeyConfigError, match="keep one of them"):
        load_audit_keys(tmp_path / "data", path, environ={"KILN_AUDIT_KEY": AUDIT_KEY.hex()})


def test_the_server_refuses_to_start_with_a_bad_key_setting(tmp_path: Path) -> None:
    bad = settings(tmp_path / "data", audit_key_file=key_file(tmp_path / "k", b"short"))
    with pytest.raises(AuditKeyConfigError, match=r"security\.audit_key_file .* not a 32-byte"):
        build_platform(bad)


def test_verify_refuses_a_bad_key_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text("name: t\ndata_dir: data\nsecurity:\n  audit_key_file: missing.key\n")
    assert main(["audit", "verify", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "security.audit_key_file" in err and "missing.key does not exist" in err


def test_the_default_key_beside_the_data_is_announced_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audit_log_from(settings(tmp_path / "data").security, tmp_path / "data", environ={})
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "in the data directory beside the log" in warnings[0]
    assert "security.audit_key_file" in warnings[0]
