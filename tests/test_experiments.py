"""labsupport.experiments: the simulated experiments behave as lesson 07 says they do."""

from __future__ import annotations

import numpy as np
import pytest

from labsupport import abtest, assignment, experiments


def test_simulated_log_splits_by_the_salted_hash():
    log = experiments.simulate_log(np.random.default_rng(0), 5000, rate_control=0.1,
                                   rate_treatment=0.1, salt="checkout")
    expected = assignment.assign(np.arange(5000), "checkout", {"control": 0.5, "treatment": 0.5})
    assert list(log["variant"]) == list(expected)
    assert not abtest.srm_check(log["variant"].value_counts().to_dict(),
                                {"control": 0.5, "treatment": 0.5}).mismatch


def test_losing_treatment_users_makes_an_srm_and_a_fake_win():
    log = experiments.simulate_log(np.random.default_rng(1), 40_000, rate_control=0.1,
                                   rate_treatment=0.1, lost_treatment_share=0.05)
    counts = log["variant"].value_counts().to_dict()
    assert abtest.srm_check(counts, {"control": 0.5, "treatment": 0.5}).mismatch
    rates = log.groupby("variant")["converted"].mean()
    assert rates["treatment"] > rates["control"]


def test_run_experiment_flags_a_broken_split_and_refuses_to_decide():
    run = experiments.run_experiment(np.random.default_rng(2), n_users=20_000, rate_control=0.1,
                                     effect=0.0, treatment_share=0.53)
    assert run.srm.mismatch and run.decision.startswith("do not read")
    healthy = experiments.run_experiment(np.random.default_rng(2), n_users=20_000,
                                         rate_control=0.1, effect=0.02)
    assert not healthy.srm.mismatch
    assert healthy.power == pytest.approx(abtest.achieved_power(0.02, 10_000, baseline_rate=0.1))
    assert healthy.users_seen[-1] == 20_000
    assert healthy.p_values[-1] == pytest.approx(healthy.test.p_value, rel=1e-9)


def test_winners_curse_is_worst_when_under_powered():
    rng = np.random.default_rng(3)
    small = experiments.winners_curse(rng, rate_control=0.1, effect=0.01, n_per_group=1000)
    large = experiments.winners_curse(rng, rate_control=0.1, effect=0.01, n_per_group=30_000)
    assert small.power < 0.3 < 0.9 < large.power
    assert small.exaggeration > 2.0
    assert 1.0 < large.exaggeration < 1.1


def test_novelty_lift_decays_to_the_long_run():
    lift = experiments.novelty_lift([0, 7, 14, 1000], initial_lift=0.3, long_run_lift=0.02,
                               half_life_days=7)
    assert lift == pytest.approx([0.3, 0.16, 0.09, 0.02], abs=1e-9)
    frame = experiments.simulate_novelty(np.random.default_rng(0), days=28, users_per_day=1000,
                                         rate_control=0.1, initial_lift=0.3, long_run_lift=0.02,
                                    half_life_days=7)
    assert list(frame["n_control"] + frame["n_treatment"]) == [1000] * 28


def test_aa_runs_reject_as_often_as_repeated_run_experiment():
    """The bulk A/A runs stand for a loop over run_experiment: the same looks, the same test."""
    aa = experiments.aa_runs(np.random.default_rng(3), n_runs=3000, n_users=20_000,
                             rate_control=0.1)
    low, high = aa.expected_range(0.999)
    assert low <= aa.rejected_at_end <= high
    # the loop the bulk draw replaces, on fewer runs: its peeking share agrees within chance
    rng = np.random.default_rng(4)
    loop = [experiments.run_experiment(rng, n_users=20_000, rate_control=0.1, effect=0.0)
            for _ in range(200)]
    peeked = sum(min(run.p_values) < 0.05 for run in loop)
    assert abs(peeked / 200 - aa.share_when_peeking) < 4 * np.sqrt(
        aa.share_when_peeking * (1 - aa.share_when_peeking) * (1 / 200 + 1 / 3000))


@pytest.mark.parametrize("kwargs, message", [
    ({"n_runs": 0}, "n_runs"), ({"n_users": 1}, "n_users"), ({"rate_control": 1.2}, "rate"),
    ({"treatment_share": 0.0}, "treatment_share"), ({"alpha": 0.0}, "alpha")])
def test_aa_runs_refuse_bad_input(kwargs, message):
    arguments = {"n_runs": 10, "n_users": 1000, "rate_control": 0.1, **kwargs}
    with pytest.raises(ValueError, match=message):
        experiments.aa_runs(np.random.default_rng(0), **arguments)
