"""Exercise 03 graded for real: a student's test suite earns a point per hidden bug it catches.

Three submissions are built from the generated exercise and graded by ``grading.grade_batch``
(each notebook in its own sandboxed kernel; every run of a student's suite against a version of
the function in a fresh sandbox of its own):

* the solution: every point (5 + 5);
* a partial suite: question 1 checks mean 0 and standard deviation 1 on data scaled by itself
  (the sample bug, the wrong axis and n - 1 caught; statistics taken from X and NaN survive:
  3 of 5); question 2 checks valid rows and values on the bounds with the default index (the
  swapped and exclusive bounds caught; the sample bug, NaN and dropped repeats survive: 2 of 5);
* a crafty one: question 1 compares the installed module's text with the given function's,
  normalised as the grader does (the installed file holds compiled code only, and the hidden
  correct rewrite differs anyway: 0 of 5); question 2 hangs (0 of 5, and the grading goes on:
  the status is ``ok``).
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

PARTIAL_Q1 = '''
SUITE_Q1 = """
import numpy as np
import pytest

from features import standardize


def test_scaled_columns_have_mean_0_and_std_1():
    data = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 60.0]])
    scaled = standardize(data, data)
    assert scaled.mean(axis=0) == pytest.approx([0.0, 0.0])
    assert scaled.std(axis=0) == pytest.approx([1.0, 1.0])
"""
'''
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
    (introspecting,) = [code for words, code in wrong.items() if "reads the code" in words]
    folder = tmp_path_factory.mktemp("submitted")
    for student, chosen in (("solution", answers),
                            ("partial", {"q1": PARTIAL_Q1, "q2": PARTIAL_Q2}),
                            ("crafty", {"q1": introspecting, "q2": HANGING_Q2})):
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
    ("solution", "5", "5"),  # passes on every correct version, catches every bug
    ("partial", "3", "2"),   # catches some bugs and not others
    ("crafty", "0", "0"),    # introspection fails on the correct versions; a hang is contained
])
def test_points_come_from_the_bugs_caught(graded, student, q1, q2):
    grades, _ = graded
    row = grades[student]
    assert (row["status"], row["q1"], row["q2"], row["possible"]) == ("ok", q1, q2, "10")


def test_feedback_names_caught_and_surviving_bugs_without_their_code(graded):
    _, out = graded
    text = gradebook.feedback_path(out, "partial").read_text(encoding="utf-8")
    assert ("`test_catches_statistics_taken_from_x` (hidden): **failed**, 0 / 1\n"
            "  - Bug: statistics taken from X instead of the reference") in text
    assert "`test_catches_the_n_minus_1_standard_deviation` (hidden): **passed**, 1 / 1" in text
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
