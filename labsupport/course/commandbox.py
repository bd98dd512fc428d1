"""One command in a fresh sandbox of its own: a kernel's confinement without the kernel.

Exercise 03 grades a student's *test suite*: the grader runs ``python -m pytest`` on it once per
version of the function under test. Each run gets a :class:`CommandSandbox` — the same view of the
machine, uid, cgroup and limits as a submission's kernel (:class:`~labsupport.course.sandbox.
Sandbox`), a fresh one every time, so nothing a run does (files written, processes left behind)
reaches the next run, the grader or the machine. It is killed with everything it started at its
time limit.

Of ``labsupport`` a command sees only :data:`labsupport.course.suites.LIBRARY`: pytest's outcome
plugin and the stand-in that calls the version under test where it is served, never a module
that computes a function a suite tests; a copy of the package installed in the grader's Python
is shown as that same short library. The version's socket, when given, is the only other
thing shown (at :data:`SERVICE`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import labsupport
from labsupport.course import sandbox
from labsupport.course.sandbox import Isolation, Limits, SandboxUnavailable
from labsupport.course.suites import SERVICE_VARIABLE, short_library

#: Most bytes of output read back from one command (its end, where pytest's summary is).
MAX_OUTPUT_BYTES = 1024**2
#: Where a served version's socket folder appears inside the sandbox.
SERVICE = sandbox.INSIDE / "service"


@dataclass(frozen=True)
class CommandResult:
    """What one command did.

    ``returncode`` is None when the command was killed at its time limit; ``output`` is the end
    of what it wrote to its standard output and error (at most :data:`MAX_OUTPUT_BYTES`).
    """

    returncode: int | None
    output: str


class CommandSandbox(sandbox.Sandbox):
    """A :class:`~labsupport.course.sandbox.Sandbox` that runs one Python command, not a kernel.

    Use a fresh one per command: :meth:`run_python` closes it when the command is done.
    """

    def run_python(self, python_args: Sequence[str], files: Mapping[str, str],
                   environment: Mapping[str, str] | None = None,
                   service: str | None = None) -> CommandResult:
        """Run the grader's Python with ``python_args``, confined like a kernel.

        ``files`` (name -> text) are shown read-only in the working directory
        (``/home/student``, otherwise a private ``tmpfs``). ``service``, the path of a Unix
        socket (a served version, :func:`labsupport.course.suites.served`), is shown with its
        folder at :data:`SERVICE` and named by the environment variable
        :data:`~labsupport.course.suites.SERVICE_VARIABLE`. The command is killed with
        everything it started after ``limits.cell_seconds``.

        Raises
        ------
        SandboxUnavailable
            When confinement is required and bubblewrap cannot run here.
        ValueError
            For a file name that is not a plain name.
        """
        if self._root is not None:
            raise RuntimeError("run_python needs a fresh CommandSandbox (this one is started)")
        problem = sandbox.bubblewrap_problem()
        if self.isolation.confined and problem:
            raise SandboxUnavailable(f"{problem}. Refusing to run unconfined.")
        for name in files:
            if not name or "/" in name or name in (".", "..") or "\0" in name:
                raise ValueError(f"file name {name!r} must be a plain name (no folders)")
        self._root = Path(tempfile.mkdtemp(prefix="labsupport-command-"))
        try:
            return self._command(list(python_args), dict(files), dict(environment or {}),
                                 service)
        finally:
            self.close()

    def _command(self, python_args: list[str], files: dict[str, str],
                 environment: dict[str, str], service: str | None) -> CommandResult:
        assert self._root is not None
        root = self._root
        for name in ("work", "kernel", "submission"):
            (root / name).mkdir(mode=0o755)
        self._library = short_library(root / "library")
        for name, text in files.items():
            self.provide(name, text.encode("utf-8"))
        self._make_cgroup()
        confined = self.isolation.confined
        binds: list[str] | None = None
        if confined:
            if os.geteuid() == 0:
                self._uid = sandbox._allocate_uid(  # pylint: disable=protected-access
                    self.isolation.uid_base)
            (root / "empty").touch(mode=0o444)
            binds, executable = sandbox._python_binds(  # pylint: disable=protected-access
                root / "empty")
            binds += self._shown(files, service, environment)
            cwd, tmp = str(sandbox.HOME), "/tmp"
            pythonpath = str(sandbox.INSIDE / "lib")
        else:
            executable, cwd, tmp = sys.executable, str(root / "work"), str(root / "work")
            for name in files:
                shutil.copy(root / "submission" / name, root / "work" / name)
            pythonpath = str(Path(labsupport.__file__).resolve().parent.parent)
            if service is not None:
                environment[SERVICE_VARIABLE] = service
        env = {**sandbox._kernel_environment(  # pylint: disable=protected-access
            cwd, tmp, tmp, pythonpath, executable), **environment}
        config = {"rlimits": self._rlimits(), "uid": self._uid, "cwd": cwd,
                  "argv": [executable, *python_args], "env": env}
        output = root / "output.txt"
        wrapper = sandbox._WRAPPER  # pylint: disable=protected-access
        self._spawn([executable, "-I", "-S", "-c", wrapper, json.dumps(config)], binds, output)
        assert self._process is not None
        try:
            code: int | None = self._process.wait(timeout=self.limits.cell_seconds)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and confined and code > 128:
            code = -(code - 128)  # bwrap reports a signal as 128 + its number
        with open(output, "rb") as stream:
            stream.seek(max(0, os.fstat(stream.fileno()).st_size - MAX_OUTPUT_BYTES))
            text = stream.read().decode("utf-8", "replace")
        return CommandResult(code, text)

    def _shown(self, files: dict[str, str], service: str | None,
               environment: dict[str, str]) -> list[str]:
        """bwrap options showing the command's files, the short library in place of any copy
        of ``labsupport`` installed in the grader's Python, and the served version's socket
        folder (named in ``environment``)."""
        assert self._root is not None and self._library is not None
        binds = []
        for name in files:
            binds += ["--ro-bind", str(self._root / "submission" / name),
                      str(sandbox.HOME / name)]
        for copy in _installed_copies():
            binds += ["--ro-bind", str(self._library), str(copy)]
        if service is not None:
            binds += ["--ro-bind", str(Path(service).parent), str(SERVICE)]
            environment[SERVICE_VARIABLE] = str(SERVICE / Path(service).name)
        return binds


def _installed_copies() -> list[Path]:
    """Where a copy of ``labsupport`` installed in the grader's Python appears in a sandbox."""
    found = []
    prefix, base = Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()
    for root, inside in ((base, base), (prefix, sandbox.INSIDE / "python")):
        for copy in sorted(root.glob("lib/python*/site-packages/labsupport")):
            found.append(inside / copy.relative_to(root))
    return sorted(set(found))


def run_command(python_args: Sequence[str], files: Mapping[str, str], limits: Limits,
                isolation: Isolation | None = None,
                environment: Mapping[str, str] | None = None,
                service: str | None = None) -> CommandResult:
    """Run the grader's Python with ``python_args`` in a fresh sandbox, then remove the sandbox.

    See :meth:`CommandSandbox.run_python`; ``limits.cell_seconds`` is the command's time limit.
    """
    return CommandSandbox(limits, isolation).run_python(python_args, files, environment,
                                                        service)
