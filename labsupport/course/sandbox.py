"""A throw-away, confined Jupyter kernel for one student submission.

:class:`Sandbox` starts a fresh ``ipykernel`` in its own temporary directory and talks to it over
the Jupyter messaging protocol (``jupyter_client``). Before the kernel's interpreter starts, a
tiny launcher (run with the grader's own Python, isolated mode, no site packages) applies the
limits and then ``exec``-s the kernel:

* ``RLIMIT_AS`` (memory), ``RLIMIT_NPROC`` (processes and threads), ``RLIMIT_FSIZE`` (file size)
  and no core dumps;
* when the grader runs as root (CI containers, most grading machines), where ``RLIMIT_NPROC`` is
  not enforced, the kernel is switched to an unprivileged uid of its own (one per worker slot,
  ``uid_base + slot``), so the process limit holds, the kernel cannot signal or trace another
  student's kernel, and when the submission is done every process of that uid is killed;
* also as root, when the kernel is allowed a private mount namespace: its working directory is a
  small private ``tmpfs``; the grader's output directory, the submissions and the solution
  notebooks are covered by empty mounts; and directories the unprivileged uid could not pass
  through to reach the Python installation (``/root`` when Python lives in ``/root/.pyenv``) are
  replaced by a view holding only the needed entries.

Every wait has a deadline: a cell that runs over its time is interrupted; a kernel that ignores
the interrupt, dies, or uses up the submission's total budget is killed and reported with the
reason (:class:`KernelGone`). Nothing here decides a grade.
"""

from __future__ import annotations

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
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.connect import write_connection_file

import labsupport

#: First uid of the unprivileged users kernels run as when the grader is root (``+ slot``).
#: A range with no accounts in it on ordinary systems; configurable per call.
DEFAULT_UID_BASE = 1_900_000_000
_CLONE_NEWNS = 0x00020000
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Limits:
    """What one submission's kernel may use.

    Attributes
    ----------
    cell_seconds
        Wall-clock time of one cell or one call from a test; then the kernel is interrupted.
    submission_seconds
        Total wall-clock time of the whole submission (start-up, cells and tests).
    memory_bytes
        Address-space limit of the kernel (``RLIMIT_AS``); allocation beyond it fails.
    processes
        Processes and threads the kernel's user may have (``RLIMIT_NPROC``).
    file_bytes
        Largest file the kernel may write (``RLIMIT_FSIZE``).
    scratch_bytes
        Size of the private working directory when it is a ``tmpfs`` (root with namespaces).
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
    """Who the kernel runs as and what it must not see.

    Attributes
    ----------
    slot
        The worker slot; the kernel's uid is ``uid_base + slot`` when the grader is root.
    uid_base
        See :data:`DEFAULT_UID_BASE`.
    hidden
        Files and directories to cover with empty mounts inside the kernel's namespace (the
        grader's output directory, the submissions, the solution notebooks).
    """

    slot: int = 0
    uid_base: int = DEFAULT_UID_BASE
    hidden: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def uid(self) -> int | None:
        """The kernel's uid, or None when the grader is not root (no switch possible)."""
        return self.uid_base + self.slot if os.geteuid() == 0 else None


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
    """The kernel died, hung, or the submission used up its time; ``str()`` says which."""


# The launcher runs as root (or the grader's user) between fork and the kernel's exec. It is
# source text run with ``python -I -S -c`` so that it starts in milliseconds and imports nothing
# but the standard library. Its only argument is a JSON object built by Sandbox._launch_config.
_LAUNCHER = r"""
import ctypes, json, os, resource, sys
cfg = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18

def mount(source, target, fstype, flags, data):
    args = [None if a is None else a.encode() for a in (source, target, fstype)]
    if libc.mount(args[0], args[1], args[2], flags, None if data is None else data.encode()):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)

if cfg["namespace"]:
    if libc.unshare(cfg["clone_newns"]) != 0:
        if cfg["reveal"]:
            sys.exit("labsupport sandbox: cannot make a mount namespace to reach Python "
                     "as the unprivileged user: " + os.strerror(ctypes.get_errno()))
    else:
        mount(None, "/", None, MS_REC | MS_PRIVATE, None)
        for parent, children in cfg["reveal"]:
            fd = os.open(parent, os.O_PATH | os.O_DIRECTORY)
            mount("tmpfs", parent, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
            for child in children:
                source = "/proc/self/fd/%d/%s" % (fd, child)
                target = os.path.join(parent, child)
                if os.path.isdir(source):
                    os.mkdir(target)
                else:
                    open(target, "w").close()
                mount(source, target, None, MS_BIND | MS_REC, None)
            os.close(fd)
        for path in cfg["hide"]:
            if os.path.isdir(path):
                mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0555,size=4k")
            elif os.path.exists(path):
                mount("/dev/null", path, None, MS_BIND, None)
        if os.path.isdir("/dev/shm"):
            mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
        mount("tmpfs", cfg["cwd"], "tmpfs", MS_NOSUID | MS_NODEV, cfg["scratch"])
for name, value in cfg["rlimits"]:
    resource.setrlimit(getattr(resource, name), (value, value))
if cfg["uid"] is not None:
    os.setgroups([])
    os.setgid(cfg["uid"])
    os.setuid(cfg["uid"])
os.chdir(cfg["cwd"])
os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])
"""



def _needed_paths() -> list[Path]:
    """Paths the kernel's interpreter must reach: Python, its libraries, labsupport."""
    paths = {Path(sys.executable), Path(sys.executable).resolve(), Path(sys.prefix),
             Path(sys.base_prefix), Path(labsupport.__file__).resolve().parent.parent}
    paths.update(Path(entry).resolve() for entry in sys.path if entry and Path(entry).exists())
    return sorted(paths)


def blocked_ancestors(paths: list[Path]) -> list[tuple[str, list[str]]]:
    """Directories on the way to ``paths`` that other users cannot pass through.

    Returns ``(directory, [entries to keep visible])`` pairs, shallowest first: inside its mount
    namespace the launcher replaces each such directory by a view holding only those entries.
    """
    blocked: dict[str, set[str]] = {}
    for path in paths:
        parts = Path(os.path.abspath(path)).parts
        for depth in range(1, len(parts)):
            directory = Path(*parts[:depth])
            if not os.stat(directory).st_mode & stat.S_IXOTH:
                blocked.setdefault(str(directory), set()).add(parts[depth])
    return [(d, sorted(blocked[d])) for d in sorted(blocked, key=lambda d: (d.count("/"), d))]


def _processes_of(uid: int) -> list[tuple[int, int, str]]:
    """``(pid, parent pid, state)`` of every process whose real uid is ``uid``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "status").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            found.append((int(entry.name), int(fields.get("PPid", "0")),
                          fields.get("State", "?")[:1]))
    return found


def _become_subreaper() -> None:
    """Make orphaned kernel descendants our children, so their zombies are reaped here."""
    try:
        import ctypes  # pylint: disable=import-outside-toplevel
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _kill_as(uid: int) -> None:
    """Fork a child that becomes ``uid`` and sends SIGKILL to -1: every process of that uid.

    ``kill(-1)`` reaches exactly the processes the caller may signal, i.e. its own uid's. The
    child makes only system calls before ``_exit``; it cannot exec Python, which the uid may not
    reach outside the kernel's namespace.
    """
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 0
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except BaseException:  # pylint: disable=broad-exception-caught
            code = 1
        os._exit(code)  # pylint: disable=protected-access
    os.waitpid(child, 0)


def kill_all_processes_of(uid: int, attempts: int = 50) -> bool:
    """Kill every process of ``uid`` (root only); True once none is left but reaped zombies."""
    for _ in range(attempts):
        alive = [(pid, ppid) for pid, ppid, state in _processes_of(uid) if state != "Z"]
        for pid, ppid, state in _processes_of(uid):
            if state == "Z" and ppid == os.getpid():
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        if not alive:
            return True
        _kill_as(uid)
        time.sleep(0.02)
    return False


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


class Sandbox:
    """One fresh, confined kernel; use as a context manager, one per submission.

    Parameters
    ----------
    limits
        Time, memory and process limits.
    isolation
        Worker slot, uid range, and paths to hide from the kernel.
    """

    def __init__(self, limits: Limits, isolation: Isolation | None = None) -> None:
        self.limits = limits
        self.isolation = isolation or Isolation()
        self._root: Path | None = None
        self._process: subprocess.Popen | None = None
        self._client: BlockingKernelClient | None = None
        self._deadline = 0.0
        self._gone: str | None = None
        self._pending = ""

    # --- life cycle --------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        self._deadline = time.monotonic() + self.limits.submission_seconds
        uid = self.isolation.uid
        if uid is not None:
            _become_subreaper()
            kill_all_processes_of(uid)
        self._root = Path(tempfile.mkdtemp(prefix="labsupport-sandbox-"))
        try:
            self._start(uid)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def workdir(self) -> Path:
        """The kernel's working directory (empty at the start)."""
        assert self._root is not None, "the sandbox is not started"
        return self._root / "work"

    @property
    def pid(self) -> int:
        """The kernel's process id."""
        assert self._process is not None, "the sandbox is not started"
        return self._process.pid

    @property
    def gone(self) -> str | None:
        """Why the kernel can no longer be used, or None while it can."""
        return self._gone

    def _environment(self, runtime: Path) -> dict[str, str]:
        work = str(self.workdir)
        return {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin",
                                     "/usr/bin", "/bin"]),
            "HOME": work, "TMPDIR": work, "USER": "student", "LOGNAME": "student",
            "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1",
            "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTER_DATA_DIR": str(runtime / "data"),
            "JUPYTER_CONFIG_DIR": str(runtime / "config"), "JUPYTER_PLATFORM_DIRS": "1",
            "IPYTHONDIR": str(runtime / "ipython"), "MPLCONFIGDIR": str(runtime / "matplotlib"),
        }

    def _rlimits(self, uid: int | None) -> list[tuple[str, int]]:
        processes = self.limits.processes
        if uid is None:
            # Not root: RLIMIT_NPROC counts all of this user's tasks, so allow what exists.
            processes += _count_tasks_of_current_user()
        return [("RLIMIT_AS", self.limits.memory_bytes), ("RLIMIT_NPROC", processes),
                ("RLIMIT_FSIZE", self.limits.file_bytes), ("RLIMIT_CORE", 0)]

    def _hideable(self) -> list[str]:
        """The hidden paths that do not contain anything the kernel needs."""
        assert self._root is not None
        needed = [*_needed_paths(), self._root]
        return [str(path) for path in self.isolation.hidden
                if not any(n == path or path in n.parents for n in needed)]

    def _reveal(self) -> list[tuple[str, list[str]]]:
        """Directories to replace by a view of only what the kernel needs: blocked ancestors of
        Python, and the shared temporary directory (the kernel sees its own folder only)."""
        assert self._root is not None
        needed = _needed_paths()
        reveal = blocked_ancestors(needed)
        # The shared temporary directory is always replaced, even when Python or the lab itself
        # lives below it (a clone in /tmp): the view keeps the kernel's own folder and just the
        # entries on the way to what it needs, and the kernel cannot write anything into it.
        temp = self._root.parent
        keep = {self._root.name}
        keep.update(n.relative_to(temp).parts[0] for n in needed if temp in n.parents)
        reveal = [item for item in reveal if item[0] != str(temp)]
        reveal.append((str(temp), sorted(keep)))
        return sorted(reveal, key=lambda item: (item[0].count("/"), item[0]))

    def _start(self, uid: int | None) -> None:
        assert self._root is not None
        runtime = self._root / "runtime"
        for directory in (self.workdir, runtime):
            directory.mkdir(mode=0o700)
        connection = runtime / "kernel.json"
        write_connection_file(str(connection), transport="ipc", ip=str(runtime / "kernel"),
                              key=secrets.token_hex(32).encode())
        if uid is not None:
            os.chmod(self._root, 0o711)
            for path in (self.workdir, runtime, connection):
                os.chown(path, uid, uid)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection),
                "--HistoryManager.enabled=False", "--IPKernelApp.capture_fd_output=False"]
        config = {
            "namespace": uid is not None, "clone_newns": _CLONE_NEWNS,
            "reveal": self._reveal() if uid is not None else [],
            "hide": [*self._hideable(), "/var/tmp"],
            "scratch": f"mode=0700,uid={uid},gid={uid},size={self.limits.scratch_bytes}",
            "rlimits": self._rlimits(uid), "uid": uid, "cwd": str(self.workdir),
            "argv": argv, "env": self._environment(runtime),
        }
        with open(self._root / "stderr.txt", "wb") as stderr:
            self._process = subprocess.Popen(  # pylint: disable=consider-using-with
                [sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                start_new_session=True, close_fds=True)
        client = BlockingKernelClient()
        client.load_connection_file(str(connection))
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self._client = client
        reply = self._request(client.kernel_info, self.limits.startup_seconds, "start")
        if reply is None:
            raise KernelGone(self._gone or "the kernel did not start")

    def close(self) -> None:
        """Stop the kernel, kill whatever it left running, delete its directory."""
        if self._client is not None:
            self._client.stop_channels()
            self._client = None
        if self._process is not None:
            if self._process.poll() is None:
                try:
                    os.killpg(self._process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    self._process.kill()
            self._process.wait()
        uid = self.isolation.uid
        if uid is not None and self._process is not None:
            kill_all_processes_of(uid)
        self._process = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
        self._gone = self._gone or "the kernel was shut down"

    # --- requests ----------------------------------------------------------------------------

    def _mark_gone(self, reason: str) -> None:
        self._gone = self._gone or reason
        if self._process is not None and self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self._process.kill()

    def _exit_reason(self) -> str:
        assert self._process is not None
        code = self._process.wait()
        detail = ""
        if code != 0 and self._root is not None:
            with open(self._root / "stderr.txt", "rb") as stderr:
                stderr.seek(max(0, os.fstat(stderr.fileno()).st_size - 2000))
                lines = stderr.read().decode("utf-8", "replace").strip().splitlines()
            detail = f" ({lines[-1][:300]})" if lines and "labsupport sandbox" in lines[-1] else ""
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return f"the kernel {how}{detail}"

    def _request(self, send, timeout: float, what: str) -> dict | None:
        """Send one shell request; wait for its reply until ``timeout`` or the deadline."""
        assert self._client is not None and self._process is not None
        if self._gone:
            raise KernelGone(self._gone)
        msg_id = send()
        self._pending = msg_id
        until = min(time.monotonic() + timeout, self._deadline)
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = self._client.get_shell_msg(timeout=min(left, 0.25))
            except queue.Empty:
                if self._process.poll() is not None:
                    self._mark_gone(f"{self._exit_reason()} during {what}")
                    raise KernelGone(self._gone) from None
                continue
            except Exception as error:  # pylint: disable=broad-exception-caught
                self._mark_gone(f"the kernel sent a malformed message during {what} "
                                f"({type(error).__name__}); was its messaging patched?")
                raise KernelGone(self._gone) from None
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg["content"]

    def _budget_exceeded(self) -> KernelGone:
        self._mark_gone(f"the submission used up its {self.limits.submission_seconds:g} s "
                        "time budget")
        return KernelGone(self._gone)

    def run(self, code: str, expressions: dict[str, str] | None = None,
            what: str = "a cell") -> CellResult:
        """Run ``code`` (and evaluate ``expressions`` after it) with the cell time limit.

        Raises
        ------
        KernelGone
            When the kernel is dead, ignores an interrupt, or the submission is out of time.
        """
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
            os.kill(self.pid, signal.SIGINT)
            until = time.monotonic() + self.limits.interrupt_grace_seconds
            while time.monotonic() < until:
                try:
                    msg = client.get_shell_msg(timeout=0.25)
                except Exception:  # pylint: disable=broad-exception-caught
                    if self._process is not None and self._process.poll() is not None:
                        break
                    continue
                if msg.get("parent_header", {}).get("msg_id") == self._pending:
                    return CellResult("timeout", f"{what} ran for more than "
                                      f"{self.limits.cell_seconds:g} s and was interrupted")
            self._mark_gone(f"{what} ran for more than {self.limits.cell_seconds:g} s and the "
                            "kernel did not stop when interrupted")
            raise KernelGone(self._gone)
        if content.get("status") == "ok":
            return CellResult("ok", "", content.get("user_expressions") or {})
        name = str(content.get("ename", "Error"))[:200]
        value = str(content.get("evalue", ""))[:2000]
        return CellResult("error", f"{name}: {value}" if value else name)
