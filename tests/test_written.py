"""Written answers (labsupport.course.written): the format, the student's cell, the self-check,
and what the grader keeps of a student's text."""

from __future__ import annotations

import copy

import nbformat
import pytest

from labsupport.course import authoring, selfcheck, written
from tests.course_notebooks import good_notebook, write

RUBRIC = [{"item": "names the failed check (error rate)", "points": 1},
          {"item": "says why one bad step was not noise", "points": 1.5}]
MODEL = "The error rate of the canary step was 3 %, above the 1 % limit, on 800 requests."


def written_cell(source: str = MODEL, **meta: object) -> nbformat.NotebookNode:
    """A solution's written-answer cell for w1 (``meta`` overrides its metadata)."""
    return nbformat.v4.new_markdown_cell(source, metadata={
        "tags": [written.WRITTEN_TAG],
        "labsupport": {"question": "w1", "points": 2.5, "rubric": copy.deepcopy(RUBRIC),
                       **meta}})


def with_written() -> nbformat.NotebookNode:
    """The small exercise with a prompt and a written answer w1 after q2."""
    notebook = good_notebook()
    notebook.cells += [nbformat.v4.new_markdown_cell("**w1.** Why was the canary rolled back?"),
                       written_cell()]
    return notebook


def test_a_written_question_is_read_with_its_rubric(tmp_path):
    exercise = authoring.load_exercise(write(with_written(), tmp_path / "s.ipynb"))
    (question,) = exercise.written
    assert question == written.WrittenQuestion(
        "w1", 2.5, (written.RubricItem("names the failed check (error rate)", 1.0),
                    written.RubricItem("says why one bad step was not noise", 1.5)), MODEL, 9,
        "**w1.** Why was the canary rolled back?")
    assert [q.name for q in exercise.questions] == ["q1", "q2"]


@pytest.mark.parametrize("cell, message", [
    (written_cell(points=3), "adds up to 2.5 points but the question is worth 3"),
    (written_cell(rubric=[]), "needs a rubric"),
    (written_cell(rubric=[{"item": "", "points": 1}]), "rubric item 1 must be"),
    (written_cell(rubric=[{"item": "x", "points": -1}]), "rubric item 1's points must be a "
                                                         "positive number"),
    (written_cell(question="q1"), "question 'q1' is asked twice"),
    (written_cell(question="w 1"), "must be a word"),
    (written_cell(answer="x"), r"unknown \['answer'\]"),
    (written_cell(source="  "), "write your model answer"),
    (nbformat.v4.new_code_cell("x = 1", metadata={"tags": [written.WRITTEN_TAG]}),
     "must be a Markdown cell"),
])
def test_a_malformed_written_question_is_refused_naming_its_cell(tmp_path, cell, message):
    notebook = good_notebook()
    notebook.cells.append(cell)
    with pytest.raises(ValueError, match=message):
        authoring.load_exercise(write(notebook, tmp_path / "s.ipynb"))


def test_the_student_sees_the_prompt_a_placeholder_and_a_check_but_no_rubric_or_answer():
    student = authoring.student_notebook(with_written(), "solutions/01_small.ipynb")
    text = authoring.render(student)
    assert MODEL not in text and "names the failed check" not in text and "rubric" not in text
    sources = [cell.source for cell in student.cells]
    at = sources.index(written.PLACEHOLDER)
    assert sources[at - 1] == "**w1.** Why was the canary rolled back?"
    assert sources[at + 1] == 'check("w1")'
    assert student.cells[at].metadata == {"tags": [written.WRITTEN_TAG],
                                          "labsupport": {"question": "w1", "points": 2.5}}


def test_the_self_check_reads_the_saved_answer(tmp_path):
    student = authoring.student_notebook(with_written(), "solutions/01_small.ipynb")
    path = write(student, tmp_path / "01_small.ipynb")
    checker = selfcheck.Checker(path, {})
    assert checker.check("w1").status == "still empty"
    assert "your written answer is still empty" in repr(checker.check("w1"))
    # Worded as every unanswered check is, so the exercises' stub test reads it as unanswered.
    assert "not answered yet" in repr(checker.check("w1"))
    answer = next(c for c in student.cells if c.source == written.PLACEHOLDER)
    answer.source = "It failed the error-rate check: 3 % against 1 %."
    write(student, path)
    found = checker.check("w1")
    assert found.text == answer.source and found.status == "written (graded by a person)"
    assert "written answer saved (10 words)" in repr(found)
    assert [row[0] for row in checker.check_all().rows()] == ["q1", "q2", "w1"]


def test_the_grader_keeps_only_the_text_and_caps_it():
    student = authoring.student_notebook(with_written(), "solutions/01_small.ipynb")
    assert written.answers_of(student) == {"w1": ""}
    cell = next(c for c in student.cells if c.source == written.PLACEHOLDER)
    cell.source = "<script>alert(1)</script>" + "x" * written.MAX_CHARS
    found = written.answers_of(student)["w1"]
    assert found.startswith("<script>") and found.endswith("[cut at 20,000 characters]")
    assert len(found) < written.MAX_CHARS + 40
    broken = {"cells": [{"cell_type": "markdown", "metadata": {"tags": ["written-answer"]},
                         "source": "no question named"}, "not a cell"]}
    assert not written.answers_of(broken)


def test_a_written_answer_carries_the_context_it_names():
    # Exercise 06's w1 asks about the student's rule of question 2, which the reviewer never saw.
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("ANSWER_Q2 = {'a': 1}\nx = 2"),
        nbformat.v4.new_code_cell("ANSWER_Q2 = {'a': 2,\n             'b': '```'}  # final"),
        written.student_cell(written_cell(context=["ANSWER_Q2", "MISSING"]))]
    notebook.cells[2].source = "My rule failed on latency."
    text = written.answers_of(notebook)["w1"]
    assert text.startswith("My rule failed on latency.\n\n---\n\nThe student's `ANSWER_Q2`")
    assert "````python\nANSWER_Q2 = {'a': 2,\n             'b': '```'}\n````" in text
    assert "The student's `MISSING`, as their notebook assigns it:\n\n```python\n(not found)\n```" \
        in text
    notebook.cells[2].source = written.PLACEHOLDER
    assert written.answers_of(notebook)["w1"] == "", "no answer: nothing to review"


def test_a_bad_context_is_refused(tmp_path):
    notebook = good_notebook()
    notebook.cells.append(written_cell(context="ANSWER_Q2"))
    with pytest.raises(ValueError, match="context must be a list of variable names"):
        authoring.load_exercise(write(notebook, tmp_path / "s.ipynb"))
