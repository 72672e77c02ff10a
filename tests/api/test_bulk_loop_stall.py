"""No bulk upload stalls the event loop or the server's memory: `/api/v1/health` answers within
100 ms while the largest allowed and the worst rejected Arrow and Parquet uploads are processed,
and a 20 M-row Parquet of a few hundred KiB is refused from its footer (finding 2 of issue 12:
it once took 3.1 GB). A real server runs as a subprocess; another thread probes health."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from api_helpers import constant_parquet
from stall_probe import Probe, probed, stall_server

from kiln.connectors.http.bulk import ARROW_STREAM, PARQUET

# Latency is measured: `make test` runs these alone, after the parallel part (pyproject's
# `alone` marker).
pytestmark = [pytest.mark.slow, pytest.mark.alone]

ALLOWED_ROWS = 1_000_000  # the largest upload that fits the test's time; the limit is 10 M


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


def points(rows: int, t0_us: int, paths: int = 100, prefix: str = "acme/bulk") -> pa.Table:
    i = np.arange(rows, dtype=np.int64)
    names = pa.array([f"{prefix}/line{p}/m/temp" for p in range(paths)])
    return pa.table({
        "path": pa.DictionaryArray.from_arrays(pa.array((i % paths).astype(np.int32)), names),
        "ts": pa.array(t0_us + i * 1000, pa.timestamp("us", "UTC")),
        "value": pa.array(i * 0.5),
    })  # fmt: skip


def stream(table: pa.Table, compression: str | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(
        sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=compression)
    ) as writer:
        writer.write_table(table, max_chunksize=100_000)
    return sink.getvalue().to_pybytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], int]]:
    with stall_server(tmp_path_factory.mktemp("bulk-stall"), "bulk-gw") as running:
        yield running


def upload(base: str, device: dict[str, str], body: bytes, content_type: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=120) as client:
        return client.post(
            "/api/v1/ingest/bulk", content=body, headers={**device, "Content-Type": content_type}
        )


def test_health_answers_while_the_largest_allowed_upload_is_ingested(
    server: tuple[str, dict[str, str], int],
) -> None:
    base, device, _ = server
    t0_us = (time.time_ns() // 1000) - 2 * ALLOWED_ROWS * 1000  # ends in the past
    body = stream(points(ALLOWED_ROWS, t0_us))
    r, probe = probed(
        base,
        lambda c: c.post(
            "/api/v1/ingest/bulk", content=body, headers={**device, "Content-Type": ARROW_STREAM}
        ),
    )
    assert r.status_code == 200, r.text[:500]
    assert r.json()["accepted"] == ALLOWED_ROWS
    probe.check(f"an Arrow stream of {ALLOWED_ROWS} rows")


def test_the_worst_rejected_uploads_cost_neither_time_nor_memory(
    server: tuple[str, dict[str, str], int],
) -> None:
    base, device, pid = server
    bomb = constant_parquet(20_000_000, "acme/bomb/x/y/z", 1_767_225_600_000_000)
    assert len(bomb) < 1024 * 1024  # about 260 KiB
    before = peak_rss_kib(pid)
    with Probe(base) as probe:
        started = time.perf_counter()
        r = upload(base, device, bomb, PARQUET)
        took = time.perf_counter() - started
    assert r.status_code == 413, r.text[:500]
    assert "20000000 rows; at most 10000000 per upload (ingest.bulk_max_rows)" in r.text
    probe.check("a 20 M-row Parquet of 260 KiB")
    assert took < 2.0
    grown_mib = (peak_rss_kib(pid) - before) / 1024
    assert grown_mib < 64, f"the server's peak memory grew {grown_mib:.0f} MiB"

    # 20 batches of a million rows each, zstd: refused by the rows their headers state.
    constant = pa.table({
        "path": pa.DictionaryArray.from_arrays(np.zeros(1_000_000, np.int32), ["acme/bomb/x"]),
        "ts": pa.array(np.full(1_000_000, 1_767_225_600_000_000, dtype=np.int64)),
        "value": pa.array(np.zeros(1_000_000)),
    })  # fmt: skip
    batch = constant.to_batches()[0]
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, batch.schema, options=options) as writer:
        for _ in range(20):
            writer.write_batch(batch)
    assert sink.getvalue().size < 1024 * 1024
    with Probe(base) as probe:
        r = upload(base, device, sink.getvalue().to_pybytes(), ARROW_STREAM)
    assert r.status_code == 413, r.text[:500]
    assert "at most 10000000 per upload" in r.text
    probe.check("a zstd Arrow stream of 20 M rows")
    grown_mib = (peak_rss_kib(pid) - before) / 1024
    assert grown_mib < 64, f"the server's peak memory grew {grown_mib:.0f} MiB"
