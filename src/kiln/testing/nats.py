"""NATS JetStream for tests: is the broker there, a bus prefix of a test's own, and a broker of
a test's own that it can kill.

`KILN_TEST_NATS_URL` names the server (default: the local one on 4222, started with -js).
Each test's bus gets a fresh prefix, so its streams and consumers are its own; the test deletes
them afterwards (`NatsBus.destroy()`). Nothing here imports the NATS client: checking that the
port answers needs none.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from kiln.testing.broker_process import BrokerProcess, fail_or_skip, find_binary

NATS_URL = os.environ.get("KILN_TEST_NATS_URL", "nats://127.0.0.1:4222")


def problem(url: str = NATS_URL) -> str | None:
    """Why NATS at `url` cannot be used by the tests, or None."""
    try:
        import nats  # noqa: F401
    except ImportError:
        return "nats-py is not installed: pip install 'kiln[nats]'"
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as err:
        return f"NATS is not reachable at {url}: {err}"
    return None


def require_nats(url: str = NATS_URL) -> None:
    """In a test: NATS must answer at `url`. Without it the test fails under CI=true and is
    skipped elsewhere, saying why."""
    import pytest  # only tests call this; the installed package does not need pytest

    reason = problem(url)
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true requires the NATS runs", pytrace=False)
    pytest.skip(f"{reason} (set CI=true to make this a failure)")


def unique_prefix() -> str:
    """A bus prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"


class NatsServer(BrokerProcess):
    """A nats-server with JetStream of a test's own, on an ephemeral port, that the test can
    kill and restart (its store directory survives, as a real broker's disk would).

    Needs the `nats-server` binary. The shared server on 4222 is for tests that only need a
    broker; fault tests kill this one instead.
    """

    name = "nats-server"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.exe = find_binary("nats-server", "https://nats.io/download")
        super().__init__(port)
        self.store = workdir / "jetstream"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.exe, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]


def own_server(workdir: Path) -> NatsServer:
    """A NatsServer for a test, not yet started. Without the binary the test fails under
    CI=true and is skipped, saying why, elsewhere."""
    try:
        return NatsServer(workdir)
    except FileNotFoundError as err:
        fail_or_skip(err)
