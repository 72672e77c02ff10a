"""A Mosquitto broker of a test's own, on an ephemeral port, that the test can kill and restart.

Needs the `mosquitto` binary (Debian: apt-get install mosquitto). The shared broker on 1883 is
for tests that only need a broker; fault tests kill this one instead.
"""

from __future__ import annotations

import socket
from pathlib import Path

from kiln.testing.broker_process import BrokerProcess, fail_or_skip, find_binary


class Mosquitto(BrokerProcess):
    name = "mosquitto"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.exe = find_binary("mosquitto", "apt-get install mosquitto")
        super().__init__(port)
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"log_dest file {workdir / 'mosquitto.log'}\n"
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.exe, "-c", str(self.config)]


def own_broker(workdir: Path) -> Mosquitto:
    """A Mosquitto for a test, not yet started. Without the binary the test fails under CI=true
    (the machine must have it) and is skipped, saying why, elsewhere."""
    try:
        return Mosquitto(workdir)
    except FileNotFoundError as err:
        fail_or_skip(err)


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
