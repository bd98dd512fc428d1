"""Widget of lesson 06: choose a strategy and a candidate, move the split and the canary schedule.

A thin view over :func:`labsupport.rollout.build`, the strategies' ``run`` on a
:class:`labsupport.traffic.Simulator` and :func:`labsupport.rollout.outcome_shares`. The controls
(``strategy``, ``candidate``, ``first_share``, ``n_steps``, ``split``, the analysis'
``max_error_rate``, ``max_latency_p99_ms``, ``max_accuracy_drop`` and ``failure_limit``, the
``seed`` and ``n_runs``) and the last computation (``timeline``, ``table``, ``shares``) are
attributes, so a test can set ``explorer.first_share.value = 0.2`` and read
``explorer.timeline.outcome``. A move reruns ``n_runs`` rollouts from ``seed``: the figure and
the decisions show the first, ``shares`` the share of each outcome over all of them (one run is
one story; the share of rollbacks is the risk). Change the seed to see another story.

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
        Initial value of the seed control.
    requests_per_step
        Requests in each step of the rollout.
    strategy
        The strategy selected at first.
    n_runs
        Initial number of rollouts the outcome shares are counted over.
    """

    def __init__(self, simulator: traffic.Simulator, baseline: str,
                 candidates: Mapping[str, str], *, seed: int = 0,
                 requests_per_step: int = 2000, strategy: str = "canary",
                 n_runs: int = 10) -> None:
        if not candidates:
            raise ValueError("give at least one candidate: {label: version name}.")
        self.simulator, self.baseline = simulator, baseline
        self.candidates = dict(candidates)
        self.settings = {"requests_per_step": requests_per_step}
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
        defaults = {c.metric: c.at_most for c in rollout.DEFAULT_ANALYSIS.conditions}
        self.max_error_rate = widgets.FloatSlider(
            value=defaults["error_rate"], min=0.0, max=0.1, step=0.005, readout_format=".1%",
            description="max errors", continuous_update=False)
        self.max_latency_p99_ms = widgets.FloatSlider(
            value=defaults["latency_p99_ms"], min=50.0, max=500.0, step=10.0,
            readout_format=".0f", description="max p99 ms", continuous_update=False)
        self.max_accuracy_drop = widgets.FloatSlider(
            value=defaults["accuracy_drop"], min=0.0, max=0.2, step=0.01, readout_format=".2f",
            description="max acc. drop", continuous_update=False)
        self.failure_limit = widgets.IntSlider(
            value=rollout.DEFAULT_ANALYSIS.failure_limit, min=0, max=4,
            description="failure limit", continuous_update=False)
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=2 ** 31 - 1,
                                           description="seed")
        self.n_runs = widgets.IntSlider(value=n_runs, min=1, max=50, description="rollouts",
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
                                  widgets.HBox([self.max_error_rate, self.max_latency_p99_ms]),
                                  widgets.HBox([self.max_accuracy_drop, self.failure_limit]),
                                  widgets.HBox([self.seed, self.n_runs]),
                                  self.image, self.output])
        self.timeline: rollout.Timeline | None = None
        self.table: pd.DataFrame | None = None
        self.shares: pd.Series | None = None
        for control in (self.strategy, self.candidate, self.first_share, self.n_steps,
                        self.split, self.max_error_rate, self.max_latency_p99_ms,
                        self.max_accuracy_drop, self.failure_limit, self.seed, self.n_runs):
            control.observe(self.update, names="value")
        self.update()

    def analysis(self) -> rollout.Analysis:
        """The canary's (and blue-green's post-switch) analysis the controls set."""
        return rollout.Analysis((
            rollout.Condition("error_rate", at_most=self.max_error_rate.value),
            rollout.Condition("latency_p99_ms", at_most=self.max_latency_p99_ms.value),
            rollout.Condition("accuracy_drop", at_most=self.max_accuracy_drop.value)),
            failure_limit=self.failure_limit.value)

    def compute(self) -> None:
        """Build the strategy from the controls and run it ``n_runs`` times from ``seed``."""
        strategy = rollout.build(self.strategy.value, first_share=self.first_share.value,
                                 n_steps=self.n_steps.value, treatment_share=self.split.value,
                                 requests_per_step=self.settings["requests_per_step"],
                                 analysis=self.analysis())
        rng = np.random.default_rng(self.seed.value)
        candidate = self.candidates[self.candidate.value]
        runs = [strategy.run(self.simulator, self.baseline, candidate, rng)
                for _ in range(self.n_runs.value)]
        self.timeline = runs[0]
        self.shares = rollout.outcome_shares(runs)
        self.table = self.timeline.decision_table()

    def summary(self) -> str:
        """The verdict line: outcome, users affected, bad responses, time to full rollout."""
        timeline = self.timeline
        minutes = timeline.minutes_to_full
        full = "never" if np.isnan(minutes) else f"after {minutes:g} min"
        shares = ", ".join(f"{outcome} {share:.0%}" for outcome, share in self.shares.items()
                           if share > 0)
        return (f"{timeline.strategy} of {self.candidate.value} ({timeline.candidate}), seed "
                f"{self.seed.value}: {timeline.outcome}; {timeline.exposed[timeline.candidate]} "
                f"users answered by the candidate, {timeline.bad_served} bad responses served "
                f"by it; full rollout {full}. Over {self.n_runs.value} rollouts: {shares}")

    def draw(self) -> None:
        """Move the figure's lines to the last computation and render it (Agg, in memory).

        Only the data lines and the outcome text change from one move to the next. The rest
        (frames, ticks, labels, grid, legends: most of the cost of a draw, text mostly) is
        rendered once per set of axis limits and texts, kept, and pasted back under them when
        it comes again. The time axis always spans the longest rollout the controls allow (the
        most canary steps the slider gives, and a rollback's step of the baseline), so moving a
        slider keeps it, and a faster rollout shows as one that ends sooner.
        """
        share_ax, metric_ax = self.axes
        step = self.timeline.step_minutes
        minutes = self.n_steps.max * step
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
