"""The grader's records and what it writes from them: gradebook CSVs, feedback, atomic files.

A graded submission is a :class:`SubmissionResult`, stored as one JSON file per student and
exercise under ``OUT/results/``. Everything else in the output directory (``grades.csv``,
``results_long.csv``, ``feedback/<student>.md``) is rebuilt from those files by
:func:`write_reports`, sorted, with no timestamps, so the same results always give the same
bytes — and a merge of shard directories gives exactly what one run over the whole class gives.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

#: Submission statuses; ``ok`` means the notebook ran (cells may still have raised) and every
#: test was run against the live kernel; ``cell-timeout`` the same, except that a cell ran over
#: its time and was interrupted. ``start-failed`` and ``grader-error`` are the grader's faults.
STATUSES = ("ok", "cell-timeout", "invalid", "missing", "kernel-died", "kernel-broken", "hung",
            "timeout", "start-failed", "grader-error")
RESULT_FORMAT = 1


@dataclass(frozen=True)
class TestResult:
    """One test of one submission, with the points it earned."""

    __test__ = False  # not a pytest test class

    question: str
    test: str
    hidden: bool
    points: float
    max_points: float
    status: str
    seconds: float
    message: str
    instructor_message: str


@dataclass(frozen=True)
class SubmissionResult:
    """One student's grade on one exercise.

    Attributes
    ----------
    student, exercise
        Who (folder or file name) and which exercise (solution file name).
    notebook
        The graded file, relative to the submissions directory ("" when none was found).
    status, reason
        ``ok`` or what went wrong (:data:`STATUSES`), and why, in words.
    questions
        ``(name, points)`` of every question of the exercise, in notebook order.
    tests
        Every test of the exercise, in order, with its outcome.
    notes
        Problems worth telling the student (cells that raised or timed out).
    fingerprint
        Hash of the submission, solution and limits: a re-run skips an unchanged submission.
    """

    student: str
    exercise: str
    notebook: str
    status: str
    reason: str
    questions: tuple[tuple[str, float], ...]
    tests: tuple[TestResult, ...]
    notes: tuple[str, ...]
    fingerprint: str

    @property
    def score(self) -> float:
        """Points earned over all tests."""
        return sum(t.points for t in self.tests)

    @property
    def possible(self) -> float:
        """Points available."""
        return sum(points for _, points in self.questions)

    def question_score(self, question: str) -> float:
        """Points earned on ``question``."""
        return sum(t.points for t in self.tests if t.question == question)

    def to_json(self) -> str:
        """The stored form (sorted keys, one trailing newline)."""
        data = asdict(self)
        data["format"] = RESULT_FORMAT
        return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SubmissionResult:
        """Read a stored result; ValueError if it is not one this version wrote."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.pop("format", None) != RESULT_FORMAT:
            raise ValueError("not a grading result of this labsupport version")
        data["questions"] = tuple((name, float(points)) for name, points in data["questions"])
        data["tests"] = tuple(TestResult(**test) for test in data["tests"])
        data["notes"] = tuple(data["notes"])
        return cls(**data)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``.

    A reader sees the old file or the new one, never half of one; an interrupted write leaves
    the old file in place and removes the temporary one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def safe_name(student: str) -> str:
    """A file-name-safe version of a student id (kept readable)."""
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]+", "_", student).strip("._") or "student"
    return cleaned[:120]


def result_path(out_dir: Path, student: str, exercise: str) -> Path:
    """Where the result of ``student`` on ``exercise`` is stored."""
    return out_dir / "results" / safe_name(student) / f"{Path(exercise).stem}.json"


def read_results(directory: Path) -> list[SubmissionResult]:
    """Every stored result under ``directory/results``, sorted by student and exercise."""
    results = [SubmissionResult.from_json(p.read_text(encoding="utf-8"))
               for p in sorted((directory / "results").glob("*/*.json"))]
    return sorted(results, key=lambda r: (r.student, r.exercise))


def number(value: float) -> str:
    """Points as text: integers without decimals, others to 4 decimals (deterministic)."""
    rounded = round(value + 0.0, 4)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.4f}".rstrip("0")


def _columns(results: list[SubmissionResult]) -> list[tuple[str, str, str]]:
    """``(exercise, question, column name)`` in exercise then notebook order."""
    exercises = sorted({r.exercise for r in results})
    prefix = len(exercises) > 1
    seen: dict[str, tuple[tuple[str, float], ...]] = {}
    for result in results:
        seen.setdefault(result.exercise, result.questions)
    return [(exercise, name, f"{Path(exercise).stem}:{name}" if prefix else name)
            for exercise in exercises for name, _ in seen[exercise]]


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def grades_csv(results: list[SubmissionResult]) -> str:
    """One row per student: a column per question, total, possible, percent, status."""
    columns = _columns(results)
    header = ["student", *(c for _, _, c in columns), "total", "possible", "percent", "status"]
    by_student: dict[str, dict[str, SubmissionResult]] = {}
    for result in results:
        by_student.setdefault(result.student, {})[result.exercise] = result
    possible = {}
    for result in results:
        possible[result.exercise] = result.possible
    total_possible = sum(possible.values())
    rows = [header]
    for student in sorted(by_student):
        mine = by_student[student]
        cells = [number(mine[e].question_score(q)) if e in mine else "0" for e, q, _ in columns]
        total = sum(r.score for r in mine.values())
        statuses = [f"{Path(e).stem}:{mine[e].status}" if len(possible) > 1 else mine[e].status
                    for e in sorted(possible) if e in mine and mine[e].status != "ok"]
        missing = [f"{Path(e).stem}:missing" for e in sorted(possible) if e not in mine]
        percent = 100 * total / total_possible if total_possible else 0.0
        rows.append([student, *cells, number(total), number(total_possible),
                     f"{percent:.2f}", ";".join(statuses + missing) or "ok"])
    return _csv(rows)


def results_long_csv(results: list[SubmissionResult], timings: bool = False) -> str:
    """One row per student and test, for the instructor (hidden tests' messages included);
    ``seconds`` is blank unless ``timings``, since timings differ from run to run."""
    multi = len({r.exercise for r in results}) > 1
    rows = [["student", "question", "test", "points", "max", "status", "seconds", "message"]]
    for result in results:
        for test in result.tests:
            question = f"{Path(result.exercise).stem}:{test.question}" if multi else test.question
            rows.append([result.student, question, test.test, number(test.points),
                         number(test.max_points), test.status,
                         f"{test.seconds:.3f}" if timings else "", test.message])
    return _csv(rows)


def feedback_markdown(student: str, results: list[SubmissionResult]) -> str:
    """The student's feedback: public tests in full, hidden tests by name and the instructor's
    message only."""
    lines = [f"# Feedback for {student}", ""]
    for result in sorted(results, key=lambda r: r.exercise):
        lines += [f"## {result.exercise}: {number(result.score)} / {number(result.possible)}", ""]
        if result.status != "ok":
            lines += [f"**Grading problem ({result.status}):** {result.reason}", ""]
        if result.notebook:
            lines += [f"Graded notebook: `{result.notebook}`", ""]
        for question, points in result.questions:
            lines += [f"### {question}: {number(result.question_score(question))} / "
                      f"{number(points)}", ""]
            for test in (t for t in result.tests if t.question == question):
                kind = "hidden" if test.hidden else "public"
                lines.append(f"- `{test.test}` ({kind}): **{test.status}**, "
                             f"{number(test.points)} / {number(test.max_points)}")
                if test.hidden and test.status != "passed" and test.instructor_message:
                    lines.append(f"  - {test.instructor_message}")
                elif not test.hidden and test.message:
                    lines += ["", "  ```text", *(f"  {line}" for line in
                                                 test.message.splitlines()), "  ```"]
            lines.append("")
        if result.notes:
            lines += ["### Notes from running your notebook", ""]
            lines += [f"- {note}" for note in result.notes] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_reports(out_dir: Path, timings: bool = False) -> list[SubmissionResult]:
    """Rebuild ``grades.csv``, ``results_long.csv`` and ``feedback/`` from ``out_dir/results``."""
    results = read_results(out_dir)
    by_student: dict[str, list[SubmissionResult]] = {}
    for result in results:
        by_student.setdefault(result.student, []).append(result)
    for student, mine in sorted(by_student.items()):
        write_atomic(out_dir / "feedback" / f"{safe_name(student)}.md",
                     feedback_markdown(student, mine))
    write_atomic(out_dir / "results_long.csv", results_long_csv(results, timings))
    write_atomic(out_dir / "grades.csv", grades_csv(results))
    return results


def merge(shards: list[Path], out_dir: Path, timings: bool = False) -> list[SubmissionResult]:
    """Copy the stored results of several shard directories into ``out_dir`` and rebuild the
    reports; ValueError when two shards graded the same student and exercise differently."""
    merged: dict[tuple[str, str], SubmissionResult] = {}
    for shard in shards:
        if not (shard / "results").is_dir():
            raise ValueError(f"{shard} holds no results/ directory: is it a grading output?")
        for result in read_results(shard):
            key = (result.student, result.exercise)
            if key in merged and merged[key].fingerprint != result.fingerprint:
                raise ValueError(f"{key[0]} / {key[1]} was graded from different inputs in two "
                                 "shards; re-grade one of them")
            merged[key] = result
    for (student, exercise), result in sorted(merged.items()):
        write_atomic(result_path(out_dir, student, exercise), result.to_json())
    return write_reports(out_dir, timings)
