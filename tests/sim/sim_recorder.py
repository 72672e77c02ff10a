"""Runs a virtual factory and keeps every tag as a (steps, machines) array, for statistics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kiln.sim import VirtualFactory

# 2026-01-05 is a Monday; 00:00 UTC is inside the night shift that started Sunday 22:00.
MONDAY_US = 1_767_571_200_000_000
HOUR_US = 3_600_000_000


@dataclass
class Recording:
    time_us: np.ndarray  # (steps,)
    data: dict[tuple[str, str], np.ndarray]  # (type, tag) -> (steps, machines)
    qualities: np.ndarray  # (steps, tags)
    paths: list[str]
    dt: float

    def __call__(self, type_name: str, tag: str) -> np.ndarray:
        return self.data[type_name, tag]


def record(factory: VirtualFactory, steps: int, dt: float) -> Recording:
    kinds = [k for k in ("cnc", "filler", "conveyor") if factory.asset_paths(k)]
    rows: dict[tuple[str, str], list[np.ndarray]] = {}
    times, qualities = [], []
    for _ in range(steps):
        frame = factory.step(dt)
        times.append(frame.time_us)
        qualities.append(np.array(frame.qualities, dtype=np.int64))
        for kind in kinds:
            for tag, col in factory.columns(kind).items():
                rows.setdefault((kind, tag), []).append(col)
    return Recording(
        time_us=np.array(times),
        data={key: np.array(cols) for key, cols in rows.items()},
        qualities=np.array(qualities),
        paths=factory.paths(),
        dt=dt,
    )
