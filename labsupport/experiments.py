"""Simulated A/B experiments: the data lesson 07, its widget and its exercise analyse.

Taught in lesson 07 (``notebooks/07_ab_testing_statistics.ipynb``), next to the statistics of
:mod:`labsupport.abtest`, which this module only calls:

- :func:`simulate_log` -- a log of one experiment split by the salted hash, optionally with the
  bug that makes a sample ratio mismatch (treatment users lost before they are logged);
- :func:`run_experiment` -- one experiment analysed as the lesson does it (SRM first, then the
  test), with the p-value path an analyst who peeks would see: the computation of the widget;
- :func:`aa_runs` -- many A/A runs of that experiment: the share rejected at the end (about
  alpha) and at some look of the path (more: peeking), the widget's "several seeds' worth";
- :func:`winners_curse` -- why significant results overstate the true effect;
- :func:`novelty_lift`, :func:`simulate_novelty` -- an effect that wears off over days.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from labsupport import abtest


def simulate_log(rng: np.random.Generator, n_users: int, *, rate_control: float,
                 rate_treatment: float, salt: str = "experiment",
                 weights: Mapping[str, float] | None = None,
                 lost_treatment_share: float = 0.0) -> pd.DataFrame:
    """A log of one experiment: ``user_id``, ``variant``, ``converted``, one row per user seen.

    Users ``0 .. n_users - 1`` are split by :func:`labsupport.abtest.assign` (the salted hash).
    With
    ``lost_treatment_share > 0`` a bug loses that share of the treatment's *non-converting* users
    before they are logged (say, the new page crashes for some and they leave without a trace):
    the log then has a sample ratio mismatch and a treatment rate biased upwards.
    """
    n_users = abtest.check_count(n_users, "n_users")
    if n_users < 2:
        raise ValueError(f"n_users must be at least 2, got {n_users}.")
    weights = {"control": 0.5, "treatment": 0.5} if weights is None else weights
    if set(weights) != {"control", "treatment"}:
        raise ValueError(f"weights must name 'control' and 'treatment', got {sorted(weights)}.")
    if not 0 <= lost_treatment_share < 1:
        raise ValueError(f"lost_treatment_share must be in [0, 1), got {lost_treatment_share}.")
    ids = np.arange(n_users)
    variant = abtest.assign(ids, salt, weights)
    rates = np.where(variant == "treatment",
                     abtest.check_rate(rate_treatment, "rate_treatment"),
                     abtest.check_rate(rate_control, "rate_control"))
    converted = rng.random(n_users) < rates
    lost = (variant == "treatment") & ~converted & (rng.random(n_users) < lost_treatment_share)
    return pd.DataFrame({"user_id": ids[~lost], "variant": variant[~lost].astype(str),
                         "converted": converted[~lost].astype(int)})


@dataclass(frozen=True)
class ExperimentRun:
    """Result of :func:`run_experiment`: what an analyst sees at the end, and along the way.

    Attributes
    ----------
    srm
        The sample-ratio check against the planned split.
    test
        The two-proportion test on all users.
    users_seen, p_values
        The p-value path: after ``users_seen[i]`` users the pooled z-test gave ``p_values[i]``.
    power
        Power of the planned design (planned split, all users) for the true effect.
    decision
        What to do, in words.
    """

    srm: abtest.SRMCheck
    test: abtest.ProportionsTest
    users_seen: tuple[int, ...] = field(repr=False)
    p_values: tuple[float, ...] = field(repr=False)
    power: float
    decision: str


#: Looks along the experiment at which :func:`run_experiment` records the p-value.
CHECKPOINTS = 50


def _path(log: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Users seen so far per group and conversions so far per group, after each logged user."""
    is_treatment = (log["variant"] == "treatment").to_numpy()
    converted = log["converted"].to_numpy()
    return (np.cumsum(converted * ~is_treatment), np.cumsum(~is_treatment),
            np.cumsum(converted * is_treatment), np.cumsum(is_treatment))


def _looks(n_users: int, n_c: np.ndarray, n_t: np.ndarray) -> np.ndarray:
    """Indices of the logged users after whom the p-value path is recorded (both groups seen)."""
    seen = np.unique(np.linspace(max(20, n_users // CHECKPOINTS), len(n_c), CHECKPOINTS)
                     .astype(int)) - 1
    return seen[(n_t[seen] > 0) & (n_c[seen] > 0)]


def run_experiment(rng: np.random.Generator, *, n_users: int, rate_control: float,
                   effect: float, treatment_share: float = 0.5, planned_share: float = 0.5,
                   alpha: float = 0.05, salt: str = "experiment") -> ExperimentRun:
    """Simulate one experiment and analyse it as lesson 07 does (the widget's computation).

    ``treatment_share`` is the share of users the traffic split *actually* sends to treatment;
    ``planned_share`` the share the design asked for. When they differ the SRM check should fire.
    The treatment converts at ``rate_control + effect``. The p-value is also recorded at
    ``CHECKPOINTS`` moments along the way: the path an analyst who peeks would watch.
    """
    alpha = abtest.check_alpha(alpha)
    treatment_share = abtest.check_rate(treatment_share, "treatment_share")
    planned_share = abtest.check_rate(planned_share, "planned_share")
    log = simulate_log(rng, n_users, rate_control=rate_control,
                       rate_treatment=abtest.check_rate(rate_control + effect,
                                                        "rate_control + effect"),
                       salt=salt, weights={"control": 1 - treatment_share,
                                           "treatment": treatment_share})
    s_c, n_c, s_t, n_t = _path(log)
    seen = _looks(n_users, n_c, n_t)
    z = abtest.pooled_z(s_c[seen], n_c[seen], s_t[seen], n_t[seen])
    srm = abtest.srm_check({"control": int(n_c[-1]), "treatment": int(n_t[-1])},
                           {"control": 1 - planned_share, "treatment": planned_share})
    test = abtest.two_proportions(int(s_c[-1]), max(int(n_c[-1]), 1), int(s_t[-1]),
                                  max(int(n_t[-1]), 1), alpha)
    chance = alpha if effect == 0 else abtest.achieved_power(
        effect, max(int(n_users * (1 - planned_share)), 2), baseline_rate=rate_control,
        alpha=alpha, ratio=planned_share / (1 - planned_share))
    return ExperimentRun(srm, test, tuple(int(v) + 1 for v in seen),
                         tuple(float(p) for p in np.where(np.isfinite(z),
                                                          2 * stats.norm.sf(np.abs(z)), 1.0)),
                         chance, abtest.decide(srm, test))


@dataclass(frozen=True)
class AARuns:
    """Result of :func:`aa_runs`: many A/A runs of :func:`run_experiment`'s experiment.

    Attributes
    ----------
    n_runs, n_users, alpha
        The simulation and the level of every test.
    rejected_at_end
        Runs whose two-proportion test on all users has ``p < alpha``: false positives of the
        test read once, as planned (binomial ``(n_runs, alpha)`` when the test is right).
    rejected_when_peeking
        Runs whose p-value path dips below ``alpha`` at some look: false positives of an analyst
        who stops at the first "significant" look.
    srm_mismatch
        Whether the split fails the SRM check (the same in every run: the hash decides the split,
        only the conversions are drawn again).
    """

    n_runs: int
    n_users: int
    alpha: float
    rejected_at_end: int
    rejected_when_peeking: int
    srm_mismatch: bool

    @property
    def share_at_end(self) -> float:
        """Share of runs rejected by the planned, single test."""
        return self.rejected_at_end / self.n_runs

    @property
    def share_when_peeking(self) -> float:
        """Share of runs rejected at some look of the path."""
        return self.rejected_when_peeking / self.n_runs

    def expected_range(self, coverage: float = 0.999) -> tuple[int, int]:
        """Counts of rejections a right test gives with probability ``coverage``.

        The exact binomial ``(n_runs, alpha)`` range (``scipy.stats.binom.interval``), not a
        normal band, which is poor for small counts.
        """
        coverage = abtest.check_alpha(coverage, "coverage")
        low, high = stats.binom.interval(coverage, self.n_runs, self.alpha)
        return int(low), int(high)


def aa_runs(rng: np.random.Generator, *, n_runs: int, n_users: int, rate_control: float,
            treatment_share: float = 0.5, planned_share: float = 0.5, alpha: float = 0.05,
            salt: str = "experiment") -> AARuns:
    """Run :func:`run_experiment`'s experiment ``n_runs`` times with no true effect (A/A).

    Taught in lesson 07 (its widget's "A/A runs" button). The salted hash puts every user in the
    same arm in every run, so the users seen at each look are those of :func:`run_experiment`;
    only the conversions are drawn again, as binomial counts of each group's users between two
    looks (the same distribution as drawing each user, without an array of users per run). The
    p-value is the pooled z-test's at each look, as on the widget's path.

    Returns
    -------
    AARuns
    """
    n_runs = abtest.check_count(n_runs, "n_runs")
    if n_runs < 1:
        raise ValueError("n_runs must be at least 1.")
    n_users = abtest.check_count(n_users, "n_users")
    if n_users < 2:
        raise ValueError(f"n_users must be at least 2, got {n_users}.")
    alpha = abtest.check_alpha(alpha)
    rate_control = abtest.check_rate(rate_control, "rate_control")
    treatment_share = abtest.check_rate(treatment_share, "treatment_share")
    planned_share = abtest.check_rate(planned_share, "planned_share")
    is_treatment = abtest.assign(np.arange(n_users), salt, {"control": 1 - treatment_share,
                                                            "treatment": treatment_share}) \
        == "treatment"
    n_t, n_c = np.cumsum(is_treatment), np.cumsum(~is_treatment)
    seen = _looks(n_users, n_c, n_t)
    if seen.size == 0 or seen[-1] != n_users - 1:
        raise ValueError(f"{n_users} users leave one group empty: nothing to compare.")
    users_c, users_t = n_c[seen], n_t[seen]
    # conversions between two looks, then cumulated: (n_runs, looks) arrays
    s_c = rng.binomial(np.diff(users_c, prepend=0), rate_control, (n_runs, seen.size)).cumsum(1)
    s_t = rng.binomial(np.diff(users_t, prepend=0), rate_control, (n_runs, seen.size)).cumsum(1)
    z = np.nan_to_num(abtest.pooled_z(s_c, users_c, s_t, users_t), nan=0.0)
    significant = np.abs(z) >= abtest.z_critical(alpha)
    srm = abtest.srm_check({"control": int(users_c[-1]), "treatment": int(users_t[-1])},
                           {"control": 1 - planned_share, "treatment": planned_share})
    return AARuns(n_runs, n_users, alpha, int(significant[:, -1].sum()),
                  int(significant.any(axis=1).sum()), srm.mismatch)


@dataclass(frozen=True)
class WinnersCurse:
    """Result of :func:`winners_curse`.

    Attributes
    ----------
    effect
        The true difference of rates.
    power
        Share of simulated experiments that came out significant (in either direction).
    mean_estimate_significant
        Average estimated difference among the significant ones with the right sign.
    exaggeration
        ``mean_estimate_significant / effect``: how much a reported win overstates the truth.
    n_per_group, n_experiments
        The simulation.
    """

    effect: float
    power: float
    mean_estimate_significant: float
    exaggeration: float
    n_per_group: int
    n_experiments: int


def winners_curse(rng: np.random.Generator, *, rate_control: float, effect: float,
                  n_per_group: int, n_experiments: int = 20_000,
                  alpha: float = 0.05) -> WinnersCurse:
    """Simulate many experiments with a true ``effect > 0`` and average the significant wins.

    Taught in lesson 07: filtering on ``p < alpha`` keeps the estimates that happened to come out
    large, so the published wins overstate the effect -- by far the most when power is low.
    """
    alpha = abtest.check_alpha(alpha)
    if not effect > 0:
        raise ValueError(f"effect must be a positive true difference, got {effect}.")
    n_per_group = abtest.check_count(n_per_group, "n_per_group")
    n_experiments = abtest.check_count(n_experiments, "n_experiments")
    if n_per_group < 2 or n_experiments < 1:
        raise ValueError("n_per_group must be >= 2 and n_experiments >= 1.")
    rate_treatment = abtest.check_rate(rate_control + effect, "rate_control + effect")
    rate_control = abtest.check_rate(rate_control, "rate_control")
    s_c = rng.binomial(n_per_group, rate_control, n_experiments)
    s_t = rng.binomial(n_per_group, rate_treatment, n_experiments)
    z = np.nan_to_num(abtest.pooled_z(s_c, n_per_group, s_t, n_per_group), nan=0.0)
    significant = np.abs(z) >= abtest.z_critical(alpha)
    wins = significant & (z > 0)
    estimates = (s_t - s_c)[wins] / n_per_group
    mean_win = float(estimates.mean()) if estimates.size else math.nan
    return WinnersCurse(float(effect), float(significant.mean()), mean_win, mean_win / effect,
                        n_per_group, n_experiments)


def novelty_lift(days: np.ndarray | Sequence[float], *, initial_lift: float,
                 long_run_lift: float, half_life_days: float) -> np.ndarray:
    """True relative lift on each day when a novelty effect wears off (lesson 07).

    Starts at ``initial_lift`` on day 0 and decays towards ``long_run_lift`` with the given
    half-life: ``long + (initial - long) * 0.5 ** (day / half_life)``.
    """
    half_life_days = abtest.check_positive(half_life_days, "half_life_days")
    days = np.asarray(days, dtype=float)
    return long_run_lift + (initial_lift - long_run_lift) * 0.5 ** (days / half_life_days)


def simulate_novelty(rng: np.random.Generator, *, days: int, users_per_day: int,
                     rate_control: float, initial_lift: float, long_run_lift: float,
                     half_life_days: float) -> pd.DataFrame:
    """Daily counts of an experiment whose lift decays (see :func:`novelty_lift`).

    Returns a frame with one row per day: ``day``, ``true_lift``, ``n_control``,
    ``successes_control``, ``n_treatment``, ``successes_treatment`` (users split 50/50; each day
    brings new users, and the treatment converts at ``rate_control * (1 + true_lift)``).
    """
    days = abtest.check_count(days, "days")
    users_per_day = abtest.check_count(users_per_day, "users_per_day")
    if days < 1 or users_per_day < 2:
        raise ValueError("days must be >= 1 and users_per_day >= 2.")
    rate_control = abtest.check_rate(rate_control, "rate_control")
    day = np.arange(days)
    lift = novelty_lift(day, initial_lift=initial_lift, long_run_lift=long_run_lift,
                        half_life_days=half_life_days)
    rate_treatment = rate_control * (1 + lift)
    if np.any(rate_treatment >= 1) or np.any(rate_treatment <= 0):
        raise ValueError("the lifts push the treatment's rate outside (0, 1).")
    n_t = rng.binomial(users_per_day, 0.5, days)
    n_c = users_per_day - n_t
    return pd.DataFrame({"day": day, "true_lift": lift,
                         "n_control": n_c, "successes_control": rng.binomial(n_c, rate_control),
                         "n_treatment": n_t,
                         "successes_treatment": rng.binomial(n_t, rate_treatment)})
