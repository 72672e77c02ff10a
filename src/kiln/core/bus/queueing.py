"""What every value subscription does the same way, whatever carries the bus."""

from __future__ import annotations

import logging

from kiln.core.bus.protocol import SubscriptionStats
from kiln.core.values import ValueBatch, path_has_prefix


def under_prefix(batch: ValueBatch, prefix: str | None) -> ValueBatch | None:
    """The part of `batch` a subscription under `prefix` takes (None: nothing), or `batch`
    itself when it takes all (so a storing subscriber can still acknowledge it whole)."""
    if prefix is None:
        return batch
    part = batch.select(lambda p: path_has_prefix(p, prefix))
    return part if len(part) else None


def full_for(stats: SubscriptionStats, queued: bool, points: int) -> bool:
    """Whether `points` more would overrun the bound. A batch larger than the whole bound
    still goes into an empty queue, so that no batch can wedge the bus."""
    return queued and stats.depth_points + points > stats.max_points


def log_dropped(logger: logging.Logger, stats: SubscriptionStats) -> None:
    """Say a subscriber drops, at its first drop and every thousandth (not every batch)."""
    if stats.dropped_batches == 1 or stats.dropped_batches % 1000 == 0:
        logger.warning(
            "Subscriber %s is too slow: %d batches dropped so far",
            stats.name,
            stats.dropped_batches,
        )
