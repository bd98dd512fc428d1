"""Exercise 04 graded for real: lint points and behaviour points are earned separately.

Three submissions are built from the generated exercise, each answer cell filled from the
solution or from one of its declared wrong answers, and graded by ``grading.grade_batch`` (each
in its own sandboxed kernel; pylint runs in the grader on the module's source, a plain string):

* the solution: every point (10);
* the messy module handed in unchanged: the three behaviour tests of question 1 (3 of 7, one
  point a test), plus question 2 (3);
* a clean 10/10 rewrite that keeps the last of tied thresholds: the three lint tests only (3 of
  7), with a question-2 answer that swaps the two file fixes (1 of 3).
"""

from __future__ import annotations

import copy
import csv
import os
from pathlib import Path

import nbformat
import pytest

from labsupport.course import authoring, grading
from labsupport.course.sandbox import DEFAULT_UID_BASE, Limits

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "04_code_quality.ipynb"
EXERCISE = ROOT / "exercises" / "04_code_quality.ipynb"
LIMITS = Limits(cell_seconds=60, submission_seconds=240, memory_bytes=2 * 1024**3,
                processes=64, interrupt_grace_seconds=2)

pytestmark = pytest.mark.skipif(not SOLUTION.is_file(),
                                reason="student copy of the lab: solutions/ is withheld")


def _solution_cells() -> tuple[dict[str, str], dict[str, str]]:
    """The answer cell of each question, and each wrong answer's code by its description."""
    answers, wrong = {}, {}
    for cell in authoring.read_notebook(SOLUTION).cells:
        meta = cell.metadata.get(authoring.METADATA_KEY, {})
        if "wrong-answer" in cell.metadata.get("tags", []):
            wrong[meta["wrong_answer"]] = cell.source
        elif "points" in meta:
            answers[meta["question"]] = cell.source
    return answers, wrong


def _with_block(cell_source: str, replacement: str) -> str:
    """``cell_source`` with its solution block replaced by ``replacement`` (column 0 code)."""
    lines = cell_source.splitlines()
    begin, end = lines.index(authoring.BEGIN), lines.index(authoring.END)
    return "\n".join(lines[:begin] + replacement.splitlines() + lines[end + 1:])


def _submission(answers: dict[str, str]) -> nbformat.NotebookNode:
    """The generated exercise with each question's answer cell set to ``answers[question]``."""
    notebook = copy.deepcopy(authoring.read_notebook(EXERCISE))
    for cell in notebook.cells:
        meta = cell.metadata.get(authoring.METADATA_KEY, {})
        if cell.cell_type == "code" and "points" in meta:
            cell.source = answers[meta["question"]]
    return notebook


def _wrong(wrong: dict[str, str], words: str) -> str:
    (source,) = [code for description, code in wrong.items() if words in description]
    return source


@pytest.fixture(scope="module")
def grades(tmp_path_factory) -> dict[str, dict[str, str]]:
    """The three submissions graded once: student -> row of grades.csv."""
    answers, wrong = _solution_cells()
    messy = _with_block(answers["q1"], _wrong(wrong, "handed in unchanged"))
    ties = _with_block(answers["q1"], _wrong(wrong, "tied thresholds"))
    swapped = _with_block(answers["q2"], _wrong(wrong, "file messages swapped"))
    folder = tmp_path_factory.mktemp("submitted")
    for student, chosen in (("fixed", answers), ("messy", {**answers, "q1": messy}),
                            ("ties", {"q1": ties, "q2": swapped})):
        nbformat.write(_submission(chosen), folder / f"{student}.ipynb")
    out = tmp_path_factory.mktemp("graded")
    # A sandbox kills every process of its uid: a test session of its own, on a shared machine,
    # takes uids no other session uses.
    uid_base = DEFAULT_UID_BASE + 10_000 + 16 * (os.getpid() % 100_000)
    summary = grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=2, progress=False,
                                  uid_base=uid_base)
    assert not summary.failed
    with open(out / "grades.csv", encoding="utf-8", newline="") as stream:
        return {row["student"]: row for row in csv.DictReader(stream)}


@pytest.mark.parametrize("student, q1, q2", [
    ("fixed", "7", "3"),    # clean and unchanged behaviour: everything
    ("messy", "3", "3"),    # behaves, but pylint rates it 4.29/10: no lint points
    ("ties", "3", "1"),     # 10/10, but tied thresholds resolved differently: no behaviour points
])
def test_lint_and_behaviour_points_are_earned_separately(grades, student, q1, q2):
    row = grades[student]
    assert (row["status"], row["q1"], row["q2"], row["possible"]) == ("ok", q1, q2, "10")
