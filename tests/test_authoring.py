"""Reading the exercise format and generating the student's notebook (labsupport.course.authoring).

Synthetic solution notebooks are built in memory with nbformat; no kernel runs here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
import pytest
from nbstripout import strip_output

from labsupport import cli
from labsupport.course import authoring
from tests.course_notebooks import (HIDDEN_Q1, PUBLIC_Q1, PUBLIC_Q2, SOLUTION_Q1,
                                    SOLUTION_Q2, good_notebook, make_notebook,
                                    make_solution_cell, make_test_cell, make_wrong_cell, write)

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture
def lab(tmp_path) -> Path:
    """A lab folder with one solution notebook and no exercises yet."""
    write(good_notebook(), tmp_path / "solutions" / "01_small.ipynb")
    return tmp_path


# --- reading the format ------------------------------------------------------------------------


def test_load_exercise_reads_questions_points_and_tests(tmp_path):
    exercise = authoring.load_exercise(write(good_notebook(), tmp_path / "s.ipynb"))
    assert [(q.name, q.points) for q in exercise.questions] == [("q1", 2.0), ("q2", 1.5)]
    q1 = exercise.question("q1")
    assert [(t.name, t.hidden, t.message) for t in q1.tests] == [
        ("test_double_two", False, ""),
        ("test_double_negative", True, "Negative numbers double too.")]
    assert q1.tests[0].source == PUBLIC_Q1
    assert q1.public_tests == q1.tests[:1]
    assert exercise.points == 3.5
    assert len(exercise.tests) == 4


def test_public_tests_come_before_hidden_ones_whatever_the_cell_order(tmp_path):
    notebook = make_notebook(make_solution_cell(SOLUTION_Q1),
                             make_test_cell(HIDDEN_Q1, tag="hidden-tests"),
                             make_test_cell(PUBLIC_Q1))
    tests = authoring.load_exercise(write(notebook, tmp_path / "s.ipynb")).question("q1").tests
    assert [t.hidden for t in tests] == [False, True]


def test_asking_for_an_unknown_question_lists_the_known_ones(tmp_path):
    exercise = authoring.load_exercise(write(good_notebook(), tmp_path / "s.ipynb"))
    with pytest.raises(ValueError, match="no question 'q9'; its questions are q1, q2"):
        exercise.question("q9")


BEGIN, END = authoring.BEGIN, authoring.END
OK_TEST = make_test_cell("def test_x(ns):\n    assert ns.x == 1\n")
BAD_NOTEBOOKS = {
    "unclosed block": ([make_solution_cell(f"{BEGIN}\nx = 1\n"), OK_TEST], "never closed"),
    "end without begin": ([make_solution_cell(f"x = 1\n{END}\n"), OK_TEST], "without a matching"),
    "nested blocks": ([make_solution_cell(f"{BEGIN}\n{BEGIN}\nx = 1\n{END}\n{END}\n"), OK_TEST],
                      "inside another solution block"),
    "empty block": ([make_solution_cell(f"{BEGIN}\n### HINT: h\n{END}\n"), OK_TEST], "is empty"),
    "misspelt marker": ([make_solution_cell(f"### BEGIN SOLUTIONS\nx = 1\n{END}\n"), OK_TEST],
                        "write the marker exactly"),
    "two hints": ([make_solution_cell(f"{BEGIN}\n### HINT: a\n### HINT: b\nx = 1\n{END}\n"),
                   OK_TEST], "at most one"),
    "hint outside a block": ([make_solution_cell(f"### HINT: a\n{BEGIN}\nx = 1\n{END}\n"), OK_TEST],
                             "belongs inside"),
    "missing points": ([nbformat.v4.new_code_cell(f"{BEGIN}\nx = 1\n{END}\n", metadata={
        "labsupport": {"question": "q1"}}), OK_TEST], 'needs "points"'),
    "zero points": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n", points=0), OK_TEST],
                    "positive number"),
    "boolean points": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n", points=True), OK_TEST],
                       "positive number"),
    "text points": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n", points="2"), OK_TEST],
                    "positive number"),
    "bad question name": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n", question="q 1"), OK_TEST],
                          "must be a word"),
    "metadata not a mapping": ([nbformat.v4.new_code_cell("x = 1", metadata={"labsupport": "q1"}),
                                OK_TEST], "must be a mapping"),
    "markers without metadata": ([nbformat.v4.new_code_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST],
                                 "markers need cell metadata"),
    "solution cell without markers": ([make_solution_cell("x = 1\n"), OK_TEST], "has no"),
    "duplicate question": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"),
                            make_solution_cell(f"{BEGIN}\ny = 1\n{END}\n"), OK_TEST],
                           "already has a solution cell"),
    "test for unknown question": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
                                   make_test_cell("def test_y(ns):\n    pass\n", question="q2")],
                                  r"unknown question\(s\) \['q2'\]"),
    "question without tests": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n")], "has no tests"),
    "no questions at all": ([nbformat.v4.new_code_cell("x = 1")], "no solution cells"),
    "hidden test name collides with public": (
        [make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
         make_test_cell("def test_x(ns):\n    pass\n", tag="hidden-tests")],
        "defines test_x twice"),
    "test without ns": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"),
                         make_test_cell("def test_x():\n    pass\n")], "exactly one parameter"),
    "test cell running code": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"),
                                make_test_cell("print('hi')\n\ndef test_x(ns):\n    pass\n")],
                               "only defines test functions"),
    "test cell without tests": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"),
                                 make_test_cell("def helper(ns):\n    pass\n")], "at least one"),
    "test cell with a magic": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"),
                                make_test_cell("%timeit 1\ndef test_x(ns):\n    pass\n")],
                               "not valid Python"),
    "test cell with markers": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), make_test_cell(
        f"def test_x(ns):\n    {BEGIN}\n    pass\n    {END}\n")], "cannot contain solution"),
    "both test tags": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), nbformat.v4.new_code_cell(
        "def test_x(ns):\n    pass\n", metadata={"tags": ["public-tests", "hidden-tests"],
                                                 "labsupport": {"question": "q1"}})],
                       "not both"),
    "test cell without question": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"),
                                    nbformat.v4.new_code_cell("def test_x(ns):\n    pass\n",
                                                              metadata={"tags": ["public-tests"]})],
                                   'needs "question"'),
}


TWO_BLOCKS = make_solution_cell(f"def f():\n    {BEGIN}\n    return 1\n    {END}\n\n\n"
                                f"def g():\n    {BEGIN}\n    return 2\n    {END}\n")
WRONG_ANSWER_NOTEBOOKS = {
    "wrong answer for an unknown question": (
        [make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
         make_wrong_cell("x = 2\n", question="q7")],
        r"cell 2: wrong answer 'adds instead' is for question 'q7', which has no answer cell"),
    "too few parts": ([TWO_BLOCKS, OK_TEST, make_wrong_cell("return 3\n")],
                      r"cell 2: the wrong answer has 1 part\(s\) but the answer cell has 2 "
                      r"solution block\(s\)"),
    "too many parts": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
                        make_wrong_cell("x = 2\n### NEXT BLOCK\nx = 3\n")], "has 2 part"),
    "max_share of one": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
                          make_wrong_cell("x = 2\n", max_share=1.0)],
                         r"cell 2: max_share of wrong answer 'adds instead' must be a number in "
                         r"\[0, 0.5\]"),
    "max_share above half": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
                              make_wrong_cell("x = 2\n", max_share=0.51)], "in \\[0, 0.5\\]"),
    "negative max_share": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
                            make_wrong_cell("x = 2\n", max_share=-0.1)], "in \\[0, 0.5\\]"),
    "text max_share": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
                        make_wrong_cell("x = 2\n", max_share="half")], "in \\[0, 0.5\\]"),
    "boolean max_share": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
                           make_wrong_cell("x = 2\n", max_share=False)], "in \\[0, 0.5\\]"),
    "no description": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
                        make_wrong_cell("x = 2\n", description=" ")], 'needs "wrong_answer"'),
    "misspelt key": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
                      make_wrong_cell("x = 2\n", maxshare=0.2)], r"unknown \['maxshare'\]"),
    "markers in a wrong answer": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
                                   make_wrong_cell(f"{BEGIN}\nx = 2\n{END}\n")],
                                  "without solution markers"),
    "empty part": ([TWO_BLOCKS, OK_TEST, make_wrong_cell("return 3\n### NEXT BLOCK\n")],
                   "part 2 of wrong answer 'adds instead' is empty"),
    "not valid Python once substituted": (
        [make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST, make_wrong_cell("x = (2\n")],
        "not valid Python"),
    "a test and a wrong answer at once": (
        [make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST, nbformat.v4.new_raw_cell(
            "x = 2\n", metadata={"tags": ["wrong-answer", "public-tests"],
                                 "labsupport": {"question": "q1", "wrong_answer": "w"}})],
        "either a test or a 'wrong-answer'"),
    "a markdown wrong answer": (
        [make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
         nbformat.v4.new_markdown_cell("x = 2", metadata={"tags": ["wrong-answer"]})],
        "must be a raw cell"),
    "a code wrong answer (Run All would execute it)": (
        [make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
         nbformat.v4.new_code_cell("x = 2", metadata={
             "tags": ["wrong-answer"],
             "labsupport": {"question": "q1", "wrong_answer": "w"}})],
        "must be a raw cell"),
    "a test weight of zero": (
        [make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"),
         make_test_cell("def test_x(ns):\n    assert ns.x == 1\n", weight=0)],
        "weight must be a positive number"),
    "a misspelt test key": (
        [make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"),
         make_test_cell("def test_x(ns):\n    assert ns.x == 1\n", wieght=2)],
        r"unknown \['wieght'\]"),
    "the same mistake twice": ([make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"), OK_TEST,
                                make_wrong_cell("x = 2\n"), make_wrong_cell("x = 3\n")],
                               "already declares the wrong answer 'adds instead'"),
    "a question with hidden tests only": (
        [make_solution_cell(f"{BEGIN}\nx = 1\n{END}\n"),
         make_test_cell("def test_x(ns):\n    assert ns.x == 1\n", tag="hidden-tests")],
        "question 'q1' has no public tests"),
}
BAD_NOTEBOOKS.update(WRONG_ANSWER_NOTEBOOKS)


@pytest.mark.parametrize("cells, message", BAD_NOTEBOOKS.values(), ids=BAD_NOTEBOOKS.keys())
def test_malformed_solutions_are_refused_with_a_reason(tmp_path, cells, message):
    path = write(make_notebook(*cells), tmp_path / "bad.ipynb")
    with pytest.raises(ValueError, match=message):
        authoring.load_exercise(path)


# --- wrong answers ------------------------------------------------------------------------------


def _with_wrong_answers() -> nbformat.NotebookNode:
    """good_notebook plus two wrong answers for q1 (one with max_share) and one for q2."""
    notebook = good_notebook()
    notebook.cells[3:3] = [make_wrong_cell("return x + 2\n")]
    notebook.cells.append(make_wrong_cell("    return abs(2 * x)\n", description="drops the sign",
                                          max_share=0.25))
    notebook.cells.append(make_wrong_cell('ANSWER_Q2 = "deployment"\n', question="q2",
                                          description="confuses the two CDs", max_share=0))
    return notebook


def test_wrong_answers_are_read_per_question_and_are_not_tests(tmp_path):
    exercise = authoring.load_exercise(write(_with_wrong_answers(), tmp_path / "s.ipynb"))
    q1, q2 = exercise.questions
    assert [(w.description, w.parts, w.max_share, w.cell) for w in q1.wrong_answers] == [
        ("adds instead", ("return x + 2",), 0.5, 3),
        ("drops the sign", ("return abs(2 * x)",), 0.25, 9)]
    assert [(w.question, w.max_share) for w in q2.wrong_answers] == [("q2", 0.0)]
    assert exercise.wrong_answers == q1.wrong_answers + q2.wrong_answers
    assert [t.name for t in exercise.tests] == ["test_double_two", "test_double_negative",
                                                "test_answer_is_a_practice", "test_answer"]
    assert (q1.cell, q2.cell) == (2, 6)


def test_a_wrong_answer_replaces_the_solution_block_at_its_indentation(tmp_path):
    notebook = _with_wrong_answers()
    exercise = authoring.parse_exercise(notebook, tmp_path / "s.ipynb")
    variant = authoring.with_wrong_answer(notebook, exercise, exercise.wrong_answers[1])
    assert not [c for c in variant.cells if "wrong-answer" in c.metadata.get("tags", [])]
    assert len(variant.cells) == len(notebook.cells) - 3
    assert variant.cells[2].source == ('def double(x):\n    """Twice x."""\n'
                                       "    return abs(2 * x)\n")
    scope: dict = {}
    exec(variant.cells[2].source, scope)  # pylint: disable=exec-used
    assert scope["double"](-3) == 6
    assert notebook.cells[2].source == SOLUTION_Q1, "the solution itself is left alone"


def test_each_part_goes_into_its_own_block():
    source = TWO_BLOCKS.source
    replaced = authoring.substitute_blocks(source, ("return 3", "x = 4\n\nreturn x"), "here")
    assert replaced == ("def f():\n    return 3\n\n\ndef g():\n    x = 4\n\n    return x\n")
    notebook = make_notebook(TWO_BLOCKS, OK_TEST,
                             make_wrong_cell("return 3\n### NEXT BLOCK\nx = 4\n\nreturn x\n"))
    exercise = authoring.parse_exercise(notebook, "s.ipynb")
    assert exercise.wrong_answers[0].parts == ("return 3", "x = 4\n\nreturn x")
    assert authoring.with_wrong_answer(notebook, exercise,
                                       exercise.wrong_answers[0]).cells[0].source == replaced


def test_without_wrong_answers_keeps_every_other_cell():
    notebook = _with_wrong_answers()
    kept = authoring.without_wrong_answers(notebook)
    assert [c.source for c in kept.cells] == [c.source for c in good_notebook().cells]
    assert len(notebook.cells) == len(kept.cells) + 3, "the original is not changed"


def test_the_generated_exercise_drops_the_wrong_answers():
    student = authoring.student_notebook(_with_wrong_answers(), "solutions/01_small.ipynb")
    text = authoring.render(student)
    assert "wrong-answer" not in text and "abs(2 * x)" not in text and "adds instead" not in text
    assert text == authoring.render(authoring.student_notebook(good_notebook(),
                                                               "solutions/01_small.ipynb"))


def test_a_generated_exercise_with_a_wrong_answer_is_not_one(tmp_path, student):
    tampered = copy.deepcopy(student)
    tampered.cells.append(make_wrong_cell("return 3\n"))
    with pytest.raises(ValueError, match="holds no 'wrong-answer' cells"):
        authoring.load_public_tests(write(tampered, tmp_path / "01_small.ipynb"))


def test_errors_name_the_cell_and_line(tmp_path):
    path = write(make_notebook(nbformat.v4.new_markdown_cell("intro"),
                               make_solution_cell(f"x = 0\n{BEGIN}\nx = 1\n"), OK_TEST),
                 tmp_path / "bad.ipynb")
    with pytest.raises(ValueError, match=r"bad.ipynb, cell 1, line 2"):
        authoring.load_exercise(path)


def test_a_file_that_is_not_a_notebook_is_a_value_error(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{ not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not a readable notebook"):
        authoring.load_exercise(path)


# --- the student notebook ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def student() -> nbformat.NotebookNode:
    """The exercise generated from :func:`good_notebook`."""
    return authoring.student_notebook(good_notebook(), "solutions/01_small.ipynb")


def test_student_notebook_starts_with_the_generated_header_and_setup(student):
    first, setup = student.cells[0], student.cells[1]
    assert first.cell_type == "markdown"
    assert first.source.startswith("Generated from `solutions/01_small.ipynb` by "
                                   "`labsupport exercises build` — do not edit; your answers go in")
    assert 'selfcheck.Checker("01_small.ipynb", globals())' in setup.source


def test_solution_blocks_become_stubs_at_their_indentation(student):
    sources = [cell.source for cell in student.cells]
    assert ('def double(x):\n    """Twice x."""\n'
            '    raise NotImplementedError("q1: multiply by two")\n') in sources
    assert f'raise NotImplementedError("q2: {authoring.DEFAULT_HINT}")\n' in sources


def test_the_stub_raises_not_implemented_when_run(student):
    stub = next(c.source for c in student.cells if c.source.startswith("def double"))
    scope: dict = {}
    exec(stub, scope)  # pylint: disable=exec-used  # our own generated cell
    with pytest.raises(NotImplementedError, match="q1: multiply by two"):
        scope["double"](2)


def test_several_blocks_in_one_cell_each_become_a_stub():
    notebook = make_notebook(make_solution_cell(
        f"def f():\n    {BEGIN}\n    return 1\n    {END}\n\n\ndef g():\n    {BEGIN}\n"
        f"    ### HINT: g's hint\n    return 2\n    {END}\n"), OK_TEST)
    stub = authoring.student_notebook(notebook, "s.ipynb").cells[2].source
    assert stub == ('def f():\n    raise NotImplementedError("q1: replace this line with your '
                    'answer")\n\n\ndef g():\n    raise NotImplementedError("q1: g\'s hint")\n')


def test_hidden_tests_are_removed_and_public_ones_kept(student):
    text = authoring.render(student)
    assert "test_double_negative" not in text and "Negative numbers" not in text
    assert "def test_answer(" not in text
    public = [c for c in student.cells if "public-tests" in c.metadata.get("tags", [])]
    assert [c.source for c in public] == [PUBLIC_Q1, PUBLIC_Q2]
    assert "return 2 * x" not in text and '"delivery"' not in text


def test_check_cells_follow_each_questions_public_tests_and_end_the_notebook(student):
    sources = [cell.source for cell in student.cells]
    assert sources[sources.index(PUBLIC_Q1) + 1] == 'check("q1")'
    assert sources[sources.index(PUBLIC_Q2) + 1] == 'check("q2")'
    assert sources[-1] == "check_all()"
    generated = [cell.source.split("\n")[-1] for cell in student.cells
                 if cell.metadata.get("labsupport") == {"selfcheck": True}]
    assert generated == ["check, check_all = checker.check, checker.check_all", 'check("q1")',
                         'check("q2")', "check_all()"]


def test_student_notebook_is_clean_and_numbered_like_nbstripout(student):
    nbformat.validate(student)
    assert [cell.id for cell in student.cells] == [str(i) for i in range(len(student.cells))]
    stripped = strip_output(copy.deepcopy(student), keep_output=False, keep_count=False,
                            keep_id=False, extra_keys=["metadata.signature", "metadata.widgets",
                                                       "cell.metadata.collapsed",
                                                       "cell.metadata.scrolled"])
    assert stripped == student


def test_outputs_and_stray_metadata_of_the_solution_are_dropped():
    notebook = good_notebook()
    for cell in notebook.cells:
        cell.metadata["collapsed"] = True
        if cell.cell_type == "code":
            cell.execution_count = 7
            cell.outputs = [nbformat.v4.new_output("stream", text="4\n")]
    notebook.metadata["widgets"] = {"state": {}}
    student = authoring.student_notebook(notebook, "solutions/01_small.ipynb")
    assert authoring.render(student) == authoring.render(
        authoring.student_notebook(good_notebook(), "solutions/01_small.ipynb"))


def test_rendering_is_deterministic():
    texts = {authoring.render(authoring.student_notebook(good_notebook(), "solutions/x.ipynb"))
             for _ in range(3)}
    assert len(texts) == 1
    assert texts.pop().endswith("}\n")


def test_a_solution_without_kernelspec_is_refused():
    notebook = good_notebook()
    del notebook.metadata["kernelspec"]
    with pytest.raises(ValueError, match="no kernelspec"):
        authoring.student_notebook(notebook, "s.ipynb")


def test_student_notebook_validates_the_format_first():
    with pytest.raises(ValueError, match="has no tests"):
        authoring.student_notebook(make_notebook(make_solution_cell(SOLUTION_Q2)), "s.ipynb")


def test_load_public_tests_reads_a_generated_exercise(tmp_path, student):
    exercise = authoring.load_public_tests(write(student, tmp_path / "01_small.ipynb"))
    assert [(q.name, q.points, [t.name for t in q.tests]) for q in exercise.questions] == [
        ("q1", 2.0, ["test_double_two"]), ("q2", 1.5, ["test_answer_is_a_practice"])]


def test_load_public_tests_refuses_a_solution(tmp_path):
    with pytest.raises(ValueError, match="contains hidden tests"):
        authoring.load_public_tests(write(good_notebook(), tmp_path / "s.ipynb"))


# --- build and check -----------------------------------------------------------------------------


def test_build_writes_the_exercise_and_a_rebuild_changes_nothing(lab):
    first = authoring.build_exercises(lab)
    target = lab / "exercises" / "01_small.ipynb"
    assert [(b.exercise, b.status) for b in first] == [(target, "written")]
    before = target.read_bytes()
    assert [b.status for b in authoring.build_exercises(lab)] == ["unchanged"]
    assert target.read_bytes() == before
    assert authoring.is_generated(target)
    assert not authoring.check_exercises(lab)


def test_build_refuses_to_overwrite_a_hand_written_exercise(lab):
    target = write(make_notebook(nbformat.v4.new_markdown_cell("my own notes")),
                   lab / "exercises" / "01_small.ipynb")
    with pytest.raises(ValueError, match="was not generated by labsupport.*--force"):
        authoring.build_exercises(lab)
    assert "my own notes" in target.read_text(encoding="utf-8")
    authoring.build_exercises(lab, force=True)
    assert authoring.is_generated(target)


def test_build_of_named_exercises(lab):
    write(good_notebook(), lab / "solutions" / "02_other.ipynb")
    built = authoring.build_exercises(lab, ("02_other",))
    assert [b.exercise.name for b in built] == ["02_other.ipynb"]
    assert not (lab / "exercises" / "01_small.ipynb").exists()
    for name in ("02_other.ipynb", "solutions/02_other.ipynb"):
        assert authoring.build_exercises(lab, (name,))[0].status == "unchanged"


def test_build_of_an_unknown_name_lists_the_available_ones(lab):
    with pytest.raises(ValueError, match="available: 01_small"):
        authoring.build_exercises(lab, ("99_none",))


def test_build_outside_a_lab_says_where_to_run_it(tmp_path):
    with pytest.raises(ValueError, match="has no solutions/ folder"):
        authoring.build_exercises(tmp_path)


def test_check_names_stale_missing_orphaned_and_invalid_exercises(lab):
    assert [(p.kind, p.path) for p in authoring.check_exercises(lab)] == [
        ("missing", Path("exercises/01_small.ipynb"))]
    authoring.build_exercises(lab)
    solution = lab / "solutions" / "01_small.ipynb"
    edited = nbformat.read(solution, as_version=4)
    edited.cells[0].source = "# A renamed exercise"
    write(edited, solution)
    write(good_notebook(), lab / "exercises" / "07_gone.ipynb")
    write(make_notebook(make_solution_cell(SOLUTION_Q2)), lab / "solutions" / "03_bad.ipynb")
    problems = authoring.check_exercises(lab)
    assert [(p.kind, p.path.as_posix()) for p in problems] == [
        ("stale", "exercises/01_small.ipynb"), ("invalid", "solutions/03_bad.ipynb"),
        ("orphaned", "exercises/07_gone.ipynb")]
    assert "has no tests" in problems[1].detail


def test_cli_build_then_check(lab, capsys):
    assert cli.main(["exercises", "build", "--root", str(lab)]) == 0
    assert "written   exercises/01_small.ipynb" in capsys.readouterr().out
    assert cli.main(["exercises", "check", "--root", str(lab)]) == 0
    (lab / "exercises" / "01_small.ipynb").write_text(
        json.dumps(json.loads((lab / "exercises" / "01_small.ipynb").read_text("utf-8")),
                   indent=2), encoding="utf-8")
    assert cli.main(["exercises", "check", "--root", str(lab)]) == 1
    assert "stale: exercises/01_small.ipynb" in capsys.readouterr().err


def test_cli_build_reports_a_refusal_and_fails(lab, capsys):
    write(make_notebook(), lab / "exercises" / "01_small.ipynb")
    assert cli.main(["exercises", "build", "--root", str(lab)]) == 1
    assert "--force" in capsys.readouterr().err


def test_the_real_exercises_are_generated(tmp_path):
    for solution in sorted((ROOT / "solutions").glob("*.ipynb")):
        exercise = ROOT / "exercises" / solution.name
        assert authoring.is_generated(exercise)
        assert exercise.read_text(encoding="utf-8") == authoring.exercise_text(solution, ROOT)
    assert not authoring.is_generated(write(make_notebook(), tmp_path / "empty.ipynb"))


def test_tests_share_their_questions_points_in_proportion_to_their_weight(tmp_path):
    notebook = good_notebook()
    notebook.cells[4].metadata["labsupport"]["weight"] = 3  # q1's hidden test
    exercise = authoring.load_exercise(write(notebook, tmp_path / "s.ipynb"))
    q1, q2 = exercise.questions
    assert [(t.name, t.weight, q1.test_points(t)) for t in q1.tests] == [
        ("test_double_two", 1.0, 0.5), ("test_double_negative", 3.0, 1.5)]
    assert [q2.test_points(t) for t in q2.tests] == [0.75, 0.75]


def test_cells_for_instructors_only_never_reach_the_exercise():
    notebook = good_notebook()
    notebook.cells.insert(5, nbformat.v4.new_markdown_cell(
        "## Grading notes: q2 accepts only delivery", metadata={"tags": ["instructors-only"]}))
    text = authoring.render(authoring.student_notebook(notebook, "solutions/01_small.ipynb"))
    assert "Grading notes" not in text and "instructors-only" not in text


def test_a_test_reading_a_name_no_answer_defines_is_refused(tmp_path):
    """Data, seeds and helpers a test reads from the notebook are the student's to change."""
    notebook = good_notebook()
    notebook.cells.insert(2, nbformat.v4.new_code_cell("DATA = [1, 2]\n\ndef helper():\n    pass"))
    notebook.cells[5].source += ("\n\ndef test_doubles_the_data(ns):\n"
                                 "    assert [ns.double(x) for x in ns.DATA] == [2, 4]\n")
    path = write(notebook, tmp_path / "s.ipynb")
    assert authoring.untrusted_reads(notebook, path) == [
        "s.ipynb: q1's test cell (test_double_negative...) reads ns.DATA, which no answer cell "
        "defines: the student's notebook controls it, so a result built on it can be bought; "
        "hold that data, seed or helper in the test cell (or import it from labsupport)"]
    notebook.cells[5].source = notebook.cells[5].source.replace("ns.DATA", "[1, 2]")
    assert not authoring.untrusted_reads(notebook, path)
