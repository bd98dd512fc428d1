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
import hashlib
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
from tqdm import tqdm

from labsupport.course import authoring, gradebook, runner
from labsupport.course.gradebook import SubmissionResult, TestResult
from labsupport.course.proxy import KernelNamespace
from labsupport.course.sandbox import DEFAULT_UID_BASE, Isolation, KernelGone, Limits, Sandbox

#: Largest submission file the grader reads.
MAX_NOTEBOOK_BYTES = 20 * 1024**2
#: Cells the grader never runs: tests (they run here, not in the kernel) and declared wrong
#: answers (only in solution notebooks, which an instructor may grade to try the grader).
_SKIPPED_TAGS = {authoring.PUBLIC_TAG, authoring.HIDDEN_TAG, authoring.WRONG_TAG}
_MAX_NOTES = 20


@dataclass(frozen=True)
class Submission:
    """One student's notebook for one exercise (``path`` is None when none was found)."""

    student: str
    solution: Path
    path: Path | None
    note: str = ""


def _notebooks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts and p.is_file())


def find_submissions(solutions: Sequence[Path], submissions_dir: Path) -> list[Submission]:
    """Pair every student with a notebook for every exercise, sorted by student.

    ``submissions_dir`` holds one folder per student (any depth below it, as an LMS bulk
    download or nbgrader's ``submitted/<student>/<assignment>/``) or one notebook per student
    named after the student. With several exercises, a notebook is matched to the exercise whose
    solution has the same file name; with one, any notebook in the student's folder will do.
    """
    if not submissions_dir.is_dir():
        raise ValueError(f"{submissions_dir} is not a directory of submissions")
    found = []
    for entry in sorted(submissions_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            if len(solutions) > 1:
                raise ValueError(f"{entry.name}: with several exercises, put each student's "
                                 "notebooks in a folder named after the student")
            found.append(Submission(entry.stem, solutions[0], entry))
        elif entry.is_dir():
            notebooks = _notebooks_in(entry)
            for solution in solutions:
                named = [p for p in notebooks if p.name == solution.name]
                candidates = named or (notebooks if len(solutions) == 1 else [])
                note = "" if len(candidates) <= 1 else (
                    f"{len(candidates)} notebooks found; graded "
                    f"{candidates[0].relative_to(entry)}")
                found.append(Submission(entry.name, solution, candidates[0] if candidates
                                        else None, note))
    return sorted(found, key=lambda s: (s.student, s.solution.name))


def shard(submissions: list[Submission], index: int, count: int) -> list[Submission]:
    """The submissions of shard ``index`` (1-based) of ``count``: students dealt round-robin
    in sorted order, so every student's exercises land in the same shard."""
    if not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count}: expected 1 <= i <= N")
    students = sorted({s.student for s in submissions})
    mine = set(students[index - 1::count])
    return [s for s in submissions if s.student in mine]


def fingerprint(submission: Submission, limits: Limits) -> str:
    """Hash of what decides a grade: submission bytes, solution bytes, limits."""
    digest = hashlib.sha256()
    digest.update(submission.solution.read_bytes())
    digest.update(repr(sorted(asdict(limits).items())).encode())
    if submission.path is not None:
        digest.update(submission.path.read_bytes()[:MAX_NOTEBOOK_BYTES + 1])
    return digest.hexdigest()


def _zero(exercise: authoring.Exercise, reason: str) -> tuple[TestResult, ...]:
    return tuple(TestResult(q.name, t.name, t.hidden, 0.0, q.points / len(q.tests),
                            "error", 0.0, reason, t.message)
                 for q in exercise.questions for t in q.tests)


def _read_submission(path: Path) -> nbformat.NotebookNode:
    """Read a submitted notebook; ValueError with a reason when it is not one."""
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"the file is larger than {MAX_NOTEBOOK_BYTES // 1024**2} MB")
    try:
        notebook = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except Exception as error:  # pylint: disable=broad-exception-caught
        raise ValueError(f"not a readable notebook ({type(error).__name__})") from None
    cells = notebook.get("cells")
    if not isinstance(cells, list) or not all(
            isinstance(c, dict) and isinstance(c.get("source", ""), str) for c in cells):
        raise ValueError("not a readable notebook (no list of cells)")
    return notebook


def _run_cells(sandbox: Sandbox, notebook: nbformat.NotebookNode) -> list[str]:
    """Run every code cell (test cells excepted), go on after errors; return notes."""
    notes = []
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") != "code" or _SKIPPED_TAGS & set(
                cell.get("metadata", {}).get("tags", []) or []):
            continue
        result = sandbox.run(cell.get("source", ""), what=f"cell {index}")
        if result.status != "ok" and len(notes) < _MAX_NOTES:
            notes.append(f"cell {index}: {result.message}")
    return notes


def _status_of(reason: str) -> str:
    if "time budget" in reason:
        return "timeout"
    if "did not stop when interrupted" in reason:
        return "hung"
    if "malformed message" in reason:
        return "kernel-broken"
    return "kernel-died"


def grade_submission(submission: Submission, exercise: authoring.Exercise, limits: Limits,
                     isolation: Isolation) -> SubmissionResult:
    """Grade one submission in a fresh sandbox; never raises for a broken submission."""
    questions = tuple((q.name, q.points) for q in exercise.questions)
    relative = "" if submission.path is None else submission.path.name
    print_name = submission.solution.name

    def result(status: str, reason: str, tests: tuple[TestResult, ...],
               notes: Sequence[str] = ()) -> SubmissionResult:
        all_notes = ((submission.note,) if submission.note else ()) + tuple(notes)
        return SubmissionResult(submission.student, print_name, relative, status, reason,
                                questions, tests, all_notes, fingerprint(submission, limits))

    if submission.path is None:
        reason = f"no notebook found for {print_name}"
        return result("missing", reason, _zero(exercise, reason))
    try:
        notebook = _read_submission(submission.path)
    except (ValueError, OSError) as error:
        return result("invalid", str(error), _zero(exercise, str(error)))
    try:
        with Sandbox(limits, isolation) as sandbox:
            try:
                notes = _run_cells(sandbox, notebook)
            except KernelGone:
                notes = []
            namespace = KernelNamespace(sandbox)
            tests = []
            for question in exercise.questions:
                share = question.points / len(question.tests)
                for test in question.tests:
                    if sandbox.gone:
                        outcome = runner.Outcome(question.name, test.name, False, "error",
                                                 f"not run: {sandbox.gone}", 0.0)
                    else:
                        outcome = runner.run_test(test, namespace)
                    if sandbox.gone and outcome.passed:
                        outcome = runner.Outcome(question.name, test.name, False, "error",
                                                 sandbox.gone, outcome.seconds)
                    tests.append(TestResult(question.name, test.name, test.hidden,
                                            share if outcome.passed else 0.0, share,
                                            outcome.status, outcome.seconds, outcome.message,
                                            test.message))
            gone = sandbox.gone
    except KernelGone as error:
        return result("start-failed", str(error), _zero(exercise, str(error)))
    if gone:
        return result(_status_of(gone), gone, tuple(tests), notes)
    return result("ok", "", tuple(tests), notes)


# --- the batch ----------------------------------------------------------------------------------

_WORKER: dict[str, object] = {}


def _init_worker(slots: multiprocessing.Queue, hidden: tuple[Path, ...], uid_base: int) -> None:
    _WORKER["isolation"] = Isolation(slot=slots.get(), uid_base=uid_base, hidden=hidden)


def _grade_in_worker(submission: Submission, limits: Limits) -> SubmissionResult:
    exercise = authoring.load_exercise(submission.solution)
    isolation = _WORKER["isolation"]
    assert isinstance(isolation, Isolation)
    return grade_submission(submission, exercise, limits, isolation)


@dataclass(frozen=True)
class BatchSummary:
    """What a batch run did."""

    graded: int
    skipped: int
    failed: tuple[str, ...]
    results: tuple[SubmissionResult, ...]


def _pending(submissions: list[Submission], out_dir: Path, limits: Limits,
             force: bool) -> Iterator[Submission]:
    for submission in submissions:
        stored = gradebook.result_path(out_dir, submission.student, submission.solution.name)
        if not force and stored.exists():
            try:
                old = SubmissionResult.from_json(stored.read_text(encoding="utf-8"))
            except (ValueError, TypeError, KeyError):
                old = None
            if old is not None and old.fingerprint == fingerprint(submission, limits):
                continue
        yield submission


def grade_batch(  # pylint: disable=too-many-arguments,too-many-positional-arguments,too-many-locals
        solutions: Sequence[Path], submissions_dir: Path, out_dir: Path, limits: Limits,
        workers: int | None = None, force: bool = False, part: tuple[int, int] = (1, 1),
        uid_base: int = DEFAULT_UID_BASE, timings: bool = False,
        progress: bool = True) -> BatchSummary:
    """Grade every submission under ``submissions_dir`` against ``solutions`` into ``out_dir``.

    Already graded, unchanged submissions are skipped unless ``force``. ``part=(i, N)`` grades
    shard ``i`` of ``N``. Returns what was done; the reports in ``out_dir`` cover every stored
    result.
    """
    solutions = [Path(s).resolve() for s in solutions]
    for solution in solutions:
        authoring.load_exercise(solution)  # fail early, in the instructor's terms
    submissions = shard(find_submissions(solutions, submissions_dir), *part)
    out_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chmod(out_dir, 0o700)
    todo = list(_pending(submissions, out_dir, limits, force))
    hidden = (out_dir.resolve(), submissions_dir.resolve(), *solutions)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    failed = []
    context = multiprocessing.get_context("fork")
    slots = context.Queue()
    for slot in range(workers):
        slots.put(slot)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(slots, hidden, uid_base)) as pool, \
            tqdm(total=len(todo), desc="grading", unit="notebook", disable=not progress,
                 file=sys.stderr) as progress_bar:
        futures = {pool.submit(_grade_in_worker, s, limits): s for s in todo}
        for future in as_completed(futures):
            submission = futures[future]
            try:
                graded = future.result()
            except Exception as error:  # pylint: disable=broad-exception-caught
                failed.append(f"{submission.student} / {submission.solution.name}: "
                              f"{type(error).__name__}: {error}")
            else:
                gradebook.write_atomic(
                    gradebook.result_path(out_dir, graded.student, graded.exercise),
                    graded.to_json())
            progress_bar.update()
    results = gradebook.write_reports(out_dir, timings)
    return BatchSummary(len(todo) - len(failed), len(submissions) - len(todo),
                        tuple(sorted(failed)), tuple(results))


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


def _run_grade(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    if paths and str(args.paths[0]) == "merge":
        try:
            results = gradebook.merge(paths[1:], args.out, args.timings)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"merged {len(results)} results from {len(paths) - 1} shard(s) into {args.out}")
        return 0
    if len(paths) < 2:
        print("error: give one or more solution notebooks, then the submissions directory",
              file=sys.stderr)
        return 1
    limits = Limits(cell_seconds=args.cell_timeout, submission_seconds=args.timeout,
                    memory_bytes=args.memory_mb * 1024**2, processes=args.processes)
    try:
        summary = grade_batch(paths[:-1], paths[-1], args.out, limits, args.workers,
                              args.force, args.shard, args.uid_base, args.timings)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"graded {summary.graded}, skipped {summary.skipped} already graded; "
          f"{len(summary.results)} results in {args.out / 'grades.csv'}")
    for line in summary.failed:
        print(f"grader error (re-run to retry): {line}", file=sys.stderr)
    return 2 if summary.failed else 0


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
    command.add_argument("--memory-mb", type=int, default=3072, help="kernel memory limit")
    command.add_argument("--processes", type=int, default=128,
                         help="processes and threads a kernel may have")
    command.add_argument("--uid-base", type=int, default=DEFAULT_UID_BASE,
                         help="first uid kernels run as when grading as root")
    command.add_argument("--timings", action="store_true",
                         help="fill results_long.csv's seconds column (output then varies)")
    command.set_defaults(handler=_run_grade)
