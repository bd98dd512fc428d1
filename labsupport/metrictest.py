"""How often a model-performance test fails: the binomial behind ``accuracy >= threshold``.

Taught in lesson 03 (``notebooks/03_testing_ml_code.ipynb``, section 3, flaky tests). An accuracy
measured on ``n_rows`` rows drawn at random is a count of correct rows divided by ``n_rows``; for a
model whose accuracy on the whole population is ``p`` that count is Binomial(``n_rows``, ``p``).
So the test "accuracy >= threshold" fails with a probability the binomial gives exactly
(:func:`failure_probability`): for an unchanged model it is the test's **false-alarm rate**, for a
model that really lost accuracy it is the test's **power** to catch the loss. Both move with the
threshold and with ``n_rows``; a threshold placed a number of standard errors under the expected
accuracy (:func:`margin_bar`) fixes the false-alarm rate, and only more rows buy power at that
rate.

:func:`simulate` measures the same by running the test on evaluation sets drawn from a pool of
per-row outcomes, and :func:`degrade` makes the outcomes of a model that lost accuracy, so the
lesson checks the formula against the runs it stands for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


def _check_rows(n_rows: int) -> int:
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
        raise ValueError(f"n_rows must be a whole number of rows >= 1, got {n_rows!r}")
    return int(n_rows)


def _check_share(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    return float(value)


def passing_count(threshold: float, n_rows: int) -> int:
    """The fewest correct rows out of ``n_rows`` for which ``accuracy >= threshold`` holds.

    Computed as the test computes it, in floating point (``k / n_rows >= threshold``): with
    ``threshold`` 0.14 and 50 rows, 7 correct rows pass (7 / 50 == 0.14), although ``0.14 * 50``
    is 7.000000000000001 and a naive ``ceil`` would ask for 8.
    """
    threshold, n_rows = _check_share(threshold, "threshold"), _check_rows(n_rows)
    count = math.ceil(threshold * n_rows)
    while count > 0 and (count - 1) / n_rows >= threshold:
        count -= 1
    while count <= n_rows and count / n_rows < threshold:
        count += 1
    return count


def failure_probability(true_accuracy, threshold: float, n_rows: int):
    """Probability that ``accuracy >= threshold`` fails on ``n_rows`` rows drawn at random.

    Parameters
    ----------
    true_accuracy
        The model's accuracy on the population the rows are drawn from: a number or an array.
    threshold
        The test's threshold.
    n_rows
        Rows in the evaluation set.

    Returns
    -------
    float or numpy.ndarray
        P(K < :func:`passing_count`), K ~ Binomial(``n_rows``, ``true_accuracy``); an array of the
        shape of ``true_accuracy`` when it is one.
    """
    accuracy = np.asarray(true_accuracy, dtype=float)
    if accuracy.size == 0 or not np.all((accuracy >= 0.0) & (accuracy <= 1.0)):
        raise ValueError(f"true_accuracy must hold numbers between 0 and 1, got {true_accuracy!r}")
    probability = stats.binom.cdf(passing_count(threshold, n_rows) - 1, _check_rows(n_rows),
                                  accuracy)
    return float(probability) if accuracy.ndim == 0 else probability


def standard_error(accuracy: float, n_rows: int) -> float:
    """Standard error of an accuracy measured on ``n_rows`` rows: sqrt(p (1 - p) / n)."""
    accuracy = _check_share(accuracy, "accuracy")
    return math.sqrt(accuracy * (1.0 - accuracy) / _check_rows(n_rows))


def margin_bar(expected_accuracy: float, n_rows: int, n_standard_errors: float) -> float:
    """A threshold ``n_standard_errors`` standard errors under ``expected_accuracy`` (n rows)."""
    if not isinstance(n_standard_errors, (int, float)) or not n_standard_errors >= 0:
        raise ValueError(f"n_standard_errors must be a number >= 0, got {n_standard_errors!r}")
    return expected_accuracy - n_standard_errors * standard_error(expected_accuracy, n_rows)


def degrade(correct, drop: float, rng: np.random.Generator) -> np.ndarray:
    """Per-row outcomes of a model that lost ``drop`` of accuracy on the same rows.

    ``round(drop * len(correct))`` rows the model got right, chosen at random, become wrong, so the
    pool's accuracy falls by ``drop`` (to the nearest row).
    """
    correct = _check_outcomes(correct)
    drop = _check_share(drop, "drop")
    right = np.flatnonzero(correct)
    lost = round(drop * correct.size)
    if lost > right.size:
        raise ValueError(f"a drop of {drop} needs {lost} correct rows to lose; the pool has "
                         f"{right.size}")
    degraded = correct.copy()
    degraded[rng.choice(right, size=lost, replace=False)] = False
    return degraded


def _check_outcomes(correct) -> np.ndarray:
    correct = np.asarray(correct)
    if correct.ndim != 1 or correct.size == 0 or not (
            correct.dtype == bool or np.isin(correct, (0, 1)).all()):
        raise ValueError("correct must be a non-empty 1-d array of per-row outcomes "
                         "(True where the model was right)")
    return correct.astype(bool)


@dataclass(frozen=True)
class Simulation:
    """The test ``accuracy >= threshold`` run on many evaluation sets (:func:`simulate`).

    Attributes
    ----------
    accuracies
        The accuracy measured on each evaluation set.
    threshold
        The test's threshold.
    n_rows
        Rows per evaluation set.
    """

    accuracies: np.ndarray
    threshold: float
    n_rows: int

    @property
    def failures(self) -> int:
        """Evaluation sets on which the test failed."""
        return int(np.sum(self.accuracies < self.threshold))

    @property
    def failure_rate(self) -> float:
        """Share of evaluation sets on which the test failed."""
        return self.failures / self.accuracies.size

    @property
    def standard_error(self) -> float:
        """Standard error of :attr:`failure_rate` (from the measured rate).

        It is 0 when no set failed (or all did), although a rate measured as 0 on a few hundred
        sets is not known to be 0: show :meth:`interval` then.
        """
        rate = self.failure_rate
        return math.sqrt(rate * (1.0 - rate) / self.accuracies.size)

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Wilson score interval of the failure probability (scipy's ``binomtest``).

        Unlike ``rate ± standard error`` it stays honest at 0 failures: 0 of 200 gives an upper
        end of 0.0188, ``z² / (n + z²)``. The "rule of three" is another bound, not this one:
        the exact one-sided 95 % bound for 0 of ``n``, ``1 - 0.05 ** (1 / n)``, about ``3 / n``
        (0.0149 for 200), is a little lower than Wilson's two-sided 95 % upper end.
        """
        confidence = _check_share(confidence, "confidence")
        interval = stats.binomtest(self.failures, self.accuracies.size).proportion_ci(
            confidence_level=confidence, method="wilson")
        return float(interval.low), float(interval.high)

    def p_value(self, probability: float) -> float:
        """Exact two-sided binomial test of "the test fails with ``probability``".

        Small when the measured failures are further from ``probability`` than the sampling error
        of :attr:`accuracies`.size runs explains (scipy's ``binomtest``).
        """
        probability = _check_share(probability, "probability")
        return float(stats.binomtest(self.failures, self.accuracies.size, probability).pvalue)

    def __repr__(self) -> str:
        low, high = self.interval()
        return (f"Simulation(fails on {self.failures} of {self.accuracies.size} evaluation sets "
                f"of {self.n_rows} rows: {self.failure_rate:.3f}, 95 % interval "
                f"{low:.3f} to {high:.3f})")


def simulate(correct, threshold: float, n_rows: int, n_sets: int,
             rng: np.random.Generator) -> Simulation:
    """Run ``accuracy >= threshold`` on ``n_sets`` evaluation sets of ``n_rows`` rows of a pool.

    Rows are drawn with replacement from ``correct`` (True where the model was right), so each
    set's count of correct rows is Binomial(``n_rows``, pool accuracy): :func:`failure_probability`
    of the pool's accuracy is what the measured failure rate estimates.
    """
    correct = _check_outcomes(correct)
    threshold = _check_share(threshold, "threshold")
    n_rows, n_sets = _check_rows(n_rows), _check_rows(n_sets)
    draws = rng.integers(0, correct.size, size=(n_sets, n_rows))
    return Simulation(correct[draws].mean(axis=1), threshold, n_rows)
