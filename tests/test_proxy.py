"""The grader's view of a submission: replies from the kernel are checked, never trusted."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from labsupport.course import plaindata, proxy
from labsupport.course.sandbox import CellResult


def scripted_kernel(reply: object) -> SimpleNamespace:
    """Stands in for a Sandbox: accepts the grader's set-up, then answers with ``reply``."""

    def run(code: str, expressions: dict | None = None, what: str = "") -> CellResult:
        del code, what
        if not expressions:
            return CellResult("ok")
        text = repr(json.dumps(reply))
        return CellResult("ok", expressions={"reply": {"status": "ok",
                                                       "data": {"text/plain": text}}})

    return SimpleNamespace(run=run)


def test_a_plain_reply_becomes_the_value():
    kernel = scripted_kernel({"ok": plaindata.encode([1, 2.5, "x"])})
    assert proxy.KernelNamespace(kernel).answer == [1, 2.5, "x"]


@pytest.mark.parametrize("forged", [{"t": "ndarray"}, ["x"], {"t": "no-such-tag"}])
def test_a_malformed_reply_is_the_submissions_fault_not_a_value_error(forged):
    # A test written as `with pytest.raises(ValueError): ns.f(bad)` must not be passed by a
    # kernel that forges a malformed reply.
    namespace = proxy.KernelNamespace(scripted_kernel({"ok": forged}))
    with pytest.raises(proxy.SubmissionError, match="malformed"):
        _ = namespace.answer
