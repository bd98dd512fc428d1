"""The grader's wire format: plain values survive, liars and malformed replies do not."""
# Exact types are the point here: a subclass must not pass for its base type.
# pylint: disable=unidiomatic-typecheck

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from labsupport.course import plaindata


class LyingFloat(float):
    """Equal to everything."""

    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


class LyingList(list):
    """Iterates over something else than it holds."""

    def __iter__(self):
        return iter([42])


class LyingArray(np.ndarray):
    """Element-wise equal to everything."""

    def __eq__(self, other):
        return np.ones(np.shape(other), dtype=bool)


@pytest.mark.parametrize("value", [
    None, True, 7, 10**40, 0.1, -2.5e-300, 1 + 2j, "café", [1, [2, "x"]], (1, 2.0),
    {"a": 1, 2: [None]}, {1, 2}, frozenset({"x"}), np.arange(6).reshape(2, 3),
    np.array(["a", "bc"]), np.array([True, False]), np.linspace(0, 1, 5, dtype=np.float32),
])
def test_plain_values_round_trip(value):
    back = plaindata.loads(plaindata.dumps(value))
    if isinstance(value, np.ndarray):
        assert type(back) is np.ndarray and back.dtype == value.dtype
        np.testing.assert_array_equal(back, value)
    else:
        assert type(back) is type(value) and back == value


def test_nan_and_numpy_scalars_become_python_floats():
    back = plaindata.loads(plaindata.dumps([np.float64("nan"), np.int64(3)]))
    assert math.isnan(back[0]) and type(back[1]) is int


def test_pandas_tables_round_trip():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=["r", "s"])
    pd.testing.assert_frame_equal(plaindata.loads(plaindata.dumps(frame)), frame)
    series = pd.Series([0.5, 1.5], name="psi")
    pd.testing.assert_series_equal(plaindata.loads(plaindata.dumps(series)), series)


@pytest.mark.parametrize("liar, plain", [
    (LyingFloat(99.0), 99.0), (LyingList([1, 2]), [1, 2]),
])
def test_subclasses_arrive_as_their_base_values(liar, plain):
    back = plaindata.loads(plaindata.dumps(liar))
    assert type(back) is type(plain) and back == plain and not back == 0


def test_an_ndarray_subclass_loses_its_lying_eq():
    back = plaindata.loads(plaindata.dumps(np.zeros(3).view(LyingArray)))
    assert type(back) is np.ndarray and not (back == np.ones(3)).any()


@pytest.mark.parametrize("value", [object(), len, [1, object()], np.array([1], dtype="M8[s]")])
def test_other_objects_are_refused(value):
    with pytest.raises(plaindata.RefusedValue):
        plaindata.dumps(value)


@pytest.mark.parametrize("text", [
    '[1]', '{"t": "int", "v": 1}', '{"t": "float", "v": "1", "extra": 0}', '{"t": "object"}',
    '{"t": "ndarray", "dtype": "O", "shape": [1], "v": ""}',
    '{"t": "ndarray", "dtype": "<f8", "shape": [3], "v": "AAAAAAAAAAA="}', 'NaN', '{',
    '{"t": "ndarray", "dtype": "<f8", "shape": [-1], "v": ""}',
])
def test_malformed_replies_are_rejected(text):
    with pytest.raises(ValueError, match="malformed reply"):
        plaindata.loads(text)


def test_reply_reports_missing_raised_and_refused_names():
    namespace = {"f": lambda x: x + 1, "g": lambda: 1 / 0, "o": object()}
    assert json.loads(plaindata.reply(namespace, "nope", None, "t0")) == {
        "error": "missing", "message": "nope", "for": "t0"}
    assert json.loads(plaindata.reply(namespace, "f", None, "t1")) == {"function": "f", "for": "t1"}
    call = plaindata.dumps({"args": [1], "kwargs": {}})
    answer = json.loads(plaindata.reply(namespace, "f", call, "t2"))
    assert answer.pop("for") == "t2" and plaindata.loads(json.dumps(answer["ok"])) == 2
    assert "ZeroDivisionError" in plaindata.reply(namespace, "g", plaindata.dumps(
        {"args": [], "kwargs": {}}))
    assert '"refused"' in plaindata.reply(namespace, "o", None)
    assert json.loads(plaindata.reply(namespace, "o", call)) == {
        "error": "uncallable", "message": "a object", "for": ""}
    assert json.loads(plaindata.reply({"C": dict}, "C", call))["message"] == "a class"


def _json_values(data: object) -> int:
    """How many JSON values ``data`` holds (keys included), counted the slow, sure way."""
    if isinstance(data, dict):
        return 1 + sum(1 + _json_values(v) for v in data.values())
    if isinstance(data, list):
        return 1 + sum(_json_values(v) for v in data)
    return 1


@pytest.mark.parametrize("value", [
    0, "a, b: [c] {d}", [], [[], [[]]], {"a": [1, {"b": None}]}, list(range(50)),
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), np.arange(1000),
])
def test_count_values_never_undercounts(value):
    text = plaindata.dumps(value)
    assert _json_values(json.loads(text)) <= plaindata.count_values(text)


def test_a_numeric_array_costs_a_handful_of_values_whatever_its_size():
    assert plaindata.count_values(plaindata.dumps(np.zeros(1_000_000))) < 20


def test_too_many_values_are_refused_before_parsing():
    text = plaindata.dumps(list(range(plaindata.MAX_VALUES // 4)))
    with pytest.raises(ValueError, match="more than 1,000,000 values"):
        plaindata.loads(text)
    assert plaindata.loads(plaindata.dumps(list(range(1000)))) == list(range(1000))


def test_reply_refuses_an_answer_too_large_to_check():
    namespace = {"big": list(range(plaindata.MAX_VALUES // 4)), "text": "x" * 8_000_000}
    answer = json.loads(plaindata.reply(namespace, "big", None))
    assert answer["error"] == "refused" and "too large" in answer["message"]
    assert plaindata.loads(json.dumps(json.loads(plaindata.reply(namespace, "text", None))[
        "ok"])) == "x" * 8_000_000


def test_reply_carries_any_exception_text_as_ascii_json():
    def raises():
        raise RuntimeError("\ud800 and caf\udce9")

    text = plaindata.reply({"f": raises}, "f", plaindata.dumps({"args": [], "kwargs": {}}))
    assert text.isascii() and json.loads(text)["message"] == "RuntimeError: \ud800 and caf\udce9"


@pytest.mark.parametrize("stamp", [
    pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-01 12:30:00.123456789"),
    pd.Timestamp("2024-10-27 02:30").tz_localize("Europe/Paris", ambiguous=True),
    pd.Timestamp("2024-01-01 10:00", tz="-05:00"),
])
def test_timestamps_travel_as_tagged_iso_text(stamp):
    text = plaindata.dumps(stamp)
    assert json.loads(text)["t"] == "timestamp"
    back = plaindata.loads(text)
    assert type(back) is pd.Timestamp and back == stamp
    assert back.isoformat() == stamp.isoformat() and str(back.tz) == str(stamp.tz)


def test_a_datetime_index_and_a_datetime_column_round_trip():
    frame = pd.DataFrame({"age": [17, 30],
                          "seen": pd.to_datetime(["2024-02-01", "2024-02-02"]).tz_localize("UTC")},
                         index=pd.to_datetime(["2024-01-01", "2024-01-02"]))
    pd.testing.assert_frame_equal(plaindata.loads(plaindata.dumps(frame)), frame)
    assert plaindata.loads(plaindata.dumps(frame.index.tolist())) == frame.index.tolist()


@pytest.mark.parametrize("node", [
    {"t": "timestamp", "v": "now", "tz": None},
    {"t": "timestamp", "v": "2024-01-01T00:00:00+01:00", "tz": None},
    {"t": "timestamp", "v": "2024-13-01T00:00:00", "tz": None},
    {"t": "timestamp", "v": "2024-01-01T00:00:00", "tz": "Mars/Base"},
    {"t": "timestamp", "v": "2024-01-01T00:00:00", "tz": 5},
    {"t": "timestamp", "v": 20240101, "tz": None},
    {"t": "timestamp", "v": "2024-01-01T00:00:00"},
])
def test_malformed_timestamps_are_rejected(node):
    with pytest.raises(ValueError, match="malformed reply"):
        plaindata.loads(json.dumps(node))
