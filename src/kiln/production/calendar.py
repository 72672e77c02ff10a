"""Site shift calendars as plant files and the API give them: shifts with breaks, holidays and
planned down time in the site's own time zone, and the shift instances they yield over a window
of UTC time. Pure: no clock, no I/O.

`kiln.production.shifts` holds the virtual factory's fixed pattern (start hours, one changeover,
one break); a `CalendarDef` is what a real site writes down, and `from_pattern` turns the former
into the latter so both reach the OEE engine the same way.

Local wall-clock times become UTC instants with `zoneinfo`, by two rules stated once here and
used for every shift start, shift end, break start, day and week edge, and naive planned
down-time instant:

- a wall-clock time that does not exist (02:30 on the day clocks spring forward) is the first
  valid instant after the gap (03:00 in Europe/Berlin);
- a wall-clock time that occurs twice (02:30 on the day clocks fall back) is the first
  occurrence (`fold=0`, still summer time).

Both rules map later wall-clock times to later or equal instants, so shifts that meet on the
wall clock meet as instants too: a day has no gap and no overlap between its shifts, whether it
lasts 23, 24 or 25 hours. A night shift 22:00-06:00 in Europe/Berlin lasts 7 h on the night the
clocks go forward and 9 h on the night they go back.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiln.core.clock import datetime_to_us, us_to_datetime
from kiln.production.intervals import Interval, StopRecord, resolve_overlaps
from kiln.production.shifts import ShiftPattern

PlannedCategory = Literal["planned_stop", "planned_maintenance"]

MINUTES_PER_DAY = 24 * 60
_MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
_US_PER_MINUTE = 60_000_000
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ALL_DAYS = (1, 2, 3, 4, 5, 6, 7)
# Where planned down time overlaps, the higher rank names the time: maintenance is the part of
# PDOT that ISO 22400-2 reports apart, so it must not vanish under a break.
_RANK: dict[str, int] = {"planned_stop": 0, "planned_maintenance": 1}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_hhmm(text: str) -> str:
    if not _HHMM.fullmatch(text):
        raise ValueError(
            f"time {text!r} is not HH:MM on the 24-hour local clock: write e.g. '06:00' or '22:30'"
        )
    return text


def _minute_of_day(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def _check_name(name: str, what: str) -> str:
    # A shift's name ends up in ShiftInstance.key after a '/', so it must not hold one.
    if not name or name != name.strip() or "/" in name or len(name) > 64:
        raise ValueError(
            f"{what} name {name!r} must be 1-64 characters without '/' and without leading or "
            "trailing spaces, e.g. 'night'"
        )
    return name


class BreakDef(_Frozen):
    """A break in a shift: it starts at a local wall-clock time and lasts `minutes` of elapsed
    time (a 30-minute break on the night the clocks change is still 30 minutes)."""

    name: str = "break"
    start: str = Field(description="local start time, HH:MM")
    minutes: float = Field(gt=0, description="length in minutes")
    category: PlannedCategory = "planned_stop"

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _check_name(name, "break")

    @field_validator("start")
    @classmethod
    def _start(cls, text: str) -> str:
        return _check_hhmm(text)


class ShiftDef(_Frozen):
    """A shift from `start` to `end` local time on the ISO weekdays in `days` (1 = Monday).

    `days` are the days the shift *starts* on. An `end` at or before `start` is on the next day
    (22:00-06:00 is a night shift); `end == start` is a 24-hour shift.
    """

    name: str
    start: str = Field(description="local start time, HH:MM")
    end: str = Field(description="local end time, HH:MM; at or before start: the next day")
    days: tuple[int, ...] = Field(
        default=_ALL_DAYS, description="ISO weekdays the shift starts on (1 = Monday)"
    )
    breaks: tuple[BreakDef, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _check_name(name, "shift")

    @field_validator("start", "end")
    @classmethod
    def _time(cls, text: str) -> str:
        return _check_hhmm(text)

    @field_validator("days")
    @classmethod
    def _days(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if not days or any(not 1 <= d <= 7 for d in days):
            raise ValueError(
                f"days must be ISO weekday numbers 1-7 (1 = Monday), at least one, got {list(days)}"
            )
        return tuple(sorted(set(days)))

    @model_validator(mode="after")
    def _breaks_inside(self) -> Self:
        for brk in self.breaks:
            offset = self.offset_minutes(brk.start)
            if offset + brk.minutes > self.length_minutes:
                raise ValueError(
                    f"break {brk.name!r} at {brk.start} for {brk.minutes:g} min does not lie "
                    f"within shift {self.name!r} ({self.start}-{self.end}): move the break or "
                    "shorten it"
                )
        return self

    @property
    def length_minutes(self) -> int:
        """Length on the wall clock (a day with a clock change makes it an hour off)."""
        return (_minute_of_day(self.end) - _minute_of_day(self.start)) % MINUTES_PER_DAY or (
            MINUTES_PER_DAY
        )

    def offset_minutes(self, hhmm: str) -> int:
        """Wall-clock minutes from the shift's start to the next time the clock shows `hhmm`."""
        return (_minute_of_day(hhmm) - _minute_of_day(self.start)) % MINUTES_PER_DAY


class PlannedDowntimeDef(_Frozen):
    """Planned down time: a planned stop or planned maintenance, for the whole site (`assets`
    empty) or for the listed assets and everything below them.

    Naive datetimes are the site's local time (by the rules in the module docstring); datetimes
    with an offset are taken as the instants they name. Only the part inside a shift counts:
    outside the shifts no time is planned, so there is none to take out (see `shifts_between`).
    """

    start: datetime
    end: datetime
    category: PlannedCategory = "planned_stop"
    reason: str = ""
    assets: tuple[str, ...] = Field(
        default=(), description="asset paths it applies to, with all below; empty: whole site"
    )

    @field_validator("assets")
    @classmethod
    def _assets(cls, assets: tuple[str, ...]) -> tuple[str, ...]:
        for path in assets:
            if not path or path.startswith("/") or path.endswith("/"):
                raise ValueError(
                    f"asset path {path!r} is not a path: write it like 'acme/plant1/line1'"
                )
        return assets

    @model_validator(mode="after")
    def _order(self) -> Self:
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise ValueError(
                "planned down time gives one of start and end with a UTC offset and the other "
                "without: give both in the site's local time, or both with an offset"
            )
        if self.end <= self.start:
            raise ValueError(
                f"planned down time ends ({self.end.isoformat()}) at or before it starts "
                f"({self.start.isoformat()}): give the earlier instant as the start"
            )
        return self

    def applies_to(self, asset: str | None) -> bool:
        """True for site-wide down time, and for `asset` when it is listed or lies below a listed
        path. With `asset` None (the site as a whole) only site-wide down time applies."""
        if not self.assets:
            return True
        if asset is None:
            return False
        return any(asset == path or asset.startswith(path + "/") for path in self.assets)


class CalendarDef(_Frozen):
    """A site's shift calendar in its time zone. Shifts of one calendar never overlap."""

    site: str = Field(description="asset path of the site, e.g. 'acme/plant1'")
    timezone: str = Field(description="IANA time zone of the site, e.g. 'Europe/Berlin'")
    shifts: tuple[ShiftDef, ...]
    holidays: tuple[date, ...] = Field(
        default=(), description="local dates on which no shift starts"
    )
    planned: tuple[PlannedDowntimeDef, ...] = ()

    @field_validator("site")
    @classmethod
    def _site(cls, site: str) -> str:
        if not site or site.startswith("/") or site.endswith("/"):
            raise ValueError(f"site {site!r} is not an asset path: write it like 'acme/plant1'")
        return site

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'"
            ) from err
        return name

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, days: tuple[date, ...]) -> tuple[date, ...]:
        return tuple(sorted(set(days)))

    @model_validator(mode="after")
    def _no_overlap(self) -> Self:
        _check_shifts_apart(self.shifts)
        return self

    @property
    def zone(self) -> tzinfo:
        return zoneinfo.ZoneInfo(self.timezone)


def _check_shifts_apart(shifts: tuple[ShiftDef, ...]) -> None:
    """Refuse two shifts on the same wall-clock minute of any weekday, and two shifts of one name
    starting on one day (their instances would share a key). Checked on the wall clock: the
    conversion to instants keeps the order of wall-clock times, so no clock change can make
    shifts overlap that do not overlap here."""
    spans: list[tuple[int, int, ShiftDef, int]] = []  # minute of the week, end, shift, weekday
    for shift in shifts:
        for day in shift.days:
            begin = (day - 1) * MINUTES_PER_DAY + _minute_of_day(shift.start)
            spans.append((begin, begin + shift.length_minutes, shift, day))
    for i, (a0, a1, a, a_day) in enumerate(spans):
        for b0, b1, b, b_day in spans[i + 1 :]:
            if a is b:
                continue  # one shift on two days: at most 24 h long, so it never meets itself
            if a.name == b.name and a_day == b_day:
                raise ValueError(
                    f"two shifts named {a.name!r} start on {_WEEKDAYS[a_day - 1]}: give each "
                    "shift its own name"
                )
            # The week is a circle: Sunday's night shift runs into Monday.
            for shift_by in (-_MINUTES_PER_WEEK, 0, _MINUTES_PER_WEEK):
                lo, hi = max(a0, b0 + shift_by), min(a1, b1 + shift_by)
                if lo < hi:
                    day, minute = divmod(lo % _MINUTES_PER_WEEK, MINUTES_PER_DAY)
                    raise ValueError(
                        f"shifts {a.name!r} ({a.start}-{a.end}) and {b.name!r} "
                        f"({b.start}-{b.end}) overlap on {_WEEKDAYS[day]} from "
                        f"{minute // 60:02d}:{minute % 60:02d} for {hi - lo} min: move one "
                        "of them or take the day out of its `days`"
                    )


@dataclass(frozen=True, slots=True)
class ShiftInstance:
    """One shift on one day: its UTC interval and the planned down time inside it.

    `planned` holds (interval, category, name) sorted and non-overlapping: breaks and planned
    down time merged, each instant once, planned maintenance winning where it overlaps a
    planned stop. `name` is the break's name or the down time's reason.
    """

    name: str
    day: date  # the local date the shift starts on
    interval: Interval
    planned: tuple[tuple[Interval, str, str], ...] = ()

    @property
    def key(self) -> str:
        """A stable id, e.g. '2026-03-29/night'."""
        return f"{self.day.isoformat()}/{self.name}"

    @property
    def planned_down_time_us(self) -> int:
        """PDOT inside the shift, planned maintenance included."""
        return sum(iv.duration_us for iv, _, _ in self.planned)

    @property
    def planned_maintenance_time_us(self) -> int:
        return sum(iv.duration_us for iv, cat, _ in self.planned if cat == "planned_maintenance")


# -- local wall clock to UTC ---------------------------------------------------------------------


def local_to_us(local: datetime, zone: tzinfo) -> int:
    """A wall-clock time in `zone` (its own tzinfo is ignored) as µs since the epoch.

    A time that occurs twice is its first occurrence (fold=0); a time in a gap is the first
    valid instant after the gap."""
    wall = local.replace(tzinfo=None, fold=0)
    guess = datetime_to_us(wall.replace(tzinfo=zone))
    if us_to_datetime(guess).astimezone(zone).replace(tzinfo=None) == wall:
        return guess
    # In a gap. zoneinfo reads fold=0 with the offset before the change, which lands after the
    # change, and fold=1 with the offset after it, which lands before: the change lies between.
    before = datetime_to_us(wall.replace(tzinfo=zone, fold=1))
    after_offset = us_to_datetime(guess).astimezone(zone).utcoffset()
    lo, hi = before, guess  # lo is before the change, hi at or after it
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if us_to_datetime(mid).astimezone(zone).utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid
    return hi


def _day_start_us(day: date, zone: tzinfo) -> int:
    return local_to_us(datetime.combine(day, time(0, 0), tzinfo=zone), zone)


def local_day_window(calendar: CalendarDef, day: date) -> Interval:
    """The local day `day`, midnight to midnight in the site's zone: 23, 24 or 25 hours."""
    zone = calendar.zone
    return Interval(_day_start_us(day, zone), _day_start_us(day + timedelta(days=1), zone))


def local_week_window(calendar: CalendarDef, day: date) -> Interval:
    """The ISO week holding `day`: Monday 00:00 local to the next Monday 00:00 local."""
    zone = calendar.zone
    monday = day - timedelta(days=day.isoweekday() - 1)
    return Interval(_day_start_us(monday, zone), _day_start_us(monday + timedelta(days=7), zone))


# -- shift instances -----------------------------------------------------------------------------


def _at(day: date, minute_of_day: int, zone: tzinfo) -> int:
    """µs of a wall-clock minute counted from `day`'s midnight (may run into later days)."""
    days, minute = divmod(minute_of_day, MINUTES_PER_DAY)
    local = datetime.combine(day + timedelta(days=days), time(minute // 60, minute % 60))
    return local_to_us(local.replace(tzinfo=zone), zone)


def _downtime_us(entry: PlannedDowntimeDef, zone: tzinfo) -> Interval:
    def to_us(dt: datetime) -> int:
        return local_to_us(dt, zone) if dt.tzinfo is None else datetime_to_us(dt)

    start, end = to_us(entry.start), to_us(entry.end)
    # A naive span lying wholly inside a clock-change gap maps to one instant: empty.
    return Interval(start, max(start, end))


def _merge_planned(
    pieces: Iterable[tuple[Interval, str, str]],
) -> tuple[tuple[Interval, str, str], ...]:
    # Rank as the precedence of resolve_overlaps; on equal rank the later entry wins, and
    # breaks come before planned down time, so a planned entry names the time it shares with a
    # break of the same category.
    records = [
        StopRecord(interval, (category, name), _RANK[category])
        for interval, category, name in pieces
    ]
    out: list[tuple[Interval, str, str]] = []
    for piece in resolve_overlaps(records):
        category, name = piece.reason
        if out and out[-1][1:] == (category, name) and out[-1][0].end_us == piece.interval.start_us:
            out[-1] = (Interval(out[-1][0].start_us, piece.interval.end_us), category, name)
        else:
            out.append((piece.interval, category, name))
    return tuple(out)


def _instance(
    shift: ShiftDef, day: date, zone: tzinfo, downtime: Sequence[tuple[Interval, str, str]]
) -> ShiftInstance | None:
    begin = _minute_of_day(shift.start)
    start = _at(day, begin, zone)
    interval = Interval(start, max(start, _at(day, begin + shift.length_minutes, zone)))
    if interval.empty:
        return None  # a short shift wholly inside a clock-change gap
    pieces: list[tuple[Interval, str, str]] = []
    for brk in shift.breaks:
        start = _at(day, begin + shift.offset_minutes(brk.start), zone)
        end = start + round(brk.minutes * _US_PER_MINUTE)
        # On a short night the wall-clock start may leave less than `minutes` before the end.
        inside = Interval(start, end).intersection(interval)
        if inside is not None:
            pieces.append((inside, brk.category, brk.name))
    for span, category, reason in downtime:
        inside = span.intersection(interval)
        if inside is not None:
            pieces.append((inside, category, reason))
    return ShiftInstance(shift.name, day, interval, _merge_planned(pieces))


def shifts_between(
    calendar: CalendarDef, window: Interval, asset: str | None = None
) -> list[ShiftInstance]:
    """Every shift instance that overlaps `window`, whole (not clipped), sorted by start.

    No shift starts on a holiday (a night shift from the day before still runs into it).
    Planned down time is included where it applies to `asset` (`PlannedDowntimeDef.applies_to`)
    and only where it lies inside a shift: outside every shift no time is planned, so there is
    no planned operation time to take it from and it does not enter OEE. Stops in that time are
    still the machines' to show; they are just not charged.
    """
    if window.empty:
        return []
    zone = calendar.zone
    # A shift lasts at most 24 wall-clock hours, so one that started before the day before the
    # window's first local day ended before the window; one that starts after the window's last
    # local day starts after the window.
    day = us_to_datetime(window.start_us).astimezone(zone).date() - timedelta(days=1)
    last = us_to_datetime(window.end_us).astimezone(zone).date()
    reach = Interval(
        _day_start_us(day, zone), _day_start_us(last + timedelta(days=2), zone)
    )  # every instance found lies in here
    downtime = [
        (span, entry.category, entry.reason)
        for entry in calendar.planned
        if entry.applies_to(asset)
        and (span := _downtime_us(entry, zone)).intersection(reach) is not None
    ]
    holidays = set(calendar.holidays)
    out: list[ShiftInstance] = []
    while day <= last:
        if day not in holidays:
            for shift in calendar.shifts:
                if day.isoweekday() not in shift.days:
                    continue
                instance = _instance(shift, day, zone, downtime)
                if instance is not None and instance.interval.intersection(window) is not None:
                    out.append(instance)
        day += timedelta(days=1)
    out.sort(key=lambda s: s.interval.start_us)
    return out


# -- the virtual factory's pattern ---------------------------------------------------------------


def from_pattern(site: str, pattern: ShiftPattern) -> CalendarDef:
    """The calendar of a `ShiftPattern`: shift n (`ShiftSlot.shift` n - 1) is named 'shift<n>'
    and runs from its start hour to the next one; its break becomes a `BreakDef`.

    The changeover is not planned down time: it is setup, which the machines record (AUST).
    The break starts at the wall-clock time `break_after_minutes` after the shift's start. The
    pattern counts those minutes as elapsed time instead, so on a night where the clocks change
    between a shift's start and its break the two place the break an hour apart; with the
    default pattern (22:00 + 240 min = 02:00, the hour the clocks change) they agree.
    """
    shifts: list[ShiftDef] = []
    for index, hour in enumerate(pattern.starts):
        next_hour = pattern.starts[(index + 1) % len(pattern.starts)]
        breaks: tuple[BreakDef, ...] = ()
        if pattern.break_minutes > 0:
            after = pattern.break_after_minutes
            if after != int(after):
                raise ValueError(
                    f"break_after_minutes {after:g} is not a whole number of minutes: a "
                    "calendar's break starts on an HH:MM clock time"
                )
            at = (hour * 60 + int(after)) % MINUTES_PER_DAY
            breaks = (
                BreakDef(start=f"{at // 60:02d}:{at % 60:02d}", minutes=pattern.break_minutes),
            )
        shifts.append(
            ShiftDef(
                name=f"shift{index + 1}",
                start=f"{hour:02d}:00",
                end=f"{next_hour:02d}:00",
                days=pattern.weekdays,
                breaks=breaks,
            )
        )
    return CalendarDef(site=site, timezone=pattern.timezone, shifts=tuple(shifts))
