"""The one rule set every ingest path applies (kiln.core.admission)."""

from __future__ import annotations

import math

import pytest

from kiln.core.admission import TimeWindow, value_problem
from kiln.core.quality import Quality

NOW = 1_800_000_000_000_000  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    ("ts_us", "refused"),
    [
        (NOW, False),
        (NOW + 600_000_000, False),  # exactly at the edge of the window
        (NOW + 600_000_001, True),
        (0, False),  # the epoch itself
        (-1, True),
        (2**63 - 1, True),  # what int64 max in a bulk upload is
        (-(2**63), True),
        (4_070_908_800_000_000, True),  # 2099-01-01, the pinning point
    ],
)
def test_window_bounds(ts_us: int, refused: bool) -> None:
    assert (TimeWindow.at(NOW, 600).problem(ts_us) is not None) is refused


def test_window_messages_name_the_time_and_the_fix() -> None:
    window = TimeWindow.at(NOW, 600)
    ahead = window.problem(4_070_908_800_000_000)
    assert ahead is not None
    assert "2099-01-01T00:00:00Z" in ahead and "ingest.max_future_s" in ahead
    before = window.problem(-62_135_596_800_000_000)  # 0001-01-01
    assert before is not None and "0001-01-01" in before and "1970" in before
    # Beyond what datetime can show, the number itself is named.
    extreme = window.problem(2**63 - 1)
    assert extreme is not None and str(2**63 - 1) in extreme


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_only_with_bad_quality(value: float) -> None:
    assert value_problem(value, int(Quality.GOOD)) is not None
    assert value_problem(value, int(Quality.UNCERTAIN)) is not None
    assert value_problem(value, int(Quality.BAD_SENSOR_FAILURE)) is None


@pytest.mark.parametrize("value", [0.0, -1.5, 1e308, 7, True, "text"])
def test_ordinary_values_pass(value: object) -> None:
    assert value_problem(value, int(Quality.GOOD)) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("x" * 4097, "4096 characters"),
        (2**63, "64 bits"),
        (-(2**63) - 1, "64 bits"),
        (99999999999999999999999, "64 bits"),
    ],
)
def test_text_length_and_integer_range(value: object, fragment: str) -> None:
    problem = value_problem(value, int(Quality.GOOD))
    assert problem is not None and fragment in problem
    assert value_problem("x" * 4096, int(Quality.GOOD)) is None
    assert value_problem(2**63 - 1, int(Quality.GOOD)) is None
