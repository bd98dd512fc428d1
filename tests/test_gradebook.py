"""The gradebook: stored results, CSV reports, feedback text and atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labsupport.course import gradebook
from labsupport.course.gradebook import SubmissionResult, TestResult


def _result(student: str, passed: bool, exercise: str = "ex.ipynb") -> SubmissionResult:
    tests = (TestResult("q1", "test_public", False, 1.0 if passed else 0.0, 1.0,
                        "passed" if passed else "failed", 0.25, "" if passed else "got 6", ""),
             TestResult("q1", "test_hidden", True, 0.0, 1.0, "failed", 0.5,
                        "expected [0, 1, 4, 9]", "square() must work on arrays."))
    return SubmissionResult(student, exercise, f"{student}.ipynb", "ok", "", (("q1", 2.0),),
                            tests, (), "f" * 64)


@pytest.mark.parametrize("value, text", [(2.0, "2"), (0.5, "0.5"), (2 / 3, "0.6667"),
                                         (0.0, "0"), (-0.0, "0")])
def test_points_are_written_the_same_way_every_time(value, text):
    assert gradebook.number(value) == text


def test_a_result_survives_its_stored_form():
    result = _result("ana", True)
    assert SubmissionResult.from_json(result.to_json()) == result


def test_a_foreign_json_file_is_not_read_as_a_result():
    with pytest.raises(ValueError, match="not a grading result"):
        SubmissionResult.from_json('{"student": "x"}')


def test_grades_csv_has_one_row_per_student():
    text = gradebook.grades_csv([_result("bo", False), _result("ana", True)])
    assert text.splitlines() == ["student,q1,total,possible,percent,status",
                                 "ana,1,1,2,50.00,ok", "bo,0,0,2,0.00,ok"]


def test_several_exercises_get_prefixed_columns():
    text = gradebook.grades_csv([_result("ana", True, "a.ipynb"), _result("ana", True,
                                                                        "b.ipynb")])
    assert text.splitlines()[0] == "student,a:q1,b:q1,total,possible,percent,status"


def test_timings_are_left_out_unless_asked_for():
    rows = [gradebook.results_long_csv([_result("ana", True)], timings=t).splitlines()[1]
            for t in (False, True)]
    assert rows == ["ana,q1,test_public,1,1,passed,,", "ana,q1,test_public,1,1,passed,0.250,"]


def test_feedback_names_hidden_tests_without_their_assertion_text():
    text = gradebook.feedback_markdown("bo", [_result("bo", False)])
    assert "got 6" in text and "square() must work on arrays." in text
    assert "expected [0, 1, 4, 9]" not in text


def test_write_atomic_replaces_the_file(tmp_path):
    target = tmp_path / "grades.csv"
    gradebook.write_atomic(target, "old\n")
    gradebook.write_atomic(target, "new\n")
    assert target.read_text() == "new\n" and os.listdir(tmp_path) == ["grades.csv"]


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "grades.csv"
    gradebook.write_atomic(target, "old\n")

    def interrupted(_source, _target):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gradebook.write_atomic(target, "new\n")
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["grades.csv"]


def test_merge_refuses_a_directory_that_is_not_a_grading_output(tmp_path):
    with pytest.raises(ValueError, match="no results/"):
        gradebook.merge([tmp_path], tmp_path / "out")


def test_merge_refuses_conflicting_grades(tmp_path):
    for shard, mark in (("s1", "a"), ("s2", "b")):
        result = _result("ana", True)
        result = SubmissionResult(*[getattr(result, f) for f in (
            "student", "exercise", "notebook", "status", "reason", "questions", "tests",
            "notes")], fingerprint=mark * 64)
        gradebook.write_atomic(gradebook.result_path(tmp_path / shard, "ana", "ex.ipynb"),
                               result.to_json())
    with pytest.raises(ValueError, match="different inputs"):
        gradebook.merge([tmp_path / "s1", tmp_path / "s2"], tmp_path / "out")


def test_student_names_become_safe_file_names():
    assert gradebook.safe_name("../../etc/passwd") == "etc_passwd"
    assert gradebook.result_path(Path("o"), "a b", "x.ipynb") == Path("o/results/a_b/x.json")
