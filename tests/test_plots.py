"""labsupport.plots: each function draws what it says on the Axes it is given and returns it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt

from labsupport import batches, plots


@pytest.fixture
def ax():
    """A fresh Axes, closed after the test (no display needed: matplotlib falls back to Agg)."""
    figure, axes = plt.subplots()
    yield axes
    plt.close(figure)


def test_reference_vs_current_draws_two_histograms_on_shared_bins(ax):
    rng = np.random.default_rng(0)
    returned = plots.reference_vs_current(ax, rng.normal(size=300), rng.normal(2, 1, 200),
                                          bins=20, title="x1")
    assert returned is ax
    reference, current = (patch.get_data() for patch in ax.patches)
    assert len(reference.edges) == 21
    assert np.array_equal(reference.edges, current.edges), "both must use the same bins"
    widths = np.diff(reference.edges)
    assert np.sum(reference.values * widths) == pytest.approx(1.0), "a density integrates to 1"
    assert ax.get_title() == "x1"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["reference (n=300)",
                                                                  "current (n=200)"]


def test_reference_vs_current_copes_with_a_constant_column(ax):
    plots.reference_vs_current(ax, [1.0, 1.0], [1.0, 1.0], bins=5)
    assert len(ax.patches) == 2


def test_metric_curve_adds_one_line_per_call_and_one_floor(ax):
    plots.metric_curve(ax, [0, 0.5, 1], [0.9, 0.8, 0.7], label="covariate", floor=0.8)
    plots.metric_curve(ax, [0, 0.5, 1], [0.9, 0.6, 0.4], label="concept", floor=0.8)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["covariate", "minimum acceptable", "concept"]
    assert list(ax.get_lines()[2].get_ydata()) == [0.9, 0.6, 0.4]


def test_monitor_timeline_marks_retraining_and_alerts(ax):
    log = pd.DataFrame({"batch": [0, 1, 2, 3], "n_rows": 100, "drift_share": [0, 0.5, 0, 0],
                        "accuracy": [0.9, 0.85, 0.5, 0.95],
                        "action": ["keep", "alert", "retrain", "keep"], "reason": ""})
    returned = plots.monitor_timeline(ax, log, true_strength=[0, 0, 1, 1])
    assert returned is ax
    vertical = [line for line in ax.get_lines() if list(line.get_xdata()) == [2, 2]]
    assert len(vertical) == 1, "one vertical line at the retrained batch"
    alerts = next(line for line in ax.get_lines() if line.get_label().startswith("alert"))
    assert list(alerts.get_xdata()) == [1]
    assert len(ax.patches) == 4


def test_p_value_bars_show_both_p_values_and_alpha(ax):
    frame = pd.DataFrame({"p_value": [0.01, 0.2], "p_adjusted": [0.02, 0.2]}, index=["a", "b"])
    plots.p_value_bars(ax, frame, alpha=0.05)
    assert [p.get_height() for p in ax.patches] == [0.01, 0.2, 0.02, 0.2]
    assert any(list(line.get_ydata()) == [0.05, 0.05] for line in ax.get_lines())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]


def test_release_risk_draws_theory_as_a_line_and_simulation_as_points(ax):
    comparison = batches.compare_batch_sizes([1, 10, 30], 0.05, 3000, np.random.default_rng(0))
    returned = plots.release_risk(ax, comparison)
    assert returned is ax
    line, = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), comparison["theory"])
    points = ax.collections[0].get_offsets()
    np.testing.assert_allclose(points[:, 1], comparison["failure_rate"])


# --- lesson 05: GitHub Actions ------------------------------------------------------------------


def test_job_graph_draws_a_box_per_job_and_an_arrow_per_need(ax):
    stages = [["test", "docs"], ["train"], ["deploy"]]
    needs = {"test": (), "docs": (), "train": ("test",), "deploy": ("train", "docs")}
    assert plots.job_graph(ax, stages, needs, title="needs") is ax
    boxes = {text.get_text(): text.get_position() for text in ax.texts if text.get_text()}
    assert set(boxes) == {"test", "docs", "train", "deploy"}
    assert boxes["test"][0] == boxes["docs"][0] == 0 and boxes["deploy"][0] == 2
    arrows = [(child.xy, child.xyann) for child in ax.get_children()
              if type(child).__name__ == "Annotation"]
    assert sorted((tuple(start), tuple(end)) for end, start in arrows) == sorted(
        (boxes[other], boxes[job]) for job, required in needs.items() for other in required)
