"""The peers: how each is started, fed through its own bulk path, measured on disk and queried.

Every query method returns how many series or buckets came back, so the benchmark can check
that each peer answered the same question, not an easier one.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from benchmarks.peers import HOUR_US, Dataset
from kiln.testing.auth import admin_headers, device_headers
from kiln.testing.server import free_port, kiln_command

LINES_PER_BATCH = 10_000  # the client batch the reference figures used
KILN_ROWS_PER_UPLOAD = 1_000_000
PREFIX = "bench/peers"


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()  # a clean stop: each server flushes what it holds
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def line_batches(ds: Dataset) -> list[bytes]:
    """Influx line protocol, microsecond precision, 10,000 lines a batch."""
    names = [ds.name(i) for i in range(ds.tags)]
    out = []
    tags, ts, values = ds.tag.tolist(), ds.ts_us.tolist(), ds.value.tolist()
    for a in range(0, ds.rows, LINES_PER_BATCH):
        b = min(a + LINES_PER_BATCH, ds.rows)
        out.append(
            "\n".join(
                f"m,tag={names[tags[i]]} value={values[i]!r} {ts[i]}" for i in range(a, b)
            ).encode()
        )
    return out


class InfluxDB:
    name = "influxdb"

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "influxdb"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = shutil.which("influxd")
        if exe is None:
            raise FileNotFoundError("influxd is not installed (apt-get install influxdb)")
        self.dir.mkdir(parents=True)
        config = self.dir / "influxdb.conf"
        config.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{self.dir / "meta"}"\n  logging-enabled = false\n'
            f'[data]\n  dir = "{self.dir / "data"}"\n  wal-dir = "{self.dir / "wal"}"\n'
            "  query-log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "[continuous_queries]\n  enabled = false\n"
        )
        log = (self.dir / "influxd.log").open("wb")
        self.proc = subprocess.Popen([exe, "-config", str(config)], stdout=log, stderr=log)
        _wait(f"{self.url}/ping", self.proc)
        self.http = httpx.Client(base_url=self.url, timeout=120)
        self.http.post("/query", params={"q": "CREATE DATABASE bench"}).raise_for_status()

    def ingest(self, batches: list[bytes]) -> None:
        for body in batches:
            r = self.http.post("/write", params={"db": "bench", "precision": "u"}, content=body)
            if r.status_code != 204:
                raise RuntimeError(f"InfluxDB refused a batch: {r.status_code} {r.text[:200]}")

    def stop(self) -> None:
        self.http.close()
        _stop(self.proc)

    def bytes_on_disk(self) -> int:
        return du(self.dir / "data") + du(self.dir / "wal")

    def _q(self, q: str) -> list[dict[str, Any]]:
        r = self.http.get("/query", params={"db": "bench", "q": q, "epoch": "u"})
        r.raise_for_status()
        return list(r.json()["results"][0].get("series", []))

    def last_values(self, ds: Dataset) -> int:
        return len(self._q('SELECT last("value") FROM m GROUP BY "tag"'))

    def avg_1min(self, ds: Dataset, tag: str, t0: int, t1: int) -> int:
        (s,) = self._q(
            f"SELECT mean(value) FROM m WHERE \"tag\"='{tag}' AND time >= {t0}u AND time < {t1}u "
            "GROUP BY time(1m)"
        )
        return _filled(s)

    def max_5min(self, ds: Dataset, tags: list[str], t0: int, t1: int) -> int:
        regex = "|".join(tags)
        series = self._q(
            f'SELECT max(value) FROM m WHERE "tag" =~ /^({regex})$/ AND time >= {t0}u AND '
            f'time < {t1}u GROUP BY time(5m), "tag"'
        )
        return sum(_filled(s) for s in series)

    def twa_1h(self, ds: Dataset, tag: str, t0: int, t1: int) -> int:
        # InfluxQL's closest: the integral (trapezoids between the points of each bucket) over
        # the bucket's length; it does not carry values across bucket edges.
        (s,) = self._q(
            f"SELECT integral(value, 1h) FROM m WHERE \"tag\"='{tag}' AND time >= {t0}u AND "
            f"time < {t1}u GROUP BY time(1h)"
        )
        return _filled(s)


def _filled(series: dict[str, Any]) -> int:
    """Buckets with a value (InfluxQL fills empty ones with null)."""
    return sum(v[1] is not None for v in series["values"])


class VictoriaMetrics:
    name = "victoriametrics"

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "victoria"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = shutil.which("victoria-metrics")
        if exe is None:
            raise FileNotFoundError(
                "victoria-metrics is not installed (apt-get install victoria-metrics)"
            )
        self.dir.mkdir(parents=True)
        log = (self.dir / "vm.log").open("wb")
        self.proc = subprocess.Popen(
            [exe, f"-storageDataPath={self.dir / 'data'}", f"-httpListenAddr=127.0.0.1:{self.port}",
             "-retentionPeriod=100y", "-search.latencyOffset=0s", "-loggerLevel=ERROR"],
            stdout=log, stderr=log,
        )  # fmt: skip
        _wait(f"{self.url}/health", self.proc)
        self.http = httpx.Client(base_url=self.url, timeout=120)

    def ingest(self, batches: list[bytes]) -> None:
        for body in batches:
            r = self.http.post("/write", params={"precision": "u"}, content=body)
            if r.status_code != 204:
                raise RuntimeError(
                    f"VictoriaMetrics refused a batch: {r.status_code} {r.text[:200]}"
                )
        # Written data becomes searchable after an in-memory buffer is flushed (about 1 s).
        self.http.get("/internal/force_flush").raise_for_status()

    def stop(self) -> None:
        self.http.close()
        _stop(self.proc)

    def bytes_on_disk(self) -> int:
        return du(self.dir / "data")

    def _range(self, query: str, t0: int, t1: int, step: str) -> list[dict[str, Any]]:
        # Samples at t0 + step, ...: each covers the `step` before it, as a bucket does.
        r = self.http.get(
            "/api/v1/query_range",
            params={"query": query, "start": t0 / 1e6, "end": t1 / 1e6, "step": step},
        )
        r.raise_for_status()
        return list(r.json()["data"]["result"])

    def last_values(self, ds: Dataset) -> int:
        end = (int(ds.ts_us.max()) + 1) / 1e6
        r = self.http.get(
            "/api/v1/query", params={"query": "last_over_time(m_value[8d])", "time": end}
        )
        r.raise_for_status()
        return len(r.json()["data"]["result"])

    def avg_1min(self, ds: Dataset, tag: str, t0: int, t1: int) -> int:
        (s,) = self._range(f'avg_over_time(m_value{{tag="{tag}"}}[1m])', t0 + 60_000_000, t1, "1m")
        return len(s["values"])

    def max_5min(self, ds: Dataset, tags: list[str], t0: int, t1: int) -> int:
        regex = "|".join(tags)
        series = self._range(
            f'max_over_time(m_value{{tag=~"{regex}"}}[5m])', t0 + 300_000_000, t1, "5m"
        )
        return sum(len(s["values"]) for s in series)

    def twa_1h(self, ds: Dataset, tag: str, t0: int, t1: int) -> int:
        # MetricsQL's closest: integrate() over each hour, divided by the hour.
        (s,) = self._range(f'integrate(m_value{{tag="{tag}"}}[1h]) / 3600', t0 + HOUR_US, t1, "1h")
        return len(s["values"])


class PostgreSQL:
    name = "postgresql"

    def __init__(self, workdir: Path, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.schema = f"kiln_bench_{int(time.time())}"
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {self.schema}")
            cur.execute(f"SET search_path TO {self.schema}")
            cur.execute("CREATE TABLE tags (id int PRIMARY KEY, name text UNIQUE NOT NULL)")
            cur.execute(
                "CREATE TABLE points (tag int NOT NULL, ts timestamptz NOT NULL, "
                "value double precision NOT NULL, PRIMARY KEY (tag, ts))"
            )

    def csv(self, ds: Dataset) -> bytes:
        table = pa.table({
            "tag": pa.array(ds.tag), "ts": pa.array(ds.ts_us, pa.timestamp("us", "UTC")),
            "value": pa.array(ds.value),
        })  # fmt: skip
        sink = io.BytesIO()
        pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
        return sink.getvalue()

    def ingest(self, ds: Dataset, body: bytes) -> None:
        with self.conn.cursor() as cur:
            with cur.copy("COPY tags (id, name) FROM STDIN") as copy:
                for i in range(ds.tags):
                    copy.write_row((i, ds.name(i)))
            with cur.copy("COPY points (tag, ts, value) FROM STDIN (FORMAT csv)") as copy:
                view = memoryview(body)
                for a in range(0, len(body), 8 << 20):
                    copy.write(view[a : a + (8 << 20)])
            cur.execute("ANALYZE points")

    def stop(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {self.schema} CASCADE")
        self.conn.close()

    def bytes_on_disk(self) -> int:
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_total_relation_size('points') + pg_total_relation_size('tags')")
            row = cur.fetchone()
        assert row is not None
        return int(row[0])

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def last_values(self, ds: Dataset) -> int:
        return len(self._rows(
            "SELECT t.id, p.ts, p.value FROM tags t CROSS JOIN LATERAL (SELECT ts, value FROM "
            "points WHERE tag = t.id ORDER BY ts DESC LIMIT 1) p"
        ))  # fmt: skip

    def avg_1min(self, ds: Dataset, tag: str, t0: int, t1: int) -> int:
        return len(self._rows(
            "SELECT date_bin('1 minute', ts, to_timestamp(0)) b, avg(value) FROM points "
            "WHERE tag = %s AND ts >= to_timestamp(%s) AND ts < to_timestamp(%s) GROUP BY b",
            (int(tag[1:]), t0 / 1e6, t1 / 1e6),
        ))  # fmt: skip

    def max_5min(self, ds: Dataset, tags: list[str], t0: int, t1: int) -> int:
        return len(self._rows(
            "SELECT tag, date_bin('5 minutes', ts, to_timestamp(0)) b, max(value) FROM points "
            "WHERE tag = ANY(%s) AND ts >= to_timestamp(%s) AND ts < to_timestamp(%s) "
            "GROUP BY tag, b",
            ([int(t[1:]) for t in tags], t0 / 1e6, t1 / 1e6),
        ))  # fmt: skip

    def twa_1h(self, ds: Dataset, tag: str, t0: int, t1: int) -> int:
        # Stepped time weights from each point to the next (lead()), summed per hour: what a
        # PostgreSQL user writes by hand; it does not split a step at the bucket edge.
        return len(self._rows(
            "SELECT b, sum(value * w) / nullif(sum(w), 0) FROM (SELECT date_bin('1 hour', ts, "
            "to_timestamp(0)) b, value, extract(epoch FROM lead(ts) OVER (ORDER BY ts) - ts) w "
            "FROM points WHERE tag = %s AND ts >= to_timestamp(%s) AND ts < to_timestamp(%s)) s "
            "GROUP BY b",
            (int(tag[1:]), t0 / 1e6, t1 / 1e6),
        ))  # fmt: skip


class Kiln:
    name = "kiln"

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "kiln"
        self.dir.mkdir(parents=True)
        (self.dir / "plant.yaml").write_text(
            "name: bench\ndata_dir: data\nlog_level: warning\n"
            "limits: {max_buckets: 100000, latest_max: 10000}\n"
            "ingest: {ack_timeout_s: 300}\n"
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = (self.dir / "kiln.log").open("wb")
        self.proc = subprocess.Popen(
            kiln_command("run", "--config", str(self.dir / "plant.yaml"), "--port", str(self.port)),
            stdout=log, stderr=log, cwd=self.dir,
        )  # fmt: skip
        _wait(f"{self.url}/api/v1/health", self.proc)
        self.http = httpx.Client(base_url=self.url, timeout=600)
        admin = admin_headers(self.http, self.dir / "data")
        self.device = device_headers(self.http, admin, "bench", "bench")
        self.http.headers.update(admin)

    def uploads(self, ds: Dataset) -> list[bytes]:
        names = np.array([f"{PREFIX}/{ds.name(i)}" for i in range(ds.tags)], dtype=object)
        out = []
        for a in range(0, ds.rows, KILN_ROWS_PER_UPLOAD):
            b = min(a + KILN_ROWS_PER_UPLOAD, ds.rows)
            table = pa.table({
                "path": pa.array(names[ds.tag[a:b]], pa.string()),
                "ts": pa.array(ds.ts_us[a:b], pa.int64()),
                "value": pa.array(ds.value[a:b]),
            })  # fmt: skip
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            out.append(sink.getvalue().to_pybytes())
        return out

    def ingest(self, uploads: list[bytes]) -> None:
        headers = {**self.device, "Content-Type": "application/vnd.apache.arrow.stream"}
        for body in uploads:
            r = self.http.post("/api/v1/ingest/bulk", content=body, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"Kiln refused an upload: {r.status_code} {r.text[:300]}")

    def settle(self) -> None:
        """Wait until the rollups have caught up with the upload (queries would be right
        without them, reading raw points, but this measures the steady state)."""
        quiet = 0
        deadline = time.monotonic() + 600
        while quiet < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
            r = self.http.get("/api/v1/health")
            detail = r.json()["subsystems"]["historian"]["detail"]
            busy = detail["rollup_pending_series"] or not detail["rollup_rows_written"]
            quiet = 0 if busy else quiet + 1

    def stop(self) -> None:
        self.http.close()
        _stop(self.proc)  # closing checkpoints the DuckDB file

    def bytes_on_disk(self) -> int:
        data = self.dir / "data"
        return sum(f.stat().st_size for f in data.glob("history.duckdb*"))

    def _summary(self, tags: list[str], t0: int, t1: int, interval: str, agg: str) -> int:
        r = self.http.get("/api/v1/history/summary", params={
            "tag": [f"{PREFIX}/{t}" for t in tags], "start": str(t0 // 1000),
            "end": str(t1 // 1000), "interval": interval, "agg": agg,
        })  # fmt: skip
        if r.status_code != 200:
            raise RuntimeError(f"Kiln summary failed: {r.status_code} {r.text[:300]}")
        return sum(sum(v is not None for v in t["values"][agg]) for t in r.json()["tags"])

    def last_values(self, ds: Dataset) -> int:
        r = self.http.get("/api/v1/values/latest", params={"prefix": PREFIX, "limit": ds.tags})
        r.raise_for_status()
        return len(r.json()["values"])

    def avg_1min(self, ds: Dataset, tag: str, t0: int, t1: int) -> int:
        return self._summary([tag], t0, t1, "1m", "avg")

    def max_5min(self, ds: Dataset, tags: list[str], t0: int, t1: int) -> int:
        return self._summary(tags, t0, t1, "5m", "max")

    def twa_1h(self, ds: Dataset, tag: str, t0: int, t1: int) -> int:
        return self._summary([tag], t0, t1, "1h", "twa")


@contextmanager
def stopping(peer: Any) -> Iterator[Any]:
    try:
        yield peer
    finally:
        peer.stop()
