"""Quiet by default: at the default level a running Kiln logs its start, its connectors' state
changes and its problems, not every request nor its libraries' chatter."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from kiln import __version__
from kiln.testing.server import free_port, kiln_command, running_server

pytestmark = pytest.mark.slow


def test_the_demo_logs_no_requests_and_no_library_chatter(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "kiln.log"
    command = kiln_command(
        "demo", "--port", str(port), "--data-dir", str(tmp_path / "data"), "--mqtt-url", "none"
    )
    with running_server(command, port=port, log=log):
        started = log.read_text()
        for _ in range(5):  # what a load balancer or the web page's health poll does
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health") as answer:
                assert answer.status == 200
        polled = log.read_text()
    text = log.read_text()
    assert f"Kiln {__version__}: serving" in started  # the server did log, and starts with one line
    assert "GET /api/v1/health" not in polled, polled[len(started) :]
    assert "alembic" not in text  # migration context, three times over (one per database)
    assert "Uvicorn running" not in text and "Started server process" not in text
    # The stores opening is start-up detail: the start is "Kiln ... running with N services".
    for detail in ("Identity loaded", "Audit log open", "Asset model loaded"):
        assert detail not in text
    assert "running with" in started
    # The demo's OPC UA client certificate needs no one to trust it: no warning asking to.
    assert "Generated an OPC UA client certificate" not in text


def test_debug_shows_the_access_log(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "kiln.log"
    config = tmp_path / "plant.yaml"
    config.write_text("name: quiet test\ndata_dir: data\n")
    command = kiln_command("run", "--config", str(config), "--port", str(port))
    with running_server([*command, "--log-level", "debug"], port=port, log=log):
        pass
    text = log.read_text()
    assert "GET /api/v1/health" in text  # running_server's readiness poll
    assert "alembic.runtime.migration" in text
    assert "Identity loaded" in text
