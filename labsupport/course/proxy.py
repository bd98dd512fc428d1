"""The ``ns`` a hidden test receives in the grader: the student's names, as plain data only.

``ns.ANSWER`` asks the sandboxed kernel for the value of ``ANSWER``; ``ns.psi(reference,
current)`` sends the arguments to the kernel as plain data, calls the student's ``psi`` there and
brings the result back as plain data (see :mod:`labsupport.course.plaindata`). The test itself,
its ``assert`` and the comparison all run in the grader's process, on values the grader rebuilt
from text with its own ``json`` module: nothing the student's code does can make an assertion hold.
"""

from __future__ import annotations

import ast
import functools
import json
import marshal
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labsupport.course import plaindata
from labsupport.course.commandbox import run_command
from labsupport.course.sandbox import Isolation, Limits, Sandbox

#: Longest reply (characters) the grader reads from the kernel: the longest JSON an answer may
#: have (:data:`~labsupport.course.plaindata.MAX_TEXT_CHARS`), as Python's ``repr`` writes it
#: (at worst doubling every character).
MAX_REPLY_CHARS = 2 * plaindata.MAX_TEXT_CHARS + 2
#: The name the agent function has in the student's namespace.
AGENT = "_labsupport_grader_"

#: The file the agent's compiled code is handed to the kernel in (see :meth:`Sandbox.provide`).
AGENT_FILE = "labsupport-grader-agent.marshal"

# Run in the kernel once, with the first question: the agent is plaindata's code, compiled by the
# grader (the kernel runs the same Python) and loaded into a scope of its own. Loading a code
# object costs well under a millisecond; compiling the module's source there cost about 12. It
# runs among the notebook's names, so it looks up none of them: `open`, `exec` or `globals` may
# well be a student's variables (opening prices, say). The namespace is bound here, once.
_INSTALL = """
def _labsupport_install_(path):
    import builtins, marshal
    namespace = builtins.globals()
    with builtins.open(path, "rb") as code:
        scope = {"__name__": "labsupport_plaindata"}
        builtins.exec(marshal.loads(code.read()), scope)
    reply = scope["reply"]
    return lambda name, arguments, token: reply(namespace, name, arguments, token)
%s = _labsupport_install_(%r)
del _labsupport_install_
"""


@functools.cache
def _agent_code() -> bytes:
    source = Path(plaindata.__file__).read_text(encoding="utf-8")
    return marshal.dumps(compile(source, "<labsupport plaindata>", "exec"))


class SubmissionError(Exception):
    """The student's code could not answer a test: missing name, exception, refused value."""


class RemoteFunction:
    """A student function living in the kernel; calling it sends and returns plain data."""

    def __init__(self, namespace: KernelNamespace, name: str) -> None:
        self._namespace = namespace
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            arguments = plaindata.dumps({"args": list(args), "kwargs": kwargs})
        except plaindata.RefusedValue as error:
            raise TypeError(f"a test passed {error} to {self._name}(); tests may pass only "
                            "plain data") from error
        return self._namespace._ask(self._name, arguments)  # pylint: disable=protected-access

    def __repr__(self) -> str:
        return f"<student function {self._name}>"


class KernelNamespace:  # pylint: disable=too-few-public-methods  # its names are the notebook's
    """Attribute access to the names defined by the submission running in ``sandbox``.

    Every read asks the kernel afresh (about 1-2.5 ms): the notebook's own code may change a
    name at any time, by a call, a thread or a timer, and a name may stop being a function. A
    test's ``ns.name(...)`` is one request, not a lookup and then a call: the test runner
    rewrites it into :meth:`__call_by_name__` (see ``runner._compiled``). The class has no other
    public attribute, so every name a notebook may define reaches the kernel.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._grading = secrets.token_hex(8)  # this submission's grading (command_executor)
        self._installed = False
        self._agent: str | None = None  # where the agent's code was provided, once

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or not name.isidentifier():
            raise AttributeError(name)
        return self._ask(name, None)

    @staticmethod
    def __call_by_name__(ns: object, name: str) -> Any:
        """``ns.name``, for a test that calls it at once: the student's function, looked up in
        the kernel when it is called (one request for both); a plain read for anything but a
        :class:`KernelNamespace` (a test helper's own ``ns``) or a name no notebook defines."""
        if type(ns) is not KernelNamespace or name.startswith("__") \
                or not name.isidentifier():  # pylint: disable=unidiomatic-typecheck
            return getattr(ns, name)
        return RemoteFunction(ns, name)

    def _install_code(self) -> str:
        """Code that installs the agent, run with a question until it has worked once."""
        if self._agent is None:
            try:
                self._agent = self._sandbox.provide(AGENT_FILE, _agent_code())
            except OSError as error:
                raise SubmissionError(f"the grader could not reach the notebook's namespace "
                                      f"({type(error).__name__}: {error})") from None
        return _INSTALL % (AGENT, self._agent)

    def _ask(self, name: str, arguments: str | None) -> Any:
        """Look up ``name`` in the kernel, or call it with JSON ``arguments``; return plain data.

        Raises
        ------
        SubmissionError
            The name is missing, the call raised or ran out of time, or the value is not plain.
        NotImplementedError
            The student's function still raises the exercise stub's ``NotImplementedError``.
        KernelGone
            The kernel is dead, hung, or out of time (from :meth:`Sandbox.run`).
        """
        code = "" if self._installed else self._install_code()
        call = f"{name}()" if arguments is not None else name
        token = secrets.token_hex(8)  # the reply must carry it: see plaindata.reply
        expression = f"{AGENT}({name!r}, {arguments!r}, {token!r})"
        result = self._sandbox.run(code, {"reply": expression}, what=call)
        if code and result.status == "error":
            raise SubmissionError(f"the grader could not reach the notebook's namespace "
                                  f"({result.message})")
        self._installed = self._installed or result.status == "ok"
        if result.status == "timeout":
            raise SubmissionError(result.message)
        if result.status != "ok":
            raise SubmissionError(f"the kernel could not evaluate {call}: {result.message}")
        envelope = _parse_envelope(result.expressions.get("reply"), token)
        if "function" in envelope:
            return RemoteFunction(self, name)
        if "ok" in envelope:
            try:
                return plaindata.decode(envelope["ok"])
            except ValueError as error:
                # A malformed reply is the submission's fault, never a ValueError a test could
                # be expecting from the student's function.
                raise SubmissionError(f"{call} replied with malformed data: {error}") from error
        kind, message = envelope["error"], envelope["message"]
        if kind == "missing":
            raise SubmissionError(f"the notebook defines no {name!r} (was it renamed or "
                                  "deleted, or did the cell defining it fail?)")
        if kind == "uncallable":
            raise SubmissionError(f"{name} is not a function in the notebook (it is {message}); "
                                  f"the test calls {call}")
        if kind == "refused":
            raise SubmissionError(f"{call} gave {message}; answers must be plain data "
                                  "(numbers, strings, lists, dicts, NumPy arrays, pandas tables)")
        if message.startswith("NotImplementedError: "):
            raise NotImplementedError(message.removeprefix("NotImplementedError: "))
        raise SubmissionError(f"{call} raised {message}")


_ERRORS = frozenset({"missing", "uncallable", "refused", "raised"})


def _parse_envelope(answer: Any, token: str) -> dict:
    """Check the kernel's answer strictly and return the reply envelope as a dict (without the
    question's ``token``, which it must carry)."""
    if type(answer) is not dict or answer.get("status") != "ok":  # pylint: disable=C0123
        raise SubmissionError("the kernel did not answer the grader (the notebook may have "
                              "replaced the grader's helper or the display machinery)")
    data = answer.get("data")
    text = data.get("text/plain") if type(data) is dict else None  # pylint: disable=C0123
    if type(text) is not str:  # pylint: disable=unidiomatic-typecheck
        raise SubmissionError("the kernel's answer is missing")
    # Refused before it is decoded, and its values counted before they are parsed: a reply of
    # millions of tiny values must not cost the grader memory and time outside every limit.
    if len(text) > MAX_REPLY_CHARS:
        raise SubmissionError(f"the kernel's answer is too large ({len(text):,} characters, "
                              f"at most {MAX_REPLY_CHARS:,})")
    try:
        payload = ast.literal_eval(text)
        if type(payload) is not str:  # pylint: disable=unidiomatic-typecheck
            raise ValueError("not a string")
    except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
        raise SubmissionError(f"the kernel's answer is malformed ({type(error).__name__})") \
            from None
    try:
        plaindata.check_size(payload)
    except ValueError as error:
        raise SubmissionError(f"the kernel's answer is too large: {error}") from None
    try:
        envelope = json.loads(payload, parse_constant=_reject)
    except (ValueError, MemoryError, RecursionError) as error:
        raise SubmissionError(f"the kernel's answer is malformed ({type(error).__name__})") \
            from None
    if type(envelope) is not dict:  # pylint: disable=unidiomatic-typecheck
        raise SubmissionError("the kernel's answer is malformed")
    if envelope.pop("for", None) != token:
        raise SubmissionError("the kernel's answer does not answer the grader's question (the "
                              "notebook may have replaced the grader's helper or json)")
    keys = set(envelope)
    if keys in ({"function"}, {"ok"}):
        return envelope
    if keys == {"error", "message"} and envelope["error"] in _ERRORS \
            and isinstance(envelope["message"], str):
        return envelope
    raise SubmissionError("the kernel's answer is malformed")


def _reject(name: str) -> Any:
    raise ValueError(f"JSON constant {name}")


@dataclass(frozen=True)
class SandboxedCommand:
    """Runs one command in a fresh sandbox of its own (a :data:`labsupport.testing.Executor`).

    The grader's hidden tests of exercise 03 run a student's test suite through it: every run in
    a new sandbox (nothing carried from one run to the next), confined like the submission's
    kernel, killed with all it started at its time limit. ``service`` is the socket of the
    version under test (see :func:`labsupport.course.suites.run_suite`). ``grading`` names the
    submission's grading the runs belong to: :func:`~labsupport.course.suites.grade_suite`
    remembers a run under its executor, so equal suites of two students never share a run.
    """

    isolation: Isolation
    memory_bytes: int = 1024**3
    processes: int = 64
    grading: str = ""

    def __call__(self, python_args: Sequence[str], files: Mapping[str, str], timeout: float,
                 environment: Mapping[str, str],
                 service: str | None = None) -> tuple[int | None, str]:
        limits = Limits(cell_seconds=timeout, submission_seconds=timeout + 60,
                        memory_bytes=self.memory_bytes, processes=self.processes,
                        file_bytes=16 * 1024**2, scratch_bytes=64 * 1024**2)
        done = run_command(python_args, files, limits, self.isolation, environment, service)
        return done.returncode, done.output


def command_executor(ns: object) -> SandboxedCommand | None:
    """Where a test that runs code should run it, given the ``ns`` the test received.

    In the grader (``ns`` is a :class:`KernelNamespace`): a :class:`SandboxedCommand` confined
    like that submission's kernel (``--unconfined`` grading stays unconfined). Anywhere else (the
    student's self-check, ``labsupport exercises check``): None, i.e. a plain subprocess.
    The executor names the grading of ``ns`` 's submission: equal for every test of it, unequal
    to any other submission's.
    """
    if not isinstance(ns, KernelNamespace):
        return None
    box, grading = (object.__getattribute__(ns, name) for name in ("_sandbox", "_grading"))
    return SandboxedCommand(box.isolation, min(box.limits.memory_bytes, 1024**3),
                            min(box.limits.processes, 64), grading)
