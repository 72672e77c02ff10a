"""Machine state and stop reason codes, as machines (and the virtual factory) publish them on
their `state` and `stop_reason` tags.

The codes follow the usual PackML-like split between unplanned downtime (a fault), planned
downtime (changeover, break, no shift) and short idle periods, which is what OEE and downtime
analysis need to tell availability losses from planned time.
"""

from __future__ import annotations

from enum import IntEnum


class MachineState(IntEnum):
    OFF = 0
    IDLE = 1
    RUNNING = 2
    DOWN = 3  # unplanned: a fault stopped the machine
    SETUP = 4  # changeover or tool change
    PLANNED_STOP = 5  # break


class StopReason(IntEnum):
    """Why a machine is not running; NONE while it runs."""

    NONE = 0
    # Faults (state DOWN).
    OVERHEAT = 1
    JAM = 2
    TOOL_BREAKAGE = 3
    MATERIAL_SHORTAGE = 4
    # Planned or minor stops.
    CHANGEOVER = 10
    TOOL_CHANGE = 11
    BREAK = 12
    STARVED = 13  # waiting for an upstream machine that is down
    WAITING = 14  # a minor stop: operator, material handling
    NO_SHIFT = 15


STATE_NAMES: dict[int, str] = {int(s): s.name.lower() for s in MachineState}
REASON_NAMES: dict[int, str] = {int(r): r.name.lower() for r in StopReason}
FAULT_REASONS = frozenset(
    {StopReason.OVERHEAT, StopReason.JAM, StopReason.TOOL_BREAKAGE, StopReason.MATERIAL_SHORTAGE}
)
