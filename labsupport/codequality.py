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
"""

from __future__ import annotations

import ast
import io
import re
import tempfile
import threading
import tokenize
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import astroid
import pandas as pd
from pylint import lint as pylint_lint
from pylint import reporters

#: The lab's committed pylint configuration (what ``make test`` and exercise 04 use).
LAB_CONFIG = Path(__file__).resolve().parent.parent / ".pylintrc"

#: pylint's message categories, in the order pylint's score weighs them (first letter = id).
CATEGORIES = ("fatal", "error", "warning", "refactor", "convention", "info")

#: How much one message of each category costs in pylint's default evaluation (per statement,
#: times 10): an error counts five times, informational messages not at all.
WEIGHTS = {"error": 5, "warning": 1, "refactor": 1, "convention": 1, "info": 0}

_MODULE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_PRAGMA = re.compile(r"#\s*pylint\s*:", re.IGNORECASE)
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
        In the order pylint emitted them.
    statements : int
        How many statements pylint counted (the denominator of the score).
    score : float or None
        pylint's own score out of 10; None when the module has no statements (pylint gives none).
    config : str
        The configuration file used, or ``"pylint defaults"``.
    """

    module: str
    messages: tuple[Message, ...]
    statements: int
    score: float | None
    config: str

    def __repr__(self) -> str:
        shown = "none" if self.score is None else f"{self.score:.2f}/10"
        return (f"LintReport(module={self.module!r}, score={shown}, "
                f"statements={self.statements}, messages={len(self.messages)}: "
                f"{' '.join(m.message_id for m in self.messages) or '-'})")

    def __str__(self) -> str:
        lines = [f"************* Module {self.module}"]
        lines += [f"{self.module}.py:{message}" for message in self.messages]
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


def _pragma_comments(source: str) -> list[tokenize.TokenInfo]:
    _parse(source, "module")
    return [token for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type == tokenize.COMMENT and _PRAGMA.search(token.string)]


def suppressions(source: str) -> tuple[tuple[int, str], ...]:
    """Every ``# pylint: ...`` comment in ``source``, as (line, comment) pairs (lesson 04).

    Such comments switch checks off (``disable``, ``disable-next``, ``skip-file``); exercise 04
    grades a module without any. Only real comments count, not text inside strings.

    Raises
    ------
    CodeDoesNotParse
        When ``source`` is not valid Python.
    """
    return tuple((token.start[0], token.string) for token in _pragma_comments(source))


def strip_suppressions(source: str) -> str:
    """``source`` without its ``# pylint: ...`` comments, every other line unchanged (lesson 04).

    Linting the result scores what the code is, not what its comments switched off: exercise 04
    grades a module this way, so a ``disable`` comment cannot raise its score. A comment that
    holds such a pragma is removed whole.

    Raises
    ------
    CodeDoesNotParse
        When ``source`` is not valid Python.
    """
    lines = source.splitlines(keepends=True)
    for token in _pragma_comments(source):
        number, column = token.start
        line = lines[number - 1]
        ending = line[len(line.rstrip("\r\n")):]
        lines[number - 1] = line[:column].rstrip() + ending
    return "".join(lines)


def _parse(source: str, module: str) -> None:
    if not isinstance(source, str):
        raise TypeError(f"source must be the code as a str, got {type(source).__name__}.")
    try:
        ast.parse(source, filename=f"{module}.py")
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


def _run(path: Path, config_argument: str, options: list[str]) -> tuple[list, int, float]:
    collector = reporters.CollectingReporter()
    arguments = [config_argument, "--persistent=n", "--score=y", *options, str(path)]
    with _LOCK:
        try:
            run = pylint_lint.Run(arguments, reporter=collector, exit=False)
        finally:
            # A later run of another module with the same name must not see this one.
            astroid.MANAGER.astroid_cache.pop(path.stem, None)
    stats = run.linter.stats
    return collector.messages, stats.statement, stats.global_note


def _report(raw: list, statements: int, note: float, module: str, config: str) -> LintReport:
    messages = tuple(Message(message_id=m.msg_id, symbol=m.symbol, category=m.category,
                             line=m.line, column=m.column, text=m.msg) for m in raw)
    return LintReport(module=module, messages=messages, statements=statements,
                      score=float(note) if statements else None, config=config)


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

    Raises
    ------
    CodeDoesNotParse
        When ``source`` is not valid Python (a ``ValueError``).
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
    flags = _check_options(options)
    with tempfile.TemporaryDirectory(prefix="labsupport-lint-") as folder:
        path = Path(folder) / f"{module}.py"
        path.write_text(source, encoding="utf-8")
        config_argument, config_name = _config_argument(config, Path(folder))
        raw, statements, note = _run(path, config_argument, flags)
    return _report(raw, statements, note, module, config_name)


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
    _parse(path.read_text(encoding="utf-8"), path.stem)
    flags = _check_options(options)
    with tempfile.TemporaryDirectory(prefix="labsupport-lint-") as folder:
        config_argument, config_name = _config_argument(config, Path(folder))
        raw, statements, note = _run(path.resolve(), config_argument, flags)
    return _report(raw, statements, note, path.stem, config_name)
