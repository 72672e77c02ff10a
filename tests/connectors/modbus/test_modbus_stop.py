"""The Modbus connector stops when its client loses a cancellation: pymodbus waits for an answer
with asyncio.wait_for, which under Python 3.11 returns an answer that came in the same turn of
the loop as the cancellation (python/cpython#86296). Found as a test that hung on stop about one
run in twenty; here the race is made certain with a client that always answers so."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import pytest

from kiln.connectors.base import ConnectorState
from kiln.connectors.link import Link
from kiln.connectors.modbus import connector as modbus_connector
from kiln.connectors.modbus.config import ModbusConfig
from kiln.connectors.modbus.connector import ModbusConnector
from kiln.connectors.runner import ConnectorRunner
from kiln.core.platform import Platform
from kiln.testing import FakeClock


class _Answer:
    registers = (0x4000, 0x0000)
    bits = (False,) * 8

    def isError(self) -> bool:
        return False


class _AnswersWhenCancelled:
    """In pymodbus's client's place: a read waits for its answer; cancelled, it returns the
    answer all the same, as wait_for does when both come in the same turn of the loop."""

    reads = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.connected = False

    async def connect(self) -> bool:
        self.connected = True
        return True

    def close(self) -> None:
        self.connected = False

    async def read_holding_registers(self, address: int, **kwargs: Any) -> _Answer:
        _AnswersWhenCancelled.reads += 1
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)  # the answer is on its way
        return _Answer()


async def test_a_stop_ends_the_poll_even_when_the_client_answers_instead_of_cancelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(modbus_connector, "AsyncModbusTcpClient", _AnswersWhenCancelled)
    monkeypatch.setattr(_AnswersWhenCancelled, "reads", 0)
    caplog.set_level(logging.WARNING, logger="kiln.connectors")
    config = ModbusConfig.model_validate({
        "name": "press7", "host": "127.0.0.1", "port": 502,
        "devices": [{"prefix": "acme/plant1/press/line1/press7", "poll_groups": [
            {"interval_ms": 50, "tags": [{"name": "force", "address": 0, "type": "float32"}]},
        ]}],
    })  # fmt: skip
    clock = FakeClock()
    platform = Platform(clock=clock, data_dir=tmp_path)
    async with platform:
        link = Link("press7", platform.bus, clock, logging.getLogger(__name__))
        # A grace period longer than the wait below: the poll must end of its own cancellation,
        # not because the runner closed its connection.
        runner = ConnectorRunner(config, ModbusConnector(config), link, clock, stop_grace_s=30)
        task = asyncio.create_task(runner.run_forever())
        for _ in range(20):
            await asyncio.sleep(0)
        assert runner.effective_state is ConnectorState.CONNECTED
        assert _AnswersWhenCancelled.reads == 1
        runner.request_stop()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done == {task}, "the poll went on after it was cancelled"
        assert task.cancelled() and runner.state is ConnectorState.STOPPED
        assert _AnswersWhenCancelled.reads == 1, "no read after the stop"
        assert runner.link.stats.failures == 0
        assert [r.getMessage() for r in caplog.records] == []
