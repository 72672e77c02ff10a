"""Defects a review of the production engine found, each with the test that shows it fixed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from engine_rig import CALENDAR, LINE, MIN, PRESS, PRESS_MODEL, local, running
from pydantic import ValidationError

from kiln.core.quality import Quality
from kiln.core.values import ValueBatch
from kiln.production.chunks import SAMPLE_DTYPE
from kiln.production.intervals import Interval
from kiln.production.orders import Product
from kiln.production.settings import OrderTagRule, ProductionSettings
from kiln.production.spc_tags import SpcDef
from kiln.production.states import MachineState as M
from kiln.production.states import StopReason as R

NOW = local("2026-06-10 12:00")
T0 = local("2026-06-10 08:00")


def _categories(answer: Any) -> list[tuple[str, int]]:
    return [(s["category"], (s["start_us"] - T0) // MIN) for s in answer["intervals"]]


async def test_spc_results_never_wait_on_the_engines_own_full_queue(tmp_path: Path) -> None:
    """The engine publishes `_spc` values onto the bus it consumes: from the value loop, with
    its own queue full, it waited on itself for ever (and every blocking publisher with it)."""
    chart = SpcDef(name="p", tag=f"{PRESS}/pressure", chart="imr", rolling_subgroups=2)
    settings = ProductionSettings(types={"press": PRESS_MODEL}, calendars=[CALENDAR], spc=[chart])
    async with running(tmp_path, now_us=NOW, settings=settings, queue_points=20) as rig:

        async def publish(i: int) -> None:
            batch = ValueBatch(
                paths=[f"{PRESS}/pressure"], values=[10.0 + (i % 3)], source_us=[T0 + i * MIN],
                qualities=[0], receive_us=NOW,
            )  # fmt: skip
            await rig.platform.bus.publish(batch)

        await asyncio.wait_for(asyncio.gather(*(publish(i) for i in range(60))), 10)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while rig.engine.stats.batches < 60:
            assert loop.time() < deadline, "the engine stopped taking batches"
            await asyncio.sleep(0.01)


async def test_a_failed_commit_loses_nothing_the_next_batch_commits_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(tmp_path, now_us=NOW) as rig:
        await rig.feed([(PRESS, "state", int(M.RUNNING), T0)])
        real = rig.engine.store.commit
        calls = {"n": 0}

        def flaky(*args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError("disk away")
            real(*args, **kwargs)

        monkeypatch.setattr(rig.engine.store, "commit", flaky)
        await rig.feed([(PRESS, "state", int(M.DOWN), T0 + 10 * MIN)])  # fails to commit
        assert "disk away" in rig.engine.stats.last_error
        await rig.feed([(PRESS, "state", int(M.RUNNING), T0 + 29 * MIN)])  # commits both
        answer = await rig.ask("states", asset=PRESS, start_us=T0, end_us=T0 + 60 * MIN)
    assert _categories(answer) == [("running", 0), ("technical", 10), ("running", 29)]


async def test_state_codes_that_are_no_codes_are_unknown_and_the_engine_restarts(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, now_us=NOW) as rig:
        await rig.feed([(PRESS, "state", int(M.RUNNING), T0)])
        await rig.feed([(PRESS, "state", 40_000, T0 + 10 * MIN)])  # beyond 16 bits
        await rig.feed([(PRESS, "state", 1.5, T0 + 20 * MIN)])  # not an integer
        await rig.feed([(PRESS, "state", int(M.DOWN), T0 + 5 * MIN)])  # late: derived again
        answer = await rig.ask("states", asset=PRESS, start_us=T0, end_us=T0 + 30 * MIN)
        assert rig.engine.health().status.value == "ok"
    assert _categories(answer) == [
        ("running", 0),
        ("technical", 5),
        ("unknown", 10),
    ]
    async with running(tmp_path, now_us=NOW) as rig:  # the stored 40,000 does not stop it
        assert rig.engine.health().status.value == "ok"


async def test_the_order_tag_passes_over_bad_values_and_other_lines_orders(tmp_path: Path) -> None:
    other_line = "acme/plant1/line2"
    settings = ProductionSettings(
        types={"press": PRESS_MODEL},
        calendars=[CALENDAR],
        products=[Product(code="P1", name="part", ideal_cycle_s=20.0)],
        order_tags=[OrderTagRule(line=LINE, tag=f"{LINE}/order")],
    )
    async with running(tmp_path, now_us=NOW, settings=settings) as rig:
        before = {"state": "released", "created_us": T0 - 60 * MIN, "updated_us": T0 - 60 * MIN}
        for number, line in (("WO-1", LINE), ("WO-9", other_line)):
            order = {"id": number, "product": "P1", "line": line, "quantity": 10}
            await rig.ask("order_create", order=order | before)
        await rig.feed([(LINE, "order", "WO-1", T0)])
        # The connection drops: the tag goes Bad with a zero; the order keeps running.
        batch = ValueBatch(
            paths=[f"{LINE}/order"], values=[0], source_us=[T0 + 5 * MIN],
            qualities=[int(Quality.BAD)], receive_us=NOW,
        )  # fmt: skip
        await rig.platform.bus.publish(batch)
        await rig.feed([(LINE, "order", "WO-9", T0 + 10 * MIN)])  # line 2's order: refused
        first = await rig.ask("order", id="WO-1")
        other = await rig.ask("order", id="WO-9")
    assert first["order"]["state"] == "completed"  # ended by the new number, at T0 + 10 min
    assert [e["action"] for e in first["events"]] == ["start", "complete"]
    assert other["order"]["state"] == "released"
    assert "an order runs on the line it was dispatched to" in rig.engine.stats.last_error


async def test_a_stop_running_past_the_range_is_judged_by_its_whole_length(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, now_us=NOW) as rig:
        await rig.feed(
            [
                (PRESS, "state", int(M.RUNNING), T0),
                (PRESS, "state", int(M.DOWN), T0 + 59 * MIN + 50 * 1_000_000),
                (PRESS, "stop_reason", int(R.JAM), T0 + 59 * MIN + 50 * 1_000_000),
                (PRESS, "state", int(M.RUNNING), T0 + 130 * MIN),
            ]
        )
        hour = await rig.ask("pareto", asset=PRESS, start_us=T0, end_us=T0 + 60 * MIN)
        three = await rig.ask("pareto", asset=PRESS, start_us=T0, end_us=T0 + 180 * MIN)
    assert [i["category"] for i in hour["items"]] == ["technical"]  # not a micro-stop
    assert [i["category"] for i in three["items"]] == ["technical"]


async def test_a_bad_counter_reading_does_not_lose_the_increment_across_shifts(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, now_us=local("2026-06-11 12:00")) as rig:
        await rig.feed(
            [
                (PRESS, "state", int(M.RUNNING), local("2026-06-10 06:00")),
                (PRESS, "good_count", 100, local("2026-06-10 13:00")),
            ]
        )
        bad = ValueBatch(
            paths=[f"{PRESS}/good_count"], values=[100], source_us=[local("2026-06-10 13:59")],
            qualities=[int(Quality.BAD)], receive_us=NOW,
        )  # fmt: skip
        await rig.platform.bus.publish(bad)
        await rig.feed([(PRESS, "good_count", 130, local("2026-06-10 15:00"))])
        window = {"asset": PRESS, "start_us": local("2026-06-10 06:00")}
        shifts = await rig.ask("oee", end_us=local("2026-06-10 22:00"), by="shift", **window)
        day = await rig.ask("oee", end_us=local("2026-06-10 22:00"), **window)
    assert [b["counts"]["good"] for b in shifts["buckets"]] == [0, 30]
    assert day["total"]["counts"]["good"] == 30


async def test_late_samples_committed_but_not_derived_are_derived_at_the_next_start(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, now_us=NOW) as rig:
        await rig.feed(
            [(PRESS, "state", int(M.RUNNING), T0), (PRESS, "state", int(M.RUNNING), T0 + 60 * MIN)]
        )
        # As if the engine died after committing a late sample and its pending mark, before
        # deriving the rows again.
        late = np.array([(T0 + 20 * MIN, float(M.DOWN))], dtype=SAMPLE_DTYPE)
        rig.engine.store.commit({(PRESS, "state"): late}, {}, {PRESS: T0 + 20 * MIN})
    async with running(tmp_path, now_us=NOW) as rig:
        assert rig.engine.store.pending() == {}
        answer = await rig.ask("states", asset=PRESS, start_us=T0, end_us=T0 + 60 * MIN)
    assert _categories(answer) == [("running", 0), ("technical", 20)]


async def test_time_the_engine_was_away_is_unknown_not_the_last_state(tmp_path: Path) -> None:
    async with running(tmp_path, now_us=T0) as rig:
        await rig.feed([(PRESS, "state", int(M.RUNNING), T0)])
        rig.engine.store.put_kv("alive_us", T0 + 5 * MIN)  # its last heartbeat
    async with running(tmp_path, now_us=T0 + 70 * MIN) as rig:
        await rig.feed([(PRESS, "state", int(M.RUNNING), T0 + 61 * MIN)])
        answer = await rig.ask("states", asset=PRESS, start_us=T0, end_us=T0 + 62 * MIN)
    assert _categories(answer) == [("running", 0), ("unknown", 5), ("running", 61)]


def test_store_pending_marks_clear_only_when_done(tmp_path: Path) -> None:
    from kiln.db.urls import sqlite_url
    from kiln.production.chunks import STATE_DTYPE
    from kiln.production.store import ProductionStore

    store = ProductionStore(sqlite_url(tmp_path / "p.db"))
    store.open()
    try:
        store.commit({}, {}, {"a/b": 50, "a/c": 10})
        store.commit({}, {}, {"a/b": 40})
        assert store.pending() == {"a/b": 40, "a/c": 10}
        store.replace_states("a/b", 45, np.zeros(0, STATE_DTYPE), done=True)  # not from 40
        assert store.pending() == {"a/b": 40, "a/c": 10}
        store.replace_states("a/b", 40, np.zeros(0, STATE_DTYPE), done=True)
        assert store.pending() == {"a/c": 10}
        assert len(store.states("a/b", Interval(0, 100))) == 0
    finally:
        store.close()


@pytest.mark.parametrize(
    ("field", "extra"),
    [
        ("tag", {"tag": "scrap_count", "chart": "c"}),
        ("sample_size_tag", {"chart": "p", "sample_size_tag": "checked"}),
        (
            "sample_size_counters",
            {"chart": "p", "counter": True, "subgroup_s": 600,
             "sample_size_counters": ["a/b/good_count", "scrap_count"]},
        ),
    ],
)  # fmt: skip
def test_a_live_chart_needs_full_paths_for_every_tag_it_follows(
    field: str, extra: dict[str, object]
) -> None:
    # The engine follows full paths: a bare name would never arrive and the chart would wait
    # for it for ever, so the plant file is refused with the field named.
    chart = {"name": "c1", "tag": "a/b/scrap_count", **extra}
    with pytest.raises(ValidationError, match=f"{field} needs the full tag path"):
        ProductionSettings.model_validate({"spc": [chart]})
