"""Preprocessing fitted on reference data: the code lesson 03 unit-tests and exercise 03 grades.

Taught in lesson 03 (``notebooks/03_testing_ml_code.ipynb``): :func:`standardize` scales each
feature by statistics of the *reference* (training) data, ignoring missing values there and
keeping them where they are in the data being scaled. The lesson writes its unit tests against
it, and exercise 03 asks for a test suite that tells it apart from buggy versions.
"""

from __future__ import annotations

import numpy as np


def standardize(X, reference):
    """Scale each column of ``X`` by the mean and standard deviation of ``reference``'s column.

    Parameters
    ----------
    X, reference
        Two-dimensional array-likes of numbers with the same number of columns (``reference``
        is the training data the statistics come from; ``X`` the data being scaled).

    Returns
    -------
    numpy.ndarray
        Floats of ``X``'s shape: ``(X[:, j] - mean_j) / std_j``, where ``mean_j`` and ``std_j``
        (the population standard deviation, dividing by n) are taken over the values of column
        ``j`` of ``reference`` that are not NaN. A column whose ``std_j`` is 0 is only centred
        (divided by 1). NaN in ``X`` stays NaN in its place; no row is dropped.

    Raises
    ------
    ValueError
        If either input is not two-dimensional, or their numbers of columns differ.
    """
    values = np.asarray(X, dtype=float)
    ref = np.asarray(reference, dtype=float)
    if values.ndim != 2 or ref.ndim != 2:
        raise ValueError("standardize expects two 2-D arrays (rows x columns), got "
                         f"{values.ndim}-D and {ref.ndim}-D")
    if values.shape[1] != ref.shape[1]:
        raise ValueError(f"X has {values.shape[1]} columns but reference has {ref.shape[1]}")
    scaled = np.empty_like(values)
    for column in range(ref.shape[1]):
        present = ref[:, column][~np.isnan(ref[:, column])]
        mean = present.mean() if present.size else np.nan
        std = present.std() if present.size else np.nan
        scaled[:, column] = (values[:, column] - mean) / (std if std > 0 else 1.0)
    return scaled
