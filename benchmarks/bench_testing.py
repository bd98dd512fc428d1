"""Grading a test suite by the bugs it catches: time per version against a bare pytest run.

Exercise 03's grader runs a student's test file once per version of the function under test
(the correct ones and every hidden bug), each run in a fresh sandbox of its own
(``labsupport.course.commandbox``) with the outcome plugin loaded, the version served from a
process of its own (``labsupport.course.suites``). The floor is what one version
cannot cost less than: one bare ``python -m pytest -q`` of the same test file against the given
function in a plain subprocess, measured in the same run (median of a few). The solution's suite
for question 1 is graded against the solution's own versions, so every bug is run.
Target: within 2x the floor per version.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import nbformat

from labsupport import testing
from labsupport.course import commandbox, proxy, suites
from labsupport.course.sandbox import Isolation, Limits, bubblewrap_problem

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "03_testing_ml_code.ipynb"
REPEATS = 3
FLOOR_REPEATS = 5


def _suite_and_versions() -> tuple[str, tuple[suites.Version, ...]]:
    """Question 1's model suite (the answer cell) and hidden versions (the hidden-test cell)."""
    answer: dict = {}
    hidden: dict = {}
    for cell in nbformat.read(SOLUTION, as_version=4).cells:
        meta = cell.metadata.get("labsupport", {})
        if meta.get("question") != "q1":
            continue
        if "points" in meta:
            exec(compile(cell.source, "answer", "exec"), answer)  # pylint: disable=exec-used
        elif "hidden-tests" in cell.metadata.get("tags", []):
            exec(compile(cell.source, "hidden", "exec"), hidden)  # pylint: disable=exec-used
    return answer["SUITE_Q1"], hidden["VERSIONS"]


def _seconds(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    """Time bare pytest runs and full gradings, alternating; print seconds and the ratio."""
    if not SOLUTION.is_file():
        print("testing: skipped (solutions/ is withheld in a student copy)")
        return
    suite, versions = _suite_and_versions()
    given = next(v for v in versions if v.correct)
    files = {"features.py": testing.normalise_source(given.source), "test_suite.py": suite}
    bare_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_suite.py"]
    problem = bubblewrap_problem()
    executor = proxy.SandboxedCommand(Isolation(confined=problem is None))
    floors, gradings = [], []
    grade = None
    for _ in range(REPEATS):
        floors += [_seconds(lambda: testing.run_locally(bare_args, files, 60,
                                                        testing.RUN_ENVIRONMENT))
                   for _ in range(FLOOR_REPEATS // REPEATS + 1)]
        suites.forget_runs()
        started = time.perf_counter()
        grade = suites.grade_suite(suite, versions, module="features", timeout=60,
                                    execute=executor)
        gradings.append(time.perf_counter() - started)
    assert grade is not None and grade.passes_correct and grade.n_caught == len(versions) - 2
    one_sandbox = statistics.median(_seconds(lambda: commandbox.run_command(
        ["-c", "pass"], {}, executor_limits())) for _ in range(3))
    floor, total = statistics.median(floors), statistics.median(gradings)
    per_version = total / len(versions)
    print(f"sandbox: {'bubblewrap' if problem is None else 'UNCONFINED (' + problem + ')'}; "
          f"{len(versions)} versions ({sum(v.correct for v in versions)} correct); median of "
          f"{REPEATS} gradings, {len(floors)} bare runs")
    print(f"bare pytest run of the suite (floor)   {floor:6.3f} s")
    print(f"empty command in a fresh sandbox        {one_sandbox:6.3f} s")
    print(f"grading, all versions                   {total:6.3f} s")
    print(f"grading, per version                    {per_version:6.3f} s")
    print(f"testing: {len(versions)} versions in {total:.1f} s, {per_version / floor:.2f}x "
          "the bare pytest floor")


def executor_limits() -> Limits:
    """Limits like those of one sandboxed run in the grader (:class:`proxy.SandboxedCommand`)."""
    return Limits(cell_seconds=60, submission_seconds=120, memory_bytes=1024**3, processes=64)
