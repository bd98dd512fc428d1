"""The gradebook: stored results, CSV reports, feedback text and atomic writes, and what a
crafty student can put into them (names, messages, sizes)."""

from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
from dataclasses import replace
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


#: Ids that break naive file naming, CSVs or terminals: NFC and NFD spellings, look-alikes,
#: a non-Latin script, leading dots and dashes, an undecodable byte (as os.listdir gives it),
#: a lone surrogate, formulas, terminal escapes, backslashes, an over-long name.
HOSTILE_IDS = ["Zoë", unicodedata.normalize("NFD", "Zoë"), "Zoé", "Zo", "a b", "a_b", "a-b",
               "王小明", "王小红", "Алёна", "-rf", ".hidden", "..", "caf\udce9", "\ud800",
               '=HYPERLINK("evil.example","x")', "+1", "@SUM(A1)", "'=x", "'tis", "\tx",
               "\x1b[31mred\x1b]0;title\x07", "back\\slash", "caf\\xe9", "x" * 300,
               "Ana", "ana", "\u202eevil", "line\nbreak", "a/b", "ana.ipynb"]


def test_student_names_become_unique_safe_file_names():
    names = [gradebook.safe_name(s) for s in HOSTILE_IDS]
    assert len(set(names)) == len(HOSTILE_IDS)
    assert len({n.lower() for n in names}) == len(HOSTILE_IDS)  # case-insensitive disks too
    for name in names:
        assert not name.startswith((".", "-")) and "/" not in name and "\\" not in name
        assert len(name.encode("utf-8")) <= 200 and name == name.strip()
        name.encode("utf-8")  # no surrogates left: every file system takes it
    assert gradebook.safe_name("../../etc/passwd").startswith("etc_passwd-")
    assert gradebook.safe_name("王小明").startswith("王小明-")
    assert gradebook.result_path(Path("o"), "a b", "x.ipynb").parent.parent == Path("o/results")


def test_file_names_are_stable_across_runs_and_versions():
    # The hash suffix is part of the stored layout: a resumed run must find the old files.
    assert gradebook.safe_name("a b") == "a_b-c8687a08aa5d"


@pytest.mark.parametrize("student", HOSTILE_IDS)
def test_student_ids_survive_the_csv_exactly(student):
    text = gradebook.grades_csv([_result(student, True)])
    rows = list(csv.reader(io.StringIO(text)))
    assert gradebook.student_from_csv(rows[1][0]) == student
    long_rows = list(csv.reader(io.StringIO(gradebook.results_long_csv([_result(student,
                                                                                True)]))))
    assert {gradebook.student_from_csv(row[0]) for row in long_rows[1:]} == {student}
    text.encode("utf-8")  # valid UTF-8, whatever the name


def test_printable_ids_are_written_as_they_are():
    for student in ("Zoë", "王小明", "a b", "'tis", ".hidden"):
        assert gradebook.csv_student(student) == student
    assert gradebook.csv_student("caf\udce9") == "caf\\xe9"
    assert gradebook.csv_student("\x1b[31m") == "\\u001b[31m"


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1+1", "-x", "@SUM(A1)", "\tx", "\rx", "'=1",
                                  "''-1", "-1e3", "-1,5"])
def test_cells_a_spreadsheet_would_run_are_neutralised(cell):
    assert gradebook.csv_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["ana", "'tis", "1.5", "", " =1", "-1", "-0.5"])
def test_other_cells_are_left_alone(cell):
    assert gradebook.csv_cell(cell) == cell
    assert gradebook.student_from_csv(gradebook.csv_cell(cell)) == cell


def _hostile_result(message: str, student: str = "mallory") -> SubmissionResult:
    result = _result(student, False)
    tests = (replace(result.tests[0], message=message), result.tests[1])
    return replace(result, tests=tests, notes=(message,), status="hung", reason=message)


FORGED = ("oops\n## ex.ipynb: 10 / 10\n<img src=x onerror=alert(1)>\n```\n"
          "# Feedback for someone else\n````\n## q1: 2 / 2\n"
          "\x1b[2J\x1b]0;owned\x07 [link](javascript:x) \ud800")


def markup_lines(markdown: str) -> list[str]:
    """The lines a Markdown renderer reads as markup: those outside fenced blocks (closed, as
    CommonMark says, by a run of backticks at least as long as the opening one)."""
    lines, fence = [], None
    for line in markdown.splitlines():
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence = re.match("`+", stripped).group()
        elif fence is not None and re.fullmatch(f"{fence}`*", stripped):
            fence = None
        elif fence is None:
            lines.append(line)
    return lines


def test_feedback_cannot_be_forged_by_an_error_message():
    text = gradebook.feedback_markdown("<b>mallory</b> ## 10 / 10", [_hostile_result(FORGED)])
    outside = markup_lines(text)
    assert [line for line in outside if line.startswith("#")][0] == \
        "# Feedback for \\<b\\>mallory\\</b\\> \\#\\# 10 / 10"
    assert not any("<img" in line or "<b>" in line for line in outside)
    assert "\x1b" not in text and "\x07" not in text and "\\u001b[2J" in text
    text.encode("utf-8")
    # The message is shown whole, inside a fence longer than its longest run of backticks.
    assert "  <img src=x onerror=alert(1)>" in text and "  `````text" in text


def test_feedback_headings_are_the_graders_only():
    text = gradebook.feedback_markdown("mallory", [_hostile_result(FORGED)])
    headings = [line for line in markup_lines(text) if line.startswith("#")]
    assert headings == ["# Feedback for mallory", "## ex.ipynb: 0 / 2", "### q1: 0 / 2",
                        "### Notes from running your notebook"]


def test_reports_hold_no_terminal_escapes_and_no_surrogates():
    results = [_hostile_result(FORGED, student) for student in HOSTILE_IDS]
    for text in (gradebook.grades_csv(results), gradebook.results_long_csv(results)):
        text.encode("utf-8")
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", text)
        assert all(not cell.startswith(("=", "+", "-", "@"))
                   for row in csv.reader(io.StringIO(text)) for cell in row)


def test_long_messages_are_cut_with_a_note():
    answer = "x" * 8_000_000
    result = _hostile_result(f"square(3) should be 9, got {answer!r}")
    long_csv = gradebook.results_long_csv([result])
    rows = list(csv.reader(io.StringIO(long_csv)))  # python's default field limit holds
    assert len(rows[1][7]) < gradebook.CSV_MESSAGE_CHARS + 100
    assert rows[1][7].endswith("[... cut: 7,998,029 more characters]")
    feedback = gradebook.feedback_markdown("mallory", [result])
    assert len(feedback) < 4 * gradebook.FEEDBACK_MESSAGE_CHARS
    assert "more characters]" in feedback


def test_a_result_with_any_text_survives_its_stored_form(tmp_path):
    result = _hostile_result(FORGED, "caf\udce9")
    path = gradebook.result_path(tmp_path, result.student, result.exercise)
    gradebook.write_atomic(path, result.to_json())
    assert gradebook.read_results(tmp_path) == [result]
    assert path.read_bytes().isascii()


def test_write_reports_gives_every_student_their_own_feedback_file(tmp_path):
    for student in HOSTILE_IDS:
        result = _result(student, True)
        gradebook.write_atomic(gradebook.result_path(tmp_path, student, "ex.ipynb"),
                               result.to_json())
    gradebook.write_reports(tmp_path)
    files = sorted((tmp_path / "feedback").iterdir())
    assert len(files) == len(HOSTILE_IDS)
    assert {f.read_text(encoding="utf-8").splitlines()[0] for f in files} == {
        f"# Feedback for {gradebook.markdown_text(s)}" for s in HOSTILE_IDS}
    assert len(_grades_rows(tmp_path)) == len(HOSTILE_IDS)


def _grades_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "grades.csv", encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def test_an_unreadable_result_file_is_named():
    with pytest.raises(ValueError, match="not a grading result"):
        SubmissionResult.from_json('{"format": 1}')


def test_read_results_names_the_file_it_cannot_read(tmp_path):
    (tmp_path / "results" / "x").mkdir(parents=True)
    (tmp_path / "results" / "x" / "ex.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="ex.json"):
        gradebook.read_results(tmp_path)


def _regraded(old: SubmissionResult, **moved: str) -> SubmissionResult:
    inputs = tuple((what, moved.get(what, digest)) for what, digest in old.inputs)
    return replace(old, inputs=inputs)


_INPUTS = (("notebook", "n1"), ("solution", "s1"), ("limits", "l1"))


@pytest.mark.parametrize("old, moved, why", [
    (replace(_result("ana", False), inputs=_INPUTS), {"notebook": "n2"}, "notebook changed"),
    (replace(_result("ana", False), inputs=_INPUTS), {"solution": "s2", "limits": "l2"},
     "solution changed, limits changed"),
    (replace(_result("ana", False), inputs=_INPUTS), {}, "regraded with the same inputs"),
    (replace(_result("ana", False), inputs=_INPUTS, status="grader-error"), {},
     "regraded after a grader fault (grader-error)"),
    (_result("ana", False), {}, "regraded (the earlier result did not record its inputs)"),
])
def test_a_regrade_says_which_input_changed(old, moved, why):
    new = _regraded(replace(old, inputs=_INPUTS), **moved)
    assert gradebook.changed_inputs(old, new).startswith(why)


def test_changes_list_the_questions_that_moved_and_else_the_status():
    old = replace(_result("ana", False), inputs=_INPUTS)
    new = _regraded(replace(_result("ana", True), inputs=_INPUTS), notebook="n2")
    assert gradebook.changes(old, new) == [
        gradebook.Change("ana", "ex.ipynb", "q1", "0", "1", "notebook changed")]
    assert gradebook.changes(old, replace(old, status="cell-timeout")) == [
        gradebook.Change("ana", "ex.ipynb", "status", "ok", "cell-timeout",
                         "regraded with the same inputs (--force)")]
    assert gradebook.changes(old, old) == []
    assert gradebook.changes_csv(gradebook.changes(old, new)).splitlines() == [
        "student,exercise,question,before,after,why", "ana,ex.ipynb,q1,0,1,notebook changed"]


def test_every_earlier_result_is_kept_in_order(tmp_path):
    first, second = _result("ana", False), _result("ana", True)
    assert gradebook.archive(tmp_path, first).name == "ex.1.json"
    assert gradebook.archive(tmp_path, second).name == "ex.2.json"
    assert gradebook.history(tmp_path, "ana", "ex.ipynb") == [first, second]
    assert gradebook.read_results(tmp_path) == []  # the history is not a current result


def test_a_result_stored_without_inputs_is_still_read():
    text = _result("ana", True).to_json().replace('"inputs": [],\n', "")
    assert '"inputs"' not in text
    assert not SubmissionResult.from_json(text).inputs
