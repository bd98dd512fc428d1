"""Traffic simulator speed (lesson 06): the chapter's RF(50) and RF(100), 100,000 requests.

Measures, in the same run:

* the chapter's canary loop, which calls ``predict`` on one row per request, timed on a few
  thousand requests and compared per request with the simulator (target: at least 100x faster);
* the floor: the two models' own batch ``predict`` over the same distinct inputs (the users'
  rows), which the simulator cannot beat (target: within 1.2x of it);
* the lesson's widget: one slider move reruns a canary of 100,000 requests, redraws and
  encodes the PNG it shows (target: under 50 ms; the median and the slowest of moves of both
  canary sliders, every value a first time), and each of those parts alone;
* ten million requests streamed in chunks of one million, in a fresh process, with its peak
  resident memory (target: under 1 GB).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

from labsupport import traffic

N_REQUESTS = 100_000
N_USERS = 5_000
N_LOOP = 2_000
N_STREAM = 10_000_000
REPEATS = 3
#: Alternating runs of the simulator and the floor, whose medians are compared.
ROUNDS = 15

STREAM_PROGRAM = """
import json, resource, sys, time
import numpy as np
from labsupport import traffic
world = traffic.lesson_world(0, n_users=5000, n_train=800)
simulator = world.simulator()
started = time.perf_counter()
summary = simulator.stream({"v1": 0.5, "v2": 0.5}, int(sys.argv[1]), np.random.default_rng(0),
                           chunk_size=1_000_000)
seconds = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb,
                  "requests": int(summary.metrics["requests"].sum())}))
"""


def _median_seconds(function, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _chapter_models():
    X, y = make_classification(n_samples=800 + N_USERS, n_features=20, random_state=42)
    old = RandomForestClassifier(n_estimators=50, random_state=42).fit(X[:800], y[:800])
    new = RandomForestClassifier(n_estimators=100, random_state=42).fit(X[:800], y[:800])
    return old, new, X[800:], y[800:]


def _per_request_loop(old, new, X, n_requests: int) -> None:
    """The chapter's CanaryDeployer: a coin and one predict call per request."""
    rng = np.random.default_rng(0)
    for _ in range(n_requests):
        index = int(rng.integers(0, len(X)))
        model = new if rng.random() < 0.5 else old
        model.predict(X[index:index + 1])


def _widget_ms() -> dict[str, float]:
    """One slider move end to end, and its parts, in milliseconds (medians)."""
    from labsupport.widgets import rollout as rollout_widgets  # pylint: disable=import-outside-toplevel
    world = traffic.lesson_world(0, n_users=N_USERS, n_train=800)
    explorer = rollout_widgets.RolloutExplorer(
        world.simulator(), "v1", {"good": "v2", "broken": "v2-broken"}, seed=0,
        requests_per_step=N_REQUESTS // 5, n_runs=1)  # five canary steps; one rollout a move
    times = []
    # both sliders of the canary, each value a first time: a move must never need a new figure
    moves = [(explorer.first_share, value) for value in (0.1, 0.05, 0.2, 0.05, 0.1, 0.05)] + \
        [(explorer.n_steps, value) for value in (3, 6, 8, 2, 5)]
    for slider, value in moves:
        started = time.perf_counter()
        slider.value = value
        times.append(time.perf_counter() - started)
    assert sum(explorer.timeline.live(v)["requests"].sum() for v in ("v1", "v2")) >= \
        N_REQUESTS - 10
    backgrounds = len(explorer._backgrounds)  # pylint: disable=protected-access
    # the parts of one move: rerun the rollout, move the lines and render, encode the PNG;
    # "cold" renders the whole figure, as the first move to new axis limits does
    parts = {"compute": explorer.compute, "draw": explorer.draw, "png": explorer.png,
             "cold draw": lambda: (explorer._backgrounds.clear(),  # pylint: disable=protected-access
                                   explorer.draw())}
    found = {name: 1000 * _median_seconds(part, repeats=7) for name, part in parts.items()}
    return {"move": 1000 * statistics.median(times), "slowest": 1000 * max(times), **found,
            "backgrounds": backgrounds, "moves": len(times)}


def main() -> None:
    """Time the simulator against the loop and the floor; the widget; the 10M stream."""
    old, new, X, y = _chapter_models()
    population = traffic.Population(np.arange(N_USERS), X, y)
    versions = [traffic.Version("v1", old), traffic.Version("v2", new)]

    def simulate():
        simulator = traffic.Simulator(population, versions)  # fresh: predicts and hashes again
        return simulator.serve({"v1": 0.5, "v2": 0.5}, N_REQUESTS, np.random.default_rng(0))

    served = simulate()
    assert served.n_requests == N_REQUESTS
    # Alternate the two, so a change of load on a shared machine hits both alike.
    pairs = [(_median_seconds(simulate, 1), _median_seconds(lambda: (old.predict(X),
                                                                      new.predict(X)), 1))
             for _ in range(ROUNDS)]
    simulator_s = statistics.median(pair[0] for pair in pairs)
    floor_s = statistics.median(pair[1] for pair in pairs)
    r2 = statistics.median(pair[0] / pair[1] for pair in pairs)  # each run against its neighbour
    loop_s = _median_seconds(lambda: _per_request_loop(old, new, X, N_LOOP), repeats=1)
    loop_per_request = loop_s / N_LOOP
    r1 = loop_per_request * N_REQUESTS / simulator_s
    widget = _widget_ms()
    done = subprocess.run([sys.executable, "-c", STREAM_PROGRAM, str(N_STREAM)],
                          capture_output=True, text=True, check=True, timeout=1200)
    stream = json.loads(done.stdout.strip().splitlines()[-1])
    assert stream["requests"] == N_STREAM

    print(f"models: RandomForest(50) and RandomForest(100); {N_USERS:,} users (distinct "
          f"inputs), {N_REQUESTS:,} requests, median of {ROUNDS} alternating runs")
    print(f"per-request predict loop   {loop_per_request * 1000:7.3f} ms a request "
          f"(timed on {N_LOOP:,}) -> {loop_per_request * N_REQUESTS:7.1f} s for {N_REQUESTS:,}")
    print(f"simulator                  {simulator_s:7.3f} s   {r1:7.0f}x faster than the loop")
    print(f"batch-predict floor        {floor_s:7.3f} s   simulator = {r2:.2f}x the floor "
          "(median of the runs' ratios)")
    print(f"widget, one slider move    {widget['move']:7.1f} ms  (median of {widget['moves']} "
          f"moves of both canary sliders, slowest {widget['slowest']:.1f} ms; "
          f"{N_REQUESTS:,} requests rerun): rollout {widget['compute']:.1f} ms, redraw "
          f"{widget['draw']:.1f} ms (whole figure {widget['cold draw']:.1f} ms, done for "
          f"{widget['backgrounds']:.0f} set(s) of axis limits), PNG {widget['png']:.1f} ms")
    print(f"stream of {N_STREAM:,}     {stream['seconds']:7.1f} s, peak resident memory "
          f"{stream['peak_mb']:.0f} MB (whole process)")
    print(f"deployment: simulator {r1:.0f}x the per-request loop, {r2:.2f}x the batch-predict "
          f"floor, widget update {widget['move']:.0f} ms at {N_REQUESTS} requests, peak "
          f"{stream['peak_mb']:.0f} MB at {N_STREAM}")


if __name__ == "__main__":
    main()
