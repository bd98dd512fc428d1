"""labsupport.environments: configuration drift and the plan/apply loop."""

from __future__ import annotations

import pytest

from labsupport import environments

CONFIGS = {
    "dev": {"python": "3.11", "replicas": 1, "debug": True},
    "staging": {"python": "3.11", "replicas": 2},
    "production": {"python": "3.11", "replicas": 2, "debug": False},
}


def test_config_drift_lists_only_settings_that_differ():
    drift = environments.config_drift(CONFIGS)
    assert list(drift.index) == ["debug", "replicas"]
    assert drift.loc["debug", "drifted_in"] == "dev, staging"
    assert drift.loc["debug", "staging"] == "<missing>"
    assert drift.loc["replicas", "drifted_in"] == "dev"


def test_identical_environments_have_no_drift():
    same = {"staging": {"a": 1}, "production": {"a": 1}}
    assert environments.config_drift(same).empty


def test_config_drift_needs_the_reference_environment():
    with pytest.raises(ValueError, match="reference"):
        environments.config_drift({"dev": {}}, reference="production")


DESIRED = {"bucket.models": {"region": "eu"}, "service.api": {"image": "api:2", "cpu": 1}}


def test_plan_creates_updates_and_deletes():
    state = {"service.api": {"image": "api:1", "cpu": 1}, "vm.old": {"size": "large"}}
    actions = environments.plan(DESIRED, state)
    assert [(a.kind, a.address) for a in actions] == [
        ("create", "bucket.models"), ("update", "service.api"), ("delete", "vm.old")]
    assert [str(a) for a in actions] == ["+ bucket.models", "~ service.api (image)", "- vm.old"]


def test_apply_reaches_the_desired_state_and_a_second_plan_is_empty():
    state = {"vm.old": {"size": "large"}}
    new_state = environments.apply(environments.plan(DESIRED, state), state)
    assert new_state == DESIRED
    assert not environments.plan(DESIRED, new_state)
    assert state == {"vm.old": {"size": "large"}}, "apply must not modify its input"


def test_a_stale_plan_is_refused():
    state = {"service.api": {"image": "api:1", "cpu": 1}}
    actions = environments.plan(DESIRED, state)
    changed_by_hand = {"service.api": {"image": "api:1", "cpu": 4}}
    with pytest.raises(ValueError, match="stale plan"):
        environments.apply(actions, changed_by_hand)
