"""Model comparison for CI workflows: evaluate, compare candidate with baseline (lesson 05).

A pull request that retrains a model should say, in its checks, whether the new model (the
*candidate*) is worse than the one it would replace (the *baseline*). This module does the
arithmetic behind that check, on plain dictionaries of metrics, so the same functions serve a
notebook, a test and the ``labsupport model ...`` commands a workflow runs.

* :func:`evaluate` scores a trained model on a labelled test set: accuracy, precision, recall and
  F1 of the positive class, the counts each one is a proportion of, the size of the model file on
  disk, and how long prediction took (measured, not assumed).
* :func:`paired_comparison` is the gate a pull request needs: baseline and candidate scored on
  the *same* rows, compared row by row (McNemar's idea: only the rows where exactly one of the two
  is right carry information), one-sided with a stated margin. The candidate passes unless its
  accuracy is credibly worse than the baseline's by more than the margin: the burden of proof is
  on the harm (a non-inferiority test proper reverses it, see :func:`paired_comparison`).
  :func:`gate_failure_probability` says how often that gate fails for a given true change.
* :func:`compare` works on summary metrics only (no per-row predictions): it treats the two
  scores as independent samples, which on a shared test set overstates the noise of the
  difference; use it only when the predictions are not at hand.
* :func:`to_markdown` renders the comparison as the table a workflow posts on the pull request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from numbers import Real
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

#: The metrics every evaluation reports and every comparison checks, in table order.
METRICS = ("accuracy", "precision", "recall", "f1")
#: How each metric reads in a table.
LABELS = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1"}
#: The count each metric is a proportion of (its sampling error shrinks with this count).
DENOMINATORS = {"accuracy": "n_test", "precision": "n_predicted_positive",
                "recall": "n_positive", "f1": "n_f1"}


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of the positive class (1), with their counts.

    Besides the four metrics (equal to scikit-learn's, with ``zero_division=0``) the result holds
    the counts their sampling errors need: ``n_test`` rows, ``n_positive`` true positives + false
    negatives (recall's denominator), ``n_predicted_positive`` (precision's) and ``n_f1``, the
    mean of the two (F1 = TP / mean(actual positives, predicted positives)).

    Parameters
    ----------
    y_true, y_pred
        True and predicted labels, 0 or 1, of equal length (at least one).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise ValueError(f"y_true and y_pred must be non-empty 1-d sequences of equal length, got "
                         f"shapes {y_true.shape} and {y_pred.shape}.")
    unknown = set(np.unique(np.concatenate([y_true, y_pred])).tolist()) - {0, 1}
    if unknown:
        raise ValueError(f"labels must be 0 or 1 (binary classification), found {sorted(unknown)}.")
    # From the confusion counts (the same numbers as scikit-learn's functions, tested), because a
    # notebook scores hundreds of small test sets and each sklearn call re-validates its input.
    n_positive, n_predicted = int(y_true.sum()), int(y_pred.sum())
    true_positives = int(((y_true == 1) & (y_pred == 1)).sum())
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "precision": true_positives / n_predicted if n_predicted else 0.0,
        "recall": true_positives / n_positive if n_positive else 0.0,
        "f1": 2 * true_positives / (n_positive + n_predicted) if n_positive + n_predicted else 0.0,
        "n_test": int(len(y_true)),
        "n_positive": n_positive,
        "n_predicted_positive": n_predicted,
        "n_f1": (n_positive + n_predicted) / 2,
    }


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` measured: the metrics with their counts, the file size, timings.

    ``train_seconds`` is the time the training command measured (None when unknown);
    ``predict_seconds`` is the best of the timed prediction runs over the whole test set.
    """

    metrics: Mapping[str, float]
    model_size_bytes: int
    predict_seconds: float
    train_seconds: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        """The flat dictionary the ``evaluate`` command writes as JSON."""
        return {**self.metrics, "model_size_bytes": self.model_size_bytes,
                "predict_seconds": self.predict_seconds, "train_seconds": self.train_seconds}


def evaluate(model: object, test: pd.DataFrame, label: str, model_file: Path | str, *,
             train_seconds: float | None = None, repeats: int = 3) -> Evaluation:
    """Score ``model`` on ``test`` and measure what a pull request should know about it.

    The chapter's ``compare_models`` script writes ``model_size_mb: 1.5`` whatever the model and
    reports the time of *prediction* as "training time". Here the size is the model file's real
    size on disk and the two timings are kept apart: prediction is timed here, training where it
    happened (pass it as ``train_seconds``).

    Parameters
    ----------
    model
        Anything with ``predict(frame)`` returning 0/1 labels (e.g. ``pipeline.Model``).
    test
        Labelled test rows; the model sees them without the ``label`` column.
    label
        The name of the label column.
    model_file
        The file the model was saved to (its size is reported).
    train_seconds
        Training time measured by whoever trained the model, or None.
    repeats
        Prediction is timed this many times; the fastest run is reported (least disturbed by
        other work on the machine).
    """
    if label not in test.columns:
        raise ValueError(f"the test set has no label column {label!r}; "
                         f"it has {list(test.columns)}.")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}.")
    size = Path(model_file).stat().st_size
    features = test.drop(columns=[label])
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        predicted = model.predict(features)
        timings.append(time.perf_counter() - start)
    return Evaluation(metrics=classification_metrics(test[label].to_numpy(), predicted),
                      model_size_bytes=int(size), predict_seconds=min(timings),
                      train_seconds=train_seconds)


def check_metrics(metrics: object, name: str) -> dict[str, float]:
    """Return ``metrics`` as a dict after checking it has every metric of :data:`METRICS`.

    Raises ``ValueError`` naming what is missing or not a number between 0 and 1.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{name} metrics must be a mapping such as {{'accuracy': 0.9, ...}}, got "
                        f"{type(metrics).__name__}.")
    missing = [metric for metric in METRICS if metric not in metrics]
    if missing:
        raise ValueError(f"{name} metrics lack {missing}; expected all of {list(METRICS)} "
                         "(the output of `labsupport model evaluate`).")
    for metric in METRICS:
        value = metrics[metric]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} {metric} must be a number between 0 and 1, got {value!r}.")
    return dict(metrics)


def _count(metrics: Mapping[str, float], metric: str) -> float | None:
    value = metrics.get(DENOMINATORS[metric])
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _standard_error(baseline: Mapping[str, float], candidate: Mapping[str, float],
                    metric: str) -> float:
    """Standard error of candidate - baseline, each a proportion over its own count.

    Treats the two as independent samples: on one shared test set the two models' mistakes are
    correlated, which makes the real error of the difference smaller, so this errs on the side of
    calling a drop noise. Zero when a count is unknown (then only the tolerance decides).
    """
    variance = 0.0
    for metrics in (baseline, candidate):
        count = _count(metrics, metric)
        if count is None:
            return 0.0
        p = metrics[metric]
        variance += p * (1 - p) / count
    return math.sqrt(variance)


@dataclass(frozen=True)
class MetricChange:
    """One row of a :class:`Comparison`.

    ``p_value`` tests "the candidate is worse than the baseline by more than the tolerance";
    ``regression`` is True when it is below ``alpha`` (with a zero standard error, when the drop
    exceeds the tolerance).
    """

    metric: str
    baseline: float
    candidate: float
    change: float
    standard_error: float
    p_value: float
    regression: bool


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare`: one :class:`MetricChange` per metric and the verdict."""

    changes: tuple[MetricChange, ...]
    tolerance: float
    alpha: float
    baseline: Mapping[str, float]
    candidate: Mapping[str, float]

    @property
    def regressions(self) -> tuple[str, ...]:
        """The metrics on which the candidate is worse beyond the tolerance."""
        return tuple(change.metric for change in self.changes if change.regression)

    @property
    def passed(self) -> bool:
        """True when no metric regressed: the candidate may replace the baseline."""
        return not self.regressions

    @property
    def verdict(self) -> str:
        """One sentence for the pull request."""
        if self.passed:
            return (f"passed: no metric is worse than the baseline by more than "
                    f"{self.tolerance:g} beyond its sampling error")
        return (f"failed: {', '.join(self.regressions)} worse than the baseline by more than "
                f"{self.tolerance:g} (one-sided test at alpha = {self.alpha:g})")

    def to_frame(self) -> pd.DataFrame:
        """The comparison as a table, one row per metric."""
        return pd.DataFrame([vars(change) for change in self.changes]).set_index("metric")


def compare(baseline: Mapping[str, float], candidate: Mapping[str, float], *,
            tolerance: float = 0.01, alpha: float = 0.05,
            metrics: Sequence[str] = METRICS) -> Comparison:
    """Compare a candidate's metrics with the baseline's and decide whether it regressed.

    For each metric the change is ``candidate - baseline``. Its standard error comes from the
    counts the metrics are proportions of (``n_test`` for accuracy, and so on; see
    :func:`classification_metrics`), and the drop is a regression when a one-sided z-test rejects
    "the true drop is at most ``tolerance``" at level ``alpha``. So a drop of two points on 300
    test rows is noise, while the same drop on 30,000 rows is not. Without counts the standard
    error is zero and the rule falls back to "drop larger than the tolerance".

    Parameters
    ----------
    baseline, candidate
        Metrics dictionaries as ``labsupport model evaluate`` writes them (extra keys ignored).
    tolerance
        The largest drop that is acceptable even if real (in metric units, e.g. 0.01).
    alpha
        The chance of calling a drop of exactly ``tolerance`` a regression.
    metrics
        Which metrics to check (default: all of :data:`METRICS`).
    """
    baseline = check_metrics(baseline, "baseline")
    candidate = check_metrics(candidate, "candidate")
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance}.")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}.")
    unknown = [metric for metric in metrics if metric not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty selection of {list(METRICS)}, got "
                         f"{list(metrics)}.")
    changes = []
    for metric in metrics:
        change = candidate[metric] - baseline[metric]
        error = _standard_error(baseline, candidate, metric)
        excess = -change - tolerance
        if error > 0:
            p_value = float(stats.norm.sf(excess / error))
        else:
            p_value = 0.0 if excess > 1e-12 else 1.0
        changes.append(MetricChange(metric=metric, baseline=baseline[metric],
                                    candidate=candidate[metric], change=change,
                                    standard_error=error, p_value=p_value,
                                    regression=p_value < alpha))
    return Comparison(changes=tuple(changes), tolerance=tolerance, alpha=alpha,
                      baseline=baseline, candidate=candidate)


@dataclass(frozen=True, repr=False)
class PairedComparison:
    """The outcome of :func:`paired_comparison` (see there for the test).

    ``baseline_only`` and ``candidate_only`` count the discordant rows (only the baseline, only
    the candidate right); ``standard_error`` is the paired standard error of :attr:`difference`
    (of the mean of the per-row differences); ``statistic`` is the score statistic of a drop
    beyond ``margin`` and ``p_value`` its one-sided p-value; :attr:`passed` is
    ``p_value >= alpha``.
    """

    n_rows: int
    baseline_accuracy: float
    candidate_accuracy: float
    baseline_only: int
    candidate_only: int
    standard_error: float
    statistic: float
    p_value: float
    margin: float
    alpha: float

    @property
    def difference(self) -> float:
        """Candidate minus baseline accuracy: ``(candidate_only - baseline_only) / n_rows``."""
        return (self.candidate_only - self.baseline_only) / self.n_rows

    @property
    def passed(self) -> bool:
        """True unless the candidate is credibly worse by more than the margin."""
        return self.p_value >= self.alpha

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"PairedComparison({verdict}: candidate {self.candidate_accuracy:.4f} vs "
                f"baseline {self.baseline_accuracy:.4f} on {self.n_rows} rows, difference "
                f"{self.difference:+.4f} (paired SE {self.standard_error:.4f}), discordant rows "
                f"{self.baseline_only} baseline-only / {self.candidate_only} candidate-only, "
                f"margin {self.margin:g}, p_value {self.p_value:.4g}, alpha {self.alpha:g})")


def _check_setting(value: object, name: str, low: float, high: float, closed: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}.")
    inside = low <= value < high if closed else low < value < high
    if not inside:
        interval = f"[{low:g}, {high:g})" if closed else f"({low:g}, {high:g})"
        raise ValueError(f"{name} must be in {interval}, got {value}.")
    return float(value)


def _score_test(baseline_only, candidate_only, n_rows, margin):
    """Tango's score statistic and one-sided p-value for "the true drop exceeds ``margin``".

    Works elementwise on arrays. The drop is ``(baseline_only - candidate_only) / n_rows``; its
    variance is taken at the restricted maximum-likelihood estimate of the candidate-only
    probability under "drop = margin" (the root of a quadratic). At margin 0 this is McNemar's
    statistic ``(b - c) / sqrt(b + c)``.
    """
    b = np.asarray(baseline_only, dtype=float)
    c = np.asarray(candidate_only, dtype=float)
    quadratic = -b - c + (2 * n_rows - b + c) * margin
    constant = -c * margin * (1 - margin)
    candidate_only_mle = (np.sqrt(quadratic ** 2 - 8 * n_rows * constant) - quadratic) \
        / (4 * n_rows)
    variance = n_rows * (2 * candidate_only_mle + margin * (1 - margin))
    excess = b - c - n_rows * margin
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(variance > 0, excess / np.sqrt(np.where(variance > 0, variance, 1)),
                             0.0)
    # No discordant row at margin 0: the two models agree everywhere, nothing suggests a drop.
    p_value = np.where(variance > 0, stats.norm.sf(statistic), 1.0)
    return statistic, p_value


def paired_comparison(y_true: Sequence, baseline_pred: Sequence, candidate_pred: Sequence, *,
                      margin: float = 0.02, alpha: float = 0.05) -> PairedComparison:
    """Gate a candidate model against the baseline, both scored on the same rows (lesson 05).

    Each row gives a pair of outcomes (baseline right?, candidate right?). Rows where both are
    right, or both wrong, say nothing about which model is better; the difference in accuracy is
    ``(candidate_only - baseline_only) / n`` over the *discordant* rows. Because both models meet
    the same rows, their errors are correlated and the difference is far less noisy than two
    independent accuracies would suggest (the unpaired ``sqrt(2) * SE`` overstates it).

    The question is one-sided with a stated ``margin``: the candidate fails only when its
    accuracy is credibly worse than the baseline's by more than ``margin`` (the burden of proof
    is on the harm; a non-inferiority test in the clinical sense takes the null "the drop is at
    least ``margin``" instead and passes only a candidate shown to be within it). The test is
    Tango's score test for paired proportions (Statistics in Medicine 17, 1998) of the null "true
    drop <= margin" against "true drop > margin", at level ``alpha``; at ``margin=0`` it is
    McNemar's test (chi-square form without continuity correction, one-sided). So an unchanged
    model fails at most about ``alpha`` of the time, less with a positive margin, and a drop of
    more than the margin is caught more often the more rows the test set has.

    Parameters
    ----------
    y_true
        The true labels of the test rows (any labels compared with ``==``).
    baseline_pred, candidate_pred
        Each model's predictions for the same rows, in the same order.
    margin
        The largest drop in accuracy accepted even if real, in [0, 1) (0.02: two points).
    alpha
        The test's nominal size: its chance of failing a candidate whose true drop is exactly
        ``margin`` when many rows are discordant. With few discordant rows the exact chance can
        be above it (:func:`gate_failure_probability` computes it; lesson 05 shows both).

    Returns
    -------
    PairedComparison
        Counts, accuracies, the difference with its paired standard error, the test, ``passed``.
    """
    margin = _check_setting(margin, "margin", 0.0, 1.0, closed=True)
    alpha = _check_setting(alpha, "alpha", 0.0, 1.0, closed=False)
    arrays = [np.asarray(values) for values in (y_true, baseline_pred, candidate_pred)]
    if any(array.ndim != 1 for array in arrays) or len({array.shape for array in arrays}) != 1 \
            or arrays[0].size == 0:
        raise ValueError("y_true, baseline_pred and candidate_pred must be non-empty 1-d "
                         "sequences of one length (the same test rows, in the same order); got "
                         f"shapes {[array.shape for array in arrays]}.")
    truth, baseline, candidate = arrays
    baseline_right, candidate_right = baseline == truth, candidate == truth
    n_rows = int(truth.size)
    baseline_only = int((baseline_right & ~candidate_right).sum())
    candidate_only = int((candidate_right & ~baseline_right).sum())
    difference = (candidate_only - baseline_only) / n_rows
    discordant_share = (baseline_only + candidate_only) / n_rows
    standard_error = math.sqrt(max(discordant_share - difference ** 2, 0.0) / n_rows)
    statistic, p_value = _score_test(baseline_only, candidate_only, n_rows, margin)
    return PairedComparison(
        n_rows=n_rows, baseline_accuracy=float(baseline_right.mean()),
        candidate_accuracy=float(candidate_right.mean()), baseline_only=baseline_only,
        candidate_only=candidate_only, standard_error=standard_error,
        statistic=float(statistic), p_value=float(p_value), margin=margin, alpha=alpha)


def gate_failure_probability(baseline_only: float, candidate_only: float, n_rows: int, *,
                             margin: float = 0.02, alpha: float = 0.05) -> float:
    """The exact probability that :func:`paired_comparison` fails a candidate.

    Test rows are drawn independently; each is baseline-only right with probability
    ``baseline_only``, candidate-only right with probability ``candidate_only`` (so the true drop
    in accuracy is their difference). The counts then follow a trinomial distribution, and the
    result sums its probabilities over every outcome the gate fails: the false-alarm rate when
    the true drop is at most the margin, the detection rate when it is larger.

    Parameters
    ----------
    baseline_only, candidate_only
        Per-row probabilities of the two kinds of discordant row (non-negative, sum at most 1).
    n_rows
        Rows in the test set (at most 5,000: the sum runs over every pair of counts).
    margin, alpha
        As in :func:`paired_comparison`.
    """
    margin = _check_setting(margin, "margin", 0.0, 1.0, closed=True)
    alpha = _check_setting(alpha, "alpha", 0.0, 1.0, closed=False)
    for name, value in (("baseline_only", baseline_only), ("candidate_only", candidate_only)):
        _check_setting(value, name, 0.0, 1.0 + 1e-12, closed=True)
    if baseline_only + candidate_only > 1 + 1e-12:
        raise ValueError("baseline_only + candidate_only is the share of discordant rows and "
                         f"cannot exceed 1, got {baseline_only + candidate_only}.")
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) \
            or not 1 <= n_rows <= 5000:
        raise ValueError(f"n_rows must be a whole number from 1 to 5000, got {n_rows!r}.")
    # Only counts with a marginal probability above 1e-13 matter (the rest adds less than 1e-12):
    # summing over that window instead of every pair keeps large test sets fast.
    windows = []
    for share in (baseline_only, candidate_only):
        low, high = stats.binom.ppf(1e-13, n_rows, share), stats.binom.isf(1e-13, n_rows, share)
        low = 0 if not np.isfinite(low) else int(max(low - 1, 0))
        high = n_rows if not np.isfinite(high) else int(min(high + 1, n_rows))
        windows.append(np.arange(low, high + 1))
    b, c = windows[0][:, None], windows[1][None, :]
    possible = b + c <= n_rows
    # Trinomial probabilities: b given n, then c given the rest (binomial densities, vectorised).
    rest = np.maximum(n_rows - b, 0)
    share_c = min(candidate_only / (1 - baseline_only), 1.0) if baseline_only < 1 else 0.0
    probability = stats.binom.pmf(b, n_rows, baseline_only) \
        * np.where(possible, stats.binom.pmf(np.minimum(c, rest), rest, share_c), 0.0)
    _, p_value = _score_test(b, c, n_rows, margin)
    return float(np.sum(probability[possible & (p_value < alpha)]))


def _detail(name: str, baseline: object, candidate: object, unit: str, scale: float) -> str:
    def shown(value: object) -> str:
        return f"{value * scale:.3g} {unit}" if isinstance(value, (int, float)) else "unknown"
    return f"- {name}: baseline {shown(baseline)}, candidate {shown(candidate)}"


def to_markdown(comparison: Comparison) -> str:
    """The comparison as the Markdown a workflow posts on the pull request.

    A table (metric, baseline, candidate, change, the noise band of ±2 standard errors, verdict)
    under a heading that gives the decision, then the test-set size, the model files' sizes and
    the measured prediction and training times when the metrics carry them.
    """
    mark = "✅" if comparison.passed else "❌"
    lines = [f"## {mark} Model comparison: {comparison.verdict}", "",
             "| Metric | Baseline | Candidate | Change | Noise (±2 SE) | Verdict |",
             "|---|---:|---:|---:|---:|---|"]
    for change in comparison.changes:
        verdict = "regression" if change.regression else "ok"
        lines.append(f"| {LABELS[change.metric]} | {change.baseline:.3f} | "
                     f"{change.candidate:.3f} | {change.change:+.3f} | "
                     f"±{2 * change.standard_error:.3f} | {verdict} |")
    base, cand = comparison.baseline, comparison.candidate
    lines += ["", f"Tolerance {comparison.tolerance:g}, one-sided test at alpha = "
                  f"{comparison.alpha:g}.", "",
              _detail("Test rows", base.get("n_test"), cand.get("n_test"), "rows", 1),
              _detail("Model file", base.get("model_size_bytes"), cand.get("model_size_bytes"),
                      "kB", 1e-3),
              _detail("Prediction time (whole test set)", base.get("predict_seconds"),
                      cand.get("predict_seconds"), "ms", 1e3),
              _detail("Training time", base.get("train_seconds"), cand.get("train_seconds"),
                      "s", 1)]
    return "\n".join(lines) + "\n"
