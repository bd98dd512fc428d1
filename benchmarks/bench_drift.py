"""Drift report speed: 50 numeric columns x 100,000 rows (reference and current each).

Times ``monitoring.drift_report`` (KS per column, Benjamini-Hochberg across columns, verdict) with
its default threads and with one thread, and, as the in-run baseline, a plain loop of
``scipy.stats.ks_2samp`` over the same columns. Prints the median of a few repeats and the ratios
(baseline seconds / report seconds: above 1 means the report is faster), and checks on the way
that both give the same statistics.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pandas as pd
from scipy import stats

from labsupport import monitoring

N_ROWS = 100_000
N_COLUMNS = 50
REPEATS = 3


def _median_seconds(function, repeats: int = REPEATS) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    """Time the report and the scipy loop on the same data; print seconds and ratios."""
    rng = np.random.default_rng(0)
    names = [f"c{i:02d}" for i in range(N_COLUMNS)]
    reference = pd.DataFrame(rng.normal(size=(N_ROWS, N_COLUMNS)), columns=names)
    shifts = np.where(np.arange(N_COLUMNS) < 5, 0.05, 0.0)  # five columns really drift
    current = pd.DataFrame(rng.normal(shifts, 1.0, size=(N_ROWS, N_COLUMNS)), columns=names)

    baseline, expected = _median_seconds(
        lambda: [stats.ks_2samp(reference[c], current[c]) for c in names])
    threaded, report = _median_seconds(lambda: monitoring.drift_report(reference, current))
    single, _ = _median_seconds(lambda: monitoring.drift_report(reference, current, n_jobs=1))

    got = np.array([c.statistic for c in report.columns])
    assert np.allclose(got, [r.statistic for r in expected], rtol=0, atol=1e-12)
    print(f"data: {N_COLUMNS} columns x {N_ROWS:,} rows (reference and current); "
          f"{os.cpu_count()} CPU(s); median of {REPEATS}")
    print(f"scipy ks_2samp loop (baseline)    {baseline:6.3f} s")
    print(f"drift_report, default threads     {threaded:6.3f} s   "
          f"{baseline / threaded:4.1f}x faster than the baseline")
    print(f"drift_report, one thread          {single:6.3f} s   "
          f"{baseline / single:4.1f}x faster than the baseline")
    print(f"verdict: {report}")


if __name__ == "__main__":
    main()
