"""Running pytest as data: what each test of a test file did against a given implementation.

Taught in lesson 03 (``notebooks/03_testing_ml_code.ipynb``): the notebook writes test files and
runs them with the real ``pytest`` in a fresh subprocess, then reads the outcomes from
:func:`run_pytest` (a :class:`TestRun`: one :class:`TestOutcome` per test, plus pytest's own
terminal report). Exercise 03's grader runs a student's test suite with :func:`run_pytest`
against every version of a function (see :mod:`labsupport.course.suites`).

This module is also the tiny pytest plugin that reports the outcomes (``-p labsupport.testing``):
at the end of the run it writes one line, :data:`MARK` followed by JSON, to the real standard
output. It imports only the standard library, so loading it costs pytest nothing measurable.

Where a command runs is up to the caller: by default in a plain subprocess in a fresh temporary
folder (the lesson, the student's self-check); the grader passes an ``execute`` function that runs
it in a fresh sandbox instead (:func:`labsupport.course.proxy.command_executor`).
"""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The outcomes a test can have.
OUTCOMES = ("passed", "failed", "error", "skipped")
#: How the plugin's line of outcomes starts (the last such line of the output counts).
MARK = "labsupport-testing-outcomes: "
#: Bounds on what is read back from a run: output characters, tests, message characters.
MAX_OUTPUT_CHARS = 200_000
MAX_TESTS = 1_000
MAX_MESSAGE_CHARS = 400
#: Seconds one pytest run may take by default before it is killed.
DEFAULT_TIMEOUT = 60.0
#: Environment every run gets: no third-party plugins loaded behind the caller's back (faster,
#: and the same on every machine), no bytecode files written.
RUN_ENVIRONMENT = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1",
                   "PYTHONHASHSEED": "0"}

#: ``execute(python_args, files, timeout, environment) -> (returncode or None, output)``: run
#: the Python interpreter with ``python_args`` in a fresh folder holding ``files``; ``None`` as
#: return code means the run was killed at ``timeout`` seconds.
Executor = Callable[[Sequence[str], Mapping[str, str], float, Mapping[str, str]],
                    tuple["int | None", str]]


@dataclass(frozen=True)
class TestOutcome:
    """What one test did.

    Attributes
    ----------
    test_id
        pytest's node id, e.g. ``test_scaling.py::test_mean_is_zero[2]``.
    outcome
        One of :data:`OUTCOMES`: ``error`` is a failure outside the test's body (a fixture, the
        collection of the file, a teardown).
    message
        The first line pytest reports for a failure or a skip (``assert 3 == 2``); ``""`` when
        the test passed.
    """

    __test__ = False  # not a pytest test class, whatever its name

    test_id: str
    outcome: str
    message: str = ""


@dataclass(frozen=True)
class TestRun:
    """One run of pytest: the outcomes, its exit code and its terminal report.

    Attributes
    ----------
    outcomes
        One per test (and one ``error`` per file that could not be collected), in run order.
    exit_code
        pytest's exit status (0 all passed, 1 some failed, 2 interrupted, 5 no tests), or None
        when the run was killed at its time limit.
    output
        What pytest printed (the plugin's line removed), at most :data:`MAX_OUTPUT_CHARS`.
    status
        ``"completed"``, ``"timeout"`` (killed at the time limit) or ``"no-report"`` (the
        process ended without reporting, e.g. a test called ``os._exit``).
    """

    __test__ = False

    outcomes: tuple[TestOutcome, ...]
    exit_code: int | None
    output: str
    status: str

    @property
    def passed(self) -> bool:
        """True when the run completed, at least one test passed and none failed or erred."""
        return (self.status == "completed" and self.exit_code == 0
                and any(o.outcome == "passed" for o in self.outcomes)
                and not any(o.outcome in ("failed", "error") for o in self.outcomes))

    def count(self, outcome: str) -> int:
        """How many tests had ``outcome`` (one of :data:`OUTCOMES`)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        return sum(o.outcome == outcome for o in self.outcomes)

    def summary(self) -> str:
        """One line, e.g. ``3 passed, 1 failed``, or why there are no outcomes."""
        if self.status == "timeout":
            return "killed at its time limit (a test hangs?)"
        counts = [f"{self.count(o)} {o}" for o in OUTCOMES if self.count(o)]
        if self.status == "no-report":
            return "the pytest process ended without a report" + (
                f" (after {', '.join(counts)})" if counts else "")
        return ", ".join(counts) if counts else "no tests ran"

    def __repr__(self) -> str:
        lines = [f"TestRun({self.summary()})"]
        lines += [f"  {o.outcome:<7} {o.test_id}" + (f"  -- {o.message}" if o.message else "")
                  for o in self.outcomes]
        return "\n".join(lines)


# --- the plugin (loaded by pytest with -p labsupport.testing) --------------------------------


def _first_line(report) -> str:
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None and getattr(crash, "message", ""):
        text = str(crash.message)
    elif isinstance(getattr(report, "longrepr", None), tuple):  # a skip: (path, line, reason)
        text = str(report.longrepr[-1])
    else:
        text = str(getattr(report, "longreprtext", "") or "")
    lines = text.strip().splitlines()
    return lines[0][:MAX_MESSAGE_CHARS] if lines else ""


class _Recorder:
    """Collects one outcome per test from pytest's reports."""

    def __init__(self) -> None:
        self.outcomes: dict[str, list[str]] = {}

    def _set(self, node_id: str, outcome: str, message: str) -> None:
        if node_id not in self.outcomes and len(self.outcomes) >= MAX_TESTS:
            return
        self.outcomes[node_id] = [node_id[:MAX_MESSAGE_CHARS], outcome, message]

    def pytest_collectreport(self, report) -> None:
        """A file (or class) that could not be collected is an error."""
        if report.failed:
            self._set(report.nodeid or "<collection>", "error", _first_line(report))

    def pytest_runtest_logreport(self, report) -> None:
        """Setup and teardown failures are errors; the call decides otherwise."""
        known = self.outcomes.get(report.nodeid)
        if report.when == "call":
            if hasattr(report, "wasxfail"):
                outcome = "passed" if report.passed else "skipped"
            else:
                outcome = report.outcome
            self._set(report.nodeid, outcome, "" if outcome == "passed" else _first_line(report))
        elif report.failed and not (known and known[1] in ("failed", "error")):
            self._set(report.nodeid, "error", f"error in {report.when}: {_first_line(report)}")
        elif report.when == "setup" and report.skipped:
            self._set(report.nodeid, "skipped", _first_line(report))


def pytest_configure(config) -> None:
    """pytest hook: start recording."""
    config.stash_labsupport_recorder = _Recorder()
    config.pluginmanager.register(config.stash_labsupport_recorder, "labsupport-recorder")


def pytest_unconfigure(config) -> None:
    """pytest hook: write the outcomes as the last line of the real standard output."""
    recorder = getattr(config, "stash_labsupport_recorder", None)
    if recorder is not None:
        sys.stdout.flush()  # pytest's own report first, then the line on a line of its own
        line = "\n" + MARK + json.dumps(list(recorder.outcomes.values())) + "\n"
        os.write(1, line.encode("utf-8", "replace"))


# --- running pytest ----------------------------------------------------------------------------


def _check_files(files: Mapping[str, str]) -> None:
    if not isinstance(files, Mapping) or not files:
        raise TypeError("files must be a non-empty mapping from file name to text, got "
                        f"{type(files).__name__}")
    for name, text in files.items():
        if not isinstance(name, str) or not isinstance(text, str):
            raise TypeError(f"files maps file names (str) to their text (str); got "
                            f"{type(name).__name__} -> {type(text).__name__}")
        parts = name.split("/")
        if "\\" in name or "\0" in name or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"file name {name!r} must be a path inside the run's folder: "
                             "names joined by '/', no leading '/', no '.' or '..' "
                             "(e.g. 'tests/test_model.py')")


def run_locally(python_args: Sequence[str], files: Mapping[str, str], timeout: float,
                environment: Mapping[str, str]) -> tuple[int | None, str]:
    """The default :data:`Executor`: this Python in a subprocess, in a fresh temporary folder.

    The process gets a session of its own and is killed with everything it started when it runs
    past ``timeout`` seconds. Not a sandbox: the code can read and write what you can.
    """
    folder = Path(tempfile.mkdtemp(prefix="labsupport-pytest-"))
    try:
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
        output_path = folder.parent / f"{folder.name}.out"
        with open(output_path, "wb") as output:
            process = subprocess.Popen(  # pylint: disable=consider-using-with
                [sys.executable, *python_args], cwd=folder, stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **environment})
            try:
                code: int | None = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                process.wait()
        try:
            return code, _tail(output_path)
        finally:
            output_path.unlink(missing_ok=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _tail(path: Path, limit: int = 4 * MAX_OUTPUT_CHARS) -> str:
    """The last ``limit`` bytes of ``path`` as text (where the plugin's line is)."""
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        stream.seek(max(0, size - limit))
        return stream.read().decode("utf-8", "replace")


def parse_output(output: str, exit_code: int | None) -> TestRun:
    """Split pytest's output into the report and the plugin's outcomes, with bounds.

    Only the last :data:`MARK` line counts; a malformed one is treated as no report. Unknown
    outcomes, oversized fields and more than :data:`MAX_TESTS` entries are refused.
    """
    if not isinstance(output, str):
        raise TypeError(f"output must be str, got {type(output).__name__}")
    lines = output.splitlines()
    found: list | None = None
    report_lines = lines
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith(MARK):
            report_lines = lines[:index] + lines[index + 1:]
            try:
                found = json.loads(lines[index][len(MARK):])
            except ValueError:
                found = None
            break
    report = "\n".join(report_lines)[-MAX_OUTPUT_CHARS:]
    if exit_code is None:
        return TestRun((), None, report, "timeout")
    outcomes = _outcomes(found)
    if outcomes is None:
        return TestRun((), exit_code, report, "no-report")
    return TestRun(outcomes, exit_code, report, "completed")


def _outcomes(found: object) -> tuple[TestOutcome, ...] | None:
    if not isinstance(found, list) or len(found) > MAX_TESTS:
        return None
    outcomes = []
    for entry in found:
        if not (isinstance(entry, list) and len(entry) == 3
                and all(isinstance(part, str) for part in entry) and entry[1] in OUTCOMES):
            return None
        outcomes.append(TestOutcome(entry[0][:MAX_MESSAGE_CHARS], entry[1],
                                    entry[2][:MAX_MESSAGE_CHARS]))
    return tuple(outcomes)


def run_pytest(files: Mapping[str, str], args: Sequence[str] = (),
               timeout: float = DEFAULT_TIMEOUT, execute: Executor | None = None) -> TestRun:
    """Run ``python -m pytest`` on ``files`` in a fresh folder and return what each test did.

    Parameters
    ----------
    files
        File name -> text, written into the run's folder: test files (``test_*.py``), the
        modules they import, ``conftest.py``, ``pyproject.toml``. A name may hold folders
        (``tests/conftest.py``, ``src/loans/features.py``), which are created.
    args
        More pytest arguments (``["-k", "mean"]``, ``["-p", "pytest_cov", "--cov=scaling"]``).
        Third-party plugins are not loaded unless named with ``-p``.
    timeout
        Seconds before the run (and everything it started) is killed.
    execute
        Where to run it (an :data:`Executor`); default :func:`run_locally`.

    Returns
    -------
    TestRun

    Raises
    ------
    TypeError, ValueError
        For files that are not a mapping of plain file names to text, or a bad timeout.
    """
    _check_files(files)
    if isinstance(args, str) or not all(isinstance(a, str) for a in args):
        raise TypeError("args must be a sequence of str, e.g. ['-k', 'mean']")
    if not isinstance(timeout, (int, float)) or math.isnan(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    python_args = ["-m", "pytest", "-p", "no:cacheprovider", "-p", __name__, "--color=no",
                   "-q", *args]
    code, output = (execute or run_locally)(python_args, dict(files), float(timeout),
                                            dict(RUN_ENVIRONMENT))
    return parse_output(output, code)


def normalise_source(source: str) -> str:
    """``source`` without comments, docstrings or layout: ``ast.unparse`` of its tree.

    Two versions of a function then differ only in their code, not in how they are written up.

    Raises
    ------
    ValueError
        If ``source`` is not valid Python.
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be str, got {type(source).__name__}")
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ValueError(f"the source is not valid Python: {error}") from None
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(
                    getattr(body[0], "value", None), ast.Constant) and isinstance(
                    body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree) + "\n"
