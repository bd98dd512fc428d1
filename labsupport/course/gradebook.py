"""The grader's records and what it writes from them: gradebook CSVs, feedback, atomic files.

A graded submission is a :class:`SubmissionResult`, stored as one JSON file per student and
exercise under ``OUT/results/``. Everything else in the output directory (``grades.csv``,
``results_long.csv``, ``feedback/<student>.md``) is rebuilt from those files by
:func:`write_reports`, sorted, with no timestamps, so the same results always give the same
bytes — and a merge of shard directories gives exactly what one run over the whole class gives.

Everything a student controls (their folder name, their error messages, their answers) reaches an
instructor's spreadsheet, terminal or Markdown viewer through this module, so it is made harmless
on the way out: text is never allowed to fail to encode (lone surrogates, undecodable bytes),
control and terminal escape characters are written as visible escapes, CSV cells that a
spreadsheet would run as a formula are neutralised, Markdown and HTML are escaped and messages are
fenced, and every message is cut to a length with a note saying so. A student id is kept exactly:
:func:`csv_student` writes it reversibly and :func:`student_from_csv` reads it back.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mistune

from labsupport.course import reviewstore

if TYPE_CHECKING:  # the policy module imports this one; only its type is needed here
    from labsupport.course.policy import Grade

#: Submission statuses; ``ok`` means the notebook ran (cells may still have raised) and every
#: test was run against the live kernel; ``cell-timeout`` the same, except that a cell ran over
#: its time and was interrupted. ``start-failed`` and ``grader-error`` are the grader's faults.
STATUSES = ("ok", "cell-timeout", "invalid", "missing", "kernel-died", "kernel-broken", "hung",
            "timeout", "start-failed", "grader-error")
#: Statuses that say the grader failed, not the student: a re-run grades these rows again.
GRADER_FAULTS = frozenset({"start-failed", "grader-error"})
#: Version 2: ASCII-only JSON and results stored under :func:`safe_name` with a hash suffix.
RESULT_FORMAT = 2
#: Longest message (characters) kept in a stored result, in a CSV cell and in the feedback.
STORED_MESSAGE_CHARS = 20_000
CSV_MESSAGE_CHARS = 2_000
FEEDBACK_MESSAGE_CHARS = 10_000


@dataclass(frozen=True)
class TestResult:
    """One test of one submission, with the points it earned."""

    __test__ = False  # not a pytest test class

    question: str
    test: str
    hidden: bool
    points: float
    max_points: float
    status: str
    seconds: float
    message: str
    instructor_message: str


@dataclass(frozen=True)
class SubmissionResult:  # pylint: disable=too-many-instance-attributes  # one per stored key
    """One student's grade on one exercise.

    Attributes
    ----------
    student, exercise
        Who (folder or file name) and which exercise (solution file name).
    notebook
        The graded file, relative to the submissions directory ("" when none was found).
    status, reason
        ``ok`` or what went wrong (:data:`STATUSES`), and why, in words.
    questions
        ``(name, points)`` of every question of the exercise, in notebook order.
    tests
        Every test of the exercise, in order, with its outcome.
    notes
        Problems worth telling the student (cells that raised or timed out).
    fingerprint
        Hash of the submission, solution and limits: a re-run skips an unchanged submission.
    written
        ``(question, points, text)`` of each written answer the exercise asks for
        (:mod:`.written`): plain text, never executed, scored by people on the review page
        (:mod:`.reviewstore`); ``""`` when the notebook holds none.
    inputs
        ``(what, hash)`` of each input apart (``notebook``, ``solution``, ``limits``), so a
        regrade can say which one changed (empty in results stored before they were kept).
    """

    student: str
    exercise: str
    notebook: str
    status: str
    reason: str
    questions: tuple[tuple[str, float], ...]
    tests: tuple[TestResult, ...]
    notes: tuple[str, ...]
    fingerprint: str
    written: tuple[tuple[str, float, str], ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()

    @property
    def score(self) -> float:
        """Points earned over all tests."""
        return sum(t.points for t in self.tests)

    @property
    def possible(self) -> float:
        """Points available."""
        return sum(points for _, points in self.questions)

    def question_score(self, question: str) -> float:
        """Points earned on ``question``."""
        return sum(t.points for t in self.tests if t.question == question)

    def to_json(self) -> str:
        """The stored form (sorted keys, one trailing newline)."""
        data = asdict(self)
        data["format"] = RESULT_FORMAT
        # ASCII only: a lone surrogate or an undecodable byte in a name or message is written as
        # a JSON escape, which json reads back to exactly the same string.
        return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SubmissionResult:
        """Read a stored result; ValueError if it is not one this version wrote."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.pop("format", None) != RESULT_FORMAT:
            raise ValueError("not a grading result of this labsupport version")
        data["questions"] = tuple((name, float(points)) for name, points in data["questions"])
        data["tests"] = tuple(TestResult(**test) for test in data["tests"])
        data["notes"] = tuple(data["notes"])
        data["written"] = tuple((name, float(points), text)
                                for name, points, text in data.get("written", ()))
        data["inputs"] = tuple((what, digest) for what, digest in data.get("inputs", ()))
        return cls(**data)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``.

    A reader sees the old file or the new one, never half of one; an interrupted write leaves
    the old file in place and removes the temporary one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # backslashreplace: whatever slips through, one odd character never loses a gradebook.
        with os.fdopen(handle, "w", encoding="utf-8", errors="backslashreplace",
                       newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _exact_bytes(student: str) -> bytes:
    """The id as bytes, one-to-one: surrogatepass keeps lone surrogates distinct too."""
    return student.encode("utf-8", "surrogatepass")


def safe_name(student: str) -> str:
    """The file name (without extension) used for ``student``'s feedback and results.

    A readable part (letters and digits of the NFC form, other characters as ``_``, at most 40
    characters, never starting with a dot or dash) and a hash of the exact id, so two different
    ids never share a file: ``Zoë`` typed as one character or as ``e`` plus a combining mark,
    ``a b`` and ``a_b``, or two names in a script that has no readable part here.
    """
    readable = "".join(c if c.isalnum() or c in "._+@-" else "_"
                       for c in unicodedata.normalize("NFC", student))
    readable = readable.lstrip("._-+@")[:40].rstrip("._-+@") or "student"
    return f"{readable}-{hashlib.sha256(_exact_bytes(student)).hexdigest()[:12]}"


def result_path(out_dir: Path, student: str, exercise: str) -> Path:
    """Where the result of ``student`` on ``exercise`` is stored."""
    return out_dir / "results" / safe_name(student) / f"{Path(exercise).stem}.json"


def feedback_path(out_dir: Path, student: str) -> Path:
    """Where ``student``'s feedback is written."""
    return out_dir / "feedback" / f"{safe_name(student)}.md"


# --- text made safe for whoever opens the reports ------------------------------------------------

# Characters a terminal, spreadsheet or viewer would act on or hide: C0 and C1 controls, DEL,
# Unicode's bidirectional and line/paragraph separators, and lone surrogates (undecodable bytes
# from ``surrogateescape`` are U+DC80..U+DCFF and are written as the byte, ``\\xNN``).
_INVISIBLE = [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F,
              *range(0x2028, 0x202F), *range(0x2066, 0x206A), 0xFEFF]
_ESCAPES = {code: f"\\u{code:04x}" for code in _INVISIBLE}
_ESCAPES.update({code: f"\\u{code:04x}" for code in range(0xD800, 0xE000)})
_ESCAPES.update({code: f"\\x{code - 0xDC00:02x}" for code in range(0xDC80, 0xDD00)})
_MESSAGE_ESCAPES = {k: v for k, v in _ESCAPES.items() if chr(k) not in "\n\t"}
_ID_ESCAPES = {**_ESCAPES, ord("\\"): "\\\\"}
_UNESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})")
# OWASP's CSV injection rule: a cell starting with one of these is run as a formula.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
#: A plain decimal number, which no spreadsheet runs: ``-1`` stays a number (an override that
#: takes points away), not the text ``'-1``.
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def printable(text: str) -> str:
    """``text`` with control, terminal-escape, bidirectional and surrogate characters written as
    visible escapes (``\\u001b``; an undecodable byte as ``\\xe9``); newlines and tabs kept."""
    return text.translate(_MESSAGE_ESCAPES)


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [... cut: {len(text) - limit:,} more characters]"


def csv_student(student: str) -> str:
    """The CSV form of a student id: exact for printable text, reversible for the rest.

    A backslash is doubled, an undecodable byte of the folder name is written ``\\xNN``,
    a control or invisible character ``\\uNNNN``; :func:`student_from_csv` undoes it (the
    spreadsheet guard ``'`` that :func:`csv_cell` adds included).
    """
    return student.translate(_ID_ESCAPES)


def _unescape(match: re.Match) -> str:
    code = match.group(1)
    if code == "\\":
        return "\\"
    value = int(code[1:], 16)
    return chr(0xDC00 + value if code[0] == "x" and value >= 0x80 else value)


def student_from_csv(cell: str) -> str:
    """The exact student id from its cell in ``grades.csv`` or ``results_long.csv``."""
    if _FORMULA.match(cell) and cell.startswith("'"):
        cell = cell[1:]
    return _UNESCAPE.sub(_unescape, cell)


def csv_cell(text: str) -> str:
    """``text`` as a spreadsheet can open it safely: a cell that starts with ``= + - @``, a tab
    or a carriage return (possibly after quotes) gets a leading ``'``, so it is read as text. A
    plain decimal number (``-1``, ``-0.5``) is left a number: it cannot run."""
    return f"'{text}" if _FORMULA.match(text) and not _NUMBER.fullmatch(text) else text


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|!~&$])")


_HTML = mistune.create_markdown(escape=True)


def markdown_html(text: str) -> str:
    """Markdown as inert HTML: raw HTML shown as text, and links or images to anything but
    http(s) and mailto disabled (mistune's safe URLs). For feedback pages and written answers."""
    return _HTML(text)


def markdown_text(text: str) -> str:
    """``text`` as one line of literal Markdown: no markup, no HTML, no new line or heading."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text.translate(_ESCAPES))


def markdown_code(text: str) -> str:
    """``text`` as an inline code span that no backtick in it can close."""
    text = text.translate(_ESCAPES)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown_block(text: str, indent: str = "") -> list[str]:
    """``text`` as a fenced block whose fence is longer than any run of backticks in it."""
    text = printable(text).replace("\t", "    ")
    fence = "`" * max(3, max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return [f"{indent}{fence}text", *(f"{indent}{line}" for line in text.splitlines()),
            f"{indent}{fence}"]


#: What a written answer's cell shows until someone has scored it (never a zero).
PENDING = "pending"


def written_scores(directory: Path) -> dict[tuple[str, str, str], reviewstore.Score]:
    """The scores people gave written answers (``directory/review.sqlite``), keyed by
    ``(student, exercise, question)``; empty while nobody has reviewed any."""
    path = directory / reviewstore.DATABASE
    if not path.is_file():
        return {}
    return {(s.student, s.exercise, s.question): s for s in reviewstore.ReviewStore(path).scores()}


def read_results(directory: Path) -> list[SubmissionResult]:
    """Every stored result under ``directory/results``, sorted by student and exercise.

    Raises
    ------
    ValueError
        A file there is not a result this version wrote (it names the file).
    """
    results = []
    for path in sorted((directory / "results").glob("*/*.json")):
        try:
            results.append(SubmissionResult.from_json(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(f"{path}: {error}; grade into a new output directory (or remove "
                             "its results/)") from None
    return sorted(results, key=lambda r: (r.student, r.exercise))


def number(value: float) -> str:
    """Points as text: integers without decimals, others to 4 decimals (deterministic)."""
    rounded = round(value + 0.0, 4)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.4f}".rstrip("0")


def _columns(results: list[SubmissionResult]) -> list[tuple[str, str, str]]:
    """``(exercise, question, column name)`` in exercise then notebook order, the written
    questions after the tested ones."""
    exercises = sorted({r.exercise for r in results})
    prefix = len(exercises) > 1
    seen: dict[str, list[str]] = {}
    for result in results:
        seen.setdefault(result.exercise, [name for name, _ in result.questions]
                        + [name for name, _, _ in result.written])
    return [(exercise, name, f"{Path(exercise).stem}:{name}" if prefix else name)
            for exercise in exercises for name in seen[exercise]]


def csv_text(rows: list[list[str]]) -> str:
    """``rows`` as CSV text, every cell made safe to open (:func:`csv_cell`)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([csv_cell(cell) for cell in row]
                                                      for row in rows)
    return buffer.getvalue()


def _cell(points: float | str) -> str:
    return points if isinstance(points, str) else number(points)


def _given(result: SubmissionResult, written: Mapping[tuple[str, str, str], reviewstore.Score],
           grade: Grade | None) -> list[tuple[str, float, float | None]]:
    """``(question, max, points)`` of each written question of ``result``: the points after the
    course policy (``grade``), else those people gave; ``None`` while pending, 0 for a
    ``missing`` hand-in (there is no answer to review)."""
    if grade is not None:
        final = dict(grade.written)
        return [(name, maximum, final.get(name)) for name, maximum, _ in result.written]
    found = []
    for name, maximum, _ in result.written:
        score = written.get((result.student, result.exercise, name))
        found.append((name, maximum, 0.0 if result.status == "missing"
                       else None if score is None else score.points))
    return found


def _written_cells(student: str, mine: Mapping[str, SubmissionResult],
                   written: Mapping[tuple[str, str, str], reviewstore.Score], multi: bool,
                   grades: Mapping[tuple[str, str], Grade] | None = None
                   ) -> tuple[dict[tuple[str, str], float | str], list[str]]:
    """The written questions' cells of ``student`` (points, or :data:`PENDING`) and the
    status words of those still pending."""
    cells: dict[tuple[str, str], float | str] = {}
    pending = []
    for result in mine.values():
        grade = grades.get((student, result.exercise)) if grades else None
        for name, _, points in _given(result, written, grade):
            cells[(result.exercise, name)] = PENDING if points is None else points
            if points is None:
                pending.append(f"{Path(result.exercise).stem}:{name}:{PENDING}" if multi
                               else f"{name}:{PENDING}")
    return cells, pending


def _tested_cells(student: str, mine: Mapping[str, SubmissionResult],
                  columns: list[tuple[str, str, str]],
                  grades: Mapping[tuple[str, str], Grade] | None
                  ) -> tuple[dict[tuple[str, str], float | str], float, list[str]]:
    """The tested questions' points of ``student``, the total, and (under a course policy)
    the ``raw``, ``override`` and ``late_penalty`` cells."""
    if grades is None:
        points: dict[tuple[str, str], float | str] = {
            (e, q): mine[e].question_score(q) for e, q, _ in columns if e in mine}
        return points, sum(r.score for r in mine.values()), []
    adjusted = [grades[(student, e)] for e in sorted(mine)]
    points = {(g.exercise, q): p for g in adjusted for q, p in g.questions}
    extra = [number(sum(getattr(g, field) for g in adjusted))
             for field in ("raw", "override", "late_penalty")]
    return points, sum(g.final for g in adjusted), extra


def _status(mine: Mapping[str, SubmissionResult], exercises: list[str], pending: list[str]
            ) -> str:
    """``ok``, or what is not: each exercise's grading problem, the written answers still
    pending, the exercises not handed in (named by exercise when there are several)."""
    multi = len(exercises) > 1
    problems = [f"{Path(e).stem}:{mine[e].status}" if multi else mine[e].status
                for e in exercises if e in mine and mine[e].status != "ok"]
    missing = [f"{Path(e).stem}:missing" for e in exercises if e not in mine]
    return ";".join(problems + pending + missing) or "ok"


def grades_csv(results: list[SubmissionResult],
               grades: Mapping[tuple[str, str], Grade] | None = None,
               written: Mapping[tuple[str, str, str], reviewstore.Score] | None = None) -> str:
    """One row per student: a column per question, total, possible, percent, status.

    With ``grades`` (the course policy applied, :func:`labsupport.course.policy.apply`), the
    question columns hold the points after overrides, ``raw``, ``override`` and
    ``late_penalty`` come before ``total``, and ``total`` is the final grade. A written
    question's column holds the points people gave it (``written``, see
    :func:`written_scores`), or :data:`PENDING` until then, never a zero; the total adds the
    scored ones, ``possible`` counts them all, ``percent`` stays empty (as the LMS exports'
    grade cell does) and the status says ``w1:pending``.
    """
    written = written or {}
    columns = _columns(results)
    policy = ["raw", "override", "late_penalty"] if grades is not None else []
    by_student: dict[str, dict[str, SubmissionResult]] = {}
    for result in results:
        by_student.setdefault(result.student, {})[result.exercise] = result
    possible = {r.exercise: r.possible + sum(p for _, p, _ in r.written) for r in results}
    total_possible = sum(possible.values())
    rows = [["student", *(c for _, _, c in columns), *policy, "total", "possible", "percent",
             "status"]]
    for student in sorted(by_student):
        mine = by_student[student]
        points, total, extra = _tested_cells(student, mine, columns, grades)
        scored, pending = _written_cells(student, mine, written, len(possible) > 1, grades)
        points.update(scored)
        if grades is None:  # under a policy, the grade's final already holds them
            total += sum(p for p in scored.values() if not isinstance(p, str))
        percent = 100 * total / total_possible if total_possible else 0.0
        rows.append([csv_student(student),
                     *(_cell(points.get((e, q), 0.0)) for e, q, _ in columns), *extra,
                     number(total), number(total_possible),
                     "" if pending else f"{percent:.2f}",
                     _status(mine, sorted(possible), pending)])
    return csv_text(rows)


def results_long_csv(results: list[SubmissionResult], timings: bool = False,
                     written: Mapping[tuple[str, str, str], reviewstore.Score] | None = None
                     ) -> str:
    """One row per student and test, for the instructor (hidden tests' messages included);
    ``seconds`` is blank unless ``timings``, since timings differ from run to run. Each
    written answer follows as a row whose test is ``(written)``: the points people gave
    (``written``), or empty points and status :data:`PENDING` until then."""
    written = written or {}
    multi = len({r.exercise for r in results}) > 1
    rows = [["student", "question", "test", "points", "max", "status", "seconds", "message"]]
    for result in results:
        for test in result.tests:
            question = f"{Path(result.exercise).stem}:{test.question}" if multi else test.question
            rows.append([csv_student(result.student), printable(question),
                         printable(test.test), number(test.points), number(test.max_points),
                         test.status, f"{test.seconds:.3f}" if timings else "",
                         cut(printable(test.message), CSV_MESSAGE_CHARS)])
        for name, maximum, points in _given(result, written, None):
            question = f"{Path(result.exercise).stem}:{name}" if multi else name
            status = PENDING if points is None else \
                "missing" if result.status == "missing" else "scored"
            rows.append([csv_student(result.student), printable(question), "(written)",
                         "" if points is None else number(points), number(maximum), status,
                         "", ""])
    return csv_text(rows)


def _message_block(text: str, indent: str = "") -> list[str]:
    return markdown_block(cut(text, FEEDBACK_MESSAGE_CHARS), indent)


def _question_lines(result: SubmissionResult, grade: Grade | None,
                    written: Mapping[tuple[str, str, str], reviewstore.Score]) -> list[str]:
    """Feedback on each tested question (its tests, public messages in full, hidden tests'
    instructor message only), then each written one (points and comment, or pending)."""
    lines: list[str] = []
    earned = dict(grade.questions) if grade else {}
    for question, points in result.questions:
        score = earned.get(question, result.question_score(question))
        lines += [f"### {markdown_text(question)}: {number(score)} / {number(points)}", ""]
        for test in (t for t in result.tests if t.question == question):
            kind = "hidden" if test.hidden else "public"
            lines.append(f"- {markdown_code(test.test)} ({kind}): "
                         f"**{markdown_text(test.status)}**, "
                         f"{number(test.points)} / {number(test.max_points)}")
            if test.hidden and test.status != "passed" and test.instructor_message:
                lines.append(f"  - {markdown_text(cut(test.instructor_message, 2000))}")
            elif not test.hidden and test.message:
                lines += ["", *_message_block(test.message, "  ")]
        lines.append("")
    for name, maximum, points in _given(result, written, grade):
        score = written.get((result.student, result.exercise, name))
        shown = "pending review" if points is None else f"{number(points)} / {number(maximum)}"
        lines += [f"### {markdown_text(name)} (written): {shown}", ""]
        if points is not None and score is not None and score.items:
            lines += ["Rubric items met:", "", *(f"- {markdown_text(item)} ({number(worth)})"
                                                 for item, worth in score.items), ""]
        if score is not None and score.comment:
            lines += [*_message_block(score.comment), ""]
    return lines


def feedback_markdown(student: str, results: list[SubmissionResult],
                      grades: Mapping[tuple[str, str], Grade] | None = None,
                      written: Mapping[tuple[str, str, str], reviewstore.Score] | None = None
                      ) -> str:
    """The student's feedback: public tests in full, hidden tests by name and the instructor's
    message only.

    Whatever the student controls is escaped or fenced: names and file names are literal text
    or code spans, messages are fenced blocks cut to :data:`FEEDBACK_MESSAGE_CHARS`, so an error
    message cannot forge a heading, raw HTML or a closing fence. With ``grades`` (the course
    policy applied), the heading gives the final grade and a list says what the policy changed
    and why (extensions, overrides, the late penalty). Written answers follow the tested
    questions: the points and comment people gave, or "pending review" (``written``, see
    :func:`written_scores`).
    """
    written = written or {}
    lines = [f"# Feedback for {markdown_text(student)}", ""]
    for result in sorted(results, key=lambda r: r.exercise):
        grade = grades.get((result.student, result.exercise)) if grades else None
        given = _given(result, written, grade)
        earned = grade.final if grade else \
            result.score + sum(p for _, _, p in given if p is not None)
        waiting = [name for name, _, points in given if points is None]
        lines += [f"## {markdown_text(result.exercise)}: {number(earned)} / "
                  f"{number(result.possible + sum(m for _, m, _ in given))}"
                  + (f" ({markdown_text(', '.join(waiting))} pending review)" if waiting
                     else ""), ""]
        if grade is not None and grade.adjustments:
            lines += [f"Given by the tests and reviewers: {number(grade.raw)}. Changed by the "
                      "course's rules or your instructor:", ""]
            for change in grade.adjustments:
                what = f" of {markdown_text(change.question)}" if change.question else ""
                lines.append(f"- {markdown_text(change.kind)}{what}: "
                             f"{markdown_text(change.before)} to {markdown_text(change.after)}"
                             f" ({markdown_text(change.reason)})")
            lines.append("")
        if result.status != "ok":
            lines += [f"**Grading problem ({markdown_text(result.status)}):**", "",
                      *_message_block(result.reason), ""]
        if result.notebook:
            lines += [f"Graded notebook: {markdown_code(result.notebook)}", ""]
        lines += _question_lines(result, grade, written)
        if result.notes:
            lines += ["### Notes from running your notebook", ""]
            for note in result.notes:
                lines += ["-", *_message_block(note, "  ")]
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def write_reports(out_dir: Path, timings: bool = False,
                  grades: Mapping[tuple[str, str], Grade] | None = None) -> list[SubmissionResult]:
    """Rebuild ``grades.csv``, ``results_long.csv`` and ``feedback/`` from ``out_dir/results``
    (with ``grades``, under the course policy: :func:`labsupport.course.policy.write_reports`)."""
    results = read_results(out_dir)
    written = written_scores(out_dir)
    by_student: dict[str, list[SubmissionResult]] = {}
    for result in results:
        by_student.setdefault(result.student, []).append(result)
    for student, mine in sorted(by_student.items()):
        write_atomic(feedback_path(out_dir, student),
                     feedback_markdown(student, mine, grades, written))
    write_atomic(out_dir / "results_long.csv", results_long_csv(results, timings, written))
    write_atomic(out_dir / "grades.csv", grades_csv(results, grades, written))
    return results


# --- what a regrade changed ---------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A stored result replaced by a different one: a line of ``changes.csv``.

    ``question`` is a question whose points moved (``before`` and ``after`` are points), or
    ``status`` when only the status did; ``why`` names the inputs that changed.
    """

    student: str
    exercise: str
    question: str
    before: str
    after: str
    why: str


def changed_inputs(old: SubmissionResult, new: SubmissionResult) -> str:
    """Why ``new`` replaced ``old``: the inputs that differ (``notebook changed``, ...)."""
    before, after = dict(old.inputs), dict(new.inputs)
    if not before:
        return "regraded (the earlier result did not record its inputs)"
    moved = [what for what in ("notebook", "solution", "limits")
             if before.get(what) != after.get(what)]
    if moved:
        return ", ".join(f"{what} changed" for what in moved)
    if old.status in GRADER_FAULTS:
        return f"regraded after a grader fault ({old.status})"
    return "regraded with the same inputs (--force)"


def changes(old: SubmissionResult, new: SubmissionResult) -> list[Change]:
    """What differs between two results of one student's exercise, question by question."""
    why = changed_inputs(old, new)
    rows = [Change(new.student, new.exercise, question, number(old.question_score(question)),
                   number(new.question_score(question)), why)
            for question, _ in new.questions
            if round(old.question_score(question), 4) != round(new.question_score(question), 4)]
    if not rows and old.status != new.status:
        rows.append(Change(new.student, new.exercise, "status", old.status, new.status, why))
    return rows


def changes_csv(rows: list[Change]) -> str:
    """``changes.csv``: ``student, exercise, question, before, after, why``, sorted."""
    table = [["student", "exercise", "question", "before", "after", "why"]]
    table += [[csv_student(c.student), c.exercise, printable(c.question), c.before, c.after,
               c.why] for c in sorted(rows, key=lambda c: (c.student, c.exercise, c.question))]
    return csv_text(table)


def archive(out_dir: Path, old: SubmissionResult) -> Path:
    """Keep ``old`` (about to be replaced) as ``results/<name>/history/<exercise>.<n>.json``,
    ``n`` counting from 1, so every earlier result of a student stays readable."""
    folder = result_path(out_dir, old.student, old.exercise).parent / "history"
    stem = Path(old.exercise).stem
    taken = len(list(folder.glob(f"{glob.escape(stem)}.*.json"))) if folder.exists() else 0
    target = folder / f"{stem}.{taken + 1}.json"
    write_atomic(target, old.to_json())
    return target


def history(out_dir: Path, student: str, exercise: str) -> list[SubmissionResult]:
    """Every earlier result of ``student`` on ``exercise``, oldest first (see :func:`archive`)."""
    folder = result_path(out_dir, student, exercise).parent / "history"
    stem = Path(exercise).stem
    found = sorted(folder.glob(f"{glob.escape(stem)}.*.json"),
                   key=lambda p: int(p.suffixes[-2].lstrip(".")))
    return [SubmissionResult.from_json(p.read_text(encoding="utf-8")) for p in found]


def merge(shards: list[Path], out_dir: Path, timings: bool = False) -> list[SubmissionResult]:
    """Copy the stored results of several shard directories into ``out_dir`` and rebuild the
    reports; ValueError when two shards graded the same student and exercise differently."""
    merged: dict[tuple[str, str], SubmissionResult] = {}
    for shard in shards:
        if not (shard / "results").is_dir():
            raise ValueError(f"{shard} holds no results/ directory: is it a grading output?")
        for result in read_results(shard):
            key = (result.student, result.exercise)
            if key in merged and merged[key].fingerprint != result.fingerprint:
                raise ValueError(f"{key[0]} / {key[1]} was graded from different inputs in two "
                                 "shards; re-grade one of them")
            merged[key] = result
    for (student, exercise), result in sorted(merged.items()):
        write_atomic(result_path(out_dir, student, exercise), result.to_json())
    return write_reports(out_dir, timings)
