"""Half-open intervals and overlapping stop records: no instant is ever counted twice.

The overlap shapes are Allen's 13 interval relations (J. F. Allen, "Maintaining knowledge about
temporal intervals", CACM 26(11), 1983): before, meets, overlaps, starts, during, finishes,
equals and the six inverses. Overlapping reason records summed as they were entered gave OEE
Designer a negative availability (point85/OEE-Designer#9); every shape is built here.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.production.intervals import (
    Interval,
    StopRecord,
    clip,
    durations_by_reason,
    intersection,
    normalize,
    resolve_overlaps,
    subtract,
    total,
    union,
)

A = Interval(10, 20)
# Allen's relation of A to B -> B. Checked against `allen` below, so a wrong shape fails.
SHAPES: dict[str, Interval] = {
    "before": Interval(30, 40),
    "meets": Interval(20, 30),
    "overlaps": Interval(15, 25),
    "starts": Interval(10, 30),
    "during": Interval(5, 25),
    "finishes": Interval(5, 20),
    "equals": Interval(10, 20),
    "after": Interval(0, 5),
    "met_by": Interval(0, 10),
    "overlapped_by": Interval(5, 15),
    "started_by": Interval(10, 15),
    "contains": Interval(12, 18),
    "finished_by": Interval(15, 20),
}


def allen(a: Interval, b: Interval) -> str:
    """Allen's relation of a to b, from the definitions (an independent oracle for SHAPES)."""
    (a0, a1), (b0, b1) = (a.start_us, a.end_us), (b.start_us, b.end_us)
    if a1 < b0:
        return "before"
    if a1 == b0:
        return "meets"
    if b1 < a0:
        return "after"
    if b1 == a0:
        return "met_by"
    if (a0, a1) == (b0, b1):
        return "equals"
    if a0 == b0:
        return "starts" if a1 < b1 else "started_by"
    if a1 == b1:
        return "finishes" if a0 > b0 else "finished_by"
    if b0 < a0 and a1 < b1:
        return "during"
    if a0 < b0 and b1 < a1:
        return "contains"
    return "overlaps" if a0 < b0 else "overlapped_by"


def instants(intervals: tuple[Interval, ...] | list[Interval]) -> set[int]:
    """The integer instants an interval set holds: the brute-force oracle (half-open)."""
    return {t for iv in intervals for t in range(iv.start_us, iv.end_us)}


def test_the_shapes_are_all_thirteen_relations() -> None:
    assert {name: allen(A, b) for name, b in SHAPES.items()} == {n: n for n in SHAPES}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_set_operations_on_every_overlap_shape(name: str) -> None:
    b = SHAPES[name]
    a_and_b, a_or_b = intersection([A], [b]), union([A], [b])
    assert instants(a_or_b) == instants([A]) | instants([b])
    assert instants(a_and_b) == instants([A]) & instants([b])
    assert instants(subtract([A], [b])) == instants([A]) - instants([b])
    # Inclusion-exclusion: |A or B| + |A and B| = |A| + |B|.
    assert total(a_or_b) + total(a_and_b) == A.duration_us + b.duration_us
    assert total([A, b]) == total(a_or_b) <= A.duration_us + b.duration_us
    # Meeting intervals share no instant: their union is one interval, their intersection empty.
    if name in {"meets", "met_by"}:
        assert len(a_or_b) == 1 and a_and_b == ()


@pytest.mark.parametrize("a_last", [False, True], ids=["b_entered_last", "a_entered_last"])
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_overlapping_stop_records_are_counted_once(name: str, a_last: bool) -> None:
    b = SHAPES[name]
    rec_a = StopRecord(A, "jam", entered_us=2 if a_last else 1)
    rec_b = StopRecord(b, "material", entered_us=1 if a_last else 2)
    pieces = resolve_overlaps([rec_a, rec_b])
    spans = [p.interval for p in pieces]
    # Non-overlapping, in order, covering exactly the union: never more than the union.
    assert all(x.end_us <= y.start_us for x, y in itertools.pairwise(spans))
    assert sum(s.duration_us for s in spans) == total([A, b])
    assert instants(spans) == instants([A, b])
    # The later entry owns the overlap; the earlier keeps only what the later does not cover.
    later, earlier = (rec_a, rec_b) if a_last else (rec_b, rec_a)
    by_reason = durations_by_reason(pieces)
    assert by_reason.get(later.reason, 0) == later.interval.duration_us
    assert by_reason.get(earlier.reason, 0) == total(subtract([earlier.interval], [later.interval]))


def test_later_entry_splits_an_earlier_stop_into_three_pieces() -> None:
    stop = StopRecord(Interval(0, 60), "unknown", entered_us=100)
    split = StopRecord(Interval(20, 30), "jam", entered_us=200)
    pieces = resolve_overlaps([split, stop])  # input order does not matter, entry time does
    assert [(p.interval, p.reason) for p in pieces] == [
        (Interval(0, 20), "unknown"),
        (Interval(20, 30), "jam"),
        (Interval(30, 60), "unknown"),
    ]


def test_equal_entry_times_the_later_in_the_list_wins_and_gaps_stay_gaps() -> None:
    first = StopRecord(Interval(0, 10), "a", entered_us=5)
    second = StopRecord(Interval(5, 15), "b", entered_us=5)
    apart = StopRecord(Interval(20, 25), "a", entered_us=5)
    pieces = resolve_overlaps([first, second, apart])
    assert [(p.interval, p.reason) for p in pieces] == [
        (Interval(0, 5), "a"),
        (Interval(5, 15), "b"),
        (Interval(20, 25), "a"),
    ]


def test_clip_and_normal_form() -> None:
    shift = Interval(100, 200)
    assert clip([Interval(50, 120), Interval(150, 160), Interval(190, 300)], shift) == (
        Interval(100, 120),
        Interval(150, 160),
        Interval(190, 200),
    )
    # Meeting and overlapping neighbours merge; empty intervals vanish.
    assert normalize([Interval(5, 5), Interval(3, 4), Interval(0, 3), Interval(2, 6)]) == (
        Interval(0, 6),
    )


def test_an_interval_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        Interval(10, 5)


_intervals = st.builds(
    lambda start, length: Interval(start, start + length),
    st.integers(0, 100),
    st.integers(0, 40),
)
_records = st.lists(
    st.builds(StopRecord, _intervals, st.sampled_from("abcd"), st.integers(0, 5)), max_size=12
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_intervals, max_size=10), st.lists(_intervals, max_size=10), _intervals)
def test_set_operations_match_sets_of_instants(
    a: list[Interval], b: list[Interval], window: Interval
) -> None:
    ia, ib = instants(a), instants(b)
    for result, expected in [
        (union(a, b), ia | ib),
        (intersection(a, b), ia & ib),
        (subtract(a, b), ia - ib),
        (clip(a, window), ia & instants([window])),
    ]:
        assert result == normalize(result)  # results come in normal form
        assert instants(result) == expected
        assert total(result) == len(expected)


@settings(max_examples=300, deadline=None)
@given(_records)
def test_resolved_pieces_never_exceed_the_union(records: list[StopRecord[str]]) -> None:
    pieces = resolve_overlaps(records)
    spans = [p.interval for p in pieces]
    covered = instants([r.interval for r in records])
    assert all(x.end_us <= y.start_us for x, y in itertools.pairwise(spans))
    assert sum(durations_by_reason(pieces).values()) == len(covered) == total(spans)
    assert instants(spans) == covered
    for piece in pieces:  # each instant belongs to the latest-entered record covering it
        for t in range(piece.interval.start_us, piece.interval.end_us):
            covering = [
                (r.entered_us, i)
                for i, r in enumerate(records)
                if r.interval.start_us <= t < r.interval.end_us
            ]
            assert piece.record is records[max(covering)[1]]
