"""A broker process of a test's own (Mosquitto, nats-server), on an ephemeral port, that the
test can kill and restart: what every fault test of a connection to a broker needs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, Self

from kiln.testing.server import free_port


def find_binary(name: str, hint: str) -> str:
    """The path of `name` (on PATH or in /usr/sbin, where Debian puts daemons)."""
    exe = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if exe is None:
        raise FileNotFoundError(f"{name} is not installed ({hint})")
    return exe


class BrokerProcess:
    """Started by `start()` (returns once the port answers), stopped hard by `kill()`."""

    name = "broker"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(
            list(self.command()), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not start on port {self.port}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def fail_or_skip(err: Exception) -> NoReturn:
    """A test without its broker binary fails under CI=true and is skipped, saying why, else."""
    import pytest  # only tests call this; the installed package does not need pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"{err}; CI=true needs it")
    pytest.skip(f"{err} (set CI=true to fail instead)")
