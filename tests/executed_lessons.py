"""The seed sweep's executed lessons, handed to the site test so the site is built from them.

`make test` executes every lesson several times already (nbval, and the papermill sweep under
five seeds). Executing them once more to build the course site would add minutes, so the sweep's
run of each lesson at :data:`SITE_SEED` publishes its executed notebook (outputs and widget state
included) into a folder every xdist worker of the session shares, and tests/test_site.py builds
the site from those copies with execution off.

A published lesson is two files: ``NAME.ipynb`` (the executed notebook) and ``NAME.done`` (written
last, holding ``ok`` or why the run did not finish), so a reader never sees half a notebook.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest

#: The sweep seed whose run of each lesson the site test renders.
SITE_SEED = 1


def shared_folder(factory: pytest.TempPathFactory) -> Path:
    """The folder of this pytest session that all its xdist workers share.

    Each worker's base temp folder is ``pytest-N/popen-gwK``; their common parent belongs to this
    session alone (another run on the machine gets another ``pytest-N``).
    """
    base = factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "executed-lessons"
    folder.mkdir(exist_ok=True)
    return folder


def publish(folder: Path, name: str, notebook: nbformat.NotebookNode | None,
            problem: str = "") -> None:
    """Publish lesson ``name``'s executed ``notebook`` (None with ``problem``: the run failed)."""
    if notebook is not None:
        partial = folder / f"{name}.ipynb.partial"
        nbformat.write(notebook, partial)
        partial.replace(folder / f"{name}.ipynb")
    (folder / f"{name}.done").write_text(problem or "ok", encoding="utf-8")


def wait_for(folder: Path, names: list[str], timeout: float) -> dict[str, str]:
    """Wait until every lesson of ``names`` is published; return each one's outcome (``ok`` or
    the problem), ``"not published within ... s"`` for those still missing at ``timeout``."""
    deadline = time.monotonic() + timeout
    outcomes: dict[str, str] = {}
    while True:
        for name in names:
            done = folder / f"{name}.done"
            if name not in outcomes and done.exists():
                outcomes[name] = done.read_text(encoding="utf-8")
        if len(outcomes) == len(names) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    return {name: outcomes.get(name, f"not published within {timeout:.0f} s") for name in names}
