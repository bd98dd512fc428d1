"""labsupport.metrictest: how often ``accuracy >= threshold`` fails, against scipy's binomial."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from labsupport import metrictest

CASES = [(0.85, 200), (0.7, 10), (0.786, 200), (0.8355, 2000), (0.0, 5), (1.0, 7), (0.3, 3)]


@pytest.mark.parametrize("threshold, n_rows", CASES)
def test_passing_count_is_the_fewest_rows_the_test_accepts(threshold, n_rows):
    accepted = [k for k in range(n_rows + 1) if k / n_rows >= threshold]
    assert metrictest.passing_count(threshold, n_rows) == (accepted[0] if accepted else n_rows + 1)


def test_a_bar_that_is_a_whole_count_is_reached_exactly():
    assert math.ceil(0.14 * 50) == 8 and metrictest.passing_count(0.14, 50) == 7


@pytest.mark.parametrize("threshold, n_rows", CASES)
@pytest.mark.parametrize("accuracy", [0.5, 0.8, 0.859, 0.95])
def test_failure_probability_is_the_binomial_mass_below_the_bar(accuracy, threshold, n_rows):
    failing = [k for k in range(n_rows + 1) if Fraction(k, n_rows) < Fraction(str(threshold))]
    expected = float(np.sum(stats.binom.pmf(failing, n_rows, accuracy))) if failing else 0.0
    assert metrictest.failure_probability(accuracy, threshold, n_rows) == pytest.approx(expected,
                                                                                  abs=1e-12)


def test_failure_probability_takes_an_array_of_accuracies():
    accuracies = np.array([0.75, 0.8, 0.85])
    found = metrictest.failure_probability(accuracies, 0.8, 200)
    assert found.shape == (3,) and np.all(np.diff(found) < 0)
    assert found[1] == pytest.approx(stats.binom.cdf(159, 200, 0.8))


def test_margin_bar_sits_that_many_standard_errors_under():
    assert metrictest.standard_error(0.9, 100) == pytest.approx(0.03)
    assert metrictest.margin_bar(0.9, 100, 2) == pytest.approx(0.84)
    assert metrictest.margin_bar(0.9, 400, 2) == pytest.approx(0.87)


def test_degrade_makes_right_rows_wrong_and_nothing_else():
    rng = np.random.default_rng(0)
    correct = rng.uniform(size=10_000) < 0.86
    degraded = metrictest.degrade(correct, 0.05, rng)
    assert correct.sum() - degraded.sum() == 500
    assert not np.any(degraded & ~correct)
    np.testing.assert_array_equal(metrictest.degrade(correct, 0.0, rng), correct)


@pytest.mark.parametrize("drop, threshold, n_rows", [(0.0, 0.85, 200), (0.03, 0.786, 200),
                                               (0.05, 0.8355, 2000)])
def test_the_simulated_failure_rate_agrees_with_the_binomial(drop, threshold, n_rows):
    rng = np.random.default_rng(1)
    pool = metrictest.degrade(rng.uniform(size=20_000) < 0.86, drop, rng)
    run = metrictest.simulate(pool, threshold, n_rows, 2000, rng)
    expected = metrictest.failure_probability(pool.mean(), threshold, n_rows)
    assert abs(run.failure_rate - expected) <= 4 * np.sqrt(expected * (1 - expected) / 2000)
    assert run.p_value(expected) > 1e-3
    assert run.p_value(min(1.0, expected + 0.1)) < 1e-3  # the check can fail
    assert run.accuracies.shape == (2000,) and "of 2000 evaluation sets" in repr(run)


def test_a_simulation_counts_failures_below_the_bar_only():
    run = metrictest.Simulation(np.array([0.84, 0.85, 0.86]), 0.85, 100)
    assert (run.failures, run.failure_rate) == (1, pytest.approx(1 / 3))
    assert run.standard_error == pytest.approx(np.sqrt(2 / 9 / 3))


@pytest.mark.parametrize("call", [
    lambda: metrictest.passing_count(1.5, 10),
    lambda: metrictest.passing_count(0.5, 0),
    lambda: metrictest.passing_count(0.5, 2.5),
    lambda: metrictest.failure_probability([0.5, 1.2], 0.5, 10),
    lambda: metrictest.margin_bar(0.9, 100, -1),
    lambda: metrictest.degrade([True, False], 0.8, np.random.default_rng(0)),
    lambda: metrictest.degrade([[True]], 0.0, np.random.default_rng(0)),
    lambda: metrictest.simulate([0.5, 1.0], 0.5, 10, 10, np.random.default_rng(0)),
])
def test_bad_input_is_refused(call):
    with pytest.raises(ValueError):
        call()


def test_no_failures_still_have_an_interval_above_zero():
    run = metrictest.Simulation(np.ones(200), 0.5, 100)
    low, high = run.interval()
    assert run.failures == 0 and run.standard_error == 0.0
    assert low == pytest.approx(0.0, abs=1e-12) and 0.01 < high < 3 / 200 * 1.5
    assert "0 of 200" in repr(run) and "interval 0.000 to 0.019" in repr(run)


def test_zero_failures_wilson_upper_end_is_not_the_rule_of_three():
    low, high = metrictest.Simulation(np.ones(200), 0.5, 200).interval()
    assert low == 0 and high == pytest.approx(1.96**2 / (200 + 1.96**2), rel=1e-3)  # 0.0188
    exact_one_sided = 1 - 0.05 ** (1 / 200)  # what the rule of three, 3 / n, approximates
    assert exact_one_sided == pytest.approx(3 / 200, abs=2e-4)
    assert exact_one_sided < high
