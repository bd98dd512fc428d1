"""labsupport.drift: generators move what they claim; detectors agree with scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import spatial, stats

from labsupport import drift

FEATURES = list(drift.FEATURES)


def _binomial_bounds(n: int, p: float, level: float = 1e-4) -> tuple[float, float]:
    """Range of a binomial share that a correct simulation leaves with probability 1 - level."""
    return (stats.binom.ppf(level / 2, n, p) / n, stats.binom.ppf(1 - level / 2, n, p) / n)


# --- generators ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", drift.KINDS)
def test_every_kind_at_strength_zero_is_the_reference(kind):
    rng = np.random.default_rng(1)
    reference = drift.sample("concept", 20_000, rng)
    current = drift.sample(kind, 20_000, rng, strength=0.0)
    for column in FEATURES:
        assert stats.ks_2samp(reference[column], current[column]).pvalue > 1e-3
    assert np.array_equal(current["y"], drift.label(current))
    low, high = _binomial_bounds(20_000, 0.5)
    assert low <= current["y"].mean() <= high


@pytest.mark.parametrize("strength", [0.3, 1.0])
def test_covariate_drift_moves_x1_only_and_keeps_the_labelling_function(strength):
    rng = np.random.default_rng(2)
    reference = drift.sample("covariate", 20_000, rng)
    current = drift.sample("covariate", 20_000, rng, strength)
    assert current["x1"].mean() == pytest.approx(drift.COVARIATE_SHIFT * strength, abs=0.05)
    assert stats.ks_2samp(reference["x1"], current["x1"]).pvalue < 1e-6
    assert stats.ks_2samp(reference["x2"], current["x2"]).pvalue > 1e-3
    assert np.array_equal(current["y"], drift.label(current)), "P(y|X) must not change"


@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_concept_drift_keeps_the_features_and_changes_the_labels(strength):
    rng = np.random.default_rng(3)
    reference = drift.sample("concept", 20_000, rng)
    current = drift.sample("concept", 20_000, rng, strength)
    for column in FEATURES:
        assert stats.ks_2samp(reference[column], current[column]).pvalue > 1e-3
    assert np.array_equal(current["y"], drift.label(current, concept_strength=strength))
    changed = np.mean(current["y"] != drift.label(current))
    assert changed > 0.1, "the old labelling function should now be wrong on many rows"


@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_prior_drift_moves_p_y_and_keeps_p_x_given_y(strength):
    rng = np.random.default_rng(4)
    reference = drift.sample("prior", 20_000, rng)
    current = drift.sample("prior", 20_000, rng, strength)
    low, high = _binomial_bounds(20_000, 0.5 + drift.PRIOR_SHIFT * strength)
    assert low <= current["y"].mean() <= high
    for value in (0, 1):
        for column in FEATURES:
            ref_rows = reference.loc[reference["y"] == value, column]
            cur_rows = current.loc[current["y"] == value, column]
            assert stats.ks_2samp(ref_rows, cur_rows).pvalue > 1e-3
    assert stats.ks_2samp(reference["x2"], current["x2"]).pvalue < 1e-6, "P(X) moves as a result"


def test_samples_are_reproducible_and_have_the_documented_columns():
    first = drift.sample("prior", 500, np.random.default_rng(7), 0.4)
    again = drift.sample("prior", 500, np.random.default_rng(7), 0.4)
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == ["x1", "x2", "y"] and len(first) == 500


def test_boundary_is_mirrored_at_full_concept_drift():
    x1 = np.linspace(-3, 3, 7)
    assert np.allclose(drift.boundary(x1, 1.0), -drift.boundary(x1, 0.0))
    assert np.allclose(drift.boundary(x1, 0.5), 0.0)


@pytest.mark.parametrize("transition, expected", [
    ("abrupt", [0.0, 0.0, 0.0, 0.8, 0.8, 0.8]),
    ("gradual", [0.8 / (1 + math.exp(-(t - 3) / 1.0)) for t in range(6)]),
])
def test_schedule(transition, expected):
    assert np.allclose(drift.schedule(6, 3, transition, width=1.0, strength=0.8), expected)


def test_gradual_schedule_is_halfway_at_start_and_increasing():
    strengths = drift.schedule(20, 10, "gradual", width=2.0)
    assert strengths[10] == pytest.approx(0.5)
    assert np.all(np.diff(strengths) > 0)


def test_stream_has_batches_that_follow_the_schedule():
    stream = drift.sample_stream("covariate", 6, 2000, np.random.default_rng(5), start=3)
    assert list(stream.columns) == ["batch", "x1", "x2", "y"]
    assert stream.groupby("batch").size().tolist() == [2000] * 6
    means = stream.groupby("batch")["x1"].mean()
    assert means[:3].abs().max() < 0.1
    assert means[3:].min() > drift.COVARIATE_SHIFT - 0.1


@pytest.mark.parametrize("call, error", [
    (lambda: drift.sample("seasonal", 10, np.random.default_rng(0)), ValueError),
    (lambda: drift.sample("concept", 10, np.random.default_rng(0), 1.5), ValueError),
    (lambda: drift.sample("concept", 0, np.random.default_rng(0)), ValueError),
    (lambda: drift.schedule(5, 2, "sudden"), ValueError),
    (lambda: drift.schedule(5, 2, "gradual", width=0), ValueError),
])
def test_generators_reject_bad_parameters(call, error):
    with pytest.raises(error):
        call()


# --- detectors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("n1, n2, shift", [
    (40, 60, 0.0), (3000, 2000, 0.1), (12_000, 15_000, 0.0), (20_000, 20_000, 0.05),
])
def test_ks_test_equals_scipy(n1, n2, shift):
    rng = np.random.default_rng(n1)
    reference, current = rng.normal(size=n1), rng.normal(shift, 1, n2)
    result = drift.ks_test(reference, current, alpha=0.05)
    expected = stats.ks_2samp(reference, current)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert result.drifted == (expected.pvalue < 0.05)
    assert result.test == "ks" and result.threshold == 0.05


def test_ks_test_handles_ties_like_scipy_on_large_samples():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 6, 15_000).astype(float)
    current = rng.integers(0, 7, 25_000).astype(float)
    expected = stats.ks_2samp(reference, current)
    assert drift.ks_test(reference, current).statistic == pytest.approx(expected.statistic)
    assert drift.ks_test(current, reference).statistic == pytest.approx(expected.statistic)


def test_ks_rejects_about_alpha_of_the_time_without_drift():
    rng = np.random.default_rng(11)
    n_runs, alpha = 600, 0.05
    rejections = sum(drift.ks_test(rng.normal(size=150), rng.normal(size=150), alpha).drifted
                     for _ in range(n_runs))
    # Exact KS p-values are discrete, so the true rate is slightly below alpha, never above.
    low, high = _binomial_bounds(n_runs, alpha)
    assert 0.5 * low <= rejections / n_runs <= high


def test_chi_square_equals_scipy_without_rare_categories():
    rng = np.random.default_rng(1)
    reference = rng.choice(["card", "cash", "phone"], 800, p=[0.5, 0.3, 0.2])
    current = rng.choice(["card", "cash", "phone"], 600, p=[0.4, 0.3, 0.3])
    result = drift.chi_square_test(reference, current)
    table = pd.crosstab(np.r_[["r"] * 800, ["c"] * 600], np.r_[reference, current])
    expected = stats.chi2_contingency(table.to_numpy(), correction=False)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.note == "" and result.test == "chi2"


@pytest.mark.parametrize("reference_extra, current_extra, merged_row_sums, n_merged", [
    # c, d, e are rare; together they reach the rule of five.
    ({"c": 4, "d": 3}, {"c": 3, "e": 3}, [7, 6], 3),
    # Together they still do not, so the next-rarest category (a) joins them.
    ({"c": 2, "d": 1}, {"c": 1, "e": 3}, None, 4),
])
def test_chi_square_merges_rare_categories_before_testing(reference_extra, current_extra,
                                                          merged_row_sums, n_merged):
    reference = (["a"] * 100 + ["b"] * 100
                 + [k for k, n in reference_extra.items() for _ in range(n)])
    current = ["a"] * 90 + ["b"] * 110 + [k for k, n in current_extra.items() for _ in range(n)]
    result = drift.chi_square_test(reference, current)
    if merged_row_sums is None:  # a was merged: only b and the merged bucket remain
        merged = np.array([[100, len(reference) - 100], [110, len(current) - 110]])
    else:
        merged = np.array([[100, 100, merged_row_sums[0]], [90, 110, merged_row_sums[1]]])
    expected = stats.chi2_contingency(merged, correction=False)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert f"merged {n_merged} rare categories" in result.note
    assert stats.contingency.expected_freq(merged).min() >= 5


def test_chi_square_raises_when_too_few_observations_remain():
    with pytest.raises(ValueError, match="Too few observations"):
        drift.chi_square_test(["a", "b", "a"], ["b", "a"])


def _psi_by_hand(reference, current, n_bins=10):
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, n_bins + 1)[1:-1]))
    edges = np.r_[-np.inf, inner, np.inf]
    r = np.histogram(reference, edges)[0] / len(reference)
    c = np.histogram(current, edges)[0] / len(current)
    r, c = np.clip(r, drift.EPSILON, None), np.clip(c, drift.EPSILON, None)
    return float(np.sum((c - r) * np.log(c / r)))


@pytest.mark.parametrize("shift, scale", [(0.0, 1.0), (0.5, 1.0), (0.0, 2.0), (3.0, 0.5)])
def test_psi_matches_the_formula_with_reference_quantile_bins(shift, scale):
    rng = np.random.default_rng(8)
    reference, current = rng.normal(size=5000), rng.normal(shift, scale, 3000)
    result = drift.psi(reference, current)
    assert result.statistic == pytest.approx(_psi_by_hand(reference, current))
    assert result.drifted == (result.statistic > drift.PSI_THRESHOLD)
    assert math.isnan(result.p_value)


def test_psi_uses_epsilon_for_empty_bins():
    reference = np.arange(100.0)
    current = np.full(50, 1000.0)  # everything in the last bin
    r = np.full(10, 0.1)
    c = np.r_[np.full(9, drift.EPSILON), 1.0]
    expected = np.sum((c - r) * np.log(c / r))
    assert drift.psi(reference, current).statistic == pytest.approx(expected)


def test_psi_uses_epsilon_for_an_empty_reference_bin():
    # Most of the reference sits on its minimum, so the open bin below it is empty in the
    # reference; the current sample has values there.
    reference = np.r_[np.zeros(90), np.arange(1.0, 11.0)]
    current = np.r_[np.full(10, -1.0), np.zeros(40)]
    result = drift.psi(reference, current)
    assert np.isfinite(result.statistic)
    assert result.statistic == pytest.approx(_psi_by_hand(reference, current))


def test_reference_bins_are_equal_frequency_and_drop_repeated_edges():
    reference = np.arange(1000.0)
    shares = drift.bin_proportions(reference, drift.reference_bins(reference, 4))
    assert np.allclose(shares, 0.25)
    assert drift.reference_bins(np.r_[np.zeros(90), np.arange(10.0)], 10).size < 9


def test_wasserstein_is_scipy_divided_by_the_reference_spread():
    rng = np.random.default_rng(9)
    reference, current = rng.normal(0, 4, 2000), rng.normal(2, 4, 1500)
    result = drift.wasserstein(reference, current)
    expected = stats.wasserstein_distance(reference, current) / np.std(reference, ddof=1)
    assert result.statistic == pytest.approx(expected)
    assert result.statistic == pytest.approx(0.5, abs=0.1)  # a shift of half a std
    assert result.drifted


def test_jensen_shannon_matches_scipy_on_numeric_and_categorical_data():
    rng = np.random.default_rng(10)
    reference, current = rng.normal(size=4000), rng.normal(0.3, 1, 4000)
    edges = drift.reference_bins(reference)
    expected = spatial.distance.jensenshannon(drift.bin_proportions(reference, edges),
                                              drift.bin_proportions(current, edges), base=2)
    assert drift.jensen_shannon(reference, current).statistic == pytest.approx(expected)
    categorical = drift.jensen_shannon(["a", "a", "b", "b"], ["a", "b", "b", "c"])
    assert categorical.statistic == pytest.approx(
        spatial.distance.jensenshannon([0.5, 0.5, 0.0], [0.25, 0.5, 0.25], base=2))


@pytest.mark.parametrize("detector", [drift.ks_test, drift.psi, drift.wasserstein,
                                      drift.jensen_shannon])
def test_identical_samples_show_no_drift(detector):
    values = np.random.default_rng(12).normal(size=1000)
    result = detector(values, values.copy())
    assert not result.drifted
    assert result.statistic == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("detector", [drift.ks_test, drift.psi, drift.wasserstein])
@pytest.mark.parametrize("reference, current, error, message", [
    ([], [1.0, 2.0], ValueError, "empty"),
    ([1.0, np.nan, 3.0], [1.0, 2.0], ValueError, "NaN"),
    (["a", "b"], ["a", "b"], TypeError, "needs numbers"),
    ([[1.0, 2.0]], [1.0, 2.0], ValueError, "1-D"),
])
def test_numeric_detectors_reject_bad_input(detector, reference, current, error, message):
    with pytest.raises(error, match=message):
        detector(reference, current)


@pytest.mark.parametrize("call, message", [
    (lambda: drift.chi_square_test([], ["a"]), "empty"),
    (lambda: drift.chi_square_test(["a", None], ["a"]), "missing"),
    (lambda: drift.ks_test([1.0, 2.0], [1.0], alpha=1.5), "alpha"),
    (lambda: drift.wasserstein([1.0, 1.0], [2.0]), "no spread"),
    (lambda: drift.psi([1.0, 2.0], [1.0], n_bins=1), "n_bins"),
])
def test_other_bad_input_is_explained(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_detector_table_runs_every_detector_on_every_column():
    rng = np.random.default_rng(13)
    reference = drift.sample("covariate", 2000, rng)
    current = drift.sample("covariate", 2000, rng, strength=0.5)
    table = drift.detector_table(reference, current)
    assert table.shape == (8, 4)
    assert table.loc[("x1", "psi"), "statistic"] == pytest.approx(
        drift.psi(reference["x1"], current["x1"]).statistic)
    assert table.xs("x1", level="column")["drifted"].all()
    assert not table.xs("x2", level="column")["drifted"].any()


def test_chi_square_on_a_single_category_everywhere_reports_no_drift():
    result = drift.chi_square_test(np.array(["a"] * 200, dtype=object),
                                   np.array(["a"] * 100, dtype=object))
    assert (result.statistic, result.p_value, result.drifted) == (0.0, 1.0, False)


def test_ks_test_columns_equals_scipy_column_by_column():
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(300, 6))
    current = rng.normal(0.1, 1.0, size=(200, 6))
    current[:, 5] = np.round(current[:, 5])            # ties
    reference[:, 5] = np.round(reference[:, 5])
    table = drift.ks_test_columns(reference, current)
    for column in range(6):
        expected = stats.ks_2samp(reference[:, column], current[:, column], method="asymp")
        assert table.loc[column, "statistic"] == pytest.approx(expected.statistic, abs=1e-12)
        assert table.loc[column, "p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
        assert table.loc[column, "statistic"] == pytest.approx(
            drift.ks_test(reference[:, column], current[:, column]).statistic)
    assert table["drifted"].tolist() == (table["p_value"] < 0.05).tolist()


@pytest.mark.parametrize("reference, current", [
    (np.zeros((5, 2)), np.zeros((5, 3))), (np.zeros(5), np.zeros(5)),
    (np.zeros((0, 2)), np.zeros((4, 2))), (np.full((3, 1), np.nan), np.zeros((3, 1))),
])
def test_ks_test_columns_refuses_bad_shapes_and_missing_values(reference, current):
    with pytest.raises(ValueError):
        drift.ks_test_columns(reference, current)
