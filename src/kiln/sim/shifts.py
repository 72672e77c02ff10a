"""The virtual factory's shift calendar: the plant's (`kiln.production.shifts`), with the
simulated speed of each shift."""

from __future__ import annotations

from dataclasses import dataclass

from kiln.production.shifts import ShiftCalendar, ShiftSlot
from kiln.sim.spec import ShiftSpec


@dataclass(frozen=True, slots=True)
class PacedSlot(ShiftSlot):
    """The plan at one instant, and how fast the simulated machines run in this shift."""

    pace: float


class PacedCalendar:
    """Maps instants to shift phases and the shift's pace."""

    def __init__(self, spec: ShiftSpec) -> None:
        self._calendar = ShiftCalendar(spec)
        self._paces = spec.paces

    def at(self, time_us: int) -> PacedSlot:
        slot = self._calendar.at(time_us)
        return PacedSlot(slot.phase, slot.shift, slot.shift_start_us, self._paces[slot.shift])
