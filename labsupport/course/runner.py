"""Run one exercise test function and say what happened, without letting it escape.

The same function runs a test in two places: in the student's own kernel (the self-check, where
``ns`` is a view of the notebook's globals) and in the trusted grader process (where ``ns`` is a
proxy that reaches into a sandboxed kernel and hands back plain data only). The test cell's
source is executed in a fresh dictionary each time, so one test cannot leak state into another.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Protocol

#: The statuses an :class:`Outcome` can have.
STATUSES = ("passed", "failed", "error")


class TestSpec(Protocol):  # pylint: disable=too-few-public-methods
    """What :func:`run_test` needs from a test; ``labsupport.course.authoring.Test`` has it."""

    question: str
    name: str
    source: str


@dataclass(frozen=True)
class Outcome:
    """The result of running one test function.

    Attributes
    ----------
    question, test
        The question the test belongs to (``"q1"``) and the test function's name.
    passed
        True only when the function returned without raising.
    status
        ``"passed"``, ``"failed"`` (an ``assert`` did not hold) or ``"error"`` (anything else
        went wrong, including code that is not written yet).
    message
        The assertion message or the exception text; ``""`` when the test passed.
    seconds
        Wall-clock time the test took.
    """

    question: str
    test: str
    passed: bool
    status: str
    message: str
    seconds: float


def _failing_line(exc: BaseException, filename: str, source: str) -> str:
    """The source line of the test cell where ``exc`` was raised, or ``""``."""
    lines = source.splitlines()
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == filename and frame.lineno and frame.lineno <= len(lines):
            return lines[frame.lineno - 1].strip()
    return ""


def _describe(exc: BaseException, filename: str, source: str) -> tuple[str, str]:
    """Map an exception raised by a test to ``(status, message)``."""
    if isinstance(exc, AssertionError):
        text = str(exc)
        if not text:
            line = _failing_line(exc, filename, source)
            text = f"this check did not hold: {line}" if line else "an assertion did not hold"
        return "failed", text
    if isinstance(exc, NotImplementedError):
        return "error", f"not implemented yet: {exc}"
    return "error", f"{type(exc).__name__}: {exc}"


def run_test(test: TestSpec, ns: object) -> Outcome:
    """Run ``test`` against the namespace ``ns`` and return its :class:`Outcome`.

    Parameters
    ----------
    test
        A test: its ``source`` (the whole test cell) defines a function called ``test.name``
        that takes one argument.
    ns
        What the test function receives: attribute access gives the student's names.

    Returns
    -------
    Outcome
        ``passed`` when the function returns, ``failed`` on ``AssertionError``, ``error`` on any
        other exception (``NotImplementedError`` reads "not implemented yet: ...").
    """
    filename = f"<{test.question} tests>"
    started = time.perf_counter()
    scope: dict[str, object] = {"__name__": f"labsupport_tests_{test.question}"}
    try:
        exec(compile(test.source, filename, "exec"), scope)  # pylint: disable=exec-used
        function = scope.get(test.name)
        if not callable(function):
            raise LookupError(f"the test cell of {test.question} defines no function "
                              f"{test.name}()")
        function(ns)
    except (Exception, SystemExit) as exc:  # pylint: disable=broad-exception-caught
        status, message = _describe(exc, filename, test.source)
        return Outcome(test.question, test.name, False, status, message,
                       time.perf_counter() - started)
    return Outcome(test.question, test.name, True, "passed", "", time.perf_counter() - started)
