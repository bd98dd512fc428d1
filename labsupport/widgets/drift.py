"""Widget of lesson 02: pick a kind of drift, move its strength, watch detectors and accuracy.

A thin view over :func:`labsupport.drift.sample`, :func:`labsupport.drift.detector_table` and
:func:`labsupport.monitoring.assess`. The controls (``kind``, ``strength``) and the last
computation (``current``, ``detectors``, ``result``) are attributes, so a test can set
``explorer.strength.value = 1.0`` and read ``explorer.result.accuracy``.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import pandas as pd
from IPython.display import display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labsupport import drift, monitoring, plots


class DriftExplorer:  # pylint: disable=too-many-instance-attributes
    """Simulate one kind of drift at a chosen strength against a trained model.

    Parameters
    ----------
    model
        A classifier fitted on ``reference``.
    reference
        Rows of the simulated world the model was trained on (columns ``x1``, ``x2``, ``y``).
    seed
        Seed of the current sample; reused at every move, so only the controls change the picture.
    n_current
        Rows in the current sample.
    kind, strength
        Starting values of the controls.
    """

    def __init__(self, model: object, reference: pd.DataFrame, *, seed: int = 0,
                 n_current: int = 2000, kind: str = "covariate", strength: float = 0.0,
                 features: Sequence[str] = drift.FEATURES) -> None:
        self.model = model
        self.reference = reference
        self.settings = {"seed": seed, "n_current": n_current, "features": list(features)}
        self.kind = widgets.ToggleButtons(options=list(drift.KINDS), value=kind,
                                          description="drift")
        self.strength = widgets.FloatSlider(value=strength, min=0.0, max=1.0, step=0.05,
                                            readout_format=".2f", description="strength",
                                            continuous_update=False)
        self.output = widgets.Output()
        self.view = widgets.VBox([self.kind, self.strength, self.output])
        self.current: pd.DataFrame | None = None
        self.detectors: pd.DataFrame | None = None
        self.result: monitoring.Assessment | None = None
        self.figure: Figure | None = None
        for control in (self.kind, self.strength):
            control.observe(self.update, names="value")
        self.update()

    def compute(self) -> None:
        """Draw the current sample for the controls' values and run every check on it."""
        rng = np.random.default_rng(self.settings["seed"])
        self.current = drift.sample(self.kind.value, self.settings["n_current"], rng,
                                    self.strength.value)
        features = self.settings["features"]
        self.detectors = drift.detector_table(self.reference, self.current, features)
        self.result = monitoring.assess(self.model, self.reference, self.current,
                                        features=features, target=drift.TARGET)

    def summary(self) -> str:
        """The verdict line shown above the figure."""
        return (f"{self.kind.value} drift, strength {self.strength.value:.2f}: "
                f"model accuracy {self.result.accuracy:.3f}; P(y=1) "
                f"{self.reference[drift.TARGET].mean():.2f} -> "
                f"{self.current[drift.TARGET].mean():.2f}; {self.result.report}")

    def figure_png(self) -> bytes:
        """Reference and current histograms of every feature, as a PNG image.

        The figure is built on the first call; later calls move its histograms in place
        (:func:`labsupport.plots.redraw_reference_vs_current`), which saves building new axes.
        """
        features = self.settings["features"]
        if self.figure is None:
            self.figure = Figure(figsize=(4.5 * len(features), 3), dpi=72)
            FigureCanvasAgg(self.figure)
            self.figure.subplots_adjust(left=0.07, right=0.98, bottom=0.1, top=0.9, wspace=0.25)
            self.figure.subplots(1, len(features), squeeze=False)
        for ax, column in zip(self.figure.get_axes(), features):
            plots.redraw_reference_vs_current(ax, self.reference[column], self.current[column],
                                              title=column)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def update(self, _change: object = None) -> None:
        """Recompute, then replace what the output area shows (works with or without a kernel)."""
        self.compute()
        verdicts = self.detectors["drifted"].unstack("test")
        self.output.outputs = (
            {"output_type": "stream", "name": "stdout", "text": self.summary() + "\n"},
            {"output_type": "display_data", "metadata": {},
             "data": {"image/png": base64.b64encode(self.figure_png()).decode("ascii"),
                      "text/plain": "<reference vs current histograms>"}},
            {"output_type": "display_data", "metadata": {},
             "data": {"text/html": verdicts.to_html(), "text/plain": verdicts.to_string()}},
        )

    def _ipython_display_(self) -> None:
        display(self.view)
