"""The Platform: the one root object every subsystem receives.

It owns the clock, the bus, the services (each registered at a start stage) and the
`asyncio.TaskGroup` under which every long-running task runs. Services are looked up by their
class (`platform.service(Historian)`), which keeps access typed without a grab-bag dict.

Start runs stage by stage in ascending order, each under a timeout; stop runs in reverse,
also under timeouts, so a stuck service cannot keep the process from exiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from kiln.core.bus import Bus, InProcessBus
from kiln.core.clock import Clock
from kiln.core.errors import StartupError
from kiln.core.health import Health, Status

__all__ = ["Health", "Platform", "Service", "Stage", "Status"]

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")


class Stage(IntEnum):
    """Start order. Storage first (nothing may publish before the historian listens), sources last."""

    STORAGE = 10
    ENGINES = 20
    SOURCES = 30


@runtime_checkable
class Service(Protocol):
    """A subsystem with a lifecycle. `start` returns once the service is ready to be used."""

    name: str

    async def start(self, platform: Platform) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> Health: ...


class Platform:
    def __init__(
        self,
        *,
        clock: Clock,
        data_dir: Path,
        bus: Bus | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.clock = clock
        self.data_dir = data_dir
        # Injected: the embedded default is in-process; across processes a broker carries it.
        self.bus: Bus = bus if bus is not None else InProcessBus(clock)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._services: list[tuple[Stage, Service]] = []
        self._by_type: dict[type, Service] = {}
        self._task_group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._failed_tasks: dict[str, str] = {}
        self._started: list[Service] = []
        self.running = False
        # When the last start began (host time): after everything a previous run stored, and
        # before anything this run produces (e.g. the connectors' marks, `kiln.connectors`).
        self.started_us: int | None = None

    # -- registry -------------------------------------------------------------------------

    def add(self, service: Service, stage: Stage) -> None:
        if self.running:
            raise RuntimeError(f"cannot add service {service.name!r} to a running platform")
        if type(service) in self._by_type:
            raise ValueError(f"a {type(service).__name__} service is already registered")
        self._services.append((stage, service))
        self._by_type[type(service)] = service

    def service(self, kind: type[T]) -> T:
        """The registered service of class `kind` (or a subclass)."""
        svc = self._by_type.get(kind)
        if svc is None:
            for candidate in self._by_type.values():
                if isinstance(candidate, kind):
                    svc = candidate
                    break
        if svc is None:
            raise LookupError(f"no {kind.__name__} service in this platform")
        return svc  # type: ignore[return-value]

    def has(self, kind: type) -> bool:
        return any(isinstance(s, kind) for s in self._by_type.values())

    @property
    def services(self) -> list[Service]:
        return [s for _, s in sorted(self._services, key=lambda x: x[0])]

    # -- tasks ----------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Run `coro` under the platform's TaskGroup.

        A task that raises is logged and reported in health as failed; it does not take the
        platform down with it (one bad subsystem must not stop the plant).
        """
        if self._task_group is None:
            coro.close()
            raise RuntimeError(f"cannot spawn {name!r}: the platform is not running")
        task = self._task_group.create_task(self._supervised(coro, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # A task cancelled before it first ran never awaits `coro`; closing it (a no-op once
        # it has run) keeps Python from warning about a coroutine never awaited.
        task.add_done_callback(lambda _: coro.close())
        return task

    async def _supervised(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self._failed_tasks[name] = f"{type(err).__name__}: {err}"
            _LOGGER.exception("Task %s failed", name)

    @property
    def failed_tasks(self) -> dict[str, str]:
        return dict(self._failed_tasks)

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self.started_us = self.clock.now_us()
        await self.bus.start()
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        try:
            await self._start_services()
        except BaseException:
            await self._stop_services()
            self._cancel_tasks()
            await self._task_group.__aexit__(None, None, None)
            self._task_group = None
            await self.bus.stop()
            raise
        self.running = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.running = False
        await self._stop_services()
        self._cancel_tasks()
        group, self._task_group = self._task_group, None
        if group is not None:
            # Our tasks are supervised (they never raise) and now cancelled; the body's own
            # exception, if any, propagates unwrapped rather than inside an ExceptionGroup.
            await group.__aexit__(None, None, None)
        await self.bus.stop()

    async def _start_services(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for stage, service in sorted(self._services, key=lambda x: x[0]):
            _LOGGER.debug("Starting %s (stage %s)", service.name, stage.name)
            try:
                async with asyncio.timeout(self.start_timeout):
                    await service.start(self)
            except TimeoutError as err:
                raise StartupError(
                    f"service {service.name!r} did not start within {self.start_timeout:g} s "
                    f"(stage {stage.name.lower()})"
                ) from err
            except StartupError:
                raise
            except Exception as err:
                raise StartupError(f"service {service.name!r} failed to start: {err}") from err
            self._started.append(service)

    async def _stop_services(self) -> None:
        while self._started:
            service = self._started.pop()
            try:
                async with asyncio.timeout(self.stop_timeout):
                    await service.stop()
            except TimeoutError:
                _LOGGER.error(
                    "Service %s did not stop within %.0f s", service.name, self.stop_timeout
                )
            except Exception:
                _LOGGER.exception("Service %s failed while stopping", service.name)

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    # -- health ---------------------------------------------------------------------------

    def health(self) -> dict[str, Health]:
        report = {"bus": self.bus.health()}
        for service in self.services:
            try:
                report[service.name] = service.health()
            except Exception as err:  # a broken health probe is itself a failure to report
                report[service.name] = Health(Status.FAILED, {"error": str(err)})
        for name, error in self._failed_tasks.items():
            report[f"task:{name}"] = Health(Status.FAILED, {"error": error})
        return report
