"""A point acknowledged by POST /api/v1/ingest survives kill -9 of the server process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

N = 2_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiln.cli", "run", "--config", str(config), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def test_acknowledged_points_survive_kill_9(tmp_path: Path) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text("name: crash test\ndata_dir: data\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    values = [
        {"path": "acme/site1/area1/m1/temp", "value": i * 0.5, "ts": 1_767_225_600_000 + i * 1000}
        for i in range(N)
    ]
    log = tmp_path / "server.log"
    with server(config, port, log) as proc:
        r = httpx.post(f"{base}/ingest", json={"values": values}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == N
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no checkpoint: only the WAL remains
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL

    with server(config, port, log):
        params = {
            "tag": "acme/site1/area1/m1/temp",
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-01-02T00:00:00Z",
            "limit": 5000,
        }
        raw = httpx.get(f"{base}/history/raw", params=params, timeout=30).json()
        assert len(raw["values"]) == N
        assert raw["values"][-1]["value"] == (N - 1) * 0.5
        latest = httpx.get(
            f"{base}/values/latest", params={"tag": params["tag"]}, timeout=30
        ).json()
        assert latest["values"][0]["value"] == (N - 1) * 0.5
        # Re-sending after the crash (a client that never saw the answer) is harmless.
        again = httpx.post(f"{base}/ingest", json={"values": values}, timeout=30)
        assert again.status_code == 200
        raw = httpx.get(f"{base}/history/raw", params=params, timeout=30).json()
        assert len(raw["values"]) == N
