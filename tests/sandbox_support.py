"""Tests that start real sandboxed kernels need bubblewrap: skip loudly without it, fail on CI."""

from __future__ import annotations

import os

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
