"""Exercise 04 graded for real: the lint and the behaviour of one module, and the attacks on both.

Submissions are built from the generated exercise, each answer cell filled from the solution or
from one of its declared wrong answers, and graded together by ``grading.grade_batch`` (each in
its own sandboxed kernel; pylint runs in the grader on the module's source, a plain string, and
the module built from that same source runs in a sandbox of its own for the behaviour tests).
Question 1 is worth 7 points over 11 test weights: 2 public tests, 5 hidden ones, and one hidden
test that needs both a clean module and its behaviour (weight 4).

* the solution: every point (10);
* the messy module (its two names fixed) padded with 500 filler statements (its score rises
  from 5.71 to 9.62 with the same 21 messages): behaviour and no-comment tests only, 4 of 11
  weights;
* a clean stub as ``MODULE_SOURCE`` with the messy functions defined beside it in the notebook:
  the lint tests only, 4 of 11 (the module that is linted is the module that is run), with a
  question-2 answer that swaps the two file fixes (1 of 3);
* the messy module behind a U+2028 in a comment and a pragma inside a longer comment that also
  switches off pylint's report of what it hid: behaviour only, 3 of 11;
* the messy module under an encoding declaration its own text breaks: nothing.
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
def graded(tmp_path_factory) -> Path:
    """Where the batch writes its grades and feedback."""
    return tmp_path_factory.mktemp("graded")


@pytest.fixture(scope="module")
def grades(tmp_path_factory, graded) -> dict[str, dict[str, str]]:
    """The submissions graded in one batch: student -> row of grades.csv."""
    answers, _ = course_notebooks.solution_answers(SOLUTION)

    def wrong_in(question: str, words: str) -> str:
        return course_notebooks.wrong_answer_cell(SOLUTION, question, words)

    chosen = {"fixed": answers,
              "padded": {**answers, "q1": wrong_in("q1", "padded with 500 statements")},
              "stub": {"q1": wrong_in("q1", "clean stub"),
                       "q2": wrong_in("q2", "file messages swapped")},
              "pragma": {**answers, "q1": wrong_in("q1", "U+2028")},
              "cookie": {**answers, "q1": wrong_in("q1", "encoding declaration")}}
    return course_notebooks.grade_submissions(SOLUTION, EXERCISE, chosen,
                                              tmp_path_factory.mktemp("submitted"),
                                              graded, 10_000)


@pytest.mark.parametrize("student, q1_weights, q2", [
    ("fixed", 11, 3.0),    # clean and unchanged behaviour: everything
    ("padded", 4, 3.0),    # filler buys no lint point: messages are counted, not scored
    ("stub", 4, 1.0),      # a clean stub earns the lint points; the messy functions beside it
                           # are never run
    ("pragma", 3, 3.0),    # the pragma is found and stripped as pylint reads it
    ("cookie", 0, 3.0),    # pylint cannot read it, Python cannot import it: no point at all
])
def test_lint_and_behaviour_are_graded_on_the_same_module(grades, student, q1_weights, q2):
    row = grades[student]
    assert (row["status"], row["possible"]) == ("ok", "10")
    assert float(row["q1"]) == pytest.approx(7 * q1_weights / 11, abs=0.006)
    assert float(row["q2"]) == pytest.approx(q2)


def test_the_honest_solution_runs_in_the_grader_without_an_error(grades, graded):
    def feedback(student: str) -> str:
        (path,) = (graded / "feedback").glob(f"{student}-*.md")
        return path.read_text(encoding="utf-8")

    assert grades["fixed"]["total"] == "10"
    assert "cell " not in feedback("fixed") and "Error" not in feedback("fixed")
    # A cell that raises is named in the feedback: the module under a broken declaration shows it.
    assert "cell 10: CodeDoesNotParse" in feedback("cookie")
