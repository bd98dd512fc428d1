"""environment.yml (conda/Binder) and pyproject.toml (pip) must name the same dependencies."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

import conftest

from tests.notebook_files import ROOT


def _normalise(requirement: str) -> tuple[str, str]:
    parsed = Requirement(requirement.split("#")[0].strip())
    name = re.sub(r"[-_.]+", "-", parsed.name).lower()
    return name, str(parsed.specifier)


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():  # dev, docs: all go to Binder
        lines += extra
    return dict(_normalise(line) for line in lines)


def _environment() -> tuple[dict, dict[str, str], list[str]]:
    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = [], []
    for entry in spec["dependencies"]:
        if isinstance(entry, dict):
            pip.extend(entry["pip"])
        else:
            conda.append(entry)
    # Packages that conda-forge does not carry sit under `pip:`; they count like the others.
    from_pip = [line for line in pip if not line.strip().startswith(("-e", "."))]
    named = dict(_normalise(line) for line in conda + from_pip
                 if not line.startswith(("python=", "pip")))
    return spec, named, pip


def test_environment_and_pyproject_name_the_same_dependencies():
    _, conda, _ = _environment()
    pyproject = _pyproject()
    assert sorted(set(pyproject) - set(conda)) == [], "in pyproject.toml only"
    assert sorted(set(conda) - set(pyproject)) == [], "in environment.yml only"


def test_environment_and_pyproject_agree_on_versions():
    _, conda, _ = _environment()
    pyproject = _pyproject()
    differ = {name: (pyproject[name], conda[name]) for name in pyproject
              if conda.get(name) != pyproject[name]}
    assert differ == {}


def test_environment_pins_python_and_installs_the_local_package():
    spec, _, pip = _environment()
    assert "conda-forge" in spec["channels"]
    assert "python=3.11" in spec["dependencies"]
    assert any(line.strip().startswith("-e .") or line.strip() == "." for line in pip)


def test_setup_installs_every_extra():
    """`make setup` installs the dev and docs extras, so `make site` works after it."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    makefile = (ROOT / "Makefile").read_text()
    assert f"-e '.[{','.join(sorted(extras))}]'" in makefile


def test_widget_front_end_is_pinned_to_the_kernel_side():
    pyproject = _pyproject()
    assert pyproject["ipywidgets"].startswith("==")
    assert pyproject["jupyterlab-widgets"].startswith("==")
    assert set(pyproject["jupyterlab"].split(",")) == {">=4.4", "<5"}


def test_every_dependency_is_commented():
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("dependencies:"):].splitlines():
        if line.strip().startswith("- ") and not line.strip().startswith("- pip:"):
            assert "#" in line, f"environment.yml: uncommented dependency {line.strip()!r}"
    text = (ROOT / "pyproject.toml").read_text()
    block = text[text.index("dependencies = ["):text.index("[project.scripts]")]
    previous = ""
    for line in block.splitlines():
        if line.strip().startswith('"'):
            assert previous.strip().startswith(("#", '"')), f"uncommented dependency {line.strip()}"
        previous = line if line.strip() else previous


GROUPED_TESTS = '''
import os
import pytest


@pytest.mark.xdist_group("one")
@pytest.mark.parametrize("index", range(6))
def test_records_its_worker(index, tmp_path_factory):
    out = tmp_path_factory.getbasetemp().parent.parent / "workers"
    out.mkdir(exist_ok=True)
    (out / str(index)).write_text(os.environ["PYTEST_XDIST_WORKER"])
'''


def test_xdist_keeps_a_group_on_one_worker(tmp_path):
    """`make test` relies on --dist loadgroup (conftest.py): a group split over workers would
    run one notebook's nbval cells in two kernels. pytest 9.2 with xdist 3.8 did that silently."""
    (tmp_path / "test_grouped.py").write_text(GROUPED_TESTS)
    (tmp_path / "base").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p",
         "no:cacheprovider", "-q", "--basetemp", str(tmp_path / "base" / "run"),
         "--rootdir", str(tmp_path), str(tmp_path / "test_grouped.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    workers = {path.read_text() for path in (tmp_path / "base" / "workers").iterdir()}
    assert len(list((tmp_path / "base" / "workers").iterdir())) == 6
    assert len(workers) == 1, f"one xdist group ran on {sorted(workers)}"


# --- CI's parallel groups (conftest.TEST_GROUPS, `make test GROUP=...`, ci.yml's matrix) -------

def _make_test_files() -> list[Path]:
    """What `make test` hands pytest: every test module under tests/, every lesson notebook."""
    return sorted(ROOT.glob("tests/**/test_*.py")) + sorted(ROOT.glob("notebooks/*.ipynb"))


def test_the_groups_partition_what_make_test_collects():
    """Each test file and lesson notebook is in exactly one group (group_of raises on two), a file
    named by no pattern lands in `unit`, and no pattern is stale."""
    groups = {path.relative_to(ROOT).as_posix(): conftest.group_of(path)
              for path in _make_test_files()}
    assert set(groups.values()) == set(conftest.TEST_GROUPS), groups
    for group, patterns in conftest.TEST_GROUPS.items():
        for pattern in patterns:
            assert any(fnmatch.fnmatch(name, pattern) and groups[name] == group
                       for name in groups), f"{group}: {pattern} matches no test file"


def test_a_new_test_file_falls_in_unit():
    assert conftest.group_of(ROOT / "tests" / "test_not_written_yet.py") == "unit"


def test_make_ci_and_conftest_name_the_same_groups():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    listed = re.search(r"^TEST_GROUPS := (.*)$", makefile, re.MULTILINE).group(1).split()
    ci_yml = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    matrix = ci_yml["jobs"]["test"]["strategy"]["matrix"]["group"]
    assert listed == matrix == ["lint", *conftest.TEST_GROUPS], (listed, matrix)


def test_a_group_run_collects_only_its_own_files():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "notebooks", "--nbval-lax", "--collect-only",
         "-q", "-p", "no:cacheprovider", "--test-group=browser"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    files = {line.split("::")[0] for line in done.stdout.splitlines() if "::" in line}
    expected = {path.relative_to(ROOT).as_posix() for path in _make_test_files()
                if conftest.group_of(path) == "browser"}
    assert files == expected
