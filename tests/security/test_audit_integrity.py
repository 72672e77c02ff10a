"""The writer guards its own chain: tampering it notices is recorded in the log, and the chain
never reuses a place that would hide it. A log written with another key is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_fixtures import (  # noqa: F401
    OTHER_SECRET,
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

from kiln.core.errors import StartupError
from kiln.core.platform import Status
from kiln.security.audit import Category, Result, verify
from kiln.testing.clock import FakeClock


async def test_newest_records_deleted_while_stopped_are_recorded_at_start(
    db_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(db_url, data_dir, clock) as audit:
        records = await fill(audit, 6)
    sql(db_url, "DELETE FROM audit_log WHERE seq >= 5")

    async with running(db_url, data_dir, clock) as audit:
        health = audit.health()
        after = await login(audit, 6)
        [integrity] = await audit.query(action="audit.integrity")

    # The chain continues after the record the anchor named, so the gap stays visible.
    assert (integrity.seq, integrity.prev_mac) == (7, records[-1].mac)
    assert (integrity.category, integrity.result) == (Category.AUDIT, Result.FAILURE)
    assert integrity.detail == {
        "phase": "start",
        "findings": [
            "the database ends at record 4 but the head anchor says 6: the newest records "
            "were deleted; the chain continues after 6"
        ],
    }
    assert after.seq == 8
    assert health.status is Status.DEGRADED
    assert health.detail["integrity"] == integrity.detail["findings"]
    assert verify(db_url, SECRET, data_dir).problems == [
        "records 5 to 6 are missing (seq jumps 4 -> 7)"
    ]


async def test_newest_records_deleted_while_running_are_recorded(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock) as audit:
        records = await fill(audit, 6)
        sql(sqlite_url, "DELETE FROM audit_log WHERE seq >= 5")
        after = await login(audit, 6)
        [integrity] = await audit.query(action="audit.integrity")
        assert audit.health().status is Status.DEGRADED

    assert (after.seq, after.prev_mac) == (7, records[-1].mac)
    assert integrity.seq == 8
    assert integrity.detail["findings"] == [
        "the database ends at record 4 but the log had reached 6: the newest records were "
        "deleted; the chain continues after 6"
    ]
    assert verify(sqlite_url, SECRET, data_dir).problems == [
        "records 5 to 6 are missing (seq jumps 4 -> 7)"
    ]


async def test_a_tampered_anchor_is_recorded_and_the_log_goes_on(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(sqlite_url, data_dir, clock) as audit:
        await fill(audit, 3)
    anchor_file = data_dir / "audit.head"
    anchor_file.write_text(json.dumps({**json.loads(anchor_file.read_text()), "seq": 2}))

    async with running(sqlite_url, data_dir, clock) as audit:
        [integrity] = await audit.query(action="audit.integrity")
        await login(audit, 3)

    [finding] = integrity.detail["findings"]
    assert finding.startswith("the head anchor cannot be trusted:")
    assert integrity.seq == 4
    # Rewritten by the writer since: the log as it now stands verifies, and says what happened.
    assert verify(sqlite_url, SECRET, data_dir).ok


async def test_a_log_written_with_another_key_is_refused(
    db_url: str, data_dir: Path, clock: FakeClock
) -> None:
    async with running(db_url, data_dir, clock) as audit:
        await fill(audit, 2)

    with pytest.raises(StartupError, match="does not verify with the configured audit key"):
        async with running(db_url, data_dir, clock, key=OTHER_SECRET):
            pass
    assert [r[0] for r in sql(db_url, "SELECT seq FROM audit_log ORDER BY seq")] == [1, 2]


async def test_another_writer_on_the_same_database_extends_the_same_chain(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    # Two services on one database, as the server and a CLI command would be: each appends
    # after whatever the other wrote.
    async with (
        running(sqlite_url, data_dir, clock) as server,
        running(sqlite_url, data_dir, clock) as cli,
    ):
        for n in range(3):
            await login(server, n)
            await login(cli, n, source="cli")

        assert [r.source for r in await server.query()] == ["10.0.0.7", "cli"] * 3
        assert server.health().status is Status.OK

    result = verify(sqlite_url, SECRET, data_dir)
    assert (result.ok, result.checked) == (True, 6)
