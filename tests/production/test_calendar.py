"""Site shift calendars: shift instances in the site's time zone, with breaks, holidays and
planned down time, exact to the microsecond across daylight saving changes.

The clock changes used are the EU's (Directive 2000/84/EC, art. 2 and 3: summer time from 01:00
UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October), as the IANA tz
database gives them for Europe/Berlin: 2026-03-29 and 2026-10-25. US rules (15 U.S.C. 260a:
second Sunday of March, first Sunday of November, 02:00 local) for America/New_York.
"""

from __future__ import annotations

import itertools
import zoneinfo
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kiln.core.clock import datetime_to_us
from kiln.production.calendar import (
    BreakDef,
    CalendarDef,
    PlannedDowntimeDef,
    ShiftDef,
    ShiftInstance,
    from_pattern,
    local_day_window,
    local_to_us,
    local_week_window,
    shifts_between,
)
from kiln.production.intervals import Interval, clip, total
from kiln.production.shifts import Phase, ShiftCalendar, ShiftPattern

H = 3_600_000_000
M = 60_000_000
BERLIN = "Europe/Berlin"


def utc(*args: int) -> int:
    return datetime_to_us(datetime(*args, tzinfo=UTC))  # type: ignore[misc]


def three_shifts(timezone: str = BERLIN, **extra: object) -> CalendarDef:
    return CalendarDef(
        site="acme/plant1",
        timezone=timezone,
        shifts=(
            ShiftDef(name="early", start="06:00", end="14:00"),
            ShiftDef(name="late", start="14:00", end="22:00"),
            ShiftDef(name="night", start="22:00", end="06:00"),
        ),
        **extra,  # type: ignore[arg-type]
    )


def by_key(instances: list[ShiftInstance]) -> dict[str, ShiftInstance]:
    return {s.key: s for s in instances}


def on_day(calendar: CalendarDef, day: date) -> dict[str, ShiftInstance]:
    return by_key(shifts_between(calendar, local_day_window(calendar, day)))


# -- daylight saving -------------------------------------------------------------------------


def test_the_night_shift_lasts_7_hours_in_spring_and_9_in_autumn() -> None:
    cal = three_shifts()
    spring = on_day(cal, date(2026, 3, 29))
    # 22:00 CET = 21:00 UTC to 06:00 CEST = 04:00 UTC.
    assert spring["2026-03-28/night"].interval == Interval(
        utc(2026, 3, 28, 21), utc(2026, 3, 29, 4)
    )
    assert spring["2026-03-28/night"].interval.duration_us == 7 * H
    assert spring["2026-03-29/early"].interval == Interval(
        utc(2026, 3, 29, 4), utc(2026, 3, 29, 12)
    )
    assert spring["2026-03-29/early"].interval.duration_us == 8 * H
    autumn = on_day(cal, date(2026, 10, 25))
    # 22:00 CEST = 20:00 UTC to 06:00 CET = 05:00 UTC.
    assert autumn["2026-10-24/night"].interval == Interval(
        utc(2026, 10, 24, 20), utc(2026, 10, 25, 5)
    )
    assert autumn["2026-10-24/night"].interval.duration_us == 9 * H
    assert autumn["2026-10-25/early"].interval.duration_us == 8 * H


@pytest.mark.parametrize(
    ("day", "before", "hours"),
    [(date(2026, 3, 29), date(2026, 3, 28), 23), (date(2026, 10, 25), date(2026, 10, 24), 25)],
)
def test_a_23_and_a_25_hour_day_are_covered_exactly_by_three_shifts(
    day: date, before: date, hours: int
) -> None:
    cal = three_shifts()
    window = local_day_window(cal, day)
    assert window.duration_us == hours * H
    instances = shifts_between(cal, window)
    assert [s.key for s in instances] == [
        f"{before}/night",
        f"{day}/early",
        f"{day}/late",
        f"{day}/night",
    ]
    # Clipped to the local day, the shifts fill it: no gap, no overlap.
    assert total(clip([s.interval for s in instances], window)) == hours * H
    # The three shifts that start on the day before the change: 8 + 8 + 7 or 8 + 8 + 9.
    starting = shifts_between(cal, local_day_window(cal, before))
    assert sum(s.interval.duration_us for s in starting if s.day == before) == hours * H


def test_a_shift_at_a_nonexistent_time_starts_when_the_gap_ends() -> None:
    cal = CalendarDef(
        site="acme/plant1",
        timezone=BERLIN,
        shifts=(ShiftDef(name="odd", start="02:30", end="10:30"),),
    )
    spring = on_day(cal, date(2026, 3, 29))["2026-03-29/odd"]
    # 02:30 does not exist that night: 03:00 CEST, 01:00 UTC. 10:30 CEST is 08:30 UTC.
    assert spring.interval == Interval(utc(2026, 3, 29, 1), utc(2026, 3, 29, 8, 30))
    autumn = on_day(cal, date(2026, 10, 25))["2026-10-25/odd"]
    # 02:30 occurs twice: the first time (fold=0), still CEST, 00:30 UTC; 10:30 CET = 09:30 UTC.
    assert autumn.interval == Interval(utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 9, 30))
    assert autumn.interval.duration_us == 9 * H


def test_local_to_us_rules_for_gaps_and_repeats() -> None:
    zone = zoneinfo.ZoneInfo(BERLIN)
    assert local_to_us(datetime(2026, 3, 29, 2, 0), zone) == utc(2026, 3, 29, 1)
    assert local_to_us(datetime(2026, 3, 29, 2, 59, 59, 999_999), zone) == utc(2026, 3, 29, 1)
    assert local_to_us(datetime(2026, 3, 29, 3, 0), zone) == utc(2026, 3, 29, 1)
    assert local_to_us(datetime(2026, 3, 29, 1, 59), zone) == utc(2026, 3, 29, 0, 59)
    assert local_to_us(datetime(2026, 10, 25, 2, 0), zone) == utc(2026, 10, 25, 0)
    assert local_to_us(datetime(2026, 10, 25, 2, 0, fold=1), zone) == utc(2026, 10, 25, 0)
    assert local_to_us(datetime(2026, 10, 25, 3, 0), zone) == utc(2026, 10, 25, 2)


def test_a_24_hour_shift_follows_the_local_clock() -> None:
    cal = CalendarDef(
        site="acme/plant1",
        timezone=BERLIN,
        shifts=(ShiftDef(name="all", start="06:00", end="06:00"),),
    )
    found = shifts_between(cal, local_week_window(cal, date(2026, 3, 29)))
    lengths = {s.key: s.interval.duration_us for s in found}
    assert lengths["2026-03-28/all"] == 23 * H
    assert lengths["2026-03-29/all"] == 24 * H
    for a, b in itertools.pairwise(found):
        assert a.interval.end_us == b.interval.start_us


@settings(max_examples=60, deadline=None)
@given(
    day=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)),
    zone=st.sampled_from([BERLIN, "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]),
)
def test_three_shifts_always_fill_the_local_day(day: date, zone: str) -> None:
    cal = three_shifts(zone)
    window = local_day_window(cal, day)
    assert window.duration_us in (23 * H, 24 * H, 25 * H)
    found = shifts_between(cal, window)
    assert total(clip([s.interval for s in found], window)) == window.duration_us
    for a, b in itertools.pairwise(found):
        assert a.interval.end_us == b.interval.start_us


def test_day_and_week_windows() -> None:
    cal = three_shifts()
    assert local_day_window(cal, date(2026, 3, 2)) == Interval(
        utc(2026, 3, 1, 23), utc(2026, 3, 2, 23)
    )
    # The ISO week of Sunday 29 March 2026: Monday 23 March 00:00 CET to Monday 30 March 00:00
    # CEST, one hour short.
    week = local_week_window(cal, date(2026, 3, 29))
    assert week == Interval(utc(2026, 3, 22, 23), utc(2026, 3, 29, 22))
    assert week.duration_us == (7 * 24 - 1) * H
    assert local_week_window(cal, date(2026, 3, 23)) == week


# -- days, holidays, windows -----------------------------------------------------------------


def test_shifts_start_only_on_their_days_and_not_on_holidays() -> None:
    cal = CalendarDef(
        site="acme/plant1",
        timezone="UTC",
        shifts=(
            ShiftDef(name="day", start="08:00", end="16:00", days=(1, 2, 3, 4, 5)),
            ShiftDef(name="night", start="22:00", end="06:00", days=(5,)),
        ),
        holidays=(date(2026, 3, 4),),  # a Wednesday
    )
    found = shifts_between(cal, Interval(utc(2026, 3, 2), utc(2026, 3, 9)))
    assert [s.key for s in found] == [
        "2026-03-02/day",
        "2026-03-03/day",
        "2026-03-05/day",
        "2026-03-06/day",
        "2026-03-06/night",  # Friday's night shift, into Saturday
    ]
    assert found[-1].interval == Interval(utc(2026, 3, 6, 22), utc(2026, 3, 7, 6))


def test_a_night_shift_from_the_day_before_runs_into_a_holiday() -> None:
    cal = three_shifts("UTC", holidays=(date(2026, 12, 25),))
    found = on_day(cal, date(2026, 12, 25))
    assert list(found) == ["2026-12-24/night"]


def test_instances_overlapping_the_window_are_whole_and_meeting_ones_are_not_included() -> None:
    cal = three_shifts("UTC")
    found = shifts_between(cal, Interval(utc(2026, 3, 2, 13), utc(2026, 3, 2, 14)))
    assert [(s.key, s.interval) for s in found] == [
        ("2026-03-02/early", Interval(utc(2026, 3, 2, 6), utc(2026, 3, 2, 14)))
    ]
    found = shifts_between(cal, Interval(utc(2026, 3, 2, 13), utc(2026, 3, 2, 14, 0, 1)))
    assert [s.key for s in found] == ["2026-03-02/early", "2026-03-02/late"]
    assert shifts_between(cal, Interval(utc(2026, 3, 2, 13), utc(2026, 3, 2, 13))) == []


# -- breaks and planned down time ------------------------------------------------------------


def test_breaks_are_planned_time_at_their_local_clock_time() -> None:
    cal = CalendarDef(
        site="acme/plant1",
        timezone=BERLIN,
        shifts=(
            ShiftDef(
                name="night",
                start="22:00",
                end="06:00",
                breaks=(
                    BreakDef(name="meal", start="02:00", minutes=30),
                    BreakDef(start="05:00", minutes=15),
                ),
            ),
        ),
    )
    night = on_day(cal, date(2026, 3, 29))["2026-03-28/night"]
    # 02:00 does not exist that night: the meal starts at 03:00 CEST and lasts 30 minutes.
    assert night.planned == (
        (Interval(utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30)), "planned_stop", "meal"),
        (Interval(utc(2026, 3, 29, 3), utc(2026, 3, 29, 3, 15)), "planned_stop", "break"),
    )
    assert night.planned_down_time_us == 45 * M
    assert night.key == "2026-03-28/night"


def test_breaks_and_planned_downtime_count_once_with_maintenance_winning() -> None:
    cal = CalendarDef(
        site="acme/plant1",
        timezone="UTC",
        shifts=(
            ShiftDef(
                name="early",
                start="06:00",
                end="14:00",
                breaks=(BreakDef(name="lunch", start="10:00", minutes=30),),
            ),
        ),
        planned=(
            PlannedDowntimeDef(
                start=datetime(2026, 3, 2, 10, 15),
                end=datetime(2026, 3, 2, 11, 0),
                category="planned_maintenance",
                reason="lubrication",
            ),
            PlannedDowntimeDef(  # wholly inside the maintenance
                start=datetime(2026, 3, 2, 10, 20), end=datetime(2026, 3, 2, 10, 40), reason="x"
            ),
        ),
    )
    (early,) = shifts_between(cal, Interval(utc(2026, 3, 2, 6), utc(2026, 3, 2, 7)))
    assert early.planned == (
        (Interval(utc(2026, 3, 2, 10), utc(2026, 3, 2, 10, 15)), "planned_stop", "lunch"),
        (
            Interval(utc(2026, 3, 2, 10, 15), utc(2026, 3, 2, 11)),
            "planned_maintenance",
            "lubrication",
        ),
    )
    assert early.planned_down_time_us == 60 * M  # not 30 + 45 + 20
    assert early.planned_maintenance_time_us == 45 * M


def test_planned_downtime_applies_to_listed_assets_and_below_and_only_inside_shifts() -> None:
    zone = zoneinfo.ZoneInfo(BERLIN)
    cal = CalendarDef(
        site="acme/plant1",
        timezone=BERLIN,
        shifts=(ShiftDef(name="early", start="06:00", end="14:00"),),
        planned=(
            # Naive: local time, 05:00-07:00 CET; only 06:00-07:00 lies in the shift.
            PlannedDowntimeDef(
                start=datetime(2026, 3, 2, 5),
                end=datetime(2026, 3, 2, 7),
                reason="site meeting",
            ),
            # Aware: as given, 11:00-12:00 UTC = 12:00-13:00 CET.
            PlannedDowntimeDef(
                start=datetime(2026, 3, 2, 11, tzinfo=UTC),
                end=datetime(2026, 3, 2, 12, tzinfo=UTC),
                category="planned_maintenance",
                reason="line 1 service",
                assets=("acme/plant1/line1",),
            ),
            # Outside every shift: no planned time there to take it from.
            PlannedDowntimeDef(
                start=datetime(2026, 3, 2, 20, tzinfo=zone),
                end=datetime(2026, 3, 2, 22, tzinfo=zone),
                reason="evening",
            ),
        ),
    )
    window = Interval(utc(2026, 3, 2, 5), utc(2026, 3, 2, 6))
    meeting = (Interval(utc(2026, 3, 2, 5), utc(2026, 3, 2, 6)), "planned_stop", "site meeting")
    service = (
        Interval(utc(2026, 3, 2, 11), utc(2026, 3, 2, 12)),
        "planned_maintenance",
        "line 1 service",
    )
    (mill,) = shifts_between(cal, window, asset="acme/plant1/line1/mill1")
    assert mill.planned == (meeting, service)
    (line,) = shifts_between(cal, window, asset="acme/plant1/line1")
    assert line.planned == (meeting, service)
    (other,) = shifts_between(cal, window, asset="acme/plant1/line10")  # not below line1
    assert other.planned == (meeting,)
    (site,) = shifts_between(cal, window)
    assert site.planned == (meeting,)


# -- validation ------------------------------------------------------------------------------


def test_overlapping_shifts_are_refused_naming_both_and_when() -> None:
    with pytest.raises(
        ValidationError,
        match=r"'early' \(06:00-14:00\) and 'mid' \(13:00-18:00\) overlap on Wednesday from 13:00 for 60 min",
    ):
        CalendarDef(
            site="acme/plant1",
            timezone="UTC",
            shifts=(
                ShiftDef(name="early", start="06:00", end="14:00"),
                ShiftDef(name="mid", start="13:00", end="18:00", days=(3,)),
            ),
        )
    # Sunday's night shift runs into Monday's early start.
    with pytest.raises(ValidationError, match="overlap on Monday from 05:00 for 60 min"):
        CalendarDef(
            site="acme/plant1",
            timezone="UTC",
            shifts=(
                ShiftDef(name="night", start="22:00", end="06:00", days=(7,)),
                ShiftDef(name="early", start="05:00", end="13:00", days=(1,)),
            ),
        )
    # Meeting is not overlapping; nor are the same hours on different days.
    CalendarDef(
        site="acme/plant1",
        timezone="UTC",
        shifts=(
            ShiftDef(name="night", start="22:00", end="06:00", days=(7,)),
            ShiftDef(name="early", start="06:00", end="14:00", days=(1,)),
            ShiftDef(name="weekend", start="06:00", end="14:00", days=(6, 7)),
        ),
    )


def test_validation_errors_say_how_to_fix() -> None:
    with pytest.raises(ValidationError, match="use an IANA name such as 'Europe/Berlin'"):
        three_shifts("Mars/Olympus")
    with pytest.raises(ValidationError, match="not HH:MM on the 24-hour local clock"):
        ShiftDef(name="x", start="6:00", end="14:00")
    with pytest.raises(ValidationError, match="not HH:MM"):
        ShiftDef(name="x", start="24:00", end="14:00")
    with pytest.raises(ValidationError, match="does not lie within shift 'x' \\(06:00-14:00\\)"):
        ShiftDef(
            name="x", start="06:00", end="14:00", breaks=(BreakDef(start="13:45", minutes=30),)
        )
    with pytest.raises(ValidationError, match="does not lie within"):
        ShiftDef(name="x", start="06:00", end="14:00", breaks=(BreakDef(start="05:50", minutes=5),))
    ShiftDef(name="x", start="06:00", end="14:00", breaks=(BreakDef(start="13:30", minutes=30),))
    with pytest.raises(ValidationError, match="greater than 0"):
        BreakDef(start="10:00", minutes=0)
    with pytest.raises(ValidationError, match="ISO weekday numbers 1-7"):
        ShiftDef(name="x", start="06:00", end="14:00", days=(0,))
    with pytest.raises(ValidationError, match="without '/'"):
        ShiftDef(name="a/b", start="06:00", end="14:00")
    with pytest.raises(ValidationError, match="give the earlier instant as the start"):
        PlannedDowntimeDef(start=datetime(2026, 3, 2, 7), end=datetime(2026, 3, 2, 6))
    with pytest.raises(
        ValidationError, match="both in the site's local time, or both with an offset"
    ):
        PlannedDowntimeDef(start=datetime(2026, 3, 2, 6), end=datetime(2026, 3, 2, 7, tzinfo=UTC))
    with pytest.raises(ValidationError, match="two shifts named 'x' start on Monday"):
        CalendarDef(
            site="acme/plant1",
            timezone="UTC",
            shifts=(
                ShiftDef(name="x", start="06:00", end="08:00", days=(1,)),
                ShiftDef(name="x", start="10:00", end="12:00", days=(1, 2)),
            ),
        )
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ShiftDef(name="x", start="06:00", end="14:00", colour="red")  # type: ignore[call-arg]


def test_a_calendar_reads_from_plant_file_json() -> None:
    cal = CalendarDef.model_validate_json(
        """{"site": "acme/plant1", "timezone": "Europe/Berlin",
            "shifts": [{"name": "early", "start": "06:00", "end": "14:00", "days": [5, 1, 1],
                        "breaks": [{"start": "10:00", "minutes": 30}]}],
            "holidays": ["2026-12-25", "2026-01-01"],
            "planned": [{"start": "2026-03-02T06:00:00", "end": "2026-03-02T06:30:00"}]}"""
    )
    assert cal.shifts[0].days == (1, 5)
    assert cal.holidays == (date(2026, 1, 1), date(2026, 12, 25))
    assert cal.planned[0].start.tzinfo is None


# -- the virtual factory's pattern -----------------------------------------------------------


def _phase(instances: list[ShiftInstance], pattern: ShiftPattern, t: int) -> tuple[Phase, int]:
    for inst in instances:
        if inst.interval.start_us <= t < inst.interval.end_us:
            if any(iv.start_us <= t < iv.end_us for iv, _, _ in inst.planned):
                return Phase.BREAK, inst.interval.start_us
            if t - inst.interval.start_us < pattern.changeover_minutes * M:
                return Phase.CHANGEOVER, inst.interval.start_us
            return Phase.PRODUCTION, inst.interval.start_us
    return Phase.NO_SHIFT, -1


@pytest.mark.parametrize(
    ("pattern", "first"),
    [
        (ShiftPattern(timezone=BERLIN), datetime(2026, 3, 26, tzinfo=UTC)),
        (ShiftPattern(timezone=BERLIN), datetime(2026, 10, 22, tzinfo=UTC)),
        (
            ShiftPattern(
                starts=(7, 19),
                changeover_minutes=20,
                break_after_minutes=300,
                break_minutes=45,
                weekdays=(1, 2, 3, 4, 5),
                timezone="America/New_York",
            ),
            datetime(2026, 3, 5, tzinfo=UTC),
        ),
        (ShiftPattern(starts=(6,), weekdays=(1, 3, 5, 6)), datetime(2026, 3, 5, tzinfo=UTC)),
    ],
)
def test_from_pattern_agrees_with_the_pattern_at_every_sampled_instant(
    pattern: ShiftPattern, first: datetime
) -> None:
    cal = from_pattern("acme/plant1", pattern)
    assert all(s.breaks[0].category == "planned_stop" for s in cal.shifts)
    start = datetime_to_us(first)
    window = Interval(start, start + 6 * 24 * H)
    instances = shifts_between(cal, window)
    names = {s.interval.start_us: s.name for s in instances}
    reference = ShiftCalendar(pattern)
    step = 7 * M + 13_000_000  # not a divisor of an hour: lands on many different minutes
    for t in range(window.start_us, window.end_us, step):
        slot = reference.at(t)
        phase, shift_start = _phase(instances, pattern, t)
        assert phase is slot.phase, (us_iso(t), phase, slot)
        if phase is not Phase.NO_SHIFT:
            assert shift_start == slot.shift_start_us
            assert names[shift_start] == f"shift{slot.shift + 1}"


def us_iso(t: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=t)).isoformat()


def test_from_pattern_keeps_the_changeover_out_of_planned_time() -> None:
    cal = from_pattern("acme/plant1", ShiftPattern(changeover_minutes=15, break_minutes=0))
    assert all(s.breaks == () for s in cal.shifts)
    (early,) = shifts_between(cal, Interval(utc(2026, 3, 2, 7), utc(2026, 3, 2, 8)))
    assert early.planned == ()
    assert [(s.name, s.start, s.end) for s in cal.shifts] == [
        ("shift1", "06:00", "14:00"),
        ("shift2", "14:00", "22:00"),
        ("shift3", "22:00", "06:00"),
    ]


def test_from_pattern_refuses_a_break_off_the_minute() -> None:
    with pytest.raises(ValueError, match="not a whole number of minutes"):
        from_pattern("acme/plant1", ShiftPattern(break_after_minutes=240.5))


def test_where_the_clock_changes_before_the_break_the_calendar_keeps_the_wall_clock_time() -> None:
    # The documented difference: the pattern counts 300 elapsed minutes from 22:00 CET (04:00
    # CEST), the calendar starts the break at 03:00 on the wall clock (CEST).
    pattern = ShiftPattern(timezone=BERLIN, break_after_minutes=300)
    cal = from_pattern("acme/plant1", pattern)
    night = on_day(cal, date(2026, 3, 29))["2026-03-28/shift3"]
    assert night.planned[0][0] == Interval(utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30))
    assert ShiftCalendar(pattern).at(utc(2026, 3, 29, 2)).phase is Phase.BREAK
