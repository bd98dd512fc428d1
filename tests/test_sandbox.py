"""The grading sandbox: limits that hold, a kernel that is not root, deadlines that fire."""

from __future__ import annotations

import os

import pytest

from labsupport.course import sandbox
from labsupport.course.sandbox import CellResult, Isolation, KernelGone, Limits, Sandbox

LIMITS = Limits(cell_seconds=3, submission_seconds=40, memory_bytes=1024**3, processes=64,
                interrupt_grace_seconds=2)
ROOT = os.geteuid() == 0

FORK_STORM = """
import os, time
children, refused = [], None
for _ in range(300):
    try:
        pid = os.fork()
    except OSError as error:
        refused = type(error).__name__
        break
    if pid == 0:
        time.sleep(120)
        os._exit(0)
    children.append(pid)
"""


def _value(result: CellResult, name: str) -> str:
    assert result.status == "ok", result.message
    return result.expressions[name]["data"]["text/plain"]


@pytest.fixture(scope="module")
def kernel():
    """One sandboxed kernel shared by the tests that leave it usable."""
    with Sandbox(LIMITS, Isolation(slot=5)) as box:
        yield box


@pytest.mark.parametrize("field", ["cell_seconds", "memory_bytes", "processes"])
def test_limits_must_be_positive(field):
    with pytest.raises(ValueError, match=field):
        Limits(**{field: 0})


def test_a_cell_runs_and_errors_are_reported(kernel):
    assert _value(kernel.run("x = 6 * 7", {"x": "x"}), "x") == "42"
    assert kernel.run("1 / 0") == CellResult("error", "ZeroDivisionError: division by zero")


def test_the_kernel_sees_a_clean_environment_and_an_empty_working_directory(kernel):
    env = _value(kernel.run("import os", {"e": "sorted(os.environ)"}), "e")
    assert "GITHUB" not in env and "'CI'" not in env and "PYTEST" not in env
    assert _value(kernel.run("", {"d": "os.listdir('.')"}), "d") == "[]"


def test_a_fork_storm_is_stopped_by_the_process_limit(kernel):
    result = kernel.run(FORK_STORM, {"n": "len(children)", "why": "refused"})
    assert int(_value(result, "n")) < LIMITS.processes
    assert _value(result, "why") == "'BlockingIOError'"
    assert _value(kernel.run("", {"ok": "1 + 1"}), "ok") == "2"


def test_memory_beyond_the_limit_fails_inside_the_kernel(kernel):
    assert kernel.run("blob = bytearray(4 * 1024**3)").message == "MemoryError"


def test_an_endless_cell_is_interrupted_and_the_kernel_goes_on(kernel):
    assert kernel.run("while True:\n    pass").status == "timeout"
    assert _value(kernel.run("", {"ok": "'alive'"}), "ok") == "'alive'"


@pytest.mark.skipif(not ROOT, reason="dropping privileges needs a grader running as root")
def test_as_root_the_kernel_runs_as_its_own_unprivileged_uid(kernel):
    uid = _value(kernel.run("import os", {"u": "(os.getuid(), os.geteuid())"}), "u")
    assert uid == f"({sandbox.DEFAULT_UID_BASE + 5}, {sandbox.DEFAULT_UID_BASE + 5})"
    result = kernel.run("open('/etc/labsupport-sandbox-test', 'w')")
    assert result.message.startswith("PermissionError")


@pytest.mark.skipif(not ROOT, reason="dropping privileges needs a grader running as root")
def test_as_root_every_process_of_the_kernel_is_gone_afterwards(tmp_path):
    (tmp_path / "secret.txt").write_text("hidden test text")
    with Sandbox(LIMITS, Isolation(slot=6, hidden=(tmp_path,))) as box:
        box.run(FORK_STORM)
        seen = box.run("import os", {"h": f"os.path.exists({str(tmp_path / 'secret.txt')!r})"})
        assert _value(seen, "h") == "False"
        assert len(sandbox._processes_of(sandbox.DEFAULT_UID_BASE + 6)) > 10  # pylint: disable=W0212
    assert not sandbox._processes_of(sandbox.DEFAULT_UID_BASE + 6)  # pylint: disable=W0212


def test_a_kernel_that_exits_is_reported_and_refuses_more_work():
    with Sandbox(LIMITS, Isolation(slot=7)) as box:
        with pytest.raises(KernelGone, match="exited with status 3"):
            box.run("import os\nos._exit(3)")
        with pytest.raises(KernelGone):
            box.run("1 + 1")
        assert "exited with status 3" in box.gone


def test_a_kernel_that_ignores_interrupts_is_killed():
    with Sandbox(LIMITS, Isolation(slot=7)) as box:
        with pytest.raises(KernelGone, match="did not stop when interrupted"):
            box.run("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                    "while True:\n    pass")


def test_the_submission_budget_ends_the_kernel():
    limits = Limits(cell_seconds=3, submission_seconds=4, interrupt_grace_seconds=1)
    with Sandbox(limits, Isolation(slot=7)) as box:
        box.run("import time")
        with pytest.raises(KernelGone):
            for _ in range(5):
                box.run("time.sleep(2)")
        assert "time budget" in box.gone


def test_blocked_ancestors_lists_directories_others_cannot_enter(tmp_path):
    private = tmp_path / "private"
    (private / "python" / "lib").mkdir(parents=True)
    private.chmod(0o700)
    tmp_path.chmod(0o755)
    blocked = sandbox.blocked_ancestors([private / "python" / "lib"])
    assert (str(private), ["python"]) in blocked


def test_the_temporary_directory_is_replaced_even_when_the_lab_lives_in_it(monkeypatch, tmp_path):
    # A fresh clone in /tmp (as CI may make) puts Python and labsupport below the shared
    # temporary directory; the kernel must still see only its own folder and those entries.
    root = tmp_path / "labsupport-sandbox-x"
    lab = tmp_path / "clone" / ".venv" / "bin" / "python"
    lab.parent.mkdir(parents=True)
    lab.touch()
    monkeypatch.setattr(sandbox, "_needed_paths", lambda: [lab])
    box = Sandbox(LIMITS)
    monkeypatch.setattr(box, "_root", root)
    views = dict(box._reveal())  # pylint: disable=protected-access
    assert views[str(tmp_path)] == sorted(["clone", root.name])
