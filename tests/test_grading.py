"""Batch grading: the hostile corpus gets exactly its expected scores; runs are deterministic,
resumable, shardable and written atomically; names, links and odd entries are handled and
reported; the grader's own failures are retried, the students' are not."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from labsupport import cli
from labsupport.course import gradebook, grading
from labsupport.course.sandbox import KernelGone, Limits
from tests import sandbox_support
from tests.sandbox_support import require_bubblewrap
from tests.test_gradebook import markup_lines

#: The corpus is graded once for the module, which takes minutes: dealt first (conftest.py).
XDIST_FIRST = True
CORPUS = Path(__file__).parent / "grading_corpus"
SOLUTION = CORPUS / "solution.ipynb"
SUBMISSIONS = CORPUS / "submissions"
with open(CORPUS / "expected.csv", encoding="utf-8", newline="") as _table:
    # Ids are written as the grader writes them (gradebook.csv_student, gradebook.csv_cell).
    EXPECTED = {gradebook.student_from_csv(row["student"]): row for row in csv.DictReader(_table)}
LIMITS = Limits(cell_seconds=4, submission_seconds=60, memory_bytes=1024**3, processes=64,
                interrupt_grace_seconds=2)
FAST = ("correct", "invalid_json", "patch_checker")
REPORTS = ("grades.csv", "results_long.csv")
QUICK_FLAGS = ["--cell-timeout", "4", "--timeout", "60", "--memory-mb", "1024",
               "--processes", "64", "--workers", "1"]
#: What the run-time entries of the corpus report on stderr (the start of each line).
SKIP_REPORTS = (".hidden_student:", "notes.txt:", "link_to_root:", "links_solution/a.ipynb:",
                "links_classmate/a.ipynb:", "links_classmate/up:", "links_classmate/self:",
                "empty_folder:")


@pytest.fixture(autouse=True)
def _bubblewrap():
    require_bubblewrap()


def _grades(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", encoding="utf-8", newline="") as stream:
        return {gradebook.student_from_csv(row["student"]): row
                for row in csv.DictReader(stream)}


def _snapshot(out: Path) -> dict[str, bytes]:
    files = [out / name for name in REPORTS] + sorted((out / "feedback").glob("*.md"))
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


def _subset(tmp_path: Path, names: tuple[str, ...] = FAST) -> Path:
    folder = tmp_path / "subset"
    folder.mkdir()
    for name in names:
        shutil.copy(SUBMISSIONS / f"{name}.ipynb", folder)
    return folder


def build_corpus(root: Path) -> Path:
    """A copy of the corpus plus the entries git cannot hold (portably): a name that is not
    UTF-8, NFC and NFD spellings, names with quotes, HTML and escapes, symbolic links."""
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus, symlinks=True)
    submissions = corpus / "submissions"

    def folder(name: str | bytes, notebook: str = "correct", file: str = "homework.ipynb"):
        path = submissions / os.fsdecode(name)
        path.mkdir()
        shutil.copy(SUBMISSIONS / f"{notebook}.ipynb", path / file)
        return path

    folder(b"caf\xe9")
    folder(unicodedata.normalize("NFC", "Zoë"))
    folder(unicodedata.normalize("NFD", "Zoë"), "stub")
    folder('=HYPERLINK("evil.example","x")')
    folder("<img src=x onerror=alert(1)>\x1b[31mred")
    (folder("links_solution", "stub", "b.ipynb") / "a.ipynb").symlink_to(
        corpus / "solution.ipynb")
    classmate = folder("links_classmate", "stub", "b.ipynb")
    (classmate / "a.ipynb").symlink_to("../correct.ipynb")
    (classmate / "up").symlink_to("..")
    (classmate / "self").symlink_to(".")
    (submissions / "link_to_root").symlink_to("/")
    (submissions / "empty_folder").mkdir()
    return corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The corpus as a class hands it in, run-time entries included."""
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def corpus_run(corpus, tmp_path_factory, monkeypatch_module):
    """The whole corpus graded once, by a grader whose environment looks like CI."""
    # A grader that looks like CI: the kernels must not see any of it.
    for name in ("CI", "GITHUB_ACTIONS", "LABSUPPORT_GRADING", "NBGRADER_EXECUTION"):
        monkeypatch_module.setenv(name, "true")
    out = tmp_path_factory.mktemp("graded")
    # loopback_listener.ipynb looks for this listener's answers; it must never reach it.
    with sandbox_support.loopback_listener(b"LABSUPPORT-CORPUS-ANSWERS\n"):
        summary = grading.grade_batch([corpus / "solution.ipynb"], corpus / "submissions", out,
                                      LIMITS, workers=2, progress=False)
    return out, summary


@pytest.fixture(scope="module")
def monkeypatch_module():
    """A monkeypatch that lasts for the module."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_the_corpus_is_big_enough_and_has_no_python_files(corpus):
    assert len(EXPECTED) >= 15
    assert not list(CORPUS.rglob("*.py"))
    found = grading.find_submissions([corpus / "solution.ipynb"], corpus / "submissions")
    assert [s.student for s in found] == sorted(EXPECTED)


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_corpus_submission_gets_its_exact_score(corpus_run, student):
    out, summary = corpus_run
    assert summary.failed == ()
    row = _grades(out)[student]
    assert (row["total"], row["status"]) == (EXPECTED[student]["score"],
                                             EXPECTED[student]["status"])
    assert row["possible"] == "5"


def test_a_dead_or_hung_kernel_fails_every_test_with_the_reason(corpus_run):
    out, _ = corpus_run
    results = {r.student: r for r in gradebook.read_results(out)}
    for student, words in (("exit_after_patch", "exited with status 0"),
                           ("ignores_interrupt", "did not stop when interrupted")):
        assert all(t.status == "error" and words in t.message for t in results[student].tests)
        assert words in results[student].reason


def test_nothing_was_written_outside_the_sandbox(corpus_run):
    out, _ = corpus_run
    assert not Path("/tmp/labsupport-corpus-was-here").exists()
    assert all(gradebook.SubmissionResult.from_json(p.read_text(encoding="utf-8"))
               for p in (out / "results").glob("*/*.json"))
    assert "write_output_dir,5" not in (out / "grades.csv").read_text(encoding="utf-8")


def test_what_a_submission_leaves_behind_does_not_outlive_it(corpus_run):
    # leave_leftovers.ipynb wrote into /run/lock and /dev/shm and made a SysV segment.
    assert corpus_run[1].failed == ()
    assert not Path("/run/lock/labsupport-corpus-leftover").exists()
    assert not Path("/dev/shm/labsupport-corpus-leftover").exists()
    assert not sandbox_support.sysv_segment_exists(0x4C42434F)


def test_feedback_shows_public_messages_and_hides_hidden_test_details(corpus_run):
    out, _ = corpus_run
    text = gradebook.feedback_path(out, "renamed_function").read_text(encoding="utf-8")
    assert "the notebook defines no 'square'" in text
    assert "square() must work element-wise on NumPy arrays." in text
    assert "np.testing.assert_array_equal" not in text and "np.arange(4)" not in text
    with open(out / "results_long.csv", encoding="utf-8", newline="") as stream:
        long_rows = list(csv.reader(stream))
    assert long_rows[0] == "student,question,test,points,max,status,seconds,message".split(",")
    assert len(long_rows) == 1 + 6 * len(EXPECTED)


def test_two_runs_give_byte_identical_reports(tmp_path):
    folder = _subset(tmp_path)
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=2, progress=False)
    assert _snapshot(first) == _snapshot(second)
    assert _grades(first)["patch_checker"]["total"] == EXPECTED["patch_checker"]["score"]


def test_a_second_run_skips_graded_submissions_and_force_regrades(tmp_path):
    folder = _subset(tmp_path, ("correct", "stub"))
    out = tmp_path / "out"
    first = grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=1, progress=False)
    again = grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=1, progress=False)
    forced = grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=1, force=True,
                                 progress=False)
    assert (first.graded, first.skipped) == (2, 0)
    assert (again.graded, again.skipped) == (0, 2)
    assert (forced.graded, forced.skipped) == (2, 0)
    shutil.copy(SUBMISSIONS / "renamed_function.ipynb", folder / "stub.ipynb")
    changed = grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=1, progress=False)
    assert (changed.graded, changed.skipped) == (1, 1)
    assert _grades(out)["stub"]["total"] == "3"


def test_shards_cover_the_class_and_merge_reproduces_the_full_run(tmp_path):
    folder = _subset(tmp_path)
    full = tmp_path / "full"
    grading.grade_batch([SOLUTION], folder, full, LIMITS, workers=2, progress=False)
    shards = [tmp_path / f"shard{i}" for i in (1, 2)]
    for index, shard in enumerate(shards, start=1):
        assert cli.main(["grade", str(SOLUTION), str(folder), "-o", str(shard), "--shard",
                         f"{index}/2", "--cell-timeout", "2", "--timeout", "30",
                         "--memory-mb", "1024", "--processes", "64", "--workers", "1"]) == 0
    students = [set(_grades(s)) for s in shards]
    assert students[0].isdisjoint(students[1]) and students[0] | students[1] == set(FAST)
    merged = tmp_path / "merged"
    assert cli.main(["grade", "merge", *map(str, shards), "-o", str(merged)]) == 0
    assert _snapshot(merged) == _snapshot(full)


@pytest.mark.parametrize("index, count, expected", [
    (1, 1, ["a", "b", "c", "d", "e"]), (1, 2, ["a", "c", "e"]), (2, 2, ["b", "d"]),
    (3, 3, ["c"]),
])
def test_shards_deal_students_round_robin(index, count, expected):
    submissions = [grading.Submission(name, SOLUTION, None) for name in "abcde"]
    assert [s.student for s in grading.shard(submissions, index, count)] == expected


def test_a_bad_shard_is_refused():
    with pytest.raises(ValueError, match="shard 3/2"):
        grading.shard([], 3, 2)


def test_folders_per_student_and_several_exercises_are_matched_by_name(tmp_path):
    other = tmp_path / "02_other.ipynb"
    shutil.copy(SOLUTION, other)
    for student, names in (("ana", ["solution.ipynb", "02_other.ipynb"]), ("bo", ["x.ipynb"])):
        folder = tmp_path / "subs" / student / "assignment"
        folder.mkdir(parents=True)
        for name in names:
            shutil.copy(SUBMISSIONS / "correct.ipynb", folder / name)
    found = grading.find_submissions([SOLUTION, other], tmp_path / "subs")
    assert [(s.student, s.solution.name, s.path and s.path.name) for s in found] == [
        ("ana", "02_other.ipynb", "02_other.ipynb"), ("ana", "solution.ipynb", "solution.ipynb"),
        ("bo", "02_other.ipynb", None), ("bo", "solution.ipynb", None)]


def test_a_missing_notebook_is_a_graded_row(tmp_path):
    (tmp_path / "subs" / "cleo").mkdir(parents=True)
    out = tmp_path / "out"
    grading.grade_batch([SOLUTION], tmp_path / "subs", out, LIMITS, workers=1, progress=False)
    assert (_grades(out)["cleo"]["total"], _grades(out)["cleo"]["status"]) == ("0", "missing")


def test_an_interrupted_report_write_keeps_the_old_gradebook(tmp_path, monkeypatch):
    folder = _subset(tmp_path, ("correct",))
    out = tmp_path / "out"
    grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=1, progress=False)
    before = (out / "grades.csv").read_bytes()
    shutil.copy(SUBMISSIONS / "stub.ipynb", folder)

    def interrupted(_source, _target):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=1, progress=False)
    assert (out / "grades.csv").read_bytes() == before
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_the_cli_refuses_a_missing_submissions_directory(tmp_path, capsys):
    assert cli.main(["grade", str(SOLUTION), str(tmp_path / "nope"), "-o",
                     str(tmp_path / "out")]) == 1
    assert "not a directory" in capsys.readouterr().err


# --- names, links and odd entries ----------------------------------------------------------------


def test_every_entry_left_out_is_reported(corpus_run):
    _, summary = corpus_run
    for start in SKIP_REPORTS:
        assert [line for line in summary.entries_skipped if line.startswith(start)], start
    assert not any(line.startswith(("correct", "a b", "a_b")) for line in
                   summary.entries_skipped)


def test_the_cli_reports_skipped_entries_on_stderr(corpus, tmp_path, capsys):
    folder = tmp_path / "subs"
    folder.mkdir()
    for name in (".hidden_student", "notes.txt"):
        source = corpus / "submissions" / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / name)
    (folder / "link_to_root").symlink_to("/")
    assert cli.main(["grade", str(SOLUTION), str(folder), "-o", str(tmp_path / "out"),
                     *QUICK_FLAGS]) == 0
    err = capsys.readouterr().err
    for start in (".hidden_student:", "notes.txt:", "link_to_root:"):
        assert f"skipped: {start}" in err
    assert set(_grades(tmp_path / "out")) == {".hidden_student", "link_to_root"}


def test_every_student_gets_one_safe_feedback_file(corpus_run):
    out, _ = corpus_run
    files = sorted(p.name for p in (out / "feedback").iterdir())
    assert files == sorted(f"{gradebook.safe_name(s)}.md" for s in EXPECTED)
    assert not any(name.startswith((".", "-")) for name in files)
    for student in EXPECTED:
        first = gradebook.feedback_path(out, student).read_text(encoding="utf-8").splitlines()[0]
        assert first == f"# Feedback for {gradebook.markdown_text(student)}"


def _cells(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as stream:  # strict UTF-8, default field limit
        return [cell for row in csv.reader(stream) for cell in row]


def test_the_reports_are_safe_to_open(corpus_run):
    out, _ = corpus_run
    for name in REPORTS:
        cells = _cells(out / name)
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
        assert max(len(c) for c in cells) < gradebook.CSV_MESSAGE_CHARS + 100
        assert not [c for c in cells if re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", c)]
    for path in [*(out / "feedback").iterdir(), *(out / "results").glob("*/*.json")]:
        text = path.read_text(encoding="utf-8")
        assert "\x1b" not in text and "\x07" not in text
        assert len(text) < 100_000  # the 8 MB answer is cut everywhere


def test_an_error_message_cannot_forge_the_feedback(corpus_run):
    out, _ = corpus_run
    for student in ("forged_feedback", "<img src=x onerror=alert(1)>\x1b[31mred"):
        markup = markup_lines(gradebook.feedback_path(out, student).read_text("utf-8"))
        assert [line for line in markup if line.startswith("#")][1:] == [
            "## solution.ipynb: 3 / 5" if student == "forged_feedback" else
            "## solution.ipynb: 5 / 5", "### q1: 2 / 2",
            "### q2: 0 / 2" if student == "forged_feedback" else "### q2: 2 / 2",
            "### q3: 1 / 1", *(["### Notes from running your notebook"]
                               if student == "forged_feedback" else [])]
        assert not [line for line in markup if re.search(r"(?<!\\)<[a-z]", line)]


def test_names_and_messages_that_cannot_be_encoded_are_kept(corpus_run):
    out, _ = corpus_run
    results = {r.student: r for r in gradebook.read_results(out)}
    assert "caf\udce9" in results and results["caf\udce9"].score == 5
    assert any("RuntimeError: \ud800 caf\udce9" in t.message
               for t in results["lone_surrogate"].tests)
    assert "caf\\xe9" in (out / "grades.csv").read_text(encoding="utf-8")
    assert "RuntimeError: \\ud800 caf\\xe9" in (out / "results_long.csv").read_text("utf-8")


def test_symbolic_links_are_never_followed(corpus_run):
    out, _ = corpus_run
    results = {r.student: r for r in gradebook.read_results(out)}
    for student in ("links_solution", "links_classmate"):
        assert results[student].notebook == "b.ipynb"
        assert "a.ipynb: a symbolic link" in results[student].notes[0]
    assert "symbolic link" in results["link_to_root"].reason


def test_the_8_mb_answer_is_cut_with_a_note(corpus_run):
    out, _ = corpus_run
    with open(out / "results_long.csv", encoding="utf-8", newline="") as stream:
        rows = [row for row in csv.reader(stream)
                if row[0] == "huge_answer" and row[2] == "test_square_of_three"]
    assert rows[0][7].startswith("square(3) should be 9, got 'xxx")
    assert re.search(r"\[\.\.\. cut: [\d,]+ more characters\]$", rows[0][7])


def _tree(root: Path, depth: int) -> Path:
    for level in range(depth):
        root = root / f"d{level}"
    root.mkdir(parents=True)
    shutil.copy(SUBMISSIONS / "correct.ipynb", root)
    return root


def test_a_link_to_the_root_or_a_loop_is_never_walked(tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    _tree(subs / "ana", 2)
    (subs / "root").symlink_to("/")
    (subs / "ana" / "root").symlink_to("/")
    (subs / "ana" / "d0" / "loop").symlink_to("..")
    scanned = []
    real_scandir = os.scandir

    def counting(path):
        scanned.append(Path(path))
        return real_scandir(path)

    monkeypatch.setattr(grading.os, "scandir", counting)
    found = grading.find_submissions([SOLUTION], subs)
    assert [(s.student, s.path and s.path.name) for s in found] == [
        ("ana", "correct.ipynb"), ("root", None)]
    assert sorted(scanned) == [subs, subs / "ana", subs / "ana/d0", subs / "ana/d0/d1"]


def test_the_walk_of_a_folder_is_bounded(tmp_path, monkeypatch):
    _tree(tmp_path / "subs" / "deep", grading.MAX_FOLDER_DEPTH + 1)
    wide = tmp_path / "subs" / "wide"
    wide.mkdir()
    for index in range(30):
        (wide / f"f{index}").mkdir()
    monkeypatch.setattr(grading, "MAX_FOLDER_ENTRIES", 20)
    scan = grading.scan_submissions([SOLUTION], tmp_path / "subs")
    assert [s.path for s in scan.submissions] == [None, None]
    assert any("folders deep" in line for line in scan.skipped)
    assert "wide/stopped looking after 20 entries" in scan.skipped


def test_a_fifo_or_a_second_entry_for_a_student_is_reported(tmp_path):
    subs = tmp_path / "subs"
    _tree(subs / "ana", 0)
    shutil.copy(SUBMISSIONS / "stub.ipynb", subs / "ana.ipynb")
    os.mkfifo(subs / "pipe.ipynb")
    scan = grading.scan_submissions([SOLUTION], subs)
    assert [(s.student, s.path.name) for s in scan.submissions] == [("ana", "correct.ipynb")]
    assert scan.skipped == ("ana.ipynb: names the same student as ana, which is graded instead",
                            "pipe.ipynb: neither a notebook nor a folder")


def test_a_symlink_swapped_in_after_the_scan_is_not_read(tmp_path):
    (tmp_path / "ana.ipynb").symlink_to(SOLUTION)
    with pytest.raises(OSError):
        grading._read_bytes(tmp_path / "ana.ipynb")  # pylint: disable=protected-access


# --- the grader's failures are retried, the students' are not ----------------------------------


def test_resume_regrades_only_rows_the_grader_failed(tmp_path):
    submissions = [grading.Submission(status, SOLUTION, SUBMISSIONS / "correct.ipynb")
                   for status in gradebook.STATUSES]
    for submission in submissions:
        stored = gradebook.SubmissionResult(
            submission.student, SOLUTION.name, "correct.ipynb", submission.student, "", (), (),
            (), grading.fingerprint(submission, LIMITS))
        gradebook.write_atomic(gradebook.result_path(tmp_path, stored.student, stored.exercise),
                               stored.to_json())
    # pylint: disable-next=protected-access
    pending = {s.student for s in grading._pending(submissions, tmp_path, LIMITS, False)}
    assert pending == {"start-failed", "grader-error"} == set(gradebook.GRADER_FAULTS)


def _grade_quickly(folder: Path, out: Path) -> int:
    return cli.main(["grade", str(SOLUTION), str(folder), "-o", str(out), *QUICK_FLAGS])


def test_an_exception_in_the_grader_is_a_row_and_a_rerun_gives_the_real_grade(
        tmp_path, monkeypatch, capsys):
    folder = _subset(tmp_path, ("correct", "stub"))
    out = tmp_path / "out"
    real = grading.grade_submission

    def broken(submission, *args):
        if submission.student == "correct":
            raise RuntimeError("a bug in the grader \ud800")
        return real(submission, *args)

    monkeypatch.setattr(grading, "grade_submission", broken)
    assert _grade_quickly(folder, out) == 2
    printed = capsys.readouterr()
    assert "grader error (run again to retry): correct / solution.ipynb: grader-error" in \
        printed.err
    assert "statuses: ok 1, grader-error 1" in printed.out
    grades = _grades(out)
    assert (grades["correct"]["status"], grades["stub"]["status"]) == ("grader-error", "ok")
    monkeypatch.undo()
    assert _grade_quickly(folder, out) == 0
    assert "graded 1, skipped 1 already graded" in capsys.readouterr().out
    assert (_grades(out)["correct"]["total"], _grades(out)["correct"]["status"]) == ("5", "ok")


def test_a_worker_that_dies_leaves_grader_error_rows_and_a_gradebook(tmp_path, monkeypatch):
    folder = _subset(tmp_path, ("correct",))
    out = tmp_path / "out"
    monkeypatch.setattr(grading, "grade_submission", lambda *args: os._exit(3))
    summary = grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=1, progress=False)
    assert [r.status for r in summary.results] == ["grader-error"]
    assert summary.failed and "WorkerDied: the grading worker died twice" in summary.failed[0]
    monkeypatch.undo()
    again = grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=1, progress=False)
    assert (again.graded, [r.score for r in again.results]) == (1, [5.0])


def test_a_dying_worker_costs_only_the_notebook_that_kills_it(tmp_path, monkeypatch):
    """One notebook kills its worker every time, one only the first time: the first is the one
    grader-error row, everyone else (graded beside it, or queued) gets the real grade."""
    names = ("correct", "stub", "patch_checker", "invalid_json")
    folder = _subset(tmp_path, names)
    (folder / "killer.ipynb").write_bytes((SUBMISSIONS / "correct.ipynb").read_bytes())
    (folder / "once.ipynb").write_bytes((SUBMISSIONS / "correct.ipynb").read_bytes())
    real, flag = grading.grade_submission, tmp_path / "once-died"

    def dying(submission, *args):
        if submission.student == "killer":
            os._exit(3)
        if submission.student == "once":
            try:
                os.close(os.open(flag, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os._exit(3)
        return real(submission, *args)

    monkeypatch.setattr(grading, "grade_submission", dying)
    summary = grading.grade_batch([SOLUTION], folder, tmp_path / "out", LIMITS, workers=2,
                                  progress=False)
    statuses = {r.student: r.status for r in summary.results}
    assert statuses.pop("killer") == "grader-error" and flag.exists()
    assert [line.split(" / ")[0] for line in summary.failed] == ["killer"]
    expected = {name: EXPECTED[name]["status"] for name in names} | {"once": "ok"}
    assert statuses == expected
    scores = {r.student: r.score for r in summary.results}
    assert scores["once"] == scores["correct"] == float(EXPECTED["correct"]["score"])


def test_a_kernel_that_did_not_start_is_retried(tmp_path, monkeypatch):
    folder = _subset(tmp_path, ("correct",))
    out = tmp_path / "out"

    def no_start(submission, _exercise, limits, *_rest):
        error = KernelGone("the kernel did not start (the machine is out of processes)")
        return replace(grading.grader_error(submission, limits, error), status="start-failed",
                       reason=str(error))

    monkeypatch.setattr(grading, "grade_submission", no_start)
    first = grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=1, progress=False)
    assert [r.status for r in first.results] == ["start-failed"] and first.failed
    monkeypatch.undo()
    again = grading.grade_batch([SOLUTION], folder, out, LIMITS, workers=1, progress=False)
    assert (again.graded, again.failed, _grades(out)["correct"]["total"]) == (1, (), "5")


#: Corpus entries whose grade shows the sandbox's view: files, processes, network.
VIEW_SUBSET = ("correct", "stub", "git_solution", "other_solution", "grader_cmdline",
               "loopback_listener")


def test_an_ordinary_user_grades_in_the_same_sandbox(tmp_path):
    """Without root (an instructor's laptop) kernels run under bubblewrap in a user namespace:
    no uid of their own and no cgroup, but the same view of files, processes and network. Run as
    root (CI), the grader is made an ordinary user by a user namespace of its own."""
    folder = _subset(tmp_path, VIEW_SUBSET)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "labsupport", "grade", str(SOLUTION), str(folder), "-o",
               str(out), *QUICK_FLAGS]
    if os.geteuid() == 0:
        command = ["unshare", "--user", "--map-user=1000", "--map-group=1000", *command]
    with sandbox_support.loopback_listener(b"LABSUPPORT-CORPUS-ANSWERS\n"):
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "UNCONFINED" not in done.stdout + done.stderr
    grades = _grades(out)
    assert {name: (grades[name]["total"], grades[name]["status"]) for name in VIEW_SUBSET} == \
        {name: (EXPECTED[name]["score"], EXPECTED[name]["status"]) for name in VIEW_SUBSET}


def test_stored_results_are_ascii_json(corpus_run):
    out, _ = corpus_run
    for path in (out / "results").glob("*/*.json"):
        assert path.read_bytes().isascii()
        json.loads(path.read_bytes())


def test_an_output_folder_of_another_version_is_refused_before_grading(tmp_path, capsys):
    old = tmp_path / "out" / "results" / "ana"
    old.mkdir(parents=True)
    (old / "solution.json").write_text('{"format": 1, "student": "ana"}', encoding="utf-8")
    folder = _subset(tmp_path, ("invalid_json",))
    assert _grade_quickly(folder, tmp_path / "out") == 1
    assert "not a grading result of this labsupport version" in capsys.readouterr().err
    assert not (tmp_path / "out" / "grades.csv").exists()


def test_a_missing_row_says_what_was_found_instead(corpus_run):
    out, _ = corpus_run
    results = {r.student: r for r in gradebook.read_results(out)}
    assert "hidden (its name starts with a dot)" in results[".hidden_student"].reason
    assert results["empty_folder"].reason == "no notebook found for solution.ipynb"
    assert results[".hidden_student"].notes == ()


def test_a_notebook_next_to_a_huge_folder_is_still_found(tmp_path, monkeypatch):
    student = tmp_path / "subs" / "ana"
    _tree(student / "a_homework", 0)
    for index in range(30):
        (student / "venv" / "lib" / f"package{index}").mkdir(parents=True)
    monkeypatch.setattr(grading, "MAX_FOLDER_ENTRIES", 20)
    found = grading.find_submissions([SOLUTION], tmp_path / "subs")
    assert found[0].path == student / "a_homework" / "correct.ipynb"


def test_two_grading_runs_on_one_machine_never_disturb_each_other(tmp_path):
    # Two real `labsupport grade` processes at once, honest students only: every one gets 5/5.
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("ana", "bo", "cleo", "dan"):
        shutil.copy(SUBMISSIONS / "correct.ipynb", folder / f"{name}.ipynb")
    runs = [subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-m", "labsupport", "grade", str(SOLUTION), str(folder), "-o",
         str(tmp_path / f"out{i}"), "--workers", "2", "--cell-timeout", "20", "--timeout", "60",
         "--memory-mb", "1024", "--processes", "64"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in (1, 2)]
    for run in runs:
        output, _ = run.communicate(timeout=300)
        assert run.returncode == 0, output.decode("utf-8", "replace")
    for i in (1, 2):
        grades = _grades(tmp_path / f"out{i}")
        assert {(s, row["total"], row["status"]) for s, row in grades.items()} == {
            (name, "5", "ok") for name in ("ana", "bo", "cleo", "dan")}


# --- exercise 05: a workflow graded by actionlint in the grader, exact points --------------------

WORKFLOW_SOLUTION = Path(__file__).resolve().parent.parent / "solutions" \
    / "05_github_actions_for_ml.ipynb"


def _exercise05_submission(folder: Path, name: str, replace: tuple[str, str] | None) -> None:
    """The exercise with the solution's answers put back, one text replacement in question 1."""
    solution = nbformat.read(WORKFLOW_SOLUTION, as_version=4)
    exercise = nbformat.read(WORKFLOW_SOLUTION.parent.parent / "exercises"
                             / WORKFLOW_SOLUTION.name, as_version=4)
    answers = {cell.metadata["labsupport"]["question"]: cell.source for cell in solution.cells
               if "points" in cell.metadata.get("labsupport", {})}
    for cell in exercise.cells:
        question = cell.metadata.get("labsupport", {})
        if "points" in question:
            cell.source = answers[question["question"]]
            if replace and question["question"] == "q1":
                assert replace[0] in cell.source
                cell.source = cell.source.replace(*replace)
    folder.mkdir(exist_ok=True)
    nbformat.write(exercise, folder / f"{name}.ipynb")


def test_a_right_and_a_wrong_workflow_get_their_exact_points(tmp_path):
    folder = tmp_path / "subs"
    _exercise05_submission(folder, "right", None)
    # Retired action versions: actionlint fails in the student's kernel and in the grader (the one
    # lint test weighs 1 of q1's 11; the dry runs of the workflow's behaviour pass): 5 x 10/11.
    _exercise05_submission(folder, "retired", ("actions/checkout@v7", "actions/checkout@v3"))
    out = tmp_path / "out"
    # The exercise trains a model and runs actionlint (a Go binary, many threads) in the kernel:
    # the command's default limits, not the corpus's tight ones.
    limits = Limits(cell_seconds=120, submission_seconds=300, memory_bytes=3072 * 1024**2,
                    processes=128, interrupt_grace_seconds=2)
    summary = grading.grade_batch([WORKFLOW_SOLUTION], folder, out, limits, workers=2,
                                  progress=False)
    assert not summary.failed
    grades = _grades(out)
    assert {name: (row["q1"], row["q2"], row["total"], row["status"])
            for name, row in grades.items()} == {"right": ("5", "4", "9", "ok"),
                                                 "retired": ("4.5455", "4", "8.5455", "ok")}


def test_the_exercise_imports_include_submodules_reached_through_attributes(tmp_path):
    """A warmed-up kernel must have paid for np.random too: NumPy loads it on first use."""
    cells = [nbformat.v4.new_code_cell("import numpy as np\nimport os.path as osp\n"
                                       "from sklearn import ensemble\nfrom scipy import stats"),
             nbformat.v4.new_code_cell("rng = np.random.default_rng(0)\nnp.mean([1])\n"
                                       "osp.join('a')\nensemble.RandomForestClassifier"),
             nbformat.v4.new_code_cell("import pytest", metadata={"tags": ["hidden-tests"]}),
             nbformat.v4.new_code_cell("this is not python"),
             nbformat.v4.new_markdown_cell("import json")]
    solution = tmp_path / "solution.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), solution)
    assert grading.exercise_imports([solution]) == (
        "numpy", "numpy.random", "os.path", "scipy", "scipy.stats", "sklearn", "sklearn.ensemble")


@pytest.mark.parametrize("workers, cores, ahead", [(1, 2, 2), (2, 2, 1), (3, 2, 1), (1, 1, 1),
                                                   (2, 5, 3), (1, 64, grading.MAX_AHEAD)])
def test_each_worker_boots_enough_kernels_ahead_to_cover_the_cores(workers, cores, ahead):
    assert grading.kernels_ahead(workers, cores) == ahead


def test_a_hung_question_times_out_alone_and_the_others_are_graded(tmp_path):
    """square() loops forever: its first test is interrupted, q1's other test is skipped, and
    q2 and q3 still get their points although q1's two calls alone would outlast the
    submission's budget (5 s here: the cells, then 2 s per call and 2 s of grace)."""
    notebook = nbformat.read(SUBMISSIONS / "correct.ipynb", as_version=4)
    for cell in notebook.cells:
        cell.source = cell.source.replace("return x * x", "while True:\n        pass")
    (tmp_path / "subs").mkdir()
    nbformat.write(notebook, tmp_path / "subs" / "looper.ipynb")
    limits = Limits(cell_seconds=2, submission_seconds=5, memory_bytes=1024**3, processes=64,
                    interrupt_grace_seconds=2)
    assert grading.question_seconds(limits, 2) == 6
    grading.grade_batch([SOLUTION], tmp_path / "subs", tmp_path / "out", limits, workers=1,
                        progress=False)
    (result,) = gradebook.read_results(tmp_path / "out")
    assert (result.status, [result.question_score(q) for q in ("q1", "q2", "q3")]) == (
        "ok", [0, 2, 1])
    first, second = (t for t in result.tests if t.question == "q1")
    assert "ran for more than 2 s and was interrupted" in first.message
    assert second.message == ("not run: an earlier test of q1 ran past 2 s and was interrupted, "
                              "so the question's other tests were skipped")


#: A class with a kernel that hangs (ignores interrupts, killed) and one that dies.
LEAK_CLASS = ("correct", "exit_after_patch", "ignores_interrupt", "stub")


@pytest.mark.parametrize("ending", ["finished", "worker-killed", "interrupted"])
def test_a_class_leaves_no_sandbox_folder_however_the_grading_ends(tmp_path, monkeypatch,
                                                                    ending):
    """Every sandbox folder is deleted, the hung and the crashed kernels' too, when the class is
    graded to the end, when a worker is killed (its pool is terminated, with the kernels each
    worker had started ahead), and when Ctrl-C reaches a worker in the middle of the class."""
    folder = _subset(tmp_path, LEAK_CLASS)
    (folder / "zz_last.ipynb").write_bytes((SUBMISSIONS / "correct.ipynb").read_bytes())
    real = grading.grade_submission

    def ending_early(submission, *args):
        if submission.student != "zz_last":
            return real(submission, *args)
        if ending == "worker-killed":
            os._exit(9)
        real(submission, *args)
        raise KeyboardInterrupt

    if ending != "finished":
        monkeypatch.setattr(grading, "grade_submission", ending_early)
    with sandbox_support.fresh_temp_dir(monkeypatch) as temp:
        if ending == "interrupted":
            with pytest.raises(KeyboardInterrupt):
                grading.grade_batch([SOLUTION], folder, tmp_path / "out", LIMITS, workers=2,
                                    progress=False)
        else:
            summary = grading.grade_batch([SOLUTION], folder, tmp_path / "out", LIMITS,
                                          workers=2, progress=False)
            statuses = {r.student: r.status for r in summary.results}
            assert (statuses["ignores_interrupt"], statuses["exit_after_patch"]) == (
                "hung", "kernel-died")
        assert sorted(p.name for p in temp.iterdir()) == []
