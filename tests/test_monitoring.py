"""labsupport.monitoring: corrections agree with statsmodels; the monitor retrains on time."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from statsmodels.stats.multitest import multipletests

from labsupport import drift, monitoring

FEATURES = list(drift.FEATURES)


def _frame(rng: np.random.Generator, n: int, shifts: list[float]) -> pd.DataFrame:
    return pd.DataFrame({f"f{i}": rng.normal(shift, 1.0, n) for i, shift in enumerate(shifts)})


# --- corrections ---------------------------------------------------------------------------------

@pytest.mark.parametrize("correction", ["bonferroni", "holm", "fdr_bh"])
@pytest.mark.parametrize("p_values", [
    [0.01, 0.02, 0.03, 0.04, 0.05],
    [0.2, 0.001, 0.04, 0.04, 0.9, 0.03, 0.5],
    list(np.random.default_rng(0).uniform(0, 0.1, 30)),
    [0.5],
])
def test_adjusted_p_values_equal_statsmodels(correction, p_values):
    expected = multipletests(p_values, alpha=0.05, method=correction)[1]
    assert np.allclose(monitoring.adjust_p_values(p_values, correction), expected)


def test_no_correction_leaves_p_values_alone():
    assert list(monitoring.adjust_p_values([0.3, 0.01], "none")) == [0.3, 0.01]


@pytest.mark.parametrize("p_values, correction", [
    ([], "fdr_bh"), ([0.1, 1.2], "fdr_bh"), ([0.1, math.nan], "bonferroni"), ([0.1], "sidak"),
])
def test_adjust_rejects_bad_input(p_values, correction):
    with pytest.raises(ValueError):
        monitoring.adjust_p_values(p_values, correction)


def test_correction_brings_the_family_false_alarm_rate_down_to_alpha():
    rng = np.random.default_rng(3)
    n_runs, n_features, alpha = 300, 20, 0.05
    alarms = {c: 0 for c in monitoring.CORRECTIONS}
    for _ in range(n_runs):  # A/A: reference and current from the same distribution
        p_values = [drift.ks_test(rng.normal(size=300), rng.normal(size=300)).p_value
                    for _ in range(n_features)]
        for correction in alarms:
            alarms[correction] += bool(
                (monitoring.adjust_p_values(p_values, correction) < alpha).any())
    upper = stats.binom.ppf(1 - 1e-4, n_runs, alpha) / n_runs
    # Without correction: 1 - 0.95**20 = 0.64 in theory (a little less: exact KS is discrete).
    assert alarms["none"] / n_runs > 0.5
    assert alarms["bonferroni"] / n_runs <= upper
    assert alarms["holm"] / n_runs <= upper
    assert alarms["fdr_bh"] / n_runs <= upper


# --- the report ----------------------------------------------------------------------------------

def test_report_tests_each_column_like_scipy_and_flags_the_moved_one():
    rng = np.random.default_rng(1)
    reference, current = _frame(rng, 800, [0, 0, 0]), _frame(rng, 700, [0, 0.5, 0])
    reference["channel"] = rng.choice(["web", "shop"], 800)
    current["channel"] = rng.choice(["web", "shop"], 700)
    report = monitoring.drift_report(reference, current, correction="bonferroni")
    frame = report.to_frame()
    assert list(frame.index) == ["f0", "f1", "f2", "channel"]
    assert list(frame.columns) == ["test", "statistic", "p_value", "p_adjusted", "drifted"]
    for column in ["f0", "f1", "f2"]:
        expected = stats.ks_2samp(reference[column], current[column])
        assert frame.loc[column, "statistic"] == pytest.approx(expected.statistic)
        assert frame.loc[column, "p_value"] == pytest.approx(expected.pvalue)
    assert frame.loc["channel", "test"] == "chi2"
    assert np.allclose(frame["p_adjusted"], np.minimum(frame["p_value"] * 4, 1))
    assert frame["drifted"].tolist() == [False, True, False, False]
    assert report.drift_share == 0.25 and not report.dataset_drifted


@pytest.mark.parametrize("share_threshold, drifted", [(0.25, True), (0.5, False)])
def test_dataset_verdict_follows_the_share_threshold(share_threshold, drifted):
    reference = _frame(np.random.default_rng(2), 500, [0, 0, 0, 0])
    current = reference.assign(f0=reference["f0"] + 1.0)  # the other columns are unchanged
    report = monitoring.drift_report(reference, current, share_threshold=share_threshold)
    assert report.n_drifted == 1
    assert report.dataset_drifted == drifted
    assert ("DRIFT" in str(report)) == drifted


def test_report_does_not_depend_on_the_number_of_threads():
    rng = np.random.default_rng(4)
    reference, current = _frame(rng, 12_000, [0] * 6), _frame(rng, 11_000, [0.05] * 6)
    one = monitoring.drift_report(reference, current, n_jobs=1)
    two = monitoring.drift_report(reference, current, n_jobs=2)
    assert one == two


def test_report_can_compare_a_subset_of_columns():
    rng = np.random.default_rng(5)
    reference, current = _frame(rng, 200, [0, 0]), _frame(rng, 200, [0, 0, 0])
    report = monitoring.drift_report(reference, current, columns=["f1"])
    assert [c.column for c in report.columns] == ["f1"]


@pytest.mark.parametrize("reference, current, error, message", [
    (pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame({"b": [1.0, 2.0]}), ValueError, "same columns"),
    (pd.DataFrame({"a": [1.0, 2.0]}), [[1.0], [2.0]], TypeError, "DataFrame"),
    (pd.DataFrame({"a": []}, dtype=float), pd.DataFrame({"a": [1.0]}), ValueError, "no rows"),
    (pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame({"a": ["x", "y"]}), TypeError, "numeric"),
    (pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame({"a": [1.0, np.nan]}), ValueError, "'a'.*NaN"),
])
def test_report_rejects_bad_frames(reference, current, error, message):
    with pytest.raises(error, match=message):
        monitoring.drift_report(reference, current)


@pytest.mark.parametrize("keyword", [{"alpha": 0.0}, {"correction": "sidak"},
                                     {"share_threshold": 0.0}, {"columns": ["zzz"]}])
def test_report_rejects_bad_settings(keyword):
    rng = np.random.default_rng(6)
    with pytest.raises(ValueError):
        monitoring.drift_report(_frame(rng, 50, [0]), _frame(rng, 50, [0]), **keyword)


# --- the monitor ---------------------------------------------------------------------------------

def _fitted_model(reference: pd.DataFrame) -> RandomForestClassifier:
    model = RandomForestClassifier(n_estimators=25, random_state=0)
    return model.fit(reference[FEATURES], reference["y"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_monitor_retrains_on_the_batch_where_the_concept_changes(seed):
    rng = np.random.default_rng(seed)
    reference = drift.sample("concept", 1000, rng)
    stream = drift.sample_stream("concept", 9, 400, rng, start=5)
    monitor = monitoring.DriftMonitor(_fitted_model(reference), reference, features=FEATURES)
    log = monitor.run(monitoring.split_batches(stream))
    # Occasional "alert"s are false alarms of the drift tests; retraining happens once, at 5.
    assert log.index[log["action"] == "retrain"].tolist() == [5]
    assert "accuracy" in log.loc[5, "reason"]
    assert log.loc[5, "drift_share"] == 0, "concept drift leaves the features alone"
    assert log.loc[6:, "accuracy"].min() > 0.9, "the retrained model has learned the new concept"


def test_monitor_alerts_on_harmless_covariate_drift_and_keeps_the_model():
    rng = np.random.default_rng(7)
    reference = drift.sample("covariate", 2000, rng)
    model = _fitted_model(reference)
    stream = drift.sample_stream("covariate", 4, 500, rng, start=2, strength=0.25)
    monitor = monitoring.DriftMonitor(model, reference, features=FEATURES)
    log = monitor.run(monitoring.split_batches(stream))
    assert log["action"].tolist() == ["keep", "keep", "alert", "alert"]
    assert monitor.model is model
    assert "['x1']" in log.loc[2, "reason"]


def test_monitor_can_retrain_on_drift_alone():
    rng = np.random.default_rng(8)
    reference = drift.sample("covariate", 2000, rng)
    rule = monitoring.RetrainRule(retrain_on_drift=True)
    monitor = monitoring.DriftMonitor(_fitted_model(reference), reference, features=FEATURES,
                                      rule=rule)
    batches = monitoring.split_batches(
        drift.sample_stream("covariate", 4, 500, rng, start=2, strength=0.25))
    log = monitor.run(batches)
    assert log["action"].tolist() == ["keep", "keep", "retrain", "keep"]
    assert monitor.reference["x1"].mean() == pytest.approx(batches[2]["x1"].mean())


def test_monitor_without_labels_can_only_alert():
    rng = np.random.default_rng(9)
    reference = drift.sample("covariate", 1000, rng)
    model = LogisticRegression().fit(reference[FEATURES], reference["y"])
    monitor = monitoring.DriftMonitor(model, reference, features=FEATURES)
    quiet = monitor.observe(drift.sample("covariate", 300, rng)[FEATURES])
    loud = monitor.observe(drift.sample("covariate", 300, rng, 0.8)[FEATURES])
    assert (quiet.action, loud.action) == ("keep", "alert")
    assert math.isnan(loud.accuracy) and "no labels" in loud.reason
    assert monitor.model is model


def test_monitor_log_has_one_row_per_decision():
    rng = np.random.default_rng(10)
    reference = drift.sample("concept", 500, rng)
    monitor = monitoring.DriftMonitor(_fitted_model(reference), reference, features=FEATURES)
    assert list(monitor.log().columns) == ["batch", "n_rows", "drift_share", "accuracy", "action",
                                           "reason"]
    monitor.observe(drift.sample("concept", 200, rng))
    assert len(monitor.log()) == 1 and monitor.decisions[0].batch == 0


@pytest.mark.parametrize("make, error", [
    (lambda ref: monitoring.DriftMonitor(None, ref, features=["x9"]), ValueError),
    (lambda ref: monitoring.DriftMonitor(None, ref, features=FEATURES, window=0), ValueError),
    (lambda ref: monitoring.RetrainRule(min_accuracy=1.5), ValueError),
    (lambda ref: monitoring.RetrainRule(correction="sidak"), ValueError),
    (lambda ref: monitoring.DriftMonitor(None, ref, features=FEATURES).observe([1, 2]), TypeError),
    (lambda ref: monitoring.DriftMonitor(None, ref, features=FEATURES).observe(ref[["x1"]]),
     ValueError),
    (monitoring.split_batches, ValueError),
])
def test_monitor_rejects_bad_input(make, error):
    reference = drift.sample("concept", 50, np.random.default_rng(0))
    with pytest.raises(error):
        make(reference)


def test_report_accepts_columns_that_are_not_named_by_strings():
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({0: rng.normal(size=300), 1: rng.normal(size=300)})
    current = pd.DataFrame({0: rng.normal(size=300), 1: rng.normal(2.0, 1.0, 300)})
    frame = monitoring.drift_report(reference, current).to_frame()
    assert list(frame.index) == [0, 1] and bool(frame.loc[1, "drifted"])


def test_the_retraining_replay_retrains_where_its_rule_says():
    """Exercise 02's replay: accuracy-only retrains once, on the first new-concept batch;
    retraining on drift also fires on the harmless covariate batches."""
    accuracy_only = monitoring.RetrainRule(min_accuracy=0.85, retrain_on_drift=False)
    on_drift = monitoring.RetrainRule(min_accuracy=0.85, retrain_on_drift=True)
    assert monitoring.retrained_batches(accuracy_only, 3, n=500) == [7]
    assert monitoring.retrained_batches(accuracy_only, 104, layout=(2, 3, 3),
                                        covariate_strength=0.3, concept_strength=0.0) == []
    assert monitoring.retrained_batches(on_drift, 3, n=500)[0] in range(3, 7)


@pytest.mark.parametrize("rule, layout, error", [
    ({"min_accuracy": 0.85}, (3, 4, 3), TypeError),
    (monitoring.RetrainRule(), (3, 4), ValueError),
    (monitoring.RetrainRule(), (3, -1, 3), ValueError),
])
def test_the_retraining_replay_refuses_bad_input(rule, layout, error):
    with pytest.raises(error):
        monitoring.retrained_batches(rule, 0, layout=layout)
