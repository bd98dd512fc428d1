"""labsupport.widgets.abtest: moving the sliders changes what the student sees."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from labsupport import experiments
from labsupport.widgets import abtest as abtest_widgets


def test_explorer_matches_the_static_computation():
    explorer = abtest_widgets.ABTestExplorer(seed=3, n_users=10_000, effect=0.01)
    static = experiments.run_experiment(np.random.default_rng(3), n_users=10_000,
                                        rate_control=0.1, effect=0.01)
    assert explorer.run == static
    assert explorer.run.p_values == static.p_values
    assert explorer.output.outputs, "the output area was not drawn"


def test_moving_the_split_triggers_the_srm_verdict_and_blocks_the_decision():
    explorer = abtest_widgets.ABTestExplorer(seed=1, n_users=40_000, effect=0.0)
    assert not explorer.run.srm.mismatch
    explorer.split.value = 0.52
    assert explorer.run.srm.mismatch
    assert explorer.run.decision.startswith("do not read")
    assert "MISMATCH" in explorer.summary()


def test_more_users_give_more_power_and_a_longer_path():
    explorer = abtest_widgets.ABTestExplorer(seed=2, n_users=5_000, effect=0.01)
    small_power, small_path = explorer.run.power, explorer.run.users_seen
    explorer.n_users.value = 100_000
    assert explorer.run.power > small_power + 0.5
    assert explorer.run.users_seen[-1] == 100_000 > small_path[-1]


def test_a_large_true_effect_is_declared_better():
    explorer = abtest_widgets.ABTestExplorer(seed=4, n_users=60_000, effect=0.0)
    explorer.effect.value = 0.02
    assert explorer.run.decision.startswith("treatment better")
    explorer.baseline.value = 0.3
    assert explorer.run.test.rate_control == pytest.approx(0.3, abs=0.01)


def test_an_impossible_rate_shows_an_error_instead_of_failing():
    explorer = abtest_widgets.ABTestExplorer(seed=5, n_users=2_000, baseline=0.01, effect=0.0)
    explorer.effect.value = -0.03
    assert explorer.output.outputs[0]["name"] == "stderr"
    assert "between 0 and 1" in explorer.output.outputs[0]["text"]


def test_a_move_redraws_the_same_figure_as_a_fresh_explorer():
    explorer = abtest_widgets.ABTestExplorer(seed=6, n_users=20_000, effect=0.01)
    figure, path = explorer.figure, explorer.ax.get_lines()[0]
    explorer.n_users.value = 60_000
    assert explorer.figure is figure and explorer.ax.get_lines()[0] is path
    fresh = abtest_widgets.ABTestExplorer(seed=6, n_users=60_000, effect=0.01)
    assert explorer.figure_png() == fresh.figure_png()


def test_the_seed_control_draws_other_users():
    explorer = abtest_widgets.ABTestExplorer(seed=7, n_users=10_000, effect=0.0)
    first = explorer.run
    explorer.seed.value = 8
    assert explorer.run != first
    assert explorer.run == experiments.run_experiment(np.random.default_rng(8), n_users=10_000,
                                                      rate_control=0.1, effect=0.0)


def test_the_aa_button_shows_the_static_computation():
    explorer = abtest_widgets.ABTestExplorer(seed=9, n_users=20_000, n_runs=500)
    assert explorer.aa is None and not explorer.aa_output.outputs
    explorer.aa_button.click()
    static = experiments.aa_runs(np.random.default_rng(9), n_runs=500, n_users=20_000,
                                 rate_control=0.1)
    assert explorer.aa == static
    assert "A/A runs" in explorer.aa_output.outputs[0]["text"]
    explorer.n_runs.value = 1000
    assert explorer.aa.n_runs == 1000
    explorer.n_users.value = 40_000
    assert explorer.aa.n_users == 40_000, "a shown A/A result follows the controls"


def test_an_aa_share_lies_in_the_exact_binomial_range_for_alpha_and_peeking_exceeds_it():
    explorer = abtest_widgets.ABTestExplorer(seed=11, n_users=20_000, n_runs=2000)
    explorer.aa_button.click()
    low, high = stats.binom.interval(0.999, 2000, 0.05)  # a right test fails this 1 seed in 1000
    assert explorer.aa.expected_range() == (low, high)
    assert low <= explorer.aa.rejected_at_end <= high
    assert explorer.aa.rejected_when_peeking > high
    assert f"{low:.0f} to {high:.0f}" in explorer.aa_output.outputs[0]["text"]


def test_aa_runs_on_a_broken_split_say_that_none_may_be_read():
    explorer = abtest_widgets.ABTestExplorer(seed=12, n_users=100_000, split=0.52, n_runs=200)
    explorer.aa_button.click()
    assert explorer.aa.srm_mismatch
    assert "none of them may be read" in explorer.aa_output.outputs[0]["text"]
