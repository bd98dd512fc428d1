"""Data drift: simulate the three kinds of drift, and detect drift honestly.

Taught in lesson 02 (``notebooks/02_data_drift.ipynb``); every detector is first written out
there and checked against the version kept here.

The simulated world has two sensor-like features and a binary label::

    x1, x2 ~ N(0, 1), independent             (the reference P(X))
    y = 1  if  x2 > A * sin(x1)  else 0        (the reference P(y | X), A = BOUNDARY_AMPLITUDE)

so that P(y = 1) = 0.5 exactly (the boundary is odd in x1). Each generator moves one piece:

============  ==========================================  ======================================
kind          what moves                                  what stays fixed
============  ==========================================  ======================================
covariate     P(X): x1 ~ N(COVARIATE_SHIFT * s, 1)        P(y | X): the same labelling function
prior         P(y): P(y = 1) = 0.5 + PRIOR_SHIFT * s      P(X | y): rows drawn from the reference
                                                          class by class (so P(X) moves too)
concept       P(y | X): boundary x2 = A (1 - 2 s) sin x1  P(X): the reference distribution
============  ==========================================  ======================================

with ``s`` the drift strength in [0, 1]. At ``s = 1`` the concept boundary is mirrored.

Detectors return a :class:`DetectorResult`. Testing every column of a data frame at once, and
acting on the result, is :mod:`labsupport.monitoring`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import spatial, stats

FEATURES = ("x1", "x2")
TARGET = "y"
KINDS = ("covariate", "prior", "concept")
TRANSITIONS = ("abrupt", "gradual")

#: Amplitude of the reference decision boundary x2 = A sin(x1).
BOUNDARY_AMPLITUDE = 1.5
#: How far the mean of x1 moves at covariate strength 1 (in reference standard deviations).
COVARIATE_SHIFT = 3.0
#: How far P(y = 1) moves from 0.5 at prior strength 1.
PRIOR_SHIFT = 0.4
#: Proportion used in place of an empty bin by :func:`psi` and :func:`jensen_shannon`.
EPSILON = 1e-4
#: The usual reading of PSI: below 0.1 stable, 0.1 to 0.25 moderate shift, above 0.25 major shift.
PSI_THRESHOLD = 0.25
#: scipy's ks_2samp switches from the exact to the asymptotic p-value above this sample size.
_KS_EXACT_MAX_N = 10_000


# --- simulation ----------------------------------------------------------------------------------

def _check_strength(strength: float) -> float:
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must lie in [0, 1] (0 = no drift, 1 = full drift), "
                         f"got {strength}.")
    return float(strength)


def _check_size(n: int, name: str = "n") -> int:
    if int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive whole number, got {n}.")
    return int(n)


def boundary(x1: np.ndarray, concept_strength: float = 0.0) -> np.ndarray:
    """The decision boundary: a row is labelled 1 when its x2 lies above this curve.

    Parameters
    ----------
    x1
        Values of the first feature.
    concept_strength
        0 gives the reference boundary ``A sin(x1)``; 1 mirrors it to ``-A sin(x1)``.
    """
    strength = _check_strength(concept_strength)
    return BOUNDARY_AMPLITUDE * (1.0 - 2.0 * strength) * np.sin(np.asarray(x1, dtype=float))


def label(X: pd.DataFrame, concept_strength: float = 0.0) -> np.ndarray:
    """Labels of the simulated world for the rows of ``X`` (columns ``x1``, ``x2``)."""
    return (X["x2"].to_numpy() > boundary(X["x1"].to_numpy(), concept_strength)).astype(int)


def _features(n: int, rng: np.random.Generator, x1_mean: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"x1": rng.normal(x1_mean, 1.0, n), "x2": rng.normal(0.0, 1.0, n)})


def sample(kind: str, n: int, rng: np.random.Generator, strength: float = 0.0) -> pd.DataFrame:
    """Draw ``n`` labelled rows of the simulated world under one kind of drift.

    Parameters
    ----------
    kind
        ``"covariate"``, ``"prior"`` or ``"concept"`` (see the module docstring for exactly
        what each moves). At ``strength=0`` every kind gives the reference distribution.
    n
        Number of rows.
    rng
        Source of randomness.
    strength
        Drift strength in [0, 1].

    Returns
    -------
    pandas.DataFrame
        Columns ``x1``, ``x2`` (float) and ``y`` (0/1).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown drift kind {kind!r}; choose one of {KINDS}.")
    n, strength = _check_size(n), _check_strength(strength)
    if kind == "covariate":
        X = _features(n, rng, x1_mean=COVARIATE_SHIFT * strength)
        return X.assign(y=label(X))
    if kind == "concept":
        X = _features(n, rng)
        return X.assign(y=label(X, concept_strength=strength))
    # Prior shift: choose each row's class first, then draw its features from reference rows of
    # that class (rejection sampling), so that P(X | y) is exactly the reference one.
    n_positive = int(rng.binomial(n, 0.5 + PRIOR_SHIFT * strength))
    wanted = {1: n_positive, 0: n - n_positive}
    pools: dict[int, list[pd.DataFrame]] = {0: [], 1: []}
    while any(sum(map(len, pools[v])) < wanted[v] for v in (0, 1)):
        X = _features(2 * n + 16, rng)
        y = label(X)
        for value in (0, 1):
            pools[value].append(X[y == value])
    parts = [pd.concat(pools[v], ignore_index=True).iloc[:wanted[v]].assign(y=v) for v in (1, 0)]
    rows = pd.concat(parts, ignore_index=True)
    return rows.iloc[rng.permutation(n)].reset_index(drop=True)


def schedule(n_batches: int, start: float, transition: str = "abrupt", width: float = 1.0,
             strength: float = 1.0) -> np.ndarray:
    """Drift strength of each batch of a stream.

    ``abrupt``: 0 before batch ``start``, ``strength`` from it on. ``gradual``: a sigmoid
    ``strength / (1 + exp(-(t - start) / width))``, halfway at ``start``.
    """
    n_batches, strength = _check_size(n_batches, "n_batches"), _check_strength(strength)
    if transition not in TRANSITIONS:
        raise ValueError(f"unknown transition {transition!r}; choose one of {TRANSITIONS}.")
    t = np.arange(n_batches, dtype=float)
    if transition == "abrupt":
        return np.where(t >= start, strength, 0.0)
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}.")
    return strength / (1.0 + np.exp(-(t - start) / width))


def sample_stream(kind: str, n_batches: int, batch_size: int, rng: np.random.Generator, *,
                  start: float, transition: str = "abrupt", width: float = 1.0,
                  strength: float = 1.0) -> pd.DataFrame:
    """A stream of batches whose drift strength follows :func:`schedule`.

    Returns
    -------
    pandas.DataFrame
        Columns ``batch`` (0, 1, ...), ``x1``, ``x2``, ``y``; ``batch_size`` rows per batch.
    """
    strengths = schedule(n_batches, start, transition, width, strength)
    batches = [sample(kind, batch_size, rng, float(s)).assign(batch=index)
               for index, s in enumerate(strengths)]
    return pd.concat(batches, ignore_index=True)[["batch", *FEATURES, TARGET]]


# --- detectors -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DetectorResult:
    """The verdict of one detector on one column.

    ``p_value`` is NaN for distances (PSI, Wasserstein, Jensen-Shannon), which have no null
    distribution; their ``threshold`` is a cut-off on the statistic instead of an ``alpha``.
    ``note`` says what was done to the data (e.g. categories merged), or is empty.
    """

    test: str
    statistic: float
    p_value: float
    threshold: float
    drifted: bool
    note: str = ""


def _numeric(values: object, name: str) -> np.ndarray:
    """Values as a 1-D float array, or a clear error for empty, NaN or non-numeric input."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one column of values (1-D), got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty; a drift test needs at least one value.")
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} has dtype {array.dtype}; this test needs numbers. "
                        "Use chi_square_test (or jensen_shannon) for categorical data.")
    array = array.astype(float, copy=False)
    n_nan = int(np.isnan(array).sum())
    if n_nan:
        raise ValueError(f"{name} contains {n_nan} NaN value(s); drop or impute missing values "
                         "before testing for drift.")
    return array


def _categories(values: object, name: str) -> pd.Series:
    series = pd.Series(values)
    if series.empty:
        raise ValueError(f"{name} is empty; a drift test needs at least one value.")
    n_missing = int(series.isna().sum())
    if n_missing:
        raise ValueError(f"{name} contains {n_missing} missing value(s); drop them or make "
                         "'missing' a category of its own before testing for drift.")
    return series.astype(str)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}.")


def _ks_statistic(x: np.ndarray, y: np.ndarray) -> float:
    """KS statistic from the two samples, evaluated at every distinct data point.

    Equal to ``scipy.stats.ks_2samp(x, y).statistic``; works on sorted copies with integer
    arithmetic, which is what makes :func:`drift_report` fast.
    """
    n1, n2 = x.size, y.size
    a, b = np.sort(x), np.sort(y)
    largest = 0
    for own, other, n_own, n_other in ((a, b, n1, n2), (b, a, n2, n1)):
        below_other = np.searchsorted(other, own, side="right")
        gap = np.arange(1, n_own + 1) * n_other - below_other * n_own
        last_of_ties = np.empty(n_own, dtype=bool)
        last_of_ties[-1] = True
        np.not_equal(own[1:], own[:-1], out=last_of_ties[:-1])
        largest = max(largest, int(np.abs(gap[last_of_ties]).max()))
    return largest / (n1 * n2)


def ks_test(reference: object, current: object, alpha: float = 0.05) -> DetectorResult:
    """Two-sample Kolmogorov-Smirnov test of one numeric column.

    The statistic is the largest gap between the two empirical CDFs; drifted when
    ``p_value < alpha``. The result equals ``scipy.stats.ks_2samp`` with its default method: up
    to 10,000 values per sample scipy is called (exact p-value); above that, where scipy switches
    to the asymptotic distribution, the same statistic is computed from sorted copies without
    scipy's extra passes, and the p-value is scipy's ``kstwo.sf(D, round(n1 n2 / (n1 + n2)))``.
    """
    _check_alpha(alpha)
    ref, cur = _numeric(reference, "reference"), _numeric(current, "current")
    if max(ref.size, cur.size) <= _KS_EXACT_MAX_N:
        result = stats.ks_2samp(ref, cur)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    else:
        statistic = _ks_statistic(ref, cur)
        m, n = sorted((float(ref.size), float(cur.size)), reverse=True)
        p_value = float(np.clip(stats.kstwo.sf(statistic, np.round(m * n / (m + n))), 0, 1))
    return DetectorResult("ks", statistic, p_value, alpha, p_value < alpha)


def ks_test_columns(reference: object, current: object, alpha: float = 0.05) -> pd.DataFrame:
    """Two-sample KS test of every column of two 2-D arrays at once (many simulations, lesson 02).

    Column ``j`` of ``reference`` (shape ``(n_reference, m)``) is compared with column ``j`` of
    ``current`` (shape ``(n_current, m)``), all in one vectorised pass: this is what makes
    simulating thousands of A/A tests quick. The statistic equals :func:`ks_test`'s; the p-value
    is scipy's asymptotic one (``ks_2samp(..., method="asymp")``:
    ``kstwo.sf(D, round(n1 n2 / (n1 + n2)))``), which for a few hundred rows or more is close to
    the exact p-value :func:`ks_test` uses on small samples.

    Returns
    -------
    pandas.DataFrame
        One row per column: ``statistic``, ``p_value``, ``drifted`` (``p_value < alpha``).
    """
    _check_alpha(alpha)
    ref, cur = np.asarray(reference), np.asarray(current)
    if ref.ndim != 2 or cur.ndim != 2 or ref.shape[1] != cur.shape[1] or 0 in ref.shape + cur.shape:
        raise ValueError(f"reference and current must be non-empty 2-D arrays with the same number "
                         f"of columns, got shapes {ref.shape} and {cur.shape}.")
    ref, cur = _numeric(ref.ravel(), "reference").reshape(ref.shape), \
        _numeric(cur.ravel(), "current").reshape(cur.shape)
    n1, n2 = ref.shape[0], cur.shape[0]
    # One row per column (contiguous, so that sorting along it is fast), reference values first.
    both = np.ascontiguousarray(np.concatenate([ref, cur], axis=0).T)
    order = np.argsort(both, axis=1)
    values = np.take_along_axis(both, order, axis=1)
    # Walk up the pooled sorted values: the gap between the two empirical CDFs, in integer units
    # of 1 / (n1 n2), read only after the last of tied values.
    gap = np.cumsum(np.where(order < n1, n2, -n1), axis=1)
    last_of_ties = np.ones(values.shape, dtype=bool)
    last_of_ties[:, :-1] = values[:, 1:] != values[:, :-1]
    statistic = np.where(last_of_ties, np.abs(gap), 0).max(axis=1) / (n1 * n2)
    # The statistic takes few distinct values (multiples of 1 / (n1 n2)), and kstwo.sf is the
    # slow part: compute it once per distinct value.
    distinct, where = np.unique(statistic, return_inverse=True)
    p_value = np.clip(stats.kstwo.sf(distinct, np.round(n1 * n2 / (n1 + n2))), 0.0, 1.0)[where]
    return pd.DataFrame({"statistic": statistic, "p_value": p_value, "drifted": p_value < alpha})


def _merge_rare(table: pd.DataFrame, min_expected: float) -> tuple[pd.DataFrame, list[str]]:
    """Merge the rarest categories (columns of ``table``) until every expected count is large."""
    totals = table.sum(axis=0).sort_values(kind="stable")
    # Expected count of a cell = row total * column total / N; the smaller row is the binding one,
    # so a category is large enough when its total reaches ``needed``.
    needed = min_expected * totals.sum() / table.sum(axis=1).min()
    rare = [str(c) for c, total in totals.items() if total < needed]
    if not rare:
        return table, []
    others = [str(c) for c in totals.index if str(c) not in rare]
    while totals[rare].sum() < needed and others:
        rare.append(others.pop(0))
    merged = table.drop(columns=rare)
    merged["(merged rare)"] = table[rare].sum(axis=1)
    return merged, rare


def chi_square_test(reference: object, current: object, alpha: float = 0.05,
                    min_expected: float = 5.0) -> DetectorResult:
    """Chi-square test of homogeneity of one categorical column.

    Builds the 2 x K table of category counts (reference row, current row) and calls
    ``scipy.stats.chi2_contingency(table, correction=False)``.

    The chi-square approximation needs every expected count >= ``min_expected`` (the usual rule
    of five). Categories too rare for that are merged, rarest first, into one category
    ``"(merged rare)"`` (reported in ``note``); if fewer than two categories are left, a
    ``ValueError`` says the samples are too small to test.
    """
    _check_alpha(alpha)
    ref, cur = _categories(reference, "reference"), _categories(current, "current")
    table = pd.DataFrame({"reference": ref.value_counts(), "current": cur.value_counts()})
    table = table.fillna(0).T
    if table.shape[1] == 1:
        # One and the same category everywhere: there is no distribution that could have moved.
        return DetectorResult("chi2", 0.0, 1.0, alpha, False,
                              "a single category in both samples: nothing to compare")
    table, merged = _merge_rare(table, min_expected)
    if table.shape[1] < 2:
        raise ValueError(
            f"Too few observations for a chi-square test: after merging categories with an "
            f"expected count below {min_expected}, only {table.shape[1]} category is left. "
            "Collect more data or compare fewer categories.")
    result = stats.chi2_contingency(table.to_numpy(), correction=False)
    note = f"merged {len(merged)} rare categories: {merged}" if merged else ""
    p_value = float(result.pvalue)
    return DetectorResult("chi2", float(result.statistic), p_value, alpha, p_value < alpha, note)


def reference_bins(reference: object, n_bins: int = 10) -> np.ndarray:
    """Inner bin edges at the quantiles of the reference (repeated edges dropped).

    The outer bins are open, so current values beyond the reference range still land in the
    first or last bin. A value equal to an edge goes to the bin above it.
    """
    values = _numeric(reference, "reference")
    if int(n_bins) != n_bins or n_bins < 2:
        raise ValueError(f"n_bins must be a whole number >= 2, got {n_bins}.")
    inner = np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return np.unique(inner)


def bin_proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin defined by inner ``edges`` (``len(edges) + 1`` bins)."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return counts / values.size


def psi(reference: object, current: object, n_bins: int = 10,
        threshold: float = PSI_THRESHOLD) -> DetectorResult:
    """Population stability index of one numeric column.

    ``PSI = sum_b (c_b - r_b) * ln(c_b / r_b)`` over quantile bins of the reference
    (:func:`reference_bins`), where ``r_b`` and ``c_b`` are the reference and current shares of
    bin ``b``. An empty bin would make the logarithm infinite, so shares below :data:`EPSILON`
    are replaced by ``EPSILON``. Drifted when ``PSI > threshold``.
    """
    ref, cur = _numeric(reference, "reference"), _numeric(current, "current")
    edges = reference_bins(ref, n_bins)
    r = np.maximum(bin_proportions(ref, edges), EPSILON)
    c = np.maximum(bin_proportions(cur, edges), EPSILON)
    value = float(np.sum((c - r) * np.log(c / r)))
    return DetectorResult("psi", value, math.nan, threshold, value > threshold)


def wasserstein(reference: object, current: object, threshold: float = 0.1) -> DetectorResult:
    """Wasserstein (earth mover's) distance divided by the reference standard deviation.

    ``scipy.stats.wasserstein_distance(reference, current) / std(reference, ddof=1)``: how far,
    in reference standard deviations, mass has to move. Drifted when above ``threshold``.
    """
    ref, cur = _numeric(reference, "reference"), _numeric(current, "current")
    scale = float(np.std(ref, ddof=1)) if ref.size > 1 else 0.0
    if not scale > 0:
        raise ValueError("The reference has no spread (standard deviation 0 or a single value); "
                         "a normalised Wasserstein distance is undefined.")
    value = float(stats.wasserstein_distance(ref, cur)) / scale
    return DetectorResult("wasserstein", value, math.nan, threshold, value > threshold)


def jensen_shannon(reference: object, current: object, n_bins: int = 10,
                   threshold: float = 0.1) -> DetectorResult:
    """Jensen-Shannon distance (base 2, between 0 and 1) between two binned distributions.

    Numeric columns are binned at the reference quantiles (:func:`reference_bins`); any other
    column is compared category by category. Uses ``scipy.spatial.distance.jensenshannon``.
    """
    ref_array = np.asarray(reference)
    if ref_array.dtype.kind in "iuf":
        ref, cur = _numeric(reference, "reference"), _numeric(current, "current")
        edges = reference_bins(ref, n_bins)
        p, q = bin_proportions(ref, edges), bin_proportions(cur, edges)
    else:
        ref_c, cur_c = _categories(reference, "reference"), _categories(current, "current")
        shares = pd.DataFrame({"r": ref_c.value_counts(normalize=True),
                               "c": cur_c.value_counts(normalize=True)}).fillna(0.0)
        p, q = shares["r"].to_numpy(), shares["c"].to_numpy()
    value = float(spatial.distance.jensenshannon(p, q, base=2))
    return DetectorResult("jensen_shannon", value, math.nan, threshold, value > threshold)


NUMERIC_DETECTORS = {"ks": ks_test, "psi": psi, "wasserstein": wasserstein,
                     "jensen_shannon": jensen_shannon}


def detector_table(reference: pd.DataFrame, current: pd.DataFrame,
                   columns: Sequence[str] = FEATURES) -> pd.DataFrame:
    """Every numeric detector on every column, with default thresholds, side by side.

    Returns
    -------
    pandas.DataFrame
        Indexed by (column, test); columns statistic, p_value, threshold, drifted.
    """
    rows = {}
    for column in columns:
        for name, detector in NUMERIC_DETECTORS.items():
            result = detector(reference[column].to_numpy(), current[column].to_numpy())
            rows[(column, name)] = {"statistic": result.statistic, "p_value": result.p_value,
                                    "threshold": result.threshold, "drifted": result.drifted}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.names = ["column", "test"]
    return table
