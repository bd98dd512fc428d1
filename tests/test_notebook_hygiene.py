"""Committed notebooks are clean, parameterised and seeded (checked without running them)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from labsupport.course import authoring, written
from tests.notebook_files import all_notebooks

NOTEBOOKS = all_notebooks()

#: The only cell tags the lab uses (STYLE.md, habit 9). Course tooling adds its exercise markers.
ALLOWED_TAGS = {"parameters", "raises-exception", "nbval-ignore-output", "nbval-check-output",
                *authoring.TAGS, authoring.WRONG_TAG, authoring.INSTRUCTOR_TAG,
                written.WRITTEN_TAG}

GLOBAL_RANDOMNESS = re.compile(
    r"np\.random\.(seed|rand|randn|randint|choice|normal|uniform|shuffle|permutation)\(|"
    r"^\s*import random\b|^\s*from random import", re.MULTILINE)


def _load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.name}" for p in paths]


def test_there_are_notebooks_to_check():
    assert any(p.parent.name == "notebooks" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_valid_and_stored_without_outputs(path):
    notebook = _load(path)
    nbformat.validate(notebook)
    assert "widgets" not in notebook.metadata, "widget state saved in notebook metadata"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has outputs"
            assert cell.execution_count is None, f"cell {index} has an execution count"
        assert "execution" not in cell.metadata, f"cell {index} keeps execution timings"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_has_one_parameters_cell_defining_seed(path):
    notebook = _load(path)
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected exactly one cell tagged 'parameters', found {len(cells)}"
    assigned = {target.id for node in ast.parse(cells[0].source).body
                if isinstance(node, ast.Assign) for target in node.targets
                if isinstance(target, ast.Name)}
    assert "SEED" in assigned, "the parameters cell must define SEED"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_seeds_one_generator_and_no_global_state(path):
    source = "\n".join(c.source for c in _load(path).cells if c.cell_type == "code")
    assert source.count("np.random.default_rng(SEED)") == 1, \
        "create exactly one generator: rng = np.random.default_rng(SEED)"
    assert GLOBAL_RANDOMNESS.search(source) is None, "use rng, never numpy's or random's globals"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_uses_only_known_tags(path):
    used = {tag for cell in _load(path).cells for tag in cell.metadata.get("tags", [])}
    assert used <= ALLOWED_TAGS, f"unknown tags {sorted(used - ALLOWED_TAGS)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_on_the_lab_kernel(path):
    assert _load(path).metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_has_one_title_heading(path):
    # The course site builds its sidebar from the headings: a second h1 (say "Part 2") would
    # stand beside the lesson instead of inside it.
    titles = [line for cell in _load(path).cells if cell.cell_type == "markdown"
              for line in re.sub(r"^```.*?^```", "", cell.source, flags=re.MULTILINE | re.DOTALL)
              .splitlines() if line.startswith("# ")]
    assert len(titles) == 1, f"expected one h1 (the title), found {titles}"
