"""Rollout strategies: decisions, rollbacks at the binomial rates, shadow safety, A/B logs."""

from __future__ import annotations

import inspect
import math

import nbformat
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from labsupport import rollout, traffic
from tests.notebook_files import ROOT
from tests.test_traffic import CountingModel


def _simulator(n_users: int = 5000, seed: int = 0, candidate_errors: float = 0.0,
               healthy: bool = True) -> traffic.Simulator:
    features = np.random.default_rng(seed).normal(size=(n_users, 2))
    labels = (features[:, 0] > 0).astype(int)
    return traffic.Simulator(traffic.Population(np.arange(n_users), features, labels), [
        traffic.Version("v1", CountingModel()),
        traffic.Version("good", CountingModel()),
        traffic.Version("bad", CountingModel(), error_rate=candidate_errors or 0.08,
                        healthy=healthy),
        traffic.Version("wrong", CountingModel(flip=True)),
    ])


ERRORS_ONLY = rollout.Analysis((rollout.Condition("error_rate", at_most=0.02),))


class ExactCounts:
    """A target giving each version exactly its weight's share of requests (binomial errors)."""

    def __init__(self, error_rates: dict) -> None:
        self.error_rates = error_rates

    def health(self, name):
        """Every known version is healthy."""
        if name not in self.error_rates:
            raise ValueError(f"unknown version {name!r}")
        return True

    def serve(self, weights, n_requests, rng, *, salt="rollout", mirror_to=None):
        """Exact shares per version, a Bernoulli error per request."""
        del salt, mirror_to
        names = tuple(weights)
        counts = [round(w * n_requests) for w in weights.values()]
        code = np.repeat(np.arange(len(names)), counts)
        rates = np.array([self.error_rates[n] for n in names])[code]
        error = rng.random(code.size) < rates
        return traffic.Served(names, code, np.arange(code.size), np.zeros(code.size, int),
                              ~error, np.full(code.size, 10.0), error, np.arange(code.size))


@pytest.mark.parametrize("true_rate", [0.01, 0.03])
def test_rollback_rate_matches_the_binomial(true_rate):
    canary = rollout.Canary(schedule=(0.1, 0.25, 0.5, 1.0), analysis=ERRORS_ONLY,
                            requests_per_step=1000)
    target = ExactCounts({"v1": 0.0, "cand": true_rate})
    rng = np.random.default_rng(11)
    runs = 800
    rolled = sum(canary.run(target, "v1", "cand", rng).outcome == "rolled back"
                 for _ in range(runs))
    theory = rollout.canary_rollback_probability([100, 250, 500], true_rate, 0.02)
    assert abs(rolled / runs - theory) < 4 * math.sqrt(theory * (1 - theory) / runs) + 1e-3
    assert 0.01 < theory < 0.99  # both cases are genuinely random


def test_binomial_probability_by_hand_and_failure_limit():
    one = 1 - stats.binom.cdf(2, 100, 0.01)  # more than 2 errors in 100
    assert rollout.canary_rollback_probability([100], 0.01, 0.02) == pytest.approx(one)
    two = rollout.canary_rollback_probability([100, 100], 0.01, 0.02, failure_limit=1)
    assert two == pytest.approx(one ** 2)
    assert rollout.canary_rollback_probability([100, 100], 0.01, 0.02) == \
        pytest.approx(1 - (1 - one) ** 2)


def test_sampled_counts_reduce_to_fixed_counts_when_every_user_is_on_the_candidate():
    """A share of 1 sends every request to the candidate: the count is fixed."""
    for rate in (0.005, 0.015, 0.03):
        assert rollout.canary_rollback_probability_sampled([1.0, 1.0], 400, rate, 0.02, 1) == \
            pytest.approx(rollout.canary_rollback_probability([400, 400], rate, 0.02, 1))


def test_sampled_counts_match_a_direct_simulation():
    """Counts ~ Binomial(R, share), errors ~ Binomial(count, rate), a step fails above the limit
    (or with no request): the rollback rate lies in the exact binomial range of the theory."""
    rng = np.random.default_rng(7)
    shares, requests, rate, runs = np.array([0.05, 0.1, 0.25]), 1000, 0.015, 20_000
    counts = rng.binomial(requests, shares, size=(runs, shares.size))
    errors = rng.binomial(counts, rate)
    failed = (errors > np.floor(0.02 * counts + 1e-9)) | (counts == 0)
    rolled = int(failed.any(axis=1).sum())
    theory = rollout.canary_rollback_probability_sampled(shares, requests, rate, 0.02)
    low, high = stats.binom.interval(0.999, runs, theory)
    assert low <= rolled <= high, (rolled / runs, theory)
    fixed = rollout.canary_rollback_probability([50, 100, 250], rate, 0.02)
    assert theory > fixed  # the random count makes the limit's jumps bite more often here


def test_a_step_without_requests_fails():
    assert rollout.step_failure_probability(np.array([0, 100]), 0.0, 0.02).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("arguments, match", [
    (([0.0, 0.5], 100, 0.01, 0.02), "candidate_shares must be shares"),
    (([], 100, 0.01, 0.02), "candidate_shares must be shares"),
    (([0.5], 0, 0.01, 0.02), "requests_per_step must be a whole number"),
    (([0.5], 100.5, 0.01, 0.02), "requests_per_step must be a whole number"),
    (([0.5], 100, 0.01, 0.02, -1), "failure_limit must be a whole number"),
])
def test_sampled_probability_refuses_what_cannot_be(arguments, match):
    with pytest.raises(ValueError, match=match):
        rollout.canary_rollback_probability_sampled(*arguments)


@pytest.mark.parametrize("arguments, match", [
    (([100], 0.01, 0.02, -1), "failure_limit must be a whole number >= 0"),
    (([100], 0.01, 0.02, 1.5), "failure_limit must be a whole number >= 0"),
    (([200.7], 0.01, 0.02, 0), "whole counts >= 1"),
    (([100, 0], 0.01, 0.02, 0), "whole counts >= 1"),
    (([math.inf], 0.01, 0.02, 0), "whole counts >= 1"),
    (([], 0.01, 0.02, 0), "whole counts >= 1"),
    (([100], 1.5, 0.02, 0), "error_rate must be a rate"),
    (([100], 0.01, -0.1, 0), "max_error_rate must be a rate"),
])
def test_binomial_probability_refuses_what_cannot_be(arguments, match):
    """A negative failure limit gave 1.0 and 200.7 requests were truncated to 200: now errors."""
    with pytest.raises(ValueError, match=match):
        rollout.canary_rollback_probability(*arguments)


def test_canary_on_the_simulator_matches_the_binomial_loosely():
    simulator = _simulator(candidate_errors=0.025)
    canary = rollout.Canary(schedule=(0.2, 0.5, 1.0), analysis=ERRORS_ONLY,
                            requests_per_step=1000)
    rng = np.random.default_rng(3)
    runs = 200
    rolled = np.mean([canary.run(simulator, "v1", "bad", rng).outcome == "rolled back"
                      for _ in range(runs)])
    theory = rollout.canary_rollback_probability([200, 500], 0.025, 0.02)
    assert abs(rolled - theory) < 4 * math.sqrt(theory * (1 - theory) / runs) + 0.03


def test_canary_promotes_the_good_and_rolls_back_the_bad_at_once():
    simulator = _simulator()
    rng = np.random.default_rng(0)
    good = rollout.Canary().run(simulator, "v1", "good", rng)
    assert good.outcome == "promoted"
    assert good.weights["good"].tolist() == [0.0, 0.05, 0.1, 0.25, 0.5, 1.0]
    assert [d.action for d in good.decisions] == ["continue"] * 4 + ["promote"]
    wrong = rollout.Canary().run(simulator, "v1", "wrong", rng)
    assert wrong.outcome == "rolled back"
    assert wrong.decisions[-1].action == "rollback" and "accuracy_drop" in \
        wrong.decisions[-1].reason
    assert wrong.weights["wrong"].tolist() == [0.0, 0.05, 0.0]
    assert 0 < wrong.exposed["wrong"] < 0.1 * 5000
    assert wrong.bad_served == wrong.live("wrong")["requests"].sum()


def test_blue_green_aborts_unhealthy_and_switches_back_on_bad_analysis():
    rng = np.random.default_rng(1)
    sick = rollout.BlueGreen().run(_simulator(healthy=False), "v1", "bad", rng)
    assert sick.outcome == "aborted" and sick.exposed["bad"] == 0
    assert "health" in sick.decisions[-1].reason
    # The smoke test only catches errors; a model that is wrong passes it and is caught after.
    wrong = rollout.BlueGreen().run(_simulator(), "v1", "wrong", rng)
    assert [d.action for d in wrong.decisions] == ["switch", "switch back"]
    assert wrong.outcome == "rolled back"
    assert wrong.weights["wrong"].tolist() == [0.0, 0.0, 1.0, 0.0]
    good = rollout.BlueGreen().run(_simulator(), "v1", "good", rng)
    assert good.outcome == "promoted" and good.minutes_to_full == pytest.approx(20.0)  # pylint: disable=nan-comparison


def test_shadow_users_only_ever_get_the_primary():
    simulator = _simulator()
    served = []

    class Spy:  # pylint: disable=too-few-public-methods
        """Passes every call to the simulator and keeps what users got."""

        health = simulator.health

        def serve(self, *args, **kwargs):
            """Serve through the simulator, keeping a copy."""
            result = simulator.serve(*args, **kwargs)
            served.append(result)
            return result

    timeline = rollout.Shadow(n_steps=2).run(Spy(), "v1", "wrong", np.random.default_rng(2))
    assert timeline.outcome == "not promoted"
    assert timeline.exposed["wrong"] == 0 and timeline.bad_served == 0
    for step in served:
        assert step.versions == ("v1",)
        assert np.array_equal(step.prediction, simulator.predictions("v1")[step.user])
        assert step.shadow.metrics_of("wrong").accuracy == 0.0


def test_shadow_rule_needs_the_margin():
    rule = rollout.ImprovementRule(min_improvement=0.02)
    primary = np.array([True] * 90 + [False] * 10)
    assert rule.decide(primary, np.array([True] * 93 + [False] * 7))[0]
    assert not rule.decide(primary, np.array([True] * 91 + [False] * 9))[0]
    strict = rollout.ImprovementRule(min_improvement=0.02, z=2.0)
    assert not strict.decide(primary, np.array([True] * 93 + [False] * 7))[0]


def test_ab_split_logs_one_row_per_user_for_lesson_07():
    simulator = _simulator()
    timeline = rollout.ABSplit(treatment_share=0.3).run(simulator, "v1", "wrong",
                                                        np.random.default_rng(4))
    log = timeline.outcomes
    assert list(log.columns) == ["user_id", "variant", "requests", "outcome"]
    assert log["user_id"].is_unique
    share = (log["variant"] == "treatment").mean()
    assert abs(share - 0.3) < 0.04
    means = log.groupby("variant")["outcome"].mean()
    assert means["control"] == 1.0 and means["treatment"] == 0.0
    assert isinstance(log, pd.DataFrame)


def test_promotion_chain_stops_at_the_first_failing_gate():
    rng = np.random.default_rng(5)
    dev, prod = _simulator(seed=1), _simulator(seed=2)
    gates = [rollout.Gate("dev", rollout.BlueGreen(), dev),
             rollout.Gate("staging", rollout.Shadow(rule=rollout.ImprovementRule(-1.0)), dev),
             rollout.Gate("production", rollout.Canary(), prod)]
    assert rollout.promote_through(gates, "v1", "good", rng).reached == "production"
    stopped = rollout.promote_through(gates, "v1", "wrong", rng)
    assert stopped.reached is None and stopped.outcome.startswith("stopped at dev")
    with pytest.raises(ValueError, match="forward"):
        rollout.promote_through(gates[::-1], "v1", "good", rng)


@pytest.mark.parametrize("schedule, message", [
    ((0.1, 0.05, 1.0), "backwards"), ((0.1, 0.5), "end at 1.0"), ((), "empty"),
    ((0.0, 1.0), r"\(0, 1\]"),
])
def test_bad_schedules_are_explained(schedule, message):
    with pytest.raises(ValueError, match=message):
        rollout.Canary(schedule=schedule)


def test_unknown_versions_and_empty_steps_are_explained():
    with pytest.raises(ValueError, match="unknown version"):
        rollout.Canary().run(_simulator(), "v1", "nope", np.random.default_rng(0))
    with pytest.raises(ValueError, match="empty traffic"):
        rollout.Canary(requests_per_step=0)
    with pytest.raises(ValueError, match="exactly one"):
        rollout.Condition("error_rate")


def test_shadow_sample_size_matches_statsmodels():
    from statsmodels.stats.power import NormalIndPower  # pylint: disable=import-outside-toplevel
    n = rollout.shadow_requests_needed(0.06, 0.02)
    exact = NormalIndPower().solve_power(effect_size=0.02 / math.sqrt(0.06), alpha=0.05,
                                         power=0.8, ratio=0)
    assert n == math.ceil(exact)


def test_geometric_schedule_and_build():
    assert rollout.geometric_schedule(0.05, 5) == (0.05, 0.106, 0.224, 0.473, 1.0)
    assert rollout.build("canary", first_share=0.1, n_steps=2).schedule == (0.1, 1.0)
    assert isinstance(rollout.build("A/B", treatment_share=0.3), rollout.ABSplit)
    with pytest.raises(ValueError, match="unknown strategy"):
        rollout.build("big bang")


def test_risk_table_counts_only_the_extra_bad_responses():
    simulator = _simulator()
    rng = np.random.default_rng(6)
    table = rollout.risk_table({"good": rollout.Canary().run(simulator, "v1", "good", rng),
                                "wrong": rollout.Canary().run(simulator, "v1", "wrong", rng)})
    assert table.loc["good", "excess bad responses"] == 0
    assert table.loc["wrong", "excess bad responses"] == table.loc["wrong",
                                                                   "bad responses served"] > 0
    assert table.loc["good", "minutes to full rollout"] == 50.0


def test_lesson_07_rebuilds_lesson_06s_ab_experiment_with_the_library_defaults():
    """Lesson 07 reads lesson 06's A/B split by calling the library with its defaults: those
    defaults must be the sizes lesson 06's parameters cell runs (users, requests per step)."""
    notebook = nbformat.read(ROOT / "notebooks" / "06_deployment_strategies.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    parameters: dict = {}
    exec(cell.source, {}, parameters)  # pylint: disable=exec-used  # our own parameters cell
    world_users = inspect.signature(traffic.lesson_world).parameters["n_users"].default
    assert parameters["N_USERS"] == world_users
    assert parameters["REQUESTS_PER_STEP"] == rollout.ABSplit().requests_per_step
    assert rollout.ABSplit().treatment_share == 0.5
