"""Platform lifecycle: staged start and reverse stop, timeouts, supervised tasks, typed lookup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kiln.core.errors import StartupError
from kiln.core.platform import Health, Platform, Stage, Status
from kiln.testing import FakeClock


class Recorder:
    def __init__(
        self, name: str, log: list[str], *, hang: bool = False, fail: bool = False
    ) -> None:
        self.name = name
        self.log = log
        self.hang = hang
        self.fail = fail

    async def start(self, platform: Platform) -> None:
        if self.fail:
            raise OSError("port in use")
        if self.hang:
            await asyncio.Event().wait()
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")

    def health(self) -> Health:
        return Health(Status.OK)


class Other(Recorder):
    pass


class Third(Recorder):
    pass


async def test_stages_start_in_order_and_stop_in_reverse(tmp_path: Path) -> None:
    log: list[str] = []
    platform = Platform(clock=FakeClock(), data_dir=tmp_path / "d")
    platform.add(Other("source", log), Stage.SOURCES)
    platform.add(Recorder("storage", log), Stage.STORAGE)
    platform.add(Third("engine", log), Stage.ENGINES)
    async with platform:
        assert platform.running
        assert platform.service(Recorder).name == "storage"
        assert platform.service(Other).name == "source"
    assert log == [
        "start storage", "start engine", "start source",
        "stop source", "stop engine", "stop storage",
    ]  # fmt: skip
    assert (tmp_path / "d").is_dir()


async def test_a_hung_start_is_named_and_started_services_are_stopped(tmp_path: Path) -> None:
    log: list[str] = []
    platform = Platform(clock=FakeClock(), data_dir=tmp_path, start_timeout=0.05)
    platform.add(Recorder("storage", log), Stage.STORAGE)
    platform.add(Other("stuck", log, hang=True), Stage.ENGINES)
    with pytest.raises(StartupError, match=r"'stuck' did not start within .* \(stage engines\)"):
        async with platform:
            pass
    assert log == ["start storage", "stop storage"]


async def test_a_failed_start_names_the_service_and_cause(tmp_path: Path) -> None:
    platform = Platform(clock=FakeClock(), data_dir=tmp_path)
    platform.add(Recorder("http", [], fail=True), Stage.STORAGE)
    with pytest.raises(StartupError, match="'http' failed to start: port in use"):
        async with platform:
            pass


async def test_a_crashing_task_is_reported_not_fatal(tmp_path: Path) -> None:
    platform = Platform(clock=FakeClock(), data_dir=tmp_path)
    ran = asyncio.Event()

    async def boom() -> None:
        raise ValueError("device sent garbage")

    async def steady() -> None:
        ran.set()
        await asyncio.Event().wait()

    async with platform:
        platform.spawn(boom(), name="bad-device")
        platform.spawn(steady(), name="good-device")
        await asyncio.wait_for(ran.wait(), 1)
        await asyncio.sleep(0)
        health = platform.health()
        assert health["task:bad-device"].status is Status.FAILED
        assert "device sent garbage" in health["task:bad-device"].detail["error"]
        assert "task:good-device" not in health
    # leaving the context cancelled the steady task instead of hanging


async def test_lookup_of_missing_service_and_duplicate_registration(tmp_path: Path) -> None:
    platform = Platform(clock=FakeClock(), data_dir=tmp_path)
    platform.add(Recorder("a", []), Stage.STORAGE)
    with pytest.raises(ValueError, match="already registered"):
        platform.add(Recorder("b", []), Stage.STORAGE)
    with pytest.raises(LookupError, match="no Other service"):
        platform.service(Other)
    with pytest.raises(RuntimeError, match="not running"):
        platform.spawn(asyncio.sleep(0), name="x")
