"""labsupport.batches: the simulation agrees with the theory it teaches."""

from __future__ import annotations

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
def test_simulated_failure_rate_matches_theory(batch_size):
    p_bug, n_changes = 0.05, 40_000
    result = batches.simulate_releases(n_changes, batch_size, p_bug, np.random.default_rng(7))
    theory = batches.batch_failure_probability(p_bug, batch_size)
    # A two-sided binomial test at 0.1%: the simulation is a sample from the theory.
    test = stats.binomtest(result.failed_releases, result.n_releases, theory)
    assert test.pvalue > 0.001


@pytest.mark.parametrize("batch_size", [1, 5, 20])
def test_held_back_changes_match_theory(batch_size):
    p_bug = 0.05
    result = batches.simulate_releases(200_000, batch_size, p_bug, np.random.default_rng(3))
    assert result.held_back_per_bug == pytest.approx(
        batches.expected_held_back_per_bug(p_bug, batch_size), rel=0.05, abs=0.01)


def test_bigger_batches_fail_more_often_and_hold_back_more():
    table = batches.compare_batch_sizes([1, 10, 50], 0.05, 5000, np.random.default_rng(0))
    assert table["theory"].is_monotonic_increasing
    assert table["failure_rate"].is_monotonic_increasing
    assert table["held_back_per_bug"].is_monotonic_increasing
    assert table.loc[1, "held_back_per_bug"] == 0.0


def test_simulation_is_reproducible_from_the_seed():
    first = batches.simulate_releases(1000, 10, 0.1, np.random.default_rng(11))
    second = batches.simulate_releases(1000, 10, 0.1, np.random.default_rng(11))
    assert first == second


@pytest.mark.parametrize("call", [
    lambda: batches.batch_failure_probability(1.5, 3),
    lambda: batches.batch_failure_probability(0.1, 0),
    lambda: batches.batch_failure_probability(0.1, 2.5),
    lambda: batches.simulate_releases(5, 10, 0.1, np.random.default_rng(0)),
    lambda: batches.expected_held_back_per_bug(-0.1, 3),
])
def test_bad_input_is_refused(call):
    with pytest.raises(ValueError):
        call()
