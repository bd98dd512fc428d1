"""Diagnose the most common reason a widget does not render: mismatched front end and kernel side.

``labsupport doctor`` prints this report. ipywidgets (the kernel side) and jupyterlab_widgets (the
JupyterLab extension that draws them) are released together; when their versions do not belong
together, or the extension is missing from the environment JupyterLab runs in, the browser shows
"Error displaying widget: model not found".
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

WIDGET_EXTENSION = Path("share", "jupyter", "labextensions", "@jupyter-widgets",
                        "jupyterlab-manager")


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, whether it holds, and what to do if not."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class DoctorReport:
    """All checks; ``ok`` only when every check holds."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(check.ok for check in self.checks)

    def render(self) -> str:
        """The report as the text ``labsupport doctor`` prints."""
        lines = [f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        lines.append("All good." if self.ok
                     else "Fix the FAIL lines above, then restart JupyterLab.")
        return "\n".join(lines)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def front_end_requirement() -> Requirement | None:
    """The jupyterlab_widgets requirement the installed ipywidgets declares, if any."""
    try:
        requirements = metadata.requires("ipywidgets") or []
    except metadata.PackageNotFoundError:
        return None
    for line in requirements:
        requirement = Requirement(line)
        name = requirement.name.replace("-", "_")
        if name == "jupyterlab_widgets" and requirement.marker is None:
            return requirement
    return None


def diagnose(prefix: Path | None = None) -> DoctorReport:
    """Check versions and the installed widget extension in the environment at ``prefix``.

    Parameters
    ----------
    prefix
        The environment to inspect; defaults to the running interpreter's ``sys.prefix``.
    """
    prefix = Path(sys.prefix if prefix is None else prefix)
    checks = []
    lab = _version("jupyterlab")
    checks.append(Check("jupyterlab", lab is not None and lab.startswith("4."),
                        f"version {lab}" if lab else "not installed: run `make lab`"))
    kernel_side, front_end = _version("ipywidgets"), _version("jupyterlab_widgets")
    needed = front_end_requirement()
    matches = (needed is not None and front_end is not None
               and needed.specifier.contains(front_end, prereleases=True))
    checks.append(Check(
        "ipywidgets / jupyterlab_widgets", matches,
        f"ipywidgets {kernel_side}, jupyterlab_widgets {front_end}"
        + ("" if matches else f" (ipywidgets {kernel_side} needs {needed}: "
           "reinstall with `.venv/bin/python -m pip install -e '.[dev]'`)"),
    ))
    extension = prefix / WIDGET_EXTENSION
    checks.append(Check(
        "widget extension installed", extension.is_dir(),
        str(extension) if extension.is_dir()
        else f"{extension} is missing: JupyterLab in this environment cannot draw widgets",
    ))
    return DoctorReport(tuple(checks))
