"""Widget of lesson 07: simulate an A/B traffic split and read it the way the lesson does.

A thin view over :func:`labsupport.experiments.run_experiment` (which calls
:mod:`labsupport.abtest`) and, for "several seeds' worth", :func:`labsupport.experiments.aa_runs`.
The controls (``seed``, ``split``, ``baseline``, ``effect``, ``n_users``, ``n_runs`` and the
``aa_button``) and the last computations (``run``, ``aa``) are attributes, so a test can set
``explorer.split.value = 0.55`` and read ``explorer.run.srm.mismatch``, or call
``explorer.aa_button.click()`` and read ``explorer.aa.share_at_end``.
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


class ABTestExplorer:  # pylint: disable=too-many-instance-attributes  # controls tests move
    """Run one simulated experiment for the controls' values; show the p-value path and verdicts.

    The "A/A runs" button repeats the experiment ``n_runs`` times with no true effect and shows
    the share rejected by the planned test at the end (about alpha when the test is right) and at
    some look of the path (more: the peeking trap).

    Parameters
    ----------
    seed
        Seed of the simulated conversions (a control; the hash fixes each user's arm); reused at
        every move, so only the controls change the picture.
    split
        Share of users the traffic split actually sends to the treatment (the design asks for
        ``planned_share``; any other value is a bug the SRM check should catch).
    baseline, effect
        Control's conversion rate and the treatment's true difference to it.
    n_users
        Users in the experiment.
    planned_share, alpha
        The design.
    n_runs
        A/A runs behind the button.
    """

    def __init__(self, *, seed: int = 0, split: float = 0.5, baseline: float = 0.1,
                 effect: float = 0.01, n_users: int = 20_000, planned_share: float = 0.5,
                 alpha: float = 0.05, n_runs: int = 1000) -> None:
        self.settings = {"planned_share": planned_share, "alpha": alpha}
        slider = {"continuous_update": False, "style": {"description_width": "initial"}}
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed",
                                           style=slider["style"])
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
        self.n_runs = widgets.IntSlider(value=n_runs, min=10, max=5000, step=10,
                                        description="A/A runs", **slider)
        self.aa_button = widgets.Button(description="run the A/A experiments")
        self.output = widgets.Output()
        self.aa_output = widgets.Output()
        self.view = widgets.VBox([self.seed, self.split, self.baseline, self.effect, self.n_users,
                                  self.output,
                                  widgets.HBox([self.n_runs, self.aa_button]), self.aa_output])
        self.run: experiments.ExperimentRun | None = None
        self.aa: experiments.AARuns | None = None
        self.figure: Figure | None = None
        self.ax = None
        for control in (self.seed, self.split, self.baseline, self.effect, self.n_users):
            control.observe(self.update, names="value")
        self.n_runs.observe(self.update_aa, names="value")
        self.aa_button.on_click(self.update_aa)
        self.update()

    def _design(self) -> dict:
        """The experiment the controls describe, as both simulations take it (effect aside)."""
        return {"n_users": self.n_users.value, "rate_control": self.baseline.value,
                "treatment_share": self.split.value,
                "planned_share": self.settings["planned_share"], "alpha": self.settings["alpha"]}

    def compute(self) -> experiments.ExperimentRun:
        """Simulate and analyse the experiment for the controls' current values."""
        self.run = experiments.run_experiment(np.random.default_rng(self.seed.value),
                                              effect=self.effect.value, **self._design())
        return self.run

    def compute_aa(self) -> experiments.AARuns:
        """Repeat the experiment ``n_runs`` times with no true effect (the effect control aside)."""
        self.aa = experiments.aa_runs(np.random.default_rng(self.seed.value),
                                      n_runs=self.n_runs.value, **self._design())
        return self.aa

    def aa_summary(self) -> str:
        """The lines shown under the A/A button."""
        aa = self.aa
        low, high = aa.expected_range()
        lines = (f"{aa.n_runs:,} A/A runs of {aa.n_users:,} users (true effect 0):\n"
                 f"rejected by the test at the end: {aa.rejected_at_end} ({aa.share_at_end:.1%}); "
                 f"a right test at alpha {aa.alpha:g} rejects {low} to {high} of them "
                 f"(exact binomial range, 99.9 %)\n"
                 f"rejected at some look of the path (peeking): {aa.rejected_when_peeking} "
                 f"({aa.share_when_peeking:.1%})\n")
        if aa.srm_mismatch:
            lines += "the split fails the SRM check in every run: none of them may be read\n"
        return lines

    def update_aa(self, _change: object = None) -> None:
        """Run the A/A experiments for the controls' values and show their shares."""
        try:
            self.compute_aa()
        except ValueError as error:
            self.aa = None
            self.aa_output.outputs = ({"output_type": "stream", "name": "stderr",
                                       "text": f"{error}\n"},)
            return
        self.aa_output.outputs = ({"output_type": "stream", "name": "stdout",
                                   "text": self.aa_summary()},)

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
        else:
            self.output.outputs = (
                {"output_type": "stream", "name": "stdout", "text": self.summary()},
                {"output_type": "display_data", "metadata": {},
                 "data": {"image/png": base64.b64encode(self.figure_png()).decode("ascii"),
                          "text/plain": "<p-value path>"}},
            )
        if self.aa_output.outputs:  # the A/A runs were asked for: keep them in step
            self.update_aa()

    def _ipython_display_(self) -> None:
        display(self.view)
