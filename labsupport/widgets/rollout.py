"""Widget of lesson 06: choose a strategy and a candidate, move the split and the canary schedule.

A thin view over :func:`labsupport.rollout.build` and the strategies' ``run`` on a
:class:`labsupport.traffic.Simulator`. The controls (``strategy``, ``candidate``,
``first_share``, ``n_steps``, ``split``) and the last computation (``timeline``, ``table``)
are attributes, so a test can set ``explorer.first_share.value = 0.2`` and read
``explorer.timeline.outcome``. Every move reruns the rollout with the same seed, so only the
controls change what is shown.

A move has to feel instant (the issue asks under 50 ms at 100,000 requests), and building a
matplotlib figure from nothing costs several times the rollout itself. So the figure is built
once; a move updates its lines in place (:func:`labsupport.plots.redraw_traffic_share`,
:func:`labsupport.plots.redraw_rollout_metric`), renders it with Agg and hands the PNG bytes to
an ``ipywidgets.Image``. ``benchmarks/bench_deployment.py`` times the three parts
(:meth:`RolloutExplorer.compute`, :meth:`RolloutExplorer.draw`, :meth:`RolloutExplorer.png`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import ipywidgets as widgets
import numpy as np
import pandas as pd
from IPython.display import display
from matplotlib import image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labsupport import plots, rollout, traffic


#: Resolution of the figure: 9 x 2.6 inches at 80 dpi is a 720 x 208 pixel image.
DPI = 80
#: Rendered backgrounds kept (one per set of axis limits and labels, about 0.6 MB each).
MAX_BACKGROUNDS = 16
#: Accuracies the accuracy axis always spans: the lesson's versions answer 81-91 % right, and a
#: canary step of a few dozen users lands anywhere near them, which would otherwise move the
#: axis (and cost a whole-figure render) on many slider moves.
ACCURACY_AXIS = (0.75, 1.0)


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
        self.figure = Figure(figsize=(9, 2.6), dpi=DPI)
        FigureCanvasAgg(self.figure)
        self.figure.subplots_adjust(left=0.08, right=0.98, bottom=0.2, top=0.86, wspace=0.3)
        self.axes = tuple(self.figure.subplots(1, 2))
        self._backgrounds: dict[tuple, object] = {}
        self.image = widgets.Image(format="png")
        self.output = widgets.Output()
        self.view = widgets.VBox([self.strategy, self.candidate,
                                  widgets.HBox([self.first_share, self.n_steps]), self.split,
                                  self.image, self.output])
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

    def draw(self) -> None:
        """Move the figure's lines to the last computation and render it (Agg, in memory).

        Only the data lines and the outcome text change from one move to the next. The rest
        (frames, ticks, labels, grid, legends: most of the cost of a draw, text mostly) is
        rendered once per set of axis limits and texts, kept, and pasted back under them when
        it comes again. The time axis always spans the longest rollout the controls allow (a
        canary's baseline step and the most steps the slider gives), so moving a slider keeps
        it, and a faster rollout shows as one that ends sooner.
        """
        share_ax, metric_ax = self.axes
        step = self.timeline.step_minutes
        minutes = (self.n_steps.max + 1) * step
        plots.redraw_traffic_share(share_ax, self.timeline, minutes=minutes)
        plots.redraw_rollout_metric(metric_ax, self.timeline, "accuracy", minutes=minutes,
                                    cover=ACCURACY_AXIS)
        moving = [line for ax in self.axes for line in ax.get_lines()]
        moving.append(plots.rollout_outcome(share_ax))
        for artist in moving:
            artist.set_animated(True)  # a full draw leaves them out: they are drawn below
        canvas = self.figure.canvas
        key = tuple((ax.get_xlim(), ax.get_ylim(), ax.get_ylabel(),
                     tuple(text.get_text() for text in ax.get_legend().get_texts()))
                    for ax in self.axes)
        if key in self._backgrounds:
            canvas.restore_region(self._backgrounds[key])
        else:
            if len(self._backgrounds) >= MAX_BACKGROUNDS:
                self._backgrounds.clear()
            canvas.draw()
            self._backgrounds[key] = canvas.copy_from_bbox(self.figure.bbox)
        for artist in moving:
            artist.axes.draw_artist(artist)

    def png(self) -> bytes:
        """The rendered figure as PNG bytes (call :meth:`draw` first)."""
        buffer = io.BytesIO()
        image.imsave(buffer, np.asarray(self.figure.canvas.buffer_rgba()), format="png",
                     pil_kwargs={"compress_level": 1})
        return buffer.getvalue()

    def update(self, _change: object = None) -> None:
        """Recompute, redraw, and show the verdict, the figure and the decisions."""
        self.compute()
        self.draw()
        self.image.value = self.png()
        self.output.outputs = (
            {"output_type": "stream", "name": "stdout", "text": self.summary() + "\n"},
            {"output_type": "display_data", "metadata": {},
             "data": {"text/html": self.table.to_html(index=False),
                      "text/plain": self.table.to_string(index=False)}},
        )

    def _ipython_display_(self) -> None:
        display(self.view)
