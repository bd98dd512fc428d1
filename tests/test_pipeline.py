"""labsupport.pipeline: each stage stops exactly the releases it should."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from labsupport import codequality, pipeline, testing


@pytest.fixture(scope="module")
def data():
    """Training data and a separate, trusted evaluation set."""
    rng = np.random.default_rng(0)
    return pipeline.make_sensor_data(1500, rng), pipeline.make_sensor_data(800, rng)


@pytest.fixture
def registry(tmp_path):
    """An empty registry of its own for each test."""
    return pipeline.Registry(tmp_path / "registry")


def test_sensor_data_meets_its_own_schema(data):
    train, _ = data
    assert pipeline.validation.validate(train, pipeline.SENSOR_SCHEMA).ok
    assert 0.2 < train[pipeline.LABEL].mean() < 0.5


def test_sensor_data_is_reproducible_from_the_seed():
    first = pipeline.make_sensor_data(50, np.random.default_rng(3))
    pd.testing.assert_frame_equal(first, pipeline.make_sensor_data(50, np.random.default_rng(3)))


def test_good_change_is_released_and_becomes_production(data, registry):
    train, evaluation = data
    run = pipeline.run(pipeline.example_change(train), registry, evaluation)
    assert [r.status for r in run.results] == ["passed"] * len(pipeline.STAGES)
    assert run.released and run.version == "v1" and registry.production_version() == "v1"
    model = registry.load("v1")
    assert model.accuracy(evaluation) >= pipeline.Gate().min_accuracy
    run.raise_for_status()


@pytest.mark.parametrize("broken, stage", [
    ("lint", "lint"), ("test", "test"), ("validate", "validate"), ("train", "train"),
    ("gate", "gate"),
])
def test_each_sabotage_is_stopped_by_its_stage(data, registry, broken, stage):
    train, evaluation = data
    run = pipeline.run(pipeline.sabotage(pipeline.example_change(train), broken), registry,
                       evaluation)
    assert run.failed_stage == stage
    statuses = run.to_frame()["status"]
    assert (statuses[statuses.index != stage].isin(["passed", "skipped"])).all()
    after = list(pipeline.STAGES)[list(pipeline.STAGES).index(stage) + 1:]
    assert (statuses[after] == "skipped").all()
    assert not run.released and registry.versions() == []
    with pytest.raises(pipeline.ReleaseBlocked, match=stage):
        run.raise_for_status()


def test_lint_failure_names_the_pylint_messages(data, registry):
    train, evaluation = data
    run = pipeline.run(pipeline.sabotage(pipeline.example_change(train), "lint"), registry,
                       evaluation)
    detail = run.to_frame().loc["lint", "detail"]
    assert "invalid-name" in detail and "/10" in detail


def test_the_lint_stage_is_codequality_with_pylints_defaults():
    code = pipeline.EXAMPLE_CODE + "\n\ndef Bad(x):\n    return x\n"
    score, messages = pipeline.lint_score(code)
    report = codequality.lint(textwrap.dedent(code), config=None, module="features")
    assert report.score is not None and score == report.score < 10
    assert messages == tuple(f"features.py:{message}" for message in report.messages)
    assert any(message.endswith("(invalid-name)") for message in messages)


def test_code_that_does_not_parse_fails_the_lint_stage_with_the_reason(data, registry):
    train, evaluation = data
    broken = replace(pipeline.example_change(train), code="def add_features(frame:\n")
    run = pipeline.run(broken, registry, evaluation)
    assert run.failed_stage == "lint"
    assert "features.py does not parse (line 1" in run.to_frame().loc["lint", "detail"]


def test_delivery_waits_for_a_person_and_deployment_does_not(data, registry):
    train, evaluation = data
    delivered = pipeline.run(pipeline.example_change(train), registry, evaluation,
                             mode="delivery")
    assert delivered.results[-1].status == "waiting" and not delivered.released
    assert registry.production_version() is None and registry.versions() == ["v1"]
    registry.promote("v1")
    assert registry.production_version() == "v1"
    deployed = pipeline.run(pipeline.example_change(train), registry, evaluation)
    assert deployed.released and registry.production_version() == "v2"
    assert registry.history()["live"].tolist() == [False, True]


def test_gate_blocks_a_candidate_worse_than_production(data, registry):
    train, evaluation = data
    pipeline.run(pipeline.example_change(train), registry, evaluation)
    # Half the signal: the candidate loses the vibration reading.
    weaker = pipeline.example_change(train)
    weaker = pipeline.Change(code=weaker.code.replace('"vibration", "pressure"]]', '"pressure"]]')
                             .replace(' * features["vibration"]', ''),
                             tests="def test_nothing():\n    assert True\n", data=train,
                             params=weaker.params)
    run = pipeline.run(weaker, registry, evaluation, gate=pipeline.Gate(min_accuracy=0.0))
    assert run.failed_stage == "gate"
    assert "worse than production v1" in run.to_frame().loc["gate", "detail"]


def test_registry_round_trips_a_model(data, tmp_path):
    train, evaluation = data
    registry = pipeline.Registry(tmp_path)
    pipeline.run(pipeline.example_change(train), registry, evaluation)
    reopened = pipeline.Registry(tmp_path)
    assert reopened.versions() == ["v1"] and reopened.production_version() == "v1"
    np.testing.assert_array_equal(reopened.load("v1").predict(evaluation),
                                  registry.load("v1").predict(evaluation))


@pytest.mark.parametrize("call, error", [
    (lambda reg, d: pipeline.run(pipeline.example_change(d), reg, d, mode="yolo"), ValueError),
    (lambda reg, d: reg.promote("v9"), ValueError),
    (lambda reg, d: reg.load("v9"), ValueError),
    (lambda reg, d: pipeline.sabotage(pipeline.example_change(d), "deploy"), ValueError),
    (lambda reg, d: pipeline.load_features("x = 1"), ValueError),
    (lambda reg, d: pipeline.make_sensor_data(0, np.random.default_rng(0)), ValueError),
])
def test_bad_input_is_refused(data, registry, call, error):
    with pytest.raises(error):
        call(registry, data[0])


def test_lint_and_test_results_are_reused_for_identical_code():
    before = pipeline.lint_score.cache_info().hits
    first = pipeline.lint_score(pipeline.EXAMPLE_CODE)
    assert pipeline.lint_score(pipeline.EXAMPLE_CODE) == first
    assert pipeline.lint_score.cache_info().hits > before
    assert pipeline.lint_score(pipeline.EXAMPLE_CODE + "\n\ndef Bad(x):\n    return x\n")[0] \
        < first[0]


def test_every_stage_belongs_to_one_of_the_lectures_three_stages():
    assert set(pipeline.PHASES) == {"build", "test", "deploy"}
    grouped = [stage for stages in pipeline.PHASES.values() for stage in stages]
    assert sorted(grouped) == sorted(pipeline.STAGES), "each stage in exactly one phase"
    assert pipeline.PHASE_OF_STAGE["train"] == "build"
    assert pipeline.PHASE_OF_STAGE["deploy"] == "deploy"


def test_the_artifact_built_by_train_is_the_one_deployed(data, registry):
    train, evaluation = data
    run = pipeline.run(pipeline.example_change(train), registry, evaluation)
    frame = run.to_frame()
    assert frame["phase"].tolist() == [pipeline.PHASE_OF_STAGE[s] for s in pipeline.STAGES]
    artifact = registry.history().loc[0, "artifact"]
    assert len(artifact) == 12
    assert f"built model artifact {artifact}" in frame.loc["train", "detail"]
    assert artifact in frame.loc["deploy", "detail"]
    changed = pipeline.run(pipeline.sabotage(pipeline.example_change(train), "gate"), registry,
                           evaluation)
    assert artifact not in changed.to_frame().loc["train", "detail"], \
        "other settings build another artifact"


def test_the_test_stage_reports_pytests_outcomes(data, registry):
    train, evaluation = data
    good = pipeline.run(pipeline.example_change(train), registry, evaluation)
    assert good.to_frame().loc["test", "detail"] == "5 passed"
    broken = pipeline.run(pipeline.sabotage(pipeline.example_change(train), "test"), registry,
                          evaluation)
    detail = broken.to_frame().loc["test", "detail"]
    assert detail.startswith("4 passed, 1 failed; "
                             "test_interaction_is_the_product_of_heat_and_vibration: assert ")


def test_the_test_stage_runs_pytest_through_lesson_03s_runner(monkeypatch):
    calls = []

    def fake_run_pytest(files, args=(), timeout=0.0, execute=None):
        calls.append((sorted(files), tuple(args), timeout, execute))
        return testing.TestRun((testing.TestOutcome("test_features.py::test_a", "passed"),), 0,
                               "", "completed")

    monkeypatch.setattr(testing, "run_pytest", fake_run_pytest)
    assert pipeline.run_tests.__wrapped__("x = 1\n", "def test_a():\n    pass\n") \
        == (True, "1 passed")
    assert calls == [(["features.py", "test_features.py"], (), pipeline.TOOL_TIMEOUT, None)]
