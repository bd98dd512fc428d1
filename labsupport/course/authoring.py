"""Single-source exercises: read a solution notebook and derive the student's exercise from it.

An instructor writes one notebook, ``solutions/NN_topic.ipynb``. In it:

* the answer code of question ``q1`` sits in a code cell between the lines ``### BEGIN SOLUTION``
  and ``### END SOLUTION``; the cell's metadata is ``{"labsupport": {"question": "q1",
  "points": 2}}`` and an optional line ``### HINT: <text>`` inside the block becomes the stub's
  message;
* tests are code cells tagged ``public-tests`` or ``hidden-tests`` with metadata
  ``{"labsupport": {"question": "q1"}}``; each defines one or more ``def test_<what>(ns):``
  functions (plus imports and helpers), where ``ns`` gives attribute access to the student's
  notebook namespace; every question has at least one public test. A question's points are
  shared by its tests in proportion to their ``weight`` (test-cell metadata, default 1, the
  same for every test the cell defines): weight the tests that check the skill, so that a
  half-right answer earns the part it got right and nothing more;
* any other cell tagged ``instructors-only`` (a heading over the wrong answers, a grading note)
  stays in the solution and never reaches the exercise;
* plausible wrong answers are *raw* cells (so that Run All never executes them) tagged
  ``wrong-answer`` with metadata ``{"labsupport": {"question": "q1", "wrong_answer": "<the
  mistake>", "max_share": 0.3}}``: their source, written at column 0, replaces the content of
  the question's solution block (parts separated by ``### NEXT BLOCK`` when the answer cell has
  several blocks). They are neither answers nor tests: :func:`with_wrong_answer` builds the
  solution notebook with one of them substituted, and ``labsupport exercises check`` proves it
  earns less than ``max_share`` of the question's points (at most 0.5, the default: a wrong
  answer earns *under* half; ``max_share`` 0 means nothing at all), see
  :mod:`labsupport.course.rehearsal`.

:func:`load_exercise` reads and validates that format; :func:`student_notebook` derives the
exercise students receive: every solution block becomes ``raise NotImplementedError("q1: ...")``
at the block's indentation, hidden tests and wrong answers disappear, public tests stay (the
self-check reads them from the exercise file), and generated cells set up and call the
self-check.
"""

from __future__ import annotations

import ast
import copy
import json
import math
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat

from labsupport.course import written as written_answers

#: Cell tags of test cells.
PUBLIC_TAG = "public-tests"
HIDDEN_TAG = "hidden-tests"
TAGS = (PUBLIC_TAG, HIDDEN_TAG)
#: Cell tag of a declared wrong answer (never in an exercise, never a test).
WRONG_TAG = "wrong-answer"
#: Cell tag of any other cell written for instructors only (a heading over the wrong answers, a
#: note on grading): kept in the solution, never in the exercise.
INSTRUCTOR_TAG = "instructors-only"
#: The line separating the parts of a wrong answer whose answer cell has several blocks.
NEXT_BLOCK = "### NEXT BLOCK"
#: The share of its question's points a wrong answer must stay under unless its cell says
#: otherwise; also the largest share a cell may allow (a wrong answer earns under half).
DEFAULT_MAX_SHARE = 0.5
_WRONG_KEYS = {"question", "wrong_answer", "max_share"}
_TEST_KEYS = {"question", "weight"}

#: The cell-metadata key holding ``question`` (and ``points`` on solution cells).
METADATA_KEY = "labsupport"
#: Metadata of the cells a build adds to run the self-check (a grader may skip them).
SELFCHECK_METADATA = {METADATA_KEY: {"selfcheck": True}}

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT = "### HINT:"

#: How the first cell of every generated exercise starts; build refuses to overwrite files
#: whose first cell does not.
GENERATED_MARKER = "Generated from "
DEFAULT_HINT = "replace this line with your answer"

_QUESTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ALLOWED_TOP_LEVEL = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign,
                      ast.AnnAssign)


@dataclass(frozen=True)
class Test:
    """One test function of an exercise.

    Attributes
    ----------
    question : str
        The question it grades, e.g. ``"q1"``.
    name : str
        The function's name, e.g. ``"test_stage_order"``.
    source : str
        The source of the whole test cell that defines it (imports and helpers included).
    hidden : bool
        True for tests only the grader runs.
    message : str
        The function's docstring (the instructor's note in feedback), ``""`` if none.
    weight : float
        Its share of the question's points relative to the question's other tests (the test
        cell's ``weight`` metadata, default 1).
    """

    question: str
    name: str
    source: str
    hidden: bool
    message: str
    weight: float = 1.0


@dataclass(frozen=True)
class WrongAnswer:
    """A plausible wrong answer to a question, declared by the instructor.

    Attributes
    ----------
    question : str
        The question it answers, e.g. ``"q1"``.
    description : str
        What the mistake is, in the instructor's words (the ``wrong_answer`` metadata).
    parts : tuple of str
        The code that replaces the content of each solution block of the question's answer
        cell, one part per block, written at column 0.
    max_share : float
        It must earn less than this share of the question's points (or nothing, when 0);
        in [0, 0.5].
    cell : int
        The index of its cell in the solution notebook.
    """

    question: str
    description: str
    parts: tuple[str, ...]
    max_share: float
    cell: int


@dataclass(frozen=True)
class Question:
    """A graded question: its name, its total points, its tests (public first), the wrong
    answers declared for it and the index of its answer cell in the notebook."""

    name: str
    points: float
    tests: tuple[Test, ...]
    wrong_answers: tuple[WrongAnswer, ...] = ()
    cell: int = -1

    @property
    def public_tests(self) -> tuple[Test, ...]:
        """The tests students can run themselves."""
        return tuple(test for test in self.tests if not test.hidden)

    def test_points(self, test: Test) -> float:
        """The points ``test`` is worth: the question's points shared in proportion to weight."""
        return self.points * test.weight / sum(t.weight for t in self.tests)


@dataclass(frozen=True)
class Exercise:
    """The questions of one exercise, in the order the notebook asks them: ``questions`` are
    graded by tests, ``written`` by people (:mod:`labsupport.course.written`)."""

    path: Path
    questions: tuple[Question, ...]
    written: tuple[written_answers.WrittenQuestion, ...] = ()

    def question(self, name: str) -> Question:
        """Return the question called ``name``.

        Raises
        ------
        ValueError
            When the exercise has no such question (the message lists the ones it has).
        """
        for question in self.questions:
            if question.name == name:
                return question
        known = ", ".join(q.name for q in self.questions) or "none"
        raise ValueError(f"{self.path.name} has no question {name!r}; its questions are {known}.")

    @property
    def tests(self) -> tuple[Test, ...]:
        """Every test of every question, in question order."""
        return tuple(test for question in self.questions for test in question.tests)

    @property
    def wrong_answers(self) -> tuple[WrongAnswer, ...]:
        """Every declared wrong answer, in question order."""
        return tuple(wrong for question in self.questions for wrong in question.wrong_answers)

    @property
    def points(self) -> float:
        """The exercise's total points."""
        return sum(question.points for question in self.questions)


@dataclass(frozen=True)
class Block:
    """One ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block: line span, indent and hint."""

    begin: int
    end: int
    indent: str
    hint: str


def _where(path: Path | str, index: int) -> str:
    return f"{Path(path).name}, cell {index}"


def _labsupport_metadata(cell: nbformat.NotebookNode, where: str) -> dict:
    value = cell.metadata.get(METADATA_KEY, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where}: metadata {METADATA_KEY!r} must be a mapping such as "
                         '{"question": "q1", "points": 2}, '
                         f"got {value!r}.")
    return value


def _question_name(meta: dict, where: str) -> str:
    name = meta.get("question")
    if name is None:
        raise ValueError(f'{where}: metadata {METADATA_KEY!r} needs "question", e.g. '
                         '{"question": "q1"}.')
    if not isinstance(name, str) or not _QUESTION_NAME.match(name):
        raise ValueError(f"{where}: question name {name!r} must be a word such as 'q1' "
                         "(letters, digits, underscores; starting with a letter).")
    return name


def _points(meta: dict, where: str) -> float:
    if "points" not in meta:
        raise ValueError(f'{where}: a solution cell needs "points" in its {METADATA_KEY!r} '
                         'metadata, e.g. {"question": "q1", "points": 2}.')
    points = meta["points"]
    if isinstance(points, bool) or not isinstance(points, (int, float)) \
            or not math.isfinite(points) or points <= 0:
        raise ValueError(f"{where}: points must be a positive number, got {points!r}.")
    return float(points)


def _weight(meta: dict, where: str) -> float:
    """The ``weight`` of a test cell's tests (default 1); ValueError on unknown keys."""
    unknown = sorted(set(meta) - _TEST_KEYS)
    if unknown:
        raise ValueError(f"{where}: a test cell takes the metadata keys {sorted(_TEST_KEYS)}, "
                         f'got unknown {unknown}; e.g. {{"question": "q1", "weight": 2}}.')
    weight = meta.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) \
            or not math.isfinite(weight) or weight <= 0:
        raise ValueError(f"{where}: a test cell's weight must be a positive number (its tests' "
                         f"share of the question's points, relative to the others), "
                         f"got {weight!r}.")
    return float(weight)


def solution_blocks(source: str, where: str) -> list[Block]:
    """Find the solution blocks of a cell; ValueError when markers do not pair up."""
    blocks: list[Block] = []
    begin: int | None = None
    hints: list[str] = []
    for number, line in enumerate(source.splitlines()):
        stripped = line.strip()
        if stripped == BEGIN:
            if begin is not None:
                raise ValueError(f"{where}, line {number + 1}: {BEGIN!r} inside another "
                                 f"solution block (the one opened on line {begin + 1}); "
                                 f"close it with {END!r} first.")
            begin, hints = number, []
        elif stripped == END:
            if begin is None:
                raise ValueError(f"{where}, line {number + 1}: {END!r} without a matching "
                                 f"{BEGIN!r} above it.")
            if not _has_code(source, begin, number):
                raise ValueError(f"{where}, line {begin + 1}: the solution block is empty; "
                                 "put the answer code between the markers.")
            if len(hints) > 1:
                raise ValueError(f"{where}, line {begin + 1}: a solution block takes at most one "
                                 f"{HINT!r} line, found {len(hints)}.")
            opening = source.splitlines()[begin]
            indent = opening[:len(opening) - len(opening.lstrip())]
            blocks.append(Block(begin, number, indent, hints[0] if hints else DEFAULT_HINT))
            begin = None
        elif stripped.startswith(HINT):
            if begin is None:
                raise ValueError(f"{where}, line {number + 1}: {HINT!r} belongs inside a "
                                 "solution block.")
            hint = stripped[len(HINT):].strip()
            if not hint:
                raise ValueError(f"{where}, line {number + 1}: the hint is empty.")
            hints.append(hint)
        elif "BEGIN SOLUTION" in stripped or "END SOLUTION" in stripped:
            raise ValueError(f"{where}, line {number + 1}: write the marker exactly as "
                             f"{BEGIN!r} or {END!r} on a line of its own, got {stripped!r}.")
    if begin is not None:
        raise ValueError(f"{where}, line {begin + 1}: {BEGIN!r} is never closed by {END!r}.")
    return blocks


def _has_code(source: str, begin: int, end: int) -> bool:
    lines = source.splitlines()[begin + 1:end]
    return any(line.strip() and not line.strip().startswith(HINT) for line in lines)


def _test_functions(source: str, where: str) -> list[tuple[str, str]]:
    """Return ``(name, docstring)`` of each ``test_*`` function a test cell defines."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ValueError(f"{where}: the test cell is not valid Python ({error.msg}, line "
                         f"{error.lineno}); test cells hold plain Python, no magics.") from error
    found = []
    for node in tree.body:
        is_docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if not isinstance(node, _ALLOWED_TOP_LEVEL) and not is_docstring:
            raise ValueError(f"{where}, line {node.lineno}: a test cell only defines test "
                             "functions, helpers and imports; move other statements into "
                             "a test function.")
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
            continue
        arguments = node.args
        if [a.arg for a in arguments.args] != ["ns"] or arguments.vararg or arguments.kwarg \
                or arguments.kwonlyargs or arguments.posonlyargs:
            raise ValueError(f"{where}: {node.name} must take exactly one parameter, "
                             f"written `def {node.name}(ns):`.")
        found.append((node.name, ast.get_docstring(node) or ""))
    if not found:
        raise ValueError(f"{where}: a test cell must define at least one `def test_...(ns):`.")
    return found


def _test_kind(cell: nbformat.NotebookNode, where: str) -> str | None:
    tags = [tag for tag in cell.metadata.get("tags", []) if tag in TAGS]
    if len(tags) > 1:
        raise ValueError(f"{where}: a cell is either {PUBLIC_TAG!r} or {HIDDEN_TAG!r}, "
                         "not both.")
    return tags[0] if tags else None


def _wrong_answer(cell: nbformat.NotebookNode, index: int, where: str,
                  solution: bool) -> WrongAnswer:
    """Read a cell tagged ``wrong-answer`` (its question is checked later, against the rest)."""
    if cell.cell_type != "raw":
        raise ValueError(f"{where}: a {WRONG_TAG!r} cell must be a raw cell, so that running "
                         "the solution notebook top to bottom never executes it (in JupyterLab: "
                         "select the cell and press R).")
    if not solution:
        raise ValueError(f"{where}: a generated exercise holds no {WRONG_TAG!r} cells; "
                         "this file is not one.")
    if set(cell.metadata.get("tags", [])) & set(TAGS):
        raise ValueError(f"{where}: a cell is either a test or a {WRONG_TAG!r}, not both.")
    meta = _labsupport_metadata(cell, where)
    example = '{"question": "q1", "wrong_answer": "forgets the last item", "max_share": 0.3}'
    unknown = sorted(set(meta) - _WRONG_KEYS)
    if unknown:
        raise ValueError(f"{where}: a {WRONG_TAG!r} cell takes the metadata keys "
                         f"{sorted(_WRONG_KEYS)}, got unknown {unknown}; e.g. {example}.")
    name = _question_name(meta, where)
    description = meta.get("wrong_answer")
    if not isinstance(description, str) or not description.strip():
        raise ValueError(f'{where}: a {WRONG_TAG!r} cell needs "wrong_answer", a sentence saying '
                         f"what the mistake is, e.g. {example}.")
    share = meta.get("max_share", DEFAULT_MAX_SHARE)
    if isinstance(share, bool) or not isinstance(share, (int, float)) \
            or not 0.0 <= share <= DEFAULT_MAX_SHARE:
        raise ValueError(f"{where}: max_share of wrong answer {description!r} must be a number "
                         f"in [0, {DEFAULT_MAX_SHARE}] (it must earn less than that share of "
                         f"the question's points; a wrong answer never earns half), "
                         f"got {share!r}.")
    if _has_markers(cell.source) or any(line.strip().startswith(HINT)
                                        for line in cell.source.splitlines()):
        raise ValueError(f"{where}: a {WRONG_TAG!r} cell holds only the code that replaces the "
                         "solution block, without solution markers or hints.")
    parts = _split_parts(cell.source)
    for number, part in enumerate(parts, start=1):
        if not part.strip():
            raise ValueError(f"{where}: part {number} of wrong answer {description!r} is empty; "
                             "write `pass` for a block left empty.")
    return WrongAnswer(question=name, description=description.strip(), parts=parts,
                       max_share=float(share), cell=index)


def _split_parts(source: str) -> tuple[str, ...]:
    parts: list[list[str]] = [[]]
    for line in source.splitlines():
        if line.strip() == NEXT_BLOCK:
            parts.append([])
        else:
            parts[-1].append(line)
    return tuple(textwrap.dedent("\n".join(lines)).strip("\n") for lines in parts)


def substitute_blocks(source: str, parts: tuple[str, ...], where: str) -> str:
    """Replace each solution block of an answer cell's ``source`` by the matching part.

    Each part is re-indented to its block's indentation. Raises ValueError when the number of
    parts is not the number of blocks.
    """
    blocks = solution_blocks(source, where)
    if len(parts) != len(blocks):
        raise ValueError(f"{where}: the wrong answer has {len(parts)} part(s) but the answer "
                         f"cell has {len(blocks)} solution block(s); separate one part per "
                         f"block with a line {NEXT_BLOCK!r}.")
    lines = source.splitlines()
    kept: list[str] = []
    position = 0
    for block, part in zip(blocks, parts):
        kept.extend(lines[position:block.begin])
        kept.extend(f"{block.indent}{line}" if line.strip() else ""
                    for line in part.splitlines())
        position = block.end + 1
    kept.extend(lines[position:])
    return "\n".join(kept) + ("\n" if source.endswith("\n") else "")


def _is_plain_python(source: str) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:
        return False
    return True


def _has_markers(source: str) -> bool:
    return any(line.strip() in (BEGIN, END) for line in source.splitlines())


def _not_code_answer(cell: nbformat.NotebookNode, index: int, where: str, solution: bool,
                     wrong: list[WrongAnswer],
                     written: list[written_answers.WrittenQuestion]) -> bool:
    """Collect a wrong answer or a written question; True when ``cell`` was one."""
    tags = cell.metadata.get("tags", [])
    if WRONG_TAG in tags:
        wrong.append(_wrong_answer(cell, index, where, solution))
    elif written_answers.WRITTEN_TAG in tags:
        written.append(written_answers.read_question(cell, index, where, solution))
    else:
        return False
    return True


def _collect(notebook: nbformat.NotebookNode, path: Path, solution: bool) -> Exercise:
    """Parse the question and test cells of a solution (or generated exercise) notebook."""
    points: dict[str, float] = {}
    answers: dict[str, tuple[int, str]] = {}
    tests: dict[str, list[Test]] = {}
    wrong: list[WrongAnswer] = []
    written: list[written_answers.WrittenQuestion] = []
    for index, cell in enumerate(notebook.cells):
        where = _where(path, index)
        if _not_code_answer(cell, index, where, solution, wrong, written):
            continue
        if cell.cell_type != "code":
            continue
        kind = _test_kind(cell, where)
        meta = _labsupport_metadata(cell, where)
        markers = _has_markers(cell.source)
        if kind is not None:
            if markers:
                raise ValueError(f"{where}: a test cell cannot contain solution markers.")
            name = _question_name(meta, where)
            weight = _weight(meta, where)
            for test_name, message in _test_functions(cell.source, where):
                tests.setdefault(name, []).append(Test(
                    question=name, name=test_name, source=cell.source,
                    hidden=kind == HIDDEN_TAG, message=message, weight=weight))
        elif meta.get("selfcheck") is True and set(meta) == {"selfcheck"}:
            continue
        elif meta:
            name = _question_name(meta, where)
            if name in points:
                raise ValueError(f"{where}: question {name!r} already has a solution cell; "
                                 "give each question one cell (it may hold several blocks) "
                                 "or a new name.")
            points[name] = _points(meta, where)
            answers[name] = (index, cell.source)
            if solution and not solution_blocks(cell.source, where):
                raise ValueError(f"{where}: the solution cell of {name!r} has no "
                                 f"{BEGIN!r} ... {END!r} block.")
        elif markers:
            solution_blocks(cell.source, where)
            raise ValueError(f'{where}: solution markers need cell metadata {{"{METADATA_KEY}": '
                             '{"question": "q1", "points": 2}}.')
    questions = _questions(path, points, tests, solution)
    if solution and not questions and not written:
        raise ValueError(f"{path.name}: no solution cells; mark one with {BEGIN!r} ... {END!r} "
                         f'and metadata {{"{METADATA_KEY}": {{"question": "q1", "points": 2}}}}.')
    _check_wrong_answers(path, answers, wrong)
    _check_written(path, written, points)
    written = [replace(q, prompt=notebook.cells[q.cell - 1].source.strip())
               if q.cell > 0 and notebook.cells[q.cell - 1].cell_type == "markdown" else q
               for q in written]
    return Exercise(path=path, questions=tuple(
        Question(name=q.name, points=q.points, tests=q.tests, cell=answers[q.name][0],
                 wrong_answers=tuple(w for w in wrong if w.question == q.name))
        for q in questions), written=tuple(written))


def _check_written(path: Path, written: list[written_answers.WrittenQuestion],
                   points: dict[str, float]) -> None:
    """Each written question has a name of its own."""
    seen: set[str] = set()
    for question in written:
        if question.name in points or question.name in seen:
            raise ValueError(f"{_where(path, question.cell)}: question {question.name!r} is "
                             "asked twice; give each written answer a name of its own "
                             "(w1, w2, ...).")
        seen.add(question.name)


def _check_wrong_answers(path: Path, answers: dict[str, tuple[int, str]],
                         wrong: list[WrongAnswer]) -> None:
    """Each wrong answer names a known question, fits its blocks and leaves valid Python."""
    seen: dict[tuple[str, str], int] = {}
    for answer in wrong:
        where = _where(path, answer.cell)
        if answer.question not in answers:
            raise ValueError(f"{where}: wrong answer {answer.description!r} is for question "
                             f"{answer.question!r}, which has no answer cell; the questions are "
                             f"{sorted(answers) or 'none'}.")
        key = (answer.question, answer.description)
        if key in seen:
            raise ValueError(f"{where}: question {answer.question!r} already declares the wrong "
                             f"answer {answer.description!r} (cell {seen[key]}); describe each "
                             "mistake differently, since the description names it in reports.")
        seen[key] = answer.cell
        index, source = answers[answer.question]
        replaced = substitute_blocks(source, answer.parts, where)
        if _is_plain_python(source) and not _is_plain_python(replaced):
            raise ValueError(f"{where}: with wrong answer {answer.description!r} substituted, "
                             f"the answer cell (cell {index}) is not valid Python; write the "
                             "code at column 0, as if it stood alone in the block.")


def _questions(path: Path, points: dict[str, float], tests: dict[str, list[Test]],
               solution: bool) -> tuple[Question, ...]:
    unknown = sorted(set(tests) - set(points))
    if unknown:
        raise ValueError(f"{path.name}: test cells for unknown question(s) {unknown}; "
                         f"the solution cells define {sorted(points) or 'none'}.")
    questions = []
    for name, total in points.items():
        found = sorted(tests.get(name, []), key=lambda test: test.hidden)
        if solution and not found:
            raise ValueError(f"{path.name}: question {name!r} has no tests; add a cell tagged "
                             f"{PUBLIC_TAG!r} or {HIDDEN_TAG!r} with metadata "
                             f'{{"{METADATA_KEY}": {{"question": "{name}"}}}}.')
        if solution and all(test.hidden for test in found):
            raise ValueError(f"{path.name}: question {name!r} has no public tests; students "
                             "need at least one substantive check they can run themselves: add "
                             f"a cell tagged {PUBLIC_TAG!r} with metadata "
                             f'{{"{METADATA_KEY}": {{"question": "{name}"}}}}.')
        seen: dict[str, Test] = {}
        for test in found:
            if test.name in seen:
                first = seen[test.name]
                kinds = sorted({"hidden" if t.hidden else "public" for t in (first, test)})
                raise ValueError(f"{path.name}: question {name!r} defines {test.name} twice "
                                 f"({' and '.join(kinds)} tests); rename one, since a "
                                 "test's name identifies it in the grades.")
            seen[test.name] = test
        questions.append(Question(name=name, points=total, tests=tuple(found)))
    return tuple(questions)


def read_notebook(path: Path | str) -> nbformat.NotebookNode:
    """Read a notebook file, turning unreadable files into a ValueError naming the file."""
    path = Path(path)
    try:
        return nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise
    except Exception as error:  # nbformat raises several JSON/validation error types
        raise ValueError(f"{path}: not a readable notebook ({error}).") from error


def parse_exercise(notebook: nbformat.NotebookNode, path: Path | str) -> Exercise:
    """Validate a solution notebook already in memory; see :func:`load_exercise`."""
    return _collect(notebook, Path(path), solution=True)


def load_exercise(solution: Path | str) -> Exercise:
    """Read a solution notebook and return its questions with their tests.

    Parameters
    ----------
    solution : Path or str
        The instructor's notebook, ``solutions/NN_topic.ipynb``.

    Returns
    -------
    Exercise
        Questions in notebook order; each question's public tests come before its hidden ones.

    Raises
    ------
    ValueError
        When the format is broken: unmatched or empty solution blocks, markers without
        metadata, missing or non-positive points, two solution cells for one question, a test
        cell for an unknown question, a question without tests or without public tests, two
        tests with one name, a test cell that is not plain Python defining
        ``def test_...(ns):`` functions, or a wrong answer whose question is unknown, whose
        parts do not match the answer cell's blocks, or whose ``max_share`` is outside [0, 1).
    """
    return parse_exercise(read_notebook(solution), solution)


def without_wrong_answers(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of a solution notebook without its ``wrong-answer`` cells: what runs top to bottom.

    Everything that executes a solution (nbval, papermill, the exercise tests, the rehearsal of
    wrong answers) runs this copy, because a wrong answer is a fragment written at column 0
    (a ``return`` outside a function, say) and would overwrite the real answer if run.
    """
    copied = copy.deepcopy(notebook)
    copied.cells = [cell for cell in copied.cells
                    if WRONG_TAG not in cell.metadata.get("tags", [])]
    return copied


def with_wrong_answer(notebook: nbformat.NotebookNode, exercise: Exercise,
                      wrong: WrongAnswer) -> nbformat.NotebookNode:
    """The solution notebook with ``wrong`` in place of its question's solution blocks.

    ``exercise`` is ``parse_exercise(notebook, ...)``; wrong-answer cells are dropped, so cell
    indices shift, and the answer cell is found before they are.
    """
    copied = copy.deepcopy(notebook)
    question = exercise.question(wrong.question)
    answer = copied.cells[question.cell]
    answer.source = substitute_blocks(answer.source, wrong.parts,
                                      _where(exercise.path, question.cell))
    return without_wrong_answers(copied)


def load_public_tests(exercise: Path | str) -> Exercise:
    """Read a generated exercise notebook: its questions and the public tests it carries.

    The stub cells keep their ``question`` and ``points`` metadata, so every question appears,
    even one whose tests are all hidden.
    """
    path = Path(exercise)
    found = _collect(read_notebook(path), path, solution=False)
    if any(test.hidden for test in found.tests):
        raise ValueError(f"{path.name} contains hidden tests: it is not a generated exercise.")
    return found


def _stub(source: str, question: str, where: str) -> str:
    lines = source.splitlines()
    kept: list[str] = []
    position = 0
    for block in solution_blocks(source, where):
        kept.extend(lines[position:block.begin])
        message = json.dumps(f"{question}: {block.hint}", ensure_ascii=False)
        kept.append(f"{block.indent}raise NotImplementedError({message})")
        position = block.end + 1
    kept.extend(lines[position:])
    return "\n".join(kept) + ("\n" if source.endswith("\n") else "")


def _cell_metadata(cell: nbformat.NotebookNode) -> dict:
    """Keep only the metadata the lab uses (tags and the course key), in a fixed order."""
    kept = {}
    if cell.metadata.get("tags"):
        kept["tags"] = list(cell.metadata["tags"])
    if METADATA_KEY in cell.metadata:
        kept[METADATA_KEY] = copy.deepcopy(dict(cell.metadata[METADATA_KEY]))
    return kept


def header_text(source_name: str) -> str:
    """The first cell of a generated exercise (starts with :data:`GENERATED_MARKER`)."""
    return (f"{GENERATED_MARKER}`{source_name}` by `labsupport exercises build` — do not edit; "
            "your answers go in the cells marked `raise NotImplementedError(...)`: replace that "
            "line with your code, run the cell, then run the `check(...)` cell after the "
            "question's public tests. Hidden tests are graded later.")


def setup_source(exercise_name: str) -> str:
    """The generated cell that sets up the self-check for the exercise file ``exercise_name``."""
    return ("# Self-check (generated): check(\"q1\") runs q1's public tests on this notebook.\n"
            "from labsupport.course import selfcheck\n\n"
            f"checker = selfcheck.Checker({json.dumps(exercise_name)}, globals())\n"
            "check, check_all = checker.check, checker.check_all")


def _generated_cells(solution_nb: nbformat.NotebookNode, source_name: str,
                     exercise: Exercise) -> Iterator[nbformat.NotebookNode]:
    """Yield the exercise's cells in order (ids are set afterwards)."""
    yield nbformat.v4.new_markdown_cell(header_text(source_name))
    yield nbformat.v4.new_code_cell(setup_source(Path(source_name).name),
                                    metadata=copy.deepcopy(SELFCHECK_METADATA))
    last_public: dict[str, int] = {}
    for index, cell in enumerate(solution_nb.cells):
        if cell.cell_type == "code" and PUBLIC_TAG in cell.metadata.get("tags", []):
            last_public[cell.metadata[METADATA_KEY]["question"]] = index
    for index, cell in enumerate(solution_nb.cells):
        where = _where(source_name, index)
        tags = cell.metadata.get("tags", [])
        if HIDDEN_TAG in tags or WRONG_TAG in tags or INSTRUCTOR_TAG in tags:
            continue
        if written_answers.WRITTEN_TAG in tags:
            yield written_answers.student_cell(cell)
            name = cell.metadata[METADATA_KEY]["question"]
            yield nbformat.v4.new_code_cell(f'check("{name}")',
                                            metadata=copy.deepcopy(SELFCHECK_METADATA))
            continue
        metadata = _cell_metadata(cell)
        if cell.cell_type == "markdown":
            yield nbformat.v4.new_markdown_cell(cell.source, metadata=metadata)
        elif cell.cell_type == "raw":
            yield nbformat.v4.new_raw_cell(cell.source, metadata=metadata)
        else:
            source = cell.source
            meta = cell.metadata.get(METADATA_KEY, {})
            if meta and PUBLIC_TAG not in tags:
                source = _stub(source, meta["question"], where)
            yield nbformat.v4.new_code_cell(source, metadata=metadata)
        for question, position in last_public.items():
            if position == index:
                yield nbformat.v4.new_code_cell(f'check("{question}")',
                                                metadata=copy.deepcopy(SELFCHECK_METADATA))
    if exercise.questions or exercise.written:
        yield nbformat.v4.new_markdown_cell(
            "Summary of the public checks (the hidden tests are graded after you hand in).")
        yield nbformat.v4.new_code_cell("check_all()", metadata=copy.deepcopy(SELFCHECK_METADATA))


def student_notebook(solution_nb: nbformat.NotebookNode,
                     source_name: str) -> nbformat.NotebookNode:
    """Derive the student's exercise from a solution notebook.

    Parameters
    ----------
    solution_nb : nbformat.NotebookNode
        The instructor's notebook (validated as by :func:`load_exercise`).
    source_name : str
        How the header names the source, e.g. ``"solutions/01_cicd_for_ml.ipynb"``; its file name
        is also the exercise's (the self-check reads the public tests from that file).

    Returns
    -------
    nbformat.NotebookNode
        A new notebook: a generated-from header, the self-check set-up, every solution block
        replaced by ``raise NotImplementedError("qN: <hint>")``, hidden tests removed, a
        ``check("qN")`` cell after each question's public tests and a final ``check_all()``
        (the self-check cells carry :data:`SELFCHECK_METADATA`, so a grader can skip them).
        No outputs, only ``tags`` and ``labsupport`` cell metadata, and cell ids ``"0"``,
        ``"1"``, ... (the ids nbstripout gives), so the same input always gives the same bytes.
    """
    exercise = parse_exercise(solution_nb, source_name)
    notebook = nbformat.v4.new_notebook()
    kernelspec = solution_nb.metadata.get("kernelspec")
    if kernelspec is None:
        raise ValueError(f"{source_name}: the solution notebook has no kernelspec; open it in "
                         "JupyterLab with the python3 kernel and save it.")
    notebook.metadata = nbformat.from_dict({
        "kernelspec": {key: kernelspec[key] for key in ("display_name", "language", "name")
                       if key in kernelspec},
        "language_info": {"name": "python"},
    })
    notebook.cells = list(_generated_cells(solution_nb, source_name, exercise))
    for index, cell in enumerate(notebook.cells):
        cell.id = str(index)
    nbformat.validate(notebook)
    return notebook


def render(notebook: nbformat.NotebookNode) -> str:
    """The exact text :func:`nbformat.write` stores (what build writes and check compares)."""
    text = nbformat.writes(notebook)
    return text if text.endswith("\n") else text + "\n"


def is_generated(path: Path | str) -> bool:
    """True when ``path`` is a notebook whose first cell carries the generated-from header."""
    try:
        notebook = nbformat.read(Path(path), as_version=4)
    except Exception:  # pylint: disable=broad-exception-caught  # unreadable means hand-made
        return False
    if not notebook.cells:
        return False
    first = notebook.cells[0]
    return first.cell_type == "markdown" and first.source.startswith(GENERATED_MARKER)


# --- building exercises/ from solutions/ -----------------------------------------------------

SOLUTIONS = "solutions"
EXERCISES = "exercises"


@dataclass(frozen=True)
class Built:
    """What building one exercise did: ``status`` is ``"written"`` or ``"unchanged"``."""

    solution: Path
    exercise: Path
    status: str


@dataclass(frozen=True)
class Problem:
    """Why ``exercises/`` is out of step with ``solutions/``.

    ``kind`` is ``"stale"`` (differs from a fresh build), ``"missing"`` (never built),
    ``"orphaned"`` (no solution of that name), ``"invalid"`` (the solution is malformed) or
    ``"untrusted"`` (a test reads a name the student controls, see :func:`untrusted_reads`).
    """

    kind: str
    path: Path
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path} — {self.detail}"


def _bound_names(source: str) -> set[str]:
    """Every name a cell's code binds (functions, classes, assignments, imports, loop targets)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def _names_read(source: str) -> set[str]:
    """The attributes a test cell reads from ``ns`` (the student's namespace)."""
    return {node.attr for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "ns"}


def untrusted_reads(notebook: nbformat.NotebookNode, path: Path | str) -> list[str]:
    """Tests that read a notebook name no answer cell defines, one sentence each.

    A test may read what the student answers (names bound in the question's answer cells);
    anything else it reads from ``ns`` — data, a seed, a helper the lesson gave — is the
    student's to redefine, so an expected value or a replay built on it can be bought (swap the
    data for data the answer suits, pick a lucky seed, make the helper return the right thing).
    The test cell must hold that data itself, or import the helper from ``labsupport``.
    """
    exercise = parse_exercise(notebook, path)
    answers = set()
    for question in exercise.questions:
        answers |= _bound_names(notebook.cells[question.cell].source)
    found = []
    seen = set()
    for test in exercise.tests:
        if test.source in seen:
            continue
        seen.add(test.source)
        for name in sorted(_names_read(test.source) - answers):
            found.append(f"{Path(path).name}: {test.question}'s test cell ({test.name}...) reads "
                         f"ns.{name}, which no answer cell defines: the student's notebook "
                         "controls it, so a result built on it can be bought; hold that data, "
                         "seed or helper in the test cell (or import it from labsupport)")
    return found


def _solutions_dir(root: Path) -> Path:
    folder = Path(root) / SOLUTIONS
    if not folder.is_dir():
        raise ValueError(f"{Path(root).resolve()} has no {SOLUTIONS}/ folder; run the command "
                         "from the lab's top folder or pass --root.")
    return folder


def solution_paths(root: Path | str, names: tuple[str, ...] = ()) -> list[Path]:
    """The solution notebooks to build: all of ``solutions/*.ipynb``, or the ``names`` given.

    A name may be ``01_cicd_for_ml``, ``01_cicd_for_ml.ipynb`` or
    ``solutions/01_cicd_for_ml.ipynb``.
    """
    folder = _solutions_dir(Path(root))
    if not names:
        return sorted(folder.glob("*.ipynb"))
    chosen = []
    for name in names:
        stem = Path(name).name
        path = folder / (stem if stem.endswith(".ipynb") else f"{stem}.ipynb")
        if not path.is_file():
            available = ", ".join(p.stem for p in sorted(folder.glob("*.ipynb"))) or "none"
            raise ValueError(f"no solution notebook {path.relative_to(root)}; "
                             f"available: {available}.")
        chosen.append(path)
    return chosen


def exercise_text(solution: Path, root: Path) -> str:
    """The exact text of the exercise generated from ``solution`` (a path under ``root``)."""
    source_name = solution.resolve().relative_to(Path(root).resolve()).as_posix()
    return render(student_notebook(read_notebook(solution), source_name))


def build_exercises(root: Path | str, names: tuple[str, ...] = (),
                    force: bool = False) -> list[Built]:
    """Write ``exercises/NN_topic.ipynb`` for each solution notebook (all, or ``names``).

    Raises
    ------
    ValueError
        When a solution is malformed, or when an exercise file exists that was not generated
        (no generated-from header: someone wrote it by hand) and ``force`` is False. Nothing is
        written unless every requested exercise can be.
    """
    root = Path(root)
    planned = []
    for solution in solution_paths(root, names):
        target = root / EXERCISES / solution.name
        text = exercise_text(solution, root)
        if target.exists() and not force and not is_generated(target):
            raise ValueError(f"{target.relative_to(root)} was not generated by labsupport (its "
                             "first cell lacks the generated-from header), so it may hold hand "
                             "edits; move them into the solution notebook, or rerun with --force "
                             "to overwrite it.")
        planned.append((solution, target, text))
    built = []
    for solution, target, text in planned:
        unchanged = target.is_file() and target.read_text(encoding="utf-8") == text
        if not unchanged:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        built.append(Built(solution, target, "unchanged" if unchanged else "written"))
    return built


def check_exercises(root: Path | str, names: tuple[str, ...] = ()) -> list[Problem]:
    """Compare ``exercises/`` with a fresh build of ``solutions/``; an empty list means in step.

    With ``names`` (as for :func:`solution_paths`) only those exercises are compared, and no
    orphaned exercise is looked for.
    """
    root = Path(root)
    problems = []
    solutions = solution_paths(root, names)
    for solution in solutions:
        target = root / EXERCISES / solution.name
        relative = target.relative_to(root)
        try:
            text = exercise_text(solution, root)
        except ValueError as error:
            problems.append(Problem("invalid", solution.relative_to(root), str(error)))
            continue
        problems += [Problem("untrusted", solution.relative_to(root), detail)
                     for detail in untrusted_reads(read_notebook(solution), solution)]
        if not target.is_file():
            problems.append(Problem("missing", relative, "run `labsupport exercises build`"))
        elif target.read_text(encoding="utf-8") != text:
            problems.append(Problem("stale", relative, "differs from a fresh build of "
                                    f"{solution.relative_to(root)}; run "
                                    "`labsupport exercises build` (and never edit it by hand)"))
    if names:
        return problems
    known = {solution.name for solution in solutions}
    for exercise in sorted((root / EXERCISES).glob("*.ipynb")):
        if exercise.name not in known:
            problems.append(Problem("orphaned", exercise.relative_to(root),
                                    f"no {SOLUTIONS}/{exercise.name}; delete the exercise or "
                                    "restore its solution"))
    return problems
