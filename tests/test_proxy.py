"""The grader's view of a submission: replies from the kernel are checked, never trusted."""

from __future__ import annotations

import ast
import json
import tracemalloc
from types import SimpleNamespace

import pytest

from labsupport.course import plaindata, proxy, runner
from labsupport.course.sandbox import CellResult


def _token(expressions: dict) -> str:
    """The one-time token of the grader's question: the last argument of its expression."""
    return ast.literal_eval(expressions["reply"].rsplit(", ", 1)[1].removesuffix(")"))


def scripted_kernel(reply: dict, token: str | None = None) -> SimpleNamespace:
    """Stands in for a Sandbox: accepts the grader's set-up, then answers with ``reply`` and
    the question's token (or the ``token`` given)."""

    def run(code: str, expressions: dict | None = None, what: str = "") -> CellResult:
        del code, what
        if not expressions:
            return CellResult("ok")
        text = repr(json.dumps({**reply, "for": _token(expressions) if token is None else token}))
        return CellResult("ok", expressions={"reply": {"status": "ok",
                                                       "data": {"text/plain": text}}})

    return SimpleNamespace(run=run, provide=lambda name, data: f"/nowhere/{name}")


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


@pytest.mark.parametrize("token", ["", "0123456789abcdef"])
def test_a_reply_without_the_questions_token_is_no_answer(token):
    # A notebook whose patched json.dumps answers every question with the same made-up reply.
    namespace = proxy.KernelNamespace(scripted_kernel({"ok": plaindata.encode(9)}, token))
    with pytest.raises(proxy.SubmissionError, match="does not answer the grader's question"):
        _ = namespace.answer


def raw_kernel(text: str) -> SimpleNamespace:
    """A Sandbox stand-in whose reply is the exact ``text/plain`` given (built beforehand)."""

    def run(code: str, expressions: dict | None = None, what: str = "") -> CellResult:
        del code, what
        if not expressions:
            return CellResult("ok")
        return CellResult("ok", expressions={"reply": {"status": "ok",
                                                       "data": {"text/plain": text}}})

    return SimpleNamespace(run=run, provide=lambda name, data: f"/nowhere/{name}")


def _peak_bytes_of_asking(text: str) -> tuple[int, str]:
    """Peak memory the grader allocates while refusing ``text`` as a reply, and the error."""
    namespace = proxy.KernelNamespace(raw_kernel(text))
    proxy._agent_code()  # pylint: disable=protected-access  # compiled once per grader, not here
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


class InProcessKernel:
    """A Sandbox stand-in that runs what the grader sends, for real, in a namespace of its own:
    the agent's install from the provided file, then each question; it counts the requests."""

    def __init__(self, folder, namespace: dict) -> None:
        self.folder, self.namespace, self.requests, self.codes = folder, namespace, 0, []

    def provide(self, name: str, data: bytes) -> str:
        """Write the file where this fake kernel reads it."""
        path = self.folder / name
        path.write_bytes(data)
        return str(path)

    def run(self, code: str, expressions: dict | None = None, what: str = "") -> CellResult:
        """Run ``code``, then evaluate ``expressions`` and answer their reprs, as IPython does."""
        del what
        self.requests += 1
        self.codes.append(code)
        exec(code, self.namespace)  # pylint: disable=exec-used
        replies = {key: {"status": "ok", "data": {"text/plain": repr(eval(  # pylint: disable=eval-used
            expression, self.namespace))}} for key, expression in (expressions or {}).items()}
        return CellResult("ok", expressions=replies)


def _counter_notebook() -> dict:
    source = (
        "ANSWER = [1, 2]\n"
        "def bump(by):\n"
        "    global ANSWER\n"
        "    ANSWER = ANSWER + [by]\n"
        "    return len(ANSWER)\n"
        "def model(x):\n"
        "    return x\n"
        "def fit():\n"
        "    global model\n"
        "    model = [1.0, 2.0]\n"
        "    return True\n")
    namespace: dict = {}
    exec(source, namespace)  # pylint: disable=exec-used
    return namespace


def test_the_agent_is_installed_with_the_first_question_only(tmp_path):
    kernel = InProcessKernel(tmp_path, _counter_notebook())
    namespace = proxy.KernelNamespace(kernel)
    assert namespace.ANSWER == [1, 2]
    assert namespace.bump(3) == 3
    assert kernel.requests == 3  # the answer, the lookup of bump, the call
    assert [bool(code) for code in kernel.codes] == [True, False, False]
    assert (tmp_path / proxy.AGENT_FILE).exists()


def test_every_read_asks_afresh(tmp_path):
    kernel = InProcessKernel(tmp_path, _counter_notebook())
    namespace = proxy.KernelNamespace(kernel)
    first = namespace.ANSWER
    first.append("changed by the test")
    assert namespace.ANSWER == [1, 2], "each read must be a fresh copy"
    kernel.namespace["ANSWER"] = 42  # as the notebook's own thread or timer could
    assert namespace.ANSWER == 42
    assert isinstance(namespace.model, proxy.RemoteFunction)
    assert namespace.fit() is True
    assert namespace.model == [1.0, 2.0], "a call may rebind a function's name to a value"


@pytest.mark.parametrize("name", ["open", "exec", "globals", "builtins", "marshal"])
def test_the_agent_uses_none_of_the_notebooks_names(tmp_path, name):
    # A notebook's `open, close = prices[:, 0], prices[:, 1]` once stopped every test.
    notebook = _counter_notebook() | {name: [10.0, 11.0]}
    namespace = proxy.KernelNamespace(InProcessKernel(tmp_path, notebook))
    assert namespace.bump(3) == 3


def test_a_failed_install_is_tried_again_with_the_next_question(tmp_path):
    class FailsOnce(InProcessKernel):
        """The first install raises (as a notebook that broke something for a moment)."""

        def run(self, code: str, expressions: dict | None = None, what: str = "") -> CellResult:
            """Fail the first request that installs the agent; behave afterwards."""
            if code and not self.codes:
                self.codes.append(code)
                return CellResult("error", "RuntimeError: not now")
            return super().run(code, expressions, what)

    kernel = FailsOnce(tmp_path, _counter_notebook())
    namespace = proxy.KernelNamespace(kernel)
    with pytest.raises(proxy.SubmissionError, match="could not reach"):
        _ = namespace.ANSWER
    assert namespace.ANSWER == [1, 2]


CALLING_TESTS = '''
def _position(ns, value):
    return ns.index(value)  # a helper whose own `ns` is a plain list

def test_calls(ns):
    assert ns.bump(ns.bump(5) - 2) == 4, "bump counts"
    assert _position(ns.ANSWER, 5) == 2

def test_unfinished(ns):
    assert ns.bump(1) == 99

def test_rebound(ns):
    assert ns.fit() is True
    ns.model(1.0)

def test_missing(ns):
    ns.nothing(1)

def test_a_class(ns):
    ns.Model(1)
'''


def _outcome(kernel: InProcessKernel, name: str) -> runner.Outcome:
    test = SimpleNamespace(question="q1", name=name, source=CALLING_TESTS)
    return runner.run_test(test, proxy.KernelNamespace(kernel))


def test_a_call_in_a_test_is_one_request_for_the_lookup_and_the_call(tmp_path):
    kernel = InProcessKernel(tmp_path, _counter_notebook())
    assert _outcome(kernel, "test_calls").passed
    # bump(5), bump(1), the read of ANSWER; the helper's ns.index stays the list's own method
    assert kernel.requests == 3
    assert kernel.namespace["ANSWER"] == [1, 2, 5, 1]


def test_a_rewritten_call_keeps_its_line_and_its_answers_stay_fresh(tmp_path):
    kernel = InProcessKernel(tmp_path, _counter_notebook())
    outcome = _outcome(kernel, "test_unfinished")
    assert (outcome.status, outcome.message) == (
        "failed", "this check did not hold: assert ns.bump(1) == 99")
    outcome = _outcome(kernel, "test_rebound")
    assert outcome.status == "error"
    assert "model is not a function in the notebook (it is a list)" in outcome.message


def test_calling_a_missing_name_or_a_class_is_the_submissions_error(tmp_path):
    notebook = _counter_notebook()
    exec("class Model:\n    def __init__(self, x):\n        self.x = x\n", notebook)  # pylint: disable=exec-used
    kernel = InProcessKernel(tmp_path, notebook)
    assert "the notebook defines no 'nothing'" in _outcome(kernel, "test_missing").message
    assert "Model is not a function in the notebook (it is a class)" in \
        _outcome(kernel, "test_a_class").message


def test_other_namespaces_run_the_test_as_written():
    class Plain:  # pylint: disable=too-few-public-methods
        """A namespace without the hook, as the self-check's view of a notebook."""

        ANSWER = [1, 2, 5]

        @staticmethod
        def bump(by):
            """Counts as the notebook's would."""
            return {5: 3, 1: 4}[by]

    test = SimpleNamespace(question="q1", name="test_calls", source=CALLING_TESTS)
    assert runner.run_test(test, Plain()).passed


def test_a_notebook_name_never_meets_an_attribute_of_the_grader(tmp_path):
    notebook = _counter_notebook()
    exec("def ask(q):\n    return q * 2\n", notebook)  # pylint: disable=exec-used
    namespace = proxy.KernelNamespace(InProcessKernel(tmp_path, notebook))
    assert not [name for name in dir(proxy.KernelNamespace) if not name.startswith("_")]
    assert isinstance(namespace.ask, proxy.RemoteFunction)
    assert namespace.ask(2) == 4
