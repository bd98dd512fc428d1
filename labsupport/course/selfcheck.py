"""The student's self-check: run a question's public tests on the notebook, in its own kernel.

Every generated exercise starts with a set-up cell::

    from labsupport.course import selfcheck

    checker = selfcheck.Checker("01_cicd_for_ml.ipynb", globals())
    check, check_all = checker.check, checker.check_all

after which ``check("q1")`` runs q1's public tests against the notebook's current globals and
``check_all()`` summarises every question. The tests come from the exercise file itself (its
cells tagged ``public-tests``), which holds no hidden tests, so a self-check cannot reveal them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import labsupport
from labsupport.course import authoring, runner, written

PASS, FAIL, TODO = "✓", "✗", "…"
_NOT_IMPLEMENTED = "not implemented yet: "


class MissingName(AttributeError, NotImplementedError):
    """A name the tests need is not defined in the notebook (yet).

    It is an ``AttributeError`` (so ``hasattr(ns, name)`` works) and a ``NotImplementedError``
    (so the self-check reports the question as not answered rather than broken).
    """


class Namespace:  # pylint: disable=too-few-public-methods
    """Attribute access to a notebook's globals: what a test's ``ns`` receives.

    The mapping is read live, so names defined after the set-up cell are seen.
    """

    def __init__(self, values: Mapping[str, object]) -> None:
        if not isinstance(values, Mapping):
            raise TypeError(f"Namespace needs a mapping such as globals(), got "
                            f"{type(values).__name__}.")
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> object:
        values = object.__getattribute__(self, "_values")
        try:
            return values[name]
        except KeyError:
            raise MissingName(f"the notebook defines no {name!r}: write it, or run the cell "
                              "that defines it") from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("tests read the notebook's names; they cannot change them")

    def __repr__(self) -> str:
        names = sorted(n for n in object.__getattribute__(self, "_values")
                       if not n.startswith("_"))
        return f"Namespace({len(names)} names)"


def _not_answered(outcome: runner.Outcome) -> bool:
    return outcome.status == "error" and outcome.message.startswith(_NOT_IMPLEMENTED)


@dataclass(frozen=True)
class CheckResult:
    """The public tests of one question, as run by :func:`Checker.check`.

    Attributes
    ----------
    question : str
        The question's name.
    points : float
        What the question is worth in total (public and hidden tests together).
    outcomes : tuple of runner.Outcome
        One per public test, in notebook order.
    """

    question: str
    points: float
    outcomes: tuple[runner.Outcome, ...]

    @property
    def passed(self) -> bool:
        """True when there are public tests and all of them pass."""
        return bool(self.outcomes) and all(outcome.passed for outcome in self.outcomes)

    @property
    def answered(self) -> bool:
        """False while any test meets a ``NotImplementedError`` or a name not yet defined."""
        return not any(_not_answered(outcome) for outcome in self.outcomes)

    @property
    def n_passed(self) -> int:
        """How many public tests pass."""
        return sum(outcome.passed for outcome in self.outcomes)

    @property
    def status(self) -> str:
        """One phrase: passes, fails, not answered yet, or no public tests."""
        if not self.outcomes:
            return "no public tests (graded later)"
        if self.passed:
            return "passes"
        if not self.answered:
            return "not answered yet"
        return "fails"

    def summary(self) -> str:
        """The headline, e.g. ``q1 ✓ 2/2 public tests pass (hidden tests are graded later)``."""
        total = len(self.outcomes)
        if not total:
            return f"{self.question} {TODO} no public tests; this question is graded later"
        if self.passed:
            return (f"{self.question} {PASS} {total}/{total} public tests pass "
                    "(hidden tests are graded later)")
        if not self.answered:
            reason = next(o.message for o in self.outcomes if _not_answered(o))
            return (f"{self.question} {TODO} not answered yet "
                    f"({reason[len(_NOT_IMPLEMENTED):]})")
        return f"{self.question} {FAIL} {self.n_passed}/{total} public tests pass"

    def lines(self) -> list[str]:
        """The headline, then one line per test that did not pass, with its reason."""
        found = [self.summary()]
        if self.answered:
            for outcome in self.outcomes:
                if outcome.status == "failed":
                    found.append(f"{self.question} {FAIL} {outcome.test}: {outcome.message}")
                elif outcome.status == "error":
                    found.append(f"{self.question} {FAIL} {outcome.test}: the test could not "
                                 f"run your code: {outcome.message}")
        return found

    def __repr__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class WrittenCheck:
    """A written answer as the saved notebook holds it: written yet or not (people grade it)."""

    question: str
    points: float
    text: str
    outcomes: tuple[runner.Outcome, ...] = ()
    n_passed: int = 0
    passed: bool = False

    @property
    def status(self) -> str:
        """One phrase: still empty, or saved for review."""
        return "still empty" if not self.text else "written (graded by a person)"

    def lines(self) -> list[str]:
        """One line saying where the answer stands."""
        if not self.text:
            return [f"{self.question} {TODO} not answered yet: your written answer is still "
                    "empty: write it in the cell in place of the placeholder, then save the "
                    "notebook (the check reads the saved file)"]
        words = len(self.text.split())
        return [f"{self.question} {PASS} written answer saved ({words} words); a person grades "
                "it after you hand in"]

    def __repr__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class Summary:
    """Every question's public checks: a small table (its ``repr``)."""

    results: tuple[CheckResult | WrittenCheck, ...]

    @property
    def passed(self) -> bool:
        """True when every question with public tests passes them."""
        return all(result.passed for result in self.results if result.outcomes)

    def rows(self) -> list[tuple[str, str, str, str]]:
        """``(question, points, public tests passed, status)`` for each question."""
        return [(r.question, f"{r.points:g}",
                 f"{r.n_passed}/{len(r.outcomes)}" if r.outcomes else "-", r.status)
                for r in self.results]

    def __repr__(self) -> str:
        header = ("question", "points", "public tests", "status")
        table = [header, *self.rows()]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                 for row in table]
        lines.append("Hidden tests are graded after you hand in; passing the public ones is "
                     "a good sign, not a grade.")
        return "\n".join(lines)


def find_exercise(name: str | Path, start: Path | None = None) -> Path:
    """Locate the exercise file ``name`` from the kernel's working folder.

    Looks in ``start`` (default: the current folder, which JupyterLab sets to the notebook's),
    in ``start/exercises`` and in the ``exercises`` folder next to the installed labsupport.

    Raises
    ------
    FileNotFoundError
        When none of those holds the file (the message lists where it looked).
    """
    path = Path(name)
    start = Path.cwd() if start is None else Path(start)
    candidates = [path] if path.is_absolute() else [
        start / path, start / authoring.EXERCISES / path.name,
        Path(labsupport.__file__).resolve().parent.parent / authoring.EXERCISES / path.name,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"the self-check cannot find {path.name} (looked in {looked}); "
                            "open the exercise from the lab's exercises/ folder.")


class Checker:
    """The self-check of one exercise notebook.

    Parameters
    ----------
    exercise : str or Path
        The exercise's file name (found by :func:`find_exercise`) or a path to it.
    namespace : Mapping
        The notebook's globals; pass ``globals()``.
    """

    def __init__(self, exercise: str | Path, namespace: Mapping[str, object]) -> None:
        self.exercise = exercise
        self.namespace = Namespace(namespace)

    def _questions(self) -> authoring.Exercise:
        # Read on every call: the file is small, and a rebuilt exercise is picked up at once.
        return authoring.load_public_tests(find_exercise(self.exercise))

    def _written(self, exercise: authoring.Exercise) -> tuple[WrittenCheck, ...]:
        answers = written.answers_of(authoring.read_notebook(exercise.path))
        return tuple(WrittenCheck(q.name, q.points, answers.get(q.name, ""))
                     for q in exercise.written)

    def _run(self, question: authoring.Question) -> CheckResult:
        outcomes = tuple(runner.run_test(test, self.namespace) for test in question.public_tests)
        return CheckResult(question.name, question.points, outcomes)

    def check(self, question: str) -> CheckResult | WrittenCheck:
        """Run the public tests of ``question`` (e.g. ``"q1"``) on the notebook as it is now;
        for a written answer (``"w1"``), say whether the saved notebook holds one."""
        exercise = self._questions()
        for found in self._written(exercise) if exercise.written else ():
            if found.question == question:
                return found
        return self._run(exercise.question(question))

    def check_all(self) -> Summary:
        """Run every question's public tests, see every written answer, return the table."""
        exercise = self._questions()
        return Summary(tuple(self._run(question) for question in exercise.questions)
                       + self._written(exercise))

    def __repr__(self) -> str:
        return f"Checker({str(self.exercise)!r})"
