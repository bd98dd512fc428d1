"""One model's whole life through the pipeline, kept as a timeline (lesson 08, the capstone).

Every stage already lives in its own module; this one only strings them together and keeps the
record. The stages of lesson 08, and where each comes from:

==========  ===========================================================  =========================
stage       what happens                                                 module
==========  ===========================================================  =========================
validate    a batch is checked against the sensor schema                 ``validation``, lesson 01
train       the model is fitted from a config, cross-validated           ``pipeline``, lesson 01
gate        a floor on accuracy, and no regression against production   ``modelcheck``, lesson 05
            beyond the sampling error (a retrained model: both scored
            on the same held-out rows, a paired comparison)
rollout     a canary on the traffic simulator, analysed at every step    ``rollout``, lesson 06
monitor     each production batch: drift of the readings when its day    ``monitoring``, lesson 02
            ends, the accuracy against the release's once its labels
            are in (the label delay)
retrain     on the recent labelled batch, through the same gate and      all of the above
            rollout
experiment  the two surviving versions compared on live traffic          ``rollout``, lesson 06
            (lesson 08 runs the old one in shadow)
==========  ===========================================================  =========================

:class:`Recorder` collects what happens as :class:`Event` s on one clock (hours), with the share
of traffic each version serves; :func:`run_scenario` plays the lesson's scripted life of the
machine-failure model with a given set of :class:`Thresholds` and returns its :class:`History`,
so exercise 08 can grade thresholds by replaying the scenario.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import pandas as pd

from labsupport import modelcheck, monitoring, pipeline, rollout, traffic, validation

#: What an :class:`Event` can be about, in the order the stages first run.
KINDS = ("validate", "train", "gate", "rollout", "monitor", "retrain", "experiment")
#: The readings a model sees (the sensor schema's columns without the label).
READINGS = tuple(name for name in pipeline.SENSOR_SCHEMA.columns if name != pipeline.LABEL)
#: How long one production batch covers on the timeline (hours): a day of readings.
BATCH_HOURS = 24.0
#: How long one run of the CI pipeline (validate, train, evaluate, gate) takes on the timeline.
CI_HOURS = 1.0
#: The label delay (hours): a reading's label says whether the machine failed within the next
#: day, so it is known a day after the reading. The drift of a day's readings can be measured
#: when the day ends; its accuracy only this much later.
LABEL_DELAY_HOURS = 24.0
#: How long a canary step's requests take to arrive (minutes), as in lesson 06.
CANARY_TRAFFIC_MINUTES = 10.0


def canary_step_minutes(label_delay_hours: float = LABEL_DELAY_HOURS) -> float:
    """How long a canary step of lesson 08 lasts: its traffic, then the wait for its labels.

    The analysis judges ``accuracy_drop``, which needs the labels of the step's requests: they
    arrive ``label_delay_hours`` after the requests (:data:`LABEL_DELAY_HOURS`), so the step
    is held that long before it is analysed. (Practitioners who cannot wait judge fast steps
    on proxies that exist at once, such as the error rate, the latency, the share of predicted
    failures or the agreement with production, and leave the accuracy to the monitor.)
    """
    if not 0.0 <= label_delay_hours < float("inf"):
        raise ValueError(f"label_delay_hours must be a number of hours >= 0, got "
                         f"{label_delay_hours!r}.")
    return CANARY_TRAFFIC_MINUTES + 60.0 * label_delay_hours


@dataclass(frozen=True)
class Event:
    """Something that happened to a version, when (hours since the start), and why."""

    hour: float
    kind: str
    version: str | None
    action: str
    reason: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}; expected one of {KINDS}.")

    def __str__(self) -> str:
        who = f" {self.version}" if self.version else ""
        return f"[hour {self.hour:g}] {self.kind}{who}: {self.action} ({self.reason})"


@dataclass(frozen=True)
class Thresholds:
    """Every number a person sets for the pipeline's automatic decisions (lesson 08).

    Attributes
    ----------
    min_accuracy
        The gate's floor: a candidate below it on the test set is refused.
    tolerance, alpha
        The gate's comparison with production (:func:`labsupport.modelcheck.compare`): refused
        when a metric is worse by more than ``tolerance`` beyond its sampling error (one-sided
        test at ``alpha``).
    max_error_rate, max_latency_ms, max_accuracy_drop
        The canary analysis' conditions on the candidate at every step.
    failure_limit
        How many failed canary steps are tolerated before a rollback (Argo's ``failureLimit``).
    drift_share, drift_alpha
        The monitor: the readings drifted when at least ``drift_share`` of the columns have a
        KS p-value (Benjamini-Hochberg adjusted) below ``drift_alpha``.
    monitor_tolerance
        The monitor: the accuracy dropped when it is below the release accuracy by more than
        this, beyond its sampling error (the same one-sided test at ``alpha``).
    """

    min_accuracy: float = 0.7
    tolerance: float = 0.01
    alpha: float = 0.05
    max_error_rate: float = 0.02
    max_latency_ms: float = 250.0
    max_accuracy_drop: float = 0.05
    failure_limit: int = 0
    drift_share: float = 0.5
    drift_alpha: float = 0.05
    monitor_tolerance: float = 0.02

    def __post_init__(self) -> None:
        for name in ("min_accuracy", "tolerance", "max_error_rate", "monitor_tolerance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}.")
        for name in ("alpha", "drift_alpha"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie strictly between 0 and 1, got "
                                 f"{getattr(self, name)!r}.")
        if not 0.0 < self.drift_share <= 1.0:
            raise ValueError(f"drift_share must lie in (0, 1], got {self.drift_share!r}.")
        if isinstance(self.failure_limit, bool) or not isinstance(self.failure_limit, int) \
                or self.failure_limit < 0:
            raise ValueError(f"failure_limit must be a whole number >= 0, got "
                             f"{self.failure_limit!r}.")
        if not self.max_latency_ms > 0 or not -1.0 <= self.max_accuracy_drop <= 1.0:
            raise ValueError(f"max_latency_ms must be > 0 and max_accuracy_drop in [-1, 1], got "
                             f"{self.max_latency_ms!r}, {self.max_accuracy_drop!r}.")

    def analysis(self) -> rollout.Analysis:
        """The canary's analysis: the three conditions and the failure limit."""
        return rollout.Analysis((rollout.Condition("error_rate", at_most=self.max_error_rate),
                                 rollout.Condition("latency_p99_ms", at_most=self.max_latency_ms),
                                 rollout.Condition("accuracy_drop",
                                                   at_most=self.max_accuracy_drop)),
                                failure_limit=self.failure_limit)


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict on a candidate: ``passed`` when ``problems`` is empty."""

    problems: tuple[str, ...]
    accuracy: float
    comparison: object = field(repr=False)

    @property
    def passed(self) -> bool:
        """True when the candidate may be rolled out."""
        return not self.problems

    def __str__(self) -> str:
        if self.passed:
            against = "" if self.comparison is None else \
                "; not worse than production beyond the sampling error"
            return f"passed: accuracy {self.accuracy:.3f}{against}"
        return "refused: " + "; ".join(self.problems)


def gate(candidate: Mapping[str, float], baseline: Mapping[str, float] | None,
         thresholds: Thresholds) -> GateResult:
    """The performance gate: a floor on accuracy, then no regression against production.

    Parameters
    ----------
    candidate
        The candidate's metrics on the test set (``modelcheck.classification_metrics``, or the
        JSON ``labsupport model evaluate`` writes).
    baseline
        Production's metrics on the same rows, or None before the first release.
    thresholds
        ``min_accuracy``, ``tolerance`` and ``alpha`` are used.
    """
    candidate = modelcheck.check_metrics(candidate, "candidate")
    problems = []
    if candidate["accuracy"] < thresholds.min_accuracy:
        problems.append(f"accuracy {candidate['accuracy']:.3f} is below the minimum "
                        f"{thresholds.min_accuracy:g}")
    comparison = None
    if baseline is not None:
        comparison = modelcheck.compare(baseline, candidate, tolerance=thresholds.tolerance,
                                        alpha=thresholds.alpha)
        if not comparison.passed:
            worst = ", ".join(f"{c.metric} {c.change:+.3f} (p = {c.p_value:.2g})"
                              for c in comparison.changes if c.regression)
            problems.append(f"regression against production beyond the sampling error: {worst}")
    return GateResult(tuple(problems), candidate["accuracy"], comparison)


def paired_gate(y_true: Sequence[int], baseline_pred: Sequence[int],
                candidate_pred: Sequence[int], thresholds: Thresholds) -> GateResult:
    """The gate of a retrained model: a floor, then production and candidate on the SAME rows.

    Production's stored metrics were measured on the old test set, before the world changed:
    comparing a retrained candidate's accuracy on fresh rows with them compares two
    populations. Here both models answer the same held-out rows, and the comparison is
    paired: only the rows on which they disagree carry information about the difference
    (:func:`labsupport.modelcheck.paired_comparison`, with ``tolerance`` as its margin).

    Parameters
    ----------
    y_true
        The labels of the held-out rows.
    baseline_pred, candidate_pred
        Production's and the candidate's answers on those rows.
    thresholds
        ``min_accuracy``, ``tolerance`` and ``alpha`` are used.
    """
    comparison = modelcheck.paired_comparison(y_true, baseline_pred, candidate_pred,
                                              margin=thresholds.tolerance,
                                              alpha=thresholds.alpha)
    accuracy = comparison.candidate_accuracy
    problems = []
    if accuracy < thresholds.min_accuracy:
        problems.append(f"accuracy {accuracy:.3f} is below the minimum "
                        f"{thresholds.min_accuracy:g}")
    if not comparison.passed:
        problems.append(f"worse than production on the same {comparison.n_rows} rows beyond "
                        f"the sampling error: accuracy {comparison.difference:+.3f} "
                        f"(p = {comparison.p_value:.2g})")
    return GateResult(tuple(problems), accuracy, comparison)


@dataclass(frozen=True)
class BatchCheck:
    """What the monitor found in one labelled production batch.

    ``retrain`` is True when the readings drifted **and** the accuracy dropped: drift alone
    may not hurt the model (an alert is enough). The rule has a blind spot: a drop without
    drift is concept drift (the same readings now mean something else), which retraining on
    recent labelled rows does fix (lesson 02); the rule only alerts a person then. The
    chapter's rule, drift **or** accuracy under a threshold, retrains then too, at the price
    of retraining on every false drift alert (lesson 08 compares the two).
    """

    batch: int
    n_rows: int
    drift_share: float
    drifted_columns: tuple[str, ...]
    drifted: bool
    accuracy: float
    accuracy_p_value: float
    degraded: bool
    release_accuracy: float = float("nan")

    @property
    def retrain(self) -> bool:
        """Whether the rule fires: drift plus a measured drop in accuracy."""
        return self.drifted and self.degraded

    @property
    def action(self) -> str:
        """``retrain``, ``alert`` (drift or drop alone) or ``keep``."""
        if self.retrain:
            return "retrain"
        return "alert" if self.drifted or self.degraded else "keep"

    @property
    def drift_reason(self) -> str:
        """The drift measurement in words (known before the labels are)."""
        return (f"drift in {list(self.drifted_columns)} (share {self.drift_share:.2f})"
                if self.drifted else f"no data-set drift (share {self.drift_share:.2f})")

    @property
    def reason(self) -> str:
        """The two measurements in words."""
        drop = "a drop beyond the sampling error" if self.degraded else "no measured drop"
        return (f"{self.drift_reason}; accuracy {self.accuracy:.3f}, {drop} "
                f"(p = {self.accuracy_p_value:.2g})")


def check_batch(model: pipeline.Model, reference: pd.DataFrame, batch: pd.DataFrame,
                release: Mapping[str, float], thresholds: Thresholds,
                index: int = 0) -> BatchCheck:
    """Monitor one labelled batch: drift of the readings, and accuracy against the release.

    Parameters
    ----------
    model
        The model in production.
    reference
        The readings it was trained on.
    batch
        A production batch whose labels have arrived (:data:`labsupport.pipeline.LABEL`).
    release
        The model's metrics when it was released (the gate's test set).
    thresholds
        ``drift_share``, ``drift_alpha``, ``monitor_tolerance`` and ``alpha`` are used.
    index
        The batch's number, for the record.
    """
    if pipeline.LABEL not in batch.columns:
        raise ValueError(f"the batch has no {pipeline.LABEL!r} column: the monitor measures "
                         "accuracy, so it needs labelled batches.")
    columns = list(READINGS)
    report = monitoring.drift_report(reference[columns], batch[columns],
                                     alpha=thresholds.drift_alpha,
                                     share_threshold=thresholds.drift_share)
    metrics = score(model, batch)
    change = modelcheck.compare(release, metrics, tolerance=thresholds.monitor_tolerance,
                                alpha=thresholds.alpha, metrics=("accuracy",)).changes[0]
    return BatchCheck(index, len(batch), report.drift_share,
                      tuple(c.column for c in report.columns if c.drifted),
                      report.dataset_drifted, metrics["accuracy"], change.p_value,
                      change.regression, float(release["accuracy"]))


@dataclass(frozen=True)
class FrameModel:
    """A :class:`labsupport.pipeline.Model` seen by the traffic simulator, which sends arrays.

    The simulator (lesson 06) hands every version a 2-D array of the users' inputs; the
    pipeline's model wants the readings as a frame with their names.
    """

    model: pipeline.Model = field(repr=False)
    columns: tuple[str, ...] = READINGS

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The model's answers for the rows of ``X`` (columns in the order of ``columns``)."""
        return self.model.predict(pd.DataFrame(np.asarray(X), columns=list(self.columns)))


def population(readings: pd.DataFrame) -> traffic.Population:
    """The machines that send requests: one user per labelled row of ``readings``."""
    missing = [c for c in (*READINGS, pipeline.LABEL) if c not in readings.columns]
    if missing:
        raise ValueError(f"readings lack the columns {missing}; expected {list(READINGS)} and "
                         f"{pipeline.LABEL!r}.")
    return traffic.Population(np.arange(len(readings)), readings[list(READINGS)].to_numpy(),
                              readings[pipeline.LABEL].to_numpy())


@dataclass(frozen=True)
class History:
    """The whole life, as data: every event, the traffic shares, the monitored batches.

    Attributes
    ----------
    events
        Every decision, in order, with its reason.
    traffic
        One row per moment the split changed: ``hour`` and one column per version (its share).
    batches
        One row per monitored batch: ``batch``, ``hour``, the :class:`BatchCheck` fields and
        the ``version`` that served it, the ``action`` and the version retrained on it
        (``retrained_as``, None when none was).
    rollouts
        The canary timelines (:class:`labsupport.rollout.Timeline`) by candidate version.
    production
        The version serving everyone at the end.
    """

    events: tuple[Event, ...] = field(repr=False)
    traffic: pd.DataFrame = field(repr=False)
    batches: pd.DataFrame = field(repr=False)
    rollouts: Mapping[str, rollout.Timeline] = field(repr=False)
    production: str | None

    def max_share(self, version: str) -> float:
        """The largest share of traffic ``version`` ever served (0 if it never served)."""
        if version not in self.traffic.columns:
            return 0.0
        return float(self.traffic[version].max())

    def events_frame(self) -> pd.DataFrame:
        """The events as a table, one row each."""
        return pd.DataFrame([asdict(e) for e in self.events],
                            columns=[f.name for f in fields(Event)])


class Recorder:
    """Collects events and traffic shares on one clock while the stages run (lesson 08)."""

    def __init__(self) -> None:
        self.hour = 0.0
        self.events: list[Event] = []
        self.shares: list[dict[str, float]] = []
        self.batches: list[dict] = []
        self.rollouts: dict[str, rollout.Timeline] = {}
        self.production: str | None = None

    def add(self, kind: str, version: str | None, action: str, reason: str,
            hours: float = 0.0) -> Event:
        """Record an event at the current hour, then move the clock on by ``hours``."""
        event = Event(round(self.hour, 4), kind, version, action, reason)
        self.events.append(event)
        self.hour += hours
        return event

    def _split(self, weights: Mapping[str, float]) -> None:
        self.shares.append({"hour": round(self.hour, 4), **{k: float(v)
                                                           for k, v in weights.items()}})

    def release(self, version: str, reason: str) -> None:
        """Send every user to ``version`` at once (the first release, or an accepted rollout)."""
        self.production = version
        self._split({version: 1.0})
        self.add("rollout", version, "release", reason)

    def gate(self, version: str, result: GateResult) -> bool:
        """Record a gate's verdict; True when it passed."""
        self.add("gate", version, "passed" if result.passed else "refused", str(result),
                 hours=CI_HOURS / 2)
        return result.passed

    def _steps(self, timeline: rollout.Timeline) -> float:
        """Add a timeline's weights to the traffic shares; return the hour it started."""
        start = self.hour
        step_hours = timeline.step_minutes / 60.0
        for step, row in timeline.weights.iterrows():
            self.hour = start + step * step_hours
            self._split({name: float(share) for name, share in row.items()})
        self.hour = start + len(timeline.weights) * step_hours
        return start

    def rollout(self, timeline: rollout.Timeline) -> None:
        """Add a rollout's steps to the traffic shares and its decisions to the events."""
        self.rollouts[timeline.candidate] = timeline
        start = self._steps(timeline)
        end = self.hour
        for decision in timeline.decisions:
            self.hour = start + decision.minute / 60.0
            self.add("rollout", timeline.candidate, decision.action, decision.reason)
        self.hour = end
        if timeline.outcome == "promoted":
            self.production = timeline.candidate
        self._split({self.production: 1.0})

    def experiment(self, timeline: rollout.Timeline, decision: str) -> None:
        """Add an A/B split's steps to the traffic shares and its reading as an event.

        Production does not change: an experiment measures, a person decides afterwards.
        """
        self._steps(timeline)
        self.add("experiment", timeline.candidate, "read",
                 f"{timeline.baseline} (control) vs {timeline.candidate} (treatment): {decision}")
        self._split({self.production: 1.0})

    def monitor(self, check: BatchCheck, version: str,
                label_delay_hours: float = LABEL_DELAY_HOURS) -> None:
        """Record one monitored batch (a day of production) and the monitor's action.

        The batch's readings cover the day from the current hour (its row's ``hour``). When
        the day ends the drift of its readings is known (a ``drift alert`` event if they
        drifted); its accuracy, and so the monitor's action, only when the labels are in,
        ``label_delay_hours`` later (``labelled_hour``). The clock ends there.
        """
        if not 0.0 <= label_delay_hours < float("inf"):
            raise ValueError(f"label_delay_hours must be >= 0, got {label_delay_hours!r}.")
        start = self.hour
        self.batches.append({"batch": check.batch, "hour": round(start, 4),
                             "labelled_hour": round(start + BATCH_HOURS + label_delay_hours, 4),
                             "version": version,
                             **{f.name: getattr(check, f.name) for f in fields(BatchCheck)},
                             "action": check.action, "retrained_as": None})
        self.hour = start + BATCH_HOURS
        if check.drifted:
            self.add("monitor", version, "drift alert",
                     f"batch {check.batch}: {check.drift_reason}; its labels are not in yet")
        self.hour = start + BATCH_HOURS + label_delay_hours
        self.add("monitor", version, check.action, check.reason)

    def history(self) -> History:
        """The finished :class:`History`."""
        # Before the first release (a first model refused at the gate) nobody was served:
        # an empty split, with its hour column all the same.
        split = pd.DataFrame(self.shares, columns=None if self.shares else ["hour"]).fillna(0.0)
        split = split.groupby("hour", sort=True).last().reset_index()
        columns = ["batch", "hour", "labelled_hour", "version",
                   *[f.name for f in fields(BatchCheck) if f.name != "batch"], "action",
                   "retrained_as"]
        return History(tuple(self.events), split, pd.DataFrame(self.batches, columns=columns),
                       dict(self.rollouts), self.production)


# --- the scripted scenario of lesson 08 and exercise 08 -------------------------------------

#: Feature code that leaves the temperature out: a model that still clears the floor but is
#: clearly worse than one that sees it (the regression the gate must refuse).
NO_TEMPERATURE_CODE = '''"""Feature engineering without the temperature sensor."""

import pandas as pd


def add_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Return vibration and pressure only."""
    return frame[["vibration", "pressure"]].copy()
'''

#: The candidates of the scenario, in the order they are tried, and what is wrong with each.
CANDIDATES = {
    "v2": "regularised so hard (C=1e-4) that it almost never predicts a failure: under the floor",
    "v3": "trained without the temperature readings: above the floor, but a regression",
    "v4": "a sound model on a broken serving image (6 % of requests fail, 4x slower)",
    "v5": "the same model on the fixed image",
}
#: Versions that must never serve more than a small share of traffic.
BAD_VERSIONS = ("v2", "v3", "v4")


@dataclass(frozen=True)
class Scenario:
    """The sizes and the world of the scripted life (lesson 08).

    ``n_batches`` production batches of ``batch_size`` labelled readings are monitored; from
    batch ``drift_batch`` on, the vibration sensor is a replacement that reads
    ``vibration_gain`` times the true vibration (failures still follow the true one).
    """

    n_train: int = 2000
    n_test: int = 1000
    n_users: int = 2000
    n_batches: int = 6
    batch_size: int = 600
    drift_batch: int = 3
    vibration_gain: float = 2.0
    requests_per_step: int = 2000
    schedule: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0)
    label_delay_hours: float = LABEL_DELAY_HOURS

    def __post_init__(self) -> None:
        for name in ("n_train", "n_test", "n_users", "n_batches", "batch_size",
                     "requests_per_step"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}.")
        if not 0 <= self.drift_batch <= self.n_batches:
            raise ValueError(f"drift_batch must lie in [0, n_batches = {self.n_batches}], got "
                             f"{self.drift_batch!r}.")
        object.__setattr__(self, "schedule", rollout.check_schedule(self.schedule))
        if not 0.0 <= self.label_delay_hours < float("inf"):
            raise ValueError(f"label_delay_hours must be a number of hours >= 0, got "
                             f"{self.label_delay_hours!r}.")


#: A smaller life that replays in about a second: exercise 08 grades thresholds on it.
SMALL_SCENARIO = Scenario(n_train=1000, n_test=800, n_users=1500, n_batches=5, batch_size=600,
                          drift_batch=2, requests_per_step=1500)


def score(model: pipeline.Model, data: pd.DataFrame) -> dict[str, float]:
    """The metrics a gate reads: ``model`` on labelled ``data`` (lesson 05's, with their counts).

    The same dictionary as ``modelcheck.evaluate(...).metrics``, without the file size and the
    timings, which the scenario does not need.
    """
    if pipeline.LABEL not in data.columns:
        raise ValueError(f"scoring needs labelled rows: no {pipeline.LABEL!r} column in "
                         f"{list(data.columns)}.")
    return modelcheck.classification_metrics(data[pipeline.LABEL].to_numpy(), model.predict(data))


def _canary(log: Recorder, readings: pd.DataFrame, versions: Sequence[traffic.Version],
            candidate: str, thresholds: Thresholds, scenario: Scenario,
            rng: np.random.Generator) -> rollout.Timeline:
    simulator = traffic.Simulator(population(readings), versions)
    canary = rollout.Canary(scenario.schedule, thresholds.analysis(),
                            requests_per_step=scenario.requests_per_step,
                            step_minutes=canary_step_minutes(scenario.label_delay_hours))
    timeline = canary.run(simulator, log.production, candidate, rng)
    log.rollout(timeline)
    return timeline


def run_scenario(thresholds: Thresholds, seed: int,
                 scenario: Scenario = Scenario()) -> History:
    """Play the scripted life of the machine-failure model with ``thresholds`` (lesson 08).

    1. v1 is trained on validated readings and released.
    2. The candidates of :data:`CANDIDATES` go through the gate (against production, on the
       test set) and, if it passes, a canary on the traffic simulator.
    3. Production batches are monitored; when the rule fires (drift and a measured drop) the
       model is retrained on that batch, gated against production on the same held-out rows
       of it (:func:`paired_gate`), and rolled out by canary; monitoring goes on with
       whichever version is in production. Decisions on a batch are recorded when its labels
       are in (``scenario.label_delay_hours`` after its day ends).

    Everything random is drawn from ``numpy.random.default_rng(seed)``, so a seed replays
    exactly the same life; only ``thresholds`` change what is decided. The last lives played
    are kept (exercise 08's tests replay the same worlds many times): the same arguments return
    the same :class:`History`, which must not be modified. So is what a seed draws and fits
    before any threshold is read (the readings, v1 to v5): another policy in the same world
    replays only the decisions (exercise 08's rehearsal grades a dozen policies in the same
    worlds; a replay then takes about three fifths of the time).
    """
    if not isinstance(thresholds, Thresholds):
        raise TypeError(f"thresholds must be a lifecycle.Thresholds, got "
                        f"{type(thresholds).__name__}.")
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must be a lifecycle.Scenario, got {type(scenario).__name__}.")
    return _life(thresholds, int(seed), scenario)


@dataclass(frozen=True)
class _World:
    """What a seed draws and fits before any threshold is read: the same for every policy."""

    train: pd.DataFrame
    users: pd.DataFrame
    fresh: pd.DataFrame
    models: Mapping[str, pipeline.Model]
    scores: Mapping[str, Mapping[str, float]]
    report: str
    valid: bool
    state: Mapping  # the generator's state after the draws above


@functools.lru_cache(maxsize=64)
def _world(seed: int, scenario: Scenario) -> _World:
    rng = np.random.default_rng(seed)
    train = pipeline.make_sensor_data(scenario.n_train, rng)
    test = pipeline.make_sensor_data(scenario.n_test, rng)
    users = pipeline.make_sensor_data(scenario.n_users, rng)
    report = validation.validate(train, pipeline.SENSOR_SCHEMA)
    params = {"max_iter": 500}
    models = {"v1": pipeline.fit(pipeline.EXAMPLE_CODE, train, params)}
    fresh = pipeline.make_sensor_data(scenario.n_train, rng)
    models["v2"] = pipeline.fit(pipeline.EXAMPLE_CODE, fresh, {**params, "C": 1e-4})
    models["v3"] = pipeline.fit(NO_TEMPERATURE_CODE, fresh, params)
    models["v4"] = models["v5"] = pipeline.fit(pipeline.EXAMPLE_CODE, fresh, params)
    return _World(train, users, fresh, models,
                  {name: score(model, test) for name, model in models.items()}, str(report),
                  report.ok, rng.bit_generator.state)


@functools.lru_cache(maxsize=128)
def _life(thresholds: Thresholds, seed: int, scenario: Scenario) -> History:
    world = _world(seed, scenario)
    log = Recorder()
    train, users = world.train, world.users
    log.add("validate", None, "passed" if world.valid else "rejected", world.report)
    log.add("train", "v1", "trained", f"on {len(train)} validated rows", hours=CI_HOURS / 2)
    release = dict(world.scores["v1"])
    if not log.gate("v1", gate(release, None, thresholds)):
        return log.history()
    log.release("v1", "first release: no production model to compare with")
    rng = np.random.default_rng(seed)
    rng.bit_generator.state = world.state
    models = dict(world.models)
    fresh = world.fresh
    serving = {name: traffic.Version(name, FrameModel(model), latency_ms=30.0, error_rate=0.002)
               for name, model in models.items()}
    serving["v4"] = traffic.Version("v4", FrameModel(models["v4"]), latency_ms=120.0,
                                    error_rate=0.06)
    for name, flaw in CANDIDATES.items():
        log.add("train", name, "trained", flaw, hours=CI_HOURS / 2)
        candidate = dict(world.scores[name])
        if not log.gate(name, gate(candidate, release, thresholds)):
            continue
        _canary(log, users, [serving[log.production], serving[name]], name, thresholds,
                scenario, rng)
        if log.production == name:
            release = candidate
    # The monitor's drift reference is what production was trained on (as check_batch says):
    # v1's training rows while v1 serves, the second month's readings once v5 does.
    trained_on = {"v1": train, **{name: fresh for name in CANDIDATES}}
    _monitor(log, models, serving, release, trained_on[log.production], thresholds, scenario,
             rng)
    return log.history()


def _monitor(log: Recorder, models: dict, serving: dict, release: Mapping[str, float],
             reference: pd.DataFrame, thresholds: Thresholds, scenario: Scenario,
             rng: np.random.Generator) -> None:
    # Production batches; a retraining makes the next version, gated and rolled out like any.
    for index in range(scenario.n_batches):
        gain = scenario.vibration_gain if index >= scenario.drift_batch else 1.0
        batch = pipeline.make_sensor_data(scenario.batch_size, rng, vibration_gain=gain)
        current = log.production
        check = check_batch(models[current], reference, batch, release, thresholds, index)
        log.monitor(check, current, scenario.label_delay_hours)
        if not check.retrain:
            continue
        name = f"v{len(models) + 1}"
        shuffled = batch.sample(frac=1.0, random_state=int(rng.integers(2**31)))
        recent = shuffled.iloc[:len(shuffled) * 2 // 3]
        holdout = shuffled.iloc[len(recent):]
        models[name] = pipeline.fit(pipeline.EXAMPLE_CODE, recent, {"max_iter": 500})
        log.batches[-1]["retrained_as"] = name
        log.add("retrain", name, "trained", f"on {len(recent)} labelled rows of batch {index}; "
                                            f"{len(holdout)} held out for the gate",
                hours=CI_HOURS / 2)
        candidate = score(models[name], holdout)
        verdict = paired_gate(holdout[pipeline.LABEL].to_numpy(),
                              models[current].predict(holdout), models[name].predict(holdout),
                              thresholds)
        if not log.gate(name, verdict):
            continue
        serving[name] = traffic.Version(name, FrameModel(models[name]), latency_ms=30.0,
                                        error_rate=0.002)
        users = pipeline.make_sensor_data(scenario.n_users, rng, vibration_gain=gain)
        _canary(log, users, [serving[current], serving[name]], name, thresholds, scenario, rng)
        if log.production == name:
            release, reference = candidate, recent


# --- what the exercise reads off a history ----------------------------------------------------

def bad_share(history: History, bad: Sequence[str] = BAD_VERSIONS) -> float:
    """The largest share of traffic any of the ``bad`` versions ever served."""
    return max((history.max_share(name) for name in bad), default=0.0)


def retrained_after(history: History, batch: int) -> tuple[str, ...]:
    """The versions the monitor retrained on batches ``batch`` and later, in order."""
    later = history.batches[(history.batches["batch"] >= batch)
                            & history.batches["retrained_as"].notna()]
    return tuple(later["retrained_as"])
