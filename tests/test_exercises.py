"""Every exercise's tests bite: the solution passes them all, the generated stub passes none.

For each ``solutions/*.ipynb`` three kernels run (each once per module, shared by the tests):

* the solution notebook, then every test (public and hidden) against its globals;
* the generated exercise as a student receives it (errors allowed), then every graded test;
* the exercise with the solution's answer cells put back, to see its self-check cells succeed.

Tests run inside the kernel with the same ``runner.run_test`` and ``selfcheck.Namespace`` the
self-check uses. In the student copy of the lab (``labsupport release``) there are no solutions
and this module skips.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import nbclient
import nbformat
import pytest

from labsupport import cli
from labsupport.course import authoring

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / authoring.SOLUTIONS).glob("*.ipynb"))
CELL_TIMEOUT = int(os.environ.get("CELL_TIMEOUT", "120"))

pytestmark = pytest.mark.skipif(
    not (ROOT / authoring.SOLUTIONS).is_dir(),
    reason="student copy of the lab: solutions/ is withheld, so there is nothing to check")

#: Runs in the kernel after the notebook: every test of the exercise, outcomes as one JSON line.
RUN_ALL_TESTS = """
import dataclasses as _dataclasses, json as _json
from labsupport.course import authoring as _authoring, runner as _runner, selfcheck as _selfcheck
_ns = _selfcheck.Namespace(globals())
print(_json.dumps([_dataclasses.asdict(_runner.run_test(_test, _ns))
                   for _test in _authoring.load_exercise({path!r}).tests]))
"""


def execute(notebook: nbformat.NotebookNode, cwd: Path,
            allow_errors: bool) -> nbformat.NotebookNode:
    """Run ``notebook`` in a fresh python3 kernel started in ``cwd``; return the executed copy."""
    executed = copy.deepcopy(notebook)
    client = nbclient.NotebookClient(
        executed, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=allow_errors,
        startup_timeout=120, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return executed


def stdout_of(cell: nbformat.NotebookNode) -> str:
    """Everything a cell printed to stdout."""
    return "".join(output.get("text", "") for output in cell.get("outputs", [])
                   if output.output_type == "stream" and output.name == "stdout")


def text_of(cell: nbformat.NotebookNode) -> str:
    """The plain-text value a cell ended on, plus its stdout."""
    results = [output.data.get("text/plain", "") for output in cell.get("outputs", [])
               if output.output_type == "execute_result"]
    return stdout_of(cell) + "".join(results)


def run_with_tests(notebook: nbformat.NotebookNode, solution: Path, cwd: Path,
                   allow_errors: bool) -> tuple[nbformat.NotebookNode, list[dict]]:
    """Execute ``notebook`` followed by every test of ``solution``; return it and the outcomes."""
    notebook = copy.deepcopy(notebook)
    notebook.cells.append(nbformat.v4.new_code_cell(RUN_ALL_TESTS.format(path=str(solution))))
    executed = execute(notebook, cwd, allow_errors)
    printed = stdout_of(executed.cells[-1]).strip().splitlines()
    assert printed, f"the test cell printed nothing; its outputs: {executed.cells[-1].outputs}"
    return executed, json.loads(printed[-1])


def answered_exercise(solution_nb: nbformat.NotebookNode,
                      exercise_nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The exercise with each stub cell replaced by the solution's cell for that question."""
    answers = {cell.metadata[authoring.METADATA_KEY]["question"]: cell.source
               for cell in solution_nb.cells
               if cell.cell_type == "code" and cell.metadata.get(authoring.METADATA_KEY)
               and not set(cell.metadata.get("tags", [])) & set(authoring.TAGS)}
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
def solution_run(solution):
    """The executed solution and the outcomes of all its tests."""
    return run_with_tests(authoring.read_notebook(solution), solution, solution.parent,
                          allow_errors=False)


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


def test_exercises_are_in_sync(capsys):
    status = cli.main(["exercises", "check", "--root", str(ROOT)])
    captured = capsys.readouterr()
    assert status == 0, captured.err


def test_every_solution_is_a_valid_exercise(solution):
    exercise = authoring.load_exercise(solution)
    assert exercise.questions


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
