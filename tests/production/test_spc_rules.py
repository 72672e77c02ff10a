"""Run rules: one hand-written run per rule that fires exactly that rule, and the live (point at a
time) evaluation agreeing with the batch one.

Rules as numbered in L. S. Nelson, "The Shewhart Control Chart—Tests for Special Causes",
Journal of Quality Technology 16(4), 1984, pp. 237-239, and in the Western Electric Statistical
Quality Control Handbook (1956). Series are in sigma units from the centre line (z).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.production import spc
from kiln.production.spc_rules import LiveRules, RuleSet, Violation, evaluate

# rule -> a run that fires that rule, at its last point only, and no other rule anywhere.
NELSON_RUNS: dict[int, list[float]] = {
    # 1: one point beyond 3 sigma.
    1: [0.5, -0.5, 0.2, 3.5],
    # 2: nine in a row on one side (all within 1 sigma, so neither rule 6 nor 8).
    2: [0.5, 0.3, 0.6, 0.2, 0.7, 0.4, 0.8, 0.1, 0.5],
    # 3: six in a row steadily increasing, crossing the centre, all within 1 sigma.
    3: [-0.9, -0.5, -0.1, 0.3, 0.7, 0.95],
    # 4: fourteen alternating up and down, within 1 sigma and on both sides.
    4: [0.5, -0.5] * 7,
    # 5: two of three beyond 2 sigma on the same side (the middle one is not).
    5: [-0.3, 2.5, 0.5, 2.4],
    # 6: four of five beyond 1 sigma on the same side, none beyond 2 sigma.
    6: [-0.5, 1.5, 1.2, 1.8, 1.4],
    # 7: fifteen within 1 sigma, crossing the centre, no trend of six or alternation of fourteen.
    7: [0.2, -0.3, 0.4, 0.1, -0.2, -0.5, 0.3, 0.6, -0.1, -0.4, 0.2, 0.5, -0.3, 0.1, 0.4],
    # 8: eight beyond 1 sigma, on both sides: never four of five on one side nor beyond 2 sigma.
    8: [1.5, -1.5, -1.2, 1.4, 1.6, -1.3, -1.7, 1.2],
}

# Western Electric numbering: 1 beyond 3 sigma, 2 two of three beyond 2 sigma, 3 four of five
# beyond 1 sigma, 4 eight in a row on one side.
WECO_RUNS: dict[int, list[float]] = {
    1: NELSON_RUNS[1],
    2: NELSON_RUNS[5],
    3: NELSON_RUNS[6],
    4: [0.5, 0.3, 0.6, 0.2, 0.7, 0.4, 0.8, 0.1],
}


@pytest.mark.parametrize("rule", sorted(NELSON_RUNS))
def test_each_nelson_run_fires_exactly_its_rule(rule: int) -> None:
    run = NELSON_RUNS[rule]
    assert evaluate(run, RuleSet.NELSON) == (Violation(len(run) - 1, rule),)


@pytest.mark.parametrize("rule", sorted(WECO_RUNS))
def test_each_western_electric_run_fires_exactly_its_rule(rule: int) -> None:
    run = WECO_RUNS[rule]
    assert evaluate(run, RuleSet.WESTERN_ELECTRIC) == (Violation(len(run) - 1, rule),)


def test_the_two_rule_sets_differ_where_they_should() -> None:
    # Eight on one side is a Western Electric signal and not (yet) a Nelson one.
    assert evaluate(WECO_RUNS[4], RuleSet.NELSON) == ()
    # Nelson's trend, alternation, stratification and mixture rules have no WECO counterpart.
    for rule in (3, 4, 7, 8):
        assert evaluate(NELSON_RUNS[rule], RuleSet.WESTERN_ELECTRIC) == ()


def test_one_less_point_does_not_fire() -> None:
    # Each run is minimal: without its last point nothing fires, so the counts are exact.
    for rules, runs in ((RuleSet.NELSON, NELSON_RUNS), (RuleSet.WESTERN_ELECTRIC, WECO_RUNS)):
        for run in runs.values():
            assert evaluate(run[:-1], rules) == ()


def test_a_pattern_that_goes_on_fires_at_each_point_that_extends_it() -> None:
    run = NELSON_RUNS[2] + [0.6, 0.2]  # eleven on one side
    assert evaluate(run) == (Violation(8, 2), Violation(9, 2), Violation(10, 2))


def test_boundaries_and_ties() -> None:
    # Exactly 3 sigma is not beyond it; a point on the centre line breaks a run; equal neighbours
    # break a trend.
    assert evaluate([3.0]) == ()
    assert evaluate([0.5] * 4 + [0.0] + [0.5] * 4) == ()
    assert evaluate([0.0] * 9) == ()  # on the centre line is on neither side
    assert evaluate([-0.9, -0.5, -0.1, -0.1, 0.3, 0.7]) == ()


def test_rules_on_a_chart_with_a_frozen_baseline() -> None:
    # A baseline I-MR chart, then new values drifting up: standardised against the frozen
    # limits, six rising values fire rule 3 and the last one rule 1.
    base = spc.i_mr_baseline([10.0, 10.4, 9.8, 10.2, 9.6, 10.0])  # mean 10, MR̄ 0.48
    sigma = spc.constants(2).E2 * 0.48 / 3  # ≈ 0.4255
    assert spc.i_mr([10.0], base).location.limits[0].sigma == pytest.approx(sigma)
    drift = [9.9, 10.1, 10.2, 10.3, 10.5, 11.4]
    zs = spc.i_mr(drift, base).location.standardized()
    assert evaluate(zs) == (Violation(5, 1), Violation(5, 3))


def test_non_finite_points_are_rejected() -> None:
    with pytest.raises(ValueError, match="point 2 is inf"):
        evaluate([0.0, 1.0, float("inf")])
    live = LiveRules()
    live.push(0.0)
    with pytest.raises(ValueError, match="point 1 is nan"):
        live.push(float("nan"))


def live(zs: list[float], rules: RuleSet) -> tuple[Violation, ...]:
    evaluator = LiveRules(rules)
    return tuple(v for z in zs for v in evaluator.push(z))


@pytest.mark.parametrize("rules", list(RuleSet))
def test_live_matches_batch_on_the_hand_written_runs(rules: RuleSet) -> None:
    runs = list(NELSON_RUNS.values()) + list(WECO_RUNS.values())
    joined = [z for run in runs for z in run]
    assert live(joined, rules) == evaluate(joined, rules)
    assert evaluate(joined, rules)  # the joined series does fire: the comparison is not empty


# Values on a half-sigma grid, so ties, points on the centre and on the zone edges are frequent.
grid = st.sampled_from([x / 2 for x in range(-8, 9)])


@settings(max_examples=300, deadline=None)
@given(st.lists(grid, max_size=80), st.sampled_from(list(RuleSet)))
def test_live_matches_batch(zs: list[float], rules: RuleSet) -> None:
    assert live(zs, rules) == evaluate(zs, rules)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-4, 4, allow_nan=False), max_size=80))
def test_live_matches_batch_on_continuous_values(zs: list[float]) -> None:
    assert live(zs, RuleSet.NELSON) == evaluate(zs, RuleSet.NELSON)
