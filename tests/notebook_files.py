"""Where the lab's notebooks are, shared by the notebook tests."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIRS = ("notebooks", "solutions", "exercises")


def all_notebooks(dirs: tuple[str, ...] = NOTEBOOK_DIRS) -> list[Path]:
    """Every committed notebook under ``dirs``, sorted, checkpoints excluded."""
    found = []
    for name in dirs:
        found.extend(p for p in (ROOT / name).glob("*.ipynb"))
    return sorted(found)


def executable_notebooks() -> list[Path]:
    """Notebooks that must run top to bottom: lessons and solutions (exercises are stubs)."""
    return all_notebooks(("notebooks", "solutions"))
