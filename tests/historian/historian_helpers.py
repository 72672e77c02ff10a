"""Helpers shared by the historian tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kiln.core.quality import Quality
from kiln.core.values import Scalar, TagValue, ValueBatch
from kiln.historian.store import DuckDBStore

StoreFactory = Callable[..., DuckDBStore]  # makes stores on one backend (conftest.make_store)

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
SECOND = 1_000_000


def batch(
    points: Sequence[tuple[str, Scalar, int] | tuple[str, Scalar, int, int]],
    *,
    receive_us: int = T0,
    historical: bool = False,
) -> ValueBatch:
    """A batch from (path, value, source_us[, quality]) tuples."""
    return ValueBatch.of(
        [TagValue(p[0], p[1], p[2], p[3] if len(p) > 3 else Quality.GOOD) for p in points],
        receive_us,
        historical=historical,
    )


def stored(store: DuckDBStore, path: str) -> list[tuple[int, Scalar]]:
    """Every stored (source_us, value) of `path`, in time order."""
    result = store.raw(path, -(2**62), 2**62, limit=1_000_000)
    return [(p.source_us, p.value) for p in result.points]
