"""What every simulated machine shares: the state machine of faults, stops and the shift plan.

Machines of one kind are stepped together as NumPy arrays (a 100,000-tag plant has thousands
of machines, far too many to step one Python object at a time). Each machine still draws from
its own random stream (see `streams`), so a machine's life depends only on the seed, its
identity and time, not on how many machines the plant has.

A machine is either *busy* (a fault being repaired, a tool change, a minor stop: each with a
timer) or free, and a free machine follows the shift plan: it runs in production time, is in
setup during the changeover, stopped in the break, and off when there is no shift.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from kiln.production.shifts import Phase
from kiln.production.states import MachineState, StopReason
from kiln.sim.shifts import PacedSlot
from kiln.sim.spec import FaultRates
from kiln.sim.streams import FloatArray, Streams

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_NOT_BUSY = -1
_HOUR = 3600.0

# Mean repair times of faults (Erlang-2 distributed: rarely very quick, rarely endless), and
# the shortest any repair takes (s).
REPAIR_MEAN_S: dict[StopReason, float] = {
    StopReason.OVERHEAT: 20 * 60.0,
    StopReason.JAM: 4 * 60.0,
    StopReason.TOOL_BREAKAGE: 12 * 60.0,
    StopReason.MATERIAL_SHORTAGE: 8 * 60.0,
}
MIN_REPAIR_S = 30.0
MICRO_STOP_MEAN_S = 45.0
MIN_MICRO_STOP_S = 5.0

_PLANNED: dict[Phase, tuple[MachineState, StopReason]] = {
    Phase.CHANGEOVER: (MachineState.SETUP, StopReason.CHANGEOVER),
    Phase.BREAK: (MachineState.PLANNED_STOP, StopReason.BREAK),
    Phase.NO_SHIFT: (MachineState.OFF, StopReason.NO_SHIFT),
}

# Random draw slots used by the shared logic; kinds use slots from 16 up.
SLOT_MICRO_STOP = 0
SLOT_MICRO_STOP_LENGTH = 1
FIRST_KIND_SLOT = 16


def three_phase_kw(current_a: FloatArray) -> FloatArray:
    """Power of a 400 V three-phase drive at power factor 0.85: sqrt(3) * U * I * cos(phi)."""
    out: FloatArray = np.sqrt(3.0) * 0.4 * 0.85 * current_a
    return out


class MachineBank:
    """Shared state of `n` machines of one kind. Subclasses add the physics of their kind.

    Each subclass has a `step(k, dt, slot, ...)` that advances by `dt` seconds; `k` numbers
    the step and names its random draws.
    """

    tag_count: ClassVar[int]

    def __init__(self, streams: Streams, faults: FaultRates) -> None:
        n = len(streams)
        self.n = n
        self.rng = streams
        self.faults = faults
        self.state: IntArray = np.full(n, MachineState.RUNNING, dtype=np.int64)
        self.reason: IntArray = np.zeros(n, dtype=np.int64)
        self._busy_state: IntArray = np.full(n, _NOT_BUSY, dtype=np.int64)
        self._busy_reason: IntArray = np.zeros(n, dtype=np.int64)
        self._busy_left: FloatArray = np.zeros(n)

    def columns(self) -> list[npt.NDArray[np.generic]]:
        """One array per tag, in the order of the kind's tags in the catalog."""
        raise NotImplementedError

    def bad_quality(self) -> list[tuple[int, BoolArray, int]]:
        """(column, machines, quality code) for values that are not Good this step."""
        return []

    # -- the shared state machine ---------------------------------------------------------

    def _release(self, dt: float) -> BoolArray:
        """Count busy timers down; returns the machines whose busy period ended now."""
        busy: BoolArray = self._busy_state != _NOT_BUSY
        self._busy_left[busy] -= dt
        ended: BoolArray = busy & (self._busy_left <= 0.0)
        self._busy_state[ended] = _NOT_BUSY
        self._busy_reason[ended] = StopReason.NONE
        return ended

    def _available(self, slot: PacedSlot, blocked: BoolArray | None = None) -> BoolArray:
        """Machines that would run this step unless something happens to them."""
        if slot.phase is not Phase.PRODUCTION:
            return np.zeros(self.n, dtype=np.bool_)
        free: BoolArray = self._busy_state == _NOT_BUSY
        return free if blocked is None else free & ~blocked

    def _begin(
        self,
        mask: BoolArray,
        state: MachineState,
        reason: StopReason,
        seconds: FloatArray,
    ) -> None:
        """Make the machines in `mask` busy in `state` for `seconds`, and unavailable this step."""
        self._busy_state[mask] = state
        self._busy_reason[mask] = reason
        self._busy_left[mask] = seconds[mask]

    def _fault(
        self, k: int, slot: int, available: BoolArray, event: BoolArray, reason: StopReason
    ) -> BoolArray:
        """Put machines where `event` happened into DOWN for a random repair time."""
        hit = available & event
        if hit.any():
            repair = MIN_REPAIR_S + self.rng.erlang2(k, slot, REPAIR_MEAN_S[reason])
            self._begin(hit, MachineState.DOWN, reason, repair)
            available &= ~hit
        return hit

    def _micro_stops(self, k: int, dt: float, available: BoolArray) -> None:
        rate = hourly(self.faults.micro_stop_per_hour)
        hit = available & self.rng.happens(k, SLOT_MICRO_STOP, rate, dt)
        if hit.any():
            length = MIN_MICRO_STOP_S + self.rng.exponential(
                k, SLOT_MICRO_STOP_LENGTH, MICRO_STOP_MEAN_S
            )
            self._begin(hit, MachineState.IDLE, StopReason.WAITING, length)
            available &= ~hit

    def _resolve(self, slot: PacedSlot, blocked: BoolArray | None = None) -> None:
        """Set `state` and `reason`.

        A fault or a tool change shows whatever the plan says. In production time a minor
        stop shows next, then starvation, else the machine runs; outside it the plan shows
        (a minor stop that runs into the break is simply part of the break).
        """
        if slot.phase is Phase.PRODUCTION:
            shown = self._busy_state != _NOT_BUSY
            free_state = np.full(self.n, MachineState.RUNNING, dtype=np.int64)
            free_reason = np.zeros(self.n, dtype=np.int64)
            if blocked is not None:
                free_state[blocked] = MachineState.IDLE
                free_reason[blocked] = StopReason.STARVED
        else:
            shown = (self._busy_state != _NOT_BUSY) & (self._busy_state != MachineState.IDLE)
            planned_state, planned_reason = _PLANNED[slot.phase]
            free_state = np.full(self.n, planned_state, dtype=np.int64)
            free_reason = np.full(self.n, planned_reason, dtype=np.int64)
        self.state = np.where(shown, self._busy_state, free_state)
        self.reason = np.where(shown, self._busy_reason, free_reason)


def hourly(rate_per_hour: float) -> float:
    """Events per hour as events per second."""
    return rate_per_hour / _HOUR
