from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import bayesdrop
from bayesdrop.nn import Dropout
from tests.conftest import z_value


def _softmax_unit(p: float, k: int) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(Dropout(p), nn.Linear(2, k)).double()
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1.5, -2.0], [-0.5, 1.0], [2.0, 0.5]][:k], dtype=torch.float64))
        net[1].bias.copy_(torch.tensor([0.1, -0.2, 0.3][:k], dtype=torch.float64))
    return net


@pytest.mark.parametrize("k", [1, 3])
def test_exact_enumeration_of_the_gap(k):
    # Dropout on two inputs: four masks with probabilities q^|m| p^(2-|m|).
    # The exact ensemble average is sum_m P(m) softmax(W (x*m/q) + b); the
    # MC estimate from T samples has per-class SE sqrt(Var_m / T). The eval
    # pass equals the normalised weighted geometric mean over the masks
    # (Baldi & Sadowski 2013): softmax of the expected logits.
    p, q = 0.4, 0.6
    net = _softmax_unit(p, k)
    x = torch.tensor([[1.0, 2.0], [-1.5, 0.5], [0.25, -0.75]], dtype=torch.float64)
    probs, weights = [], []
    for m in itertools.product([0, 1], repeat=2):
        mask = torch.tensor(m, dtype=torch.float64)
        logits = net[1](x * mask / q)
        pr = torch.sigmoid(logits[:, 0]) if k == 1 else torch.softmax(logits, -1)
        probs.append(pr.detach().numpy())
        weights.append(q ** sum(m) * p ** (2 - sum(m)))
    probs_a, w = np.array(probs), np.array(weights)[:, None] if k == 1 else np.array(weights)[:, None, None]
    exact = (w * probs_a).sum(0)
    var = (w * (probs_a - exact) ** 2).sum(0)
    geo = np.exp((w * np.log(probs_a)).sum(0))
    if k == 1:
        nwgm = geo / (geo + np.exp((w * np.log(1 - probs_a)).sum(0)))
    else:
        nwgm = geo / geo.sum(-1, keepdims=True)
    T = 20_000
    ev = bayesdrop.evaluate(net, x, [0, 0, 0], num_samples=T, seed=3)
    z = z_value(exact.size)
    assert np.all(np.abs(ev.mc_predictive - exact) <= z * np.sqrt(var / T))
    np.testing.assert_allclose(ev.det_predictive, nwgm, rtol=1e-10)
    assert ev.gap["total_variation"] > 0


def test_classification_fields_and_convergence():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), Dropout(0.5), nn.Linear(16, 4))
    x = torch.randn(50, 3)
    y = torch.randint(0, 4, (50,))
    ev = bayesdrop.evaluate(net, x, y, num_samples=20, seed=1)
    probs = torch.softmax(bayesdrop.sample(net, x, 20, seed=1).double(), -1).numpy()
    np.testing.assert_allclose(ev.mc_predictive, probs.mean(0), rtol=1e-12)  # mean of probabilities
    np.testing.assert_allclose(ev.per_example["mutual_information"], bayesdrop.metrics.mutual_information(probs))
    assert ev.mc["nll"] == pytest.approx(bayesdrop.metrics.nll(probs.mean(0), y))
    assert ev.convergence["T"] == [1, 2, 5, 10, 20]
    assert ev.convergence["nll"]["value"][-1] == pytest.approx(ev.mc["nll"])
    assert math.isnan(ev.convergence["nll"]["se"][0]) and ev.convergence["nll"]["se"][-1] > 0
    json.dumps(ev.to_dict(), allow_nan=False)
    assert net.training  # mode restored


class _HomoscedasticNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), Dropout(0.3), nn.Linear(16, 1))
        self.noise_std = 0.5

    def forward(self, x):
        return self.body(x)


def test_regression_variance_decomposition_and_noise_sources():
    torch.manual_seed(0)
    net = _HomoscedasticNet()
    x = torch.randn(40, 2)
    y = torch.randn(40)
    ev = bayesdrop.evaluate(net, x, y, task="regression", num_samples=30, seed=2)
    mu = bayesdrop.sample(net, x, 30, seed=2)[..., 0].double().numpy()
    np.testing.assert_allclose(ev.per_example["epistemic_var"], mu.var(0), rtol=1e-10)  # ddof = 0
    np.testing.assert_allclose(ev.per_example["aleatoric_var"], 0.25)
    np.testing.assert_allclose(ev.mc_predictive[:, 1] ** 2, mu.var(0) + 0.25, rtol=1e-10)
    assert ev.meta["aleatoric_source"] == "model.noise_std"
    assert ev.mc["mixture_nll"] == pytest.approx(bayesdrop.metrics.mixture_nll(mu, y, 0.5))
    assert bayesdrop.evaluate(net, x, y, task="regression", num_samples=5, noise_std=1.0).per_example["aleatoric_var"][
        0
    ] == pytest.approx(1.0)
    # jackknife SE of a linear statistic equals the usual standard error of the mean
    conv = ev.convergence["mean_noise_var"]
    assert conv["se"][-1] == pytest.approx(0.0, abs=1e-12)
    hetero = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), Dropout(0.3), nn.Linear(8, 2))
    ev2 = bayesdrop.evaluate(hetero, x, y, task="regression", num_samples=10, seed=0)
    out = bayesdrop.sample(hetero, x, 10, seed=0).double().numpy()
    np.testing.assert_allclose(ev2.per_example["aleatoric_var"], np.exp(out[..., 1]).mean(0), rtol=1e-10)
    plain = nn.Sequential(nn.Linear(2, 8), Dropout(0.3), nn.Linear(8, 1))
    with pytest.raises(ValueError, match="needs the observation noise: pass noise_std"):
        bayesdrop.evaluate(plain, x, y, task="regression")


def test_jackknife_se_matches_standard_error_for_a_mean():
    from bayesdrop.evaluation import _jackknife

    rng = np.random.default_rng(0)
    s = rng.normal(size=(20, 3))
    value, se = _jackknife(lambda m: float(m[0]), s)
    assert value == pytest.approx(s[:, 0].mean())
    assert se == pytest.approx(s[:, 0].std(ddof=1) / math.sqrt(20))
    # grouped (T > 20): the SE of the mean of 20 equal group means
    s = rng.normal(size=(60, 1))
    _, se = _jackknife(lambda m: float(m[0]), s)
    assert se == pytest.approx(s.reshape(20, 3).mean(1).std(ddof=1) / math.sqrt(20))


def test_bad_arguments():
    net = nn.Sequential(Dropout(0.5), nn.Linear(2, 2))
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="'task' parameter of evaluate must be one of 'classification', 'regression'"):
        bayesdrop.evaluate(net, x, [0, 1, 0, 1], task="ranking")
    with pytest.raises(ValueError, match="'num_samples' parameter of evaluate must be an int >= 1. Got 0"):
        bayesdrop.evaluate(net, x, [0, 1, 0, 1], num_samples=0)
    with pytest.raises(ValueError, match=r"labels in \[0, 1\]. Got 2"):
        bayesdrop.evaluate(net, x, [0, 1, 2, 1])
    with pytest.raises(TypeError, match="'x' parameter of evaluate must be a torch.Tensor"):
        bayesdrop.evaluate(net, x.numpy(), [0, 1, 0, 1])
