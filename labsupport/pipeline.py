"""A tiny CI/CD pipeline for a machine-learning change, run in-process (lesson 01).

A :class:`Change` is what a developer pushes: the feature code, its unit tests, the training data
and the model's settings. :func:`run` takes it through the stages a real ML pipeline has —

    lint -> test -> validate -> train -> gate -> deploy

and stops at the first stage that fails, exactly as a CI server does. They map onto the three
stages of the lecture (:data:`PHASES`): the *build* of an ML system is training, which turns the
code and the data into the artifact that ships (a pickled model plus its feature code, named by a
hash of its bytes); the cheap *tests* of the inputs (lint, unit tests, data validation) run before
that expensive build and the test of its output (the quality gate) after it; *deploy* publishes
exactly the artifact that was built and tested. Lint and test run the real tools: pylint in
process through :func:`labsupport.codequality.lint` (lesson 04's), pytest in a subprocess on
files written to a throw-away folder through :func:`labsupport.testing.run_pytest` (lesson
03's runner); the deploy
stage writes the model into a :class:`Registry` folder. In "delivery" mode the pipeline stops at a
staged release that a person promotes; in "deployment" mode it promotes automatically.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import pickle
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from labsupport import codequality, testing, validation

#: The stages in the order they run.
STAGES = ("lint", "test", "validate", "train", "gate", "deploy")
#: The lecture's three stages (build, test, deploy), in the order their first stage runs, and the
#: pipeline stages that belong to each. Training is the build: it makes the artifact that ships.
PHASES = MappingProxyType({
    "test": ("lint", "test", "validate", "gate"),
    "build": ("train",),
    "deploy": ("deploy",),
})
#: The lecture's stage each pipeline stage belongs to.
PHASE_OF_STAGE = MappingProxyType({stage: phase for phase, stages in PHASES.items()
                                   for stage in stages})
#: The two ways a pipeline can end: a person promotes (delivery) or the pipeline does (deployment).
MODES = ("delivery", "deployment")
#: The label column of the sensor data.
LABEL = "failure"
#: How long lint or test may take before the stage fails (seconds).
TOOL_TIMEOUT = 120

#: What a batch of sensor readings must look like (used by the validate stage).
SENSOR_SCHEMA = validation.Schema(
    columns=MappingProxyType({
        "temperature": validation.Column(minimum=-20.0, maximum=120.0),   # degrees Celsius
        "vibration": validation.Column(minimum=0.0, maximum=50.0),        # mm/s
        "pressure": validation.Column(minimum=0.0, maximum=100.0),        # bar
        LABEL: validation.Column(minimum=0.0, maximum=1.0),
    }),
    min_rows=100,
)


def make_sensor_data(n: int, rng: np.random.Generator, *,
                     vibration_gain: float = 1.0) -> pd.DataFrame:
    """Simulate ``n`` machine readings and whether the machine failed soon after.

    Temperature (degrees C), vibration (mm/s) and pressure (bar) are drawn independently; the
    chance of failure grows with heat and vibration (a logistic model), so a model can learn it
    but never perfectly.

    Parameters
    ----------
    n
        Number of rows (at least 1).
    rng
        The random generator to draw from.
    vibration_gain
        What the vibration sensor reports per mm/s of true vibration. 1 is the calibrated
        sensor; another value is the replacement sensor of lesson 08. The readings move
        (covariate drift, in P(X)), and since failures still follow the true vibration, the
        relation between the *reported* vibration and failure changes too (concept drift in
        the features a model sees, P(y | X)): a model fitted on the old readings misjudges
        the new ones, and one refitted on new readings learns a smaller vibration coefficient.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of rows, got {n}.")
    if not math.isfinite(vibration_gain) or vibration_gain <= 0:
        raise ValueError(f"vibration_gain must be a positive factor, got {vibration_gain}.")
    temperature = rng.normal(70.0, 8.0, n)
    vibration = rng.gamma(shape=2.0, scale=1.5, size=n)
    pressure = rng.normal(30.0, 3.0, n)
    logit = -1.0 + 0.18 * (temperature - 70.0) + 0.9 * (vibration - 3.0) \
        - 0.05 * (pressure - 30.0)
    failure = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame({"temperature": temperature, "vibration": vibration_gain * vibration,
                         "pressure": pressure, LABEL: failure.astype(int)})


@dataclass(frozen=True)
class Change:
    """What a developer pushes.

    Parameters
    ----------
    code
        Source of ``features.py``; it must define ``add_features(frame) -> DataFrame`` that turns
        raw readings (without the label) into model inputs.
    tests
        Source of ``test_features.py``, the unit tests of that code (run with pytest).
    data
        Training data with the columns of :data:`SENSOR_SCHEMA`.
    params
        Keyword arguments of scikit-learn's ``LogisticRegression``.
    """

    code: str
    tests: str
    data: pd.DataFrame = field(repr=False)
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Gate:
    """The quality bar a release must clear.

    Parameters
    ----------
    min_lint_score
        Lowest pylint score (out of 10) the feature code may have.
    min_accuracy
        Lowest accuracy on the evaluation set a candidate model may have.
    max_regression
        How much worse than the production model a candidate may be (accuracy points).
    """

    min_lint_score: float = 9.0
    min_accuracy: float = 0.75
    max_regression: float = 0.01


@dataclass(frozen=True)
class StageResult:
    """One stage's outcome: ``status`` is passed, failed, skipped or waiting (for approval)."""

    stage: str
    status: str
    detail: str


@dataclass(frozen=True)
class PipelineRun:
    """The outcome of :func:`run`, stage by stage."""

    results: tuple[StageResult, ...]
    mode: str
    version: str | None = None

    @property
    def failed_stage(self) -> str | None:
        """The stage that stopped the release, or None."""
        return next((r.stage for r in self.results if r.status == "failed"), None)

    @property
    def released(self) -> bool:
        """True when the new model is live in production."""
        return self.results[-1].status == "passed"

    def to_frame(self) -> pd.DataFrame:
        """The stages as a table (one row per stage), with the lecture's stage (``phase``)."""
        frame = pd.DataFrame([vars(r) for r in self.results]).set_index("stage")
        frame.insert(0, "phase", [PHASE_OF_STAGE[stage] for stage in frame.index])
        return frame

    def raise_for_status(self) -> None:
        """Raise :class:`ReleaseBlocked` if a stage failed, as a red CI run does."""
        if self.failed_stage is not None:
            result = next(r for r in self.results if r.stage == self.failed_stage)
            raise ReleaseBlocked(f"stage '{result.stage}' failed: {result.detail}")

    def __str__(self) -> str:
        if self.failed_stage:
            outcome = f"blocked at '{self.failed_stage}'"
        elif self.released:
            outcome = f"released {self.version} to production"
        else:
            outcome = f"{self.version} staged, waiting for approval"
        return f"pipeline ({self.mode}): {outcome}"


class ReleaseBlocked(RuntimeError):
    """A pipeline stage failed, so nothing was released."""


@dataclass(frozen=True)
class Model:
    """A trained model together with the feature code it needs to turn raw data into inputs."""

    code: str
    estimator: object = field(repr=False)

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        """Predict the label for raw readings (the label column is ignored if present)."""
        features = load_features(self.code)(data.drop(columns=[LABEL], errors="ignore"))
        return self.estimator.predict(features)

    def accuracy(self, data: pd.DataFrame) -> float:
        """Accuracy on labelled readings."""
        return float(accuracy_score(data[LABEL], self.predict(data)))

    def artifact(self) -> str:
        """Name of the built artifact: the first 12 hex digits of the SHA-256 of its bytes."""
        digest = hashlib.sha256(self.code.encode())
        digest.update(pickle.dumps(self.estimator))
        return digest.hexdigest()[:12]


def load_features(code: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Execute feature code in a fresh namespace and return its ``add_features`` function."""
    namespace: dict[str, object] = {"__name__": "features"}
    exec(compile(code, "features.py", "exec"), namespace)  # pylint: disable=exec-used
    add_features = namespace.get("add_features")
    if not callable(add_features):
        raise ValueError("features.py must define a function add_features(frame).")
    return add_features


class Registry:
    """A model registry in a folder: one sub-folder per version, and a production pointer.

    ``root/v1/model.pkl``, ``root/v1/features.py``, ``root/v1/card.json`` hold a version;
    ``root/production.json`` names the version that serves users.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def versions(self) -> list[str]:
        """Published versions, oldest first."""
        found = [p.name for p in self.root.glob("v*") if (p / "card.json").is_file()]
        return sorted(found, key=lambda name: int(name[1:]))

    def _require(self, version: str) -> None:
        if version not in self.versions():
            raise ValueError(f"unknown version {version!r}; published: {self.versions()}")

    def publish(self, model: Model, metrics: Mapping[str, float]) -> str:
        """Store a model as the next version and return its name (it is not live yet)."""
        version = f"v{len(self.versions()) + 1}"
        folder = self.root / version
        folder.mkdir()
        (folder / "features.py").write_text(model.code)
        (folder / "model.pkl").write_bytes(pickle.dumps(model.estimator))
        card = {"version": version, "artifact": model.artifact(), "metrics": dict(metrics)}
        (folder / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True))
        return version

    def promote(self, version: str) -> None:
        """Make ``version`` the one production serves."""
        self._require(version)
        pointer = self.root / "production.json"
        staging = pointer.with_suffix(".tmp")
        staging.write_text(json.dumps({"version": version}))
        staging.replace(pointer)

    def production_version(self) -> str | None:
        """The live version, or None before the first release."""
        pointer = self.root / "production.json"
        return json.loads(pointer.read_text())["version"] if pointer.is_file() else None

    def load(self, version: str) -> Model:
        """Load a published version."""
        self._require(version)
        folder = self.root / version
        return Model(code=(folder / "features.py").read_text(),
                     estimator=pickle.loads((folder / "model.pkl").read_bytes()))

    def history(self) -> pd.DataFrame:
        """Every version with its metrics and whether it is live."""
        live = self.production_version()
        rows = []
        for version in self.versions():
            card = json.loads((self.root / version / "card.json").read_text())
            rows.append({"version": version, "artifact": card.get("artifact"), **card["metrics"],
                         "live": version == live})
        return pd.DataFrame(rows)


# Like a CI server's cache keyed by a hash of the inputs: pylint and pytest give the same answer
# for the same files, so a run whose code and tests were already checked reuses that answer.
@functools.lru_cache(maxsize=64)
def lint_score(code: str) -> tuple[float, tuple[str, ...]]:
    """pylint's score for ``code`` as ``features.py``, with pylint's defaults, and its messages.

    The lint stage of lesson 01, through :func:`labsupport.codequality.lint` (lesson 04): the
    messages read as pylint prints them (``features.py:1:0: C0114: Missing module docstring
    (missing-module-docstring)``). Code that does not parse scores 0 with the reason.
    """
    try:
        report = codequality.lint(textwrap.dedent(code), config=None, module="features")
    except codequality.CodeDoesNotParse as error:
        return 0.0, (f"features.py: {error}",)
    messages = tuple(f"features.py:{message}" for message in report.messages)
    return (report.score if report.score is not None else 0.0), messages


@functools.lru_cache(maxsize=64)
def run_tests(code: str, tests: str) -> tuple[bool, str]:
    """Run pytest on ``tests`` (as ``test_features.py``) against ``code``; (passed, summary).

    The run is :func:`labsupport.testing.run_pytest`'s (lesson 03): a fresh folder, a subprocess
    killed after :data:`TOOL_TIMEOUT` seconds, no third-party plugins. The summary counts the
    outcomes and, when the stage fails, quotes the first two failures.
    """
    run = testing.run_pytest({"features.py": textwrap.dedent(code),
                              "test_features.py": textwrap.dedent(tests)},
                             timeout=TOOL_TIMEOUT)
    if run.passed:
        return True, run.summary()
    failures = [f"{o.test_id.split('::')[-1]}: {o.message}" for o in run.outcomes
                if o.outcome in ("failed", "error")][:2]
    return False, "; ".join([run.summary(), *failures])


def _lint(change: Change, gate: Gate) -> StageResult:
    score, messages = lint_score(change.code)
    detail = f"pylint {score:.2f}/10 (minimum {gate.min_lint_score:g})"
    if score < gate.min_lint_score:
        shown = "; ".join(m.split(": ", 1)[-1] for m in messages[:3])
        return StageResult("lint", "failed", f"{detail}: {shown}")
    return StageResult("lint", "passed", detail)


def _test(change: Change) -> StageResult:
    passed, summary = run_tests(change.code, change.tests)
    return StageResult("test", "passed" if passed else "failed", summary)


def _validate(change: Change, schema: validation.Schema) -> StageResult:
    report = validation.validate(change.data, schema)
    return StageResult("validate", "passed" if report.ok else "failed", str(report))


def fit(code: str, data: pd.DataFrame, params: Mapping[str, object]) -> Model:
    """Train the pipeline's model: ``code``'s features, scaled, into a logistic regression.

    The train stage of lesson 01 and the ``labsupport model train`` command of lesson 05 both
    call it, so the two lessons train exactly the same model.

    Parameters
    ----------
    code
        Source of ``features.py`` defining ``add_features(frame)``.
    data
        Labelled readings (the :data:`LABEL` column is the target).
    params
        Keyword arguments of scikit-learn's ``LogisticRegression``.
    """
    if LABEL not in data.columns:
        raise ValueError(f"the training data needs the label column {LABEL!r}; "
                         f"it has {list(data.columns)}.")
    features = load_features(code)(data.drop(columns=[LABEL]))
    estimator = make_pipeline(StandardScaler(), LogisticRegression(**params))
    estimator.fit(features, data[LABEL])
    return Model(code=code, estimator=estimator)


@dataclass(frozen=True)
class CrossValidation:
    """Accuracy of :func:`fit`'s model on each held-out fold of :func:`cross_validate`."""

    scores: tuple[float, ...]

    @property
    def mean(self) -> float:
        """Mean accuracy over the folds."""
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        """Standard deviation of the fold accuracies (how much one split can move the score)."""
        return float(np.std(self.scores, ddof=1))

    def __str__(self) -> str:
        return (f"{len(self.scores)}-fold cross-validated accuracy {self.mean:.3f} "
                f"(fold standard deviation {self.std:.3f})")


def cross_validate(code: str, data: pd.DataFrame, params: Mapping[str, object], *,
                   n_splits: int = 5, seed: int = 0) -> CrossValidation:
    """Accuracy of :func:`fit`'s model on ``n_splits`` stratified folds of ``data`` (lesson 08).

    Each fold is held out once while the same pipeline (features, scaling, logistic regression)
    is fitted on the others: an estimate of how the trained model will do on new rows, from the
    training data alone, before the held-out test set is touched.

    Parameters
    ----------
    code, data, params
        As for :func:`fit`.
    n_splits
        Number of folds (at least 2).
    seed
        Seeds the shuffle that deals rows to folds.
    """
    if int(n_splits) != n_splits or n_splits < 2:
        raise ValueError(f"n_splits must be a whole number >= 2, got {n_splits}.")
    if LABEL not in data.columns:
        raise ValueError(f"the training data needs the label column {LABEL!r}; "
                         f"it has {list(data.columns)}.")
    features = load_features(code)(data.drop(columns=[LABEL]))
    estimator = make_pipeline(StandardScaler(), LogisticRegression(**params))
    folds = StratifiedKFold(n_splits=int(n_splits), shuffle=True, random_state=seed)
    scores = cross_val_score(estimator, features, data[LABEL], cv=folds, scoring="accuracy")
    return CrossValidation(tuple(float(score) for score in scores))


def _train(change: Change) -> tuple[StageResult, Model | None]:
    try:
        model = fit(change.code, change.data, change.params)
    except Exception as error:  # pylint: disable=broad-exception-caught  # any failure fails the stage
        return StageResult("train", "failed", f"{type(error).__name__}: {error}"), None
    n_inputs = model.estimator.n_features_in_
    return StageResult("train", "passed", f"built model artifact {model.artifact()}: trained on "
                                          f"{len(change.data)} rows, {n_inputs} inputs"), model


def _gate(model: Model, gate: Gate, evaluation: pd.DataFrame,
          registry: Registry) -> tuple[StageResult, dict[str, float]]:
    candidate = model.accuracy(evaluation)
    live = registry.production_version()
    production = registry.load(live).accuracy(evaluation) if live else math.nan
    metrics = {"accuracy": round(candidate, 4)}
    detail = f"candidate accuracy {candidate:.3f} (minimum {gate.min_accuracy:.3f})"
    if live:
        detail += f", production {live} {production:.3f} (allowed drop {gate.max_regression:.3f})"
    problems = []
    if candidate < gate.min_accuracy:
        problems.append("below the minimum")
    if live and candidate < production - gate.max_regression:
        problems.append(f"worse than production {live}")
    status = "failed" if problems else "passed"
    return StageResult("gate", status, detail + ("; " + ", ".join(problems) if problems else "")), \
        metrics


def run(change: Change, registry: Registry, evaluation: pd.DataFrame, *,
        gate: Gate | None = None, mode: str = "deployment",
        schema: validation.Schema = SENSOR_SCHEMA) -> PipelineRun:
    """Take ``change`` through every stage, stopping at the first failure.

    Parameters
    ----------
    change
        Code, tests, data and settings to release.
    registry
        Where released models go.
    evaluation
        A labelled, trusted hold-out set: candidate and production are scored on the same rows.
    gate
        The quality bar (defaults to :class:`Gate`'s defaults).
    mode
        "deployment" promotes a model that passes every stage; "delivery" stages it and waits for
        a person to call ``registry.promote(version)``.
    schema
        The data contract of the validate stage.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    gate = gate or Gate()
    results: list[StageResult] = []
    version = None
    model, metrics = None, {}
    for stage in STAGES:
        if results and results[-1].status != "passed":
            results.append(StageResult(stage, "skipped", "an earlier stage failed"))
            continue
        if stage == "lint":
            result = _lint(change, gate)
        elif stage == "test":
            result = _test(change)
        elif stage == "validate":
            result = _validate(change, schema)
        elif stage == "train":
            result, model = _train(change)
        elif stage == "gate":
            result, metrics = _gate(model, gate, evaluation, registry)
        else:
            version = registry.publish(model, metrics)
            if mode == "deployment":
                registry.promote(version)
                result = StageResult("deploy", "passed",
                                     f"{version} (artifact {model.artifact()}) is live")
            else:
                result = StageResult("deploy", "waiting",
                                     f"{version} staged; a person promotes it with "
                                     f"registry.promote('{version}')")
        results.append(result)
    return PipelineRun(results=tuple(results), mode=mode, version=version)


#: A change that passes every stage: the example of lesson 01.
EXAMPLE_CODE = '''"""Feature engineering for the machine-failure model."""

import pandas as pd


def add_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the model inputs: the three readings and heat times vibration."""
    features = frame[["temperature", "vibration", "pressure"]].copy()
    features["heat_x_vibration"] = features["temperature"] * features["vibration"]
    return features
'''

EXAMPLE_TESTS = '''import pandas as pd
import pytest

from features import add_features


def test_interaction_is_the_product_of_heat_and_vibration():
    frame = pd.DataFrame({"temperature": [70.0], "vibration": [2.0], "pressure": [30.0]})
    assert add_features(frame)["heat_x_vibration"].tolist() == [140.0]


def test_the_label_never_becomes_an_input():
    frame = pd.DataFrame({"temperature": [70.0], "vibration": [2.0], "pressure": [30.0],
                          "failure": [1]})
    assert "failure" not in add_features(frame).columns


@pytest.mark.parametrize("column", ["temperature", "vibration", "pressure"])
def test_raw_readings_pass_through_unchanged(column):
    frame = pd.DataFrame({"temperature": [71.5], "vibration": [3.25], "pressure": [29.0]})
    assert add_features(frame)[column].tolist() == frame[column].tolist()
'''

#: What :func:`sabotage` does to break each stage on purpose.
BREAKAGES = {
    "nothing": "the example change as it is",
    "lint": "a badly named helper without a docstring is added to features.py",
    "test": "the interaction is computed as heat + vibration instead of heat * vibration",
    "validate": "the temperature sensor now reports degrees Fahrenheit",
    "train": "a solver name that does not exist is passed to the model, so training crashes",
    "gate": "the model is regularised so hard (C=1e-4) that it predicts one class",
}


def example_change(data: pd.DataFrame) -> Change:
    """The lesson's example change (passes every stage) over ``data``."""
    return Change(code=EXAMPLE_CODE, tests=EXAMPLE_TESTS, data=data, params={"max_iter": 500})


def sabotage(change: Change, stage: str) -> Change:
    """Return a copy of the example ``change`` broken so that ``stage`` fails (see BREAKAGES)."""
    if stage not in BREAKAGES:
        raise ValueError(f"stage must be one of {list(BREAKAGES)}, got {stage!r}.")
    if stage == "lint":
        return replace(change, code=change.code + "\n\ndef Helper(x):\n    return x\n")
    if stage == "test":
        product = 'features["temperature"] * features["vibration"]'
        if product not in change.code:
            raise ValueError("sabotage('test') works on the example change's code only.")
        return replace(change, code=change.code.replace(
            product, 'features["temperature"] + features["vibration"]'))
    if stage == "validate":
        data = change.data.assign(temperature=change.data["temperature"] * 9 / 5 + 32)
        return replace(change, data=data)
    if stage == "train":
        return replace(change, params={**change.params, "solver": "gradient-magic"})
    if stage == "gate":
        return replace(change, params={**change.params, "C": 1e-4})
    return change
