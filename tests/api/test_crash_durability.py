"""A point acknowledged by POST /api/v1/ingest survives kill -9 of the server process."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from kiln.testing.auth import admin_headers, device_headers
from kiln.testing.server import free_port, kiln_command, running_server

pytestmark = pytest.mark.slow

N = 2_000


@contextmanager
def server(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = kiln_command("run", "--config", str(config), "--port", str(port))
    with running_server(command, port=port, log=log) as proc:
        yield proc


def test_acknowledged_points_survive_kill_9(tmp_path: Path) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text("name: crash test\ndata_dir: data\n")
    port = free_port()
    values = [
        {"path": "acme/site1/area1/m1/temp", "value": i * 0.5, "ts": 1_767_225_600_000 + i * 1000}
        for i in range(N)
    ]
    log = tmp_path / "server.log"
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        _crash_and_query(client, config, port, log, values, tmp_path / "data")


def _crash_and_query(
    client: httpx.Client,
    config: Path,
    port: int,
    log: Path,
    values: list[dict[str, object]],
    data_dir: Path,
) -> None:
    with server(config, port, log) as proc:
        admin = admin_headers(client, data_dir)
        device = device_headers(client, admin, "crash-gw", "acme")
        r = client.post("/api/v1/ingest", json={"values": values}, headers=device)
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
        # Sessions, like points, survive the crash: the same token still works.
        raw = client.get("/api/v1/history/raw", params=params, headers=admin).json()
        assert len(raw["values"]) == N
        assert raw["values"][-1]["value"] == (N - 1) * 0.5
        latest = client.get(
            "/api/v1/values/latest", params={"tag": params["tag"]}, headers=admin
        ).json()
        assert latest["values"][0]["value"] == (N - 1) * 0.5
        # Re-sending after the crash (a client that never saw the answer) is harmless.
        again = client.post("/api/v1/ingest", json={"values": values}, headers=device)
        assert again.status_code == 200
        raw = client.get("/api/v1/history/raw", params=params, headers=admin).json()
        assert len(raw["values"]) == N


def test_ctrl_c_stops_cleanly_and_checkpoints(tmp_path: Path) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text("name: stop test\ndata_dir: data\n")
    port = free_port()
    log = tmp_path / "server.log"
    with server(config, port, log) as proc:
        base = f"http://127.0.0.1:{port}"
        device = device_headers(
            httpx, admin_headers(httpx, tmp_path / "data", base), "gw", "a", base
        )
        r = httpx.post(
            f"{base}/api/v1/ingest",
            json={"values": [{"path": "a/b/c", "value": 1.0}]},
            headers=device,
            timeout=30,
        )
        assert r.status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    text = log.read_text()
    assert "Kiln stopped" in text
    assert "Traceback" not in text
    assert (tmp_path / "data" / "history.duckdb").exists()
    assert not (tmp_path / "data" / "history.duckdb.wal").exists(), "stop checkpoints the WAL"
