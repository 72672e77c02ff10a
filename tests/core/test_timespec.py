from __future__ import annotations

import pytest

from kiln.core.timespec import parse_duration_us, parse_time_us

NOW = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "us"),
    [("1s", 1_000_000), ("500ms", 500_000), ("1m", 60_000_000), ("1.5h", 5_400_000_000),
     ("7d", 604_800_000_000), ("2w", 1_209_600_000_000)],
)  # fmt: skip
def test_durations(text: str, us: int) -> None:
    assert parse_duration_us(text) == us


@pytest.mark.parametrize("text", ["", "1", "m", "-1m", "0s", "1y", "1 m"])
def test_bad_durations_explain(text: str) -> None:
    with pytest.raises(ValueError, match="interval"):
        parse_duration_us(text)


@pytest.mark.parametrize(
    ("text", "us"),
    [
        ("now", NOW),
        ("-1h", NOW - 3_600_000_000),
        ("+5m", NOW + 300_000_000),
        ("2026-01-01T01:00:00Z", NOW + 3_600_000_000),
        ("2026-01-01T01:00:00+01:00", NOW),
        ("1767225600000", NOW),
        ("2026-01-01T00:00:00.000001Z", NOW + 1),
    ],
)
def test_times(text: str, us: int) -> None:
    assert parse_time_us(text, NOW) == us


def test_naive_time_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="no time zone: add 'Z'"):
        parse_time_us("2026-01-01T00:00:00", NOW)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time_us("yesterday", NOW)
