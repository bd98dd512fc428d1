"""Code quality as data: pylint's messages and score for a piece of code (lesson 04).

Lesson 04 runs pylint on the lecture's badly styled script and fixes it one message kind at a
time; exercise 04 grades a rewritten module on its pylint score. Both need what pylint finds as
values rather than as text on a terminal, so :func:`lint` runs pylint in this process (its
documented ``pylint.lint.Run`` entry point, about 30 ms per small module once pylint is loaded)
and returns a :class:`LintReport`: the messages (id, symbol, line, column, text) and the score.

The score is pylint's default ``evaluation`` expression,

    score = max(0, 10 - 10 * (5 * errors + warnings + refactors + conventions) / statements)

(0 outright when there is a fatal message; informational messages do not count).
:func:`score` computes it from a report's messages and statement count, and the tests check it
against the number pylint itself reports.

pylint reads only code that Python can parse: :func:`lint` raises :class:`CodeDoesNotParse`
naming the line, instead of returning pylint's single ``syntax-error`` message.

``# pylint: disable=...`` comments switch messages off. :func:`lint` asks pylint to say what they
switched off (its ``suppressed-message`` report), so a report holds both what pylint printed and
what the comments hid (:attr:`LintReport.suppressed`). :func:`suppressions` and
:func:`strip_suppressions` find those comments with pylint's own pragma parser, on the tokens
pylint itself reads, so every comment pylint obeys is found, and nothing else.

pylint judges the code it reads: text run as code (``exec`` reached through ``getattr(builtins,
"exec")``, say) is never read. :func:`hidden_code` finds what runs code pylint cannot see, so a
grader can refuse it instead of scoring the innocent-looking rest.

Cleaning up code must not change what it does: :func:`call_module` runs a module from its source
in a fresh Python process and returns what each call returned, so the code that is linted is the
code that is run (exercise 04 grades both on the same ``MODULE_SOURCE``).
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import io
import json
import re
import tempfile
import threading
import tokenize
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import astroid
import pandas as pd
from pylint import lint as pylint_lint
from pylint import reporters
from pylint.utils.pragma_parser import OPTION_PO

from labsupport import testing

#: The lab's committed pylint configuration (what ``make test`` uses). It lives in the lab's top
#: folder, next to the package: a grader's sandbox, which sees the package alone, does not have it.
LAB_CONFIG = Path(__file__).resolve().parent.parent / ".pylintrc"

#: pylint's message categories, in the order pylint's score weighs them (first letter = id).
CATEGORIES = ("fatal", "error", "warning", "refactor", "convention", "info")
_CATEGORY_OF_LETTER = {category[0].upper(): category for category in CATEGORIES}

#: How much one message of each category costs in pylint's default evaluation (per statement,
#: times 10): an error counts five times, informational messages not at all.
WEIGHTS = {"error": 5, "warning": 1, "refactor": 1, "convention": 1, "info": 0}

#: The informational messages :func:`lint` switches on so that nothing a comment hides is lost:
#: pylint's report of each message a disable comment suppressed, and of a skipped file.
REPORTED_SUPPRESSIONS = ("suppressed-message", "file-ignored")

_MODULE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_SUPPRESSED = re.compile(r"^Suppressed '(?P<symbol>[\w-]+)' \(from line (?P<line>\d+)\)$")
# pylint keeps global state (astroid's module cache, its message registry): one run at a time.
_LOCK = threading.Lock()


class CodeDoesNotParse(ValueError):
    """The code is not valid Python, so pylint cannot judge it (fix the syntax error first)."""


@dataclass(frozen=True)
class Message:
    """One pylint message (lesson 04).

    Attributes
    ----------
    message_id : str
        The code, e.g. ``"C0103"``: its letter is the category (C, R, W, E, F or I).
    symbol : str
        The readable name, e.g. ``"invalid-name"`` (what ``# pylint: disable=`` takes).
    category : str
        One of :data:`CATEGORIES`.
    line : int
        1-based line of the code the message is about.
    column : int
        0-based column, as pylint prints it.
    text : str
        pylint's explanation, e.g. ``'Function name "Calc" doesn't conform to snake_case
        naming style'``.
    """

    message_id: str
    symbol: str
    category: str
    line: int
    column: int
    text: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message_id}: {self.text} ({self.symbol})"


@dataclass(frozen=True)
class LintReport:
    """What pylint said about one module (lesson 04).

    Attributes
    ----------
    module : str
        The module's name, as pylint printed it.
    messages : tuple of Message
        What pylint printed, in the order it emitted them.
    statements : int
        How many statements pylint counted (the denominator of the score).
    score : float or None
        pylint's own score out of 10; None when the module has no statements (pylint gives none).
    config : str
        The configuration file used, or ``"pylint defaults"``.
    suppressed : tuple of Message
        The messages that ``# pylint:`` comments switched off, as pylint reports them with its
        ``suppressed-message`` check: the id, symbol and line of each hidden message, and
        pylint's text ``"Suppressed 'invalid-name' (from line 3)"`` naming the comment's line.
    skipped : bool
        True when a ``# pylint: skip-file`` comment made pylint ignore the whole module: then
        nothing was checked at all.
    """

    module: str
    messages: tuple[Message, ...]
    statements: int
    score: float | None
    config: str
    suppressed: tuple[Message, ...] = field(default=(), repr=False)
    skipped: bool = False

    def __repr__(self) -> str:
        shown = "none" if self.score is None else f"{self.score:.2f}/10"
        hidden = (f", suppressed={len(self.suppressed)}: "
                  f"{' '.join(m.message_id for m in self.suppressed)}" if self.suppressed else "")
        return (f"LintReport(module={self.module!r}, score={shown}, "
                f"statements={self.statements}, messages={len(self.messages)}: "
                f"{' '.join(m.message_id for m in self.messages) or '-'}{hidden}"
                f"{', skipped' if self.skipped else ''})")

    def __str__(self) -> str:
        lines = [f"************* Module {self.module}"]
        lines += [f"{self.module}.py:{message}" for message in self.messages]
        lines += [f"{self.module}.py:{m.line}:{m.column}: I0020: {m.text} (suppressed-message)"
                  for m in self.suppressed]
        if self.skipped:
            lines.append(f"{self.module}.py:1:0: I0013: Ignoring entire file (file-ignored)")
        if self.score is not None:
            lines.append(f"Your code has been rated at {self.score:.2f}/10")
        return "\n".join(lines)

    @property
    def counts(self) -> dict[str, int]:
        """Messages per category (every category of :data:`CATEGORIES`, zeros included)."""
        found = Counter(message.category for message in self.messages)
        return {category: found[category] for category in CATEGORIES}

    @property
    def ids(self) -> Counter:
        """How often each message id occurs, e.g. ``Counter({'W0611': 2, 'C0103': 2, ...})``."""
        return Counter(message.message_id for message in self.messages)

    @property
    def analysed(self) -> bool:
        """True when pylint read the whole module: no ``skip-file``, no fatal message, no
        syntax error. A report that is not analysed says nothing about the code."""
        return not self.skipped and self.counts["fatal"] == 0 and "E0001" not in self.ids

    def to_frame(self) -> pd.DataFrame:
        """One row per message: line, column, id, symbol, category, text."""
        columns = ["line", "column", "message_id", "symbol", "category", "text"]
        return pd.DataFrame([[getattr(m, name) for name in columns] for m in self.messages],
                            columns=columns)


def score(messages: Sequence[Message], statements: int) -> float | None:
    """pylint's default score, computed from the messages and the statement count (lesson 04).

    ``max(0, 10 - 10 * (5 * errors + warnings + refactors + conventions) / statements)``, and 0
    when any message is fatal. None when there are no statements, as in pylint.

    Raises
    ------
    ValueError
        A negative statement count, or a message of an unknown category.
    """
    if isinstance(statements, bool) or not isinstance(statements, int) or statements < 0:
        raise ValueError(f"statements must be a whole number >= 0, got {statements!r}.")
    unknown = {m.category for m in messages} - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown message categories {sorted(unknown)}; expected some of "
                         f"{CATEGORIES}.")
    if statements == 0:
        return None
    if any(m.category == "fatal" for m in messages):
        return 0.0
    penalty = sum(WEIGHTS[m.category] for m in messages)
    return max(0.0, 10.0 - float(penalty) / statements * 10)


def _tokens(source: str) -> list[tokenize.TokenInfo]:
    """The tokens of ``source`` exactly as pylint reads them: its UTF-8 bytes, tokenized."""
    return list(tokenize.tokenize(io.BytesIO(source.encode("utf-8")).readline))


def _pragma_comments(source: str) -> list[tokenize.TokenInfo]:
    """The comments pylint reads as ``# pylint:`` pragmas: its own pattern on its own tokens."""
    _parse(source, "module")
    return [token for token in _tokens(source)
            if token.type == tokenize.COMMENT and OPTION_PO.search(token.string)]


def suppressions(source: str) -> tuple[tuple[int, str], ...]:
    """Every comment pylint reads as a ``# pylint:`` pragma, as (line, comment) pairs (lesson 04).

    Such comments switch checks off (``disable``, ``disable-next``, ``skip-file``) or on again.
    They are found the way pylint finds them (its own pragma pattern on the tokens of the
    module), so a pragma anywhere in a comment counts (``# see pylint: disable=C``) and text
    inside strings does not.

    Raises
    ------
    CodeDoesNotParse
        When ``source`` is not valid Python.
    """
    return tuple((token.start[0], token.string) for token in _pragma_comments(source))


def strip_suppressions(source: str) -> str:
    """``source`` without its ``# pylint:`` comments, every other line unchanged (lesson 04).

    Linting the result scores what the code is, not what its comments switched off: exercise 04
    grades a module this way, so a ``disable`` comment cannot raise its score. A comment that
    holds such a pragma is removed whole. Lines are counted as the tokenizer counts them (a
    line ends at a newline character only), so a character such as U+2028, which
    ``str.splitlines`` takes for a line break and Python does not, moves nothing.

    Raises
    ------
    CodeDoesNotParse
        When ``source`` is not valid Python.
    """
    comments = _pragma_comments(source)
    bom = "\ufeff" if source.startswith("\ufeff") else ""
    lines = io.StringIO(source[len(bom):], newline="\n").readlines()
    for token in reversed(comments):
        number, column = token.start
        line = lines[number - 1]
        if line[column:column + len(token.string)] != token.string:
            raise CodeDoesNotParse(f"line {number} could not be read as pylint reads it; "
                                   "its # pylint: comment was not removed.")
        lines[number - 1] = line[:column].rstrip() + line[column + len(token.string):]
    stripped = bom + "".join(lines)
    if suppressions(stripped):
        raise CodeDoesNotParse("a # pylint: comment could not be removed.")
    return stripped


def _parse(source: str, module: str) -> None:
    """Refuse what pylint (and Python) cannot read: a syntax error, a declared encoding that
    does not read the UTF-8 text this module writes, characters UTF-8 cannot hold."""
    if not isinstance(source, str):
        raise TypeError(f"source must be the code as a str, got {type(source).__name__}.")
    try:
        data = source.encode("utf-8")
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except (UnicodeError, SyntaxError) as error:
        raise CodeDoesNotParse(f"{module}.py cannot be written as a Python file: {error}.") \
            from None
    if encoding not in ("utf-8", "utf-8-sig"):
        raise CodeDoesNotParse(
            f"{module}.py declares the encoding {encoding!r}, but it is written as UTF-8 (PEP 8: "
            "Python files are UTF-8 and need no declaration); remove the coding comment.")
    _parse_file(data, module)


def _parse_file(data: bytes, module: str) -> None:
    try:
        ast.parse(data, filename=f"{module}.py")
    except SyntaxError as error:
        where = f"line {error.lineno}" if error.lineno else "the code"
        raise CodeDoesNotParse(
            f"{module}.py does not parse ({where}: {error.msg}); pylint only judges code that "
            "Python can read, so fix the syntax first.") from None
    except ValueError as error:  # e.g. a NUL character in the source
        raise CodeDoesNotParse(f"{module}.py does not parse: {error}.") from None


def _config_argument(config: Path | str | None, folder: Path) -> tuple[str, str]:
    if config is None:
        empty = folder / "defaults.pylintrc"
        empty.write_text("", encoding="utf-8")
        return f"--rcfile={empty}", "pylint defaults"
    path = Path(config)
    if not path.is_file():
        raise ValueError(f"no pylint configuration file at {path}; pass an existing file "
                         "(e.g. codequality.LAB_CONFIG) or config=None for pylint's defaults.")
    return f"--rcfile={path}", str(path)


def _check_options(options: Sequence[str]) -> list[str]:
    if isinstance(options, str) or not all(isinstance(o, str) and o.startswith("--")
                                           for o in options):
        raise TypeError(f"options must be a sequence of pylint flags such as "
                        f"['--max-line-length=79'], got {options!r}.")
    return list(options)


def _run(path: Path, config_argument: str, options: list[str]) -> tuple[list, int, float, dict]:
    collector = reporters.CollectingReporter()
    arguments = [config_argument, "--persistent=n", "--score=y",
                 f"--enable={','.join(REPORTED_SUPPRESSIONS)}", *options, str(path)]
    with _LOCK:
        try:
            run = pylint_lint.Run(arguments, reporter=collector, exit=False)
        finally:
            # A later run of another module with the same name must not see this one.
            astroid.MANAGER.astroid_cache.pop(path.stem, None)
    stats = run.linter.stats
    store = run.linter.msgs_store
    symbols = {m.msg.split("'")[1] for m in collector.messages
               if m.symbol == "suppressed-message" and m.msg.count("'") >= 2}
    ids = {symbol: store.get_message_definitions(symbol)[0].msgid for symbol in symbols}
    return collector.messages, stats.statement, stats.global_note, ids


def _report(raw: list, statements: int, note: float, ids: dict, module: str,
            config: str) -> LintReport:
    messages, suppressed, skipped = [], [], False
    for m in raw:
        found = _SUPPRESSED.match(m.msg) if m.symbol == "suppressed-message" else None
        if found:
            message_id = ids[found["symbol"]]
            suppressed.append(Message(message_id=message_id, symbol=found["symbol"],
                                      category=_CATEGORY_OF_LETTER[message_id[0]],
                                      line=m.line, column=m.column, text=m.msg))
        elif m.symbol == "file-ignored":
            skipped = True
        else:
            messages.append(Message(message_id=m.msg_id, symbol=m.symbol, category=m.category,
                                    line=m.line, column=m.column, text=m.msg))
    return LintReport(module=module, messages=tuple(messages), statements=statements,
                      score=float(note) if statements else None, config=config,
                      suppressed=tuple(suppressed), skipped=skipped)


def lint(source: str, config: Path | str | None = LAB_CONFIG, *, module: str = "snippet",
         options: Sequence[str] = ()) -> LintReport:
    """Run pylint on the code ``source`` as if it were the file ``<module>.py`` (lesson 04).

    Parameters
    ----------
    source : str
        The code of one module.
    config : path or None
        A pylint configuration file; by default the lab's committed ``.pylintrc``
        (:data:`LAB_CONFIG`). None means pylint's own defaults (what a fresh ``pylint file.py``
        does without any configuration).
    module : str
        The module name pylint reports (and checks against its naming rules).
    options : sequence of str
        Extra command-line flags, e.g. ``["--max-line-length=79"]``.

    Returns
    -------
    LintReport
        Its ``messages`` are what pylint prints; its ``suppressed`` what ``# pylint:`` comments
        hid (pylint's ``suppressed-message`` report, switched on by this function).

    Raises
    ------
    CodeDoesNotParse
        When ``source`` is not valid Python, or declares an encoding other than UTF-8 (a
        ``ValueError``).
    ValueError
        A module name that is not a lower-case identifier, or a missing configuration file.
    TypeError
        ``source`` that is not a str, or options that are not ``--flags``.

    Examples
    --------
    >>> lint("import os\\n", config=None, module="tiny").ids   # doctest: +SKIP
    Counter({'C0114': 1, 'W0611': 1})
    """
    if not isinstance(module, str) or not _MODULE_NAME.match(module):
        raise ValueError(f"module must be a lower-case Python name such as 'example_script', "
                         f"got {module!r}.")
    _parse(source, module)
    flags = tuple(_check_options(options))
    if config is not None and not Path(config).is_file():
        raise ValueError(f"no pylint configuration file at {config}; pass an existing file "
                         "(e.g. codequality.LAB_CONFIG) or config=None for pylint's defaults.")
    # The configuration's text is part of the key: an edited file is read again.
    settings = None if config is None else (str(config), Path(config).read_bytes())
    return _lint_text(source, settings, module, flags)


# The same code under the same settings gets the same verdict: a grader asks several questions
# about one module, and a long module takes pylint seconds.
@functools.lru_cache(maxsize=128)
def _lint_text(source: str, settings: tuple[str, bytes] | None, module: str,
               flags: tuple[str, ...]) -> LintReport:
    with tempfile.TemporaryDirectory(prefix="labsupport-lint-") as folder:
        path = Path(folder) / f"{module}.py"
        path.write_text(source, encoding="utf-8")
        config_argument, config_name = _config_argument(
            None if settings is None else settings[0], Path(folder))
        raw, statements, note, ids = _run(path, config_argument, list(flags))
    return _report(raw, statements, note, ids, module, config_name)


def lint_file(path: Path | str, config: Path | str | None = LAB_CONFIG, *,
              options: Sequence[str] = ()) -> LintReport:
    """Run pylint on the Python file at ``path`` (lesson 04); see :func:`lint`.

    Raises
    ------
    ValueError
        When ``path`` is not an existing ``.py`` file (or the configuration is missing);
        :class:`CodeDoesNotParse` when the file is not valid Python.
    """
    path = Path(path)
    if path.suffix != ".py" or not path.is_file():
        raise ValueError(f"expected an existing .py file, got {str(path)!r}.")
    _parse_file(path.read_bytes(), path.stem)
    flags = _check_options(options)
    with tempfile.TemporaryDirectory(prefix="labsupport-lint-") as folder:
        config_argument, config_name = _config_argument(config, Path(folder))
        raw, statements, note, ids = _run(path.resolve(), config_argument, flags)
    return _report(raw, statements, note, ids, path.stem, config_name)


# --- code that pylint cannot read ------------------------------------------------------------

#: Names that run text as code, or reach objects by a name held in a string or a namespace
#: (``getattr(builtins, "exec")``, ``vars(builtins)["eval"]``, ``globals()``): pylint sees a call,
#: never the code that runs.
DYNAMIC_NAMES = frozenset({"exec", "eval", "compile", "__import__", "getattr", "setattr",
                           "delattr", "globals", "locals", "vars", "breakpoint", "help",
                           "builtins", "__builtins__"})
#: The modules a module checked by :func:`hidden_code` may import from, by default: their
#: public functions and classes read their arguments, never text as code.
PLAIN_MODULES = ("math", "itertools", "collections", "statistics", "fractions", "numbers",
                 "__future__")
#: Double-underscore names that reach nothing new (a method being defined, a name, a type).
_PLAIN_DUNDERS = frozenset({"__init__", "__name__", "__qualname__", "__doc__", "__all__",
                            "__class__"})
# Attributes of frames, code objects, tracebacks and generators: a generator's gi_frame.f_builtins
# is the builtins namespace, exec included, without one double underscore.
_INTROSPECTION = re.compile(r"^(?:(?:gi|cr|ag)_(?:frame|code|await|yieldfrom)"
                            r"|f_(?:globals|builtins|locals|back|code|trace)|tb_\w+|co_\w+)$")


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and name not in _PLAIN_DUNDERS


def _module(name: str) -> object | None:
    """The module ``name``, or None when there is no such module."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _import_problem(name: str, modules: frozenset[str]) -> str:
    """What is wrong with ``import name`` (``""`` when nothing is)."""
    if name.split(".")[0] not in modules:
        return f"import {name}: only {', '.join(sorted(modules))} may be imported"
    module = _module(name)
    if module is None:
        return f"import {name}: there is no such module"
    if any(inspect.ismodule(value) for value in vars(module).values()):
        return (f"import {name}: import the functions and classes you use from it (from {name} "
                "import ...): the module itself leads to others")
    return ""


def _import_problems(node: ast.Import | ast.ImportFrom, modules: frozenset[str]) -> list[str]:
    if isinstance(node, ast.Import):
        found = (_import_problem(alias.name, modules) for alias in node.names)
        return [problem for problem in found if problem]
    where = "." * node.level + (node.module or "")
    if node.level or (node.module or "").split(".")[0] not in modules:
        return [f"from {where} import: only {', '.join(sorted(modules))} may be imported"]
    module = _module(node.module)
    if module is None:
        return [f"from {where} import: there is no such module"]
    problems = []
    for alias in node.names:
        value = getattr(module, alias.name, None)
        if alias.name == "*" or (alias.name.startswith("_") and node.module != "__future__") \
                or value is None or inspect.ismodule(value):
            problems.append(f"from {where} import {alias.name}: import the public functions and "
                            "classes you use, by name")
    return problems


def _node_problems(node: ast.AST, modules: frozenset[str]) -> list[str]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return _import_problems(node, modules)
    if isinstance(node, ast.Name) and (node.id in DYNAMIC_NAMES or _dunder(node.id)):
        return [f"{node.id}: runs text as code or reaches objects by a name pylint never sees"]
    attributes = (node.kwd_attrs if isinstance(node, ast.MatchClass)
                  else [node.attr] if isinstance(node, ast.Attribute) else [])
    return [f".{attribute}: reaches the interpreter's internals (namespaces, frames, code)"
            for attribute in attributes if _dunder(attribute) or _INTROSPECTION.match(attribute)]


def hidden_code(source: str, modules: Sequence[str] = PLAIN_MODULES) -> tuple[tuple[int, str], ...]:
    """What in ``source`` runs code that pylint cannot read, as (line, what) pairs (exercise 04).

    pylint judges the code it reads; code held in a string and run by ``exec``, or reached
    through a name it never sees, escapes it. So this refuses, by inclusion rather than one trick
    at a time:

    * the names in :data:`DYNAMIC_NAMES` (``exec``, ``eval``, ``compile``, ``__import__``,
      ``getattr``, ``globals``, ``vars``, ``builtins``, ...);
    * double-underscore names and attributes other than ``__init__``, ``__name__``,
      ``__qualname__``, ``__doc__``, ``__all__`` and ``__class__`` (``f.__globals__``,
      ``__builtins__``), and the attributes of frames, code objects and generators
      (``gi_frame``, ``f_builtins``), in expressions and in ``match`` patterns alike;
    * imports from other modules than ``modules``, ``import X`` of a module that holds other
      modules (``statistics.sys``), and imported names that are private, modules, or ``*``.

    An empty tuple means every line that runs is a line pylint read.

    Raises
    ------
    CodeDoesNotParse
        When ``source`` is not valid Python.
    """
    _parse(source, "module")
    allowed = frozenset(modules)
    found = {(getattr(node, "lineno", 1), problem) for node in ast.walk(ast.parse(source))
             for problem in _node_problems(node, allowed)}
    return tuple(sorted(found))


# --- running a module from its source ----------------------------------------------------------

#: How the line with the calls' results starts (the last such line of the output counts).
RESULTS_MARK = "labsupport-codequality-results: "
#: Seconds a module may take to import and answer all its calls by default.
CALL_TIMEOUT = 30.0
# Runs in the fresh process (standard library only): import the module from the file next to
# it, make each call, print the results as one JSON line. Plain data only comes back.
_DRIVER = r"""
import importlib, json, sys
def plain(value):
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not plain data")
def main(module_name, calls_file):
    with open(calls_file, encoding="utf-8") as stream:
        calls = json.load(stream)
    try:
        module = importlib.import_module(module_name)
    except BaseException as error:
        return {"import": f"{type(error).__name__}: {error}"[:400]}
    results = []
    for name, args in calls:
        try:
            value = json.dumps(getattr(module, name)(*args), default=plain)
            results.append({"value": json.loads(value)})
        except BaseException as error:
            results.append({"error": f"{type(error).__name__}: {error}"[:400]})
    return {"results": results}
answer = json.dumps(main(sys.argv[1], sys.argv[2]))
sys.stdout.flush()
sys.stdout.write("\n" + MARK + answer + "\n")
sys.stdout.flush()
"""


class ModuleDoesNotRun(ValueError):
    """The module could not be imported or did not answer (an exception at import, a crash, a
    time limit); ``str()`` says what happened."""


@dataclass(frozen=True)
class CallResult:
    """What one call of a module's function did (exercise 04).

    Attributes
    ----------
    call : str
        The call as written, e.g. ``"accuracy([1, 0], [1, 1])"``.
    value : object
        What it returned, as plain data (JSON's types); None when it raised.
    error : str
        ``""`` when it returned; otherwise the exception, e.g. ``"ZeroDivisionError: division
        by zero"``.
    """

    call: str
    value: object
    error: str = ""


def call_module(source: str, calls: Sequence[tuple[str, Sequence[object]]], *,
                module: str = "snippet", timeout: float = CALL_TIMEOUT,
                execute: testing.Executor | None = None) -> tuple[CallResult, ...]:
    """Import ``source`` as ``<module>.py`` in a fresh Python process and make each call there.

    The code that runs is exactly the code given, as a file (what :func:`lint` judges), not
    functions defined elsewhere: exercise 04 tests a cleaned-up module this way. Arguments and
    results cross as JSON, so both must be plain data (numbers, strings, lists, dicts, None).

    Parameters
    ----------
    source : str
        The module's code.
    calls : sequence of (name, arguments)
        Each call: a function (or class) of the module and its positional arguments.
    module : str
        The module's name (its file is ``<module>.py``).
    timeout : float
        Seconds the import and all the calls may take together.
    execute : callable, optional
        Where to run it (a :data:`labsupport.testing.Executor`); by default a plain subprocess
        (:func:`labsupport.testing.run_locally`). The grader passes a sandbox.

    Returns
    -------
    tuple of CallResult
        One per call, in order; a call that raised has its ``error`` set.

    Raises
    ------
    ModuleDoesNotRun
        When the module cannot be imported, or the process ends or runs out of time without
        answering.
    CodeDoesNotParse
        When ``source`` is not valid Python.
    TypeError
        Calls that are not (name, arguments) pairs of plain data.
    """
    if not isinstance(module, str) or not _MODULE_NAME.match(module):
        raise ValueError(f"module must be a lower-case Python name such as 'metrics', "
                         f"got {module!r}.")
    _parse(source, module)
    shown = tuple(_check_call(call) for call in calls)
    encoded = json.dumps([[name, list(args)] for name, args in calls], allow_nan=False)
    return tuple(CallResult(call, **answer) for call, answer in
                 zip(shown, _answers(source, encoded, module, float(timeout),
                                     execute or testing.run_locally)))


def _check_call(call: object) -> str:
    if not (isinstance(call, (tuple, list)) and len(call) == 2 and isinstance(call[0], str)
            and call[0].isidentifier() and isinstance(call[1], (tuple, list))):
        raise TypeError(f"each call must be a (function name, arguments) pair such as "
                        f"('accuracy', ([1, 0], [1, 1])), got {call!r}.")
    try:
        json.dumps(list(call[1]), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"the arguments of {call[0]}() must be plain data: {error}") from None
    return f"{call[0]}({', '.join(repr(argument) for argument in call[1])})"


# The same module and calls give the same answers: each is run once per process (a grader runs
# several tests of one submission with the same module).
@functools.lru_cache(maxsize=64)
def _answers(source: str, calls: str, module: str, timeout: float,
             execute: testing.Executor) -> tuple[dict, ...]:
    files = {f"{module}.py": source, "labsupport_calls.json": calls}
    code, output = execute(["-c", _DRIVER.replace("MARK", repr(RESULTS_MARK)), module,
                            "labsupport_calls.json"], files, timeout,
                           {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"})
    if code is None:
        raise ModuleDoesNotRun(f"{module}.py ran past {timeout:g} s (a loop that never ends?)")
    lines = [line for line in output.splitlines() if line.startswith(RESULTS_MARK)]
    try:
        answer = json.loads(lines[-1][len(RESULTS_MARK):]) if lines else None
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("import"), str):
        raise ModuleDoesNotRun(f"{module}.py could not be imported: {answer['import']}")
    results = answer.get("results") if isinstance(answer, dict) else None
    expected = len(json.loads(calls))
    if not (isinstance(results, list) and len(results) == expected and all(
            isinstance(r, dict) and (set(r) == {"value"} or (
                set(r) == {"error"} and isinstance(r["error"], str))) for r in results)):
        tail = output.strip().splitlines()[-1:] or ["no output"]
        raise ModuleDoesNotRun(f"{module}.py ended (exit status {code}) without answering: "
                               f"{tail[0][:300]}")
    return tuple({"value": r.get("value"), "error": r.get("error", "")} for r in results)
