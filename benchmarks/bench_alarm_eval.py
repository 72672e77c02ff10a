"""Alarm condition evaluation on a wide batch: 10,000 tags x HiHi/Hi/Lo/LoLo (issue 14).

One batch carries one value per tag, all inside their limits and no alarm pending: the common
case, which evaluation must handle as NumPy work over the whole batch. The figure is points
evaluated per second by `Evaluator.evaluate` on a `ValueBatch` of path strings, as the alarm
engine runs it on every batch from the bus: the alarms compiled by `compile_alarms` from an
asset type carrying one limit alarm (hihi/hi/lo/lolo on its tag) and 10,000 assets of that
type. The detector underneath is also measured alone, as before: `AlarmDetector.evaluate_indexed`
(tags already resolved to indices) and `AlarmDetector.evaluate` (a `ValueBatch`).

The baseline is the bare NumPy comparison of the same values against the same 4 limit
columns, in the same run: each ratio says what resolving paths and the bookkeeping cost on
top of the comparison itself. Every run of the evaluator or a detector gets newer source
times than the one before, as a live series would (an older point would be skipped as late).

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

from kiln.alarms.compile import compile_alarms
from kiln.alarms.definitions import LimitAlarm, LimitDef
from kiln.alarms.detect import AlarmDetector, LimitRule, TagRules
from kiln.alarms.evaluate import Evaluator
from kiln.alarms.records import AlarmSpec
from kiln.core.values import ValueBatch
from kiln.model.definitions import AssetDef, AssetTypeDef, Level, TagDef

TAGS = 10_000
LIMITS = 4
TAG = "temp"
# (limit, deadband) of each condition; the detector-only figures use the same numbers.
HIHI, HI, LO, LOLO = (95.0, 1.0), (85.0, 1.0), (15.0, 1.0), (5.0, 1.0)


def asset_paths(count: int = TAGS) -> list[str]:
    return [f"acme/plant1/line{i // 100}/m{i % 100}" for i in range(count)]


def plant_specs(count: int = TAGS) -> tuple[AssetTypeDef, list[AssetDef], list[AlarmSpec]]:
    """An asset type with one tag and one limit alarm (4 limits), `count` assets of it, and
    the alarms compiled from them: 4 per asset."""
    machine = AssetTypeDef(
        name="machine",
        tags=(TagDef(name=TAG, unit="degC"),),
        alarms=(
            LimitAlarm(
                name="temp_limits",
                tag=TAG,
                hihi=LimitDef(value=HIHI[0], deadband=HIHI[1]),
                hi=LimitDef(value=HI[0], deadband=HI[1]),
                lo=LimitDef(value=LO[0], deadband=LO[1]),
                lolo=LimitDef(value=LOLO[0], deadband=LOLO[1]),
                message="{asset} {tag} {value} past {limit}",
            ),
        ),
    )
    assets = [AssetDef(path=p, level=Level.ASSET, type="machine") for p in asset_paths(count)]
    specs = compile_alarms([machine], assets)
    if len(specs) != LIMITS * count:
        raise RuntimeError(f"expected {LIMITS * count} compiled alarms, got {len(specs)}")
    return machine, assets, specs


def _rates(fn: Callable[[int], object], points: int, runs: range) -> list[float]:
    """Points per second of each run (`fn(r)`: run r, with timestamps of its own)."""
    rates = []
    for r in runs:
        started = time.perf_counter()
        fn(r)
        rates.append(points / (time.perf_counter() - started))
    return rates


def run(quick: bool = False) -> Iterator[dict[str, Any]]:
    repeats = 20 if quick else 200
    rng = np.random.default_rng(14)
    paths = [f"{a}/{TAG}" for a in asset_paths()]
    rule = TagRules(
        limits=(
            LimitRule("hihi", HIHI[0], deadband=HIHI[1]),
            LimitRule("hi", HI[0], deadband=HI[1]),
            LimitRule("lo", LO[0], deadband=LO[1]),
            LimitRule("lolo", LOLO[0], deadband=LOLO[1]),
        )
    )
    det = AlarmDetector(dict.fromkeys(paths, rule))
    evaluator = Evaluator(plant_specs()[2])
    idx = np.arange(TAGS, dtype=np.int64)
    values = rng.uniform(30, 70, TAGS)
    qualities = np.zeros(TAGS, dtype=np.int64)
    limits = np.tile(np.array([HIHI[0], HI[0], LO[0], LOLO[0]]), (TAGS, 1))
    direction = np.array([1.0, 1.0, -1.0, -1.0])

    def stamps(r: int, base: int = 0) -> np.ndarray[Any, np.dtype[np.int64]]:
        return np.full(TAGS, base + (r + 1) * 1_000_000, dtype=np.int64)

    def bare(_r: int) -> object:
        return ((values[:, None] - limits[idx]) * direction > 0).any(axis=1)

    def indexed(r: int) -> object:
        out = det.evaluate_indexed(idx, values, stamps(r), qualities)
        assert not out, "values inside their limits raised alarms: the benchmark is wrong"
        return out

    # The detector runs twice; its second series must come after its first.
    later = 10 * repeats * 1_000_000

    def batch(r: int) -> object:
        return det.evaluate(ValueBatch(paths, values, stamps(r, later), qualities, receive_us=0))

    def evaluate(r: int) -> object:
        out = evaluator.evaluate(ValueBatch(paths, values, stamps(r), qualities, receive_us=0))
        assert not out, "values inside their limits raised alarms: the benchmark is wrong"
        return out

    # Interleaved, so that a slow spell of this shared machine hits every side alike.
    runs: dict[str, list[float]] = {"bare": [], "evaluator": [], "indexed": [], "batch": []}
    sides = {"bare": bare, "evaluator": evaluate, "indexed": indexed, "batch": batch}
    chunk = max(repeats // 10, 1)
    for start in range(0, repeats, chunk):
        for name, fn in sides.items():
            runs[name] += _rates(fn, TAGS, range(start, min(start + chunk, repeats)))
    b, e, i, p = (statistics.median(runs[k]) for k in ("bare", "evaluator", "indexed", "batch"))
    yield {
        "metric": "alarm_eval_points_per_s",
        "value": round(e),
        "unit": "points/s (each point checked against 4 limits)",
        "path": "Evaluator.evaluate(ValueBatch): paths resolved, the compiled alarms' detector",
        "baseline": "bare NumPy comparison of the same values with the same 4 limit columns",
        "baseline_value": round(b),
        "ratio": round(e / b, 3),
        "target_ratio": 0.2,
        "met": e / b >= 0.2,
        "detector_indexed_points_per_s": round(i),
        "detector_indexed_ratio": round(i / b, 3),
        "detector_value_batch_points_per_s": round(p),
        "detector_value_batch_ratio": round(p / b, 3),
        "tags": TAGS,
        "limits_per_tag": LIMITS,
        "repeats": repeats,
    }


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
