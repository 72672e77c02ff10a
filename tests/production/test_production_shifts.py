"""The shift calendar: which phase an instant is in, in the plant's local time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from kiln.core.clock import datetime_to_us
from kiln.production.shifts import Phase, ShiftCalendar, ShiftPattern
from kiln.production.states import FAULT_REASONS, REASON_NAMES, STATE_NAMES, MachineState


def us(*args: int, tz: object = UTC) -> int:
    return datetime_to_us(datetime(*args, tzinfo=tz))  # type: ignore[arg-type, misc]


def test_each_shift_opens_with_a_changeover_and_has_one_break() -> None:
    calendar = ShiftCalendar(ShiftPattern())  # 6, 14, 22; 15 min changeover; break 4 h in
    assert calendar.at(us(2026, 3, 2, 6, 0)).phase is Phase.CHANGEOVER
    assert calendar.at(us(2026, 3, 2, 6, 14, 59)).phase is Phase.CHANGEOVER
    assert calendar.at(us(2026, 3, 2, 6, 15)).phase is Phase.PRODUCTION
    assert calendar.at(us(2026, 3, 2, 10, 0)).phase is Phase.BREAK
    assert calendar.at(us(2026, 3, 2, 10, 30)).phase is Phase.PRODUCTION
    slot = calendar.at(us(2026, 3, 2, 13, 59, 59))
    assert (slot.shift, slot.shift_start_us) == (0, us(2026, 3, 2, 6, 0))


def test_before_the_first_start_the_night_shift_of_yesterday_runs_on() -> None:
    calendar = ShiftCalendar(ShiftPattern())
    slot = calendar.at(us(2026, 3, 3, 3, 0))
    assert (slot.phase, slot.shift, slot.shift_start_us) == (
        Phase.PRODUCTION,
        2,
        us(2026, 3, 2, 22, 0),
    )
    # Its break: 240 minutes after 22:00, for 30 minutes.
    assert calendar.at(us(2026, 3, 3, 2, 10)).phase is Phase.BREAK
    assert calendar.at(us(2026, 3, 3, 2, 30)).phase is Phase.PRODUCTION


def test_a_shift_belongs_to_the_day_it_starts_on() -> None:
    # Monday to Friday: Friday's night shift runs into Saturday, Saturday has none.
    calendar = ShiftCalendar(ShiftPattern(weekdays=(1, 2, 3, 4, 5)))
    assert calendar.at(us(2026, 3, 7, 3, 0)).phase is Phase.PRODUCTION  # Saturday 03:00
    assert calendar.at(us(2026, 3, 7, 12, 0)).phase is Phase.NO_SHIFT
    assert calendar.at(us(2026, 3, 8, 23, 0)).phase is Phase.NO_SHIFT  # Sunday night


def test_shifts_follow_the_local_clock_across_daylight_saving() -> None:
    berlin = "Europe/Berlin"
    calendar = ShiftCalendar(ShiftPattern(timezone=berlin))
    # 29 March 2026: clocks go from 02:00 to 03:00 CET -> CEST. The 06:00 shift starts at
    # 04:00 UTC that day, at 05:00 UTC the day before.
    assert calendar.at(us(2026, 3, 28, 5, 0)).shift_start_us == us(2026, 3, 28, 5, 0)
    slot = calendar.at(us(2026, 3, 29, 4, 0))
    assert (slot.phase, slot.shift, slot.shift_start_us) == (
        Phase.CHANGEOVER,
        0,
        us(2026, 3, 29, 4, 0),
    )
    # The night shift that spans the change lasts 7 hours of real time, its break still
    # 240 minutes after its start.
    night = us(2026, 3, 28, 21, 0)  # 22:00 CET
    assert calendar.at(night).shift_start_us == night
    assert calendar.at(night + 240 * 60_000_000).phase is Phase.BREAK


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"starts": ()}, "at least one shift start hour"),
        ({"starts": (14, 6)}, "ascending and distinct"),
        ({"starts": (24,)}, "0-23"),
        ({"weekdays": (0,)}, "ISO weekday numbers"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"starts": (6, 7), "break_minutes": 30}, "shortest shift lasts 60 min"),
        ({"changeover_minutes": 60, "break_after_minutes": 30}, "after the changeover ends"),
    ],
)
def test_a_pattern_that_cannot_work_is_refused_with_the_reason(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ShiftPattern.model_validate(fields)


def test_state_and_reason_names_cover_every_code() -> None:
    assert STATE_NAMES[int(MachineState.DOWN)] == "down"
    assert all(REASON_NAMES[int(r)] for r in FAULT_REASONS)
    assert len(STATE_NAMES) == len(MachineState)
