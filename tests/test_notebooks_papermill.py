"""Every lesson and solution notebook runs with overridden parameters (papermill).

nbval (run by `make test` over notebooks/ and solutions/) executes each notebook with its default
parameters; here each runs once more with a different seed and, where a notebook has costly
parameters, smaller values, which proves that its numbers are computed rather than pasted.
Cells tagged ``raises-exception`` must really raise.
"""

from __future__ import annotations

import os

import nbformat
import papermill
import pytest

from tests.notebook_files import executable_notebooks

NOTEBOOKS = executable_notebooks()

#: Smaller, faster values for notebooks whose defaults are sized for reading, not for CI.
SMOKE_PARAMETERS: dict[str, dict[str, object]] = {
    "01_cicd_for_ml.ipynb": {"N_SAMPLES": 800},
}

CELL_TIMEOUT = int(os.environ.get("CELL_TIMEOUT", "120"))


def overrides_for(notebook: nbformat.NotebookNode, name: str) -> dict[str, object]:
    """SEED moved by one, plus this notebook's smoke-test values."""
    values = dict(SMOKE_PARAMETERS.get(name, {}))
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    namespace: dict[str, object] = {}
    exec(cell.source, {}, namespace)  # pylint: disable=exec-used  # our own parameters cell
    values["SEED"] = int(namespace["SEED"]) + 1
    return values


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[f"{p.parent.name}/{p.name}" for p in NOTEBOOKS])
def test_notebook_runs_with_overridden_parameters(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    parameters = overrides_for(notebook, path.name)
    executed = papermill.execute_notebook(
        str(path), str(tmp_path / path.name), parameters=parameters, kernel_name="python3",
        cwd=str(path.parent), progress_bar=False, execution_timeout=CELL_TIMEOUT,
        start_timeout=120,
    )
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "SEED" in injected[0].source
    for index, cell in enumerate(executed.cells):
        if "raises-exception" in cell.metadata.get("tags", []):
            kinds = [output.output_type for output in cell.get("outputs", [])]
            assert "error" in kinds, f"cell {index} is tagged raises-exception but did not raise"
