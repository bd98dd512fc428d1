"""The LMS's bulk downloads, read as they are: who handed in which notebook, and when.

``labsupport grade ... --layout canvas|moodle|folders|auto`` reads a submissions folder with
:func:`read_download`, which turns it into one :class:`Entry` per student (keyed by the LMS's own
id, so the gradebook the LMS imports can be keyed the same way). Grading never looks at an LMS
name: it only sees the entries. The layouts:

``canvas``
    Canvas's "Download Submissions" zip, unzipped: flat files
    ``name[_late]_userid_attachmentid_original[-N].ipynb`` (``smithbob_340934_208490284_lab.ipynb``;
    Canvas writes ``late`` or ``LATE`` for a late hand-in and adds ``-N`` when a student's later
    file had the same name). The student is the user id; among one student's files of the same
    original name the highest ``-N`` is kept and the others are recorded.
``moodle``
    Moodle's "Download all submissions", with or without "Download submissions in folders":
    ``Full Name_participantid_assignsubmission_file_/`` folders or
    ``Full Name_participantid_assignsubmission_file_original.ipynb`` files. The student is the
    participant id; online-text parts (``assignsubmission_onlinetext_``) are not notebooks and
    are reported.
``folders``
    One folder or one notebook per student, named after the student (nbgrader's ``submitted/``,
    an exam's USB sticks): the layouts graded before LMS downloads were read.
``auto``
    ``canvas`` when every notebook at the top looks like Canvas's, ``moodle`` when every entry
    looks like Moodle's, otherwise ``folders``.

A :class:`Roster` (``--roster roster.csv``) joins the LMS ids to the university's: student id,
name, e-mail, section, and optionally the time each student handed in.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from labsupport.course import gradebook

LAYOUTS = ("auto", "canvas", "moodle", "folders")

#: ``name[_late]_userid_attachmentid_original[-N].ipynb``; names are Canvas's sortable names
#: with spaces and punctuation removed, so they hold no ``_``.
CANVAS_FILE = re.compile(r"^(?P<name>[^_]+?)(?P<late>_late)?_(?P<user>\d+)_(?P<attachment>\d+)_"
                         r"(?P<original>.+?)(?:-(?P<copy>\d+))?\.ipynb$", re.IGNORECASE)
#: ``Full Name_participantid_assignsubmission_<plugin>_[original]``.
MOODLE_ENTRY = re.compile(r"^(?P<name>.+)_(?P<participant>\d+)_assignsubmission_(?P<plugin>[a-z]+)_"
                          r"(?P<rest>.*)$")

#: Columns a roster must have, and those it may have.
ROSTER_COLUMNS = ("lms_id", "student_id", "name", "email", "section")
ROSTER_OPTIONAL = ("submitted",)


@dataclass(frozen=True)
class Entry:
    """One student's hand-in as the download holds it.

    Attributes
    ----------
    student
        The LMS's id (Canvas user id, Moodle participant id) or, for ``folders``, the exact
        folder or file name.
    name
        The name the download gives (Canvas's ``smithbob``, Moodle's ``Bob Smith``).
    path
        The student's folder, or their one notebook file.
    files, originals
        For flat layouts, the student's notebooks (the kept one first) and the file names the
        student gave them; empty when ``path`` is a folder to walk.
    late
        The LMS marked the hand-in late (Canvas).
    submitted
        When it was handed in, as far as the download tells (the newest file's time), UTC;
        None for a folder (the time of the notebook graded in it is used).
    folder
        The download's own name for the student's entry (Moodle's feedback zip reuses it).
    note
        What was left out for this student (earlier resubmissions), for the feedback.
    """

    student: str
    name: str
    path: Path
    files: tuple[Path, ...] = ()
    originals: tuple[str, ...] = ()
    late: bool = False
    submitted: datetime | None = None
    folder: str = ""
    note: str = ""


@dataclass(frozen=True)
class Download:
    """What :func:`read_download` found: the layout, one entry per student, and one line per
    top-level entry it could not place (with why)."""

    layout: str
    entries: tuple[Entry, ...]
    skipped: tuple[str, ...]


def file_time(path: Path) -> datetime | None:
    """The modification time of ``path`` (unzip keeps the zip's), UTC, whole seconds."""
    try:
        return datetime.fromtimestamp(path.lstat().st_mtime, timezone.utc).replace(microsecond=0)
    except OSError:
        return None


_TOOL_LEFTOVERS = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini", ".DS_Store",
                             ".ipynb_checkpoints"})


def _top_level(folder: Path, skipped: list[str] | None = None) -> list[os.DirEntry]:
    """The entries of ``folder`` that may be students; hidden ones are reported in ``skipped``
    (tools' leftovers are not students and go unmentioned)."""
    with os.scandir(folder) as entries:
        listing = sorted(entries, key=lambda e: e.name)
    if skipped is not None:
        skipped += [f"{gradebook.printable(e.name)}: hidden (its name starts with a dot); "
                    "rename it to grade it" for e in listing
                    if e.name.startswith(".") and e.name not in _TOOL_LEFTOVERS]
    return [e for e in listing if not e.name.startswith(".") and e.name not in _TOOL_LEFTOVERS]


def detect(folder: Path) -> str:
    """The layout of the download in ``folder`` (never ``auto``)."""
    entries = _top_level(folder)
    notebooks = [e for e in entries if e.name.endswith(".ipynb")]
    if notebooks and all(CANVAS_FILE.match(e.name) for e in notebooks):
        return "canvas"
    if entries and all(MOODLE_ENTRY.match(e.name) for e in entries):
        return "moodle"
    return "folders"


def _copy_number(match: re.Match) -> int:
    return int(match.group("copy") or 0)


def _canvas(folder: Path) -> tuple[list[Entry], list[str]]:
    by_user: dict[str, list[tuple[re.Match, Path]]] = {}
    skipped: list[str] = []
    for entry in _top_level(folder, skipped):
        match = CANVAS_FILE.match(entry.name)
        if match is None or entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            skipped.append(f"{entry.name}: not a Canvas submission file "
                           "(name[_late]_userid_attachmentid_file.ipynb)")
            continue
        by_user.setdefault(match.group("user"), []).append((match, Path(entry.path)))
    found = []
    for user, files in sorted(by_user.items()):
        # Per original file name, the highest -N is the latest hand-in; the rest are earlier.
        kept, earlier = [], []
        for original in sorted({m.group("original") for m, _ in files}):
            same = sorted(((m, p) for m, p in files if m.group("original") == original),
                          key=lambda item: _copy_number(item[0]))
            kept.append(same[-1])
            earlier += [path.name for _, path in same[:-1]]
        kept.sort(key=lambda item: (-_copy_number(item[0]), item[1].name))
        match, path = kept[0]
        note = (f"earlier hand-ins not graded (a later one replaces them): {', '.join(earlier)}"
                if earlier else "")
        times = [t for t in (file_time(p) for _, p in kept) if t is not None]
        found.append(Entry(user, match.group("name"), path, tuple(p for _, p in kept),
                           tuple(f"{m.group('original')}.ipynb" for m, _ in kept),
                           any(m.group("late") for m, _ in kept), max(times, default=None),
                           path.name, note))
    return found, skipped


def _moodle(folder: Path) -> tuple[list[Entry], list[str]]:
    by_participant: dict[str, list[tuple[re.Match, os.DirEntry]]] = {}
    skipped: list[str] = []
    for entry in _top_level(folder, skipped):
        match = MOODLE_ENTRY.match(entry.name)
        if match is None:
            skipped.append(f"{entry.name}: not a Moodle submission "
                           "(Full Name_participantid_assignsubmission_file_)")
        elif match.group("plugin") != "file":
            skipped.append(f"{entry.name}: a Moodle {match.group('plugin')} submission, "
                           "not a file (not graded)")
        else:
            by_participant.setdefault(match.group("participant"), []).append((match, entry))
    found = []
    for participant, parts in sorted(by_participant.items()):
        match, first = parts[0]
        folders = [e for _, e in parts if e.is_dir(follow_symlinks=False)
                   and not e.is_symlink()]
        flat = [(m, e) for m, e in parts if e.name.endswith(".ipynb")
                and e.is_file(follow_symlinks=False) and not e.is_symlink()]
        files = tuple(Path(e.path) for _, e in flat)
        path = Path(folders[0].path) if folders else Path(first.path)
        # A folder's time says nothing (unzip made it): the graded notebook's is used instead.
        times = [t for t in (file_time(p) for p in files) if t is not None]
        prefix = f"{match.group('name')}_{participant}_assignsubmission_file_"
        found.append(Entry(participant, match.group("name"), path,
                           () if folders else files,
                           () if folders else tuple(m.group("rest") for m, _ in flat), False,
                           max(times, default=None), prefix))
    return found, skipped


def read_download(folder: Path, layout: str = "auto") -> Download:
    """Read the LMS download in ``folder`` as ``layout`` (see the module's docstring).

    ``folders`` returns no entries: the grader reads that layout itself. Raises ValueError
    for an unknown layout or a folder that is not one.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a directory of submissions")
    if layout == "auto":
        layout = detect(folder)
    if layout == "folders":
        return Download("folders", (), ())
    entries, skipped = (_canvas if layout == "canvas" else _moodle)(folder)
    return Download(layout, tuple(entries), tuple(skipped))


# --- the roster -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Student:
    """One row of the roster; ``submitted`` is when they handed in, if the roster says."""

    lms_id: str
    student_id: str
    name: str
    email: str
    section: str
    submitted: datetime | None = None


def parse_time(text: str, where: str) -> datetime:
    """An ISO 8601 time with its offset (``2026-10-05T23:59:00+02:00``, ``...Z``), as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not an ISO 8601 time such as "
                         "2026-10-05T23:59:00+02:00") from None
    if moment.tzinfo is None:
        raise ValueError(f"{where}: {text!r} has no time zone; write it with one "
                         "(2026-10-05T23:59:00+02:00 or ...Z)")
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class Roster:
    """The class list, by LMS id (in file order)."""

    students: tuple[Student, ...]

    def by_lms_id(self) -> dict[str, Student]:
        """Students keyed by their LMS id."""
        return {s.lms_id: s for s in self.students}


def read_roster(path: Path) -> Roster:
    """Read ``roster.csv``: columns ``lms_id, student_id, name, email, section`` and optionally
    ``submitted`` (an ISO time with offset). ValueError names the row and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read the roster ({type(error).__name__})") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    missing = [c for c in ROSTER_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"{path}: the roster has no column {', '.join(missing)}; its first "
                         f"line must name {', '.join(ROSTER_COLUMNS)} (and optionally "
                         "submitted)")
    students, seen = [], set()
    for number, row in enumerate(reader, start=2):
        lms_id = (row.get("lms_id") or "").strip()
        if not lms_id:
            raise ValueError(f"{path}, line {number}: lms_id is empty")
        if lms_id in seen:
            raise ValueError(f"{path}, line {number}: lms_id {lms_id} appears twice")
        seen.add(lms_id)
        when = (row.get("submitted") or "").strip()
        students.append(Student(lms_id, *((row.get(c) or "").strip() for c in ROSTER_COLUMNS[1:]),
                                parse_time(when, f"{path}, line {number}") if when else None))
    return Roster(tuple(students))


# --- what was handed in, kept beside the results -------------------------------------------------

#: The file, in the grading output, that records each hand-in's LMS name, folder and time.
HANDINS_FILE = "handins.csv"
_HANDIN_COLUMNS = ("student", "exercise", "name", "folder", "late", "submitted")


@dataclass(frozen=True)
class Handin:
    """What the download says about one student's hand-in of one exercise: their LMS name,
    the download's own name for their entry, the LMS's late flag and the hand-in time (UTC)."""

    student: str
    exercise: str
    name: str = ""
    folder: str = ""
    late: bool = False
    submitted: datetime | None = None


def handins_csv(handins: list[Handin]) -> str:
    """The hand-ins as CSV, sorted by student and exercise (what :func:`read_handins` reads)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_HANDIN_COLUMNS)
    for item in sorted(handins, key=lambda h: (h.student, h.exercise)):
        stamp = item.submitted.isoformat() if item.submitted else ""
        writer.writerow([gradebook.csv_cell(gradebook.csv_student(item.student)), item.exercise,
                         gradebook.csv_cell(item.name), gradebook.csv_cell(item.folder),
                         "yes" if item.late else "",
                         stamp])
    return buffer.getvalue()


def read_handins(out_dir: Path) -> dict[tuple[str, str], Handin]:
    """The hand-ins recorded in ``out_dir`` by ``(student, exercise)`` (empty when none)."""
    path = out_dir / HANDINS_FILE
    if not path.exists():
        return {}
    found = {}
    with open(path, encoding="utf-8", newline="") as stream:
        for row in csv.DictReader(stream):
            stamp = row["submitted"]
            item = Handin(gradebook.student_from_csv(row["student"]), row["exercise"],
                          gradebook.student_from_csv(row["name"]),
                          gradebook.student_from_csv(row["folder"]),
                          row["late"] == "yes",
                          datetime.fromisoformat(stamp) if stamp else None)
            found[(item.student, item.exercise)] = item
    return found
