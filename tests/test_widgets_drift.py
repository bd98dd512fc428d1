"""labsupport.widgets.drift: moving the controls changes what the student sees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from labsupport import drift, monitoring
from labsupport.widgets import drift as drift_widgets


@pytest.fixture(scope="module")
def world():
    """A reference sample and a model trained on it."""
    reference = drift.sample("concept", 1500, np.random.default_rng(0))
    model = RandomForestClassifier(n_estimators=25, random_state=0)
    return model.fit(reference[list(drift.FEATURES)], reference["y"]), reference


def test_concept_slider_lowers_accuracy_but_not_the_feature_tests(world):
    model, reference = world
    explorer = drift_widgets.DriftExplorer(model, reference, seed=1, n_current=1000,
                                           kind="concept")
    before = explorer.result.accuracy
    explorer.strength.value = 1.0
    assert explorer.result.accuracy < before - 0.3
    assert explorer.result.report.drift_share == 0.0
    assert explorer.output.outputs, "the output area was not drawn"


def test_covariate_drift_is_flagged_on_x1_only(world):
    model, reference = world
    explorer = drift_widgets.DriftExplorer(model, reference, seed=2, n_current=1000)
    explorer.strength.value = 0.5
    assert explorer.result.drifted_columns == ("x1",)
    assert explorer.detectors.xs("x1", level="column")["drifted"].all()
    assert "covariate drift, strength 0.50" in explorer.summary()


def test_switching_kind_recomputes(world):
    model, reference = world
    explorer = drift_widgets.DriftExplorer(model, reference, seed=3, n_current=1000,
                                           strength=1.0)
    explorer.kind.value = "prior"
    assert explorer.current["y"].mean() > 0.8


def test_explorer_matches_the_static_computation(world):
    model, reference = world
    explorer = drift_widgets.DriftExplorer(model, reference, seed=4, n_current=800,
                                           kind="prior", strength=0.6)
    current = drift.sample("prior", 800, np.random.default_rng(4), 0.6)
    pd.testing.assert_frame_equal(explorer.current, current)
    static = monitoring.assess(model, reference, current, features=drift.FEATURES, target="y")
    assert explorer.result == static


def test_a_move_redraws_the_same_figure_as_a_fresh_explorer(world):
    model, reference = world
    explorer = drift_widgets.DriftExplorer(model, reference, seed=3, n_current=500,
                                           kind="covariate")
    figure, patches = explorer.figure, list(explorer.figure.get_axes()[0].patches)
    explorer.strength.value = 0.8
    assert explorer.figure is figure and list(figure.get_axes()[0].patches) == patches
    fresh = drift_widgets.DriftExplorer(model, reference, seed=3, n_current=500,
                                        kind="covariate", strength=0.8)
    assert explorer.figure_png() == fresh.figure_png()
