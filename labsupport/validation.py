"""Data validation: check a batch of data against a declared schema before a model sees it.

Taught in lesson 01 (the "validate data" stage of the pipeline). A schema says which columns
must exist, that they are numeric, and the range each may take; :func:`validate` lists every
problem it finds instead of stopping at the first, so a failing pipeline says all that is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Column:
    """What one column must look like.

    Parameters
    ----------
    minimum, maximum
        Inclusive bounds of plausible values (use ``-math.inf`` / ``math.inf`` for none).
    allow_missing
        Whether NaN is acceptable in this column.
    categories
        For a categorical column: the values allowed (the column need not be numeric, and the
        bounds do not apply). None (the default): a numeric column.
    max_missing_share
        With ``allow_missing``, the largest share of missing values accepted (default 1: any).
    """

    minimum: float = -math.inf
    maximum: float = math.inf
    allow_missing: bool = False
    categories: tuple | None = None
    max_missing_share: float = 1.0

    def __post_init__(self) -> None:
        if not self.minimum <= self.maximum:
            raise ValueError(f"Column bounds are reversed: minimum {self.minimum} > "
                             f"maximum {self.maximum}")
        if self.categories is not None:
            if isinstance(self.categories, str) or not tuple(self.categories):
                raise ValueError("categories must be a non-empty tuple of allowed values, got "
                                 f"{self.categories!r}")
            object.__setattr__(self, "categories", tuple(self.categories))
        if not 0 <= self.max_missing_share <= 1:
            raise ValueError(f"max_missing_share must be in [0, 1], got {self.max_missing_share}")


@dataclass(frozen=True)
class Schema:
    """The columns a data set must have, how many rows at least, and whether rows may repeat."""

    columns: Mapping[str, Column]
    min_rows: int = 1
    allow_duplicates: bool = True

    def __post_init__(self) -> None:
        if not self.columns:
            raise ValueError("A schema needs at least one column.")
        if self.min_rows < 1:
            raise ValueError(f"min_rows must be at least 1, got {self.min_rows}.")


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of :func:`validate`: ``ok`` when ``problems`` is empty."""

    problems: tuple[str, ...]
    n_rows: int

    @property
    def ok(self) -> bool:
        """True when the data met every rule of the schema."""
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            return f"data valid ({self.n_rows} rows)"
        return f"{len(self.problems)} problem(s): " + "; ".join(self.problems)


def validate(data: pd.DataFrame, schema: Schema) -> ValidationReport:
    """Check ``data`` against ``schema`` and report every problem found.

    Parameters
    ----------
    data
        The batch to check.
    schema
        Required columns with their bounds, and the minimum number of rows.

    Returns
    -------
    ValidationReport
        One human-readable sentence per problem: missing columns, non-numeric columns, missing
        values (or too large a share of them), values out of range (with how many and the worst
        offender), values outside a categorical column's categories and duplicated rows (with
        the rows involved), too few rows.

    Raises
    ------
    TypeError
        If ``data`` is not a pandas DataFrame.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"validate expects a pandas DataFrame, got {type(data).__name__}.")
    problems = []
    if len(data) < schema.min_rows:
        problems.append(f"only {len(data)} rows, at least {schema.min_rows} required")
    for name, rule in schema.columns.items():
        if name not in data.columns:
            problems.append(f"column '{name}' is missing")
            continue
        values = data[name]
        n_missing = int(values.isna().sum())
        if rule.categories is not None:
            problems += _missing_problems(name, n_missing, len(values), rule)
            unknown = values.notna() & ~values.isin(rule.categories)
            if unknown.any():
                problems.append(f"column '{name}' has {int(unknown.sum())} value(s) outside "
                                f"{list(rule.categories)} (rows {_rows(data.index[unknown])})")
            continue
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            problems.append(f"column '{name}' is {values.dtype}, expected numbers")
            continue
        problems += _missing_problems(name, n_missing, len(values), rule)
        present = values.dropna()
        low, high = present[present < rule.minimum], present[present > rule.maximum]
        if len(low):
            problems.append(f"column '{name}' has {len(low)} value(s) below {rule.minimum} "
                            f"(lowest {low.min():g})")
        if len(high):
            problems.append(f"column '{name}' has {len(high)} value(s) above {rule.maximum} "
                            f"(highest {high.max():g})")
    if not schema.allow_duplicates:
        repeated = data.duplicated()
        if repeated.any():
            problems.append(f"{int(repeated.sum())} row(s) repeat an earlier row "
                            f"(rows {_rows(data.index[repeated.to_numpy()])})")
    return ValidationReport(problems=tuple(problems), n_rows=len(data))


def _missing_problems(name: str, n_missing: int, n_rows: int, rule: Column) -> list[str]:
    if n_missing and not rule.allow_missing:
        return [f"column '{name}' has {n_missing} missing value(s)"]
    if n_rows and n_missing / n_rows > rule.max_missing_share:
        return [f"column '{name}' is {n_missing / n_rows:.0%} missing, at most "
                f"{rule.max_missing_share:.0%} allowed"]
    return []


def _rows(labels: pd.Index, shown: int = 5) -> str:
    """The first ``shown`` row labels, and how many more."""
    listed = ", ".join(repr(label) for label in labels[:shown].tolist())
    more = len(labels) - shown
    return listed + (f" and {more} more" if more > 0 else "")


def invalid_rows(data: pd.DataFrame, bounds: Mapping[str, tuple[float, float]]) -> list:
    """The labels of the rows that break a bound: the rows a validation report points at.

    Taught in lesson 03 (data-validation tests); exercise 03 asks for tests of it.

    Parameters
    ----------
    data
        The batch to check.
    bounds
        Column name -> ``(low, high)``: a value must lie in ``[low, high]`` (both ends allowed).

    Returns
    -------
    list
        The index labels of the rows where some bounded column is missing (NaN) or outside its
        bounds, in the order of ``data``, each row once; every row counts, repeated ones too.

    Raises
    ------
    TypeError
        If ``data`` is not a pandas DataFrame.
    ValueError
        If a bounded column is not in ``data``, or a bound has ``low > high``.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"invalid_rows expects a pandas DataFrame, got {type(data).__name__}.")
    absent = [name for name in bounds if name not in data.columns]
    if absent:
        raise ValueError(f"columns {absent} are not in the data")
    broken = pd.Series(False, index=range(len(data)))
    for name, (low, high) in bounds.items():
        if low > high:
            raise ValueError(f"bounds of {name!r} are reversed: {low} > {high}")
        values = data[name].reset_index(drop=True)
        broken |= values.isna() | (values < low) | (values > high)
    return data.index[broken.to_numpy()].tolist()
