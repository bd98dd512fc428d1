"""Running one exercise test function: pass, fail, error, and what the student reads."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from labsupport.course import runner


@dataclass(frozen=True)
class _Test:
    question: str
    name: str
    source: str


SOURCE = '''
import math

def test_square(ns):
    assert ns.square(3) == 9, f"square(3) should be 9, got {ns.square(3)}"

def test_bare(ns):
    assert ns.square(2) == 4

def test_sqrt(ns):
    assert math.isclose(math.sqrt(ns.square(5)), 5)
'''


def _square_stub(_x):
    raise NotImplementedError("q1: write square()")


@pytest.mark.parametrize("square, test, status, message", [
    (lambda x: x * x, "test_square", "passed", ""),
    (lambda x: x + x, "test_square", "failed", "square(3) should be 9, got 6"),
    (lambda x: x * 3, "test_bare", "failed", "this check did not hold: assert ns.square(2) == 4"),
    (_square_stub, "test_square", "error", "not implemented yet: q1: write square()"),
    (lambda x: 1 / 0, "test_sqrt", "error", "ZeroDivisionError: division by zero"),
    (lambda x: x * x, "test_missing", "error",
     "LookupError: the test cell of q1 defines no function test_missing()"),
])
def test_run_test_reports_status_and_message(square, test, status, message):
    outcome = runner.run_test(_Test("q1", test, SOURCE), SimpleNamespace(square=square))
    assert (outcome.question, outcome.test) == ("q1", test)
    assert outcome.status == status and outcome.passed == (status == "passed")
    assert outcome.message == message
    assert outcome.seconds >= 0


def test_a_missing_name_is_an_error_not_a_crash():
    outcome = runner.run_test(_Test("q1", "test_square", SOURCE), SimpleNamespace())
    assert outcome.status == "error"
    assert outcome.message.startswith("AttributeError")


def test_a_broken_test_cell_is_an_error():
    outcome = runner.run_test(_Test("q2", "test_x", "import no_such_module_here\n"), None)
    assert outcome.status == "error" and "ModuleNotFoundError" in outcome.message


def test_system_exit_inside_the_test_does_not_stop_the_caller():
    source = "import sys\ndef test_exit(ns):\n    sys.exit(0)\n"
    assert runner.run_test(_Test("q1", "test_exit", source), None).status == "error"


def test_each_run_starts_from_a_fresh_scope():
    source = "seen = []\ndef test_once(ns):\n    seen.append(1)\n    assert len(seen) == 1\n"
    test = _Test("q1", "test_once", source)
    assert [runner.run_test(test, None).status for _ in range(2)] == ["passed", "passed"]
