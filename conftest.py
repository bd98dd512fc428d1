"""Repository-wide pytest configuration: notebook budgets, what not to collect, and how the tests
are dealt to xdist workers.

Lives at the top level because it governs notebooks/ and solutions/ (collected by nbval) as well
as tests/.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
_NOTEBOOK_STARTED: dict[Path, float] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--notebook-timeout``: the total seconds one notebook's cells may take under nbval."""
    parser.addoption(
        "--notebook-timeout", type=float, default=600.0,
        help="fail the remaining cells of a notebook once its cells have run this many seconds",
    )


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    """Never collect notebooks under tests/ (grading fixtures) or checkpoints as nbval items."""
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
    return (1 if path.suffix == ".ipynb" else 2), name


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deal tests to workers in groups (``make test`` runs ``--dist loadgroup``).

    A file's tests stay together (its module-scoped fixtures, such as the graded corpus, are
    costly and must run once), nbval's cells of one notebook stay together, and a module that
    sets ``XDIST_GROUP_BY`` is split per value of that parameter. The split groups (one
    notebook's seed sweep, one exercise's checks) and the modules that set ``XDIST_FIRST``
    (minutes each) are dealt first, then the notebooks, then the rest, so that no long group is
    left for the end of the run.
    """
    if not config.pluginmanager.hasplugin("xdist"):
        return  # e.g. pytest run inside a lesson's kernel (ipytest), with plugins not loaded
    groups = {id(item): _group(item) for item in items}
    items.sort(key=lambda item: groups[id(item)][0])  # stable: keeps each group's order
    for item in items:
        item.add_marker(pytest.mark.xdist_group(groups[id(item)][1]))
