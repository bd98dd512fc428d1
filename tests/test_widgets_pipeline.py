"""labsupport.widgets.pipeline: moving a control changes what the student sees."""

from __future__ import annotations

import numpy as np
import pytest

from labsupport import batches, pipeline
from labsupport.widgets import pipeline as pipeline_widgets


def test_release_explorer_follows_its_sliders():
    explorer = pipeline_widgets.ReleaseRiskExplorer(seed=1, batch_size=1, p_bug=0.05)
    small = explorer.result
    explorer.batch_size.value = 40
    assert explorer.result.batch_size == 40
    assert explorer.result.failure_rate > small.failure_rate
    assert explorer.summary()["failure rate (theory)"] == pytest.approx(
        batches.batch_failure_probability(0.05, 40), abs=1e-3)
    explorer.p_bug.value = 0.0
    assert explorer.result.failed_releases == 0


def test_release_explorer_matches_the_static_computation():
    explorer = pipeline_widgets.ReleaseRiskExplorer(seed=4, n_changes=1000, batch_size=7,
                                                    p_bug=0.1)
    static = batches.simulate_releases(1000, 7, 0.1, np.random.default_rng(4))
    assert explorer.result == static


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
