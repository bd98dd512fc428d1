"""The student copy of the lab (labsupport.course.release): everything but the answers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labsupport import cli
from labsupport.course import authoring, release
from tests.course_notebooks import (HIDDEN_Q1, good_notebook, make_notebook, make_wrong_cell,
                                    write)

ROOT = Path(__file__).resolve().parent.parent
HAS_SOLUTIONS = (ROOT / authoring.SOLUTIONS).is_dir()
needs_solutions = pytest.mark.skipif(
    not HAS_SOLUTIONS, reason="student copy of the lab: solutions/ is withheld")

#: Fragments of the synthetic solution that must never ship.
ANSWER_TEXT = ("return 2 * x", 'ANSWER_Q2 = "delivery"', "assert ns.double(-3) == -6",
               "Negative numbers double too", 'assert ns.ANSWER_Q2 == "delivery"')


@pytest.fixture
def lab(tmp_path) -> Path:
    """A small lab: one solution with its built exercise, a lesson, a package, tests, litter."""
    root = tmp_path / "lab"
    write(good_notebook(), root / "solutions" / "01_small.ipynb")
    authoring.build_exercises(root)
    write(make_notebook(nbformat.v4.new_code_cell("print(2 * 21)")),
          root / "notebooks" / "01_lesson.ipynb")
    files = {
        "README.md": "# Lab\n", "Makefile": "test:\n\tpytest\n",
        "labsupport/__init__.py": '"""Lab."""\n',
        "tests/test_small.py": "def test_x():\n    pass\n",
        "labsupport/__pycache__/x.cpython-311.pyc": "litter",
        "notebooks/.ipynb_checkpoints/01_lesson-checkpoint.ipynb": "litter",
        ".venv/lib/site.py": "not released", "instructor_notes.md": "not released",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def strings_in(value: object) -> list[str]:
    """Every string inside decoded JSON, with each list of strings also joined (cell sources)."""
    if isinstance(value, str):
        return [value]
    items = list(value.values()) if isinstance(value, dict) else \
        list(value) if isinstance(value, list) else []
    found = [text for item in items for text in strings_in(item)]
    if items and all(isinstance(item, str) for item in items):
        found.append("".join(items))
    return found


def all_text(folder: Path) -> str:
    """Every file's raw text plus, for JSON files, their decoded strings (a second opinion)."""
    parts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        raw = path.read_text(encoding="utf-8", errors="replace")
        parts.append(raw)
        if path.suffix in {".ipynb", ".json"}:
            try:
                parts.extend(strings_in(json.loads(raw)))
            except ValueError:  # a deliberately broken fixture file: its raw text is enough
                continue
    return "\n".join(parts)


def test_release_copies_the_student_files_and_nothing_else(lab, tmp_path):
    plan = release.write_release(lab, tmp_path / "out")
    copied = sorted(p.relative_to(tmp_path / "out").as_posix()
                    for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert copied == ["Makefile", "README.md", "exercises/01_small.ipynb",
                      "labsupport/__init__.py", "notebooks/01_lesson.ipynb", "tests/test_small.py"]
    assert sorted(p.as_posix() for p in plan.files) == copied
    assert not plan.withheld


def test_released_files_hold_no_solution_or_hidden_test_text(lab, tmp_path):
    release.write_release(lab, tmp_path / "out")
    text = all_text(tmp_path / "out")
    assert "raise NotImplementedError" in text  # the stubs did ship
    leaked = [fragment for fragment in ANSWER_TEXT if fragment in text]
    assert not leaked
    assert not release.find_leaks(tmp_path / "out", release.secrets(lab))


def test_secrets_are_each_solution_block_and_each_hidden_test(lab):
    found = release.secrets(lab)
    assert [secret.origin for secret in found] == [
        "solutions/01_small.ipynb, cell 2 (solution)",
        "solutions/01_small.ipynb, cell 4 (hidden test)",
        "solutions/01_small.ipynb, cell 5 (solution)",
        "solutions/01_small.ipynb, cell 7 (hidden test)"]
    assert found[0].text == "return 2 * x"


def test_an_answer_in_a_lesson_refuses_the_release(lab, tmp_path):
    write(make_notebook(nbformat.v4.new_code_cell("def double(x):\n        return 2 * x\n")),
          lab / "notebooks" / "01_lesson.ipynb")
    with pytest.raises(ValueError, match=r"notebooks/01_lesson.ipynb contains "
                                         r"solutions/01_small.ipynb, cell 2 \(solution\)"):
        release.write_release(lab, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_lesson_showing_a_declared_wrong_answer_is_released(lab, tmp_path):
    # A wrong answer is often what a lesson rightly shows (here: the plain doubling a variant
    # question would not accept); it gives no answer away, so its text is not a secret.
    notebook = good_notebook()
    notebook.cells.append(make_wrong_cell("return x + x\n"))
    write(notebook, lab / "solutions" / "01_small.ipynb")
    write(make_notebook(nbformat.v4.new_code_cell("def twice(x):\n    return x + x\n")),
          lab / "notebooks" / "01_lesson.ipynb")
    plan = release.write_release(lab, tmp_path / "out")
    assert Path("notebooks/01_lesson.ipynb") in plan.files
    assert "x + x" not in (tmp_path / "out" / "exercises" / "01_small.ipynb").read_text()


def test_a_released_notebook_with_wrong_answer_cells_refuses_the_release(lab, tmp_path):
    write(make_notebook(nbformat.v4.new_code_cell("y = 1"), make_wrong_cell("y = 2\n")),
          lab / "notebooks" / "01_lesson.ipynb")
    with pytest.raises(ValueError, match=r"notebooks/01_lesson.ipynb carries 'wrong-answer' "
                                         r"cells"):
        release.write_release(lab, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_answer_escaped_inside_json_is_found(lab, tmp_path):
    (lab / "labsupport" / "answers.json").write_text(
        json.dumps({"cells": {"code": "x = 1\n" + HIDDEN_Q1}}), encoding="utf-8")
    assert "\\n" in (lab / "labsupport" / "answers.json").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match=r"labsupport/answers.json contains .*hidden test"):
        release.write_release(lab, tmp_path / "out")


def test_a_test_file_holding_hidden_tests_is_withheld(lab, tmp_path):
    (lab / "tests" / "test_grading_fixture.py").write_text(HIDDEN_Q1, encoding="utf-8")
    plan = release.write_release(lab, tmp_path / "out")
    assert plan.withheld == (Path("tests/test_grading_fixture.py"),)
    assert not (tmp_path / "out" / "tests" / "test_grading_fixture.py").exists()
    assert (tmp_path / "out" / "tests" / "test_small.py").exists()


def test_the_site_ships_its_student_pages_only(lab, tmp_path):
    """docs/ ships without docs/instructors/; the lessons link ships as a link into notebooks/."""
    for name in ("docs/index.md", "docs/students/guide.md", "docs/instructors/guide.md"):
        (lab / name).parent.mkdir(parents=True, exist_ok=True)
        (lab / name).write_text(f"# {name}\n", encoding="utf-8")
    (lab / "docs" / "lessons").symlink_to(Path("..") / "notebooks")
    plan = release.write_release(lab, tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "docs" / "students" / "guide.md").is_file()
    assert not (out / "docs" / "instructors").exists()
    assert Path("docs/instructors/guide.md") not in plan.files + plan.withheld
    assert (out / "docs" / "lessons").is_symlink()
    assert (out / "docs" / "lessons" / "01_lesson.ipynb").is_file()


@pytest.mark.parametrize("target", ["../solutions", "instructors", "../../outside"])
def test_a_link_to_something_that_does_not_ship_refuses_the_release(lab, tmp_path, target):
    (lab / "docs" / "instructors").mkdir(parents=True)
    (lab / "docs" / "answers").symlink_to(target)
    with pytest.raises(ValueError, match="docs/answers links"):
        release.write_release(lab, tmp_path / "out")


def test_a_non_empty_folder_needs_force(lab, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ValueError, match="not empty.*--force"):
        release.write_release(lab, out)
    release.write_release(lab, out, force=True)
    assert (out / "keep.txt").read_text(encoding="utf-8") == "mine"
    assert (out / "exercises" / "01_small.ipynb").exists()


def test_force_still_refuses_answers_left_in_the_folder(lab, tmp_path):
    out = tmp_path / "out"
    write(good_notebook(), out / "solutions" / "01_small.ipynb")
    with pytest.raises(ValueError, match=r"holds answers after the release: "
                                         r"solutions/01_small.ipynb"):
        release.write_release(lab, out, force=True)


@pytest.mark.parametrize("inside", [".", "..", "notebooks/copy"])
def test_the_release_cannot_overlap_the_lab(lab, inside):
    with pytest.raises(ValueError, match="overlaps the lab"):
        release.write_release(lab, lab / inside, force=True)


def test_a_malformed_solution_stops_the_release(lab, tmp_path):
    write(make_notebook(nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n")),
          lab / "solutions" / "02_broken.ipynb")
    with pytest.raises(ValueError, match="never closed"):
        release.write_release(lab, tmp_path / "out")


def test_cli_release(lab, tmp_path, capsys):
    (lab / "tests" / "test_grading_fixture.py").write_text(HIDDEN_Q1, encoding="utf-8")
    assert cli.main(["release", str(tmp_path / "out"), "--root", str(lab)]) == 0
    shown = capsys.readouterr().out
    assert "withheld  tests/test_grading_fixture.py" in shown
    assert "released 6 files" in shown
    assert cli.main(["release", str(tmp_path / "out"), "--root", str(lab)]) == 1
    assert "not empty" in capsys.readouterr().err


README = """# Lab

## Quick start

Run `make lab`.

## For instructors: building exercises

Build them.

### Notes for instructors

Exercise 01 q1's answer is concept drift.

```python
# instructor notes in a code block are not a heading
```

## Lessons

### Lesson 01

Read it.

## Grading (for instructors)

Grade them.
"""


def test_the_student_readme_leaves_out_every_instructor_section():
    assert [heading for _, _, heading in release.instructor_sections(README)] == [
        "For instructors: building exercises", "Grading (for instructors)"]
    assert release.student_readme(README) == ("# Lab\n\n## Quick start\n\nRun `make lab`.\n\n"
                                              "## Lessons\n\n### Lesson 01\n\nRead it.\n\n")


def test_the_student_readme_leaves_out_the_instructors_notes_on_each_exercise():
    # The lesson sections' "**Exercise 07** (`solutions/...`)" paragraphs, which say what the
    # hidden tests try and which answer they want (Welch over Student's t, 0.117), shipped.
    text = README.replace("Read it.\n", "Read it.\n\n**Exercise 01** (`solutions/01_x.ipynb` → "
                          "`exercises/01_x.ipynb`):\nthe hidden tests want concept drift.\n\n"
                          "**Exercise 01** is in `exercises/`, as students see it.\n")
    shipped = release.student_readme(text)
    assert "concept drift" not in shipped and "Read it." in shipped
    assert "**Exercise 01** is in `exercises/`, as students see it." in shipped


def _student_pages() -> list[Path]:
    """README.md and the site's Markdown pages a release ships (rewritten by student_readme)."""
    return [ROOT / "README.md"] + sorted(
        path for path in (ROOT / "docs").rglob("*.md")
        if "instructors" not in path.relative_to(ROOT / "docs").parts)


@pytest.mark.parametrize("page", _student_pages(), ids=lambda path: path.name)
def test_the_real_student_pages_say_nothing_of_the_graded_answers(page):
    shipped = release.student_readme(page.read_text(encoding="utf-8"))
    for answer in ("choosing Welch", "0.117 for the colleague's"):
        assert answer not in shipped, answer


@needs_solutions
def test_the_lessons_page_ships_without_the_exercise_notes():
    """Each exercise's notes for instructors (what its hidden tests try, the wrong answers it
    declares) are a section of their own in docs/overview.md, which the release drops whole."""
    text = (ROOT / "docs" / "overview.md").read_text(encoding="utf-8")
    sections = release.instructor_sections(text)
    notes = [number for number, line in enumerate(text.splitlines())
             if line.startswith("**Exercise ")]
    assert len(notes) >= 7
    outside = [number + 1 for number in notes
               if not any(first < number < end for first, end, _ in sections)]
    assert outside == [], "an exercise's notes outside a '### Exercise NN: notes for " \
                          "instructors' section would ship to students (line numbers)"
    shipped = release.student_readme(text)
    assert re.findall(r"solutions/\d\d_\w+", shipped) == []
    assert "hidden test" not in shipped and "### Exercise" not in shipped
    assert "## Lesson 08" in shipped and "### Benchmark" in shipped


def test_the_release_ships_the_student_readme(lab, tmp_path):
    (lab / "README.md").write_text(README, encoding="utf-8")
    release.write_release(lab, tmp_path / "out")
    shipped = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert shipped == release.student_readme(README) and "concept drift" not in shipped


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                   cwd=root, check=True, capture_output=True)


def test_uncommitted_changes_about_to_ship_are_warned_about(lab, tmp_path, capsys):
    assert not release.uncommitted(lab)  # not a git checkout: nothing to say
    _git(lab, "init", "-q")
    _git(lab, "add", "-A")
    _git(lab, "commit", "-qm", "lab")
    assert not release.uncommitted(lab)
    (lab / "README.md").write_text("# Lab, edited\n", encoding="utf-8")
    (lab / "instructor_notes.md").write_text("never released\n", encoding="utf-8")
    (lab / "notebooks" / "02_new.ipynb").write_text("{}", encoding="utf-8")
    assert release.uncommitted(lab) == ["README.md", "notebooks/02_new.ipynb"]
    assert cli.main(["release", str(tmp_path / "out"), "--root", str(lab)]) == 0
    assert ("warning: 2 file(s) about to ship differ from the last commit: README.md, "
            "notebooks/02_new.ipynb") in capsys.readouterr().err


# --- the real lab --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """The student copy of this lab."""
    out = tmp_path_factory.mktemp("release") / "lab"
    release.write_release(ROOT, out)
    return out


@needs_solutions
def test_the_real_release_has_exercises_but_no_solutions(released):
    assert not (released / "solutions").exists()
    for solution in sorted((ROOT / "solutions").glob("*.ipynb")):
        assert (released / "exercises" / solution.name).is_file()
    for shipped in ("labsupport/course/runner.py", "labsupport/course/selfcheck.py",
                    "README.md", "pyproject.toml", "Makefile", "conftest.py"):
        assert (released / shipped).is_file(), shipped


@needs_solutions
def test_the_real_release_holds_no_solution_or_hidden_test_text(released):
    hidden = release.secrets(ROOT)
    assert hidden
    assert not release.find_leaks(released, hidden)
    text = all_text(released)
    for solution in sorted((ROOT / "solutions").glob("*.ipynb")):
        for test in authoring.load_exercise(solution).tests:
            if test.hidden:
                assert test.source not in text, (solution.name, test.name)
                assert f"def {test.name}(" not in text, (solution.name, test.name)


@needs_solutions
def test_the_released_copys_exercise_tests_skip_without_solutions(released):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_exercises.py", "tests/test_release.py",
         "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=released, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    skipped = [line for line in result.stdout.splitlines()
               if line.startswith("SKIPPED") and "solutions/ is withheld" in line]
    assert any("test_exercises.py" in line for line in skipped), result.stdout
    assert any("test_release.py" in line for line in skipped), result.stdout


@needs_solutions
def test_the_real_release_ships_the_student_pages_of_the_site(released):
    assert (released / "docs" / "conf.py").is_file()
    assert (released / "docs" / "lessons").is_symlink()
    assert not (released / "docs" / "instructors").exists()
    assert (ROOT / "docs" / "instructors").is_dir(), "the instructor pages moved? update this"
    shipped = {p.relative_to(released / "docs").as_posix()
               for p in (released / "docs").rglob("*") if p.is_file()}
    assert not any("solution" in name for name in shipped), shipped


@needs_solutions
def test_the_real_release_holds_no_instructor_text(released):
    """Neither the instructor sections of the README and the site's pages (each exercise's notes
    in the lessons page) nor the site's instructor pages ship."""
    shipped = set(all_text(released).splitlines())
    withheld = []
    for page in _student_pages():  # their sections for instructors (each exercise's notes)
        text = page.read_text(encoding="utf-8")
        lines = text.splitlines()
        withheld += [(f"{page.name}: {heading}", line)
                     for first, end, heading in release.instructor_sections(text)
                     for line in lines[first:end]]
    for page in sorted((ROOT / "docs" / "instructors").glob("*.md")):
        withheld += [(page.name, line) for line in page.read_text(encoding="utf-8").splitlines()]
    assert any(line.startswith("### Notes for instructors") for _, line in withheld)
    assert any(line.startswith("### Exercise 03: notes for instructors") for _, line in withheld)
    for where, line in withheld:
        # Every sentence-long line (the prose that may discuss an answer).
        if len(line.strip()) > 60 and not line.lstrip().startswith(("|", "```")):
            assert line not in shipped, (where, line)
