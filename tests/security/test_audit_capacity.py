"""Bounded storage: warnings before the log is full, archiving when it is, never a silent drop;
archived and live records verify as one chain."""

from __future__ import annotations

import json
import logging
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
from sqlalchemy import create_engine, insert
from sqlalchemy.pool import NullPool

from kiln.core.platform import Status
from kiln.security.audit import Category, verify
from kiln.security.audit.schema import AUDIT_LOG
from kiln.testing.clock import FakeClock

SMALL = {"max_records": 20, "archive_batch": 5}


def capacity_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "full" in r.getMessage()
    ]


def segments(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "audit-archive").iterdir())


async def test_warns_once_at_80_and_95_percent(
    sqlite_url: str, data_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running(sqlite_url, data_dir, clock, **SMALL) as audit:
        await fill(audit, 15)
        assert audit.health().status is Status.OK
        assert capacity_warnings(caplog) == []

        await login(audit, 15)  # the 16th record: 80%
        health = audit.health()
        assert health.status is Status.DEGRADED
        assert health.detail["fill_ratio"] == 0.85  # with the capacity record itself
        await fill(audit, 2)  # 19 records: 95%
        alerts = await audit.query(action="audit.capacity")

    assert [(a.seq, a.category, a.detail["level"]) for a in alerts] == [
        (17, Category.SYSTEM, 0.8),
        (20, Category.SYSTEM, 0.95),
    ]
    assert alerts[0].detail == {
        "level": 0.8,
        "fill_ratio": 0.8,
        "records": 16,
        "max_records": 20,
    }
    assert capacity_warnings(caplog) == [
        "Audit log 80% full (16 of 20 records); at 100% the oldest 5 move to "
        f"{data_dir / 'audit-archive'}",
        "Audit log 95% full (19 of 20 records); at 100% the oldest 5 move to "
        f"{data_dir / 'audit-archive'}",
    ]


async def test_a_full_log_archives_its_oldest_records_and_verifies_as_one_chain(
    db_url: str, data_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running(db_url, data_dir, clock, **SMALL) as audit:
        await fill(audit, 40)
        live = await audit.query()
        archives = await audit.query(action="audit.archive")
        health = audit.health()

    assert segments(data_dir) == [
        "0000000001-0000000005.jsonl",
        "0000000006-0000000010.jsonl",
        "0000000011-0000000015.jsonl",
        "0000000016-0000000020.jsonl",
        "0000000021-0000000025.jsonl",
        "0000000026-0000000030.jsonl",
    ]
    assert len(live) <= 20
    assert live[0].seq == 31
    assert [a.target for a in archives] == segments(data_dir)[-len(archives) :]
    assert health.detail["archived_records"] == 30
    # Each level warned once: archiving is the planned answer to a full log, not news.
    assert len(capacity_warnings(caplog)) == 2
    result = verify(db_url, SECRET, data_dir)
    assert (result.ok, result.problems) == (True, [])
    assert (result.checked, result.archived, result.newest) == (live[-1].seq, 30, live[-1].seq)


async def test_a_tampered_archive_is_detected(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock, **SMALL) as audit:
        await fill(audit, 30)
    archive = data_dir / "audit-archive"
    first = archive / "0000000001-0000000005.jsonl"
    lines = first.read_text().splitlines()
    record = json.loads(lines[2])
    lines[2] = json.dumps({**record, "result": "failure"})
    first.write_text("\n".join(lines) + "\n")
    (archive / "0000000006-0000000010.jsonl").unlink()
    third = archive / "0000000011-0000000015.jsonl"
    third.write_text("".join(third.read_text().splitlines(keepends=True)[1:]))  # drop record 11

    assert verify(sqlite_url, SECRET, data_dir).problems == [
        "archive 0000000001-0000000005.jsonl: record 3 was modified (MAC mismatch)",
        "archive 0000000011-0000000015.jsonl: records 6 to 11 are missing (seq jumps 5 -> 12)",
    ]


async def test_a_garbled_archive_line_is_named(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock, **SMALL) as audit:
        await fill(audit, 22)
    first = data_dir / "audit-archive" / "0000000001-0000000005.jsonl"
    lines = first.read_text().splitlines()
    lines[1] = lines[1][:40]
    first.write_text("\n".join(lines) + "\n")

    assert verify(sqlite_url, SECRET, data_dir).problems == [
        "archive 0000000001-0000000005.jsonl: line 2 is not a record",
        "archive 0000000001-0000000005.jsonl: record 2 is missing (seq jumps 1 -> 3)",
    ]


async def test_records_both_archived_and_still_in_the_database_verify(
    db_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(db_url, data_dir, clock, **SMALL) as audit:
        await fill(audit, 22)
    # As if the process died after writing the segment and before deleting its records.
    segment = data_dir / "audit-archive" / "0000000001-0000000005.jsonl"
    rows = [json.loads(line) for line in segment.read_text().splitlines()]
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(insert(AUDIT_LOG), rows)
    engine.dispose()

    result = verify(db_url, SECRET, data_dir)

    assert (result.ok, result.problems) == (True, [])

    # The same seqs with other content are not accepted as copies.
    sql(db_url, "UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 2")
    assert verify(db_url, SECRET, data_dir).problems == [
        "record 2 appears twice, with different content"
    ]


async def test_records_are_kept_when_archiving_fails(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock, **SMALL) as audit:
        await fill(audit, 15)
        blocker = data_dir / "audit-archive"
        blocker.write_text("not a directory")

        await fill(audit, 10)  # past the bound: recorded anyway
        health = audit.health()
        assert health.status is Status.DEGRADED
        assert health.detail["records"] == 27  # with the two capacity records
        assert "archiving failed" in health.detail["archive_error"]

        blocker.unlink()
        await login(audit, 99)
        assert audit.health().detail["records"] == 28  # a retry waits a minute
        await clock.advance(60)
        await login(audit, 100)
        recovered = audit.health()

    assert "archive_error" not in recovered.detail
    assert recovered.detail["archived_records"] == 13
    assert recovered.detail["records"] == 17  # 15, the archive record, the login
    assert verify(sqlite_url, SECRET, data_dir).ok


async def test_a_restart_does_not_repeat_capacity_records(
    sqlite_url: str, data_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(sqlite_url, data_dir, clock, **SMALL) as audit:
        await fill(audit, 16)  # and the 80% record
    caplog.clear()

    async with running(sqlite_url, data_dir, clock, **SMALL) as audit:
        await login(audit, 17)
        alerts = await audit.query(action="audit.capacity")
        assert audit.health().status is Status.DEGRADED

    assert [a.detail["level"] for a in alerts] == [0.8]
    assert capacity_warnings(caplog) == [
        f"Audit log 85% full (17 of 20 records); the oldest are archived to "
        f"{data_dir / 'audit-archive'} when full"
    ]
