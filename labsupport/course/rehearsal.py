"""Rehearse the grading of an exercise on the instructor's machine, in local kernels.

A test that passes on a wrong answer hands out points for nothing. A solution notebook declares
the plausible wrong answers of each question (cells tagged ``wrong-answer``, see
:mod:`labsupport.course.authoring`); :func:`rehearse` grades each of them the way
``tests/test_exercises.py`` grades the solution: the solution notebook with that one answer
substituted runs in a fresh python3 kernel, then the question's tests run inside that kernel
with the self-check's own :func:`~labsupport.course.runner.run_test`. A wrong answer that earns
as much as its ``max_share`` of the question's points (or anything, when that is 0) is reported,
with the tests it passed.

To keep it quick, a variant runs only as far as its question's last test cell (where a student
runs ``check``) and only that question's tests; one extra kernel, the *baseline*, runs the whole
solution with each question's tests right after its test cells, proving that stopping there
loses nothing, and every test once more at the end, as the grader runs them (so the baseline is
also the run that shows the solution passing its own tests).
Variants run in parallel on a few kernels, each reused from one variant to the next (reset in
between: every name gone, only imported modules kept).

The baseline also tries *constant answers* (:func:`probe_constant_answers`): each function a
question's tests call with two or more different arguments is replaced, in turn, by one that
always returns one of the values the solution returned; a constant that earns half the question
or more shows hidden cases that all expect one verdict (an always-failing gate, say), which a
student can buy without the skill. Nothing here is sandboxed: it runs the
instructor's own notebooks, never a student's (that is :mod:`labsupport.course.grading`).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jupyter_client
import nbclient
import nbformat
from tqdm import tqdm

from labsupport.course import authoring, runner, selfcheck

#: Seconds one cell may run before it is interrupted (a wrong answer may loop forever).
CELL_TIMEOUT = int(os.environ.get("CELL_TIMEOUT", "120"))

#: Runs in the kernel after the notebook: the chosen tests, outcomes as one JSON line.
RUN_TESTS = """
import dataclasses as _dataclasses, json as _json
from labsupport.course import authoring as _authoring, runner as _runner, selfcheck as _selfcheck
_ns = _selfcheck.Namespace(globals())
_wanted = {questions!r}
print(_json.dumps([_dataclasses.asdict(_runner.run_test(_test, _ns))
                   for _test in _authoring.load_exercise({path!r}).tests
                   if _wanted is None or _test.question in _wanted]))
"""


#: Runs in the baseline's kernel after every test: the constant answers, as one JSON line.
PROBE_CONSTANTS = """
import json as _json
from labsupport.course import rehearsal as _rehearsal
print(_json.dumps(_rehearsal.probe_constant_answers({path!r}, globals())))
"""

#: The most distinct constants tried per function (the solution's most frequent returns first).
MAX_CONSTANTS = 4


class _Recording(selfcheck.Namespace):  # pylint: disable=too-few-public-methods
    """A test's ``ns`` that records what each notebook function it calls returned."""

    def __init__(self, values: Mapping[str, object],
                 calls: dict[str, list[tuple[str, object]]]) -> None:
        super().__init__(values)
        object.__setattr__(self, "_calls", calls)

    def __getattr__(self, name: str) -> object:
        value = super().__getattr__(name)
        if not _is_notebook_function(value):
            return value
        calls = object.__getattribute__(self, "_calls")

        @functools.wraps(value)
        def recorded(*args, **kwargs):
            returned = value(*args, **kwargs)
            calls.setdefault(name, []).append((_text(args, kwargs), returned))
            return returned
        return recorded


class _Constant(selfcheck.Namespace):  # pylint: disable=too-few-public-methods
    """A test's ``ns`` in which the function ``name`` always returns (a copy of) ``value``."""

    def __init__(self, values: Mapping[str, object], name: str, value: object) -> None:
        super().__init__(values)
        object.__setattr__(self, "_constant", (name, value))

    def __getattr__(self, name: str) -> object:
        found = super().__getattr__(name)
        constant_name, value = object.__getattribute__(self, "_constant")
        if name != constant_name:
            return found

        @functools.wraps(found)
        def constant(*_args, **_kwargs):
            return copy.deepcopy(value)
        return constant


def _is_notebook_function(value: object) -> bool:
    return callable(value) and getattr(value, "__module__", None) == "__main__" \
        and not isinstance(value, type)


def _text(*parts: object) -> str:
    try:
        return repr(parts)
    except Exception:  # pylint: disable=broad-exception-caught  # an odd __repr__
        return f"<unprintable {id(parts)}>"


def _same(left: object, right: object) -> bool:
    try:
        return bool(left == right)
    except Exception:  # pylint: disable=broad-exception-caught  # arrays, frames: no plain ==
        return _text(left) == _text(right)


def _distinct(values: list[object]) -> list[object]:
    """The distinct values of ``values``, most frequent first (ties in order of appearance)."""
    groups: list[list[object]] = []
    for value in values:
        for group in groups:
            if _same(group[0], value):
                group.append(value)
                break
        else:
            groups.append([value])
    return [group[0] for group in sorted(groups, key=len, reverse=True)]


def _earned(question: authoring.Question, ns: object) -> tuple[float, tuple[str, ...]]:
    outcomes = [runner.run_test(test, ns) for test in question.tests]
    passed = tuple(o.test for o in outcomes if o.passed)
    earned = sum(question.test_points(t) for t in question.tests if t.name in passed)
    return earned / question.points, passed


def probe_constant_answers(solution: Path | str, values: Mapping[str, object],
                           run: Callable[[authoring.Question, object],
                                         tuple[float, tuple[str, ...]]] = _earned) -> list[dict]:
    """Grade constant answers against a solved notebook's ``values`` (its globals).

    For each question, the tests run once against ``values`` recording every call they make to
    a function the notebook defines; each function called with at least two different
    arguments is then replaced by one returning a single value the solution returned (up to
    :data:`MAX_CONSTANTS` of them, the most frequent first), and the question's tests run
    again. Runs in the kernel of the rehearsal's baseline.

    Returns
    -------
    list of dict
        ``question``, ``function``, ``constant`` (its repr, shortened), ``share`` of the
        question's points it earned and the tests it ``passed``, one per constant tried.
    """
    exercise = authoring.load_exercise(solution)
    found = []
    for question in exercise.questions:
        calls: dict[str, list[tuple[str, object]]] = {}
        run(question, _Recording(values, calls))
        for name, made in calls.items():
            if len({arguments for arguments, _ in made}) < 2:
                continue  # one input: a constant that passes is the right answer itself
            for value in _distinct([returned for _, returned in made])[:MAX_CONSTANTS]:
                share, passed = run(question, _Constant(values, name, value))
                shown = _text(value)[1:-2]
                found.append({"question": question.name, "function": name,
                              "constant": shown if len(shown) <= 80 else shown[:77] + "...",
                              "share": share, "passed": list(passed)})
    return found


def _client(notebook: nbformat.NotebookNode, cwd: Path, allow_errors: bool, timeout: int,
            manager: jupyter_client.KernelManager | None = None) -> nbclient.NotebookClient:
    return nbclient.NotebookClient(
        notebook, km=manager, timeout=timeout, kernel_name="python3",
        allow_errors=allow_errors, interrupt_on_timeout=allow_errors, startup_timeout=120,
        resources={"metadata": {"path": str(cwd)}})


def execute(notebook: nbformat.NotebookNode, cwd: Path, allow_errors: bool,
            timeout: int = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """Run ``notebook`` in a fresh python3 kernel started in ``cwd``; return the executed copy.

    With ``allow_errors`` a failing (or timed-out, hence interrupted) cell does not stop the
    run, as in the grader; without it the first error raises ``nbclient`` 's CellExecutionError.
    """
    executed = copy.deepcopy(notebook)
    _client(executed, cwd, allow_errors, timeout).execute()
    return executed


def stdout_of(cell: nbformat.NotebookNode) -> str:
    """Everything a cell printed to stdout."""
    return "".join(output.get("text", "") for output in cell.get("outputs", [])
                   if output.output_type == "stream" and output.name == "stdout")


def tests_cell(solution: Path, questions: Sequence[str] | None = None) -> nbformat.NotebookNode:
    """A code cell running the tests of ``questions`` (all when None) of ``solution``."""
    wanted = None if questions is None else sorted(questions)
    return nbformat.v4.new_code_cell(RUN_TESTS.format(path=str(solution), questions=wanted))


def outcomes_of(cell: nbformat.NotebookNode) -> list[dict] | None:
    """The outcomes a :func:`tests_cell` printed, or None when it printed none (it failed)."""
    printed = stdout_of(cell).strip().splitlines()
    if not printed:
        return None
    try:
        found = json.loads(printed[-1])
    except ValueError:
        return None
    return found if isinstance(found, list) else None


def run_with_tests(notebook: nbformat.NotebookNode, solution: Path, cwd: Path,
                   allow_errors: bool) -> tuple[nbformat.NotebookNode, list[dict]]:
    """Execute ``notebook`` followed by every test of ``solution``; return it and the outcomes.

    Wrong-answer cells are dropped first (see :func:`authoring.without_wrong_answers`).
    """
    notebook = authoring.without_wrong_answers(notebook)
    notebook.cells.append(tests_cell(solution))
    executed = execute(notebook, cwd, allow_errors)
    outcomes = outcomes_of(executed.cells[-1])
    if outcomes is None:
        raise RuntimeError(f"the test cell printed no outcomes; its outputs: "
                           f"{executed.cells[-1].outputs}")
    return executed, outcomes


@dataclass(frozen=True)
class Verdict:
    """How one declared wrong answer fared.

    Attributes
    ----------
    question, description, max_share
        The wrong answer (see :class:`authoring.WrongAnswer`).
    share : float
        The share of the question's points it earned (tests share a question's points in
        proportion to their weights, as in the grader).
    passed : tuple of str
        The tests it passed: these are the ones handing out points to the mistake.
    note : str
        Why it could not be graded, ``""`` when it was.
    """

    question: str
    description: str
    max_share: float
    share: float
    passed: tuple[str, ...]
    note: str = ""

    @property
    def ok(self) -> bool:
        """True when it was graded and earned less than ``max_share`` (nothing, when 0)."""
        if self.note:
            return False
        if self.max_share == 0:
            return self.share < 1e-12
        return self.share < self.max_share - 1e-12

    def __str__(self) -> str:
        head = f"{self.question}, wrong answer {self.description!r}"
        if self.note:
            return f"{head}: could not be graded ({self.note})"
        allowed = ("nothing" if self.max_share == 0
                   else f"less than {self.max_share:.0%}")
        earned = (f"{head} earns {self.share:.0%} of the question's points "
                  f"(allowed: {allowed})")
        if self.ok:
            return earned
        return earned + f"; it passes {', '.join(self.passed)}"


@dataclass(frozen=True)
class Rehearsal:
    """The wrong answers of one solution notebook, graded.

    ``problems`` lists what makes the rehearsal itself untrustworthy (the solution failing its
    own tests where the variants are graded); ``verdicts`` has one entry per wrong answer;
    ``baseline`` is the executed baseline notebook (or why it did not run); ``constants`` has
    one verdict per constant answer tried (:func:`probe_constant_answers`), each allowed less
    than half its question.
    """

    solution: Path
    problems: tuple[str, ...]
    verdicts: tuple[Verdict, ...]
    baseline: nbformat.NotebookNode | BaseException | None = field(
        default=None, repr=False, compare=False)
    constants: tuple[Verdict, ...] = ()

    def solution_outcomes(self) -> list[dict]:
        """The outcomes of every test, run after the whole solution (the baseline's last cell).

        Raises
        ------
        RuntimeError
            When the baseline did not run or its last cell printed no outcomes.
        """
        if not isinstance(self.baseline, nbformat.NotebookNode):
            raise RuntimeError(f"{self.solution.name}: the solution did not run "
                               f"({self.baseline!r})")
        outcomes = outcomes_of(self.baseline.cells[-2])
        if outcomes is None:
            raise RuntimeError(f"{self.solution.name}: the test cell printed no outcomes; its "
                               f"outputs: {self.baseline.cells[-2].outputs}")
        return outcomes

    @property
    def failures(self) -> tuple[str, ...]:
        """Every problem and every wrong answer that scores too much, as sentences."""
        name = self.solution.name
        return self.problems + tuple(f"{name}: {verdict}" for verdict in
                                     self.verdicts + self.constants if not verdict.ok)


def _last_test_cell(notebook: nbformat.NotebookNode, question: str) -> int:
    indices = [index for index, cell in enumerate(notebook.cells)
               if cell.cell_type == "code" and set(cell.metadata.get("tags", []))
               & set(authoring.TAGS)
               and cell.metadata.get(authoring.METADATA_KEY, {}).get("question") == question]
    return max(indices)


def _variant(notebook: nbformat.NotebookNode, exercise: authoring.Exercise,
             wrong: authoring.WrongAnswer) -> nbformat.NotebookNode:
    substituted = authoring.with_wrong_answer(notebook, exercise, wrong)
    substituted.cells = substituted.cells[:_last_test_cell(substituted, wrong.question) + 1]
    substituted.cells.append(tests_cell(exercise.path, [wrong.question]))
    return substituted


def _baseline(notebook: nbformat.NotebookNode, exercise: authoring.Exercise,
              questions: Sequence[str]) -> nbformat.NotebookNode:
    """The solution with each question's tests run right after that question's test cells,
    every test once more at the end, then the constant answers (:data:`PROBE_CONSTANTS`)."""
    plain = authoring.without_wrong_answers(notebook)
    after = {_last_test_cell(plain, name): name for name in questions}
    cells = []
    for index, cell in enumerate(plain.cells):
        cells.append(cell)
        if index in after:
            cells.append(tests_cell(exercise.path, [after[index]]))
    plain.cells = cells + [tests_cell(exercise.path),
                           nbformat.v4.new_code_cell(PROBE_CONSTANTS.format(
                               path=str(exercise.path)))]
    return plain


def _share(outcomes: list[dict], question: authoring.Question) -> tuple[float, tuple[str, ...]]:
    passed = tuple(o["test"] for o in outcomes if o["question"] == question.name and o["passed"])
    earned = sum(question.test_points(test) for test in question.tests if test.name in passed)
    return earned / question.points, passed


#: Run in a kernel before each notebook after its first: the names the last notebook made are
#: gone, the working directory and figures are as in a fresh kernel; only imported modules stay.
RESET = """\
%reset -f
import os as _os
_os.chdir({directory!r})
import matplotlib.pyplot as _plt
_plt.close("all")
del _os, _plt
"""


async def _reset(manager: jupyter_client.AsyncKernelManager, cwd: Path) -> None:
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=120)
        reply = await client.execute_interactive(RESET.format(directory=str(cwd)), timeout=120,
                                                 output_hook=lambda _msg: None)
    finally:
        client.stop_channels()
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"the kernel could not be reset: {reply['content']}")


async def _run_all(notebooks: list[nbformat.NotebookNode], cwd: Path, workers: int,
                   progress: bool) -> list[nbformat.NotebookNode | BaseException]:
    """Run ``notebooks`` on ``workers`` kernels, each reused from one notebook to the next.

    A kernel's start and the solution's imports cost about as much as a short variant itself;
    between two notebooks a kernel is reset (:data:`RESET`), and one that died is restarted.
    """
    meter = tqdm(total=len(notebooks), desc="wrong answers", unit="notebook",
                 disable=not progress, file=sys.stderr)
    pending = list(enumerate(notebooks))[::-1]  # popped from the end: in the order given
    results: list[nbformat.NotebookNode | BaseException] = list(notebooks)

    async def work() -> None:
        manager = jupyter_client.AsyncKernelManager(kernel_name="python3")
        await manager.start_kernel(cwd=str(cwd))
        used = False
        try:
            while pending:
                index, notebook = pending.pop()
                executed = copy.deepcopy(notebook)
                client = _client(executed, cwd, True, CELL_TIMEOUT, manager)
                try:
                    if not await manager.is_alive():  # the last notebook killed it
                        await manager.restart_kernel(now=True)
                    elif used:
                        await _reset(manager, cwd)
                    used = True
                    await client.async_execute()
                    results[index] = executed
                except Exception as error:  # pylint: disable=broad-exception-caught
                    results[index] = error  # a dead kernel: reported as "could not be graded"
                finally:
                    if client.kc is not None:
                        client.kc.stop_channels()
                    meter.update()
        finally:
            await manager.shutdown_kernel(now=True)

    try:
        await asyncio.gather(*(work() for _ in range(min(workers, len(notebooks)))))
        return results
    finally:
        meter.close()


def rehearse(solution: Path | str, workers: int | None = None,
             progress: bool = False) -> Rehearsal:
    """Grade every wrong answer declared in ``solution`` (plus one baseline run).

    Parameters
    ----------
    solution : Path or str
        A solution notebook, ``solutions/NN_topic.ipynb``.
    workers : int, optional
        Kernels run at once (default: the number of cores).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    Rehearsal
        One verdict per wrong answer, and the problems of the baseline run.

    Raises
    ------
    ValueError
        When the notebook is not a valid exercise (see :func:`authoring.load_exercise`).
    """
    solution = Path(solution).resolve()
    notebook = authoring.read_notebook(solution)
    exercise = authoring.parse_exercise(notebook, solution)
    wrong = exercise.wrong_answers
    if not wrong:
        return Rehearsal(solution, (), ())
    graded = sorted({w.question for w in wrong})
    jobs = [_baseline(notebook, exercise, graded)] + [_variant(notebook, exercise, w)
                                                      for w in wrong]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    results = asyncio.run(_run_all(jobs, solution.parent, workers, progress))
    problems = _baseline_problems(solution, exercise, graded, results[0])
    verdicts = []
    for answer, result in zip(wrong, results[1:]):
        question = exercise.question(answer.question)
        outcomes = None if isinstance(result, BaseException) else outcomes_of(result.cells[-1])
        if outcomes is None:
            note = (f"{type(result).__name__}: {result}" if isinstance(result, BaseException)
                    else "the tests printed no outcomes; did they time out?")
            verdicts.append(Verdict(answer.question, answer.description, answer.max_share,
                                    0.0, (), note))
            continue
        share, passed = _share(outcomes, question)
        verdicts.append(Verdict(answer.question, answer.description, answer.max_share, share,
                                passed))
    return Rehearsal(solution, problems, tuple(verdicts), results[0],
                     _constants(results[0]))


def _constants(result: nbformat.NotebookNode | BaseException) -> tuple[Verdict, ...]:
    """The constant answers the baseline's last cell graded, as verdicts (half allowed)."""
    if isinstance(result, BaseException):
        return ()
    printed = stdout_of(result.cells[-1]).strip().splitlines()
    if not printed:
        errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in result.cells[-1].outputs
                  if o.output_type == "error"]
        note = f"the probe failed ({'; '.join(errors) or 'it printed nothing'})"
        return (Verdict("*", "constant answers", authoring.DEFAULT_MAX_SHARE, 0.0, (), note),)
    return tuple(Verdict(found["question"],
                         f"constant answer: {found['function']}(...) always returns "
                         f"{found['constant']}", authoring.DEFAULT_MAX_SHARE, found["share"],
                         tuple(found["passed"])) for found in json.loads(printed[-1]))


def _baseline_problems(solution: Path, exercise: authoring.Exercise, graded: list[str],
                       result: nbformat.NotebookNode | BaseException) -> tuple[str, ...]:
    if isinstance(result, BaseException):
        return (f"{solution.name}: the solution did not run ({type(result).__name__}: "
                f"{result})",)
    found = {}
    for cell in result.cells[:-2]:  # then every test after the whole notebook, and the probe
        outcomes = outcomes_of(cell) if cell.source.startswith(RUN_TESTS[:20]) else None
        for outcome in outcomes or []:
            found[(outcome["question"], outcome["test"])] = outcome
    problems = []
    for name in graded:
        for test in exercise.question(name).tests:
            outcome = found.get((name, test.name))
            if outcome is None or not outcome["passed"]:
                why = "did not run" if outcome is None else outcome["message"]
                problems.append(f"{solution.name}: the solution fails {name} {test.name} when "
                                f"the tests run right after {name}'s test cells ({why}); a "
                                "test must not need cells further down")
    return tuple(problems)
