"""The strategies against real HTTP servers: health checks, a switch, a canary step, mirroring."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from labsupport import assignment, rollout, serving, traffic
from tests.test_traffic import CountingModel

LENIENT_LATENCY = 5_000.0  # real round trips on a busy CI machine: judge errors and accuracy
SLOW_MS = 300.0  # the slow version's latency model: every answer takes at least this long
STALLED_MS = 5_000.0  # a shadow this slow would hold every user for seconds if they waited


@pytest.fixture(scope="module")
def cluster():
    """Four real servers and a router on loopback ports, stopped when the module ends."""
    features = np.random.default_rng(0).normal(size=(300, 2))
    population = traffic.Population(np.arange(300), features, (features[:, 0] > 0).astype(int))
    versions = [traffic.Version("v1", CountingModel(), latency_ms=2.0),
                traffic.Version("v2", CountingModel(), latency_ms=2.0),
                traffic.Version("sick", CountingModel(), latency_ms=2.0, healthy=False),
                traffic.Version("flaky", CountingModel(), latency_ms=2.0, error_rate=0.3),
                traffic.Version("slow", CountingModel(), latency_ms=SLOW_MS, latency_spread=0.0),
                traffic.Version("stalled", CountingModel(), latency_ms=STALLED_MS,
                                latency_spread=0.0)]
    with serving.Cluster(population, versions) as running:
        yield running


def _analysis() -> rollout.Analysis:
    return rollout.Analysis((rollout.Condition("error_rate", at_most=0.05),
                             rollout.Condition("latency_p99_ms", at_most=LENIENT_LATENCY)))


def test_health_checks_are_real_requests(cluster):
    assert cluster.health("v2") and not cluster.health("sick")
    assert httpx.get(f"{cluster.urls['sick']}/health").status_code == 503
    with pytest.raises(ValueError, match="unknown version"):
        cluster.health("nope")


def test_one_blue_green_switch_and_an_abort(cluster):
    strategy = rollout.BlueGreen(smoke=_analysis(), smoke_requests=20, analysis=_analysis(),
                                 analysis_steps=1, requests_per_step=40)
    rng = np.random.default_rng(1)
    switched = strategy.run(cluster, "v1", "v2", rng)
    assert switched.outcome == "promoted"
    assert switched.live("v2")["requests"].sum() == 40
    aborted = strategy.run(cluster, "v1", "sick", rng)
    assert aborted.outcome == "aborted" and aborted.exposed["sick"] == 0


def test_one_canary_step_rolls_back_a_flaky_server(cluster):
    canary = rollout.Canary(schedule=(0.5, 1.0), analysis=_analysis(), requests_per_step=80)
    timeline = canary.run(cluster, "v1", "flaky", np.random.default_rng(2))
    assert timeline.outcome == "rolled back"
    assert timeline.live("flaky")["error_rate"].iloc[0] > 0.05


def test_router_is_sticky_and_mirroring_never_reaches_users(cluster):
    served = cluster.serve({"v1": 0.5, "v2": 0.5}, 60, np.random.default_rng(3), salt="s",
                           mirror_to="flaky")
    expected = assignment.assign(served.user_ids[served.user], "s", [0.5, 0.5])
    assert served.version.tolist() == expected.tolist()
    assert not served.error.any(), "users got the shadow's failures"
    assert served.shadow.versions == ("flaky",) and served.shadow.error.any()


def test_the_router_refuses_bad_weights(cluster):
    with pytest.raises(ValueError, match="refused"):
        cluster.serve({"v1": 0.5, "nope": 0.5}, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="sum to 1"):
        cluster.serve({"v1": 0.5, "v2": 0.6}, 1, np.random.default_rng(0))


def _against_the_baseline() -> rollout.Analysis:
    """Latency judged against the baseline in the same step: the machine's load cancels."""
    return rollout.Analysis((rollout.Condition("error_rate", at_most=0.05),
                             rollout.Condition("latency_increase_ms", at_most=SLOW_MS / 2)),
                            min_requests=10)


def test_a_slow_version_is_slow_on_the_wire_and_the_canary_rolls_it_back_for_it(cluster):
    served = cluster.serve({"slow": 1.0}, 16, np.random.default_rng(4))
    assert served.latency_ms.min() >= SLOW_MS, "the server answered before its latency model"
    canary = rollout.Canary(schedule=(0.5, 1.0), analysis=_against_the_baseline(),
                            requests_per_step=60)
    timeline = canary.run(cluster, "v1", "slow", np.random.default_rng(5))
    assert timeline.outcome == "rolled back"
    rollback = timeline.decisions[-1]
    assert "error_rate 0 ok" in rollback.reason and "latency_increase_ms" in rollback.reason
    step = timeline.metrics.loc[0]
    assert step.loc["slow", "latency_p50_ms"] >= SLOW_MS
    # what was judged: the slow median minus v1's, both measured in that step
    increase = step.loc["slow", "latency_p50_ms"] - step.loc["v1", "latency_p50_ms"]
    assert f"latency_increase_ms {increase:.4g} FAILS" in rollback.reason


def test_a_healthy_canary_is_judged_against_the_baseline_not_the_clock(cluster):
    # v2 is v1's twin: whatever the machine's load adds to a round trip, it adds to both, so
    # their medians differ by far less than the limit, and the canary promotes it.
    canary = rollout.Canary(schedule=(0.5, 1.0), analysis=_against_the_baseline(),
                            requests_per_step=60)
    timeline = canary.run(cluster, "v1", "v2", np.random.default_rng(6))
    assert timeline.outcome == "promoted", timeline.decisions


def test_users_do_not_wait_for_a_slow_shadow(cluster):
    # A user who waited for this shadow would wait at least 5 s, every one of them; a busy
    # machine slows a round trip by a fraction of that, so the test does not read the clock's
    # speed, only whether the wait is there.
    served = cluster.serve({"v1": 1.0}, 24, np.random.default_rng(6), mirror_to="stalled")
    assert served.shadow.metrics_of("stalled").requests == 24, "every request was mirrored"
    assert np.median(served.latency_ms) < STALLED_MS / 2


def test_a_model_server_draws_its_failures_from_its_seed():
    flaky = traffic.Version("flaky", CountingModel(), latency_ms=1.0, error_rate=0.5)

    async def ask(seed: int) -> list[int]:
        transport = httpx.ASGITransport(app=serving.model_app(flaky, seed))
        async with httpx.AsyncClient(transport=transport, base_url="http://model") as client:
            return [(await client.post("/predict", json={"features": [0.5, 0.0]})).status_code
                    for _ in range(30)]

    def statuses(seed: int) -> list[int]:
        return asyncio.run(ask(seed))

    first = statuses(7)
    assert first == statuses(7) and first != statuses(8)
    assert set(first) == {200, 500}


def test_a_model_server_predicts_once_for_the_users_it_knows():
    model = CountingModel()
    version = traffic.Version("v", model, latency_ms=1.0)
    population = traffic.Population(np.array([5, 6]), np.array([[1.0, 0.0], [-1.0, 0.0]]))
    app = serving.model_app(version, 0, population)
    assert (model.calls, model.rows) == (1, 2), "one prediction on every user's input"

    async def ask(body: dict) -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://model") as client:
            return (await client.post("/predict", json=body)).json()["prediction"]

    # a known user is answered from the start-up prediction, whatever features come along
    assert asyncio.run(ask({"user_id": 6, "features": [9.0, 0.0]})) == 0
    assert model.calls == 1
    assert asyncio.run(ask({"user_id": 7, "features": [9.0, 0.0]})) == 1  # unknown: predicted
    assert model.calls == 2


def test_cluster_refuses_a_concurrency_below_one():
    population = traffic.Population(np.arange(3), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="concurrency"):
        serving.Cluster(population, [traffic.Version("v1", CountingModel())], concurrency=0)
