"""The production engine as a service: live figures, SPC on a tag, restarts, bad input."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from engine_rig import CALENDAR, MIN, PRESS, PRESS2, PRESS_MODEL, local, running

from kiln.core.bus import Command, CommandError, Overflow
from kiln.model import AssetDef, AssetTypeDef, Level, TagDef
from kiln.production.engine import LIVE_KIND, SPC_KIND
from kiln.production.plan import PlanError, compile_plans
from kiln.production.settings import ProductionSettings
from kiln.production.spc_tags import SpcDef
from kiln.production.states import MachineState as M
from kiln.production.states import StopReason as R
from kiln.production.taxonomy import StateModel, StateRule

NOW = local("2026-06-10 12:00")


async def test_a_state_change_is_published_live_with_the_current_shift(tmp_path: Path) -> None:
    async with running(tmp_path, now_us=NOW, assets=(PRESS, PRESS2)) as rig:
        events = rig.platform.bus.subscribe_events("t", kinds=(LIVE_KIND,))
        await rig.feed(
            [
                (PRESS, "state", int(M.RUNNING), local("2026-06-10 11:00")),
                (PRESS, "state", int(M.DOWN), local("2026-06-10 11:30")),
                (PRESS, "stop_reason", int(R.JAM), local("2026-06-10 11:30")),
            ]
        )
        published = await rig.engine.publish_live()
        assert [p["asset"] for p in published] == [PRESS]  # only what changed
        (live,) = published
        assert live["shift"] == "2026-06-10/early"
        assert live["category"] == "technical"
        assert live["since_us"] == local("2026-06-10 11:30")
        # The window starts at the first data (11:00), not at the shift's 06:00.
        assert live["start_us"] == local("2026-06-10 11:00")
        assert live["availability"] == pytest.approx(0.5)
        delivery = await asyncio.wait_for(events.get(), 5)
        assert delivery.event.key == PRESS and delivery.event.data["category"] == "technical"
        assert await rig.engine.publish_live() == []
        events.close()


async def test_spc_violations_go_to_the_companion_tag_and_as_events(tmp_path: Path) -> None:
    chart = SpcDef(name="pressure", tag=f"{PRESS}/pressure", chart="imr", rolling_subgroups=10)
    settings = ProductionSettings(types={"press": PRESS_MODEL}, calendars=[CALENDAR], spc=[chart])
    async with running(tmp_path, now_us=NOW, settings=settings) as rig:
        values = rig.platform.bus.subscribe("t", max_points=10_000, overflow=Overflow.BLOCK)
        events = rig.platform.bus.subscribe_events("t", kinds=(SPC_KIND,))
        t0 = local("2026-06-10 08:00")
        stable = [10.0 + 0.1 * ((i * 7) % 5 - 2) for i in range(20)]
        await rig.feed([(PRESS, "pressure", v, t0 + i * MIN) for i, v in enumerate(stable)])
        await rig.feed([(PRESS, "pressure", 25.0, t0 + 20 * MIN)])  # far beyond 3 sigma
        seen: dict[int, float] = {}
        while True:
            batch = await asyncio.wait_for(values.get(), 5)
            for path, value, t in zip(batch.paths, batch.values, batch.source_us, strict=True):
                if path == f"{PRESS}/pressure_spc":
                    seen[t] = value
            if t0 + 20 * MIN in seen:
                break
        assert seen[t0 + 20 * MIN] == 1  # Nelson rule 1: beyond the control limits
        assert all(v == 0 for t, v in seen.items() if t < t0 + 20 * MIN)
        delivery = await asyncio.wait_for(events.get(), 5)
        assert delivery.event.data["rules"][0] == 1
        assert delivery.event.data["time_us"] == t0 + 20 * MIN
        values.close()
        events.close()
    # The run is saved: a restart carries on with the same limits.
    async with running(tmp_path, now_us=NOW, settings=settings) as rig:
        saved = rig.engine._spc_runs["pressure"].snapshot()
        assert saved["definition"]["name"] == "pressure"
        assert saved == rig.engine.store.get_kv("spc:pressure")


async def test_a_live_counter_p_chart_publishes_a_violation(tmp_path: Path) -> None:
    """A p chart of the scrap fraction per 10 minutes from the press's counters: increases, not
    cumulative values, are charted; a window that rejects far more breaks rule 1."""
    chart = SpcDef(
        name="rejects",
        tag=f"{PRESS}/scrap_count",
        chart="p",
        counter=True,
        subgroup_s=600,
        rollover=65536,
        sample_size_counters=(f"{PRESS}/good_count", f"{PRESS}/scrap_count"),
        rolling_subgroups=6,
    )
    # A chart the data breaks (an np chart of 5 a window, and window 8 rejects 40): its
    # subgroup is left out and said in health, the other chart goes on (it is fed first).
    broken = SpcDef(
        name="a_five_a_window",
        tag=f"{PRESS}/scrap_count",
        chart="np",
        counter=True,
        subgroup_s=600,
        sample_size=5,
        rolling_subgroups=6,
    )
    settings = ProductionSettings(
        types={"press": PRESS_MODEL}, calendars=[CALENDAR], spc=[broken, chart]
    )
    window = 10 * MIN
    t0 = local("2026-06-10 08:00")  # a window boundary
    async with running(tmp_path, now_us=NOW, settings=settings) as rig:
        values = rig.platform.bus.subscribe("t", max_points=10_000, overflow=Overflow.BLOCK)
        events = rig.platform.bus.subscribe_events("t", kinds=(SPC_KIND,))
        good, scrap = 65_000, 10  # the good counter wraps at 65536 in the second window
        for w in range(10):
            rejects = 40 if w == 8 else 2 + w % 2
            points: list[tuple[str, str, float | int, int]] = []
            for step in range(5):  # a sample every 2 minutes
                good = (good + 40) % 65536
                scrap += rejects if step == 4 else 0
                t = t0 + w * window + step * 2 * MIN
                points += [(PRESS, "good_count", good, t), (PRESS, "scrap_count", scrap, t)]
            await rig.feed(points)
        await rig.feed([(PRESS, "good_count", good, t0 + 10 * window)])  # closes window 8
        spike = t0 + 8 * window + 8 * MIN
        seen: dict[int, float] = {}
        while spike not in seen:
            batch = await asyncio.wait_for(values.get(), 5)
            for path, value, t in zip(batch.paths, batch.values, batch.source_us, strict=True):
                if path == f"{PRESS}/scrap_count_spc":
                    seen[t] = value
        # Windows 1-6 make the first limits (window 0 only starts the counts); 7 is in control.
        assert seen == {t0 + 7 * window + 8 * MIN: 0, spike: 1}
        delivery = await asyncio.wait_for(events.get(), 5)
        assert delivery.event.data["chart"] == "rejects"
        assert delivery.event.data["value"] == 40 / 240  # 40 rejected of 200 + 40 made
        assert rig.engine.stats.failures >= 1
        assert "a_five_a_window" in rig.engine.stats.last_error
        values.close()
        events.close()
        # The state saved carries each counter's last sample: a restart counts on from there.
        # (The engine's own `_spc` batches count as batches fed: wait for the last sample.)
        for _ in range(1000):
            saved = rig.engine.store.get_kv("spc:rejects")
            if saved["counters"][f"{PRESS}/good_count"][0] == t0 + 10 * window:
                break
            await asyncio.sleep(0.005)
        assert saved["counters"][f"{PRESS}/good_count"] == [t0 + 10 * window, good]
        assert saved["counters"][f"{PRESS}/scrap_count"] == [t0 + 9 * window + 8 * MIN, scrap]


async def test_a_restart_keeps_everything_and_heals_rows_missing_after_samples(
    tmp_path: Path,
) -> None:
    rows_before = None
    async with running(tmp_path, now_us=NOW) as rig:
        await rig.feed(
            [
                (PRESS, "state", int(M.RUNNING), local("2026-06-10 06:00")),
                (PRESS, "state", int(M.SETUP), local("2026-06-10 07:00")),
                (PRESS, "state", int(M.RUNNING), local("2026-06-10 07:10")),
            ]
        )
        before = await rig.ask("oee", asset=PRESS, start_us=local("2026-06-10 06:00"), end_us=NOW)
        # As if the engine had died between committing samples and committing rows: the
        # samples of a later state are in the store, its row is not.
        rig.engine.store.add_samples(
            {(PRESS, "state"): _samples([(local("2026-06-10 08:00"), float(M.DOWN))])}
        )
        rows_before = len(rig.engine.store.states(PRESS, _all()))
    async with running(tmp_path, now_us=NOW) as rig:
        assert len(rig.engine.store.states(PRESS, _all())) == rows_before + 1
        after = await rig.ask(
            "oee", asset=PRESS, start_us=local("2026-06-10 06:00"), end_us=local("2026-06-10 08:00")
        )
        assert after["total"]["time_elements_us"] == before["total"]["time_elements_us"] | {
            "calendar_time": 120 * MIN,
            "planned_operation_time": 120 * MIN,
            "actual_production_time": 110 * MIN,
            "unaccounted_time": 0,
            "planned_busy_time": 120 * MIN,
        }


def _samples(rows: list[tuple[int, float]]):  # type: ignore[no-untyped-def]
    import numpy as np

    from kiln.production.chunks import SAMPLE_DTYPE

    return np.array(rows, dtype=SAMPLE_DTYPE)


def _all():  # type: ignore[no-untyped-def]
    from kiln.production.intervals import Interval

    return Interval(0, 1 << 62)


async def test_bad_values_and_bad_questions_get_clear_errors_and_lose_nothing(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, now_us=NOW) as rig:
        await rig.feed(
            [
                (PRESS, "state", "jammed?", local("2026-06-10 09:00")),  # text: unknown
                (PRESS, "good_count", math.nan, local("2026-06-10 09:00")),
                (PRESS, "state", int(M.RUNNING), local("2026-06-10 09:30")),
            ]
        )
        states = await rig.ask(
            "states",
            asset=PRESS,
            start_us=local("2026-06-10 09:00"),
            end_us=local("2026-06-10 10:00"),
        )
        assert [s["category"] for s in states["intervals"]] == ["unknown", "running"]
        for args, message in [
            ({"asset": PRESS, "start_us": 5, "end_us": 1}, "start before the end"),
            ({"asset": "acme/nowhere", "start_us": 0, "end_us": 10}, "no asset"),
            ({"asset": PRESS, "start_us": 0, "end_us": 10, "by": "fortnight"}, "by must be one of"),
            ({"asset": PRESS, "start_us": "yesterday", "end_us": 10}, "must be an integer"),
        ]:
            with pytest.raises(CommandError, match=message):
                await rig.platform.bus.request(Command("production", "oee", args), timeout_s=5)
        with pytest.raises(CommandError, match="not a reason of"):
            await rig.ask("assign", asset=PRESS, start_us=0, end_us=10, reason="technical/gremlins")
        with pytest.raises(CommandError, match="answers"):
            await rig.ask("dance")
        # The engine is still taking values after all that.
        await rig.feed([(PRESS, "state", int(M.DOWN), local("2026-06-10 10:00"))])
        assert rig.engine.health().status.value == "ok"


def test_a_model_naming_a_missing_tag_or_state_is_refused_with_the_fix() -> None:
    press = AssetTypeDef(name="press", tags=(TagDef(name="speed"),))
    assets = [AssetDef(path="acme/p1/l1/press1", level=Level.ASSET, type="press")]
    with pytest.raises(
        PlanError, match="state_tag 'state' is not a tag of the type; its tags: speed"
    ):
        compile_plans([press], assets, {"press": StateModel(state_tag="state")})
    with pytest.raises(PlanError, match=r"names asset type.*oven"):
        compile_plans([press], assets, {"oven": StateModel()})
    with pytest.raises(PlanError, match="rule 1 \\(when\\) 'torque'"):
        compile_plans(
            [press],
            assets,
            {"press": StateModel(rules=(StateRule(when="torque > 1", category="running"),))},
        )


async def test_condition_rules_map_speed_and_fault_to_states(tmp_path: Path) -> None:
    """A machine without a state tag: running while speed > 0 and no fault."""
    from kiln.core.bus import InProcessBus
    from kiln.core.platform import Platform, Stage
    from kiln.db.urls import sqlite_url
    from kiln.model import DataType
    from kiln.production.engine import Declared, ProductionEngine
    from kiln.production.store import ProductionStore
    from kiln.testing import FakeClock

    saw = AssetTypeDef(
        name="saw",
        tags=(TagDef(name="speed"), TagDef(name="fault", data_type=DataType.BOOL)),
    )
    model = StateModel(
        rules=(
            StateRule(when="fault", category="technical"),
            StateRule(when="speed > 0", category="running"),
            StateRule(when="speed == 0", category="operator"),
        )
    )
    asset = "acme/p1/l1/saw1"
    declared = Declared([saw], [AssetDef(path=asset, level=Level.ASSET, type="saw")])
    clock = FakeClock(NOW)
    engine = ProductionEngine(
        ProductionStore(sqlite_url(tmp_path / "p.db"), clock=clock),
        declared,
        ProductionSettings(types={"saw": model}),
    )
    platform = Platform(clock=clock, data_dir=tmp_path, bus=InProcessBus(clock))
    platform.add(engine, Stage.ENGINES)
    t0 = NOW - 60 * MIN
    async with platform:
        from kiln.core.values import ValueBatch

        await engine.apply_batches(
            [
                ValueBatch(
                    paths=[
                        f"{asset}/speed",
                        f"{asset}/fault",
                        f"{asset}/speed",
                        f"{asset}/fault",
                        f"{asset}/speed",
                    ],
                    values=[100.0, False, 0.0, True, 50.0],
                    source_us=[t0, t0, t0 + 10 * MIN, t0 + 20 * MIN, t0 + 30 * MIN],
                    qualities=[0] * 5,
                    receive_us=NOW,
                )
            ]
        )
        answer = await platform.bus.request(
            Command("production", "states", {"asset": asset, "start_us": t0, "end_us": NOW}),
            timeout_s=5,
        )
    got = [
        (s["category"], (s["start_us"] - t0) // MIN, s["machine_state"])
        for s in answer["intervals"]
    ]
    # From 30 min the fault is still on: it wins over speed > 0 (the first rule that matches).
    assert got == [
        ("running", 0, "rule 2"),
        ("operator", 10, "rule 3"),
        ("technical", 20, "rule 1"),
    ]


async def test_orders_follow_the_lines_order_tag(tmp_path: Path) -> None:
    from engine_rig import LINE

    from kiln.production.orders import Product
    from kiln.production.settings import OrderTagRule

    settings = ProductionSettings(
        types={"press": PRESS_MODEL},
        calendars=[CALENDAR],
        products=[Product(code="P1", name="part", ideal_cycle_s=20.0)],
        order_tags=[OrderTagRule(line=LINE, tag=f"{LINE}/order")],
    )
    async with running(tmp_path, now_us=NOW, settings=settings) as rig:
        t0 = local("2026-06-10 08:00")
        for number in ("WO-1", "WO-2"):
            order = {"id": number, "product": "P1", "line": LINE, "quantity": 100}
            before = {"state": "released", "created_us": t0 - 60 * MIN, "updated_us": t0 - 60 * MIN}
            await rig.ask("order_create", order=order | before)
        await rig.feed([(PRESS, "state", int(M.RUNNING), t0 - 60 * MIN)])  # the press is known
        await rig.feed([(LINE, "order", "WO-1", t0)])
        await rig.feed([(LINE, "order", "WO-2", t0 + 30 * MIN)])
        await rig.feed([(LINE, "order", "WO-404", t0 + 40 * MIN)])  # unknown: refused, said
        await rig.feed([(LINE, "order", "", t0 + 50 * MIN)])
        first = await rig.ask("order", id="WO-1")
        second = await rig.ask("order", id="WO-2")
        assert first["order"]["state"] == "completed"
        assert [(e["action"], e["time_us"]) for e in first["events"]] == [
            ("start", t0),
            ("complete", t0 + 30 * MIN),
        ]
        assert second["order"]["state"] == "completed"
        assert [(e["action"], e["time_us"]) for e in second["events"]] == [
            ("start", t0 + 30 * MIN),
            ("complete", t0 + 40 * MIN),
        ]
        assert "WO-404" in rig.engine.stats.last_error
        window = {"asset": LINE, "start_us": t0 - 60 * MIN, "end_us": t0 + 60 * MIN}
        orders = await rig.ask("oee", by="order", **window)
        assert [
            (b["key"], b["time_elements_us"]["calendar_time"] // MIN) for b in orders["buckets"]
        ] == [
            ("WO-1", 30),
            ("WO-2", 10),
        ]
        (product,) = (await rig.ask("oee", by="product", **window))["buckets"]
        assert (product["key"], product["time_elements_us"]["calendar_time"]) == ("P1", 40 * MIN)


async def test_a_bulk_batch_is_picked_off_the_event_loop_and_counts_exactly(
    tmp_path: Path,
) -> None:
    t0 = local("2026-06-10 08:00")
    async with running(tmp_path, now_us=NOW) as rig:
        ticks = [(PRESS, "good_count", i, t0 + i * 1_000_000) for i in range(3_000)]
        ticks.append((PRESS, "state", int(M.RUNNING), t0))
        noise = [(f"{PRESS}x", "other", 1.0, t0) for _ in range(500)]  # not followed
        await rig.feed(ticks + noise)
        assert rig.engine.stats.points == 3_001
        answer = await rig.ask("oee", asset=PRESS, start_us=t0, end_us=t0 + 3_600_000_000)
        assert answer["total"]["counts"]["good"] == 2_999  # the first sample is the baseline


def test_a_plan_knows_the_isa95_line_above_its_asset() -> None:
    from kiln.sim import FactorySpec, VirtualFactory
    from kiln.sim.catalog import state_models

    factory = VirtualFactory(FactorySpec(), 0)
    plans = {
        p.asset: p for p in compile_plans(factory.asset_types(), factory.assets(), state_models())
    }
    # A CNC sits in a cell of the line: its line is the ISA-95 line, not its parent.
    assert plans["acme/plant1/machining/line1/cell1/cnc1"].line == "acme/plant1/machining/line1"
    assert (
        plans["acme/plant1/packaging/line1/filling/filler1"].line == "acme/plant1/packaging/line1"
    )


async def test_an_asset_that_counts_nothing_has_availability_but_no_oee(tmp_path: Path) -> None:
    model = PRESS_MODEL.model_copy(update={"good": None, "scrap": None})
    settings = ProductionSettings(types={"press": model}, calendars=[CALENDAR])
    t0 = local("2026-06-10 08:00")
    async with running(tmp_path, now_us=NOW, settings=settings) as rig:
        await rig.feed(
            [(PRESS, "state", int(M.RUNNING), t0), (PRESS, "state", int(M.DOWN), t0 + 30 * MIN)]
        )
        answer = await rig.ask(
            "oee", asset=PRESS, start_us=t0 - 60 * MIN, end_us=t0 + 60 * MIN, by="hour"
        )
        live = await rig.ask("live", asset=PRESS)
    # The hour before its first state is no part of its history: one bucket, not two.
    (bucket,) = answer["buckets"]
    assert bucket["availability"]["value"] == 0.5
    assert bucket["counted"] is False
    assert bucket["oee"]["value"] is None and bucket["performance"]["value"] is None
    (now,) = live["assets"]
    assert now["oee"] is None and now["counted"] is False


async def test_count_events_add_to_the_counters_in_their_bucket(tmp_path: Path) -> None:
    model = PRESS_MODEL.model_copy(update={"count_events": True})
    settings = ProductionSettings(types={"press": model}, calendars=[CALENDAR])
    t0 = local("2026-06-10 08:00")
    async with running(tmp_path, now_us=NOW, settings=settings) as rig:
        await rig.feed(
            [
                (PRESS, "state", int(M.RUNNING), t0),
                (PRESS, "good_count", 100, t0),
                (PRESS, "good_count", 160, t0 + 30 * MIN),  # 60 counted by the counter
            ]
        )
        # Entered later, for the second hour: a tally of a manual rework station.
        got = await rig.ask(
            "count", asset=PRESS, good=12, scrap=3, time_us=t0 + 70 * MIN, user="ann"
        )
        assert got["time_us"] == t0 + 70 * MIN
        answer = await rig.ask("oee", asset=PRESS, start_us=t0, end_us=t0 + 120 * MIN, by="hour")
        assert [(b["counts"]["good"], b["counts"]["scrap"]) for b in answer["buckets"]] == [
            (60, 0),
            (12, 3),
        ]
        for bad, message in [
            ({"good": -1}, "from 0 to 1e9"),
            ({"good": 0}, "counts something"),
            ({"good": "many"}, "number of units"),
        ]:
            with pytest.raises(CommandError, match=message):
                await rig.ask("count", asset=PRESS, **bad)
    plain = ProductionSettings(types={"press": PRESS_MODEL}, calendars=[CALENDAR])
    async with running(tmp_path / "plain", now_us=NOW, settings=plain) as rig:
        with pytest.raises(CommandError, match="count_events: true"):
            await rig.ask("count", asset=PRESS, good=1)
