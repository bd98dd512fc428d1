"""Every lesson and solution notebook runs under a sweep of seeds (papermill).

nbval (run by `make test` over notebooks/ and solutions/) executes each notebook once with its
default parameters. Here each notebook found in notebooks/ and solutions/ (a lesson added later is
swept without touching this file) runs again under every seed of :data:`SWEEP_SEEDS`, with the
smoke-test sizes of :data:`SMOKE_PARAMETERS` where its defaults are sized for reading. The lessons
``assert`` what their prose claims, with tolerances from the simulation's standard error, so a
sentence that is true only for a lucky seed fails here. Cells tagged ``raises-exception`` must
really raise, no other cell may, and the run must reach the last cell.
"""

from __future__ import annotations

import os

import jupyter_client
import nbformat
import papermill
import pytest

from labsupport.course import rehearsal
from tests import executed_lessons
from tests.notebook_files import executable_notebooks

NOTEBOOKS = executable_notebooks()
#: One notebook's sweep runs on one xdist worker, in one kernel (see conftest.py).
XDIST_GROUP_BY = "notebook_kernel"

#: The seeds every notebook must pass under (its own default SEED is nbval's run). The first is
#: :data:`executed_lessons.SITE_SEED`: the course site test renders the lessons' runs under it.
SWEEP_SEEDS = (1, 7, 42, 1234, 2026)

#: Smaller, faster values for notebooks whose defaults are sized for reading, not for CI.
SMOKE_PARAMETERS: dict[str, dict[str, object]] = {
    "notebooks/01_cicd_for_ml.ipynb": {"N_SAMPLES": 800, "N_EVALUATION": 600},
    "notebooks/02_data_drift.ipynb": {"N_REFERENCE": 1000, "N_CURRENT": 1000,
                                      "N_SIMULATIONS": 100, "N_DRAWS": 20,
                                      "N_BATCHES": 8, "BATCH_SIZE": 300},
    "notebooks/07_ab_testing_statistics.ipynb": {"N_SIMULATIONS": 1500, "N_PEEKING": 1500},
}

CELL_TIMEOUT = int(os.environ.get("CELL_TIMEOUT", "120"))


def _name(path) -> str:
    return f"{path.parent.name}/{path.name}"


def overrides_for(notebook: nbformat.NotebookNode, name: str, seed: int) -> dict[str, object]:
    """``seed`` plus this notebook's smoke-test values, each checked against its parameters cell."""
    values = dict(SMOKE_PARAMETERS.get(name, {}))
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    namespace: dict[str, object] = {}
    exec(cell.source, {}, namespace)  # pylint: disable=exec-used  # our own parameters cell
    unknown = sorted(set(values) - set(namespace))
    assert not unknown, f"SMOKE_PARAMETERS names {unknown}, which {name} does not define"
    values["SEED"] = seed
    return values


def execute(path, parameters, output, km=None):
    """Run a notebook with papermill (in the kernel of ``km`` if given) and return the executed
    notebook.

    nbclient (which papermill drives) keeps going after a cell tagged ``raises-exception`` fails,
    but papermill then raises for any error output, tagged or not; the executed notebook it wrote
    is what the caller inspects.
    """
    try:  # a solution runs as it is: its wrong answers are raw cells, which nothing executes
        papermill.execute_notebook(
            str(path), str(output), parameters=parameters, kernel_name="python3",
            cwd=str(path.parent), progress_bar=False, execution_timeout=CELL_TIMEOUT,
            start_timeout=120, km=km)
    except papermill.PapermillExecutionError:
        pass
    return nbformat.read(output, as_version=4)


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=[_name(p) for p in NOTEBOOKS])
def notebook_kernel(request):
    """A notebook and one kernel for all its sweep runs (kernel start and imports are most of a
    short notebook's cost). Runs after the first start from :data:`rehearsal.RESET`, the reset
    the wrong answers' shared kernels use too."""
    path = request.param
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(path.parent))
    used = False

    def prepare():
        nonlocal used
        if not manager.is_alive():  # a run that killed the kernel does not sink the next ones
            manager.restart_kernel(now=True)
        elif used:
            client = manager.client()
            client.start_channels()
            try:
                client.wait_for_ready(timeout=120)
                reply = client.execute_interactive(
                    rehearsal.RESET.format(directory=str(path.parent)), timeout=120,
                    output_hook=lambda _msg: None)
            finally:
                client.stop_channels()
            assert reply["content"]["status"] == "ok", reply["content"]
        used = True
        return manager

    yield path, prepare
    manager.shutdown_kernel(now=True)


def _error_text(cell: nbformat.NotebookNode) -> str:
    errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
    return "\n".join(f"{o.ename}: {o.evalue}" for o in errors)


def test_the_sweep_covers_every_lesson_and_solution():
    names = {_name(p) for p in NOTEBOOKS}
    assert {"notebooks/01_cicd_for_ml.ipynb", "notebooks/02_data_drift.ipynb"} <= names
    assert set(SMOKE_PARAMETERS) <= names, "SMOKE_PARAMETERS names a notebook that does not exist"
    assert len(SWEEP_SEEDS) >= 5 and len(set(SWEEP_SEEDS)) == len(SWEEP_SEEDS)
    assert executed_lessons.SITE_SEED in SWEEP_SEEDS


@pytest.mark.parametrize("seed", SWEEP_SEEDS, ids=[f"seed{s}" for s in SWEEP_SEEDS])
def test_notebook_runs_under_every_sweep_seed(notebook_kernel, seed, tmp_path,
                                              tmp_path_factory):
    path, prepare = notebook_kernel
    notebook = nbformat.read(path, as_version=4)
    parameters = overrides_for(notebook, _name(path), seed)
    for_site = path.parent.name == "notebooks" and seed == executed_lessons.SITE_SEED
    try:
        executed = execute(path, parameters, tmp_path / path.name, km=prepare())
    except BaseException as error:  # the site test is told at once, not after its wait
        if for_site:
            executed_lessons.publish(executed_lessons.shared_folder(tmp_path_factory),
                                     path.stem, None, f"the sweep's run raised {error!r}")
        raise
    if for_site:  # tests/test_site.py builds the course site from this run
        executed_lessons.publish(executed_lessons.shared_folder(tmp_path_factory), path.stem,
                                 executed)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and f"SEED = {seed}" in injected[0].source
    code = [c for c in executed.cells if c.cell_type == "code"]
    for cell in code:
        tagged = "raises-exception" in cell.metadata.get("tags", [])
        raised = any(output.output_type == "error" for output in cell.get("outputs", []))
        assert raised == tagged, (
            f"SEED={seed}, cell {cell.execution_count}: "
            + ("tagged raises-exception but did not raise" if tagged
               else f"raised an error\n{_error_text(cell)}")
            + f"\n{cell.source[:300]}")
    assert code[-1].execution_count is not None, \
        f"SEED={seed}: execution stopped before the last cell"
