"""labsupport.course.suites: a test suite graded by the bugs it catches, each version served from
a process of its own (here in plain subprocesses; in a sandbox: tests/test_commandbox.py)."""

from __future__ import annotations

import pytest

from labsupport.course import suites

ADD = "def add(a, b):\n    return a + b\n"
GOOD = suites.Version("good", "a correct add", ADD, True)
OTHER_GOOD = suites.Version("other-good", "add written differently",
                            "def add(a, b):\n    return sum((a, b))\n", True)
MINUS = suites.Version("minus", "subtracts", "def add(a, b):\n    return a - b\n", False)
OFF = suites.Version("off", "adds one too many", "def add(a, b):\n    return a + b + 1\n",
                     False)
EQUAL = suites.Version("equal", "is right only for equal arguments",
                       "def add(a, b):\n    return a + b if a == b else a * b\n", False)
CATCHES_MINUS_AND_OFF = "from calc import add\n\ndef test_two():\n    assert add(1, 1) == 2\n"


def test_a_suite_earns_the_bugs_it_catches_and_no_others():
    grade = suites.grade_suite(CATCHES_MINUS_AND_OFF, [GOOD, OTHER_GOOD, MINUS, OFF, EQUAL],
                               module="calc", seed=3)
    assert grade.passes_correct
    assert [grade.caught(name) for name in ("minus", "off", "equal")] == [True, True, False]
    assert grade.n_caught == 2
    assert "caught   subtracts" in grade.feedback()
    assert "survived is right only for equal arguments" in grade.feedback()
    assert "return a * b" not in grade.feedback()


def test_a_suite_that_cannot_fail_catches_nothing():
    grade = suites.grade_suite("def test_nothing():\n    assert True\n",
                               [GOOD, MINUS, OFF], module="calc")
    assert grade.passes_correct and grade.n_caught == 0


def test_a_suite_failing_on_a_correct_version_earns_nothing_and_stops():
    exact = "from calc import add\n\n\ndef test_sum():\n    assert add(0.1, 0.2) == 0.3\n"
    rounded = suites.Version("rounded", "rounds to 12 digits",
                             "def add(a, b):\n    return round(a + b, 12)\n", True)
    grade = suites.grade_suite(exact, [GOOD, rounded, MINUS], module="calc")
    assert not grade.passes_correct and not grade.caught("minus") and grade.n_caught == 0
    assert all(r.version.correct for r in grade.results)  # the bug was never run
    assert "does not pass on a correct implementation (a correct add)" in grade.feedback()


#: Each test reads the version instead of calling it, or brings its own copy of the lab's code.
READERS = '''
import inspect

import pytest

import calc
from calc import add


def test_bytecode():
    assert "BINARY_OP" in str(list(add.__code__.co_code))


def test_source():
    assert "a + b" in inspect.getsource(add)


def test_module_file():
    with open(calc.__file__, encoding="utf-8") as module:
        assert "a + b" in module.read()


def test_the_labs_own_modules():
    from labsupport import preprocessing
    assert preprocessing


def test_only_the_stand_in_is_there():
    assert [name for name in vars(calc) if not name.startswith("__")] == ["ServedFunction", "add"]
'''


def test_a_suite_sees_a_stand_in_with_no_code_and_no_lab_modules():
    run = suites.run_suite(READERS, ADD, module="calc")
    outcomes = {o.test_id.split("::")[1]: (o.outcome, o.message) for o in run.outcomes}
    assert outcomes["test_only_the_stand_in_is_there"] == ("passed", "")
    assert "__code__" in outcomes["test_bytecode"][1]
    assert outcomes["test_source"][0] == outcomes["test_module_file"][0] == "failed"
    assert "cannot import name 'preprocessing'" in outcomes["test_the_labs_own_modules"][1]


CALLS = '''
import numpy as np
import pandas as pd
import pytest

from frames import first_label, scale


def test_arrays_and_tables_cross_as_plain_data():
    assert scale(np.array([1.0, np.nan]), 2).tolist()[0] == 2.0
    assert first_label(pd.DataFrame({"x": [1]}, index=["r"])) == "r"


def test_timestamps_cross_both_ways():
    days = pd.to_datetime(["2024-01-01", "2024-01-02"])
    assert first_label(pd.DataFrame({"x": [1, 2]}, index=days)) == pd.Timestamp("2024-01-01")


def test_the_versions_exceptions_come_back_as_built_in_ones():
    with pytest.raises(ValueError, match="factor must be positive") as raised:
        scale(np.ones(2), -1)
    assert type(raised.value) is ValueError  # the version's own subclass, as its built-in base
    with pytest.raises(IndexError):
        first_label(pd.DataFrame({"x": []}))


def test_only_plain_data_goes_in():
    with pytest.raises(TypeError, match="plain data"):
        scale(object(), 2)


def test_only_the_offered_functions_answer():
    from labsupport.course.suites import ServedFunction
    with pytest.raises(RuntimeError, match="could not answer .missing: pd"):
        ServedFunction("pd")()
'''
FRAMES = '''
class FactorError(ValueError):
    """A factor that is not positive."""


def scale(values, factor):
    if factor <= 0:
        raise FactorError("factor must be positive")
    return values * factor


def first_label(frame):
    return frame.index.tolist()[0]


def _private():
    return 1
'''


def test_a_call_carries_plain_data_and_the_exception_back():
    run = suites.run_suite(CALLS, FRAMES, module="frames")
    assert run.passed, run.output


def test_the_stand_in_offers_the_public_functions_every_version_defines():
    assert suites.public_functions(FRAMES) == ("scale", "first_label")
    text = suites.stand_in(("scale",))
    assert "scale = ServedFunction('scale')" in text and "first_label" not in text


@pytest.mark.parametrize("versions, error", [
    ([GOOD, GOOD, MINUS], ValueError),
    ([GOOD, OTHER_GOOD], ValueError),
    ([MINUS, OFF], ValueError),
    ([GOOD, "def add(a, b): return 0"], TypeError),
])
def test_grade_suite_needs_well_formed_versions(versions, error):
    with pytest.raises(error):
        suites.grade_suite(CATCHES_MINUS_AND_OFF, versions, module="calc")


def test_a_version_with_broken_code_is_refused_when_declared():
    with pytest.raises(ValueError, match="not valid Python"):
        suites.Version("broken", "broken", "def add(:\n", False)


def test_run_suite_checks_its_names():
    with pytest.raises(ValueError, match="identifier"):
        suites.run_suite(CATCHES_MINUS_AND_OFF, ADD, module="not a name")
    with pytest.raises(ValueError, match="test_"):
        suites.run_suite(CATCHES_MINUS_AND_OFF, ADD, module="calc", test_file="suite.py")
    with pytest.raises(ValueError, match="functions by name"):
        suites.run_suite(CATCHES_MINUS_AND_OFF, "X = 1\n", module="calc")


COUNTER = "CALLS = []\n\n\ndef count():\n    CALLS.append(1)\n    return len(CALLS)\n"


def test_each_run_gets_a_fresh_server_forked_from_one_fork_server(monkeypatch):
    with suites.Servers(["numpy"]) as servers:
        for _ in range(2):
            with servers.served(COUNTER, "counter", ["count"]) as path:
                monkeypatch.setenv(suites.SERVICE_VARIABLE, str(path))
                count = suites.ServedFunction("count")
                assert [count(), count()] == [1, 2]  # the module's state lives for one run
            assert not path.exists()


def test_the_fork_server_preloads_what_the_versions_import():
    sources = ["from __future__ import annotations\nimport numpy as np\n",
               "import pandas.api\nfrom collections.abc import Mapping\nfrom . import x\n"]
    assert suites.imported_modules(sources) == ("collections", "numpy", "pandas")
