"""labsupport.codequality: pylint's messages and score as data, the score formula, the
suppressions pylint obeys, and modules run from their source."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from labsupport import codequality

LECTURE_SCRIPT = textwrap.dedent("""\
    import sys, os

    # Example of poorly styled Python code with imports
    def Calc(x,y):
        #calculate sum
        sum=x+y;
        return sum
    class my_data:
        def __init__(self, data):
            self.data=data

        def get_data(self):
            return self.data

    data_instance=my_data([1,2,3,4])
    print(Calc(3, 4))
    print(data_instance.get_data())
    """)

CLEAN = textwrap.dedent('''\
    """Add numbers."""


    def add(first: int, second: int) -> int:
        """Return the sum of two numbers."""
        return first + second
    ''')

#: Sources with messages of every scored category (an error counts five times).
SAMPLES = {
    "lecture": LECTURE_SCRIPT,
    "clean": CLEAN,
    "one_warning": CLEAN + "\n\ndef unused(value):\n    \"\"\"Ignore value.\"\"\"\n    return 1\n",
    "error": CLEAN + "\n\n" + "".join(f"print(add({i}, {i}))\n" for i in range(20))
             + "print(add(1, UNDEFINED_NAME))\n",
    "many_statements": '"""Doc."""\nimport os\n' + "".join(f"print({i})\n" for i in range(30)),
}


def test_the_lecture_script_gets_its_twelve_messages_and_zero():
    report = codequality.lint(LECTURE_SCRIPT, config=None, module="example_script")
    assert [m.message_id for m in report.messages] == [
        "W0301", "C0114", "C0410", "C0116", "C0103", "W0622", "C0115", "C0103", "C0116",
        "R0903", "W0611", "W0611"]
    assert report.score == 0.0 and report.statements == 12
    first = report.messages[0]
    assert (first.symbol, first.category, first.line, first.column, first.text) == (
        "unnecessary-semicolon", "warning", 6, 0, "Unnecessary semicolon")
    assert report.counts == {"fatal": 0, "error": 0, "warning": 4, "refactor": 1,
                             "convention": 7, "info": 0}
    assert report.ids["W0611"] == 2 and report.ids["C0103"] == 2


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_formula_reproduces_pylints_score(name):
    report = codequality.lint(SAMPLES[name], config=None, module="sample")
    assert report.score is not None
    assert codequality.score(report.messages, report.statements) == pytest.approx(report.score)


def test_scores_differ_where_the_weights_matter():
    scores = {name: codequality.lint(source, config=None, module="sample").score
              for name, source in SAMPLES.items()}
    assert scores["clean"] == 10.0
    assert scores["many_statements"] == pytest.approx(10 - 10 * 1 / 31)  # one unused import
    error = codequality.lint(SAMPLES["error"], config=None, module="sample")
    assert error.counts["error"] == 1
    assert error.statements == 23  # def, return and 21 calls (docstrings do not count)
    assert error.score == pytest.approx(10 - 10 * 5 / 23)


def test_the_score_formula_by_hand():
    def message(category):
        return codequality.Message("X0000", "made-up", category, 1, 0, "made up")

    assert codequality.score([message("convention"), message("error")], 12) == pytest.approx(5.0)
    assert codequality.score([message("info")] * 5, 2) == 10.0
    assert codequality.score([message("warning")] * 50, 10) == 0.0
    assert codequality.score([message("fatal")], 100) == 0.0
    assert codequality.score([], 0) is None
    with pytest.raises(ValueError, match="whole number"):
        codequality.score([], -1)
    with pytest.raises(ValueError, match="unknown message categories"):
        codequality.score([message("style")], 3)


def test_in_process_run_matches_the_pylint_command(tmp_path):
    script = tmp_path / "example_script.py"
    script.write_text(LECTURE_SCRIPT, encoding="utf-8")
    empty = tmp_path / "empty.pylintrc"
    empty.write_text("", encoding="utf-8")
    command = subprocess.run(
        [sys.executable, "-m", "pylint", f"--rcfile={empty}", "--persistent=n",
         "--output-format=json2", str(script)], capture_output=True, text=True, check=False)
    printed = json.loads(command.stdout)
    report = codequality.lint_file(script, config=None)
    assert [(m["messageId"], m["line"], m["column"], m["message"]) for m in printed["messages"]] \
        == [(m.message_id, m.line, m.column, m.text) for m in report.messages]
    assert printed["statistics"]["score"] == report.score


def test_the_lab_config_is_the_default_and_differs_from_pylints():
    source = '"""Doc."""\n\n\ndef fit(X):\n    """Fit."""\n    return X\n'
    assert not codequality.lint(source).ids
    assert codequality.lint(source, config=codequality.LAB_CONFIG).config.endswith(".pylintrc")
    defaults = codequality.lint(source, config=None)
    assert [m.symbol for m in defaults.messages] == ["invalid-name"]
    assert defaults.config == "pylint defaults"


def test_options_reach_pylint():
    long_line = '"""Doc."""\n\nVALUE = "' + "x" * 80 + '"\n'
    assert not codequality.lint(long_line).ids
    assert codequality.lint(long_line, options=["--max-line-length=79"]).ids == {"C0301": 1}
    with pytest.raises(TypeError, match="pylint flags"):
        codequality.lint(long_line, options="--max-line-length=79")


def test_a_module_name_linted_twice_is_not_served_from_a_cache():
    first = codequality.lint(CLEAN, module="same_name")
    second = codequality.lint(CLEAN + "import os\n", module="same_name")
    assert first.score == 10.0 and second.ids["W0611"] == 1


def test_code_that_does_not_parse_is_a_clear_error():
    with pytest.raises(codequality.CodeDoesNotParse, match=r"line 2: .*fix the syntax"):
        codequality.lint("x = 1\ndef f(:\n    pass\n")
    with pytest.raises(ValueError, match="does not parse"):
        codequality.lint("x = 1\0\n")


@pytest.mark.parametrize("source, module, error, words", [
    (b"x = 1\n", "snippet", TypeError, "as a str"),
    ("x = 1\n", "Bad-Name", ValueError, "lower-case Python name"),
])
def test_bad_input_says_what_was_expected(source, module, error, words):
    with pytest.raises(error, match=words):
        codequality.lint(source, module=module)


def test_a_missing_config_or_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="no pylint configuration file"):
        codequality.lint(CLEAN, config=tmp_path / "nothing.rc")
    with pytest.raises(ValueError, match="existing .py file"):
        codequality.lint_file(tmp_path / "absent.py")


def test_a_module_without_statements_has_no_score():
    report = codequality.lint('"""Only a docstring."""\n', config=None)
    assert (report.statements, report.score) == (0, None)
    assert "rated" not in str(report)


def test_reports_read_like_pylint_and_convert_to_a_table():
    report = codequality.lint(LECTURE_SCRIPT, config=None, module="example_script")
    text = str(report).splitlines()
    assert text[0] == "************* Module example_script"
    assert text[1] == "example_script.py:6:0: W0301: Unnecessary semicolon (unnecessary-semicolon)"
    assert text[-1] == "Your code has been rated at 0.00/10"
    assert repr(report).startswith("LintReport(module='example_script', score=0.00/10, "
                                   "statements=12, messages=12: W0301 C0114")
    frame = report.to_frame()
    assert list(frame.columns) == ["line", "column", "message_id", "symbol", "category", "text"]
    assert len(frame) == 12 and frame["message_id"].tolist()[-1] == "W0611"


def test_suppressions_are_comments_not_strings():
    source = ('TEXT = "# pylint: disable=all"\n'
              "value = 1  # pylint: disable=invalid-name\n"
              "#pylint:skip-file\n")
    assert codequality.suppressions(source) == (
        (2, "# pylint: disable=invalid-name"), (3, "#pylint:skip-file"))
    assert not codequality.suppressions(CLEAN)
    with pytest.raises(codequality.CodeDoesNotParse):
        codequality.suppressions("def (")


def test_stripping_suppressions_restores_what_they_hid():
    silenced = CLEAN.replace("def add(first: int, second: int) -> int:",
                             "def add(First: int, second: int) -> int:  # pylint: disable=C0103")
    silenced = "# pylint: skip-file\n" + silenced.replace("return first", "return First")
    assert not codequality.lint(silenced).ids
    stripped = codequality.strip_suppressions(silenced)
    assert stripped.splitlines()[0] == "" and "pylint" not in stripped
    assert len(stripped.splitlines()) == len(silenced.splitlines())
    assert codequality.lint(stripped).ids == {"C0103": 1}
    assert codequality.strip_suppressions(CLEAN) == CLEAN
    kept = 'TEXT = "# pylint: disable=all"  # a string, not a comment\n'
    assert codequality.strip_suppressions(kept) == kept


def test_a_skipped_file_is_not_an_analysed_one():
    report = codequality.lint("# pylint: skip-file\nimport os\n", config=None)
    assert report.skipped and not report.analysed and not report.messages
    assert report.statements == 0 and report.score is None
    assert str(report).splitlines()[-1].endswith("I0013: Ignoring entire file (file-ignored)")
    assert codequality.lint(CLEAN).analysed
    fatal = codequality.Message("F0002", "astroid-error", "fatal", 1, 0, "crashed")
    assert not codequality.LintReport("m", (fatal,), 3, 0.0, "pylint defaults").analysed


def test_what_a_comment_suppressed_is_reported_as_the_pylint_command_reports_it(tmp_path):
    silenced = tmp_path / "silenced.py"
    silenced.write_text('"""Doc."""\nimport os  # pylint: disable=unused-import\n\n\n'
                        "def Add(first, second):  # pylint: disable=C0103\n"
                        '    """Add."""\n    return first + second\n', encoding="utf-8")
    empty = tmp_path / "empty.pylintrc"
    empty.write_text("", encoding="utf-8")
    command = subprocess.run(
        [sys.executable, "-m", "pylint", f"--rcfile={empty}", "--persistent=n",
         "--enable=suppressed-message", "--output-format=json2", str(silenced)],
        capture_output=True, text=True, check=False)
    printed = json.loads(command.stdout)["messages"]
    report = codequality.lint_file(silenced, config=None)
    assert not report.messages and report.score == 10.0
    assert sorted((m["line"], m["message"]) for m in printed) \
        == sorted((m.line, m.text) for m in report.suppressed)
    assert sorted((m.message_id, m.symbol, m.category, m.line) for m in report.suppressed) == [
        ("C0103", "invalid-name", "convention", 5), ("W0611", "unused-import", "warning", 2)]


#: Pragmas pylint obeys, each hiding what the same code without it gets (the code, then the
#: comment-free twin): a pragma inside a longer comment, one that also switches off pylint's
#: report of suppressions, a whole-file skip, the next-line form, and a U+2028 (a line break
#: for str.splitlines, not for Python) in an earlier comment.
DISGUISED = {
    "inside a comment": ("# see pylint: disable=C,W,R\nimport os\n", "import os\n"),
    "hides its own report": ("# pylint: disable=suppressed-message,unused-import\nimport os\n",
                             "import os\n"),
    "skip the file": ("#pylint:skip-file\nimport os\n", "import os\n"),
    "next line": ("# pylint: disable-next=unused-import\nimport os\n", "import os\n"),
    "after a U+2028": ('"""Doc."""\n# a note\u2028here\nimport os  # pylint: disable=W0611\n'
                       "import sys\n", '"""Doc."""\n# a note\u2028here\nimport os\nimport sys\n'),
}


@pytest.mark.parametrize("name", sorted(DISGUISED))
def test_every_pragma_pylint_obeys_is_found_and_stripped(name):
    silenced, plain = DISGUISED[name]
    honest = codequality.lint(plain, config=None)
    assert len(codequality.lint(silenced, config=None).messages) < len(honest.messages)
    assert codequality.suppressions(silenced)
    stripped = codequality.strip_suppressions(silenced)
    assert not codequality.suppressions(stripped)
    report = codequality.lint(stripped, config=None)
    assert not report.suppressed and not report.skipped
    assert report.ids == honest.ids and report.statements == honest.statements
    assert [line for line in stripped.split("\n") if line] \
        == [line for line in plain.split("\n") if line]


def test_stripping_counts_lines_as_python_does():
    silenced, plain = DISGUISED["after a U+2028"]
    assert len(silenced.splitlines()) == 5 and len(silenced.split("\n")) == 5
    assert codequality.suppressions(silenced) == ((3, "# pylint: disable=W0611"),)
    assert codequality.strip_suppressions(silenced) == plain


def test_an_encoding_other_than_utf8_is_refused_for_text_and_read_for_files(tmp_path):
    with pytest.raises(codequality.CodeDoesNotParse, match="encoding 'ascii'"):
        codequality.lint('# coding: ascii\n"""Caf\u00e9."""\n')
    with pytest.raises(codequality.CodeDoesNotParse, match="encoding"):
        codequality.strip_suppressions("# -*- coding: latin-1 -*-\nx = 1  # pylint: disable=C\n")
    with pytest.raises(codequality.CodeDoesNotParse, match="cannot be written"):
        codequality.lint("x = '\udc80'\n")
    old = tmp_path / "old.py"
    old.write_bytes('# -*- coding: latin-1 -*-\n"""Caf\u00e9."""\n'.encode("latin-1"))
    assert codequality.lint_file(old, config=None).ids == {"C2503": 1}  # bad-file-encoding


MODULE = textwrap.dedent("""\
    import math


    def share(hits, total):
        return hits / total


    def circle(radius):
        return {"area": math.pi * radius ** 2, "name": "circle"}
    """)


def test_call_module_runs_the_module_from_its_source():
    namespace: dict = {}
    exec(MODULE, namespace)  # pylint: disable=exec-used  # the same code, run here
    results = codequality.call_module(
        MODULE, [("share", [1, 4]), ("circle", (2.0,)), ("share", [1, 0]), ("absent", [])],
        module="shapes")
    assert [r.call for r in results] == ["share(1, 4)", "circle(2.0)", "share(1, 0)",
                                         "absent()"]
    assert results[0].value == namespace["share"](1, 4) and not results[0].error
    assert results[1].value == namespace["circle"](2.0)
    assert (results[2].value, results[2].error) == (None, "ZeroDivisionError: division by zero")
    assert results[3].error.startswith("AttributeError")


def test_the_same_module_and_calls_run_once():
    runs = []

    def counting(python_args, files, timeout, environment):
        runs.append(sorted(files))
        return codequality.testing.run_locally(python_args, files, timeout, environment)

    calls = [("share", [3, 4])]
    first = codequality.call_module(MODULE, calls, module="shapes", execute=counting)
    assert codequality.call_module(MODULE, calls, module="shapes", execute=counting) == first
    assert runs == [["labsupport_calls.json", "shapes.py"]]
    assert first[0].value == 0.75


@pytest.mark.parametrize("source, words", [
    ("raise RuntimeError('no data here')\n", "could not be imported: RuntimeError: no data"),
    ("import os\nos._exit(0)\n", "without answering"),
    ("while True:\n    pass\n", "ran past 1 s"),
])
def test_a_module_that_does_not_answer_is_an_error(source, words):
    with pytest.raises(codequality.ModuleDoesNotRun, match=words):
        codequality.call_module(source, [("f", [1])], module="broken", timeout=1)


@pytest.mark.parametrize("calls, error, words", [
    ([("share", 1, 4)], TypeError, "pair"),
    ([("share", [object()])], TypeError, "plain data"),
    ([("share", [float("nan")])], TypeError, "plain data"),
    ([("not a name", [])], TypeError, "pair"),
])
def test_bad_calls_are_refused_before_anything_runs(calls, error, words):
    with pytest.raises(error, match=words):
        codequality.call_module(MODULE, calls, module="shapes")
    with pytest.raises(ValueError, match="lower-case"):
        codequality.call_module(MODULE, [], module="Shapes")


def test_a_verdict_is_reused_until_the_code_or_the_config_changes(tmp_path):
    config = tmp_path / "team.pylintrc"
    config.write_text("[FORMAT]\nmax-line-length=100\n", encoding="utf-8")
    long_line = '"""Doc."""\n\nVALUE = "' + "x" * 80 + '"\n'
    first = codequality.lint(long_line, config=config)
    assert codequality.lint(long_line, config=config) is first and not first.ids
    config.write_text("[FORMAT]\nmax-line-length=79\n", encoding="utf-8")
    assert codequality.lint(long_line, config=config).ids == {"C0301": 1}


PLAIN_MODULE = textwrap.dedent('''\
    """Counts and shares."""
    from __future__ import annotations

    import math
    from collections import Counter
    from statistics import mean


    class Tally(Counter):
        """A Counter that knows its name."""

        def __init__(self, values, name="tally"):
            super().__init__(values)
            self.name = name

        def __repr__(self):
            return f"{self.__class__.__name__}({self.name!r})"


    def spread(values):
        """Standard deviation around the mean, by hand."""
        centre = mean(values)
        return math.sqrt(sum((value - centre) ** 2 for value in values) / len(values))


    if __name__ == "__main__":
        print(spread([1, 2, 3]), Tally("aab").most_common(1))
    ''')


def test_plain_code_hides_nothing():
    for source in (PLAIN_MODULE, CLEAN, MODULE):
        found = codequality.hidden_code(source)
        assert isinstance(found, tuple) and not found, found


@pytest.mark.parametrize("source, line, words", [
    ('import builtins\ngetattr(builtins, "exec")("x = 1")\n', 1, "import builtins"),
    ('import builtins\ngetattr(builtins, "exec")("x = 1")\n', 2, "getattr"),
    ('exec("x = 1")\n', 1, "exec"),
    ('X = eval("1 + 1")\n', 1, "eval"),
    ('CODE = compile("x = 1", "m", "exec")\n', 1, "compile"),
    ('OS = __import__("os")\n', 1, "__import__"),
    ('vars()["x"] = 1\n', 1, "vars"),
    ('globals().update(x=1)\n', 1, "globals"),
    ('RUN = __builtins__["exec"]\n', 1, "__builtins__"),
    ('def f():\n    """Doc."""\n\n\nRUN = f.__globals__\n', 5, ".__globals__"),
    ('def g():\n    yield 1\n\n\nRUN = g().gi_frame.f_builtins["exec"]\n', 5, ".gi_frame"),
    ('def g():\n    yield 1\n\n\nRUN = g().gi_frame.f_builtins["exec"]\n', 5, ".f_builtins"),
    ('match 1:\n    case object(gi_frame=frame):\n        pass\n', 2, ".gi_frame"),
    ('import os\n', 1, "only __future__, collections"),
    ('import statistics\n', 1, "the module itself leads to others"),
    ('from statistics import sys\n', 1, "public functions and classes"),
    ('from collections import _sys\n', 1, "public functions and classes"),
    ('from math import *\n', 1, "public functions and classes"),
    ('from . import metrics\n', 1, "from . import"),
    ('from importlib import import_module\n', 1, "from importlib import"),
    ('from collections.nowhere import thing\n', 1, "no such module"),
    ('import math.nowhere\n', 1, "import math.nowhere: there is no such module"),
])
def test_code_pylint_cannot_read_is_named_with_its_line(source, line, words):
    found = codequality.hidden_code(source)
    assert any(number == line and words in what for number, what in found), found


def test_the_modules_allowed_can_be_chosen_and_bad_code_is_refused():
    assert codequality.hidden_code("import os\n", modules=("os",))[0][1].startswith("import os")
    assert codequality.hidden_code("import math\n", modules=())
    with pytest.raises(codequality.CodeDoesNotParse):
        codequality.hidden_code("def broken(:\n")
