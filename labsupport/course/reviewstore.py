"""The scores of written answers: an SQLite database shared by every reviewer.

The review page and the offline CSV (:mod:`labsupport.course.review`) write here; the reports
(:mod:`labsupport.course.gradebook`) read the scores back into ``grades.csv`` and the feedback.
The database lives in the grading folder (:data:`DATABASE`), in WAL mode: every save is one
short transaction recording who saved it and when, and a save over a score someone else changed
since the reviewer's page showed it still wins but says whose edit it replaced, which the
history table keeps.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


def _number(value: float) -> str:
    return f"{value:g}"


#: The database's file name inside the grading folder.
DATABASE = "review.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    exercise TEXT NOT NULL, question TEXT NOT NULL, student TEXT NOT NULL, text TEXT NOT NULL,
    PRIMARY KEY (exercise, question, student));
CREATE TABLE IF NOT EXISTS scores (
    exercise TEXT NOT NULL, question TEXT NOT NULL, student TEXT NOT NULL,
    points REAL NOT NULL, ticked TEXT NOT NULL, comment TEXT NOT NULL,
    grader TEXT NOT NULL, saved_at TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (exercise, question, student));
CREATE TABLE IF NOT EXISTS rubric (
    exercise TEXT NOT NULL, question TEXT NOT NULL, position INTEGER NOT NULL,
    item TEXT NOT NULL, points REAL NOT NULL, PRIMARY KEY (exercise, question, position));
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, exercise TEXT NOT NULL, question TEXT NOT NULL,
    student TEXT NOT NULL, points REAL NOT NULL, ticked TEXT NOT NULL, comment TEXT NOT NULL,
    grader TEXT NOT NULL, saved_at TEXT NOT NULL, replaced TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Score:
    """A written answer's score as last saved.

    Attributes
    ----------
    exercise, question, student
        Which answer.
    points : float
        The points given.
    ticked : tuple of int
        The rubric items ticked (indices into the question's rubric).
    comment : str
        The reviewer's comment to the student.
    grader, saved_at
        Who saved it, and when (UTC, ISO 8601).
    version : int
        How many times it has been saved (1 for the first).
    items : tuple of (str, float)
        The ticked rubric items' text and points, as the question's rubric last loaded
        (:meth:`ReviewStore.load_rubric`) words them (empty when it was never loaded).
    """

    exercise: str
    question: str
    student: str
    points: float
    ticked: tuple[int, ...]
    comment: str
    grader: str
    saved_at: str
    version: int
    items: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Saved:
    """What a save did: the score now stored, and whose newer edit it replaced (``""``: none)."""

    score: Score
    replaced: str


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def ticked_text(ticked: Iterable[int]) -> str:
    """Rubric items ticked, as stored and in the CSV: ``"0;2"``."""
    return ";".join(str(i) for i in sorted(set(ticked)))


def ticked_of(text: str) -> tuple[int, ...]:
    """The rubric items of a stored ``"0;2"``."""
    return tuple(int(part) for part in text.split(";") if part.strip())


class ReviewStore:
    """The scores of written answers, in an SQLite database shared by every reviewer.

    Parameters
    ----------
    path : Path
        The database file (created with its tables when missing).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA busy_timeout = 30000")
        connection.execute("PRAGMA synchronous = FULL")  # a committed score survives a crash
        return connection

    def load_answers(self, answers: Iterable[tuple[str, str, str, str]]) -> int:
        """Store ``(exercise, question, student, text)`` answers (a regrade's new text replaces
        the old; scores are kept). Returns how many answers the store holds."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                "INSERT INTO answers VALUES (?, ?, ?, ?) ON CONFLICT (exercise, question, "
                "student) DO UPDATE SET text = excluded.text", list(answers))
            connection.execute("COMMIT")
            return connection.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def load_rubric(self, exercise: str, question: str,
                    items: Iterable[tuple[str, float]]) -> None:
        """Keep the rubric of a question (its items' text and points, in order), which the
        scores' :attr:`Score.items` name for the student's feedback."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("DELETE FROM rubric WHERE exercise = ? AND question = ?",
                               (exercise, question))
            connection.executemany("INSERT INTO rubric VALUES (?, ?, ?, ?, ?)", [
                (exercise, question, position, item, float(points))
                for position, (item, points) in enumerate(items)])
            connection.execute("COMMIT")

    def _rubrics(self, connection: sqlite3.Connection
                 ) -> dict[tuple[str, str, int], tuple[str, float]]:
        return {(e, q, i): (item, points) for e, q, i, item, points in connection.execute(
            "SELECT exercise, question, position, item, points FROM rubric").fetchall()}

    def students(self, exercise: str, question: str) -> list[str]:
        """The students with an answer to ``question``, sorted."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT student FROM answers WHERE exercise = ? AND question = ? "
                "ORDER BY student", (exercise, question)).fetchall()
        return [row[0] for row in rows]

    def answer(self, exercise: str, question: str, student: str) -> str:
        """The text ``student`` wrote (``""``: nothing); KeyError when there is no such answer."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT text FROM answers WHERE exercise = ? AND question = ? AND student = ?",
                (exercise, question, student)).fetchone()
        if row is None:
            raise KeyError(f"no answer of {student!r} to {exercise} {question}")
        return row[0]

    def score(self, exercise: str, question: str, student: str) -> Score | None:
        """The saved score of one answer, or None while nobody has scored it."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT * FROM scores WHERE exercise = ? AND question = ? AND student = ?",
                (exercise, question, student)).fetchone()
            rubrics = self._rubrics(connection)
        return None if row is None else _score(row, rubrics)

    def scores(self) -> list[Score]:
        """Every saved score, by exercise, question and student."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT * FROM scores ORDER BY exercise, question, student").fetchall()
            rubrics = self._rubrics(connection)
        return [_score(row, rubrics) for row in rows]

    def save(self, key: tuple[str, str, str], points: float, ticked: Iterable[int],
             comment: str, grader: str, seen_version: int) -> Saved:
        """Save a score for ``key`` = ``(exercise, question, student)``.

        ``seen_version`` is the version the reviewer's page showed (0: none). When the stored
        version is newer, someone else saved in between: this save still wins (last write
        wins), and :attr:`Saved.replaced` names the edit it replaced, which the history keeps.
        """
        return self.save_all([(key, points, ticked, comment, grader, seen_version)])[0]

    def save_all(self, saves: Iterable[tuple[tuple[str, str, str], float, Iterable[int], str,
                                             str, int]]) -> list[Saved]:
        """Save several scores, each as :meth:`save` takes it, in one transaction: every one of
        them or, when any is refused (ValueError, KeyError), none."""
        saves = list(saves)
        for _, points, _, _, grader, _ in saves:
            if not isinstance(points, (int, float)) or isinstance(points, bool) \
                    or not math.isfinite(points) or points < 0:
                raise ValueError(f"points must be a number of at least 0, got {points!r}.")
            if not grader.strip():
                raise ValueError("say who is grading (a name or initials): every score records "
                                 "it.")
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                done = [_write(connection, *save) for save in saves]
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return done

    def history(self) -> list[dict[str, object]]:
        """Every save ever made, oldest first (what a replaced edit was, and who made it)."""
        with self._connect() as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute("SELECT * FROM history ORDER BY id").fetchall()
        return [dict(row) for row in rows]

    def progress(self) -> dict[tuple[str, str], tuple[int, int]]:
        """``(exercise, question)`` -> (answers scored, answers), for every question with one."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT a.exercise, a.question, COUNT(s.student), COUNT(*) FROM answers a "
                "LEFT JOIN scores s USING (exercise, question, student) "
                "GROUP BY a.exercise, a.question ORDER BY a.exercise, a.question").fetchall()
        return {(e, q): (scored, total) for e, q, scored, total in rows}


def _write(connection: sqlite3.Connection, key: tuple[str, str, str], points: float,
           ticked: Iterable[int], comment: str, grader: str, seen_version: int) -> Saved:
    """One save of :meth:`ReviewStore.save_all`, inside its transaction."""
    exercise, question, student = key
    if connection.execute("SELECT 1 FROM answers WHERE exercise = ? AND question = ? "
                          "AND student = ?", key).fetchone() is None:
        raise KeyError(f"no answer of {student!r} to {exercise} {question}")
    row = connection.execute(
        "SELECT * FROM scores WHERE exercise = ? AND question = ? AND student = ?",
        key).fetchone()
    before = None if row is None else _score(row)
    version = 1 if before is None else before.version + 1
    replaced = ""
    if before is not None and before.version != seen_version:
        replaced = (f"{before.grader}'s score of {_number(before.points)} "
                    f"saved at {before.saved_at}")
    score = Score(exercise, question, student, float(points), tuple(sorted(set(ticked))),
                  comment.strip(), grader.strip(), _now(), version)
    connection.execute(
        "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (exercise, question, student, score.points, ticked_text(score.ticked),
         score.comment, score.grader, score.saved_at, version))
    connection.execute(
        "INSERT INTO history (exercise, question, student, points, ticked, comment, "
        "grader, saved_at, replaced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (exercise, question, student, score.points, ticked_text(score.ticked),
         score.comment, score.grader, score.saved_at, replaced))
    return Saved(score, replaced)


def _score(row: tuple, rubrics: dict[tuple[str, str, int], tuple[str, float]] | None = None
           ) -> Score:
    exercise, question, student, points, ticked, comment, grader, saved_at, version = row
    items = tuple(rubrics[(exercise, question, i)] for i in ticked_of(ticked)
                  if (exercise, question, i) in rubrics) if rubrics else ()
    return Score(exercise, question, student, points, ticked_of(ticked), comment, grader,
                 saved_at, version, items)
