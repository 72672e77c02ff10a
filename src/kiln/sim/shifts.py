"""The shift calendar: what the plant should be doing at a given instant."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum

from kiln.core.clock import datetime_to_us, us_to_datetime
from kiln.sim.spec import ShiftSpec


class Phase(IntEnum):
    PRODUCTION = 0
    CHANGEOVER = 1
    BREAK = 2
    NO_SHIFT = 3


@dataclass(frozen=True, slots=True)
class ShiftSlot:
    """The plan at one instant. `shift_start_us` identifies the shift: it changes with each shift."""

    phase: Phase
    shift: int  # index into ShiftSpec.starts
    shift_start_us: int
    pace: float


class ShiftCalendar:
    """Maps instants to shift phases in the plant's local time."""

    def __init__(self, spec: ShiftSpec) -> None:
        self._spec = spec
        self._tz = zoneinfo.ZoneInfo(spec.timezone)
        self._paces = spec.paces

    def at(self, time_us: int) -> ShiftSlot:
        spec = self._spec
        local = us_to_datetime(time_us).astimezone(self._tz)
        earlier = [i for i, h in enumerate(spec.starts) if h <= local.hour]
        if earlier:
            index, day = earlier[-1], local
        else:  # before the first start of the day: still the last shift of yesterday
            index, day = len(spec.starts) - 1, local - timedelta(days=1)
        start = day.replace(hour=spec.starts[index], minute=0, second=0, microsecond=0)
        # Subtract as UTC instants: aware datetimes in one zone subtract as wall-clock times,
        # which would be off by an hour across a daylight saving change.
        start_us = datetime_to_us(start)
        minutes = (time_us - start_us) / 60e6
        if start.isoweekday() not in spec.weekdays:
            phase = Phase.NO_SHIFT
        elif minutes < spec.changeover_minutes:
            phase = Phase.CHANGEOVER
        elif spec.break_after_minutes <= minutes < spec.break_after_minutes + spec.break_minutes:
            phase = Phase.BREAK
        else:
            phase = Phase.PRODUCTION
        return ShiftSlot(phase, index, start_us, self._paces[index])
