"""Written answers: questions a person grades, with a rubric, beside the tested ones.

A solution notebook asks for a written answer with a Markdown cell tagged ``written-answer``.
Its text is the instructor's model answer; its metadata names the question, its points and
the rubric a teaching assistant ticks::

    {"labsupport": {"question": "w1", "points": 2,
                    "rubric": [{"item": "names the failed check (error rate)", "points": 1},
                               {"item": "says why it was not noise", "points": 1}]}}

The rubric's points add up to the question's. The student's exercise shows the same cell with
:data:`PLACEHOLDER` in place of the model answer and no rubric; ``check("w1")`` says whether the
saved notebook still holds the placeholder. The grader keeps only the text a student wrote
(:func:`answers_of`: never executed, capped at :data:`MAX_CHARS`), and the review page
(:mod:`labsupport.course.review`) shows it to people, escaped.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import nbformat

#: The cell tag of a written answer (a Markdown cell).
WRITTEN_TAG = "written-answer"
#: What the student's cell holds until they write in it.
PLACEHOLDER = "*Your answer: write it here, in place of this line, then save the notebook.*"
#: The most characters of a written answer the grader keeps (a long essay is cut, and says so).
MAX_CHARS = 20_000
_KEYS = {"question", "points", "rubric"}
_METADATA_KEY = "labsupport"  # authoring.METADATA_KEY (authoring imports this module)
_EXAMPLE = ('{"question": "w1", "points": 2, "rubric": [{"item": "names the failed check", '
            '"points": 1}, {"item": "says why it was not noise", "points": 1}]}')


@dataclass(frozen=True)
class RubricItem:
    """One thing a good answer does, and the points it earns."""

    item: str
    points: float


@dataclass(frozen=True)
class WrittenQuestion:
    """A question graded by a person.

    Attributes
    ----------
    name : str
        Its name, e.g. ``"w1"``.
    points : float
        What it is worth (the sum of its rubric's points).
    rubric : tuple of RubricItem
        What a teaching assistant ticks (empty in a generated exercise).
    model_answer : str
        The instructor's answer (``""`` in a generated exercise).
    cell : int
        The index of its cell in the notebook.
    prompt : str
        The question as the student reads it: the Markdown cell just above (``""``: none).
    """

    name: str
    points: float
    rubric: tuple[RubricItem, ...]
    model_answer: str
    cell: int
    prompt: str = ""


def _number(value: object, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: {what} must be a positive number, got {value!r}.")
    return float(value)


def _rubric(value: object, where: str) -> tuple[RubricItem, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: a written answer needs a rubric, a list of items with "
                         f"points, e.g. {_EXAMPLE}.")
    items = []
    for number, entry in enumerate(value, start=1):
        if not isinstance(entry, dict) or set(entry) != {"item", "points"} \
                or not isinstance(entry["item"], str) or not entry["item"].strip():
            raise ValueError(f"{where}: rubric item {number} must be "
                             '{"item": "<what a good answer does>", "points": 1}, '
                             f"got {entry!r}.")
        items.append(RubricItem(entry["item"].strip(),
                                _number(entry["points"], f"rubric item {number}'s points",
                                        where)))
    return tuple(items)


def read_question(cell: nbformat.NotebookNode, index: int, where: str,
                  solution: bool) -> WrittenQuestion:
    """Read a cell tagged ``written-answer``; ValueError naming the cell when it is malformed.

    In a solution the cell needs ``question``, ``points`` and a ``rubric`` whose points add up
    to ``points``; in a generated exercise only ``question`` and ``points``.
    """
    if cell.cell_type != "markdown":
        raise ValueError(f"{where}: a {WRITTEN_TAG!r} cell must be a Markdown cell.")
    meta = cell.metadata.get(_METADATA_KEY)
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: a {WRITTEN_TAG!r} cell needs metadata "
                         f'{{"{_METADATA_KEY}": {_EXAMPLE}}}.')
    unknown = sorted(set(meta) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: a {WRITTEN_TAG!r} cell takes the metadata keys "
                         f"{sorted(_KEYS)}, got unknown {unknown}.")
    name = meta.get("question")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{where}: a written answer's question must be a word such as 'w1', "
                         f"got {name!r}.")
    points = _number(meta.get("points"), "points", where)
    if not solution:
        return WrittenQuestion(name, points, (), "", index)
    rubric = _rubric(meta.get("rubric"), where)
    total = sum(item.points for item in rubric)
    if not math.isclose(total, points):
        raise ValueError(f"{where}: the rubric of {name!r} adds up to {total:g} points but the "
                         f"question is worth {points:g}; make them agree.")
    if not cell.source.strip():
        raise ValueError(f"{where}: write your model answer in the cell of {name!r} (students "
                         "never see it; reviewers do).")
    return WrittenQuestion(name, points, rubric, cell.source.strip(), index)


def student_cell(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student's version of a solution's written-answer cell: the placeholder, no rubric."""
    meta = cell.metadata[_METADATA_KEY]
    return nbformat.v4.new_markdown_cell(PLACEHOLDER, metadata={
        "tags": [WRITTEN_TAG],
        _METADATA_KEY: {"question": meta["question"], "points": copy.deepcopy(meta["points"])}})


def is_unanswered(text: str) -> bool:
    """True when a written answer is empty or still the placeholder."""
    return not text.strip() or text.strip() == PLACEHOLDER


def answers_of(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """The text of each written answer in a student's notebook, by question.

    Only Markdown cells tagged ``written-answer`` count, the first per question; nothing is
    executed or rendered. An unanswered cell gives ``""``; a text over :data:`MAX_CHARS` is cut
    and says so.
    """
    found: dict[str, str] = {}
    for cell in notebook.get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "markdown" \
                or WRITTEN_TAG not in (cell.get("metadata", {}).get("tags") or []):
            continue
        meta = cell.get("metadata", {}).get(_METADATA_KEY)
        name = meta.get("question") if isinstance(meta, dict) else None
        if not isinstance(name, str) or name in found:
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        text = "" if is_unanswered(text) else text.strip()
        if len(text) > MAX_CHARS:
            text = text[:MAX_CHARS] + f"\n\n[cut at {MAX_CHARS:,} characters]"
        found[name] = text
    return found
