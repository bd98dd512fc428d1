"""labsupport.steps: the workflow steps of lesson 05 as `labsupport model ...` commands."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from labsupport import cli, pipeline


@pytest.fixture(name="workspace")
def _workspace(tmp_path, monkeypatch):
    """A folder with training and test CSVs and two configs: a sound one and a crippled one."""
    rng = np.random.default_rng(3)
    pipeline.make_sensor_data(1500, rng).to_csv(tmp_path / "train.csv", index=False)
    pipeline.make_sensor_data(500, rng).to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "good.yml").write_text("params:\n  C: 1.0\n  max_iter: 500\n")
    (tmp_path / "weak.yml").write_text("params:\n  C: 0.0001\n  max_iter: 500\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*argv):
    return cli.main(["model", *argv])


def _train_and_evaluate(name, config):
    assert _run("train", "--config", config, "--data", "train.csv",
                "--output", f"models/{name}.pkl") == 0
    assert _run("evaluate", "--model", f"models/{name}.pkl", "--data", "test.csv",
                "--output", f"{name}.json") == 0
    return json.loads(open(f"{name}.json", encoding="utf-8").read())


def test_train_evaluate_compare_gate_end_to_end(workspace, capsys):
    baseline = _train_and_evaluate("baseline", "good.yml")
    weak = _train_and_evaluate("weak", "weak.yml")
    assert baseline["model_size_bytes"] == (workspace / "models" / "baseline.pkl").stat().st_size
    record = json.loads((workspace / "models" / "baseline.train.json").read_text())
    assert baseline["train_seconds"] == record["train_seconds"] > 0
    assert record["params"] == {"C": 1.0, "max_iter": 500}
    assert baseline["n_test"] == 500 and baseline["accuracy"] > weak["accuracy"]
    capsys.readouterr()
    assert _run("compare", "--baseline", "baseline.json", "--candidate", "baseline.json",
                "--output", "same.md") == 0
    assert _run("compare", "--baseline", "baseline.json", "--candidate", "weak.json",
                "--output", "worse.md") == 1
    worse = (workspace / "worse.md").read_text()
    assert worse.startswith("## ❌") and "| F1 |" in worse and worse in capsys.readouterr().out
    assert _run("gate", "baseline.json", "--min", "accuracy=0.7") == 0
    assert _run("gate", "weak.json", "--min", "accuracy=0.7", "--min", "f1=0.3") == 1
    assert "f1 0.000 is below the minimum 0.3" in capsys.readouterr().out


def test_the_config_reaches_the_model(workspace):
    (workspace / "features.py").write_text(
        "def add_features(frame):\n    return frame[['temperature']]\n")
    (workspace / "one.yml").write_text("features: features.py\nparams: {max_iter: 300}\n")
    assert _run("train", "--config", "one.yml", "--data", "train.csv", "--output", "m.pkl") == 0
    model = pickle.loads((workspace / "m.pkl").read_bytes())
    assert model.estimator.n_features_in_ == 1
    assert model.estimator[-1].max_iter == 300


@pytest.mark.usefixtures("workspace")
def test_validate_data_fails_on_readings_out_of_range(capsys):
    assert _run("validate-data", "train.csv") == 0
    frame = pipeline.make_sensor_data(200, np.random.default_rng(4))
    frame.assign(temperature=frame["temperature"] * 9 / 5 + 32).to_csv("f.csv", index=False)
    assert _run("validate-data", "f.csv") == 1
    assert _run("validate-data", "train.csv", "f.csv") == 1
    assert "temperature" in capsys.readouterr().out


def test_the_gate_fails_on_a_missing_metric(workspace, capsys):
    (workspace / "partial.json").write_text(json.dumps({"accuracy": 0.9}))
    assert _run("gate", "partial.json", "--min", "accuracy=0.8", "--min", "f1=0.5") == 1
    assert "f1 is missing" in capsys.readouterr().out


@pytest.mark.parametrize("argv, complaint", [
    (["evaluate", "--model", "none.pkl", "--data", "test.csv", "--output", "x.json"],
     "model file none.pkl does not exist"),
    (["evaluate", "--model", "train.csv", "--data", "test.csv", "--output", "x.json"],
     "not a model saved by"),
    (["compare", "--baseline", "bad.json", "--candidate", "bad.json"], "is not valid JSON"),
    (["compare", "--baseline", "list.json", "--candidate", "list.json"], "JSON object"),
    (["compare", "--baseline", "partial.json", "--candidate", "partial.json"], "lack"),
    (["train", "--config", "odd.yml", "--data", "train.csv", "--output", "m.pkl"],
     "unknown keys \\['learning_rate'\\]"),
    (["train", "--config", "good.yml", "--data", "missing.csv", "--output", "m.pkl"],
     "training data missing.csv does not exist"),
    (["train", "--config", "solver.yml", "--data", "train.csv", "--output", "m.pkl"],
     "training failed"),
])
def test_broken_inputs_exit_2_with_a_sentence(workspace, capsys, argv, complaint):
    (workspace / "bad.json").write_text('{"accuracy": 0.9,')
    (workspace / "list.json").write_text("[0.9]")
    (workspace / "partial.json").write_text(json.dumps({"accuracy": 0.9}))
    (workspace / "odd.yml").write_text("learning_rate: 0.1\n")
    (workspace / "solver.yml").write_text("params: {solver: magic}\n")
    assert _run(*argv) == 2
    assert re.search(complaint, capsys.readouterr().err)


@pytest.mark.parametrize("action", ["validate-data", "train", "evaluate", "compare", "gate"])
def test_every_step_has_help(action, capsys):
    with pytest.raises(SystemExit) as stopped:
        _run(action, "--help")
    assert stopped.value.code == 0 and "usage: labsupport model" in capsys.readouterr().out


def test_a_step_does_not_load_the_course_tooling(workspace):
    """Each CI step is a new process: `labsupport model ...` must not import nbformat & co."""
    (workspace / "m.json").write_text(json.dumps({"accuracy": 0.9}))
    probe = ("import sys; from labsupport import cli; "
             "status = cli.main(['model', 'gate', 'm.json', '--min', 'accuracy=0.5']); "
             "print(status, sorted(m for m in ('nbformat', 'labsupport.course') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=workspace, capture_output=True,
                          text=True, check=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout
