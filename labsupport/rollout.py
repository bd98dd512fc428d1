"""Rollout strategies: blue-green, canary, shadow and A/B, each returning a timeline (lesson 06).

Every strategy is a small frozen dataclass with one method, ``run(target, baseline, candidate,
rng)``, and returns a :class:`Timeline`: the weights of every step, the metrics each version
showed, every decision with its reason, and how many users each version answered. The *target*
is anything with ``health(name)`` and ``serve(weights, n_requests, rng, salt=..., mirror_to=...)``
returning :class:`labsupport.traffic.Served`: the simulator of :mod:`labsupport.traffic`, or the
real HTTP servers of :mod:`labsupport.serving` — the controller does not know which.

The canary analysis has the shape of an Argo Rollouts ``AnalysisRun``: at each step every
:class:`Condition` (error rate, latency p99, accuracy, accuracy drop against the baseline) is
measured on the candidate's requests; a step with a violated condition is a failed measurement,
and more failures than ``failure_limit`` roll the canary back at once.

One clock for every strategy: minutes count from the start of the rollout, step ``k`` runs from
minute ``k * step_minutes`` to ``(k + 1) * step_minutes``, and every time a :class:`Timeline`
reports is the **end** of a step, the moment its numbers are in: a metrics row's ``minute``, a
decision's ``minute`` (taken on the step it judged) and ``minutes_to_full`` (the end of the last
step before the candidate answers everyone, which is when it starts to).
:func:`canary_rollback_probability` gives, by the binomial, how often an error-rate condition
rolls back a canary whose true error rate is known — a healthy one (a false alarm) or a bad one —
for fixed request counts, :func:`canary_rollback_probability_sampled` when the counts are random.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
from scipy import stats

from labsupport import environments, traffic

METRICS = ("error_rate", "latency_p99_ms", "latency_increase_ms", "accuracy", "accuracy_drop")


class Target(Protocol):  # pylint: disable=too-few-public-methods
    """Where a strategy runs: the simulator or real servers behind a router."""

    def health(self, name: str) -> bool:
        """Answer of version ``name``'s health check."""

    def serve(self, weights: Mapping[str, float], n_requests: int, rng: np.random.Generator, *,
              salt: str = "rollout", mirror_to: str | None = None) -> traffic.Served:
        """Send ``n_requests`` requests split by ``weights``; return them scored."""


@dataclass(frozen=True)
class Condition:
    """One success condition of an analysis, e.g. ``Condition("error_rate", at_most=0.02)``.

    ``metric`` is one of ``error_rate``, ``latency_p99_ms``, ``accuracy`` (of the candidate),
    ``accuracy_drop`` (baseline accuracy minus candidate accuracy in the same step) or
    ``latency_increase_ms`` (the candidate's median latency minus the baseline's in the same
    step). The last two judge the candidate against the baseline measured under the same load:
    on a busy machine every round trip is slower, the baseline's too, and a fixed latency limit
    would measure the machine, not the candidate.
    """

    metric: str
    at_most: float | None = None
    at_least: float | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; expected one of {METRICS}.")
        if (self.at_most is None) == (self.at_least is None):
            raise ValueError("give exactly one of at_most and at_least.")

    def value(self, candidate: traffic.Metrics, baseline: traffic.Metrics | None) -> float:
        """The metric's value for the candidate (nan when it cannot be measured)."""
        if self.metric == "accuracy_drop":
            return math.nan if baseline is None else baseline.accuracy - candidate.accuracy
        if self.metric == "latency_increase_ms":
            return math.nan if baseline is None else \
                candidate.latency_p50_ms - baseline.latency_p50_ms
        return float(getattr(candidate, self.metric))

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the condition (an unmeasurable value does not)."""
        if math.isnan(value):
            return False
        return value <= self.at_most if self.at_most is not None else value >= self.at_least

    def __str__(self) -> str:
        bound = f"<= {self.at_most:g}" if self.at_most is not None else f">= {self.at_least:g}"
        return f"{self.metric} {bound}"


def check_failure_limit(failure_limit: int) -> int:
    """Validate a failure limit (failed steps tolerated): a whole number >= 0, not a bool."""
    if isinstance(failure_limit, bool) or not isinstance(failure_limit, (int, np.integer)) \
            or failure_limit < 0:
        raise ValueError(f"failure_limit must be a whole number >= 0 (failed steps tolerated), "
                         f"got {failure_limit!r}.")
    return int(failure_limit)


@dataclass(frozen=True)
class Analysis:
    """Conditions checked on the candidate at each step, and how many failures are tolerated.

    A step fails when any condition does not hold, or when the candidate answered fewer than
    ``min_requests`` requests (nothing to judge). The analysis fails, and the rollout rolls back,
    when failed steps exceed ``failure_limit`` (Argo Rollouts' ``failureLimit``).
    """

    conditions: tuple[Condition, ...]
    failure_limit: int = 0
    min_requests: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", tuple(self.conditions))
        if not self.conditions:
            raise ValueError("an analysis needs at least one condition.")
        check_failure_limit(self.failure_limit)

    def measure(self, candidate: traffic.Metrics,
                baseline: traffic.Metrics | None) -> tuple[bool, str]:
        """Judge one step: (passed, reason listing every measured value)."""
        if candidate.requests < self.min_requests:
            return False, (f"only {candidate.requests} candidate requests "
                           f"(< {self.min_requests}): inconclusive, counted as a failure")
        parts, passed = [], True
        for condition in self.conditions:
            value = condition.value(candidate, baseline)
            ok = condition.holds(value)
            passed &= ok
            parts.append(f"{condition.metric} {value:.4g} {'ok' if ok else 'FAILS'} ({condition})")
        return passed, "; ".join(parts)


@dataclass(frozen=True)
class Decision:
    """Something the controller decided, when, and why."""

    step: int
    minute: float
    action: str
    reason: str

    def __str__(self) -> str:
        return f"[step {self.step}, minute {self.minute:g}] {self.action}: {self.reason}"


@dataclass(frozen=True)
class Timeline:
    """What a rollout did, step by step (lesson 06).

    Attributes
    ----------
    strategy, baseline, candidate
        Which strategy ran, from which version to which.
    weights
        One row per step, one column per version: the share of users each version answered.
    metrics
        One row per (step, version) with the :class:`labsupport.traffic.Metrics` fields, a
        ``phase`` column (``live``, ``smoke`` or ``shadow``) and the ``minute`` the step ends.
    decisions
        Every decision, in order, with its reason, stamped with the end of the step it judged.
    exposed
        Distinct users each version answered over the rollout (smoke and shadow excluded).
    outcome
        ``promoted``, ``rolled back``, ``aborted``, ``not promoted`` or ``experiment complete``.
    step_minutes
        Duration of one step.
    outcomes
        A/B only: one row per user with ``user_id``, ``variant`` (control/treatment),
        ``requests`` and ``outcome`` (share of the user's requests answered correctly).
    """

    strategy: str
    baseline: str
    candidate: str
    weights: pd.DataFrame = field(repr=False)
    metrics: pd.DataFrame = field(repr=False)
    decisions: tuple[Decision, ...] = field(repr=False)
    exposed: Mapping[str, int]
    outcome: str
    step_minutes: float
    outcomes: pd.DataFrame | None = field(default=None, repr=False)

    def live(self, version: str) -> pd.DataFrame:
        """Metrics of ``version`` on the requests it answered for users, one row per step."""
        frame = self.metrics.xs(version, level="version")
        return frame[frame["phase"] == "live"]

    @property
    def bad_served(self) -> int:
        """Bad responses (errors or wrong answers) the candidate gave to users."""
        return int(self.live(self.candidate)["bad"].sum()) if self.candidate in \
            self.metrics.index.get_level_values("version") else 0

    @property
    def minutes(self) -> float:
        """Length of the rollout: the end of its last step."""
        return float(len(self.weights) * self.step_minutes)

    def excess_bad_until(self, horizon_minutes: float) -> float:
        """Bad responses the candidate serves, beyond the baseline's bad rate, up to a horizon.

        The baseline's rate is its share of bad responses over its own live steps; ordinary
        mistakes every model makes are not a rollout's risk, the extra ones are. The rollout's
        own steps are counted as served. A promoted candidate goes on answering everyone after
        the rollout ends, so its excess in its last step (at 100 %) is counted again for every
        step left until ``horizon_minutes`` (measured from the start of the rollout, at least
        the rollout's length): promoting a bad model costs until the horizon, not until the
        promotion. A candidate rolled back, aborted or never promoted serves nobody afterwards.
        """
        if isinstance(horizon_minutes, bool) or not isinstance(horizon_minutes, (int, float)) \
                or not self.minutes <= horizon_minutes < math.inf:
            raise ValueError(f"horizon_minutes must be a finite number of minutes at least the "
                             f"rollout's length ({self.minutes:g}), got {horizon_minutes!r}.")
        if self.candidate not in self.metrics.index.get_level_values("version"):
            return 0.0
        base = self.live(self.baseline)
        rate = base["bad"].sum() / base["requests"].sum() if base["requests"].sum() else 0.0
        mine = self.live(self.candidate)
        excess = float(mine["bad"].sum() - rate * mine["requests"].sum())
        if self.outcome == "promoted":
            last = mine.iloc[-1]
            remaining = (horizon_minutes - self.minutes) / self.step_minutes
            excess += remaining * float(last["bad"] - rate * last["requests"])
        return excess

    @property
    def minutes_to_full(self) -> float:
        """Minute the candidate starts answering every user (``nan`` if it never does).

        The end of the last step before its first step at 100 %, when the decision to go to
        everyone is taken (the same minute as that decision in :attr:`decisions`).
        """
        full = self.weights.index[self.weights[self.candidate] >= 1.0]
        return math.nan if full.empty else float(full[0] * self.step_minutes)

    @property
    def rollback_minutes(self) -> float:
        """Minutes from a rollback decision until the candidate answers no user (``nan`` if none).

        Zero for blue-green's switch back and the canary's rollback alike: both route every
        user back to the baseline from the next step on.
        """
        decision = next((d for d in self.decisions if d.action in ROLLBACKS), None)
        if decision is None:
            return math.nan
        weights = self.weights
        after = weights.index[(weights.index > decision.step) & (weights[self.candidate] == 0)]
        return math.nan if after.empty else float(after[0] * self.step_minutes - decision.minute)

    @property
    def minutes_exposed(self) -> float:
        """Minutes users were answered by the candidate before a rollback (``nan`` if none)."""
        if self.outcome != "rolled back":
            return math.nan
        served = self.weights.index[self.weights[self.candidate] > 0]
        return float(len(served) * self.step_minutes)

    def decision_table(self) -> pd.DataFrame:
        """The decisions as a table."""
        return pd.DataFrame([d.__dict__ for d in self.decisions])


class _Recorder:
    """Collects steps while a strategy runs, then builds the :class:`Timeline`."""

    def __init__(self, strategy: str, baseline: str, candidate: str, minutes: float) -> None:
        self.names = (baseline, candidate)
        self.strategy, self.minutes = strategy, minutes
        self.step = 0
        self.weights: list[dict] = []
        self.rows: list[dict] = []
        self.decisions: list[Decision] = []
        self.users: dict[str, np.ndarray | None] = {baseline: None, candidate: None}
        self.served: list[traffic.Served] = []

    def record(self, served: traffic.Served, weights: Mapping[str, float],
               phase: str = "live") -> dict[str, traffic.Metrics]:
        """Add one step (``phase`` live, smoke or shadow) and return its metrics by version."""
        found = {}
        for name in served.versions:
            found[name] = served.metrics_of(name)
            self._row(name, found[name], phase)
            if phase == "live":
                seen = served.exposed_mask(name)
                before = self.users.get(name)
                self.users[name] = seen if before is None else before | seen
        if served.shadow is not None:
            for name in served.shadow.versions:
                found[f"shadow:{name}"] = served.shadow.metrics_of(name)
                self._row(name, found[f"shadow:{name}"], "shadow")
        if phase == "live":
            self.served.append(served)
        self.weights.append({"step": self.step, **{n: float(weights.get(n, 0.0))
                                                   for n in self.names}})
        self.step += 1
        return found

    def _row(self, name: str, metrics: traffic.Metrics, phase: str) -> None:
        self.rows.append({"step": self.step, "version": name, "phase": phase,
                          "minute": (self.step + 1) * self.minutes, **metrics.as_dict()})

    def decide(self, action: str, reason: str) -> None:
        """Log a decision taken at the end of the last recorded step."""
        self.decisions.append(Decision(max(self.step - 1, 0), self.step * self.minutes,
                                       action, reason))

    def timeline(self, outcome: str, outcomes: pd.DataFrame | None = None) -> Timeline:
        """The finished :class:`Timeline`."""
        weights = pd.DataFrame(self.weights).set_index("step")
        metrics = pd.DataFrame(self.rows).set_index(["step", "version"])
        return Timeline(self.strategy, self.names[0], self.names[1], weights, metrics,
                        tuple(self.decisions),
                        {n: 0 if u is None else int(u.sum()) for n, u in self.users.items()},
                        outcome, self.minutes, outcomes)


def _check_steps(requests_per_step: int, step_minutes: float) -> None:
    if int(requests_per_step) != requests_per_step or requests_per_step < 1:
        raise ValueError(f"requests_per_step must be a whole number >= 1 (empty traffic "
                         f"cannot be analysed), got {requests_per_step}.")
    if not step_minutes > 0:
        raise ValueError(f"step_minutes must be > 0, got {step_minutes}.")


def _check_pair(target: Target, baseline: str, candidate: str) -> None:
    if baseline == candidate:
        raise ValueError(f"baseline and candidate are both {baseline!r}: nothing to roll out.")
    for name in (baseline, candidate):
        target.health(name)  # raises ValueError for an unknown version


#: Decisions that send every user back to the baseline.
ROLLBACKS = ("rollback", "switch back")

DEFAULT_ANALYSIS = Analysis((Condition("error_rate", at_most=0.02),
                             Condition("latency_p99_ms", at_most=250.0),
                             Condition("accuracy_drop", at_most=0.05)))


@dataclass(frozen=True)
class BlueGreen:
    """Blue-green: deploy to the idle colour, check it, switch everyone at once (lesson 06).

    Step 0 is the live (blue) baseline answering everyone while the candidate is deployed to
    the idle (green) side. Its health check, then ``smoke_requests`` synthetic requests judged by
    ``smoke``, must pass, or the deployment is aborted before any user sees it. Then all traffic
    switches; with ``analysis`` set, ``analysis_steps`` post-switch steps are judged against the
    baseline's step-0 metrics and a failure switches everyone back at once.
    """

    smoke: Analysis = Analysis((Condition("error_rate", at_most=0.02),
                                Condition("latency_p99_ms", at_most=250.0)))
    smoke_requests: int = 200
    analysis: Analysis | None = DEFAULT_ANALYSIS
    analysis_steps: int = 2
    requests_per_step: int = 2000
    step_minutes: float = 10.0
    salt: str = "blue-green"
    name = "blue-green"

    def __post_init__(self) -> None:
        _check_steps(self.requests_per_step, self.step_minutes)
        _check_steps(self.smoke_requests, self.step_minutes)

    def run(self, target: Target, baseline: str, candidate: str,
            rng: np.random.Generator) -> Timeline:
        """Run the deployment on ``target``; return its :class:`Timeline`."""
        _check_pair(target, baseline, candidate)
        log = _Recorder(self.name, baseline, candidate, self.step_minutes)
        before = log.record(target.serve({baseline: 1.0}, self.requests_per_step, rng,
                                         salt=self.salt), {baseline: 1.0})[baseline]
        if not target.health(candidate):
            log.decide("abort", f"{candidate} deployed to the idle colour fails its health "
                                "check; users stay on the baseline")
            return log.timeline("aborted")
        smoke = target.serve({candidate: 1.0}, self.smoke_requests, rng, salt="smoke")
        passed, reason = self.smoke.measure(smoke.metrics_of(candidate), None)
        log.record(smoke, {baseline: 1.0}, phase="smoke")
        if not passed:
            log.decide("abort", f"smoke test failed: {reason}")
            return log.timeline("aborted")
        log.decide("switch", f"health check and smoke test passed ({reason}); all traffic to "
                             f"{candidate}")
        for _ in range(self.analysis_steps if self.analysis is not None else 1):
            after = log.record(target.serve({candidate: 1.0}, self.requests_per_step, rng,
                                            salt=self.salt), {candidate: 1.0})[candidate]
            if self.analysis is None:
                break
            passed, reason = self.analysis.measure(after, before)
            if not passed:
                log.decide("switch back", f"post-switch analysis failed: {reason}")
                log.record(target.serve({baseline: 1.0}, self.requests_per_step, rng,
                                        salt=self.salt), {baseline: 1.0})
                return log.timeline("rolled back")
            log.decide("keep", f"post-switch analysis passed: {reason}")
        log.decide("promote", f"{candidate} is live; {baseline} can be torn down")
        return log.timeline("promoted")


def check_schedule(schedule: Sequence[float]) -> tuple[float, ...]:
    """Validate a canary weight schedule: increasing shares in (0, 1] ending at 1."""
    steps = tuple(float(w) for w in schedule)
    if not steps:
        raise ValueError("the canary schedule is empty; give shares such as "
                         "(0.05, 0.1, 0.25, 0.5, 1.0).")
    if any(not 0 < w <= 1 for w in steps):
        raise ValueError(f"canary shares must be in (0, 1], got {list(steps)}.")
    backwards = [(a, b) for a, b in zip(steps, steps[1:]) if b <= a]
    if backwards:
        raise ValueError(f"the canary schedule goes backwards (or repeats) at {backwards[0]}: "
                         f"shares must strictly increase, got {list(steps)}.")
    if steps[-1] != 1.0:
        raise ValueError(f"the canary schedule must end at 1.0 (full rollout), got "
                         f"{list(steps)}.")
    return steps


@dataclass(frozen=True)
class Canary:
    """Canary: raise the candidate's share step by step, analysing each step (lesson 06).

    Step 0 is the schedule's first share: the analysis compares the candidate with the baseline
    in the same step, so no step of the baseline alone comes first. At every step below 1.0 the
    analysis judges the candidate against the baseline's metrics in the same step; failures
    beyond the analysis's ``failure_limit`` send every user back to the baseline at once.
    Passing the last analysed step moves to 1.0 (promotion, decided at the end of that step).

    Users are split by the hash salted with :meth:`salt_for`: ``salt`` when given, else one
    salt per release (``"canary:<candidate>"``), so the canary of each new version reaches
    another set of users, and keeps them (sticky) for the whole rollout.
    """

    schedule: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0)
    analysis: Analysis = DEFAULT_ANALYSIS
    requests_per_step: int = 2000
    step_minutes: float = 10.0
    salt: str | None = None
    name = "canary"

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", check_schedule(self.schedule))
        _check_steps(self.requests_per_step, self.step_minutes)
        if self.salt is not None and (not isinstance(self.salt, str) or not self.salt):
            raise ValueError(f"salt must be a non-empty string (or None: one per release), got "
                             f"{self.salt!r}.")

    def salt_for(self, candidate: str) -> str:
        """The hash salt of this canary's rollout of ``candidate``."""
        return self.salt if self.salt is not None else f"canary:{candidate}"

    def run(self, target: Target, baseline: str, candidate: str,
            rng: np.random.Generator) -> Timeline:
        """Run the canary on ``target``; return its :class:`Timeline`."""
        _check_pair(target, baseline, candidate)
        log = _Recorder(self.name, baseline, candidate, self.step_minutes)
        salt = self.salt_for(candidate)
        failures = 0
        for share in self.schedule[:-1]:
            weights = {baseline: 1.0 - share, candidate: share}
            found = log.record(target.serve(weights, self.requests_per_step, rng, salt=salt),
                               weights)
            passed, reason = self.analysis.measure(found[candidate], found[baseline])
            failures += not passed
            if failures > self.analysis.failure_limit:
                log.decide("rollback", f"at {share:.0%}: {reason} (failure {failures} > "
                                       f"limit {self.analysis.failure_limit})")
                log.record(target.serve({baseline: 1.0}, self.requests_per_step, rng,
                                        salt=salt), {baseline: 1.0})
                return log.timeline("rolled back")
            log.decide("continue" if passed else "hold",
                       f"at {share:.0%}: {reason}" +
                       ("" if passed else f" (failure {failures} of limit "
                                          f"{self.analysis.failure_limit})"))
        log.decide("promote", f"every analysed step passed; {candidate} answers everyone")
        log.record(target.serve({candidate: 1.0}, self.requests_per_step, rng, salt=salt),
                   {candidate: 1.0})
        return log.timeline("promoted")


@dataclass(frozen=True)
class ImprovementRule:
    """Promote a shadow when its accuracy beats the primary's by ``min_improvement``.

    This is the chapter's rule. With ``z`` set it also asks the paired difference to be
    ``z`` standard errors above ``min_improvement`` (the margin must be measured, not guessed).
    """

    min_improvement: float = 0.02
    z: float = 0.0

    def decide(self, primary: np.ndarray, shadow: np.ndarray) -> tuple[bool, str]:
        """Judge per-request correctness of the primary and the shadow on the same requests."""
        if primary.size == 0:
            return False, "no labelled requests: nothing to compare"
        difference = shadow.astype(float) - primary.astype(float)
        gain = float(difference.mean())
        error = float(difference.std(ddof=1) / math.sqrt(difference.size)) \
            if difference.size > 1 else math.inf
        ok = gain - self.z * error >= self.min_improvement
        return ok, (f"shadow accuracy {shadow.mean():.3f} vs primary {primary.mean():.3f}: "
                    f"gain {gain:+.3f} (standard error {error:.3f}, n={difference.size}) "
                    f"{'>=' if ok else '<'} required {self.min_improvement:+.3f}"
                    + (f" + {self.z:g} SE" if self.z else ""))


@dataclass(frozen=True)
class Shadow:
    """Shadow: mirror every request to the candidate; users only get the primary's answers.

    Records both versions' metrics and their agreement at each step, then applies ``rule``
    to all mirrored labelled requests; a promotion switches everyone at once (as blue-green).
    """

    n_steps: int = 3
    rule: ImprovementRule = ImprovementRule()
    requests_per_step: int = 2000
    step_minutes: float = 10.0
    salt: str = "shadow"
    name = "shadow"

    def __post_init__(self) -> None:
        _check_steps(self.requests_per_step, self.step_minutes)
        if int(self.n_steps) != self.n_steps or self.n_steps < 1:
            raise ValueError(f"n_steps must be a whole number >= 1, got {self.n_steps}.")

    def run(self, target: Target, baseline: str, candidate: str,
            rng: np.random.Generator) -> Timeline:
        """Run the shadow phase on ``target``; return its :class:`Timeline`."""
        _check_pair(target, baseline, candidate)
        log = _Recorder(self.name, baseline, candidate, self.step_minutes)
        primary, mirrored = [], []
        for _ in range(self.n_steps):
            served = target.serve({baseline: 1.0}, self.requests_per_step, rng, salt=self.salt,
                                  mirror_to=candidate)
            log.record(served, {baseline: 1.0})
            agreement = float(np.mean(served.prediction == served.shadow.prediction))
            log.decide("observe", f"agreement {agreement:.1%} on {served.n_requests} mirrored "
                                  "requests")
            if served.correct is not None:
                primary.append(served.correct)
                mirrored.append(served.shadow.correct)
        promote, reason = self.rule.decide(np.concatenate(primary) if primary else np.array([]),
                                           np.concatenate(mirrored) if mirrored else
                                           np.array([]))
        if not promote:
            log.decide("keep primary", reason)
            return log.timeline("not promoted")
        log.decide("promote", reason)
        log.record(target.serve({candidate: 1.0}, self.requests_per_step, rng, salt=self.salt),
                   {candidate: 1.0})
        return log.timeline("promoted")


@dataclass(frozen=True)
class ABSplit:
    """A/B: a fixed split for an experiment; the outcome log is analysed in lesson 07.

    The baseline is the control, the candidate the treatment. No decision is taken here: the
    timeline's ``outcomes`` holds one row per user (``user_id``, ``variant``, ``requests``,
    ``outcome`` = share of their requests answered correctly).
    """

    treatment_share: float = 0.5
    n_steps: int = 3
    requests_per_step: int = 2000
    step_minutes: float = 10.0
    salt: str = "ab-test"
    name = "A/B"

    def __post_init__(self) -> None:
        _check_steps(self.requests_per_step, self.step_minutes)
        if not 0 < self.treatment_share < 1:
            raise ValueError(f"treatment_share must be strictly between 0 and 1, got "
                             f"{self.treatment_share}.")
        if int(self.n_steps) != self.n_steps or self.n_steps < 1:
            raise ValueError(f"n_steps must be a whole number >= 1, got {self.n_steps}.")

    def run(self, target: Target, baseline: str, candidate: str,
            rng: np.random.Generator) -> Timeline:
        """Run the experiment on ``target``; return its :class:`Timeline` with ``outcomes``."""
        _check_pair(target, baseline, candidate)
        log = _Recorder(self.name, baseline, candidate, self.step_minutes)
        weights = {baseline: 1.0 - self.treatment_share, candidate: self.treatment_share}
        for _ in range(self.n_steps):
            log.record(target.serve(weights, self.requests_per_step, rng, salt=self.salt),
                       weights)
        outcomes = _outcomes(log.served, baseline)
        log.decide("stop", f"{self.n_steps} steps of a {1 - self.treatment_share:.0%}/"
                           f"{self.treatment_share:.0%} split; {len(outcomes)} users logged "
                           "for the analysis")
        return log.timeline("experiment complete", outcomes)


def _outcomes(steps: Sequence[traffic.Served], baseline: str) -> pd.DataFrame:
    frames = []
    for served in steps:
        names = np.asarray(served.versions, dtype=object)[served.version]
        right = served.correct if served.correct is not None else ~served.error
        frames.append(pd.DataFrame({"user_id": served.user_ids[served.user],
                                    "variant": np.where(names == baseline, "control",
                                                        "treatment"),
                                    "right": right.astype(float)}))
    log = pd.concat(frames, ignore_index=True)
    table = log.groupby(["user_id", "variant"], sort=True)["right"].agg(["size", "mean"])
    return table.reset_index().rename(columns={"size": "requests", "mean": "outcome"})


def _check_rates(error_rate: float, max_error_rate: float) -> None:
    for value, name in ((error_rate, "error_rate"), (max_error_rate, "max_error_rate")):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
                or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a rate in [0, 1], got {value!r}.")


def _rolled_back(step_failures: Sequence[float], failure_limit: int) -> float:
    """P(more than ``failure_limit`` of independent steps fail), each with its probability."""
    failure_limit = check_failure_limit(failure_limit)
    distribution = np.array([1.0])  # P(k failures so far): a Poisson binomial
    for q in step_failures:
        distribution = np.convolve(distribution, [1 - q, q])
    return float(distribution[failure_limit + 1:].sum())


def step_failure_probability(candidate_requests: int | np.ndarray, error_rate: float,
                             max_error_rate: float) -> np.ndarray:
    """P(an error-rate condition fails a step) given the candidate's request count(s).

    More than ``max_error_rate * n`` errors among ``n`` binomial ``(n, error_rate)`` requests fail
    the step; a step with no request is inconclusive and counts as a failure (as
    :class:`Analysis` counts it). Elementwise on an array of counts.
    """
    _check_rates(error_rate, max_error_rate)
    n = np.asarray(candidate_requests)
    tail = stats.binom.sf(np.floor(max_error_rate * n + 1e-9), n, error_rate)
    return np.where(n == 0, 1.0, tail)


def canary_rollback_probability(candidate_requests: Sequence[int], error_rate: float,
                                max_error_rate: float, failure_limit: int = 0) -> float:
    """Probability that an error-rate condition rolls a canary back (lesson 06), fixed counts.

    Each analysed step with ``n`` candidate requests fails with
    :func:`step_failure_probability`; steps are independent, so the number of failed steps is a
    sum of Bernoulli variables (Poisson binomial). The canary rolls back when it exceeds
    ``failure_limit``. For a healthy candidate this is the false-alarm rate; for a bad one, one
    minus it is the chance of promoting it. When the counts are themselves random (users are
    assigned, requests drawn), use :func:`canary_rollback_probability_sampled`.
    """
    counts = list(candidate_requests)
    if not counts or any(isinstance(n, bool) or not isinstance(n, (int, np.integer, float,
                                                                    np.floating))
                         or not math.isfinite(n) or n != int(n) or n < 1 for n in counts):
        raise ValueError(f"candidate_requests must be whole counts >= 1, got {counts}.")
    fail = step_failure_probability(np.array([int(n) for n in counts]), error_rate,
                                    max_error_rate)
    return _rolled_back(fail, failure_limit)


def canary_rollback_probability_sampled(candidate_shares: Sequence[float],
                                        requests_per_step: int, error_rate: float,
                                        max_error_rate: float,
                                        failure_limit: int = 0) -> float:
    """:func:`canary_rollback_probability` when each step's count is random (lesson 06).

    A step sends ``requests_per_step`` requests from users drawn at random; a request reaches the
    candidate when its user is assigned there, so with ``share`` of the users on the candidate
    its count is binomial ``(requests_per_step, share)``. Each step's failure probability is the
    binomial tail averaged over that count (the limit jumps with the count: at 99 requests two
    errors fail a 2 % step, at 100 it takes three).
    """
    shares = np.asarray(list(candidate_shares), dtype=float)
    if shares.size == 0 or not np.all((shares > 0) & (shares <= 1)):
        raise ValueError(f"candidate_shares must be shares in (0, 1], got {shares.tolist()}.")
    if isinstance(requests_per_step, bool) or not isinstance(requests_per_step,
                                                             (int, np.integer)) \
            or requests_per_step < 1:
        raise ValueError(f"requests_per_step must be a whole number >= 1, got "
                         f"{requests_per_step!r}.")
    counts = np.arange(requests_per_step + 1)
    tail = step_failure_probability(counts, error_rate, max_error_rate)
    fail = [float(stats.binom.pmf(counts, requests_per_step, share) @ tail) for share in shares]
    return _rolled_back(fail, failure_limit)


@dataclass(frozen=True)
class Gate:
    """One environment of a promotion chain and the strategy that guards it."""

    environment: str
    strategy: BlueGreen | Canary | Shadow
    target: Target = field(repr=False)


@dataclass(frozen=True)
class Promotion:
    """Result of :func:`promote_through`: where the candidate got and each gate's timeline."""

    reached: str | None
    outcome: str
    timelines: Mapping[str, Timeline] = field(repr=False)


def promote_through(gates: Sequence[Gate], baseline: str, candidate: str,
                    rng: np.random.Generator) -> Promotion:
    """Promote ``candidate`` dev -> test -> staging -> production, stopping at the first failure.

    The environments must follow the order of :data:`labsupport.environments.ENVIRONMENTS`
    (lesson 01); each gate runs its strategy on its own target and passes on ``promoted``.
    """
    if not gates:
        raise ValueError("no gates: name at least one environment.")
    order = [environments.ENVIRONMENTS.index(g.environment) if g.environment in
             environments.ENVIRONMENTS else -1 for g in gates]
    if -1 in order:
        bad = gates[order.index(-1)].environment
        raise ValueError(f"unknown environment {bad!r}; expected among "
                         f"{environments.ENVIRONMENTS}.")
    if any(b <= a for a, b in zip(order, order[1:])):
        raise ValueError(f"environments must go forward {environments.ENVIRONMENTS}, got "
                         f"{[g.environment for g in gates]}.")
    timelines: dict[str, Timeline] = {}
    reached = None
    for gate in gates:
        timeline = gate.strategy.run(gate.target, baseline, candidate, rng)
        timelines[gate.environment] = timeline
        if timeline.outcome != "promoted":
            return Promotion(reached, f"stopped at {gate.environment}: {timeline.outcome}",
                             timelines)
        reached = gate.environment
    return Promotion(reached, "promoted to every environment", timelines)


def risk_table(timelines: Mapping[str, Timeline], horizon_minutes: float) -> pd.DataFrame:
    """The strategy table, measured: one row per named timeline (lesson 06).

    Excess bad responses are counted to ``horizon_minutes`` (:meth:`Timeline.excess_bad_until`),
    the same horizon for every row, so a promoted bad candidate pays for the users it keeps
    serving.
    """
    rows = {}
    for label, timeline in timelines.items():
        delay = timeline.rollback_minutes
        rows[label] = {"strategy": timeline.strategy, "outcome": timeline.outcome,
                       "bad responses served": timeline.bad_served,
                       "excess bad responses": round(timeline.excess_bad_until(horizon_minutes),
                                                     1),
                       "users exposed to candidate": timeline.exposed[timeline.candidate],
                       "minutes to full rollout": timeline.minutes_to_full,
                       "minutes candidate served before rollback": timeline.minutes_exposed,
                       "rollback": ("—" if math.isnan(delay) else
                                    f"instant: every user back {delay:g} min after deciding")}
    return pd.DataFrame.from_dict(rows, orient="index")


def outcome_shares(timelines: Sequence[Timeline]) -> pd.Series:
    """Share of each outcome over repeated rollouts (lesson 06).

    One rollout is one story; the share of rollbacks (or promotions) over many is the risk.
    Every outcome a strategy can end with is listed, with 0 when it did not occur.
    """
    outcomes = [timeline.outcome for timeline in timelines]
    if not outcomes:
        raise ValueError("no timelines: run the rollout at least once.")
    return pd.Series({outcome: outcomes.count(outcome) / len(outcomes) for outcome in OUTCOMES},
                     name=f"share of {len(outcomes)} rollouts")


def geometric_schedule(first_share: float, n_steps: int) -> tuple[float, ...]:
    """A canary schedule of ``n_steps`` shares growing geometrically from ``first_share`` to 1.

    ``geometric_schedule(0.05, 5)`` is about (5 %, 11 %, 22 %, 47 %, 100 %), rounded to 0.1 %.
    """
    if not 0 < first_share < 1:
        raise ValueError(f"first_share must be strictly between 0 and 1, got {first_share}.")
    if int(n_steps) != n_steps or n_steps < 2:
        raise ValueError(f"n_steps must be a whole number >= 2, got {n_steps}.")
    shares = np.round(np.geomspace(first_share, 1.0, int(n_steps)), 3)
    return check_schedule(tuple(float(s) for s in shares))


def shadow_requests_needed(disagreement: float, gain: float, margin: float = 0.0,
                           alpha: float = 0.05, power: float = 0.8) -> int:
    """Mirrored labelled requests a shadow needs to be promoted over a margin (lesson 06).

    The rule is ``ImprovementRule(margin, z=z_{1 - alpha})``: promote when the measured gain
    is ``z_{1 - alpha}`` standard errors above ``margin`` (a one-sided test of "the gain is at
    most ``margin``" at level ``alpha``). This returns the requests at which a shadow whose true
    accuracy gain is ``gain`` (above ``margin``) is promoted with probability ``power``.

    The shadow and the primary answer the same requests, so the per-request difference of
    correctness is 0 except where they disagree: its variance is at most ``disagreement``.
    So ``n = (z_{1 - alpha} + z_power)^2 * disagreement / (gain - margin)^2``.
    """
    for value, name in ((alpha, "alpha"), (power, "power")):
        if not 0 < value < 1:
            raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}.")
    if not 0 < disagreement <= 1 or not gain > margin or not abs(gain) <= disagreement:
        raise ValueError(f"need 0 < disagreement <= 1, |gain| <= disagreement (a gain comes "
                         f"from requests where the two disagree) and gain > margin (a shadow "
                         f"no better than the margin is never to be promoted), got "
                         f"disagreement={disagreement}, gain={gain}, margin={margin}.")
    z = stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)
    return math.ceil(z ** 2 * disagreement / (gain - margin) ** 2)


def build(strategy: str, *, first_share: float = 0.05, n_steps: int = 5,
          treatment_share: float = 0.5, requests_per_step: int = 2000,
          analysis: Analysis = DEFAULT_ANALYSIS) -> BlueGreen | Canary | Shadow | ABSplit:
    """A strategy by name (``blue-green``, ``canary``, ``shadow``, ``A/B``), as widgets set it."""
    if strategy == "blue-green":
        return BlueGreen(analysis=analysis, requests_per_step=requests_per_step)
    if strategy == "canary":
        return Canary(geometric_schedule(first_share, n_steps), analysis,
                      requests_per_step=requests_per_step)
    if strategy == "shadow":
        return Shadow(requests_per_step=requests_per_step)
    if strategy == "A/B":
        return ABSplit(treatment_share, requests_per_step=requests_per_step)
    raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}.")


STRATEGIES = ("blue-green", "canary", "shadow", "A/B")
#: How a rollout can end.
OUTCOMES = ("promoted", "rolled back", "aborted", "not promoted", "experiment complete")
