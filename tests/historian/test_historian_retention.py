"""Retention per subtree, the newest point of every tag kept, disk use reported, and the disk
limit: a warning before it, then the oldest days dropped until the data fits."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from historian_helpers import SECOND, T0, batch, stored

from kiln.core.platform import Platform, Stage, Status
from kiln.core.values import ValueBatch
from kiln.historian.retention import DAY_US, RetentionRule, retention_resolver
from kiln.historian.service import Historian
from kiln.historian.store import DuckDBStore
from kiln.testing.clock import FakeClock

HOT = "acme/site1/line1/pump/vibration"
COLD = "acme/site1/line1/pump/temp"
ELSEWHERE = "acme/site2/line1/pump/temp"


def test_most_specific_rule_wins() -> None:
    resolve = retention_resolver([
        RetentionRule(prefix="acme", raw_days=365),
        RetentionRule(prefix=HOT, raw_days=30),
    ])  # fmt: skip
    assert (resolve(HOT), resolve(COLD), resolve("globex/x/y")) == (30, 365, None)


def test_retention_deletes_old_points_but_keeps_each_tags_newest(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "h.duckdb")
    store.open()
    try:
        days = [T0 + d * DAY_US for d in range(10)]
        store.write([batch([(p, float(i), t) for i, t in enumerate(days) for p in (HOT, COLD)])])
        store.write([batch([(ELSEWHERE, 1.0, T0)])])  # a single, old point
        now = T0 + 10 * DAY_US
        resolve = retention_resolver([
            RetentionRule(prefix="acme/site1", raw_days=5), RetentionRule(prefix=HOT, raw_days=2),
            RetentionRule(prefix="acme/site2", raw_days=1),
        ])  # fmt: skip
        deleted, _ = store.apply_retention(
            lambda path: None if (d := resolve(path)) is None else now - round(d * DAY_US)
        )
        assert deleted == 8 + 5  # HOT keeps days 8 and 9 (2 days back from day 10), COLD 5-9
        assert [t for t, _ in stored(store, HOT)] == days[8:]
        assert [t for t, _ in stored(store, COLD)] == days[5:]
        # The only point of a tag that has not changed since is kept: it is still its value.
        assert stored(store, ELSEWHERE) == [(T0, 1.0)]
        assert store.disk_usage().used_bytes > 0
    finally:
        store.close()


async def test_the_disk_limit_warns_then_drops_the_oldest_days(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(T0 + 30 * DAY_US)
    historian = Historian(tmp_path / "h.duckdb", housekeeping_s=3600)
    platform = Platform(clock=clock, data_dir=tmp_path)
    platform.add(historian, Stage.STORAGE)
    async with platform:
        # 20 days of a 1-second tag: far more than the limit set below.
        ts = T0 + np.arange(20 * 86_400, dtype=np.int64) * SECOND
        values = np.sin(np.arange(len(ts)) / 1000.0)
        paths = [COLD] * len(ts)
        batch_ = ValueBatch(paths, values, ts, np.zeros(len(ts), np.uint32), int(ts[-1]))  # type: ignore[arg-type]
        await platform.bus.publish_durable(batch_, timeout_s=60)
        store = historian.store
        assert store is not None
        full = store.disk_usage().used_bytes

        historian.disk_limit_bytes = int(full / 0.95)  # over 90 %, under the limit: a warning
        with caplog.at_level(logging.WARNING):
            await historian.housekeep()
        assert historian.health().status is Status.DEGRADED
        assert historian.health().detail["disk"] == "warning"
        assert any("shorten retention" in r.getMessage() for r in caplog.records)
        assert historian.stats.limit_deleted_points == 0

        historian.disk_limit_bytes = full // 3  # over the limit: the oldest days go
        await historian.housekeep()
        used = store.disk_usage().used_bytes
        assert used <= historian.disk_limit_bytes
        assert historian.stats.limit_deleted_points > 0
        kept = store.raw(COLD, 0, 2**62, limit=2_000_000).points
        assert kept[-1].source_us == int(ts[-1])  # the newest data stays
        assert kept[0].source_us > T0 + DAY_US  # the oldest day is gone


def test_the_plant_file_configures_retention_and_the_limit(tmp_path: Path) -> None:
    from kiln.app.assembly import build_platform
    from kiln.app.settings import Settings
    from kiln.core.config import load_config

    plant = tmp_path / "plant.yaml"
    plant.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "historian:\n  retention:\n    - {prefix: acme, raw_days: 365}\n"
        "    - {prefix: acme/site1/line1/pump/vibration, raw_days: 30}\n"
        "  disk_limit_bytes: 1000000000\n  housekeeping_s: 60\n"
    )
    settings = load_config(plant, Settings)
    historian = build_platform(settings).service(Historian)
    assert historian.retention is not None and historian.retention(HOT) == 30
    assert (historian.disk_limit_bytes, historian.housekeeping_s) == (1_000_000_000, 60)
