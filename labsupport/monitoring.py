"""Monitoring: test every column of a batch for drift, and act on what the tests say.

Taught in lesson 02 (``notebooks/02_data_drift.ipynb``), after the single-column detectors of
:mod:`labsupport.drift`. Three pieces:

- :func:`adjust_p_values` -- Bonferroni and Benjamini-Hochberg corrections for testing many
  columns at once (the same numbers as ``statsmodels.stats.multitest.multipletests``);
- :func:`drift_report` -- one test per column and a data-set verdict by share of drifted columns;
- :class:`DriftMonitor` -- watches a stream of batches, measures drift and (when labels arrive)
  accuracy, retrains when a rule fires, and records every decision with its reason.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import accuracy_score

from labsupport import drift

CORRECTIONS = ("none", "bonferroni", "holm", "fdr_bh")


def adjust_p_values(p_values: Sequence[float], correction: str = "fdr_bh") -> np.ndarray:
    """Adjust p-values for testing several columns at once (same names as statsmodels).

    ``bonferroni`` multiplies each p-value by the number of tests m (family-wise error control);
    ``holm`` multiplies the i-th smallest by m - i + 1 and makes the result monotone (the same
    family-wise control, never less powerful; lesson 07 uses it for several A/B metrics);
    ``fdr_bh`` (Benjamini-Hochberg) multiplies the i-th smallest by m / i and makes the result
    monotone (false-discovery-rate control); ``none`` returns them unchanged. Capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; choose one of {CORRECTIONS}.")
    if p.ndim != 1 or p.size == 0 or np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p_values must be a non-empty 1-D list of numbers between 0 and 1.")
    m = p.size
    if correction == "none":
        return p.copy()
    if correction == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p)
    if correction == "holm":
        monotone = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    else:
        scaled = p[order] * m / np.arange(1, m + 1)
        monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(monotone, 1.0)
    return adjusted


@dataclass(frozen=True)
class ColumnDrift:
    """One row of a :class:`DriftReport`."""

    column: str
    test: str
    statistic: float
    p_value: float
    p_adjusted: float
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift tests with a multiple-testing correction and a data-set verdict.

    A column drifted when its adjusted p-value is below ``alpha``; the data set drifted when
    the share of drifted columns is at least ``share_threshold``.
    """

    columns: tuple[ColumnDrift, ...]
    alpha: float
    correction: str
    share_threshold: float

    @property
    def n_drifted(self) -> int:
        """How many columns drifted."""
        return sum(c.drifted for c in self.columns)

    @property
    def drift_share(self) -> float:
        """Share of the columns that drifted."""
        return self.n_drifted / len(self.columns)

    @property
    def dataset_drifted(self) -> bool:
        """True when at least ``share_threshold`` of the columns drifted."""
        return self.drift_share >= self.share_threshold

    def to_frame(self) -> pd.DataFrame:
        """One row per column: test, statistic, p_value, p_adjusted, drifted."""
        return pd.DataFrame([asdict(c) for c in self.columns]).set_index("column")

    def __str__(self) -> str:
        verdict = "DRIFT" if self.dataset_drifted else "no drift"
        return (f"{verdict}: {self.n_drifted} of {len(self.columns)} columns drifted "
                f"(share {self.drift_share:.2f}, threshold {self.share_threshold:.2f}; "
                f"alpha {self.alpha}, correction {self.correction})")


def _check_frames(reference: pd.DataFrame, current: pd.DataFrame,
                  columns: Sequence[str] | None) -> list[str]:
    for name, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}.")
        if frame.empty:
            raise ValueError(f"{name} has no rows or no columns.")
    if columns is None:
        missing = [c for c in reference.columns if c not in current.columns]
        extra = [c for c in current.columns if c not in reference.columns]
        if missing or extra:
            raise ValueError(f"reference and current must have the same columns; missing from "
                             f"current: {missing}, not in reference: {extra}. Pass columns=[...] "
                             "to compare a subset.")
        return list(reference.columns)
    columns = list(columns)
    absent = [c for c in columns if c not in reference.columns or c not in current.columns]
    if not columns or absent:
        raise ValueError(f"columns must be a non-empty list present in both frames; "
                         f"not found: {absent}.")
    return columns


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _column_tests(reference: pd.DataFrame, current: pd.DataFrame, names: list[str],
                  n_jobs: int | None) -> dict[str, drift.DetectorResult]:
    """KS for numeric columns (in threads: numpy's sort releases the GIL), chi-square otherwise."""
    numeric = []
    for name in names:
        kinds = (_is_numeric(reference[name]), _is_numeric(current[name]))
        if kinds[0] != kinds[1]:
            raise TypeError(f"column {name!r} is numeric in one frame and not in the other "
                            f"({reference[name].dtype} vs {current[name].dtype}).")
        numeric.append(kinds[0])

    def run(index: int) -> drift.DetectorResult:
        name = names[index]
        test = drift.ks_test if numeric[index] else drift.chi_square_test
        try:
            return test(reference[name].to_numpy(), current[name].to_numpy())
        except (TypeError, ValueError) as error:
            raise type(error)(f"column {name!r}: {error}") from error

    workers = max(1, min(n_jobs or os.cpu_count() or 1, len(names)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(names, pool.map(run, range(len(names)))))


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, *, alpha: float = 0.05,
                 correction: str = "fdr_bh", share_threshold: float = 0.5,
                 columns: Sequence[str] | None = None,
                 n_jobs: int | None = None) -> DriftReport:
    """Test every column for drift: KS for numeric columns, chi-square for the others.

    Parameters
    ----------
    reference, current
        The data the model was built on, and the new batch (same columns).
    alpha
        Significance level applied to the adjusted p-values.
    correction
        ``"fdr_bh"`` (Benjamini-Hochberg, default), ``"bonferroni"`` or ``"none"``.
    share_threshold
        The data set counts as drifted when at least this share of columns drifted.
    columns
        Columns to test (default: all, and both frames must have the same ones).
    n_jobs
        Threads that run the column tests (default: all cores). Results do not depend on it.

    Returns
    -------
    DriftReport
        Per-column results (``.to_frame()``) and the data-set verdict.

    Raises
    ------
    TypeError
        If a frame is not a DataFrame, or a column is numeric in one frame and not the other.
    ValueError
        On empty frames, mismatched columns, missing values or a bad parameter.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}.")
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; choose one of {CORRECTIONS}.")
    if not 0.0 < share_threshold <= 1.0:
        raise ValueError(f"share_threshold must lie in (0, 1], got {share_threshold}.")
    names = _check_frames(reference, current, columns)
    results = _column_tests(reference, current, names, n_jobs)
    adjusted = adjust_p_values([results[name].p_value for name in names], correction)
    rows = tuple(ColumnDrift(name, results[name].test, results[name].statistic,
                             results[name].p_value, float(p_adj), bool(p_adj < alpha))
                 for name, p_adj in zip(names, adjusted))
    return DriftReport(rows, alpha, correction, share_threshold)


# --- acting on drift -----------------------------------------------------------------------------

ACTIONS = ("keep", "alert", "retrain")


@dataclass(frozen=True)
class Assessment:
    """What one batch looks like next to the reference, and how the model does on it.

    ``accuracy`` is NaN when the batch has no labels.
    """

    report: DriftReport
    accuracy: float

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """Names of the columns whose adjusted p-value fell below alpha."""
        return tuple(c.column for c in self.report.columns if c.drifted)


def assess(model: object, reference: pd.DataFrame, current: pd.DataFrame, *,
           features: Sequence[str], target: str | None = None, alpha: float = 0.05,
           correction: str = "fdr_bh", share_threshold: float = 0.5) -> Assessment:
    """Drift report of ``current[features]`` against ``reference[features]``, plus the model's
    accuracy on ``current`` when ``target`` is given and present in ``current``."""
    report = drift_report(reference[list(features)], current[list(features)], alpha=alpha,
                          correction=correction, share_threshold=share_threshold)
    accuracy = math.nan
    if target is not None and target in current.columns:
        accuracy = float(accuracy_score(current[target], model.predict(current[list(features)])))
    return Assessment(report, accuracy)


@dataclass(frozen=True)
class RetrainRule:
    """When a :class:`DriftMonitor` retrains, checked on each batch in this order:

    1. labels present and accuracy below ``min_accuracy`` -> ``retrain``
       (``min_accuracy=None``: never retrain on accuracy);
    2. the data set drifted (share of drifted features >= ``drift_share_threshold``, tested at
       ``alpha`` with ``correction``) -> ``retrain`` if ``retrain_on_drift`` and labels are
       present, else ``alert``. Off by default: drift that does not hurt accuracy is worth an
       alert, not a new model;
    3. otherwise ``keep``.
    """

    min_accuracy: float | None = 0.8
    drift_share_threshold: float = 0.5
    retrain_on_drift: bool = False
    alpha: float = 0.05
    correction: str = "fdr_bh"

    def __post_init__(self) -> None:
        if self.min_accuracy is not None and not 0.0 <= self.min_accuracy <= 1.0:
            raise ValueError(f"min_accuracy must lie in [0, 1] or be None, "
                             f"got {self.min_accuracy}.")
        if not 0.0 < self.drift_share_threshold <= 1.0:
            raise ValueError(f"drift_share_threshold must lie in (0, 1], "
                             f"got {self.drift_share_threshold}.")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie strictly between 0 and 1, got {self.alpha}.")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"unknown correction {self.correction!r}; "
                             f"choose one of {CORRECTIONS}.")

    def decide(self, assessment: Assessment, labelled: bool) -> tuple[str, str]:
        """The action (one of :data:`ACTIONS`) and the reason, in words."""
        report, accuracy = assessment.report, assessment.accuracy
        drift_text = (f"drift in {list(assessment.drifted_columns)} "
                      f"(share {report.drift_share:.2f})")
        if labelled and self.min_accuracy is not None and accuracy < self.min_accuracy:
            return "retrain", f"accuracy {accuracy:.3f} < {self.min_accuracy}"
        if report.dataset_drifted and self.retrain_on_drift and labelled:
            return "retrain", drift_text
        if report.dataset_drifted:
            why = (f"accuracy {accuracy:.3f} still acceptable" if labelled
                   else "no labels to measure accuracy or retrain")
            return "alert", f"{drift_text}; {why}"
        if labelled:
            return "keep", f"no data-set drift, accuracy {accuracy:.3f}"
        return "keep", "no data-set drift (no labels)"


@dataclass(frozen=True)
class Decision:
    """One line of the monitor's log: what it saw in a batch and what it did about it."""

    batch: int
    n_rows: int
    drift_share: float
    accuracy: float
    action: str
    reason: str


class DriftMonitor:
    """Watch batches of production data; retrain when the rule fires; log every decision.

    Retraining fits a fresh copy of the model (``sklearn.base.clone``) on the last ``window``
    labelled batches, then makes those rows the new reference. The accuracy logged for a batch is
    always that of the model in service *before* the batch was used for training: scoring a
    model on the rows it was just fitted on says nothing.

    Parameters
    ----------
    model
        A fitted classifier with ``predict`` (and ``fit`` if it may be retrained).
    reference
        The rows the model was trained on (at least the ``features`` columns).
    features, target
        Feature columns, and the label column when a batch carries labels.
    rule
        When to retrain or alert (:class:`RetrainRule`).
    window
        How many recent labelled batches a retraining uses. One (the default) retrains on the
        batch that revealed the problem only, so rows from before a change do not dilute it.
        The window restarts at each retraining (it then holds just that batch): batches from
        before a retraining belong to the world the old model was fitted on.
    """

    def __init__(self, model: object, reference: pd.DataFrame, *, features: Sequence[str],
                 target: str = "y", rule: RetrainRule | None = None, window: int = 1) -> None:
        self.features = list(features)
        missing = [c for c in self.features if c not in reference.columns]
        if not self.features or missing:
            raise ValueError(f"features must be non-empty columns of reference; missing {missing}.")
        if int(window) != window or window < 1:
            raise ValueError(f"window must be a positive whole number, got {window}.")
        self.model = model
        self.reference = reference[self.features].reset_index(drop=True)
        self.target = target
        self.rule = rule or RetrainRule()
        self.decisions: list[Decision] = []
        self._recent: deque[pd.DataFrame] = deque(maxlen=int(window))

    def observe(self, batch: pd.DataFrame) -> Decision:
        """Assess one batch, apply the rule, retrain if it says so, and log the decision."""
        if not isinstance(batch, pd.DataFrame):
            raise TypeError(f"a batch must be a pandas DataFrame, got {type(batch).__name__}.")
        missing = [c for c in self.features if c not in batch.columns]
        if missing:
            raise ValueError(f"batch {len(self.decisions)} lacks feature columns {missing}.")
        labelled = self.target in batch.columns and bool(batch[self.target].notna().all())
        assessment = assess(self.model, self.reference, batch, features=self.features,
                            target=self.target if labelled else None, alpha=self.rule.alpha,
                            correction=self.rule.correction,
                            share_threshold=self.rule.drift_share_threshold)
        if labelled:
            self._recent.append(batch)
        action, reason = self.rule.decide(assessment, labelled)
        if action == "retrain":
            training = pd.concat(self._recent, ignore_index=True)
            self.model = clone(self.model).fit(training[self.features], training[self.target])
            self.reference = training[self.features]
            self._recent.clear()
            self._recent.append(batch)
        decision = Decision(len(self.decisions), len(batch), assessment.report.drift_share,
                            assessment.accuracy, action, reason)
        self.decisions.append(decision)
        return decision

    def run(self, batches: Iterable[pd.DataFrame]) -> pd.DataFrame:
        """Observe every batch in turn; return the whole log (:meth:`log`)."""
        for batch in batches:
            self.observe(batch)
        return self.log()

    def log(self) -> pd.DataFrame:
        """The decisions so far, one row per batch."""
        columns = [f.name for f in fields(Decision)]
        return pd.DataFrame([asdict(d) for d in self.decisions], columns=columns)


def split_batches(stream: pd.DataFrame, column: str = "batch") -> list[pd.DataFrame]:
    """The batches of a stream (see :func:`labsupport.drift.sample_stream`), in order."""
    if column not in stream.columns:
        raise ValueError(f"the stream has no {column!r} column to split on.")
    return [group.drop(columns=column).reset_index(drop=True)
            for _, group in stream.groupby(column, sort=True)]


def retrained_batches(rule: RetrainRule, seed: int, *, n: int = 400,
                      layout: tuple[int, int, int] = (3, 4, 3), covariate_strength: float = 0.25,
                      concept_strength: float = 1.0) -> list[int]:
    """The batches a :class:`DriftMonitor` under ``rule`` retrains on, over a synthetic stream.

    Used by lesson 02's exercise (question 4), whose notebook and tests call it with different
    seeds and layouts. A random forest is fitted on ``2 n`` reference rows of
    :func:`labsupport.drift.sample`; the stream then holds ``layout[0]`` batches like the
    reference, ``layout[1]`` with harmless covariate drift of ``covariate_strength`` (the inputs
    move, the labelling rule does not) and ``layout[2]`` in which the concept changed with
    ``concept_strength`` (0: it did not), ``n`` labelled rows each, all drawn from
    ``numpy.random.default_rng(seed)``.

    Returns
    -------
    list of int
        The indices (from 0) of the batches on which the monitor retrained.
    """
    # Imported here: only this replay needs a model class (the monitor itself takes any model).
    from sklearn.ensemble import RandomForestClassifier  # pylint: disable=import-outside-toplevel
    if not isinstance(rule, RetrainRule):
        raise TypeError(f"rule must be a RetrainRule, got {type(rule).__name__}.")
    if len(layout) != 3 or any(isinstance(k, bool) or not isinstance(k, int) or k < 0
                               for k in layout):
        raise ValueError(f"layout counts (normal, covariate, concept) batches as three "
                         f"non-negative integers, got {layout!r}.")
    rng = np.random.default_rng(seed)
    reference = drift.sample("concept", 2 * n, rng)
    model = RandomForestClassifier(n_estimators=30, random_state=0)
    model.fit(reference[list(drift.FEATURES)], reference["y"])
    normal, covariate, concept = layout
    stream = ([drift.sample("concept", n, rng) for _ in range(normal)]
              + [drift.sample("covariate", n, rng, covariate_strength) for _ in range(covariate)]
              + [drift.sample("concept", n, rng, concept_strength) for _ in range(concept)])
    monitor = DriftMonitor(model, reference, features=drift.FEATURES, rule=rule)
    log = monitor.run(stream)
    return log.index[log["action"] == "retrain"].tolist()
