"""labsupport.preprocessing: scaling by the reference's statistics, checked against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from labsupport import preprocessing


def test_agrees_with_scikit_learns_standard_scaler():
    rng = np.random.default_rng(0)
    reference, X = rng.normal(5, 3, (50, 4)), rng.normal(5, 3, (7, 4))
    expected = StandardScaler().fit(reference).transform(X)
    np.testing.assert_allclose(preprocessing.standardize(X, reference), expected)


def test_missing_values_are_ignored_in_the_reference_and_kept_in_x():
    reference = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 4.0]])
    found = preprocessing.standardize([[np.nan, 3.0], [3.0, 4.0]], reference)
    assert np.isnan(found[0, 0]) and found.shape == (2, 2)
    assert found[1].tolist() == pytest.approx([0.0, 1.0])  # column 1: mean 3, std 1


def test_a_constant_column_is_only_centred():
    found = preprocessing.standardize([[7.0]], [[5.0], [5.0]])
    assert found.tolist() == [[2.0]]


@pytest.mark.parametrize("X, reference, match", [
    ([1.0, 2.0], [[1.0]], "2-D"),
    ([[1.0, 2.0]], [[1.0, 2.0, 3.0]], "2 columns but reference has 3"),
])
def test_bad_shapes_are_refused(X, reference, match):
    with pytest.raises(ValueError, match=match):
        preprocessing.standardize(X, reference)
