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


def make_test_cell(source: str, question: str = "q1",
                   tag: str = "public-tests") -> nbformat.NotebookNode:
    """A code cell tagged as public (or hidden) tests of ``question``."""
    return nbformat.v4.new_code_cell(
        source, metadata={"tags": [tag], "labsupport": {"question": question}})


def make_wrong_cell(source: str, question: str = "q1", description: str = "adds instead",
                    **extra: object) -> nbformat.NotebookNode:
    """A code cell tagged ``wrong-answer`` (``extra`` goes into its metadata, e.g. max_share)."""
    meta = {"question": question, "wrong_answer": description, **extra}
    return nbformat.v4.new_code_cell(source, metadata={"tags": ["wrong-answer"],
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
