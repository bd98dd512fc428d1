"""How long the notebook suite takes, against the floor of starting and stopping its kernels.

Executing N notebooks can never be faster than starting and stopping N kernels, so that floor is
measured first, in this same run, with empty kernels. Each notebook is then executed (nbclient,
one after the other) and its time split into the cells' own computation (from the kernel's
timestamps) and the rest: kernel start-up, imports, messaging. Target: the rest stays within
2x the floor, i.e. ``(wall - computation) / floor <= 2``.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import nbformat
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient
from tqdm import tqdm

from labsupport.course import authoring
from tests.notebook_files import executable_notebooks

TARGET = 2.0


def kernel_floor(count: int) -> float:
    """Seconds to start, reach ready, and shut down ``count`` empty python3 kernels."""
    started = time.perf_counter()
    for _ in tqdm(range(count), desc="empty kernels", leave=False):
        manager, client = start_new_kernel(kernel_name="python3", startup_timeout=120)
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    return time.perf_counter() - started


def _cell_seconds(cell: nbformat.NotebookNode) -> float:
    timing = cell.metadata.get("execution", {})
    begin, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (begin and end):
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(begin)).total_seconds()


def run_notebook(path: Path) -> tuple[float, float]:
    """Execute one notebook; return (wall seconds, seconds spent inside its cells)."""
    # A solution's wrong-answer cells are fragments graded by `labsupport exercises check`.
    notebook = authoring.without_wrong_answers(nbformat.read(path, as_version=4))
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", record_timing=True,
                            allow_errors=False, resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - started
    return wall, sum(_cell_seconds(cell) for cell in notebook.cells if cell.cell_type == "code")


def main() -> None:
    """Print the suite's wall time, its computation, and the overhead ratio to the floor."""
    notebooks = executable_notebooks()
    if not notebooks:
        print("no notebooks to time")
        return
    floor = kernel_floor(len(notebooks))
    rows = []
    for path in tqdm(notebooks, desc="notebooks", leave=False):
        wall, compute = run_notebook(path)
        rows.append((f"{path.parent.name}/{path.name}", wall, compute))
    total_wall = sum(r[1] for r in rows)
    total_compute = sum(r[2] for r in rows)
    ratio = (total_wall - total_compute) / floor
    print(f"{'notebook':45s} {'wall s':>8s} {'in cells s':>11s}")
    for name, wall, compute in rows:
        print(f"{name:45s} {wall:8.2f} {compute:11.2f}")
    print(f"{'all notebooks':45s} {total_wall:8.2f} {total_compute:11.2f}")
    print(f"kernel start/stop floor for {len(notebooks)} kernels: {floor:.2f} s")
    print(f"overhead (wall - in cells) / floor = {ratio:.2f}  (target <= {TARGET:g}: "
          f"{'met' if ratio <= TARGET else 'NOT met'})")
