"""The written-answer review (labsupport.course.review): the SQLite store under several
writers and a killed process, the page (token, rubric, saves, inert answers), and the CSV
round trip."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from labsupport import cli
from labsupport.course import gradebook, review, written
from tests.course_notebooks import write
from tests.test_written import with_written

QUESTION = written.WrittenQuestion(
    "w1", 3.0, (written.RubricItem("names the failed check", 1.0),
                written.RubricItem("gives the numbers", 1.0),
                written.RubricItem("says what happens next", 1.0)), "The error rate.", 5,
    "Which check **stopped** the rollout? <b>x</b>")
QUESTIONS = review.Questions({("06_x.ipynb", "w1"): QUESTION})
ANSWERS = {
    "ana": "The **error rate** was 3 %.",
    "bo": "<script>document.title='owned'</script>\n\n[click](javascript:alert(1))\n\n"
          "![x](https://tracker.example/p.png)\n\n<img src=x onerror=alert(1)>",
    "cy": "",
}


@pytest.fixture(name="store")
def fixture_store(tmp_path) -> review.ReviewStore:
    """A store holding three answers to one question."""
    store = review.ReviewStore(tmp_path / review.DATABASE)
    store.load_answers(("06_x.ipynb", "w1", student, text) for student, text in ANSWERS.items())
    return store


KEY = ("06_x.ipynb", "w1", "ana")


def test_a_save_records_who_and_when_and_counts_versions(store):
    first = store.save(KEY, 2, [0, 1], " Good. ", "ta1", 0)
    assert first.replaced == ""
    assert (first.score.points, first.score.ticked, first.score.comment, first.score.grader,
            first.score.version) == (2.0, (0, 1), "Good.", "ta1", 1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", first.score.saved_at)
    second = store.save(KEY, 3, [0, 1, 2], "", "ta1", 1)
    assert second.replaced == "" and second.score.version == 2
    assert store.progress() == {("06_x.ipynb", "w1"): (1, 3)}


def test_two_reviewers_on_one_answer_lose_nothing_silently(store):
    store.save(KEY, 1, [0], "first look", "ta1", 0)
    # ta2 and ta3 both opened the page at version 1; ta2 saves first, then ta3.
    store.save(KEY, 2, [0, 1], "ta2's view", "ta2", 1)
    late = store.save(KEY, 3, [0, 1, 2], "ta3's view", "ta3", 1)
    assert late.replaced.startswith("ta2's score of 2 saved at ")
    assert store.score(*KEY).grader == "ta3"
    assert [(h["grader"], h["comment"], bool(h["replaced"])) for h in store.history()] == [
        ("ta1", "first look", False), ("ta2", "ta2's view", False), ("ta3", "ta3's view", True)]


@pytest.mark.parametrize("points, grader, key, error", [
    (-1, "ta", KEY, ValueError), (float("nan"), "ta", KEY, ValueError),
    (1, " ", KEY, ValueError), (1, "ta", ("06_x.ipynb", "w1", "zed"), KeyError)])
def test_a_bad_save_is_refused_and_changes_nothing(store, points, grader, key, error):
    with pytest.raises(error):
        store.save(key, points, [], "", grader, 0)
    assert store.scores() == [] and store.history() == []


def _hammer(path: str, student: str, grader: str, count: int) -> None:
    store = review.ReviewStore(path)
    for version in range(count):
        store.save(("06_x.ipynb", "w1", student), version % 4, [], f"{grader} {version}",
                   grader, -1)


def test_concurrent_writers_in_other_processes_all_commit(store):
    """Three processes save 40 times each, two of them on the same answer."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(str(store.path), student, grader, 40))
               for student, grader in (("ana", "ta1"), ("ana", "ta2"), ("bo", "ta3"))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    assert len(store.history()) == 120
    assert store.score("06_x.ipynb", "w1", "ana").version == 80
    assert store.score("06_x.ipynb", "w1", "bo").version == 40


KILLED = """
import os, sys
from labsupport.course import review
store = review.ReviewStore(sys.argv[1])
store.save(("06_x.ipynb", "w1", "ana"), 2, [0, 1], "kept", "ta1", 0)
print("saved", flush=True)
sys.stdin.read()  # wait to be killed
"""


def test_a_killed_process_loses_nothing_it_committed(store):
    environment = {**os.environ, "PYTHONPATH": str(Path(review.__file__).parents[2])}
    with subprocess.Popen([sys.executable, "-c", KILLED, str(store.path)], env=environment,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout.readline() == "saved\n"
            process.send_signal(signal.SIGKILL)
            process.wait(30)
        finally:
            process.kill()
    assert store.score(*KEY).comment == "kept"


@pytest.fixture(name="client")
def fixture_client(store) -> TestClient:
    """The review page on the store, token "t0k"."""
    return TestClient(review.create_app(store, QUESTIONS, "t0k"))


def test_the_page_needs_the_token_then_remembers_it(client):
    assert client.get("/").status_code == 403
    assert client.get("/?token=wrong").status_code == 403
    page = client.get("/?token=t0k")
    assert page.status_code == 200 and "0 / 3" in page.text
    assert client.get("/answer/06_x.ipynb/w1/0").status_code == 200  # the cookie now


def test_a_student_answer_is_shown_inert(client):
    client.get("/?token=t0k")
    page = client.get("/answer/06_x.ipynb/w1/1")
    assert page.headers["content-security-policy"] == review.CSP
    assert "script-src" not in review.CSP and "default-src 'none'" in review.CSP
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    assert "javascript:" not in page.text and '<a href="#harmful-link">click</a>' in page.text
    assert "<img src=x" not in page.text and "&lt;img src=x onerror" in page.text
    # A picture from elsewhere stays in the page, but the policy allows images from 'self' only.
    assert '<img src="https://tracker.example/p.png"' in page.text
    assert "img-src 'self'" in review.CSP
    assert "<strong>error rate</strong>" in client.get("/answer/06_x.ipynb/w1/0").text


def test_the_page_and_the_export_show_the_question_beside_the_rubric(client, store):
    # The reviewer saw the rubric and the model answer but not what the student was asked.
    client.get("/?token=t0k")
    for page in (client.get("/answer/06_x.ipynb/w1/0").text, review.export_html(store, QUESTIONS)):
        assert "Which check <strong>stopped</strong> the rollout? &lt;b&gt;x&lt;/b&gt;" in page


def test_ticking_items_saves_their_points_and_moves_on(client, store):
    client.get("/?token=t0k")
    form = client.get("/answer/06_x.ipynb/w1/0").text
    csrf = re.search(r"name=csrf value='([0-9a-f]+)'", form).group(1)
    moved = client.post("/answer/06_x.ipynb/w1/0", data={
        "item": ["0", "2"], "points": "", "comment": "Name the number.", "grader": "ta1",
        "version": "0", "csrf": csrf, "then": "next"}, follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"].endswith("/w1/1")
    score = store.score(*KEY)
    assert (score.points, score.ticked, score.comment) == (2.0, (0, 2), "Name the number.")
    again = client.get("/answer/06_x.ipynb/w1/0").text
    assert "Scored 2 by ta1" in again and "value=0 checked" in again
    assert "value=1 checked" not in again and "Name the number." in again
    assert client.post("/answer/06_x.ipynb/w1/0", data={
        "points": "9", "grader": "ta1", "version": "1", "csrf": csrf}).status_code == 400
    assert client.post("/answer/06_x.ipynb/w1/0", data={
        "points": "1", "grader": "ta1", "version": "1", "csrf": "forged"}).status_code == 403
    assert store.score(*KEY).version == 1


def test_a_save_over_a_newer_edit_says_whose_it_replaced(client, store):
    client.get("/?token=t0k")
    csrf = re.search(r"name=csrf value='([0-9a-f]+)'",
                     client.get("/answer/06_x.ipynb/w1/0").text).group(1)
    store.save(KEY, 1, [0], "", "ta2", 0)
    page = client.post("/answer/06_x.ipynb/w1/0", data={
        "item": ["0", "1"], "grader": "ta1", "version": "0", "csrf": csrf, "then": "next"})
    assert page.status_code == 200, "a replacing save stays on the page to say so"
    assert "It replaced ta2&#x27;s score of 1" in page.text


def test_anonymous_mode_hides_the_ids(store):
    client = TestClient(review.create_app(store, QUESTIONS, "t0k", anonymous=True))
    page = client.get("/answer/06_x.ipynb/w1/0?token=t0k").text
    assert "ana" not in page and re.search(r"answer [0-9a-f]{6}", page)
    assert "ana" not in review.export_html(store, QUESTIONS, anonymous=True)


def test_scores_round_trip_through_the_csv(store):
    store.save(KEY, 2, [0, 1], "=HYPERLINK(\"x\")", "ta1", 0)
    exported = review.export_csv(store, QUESTIONS)
    lines = exported.splitlines()
    assert lines[0] == ",".join(review.CSV_COLUMNS)
    # Rubric items are numbered from 1 in the CSV, as the exported page's list numbers them.
    assert lines[1].startswith("06_x.ipynb,w1,ana,2,3,1;2,\"'=HYPERLINK(\"\"x\"\")\",ta1,")
    edited = exported.replace("\n06_x.ipynb,w1,bo,,3,,,,,0", "\n06_x.ipynb,w1,bo,1,3,3,ok,,,0")
    assert review.import_csv(store, QUESTIONS, edited, grader="ta9") == review.Imported(1, ())
    assert store.score("06_x.ipynb", "w1", "bo").ticked == (2,)
    assert store.score(*KEY).comment == "=HYPERLINK(\"x\")", "the ' guard is removed again"
    assert store.score(*KEY).version == 1, "ana's row came back unchanged: not saved again"
    store.save(KEY, 0, [], "", "ta2", 1)  # an edit after the export
    with pytest.raises(ValueError, match="row 2: conflict: ana's w1 was exported at version 1, "
                                         "but ta2 has since saved version 2"):
        review.import_csv(store, QUESTIONS, exported)
    assert review.import_csv(store, QUESTIONS, exported, force=True).notes == (
        f"row 2: ana's w1 replaced ta2's score of 0 saved at {store.history()[-2]['saved_at']}",)


def test_an_import_with_a_bad_row_saves_nothing(store):
    # Rows before the bad one were saved, and the error did not say so.
    edited = review.export_csv(store, QUESTIONS).replace(
        "\n06_x.ipynb,w1,bo,,3,,,,,0", "\n06_x.ipynb,w1,bo,1,3,1,,,,0")
    edited += "06_x.ipynb,w1,s9,1,3,,,,,0\n"
    with pytest.raises(ValueError) as error:
        review.import_csv(store, QUESTIONS, edited, grader="ta1")
    assert str(error.value) == ("row 5: no answer of 's9' to 06_x.ipynb w1. Nothing was "
                                "imported: fix the rows and import the file again.")
    assert store.scores() == []


@pytest.mark.parametrize("points, ticked", [("2", "1"), ("1", "1;2")])
def test_points_that_disagree_with_the_ticked_items_are_refused(store, points, ticked):
    # The points won silently: a reviewer who edited ticked in a re-exported CSV changed nothing.
    edited = review.export_csv(store, QUESTIONS).replace(
        "\n06_x.ipynb,w1,bo,,3,,,,,0", f"\n06_x.ipynb,w1,bo,{points},3,{ticked},,,,0")
    with pytest.raises(ValueError, match=f"row 3: bo's w1: points {points} disagree with the "
                                         f"ticked items {ticked}"):
        review.import_csv(store, QUESTIONS, edited, grader="ta1")
    assert store.scores() == []


def test_an_old_export_does_not_overwrite_a_later_score_by_someone_else(store):
    exported = review.export_csv(store, QUESTIONS)
    for version in range(3):
        store.save(KEY, 3, [0, 1, 2], "", "ta2", version)
    stale = exported.replace("\n06_x.ipynb,w1,ana,,3,,,,,0", "\n06_x.ipynb,w1,ana,0,3,,,,,0")
    with pytest.raises(ValueError, match="conflict: .*version 0, but ta2 has since saved version "
                                         "3 .* this row by ta1 would replace it"):
        review.import_csv(store, QUESTIONS, stale, grader="ta1")
    assert store.score(*KEY).points == 3
    assert review.import_csv(store, QUESTIONS, stale, grader="ta2").saved == 1, "one's own: fine"


@pytest.mark.parametrize("exercise, question", [("06_x", "w1"), ("06_x:w1", ""),
                                                ("06_x:w1", "w1")])
def test_the_exercise_may_be_named_as_grades_csv_names_it(store, exercise, question):
    edited = review.export_csv(store, QUESTIONS).replace(
        "\n06_x.ipynb,w1,bo,,3,,,,,0", f"\n{exercise},{question},bo,,3,1,,,,0")
    assert review.import_csv(store, QUESTIONS, edited, grader="ta1").saved == 1


def test_importing_a_row_left_as_it_was_keeps_its_reviewer(store):
    # Every scored row was saved again, so the importer's name replaced the reviewer's.
    store.save(KEY, 2, [0, 1], "Good.", "ta1", 0)
    exported = review.export_csv(store, QUESTIONS)
    assert review.import_csv(store, QUESTIONS, exported, grader="ta9").saved == 0
    assert (store.score(*KEY).grader, store.score(*KEY).version) == ("ta1", 1)


def test_ticked_items_without_points_are_scored_not_dropped(store):
    # A reviewer who ticked the items the exported page numbers (1 and 3) and left the points
    # empty lost the row silently; the points now follow from the items.
    edited = review.export_csv(store, QUESTIONS).replace(
        "\n06_x.ipynb,w1,bo,,3,,,,,0", "\n06_x.ipynb,w1,bo,,3,1;3,good,,,0")
    assert review.import_csv(store, QUESTIONS, edited, grader="ta1").saved == 1
    score = store.score("06_x.ipynb", "w1", "bo")
    assert (score.points, score.ticked, score.comment) == (2.0, (0, 2), "good")


def test_the_exported_page_numbers_the_items_and_shows_the_model_answer(store):
    page = review.export_html(store, QUESTIONS)
    assert "<li>names the failed check (1)</li>" in page and "<ol>" in page
    assert "The error rate." in page and "<code>1;3</code>" in page


@pytest.mark.parametrize("change, message", [
    (lambda text: text.replace("exercise,", "exercize,", 1), "header must be"),
    (lambda text: text.replace(",w1,bo,,", ",w1,bo,4,"), "row 3: points must lie between"),
    (lambda text: text.replace(",w1,bo,,3,,", ",w1,bo,1,3,7,"), "row 3: ticked items"),
    (lambda text: text.replace(",w1,bo,,3,,", ",w1,bo,1,3,0,"), "row 3: ticked items must be "
                                                               "rubric item numbers 1..3"),
    (lambda text: text.replace(",w1,bo,,3,,", ",w1,bo,,3,a,"), "row 3: ticked must list"),
    (lambda text: text.replace(",w1,bo,,3,,", ",w1,bo,,3,,fine"), "row 3: bo's w1 has a "
                                                                  "comment but no points"),
    (lambda text: text.replace(",w1,bo,", ",w9,bo,"), "row 3: no written question 'w9' in "
                                                      "'06_x.ipynb'; the written questions under "
                                                      "review are 06_x.ipynb w1 "),
    (lambda text: text.replace("\n06_x.ipynb,w1,bo,", "\n06_x.ipynb,w1,s9,"),
     "^row 3: no answer of 's9' to 06_x.ipynb w1. Nothing"),
])
def test_a_bad_csv_row_is_named(store, change, message):
    with pytest.raises(ValueError, match=message):
        review.import_csv(store, QUESTIONS, change(review.export_csv(store, QUESTIONS)), "ta1")


def graded_class(root: Path, answers: dict[str, str]) -> Path:
    """A lab at ``root`` whose one exercise asks the written question w1 (tests.test_written),
    and ``root/grading``, holding each student's stored result with its answer to w1."""
    write(with_written(), root / "solutions" / "01_small.ipynb")
    grading = root / "grading"
    for student, text in answers.items():
        result = gradebook.SubmissionResult(student, "01_small.ipynb", "x.ipynb", "ok", "",
                                            (("q1", 2.0),), (), (), "f",
                                            (("w1", 2.5, text),))
        path = gradebook.result_path(grading, student, "01_small.ipynb")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(result.to_json(), encoding="utf-8")
    return grading


def test_the_command_loads_graded_answers_and_writes_the_offline_files(tmp_path, capsys):
    """`labsupport review GRADING_DIR --export --csv` then `--import`, from stored results."""
    grading = graded_class(tmp_path, {"ana": "It **failed** the error check.", "bo": ""})
    assert cli.main(["review", str(grading), "--root", str(tmp_path), "--export",
                     str(tmp_path / "a.html"), "--csv", str(tmp_path / "s.csv")]) == 0
    page = (tmp_path / "a.html").read_text(encoding="utf-8")
    assert "<strong>failed</strong>" in page and "Why was the canary rolled back?" in page
    scores = (tmp_path / "s.csv").read_text(encoding="utf-8")
    assert scores.splitlines()[1:] == ["01_small.ipynb,w1,ana,,2.5,,,,,0",
                                       "01_small.ipynb,w1,bo,,2.5,,,,,0"]
    (tmp_path / "s.csv").write_text(scores.replace("ana,,2.5,,", "ana,1,2.5,1,"),
                                    encoding="utf-8")
    assert cli.main(["review", str(grading), "--root", str(tmp_path), "--import",
                     str(tmp_path / "s.csv"), "--grader", "ta1"]) == 0
    assert "imported 1 score(s)" in capsys.readouterr().out
    store = review.ReviewStore(grading / review.DATABASE)
    assert [(s.student, s.points, s.ticked, s.grader) for s in store.scores()] == [
        ("ana", 1.0, (0,), "ta1")]
    assert cli.main(["review", str(grading), "--root", str(tmp_path / "nowhere")]) == 1
    assert "no solution notebook" in capsys.readouterr().err


def test_written_scores_reach_the_grades_and_the_feedback_and_pending_is_not_zero(tmp_path):
    # percent counted a pending answer as 0 (44.44 for bo below), the feedback said only the
    # points (not which rubric items were met), and results_long.csv had no written rows.
    grading = graded_class(tmp_path, {"ana": "The error rate.", "bo": "It was slow."})
    gradebook.write_reports(grading)
    rows = (grading / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert rows == ["student,q1,w1,total,possible,percent,status",
                    "ana,0,pending,0,4.5,,w1:pending", "bo,0,pending,0,4.5,,w1:pending"]
    store = review.ReviewStore(grading / review.DATABASE)
    load_results(store, grading)
    store.save(("01_small.ipynb", "w1", "ana"), 2.5, [0, 1], "Clear.\n## 10 / 10", "ta1", 0)
    store.save(("01_small.ipynb", "w1", "bo"), 1, [0], "", "ta1", 0)
    gradebook.write_reports(grading)
    rows = (grading / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1:] == ["ana,0,2.5,2.5,4.5,55.56,ok", "bo,0,1,1,4.5,22.22,ok"]
    feedback = gradebook.feedback_path(grading, "ana").read_text(encoding="utf-8")
    assert "### w1 (written): 2.5 / 2.5\n\nRubric items met:\n\n- names the failed check " \
        "(error rate) (1)\n- says why one bad step was not noise (1.5)\n" in feedback
    assert "```text\nClear.\n## 10 / 10\n```" in feedback, "a comment is fenced, not a heading"
    long_rows = (grading / "results_long.csv").read_text(encoding="utf-8").splitlines()
    assert "ana,w1,(written),2.5,2.5,scored,," in long_rows
    assert "bo,w1,(written),1,2.5,scored,," in long_rows


def test_a_pending_answer_is_pending_in_every_report(tmp_path):
    grading = graded_class(tmp_path, {"ana": "The error rate.", "bo": "It was slow."})
    store = review.ReviewStore(grading / review.DATABASE)
    load_results(store, grading)
    store.save(("01_small.ipynb", "w1", "ana"), 1, [0], "", "ta1", 0)
    gradebook.write_reports(grading)
    rows = (grading / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1:] == ["ana,0,1,1,4.5,22.22,ok", "bo,0,pending,0,4.5,,w1:pending"]
    assert "### w1 (written): pending review" in \
        gradebook.feedback_path(grading, "bo").read_text(encoding="utf-8")
    assert "bo,w1,(written),,2.5,pending,," in \
        (grading / "results_long.csv").read_text(encoding="utf-8").splitlines()


def load_results(store: review.ReviewStore, grading: Path) -> None:
    """Load the small lab's written answers from ``grading`` into ``store``."""
    review.load_results(store, grading, review.Questions.from_solutions(
        [grading.parent / "solutions" / "01_small.ipynb"]))


def test_a_missing_hand_in_is_not_put_up_for_review(tmp_path):
    # A student on the roster with nothing handed in was listed on the page as "(no answer)"
    # and stayed pending until someone scored it; it now counts 0 without review.
    grading = graded_class(tmp_path, {"ana": "The error rate."})
    missing = gradebook.SubmissionResult("cy", "01_small.ipynb", "", "missing", "nothing",
                                         (("q1", 2.0),), (), (), "f", (("w1", 2.5, ""),))
    gradebook.write_atomic(gradebook.result_path(grading, "cy", "01_small.ipynb"),
                           missing.to_json())
    store = review.ReviewStore(grading / review.DATABASE)
    load_results(store, grading)
    assert store.students("01_small.ipynb", "w1") == ["ana"]
    gradebook.write_reports(grading)
    rows = (grading / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1:] == ["ana,0,pending,0,4.5,,w1:pending", "cy,0,0,0,4.5,0.00,missing"]
