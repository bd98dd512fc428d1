"""The house rules of labsupport (ARCHITECTURE.md): data flows one way, one concept per module.

notebook -> widgets -> concept modules (+ plots); concept modules never import widgets, course or
cli; course tooling never imports widgets; only labsupport.widgets imports ipywidgets.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "labsupport"
MODULES = sorted(PACKAGE.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module name ``path`` imports (``from labsupport import x`` counts as labsupport.x)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def _uses(names: set[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in names)


CONCEPTS = [p for p in MODULES if p.parent == PACKAGE
            and p.name not in {"__init__.py", "__main__.py", "cli.py"}]


@pytest.mark.parametrize("path", CONCEPTS, ids=_relative)
def test_concept_modules_import_no_views_or_tooling(path):
    names = imported(path)
    for forbidden in ("labsupport.widgets", "labsupport.course", "labsupport.cli", "ipywidgets"):
        assert not _uses(names, forbidden), f"{_relative(path)} imports {forbidden}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "course").glob("*.py")), ids=_relative)
def test_course_tooling_never_imports_widgets(path):
    names = imported(path)
    assert not _uses(names, "labsupport.widgets") and not _uses(names, "ipywidgets")


def test_only_the_widgets_package_imports_ipywidgets():
    users = {_relative(p) for p in MODULES if _uses(imported(p), "ipywidgets")}
    assert users and all(name.startswith("labsupport/widgets/") for name in users), users


def test_there_is_no_grab_bag_module():
    assert not [p for p in MODULES if p.stem in {"utils", "helpers", "misc", "common"}]


def test_the_rule_checker_sees_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import ipywidgets as w\nfrom labsupport import widgets\n")
    assert _uses(imported(sample), "ipywidgets") and _uses(imported(sample), "labsupport.widgets")
