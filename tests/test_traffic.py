"""The traffic simulator: routing by weight, sticky users, scoring, one predict per version."""

from __future__ import annotations

import numpy as np
import pytest

from labsupport import assignment, traffic


class CountingModel:  # pylint: disable=too-few-public-methods
    """Predicts ``x0 > 0`` and counts how often and on how many rows ``predict`` was called."""

    def __init__(self, flip: bool = False) -> None:
        self.calls, self.rows, self.flip = 0, 0, flip

    def predict(self, X):
        """The sign of the first feature (flipped if asked), counting the call."""
        self.calls += 1
        self.rows += len(X)
        answer = (np.asarray(X)[:, 0] > 0).astype(int)
        return 1 - answer if self.flip else answer


def _world(n_users: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_users, 2))
    population = traffic.Population(np.arange(n_users), X, (X[:, 0] > 0).astype(int))
    good, wrong = CountingModel(), CountingModel(flip=True)
    versions = [traffic.Version("good", good, latency_ms=20.0),
                traffic.Version("wrong", wrong, latency_ms=80.0, error_rate=0.1)]
    return traffic.Simulator(population, versions), good, wrong


def test_each_version_predicts_once_on_the_distinct_inputs():
    simulator, good, wrong = _world()
    rng = np.random.default_rng(1)
    for _ in range(3):
        simulator.serve({"good": 0.5, "wrong": 0.5}, 20_000, rng)
    assert (good.calls, wrong.calls) == (1, 1)
    assert good.rows == wrong.rows == 3000


def test_a_version_without_traffic_is_never_asked_to_predict():
    simulator, good, wrong = _world()
    served = simulator.serve({"good": 1.0, "wrong": 0.0}, 5_000, np.random.default_rng(1))
    assert (good.calls, wrong.calls) == (1, 0)
    assert served.metrics().loc["good", "requests"] == 5_000


def test_scoring_follows_each_version():
    simulator, _, _ = _world()
    served = simulator.serve({"good": 0.7, "wrong": 0.3}, 50_000, np.random.default_rng(2))
    table = served.metrics()
    assert table.loc["good", "accuracy"] == 1.0
    assert table.loc["good", "errors"] == 0
    assert table.loc["wrong", "accuracy"] == 0.0
    n = table.loc["wrong", "requests"]
    assert abs(table.loc["wrong", "error_rate"] - 0.1) < 4 * np.sqrt(0.09 / n)
    assert table.loc["wrong", "latency_p99_ms"] > 3 * table.loc["good", "latency_p99_ms"]
    assert np.all(served.prediction[served.error] == -1)
    share = table.loc["wrong", "users"] / table["users"].sum()
    assert abs(share - 0.3) < 0.05


def test_routing_is_the_shared_sticky_assignment():
    simulator, _, _ = _world()
    served = simulator.serve({"good": 0.5, "wrong": 0.5}, 10_000, np.random.default_rng(3),
                             salt="exp")
    expected = assignment.assign(served.user_ids[served.user], "exp", [0.5, 0.5])
    assert served.version.tolist() == expected.tolist()
    again = simulator.serve({"good": 0.5, "wrong": 0.5}, 10_000, np.random.default_rng(4),
                            salt="exp")
    first = dict(zip(served.user.tolist(), served.version.tolist()))
    assert all(first.get(u, v) == v for u, v in zip(again.user.tolist(), again.version.tolist()))


def test_mirror_scores_the_same_requests_but_serves_the_primary():
    simulator, _, _ = _world()
    served = simulator.serve({"good": 1.0}, 5000, np.random.default_rng(5), mirror_to="wrong")
    assert served.versions == ("good",)
    assert np.array_equal(served.shadow.user, served.user)
    ok = ~served.error
    assert np.array_equal(served.prediction[ok], simulator.predictions("good")[served.user[ok]])
    assert served.shadow.metrics_of("wrong").accuracy == 0.0


def test_stream_in_chunks_matches_the_weights_and_rates():
    simulator, _, _ = _world()
    summary = simulator.stream({"good": 0.8, "wrong": 0.2}, 200_001,
                               np.random.default_rng(6), chunk_size=30_000)
    frame = summary.metrics
    assert frame["requests"].sum() == 200_001
    assert abs(frame.loc["wrong", "error_rate"] - 0.1) < 0.01
    assert frame.loc["good", "accuracy"] == 1.0
    exact = 20.0 * np.exp(0.25 * 2.3263)  # p99 of the log-normal latency model
    assert frame.loc["good", "latency_p99_ms"] == pytest.approx(exact, rel=0.03)


@pytest.mark.parametrize("weights, message", [
    ({"good": 0.5, "wrong": 0.6}, "sum to 1"),
    ({"good": -0.5, "wrong": 1.5}, "non-negative"),
    ({"good": 0.5, "nope": 0.5}, "unknown version"),
])
def test_bad_weights_are_explained(weights, message):
    simulator, _, _ = _world()
    with pytest.raises(ValueError, match=message):
        simulator.serve(weights, 10, np.random.default_rng(0))


def test_empty_traffic_and_bad_populations_are_explained():
    simulator, _, _ = _world()
    with pytest.raises(ValueError, match="empty traffic"):
        simulator.serve({"good": 1.0}, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="distinct"):
        traffic.Population(np.array([1, 1]), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="one row per user"):
        traffic.Population(np.array([1, 2]), np.zeros((3, 1)))
    with pytest.raises(TypeError, match="predict"):
        traffic.Version("x", object())
