"""Kiln against InfluxDB, VictoriaMetrics and PostgreSQL on one IoT dataset (issue 5).

1,000 tags x 10,000 points (irregular timestamps over 7 days, noisy values; `--quick`: 100 x
1,000). Each system gets the whole dataset through its own bulk path, from one client, timed
until its last batch is acknowledged:

- InfluxDB 1.x (Debian `influxdb`): line protocol `POST /write`, 10,000 lines a batch;
- VictoriaMetrics (Debian `victoria-metrics`): the same line protocol on its `/write`, then a
  forced flush so the data is searchable;
- PostgreSQL (the machine's): `COPY ... FROM STDIN` as CSV into a table keyed (tag, ts);
- Kiln (`kiln run`): Arrow IPC uploads of 1,000,000 rows to `POST /api/v1/ingest/bulk`,
  each answered once committed.

Then bytes on disk per point (after a clean stop, which flushes: data and WAL) and the median
latency of five runs (after one warm-up) of (a) the last value of every tag, (b) 1-minute
averages of one tag over an hour, (c) 5-minute maxima of 100 tags over 24 hours, (d) hourly
time-weighted averages of one tag over 7 days (each peer's closest equivalent: InfluxQL
`integral`, MetricsQL `integrate`, a `lead()` window in SQL). Peers that are not installed are
installed with apt-get when possible, else left out with the reason.

    python -m benchmarks.bench_peers [--quick]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.peers import DAY_US, HOUR_US, Dataset, generate
from benchmarks.peers.servers import (
    InfluxDB,
    Kiln,
    PostgreSQL,
    VictoriaMetrics,
    line_batches,
    stopping,
)

PG_URL = os.environ.get("KILN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REPEATS = 15  # medians of many: the machine is shared, and a few ms move run to run
QUERIES = ("last_1000_tags", "avg_1min_1tag_1h", "max_5min_100tags_24h", "twa_1h_1tag_7d")


def _progress(text: str) -> None:
    print(f"[bench peers] {text}", file=sys.stderr, flush=True)


def _ensure_installed() -> None:
    missing = [p for exe, p in (("influxd", "influxdb"), ("victoria-metrics", "victoria-metrics"))
               if shutil.which(exe) is None]  # fmt: skip
    if missing and shutil.which("apt-get") and os.geteuid() == 0:
        _progress(f"installing {', '.join(missing)} from Debian's packages")
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=False,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                       stdout=subprocess.DEVNULL)  # fmt: skip


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    """Median seconds of REPEATS runs after a warm-up, and what the last run returned."""
    fn()
    times, got = [], 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        got = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), got


def _queries(peer: Any, ds: Dataset) -> dict[str, tuple[float, int]]:
    one, other = ds.name(0), ds.name(1)
    hundred = [ds.name(i) for i in range(min(100, ds.tags))]
    s = ds.start_us
    return {
        "last_1000_tags": _timed(lambda: peer.last_values(ds)),
        "avg_1min_1tag_1h": _timed(lambda: peer.avg_1min(ds, one, s + 3 * DAY_US, s + 3 * DAY_US + HOUR_US)),
        "max_5min_100tags_24h": _timed(lambda: peer.max_5min(ds, hundred, s + 2 * DAY_US, s + 3 * DAY_US)),
        "twa_1h_1tag_7d": _timed(lambda: peer.twa_1h(ds, other, s, s + 7 * DAY_US)),
    }  # fmt: skip


def _measure(name: str, ds: Dataset, root: Path, lines: list[bytes] | None) -> dict[str, Any]:
    """Ingest rate, bytes per point and query latencies of one system."""
    if name == "kiln":
        peer: Any = Kiln(root)
        payload: Any = peer.uploads(ds)
    elif name == "influxdb":
        peer, payload = InfluxDB(root), lines
    elif name == "victoriametrics":
        peer, payload = VictoriaMetrics(root), lines
    else:
        peer = PostgreSQL(root, PG_URL)
        payload = peer.csv(ds)
    with stopping(peer):
        _progress(f"{name}: ingesting {ds.rows:,} points")
        started = time.perf_counter()
        if name == "postgresql":
            peer.ingest(ds, payload)
        else:
            peer.ingest(payload)
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        if hasattr(peer, "settle"):
            peer.settle()
        settle_s = time.perf_counter() - started
        _progress(
            f"{name}: {ds.rows / ingest_s:,.0f} points/s, settled in {settle_s:.1f} s; querying"
        )
        queries = _queries(peer, ds)
        disk = peer.bytes_on_disk() if name == "postgresql" else None
    if disk is None:
        disk = peer.bytes_on_disk()  # after the clean stop: flushed
    return {"ingest_points_per_s": ds.rows / ingest_s, "bytes_per_point": disk / ds.rows,
            "settle_s": settle_s, "queries": queries}  # fmt: skip


def _rows(results: dict[str, dict[str, Any]], ds: Dataset) -> Iterator[dict[str, Any]]:
    peers = {n: r for n, r in results.items() if n != "kiln"}
    kiln = results.get("kiln")
    figures: list[tuple[str, str, str, Callable[[dict[str, Any]], float], bool]] = [
        ("peers_ingest_points_per_s", "points/s", "bulk ingest, one client",
         lambda r: r["ingest_points_per_s"], True),
        ("peers_bytes_per_point", "bytes", "on disk after a clean stop",
         lambda r: r["bytes_per_point"], False),
    ]  # fmt: skip
    for q in QUERIES:
        figures.append(
            (f"peers_query_{q}_ms", "ms", q, lambda r, q=q: r["queries"][q][0] * 1000, False)
        )
    for metric, unit, what, get, higher_better in figures:
        values = {n: round(get(r), 3) for n, r in peers.items()}
        row: dict[str, Any] = {"metric": metric, "unit": unit, "what": what, "rows": ds.rows,
                               "tags": ds.tags, "peers": values}  # fmt: skip
        if metric.startswith("peers_query_"):
            q = metric.removeprefix("peers_query_").removesuffix("_ms")
            row["answers"] = {n: r["queries"][q][1] for n, r in results.items()}
        if kiln is not None:
            row["value"] = round(get(kiln), 3)
            if metric == "peers_ingest_points_per_s":
                row["kiln_rollups_caught_up_s"] = round(kiln["settle_s"], 1)  # after the ingest
            if values:
                best_name = (max if higher_better else min)(values, key=lambda n: values[n])
                best = values[best_name]
                row["baseline"] = f"best peer: {best_name}"
                row["baseline_value"] = best
                row["ratio"] = round(row["value"] / best, 3) if best else None
                row["target_met"] = row["value"] >= best if higher_better else row["value"] <= best
        yield row


def run(quick: bool = False) -> Iterator[dict[str, Any]]:
    _ensure_installed()
    tags, points = (100, 1_000) if quick else (1_000, 10_000)
    ds = generate(tags, points, now_us=int(time.time() * 1_000_000))
    _progress(f"dataset: {tags} tags x {points} points = {ds.rows:,} rows; encoding")
    lines = line_batches(ds)
    results: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="kiln-bench-peers-") as tmp:
        for name in ("kiln", "influxdb", "victoriametrics", "postgresql"):
            try:
                results[name] = _measure(name, ds, Path(tmp), lines)
            except Exception as err:  # one missing peer must not hide the others' figures
                skipped[name] = f"{type(err).__name__}: {err}"
                _progress(f"{name} left out: {skipped[name]}")
    for row in _rows(results, ds):
        if skipped:
            row["left_out"] = skipped
        yield row


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
