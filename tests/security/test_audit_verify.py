"""`verify` finds every kind of tampering with the stored log and names the record at fault.

Each test writes a short log through the service, changes the database (or the anchor) as
someone with write access but without the install secret could, and checks the report.
"""

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
    running,
    sql,
)

from kiln.security.audit import AuditError, verify, verify_main
from kiln.security.audit.verify import MAX_PROBLEMS
from kiln.security.secrets import SECRET_FILE_NAME, load_or_create_secret
from kiln.testing.clock import FakeClock

ZEROS = "00" * 32


async def write_log(url: str, data_dir: Path, clock: FakeClock, count: int = 6) -> None:
    async with running(url, data_dir, clock) as audit:
        await fill(audit, count)


def problems(url: str, data_dir: Path, key: bytes = SECRET) -> list[str]:
    result = verify(url, key, data_dir)
    assert result.ok is (not result.problems)
    return result.problems


def remove_sqlite_database(path: Path) -> None:
    for file in [path, *path.parent.glob(path.name + "-*")]:  # with its WAL files
        file.unlink()


async def test_an_intact_log_verifies(db_url: str, data_dir: Path, clock: FakeClock) -> None:
    await write_log(db_url, data_dir, clock)

    result = verify(db_url, SECRET, data_dir)

    assert (result.ok, result.checked, result.newest, result.problems) == (True, 6, 6, [])


async def test_an_empty_log_verifies(sqlite_url: str, data_dir: Path, clock: FakeClock) -> None:
    await write_log(sqlite_url, data_dir, clock, count=0)

    result = verify(sqlite_url, SECRET, data_dir)

    assert (result.ok, result.checked) == (True, 0)


@pytest.mark.parametrize(
    "change",
    [
        "actor = 'user:mallory'",
        "result = 'failure'",
        "detail = '{\"n\": 99}'",
        "ts_us = ts_us + 1",
        "tenant = NULL",
        f"prev_mac = '{ZEROS}'",
        f"mac = '{ZEROS}'",
    ],
)
async def test_a_modified_field_is_named(
    db_url: str, data_dir: Path, clock: FakeClock, change: str
) -> None:
    await write_log(db_url, data_dir, clock)
    sql(db_url, f"UPDATE audit_log SET {change} WHERE seq = 3")

    # One problem: record 4's link to a record that does not verify is not a second one.
    assert problems(db_url, data_dir) == ["record 3 was modified (MAC mismatch)"]


async def test_a_deleted_record_is_named(db_url: str, data_dir: Path, clock: FakeClock) -> None:
    await write_log(db_url, data_dir, clock)
    sql(db_url, "DELETE FROM audit_log WHERE seq = 3")

    assert problems(db_url, data_dir) == ["record 3 is missing (seq jumps 2 -> 4)"]


async def test_deleted_records_are_named_as_a_range(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    await write_log(sqlite_url, data_dir, clock)
    sql(sqlite_url, "DELETE FROM audit_log WHERE seq IN (1, 3, 4)")

    assert problems(sqlite_url, data_dir) == [
        "record 1 is missing (the log starts at 2)",
        "records 3 to 4 are missing (seq jumps 2 -> 5)",
    ]


async def test_swapped_records_are_out_of_order(
    db_url: str, data_dir: Path, clock: FakeClock
) -> None:
    await write_log(db_url, data_dir, clock)
    # Three steps: the primary key refuses a duplicate seq even inside one statement on SQLite.
    sql(db_url, "UPDATE audit_log SET seq = -1 WHERE seq = 3")
    sql(db_url, "UPDATE audit_log SET seq = 3 WHERE seq = 4")
    sql(db_url, "UPDATE audit_log SET seq = 4 WHERE seq = -1")

    assert problems(db_url, data_dir) == ["records 3 and 4 are out of order"]


async def test_a_renumbered_record_is_named(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    await write_log(sqlite_url, data_dir, clock)
    # Hide the deletion of record 5 by renumbering record 6 into its place.
    sql(sqlite_url, "DELETE FROM audit_log WHERE seq = 5")
    sql(sqlite_url, "UPDATE audit_log SET seq = 5 WHERE seq = 6")

    assert problems(sqlite_url, data_dir) == [
        "record 5 is record 6 renumbered",
        "the newest records after 5 were deleted (anchor says 6)",
    ]


async def test_deleted_newest_records_are_caught_by_the_anchor(
    db_url: str, data_dir: Path, clock: FakeClock
) -> None:
    await write_log(db_url, data_dir, clock)
    sql(db_url, "DELETE FROM audit_log WHERE seq >= 5")

    assert problems(db_url, data_dir) == ["the newest records after 4 were deleted (anchor says 6)"]


async def test_a_long_list_of_problems_is_cut_and_counted(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    await write_log(sqlite_url, data_dir, clock, count=211)
    sql(sqlite_url, "DELETE FROM audit_log WHERE seq % 2 = 0")  # 105 records

    found = problems(sqlite_url, data_dir)

    assert len(found) == MAX_PROBLEMS + 1
    assert found[0] == "record 2 is missing (seq jumps 1 -> 3)"
    assert found[-1] == "... and 5 more problems"


async def test_a_wrong_key_is_reported_once_not_per_record(
    db_url: str, data_dir: Path, clock: FakeClock
) -> None:
    await write_log(db_url, data_dir, clock)

    assert problems(db_url, data_dir, OTHER_SECRET) == [
        "no record verifies (6 checked): wrong key?",
        "wrong key or anchor tampered (audit.head does not verify)",
    ]


async def test_a_tampered_anchor_is_reported(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    await write_log(sqlite_url, data_dir, clock)
    anchor_file = data_dir / "audit.head"
    anchor = json.loads(anchor_file.read_text())
    # Cut the log and move the anchor back with it: the anchor's own MAC gives it away.
    sql(sqlite_url, "DELETE FROM audit_log WHERE seq >= 5")
    anchor_file.write_text(json.dumps({**anchor, "seq": 4}))

    assert problems(sqlite_url, data_dir) == [
        "wrong key or anchor tampered (audit.head does not verify)"
    ]


async def test_a_missing_anchor_is_reported(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    await write_log(sqlite_url, data_dir, clock)
    (data_dir / "audit.head").unlink()

    assert problems(sqlite_url, data_dir) == [
        "the head anchor audit.head is missing: cannot tell whether the newest records were deleted"
    ]


async def test_a_missing_database_is_tampering_when_an_anchor_remains(
    sqlite_url: str, data_dir: Path, clock: FakeClock
) -> None:
    await write_log(sqlite_url, data_dir, clock)
    remove_sqlite_database(data_dir / "audit.db")

    found = problems(sqlite_url, data_dir)

    assert len(found) == 1
    assert found[0].startswith("the audit database sqlite:///")
    assert found[0].endswith("is missing (anchor says 6)")
    assert not (data_dir / "audit.db").exists()  # verify did not create it


def test_no_log_at_all_cannot_be_verified(sqlite_url: str, data_dir: Path) -> None:
    with pytest.raises(AuditError, match="there is no audit log"):
        verify(sqlite_url, SECRET, data_dir)


async def test_verify_main_reports_and_exits_by_outcome(
    sqlite_url: str, data_dir: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = load_or_create_secret(data_dir)  # what the application does on its first start
    async with running(sqlite_url, data_dir, clock, key=secret) as audit:
        await fill(audit, 4)

    assert verify_main(data_dir) == 0  # the default database, with the install's own secret
    assert capsys.readouterr().out == (
        "audit log OK: 4 records verified (0 archived, 4 in the database), newest record 4\n"
    )

    sql(sqlite_url, "UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 2")
    assert verify_main(data_dir, sqlite_url) == 1
    out = capsys.readouterr().out
    assert out.startswith("audit log TAMPERED: problems found in 4 records checked (sqlite:///")
    assert out.endswith("\n  record 2 was modified (MAC mismatch)\n")

    (data_dir / SECRET_FILE_NAME).unlink()
    assert verify_main(data_dir) == 2
    assert "cannot read the install secret: no install secret at" in capsys.readouterr().err


def test_verify_main_cannot_read_a_missing_log(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_main(data_dir, key=SECRET) == 2
    assert "cannot read the audit log: there is no audit log" in capsys.readouterr().err
