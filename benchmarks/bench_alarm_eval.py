"""Alarm condition detection on a wide batch: 10,000 tags x HiHi/Hi/Lo/LoLo (issue 14).

One batch carries one value per tag, all inside their limits and no alarm pending: the common
case, which the detector must handle as NumPy work over the whole batch. The figure is points
evaluated per second by `AlarmDetector.evaluate_indexed` (tags already resolved to indices) and
by `AlarmDetector.evaluate` (a `ValueBatch` of path strings, as the bus carries it). The
baseline is the bare NumPy comparison of the same values against the same 4 limit columns, in
the same run: the ratio says what the detector's bookkeeping costs on top of the comparison.

    python -m benchmarks.bench_alarm_eval [--quick]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from kiln.alarms.detect import AlarmDetector, LimitRule, TagRules
from kiln.core.values import ValueBatch

TAGS = 10_000
LIMITS = 4


def _best_rate(fn: Callable[[int], object], points: int, repeats: int) -> list[float]:
    """Points per second of each of `repeats` runs (each run a fresh timestamp)."""
    rates = []
    for r in range(repeats):
        started = time.perf_counter()
        fn(r)
        rates.append(points / (time.perf_counter() - started))
    return rates


def run(quick: bool = False) -> Iterator[dict[str, Any]]:
    repeats = 20 if quick else 200
    rng = np.random.default_rng(14)
    paths = [f"acme/plant1/line{i // 100}/m{i % 100}/temp" for i in range(TAGS)]
    rule = TagRules(
        limits=(
            LimitRule("hihi", 95, deadband=1),
            LimitRule("hi", 85, deadband=1),
            LimitRule("lo", 15, deadband=1),
            LimitRule("lolo", 5, deadband=1),
        )
    )
    det = AlarmDetector(dict.fromkeys(paths, rule))
    idx = np.arange(TAGS, dtype=np.int64)
    values = rng.uniform(30, 70, TAGS)
    qualities = np.zeros(TAGS, dtype=np.int64)
    limits = np.tile(np.array([95.0, 85.0, 15.0, 5.0]), (TAGS, 1))
    direction = np.array([1.0, 1.0, -1.0, -1.0])

    def bare(_r: int) -> object:
        return ((values[:, None] - limits[idx]) * direction > 0).any(axis=1)

    def indexed(r: int) -> object:
        ts = np.full(TAGS, (r + 1) * 1_000_000, dtype=np.int64)
        out = det.evaluate_indexed(idx, values, ts, qualities)
        assert not out, "values inside their limits raised alarms: the benchmark is wrong"
        return out

    base_ts = 10 * repeats * 1_000_000

    def batch(r: int) -> object:
        ts = np.full(TAGS, base_ts + (r + 1) * 1_000_000, dtype=np.int64)
        return det.evaluate(ValueBatch(paths, values, ts, qualities, receive_us=0))

    bare_runs = _best_rate(bare, TAGS, repeats)
    indexed_runs = _best_rate(indexed, TAGS, repeats)
    batch_runs = _best_rate(batch, TAGS, repeats)
    b, i, p = (statistics.median(x) for x in (bare_runs, indexed_runs, batch_runs))
    yield {
        "metric": "alarm_eval_points_per_s",
        "value": round(i),
        "unit": "points/s (each point checked against 4 limits)",
        "baseline": "bare NumPy comparison of the same values with the same 4 limit columns",
        "baseline_value": round(b),
        "ratio": round(i / b, 3),
        "from_value_batch_points_per_s": round(p),
        "from_value_batch_ratio": round(p / b, 3),
        "tags": TAGS,
        "limits_per_tag": LIMITS,
        "repeats": repeats,
    }


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
