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
    assert good.weights["good"].tolist() == [0.05, 0.1, 0.25, 0.5, 1.0]
    assert [d.action for d in good.decisions] == ["continue"] * 4 + ["promote"]
    wrong = rollout.Canary().run(simulator, "v1", "wrong", rng)
    assert wrong.outcome == "rolled back"
    assert wrong.decisions[-1].action == "rollback" and "accuracy_drop" in \
        wrong.decisions[-1].reason
    assert wrong.weights["wrong"].tolist() == [0.05, 0.0]
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


@pytest.mark.parametrize("disagreement, gain, margin", [(0.06, 0.02, 0.0), (0.1, 0.032, 0.02),
                                                      (0.2, 0.0, -0.01)])
def test_shadow_sample_size_matches_statsmodels(disagreement, gain, margin):
    from statsmodels.stats.power import NormalIndPower  # pylint: disable=import-outside-toplevel
    n = rollout.shadow_requests_needed(disagreement, gain, margin)
    # one-sample (ratio=0), one-sided ("larger") z-test of the gain against the margin
    exact = NormalIndPower().solve_power(effect_size=(gain - margin) / math.sqrt(disagreement),
                                         alpha=0.05, power=0.8, ratio=0, alternative="larger")
    assert n == math.ceil(exact)


def test_shadow_sample_size_gives_its_power_to_the_rule_it_serves():
    # Paired correctness: the shadow is right and the primary wrong on a share (d + gain) / 2
    # of the requests, the reverse on (d - gain) / 2. At the requests the function asks for,
    # ImprovementRule(margin, z=z_0.95) must promote in 80 % of shadows (the exact binomial
    # range of 2,000 simulated shadows), and against a margin of 0 it needs far fewer.
    disagreement, gain, margin = 0.1, 0.035, 0.02
    n = rollout.shadow_requests_needed(disagreement, gain, margin)
    assert n > 4 * rollout.shadow_requests_needed(disagreement, gain)
    rule = rollout.ImprovementRule(margin, z=stats.norm.ppf(0.95))
    rng = np.random.default_rng(11)
    runs = 2000
    kind = rng.choice(3, size=(runs, n), p=[(disagreement + gain) / 2,
                                            (disagreement - gain) / 2, 1 - disagreement])
    promoted = sum(rule.decide(row != 0, row != 1)[0] for row in kind)
    # The function bounds the variance by d; the true one is d - gain^2, so at its n the power
    # is a little above 0.8: the normal approximation with the true variance gives it.
    power = stats.norm.cdf((gain - margin) * math.sqrt(n / (disagreement - gain ** 2))
                           - stats.norm.ppf(0.95))
    assert 0.8 <= power < 0.81
    low, high = stats.binom.interval(0.999, runs, power)
    assert low <= promoted <= high, (promoted, power)


@pytest.mark.parametrize("arguments", [(0.1, 0.02, 0.02), (0.1, 0.01, 0.02), (0.0, 0.01, 0.0),
                                       (0.05, 0.1, 0.0), (0.1, 0.03, 0.0, 0.0),
                                       (0.1, 0.03, 0.0, 0.05, 1.0)])
def test_shadow_sample_size_refuses_what_cannot_be(arguments):
    with pytest.raises(ValueError):
        rollout.shadow_requests_needed(*arguments)


def test_canary_salt_is_one_per_release_and_sticky():
    simulator = _simulator()
    canary = rollout.Canary(schedule=(0.2, 1.0), analysis=ERRORS_ONLY, requests_per_step=3000)
    assert canary.salt_for("good") != canary.salt_for("wrong")
    assert rollout.Canary(salt="release-7").salt_for("good") == "release-7"

    def first_step_users(candidate, seed):
        """Users the canary's first step (20 %) answered with the candidate."""
        timeline = canary.run(simulator, "v1", candidate, np.random.default_rng(seed))
        assert timeline.weights[candidate].iloc[0] == 0.2
        return frozenset(np.flatnonzero(simulator.route({"v1": 0.8, candidate: 0.2},
                                                        canary.salt_for(candidate)) == 1))

    good, wrong = first_step_users("good", 0), first_step_users("wrong", 0)
    assert good == first_step_users("good", 1), "same salt: the same users"
    assert len(good & wrong) < 0.5 * len(good), "two releases: two (mostly) different user sets"
    # and the salt the canary served with is that one, at every step
    served = []

    class Spy:  # pylint: disable=too-few-public-methods
        """Passes every call to the simulator and keeps the salts."""

        health = simulator.health

        def serve(self, *args, **kwargs):
            """Serve through the simulator, keeping the salt."""
            served.append(kwargs["salt"])
            return simulator.serve(*args, **kwargs)

    canary.run(Spy(), "v1", "good", np.random.default_rng(2))
    assert set(served) == {"canary:good"}
    with pytest.raises(ValueError, match="salt"):
        rollout.Canary(salt="")


def test_times_are_step_ends_and_agree_across_log_table_and_weights():
    simulator = _simulator()
    rng = np.random.default_rng(8)
    canary = rollout.Canary(schedule=(0.1, 0.5, 1.0), requests_per_step=500)
    good = canary.run(simulator, "v1", "good", rng)
    promote = good.decisions[-1]
    assert promote.action == "promote" and promote.minute == good.minutes_to_full == 20.0
    first_full = good.weights.index[good.weights["good"] == 1.0][0]
    assert math.isclose(first_full * good.step_minutes, good.minutes_to_full)  # when decided
    assert good.metrics["minute"].tolist() == [10.0, 10.0, 20.0, 20.0, 30.0]
    assert [d.minute for d in good.decisions] == [(d.step + 1) * 10.0 for d in good.decisions]
    switch = rollout.BlueGreen(requests_per_step=500).run(simulator, "v1", "good", rng)
    assert next(d for d in switch.decisions if d.action == "switch").minute == \
        switch.minutes_to_full == 20.0
    wrong = canary.run(simulator, "v1", "wrong", rng)
    assert math.isclose(wrong.rollback_minutes, 0.0) and wrong.minutes == 20.0


def test_excess_bad_counts_to_the_horizon_for_a_promoted_candidate():
    simulator = _simulator()
    lenient = rollout.Canary(schedule=(0.5, 1.0), analysis=ERRORS_ONLY, requests_per_step=400)
    wrong = lenient.run(simulator, "v1", "wrong", np.random.default_rng(9))
    assert wrong.outcome == "promoted"  # errors only: a wrong model passes
    during = wrong.bad_served  # v1 never errs, so every bad answer is excess
    assert wrong.excess_bad_until(wrong.minutes) == during
    full_step = wrong.live("wrong").iloc[-1]["bad"]
    assert wrong.excess_bad_until(wrong.minutes + 60) == during + 6 * full_step
    stopped = rollout.Canary(schedule=(0.5, 1.0), requests_per_step=400).run(
        simulator, "v1", "wrong", np.random.default_rng(9))
    assert stopped.outcome == "rolled back"
    assert stopped.excess_bad_until(600) == stopped.excess_bad_until(stopped.minutes)
    for horizon in (wrong.minutes - 1, math.inf, "60", True):
        with pytest.raises(ValueError, match="horizon_minutes"):
            wrong.excess_bad_until(horizon)


def test_outcome_shares_count_every_outcome():
    simulator = _simulator(candidate_errors=0.03)
    canary = rollout.Canary(schedule=(0.1, 1.0), analysis=ERRORS_ONLY, requests_per_step=500)
    rng = np.random.default_rng(10)
    runs = [canary.run(simulator, "v1", "bad", rng) for _ in range(30)]
    shares = rollout.outcome_shares(runs)
    assert list(shares.index) == list(rollout.OUTCOMES)
    assert shares.sum() == pytest.approx(1.0)
    assert 0 < shares["rolled back"] < 1 and shares["aborted"] == 0
    with pytest.raises(ValueError, match="no timelines"):
        rollout.outcome_shares([])


def _metrics(p50: float, p99: float) -> traffic.Metrics:
    return traffic.Metrics(requests=50, users=50, errors=0, error_rate=0.0, latency_p99_ms=p99,
                           accuracy=0.9, bad=5, latency_p50_ms=p50)


def test_latency_is_judged_against_the_baseline_of_the_same_step():
    # A busy machine adds 300 ms to every round trip: the baseline's own p99 is over a fixed
    # 150 ms limit, so that limit fails a healthy twin, while the increase over the baseline
    # passes it and still fails a candidate 100 ms slower than the baseline.
    fixed = rollout.Analysis((rollout.Condition("latency_p99_ms", at_most=150.0),))
    relative = rollout.Analysis((rollout.Condition("latency_increase_ms", at_most=50.0),))
    busy_baseline, healthy, slow = _metrics(330, 600), _metrics(332, 640), _metrics(430, 700)
    assert not fixed.measure(busy_baseline, None)[0] and not fixed.measure(healthy, None)[0]
    assert relative.measure(healthy, busy_baseline)[0]
    passed, reason = relative.measure(slow, busy_baseline)
    assert not passed and "latency_increase_ms 100 FAILS" in reason
    assert not relative.measure(healthy, None)[0], "no baseline in the step: cannot judge"


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
                                "wrong": rollout.Canary().run(simulator, "v1", "wrong", rng)},
                               horizon_minutes=60)
    assert table.loc["good", "excess bad responses"] == 0
    assert table.loc["wrong", "excess bad responses"] == table.loc["wrong",
                                                                   "bad responses served"] > 0
    assert table.loc["good", "minutes to full rollout"] == 40.0
    assert table.loc["wrong", "rollback"] == "instant: every user back 0 min after deciding"


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
