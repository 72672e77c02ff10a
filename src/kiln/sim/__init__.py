"""The virtual factory: a deterministic, believable plant that feeds the platform with data.

A machining area (CNC machines) and a packaging area (fillers and conveyors) with correlated
signals, faults, and a shift pattern, sized from a handful of tags for the demo up to
100,000 and more for benchmarks.
"""

from kiln.sim.factory import SimFrame, VirtualFactory
from kiln.sim.source import SimSource
from kiln.sim.spec import FactorySpec, FaultRates, ShiftSpec

__all__ = [
    "FactorySpec",
    "FaultRates",
    "ShiftSpec",
    "SimFrame",
    "SimSource",
    "VirtualFactory",
]
