"""Files the LMS imports as they are: ``labsupport export canvas|moodle OUT_DIR --grades GRADING``.

Exports turn the stored results (under the course policy, :mod:`labsupport.course.policy`) into
what each LMS reads back, keyed by the LMS's own ids (those the download gave, see
:mod:`labsupport.course.layouts`):

``canvas``
    ``canvas-grades.csv``, Canvas's gradebook import format: ``Student, ID, SIS User ID,
    SIS Login ID, Section``, then one column per exercise (the course file's ``canvas_column``,
    such as ``Lab 2 (901234)``, so Canvas fills the existing assignment; otherwise the exercise's
    name, which Canvas offers to create), and the ``Points Possible`` row Canvas's own export
    has. Canvas matches students on ``ID`` (the user id). Canvas has no bulk upload of feedback
    files: ``feedback/`` holds one HTML page per student to attach or send.
``moodle``
    For each exercise, ``<exercise>-grading-worksheet.csv``, Moodle's offline grading worksheet
    (``Identifier`` is ``Participant <id>``), and ``<exercise>-feedback.zip``, one folder per
    student named as Moodle's download names it (``Full Name_<id>_assignsubmission_file_/``)
    holding ``feedback.html``, which Moodle's "Upload multiple feedback files in a zip" matches
    by participant id.

The HTML feedback is the student's Markdown feedback (:func:`gradebook.feedback_markdown`, in
which everything the student controls is already escaped) rendered by mistune with raw HTML
escaped too, in a page with no script and a content security policy that forbids any.
With a roster, exactly the students on it are exported (those not on it are listed); without
one, every graded student.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


from labsupport.course import gradebook, layouts, policy
from labsupport.course.gradebook import SubmissionResult

FORMATS = ("canvas", "moodle")
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
#: Canvas's own export has this row under the header (with the leading spaces).
CANVAS_POINTS_ROW = "    Points Possible"
MOODLE_COLUMNS = ("Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                  "Grade can be changed", "Last modified (submission)", "Last modified (grade)",
                  "Feedback comments")
#: A page that can run nothing: no script, no remote load, inline style only.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{title}</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.4}}
pre{{background:#f4f4f4;padding:.5em;overflow-x:auto;white-space:pre-wrap}}</style>
</head>
<body>
{body}</body>
</html>
"""


@dataclass(frozen=True)
class Export:
    """What an export wrote (paths relative to its folder), the students it left out, and the
    students whose grade it left empty because a written answer is pending review (with the
    questions)."""

    files: tuple[Path, ...]
    left_out: tuple[str, ...]
    pending: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Class:
    """Everything an export reads from a grading folder."""

    results: list[SubmissionResult]
    grades: dict[tuple[str, str], policy.Grade]
    handins: dict[tuple[str, str], layouts.Handin]
    roster: layouts.Roster | None
    written: policy.Scores

    def students(self) -> tuple[list[str], list[str]]:
        """The students to export, and those graded but left out (not on the roster)."""
        graded = sorted({r.student for r in self.results})
        if self.roster is None:
            return graded, []
        listed = [s.lms_id for s in self.roster.students]
        return sorted(listed, key=self.name), [s for s in graded if s not in set(listed)]

    def name(self, student: str) -> str:
        """The roster's name, else the LMS's name from the download, else the id."""
        listed = self.roster.by_lms_id() if self.roster else {}
        if student in listed and listed[student].name:
            return listed[student].name
        named = [h.name for (s, _), h in sorted(self.handins.items()) if s == student and h.name]
        return named[0] if named else student


def _load(grading: Path, course: policy.Course | None,
          roster: layouts.Roster | None) -> _Class:
    results = gradebook.read_results(grading)
    if not results:
        raise ValueError(f"{grading} holds no grading results (grade into it first)")
    handins = layouts.read_handins(grading)
    written = gradebook.written_scores(grading)
    grades = policy.apply(course or policy.Course(), results, handins, roster, written)
    return _Class(results, grades, handins, roster, written)


def feedback_html(student: str, results: list[SubmissionResult],
                  grades: dict[tuple[str, str], policy.Grade] | None = None,
                  written: policy.Scores | None = None) -> str:
    """The student's feedback as one self-contained HTML page (no script, nothing remote)."""
    body = gradebook.markdown_html(gradebook.feedback_markdown(student, results, grades,
                                                               written))
    return _PAGE.format(title=html.escape(f"Feedback for {gradebook.printable(student)}"),
                        body=body)


def _number(value: float) -> str:
    return f"{value:.2f}"


def _csv(rows: list[list[str]]) -> str:
    """CSV as the LMS writes it; the cells a student controls are guarded by the callers
    (:func:`gradebook.csv_cell`), the LMS's own (``-``) are written as the LMS wants them."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _text(value: str) -> str:
    return gradebook.csv_cell(gradebook.printable(value))


def canvas_csv(data: _Class, course: policy.Course | None = None) -> str:
    """Canvas's gradebook import CSV (see the module's docstring)."""
    course = course or policy.Course()
    exercises = sorted({r.exercise for r in data.results})
    possible: dict[str, float] = {}
    for item in data.results:  # every result of an exercise has the same questions
        possible[item.exercise] = max(possible.get(item.exercise, 0.0), item.possible
                                      + sum(points for _, points, _ in item.written))
    columns = [course.assignment(e).canvas_column or Path(e).stem for e in exercises]
    rows = [[*CANVAS_COLUMNS, *columns],
            [CANVAS_POINTS_ROW, "", "", "", "", *(_number(possible[e]) for e in exercises)]]
    listed = data.roster.by_lms_id() if data.roster else {}
    students, _ = data.students()
    for student in students:
        person = listed.get(student)
        # Empty, not a partial total, while a written answer is pending review.
        cells = [_number(data.grades[(student, e)].final)
                 if (student, e) in data.grades and not data.grades[(student, e)].pending
                 else "" for e in exercises]
        rows.append([_text(data.name(student)), _text(student),
                     _text(person.student_id) if person else "", "",
                     _text(person.section) if person else "", *cells])
    return _csv(rows)


def _moodle_time(handin: layouts.Handin | None) -> str:
    """Moodle's way of writing a time (``Monday, 5 October 2026, 9:30 PM``), in UTC."""
    if handin is None or handin.submitted is None:
        return "-"
    moment = handin.submitted
    return (f"{moment:%A}, {moment.day} {moment:%B %Y}, {(moment.hour - 1) % 12 + 1}:"
            f"{moment:%M %p}")


def _comment(grade: policy.Grade, result: SubmissionResult) -> str:
    parts = [f"{q}: {gradebook.number(p)} / {gradebook.number(m)}"
             for (q, p), (_, m) in zip(grade.questions, result.questions)]
    parts += [f"{q}: {'pending review' if p is None else gradebook.number(p)} / "
              f"{gradebook.number(m)}" for (q, p), (_, m, _) in zip(grade.written, result.written)]
    if grade.late_penalty:
        parts.append(f"late ({grade.days_late} day(s)): -{gradebook.number(grade.late_penalty)}")
    if result.status != "ok":
        parts.append(f"grading problem: {result.status}")
    return html.escape(gradebook.printable("; ".join(parts) + ". Details in feedback.html."))


def moodle_csv(data: _Class, exercise: str, course: policy.Course | None = None) -> str:
    """Moodle's offline grading worksheet for ``exercise`` (see the module's docstring)."""
    course = course or policy.Course()
    maximum = course.assignment(exercise).moodle_maximum
    listed = data.roster.by_lms_id() if data.roster else {}
    rows = [list(MOODLE_COLUMNS)]
    students, _ = data.students()
    for student in students:
        grade = data.grades.get((student, exercise))
        result = next((r for r in data.results
                       if (r.student, r.exercise) == (student, exercise)), None)
        handin = data.handins.get((student, exercise))
        if grade is None or result is None:
            continue
        scale = (maximum / grade.possible) if maximum and grade.possible else 1.0
        rows.append([_text(f"Participant {student}"), _text(data.name(student)),
                     _text(listed[student].email) if student in listed else "",
                     "No submission" if result.status == "missing" else "Submitted for grading",
                     "" if grade.pending else _number(grade.final * scale),
                     _number(maximum or grade.possible), "Yes",
                     _moodle_time(handin), "-", _text(_comment(grade, result))])
    return _csv(rows)


_MOODLE_UNSAFE = re.compile(r"[_/\\\x00-\x1f]")


def moodle_folder(student: str, name: str, handin: layouts.Handin | None) -> str:
    """The folder Moodle's feedback upload matches to ``student``: the download's own name, or
    one made the same way (Moodle splits it at ``_``, so a name loses its ``_`` and ``/``)."""
    if handin is not None and handin.folder.endswith("_assignsubmission_file_"):
        return handin.folder
    return f"{_MOODLE_UNSAFE.sub(' ', name).strip() or 'student'}_{student}_assignsubmission_file_"


def _zip(files: dict[str, str]) -> bytes:
    """A zip of ``files`` (name -> text) whose bytes depend on nothing but them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()


def _feedback_pages(data: _Class, students: list[str]) -> dict[str, str]:
    pages = {}
    for student in students:
        mine = [r for r in data.results if r.student == student]
        if mine:
            pages[student] = feedback_html(student, mine, data.grades, data.written)
    return pages


def write_export(kind: str, grading: Path, out_dir: Path, course: policy.Course | None = None,
                 roster: layouts.Roster | None = None) -> Export:
    """Write the ``kind`` (``canvas`` or ``moodle``) import files of ``grading`` into ``out_dir``.

    Raises
    ------
    ValueError
        An unknown kind, a folder with no results, or an override the course cannot apply.
    """
    if kind not in FORMATS:
        raise ValueError(f"unknown export {kind!r}: expected one of {', '.join(FORMATS)}")
    data = _load(grading, course, roster)
    students, left_out = data.students()
    pages = _feedback_pages(data, students)
    written: dict[str, str | bytes] = {
        f"feedback/{gradebook.safe_name(student)}.html": page for student, page in pages.items()}
    if kind == "canvas":
        written["canvas-grades.csv"] = canvas_csv(data, course)
    else:
        for exercise in sorted({r.exercise for r in data.results}):
            stem = Path(exercise).stem
            written[f"{stem}-grading-worksheet.csv"] = moodle_csv(data, exercise, course)
            folders = {f"{moodle_folder(s, data.name(s), data.handins.get((s, exercise)))}"
                       "/feedback.html": pages[s] for s in students if s in pages}
            written[f"{stem}-feedback.zip"] = _zip(folders)
    for name, content in sorted(written.items()):
        target = out_dir / name
        if isinstance(content, bytes):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        else:
            gradebook.write_atomic(target, content)
    pending = tuple((student, ", ".join(f"{Path(e).stem}:{q}" for q in grade.pending))
                    for student in students for (s, e), grade in sorted(data.grades.items())
                    if s == student and grade.pending)
    return Export(tuple(Path(name) for name in sorted(written)), tuple(left_out), pending)


# --- command line -------------------------------------------------------------------------------


def _run_export(args: argparse.Namespace) -> int:
    try:
        roster = layouts.read_roster(args.roster) if args.roster else None
        course = policy.read_course(args.course) if args.course else None
        done = write_export(args.format, args.grades, args.out_dir, course, roster)
    except ValueError as error:
        print(gradebook.printable(f"error: {error}"), file=sys.stderr)
        return 1
    for student in done.left_out:
        print(gradebook.printable(f"left out: {student} is graded but not on the roster"),
              file=sys.stderr)
    if done.pending:
        named = [f"{student} ({questions})" for student, questions in done.pending[:10]]
        more = len(done.pending) - len(named)
        print(gradebook.printable(
            f"pending: {len(done.pending)} student(s) have written answers nobody has scored "
            "yet, so their grade is left empty (not 0): " + "; ".join(named)
            + (f"; and {more} more (grades.csv's status names them)" if more else "")
            + " (score them with labsupport review, then export again)"), file=sys.stderr)
    print(f"wrote {len(done.files)} files to {args.out_dir} for {args.format}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
    """Add ``labsupport export canvas|moodle OUT_DIR`` to the command."""
    command = subparsers.add_parser(
        "export", help="write the gradebook and feedback files Canvas or Moodle imports",
        description="labsupport export canvas|moodle OUT_DIR --grades GRADING_DIR "
                    "[--course COURSE.toml] [--roster ROSTER.csv]")
    command.add_argument("format", choices=FORMATS)
    command.add_argument("out_dir", type=Path, metavar="OUT_DIR",
                         help="where the import files go")
    command.add_argument("--grades", type=Path, required=True, metavar="GRADING_DIR",
                         help="the output folder of labsupport grade")
    command.add_argument("--course", type=Path, default=None, metavar="COURSE.toml",
                         help="the course policy to apply (late work, overrides, columns)")
    command.add_argument("--roster", type=Path, default=None, metavar="ROSTER.csv",
                         help="export exactly these students (names, student ids, sections)")
    command.set_defaults(handler=_run_export)
