"""Batch grading: the hostile corpus gets exactly its expected scores; runs are deterministic,
resumable, shardable and written atomically."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from labsupport import cli
from labsupport.course import gradebook, grading
from labsupport.course.sandbox import Limits

CORPUS = Path(__file__).parent / "grading_corpus"
SOLUTION = CORPUS / "solution.ipynb"
SUBMISSIONS = CORPUS / "submissions"
with open(CORPUS / "expected.csv", encoding="utf-8", newline="") as _table:
    EXPECTED = {row["student"]: row for row in csv.DictReader(_table)}
LIMITS = Limits(cell_seconds=4, submission_seconds=60, memory_bytes=1024**3, processes=64,
                interrupt_grace_seconds=2)
FAST = ("correct", "invalid_json", "patch_checker")
REPORTS = ("grades.csv", "results_long.csv")


def _grades(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", encoding="utf-8", newline="") as stream:
        return {row["student"]: row for row in csv.DictReader(stream)}


def _snapshot(out: Path) -> dict[str, bytes]:
    files = [out / name for name in REPORTS] + sorted((out / "feedback").glob("*.md"))
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


def _subset(tmp_path: Path, names: tuple[str, ...] = FAST) -> Path:
    folder = tmp_path / "subset"
    folder.mkdir()
    for name in names:
        shutil.copy(SUBMISSIONS / f"{name}.ipynb", folder)
    return folder


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory, monkeypatch_module):
    """The whole corpus graded once, by a grader whose environment looks like CI."""
    # A grader that looks like CI: the kernels must not see any of it.
    for name in ("CI", "GITHUB_ACTIONS", "LABSUPPORT_GRADING", "NBGRADER_EXECUTION"):
        monkeypatch_module.setenv(name, "true")
    out = tmp_path_factory.mktemp("graded")
    summary = grading.grade_batch([SOLUTION], SUBMISSIONS, out, LIMITS, workers=2,
                                  progress=False)
    return out, summary


@pytest.fixture(scope="module")
def monkeypatch_module():
    """A monkeypatch that lasts for the module."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_the_corpus_is_big_enough_and_has_no_python_files():
    assert len(EXPECTED) >= 15
    assert not list(CORPUS.rglob("*.py"))
    assert {p.stem for p in SUBMISSIONS.glob("*.ipynb")} == set(EXPECTED)


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


def test_feedback_shows_public_messages_and_hides_hidden_test_details(corpus_run):
    out, _ = corpus_run
    text = (out / "feedback" / "renamed_function.md").read_text(encoding="utf-8")
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
    # Retired action versions: actionlint fails in the student's kernel and in the grader.
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
                                                 "retired": ("3", "4", "7", "ok")}
