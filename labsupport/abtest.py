"""A/B-test statistics: the right test, enough data, sample-ratio checks and the peeking trap.

Taught in lesson 07 (``notebooks/07_ab_testing_statistics.ipynb``). An experiment splits users
between a *control* and a *treatment* by a salted stable hash (:func:`assign`, the one hash of
:mod:`labsupport.assignment`), then asks whether a metric differs. In the order the lesson runs
them:

- :func:`srm_check` -- did the split come out as designed? (sample ratio mismatch; read nothing
  else when it fails);
- :func:`two_proportions` -- conversion rates: pooled z-test, CI of the difference, relative
  lift with a delta-method CI, Cohen's h;
- :func:`welch`, :func:`welch_from_stats` -- means of a continuous metric: Welch's t, CI,
  Cohen's d;
- :func:`sample_size`, :func:`minimum_detectable_effect`, :func:`achieved_power` -- how much
  data the question needs (statsmodels' power solvers);
- :func:`peeking_simulation`, :func:`obrien_fleming_bounds` -- what looking at the p-value every
  day does to the false positive rate, and a group-sequential design that keeps it at alpha;
- :func:`probability_treatment_beats_control` -- the Bayesian summary under Beta priors;
- :func:`adjust_metrics` -- Holm or Benjamini-Hochberg over several metrics (the one correction
  of :func:`labsupport.monitoring.adjust_p_values`);
- :func:`decide` -- the order of the checks, as a decision in words.

The simulated experiments the lesson, its widget and its exercise are built on live in
:mod:`labsupport.experiments`.

Every result is a frozen dataclass; bad input raises ``ValueError`` or ``TypeError`` saying what
was expected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special, stats
from statsmodels.stats import power as sm_power

from labsupport import monitoring
from labsupport.assignment import assign

__all__ = ["assign", "srm_check", "two_proportions", "welch", "welch_from_stats", "cohens_h",
           "sample_size", "minimum_detectable_effect", "achieved_power", "simulate_looks",
           "pooled_z", "peeking_simulation", "obrien_fleming_bounds",
           "probability_treatment_beats_control", "adjust_metrics", "decide"]

#: The industry's threshold for a sample ratio mismatch (see :func:`srm_check`).
SRM_ALPHA = 0.001
#: Sequential methods of :func:`peeking_simulation`.
METHODS = ("naive", "obrien_fleming", "bayes")


# --- input checks --------------------------------------------------------------------------------

def check_alpha(alpha: float, name: str = "alpha") -> float:
    """``alpha`` as a float, or a ``TypeError``/``ValueError`` unless it lies in (0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise TypeError(f"{name} must be a number in (0, 1), got {alpha!r}.")
    if not 0 < alpha < 1:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {alpha}.")
    return float(alpha)


def check_count(value: float, name: str) -> int:
    """``value`` as an int, or an error unless it is a non-negative whole number."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise TypeError(f"{name} must be a whole number, got {value!r}.")
    if not math.isfinite(value) or int(value) != value:
        raise ValueError(f"{name} must be a finite whole number, got {value}.")
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {value}.")
    return int(value)


def _check_group(successes: float, n: float, group: str) -> tuple[int, int]:
    successes = check_count(successes, f"successes_{group}")
    n = check_count(n, f"n_{group}")
    if n == 0:
        raise ValueError(f"n_{group} is 0: the {group} group has no users, there is nothing "
                         "to compare.")
    if successes > n:
        raise ValueError(f"successes_{group} ({successes}) is larger than n_{group} ({n}): a "
                         "group cannot convert more users than it has.")
    return successes, n


def check_rate(rate: float, name: str) -> float:
    """``rate`` as a float, or an error unless it lies strictly between 0 and 1."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)):
        raise TypeError(f"{name} must be a number in (0, 1), got {rate!r}.")
    if not 0 < rate < 1:
        raise ValueError(f"{name} must be a rate strictly between 0 and 1, got {rate}.")
    return float(rate)


def _check_power(value: float) -> float:
    return check_alpha(value, "power")


def check_positive(value: float, name: str) -> float:
    """``value`` as a float, or an error unless it is finite and positive."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name} must be a positive number, got {value!r}.")
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite positive number, got {value}.")
    return float(value)


def z_critical(alpha: float) -> float:
    """The two-sided normal critical value ``z_{1 - alpha/2}``."""
    return float(stats.norm.isf(alpha / 2))


# --- sample ratio mismatch ----------------------------------------------------------------------

@dataclass(frozen=True)
class SRMCheck:
    """Result of :func:`srm_check`.

    Attributes
    ----------
    counts, expected
        Users seen per variant and users the design's weights expect.
    statistic, p_value
        Pearson's chi-square goodness of fit and its p-value.
    alpha
        Threshold; ``mismatch`` is ``p_value < alpha``.
    mismatch
        True when the split is not what was designed: do not read the experiment.
    """

    counts: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float
    p_value: float
    alpha: float
    mismatch: bool


def srm_check(counts: Sequence[int] | Mapping[str, int],
              weights: Sequence[float] | Mapping[str, float],
              alpha: float = SRM_ALPHA) -> SRMCheck:
    """Check the observed split against the designed one (sample ratio mismatch).

    Taught in lesson 07. Chi-square goodness of fit of the users per variant against
    ``total * weights``. The threshold is strict (``p < 0.001`` by default) because the check runs
    on every experiment -- at 0.05 one healthy experiment in twenty would be thrown away -- and
    because a real mismatch (a redirect that drops users, a bot filter applied to one arm) is
    usually so large that its p-value is astronomically small.

    Parameters
    ----------
    counts
        Users per variant, as a sequence or a mapping ``{"control": 5021, "treatment": 4979}``.
    weights
        The designed shares, same length (or same keys) as ``counts``, summing to 1.
    alpha
        Threshold of the verdict.

    Returns
    -------
    SRMCheck
    """
    alpha = check_alpha(alpha)
    if isinstance(counts, Mapping) != isinstance(weights, Mapping):
        raise TypeError("give counts and weights both as mappings (variant -> value) or both as "
                        "sequences.")
    if isinstance(counts, Mapping):
        if set(counts) != set(weights):
            raise ValueError(f"counts and weights name different variants: {sorted(counts)} vs "
                             f"{sorted(weights)}.")
        names = list(weights)
        counts, weights = [counts[k] for k in names], [weights[k] for k in names]
    counts = [check_count(c, "each count") for c in counts]
    shares = np.asarray(list(weights), dtype=float)
    if len(counts) < 2 or len(counts) != shares.size:
        raise ValueError(f"need one count per variant and at least two variants, got "
                         f"{len(counts)} counts for {shares.size} weights.")
    if not np.all(np.isfinite(shares)) or np.any(shares <= 0):
        raise ValueError(f"weights must be positive, got {shares.tolist()}.")
    if not math.isclose(float(shares.sum()), 1.0, abs_tol=1e-9):
        raise ValueError(f"weights must sum to 1, got {shares.tolist()} (sum {shares.sum():g}).")
    total = sum(counts)
    if total == 0:
        raise ValueError("counts are all 0: no users reached the experiment.")
    expected = total * shares
    result = stats.chisquare(counts, expected)
    p_value = float(result.pvalue)
    return SRMCheck(tuple(counts), tuple(float(e) for e in expected), float(result.statistic),
                    p_value, alpha, p_value < alpha)


# --- two proportions ----------------------------------------------------------------------------

def _count_arrays(successes: np.ndarray, n: np.ndarray,
                  group: str) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of a group's successes and users as floats, or a ``ValueError`` naming the problem."""
    successes, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    for values, name in ((successes, f"successes_{group}"), (n, f"n_{group}")):
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise ValueError(f"{name} must hold finite whole numbers, got {values.ravel()[:5]}...")
    if np.any(n < 1):
        raise ValueError(f"n_{group} must be at least 1 everywhere: a group with no users has no "
                         "rate to compare.")
    if np.any(successes < 0) or np.any(successes > n):
        raise ValueError(f"successes_{group} must lie between 0 and n_{group}: a group cannot "
                         "convert a negative number of users, or more users than it has.")
    return successes, n


def pooled_z(successes_control: np.ndarray, n_control: np.ndarray,
             successes_treatment: np.ndarray, n_treatment: np.ndarray) -> np.ndarray:
    """Pooled two-proportion z statistic (treatment minus control), elementwise on arrays.

    The statistic of ``statsmodels.stats.proportion.proportions_ztest`` with the treatment as
    the first sample; ``nan`` where the pooled rate is 0 or 1 (no variance to compare). Counts
    must be finite whole numbers with ``0 <= successes <= n`` and ``n >= 1`` everywhere, else a
    ``ValueError`` says which.
    """
    s_c, n_c = _count_arrays(successes_control, n_control, "control")
    s_t, n_t = _count_arrays(successes_treatment, n_treatment, "treatment")
    pooled = (s_c + s_t) / (n_c + n_t)
    variance = pooled * (1 - pooled) * (1 / n_c + 1 / n_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(variance > 0, (s_t / n_t - s_c / n_c) / np.sqrt(variance), np.nan)


def cohens_h(rate_control: float, rate_treatment: float) -> float:
    """Cohen's h, ``2 asin sqrt(p_t) - 2 asin sqrt(p_c)``: the effect size of two proportions.

    Taught in lesson 07; equal to ``statsmodels.stats.proportion.proportion_effectsize``.
    """
    for rate, name in ((rate_control, "rate_control"), (rate_treatment, "rate_treatment")):
        if not 0 <= rate <= 1:
            raise ValueError(f"{name} must be between 0 and 1, got {rate}.")
    return float(2 * np.arcsin(np.sqrt(rate_treatment)) - 2 * np.arcsin(np.sqrt(rate_control)))


@dataclass(frozen=True)
class ProportionsTest:
    """Result of :func:`two_proportions` (treatment compared with control).

    Attributes
    ----------
    rate_control, rate_treatment
        Observed conversion rates.
    difference, ci
        ``rate_treatment - rate_control`` and its Wald (unpooled) confidence interval
        ``(low, high)``.
    lift, lift_ci
        Relative lift ``rate_treatment / rate_control - 1`` and its delta-method CI.
    z, p_value
        Pooled two-sided z-test of equal rates.
    cohens_h
        Effect size (:func:`cohens_h`).
    alpha
        The level; the intervals cover ``1 - alpha``.
    """

    rate_control: float
    rate_treatment: float
    difference: float
    ci: tuple[float, float]
    lift: float
    lift_ci: tuple[float, float]
    z: float
    p_value: float
    cohens_h: float
    alpha: float

    @property
    def significant(self) -> bool:
        """``p_value < alpha``."""
        return self.p_value < self.alpha


def two_proportions(successes_control: int, n_control: int, successes_treatment: int,
                    n_treatment: int, alpha: float = 0.05) -> ProportionsTest:
    """Compare two conversion rates: z-test, CI of the difference, relative lift.

    Taught in lesson 07. The test pools the two groups under the null hypothesis of equal rates
    (the z and p-value of ``statsmodels.stats.proportion.proportions_ztest``); the interval of the
    difference does not pool (Wald, ``confint_proportions_2indep(method="wald")``). The relative
    lift's interval uses the delta method on ``p_t / p_c``:
    ``Var ~ p_t(1-p_t)/(n_t p_c^2) + p_t^2 p_c(1-p_c)/(n_c p_c^4)``. Because the three answer
    slightly different questions, near the boundary one can call the result significant and
    another not.

    Parameters
    ----------
    successes_control, n_control, successes_treatment, n_treatment
        Converted users and users per group.
    alpha
        Level of the test; the intervals have coverage ``1 - alpha``.

    Returns
    -------
    ProportionsTest
    """
    alpha = check_alpha(alpha)
    s_c, n_c = _check_group(successes_control, n_control, "control")
    s_t, n_t = _check_group(successes_treatment, n_treatment, "treatment")
    p_c, p_t = s_c / n_c, s_t / n_t
    z = float(pooled_z(s_c, n_c, s_t, n_t))
    p_value = float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else 1.0
    if not math.isfinite(z):
        z = 0.0  # both groups converted all or none: no evidence of a difference
    crit = z_critical(alpha)
    se_diff = math.sqrt(p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t)
    difference = p_t - p_c
    if p_c > 0:
        lift = p_t / p_c - 1
        se_lift = math.sqrt(p_t * (1 - p_t) / (n_t * p_c**2)
                            + p_t**2 * (1 - p_c) / (n_c * p_c**3))
        lift_low, lift_high = lift - crit * se_lift, lift + crit * se_lift
    else:
        lift = lift_low = lift_high = math.nan  # no relative change from a rate of zero
    return ProportionsTest(p_c, p_t, difference,
                           (difference - crit * se_diff, difference + crit * se_diff), lift,
                           (lift_low, lift_high), z, p_value, cohens_h(p_c, p_t), alpha)


# --- means: Welch ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class MeansTest:
    """Result of :func:`welch` and :func:`welch_from_stats` (treatment compared with control).

    Attributes
    ----------
    mean_control, mean_treatment
        Group means.
    difference, ci
        ``mean_treatment - mean_control`` and its Welch confidence interval ``(low, high)``.
    t, df, p_value
        Welch's t statistic, its Welch-Satterthwaite degrees of freedom, two-sided p-value.
    cohens_d
        Difference over the pooled standard deviation.
    alpha
        The level; the interval covers ``1 - alpha``.
    """

    mean_control: float
    mean_treatment: float
    difference: float
    ci: tuple[float, float]
    t: float
    df: float
    p_value: float
    cohens_d: float
    alpha: float

    @property
    def significant(self) -> bool:
        """``p_value < alpha``."""
        return self.p_value < self.alpha


def welch_from_stats(mean_control: float, std_control: float, n_control: int,
                     mean_treatment: float, std_treatment: float, n_treatment: int,
                     alpha: float = 0.05) -> MeansTest:
    """Welch's t-test from summary statistics (sample standard deviations, ``ddof=1``).

    Taught in lesson 07. Welch does not assume equal variances: each group's variance enters
    with its own size, ``se = sqrt(s_c^2/n_c + s_t^2/n_t)``. Student's pooled test is wrong
    exactly when A/B tests are unbalanced (a 90/10 split) *and* the treatment changes the spread:
    then its false positive rate is far from alpha. The same numbers as
    ``scipy.stats.ttest_ind_from_stats(..., equal_var=False)``.

    Returns
    -------
    MeansTest
    """
    alpha = check_alpha(alpha)
    n_c, n_t = check_count(n_control, "n_control"), check_count(n_treatment, "n_treatment")
    if n_c < 2 or n_t < 2:
        raise ValueError(f"each group needs at least 2 observations for a variance, got "
                         f"n_control={n_c}, n_treatment={n_t}.")
    values = (mean_control, std_control, mean_treatment, std_treatment)
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"means and standard deviations must be finite, got {values}.")
    if std_control < 0 or std_treatment < 0:
        raise ValueError("standard deviations must be non-negative.")
    var_c, var_t = std_control**2 / n_c, std_treatment**2 / n_t
    se = math.sqrt(var_c + var_t)
    if se == 0:
        raise ValueError("both groups have zero variance: the t statistic is undefined.")
    difference = mean_treatment - mean_control
    t = difference / se
    df = (var_c + var_t) ** 2 / (var_c**2 / (n_c - 1) + var_t**2 / (n_t - 1))
    p_value = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.isf(alpha / 2, df)) * se
    pooled_sd = math.sqrt(((n_c - 1) * std_control**2 + (n_t - 1) * std_treatment**2)
                          / (n_c + n_t - 2))
    cohens_d = difference / pooled_sd
    return MeansTest(float(mean_control), float(mean_treatment), float(difference),
                     (float(difference - half), float(difference + half)), float(t), float(df),
                     p_value, float(cohens_d), alpha)


def _sample(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity: drop or fix those rows first.")
    if array.size < 2:
        raise ValueError(f"{name} needs at least 2 observations, got {array.size}.")
    return array


def welch(control: Sequence[float] | np.ndarray, treatment: Sequence[float] | np.ndarray,
          alpha: float = 0.05) -> MeansTest:
    """Welch's t-test on two samples (see :func:`welch_from_stats`); taught in lesson 07.

    The same numbers as ``scipy.stats.ttest_ind(treatment, control, equal_var=False)``.
    """
    control, treatment = _sample(control, "control"), _sample(treatment, "treatment")
    return welch_from_stats(control.mean(), control.std(ddof=1), control.size,
                            treatment.mean(), treatment.std(ddof=1), treatment.size, alpha)


# --- sample size and power ------------------------------------------------------------------------

@dataclass(frozen=True)
class SampleSize:
    """Result of :func:`sample_size`.

    Attributes
    ----------
    n_control, n_treatment, total
        Users needed per group (rounded up) and in all.
    effect, effect_size
        The effect asked for (absolute difference) and its standardised size (Cohen's h for
        proportions, Cohen's d for means).
    metric
        ``"proportion"`` or ``"mean"``.
    alpha, power, ratio
        The design: level, power, ``n_treatment / n_control``.
    """

    n_control: int
    n_treatment: int
    total: int
    effect: float
    effect_size: float
    metric: str
    alpha: float
    power: float
    ratio: float


@dataclass(frozen=True)
class DetectableEffect:
    """Result of :func:`minimum_detectable_effect`.

    Attributes
    ----------
    effect
        Smallest absolute difference detected with the given power (rate or mean units).
    relative
        The same as a share of the baseline rate (``nan`` for means).
    effect_size
        Standardised (Cohen's h or d).
    metric, n_control, alpha, power, ratio
        The design.
    """

    effect: float
    relative: float
    effect_size: float
    metric: str
    n_control: int
    alpha: float
    power: float
    ratio: float


def _design(baseline_rate: float | None, std: float | None) -> str:
    if (baseline_rate is None) == (std is None):
        raise TypeError("give exactly one of baseline_rate= (a conversion rate: proportions) or "
                        "std= (the metric's standard deviation: means).")
    return "proportion" if baseline_rate is not None else "mean"


def _effect_size(effect: float, baseline_rate: float | None, std: float | None,
                 relative: bool) -> tuple[float, float, str]:
    metric = _design(baseline_rate, std)
    if isinstance(effect, bool) or not isinstance(effect, (int, float, np.floating)):
        raise TypeError(f"effect must be a number, got {effect!r}.")
    if effect == 0 or not math.isfinite(effect):
        raise ValueError(f"effect must be a finite non-zero difference, got {effect}: a zero "
                         "effect needs infinitely many users.")
    if metric == "proportion":
        baseline_rate = check_rate(baseline_rate, "baseline_rate")
        absolute = effect * baseline_rate if relative else float(effect)
        check_rate(baseline_rate + absolute, "baseline_rate + effect (the treatment's rate)")
        return absolute, cohens_h(baseline_rate, baseline_rate + absolute), metric
    if relative:
        raise ValueError("relative=True needs a baseline_rate; give means as absolute effects.")
    std = check_positive(std, "std")
    return float(effect), float(effect) / std, metric


def _solver(metric: str) -> sm_power.NormalIndPower | sm_power.TTestIndPower:
    return sm_power.NormalIndPower() if metric == "proportion" else sm_power.TTestIndPower()


def sample_size(effect: float, *, baseline_rate: float | None = None, std: float | None = None,
                alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0,
                relative: bool = False) -> SampleSize:
    """Users per group needed to detect ``effect`` with the given power (two-sided test).

    Taught in lesson 07. Proportions: give ``baseline_rate``; the effect is the difference of
    rates (or, with ``relative=True``, a share of the baseline: ``0.1`` is a 10 % lift) and is
    measured by Cohen's h with ``statsmodels``' ``NormalIndPower``. Means: give ``std``; the
    effect is a difference of means, measured by Cohen's d with ``TTestIndPower``. ``ratio`` is
    ``n_treatment / n_control``.

    Returns
    -------
    SampleSize
    """
    alpha, power = check_alpha(alpha), _check_power(power)
    ratio = check_positive(ratio, "ratio")
    absolute, size, metric = _effect_size(effect, baseline_rate, std, relative)
    n_control = float(_solver(metric).solve_power(effect_size=abs(size), alpha=alpha, power=power,
                                                  ratio=ratio, alternative="two-sided"))
    n_c = math.ceil(n_control - 1e-9)
    n_t = math.ceil(n_control * ratio - 1e-9)
    return SampleSize(n_c, n_t, n_c + n_t, absolute, size, metric, alpha, power, ratio)


def minimum_detectable_effect(n_control: int, *, baseline_rate: float | None = None,
                              std: float | None = None, alpha: float = 0.05,
                              power: float = 0.8, ratio: float = 1.0) -> DetectableEffect:
    """Smallest increase detected with the given power by ``n_control`` users per control group.

    Taught in lesson 07: the other way round from :func:`sample_size` (same solvers). For
    proportions the standardised size h is turned back into a rate above ``baseline_rate``.

    Returns
    -------
    DetectableEffect
    """
    alpha, power = check_alpha(alpha), _check_power(power)
    ratio = check_positive(ratio, "ratio")
    metric = _design(baseline_rate, std)
    n_control = check_count(n_control, "n_control")
    if n_control < 2:
        raise ValueError(f"n_control must be at least 2, got {n_control}.")
    size = float(_solver(metric).solve_power(effect_size=None, nobs1=n_control, alpha=alpha,
                                             power=power, ratio=ratio, alternative="two-sided"))
    if metric == "mean":
        std = check_positive(std, "std")
        return DetectableEffect(size * std, math.nan, size, metric, n_control, alpha, power,
                                ratio)
    baseline_rate = check_rate(baseline_rate, "baseline_rate")
    angle = size / 2 + math.asin(math.sqrt(baseline_rate))
    if angle >= math.pi / 2:
        raise ValueError(f"{n_control} users per group cannot detect any increase from "
                         f"{baseline_rate} with power {power}.")
    effect = math.sin(angle) ** 2 - baseline_rate
    return DetectableEffect(effect, effect / baseline_rate, size, metric, n_control, alpha,
                            power, ratio)


def achieved_power(effect: float, n_control: int, *, baseline_rate: float | None = None,
          std: float | None = None, alpha: float = 0.05, ratio: float = 1.0,
          relative: bool = False) -> float:
    """Probability that a two-sided test of ``n_control`` (and ``ratio * n_control``) users detects
    ``effect`` (taught in lesson 07; statsmodels' ``NormalIndPower`` / ``TTestIndPower``)."""
    alpha = check_alpha(alpha)
    ratio = check_positive(ratio, "ratio")
    n_control = check_count(n_control, "n_control")
    if n_control < 2:
        raise ValueError(f"n_control must be at least 2, got {n_control}.")
    _, size, metric = _effect_size(effect, baseline_rate, std, relative)
    return float(_solver(metric).power(effect_size=abs(size), nobs1=n_control, alpha=alpha,
                                       ratio=ratio, alternative="two-sided"))


# --- peeking and sequential testing ---------------------------------------------------------------

@dataclass(frozen=True)
class Looks:
    """Cumulative outcomes of many simulated experiments at each interim look.

    Attributes
    ----------
    successes_control, successes_treatment
        ``(n_experiments, looks)`` arrays: conversions so far at each look.
    n_per_group
        ``(looks,)`` array: users so far per group at each look (the same in both groups).
    """

    successes_control: np.ndarray = field(repr=False)
    successes_treatment: np.ndarray = field(repr=False)
    n_per_group: np.ndarray

    def z(self) -> np.ndarray:
        """Pooled z statistic of every experiment at every look."""
        return pooled_z(self.successes_control, self.n_per_group, self.successes_treatment,
                        self.n_per_group)


def simulate_looks(rng: np.random.Generator, *, n_experiments: int, looks: int,
                   n_per_look: int, rate_control: float, rate_treatment: float) -> Looks:
    """Simulate ``n_experiments`` experiments observed at ``looks`` equally spaced moments.

    Between two looks each group gains ``n_per_look`` users; their conversions are binomial.
    Everything is drawn at once (no Python loop over experiments).
    """
    n_experiments = check_count(n_experiments, "n_experiments")
    looks = check_count(looks, "looks")
    n_per_look = check_count(n_per_look, "n_per_look")
    if min(n_experiments, looks, n_per_look) < 1:
        raise ValueError("n_experiments, looks and n_per_look must each be at least 1.")
    rate_control = check_rate(rate_control, "rate_control")
    rate_treatment = check_rate(rate_treatment, "rate_treatment")
    control = rng.binomial(n_per_look, rate_control, size=(n_experiments, looks)).cumsum(axis=1)
    treatment = rng.binomial(n_per_look, rate_treatment,
                             size=(n_experiments, looks)).cumsum(axis=1)
    return Looks(control, treatment, n_per_look * np.arange(1, looks + 1))


@dataclass(frozen=True)
class SequentialBounds:
    """Two-sided group-sequential boundaries from :func:`obrien_fleming_bounds`.

    Attributes
    ----------
    information
        Share of the final sample seen at each look (``t_k``).
    z
        Reject at look k when ``|Z_k| >= z[k]``.
    spent
        Cumulative alpha spent by look k (Lan-DeMets O'Brien-Fleming-type function).
    alpha
        Total level.
    """

    information: tuple[float, ...]
    z: tuple[float, ...]
    spent: tuple[float, ...]
    alpha: float

    @property
    def nominal_p(self) -> tuple[float, ...]:
        """The two-sided p-value each look must beat (``2 * (1 - Phi(z_k))``)."""
        return tuple(float(2 * stats.norm.sf(b)) for b in self.z)


def _spending(t: np.ndarray, alpha: float) -> np.ndarray:
    """Two-sided alpha spent by information ``t``: each side spends ``alpha / 2`` by
    ``2 - 2 Phi(z_{alpha/4} / sqrt(t))`` (the convention of gsDesign and ldbounds)."""
    return 4 * stats.norm.sf(stats.norm.isf(alpha / 4) / np.sqrt(t))


def _simpson_weights(n: int, step: float) -> np.ndarray:
    weights = np.ones(n)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    return weights * step / 3


def _exit_gap(z_bound: float, root_t: float, mass: np.ndarray, x: np.ndarray, scale: float,
              target: float) -> float:
    """Probability of first crossing ``|Z| >= z_bound`` at this look, minus ``target``."""
    b = z_bound * root_t
    return float(mass @ (stats.norm.cdf((-b - x) / scale) + stats.norm.sf((b - x) / scale))) \
        - target


def obrien_fleming_bounds(looks: int, alpha: float = 0.05, *,
                          information: Sequence[float] | None = None,
                          grid: int = 401) -> SequentialBounds:
    """Boundaries of an O'Brien-Fleming-type group-sequential test (Lan-DeMets alpha spending).

    Taught in lesson 07. The spending function says how much of the false positive budget may be
    used by information fraction ``t``: almost none early, nearly all at the end. Each side spends
    its ``alpha / 2`` by ``2 - 2 Phi(z_{alpha/4} / sqrt(t))``, so both together spend
    ``alpha(t) = 4 - 4 Phi(z_{alpha/4} / sqrt(t))`` (:func:`_spending`; the convention of gsDesign
    and ldbounds, whose published boundaries the tests reproduce: 4.877, 3.357, 2.680, 2.290,
    2.031 for five equally spaced looks at alpha 0.05). Each boundary ``z_k`` is
    solved so that the probability, under the null hypothesis, of first crossing at look k
    equals ``alpha(t_k) - alpha(t_{k-1})``.
    The z statistics at the looks behave like a Brownian motion ``B(t) = Z(t) sqrt(t)``; the
    density of the paths not yet stopped is carried from look to look on a grid (Simpson's rule),
    the recursion of Armitage, McPherson and Rowe (1969).

    Parameters
    ----------
    looks
        Number of analyses, the last one at the full sample.
    alpha
        Two-sided level of the whole design.
    information
        Information fractions of the looks (increasing, ending at 1); equally spaced by default.
    grid
        Points of the integration grid (odd).

    Returns
    -------
    SequentialBounds
    """
    alpha = check_alpha(alpha)
    looks = check_count(looks, "looks")
    if looks < 1:
        raise ValueError("looks must be at least 1.")
    t = (np.arange(1, looks + 1) / looks if information is None
         else np.asarray(information, dtype=float))
    if t.shape != (looks,) or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0) \
            or t[0] <= 0 or not math.isclose(t[-1], 1):
        raise ValueError(f"information must be {looks} increasing fractions in (0, 1] ending at "
                         f"1, got {t.tolist()}.")
    if grid < 11 or grid % 2 == 0:
        raise ValueError(f"grid must be an odd number >= 11, got {grid}.")
    spent = _spending(t, alpha)
    increments = np.diff(spent, prepend=0.0)
    bounds = [float(stats.norm.isf(increments[0] / 2))]
    # Sub-density of B(t_1) on the continuation region, on a grid.
    edge = bounds[0] * math.sqrt(t[0])
    x = np.linspace(-edge, edge, grid)
    density = stats.norm.pdf(x, scale=math.sqrt(t[0]))
    weights = _simpson_weights(grid, x[1] - x[0])
    for k in range(1, looks):
        scale = math.sqrt(t[k] - t[k - 1])
        mass = density * weights
        bound = optimize.brentq(_exit_gap, 1e-6, 40.0, xtol=1e-12,
                                args=(math.sqrt(t[k]), mass, x, scale, increments[k]))
        bounds.append(float(bound))
        edge = bound * math.sqrt(t[k])
        y = np.linspace(-edge, edge, grid)
        kernel = np.exp(-0.5 * ((y[:, None] - x[None, :]) / scale) ** 2) / (
            scale * math.sqrt(2 * math.pi))
        density, x = kernel @ mass, y
        weights = _simpson_weights(grid, x[1] - x[0])
    return SequentialBounds(tuple(float(v) for v in t), tuple(bounds),
                            tuple(float(s) for s in spent), alpha)


@dataclass(frozen=True)
class PeekingResult:
    """Result of :func:`peeking_simulation`.

    Attributes
    ----------
    method
        ``"naive"`` (reject at the first look with ``p < alpha``), ``"obrien_fleming"``
        (reject at the first look beyond the group-sequential boundary) or ``"bayes"`` (ship at
        the first look where P(treatment beats control) >= ``1 - alpha``).
    looks, n_per_look, n_experiments, alpha
        The simulation.
    rejection_rate
        Share of experiments stopped with a "significant" result at some look: the false positive
        rate when there is no effect, the power otherwise.
    standard_error
        Binomial standard error of ``rejection_rate``.
    rejected_by_look
        Cumulative share rejected by each look.
    """

    method: str
    looks: int
    n_per_look: int
    n_experiments: int
    alpha: float
    rejection_rate: float
    standard_error: float
    rejected_by_look: tuple[float, ...]


def _first_rejection(reject: np.ndarray) -> np.ndarray:
    """Cumulative share of rows with at least one True up to each column."""
    return np.logical_or.accumulate(reject, axis=1).mean(axis=0)


def _beats_probability(a_c: np.ndarray, b_c: np.ndarray, a_t: np.ndarray,
                       b_t: np.ndarray, nodes: int = 48, panels: int = 2) -> np.ndarray:
    """P(p_t > p_c) for independent Beta posteriors, elementwise (Gauss-Legendre quadrature).

    Integrates ``f_t(x) F_c(x)`` between the treatment posterior's ``1e-16`` and ``1 - 1e-16``
    quantiles, in ``panels`` equal panels of ``nodes`` points. Accurate to about 1e-12 when both
    parameters of the treatment's posterior are at least 1 (any prior of at least Beta(1, 1)).
    """
    shape = np.broadcast(a_c, b_c, a_t, b_t).shape
    a_c, b_c, a_t, b_t = (np.broadcast_to(np.asarray(v, float), shape).ravel()
                          for v in (a_c, b_c, a_t, b_t))
    low, high = stats.beta.ppf(1e-16, a_t, b_t), stats.beta.isf(1e-16, a_t, b_t)
    nodes_x, nodes_w = np.polynomial.legendre.leggauss(nodes)
    # scipy.special's ufuncs are compiled, so pylint cannot see them (hence the no-member notes);
    # they skip scipy.stats' per-call argument checks, which cost more than the arithmetic here.
    log_norm = special.betaln(a_t, b_t)[:, None]  # pylint: disable=no-member
    edges = low[:, None] + (high - low)[:, None] * np.linspace(0, 1, panels + 1)[None, :]
    total = np.zeros(low.size)
    for panel in range(panels):
        left, right = edges[:, panel:panel + 1], edges[:, panel + 1:panel + 2]
        x = (right - left) / 2 * nodes_x[None, :] + (right + left) / 2
        pdf = np.exp((a_t[:, None] - 1) * np.log(x) + (b_t[:, None] - 1) * np.log1p(-x)
                     - log_norm)
        cdf = special.betainc(a_c[:, None], b_c[:, None], x)  # pylint: disable=no-member
        total += ((right - left)[:, 0] / 2) * ((pdf * cdf) @ nodes_w)
    return np.clip(total, 0.0, 1.0).reshape(shape)


def peeking_simulation(rng: np.random.Generator, *, looks: int, n_experiments: int = 10_000,
                       n_per_look: int = 500, rate_control: float = 0.1,
                       rate_treatment: float | None = None, alpha: float = 0.05,
                       method: str = "naive") -> PeekingResult:
    """Simulate experiments analysed at ``looks`` interim looks and stopped at the first "win".

    Taught in lesson 07. With ``rate_treatment`` equal to ``rate_control`` (the default: an A/A
    test) the rejection rate is the false positive rate. Looking with the fixed-sample test at
    every look (``method="naive"``) inflates it -- about 0.14 at 5 looks and 0.19 at 10
    (Armitage, McPherson and Rowe, 1969); the O'Brien-Fleming-type boundaries of
    :func:`obrien_fleming_bounds` keep it at alpha; stopping when the Bayesian probability of
    beating control reaches ``1 - alpha`` (``method="bayes"``, uniform priors) inflates it too.

    Returns
    -------
    PeekingResult
    """
    alpha = check_alpha(alpha)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}.")
    rate_treatment = rate_control if rate_treatment is None else rate_treatment
    data = simulate_looks(rng, n_experiments=n_experiments, looks=looks, n_per_look=n_per_look,
                          rate_control=rate_control, rate_treatment=rate_treatment)
    if method == "bayes":
        n = data.n_per_group[None, :]
        chance = _beats_probability(1 + data.successes_control, 1 + n - data.successes_control,
                                    1 + data.successes_treatment,
                                    1 + n - data.successes_treatment)
        reject = chance >= 1 - alpha
    else:
        z = np.abs(np.nan_to_num(data.z(), nan=0.0))
        bound = (np.full(looks, z_critical(alpha)) if method == "naive"
                 else np.asarray(obrien_fleming_bounds(looks, alpha).z))
        reject = z >= bound[None, :]
    by_look = _first_rejection(reject)
    rate = float(by_look[-1])
    return PeekingResult(method, int(looks), int(n_per_look), int(n_experiments), alpha, rate,
                         math.sqrt(rate * (1 - rate) / n_experiments),
                         tuple(float(v) for v in by_look))


# --- Bayesian summary ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BeatsControl:
    """Result of :func:`probability_treatment_beats_control`.

    Attributes
    ----------
    probability
        Posterior P(rate_treatment > rate_control).
    posterior_control, posterior_treatment
        Beta(a, b) parameters of each posterior.
    expected_lift
        Posterior mean of ``rate_treatment - rate_control``.
    """

    probability: float
    posterior_control: tuple[float, float]
    posterior_treatment: tuple[float, float]
    expected_lift: float


def probability_treatment_beats_control(successes_control: int, n_control: int,
                                        successes_treatment: int, n_treatment: int, *,
                                        prior: tuple[float, float] = (1.0, 1.0)
                                        ) -> BeatsControl:
    """Posterior probability that the treatment's rate is higher, under Beta priors.

    Taught in lesson 07. With a Beta(a, b) prior, a rate with s successes in n trials has a
    Beta(a + s, b + n - s) posterior; the probability is ``integral f_t(x) F_c(x) dx``, computed
    by Gauss-Legendre quadrature (to about 1e-11 for integer priors such as the uniform
    Beta(1, 1); to about 1e-6 for fractional ones). It is a summary, not a stopping rule:
    stopping the first time it reaches 95 % inflates the errors like any other peeking (see
    :func:`peeking_simulation`).

    Returns
    -------
    BeatsControl
    """
    s_c, n_c = _check_group(successes_control, n_control, "control")
    s_t, n_t = _check_group(successes_treatment, n_treatment, "treatment")
    if len(prior) != 2:
        raise ValueError(f"prior must be two Beta parameters (a, b), got {prior!r}.")
    a = check_positive(prior[0], "the prior's a")
    b = check_positive(prior[1], "the prior's b")
    post_c, post_t = (a + s_c, b + n_c - s_c), (a + s_t, b + n_t - s_t)
    probability = float(_beats_probability(*post_c, *post_t, panels=8))
    lift = post_t[0] / sum(post_t) - post_c[0] / sum(post_c)
    return BeatsControl(probability, post_c, post_t, float(lift))


# --- several metrics -----------------------------------------------------------------------------

@dataclass(frozen=True)
class MetricVerdict:
    """One metric of :func:`adjust_metrics`."""

    metric: str
    p_value: float
    p_adjusted: float
    significant: bool


def adjust_metrics(p_values: Mapping[str, float], correction: str = "holm",
                   alpha: float = 0.05) -> tuple[MetricVerdict, ...]:
    """Correct the p-values of several metrics of one experiment (lesson 07).

    ``holm`` controls the chance of any false positive among the metrics; ``fdr_bh``
    (Benjamini-Hochberg) the expected share of false positives among those called significant.
    The arithmetic is :func:`labsupport.monitoring.adjust_p_values`.
    """
    alpha = check_alpha(alpha)
    if not isinstance(p_values, Mapping) or not p_values:
        raise TypeError("p_values must be a non-empty mapping metric name -> p-value.")
    adjusted = monitoring.adjust_p_values(list(p_values.values()), correction)
    return tuple(MetricVerdict(str(name), float(p), float(q), bool(q < alpha))
                 for (name, p), q in zip(p_values.items(), adjusted))


# --- the decision ------------------------------------------------------------------------------

def decide(srm: SRMCheck, test: ProportionsTest) -> str:
    """The decision rule of lesson 07: SRM first, then significance, then the interval."""
    if srm.mismatch:
        return (f"do not read: sample ratio mismatch (p = {srm.p_value:.2g} < {srm.alpha}); "
                "find the cause first")
    low, high = test.ci
    if test.significant:
        better = "better" if test.difference > 0 else "worse"
        return (f"treatment {better}: p = {test.p_value:.3g}, difference in "
                f"[{low:+.4f}, {high:+.4f}]")
    return (f"not significant (p = {test.p_value:.3g}): the difference is somewhere in "
            f"[{low:+.4f}, {high:+.4f}], no evidence either way")


# --- reading a logged split (lesson 07) -------------------------------------------------------

@dataclass(frozen=True)
class ABRead:
    """The checks of :func:`read_ab` on a logged A/B split: SRM first, then the test.

    The unit is the user: ``test`` compares the share of users whose answers were all right,
    control (the baseline) against treatment (the candidate).
    """

    srm: SRMCheck
    test: ProportionsTest
    users: Mapping[str, int]

    @property
    def decision(self) -> str:
        """The decision rule of :func:`decide`, in words."""
        return decide(self.srm, self.test)


def read_ab(outcomes, treatment_share: float = 0.5, alpha: float = 0.05) -> ABRead:
    """Read an A/B outcome log (``labsupport.rollout.ABSplit``) with lesson 07's checks.

    A user counts as a success when every request they sent was answered right
    (``outcome == 1``); a user is one unit, however many requests they sent, so the units are
    independent as the z-test assumes (requests of the same user are not).

    Parameters
    ----------
    outcomes
        A pandas DataFrame with one row per user and the columns ``variant`` (``"control"`` or
        ``"treatment"``) and ``outcome`` (the share of the user's requests answered right).
    treatment_share
        The designed share of users in the treatment, for the sample-ratio check.
    alpha
        The level of the two-proportion test.
    """
    needed = {"variant", "outcome"}
    if not hasattr(outcomes, "groupby") or not needed <= set(getattr(outcomes, "columns", ())):
        raise ValueError(f"outcomes must be the ABSplit log (a DataFrame) with columns "
                         f"{sorted(needed)}.")
    check_rate(treatment_share, "treatment_share")
    success = outcomes["outcome"] >= 1.0
    users = {variant: int((outcomes["variant"] == variant).sum())
             for variant in ("control", "treatment")}
    if min(users.values()) == 0:
        raise ValueError(f"both variants need users, got {users}.")
    right = {variant: int(success[outcomes["variant"] == variant].sum()) for variant in users}
    srm = srm_check(users, {"control": 1.0 - treatment_share, "treatment": treatment_share})
    test = two_proportions(right["control"], users["control"], right["treatment"],
                           users["treatment"], alpha=alpha)
    return ABRead(srm, test, users)
