"""The course's policy, applied at report time on top of the stored results: due dates, the late
policy, per-student extensions and the instructor's manual overrides.

The grader stores what each notebook earned (``results/``); nothing here changes those files.
Every report is computed from them and from the course file (``--course course.toml``), so a
regrade (a fixed hidden test, a resubmission) never loses a hand edit, and every adjustment is
listed in ``audit.csv`` with its reason. The course file, read with :mod:`tomllib`::

    [exercises.02_data_drift]           # the solution's file name without .ipynb
    due = 2026-10-05T23:59:00+02:00     # a TOML time with its offset
    canvas_column = "Lab 2 (901234)"    # optional: the Canvas gradebook column to fill
    moodle_maximum = 10                 # optional: the Moodle assignment's maximum grade

    [late]
    grace_minutes = 15                  # hand-ins this late are on time
    percent_per_day = 10                # of the points earned, per day (or part of one) late
    cap_percent = 50                    # never more than this
    zero_after_days = 7                 # more days late than this: no points

    [[extensions]]
    student = "340934"                  # the id the grader uses (the LMS id of a download)
    exercise = "02_data_drift"          # optional: every exercise when left out
    days = 3

    [[overrides]]
    student = "340934"
    exercise = "02_data_drift"
    question = "q1"
    points = 2                          # the question's points, in place of the grader's
    reason = "right idea, the test's tolerance was too tight"
    by = "jdoe"

The late penalty is taken from the points after overrides, written answers' included (the
points people gave on the review page, :mod:`labsupport.course.review`); an override may name a
written question too. A written answer nobody has scored yet is pending, never a zero; a
``missing`` hand-in's written answers are 0 (there is nothing to review). A hand-in's time is
the roster's ``submitted`` column when it has one, else what the download says (Canvas's late
flag, the file's time from the zip, :mod:`labsupport.course.layouts`). A hand-in Canvas marked
late whose time does not show it (a file time lost on the way) counts as one day late, unless
the student has an extension (Canvas's flag knows only the course's due date).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from labsupport.course import gradebook, layouts, reviewstore
from labsupport.course.gradebook import SubmissionResult

DAY = timedelta(days=1)


@dataclass(frozen=True)
class LatePolicy:
    """How late work loses points (see the module's docstring); the default takes nothing."""

    grace_minutes: float = 0.0
    percent_per_day: float = 0.0
    cap_percent: float = 100.0
    zero_after_days: float | None = None

    def percent(self, days_late: int) -> float:
        """Percent of the points taken from a hand-in ``days_late`` days late."""
        if days_late <= 0:
            return 0.0
        if self.zero_after_days is not None and days_late > self.zero_after_days:
            return 100.0
        return min(self.cap_percent, self.percent_per_day * days_late)


@dataclass(frozen=True)
class Extension:
    """More time for one student, on one exercise (``exercise=""``: on every one)."""

    student: str
    exercise: str
    days: float


@dataclass(frozen=True)
class Override:
    """The instructor's points for one question of one student's exercise, and why."""

    student: str
    exercise: str
    question: str
    points: float
    reason: str
    by: str


@dataclass(frozen=True)
class Assignment:
    """One exercise's settings: due date and the LMS's names for it."""

    exercise: str
    due: datetime | None = None
    canvas_column: str = ""
    moodle_maximum: float | None = None


@dataclass(frozen=True)
class Course:
    """The whole course file; ``Course()`` is the policy of no policy (raw points)."""

    assignments: tuple[Assignment, ...] = ()
    late: LatePolicy = LatePolicy()
    extensions: tuple[Extension, ...] = ()
    overrides: tuple[Override, ...] = ()

    def assignment(self, exercise: str) -> Assignment:
        """The settings of ``exercise`` (a solution's file name, with or without .ipynb)."""
        stem = Path(exercise).stem
        return next((a for a in self.assignments if a.exercise == stem), Assignment(stem))


def _table(data: object, where: str) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a table")
    return data


def _number(data: dict, key: str, where: str, default: float | None = None) -> float | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{where}: {key} must be a number >= 0, got {value!r}")
    return float(value)


def _text(data: dict, key: str, where: str, required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, (str, int)) or isinstance(value, bool) or (required and value == ""):
        raise ValueError(f"{where}: {key} must be given as text (in quotes)")
    return str(value)


def _unknown(data: dict, known: set[str], where: str) -> None:
    extra = sorted(set(data) - known)
    if extra:
        raise ValueError(f"{where}: unknown key(s) {', '.join(extra)}; expected "
                         f"{', '.join(sorted(known))}")


def _due(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{where}: due must be a TOML time with its offset, such as "
                         "2026-10-05T23:59:00+02:00 (without quotes)")
    return value.astimezone(timezone.utc)


def parse_course(text: str, where: str = "course file") -> Course:
    """The course from the text of its TOML file; ValueError says what is wrong where."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{where}: not valid TOML ({error})") from None
    _unknown(data, {"exercises", "late", "extensions", "overrides"}, where)
    assignments = []
    for name, entry in sorted(_table(data.get("exercises", {}), f"{where}: exercises").items()):
        at = f"{where}: [exercises.{name}]"
        entry = _table(entry, at)
        _unknown(entry, {"due", "canvas_column", "moodle_maximum"}, at)
        assignments.append(Assignment(Path(name).stem, _due(entry.get("due"), at),
                                      _text(entry, "canvas_column", at, required=False),
                                      _number(entry, "moodle_maximum", at)))
    late = _table(data.get("late", {}), f"{where}: [late]")
    _unknown(late, {"grace_minutes", "percent_per_day", "cap_percent", "zero_after_days"},
             f"{where}: [late]")
    policy = LatePolicy(*(_number(late, key, f"{where}: [late]", default) for key, default in
                          (("grace_minutes", 0.0), ("percent_per_day", 0.0),
                           ("cap_percent", 100.0), ("zero_after_days", None))))
    if policy.cap_percent > 100 or policy.percent_per_day > 100:
        raise ValueError(f"{where}: [late] percentages must be at most 100")
    extensions = []
    for index, entry in enumerate(data.get("extensions", []), start=1):
        at = f"{where}: extension {index}"
        entry = _table(entry, at)
        _unknown(entry, {"student", "exercise", "days"}, at)
        extensions.append(Extension(_text(entry, "student", at),
                                    Path(_text(entry, "exercise", at, required=False)).stem,
                                    _number(entry, "days", at) or 0.0))
    overrides = []
    for index, entry in enumerate(data.get("overrides", []), start=1):
        at = f"{where}: override {index}"
        entry = _table(entry, at)
        _unknown(entry, {"student", "exercise", "question", "points", "reason", "by"}, at)
        overrides.append(Override(_text(entry, "student", at),
                                  Path(_text(entry, "exercise", at)).stem,
                                  _text(entry, "question", at), _number(entry, "points", at),
                                  _text(entry, "reason", at), _text(entry, "by", at)))
    return Course(tuple(assignments), policy, tuple(extensions), tuple(overrides))


def read_course(path: Path) -> Course:
    """Read the course file at ``path`` (:func:`parse_course`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read the course file ({type(error).__name__})") \
            from None
    return parse_course(text, str(path))


# --- applying it ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Adjustment:
    """One change the policy made to a stored result: a line of ``audit.csv``.

    ``kind`` is ``override``, ``late`` or ``extension``; ``before`` and ``after`` are points
    (of the question for an override, of the exercise for a late penalty) or, for an
    extension, due dates.
    """

    student: str
    exercise: str
    question: str
    kind: str
    before: str
    after: str
    reason: str
    by: str


@dataclass(frozen=True)
class Grade:
    """One student's grade on one exercise after the policy.

    ``questions`` holds each tested question's points after overrides, ``written`` each
    written question's (``None``: pending review, no one has scored it); ``raw`` is what the
    tests and the reviewers gave, ``override`` what the overrides added (negative: took away),
    ``late_penalty`` the points the late policy took, so ``final = raw + override -
    late_penalty``. ``possible`` counts the written questions' points too.
    """

    student: str
    exercise: str
    questions: tuple[tuple[str, float], ...]
    raw: float
    late_penalty: float
    final: float
    possible: float
    days_late: int
    adjustments: tuple[Adjustment, ...]
    written: tuple[tuple[str, float | None], ...] = ()

    @property
    def override(self) -> float:
        """What the overrides added to ``raw`` (negative: took away)."""
        return self.final + self.late_penalty - self.raw

    @property
    def pending(self) -> tuple[str, ...]:
        """The written questions no one has scored yet."""
        return tuple(name for name, points in self.written if points is None)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _lateness(course: Course, result: SubmissionResult, handin: layouts.Handin | None,
              submitted: datetime | None) -> tuple[int, list[Adjustment], str]:
    """Days late, the extension's audit line, and the reason, for one hand-in."""
    due = course.assignment(result.exercise).due
    if result.status == "missing" or due is None:
        return 0, [], ""
    stem = Path(result.exercise).stem
    extra = sum(e.days for e in course.extensions
                if e.student == result.student and e.exercise in ("", stem))
    audit = []
    if extra:
        new_due = due + timedelta(days=extra)
        audit.append(Adjustment(result.student, result.exercise, "", "extension", _stamp(due),
                                _stamp(new_due), f"extension of {gradebook.number(extra)} "
                                "day(s)", ""))
        due = new_due
    if submitted is not None:
        over = submitted - due - timedelta(minutes=course.late.grace_minutes)
        if over > timedelta(0):
            days = math.ceil(over / DAY)
            return days, audit, (f"handed in {_stamp(submitted)}, due {_stamp(due)}: "
                                 f"{days} day(s) late")
    if handin is not None and handin.late and not extra:
        return 1, audit, "the LMS marked it late and its time does not say by how much: 1 day"
    return 0, audit, ""


Scores = dict[tuple[str, str, str], reviewstore.Score]


def apply(course: Course, results: list[SubmissionResult],
          handins: dict[tuple[str, str], layouts.Handin] | None = None,
          roster: layouts.Roster | None = None,
          written: Scores | None = None) -> dict[tuple[str, str], Grade]:
    """Every result's :class:`Grade` under ``course``, by ``(student, exercise)``; ``written``
    holds the reviewers' scores of written answers (:func:`gradebook.written_scores`).

    An override for a student and exercise with no stored result (another shard's, or a typo)
    changes nothing here; :func:`unused_overrides` lists them for the audit.

    Raises
    ------
    ValueError
        An override names a question the graded exercise does not have, or gives a question
        more than its points.
    """
    handins = handins or {}
    listed = roster.by_lms_id() if roster else {}
    by_key = {(r.student, Path(r.exercise).stem): r for r in results}
    for override in course.overrides:
        result = by_key.get((override.student, override.exercise))
        if result is None:
            continue
        maxima = {**dict(result.questions),
                  **{name: points for name, points, _ in result.written}}
        maximum = maxima.get(override.question)
        if maximum is None:
            raise ValueError(f"override of {override.student} / {override.exercise} / "
                             f"{override.question}: the exercise has no such question (it has "
                             f"{', '.join(maxima)})")
        if override.points > maximum:
            raise ValueError(f"override of {override.student} / {override.exercise} / "
                             f"{override.question}: {gradebook.number(override.points)} points "
                             f"is more than the question's {gradebook.number(maximum)}")
    grades = {}
    for result in results:
        handin = handins.get((result.student, result.exercise))
        student = listed.get(result.student)
        submitted = (student.submitted if student and student.submitted
                     else handin.submitted if handin else None)
        grades[(result.student, result.exercise)] = _grade(course, result, handin, submitted,
                                                           written or {})
    return grades


def reviewed(result: SubmissionResult, written: Scores) -> tuple[tuple[str, float | None], ...]:
    """The points people gave each written answer of ``result`` (``None``: pending review); a
    ``missing`` hand-in's are 0, since there is no answer to review."""
    return tuple((name, 0.0 if result.status == "missing" else
                  (score.points if (score := written.get((result.student, result.exercise, name)))
                   else None))
                 for name, _, _ in result.written)


def _overridden(course: Course, result: SubmissionResult, question: str,
                points: float | None, audit: list[Adjustment]) -> float | None:
    """``points`` of ``question`` after the overrides (the last one written wins)."""
    stem = Path(result.exercise).stem
    for override in course.overrides:
        if (override.student, override.exercise, override.question) == \
                (result.student, stem, question):
            audit.append(Adjustment(result.student, result.exercise, question, "override",
                                    gradebook.PENDING if points is None
                                    else gradebook.number(points),
                                    gradebook.number(override.points), override.reason,
                                    override.by))
            points = override.points
    return points


def _grade(course: Course, result: SubmissionResult, handin: layouts.Handin | None,
           submitted: datetime | None, written: Scores) -> Grade:
    audit: list[Adjustment] = []
    questions = tuple((question, _overridden(course, result, question,
                                             result.question_score(question), audit))
                      for question, _ in result.questions)
    given = reviewed(result, written)
    people = tuple((name, _overridden(course, result, name, points, audit))
                   for name, points in given)
    raw = result.score + sum(points for _, points in given if points is not None)
    days, extension, why = _lateness(course, result, handin, submitted)
    earned = sum(points for _, points in (*questions, *people) if points is not None)
    percent = course.late.percent(days)
    penalty = earned * percent / 100
    late = [Adjustment(result.student, result.exercise, "", "late", gradebook.number(earned),
                       gradebook.number(earned - penalty),
                       f"{why}; {gradebook.number(percent)}% taken", "")] if penalty else []
    possible = result.possible + sum(points for _, points, _ in result.written)
    return Grade(result.student, result.exercise, questions, raw, penalty, earned - penalty,
                 possible, days, tuple(extension + audit + late), people)


_AUDIT_COLUMNS = ("student", "exercise", "question", "kind", "before", "after", "reason", "by")


def unused_overrides(course: Course, results: list[SubmissionResult]) -> tuple[Adjustment, ...]:
    """The overrides that match no stored result, as ``unused`` audit lines."""
    graded = {(r.student, Path(r.exercise).stem) for r in results}
    return tuple(Adjustment(o.student, o.exercise, o.question, "unused",
                            "", gradebook.number(o.points),
                            f"no graded result for this student and exercise ({o.reason})", o.by)
                 for o in course.overrides if (o.student, o.exercise) not in graded)


def audit_csv(grades: dict[tuple[str, str], Grade], unused: tuple[Adjustment, ...] = ()) -> str:
    """Every adjustment, one row each, sorted by student and exercise, then the ``unused``
    overrides (``audit.csv``)."""
    rows = [list(_AUDIT_COLUMNS)]
    changes = [a for _, grade in sorted(grades.items()) for a in grade.adjustments]
    rows += [[gradebook.csv_student(a.student), a.exercise, a.question, a.kind, a.before,
              a.after, gradebook.printable(a.reason), gradebook.printable(a.by)]
             for a in [*changes, *unused]]
    return gradebook.csv_text(rows)


def write_reports(out_dir: Path, course: Course | None = None,
                  roster: layouts.Roster | None = None,
                  timings: bool = False) -> list[SubmissionResult]:
    """Rebuild the reports of ``out_dir`` under ``course``: ``grades.csv`` with its raw, override,
    late penalty and final columns, and ``audit.csv``; without a course, the raw reports (and
    no ``audit.csv``)."""
    if course is None:
        (out_dir / "audit.csv").unlink(missing_ok=True)  # an earlier course's: no longer true
        return gradebook.write_reports(out_dir, timings)
    results = gradebook.read_results(out_dir)
    grades = apply(course, results, layouts.read_handins(out_dir), roster,
                   gradebook.written_scores(out_dir))
    gradebook.write_reports(out_dir, timings, grades)
    gradebook.write_atomic(out_dir / "audit.csv",
                           audit_csv(grades, unused_overrides(course, results)))
    return results
