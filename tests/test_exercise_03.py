"""Exercise 03 graded for real: a student's test suite earns by the hidden bugs it catches.

Four submissions are built from the generated exercise and graded together by
``grading.grade_batch`` (each notebook in its own sandboxed kernel; every run of a student's suite
against a version of the function in a fresh sandbox of its own, the version served from a
process of its own):

* the solution: every point (5 + 5);
* a partial one: question 1 scales the data by itself (the declared wrong answer: mean 0, std 1,
  NaN kept, X never differs from the reference), so it passes the public test and keeps the
  promises on NaN in the reference, n - 1 and NaN in X, but not the statistics from the
  reference (with one row or several), the constant column or the two shape errors: 4 of 9
  tests, under half; question 2 checks valid rows and values on the bounds with the default
  index (the bounds promise only: 1 of 9; on a RangeIndex labels are positions, so it misses
  the public sample bug);
* a crafty one: question 1 imports the lab's own ``standardize`` and compares with it on random
  inputs (the sandbox has no such module: it fails on the correct versions, 0); question 2 hangs
  (0, and the grading goes on: the status is ``ok``);
* a careless one: question 1 compares floats with exact ``==`` (it passes on the given function,
  but the hidden rewrite, which the public test runs too, differs in the last digits: 0);
  question 2 reads the bytecode (``__code__``: the stand-in it imports has none, 0).

Each attack earns no more than its honest twin (the solution) and under half of its question.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import nbformat
import pytest

from labsupport.course import authoring, gradebook, grading
from labsupport.course.sandbox import DEFAULT_UID_BASE, Limits
from tests.course_notebooks import solution_answers, submission
from tests.sandbox_support import require_bubblewrap

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "03_testing_ml_code.ipynb"
EXERCISE = ROOT / "exercises" / "03_testing_ml_code.ipynb"
LIMITS = Limits(cell_seconds=60, submission_seconds=400, memory_bytes=2 * 1024**3,
                processes=64, interrupt_grace_seconds=2)

pytestmark = pytest.mark.skipif(not SOLUTION.is_file(),
                                reason="student copy of the lab: solutions/ is withheld")

PARTIAL_Q2 = '''
SUITE_Q2 = """
import pandas as pd

from checks import invalid_rows

BOUNDS = {"age": (18, 120)}


def test_valid_rows_are_not_flagged():
    assert invalid_rows(pd.DataFrame({"age": [30, 50]}), BOUNDS) == []


def test_values_on_the_bounds_are_valid():
    assert invalid_rows(pd.DataFrame({"age": [18, 120]}), BOUNDS) == []
"""
'''
HANGING_Q2 = '''
SUITE_Q2 = """
import time


def test_waits_forever():
    time.sleep(10_000)
"""
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[dict[str, dict[str, str]], Path]:
    """The three submissions graded once: student -> row of grades.csv, and the output folder."""
    require_bubblewrap()
    answers, wrong = solution_answers(SOLUTION)

    def declared(words: str) -> str:
        (code,) = [code for described, code in wrong.items() if words in described]
        return code

    folder = tmp_path_factory.mktemp("submitted")
    for student, chosen in (
            ("solution", answers),
            ("partial", {"q1": declared("scales the data by itself"), "q2": PARTIAL_Q2}),
            ("crafty", {"q1": declared("imports the lab's own standardize"), "q2": HANGING_Q2}),
            ("careless", {"q1": declared("exact =="), "q2": declared("__code__")})):
        nbformat.write(submission(EXERCISE, chosen), folder / f"{student}.ipynb")
    out = tmp_path_factory.mktemp("graded")
    # A test session of its own on a shared machine takes uids no other session uses.
    uid_base = DEFAULT_UID_BASE + 20_000 + 16 * (os.getpid() % 100_000)
    summary = grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=2, progress=False,
                                  uid_base=uid_base)
    assert not summary.failed
    with open(out / "grades.csv", encoding="utf-8", newline="") as stream:
        return {row["student"]: row for row in csv.DictReader(stream)}, out


@pytest.mark.parametrize("student, q1, q2", [
    ("solution", 5, 5),         # passes on every correct version, catches every bug
    ("partial", 5 * 4 / 9, 5 / 9),  # keeps some promises, not the ones that need the skill
    ("crafty", 0, 0),           # no reference to import; a hang is contained
    ("careless", 0, 0),         # exact ==: fails on the rewrite; no bytecode to read
])
def test_points_come_from_the_bugs_caught(graded, student, q1, q2):
    grades, _ = graded
    row = grades[student]
    assert (row["status"], row["possible"]) == ("ok", "10")
    assert (float(row["q1"]), float(row["q2"])) == pytest.approx((q1, q2), abs=1e-4)


@pytest.mark.parametrize("student", ["partial", "crafty", "careless"])
def test_no_attack_or_wrong_answer_earns_half_or_more_than_the_honest_suite(graded, student):
    grades, _ = graded
    for question in ("q1", "q2"):
        earned = float(grades[student][question])
        assert earned <= float(grades["solution"][question]) and earned < 2.5, question


def test_feedback_names_caught_and_surviving_bugs_without_their_code(graded):
    _, out = graded
    text = gradebook.feedback_path(out, "partial").read_text(encoding="utf-8")
    assert ("`test_catches_statistics_taken_from_x` (hidden): **failed**, 0 / 0.5556\n"
            "  - Promise: the statistics come from the reference, not from X") in text
    assert ("`test_catches_the_n_minus_1_standard_deviation` (hidden): **passed**, "
            "0.5556 / 0.5556") in text
    code_lines = {line.strip() for version in _hidden_versions()
                  for line in version.source.splitlines() if len(line.strip()) > 12}
    assert code_lines and not [line for line in code_lines if line in text]


def _hidden_versions() -> list:
    """Every version the hidden tests define (their cells run here, as in the grader)."""
    versions = []
    for cell in authoring.read_notebook(SOLUTION).cells:
        if "hidden-tests" in cell.metadata.get("tags", []):
            scope: dict = {}
            exec(compile(cell.source, "hidden", "exec"), scope)  # pylint: disable=exec-used
            versions += list(scope["VERSIONS"])
    return versions


def test_a_suite_that_fails_on_correct_code_is_told_so(graded):
    _, out = graded
    text = gradebook.feedback_path(out, "crafty").read_text(encoding="utf-8")
    assert "does not pass on a correct implementation" in text
    assert "killed at its time limit" in text
    assert "ImportError while importing test module" in text
    text = gradebook.feedback_path(out, "careless").read_text(encoding="utf-8")
    assert "'ServedFunction' object has no attribute '__code__'" in text
