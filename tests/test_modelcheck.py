"""labsupport.modelcheck: metrics, the regression decision against sampling error, the table."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

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
