"""A Mosquitto broker of a test's own, on an ephemeral port, that the test can kill and restart.

Needs the `mosquitto` binary (Debian: apt-get install mosquitto). The shared broker on 1883 is
for tests that only need a broker; fault tests kill this one instead.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from kiln.testing.server import free_port


class Mosquitto:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        exe = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if exe is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.exe = exe
        self.port = port or free_port()
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"log_dest file {workdir / 'mosquitto.log'}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not start on port {self.port}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def own_broker(workdir: Path) -> Mosquitto:
    """A Mosquitto for a test, not yet started. Without the binary the test fails under CI=true
    (the machine must have it) and is skipped, saying why, elsewhere."""
    import os

    import pytest

    try:
        return Mosquitto(workdir)
    except FileNotFoundError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{err}; CI=true needs it")
        pytest.skip(f"{err} (set CI=true to fail instead)")


SHARED_BROKER = ("127.0.0.1", 1883)


def require_shared_broker() -> None:
    """In a test: the machine's broker on 127.0.0.1:1883 must answer. Without it the test fails
    under CI=true and is skipped elsewhere, saying why."""
    import os

    import pytest  # only tests call this; the installed package does not need pytest

    try:
        socket.create_connection(SHARED_BROKER, timeout=2).close()
    except OSError as err:
        where = f"{SHARED_BROKER[0]}:{SHARED_BROKER[1]}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"Mosquitto is not reachable on {where}: {err}; CI=true needs it")
        pytest.skip(f"Mosquitto is not reachable on {where} (CI=true makes this fail)")
