"""Run one exercise test function and say what happened, without letting it escape.

The same function runs a test in two places: in the student's own kernel (the self-check, where
``ns`` is a view of the notebook's globals) and in the trusted grader process (where ``ns`` is a
proxy that reaches into a sandboxed kernel and hands back plain data only). The test cell's
source is executed in a fresh dictionary each time, so one test cannot leak state into another.
"""

from __future__ import annotations

import ast
import functools
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


#: The name through which a rewritten test calls a namespace's ``__call_by_name__`` (see
#: :func:`_compiled`).
CALL_BY_NAME = "__labsupport_call_by_name__"


class _CallsByName(ast.NodeTransformer):
    """Rewrites ``P.name(...)`` into ``__labsupport_call_by_name__(P, "name")(...)``."""

    def __init__(self, parameter: str) -> None:
        self.parameter = parameter

    def visit_Call(self, node: ast.Call) -> ast.AST:  # pylint: disable=invalid-name
        """A call of an attribute of the test's parameter: looked up and called in one go."""
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and func.value.id == self.parameter and not func.attr.startswith("__"):
            lookup = ast.Call(ast.Name(CALL_BY_NAME, ast.Load()),
                              [func.value, ast.Constant(func.attr)], [])
            node.func = ast.copy_location(lookup, func)
        return node


def _compiled(test: TestSpec, ns: object, filename: str) -> tuple[object, dict[str, object]]:
    """The test cell's code object and what its scope needs besides.

    When ``ns``'s class offers ``__call_by_name__(ns, name)`` (the grader's namespace, where every
    read is a request to the student's kernel), each ``ns.name(...)`` written in the test
    function (``ns`` being its parameter, whatever it is called) asks for it through that,
    which looks the name up and calls it in one request instead of two. The hook gets
    ``ns`` as it is bound when the call runs and falls back to a plain attribute read for
    anything else, so a helper's own ``ns`` stays what it is. Everywhere else the cell is
    compiled as written.
    """
    call_by_name = getattr(type(ns), "__call_by_name__", None)
    code = _code(test.source, test.name, filename, call_by_name is not None)
    return code, ({CALL_BY_NAME: call_by_name} if call_by_name is not None else {})


@functools.lru_cache(maxsize=512)
def _code(source: str, name: str, filename: str, by_name: bool) -> object:
    """A test cell compiled (once per grading process: every submission runs the same tests)."""
    if not by_name:
        return compile(source, filename, "exec")
    tree = ast.parse(source, filename)
    parameter = next((node.args.args[0].arg for node in tree.body
                      if isinstance(node, ast.FunctionDef) and node.name == name
                      and node.args.args), None)
    if parameter is not None:
        tree = ast.fix_missing_locations(_CallsByName(parameter).visit(tree))
    return compile(tree, filename, "exec")


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
        code, needs = _compiled(test, ns, filename)
        scope.update(needs)
        exec(code, scope)  # pylint: disable=exec-used
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
