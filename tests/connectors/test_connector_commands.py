"""The `connectors` command target: each way a write can fail becomes the kind a caller maps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kiln.connectors.base import ConnectorState
from kiln.connectors.commands import ConnectorCommands, NotWritable
from kiln.connectors.service import Connectors
from kiln.core.bus import Command, CommandError, CommandFailure, NoResponderError
from kiln.core.platform import Platform, Stage
from kiln.core.values import Scalar
from kiln.testing import FakeClock
from kiln.testing.connector import SOURCES, FakeConfig, FakeSource

PATH = "acme/site1/press/p1/setpoint"


@dataclass
class Device:
    """A writable connector whose write raises `error` (or records the value)."""

    error: BaseException | None = None
    written: list[tuple[str, Scalar]] = field(default_factory=list)

    async def write(self, path: str, value: Scalar) -> None:
        if self.error is not None:
            raise self.error
        self.written.append((path, value))


@dataclass
class Runner:
    name: str = "press-plc"
    state: ConnectorState = ConnectorState.CONNECTED


class Owner:
    """Stands in for `Connectors`: one writable connector for PATH."""

    def __init__(self, device: Device, runner: Runner) -> None:
        self.device, self.runner = device, runner

    def writer_for(self, path: str) -> tuple[Runner, Device]:
        if path != PATH:
            raise NotWritable(f"no connector can write {path!r}; writable connectors: press-plc")
        return self.runner, self.device


async def write(device: Device, runner: Runner | None = None, path: str = PATH) -> object:
    handler = ConnectorCommands(Owner(device, runner or Runner()))  # type: ignore[arg-type]
    return await handler(Command("connectors", "write", {"path": path, "value": 7}))


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (ValueError("70000 is outside the uint16 range"), CommandFailure.INVALID, "uint16"),
        (LookupError("not a writable tag"), CommandFailure.INVALID, "not a writable tag"),
        (ConnectionResetError("peer reset"), CommandFailure.UNAVAILABLE, "not connected: peer"),
        (TimeoutError("no answer in 0.5 s"), CommandFailure.UNAVAILABLE, "no answer"),
        (OSError("exception code 4"), CommandFailure.FAILED, "exception code 4"),
    ],
)
async def test_a_failed_write_is_a_command_error_of_its_kind(
    error: BaseException, kind: CommandFailure, message: str
) -> None:
    with pytest.raises(CommandError, match=message) as caught:
        await write(Device(error))
    assert caught.value.kind is kind


async def test_what_never_reaches_a_device() -> None:
    device = Device()
    with pytest.raises(CommandError, match="writable connectors: press-plc") as caught:
        await write(device, path="acme/elsewhere/x")
    assert caught.value.kind is CommandFailure.NOT_FOUND
    with pytest.raises(CommandError, match=r"press-plc is not connected \(error\)") as caught:
        await write(device, Runner(state=ConnectorState.ERROR))
    assert caught.value.kind is CommandFailure.UNAVAILABLE
    handler = ConnectorCommands(Owner(device, Runner()))  # type: ignore[arg-type]
    for bad in ({"path": PATH}, {"path": 3, "value": 1}, {"path": PATH, "value": [1]}):
        with pytest.raises(CommandError, match="a write takes") as caught:
            await handler(Command("connectors", "write", bad))
        assert caught.value.kind is CommandFailure.INVALID
    with pytest.raises(CommandError, match="not 'reboot'"):
        await handler(Command("connectors", "reboot"))
    assert device.written == []
    assert await write(device) == {"connector": "press-plc"}
    assert device.written == [(PATH, 7)]


@pytest.fixture
def pump() -> Iterator[FakeSource]:
    SOURCES.clear()
    source = SOURCES["pump"] = FakeSource()
    yield source
    SOURCES.clear()


async def test_the_service_serves_its_target_while_it_runs(
    tmp_path: Path, pump: FakeSource
) -> None:
    platform = Platform(clock=FakeClock(), data_dir=tmp_path)
    platform.add(Connectors([FakeConfig(name="pump-plc", source="pump", tags=[PATH])]),
                 Stage.SOURCES)  # fmt: skip
    status = Command("connectors", "status")
    async with platform:
        reply = await platform.bus.request(status, timeout_s=5)
        assert list(reply["connectors"]) == ["pump-plc"]
        assert reply["connectors"]["pump-plc"]["type"] == "fake"
    with pytest.raises(NoResponderError):
        await platform.bus.request(status, timeout_s=5)
