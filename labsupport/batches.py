"""Release batches: why shipping small changes often is safer (lesson 01).

Suppose each change independently carries a bug with probability ``p_bug``, and changes are
released in batches of ``batch_size``. A batch fails when any of its changes is buggy, which
happens with probability ``1 - (1 - p_bug) ** batch_size``; a failed batch is rolled back whole,
holding back its good changes too, and whoever debugs it must search among all its changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def _check_probability(p_bug: float) -> None:
    if not 0.0 <= p_bug <= 1.0:
        raise ValueError(f"p_bug is a probability and must lie in [0, 1], got {p_bug}.")


def _check_batch_size(batch_size: int) -> None:
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of changes >= 1, got {batch_size}.")


def batch_failure_probability(p_bug: float, batch_size: int) -> float:
    """Probability that a batch of ``batch_size`` independent changes contains a bug."""
    _check_probability(p_bug)
    _check_batch_size(batch_size)
    return 1.0 - (1.0 - p_bug) ** batch_size


@dataclass(frozen=True)
class ReleaseSimulation:
    """What happened when ``n_changes`` changes were shipped in batches.

    Attributes
    ----------
    failure_rate
        Share of releases that contained at least one bug.
    held_back_per_bug
        Good changes rolled back, per buggy change: the collateral cost of a big batch.
    """

    batch_size: int
    p_bug: float
    n_releases: int
    failed_releases: int
    failure_rate: float
    held_back_per_bug: float


def simulate_releases(n_changes: int, batch_size: int, p_bug: float,
                      rng: np.random.Generator) -> ReleaseSimulation:
    """Ship ``n_changes`` changes in batches and count what goes wrong.

    Parameters
    ----------
    n_changes
        How many changes to ship; a multiple of ``batch_size`` keeps batches equal.
    batch_size
        Changes per release.
    p_bug
        Probability that one change is buggy.
    rng
        The random generator.
    """
    _check_probability(p_bug)
    _check_batch_size(batch_size)
    n_releases = n_changes // batch_size
    if n_releases < 1:
        raise ValueError(f"n_changes ({n_changes}) must be at least batch_size ({batch_size}).")
    buggy = rng.random((n_releases, batch_size)) < p_bug
    bugs_per_release = buggy.sum(axis=1)
    failed = bugs_per_release > 0
    n_bugs = int(bugs_per_release.sum())
    held_back = int((batch_size - bugs_per_release[failed]).sum())
    return ReleaseSimulation(
        batch_size=batch_size, p_bug=p_bug, n_releases=n_releases,
        failed_releases=int(failed.sum()), failure_rate=float(failed.mean()),
        held_back_per_bug=held_back / n_bugs if n_bugs else 0.0,
    )


def expected_held_back_per_bug(p_bug: float, batch_size: int) -> float:
    """Theory for :attr:`ReleaseSimulation.held_back_per_bug`.

    Good changes in failed batches average ``k (1 - p) - k (1 - p) ** k`` per batch of ``k`` and
    bugs average ``k p``; their ratio is ``((1 - p) - (1 - p) ** k) / p``.
    """
    _check_probability(p_bug)
    _check_batch_size(batch_size)
    if p_bug == 0.0:
        return 0.0
    return ((1.0 - p_bug) - (1.0 - p_bug) ** batch_size) / p_bug


def compare_batch_sizes(batch_sizes: list[int], p_bug: float, n_changes: int,
                        rng: np.random.Generator) -> pd.DataFrame:
    """Simulate each batch size and put the theory beside it, one row per batch size."""
    rows = []
    for size in batch_sizes:
        result = simulate_releases(n_changes, size, p_bug, rng)
        rows.append({"batch_size": size, "releases": result.n_releases,
                     "failure_rate": result.failure_rate,
                     "theory": batch_failure_probability(p_bug, size),
                     "held_back_per_bug": result.held_back_per_bug,
                     "held_back_theory": expected_held_back_per_bug(p_bug, size)})
    return pd.DataFrame(rows).set_index("batch_size")
