"""labsupport.course.commandbox: one command in a fresh sandbox, as exercise 03's grader runs a
student's test suite against each version of a function."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from labsupport.course import commandbox, proxy, suites
from labsupport.course.sandbox import Isolation, Limits
from tests.sandbox_support import require_bubblewrap
from tests.test_suites import ADD, READERS

LIMITS = Limits(cell_seconds=20, submission_seconds=60, memory_bytes=1024**3, processes=32)
ROOT = Path(__file__).resolve().parent.parent

PROBE = f'''
import os
import pathlib
import sys

home = pathlib.Path.home()
print("cwd", os.getcwd(), sorted(os.listdir(".")))
print("remembered", (home / "seen").exists(), pathlib.Path("/tmp/seen").exists())
(home / "seen").write_text("x")
pathlib.Path("/tmp/seen").write_text("x")
try:
    os.remove("given.txt")
    print("deleted")
except OSError as error:
    print("not deleted", type(error).__name__)
print("project visible", os.path.exists({str(ROOT)!r}))
sys.exit(3)
'''


@pytest.fixture(autouse=True)
def _bubblewrap():
    require_bubblewrap()


def test_a_command_sees_its_files_read_only_and_forgets_everything_between_runs():
    files = {"probe.py": PROBE, "given.txt": "hello"}
    first = commandbox.run_command(["probe.py"], files, LIMITS)
    second = commandbox.run_command(["probe.py"], files, LIMITS)
    for done in (first, second):
        assert done.returncode == 3, done.output
        assert "cwd /home/student ['given.txt', 'probe.py']" in done.output
        assert "remembered False False" in done.output
        assert "not deleted" in done.output and "project visible False" in done.output


def test_a_command_is_killed_at_its_time_limit():
    limits = Limits(cell_seconds=1, submission_seconds=10, processes=32)
    done = commandbox.run_command(["-c", "import time; print('started', flush=True); "
                                   "time.sleep(600)"], {}, limits)
    assert done.returncode is None and "started" in done.output


def test_file_names_must_be_plain():
    with pytest.raises(ValueError, match="plain name"):
        commandbox.run_command(["-c", "pass"], {"../escape.py": "x"}, LIMITS)


def test_the_graders_executor_runs_each_version_in_a_fresh_sandbox():
    # The suite remembers, in its home folder and in /tmp, the versions it has seen, and fails
    # on any but the first: in a fresh sandbox every version is the first.
    remembers = ("import pathlib\n\nfrom calc import add\n\n\ndef test_add():\n"
                 "    seen = pathlib.Path('/tmp/seen')\n"
                 "    assert not seen.exists()\n    seen.write_text('x')\n"
                 "    assert add(2, 2) == 4\n")
    versions = [suites.Version("good", "a correct add", "def add(a, b):\n    return a + b\n",
                                True),
                suites.Version("again", "add again", "def add(a, b):\n    return b + a\n",
                                True),
                suites.Version("off", "one too many", "def add(a, b):\n    return a + b + 1\n",
                                False)]
    executor = proxy.SandboxedCommand(Isolation())
    grade = suites.grade_suite(remembers, versions, module="calc", timeout=20,
                                execute=executor)
    assert grade.passes_correct and grade.caught("off")


def test_in_the_sandbox_a_suite_sees_a_stand_in_and_no_lab_module_that_computes():
    run = suites.run_suite(READERS, ADD, module="calc", timeout=20,
                           execute=proxy.SandboxedCommand(Isolation()))
    outcomes = {o.test_id.split("::")[1]: (o.outcome, o.message) for o in run.outcomes}
    assert outcomes["test_only_the_stand_in_is_there"] == ("passed", ""), run.output
    assert "__code__" in outcomes["test_bytecode"][1]
    assert outcomes["test_source"][0] == outcomes["test_module_file"][0] == "failed"
    assert "cannot import name 'preprocessing'" in outcomes["test_the_labs_own_modules"][1]


def test_outside_the_grader_tests_run_in_a_plain_subprocess():
    assert proxy.command_executor(object()) is None


def test_each_submissions_grading_has_an_executor_of_its_own():
    box = SimpleNamespace(isolation=Isolation(), limits=Limits())
    first, second = proxy.KernelNamespace(box), proxy.KernelNamespace(box)
    # Every test of one submission gets an equal executor (grade_suite shares its runs), two
    # submissions unequal ones (equal suites of two students never share a run).
    assert proxy.command_executor(first) == proxy.command_executor(first)
    assert proxy.command_executor(first) != proxy.command_executor(second)
