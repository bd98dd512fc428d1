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

from pathlib import Path

import pytest

from tests import course_notebooks

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "04_code_quality.ipynb"
EXERCISE = ROOT / "exercises" / "04_code_quality.ipynb"

pytestmark = pytest.mark.skipif(not SOLUTION.is_file(),
                                reason="student copy of the lab: solutions/ is withheld")


@pytest.fixture(scope="module")
def grades(tmp_path_factory) -> dict[str, dict[str, str]]:
    """The three submissions graded once: student -> row of grades.csv."""
    answers, _ = course_notebooks.solution_answers(SOLUTION)

    def wrong_in(question: str, words: str) -> str:
        return course_notebooks.wrong_answer_cell(SOLUTION, question, words)

    messy = wrong_in("q1", "handed in unchanged")
    ties = wrong_in("q1", "tied thresholds")
    swapped = wrong_in("q2", "file messages swapped")
    chosen = {"fixed": answers, "messy": {**answers, "q1": messy},
              "ties": {"q1": ties, "q2": swapped}}
    return course_notebooks.grade_submissions(SOLUTION, EXERCISE, chosen,
                                              tmp_path_factory.mktemp("submitted"),
                                              tmp_path_factory.mktemp("graded"), 10_000)


@pytest.mark.parametrize("student, q1, q2", [
    ("fixed", "7", "3"),    # clean and unchanged behaviour: everything
    ("messy", "3", "3"),    # behaves, but pylint rates it 4.29/10: no lint points
    ("ties", "3", "1"),     # 10/10, but tied thresholds resolved differently: no behaviour points
])
def test_lint_and_behaviour_points_are_earned_separately(grades, student, q1, q2):
    row = grades[student]
    assert (row["status"], row["q1"], row["q2"], row["possible"]) == ("ok", q1, q2, "10")
