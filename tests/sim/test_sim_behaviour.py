"""The plant behaves like one: correlated signals, wear, faults and the shift pattern.

These run the factory for simulated hours in coarse steps and check the statistics, with
margins wide enough for any seed but narrow enough that a broken model fails them.
"""

from __future__ import annotations

import numpy as np
import pytest
from sim_recorder import HOUR_US, MONDAY_US, Recording, record

from kiln.core.quality import Quality
from kiln.production.states import MachineState, StopReason
from kiln.sim import FactorySpec, VirtualFactory
from kiln.sim.catalog import FILLER_IDEAL_CYCLE_S
from kiln.sim.cnc import OVERHEAT_LIMIT_C, breakage_factor
from kiln.sim.machines import MIN_REPAIR_S

RUNNING, DOWN = MachineState.RUNNING, MachineState.DOWN
DT = 20.0


@pytest.fixture(scope="module")
def day() -> Recording:
    """Monday 00:00 to Tuesday 00:00 UTC of a mid-sized plant with the default fault rates."""
    spec = FactorySpec(machining_lines=3, packaging_lines=3, seed=11)
    return record(VirtualFactory(spec, MONDAY_US), int(24 * 3600 / DT), DT)


def _hours(rec: Recording) -> np.ndarray:
    return (rec.time_us - MONDAY_US) / HOUR_US


def test_counters_only_count_up(day: Recording) -> None:
    for kind in ("cnc", "filler"):
        for tag in ("good_count", "scrap_count"):
            counts = day(kind, tag)
            assert counts.dtype.kind == "i"
            assert (np.diff(counts, axis=0) >= 0).all()
        assert day(kind, "good_count")[-1].min() > 100  # every machine produced


def test_no_machine_makes_parts_faster_than_its_ideal_cycle() -> None:
    # OEE's performance compares what was made with what the ideal cycle time allows in the
    # running time: a simulated machine beating it would show a performance above 100 %. Every
    # shift at full pace, from the factory's first minute (a part begun before the start and
    # counted after it would be made in less than its cycle).
    spec = FactorySpec(
        machining_lines=2,
        packaging_lines=3,
        seed=5,
        shifts={"starts": [6, 14, 22], "pace": [1, 1, 1]},
    )
    rec = record(VirtualFactory(spec, MONDAY_US + 6 * HOUR_US), int(2 * 3600 / DT), DT)
    cnc_cycle = rec("cnc", "cycle_time")[1:]
    for kind in ("cnc", "filler"):
        made = np.diff(rec(kind, "good_count") + rec(kind, "scrap_count"), axis=0)
        ideal_s = cnc_cycle if kind == "cnc" else np.full(made.shape, FILLER_IDEAL_CYCLE_S)
        for window in (slice(0, int(600 / DT)), slice(None)):  # the first 10 minutes, 2 hours
            ideal_run_s = (made[window] * ideal_s[window]).sum(axis=0)
            running_s = (rec(kind, "state")[1:][window] == RUNNING).sum(axis=0) * DT
            assert (ideal_run_s <= running_s).all(), (kind, window, ideal_run_s / running_s)
            long = running_s > 1800
            assert (ideal_run_s[long] > 0.85 * running_s[long]).all(), (
                kind,
                ideal_run_s / running_s,
            )


def test_load_drives_power_and_temperature(day: Recording) -> None:
    load, power, temp = day("cnc", "spindle_load"), day("cnc", "power"), day("cnc", "temperature")
    assert np.corrcoef(load.ravel(), power.ravel())[0, 1] > 0.95
    assert np.corrcoef(load.ravel(), temp.ravel())[0, 1] > 0.6
    # Temperature lags load: averaged over a machine's running time the hotter machines are the
    # ones with the heavier jobs.
    running = day("cnc", "state") == RUNNING
    mean_load = np.nanmean(np.where(running, load, np.nan), axis=0)
    mean_temp = np.nanmean(np.where(running, temp, np.nan), axis=0)
    assert np.corrcoef(mean_load, mean_temp)[0, 1] > 0.7


def test_temperature_cools_down_in_the_break(day: Recording) -> None:
    hours = _hours(day)
    in_break = (hours >= 10.0) & (hours < 10.5)  # the day shift's break, 4 h after 06:00
    first, last = np.flatnonzero(in_break)[[0, -1]]
    mid = (first + last) // 2
    temp = day("cnc", "temperature")
    was_running = day("cnc", "state")[first - 1] == RUNNING
    assert was_running.sum() >= 6
    t0, t1, t2 = temp[first][was_running], temp[mid][was_running], temp[last][was_running]
    assert (t2 < t0 - 5.0).all()
    # Without load the spindle relaxes towards ambient: the drop slows down (first-order lag).
    assert ((t0 - t1) > (t1 - t2)).all()


def test_tool_wear_grows_with_parts_and_resets_only_on_tool_change(day: Recording) -> None:
    wear = day("cnc", "tool_wear")
    parts = day("cnc", "good_count") + day("cnc", "scrap_count")
    state, reason = day("cnc", "state"), day("cnc", "stop_reason")
    d_wear, d_parts = np.diff(wear, axis=0), np.diff(parts, axis=0)
    grew, made, resets = d_wear > 0, d_parts > 0, d_wear < 0
    assert (grew == (made & (wear[:-1] < 100.0)))[~resets].all()
    assert resets.sum() >= 5
    # The new tool may already have cut a part in the step it was fitted.
    assert (wear[1:][resets] < 0.5).all()
    # A new tool comes with a tool change or after a broken tool is repaired.
    before = state[:-1][resets], reason[:-1][resets]
    retooled = ((before[0] == MachineState.SETUP) & (before[1] == StopReason.TOOL_CHANGE)) | (
        (before[0] == DOWN) & (before[1] == StopReason.TOOL_BREAKAGE)
    )
    assert retooled.all()


def test_worn_tools_vibrate_more_and_make_more_scrap(day: Recording) -> None:
    running = day("cnc", "state") == RUNNING
    wear, vib = day("cnc", "tool_wear"), day("cnc", "vibration")
    assert np.corrcoef(wear[running], vib[running])[0, 1] > 0.7
    d_scrap = np.diff(day("cnc", "scrap_count"), axis=0)
    d_good = np.diff(day("cnc", "good_count"), axis=0)
    worn = wear[:-1] >= 60.0
    scrap_rate_worn = d_scrap[worn].sum() / (d_scrap[worn].sum() + d_good[worn].sum())
    scrap_rate_new = d_scrap[~worn].sum() / (d_scrap[~worn].sum() + d_good[~worn].sum())
    assert scrap_rate_worn > 3 * scrap_rate_new


def test_fill_weight_is_normal_around_the_target() -> None:
    spec = FactorySpec(
        machining_lines=0,
        packaging_lines=4,
        fill_target_g=750.0,
        fill_sigma_g=2.0,
        faults={"fill_drift_per_hour": 0.0},
    )
    rec = record(VirtualFactory(spec, MONDAY_US + 7 * HOUR_US), 1500, 2.0)
    weights = rec("filler", "fill_weight")[rec("filler", "state") == RUNNING]
    assert len(weights) > 5000
    assert abs(weights.mean() - 750.0) < 0.1
    assert 1.9 < weights.std() < 2.1
    assert (rec("filler", "fill_target") == 750.0).all()


def test_fill_weight_drifts_and_the_check_weigher_rejects() -> None:
    spec = FactorySpec(machining_lines=0, packaging_lines=4, faults={"fill_drift_per_hour": 4.0})
    rec = record(VirtualFactory(spec, MONDAY_US + 7 * HOUR_US), 1500, 2.0)
    weights = rec("filler", "fill_weight")[rec("filler", "state") == RUNNING]
    assert abs(weights.mean() - 500.0) < 2.0
    assert weights.std() > 1.2 * spec.fill_sigma_g  # drift widens the spread
    assert (np.abs(weights - 500.0) > spec.fill_tolerance_g).any()
    assert rec("filler", "scrap_count")[-1].sum() > 0


def test_a_stopped_conveyor_starves_its_fillers(day: Recording) -> None:
    conveyor = day("conveyor", "state")
    fillers = day("filler", "state").reshape(len(conveyor), 3, 2)  # (steps, lines, fillers)
    stopped = (conveyor != RUNNING) & (_hours(day) % 8 > 0.5)[:, None]
    assert stopped.any()
    assert not (fillers[stopped] == RUNNING).any()
    starved = day("filler", "stop_reason").reshape(fillers.shape)[stopped]
    assert (starved == StopReason.STARVED).any()
    # Conveyor speed and drive current follow the running state.
    speed, current = day("conveyor", "speed"), day("conveyor", "motor_current")
    assert (speed[conveyor != RUNNING] == 0).all()
    assert current[conveyor == RUNNING].min() > current[conveyor != RUNNING].max()


def test_shift_pattern_changeover_break_and_night_pace(day: Recording) -> None:
    hours = _hours(day)
    state, reason = day("cnc", "state"), day("cnc", "stop_reason")
    parts = day("cnc", "good_count") + day("cnc", "scrap_count")
    for start in (6.0, 14.0, 22.0):
        changeover = (hours > start) & (hours < start + 0.25)
        break_at = (start + 4.0) % 24  # the night shift's break falls after midnight
        brk = (hours >= break_at) & (hours < break_at + 0.5)
        assert not (state[changeover | brk] == RUNNING).any()
        # A machine under repair or in a tool change stays so through the break.
        free = (state[brk] != DOWN) & (reason[brk] != StopReason.TOOL_CHANGE)
        assert (state[brk][free] == MachineState.PLANNED_STOP).all()
        assert (reason[brk][free] == StopReason.BREAK).all()
        assert ((state[changeover] == MachineState.SETUP) | (state[changeover] == DOWN)).all()
        # Nothing is made in the break.
        window = np.flatnonzero(brk)
        assert (parts[window[-1]] == parts[window[0] - 1]).all()
    # A new job is loaded at each changeover.
    cycle = day("cnc", "cycle_time")
    assert (cycle[hours < 6.0][-1] != cycle[hours >= 6.0][0]).any()
    # The night shift (22:00-06:00) works at 85 % of the jobs' ideal cycle times.
    ideal_parts = np.where(state == RUNNING, DT / cycle, 0.0)[1:]
    d_parts = np.diff(parts, axis=0)
    night, late = (hours[1:] > 0.5) & (hours[1:] <= 6.0), (hours[1:] > 14.5) & (hours[1:] <= 22.0)
    assert d_parts[night].sum() / ideal_parts[night].sum() == pytest.approx(0.85, abs=0.05)
    assert d_parts[late].sum() / ideal_parts[late].sum() == pytest.approx(1.0, abs=0.05)


def test_no_shift_on_days_off_and_local_time() -> None:
    # Friday 20:00 to Saturday 08:00 in Berlin (UTC+1 in January), shifts Monday to Friday.
    spec = FactorySpec(shifts={"weekdays": [1, 2, 3, 4, 5], "timezone": "Europe/Berlin"})
    friday_20_local = MONDAY_US + 4 * 24 * HOUR_US + 19 * HOUR_US
    rec = record(VirtualFactory(spec, friday_20_local), 12 * 60, 60.0)
    hours = (rec.time_us - friday_20_local) / HOUR_US + 20.0  # local hour, from Friday 20:00
    state, power = rec("cnc", "state"), rec("cnc", "power")
    # The Friday night shift (from 22:00) still runs, into Saturday; Saturday's 06:00 does not.
    assert (state[(hours > 22.5) & (hours < 24 + 2)] == RUNNING).any()
    saturday_morning = hours > 24 + 6
    off = state[saturday_morning] == MachineState.OFF
    down = state[saturday_morning] == DOWN
    assert (off | down).all() and off.any()
    assert (power[saturday_morning][off] == 0.0).all()
    assert (rec("cnc", "stop_reason")[saturday_morning][off] == StopReason.NO_SHIFT).all()


@pytest.fixture(scope="module")
def faulty() -> Recording:
    """Twelve hours of a plant where things break often, without minor stops to blur them."""
    spec = FactorySpec(
        machining_lines=8,
        packaging_lines=6,
        seed=5,
        faults={
            "overheat_per_hour": 1.0,
            "tool_breakage_per_hour": 1.0,
            "jam_per_hour": 2.0,
            "material_shortage_per_hour": 1.0,
            "micro_stop_per_hour": 0.0,
        },
    )
    return record(VirtualFactory(spec, MONDAY_US + 6 * HOUR_US + 20 * 60_000_000), 2000, DT)


def _onsets(rec: Recording, kind: str, reason: StopReason) -> np.ndarray:
    state, why = rec(kind, "state"), rec(kind, "stop_reason")
    return (state[1:] == DOWN) & (state[:-1] != DOWN) & (why[1:] == reason)


def _rate(rec: Recording, kind: str, reason: StopReason) -> float:
    running_hours = (rec(kind, "state")[:-1] == RUNNING).sum() * rec.dt / 3600.0
    return float(_onsets(rec, kind, reason).sum() / running_hours)


@pytest.mark.parametrize(
    ("kind", "reason", "rate"),
    [
        ("filler", StopReason.JAM, 2.0),
        ("conveyor", StopReason.JAM, 2.0),
        ("filler", StopReason.MATERIAL_SHORTAGE, 1.0),
        # A cooling failure trips the machine only once the spindle has heated up.
        ("cnc", StopReason.OVERHEAT, 0.9),
    ],
)
def test_faults_happen_at_the_configured_rate(
    faulty: Recording, kind: str, reason: StopReason, rate: float
) -> None:
    assert _rate(faulty, kind, reason) == pytest.approx(rate, rel=0.3)


def test_tool_breakage_is_likelier_on_worn_tools(faulty: Recording) -> None:
    wear = faulty("cnc", "tool_wear")[:-1]
    running = faulty("cnc", "state")[:-1] == RUNNING
    broke = _onsets(faulty, "cnc", StopReason.TOOL_BREAKAGE)
    hours_at = {}
    for name, band in (("new", wear < 40.0), ("worn", wear >= 40.0)):
        run_h = (running & band).sum() * DT / 3600.0
        hours_at[name] = broke[band].sum() / run_h
        expected = breakage_factor(wear[running & band]).mean()
        assert hours_at[name] == pytest.approx(expected, rel=0.4)
    assert hours_at["worn"] > 1.3 * hours_at["new"]


def test_overheat_trips_above_the_limit(faulty: Recording) -> None:
    trips = _onsets(faulty, "cnc", StopReason.OVERHEAT)
    assert trips.sum() >= 10
    temp_before = faulty("cnc", "temperature")[:-1][trips]
    # A failed sensor freezes its reading, so only trust readings of Good quality.
    columns = [i for i, p in enumerate(faulty.paths) if p.endswith("/temperature")]
    good_before = (faulty.qualities[:, columns] == Quality.GOOD)[:-1][trips]
    assert good_before.sum() >= 10
    assert (temp_before[good_before] > OVERHEAT_LIMIT_C - 1.0).all()


@pytest.mark.parametrize("kind", ["cnc", "filler", "conveyor"])
def test_down_machines_recover(faulty: Recording, kind: str) -> None:
    down = faulty(kind, "state") == DOWN
    steps, machines = down.shape
    episodes = 0
    for m in range(machines):
        edges = np.flatnonzero(np.diff(down[:, m].astype(np.int8)))
        starts = edges[down[edges + 1, m]] + 1
        ends = edges[~down[edges + 1, m]] + 1
        for s in starts:
            later = ends[ends > s]
            if s < steps - 400:  # long enough before the end to be repaired
                assert len(later), f"machine {m} stayed down from step {s}"
                assert (later[0] - s) * DT >= MIN_REPAIR_S - DT
                episodes += 1
    assert episodes >= 10
    # A down machine draws less power than a running one.
    power = faulty(kind, "power")
    assert power[down].mean() < power[faulty(kind, "state") == RUNNING].mean()
