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


#: The rows of :meth:`ReleaseRiskExplorer.summary`: (label, column of compare_batch_sizes).
RELEASE_COSTS = (
    ("releases", "releases"),
    ("failed releases", "failed_releases"),
    ("good changes held back per failure", "held_back_per_failure"),
    ("changes to search per failure", "suspects"),
    ("pipeline runs to find the culprit (bisection)", "bisection_runs"),
    ("good changes held back in total", "held_back_total"),
)


class ReleaseRiskExplorer:
    """Ship the same work in batches of a chosen size; compare its failures with single changes.

    A view over :func:`labsupport.batches.compare_batch_sizes` for batch sizes 1 and the slider's
    value: how many releases fail, and what each failure costs.

    Parameters
    ----------
    seed
        Seed of the simulation; the same seed is reused at every move, so what changes on screen
        is caused by the sliders alone.
    n_changes
        The fixed amount of work: changes shipped in each simulation.
    batch_size, p_bug
        Starting values of the sliders.
    """

    def __init__(self, seed: int = 0, n_changes: int = 5000, batch_size: int = 10,
                 p_bug: float = 0.05) -> None:
        self.seed = seed
        self.n_changes = n_changes
        self.batch_size = widgets.IntSlider(value=batch_size, min=1, max=50,
                                            description="batch size")
        self.p_bug = widgets.FloatSlider(value=p_bug, min=0.0, max=0.3, step=0.01,
                                         readout_format=".2f", description="P(bug)")
        self.output = widgets.Output()
        self.view = widgets.VBox([self.batch_size, self.p_bug, self.output])
        self.table: pd.DataFrame | None = None
        for control in (self.batch_size, self.p_bug):
            control.observe(self.update, names="value")
        self.update()

    def compute(self) -> pd.DataFrame:
        """The simulation for the sliders' values: single changes and the chosen batch size."""
        sizes = sorted({1, self.batch_size.value})
        return batches.compare_batch_sizes(sizes, self.p_bug.value, self.n_changes,
                                           np.random.default_rng(self.seed))

    def summary(self) -> pd.DataFrame:
        """The table shown under the sliders: each cost, simulated and in theory."""
        size = self.batch_size.value
        columns = {}
        for batch_size, name in ((1, "single changes"), (size, f"batches of {size}")):
            row = self.table.loc[batch_size]
            columns[name] = [row[column] for _, column in RELEASE_COSTS]
            columns[f"{name} (theory)"] = [row.get(f"{column}_theory", row[column])
                                           for _, column in RELEASE_COSTS]
        frame = pd.DataFrame(columns, index=[label for label, _ in RELEASE_COSTS]).round(1)
        frame.columns.name = f"{self.n_changes} changes, P(bug) = {self.p_bug.value:.2f}"
        return frame

    def update(self, _change: object = None) -> None:
        """Re-run the simulation for the current slider values and redraw."""
        self.table = self.compute()
        summary = self.summary()
        # Set the output area directly (works with or without a kernel, as in widgets.drift).
        self.output.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {"text/html": summary.to_html(),
                                         "text/plain": summary.to_string()}},)

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
