"""FactorySpec: defaults, validation messages, and sizing by tag count."""

from __future__ import annotations

import pydantic
import pytest

from kiln.sim import FactorySpec, ShiftSpec


def test_default_plant_is_big_enough_for_the_demo() -> None:
    spec = FactorySpec()
    # The demo promises at least 50 tags updating at 1 Hz or faster.
    assert spec.tag_count >= 50
    assert spec.rate_hz >= 1.0
    assert spec.shifts.starts == (6, 14, 22)
    assert spec.shifts.paces == (1.0, 1.0, 0.85)  # the night shift runs slower


def test_spec_is_frozen_and_rejects_unknown_fields() -> None:
    spec = FactorySpec()
    with pytest.raises(pydantic.ValidationError):
        spec.seed = 1  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="machine_lines"):
        FactorySpec.model_validate({"machine_lines": 2})


def test_shift_hours_shorthand_from_yaml() -> None:
    spec = FactorySpec.model_validate({"shifts": [7, 19]})
    assert spec.shifts.starts == (7, 19)
    assert spec.shifts.lengths_minutes == (720.0, 720.0)
    assert spec.shifts.paces == (1.0, 1.0)  # 19:00 is not a night-shift start


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rate_hz": 0}, "greater than 0"),
        ({"rate_hz": 500}, "less than or equal to 100"),
        ({"machining_lines": 0, "packaging_lines": 0}, "no lines"),
        ({"machining_lines": -1}, "greater than or equal to 0"),
        ({"enterprise": "acme/corp"}, "pattern"),
        ({"shifts": [14, 6]}, "ascending"),
        ({"shifts": [6, 25]}, "0-23"),
        ({"shifts": {"starts": [6, 14, 22], "pace": [1.0, 0.9]}}, "one speed factor per shift"),
        ({"shifts": {"starts": [6, 8]}}, "shortest shift lasts 120 min"),
        ({"shifts": {"timezone": "Mars/Olympus"}}, "IANA"),
        ({"shifts": {"weekdays": [0, 1]}}, "1-7"),
        ({"machining_lines": 30_000, "machines_per_line": 10}, "limit is 1000000"),
        ({"faults": {"jam_per_hour": -1}}, "greater than or equal to 0"),
    ],
)
def test_invalid_specs_say_what_is_wrong(data: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        FactorySpec.model_validate(data)


def test_break_must_follow_changeover() -> None:
    with pytest.raises(pydantic.ValidationError, match="after the changeover"):
        ShiftSpec(changeover_minutes=30, break_after_minutes=10)


@pytest.mark.parametrize("n", [500, 1_000, 4_321, 20_000, 100_000])
def test_for_tag_count_lands_within_five_percent(n: int) -> None:
    spec = FactorySpec.for_tag_count(n)
    assert abs(spec.tag_count - n) <= 0.05 * n
    # A realistic mix, not all of one kind of line.
    assert spec.machining_lines > 0
    assert spec.packaging_lines > 0


def test_for_tag_count_keeps_other_fields_and_owns_line_counts() -> None:
    spec = FactorySpec.for_tag_count(10_000, seed=7, rate_hz=2.0, machines_per_line=10)
    assert (spec.seed, spec.rate_hz, spec.machines_per_line) == (7, 2.0, 10)
    assert abs(spec.tag_count - 10_000) <= 500
    with pytest.raises(TypeError, match="machining_lines"):
        FactorySpec.for_tag_count(1_000, machining_lines=3)
    with pytest.raises(ValueError, match="at least 1"):
        FactorySpec.for_tag_count(0)


def test_for_tag_count_of_a_tiny_plant_still_builds_a_line() -> None:
    spec = FactorySpec.for_tag_count(5)
    assert spec.machining_lines + spec.packaging_lines == 1
