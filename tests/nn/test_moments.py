"""Fast dropout: ReLU and sigmoid moments, propagated moments against Monte Carlo, the expected-loss objective."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import bayesdrop
import bayesdrop.nn.functional as BF
from bayesdrop.nn import (
    Dropout,
    FastDropoutLinear,
    moment_propagation,
)
from tests.conftest import z_value


@pytest.mark.parametrize(("mu", "s"), [(0.0, 1.0), (1.5, 0.5), (-1.0, 2.0), (0.3, 0.01)])
def test_relu_moments_against_monte_carlo(mu, s):
    n = 400_000
    z = mu + s * torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    r = torch.relu(z)
    m, v = BF.relu_moments(torch.tensor(mu, dtype=torch.float64), torch.tensor(s * s, dtype=torch.float64))
    zz = z_value(8)
    assert abs(float(r.mean()) - float(m)) <= zz * float(r.std()) / math.sqrt(n)
    c = r - r.mean()
    se_var = math.sqrt(float((c**4).mean()) - float(c.var()) ** 2) / math.sqrt(n)
    assert abs(float(r.var()) - float(v)) <= zz * se_var


@pytest.mark.parametrize(("mu", "s"), [(0.0, 1.0), (1.5, 0.5), (-1.0, 2.0)])
def test_sigmoid_probit_moments_against_monte_carlo(mu, s):
    # The probit approximations have their own error (Wang & Manning 2013):
    # measured below 0.005 for E sigma(z) and 0.015 for E sigma(z)^2 on these
    # points (sigma(x)^2 ~ sigma(a(x + b)) is off by 0.013 at x = 0), so the
    # variance carries an absolute error of about 0.015.
    n = 400_000
    z = mu + s * torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    g = torch.sigmoid(z)
    m, v = BF.sigmoid_moments(torch.tensor(mu, dtype=torch.float64), torch.tensor(s * s, dtype=torch.float64))
    zz = z_value(6)
    assert abs(float(g.mean()) - float(m)) <= 0.005 + zz * float(g.std()) / math.sqrt(n)
    second = float(v + m * m)
    assert abs(float((g * g).mean()) - second) <= 0.015 + zz * float((g * g).std()) / math.sqrt(n)


def test_fast_dropout_layer_moments_are_exact_against_mc():
    # Dropout -> Linear has exactly the propagated mean and variance.
    torch.manual_seed(0)
    layer = FastDropoutLinear(5, 3, p=0.3).double()
    net = nn.Sequential(Dropout(0.3), nn.Linear(5, 3)).double()
    with torch.no_grad():
        net[1].weight.copy_(layer.weight)
        net[1].bias.copy_(layer.bias)
    x = torch.randn(1, 5, dtype=torch.float64)
    m, v = moment_propagation(nn.Sequential(layer), x)
    m2, v2 = moment_propagation(net, x)
    torch.testing.assert_close(m, m2)
    torch.testing.assert_close(v, v2)
    n = 200_000
    for model in (net, layer):  # Bernoulli and its Gaussian approximation: same two moments
        s = bayesdrop.sample(model, x, n, seed=2)[:, 0]
        c = s - s.mean(0)
        assert torch.all((s.mean(0) - m[0]).abs() <= z_value(12) * (v[0] / n).sqrt())
        se = ((c**4).mean(0) - c.var(0) ** 2).sqrt() / math.sqrt(n)
        assert torch.all((s.var(0) - v[0]).abs() <= z_value(12) * se)


def test_moment_propagation_network_against_mc_and_as_objective():
    # Through a ReLU network the Gaussian assumption is an approximation:
    # the propagated mean is within 5% of the MC mean, the variance within 20%.
    torch.manual_seed(0)
    net = nn.Sequential(Dropout(0.2), nn.Linear(4, 64), nn.ReLU(), Dropout(0.5), nn.Linear(64, 1)).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    m, v = moment_propagation(net, x)
    s = bayesdrop.sample(net, x, 100_000, seed=0)[..., 0]
    scale = s.std(0)
    assert torch.all((m[:, 0] - s.mean(0)).abs() <= 0.05 * scale + z_value(6) * scale / math.sqrt(100_000))
    assert torch.all((v[:, 0] / s.var(0) - 1).abs() <= 0.2)
    # as a training objective: the expected Gaussian NLL is differentiable and decreases
    fd = nn.Sequential(FastDropoutLinear(4, 32, 0.2), nn.ReLU(), FastDropoutLinear(32, 1, 0.2))
    y = x.sum(1, keepdim=True).float()
    opt = torch.optim.Adam(fd.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        mean, var = moment_propagation(fd, x.float())
        loss = BF.expected_gaussian_nll(mean, var, y, 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(TypeError, match=r"cannot propagate layer 0 \(Tanh\)"):
        moment_propagation(nn.Sequential(nn.Tanh()), x)
