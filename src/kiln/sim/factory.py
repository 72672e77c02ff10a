"""The virtual factory: the plant's asset model and a frame of all its tag values per step.

`VirtualFactory` is pure: no clock, no I/O. Its output is a function of the spec, the start
time and the sequence of step lengths, so a test, a benchmark and the demo all see the same
plant for the same seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kiln.core.values import Scalar
from kiln.model.definitions import AssetDef, AssetTypeDef, Level, resolve_tags
from kiln.production.states import MachineState
from kiln.sim import catalog
from kiln.sim.cnc import CncBank
from kiln.sim.machines import MachineBank
from kiln.sim.packaging import ConveyorBank, FillerBank
from kiln.sim.shifts import PacedCalendar
from kiln.sim.spec import FactorySpec
from kiln.sim.streams import Streams, machine_key

# Stream identities: changing these changes every machine's behaviour.
_KIND_CNC = 1
_KIND_FILLER = 2
_KIND_CONVEYOR = 3


@dataclass(frozen=True, slots=True)
class SimFrame:
    """All tag values at one instant. `paths` is the factory's path list (shared, do not mutate)."""

    time_us: int
    paths: list[str]
    values: list[Scalar]
    qualities: list[int]


@dataclass(frozen=True, slots=True)
class _Group:
    """One machine kind: its bank, asset paths, and where its values sit in a frame."""

    bank: MachineBank
    type_name: str
    asset_paths: list[str]
    tag_names: list[str]
    offset: int
    # Reused each step: filling an object array column by column and flattening it is the
    # fastest way to interleave NumPy columns into one list of Python scalars.
    cells: npt.NDArray[np.object_]


class VirtualFactory:
    """A machining area of CNC lines and a packaging area of filler lines, stepped in time."""

    def __init__(self, spec: FactorySpec, start_us: int) -> None:
        self.spec = spec
        self._time_us = start_us
        self._steps = 0
        self._calendar = PacedCalendar(spec.shifts)
        self._shift_start_us = self._calendar.at(start_us).shift_start_us

        root = f"{spec.enterprise}/{spec.site}"
        cnc_paths, cnc_keys = [], []
        for line in range(1, spec.machining_lines + 1):
            for m in range(1, spec.machines_per_line + 1):
                cnc_paths.append(f"{root}/machining/line{line}/cell{m}/cnc{m}")
                cnc_keys.append(machine_key(spec.seed, _KIND_CNC, line, m))
        filler_paths, filler_keys, filler_line = [], [], []
        conveyor_paths, conveyor_keys = [], []
        for line in range(1, spec.packaging_lines + 1):
            for f in range(1, spec.fillers_per_line + 1):
                filler_paths.append(f"{root}/packaging/line{line}/filling/filler{f}")
                filler_keys.append(machine_key(spec.seed, _KIND_FILLER, line, f))
                filler_line.append(line - 1)
            conveyor_paths.append(f"{root}/packaging/line{line}/transport/conveyor1")
            conveyor_keys.append(machine_key(spec.seed, _KIND_CONVEYOR, line, 1))

        self._cnc = CncBank(Streams(cnc_keys), spec.faults)
        self._fillers = FillerBank(Streams(filler_keys), spec)
        self._conveyors = ConveyorBank(Streams(conveyor_keys), spec)
        self._filler_line = np.array(filler_line, dtype=np.int64)

        self._types = catalog.asset_types(
            spec.fill_target_g, spec.fill_sigma_g, spec.fill_tolerance_g
        )
        types = {t.name: t for t in self._types}
        self._groups: list[_Group] = []
        offset = 0
        for bank, type_name, asset_paths in (
            (self._cnc, catalog.CNC, cnc_paths),
            (self._fillers, catalog.FILLER, filler_paths),
            (self._conveyors, catalog.CONVEYOR, conveyor_paths),
        ):
            if not asset_paths:
                continue
            names = [tag.name for tag in resolve_tags(type_name, types)]
            if len(names) != bank.tag_count:  # the catalog and the model disagree
                raise RuntimeError(
                    f"{type_name} has {len(names)} tags but its model makes {bank.tag_count}"
                )
            cells = np.empty((bank.n, len(names)), dtype=object)
            self._groups.append(_Group(bank, type_name, asset_paths, names, offset, cells))
            offset += len(asset_paths) * len(names)
        self._paths = [
            f"{asset}/{name}"
            for g in self._groups
            for asset in g.asset_paths
            for name in g.tag_names
        ]

    # -- the model ------------------------------------------------------------------------

    def asset_types(self) -> list[AssetTypeDef]:
        """`machine` (state, stop_reason, power) and the `cnc`, `filler`, `conveyor` types."""
        return list(self._types)

    def assets(self) -> list[AssetDef]:
        """The ISA-95 hierarchy, parents before children: enterprise, site, areas, lines, ..."""
        spec = self.spec
        root = f"{spec.enterprise}/{spec.site}"
        out = [
            AssetDef(path=spec.enterprise, level=Level.ENTERPRISE),
            AssetDef(path=root, level=Level.SITE),
        ]
        if spec.machining_lines:
            out.append(AssetDef(path=f"{root}/machining", level=Level.AREA))
            for line in range(1, spec.machining_lines + 1):
                line_path = f"{root}/machining/line{line}"
                out.append(AssetDef(path=line_path, level=Level.LINE))
                for m in range(1, spec.machines_per_line + 1):
                    cell = f"{line_path}/cell{m}"
                    out.append(AssetDef(path=cell, level=Level.CELL))
                    out.append(AssetDef(path=f"{cell}/cnc{m}", level=Level.ASSET, type=catalog.CNC))
        if spec.packaging_lines:
            out.append(AssetDef(path=f"{root}/packaging", level=Level.AREA))
            for line in range(1, spec.packaging_lines + 1):
                line_path = f"{root}/packaging/line{line}"
                out.append(AssetDef(path=line_path, level=Level.LINE))
                out.append(AssetDef(path=f"{line_path}/filling", level=Level.CELL))
                for f in range(1, spec.fillers_per_line + 1):
                    out.append(
                        AssetDef(
                            path=f"{line_path}/filling/filler{f}",
                            level=Level.ASSET,
                            type=catalog.FILLER,
                        )
                    )
                out.append(AssetDef(path=f"{line_path}/transport", level=Level.CELL))
                out.append(
                    AssetDef(
                        path=f"{line_path}/transport/conveyor1",
                        level=Level.ASSET,
                        type=catalog.CONVEYOR,
                    )
                )
        return out

    def paths(self) -> list[str]:
        """Every tag path, in frame order: by machine kind, then machine, then tag."""
        return list(self._paths)

    @property
    def tag_count(self) -> int:
        return len(self._paths)

    @property
    def time_us(self) -> int:
        """The simulated time of the last frame (the start time before the first step)."""
        return self._time_us

    @property
    def steps(self) -> int:
        return self._steps

    # -- stepping -------------------------------------------------------------------------

    def step(self, dt_s: float) -> SimFrame:
        """Advance the plant by `dt_s` seconds and return every tag's value at the new time."""
        if not math.isfinite(dt_s) or dt_s <= 0:
            raise ValueError(f"step length must be a positive number of seconds, got {dt_s}")
        dt_us = round(dt_s * 1_000_000)
        if dt_us < 1:
            raise ValueError(f"step length {dt_s} s is below the 1 µs time resolution")
        return self.step_to(self._time_us + dt_us)

    def step_to(self, time_us: int) -> SimFrame:
        """Advance the plant to `time_us` (after the current time) and return the frame there."""
        if time_us <= self._time_us:
            raise ValueError(f"cannot step to {time_us}: the factory is already at {self._time_us}")
        dt = (time_us - self._time_us) / 1_000_000
        k = self._steps
        slot = self._calendar.at(time_us)
        new_shift = slot.shift_start_us != self._shift_start_us
        self._shift_start_us = slot.shift_start_us

        self._conveyors.step(k, dt, slot)
        if self._fillers.n:
            feeding = self._conveyors.state == MachineState.RUNNING
            self._fillers.step(k, dt, slot, ~feeding[self._filler_line])
        self._cnc.step(k, dt, slot, new_shift)

        self._steps += 1
        self._time_us = time_us
        return self._frame()

    def _frame(self) -> SimFrame:
        values: list[Scalar] = []
        qualities = [0] * len(self._paths)
        for group in self._groups:
            cells, width = group.cells, len(group.tag_names)
            for j, column in enumerate(group.bank.columns()):
                cells[:, j] = column
            values.extend(cells.ravel().tolist())
            for j, mask, code in group.bank.bad_quality():
                for i in np.flatnonzero(mask).tolist():
                    qualities[group.offset + i * width + j] = code
        return SimFrame(self._time_us, self._paths, values, qualities)

    def columns(self, type_name: str) -> dict[str, npt.NDArray[np.generic]]:
        """Current values of every tag of one machine type, one array per tag in asset order.

        A copy, for analysis and tests; the frame is the way values leave the factory.
        """
        for group in self._groups:
            if group.type_name == type_name:
                cols = group.bank.columns()
                return {
                    name: np.array(col) for name, col in zip(group.tag_names, cols, strict=True)
                }
        raise KeyError(f"this factory has no machines of type {type_name!r}")

    def asset_paths(self, type_name: str) -> list[str]:
        """Paths of the machines of one type, in the order `columns` uses."""
        for group in self._groups:
            if group.type_name == type_name:
                return list(group.asset_paths)
        return []
