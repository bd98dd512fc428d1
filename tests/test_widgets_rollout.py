"""labsupport.widgets.rollout: moving the controls reruns the rollout the student sees."""

from __future__ import annotations

import numpy as np
import pytest

from labsupport import plots, rollout, traffic
from labsupport.widgets import rollout as rollout_widgets

CANDIDATES = {"good": "v2", "subtle": "v2-segment", "broken": "v2-broken"}


@pytest.fixture(scope="module")
def simulator():
    """The lesson's world, small."""
    return traffic.lesson_world(0, n_users=2000, n_train=800).simulator()


def test_schedule_sliders_change_the_canary_steps(simulator):
    explorer = rollout_widgets.RolloutExplorer(simulator, "v1", CANDIDATES, seed=1)
    assert explorer.timeline.strategy == "canary"
    assert explorer.timeline.weights["v2"].iloc[0] == pytest.approx(0.05)
    explorer.first_share.value = 0.2
    explorer.n_steps.value = 3
    assert explorer.timeline.weights["v2"].tolist() == pytest.approx([0.2, 0.447, 1.0])
    assert explorer.output.outputs, "the output area was not drawn"


def test_broken_candidate_is_rolled_back_and_users_affected_shown(simulator):
    explorer = rollout_widgets.RolloutExplorer(simulator, "v1", CANDIDATES, seed=2)
    explorer.candidate.value = "broken"
    assert explorer.timeline.outcome == "rolled back"
    exposed = explorer.timeline.exposed["v2-broken"]
    assert f"{exposed} users answered by the candidate" in explorer.summary()
    assert "rollback" in explorer.table["action"].tolist()
    explorer.strategy.value = "shadow"
    assert explorer.timeline.exposed["v2-broken"] == 0


def test_seed_and_runs_show_the_risk_not_one_story(simulator):
    explorer = rollout_widgets.RolloutExplorer(simulator, "v1", CANDIDATES, seed=1, n_runs=1,
                                               requests_per_step=1000)
    explorer.candidate.value = "subtle"
    explorer.max_accuracy_drop.value = 0.04
    stories = set()
    for seed in range(12):
        explorer.seed.value = seed
        assert explorer.shares[explorer.timeline.outcome] == 1.0  # one run: its own outcome
        stories.add(explorer.timeline.outcome)
    assert stories == {"promoted", "rolled back"}, "the same canary ends both ways"
    explorer.n_runs.value = 20
    runs = [rollout.build("canary", requests_per_step=1000, analysis=explorer.analysis()).run(
        simulator, "v1", "v2-segment", rng) for rng in [np.random.default_rng(11)] * 20]
    assert explorer.shares.equals(rollout.outcome_shares(runs))
    assert 0 < explorer.shares["rolled back"] < 1
    assert f"Over 20 rollouts: promoted {explorer.shares['promoted']:.0%}" in explorer.summary()


def test_threshold_controls_set_the_analysis(simulator):
    explorer = rollout_widgets.RolloutExplorer(simulator, "v1", CANDIDATES, seed=2, n_runs=5)
    assert explorer.analysis() == rollout.DEFAULT_ANALYSIS
    explorer.candidate.value = "broken"
    assert explorer.shares["rolled back"] == 1.0
    explorer.max_error_rate.value = 0.1  # 6 % errors now pass; its p99 latency does not
    assert explorer.shares["rolled back"] == 1.0
    assert "latency_p99_ms" in explorer.table["reason"].iloc[-1]
    explorer.max_latency_p99_ms.value = 500.0  # only the error rate's noise is left
    assert explorer.shares["promoted"] > 0
    explorer.failure_limit.value = 4  # four analysed steps, four failures tolerated
    assert explorer.analysis().failure_limit == 4
    assert explorer.shares["promoted"] == 1.0
    explorer.max_error_rate.value = 0.0  # every step with a single error fails ...
    explorer.failure_limit.value = 0  # ... and none is tolerated
    assert explorer.shares["rolled back"] == 1.0


def test_split_slider_moves_the_ab_share(simulator):
    explorer = rollout_widgets.RolloutExplorer(simulator, "v1", CANDIDATES, seed=3,
                                               strategy="A/B")
    explorer.split.value = 0.2
    share = (explorer.timeline.outcomes["variant"] == "treatment").mean()
    assert abs(share - 0.2) < 0.05
    explorer.split.value = 0.8
    assert (explorer.timeline.outcomes["variant"] == "treatment").mean() > 0.7


def test_explorer_matches_the_static_computation(simulator):
    explorer = rollout_widgets.RolloutExplorer(simulator, "v1", CANDIDATES, seed=4,
                                               strategy="blue-green")
    explorer.candidate.value = "subtle"
    static = rollout.BlueGreen().run(simulator, "v1", "v2-segment", np.random.default_rng(4))
    assert explorer.timeline.decision_table().equals(static.decision_table())
    assert explorer.timeline.outcome == static.outcome


def _pixels(explorer) -> np.ndarray:
    return np.asarray(explorer.figure.canvas.buffer_rgba()).copy()


def test_a_move_redraws_the_figure_in_place_and_shows_a_new_png(simulator):
    explorer = rollout_widgets.RolloutExplorer(simulator, "v1", CANDIDATES, seed=5)
    lines = list(explorer.axes[0].get_lines())
    before = bytes(explorer.image.value)
    assert before.startswith(b"\x89PNG"), "the Image widget does not hold a PNG"
    explorer.candidate.value = "broken"
    assert list(explorer.axes[0].get_lines()) == lines, "a move must not add artists"
    share = explorer.timeline.weights["v2-broken"].to_numpy() * 100
    assert lines[0].get_ydata()[:-1].tolist() == pytest.approx(share.tolist())
    assert bytes(explorer.image.value) != before
    legend = [t.get_text() for t in explorer.axes[1].get_legend().get_texts()]
    assert legend == ["v1", "v2-broken"]


def test_pasted_background_gives_the_same_pixels_as_a_full_draw(simulator):
    explorer = rollout_widgets.RolloutExplorer(simulator, "v1", CANDIDATES, seed=6)
    explorer.first_share.value = 0.1
    explorer.first_share.value = 0.05  # same limits as the first draw: background reused
    assert len(explorer._backgrounds) >= 1  # pylint: disable=protected-access
    reused = _pixels(explorer)
    explorer._backgrounds.clear()  # pylint: disable=protected-access
    explorer.draw()
    assert np.array_equal(reused, _pixels(explorer))
    for ax in explorer.axes:  # and the same as drawing every artist the ordinary way
        for artist in ax.get_lines() + ax.texts:
            artist.set_animated(False)
    explorer.figure.canvas.draw()
    assert np.array_equal(reused, _pixels(explorer))


def test_slider_moves_keep_the_axes_so_the_background_is_reused(simulator):
    # A move that changes the axes renders the whole figure (several times a move's budget):
    # the time axis spans the longest rollout the sliders allow, whatever the outcome, and
    # the share axis is fixed, so only the accuracy axis (on a grid of 0.05) may move.
    explorer = rollout_widgets.RolloutExplorer(simulator, "v1", CANDIDATES, seed=7)
    lengths = set()
    for steps in range(explorer.n_steps.min, explorer.n_steps.max + 1):
        explorer.n_steps.value = steps
        lengths.add(len(explorer.timeline.weights))
        for share in (0.01, 0.2, 0.5):
            explorer.first_share.value = share
            lengths.add(len(explorer.timeline.weights))
    assert len(lengths) >= 3, "the moves should give rollouts of different lengths"
    keys = list(explorer._backgrounds)  # pylint: disable=protected-access
    assert {(share[:3], metric[0]) for share, metric in keys} == {(keys[0][0][:3], keys[0][1][0])}
    assert len(keys) <= 3
    assert plots.rollout_outcome(explorer.axes[0]).get_text() == explorer.timeline.outcome
