"""Exception and swinging-door compression: worked examples, and the bound that makes them safe
(no dropped point is further than the deviation from the reconstruction), as a property."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.core.compression import CompressionSpec
from kiln.core.quality import Quality
from kiln.historian.maths.compression import Point, compressor
from kiln.historian.maths.timeline import Points, sample

S = 1_000_000
GOOD, BAD = int(Quality.GOOD), int(Quality.BAD)


def pts(*pairs: tuple[float, float]) -> list[Point]:
    return [(int(t * S), v, GOOD) for t, v in pairs]


def run(method: str, deviation: float, points: list[Point], max_time_s: float = 600) -> list[Point]:
    spec = CompressionSpec(method=method, deviation=deviation, max_time_s=max_time_s)  # type: ignore[arg-type]
    return compressor(spec).run(points)


def test_swinging_door_worked_example() -> None:
    # A ramp 0 -> 1.5, a jump to 5, then nearly flat; deviation 1.
    raw = pts((0, 0.0), (1, 0.5), (2, 1.0), (3, 1.5), (4, 5.0), (5, 5.2), (6, 5.1))
    # At (4, 5): the door from (0, 0) through (1..3) allows slopes 1/6..5/6; 5/4 is outside,
    # so (3, 1.5) is kept. At (5, 5.2) the line from (3, 1.5) (slope 1.85) misses (4, 5) by
    # more than 1 (its door is 2.5..4.5), so (4, 5) is kept. (6, 5.1) is held, then flushed.
    assert run("swinging_door", 1.0, raw) == pts((0, 0.0), (3, 1.5), (4, 5.0), (6, 5.1))


# Published examples: the test data of gfoidl/DataCompression, an open-source swinging-door
# implementation (data/swinging-door/trend1, trend2 and trend3_mini, raw and compressed, with
# the compression deviations its tests use). Kiln's door keeps exactly the published points.
PUBLISHED = [
    (0.1, [(0, 1), (1, 1.1), (2, 1.2), (3, 1.6), (4, 2), (5, 2), (6, 2), (7, 1.2)],
     [(0, 1), (2, 1.2), (4, 2), (6, 2), (7, 1.2)]),
    (0.1, [(0, 1), (1, 1.1), (2, 1.2), (3, 1.6), (4, 2), (5, 2), (6, 2), (7, 2)],
     [(0, 1), (2, 1.2), (4, 2), (7, 2)]),
    (2.0, [(5, -2), (6, 5), (7, 4), (8, 3), (9, 5)], [(5, -2), (6, 5), (8, 3), (9, 5)]),
]  # fmt: skip


@pytest.mark.parametrize(("deviation", "raw", "published"), PUBLISHED)
def test_swinging_door_keeps_the_published_points(
    deviation: float, raw: list[tuple[float, float]], published: list[tuple[float, float]]
) -> None:
    kept = run("swinging_door", deviation, pts(*((t, float(v)) for t, v in raw)))
    assert kept == pts(*((t, float(v)) for t, v in published))


def test_exception_keeps_the_value_before_each_exception() -> None:
    raw = pts((0, 0.0), (1, 0.5), (2, 0.9), (3, 2.0), (4, 2.5), (5, 2.2))
    # 2.0 is more than 1 from 0.0: it is kept, and 0.9 before it; 2.2 is flushed at the end.
    assert run("exception", 1.0, raw) == pts((0, 0.0), (2, 0.9), (3, 2.0), (5, 2.2))


def test_maximum_time_keeps_a_heartbeat() -> None:
    raw = pts(*((t, 7.0) for t in range(10)))
    assert [p[0] // S for p in run("exception", 1.0, raw, max_time_s=4)] == [0, 4, 8, 9]
    assert [p[0] // S for p in run("swinging_door", 1.0, raw, max_time_s=4)] == [0, 3, 6, 9]


def test_bad_values_and_quality_changes_are_always_kept() -> None:
    raw = [(0, 1.0, GOOD), (S, 1.0, GOOD), (2 * S, float("nan"), BAD), (3 * S, 1.0, GOOD),
           (4 * S, 1.0, GOOD), (5 * S, 1.0, GOOD)]  # fmt: skip
    for method in ("exception", "swinging_door"):
        kept = run(method, 1.0, raw)
        assert (2 * S, BAD) in [(t, q) for t, _, q in kept]
        assert kept[0][0] == 0 and kept[-1][0] == 5 * S
        assert (3 * S, 1.0, GOOD) in kept  # the first Good value after the Bad one


def test_none_keeps_everything_and_ratios_are_counted() -> None:
    t = np.arange(2_000)
    noisy = pts(*zip(t.tolist(), (np.sin(t / 100) * 10).tolist(), strict=True))
    spec = CompressionSpec(method="swinging_door", deviation=0.1)
    c = compressor(spec)
    kept = c.run(noisy)
    assert c.stats.offered == 2_000 and c.stats.kept == len(kept)
    assert c.stats.ratio > 5  # a smooth curve: few straight pieces
    assert compressor(CompressionSpec()).run(noisy) == noisy


def _reconstruct(kept: list[Point], at: np.ndarray, *, step: bool) -> np.ndarray:
    points = Points(
        np.array([p[0] for p in kept], dtype=np.int64),
        np.array([p[1] for p in kept], dtype=np.float64),
        np.ones(len(kept), dtype=bool),
    )
    return sample(points, at, step=step).values


series = st.lists(st.tuples(st.integers(1, 5_000), st.floats(-1e4, 1e4)), min_size=1, max_size=200)


@settings(max_examples=300, deadline=None)
@given(series, st.floats(0.0, 100.0), st.sampled_from(["exception", "swinging_door"]))
def test_no_dropped_point_is_further_than_the_deviation(
    steps: list[tuple[int, float]], deviation: float, method: str
) -> None:
    ts = np.cumsum([d for d, _ in steps]) * 1_000
    raw = [(int(t), v, GOOD) for t, (_, v) in zip(ts, steps, strict=True)]
    kept = run(method, deviation, raw)
    assert kept[0] == raw[0] and kept[-1] == raw[-1]
    assert set(kept) <= set(raw)
    # Exception reporting is read back stepped, the swinging door linearly.
    rebuilt = _reconstruct(kept, ts, step=method == "exception")
    values = np.array([v for _, v in steps])
    assert np.all(np.abs(rebuilt - values) <= deviation * (1 + 1e-9) + 1e-6)
