"""Peeking simulation speed: 10,000 A/A experiments x 10 interim looks (lesson 07).

The simulation of :func:`labsupport.abtest.peeking_simulation` tests every experiment at every
look with array arithmetic. The in-run baseline is the loop a student would write first: one call
of ``statsmodels.stats.proportion.proportions_ztest`` per experiment and look, on the *same*
random outcomes. The benchmark checks that both give the same z statistics and the same
rejections, then prints the ratio (loop seconds / vectorised seconds). Target: at least 50x.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from labsupport import abtest

N_EXPERIMENTS = 10_000
LOOKS = 10
N_PER_LOOK = 500
ALPHA = 0.05
REPEATS = 5


def _vectorised(data: abtest.Looks) -> np.ndarray:
    """Rejected at any look, per experiment: what peeking_simulation computes after drawing."""
    z = np.abs(np.nan_to_num(data.z(), nan=0.0))
    return (z >= stats.norm.isf(ALPHA / 2)).any(axis=1)


def _statsmodels_loop(data: abtest.Looks) -> tuple[np.ndarray, np.ndarray]:
    """The same decisions, one proportions_ztest call per experiment and look."""
    z = np.empty(data.successes_control.shape)
    rejected = np.zeros(data.successes_control.shape[0], dtype=bool)
    for i in range(z.shape[0]):
        for k in range(z.shape[1]):
            n = int(data.n_per_group[k])
            statistic, p_value = proportions_ztest(
                [data.successes_treatment[i, k], data.successes_control[i, k]], [n, n])
            z[i, k] = statistic
            rejected[i] |= p_value < ALPHA
    return z, rejected


def main() -> None:
    """Time both on the same outcomes, check they agree, print seconds and the ratio."""
    data = abtest.simulate_looks(np.random.default_rng(0), n_experiments=N_EXPERIMENTS,
                                 looks=LOOKS, n_per_look=N_PER_LOOK, rate_control=0.1,
                                 rate_treatment=0.1)
    started = time.perf_counter()
    loop_z, loop_rejected = _statsmodels_loop(data)
    baseline = time.perf_counter() - started
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        rejected = _vectorised(data)
        times.append(time.perf_counter() - started)
    vectorised = statistics.median(times)
    assert np.allclose(data.z(), loop_z, rtol=1e-9, atol=1e-12), "z statistics differ"
    assert np.array_equal(rejected, loop_rejected), "rejections differ"
    started = time.perf_counter()
    full = abtest.peeking_simulation(np.random.default_rng(0), looks=LOOKS,
                                     n_experiments=N_EXPERIMENTS, n_per_look=N_PER_LOOK)
    with_drawing = time.perf_counter() - started
    assert full.rejection_rate == rejected.mean(), "peeking_simulation disagrees with its parts"
    ratio = baseline / vectorised
    print(f"data: {N_EXPERIMENTS:,} A/A experiments x {LOOKS} looks x {N_PER_LOOK} users per "
          f"group per look; false positive rate {rejected.mean():.4f} (both methods)")
    print(f"statsmodels proportions_ztest loop (baseline) {baseline:8.3f} s")
    print(f"vectorised tests of every look (median of {REPEATS}) {vectorised:8.4f} s")
    print(f"peeking_simulation including the random draws {with_drawing:8.4f} s "
          f"({baseline / with_drawing:.0f}x the loop)")
    print(f"abtest: peeking simulation {ratio:.0f} x the statsmodels loop")


if __name__ == "__main__":
    main()
