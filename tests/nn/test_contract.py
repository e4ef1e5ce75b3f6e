"""Every public layer of bayesdrop.nn goes through the mode protocol (DESIGN.md).

A new layer must be registered in FACTORIES, or this test fails.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
import torch
from torch import nn

import bayesdrop
import bayesdrop.nn as bnn


class _UniformNoise(bnn.StochasticModule):
    """A user's layer joining the protocol through the public base class (the README's example)."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.stochastic:
            return x
        return x * (1 + self.a * (2 * torch.rand_like(x) - 1))


FACTORIES: dict[str, Callable[[], tuple[nn.Module, torch.Tensor]]] = {
    "Dropout": lambda: (bnn.Dropout(0.5), torch.randn(6, 5)),
    "GaussianDropout": lambda: (bnn.GaussianDropout(0.3, shared_dims=(2,)), torch.randn(6, 3, 4)),
    "VariationalLinear": lambda: (bnn.VariationalLinear(5, 3), torch.randn(6, 5)),
    "VariationalConv": lambda: (bnn.VariationalConv(2, 3, 3, padding=1), torch.randn(6, 2, 5, 5)),
    "DropConnectLinear": lambda: (bnn.DropConnectLinear(5, 3, 0.5, inference="moment_matching"), torch.randn(6, 5)),
    "DropConnectConv": lambda: (bnn.DropConnectConv(2, 3, 3, 0.5, padding=1, dims=1), torch.randn(6, 2, 7)),
    "FastDropoutLinear": lambda: (bnn.FastDropoutLinear(5, 3, 0.3), torch.randn(6, 5)),
    "MaxPoolDropout2d": lambda: (bnn.MaxPoolDropout2d(2, 0.5), torch.rand(6, 3, 4, 4)),
    "DropPath": lambda: (bnn.DropPath(0.5), torch.randn(6, 3, 4)),
    "StochasticDepth": lambda: (bnn.StochasticDepth(torch.nn.Linear(5, 5), 0.5), torch.randn(6, 5)),
    "DropPathJoin": lambda: (bnn.DropPathJoin(3, 0.3, 0.5), torch.randn(6, 3, 4)),
    "GaussianNoise": lambda: (bnn.GaussianNoise(0.3), torch.randn(6, 5)),
    "ConcreteDropout": lambda: (bnn.ConcreteDropout(torch.nn.Linear(5, 3), 0.5), torch.randn(6, 5)),
    "StochasticModule": lambda: (_UniformNoise(0.5), torch.randn(6, 5)),  # the base, through a user's layer
}


def _public_layers() -> list[str]:
    return sorted(
        name
        for name in bnn.__all__
        if inspect.isclass(getattr(bnn, name)) and issubclass(getattr(bnn, name), nn.Module)
    )


def test_every_public_layer_is_registered():
    # VariationalConv2d is VariationalConv; SpatialDropout returns a Dropout
    missing = set(_public_layers()) - set(FACTORIES) - {"VariationalConv2d"}
    assert not missing, f"register these layers in the contract test: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_mode_protocol(name):
    torch.manual_seed(0)
    layer, x = FACTORIES[name]()
    layer = layer.double()
    x = x.double()
    layer.eval()
    e1, e2 = layer(x), layer(x)
    assert torch.equal(e1, e2), "eval must be deterministic"
    # 20 draws: a layer that drops the whole batch at once with p = 0.5 (StochasticDepth) repeats one output
    # 20 times with probability 2^-19
    layer.train()
    t1, *ts = [layer(x) for _ in range(20)]
    assert not all(torch.equal(t1, t) for t in ts), "train must be stochastic"
    layer.eval()
    with bayesdrop.sampling(layer):
        assert not layer.training
        s1, *ss = [layer(x) for _ in range(20)]
    assert not all(torch.equal(s1, s) for s in ss), "sampling must be stochastic in eval mode"
    assert torch.equal(layer(x), e1), "state restored after sampling"
    assert e1.shape == t1.shape == s1.shape and e1.dtype == t1.dtype == s1.dtype == torch.float64
    samples = bayesdrop.sample(layer, x, 4, seed=0)
    assert samples.shape == (4, *e1.shape)
    assert torch.equal(samples, bayesdrop.sample(layer, x, 4, seed=0))
    assert repr(layer).startswith(type(layer).__name__)
