"""Grading throughput against the kernel+imports floor, all measured in the same run.

A generated class (copies of the grading-corpus submissions, in the proportions a real class
hands in) is graded against the corpus exercise. Every submission needs at least one fresh
sandboxed kernel that imports what the exercise imports: that **floor** (start a sandboxed
kernel, run the exercise's imports, stop it) is measured first, together with the same start-up
unconfined, which shows what the sandbox itself costs. Then:

* one worker, no warm-up: seconds per submission against the floor (target within 1.1x);
* one worker with warm-up (the next kernels boot while the current submission is graded, as
  many as ``grading.kernels_ahead`` gives one worker on this machine): below the floor;
* the whole class with ``grade_batch`` on one worker per core.

The last line is ``grading: S submissions/s on W workers, R x the kernel+imports floor per
submission`` (R: wall time x workers / submissions, over the median of the floors). On a busy
machine the load changes from minute to minute, so each ratio is taken against floor samples
measured next to it.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from labsupport.course import authoring, grading
from labsupport.course.cgroups import cgroup_support
from labsupport.course.sandbox import Isolation, Limits, Sandbox, Warmup

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "grading_corpus"
SOLUTION = CORPUS / "solution.ipynb"
CLASS_SIZE = 60
SEQUENTIAL = 40  # each kind of MIX four times: the cold comparison is of means, and kernels vary
REPEATS = 5
#: The kinds of submission a real class hands in, in rough proportion.
MIX = ("correct", "correct", "correct", "renamed_function", "stub", "deleted_cells",
       "exceptions_everywhere", "duplicated_cells", "patch_checker", "subclass_liars")


def _floor_once(limits: Limits, isolation: Isolation, imports: tuple[str, ...]) -> float:
    """Seconds to start a kernel, run the exercise's imports in it, and stop it."""
    code = "\n".join(f"import {name}" for name in imports) or "pass"
    started = time.perf_counter()
    with Sandbox(limits, isolation) as box:
        box.run(code)
    return time.perf_counter() - started


def _make_class(folder: Path, size: int) -> None:
    for index in range(size):
        kind = MIX[index % len(MIX)]
        notebook = nbformat.read(CORPUS / "submissions" / f"{kind}.ipynb", as_version=4)
        nbformat.write(notebook, folder / f"student{index:03d}.ipynb")


def _one_worker(folder: Path, limits: Limits, warm: bool) -> tuple[float, float]:
    """Seconds per submission grading ``folder`` in this process, one after the other, and the
    floor measured between them (so both see the same load on a busy machine): without warm-up,
    the mean of floors alternating with the submissions; with it, the median of floors before
    and after the run."""
    exercise = authoring.load_exercise(SOLUTION)
    submissions = grading.find_submissions([SOLUTION], folder)
    imports = grading.exercise_imports([SOLUTION])
    floors, spent = [], 0.0
    if warm:
        # A warm-up only pays over a run: time the run whole, floors before and after it.
        floors += [_floor_once(limits, Isolation(), imports) for _ in range(REPEATS // 2 + 1)]
        kernels = Warmup(limits, Isolation(), imports, grading.kernels_ahead(1))
        started = time.perf_counter()
        try:
            for submission in submissions:
                grading.grade_submission(submission, exercise, limits, Isolation(), kernels)
        finally:
            kernels.close()
        spent = time.perf_counter() - started
        floors += [_floor_once(limits, Isolation(), imports) for _ in range(REPEATS // 2 + 1)]
    else:
        # Alternate a floor and a submission; compare their totals (means), so a change of load
        # on a shared machine weighs on both alike and a slow moment counts on both sides.
        for submission in submissions:
            floors.append(_floor_once(limits, Isolation(), imports))
            started = time.perf_counter()
            grading.grade_submission(submission, exercise, limits, Isolation())
            spent += time.perf_counter() - started
        return spent / len(submissions), statistics.mean(floors)
    return spent / len(submissions), statistics.median(floors)


def main() -> None:
    """Measure the floors, one worker with and without warm-up, then the whole class."""
    limits = Limits(cell_seconds=10, submission_seconds=60)
    workers = os.cpu_count() or 1
    imports = grading.exercise_imports([SOLUTION])
    confined, unconfined = [], []
    for _ in range(REPEATS):
        confined.append(_floor_once(limits, Isolation(), imports))
        unconfined.append(_floor_once(limits, Isolation(confined=False), imports))
    floor, bare = statistics.median(confined), statistics.median(unconfined)
    print(f"memory/process bound: {cgroup_support().note}")
    print(f"floor: sandboxed kernel start + imports {imports} + stop, median of {REPEATS}: "
          f"{floor:.2f} s")
    print(f"the same kernel unconfined (alternating with it): {bare:.2f} s; the sandbox costs "
          f"{floor - bare:+.2f} s per submission ({floor / bare:.2f}x)")
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        few = Path(scratch) / "few"
        few.mkdir()
        _make_class(few, SEQUENTIAL)
        cold, cold_floor = _one_worker(few, limits, warm=False)
        warm, warm_floor = _one_worker(few, limits, warm=True)
        print(f"one worker, {SEQUENTIAL} submissions, no warm-up: {cold:.2f} s per submission "
              f"= {cold / cold_floor:.2f} x the floor alternating with them ({cold_floor:.2f} s;"
              " target <= 1.1)")
        print(f"one worker, {SEQUENTIAL} submissions, warm-up: {warm:.2f} s per submission "
              f"= {warm / warm_floor:.2f} x the floor measured around them ({warm_floor:.2f} s;"
              " target < 1)")
        folder = Path(scratch) / "class"
        folder.mkdir()
        _make_class(folder, CLASS_SIZE)
        started = time.perf_counter()
        summary = grading.grade_batch([SOLUTION], folder, Path(scratch) / "out", limits,
                                      workers=workers, progress=False)
        elapsed = time.perf_counter() - started
    rate = summary.graded / elapsed
    ratio = elapsed * workers / summary.graded / statistics.median([floor, cold_floor,
                                                                    warm_floor])
    print(f"whole class: {summary.graded} submissions on {workers} workers in {elapsed:.1f} s; "
          f"grader errors: {len(summary.failed)}")
    print(f"grading: {rate:.2f} submissions/s on {workers} workers, {ratio:.2f} x the "
          "kernel+imports floor per submission")


if __name__ == "__main__":
    main()
