"""labsupport.plots: each function draws what it says on the Axes it is given and returns it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from scipy import stats

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


def test_p_value_bars_show_both_p_values_and_alpha_on_a_log_scale(ax):
    frame = pd.DataFrame({"p_value": [1e-9, 0.2], "p_adjusted": [2e-9, 0.2]}, index=["a", "b"])
    plots.p_value_bars(ax, frame, alpha=0.05)
    assert [p.get_height() for p in ax.patches] == [1e-9, 0.2, 2e-9, 0.2]
    assert ax.get_yscale() == "log"
    assert ax.get_ylim()[0] < 1e-9, "the smallest bar must be visible above the bottom"
    assert any(list(line.get_ydata()) == [0.05, 0.05] for line in ax.get_lines())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]


def test_p_value_bars_survive_a_p_value_of_zero(ax):
    frame = pd.DataFrame({"p_value": [0.0], "p_adjusted": [0.0]}, index=["a"])
    plots.p_value_bars(ax, frame, alpha=0.05)
    assert all(p.get_height() > 0 for p in ax.patches)


def test_ecdf_gap_marks_the_ks_statistic(ax):
    rng = np.random.default_rng(1)
    reference, current = rng.normal(size=300), rng.normal(0.5, 1, 200)
    returned = plots.ecdf_gap(ax, reference, current)
    assert returned is ax
    (segment,) = ax.collections
    low, high = segment.get_segments()[0][:, 1]
    assert abs(high - low) == pytest.approx(stats.ks_2samp(reference, current).statistic)
    first, second = ax.get_lines()[:2]
    assert first.get_ydata()[-1] == pytest.approx(1.0) and second.get_ydata()[-1] == 1.0


def test_psi_bins_write_each_bins_term_and_their_sum(ax):
    r, c = np.full(4, 0.25), np.array([0.1, 0.2, 0.3, 0.4])
    plots.psi_bins(ax, r, c)
    terms = (c - r) * np.log(c / r)
    assert [float(t.get_text()) for t in ax.texts] == pytest.approx(terms.round(3).tolist())
    assert ax.get_title() == f"PSI = sum of the terms = {terms.sum():.3f}"
    assert [p.get_height() for p in ax.patches] == [*r, *c]


def test_release_risk_draws_theory_as_a_line_and_simulation_as_points(ax):
    comparison = batches.compare_batch_sizes([1, 10, 30], 0.05, 3000, np.random.default_rng(0))
    returned = plots.release_risk(ax, comparison, "failed_releases")
    assert returned is ax
    line, = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), comparison["failed_releases_theory"])
    points = ax.collections[0].get_offsets()
    np.testing.assert_allclose(points[:, 1], comparison["failed_releases"])
    assert ax.get_ylabel() == "failed releases"


def test_release_risk_draws_a_column_without_theory_as_a_line(ax):
    comparison = batches.compare_batch_sizes([1, 10, 30], 0.05, 3000, np.random.default_rng(0))
    plots.release_risk(ax, comparison, "suspects", ylabel="changes to search")
    line, = ax.get_lines()
    assert list(line.get_ydata()) == [1, 10, 30] and not ax.collections
    assert ax.get_ylabel() == "changes to search"



# --- lesson 04: code quality ------------------------------------------------------------------


def test_lint_score_steps_draws_one_point_per_step_with_its_label(ax):
    returned = plots.lint_score_steps(ax, ["start", "C0114", "W0611"], [0.0, 2.5, 10.0],
                                      label="in order", passing=9.5)
    assert returned is ax
    line, gate = ax.get_lines()
    assert list(line.get_ydata()) == [0.0, 2.5, 10.0]
    assert list(gate.get_ydata()) == [9.5, 9.5]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["start", "C0114", "W0611"]
    assert [t.get_text() for t in ax.texts] == ["0.00", "2.50", "10.00"]
    assert ax.get_ylim()[0] < 0 and ax.get_ylim()[1] > 10
    plots.lint_score_steps(ax, ["a", "b", "c"], [0.0, 5.0, 10.0], label="shuffled",
                           passing=9.5)
    assert [l.get_label() for l in ax.get_lines()].count("CI gate") == 1


def test_lint_score_steps_needs_a_score_per_step(ax):
    with pytest.raises(ValueError, match="one score per step"):
        plots.lint_score_steps(ax, ["a", "b"], [1.0])
# --- end of lesson 04 -------------------------------------------------------------------------



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


@pytest.fixture(scope="module")
def timelines():
    """A canary that is promoted and one rolled back, on a small simulated production."""
    from labsupport import rollout, traffic  # pylint: disable=import-outside-toplevel
    from tests.test_traffic import CountingModel  # pylint: disable=import-outside-toplevel
    features = np.random.default_rng(0).normal(size=(500, 2))
    population = traffic.Population(np.arange(500), features, (features[:, 0] > 0).astype(int))
    simulator = traffic.Simulator(population, [
        traffic.Version("v1", CountingModel()), traffic.Version("v2", CountingModel()),
        traffic.Version("bad", CountingModel(flip=True))])
    canary = rollout.Canary((0.1, 0.5, 1.0), requests_per_step=400)
    rng = np.random.default_rng(1)
    return canary.run(simulator, "v1", "v2", rng), canary.run(simulator, "v1", "bad", rng)


def test_redraw_traffic_share_moves_its_one_line(ax, timelines):
    promoted, rolled_back = timelines
    assert plots.redraw_traffic_share(ax, promoted) is ax
    line, = ax.get_lines()
    assert line.get_ydata().tolist() == [10, 50, 100, 100]
    # step k spans minutes [10k, 10k + 10]: 100 % from minutes_to_full, the promote decision's
    assert line.get_xdata().tolist() == [0, 10, 20, 30]
    assert promoted.minutes_to_full == 20 == promoted.decisions[-1].minute
    plots.redraw_traffic_share(ax, rolled_back)
    assert list(ax.get_lines()) == [line], "the second call must reuse the line"
    assert line.get_ydata().tolist() == [10, 0, 0]
    assert ax.get_legend().get_texts()[0].get_text() == "canary"
    assert plots.rollout_outcome(ax).get_text() == "rolled back"
    assert [text.get_text() for text in ax.texts] == ["rolled back"], "one outcome text, moved"
    assert ax.get_ylabel() == "users on bad (%)"
    assert ax.get_xlim()[1] == pytest.approx(1.04 * 20)
    plots.redraw_traffic_share(ax, rolled_back, minutes=90)
    assert ax.get_xlim()[1] == pytest.approx(1.04 * 90)


def test_redraw_rollout_metric_keeps_two_lines_and_grid_limits(ax, timelines):
    promoted, rolled_back = timelines
    plots.redraw_rollout_metric(ax, promoted, "accuracy")
    lines = list(ax.get_lines())
    assert len(lines) == 2
    plots.redraw_rollout_metric(ax, rolled_back, "accuracy")
    assert list(ax.get_lines()) == lines
    baseline, candidate = lines
    assert candidate.get_ydata().tolist() == rolled_back.live("bad")["accuracy"].tolist()
    assert baseline.get_xdata().tolist() == rolled_back.live("v1")["minute"].tolist()
    # a metric is drawn at the end of its step, when it is known and the rollback is decided
    assert candidate.get_xdata().tolist() == [10.0] == [rolled_back.decisions[-1].minute]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["v1", "bad"]
    low, high = ax.get_ylim()
    assert low <= candidate.get_ydata().min() and high >= baseline.get_ydata().max()
    for limit in (low, high):  # on the 0.05 grid, so small moves keep the same axes
        assert limit / 0.05 == pytest.approx(round(limit / 0.05))


def test_redraw_p_value_path_moves_the_path_and_rescales_like_a_fresh_plot(ax):
    plots.redraw_p_value_path(ax, [100, 200, 300], [0.5, 0.2, 0.04])
    path = ax.get_lines()[0]
    assert plots.redraw_p_value_path(ax, [1000, 2000], [0.3, 1e-4]) is ax
    assert ax.get_lines()[0] is path and list(path.get_xdata()) == [1000, 2000]
    figure, fresh = plt.subplots()
    plots.redraw_p_value_path(fresh, [1000, 2000], [0.3, 1e-4])
    assert ax.get_ylim() == pytest.approx(fresh.get_ylim())
    assert ax.get_xlim() == pytest.approx(fresh.get_xlim())
    plt.close(figure)


def test_redraw_reference_vs_current_moves_both_histograms_in_place(ax):
    rng = np.random.default_rng(1)
    plots.redraw_reference_vs_current(ax, rng.normal(size=300), rng.normal(size=200), bins=10)
    patches = list(ax.patches)
    current = rng.normal(3, 1, 100)
    plots.redraw_reference_vs_current(ax, rng.normal(size=300), current, bins=10, title="x2")
    assert list(ax.patches) == patches, "the second call must reuse the histograms"
    edges = patches[1].get_data().edges
    assert edges[-1] == pytest.approx(current.max()) and len(edges) == 11
    assert np.sum(patches[1].get_data().values * np.diff(edges)) == pytest.approx(1.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["reference (n=300)",
                                                                  "current (n=100)"]
    assert ax.get_title() == "x2" and ax.get_xlim()[1] >= current.max()


def test_accuracy_histogram_draws_each_sample_on_shared_bins_and_each_threshold(ax):
    rng = np.random.default_rng(0)
    unchanged, degraded = rng.normal(0.86, 0.02, 300), rng.normal(0.81, 0.03, 300)
    returned = plots.accuracy_histogram(ax, {"unchanged": unchanged, "5 points lost": degraded},
                                        {"just under": 0.85, "3 SE under": 0.786}, bins=25)
    assert returned is ax
    heights = [patch.get_height() for patch in ax.patches]
    assert len(heights) == 50 and sum(heights) == 600
    first, second = ax.patches[0], ax.patches[25]
    assert first.get_x() == second.get_x(), "both samples must use the same bins"
    assert sorted(line.get_xdata()[0] for line in ax.get_lines()) == [0.786, 0.85]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "just under: 0.850" in labels and "unchanged (300 sets)" in labels


def test_accuracy_histogram_needs_a_sample(ax):
    with pytest.raises(ValueError):
        plots.accuracy_histogram(ax, {}, {"bar": 0.8})


def test_failure_curve_draws_the_binomial_and_the_measured_points_in_one_colour(ax):
    drops = [0.0, 0.05, 0.1]
    returned = plots.failure_curve(ax, drops, [0.003, 0.2, 0.8], label="200 rows",
                                   simulated=[0.0, 0.25, 0.78], errors=[0.0, 0.03, 0.03])
    assert returned is ax
    line = ax.get_lines()[0]
    assert list(line.get_ydata()) == [0.003, 0.2, 0.8]
    points = ax.containers[0]
    assert list(points.lines[0].get_ydata()) == [0.0, 0.25, 0.78]
    assert points.lines[0].get_color() == line.get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["200 rows"]


def test_accuracy_histogram_gives_each_possible_accuracy_its_own_bin(ax):
    plots.accuracy_histogram(ax, {"a": [0.80, 0.805, 0.805, 0.83]}, {"bar": 0.8}, n_rows=200)
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == [1, 2, 0, 0, 0, 0, 1]
    assert ax.patches[0].get_x() == pytest.approx(0.7975)
