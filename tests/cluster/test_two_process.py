"""Kiln split over two processes through NATS JetStream (`kiln run --role sources|server`), and
what a kill -9 of either costs: nothing that was acknowledged.

Real processes, a real broker (the machine's NATS on 4222, a fresh bus prefix per test whose
streams are deleted afterwards) and a real Modbus TCP device on an ephemeral port. The counting
fake connector (`kiln.testing.connector`, counter_every_s) publishes a gap-free sequence and
logs each value the broker acknowledged, so a test can tell exactly what must be stored.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from kiln.app.sources import HEALTH, HEALTH_TARGET
from kiln.connectors.modbus.codec import Table
from kiln.core.bus import Command
from kiln.core.clock import SystemClock
from kiln.sim.modbus import RegisterImage, modbus_server
from kiln.testing.auth import admin_headers, device_headers
from kiln.testing.nats import NATS_URL, require_nats, unique_prefix
from kiln.testing.server import free_port, kiln_command, running_server

pytestmark = pytest.mark.slow

T = TypeVar("T")

COUNT = "acme/site1/area1/m1/count"
PRESS = "acme/site1/area1/press"
DAY = {"start": "-1d", "end": "now", "limit": 100_000}


# -- helpers ------------------------------------------------------------------------------


@pytest.fixture
def prefix() -> Iterator[str]:
    """A bus prefix of this test's own; its streams are deleted afterwards."""
    require_nats()
    name = unique_prefix()
    yield name
    asyncio.run(_delete_streams(name))


async def _sources_health(prefix: str) -> Mapping[str, Any]:
    from kiln.cluster.nats_bus import NatsBus

    bus = NatsBus(NATS_URL, SystemClock(), node="probe", prefix=prefix)
    await bus.start()
    try:
        return await bus.request(Command(HEALTH_TARGET, HEALTH), timeout_s=10)
    finally:
        await bus.stop()


async def _delete_streams(prefix: str) -> None:
    from kiln.cluster.nats_bus import NatsBus

    bus = NatsBus(NATS_URL, SystemClock(), prefix=prefix)
    await bus.start()
    await bus.destroy()
    await bus.stop()


def plant(tmp_path: Path, prefix: str, *, connectors: str = "") -> Path:
    config = tmp_path / "plant.yaml"
    config.write_text(
        f"""\
name: two processes
data_dir: data
bus:
  url: {NATS_URL}
  prefix: {prefix}
  # A batch the killed server took but never acknowledged goes to its successor this soon.
  ack_wait_s: 2
connectors:
{connectors or "  []"}
"""
    )
    return config


def counter(acked: Path, every_s: float = 0.01) -> str:
    return f"""\
  - name: counter
    type: fake
    tags: [{COUNT}]
    counter_every_s: {every_s}
    acked_log: {acked}
"""


def press(port: int) -> str:
    return f"""\
  - name: press
    type: modbus
    host: 127.0.0.1
    port: {port}
    timeout_s: 0.5
    reconnect: {{initial_s: 0.1, max_s: 0.4, jitter: false}}
    devices:
      - unit: 1
        prefix: {PRESS}
        poll_groups:
          - interval_ms: 100
            tags:
              - {{name: speed, address: 0, type: uint16}}
              - {{name: setpoint, address: 10, type: uint16, writable: true}}
"""


@contextmanager
def server(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = kiln_command("run", "--config", str(config), "--role", "server", "--port", str(port))
    with running_server(command, port=port, log=log) as proc:
        yield proc


@contextmanager
def sources(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            kiln_command("run", "--config", str(config), "--role", "sources"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def kill_9(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no checkpoint, no last acknowledgement
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def eventually(probe: Callable[[], T | None], what: str, *logs: Path, timeout: float = 30) -> T:
    """The first truthy result of `probe` (a condition of other processes: polled)."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            tails = "\n".join(
                f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs
            )
            raise AssertionError(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.1)


def acked(log: Path) -> list[int]:
    """The counter values the broker acknowledged (the log's complete lines)."""
    if not log.exists():
        return []
    text = log.read_text()
    return [int(line) for line in text[: text.rfind("\n") + 1].split()]


def stored(client: httpx.Client, headers: dict[str, str], tag: str) -> list[Any]:
    """The Good values the server's history holds for `tag`, in time order."""
    r = client.get("/api/v1/history/raw", params={"tag": tag, **DAY}, headers=headers)
    if r.status_code == 404:  # the tag is not known yet
        return []
    assert r.status_code == 200, r.text
    return [v["value"] for v in r.json()["values"] if v["quality"] == "good"]


def latest(client: httpx.Client, headers: dict[str, str], tag: str) -> Any | None:
    r = client.get("/api/v1/values/latest", params={"tag": tag}, headers=headers)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    values = r.json()["values"]
    return values[0] if values else None


class ModbusDevice:
    """A Modbus TCP device on an ephemeral port, served from a thread of its own: the test
    talks to the Kiln processes synchronously meanwhile."""

    def __init__(self) -> None:
        self.port = free_port()
        self.image = RegisterImage()
        self.image.define(1, Table.HOLDING_REGISTER, 0, 20)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: Any = None

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._server = modbus_server(self.image, "127.0.0.1", self.port)  # needs a running loop
        serving = asyncio.ensure_future(self._server.serve_forever())
        while True:  # listening once a connection is taken
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            break
        self._ready.set()
        await serving

    def __enter__(self) -> ModbusDevice:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(10)
        self._thread.join(10)
        self._loop.close()

    def holding(self, address: int) -> int:
        return self.image.get(1, Table.HOLDING_REGISTER, address)[0]


# -- tests --------------------------------------------------------------------------------


def test_a_split_role_without_a_bus_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text("name: one process only\ndata_dir: data\n")
    for role in ("sources", "server"):
        done = subprocess.run(
            kiln_command("run", "--config", str(config), "--role", role),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert f"--role {role}" in done.stderr
        assert "bus.url" in done.stderr and "nats://" in done.stderr, done.stderr
    assert not (tmp_path / "data").exists(), "refused before anything started"


def test_values_flow_and_write_back_reaches_the_device(tmp_path: Path, prefix: str) -> None:
    port = free_port()
    logs = (tmp_path / "server.log", tmp_path / "sources.log")
    with ModbusDevice() as device:
        device.image.set(1, Table.HOLDING_REGISTER, 0, [1234])
        config = plant(tmp_path, prefix, connectors=press(device.port))
        # The sources first: they need nothing from the server to start.
        with (
            sources(config, logs[1]) as proc,
            server(config, port, logs[0]),
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
        ):
            admin = admin_headers(client, tmp_path / "data")
            # Read in the sources process, stored and made latest by the server's historian
            # (and a tag of its model: the description came as a bus event).
            speed = eventually(
                lambda: latest(client, admin, f"{PRESS}/speed"), "the speed's latest", *logs
            )
            assert speed["value"] == 1234
            assert 1234 in eventually(
                lambda: stored(client, admin, f"{PRESS}/speed"), "the speed's history", *logs
            )
            # Write-back: the server's API, a bus command, the connector in the other process.
            r = client.post(
                "/api/v1/write", json={"path": f"{PRESS}/setpoint", "value": 1500}, headers=admin
            )
            assert r.status_code == 200, r.text
            assert r.json()["connector"] == "press"
            assert device.holding(10) == 1500
            # And the connectors' status crosses too.
            status = client.get("/api/v1/connectors", headers=admin)
            assert status.status_code == 200, status.text
            assert "press" in status.text
            # The sources process has no HTTP: it answers for its health on the bus.
            health = asyncio.run(_sources_health(prefix))
            assert health["services"]["connectors"]["detail"]["press"]["state"] == "connected"
            assert health["services"]["bus"]["status"] == "ok"
            proc.terminate()  # SIGTERM: a clean stop
            assert proc.wait(timeout=30) == 0
    text = logs[1].read_text()
    assert "Sources health" in text and "Kiln stopped" in text
    assert "Traceback" not in text


def test_an_acknowledged_ingest_survives_kill_9_of_the_server(tmp_path: Path, prefix: str) -> None:
    config = plant(tmp_path, prefix)
    port, log = free_port(), tmp_path / "server.log"
    tag = "acme/site1/area1/m2/temp"
    n = 500
    values = [{"path": tag, "value": i * 0.5, "ts": 1_767_225_600_000 + i * 1000} for i in range(n)]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        with server(config, port, log) as proc:
            admin = admin_headers(client, tmp_path / "data")
            device = device_headers(client, admin, "gw", "acme")
            for i in range(0, n, 100):  # several requests; the kill follows the last 200
                r = client.post("/api/v1/ingest", json={"values": values[i : i + 100]},
                                headers=device)  # fmt: skip
                assert r.status_code == 200, r.text
            kill_9(proc)
        with server(config, port, log):
            params = {"tag": tag, "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
            r = client.get("/api/v1/history/raw", params=params, headers=admin)
            assert r.status_code == 200, r.text
            assert [v["value"] for v in r.json()["values"]] == [v["value"] for v in values]


def test_values_published_while_the_server_is_killed_arrive_after_its_restart(
    tmp_path: Path, prefix: str
) -> None:
    acked_log = tmp_path / "acked.log"
    config = plant(tmp_path, prefix, connectors=counter(acked_log))
    port = free_port()
    logs = (tmp_path / "server.log", tmp_path / "sources.log")
    # The server first: the test counts from values it has stored (either order works: every
    # process declares the historian's consumer at start, `bus.storing`).
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
        server(config, port, logs[0]) as proc,
        sources(config, logs[1]),
    ):
        admin = admin_headers(client, tmp_path / "data")
        eventually(lambda: stored(client, admin, COUNT), "the first counts", *logs)
        kill_9(proc)
        before = len(acked(acked_log))
        # The sources keep publishing into the broker while no server runs.
        eventually(lambda: len(acked(acked_log)) >= before + 100, "counts in the outage")
        with server(config, port, logs[0]):
            in_outage = acked(acked_log)[-1]
            got = eventually(
                lambda: (v := stored(client, admin, COUNT)) and v[-1] >= in_outage and v,
                "the counts published during the outage",
                *logs,
            )
            # Gap-free and in order: none lost, none stored twice.
            assert got == list(range(len(got)))
            assert latest(client, admin, COUNT)["value"] >= in_outage


def test_every_value_the_broker_acknowledged_survives_kill_9_of_the_sources(
    tmp_path: Path, prefix: str
) -> None:
    acked_log = tmp_path / "acked.log"
    config = plant(tmp_path, prefix, connectors=counter(acked_log, every_s=0.002))
    port = free_port()
    logs = (tmp_path / "server.log", tmp_path / "sources.log")
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
        server(config, port, logs[0]),
    ):
        admin = admin_headers(client, tmp_path / "data")
        with sources(config, logs[1]) as proc:
            eventually(lambda: len(acked(acked_log)) >= 300, "300 acknowledged counts", *logs)
            kill_9(proc)  # mid-publish: the last value may be stored without its log line
        owed = acked(acked_log)
        assert owed == list(range(len(owed)))
        got = eventually(
            lambda: (v := stored(client, admin, COUNT)) and v[-1] >= owed[-1] and v,
            "every acknowledged count",
            *logs,
        )
        assert got[: len(owed)] == owed
        assert len(got) <= len(owed) + 1  # at most the one in flight at the kill
