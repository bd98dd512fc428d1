"""The grader's view of a submission: replies from the kernel are checked, never trusted."""

from __future__ import annotations

import json
import tracemalloc
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


def raw_kernel(text: str) -> SimpleNamespace:
    """A Sandbox stand-in whose reply is the exact ``text/plain`` given (built beforehand)."""

    def run(code: str, expressions: dict | None = None, what: str = "") -> CellResult:
        del code, what
        if not expressions:
            return CellResult("ok")
        return CellResult("ok", expressions={"reply": {"status": "ok",
                                                       "data": {"text/plain": text}}})

    return SimpleNamespace(run=run)


def _peak_bytes_of_asking(text: str) -> tuple[int, str]:
    """Peak memory the grader allocates while refusing ``text`` as a reply, and the error."""
    namespace = proxy.KernelNamespace(raw_kernel(text))
    tracemalloc.start()
    try:
        with pytest.raises(proxy.SubmissionError) as refused:
            _ = namespace.answer
        return tracemalloc.get_traced_memory()[1], str(refused.value)
    finally:
        tracemalloc.stop()


def _tiny_values(count: int) -> str:
    node = '{"t":"int","v":"1"}'
    return repr('{"ok":{"t":"list","v":[' + ",".join([node] * count) + "]}}")


def test_a_reply_of_millions_of_tiny_values_is_refused_in_bounded_memory():
    # The reply: 46 MB of tiny values cost the grader about 1 GB when parsed (20x).
    text = _tiny_values(plaindata.MAX_VALUES // 4)
    assert len(text) < proxy.MAX_REPLY_CHARS
    peak, message = _peak_bytes_of_asking(text)
    assert "too large" in message and "values" in message
    assert peak < 5 * len(text)  # decoded from its repr, never parsed into ~20x as nodes


def test_a_reply_longer_than_the_cap_is_refused_before_it_is_decoded():
    text = "'" + "1" * (proxy.MAX_REPLY_CHARS + 1) + "'"
    peak, message = _peak_bytes_of_asking(text)
    assert "too large" in message and peak < len(text) // 100


def test_a_large_honest_reply_is_read():
    value = "x" * 8_000_000
    kernel = scripted_kernel({"ok": plaindata.encode(value)})
    assert proxy.KernelNamespace(kernel).answer == value


def test_an_error_message_with_a_lone_surrogate_is_the_submissions_fault():
    namespace = proxy.KernelNamespace(scripted_kernel({"error": "raised",
                                                       "message": "RuntimeError: \ud800"}))
    with pytest.raises(proxy.SubmissionError, match="raised RuntimeError: \ud800"):
        _ = namespace.answer
