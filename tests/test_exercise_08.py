"""Exercise 08 graded for real, with exact points per question.

Three submissions are built from the generated exercise, each answer cell left as the stub or
filled from the solution or from one of its declared wrong answers, and graded by
``grading.grade_batch`` (each in its own sandboxed kernel; every test runs in the grader on plain
data, the scenario replayed there in worlds the hidden tests hold):

* the stub as students receive it: no point;
* the solution: every point (10);
* a submission whose q1 lists every condition of the analysis instead of the failed ones (it
  fails the failed-conditions tests and the whole-answer test: weights 2 + 3 of 9 lost, 4/9 of
  3 kept), whose q2 keeps the default thresholds (the monitor does not retrain on one drifted
  sensor of three, so the public world and the three hidden sets of worlds end badly; only the
  tests on v3 and v4 pass: 2 of 9 weights, 0.8889 of 4) and whose q3 uses the normal
  approximation (its share catches the broken server, but is not the smallest and its
  false-alarm rate is wrong: 1 of 5 weights, 0.6 of 3).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import course_notebooks

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "08_end_to_end.ipynb"
EXERCISE = ROOT / "exercises" / "08_end_to_end.ipynb"

pytestmark = pytest.mark.skipif(not SOLUTION.is_file(),
                                reason="student copy of the lab: solutions/ is withheld")


@pytest.fixture(scope="module")
def grades(tmp_path_factory) -> dict[str, dict[str, str]]:
    """The three submissions graded once: student -> row of grades.csv."""
    answers, _ = course_notebooks.solution_answers(SOLUTION)

    def wrong_in(question: str, words: str) -> str:
        return course_notebooks.wrong_answer_cell(SOLUTION, question, words)

    mixed = {"q1": wrong_in("q1", "every condition"), "q2": wrong_in("q2", "the defaults"),
             "q3": wrong_in("q3", "normal approximation of the binomial")}
    stub, _ = course_notebooks.solution_answers(EXERCISE)
    chosen = {"stub": stub, "solved": answers, "mixed": mixed}
    return course_notebooks.grade_submissions(SOLUTION, EXERCISE, chosen,
                                              tmp_path_factory.mktemp("submitted"),
                                              tmp_path_factory.mktemp("graded"), 20_000)


@pytest.mark.parametrize("student, q1, q2, q3, total", [
    ("stub", "0", "0", "0", "0"),
    ("solved", "3", "4", "3", "10"),
    ("mixed", "1.3333", "0.8889", "0.6", "2.8222"),
])
def test_each_question_earns_exactly_its_share(grades, student, q1, q2, q3, total):
    row = grades[student]
    assert (row["status"], row["q1"], row["q2"], row["q3"], row["total"], row["possible"]) == \
        ("ok", q1, q2, q3, total, "10")
