"""A throw-away Jupyter kernel for one student submission, confined by bubblewrap.

:class:`Sandbox` starts a fresh ``ipykernel`` under `bubblewrap <https://github.com/containers/
bubblewrap>`_ (``bwrap``, the tool Flatpak uses) and talks to it over the Jupyter messaging
protocol on the ``ipc`` transport (Unix sockets in a directory bound into the sandbox). The
kernel's view of the machine is built by *inclusion*: it sees

* read-only: ``/usr`` (and the ``/bin``, ``/lib`` links into it), a few files of ``/etc`` the
  dynamic loader needs, the grader's Python installation (its prefix; a virtual environment at the
  neutral path ``/opt/labsupport/python``) and the ``labsupport`` package alone at
  ``/opt/labsupport/lib`` — never the repository it may come from (no ``solutions/``, ``tests/``,
  ``.git``), nor the submissions or the grader's output;
* read-only: ``/opt/labsupport/submission``, the copy of its own notebook the grader puts there;
* private, size-limited ``tmpfs``: its working directory ``/home/student``, ``/tmp``,
  ``/dev/shm`` and ``/run``, which vanish with the sandbox;
* a fresh ``/proc`` (its own PID namespace: no other process is visible), a minimal ``/dev``, no
  network (its own network namespace: not even the machine's ``127.0.0.1``), its own IPC (SysV
  shared memory dies with it) and UTS namespaces.

When the grader is root, the kernel runs as an unprivileged uid of its own (``uid_base`` plus a
number derived from the grader's process id, so two grading runs on one machine never share one),
with no capabilities. The whole submission — the kernel and every process it forks — is bound
by a memory and a process-count limit through a cgroup (v1 ``memory`` + ``pids`` controllers, or
v2) where the machine lets the grader create one; each process also gets ``RLIMIT_AS``,
``RLIMIT_NPROC``, ``RLIMIT_FSIZE`` and no core dumps. ``bwrap --die-with-parent`` and the PID
namespace make sure nothing the submission started outlives it: killing the sandbox kills all of
it, and nothing ever needs to kill "every process of a uid".

Where bubblewrap cannot run, :func:`bubblewrap_problem` says why and the sandbox refuses to start,
unless it was asked for explicitly with ``Isolation(confined=False)`` (``labsupport grade
--unconfined``): then the kernel runs with the per-process limits only.

Every wait has a deadline: a cell that runs over its time is interrupted; a kernel that ignores
the interrupt, dies, or uses up the submission's total budget is killed and reported with the
reason and a status (:class:`KernelGone`). Nothing here decides a grade.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import zmq
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.connect import write_connection_file

import labsupport
from labsupport.course.cgroups import Cgroup, cgroup_support

#: First uid of the unprivileged users kernels run as when the grader is root. A kernel's uid
#: is ``uid_base + UIDS_PER_PROCESS * (grader pid) + n``, ``n`` free among this process's live
#: sandboxes: unique among the grading processes alive on the machine, so two grading runs never
#: share one. A range with no accounts in it on ordinary systems; configurable per call.
DEFAULT_UID_BASE = 1_900_000_000
UIDS_PER_PROCESS = 16
#: Where bubblewrap is looked for first (Debian's ``bubblewrap`` package), then on ``PATH``.
BWRAP = "/usr/bin/bwrap"
INSTALL_ADVICE = ("install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; "
                  "`make system-deps` does it as root)")

#: Paths inside the sandbox.
INSIDE = Path("/opt/labsupport")
HOME = Path("/home/student")
_PYTHON = INSIDE / "python"
_LIB = INSIDE / "lib"
_KERNEL = INSIDE / "kernel"
_SUBMISSION = INSIDE / "submission"
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf")
_RUN_BYTES = 1024**2

# The statuses a gone kernel can have: the student's faults, then the grader's.
STUDENT_FAULTS = ("kernel-died", "kernel-broken", "hung", "timeout")
GRADER_FAULTS = ("start-failed", "grader-error")


@dataclass(frozen=True)
class Limits:
    """What one submission may use.

    Attributes
    ----------
    cell_seconds
        Wall-clock time of one cell or one call from a test; then the kernel is interrupted.
    submission_seconds
        Wall-clock time of the submission's start-up and cells; the grader then gives each
        question's tests a budget of their own (:meth:`Sandbox.renew`).
    memory_bytes
        Memory of the whole submission (cgroup: the kernel and all it forks, ``tmpfs`` files
        included), and the address-space limit of each of its processes (``RLIMIT_AS``).
    processes
        Processes and threads of the whole submission (cgroup ``pids``), and ``RLIMIT_NPROC``.
    file_bytes
        Largest file the kernel may write (``RLIMIT_FSIZE``).
    scratch_bytes
        Size of each private ``tmpfs``: the working directory, ``/tmp`` and ``/dev/shm``.
    startup_seconds
        How long the kernel may take to start answering.
    interrupt_grace_seconds
        How long an interrupted cell may take to stop before the kernel is killed.
    """

    cell_seconds: float = 60.0
    submission_seconds: float = 300.0
    memory_bytes: int = 3 * 1024**3
    processes: int = 128
    file_bytes: int = 256 * 1024**2
    scratch_bytes: int = 256 * 1024**2
    startup_seconds: float = 60.0
    interrupt_grace_seconds: float = 5.0

    def __post_init__(self) -> None:
        for name in ("cell_seconds", "submission_seconds", "startup_seconds",
                     "interrupt_grace_seconds", "memory_bytes", "processes", "file_bytes",
                     "scratch_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Isolation:
    """How the kernel is confined.

    Attributes
    ----------
    confined
        True (the default): under bubblewrap, or refuse to start. False: no namespaces at all,
        per-process limits only (``labsupport grade --unconfined``), for machines where
        bubblewrap cannot run; the kernel then sees everything the grader's user can read.
    uid_base
        See :data:`DEFAULT_UID_BASE` (used when the grader is root and ``confined``).
    """

    confined: bool = True
    uid_base: int = DEFAULT_UID_BASE


@dataclass(frozen=True)
class CellResult:
    """What happened to one piece of code run in the kernel.

    ``status`` is ``"ok"``, ``"error"`` (it raised; ``message`` says what) or ``"timeout"``
    (it was interrupted after ``cell_seconds``). ``expressions`` holds the kernel's answers to
    the ``user_expressions`` of the request.
    """

    status: str
    message: str = ""
    expressions: dict = field(default_factory=dict)


class KernelGone(RuntimeError):
    """The kernel died, hung, or the submission used up its time; ``str()`` says which.

    ``status`` names whose fault it was: one of :data:`STUDENT_FAULTS` (``kernel-died``,
    ``kernel-broken``, ``hung``, ``timeout``) or :data:`GRADER_FAULTS` (``start-failed``,
    ``grader-error``), which a re-run grades again.
    """

    def __init__(self, reason: str, status: str = "kernel-died") -> None:
        super().__init__(reason)
        self.status = status


class SandboxUnavailable(RuntimeError):
    """Bubblewrap cannot run here, and confinement was required; ``str()`` says how to fix it."""


# --- what the machine offers -----------------------------------------------------------------


def bwrap_path() -> str | None:
    """The bubblewrap executable, or None."""
    if os.access(BWRAP, os.X_OK):
        return BWRAP
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def bubblewrap_problem() -> str | None:
    """Why bubblewrap cannot confine a kernel on this machine, or None when it can.

    Runs ``bwrap`` once (cached per process) with the namespaces a kernel gets.
    """
    path = bwrap_path()
    if path is None:
        return f"bubblewrap (bwrap) is not installed: {INSTALL_ADVICE}"
    probe = [path, *_namespace_args(), "--ro-bind", "/usr", "/usr", *_system_links(),
             "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap could not be run ({error})"
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = detail[-1] if detail else f"exit status {done.returncode}"
        hint = ("" if os.geteuid() == 0 else
                "; not root, so it needs unprivileged user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1 or user.max_user_namespaces > 0)")
        return f"bubblewrap cannot create a sandbox here: {why}{hint}"
    return None


def _namespace_args() -> list[str]:
    if os.geteuid() == 0:
        # As root bwrap needs no user namespace; the kernel drops to its own uid inside.
        return ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--cap-drop", "ALL", "--cap-add", "CAP_SETUID",
                "--cap-add", "CAP_SETGID"]
    return ["--unshare-all", "--cap-drop", "ALL"]


def _system_links() -> list[str]:
    """``/bin``, ``/lib``... as the host has them: symlinks into ``/usr``, or read-only binds."""
    args = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


# --- the kernel's view of the machine ---------------------------------------------------------


def _python_binds(empty: Path) -> tuple[list[str], str]:
    """bwrap arguments showing the grader's Python to the kernel, and its interpreter's path.

    ``empty`` is an empty file shown in place of the files that name the project's folder.
    """
    base = Path(sys.base_prefix).resolve()
    prefix = Path(sys.prefix).resolve()
    args = ["--ro-bind", str(base), str(base)]
    executable = Path(sys.executable)
    if prefix == base:
        return args, str(executable)
    # A virtual environment, often inside the project: shown alone, at a neutral path.
    args += ["--ro-bind", str(prefix), str(_PYTHON)]
    inside = _PYTHON / executable.absolute().relative_to(Path(sys.prefix).absolute())
    project = str(Path(labsupport.__file__).resolve().parent.parent)
    for entry in _naming_the_project(prefix, project):
        args += ["--ro-bind", str(empty), str(_PYTHON / entry.relative_to(prefix))]
    return args, str(inside)


def _naming_the_project(prefix: Path, project: str) -> list[Path]:
    """Files of an editable install that name the project's folder: shown empty."""
    found = []
    for site in Path(prefix, "lib").glob("python*/site-packages"):
        for entry in sorted(site.iterdir()):
            if entry.is_file() and (entry.name.startswith("__editable__") or (
                    entry.suffix == ".pth" and project in entry.read_text(
                        encoding="utf-8", errors="replace"))):
                found.append(entry)
        found += sorted(site.glob("labsupport-*.dist-info/direct_url.json"))
    return found


_DESTINATION_OPTIONS = {"--ro-bind": 2, "--ro-bind-try": 2, "--bind": 2, "--tmpfs": 1}


def _parent_dirs(args: list[str]) -> list[str]:
    """``--dir`` options making the folders above every mount point traversable (bwrap itself
    creates missing ones with mode 0700, which an unprivileged kernel could not pass)."""
    parents: set[str] = set()
    for index, arg in enumerate(args):
        if arg in _DESTINATION_OPTIONS:
            destination = Path(args[index + _DESTINATION_OPTIONS[arg]])
            parents.update(str(p) for p in destination.parents if str(p) not in ("/", "/usr"))
    ordered = sorted(parents, key=lambda p: (p.count("/"), p))
    return [option for p in ordered for option in ("--perms", "0755", "--dir", p)]


def _kernel_environment(home: str, tmp: str, runtime: str, pythonpath: str,
                        executable: str) -> dict[str, str]:
    return {
        "PATH": os.pathsep.join([str(Path(executable).parent), "/usr/local/bin", "/usr/bin",
                                 "/bin"]),
        "HOME": home, "TMPDIR": tmp, "USER": "student", "LOGNAME": "student",
        "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1", "PYTHONPATH": pythonpath, "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1",
        "JUPYTER_RUNTIME_DIR": runtime, "JUPYTER_DATA_DIR": f"{tmp}/jupyter",
        "JUPYTER_CONFIG_DIR": f"{tmp}/jupyter-config", "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": f"{tmp}/ipython", "MPLCONFIGDIR": f"{tmp}/matplotlib",
    }


# Runs inside the sandbox between bwrap and the kernel, with ``python -I -S -c`` (milliseconds,
# standard library only): set the per-process limits, drop to the kernel's uid, exec the kernel.
_WRAPPER = r"""
import json, os, resource, sys
cfg = json.loads(sys.argv[1])
for name, value in cfg["rlimits"]:
    resource.setrlimit(getattr(resource, name), (value, value))
if cfg["uid"] is not None:
    os.setgroups([])
    os.setgid(cfg["uid"])
    os.setuid(cfg["uid"])
os.chdir(cfg["cwd"])
os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])
"""

# Runs first, outside: joins the submission's cgroups (so everything started from here on is
# counted), then becomes bubblewrap. Arguments: the grader's pid, the cgroup.procs files, "--",
# the command. Started by `setpriv --pdeathsig KILL` where the machine has it, so that it dies
# with the grader from its first instruction on (bwrap's own --die-with-parent comes a few
# milliseconds later: a grader killed in between left the kernel running forever); the check
# of the parent catches a grader that died before even that.
_LAUNCHER = ('read -r _ _ _ parent _ < /proc/$$/stat; [ "$parent" = "$1" ] || exit 126; shift; '
             'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"')


@functools.lru_cache(maxsize=1)
def _die_with_grader() -> tuple[str, ...]:
    """The command prefix that makes the launcher die with the grader (util-linux setpriv)."""
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin")
    return (setpriv, "--pdeathsig", "KILL", "--") if setpriv else ()


def _count_tasks_of_current_user() -> int:
    """Processes plus threads of this user (``RLIMIT_NPROC`` counts threads too)."""
    total = 0
    uid = os.getuid()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    total += len(os.listdir(Path(entry.path, "task")))
            except OSError:
                continue
    return total


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                text = Path(entry.path, "stat").read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if int(text.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _wait_gone(pid: int, seconds: float = 5.0) -> None:
    """Wait until process ``pid`` has exited (gone, or a zombie whose children are all gone)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        try:
            text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        if text.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return
        time.sleep(0.005)


#: Run in a kernel before it answers (see ``Sandbox._launch``); leaves no name behind. The output
#: streams' flushes return at once, and the busy/idle status and the echo of each request's code,
#: which ipykernel hands to its output thread on every request, are not sent at all. The kernel's
#: logger stops building the debug records its handler (warnings and up) throws away, four a
#: request.
_NOBODY_LISTENS = ("import sys as _s; _s.stdout.flush = _s.stderr.flush = lambda: None; "
                   "_k = get_ipython().kernel; "
                   "_k._publish_status = _k._publish_execute_input = lambda *_a, **_kw: None; "
                   "_k.log.setLevel(30); del _s, _k")

_LIVE_UIDS: set[int] = set()


def _allocate_uid(base: int) -> int:
    first = base + UIDS_PER_PROCESS * os.getpid()
    for uid in range(first, first + UIDS_PER_PROCESS):
        if uid not in _LIVE_UIDS:
            _LIVE_UIDS.add(uid)
            return uid
    raise OSError(f"more than {UIDS_PER_PROCESS} sandboxes at once in one grading process")


#: A sandbox's folder (in ``tempfile.gettempdir()``) is named ``labsupport-sandbox-<pid>-<random>``,
#: after the grading process that made it, so that :func:`remove_stale_folders` knows its owner.
FOLDER_PREFIX = "labsupport-sandbox-"


def remove_stale_folders(parent: Path | None = None) -> list[Path]:
    """Delete the sandbox folders of grading processes that are gone; return those deleted.

    A sandbox deletes its folder when it is closed, but a process that is killed (SIGKILL, the
    OOM killer, a broken worker pool terminating its workers) closes nothing: its folders, and
    those of the kernels it had started ahead, stay. The process id in a folder's name says whose
    it was; :meth:`Sandbox.start` and :func:`~labsupport.course.grading.grade_batch` call this, so
    a killed grader's folders last until the next grading on the machine. Only directories of
    this user are touched, never through a symbolic link; a live process's folders are kept.

    Parameters
    ----------
    parent
        Where to look (default: ``tempfile.gettempdir()``, where sandboxes are made).
    """
    removed = []
    for entry in Path(parent or tempfile.gettempdir()).glob(FOLDER_PREFIX + "*-*"):
        try:
            pid = int(entry.name[len(FOLDER_PREFIX):].split("-")[0])
            info = entry.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or pid <= 0:
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        except (ValueError, OSError):  # not a number, gone meanwhile, another user's process
            continue
    return removed


class Warmup:
    """Hands out ready kernels, starting the next ones while the current one is in use.

    Kernel start-up is most of a submission's cost; with a warm-up the next students' kernels
    boot (and import ``preload``) while the grader runs the current student's tests. ``ahead``
    kernels are kept booting: one hides a start behind a submission's grading; more let one
    grading process use idle cores to boot several at once (see ``grading.kernels_ahead``).
    """

    def __init__(self, limits: Limits, isolation: Isolation | None = None,
                 preload: Sequence[str] = (), ahead: int = 1) -> None:
        if int(ahead) != ahead or ahead < 1:
            raise ValueError(f"ahead must be a whole number >= 1, got {ahead!r}.")
        self.limits = limits
        self.isolation = isolation or Isolation()
        self.preload = tuple(preload)
        self.ahead = int(ahead)
        self._next: deque[Sandbox] = deque()

    def _new(self) -> Sandbox:
        return Sandbox(self.limits, self.isolation, self.preload)

    @property
    def booting(self) -> int:
        """How many kernels are started ahead and not yet handed out."""
        return len(self._next)

    def take(self) -> Sandbox:
        """A started kernel for the next submission (wait for it with ``with``).

        Once it is ready, the ones after it are started.
        """
        box = self._next.popleft() if self._next else None
        if box is None or box.gone:
            if box is not None:
                box.close()
            box = self._new().start()
        box.on_ready = self.prepare
        return box.claim()

    def prepare(self) -> None:
        """Start kernels until ``ahead`` are booting (called once the current one answers)."""
        while len(self._next) < self.ahead:
            try:
                self._next.append(self._new().start())
            except (OSError, SandboxUnavailable):
                return

    def close(self) -> None:
        """Stop the kernels started ahead, if any."""
        while self._next:
            self._next.popleft().close()


class Sandbox:  # pylint: disable=too-many-instance-attributes
    """One fresh, confined kernel; use as a context manager, one per submission.

    ``Sandbox(...).start()`` launches the kernel and returns at once (so a grader can start the
    next student's kernel while it grades the current one); entering the context waits until it
    answers.

    Parameters
    ----------
    limits
        Time, memory and process limits.
    isolation
        Confined by bubblewrap (the default) or explicitly unconfined; the uid range.
    preload
        Modules to import while the kernel warms up (the exercise's own imports), without
        binding any name in the notebook's namespace.

    Raises
    ------
    SandboxUnavailable
        On start, when confinement is required and bubblewrap cannot run here.
    """

    def __init__(self, limits: Limits, isolation: Isolation | None = None,
                 preload: Sequence[str] = ()) -> None:
        self.limits = limits
        self.isolation = isolation or Isolation()
        self.preload = tuple(preload)
        self._root: Path | None = None
        self._process: subprocess.Popen | None = None
        self._client: BlockingKernelClient | None = None
        self._context: zmq.Context | None = None
        self._cgroup: Cgroup | None = None
        self._deadline = 0.0
        self._gone: str | None = None
        self._status = ""
        self._pending = ""
        self._startup: list[str] = []
        self._kernel_pid: int | None = None
        self._uid: int | None = None
        self._ready = False
        #: The folder shown as the ``labsupport`` package (None: the package itself).
        self._library: Path | None = None
        #: Cells and calls interrupted so far for running past ``cell_seconds``.
        self.timeouts = 0
        self.note = ""
        #: Called once the kernel answers (a :class:`Warmup` starts the next kernel then).
        self.on_ready: Callable[[], None] | None = None

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Launch the kernel (do not wait for it); idempotent."""
        if self._root is not None:
            return self
        if self.isolation.confined and bubblewrap_problem():
            raise SandboxUnavailable(f"{bubblewrap_problem()}. Refusing to grade unconfined; "
                                     "pass --unconfined to grade with per-process limits only.")
        self._deadline = time.monotonic() + self.limits.submission_seconds
        remove_stale_folders()
        self._root = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        try:
            self._launch()
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> Sandbox:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def renew(self, seconds: float) -> None:
        """Give what runs next ``seconds`` from now, whatever was spent before (the grader gives
        each question's tests their own budget, so one hung test cannot starve the others)."""
        self._deadline = time.monotonic() + seconds

    def claim(self) -> Sandbox:
        """Start the submission's time budget now (for a kernel started ahead of its use)."""
        self._deadline = time.monotonic() + self.limits.submission_seconds
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def workdir(self) -> Path:
        """The kernel's working directory as the kernel sees it (empty at the start)."""
        assert self._root is not None, "the sandbox is not started"
        return HOME if self.isolation.confined else self._root / "work"

    @property
    def pid(self) -> int:
        """The kernel's process id, as the grader sees it."""
        assert self._process is not None, "the sandbox is not started"
        if self._kernel_pid is None:
            self._kernel_pid = self._find_kernel_pid()
        return self._kernel_pid

    @property
    def uid(self) -> int | None:
        """The uid the kernel runs as (None: the grader's own)."""
        return self._uid

    @property
    def gone(self) -> str | None:
        """Why the kernel can no longer be used, or None while it can."""
        return self._gone

    @property
    def status(self) -> str:
        """The status of a gone kernel (see :class:`KernelGone`), ``""`` while it is usable."""
        return self._status if self._gone else ""

    def provide(self, name: str, data: bytes) -> str:
        """Put a read-only file (the submission's copy) at ``/opt/labsupport/submission/name``.

        Returns the file's path as the kernel sees it.
        """
        assert self._root is not None, "the sandbox is not started"
        target = self._root / "submission" / Path(name).name
        target.unlink(missing_ok=True)  # read-only once written: an ordinary user cannot rewrite it
        target.write_bytes(data)
        target.chmod(0o444)
        return str(_SUBMISSION / target.name if self.isolation.confined else target)

    def _find_kernel_pid(self) -> int:
        assert self._process is not None
        if not self.isolation.confined:
            return self._process.pid
        # bwrap (outside) -> its init, pid 1 inside -> the kernel, pid 2 inside.
        for _ in range(200):
            for init in _children_of(self._process.pid):
                kids = _children_of(init)
                if kids:
                    return kids[0]
            if self._process.poll() is not None:
                break
            time.sleep(0.005)
        return self._process.pid

    def _launch(self) -> None:
        assert self._root is not None
        root = self._root
        for name in ("work", "kernel", "submission"):
            (root / name).mkdir(mode=0o755)
        self._make_cgroup()
        confined = self.isolation.confined
        if os.geteuid() == 0 and confined:
            self._uid = _allocate_uid(self.isolation.uid_base)
            os.chmod(root / "kernel", 0o777)  # the kernel creates its sockets here
        if confined:
            (root / "empty").touch(mode=0o444)
            binds, executable = _python_binds(root / "empty")
            kernel_dir, cwd, tmp, pythonpath = str(_KERNEL), str(HOME), "/tmp", str(_LIB)
        else:
            binds, executable = [], sys.executable
            kernel_dir, cwd, tmp = str(root / "kernel"), str(root / "work"), str(root / "work")
            pythonpath = str(Path(labsupport.__file__).resolve().parent.parent)
        inside = root / "kernel" / "kernel.json"
        write_connection_file(str(inside), transport="ipc", ip=f"{kernel_dir}/k",
                              key=secrets.token_hex(32).encode())
        inside.chmod(0o644)
        info = json.loads(inside.read_text(encoding="utf-8"))
        info["ip"] = str(root / "kernel" / "k")  # the same sockets, seen from outside
        # The grader keeps only an error's name and message: a one-line, colourless traceback
        # spares the 140 ms IPython spends on the first rich one (and 12 ms on each after it).
        # Nobody listens to this kernel's output (the grader opens only the shell channel), so
        # it need not wait for its output to be sent before each reply: no sleep, and a flush
        # that returns at once (the output thread still sends it, to nobody); nor does it send
        # the status messages that frame every request. A request then costs about 2.5 ms
        # instead of 4-5 ms; a graded notebook makes a dozen or two. The grader reads only
        # the text/plain form of an answer, and a cell's displayed result reaches nobody, so
        # the display formatter makes no other: no HTML table of a DataFrame, no LaTeX.
        argv = [executable, "-m", "ipykernel_launcher", "-f", f"{kernel_dir}/kernel.json",
                "--HistoryManager.enabled=False", "--IPKernelApp.capture_fd_output=False",
                "--InteractiveShell.xmode=Minimal", "--InteractiveShell.colors=NoColor",
                "--DisplayFormatter.active_types=text/plain",
                "--Kernel._execute_sleep=0", f"--IPKernelApp.exec_lines={_NOBODY_LISTENS}"]
        config = {"rlimits": self._rlimits(), "uid": self._uid, "cwd": cwd, "argv": argv,
                  "env": _kernel_environment(cwd, tmp, kernel_dir, pythonpath, executable)}
        self._spawn([executable, "-I", "-S", "-c", _WRAPPER, json.dumps(config)],
                    binds if confined else None)
        self._connect(info)

    def _make_cgroup(self) -> None:
        support = cgroup_support()
        if support.kind == "none":
            self.note = f"{support.note}; per-process limits only"
            return
        try:
            self._cgroup = Cgroup(support, self.limits.memory_bytes, self.limits.processes)
        except OSError as error:
            self.note = f"no cgroup ({error}); per-process limits only"

    def _spawn(self, command: list[str], binds: list[str] | None,
               output: Path | None = None) -> None:
        """Start ``command`` in the submission's cgroup, under bwrap unless ``binds`` is None.

        Its standard output and error go to ``output`` when given (stdout is discarded and
        stderr kept in ``stderr.txt`` otherwise)."""
        assert self._root is not None
        procs = self._cgroup.procs if self._cgroup else []
        read_end = None
        if binds is not None:
            read_end, write_end = os.pipe()
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(b"".join(a.encode() + b"\0" for a in self._bwrap_args(binds)))
            # Options through a pipe: the command line inside shows no host path.
            command = [bwrap_path() or BWRAP, "--args", str(read_end), "--", *command]
        try:
            with open(output or self._root / "stderr.txt", "wb") as stderr:
                self._process = subprocess.Popen(  # pylint: disable=consider-using-with
                    [*_die_with_grader(), "/bin/sh", "-c", _LAUNCHER, "sh", str(os.getpid()),
                     *procs, "--", *command],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL if output is None else stderr, stderr=stderr,
                    start_new_session=True, close_fds=True, env={"PATH": "/usr/bin:/bin"},
                    pass_fds=(read_end,) if read_end is not None else ())
        finally:
            if read_end is not None:
                os.close(read_end)

    def _connect(self, info: dict) -> None:
        """Connect to the kernel's shell socket; queue the start-up requests."""
        self._context = zmq.Context()
        self._context.setsockopt(zmq.RECONNECT_IVL, 5)  # the sockets appear within ms
        self._context.setsockopt(zmq.LINGER, 0)
        client = BlockingKernelClient(context=self._context)
        client.load_connection_info(info)
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self._client = client
        self._startup = [client.kernel_info()]
        if self.preload:
            code = (f"import importlib as _l\nfor _m in {self.preload!r}:\n"
                    "    _l.import_module(_m)\ndel _l, _m")
            self._startup.append(client.execute(code, silent=True, store_history=False))

    def _bwrap_args(self, binds: list[str]) -> list[str]:
        assert self._root is not None
        size = str(self.limits.scratch_bytes)
        args = [*_namespace_args(), "--die-with-parent", "--new-session",
                "--hostname", "sandbox", "--ro-bind", "/usr", "/usr", *_system_links()]
        for name in _ETC_FILES:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        passwd = self._root / "passwd"
        uid = self._uid if self._uid is not None else os.getuid()
        passwd.write_text(f"root:x:0:0::/root:/usr/sbin/nologin\n"
                          f"student:x:{uid}:{uid}::{HOME}:/usr/sbin/nologin\n", encoding="utf-8")
        group = self._root / "group"
        group.write_text(f"root:x:0:\nstudent:x:{uid}:\n", encoding="utf-8")
        args += ["--ro-bind", str(passwd), "/etc/passwd", "--ro-bind", str(group), "/etc/group",
                 "--proc", "/proc", "--dev", "/dev",
                 "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", "/dev/shm",
                 "--size", str(_RUN_BYTES), "--tmpfs", "/run",
                 "--size", size, "--tmpfs", str(HOME), *binds,
                 "--ro-bind", str(self._library or Path(labsupport.__file__).resolve().parent),
                 str(_LIB / "labsupport"),
                 "--bind", str(self._root / "kernel"), str(_KERNEL),
                 "--ro-bind", str(self._root / "submission"), str(_SUBMISSION)]
        if self._uid is not None:
            # The tmpfs belong to root; the kernel's uid (the only user inside) may write.
            for path in (str(HOME), "/tmp", "/dev/shm", "/run"):
                args += ["--chmod", "1777", path]
        return [*_parent_dirs(args), *args, "--remount-ro", "/", "--chdir", "/"]

    def _rlimits(self) -> list[tuple[str, int]]:
        processes = self.limits.processes
        if not self.isolation.confined and os.geteuid() != 0:
            # Unconfined: RLIMIT_NPROC counts all of this user's tasks, so allow what exists.
            processes += _count_tasks_of_current_user()
        return [("RLIMIT_AS", self.limits.memory_bytes), ("RLIMIT_NPROC", processes),
                ("RLIMIT_FSIZE", self.limits.file_bytes), ("RLIMIT_CORE", 0)]

    def wait_ready(self) -> None:
        """Wait until the kernel answers (and has imported ``preload``).

        Raises
        ------
        KernelGone
            With status ``start-failed`` when it does not start in ``startup_seconds``.
        """
        if self._ready:
            return
        assert self._client is not None
        until = time.monotonic() + self.limits.startup_seconds
        for msg_id in self._startup:
            self._pending = msg_id
            try:
                reply = self._wait_reply(msg_id, until, "start")
            except KernelGone as error:
                self._status = "start-failed"
                raise KernelGone(str(error), "start-failed") from None
            if reply is None:
                self._mark_gone(f"the kernel did not start within "
                                f"{self.limits.startup_seconds:g} s", "start-failed")
                raise KernelGone(self._gone or "", "start-failed")
        if self._uid is not None and self._root is not None:
            # From now on the kernel cannot replace its sockets by links elsewhere.
            os.chmod(self._root / "kernel", 0o755)
        self._ready = True
        if self.on_ready is not None:
            self.on_ready()

    def close(self) -> None:
        """Stop the kernel and everything it started, delete its directory."""
        if self._client is not None:
            self._client.stop_channels()
            self._client = None
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None
        if self._process is not None:
            inits = _children_of(self._process.pid) if self.isolation.confined else []
            if self._process.poll() is None:
                try:
                    os.killpg(self._process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    self._process.kill()
            self._process.wait()
            # The PID namespace's init dies with bwrap and takes every process inside with it.
            for init in inits:
                _wait_gone(init)
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None
        if self._uid is not None:
            _LIVE_UIDS.discard(self._uid)
            self._uid = None
        self._process = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
        if not self._gone:
            self._gone, self._status = "the kernel was shut down", ""

    # --- requests ----------------------------------------------------------------------------

    def _mark_gone(self, reason: str, status: str) -> None:
        if not self._gone:
            self._gone, self._status = reason, status
        if self._process is not None and self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self._process.kill()

    def _exit_reason(self) -> tuple[str, str]:
        """Why the kernel's process ended, and whose fault that was (a gone kernel's status)."""
        assert self._process is not None
        code = self._process.wait()
        detail = ""
        if code != 0 and self._root is not None:
            with open(self._root / "stderr.txt", "rb") as stderr:
                stderr.seek(max(0, os.fstat(stderr.fileno()).st_size - 2000))
                lines = stderr.read().decode("utf-8", "replace").strip().splitlines()
            if lines and lines[-1].startswith("bwrap:"):
                detail = f" ({lines[-1][:300]})"
        if code == 125:
            detail += " (the grader could not put it in its cgroup)"
        if self.isolation.confined and code > 128:
            code = -(code - 128)  # bwrap reports a signal as 128 + its number
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        memory = self._cgroup.out_of_memory() if code == -signal.SIGKILL and self._cgroup else ""
        if memory == "limit":
            how += (" (out of memory: the submission's processes together used more than "
                    f"{self.limits.memory_bytes / 1024**2:g} MB)")
        elif memory == "machine":
            return (f"the kernel {how}{detail} by the machine's out-of-memory killer, while the "
                    "submission used less than its memory limit: not the student's fault, run "
                    "the grader again (on a machine with more free memory, or fewer workers)",
                    "grader-error")
        return f"the kernel {how}{detail}", "kernel-died"

    def _wait_reply(self, msg_id: str, until: float, what: str) -> dict | None:
        assert self._client is not None and self._process is not None
        while True:
            left = min(until, self._deadline) - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = self._client.get_shell_msg(timeout=min(left, 0.25))
            except queue.Empty:
                if self._process.poll() is not None:
                    reason, status = self._exit_reason()
                    self._mark_gone(f"{reason} during {what}", status)
                    raise KernelGone(self._gone or "", self._status) from None
                continue
            except Exception as error:  # pylint: disable=broad-exception-caught
                self._mark_gone(f"the kernel sent a malformed message during {what} "
                                f"({type(error).__name__}); was its messaging patched?",
                                "kernel-broken")
                raise KernelGone(self._gone or "", self._status) from None
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg["content"]

    def _request(self, send, timeout: float, what: str) -> dict | None:
        """Send one shell request; wait for its reply until ``timeout`` or the deadline."""
        if self._gone:
            raise KernelGone(self._gone, self._status)
        if not self._ready:
            self.wait_ready()
        msg_id = send()
        self._pending = msg_id
        return self._wait_reply(msg_id, time.monotonic() + timeout, what)

    def _budget_exceeded(self) -> KernelGone:
        self._mark_gone(f"the submission used up its {self.limits.submission_seconds:g} s "
                        "time budget", "timeout")
        return KernelGone(self._gone or "", self._status)

    def run(self, code: str, expressions: dict[str, str] | None = None,
            what: str = "a cell") -> CellResult:
        """Run ``code`` (and evaluate ``expressions`` after it) with the cell time limit.

        Raises
        ------
        KernelGone
            When the kernel is dead, ignores an interrupt, or the submission is out of time.
        """
        if not self._ready:
            self.wait_ready()
        assert self._client is not None
        client = self._client

        def send() -> str:
            return client.execute(code, silent=False, store_history=False,
                                  user_expressions=expressions or {}, allow_stdin=False,
                                  stop_on_error=False)

        content = self._request(send, self.limits.cell_seconds, what)
        if content is None:
            if time.monotonic() >= self._deadline:
                raise self._budget_exceeded()
            try:
                os.kill(self.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            until = time.monotonic() + self.limits.interrupt_grace_seconds
            while time.monotonic() < until:
                try:
                    msg = client.get_shell_msg(timeout=0.25)
                except Exception:  # pylint: disable=broad-exception-caught
                    if self._process is not None and self._process.poll() is not None:
                        break
                    continue
                if msg.get("parent_header", {}).get("msg_id") == self._pending:
                    self.timeouts += 1
                    return CellResult("timeout", f"{what} ran for more than "
                                      f"{self.limits.cell_seconds:g} s and was interrupted")
            self._mark_gone(f"{what} ran for more than {self.limits.cell_seconds:g} s and the "
                            "kernel did not stop when interrupted", "hung")
            raise KernelGone(self._gone or "", self._status)
        if content.get("status") == "ok":
            return CellResult("ok", "", content.get("user_expressions") or {})
        name = str(content.get("ename", "Error"))[:200]
        value = str(content.get("evalue", ""))[:2000]
        return CellResult("error", f"{name}: {value}" if value else name)
