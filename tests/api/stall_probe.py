"""What the loop-stall tests share: a real server, and a probe of `/api/v1/health` in a thread.

A probe sent while the server's event loop is busy waits until it is free, so the slowest
answer is the longest stall a client saw (issue 12: the loop must never parse a body).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from kiln.testing.auth import admin_headers, device_headers
from kiln.testing.server import free_port, kiln_command, running_server

STALL_LIMIT_S = 0.100


class Probe:
    """GETs /api/v1/health in a loop from its own thread; remembers every latency."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                r = client.get("/api/v1/health")
                elapsed = time.perf_counter() - started
                assert r.status_code in (200, 503), r.text
                self.latencies.append(elapsed)
                time.sleep(0.005)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)

    def summary(self) -> str:
        ms = sorted(x * 1000 for x in self.latencies)
        return f"{len(ms)} probes, median {ms[len(ms) // 2]:.0f} ms, worst {ms[-1]:.0f} ms"

    def check(self, what: str) -> None:
        assert self.latencies, "the probe never answered"
        print(f"{what}: {self.summary()}")
        assert self.worst < STALL_LIMIT_S, (
            f"/api/v1/health took {self.worst * 1000:.0f} ms while {what} was processed "
            f"({self.summary()})"
        )

    def __enter__(self) -> Probe:
        self._thread.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def probed(
    base: str, send: Callable[[httpx.Client], httpx.Response]
) -> tuple[httpx.Response, Probe]:
    """`send(client)` while health is probed. A second try when the first saw a stall: on a loaded
    machine the OS may leave the server without a CPU for a moment, which is not what these
    tests are about; a loop blocked by parsing (seconds, before) stalls on every try. Every
    request sent this way must be harmless to repeat (idempotent writes, or refused ones)."""
    for _ in range(2):
        with httpx.Client(base_url=base, timeout=120) as client, Probe(base) as probe:
            response = send(client)
        if probe.worst < STALL_LIMIT_S:
            break
    return response, probe


@contextmanager
def stall_server(root: Path, device: str) -> Iterator[tuple[str, dict[str, str], int]]:
    """A `kiln run` subprocess with its data in `root`: its base URL, the headers of a device
    credential under `acme`, and its process id."""
    config = root / "plant.yaml"
    config.write_text(f"name: {device} stall test\ndata_dir: data\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_server(
        kiln_command("run", "--config", str(config), "--port", str(port)),
        port=port,
        log=root / "server.log",
        cwd=root,
    ) as proc:
        with httpx.Client(base_url=base, timeout=60) as client:
            admin = admin_headers(client, root / "data")
            headers = device_headers(client, admin, device, "acme")
        yield base, headers, proc.pid
