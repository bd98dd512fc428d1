"""labsupport.widgets.pipeline: moving a control changes what the student sees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labsupport import batches, pipeline
from labsupport.widgets import pipeline as pipeline_widgets


def test_release_explorer_follows_its_sliders():
    explorer = pipeline_widgets.ReleaseRiskExplorer(seed=1, batch_size=1, p_bug=0.05)
    assert list(explorer.summary().columns) == ["single changes", "single changes (theory)",
                                               "batches of 1", "batches of 1 (theory)"]
    explorer.batch_size.value = 40
    summary = explorer.summary()
    assert summary.loc["releases", "batches of 40"] == 5000 // 40
    assert summary.loc["failed releases", "batches of 40"] \
        < summary.loc["failed releases", "single changes"], "the same work fails fewer times"
    assert summary.loc["good changes held back per failure", "batches of 40"] > 30
    assert summary.loc["failed releases", "batches of 40 (theory)"] == pytest.approx(
        125 * batches.batch_failure_probability(0.05, 40), abs=0.05)
    assert summary.loc["changes to search per failure", "batches of 40"] == 40
    explorer.p_bug.value = 0.0
    assert explorer.summary().loc["failed releases"].eq(0).all()


def test_release_explorer_matches_the_static_computation():
    explorer = pipeline_widgets.ReleaseRiskExplorer(seed=4, n_changes=1000, batch_size=7,
                                                    p_bug=0.1)
    static = batches.compare_batch_sizes([1, 7], 0.1, 1000, np.random.default_rng(4))
    pd.testing.assert_frame_equal(explorer.table, static)
    assert explorer.output.outputs, "the output area was not drawn"


def test_pipeline_playground_reruns_when_a_stage_is_broken():
    rng = np.random.default_rng(0)
    playground = pipeline_widgets.PipelinePlayground(pipeline.make_sensor_data(600, rng),
                                                     pipeline.make_sensor_data(400, rng))
    assert playground.result.released
    playground.breakage.value = "validate"
    assert playground.result.failed_stage == "validate"
    playground.breakage.value = "nothing"
    playground.mode.value = "delivery"
    assert playground.result.results[-1].status == "waiting"
    assert playground.history()["live"].tolist() == [False, True, False]
