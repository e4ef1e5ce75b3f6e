"""Split conformal: the finite-sample quantile by hand, coverage inside its exact distribution, adaptive widths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bayesdrop
from bayesdrop.conformal import ConformalIntervals, ConformalSets, conformal_intervals, conformal_sets, set_scores
from tests.conftest import z_value


def test_the_finite_sample_quantile_by_hand():
    # residuals 1..n, level 0.9: the threshold is the ceil((n + 1) 0.9)-th smallest residual
    for n, want in [(9, 9), (10, 10), (19, 18), (20, 19), (29, 27)]:
        cal = ConformalIntervals.from_predictions(np.zeros(n), np.ones(n), np.arange(1.0, n + 1), 0.9)
        assert cal.quantile == want, n
    lo, hi = ConformalIntervals.from_predictions(np.zeros(9), np.ones(9), np.arange(1.0, 10), 0.9).interval(
        [5.0], [2.0]
    )
    assert (lo[0], hi[0]) == (5 - 18, 5 + 18)  # normalised: mu -/+ q sigma
    # too few: level 0.9 needs 1 / 0.1 - 1 = 9 calibration examples
    with pytest.raises(ValueError, match=r"holds 8 examples: a level of 0.9 needs at least 9"):
        ConformalIntervals.from_predictions(np.zeros(8), np.ones(8), np.arange(8.0), 0.9)


def test_set_scores_by_hand():
    p = np.array([[0.5, 0.3, 0.2]])
    np.testing.assert_allclose(set_scores(p, "lac"), [[0.5, 0.7, 0.8]])
    np.testing.assert_allclose(set_scores(p, "aps"), [[0.5, 0.8, 1.0]])
    np.testing.assert_allclose(set_scores(p, "raps", lam=0.1, k_reg=1), [[0.5, 0.9, 1.2]])
    np.testing.assert_allclose(set_scores([[0.2, 0.3, 0.5]], "aps"), [[1.0, 0.8, 0.5]])  # order by probability


def _exact_coverage(n: int, level: float, m: int) -> tuple[float, float]:
    # With continuous scores the test coverage given the calibration set is p ~ Beta(k, n + 1 - k),
    # k = ceil((n + 1) level); a split's coverage over m test points has mean k / (n + 1) and variance
    # E[p (1 - p)] / m + Var(p) (Vovk 2012; Angelopoulos & Bates 2021, sec. 1 and appendix D).
    k = math.ceil((n + 1) * level - 1e-9)
    a, b = k, n + 1 - k
    mean = a / (a + b)
    var_p = a * b / ((a + b) ** 2 * (a + b + 1))
    e_pq = mean * (1 - mean) - var_p
    return mean, e_pq / m + var_p


@pytest.mark.parametrize("level", [0.9, 0.95])
def test_interval_coverage_over_many_splits_has_its_exact_distribution(level):
    rng = np.random.default_rng(0)
    splits, n, m = 400, 100, 200
    cover = []
    for _ in range(splits):  # fresh data each split: heteroscedastic noise, a model 2x overconfident
        x = rng.uniform(-2, 2, n + m)
        sigma = 0.2 + 0.5 * np.abs(x)
        y = np.sin(x) + sigma * rng.normal(size=n + m)
        cal = ConformalIntervals.from_predictions(np.sin(x[:n]), sigma[:n] / 2, y[:n], level)
        lo, hi = cal.interval(np.sin(x[n:]), sigma[n:] / 2)
        cover.append(np.mean((lo <= y[n:]) & (y[n:] <= hi)))
    mean, var = _exact_coverage(n, level, m)
    assert abs(np.mean(cover) - mean) <= z_value(2) * math.sqrt(var / splits)
    naive = np.mean(np.abs(y[n:] - np.sin(x[n:])) <= 1.645 * sigma[n:] / 2)  # the overconfident model alone
    assert naive < level - 0.2


@pytest.mark.parametrize("level", [0.8, 0.9])
@pytest.mark.parametrize("method", ["lac", "aps", "raps"])
def test_set_coverage_over_many_splits_has_its_exact_distribution(level, method):
    rng = np.random.default_rng(1)
    splits, n, m, k = 300, 60, 100, 5
    cover = []
    for _ in range(splits):
        logits = rng.normal(size=(n + m, k)) * 2
        p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        y = np.array([rng.choice(k, p=row) for row in p])  # labels drawn from the model: calibrated
        q = np.exp(logits / 2) / np.exp(logits / 2).sum(1, keepdims=True)  # the model we conformalise: underconfident
        sets = ConformalSets.from_probabilities(q[:n], y[:n], level, method, lam=0.1, k_reg=2)
        cover.append(sets.sets(q[n:])[np.arange(m), y[n:]].mean())
    mean, var = _exact_coverage(n, level, m)
    assert abs(np.mean(cover) - mean) <= z_value(12) * math.sqrt(var / splits)


def test_normalised_intervals_are_narrower_on_a_heteroscedastic_problem():
    rng = np.random.default_rng(2)
    x = rng.uniform(-2, 2, 4000)
    sigma = 0.1 + np.abs(x)
    y = sigma * rng.normal(size=4000)
    widths = {}
    for normalized in (True, False):
        cal = ConformalIntervals.from_predictions(np.zeros(2000), sigma[:2000], y[:2000], 0.9, normalized=normalized)
        lo, hi = cal.interval(np.zeros(2000), sigma[2000:])
        widths[normalized] = float(np.mean(hi - lo))
        assert np.mean((lo <= y[2000:]) & (y[2000:] <= hi)) == pytest.approx(0.9, abs=0.03)
    assert widths[True] < 0.95 * widths[False]  # 3.65 against 4.12 here: the same coverage, narrower on average


def test_on_a_model_tensors_and_a_dataloader_agree():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))
    lik = bayesdrop.Gaussian(heteroscedastic=True)
    x, y = torch.randn(120, 1), torch.randn(120)
    a = conformal_intervals(net, x, y, likelihood=lik, level=0.8, num_samples=8, seed=0, batch_size=50)
    b = conformal_intervals(net, DataLoader(TensorDataset(x, y), batch_size=50), likelihood=lik, level=0.8,
                            num_samples=8, seed=0)  # fmt: skip
    assert a.quantile == pytest.approx(b.quantile) and a.level == 0.8
    np.testing.assert_allclose(a.predict(x[:7])[0], b.predict(x[:7])[0])
    clf = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    xc, yc = torch.randn(90, 2), torch.randint(0, 3, (90,))
    s1 = conformal_sets(clf, xc, yc, method="raps", num_samples=6, seed=1)
    s2 = conformal_sets(clf, DataLoader(TensorDataset(xc, yc), batch_size=256), method="raps", num_samples=6, seed=1)
    assert s1.quantile == pytest.approx(s2.quantile)
    assert s1.predict(xc[:5]).shape == (5, 3) and s1.predict(xc[:5]).dtype == bool


def test_bad_input_names_the_argument():
    net = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.2), nn.Linear(8, 3))
    x, y = torch.randn(40, 2), torch.randint(0, 3, (40,))
    with pytest.raises(TypeError, match=r"'likelihood' parameter of conformal_intervals must be a bayesdrop.Gaussian"):
        conformal_intervals(net, x, y, likelihood=bayesdrop.Categorical())
    with pytest.raises(
        ValueError, match=r"'labels' parameter of ConformalSets must hold 40 integer labels.*conformal_intervals"
    ):
        conformal_sets(net, x, torch.randn(40), num_samples=3)
    with pytest.raises(ValueError, match=r"'level' parameter of ConformalSets must be a float in \(0, 1\)"):
        conformal_sets(net, x, y, level=1.2, num_samples=3)
    with pytest.raises(ValueError, match=r"'method' parameter of conformal_sets must be one of 'lac', 'aps', 'raps'"):
        conformal_sets(net, x, y, method="thr2", num_samples=3)
    with pytest.raises(ValueError, match=r"'y' parameter must be finite"):
        ConformalIntervals.from_predictions(np.zeros(20), np.ones(20), np.r_[np.nan, np.zeros(19)])
    with pytest.raises(ValueError, match=r"holds 10 examples: a level of 0.95 needs at least 19"):
        ConformalSets.from_probabilities(np.full((10, 2), 0.5), np.zeros(10, dtype=int), 0.95)


def test_randomised_aps_gives_smaller_sets_at_the_same_coverage():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4000, 10)) * 4  # a confident model
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(10, p=row) for row in p])
    found = {}
    for randomized in (True, False):
        sets = ConformalSets.from_probabilities(p[:2000], y[:2000], 0.9, "aps", randomized=randomized, seed=0)
        s = sets.sets(p[2000:])
        found[randomized] = (s[np.arange(2000), y[2000:]].mean(), s.sum(1).mean())
        assert found[randomized][0] == pytest.approx(0.9, abs=0.03)
    assert found[True][1] < found[False][1]


def test_predict_takes_inputs_in_every_form_evaluate_takes():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
    x, y = torch.randn(60, 2), torch.randint(0, 3, (60,))
    sets = conformal_sets(net, x, y, num_samples=4, seed=0)
    new = torch.randn(10, 2)
    want = sets.predict(new)
    for form in (new.numpy(), DataLoader(TensorDataset(new), batch_size=256),
                 DataLoader(TensorDataset(new, torch.zeros(10)), batch_size=256)):  # fmt: skip
        np.testing.assert_array_equal(sets.predict(form), want)
