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
    "notebooks/01_cicd_for_ml.ipynb": {"N_SAMPLES": 800},
    "notebooks/02_data_drift.ipynb": {"N_REFERENCE": 1000, "N_CURRENT": 1000,
                                      "N_SIMULATIONS": 60, "N_BATCHES": 8, "BATCH_SIZE": 300},
    "notebooks/07_ab_testing_statistics.ipynb": {"N_SIMULATIONS": 1500, "N_PEEKING": 1500},
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


def execute(path, parameters, output):
    """Run a notebook with papermill and return the executed notebook.

    nbclient (which papermill drives) keeps going after a cell tagged ``raises-exception`` fails,
    but papermill then raises for any error output, tagged or not; the executed notebook it wrote
    is what the caller inspects.
    """
    try:
        papermill.execute_notebook(
            str(path), str(output), parameters=parameters, kernel_name="python3",
            cwd=str(path.parent), progress_bar=False, execution_timeout=CELL_TIMEOUT,
            start_timeout=120)
    except papermill.PapermillExecutionError:
        pass
    return nbformat.read(output, as_version=4)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[f"{p.parent.name}/{p.name}" for p in NOTEBOOKS])
def test_notebook_runs_with_overridden_parameters(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    parameters = overrides_for(notebook, f"{path.parent.name}/{path.name}")
    executed = execute(path, parameters, tmp_path / path.name)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and f"SEED = {parameters['SEED']}" in injected[0].source
    code = [c for c in executed.cells if c.cell_type == "code"]
    for cell in code:
        tagged = "raises-exception" in cell.metadata.get("tags", [])
        raised = any(output.output_type == "error" for output in cell.get("outputs", []))
        assert raised == tagged, (
            f"cell {cell.execution_count}: " + ("tagged raises-exception but did not raise"
                                                if tagged else "raised an error")
            + f"\n{cell.source[:200]}")
    assert code[-1].execution_count is not None, "execution stopped before the last cell"
