"""labsupport.validation: every problem is reported, and only real problems."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from labsupport import validation

SCHEMA = validation.Schema(columns={"age": validation.Column(0, 120),
                                    "income": validation.Column(0, math.inf, allow_missing=True)},
                           min_rows=3)


def _frame(**overrides):
    columns = {"age": [30.0, 41.0, 57.0], "income": [1000.0, np.nan, 2500.0]}
    columns.update(overrides)
    return pd.DataFrame(columns)


def test_valid_data_has_no_problems():
    report = validation.validate(_frame(), SCHEMA)
    assert report.ok and not report.problems and str(report) == "data valid (3 rows)"


@pytest.mark.parametrize("frame, expected", [
    (_frame(age=[30.0, np.nan, 57.0]), "column 'age' has 1 missing value(s)"),
    (_frame(age=[30.0, 130.0, 157.0]), "column 'age' has 2 value(s) above 120 (highest 157)"),
    (_frame(age=[-1.0, 41.0, 57.0]), "column 'age' has 1 value(s) below 0 (lowest -1)"),
    (_frame(age=pd.Series(["a", "b", "c"], dtype=object)),
     "column 'age' is object, expected numbers"),
    (_frame(age=[True, False, True]), "column 'age' is bool, expected numbers"),
    (_frame().drop(columns="age"), "column 'age' is missing"),
    (_frame().head(2), "only 2 rows, at least 3 required"),
])
def test_each_kind_of_problem_is_named(frame, expected):
    report = validation.validate(frame, SCHEMA)
    assert not report.ok
    assert expected in report.problems


def test_all_problems_are_reported_at_once():
    frame = _frame(age=[-5.0, np.nan, 200.0])
    frame = pd.concat([frame.head(1), frame.tail(1)])
    assert len(validation.validate(frame, SCHEMA).problems) == 3
    assert len(validation.validate(_frame(age=[-5.0, np.nan, 200.0]), SCHEMA).problems) == 3


def test_missing_values_are_allowed_where_declared():
    assert validation.validate(_frame(income=[np.nan] * 3), SCHEMA).ok


@pytest.mark.parametrize("make, error", [
    (lambda: validation.validate([[1, 2]], SCHEMA), TypeError),
    (lambda: validation.Column(minimum=5, maximum=1), ValueError),
    (lambda: validation.Schema(columns={}), ValueError),
    (lambda: validation.Schema(columns={"a": validation.Column()}, min_rows=0), ValueError),
])
def test_bad_input_is_refused(make, error):
    with pytest.raises(error):
        make()


def test_invalid_rows_lists_every_bad_row_by_label_in_order():
    batch = pd.DataFrame({"age": [30, 17, 40, np.nan, 17, 120],
                          "income": [1.0, 2.0, -5.0, 1.0, 2.0, 0.0]},
                         index=["a", "b", "c", "d", "e", "f"])
    bounds = {"age": (18, 120), "income": (0, math.inf)}
    assert validation.invalid_rows(batch, bounds) == ["b", "c", "d", "e"]


@pytest.mark.parametrize("data, bounds, error, match", [
    ([1, 2], {"age": (0, 1)}, TypeError, "DataFrame"),
    (pd.DataFrame({"age": [1]}), {"height": (0, 1)}, ValueError, "height"),
    (pd.DataFrame({"age": [1]}), {"age": (5, 1)}, ValueError, "reversed"),
])
def test_invalid_rows_refuses_bad_input(data, bounds, error, match):
    with pytest.raises(error, match=match):
        validation.invalid_rows(data, bounds)


def test_the_extended_schema_reports_every_violation_with_its_rows():
    schema = validation.Schema(
        columns={"age": validation.Column(0, 120),
                 "income": validation.Column(0, math.inf, allow_missing=True,
                                             max_missing_share=0.25),
                 "plan": validation.Column(categories=("basic", "pro"))},
        allow_duplicates=False)
    batch = pd.DataFrame({"age": [30.0, 30.0, 41.0, 41.0],
                          "income": [np.nan, np.nan, 2500.0, 2500.0],
                          "plan": ["basic", "basic", "gold", "gold"]},
                         index=[10, 11, 12, 13])
    assert validation.validate(batch, schema).problems == (
        "column 'income' is 50% missing, at most 25% allowed",
        "column 'plan' has 2 value(s) outside ['basic', 'pro'] (rows 12, 13)",
        "2 row(s) repeat an earlier row (rows 11, 13)",
    )


def test_the_defaults_keep_the_old_behaviour():
    repeated = pd.concat([_frame(), _frame()])
    assert validation.validate(repeated, SCHEMA).ok


@pytest.mark.parametrize("kwargs, match", [
    ({"categories": ()}, "non-empty"),
    ({"categories": "abc"}, "non-empty"),
    ({"max_missing_share": 1.5}, r"\[0, 1\]"),
])
def test_bad_column_rules_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        validation.Column(**kwargs)
