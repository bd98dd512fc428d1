"""Environments as code: configuration drift and the plan/apply loop of infrastructure as code.

Taught in lesson 01. A team runs the same system in several environments (dev -> test ->
staging -> uat -> production). :func:`config_drift` shows where their settings disagree, which is
how "it worked in staging" failures start. :func:`plan` and :func:`apply` are the core of what an
infrastructure-as-code tool such as Terraform does, reduced to dictionaries and run locally:
compare the desired resources with the recorded state, list the actions, then carry them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

#: The usual path of a change, from a developer's machine to users.
ENVIRONMENTS = ("dev", "test", "staging", "uat", "production")

Resources = Mapping[str, Mapping[str, object]]


def config_drift(configs: Mapping[str, Mapping[str, object]],
                 reference: str = "production") -> pd.DataFrame:
    """Settings that differ from the reference environment.

    Parameters
    ----------
    configs
        Environment name -> its settings (key -> value).
    reference
        The environment the others should mirror.

    Returns
    -------
    pandas.DataFrame
        One row per setting that differs somewhere (a missing setting counts as different),
        one column per environment, plus ``drifted_in``: the environments that disagree.
    """
    if reference not in configs:
        raise ValueError(f"reference environment {reference!r} is not among {sorted(configs)}.")
    keys = sorted({key for settings in configs.values() for key in settings})
    missing = "<missing>"
    rows = {}
    for key in keys:
        values = {env: configs[env].get(key, missing) for env in configs}
        drifted = [env for env, value in values.items() if value != values[reference]]
        if drifted:
            rows[key] = {**values, "drifted_in": ", ".join(drifted)}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[*configs, "drifted_in"])


@dataclass(frozen=True)
class Action:
    """One step of a plan: ``kind`` is create, update or delete."""

    kind: str
    address: str
    before: Mapping[str, object] | None
    after: Mapping[str, object] | None

    def __str__(self) -> str:
        symbol = {"create": "+", "update": "~", "delete": "-"}[self.kind]
        if self.kind == "update":
            changed = sorted(k for k in {**self.before, **self.after}
                             if self.before.get(k) != self.after.get(k))
            return f"{symbol} {self.address} ({', '.join(changed)})"
        return f"{symbol} {self.address}"


def plan(desired: Resources, state: Resources) -> tuple[Action, ...]:
    """The actions that turn ``state`` into ``desired``, sorted by address.

    Resources only in ``desired`` are created, those only in ``state`` deleted, and those whose
    attributes differ updated. An empty plan means the infrastructure already matches the code.
    """
    actions = []
    for address in sorted({*desired, *state}):
        before, after = state.get(address), desired.get(address)
        if before is None:
            actions.append(Action("create", address, None, dict(after)))
        elif after is None:
            actions.append(Action("delete", address, dict(before), None))
        elif dict(before) != dict(after):
            actions.append(Action("update", address, dict(before), dict(after)))
    return tuple(actions)


def apply(actions: tuple[Action, ...], state: Resources) -> dict[str, dict[str, object]]:
    """Carry out ``actions`` on ``state`` and return the new state (the input is not modified).

    Raises
    ------
    ValueError
        If the plan is stale: it creates something that exists, or changes something that does
        not match what the plan saw (someone changed the infrastructure since ``plan``).
    """
    new_state = {address: dict(attributes) for address, attributes in state.items()}
    for action in actions:
        current = new_state.get(action.address)
        expected = action.before
        if (current is None) != (expected is None) or (current is not None and
                                                       current != dict(expected)):
            raise ValueError(f"stale plan: {action.address} changed since it was planned; "
                             "run plan again.")
        if action.kind == "delete":
            del new_state[action.address]
        else:
            new_state[action.address] = dict(action.after)
    return new_state
