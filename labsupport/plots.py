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
#: An alert that asks a person to look (lesson 08's monitor), as opposed to a decision.
WARNING_COLOR = "#8172b3"


def reference_vs_current(ax: Axes, reference: Sequence[float], current: Sequence[float], *,
                         bins: int = 40, title: str = "") -> Axes:
    """Overlaid density histograms of one column (lesson 02), on bins shared by both samples."""
    reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    edges = _shared_edges(reference, current, bins)
    for values, color, name in ((reference, REFERENCE_COLOR, "reference"),
                                (current, CURRENT_COLOR, "current")):
        density = np.histogram(values, bins=edges, density=True)[0]
        ax.stairs(density, edges, fill=True, alpha=0.55, color=color,
                  label=f"{name} (n={values.size})")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


def _shared_edges(reference: np.ndarray, current: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges spanning both samples (one bin of width 1 for a constant column)."""
    low = min(reference.min(), current.min())
    high = max(reference.max(), current.max())
    return np.linspace(low, high if high > low else low + 1.0, bins + 1)


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
    """Raw and adjusted p-values per column of a drift report (lesson 02), with ``alpha``.

    On a log scale, so that the tiny p-values of the columns that really drifted show as long
    bars (a linear scale squashes them to nothing); the dashed line is ``alpha``.
    """
    positions = np.arange(len(report_frame))
    floor = np.finfo(float).tiny
    raw = np.maximum(report_frame["p_value"].to_numpy(dtype=float), floor)
    adjusted = np.maximum(report_frame["p_adjusted"].to_numpy(dtype=float), floor)
    ax.bar(positions - 0.2, raw, width=0.4, color=REFERENCE_COLOR, label="p-value")
    ax.bar(positions + 0.2, adjusted, width=0.4, color=CURRENT_COLOR, label="adjusted")
    ax.axhline(alpha, color=ALERT_COLOR, linestyle="--", linewidth=1, label=f"alpha = {alpha}")
    ax.set_yscale("log")
    ax.set_ylim(min(raw.min(), adjusted.min(), alpha) / 3, 1.5)
    ax.set_xticks(positions)
    ax.set_xticklabels(report_frame.index, rotation=90)
    ax.set_ylabel("p-value (log scale)")
    ax.legend(fontsize="small")
    return ax


def ecdf_gap(ax: Axes, reference: Sequence[float], current: Sequence[float]) -> Axes:
    """The two empirical CDFs of a column and their largest vertical gap, the KS statistic.

    Lesson 02 (Kolmogorov-Smirnov). The gap is marked by a vertical segment at the value where
    it occurs, labelled with its size.
    """
    reference = np.sort(np.asarray(reference, dtype=float))
    current = np.sort(np.asarray(current, dtype=float))
    points = np.concatenate([reference, current])
    cdf_reference = np.searchsorted(reference, points, side="right") / reference.size
    cdf_current = np.searchsorted(current, points, side="right") / current.size
    widest = int(np.argmax(np.abs(cdf_reference - cdf_current)))
    for values, color, name in ((reference, REFERENCE_COLOR, "reference"),
                                (current, CURRENT_COLOR, "current")):
        ax.step(values, np.arange(1, values.size + 1) / values.size, where="post", color=color,
                label=f"{name} (n={values.size})")
    gap = abs(cdf_reference[widest] - cdf_current[widest])
    ax.vlines(points[widest], min(cdf_reference[widest], cdf_current[widest]),
              max(cdf_reference[widest], cdf_current[widest]), color=ALERT_COLOR, linewidth=2.5,
              label=f"largest gap = {gap:.3f}")
    ax.set_xlabel("value")
    ax.set_ylabel("share of rows at or below")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    return ax


def psi_bins(ax: Axes, reference_shares: Sequence[float], current_shares: Sequence[float]) -> Axes:
    """Reference and current share of each PSI bin, with each bin's term of the sum (lesson 02).

    Bars are the shares; the numbers above each pair are that bin's ``(c - r) ln(c / r)``.
    Shares are drawn as given: pass them after the empty-bin floor if you want to see it.
    """
    r = np.asarray(reference_shares, dtype=float)
    c = np.asarray(current_shares, dtype=float)
    positions = np.arange(r.size)
    ax.bar(positions - 0.2, r, width=0.4, color=REFERENCE_COLOR, label="reference share")
    ax.bar(positions + 0.2, c, width=0.4, color=CURRENT_COLOR, label="current share")
    terms = (c - r) * np.log(c / r)
    for position, height, term in zip(positions, np.maximum(r, c), terms):
        ax.annotate(f"{term:.3f}", (position, height), textcoords="offset points", xytext=(0, 2),
                    ha="center", fontsize="x-small")
    ax.set_xticks(positions)
    ax.set_xticklabels([str(b + 1) for b in positions])
    ax.set_xlabel("bin (reference quantiles)")
    ax.set_ylabel("share of rows")
    ax.set_title(f"PSI = sum of the terms = {terms.sum():.3f}")
    ax.legend(fontsize="small")
    return ax


def release_risk(ax: Axes, comparison: pd.DataFrame, column: str = "failed_releases", *,
                 ylabel: str | None = None) -> Axes:
    """One column of :func:`labsupport.batches.compare_batch_sizes` against the batch size.

    Lesson 01. The theory (``<column>_theory``) is drawn as a line, the simulation as points on
    it; a column without a theory (``suspects``) is drawn as a line only.
    """
    sizes = comparison.index.to_numpy()
    theory = f"{column}_theory"
    if theory in comparison.columns:
        ax.plot(sizes, comparison[theory], color=REFERENCE_COLOR, label="theory")
        ax.scatter(sizes, comparison[column], color=CURRENT_COLOR, zorder=3, s=14,
                   label="simulated")
    else:
        ax.plot(sizes, comparison[column], color=REFERENCE_COLOR, label=column)
    ax.set_xlabel("changes per release (k)")
    ax.set_ylabel(ylabel or column.replace("_", " "))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


# === lesson 07: A/B-test statistics (labsupport.abtest, labsupport.experiments) ==================

CONTROL_COLOR = REFERENCE_COLOR
TREATMENT_COLOR = CURRENT_COLOR


def p_value_histogram(ax: Axes, p_values: Sequence[float], *, alpha: float = 0.05,
                      bins: int = 20, title: str = "") -> Axes:
    """Histogram of p-values on [0, 1] with the share below ``alpha`` marked (lesson 07)."""
    p_values = np.asarray(p_values, dtype=float)
    ax.hist(p_values, bins=np.linspace(0, 1, bins + 1), color=REFERENCE_COLOR, alpha=0.8)
    ax.axvline(alpha, color=ALERT_COLOR, linestyle="--",
               label=f"alpha = {alpha:g}: {np.mean(p_values < alpha):.1%} below")
    ax.set_xlabel("p-value")
    ax.set_ylabel("experiments")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


def false_positive_by_looks(ax: Axes, looks: Sequence[int], rates: dict[str, Sequence[float]],
                            errors: dict[str, Sequence[float]], *, alpha: float = 0.05,
                            reference: dict[int, float] | None = None) -> Axes:
    """Simulated false positive rate against the number of looks, one line per method (lesson 07).

    ``errors`` are standard errors (drawn as 2-sigma bars); ``reference`` optional published
    values drawn as crosses (Armitage's figures).
    """
    for name, values in rates.items():
        ax.errorbar(looks, values, yerr=2 * np.asarray(errors[name]), marker="o", capsize=3,
                    label=name)
    if reference:
        ax.scatter(list(reference), list(reference.values()), marker="x", color="black",
                   zorder=3, label="Armitage et al. (1969)")
    ax.axhline(alpha, color=ALERT_COLOR, linestyle="--", label=f"alpha = {alpha:g}")
    ax.set_xlabel("looks at the data")
    ax.set_ylabel("false positive rate (A/A)")
    ax.legend(fontsize="small")
    return ax


def p_value_path(ax: Axes, users_seen: Sequence[int], p_values: Sequence[float], *,
                 alpha: float = 0.05, label: str = "", color: str | None = None) -> Axes:
    """The p-value an analyst who peeks sees as users arrive, on a log scale (lesson 07)."""
    ax.plot(users_seen, p_values, color=color or REFERENCE_COLOR, label=label or None)
    ax.axhline(alpha, color=ALERT_COLOR, linestyle="--")
    ax.set_yscale("log")
    ax.set_ylim(max(min(np.min(p_values), alpha) / 3, 1e-12), 1.05)
    ax.set_xlabel("users seen")
    ax.set_ylabel("p-value so far")
    if label:
        ax.legend(fontsize="small")
    return ax


def winners_curse(ax: Axes, powers: Sequence[float], exaggerations: Sequence[float]) -> Axes:
    """How much significant wins overstate the true effect, against power (lesson 07)."""
    ax.plot(powers, exaggerations, marker="o", color=CURRENT_COLOR)
    ax.axhline(1.0, color="grey", linestyle=":", label="no exaggeration")
    ax.set_xlabel("power of the experiment")
    ax.set_ylabel("mean significant estimate / true effect")
    ax.legend(fontsize="small")
    return ax


def novelty(ax: Axes, days: Sequence[float], daily_lift: Sequence[float],
            cumulative_lift: Sequence[float], true_lift: Sequence[float],
            long_run_lift: float) -> Axes:
    """Daily and cumulative estimated lift against the true one (novelty effect, lesson 07)."""
    ax.plot(days, daily_lift, marker=".", linestyle="none", color="grey",
            label="estimate, that day")
    ax.plot(days, cumulative_lift, color=CURRENT_COLOR, label="estimate, all days so far")
    ax.plot(days, true_lift, color=REFERENCE_COLOR, linestyle="--", label="true lift that day")
    ax.axhline(long_run_lift, color="black", linestyle=":", label="long-run lift")
    ax.set_xlabel("day of the experiment")
    ax.set_ylabel("relative lift")
    ax.legend(fontsize="small")
    return ax

# === end of lesson 07 ===========================================================================


# ------------------------------------------------------------------------------------------
# Lesson 06 — deployment strategies (traffic share, metrics over a rollout, rollback risk)
# ------------------------------------------------------------------------------------------

def traffic_share(ax: Axes, timeline, *, label: str | None = None) -> Axes:
    """The candidate's share of users at each minute of a rollout (lesson 06).

    ``timeline`` is a :class:`labsupport.rollout.Timeline`; a rollback shows as the step back
    to 0. Call once per timeline on the same ``Axes`` to compare strategies.
    """
    minutes, percent = _share_steps(timeline)
    ax.step(minutes, percent, where="post",
            label=label or f"{timeline.strategy}: {timeline.outcome}")
    ax.set_xlabel("minutes since the rollout started")
    ax.set_ylabel(f"users on {timeline.candidate} (%)")
    ax.set_ylim(-3, 103)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def rollout_metric(ax: Axes, timeline, metric: str = "accuracy", *,
                   limit: float | None = None) -> Axes:
    """One metric of each version over a rollout's live steps (lesson 06), with its limit."""
    for version, color in ((timeline.baseline, REFERENCE_COLOR),
                           (timeline.candidate, CURRENT_COLOR)):
        minutes, values = _live_points(timeline, version, metric)
        if minutes.size:
            ax.plot(minutes, values, marker="o", color=color, label=version)
    if limit is not None:
        ax.axhline(limit, color=ALERT_COLOR, linestyle="--", linewidth=1, label="limit")
    ax.set_xlabel("minutes since the rollout started")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def rollback_curve(ax: Axes, error_rates: Sequence[float], theory: Sequence[float],
                   simulated: Sequence[float] | None = None, *,
                   threshold: float | None = None) -> Axes:
    """Probability that a canary rolls back against its true error rate (lesson 06)."""
    ax.plot(error_rates, theory, color=REFERENCE_COLOR, label="binomial")
    if simulated is not None:
        ax.scatter(error_rates, simulated, color=CURRENT_COLOR, zorder=3, label="simulated")
    if threshold is not None:
        ax.axvline(threshold, color=ALERT_COLOR, linestyle="--", linewidth=1,
                   label="error-rate limit")
    ax.set_xlabel("candidate's true error rate")
    ax.set_ylabel("probability of a rollback")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax


# --- lesson 04: code quality ------------------------------------------------------------------


def lint_score_steps(ax: Axes, steps: Sequence[str], scores: Sequence[float], *,
                     label: str = "", passing: float | None = None) -> Axes:
    """A pylint score after each fix (lesson 04): one point per step, ``steps`` as tick labels.

    Call it once per order of fixes on the same ``Axes``; ``passing`` draws a dashed line at a
    CI gate's ``--fail-under`` threshold. The score axis always spans 0 to 10.
    """
    if len(steps) != len(scores):
        raise ValueError(f"need one score per step, got {len(steps)} steps and "
                         f"{len(scores)} scores.")
    positions = np.arange(len(scores))
    ax.plot(positions, scores, marker="o", label=label or None)
    for position, value in zip(positions, scores):
        ax.annotate(f"{value:.2f}", (position, value), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize="x-small")
    if passing is not None and not any(line.get_label() == "CI gate"
                                       for line in ax.get_lines()):
        ax.axhline(passing, color=ALERT_COLOR, linestyle="--", linewidth=1, label="CI gate")
    ax.set_xticks(positions)
    ax.set_xticklabels(steps, rotation=45, ha="right")
    ax.set_ylim(-0.3, 10.8)
    ax.set_ylabel("pylint score (out of 10)")
    ax.grid(True, alpha=0.3)
    if label or passing is not None:
        ax.legend(fontsize="small", loc="lower right")
    return ax
# --- end of lesson 04 -------------------------------------------------------------------------



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


# --- lesson 08: the end-to-end timeline ---------------------------------------------------------


def lifecycle_timeline(axes: Sequence[Axes], history, *, early_hours: float | None = None
                       ) -> Sequence[Axes]:
    """A model's whole life on three stacked ``Axes`` sharing the hour axis (lesson 08).

    ``history`` is a :class:`labsupport.lifecycle.History`. Top: the monitored batches (drift
    share as bars, accuracy as points, the release accuracy the monitor compares with as a
    dashed step). Middle: the share of traffic each version served. Bottom: every decision as
    a mark on its stage's row: refusals, rollbacks and fired retrainings as red crosses, alerts
    (a person should look; nothing changes) as purple triangles, the rest as small dots. The
    first ``early_hours`` (default: up to the first rollout decision), where the CI runs crowd
    together, are drawn again enlarged in an inset of the bottom panel. Returns the three
    ``Axes``.
    """
    if len(axes) != 3:
        raise ValueError(f"lifecycle_timeline draws on three Axes, got {len(axes)}.")
    batches, monitor, decisions = axes
    frame = history.batches
    if not frame.empty:
        middle = frame["hour"] + 12.0
        batches.bar(middle, frame["drift_share"], width=18.0, alpha=0.35, color=CURRENT_COLOR,
                    label="drift share of the readings")
        batches.plot(middle, frame["accuracy"], marker="o", color=REFERENCE_COLOR,
                     label="accuracy once labelled")
        if "release_accuracy" in frame:
            batches.step(frame["hour"], frame["release_accuracy"], where="post",
                         linestyle="--", color=REFERENCE_COLOR, alpha=0.6,
                         label="release accuracy (what the monitor compares with)")
    batches.set_ylim(0, 1.05)
    batches.set_ylabel("batches")
    batches.legend(fontsize="x-small", loc="lower left")
    split = history.traffic
    for version in split.columns.drop("hour"):
        monitor.step(split["hour"], split[version] * 100, where="post", label=version)
    monitor.set_ylabel("traffic (%)")
    monitor.set_ylim(-3, 103)
    monitor.legend(fontsize="x-small", loc="center right", ncol=2)
    events = history.events_frame()
    kinds = list(dict.fromkeys(events["kind"]))
    _decision_marks(decisions, events, kinds, legend=True)
    decisions.set_xlabel("hours since the start")
    decisions.legend(fontsize="x-small", loc="lower right")
    rollouts = events.loc[events["kind"] == "rollout", "hour"]
    later = rollouts[rollouts > 0]
    early = early_hours if early_hours is not None else \
        (float(later.min()) + 1.0 if not later.empty else None)
    if early is not None and early < 0.25 * max(float(events["hour"].max()), early):
        inset = decisions.inset_axes([0.28, 0.04, 0.27, 0.36])   # over the CI rows, empty later
        _decision_marks(inset, events[events["hour"] <= early], kinds, legend=False)
        inset.set_xlim(-0.05 * early, early)
        inset.set_title(f"the first {early:.3g} hours, enlarged", fontsize="x-small")
        inset.tick_params(labelsize="x-small")
        inset.grid(True, alpha=0.3)
        decisions.indicate_inset_zoom(inset, edgecolor="grey")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return axes


def _decision_marks(ax: Axes, events: pd.DataFrame, kinds: Sequence[str], *,
                    legend: bool) -> None:
    """Lesson 08's decisions on one row per stage: bad, alert and the rest, each its own mark."""
    bad = events["action"].isin(["refused", "rollback", "rejected", "retrain"])
    alert = events["action"].isin(["alert", "drift alert"])
    rows = events["kind"].map(list(kinds).index)
    for chosen, style in ((~bad & ~alert, {"marker": "o", "color": REFERENCE_COLOR, "s": 18,
                                           "label": "passed / continued / kept"}),
                          (alert, {"marker": "^", "color": WARNING_COLOR, "s": 40,
                                   "label": "alert: a person looks, nothing changes"}),
                          (bad, {"marker": "X", "color": ALERT_COLOR, "s": 40,
                                 "label": "refused, rolled back or retrain fired"})):
        ax.scatter(events["hour"][chosen], rows[chosen], **{**style, **({} if legend else
                                                                      {"label": None})})
    ax.set_yticks(range(len(kinds)))
    ax.set_yticklabels(kinds, fontsize="small")
    ax.set_ylim(-0.7, len(kinds) - 0.3)


# --- lesson 06: the rollout widget's figure, redrawn in place ---------------------------------
# A widget that builds a new figure at every slider move spends most of its time creating axes,
# ticks and text; these functions draw once and, on later calls with the same Axes, only move
# the data of the artists they made (``set_data``) and rescale, so the next draw is cheap.

def _share_steps(timeline) -> tuple[np.ndarray, np.ndarray]:
    """Minutes and candidate share (%) of a timeline, closed at the end of the last step."""
    share = timeline.weights[timeline.candidate].to_numpy()
    minutes = timeline.weights.index.to_numpy() * timeline.step_minutes
    return (np.append(minutes, minutes[-1] + timeline.step_minutes),
            np.append(share, share[-1]) * 100)


def _live_points(timeline, version: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Minutes and ``metric`` of ``version``'s live steps that answered requests (may be empty)."""
    if version not in timeline.metrics.index.get_level_values("version"):
        return np.empty(0), np.empty(0)
    frame = timeline.live(version)
    frame = frame[frame["requests"] > 0]
    return frame["minute"].to_numpy(dtype=float), frame[metric].to_numpy(dtype=float)


def _rollout_span(timeline, minutes: float | None = None) -> tuple[float, float]:
    """x limits covering a whole rollout (or ``minutes``, when longer), a little margin."""
    end = max(len(timeline.weights) * timeline.step_minutes, minutes or 0.0)
    return -0.04 * end, 1.04 * end


def _legend_above(ax: Axes) -> None:
    """A legend in one row above the plot: it never hides a line, whatever the data."""
    ax.legend(fontsize="small", loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2,
              frameon=False, borderaxespad=0.2)


def _own_lines(ax: Axes, gid: str) -> list:
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def rollout_outcome(ax: Axes):
    """The outcome text :func:`redraw_traffic_share` put on ``ax`` (None before it drew there)."""
    return next((text for text in ax.texts if text.get_gid() == "rollout-outcome"), None)


def redraw_traffic_share(ax: Axes, timeline, *, minutes: float | None = None) -> Axes:
    """:func:`traffic_share` for a widget: drawn on the first call, moved in place afterwards.

    Lesson 06. The first call on an ``Axes`` draws the candidate's share like
    :func:`traffic_share`, with the strategy in a legend above the plot and its outcome in a text
    at the top right (:func:`rollout_outcome`, which a widget may draw on its own, since it
    changes more often than anything else but the line). Later calls with another
    timeline update the line, both texts, the y label and the time axis, without creating new
    artists. ``minutes`` fixes the time axis to at least that long a rollout, so that a shorter
    one keeps the same axes (and its time to full rollout shows as shorter).
    """
    steps, percent = _share_steps(timeline)
    lines = _own_lines(ax, "traffic-share")
    if not lines:
        ax.step(steps, percent, where="post", label=timeline.strategy, gid="traffic-share")
        ax.set_xlabel("minutes since the rollout started")
        ax.set_ylim(-3, 103)
        ax.grid(True, alpha=0.3)
        _legend_above(ax)
        ax.text(1.0, 1.02, timeline.outcome, transform=ax.transAxes, ha="right", va="bottom",
                fontsize="small", gid="rollout-outcome")
    else:
        lines[0].set_data(steps, percent)
        lines[0].set_label(timeline.strategy)
        ax.get_legend().get_texts()[0].set_text(timeline.strategy)
        rollout_outcome(ax).set_text(timeline.outcome)
    ax.set_xlim(_rollout_span(timeline, minutes))
    ax.set_ylabel(f"users on {timeline.candidate} (%)")
    return ax


def redraw_rollout_metric(ax: Axes, timeline, metric: str = "accuracy", *,
                          minutes: float | None = None,
                          cover: tuple[float, float] | None = None) -> Axes:
    """:func:`rollout_metric` for a widget: drawn on the first call, moved in place afterwards.

    Lesson 06. Always two lines, the baseline's and the candidate's live steps (a version that
    answered no user has an empty line, and its legend entry says so); later calls update
    their points and legend entries and rescale both axes (``minutes``: as in
    :func:`redraw_traffic_share`). The value axis snaps to a grid of 0.05 and always spans
    ``cover`` when given, so the noise of a small canary step does not move it on every call.
    """
    lines = _own_lines(ax, "rollout-metric")
    if not lines:
        for color in (REFERENCE_COLOR, CURRENT_COLOR):
            ax.plot([], [], marker="o", color=color, label=" ", gid="rollout-metric")
        ax.set_xlabel("minutes since the rollout started")
        ax.grid(True, alpha=0.3)
        _legend_above(ax)
        lines = _own_lines(ax, "rollout-metric")
    texts = ax.get_legend().get_texts()
    for line, text, version in zip(lines, texts, (timeline.baseline, timeline.candidate)):
        at, values = _live_points(timeline, version, metric)
        label = version if at.size else f"{version} (no users)"
        line.set_data(at, values)
        line.set_label(label)
        text.set_text(label)
    ax.set_ylabel(metric)
    ax.set_xlim(_rollout_span(timeline, minutes))
    values = np.concatenate([*(line.get_ydata() for line in lines),
                             np.asarray(cover or (), dtype=float)])
    values = values[np.isfinite(values)]
    if values.size:  # limits on a grid of 0.05, so that small moves keep the same axes
        ax.set_ylim(np.floor(values.min() / 0.05 - 0.2) * 0.05,
                    np.ceil(values.max() / 0.05 + 0.2) * 0.05)
    return ax


def redraw_p_value_path(ax: Axes, users_seen: Sequence[int], p_values: Sequence[float], *,
                        alpha: float = 0.05) -> Axes:
    """:func:`p_value_path` for a widget: drawn on the first call, moved in place afterwards.

    Lesson 07. Later calls on the same ``Axes`` give the path its new points and reset both
    limits the way :func:`p_value_path` sets them, without creating new artists (ticks, texts
    and lines are reused, which is most of what a redraw costs).
    """
    lines = _own_lines(ax, "p-value-path")
    if not lines:
        p_value_path(ax, users_seen, p_values, alpha=alpha)
        ax.get_lines()[0].set_gid("p-value-path")
    else:
        lines[0].set_data(users_seen, p_values)
        ax.set_ylim(max(min(np.min(p_values), alpha) / 3, 1e-12), 1.05)
    span = max(users_seen) - min(users_seen)
    ax.set_xlim(min(users_seen) - 0.05 * span, max(users_seen) + 0.05 * span)
    return ax


def redraw_reference_vs_current(ax: Axes, reference: Sequence[float], current: Sequence[float],
                                *, bins: int = 40, title: str = "") -> Axes:
    """:func:`reference_vs_current` for a widget: drawn on the first call, moved in place after.

    Lesson 02. Later calls on the same ``Axes`` give the two histograms new bins and heights,
    update the legend's sample sizes and rescale, without creating new artists.
    """
    if len(ax.patches) != 2:
        reference_vs_current(ax, reference, current, bins=bins, title=title)
        return ax
    reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    edges = _shared_edges(reference, current, bins)
    texts = ax.get_legend().get_texts()
    for patch, text, values, name in zip(ax.patches, texts, (reference, current),
                                         ("reference", "current")):
        patch.set_data(np.histogram(values, bins=edges, density=True)[0], edges)
        patch.set_label(f"{name} (n={values.size})")
        text.set_text(patch.get_label())
    ax.set_title(title)
    ax.relim()
    ax.autoscale_view()
    return ax


# --- lesson 03: testing ML code ------------------------------------------------------------------


def accuracy_histogram(ax: Axes, accuracies: dict[str, Sequence[float]],
                       thresholds: dict[str, float], *, n_rows: int | None = None,
                       bins: int = 30) -> Axes:
    """Accuracy measured on many evaluation sets, with the tests' thresholds drawn in (lesson 03).

    ``accuracies`` maps a label (``"unchanged model"``) to one accuracy per evaluation set, drawn
    as overlaid histograms on shared bins; ``thresholds`` maps a test's label to its threshold,
    drawn as a dashed vertical line: what lies left of a line fails that test. With ``n_rows``
    (the rows of each set) every bin holds one possible accuracy ``k / n_rows``, so no bin is
    emptier than its neighbours by rounding; otherwise ``bins`` equal bins.
    """
    if not accuracies:
        raise ValueError("accuracies needs at least one label -> accuracies")
    values = {label: np.asarray(v, dtype=float) for label, v in accuracies.items()}
    pooled = np.concatenate(list(values.values()))
    if n_rows is not None:
        counts = np.round(pooled * n_rows)
        edges = (np.arange(counts.min(), counts.max() + 2) - 0.5) / n_rows
    else:
        edges = _shared_edges(pooled, pooled, bins)
    colors = (REFERENCE_COLOR, CURRENT_COLOR, "#55a868", "#8172b3")
    for (label, sample), color in zip(values.items(), colors * len(values)):
        ax.hist(sample, bins=edges, alpha=0.55, color=color, label=f"{label} ({sample.size} sets)")
    for (label, threshold), style in zip(thresholds.items(), ("--", ":", "-.", "-") * 4):
        ax.axvline(threshold, color=ALERT_COLOR, linestyle=style, linewidth=1.5,
                   label=f"{label}: {threshold:.3f}")
    ax.set_xlabel("accuracy on one evaluation set")
    ax.set_ylabel("evaluation sets")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.8)  # head room: the legend sits above the bars
    ax.legend(fontsize="small", loc="upper left")
    return ax


def failure_curve(ax: Axes, drops: Sequence[float], theory: Sequence[float], *, label: str,
                  simulated: Sequence[float] | None = None,
                  errors: Sequence[float] | None = None) -> Axes:
    """Probability that a metric test fails against the model's true loss of accuracy (lesson 03).

    One call per test: the binomial as a line labelled ``label``, the measured failure rates
    (with ``errors``, bar lengths as matplotlib's ``yerr`` takes them: one per point, or lengths
    below and above, such as a Wilson interval's, which stays open at 0 failures) as points of the
    same colour. At a drop of 0 the
    curve is the false-alarm rate; further right it is the chance of catching a real regression.
    """
    line, = ax.plot(drops, theory, label=label)
    if simulated is not None:
        ax.errorbar(drops, simulated, yerr=errors, fmt="o", markersize=3, capsize=2,
                    color=line.get_color(), label="_measured")
    ax.set_xlabel("true drop of accuracy")
    ax.set_ylabel("probability that the test fails")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    # Below the axes: inside, it would cover the measured points of some curve.
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16),
              title="lines: binomial; points: measured (bars: 95 % interval)",
              title_fontsize="small")
    return ax
