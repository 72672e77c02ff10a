"""End-to-end POST /api/v1/ingest throughput, batches of 1,000 points, against a real server.

Both servers run as subprocesses under uvicorn on loopback and are driven by the same client
with the same pre-encoded bodies and the same concurrency, so the ratio isolates what Kiln adds
(device authentication, validation, tag lookup, bus, historian commit before answering) to
HTTP + JSON parsing.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from kiln.testing.auth import admin_headers, device_headers
from kiln.testing.server import free_port, kiln_command, running_server

BATCH = 1_000
CONCURRENCY = 4


def _bodies(batches: int, tags: int = 200) -> list[bytes]:
    start_ms = 1_767_225_600_000
    out = []
    for b in range(batches):
        values = []
        for i in range(BATCH):
            n = b * BATCH + i
            tag = n % tags
            values.append(
                {
                    "path": f"acme/plant1/area{tag % 4}/line{tag % 10}/m{tag}/temp",
                    "value": 20.0 + (n % 97) * 0.1,
                    "ts": start_ms + (n // tags) * 1000,
                }
            )
        out.append(json.dumps({"values": values}).encode())
    return out


async def _drive(url: str, bodies: list[bytes], auth: dict[str, str]) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"content-type": "application/json", **auth}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            r = await client.post(url, content=body, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:200]}")

    async with httpx.AsyncClient(timeout=60) as client:
        await client.post(url, content=bodies[0], headers=headers)  # warm-up, also creates tags
        started = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for _ in range(CONCURRENCY):
                tg.create_task(worker(client))
        return time.perf_counter() - started


def _measure(
    cmd: list[str], port: int, ready: str, bodies: list[bytes], cwd: Path, data: Path | None
) -> float:
    """Points/s; with `data`, a Kiln data directory, through a device credential made by its
    first administrator (Kiln's ingest needs one)."""
    base = f"http://127.0.0.1:{port}"
    with running_server(cmd, port=port, ready_path=ready, cwd=cwd):
        auth: dict[str, str] = {}
        if data is not None:
            with httpx.Client(base_url=base, timeout=30) as client:
                auth = device_headers(client, admin_headers(client, data), "bench", "acme")
        seconds = asyncio.run(_drive(f"{base}/api/v1/ingest", bodies, auth))
    return len(bodies) * BATCH / seconds


def run(quick: bool = False) -> Iterator[dict[str, Any]]:
    bodies = _bodies(30 if quick else 300)
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        root = Path(tmp)
        (root / "plant.yaml").write_text("name: bench\ndata_dir: data\nlog_level: warning\n")
        port = free_port()
        kiln = _measure(
            kiln_command("run", "--config", str(root / "plant.yaml"), "--port", str(port)),
            port, "/api/v1/health", bodies, root, root / "data",
        )  # fmt: skip
        port = free_port()
        floor = _measure(
            [sys.executable, "-m", "uvicorn", "benchmarks.baseline_ingest_app:app",
             "--port", str(port), "--log-level", "warning"],
            port, "/docs", bodies, Path.cwd(), None,
        )  # fmt: skip
    yield {
        "metric": "http_ingest_points_per_s",
        "value": round(kiln),
        "unit": "points/s",
        "baseline": "FastAPI parsing the same bodies into the same model, no storage",
        "baseline_value": round(floor),
        "ratio": round(kiln / floor, 3),
        "batch": BATCH,
        "concurrency": CONCURRENCY,
        "points": len(bodies) * BATCH,
    }


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row))
