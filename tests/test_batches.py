"""labsupport.batches: the simulation agrees with the theory it teaches."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from labsupport import batches


@pytest.mark.parametrize("p_bug, batch_size, expected", [
    (0.0, 10, 0.0), (1.0, 1, 1.0), (0.5, 1, 0.5), (0.5, 2, 0.75), (0.1, 10, 1 - 0.9 ** 10),
])
def test_batch_failure_probability(p_bug, batch_size, expected):
    assert batches.batch_failure_probability(p_bug, batch_size) == pytest.approx(expected)


@pytest.mark.parametrize("batch_size", [1, 5, 20])
def test_simulated_failed_releases_match_theory(batch_size):
    p_bug, n_changes = 0.05, 40_000
    result = batches.simulate_releases(n_changes, batch_size, p_bug, np.random.default_rng(7))
    theory = batches.batch_failure_probability(p_bug, batch_size)
    # A two-sided binomial test at 0.1%: the simulation is a sample from the theory.
    test = stats.binomtest(result.failed_releases, result.n_releases, theory)
    assert test.pvalue > 0.001
    assert batches.expected_failed_releases(n_changes, p_bug, batch_size) == pytest.approx(
        n_changes // batch_size * theory)


@pytest.mark.parametrize("batch_size", [1, 5, 20, 50])
def test_costs_per_failure_match_theory(batch_size):
    p_bug = 0.05
    result = batches.simulate_releases(200_000, batch_size, p_bug, np.random.default_rng(3))
    assert result.held_back_per_bug == pytest.approx(
        batches.expected_held_back_per_bug(p_bug, batch_size), rel=0.05, abs=0.01)
    assert result.held_back_per_failure == pytest.approx(
        batches.expected_held_back_per_failure(p_bug, batch_size), rel=0.03, abs=0.01)
    assert result.bisection_runs_per_failure == pytest.approx(
        batches.expected_bisection_runs(p_bug, batch_size), rel=0.03, abs=0.01)


def test_held_back_per_failure_by_hand():
    # k = 2, p = 0.5: failed batches are (bug, good), (good, bug), (bug, bug), equally likely,
    # holding back 1, 1 and 0 good changes: 2/3 on average.
    assert batches.expected_held_back_per_failure(0.5, 2) == pytest.approx(2 / 3)
    assert batches.expected_held_back_per_failure(0.3, 1) == 0.0
    assert math.isnan(batches.expected_held_back_per_failure(0.0, 5))


@pytest.mark.parametrize("batch_size, first_bug, runs", [
    (1, [0], [0]), (2, [0, 1], [1, 1]), (4, [0, 1, 2, 3], [2, 2, 2, 2]),
    (5, [0, 1, 2, 3, 4], [3, 3, 2, 2, 2]), (50, [0, 49], [6, 5]),
])
def test_bisection_finds_the_first_bug_in_about_log2_runs(batch_size, first_bug, runs):
    assert batches.bisection_runs(np.array(first_bug), batch_size).tolist() == runs
    expected = batches.expected_bisection_runs(0.05, batch_size)
    assert math.floor(math.log2(batch_size)) - 1e-9 <= expected \
        <= math.ceil(math.log2(batch_size)) + 1e-9


def test_same_work_in_bigger_batches_fails_fewer_times_but_each_failure_costs_more():
    table = batches.compare_batch_sizes([1, 10, 50], 0.05, 5000, np.random.default_rng(0))
    assert table["releases"].tolist() == [5000, 500, 100]
    assert table["failed_releases_theory"].is_monotonic_decreasing
    assert table["failed_releases"].is_monotonic_decreasing
    for column in ("held_back_per_failure", "bisection_runs", "held_back_total", "failure_rate"):
        assert table[column].is_monotonic_increasing, column
        assert table[f"{column}_theory"].is_monotonic_increasing, column
    assert table["suspects"].tolist() == [1, 10, 50]
    assert table.loc[1, "held_back_total"] == 0 and table.loc[1, "bisection_runs"] == 0
    assert table.loc[50, "held_back_total_theory"] == pytest.approx(5000 * (0.95 - 0.95 ** 50))


def test_simulation_is_reproducible_from_the_seed():
    first = batches.simulate_releases(1000, 10, 0.1, np.random.default_rng(11))
    second = batches.simulate_releases(1000, 10, 0.1, np.random.default_rng(11))
    assert first == second
    assert first.n_changes == 1000


def test_no_bugs_means_no_failures_and_undefined_costs_per_failure():
    result = batches.simulate_releases(100, 10, 0.0, np.random.default_rng(0))
    assert result.failed_releases == 0 and result.held_back_per_bug == 0.0
    assert math.isnan(result.held_back_per_failure)


@pytest.mark.parametrize("call", [
    lambda: batches.batch_failure_probability(1.5, 3),
    lambda: batches.batch_failure_probability(0.1, 0),
    lambda: batches.batch_failure_probability(0.1, 2.5),
    lambda: batches.simulate_releases(5, 10, 0.1, np.random.default_rng(0)),
    lambda: batches.expected_held_back_per_bug(-0.1, 3),
    lambda: batches.expected_failed_releases(10.5, 0.1, 2),
    lambda: batches.bisection_runs(np.array([0]), 0),
])
def test_bad_input_is_refused(call):
    with pytest.raises(ValueError):
        call()
