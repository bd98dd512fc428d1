"""Widget of lesson 07: simulate an A/B traffic split and read it the way the lesson does.

A thin view over :func:`labsupport.experiments.run_experiment` (which calls
:mod:`labsupport.abtest`). The controls (``split``, ``baseline``, ``effect``, ``n_users``) and the
last computation (``run``) are attributes, so a test can set ``explorer.split.value = 0.55`` and
read ``explorer.run.srm.mismatch``.
"""

from __future__ import annotations

import base64
import io

import ipywidgets as widgets
from IPython.display import display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from labsupport import experiments, plots


class ABTestExplorer:
    """Run one simulated experiment for the controls' values; show the p-value path and verdicts.

    Parameters
    ----------
    seed
        Seed of the simulated users; reused at every move, so only the controls change the
        picture.
    split
        Share of users the traffic split actually sends to the treatment (the design asks for
        ``planned_share``; any other value is a bug the SRM check should catch).
    baseline, effect
        Control's conversion rate and the treatment's true difference to it.
    n_users
        Users in the experiment.
    planned_share, alpha
        The design.
    """

    def __init__(self, *, seed: int = 0, split: float = 0.5, baseline: float = 0.1,
                 effect: float = 0.01, n_users: int = 20_000, planned_share: float = 0.5,
                 alpha: float = 0.05) -> None:
        self.settings = {"seed": seed, "planned_share": planned_share, "alpha": alpha}
        slider = {"continuous_update": False, "style": {"description_width": "initial"}}
        self.split = widgets.FloatSlider(value=split, min=0.3, max=0.7, step=0.005,
                                         readout_format=".3f",
                                         description="share sent to treatment", **slider)
        self.baseline = widgets.FloatSlider(value=baseline, min=0.01, max=0.5, step=0.01,
                                            readout_format=".2f", description="baseline rate",
                                            **slider)
        self.effect = widgets.FloatSlider(value=effect, min=-0.05, max=0.05, step=0.001,
                                          readout_format="+.3f", description="true effect",
                                          **slider)
        self.n_users = widgets.IntSlider(value=n_users, min=1000, max=200_000, step=1000,
                                         description="users", **slider)
        self.output = widgets.Output()
        self.view = widgets.VBox([self.split, self.baseline, self.effect, self.n_users,
                                  self.output])
        self.run: experiments.ExperimentRun | None = None
        self.figure: Figure | None = None
        self.ax = None
        for control in (self.split, self.baseline, self.effect, self.n_users):
            control.observe(self.update, names="value")
        self.update()

    def compute(self) -> experiments.ExperimentRun:
        """Simulate and analyse the experiment for the controls' current values."""
        self.run = experiments.run_experiment(
            np.random.default_rng(self.settings["seed"]), n_users=self.n_users.value,
            rate_control=self.baseline.value, effect=self.effect.value,
            treatment_share=self.split.value, planned_share=self.settings["planned_share"],
            alpha=self.settings["alpha"])
        return self.run

    def summary(self) -> str:
        """The verdict lines shown above the figure."""
        run = self.run
        return (f"control {run.test.rate_control:.4f} vs treatment {run.test.rate_treatment:.4f} "
                f"on {run.srm.counts[0]:,} / {run.srm.counts[1]:,} users\n"
                f"SRM check: p = {run.srm.p_value:.3g} -> "
                f"{'MISMATCH' if run.srm.mismatch else 'split as designed'}\n"
                f"power of this design for the true effect: {run.power:.2f}\n"
                f"decision: {run.decision}\n")

    def figure_png(self) -> bytes:
        """The p-value path as a PNG image.

        The figure is built on the first call and only its path is moved afterwards
        (:func:`labsupport.plots.redraw_p_value_path`): a slider move then costs a third of
        building a new figure.
        """
        if self.figure is None:
            self.figure = Figure(figsize=(7, 3), dpi=72)
            FigureCanvasAgg(self.figure)
            self.figure.subplots_adjust(left=0.12, right=0.98, bottom=0.18, top=0.9)
            self.ax = self.figure.add_subplot()
            self.ax.set_title("what an analyst who peeks sees")
        plots.redraw_p_value_path(self.ax, self.run.users_seen, self.run.p_values,
                                  alpha=self.settings["alpha"])
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def update(self, _change: object = None) -> None:
        """Recompute, then replace what the output area shows (works with or without a kernel)."""
        try:
            self.compute()
        except ValueError as error:  # e.g. baseline + effect outside (0, 1)
            self.output.outputs = ({"output_type": "stream", "name": "stderr",
                                    "text": f"{error}\n"},)
            return
        self.output.outputs = (
            {"output_type": "stream", "name": "stdout", "text": self.summary()},
            {"output_type": "display_data", "metadata": {},
             "data": {"image/png": base64.b64encode(self.figure_png()).decode("ascii"),
                      "text/plain": "<p-value path>"}},
        )

    def _ipython_display_(self) -> None:
        display(self.view)
