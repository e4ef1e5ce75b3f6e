from __future__ import annotations

import math

import pytest
import torch

from bayesdrop.likelihoods import Categorical, Gaussian


def test_gaussian_nll_oracle_and_learned_parameter():
    lik = Gaussian(init_noise_std=2.0)
    out = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([2.0, 1.0])
    # 0.5 log(2 pi 4) + (y - mu)^2 / 8, averaged
    expected = 0.5 * math.log(8 * math.pi) + (4 / 8 + 0) / 2
    assert float(lik.nll(out, y).detach()) == pytest.approx(expected)
    assert float(lik.noise_std[0]) == pytest.approx(2.0)
    assert [n for n, _ in lik.named_parameters()] == ["log_var"]
    torch.testing.assert_close(lik(out).detach(), torch.tensor([[0.0, math.log(4.0)], [1.0, math.log(4.0)]]))


def test_fixed_noise_is_a_buffer_and_heteroscedastic_splits_columns():
    fixed = Gaussian(noise_std=0.5)
    assert list(fixed.parameters()) == [] and float(fixed.noise_std[0]) == pytest.approx(0.5)
    het = Gaussian(heteroscedastic=True)
    out = torch.tensor([[1.0, math.log(0.25)]])
    assert float(het.nll(out, torch.tensor([2.0]))) == pytest.approx(0.5 * math.log(2 * math.pi * 0.25) + 1 / 0.5)
    assert het.noise_std is None and het.num_outputs == 2
    with pytest.raises(ValueError, match=r"expects 2 output column\(s\). Got 1 instead"):
        het.nll(torch.zeros(3, 1), torch.zeros(3))
    with pytest.raises(ValueError, match="'noise_std' parameter of Gaussian is for heteroscedastic=False only"):
        Gaussian(heteroscedastic=True, noise_std=1.0)


def test_categorical_is_cross_entropy():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    expected = -(torch.log_softmax(logits, -1)[[0, 1], [0, 1]]).mean()
    assert float(Categorical().nll(logits, y)) == pytest.approx(float(expected))
    assert torch.equal(Categorical()(logits), logits)


def test_the_noise_floor_is_smooth_and_holds():
    lik = Gaussian(heteroscedastic=True, min_noise_std=0.1)
    raw = torch.tensor([[0.0, -50.0], [0.0, 2 * math.log(0.1)], [0.0, 6.0]])
    _, log_var = lik.split(raw)
    floor = 2 * math.log(0.1)
    assert log_var[0, 0] == pytest.approx(floor, abs=1e-6)  # far below: the floor
    assert log_var[1, 0] == pytest.approx(floor + math.log(2), abs=1e-6)  # at the floor: softplus(0) above it
    assert log_var[2, 0] == pytest.approx(6.0, abs=1e-4)  # far above: the output itself
    assert (log_var >= floor).all()
    assert Gaussian(heteroscedastic=True).split(raw)[1][0, 0] == -50.0  # no floor by default
    with pytest.raises(ValueError, match="'min_noise_std' parameter of Gaussian is for heteroscedastic=True only"):
        Gaussian(min_noise_std=0.1)
    with pytest.raises(ValueError, match="'min_noise_std' parameter of Gaussian must be a float"):
        Gaussian(heteroscedastic=True, min_noise_std=-1.0)


def test_log_prob_is_the_per_example_negative_nll():
    out = torch.randn(7, 2, generator=torch.Generator().manual_seed(0))
    y = torch.randn(7)
    g = Gaussian(heteroscedastic=True)
    assert g.log_prob(out, y).shape == (7,)
    assert -g.log_prob(out, y).mean() == pytest.approx(float(g.nll(out, y)), rel=1e-6)
    logits, labels = torch.randn(7, 3), torch.randint(0, 3, (7,))
    c = Categorical()
    assert -c.log_prob(logits, labels).mean() == pytest.approx(float(c.nll(logits, labels)), rel=1e-6)
