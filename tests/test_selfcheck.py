"""The student self-check (labsupport.course.selfcheck), run in-process on plain namespaces.

The same checks inside a real kernel, on the real exercises, are in tests/test_exercises.py.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from labsupport.course import authoring, runner, selfcheck
from tests.course_notebooks import (HIDDEN_Q1, PUBLIC_Q2, good_notebook, make_notebook,
                                    make_solution_cell, make_test_cell, write)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def exercise(tmp_path) -> Path:
    """The exercise generated from the synthetic solution, in ``tmp_path/exercises``, with q2's
    public tests taken out (as in an exercise built before every question needed one), so the
    self-check's "no public tests" wording stays covered."""
    student = authoring.student_notebook(good_notebook(), "solutions/01_small.ipynb")
    student.cells = [cell for cell in student.cells
                     if cell.source not in (PUBLIC_Q2, 'check("q2")')]
    return write(student, tmp_path / "exercises" / "01_small.ipynb")


def _double_right(x):
    return 2 * x


def _double_wrong(x):
    return x + 1


def _double_stub(x):
    raise NotImplementedError("q1: multiply by two")


def _double_broken(x):
    return len(x)


# --- the namespace tests receive -----------------------------------------------------------------


def test_namespace_reads_the_globals_live():
    values = {"a": 1}
    ns = selfcheck.Namespace(values)
    values["b"] = 2
    assert (ns.a, ns.b) == (1, 2)
    assert hasattr(ns, "b") and not hasattr(ns, "c")


def test_a_missing_name_reads_as_not_implemented():
    ns = selfcheck.Namespace({})
    with pytest.raises(NotImplementedError, match="defines no 'ANSWER_Q1'"):
        _ = ns.ANSWER_Q1
    with pytest.raises(AttributeError):
        _ = ns.ANSWER_Q1


def test_tests_cannot_change_the_notebooks_names():
    ns = selfcheck.Namespace({"a": 1})
    with pytest.raises(AttributeError, match="cannot change"):
        ns.a = 2


def test_namespace_needs_a_mapping():
    with pytest.raises(TypeError, match="globals"):
        selfcheck.Namespace([("a", 1)])


# --- check and check_all -------------------------------------------------------------------------


@pytest.mark.parametrize("function, status, lines", [
    (_double_right, "passes",
     ["q1 ✓ 1/1 public tests pass (hidden tests are graded later)"]),
    (_double_wrong, "fails",
     ["q1 ✗ 0/1 public tests pass", "q1 ✗ test_double_two: double(2) should be 4"]),
    (_double_stub, "not answered yet", ["q1 … not answered yet (q1: multiply by two)"]),
    (_double_broken, "fails",
     ["q1 ✗ 0/1 public tests pass",
      "q1 ✗ test_double_two: the test could not run your code: TypeError: object of type "
      "'int' has no len()"]),
], ids=["right", "wrong", "stub", "crashes"])
def test_check_reports_each_kind_of_answer(exercise, function, status, lines):
    result = selfcheck.Checker(exercise, {"double": function}).check("q1")
    assert result.status == status
    assert repr(result).splitlines() == lines


def test_an_undefined_answer_is_not_answered_yet(exercise):
    result = selfcheck.Checker(exercise, {}).check("q1")
    assert not result.answered and not result.passed
    assert repr(result) == ("q1 … not answered yet (the notebook defines no 'double': write it, "
                            "or run the cell that defines it)")


def test_check_sees_answers_written_after_the_setup(exercise):
    namespace: dict = {}
    checker = selfcheck.Checker(exercise, namespace)
    assert not checker.check("q1").passed
    namespace["double"] = _double_right
    assert checker.check("q1").passed


def test_check_runs_public_tests_only(exercise):
    # _double_right fails no hidden test either; a function that is right only on the public case
    # must still pass the self-check, because hidden tests are not in the exercise.
    result = selfcheck.Checker(exercise, {"double": lambda x: 4}).check("q1")
    assert result.passed and [o.test for o in result.outcomes] == ["test_double_two"]
    assert "test_double_negative" not in exercise.read_text(encoding="utf-8")


def test_check_all_is_a_table_of_every_question(exercise):
    summary = selfcheck.Checker(exercise, {"double": _double_right}).check_all()
    assert summary.rows() == [("q1", "2", "1/1", "passes"),
                              ("q2", "1.5", "-", "no public tests (graded later)")]
    shown = repr(summary).splitlines()
    assert shown[0].split() == ["question", "points", "public", "tests", "status"]
    assert "Hidden tests are graded" in shown[-1]
    assert summary.passed
    assert not selfcheck.Checker(exercise, {}).check_all().passed


def test_a_question_without_public_tests_says_so(exercise):
    result = selfcheck.Checker(exercise, {}).check("q2")
    assert repr(result) == "q2 … no public tests; this question is graded later"
    assert not result.passed


def test_an_unknown_question_lists_the_questions(exercise):
    with pytest.raises(ValueError, match="its questions are q1, q2"):
        selfcheck.Checker(exercise, {}).check("q3")


def test_the_self_check_refuses_a_solution_notebook(tmp_path):
    solution = write(good_notebook(), tmp_path / "solution.ipynb")
    with pytest.raises(ValueError, match="contains hidden tests"):
        selfcheck.Checker(solution, {}).check("q1")


def test_the_outcomes_come_from_the_shared_runner(exercise):
    outcome = selfcheck.Checker(exercise, {"double": _double_wrong}).check("q1").outcomes[0]
    assert isinstance(outcome, runner.Outcome)
    assert (outcome.question, outcome.test, outcome.status) == ("q1", "test_double_two", "failed")


# --- finding the exercise file --------------------------------------------------------------------


def test_the_exercise_is_found_from_its_folder_and_from_the_lab(exercise):
    lab = exercise.parent.parent
    assert selfcheck.find_exercise("01_small.ipynb", start=exercise.parent) == exercise
    assert selfcheck.find_exercise("01_small.ipynb", start=lab) == exercise


def test_the_installed_labs_exercises_are_found_from_anywhere(tmp_path):
    found = selfcheck.find_exercise("01_cicd_for_ml.ipynb", start=tmp_path)
    assert found.resolve() == ROOT / "exercises" / "01_cicd_for_ml.ipynb"


def test_a_missing_exercise_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot find 99_none.ipynb.*exercises/ folder"):
        selfcheck.find_exercise("99_none.ipynb", start=tmp_path)


# --- the real exercises ---------------------------------------------------------------------------


def notebook_globals(notebook: nbformat.NotebookNode, cwd: Path) -> dict:
    """Run a notebook's code cells in-process, skipping test, check and wrong-answer cells;
    errors allowed."""
    namespace: dict = {"__name__": "__main__"}
    for cell in authoring.without_wrong_answers(notebook).cells:
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type != "code" or tags & set(authoring.TAGS) \
                or cell.metadata.get("labsupport") == {"selfcheck": True}:
            continue
        try:
            exec(compile(cell.source, str(cwd), "exec"), namespace)  # pylint: disable=exec-used
        except Exception:  # pylint: disable=broad-exception-caught  # stubs and what uses them
            pass
    return namespace


SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_the_real_exercise_checks_the_solutions_answers(solution):
    exercise = ROOT / "exercises" / solution.name
    answers = notebook_globals(authoring.read_notebook(solution), solution.parent)
    summary = selfcheck.Checker(exercise, answers).check_all()
    assert summary.passed, repr(summary)
    unanswered = notebook_globals(authoring.read_notebook(exercise), exercise.parent)
    statuses = {r.question: r.status for r in selfcheck.Checker(exercise, unanswered)
                .check_all().results}
    # "still empty": a written answer (exercises 06 and 07), which a person grades.
    assert set(statuses.values()) <= {"not answered yet", "no public tests (graded later)",
                                      "still empty"}, statuses


def test_messages_never_quote_hidden_tests(tmp_path):
    notebook = make_notebook(make_solution_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
                             make_test_cell("def test_x(ns):\n    assert ns.x == 1, 'x is 1'\n"),
                             make_test_cell(HIDDEN_Q1.replace("double", "x"),
                                            tag="hidden-tests"))
    student = write(authoring.student_notebook(notebook, "solutions/s.ipynb"),
                    tmp_path / "s.ipynb")
    shown = repr(selfcheck.Checker(student, {"x": 2}).check_all()) \
        + repr(selfcheck.Checker(student, {"x": 2}).check("q1"))
    assert "x is 1" in shown and "Negative" not in shown and "test_x_negative" not in shown
