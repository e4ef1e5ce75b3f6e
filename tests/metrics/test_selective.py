"""Selective prediction by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bayesdrop.metrics import selective_accuracy, selective_curve, selective_rmse


def test_selective_accuracy_by_hand():
    correct = [1, 0, 1, 1, 0]
    u = [0.1, 0.9, 0.2, 0.5, 0.3]  # order of certainty: 0, 2, 4, 3, 1
    assert selective_accuracy(correct, u, 0.2) == 1.0  # keeps example 0
    assert selective_accuracy(correct, u, 0.6) == pytest.approx(2 / 3)  # 0, 2, 4
    assert selective_accuracy(correct, u, 0.8) == 0.75  # ceil(4.0) = 4: 0, 2, 4, 3
    assert selective_accuracy(correct, u, 1.0) == 0.6
    assert selective_accuracy(correct, u, 0.01) == 1.0  # at least one example is kept


def test_selective_rmse_and_the_curve_agree():
    rng = np.random.default_rng(0)
    e, u = rng.normal(size=50), rng.uniform(size=50)
    cov, risk = selective_curve(e**2, u)
    for k in (1, 10, 37, 50):
        assert math.sqrt(risk[k - 1]) == pytest.approx(selective_rmse(e, u, k / 50))
    assert cov[-1] == 1.0 and risk[-1] == pytest.approx(np.mean(e**2))


@pytest.mark.parametrize("coverage", [0.0, 1.5, -0.1])
def test_coverage_outside_the_unit_interval_is_refused(coverage):
    with pytest.raises(ValueError, match=r"'coverage' parameter must be a float in \(0, 1\]"):
        selective_accuracy([1, 0], [0.1, 0.2], coverage)


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match=r"'uncertainty' parameter must hold one value for each of the 3 examples"):
        selective_rmse([1.0, 2.0, 3.0], [0.1, 0.2], 0.5)
