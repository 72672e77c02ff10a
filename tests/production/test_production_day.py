"""A scripted day through the tags, on the day the clocks go forward in Berlin (2026-03-29,
02:00 -> 03:00): states, stop reasons, counters with a reset and a 16-bit rollover, three
shifts with breaks. The engine's OEE per shift equals the figures computed by hand below, and
the same when the day's samples arrive shuffled, in many batches, late and out of order."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from engine_rig import MIN, PRESS, local, running

from kiln.production.oee import OeeFigures
from kiln.production.states import MachineState as M
from kiln.production.states import StopReason as R

# (local time, state, stop reason): the press's day.
SCRIPT = [
    ("2026-03-28 22:00", M.RUNNING, R.NONE),
    ("2026-03-28 23:00", M.DOWN, R.JAM),
    ("2026-03-28 23:20", M.RUNNING, R.NONE),
    ("2026-03-29 01:00", M.PLANNED_STOP, R.BREAK),
    ("2026-03-29 01:30", M.RUNNING, R.NONE),
    # 02:00 does not happen: from 01:30 to 03:30 the press runs one hour, not two.
    ("2026-03-29 03:30", M.IDLE, R.WAITING),  # one minute: a micro-stop
    ("2026-03-29 03:31", M.RUNNING, R.NONE),
    ("2026-03-29 05:00", M.SETUP, R.CHANGEOVER),
    ("2026-03-29 05:20", M.RUNNING, R.NONE),
    ("2026-03-29 08:00", M.DOWN, R.OVERHEAT),
    ("2026-03-29 08:45", M.RUNNING, R.NONE),
    ("2026-03-29 10:00", M.PLANNED_STOP, R.BREAK),
    ("2026-03-29 10:30", M.RUNNING, R.NONE),
    ("2026-03-29 12:00", M.IDLE, R.STARVED),  # the line's fault, not the press's
    ("2026-03-29 12:10", M.RUNNING, R.NONE),
    ("2026-03-29 13:50", M.DOWN, R.MATERIAL_SHORTAGE),  # across the shift change
    ("2026-03-29 14:20", M.RUNNING, R.NONE),
    ("2026-03-29 18:10", M.PLANNED_STOP, R.BREAK),  # ran the first 10 minutes of the break
    ("2026-03-29 18:30", M.RUNNING, R.NONE),
    ("2026-03-29 21:30", M.DOWN, R.TOOL_BREAKAGE),
]
GOOD = [
    ("2026-03-28 22:00", 1000),
    ("2026-03-29 05:59", 1600),
    ("2026-03-29 09:00", 1800),
    ("2026-03-29 09:01", 50),  # reset to zero, then 50 made
    ("2026-03-29 13:59", 500),
    ("2026-03-29 21:59", 1250),
]
SCRAP = [  # a 16-bit counter
    ("2026-03-28 22:00", 65530),
    ("2026-03-29 05:59", 65535),
    ("2026-03-29 13:59", 3),  # wrapped: 65535 -> 65536 = 0 -> 3, four more
    ("2026-03-29 21:59", 10),
]
IDEAL_S = 30.0

# By hand, in minutes of real time.
# Night 22:00-06:00 lasts 7 h (420 min): break 30 planned; jam 20 and the micro-stop 1 are
# delays (ADET); the changeover 20 is setup; running 60 + 100 + 60 + 89 + 40 = 349.
# Early 480: break 30; starved 10 not charged; overheat 45 and material 10 delays; running
# 120 + 75 + 90 + 100 = 385.
# Late 480: material 20 and tool breakage 30 delays; of the break 10 ran (production) and 20
# were planned down; running 230 + 180 = 410.
# Counts: night 600 good + 5 scrap; early 200 + 50 + 450 = 700 good + 4 scrap (the wrap);
# late 750 good + 7 scrap.
EXPECTED = {
    "2026-03-28/night": OeeFigures(
        calendar_time_us=420 * MIN,
        planned_operation_time_us=420 * MIN,
        planned_down_time_us=30 * MIN,
        actual_unit_delay_time_us=21 * MIN,
        actual_unit_setup_time_us=20 * MIN,
        actual_production_time_us=349 * MIN,
        ideal_run_time_us=605 * IDEAL_S * 1e6,
        produced_quantity=605,
        good_quantity=600,
    ),
    "2026-03-29/early": OeeFigures(
        calendar_time_us=480 * MIN,
        planned_operation_time_us=480 * MIN,
        planned_down_time_us=30 * MIN,
        not_charged_time_us=10 * MIN,
        actual_unit_delay_time_us=55 * MIN,
        actual_production_time_us=385 * MIN,
        ideal_run_time_us=704 * IDEAL_S * 1e6,
        produced_quantity=704,
        good_quantity=700,
    ),
    "2026-03-29/late": OeeFigures(
        calendar_time_us=480 * MIN,
        planned_operation_time_us=480 * MIN,
        planned_down_time_us=20 * MIN,
        actual_unit_delay_time_us=50 * MIN,
        actual_production_time_us=410 * MIN,
        ideal_run_time_us=757 * IDEAL_S * 1e6,
        produced_quantity=757,
        good_quantity=750,
    ),
}
START, END = local("2026-03-28 22:00"), local("2026-03-29 22:00")
NOW = local("2026-03-30 12:00")


def points() -> list[tuple[str, str, float | int, int]]:
    out: list[tuple[str, str, float | int, int]] = []
    for when, state, reason in SCRIPT:
        out += [
            (PRESS, "state", int(state), local(when)),
            (PRESS, "stop_reason", int(reason), local(when)),
        ]
    out += [(PRESS, "good_count", v, local(when)) for when, v in GOOD]
    out += [(PRESS, "scrap_count", v, local(when)) for when, v in SCRAP]
    return out


def figures(bucket: dict) -> OeeFigures:
    t = bucket["time_elements_us"]
    c = bucket["counts"]
    return OeeFigures(
        calendar_time_us=t["calendar_time"],
        planned_operation_time_us=t["planned_operation_time"],
        planned_down_time_us=t["planned_down_time"],
        planned_maintenance_time_us=t["planned_maintenance_time"],
        not_charged_time_us=t["not_charged_time"],
        actual_unit_down_time_us=t["actual_unit_down_time"],
        actual_unit_delay_time_us=t["actual_unit_delay_time"],
        actual_unit_setup_time_us=t["actual_unit_setup_time"],
        actual_production_time_us=t["actual_production_time"],
        ideal_run_time_us=t["ideal_run_time"],
        produced_quantity=c["produced"],
        good_quantity=c["good"],
    )


async def shift_figures(
    tmp_path: Path, batches: list[list[tuple[str, str, float | int, int]]]
) -> dict[str, OeeFigures]:
    async with running(tmp_path, now_us=NOW) as rig:
        for batch in batches:
            await rig.feed(batch)
        answer = await rig.ask("oee", asset=PRESS, start_us=START, end_us=END, by="shift")
    return {b["key"]: figures(b) for b in answer["buckets"]}


async def test_the_scripted_day_gives_the_hand_computed_oee_per_shift(tmp_path: Path) -> None:
    got = await shift_figures(tmp_path, [points()])
    assert got == EXPECTED
    night = EXPECTED["2026-03-28/night"]
    assert night.availability == pytest.approx(349 / 390)
    assert night.performance == pytest.approx(605 * 0.5 / 349)
    assert night.quality == pytest.approx(600 / 605)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_same_day_arriving_late_and_out_of_order_gives_the_same(
    tmp_path: Path, seed: int
) -> None:
    shuffled = points()
    random.Random(seed).shuffle(shuffled)
    batches = [shuffled[i : i + 5] for i in range(0, len(shuffled), 5)]
    assert await shift_figures(tmp_path, batches) == EXPECTED


async def test_the_day_in_local_days_has_23_hours_and_sums_to_the_shifts(tmp_path: Path) -> None:
    async with running(tmp_path, now_us=NOW) as rig:
        await rig.feed(points())
        day = await rig.ask(
            "oee",
            asset=PRESS,
            start_us=local("2026-03-29 00:00"),
            end_us=local("2026-03-30 00:00"),
            by="day",
        )
        hours = await rig.ask("oee", asset=PRESS, start_us=START, end_us=END, by="hour")
        whole = await rig.ask("oee", asset=PRESS, start_us=START, end_us=END, by="none")
    (only,) = day["buckets"]
    assert only["key"].startswith("2026-03-29T00:00:00+01:00")
    assert only["time_elements_us"]["calendar_time"] == 23 * 60 * MIN
    assert len(hours["buckets"]) == 23
    total = sum((figures(b) for b in hours["buckets"]), OeeFigures())
    assert total == figures(whole["buckets"][0]) == sum(EXPECTED.values(), OeeFigures())


async def test_pareto_states_and_an_operators_split(tmp_path: Path) -> None:
    async with running(tmp_path, now_us=NOW) as rig:
        await rig.feed(points())
        pareto = await rig.ask("pareto", asset=PRESS, start_us=START, end_us=END)
        top = [
            (i["category"], i["reason"], i["duration_us"] // MIN, i["stops"])
            for i in pareto["items"]
        ]
        assert top == [
            ("technical", "technical/overheat", 45, 1),
            ("material", "material/material_shortage", 30, 1),
            ("technical", "technical/tool_breakage", 30, 1),
            ("setup", "setup/changeover", 20, 1),  # ties: by category, then reason
            ("technical", "technical/jam", 20, 1),
            ("micro_stop", "operator/waiting", 1, 1),
        ]
        assert pareto["failures"] == 3
        assert pareto["mtbf_us"] == (349 + 385 + 410) * MIN / 3
        assert pareto["mttr_us"] == (45 + 30 + 20) * MIN / 3

        # The overheat stop was really 30 minutes of electrical fault, then 15 of waiting
        # for the technician.
        split = await rig.ask(
            "split",
            asset=PRESS,
            start_us=local("2026-03-29 08:00"),
            end_us=local("2026-03-29 08:45"),
            pieces=[
                {"end_us": local("2026-03-29 08:30"), "reason": "technical/electrical"},
                {"reason": "operator/no_operator", "comment": "night crew short"},
            ],
            user="olga",
        )
        assert len(split["ids"]) == 2
        states = await rig.ask(
            "states",
            asset=PRESS,
            start_us=local("2026-03-29 07:00"),
            end_us=local("2026-03-29 09:00"),
        )
        rows = [
            (s["category"], s["reason"], s["source"], s["machine_state"])
            for s in states["intervals"]
        ]
        assert rows == [
            ("running", None, "machine", "running"),
            ("technical", "technical/electrical", "operator", "down/overheat"),
            ("operator", "operator/no_operator", "operator", "down/overheat"),
            ("running", None, "machine", "running"),
        ]
        early = await rig.ask(
            "oee", asset=PRESS, start_us=local("2026-03-29 06:00"), end_us=local("2026-03-29 14:00")
        )
        # Reasons move time between losses; the availability stays what the machine did.
        assert figures(early["buckets"][0]) == EXPECTED["2026-03-29/early"]
        records = await rig.ask("records", asset=PRESS, start_us=START, end_us=END)
        assert [(r["reason"], r["user"], r["action"]) for r in records["records"]] == [
            ("technical/electrical", "olga", "split"),
            ("operator/no_operator", "olga", "split"),
        ]
