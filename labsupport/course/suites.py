"""A student's test suite graded by the bugs it catches, each version served from another process.

Exercise 03 asks for pytest files. :func:`grade_suite` runs a suite against correct versions of
a function (it must pass on all of them) and against buggy ones (each it fails on is a bug
caught), every run in a fresh process (in the grader, a fresh sandbox).

The version under test never enters the suite's process. It runs in a process of its own, the
*server* (:func:`serve`), forked by the grader's fork server (:class:`Servers`, which imports
NumPy and pandas once per grading) and loaded from the version's source; the suite imports a
stand-in module (:func:`stand_in`) whose functions send their arguments over a Unix socket as
plain data (:mod:`labsupport.course.plaindata`: numbers, strings, timestamps, lists, dicts,
NumPy arrays, pandas tables) and rebuild the result, or the exception, from the reply. A test
can call the function, as often as it likes; it cannot read its code (no ``__code__``, no
source, no file: the stand-in is the same text for every version), and in the grader's sandbox
no ``labsupport`` module that computes the function is there to compare with (see
:data:`labsupport.course.commandbox.LIBRARY`).

This module imports only the standard library, :mod:`labsupport.testing` and
:mod:`labsupport.course.plaindata`: the stand-in imports it inside the suite's sandbox.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import importlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labsupport import testing
from labsupport.course import plaindata

#: The environment variable that tells a stand-in where its version is served.
SERVICE_VARIABLE = "LABSUPPORT_SERVICE"
#: Memory the server of one version may use (``RLIMIT_AS``).
SERVER_MEMORY_BYTES = 2 * 1024**3
#: Longest request line the server reads: a call's plain-data arguments, in JSON.
MAX_REQUEST_BYTES = 2 * plaindata.MAX_TEXT_CHARS + 1024
#: The files of the ``labsupport`` package a suite's run sees (paths inside the package):
#: pytest's outcome plugin and the stand-in's plain-data client, nothing that computes a
#: function a suite tests.
LIBRARY = ("__init__.py", "testing.py", "course/__init__.py", "course/plaindata.py",
           "course/suites.py")


def short_library(folder: Path) -> Path:
    """Copy the :data:`LIBRARY` files of ``labsupport`` into ``folder``; return the package's
    folder there (``folder/labsupport``), readable by everyone, writable by no one."""
    package = Path(__file__).resolve().parent.parent
    for name in LIBRARY:
        target = folder / "labsupport" / name
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        shutil.copyfile(package / name, target)
        target.chmod(0o444)
    for path in (folder, *(p for p in (folder / "labsupport").rglob("*") if p.is_dir())):
        path.chmod(0o755)
    return folder / "labsupport"


# --- the suite's side: a stand-in module whose functions call the served version --------------


class ServedFunction:  # pylint: disable=too-few-public-methods
    """The version's function ``name`` as a suite sees it: a call sent to the server.

    Arguments go as plain data (a copy: a change the function makes to them in place is not
    seen) and the result comes back as plain data; an exception raised by the version is raised
    again here, as the built-in exception it is (or derives from), with its message.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            arguments = plaindata.dumps({"args": list(args), "kwargs": kwargs})
        except plaindata.RefusedValue as error:
            raise TypeError(f"{self._name}() is served from another process and takes plain "
                            f"data only (numbers, strings, timestamps, lists, dicts, NumPy arrays, "
                            f"pandas tables); got {error}") from None
        request = json.dumps({"name": self._name, "arguments": arguments}) + "\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(os.environ[SERVICE_VARIABLE])
            with connection.makefile("rwb") as stream:
                stream.write(request.encode("utf-8"))
                stream.flush()
                line = stream.readline()
        if not line:
            raise RuntimeError(f"the server of {self._name}() stopped without answering")
        envelope = json.loads(line)
        if "ok" in envelope:
            return plaindata.decode(envelope["ok"])
        raise _exception(envelope.get("message", ""), envelope.get("error"))

    def __repr__(self) -> str:
        return f"<{self._name}: served by the grader>"


def _exception(message: str, kind: str | None) -> Exception:
    """The exception a suite sees for the server's error reply."""
    name, _, text = message.partition(": ")
    found = getattr(builtins, name, None) if kind == "raised" else None
    if isinstance(found, type) and issubclass(found, Exception):
        return found(text)
    if kind == "raised":
        return RuntimeError(message)
    return RuntimeError(f"the served version could not answer ({kind}: {message})")


def stand_in(functions: Sequence[str]) -> str:
    """The text of the module a suite imports: one :class:`ServedFunction` per name."""
    lines = ['"""Served by the grader: every function here runs in another process."""', "",
             "from labsupport.course.suites import ServedFunction", ""]
    lines += [f"{name} = ServedFunction({name!r})" for name in functions]
    return "\n".join(lines) + "\n"


def public_functions(source: str) -> tuple[str, ...]:
    """The names of the functions ``source`` defines at top level, but for private ones."""
    tree = ast.parse(testing.normalise_source(source))
    return tuple(node.name for node in tree.body
                 if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"))


# --- the server: one version, one process ---------------------------------------------------


def _as_builtin(function: Any) -> Any:
    """``function``, raising the nearest built-in exception class (a pandas ``ValueError``
    subclass becomes a ``ValueError``) so that the suite can name it."""
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Exception as error:  # pylint: disable=broad-exception-caught
            kind = next(k for k in type(error).__mro__ if getattr(builtins, k.__name__, 0) is k)
            if kind is not error.__class__:
                raise kind(str(error)) from None
            raise
    return call


def serve(listener: socket.socket, source: str, module: str,
          functions: Sequence[str]) -> None:
    """Run the version ``source`` as module ``module`` and answer calls on ``listener``, forever.

    One connection carries one call: a line of JSON ``{"name": ..., "arguments": ...}`` (the
    arguments as :func:`plaindata.dumps` writes them) answered by :func:`plaindata.reply`'s line.
    Only the names in ``functions`` are answered.
    """
    version = types.ModuleType(module)
    version.__file__ = f"{module}.py"
    sys.modules[module] = version
    exec(compile(source, f"{module}.py", "exec"), version.__dict__)  # pylint: disable=exec-used
    namespace = {name: _as_builtin(getattr(version, name)) for name in functions}
    while True:
        connection, _ = listener.accept()
        with connection, connection.makefile("rwb") as stream:
            try:
                request = json.loads(stream.readline(MAX_REQUEST_BYTES))
                name, arguments = request["name"], request["arguments"]
                if type(name) is not str or type(arguments) is not str:  # pylint: disable=C0123
                    raise ValueError("malformed request")
                plaindata.check_size(arguments)
            except (ValueError, KeyError, TypeError) as error:
                text = json.dumps({"error": "refused", "message": str(error)[:200]})
            else:
                text = plaindata.reply(namespace, name, arguments)
            try:
                stream.write(text.encode("utf-8") + b"\n")
                stream.flush()
            except OSError:
                continue


def imported_modules(sources: Sequence[str]) -> tuple[str, ...]:
    """The top-level packages the ``sources`` import at module level (``numpy``, ``pandas``)."""
    found: set[str] = set()
    for source in sources:
        for node in ast.parse(source).body:
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return tuple(sorted(found - {"__future__"}))


def _main() -> None:
    """``python -m labsupport.course.suites``: the fork server of :class:`Servers`.

    Standard input: a line ``{"preload": [modules]}``, then one order a line, answered on
    standard output: ``{"path", "source", "module", "functions"}`` (listen at ``path``, fork a
    server of that version; answer its pid) or ``{"stop": pid}`` (kill it; answer ``0``).
    """
    resource.setrlimit(resource.RLIMIT_AS, (SERVER_MEMORY_BYTES, SERVER_MEMORY_BYTES))
    for name in json.loads(sys.stdin.readline())["preload"]:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    for line in sys.stdin:
        order = json.loads(line)
        if "stop" in order:
            os.kill(order["stop"], signal.SIGKILL)
            os.waitpid(order["stop"], 0)
            print(0, flush=True)
            continue
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(order["path"])
        listener.listen(16)
        # The suite may run as another user (the grader as root gives each sandbox a uid).
        os.chmod(order["path"], 0o666)
        pid = os.fork()
        if pid == 0:  # the server: nothing of it may reach the fork server's answers
            try:
                quiet = os.open(os.devnull, os.O_RDWR)
                for stream in (0, 1, 2):
                    os.dup2(quiet, stream)
                serve(listener, order["source"], order["module"], order["functions"])
            finally:
                os._exit(1)  # pylint: disable=protected-access
        listener.close()
        print(pid, flush=True)


class Servers:
    """A fork server: one process that imports the versions' libraries once, then forks a
    fresh server process for each version a suite runs against (:meth:`served`).

    Use as a context manager; closing it kills the fork server and every server it started.
    """

    def __init__(self, preload: Sequence[str] = ()) -> None:
        self._process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, start_new_session=True, text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1",
                 "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        self._order({"preload": list(preload)}, answer=False)

    def _order(self, order: dict, answer: bool = True) -> int:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(order) + "\n")
        self._process.stdin.flush()
        if not answer:
            return 0
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError("the fork server of the versions under test stopped")
        return int(line)

    @contextlib.contextmanager
    def served(self, source: str, module: str, functions: Sequence[str]) -> Iterator[Path]:
        """Serve the version ``source`` while the block runs; yield the path of its socket.

        The socket listens when this returns; the version's server and its folder are gone when
        the block ends.
        """
        folder = Path(tempfile.mkdtemp(prefix="labsupport-served-"))
        os.chmod(folder, 0o755)
        path = folder / "version.sock"
        try:
            pid = self._order({"path": str(path), "source": source, "module": module,
                               "functions": list(functions)})
            try:
                yield path
            finally:
                self._order({"stop": pid})
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Kill the fork server and every server it started: they share its process group,
        whose id stays its pid until it is waited for (a dead one is a zombie until then)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.communicate()

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- running a suite against a version ---------------------------------------------------------


def run_suite(suite: str, implementation: str, module: str, test_file: str = "test_suite.py",
              timeout: float = testing.DEFAULT_TIMEOUT, execute: Any = None,
              functions: Sequence[str] | None = None,
              servers: Servers | None = None) -> testing.TestRun:
    """Run the test file ``suite`` against ``implementation``, served as module ``module``.

    Parameters
    ----------
    suite
        The test file's text; it imports the function from ``module``.
    implementation
        The version's source. It runs in a server process of its own (:class:`Servers`); the
        suite's folder holds the stand-in ``<module>.py`` (:func:`stand_in`) and the test file.
    module, test_file
        The module name the suite imports, and the test file's name (``test_*.py``).
    timeout
        Seconds before the run is killed.
    execute
        Where pytest runs: None for a plain subprocess (:func:`labsupport.testing.run_locally`),
        or an executor that also takes ``service=<the socket's path>`` and shows that socket to
        the run (the grader's :class:`labsupport.course.proxy.SandboxedCommand`).
    functions
        The names the stand-in offers; default the implementation's public functions.
    servers
        The fork server to start the version's server from (:func:`grade_suite` shares one
        among its runs); default a new one for this run.

    Returns
    -------
    labsupport.testing.TestRun
    """
    if not isinstance(suite, str) or not isinstance(implementation, str):
        raise TypeError("suite and implementation must be source code (str)")
    if not module.isidentifier():
        raise ValueError(f"module must be a Python identifier, got {module!r}")
    if not (test_file.startswith("test_") and test_file.endswith(".py")):
        raise ValueError(f"test_file must be named test_*.py for pytest to find it, got "
                         f"{test_file!r}")
    names = tuple(functions) if functions is not None else public_functions(implementation)
    if not names or not all(name.isidentifier() for name in names):
        raise ValueError(f"the version must offer functions by name, got {names!r}")
    files = {f"{module}.py": stand_in(names), test_file: suite}
    if servers is None:
        with Servers(imported_modules([implementation])) as own:
            return run_suite(suite, implementation, module, test_file, timeout, execute, names,
                             own)
    with servers.served(implementation, module, names) as path:
        def run(python_args, files, timeout, environment):
            if execute is not None:
                return execute(python_args, files, timeout, environment, service=str(path))
            # A plain subprocess is no sandbox, but it too imports the short library, and no
            # site-packages hook (an editable install's) that would show the whole package.
            library = short_library(path.parent / "library").parent
            search = [str(library), *(entry for entry in sys.path if entry)]
            return testing.run_locally(["-S", *python_args], files, timeout, {
                **environment, SERVICE_VARIABLE: str(path),
                "PYTHONPATH": os.pathsep.join(search)})
        return testing.run_pytest(files, timeout=timeout, execute=run)


# --- grading a test suite by the bugs it catches ------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One implementation a suite is run against.

    Attributes
    ----------
    name
        A short key (``"wrong-axis"``), unique within a grading.
    description
        What a student is told about it (never its code): ``"statistics taken along rows"``.
    source
        The module's code.
    correct
        True for a correct implementation (the suite must pass), False for a bug to catch.
    """

    name: str
    description: str
    source: str
    correct: bool

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("a Version needs a non-empty name")
        testing.normalise_source(self.source)  # refuse broken code when it is declared


@dataclass(frozen=True)
class VersionResult:
    """A version and the suite's run against it."""

    version: Version
    run: testing.TestRun

    @property
    def caught(self) -> bool:
        """For a bug: the suite did not pass on it."""
        return not self.version.correct and not self.run.passed


@dataclass(frozen=True)
class SuiteGrade:
    """How a test suite fared against correct and buggy versions (:func:`grade_suite`).

    Attributes
    ----------
    results
        One per version run, in the order they ran (correct versions first; after a correct
        version fails, the bugs are not run: nothing could be earned).
    """

    results: tuple[VersionResult, ...]

    @property
    def passes_correct(self) -> bool:
        """True when the suite passed on every correct version (the gate)."""
        correct = [r for r in self.results if r.version.correct]
        return bool(correct) and all(r.run.passed for r in correct)

    def caught(self, name: str) -> bool:
        """True when the gate holds and the suite failed on the bug called ``name``."""
        matches = [r for r in self.results if r.version.name == name]
        if not matches and self.passes_correct:
            raise KeyError(f"no version called {name!r}; known: "
                           f"{sorted(r.version.name for r in self.results)}")
        return self.passes_correct and any(r.caught for r in matches)

    @property
    def n_caught(self) -> int:
        """Bugs caught (0 unless the gate holds)."""
        return sum(self.caught(r.version.name) for r in self.results if not r.version.correct)

    def feedback(self) -> str:
        """What a student may be told: the gate, then each bug by its description."""
        lines = []
        for result in self.results:
            if result.version.correct and not result.run.passed:
                failed = [o for o in result.run.outcomes if o.outcome in ("failed", "error")]
                failing = [o.test_id.split("::")[-1] for o in failed][:5]
                first = next((o.message for o in failed if o.message), "")
                lines.append(f"your suite does not pass on a correct implementation "
                             f"({result.version.description}): {result.run.summary()}"
                             + (f"; failing: {', '.join(failing)}" if failing else "")
                             + (f" (first: {first[:200]})" if first else "")
                             + ". A suite that fails on correct code catches nothing; run it "
                             "against the given function to see why.")
        if self.passes_correct:
            lines.append("your suite passes on every correct implementation")
            for result in self.results:
                if not result.version.correct:
                    verdict = "caught  " if result.caught else "survived"
                    lines.append(f"{verdict} {result.version.description}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"SuiteGrade({self.n_caught} bug(s) caught)\n{self.feedback()}"


#: Runs :func:`grade_suite` remembers, by suite, version and settings (the newest 64).
_RUNS: dict[tuple, testing.TestRun] = {}


def forget_runs() -> None:
    """Forget the runs :func:`grade_suite` remembered (a benchmark times fresh ones)."""
    _RUNS.clear()


def grade_suite(suite: str, versions: Sequence[Version], module: str,
                test_file: str = "test_suite.py", seed: int = 0,
                timeout: float = testing.DEFAULT_TIMEOUT, execute: Any = None) -> SuiteGrade:
    """Run the test file ``suite`` against every version, each in a fresh process.

    Every version is served from a process of its own behind the same stand-in ``<module>.py``
    (:func:`run_suite`), offering the public functions all the versions define, so a test can
    tell them apart only by what their calls return. The correct versions run first, in an
    order drawn from ``seed``, then the buggy ones in a drawn order; once a correct version
    fails the bugs are not run (a suite that fails on correct code earns nothing). Runs of the
    same suite on the same source with the same ``execute`` are remembered in this process:
    the grader's hidden tests share them within one submission's grading (its executor names
    that grading, see :func:`labsupport.course.proxy.command_executor`), never across two;
    with the plain subprocess (``execute`` None: the self-check, the rehearsal's kernels) a
    kernel shares them between its own runs.

    Parameters
    ----------
    suite
        The test file's text (it imports the function from ``module``).
    versions
        At least one correct and one buggy :class:`Version`, names unique.
    module, test_file
        The module name the suite imports, and the test file's name.
    seed
        Seeds the order.
    timeout
        Seconds each run may take before it is killed (a hanging suite earns nothing).
    execute
        Where each run happens (see :func:`run_suite`); the grader passes a sandbox.

    Returns
    -------
    SuiteGrade
    """
    if not isinstance(suite, str):
        raise TypeError(f"the suite must be the text of a test file (str), got "
                        f"{type(suite).__name__}")
    versions = tuple(versions)
    if not all(isinstance(v, Version) for v in versions):
        raise TypeError("versions must be Version objects")
    names = [v.name for v in versions]
    if len(set(names)) != len(names):
        raise ValueError(f"version names must be unique, got {names}")
    if not any(v.correct for v in versions) or all(v.correct for v in versions):
        raise ValueError("grade_suite needs at least one correct and one buggy version")
    offered = tuple(sorted(set.intersection(*(set(public_functions(v.source))
                                              for v in versions))))
    order = random.Random(seed)
    correct = [v for v in versions if v.correct]
    buggy = [v for v in versions if not v.correct]
    order.shuffle(correct)
    order.shuffle(buggy)
    results = []
    servers = None
    try:
        for version in correct + buggy:
            if not version.correct and not all(r.run.passed for r in results
                                               if r.version.correct):
                break
            key = (suite, version.source, module, test_file, float(timeout), execute, offered)
            if key not in _RUNS:
                if servers is None:
                    servers = Servers(imported_modules([v.source for v in versions]))
                run = run_suite(suite, version.source, module, test_file, timeout, execute,
                                offered, servers)
                while len(_RUNS) >= 64:
                    del _RUNS[next(iter(_RUNS))]
                _RUNS[key] = run
            results.append(VersionResult(version, _RUNS[key]))
    finally:
        if servers is not None:
            servers.close()
    return SuiteGrade(tuple(results))


if __name__ == "__main__":
    _main()
