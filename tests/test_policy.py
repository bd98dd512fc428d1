"""The course policy: due dates, late penalties, extensions and overrides applied on top of the
stored results, every adjustment audited, and a bad course file refused with its place."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from labsupport.course import gradebook, layouts, policy, reviewstore
from labsupport.course.gradebook import SubmissionResult, TestResult

COURSE = """
[exercises.lab]
due = 2026-10-05T23:59:00+02:00

[late]
grace_minutes = 15
percent_per_day = 10
cap_percent = 30
zero_after_days = 7

[[extensions]]
student = "ext"
days = 2

[[overrides]]
student = "ana"
exercise = "lab.ipynb"
question = "q2"
points = 3
reason = "right idea, tolerance too tight"
by = "jdoe"
"""
DUE = datetime(2026, 10, 5, 21, 59, tzinfo=timezone.utc)


def result(student: str, q1: float, q2: float, status: str = "ok") -> SubmissionResult:
    """A stored result of ``lab.ipynb``: q1 out of 2 (one test), q2 out of 4 (one test)."""
    tests = (TestResult("q1", "test_q1", False, q1, 2.0, "passed", 0.0, "", ""),
             TestResult("q2", "test_q2", True, q2, 4.0, "failed", 0.0, "", ""))
    return SubmissionResult(student, "lab.ipynb", f"{student}.ipynb", status, "",
                            (("q1", 2.0), ("q2", 4.0)), tests, (), "f" * 64)


def handin(student: str, hours_late: float | None, late: bool = False) -> layouts.Handin:
    """``student``'s hand-in of ``lab.ipynb``, ``hours_late`` after the due date (None: no
    time), with Canvas's ``late`` flag."""
    when = None if hours_late is None else DUE + (hours_late * policy.DAY / 24)
    return layouts.Handin(student, "lab.ipynb", student, "", late, when)


@pytest.mark.parametrize("hours_late, flag, days, final", [
    (-1, False, 0, 4.0),        # on time
    (0.2, False, 0, 4.0),       # inside the 15 minutes of grace
    (0.3, False, 1, 3.6),       # 18 minutes late: one day, 10 %
    (24.2, False, 1, 3.6),      # 24 h 12 min: within grace of the first day
    (49, False, 3, 2.8),        # three days: 30 %
    (24 * 5, False, 5, 2.8),    # five days: capped at 30 %
    (24 * 7 + 1, False, 8, 0.0),  # more than 7 days: nothing
    (None, True, 1, 3.6),       # Canvas says late, no time: one day
    (-1, True, 1, 3.6),         # Canvas says late, the time was lost: one day
])
def test_the_late_policy_takes_its_share(hours_late, flag, days, final):
    course = policy.parse_course(COURSE)
    grade = policy.apply(course, [result("bo", 2, 2)],
                         {("bo", "lab.ipynb"): handin("bo", hours_late, flag)})[("bo", "lab.ipynb")]
    assert (grade.days_late, grade.raw, grade.final) == (days, 4.0, pytest.approx(final))
    assert grade.late_penalty == pytest.approx(4.0 - final)


def test_an_extension_moves_the_due_date_and_is_audited():
    course = policy.parse_course(COURSE)
    grades = policy.apply(course, [result("ext", 2, 2)],
                          {("ext", "lab.ipynb"): handin("ext", 30, late=True)})
    grade = grades[("ext", "lab.ipynb")]
    assert (grade.days_late, grade.final) == (0, 4.0)
    assert grade.adjustments == (policy.Adjustment(
        "ext", "lab.ipynb", "", "extension", "2026-10-05T21:59:00Z", "2026-10-07T21:59:00Z",
        "extension of 2 day(s)", ""),)


def test_the_roster_time_wins_over_the_file_time():
    roster = layouts.Roster((layouts.Student("bo", "s1", "Bo", "bo@x", "A",
                                             DUE - policy.DAY),))
    grades = policy.apply(policy.parse_course(COURSE), [result("bo", 2, 2)],
                          {("bo", "lab.ipynb"): handin("bo", 50)}, roster)
    assert grades[("bo", "lab.ipynb")].days_late == 0


def test_an_override_replaces_the_question_and_the_penalty_follows():
    course = policy.parse_course(COURSE)
    grade = policy.apply(course, [result("ana", 2, 0)],
                         {("ana", "lab.ipynb"): handin("ana", 2)})[("ana", "lab.ipynb")]
    assert grade.questions == (("q1", 2.0), ("q2", 3.0))
    assert (grade.raw, grade.override, grade.late_penalty, grade.final) == (
        2.0, 3.0, pytest.approx(0.5), pytest.approx(4.5))
    rows = list(csv.reader(io.StringIO(policy.audit_csv({("ana", "lab.ipynb"): grade}))))
    assert rows == [
        ["student", "exercise", "question", "kind", "before", "after", "reason", "by"],
        ["ana", "lab.ipynb", "q2", "override", "0", "3", "right idea, tolerance too tight",
         "jdoe"],
        ["ana", "lab.ipynb", "", "late", "5", "4.5", "handed in 2026-10-05T23:59:00Z, due "
         "2026-10-05T21:59:00Z: 1 day(s) late; 10% taken", ""]]


def test_grades_csv_shows_raw_override_penalty_and_final():
    course = policy.parse_course(COURSE)
    results = [result("ana", 2, 0), result("bo", 1, 4)]
    grades = policy.apply(course, results, {("bo", "lab.ipynb"): handin("bo", 30)})
    assert gradebook.grades_csv(results, grades).splitlines() == [
        "student,q1,q2,raw,override,late_penalty,total,possible,percent,status",
        "ana,2,3,2,3,0,5,6,83.33,ok",
        "bo,1,4,5,0,1,4,6,66.67,ok"]
    feedback = gradebook.feedback_markdown("ana", [results[0]], grades)
    assert "## lab.ipynb: 5 / 6" in feedback and "### q2: 3 / 4" in feedback
    assert "- override of q2: 0 to 3 (right idea, tolerance too tight)" in feedback


def test_an_override_that_takes_points_away_stays_a_number_in_grades_csv():
    # It was written '-2 (guarded like a formula), which a spreadsheet reads as text.
    course = policy.parse_course(COURSE.replace("points = 3", "points = 2"))
    results = [result("ana", 2, 4)]
    rows = list(csv.reader(io.StringIO(gradebook.grades_csv(results,
                                                            policy.apply(course, results)))))
    assert rows[1] == ["ana", "2", "2", "6", "-2", "0", "4", "6", "66.67", "ok"]


def with_w1(item: SubmissionResult) -> SubmissionResult:
    """``item`` with a written question w1 worth 2 points."""
    return replace(item, written=(("w1", 2.0, "" if item.status == "missing" else "Because."),))


def reviewed(student: str, points: float) -> dict:
    """A reviewer's score of ``student``'s w1 in ``lab.ipynb``, keyed as policy.apply reads it."""
    score = reviewstore.Score("lab.ipynb", "w1", student, points, (), "ok", "ta1", "t", 1)
    return {(student, "lab.ipynb", "w1"): score}


def test_written_points_count_towards_the_late_penalty_and_can_be_overridden():
    # The penalty was taken from the tests' points only, so a late student kept every written
    # point; an override of a written question was refused ("no such question").
    course = policy.parse_course(COURSE.replace('question = "q2"', 'question = "w1"')
                                 .replace("points = 3", "points = 1.5"))
    results = [with_w1(result("bo", 2, 4)), with_w1(result("ana", 2, 4))]
    grades = policy.apply(course, results, {("bo", "lab.ipynb"): handin("bo", 2)},
                          written=reviewed("bo", 2))
    bo, ana = grades[("bo", "lab.ipynb")], grades[("ana", "lab.ipynb")]
    assert (bo.raw, bo.written, bo.late_penalty, bo.final, bo.possible) == (
        8.0, (("w1", 2.0),), pytest.approx(0.8), pytest.approx(7.2), 8.0)
    assert (ana.raw, ana.written, ana.override, ana.final, ana.pending) == (
        6.0, (("w1", 1.5),), 1.5, 7.5, ())
    assert ana.adjustments[0] == policy.Adjustment(
        "ana", "lab.ipynb", "w1", "override", "pending", "1.5",
        "right idea, tolerance too tight", "jdoe")
    rows = gradebook.grades_csv(results, grades).splitlines()
    assert rows[1:] == ["ana,2,4,1.5,6,1.5,0,7.5,8,93.75,ok",
                        "bo,2,4,2,8,0,0.8,7.2,8,90.00,ok"]


def test_a_written_answer_nobody_scored_is_pending_and_a_missing_one_is_zero():
    # A student with nothing handed in stayed 'w1:pending' forever: there is no answer to review.
    results = [with_w1(result("bo", 2, 4)), with_w1(result("cy", 0, 0, "missing"))]
    grades = policy.apply(policy.Course(), results)
    assert grades[("bo", "lab.ipynb")].pending == ("w1",)
    assert grades[("cy", "lab.ipynb")].written == (("w1", 0.0),)
    assert gradebook.grades_csv(results, grades).splitlines()[1:] == [
        "bo,2,4,pending,6,0,0,6,8,,w1:pending", "cy,0,0,0,0,0,0,0,8,0.00,missing"]
    assert gradebook.grades_csv(results).splitlines()[1:] == [  # without a course file too
        "bo,2,4,pending,6,8,,w1:pending", "cy,0,0,0,0,8,0.00,missing"]
    assert "## lab.ipynb: 6 / 8 (w1 pending review)" in gradebook.feedback_markdown(
        "bo", [results[0]], grades)


def test_a_missing_hand_in_is_not_late():
    course = policy.parse_course(COURSE)
    grade = policy.apply(course, [result("cy", 0, 0, "missing")],
                         {("cy", "lab.ipynb"): handin("cy", 100, True)})[("cy", "lab.ipynb")]
    assert (grade.days_late, grade.adjustments) == (0, ())


def test_an_override_of_an_ungraded_student_is_audited_as_unused():
    course = policy.parse_course(COURSE)
    results = [result("bo", 1, 4)]
    assert policy.unused_overrides(course, results) == (policy.Adjustment(
        "ana", "lab", "q2", "unused", "", "3", "no graded result for this student and exercise "
        "(right idea, tolerance too tight)", "jdoe"),)
    assert policy.audit_csv({}, policy.unused_overrides(course, results)).count("unused") == 1


@pytest.mark.parametrize("override, message", [
    ('student = "ana"\nexercise = "lab"\nquestion = "q9"', "ana / lab / q9: the exercise has "
                                                         "no such question \\(it has q1, q2\\)"),
    ('student = "ana"\nexercise = "lab"\nquestion = "q1"\npoints = 5', "more than the question"),
])
def test_an_override_that_matches_nothing_or_too_much_is_refused(override, message):
    text = f"[[overrides]]\n{override}\nreason = 'r'\nby = 'me'\n"
    if "points" not in override:
        text = text.replace("reason", "points = 1\nreason")
    with pytest.raises(ValueError, match=message):
        policy.apply(policy.parse_course(text), [result("ana", 2, 0)])


@pytest.mark.parametrize("text, message", [
    ("[exercises.lab]\ndue = 2026-10-05T23:59:00\n", "with its offset"),
    ("[exercises.lab]\ndue = '2026-10-05T23:59:00Z'\n", "with its offset"),
    ("[late]\npercent_per_day = -5\n", "percent_per_day must be a number >= 0"),
    ("[late]\ncap_percent = 150\n", "at most 100"),
    ("[late]\npenalty = 5\n", r"unknown key\(s\) penalty"),
    ("[[overrides]]\nstudent = 'a'\nexercise = 'lab'\nquestion = 'q1'\npoints = 1\n",
     "override 1: reason must be given"),
    ("due = ", "not valid TOML"),
])
def test_a_bad_course_file_is_refused_with_its_place(text, message):
    with pytest.raises(ValueError, match=message):
        policy.parse_course(text)


def test_no_course_file_is_no_adjustment():
    grades = policy.apply(policy.Course(), [result("bo", 1, 4)],
                          {("bo", "lab.ipynb"): handin("bo", 500, True)})
    assert grades[("bo", "lab.ipynb")].final == 5.0


def test_reports_without_a_course_leave_no_stale_audit(tmp_path):
    stored = result("ana", 2, 0)
    gradebook.write_atomic(gradebook.result_path(tmp_path, "ana", "lab.ipynb"), stored.to_json())
    policy.write_reports(tmp_path, policy.parse_course(COURSE))
    assert "override" in (tmp_path / "audit.csv").read_text(encoding="utf-8")
    assert (tmp_path / "grades.csv").read_text(encoding="utf-8").splitlines()[1] == \
        "ana,2,3,2,3,0,5,6,83.33,ok"
    policy.write_reports(tmp_path)
    assert not (tmp_path / "audit.csv").exists()
    assert (tmp_path / "grades.csv").read_text(encoding="utf-8").splitlines()[1] == \
        "ana,2,0,2,6,33.33,ok"
