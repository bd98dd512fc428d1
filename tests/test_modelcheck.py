"""labsupport.modelcheck: metrics, the paired gate (against statsmodels' McNemar), the table."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from scipy import optimize, stats
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from statsmodels.stats.contingency_tables import mcnemar

from labsupport import modelcheck, pipeline


def _metrics(accuracy=0.8, precision=0.7, recall=0.6, f1=0.65, **counts):
    return {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1, **counts}


@pytest.mark.parametrize("seed, share", [(0, 0.5), (1, 0.1), (2, 0.9)])
def test_classification_metrics_equal_scikit_learn(seed, share):
    rng = np.random.default_rng(seed)
    y_true, y_pred = (rng.random(200) < share).astype(int), (rng.random(200) < share).astype(int)
    found = modelcheck.classification_metrics(y_true, y_pred)
    assert found["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert found["precision"] == pytest.approx(precision_score(y_true, y_pred, zero_division=0))
    assert found["recall"] == pytest.approx(recall_score(y_true, y_pred, zero_division=0))
    assert found["f1"] == pytest.approx(f1_score(y_true, y_pred, zero_division=0))


def test_no_positive_predicted_or_present_scores_zero_like_scikit_learn():
    found = modelcheck.classification_metrics([0, 0, 1], [0, 0, 0])
    assert (found["precision"], found["recall"], found["f1"]) == (0.0, 0.0, 0.0)
    assert modelcheck.classification_metrics([0, 0], [0, 0])["f1"] == 0.0


def test_classification_metrics_carry_the_counts_of_their_denominators():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    found = modelcheck.classification_metrics(y_true, y_pred)
    true_positives = int(((y_true == 1) & (y_pred == 1)).sum())
    assert found["n_test"] == 300
    assert found["recall"] == pytest.approx(true_positives / found["n_positive"])
    assert found["precision"] == pytest.approx(true_positives / found["n_predicted_positive"])
    assert found["f1"] == pytest.approx(true_positives / found["n_f1"])
    assert found["f1"] == pytest.approx(f1_score(y_true, y_pred))


@pytest.mark.parametrize("y_true, y_pred, complaint", [
    ([0, 1], [0], "equal length"), ([], [], "non-empty"), ([0, 2], [0, 1], "0 or 1")])
def test_classification_metrics_reject_bad_labels(y_true, y_pred, complaint):
    with pytest.raises(ValueError, match=complaint):
        modelcheck.classification_metrics(y_true, y_pred)


def test_a_large_drop_is_a_regression_and_an_equal_model_is_not():
    baseline = _metrics(n_test=400, n_positive=130, n_predicted_positive=110, n_f1=120)
    worse = {**baseline, "accuracy": 0.70}
    assert modelcheck.compare(baseline, worse).regressions == ("accuracy",)
    assert modelcheck.compare(baseline, baseline).passed


def test_the_same_drop_is_noise_on_few_rows_and_real_on_many():
    small = _metrics(n_test=300, n_positive=100, n_predicted_positive=100, n_f1=100)
    large = _metrics(n_test=30_000, n_positive=10_000, n_predicted_positive=10_000, n_f1=10_000)
    drop = {"accuracy": 0.78}
    assert modelcheck.compare(small, {**small, **drop}, tolerance=0.005).passed
    assert not modelcheck.compare(large, {**large, **drop}, tolerance=0.005).passed


def test_the_p_value_is_the_one_sided_z_test_of_a_drop_beyond_the_tolerance():
    baseline = _metrics(accuracy=0.85, n_test=500)
    candidate = _metrics(accuracy=0.80, n_test=400)
    row = modelcheck.compare(baseline, candidate, tolerance=0.01,
                             metrics=["accuracy"]).changes[0]
    error = math.sqrt(0.85 * 0.15 / 500 + 0.80 * 0.20 / 400)
    assert row.standard_error == pytest.approx(error)
    assert row.p_value == pytest.approx(stats.norm.sf((0.05 - 0.01) / error))


def test_without_counts_only_the_tolerance_decides():
    baseline = _metrics()
    assert modelcheck.compare(baseline, {**baseline, "f1": 0.63}, tolerance=0.01).regressions \
        == ("f1",)
    assert modelcheck.compare(baseline, {**baseline, "f1": 0.645}, tolerance=0.01).passed


def test_an_identical_model_raises_a_false_alarm_at_most_alpha_of_the_time():
    """Two test sets of 400 rows, the same true accuracy: with tolerance 0 the rule is a level-alpha
    test, so about 5 % of comparisons flag a regression (a naive "any drop" rule: about 50 %)."""
    rng = np.random.default_rng(1)
    n, p, runs = 400, 0.8, 2000
    alarms = 0
    for baseline_hits, candidate_hits in rng.binomial(n, p, size=(runs, 2)):
        comparison = modelcheck.compare(_metrics(accuracy=baseline_hits / n, n_test=n),
                                        _metrics(accuracy=candidate_hits / n, n_test=n),
                                        tolerance=0.0, metrics=["accuracy"])
        alarms += not comparison.passed
    share, error = alarms / runs, math.sqrt(0.05 * 0.95 / runs)
    assert abs(share - 0.05) < 4 * error + 0.01, share


@pytest.mark.parametrize("broken, error, complaint", [
    ({"accuracy": 0.8, "precision": 0.7, "recall": 0.6}, ValueError, "lack \\['f1'\\]"),
    ({**_metrics(), "f1": "high"}, ValueError, "between 0 and 1"),
    ({**_metrics(), "recall": 1.5}, ValueError, "between 0 and 1"),
    ([0.8, 0.7], TypeError, "mapping"),
])
def test_compare_rejects_incomplete_metrics(broken, error, complaint):
    with pytest.raises(error, match=complaint):
        modelcheck.compare(_metrics(), broken)


def test_compare_rejects_bad_settings():
    with pytest.raises(ValueError, match="tolerance"):
        modelcheck.compare(_metrics(), _metrics(), tolerance=-0.1)
    with pytest.raises(ValueError, match="metrics"):
        modelcheck.compare(_metrics(), _metrics(), metrics=["auc"])


def test_the_markdown_table_shows_each_metric_with_its_signed_change():
    baseline = _metrics(n_test=400, model_size_bytes=2000, predict_seconds=0.004,
                        train_seconds=0.2)
    markdown = modelcheck.to_markdown(modelcheck.compare(baseline, {**baseline, "recall": 0.3}))
    lines = markdown.splitlines()
    assert lines[0].startswith("## ❌") and "recall" in lines[0]
    assert "| Recall | 0.600 | 0.300 | -0.300 |" in markdown
    assert "| Accuracy | 0.800 | 0.800 | +0.000 |" in markdown
    assert "baseline 2 kB" in markdown and "baseline 4 ms" in markdown
    assert modelcheck.to_markdown(modelcheck.compare(baseline, baseline)).startswith("## ✅")


def test_evaluate_reports_the_real_file_size_and_keeps_the_timings_apart(tmp_path):
    rng = np.random.default_rng(2)
    data = pipeline.make_sensor_data(600, rng)
    model = pipeline.fit(pipeline.EXAMPLE_CODE, data, {"max_iter": 500})
    small, large = tmp_path / "small.pkl", tmp_path / "large.pkl"
    small.write_bytes(pickle.dumps(model))
    large.write_bytes(pickle.dumps(model) + b"\0" * 5000)
    test = pipeline.make_sensor_data(300, rng)
    first = modelcheck.evaluate(model, test, pipeline.LABEL, small, train_seconds=1.25)
    second = modelcheck.evaluate(model, test, pipeline.LABEL, large)
    assert first.model_size_bytes == small.stat().st_size
    assert second.model_size_bytes == first.model_size_bytes + 5000
    assert first.train_seconds == 1.25 and second.train_seconds is None
    assert 0 < first.predict_seconds < 1.25
    assert first.metrics["accuracy"] == pytest.approx(model.accuracy(test))
    assert first.to_dict()["model_size_bytes"] == first.model_size_bytes


def test_evaluate_needs_the_label_column(tmp_path):
    path = tmp_path / "m.pkl"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="label column"):
        modelcheck.evaluate(None, pipeline.make_sensor_data(5, np.random.default_rng(0)),
                            "target", path)


def _paired_rows(seed, n=400, flip=0.1):
    """Labels, a baseline about 80 % right, and a candidate that differs from it on ~flip rows."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    baseline = np.where(rng.random(n) < 0.8, y_true, 1 - y_true)
    candidate = np.where(rng.random(n) < flip, 1 - baseline, baseline)
    return y_true, baseline, candidate


def _table(y_true, baseline, candidate):
    base_right, cand_right = baseline == y_true, candidate == y_true
    return np.array([[np.sum(base_right & cand_right), np.sum(base_right & ~cand_right)],
                     [np.sum(~base_right & cand_right), np.sum(~base_right & ~cand_right)]])


@pytest.mark.parametrize("seed", range(6))
def test_at_margin_zero_the_paired_test_is_mcnemars_chi_square(seed):
    y_true, baseline, candidate = _paired_rows(seed)
    result = modelcheck.paired_comparison(y_true, baseline, candidate, margin=0.0)
    table = _table(y_true, baseline, candidate)
    assert (result.baseline_only, result.candidate_only) == (table[0, 1], table[1, 0])
    expected = mcnemar(table, exact=False, correction=False)
    assert result.statistic ** 2 == pytest.approx(expected.statistic)
    two_sided = 2 * min(result.p_value, 1 - result.p_value)
    assert two_sided == pytest.approx(expected.pvalue)


def test_with_a_margin_the_statistic_uses_the_restricted_maximum_likelihood():
    """Tango's closed form against a numerical maximum of the trinomial likelihood under the null
    "drop = margin" (p_b = p_c + margin)."""
    n, b, c, margin = 400, 31, 9, 0.03
    def negative_log_likelihood(p_c):
        p_b = p_c + margin
        return -(b * np.log(p_b) + c * np.log(p_c) + (n - b - c) * np.log(1 - p_b - p_c))
    p_c = optimize.minimize_scalar(negative_log_likelihood, bounds=(1e-9, (1 - margin) / 2 - 1e-9),
                                   method="bounded", options={"xatol": 1e-12}).x
    variance = n * (2 * p_c + margin * (1 - margin))
    statistic = (b - c - n * margin) / math.sqrt(variance)
    y_true = np.ones(n, dtype=int)
    baseline = np.r_[np.ones(b), np.zeros(c), np.ones(n - b - c)].astype(int)
    candidate = np.r_[np.zeros(b), np.ones(c), np.ones(n - b - c)].astype(int)
    result = modelcheck.paired_comparison(y_true, baseline, candidate, margin=margin)
    assert result.statistic == pytest.approx(statistic, rel=1e-6)
    assert result.p_value == pytest.approx(stats.norm.sf(statistic), rel=1e-5)
    assert result.passed is (result.p_value >= 0.05)


def test_the_paired_difference_and_its_standard_error_come_from_the_per_row_differences():
    y_true, baseline, candidate = _paired_rows(7, flip=0.04)
    result = modelcheck.paired_comparison(y_true, baseline, candidate)
    per_row = (candidate == y_true).astype(float) - (baseline == y_true)
    assert result.difference == pytest.approx(per_row.mean())
    assert result.difference == pytest.approx(result.candidate_accuracy - result.baseline_accuracy)
    assert result.standard_error == pytest.approx(per_row.std() / math.sqrt(len(per_row)))
    unpaired = math.sqrt(sum(p * (1 - p) / len(y_true)
                             for p in (result.baseline_accuracy, result.candidate_accuracy)))
    assert result.standard_error < unpaired / 2


def test_identical_predictions_pass_and_a_large_drop_fails():
    y_true, baseline, _ = _paired_rows(3)
    same = modelcheck.paired_comparison(y_true, baseline, baseline.copy(), margin=0.0)
    assert same.passed and same.p_value == 1.0 and same.standard_error == 0.0
    worse = baseline.copy()
    right = np.flatnonzero(baseline == y_true)[:40]
    worse[right] = 1 - worse[right]
    dropped = modelcheck.paired_comparison(y_true, baseline, worse, margin=0.02)
    assert dropped.difference == pytest.approx(-0.1) and not dropped.passed
    assert "FAILED" in repr(dropped) and "-0.1000" in repr(dropped)
    small = worse.copy()
    small[right[:36]] = baseline[right[:36]]
    assert modelcheck.paired_comparison(y_true, baseline, small, margin=0.02).passed


def test_labels_need_not_be_binary():
    result = modelcheck.paired_comparison(["a", "b", "c", "c"], ["a", "b", "b", "c"],
                                          ["a", "c", "c", "c"], margin=0.0)
    assert (result.baseline_only, result.candidate_only) == (1, 1)


def test_the_exact_failure_probability_sums_the_trinomial():
    n, p_b, p_c, margin = 30, 0.2, 0.05, 0.0
    expected = 0.0
    for b in range(n + 1):
        for c in range(n + 1 - b):
            if modelcheck.paired_comparison(*_rows_with(b, c, n), margin=margin).passed:
                continue
            expected += stats.multinomial.pmf([b, c, n - b - c], n, [p_b, p_c, 1 - p_b - p_c])
    found = modelcheck.gate_failure_probability(p_b, p_c, n, margin=margin)
    assert found == pytest.approx(expected, rel=1e-9)


def _rows_with(baseline_only, candidate_only, n):
    y_true = np.ones(n, dtype=int)
    rest = n - baseline_only - candidate_only
    baseline = np.r_[np.ones(baseline_only), np.zeros(candidate_only), np.ones(rest)].astype(int)
    candidate = np.r_[np.zeros(baseline_only), np.ones(candidate_only), np.ones(rest)].astype(int)
    return y_true, baseline, candidate


@pytest.mark.parametrize("p_b, p_c, margin", [(0.03, 0.03, 0.02), (0.04, 0.02, 0.02),
                                              (0.06, 0.01, 0.02), (0.05, 0.04, 0.0)])
def test_the_failure_probability_matches_a_simulation_of_the_gate(p_b, p_c, margin):
    rng = np.random.default_rng(11)
    n, runs = 200, 1500
    counts = rng.multinomial(n, [p_b, p_c, 1 - p_b - p_c], size=runs)
    failed = np.mean([not modelcheck.paired_comparison(*_rows_with(b, c, n), margin=margin).passed
                      for b, c, _ in counts])
    theory = modelcheck.gate_failure_probability(p_b, p_c, n, margin=margin)
    assert abs(failed - theory) < 4 * math.sqrt(theory * (1 - theory) / runs) + 1 / runs


@pytest.mark.parametrize("arguments, settings, error, complaint", [
    (([0, 1], [0, 1], [0]), {}, ValueError, "one length"),
    (([], [], []), {}, ValueError, "non-empty"),
    (([[0, 1]], [[0, 1]], [[0, 1]]), {}, ValueError, "1-d"),
    (([0, 1], [0, 1], [0, 1]), {"margin": -0.01}, ValueError, "margin must be in"),
    (([0, 1], [0, 1], [0, 1]), {"margin": "0.02"}, TypeError, "margin must be a number"),
    (([0, 1], [0, 1], [0, 1]), {"alpha": 0.0}, ValueError, "alpha must be in"),
    (([0, 1], [0, 1], [0, 1]), {"alpha": True}, TypeError, "alpha must be a number"),
])
def test_paired_comparison_rejects_bad_input(arguments, settings, error, complaint):
    with pytest.raises(error, match=complaint):
        modelcheck.paired_comparison(*arguments, **settings)


@pytest.mark.parametrize("arguments, complaint", [
    ((0.6, 0.6, 100), "cannot exceed 1"), ((-0.1, 0.1, 100), "baseline_only must be in"),
    ((0.1, 0.1, 0), "n_rows"), ((0.1, 0.1, 10.5), "n_rows")])
def test_gate_failure_probability_rejects_bad_input(arguments, complaint):
    with pytest.raises(ValueError, match=complaint):
        modelcheck.gate_failure_probability(*arguments)
