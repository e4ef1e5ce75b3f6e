from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import bayesdrop
from bayesdrop.nn import Dropout, VariationalLinear
from tests.conftest import z_value


def _net(dropout: type[nn.Module] = Dropout) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), dropout(0.5), nn.Linear(16, 2))


def test_sampling_switches_and_restores_state_even_on_error():
    net = _net(nn.Dropout).train()
    with pytest.raises(RuntimeError, match="boom"), bayesdrop.sampling(net):
        assert net[3].training and not net[1].training and not net.training
        raise RuntimeError("boom")
    assert all(m.training for m in net.modules())
    vnet = nn.Sequential(Dropout(0.5), VariationalLinear(2, 2)).eval()
    with bayesdrop.sampling(vnet):
        assert vnet[0].sampling and vnet[1].sampling and not vnet[0].training
    assert not vnet[0].sampling and not any(m.training for m in vnet.modules())


@pytest.mark.parametrize("dropout", [Dropout, nn.Dropout])
def test_sample_shape_no_graph_and_batchnorm_untouched(dropout):
    net = _net(dropout)
    net.train()
    net(torch.randn(64, 6))  # give BatchNorm non-trivial running statistics
    before = {k: v.clone() for k, v in net[1].state_dict().items()}
    x = torch.randn(5, 6)
    s = bayesdrop.sample(net, x, 30, seed=0)
    assert s.shape == (30, 5, 2) and not s.requires_grad
    for k, v in net[1].state_dict().items():
        assert torch.equal(v, before[k]), k
    assert net.training  # restored
    # eval-mode BatchNorm is used: with p -> 0 every sample equals the eval pass
    net.eval()
    net[3].p = 0.0
    torch.testing.assert_close(bayesdrop.sample(net, x, 3)[0], net(x))


def test_seed_reproducible_and_global_rng_untouched():
    net = _net()
    x = torch.randn(4, 6)
    state = torch.get_rng_state()
    a = bayesdrop.sample(net, x, 10, seed=123)
    assert torch.equal(torch.get_rng_state(), state)
    b = bayesdrop.sample(net, x, 10, seed=123)
    c = bayesdrop.sample(net, x, 10, seed=124)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # without a seed: the global RNG decides, so manual_seed reproduces
    torch.manual_seed(7)
    d = bayesdrop.sample(net, x, 10)
    torch.manual_seed(7)
    e = bayesdrop.sample(net, x, 10)
    assert torch.equal(d, e) and not torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 40, 10_000])
def test_every_sample_and_example_has_its_own_noise(chunk_size):
    # Identity network with dropout on 64 features: two rows with independent
    # masks coincide with probability 2**-64, so any repeated row means shared
    # noise across copies of the tiled batch (chunk boundaries included).
    net = nn.Sequential(Dropout(0.5))
    x = torch.ones(8, 64)
    s = bayesdrop.sample(net, x, 50, seed=0, chunk_size=chunk_size)
    rows = s.reshape(-1, 64)
    assert torch.unique(rows, dim=0).shape[0] == rows.shape[0]
    # The MC mean of each feature is 1 with variance p/(1-p)/T = 1/50.
    mean = s.mean(0)
    assert torch.all((mean - 1).abs() <= z_value(8 * 64) * math.sqrt(1.0 / 50))


def test_sample_mean_converges_to_eval_for_linear_model():
    # For a linear model E over masks of W (x*m/(1-p)) equals W x exactly.
    torch.manual_seed(0)
    net = nn.Sequential(Dropout(0.2), nn.Linear(10, 1, bias=False)).double()
    x = torch.randn(3, 10, dtype=torch.float64)
    T = 20_000
    s = bayesdrop.sample(net, x, T, seed=1)[..., 0]
    w = net[1].weight[0].detach()
    var = (x * x * w * w).sum(1) * 0.2 / 0.8  # Var of sum_i w_i x_i m_i/(1-p)
    with torch.no_grad():
        det = net.eval()(x)[:, 0]
    assert torch.all((s.mean(0) - det).abs() <= z_value(3) * (var / T).sqrt())


def test_bad_input():
    net = _net()
    with pytest.raises(TypeError, match=r"'x' parameter of sample must contain at least one tensor"):
        bayesdrop.sample(net, [[0.0] * 6], 3)
    with pytest.raises(TypeError, match=r"'x' parameter of sample must be a tensor, a tuple/list of tensors or a dict"):
        bayesdrop.sample(net, "abc", 3)
    with pytest.raises(ValueError, match=r"same batch size \(dim 0\). Got sizes \[2, 3\]"):
        bayesdrop.sample(net, {"a": torch.randn(2, 6), "b": torch.randn(3, 6)}, 3)
    with pytest.raises(ValueError, match=r"'num_samples' parameter of sample must be an int >= 1. Got 0"):
        bayesdrop.sample(net, torch.randn(2, 6), 0)
    with pytest.raises(ValueError, match=r"'chunk_size' parameter of sample must be an int >= 1. Got 0"):
        bayesdrop.sample(net, torch.randn(2, 6), 2, chunk_size=0)
    with pytest.raises(ValueError, match="has none, so every sample would be the same"):
        bayesdrop.sample(nn.Linear(2, 2), torch.randn(2, 2), 2)

    class TupleOut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = Dropout(0.5)

        def forward(self, x):
            return self.drop(x), x

    with pytest.raises(TypeError, match=r"The model returned a tuple, not a tensor: pass sample\(\.\.\., output=\.\.\.\)"):
        bayesdrop.sample(TupleOut(), torch.randn(2, 2), 2)
    with pytest.raises(ValueError, match=r"'output' parameter of sample selects nothing: 2 is not in .*tuple of length 2"):
        bayesdrop.sample(TupleOut(), torch.randn(2, 2), 2, output=2)
    with pytest.raises(ValueError, match=r"'output' parameter of sample must select a tensor. Got .* selected a int"):
        bayesdrop.sample(TupleOut(), torch.randn(2, 2), 2, output=lambda o: 3)
    with pytest.raises(TypeError, match=r"'output' parameter of sample must be None, an int, a str or a callable"):
        bayesdrop.sample(TupleOut(), torch.randn(2, 2), 2, output=1.5)


def test_deterministic_restores_mixed_modes():
    net = _net().train()
    net[1].eval()  # a frozen BatchNorm inside a training model
    from bayesdrop.sampling import deterministic

    with deterministic(net):
        assert not any(m.training for m in net.modules())
    assert net.training and not net[1].training and net[3].training
