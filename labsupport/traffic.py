"""A vectorised traffic simulator: users send requests, a router splits them over model versions.

Taught in lesson 06. A :class:`Population` holds the users (a stable id, the features a model
sees for that user, optionally the true label and a segment name). A :class:`Version` is a model
plus how it behaves in production: a latency model (log-normal around a median) and an error
rate. A :class:`Simulator` routes requests to versions by weight with the salted stable hash of
:mod:`labsupport.assignment` (sticky: a user keeps their version while the weights stay put) and
scores every request: the answer served, whether it was right, its latency and whether it failed.

Everything is numpy on whole arrays. Each version predicts **once** on the distinct inputs
(the population's rows) and the answers are looked up per request, so a step of 100,000 requests
costs a few array operations, not 100,000 calls to ``predict``. :meth:`Simulator.stream` scores
any number of requests in chunks of fixed size, so ten million requests fit in little memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

from labsupport import assignment

#: Latency histogram edges (ms) used to estimate quantiles when streaming: 0.1 ms to 100 s.
LATENCY_EDGES = np.geomspace(0.1, 100_000.0, 2001)


@dataclass(frozen=True)
class Population:
    """The users who send requests (lesson 06).

    Attributes
    ----------
    user_ids
        One stable id per user (integers or strings), all distinct.
    X
        The input the model sees for each user, shape ``(n_users, n_features)``.
    y
        The true label of each user's input, or ``None`` when labels are not known (yet).
    segment
        Optional segment name of each user (e.g. a region), to see where a version is worse.
    """

    user_ids: np.ndarray
    X: np.ndarray
    y: np.ndarray | None = None
    segment: np.ndarray | None = None

    def __post_init__(self) -> None:
        ids = np.asarray(self.user_ids)
        features = np.asarray(self.X)
        if ids.ndim != 1 or ids.size == 0:
            raise ValueError(f"user_ids must be a non-empty 1-D array, got shape {ids.shape}.")
        if np.unique(ids).size != ids.size:
            raise ValueError("user_ids must be distinct: one row per user.")
        if features.ndim != 2 or features.shape[0] != ids.size:
            raise ValueError(f"X must have one row per user ({ids.size}), got shape "
                             f"{features.shape}.")
        for name in ("y", "segment"):
            value = getattr(self, name)
            if value is not None and np.asarray(value).shape != ids.shape:
                raise ValueError(f"{name} must have one entry per user ({ids.size}), got "
                                 f"shape {np.asarray(value).shape}.")
            if value is not None:
                object.__setattr__(self, name, np.asarray(value))
        object.__setattr__(self, "user_ids", ids)
        object.__setattr__(self, "X", features)

    @property
    def n_users(self) -> int:
        """Number of users."""
        return int(self.user_ids.size)

    def __repr__(self) -> str:
        labels = "labelled" if self.y is not None else "unlabelled"
        return f"Population({self.n_users} users, {self.X.shape[1]} features, {labels})"


@dataclass(frozen=True)
class Version:
    """A model version as production sees it (lesson 06).

    Attributes
    ----------
    name
        The version's name (``"v1"``, ``"blue"``, ...).
    model
        Anything with ``predict(X)``.
    latency_ms
        Median latency of one request, in milliseconds.
    latency_spread
        Standard deviation of the log latency (log-normal model); 0 gives a constant latency.
    error_rate
        Probability that a request fails (HTTP 500: no answer).
    healthy
        What the version's health check answers.
    """

    name: str
    model: object = field(repr=False)
    latency_ms: float = 20.0
    latency_spread: float = 0.25
    error_rate: float = 0.0
    healthy: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"a version needs a non-empty string name, got {self.name!r}.")
        if not callable(getattr(self.model, "predict", None)):
            raise TypeError(f"version {self.name!r}: model must have a predict(X) method.")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"version {self.name!r}: error_rate must be in [0, 1], got "
                             f"{self.error_rate}.")
        if self.latency_ms <= 0 or self.latency_spread < 0:
            raise ValueError(f"version {self.name!r}: latency_ms must be > 0 and "
                             f"latency_spread >= 0, got {self.latency_ms}, "
                             f"{self.latency_spread}.")


@dataclass(frozen=True)
class Metrics:
    """What an analysis reads about one version over some requests (lesson 06).

    ``accuracy`` counts a failed request as a wrong answer and is ``nan`` without labels;
    ``bad`` is the number of responses that were errors or wrong answers. ``latency_p50_ms`` is
    the median latency: a few dozen requests estimate it well, where their p99 is little more
    than the slowest request.
    """

    requests: int
    users: int
    errors: int
    error_rate: float
    latency_p99_ms: float
    accuracy: float
    bad: int
    latency_p50_ms: float = math.nan

    def as_dict(self) -> dict:
        """The fields as a plain dict (a row of a metrics table)."""
        return dict(self.__dict__)


def _empty_metrics() -> Metrics:
    return Metrics(0, 0, 0, math.nan, math.nan, math.nan, 0, math.nan)


@dataclass(frozen=True)
class Served:
    """Every request of one step, scored (lesson 06): the per-request log of a router.

    Attributes
    ----------
    versions
        Names of the versions, in the order of their codes.
    version
        Code of the version that answered each request.
    user
        Index (into the population) of the user who sent each request.
    prediction
        The answer served (``-1`` where the request failed).
    correct
        Whether the answer was right (``None`` without labels; a failure is not right).
    latency_ms, error
        Latency (single precision) and failure of each request.
    user_ids
        The population's ids (``user_ids[user]`` is the id behind each request).
    shadow
        The mirrored copy of the same requests when a shadow version listened in: scored but
        never returned to users.
    """

    versions: tuple[str, ...]
    version: np.ndarray = field(repr=False)
    user: np.ndarray = field(repr=False)
    prediction: np.ndarray = field(repr=False)
    correct: np.ndarray | None = field(repr=False)
    latency_ms: np.ndarray = field(repr=False)
    error: np.ndarray = field(repr=False)
    user_ids: np.ndarray = field(repr=False)
    shadow: Served | None = field(default=None, repr=False)

    @property
    def n_requests(self) -> int:
        """Number of requests in the step."""
        return int(self.version.size)

    def metrics_of(self, name: str) -> Metrics:
        """The :class:`Metrics` of one version over the requests it answered."""
        if name not in self.versions:
            raise ValueError(f"unknown version {name!r}; this step served {list(self.versions)}.")
        mask = self.version == self.versions.index(name)
        requests = int(mask.sum())
        if requests == 0:
            return _empty_metrics()
        errors = int(self.error[mask].sum())
        if self.correct is None:
            accuracy, bad = math.nan, errors
        else:
            right = int(self.correct[mask].sum())
            accuracy, bad = right / requests, requests - right
        return Metrics(requests=requests, users=int(self.exposed_mask(name).sum()),
                       errors=errors, error_rate=errors / requests,
                       latency_p99_ms=float(np.quantile(self.latency_ms[mask], 0.99)),
                       accuracy=accuracy, bad=bad,
                       latency_p50_ms=float(np.median(self.latency_ms[mask])))

    def metrics(self) -> pd.DataFrame:
        """One row of :class:`Metrics` per version."""
        return pd.DataFrame([self.metrics_of(name).as_dict() for name in self.versions],
                            index=pd.Index(self.versions, name="version"))

    def exposed(self, name: str) -> np.ndarray:
        """Ids of the distinct users who were answered by version ``name``."""
        if name not in self.versions:
            raise ValueError(f"unknown version {name!r}; this step served {list(self.versions)}.")
        return self.user_ids[self.exposed_mask(name)]

    def exposed_mask(self, name: str) -> np.ndarray:
        """Boolean mask over the population: which users version ``name`` answered."""
        if name not in self.versions:
            raise ValueError(f"unknown version {name!r}; this step served {list(self.versions)}.")
        seen = np.zeros(self.user_ids.size, dtype=bool)
        seen[self.user[self.version == self.versions.index(name)]] = True
        return seen


@dataclass(frozen=True)
class StreamSummary:
    """Per-version totals of a streamed simulation (lesson 06): :meth:`Simulator.stream`.

    ``latency_p99_ms`` is read from a fine log-spaced histogram (within 0.35 % of the exact
    quantile), the only way to get a quantile without keeping every latency.
    """

    n_requests: int
    chunk_size: int
    metrics: pd.DataFrame


class Simulator:
    """Route requests from a :class:`Population` to :class:`Version` s and score them (lesson 06).

    Parameters
    ----------
    population
        The users.
    versions
        The deployed versions (a sequence of :class:`Version`, names distinct).

    Notes
    -----
    Each version predicts once on the whole population the first time it gets traffic; later
    steps reuse the answers. Users' hash buckets are computed once per salt.
    """

    def __init__(self, population: Population, versions: Sequence[Version]) -> None:
        if not isinstance(population, Population):
            raise TypeError(f"population must be a traffic.Population, got "
                            f"{type(population).__name__}.")
        versions = list(versions)
        if not versions:
            raise ValueError("no versions: deploy at least one model version.")
        names = [v.name for v in versions]
        if len(set(names)) != len(names):
            raise ValueError(f"version names must be distinct, got {names}.")
        self.population = population
        self.versions = {v.name: v for v in versions}
        self._predictions: dict[str, np.ndarray] = {}
        self._buckets: dict[str, np.ndarray] = {}

    # -- the pieces ------------------------------------------------------------------------
    def predictions(self, name: str) -> np.ndarray:
        """Version ``name``'s answer for every user (one ``predict`` call, then cached)."""
        self._check_version(name)
        if name not in self._predictions:
            answers = np.asarray(self.versions[name].model.predict(self.population.X))
            self._predictions[name] = answers
        return self._predictions[name]

    def route(self, weights: Mapping[str, float], salt: str = "rollout") -> np.ndarray:
        """Code (index into ``list(weights)``) of each user's version under ``weights``: sticky."""
        self._check_weights(weights)
        if salt not in self._buckets:
            self._buckets[salt] = assignment.buckets(self.population.user_ids, salt)
        return assignment.assign_buckets(self._buckets[salt], list(weights.values()))

    def health(self, name: str) -> bool:
        """What version ``name``'s health check answers."""
        self._check_version(name)
        return bool(self.versions[name].healthy)

    def draw(self, n_requests: int, rng: np.random.Generator) -> np.ndarray:
        """Users (indices) behind ``n_requests`` requests: every user equally active."""
        if int(n_requests) != n_requests or n_requests < 1:
            raise ValueError(f"n_requests must be a whole number >= 1 (empty traffic cannot be "
                             f"analysed), got {n_requests}.")
        return rng.integers(0, self.population.n_users, size=int(n_requests))

    # -- scoring ---------------------------------------------------------------------------
    def serve(self, weights: Mapping[str, float], n_requests: int, rng: np.random.Generator, *,
              salt: str = "rollout", mirror_to: str | None = None,
              users: np.ndarray | None = None) -> Served:
        """Score ``n_requests`` requests split over versions by ``weights``.

        Parameters
        ----------
        weights
            Version name -> share of users, non-negative, summing to 1.
        n_requests
            Number of requests in this step.
        rng
            Draws which users send requests, latencies and failures.
        salt
            Names the rollout (the hash salt): keep it for the whole rollout.
        mirror_to
            A version that receives a copy of every request (shadow): its answers are scored
            in ``Served.shadow`` and never returned to users.
        users
            The users (indices) behind the requests, instead of drawing them.

        Returns
        -------
        Served
        """
        codes_per_user = self.route(weights, salt)
        user = self.draw(n_requests, rng) if users is None else np.asarray(users)
        names = tuple(weights)
        served = self._score(names, codes_per_user, user, rng)
        if mirror_to is not None:
            self._check_version(mirror_to)
            everyone = np.zeros(self.population.n_users, dtype=np.int64)
            mirrored = self._score((mirror_to,), everyone, user, rng)
            served = Served(**{**served.__dict__, "shadow": mirrored})
        return served

    def _score(self, names: tuple[str, ...], codes_per_user: np.ndarray, user: np.ndarray,
               rng: np.random.Generator) -> Served:
        n = user.size
        # Routing is sticky, so each user's answer (and whether it is right) is settled once per
        # user, and each request only looks its user up: a few gathers over the requests, one
        # draw for latency and one for failure (none when no version can fail). A version no
        # user is routed to never predicts.
        codes_per_user = codes_per_user.astype(np.int8)
        live = np.bincount(codes_per_user, minlength=len(names)) > 0
        answer = np.zeros(self.population.n_users, dtype=np.int64)
        for index, name in enumerate(names):
            if live[index]:
                mine = codes_per_user == index
                answer[mine] = self.predictions(name)[mine]
        code = codes_per_user.take(user)
        prediction = answer.take(user)
        versions = [self.versions[name] for name in names]

        def per_request(values: list[float]) -> np.float32 | np.ndarray:
            # versions often share a setting (no errors, one spread): then one number will do
            table = np.array(values, dtype=np.float32)
            return table[0] if np.all(table == table[0]) else table.take(code)

        # Latencies in single precision (7 digits of a millisecond count are plenty), drawn
        # and exponentiated at twice the speed of double precision.
        latency = rng.standard_normal(n, dtype=np.float32)
        latency *= per_request([v.latency_spread for v in versions])
        np.exp(latency, out=latency)
        latency *= per_request([v.latency_ms for v in versions])
        rates = per_request([v.error_rate for v in versions])
        if np.ndim(rates) == 0 and rates == 0:  # no version ever fails: no coin to toss
            error = np.zeros(n, dtype=bool)
        else:
            error = rng.random(n, dtype=np.float32) < rates
            prediction[error] = -1
        labels = self.population.y
        correct = None if labels is None else (answer == labels).take(user)
        if correct is not None and error.any():
            correct &= ~error
        return Served(versions=names, version=code, user=user,
                      prediction=prediction, correct=correct, latency_ms=latency, error=error,
                      user_ids=self.population.user_ids)

    def stream(self, weights: Mapping[str, float], n_requests: int, rng: np.random.Generator, *,
               salt: str = "rollout", chunk_size: int = 1_000_000) -> StreamSummary:
        """Score ``n_requests`` requests in chunks of ``chunk_size``: memory stays flat.

        Returns per-version totals (requests, errors, accuracy, latency p99 from a histogram).
        """
        if int(chunk_size) != chunk_size or chunk_size < 1:
            raise ValueError(f"chunk_size must be a whole number >= 1, got {chunk_size}.")
        if int(n_requests) != n_requests or n_requests < 1:
            raise ValueError(f"n_requests must be a whole number >= 1, got {n_requests}.")
        names = tuple(weights)
        # per version: [requests, errors, right], latency histogram, users seen
        totals = {name: (np.zeros(3, dtype=np.int64),
                         np.zeros(LATENCY_EDGES.size - 1, dtype=np.int64),
                         np.zeros(self.population.n_users, dtype=bool)) for name in names}
        left = int(n_requests)
        while left > 0:
            size = min(left, int(chunk_size))
            left -= size
            served = self.serve(weights, size, rng, salt=salt)
            _accumulate(totals, served)
            del served
        rows = _stream_rows(totals, self.population.y is not None)
        frame = pd.DataFrame(rows, index=pd.Index(names, name="version"))
        return StreamSummary(int(n_requests), int(chunk_size), frame)

    # -- checks ----------------------------------------------------------------------------
    def _check_version(self, name: str) -> None:
        if name not in self.versions:
            raise ValueError(f"unknown version {name!r}; deployed versions are "
                             f"{sorted(self.versions)}.")

    def _check_weights(self, weights: Mapping[str, float]) -> None:
        if not isinstance(weights, Mapping):
            raise TypeError(f"weights must map version names to shares, e.g. "
                            f"{{'v1': 0.9, 'v2': 0.1}}, got {weights!r}.")
        for name in weights:
            self._check_version(name)
        values = np.asarray(list(weights.values()), dtype=float)
        if values.size == 0 or np.any(~np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"weights must be finite and non-negative, got {dict(weights)}.")
        if not math.isclose(float(values.sum()), 1.0, abs_tol=1e-9):
            raise ValueError(f"weights must sum to 1, got {dict(weights)} "
                             f"(sum {values.sum():g}).")


@dataclass(frozen=True)
class World:
    """The production of lesson 06: users, a baseline and three candidates.

    ``versions`` holds ``v1`` (the baseline, RandomForest(50)), ``v2`` (a good candidate,
    RandomForest(100) on the same data), ``v2-segment`` (subtly bad: trained on data whose labels
    were wrong for one segment of users, so it is worse there only) and ``v2-broken`` (the good
    model on a server that fails 6 % of requests and answers 4x slower).
    """

    population: Population
    versions: tuple[Version, ...] = field(repr=False)
    segment_name: str = "segment B"

    def simulator(self) -> Simulator:
        """A fresh :class:`Simulator` over this world."""
        return Simulator(self.population, self.versions)


def lesson_world(seed: int, n_users: int = 4000, n_train: int = 2000,
                 segment_share: float = 0.1) -> World:
    """Build the world of lesson 06 from scikit-learn's ``make_classification``.

    The segment is the ``segment_share`` of users with the largest first feature; every
    version's model is fitted on ``n_train`` rows apart from the users.
    """
    X, y = make_classification(n_samples=n_train + n_users, n_features=20, n_informative=15,
                               random_state=seed)
    cut = np.quantile(X[:, 0], 1 - segment_share)
    in_segment = X[:, 0] > cut
    X_train, y_train = X[:n_train], y[:n_train]
    wrong_labels = np.where(in_segment[:n_train], 1 - y_train, y_train)
    fit = {
        "v1": RandomForestClassifier(50, random_state=seed).fit(X_train, y_train),
        "v2": RandomForestClassifier(100, random_state=seed).fit(X_train, y_train),
        "v2-segment": RandomForestClassifier(100, random_state=seed).fit(X_train,
                                                                          wrong_labels),
    }
    population = Population(np.arange(n_users), X[n_train:], y[n_train:],
                            np.where(in_segment[n_train:], "segment B", "segment A"))
    versions = (Version("v1", fit["v1"], latency_ms=30.0, error_rate=0.002),
                Version("v2", fit["v2"], latency_ms=32.0, error_rate=0.002),
                Version("v2-segment", fit["v2-segment"], latency_ms=32.0, error_rate=0.002),
                Version("v2-broken", fit["v2"], latency_ms=130.0, error_rate=0.06))
    return World(population, versions)


def _accumulate(totals: dict, served: Served) -> None:
    for index, name in enumerate(served.versions):
        mask = served.version == index
        counts, histogram, seen = totals[name]
        counts += [int(mask.sum()), int(served.error[mask].sum()),
                   0 if served.correct is None else int(served.correct[mask].sum())]
        histogram += np.histogram(served.latency_ms[mask], LATENCY_EDGES)[0]
        seen[served.user[mask]] = True


def _stream_rows(totals: dict, labelled: bool) -> list[dict]:
    rows = []
    for counts, histogram, seen in totals.values():
        requests, errors, right = (int(v) for v in counts)
        rows.append({"requests": requests, "users": int(seen.sum()), "errors": errors,
                     "error_rate": errors / requests if requests else math.nan,
                     "latency_p99_ms": _histogram_quantile(histogram, 0.99),
                     "accuracy": right / requests if requests and labelled else math.nan})
    return rows


def _histogram_quantile(counts: np.ndarray, q: float) -> float:
    total = int(counts.sum())
    if total == 0:
        return math.nan
    cumulative = np.cumsum(counts)
    index = int(np.searchsorted(cumulative, q * total))
    low, high = LATENCY_EDGES[index], LATENCY_EDGES[index + 1]
    return float(np.sqrt(low * high))
