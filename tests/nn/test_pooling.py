"""Max-pooling dropout: the eval rule against enumeration, sampled means, shape errors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import bayesdrop
from bayesdrop.nn import (
    MaxPoolDropout2d,
)
from tests.conftest import z_value


@pytest.mark.parametrize(
    "values", [[0.5, 2.0, 1.0, 3.0], [-1.0, 2.0, -3.0, 0.5], [-1.0, -2.0, -0.5, -4.0], [1.0, 1.0, 0.0, 2.0]]
)
def test_max_pool_dropout_eval_is_the_exact_expectation(values):
    p = 0.3
    x = torch.tensor(values, dtype=torch.float64).view(1, 1, 2, 2)
    exact = 0.0
    for m in itertools.product([0, 1], repeat=4):
        prob = math.prod((1 - p) if k else p for k in m)
        exact += prob * float((x.flatten() * torch.tensor(m, dtype=torch.float64)).max())
    layer = MaxPoolDropout2d(2, p).eval()
    assert float(layer(x)) == pytest.approx(exact, rel=1e-12, abs=1e-15)
    if min(values) >= 0:  # Wu & Gu's probabilistic weighted pooling
        a = sorted(values)
        pwp = sum((1 - p) * p ** (4 - i) * a[i - 1] for i in range(1, 5))
        assert float(layer(x)) == pytest.approx(pwp)


def test_max_pool_dropout_train_mean_and_shape_errors():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64)
    layer = MaxPoolDropout2d(3, 0.5, stride=3)
    n = 20_000
    s = bayesdrop.sample(layer, x, n, seed=0)
    exact = layer.eval()(x)
    c = s - s.mean(0)
    assert torch.all((s.mean(0) - exact).abs() <= z_value(exact.numel()) * (c.var(0) / n).sqrt() + 1e-12)
    assert s.shape[1:] == torch.nn.functional.max_pool2d(x, 3).shape
    with pytest.raises(RuntimeError):  # torch's own error for a kernel larger than the input
        MaxPoolDropout2d(8, 0.5).eval()(x)
