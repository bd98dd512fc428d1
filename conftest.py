"""Repository-wide pytest configuration: notebook budgets, what not to collect, and how the tests
are dealt to xdist workers.

Lives at the top level because it governs notebooks/ and solutions/ (collected by nbval) as well
as tests/.
"""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
_NOTEBOOK_STARTED: dict[Path, float] = {}


#: The groups CI runs as parallel jobs (``make test GROUP=...``), each a list of patterns over
#: paths from the repository root; a file matching none is in ``unit``, so a new test file always
#: runs somewhere. ``lint`` (pylint and the hooks) is not a pytest group. Balanced on the timings
#: in docs/lab/ci.md: the seed sweep, the exercises and the grading each take minutes.
TEST_GROUPS: dict[str, tuple[str, ...]] = {
    "unit": (),
    "notebooks": ("notebooks/*.ipynb", "tests/test_notebook_hygiene.py"),
    # The site test builds the course site from the sweep's executed lessons (executed_lessons.py).
    "sweep": ("tests/test_notebooks_papermill.py", "tests/test_site.py"),
    "exercises": ("tests/test_exercises.py", "tests/test_exercise_*.py"),
    "grading": ("tests/test_grading.py", "tests/test_sandbox.py", "tests/test_commandbox.py",
                "tests/test_term.py", "tests/test_rehearsal.py"),
    "browser": ("tests/test_browser.py", "tests/test_demo.py"),
}


def group_of(path: Path) -> str:
    """The name of the group in ``TEST_GROUPS`` that runs the test file or notebook ``path``."""
    try:
        name = path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        name = path.as_posix()
    matching = [group for group, patterns in TEST_GROUPS.items()
                if any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
    if len(matching) > 1:
        raise ValueError(f"{name} is in more than one test group: {matching}")
    return matching[0] if matching else "unit"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--notebook-timeout`` (the total seconds one notebook's cells may take under nbval)
    and ``--test-group`` (collect only one group of ``TEST_GROUPS``)."""
    parser.addoption(
        "--notebook-timeout", type=float, default=600.0,
        help="fail the remaining cells of a notebook once its cells have run this many seconds",
    )
    parser.addoption(
        "--test-group", choices=sorted(TEST_GROUPS), default=None,
        help="collect only the test files and notebooks of this group (CI's parallel jobs)",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Never collect notebooks under tests/ (grading fixtures) or checkpoints as nbval items;
    under ``--test-group``, skip the test files and notebooks of the other groups."""
    group = config.getoption("test_group")
    is_test_file = collection_path.name.startswith("test_") and collection_path.suffix == ".py"
    if group and (is_test_file or collection_path.suffix == ".ipynb") \
            and group_of(collection_path) != group:
        return True
    if collection_path.suffix != ".ipynb":
        return None
    if ".ipynb_checkpoints" in collection_path.parts:
        return True
    try:
        top = collection_path.resolve().relative_to(ROOT).parts[0]
    except (ValueError, IndexError):
        return None
    return True if top not in {"notebooks", "solutions", "exercises"} else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Enforce the per-notebook budget on nbval cell items (the per-cell one is nbval's own)."""
    path = Path(str(item.path))
    if path.suffix != ".ipynb":
        return
    budget = item.config.getoption("notebook_timeout")
    started = _NOTEBOOK_STARTED.setdefault(path, time.monotonic())
    if time.monotonic() - started > budget:
        pytest.fail(f"{path.name} has run for more than {budget:.0f} s in total "
                    "(--notebook-timeout); is a cell stuck in a loop?")


#: A test module may set this to the name of one of its parameters: its tests are then dealt to
#: xdist workers per value of that parameter (one notebook's runs together) instead of per file.
GROUP_BY_ATTRIBUTE = "XDIST_GROUP_BY"
#: A test module that takes minutes as a whole sets this true: its group is dealt first.
FIRST_ATTRIBUTE = "XDIST_FIRST"
#: A test module that reads what other groups produce (the site test renders the sweep's executed
#: lessons) sets this true: its group is dealt after every other.
LAST_ATTRIBUTE = "XDIST_LAST"


def _group(item: pytest.Item) -> tuple[int, str]:
    """The xdist group of ``item`` and its rank (groups of lower rank are dealt first)."""
    path = Path(str(item.path))
    try:
        name = str(path.resolve().relative_to(ROOT))
    except ValueError:
        name = str(path)
    module = getattr(item, "module", None)
    key = getattr(module, GROUP_BY_ATTRIBUTE, None)
    callspec = getattr(item, "callspec", None)
    if key and callspec is not None and key in callspec.params:
        return 0, f"{name}::{callspec.params[key]}"
    if getattr(module, FIRST_ATTRIBUTE, False):
        return 0, name
    if getattr(module, LAST_ATTRIBUTE, False):
        return 3, name
    return (1 if path.suffix == ".ipynb" else 2), name


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deal tests to workers in groups (``make test`` runs ``--dist loadgroup``).

    A file's tests stay together (its module-scoped fixtures, such as the graded corpus, are
    costly and must run once), nbval's cells of one notebook stay together, and a module that
    sets ``XDIST_GROUP_BY`` is split per value of that parameter. The split groups (one
    notebook's seed sweep, one exercise's checks) and the modules that set ``XDIST_FIRST``
    (minutes each) are dealt first, then the notebooks, then the rest, so that no long group is
    left for the end of the run; a module that sets ``XDIST_LAST`` comes after all of them.
    """
    if not config.pluginmanager.hasplugin("xdist"):
        return  # e.g. pytest run inside a lesson's kernel (ipytest), with plugins not loaded
    groups = {id(item): _group(item) for item in items}
    items.sort(key=lambda item: groups[id(item)][0])  # stable: keeps each group's order
    for item in items:
        item.add_marker(pytest.mark.xdist_group(groups[id(item)][1]))
