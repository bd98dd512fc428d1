"""LMS exports: Canvas's gradebook import and Moodle's grading worksheet in the exact columns of
the example files kept in tests/lms_formats/, feedback pages that can run nothing, and a
feedback zip named as Moodle's upload matches it."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from labsupport import cli
from labsupport.course import exports, gradebook, layouts, policy, reviewstore
from tests.test_policy import result, with_w1

FORMATS = Path(__file__).parent / "lms_formats"
COURSE = """
[exercises.lab]
due = 2026-10-05T23:59:00+02:00
canvas_column = "Lab 2: data drift (901234)"
moodle_maximum = 10

[late]
percent_per_day = 10

[[overrides]]
student = "1001"
exercise = "lab"
question = "q2"
points = 4
reason = "hand-checked"
by = "jdoe"
"""
ROSTER = ("lms_id,student_id,name,email,section\n"
          "1001,s001,Ana Lopez,ana@uni.example,A\n"
          "1002,s002,Bo Chen,bo@uni.example,B\n"
          "1003,s003,Cleo Diaz,cleo@uni.example,A\n")
LATE = datetime(2026, 10, 6, 9, 30, tzinfo=timezone.utc)


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture(name="grading")
def _grading(tmp_path) -> Path:
    folder = tmp_path / "grading"
    hostile = result("1002", 1, 0)
    hostile = replace(hostile, tests=(replace(hostile.tests[0], status="failed",
                                              message="<script>alert(1)</script>"),
                                      hostile.tests[1]))
    for item in (result("1001", 2, 1), hostile, result("1003", 0, 0, "missing"),
                 result("9999", 2, 4)):
        gradebook.write_atomic(gradebook.result_path(folder, item.student, item.exercise),
                               item.to_json())
    handins = [layouts.Handin("1001", "lab.ipynb", "Ana Lopez",
                              "Ana Lopez_1001_assignsubmission_file_", False, LATE),
               layouts.Handin("1002", "lab.ipynb", "Bo Chen", "", False, None)]
    (folder / layouts.HANDINS_FILE).write_text(layouts.handins_csv(handins), encoding="utf-8")
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    (tmp_path / "course.toml").write_text(COURSE, encoding="utf-8")
    return folder


def _export(kind: str, grading: Path) -> tuple[Path, exports.Export]:
    out = grading.parent / kind
    done = exports.write_export(kind, grading, out, policy.parse_course(COURSE),
                                layouts.read_roster(grading.parent / "roster.csv"))
    return out, done


def test_the_canvas_import_has_canvas_columns_and_final_grades(grading):
    out, done = _export("canvas", grading)
    example = _rows((FORMATS / "canvas-gradebook-export.csv").read_text(encoding="utf-8"))
    rows = _rows((out / "canvas-grades.csv").read_text(encoding="utf-8"))
    assert rows[0] == example[0][:6] and rows[1][:5] == example[1][:5]
    assert rows[1][5] == "6.00"
    # Ana: 2 + 1 raw, q2 overridden to 4, then 1 day late (10 %): 5.4; Cleo handed in nothing.
    assert rows[2:] == [["Ana Lopez", "1001", "s001", "", "A", "5.40"],
                        ["Bo Chen", "1002", "s002", "", "B", "1.00"],
                        ["Cleo Diaz", "1003", "s003", "", "A", "0.00"]]
    assert done.left_out == ("9999",)


def test_the_moodle_worksheet_has_moodles_columns_scaled_to_its_maximum(grading):
    out, _ = _export("moodle", grading)
    example = _rows((FORMATS / "moodle-grading-worksheet.csv").read_text(encoding="utf-8"))
    rows = _rows((out / "lab-grading-worksheet.csv").read_text(encoding="utf-8"))
    assert rows[0] == example[0]
    assert rows[1] == ["Participant 1001", "Ana Lopez", "ana@uni.example",
                       "Submitted for grading", "9.00", "10.00", "Yes",
                       "Tuesday, 6 October 2026, 9:30 AM", "-",
                       "q1: 2 / 2; q2: 4 / 4; late (1 day(s)): -0.6. Details in feedback.html."]
    assert rows[3][:5] == ["Participant 1003", "Cleo Diaz", "cleo@uni.example",
                           "No submission", "0.00"]
    assert example[1][7] == "Monday, 5 October 2026, 9:30 PM"  # the same way of writing times


def test_the_moodle_feedback_zip_is_named_as_moodle_matches_it(grading):
    out, _ = _export("moodle", grading)
    with zipfile.ZipFile(out / "lab-feedback.zip") as archive:
        names = archive.namelist()
        page = archive.read(names[1]).decode("utf-8")
    assert names == ["Ana Lopez_1001_assignsubmission_file_/feedback.html",
                     "Bo Chen_1002_assignsubmission_file_/feedback.html",
                     "Cleo Diaz_1003_assignsubmission_file_/feedback.html"]
    for name in names:  # what Moodle's importer reads: the participant id after the first _
        assert name.split("_", 4)[1] in {"1001", "1002", "1003"}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    first = (out / "lab-feedback.zip").read_bytes()
    _export("moodle", grading)
    assert (out / "lab-feedback.zip").read_bytes() == first


def test_the_feedback_page_can_run_nothing(grading):
    out, _ = _export("canvas", grading)
    pages = {p.name: p.read_text(encoding="utf-8") for p in (out / "feedback").glob("*.html")}
    assert len(pages) == 3
    for page in pages.values():
        lowered = page.lower()
        assert "<script" not in lowered and " on" not in lowered.split("<body>")[1].replace(
            " one", "")
        assert "default-src 'none'" in page
    bo = pages[f"{gradebook.safe_name('1002')}.html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in bo


@pytest.mark.parametrize("name, handin, folder", [
    ("Ana_Lopez/x", None, "Ana Lopez x_7_assignsubmission_file_"),
    ("", None, "student_7_assignsubmission_file_"),
    ("Ana", layouts.Handin("7", "lab.ipynb", folder="Ana L_7_assignsubmission_file_"),
     "Ana L_7_assignsubmission_file_"),
])
def test_a_moodle_folder_name_keeps_the_participant_id_where_moodle_reads_it(name, handin,
                                                                             folder):
    assert exports.moodle_folder("7", name, handin) == folder


def test_the_export_command_writes_and_refuses(grading, capsys):
    root = grading.parent
    assert cli.main(["export", "canvas", str(root / "cli"), "--grades", str(grading),
                     "--course", str(root / "course.toml"),
                     "--roster", str(root / "roster.csv")]) == 0
    assert "left out: 9999 is graded but not on the roster" in capsys.readouterr().err
    assert cli.main(["export", "moodle", str(root / "x"), "--grades", str(root / "none")]) == 1
    assert "holds no grading results" in capsys.readouterr().err


def test_written_scores_reach_both_exports_and_pending_leaves_the_grade_empty(grading, capsys):
    # The exports left written questions out: Canvas's points possible and every grade lacked
    # them, and a feedback page said "pending review" for an answer a reviewer had scored.
    for student in ("1001", "1002", "1003", "9999"):
        path = gradebook.result_path(grading, student, "lab.ipynb")
        stored = gradebook.SubmissionResult.from_json(path.read_text(encoding="utf-8"))
        path.write_text(with_w1(stored).to_json(), encoding="utf-8")
    store = reviewstore.ReviewStore(grading / reviewstore.DATABASE)
    store.load_answers([("lab.ipynb", "w1", "1001", "Because."),
                        ("lab.ipynb", "w1", "1002", "Because.")])
    store.save(("lab.ipynb", "w1", "1001"), 2, [], "Clear.", "ta1", 0)
    out, done = _export("canvas", grading)
    rows = _rows((out / "canvas-grades.csv").read_text(encoding="utf-8"))
    # Ana: 2 + 4 (override) + 2 written, 1 day late: 7.2; Bo pending: empty, not 1 or 0.
    assert [row[5] for row in rows[1:]] == ["8.00", "7.20", "", "0.00"]
    assert done.pending == (("1002", "lab:w1"),)
    ana = (out / "feedback" / f"{gradebook.safe_name('1001')}.html").read_text(encoding="utf-8")
    assert "<h2>lab.ipynb: 7.2 / 8</h2>" in ana and "w1 (written): 2 / 2" in ana
    assert "Clear." in ana
    out, _ = _export("moodle", grading)
    rows = _rows((out / "lab-grading-worksheet.csv").read_text(encoding="utf-8"))
    assert [row[4] for row in rows[1:]] == ["9.00", "", "0.00"]
    assert rows[1][9] == ("q1: 2 / 2; q2: 4 / 4; w1: 2 / 2; late (1 day(s)): -0.8. Details in "
                          "feedback.html.")
    assert "w1: pending review / 2" in rows[2][9]
    root = grading.parent
    assert cli.main(["export", "canvas", str(root / "cli"), "--grades", str(grading),
                     "--course", str(root / "course.toml"),
                     "--roster", str(root / "roster.csv")]) == 0
    assert ("pending: 1 student(s) have written answers nobody has scored yet, so their grade "
            "is left empty (not 0): 1002 (lab:w1)") in capsys.readouterr().err


def test_a_long_list_of_pending_students_is_cut_on_stderr(tmp_path, capsys):
    # With 300 students, one line naming every pending one is unreadable.
    grading = tmp_path / "grading"
    for n in range(12):
        item = with_w1(result(f"s{n:02d}", 2, 4))
        gradebook.write_atomic(gradebook.result_path(grading, item.student, item.exercise),
                               item.to_json())
    assert cli.main(["export", "canvas", str(tmp_path / "out"), "--grades", str(grading)]) == 0
    err = capsys.readouterr().err
    assert "pending: 12 student(s)" in err and "s09 (lab:w1); and 2 more" in err
    assert "s10" not in err


def test_merged_shards_keep_their_handins_and_the_policy(grading, capsys):
    root = grading.parent
    shards = [root / "shard1", root / "shard2"]
    for shard, students in zip(shards, (("1001", "1002"), ("1003", "9999"))):
        for student in students:
            source = gradebook.result_path(grading, student, "lab.ipynb")
            target = gradebook.result_path(shard, student, "lab.ipynb")
            target.parent.mkdir(parents=True)
            target.write_bytes(source.read_bytes())
        handins = [h for h in layouts.read_handins(grading).values() if h.student in students]
        (shard / layouts.HANDINS_FILE).write_text(layouts.handins_csv(handins),
                                                  encoding="utf-8")
    merged = root / "merged"
    assert cli.main(["grade", "merge", *map(str, shards), "-o", str(merged),
                     "--course", str(root / "course.toml")]) == 0
    capsys.readouterr()
    assert layouts.read_handins(merged) == layouts.read_handins(grading)
    assert "1001,lab.ipynb,q2,override,1,4,hand-checked,jdoe" in (
        merged / "audit.csv").read_text(encoding="utf-8")
