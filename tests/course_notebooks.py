"""Small synthetic solution notebooks for the course-tooling tests (built with nbformat)."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

SOLUTION_Q1 = '''def double(x):
    """Twice x."""
    ### BEGIN SOLUTION
    ### HINT: multiply by two
    return 2 * x
    ### END SOLUTION
'''
PUBLIC_Q1 = '''import math


def test_double_two(ns):
    assert ns.double(2) == 4, "double(2) should be 4"
'''
HIDDEN_Q1 = '''def test_double_negative(ns):
    """Negative numbers double too."""
    assert ns.double(-3) == -6
'''
SOLUTION_Q2 = '''### BEGIN SOLUTION
ANSWER_Q2 = "delivery"
### END SOLUTION
'''
PUBLIC_Q2 = '''def test_answer_is_a_practice(ns):
    assert ns.ANSWER_Q2 in ("integration", "delivery", "deployment"), \\
        f"name one of the three practices, got {ns.ANSWER_Q2!r}"
'''
HIDDEN_Q2 = '''def test_answer(ns):
    assert ns.ANSWER_Q2 == "delivery"
'''


def make_solution_cell(source: str, question: str = "q1",
                       points: object = 2) -> nbformat.NotebookNode:
    """A code cell carrying solution metadata."""
    return nbformat.v4.new_code_cell(
        source, metadata={"labsupport": {"question": question, "points": points}})


def make_test_cell(source: str, question: str = "q1", tag: str = "public-tests",
                   **extra: object) -> nbformat.NotebookNode:
    """A code cell tagged as public (or hidden) tests of ``question`` (``extra`` goes into its
    metadata, e.g. weight)."""
    return nbformat.v4.new_code_cell(
        source, metadata={"tags": [tag], "labsupport": {"question": question, **extra}})


def make_wrong_cell(source: str, question: str = "q1", description: str = "adds instead",
                    **extra: object) -> nbformat.NotebookNode:
    """A raw cell tagged ``wrong-answer`` (``extra`` goes into its metadata, e.g. max_share)."""
    meta = {"question": question, "wrong_answer": description, **extra}
    return nbformat.v4.new_raw_cell(source, metadata={"tags": ["wrong-answer"],
                                                      "labsupport": meta})


def make_notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A python3 notebook holding copies of ``cells``."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells = [copy.deepcopy(cell) for cell in cells]
    return notebook


def good_notebook() -> nbformat.NotebookNode:
    """A valid solution: q1 (a function) and q2 (an answer), each with public and hidden tests."""
    return make_notebook(
        nbformat.v4.new_markdown_cell("# A small exercise"),
        nbformat.v4.new_code_cell("SEED = 3", metadata={"tags": ["parameters"]}),
        make_solution_cell(SOLUTION_Q1),
        make_test_cell(PUBLIC_Q1),
        make_test_cell(HIDDEN_Q1, tag="hidden-tests"),
        make_solution_cell(SOLUTION_Q2, question="q2", points=1.5),
        make_test_cell(PUBLIC_Q2, question="q2"),
        make_test_cell(HIDDEN_Q2, question="q2", tag="hidden-tests"),
    )


def write(notebook: nbformat.NotebookNode, path: Path) -> Path:
    """Write ``notebook`` to ``path`` (creating folders) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


# --- submissions built from a real exercise (the exact-points tests of exercises 04 and 08) -------

def solution_answers(solution: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The answer cell of each question, and each wrong answer's code by its description."""
    # Imported here: the course tooling is only needed by the tests that build submissions.
    from labsupport.course import authoring  # pylint: disable=import-outside-toplevel
    answers, wrong = {}, {}
    for cell in authoring.read_notebook(solution).cells:
        meta = cell.metadata.get(authoring.METADATA_KEY, {})
        if "wrong-answer" in cell.metadata.get("tags", []):
            wrong[meta["wrong_answer"]] = cell.source
        elif "points" in meta:
            answers[meta["question"]] = cell.source
    return answers, wrong


def with_block(cell_source: str, replacement: str) -> str:
    """``cell_source`` with its solution block replaced by ``replacement`` (column 0 code)."""
    from labsupport.course import authoring  # pylint: disable=import-outside-toplevel
    lines = cell_source.splitlines()
    begin, end = lines.index(authoring.BEGIN), lines.index(authoring.END)
    return "\n".join(lines[:begin] + replacement.splitlines() + lines[end + 1:])


def submission(exercise: Path, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The generated ``exercise`` with each question's answer cell set to ``answers[question]``."""
    from labsupport.course import authoring  # pylint: disable=import-outside-toplevel
    notebook = copy.deepcopy(authoring.read_notebook(exercise))
    for cell in notebook.cells:
        meta = cell.metadata.get(authoring.METADATA_KEY, {})
        if cell.cell_type == "code" and "points" in meta:
            cell.source = answers[meta["question"]]
    return notebook


def wrong_answer_cell(solution: Path, question: str, words: str) -> str:
    """``question``'s answer cell with the one wrong answer described by ``words`` in its block."""
    answers, wrong = solution_answers(solution)
    (source,) = [code for description, code in wrong.items() if words in description]
    return with_block(answers[question], source)


def grade_submissions(solution: Path, exercise: Path, submissions: dict[str, dict[str, str]],
                      folder: Path, out: Path, uid_offset: int) -> dict[str, dict[str, str]]:
    """Grade each student's answers (question -> answer cell) with ``grading.grade_batch``.

    Every submission is the generated ``exercise`` with its answer cells replaced, written to
    ``folder`` and graded into ``out`` in a sandboxed kernel of its own. Returns student -> row
    of ``grades.csv``. ``uid_offset`` keeps one test module's sandbox uids apart from another's.
    """
    # pylint: disable=import-outside-toplevel  # only the exact-points tests need the grader
    import csv
    import os

    from labsupport.course import grading
    from labsupport.course.sandbox import DEFAULT_UID_BASE, Limits
    limits = Limits(cell_seconds=60, submission_seconds=240, memory_bytes=2 * 1024**3,
                    processes=64, interrupt_grace_seconds=2)
    for student, chosen in submissions.items():
        nbformat.write(submission(exercise, chosen), folder / f"{student}.ipynb")
    # A sandbox kills every process of its uid: a test session of its own, on a shared machine,
    # takes uids no other session uses.
    uid_base = DEFAULT_UID_BASE + uid_offset + 16 * (os.getpid() % 100_000)
    summary = grading.grade_batch([solution], folder, out, limits, workers=2, progress=False,
                                  uid_base=uid_base)
    assert not summary.failed
    with open(out / "grades.csv", encoding="utf-8", newline="") as stream:
        return {row["student"]: row for row in csv.DictReader(stream)}
