"""Exercise 04 graded for real: the lint and the behaviour of one module, and the attacks on both.

Submissions are built from the generated exercise, each answer cell filled from the solution or
from one of its declared wrong answers, and graded together by ``grading.grade_batch`` (each in
its own sandboxed kernel; pylint runs in the grader on the module's source, a plain string, and
the module built from that same source runs in a sandbox of its own for the behaviour tests).
Question 1 is worth 7 points over 15 test weights: 2 public tests, 5 hidden ones, and one hidden
test that needs both a clean module and its behaviour on every edge (weight 8, so that failing it
alone leaves 7 of 15, under half). Question 2's 3 points: a public format check and a hidden
test of the four probable bugs (weight 1 each), and the whole mapping (weight 3).

* the solution: every point (10);
* the messy module (its two names fixed) padded with 500 filler statements (its score rises
  from 5.71 to 9.62 with the same 21 messages): behaviour tests only, 3 of 15 weights (its
  ``import os`` is no module a metrics module needs);
* a clean stub as ``MODULE_SOURCE`` with the messy functions defined beside it in the notebook:
  the lint tests only, 4 of 15 (the module that is linted is the module that is run), with a
  question-2 answer that swaps the two file fixes (1 of 5);
* the messy module behind a U+2028 in a comment and a pragma inside a longer comment that also
  switches off pylint's report of what it hid: behaviour only, 3 of 15;
* the messy module under an encoding declaration its own text breaks: nothing;
* clean stubs, then the messy module run by ``getattr(builtins, "exec")``: the code pylint
  reads is clean and the behaviour is the messy one's, but ``codequality.hidden_code`` refuses
  the module: behaviour only, 3 of 15, with a question-2 answer that swaps two convention fixes
  (2 of 5);
* clean rewrites one edge away from the messy module (``accuracy([])`` returning 0.0, ``>`` in
  predict, ties broken by ``max`` over a set): all but the edge tests, 6 of 15.
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
              "cookie": {**answers, "q1": wrong_in("q1", "encoding declaration")},
              "exec": {"q1": wrong_in("q1", "getattr(builtins"),
                       "q2": wrong_in("q2", "convention fixes swapped")},
              "empty": {**answers, "q1": wrong_in("q1", "0.0 for empty lists")},
              "threshold": {**answers, "q1": wrong_in("q1", "predict uses >")},
              "ties": {**answers, "q1": wrong_in("q1", "max over set(scores)")}}
    return course_notebooks.grade_submissions(SOLUTION, EXERCISE, chosen,
                                              tmp_path_factory.mktemp("submitted"),
                                              graded, 10_000)


@pytest.mark.parametrize("student, q1_weights, q2", [
    ("fixed", 15, 3.0),    # clean and unchanged behaviour: everything
    ("padded", 3, 3.0),    # filler buys no lint point: messages are counted, not scored
    ("stub", 4, 0.6),      # a clean stub earns the lint points; the messy functions beside it
                           # are never run
    ("pragma", 3, 3.0),    # the pragma is found and stripped as pylint reads it
    ("cookie", 0, 3.0),    # pylint cannot read it, Python cannot import it: no point at all
    ("exec", 3, 1.2),      # code run from a string is refused, however exec is reached
    ("empty", 6, 3.0),     # accuracy([]) must raise ZeroDivisionError, as the messy one does
    ("threshold", 6, 3.0),  # a score at the threshold predicts 1
    ("ties", 6, 3.0),      # the lowest of tied thresholds, not the set's pick
])
def test_lint_and_behaviour_are_graded_on_the_same_module(grades, student, q1_weights, q2):
    row = grades[student]
    assert (row["status"], row["possible"]) == ("ok", "10")
    assert float(row["q1"]) == pytest.approx(7 * q1_weights / 15, abs=0.006)
    assert float(row["q2"]) == pytest.approx(q2)


def test_the_honest_solution_runs_in_the_grader_without_an_error(grades, graded):
    def feedback(student: str) -> str:
        (path,) = (graded / "feedback").glob(f"{student}-*.md")
        return path.read_text(encoding="utf-8")

    assert grades["fixed"]["total"] == "10"
    assert "cell " not in feedback("fixed") and "Error" not in feedback("fixed")
    # A cell that raises is named in the feedback: the module under a broken declaration shows it.
    assert "cell 10: CodeDoesNotParse" in feedback("cookie")
