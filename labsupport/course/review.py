"""Reviewing written answers: a store of scores in SQLite and a small page for teaching assistants.

``labsupport grade`` keeps each student's written answers (:mod:`.written`) in the stored
results. ``labsupport review GRADING_DIR`` loads them into ``GRADING_DIR/review.sqlite`` and
serves a page on a loopback port, behind a token printed with its URL: question by question,
each answer rendered as safe Markdown (:func:`render_answer`), the rubric's items to tick, the
points, a comment, previous and next. Several assistants may review at once: the database is
in WAL mode, every save is one short transaction, every score records who saved it and when, and
a save over a score someone else changed since the page was opened still wins but says whose
edit it replaced (the history table keeps both).

Nothing a student wrote runs: answers are escaped, links to anything but http(s) and mailto are
disabled, and every page is served with a Content-Security-Policy that allows no script and
no request outside the page's own origin. The same store exports a self-contained HTML file of
every answer and a CSV of the scores, and imports that CSV back, for reviewers without the page.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import hmac
import html
import io
import secrets
import socket
import sys
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from labsupport.course import authoring, gradebook, written
from labsupport.course.reviewstore import DATABASE, ReviewStore, Score, ticked_of, ticked_text

#: The columns of the scores CSV (export and import).
CSV_COLUMNS = ("exercise", "question", "student", "points", "max", "ticked", "comment",
               "grader", "saved_at", "version")
#: Every page's Content-Security-Policy: no script, nothing fetched from elsewhere.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
_COOKIE = "review_token"


# --- what the page shows ------------------------------------------------------------------------

def render_answer(text: str) -> str:
    """A student's Markdown as inert HTML: raw HTML escaped, javascript:/data: links disabled
    (mistune's safe URLs), so nothing in it can run or load."""
    if not text.strip():
        return "<p><em>(no answer)</em></p>"
    return gradebook.markdown_html(text)


def _pseudonym(student: str, exercise: str) -> str:
    digest = hashlib.sha256(f"{exercise}\0{student}".encode("utf-8", "surrogateescape"))
    return f"answer {digest.hexdigest()[:6]}"


@dataclass(frozen=True)
class Questions:
    """The written questions under review, by ``(exercise, question)``."""

    found: Mapping[tuple[str, str], written.WrittenQuestion]

    @classmethod
    def from_solutions(cls, solutions: Iterable[Path]) -> Questions:
        """Read the written questions (with rubrics) of each solution notebook."""
        found = {}
        for path in solutions:
            for question in authoring.load_exercise(path).written:
                found[(Path(path).name, question.name)] = question
        return cls(found)


def load_results(store: ReviewStore, grading_dir: Path, questions: Questions) -> int:
    """Put every stored result's written answers (of the questions known) into ``store``,
    those of ``missing`` hand-ins left out, and the questions' rubrics (for the feedback)."""
    for (exercise, name), question in questions.found.items():
        store.load_rubric(exercise, name, ((item.item, item.points) for item in question.rubric))
    return store.load_answers(
        (result.exercise, name, result.student, text)
        for result in gradebook.read_results(grading_dir)
        for name, _, text in result.written
        # a missing hand-in has no answer to review: its written questions count 0
        if (result.exercise, name) in questions.found and result.status != "missing")


def points_for(question: written.WrittenQuestion, ticked: Iterable[int]) -> float:
    """The points of the rubric items ticked."""
    return sum(question.rubric[i].points for i in set(ticked))


_STYLE = """body{font:16px/1.5 system-ui,sans-serif;max-width:58rem;margin:1.5rem auto;
padding:0 1rem}
.answer{border:1px solid #bbb;border-radius:6px;padding:.5rem 1rem;background:#fafafa}
.note{background:#fff3cd;border:1px solid #e0c36a;padding:.5rem 1rem;border-radius:6px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .6rem}
label{display:block;margin:.2rem 0}textarea{width:100%;min-height:5rem}nav a{margin-right:1rem}"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}"
            f"</title><style>{_STYLE}</style></head><body>{body}</body></html>")


def _prompt(question: written.WrittenQuestion) -> str:
    """The question as the student read it (the instructor's Markdown, rendered inert)."""
    if not question.prompt:
        return ""
    return (f"<details open><summary>The question</summary>{render_answer(question.prompt)}"
            "</details>")


def _answer_page(key: tuple[str, str], position: int, students: list[str], text: str,
                 score: Score | None, question: written.WrittenQuestion, view: dict) -> str:
    exercise, name = key
    student = students[position]
    who = _pseudonym(student, exercise) if view["anonymous"] else student
    base = f"/answer/{urllib.parse.quote(exercise)}/{urllib.parse.quote(name)}"
    items = "".join(
        f"<label><input type=checkbox name=item value={i}"
        f"{' checked' if score and i in score.ticked else ''}> {html.escape(item.item)} "
        f"({gradebook.number(item.points)})</label>" for i, item in enumerate(question.rubric))
    saved = ("<p>Not scored yet.</p>" if score is None else
             f"<p>Scored {gradebook.number(score.points)} by {html.escape(score.grader)} at "
             f"{html.escape(score.saved_at)} (version {score.version}).</p>")
    note = (f"<p class=note>Saved. It replaced {html.escape(view['replaced'])}: both are in the "
            "history.</p>" if view.get("replaced") else "")
    nav = []
    if position > 0:
        nav.append(f"<a href='{base}/{position - 1}'>previous</a>")
    if position + 1 < len(students):
        nav.append(f"<a href='{base}/{position + 1}'>next</a>")
    points = "" if score is None else gradebook.number(score.points)
    body = (f"<nav><a href='/'>all questions</a>{''.join(nav)}</nav>"
            f"<h1>{html.escape(exercise)} {html.escape(name)}: {html.escape(who)}</h1>"
            f"<p>Answer {position + 1} of {len(students)}.</p>{note}{_prompt(question)}"
            f"<div class=answer>{render_answer(text)}</div>"
            f"<details><summary>Model answer</summary>{render_answer(question.model_answer)}"
            f"</details>{saved}"
            f"<form method=post action='{base}/{position}'>"
            f"<fieldset><legend>Rubric (out of {gradebook.number(question.points)})</legend>"
            f"{items}</fieldset>"
            f"<label>Points (empty: the items ticked) <input name=points value='{points}' "
            f"inputmode=decimal></label>"
            f"<label>Comment to the student <textarea name=comment>"
            f"{html.escape(score.comment if score else '')}</textarea></label>"
            f"<label>Your name <input name=grader required value='{html.escape(view['grader'])}'>"
            f"</label><input type=hidden name=version value={score.version if score else 0}>"
            f"<input type=hidden name=csrf value='{view['csrf']}'>"
            f"<button name=then value=stay>Save</button> "
            f"<button name=then value=next>Save and next</button></form>")
    return _page(f"{exercise} {name}", body)


def _index_page(store: ReviewStore, questions: Questions) -> str:
    rows = []
    for (exercise, name), (scored, total) in store.progress().items():
        if (exercise, name) not in questions.found:
            continue
        link = f"/answer/{urllib.parse.quote(exercise)}/{urllib.parse.quote(name)}/0"
        rows.append(f"<tr><td>{html.escape(exercise)}</td><td><a href='{link}'>"
                    f"{html.escape(name)}</a></td><td>{scored} / {total}</td></tr>")
    table = ("<table><tr><th>exercise</th><th>question</th><th>scored</th></tr>"
             f"{''.join(rows)}</table>" if rows else "<p>No written answers to review.</p>")
    return _page("Written answers", f"<h1>Written answers</h1>{table}")


def _form(body: bytes) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def _parse_points(text: str, question: written.WrittenQuestion, ticked: list[int]) -> float:
    if not text.strip():
        return points_for(question, ticked)
    try:
        points = float(text.replace(",", "."))
    except ValueError:
        raise ValueError(f"points must be a number, got {text!r}") from None
    if not 0 <= points <= question.points:
        raise ValueError(f"points must lie between 0 and {gradebook.number(question.points)}, "
                         f"got {gradebook.number(points)}")
    return points


def create_app(store: ReviewStore, questions: Questions, token: str, anonymous: bool = False):
    """The review page as a Starlette app; every request needs ``token`` (query or cookie)."""
    # Imported here: only the page needs the web framework.
    # pylint: disable=import-outside-toplevel
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route

    csrf = hmac.new(token.encode(), b"csrf", hashlib.sha256).hexdigest()

    def allowed(request: Request) -> bool:
        given = request.query_params.get("token") or request.cookies.get(_COOKIE, "")
        return hmac.compare_digest(given.encode(), token.encode())

    def respond(content: str, status: int = 200, remember: bool = False) -> Response:
        response = HTMLResponse(content, status_code=status, headers={
            "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})
        if remember:
            response.set_cookie(_COOKIE, token, httponly=True, samesite="strict")
        return response

    def denied() -> Response:
        return respond(_page("Token needed", "<p>Open the URL with <code>?token=...</code> that "
                                             "<code>labsupport review</code> printed.</p>"), 403)

    async def index(request: Request) -> Response:
        if not allowed(request):
            return denied()
        return respond(_index_page(store, questions), remember=True)

    async def answer(request: Request) -> Response:
        if not allowed(request):
            return denied()
        key = (request.path_params["exercise"], request.path_params["question"])
        question = questions.found.get(key)
        students = store.students(*key) if question else []
        position = request.path_params["position"]
        if not students or not 0 <= position < len(students):
            return respond(_page("Not found", "<p>No such answer.</p>"), 404)
        view = {"anonymous": anonymous, "csrf": csrf,
                "grader": request.cookies.get("grader", ""), "replaced": ""}
        if request.method == "POST":
            form = _form(await request.body())
            if not hmac.compare_digest(form.get("csrf", [""])[0], csrf):
                return denied()
            ticked = [int(i) for i in form.get("item", []) if i.isdigit()
                      and int(i) < len(question.rubric)]
            grader = form.get("grader", [""])[0]
            try:
                points = _parse_points(form.get("points", [""])[0], question, ticked)
                saved = store.save((*key, students[position]), points, ticked,
                                   form.get("comment", [""])[0], grader,
                                   int(form.get("version", ["0"])[0] or 0))
            except ValueError as error:
                return respond(_page("Not saved", f"<p class=note>Not saved: "
                                                  f"{html.escape(str(error))}. Go back and fix "
                                                  "it.</p>"), 400)
            if form.get("then", [""])[0] == "next" and position + 1 < len(students) \
                    and not saved.replaced:
                target = (f"/answer/{urllib.parse.quote(key[0])}/{urllib.parse.quote(key[1])}/"
                          f"{position + 1}")
                response = RedirectResponse(target, status_code=303)
                response.set_cookie("grader", grader.strip(), samesite="strict")
                return response
            view.update(grader=grader.strip(), replaced=saved.replaced)
        page = _answer_page(key, position, students, store.answer(*key, students[position]),
                            store.score(*key, students[position]), question, view)
        response = respond(page, remember=True)
        if view["grader"]:
            response.set_cookie("grader", view["grader"], samesite="strict")
        return response

    return Starlette(routes=[
        Route("/", index),
        Route("/answer/{exercise}/{question}/{position:int}", answer, methods=["GET", "POST"]),
    ])


def serve(app, port: int = 0, announce=print) -> None:  # pragma: no cover - runs until stopped
    """Serve ``app`` on 127.0.0.1 (``port`` 0: a free one), announcing the URL once bound."""
    import uvicorn  # pylint: disable=import-outside-toplevel
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    # Listening before the URL is announced: a browser that opens it at once waits in the backlog
    # until uvicorn accepts, instead of being refused while uvicorn still starts (a CI flake).
    sock.listen(128)
    announce(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])


# --- the offline path ---------------------------------------------------------------------------


def export_html(store: ReviewStore, questions: Questions, anonymous: bool = False) -> str:
    """Every answer, with the model answer, the rubric (its items numbered as the CSV's
    ``ticked`` column numbers them) and the score so far, as one self-contained, inert page."""
    parts = ["<h1>Written answers</h1><p>Score them in the CSV of <code>labsupport review "
             "--csv</code>: <code>points</code>, or the rubric items met in <code>ticked</code> "
             "by their numbers here (<code>1;3</code>; the points then follow), and a "
             "<code>comment</code> to the student.</p>"]
    for key, question in sorted(questions.found.items()):
        parts.append(f"<h2>{html.escape(key[0])} {html.escape(key[1])} "
                     f"({gradebook.number(question.points)} points)</h2>"
                     f"{_prompt(question)}<ol>" + "".join(
                         f"<li>{html.escape(item.item)} ({gradebook.number(item.points)})</li>"
                         for item in question.rubric) + "</ol><details><summary>Model answer"
                     f"</summary>{render_answer(question.model_answer)}</details>")
        for student in store.students(*key):
            who = _pseudonym(student, key[0]) if anonymous else student
            score = store.score(*key, student)
            shown = "not scored" if score is None else \
                f"{gradebook.number(score.points)} by {score.grader}"
            parts.append(f"<h3>{html.escape(who)} — {html.escape(shown)}</h3><div class=answer>"
                         f"{render_answer(store.answer(*key, student))}</div>")
    page = _page("Written answers", "".join(parts))
    return page.replace("<head>", f"<head><meta http-equiv=Content-Security-Policy "
                                  f"content=\"{CSP}\">", 1)


def _items_text(ticked: Iterable[int]) -> str:
    """Rubric items as the CSV numbers them, from 1 as the exported page lists them: ``1;3``."""
    return ticked_text(i + 1 for i in ticked)


def _items_of(text: str, question: written.WrittenQuestion) -> list[int]:
    """The rubric items (from 0, as stored) of a CSV's ``ticked`` cell (numbered from 1)."""
    try:
        numbers = ticked_of(text)
    except ValueError:
        raise ValueError(f"ticked must list rubric item numbers such as 1;3, got {text!r}") \
            from None
    if any(not 1 <= n <= len(question.rubric) for n in numbers):
        raise ValueError(f"ticked items must be rubric item numbers 1..{len(question.rubric)} "
                         f"(as the exported page numbers them), got {text!r}")
    return [n - 1 for n in numbers]


def export_csv(store: ReviewStore, questions: Questions) -> str:
    """One row per answer: its score so far (empty when none), for editing in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for key, question in sorted(questions.found.items()):
        for student in store.students(*key):
            score = store.score(*key, student)
            writer.writerow([gradebook.csv_cell(key[0]), gradebook.csv_cell(key[1]),
                             gradebook.csv_student(student),
                             "" if score is None else gradebook.number(score.points),
                             gradebook.number(question.points),
                             "" if score is None else _items_text(score.ticked),
                             gradebook.csv_cell(score.comment) if score else "",
                             gradebook.csv_cell(score.grader) if score else "",
                             score.saved_at if score else "", score.version if score else 0])
    return out.getvalue()


@dataclass(frozen=True)
class Imported:
    """What :func:`import_csv` saved: how many scores, and one note per save that replaced an
    edit made since the export."""

    saved: int
    notes: tuple[str, ...]


def _question_of(row: Mapping[str, str], questions: Questions
                 ) -> tuple[tuple[str, str], written.WrittenQuestion]:
    """The written question a CSV row names; its exercise may be given as the notebook
    (``06_x.ipynb``, as the CSV exports it) or without ``.ipynb`` (as grades.csv heads it)."""
    exercise = gradebook.student_from_csv(row["exercise"]).strip()
    name = gradebook.student_from_csv(row["question"]).strip()
    if ":" in exercise:  # grades.csv's column form, 06_x:w1
        exercise, given = exercise.split(":", 1)
        name = name or given
    for key in ((exercise, name), (f"{exercise}.ipynb", name)):
        if key in questions.found:
            return key, questions.found[key]
    known = ", ".join(f"{e} {q}" for e, q in sorted(questions.found))
    raise ValueError(f"no written question {name!r} in {exercise!r}; the written questions "
                     f"under review are {known or 'none'} (exercise as the notebook's file "
                     "name, question as w1)")


def import_csv(store: ReviewStore, questions: Questions, text: str,
               grader: str = "", force: bool = False) -> Imported:
    """Save every row of an edited :func:`export_csv` file that has points or ticked items and
    differs from the stored score: all of them, or, when any row is wrong, none (ValueError
    names every wrong row).

    ``ticked`` decides the points: a row with both must agree (``points`` equal to its ticked
    items' points), a row with only ``ticked`` gets their points, a row with only ``points``
    keeps them with no item ticked. A row exported at ``version`` v is refused as a conflict
    when the stored score has since been saved (a later version) by another reviewer, unless
    ``force``. A row with only a comment is refused rather than dropped."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise ValueError(f"the CSV's header must be {','.join(CSV_COLUMNS)}, got "
                         f"{','.join(reader.fieldnames or ())}.")
    saves, lines, errors = [], [], []
    for line, row in enumerate(reader, start=2):
        try:
            save = _planned_save(store, questions, row, grader, force)
        except (ValueError, KeyError) as error:
            errors.append(f"row {line}: {error.args[0] if error.args else error}")
            continue
        if save is not None:
            saves.append(save)
            lines.append(line)
    if errors:
        raise ValueError("; ".join(errors) + ". Nothing was imported: fix the rows and import "
                         "the file again.")
    try:
        done = store.save_all(saves)
    except (ValueError, KeyError) as error:
        raise ValueError(f"{error.args[0] if error.args else error}. Nothing was imported.") \
            from None
    notes = tuple(f"row {line}: {save[0][2]}'s {save[0][1]} replaced {result.replaced}"
                  for line, save, result in zip(lines, saves, done) if result.replaced)
    return Imported(len(done), notes)


def _planned_save(store: ReviewStore, questions: Questions, row: Mapping[str, str],
                  grader: str, force: bool) -> tuple | None:
    """What one CSV row would save (None: nothing to save); ValueError/KeyError when wrong."""
    (exercise, name), question = _question_of(row, questions)
    student = gradebook.student_from_csv(row["student"] or "")
    key = (exercise, name, student)
    store.answer(*key)  # KeyError: no such answer
    comment = gradebook.student_from_csv(row["comment"] or "")
    try:
        version = int(row["version"] or 0)
    except ValueError:
        raise ValueError(f"version must be a whole number, got {row['version']!r}") from None
    if not (row["points"] or "").strip() and not (row["ticked"] or "").strip():
        if comment.strip() and version == 0:
            raise ValueError(f"{student}'s {name} has a comment but no points and no ticked "
                             "items; give one of them (0 is a score)")
        return None
    ticked = _items_of(row["ticked"] or "", question)
    points = _parse_points(row["points"] or "", question, ticked)
    if ticked and points != points_for(question, ticked):
        raise ValueError(f"{student}'s {name}: points {gradebook.number(points)} disagree with "
                         f"the ticked items {row['ticked']}, worth "
                         f"{gradebook.number(points_for(question, ticked))}; the ticked items "
                         "decide: correct or empty the points")
    who = grader or gradebook.student_from_csv(row["grader"] or "")
    before = store.score(*key)
    if before is not None and (before.points, set(before.ticked), before.comment) == \
            (points, set(ticked), comment):
        return None  # unchanged: re-saving would put the importer's name on another's score
    if before is not None and before.version > version and before.grader != who.strip() \
            and not force:
        raise ValueError(f"conflict: {student}'s {name} was exported at version {version}, "
                         f"but {before.grader} has since saved version {before.version} "
                         f"({gradebook.number(before.points)} points at {before.saved_at}); "
                         f"this row by {who or 'nobody named'} would replace it. Export again, "
                         "or import with --force to replace it")
    return (key, points, ticked, comment, who, version)


# --- the command ----------------------------------------------------------------------------------


def _run_review(args: argparse.Namespace) -> int:
    grading_dir = args.grading_dir
    try:
        exercises = sorted({result.exercise for result in gradebook.read_results(grading_dir)})
        solutions = [args.root / authoring.SOLUTIONS / name for name in exercises]
        missing = [str(path) for path in solutions if not path.is_file()]
        if missing:
            raise ValueError(f"no solution notebook {', '.join(missing)} (run from the lab's top "
                             "folder or pass --root)")
        questions = Questions.from_solutions(solutions)
        store = ReviewStore(grading_dir / DATABASE)
        count = load_results(store, grading_dir, questions)
        if args.import_csv:
            imported = import_csv(store, questions,
                                  args.import_csv.read_text(encoding="utf-8"), args.grader,
                                  args.force)
            for note in imported.notes:
                print(f"note: {note}", file=sys.stderr)
            print(f"imported {imported.saved} score(s) from {args.import_csv}; run labsupport "
                  "grade again (or labsupport export) to put them in the reports")
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.export:
        args.export.write_text(export_html(store, questions, args.anonymous), encoding="utf-8")
        print(f"wrote {args.export}")
    if args.csv:
        args.csv.write_text(export_csv(store, questions), encoding="utf-8")
        print(f"wrote {args.csv}")
    if args.export or args.csv or args.import_csv:
        return 0
    token = secrets.token_urlsafe(24)
    app = create_app(store, questions, token, anonymous=args.anonymous)
    print(f"{count} written answers in {grading_dir / DATABASE}")
    serve(app, args.port, lambda port: print(
        f"Review page: http://127.0.0.1:{port}/?token={token}  (Ctrl-C stops it)", flush=True))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # pylint: disable=protected-access
    """Add ``labsupport review`` to the command's sub-parsers."""
    parser = subparsers.add_parser(
        "review", help="score written answers on a local page (or export/import them)")
    parser.add_argument("grading_dir", type=Path, metavar="GRADING_DIR",
                        help="the folder `labsupport grade -o` wrote")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="the lab's top folder, holding solutions/ (default: current one)")
    parser.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    parser.add_argument("--anonymous", action="store_true",
                        help="hide student ids on the page and in the export")
    parser.add_argument("--export", type=Path, metavar="HTML",
                        help="write every answer to one HTML file instead of serving the page")
    parser.add_argument("--csv", type=Path, metavar="CSV",
                        help="write the scores so far to a CSV to edit offline")
    parser.add_argument("--import", dest="import_csv", type=Path, metavar="CSV",
                        help="save the scores of an edited CSV: every row, or none when any "
                             "row is wrong")
    parser.add_argument("--force", action="store_true",
                        help="with --import: replace scores another reviewer saved after the "
                             "export (refused as conflicts otherwise)")
    parser.add_argument("--grader", default="",
                        help="who is importing (default: the CSV's grader column)")
    parser.set_defaults(handler=_run_review)
