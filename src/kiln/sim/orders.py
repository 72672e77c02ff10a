"""The virtual factory produces against work orders: a small dispatcher that keeps one order
running on each line, as a planner and the line's operators would.

It talks to the production engine only through its bus commands (target `production`), as the
API does, so it works wherever the engine runs. Each `period_s` it looks at every line: a line
with no running order gets the next one (created, released, started); a running order that has
made its quantity is completed. Order numbers carry the line and the start time, so a restart
never reuses one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from kiln.core.bus import BusError, Command, CommandError
from kiln.core.clock import us_to_datetime
from kiln.core.platform import Health, Platform, Status
from kiln.production import Product
from kiln.sim.catalog import FILLER_IDEAL_CYCLE_S
from kiln.sim.spec import FactorySpec

_LOGGER = logging.getLogger(__name__)
TARGET = "production"
ORDER_MINUTES = 30.0  # each order is sized for about this long on its line
_TYPICAL_CNC_CYCLE_S = 60.0


@dataclass(frozen=True, slots=True)
class SimLine:
    path: str
    product: str
    quantity: float


def products() -> list[Product]:
    """What the virtual factory makes: machined brackets (the CNC's job sets the ideal cycle
    time, published on its cycle_time tag) and bottled juice at the filler's nominal rate."""
    return [
        Product(code="BRACKET-A", name="Bracket, machined", unit="pcs"),
        Product(
            code="JUICE-1L",
            name="Orange juice 1 l",
            unit="bottles",
            ideal_cycle_s=FILLER_IDEAL_CYCLE_S,
        ),
    ]


def lines(spec: FactorySpec) -> list[SimLine]:
    root = f"{spec.enterprise}/{spec.site}"
    out: list[SimLine] = []
    for n in range(1, spec.machining_lines + 1):
        per_machine = ORDER_MINUTES * 60 / _TYPICAL_CNC_CYCLE_S
        out.append(
            SimLine(f"{root}/machining/line{n}", "BRACKET-A", per_machine * spec.machines_per_line)
        )
    for n in range(1, spec.packaging_lines + 1):
        per_filler = ORDER_MINUTES * 60 / FILLER_IDEAL_CYCLE_S
        out.append(
            SimLine(f"{root}/packaging/line{n}", "JUICE-1L", per_filler * spec.fillers_per_line)
        )
    return out


class SimOrders:
    """The `sim-orders` service."""

    name = "sim-orders"

    def __init__(self, spec: FactorySpec, *, period_s: float = 15.0) -> None:
        self.lines = lines(spec)
        self.period_s = period_s
        self.started = 0
        self.completed = 0
        self.last_error = ""
        self._platform: Platform | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, platform: Platform) -> None:
        self._platform = platform
        self._task = platform.spawn(self._loop(), name="sim-orders")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def health(self) -> Health:
        return Health(
            Status.OK,
            {"orders_started": self.started, "orders_completed": self.completed,
             "last_error": self.last_error},
        )  # fmt: skip

    async def _ask(self, name: str, **args: Any) -> Mapping[str, Any]:
        assert self._platform is not None
        return await self._platform.bus.request(Command(TARGET, name, args), timeout_s=10)

    async def _loop(self) -> None:
        assert self._platform is not None
        clock = self._platform.clock
        while True:
            try:
                for line in self.lines:
                    await self.step(line)
                self.last_error = ""
            except (BusError, CommandError) as err:
                # The engine is not up yet, or busy: try again next period.
                self.last_error = str(err)
            await clock.sleep(self.period_s)

    async def step(self, line: SimLine) -> None:
        """One look at a line: start an order if none runs, complete one that is done."""
        running = await self._ask("orders", line=line.path, states=["running"], limit=1)
        if running["orders"]:
            order = running["orders"][0]
            detail = await self._ask("order", id=order["id"])
            progress = detail.get("progress") or {}
            good = (progress.get("counts") or {}).get("good", 0)
            if good >= order["quantity"]:
                await self._ask("order_action", id=order["id"], action="complete", user="sim")
                self.completed += 1
            return
        assert self._platform is not None
        now = self._platform.clock.now_us()
        stamp = us_to_datetime(now).astimezone(UTC).strftime("%Y%m%d-%H%M%S")
        number = (
            f"{line.path.rsplit('/', 2)[-2][:4].upper()}-{line.path.rsplit('/', 1)[-1]}-{stamp}"
        )
        await self._ask(
            "order_create",
            order={
                "id": number,
                "product": line.product,
                "line": line.path,
                "quantity": line.quantity,
                "state": "released",
            },
        )
        await self._ask("order_action", id=number, action="start", user="sim")
        self.started += 1
        _LOGGER.info("Virtual factory: order %s started on %s", number, line.path)
