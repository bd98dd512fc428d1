"""Release batches: why shipping small changes often is safer (lesson 01).

Suppose each change independently carries a bug with probability ``p_bug``, and a fixed amount of
work, ``n_changes`` changes, is released in batches of ``batch_size``. A batch fails when any of
its changes is buggy, which happens with probability ``1 - (1 - p_bug) ** batch_size``. Bigger
batches mean *fewer* releases, and so (for the same work) fewer failed releases; but every failure
costs more:

- it is rolled back whole, so its good changes are held back with the bug;
- whoever debugs it has ``batch_size`` suspects;
- finding the culprit by bisection (``git bisect``: run the pipeline on the first half of the
  batch, then on the half that fails, ...) takes about ``log2(batch_size)`` pipeline runs before
  the good changes can be restored.

:func:`simulate_releases` counts all of these; the ``expected_*`` functions give the theory the
simulation is checked against (``tests/test_batches.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


def _check_probability(p_bug: float) -> None:
    if not 0.0 <= p_bug <= 1.0:
        raise ValueError(f"p_bug is a probability and must lie in [0, 1], got {p_bug}.")


def _check_batch_size(batch_size: int) -> None:
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of changes >= 1, got {batch_size}.")


def _check_work(n_changes: int, batch_size: int) -> int:
    if int(n_changes) != n_changes or n_changes < batch_size:
        raise ValueError(f"n_changes ({n_changes}) must be a whole number of changes, at least "
                         f"batch_size ({batch_size}).")
    return int(n_changes) // int(batch_size)


def batch_failure_probability(p_bug: float, batch_size: int) -> float:
    """Probability that a batch of ``batch_size`` independent changes contains a bug."""
    _check_probability(p_bug)
    _check_batch_size(batch_size)
    return 1.0 - (1.0 - p_bug) ** batch_size


def bisection_runs(first_bug: np.ndarray, batch_size: int) -> np.ndarray:
    """Pipeline runs a bisection needs to find the first buggy change of each failed batch.

    The suspects are positions ``0 .. batch_size - 1``; each run tests the changes up to the
    middle suspect and keeps the half that holds the first bug, until one suspect is left.

    Parameters
    ----------
    first_bug
        Position of the first buggy change in each failed batch.
    batch_size
        Changes per batch.
    """
    _check_batch_size(batch_size)
    first_bug = np.asarray(first_bug, dtype=int)
    low, high = np.zeros_like(first_bug), np.full_like(first_bug, batch_size - 1)
    runs = np.zeros_like(first_bug)
    while (open_ := low < high).any():
        middle = (low + high) // 2
        fails = first_bug <= middle
        runs += open_
        high = np.where(open_ & fails, middle, high)
        low = np.where(open_ & ~fails, middle + 1, low)
    return runs


@dataclass(frozen=True)
class ReleaseSimulation:
    """What happened when ``n_releases * batch_size`` changes were shipped in batches.

    Attributes
    ----------
    failed_releases
        Releases that contained at least one bug (and were rolled back).
    n_bugs
        Buggy changes shipped.
    held_back
        Good changes rolled back because they shared a release with a bug.
    bisection_runs
        Pipeline runs, over every failed release, to find its first buggy change by bisection.
    """

    batch_size: int
    p_bug: float
    n_releases: int
    failed_releases: int
    n_bugs: int
    held_back: int
    bisection_runs: int

    @property
    def n_changes(self) -> int:
        """Changes shipped."""
        return self.n_releases * self.batch_size

    @property
    def failure_rate(self) -> float:
        """Share of releases that failed."""
        return self.failed_releases / self.n_releases

    @property
    def held_back_per_failure(self) -> float:
        """Good changes held back by each failed release (NaN when none failed)."""
        return self.held_back / self.failed_releases if self.failed_releases else math.nan

    @property
    def held_back_per_bug(self) -> float:
        """Good changes held back per buggy change (0 when there were no bugs)."""
        return self.held_back / self.n_bugs if self.n_bugs else 0.0

    @property
    def bisection_runs_per_failure(self) -> float:
        """Pipeline runs to find the culprit of a failed release (NaN when none failed)."""
        return self.bisection_runs / self.failed_releases if self.failed_releases else math.nan


def simulate_releases(n_changes: int, batch_size: int, p_bug: float,
                      rng: np.random.Generator) -> ReleaseSimulation:
    """Ship ``n_changes`` changes in batches and count what goes wrong.

    Parameters
    ----------
    n_changes
        How many changes to ship; a multiple of ``batch_size`` keeps batches equal (a remainder
        is not shipped).
    batch_size
        Changes per release.
    p_bug
        Probability that one change is buggy.
    rng
        The random generator.
    """
    _check_probability(p_bug)
    _check_batch_size(batch_size)
    n_releases = _check_work(n_changes, batch_size)
    buggy = rng.random((n_releases, batch_size)) < p_bug
    bugs_per_release = buggy.sum(axis=1)
    failed = bugs_per_release > 0
    first_bug = np.argmax(buggy[failed], axis=1)
    return ReleaseSimulation(
        batch_size=batch_size, p_bug=p_bug, n_releases=n_releases,
        failed_releases=int(failed.sum()), n_bugs=int(bugs_per_release.sum()),
        held_back=int((batch_size - bugs_per_release[failed]).sum()),
        bisection_runs=int(bisection_runs(first_bug, batch_size).sum()),
    )


def expected_failed_releases(n_changes: int, p_bug: float, batch_size: int) -> float:
    """Theory for :attr:`ReleaseSimulation.failed_releases`: releases times their failure risk."""
    probability = batch_failure_probability(p_bug, batch_size)
    return _check_work(n_changes, batch_size) * probability


def expected_held_back_per_failure(p_bug: float, batch_size: int) -> float:
    """Theory for :attr:`ReleaseSimulation.held_back_per_failure`.

    A batch of ``k`` holds ``k - bugs`` good changes; averaged over the failed batches only,
    ``(k (1 - p) - k (1 - p) ** k) / (1 - (1 - p) ** k)``. NaN when a batch can never fail.
    """
    failure = batch_failure_probability(p_bug, batch_size)
    if failure == 0.0:
        return math.nan
    k, good = batch_size, 1.0 - p_bug
    return (k * good - k * good ** k) / failure


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


def expected_bisection_runs(p_bug: float, batch_size: int) -> float:
    """Theory for :attr:`ReleaseSimulation.bisection_runs_per_failure`.

    The first bug of a failed batch sits at position ``j`` with probability
    ``p (1 - p) ** j / (1 - (1 - p) ** k)``; weight each position's bisection length
    (:func:`bisection_runs`) by it. Between ``floor(log2 k)`` and ``ceil(log2 k)``.
    """
    failure = batch_failure_probability(p_bug, batch_size)
    if failure == 0.0:
        return math.nan
    positions = np.arange(batch_size)
    weights = p_bug * (1.0 - p_bug) ** positions / failure
    return float(np.sum(weights * bisection_runs(positions, batch_size)))


def compare_batch_sizes(batch_sizes: list[int], p_bug: float, n_changes: int,
                        rng: np.random.Generator) -> pd.DataFrame:
    """The same ``n_changes`` shipped at each batch size: simulation beside theory.

    Returns
    -------
    pandas.DataFrame
        One row per batch size: ``releases``; ``failed_releases`` (and ``_theory``); the cost of
        each failure: ``held_back_per_failure`` (good changes rolled back), ``suspects`` (changes
        to search), ``bisection_runs`` (pipeline runs to find the culprit), each with a
        ``_theory`` column where it is random; ``held_back_total`` (and ``_theory``), good
        changes held back over the whole work; and the per-release ``failure_rate`` (and
        ``_theory``).
    """
    rows = []
    for size in batch_sizes:
        result = simulate_releases(n_changes, size, p_bug, rng)
        failed_theory = expected_failed_releases(n_changes, p_bug, size)
        per_failure = expected_held_back_per_failure(p_bug, size)
        rows.append({
            "batch_size": size, "releases": result.n_releases,
            "failed_releases": result.failed_releases, "failed_releases_theory": failed_theory,
            "held_back_per_failure": result.held_back_per_failure,
            "held_back_per_failure_theory": per_failure,
            "suspects": size,
            "bisection_runs": result.bisection_runs_per_failure,
            "bisection_runs_theory": expected_bisection_runs(p_bug, size),
            "held_back_total": result.held_back,
            "held_back_total_theory": failed_theory * per_failure if failed_theory else 0.0,
            "failure_rate": result.failure_rate,
            "failure_rate_theory": batch_failure_probability(p_bug, size),
        })
    return pd.DataFrame(rows).set_index("batch_size")
