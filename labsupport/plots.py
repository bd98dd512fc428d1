"""Figures of the lessons: the only place for figure styling.

Every function takes a matplotlib ``Axes``, draws on it and returns it, so a notebook decides the
layout (``fig, axes = plt.subplots(...)``) and these functions decide the look. No function
changes global state (no ``rcParams``, no ``plt.show``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

REFERENCE_COLOR = "#4c72b0"
CURRENT_COLOR = "#dd8452"
ALERT_COLOR = "#c44e52"


def reference_vs_current(ax: Axes, reference: Sequence[float], current: Sequence[float], *,
                         bins: int = 40, title: str = "") -> Axes:
    """Overlaid density histograms of one column (lesson 02), on bins shared by both samples."""
    reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    low = min(reference.min(), current.min())
    high = max(reference.max(), current.max())
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    for values, color, name in ((reference, REFERENCE_COLOR, "reference"),
                                (current, CURRENT_COLOR, "current")):
        density = np.histogram(values, bins=edges, density=True)[0]
        ax.stairs(density, edges, fill=True, alpha=0.55, color=color,
                  label=f"{name} (n={values.size})")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


def metric_curve(ax: Axes, x: Sequence[float], values: Sequence[float], *, label: str,
                 xlabel: str = "drift strength", ylabel: str = "accuracy",
                 floor: float | None = None) -> Axes:
    """One line of a metric against a setting (e.g. accuracy against drift strength, lesson 02).

    Call it once per line on the same ``Axes``; ``floor`` draws a dashed acceptance line.
    """
    ax.plot(x, values, marker="o", label=label)
    if floor is not None and not any(line.get_label() == "minimum acceptable"
                                     for line in ax.get_lines()):
        ax.axhline(floor, color=ALERT_COLOR, linestyle="--", linewidth=1,
                   label="minimum acceptable")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def monitor_timeline(ax: Axes, log: pd.DataFrame,
                     true_strength: Sequence[float] | None = None) -> Axes:
    """A drift monitor's log over time (lesson 02): accuracy, drift share and its decisions.

    ``log`` has the columns of :meth:`labsupport.monitoring.DriftMonitor.log`. Retraining is
    marked by a vertical line, alerts by a triangle; ``true_strength`` (what the simulation did)
    is drawn as a grey step line for comparison.
    """
    batches = log["batch"].to_numpy()
    ax.plot(batches, log["accuracy"], marker="o", color=REFERENCE_COLOR, label="accuracy")
    ax.bar(batches, log["drift_share"], width=0.6, alpha=0.35, color=CURRENT_COLOR,
           label="share of drifted features")
    if true_strength is not None:
        ax.step(batches, np.asarray(true_strength, dtype=float), where="mid", color="grey",
                linestyle=":", label="true drift strength")
    for batch in log.loc[log["action"] == "retrain", "batch"]:
        ax.axvline(batch, color=ALERT_COLOR, linewidth=1.5)
    alerts = log[log["action"] == "alert"]
    ax.plot(alerts["batch"], np.full(len(alerts), 1.04), linestyle="none", marker="v",
            color=ALERT_COLOR, label="alert (drift, model kept)")
    ax.plot([], [], color=ALERT_COLOR, linewidth=1.5, label="retrain")
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("batch")
    ax.set_xticks(batches)
    ax.legend(fontsize="small", loc="lower left")
    return ax


def p_value_bars(ax: Axes, report_frame: pd.DataFrame, alpha: float) -> Axes:
    """Raw and adjusted p-values per column of a drift report (lesson 02), with ``alpha``."""
    positions = np.arange(len(report_frame))
    ax.bar(positions - 0.2, report_frame["p_value"], width=0.4, color=REFERENCE_COLOR,
           label="p-value")
    ax.bar(positions + 0.2, report_frame["p_adjusted"], width=0.4, color=CURRENT_COLOR,
           label="adjusted")
    ax.axhline(alpha, color=ALERT_COLOR, linestyle="--", linewidth=1, label=f"alpha = {alpha}")
    ax.set_xticks(positions)
    ax.set_xticklabels(report_frame.index, rotation=90)
    ax.set_ylabel("p-value")
    ax.legend(fontsize="small")
    return ax


def release_risk(ax: Axes, comparison: pd.DataFrame) -> Axes:
    """Chance that a release batch fails, against its size (lesson 01).

    ``comparison`` is :func:`labsupport.batches.compare_batch_sizes`'s table: the theory is drawn
    as a line, the simulated failure rates as points on it.
    """
    sizes = comparison.index.to_numpy()
    ax.plot(sizes, comparison["theory"], color=REFERENCE_COLOR, label="theory: 1 - (1 - p)^k")
    ax.scatter(sizes, comparison["failure_rate"], color=CURRENT_COLOR, zorder=3,
               label="simulated")
    ax.set_xlabel("changes per release (k)")
    ax.set_ylabel("share of releases that fail")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


# --- lesson 05: GitHub Actions ------------------------------------------------------------------


def job_graph(ax: Axes, stages: Sequence[Sequence[str]],
              needs: dict[str, Sequence[str]], *, title: str = "") -> Axes:
    """A workflow's jobs as boxes in columns of jobs that may run together, arrows for ``needs``.

    ``stages`` is :func:`labsupport.workflows.job_order`'s list (stage 0 on the left) and
    ``needs`` :func:`labsupport.workflows.needs`'s mapping; an arrow runs from each needed job to
    the job that waits for it (lesson 05).
    """
    where = {}
    for column, stage in enumerate(stages):
        for row, job in enumerate(stage):
            where[job] = (column, (len(stage) - 1) / 2 - row)
    for job, required in needs.items():
        for other in required:
            ax.annotate("", xy=where[job], xytext=where[other],
                        arrowprops={"arrowstyle": "-|>", "color": "0.35", "shrinkA": 34,
                                    "shrinkB": 34, "linewidth": 1.2})
    for job, (x, y) in where.items():
        ax.text(x, y, job, ha="center", va="center", fontsize="small",
                bbox={"boxstyle": "round,pad=0.5", "facecolor": "#dce6f2",
                      "edgecolor": REFERENCE_COLOR})
    tallest = max(len(stage) for stage in stages)
    ax.set_xlim(-0.6, len(stages) - 0.4)
    ax.set_ylim(-tallest / 2 - 0.1, tallest / 2 + 0.1)
    ax.set_axis_off()
    ax.set_title(title)
    return ax
