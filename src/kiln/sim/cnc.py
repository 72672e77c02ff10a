"""CNC machining centres: spindle, heat, vibration, tool wear and parts.

The physics is simple but causal, so the correlations an engineer expects are really there:
spindle load (set by the job, higher with a worn tool) drives power at once and temperature
through a first-order lag; vibration grows with load and, quadratically, with tool wear; the
chance that a part is scrap rises steeply with tool wear. A cooling failure makes the spindle
run hot until it crosses the overheat limit and the machine trips; a tool breaks more often
the more worn it is; a worn-out tool is changed in a short setup.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kiln.core.quality import Quality
from kiln.production.states import MachineState, StopReason
from kiln.sim.catalog import CNC_TAG_COUNT, OVERHEAT_LIMIT_C
from kiln.sim.machines import (
    FIRST_KIND_SLOT,
    BoolArray,
    IntArray,
    MachineBank,
    hourly,
)
from kiln.sim.shifts import PacedSlot
from kiln.sim.spec import FaultRates
from kiln.sim.streams import FloatArray, Streams

TEMP_TAU_S = 300.0
# Equilibrium spindle temperature: ambient + 0.5 K per % load; a failed cooling circuit adds
# enough that any job eventually crosses the overheat limit.
_K_PER_LOAD = 0.5
_COOLING_FAILED_EXTRA_C = 30.0
WEAR_LIMIT = 95.0
TOOL_CHANGE_S = 120.0
SENSOR_FAILURE_MEAN_S = 300.0
_SCRAP_BASE = 0.005
_SCRAP_WORN = 0.12

(
    _S_COOLING,
    _S_BREAK,
    _S_BREAK_LEN,
    _S_OVERHEAT_LEN,
    _S_TOOL_CHANGE_LEN,
    _S_SENSOR,
    _S_SENSOR_LEN,
    _S_LOAD,
    _S_SPEED,
    _S_TEMP,
    _S_VIB,
    _S_POWER,
    _S_SCRAP,
    _S_JOB_LOAD,
    _S_JOB_RPM,
    _S_JOB_CYCLE,
    _S_JOB_LIFE,
    _S_INIT_WEAR,
    _S_SPARE,  # was the initial progress of parts; kept so the other streams stay the same
    _S_AMBIENT,
) = range(FIRST_KIND_SLOT, FIRST_KIND_SLOT + 20)


def breakage_factor(wear_percent: FloatArray) -> FloatArray:
    """Tool breakage hazard relative to the configured rate: 0.25 on a new tool, 1.75 worn out.

    Linear in wear, so the configured rate is the average over a tool worn evenly to 100 %.
    """
    out: FloatArray = 0.25 + 1.5 * wear_percent / 100.0
    return out


_INIT_STEP = -1  # the step number under which the initial conditions are drawn
_TEMP_COLUMN = 5  # of the temperature tag in `columns()`


class CncBank(MachineBank):
    tag_count = CNC_TAG_COUNT

    def __init__(self, streams: Streams, faults: FaultRates) -> None:
        super().__init__(streams, faults)
        n, rng = self.n, self.rng
        self.job_load: FloatArray = np.zeros(n)
        self.job_rpm: FloatArray = np.zeros(n)
        self.cycle_s: FloatArray = np.zeros(n)
        self.tool_life: FloatArray = np.zeros(n)
        self._new_jobs(_INIT_STEP)
        # Machines start at different points of their tools' lives, so tool changes spread out.
        self.wear: FloatArray = 80.0 * rng.uniform(_INIT_STEP, _S_INIT_WEAR)
        # Every machine begins a new part when the factory starts: a part begun before would be
        # counted in less than its cycle time, and the first minutes' performance would read
        # above 100 % (the ideal cycle time is the fastest a part can be made).
        self.progress: FloatArray = np.zeros(n)
        self.ambient: FloatArray = 20.0 + 4.0 * rng.uniform(_INIT_STEP, _S_AMBIENT)
        self.temp: FloatArray = self.ambient + _K_PER_LOAD * self.job_load
        self.temp_reading: FloatArray = self.temp.copy()
        self.cooling_failed: BoolArray = np.zeros(n, dtype=np.bool_)
        self.sensor_left: FloatArray = np.zeros(n)
        self._retool: BoolArray = np.zeros(n, dtype=np.bool_)
        self.good: IntArray = np.zeros(n, dtype=np.int64)
        self.scrap: IntArray = np.zeros(n, dtype=np.int64)
        self.load: FloatArray = np.zeros(n)
        self.speed: FloatArray = np.zeros(n)
        self.vibration: FloatArray = np.zeros(n)
        self.power: FloatArray = np.zeros(n)

    def _new_jobs(self, k: int) -> None:
        rng = self.rng
        self.job_load = 40.0 + 45.0 * rng.uniform(k, _S_JOB_LOAD)
        self.job_rpm = np.round(60.0 + 60.0 * rng.uniform(k, _S_JOB_RPM)) * 100.0
        self.cycle_s = np.round(30.0 + 60.0 * rng.uniform(k, _S_JOB_CYCLE))
        self.tool_life = 250.0 + 350.0 * rng.uniform(k, _S_JOB_LIFE)

    def step(self, k: int, dt: float, slot: PacedSlot, new_shift: bool) -> None:
        rng, faults = self.rng, self.faults
        if new_shift:
            self._new_jobs(k)
        ended = self._release(dt)
        # A new tool is fitted during the tool change or the repair after a breakage.
        fitted = ended & self._retool
        self.wear[fitted] = 0.0
        self._retool[fitted] = False

        available = self._available(slot)
        overheated = self._fault(
            k, _S_OVERHEAT_LEN, available, self.temp > OVERHEAT_LIMIT_C, StopReason.OVERHEAT
        )
        self.cooling_failed[overheated] = False  # fixed during the repair
        breakage_rate = hourly(faults.tool_breakage_per_hour) * breakage_factor(self.wear)
        broken = self._fault(
            k,
            _S_BREAK_LEN,
            available,
            rng.happens(k, _S_BREAK, breakage_rate, dt),
            StopReason.TOOL_BREAKAGE,
        )
        self._retool |= broken
        worn = available & (self.wear >= WEAR_LIMIT)
        if worn.any():
            change = TOOL_CHANGE_S + rng.exponential(k, _S_TOOL_CHANGE_LEN, 60.0)
            self._begin(worn, MachineState.SETUP, StopReason.TOOL_CHANGE, change)
            self._retool |= worn
            available &= ~worn
        self._micro_stops(k, dt, available)
        # A cooling failure does not stop the machine: it runs on, hotter, until it trips.
        self.cooling_failed |= available & rng.happens(
            k, _S_COOLING, hourly(faults.overheat_per_hour), dt
        )
        self._resolve(slot)
        self._physics(k, dt, slot.pace)

    def _physics(self, k: int, dt: float, pace: float) -> None:
        rng = self.rng
        running = self.state == MachineState.RUNNING
        powered = self.state != MachineState.OFF
        wear = self.wear / 100.0

        # A worn tool cuts harder; the load also swings with the operations within a cycle.
        cutting = self.job_load * (1.0 + 0.25 * wear) * (
            1.0 + 0.08 * np.sin(2.0 * np.pi * self.progress)
        ) + 1.5 * rng.normal(k, _S_LOAD)
        self.load = np.where(running, np.maximum(cutting, 0.0), 0.0)
        self.speed = np.where(
            running, self.job_rpm * (1.0 - 0.0002 * self.load) + 8.0 * rng.normal(k, _S_SPEED), 0.0
        )

        # Exact discretisation of the first-order lag, so any dt gives the same curve.
        extra = np.where(
            self.cooling_failed & running, _COOLING_FAILED_EXTRA_C + 0.5 * self.load, 0.0
        )
        target = self.ambient + _K_PER_LOAD * self.load + extra
        self.temp = target + (self.temp - target) * np.exp(-dt / TEMP_TAU_S)
        self._sensor(k, dt, powered)
        reading = self.temp + 0.15 * rng.normal(k, _S_TEMP)
        # A failed sensor's value is frozen at its last reading; its quality says it is bad.
        sensor_ok = self.sensor_left <= 0.0
        self.temp_reading = np.where(sensor_ok, reading, self.temp_reading)

        vib_running = 0.5 + 0.012 * self.load + 4.0 * wear**2
        vib = np.where(running, vib_running, np.where(powered, 0.08, 0.0))
        self.vibration = np.abs(vib * (1.0 + 0.05 * rng.normal(k, _S_VIB)))
        self.power = np.where(
            powered, np.maximum(1.2 + 0.13 * self.load + 0.1 * rng.normal(k, _S_POWER), 0.0), 0.0
        )
        self._parts(k, dt, pace, running)

    def _sensor(self, k: int, dt: float, powered: BoolArray) -> None:
        rng = self.rng
        self.sensor_left = np.maximum(self.sensor_left - dt, 0.0)
        fails = (
            powered
            & (self.sensor_left <= 0.0)
            & rng.happens(k, _S_SENSOR, hourly(self.faults.sensor_failure_per_hour), dt)
        )
        if fails.any():
            length = 30.0 + rng.exponential(k, _S_SENSOR_LEN, SENSOR_FAILURE_MEAN_S)
            self.sensor_left[fails] = length[fails]

    def _parts(self, k: int, dt: float, pace: float, running: BoolArray) -> None:
        self.progress += np.where(running, dt * pace / self.cycle_s, 0.0)
        made = np.floor(self.progress)
        self.progress -= made
        p_scrap = _SCRAP_BASE + _SCRAP_WORN * (self.wear / 100.0) ** 3
        # Stochastic rounding: exactly Bernoulli for one part per step, right on average for more.
        scrap = np.minimum(np.floor(made * p_scrap + self.rng.uniform(k, _S_SCRAP)), made)
        self.scrap += scrap.astype(np.int64)
        self.good += (made - scrap).astype(np.int64)
        self.wear = np.minimum(
            self.wear + made * (100.0 / self.tool_life) * (self.job_load / 70.0), 100.0
        )

    def columns(self) -> list[npt.NDArray[np.generic]]:
        return [
            self.state,
            self.reason,
            np.round(self.power, 2),
            np.round(self.speed, 0),
            np.round(self.load, 1),
            np.round(self.temp_reading, 2),
            np.round(self.vibration, 3),
            np.round(self.wear, 2),
            self.cycle_s,
            self.good,
            self.scrap,
        ]

    def bad_quality(self) -> list[tuple[int, BoolArray, int]]:
        bad = self.sensor_left > 0.0
        return [(_TEMP_COLUMN, bad, int(Quality.BAD_SENSOR_FAILURE))] if bad.any() else []
