"""Tests that start real sandboxed kernels need bubblewrap: skip loudly without it, fail on CI."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from labsupport.course import sandbox


def require_bubblewrap() -> None:
    """Skip the calling test when bubblewrap cannot run here (fail instead under ``CI=true``)."""
    problem = sandbox.bubblewrap_problem()
    if problem is None:
        return
    message = ("\n" + "#" * 90 + f"\n##  GRADING SANDBOX TESTS SKIPPED: {problem}.\n"
               "##  Install it with `make system-deps` (as root), or: "
               "sudo apt-get install bubblewrap\n" + "#" * 90)
    if os.environ.get("CI") == "true":
        pytest.fail(message + "\n(CI=true: a missing sandbox is a failure, not a skip.)",
                    pytrace=False)
    pytest.skip(message)


@contextlib.contextmanager
def fresh_temp_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make temporary files in a fresh, empty folder: this process, the grading workers it
    forks (``tempfile.tempdir``) and the processes it starts (``TMPDIR``). Yields the folder.

    It is made next to the usual one, not under pytest's ``tmp_path``: a kernel's sockets are
    in its sandbox's folder, and a Unix socket's path must fit in 107 bytes.
    """
    folder = Path(tempfile.mkdtemp(prefix="lt-"))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def loopback_listener(banner: bytes) -> Iterator[int]:
    """A real TCP listener on 127.0.0.1 that greets every connection with ``banner``.

    Yields its port; a sandboxed kernel must never reach it.
    """
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                connection.sendall(banner)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def sysv_segment_exists(key: int) -> bool:
    """True when the machine has a SysV shared-memory segment with ``key``."""
    rows = Path("/proc/sysvipc/shm").read_text(encoding="utf-8").splitlines()[1:]
    return any(int(row.split()[0]) == key for row in rows if row.split())
