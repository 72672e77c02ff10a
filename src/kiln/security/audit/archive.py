"""Archive segments: the oldest records moved out of the database into JSON-lines files.

A segment `<first>-<last>.jsonl` holds records first..last, one stored record per line (the
shape of `AuditRecord.to_dict()`) with its chain MACs, so `verify` checks archived and live
records as one chain. A segment is complete on disk (fsynced, renamed into place) before its
records leave the database; a crash in between leaves them in both, which `verify` accepts
when they agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.core.files import atomic_write

ARCHIVE_DIR = "audit-archive"
_NAME = re.compile(r"(\d+)-(\d+)\.jsonl")
_DIGITS = 10  # names sort by seq in a directory listing up to ten billion records


@dataclass(frozen=True, slots=True)
class Segment:
    first: int
    last: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def archive_dir(data_dir: Path) -> Path:
    return data_dir / ARCHIVE_DIR


def segment_name(first: int, last: int) -> str:
    return f"{first:0{_DIGITS}d}-{last:0{_DIGITS}d}.jsonl"


def write_segment(directory: Path, rows: Sequence[Mapping[str, Any]]) -> Segment:
    """Write `rows` (stored records as `AuditRecord.to_dict()` gives them, ascending seq) as one
    segment, durably; returns it. Rows are written as stored, even one that would not verify:
    archiving must carry evidence of tampering along, not launder or lose it."""
    if not rows:
        raise ValueError("an archive segment needs at least one record")
    directory.mkdir(parents=True, exist_ok=True)
    first, last = int(rows[0]["seq"]), int(rows[-1]["seq"])
    lines = [json.dumps(dict(row), sort_keys=True, ensure_ascii=True) for row in rows]
    path = directory / segment_name(first, last)
    atomic_write(path, ("\n".join(lines) + "\n").encode("ascii"))
    return Segment(first, last, path)


def list_segments(directory: Path) -> list[Segment]:
    """The segments in `directory`, by first seq; files with other names are not segments."""
    if not directory.is_dir():
        return []
    segments = []
    for path in directory.iterdir():
        match = _NAME.fullmatch(path.name)
        if match and path.is_file():
            segments.append(Segment(int(match[1]), int(match[2]), path))
    return sorted(segments, key=lambda s: (s.first, s.last))


def read_segment(segment: Segment) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line number, parsed line) for each non-empty line; None for a line that is no JSON object."""
    with open(segment.path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = None
            yield number, parsed if isinstance(parsed, dict) else None
