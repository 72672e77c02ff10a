"""Event-loop stalls under ingest: the worst `GET /api/v1/health` latency while the largest
allowed (and the worst rejected) requests of every ingest format are processed (issue 12).

A Kiln server runs as a subprocess (uvicorn, ephemeral port, its own data directory, a device
credential under `acme`). A probe in a separate process asks `/api/v1/health` every 10 ms and
records how long each answer took; one probe waits for as long as the loop is blocked, so the
worst latency is the longest stall. The baseline is the same probe on the idle server, in the
same run. Then, one at a time, with the probe running:

- allowed: JSON with `ingest.max_items` items; line protocol with `max_items` values, plain and
  gzip; an Arrow IPC stream and a Parquet file of `ingest.bulk_max_rows` rows;
- rejected: a gzip line-protocol body that inflates to 60 MiB (about 60 KiB sent), a plain
  line-protocol body just under `http.max_body_bytes` with more than `max_items` lines, and a
  Parquet file of twice `bulk_max_rows` rows that compresses to a few hundred KiB.

Each run starts a fresh server; the full size makes three runs and reports medians (and each
run's figure). `ingest_loop_stall_ms` is the worst over the allowed cases, target under 100 ms.
`--quick` configures the server with limits scaled down (5,000 items, 100,000 bulk rows, 1 MiB
bodies, 4 MiB inflated) and runs once, so the same shapes take a few seconds.

    python -m benchmarks.bench_loop_stall [--quick]
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from kiln.api.settings import HttpSettings
from kiln.connectors.http.settings import IngestSettings
from kiln.testing.auth import admin_headers, device_headers
from kiln.testing.server import free_port, kiln_command, running_server

TARGET_MS = 100
PROBE_INTERVAL_S = 0.010
HEALTH = "/api/v1/health"
TAGS = 1_000
MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_items: int
    bulk_max_rows: int
    max_body_bytes: int
    bomb_inflated: int  # what the gzip bomb inflates to


@dataclass(frozen=True)
class Case:
    name: str
    allowed: bool
    url: str
    headers: dict[str, str]
    body: bytes
    what: str


# --quick: a real Kiln configured with smaller limits, so the same shapes take seconds
QUICK = Limits(max_items=5_000, bulk_max_rows=100_000, max_body_bytes=MIB, bomb_inflated=3 * MIB)
QUICK_MAX_INFLATED = 4 * MIB


def _limits(quick: bool) -> Limits:
    if quick:
        return QUICK
    ingest, http_ = IngestSettings(), HttpSettings()
    return Limits(ingest.max_items, ingest.bulk_max_rows, http_.max_body_bytes, 60 * MIB)


def _config(quick: bool) -> str:
    text = "name: bench\ndata_dir: data\nlog_level: warning\n"
    if quick:
        text += (
            f"http:\n  max_body_bytes: {QUICK.max_body_bytes}\n"
            f"ingest:\n  max_items: {QUICK.max_items}\n  bulk_max_rows: {QUICK.bulk_max_rows}\n"
            f"  max_inflated_bytes: {QUICK_MAX_INFLATED}\n"
        )
    return text


class _Clock:
    """Source timestamps for each case, never reused, so every point is new to its series
    (a late point takes the historian's slower delete-and-insert path)."""

    def __init__(self) -> None:
        self.next_ms = int(time.time() * 1000) - 3 * 86_400_000

    def take(self, steps: int) -> int:
        start, self.next_ms = self.next_ms, self.next_ms + steps + 1
        return start


def _json_body(n: int, t0: int) -> bytes:
    values = [
        {
            "path": f"acme/bench/json/m{i % TAGS:04d}/temp",
            "value": 20.0 + (i % 97) * 0.1,
            "ts": t0 + i // TAGS,
        }
        for i in range(n)
    ]
    return json.dumps({"values": values}).encode()


def _lp_body(n: int, t0: int, measurement: str = "lp") -> bytes:
    # One field per line: n lines, n values; paths acme/bench/m0001/<measurement>/temp.
    lines = (
        f"{measurement},m=m{i % TAGS:04d} temp={20.0 + (i % 97) * 0.1} {t0 + i // TAGS}"
        for i in range(n)
    )
    return ("\n".join(lines) + "\n").encode()


def _table(rows: int, t0: int, group: str) -> Any:
    # NumPy and Arrow are imported where used: the probe's child process imports this module
    # and should start fast.
    import numpy as np
    import pyarrow as pa

    i = np.arange(rows, dtype=np.int64)
    names = np.array([f"acme/bench/{group}/m{k:04d}/temp" for k in range(TAGS)], dtype=object)
    return pa.table(
        {
            "path": pa.array(names[i % TAGS], type=pa.string()),
            "ts": pa.array((t0 + i // TAGS) * 1000, type=pa.timestamp("us")),
            "value": pa.array(20.0 + (i % 97) * 0.1, type=pa.float64()),
        }
    )


def _arrow_body(rows: int, t0: int) -> bytes:
    import pyarrow as pa

    table = _table(rows, t0, "arrow")
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _parquet_body(table: Any, **options: Any) -> bytes:
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", **options)
    return sink.getvalue()


def _parquet_bomb(rows: int, t0: int) -> bytes:
    """One path, one value, timestamps 1 ms apart: delta-encoded, a few hundred KiB."""
    import numpy as np
    import pyarrow as pa

    table = pa.table(
        {
            "path": pa.array(np.full(rows, "acme/bench/pqbomb/m0000/temp", dtype=object)),
            "ts": pa.array((t0 + np.arange(rows, dtype=np.int64)) * 1000, type=pa.timestamp("us")),
            "value": pa.array(np.ones(rows)),
        }
    )
    return _parquet_body(
        table, use_dictionary=["path", "value"], column_encoding={"ts": "DELTA_BINARY_PACKED"}
    )


def _gzip_bomb(inflated: int, t0: int) -> bytes:
    line = f"lp,m=m0000 temp=1 {t0}\n".encode()
    return gzip.compress(line * (inflated // len(line)), compresslevel=9)


def _plain_over(limit_bytes: int, t0: int) -> bytes:
    """A line-protocol body just under the byte limit, so only the item limit refuses it."""
    per_line = len(_lp_body(1, t0))
    body = _lp_body(int(limit_bytes * 15 / 16) // per_line, t0)
    return body[: body.rfind(b"\n", 0, int(limit_bytes * 15 / 16)) + 1]


def _cases(limits: Limits, clock: _Clock, auth: dict[str, str]) -> list[Case]:
    n, rows = limits.max_items, limits.bulk_max_rows
    steps = n // TAGS + 1
    lp = {**auth, "content-type": "text/plain; charset=utf-8"}
    lp_url = "/api/v2/write?bucket=acme/bench&precision=ms"
    arrow = {**auth, "content-type": "application/vnd.apache.arrow.stream"}
    parquet = {**auth, "content-type": "application/vnd.apache.parquet"}
    t_bomb = clock.take(0)
    return [
        Case("json_max_items", True, "/api/v1/ingest",
             {**auth, "content-type": "application/json"},
             _json_body(n, clock.take(steps)), f"JSON, {n:,} items"),
        Case("lp_max_items", True, lp_url, lp, _lp_body(n, clock.take(steps)),
             f"line protocol, {n:,} lines"),
        Case("lp_gzip_max_items", True, lp_url, {**lp, "content-encoding": "gzip"},
             gzip.compress(_lp_body(n, clock.take(steps), "lpz")),
             f"line protocol gzip, {n:,} lines"),
        Case("arrow_bulk_max_rows", True, "/api/v1/ingest/bulk", arrow,
             _arrow_body(rows, clock.take(rows // TAGS + 1)), f"Arrow IPC stream, {rows:,} rows"),
        Case("parquet_bulk_max_rows", True, "/api/v1/ingest/bulk", parquet,
             _parquet_body(_table(rows, clock.take(rows // TAGS + 1), "parquet")),
             f"Parquet zstd, {rows:,} rows"),
        Case("lp_gzip_bomb", False, lp_url, {**lp, "content-encoding": "gzip"},
             _gzip_bomb(limits.bomb_inflated, t_bomb),
             f"gzip line protocol inflating to {limits.bomb_inflated // MIB} MiB"),
        Case("lp_plain_over_items", False, lp_url, lp,
             _plain_over(limits.max_body_bytes, clock.take(limits.max_body_bytes // 30 // TAGS)),
             "plain line protocol just under http.max_body_bytes, over max_items"),
        Case("parquet_rows_bomb", False, "/api/v1/ingest/bulk", parquet,
             _parquet_bomb(2 * rows, clock.take(2 * rows)),
             f"Parquet zstd of {2 * rows:,} rows, one path"),
    ]  # fmt: skip


def _probe_main(port: int, conn: Connection) -> None:
    """In a child process: on "start", probe /health every PROBE_INTERVAL_S until told to stop,
    then send back the latencies (ms) and the number of failed probes."""
    while conn.recv() == "start":
        latencies: list[float] = []
        failures = 0
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
        conn.send("started")
        while not conn.poll():
            started = time.perf_counter()
            try:
                client.request("GET", HEALTH)
                client.getresponse().read()
            except (OSError, http.client.HTTPException):
                failures += 1
                client.close()
                client = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
            else:
                latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(PROBE_INTERVAL_S)
        conn.recv()  # "stop"
        client.close()
        conn.send((latencies, failures))


class _Probe:
    def __init__(self, port: int) -> None:
        # spawn: a fork of this process would copy the request bodies it holds
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_probe_main, args=(port, child), daemon=True)
        self._proc.start()

    def start(self) -> None:
        self._conn.send("start")
        self._conn.recv()  # the child may still be importing: the window opens when it probes

    def stop(self) -> tuple[list[float], int]:
        self._conn.send("stop")
        latencies, failures = self._conn.recv()
        return latencies, failures

    def close(self) -> None:
        self._conn.send("quit")
        self._proc.join(timeout=30)


def _summary(latencies: list[float]) -> tuple[float, float]:
    if not latencies:
        return float("nan"), float("nan")
    ordered = sorted(latencies)
    return ordered[-1], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _settle(client: httpx.Client, calm_ms: float, timeout_s: float = 120.0) -> None:
    """Wait until 20 health probes in a row answer within `calm_ms` (background work such as
    rollups after a large upload must not be charged to the next case)."""
    deadline, calm = time.monotonic() + timeout_s, 0
    while calm < 20 and time.monotonic() < deadline:
        started = time.perf_counter()
        client.get(HEALTH)
        calm = calm + 1 if (time.perf_counter() - started) * 1000 <= calm_ms else 0
        time.sleep(PROBE_INTERVAL_S)


def _one_run(limits: Limits, quick: bool, idle_s: float) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="kiln-bench-stall-") as tmp:
        root = Path(tmp)
        (root / "plant.yaml").write_text(_config(quick))
        port = free_port()
        cmd = kiln_command("run", "--config", str(root / "plant.yaml"), "--port", str(port))
        with (
            running_server(cmd, port=port, cwd=root, log=root / "server.log"),
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=900) as client,
        ):
            auth = device_headers(client, admin_headers(client, root / "data"), "bench", "acme")
            print("[loop_stall] building request bodies", file=sys.stderr, flush=True)
            cases = _cases(limits, _Clock(), auth)
            probe = _Probe(port)
            try:
                _settle(client, 50.0, 30.0)
                probe.start()
                time.sleep(idle_s)
                idle, _ = probe.stop()
                idle_worst, idle_p99 = _summary(idle)
                out["idle"] = {"worst": idle_worst, "p99": idle_p99, "probes": len(idle)}
                calm_ms = max(20.0, 3 * idle_p99)
                for case in cases:
                    _settle(client, calm_ms)
                    probe.start()
                    time.sleep(0.2)
                    started = time.perf_counter()
                    r = client.post(case.url, content=case.body, headers=case.headers)
                    answered_s = time.perf_counter() - started
                    time.sleep(0.3)
                    latencies, failures = probe.stop()
                    worst, p99 = _summary(latencies)
                    out[case.name] = {
                        "worst": worst, "p99": p99, "probes": len(latencies),
                        "over_target": sum(x > TARGET_MS for x in latencies),
                        "failed_probes": failures, "status": r.status_code,
                        "answer": r.text[:160], "answered_s": answered_s,
                        "body_bytes": len(case.body), "allowed": case.allowed, "what": case.what,
                    }  # fmt: skip
                    print(
                        f"[loop_stall] {case.name}: {r.status_code} in {answered_s:.2f} s, "
                        f"health worst {worst:.0f} ms (idle {idle_worst:.0f} ms)",
                        file=sys.stderr,
                        flush=True,
                    )
            finally:
                probe.close()
    return out


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 1)


def run(quick: bool = False) -> Iterator[dict[str, Any]]:
    limits = _limits(quick)
    # The idle window is long because the worst of more probes is higher on a busy machine:
    # a bulk case probes for 10-60 s, and a short idle window would flatter the ratio.
    runs = [_one_run(limits, quick, 1.0 if quick else 10.0) for _ in range(1 if quick else 3)]
    idle_worst = [r["idle"]["worst"] for r in runs]
    idle_p99 = [r["idle"]["p99"] for r in runs]
    baseline = "the same /api/v1/health probe on the idle server, same run (worst)"
    names = [k for k in runs[0] if k != "idle"]
    allowed = [k for k in names if runs[0][k]["allowed"]]
    rejected = [k for k in names if not runs[0][k]["allowed"]]
    # per run: the worst allowed case, its ratio to that run's idle worst
    headline = [max(r[k]["worst"] for k in allowed) for r in runs]
    worst_case = max(allowed, key=lambda k: statistics.median(r[k]["worst"] for r in runs))
    value, base = _median(headline), _median(idle_worst)
    yield {
        "metric": "ingest_loop_stall_ms",
        "value": value,
        "unit": "ms",
        "baseline": baseline,
        "baseline_value": base,
        "ratio": round(value / base, 1) if base else None,
        "target_ms": TARGET_MS,
        "met": value < TARGET_MS,
        "worst_case": worst_case,
        # an allowed case the server refused measured a refusal, not an ingest: read it as such
        "allowed_but_refused": sorted(
            {k for r in runs for k in allowed if not 200 <= r[k]["status"] < 300}
        ),
        "rejected_worst_ms": _median([max(r[k]["worst"] for k in rejected) for r in runs]),
        "idle_p99_ms": _median(idle_p99),
        "idle_probes": [r["idle"]["probes"] for r in runs],
        "runs": [round(x, 1) for x in headline],
        "baseline_runs": [round(x, 1) for x in idle_worst],
    }
    for name in names:
        worst = [r[name]["worst"] for r in runs]
        first = runs[0][name]
        yield {
            "metric": "ingest_loop_stall_case_ms",
            "case": name,
            "what": first["what"],
            "allowed": first["allowed"],
            "value": _median(worst),
            "unit": "ms",
            "p99_ms": _median([r[name]["p99"] for r in runs]),
            "baseline": baseline,
            "baseline_value": base,
            "ratio": round(_median(worst) / base, 1) if base else None,
            "status": [r[name]["status"] for r in runs],
            "answered_s": _median([r[name]["answered_s"] for r in runs]),
            "body_bytes": first["body_bytes"],
            "probes": [r[name]["probes"] for r in runs],
            "probes_over_target": [r[name]["over_target"] for r in runs],
            "failed_probes": sum(r[name]["failed_probes"] for r in runs),
            "answer": first["answer"],
            "runs": [round(x, 1) for x in worst],
        }


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
