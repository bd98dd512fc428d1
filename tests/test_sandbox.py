"""The grading sandbox: what the kernel can see and reach, limits that hold, deadlines that fire,
and nothing of a submission left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import labsupport
from labsupport.course import cgroups, sandbox
from labsupport.course.sandbox import (CellResult, Isolation, KernelGone, Limits, Sandbox,
                                       SandboxUnavailable, Warmup)
from tests.sandbox_support import fresh_temp_dir, require_bubblewrap

LIMITS = Limits(cell_seconds=5, submission_seconds=60, memory_bytes=1024**3, processes=64,
                interrupt_grace_seconds=2)
ROOT = os.geteuid() == 0
PROJECT = Path(labsupport.__file__).resolve().parent.parent
HAS_CGROUP = cgroups.cgroup_support().kind != "none"
SHM_KEY = 0x4C414253

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

#: Six children of 200 MB each: each is under the per-process limit, together over 1 GB.
GREEDY_CHILDREN = """
import os, select, signal, time
ready_r, ready_w = os.pipe()
kids, reported = [], 0
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        block = bytearray(200 * 1024**2)
        os.write(ready_w, b"!")
        time.sleep(60)
        os._exit(0)
    kids.append(pid)
quiet_until = time.monotonic() + 5  # stop once no child has reported for a while
while reported < len(kids) and time.monotonic() < quiet_until:
    if select.select([ready_r], [], [], 0.1)[0]:
        reported += len(os.read(ready_r, 16))
        quiet_until = time.monotonic() + 2
time.sleep(0.5)
held = 0  # children alive now, each holding its 200 MB
for pid in kids:
    if os.waitpid(pid, os.WNOHANG)[0] == 0:
        held += 1
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
"""


def _value(result: CellResult, name: str) -> str:
    assert result.status == "ok", result.message
    return result.expressions[name]["data"]["text/plain"]


@pytest.fixture(autouse=True)
def _bubblewrap(request):
    if "unconfined" not in request.node.name:
        require_bubblewrap()


@pytest.fixture
def temp_dir(monkeypatch):
    """A fresh, empty folder where this process (and the graders it starts) make temporary files."""
    with fresh_temp_dir(monkeypatch) as folder:
        yield folder


@pytest.fixture(scope="module")
def kernel():
    """One sandboxed kernel shared by the tests that leave it usable."""
    require_bubblewrap()
    with Sandbox(LIMITS) as box:
        box.run("import os, glob, socket")
        yield box


@pytest.mark.parametrize("field", ["cell_seconds", "memory_bytes", "processes"])
def test_limits_must_be_positive(field):
    with pytest.raises(ValueError, match=field):
        Limits(**{field: 0})


def test_a_cell_runs_and_errors_are_reported(kernel):
    assert _value(kernel.run("x = 6 * 7", {"x": "x"}), "x") == "42"
    assert kernel.run("1 / 0") == CellResult("error", "ZeroDivisionError: division by zero")


RICH_REPR = """
class Rich:
    made = []
    def _repr_html_(self):
        Rich.made.append("html")
        return "<b>rich</b>"
    def _repr_latex_(self):
        Rich.made.append("latex")
        return "$rich$"
    def __repr__(self):
        return "Rich()"
Rich()
"""


def test_a_displayed_result_is_made_as_text_only_and_still_kept_in_underscore(kernel):
    # Nobody receives a grading kernel's output: no HTML or LaTeX form is computed for it.
    kernel.run(RICH_REPR)
    assert _value(kernel.run("", {"m": "Rich.made"}), "m") == "[]"
    assert _value(kernel.run("", {"u": "_"}), "u") == "Rich()"
    # and the kernel's logger builds no debug records its handler would throw away
    assert _value(kernel.run("", {"l": "get_ipython().kernel.log.level"}), "l") == "30"


def test_the_kernel_sees_a_clean_environment_and_an_empty_working_directory(kernel):
    env = _value(kernel.run("", {"e": "sorted(os.environ)"}), "e")
    assert "GITHUB" not in env and "'CI'" not in env and "PYTEST" not in env
    assert _value(kernel.run("", {"d": "os.listdir('.')"}), "d") == "[]"
    assert _value(kernel.run("", {"d": "os.getcwd()"}), "d") == "'/home/student'"


def test_the_kernel_sees_labsupport_but_not_the_project_around_it(kernel):
    code = "from labsupport.course import runner\nimport importlib.util, labsupport"
    assert _value(kernel.run(code, {"f": "labsupport.__file__"}), "f") == \
        "'/opt/labsupport/lib/labsupport/__init__.py'"
    found = kernel.run("", {"s": "importlib.util.find_spec('labsupport.course.selfcheck').origin"})
    assert _value(found, "s") == "'/opt/labsupport/lib/labsupport/course/selfcheck.py'"
    for path in (PROJECT, PROJECT / "solutions", PROJECT / "tests", PROJECT / ".git",
                 PROJECT / "labsupport"):
        assert _value(kernel.run("", {"e": f"os.path.exists({str(path)!r})"}), "e") == "False"
    assert _value(kernel.run("", {"d": "sorted(os.listdir('/opt/labsupport/lib'))"}), "d") == \
        "['labsupport']"
    # The editable install's pointer to the project is shown empty.
    seen = kernel.run("", {"t": "[open(p).read() for p in glob.glob('/opt/labsupport/python/lib/"
                                "python*/site-packages/__editable__*')]"})
    assert str(PROJECT) not in _value(seen, "t")


def test_the_system_is_read_only_and_the_kernel_is_not_root(kernel):
    assert kernel.run("open('/usr/lab-test', 'w')").message.startswith(("PermissionError",
                                                                         "OSError"))
    assert kernel.run("open('/lab-test', 'w')").status == "error"
    uid = int(_value(kernel.run("", {"u": "os.getuid()"}), "u"))
    assert uid != 0
    if ROOT:
        assert uid == kernel.uid and uid >= sandbox.DEFAULT_UID_BASE


def test_the_kernel_cannot_reach_a_listener_on_the_loopback(kernel):
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    thread.start()
    port = server.getsockname()[1]
    code = (f"s = socket.socket()\ns.settimeout(2)\ntry:\n    s.connect(('127.0.0.1', {port}))\n"
            "    reached = 'yes'\nexcept OSError as error:\n    reached = type(error).__name__")
    assert _value(kernel.run(code, {"r": "reached"}), "r") == "'ConnectionRefusedError'"
    assert not accepted
    server.close()


def test_the_kernel_sees_only_its_own_processes(kernel):
    seen = _value(kernel.run("", {"p": "sorted(int(p) for p in os.listdir('/proc') "
                                      "if p.isdigit())"}), "p")
    assert seen == "[1, 2]"  # bubblewrap's reaper and the kernel
    cmdlines = _value(kernel.run("", {"c": "[open(p, 'rb').read() for p in "
                                           "glob.glob('/proc/[0-9]*/cmdline')]"}), "c")
    assert "pytest" not in cmdlines and str(PROJECT) not in cmdlines
    assert "labsupport-sandbox-" not in cmdlines  # the grader-side folder


def test_a_fork_storm_is_stopped_by_the_process_limit(kernel):
    result = kernel.run(FORK_STORM, {"n": "len(children)", "why": "refused"})
    assert int(_value(result, "n")) < LIMITS.processes
    assert _value(result, "why") == "'BlockingIOError'"
    assert _value(kernel.run("", {"ok": "1 + 1"}), "ok") == "2"


def test_memory_beyond_the_limit_fails_inside_the_kernel(kernel):
    assert kernel.run("blob = bytearray(4 * 1024**3)").message == "MemoryError"


@pytest.mark.skipif(not HAS_CGROUP, reason=f"no cgroup here ({cgroups.cgroup_support().note})")
def test_forked_children_together_stay_within_the_memory_limit():
    # Counted alive at the end, not by their reports: the OOM killer may take a child that had
    # reported, and a later one then finishes and reports too.
    with Sandbox(Limits(cell_seconds=60, memory_bytes=1024**3, processes=64)) as box:
        held = int(_value(box.run(GREEDY_CHILDREN, {"h": "held"}), "h"))
    assert held * 200 < 1024


def test_an_endless_cell_is_interrupted_and_the_kernel_goes_on(kernel):
    assert kernel.run("while True:\n    pass").status == "timeout"
    assert _value(kernel.run("", {"ok": "'alive'"}), "ok") == "'alive'"


def test_nothing_a_submission_leaves_outlives_it():
    leave = ("import ctypes, os\nos.makedirs('/run/lock', exist_ok=True)\n"
             "open('/run/lock/labsupport-test', 'w').write('x')\n"
             "open('/dev/shm/labsupport-test', 'w').write('x')\n"
             f"shm = ctypes.CDLL(None).shmget({SHM_KEY}, 4096, 0o1666)\n")
    with Sandbox(LIMITS) as box:
        assert int(_value(box.run(leave, {"s": "shm"}), "s")) >= 0
        box.run(FORK_STORM)
        cgroup = box._cgroup  # pylint: disable=protected-access
        paths = cgroup.paths if cgroup else ()
    assert not Path("/run/lock/labsupport-test").exists()
    assert not Path("/dev/shm/labsupport-test").exists()
    assert f"{SHM_KEY:10d}" not in Path("/proc/sysvipc/shm").read_text(encoding="utf-8")
    assert not any(path.exists() for path in paths)
    with Sandbox(LIMITS) as box:
        found = box.run("import ctypes, os", {
            "f": "(os.path.exists('/run/lock/labsupport-test'), "
                 "os.path.exists('/dev/shm/labsupport-test'), "
                 f"ctypes.CDLL(None).shmget({SHM_KEY}, 0, 0))"})
        assert _value(found, "f") == "(False, False, -1)"


def test_two_sandboxes_never_share_a_uid():
    with Sandbox(LIMITS) as first, Sandbox(LIMITS) as second:
        uids = [int(_value(box.run("import os", {"u": "os.getuid()"}), "u"))
                for box in (first, second)]
        if ROOT:
            assert uids[0] != uids[1]
        assert first.pid != second.pid


def test_the_submission_copy_is_there_read_only():
    with Sandbox(LIMITS) as box:
        box.provide("ana.ipynb", b"{}")
        seen = box.run("import os", {"r": "open('/opt/labsupport/submission/ana.ipynb').read()"})
        assert _value(seen, "r") == "'{}'"
        assert box.run("open('/opt/labsupport/submission/ana.ipynb', 'w')").status == "error"


def test_a_kernel_that_exits_is_reported_and_refuses_more_work():
    with Sandbox(LIMITS) as box:
        with pytest.raises(KernelGone, match="exited with status 3"):
            box.run("import os\nos._exit(3)")
        with pytest.raises(KernelGone):
            box.run("1 + 1")
        assert "exited with status 3" in box.gone and box.status == "kernel-died"


def test_a_kernel_killed_by_a_signal_says_which():
    with Sandbox(LIMITS) as box:
        with pytest.raises(KernelGone, match="killed by signal 9"):
            box.run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")


def test_a_kernel_that_ignores_interrupts_is_killed():
    with Sandbox(LIMITS) as box:
        with pytest.raises(KernelGone, match="did not stop when interrupted"):
            box.run("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                    "while True:\n    pass")
        assert box.status == "hung"


def test_the_submission_budget_ends_the_kernel():
    limits = Limits(cell_seconds=3, submission_seconds=6, interrupt_grace_seconds=1)
    with Sandbox(limits) as box:
        box.run("import time")
        with pytest.raises(KernelGone) as gone:
            for _ in range(5):
                box.run("time.sleep(2)")
        assert "time budget" in box.gone and gone.value.status == box.status == "timeout"


def test_a_kernel_that_does_not_start_in_time_is_the_graders_fault():
    with pytest.raises(KernelGone) as gone:
        with Sandbox(Limits(startup_seconds=0.01)):
            pass
    assert gone.value.status == "start-failed" and gone.value.status in sandbox.GRADER_FAULTS


def test_the_warmup_hands_out_a_fresh_kernel_and_starts_the_next(temp_dir):
    kernels = Warmup(LIMITS, preload=["json"])
    try:
        with kernels.take() as first:
            assert kernels.booting == 1
            first.run("x = 1")
            already = _value(first.run("import sys", {"j": "'json' in sys.modules"}), "j")
            assert already == "True"
            assert first.run("json").status == "error"  # preloaded, but no name bound
        with kernels.take() as second:
            assert second.run("x").message == "NameError: name 'x' is not defined"
    finally:
        kernels.close()
    assert not list(temp_dir.iterdir())


def test_a_deeper_warmup_keeps_that_many_kernels_booting(temp_dir):
    kernels = Warmup(LIMITS, ahead=2)
    try:
        assert kernels.booting == 0
        with kernels.take() as first:
            assert kernels.booting == 2
            first.run("x = 1")
        with kernels.take() as second:  # one of the two booted ahead, and the next started
            assert kernels.booting == 2
            assert second.run("x").message == "NameError: name 'x' is not defined"
    finally:
        kernels.close()
    assert kernels.booting == 0
    assert not list(temp_dir.iterdir())
    with pytest.raises(ValueError, match="ahead"):
        Warmup(LIMITS, ahead=0)


def test_without_bubblewrap_the_sandbox_refuses(monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    sandbox.bubblewrap_problem.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="not installed.*--unconfined"):
            Sandbox(LIMITS).start()
    finally:
        sandbox.bubblewrap_problem.cache_clear()


def test_an_unconfined_kernel_runs_with_per_process_limits_only(monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    sandbox.bubblewrap_problem.cache_clear()
    try:
        with Sandbox(LIMITS, Isolation(confined=False)) as box:
            assert _value(box.run("x = 6 * 7", {"x": "x"}), "x") == "42"
            assert box.run("blob = bytearray(4 * 1024**3)").message == "MemoryError"
            assert box.run("while True:\n    pass").status == "timeout"
    finally:
        sandbox.bubblewrap_problem.cache_clear()


def test_parent_folders_of_mount_points_are_made_traversable():
    args = ["--ro-bind", "/root/.pyenv/x", "/root/.pyenv/x", "--tmpfs", "/home/student",
            "--ro-bind", "/usr", "/usr"]
    assert sandbox._parent_dirs(args) == [  # pylint: disable=protected-access
        "--perms", "0755", "--dir", "/home", "--perms", "0755", "--dir", "/root",
        "--perms", "0755", "--dir", "/root/.pyenv"]


@pytest.mark.parametrize("kind, files, expected", [
    ("v1", {"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            "memory.max_usage_in_bytes": "1073741824\n", "memory.limit_in_bytes": "1073741824\n"},
     ""),
    ("v1", {"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            "memory.max_usage_in_bytes": "1073741824\n", "memory.limit_in_bytes": "1073741824\n"},
     "limit"),
    ("v1", {"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            "memory.max_usage_in_bytes": "314572800\n", "memory.limit_in_bytes": "1073741824\n"},
     "machine"),
    ("v2", {"memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"}, "limit"),
    ("v2", {"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 2\n"}, "machine"),
    ("v2", {}, ""),
])
def test_an_oom_kill_is_told_apart_from_reaching_the_limit(tmp_path, kind, files, expected):
    # The kernel counts every OOM kill of a process in the cgroup, the machine's too: only a
    # kill without the limit ever reached is the machine's fault (graded again on a re-run).
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    cgroup = object.__new__(cgroups.Cgroup)
    cgroup.kind, cgroup.paths = kind, (tmp_path, tmp_path)
    assert cgroup.out_of_memory() == expected


KERNEL_OOM = """
import os, time
ready_r, ready_w = os.pipe()
for _ in range(4):
    if os.fork() == 0:
        block = bytearray(200 * 1024**2)
        os.write(ready_w, b"!")
        time.sleep(60)
        os._exit(0)
held = 0
while held < 4:
    held += len(os.read(ready_r, 8))
mine = bytearray(400 * 1024**2)
"""


@pytest.mark.skipif(not HAS_CGROUP, reason=f"no cgroup here ({cgroups.cgroup_support().note})")
def test_a_kernel_killed_at_the_submissions_memory_limit_is_the_students_fault():
    # Four children hold 800 MB; the kernel's own 400 MB is within its per-process limit but
    # takes the whole submission past 1 GB: the cgroup's OOM killer takes the biggest process,
    # the kernel once it holds more than a child.
    with Sandbox(Limits(cell_seconds=60, memory_bytes=1024**3, processes=64)) as box:
        with pytest.raises(KernelGone) as gone:
            box.run(KERNEL_OOM)
    assert gone.value.status == "kernel-died"
    assert "out of memory" in str(gone.value) and "not the student's fault" not in str(gone.value)


KILLED_GRADER = """
import os, signal, sys, time
from labsupport.course.sandbox import Limits, Sandbox
Sandbox(Limits()).start()
time.sleep(float(sys.argv[1]))
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(not HAS_CGROUP, reason=f"no cgroup here ({cgroups.cgroup_support().note})")
def test_a_grader_killed_while_a_kernel_starts_leaves_nothing_running(temp_dir):
    # Killed within milliseconds of starting a sandbox, before bubblewrap's own death signal is
    # set, a grader used to leave the kernel running forever. The launcher now dies with the
    # grader; what bubblewrap's child started in between is killed by the next sandbox's start,
    # and the killed graders' sandbox folders are deleted by it too (they used to stay in /tmp).
    project = Path(labsupport.__file__).resolve().parent.parent
    graders = []
    for delay in (0.0, 0.003, 0.01, 0.03):
        with subprocess.Popen([sys.executable, "-c", KILLED_GRADER, str(delay)],
                              cwd=project) as grader:
            assert grader.wait(timeout=60) == -signal.SIGKILL
        graders.append(grader.pid)
    # Each grader's start deleted the folders of those killed before it: the last one's is left.
    assert [p.name.split("-")[2] for p in temp_dir.iterdir()] == [str(graders[-1])]
    with Sandbox(LIMITS) as box:
        assert box.run("x = 1").status == "ok"
    left = [path for parent in cgroups.cgroup_support().parents for pid in graders
            for path in parent.glob(f"labsupport-{pid}-*")]
    assert not left, f"cgroups of killed graders remain, with their kernels: {left}"
    assert not list(temp_dir.iterdir()), "sandbox folders of killed graders remain"


def test_only_the_folders_of_dead_graders_are_removed_and_links_are_not_followed(temp_dir,
                                                                                 tmp_path):
    with subprocess.Popen([sys.executable, "-c", ""]) as dead:
        dead.wait()  # its pid now names no process
    stale = temp_dir / f"{sandbox.FOLDER_PREFIX}{dead.pid}-abc"
    (stale / "kernel").mkdir(parents=True)
    live = temp_dir / f"{sandbox.FOLDER_PREFIX}{os.getpid()}-abc"
    live.mkdir()
    old_style = temp_dir / f"{sandbox.FOLDER_PREFIX}k7j5dkb_"  # no pid in the name: whose?
    old_style.mkdir()
    target = tmp_path / "precious"
    (target / "inside").mkdir(parents=True)
    (temp_dir / f"{sandbox.FOLDER_PREFIX}{dead.pid}-link").symlink_to(target)
    assert sandbox.remove_stale_folders() == [stale]
    assert sorted(p.name for p in temp_dir.iterdir()) == sorted(
        [live.name, old_style.name, f"{sandbox.FOLDER_PREFIX}{dead.pid}-link"])
    assert (target / "inside").is_dir()
