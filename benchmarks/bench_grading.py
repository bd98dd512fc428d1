"""Grading throughput: a generated class of 100 submissions against the grading-corpus exercise.

Prints submissions per second and, as the in-run baseline, the cost of starting and stopping
one empty sandboxed kernel (what every submission pays at least once: kernels are never shared
between students). ``seconds per submission / kernel start-up`` says how much beyond the
unavoidable start-up the grader spends.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from labsupport.course import grading
from labsupport.course.sandbox import Isolation, Limits, Sandbox

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "grading_corpus"
CLASS_SIZE = 100
#: The kinds of submission a real class hands in, in rough proportion.
MIX = ("correct", "correct", "correct", "renamed_function", "stub", "deleted_cells",
       "exceptions_everywhere", "duplicated_cells", "patch_checker", "subclass_liars")


def _kernel_start_stop(limits: Limits, repeats: int = 5) -> float:
    """Median seconds to start an empty sandboxed kernel, check it answers, and stop it."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with Sandbox(limits, Isolation()) as box:
            box.run("pass")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _make_class(folder: Path) -> None:
    for index in range(CLASS_SIZE):
        kind = MIX[index % len(MIX)]
        notebook = nbformat.read(CORPUS / "submissions" / f"{kind}.ipynb", as_version=4)
        nbformat.write(notebook, folder / f"student{index:03d}.ipynb")


def main() -> None:
    """Grade the generated class with one worker per core; print the figures."""
    limits = Limits(cell_seconds=10, submission_seconds=60)
    workers = os.cpu_count() or 1
    baseline = _kernel_start_stop(limits)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        folder = Path(scratch) / "submissions"
        folder.mkdir()
        _make_class(folder)
        out = Path(scratch) / "out"
        started = time.perf_counter()
        summary = grading.grade_batch([CORPUS / "solution.ipynb"], folder, out, limits,
                                      workers=workers, progress=False)
        elapsed = time.perf_counter() - started
        shutil.rmtree(out)
    rate = summary.graded / elapsed
    per_submission = elapsed * workers / summary.graded
    print(f"kernel start+stop (baseline, median of 5): {baseline:.2f} s")
    print(f"graded {summary.graded} submissions on {workers} workers in {elapsed:.1f} s: "
          f"{rate:.2f} submissions/s")
    print(f"seconds per submission per worker: {per_submission:.2f} "
          f"= {per_submission / baseline:.2f} x the kernel start-up")
    print(f"grader errors: {len(summary.failed)}")


if __name__ == "__main__":
    main()
