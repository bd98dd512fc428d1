"""Cgroups: one bound on the memory and the processes of a whole submission (the grading sandbox).

:func:`cgroup_support` finds where this process may create cgroups (v1 ``memory`` and ``pids``
controllers, or v2 with both delegated). A :class:`Cgroup` is made per submission with its
limits; :mod:`labsupport.course.sandbox` starts the kernel inside it, reads after a kill whether
an out-of-memory killer acted and whose memory ran out, and removes it with whatever is left.
"""

from __future__ import annotations

import functools
import itertools
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path for a v1 ``controller`` (``""`` for v2), or None."""
    try:
        lines = Path("/proc/self/cgroup").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


@dataclass(frozen=True)
class CgroupSupport:
    """Where a submission's cgroup can be made: ``kind`` is ``v1``, ``v2`` or ``none``."""

    kind: str
    parents: tuple[Path, ...]
    note: str


@functools.lru_cache(maxsize=1)
def cgroup_support() -> CgroupSupport:
    """Find a place to create per-submission cgroups with memory and pids limits."""
    root = Path("/sys/fs/cgroup")
    memory, pids = _own_cgroup("memory"), _own_cgroup("pids")
    if (root / "memory" / "memory.limit_in_bytes").exists() and (root / "pids").is_dir() \
            and memory is not None and pids is not None:
        parents = (root / "memory" / memory.lstrip("/"), root / "pids" / pids.lstrip("/"))
        if all(os.access(p, os.W_OK) for p in parents):
            return CgroupSupport("v1", parents, "cgroup v1 memory and pids controllers")
        return CgroupSupport("none", (), "cgroup v1 is not writable by this user")
    unified = _own_cgroup("")
    v2_root = root if (root / "cgroup.controllers").exists() else root / "unified"
    if unified is not None and (v2_root / "cgroup.controllers").exists():
        parent = v2_root / unified.lstrip("/")
        try:
            enabled = (parent / "cgroup.subtree_control").read_text(encoding="utf-8").split()
        except OSError:
            enabled = []
        if {"memory", "pids"} <= set(enabled) and os.access(parent, os.W_OK):
            return CgroupSupport("v2", (parent,), "cgroup v2 memory and pids controllers")
        return CgroupSupport("none", (), "cgroup v2 here does not delegate the memory and "
                             f"pids controllers to {parent} (or it is not writable)")
    return CgroupSupport("none", (), "no cgroup memory and pids controllers found")


_SERIAL = itertools.count()


class Cgroup:
    """The cgroup(s) of one submission: created, joined by the launcher, killed, removed."""

    def __init__(self, support: CgroupSupport, memory_bytes: int, processes: int) -> None:
        self.kind = support.kind
        name = f"labsupport-{os.getpid()}-{next(_SERIAL)}-{secrets.token_hex(3)}"
        self.paths = tuple(parent / name for parent in support.parents)
        for parent in support.parents:
            remove_stale(parent)
        try:
            for path in self.paths:
                path.mkdir()
            if self.kind == "v1":
                memory, pids = self.paths
                _write(memory / "memory.limit_in_bytes", memory_bytes)
                if (memory / "memory.memsw.limit_in_bytes").exists():
                    _write(memory / "memory.memsw.limit_in_bytes", memory_bytes)
                _write(memory / "memory.swappiness", 0)
                _write(pids / "pids.max", processes)
            else:
                (path,) = self.paths
                _write(path / "memory.max", memory_bytes)
                if (path / "memory.swap.max").exists():
                    _write(path / "memory.swap.max", 0)
                _write(path / "pids.max", processes)
        except OSError:
            self.remove()
            raise

    @property
    def procs(self) -> list[str]:
        """The ``cgroup.procs`` files the launcher writes its pid into."""
        return [str(path / "cgroup.procs") for path in self.paths]

    def out_of_memory(self) -> str:
        """Whose memory ran out when an OOM killer acted inside this cgroup.

        ``"limit"``: the submission reached its own memory limit. ``"machine"``: a process of
        the submission was killed by the machine's OOM killer while the submission stayed under
        its limit (the kernel counts every OOM kill of a process in the cgroup; whether the
        limit was reached is its peak usage in v1, its ``max`` and ``oom`` events in v2).
        ``""``: no OOM kill here (or the kernel does not say).
        """
        def counts(name: str) -> dict[str, str]:
            try:
                text = (self.paths[0] / name).read_text(encoding="utf-8")
            except OSError:
                return {}
            return dict(line.split()[:2] for line in text.splitlines() if len(line.split()) >= 2)

        if self.kind == "v1":
            killed = counts("memory.oom_control").get("oom_kill", "0") != "0"
            try:  # v1 keeps the peak (failcnt stays 0 on some kernels even at the limit)
                peak, limit = (int((self.paths[0] / name).read_text(encoding="utf-8"))
                               for name in ("memory.max_usage_in_bytes", "memory.limit_in_bytes"))
            except (OSError, ValueError):
                peak = limit = 0  # cannot tell: the limit is the likelier cause
            at_limit = peak + 2**20 >= limit
        else:
            events = counts("memory.events")
            killed = events.get("oom_kill", "0") != "0"
            at_limit = events.get("oom", "0") != "0" or events.get("max", "0") != "0"
        if not killed:
            return ""
        return "limit" if at_limit else "machine"

    def remove(self) -> None:
        """Kill whatever is left inside, then remove the directories."""
        for path in self.paths:
            _empty_and_remove(path)


def _empty_and_remove(path: Path, attempts: int = 200) -> None:
    """SIGKILL every process in cgroup ``path`` until it is empty, then remove it."""
    for _ in range(attempts):
        try:
            pids = (path / "cgroup.procs").read_text(encoding="utf-8").split()
        except OSError:
            return
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            path.rmdir()
            return
        except OSError:
            time.sleep(0.005)


def _write(path: Path, value: int) -> None:
    path.write_text(f"{value}\n", encoding="ascii")


def remove_stale(parent: Path) -> None:
    """Remove the cgroups a dead grader left behind (its pid is in the name), killing what is
    still inside: a grader killed within milliseconds of starting a sandbox, before bubblewrap's
    child had tied itself to its parent, left that kernel running with nobody to stop it."""
    for entry in parent.glob("labsupport-*-*-*"):
        try:
            pid = int(entry.name.split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            _empty_and_remove(entry, attempts=40)
        except (ValueError, PermissionError):
            continue
