"""The strategies against real HTTP servers: health checks, a switch, a canary step, mirroring."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from labsupport import assignment, rollout, serving, traffic
from tests.test_traffic import CountingModel

LENIENT_LATENCY = 5_000.0  # real round trips on a busy CI machine: judge errors and accuracy


@pytest.fixture(scope="module")
def cluster():
    """Four real servers and a router on loopback ports, stopped when the module ends."""
    features = np.random.default_rng(0).normal(size=(300, 2))
    population = traffic.Population(np.arange(300), features, (features[:, 0] > 0).astype(int))
    versions = [traffic.Version("v1", CountingModel()),
                traffic.Version("v2", CountingModel()),
                traffic.Version("sick", CountingModel(), healthy=False),
                traffic.Version("flaky", CountingModel(), error_rate=0.3)]
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
