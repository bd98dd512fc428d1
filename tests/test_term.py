"""A whole term on data in the LMSs' own formats: a Canvas download with a resubmission and a late
file, a Moodle download, rosters, a late policy and an override, a regrade after a hidden test is
fixed; the Canvas and Moodle import files, the feedback page, changes.csv and the audit trail are
checked cell by cell. (Four notebooks graded, two of them twice.)"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest

from labsupport import cli
from labsupport.course import gradebook, grading
from tests.sandbox_support import require_bubblewrap

CORPUS = Path(__file__).parent / "grading_corpus"
SUBMISSIONS = CORPUS / "submissions"
FLAGS = ["--cell-timeout", "4", "--timeout", "60", "--memory-mb", "1024", "--processes", "64",
         "--workers", "1"]
DUE = datetime(2026, 10, 5, 21, 59, tzinfo=timezone.utc)
COURSE = """
[exercises.solution]
due = 2026-10-05T23:59:00+02:00
canvas_column = "Lab 1 (901234)"
moodle_maximum = 10

[late]
grace_minutes = 15
percent_per_day = 10
cap_percent = 50

[[overrides]]
student = "351200"
exercise = "solution"
question = "q1"
points = 1.5
reason = "squared() instead of square(): the logic is right"
by = "jdoe"
"""
CANVAS_ROSTER = ('lms_id,student_id,name,email,section\n'
                 '340934,s001,"Smith, Bob",bob@uni.example,A\n'
                 '351200,s002,"Zhao, Min",min@uni.example,B\n'
                 '399999,s003,"Never, Came",never@uni.example,A\n')
MOODLE_ROSTER = ('lms_id,student_id,name,email,section\n'
                 '1001,s101,Ana Lopez,ana@uni.example,A\n'
                 '1002,s102,Bo Chen,bo@uni.example,A\n')
STRICT = 'assert ns.ANSWER_Q3.strip().lower() == "canary"'
FIXED = 'assert ns.ANSWER_Q3.strip().lower() in {"canary", "canary release"}'


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def _hand_in(source: Path, target: Path, hours_after_due: float,
             text: tuple[str, str] = ("", "")) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source.read_text(encoding="utf-8").replace(*text), encoding="utf-8")
    stamp = (DUE + timedelta(hours=hours_after_due)).timestamp()
    os.utime(target, (stamp, stamp))


def _solution(folder: Path, fixed: bool) -> Path:
    notebook = nbformat.read(CORPUS / "solution.ipynb", as_version=4)
    for cell in notebook.cells:
        cell.source = cell.source.replace(STRICT, FIXED) if fixed else cell.source
    path = folder / "solution.ipynb"
    nbformat.write(notebook, path)
    return path


def _grade(term: Path, lms: str, fixed: bool) -> str:
    args = ["grade", str(_solution(term, fixed)), str(term / lms), "-o", str(term / f"{lms}-out"),
            "--layout", "auto", "--roster", str(term / f"{lms}-roster.csv"),
            "--course", str(term / "course.toml"), *FLAGS]
    assert cli.main(args) == 0
    return lms


@pytest.fixture(name="term", scope="module")
def _term(tmp_path_factory):
    require_bubblewrap()
    term = tmp_path_factory.mktemp("term")
    (term / "course.toml").write_text(COURSE, encoding="utf-8")
    (term / "canvas-roster.csv").write_text(CANVAS_ROSTER, encoding="utf-8")
    (term / "moodle-roster.csv").write_text(MOODLE_ROSTER, encoding="utf-8")
    canvas = term / "canvas"
    _hand_in(SUBMISSIONS / "stub.ipynb", canvas / "smithbob_340934_208490284_solution.ipynb", -5)
    _hand_in(SUBMISSIONS / "correct.ipynb",
             canvas / "smithbob_late_340934_208490301_solution-1.ipynb", 30)
    _hand_in(SUBMISSIONS / "renamed_function.ipynb",
             canvas / "zhaomin_351200_208490400_solution.ipynb", -1)
    moodle = term / "moodle"
    _hand_in(SUBMISSIONS / "correct.ipynb",
             moodle / "Ana Lopez_1001_assignsubmission_file_" / "solution.ipynb", -2)
    _hand_in(SUBMISSIONS / "correct.ipynb",
             moodle / "Bo Chen_1002_assignsubmission_file_" / "solution.ipynb", 50,
             ('canary', 'Canary release'))
    _grade(term, "canvas", fixed=False)
    _grade(term, "moodle", fixed=False)
    _grade(term, "moodle", fixed=True)  # the hidden test of q3 was too strict: fixed, regraded
    for lms in ("canvas", "moodle"):
        assert cli.main(["export", lms, str(term / f"{lms}-export"), "--grades",
                         str(term / f"{lms}-out"), "--course", str(term / "course.toml"),
                         "--roster", str(term / f"{lms}-roster.csv")]) == 0
    return term


def test_the_canvas_import_file(term):
    assert _rows(term / "canvas-export" / "canvas-grades.csv") == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 1 (901234)"],
        ["    Points Possible", "", "", "", "", "5.00"],
        ["Never, Came", "399999", "s003", "", "A", "0.00"],   # on the roster, nothing handed in
        ["Smith, Bob", "340934", "s001", "", "A", "4.00"],    # resubmitted 5, 2 days late: -20 %
        ["Zhao, Min", "351200", "s002", "", "B", "4.50"]]     # 3, q1 overridden from 0 to 1.5


def test_the_canvas_grades_and_audit_trail(term):
    out = term / "canvas-out"
    assert _rows(out / "grades.csv") == [
        ["student", "q1", "q2", "q3", "raw", "override", "late_penalty", "total", "possible",
         "percent", "status"],
        ["340934", "2", "2", "1", "5", "0", "1", "4", "5", "80.00", "ok"],
        ["351200", "1.5", "2", "1", "3", "1.5", "0", "4.5", "5", "90.00", "ok"],
        ["399999", "0", "0", "0", "0", "0", "0", "0", "5", "0.00", "missing"]]
    assert _rows(out / "audit.csv") == [
        ["student", "exercise", "question", "kind", "before", "after", "reason", "by"],
        ["340934", "solution.ipynb", "", "late", "5", "4", "handed in 2026-10-07T03:59:00Z, "
         "due 2026-10-05T21:59:00Z: 2 day(s) late; 20% taken", ""],
        ["351200", "solution.ipynb", "q1", "override", "0", "1.5",
         "squared() instead of square(): the logic is right", "jdoe"]]


def test_the_canvas_feedback_page(term):
    page = (term / "canvas-export" / "feedback"
            / f"{gradebook.safe_name('340934')}.html").read_text(encoding="utf-8")
    assert "<h2>solution.ipynb: 4 / 5</h2>" in page
    assert ("earlier hand-ins not graded (a later one replaces them): "
            "smithbob_340934_208490284_solution.ipynb") in page
    assert "late: 5 to 4 (handed in 2026-10-07T03:59:00Z" in page
    assert "<script" not in page.lower()


def test_the_moodle_worksheet_and_feedback_zip(term):
    rows = _rows(term / "moodle-export" / "solution-grading-worksheet.csv")
    assert rows == [
        ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
         "Grade can be changed", "Last modified (submission)", "Last modified (grade)",
         "Feedback comments"],
        ["Participant 1001", "Ana Lopez", "ana@uni.example", "Submitted for grading", "10.00",
         "10.00", "Yes", "Monday, 5 October 2026, 7:59 PM", "-",
         "q1: 2 / 2; q2: 2 / 2; q3: 1 / 1. Details in feedback.html."],
        ["Participant 1002", "Bo Chen", "bo@uni.example", "Submitted for grading", "7.00",
         "10.00", "Yes", "Wednesday, 7 October 2026, 11:59 PM", "-",
         "q1: 2 / 2; q2: 2 / 2; q3: 1 / 1; late (3 day(s)): -1.5. Details in feedback.html."]]
    with zipfile.ZipFile(term / "moodle-export" / "solution-feedback.zip") as archive:
        assert archive.namelist() == ["Ana Lopez_1001_assignsubmission_file_/feedback.html",
                                      "Bo Chen_1002_assignsubmission_file_/feedback.html"]


def test_the_regrade_says_what_changed_and_keeps_the_first_result(term):
    out = term / "moodle-out"
    assert _rows(out / "changes.csv") == [
        ["student", "exercise", "question", "before", "after", "why"],
        ["1002", "solution.ipynb", "q3", "0.5", "1", "solution changed"]]
    (first,) = gradebook.history(out, "1002", "solution.ipynb")
    assert (first.score, first.question_score("q3")) == (4.5, 0.5)
    assert [r.score for r in gradebook.history(out, "1001", "solution.ipynb")] == [5.0]
    assert _rows(out / "audit.csv")[1:] == [
        ["1002", "solution.ipynb", "", "late", "5", "3.5", "handed in 2026-10-07T23:59:00Z, "
         "due 2026-10-05T21:59:00Z: 3 day(s) late; 30% taken", ""],
        # The course file is shared with the Canvas class: its override is listed, not lost.
        ["351200", "solution", "q1", "unused", "", "1.5", "no graded result for this student "
         "and exercise (squared() instead of square(): the logic is right)", "jdoe"]]


def test_the_summary_line_counts_changes_by_reason():
    moved = [gradebook.Change("a", "x.ipynb", "q1", "0", "1", "solution changed"),
             gradebook.Change("a", "x.ipynb", "q2", "0", "1", "solution changed"),
             gradebook.Change("b", "x.ipynb", "q1", "1", "0", "notebook changed")]
    summary = grading.BatchSummary(3, 0, (), (), (), tuple(moved), 4)
    assert grading.change_summary(summary) == (
        "changes: 2 result(s) changed (1 notebook changed; 1 solution changed), 4 graded for "
        "the first time; see changes.csv")


def test_the_summary_line_counts_regrades_that_moved_nothing():
    # After a fixed test regraded six students and moved no points, the line said
    # "0 result(s) changed, 0 graded for the first time", as if nothing had run.
    moved = (gradebook.Change("a", "x.ipynb", "q1", "0", "1", "solution changed"),)
    summary = grading.BatchSummary(7, 0, (), (), (), moved, 0)
    assert grading.change_summary(summary) == (
        "changes: 1 result(s) changed (1 solution changed), 6 regraded with the same points, "
        "0 graded for the first time; see changes.csv")
