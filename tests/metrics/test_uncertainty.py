from __future__ import annotations

import math

import numpy as np
import pytest

from bayesdrop import metrics as M


def test_entropy_decomposition_oracle():
    # two samples, one example: [1, 0] and [0, 1] -> predictive [.5, .5]
    s = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert M.predictive_entropy(s)[0] == pytest.approx(math.log(2))
    assert M.expected_entropy(s)[0] == 0.0
    assert M.mutual_information(s)[0] == pytest.approx(math.log(2))
    # identical samples: no epistemic part
    same = np.array([[[0.25, 0.75]], [[0.25, 0.75]]])
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert M.expected_entropy(same)[0] == pytest.approx(h)
    assert M.mutual_information(same)[0] == pytest.approx(0.0, abs=1e-15)


def test_mutual_information_is_nonnegative_and_decomposes():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(30, 50, 4))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    mi = M.mutual_information(p)
    assert np.all(mi >= -1e-12)
    np.testing.assert_allclose(M.predictive_entropy(p), M.expected_entropy(p) + mi, rtol=1e-12)


def test_variation_ratio_oracle():
    votes = np.array([[[0.75, 0.25, 0.0]], [[0.0, 1.0, 0.0]], [[0.5, 0.25, 0.25]], [[0.25, 0.25, 0.5]]])
    # argmax votes 0, 1, 0, 2 -> modal count 2 of 4
    assert M.variation_ratio(votes).tolist() == [0.5]


def test_bad_input():
    with pytest.raises(ValueError, match=r"'prob_samples' parameter must have 3 dimensions. Got shape \(2, 2\)"):
        M.predictive_entropy([[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="rows summing to 1"):
        M.mutual_information([[[0.5, 0.25]]])
