"""Written answers: questions a person grades, with a rubric, beside the tested ones.

A solution notebook asks for a written answer with a Markdown cell tagged ``written-answer``.
Its text is the instructor's model answer; its metadata names the question, its points and
the rubric a teaching assistant ticks::

    {"labsupport": {"question": "w1", "points": 2,
                    "rubric": [{"item": "names the failed check (error rate)", "points": 1},
                               {"item": "says why it was not noise", "points": 1}]}}

The rubric's points add up to the question's. An optional ``"context": ["ANSWER_Q2"]`` names
variables of the student's own notebook a reviewer needs beside the answer (exercise 06 asks
about the student's rule of question 2): the grader appends the source of their last top-level
assignment to the answer kept, as a fenced block (:func:`context_of`, parsed, never run).
The student's exercise shows the same cell with :data:`PLACEHOLDER` in place of the model answer
and no rubric; ``check("w1")`` says whether the
saved notebook still holds the placeholder. The grader keeps only the text a student wrote
(:func:`answers_of`: never executed, capped at :data:`MAX_CHARS`), and the review page
(:mod:`labsupport.course.review`) shows it to people, escaped.
"""

from __future__ import annotations

import ast
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
_KEYS = {"question", "points", "rubric", "context"}
#: The most characters of context (:func:`context_of`) kept beside an answer.
MAX_CONTEXT_CHARS = 2_000
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
    context : tuple of str
        Variables of the student's notebook shown to the reviewer beside the answer.
    """

    name: str
    points: float
    rubric: tuple[RubricItem, ...]
    model_answer: str
    cell: int
    prompt: str = ""
    context: tuple[str, ...] = ()


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
    context = meta.get("context", [])
    if not isinstance(context, list) or not all(isinstance(v, str) and v.isidentifier()
                                                for v in context):
        raise ValueError(f"{where}: a written answer's context must be a list of variable "
                         f"names such as [\"ANSWER_Q2\"], got {context!r}.")
    if not solution:
        return WrittenQuestion(name, points, (), "", index, context=tuple(context))
    rubric = _rubric(meta.get("rubric"), where)
    total = sum(item.points for item in rubric)
    if not math.isclose(total, points):
        raise ValueError(f"{where}: the rubric of {name!r} adds up to {total:g} points but the "
                         f"question is worth {points:g}; make them agree.")
    if not cell.source.strip():
        raise ValueError(f"{where}: write your model answer in the cell of {name!r} (students "
                         "never see it; reviewers do).")
    return WrittenQuestion(name, points, rubric, cell.source.strip(), index,
                           context=tuple(context))


def student_cell(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student's version of a solution's written-answer cell: the placeholder, no rubric."""
    meta = cell.metadata[_METADATA_KEY]
    kept = {"question": meta["question"], "points": copy.deepcopy(meta["points"])}
    if meta.get("context"):
        kept["context"] = list(meta["context"])
    return nbformat.v4.new_markdown_cell(PLACEHOLDER, metadata={
        "tags": [WRITTEN_TAG], _METADATA_KEY: kept})


def is_unanswered(text: str) -> bool:
    """True when a written answer is empty or still the placeholder."""
    return not text.strip() or text.strip() == PLACEHOLDER


def context_of(notebook: nbformat.NotebookNode, names: list[str] | tuple[str, ...]) -> str:
    """The source of the last top-level assignment of each of ``names`` in the notebook's code
    cells, as Markdown for a reviewer: a fenced block each (``(not found)`` when none), cut at
    :data:`MAX_CONTEXT_CHARS`. The cells are parsed, never run."""
    found: dict[str, str] = {}
    for cell in notebook.get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AnnAssign) else []
            for target in targets:
                if isinstance(target, ast.Name) and target.id in names:
                    found[target.id] = ast.get_source_segment(source, node) or ""
    parts = []
    for name in names:
        text = found.get(name, "(not found)")[:MAX_CONTEXT_CHARS]
        fence = "`" * max(3, 1 + _longest_backticks(text))
        parts.append(f"The student's `{name}`, as their notebook assigns it:\n\n"
                     f"{fence}python\n{text}\n{fence}")
    return "\n\n".join(parts)


def _longest_backticks(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def answers_of(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """The text of each written answer in a student's notebook, by question.

    Only Markdown cells tagged ``written-answer`` count, the first per question; nothing is
    executed or rendered. An unanswered cell gives ``""``; a text over :data:`MAX_CHARS` is cut
    and says so; an answer whose cell names a ``context`` ends with it (:func:`context_of`).
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
        context = meta.get("context") if isinstance(meta, dict) else None
        if text and isinstance(context, list) and context \
                and all(isinstance(v, str) and v.isidentifier() for v in context[:5]):
            text += "\n\n---\n\n" + context_of(notebook, context[:5])
        found[name] = text
    return found
