"""DropConnect: enumeration of the eval rules, moment matching, sampled moments, independent masks."""

from __future__ import annotations

import itertools
import math

import torch

import bayesdrop
import bayesdrop.nn.functional as BF
from bayesdrop.nn import (
    DropConnectConv,
    DropConnectLinear,
)
from tests.conftest import z_value


def _two_weight_layer(activation: str, inference: str = "weight_scaling", p: float = 0.4) -> DropConnectLinear:
    layer = DropConnectLinear(
        2, 1, p, activation=activation, inference=inference, num_inference_samples=200_000
    ).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.5, -2.0]], dtype=torch.float64))
        layer.bias.fill_(0.25)
    return layer


def _enumerate(layer: DropConnectLinear, x: torch.Tensor, act) -> torch.Tensor:
    q = 1 - layer.p
    total = torch.zeros(x.shape[0], 1, dtype=torch.float64)
    for m in itertools.product([0, 1], repeat=2):
        mask = torch.tensor([m], dtype=torch.float64)
        prob = q ** sum(m) * layer.p ** (2 - sum(m))
        total += prob * act(x @ (layer.weight * mask).T + layer.bias)
    return total


def test_dropconnect_weight_scaling_is_the_exact_mean_of_a_linear_unit():
    layer = _two_weight_layer("identity").eval()
    x = torch.tensor([[1.0, 2.0], [-0.5, 0.25]], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), _enumerate(layer, x, lambda t: t))


def test_dropconnect_moment_matching_against_enumeration_and_gaussian():
    # With a ReLU the enumeration over the 4 masks gives the exact expectation;
    # moment matching averages relu(u + b) over u ~ N(qWx, q(1-q)W^2x^2): its
    # value equals relu_moments of that Gaussian within the MC error of the
    # 200k inference draws (SE sqrt(Var relu(u) / 200k)).
    torch.manual_seed(0)  # the inference draws come from the global RNG
    layer = _two_weight_layer("relu", "moment_matching").eval()
    x = torch.tensor([[1.0, 2.0], [-0.5, 0.25], [2.0, 0.5]], dtype=torch.float64)
    q = 0.6
    with torch.no_grad():
        mm = layer(x)
        mean = q * x @ layer.weight.T + layer.bias
        var = q * (1 - q) * (x * x) @ (layer.weight**2).T
        m1, v1 = BF.relu_moments(mean, var)
    assert torch.all((mm - m1).abs() <= z_value(3) * (v1 / 200_000).sqrt())
    exact = _enumerate(layer, x, torch.relu).detach()
    assert torch.all(exact >= 0) and not torch.allclose(mm, exact)  # an approximation of it, not the same


def test_dropconnect_sampling_moments_and_independent_masks():
    # Pre-activation per example: mean q W x + b, variance q(1-q) (W^2)(x^2).
    layer = _two_weight_layer("identity").eval()
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    n = 100_000
    s = bayesdrop.sample(layer, x, n, seed=0)[:, 0, 0]
    q = 0.6
    with torch.no_grad():
        mean = float(q * x @ layer.weight.T + layer.bias)
        var = float(q * (1 - q) * (x * x) @ (layer.weight**2).T)
    assert abs(float(s.mean()) - mean) <= z_value(2) * math.sqrt(var / n)
    c4 = float(((s - s.mean()) ** 4).mean())
    assert abs(float(s.var()) - var) <= z_value(2) * math.sqrt((c4 - var**2) / n)
    # tiled copies never share one weight mask (baal's DropConnect does)
    wide = DropConnectLinear(64, 1, 0.5, bias=False)
    with torch.no_grad():
        wide.weight.copy_(2.0 ** torch.arange(64, dtype=torch.float32) / 2**40)
    out = bayesdrop.sample(wide, torch.ones(4, 64), 50, seed=1).flatten()
    assert torch.unique(out).numel() == out.numel()


def test_dropconnect_conv_matches_linear_masks_in_expectation():
    torch.manual_seed(0)
    conv = DropConnectConv(2, 3, 3, p=0.3, padding=1).double().eval()
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        ref = torch.nn.functional.conv2d(x, 0.7 * conv.weight, conv.bias, padding=1)
        torch.testing.assert_close(conv(x), ref)
        n = 4000
        s = bayesdrop.sample(conv, x, n, seed=0)[:, 0]
        var = torch.nn.functional.conv2d(x * x, 0.7 * 0.3 * conv.weight**2, padding=1)[0]
    z = z_value(var.numel())
    assert torch.all((s.mean(0) - ref[0]).abs() <= z * (var / n).sqrt() + 1e-12)
