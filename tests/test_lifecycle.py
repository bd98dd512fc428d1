"""labsupport.lifecycle: the capstone's stages strung together, and the timeline they leave."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from sklearn.model_selection import StratifiedKFold, cross_val_score
from statsmodels.stats.proportion import proportions_ztest

from labsupport import abtest, cli, lifecycle, modelcheck, pipeline, plots, rollout, traffic

#: A small world: one scenario run takes well under a second.
SMALL = lifecycle.Scenario(n_train=800, n_test=600, n_users=1500, n_batches=5, batch_size=600,
                           drift_batch=2, requests_per_step=1500)
#: Thresholds under which the scripted life ends as the lesson says.
SOUND = lifecycle.Thresholds(drift_share=0.3, max_accuracy_drop=0.15)


@pytest.fixture(scope="module", name="lives")
def _lives():
    """The scenario under sound thresholds and under the default drift share (never fires)."""
    return {"sound": lifecycle.run_scenario(SOUND, 3, SMALL),
            "default": lifecycle.run_scenario(lifecycle.Thresholds(max_accuracy_drop=0.15), 3,
                                              SMALL)}


@pytest.fixture(scope="module", name="models")
def _models():
    rng = np.random.default_rng(11)
    train = pipeline.make_sensor_data(1500, rng)
    good = pipeline.fit(pipeline.EXAMPLE_CODE, train, {"max_iter": 500})
    blind = pipeline.fit(lifecycle.NO_TEMPERATURE_CODE, train, {"max_iter": 500})
    return train, good, blind, pipeline.make_sensor_data(800, rng)


# --- pieces added to pipeline and steps for lesson 08 ----------------------------------------

def test_the_vibration_gain_scales_the_readings_and_not_the_failures():
    calibrated = pipeline.make_sensor_data(300, np.random.default_rng(5))
    assert calibrated.equals(pipeline.make_sensor_data(300, np.random.default_rng(5),
                                                       vibration_gain=1.0))
    doubled = pipeline.make_sensor_data(300, np.random.default_rng(5), vibration_gain=2.0)
    assert np.allclose(doubled["vibration"], 2 * calibrated["vibration"])
    assert doubled[pipeline.LABEL].equals(calibrated[pipeline.LABEL])
    with pytest.raises(ValueError, match="vibration_gain"):
        pipeline.make_sensor_data(10, np.random.default_rng(0), vibration_gain=0.0)


def test_cross_validate_matches_scikit_learn(models):
    train = models[0]
    found = pipeline.cross_validate(pipeline.EXAMPLE_CODE, train, {"max_iter": 500},
                                    n_splits=4, seed=2)
    estimator = pipeline.fit(pipeline.EXAMPLE_CODE, train, {"max_iter": 500}).estimator
    features = pipeline.load_features(pipeline.EXAMPLE_CODE)(train.drop(columns=pipeline.LABEL))
    expected = cross_val_score(estimator, features, train[pipeline.LABEL], scoring="accuracy",
                               cv=StratifiedKFold(4, shuffle=True, random_state=2))
    assert np.allclose(found.scores, expected) and len(found.scores) == 4
    assert found.mean == pytest.approx(expected.mean())
    assert found.std == pytest.approx(expected.std(ddof=1))
    assert "4-fold" in str(found)


@pytest.mark.parametrize("n_splits", [1, 2.5])
def test_cross_validate_refuses_a_bad_number_of_folds(models, n_splits):
    with pytest.raises(ValueError, match="n_splits"):
        pipeline.cross_validate(pipeline.EXAMPLE_CODE, models[0], {}, n_splits=n_splits)
    with pytest.raises(ValueError, match="label"):
        pipeline.cross_validate(pipeline.EXAMPLE_CODE, models[0].drop(columns=pipeline.LABEL), {})


def test_train_records_the_cross_validation_when_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    pipeline.make_sensor_data(400, np.random.default_rng(1)).to_csv("train.csv", index=False)
    (tmp_path / "c.yml").write_text("params:\n  max_iter: 500\n")
    assert cli.main(["model", "train", "--config", "c.yml", "--data", "train.csv",
                     "--output", "m.pkl", "--cv-folds", "3"]) == 0
    record = json.loads((tmp_path / "m.train.json").read_text())
    assert len(record["cv_accuracy"]) == 3 and "3-fold" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["model", "train", "--config", "c.yml", "--data", "train.csv",
                  "--output", "m.pkl", "--cv-folds", "1"])


# --- thresholds, gate, monitor ---------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("min_accuracy", 1.5), ("tolerance", -0.1),
                                          ("alpha", 0.0), ("drift_share", 0.0),
                                          ("max_latency_ms", 0.0), ("min_accuracy", True),
                                          ("failure_limit", -1), ("failure_limit", 1.5)])
def test_thresholds_refuse_impossible_values(field, value):
    with pytest.raises(ValueError, match=field):
        lifecycle.Thresholds(**{field: value})


def test_the_analysis_holds_the_three_canary_conditions():
    analysis = lifecycle.Thresholds(max_error_rate=0.03, failure_limit=2).analysis()
    assert analysis.failure_limit == 2
    assert [str(c) for c in analysis.conditions] == [
        "error_rate <= 0.03", "latency_p99_ms <= 250", "accuracy_drop <= 0.05"]


def test_the_gate_refuses_under_the_floor_and_a_regression_beyond_the_noise(models):
    _, good, blind, test = models
    good_metrics, blind_metrics = (lifecycle.score(m, test)
                                   for m in (good, blind))
    assert lifecycle.gate(good_metrics, None, SOUND).passed
    assert lifecycle.gate(good_metrics, good_metrics, SOUND).passed
    floor = lifecycle.Thresholds(min_accuracy=0.99)
    refused = lifecycle.gate(good_metrics, None, floor)
    assert not refused.passed and "below the minimum 0.99" in str(refused)
    regression = lifecycle.gate(blind_metrics, good_metrics,
                                lifecycle.Thresholds(min_accuracy=0.5))
    expected = modelcheck.compare(good_metrics, blind_metrics, tolerance=0.01)
    assert not regression.passed and regression.comparison.regressions == expected.regressions
    assert "regression against production" in str(regression)
    with pytest.raises(ValueError, match="accuracy"):
        lifecycle.gate({"precision": 0.5}, None, SOUND)
    with pytest.raises(ValueError, match="labelled"):
        lifecycle.score(good, test.drop(columns=pipeline.LABEL))


def test_the_retraining_gate_compares_both_models_on_the_same_rows(models):
    _, good, blind, test = models
    y_true = test[pipeline.LABEL].to_numpy()
    refused = lifecycle.paired_gate(y_true, good.predict(test), blind.predict(test),
                                    lifecycle.Thresholds(min_accuracy=0.5))
    expected = modelcheck.paired_comparison(y_true, good.predict(test), blind.predict(test),
                                            margin=0.01, alpha=0.05)
    assert refused.comparison == expected and not expected.passed
    assert not refused.passed and "on the same 800 rows" in str(refused)
    assert refused.accuracy == pytest.approx(np.mean(blind.predict(test) == y_true))
    # The same model against itself: no discordant row, nothing to refuse.
    same = lifecycle.paired_gate(y_true, good.predict(test), good.predict(test), SOUND)
    assert same.passed and same.comparison.baseline_only == same.comparison.candidate_only == 0
    floor = lifecycle.paired_gate(y_true, blind.predict(test), good.predict(test),
                                  lifecycle.Thresholds(min_accuracy=0.99))
    assert not floor.passed and floor.problems == (
        f"accuracy {floor.accuracy:.3f} is below the minimum 0.99",)


def test_the_monitor_decides_when_the_labels_are_in(models):
    train, good, _, test = models
    release = lifecycle.score(good, test)
    drifted = lifecycle.check_batch(
        good, train, pipeline.make_sensor_data(800, np.random.default_rng(4),
                                               vibration_gain=2.0), release, SOUND, 0)
    log = lifecycle.Recorder()
    log.release("v1", "first")
    log.hour = 10.0
    log.monitor(drifted, "v1", label_delay_hours=6.0)
    history = log.history()
    row = history.batches.iloc[0]
    assert (row["hour"], row["labelled_hour"]) == (10.0, 10.0 + lifecycle.BATCH_HOURS + 6.0)
    _, alert, decision = history.events
    assert (alert.hour, alert.action) == (10.0 + lifecycle.BATCH_HOURS, "drift alert")
    assert (decision.hour, decision.action) == (row["labelled_hour"], "retrain")
    assert log.hour == row["labelled_hour"]
    with pytest.raises(ValueError, match="label_delay_hours"):
        log.monitor(drifted, "v1", label_delay_hours=-1.0)


def test_the_monitor_fires_on_drift_with_a_drop_and_not_on_calibrated_readings(models):
    train, good, _, test = models
    release = lifecycle.score(good, test)
    rng = np.random.default_rng(8)
    calm = lifecycle.check_batch(good, train, pipeline.make_sensor_data(800, rng), release,
                                 SOUND, 0)
    # A calibrated batch may show chance drift in one column (about alpha of the time), but
    # never a drop in accuracy, so the rule does not fire.
    assert not calm.degraded and not calm.retrain and calm.action in ("keep", "alert")
    drifted = lifecycle.check_batch(
        good, train, pipeline.make_sensor_data(800, rng, vibration_gain=2.0), release, SOUND, 1)
    assert drifted.drifted_columns == ("vibration",) and drifted.drift_share == pytest.approx(1 / 3)
    assert drifted.retrain and drifted.action == "retrain" and drifted.accuracy_p_value < 0.05
    # The default rule needs half the columns drifted: one sensor of three is not enough.
    same = lifecycle.check_batch(
        good, train, pipeline.make_sensor_data(800, rng, vibration_gain=2.0), release,
        lifecycle.Thresholds(), 2)
    assert same.degraded and not same.drifted and same.action == "alert"
    with pytest.raises(ValueError, match="labelled"):
        lifecycle.check_batch(good, train, test.drop(columns=pipeline.LABEL), release, SOUND)


def test_frame_model_and_population_feed_the_simulator(models):
    _, good, _, test = models
    users = lifecycle.population(test)
    assert users.n_users == len(test) and np.array_equal(users.y, test[pipeline.LABEL])
    assert np.array_equal(lifecycle.FrameModel(good).predict(users.X), good.predict(test))
    with pytest.raises(ValueError, match="vibration"):
        lifecycle.population(test.drop(columns="vibration"))


def test_an_event_needs_a_known_kind():
    with pytest.raises(ValueError, match="kind"):
        lifecycle.Event(0.0, "deploy", "v1", "x", "y")


def test_the_recorder_turns_a_rollout_into_traffic_shares(models):
    _, good, _, test = models
    simulator = traffic.Simulator(lifecycle.population(test), [
        traffic.Version("a", lifecycle.FrameModel(good)),
        traffic.Version("b", lifecycle.FrameModel(good), error_rate=0.5)])
    log = lifecycle.Recorder()
    log.release("a", "first")
    timeline = rollout.Canary((0.1, 1.0), requests_per_step=500).run(
        simulator, "a", "b", np.random.default_rng(0))
    log.rollout(timeline)
    history = log.history()
    assert timeline.outcome == "rolled back" and history.production == "a"
    assert history.max_share("b") == pytest.approx(0.1) and history.max_share("zz") == 0.0
    assert list(history.events_frame()["action"]) == ["release", "rollback"]
    assert history.traffic.iloc[-1][["a", "b"]].tolist() == [1.0, 0.0]


# --- the scripted life ------------------------------------------------------------------------

def test_sound_thresholds_end_on_a_model_retrained_after_the_drift(lives):
    history = lives["sound"]
    assert history.production in lifecycle.retrained_after(history, SMALL.drift_batch)
    assert history.max_share("v2") == history.max_share("v3") == 0.0
    assert history.max_share("v4") <= 0.1 and history.max_share("v5") == 1.0
    assert lifecycle.bad_share(history) == history.max_share("v4")
    assert history.rollouts["v4"].outcome == "rolled back"
    assert history.rollouts["v5"].outcome == "promoted"
    kinds = set(history.events_frame()["kind"])
    assert kinds == set(lifecycle.KINDS) - {"experiment"}
    # The retrained model was gated against production on the same held-out rows.
    retrained = lifecycle.retrained_after(history, SMALL.drift_batch)[0]
    gate = next(e for e in history.events if e.kind == "gate" and e.version == retrained)
    assert gate.action == "passed" and "not worse than production" in gate.reason
    # Each batch's decision comes a day of readings plus the label delay after its start.
    delays = history.batches["labelled_hour"] - history.batches["hour"]
    assert np.allclose(delays, lifecycle.BATCH_HOURS + SMALL.label_delay_hours)


def test_the_default_drift_share_never_fires_on_one_drifted_sensor(lives):
    history = lives["default"]
    assert history.production == "v5" and not lifecycle.retrained_after(history, 0)
    after = history.batches[history.batches["batch"] >= SMALL.drift_batch]
    assert after["degraded"].all() and (after["action"] == "alert").all()


def test_a_seed_replays_the_same_life(lives):
    again = lifecycle.run_scenario(lifecycle.Thresholds(max_accuracy_drop=0.15), 3, SMALL)
    assert again.events == lives["default"].events
    # Played afresh (another scenario object equal to SMALL is the same key: kept), not kept:
    fresh = lifecycle.Scenario(**{**SMALL.__dict__, "n_batches": SMALL.n_batches - 1})
    shorter = lifecycle.run_scenario(lifecycle.Thresholds(max_accuracy_drop=0.15), 3, fresh)
    assert shorter.events[:3] == again.events[:3] and len(shorter.batches) == SMALL.n_batches - 1
    with pytest.raises(TypeError, match="Scenario"):
        lifecycle.run_scenario(SOUND, 3, {"n_train": 800})
    with pytest.raises(TypeError, match="Thresholds"):
        lifecycle.run_scenario({"min_accuracy": 0.7}, 3, SMALL)


def test_a_first_model_refused_at_the_gate_ends_the_life_with_nobody_served():
    # A floor no model reaches: v1 is refused, nothing is released (this crashed with a
    # KeyError on the empty traffic split).
    history = lifecycle.run_scenario(lifecycle.Thresholds(min_accuracy=0.99), 3, SMALL)
    assert history.production is None and history.traffic.empty
    assert list(history.traffic.columns) == ["hour"] and history.max_share("v1") == 0.0
    assert [e.action for e in history.events if e.kind == "gate"] == ["refused"]
    assert history.batches.empty and lifecycle.bad_share(history) == 0.0


def test_the_monitor_measures_drift_against_what_production_was_trained_on(monkeypatch):
    # v5 was trained on the second month's readings, so those are the drift reference while
    # it serves (as check_batch says), not v1's training rows.
    references = []
    check_batch = lifecycle.check_batch

    def spy(model, reference, batch, release, thresholds, index=0):
        references.append(reference)
        return check_batch(model, reference, batch, release, thresholds, index)

    monkeypatch.setattr(lifecycle, "check_batch", spy)
    fitted = []
    fit = pipeline.fit
    monkeypatch.setattr(pipeline, "fit", lambda code, data, params: fitted.append(data) or
                        fit(code, data, params))
    history = lifecycle.run_scenario(SOUND, 4, SMALL)     # a world no other test plays
    v1_rows, v5_rows = fitted[0], fitted[3]          # v1, then v2, v3 and v4 = v5
    assert history.batches.loc[0, "version"] == "v5"
    assert references[0] is v5_rows and references[0] is not v1_rows


@pytest.mark.parametrize("field, value", [("n_users", 0), ("drift_batch", 9),
                                          ("schedule", (0.5, 0.2, 1.0)),
                                          ("label_delay_hours", -1.0),
                                          ("label_delay_hours", float("nan"))])
def test_the_scenario_refuses_bad_sizes(field, value):
    with pytest.raises(ValueError):
        lifecycle.Scenario(**{field: value})


# --- the A/B read and the figure --------------------------------------------------------------

def test_read_ab_is_the_srm_check_then_the_z_test_on_users():
    outcomes = pd.DataFrame({"variant": ["control"] * 500 + ["treatment"] * 480,
                             "outcome": [1.0] * 400 + [0.0] * 100 + [1.0] * 430 + [0.5] * 50})
    read = abtest.read_ab(outcomes)
    assert read.users == {"control": 500, "treatment": 480}
    z, p_value = proportions_ztest([430, 400], [480, 500])
    assert read.test.z == pytest.approx(z) and read.test.p_value == pytest.approx(p_value)
    assert not read.srm.mismatch and read.decision.startswith("treatment better")
    with pytest.raises(ValueError, match="variant"):
        abtest.read_ab(outcomes.drop(columns="variant"))
    with pytest.raises(ValueError, match="both variants"):
        abtest.read_ab(outcomes[outcomes["variant"] == "control"])


def test_the_timeline_figure_draws_batches_traffic_and_decisions(lives):
    figure, axes = plt.subplots(3, 1, sharex=True)
    try:
        returned = plots.lifecycle_timeline(axes, lives["sound"])
        assert list(returned) == list(axes)
        assert len(axes[0].patches) == SMALL.n_batches
        assert {line.get_label() for line in axes[1].get_lines()} == set(
            lives["sound"].traffic.columns.drop("hour"))
        # The release accuracy the monitor compares with, as a step line on the top panel.
        release = [line for line in axes[0].get_lines() if "release" in line.get_label()]
        assert len(release) == 1
        assert np.allclose(release[0].get_ydata(), lives["sound"].batches["release_accuracy"])
        # Alerts have a mark of their own; the crowded first hours are enlarged in an inset.
        marks = {collection.get_label(): len(collection.get_offsets())
                 for collection in axes[2].collections}
        actions = lives["sound"].events_frame()["action"]
        assert marks["alert: a person looks, nothing changes"] == \
            actions.isin(["alert", "drift alert"]).sum() > 0
        (inset,) = axes[2].child_axes
        assert inset.get_xlim()[1] < 0.25 * axes[2].get_xlim()[1]
        with pytest.raises(ValueError, match="three"):
            plots.lifecycle_timeline(axes[:2], lives["sound"])
    finally:
        plt.close(figure)


def test_a_canary_step_waits_for_its_labels(lives):
    assert lifecycle.canary_step_minutes(24.0) == lifecycle.CANARY_TRAFFIC_MINUTES + 24 * 60
    assert lifecycle.canary_step_minutes(0.0) == lifecycle.CANARY_TRAFFIC_MINUTES
    assert lives["sound"].rollouts["v5"].step_minutes == \
        lifecycle.canary_step_minutes(SMALL.label_delay_hours)
    with pytest.raises(ValueError, match="label_delay_hours"):
        lifecycle.canary_step_minutes(-1.0)


def test_an_experiment_is_recorded_without_changing_production(models):
    _, good, _, test = models
    simulator = traffic.Simulator(lifecycle.population(test), [
        traffic.Version("a", lifecycle.FrameModel(good)),
        traffic.Version("b", lifecycle.FrameModel(good))])
    log = lifecycle.Recorder()
    log.release("a", "first")
    split = rollout.ABSplit(0.5, n_steps=1, requests_per_step=400).run(
        simulator, "a", "b", np.random.default_rng(1))
    log.experiment(split, abtest.read_ab(split.outcomes).decision)
    history = log.history()
    assert history.production == "a" and history.max_share("b") == pytest.approx(0.5)
    assert history.events[-1].kind == "experiment" and "not significant" in \
        history.events[-1].reason
    assert history.traffic.iloc[-1][["a", "b"]].tolist() == [1.0, 0.0]


def test_a_policy_replayed_in_a_world_another_policy_drew_is_the_life_played_afresh():
    # What a seed draws and fits is kept per seed (run_scenario's docstring); the decisions
    # after it must come out as if the world had been drawn for this policy alone.
    loose, strict = lifecycle.Thresholds(), lifecycle.Thresholds(drift_share=0.3,
                                                                   max_accuracy_drop=0.15)
    lifecycle.run_scenario(loose, 5, lifecycle.SMALL_SCENARIO)
    kept = lifecycle.run_scenario(strict, 5, lifecycle.SMALL_SCENARIO)
    lifecycle._life.cache_clear()  # pylint: disable=protected-access
    lifecycle._world.cache_clear()  # pylint: disable=protected-access
    fresh = lifecycle.run_scenario(strict, 5, lifecycle.SMALL_SCENARIO)
    assert kept is not fresh
    assert kept.events == fresh.events and kept.traffic.equals(fresh.traffic)
    assert kept.batches.equals(fresh.batches)
    assert kept.production == fresh.production
    assert all(kept.rollouts[name].metrics.equals(fresh.rollouts[name].metrics)
               for name in fresh.rollouts) and list(kept.rollouts) == list(fresh.rollouts)
