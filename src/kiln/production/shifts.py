"""Shift calendars: the shift pattern of a plant, and what the plant should be doing at a
given instant (producing, changing over, on a break, or not on shift).

Shifts start at given local hours and each runs until the next starts. Every shift begins with
a changeover and has one break; on days not in `weekdays` there is no shift. A shift belongs to
the day it starts on, so a night shift that starts on a Friday runs into Saturday.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiln.core.clock import datetime_to_us, us_to_datetime


class ShiftPattern(BaseModel):
    """The shift pattern: start hours, changeover and break, working days and time zone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    starts: tuple[int, ...] = Field(
        default=(6, 14, 22), description="local start hours of the shifts, ascending"
    )
    changeover_minutes: float = Field(default=15.0, ge=0.0)
    break_after_minutes: float = Field(default=240.0, ge=0.0)
    break_minutes: float = Field(default=30.0, ge=0.0)
    weekdays: tuple[int, ...] = Field(
        default=(1, 2, 3, 4, 5, 6, 7), description="ISO weekdays with shifts (1 = Monday)"
    )
    timezone: str = Field(default="UTC", description="IANA time zone of the plant")

    @field_validator("starts")
    @classmethod
    def _starts(cls, starts: tuple[int, ...]) -> tuple[int, ...]:
        if not starts:
            raise ValueError("give at least one shift start hour, e.g. [6, 14, 22]")
        if any(not 0 <= h <= 23 for h in starts):
            raise ValueError(f"shift start hours must be 0-23, got {list(starts)}")
        if list(starts) != sorted(set(starts)):
            raise ValueError(
                f"shift start hours must be ascending and distinct, got {list(starts)}"
            )
        return starts

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if not days or any(not 1 <= d <= 7 for d in days):
            raise ValueError(f"weekdays must be ISO weekday numbers 1-7 (1 = Monday), got {days}")
        return tuple(sorted(set(days)))

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

    @model_validator(mode="after")
    def _fits(self) -> Self:
        shortest = min(self.lengths_minutes)
        needed = max(self.changeover_minutes, self.break_after_minutes + self.break_minutes)
        if needed > shortest:
            raise ValueError(
                f"changeover and break need {needed:g} min but the shortest shift lasts "
                f"{shortest:g} min: shorten them or move the shift starts"
            )
        if self.break_minutes > 0 and self.break_after_minutes < self.changeover_minutes:
            raise ValueError("the break must start after the changeover ends")
        return self

    @property
    def lengths_minutes(self) -> tuple[float, ...]:
        """Length of each shift: until the next start, the last one until the first next day."""
        starts = list(self.starts)
        ends = [*starts[1:], starts[0] + 24]
        return tuple(60.0 * (e - s) for s, e in zip(starts, ends, strict=True))


class Phase(IntEnum):
    PRODUCTION = 0
    CHANGEOVER = 1
    BREAK = 2
    NO_SHIFT = 3


@dataclass(frozen=True, slots=True)
class ShiftSlot:
    """The plan at one instant. `shift_start_us` identifies the shift: it changes with each shift."""

    phase: Phase
    shift: int  # index into ShiftPattern.starts
    shift_start_us: int


class ShiftCalendar:
    """Maps instants to shift phases in the plant's local time."""

    def __init__(self, pattern: ShiftPattern) -> None:
        self.pattern = pattern
        self._tz = zoneinfo.ZoneInfo(pattern.timezone)

    def at(self, time_us: int) -> ShiftSlot:
        pattern = self.pattern
        local = us_to_datetime(time_us).astimezone(self._tz)
        earlier = [i for i, h in enumerate(pattern.starts) if h <= local.hour]
        if earlier:
            index, day = earlier[-1], local
        else:  # before the first start of the day: still the last shift of yesterday
            index, day = len(pattern.starts) - 1, local - timedelta(days=1)
        start = day.replace(hour=pattern.starts[index], minute=0, second=0, microsecond=0)
        # Subtract as UTC instants: aware datetimes in one zone subtract as wall-clock times,
        # which would be off by an hour across a daylight saving change.
        start_us = datetime_to_us(start)
        minutes = (time_us - start_us) / 60e6
        if start.isoweekday() not in pattern.weekdays:
            phase = Phase.NO_SHIFT
        elif minutes < pattern.changeover_minutes:
            phase = Phase.CHANGEOVER
        elif (
            pattern.break_after_minutes
            <= minutes
            < pattern.break_after_minutes + pattern.break_minutes
        ):
            phase = Phase.BREAK
        else:
            phase = Phase.PRODUCTION
        return ShiftSlot(phase, index, start_us)
