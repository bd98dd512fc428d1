"""labsupport.abtest: every number against scipy/statsmodels, every simulation against theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats
from statsmodels.stats import power as sm_power
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (confint_proportions_2indep, proportion_effectsize,
                                          proportions_ztest)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from labsupport import abtest, assignment

TOL = {"rel": 1e-9, "abs": 1e-12}


def _upper(rate: float, n: int, sigmas: float = 4.0) -> float:
    """Rate plus ``sigmas`` binomial standard errors: the tolerance of a simulation."""
    return rate + sigmas * math.sqrt(rate * (1 - rate) / n)


def _lower(rate: float, n: int, sigmas: float = 4.0) -> float:
    return rate - sigmas * math.sqrt(rate * (1 - rate) / n)


# --- assignment is the one hash -------------------------------------------------------------------

def test_assign_is_the_assignment_modules_function():
    assert abtest.assign is assignment.assign


# --- SRM ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("counts, weights", [
    ([5000, 5200], [0.5, 0.5]), ([9000, 1100], [0.9, 0.1]), ([330, 340, 290], [0.3, 0.4, 0.3]),
])
def test_srm_equals_scipy_chisquare(counts, weights):
    result = abtest.srm_check(counts, weights)
    expected = stats.chisquare(counts, np.sum(counts) * np.asarray(weights))
    assert result.statistic == pytest.approx(expected.statistic, **TOL)
    assert result.p_value == pytest.approx(expected.pvalue, **TOL)
    assert result.mismatch == (expected.pvalue < 0.001)


def test_srm_flags_only_below_one_in_a_thousand():
    # 5000 vs 5200 has p about 0.048: "significant" at 0.05, not an SRM at 0.001.
    assert not abtest.srm_check([5000, 5200], [0.5, 0.5]).mismatch
    assert abtest.srm_check([5000, 5400], [0.5, 0.5]).mismatch
    assert abtest.srm_check([5000, 5200], [0.5, 0.5], alpha=0.05).mismatch


def test_srm_accepts_mappings_in_any_order():
    by_name = abtest.srm_check({"treatment": 480, "control": 520}, {"control": 0.5,
                                                                    "treatment": 0.5})
    assert by_name.counts == (520, 480)
    assert by_name.p_value == pytest.approx(abtest.srm_check([520, 480], [0.5, 0.5]).p_value)


def test_srm_false_alarm_rate_on_healthy_splits_is_about_its_alpha():
    rng = np.random.default_rng(11)
    n_runs = 4000
    treatment = rng.binomial(10_000, 0.5, n_runs)
    p_values = np.array([abtest.srm_check([10_000 - t, t], [0.5, 0.5], alpha=0.05).p_value
                         for t in treatment])
    assert _lower(0.05, n_runs) < np.mean(p_values < 0.05) < _upper(0.05, n_runs)


@pytest.mark.parametrize("counts, weights, error", [
    ([10, -1], [0.5, 0.5], ValueError), ([10, 10], [0.6, 0.6], ValueError),
    ([10], [1.0], ValueError), ([10, 10, 10], [0.5, 0.5], ValueError),
    ([0, 0], [0.5, 0.5], ValueError), ([1.5, 10], [0.5, 0.5], ValueError),
    ({"a": 1, "b": 2}, [0.5, 0.5], TypeError), ({"a": 1, "b": 2}, {"a": 0.5, "c": 0.5}, ValueError),
])
def test_srm_rejects_bad_input(counts, weights, error):
    with pytest.raises(error):
        abtest.srm_check(counts, weights)


# --- two proportions ------------------------------------------------------------------------------

CASES = [(1000, 10_000, 1080, 10_000), (48, 1000, 71, 1200), (500, 5000, 430, 5100),
         (3, 40, 9, 35)]


@pytest.mark.parametrize("s_c, n_c, s_t, n_t", CASES)
def test_two_proportions_equals_statsmodels(s_c, n_c, s_t, n_t):
    result = abtest.two_proportions(s_c, n_c, s_t, n_t)
    z, p_value = proportions_ztest([s_t, s_c], [n_t, n_c])
    low, high = confint_proportions_2indep(s_t, n_t, s_c, n_c, method="wald", compare="diff")
    assert result.z == pytest.approx(z, **TOL)
    assert result.p_value == pytest.approx(p_value, **TOL)
    assert result.ci == (pytest.approx(low, **TOL), pytest.approx(high, **TOL))
    assert result.cohens_h == pytest.approx(proportion_effectsize(s_t / n_t, s_c / n_c), **TOL)
    assert result.difference == pytest.approx(s_t / n_t - s_c / n_c, **TOL)


def test_relative_lift_uses_the_delta_method():
    result = abtest.two_proportions(500, 5000, 560, 5000, alpha=0.1)
    p_c, p_t = 0.1, 0.112
    variance = p_t * (1 - p_t) / (5000 * p_c**2) + p_t**2 * p_c * (1 - p_c) / (5000 * p_c**4)
    half = stats.norm.ppf(0.95) * math.sqrt(variance)
    assert result.lift == pytest.approx(0.12, **TOL)
    assert result.lift_ci == (pytest.approx(0.12 - half, **TOL), pytest.approx(0.12 + half, **TOL))


def test_lift_interval_covers_the_true_lift_about_one_minus_alpha_of_the_time():
    rng = np.random.default_rng(5)
    n_runs, n = 3000, 4000
    s_c, s_t = rng.binomial(n, 0.1, n_runs), rng.binomial(n, 0.12, n_runs)
    covered = [(r.lift_ci[0] <= 0.2 <= r.lift_ci[1])
               for r in (abtest.two_proportions(c, n, t, n) for c, t in zip(s_c, s_t))]
    assert _lower(0.95, n_runs) < np.mean(covered) < _upper(0.95, n_runs)


def test_two_proportions_a_a_rejects_about_alpha():
    rng = np.random.default_rng(6)
    n_runs, n = 4000, 3000
    s_c, s_t = rng.binomial(n, 0.2, n_runs), rng.binomial(n, 0.2, n_runs)
    rejected = np.mean([abtest.two_proportions(c, n, t, n).significant
                        for c, t in zip(s_c, s_t)])
    assert _lower(0.05, n_runs) < rejected < _upper(0.05, n_runs)


def test_groups_that_all_convert_give_no_evidence():
    result = abtest.two_proportions(10, 10, 20, 20)
    assert result.p_value == 1.0 and result.z == 0.0


@pytest.mark.parametrize("arguments, error", [
    ((-1, 10, 5, 10), ValueError), ((11, 10, 5, 10), ValueError), ((0, 0, 5, 10), ValueError),
    ((1, 10, 5, 0), ValueError), ((1.5, 10, 5, 10), ValueError), (("1", 10, 5, 10), TypeError),
    ((1, 10, 5, 10, 0.0), ValueError), ((1, 10, 5, 10, 1.0), ValueError),
    ((1, 10, 5, 10, "0.05"), TypeError),
])
def test_two_proportions_rejects_bad_input(arguments, error):
    with pytest.raises(error):
        abtest.two_proportions(*arguments)


def test_results_are_frozen_and_readable():
    result = abtest.two_proportions(100, 1000, 120, 1000)
    with pytest.raises(AttributeError):
        result.p_value = 0.0
    assert repr(result).startswith("ProportionsTest(rate_control=0.1, rate_treatment=0.12")


# --- Welch ----------------------------------------------------------------------------------------

def test_welch_equals_scipy_and_statsmodels():
    rng = np.random.default_rng(1)
    control, treatment = rng.normal(10, 2, 300), rng.normal(10.4, 5, 80)
    result = abtest.welch(control, treatment, alpha=0.1)
    expected = stats.ttest_ind(treatment, control, equal_var=False)
    low, high = CompareMeans(DescrStatsW(treatment), DescrStatsW(control)).tconfint_diff(
        alpha=0.1, usevar="unequal")
    assert result.t == pytest.approx(expected.statistic, **TOL)
    assert result.p_value == pytest.approx(expected.pvalue, **TOL)
    assert result.df == pytest.approx(expected.df, **TOL)
    assert result.ci == (pytest.approx(low, **TOL), pytest.approx(high, **TOL))
    pooled = math.sqrt((299 * control.var(ddof=1) + 79 * treatment.var(ddof=1)) / 378)
    assert result.cohens_d == pytest.approx((treatment.mean() - control.mean()) / pooled, **TOL)


def test_welch_from_stats_equals_scipy():
    result = abtest.welch_from_stats(5.0, 1.5, 40, 5.6, 2.5, 25)
    expected = stats.ttest_ind_from_stats(5.6, 2.5, 25, 5.0, 1.5, 40, equal_var=False)
    assert result.t == pytest.approx(expected.statistic, **TOL)
    assert result.p_value == pytest.approx(expected.pvalue, **TOL)


def test_welch_matches_growthbook_gbstats_published_values():
    # growthbook/growthbook packages/stats/tests/frequentist/test_tests.py
    # (commit 06b4ae4f2cce53f767b0a2b13c4d59790ea46f86), TwoSidedTTest, rounded to 5 decimals:
    # control 0.41 (sd 3.9, n 3407), treatment 0.7 (sd 6.2, n 3461) -> difference 0.29,
    # CI [0.04538, 0.53462], p-value 0.02016.
    result = abtest.welch_from_stats(0.41, 3.9, 3407, 0.7, 6.2, 3461)
    assert round(result.difference, 5) == 0.29
    assert (round(result.ci[0], 5), round(result.ci[1], 5)) == (0.04538, 0.53462)
    assert round(result.p_value, 5) == 0.02016


def test_welch_holds_alpha_where_students_t_does_not():
    # Small group with the large variance: Student's pooled variance is too small for it.
    rng = np.random.default_rng(2)
    n_runs = 3000
    control = rng.normal(0, 1, (n_runs, 200))
    treatment = rng.normal(0, 4, (n_runs, 20))
    welch_p = np.array([abtest.welch(c, t).p_value for c, t in zip(control, treatment)])
    student_p = stats.ttest_ind(treatment, control, axis=1).pvalue
    assert _lower(0.05, n_runs) < np.mean(welch_p < 0.05) < _upper(0.05, n_runs)
    assert np.mean(student_p < 0.05) > 0.2


@pytest.mark.parametrize("arguments", [
    ([1.0], [1.0, 2.0]), ([1.0, np.nan], [1.0, 2.0]), ([[1.0, 2.0]], [1.0, 2.0]),
])
def test_welch_rejects_bad_samples(arguments):
    with pytest.raises(ValueError):
        abtest.welch(*arguments)


def test_welch_from_stats_rejects_bad_input():
    with pytest.raises(ValueError, match="zero variance"):
        abtest.welch_from_stats(1, 0, 10, 2, 0, 10)
    with pytest.raises(ValueError, match="at least 2"):
        abtest.welch_from_stats(1, 1, 1, 2, 1, 10)
    with pytest.raises(ValueError, match="between 0 and 1"):
        abtest.welch_from_stats(1, 1, 10, 2, 1, 10, alpha=1.5)


# --- sample size and power ------------------------------------------------------------------------

@pytest.mark.parametrize("baseline, effect, alpha, power, ratio", [
    (0.1, 0.01, 0.05, 0.8, 1.0), (0.03, 0.003, 0.05, 0.9, 1.0), (0.5, -0.02, 0.01, 0.8, 3.0),
])
def test_sample_size_for_proportions_equals_statsmodels(baseline, effect, alpha, power, ratio):
    result = abtest.sample_size(effect, baseline_rate=baseline, alpha=alpha, power=power,
                                ratio=ratio)
    h = proportion_effectsize(baseline + effect, baseline)
    n1 = sm_power.NormalIndPower().solve_power(abs(h), alpha=alpha, power=power, ratio=ratio)
    assert result.effect_size == pytest.approx(h, **TOL)
    assert result.n_control == math.ceil(n1)
    assert result.n_treatment == math.ceil(n1 * ratio)
    # The closed form without the far tail: agrees to well under one user.
    approx = (stats.norm.isf(alpha / 2) + stats.norm.ppf(power)) ** 2 / h**2 * (1 + 1 / ratio)
    assert abs(n1 - approx) < 1


def test_relative_effect_is_a_share_of_the_baseline():
    relative = abtest.sample_size(0.1, baseline_rate=0.05, relative=True)
    absolute = abtest.sample_size(0.005, baseline_rate=0.05)
    assert relative.n_control == absolute.n_control
    assert relative.effect == pytest.approx(0.005, **TOL)


def test_sample_size_for_means_equals_statsmodels():
    result = abtest.sample_size(2.0, std=10.0, power=0.9)
    n1 = sm_power.TTestIndPower().solve_power(0.2, alpha=0.05, power=0.9)
    assert result.n_control == math.ceil(n1) and result.metric == "mean"


def test_minimum_detectable_effect_inverts_sample_size():
    mde = abtest.minimum_detectable_effect(14_000, baseline_rate=0.1)
    h = sm_power.NormalIndPower().solve_power(None, nobs1=14_000, alpha=0.05, power=0.8)
    assert mde.effect_size == pytest.approx(h, **TOL)
    assert proportion_effectsize(0.1 + mde.effect, 0.1) == pytest.approx(h, **TOL)
    # statsmodels' root finder stops early: the effect it returns has power 0.8 to about 1e-4.
    assert abtest.achieved_power(mde.effect, 14_000, baseline_rate=0.1) == \
        pytest.approx(0.8, abs=1e-4)
    means = abtest.minimum_detectable_effect(500, std=3.0, power=0.9)
    d = sm_power.TTestIndPower().solve_power(None, nobs1=500, alpha=0.05, power=0.9)
    assert means.effect == pytest.approx(3.0 * d, **TOL)


def test_power_is_what_a_simulation_finds():
    rng = np.random.default_rng(3)
    n_runs, n = 4000, 2000
    theory = abtest.achieved_power(0.02, n, baseline_rate=0.1)
    s_c, s_t = rng.binomial(n, 0.1, n_runs), rng.binomial(n, 0.12, n_runs)
    z = abtest.pooled_z(s_c, n, s_t, n)
    simulated = np.mean(np.abs(z) >= stats.norm.isf(0.025))
    assert _lower(theory, n_runs) < simulated < _upper(theory, n_runs)


@pytest.mark.parametrize("keywords, error", [
    ({"effect": 0.01}, TypeError),
    ({"effect": 0.01, "baseline_rate": 0.1, "std": 1.0}, TypeError),
    ({"effect": 0.0, "baseline_rate": 0.1}, ValueError),
    ({"effect": 0.95, "baseline_rate": 0.1}, ValueError),
    ({"effect": 0.01, "baseline_rate": 0.1, "power": 1.0}, ValueError),
    ({"effect": 0.01, "baseline_rate": 0.1, "ratio": 0.0}, ValueError),
    ({"effect": 0.1, "std": 1.0, "relative": True}, ValueError),
])
def test_sample_size_rejects_bad_designs(keywords, error):
    with pytest.raises(error):
        abtest.sample_size(**keywords)


@pytest.mark.parametrize("counts, match", [
    ((5, 0, 5, 10), "n_control must be at least 1"),
    ((-1, 10, 5, 10), "successes_control must lie between 0 and n_control"),
    ((5, 10, 11, 10), "successes_treatment must lie between 0 and n_treatment"),
    ((5, 10, 5, np.inf), "n_treatment must hold finite whole numbers"),
    ((5.5, 10, 5, 10), "successes_control must hold finite whole numbers"),
    ((np.array([5, np.nan]), 10, 5, 10), "successes_control must hold finite whole numbers"),
])
def test_pooled_z_rejects_counts_that_cannot_be(counts, match):
    """Zero visitors, negative conversions, more conversions than visitors, infinities, fractions:
    a clear error, not a nan or a number."""
    with pytest.raises(ValueError, match=match):
        abtest.pooled_z(*counts)


def test_pooled_z_is_still_nan_where_the_pooled_rate_has_no_variance():
    z = abtest.pooled_z(np.array([0, 3]), 10, np.array([0, 5]), 10)
    assert np.isnan(z[0]) and z[1] == pytest.approx(proportions_ztest([5, 3], [10, 10])[0])


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_counts_must_be_finite(value):
    with pytest.raises(ValueError, match="finite whole number"):
        abtest.check_count(value, "n")


# --- peeking and sequential testing ---------------------------------------------------------------

def test_obrien_fleming_bounds_match_published_values():
    """Lan-DeMets O'Brien-Fleming-type spending, 5 equally spaced looks, two-sided alpha 0.05.

    Each side spends alpha/2 by 2 - 2 Phi(z_{alpha/4} / sqrt(t)) (ldbounds' iuse=1 with
    sides=2, gsDesign's sfLDOF with its one-sided alpha 0.025). The boundaries are published to
    three decimals, 4.877, 3.357, 2.680, 2.290, 2.031: the example of Reboussin, DeMets, Kim and
    Lan (2000, Controlled Clinical Trials 21:190-207) that ldbounds' ``ldBounds(5)`` reproduces,
    the same as RTSA's ``boundaries(timing = (1:5)/5, alpha = 0.05, side = 2)``. Published to
    three decimals, they pin ours to half a unit of the third, with no relative tolerance.
    """
    bounds = abtest.obrien_fleming_bounds(5)
    np.testing.assert_allclose(bounds.z, [4.877, 3.357, 2.680, 2.290, 2.031], rtol=0, atol=5e-4)
    assert bounds.spent[-1] == pytest.approx(0.05, **TOL)
    assert abtest.obrien_fleming_bounds(1).z[0] == pytest.approx(stats.norm.isf(0.025), **TOL)


def test_obrien_fleming_second_bound_beyond_the_published_digits():
    """The second boundary by adaptive quadrature over the first look: 3.35701, not 3.3569.

    P(|Z_1| < c_1, |Z_2| >= c_2) with corr(Z_1, Z_2) = sqrt(t_1 / t_2) must equal the alpha
    spent between the looks; solved here with scipy's quad to 1e-12, independently of the
    grid recursion of ``obrien_fleming_bounds``. (An earlier version of this test read the
    published table as 3.3569 to four decimals; the exact value rounds to 3.3570.)
    """
    bounds = abtest.obrien_fleming_bounds(5)
    c_1, rho = bounds.z[0], math.sqrt(0.2 / 0.4)
    increment = bounds.spent[1] - bounds.spent[0]

    def crossing(c_2):
        def density(z_1):
            mean, sd = rho * z_1, math.sqrt(1 - rho**2)
            return stats.norm.pdf(z_1) * (stats.norm.sf((c_2 - mean) / sd)
                                          + stats.norm.cdf((-c_2 - mean) / sd))
        return integrate.quad(density, -c_1, c_1, epsabs=1e-14, epsrel=1e-12)[0] - increment

    exact = optimize.brentq(crossing, 2.0, 6.0, xtol=1e-12)
    assert abs(bounds.z[1] - exact) < 1e-6
    assert round(exact, 4) == 3.357


def test_obrien_fleming_spending_is_the_one_the_docstring_states():
    """4 - 4 Phi(z_{alpha/4} / sqrt(t)): what the code spends, the docstring and lesson say."""
    t = np.array([0.2, 0.5, 1.0])
    bounds = abtest.obrien_fleming_bounds(3, information=t)
    stated = 4 - 4 * stats.norm.cdf(stats.norm.isf(0.05 / 4) / np.sqrt(t))
    assert np.allclose(bounds.spent, stated, atol=1e-6)
    assert "4 - 4 Phi(z_{alpha/4} / sqrt(t))" in abtest.obrien_fleming_bounds.__doc__


@pytest.mark.parametrize("information", [[0.2, math.nan, 1.0], [0.2, 0.5, math.nan],
                                         [math.nan, 0.5, 1.0]])
def test_obrien_fleming_bounds_refuse_nan_information(information):
    with pytest.raises(ValueError, match="increasing fractions"):
        abtest.obrien_fleming_bounds(3, information=information)


def test_obrien_fleming_bounds_spend_exactly_alpha_under_the_null():
    # P(all |Z_k| < c_k) = 1 - alpha for the Brownian-motion covariance min(t_i, t_j)/sqrt(t_i t_j)
    bounds = abtest.obrien_fleming_bounds(3, information=[0.3, 0.7, 1.0])
    t = np.asarray(bounds.information)
    covariance = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    c = np.asarray(bounds.z)
    normal = stats.multivariate_normal(np.zeros(3), covariance, abseps=1e-8, releps=1e-8)
    inside = normal.cdf(c, lower_limit=-c)
    assert inside == pytest.approx(0.95, abs=2e-5)


def test_looks_z_equals_statsmodels_at_every_look():
    data = abtest.simulate_looks(np.random.default_rng(4), n_experiments=20, looks=4,
                                 n_per_look=100, rate_control=0.3, rate_treatment=0.3)
    z = data.z()
    for i in range(20):
        for k in range(4):
            n = data.n_per_group[k]
            expected = proportions_ztest([data.successes_treatment[i, k],
                                          data.successes_control[i, k]], [n, n])[0]
            assert z[i, k] == pytest.approx(expected, **TOL)


@pytest.mark.parametrize("looks, armitage", [(1, 0.05), (5, 0.142), (10, 0.193)])
def test_naive_peeking_false_positive_rate_matches_armitage(looks, armitage):
    result = abtest.peeking_simulation(np.random.default_rng(looks), looks=looks,
                                       n_experiments=20_000, n_per_look=400)
    assert abs(result.rejection_rate - armitage) < 4 * result.standard_error
    assert np.all(np.diff(result.rejected_by_look) >= 0)


def test_obrien_fleming_holds_alpha_under_peeking():
    result = abtest.peeking_simulation(np.random.default_rng(8), looks=10, n_experiments=20_000,
                                       n_per_look=400, method="obrien_fleming")
    assert abs(result.rejection_rate - 0.05) < 4 * result.standard_error


def test_obrien_fleming_costs_little_power():
    rng = np.random.default_rng(9)
    naive_once = abtest.peeking_simulation(rng, looks=1, n_experiments=10_000, n_per_look=4000,
                                           rate_treatment=0.115)
    sequential = abtest.peeking_simulation(rng, looks=10, n_experiments=10_000, n_per_look=400,
                                           rate_treatment=0.115, method="obrien_fleming")
    assert sequential.rejection_rate > naive_once.rejection_rate - 0.05


def test_stopping_when_bayes_reaches_95_percent_inflates_errors():
    rng = np.random.default_rng(10)
    once = abtest.peeking_simulation(rng, looks=1, n_experiments=4000, method="bayes")
    often = abtest.peeking_simulation(rng, looks=10, n_experiments=4000, method="bayes")
    # One look: P(beats) >= 0.95 is close to a one-sided 5 % test.
    assert abs(once.rejection_rate - 0.05) < 4 * once.standard_error
    assert often.rejection_rate > 0.05 + 8 * often.standard_error


def test_peeking_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown method"):
        abtest.peeking_simulation(np.random.default_rng(0), looks=2, method="pocock")


# --- Bayesian summary -----------------------------------------------------------------------------

def _betaln(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _evan_miller(a_c, b_c, a_t, b_t):
    """Closed form of P(p_t > p_c) for integer a_t (Evan Miller's formula)."""
    return math.fsum(math.exp(_betaln(a_c + i, b_c + b_t) - math.log(b_t + i)
                              - _betaln(1 + i, b_t) - _betaln(a_c, b_c))
                     for i in range(int(a_t)))


@pytest.mark.parametrize("s_c, n_c, s_t, n_t", [(100, 1000, 120, 1000), (0, 50, 2, 50),
                                                 (480, 5000, 520, 5000), (30, 40, 25, 45)])
def test_probability_beats_control_equals_closed_form(s_c, n_c, s_t, n_t):
    result = abtest.probability_treatment_beats_control(s_c, n_c, s_t, n_t)
    assert result.posterior_treatment == (1 + s_t, 1 + n_t - s_t)
    expected = _evan_miller(1 + s_c, 1 + n_c - s_c, 1 + s_t, 1 + n_t - s_t)
    assert result.probability == pytest.approx(expected, rel=1e-9, abs=1e-11)


def test_probability_beats_control_with_a_fractional_prior_equals_quad():
    result = abtest.probability_treatment_beats_control(3, 10, 5, 12, prior=(0.5, 0.5))
    a_c, b_c = result.posterior_control
    a_t, b_t = result.posterior_treatment
    expected = integrate.quad(lambda x: stats.beta.pdf(x, a_t, b_t) * stats.beta.cdf(x, a_c, b_c),
                              0, 1, epsabs=1e-12)[0]
    assert result.probability == pytest.approx(expected, abs=1e-5)


def test_equal_data_gives_one_half():
    assert abtest.probability_treatment_beats_control(40, 400, 40, 400).probability == \
        pytest.approx(0.5, abs=1e-12)


# --- several metrics ------------------------------------------------------------------------------

@pytest.mark.parametrize("correction", ["holm", "fdr_bh"])
def test_adjust_metrics_equals_statsmodels(correction):
    p_values = {"conversion": 0.01, "revenue": 0.04, "clicks": 0.03, "retention": 0.2}
    verdicts = abtest.adjust_metrics(p_values, correction)
    reject, adjusted, _, _ = multipletests(list(p_values.values()), 0.05, method=correction)
    assert [v.p_adjusted for v in verdicts] == pytest.approx(list(adjusted), **TOL)
    assert [v.significant for v in verdicts] == list(reject)
    assert [v.metric for v in verdicts] == list(p_values)


def test_adjust_metrics_rejects_a_list():
    with pytest.raises(TypeError):
        abtest.adjust_metrics([0.1, 0.2])
