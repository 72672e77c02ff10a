"""The packaging line: fillers with a check weigher, fed by a conveyor.

Fill weight is normal around the set point, and now and then drifts away until an operator
corrects it, which is the pattern SPC is meant to catch; the check weigher rejects fills
outside the tolerance. Drive currents follow the work the drives do, and power follows the
current. When the line's conveyor stops, its fillers are starved and wait.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kiln.production.states import MachineState, StopReason
from kiln.sim.catalog import CONVEYOR_TAG_COUNT, FILLER_TAG_COUNT
from kiln.sim.machines import (
    FIRST_KIND_SLOT,
    BoolArray,
    IntArray,
    MachineBank,
    hourly,
    three_phase_kw,
)
from kiln.sim.shifts import PacedSlot
from kiln.sim.spec import FactorySpec
from kiln.sim.streams import FloatArray, Streams

FILL_RATE_PER_MIN = 120.0
DRIFT_MEAN_S = 600.0
CONVEYOR_SPEED_M_MIN = 30.0
_AUX_KW = 0.3  # controls, sensors, HMI: drawn whenever the machine is powered

(
    _S_JAM,
    _S_JAM_LEN,
    _S_SHORTAGE,
    _S_SHORTAGE_LEN,
    _S_DRIFT,
    _S_DRIFT_LEN,
    _S_DRIFT_SIZE,
    _S_RATE,
    _S_WEIGHT,
    _S_CURRENT,
    _S_SPEED,
    _S_NOMINAL,
) = range(FIRST_KIND_SLOT, FIRST_KIND_SLOT + 12)

_INIT_STEP = -1


class FillerBank(MachineBank):
    tag_count = FILLER_TAG_COUNT

    def __init__(self, streams: Streams, spec: FactorySpec) -> None:
        super().__init__(streams, spec.faults)
        n = self.n
        self.target = spec.fill_target_g
        self.sigma = spec.fill_sigma_g
        self.tolerance = spec.fill_tolerance_g
        # Fillers of one model differ a little in speed, none faster than its rated speed (the
        # ideal cycle time OEE's performance is measured against).
        self.nominal: FloatArray = FILL_RATE_PER_MIN * (
            0.9 + 0.08 * self.rng.uniform(_INIT_STEP, _S_NOMINAL)
        )
        self.progress: FloatArray = np.zeros(n)
        self.offset: FloatArray = np.zeros(n)
        self.drift_slope: FloatArray = np.zeros(n)  # g/s while drifting
        self.drift_left: FloatArray = np.zeros(n)
        self.weight: FloatArray = np.full(n, self.target)
        self.rate: FloatArray = np.zeros(n)
        self.current: FloatArray = np.zeros(n)
        self.power: FloatArray = np.zeros(n)
        self.good: IntArray = np.zeros(n, dtype=np.int64)
        self.scrap: IntArray = np.zeros(n, dtype=np.int64)

    def step(self, k: int, dt: float, slot: PacedSlot, starved: BoolArray) -> None:
        """Advance; `starved` marks fillers whose conveyor is not running."""
        rng, faults = self.rng, self.faults
        self._release(dt)
        available = self._available(slot, starved)
        self._fault(
            k,
            _S_JAM_LEN,
            available,
            rng.happens(k, _S_JAM, hourly(faults.jam_per_hour), dt),
            StopReason.JAM,
        )
        self._fault(
            k,
            _S_SHORTAGE_LEN,
            available,
            rng.happens(k, _S_SHORTAGE, hourly(faults.material_shortage_per_hour), dt),
            StopReason.MATERIAL_SHORTAGE,
        )
        self._micro_stops(k, dt, available)
        self._resolve(slot, starved)
        self._fill(k, dt, slot.pace)

    def _fill(self, k: int, dt: float, pace: float) -> None:
        rng = self.rng
        running = self.state == MachineState.RUNNING
        powered = self.state != MachineState.OFF
        self._drift(k, dt, running)

        self.rate = np.where(
            running, self.nominal * pace * (1.0 + 0.01 * rng.normal(k, _S_RATE)), 0.0
        )
        self.progress += self.rate / 60.0 * dt
        made = np.floor(self.progress)
        self.progress -= made
        sample = self.target + self.offset + self.sigma * rng.normal(k, _S_WEIGHT)
        # The tag shows the last container weighed; with no container this step it holds.
        self.weight = np.where(made > 0, sample, self.weight)
        rejected = np.where(np.abs(sample - self.target) > self.tolerance, made, 0.0)
        self.scrap += rejected.astype(np.int64)
        self.good += (made - rejected).astype(np.int64)

        noise = rng.normal(k, _S_CURRENT)
        self.current = np.where(
            running,
            2.5 + 0.03 * self.rate + 0.1 * noise,
            np.where(powered, 0.5 + 0.02 * noise, 0.0),
        )
        self.power = np.where(powered, three_phase_kw(self.current) + _AUX_KW, 0.0)

    def _drift(self, k: int, dt: float, running: BoolArray) -> None:
        rng = self.rng
        drifting = self.drift_left > 0.0
        self.offset += np.where(drifting, self.drift_slope * dt, 0.0)
        self.drift_left = np.maximum(self.drift_left - dt, 0.0)
        corrected = drifting & (self.drift_left <= 0.0)
        self.offset[corrected] = 0.0
        self.drift_slope[corrected] = 0.0
        starts = (
            running
            & ~drifting
            & rng.happens(k, _S_DRIFT, hourly(self.faults.fill_drift_per_hour), dt)
        )
        if starts.any():
            # Drift by 2-4 sigma per 10 minutes, up or down, until corrected.
            size = rng.uniform(k, _S_DRIFT_SIZE)
            sign = np.where(size < 0.5, -1.0, 1.0)
            slope = sign * self.sigma * (2.0 + 4.0 * np.abs(size - 0.5)) / 600.0
            length = 60.0 + rng.exponential(k, _S_DRIFT_LEN, DRIFT_MEAN_S)
            self.drift_slope[starts] = slope[starts]
            self.drift_left[starts] = length[starts]

    def columns(self) -> list[npt.NDArray[np.generic]]:
        return [
            self.state,
            self.reason,
            np.round(self.power, 2),
            np.round(self.weight, 2),
            np.full(self.n, self.target),
            np.round(self.rate, 1),
            np.round(self.current, 2),
            self.good,
            self.scrap,
        ]


class ConveyorBank(MachineBank):
    tag_count = CONVEYOR_TAG_COUNT

    def __init__(self, streams: Streams, spec: FactorySpec) -> None:
        super().__init__(streams, spec.faults)
        self.speed: FloatArray = np.zeros(self.n)
        self.current: FloatArray = np.zeros(self.n)
        self.power: FloatArray = np.zeros(self.n)

    def step(self, k: int, dt: float, slot: PacedSlot) -> None:
        rng = self.rng
        self._release(dt)
        available = self._available(slot)
        self._fault(
            k,
            _S_JAM_LEN,
            available,
            rng.happens(k, _S_JAM, hourly(self.faults.jam_per_hour), dt),
            StopReason.JAM,
        )
        self._micro_stops(k, dt, available)
        self._resolve(slot)

        running = self.state == MachineState.RUNNING
        powered = self.state != MachineState.OFF
        self.speed = np.where(
            running, CONVEYOR_SPEED_M_MIN * slot.pace + 0.2 * rng.normal(k, _S_SPEED), 0.0
        )
        noise = rng.normal(k, _S_CURRENT)
        self.current = np.where(
            running, 1.2 + 0.1 * self.speed + 0.08 * noise, np.where(powered, 0.2, 0.0)
        )
        self.power = np.where(powered, three_phase_kw(self.current) + _AUX_KW, 0.0)

    def columns(self) -> list[npt.NDArray[np.generic]]:
        return [
            self.state,
            self.reason,
            np.round(self.power, 2),
            np.round(self.speed, 2),
            np.round(self.current, 2),
        ]
