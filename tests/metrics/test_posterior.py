"""Distances between predictive samples (``bayesdrop.metrics.compare``, ``wasserstein2``): closed forms and hand cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from bayesdrop import Categorical, Gaussian
from bayesdrop import metrics as metrics_module
from bayesdrop.metrics import compare, wasserstein2


def test_w2_closed_forms():
    # hand-computed: quantile functions of {0, 1} and {0, .5, 1} differ by .5 on u in (1/3, 2/3]: W2^2 = .25/3
    assert wasserstein2([[0.0], [1.0]], [[0.0], [0.5], [1.0]]).item() == pytest.approx(math.sqrt(1 / 12))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    np.testing.assert_allclose(wasserstein2(a, b), np.sqrt(((np.sort(a, 0) - np.sort(b, 0)) ** 2).mean(0)))
    # two Gaussians: W2^2 = (m1 - m2)^2 + (s1 - s2)^2; samples at the quantile midpoints of each (2000 and 3000)
    qa, qb = norm.ppf((np.arange(2000) + 0.5) / 2000), norm.ppf((np.arange(3000) + 0.5) / 3000)
    samples, ref = 1.0 + 2.0 * qa[:, None], -0.5 + 0.5 * qb[:, None]
    out = compare(samples, ref, likelihood=Gaussian())
    assert out["w2"] == pytest.approx(math.sqrt(1.5**2 + 1.5**2), rel=2e-3)
    assert out["std_ratio"] == pytest.approx(4.0, rel=2e-3)


def test_compare_identical_and_known_classification_pairs():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(30, 7, 3))
    same = compare(logits, logits, likelihood=Categorical())
    assert same == {"agreement": 1.0, "total_variation": 0.0}
    reg = rng.normal(size=(30, 7, 2))
    out = compare(torch.tensor(reg), reg, likelihood=Gaussian())
    assert out == {"w2": 0.0, "std_ratio": 1.0, "predictive_std_ratio": 1.0}
    # hand-made: p = (.75, .25) vs q = (.25, .75) on input 0 (disagree, TV .5); equal on input 1
    p = np.log(np.array([[[0.75, 0.25], [0.5, 0.5]]]))
    q = np.log(np.array([[[0.25, 0.75], [0.5, 0.5]]]))
    y = np.array([0, 1])
    out = compare(p, q, y, likelihood=Categorical())
    assert out["agreement"] == 0.5 and out["total_variation"] == pytest.approx(0.25)
    assert out["nll"] == pytest.approx(metrics_module.nll(np.array([[0.75, 0.25], [0.5, 0.5]]), y))
    assert out["reference_accuracy"] == pytest.approx(metrics_module.accuracy(np.array([[0.25, 0.75], [0.5, 0.5]]), y))


def test_compare_regression_scores_each_side():
    rng = np.random.default_rng(1)
    mu_s, mu_r = rng.normal(size=(40, 9)), 2 * rng.normal(size=(60, 9))
    s = np.stack([mu_s, np.full_like(mu_s, np.log(0.25))], -1)
    r = np.stack([mu_r, np.full_like(mu_r, np.log(0.5))], -1)
    y = rng.normal(size=9)
    out = compare(s, r, y, likelihood=Gaussian(), level=0.9)
    assert out["nll"] == pytest.approx(metrics_module.mixture_nll(mu_s, y, 0.5))
    assert out["reference_nll"] == pytest.approx(metrics_module.mixture_nll(mu_r, y, math.sqrt(0.5)))
    tot = np.sqrt(mu_s.var(0) + 0.25)
    assert out["coverage"] == pytest.approx(metrics_module.interval_coverage(mu_s.mean(0), tot, y, 0.9))
    ratio = np.exp(np.mean(np.log(mu_s.std(0) / mu_r.std(0))))
    assert out["std_ratio"] == pytest.approx(ratio)
    assert out["w2"] == pytest.approx(wasserstein2(mu_s, mu_r).mean())


def test_compare_bad_input():
    a = np.zeros((5, 4, 3))
    with pytest.raises(ValueError, match=r"'samples' and 'reference' parameters of compare must be logits"):
        compare(a, np.zeros((5, 3, 3)), likelihood=Categorical())
    with pytest.raises(ValueError, match=r"'reference' parameter of compare must have shape .* N = 4"):
        compare(np.zeros((5, 4)), np.zeros((5, 3)), likelihood=Gaussian())
    with pytest.raises(ValueError, match=r"'samples' parameter of compare must carry log-variances"):
        compare(np.zeros((5, 4)), np.zeros((5, 4, 2)), np.zeros(4), likelihood=Gaussian())
    with pytest.raises(TypeError, match=r"'likelihood' parameter of compare must be a bayesdrop.Categorical"):
        compare(a, a, likelihood="classification")
    with pytest.raises(ValueError, match=r"'task' parameter of compare must be one of 'classification', 'regression'"):
        compare(a, a, task="ranking")
    with pytest.raises(ValueError, match=r"'samples' parameter must be finite"):
        compare(np.full((5, 4), np.nan), np.zeros((5, 4)), likelihood=Gaussian())


def test_compare_task_is_a_deprecated_spelling_of_the_likelihood():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(20, 5)), rng.normal(size=(30, 5))
    with pytest.warns(DeprecationWarning, match="compare\\(task=...\\) is deprecated"):
        old = compare(a, b, task="regression")
    assert old == compare(a, b, likelihood=Gaussian())


def test_the_pyro_module_still_exports_compare():
    pytest.importorskip("pyro")
    import bayesdrop.pyro

    assert bayesdrop.pyro.compare is compare and bayesdrop.pyro.wasserstein2 is wasserstein2
