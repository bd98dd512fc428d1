"""Grading declared wrong answers in local kernels (labsupport.course.rehearsal).

A small synthetic lab (tests.course_notebooks) declares three wrong answers: one that the tests
refuse, one that is in fact right and one that earns exactly half its question (under half means
under); the last two must be reported, naming their question and their description. q1's hidden
test weighs twice its public one, so passing the public test alone earns a third. Each wrong
answer runs in its own kernel, so this module starts a handful.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import nbformat
import pytest

from labsupport import cli
from labsupport.course import authoring, rehearsal
from tests.course_notebooks import (good_notebook, make_notebook, make_solution_cell,
                                   make_test_cell, make_wrong_cell, write)


def _solution() -> nbformat.NotebookNode:
    notebook = good_notebook()
    notebook.cells[4].metadata["labsupport"]["weight"] = 2  # q1's hidden test
    notebook.cells[4].source += "    assert ns.double(5) == 10\n"  # no constant passes it
    notebook.cells += [
        make_wrong_cell("return x + 2\n", description="adds two"),
        make_wrong_cell("return x * 2\n", description="multiplies, which is right after all"),
        make_wrong_cell('ANSWER_Q2 = "deployment"\n', question="q2",
                        description="confuses the two CDs"),
    ]
    return notebook


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    """A lab whose one solution declares the three wrong answers, exercises built."""
    root = tmp_path_factory.mktemp("lab")
    write(_solution(), root / "solutions" / "01_small.ipynb")
    authoring.build_exercises(root)
    return root


@pytest.fixture(scope="module")
def result(lab) -> rehearsal.Rehearsal:
    """The rehearsal of the lab's solution."""
    return rehearsal.rehearse(lab / "solutions" / "01_small.ipynb", workers=2)


def test_each_wrong_answer_gets_a_verdict_with_its_share(result):
    assert [(v.question, v.description, v.share, v.passed) for v in result.verdicts] == [
        ("q1", "adds two", pytest.approx(1 / 3), ("test_double_two",)),
        ("q1", "multiplies, which is right after all", 1.0,
         ("test_double_two", "test_double_negative")),
        ("q2", "confuses the two CDs", 0.5, ("test_answer_is_a_practice",))]
    assert not result.problems


def test_a_wrong_answer_earning_more_than_its_share_is_reported(result):
    assert [v.ok for v in result.verdicts] == [True, False, False]
    assert result.failures == (
        "01_small.ipynb: q1, wrong answer 'multiplies, which is right after all' earns 100% of "
        "the question's points (allowed: less than 50%); it passes test_double_two, "
        "test_double_negative",
        "01_small.ipynb: q2, wrong answer 'confuses the two CDs' earns 50% of the question's "
        "points (allowed: less than 50%); it passes test_answer_is_a_practice")


def test_the_check_command_fails_naming_the_question_and_the_wrong_answer(lab, capsys):
    status = cli.main(["exercises", "check", "--root", str(lab), "--workers", "2"])
    captured = capsys.readouterr()
    assert status == 1
    assert "exercises/ is in step with solutions/." in captured.out
    assert "ok        01_small.ipynb: q1, wrong answer 'adds two' earns 33%" in captured.out
    assert ("too high  01_small.ipynb: q1, wrong answer 'multiplies, which is right after all' "
            "earns 100%") in captured.err
    assert "2 problem(s)" in captured.err


def test_the_check_command_can_skip_the_kernels(lab, capsys):
    assert cli.main(["exercises", "check", "--root", str(lab), "--skip-wrong-answers"]) == 0
    assert "wrong answer" not in capsys.readouterr().out


def test_a_test_that_needs_cells_further_down_makes_the_rehearsal_untrustworthy(tmp_path):
    notebook = good_notebook()
    notebook.cells.insert(5, make_test_cell("def test_uses_later(ns):\n    assert ns.LATER\n",
                                            tag="hidden-tests"))
    notebook.cells += [nbformat.v4.new_code_cell("LATER = True"),
                       make_wrong_cell("return x + 2\n", description="adds two")]
    path = write(notebook, tmp_path / "solutions" / "01_small.ipynb")
    found = rehearsal.rehearse(path, workers=2)
    assert len(found.problems) == 1
    assert found.problems[0].startswith(
        "01_small.ipynb: the solution fails q1 test_uses_later when the tests run right after "
        "q1's test cells")
    assert found.verdicts[0].share == pytest.approx(1 / 3)


def test_the_check_command_checks_only_the_exercises_named(lab, tmp_path, capsys):
    other = write(_solution(), lab / "solutions" / "02_other.ipynb")
    try:
        assert cli.main(["exercises", "check", "01_small", "--root", str(lab),
                         "--skip-wrong-answers"]) == 0
        assert cli.main(["exercises", "check", "--root", str(lab), "--skip-wrong-answers"]) == 1
        assert "exercises/02_other.ipynb" in capsys.readouterr().err
        assert cli.main(["exercises", "check", "09_none", "--root", str(lab)]) == 1
        assert "no solution notebook solutions/09_none.ipynb" in capsys.readouterr().err
    finally:
        other.unlink()
    del tmp_path


@pytest.mark.parametrize("max_share, share, ok", [(0.5, 0.5, False), (0.5, 0.49, True),
                                                  (0.0, 0.0, True), (0.0, 0.01, False),
                                                  (0.3, 0.3, False), (0.3, 0.2, True)])
def test_a_verdict_is_ok_only_under_its_share(max_share, share, ok):
    verdict = rehearsal.Verdict("q1", "w", max_share, share, ())
    assert verdict.ok is ok


def test_the_solutions_own_returns_are_tried_as_constant_answers(result):
    assert [(v.question, v.description, round(v.share, 3), v.ok) for v in result.constants] == [
        ("q1", "constant answer: double(...) always returns 4", 0.333, True),
        ("q1", "constant answer: double(...) always returns -6", 0.0, True),
        ("q1", "constant answer: double(...) always returns 10", 0.0, True)]


GATE = '''def gate(drop):
    """True when a drop in accuracy is small enough to ship."""
    ### BEGIN SOLUTION
    return drop <= 0.02
    ### END SOLUTION
'''
GATE_PUBLIC = '''def test_a_small_drop_ships(ns):
    assert ns.gate(0.0) is True
'''
GATE_HIDDEN = '''def test_large_drops_do_not_ship(ns):
    assert ns.gate(0.05) is False
    assert ns.gate(0.10) is False


def test_a_huge_drop_does_not_ship(ns):
    assert ns.gate(0.5) is False
'''


def test_hidden_cases_that_all_expect_one_verdict_are_reported(tmp_path):
    """Two of three tests expect "do not ship": a gate that never ships earns two thirds."""
    notebook = make_notebook(
        nbformat.v4.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]}),
        make_solution_cell(GATE), make_test_cell(GATE_PUBLIC),
        make_test_cell(GATE_HIDDEN, tag="hidden-tests"),
        make_wrong_cell("return True\n", description="ships everything"))
    found = rehearsal.rehearse(write(notebook, tmp_path / "solutions" / "01_gate.ipynb"),
                               workers=1)
    assert not found.problems
    assert [(v.description, round(v.share, 3), v.ok) for v in found.constants] == [
        ("constant answer: gate(...) always returns False", 0.667, False),
        ("constant answer: gate(...) always returns True", 0.333, True)]
    assert found.failures == (
        "01_gate.ipynb: q1, wrong answer 'constant answer: gate(...) always returns False' earns "
        "67% of the question's points (allowed: less than 50%); it passes "
        "test_large_drops_do_not_ship, test_a_huge_drop_does_not_ship",)


def test_an_exercise_without_wrong_answers_runs_no_kernel(tmp_path):
    path = write(good_notebook(), tmp_path / "s.ipynb")
    assert rehearsal.rehearse(path) == rehearsal.Rehearsal(path.resolve(), (), ())


def test_a_reused_kernel_keeps_no_name_and_survives_a_notebook_that_kills_it(tmp_path):
    """Variants share kernels (one after another): the next one sees none of the last one's
    names, and a variant that kills its kernel costs only itself."""
    def notebook(*sources):
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])

    notebooks = [notebook("LEAKED = 1", "import os; os.chdir('/')"),
                 notebook("import os\nprint('LEAKED' in globals(), os.getcwd())"),
                 notebook("import os\nos._exit(1)"),
                 notebook("print(6 * 7)")]
    # pylint: disable-next=protected-access
    results = asyncio.run(rehearsal._run_all(notebooks, tmp_path, 1, progress=False))
    assert rehearsal.stdout_of(results[1].cells[0]) == f"False {tmp_path}\n"
    assert isinstance(results[2], BaseException)
    assert rehearsal.stdout_of(results[3].cells[0]) == "42\n"
