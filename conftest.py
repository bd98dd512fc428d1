"""Repository-wide pytest configuration: notebook budgets and what not to collect.

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


#: The tag of a solution notebook's declared wrong answers (labsupport.course.authoring.WRONG_TAG).
WRONG_ANSWER_TAG = "wrong-answer"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Enforce the per-notebook budget on nbval cell items (the per-cell one is nbval's own).

    A solution's ``wrong-answer`` cells are skipped: each is a fragment written at column 0 that
    replaces a solution block (``labsupport exercises check`` runs it in place), so running it
    as a cell of its own would fail or overwrite the real answer.
    """
    path = Path(str(item.path))
    if path.suffix != ".ipynb":
        return
    cell = getattr(item, "cell", None)
    if cell is not None and WRONG_ANSWER_TAG in cell.get("metadata", {}).get("tags", []):
        pytest.skip("a declared wrong answer: graded by `labsupport exercises check`, not run")
    budget = item.config.getoption("notebook_timeout")
    started = _NOTEBOOK_STARTED.setdefault(path, time.monotonic())
    if time.monotonic() - started > budget:
        pytest.fail(f"{path.name} has run for more than {budget:.0f} s in total "
                    "(--notebook-timeout); is a cell stuck in a loop?")
