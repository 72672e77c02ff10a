"""The AuditLog service: recording, queries, concurrency, restart, health, exports."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
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

from kiln.core.platform import Status
from kiln.security.audit import (
    REDACTED,
    AuditError,
    AuditLog,
    Category,
    Result,
    export_csv,
    export_jsonl,
    verify,
)
from kiln.security.audit.chain import ZERO_MAC
from kiln.testing.clock import FakeClock


async def test_records_are_chained_and_stored_with_every_field(
    db_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(db_url, data_dir, clock) as audit:
        first = await audit.record(
            actor="user:alice",
            source="10.0.0.7",
            category=Category.AUTHENTICATION,
            action="login",
            target="alice",
            tenant="acme",
            detail={"method": "password", "password": "hunter2"},
        )
        await clock.advance(1.5)
        second = await audit.record(
            actor="user:alice",
            source="10.0.0.7",
            category=Category.DEVICE_WRITE,
            action="device.write",
            target="acme/plant1/line1/press7/setpoint",
            result=Result.DENIED,
            tenant="acme",
            detail={"value": 42.5, "nested": {"api_key": "k"}},
        )

        stored = await audit.query()

    assert (first.seq, first.prev_mac) == (1, ZERO_MAC)
    assert (second.seq, second.prev_mac) == (2, first.mac)
    assert second.ts_us - first.ts_us == 1_500_000
    assert first.detail == {"method": "password", "password": REDACTED}
    assert second.detail == {"value": 42.5, "nested": {"api_key": REDACTED}}
    assert stored == [first, second]  # what was returned is what was committed
    assert "hunter2" not in json.dumps([r.to_dict() for r in stored])
    assert verify(db_url, SECRET, data_dir).ok


async def test_queries_filter_on_every_field_and_page(
    db_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(db_url, data_dir, clock) as audit:
        t0 = clock.now_us()
        await login(audit, 0)
        await login(audit, 1, actor="user:bob", result=Result.FAILURE, tenant="other")
        await clock.advance(10)
        await login(audit, 2, category=Category.ALARM, action="alarm.ack", tenant=None)
        await login(audit, 3, actor="user:bob", action="logout")

        async def seqs(**filters: object) -> list[int]:
            return [r.seq for r in await audit.query(**filters)]  # type: ignore[arg-type]

        assert await seqs() == [1, 2, 3, 4]
        assert await seqs(actor="user:bob") == [2, 4]
        assert await seqs(category=Category.ALARM) == [3]
        assert await seqs(action="logout") == [4]
        assert await seqs(result=Result.FAILURE) == [2]
        assert await seqs(tenant="acme") == [1, 4]
        assert await seqs(start_us=t0 + 10_000_000) == [3, 4]
        assert await seqs(end_us=t0 + 10_000_000) == [1, 2]
        assert await seqs(actor="user:bob", action="login") == [2]
        assert await seqs(after_seq=1, limit=2) == [2, 3]
        assert await seqs(after_seq=3, limit=2) == [4]
        assert await seqs(newest_first=True, limit=3) == [4, 3, 2]
        assert await seqs(newest_first=True, before_seq=2) == [1]
        with pytest.raises(ValueError, match="between 1 and 10000"):
            await audit.query(limit=10_001)
        with pytest.raises(ValueError, match="between 1 and 10000"):
            await audit.query(limit=0)


async def test_concurrent_records_form_one_gapless_valid_chain(
    db_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(db_url, data_dir, clock) as audit:
        records = await asyncio.gather(*(login(audit, n) for n in range(50)))
        stored = await audit.query()
        result = await audit.verify()  # while the writer has the database open

    assert sorted(r.seq for r in records) == list(range(1, 51))
    assert [r.seq for r in stored] == list(range(1, 51))
    for before, after in itertools.pairwise(stored):
        assert after.prev_mac == before.mac
    assert sorted(r.detail["n"] for r in stored) == list(range(50))
    assert (result.ok, result.checked, result.problems) == (True, 50, [])


async def test_a_new_log_on_the_same_database_continues_the_chain(
    db_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(db_url, data_dir, clock) as audit:
        before = await fill(audit, 3)
    async with running(db_url, data_dir, clock) as audit:
        after = await login(audit, 3)
        assert audit.health().status is Status.OK  # nothing to report on a clean restart
        assert [r.seq for r in await audit.query()] == [1, 2, 3, 4]

    assert (after.seq, after.prev_mac) == (4, before[-1].mac)
    assert verify(db_url, SECRET, data_dir).ok


async def test_a_record_is_durable_when_record_returns(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock) as audit:
        record = await login(audit)
        # Another connection (another process, say) sees it at once.
        rows = sql(sqlite_url, "SELECT seq, mac FROM audit_log")
        anchor = json.loads((data_dir / "audit.head").read_text())

    assert [tuple(r) for r in rows] == [(1, record.mac)]
    assert (anchor["seq"], anchor["mac"]) == (1, record.mac)


async def test_health_reports_size_and_recording_failures(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock, max_records=100) as audit:
        await fill(audit, 2)
        health = audit.health()
        assert health.status is Status.OK
        assert health.detail["records"] == 2
        assert health.detail["max_records"] == 100
        assert health.detail["head"] == 2

        sql(sqlite_url, "DROP TABLE audit_log")
        with pytest.raises(AuditError, match="'login' was not stored"):
            await login(audit)
        failed = audit.health()
        assert failed.status is Status.FAILED
        assert "recording failed" in failed.detail["error"]

    assert audit.health().status is Status.STOPPED


async def test_recording_on_a_stopped_log_raises(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock) as audit:
        pass
    with pytest.raises(AuditError, match="not running"):
        await login(audit)
    unstarted = AuditLog(sqlite_url, SECRET, data_dir=data_dir)
    with pytest.raises(AuditError, match="not running"):
        await unstarted.query()


def test_invalid_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="archive_batch"):
        AuditLog("sqlite://", SECRET, data_dir=Path("."), max_records=10, archive_batch=10)


async def test_jsonl_export_is_exact_and_verifiable(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock) as audit:
        await fill(audit, 2)
        records = await audit.query()

    lines = list(export_jsonl(records))

    assert len(lines) == 2
    assert all(line.endswith("\n") for line in lines)
    exported = [json.loads(line) for line in lines]
    assert exported[0] == {**records[0].to_dict(), "time": "2026-01-01T00:00:00+00:00"}
    assert exported[1]["prev_mac"] == exported[0]["mac"]


async def test_csv_export_has_a_header_and_defuses_formulas(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock) as audit:
        # The user name of a failed login is whatever the attacker typed.
        await login(audit, actor="anonymous", target='=HYPERLINK("http://x")', result="failure")
        records = await audit.query()

    rows = list(csv.DictReader(io.StringIO("".join(export_csv(records)))))

    assert len(rows) == 1
    row = rows[0]
    assert row["target"] == '\'=HYPERLINK("http://x")'
    assert (row["seq"], row["actor"], row["result"], row["tenant"]) == (
        "1",
        "anonymous",
        "failure",
        "acme",
    )
    assert json.loads(row["detail"]) == {"n": 0}
    assert row["mac"] == records[0].mac
