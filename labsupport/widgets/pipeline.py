"""Widgets of lesson 01: release-batch risk and a pipeline the student breaks on purpose.

Each widget is a thin view: the numbers come from :mod:`labsupport.batches` and
:mod:`labsupport.pipeline`. Controls and the last result are attributes, so tests (and curious
students) can set ``explorer.batch_size.value = 30`` and read ``explorer.result``.
"""

from __future__ import annotations

import tempfile

import ipywidgets as widgets
import numpy as np
import pandas as pd
from IPython.display import clear_output, display

from labsupport import batches, pipeline


class ReleaseRiskExplorer:
    """Move the batch size and the bug rate; see how often a release fails and what it costs.

    Parameters
    ----------
    seed
        Seed of the simulation; the same seed is reused at every move, so what changes on screen
        is caused by the sliders alone.
    n_changes
        Changes shipped in each simulation.
    batch_size, p_bug
        Starting values of the sliders.
    """

    def __init__(self, seed: int = 0, n_changes: int = 2000, batch_size: int = 10,
                 p_bug: float = 0.05) -> None:
        self.seed = seed
        self.n_changes = n_changes
        self.batch_size = widgets.IntSlider(value=batch_size, min=1, max=50,
                                            description="batch size")
        self.p_bug = widgets.FloatSlider(value=p_bug, min=0.0, max=0.3, step=0.01,
                                         readout_format=".2f", description="P(bug)")
        self.output = widgets.Output()
        self.view = widgets.VBox([self.batch_size, self.p_bug, self.output])
        self.result: batches.ReleaseSimulation | None = None
        for control in (self.batch_size, self.p_bug):
            control.observe(self.update, names="value")
        self.update()

    def summary(self) -> pd.Series:
        """The figures shown under the sliders (simulated beside theory)."""
        size, p_bug = self.batch_size.value, self.p_bug.value
        return pd.Series(dtype=object, name=f"batch size {size}", data={
            "releases": self.result.n_releases,
            "failed releases": self.result.failed_releases,
            "failure rate (simulated)": round(self.result.failure_rate, 3),
            "failure rate (theory)": round(batches.batch_failure_probability(p_bug, size), 3),
            "good changes held back per bug": round(self.result.held_back_per_bug, 2),
            "held back per bug (theory)": round(batches.expected_held_back_per_bug(p_bug, size),
                                                2),
        })

    def update(self, _change: object = None) -> None:
        """Re-run the simulation for the current slider values and redraw."""
        rng = np.random.default_rng(self.seed)
        self.result = batches.simulate_releases(self.n_changes, self.batch_size.value,
                                                self.p_bug.value, rng)
        with self.output:
            clear_output(wait=True)
            display(self.summary().to_frame())

    def _ipython_display_(self) -> None:
        display(self.view)


class PipelinePlayground:
    """Pick a stage to break and a release mode; the pipeline runs again and shows each stage.

    Parameters
    ----------
    data, evaluation
        Training data and the trusted evaluation set (see :func:`labsupport.pipeline.run`).
    """

    def __init__(self, data: pd.DataFrame, evaluation: pd.DataFrame) -> None:
        self.data = data
        self.evaluation = evaluation
        # Lives as long as the widget: the registry's versions must outlast a single update.
        self._folder = tempfile.TemporaryDirectory(  # pylint: disable=consider-using-with
            prefix="registry-")
        self.registry = pipeline.Registry(self._folder.name)
        self.breakage = widgets.Dropdown(options=list(pipeline.BREAKAGES), value="nothing",
                                         description="break")
        self.mode = widgets.ToggleButtons(options=list(pipeline.MODES), value="deployment",
                                          description="mode")
        self.output = widgets.Output()
        self.view = widgets.VBox([self.breakage, self.mode, self.output])
        self.result: pipeline.PipelineRun | None = None
        for control in (self.breakage, self.mode):
            control.observe(self.update, names="value")
        self.update()

    def history(self) -> pd.DataFrame:
        """Every version this playground has published, and which one is live."""
        return self.registry.history()

    def update(self, _change: object = None) -> None:
        """Run the (possibly broken) change through the pipeline and show every stage."""
        change = pipeline.sabotage(pipeline.example_change(self.data), self.breakage.value)
        self.result = pipeline.run(change, self.registry, self.evaluation, mode=self.mode.value)
        with self.output:
            clear_output(wait=True)
            print(pipeline.BREAKAGES[self.breakage.value])
            print(self.result)
            display(self.result.to_frame())

    def _ipython_display_(self) -> None:
        display(self.view)
