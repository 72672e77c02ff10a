"""Alarm-system KPIs (kiln.alarms.kpis) on hand-built journals.

Every expected figure is worked out by hand in the test from the definitions (ISA-18.2 Table 5
/ IEC 62682 and EEMUA 191: rates per operator position, peak 10-minute count, flood, priority
distribution, top-10 share, chattering, stale), never by calling the module twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from kiln.alarms.definitions import Priority
from kiln.alarms.kpis import TARGETS, AlarmKpis, Verdict, alarm_kpis
from kiln.alarms.records import AlarmRecord, JournalEntry
from kiln.alarms.states import AlarmState, Shelving, State

S = 1_000_000
MIN = 60 * S
HOUR = 3600 * S
DAY = 24 * HOUR
T0 = 1_699_920_000 * S  # a UTC midnight (19675 days after the epoch): buckets start here


@dataclass
class Journal:
    """Builds a consistent journal: each activation opens the alarm's next occurrence."""

    entries: list[JournalEntry] = field(default_factory=list)
    occurrence: dict[str, int] = field(default_factory=dict)

    def _add(
        self,
        alarm_id: str,
        at: int,
        event: str,
        old: State,
        new: State,
        *,
        priority: Priority = Priority.LOW,
        announced: bool = True,
    ) -> None:
        self.entries.append(
            JournalEntry(
                source_us=at,
                recorded_us=at,
                alarm_id=alarm_id,
                asset=alarm_id.rsplit("/", 1)[0],
                priority=priority,
                occurrence=self.occurrence.get(alarm_id, 0),
                event=event,
                old_state=old,
                new_state=new,
                announced=announced,
                seq=len(self.entries) + 1,
            )
        )

    def act(
        self,
        alarm_id: str,
        at: int,
        priority: Priority = Priority.LOW,
        *,
        announced: bool = True,
        clear_after: int | None = 1 * S,
    ) -> None:
        """An activation at `at`, returning to normal `clear_after` later (None: stays)."""
        self.occurrence[alarm_id] = self.occurrence.get(alarm_id, 0) + 1
        shown = State.UNACKNOWLEDGED if announced else State.SHELVED
        old = State.NORMAL if announced else State.SHELVED
        self._add(
            alarm_id, at, "becomes_abnormal", old, shown, priority=priority, announced=announced
        )
        if clear_after is not None:
            self.rtn(alarm_id, at + clear_after, priority)

    def rtn(self, alarm_id: str, at: int, priority: Priority = Priority.LOW) -> None:
        self._add(
            alarm_id, at, "returns_to_normal", State.UNACKNOWLEDGED, State.RTN_UNACKNOWLEDGED,
            priority=priority,
        )  # fmt: skip

    def realarm(self, alarm_id: str, at: int) -> None:
        self._add(alarm_id, at, "realarm", State.UNACKNOWLEDGED, State.UNACKNOWLEDGED)

    def ack(self, alarm_id: str, at: int) -> None:
        self._add(alarm_id, at, "acknowledge", State.RTN_UNACKNOWLEDGED, State.NORMAL)


def kpis(
    j: Journal,
    *,
    start: int = T0,
    end: int = T0 + HOUR,
    now: int | None = None,
    records: list[AlarmRecord] | None = None,
    **kw: object,
) -> AlarmKpis:
    return alarm_kpis(
        j.entries,
        records or [],
        start_us=start,
        end_us=end,
        now_us=end if now is None else now,
        **kw,  # type: ignore[arg-type]
    )


def record(alarm_id: str, *, since: int | None = None, **state: object) -> AlarmRecord:
    return AlarmRecord(
        id=alarm_id,
        asset=alarm_id.rsplit("/", 1)[0],
        name=alarm_id.rsplit("/", 1)[1],
        condition="discrete",
        priority=Priority.LOW,
        state=AlarmState(**state),  # type: ignore[arg-type]
        active_since_us=since,
    )


# -- rates (ISA-18.2 Table 5: per operator position per 10 min, hour, day; peak 10 min) -------


def test_rates_per_position_series_peak_and_realarms() -> None:
    j = Journal()
    # 12 activations in the hour: 5 in 00:00-00:10, 0 in 00:10-00:20, 4 in 00:20-00:30,
    # 3 in 00:50-01:00. Alarm ids spread so no alarm chatters.
    for i in range(5):
        j.act(f"plant/a{i}/x", T0 + i * MIN)
    for i in range(4):
        j.act(f"plant/b{i}/x", T0 + 20 * MIN + i * MIN)
    for i in range(3):
        j.act(f"plant/c{i}/x", T0 + 50 * MIN + i * 2 * MIN)
    j.realarm("plant/a0/x", T0 + 30 * MIN)
    j.realarm("plant/a1/x", T0 + 31 * MIN)
    j.realarm("plant/a2/x", T0 + 32 * MIN)
    j.ack("plant/a3/x", T0 + 33 * MIN)  # an acknowledgement is no alarm
    j.act("plant/d/x", T0 + 34 * MIN, announced=False)  # shelved: journaled, not annunciated
    k = kpis(j, positions=2)
    assert (k.activations, k.realarms) == (12, 3)
    # 12 alarms / 6 ten-minute periods / 2 positions = 1.0 -> "~1 very likely acceptable"
    assert k.figure("activations_per_10_min").value == pytest.approx(1.0)
    assert k.figure("activations_per_10_min").verdict is Verdict.ACCEPTABLE
    assert k.figure("activations_per_hour").value == pytest.approx(6.0)  # 12 / 1 h / 2
    assert k.figure("activations_per_day").value == pytest.approx(144.0)  # 12 * 24 / 2
    # With re-alarms: 15 / 6 / 2 = 1.25 per 10 min: between ~1 and ~2, "maximum manageable".
    incl = k.figure("activations_per_10_min_incl_realarms")
    assert incl.value == pytest.approx(1.25)
    assert incl.verdict is Verdict.MANAGEABLE
    assert k.figure("activations_per_hour_incl_realarms").value == pytest.approx(7.5)
    assert k.series_10_min == tuple(
        (T0 + i * 10 * MIN, n) for i, n in enumerate([5, 0, 4, 0, 0, 3])
    )
    assert k.series_hour == ((T0, 12),)
    assert k.peak_10_min.value == 5
    assert k.peak_10_min.verdict is Verdict.ACCEPTABLE  # at most 10


def test_rate_over_maximum_manageable() -> None:
    j = Journal()
    for i in range(13):  # 13 in one hour, one position: 13/6 = 2.17 per 10 min > ~2
        j.act(f"plant/m{i}/x", T0 + i * 4 * MIN)
    k = kpis(j)
    assert k.figure("activations_per_10_min").value == pytest.approx(13 / 6)
    assert k.figure("activations_per_10_min").verdict is Verdict.OVER_TARGET
    assert k.figure("activations_per_hour").verdict is Verdict.OVER_TARGET  # 13 > ~12


# -- range boundaries ----------------------------------------------------------------------


def test_entries_exactly_at_start_count_and_at_end_do_not() -> None:
    j = Journal()
    j.act("plant/a/x", T0 - 1)  # just before the range
    j.act("plant/b/x", T0)  # exactly at the start: in [start, end)
    j.act("plant/c/x", T0 + HOUR - 1)  # last microsecond of the range
    j.act("plant/d/x", T0 + HOUR)  # exactly at the end: out
    k = kpis(j)
    assert k.activations == 2
    assert {a.alarm_id for a in k.bad_actors} == {"plant/b/x", "plant/c/x"}
    assert k.series_10_min[0] == (T0, 1)
    assert k.series_10_min[-1] == (T0 + 50 * MIN, 1)


def test_partial_buckets_align_to_the_epoch() -> None:
    j = Journal()
    j.act("plant/a/x", T0 + 5 * MIN)  # before the range, same bucket as its start
    j.act("plant/b/x", T0 + 8 * MIN)
    k = kpis(j, start=T0 + 7 * MIN, end=T0 + 27 * MIN)
    # Buckets 00:00, 00:10, 00:20 overlap [00:07, 00:27); only b lies in the range.
    assert k.series_10_min == ((T0, 1), (T0 + 10 * MIN, 0), (T0 + 20 * MIN, 0))
    # 1 alarm over 20 minutes = 0.5 per 10 minutes
    assert k.figure("activations_per_10_min").value == pytest.approx(0.5)


def test_occurrence_spanning_the_range_start_is_stale_within_the_range() -> None:
    j = Journal()
    j.act("plant/a/x", T0 - 23 * HOUR, clear_after=None)  # still active through the range
    j.act("plant/b/x", T0 - 30 * HOUR, clear_after=5 * HOUR)  # stale before, cleared before
    j.act("plant/c/x", T0 - 23 * HOUR, clear_after=24 * HOUR)  # clears as it reaches 24 h
    k = kpis(j, start=T0, end=T0 + 2 * HOUR)
    # a: active since T0-23h, more than 24 h from T0+1h onwards: stale in the range.
    assert [(s.alarm_id, s.active_since_us, s.cleared_us) for s in k.stale_in_range] == [
        ("plant/a/x", T0 - 23 * HOUR, None)
    ]
    assert k.stale_max_on_any_day.value == 1
    assert k.activations == 0  # they activated before the range: not counted in it


def test_stale_occurrence_dated_by_its_record_when_its_start_is_outside_the_entries() -> None:
    j = Journal()
    j.realarm("plant/a/x", T0 + MIN)  # the journal given starts after the activation
    rec = record("plant/a/x", since=T0 - 3 * DAY, process=State.UNACKNOWLEDGED, occurrence=4)
    k = kpis(j, records=[rec])
    assert [(s.alarm_id, s.occurrence) for s in k.stale_in_range] == [("plant/a/x", 4)]


# -- flood (ISA-18.2: begins above 10 per 10 min, ends below 5 per 10 min) -------------------


def test_flood_starts_at_the_11th_and_ends_when_4_remain() -> None:
    j = Journal()
    for i in range(11):  # one each second, 0..10 s, distinct alarms
        j.act(f"plant/f{i}/x", T0 + i * S)
    j.act("plant/g/x", T0 + 300 * S)  # keeps the count at 5 for one second longer
    k = kpis(j)
    # The 11th (at 10 s) makes 11 in the last 10 min: the flood starts then. The alarm of i s
    # leaves the window at 600+i s: at 606 s 12-7 = 5 remain (still a flood), at 607 s 4: ends.
    assert [(f.start_us, f.end_us, f.activations) for f in k.floods] == [
        (T0 + 10 * S, T0 + 607 * S, 2)  # in [10 s, 607 s): the 11th and the one at 300 s
    ]
    assert k.figure("percent_time_in_flood").value == pytest.approx(100 * 597 / 3600)
    assert k.figure("percent_time_in_flood").verdict is Verdict.OVER_TARGET
    # 1 of the 6 ten-minute periods holds more than 10 (12), ISA-18.2 Table 5's period metric.
    assert k.figure("percent_10_min_periods_over_10").value == pytest.approx(100 / 6)
    assert k.peak_10_min.value == 12
    assert k.peak_10_min.verdict is Verdict.OVER_TARGET


def test_ten_in_ten_minutes_is_no_flood() -> None:
    j = Journal()
    for i in range(10):
        j.act(f"plant/f{i}/x", T0 + i * 30 * S)
    j.act("plant/g/x", T0 + 600 * S)  # the first has just left the window: still 10
    k = kpis(j)
    assert k.floods == ()
    assert k.figure("percent_time_in_flood").value == 0
    assert k.figure("percent_time_in_flood").verdict is Verdict.ACCEPTABLE
    assert k.peak_10_min.value == 10  # 00:00-00:10 holds ten
    assert k.peak_10_min.verdict is Verdict.ACCEPTABLE


def test_flood_in_progress_at_the_range_start_counts_from_the_start() -> None:
    j = Journal()
    for i in range(11):
        j.act(f"plant/f{i}/x", T0 + i * S)
    k = kpis(j, start=T0 + 300 * S, end=T0 + 300 * S + HOUR)
    # The flood of [10 s, 606 s) (nothing else holds it up) seen from 300 s: 306 s of 3600.
    assert [(f.start_us, f.end_us) for f in k.floods] == [(T0 + 300 * S, T0 + 606 * S)]
    assert k.figure("percent_time_in_flood").value == pytest.approx(100 * 306 / 3600)
    assert k.activations == 0


def test_busy_hours_over_30() -> None:
    j = Journal()
    for i in range(31):  # 31 in the first hour, one every 100 s: never 11 in 10 min
        j.act(f"plant/h{i}/x", T0 + i * 100 * S)
    k = kpis(j, end=T0 + 4 * HOUR)
    assert k.figure("percent_hours_over_30").value == pytest.approx(25.0)  # 1 of 4 hours
    assert k.floods == ()


# -- chattering: 3 or more activations of one alarm within 60 s -----------------------------


def test_chattering_sliding_60_s_window() -> None:
    j = Journal()
    for t in (0, 30, 60):  # 3 within 60 s (inclusive): chattering
        j.act("plant/a/x", T0 + 10 * MIN + t * S)
    for t in (0, 30, 61):  # 3 within 61 s: not
        j.act("plant/b/x", T0 + 10 * MIN + t * S)
    for t in (0, 100, 130, 159):  # the window slides: 100..159 holds three
        j.act("plant/c/x", T0 + 20 * MIN + t * S)
    k = kpis(j)
    assert [(a.alarm_id, a.count, a.most_in_60_s) for a in k.chattering_alarms] == [
        ("plant/a/x", 3, 3),
        ("plant/c/x", 4, 3),
    ]
    assert k.chattering.value == 2
    assert k.chattering.verdict is Verdict.OVER_TARGET  # the target is zero


def test_chattering_needs_the_same_alarm() -> None:
    j = Journal()
    for i in range(3):
        j.act(f"plant/a{i}/x", T0 + i * S)
    k = kpis(j)
    assert k.chattering.value == 0
    assert k.chattering.verdict is Verdict.ACCEPTABLE


# -- subtree (segment-wise prefix) ---------------------------------------------------------


def test_subtree_is_segment_wise_line1_is_not_line10() -> None:
    j = Journal()
    j.act("plant/line1/temp", T0 + MIN)
    j.act("plant/line1/filler/jam", T0 + 2 * MIN)
    j.act("plant/line10/temp", T0 + 3 * MIN)  # the sibling-prefix trap
    j.act("plant/line100/temp", T0 + 4 * MIN)
    records = [
        record("plant/line1/temp", shelving=Shelving.TIMED, unshelve_at_us=T0 + 2 * HOUR),
        record("plant/line10/temp", shelving=Shelving.TIMED, unshelve_at_us=T0 + 2 * HOUR),
        record("plant/line10/temp2", out_of_service=True),
    ]
    k = kpis(j, subtree="plant/line1", records=records)
    assert k.activations == 2
    assert {a.alarm_id for a in k.bad_actors} == {"plant/line1/temp", "plant/line1/filler/jam"}
    assert (k.now.shelved, k.now.out_of_service) == (1, 0)
    whole = kpis(j, records=records)
    assert (whole.activations, whole.now.shelved, whole.now.out_of_service) == (4, 2, 1)


# -- priority distribution (~80 % low, ~15 % medium, ~5 % high; critical with high) ----------


def test_priority_distribution_merges_critical_with_high() -> None:
    j = Journal()
    plan = [Priority.LOW] * 16 + [Priority.MEDIUM] * 2 + [Priority.HIGH, Priority.CRITICAL]
    for i, p in enumerate(plan):
        j.act(f"plant/p{i}/x", T0 + i * 2 * MIN, p)
    k = kpis(j)
    d = k.priorities
    assert d.percent(Priority.LOW) == pytest.approx(80.0)  # 16 / 20
    assert d.percent(Priority.MEDIUM) == pytest.approx(10.0)  # 2 / 20
    assert d.percent(Priority.HIGH) == pytest.approx(5.0)
    assert d.percent(Priority.CRITICAL) == pytest.approx(5.0)
    # Merged: high + critical = 10 % > ~5 %: priority inflation.
    assert d.compared == pytest.approx({"low": 80.0, "medium": 10.0, "high_and_critical": 10.0})
    assert d.verdict is Verdict.OVER_TARGET
    out = k.to_json()["priorities"]
    assert out["counts"] == {"low": 16, "medium": 2, "high": 1, "critical": 1}


def test_priority_distribution_on_the_guidance_is_acceptable() -> None:
    j = Journal()
    plan = [Priority.LOW] * 16 + [Priority.MEDIUM] * 3 + [Priority.CRITICAL]
    for i, p in enumerate(plan):
        j.act(f"plant/p{i}/x", T0 + i * 2 * MIN, p)
    d = kpis(j).priorities
    assert d.compared == pytest.approx({"low": 80.0, "medium": 15.0, "high_and_critical": 5.0})
    assert d.verdict is Verdict.ACCEPTABLE


# -- bad actors (ISA-18.2 Table 5: top 10 share of the load, ~1 % to 5 % maximum) ------------


def test_top_10_bad_actors_and_their_share() -> None:
    j = Journal()
    # 12 alarms: alarm k activates k+1 times (1..12), 78 in all, spread over the
    # hour in turns, 30 s apart, so that no alarm has 3 within 60 s.
    t = T0
    for round_ in range(12):
        for k_ in range(12):
            if round_ <= k_:
                j.act(f"plant/b{k_:02d}/x", t)
                t += 30 * S
    k = kpis(j, end=T0 + 2 * HOUR)
    assert k.activations == 78
    assert [(a.alarm_id, a.count) for a in k.bad_actors] == [
        (f"plant/b{i:02d}/x", i + 1) for i in range(11, 1, -1)
    ]
    assert k.bad_actors[0].percent == pytest.approx(100 * 12 / 78)
    # The top ten hold 12+11+...+3 = 75 of 78.
    assert k.top_10_share.value == pytest.approx(100 * 75 / 78)
    assert k.top_10_share.verdict is Verdict.OVER_TARGET
    assert k.chattering.value == 0


# -- stale and the counts at now ------------------------------------------------------------


def test_stale_at_now_and_counts_from_records() -> None:
    now = T0 + HOUR
    records = [
        record("plant/a/x", since=now - 25 * HOUR, process=State.UNACKNOWLEDGED, occurrence=1),
        record("plant/b/x", since=now - 23 * HOUR, process=State.ACKNOWLEDGED, occurrence=1),
        record(  # stale behind a shelve still counts: the condition is what is stale
            "plant/c/x",
            since=now - 48 * HOUR,
            process=State.ACKNOWLEDGED,
            occurrence=2,
            shelving=Shelving.TIMED,
            unshelve_at_us=now + HOUR,
        ),
        record("plant/d/x", since=now - 72 * HOUR, process=State.RTN_UNACKNOWLEDGED, occurrence=1),
        record("plant/e/x", suppressed=True),
        record("plant/f/x", process=State.LATCHED_UNACKNOWLEDGED, occurrence=1, since=now - HOUR),
    ]
    k = kpis(Journal(), records=records, now=now)
    assert k.stale_at_now_ids == ("plant/a/x", "plant/c/x")  # d has cleared
    assert k.stale_at_now.verdict is Verdict.ACCEPTABLE  # fewer than 5
    assert (k.now.shelved, k.now.suppressed, k.now.out_of_service) == (1, 1, 0)
    assert k.now.active == 3  # a, b, c
    assert k.now.unacknowledged == 3  # a, d (returned, unacknowledged), f (latched)
    assert k.now.active_unacknowledged == 1  # a


def test_five_stale_on_one_day_is_over_target() -> None:
    j = Journal()
    for i in range(5):
        j.act(f"plant/s{i}/x", T0 - 2 * DAY + i * HOUR, clear_after=None)
    k = kpis(j, start=T0, end=T0 + DAY)
    assert k.stale_max_on_any_day.value == 5
    assert k.stale_max_on_any_day.verdict is Verdict.OVER_TARGET  # "fewer than 5 on any day"


# -- empty and invalid ranges ---------------------------------------------------------------


def test_a_range_without_alarms() -> None:
    k = kpis(Journal())
    assert (k.activations, k.realarms) == (0, 0)
    assert k.figure("activations_per_10_min").value == 0
    assert k.figure("activations_per_10_min").verdict is Verdict.ACCEPTABLE
    assert k.series_10_min == tuple((T0 + i * 10 * MIN, 0) for i in range(6))
    assert k.peak_10_min.value == 0
    assert k.priorities.verdict is Verdict.NO_DATA  # no share of nothing
    assert k.top_10_share.value is None
    assert k.top_10_share.verdict is Verdict.NO_DATA
    assert k.floods == () and k.bad_actors == () and k.chattering_alarms == ()


@pytest.mark.parametrize(("start", "end"), [(T0, T0), (T0 + 1, T0)])
def test_empty_or_reversed_range_is_refused(start: int, end: int) -> None:
    with pytest.raises(ValueError, match=r"end_us .* must be after start_us"):
        kpis(Journal(), start=start, end=end)


def test_positions_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positions must be 1 or more"):
        kpis(Journal(), positions=0)


# -- the JSON the console reads and the targets table ------------------------------------------


def test_json_figures_carry_verdicts_and_the_rate_series() -> None:
    j = Journal()
    j.act("plant/a/x", T0 + 12 * MIN)
    out = json.loads(json.dumps(kpis(j).to_json()))
    rate = out["rates"]["activations_per_10_min"]
    assert rate["value"] == pytest.approx(1 / 6)
    assert (rate["verdict"], rate["target"], rate["maximum_manageable"]) == ("acceptable", 1, 2)
    assert "ISA-18.2" in rate["source"]
    assert out["rates"]["activations_per_10_min_incl_realarms"]["label"].endswith(
        "(re-alarms included)"
    )
    assert out["series"]["ten_minute"][1] == [T0 + 10 * MIN, 1]
    assert out["counts"] == {"activations": 1, "realarms": 0, "activations_incl_realarms": 1}
    assert out["priorities"]["distribution"]["verdict"] == "acceptable"  # 100 % low
    assert out["bad_actors"]["top_10"] == [{"alarm_id": "plant/a/x", "count": 1, "percent": 100.0}]


def test_every_target_cites_its_source() -> None:
    for key, target in TARGETS.items():
        assert "ISA-18.2" in target.source, key
        assert target.rule, key
    # ISA-18.2 Table 5's rates per operator position: ~1 / ~2 per 10 min, ~6 / ~12 per hour,
    # ~150 / ~300 per day.
    assert (
        TARGETS["activations_per_10_min"].acceptable,
        TARGETS["activations_per_10_min"].manageable,
    ) == (1, 2)
    assert (
        TARGETS["activations_per_hour"].acceptable,
        TARGETS["activations_per_hour"].manageable,
    ) == (6, 12)
    assert (
        TARGETS["activations_per_day"].acceptable,
        TARGETS["activations_per_day"].manageable,
    ) == (150, 300)


def test_active_exactly_24_h_is_not_stale() -> None:
    # ISA-18.2's stale alarm is active for *more than* 24 h: at exactly 24 h it is not yet.
    j = Journal()
    j.act("plant/a/x", T0 - 23 * HOUR, clear_after=None)
    # The range's last instant is T0+1h, when a has been active exactly 24 h.
    k = kpis(j, start=T0, end=T0 + HOUR + 1)
    assert k.stale_in_range == ()
    assert kpis(j, start=T0, end=T0 + HOUR + 2).stale_max_on_any_day.value == 1
    rec = record("plant/a/x", since=T0 - 23 * HOUR, process=State.UNACKNOWLEDGED, occurrence=1)
    assert kpis(j, records=[rec], now=T0 + HOUR).stale_at_now_ids == ()
    assert kpis(j, records=[rec], now=T0 + HOUR + 1).stale_at_now_ids == ("plant/a/x",)
