"""Exports of audit records for auditors: JSON lines (exact) and CSV (for spreadsheets).

Both carry each record's chain MACs, so an export can be checked against the key later. Both
are generators over records the caller already bounded (`AuditLog.query` has a limit).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from kiln.security.audit.record import AuditRecord

CSV_COLUMNS = (
    "seq",
    "time",
    "ts_us",
    "actor",
    "source",
    "category",
    "action",
    "target",
    "result",
    "tenant",
    "detail",
    "prev_mac",
    "mac",
)

# A spreadsheet runs a cell that starts with one of these as a formula; actor and target can
# come from an attacker (the user name of a failed login), so such cells get a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_jsonl(records: Iterable[AuditRecord]) -> Iterator[str]:
    """One JSON object per record and line: the stored fields plus `time` in ISO 8601."""
    for record in records:
        yield json.dumps(_exported(record), sort_keys=True, ensure_ascii=False) + "\n"


def export_csv(records: Iterable[AuditRecord]) -> Iterator[str]:
    """A header line, then one CSV line per record; `detail` is a JSON cell.

    Text cells that a spreadsheet would take for a formula are prefixed with "'"; the JSON
    lines export is the exact one.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(cells: Iterable[Any]) -> str:
        writer.writerow(cells)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(CSV_COLUMNS)
    for record in records:
        data = _exported(record)
        data["detail"] = json.dumps(record.detail, sort_keys=True, ensure_ascii=False)
        yield line(_cell(data[column]) for column in CSV_COLUMNS)


def _exported(record: AuditRecord) -> dict[str, Any]:
    return {**record.to_dict(), "time": record.time.isoformat()}


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value
