"""Grade a whole class in one command: ``labsupport grade SOLUTION.ipynb SUBMISSIONS -o OUT``.

Each submission runs in its own fresh :class:`~labsupport.course.sandbox.Sandbox` kernel; the
hidden and public tests run here, in the grader's process, through
:class:`~labsupport.course.proxy.KernelNamespace`, which hands them plain data only. The score is
computed here from those outcomes, so nothing a notebook prints, patches or writes can set it.
Submissions are graded in parallel worker processes; each result is stored as soon as it is
known (so an interrupted run resumes where it stopped), and the reports are rebuilt from the
stored results at the end (:mod:`labsupport.course.gradebook`).
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import importlib.util
import multiprocessing
import multiprocessing.util
import os
import stat
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import nbformat
from tqdm import tqdm

from labsupport.course import authoring, gradebook, layouts, policy, runner, written
from labsupport.course.gradebook import SubmissionResult, TestResult
from labsupport.course.proxy import KernelNamespace
from labsupport.course.sandbox import (DEFAULT_UID_BASE, Isolation, KernelGone, Limits, Sandbox,
                                       SandboxUnavailable, Warmup, bubblewrap_problem,
                                       remove_stale_folders)

#: Largest submission file the grader reads.
MAX_NOTEBOOK_BYTES = 20 * 1024**2
#: Cells the grader never runs: tests (they run here, not in the kernel) and declared wrong
#: answers (only in solution notebooks, which an instructor may grade to try the grader).
_SKIPPED_TAGS = {authoring.PUBLIC_TAG, authoring.HIDDEN_TAG, authoring.WRONG_TAG}
_MAX_NOTES = 20
#: At most this many kernels booting ahead per grading worker (see :func:`kernels_ahead`).
MAX_AHEAD = 4


@dataclass(frozen=True)
class Submission:
    """One student's notebook for one exercise (``path`` is None when none was found).

    ``student`` is the exact folder or file name (undecodable bytes as ``surrogateescape``
    gives them); ``note`` tells the student what was skipped or chosen.
    """

    student: str
    solution: Path
    path: Path | None
    note: str = ""


@dataclass(frozen=True)
class Scan:
    """What :func:`scan_submissions` found: the submissions, one line per entry it skipped
    (hidden and non-notebook entries, symbolic links, empty folders, names seen twice, notebooks
    not graded beside the one that was), and the LMS download's entries it read."""

    submissions: tuple[Submission, ...]
    skipped: tuple[str, ...]
    download: layouts.Download | None = None


#: The walk of one student's folder stops this deep, or after this many entries.
MAX_FOLDER_DEPTH = 12
MAX_FOLDER_ENTRIES = 5_000
#: Entries that tools leave in a submissions folder and that are never a student.
_TOOL_ENTRIES = frozenset({".ipynb_checkpoints", "__MACOSX", ".git", ".DS_Store", "Thumbs.db",
                           "desktop.ini", ".Trash", ".Trashes"})


def _show(path: Path | str) -> str:
    return gradebook.printable(str(path))


def _notebooks_in(folder: Path) -> tuple[list[Path], list[str]]:
    """Notebooks under ``folder`` and what was skipped, never leaving it: symbolic links are not
    followed (and reported), hidden entries are skipped, the walk is bounded."""
    notebooks, skipped, seen = [], [], 0
    queue = deque([(folder, 0)])  # breadth first: the notebook near the top is found first
    while queue:
        directory, depth = queue.popleft()
        try:
            with os.scandir(directory) as entries:
                listing = sorted(entries, key=lambda e: e.name)
        except OSError as error:
            skipped.append(f"{_show(directory.relative_to(folder))}: not readable "
                           f"({type(error).__name__})")
            continue
        for entry in listing:
            seen += 1
            if seen > MAX_FOLDER_ENTRIES:
                skipped.append(f"stopped looking after {MAX_FOLDER_ENTRIES} entries")
                return sorted(notebooks), skipped
            relative = Path(entry.path).relative_to(folder)
            notebook = entry.name.endswith(".ipynb")
            if entry.is_symlink():
                if notebook or entry.is_dir():
                    skipped.append(f"{_show(relative)}: a symbolic link (links are never "
                                   "followed)")
            elif entry.name.startswith(".") or entry.name in _TOOL_ENTRIES:
                if notebook and entry.name != ".ipynb":
                    skipped.append(f"{_show(relative)}: hidden (its name starts with a dot)")
            elif entry.is_dir(follow_symlinks=False):
                if depth + 1 < MAX_FOLDER_DEPTH:
                    queue.append((Path(entry.path), depth + 1))
                else:
                    skipped.append(f"{_show(relative)}: more than {MAX_FOLDER_DEPTH} folders "
                                   "deep")
            elif notebook and entry.is_file(follow_symlinks=False):
                notebooks.append(Path(entry.path))
    return sorted(notebooks), skipped


def _student_entries(submissions_dir: Path, skipped: list[str]) -> dict[str, os.DirEntry]:
    """Top-level entries that are students, by student id; reports the others in ``skipped``."""
    students: dict[str, os.DirEntry] = {}
    with os.scandir(submissions_dir) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        name = _show(entry.name)
        if entry.name in _TOOL_ENTRIES:
            skipped.append(f"{name}: left by a tool, not a student")
            continue
        is_dir = entry.is_dir(follow_symlinks=False)
        notebook = entry.name.endswith(".ipynb") and (
            entry.is_symlink() or entry.is_file(follow_symlinks=False))
        if not (is_dir or notebook or entry.is_symlink() and entry.is_dir()):
            skipped.append(f"{name}: neither a notebook nor a folder")
            continue
        student = entry.name.removesuffix(".ipynb") if notebook else entry.name
        student = student or entry.name
        if student in students:
            skipped.append(f"{name}: names the same student as "
                           f"{_show(students[student].name)}, which is graded instead")
            continue
        students[student] = entry
    return students


@dataclass(frozen=True)
class _Found:
    """One student as the scan sees them, whatever the layout."""

    student: str
    shown: str                  # the entry's name as printed
    path: Path | None           # their folder or notebook (None: not gradable, see ``why``)
    files: tuple[Path, ...]     # flat layouts: their notebooks; empty: walk ``path``
    originals: tuple[str, ...]  # the file names the student gave ``files``
    why: str = ""
    note: str = ""


def _folder_students(submissions_dir: Path, several: bool,
                     skipped: list[str]) -> list[_Found]:
    found = []
    for student, entry in _student_entries(submissions_dir, skipped).items():
        name, why = _show(entry.name), ""
        if entry.is_symlink():
            why = "is a symbolic link (links are never followed)"
        elif entry.name.startswith("."):
            why = "is hidden (its name starts with a dot); rename it to grade it"
        if why:
            skipped.append(f"{name}: {why} (a 'missing' row)")
            found.append(_Found(student, name, None, (), (), f"{name} {why}"))
        elif entry.is_dir(follow_symlinks=False):
            found.append(_Found(student, name, Path(entry.path), (), ()))
        else:
            if several:
                raise ValueError(f"{name}: with several exercises, put each student's "
                                 "notebooks in a folder named after the student")
            found.append(_Found(student, name, Path(entry.path), (Path(entry.path),), ("",)))
    return found


def _download_students(download: layouts.Download) -> list[_Found]:
    return [_Found(e.student, _show(e.folder or e.path.name), e.path, e.files, e.originals,
                   note=e.note) for e in download.entries]


def _pair(person: _Found, solutions: Sequence[Path], skipped: list[str]) -> list[Submission]:
    """One submission per exercise for ``person``; every notebook left out is named."""
    name = person.shown
    if person.path is None:
        return [Submission(person.student, s, None, person.why) for s in solutions]
    if person.files:
        notebooks, inside = list(person.files), []
        given = {path: original or path.name for path, original in
                 zip(person.files, person.originals)}
        shown = {path: _show(path.name) for path in notebooks}
    else:
        notebooks, inside = _notebooks_in(person.path)
        given = {path: path.name for path in notebooks}
        shown = {path: _show(path.relative_to(person.path)) for path in notebooks}
        skipped += [f"{name}/{line}" for line in inside]
        if not notebooks:
            skipped.append(f"{name}: no notebook in this folder (a 'missing' row)")
    found, graded = [], set()
    for solution in solutions:
        named = [p for p in notebooks if given[p] == solution.name]
        candidates = named or (notebooks if len(solutions) == 1 else [])
        if notebooks and not candidates:
            skipped.append(f"{name}: no notebook named {_show(solution.name)} (a 'missing' "
                           "row for that exercise)")
        notes = [person.note] if person.note else []
        notes += [f"skipped {line}" for line in inside]
        if candidates:
            graded.add(candidates[0])
            if len(candidates) > 1:
                notes.append(f"{len(candidates)} notebooks found; graded "
                             f"{shown[candidates[0]]}")
        found.append(Submission(person.student, solution, candidates[0] if candidates else None,
                                "; ".join(notes)))
    ignored = [shown[p] for p in notebooks if p not in graded]
    if ignored and graded:
        line = f"not graded (another notebook was): {', '.join(ignored)}"
        skipped.append(f"{name}: {line}")
        found = [replace(s, note="; ".join(filter(None, (s.note, line)))) if s.path else s
                 for s in found]
    return found


def scan_submissions(solutions: Sequence[Path], submissions_dir: Path, layout: str = "folders",
                     roster: layouts.Roster | None = None) -> Scan:
    """Pair every student with a notebook for every exercise, sorted by student.

    ``layout`` says how ``submissions_dir`` is organised (:mod:`labsupport.course.layouts`):
    an LMS download (``canvas``, ``moodle``: the student is the LMS id), or ``folders``: one
    folder per student (any depth below it, as nbgrader's ``submitted/<student>/<assignment>/``)
    or one notebook per student named after the student. With several exercises, a notebook is
    matched to the exercise whose solution has the same file name (the name the student gave
    it); with one, any notebook will do, and the others are named on stderr and in the feedback.

    With a ``roster``, a student on it with nothing in the download gets a ``missing`` row, and
    an entry for an id not on it is reported (and graded).

    Nothing is dropped silently: a student whose entry cannot be graded (a hidden folder, a
    symbolic link, a folder with no notebook) gets a submission with ``path=None`` (a ``missing``
    row) and a line in :attr:`Scan.skipped`, as does every other entry left out. Symbolic links
    are never followed, so nothing outside a student's own folder is ever read or walked.
    """
    download = layouts.read_download(submissions_dir, layout)
    skipped = list(download.skipped)
    if download.layout == "folders":
        people = _folder_students(submissions_dir, len(solutions) > 1, skipped)
    else:
        people = _download_students(download)
    found = [s for person in people for s in _pair(person, solutions, skipped)]
    if roster is not None:
        listed = roster.by_lms_id()
        present = {person.student for person in people}
        for person in people:
            if person.student not in listed:
                skipped.append(f"{person.shown}: id {_show(person.student)} is not on the roster "
                               "(graded; add it to the roster to export its grade)")
        for student in roster.students:
            if student.lms_id not in present:
                found += [Submission(student.lms_id, s, None, "nothing handed in (on the roster, "
                                     "not in the download)") for s in solutions]
    return Scan(tuple(sorted(found, key=lambda s: (s.student, s.solution.name))),
                tuple(skipped), download)


def find_submissions(solutions: Sequence[Path], submissions_dir: Path, layout: str = "folders",
                     roster: layouts.Roster | None = None) -> list[Submission]:
    """The submissions of :func:`scan_submissions`, without the report of skipped entries."""
    return list(scan_submissions(solutions, submissions_dir, layout, roster).submissions)


def handins(scan: Scan) -> list[layouts.Handin]:
    """What the download says about each submission found (its LMS name and folder, the late
    flag, the time): the newest file time when the layout gives none."""
    entries = {e.student: e for e in (scan.download.entries if scan.download else ())}
    found = []
    for submission in scan.submissions:
        if submission.path is None:
            continue
        entry = entries.get(submission.student)
        if entry is not None:
            found.append(layouts.Handin(submission.student, submission.solution.name,
                                        entry.name, entry.folder, entry.late,
                                        entry.submitted or layouts.file_time(submission.path)))
        else:
            found.append(layouts.Handin(submission.student, submission.solution.name,
                                        submitted=layouts.file_time(submission.path)))
    return found


def _record_handins(out_dir: Path, scan: Scan) -> None:
    """Update ``handins.csv`` with this scan's hand-ins (other students' rows are kept)."""
    known = layouts.read_handins(out_dir)
    students = {s.student for s in scan.submissions}
    known = {key: item for key, item in known.items() if key[0] not in students}
    known.update({(h.student, h.exercise): h for h in handins(scan)})
    gradebook.write_atomic(out_dir / layouts.HANDINS_FILE,
                           layouts.handins_csv(list(known.values())))


def shard(submissions: list[Submission], index: int, count: int) -> list[Submission]:
    """The submissions of shard ``index`` (1-based) of ``count``: students dealt round-robin
    in sorted order, so every student's exercises land in the same shard."""
    if not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count}: expected 1 <= i <= N")
    students = sorted({s.student for s in submissions})
    mine = set(students[index - 1::count])
    return [s for s in submissions if s.student in mine]


def _read_bytes(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """At most ``limit + 1`` bytes of the regular file ``path``, never through a symbolic link
    (so a link swapped in after the scan is refused too) and never blocking on a FIFO."""
    handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(handle, "rb") as stream:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            raise ValueError("not a regular file")
        return stream.read(limit + 1)


def fingerprint(submission: Submission, limits: Limits) -> str:
    """Hash of what decides a grade: submission bytes, solution bytes, limits."""
    digest = hashlib.sha256()
    digest.update(submission.solution.read_bytes())
    digest.update(repr(sorted(asdict(limits).items())).encode())
    if submission.path is not None:
        try:
            digest.update(_read_bytes(submission.path))
        except (OSError, ValueError) as error:
            digest.update(f"unreadable: {type(error).__name__}".encode())
    return digest.hexdigest()


def inputs(submission: Submission, limits: Limits) -> tuple[tuple[str, str], ...]:
    """A hash of each input of a grade apart, so a regrade can say which one changed."""
    try:
        notebook = b"" if submission.path is None else _read_bytes(submission.path)
    except (OSError, ValueError) as error:
        notebook = f"unreadable: {type(error).__name__}".encode()
    parts = (("notebook", notebook), ("solution", submission.solution.read_bytes()),
             ("limits", repr(sorted(asdict(limits).items())).encode()))
    return tuple((what, hashlib.sha256(data).hexdigest()[:16]) for what, data in parts)


def _zero(exercise: authoring.Exercise, reason: str) -> tuple[TestResult, ...]:
    return tuple(TestResult(q.name, t.name, t.hidden, 0.0, q.test_points(t),
                            "error", 0.0, reason, t.message)
                 for q in exercise.questions for t in q.tests)


def _read_submission(path: Path) -> nbformat.NotebookNode:
    """Read a submitted notebook; ValueError with a reason when it is not one."""
    try:
        data = _read_bytes(path)
    except OSError as error:
        raise ValueError(f"not readable ({type(error).__name__}; a symbolic link is never "
                         "followed)") from None
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"the file is larger than {MAX_NOTEBOOK_BYTES // 1024**2} MB")
    try:
        notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as error:  # pylint: disable=broad-exception-caught
        raise ValueError(f"not a readable notebook ({type(error).__name__})") from None
    cells = notebook.get("cells")
    if not isinstance(cells, list) or not all(
            isinstance(c, dict) and isinstance(c.get("source", ""), str) for c in cells):
        raise ValueError("not a readable notebook (no list of cells)")
    return notebook


def _is_selfcheck(cell: nbformat.NotebookNode) -> bool:
    """A cell an exercise build added to run the student's self-check (never graded)."""
    meta = cell.get("metadata", {}).get(authoring.METADATA_KEY)
    return isinstance(meta, dict) and meta == authoring.SELFCHECK_METADATA[authoring.METADATA_KEY]


def _run_cells(sandbox: Sandbox, notebook: nbformat.NotebookNode) -> tuple[list[str], bool]:
    """Run every code cell (test and self-check cells excepted), go on after errors.

    Returns the notes and whether a cell ran over its time and was interrupted.
    """
    notes, timed_out = [], False
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") != "code" or _SKIPPED_TAGS & set(
                cell.get("metadata", {}).get("tags", []) or []) or _is_selfcheck(cell):
            continue
        result = sandbox.run(cell.get("source", ""), what=f"cell {index}")
        timed_out = timed_out or result.status == "timeout"
        if result.status != "ok" and len(notes) < _MAX_NOTES:
            notes.append(f"cell {index}: {result.message}")
    return notes, timed_out


def _stored(result: SubmissionResult) -> SubmissionResult:
    """``result`` with every message cut to what is worth storing (an 8 MB answer repeated in
    an assertion message must not become an 8 MB gradebook)."""
    limit = gradebook.STORED_MESSAGE_CHARS
    tests = tuple(replace(t, message=gradebook.cut(t.message, limit)) for t in result.tests)
    notes = tuple(gradebook.cut(note, limit) for note in result.notes)
    return replace(result, reason=gradebook.cut(result.reason, limit), tests=tests, notes=notes)


def grader_error(submission: Submission, limits: Limits, error: BaseException) -> SubmissionResult:
    """The row of a submission the grader itself failed on: every test scores 0 with the error,
    status ``grader-error``, which a re-run grades again."""
    exercise = authoring.load_exercise(submission.solution)
    reason = (f"the grader failed on this submission ({type(error).__name__}: {error}); "
              "this is not the student's fault, run the grader again")
    relative = "" if submission.path is None else submission.path.name
    notes = (submission.note,) if submission.note else ()
    return _stored(SubmissionResult(
        submission.student, submission.solution.name, relative, "grader-error", reason,
        tuple((q.name, q.points) for q in exercise.questions), _zero(exercise, reason), notes,
        fingerprint(submission, limits),
        written=tuple((q.name, q.points, "") for q in exercise.written),
        inputs=inputs(submission, limits)))


def exercise_imports(solutions: Sequence[Path]) -> tuple[str, ...]:
    """The modules the solutions' own code cells import (a kernel warms up on them).

    That is every module an ``import`` names, and every submodule the code reaches through an
    imported name: ``np.random.default_rng(...)`` after ``import numpy as np`` needs
    ``numpy.random``, which NumPy imports only when the attribute is first used (about 50 ms,
    which a warmed-up kernel should already have paid).
    """
    found: set[str] = set()
    for solution in solutions:
        trees = []
        for cell in nbformat.read(solution, as_version=4).cells:
            tags = set(cell.get("metadata", {}).get("tags", []) or [])
            if cell.cell_type != "code" or tags & _SKIPPED_TAGS:
                continue
            try:
                trees.append(ast.parse(cell.source))
            except SyntaxError:
                continue
        aliases: dict[str, str] = {}  # a name the notebook binds -> the module it names
        for node in (node for tree in trees for node in ast.walk(tree)):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.add(alias.name)
                    head = alias.name.partition(".")[0]
                    aliases[alias.asname or head] = alias.name if alias.asname else head
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
                for alias in node.names:
                    if _is_module(f"{node.module}.{alias.name}"):
                        found.add(f"{node.module}.{alias.name}")
                        aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for node in (node for tree in trees for node in ast.walk(tree)):
            found.update(_submodules_reached(node, aliases))
    return tuple(sorted(found))


def _submodules_reached(node: ast.AST, aliases: dict[str, str]) -> list[str]:
    """The submodules an attribute chain such as ``np.random.default_rng`` walks through."""
    if not isinstance(node, ast.Attribute) or isinstance(node.ctx, ast.Del):
        return []
    chain = []
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return []
    reached, dotted = [], aliases[node.id]
    for attribute in reversed(chain):
        dotted = f"{dotted}.{attribute}"
        if not _is_module(dotted):
            break
        reached.append(dotted)
    return reached


@functools.lru_cache(maxsize=1024)
def _is_module(dotted: str) -> bool:
    """Whether ``dotted`` names an importable module (this imports its parent package)."""
    try:
        return importlib.util.find_spec(dotted) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def question_seconds(limits: Limits, tests: int) -> float:
    """The time budget of one question's tests: ``cell_seconds`` per test, and the grace of one
    interrupt."""
    return limits.cell_seconds * tests + limits.interrupt_grace_seconds


def _run_tests(sandbox: Sandbox, exercise: authoring.Exercise) -> list[TestResult]:
    """Run every test against the kernel; once it is gone, the rest fail with the reason.

    Each question's tests get a time budget of their own (:func:`question_seconds`), and once
    one of them is interrupted for running too long the question's other tests are not run: an
    infinite loop in q1 costs q1 and its time only, and q2 and q3 are still graded.
    """
    namespace = KernelNamespace(sandbox)
    tests = []
    for question in exercise.questions:
        if not sandbox.gone:
            sandbox.renew(question_seconds(sandbox.limits, len(question.tests)))
        timeouts = sandbox.timeouts
        for test in question.tests:
            share = question.test_points(test)
            if sandbox.gone:
                outcome = runner.Outcome(question.name, test.name, False, "error",
                                         f"not run: {sandbox.gone}", 0.0)
            elif sandbox.timeouts > timeouts:
                outcome = runner.Outcome(
                    question.name, test.name, False, "error", f"not run: an earlier test of "
                    f"{question.name} ran past {sandbox.limits.cell_seconds:g} s and was "
                    "interrupted, so the question's other tests were skipped", 0.0)
            else:
                outcome = runner.run_test(test, namespace)
            if sandbox.gone and outcome.passed:
                outcome = runner.Outcome(question.name, test.name, False, "error",
                                         sandbox.gone, outcome.seconds)
            tests.append(TestResult(question.name, test.name, test.hidden,
                                    share if outcome.passed else 0.0, share, outcome.status,
                                    outcome.seconds, outcome.message, test.message))
    return tests


def grade_submission(submission: Submission, exercise: authoring.Exercise, limits: Limits,
                     isolation: Isolation, kernels: Warmup | None = None) -> SubmissionResult:
    """Grade one submission in a fresh sandbox; never raises for a broken submission.

    ``kernels`` hands out a kernel started ahead of time (and starts the next one); without it
    a kernel is started here.
    """
    questions = tuple((q.name, q.points) for q in exercise.questions)
    relative = "" if submission.path is None else submission.path.name
    print_name = submission.solution.name
    answers: dict[str, str] = {}

    def result(status: str, reason: str, tests: tuple[TestResult, ...],
               notes: Sequence[str] = ()) -> SubmissionResult:
        all_notes = ((submission.note,) if submission.note else ()) + tuple(notes)
        return _stored(SubmissionResult(submission.student, print_name, relative, status, reason,
                                        questions, tests, all_notes,
                                        fingerprint(submission, limits),
                                        tuple((q.name, q.points, answers.get(q.name, ""))
                                              for q in exercise.written),
                                        inputs(submission, limits)))

    if submission.path is None:
        reason = f"no notebook found for {print_name}"
        if submission.note:  # what was found instead: a hidden folder, a link, ...
            reason += f" ({submission.note})"
            submission = replace(submission, note="")
        return result("missing", reason, _zero(exercise, reason))
    try:
        notebook = _read_submission(submission.path)
    except (ValueError, OSError) as error:
        return result("invalid", str(error), _zero(exercise, str(error)))
    answers.update(written.answers_of(notebook))  # text only: people grade it, nothing runs it
    timed_out = False
    try:
        box = kernels.take() if kernels is not None else Sandbox(limits, isolation)
        with box as sandbox:
            sandbox.provide(submission.path.name, _read_bytes(submission.path))
            try:
                notes, timed_out = _run_cells(sandbox, notebook)
            except KernelGone:
                notes = []
            tests = _run_tests(sandbox, exercise)
            gone, status = sandbox.gone, sandbox.status
    except (KernelGone, OSError) as error:  # OSError: the grader could not set the sandbox up
        reason = str(error) if isinstance(error, KernelGone) else \
            f"the grader could not start a sandbox ({type(error).__name__}: {error})"
        return result("start-failed", reason, _zero(exercise, reason))
    if gone:
        return result(status, gone, tuple(tests), notes)
    if timed_out:
        return result("cell-timeout", "a cell ran over its time and was interrupted: the "
                      "notebook does not run top to bottom", tuple(tests), notes)
    return result("ok", "", tuple(tests), notes)


# --- the batch ----------------------------------------------------------------------------------

_WORKER: dict[str, object] = {}


def kernels_ahead(workers: int, cores: int | None = None) -> int:
    """Kernels each grading worker keeps booting: enough that the workers' kernel starts cover
    the machine's cores (one worker on two cores boots two at once), at least one and at most
    :data:`MAX_AHEAD` (each booting kernel holds memory).

    A kernel's start-up is one busy core for most of a second while a submission's grading is
    a fraction of that, so with fewer workers than cores one kernel ahead leaves cores idle."""
    cores = cores or os.cpu_count() or 1
    return min(MAX_AHEAD, max(1, -(-cores // max(1, workers))))


def _init_worker(isolation: Isolation, limits: Limits, preload: tuple[str, ...],
                 ahead: int = 1) -> None:
    kernels = Warmup(limits, isolation, preload, ahead)
    _WORKER.update(isolation=isolation, kernels=kernels)
    # The kernel started ahead for a submission that never comes is stopped with the worker.
    multiprocessing.util.Finalize(kernels, kernels.close, exitpriority=10)


def _grade_in_worker(submission: Submission, limits: Limits) -> SubmissionResult:
    exercises = _WORKER.setdefault("exercises", {})
    assert isinstance(exercises, dict)
    if submission.solution not in exercises:  # read each solution once per worker
        exercises[submission.solution] = authoring.load_exercise(submission.solution)
    exercise = exercises[submission.solution]
    isolation, kernels = _WORKER["isolation"], _WORKER["kernels"]
    assert isinstance(isolation, Isolation) and isinstance(kernels, Warmup)
    return grade_submission(submission, exercise, limits, isolation, kernels)


class WorkerDied(RuntimeError):
    """A grading worker process died while it graded a submission."""


def _run_pool(queue: deque[Submission], workers: int, initargs: tuple,
              store: Callable[[SubmissionResult], None]) -> list[Submission]:
    """Grade submissions taken from the left of ``queue`` in one pool of ``workers`` processes,
    storing each result as it comes; at most ``workers`` are in flight at once.

    Returns the submissions that were in flight when a worker died (the pool is then unusable;
    the rest stay in ``queue``), or an empty list once ``queue`` is empty.
    """
    limits = initargs[1]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(*initargs, kernels_ahead(workers))) as pool:
        running: dict[Future, Submission] = {}
        while queue or running:
            while queue and len(running) < workers:
                submission = queue.popleft()
                running[pool.submit(_grade_in_worker, submission, limits)] = submission
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = []
            for future in done:
                submission = running.pop(future)
                try:
                    graded = future.result()
                except SandboxUnavailable as error:
                    raise ValueError(str(error)) from None
                except BrokenProcessPool:
                    broken.append(submission)
                    continue
                except Exception as error:  # pylint: disable=broad-exception-caught
                    graded = grader_error(submission, limits, error)
                store(graded)
            if broken:  # the other futures in flight fail the same way
                return broken + list(running.values())
    return []


@dataclass(frozen=True)
class BatchSummary:
    """What a batch run did.

    Attributes
    ----------
    graded, skipped
        Submissions graded in this run, and left alone because already graded.
    failed
        One line per submission of this run the grader failed on (``start-failed``,
        ``grader-error``): stored with that status, graded again by the next run.
    results
        Every stored result the reports were written from.
    entries_skipped
        One line per entry of the submissions folder left out, and why (:class:`Scan`).
    changes, first_graded
        What this run changed in results graded before (also in ``changes.csv``), and how many
        results it stored for the first time.
    """

    graded: int
    skipped: int
    failed: tuple[str, ...]
    results: tuple[SubmissionResult, ...]
    entries_skipped: tuple[str, ...] = ()
    changes: tuple[gradebook.Change, ...] = ()
    first_graded: int = 0


def _previous(stored: Path) -> SubmissionResult | None:
    """The result stored at ``stored``, or None (none yet, or unreadable)."""
    try:
        return SubmissionResult.from_json(stored.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _pending(submissions: list[Submission], out_dir: Path, limits: Limits,
             force: bool) -> Iterator[Submission]:
    """The submissions to grade: new or changed ones, and those whose stored result says the
    grader failed (:data:`~labsupport.course.gradebook.GRADER_FAULTS`) — never those whose
    failure was the student's (``kernel-died``, ``hung``, ``timeout``, ``invalid``, ...)."""
    for submission in submissions:
        stored = gradebook.result_path(out_dir, submission.student, submission.solution.name)
        if not force and stored.exists():
            old = _previous(stored)
            if old is not None and old.fingerprint == fingerprint(submission, limits) \
                    and old.status not in gradebook.GRADER_FAULTS:
                continue
        yield submission


def grade_batch(  # pylint: disable=too-many-arguments,too-many-positional-arguments,too-many-locals
        solutions: Sequence[Path], submissions_dir: Path, out_dir: Path, limits: Limits,
        workers: int | None = None, force: bool = False, part: tuple[int, int] = (1, 1),
        uid_base: int = DEFAULT_UID_BASE, timings: bool = False,
        progress: bool = True, unconfined: bool = False, layout: str = "folders",
        roster: layouts.Roster | None = None,
        course: policy.Course | None = None) -> BatchSummary:
    """Grade every submission under ``submissions_dir`` against ``solutions`` into ``out_dir``.

    Already graded, unchanged submissions are skipped unless ``force``. ``part=(i, N)`` grades
    shard ``i`` of ``N``. Kernels run under bubblewrap; where it cannot run, ValueError says
    why, unless ``unconfined`` (per-process limits only, with a warning on stderr). ``layout``
    and ``roster`` are those of :func:`scan_submissions`; what the download says about each
    hand-in (late flag, time, LMS name) is kept in ``handins.csv``; with a ``course``, the
    reports apply its policy (:func:`labsupport.course.policy.write_reports`). Returns what was
    done; the reports in ``out_dir`` cover every stored result.
    """
    solutions = [Path(s).resolve() for s in solutions]
    for solution in solutions:
        authoring.load_exercise(solution)  # fail early, in the instructor's terms
    problem = bubblewrap_problem()
    if problem and not unconfined:
        raise ValueError(f"{problem}.\nRefusing to grade: without bubblewrap a notebook can read "
                         "every file the grader can (solutions included) and reach the network."
                         "\nPass --unconfined to grade anyway with per-process limits only.")
    if unconfined:
        print("WARNING: grading UNCONFINED (--unconfined): no sandbox, per-process limits only;"
              " notebooks can read what the grader can read and reach the network.",
              file=sys.stderr)
    scan = scan_submissions(solutions, submissions_dir, layout, roster)
    submissions = shard(list(scan.submissions), *part)
    gradebook.read_results(out_dir)  # fail now, not after grading, on a foreign results/
    out_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chmod(out_dir, 0o700)
    _record_handins(out_dir, replace(scan, submissions=tuple(submissions)))
    todo = list(_pending(submissions, out_dir, limits, force))
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    failed: list[str] = []
    changed: list[gradebook.Change] = []
    first: list[str] = []
    initargs = (Isolation(confined=not unconfined, uid_base=uid_base), limits,
                exercise_imports(solutions))

    with tqdm(total=len(todo), desc="grading", unit="notebook", disable=not progress,
              file=sys.stderr) as progress_bar:

        def store(graded: SubmissionResult) -> None:
            if graded.status in gradebook.GRADER_FAULTS:
                failed.append(gradebook.printable(
                    f"{graded.student} / {graded.exercise}: {graded.status}: "
                    f"{gradebook.cut(graded.reason, 300)}"))
            target = gradebook.result_path(out_dir, graded.student, graded.exercise)
            old = _previous(target)
            if old is None:
                first.append(graded.student)
            else:  # the earlier result is kept, and what moved is said
                gradebook.archive(out_dir, old)
                changed.extend(gradebook.changes(old, graded))
            gradebook.write_atomic(target, graded.to_json())
            progress_bar.update()

        # A worker that dies (killed by the system, a crash in a library) breaks its pool: the
        # submissions it was grading become suspects and the rest go on in a fresh pool. Each
        # suspect is then graded alone, so the one that kills its worker again is known for
        # sure; only that one becomes a grader-error row (graded again by the next run).
        # A worker that dies, or is terminated with its broken pool, leaves its sandboxes'
        # folders (its current one and the kernels it started ahead): once the pools are shut
        # down, every worker is gone and they are removed, however the run ends.
        queue, suspects = deque(todo), deque()
        try:
            while queue:
                suspects.extend(_run_pool(queue, workers, initargs, store))
            while suspects:
                for culprit in _run_pool(suspects, 1, initargs, store):
                    store(grader_error(culprit, limits, WorkerDied(
                        "the grading worker died twice while grading this notebook, the second "
                        "time with no other notebook beside it")))
        finally:
            remove_stale_folders()
    gradebook.write_atomic(out_dir / "changes.csv", gradebook.changes_csv(changed))
    results = policy.write_reports(out_dir, course, roster, timings)
    return BatchSummary(len(todo), len(submissions) - len(todo), tuple(sorted(failed)),
                        tuple(results), scan.skipped,
                        tuple(sorted(changed, key=lambda c: (c.student, c.exercise,
                                                             c.question))), len(first))


# --- command line -------------------------------------------------------------------------------


def _shard_arg(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard expects i/N such as 1/4, got {text!r}") \
            from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"--shard {text}: expected 1 <= i <= N")
    return index, count


def _say(text: str, stream=None) -> None:
    """Print ``text`` so that no name or message can fail to encode or drive the terminal."""
    print(gradebook.printable(text), file=stream or sys.stdout)


def _run_grade(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    if paths and str(args.paths[0]) == "merge":
        try:
            gradebook.merge(paths[1:], args.out, args.timings)
            handins: dict[tuple[str, str], layouts.Handin] = {}
            for shard in paths[1:]:
                handins.update(layouts.read_handins(shard))
            gradebook.write_atomic(args.out / layouts.HANDINS_FILE,
                                   layouts.handins_csv(list(handins.values())))
            results = policy.write_reports(
                args.out, policy.read_course(args.course) if args.course else None,
                layouts.read_roster(args.roster) if args.roster else None, args.timings)
        except ValueError as error:
            _say(f"error: {error}", sys.stderr)
            return 1
        _say(f"merged {len(results)} results from {len(paths) - 1} shard(s) into {args.out}")
        return 0
    if len(paths) < 2:
        print("error: give one or more solution notebooks, then the submissions directory",
              file=sys.stderr)
        return 1
    limits = Limits(cell_seconds=args.cell_timeout, submission_seconds=args.timeout,
                    memory_bytes=args.memory_mb * 1024**2, processes=args.processes)
    try:
        roster = layouts.read_roster(args.roster) if args.roster else None
        course = policy.read_course(args.course) if args.course else None
        summary = grade_batch(paths[:-1], paths[-1], args.out, limits, args.workers,
                              args.force, args.shard, args.uid_base, args.timings,
                              unconfined=args.unconfined, layout=args.layout, roster=roster,
                              course=course)
    except ValueError as error:
        _say(f"error: {error}", sys.stderr)
        return 1
    for line in summary.entries_skipped:
        _say(f"skipped: {line}", sys.stderr)
    _say(f"graded {summary.graded}, skipped {summary.skipped} already graded; "
         f"{len(summary.results)} results in {args.out / 'grades.csv'}"
         + ("  (UNCONFINED: per-process limits only, no sandbox)" if args.unconfined else ""))
    _say(change_summary(summary))
    counts = Counter(r.status for r in summary.results)
    _say("statuses: " + ", ".join(f"{status} {counts[status]}"
                                  for status in gradebook.STATUSES if counts[status]))
    for line in summary.failed:
        _say(f"grader error (run again to retry): {line}", sys.stderr)
    return 2 if summary.failed else 0


def change_summary(summary: BatchSummary) -> str:
    """One line: how many results this run changed, why, and how many were new."""
    moved = {(c.student, c.exercise): c.why for c in summary.changes}
    reasons = Counter(moved.values())
    why = "; ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    # Regraded (a new solution, --force) with every question's points as before: said, so a
    # run after fixing a test does not read as if nothing had been graded.
    same = summary.graded - summary.first_graded - len(moved)
    return (f"changes: {len(moved)} result(s) changed" + (f" ({why})" if why else "")
            + (f", {same} regraded with the same points" if same > 0 else "")
            + f", {summary.first_graded} graded for the first time; see changes.csv")


def register(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
    """Add ``labsupport grade`` (and ``labsupport grade merge``) to the command."""
    command = subparsers.add_parser(
        "grade", help="grade a class of notebooks in sandboxed kernels (or merge shards)",
        description="labsupport grade SOLUTION.ipynb [SOLUTION2.ipynb ...] SUBMISSIONS_DIR -o OUT"
                    "  |  labsupport grade merge SHARD_DIR [SHARD_DIR ...] -o OUT")
    command.add_argument("paths", nargs="+", metavar="PATH",
                         help="solution notebook(s) then the submissions directory; or "
                              "'merge' then shard output directories")
    command.add_argument("-o", "--out", type=Path, required=True, help="output directory")
    command.add_argument("--workers", type=int, default=None,
                         help="parallel kernels (default: number of cores)")
    command.add_argument("--force", action="store_true",
                         help="re-grade submissions that are already graded")
    command.add_argument("--shard", type=_shard_arg, default=(1, 1), metavar="i/N",
                         help="grade only shard i of N (students dealt round-robin)")
    command.add_argument("--cell-timeout", type=float, default=60.0, metavar="SECONDS")
    command.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                         help="total time of one submission")
    command.add_argument("--memory-mb", type=int, default=3072,
                         help="memory of one submission: its kernel and all it forks together")
    command.add_argument("--processes", type=int, default=128,
                         help="processes and threads one submission may have")
    command.add_argument("--uid-base", type=int, default=DEFAULT_UID_BASE,
                         help="first uid kernels run as when grading as root")
    command.add_argument("--unconfined", action="store_true",
                         help="grade even where bubblewrap cannot run: per-process limits "
                              "only, notebooks can read what the grader can (not a sandbox)")
    command.add_argument("--layout", choices=layouts.LAYOUTS, default="auto",
                         help="how SUBMISSIONS_DIR is organised: an unzipped Canvas or Moodle "
                              "download (students by LMS id), or one folder or notebook per "
                              "student (folders); auto guesses from the names (default)")
    command.add_argument("--roster", type=Path, default=None, metavar="ROSTER.csv",
                         help="the class list (lms_id, student_id, name, email, section"
                              "[, submitted]): students on it with nothing handed in get a "
                              "'missing' row, ids not on it are reported")
    command.add_argument("--course", type=Path, default=None, metavar="COURSE.toml",
                         help="due dates, late policy, extensions and overrides, applied to "
                              "the reports (grades.csv gets raw, override, late_penalty; "
                              "audit.csv lists every adjustment); the stored results never "
                              "change")
    command.add_argument("--timings", action="store_true",
                         help="fill results_long.csv's seconds column (output then varies)")
    command.set_defaults(handler=_run_grade)
