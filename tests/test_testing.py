"""labsupport.testing: pytest's outcomes as data (exercise 03's grading: tests/test_suites.py)."""

from __future__ import annotations

import pytest

from labsupport import testing

ADD = "def add(a, b):\n    return a + b\n"
SUITE = '''
import pytest

from calc import add


def test_the_lectures_failing_sum():
    assert add(-1, 10) == -2


@pytest.mark.parametrize("a, b, expected", [(1, 2, 3), (0, 0, 0)])
def test_the_sum_table(a, b, expected):
    assert add(a, b) == expected


def test_not_yet():
    pytest.skip("later")


@pytest.fixture
def broken():
    raise RuntimeError("fixture failed")


def test_with_a_broken_fixture(broken):
    assert broken
'''


@pytest.fixture(scope="module")
def lecture_run() -> testing.TestRun:
    """The lecture's test file, run once for the tests below."""
    return testing.run_pytest({"calc.py": ADD, "test_calc.py": SUITE})


def test_every_test_gets_its_real_pytest_outcome(lecture_run):
    found = {o.test_id: o.outcome for o in lecture_run.outcomes}
    assert found == {"test_calc.py::test_the_lectures_failing_sum": "failed",
                     "test_calc.py::test_the_sum_table[1-2-3]": "passed",
                     "test_calc.py::test_the_sum_table[0-0-0]": "passed",
                     "test_calc.py::test_not_yet": "skipped",
                     "test_calc.py::test_with_a_broken_fixture": "error"}
    assert (lecture_run.exit_code, lecture_run.status, lecture_run.passed) == (1, "completed",
                                                                               False)


def test_the_failure_message_is_pytests_rewritten_assertion(lecture_run):
    (failed,) = [o for o in lecture_run.outcomes if o.outcome == "failed"]
    assert failed.message == "assert 9 == -2"
    assert "where 9 = add(-1, 10)" in lecture_run.output
    assert testing.MARK not in lecture_run.output
    assert lecture_run.summary() == "2 passed, 1 failed, 1 error, 1 skipped"


def test_a_file_that_cannot_be_collected_is_an_error():
    run = testing.run_pytest({"test_broken.py": "def test_x(:\n    pass\n"})
    assert [o.outcome for o in run.outcomes] == ["error"] and not run.passed


def test_a_hanging_run_is_killed_at_its_time_limit():
    run = testing.run_pytest({"test_hang.py": "import time\n\ndef test_h():\n"
                                              "    time.sleep(600)\n"}, timeout=2)
    assert (run.status, run.exit_code, run.passed) == ("timeout", None, False)


def test_a_run_that_exits_without_reporting_has_no_outcomes():
    run = testing.run_pytest({"test_exit.py": "import os\n\ndef test_x():\n    os._exit(0)\n"})
    assert (run.status, run.outcomes, run.passed) == ("no-report", (), False)


@pytest.mark.parametrize("output, status", [
    ("nothing here", "no-report"),
    (testing.MARK + "not json", "no-report"),
    (testing.MARK + '[["t", "exploded", ""]]', "no-report"),
    (testing.MARK + '[["t", "passed"]]', "no-report"),
    (testing.MARK + '[["t", "passed", ""]]', "completed"),
])
def test_the_outcome_line_is_parsed_strictly(output, status):
    assert testing.parse_output(output, 0).status == status


def test_only_the_last_outcome_line_counts():
    forged = testing.MARK + '[["t", "passed", ""]]'
    real = testing.MARK + '[["t", "failed", "assert 0"]]'
    run = testing.parse_output(f"{forged}\nreport\n{real}\n", 1)
    assert [o.outcome for o in run.outcomes] == ["failed"] and run.output == f"{forged}\nreport"


@pytest.mark.parametrize("files, args, timeout, error", [
    ({}, (), 10, TypeError),
    ({"../test_a.py": "x = 1"}, (), 10, ValueError),
    ({"/tmp/test_a.py": "x = 1"}, (), 10, ValueError),
    ({"tests//test_a.py": "x = 1"}, (), 10, ValueError),
    ({"tests\\test_a.py": "x = 1"}, (), 10, ValueError),
    ({"test_a.py": b"x = 1"}, (), 10, TypeError),
    ({"test_a.py": "x = 1"}, "-q", 10, TypeError),
    ({"test_a.py": "x = 1"}, (), 0, ValueError),
    ({"test_a.py": "x = 1"}, (), float("nan"), ValueError),
])
def test_bad_arguments_are_refused(files, args, timeout, error):
    with pytest.raises(error):
        testing.run_pytest(files, args, timeout)


PROJECT = {
    "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
                      'pythonpath = ["src"]\naddopts = "--strict-markers"\n',
    "src/calc/__init__.py": ADD,
    "tests/conftest.py": "import pytest\n\n@pytest.fixture\ndef two():\n    return 2\n",
    "tests/test_calc.py": "from calc import add\n\ndef test_add(two):\n"
                          "    assert add(two, two) == 4\n",
}


def test_a_project_laid_out_in_folders_runs_with_its_configuration():
    run = testing.run_pytest(PROJECT)
    assert [(o.test_id, o.outcome) for o in run.outcomes] == [("tests/test_calc.py::test_add",
                                                               "passed")]
    typo = testing.run_pytest({**PROJECT, "tests/test_marked.py": (
        "import pytest\n\n@pytest.mark.slwo\ndef test_typo():\n    pass\n")})
    assert [(o.test_id, o.outcome) for o in typo.outcomes] == [("tests/test_marked.py", "error")]
    assert "'slwo' not found in `markers` configuration option" in typo.output


def test_normalising_drops_comments_and_docstrings_but_keeps_the_code():
    source = 'def f(x):\n    """Doc."""\n    # note\n    return x + 1  # more\n'
    assert testing.normalise_source(source) == "def f(x):\n    return x + 1\n"
    assert testing.normalise_source('"""Only a docstring."""\n') == "pass\n"
    with pytest.raises(ValueError, match="not valid Python"):
        testing.normalise_source("def f(:\n")
