"""LMS downloads read as the LMS writes them: Canvas's flat files (user id, late flag, the latest
resubmission kept), Moodle's participant folders and files, the plain layouts, and the roster
that joins them; nothing left out goes unreported."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from labsupport.course import grading, layouts

CORPUS = Path(__file__).parent / "grading_corpus"
SOLUTION = CORPUS / "solution.ipynb"
NOTEBOOK = (CORPUS / "submissions" / "correct.ipynb").read_bytes()
#: Names as Canvas's "Download Submissions" writes them (sortable name without spaces, then
#: ``late`` when late, user id, attachment id, the student's file name, ``-N`` for a later copy).
CANVAS_FILES = ("smithbob_340934_208490284_solution.ipynb",
                "smithbob_late_340934_208490301_solution-1.ipynb",
                "wellslane_LATE_334244_394803489_lab2.ipynb",
                "zhaomin_351200_208490400_solution.ipynb")
MOODLE_FOLDERS = ("Ana Lopez_1001_assignsubmission_file_", "Bo Chen_1002_assignsubmission_file_")


def _write(path: Path, when: datetime | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(NOTEBOOK)
    if when is not None:
        os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def _canvas(folder: Path) -> Path:
    for name in CANVAS_FILES:
        _write(folder / name)
    (folder / "readme.txt").write_text("not a submission", encoding="utf-8")
    return folder


def test_canvas_keys_students_by_user_id_and_keeps_the_latest_copy(tmp_path):
    folder = _canvas(tmp_path / "canvas")
    download = layouts.read_download(folder)
    assert download.layout == "canvas"
    entries = {e.student: e for e in download.entries}
    assert sorted(entries) == ["334244", "340934", "351200"]
    bob = entries["340934"]
    assert (bob.name, bob.path.name, bob.late) == (
        "smithbob", "smithbob_late_340934_208490301_solution-1.ipynb", True)
    assert bob.note == ("earlier hand-ins not graded (a later one replaces them): "
                        "smithbob_340934_208490284_solution.ipynb")
    assert (entries["334244"].late, entries["351200"].late) == (True, False)
    assert download.skipped == ("readme.txt: not a Canvas submission file "
                                "(name[_late]_userid_attachmentid_file.ipynb)",)


def test_canvas_files_are_matched_to_exercises_by_the_students_own_file_name(tmp_path):
    folder = _canvas(tmp_path / "canvas")
    other = tmp_path / "lab2.ipynb"
    other.write_bytes(SOLUTION.read_bytes())
    scan = grading.scan_submissions([SOLUTION, other], folder, "canvas")
    paths = {(s.student, s.solution.name): s.path and s.path.name for s in scan.submissions}
    assert paths == {("334244", "lab2.ipynb"): "wellslane_LATE_334244_394803489_lab2.ipynb",
                     ("334244", "solution.ipynb"): None,
                     ("340934", "lab2.ipynb"): None,
                     ("340934", "solution.ipynb"): CANVAS_FILES[1],
                     ("351200", "lab2.ipynb"): None,
                     ("351200", "solution.ipynb"): "zhaomin_351200_208490400_solution.ipynb"}
    bob = [s for s in scan.submissions if s.student == "340934" and s.path][0]
    assert "smithbob_340934_208490284_solution.ipynb" in bob.note


def test_moodle_folders_and_flat_files_are_keyed_by_participant_id(tmp_path):
    folder = tmp_path / "moodle"
    handed = datetime(2026, 10, 5, 21, 30, tzinfo=timezone.utc)
    _write(folder / MOODLE_FOLDERS[0] / "solution.ipynb", handed)
    _write(folder / MOODLE_FOLDERS[1] / "work" / "solution.ipynb")
    _write(folder / "Cleo Diaz_1003_assignsubmission_file_solution.ipynb", handed)
    (folder / "Cleo Diaz_1003_assignsubmission_onlinetext_").mkdir()
    download = layouts.read_download(folder)
    assert download.layout == "moodle"
    entries = {e.student: e for e in download.entries}
    assert sorted(entries) == ["1001", "1002", "1003"]
    assert (entries["1001"].name, entries["1001"].folder) == ("Ana Lopez", MOODLE_FOLDERS[0])
    assert (entries["1003"].originals, entries["1003"].submitted) == (("solution.ipynb",), handed)
    assert download.skipped == ("Cleo Diaz_1003_assignsubmission_onlinetext_: a Moodle "
                                "onlinetext submission, not a file (not graded)",)
    scan = grading.scan_submissions([SOLUTION], folder, "auto")
    assert [(s.student, s.path.name) for s in scan.submissions] == [
        ("1001", "solution.ipynb"), ("1002", "solution.ipynb"),
        ("1003", "Cleo Diaz_1003_assignsubmission_file_solution.ipynb")]
    assert {h.student: h.submitted for h in grading.handins(scan)}["1001"] == handed


def test_plain_folders_are_detected_and_unchanged(tmp_path):
    _write(tmp_path / "subs" / "ana" / "lab.ipynb")
    _write(tmp_path / "subs" / "bo.ipynb")
    assert layouts.detect(tmp_path / "subs") == "folders"
    scan = grading.scan_submissions([SOLUTION], tmp_path / "subs", "auto")
    assert [(s.student, s.path.name) for s in scan.submissions] == [("ana", "lab.ipynb"),
                                                                    ("bo", "bo.ipynb")]


def test_notebooks_not_graded_beside_the_chosen_one_are_named(tmp_path):
    folder = tmp_path / "subs" / "ana"
    _write(folder / "solution.ipynb")
    _write(folder / "solution_final.ipynb")
    scan = grading.scan_submissions([SOLUTION], tmp_path / "subs")
    (only,) = scan.submissions
    assert only.path.name == "solution.ipynb"
    assert "not graded (another notebook was): solution_final.ipynb" in only.note
    assert "ana: not graded (another notebook was): solution_final.ipynb" in scan.skipped


def test_the_roster_adds_missing_rows_and_reports_strangers(tmp_path):
    folder = _canvas(tmp_path / "canvas")
    roster = tmp_path / "roster.csv"
    roster.write_text("lms_id,student_id,name,email,section,submitted\n"
                      "340934,s001,\"Smith, Bob\",bob@uni.example,A,\n"
                      "351200,s002,\"Zhao, Min\",min@uni.example,B,2026-10-06T08:00:00+02:00\n"
                      "399999,s003,\"Never, Came\",never@uni.example,A,\n", encoding="utf-8")
    listed = layouts.read_roster(roster)
    assert listed.by_lms_id()["351200"].submitted == datetime(2026, 10, 6, 6,
                                                               tzinfo=timezone.utc)
    scan = grading.scan_submissions([SOLUTION], folder, "canvas", listed)
    missing = [s for s in scan.submissions if s.student == "399999"]
    assert [(s.path, s.note) for s in missing] == [
        (None, "nothing handed in (on the roster, not in the download)")]
    assert ("wellslane_LATE_334244_394803489_lab2.ipynb: id 334244 is not on the roster "
            "(graded; add it to the roster to export its grade)") in scan.skipped


@pytest.mark.parametrize("text, message", [
    ("lms_id,name\n1,a\n", "no column student_id, email, section"),
    ("lms_id,student_id,name,email,section\n1,a,b,c,d\n1,a,b,c,d\n", "line 3: lms_id 1 appears"),
    ("lms_id,student_id,name,email,section,submitted\n1,a,b,c,d,2026-10-05 23:59\n",
     "has no time zone"),
    ("lms_id,student_id,name,email,section,submitted\n1,a,b,c,d,tomorrow\n", "not an ISO 8601"),
])
def test_a_bad_roster_is_refused_with_the_line(tmp_path, text, message):
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        layouts.read_roster(path)


def test_an_unknown_layout_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown layout 'blackboard'"):
        layouts.read_download(tmp_path, "blackboard")


def test_handins_survive_their_csv(tmp_path):
    when = datetime(2026, 10, 5, 21, 30, tzinfo=timezone.utc)
    items = [layouts.Handin("=1+1", "lab.ipynb", "Ana, Lopez", "Ana_1_x_", True, when),
             layouts.Handin("zoe\udce9", "lab.ipynb")]
    (tmp_path / layouts.HANDINS_FILE).write_text(layouts.handins_csv(items), encoding="utf-8")
    assert layouts.read_handins(tmp_path) == {(h.student, h.exercise): h for h in items}


def test_a_hidden_canvas_file_is_reported_not_dropped(tmp_path):
    folder = _canvas(tmp_path / "canvas")
    _write(folder / ".smithbob_340934_1_solution.ipynb")
    (folder / "__MACOSX").mkdir()
    skipped = layouts.read_download(folder).skipped
    assert (".smithbob_340934_1_solution.ipynb: hidden (its name starts with a dot); rename it "
            "to grade it") in skipped
    assert not [line for line in skipped if "MACOSX" in line]
