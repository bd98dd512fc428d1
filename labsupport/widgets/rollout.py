"""Widget of lesson 06: choose a strategy and a candidate, move the split and the canary schedule.

A thin view over :func:`labsupport.rollout.build` and the strategies' ``run`` on a
:class:`labsupport.traffic.Simulator`. The controls (``strategy``, ``candidate``,
``first_share``, ``n_steps``, ``split``) and the last computation (``timeline``, ``table``)
are attributes, so a test can set ``explorer.first_share.value = 0.2`` and read
``explorer.timeline.outcome``. Every move reruns the rollout with the same seed, so only the
controls change what is shown.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import ipywidgets as widgets
import numpy as np
import pandas as pd
from IPython.display import display
from matplotlib.figure import Figure

from labsupport import plots, rollout, traffic


class RolloutExplorer:  # pylint: disable=too-many-instance-attributes
    """Run one strategy for one candidate on the simulator, live.

    Parameters
    ----------
    simulator
        The simulated production (its versions include the baseline and every candidate).
    baseline
        The version users have today.
    candidates
        Label shown on the button -> version name (e.g. ``{"good": "v2", "broken": "v2-oom"}``).
    seed
        Seed of every run.
    requests_per_step
        Requests in each step of the rollout.
    """

    def __init__(self, simulator: traffic.Simulator, baseline: str,
                 candidates: Mapping[str, str], *, seed: int = 0,
                 requests_per_step: int = 2000, strategy: str = "canary") -> None:
        if not candidates:
            raise ValueError("give at least one candidate: {label: version name}.")
        self.simulator, self.baseline = simulator, baseline
        self.candidates = dict(candidates)
        self.settings = {"seed": seed, "requests_per_step": requests_per_step}
        self.strategy = widgets.ToggleButtons(options=list(rollout.STRATEGIES), value=strategy,
                                              description="strategy")
        self.candidate = widgets.ToggleButtons(options=list(self.candidates),
                                               description="candidate")
        self.first_share = widgets.FloatSlider(value=0.05, min=0.01, max=0.5, step=0.01,
                                               readout_format=".0%", description="canary 1st",
                                               continuous_update=False)
        self.n_steps = widgets.IntSlider(value=5, min=2, max=8, description="canary steps",
                                         continuous_update=False)
        self.split = widgets.FloatSlider(value=0.5, min=0.05, max=0.95, step=0.05,
                                         readout_format=".0%", description="A/B treatment",
                                         continuous_update=False)
        self.output = widgets.Output()
        self.view = widgets.VBox([self.strategy, self.candidate,
                                  widgets.HBox([self.first_share, self.n_steps]), self.split,
                                  self.output])
        self.timeline: rollout.Timeline | None = None
        self.table: pd.DataFrame | None = None
        for control in (self.strategy, self.candidate, self.first_share, self.n_steps,
                        self.split):
            control.observe(self.update, names="value")
        self.update()

    def compute(self) -> None:
        """Build the strategy from the controls and run it (same seed every time)."""
        strategy = rollout.build(self.strategy.value, first_share=self.first_share.value,
                                 n_steps=self.n_steps.value, treatment_share=self.split.value,
                                 requests_per_step=self.settings["requests_per_step"])
        rng = np.random.default_rng(self.settings["seed"])
        self.timeline = strategy.run(self.simulator, self.baseline,
                                     self.candidates[self.candidate.value], rng)
        self.table = self.timeline.decision_table()

    def summary(self) -> str:
        """The verdict line: outcome, users affected, bad responses, time to full rollout."""
        timeline = self.timeline
        minutes = timeline.minutes_to_full
        full = "never" if np.isnan(minutes) else f"after {minutes:g} min"
        return (f"{timeline.strategy} of {self.candidate.value} ({timeline.candidate}): "
                f"{timeline.outcome}; {timeline.exposed[timeline.candidate]} users answered by "
                f"the candidate, {timeline.bad_served} bad responses served by it; "
                f"full rollout {full}")

    def figure_png(self) -> bytes:
        """Traffic share and accuracy over the rollout, as a PNG image."""
        figure = Figure(figsize=(9, 2.6))
        figure.subplots_adjust(left=0.08, right=0.98, bottom=0.2, top=0.95, wspace=0.3)
        share_ax, metric_ax = figure.subplots(1, 2)
        plots.traffic_share(share_ax, self.timeline)
        plots.rollout_metric(metric_ax, self.timeline, "accuracy")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=60)
        return buffer.getvalue()

    def update(self, _change: object = None) -> None:
        """Recompute, then replace what the output area shows (works with or without a kernel)."""
        self.compute()
        self.output.outputs = (
            {"output_type": "stream", "name": "stdout", "text": self.summary() + "\n"},
            {"output_type": "display_data", "metadata": {},
             "data": {"image/png": base64.b64encode(self.figure_png()).decode("ascii"),
                      "text/plain": "<traffic share and accuracy over the rollout>"}},
            {"output_type": "display_data", "metadata": {},
             "data": {"text/html": self.table.to_html(index=False),
                      "text/plain": self.table.to_string(index=False)}},
        )

    def _ipython_display_(self) -> None:
        display(self.view)
