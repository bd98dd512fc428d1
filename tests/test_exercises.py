"""Every exercise's tests bite: the solution passes them all, the stub and the wrong answers don't.

For each ``solutions/*.ipynb`` these kernels run (each once per module, shared by the tests):

* the solution notebook, then every test (public and hidden) against its globals (the
  rehearsal's baseline run, which also runs each question's tests right after its cells);
* the generated exercise as a student receives it (errors allowed), then every graded test;
* the exercise with the solution's answer cells put back, to see its self-check cells succeed;
* each declared wrong answer substituted into the solution (one kernel each, in parallel, see
  :mod:`labsupport.course.rehearsal`), which must earn at most its ``max_share``.

Tests run inside the kernel with the same ``runner.run_test`` and ``selfcheck.Namespace`` the
self-check uses. In the student copy of the lab (``labsupport release``) there are no solutions
and this module skips.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import nbformat
import pytest

from labsupport import cli
from labsupport.course import authoring, rehearsal

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / authoring.SOLUTIONS).glob("*.ipynb"))
#: Kernels the wrong answers of one exercise run on at once (the suite shares its cores).
WORKERS = int(os.environ.get("REHEARSAL_WORKERS", "2"))
#: One exercise's kernels run on one xdist worker, the exercises spread over them (conftest.py).
XDIST_GROUP_BY = "solution"

pytestmark = pytest.mark.skipif(
    not (ROOT / authoring.SOLUTIONS).is_dir(),
    reason="student copy of the lab: solutions/ is withheld, so there is nothing to check")

execute = rehearsal.execute
stdout_of = rehearsal.stdout_of
run_with_tests = rehearsal.run_with_tests


def text_of(cell: nbformat.NotebookNode) -> str:
    """The plain-text value a cell ended on, plus its stdout."""
    results = [output.data.get("text/plain", "") for output in cell.get("outputs", [])
               if output.output_type == "execute_result"]
    return stdout_of(cell) + "".join(results)


def answered_exercise(solution_nb: nbformat.NotebookNode,
                      exercise_nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The exercise with each stub cell replaced by the solution's cell for that question."""
    answers = {cell.metadata[authoring.METADATA_KEY]["question"]: cell.source
               for cell in solution_nb.cells
               if cell.cell_type == "code" and cell.metadata.get(authoring.METADATA_KEY)
               and not set(cell.metadata.get("tags", []))
               & {*authoring.TAGS, authoring.WRONG_TAG}}
    answered = copy.deepcopy(exercise_nb)
    for cell in answered.cells:
        meta = cell.metadata.get(authoring.METADATA_KEY, {})
        if cell.cell_type == "code" and "points" in meta:
            cell.source = answers[meta["question"]]
    return answered


@pytest.fixture(scope="module", params=SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def solution(request) -> Path:
    """One solution notebook (the module's tests run once per solution)."""
    return request.param


@pytest.fixture(scope="module")
def solution_run(wrong_answers):
    """The executed solution and the outcomes of all its tests (the rehearsal's baseline, or a
    run of its own for a solution that declares no wrong answer)."""
    if wrong_answers.baseline is None:
        solution = wrong_answers.solution
        return run_with_tests(authoring.read_notebook(solution), solution, solution.parent,
                              allow_errors=True)
    return wrong_answers.baseline, wrong_answers.solution_outcomes()


@pytest.fixture(scope="module")
def exercise_run(solution):
    """The executed, unanswered exercise and the outcomes of all graded tests."""
    exercise = ROOT / authoring.EXERCISES / solution.name
    return run_with_tests(authoring.read_notebook(exercise), solution, exercise.parent,
                          allow_errors=True)


@pytest.fixture(scope="module")
def answered_run(solution):
    """The exercise executed with the solution's answer cells put back."""
    exercise = ROOT / authoring.EXERCISES / solution.name
    notebook = answered_exercise(authoring.read_notebook(solution),
                                 authoring.read_notebook(exercise))
    return execute(notebook, exercise.parent, allow_errors=False)


@pytest.fixture(scope="module")
def wrong_answers(solution) -> rehearsal.Rehearsal:
    """Every declared wrong answer of the solution, graded in its own kernel."""
    return rehearsal.rehearse(solution, workers=WORKERS)


def test_exercises_are_in_sync(capsys):
    # The wrong answers are graded by the tests below (the same rehearsal the command runs).
    status = cli.main(["exercises", "check", "--skip-wrong-answers", "--root", str(ROOT)])
    captured = capsys.readouterr()
    assert status == 0, captured.err


def test_every_solution_is_a_valid_exercise(solution):
    exercise = authoring.load_exercise(solution)
    assert exercise.questions


def test_the_solution_runs_without_errors(solution_run):
    executed, _ = solution_run
    failing = [f"cell {index}: {output.ename}: {output.evalue}"
               for index, cell in enumerate(executed.cells)
               if "raises-exception" not in cell.metadata.get("tags", [])
               for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not failing, "the solution notebook raised:\n" + "\n".join(failing)


def test_the_solution_passes_every_test(solution_run):
    _, outcomes = solution_run
    failed = [f"{o['question']} {o['test']}: {o['status']}: {o['message']}"
              for o in outcomes if not o["passed"]]
    assert outcomes and not failed, "the solution fails its own tests:\n" + "\n".join(failed)


def test_the_solution_runs_the_tests_the_format_declares(solution, solution_run):
    _, outcomes = solution_run
    declared = [(t.question, t.name) for t in authoring.load_exercise(solution).tests]
    assert [(o["question"], o["test"]) for o in outcomes] == declared


def test_the_stub_fails_every_graded_test(solution, exercise_run):
    _, outcomes = exercise_run
    biteless = sorted({(o["question"], o["test"]) for o in outcomes if o["passed"]})
    assert len(outcomes) == len(authoring.load_exercise(solution).tests)
    assert not biteless, (
        "these tests pass on the unanswered exercise, so they grade nothing (question, test): "
        f"{biteless}")


def test_the_stub_reads_as_not_answered(exercise_run):
    executed, _ = exercise_run
    checks = [cell for cell in executed.cells if cell.source.startswith("check(")]
    assert checks, "the exercise has no check(...) cells"
    for cell in checks:
        shown = text_of(cell)
        assert "not answered yet" in shown, f"{cell.source} showed {shown!r}"


def test_the_self_check_passes_once_answered(solution, answered_run):
    shown = {cell.source: text_of(cell) for cell in answered_run.cells
             if cell.source.startswith("check")}
    exercise = authoring.load_exercise(solution)
    for question in exercise.questions:
        if question.public_tests:
            count = len(question.public_tests)
            assert f"{count}/{count} public tests pass" in shown[f'check("{question.name}")']
    assert "not answered" not in shown["check_all()"] and " fails" not in shown["check_all()"]


def test_every_question_declares_a_wrong_answer(solution):
    exercise = authoring.load_exercise(solution)
    bare = [q.name for q in exercise.questions if not q.wrong_answers]
    assert not bare, (f"declare the plausible mistakes of {bare} as cells tagged "
                      f"{authoring.WRONG_TAG!r}, so the check proves they score low")


def test_the_wrong_answers_are_graded_where_the_solution_scores_full_marks(wrong_answers):
    assert not wrong_answers.problems, "\n".join(wrong_answers.problems)


def test_no_declared_wrong_answer_scores_more_than_its_max_share(wrong_answers):
    too_high = [str(verdict) for verdict in wrong_answers.verdicts if not verdict.ok]
    assert wrong_answers.verdicts and not too_high, "\n".join(too_high)


def test_no_constant_answer_earns_half_a_question(wrong_answers):
    """Each function a question's tests call on several inputs, made to return one of the
    solution's own answers every time, earns under half (rehearsal.probe_constant_answers)."""
    too_high = [str(verdict) for verdict in wrong_answers.constants if not verdict.ok]
    assert not too_high, "\n".join(too_high)


def test_the_generated_exercise_holds_no_wrong_answer(solution):
    exercise = authoring.read_notebook(ROOT / authoring.EXERCISES / solution.name)
    assert not [cell for cell in exercise.cells
                if authoring.WRONG_TAG in cell.metadata.get("tags", [])]
    text = "\n".join(cell.source for cell in exercise.cells)
    for wrong in authoring.load_exercise(solution).wrong_answers:
        assert wrong.description not in text, wrong.description
