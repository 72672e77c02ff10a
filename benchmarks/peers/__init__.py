"""Kiln against real time-series peers on one generated IoT dataset (issue 5).

Each peer is a real server: InfluxDB and VictoriaMetrics from Debian's packages, run by the
benchmark on ephemeral ports with data directories of its own, the machine's PostgreSQL, and
Kiln itself (`kiln run`) in a subprocess. Every one is fed through its own bulk path and asked
the same four questions (see `bench_peers`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


@dataclass(frozen=True, slots=True)
class Dataset:
    """`tags` series of about `points` points each, over about 7 days ending a day ago.

    Timestamps are irregular (exponential gaps, as report-by-exception data is), values a
    random walk plus a daily cycle plus sensor noise, rounded to the 0.001 a real sensor
    resolves. Rows are ordered by time, tags interleaved, as a plant sends them.
    """

    tags: int
    points: int
    tag: NDArray[np.int32]  # tag index of each row
    ts_us: NDArray[np.int64]
    value: NDArray[np.float64]
    start_us: int

    @property
    def rows(self) -> int:
        return len(self.tag)

    def name(self, i: int) -> str:
        return f"t{i:04d}"


def generate(tags: int, points: int, now_us: int, seed: int = 5) -> Dataset:
    rng = np.random.default_rng(seed)
    span = 7 * DAY_US
    start = (now_us - span - DAY_US) // HOUR_US * HOUR_US
    gaps = rng.exponential(span / points, size=(tags, points)).astype(np.int64) + 1
    ts = start + np.cumsum(gaps, axis=1)
    ts = np.minimum(ts, start + span - 1)
    ts = np.maximum.accumulate(ts, axis=1)
    walk = np.cumsum(rng.normal(0, 0.05, size=(tags, points)), axis=1)
    cycle = 5 * np.sin(2 * np.pi * (ts - start) / DAY_US)
    base = rng.uniform(20, 80, size=(tags, 1))
    value = np.round(base + walk + cycle + rng.normal(0, 0.2, size=(tags, points)), 3)
    tag = np.repeat(np.arange(tags, dtype=np.int32), points)
    flat_ts, flat_v = ts.ravel(), value.ravel()
    # Equal timestamps within a tag would be duplicates: drop them, then order by time.
    keep = np.ones(len(flat_ts), dtype=bool)
    same = (flat_ts[1:] == flat_ts[:-1]) & (tag[1:] == tag[:-1])
    keep[1:] = ~same
    tag, flat_ts, flat_v = tag[keep], flat_ts[keep], flat_v[keep]
    order = np.argsort(flat_ts, kind="stable")
    return Dataset(tags, points, tag[order], flat_ts[order], flat_v[order], int(start))
