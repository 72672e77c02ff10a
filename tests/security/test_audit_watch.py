"""The running server verifies its own audit chain: in full after each start, then on a
schedule the records written since and a slice of the older ones. A break turns the audit
service (and so /api/v1/health) degraded, names the first record at fault, is logged at ERROR
once and counted on /metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from audit_fixtures import (  # noqa: F401
    SECRET,
    fill,
    fx_clock,
    fx_data_dir,
    fx_db_url,
    fx_sqlite_url,
    login,
    running,
    sql,
)
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from kiln.api.metrics import PlatformCollector
from kiln.app.server import build_app
from kiln.app.settings import Settings
from kiln.app.subsystems.security import AuditCollector
from kiln.core.platform import Platform, Stage, Status
from kiln.security.audit import AuditLog
from kiln.security.passwords import PasswordHasherSettings
from kiln.testing.auth import admin_headers
from kiln.testing.clock import FakeClock

INTERVAL_S = 300.0


async def checks_done(audit: AuditLog, n: int) -> None:
    """Wait (in real time, briefly) until `n` checks have ended: they run on a worker thread."""
    for _ in range(500):
        state = audit.integrity
        if state is not None and state.checks + state.errors >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the audit log did not complete {n} checks")


async def test_a_record_tampered_while_stopped_degrades_health_after_the_restart(
    db_url: str, data_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(db_url, data_dir, clock) as audit:
        await fill(audit, 8)
    sql(db_url, "UPDATE audit_log SET target = 'mallory' WHERE seq = 4")

    async with running(db_url, data_dir, clock) as audit:
        await audit.wait_first_check()
        health = audit.health()

    assert health.status is Status.DEGRADED
    verification = health.detail["verification"]
    assert verification["first_broken_record"] == 4
    assert verification["problems"] == ["record 4 was modified (MAC mismatch)"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "Audit log integrity: record 4 was modified (MAC mismatch)"
    ]


async def test_an_intact_log_stays_ok_after_the_check(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock) as audit:
        await fill(audit, 5)
    async with running(sqlite_url, data_dir, clock) as audit:
        await audit.wait_first_check()
        health = audit.health()
    assert health.status is Status.OK
    assert health.detail["verification"]["verified_up_to"] == 5
    assert "problems" not in health.detail["verification"]


async def test_a_record_tampered_while_running_is_found_by_the_scheduled_check(
    db_url: str, data_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(db_url, data_dir, clock, verify_interval_s=INTERVAL_S) as audit:
        await fill(audit, 6)
        await audit.wait_first_check()
        await checks_done(audit, 1)
        assert audit.health().status is Status.OK
        # Already verified once, then changed: the scheduled check re-reads older records too.
        sql(db_url, "UPDATE audit_log SET detail = '{\"n\": 99}' WHERE seq = 3")
        await fill(audit, 2)

        await clock.advance(INTERVAL_S - 1)
        await asyncio.sleep(0.05)
        assert audit.health().status is Status.OK  # not yet due

        await clock.advance(1)
        await checks_done(audit, 2)
        health = audit.health()
        assert health.status is Status.DEGRADED
        assert health.detail["verification"]["first_broken_record"] == 3
        assert health.detail["verification"]["verified_up_to"] == 8

        # Found again by the next check, but logged once.
        await clock.advance(INTERVAL_S)
        await checks_done(audit, 3)
        assert audit.health().status is Status.DEGRADED

    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["Audit log integrity: record 3 was modified (MAC mismatch)"]


async def test_new_records_forged_while_running_are_found(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock, verify_interval_s=INTERVAL_S) as audit:
        await fill(audit, 3)
        await audit.wait_first_check()
        await fill(audit, 3)  # records 4..6, not yet verified
        sql(sqlite_url, "UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 5")
        await clock.advance(INTERVAL_S)
        await checks_done(audit, 2)
        verification = audit.health().detail["verification"]
    assert verification["first_broken_record"] == 5


async def test_the_break_is_counted_on_metrics(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock) as audit:
        await fill(audit, 4)
    sql(sqlite_url, "DELETE FROM audit_log WHERE seq = 2")

    audit = AuditLog(sqlite_url, SECRET, data_dir=data_dir)
    platform = Platform(clock=clock, data_dir=data_dir)
    platform.add(audit, Stage.STORAGE)
    async with platform:
        await audit.wait_first_check()
        registry = CollectorRegistry()
        registry.register(PlatformCollector(platform))
        registry.register(AuditCollector(platform))
        text = generate_latest(registry).decode()

    assert "kiln_audit_integrity_ok 0.0" in text
    assert "kiln_audit_integrity_breaks_total 1.0" in text
    assert "kiln_audit_integrity_checks_total 1.0" in text


def test_api_health_is_degraded_and_names_the_record(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir)
    cheap = PasswordHasherSettings.for_tests()
    with TestClient(build_app(settings, password_settings=cheap)) as client:
        for _ in range(5):  # signing in is audited: records exist
            headers = admin_headers(client, data_dir)
        newest = sql(
            settings.security.audit_url_in(settings.data_dir), "SELECT max(seq) FROM audit_log"
        )[0][0]
    assert newest >= 5
    sql(
        settings.security.audit_url_in(settings.data_dir),
        "UPDATE audit_log SET source = '203.0.113.9' WHERE seq = 2",
    )

    with TestClient(build_app(settings, password_settings=cheap)) as client:
        # The check runs in the background after the start: poll as a monitoring system would.
        deadline = time.monotonic() + 10
        while True:
            body = client.get("/api/v1/health", headers=headers).json()
            if body["subsystems"]["audit"]["status"] != "ok":
                break
            assert time.monotonic() < deadline, "audit health stayed ok after a record was tampered"
            time.sleep(0.05)

    assert body["status"] == "degraded"
    assert body["subsystems"]["audit"]["status"] == "degraded"
    verification = body["subsystems"]["audit"]["detail"]["verification"]
    assert verification["first_broken_record"] == 2
    assert verification["problems"] == ["record 2 was modified (MAC mismatch)"]


async def test_archiving_between_checks_is_no_false_alarm(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    options = {"max_records": 10, "archive_batch": 5, "verify_interval_s": INTERVAL_S}
    async with running(sqlite_url, data_dir, clock, **options) as audit:
        await audit.wait_first_check()
        for n in range(1, 5):
            await fill(audit, 9)  # past the bound each time: the oldest move to the archive
            await clock.advance(INTERVAL_S)
            await checks_done(audit, n + 1)
        health = audit.health()
        assert audit.integrity is not None and audit.integrity.errors == 0
    # Degraded only by the fill level, which a full, archiving log stays at by design.
    assert "problems" not in health.detail["verification"]
    assert "error" not in health.detail["verification"]
    assert health.detail["archived_records"] > 0
    assert health.detail["verification"]["verified_up_to"] == health.detail["head"]
