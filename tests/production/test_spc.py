"""SPC charts, their constants and capability: the computed constants against a published table,
closed forms, and charts worked by hand with the table's constants."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest

from kiln.production import spc

# Table A.22 "Factors for Constructing Control Charts" (Appendix A "Statistical Tables and
# Proofs", p. 766, of Walpole, Myers, Myers & Ye, Probability & Statistics for Engineers and
# Scientists, 9th ed.), rows n = 2..10, as printed. The same figures appear in Montgomery's
# Introduction to Statistical Quality Control, Appendix VI, and in Pyzdek & Keller, The Handbook
# for Quality Management, 2nd ed., Appendix A (A2, A3, c4, B3, B4).
# n: (A2, A3, c4, B3, B4, d2, d3, D3, D4)
PUBLISHED = {
    2: (1.880, 2.659, 0.7979, 0, 3.267, 1.128, 0.853, 0, 3.267),
    3: (1.023, 1.954, 0.8862, 0, 2.568, 1.693, 0.888, 0, 2.574),
    4: (0.729, 1.628, 0.9213, 0, 2.266, 2.059, 0.880, 0, 2.282),
    5: (0.577, 1.427, 0.9400, 0, 2.089, 2.326, 0.864, 0, 2.114),
    6: (0.483, 1.287, 0.9515, 0.030, 1.970, 2.534, 0.848, 0, 2.004),
    7: (0.419, 1.182, 0.9594, 0.118, 1.882, 2.704, 0.833, 0.076, 1.924),
    8: (0.373, 1.099, 0.9650, 0.185, 1.815, 2.847, 0.820, 0.136, 1.864),
    9: (0.337, 1.032, 0.9693, 0.239, 1.761, 2.970, 0.808, 0.184, 1.816),
    10: (0.308, 0.975, 0.9727, 0.284, 1.716, 3.078, 0.797, 0.223, 1.777),
}
COLUMNS = ("A2", "A3", "c4", "B3", "B4", "d2", "d3", "D3", "D4")
DECIMALS = {"c4": 4}  # the others are printed to 3 decimals


def published(n: int, name: str) -> float:
    return PUBLISHED[n][COLUMNS.index(name)]


@pytest.mark.parametrize("n", sorted(PUBLISHED))
@pytest.mark.parametrize("name", COLUMNS)
def test_constants_match_the_published_table(n: int, name: str) -> None:
    computed = getattr(spc.constants(n), name)
    half_unit = 0.5 * 10 ** -DECIMALS.get(name, 3)
    if (n, name) == (3, "D4"):
        # The one printed figure the definition does not round to: D4(3) = 1 + 3 d3/d2 is
        # 2.5746 (2.575 to 3 decimals); the table's 2.574 is the formula applied to its own
        # rounded d3 = 0.888 and d2 = 1.693 (2.5735). The exact value is within 0.001.
        assert computed == pytest.approx(2.57459, abs=1e-5)
        assert round(1 + 3 * published(3, "d3") / published(3, "d2"), 3) == 2.574
        assert abs(computed - published(n, name)) < 0.001
        return
    assert abs(computed - published(n, name)) <= half_unit, (n, name, computed)


def test_constants_match_closed_forms() -> None:
    # n = 2: X1 - X2 ~ N(0, 2), so the range |X1 - X2| has mean 2/√π and E[W²] = 2.
    # n = 3: E[W] = 3/√π (Tippett, Biometrika 17, 1925). c4(2) = √(2/π).
    two, three = spc.constants(2), spc.constants(3)
    assert two.d2 == pytest.approx(2 / math.sqrt(math.pi), abs=1e-9)
    assert two.d3 == pytest.approx(math.sqrt(2 - 4 / math.pi), abs=1e-7)
    assert three.d2 == pytest.approx(3 / math.sqrt(math.pi), abs=1e-9)
    assert two.c4 == pytest.approx(math.sqrt(2 / math.pi), abs=1e-12)
    # Individuals limits from MR̄: E2 = 3/d2(2), printed as 2.660 (from d2 rounded to 1.128).
    assert abs(two.E2 - 1.5 * math.sqrt(math.pi)) < 1e-9


def test_constants_cover_2_to_25_and_behave_as_n_grows() -> None:
    table = [spc.constants(n) for n in range(2, 26)]
    # The expected range grows and its spread shrinks relative to it; c4 tends to 1.
    assert all(a.d2 < b.d2 for a, b in itertools.pairwise(table))
    assert all(a.D4 > b.D4 and a.B4 > b.B4 for a, b in itertools.pairwise(table))
    assert all(a.c4 < b.c4 < 1 for a, b in itertools.pairwise(table))
    assert all(k.D3 == 0 for k in table[:5]) and all(k.D3 > 0 for k in table[5:])
    assert all(abs(k.D3 + k.D4 - 2) < 1e-12 for k in table[5:])


@pytest.mark.parametrize("n", [1, 0, 51])
def test_constants_reject_sizes_without_constants(n: int) -> None:
    with pytest.raises(ValueError, match=f"subgroup size {n}"):
        spc.constants(n)


# --- variables charts, worked by hand with the published constants (tolerance: the table's) ---

SUBGROUPS_4 = [[10.0, 12.0, 11.0, 13.0], [11.0, 13.0, 15.0, 13.0], [9.0, 10.0, 14.0, 11.0]]


def test_xbar_r_limits_from_the_data() -> None:
    chart = spc.xbar_r(SUBGROUPS_4)
    # Means 11.5, 13, 11: X̄̄ = 35.5/3. Ranges 3, 4, 5: R̄ = 4. n = 4: A2 0.729, D4 2.282.
    assert chart.location.values == (11.5, 13.0, 11.0)
    assert chart.spread.values == (3.0, 4.0, 5.0)
    limits = chart.location.limits[0]
    assert limits.centre == pytest.approx(35.5 / 3)
    assert limits.upper == pytest.approx(35.5 / 3 + 0.729 * 4, abs=4 * 0.0005)
    assert limits.lower == pytest.approx(35.5 / 3 - 0.729 * 4, abs=4 * 0.0005)
    r = chart.spread.limits[0]
    assert (r.centre, r.lower) == (4.0, 0.0)  # D3(4) = 0
    assert r.upper == pytest.approx(2.282 * 4, abs=4 * 0.0005)
    # sigma of R is d3 R̄ / d2 = 0.880 x 4 / 2.059, and the upper limit is 3 of them above R̄.
    assert r.sigma == pytest.approx(0.880 * 4 / 2.059, abs=1e-3)
    assert chart.location.beyond_limits == () and chart.spread.beyond_limits == ()


def test_xbar_r_frozen_baseline_judges_new_data_against_old_limits() -> None:
    baseline = spc.xbar_r_baseline(SUBGROUPS_4)
    shifted = [[v + 5 for v in g] for g in SUBGROUPS_4[:2]] + [[11.0, 11.5, 12.0, 11.5]]
    frozen = spc.xbar_r(shifted, baseline)
    assert frozen.baseline == baseline
    assert frozen.location.limits[0] == spc.xbar_r(SUBGROUPS_4).location.limits[0]
    # The two shifted means (16.5, 18) are above X̄̄ + A2 R̄ ≈ 14.75; the third is not.
    assert frozen.location.beyond_limits == (0, 1)
    # Limits computed over the shifted data itself move with it: the centre follows the shift.
    assert spc.xbar_r(shifted).location.limits[0].centre > baseline.mean + 2


def test_xbar_s_limits() -> None:
    chart = spc.xbar_s(SUBGROUPS_4)
    stdevs = [statistics.stdev(g) for g in SUBGROUPS_4]  # 1.291, 1.633, 2.160
    s_bar = sum(stdevs) / 3
    assert chart.spread.values == pytest.approx(stdevs)
    loc, s = chart.location.limits[0], chart.spread.limits[0]
    assert loc.upper == pytest.approx(35.5 / 3 + 1.628 * s_bar, abs=s_bar * 0.0005)  # A3(4)
    assert (s.lower, s.centre) == (0.0, pytest.approx(s_bar))  # B3(4) = 0
    assert s.upper == pytest.approx(2.266 * s_bar, abs=s_bar * 0.0005)  # B4(4)


def test_i_mr_limits() -> None:
    values = [10.0, 12.0, 11.0, 15.0, 13.0]
    chart = spc.i_mr(values)
    # Moving ranges 2, 1, 4, 2: MR̄ = 2.25, one point fewer than the individuals.
    assert chart.spread.values == (2.0, 1.0, 4.0, 2.0)
    ind, mr = chart.location.limits[0], chart.spread.limits[0]
    assert ind.centre == pytest.approx(12.2)
    assert ind.upper == pytest.approx(12.2 + 2.660 * 2.25, abs=2.25 * 0.0015)  # E2 = 3/1.128
    assert mr.upper == pytest.approx(3.267 * 2.25, abs=2.25 * 0.0005)  # D4(2)
    assert mr.lower == 0.0
    frozen = spc.i_mr([12.0, 25.0], chart.baseline)
    assert frozen.location.beyond_limits == (1,)
    assert frozen.spread.beyond_limits == (0,)  # |25 - 12| = 13 > 7.35


def test_variables_charts_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="subgroup 1 has 3 values, expected 4"):
        spc.xbar_r([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="baseline holds R̄ but this chart needs S̄"):
        spc.xbar_s(SUBGROUPS_4, spc.xbar_r_baseline(SUBGROUPS_4))
    with pytest.raises(ValueError, match="baseline is for subgroups of 4 and the data has 2"):
        spc.xbar_r([[1.0, 2.0]], spc.xbar_r_baseline(SUBGROUPS_4))
    with pytest.raises(ValueError, match="subgroup 0, value 1 is nan"):
        spc.xbar_r([[1.0, math.nan]])
    with pytest.raises(ValueError, match="sigma = 0"):
        spc.i_mr([5.0, 5.0, 5.0]).location.standardized()


# --- attributes charts -----------------------------------------------------------------------


def test_p_chart_has_limits_per_subgroup_size() -> None:
    chart = spc.p_chart([5, 10, 3], [100, 200, 50])
    p_bar = 18 / 350  # pooled: Σd / Σn, not the mean of the three fractions
    assert chart.values == (0.05, 0.05, 0.06)
    widths = [lim.upper - lim.centre for lim in chart.limits]
    for width, n in zip(widths, (100, 200, 50), strict=True):
        assert width == pytest.approx(3 * math.sqrt(p_bar * (1 - p_bar) / n))
    assert widths[2] > widths[0] > widths[1]  # smaller subgroup, wider limits
    assert chart.limits[2].lower == 0.0  # p̄ - 3 sigma < 0 for n = 50: clamped
    assert chart.limits[1].lower == pytest.approx(p_bar - widths[1])
    # Frozen p̄ = 0.01: 10/200 is then far above its limit, 0.05 ± 3 sigma(n=100) = 0.0398.
    assert spc.p_chart([5, 10, 3], [100, 200, 50], centre=0.01).beyond_limits == (0, 1, 2)


def test_np_chart() -> None:
    chart = spc.np_chart([2, 4, 3, 15], size=50)
    p_bar = 24 / 200
    lim = chart.limits[0]
    assert lim.centre == pytest.approx(6.0)
    assert lim.upper == pytest.approx(6 + 3 * math.sqrt(50 * p_bar * (1 - p_bar)))  # 12.89
    assert lim.lower == 0.0
    assert chart.beyond_limits == (3,)
    with pytest.raises(ValueError, match="51 defective of 50"):
        spc.np_chart([51], size=50)


def test_c_chart() -> None:
    # c̄ = 4: sigma = 2, limits 4 ± 6, the lower clamped to 0.
    chart = spc.c_chart([3, 5, 2, 6])
    assert (chart.limits[0].lower, chart.limits[0].upper) == (0.0, 10.0)
    assert spc.c_chart([3, 11], centre=4.0).beyond_limits == (1,)


def test_u_chart_has_limits_per_number_of_units() -> None:
    chart = spc.u_chart([4, 9], [2.0, 3.0])
    u_bar = 13 / 5
    assert chart.values == (2.0, 3.0)
    assert chart.limits[0].upper == pytest.approx(u_bar + 3 * math.sqrt(u_bar / 2))
    assert chart.limits[1].upper == pytest.approx(u_bar + 3 * math.sqrt(u_bar / 3))
    with pytest.raises(ValueError, match="2 counts but 1 subgroup sizes"):
        spc.u_chart([4, 9], [2.0])


# --- capability ------------------------------------------------------------------------------

# Six values in two subgroups of 3: mean 10.5, R̄ = 2, so sigma within = 2/d2(3) = 2/1.693;
# the sum of squared deviations is 5.5, so sigma overall = √(5.5/5).
CAP_DATA = [[9.0, 10.0, 11.0], [10.0, 11.0, 12.0]]
SIGMA_WITHIN = 2 / 1.693
SIGMA_OVERALL = math.sqrt(5.5 / 5)


def test_capability_two_sided() -> None:
    cap = spc.capability(CAP_DATA, lsl=7.0, usl=13.0)
    assert cap.mean == pytest.approx(10.5)
    assert cap.sigma_within == pytest.approx(SIGMA_WITHIN, rel=1e-3)
    assert cap.sigma_overall == pytest.approx(SIGMA_OVERALL)
    assert cap.cp == pytest.approx(6 / (6 * SIGMA_WITHIN), rel=1e-3)  # 0.847
    assert cap.cpk == pytest.approx(2.5 / (3 * SIGMA_WITHIN), rel=1e-3)  # nearer limit: USL
    assert cap.pp == pytest.approx(6 / (6 * SIGMA_OVERALL))  # 0.953
    assert cap.ppk == pytest.approx(2.5 / (3 * SIGMA_OVERALL))  # 0.795


def test_capability_one_sided() -> None:
    lower_only = spc.capability(CAP_DATA, lsl=7.0)
    assert lower_only.cp is None and lower_only.pp is None
    assert lower_only.cpk == pytest.approx(3.5 / (3 * SIGMA_WITHIN), rel=1e-3)  # CPL
    upper_only = spc.capability(CAP_DATA, usl=13.0)
    assert upper_only.ppk == pytest.approx(2.5 / (3 * SIGMA_OVERALL))  # PPU


def test_capability_of_individuals_uses_the_moving_range() -> None:
    cap = spc.capability_individuals([10.0, 12.0, 11.0, 15.0, 13.0], usl=20.0)
    assert cap.sigma_within == pytest.approx(2.25 / 1.128, rel=1e-3)  # MR̄ / d2(2)
    assert cap.cpk == pytest.approx((20 - 12.2) / (3 * 2.25 / 1.128), rel=1e-3)


def test_capability_rejects_bad_specifications() -> None:
    with pytest.raises(ValueError, match="no specification limit"):
        spc.capability(CAP_DATA)
    with pytest.raises(ValueError, match=r"lower specification 13\.0 is not below the upper 7\.0"):
        spc.capability(CAP_DATA, lsl=13.0, usl=7.0)
