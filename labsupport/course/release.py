"""The student copy of the lab: everything students need, without solutions or hidden tests.

``labsupport release OUT_DIR`` copies an allow-list of the lab's files (lessons, generated
exercises, the labsupport package, tests, CI set-up, README, environment) and never
``solutions/``. Two guards stand behind the allow-list: the text of every solution block and of
every hidden test (taken from ``solutions/``) is searched for in every released file, JSON
strings included. Test files that contain such text are instructor-only and withheld; anywhere
else the release is refused, because a lesson or a library module would give an answer away.

Declared wrong answers (cells tagged ``wrong-answer``) live only in ``solutions/``, and the
generated exercises drop them. Their text is *not* searched for: a wrong answer is often a line a
lesson rightly shows (the library's standard call where a variant is asked for), so matching it
would refuse honest lessons, and a leaked wrong answer gives no answer away. Instead, any
released notebook that still carries a ``wrong-answer`` cell (a solution copied into the lessons,
say) refuses the release.

The README is released without its instructor-only sections: a Markdown heading that names
instructors (``## Grading a class (instructors)``, ``### Notes for instructors``) starts a
section the student copy leaves out, down to the next heading of the same or a higher level
(:func:`student_readme`); what was written for instructors discusses graded answers in prose,
which no search for solution text would find. The course site's sources (``docs/``) ship for
the same reason without ``docs/instructors/`` (the instructor guide, the grading manual and the
sandbox's threat model), and its Markdown pages lose their instructor sections like the README:
the student copy builds a site of student pages only. Symbolic links
(``docs/lessons`` points at ``notebooks/``) ship as links, and only when they point at a file or
folder that ships too. :func:`uncommitted` lists the files about to ship that differ from the
last commit, so ``labsupport release`` can warn before shipping them.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from labsupport.course import authoring

#: Top-level files and folders a student copy contains (solutions/ is never among them).
RELEASED = (
    "README.md", "environment.yml", "pyproject.toml", "Makefile", "conftest.py",
    ".pre-commit-config.yaml", ".pylintrc", ".gitignore", "LICENSE",
    "notebooks", "exercises", "labsupport", "tests", "benchmarks", ".ci", ".github", "docs",
)

#: Folders inside the released ones that are for instructors only and never ship.
INSTRUCTOR_ONLY = (Path("docs", "instructors"),)

#: Folders inside the released ones that never ship (caches, checkpoints, build litter).
SKIPPED_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints", ".pytest_cache", "build"})

#: Released folders where a file holding solution text is withheld rather than refused.
INSTRUCTOR_FOLDERS = ("tests",)


@dataclass(frozen=True)
class Secret:
    """A piece of instructor-only text: where it comes from and its normalised lines."""

    origin: str
    text: str


@dataclass(frozen=True)
class ReleasePlan:
    """The files a release copies and the instructor-only files it withholds (relative paths)."""

    files: tuple[Path, ...]
    withheld: tuple[Path, ...]


def normalise(text: str) -> str:
    """Strip every line and drop blank ones, so indentation and JSON layout do not matter."""
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def _json_strings(value: object) -> list[str]:
    """All strings in a JSON document; a list of strings (a notebook cell) is joined first."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if value and all(isinstance(item, str) for item in value):
            return ["".join(value)]
        return [text for item in value for text in _json_strings(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _json_strings(item)]
    return []


def searchable_text(path: Path) -> str:
    """A file's text, plus the decoded strings when it is JSON (notebooks escape their code)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raw = path.read_bytes().decode("utf-8", errors="replace")
    parts = [raw]
    if path.suffix in {".ipynb", ".json"} or raw.lstrip().startswith(("{", "[")):
        try:
            parts.extend(_json_strings(json.loads(raw)))
        except ValueError:
            pass
    return normalise("\n".join(parts))


def _block_texts(source: str, where: str) -> list[str]:
    lines = source.splitlines()
    found = []
    for block in authoring.solution_blocks(source, where):
        body = [line for line in lines[block.begin + 1:block.end]
                if not line.strip().startswith(authoring.HINT)]
        found.append(normalise("\n".join(body)))
    return found


def _hidden_function_texts(source: str) -> list[str]:
    tree = ast.parse(source)
    return [normalise(ast.get_source_segment(source, node) or "") for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]


def secrets(root: Path | str) -> tuple[Secret, ...]:
    """Every solution block and every hidden test function of ``root/solutions/*.ipynb``."""
    root = Path(root)
    found = []
    for solution in authoring.solution_paths(root):
        authoring.load_exercise(solution)  # refuse to release a malformed exercise
        notebook = authoring.read_notebook(solution)
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            origin = f"{solution.relative_to(root)}, cell {index}"
            if authoring.HIDDEN_TAG in cell.metadata.get("tags", []):
                found.extend(Secret(f"{origin} (hidden test)", text)
                             for text in _hidden_function_texts(cell.source))
            elif cell.metadata.get(authoring.METADATA_KEY):
                found.extend(Secret(f"{origin} (solution)", text)
                             for text in _block_texts(cell.source, origin))
    return tuple(secret for secret in found if secret.text)


def _carries_wrong_answers(path: Path) -> bool:
    """True for a notebook with a cell tagged ``wrong-answer`` (it must come from solutions/)."""
    if path.suffix != ".ipynb":
        return False
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (ValueError, UnicodeDecodeError, AttributeError):
        return False
    return any(isinstance(cell, dict) and authoring.WRONG_TAG in
               (cell.get("metadata", {}) or {}).get("tags", []) for cell in cells)


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def instructor_sections(text: str) -> list[tuple[int, int, str]]:
    """``(first line, end line, heading)`` of every instructor-only section of Markdown ``text``
    (a heading naming instructors, down to the next heading of its level or higher; headings
    inside fenced code do not count)."""
    sections: list[tuple[int, int, str]] = []
    start, depth, title, fenced = -1, 0, "", False  # start -1: no section open
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match is None:
            continue
        level = len(match.group(1))
        if start >= 0 and level <= depth:
            sections.append((start, number, title))
            start = -1
        if start < 0 and "instructor" in match.group(2).lower():
            start, depth, title = number, level, match.group(2)
    if start >= 0:
        sections.append((start, len(lines), title))
    return sections


#: A paragraph that opens ``**Exercise NN**`` and names its ``solutions/`` notebook: the
#: instructor's summary of an exercise (what the hidden tests try, the wrong answers declared),
#: which sits in a lesson's section of the README but gives graded answers away.
_EXERCISE_NOTE = re.compile(r"\*\*Exercise \d+\*\*[^\n]*`solutions/")


def student_readme(text: str) -> str:
    """``text`` without its instructor-only sections (:func:`instructor_sections`) and without
    the instructors' paragraphs on each exercise (``**Exercise NN** (`solutions/...``), down to
    the next blank line."""
    lines = text.splitlines(keepends=True)
    for first, end, _ in reversed(instructor_sections(text)):
        del lines[first:end]
    kept, skipping = [], False
    for line in lines:
        if _EXERCISE_NOTE.match(line):
            skipping = True
        elif skipping and not line.strip():
            skipping = False
        if not skipping:
            kept.append(line)
    return "".join(kept)


def uncommitted(root: Path | str) -> list[str]:
    """Released paths of ``root`` with changes not committed (``git status``), or [] when
    ``root`` is not a git checkout or git is not installed."""
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--",
                                 *RELEASED], cwd=root, capture_output=True, text=True,
                                timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if status.returncode != 0:
        return []
    return [line[3:] for line in status.stdout.splitlines() if len(line) > 3]


def find_leaks(folder: Path | str, hidden: tuple[Secret, ...]) -> dict[Path, list[str]]:
    """Files under ``folder`` containing any secret: relative path -> origins of what leaked."""
    folder = Path(folder)
    leaks: dict[Path, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = searchable_text(path)
        origins = [secret.origin for secret in hidden if secret.text in text]
        if origins:
            leaks[path.relative_to(folder)] = origins
    return leaks


def _ships(root: Path, path: Path) -> bool:
    """True when ``path`` (a file or a link under ``root``) belongs in the student copy."""
    relative = path.relative_to(root)
    return (not SKIPPED_DIRS.intersection(relative.parts)
            and not path.name.endswith((".pyc", ".egg-info"))
            and not any(relative.is_relative_to(folder) for folder in INSTRUCTOR_ONLY))


def _candidates(root: Path) -> list[Path]:
    files = []
    for name in RELEASED:
        top = root / name
        if top.is_file() or top.is_symlink():
            files.append(top)
        elif top.is_dir():  # rglob does not descend into linked folders: a link is one entry
            files.extend(path for path in top.rglob("*")
                         if (path.is_file() or path.is_symlink()) and _ships(root, path))
    return sorted(files)


def _link_problem(root: Path, link: Path) -> str | None:
    """Why the symbolic link ``link`` cannot ship (None when its target ships as well)."""
    target = (link.parent / os.readlink(link)).resolve()
    relative = link.relative_to(root)
    if not target.is_relative_to(root.resolve()):
        return f"{relative} links outside the lab"
    inside = target.relative_to(root.resolve())
    if not inside.parts or inside.parts[0] not in RELEASED or not _ships(root, root / inside):
        return f"{relative} links to {inside.as_posix()}, which does not ship"
    return None


def plan_release(root: Path | str) -> ReleasePlan:
    """Decide what a release of ``root`` copies and withholds.

    Raises
    ------
    ValueError
        When solution or hidden-test text appears in a file outside ``tests/`` (a lesson,
        exercise or module would give an answer away), naming the file and the source, or when
        a released notebook carries ``wrong-answer`` cells.
    """
    root = Path(root)
    hidden = secrets(root)
    files, withheld, refused = [], [], []
    for path in _candidates(root):
        relative = path.relative_to(root)
        if path.is_symlink():
            problem = _link_problem(root, path)
            if problem:
                refused.append(problem)
            else:
                files.append(relative)
            continue
        text = searchable_text(path)
        origins = [secret.origin for secret in hidden if secret.text in text]
        if _carries_wrong_answers(path):
            refused.append(f"{relative} carries {authoring.WRONG_TAG!r} cells (solution material)")
        elif not origins:
            files.append(relative)
        elif relative.parts[0] in INSTRUCTOR_FOLDERS:
            withheld.append(relative)
        else:
            refused.append(f"{relative} contains {', '.join(sorted(set(origins)))}")
    if refused:
        raise ValueError("release refused, answers would leak: " + "; ".join(refused)
                         + ". Remove that text from those files (or rebuild the exercises).")
    return ReleasePlan(files=tuple(files), withheld=tuple(withheld))


def write_release(root: Path | str, out_dir: Path | str, force: bool = False) -> ReleasePlan:
    """Copy the student version of the lab at ``root`` into ``out_dir``.

    Parameters
    ----------
    root : Path or str
        The instructor's lab (the folder holding ``solutions/``).
    out_dir : Path or str
        Where the student copy goes; created if needed.
    force : bool
        Write even when ``out_dir`` is not empty (files of the same name are replaced; the
        whole folder is then searched for leaked answers).

    Returns
    -------
    ReleasePlan
        What was copied and what was withheld.

    Raises
    ------
    ValueError
        When ``out_dir`` is not empty and ``force`` is False, when it overlaps the lab itself,
        when answers would leak (see :func:`plan_release`), or when, after writing, a file in
        ``out_dir`` (an earlier one kept by ``force``) contains an answer.
    """
    root, out_dir = Path(root).resolve(), Path(out_dir).resolve()
    if out_dir == root or root.is_relative_to(out_dir) or any(
            out_dir.is_relative_to(root / name) for name in RELEASED):
        raise ValueError(f"{out_dir} overlaps the lab at {root}; release into a separate folder.")
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise ValueError(f"{out_dir} is not empty; choose an empty folder or pass --force.")
    plan = plan_release(root)
    for relative in plan.files:
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if (root / relative).is_symlink():
            if target.is_symlink() or target.is_file():
                target.unlink()
            os.symlink(os.readlink(root / relative), target)
        elif relative == Path("README.md") or (relative.parts[0] == "docs"
                                                and relative.suffix == ".md"):
            target.write_text(student_readme((root / relative).read_text(encoding="utf-8")),
                              encoding="utf-8")
        else:
            shutil.copy2(root / relative, target)
    leaks = find_leaks(out_dir, secrets(root))
    if leaks:
        listed = "; ".join(f"{path} ({', '.join(origins)})" for path, origins in leaks.items())
        raise ValueError(f"{out_dir} holds answers after the release: {listed}. Delete those "
                         "files (they were there before; release into an empty folder).")
    return plan
