"""The connector framework with the fake connector: reconnect with backoff, Bad quality while
the source is gone, logging once per outage, isolation between connectors, health, config."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import pytest

from kiln.app.settings import Settings
from kiln.connectors.backoff import Backoff, BackoffSettings
from kiln.connectors.base import ConnectorState
from kiln.connectors.runner import ConnectorRunner
from kiln.connectors.service import Connectors, NotWritable
from kiln.core.bus import Overflow
from kiln.core.config import parse_config
from kiln.core.errors import ConfigError
from kiln.core.platform import Platform, Stage, Status
from kiln.core.quality import Quality
from kiln.core.values import TagValue
from kiln.testing import FakeClock
from kiln.testing.connector import SOURCES, FakeConfig, FakeSource

T0 = 1_767_225_600_000_000
NO_JITTER = BackoffSettings(initial_s=1, max_s=8, jitter=False)


def test_backoff_grows_to_its_cap_and_resets() -> None:
    b = Backoff(NO_JITTER)
    assert [b.next_delay() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    b.reset()
    assert b.next_delay() == 1
    jittered = Backoff(BackoffSettings(initial_s=4, max_s=60), rand=iter([0.0, 1.0, 0.5]).__next__)
    assert [jittered.next_delay() for _ in range(3)] == [2.0, 8.0, 12.0]


def test_backoff_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="must not exceed max_s"):
        BackoffSettings(initial_s=10, max_s=5)


@pytest.fixture
def sources() -> dict[str, FakeSource]:
    SOURCES.clear()
    SOURCES.update(a=FakeSource(), b=FakeSource())
    yield SOURCES
    SOURCES.clear()


def config(name: str, source: str, tags: list[str]) -> FakeConfig:
    return FakeConfig(name=name, source=source, tags=tags, reconnect=NO_JITTER)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_outage_goes_bad_backs_off_recovers_and_logs_once(
    tmp_path: Path, sources: dict[str, FakeSource], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(T0)
    platform = Platform(clock=clock, data_dir=tmp_path)
    tag = "acme/site1/line1/m1/temp"
    service = Connectors([config("m1", "a", [tag]), config("m2", "b", ["acme/site1/line1/m2/x"])])
    platform.add(service, Stage.SOURCES)
    caplog.set_level(logging.DEBUG, logger="kiln.connectors")
    async with platform:
        seen = platform.bus.subscribe("test", max_points=10_000, overflow=Overflow.BLOCK)
        await settle()
        m1 = service.runner("m1")
        assert m1.state is ConnectorState.CONNECTED
        sources["a"].emit([TagValue(tag, 21.5, T0)])
        await settle()
        assert [(v.value, v.quality) for v in seen.drain(100)[0]] == [(21.5, Quality.GOOD)]

        sources["a"].fail("cable pulled")
        await settle()
        assert m1.state is ConnectorState.ERROR
        # The last value again, Bad (not connected), stamped with host time: not silence.
        (bad,) = seen.drain(100)
        assert [(v.path, v.value, v.quality, v.source_us) for v in bad] == [
            (tag, 21.5, Quality.BAD_NOT_CONNECTED, T0)
        ]
        health = service.health()
        assert health.status is Status.DEGRADED
        assert health.detail["m1"]["reason"] == "cable pulled"  # type: ignore[index]
        assert health.detail["m2"]["state"] == "connected"  # type: ignore[index]

        # Attempts at 1, 2, 4, 8, 8 s: each refused while the source stays down.
        for delay in (1, 2, 4, 8, 8):
            before = sources["a"].setups
            await clock.advance(delay - 0.001)
            assert sources["a"].setups == before
            await clock.advance(0.001)
            assert sources["a"].setups == before + 1
        sources["a"].up = True
        await clock.advance(8)
        assert m1.state is ConnectorState.CONNECTED and m1.outage is None
        sources["a"].emit([TagValue(tag, 22.0, clock.now_us())])
        await settle()
        assert [v.quality for b in seen.drain(100) for v in b] == [Quality.GOOD]
        # The other connector was never disturbed.
        assert sources["b"].setups == 1

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "Connector m1 lost its source: cable pulled; retrying with backoff (logged again on "
        "recovery)"
    ]
    recovered = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert recovered == ["Connector m1 recovered after 6 attempt(s) (fake source a is down)"]
    assert service.runner("m1").link.stats.reconnects == 1


async def test_a_connector_that_never_connects_does_not_stop_the_others(
    tmp_path: Path, sources: dict[str, FakeSource]
) -> None:
    sources["a"].up = False
    clock = FakeClock(T0)
    platform = Platform(clock=clock, data_dir=tmp_path)
    service = Connectors([config("down", "a", []), config("up", "b", ["p/q/r"])])
    platform.add(service, Stage.SOURCES)
    async with platform:
        await settle()
        assert service.runner("down").state is ConnectorState.ERROR
        assert service.runner("up").state is ConnectorState.CONNECTED
        assert platform.health()["connectors"].status is Status.DEGRADED
        await clock.advance(60)
        assert sources["a"].setups > 3
        assert platform.failed_tasks == {}
    assert service.runner("down").state is ConnectorState.STOPPED


async def test_write_goes_to_the_connector_that_owns_the_path(
    tmp_path: Path, sources: dict[str, FakeSource]
) -> None:
    platform = Platform(clock=FakeClock(T0), data_dir=tmp_path)
    service = Connectors([config("m1", "a", ["acme/m1/setpoint"])])
    platform.add(service, Stage.SOURCES)
    async with platform:
        assert await service.write("acme/m1/setpoint", 42.0) == "m1"
        assert sources["a"].written == [("acme/m1/setpoint", 42.0)]
        with pytest.raises(NotWritable, match="writable connectors: m1"):
            await service.write("acme/m2/setpoint", 1.0)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique: m1"):
        Connectors([config("m1", "a", []), config("m1", "b", [])])


def test_connector_config_errors_name_the_field_and_line() -> None:
    text = """\
connectors:
  - name: press1
    type: fake
    source: a
  - name: press2
    type: fake
    source: b
    reconect: {}
  - name: press3
    type: modbuss
"""
    with pytest.raises(ConfigError) as err:
        parse_config(text, Settings, source="plant.yaml")
    msg = str(err.value)
    assert "plant.yaml:8: connectors[1].reconect: unknown field" in msg
    assert "plant.yaml:9: connectors[2]: unknown connector type 'modbuss'; installed: " in msg
    ok = parse_config(text.split("  - name: press2")[0], Settings)
    assert isinstance(ok.connectors[0], FakeConfig) and ok.connectors[0].source == "a"


class _RaisesWhenCancelled:
    """A connector whose poll tasks turn their cancellation into a device error, as a client
    library may (a read cancelled mid-request reports a lost connection). Under Python 3.11's
    TaskGroup the runner then sees an ExceptionGroup where its own cancellation should be."""

    tags: tuple[str, ...] = ()

    async def setup(self, link: object) -> None:
        return None

    async def run(self, link: object) -> None:
        async def poll() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise ConnectionError("connection lost: request cancelled") from None

        async with asyncio.TaskGroup() as tg:
            tg.create_task(poll())

    async def teardown(self) -> None:
        return None


async def test_a_runner_stops_when_cancelled_even_if_its_connector_turns_that_into_an_error(
    tmp_path: Path,
) -> None:
    # Found as a test that hung on stop about one run in ten: the runner took the error for an
    # outage, backed off and retried, and the platform waited for it for ever.
    from kiln.connectors.link import Link
    from kiln.connectors.runner import ConnectorRunner

    clock = FakeClock()
    platform = Platform(clock=clock, data_dir=tmp_path)
    async with platform:
        link = Link("stubborn", platform.bus, clock, logging.getLogger(__name__))
        runner = ConnectorRunner(
            config("stubborn", "unused", []), _RaisesWhenCancelled(), link, clock
        )
        task = asyncio.create_task(runner.run_forever())
        await settle()
        assert runner.state is ConnectorState.CONNECTED
        runner.request_stop()  # what Connectors.stop does before it cancels
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done == {task}, "the runner went on after it was cancelled"
        assert task.cancelled()
        assert runner.state is ConnectorState.STOPPED
        assert link.stats.failures == 0, "a stop is not an outage"


class _LosesItsCancellation:
    """A connector whose poll task loses its cancellation, as one awaiting a client library may
    (Python 3.11's asyncio.wait_for returns an answer that came in the same turn of the loop as
    the cancellation), and polls on. Its requests fail once its connection is closed, unless
    it is `deaf`; `released` lets a test end it."""

    tags: tuple[str, ...] = ()

    def __init__(self, *, deaf: bool = False) -> None:
        self.deaf = deaf
        self.closed = False
        self.released = False

    async def setup(self, link: object) -> None:
        self.closed = False

    async def run(self, link: object) -> None:
        async def poll() -> None:
            while not self.released:
                # A request; its answer came as the cancellation did, and the answer wins.
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(0.01)
                if self.closed and not self.deaf:
                    raise ConnectionError("not connected")

        async with asyncio.TaskGroup() as tg:
            tg.create_task(poll())

    async def teardown(self) -> None:
        self.closed = True


async def _stop_runner(
    tmp_path: Path, connector: _LosesItsCancellation, grace_s: float
) -> tuple[ConnectorRunner, asyncio.Task[None], float]:
    """Start a runner on `connector`, stop it as Connectors.stop does: the runner, its task,
    and how long the stop took (or 5 s, if it did not end)."""
    from kiln.connectors.link import Link

    clock = FakeClock()
    platform = Platform(clock=clock, data_dir=tmp_path)
    async with platform:
        link = Link("deaf", platform.bus, clock, logging.getLogger(__name__))
        runner = ConnectorRunner(
            config("deaf", "unused", []), connector, link, clock, stop_grace_s=grace_s
        )
        task = asyncio.create_task(runner.run_forever())
        await asyncio.sleep(0.05)
        assert runner.state is ConnectorState.CONNECTED
        runner.request_stop()
        task.cancel()
        started = time.monotonic()
        done, _ = await asyncio.wait({task}, timeout=5)
        took = time.monotonic() - started
        if not done:  # do not leave it to hang the platform's stop
            connector.released = True
            await asyncio.wait({task}, timeout=5)
        assert done == {task}, "the stop waited on the connector for ever"
        return runner, task, took


async def test_a_runner_stops_when_its_connector_loses_the_cancellation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Found as a Modbus test that hung on stop about one run in twenty: the connector's
    # TaskGroup waited on a poll task that had lost its cancellation, the runner on the
    # TaskGroup, and the platform on the runner; a second cancellation changed nothing.
    caplog.set_level(logging.DEBUG, logger="kiln.connectors")
    connector = _LosesItsCancellation()
    runner, task, took = await _stop_runner(tmp_path, connector, grace_s=0.2)
    assert task.cancelled()
    assert 0.2 <= took < 2, "closing the connection after the grace period ends the poll"
    assert runner.state is ConnectorState.STOPPED
    assert runner.link.stats.failures == 0, "a stop is not an outage"
    assert runner.left_behind is None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "Connector deaf went on 0.2 s after it was cancelled; closing its connection"
    ]


async def test_a_runner_stops_without_a_connector_that_will_not_stop_at_all(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    connector = _LosesItsCancellation(deaf=True)
    runner, task, took = await _stop_runner(tmp_path, connector, grace_s=0.2)
    assert task.cancelled() and 0.4 <= took < 2
    assert runner.state is ConnectorState.STOPPED
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["Connector deaf would not stop when cancelled; stopped without it"]
    left = runner.left_behind
    assert left is not None and not left.done()
    connector.released = True
    await asyncio.wait({left}, timeout=5)
    assert left.done()
